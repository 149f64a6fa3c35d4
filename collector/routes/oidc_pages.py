"""Sign-in through OpenID Connect (collector/accounts/oidc.py): the two legs of the flow.

``GET /login/oidc`` sends the browser to the issuer; the issuer sends it back to
``GET /login/oidc/callback`` with a code, which becomes a session like a password sign-in.
Both answer 404 when no issuer is configured. A refusal is a page with one line saying why
and a link back to the sign-in page, never a traceback.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import escape

from collector.accounts.oidc import (
    STATE_COOKIE,
    STATE_LIFETIME,
    IssuerClient,
    OidcError,
    account_for,
    derived,
    new_sign_in_secret,
)
from collector.accounts.sessions import cookie_is_secure, create_session, end_session
from collector.accounts.web import local_path, session_secret, set_session_cookie

router = APIRouter(tags=["accounts"])

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
}


def issuer_client(request: Request) -> IssuerClient | None:
    """The app's client of its issuer (made on first use); None when none is configured."""
    settings = request.app.state.settings
    if not settings.oidc_issuer:
        return None
    client: IssuerClient | None = getattr(request.app.state, "oidc", None)
    if client is None:
        secret = settings.oidc_client_secret_file.read_text().strip()
        client = IssuerClient(settings.oidc_issuer, settings.oidc_client_id, secret)
        request.app.state.oidc = client
    return client


def redirect_uri(request: Request) -> str:
    return f"{request.app.state.settings.public_url}/login/oidc/callback"


def refusal(status: int, message: str) -> HTMLResponse:
    body = (f"<!doctype html><html lang=en><meta charset=utf-8><title>Sign-in refused</title>"
            f"<main style='font-family:sans-serif;max-width:40em;margin:3em auto'>"
            f"<h1>Sign-in refused</h1><p>{escape(message)}</p>"
            f"<p><a href='/login'>Back to sign-in</a></p></main></html>")
    return HTMLResponse(body, status, headers=HEADERS)


@router.get("/login/oidc", summary="Sign in through the configured OpenID Connect issuer")
def start(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    client = issuer_client(request)
    if client is None:
        return refusal(404, "sign-in through an identity provider is not configured here")
    secret = new_sign_in_secret()
    try:
        target = client.authorization_url(redirect_uri(request),
                                          request.app.state.settings.oidc_scopes, secret)
    except OidcError as exc:
        return refusal(502, str(exc))
    response = RedirectResponse(target, 303, headers=HEADERS)
    # Where to go afterwards travels with the secret: only a local path (no open redirect).
    response.set_cookie(STATE_COOKIE, f"{secret}|{local_path(next)}", max_age=STATE_LIFETIME,
                        httponly=True, secure=cookie_is_secure(request.app.state.settings.public_url),
                        samesite="lax", path="/login/oidc")
    return response


@router.get("/login/oidc/callback", summary="Where the issuer sends the browser back with a code")
def callback(request: Request, code: Annotated[str | None, Query(max_length=4096)] = None,
             state: Annotated[str | None, Query(max_length=512)] = None,
             error: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    client = issuer_client(request)
    if client is None:
        return refusal(404, "sign-in through an identity provider is not configured here")
    secret, _, next_path = (request.cookies.get(STATE_COOKIE) or "").partition("|")
    # The state first: an error from the issuer is only shown to the browser that started
    # this sign-in (another site cannot make our page say what it likes).
    if not secret or not state or not hmac.compare_digest(state, derived(secret, "state")):
        return refusal(400, "this sign-in was not started in this browser, or took longer than "
                            "10 minutes: start again")
    if error:
        return refusal(401, f"the identity provider did not sign you in ({error})")
    if not code:
        return refusal(400, "the identity provider sent no code")
    settings = request.app.state.settings
    try:
        identity = client.identity(code, redirect_uri(request), secret)
        user_id = account_for(request.app.state.engine, identity, time.time())
    except OidcError as exc:
        return refusal(401, str(exc))
    # As a password sign-in: a session the browser had is ended, not kept beside the new one.
    previous = session_secret(request)
    if previous:
        end_session(request.app.state.engine, previous)
    session = create_session(request.app.state.engine, user_id, settings.session_lifetime)
    response = RedirectResponse(local_path(next_path), 303, headers=HEADERS)
    set_session_cookie(response, request, session)
    response.delete_cookie(STATE_COOKIE, path="/login/oidc")
    return response

"""Who is calling a page or the API: FastAPI dependencies over sessions and admin tokens.

``ApiViewer`` answers 401 (JSON) without credentials; ``PageViewer`` sends a browser to the
sign-in page and back (303). Both take an admin token as ``Authorization: Bearer`` (automation
and the pages' older clients) or a session cookie; a cookie-authenticated unsafe request
(POST, PUT, PATCH, DELETE) must carry the session's CSRF token (form field ``csrf`` or
header ``X-CSRF-Token``), or it is refused with 403 before the route runs.
"""

from __future__ import annotations

import contextlib
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response
from sqlalchemy import Engine, select

from collector.accounts.csrf import FIELD, HEADER, csrf_ok, csrf_token
from collector.accounts.roles import Viewer
from collector.accounts.sessions import cookie_is_secure, cookie_name, viewer_for_session
from collector.db.schema import admin_tokens
from collector.tokens import hash_secret

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SignInRequired(Exception):
    """A page asked for without a session: the app answers with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def session_cookie_name(request: Request) -> str:
    return cookie_name(cookie_is_secure(request.app.state.settings.public_url))


def session_secret(request: Request) -> str | None:
    return request.cookies.get(session_cookie_name(request)) or None


def token_viewer(engine: Engine, token: str) -> Viewer | None:
    """The admin a bearer token stands for; None for an unknown, revoked or metrics token."""
    with engine.connect() as conn:
        token_id = conn.scalar(select(admin_tokens.c.id).where(
            admin_tokens.c.token_hash == hash_secret(token), admin_tokens.c.revoked_at.is_(None),
            admin_tokens.c.scope == "admin"))
    if token_id is None:
        return None
    return Viewer(role="admin", name=f"admin token {token_id}", token_id=int(token_id))


async def optional_viewer(request: Request) -> Viewer | None:
    """The caller, or None. A bearer header that is not an admin token is a 401 (never
    silently anonymous); an ended session is simply no session."""
    engine: Engine = request.app.state.engine
    settings = request.app.state.settings
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme:
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "send the credential as 'Authorization: Bearer …'",
                                headers={"WWW-Authenticate": "Bearer"})
        viewer = token_viewer(engine, token.strip())
        if viewer is None:
            raise HTTPException(401, "unknown or revoked admin token",
                                headers={"WWW-Authenticate": "Bearer"})
        return viewer
    secret = session_secret(request)
    if secret is None:
        return None
    viewer = viewer_for_session(engine, secret, settings.session_idle)
    if viewer is not None and request.method in UNSAFE:
        submitted = request.headers.get(HEADER)
        if submitted is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            # Keep the body: a route that streams its body itself (the contracts CSV upload)
            # then still gets it, instead of "stream consumed" (a 500). A route with form
            # fields has had its form parsed already (the stream is read; the form is kept).
            with contextlib.suppress(RuntimeError):
                await request.body()
            form = await request.form()
            value = form.get(FIELD)
            submitted = value if isinstance(value, str) else None
        if not csrf_ok(secret, submitted):
            raise HTTPException(403, "the form is out of date or came from another site: "
                                "reload the page and try again")
    return viewer


async def api_viewer(viewer: Annotated[Viewer | None, Depends(optional_viewer)]) -> Viewer:
    if viewer is None:
        raise HTTPException(401, "sign in, or send an admin token as 'Authorization: Bearer …'",
                            headers={"WWW-Authenticate": "Bearer"})
    return viewer


async def page_viewer(request: Request,
                      viewer: Annotated[Viewer | None, Depends(optional_viewer)]) -> Viewer:
    if viewer is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return viewer


def login_redirect(next_path: str) -> str:
    return "/login?next=" + quote(next_path, safe="/")


def csrf_for(request: Request) -> str:
    """The token to render into this page's forms ("" without a session)."""
    secret = session_secret(request)
    return csrf_token(secret) if secret else ""


OptionalViewer = Annotated[Viewer | None, Depends(optional_viewer)]
ApiViewer = Annotated[Viewer, Depends(api_viewer)]
PageViewer = Annotated[Viewer, Depends(page_viewer)]


def local_path(target: str | None) -> str:
    """Where to send a browser after signing in: ``target`` only when it is a path on this
    collector ("/report?…"), never another site ("//evil.example", "/\\evil.example",
    "https://…"): an open redirect would lend our name to phishing."""
    if (not target or not target.startswith("/") or target.startswith(("//", "/\\"))
            or any(c in target for c in "\r\n\t\\")):
        return "/"
    return target


def set_session_cookie(response: Response, request: Request, secret: str) -> None:
    """The session cookie: HttpOnly, Secure where the browser can send it back (see
    sessions.cookie_is_secure), SameSite=Lax, for the whole site, as long as the session."""
    settings = request.app.state.settings
    response.set_cookie(session_cookie_name(request), secret, max_age=int(settings.session_lifetime),
                        httponly=True, secure=cookie_is_secure(settings.public_url), samesite="lax",
                        path="/")

"""The account pages: sign in and out, the home page, the password page, and a board's
consent to share its schools with the cooperative's analysts.

Sign-in is protected against login CSRF (another site signing a browser in to an account of
its choosing) by a random nonce in a cookie and the same value in the form; every other form
carries the session's CSRF token, checked by collector/accounts/web.py before a route runs.
A successful sign-in always starts a new session (never one the browser brought along: no
session fixation), and it redirects only to a path on this collector.

Every answer is private like the incident pages' (no-store, no Referer, noindex, a CSP that
loads nothing), except that forms may post to this collector (``form-action 'self'``).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine, select

from collector.accounts.csrf import (
    LOGIN_COOKIE,
    LOGIN_COOKIE_SECURE,
    csrf_token,
    login_nonce_ok,
    new_login_nonce,
)
from collector.accounts.page_text import say
from collector.accounts.passwords import MAX_LENGTH
from collector.accounts.roles import AGGREGATE_MINIMUM, ROLE_NAMES, NotPermitted, Viewer
from collector.accounts.sessions import cookie_is_secure, create_session, end_session
from collector.accounts.sharing import BoardSharing, UnknownBoard, board_sharing, set_board_shared
from collector.accounts.throttle import client_key
from collector.accounts.users import Refused, UserError, authenticate, confirm_password, set_password
from collector.accounts.web import (
    OptionalViewer,
    PageViewer,
    csrf_for,
    local_path,
    session_cookie_name,
    session_secret,
    set_session_cookie,
)
from collector.db.schema import boards, schools
from collector.incidents import text
from collector.incidents.text import Lang
from collector.routes.incidents_pages import PRIVATE_HEADERS, preferred_lang

log = logging.getLogger("schoolnet.collector.accounts")
router = APIRouter(tags=["account pages"], include_in_schema=False)

HEADERS = {**PRIVATE_HEADERS, "Content-Security-Policy": (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")}
# The sign-in form's nonce lives as long as someone may take to type a password.
LOGIN_NONCE_MAX_AGE = 3600
MAX_NEXT = 2000

_env = Environment(loader=FileSystemLoader(Path(__file__).parent.parent / "accounts" / "templates"),
                   autoescape=select_autoescape(("html",)), trim_blocks=True, lstrip_blocks=True)

LangQuery = Annotated[str | None, Query(alias="lang", description="nl or en")]


def _page(request: Request, template: str, lang: Lang, asked: str | None, status: int = 200,
          **values: Any) -> HTMLResponse:
    context = {"lang": lang, "lang_query": f"?lang={lang}" if asked in ("nl", "en") else "",
               "say": lambda key, **kw: say(lang, key, **kw), "csrf": csrf_for(request), "nav": False}
    context.update(values)
    return HTMLResponse(_env.get_template(template).render(**context), status, headers=HEADERS)


def _message(request: Request, lang: Lang, asked: str | None, status: int, title_key: str,
             message: str) -> HTMLResponse:
    return _page(request, "message.html", lang, asked, status, title=say(lang, title_key),
                 message=message, nav=session_secret(request) is not None)


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this collector, else "/" (web.local_path, also used by
    the OpenID Connect sign-in), and never longer than a form field may be."""
    return local_path(target) if target and len(target) <= MAX_NEXT else "/"


def client_address(request: Request) -> str:
    """Whom refused sign-ins are counted against (with the username): the peer, or behind
    the reverse proxy the address uvicorn takes from X-Forwarded-For; see throttle.client_key."""
    return client_key(request.client.host if request.client is not None else "-")


def _secure(request: Request) -> bool:
    return cookie_is_secure(request.app.state.settings.public_url)


def _login_cookie(request: Request) -> str:
    return LOGIN_COOKIE_SECURE if _secure(request) else LOGIN_COOKIE


def _login_form(request: Request, lang: Lang, asked: str | None, next_path: str, status: int = 200,
                message: str = "", username: str = "") -> HTMLResponse:
    nonce = new_login_nonce()
    settings = request.app.state.settings
    target = safe_next(next_path)
    # With an issuer configured (collector/routes/oidc_pages.py), a second way in.
    oidc = {"href": "/login/oidc?next=" + quote(target, safe="/"), "label": settings.oidc_label
            } if settings.oidc_issuer else None
    response = _page(request, "login.html", lang, asked, status, title=say(lang, "sign_in"),
                     nonce=nonce, next=target, message=message, username=username, oidc=oidc)
    response.set_cookie(_login_cookie(request), nonce, max_age=LOGIN_NONCE_MAX_AGE, path="/",
                        secure=_secure(request), httponly=True, samesite="lax")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, lang: LangQuery = None, next: str | None = None) -> HTMLResponse:
    return _login_form(request, preferred_lang(request, lang), lang, next or "/")


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, username: Annotated[str, Form(max_length=200)] = "",
          password: Annotated[str, Form(max_length=MAX_LENGTH + 1)] = "",
          nonce: Annotated[str, Form(max_length=200)] = "",
          next: Annotated[str, Form(max_length=MAX_NEXT + 1)] = "/",
          lang: LangQuery = None) -> Response:
    chosen = preferred_lang(request, lang)
    if not login_nonce_ok(request.cookies.get(_login_cookie(request)), nonce):
        return _message(request, chosen, lang, 403, "forbidden", say(chosen, "form_expired"))
    engine: Engine = request.app.state.engine
    settings = request.app.state.settings
    result = authenticate(engine, username, password, client_address(request))
    if isinstance(result, Refused):
        # The reason stays in the log; the person is told the same for every refusal.
        log.info("sign-in refused (%s)", result.reason)
        return _login_form(request, chosen, lang, next, 401, say(chosen, "sign_in_failed"),
                           username=username[:100])
    old = session_secret(request)
    if old:
        end_session(engine, old)
    secret = create_session(engine, result.id, settings.session_lifetime)
    response = RedirectResponse(safe_next(next), 303, headers=HEADERS)
    set_session_cookie(response, request, secret)
    response.delete_cookie(_login_cookie(request), path="/", secure=_secure(request), httponly=True,
                           samesite="lax")
    return response


@router.post("/logout")
def logout(request: Request, viewer: OptionalViewer) -> Response:
    # OptionalViewer has checked the CSRF token of a live session before we get here.
    secret = session_secret(request)
    if secret:
        end_session(request.app.state.engine, secret)
    response = RedirectResponse("/login", 303, headers=HEADERS)
    response.delete_cookie(session_cookie_name(request), path="/", secure=_secure(request),
                           httponly=True, samesite="lax")
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, viewer: PageViewer, lang: LangQuery = None) -> HTMLResponse:
    chosen = preferred_lang(request, lang)
    engine: Engine = request.app.state.engine
    with engine.connect() as conn:
        all_boards = conn.execute(select(boards.c.id, boards.c.slug, boards.c.name, boards.c.shared_at)
                                  .order_by(boards.c.slug)).all()
        all_schools = conn.execute(select(schools.c.board_id, schools.c.slug, schools.c.name)
                                   .order_by(schools.c.board_id, schools.c.slug)).all()
    by_id = {row.id: row for row in all_boards}
    readable = viewer.readable_boards(by_id, {row.id for row in all_boards if row.shared_at is not None})
    shown = [{"board": by_id[row.board_id].slug, "slug": row.slug, "name": row.name}
             for row in all_schools if row.board_id in readable]
    shown.sort(key=lambda school: (school["board"], school["slug"]))
    managed = [BoardSharing(row.id, row.slug, row.name, row.shared_at) for row in all_boards
               if viewer.may_manage_board(row.id)]
    return _page(request, "home.html", chosen, lang, title=say(chosen, "home"), viewer=viewer,
                 role_name=ROLE_NAMES[chosen][viewer.role],
                 board=by_id.get(viewer.board_id) if viewer.board_id is not None else None,
                 schools=shown, managed=managed)


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, viewer: PageViewer, lang: LangQuery = None) -> HTMLResponse:
    chosen = preferred_lang(request, lang)
    if viewer.user_id is None or viewer.username is None:
        return _message(request, chosen, lang, 403, "forbidden", say(chosen, "no_account"))
    return _page(request, "password.html", chosen, lang, title=say(chosen, "change_password"),
                 viewer=viewer, nav=True)


@router.post("/account/password", response_class=HTMLResponse)
def change_password(request: Request, viewer: PageViewer,
                    current: Annotated[str, Form(max_length=MAX_LENGTH + 1)] = "",
                    new: Annotated[str, Form(max_length=MAX_LENGTH + 1)] = "",
                    again: Annotated[str, Form(max_length=MAX_LENGTH + 1)] = "",
                    lang: LangQuery = None) -> HTMLResponse:
    chosen = preferred_lang(request, lang)
    if viewer.user_id is None or viewer.username is None:
        return _message(request, chosen, lang, 403, "forbidden", say(chosen, "no_account"))
    engine: Engine = request.app.state.engine

    def refuse(message: str) -> HTMLResponse:
        return _page(request, "password.html", chosen, lang, 400, title=say(chosen, "change_password"),
                     viewer=viewer, nav=True, message=message)

    if new != again:
        return refuse(say(chosen, "passwords_differ"))
    if isinstance(confirm_password(engine, viewer.username, current, client_address(request)), Refused):
        return refuse(say(chosen, "current_wrong"))
    if new == current:
        return refuse(say(chosen, "password_same"))
    try:
        set_password(engine, viewer.username, new)  # ends every session, this one too
    except UserError as exc:
        return refuse(f"{say(chosen, 'password_weak')}: {exc}.")
    # This browser goes on in a new session; every other one is signed out.
    secret = create_session(engine, viewer.user_id, request.app.state.settings.session_lifetime)
    response = _page(request, "password.html", chosen, lang, title=say(chosen, "change_password"),
                     viewer=viewer, nav=True, done=True, csrf=csrf_token(secret))
    set_session_cookie(response, request, secret)
    return response


def _sharing_page(request: Request, viewer: Viewer, board: BoardSharing, chosen: Lang, asked: str | None,
                  status: int = 200, message: str = "") -> HTMLResponse:
    zone = request.app.state.settings.timezone
    return _page(request, "sharing.html", chosen, asked, status, title=say(chosen, "sharing"),
                 board=board, nav=True, message=message, minimum=AGGREGATE_MINIMUM,
                 may_manage=viewer.may_manage_board(board.id),
                 shared_when=_when(board.shared_at, chosen, zone))


def _when(seconds: float | None, lang: Lang, zone: str) -> str:
    if seconds is None:
        return ""
    local = datetime.fromtimestamp(seconds, ZoneInfo(zone))
    return text.when({"local": local.isoformat()}, lang, zone)


def _readable_sharing(engine: Engine, viewer: Viewer, board: str) -> BoardSharing | None:
    """The board's consent, or None both when there is no such board and when the viewer
    may not see it: the two answer alike (docs/accounts.md), so board ids cannot be probed."""
    try:
        found = board_sharing(engine, board)
    except UnknownBoard:
        return None
    return found if viewer.may_read_board(found.id, found.shared) else None


def _no_such_board(request: Request, chosen: Lang, lang: str | None) -> HTMLResponse:
    return _message(request, chosen, lang, 404, "not_found", say(chosen, "no_board_found"))


@router.get("/boards/{board}/sharing", response_class=HTMLResponse)
def sharing_page(request: Request, board: str, viewer: PageViewer, lang: LangQuery = None) -> HTMLResponse:
    chosen = preferred_lang(request, lang)
    found = _readable_sharing(request.app.state.engine, viewer, board)
    if found is None:
        return _no_such_board(request, chosen, lang)
    return _sharing_page(request, viewer, found, chosen, lang)


@router.post("/boards/{board}/sharing", response_class=HTMLResponse)
def change_sharing(request: Request, board: str, viewer: PageViewer,
                   shared: Annotated[str, Form(max_length=10)] = "",
                   lang: LangQuery = None) -> Response:
    chosen = preferred_lang(request, lang)
    engine: Engine = request.app.state.engine
    found = _readable_sharing(engine, viewer, board)
    if found is None:
        return _no_such_board(request, chosen, lang)
    try:
        viewer.require_manage(found.id)  # seen, and not theirs to change: 403
    except NotPermitted as exc:
        return _message(request, chosen, lang, 403, "forbidden", str(exc))
    if shared not in ("yes", "no"):
        return _sharing_page(request, viewer, found, chosen, lang, 400, say(chosen, "bad_choice"))
    updated = set_board_shared(engine, board, shared == "yes", time.time())
    log.info("board %s %s by %s", updated.slug, "shared" if updated.shared else "unshared", viewer.actor())
    target = f"/boards/{updated.slug}/sharing" + (f"?lang={chosen}" if lang in ("nl", "en") else "")
    return RedirectResponse(target, 303, headers=HEADERS)

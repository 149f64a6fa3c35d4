"""The incident pages for people: the lists, and each incident's evidence pack (web page,
PDF, CSV, JSON), plus the calls that make and revoke share links.

Who may look: a signed-in person or an admin token, within the viewer's scope
(collector/routes/scope.py), or a share link's secret (``?share=``) for that one incident
only. Without either, a browser is sent to sign in (303 to /login). An incident that does
not exist, one of a board the viewer may not see, and a share that does not open this
incident (another incident's, expired, revoked) answer alike, 404, so neither a link nor an
account can be used to find out which incidents exist. The lists show the viewer's scope.

Every answer here is private: not cached (Cache-Control no-store), no Referer to wherever a
link on it leads, not indexed, and a Content-Security-Policy that lets the page load
nothing at all (its styles are inline, its charts inline SVG).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Engine

from agent.units import parse_duration
from collector.accounts.roles import Viewer
from collector.accounts.web import ApiViewer, PageViewer, SignInRequired, optional_viewer
from collector.db.engine import writer
from collector.deps import EngineDep
from collector.incidents.action_input import MAX_ID
from collector.incidents.evidence import IncidentNotFound, evidence_document, incident_list
from collector.incidents.export import TABLES, UnknownTable, evidence_csv, evidence_json
from collector.incidents.model import ACTIVE_STATES, STATES
from collector.incidents.pdf import evidence_pdf
from collector.incidents.render import evidence_html, list_html
from collector.incidents.shares import create_share, incident_url, revoke_shares, share_allows
from collector.incidents.text import Lang, t
from collector.registry import RegistryError, resolve_school
from collector.routes.scope import (
    board_scope,
    manageable_incident,
    may_read_incident,
    readable_school,
)

router = APIRouter(tags=["incident pages"])

PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}
NOT_FOUND = "no such incident, or the link has expired or been revoked"
StateFilter = Literal["open", "acknowledged", "escalated", "resolved", "dismissed", "active", "all"]


def _private(response: Response) -> Response:
    response.headers.update(PRIVATE_HEADERS)
    return response


def _fail(status: int, detail: str, **headers: str) -> HTTPException:
    return HTTPException(status, detail, headers={**PRIVATE_HEADERS, **headers})


def preferred_lang(request: Request, asked: str | None) -> Lang:
    """?lang= when given; else the first of Dutch and English the browser names in
    Accept-Language (by its q weights), Dutch only when it prefers Dutch; else English."""
    if asked in ("nl", "en"):
        return "nl" if asked == "nl" else "en"
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in ("nl", "en") and weight > 0:
            ranked.append((-weight, index, primary))
    return "nl" if ranked and min(ranked)[2] == "nl" else "en"


async def _pack_viewer(request: Request) -> Viewer | None:
    """The viewer, if any; a bad bearer token's 401 carries the private headers too."""
    try:
        return await optional_viewer(request)
    except HTTPException as exc:
        raise _fail(exc.status_code, str(exc.detail), **(exc.headers or {})) from None


PackViewer = Annotated[Viewer | None, Depends(_pack_viewer)]


def _access(request: Request, engine: Engine, viewer: Viewer | None, incident_id: int, share: str | None
            ) -> str | None:
    """The share secret the page was opened with (None: by a viewer who may see it); raises
    404, or SignInRequired for a browser with neither."""
    with engine.connect() as conn:
        if share and share_allows(conn, incident_id, share, time.time()):
            return share
        if viewer is not None:
            if not may_read_incident(conn, viewer, incident_id):
                raise _fail(404, NOT_FOUND)
            return None
    if share:
        raise _fail(404, NOT_FOUND)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise SignInRequired(target)


def _document(request: Request, engine: Engine, incident_id: int) -> dict[str, Any]:
    settings = request.app.state.settings
    try:
        with engine.connect() as conn:
            return evidence_document(conn, incident_id, time.time(), settings.timezone)
    except IncidentNotFound:
        raise _fail(404, NOT_FOUND) from None


# Incident ids are SQL integers: a larger number is no incident, and SQLite would overflow
# on it (a 500); FastAPI answers 422 before the store is asked.
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="the incident's number")]
LangQuery = Annotated[Literal["nl", "en"] | None, Query(description="nl or en (default: Accept-Language)")]
ShareQuery = Annotated[str | None, Query(description="the secret of a share link")]


@router.get("/incidents/{incident_id}/evidence.pdf", summary="The evidence pack as a printable A4 PDF")
def pack_pdf(
    incident_id: IncidentId,
    request: Request,
    engine: EngineDep,
    viewer: PackViewer,
    lang: LangQuery = None,
    share: ShareQuery = None,
) -> Response:
    _access(request, engine, viewer, incident_id, share)
    language = preferred_lang(request, lang)
    body = evidence_pdf(_document(request, engine, incident_id), language)
    return _private(
        Response(
            body,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="incident-{incident_id}-{language}.pdf"'},
        )
    )


@router.get("/incidents/{incident_id}/evidence.json", summary="The evidence pack's whole document")
def pack_json(
    incident_id: IncidentId, request: Request, engine: EngineDep, viewer: PackViewer, share: ShareQuery = None
) -> Response:
    _access(request, engine, viewer, incident_id, share)
    body = evidence_json(_document(request, engine, incident_id))
    return _private(
        Response(
            body,
            media_type="application/json",
            headers={"Content-Disposition": f'inline; filename="incident-{incident_id}.json"'},
        )
    )


@router.get(
    "/incidents/{incident_id}/evidence.csv",
    summary=f"One table of the evidence pack as CSV: {', '.join(TABLES)}",
)
def pack_csv(
    incident_id: IncidentId,
    request: Request,
    engine: EngineDep,
    viewer: PackViewer,
    table: Annotated[str, Query(description=", ".join(TABLES))] = "measurements",
    share: ShareQuery = None,
) -> Response:
    _access(request, engine, viewer, incident_id, share)
    if table not in TABLES:
        raise _fail(422, str(UnknownTable(table)))
    document = _document(request, engine, incident_id)
    with engine.connect() as conn:
        body = evidence_csv(document, table, conn, request.app.state.settings.timezone)
    return _private(
        Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="incident-{incident_id}-{table}.csv"'},
        )
    )


@router.get("/incidents/{incident_id}", response_class=HTMLResponse, summary="The evidence pack (web page)")
def pack_page(
    incident_id: IncidentId,
    request: Request,
    engine: EngineDep,
    viewer: PackViewer,
    lang: LangQuery = None,
    share: ShareQuery = None,
) -> Response:
    secret = _access(request, engine, viewer, incident_id, share)
    language = preferred_lang(request, lang)
    html = evidence_html(_document(request, engine, incident_id), language, share=secret)
    return _private(HTMLResponse(html, headers={"Content-Language": language}))


def _in_scope(conn: Connection, viewer: Viewer, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The list's rows the viewer may see (by the board's id, which every row names; none
    for a provider-wide incident)."""
    if viewer.is_admin:
        return items
    scope = board_scope(conn, viewer)
    return [item for item in items
            if (item["board"] in scope.slugs if item["board"] is not None else scope.provider_wide)]


def _states(state: StateFilter | None) -> tuple[str, ...] | None:
    if state is None or state == "active":
        return ACTIVE_STATES
    if state == "all":
        return None
    return (state,) if state in STATES else ()


@router.get(
    "/incidents",
    response_class=HTMLResponse,
    summary="Incidents (default: active ones), active first, newest first",
)
def incidents_page(
    request: Request,
    engine: EngineDep,
    viewer: PageViewer,
    board: str | None = None,
    school: str | None = None,
    state: StateFilter | None = None,
    lang: LangQuery = None,
) -> Response:
    language = preferred_lang(request, lang)
    settings = request.app.state.settings
    with engine.connect() as conn:
        items = _in_scope(conn, viewer, incident_list(conn, settings.timezone, board=board, school=school,
                                                      states=_states(state)))
    html = list_html(
        items,
        language,
        t(language, "list_title"),
        {"board": board, "school": school, "state": state or "active"},
        zone=settings.timezone,
    )
    return _private(HTMLResponse(html))


@router.get(
    "/incidents/{board}/{school}",
    response_class=HTMLResponse,
    summary="One school's incidents, active first, newest first (the link alerts carry)",
)
def school_incidents_page(
    board: str,
    school: str,
    request: Request,
    engine: EngineDep,
    viewer: PageViewer,
    state: StateFilter = "all",
    lang: LangQuery = None,
) -> Response:
    language = preferred_lang(request, lang)
    settings = request.app.state.settings
    with engine.connect() as conn:
        try:
            readable_school(conn, viewer, board, school)
        except HTTPException as exc:
            raise _fail(404, str(exc.detail)) from None
        try:
            _, board_id, school_id = resolve_school(conn, f"{board}/{school}")
        except RegistryError as exc:
            raise _fail(404, str(exc)) from None
        items = incident_list(
            conn, settings.timezone, board=board_id, school=school_id, states=_states(state)
        )
    name = items[0]["school_name"] if items else f"{board_id}/{school_id}"
    html = list_html(
        items,
        language,
        t(language, "list_school_title", school=name),
        {"board": board_id, "school": school_id, "state": state},
        zone=settings.timezone,
    )
    return _private(HTMLResponse(html))


class ShareBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    valid_for: str = "14d"


@router.post(
    "/api/v1/admin/incidents/{incident_id}/share",
    summary="A link to the incident's evidence pack that needs no token",
)
def share_link(
    incident_id: IncidentId,
    request: Request,
    engine: EngineDep,
    viewer: ApiViewer,
    body: Annotated[ShareBody | None, Body()] = None,
) -> JSONResponse:
    body = body or ShareBody()
    try:
        seconds = parse_duration(body.valid_for)
    except ValueError as exc:
        raise HTTPException(422, f"valid_for: {exc}") from None
    with engine.connect() as conn:
        manageable_incident(conn, viewer, incident_id, f"no incident {incident_id}")
    now = time.time()
    try:
        with writer(engine) as conn, conn.begin():
            secret = create_share(conn, incident_id, seconds, now)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, f"valid_for: {exc}") from None
    return _private(
        JSONResponse(
            {"url": incident_url(request.app.state.settings.public_url, incident_id, secret),
             "expires_at": now + seconds}
        )
    )  # type: ignore[return-value]


@router.delete(
    "/api/v1/admin/incidents/{incident_id}/share",
    summary="Revoke every share link of the incident",
)
def revoke_links(incident_id: IncidentId, engine: EngineDep, viewer: ApiViewer) -> dict[str, int]:
    # As the POST beside it and the CLI: revoking the links of no incident is a 404, not
    # "revoked 0", so a typo in the number does not look like success.
    with engine.connect() as conn:
        manageable_incident(conn, viewer, incident_id, f"no incident {incident_id}")
    with writer(engine) as conn, conn.begin():
        return {"revoked": revoke_shares(conn, incident_id, time.time())}



"""The incidents API: list, read, and act on incidents, signed in or with an admin token.

Scope (collector/routes/scope.py): the list holds the incidents of the boards the viewer
sees (provider-wide ones for the admin and analysts only); another board's incident is a
404 as if it did not exist; an action by a role that sees the incident but may not act on
it (board viewer, analyst) is a 403.

POST /api/v1/admin/incidents/{id}/{acknowledge|escalate|resolve|dismiss|note|ticket} with a
JSON body {"by": NAME, "note": …, "ticket": …, "reason": …} answers 200 with the incident,
404 for an unknown incident, 409 when the move is not allowed in its state, 422 for a body
that does not fit (e.g. dismiss without a reason). The event records the actor as the
viewer names itself (Viewer.actor(): "Anne de Vries (board admin de-regenboog)"); with an
admin token, a "by" name in the body is kept in front: "NAME (admin token N)". A signed-in
person is who the session says, whatever "by" says.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from collector.accounts.web import ApiViewer
from collector.deps import EngineDep
from collector.incidents.action_input import (
    MAX_BY,
    MAX_ID,
    MAX_NOTE,
    MAX_TICKET,
    InputError,
    check_board,
    check_line,
    check_text,
)
from collector.incidents.errors import IncidentError, NotAllowedNow, UnknownIncident
from collector.incidents.lifecycle import perform
from collector.incidents.model import ACTIVE_STATES, STATES
from collector.incidents.notify import Channels
from collector.incidents.views import get_incident, list_incidents
from collector.registry import RegistryError
from collector.routes.scope import board_scope, manageable_incident, readable_incident, school_in_scope

router = APIRouter(prefix="/api/v1/admin", tags=["incidents"])

StateFilter = Literal["open", "acknowledged", "escalated", "resolved", "dismissed", "active", "all"]


class ActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(default=None, max_length=MAX_BY)
    note: str | None = Field(default=None, max_length=MAX_NOTE)
    ticket: str | None = Field(default=None, max_length=MAX_TICKET)
    reason: str | None = Field(default=None, max_length=MAX_NOTE)

    # The CLI's checks (collector/incidents/action_input.py): no control characters; a
    # name and a ticket are one line. The 422's message: "FIELD: what is wrong".
    @field_validator("by", "ticket")
    @classmethod
    def _one_line(cls, value: str | None, info: Any) -> str | None:
        try:
            return check_line("", value, MAX_BY if info.field_name == "by" else MAX_TICKET)
        except InputError as exc:
            raise PydanticCustomError("text", exc.problem) from None

    @field_validator("note", "reason")
    @classmethod
    def _free_text(cls, value: str | None) -> str | None:
        try:
            return check_text("", value)
        except InputError as exc:
            raise PydanticCustomError("text", exc.problem) from None


# An id the store can hold (a larger one would overflow SQLite's integer: a 500).
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/incidents", summary="Incidents, newest first (default: the active ones)")
def incidents_list(request: Request, engine: EngineDep, viewer: ApiViewer, board: str | None = None,
                   school: str | None = None, state: StateFilter = "active") -> list[dict[str, Any]]:
    states = None if state == "all" else ACTIVE_STATES if state == "active" else (state,)
    try:
        with engine.connect() as conn:
            check_board(conn, board)
            scope = None if viewer.is_admin else board_scope(conn, viewer)
            if scope is not None:
                if board and board not in scope.slugs:
                    raise RegistryError(f"no board {board!r} (see: board list)")  # check_board's words
                if school:
                    school = school_in_scope(conn, scope, f"{board}/{school}" if board and "/" not in school
                                             else school)
            views = list_incidents(conn, board, school, states,
                                   default_timezone=request.app.state.settings.timezone, now=time.time(),
                                   board_ids=None if scope is None else scope.ids,
                                   provider_wide=scope is None or scope.provider_wide)
    except RegistryError as exc:
        raise HTTPException(404, str(exc)) from None
    return [view.as_dict() for view in views]


@router.get("/incidents/{incident_id}", summary="One incident with its events and time to restore")
def incident_one(incident_id: IncidentId, request: Request, engine: EngineDep, viewer: ApiViewer
                 ) -> dict[str, Any]:
    try:
        with engine.connect() as conn:
            readable_incident(conn, viewer, incident_id)
            return get_incident(conn, incident_id, default_timezone=request.app.state.settings.timezone,
                                now=time.time()).as_dict()
    except UnknownIncident as exc:
        raise HTTPException(404, str(exc)) from None


def _act(action: str) -> Any:
    def act(incident_id: IncidentId, request: Request, engine: EngineDep, viewer: ApiViewer,
            body: Annotated[ActionBody | None, Body()] = None) -> dict[str, Any]:
        body = body or ActionBody()
        settings = request.app.state.settings
        with engine.connect() as conn:
            manageable_incident(conn, viewer, incident_id)
        actor = viewer.actor()
        if viewer.token_id is not None and body.by and body.by.strip():
            actor = f"{body.by.strip()} ({actor})"
        try:
            return perform(engine, incident_id, action, actor, note=body.note, ticket=body.ticket,
                           reason=body.reason, now=time.time(), channels=Channels.from_settings(settings),
                           default_timezone=settings.timezone).as_dict()
        except UnknownIncident as exc:
            raise HTTPException(404, str(exc)) from None
        except NotAllowedNow as exc:
            raise HTTPException(409, str(exc)) from None
        except IncidentError as exc:
            raise HTTPException(422, str(exc)) from None
    return act


for _action in ("acknowledge", "escalate", "resolve", "dismiss", "note", "ticket"):
    router.add_api_route(f"/incidents/{{incident_id}}/{_action}", _act(_action), methods=["POST"],
                         summary=f"{_action.capitalize()} the incident", name=f"incident_{_action}")

# For the docs' and tests' sake: the states a filter may name.
FILTER_STATES = (*STATES, "active", "all")

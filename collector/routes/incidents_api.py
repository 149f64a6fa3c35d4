"""The incidents admin API: list, read, and act on incidents (admin bearer token).

POST /api/v1/admin/incidents/{id}/{acknowledge|escalate|resolve|dismiss|note|ticket} with a
JSON body {"by": NAME, "note": …, "ticket": …, "reason": …} answers 200 with the incident,
404 for an unknown incident, 409 when the move is not allowed in its state, 422 for a body
that does not fit (e.g. dismiss without a reason). The event records the actor as
"NAME (admin token N)".
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select

from collector.db.schema import admin_tokens
from collector.deps import Admin, EngineDep, bearer_token
from collector.incidents.model import ACTIVE_STATES, STATES
from collector.incidents.notify import Channels
from collector.incidents.store import (
    IncidentError,
    NotAllowedNow,
    UnknownIncident,
    get_incident,
    list_incidents,
    perform,
)
from collector.registry import RegistryError
from collector.tokens import hash_secret

router = APIRouter(prefix="/api/v1/admin", dependencies=[Admin], tags=["incidents"])

StateFilter = Literal["open", "acknowledged", "escalated", "resolved", "dismissed", "active", "all"]


class ActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=4000)
    ticket: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=4000)


def admin_token_id(engine: Engine, token: str) -> int | None:
    """The id of the active token behind a bearer token (what `admin-token list` shows)."""
    with engine.connect() as conn:
        found: int | None = conn.scalar(select(admin_tokens.c.id).where(
            admin_tokens.c.token_hash == hash_secret(token), admin_tokens.c.revoked_at.is_(None)))
    return found


@router.get("/incidents", summary="Incidents, newest first (default: the active ones)")
def incidents_list(request: Request, engine: EngineDep, board: str | None = None,
                   school: str | None = None, state: StateFilter = "active") -> list[dict[str, Any]]:
    states = None if state == "all" else ACTIVE_STATES if state == "active" else (state,)
    try:
        with engine.connect() as conn:
            views = list_incidents(conn, board, school, states,
                                   default_timezone=request.app.state.settings.timezone, now=time.time())
    except RegistryError as exc:
        raise HTTPException(404, str(exc)) from None
    return [view.as_dict() for view in views]


@router.get("/incidents/{incident_id}", summary="One incident with its events and time to restore")
def incident_one(incident_id: int, request: Request, engine: EngineDep) -> dict[str, Any]:
    try:
        with engine.connect() as conn:
            return get_incident(conn, incident_id, default_timezone=request.app.state.settings.timezone,
                                now=time.time()).as_dict()
    except UnknownIncident as exc:
        raise HTTPException(404, str(exc)) from None


def _act(action: str) -> Any:
    def act(incident_id: int, request: Request, engine: EngineDep,
            token: Annotated[str, Depends(bearer_token)],
            body: Annotated[ActionBody | None, Body()] = None) -> dict[str, Any]:
        body = body or ActionBody()
        settings = request.app.state.settings
        token_id = admin_token_id(engine, token)
        who = f"admin token {token_id}" if token_id is not None else "admin token"
        actor = f"{body.by.strip()} ({who})" if body.by and body.by.strip() else who
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

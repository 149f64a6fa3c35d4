"""The admin API: the agents and their settings. Signed in or with an admin token
(``Authorization: Bearer``); each board role sees and changes its own board's agents
(collector/routes/scope.py: another board's school is a 404, a change without the right
a 403)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException

from collector.accounts.roles import BOARD_ROLES
from collector.accounts.web import ApiViewer
from collector.agent_settings import update_settings
from collector.deps import EngineDep
from collector.registry import RegistryError, list_agents
from collector.routes.scope import manageable_school, refused

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.get("/agents", summary="The agents (of your board, for a board role) with their school, "
            "version and last report")
def agents(engine: EngineDep, viewer: ApiViewer) -> list[dict[str, Any]]:
    if viewer.is_admin:
        return list_agents(engine)
    if viewer.role not in BOARD_ROLES:
        # An analyst compares providers; the agents (the boxes in the schools) are the boards'.
        raise refused("the agents are for the collector's admin and the boards' own accounts")
    # A board has some hundreds of agents: filtering the list costs less than a second query.
    return [agent for agent in list_agents(engine) if agent["board"] == viewer.board]


@router.put("/schools/{board}/{school}/agent-settings",
            summary="Merge settings into what the school's agents fetch")
def school_settings(board: str, school: str, engine: EngineDep, viewer: ApiViewer,
                    document: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return _update(engine, viewer, board, school, None, document)


@router.put("/schools/{board}/{school}/agents/{agent}/agent-settings",
            summary="Merge settings for one agent (over the school's)")
def agent_settings(board: str, school: str, agent: str, engine: EngineDep, viewer: ApiViewer,
                   document: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return _update(engine, viewer, board, school, agent, document)


def _update(engine: EngineDep, viewer: ApiViewer, board: str, school: str, agent: str | None,
            document: dict[str, Any]) -> dict[str, Any]:
    with engine.connect() as conn:
        manageable_school(conn, viewer, board, school)
    try:
        return update_settings(engine, f"{board}/{school}", agent, document)
    except RegistryError as exc:
        raise HTTPException(404, str(exc)) from None

"""The admin API (``Authorization: Bearer <admin token>``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException

from collector.agent_settings import update_settings
from collector.deps import Admin, EngineDep
from collector.registry import RegistryError, list_agents

router = APIRouter(prefix="/api/v1/admin", dependencies=[Admin], tags=["admin"])


@router.get("/agents", summary="Every agent with its school, version and last report")
def agents(engine: EngineDep) -> list[dict[str, Any]]:
    return list_agents(engine)


@router.put("/schools/{board}/{school}/agent-settings",
            summary="Merge settings into what the school's agents fetch")
def school_settings(board: str, school: str, engine: EngineDep,
                    document: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return _update(engine, f"{board}/{school}", None, document)


@router.put("/schools/{board}/{school}/agents/{agent}/agent-settings",
            summary="Merge settings for one agent (over the school's)")
def agent_settings(board: str, school: str, agent: str, engine: EngineDep,
                   document: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return _update(engine, f"{board}/{school}", agent, document)


def _update(engine: EngineDep, school: str, agent: str | None, document: dict[str, Any]
            ) -> dict[str, Any]:
    try:
        return update_settings(engine, school, agent, document)
    except RegistryError as exc:
        raise HTTPException(404, str(exc)) from None

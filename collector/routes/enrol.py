"""Enrolment (an agent exchanges a code for its credential) and the agent's own settings."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from agent.wire import (
    AGENT_SETTINGS_PATH,
    ENROLL_PATH,
    CentralSettings,
    EnrollRequest,
    EnrollResponse,
)
from collector.agent_settings import settings_for_agent
from collector.deps import CurrentAgent, EngineDep
from collector.registry import NotAllowed, RegistryError, enroll

router = APIRouter()


@router.post(ENROLL_PATH, response_model=EnrollResponse, summary="Enrol an agent with a code")
async def enrol(request: EnrollRequest, engine: EngineDep) -> EnrollResponse:
    try:
        return await run_in_threadpool(enroll, engine, request.code, request.name,
                                       request.version)
    except NotAllowed as exc:
        raise HTTPException(403, str(exc)) from None
    except RegistryError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get(AGENT_SETTINGS_PATH, response_model=CentralSettings,
            summary="The settings the collector holds for the calling agent")
def agent_settings(agent: CurrentAgent, engine: EngineDep, request: Request) -> CentralSettings:
    return settings_for_agent(engine, agent.school_id, agent.id, request.app.state.settings.timezone)

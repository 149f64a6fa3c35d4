"""The verdicts API: a school's lines judged against their contracts, for whoever sees the
school's board (collector/routes/scope.py; another board's school is a 404)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request

from agent.units import parse_duration
from collector.accounts.web import ApiViewer
from collector.deps import EngineDep
from collector.registry import RegistryError
from collector.routes.scope import readable_school
from collector.school_verdicts import school_verdicts

router = APIRouter(prefix="/api/v1/admin", tags=["verdicts"])


@router.get("/schools/{board}/{school}/verdicts",
            summary="The school's verdicts: medians, 80/80, rule sets, capacity, availability")
def verdicts(board: str, school: str, request: Request, engine: EngineDep, viewer: ApiViewer,
             rule_set: Annotated[Literal["acm", "bnetza", "fcc", "giga", "all"] | None,
                                 Query(alias="rule-set")] = None,
             window: Annotated[str | None, Query(description="e.g. 7d, 30d")] = None,
             hours: Literal["school", "outside", "all"] = "all") -> dict[str, Any]:
    with engine.connect() as conn:
        readable_school(conn, viewer, board, school)
    settings = request.app.state.settings
    try:
        seconds = parse_duration(window) if window else settings.verdict_window
    except ValueError as exc:
        raise HTTPException(422, f"window: {exc}") from None
    if seconds <= 0:
        raise HTTPException(422, "window: must be longer than zero")
    try:
        return school_verdicts(engine, f"{board}/{school}", window=seconds, now=time.time(),
                               rule_set=None if rule_set is None or rule_set == "all" else rule_set,
                               all_rule_sets=rule_set == "all", hours=hours,
                               default_timezone=settings.timezone)
    except RegistryError as exc:
        raise HTTPException(404, str(exc)) from None

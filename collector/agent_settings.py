"""Settings the collector holds for agents: a partial agent config per school and per agent.

The agent fetches the merged document (school, then the agent's own on top), caches it,
and lets its local file override it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection, Engine, select

from agent.config import deep_merge
from agent.wire import CentralSettings
from collector.contracts import contract_settings
from collector.db.engine import writer
from collector.db.schema import agent_settings, connections
from collector.registry import RegistryError, find_agent, resolve_school
from collector.results import reattribute


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """``["probes.system.interval=30s", "contract.download_bytes_per_second=12500000"]``
    -> a nested document. Values are JSON when they parse as JSON, else strings."""
    document: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise RegistryError(f"{assignment!r} is not KEY=VALUE (e.g. probes.system.interval=30s)")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = document
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RegistryError(f"{key!r} sets a key under a value that is not a section")
        node[parts[-1]] = value
    return document


def update_settings(engine: Engine, school: str, agent: str | None,
                    changes: dict[str, Any], replace: bool = False) -> dict[str, Any]:
    """Merge ``changes`` into the school's (or one agent's) document; return the result."""
    with writer(engine) as conn, conn.begin():
        school_pk, agent_pk = _scope(conn, school, agent)
        row = conn.execute(select(agent_settings.c.id, agent_settings.c.document)
                           .where(*_where(school_pk, agent_pk))).first()
        document = changes if replace or row is None else deep_merge(row.document, changes)
        pin = document.get("connection")
        if pin is not None:
            _check_pin(conn, school_pk, pin)
        if row is None:
            conn.execute(agent_settings.insert().values(
                school_id=school_pk, agent_id=agent_pk, document=document,
                updated_at=time.time()))
        else:
            conn.execute(agent_settings.update().where(agent_settings.c.id == row.id)
                         .values(document=document, updated_at=time.time()))
        if pin != (row.document.get("connection") if row is not None else None):
            # An agent pinned to a line (a Pi behind the 4G router): its results move with it.
            reattribute(conn, school_pk)
    return document


def _check_pin(conn: Connection, school_pk: int, pin: Any) -> None:
    """``connection`` names one of the school's lines (null unpins)."""
    lines = sorted(conn.scalars(select(connections.c.slug).where(connections.c.school_id == school_pk)))
    if not isinstance(pin, str) or pin not in lines:
        raise RegistryError(f"connection: {pin!r} is not one of the school's lines "
                            f"({', '.join(lines) or 'none registered: import the contracts first'}); "
                            "null unpins")


def show_settings(engine: Engine, school: str, agent: str | None) -> dict[str, Any]:
    with engine.connect() as conn:
        school_pk, agent_pk = _scope(conn, school, agent)
        document = conn.scalar(select(agent_settings.c.document)
                               .where(*_where(school_pk, agent_pk)))
    return document or {}


def settings_for_agent(engine: Engine, school_pk: int, agent_pk: int,
                       default_timezone: str = "UTC") -> CentralSettings:
    with engine.connect() as conn:
        rows = conn.execute(
            select(agent_settings.c.agent_id, agent_settings.c.document,
                   agent_settings.c.updated_at)
            .where(agent_settings.c.school_id == school_pk,
                   (agent_settings.c.agent_id.is_(None)) | (agent_settings.c.agent_id == agent_pk))
        ).all()
        # The registry's contract speeds come first, so an admin's explicit setting (school
        # or agent) still wins; the agent's own file wins over all of it.
        registered = contract_settings(conn, school_pk, default_timezone)
    school_doc = next((r for r in rows if r.agent_id is None), None)
    agent_doc = next((r for r in rows if r.agent_id is not None), None)
    merged = deep_merge(deep_merge(registered, school_doc.document if school_doc else {}),
                        agent_doc.document if agent_doc else {})
    updated = max((r.updated_at for r in rows), default=None)
    return CentralSettings(settings=merged, updated_at_seconds=updated)


def _scope(conn: Connection, school: str, agent: str | None) -> tuple[int, int | None]:
    if agent is None:
        return resolve_school(conn, school)[0], None
    agent_pk, school_pk = find_agent(conn, f"{school}/{agent}")
    return school_pk, agent_pk


def _where(school_pk: int, agent_pk: int | None) -> list[Any]:
    agent_clause = (agent_settings.c.agent_id.is_(None) if agent_pk is None
                    else agent_settings.c.agent_id == agent_pk)
    return [agent_settings.c.school_id == school_pk, agent_clause]

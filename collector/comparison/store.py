"""What the comparison reads from the store, for many schools at once.

One query per table per report (chunked IN lists where a cooperative's thousands of
schools would pass SQLite's parameter limit), never one per school or per test: the
boards, the schools, their main lines and terms, the bandwidth results of those lines,
the agents' first windows and outages, and the provider-responsible incidents.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, literal, select

from collector.availability import Outage, ongoing_outage, recorded_outage
from collector.contracts import TERMS_FIELDS, ConnectionInfo
from collector.db.schema import (
    agents,
    bandwidth_results,
    boards,
    connections,
    connectivity_first_windows,
    contracts,
    incidents,
    latest,
    records,
    schools,
)
from collector.results import StoredResult
from collector.terms import Terms

# Incidents held against the provider in the report: the line's own problems.
INCIDENT_KINDS = ("bandwidth", "outage", "loss", "latency")
_CHUNK = 500


@dataclass(frozen=True)
class BoardRow:
    pk: int
    slug: str
    name: str
    shared: bool  # boards.shared_at set: analysts may see its schools one by one


@dataclass(frozen=True)
class SchoolRow:
    pk: int
    board_pk: int
    slug: str
    name: str
    region: str | None
    pupils: int | None


@dataclass(frozen=True)
class IncidentRow:
    pk: int
    school_pk: int
    connection_pk: int | None
    started_at: float
    restored_at: float | None


@dataclass
class Observation:
    """What availability needs of one school: when it began observing, and its outages."""

    observed_from: float | None = None
    outages: list[Outage] = field(default_factory=list)


def chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for index in range(0, len(items), _CHUNK):
        yield items[index:index + _CHUNK]


def load_boards(conn: Connection) -> dict[int, BoardRow]:
    return {row.id: BoardRow(row.id, row.slug, row.name, row.shared_at is not None)
            for row in conn.execute(select(boards.c.id, boards.c.slug, boards.c.name, boards.c.shared_at))}


def load_schools(conn: Connection, board_pks: Sequence[int]) -> dict[int, SchoolRow]:
    found: dict[int, SchoolRow] = {}
    for pks in chunks(sorted(board_pks)):
        for row in conn.execute(select(schools.c.id, schools.c.board_id, schools.c.slug, schools.c.name,
                                       schools.c.region, schools.c.pupils)
                                .where(schools.c.board_id.in_(pks))):
            found[row.id] = SchoolRow(row.id, row.board_id, row.slug, row.name, row.region, row.pupils)
    return found


def load_main_lines(conn: Connection, school_pks: Sequence[int]) -> dict[int, list[ConnectionInfo]]:
    """Each school's main lines with their terms (oldest first). A backup line is not what
    a board buys the school for, so the report leaves it out."""
    rows: list[Any] = []
    for pks in chunks(sorted(school_pks)):
        rows.extend(conn.execute(select(connections)
                                 .where(connections.c.school_id.in_(pks), connections.c.role == "main")
                                 .order_by(connections.c.school_id, connections.c.slug)))
    terms: dict[int, list[Terms]] = defaultdict(list)
    for pks in chunks([row.id for row in rows]):
        for term in conn.execute(select(contracts).where(contracts.c.connection_id.in_(pks))
                                 .order_by(contracts.c.connection_id, contracts.c.starts_on)):
            terms[term.connection_id].append(Terms(
                starts_on=dt.date.fromisoformat(term.starts_on),
                ends_on=dt.date.fromisoformat(term.ends_on) if term.ends_on else None,
                **{name: getattr(term, name) for name in TERMS_FIELDS if name != "ends_on"}))
    lines: dict[int, list[ConnectionInfo]] = defaultdict(list)
    for row in rows:
        lines[row.school_id].append(ConnectionInfo(
            id=row.id, school_id=row.school_id, slug=row.slug, provider=row.provider,
            provider_id=row.provider_id, technology=row.technology, role=row.role,
            networks=tuple(row.networks), support_contact=row.support_contact,
            terms=tuple(terms[row.id])))
    return lines


def load_results(conn: Connection, line_pks: Sequence[int], since: float, until: float
                 ) -> dict[int, list[StoredResult]]:
    """The results attributed to these lines measured in [since, until), oldest first, by
    line. (Only what measurements_of reads is filled in beyond the row's identity.)"""
    columns = (bandwidth_results.c.id, bandwidth_results.c.school_id, bandwidth_results.c.agent_id,
               bandwidth_results.c.source, bandwidth_results.c.connection_id,
               bandwidth_results.c.attribution, bandwidth_results.c.measured_at,
               bandwidth_results.c.download_bytes_per_second, bandwidth_results.c.upload_bytes_per_second,
               bandwidth_results.c.latency_seconds, bandwidth_results.c.valid,
               bandwidth_results.c.backend, bandwidth_results.c.server,
               bandwidth_results.c.concurrent_devices)
    by_line: dict[int, list[StoredResult]] = defaultdict(list)
    for pks in chunks(sorted(line_pks)):
        query = (select(*columns)
                 .where(bandwidth_results.c.connection_id.in_(pks),
                        bandwidth_results.c.measured_at >= since, bandwidth_results.c.measured_at < until)
                 .order_by(bandwidth_results.c.measured_at, bandwidth_results.c.id))
        for row in conn.execute(query):
            by_line[row.connection_id].append(StoredResult(
                id=row.id, school_id=row.school_id, agent_id=row.agent_id, record_id=None,
                import_key=None, source=row.source, connection_id=row.connection_id,
                attribution=row.attribution, measured_at=row.measured_at,
                download_bytes_per_second=row.download_bytes_per_second,
                upload_bytes_per_second=row.upload_bytes_per_second,
                latency_seconds=row.latency_seconds, valid=bool(row.valid), invalid_reasons=(),
                backend=row.backend, server=row.server, concurrent_devices=row.concurrent_devices,
                connection_slug=None))
    return by_line


def load_observations(conn: Connection, school_pks: Sequence[int], since: float, until: float
                      ) -> dict[int, Observation]:
    """Per school, as collector/school_verdicts.school_outages reads one: when it began
    observing (its agents' earliest connectivity window, not before the agent enrolled),
    the ended outages touching [since, until) and the one under way at each agent's latest
    window."""
    agent_school: dict[int, int] = {}
    for pks in chunks(sorted(school_pks)):
        agent_school.update((row.id, row.school_id) for row in conn.execute(
            select(agents.c.id, agents.c.school_id).where(agents.c.school_id.in_(pks))))
    found: dict[int, Observation] = {}
    agent_pks = sorted(agent_school)
    for pks in chunks(agent_pks):
        for row in conn.execute(
                select(connectivity_first_windows.c.agent_id, connectivity_first_windows.c.first_window_at,
                       agents.c.created_at)
                .join(agents, agents.c.id == connectivity_first_windows.c.agent_id)
                .where(connectivity_first_windows.c.agent_id.in_(pks))):
            seen = found.setdefault(agent_school[row.agent_id], Observation())
            first = max(row.first_window_at, row.created_at)
            seen.observed_from = first if seen.observed_from is None else min(seen.observed_from, first)
        # The kind as a literal so SQLite may use the partial index on outage records; an
        # outage record's clock is its end.
        for outage_agent, payload in conn.execute(
                select(records.c.agent_id, records.c.payload)
                .where(records.c.agent_id.in_(pks),
                       records.c.kind == literal("outage", literal_execute=True),
                       records.c.measured_at >= since, records.c.ok)):
            outage = recorded_outage(payload)
            if outage is not None and outage.start < until:
                found.setdefault(agent_school[outage_agent], Observation()).outages.append(outage)
        for agent_pk, measured_at, payload in conn.execute(
                select(latest.c.agent_id, latest.c.measured_at, latest.c.payload)
                .where(latest.c.agent_id.in_(pks), latest.c.kind == "connectivity")):
            ongoing = ongoing_outage(payload or {}, measured_at) if measured_at is not None else None
            if ongoing is not None and ongoing.end >= since:
                found.setdefault(agent_school[agent_pk], Observation()).outages.append(ongoing)
    return found


def load_incidents(conn: Connection, school_pks: Sequence[int], since: float, until: float
                   ) -> dict[int, list[IncidentRow]]:
    """The provider-responsible incidents of the line's own kinds that started in [since,
    until), by school."""
    by_school: dict[int, list[IncidentRow]] = defaultdict(list)
    for pks in chunks(sorted(school_pks)):
        for row in conn.execute(
                select(incidents.c.id, incidents.c.school_id, incidents.c.connection_id,
                       incidents.c.started_at, incidents.c.restored_at)
                .where(incidents.c.school_id.in_(pks), incidents.c.responsible == "provider",
                       incidents.c.kind.in_(INCIDENT_KINDS),
                       incidents.c.started_at >= since, incidents.c.started_at < until)):
            by_school[row.school_id].append(
                IncidentRow(row.id, row.school_id, row.connection_id, row.started_at, row.restored_at))
    return by_school

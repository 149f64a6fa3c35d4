"""Incidents on ``/metrics``: how many are active per school, kind and state, and since when.

Read from the store at every scrape (one grouped query each over the active incidents, a
small set). A provider-wide incident has no school: its series carry school="" and its
board's id, or board="" when its schools are in several boards. No series = no active
incident (zeros are not written: schools by kinds by states would be mostly zeros).
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from collector.db.schema import boards, incidents, schools
from collector.exposition import Family
from collector.incidents.model import ACTIVE_STATES


def incident_families(conn: Connection) -> list[Family]:
    active = incidents.c.state.in_(ACTIVE_STATES)
    base = (select(func.coalesce(boards.c.slug, "").label("board"),
                   func.coalesce(schools.c.slug, "").label("school"))
            .select_from(incidents)
            .outerjoin(schools, schools.c.id == incidents.c.school_id)
            .outerjoin(boards, boards.c.id == incidents.c.board_id).where(active))
    counts = Family("schoolnet_incidents_active",
                    "Active incidents (open, acknowledged or escalated), a count by school, kind and "
                    "state; school is empty for a provider-wide incident", "gauge",
                    ("board", "school", "kind", "state"))
    for row in conn.execute(base.add_columns(incidents.c.kind, incidents.c.state, func.count())
                            .group_by("board", "school", incidents.c.kind, incidents.c.state)
                            .order_by("board", "school", incidents.c.kind, incidents.c.state)):
        counts.add((row.board, row.school, row.kind, row.state), float(row[4]))
    oldest = Family("schoolnet_incident_oldest_active_start_timestamp_seconds",
                    "When the oldest active incident of the school began, Unix seconds",
                    "gauge", ("board", "school"))
    for row in conn.execute(base.add_columns(func.min(incidents.c.started_at))
                            .group_by("board", "school").order_by("board", "school")):
        oldest.add((row.board, row.school), float(row[2]))
    return [counts, oldest]

"""connectivity: outage totals, first windows and the index of recent outages

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-11 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_KINDS = ("isp", "lan", "dns", "internet")


def upgrade() -> None:
    totals = op.create_table(
        "connectivity_outage_totals",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("outage_kind", sa.String(length=16), nullable=False),
        sa.Column("outages_total", sa.BigInteger(), nullable=False),
        sa.Column("outage_seconds_total", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.PrimaryKeyConstraint("agent_id", "outage_kind"),
    )
    first_windows = op.create_table(
        "connectivity_first_windows",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("first_window_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.PrimaryKeyConstraint("agent_id"),
    )
    outage_only = sa.text("kind = 'outage'")
    op.create_index("ix_records_outage_end", "records", ["measured_at"], unique=False,
                    sqlite_where=outage_only, postgresql_where=outage_only)
    _start_from_stored_records(totals, first_windows)


def _start_from_stored_records(totals: sa.Table, first_windows: sa.Table) -> None:
    """Start the totals and first windows from the records already stored, so that they
    mean "since the agent enrolled" on an upgraded store too (the same rules as ingest)."""
    records = sa.table("records", sa.column("agent_id", sa.Integer), sa.column("kind", sa.String),
                       sa.column("ok", sa.Boolean), sa.column("measured_at", sa.Float),
                       sa.column("payload", sa.JSON))
    connection = op.get_bind()
    sums: dict[tuple[int, str], list[float]] = {}
    rows = connection.execute(sa.select(records.c.agent_id, records.c.payload)
                              .where(records.c.kind == "outage", records.c.ok))
    for agent_id, payload in rows:
        payload = payload if isinstance(payload, dict) else {}
        kind = payload.get("outage_kind")
        if kind not in _KINDS:
            continue
        added = sums.setdefault((agent_id, kind), [0, 0.0])
        added[0] += 1
        added[1] += _seconds(payload.get("duration_seconds"))
    if sums:
        op.bulk_insert(totals, [{"agent_id": agent_id, "outage_kind": kind, "outages_total": count,
                                 "outage_seconds_total": seconds}
                                for (agent_id, kind), (count, seconds) in sums.items()])
    firsts = connection.execute(
        sa.select(records.c.agent_id, sa.func.min(records.c.measured_at))
        .where(records.c.kind == "connectivity", records.c.ok).group_by(records.c.agent_id)).all()
    if firsts:
        op.bulk_insert(first_windows, [{"agent_id": agent_id, "first_window_at": first}
                                       for agent_id, first in firsts])


def _seconds(value: object) -> float:
    """A stored duration as a float (the payload keeps what the agent sent: "12" passed
    validation as 12)."""
    try:
        return max(0.0, float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def downgrade() -> None:
    op.drop_index("ix_records_outage_end", table_name="records")
    op.drop_table("connectivity_first_windows")
    op.drop_table("connectivity_outage_totals")

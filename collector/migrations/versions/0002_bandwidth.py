"""bandwidth: the school's test lease and per-agent bandwidth totals

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bandwidth_leases",
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("lease_id", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.ForeignKeyConstraint(["school_id"], ["schools.id"]),
        sa.PrimaryKeyConstraint("school_id"),
        sa.UniqueConstraint("lease_id"),
    )
    totals = op.create_table(
        "bandwidth_totals",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("download_bytes_total", sa.BigInteger(), nullable=False),
        sa.Column("upload_bytes_total", sa.BigInteger(), nullable=False),
        sa.Column("tests_valid_total", sa.BigInteger(), nullable=False),
        sa.Column("tests_invalid_total", sa.BigInteger(), nullable=False),
        sa.Column("tests_failed_total", sa.BigInteger(), nullable=False),
        sa.Column("tests_skipped_total", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.PrimaryKeyConstraint("agent_id"),
    )
    _count_stored_tests(totals)


def _count_stored_tests(totals: sa.Table) -> None:
    """Start the totals from the bandwidth records already stored, so that they mean
    "since the agent enrolled" on an upgraded store too (the same rules as ingest)."""
    records = sa.table("records", sa.column("agent_id", sa.Integer), sa.column("kind", sa.String),
                       sa.column("ok", sa.Boolean), sa.column("error", sa.Text),
                       sa.column("payload", sa.JSON))
    sums: dict[int, dict[str, int]] = {}
    connection = op.get_bind()
    rows = connection.execute(sa.select(records.c.agent_id, records.c.ok, records.c.error,
                                        records.c.payload).where(records.c.kind == "bandwidth"))
    for agent_id, ok, error, payload in rows:
        added = sums.setdefault(agent_id, dict.fromkeys(_TOTALS, 0))
        payload = payload if isinstance(payload, dict) else {}
        added["download_bytes_total"] += _whole(payload.get("download_bytes"))
        added["upload_bytes_total"] += _whole(payload.get("upload_bytes"))
        result = ("skipped" if not ok and (error or "").startswith("skipped: ") else "failed" if not ok
                  else "invalid" if payload.get("invalid_reasons") else "valid")
        added[f"tests_{result}_total"] += 1
    if sums:
        op.bulk_insert(totals, [{"agent_id": agent_id, **{k: min(v, _INT64_MAX) for k, v in added.items()}}
                                for agent_id, added in sums.items()])


_TOTALS = ("download_bytes_total", "upload_bytes_total", "tests_valid_total",
           "tests_invalid_total", "tests_failed_total", "tests_skipped_total")
_INT64_MAX = 2**63 - 1


def _whole(value: object) -> int:
    """A stored byte count as an int (the payload keeps what the agent sent: "12" passed
    validation as 12)."""
    try:
        return max(0, int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def downgrade() -> None:
    op.drop_table("bandwidth_totals")
    op.drop_table("bandwidth_leases")

"""contracts, calendar and verdicts: school details, connections and their contract terms,
holidays, one row per bandwidth result (attributed to a connection), daily aggregates

Revision ID: 0005
Revises: 0004
Create Date: 2027-03-01 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("holidays",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("calendar", sa.String(length=200), nullable=False),
    sa.Column("starts_on", sa.String(length=10), nullable=False),
    sa.Column("ends_on", sa.String(length=10), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("calendar", "starts_on", "ends_on", "name")
    )
    op.create_table("connections",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("school_id", sa.Integer(), nullable=False),
    sa.Column("slug", sa.String(length=63), nullable=False),
    sa.Column("provider", sa.String(length=200), nullable=False),
    sa.Column("provider_id", sa.String(length=63), nullable=False),
    sa.Column("technology", sa.String(length=16), nullable=False),
    sa.Column("role", sa.String(length=16), nullable=False),
    sa.Column("networks", sa.JSON(), nullable=False),
    sa.Column("support_contact", sa.String(length=300), nullable=True),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(["school_id"], ["schools.id"], ),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("school_id", "slug")
    )
    op.create_table("daily_aggregates",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("school_id", sa.Integer(), nullable=False),
    sa.Column("scope", sa.String(length=80), nullable=False),
    sa.Column("day", sa.String(length=10), nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.Column("updated_at", sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(["school_id"], ["schools.id"], ),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("school_id", "scope", "day", "kind")
    )
    op.create_table("bandwidth_results",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("school_id", sa.Integer(), nullable=False),
    sa.Column("agent_id", sa.Integer(), nullable=True),
    sa.Column("record_id", sa.BigInteger(), nullable=True),
    sa.Column("import_key", sa.String(length=64), nullable=True),
    sa.Column("source", sa.String(length=16), nullable=False),
    sa.Column("connection_id", sa.Integer(), nullable=True),
    sa.Column("attribution", sa.String(length=64), nullable=False),
    sa.Column("measured_at", sa.Float(), nullable=False),
    sa.Column("download_bytes_per_second", sa.Float(), nullable=True),
    sa.Column("upload_bytes_per_second", sa.Float(), nullable=True),
    sa.Column("latency_seconds", sa.Float(), nullable=True),
    sa.Column("valid", sa.Boolean(), nullable=False),
    sa.Column("invalid_reasons", sa.JSON(), nullable=False),
    sa.Column("backend", sa.String(length=32), nullable=False),
    sa.Column("server", sa.String(length=500), nullable=False),
    sa.Column("concurrent_devices", sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ),
    sa.ForeignKeyConstraint(["connection_id"], ["connections.id"], ),
    sa.ForeignKeyConstraint(["school_id"], ["schools.id"], ),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("import_key"),
    sa.UniqueConstraint("record_id")
    )
    op.create_index("ix_bandwidth_results_school_time", "bandwidth_results",
                    ["school_id", "measured_at"], unique=False)
    op.create_table("contracts",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("connection_id", sa.Integer(), nullable=False),
    sa.Column("starts_on", sa.String(length=10), nullable=False),
    sa.Column("ends_on", sa.String(length=10), nullable=True),
    sa.Column("download_advertised", sa.Float(), nullable=False),
    sa.Column("upload_advertised", sa.Float(), nullable=False),
    sa.Column("download_minimum", sa.Float(), nullable=True),
    sa.Column("upload_minimum", sa.Float(), nullable=True),
    sa.Column("download_normal", sa.Float(), nullable=True),
    sa.Column("upload_normal", sa.Float(), nullable=True),
    sa.Column("download_maximum", sa.Float(), nullable=True),
    sa.Column("upload_maximum", sa.Float(), nullable=True),
    sa.Column("monthly_cost", sa.Float(), nullable=True),
    sa.Column("currency", sa.String(length=3), nullable=True),
    sa.Column("sla_response_seconds", sa.Float(), nullable=True),
    sa.Column("sla_restore_seconds", sa.Float(), nullable=True),
    sa.Column("updated_at", sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(["connection_id"], ["connections.id"], ),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("connection_id", "starts_on")
    )
    op.add_column("boards", sa.Column("rule_set", sa.String(length=16), nullable=True))
    op.add_column("boards", sa.Column("policy", sa.JSON(), nullable=True))
    op.add_column("schools", sa.Column("external_id", sa.String(length=64), nullable=True))
    op.add_column("schools", sa.Column("pupils", sa.Integer(), nullable=True))
    op.add_column("schools", sa.Column("address", sa.String(length=300), nullable=True))
    op.add_column("schools", sa.Column("postcode", sa.String(length=16), nullable=True))
    op.add_column("schools", sa.Column("city", sa.String(length=100), nullable=True))
    op.add_column("schools", sa.Column("region", sa.String(length=100), nullable=True))
    op.add_column("schools", sa.Column("latitude", sa.Float(), nullable=True))
    op.add_column("schools", sa.Column("longitude", sa.Float(), nullable=True))
    op.add_column("schools", sa.Column("timezone", sa.String(length=64), nullable=True))
    op.add_column("schools", sa.Column("hours_start", sa.String(length=5), nullable=True))
    op.add_column("schools", sa.Column("hours_end", sa.String(length=5), nullable=True))
    op.add_column("schools", sa.Column("school_days", sa.String(length=16), nullable=True))
    op.add_column("schools", sa.Column("video_participants", sa.Integer(), nullable=True))
    _backfill_bandwidth_results()


def _backfill_bandwidth_results() -> None:
    """The bandwidth tests stored before this revision become results too (attributed to
    no connection: there were none), so verdicts see the history the store already has."""
    bind = op.get_bind()
    records = sa.table("records", sa.column("id"), sa.column("agent_id"), sa.column("kind"),
                       sa.column("ok"), sa.column("measured_at"), sa.column("payload", sa.JSON))
    agents = sa.table("agents", sa.column("id"), sa.column("school_id"))
    results = sa.table(
        "bandwidth_results", *(sa.column(name) for name in (
            "school_id", "agent_id", "record_id", "source", "attribution", "measured_at",
            "download_bytes_per_second", "upload_bytes_per_second", "latency_seconds", "valid",
            "backend", "server", "concurrent_devices")),
        sa.column("invalid_reasons", sa.JSON))
    query = (sa.select(records.c.id, records.c.agent_id, records.c.measured_at,
                       records.c.payload, agents.c.school_id)
             .join(agents, agents.c.id == records.c.agent_id)
             .where(records.c.kind == "bandwidth", records.c.ok == sa.true())
             .order_by(records.c.id))
    rows = []
    for row in bind.execute(query):
        payload = row.payload or {}
        reasons = payload.get("invalid_reasons") or []
        devices = payload.get("concurrent_devices")
        rows.append({
            "school_id": row.school_id, "agent_id": row.agent_id, "record_id": row.id,
            "source": "agent", "attribution": "none", "measured_at": row.measured_at,
            "download_bytes_per_second": payload.get("download_bytes_per_second"),
            "upload_bytes_per_second": payload.get("upload_bytes_per_second"),
            "latency_seconds": payload.get("idle_latency_seconds"),
            "valid": not reasons, "invalid_reasons": reasons,
            "backend": str(payload.get("backend", ""))[:32],
            "server": str(payload.get("server", ""))[:500],
            "concurrent_devices": devices if isinstance(devices, int) and devices < 2**31 else None,
        })
        if len(rows) >= 1000:
            bind.execute(results.insert(), rows)
            rows = []
    if rows:
        bind.execute(results.insert(), rows)


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+, PostgreSQL): batch mode would copy and
    # drop `schools`, which the foreign keys of agents and codes forbid.
    for column in ("video_participants", "school_days", "hours_end", "hours_start", "timezone",
                   "longitude", "latitude", "region", "city", "postcode", "address", "pupils",
                   "external_id"):
        op.drop_column("schools", column)
    op.drop_column("boards", "policy")
    op.drop_column("boards", "rule_set")
    op.drop_table("contracts")
    op.drop_index("ix_bandwidth_results_school_time", table_name="bandwidth_results")
    op.drop_table("bandwidth_results")
    op.drop_table("daily_aggregates")
    op.drop_table("connections")
    op.drop_table("holidays")

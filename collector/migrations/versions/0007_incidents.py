"""incidents: incidents with their events, notifications and share links; what they need of
the registry (a board's escalation contact, a school's own contact, a contract's SLA clock,
the kind of a calendar's days)

Revision ID: 0007
Revises: 0006
Create Date: 2027-05-01 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("boards", sa.Column("escalation", sa.JSON(), nullable=True))
    op.add_column("schools", sa.Column("contact_name", sa.String(length=200), nullable=True))
    op.add_column("schools", sa.Column("contact_email", sa.String(length=320), nullable=True))
    op.add_column("schools", sa.Column("contact_phone", sa.String(length=64), nullable=True))
    op.add_column("contracts", sa.Column("sla_clock", sa.String(length=16), nullable=True))
    # Every stored day so far was a day without school.
    op.add_column("holidays", sa.Column("kind", sa.String(length=16), nullable=False,
                                        server_default="holiday"))
    op.create_table(
        "incidents",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("board_id", sa.Integer(), nullable=True),
        sa.Column("school_id", sa.Integer(), nullable=True),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", BigId, nullable=True),
        sa.Column("provider_id", sa.String(length=63), nullable=True),
        sa.Column("provider", sa.String(length=200), nullable=True),
        sa.Column("responsible", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("detected_at", sa.Float(), nullable=False),
        sa.Column("last_evidence_at", sa.Float(), nullable=False),
        sa.Column("acknowledged_at", sa.Float(), nullable=True),
        sa.Column("escalated_at", sa.Float(), nullable=True),
        sa.Column("restored_at", sa.Float(), nullable=True),
        sa.Column("closed_at", sa.Float(), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("ticket", sa.String(length=100), nullable=True),
        sa.Column("impact", sa.String(length=16), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("assessment", sa.JSON(), nullable=False),
        sa.Column("sla_restore_seconds", sa.Float(), nullable=True),
        sa.Column("sla_clock", sa.String(length=16), nullable=True),
        sa.Column("sla_deadline_at", sa.Float(), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["board_id"], ["boards.id"]),
        sa.ForeignKeyConstraint(["school_id"], ["schools.id"]),
        sa.ForeignKeyConstraint(["connection_id"], ["connections.id"]),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"]),
        sa.ForeignKeyConstraint(["parent_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incidents_school_state", "incidents", ["school_id", "state"])
    op.create_index("ix_incidents_parent", "incidents", ["parent_id"])
    op.create_index("uq_incidents_active_key", "incidents", ["key"], unique=True,
                    sqlite_where=sa.text("closed_at IS NULL"),
                    postgresql_where=sa.text("closed_at IS NULL"))
    op.create_table(
        "incident_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("incident_id", BigId, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incident_events_incident", "incident_events", ["incident_id", "at"])
    op.create_table(
        "incident_notifications",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("incident_id", BigId, nullable=False),
        sa.Column("event_id", BigId, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["event_id"], ["incident_events.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incident_notifications_due", "incident_notifications",
                    ["status", "next_attempt_at"])
    op.create_table(
        "incident_shares",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", BigId, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("incident_shares")
    op.drop_index("ix_incident_notifications_due", table_name="incident_notifications")
    op.drop_table("incident_notifications")
    op.drop_index("ix_incident_events_incident", table_name="incident_events")
    op.drop_table("incident_events")
    op.drop_index("uq_incidents_active_key", table_name="incidents")
    op.drop_index("ix_incidents_parent", table_name="incidents")
    op.drop_index("ix_incidents_school_state", table_name="incidents")
    op.drop_table("incidents")
    # Exam periods are not days without school: without their kind they would become
    # holidays, so they go (an older collector has no use for them).
    op.get_bind().execute(sa.text("DELETE FROM holidays WHERE kind = 'exams'"))
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL), as in 0005.
    op.drop_column("holidays", "kind")
    op.drop_column("contracts", "sla_clock")
    op.drop_column("schools", "contact_phone")
    op.drop_column("schools", "contact_email")
    op.drop_column("schools", "contact_name")
    op.drop_column("boards", "escalation")

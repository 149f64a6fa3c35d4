"""rooms: rooms of a school, their observations, and the newest one per room and source

Revision ID: 0004
Revises: 0003
Create Date: 2027-02-01 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("named_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["school_id"], ["schools.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("school_id", "slug"),
    )
    op.create_table(
        "room_observations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("measured_at", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("signal_dbm", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_room_observations_room_time", "room_observations", ["room_id", "measured_at"],
                    unique=False)
    op.create_table(
        "room_latest",
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("measured_at", sa.Float(), nullable=False),
        sa.Column("signal_dbm", sa.Float(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("observations_total", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"]),
        sa.PrimaryKeyConstraint("room_id", "source"),
    )
    # Nothing to start from: a store before this revision refused the kinds that name
    # rooms (wifi, wifi_scan, survey) as unknown, so it holds none of them.


def downgrade() -> None:
    op.drop_table("room_latest")
    op.drop_index("ix_room_observations_room_time", table_name="room_observations")
    op.drop_table("room_observations")
    op.drop_table("rooms")

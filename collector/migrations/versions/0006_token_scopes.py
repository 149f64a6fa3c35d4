"""token scopes: an admin token may be limited to reading /metrics

Revision ID: 0006
Revises: 0005
Create Date: 2027-04-01 09:00:00.000000
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every token made before this revision could use the admin API: it stays an admin token.
    op.add_column("admin_tokens", sa.Column("scope", sa.String(length=16), nullable=False,
                                            server_default="admin"))


def downgrade() -> None:
    # A metrics token would become an admin token without its column: revoke it instead.
    op.get_bind().execute(
        sa.text("UPDATE admin_tokens SET revoked_at = :now WHERE scope <> 'admin' AND revoked_at IS NULL"),
        {"now": time.time()})
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL), as in 0005.
    op.drop_column("admin_tokens", "scope")

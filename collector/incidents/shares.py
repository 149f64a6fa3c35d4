"""Share links: one incident's evidence pack for someone without a token (the provider's
helpdesk). The secret travels in the URL (``?share=``); the store keeps only its SHA-256,
so a copy of the database opens no pack. A link expires and can be revoked; it opens
that one incident's page, PDF, CSV and JSON, and nothing else.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Connection, insert, select, update

from collector.db.schema import incident_shares, incidents

# A link is for an escalation: weeks, not years.
MAX_VALID_FOR_SECONDS = 366 * 86400.0


def incident_url(public_url: str, incident_pk: int, share: str | None = None) -> str:
    """The incident's page as people reach it (SCHOOLNET_PUBLIC_URL), with a share secret
    when the link is for someone without a token."""
    url = f"{public_url.rstrip('/')}/incidents/{incident_pk}"
    return f"{url}?share={share}" if share else url


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_share(conn: Connection, incident_pk: int, valid_for: float, now: float) -> str:
    """A new secret for ``incident_pk``, valid for ``valid_for`` seconds from ``now``."""
    if not 0 < valid_for <= MAX_VALID_FOR_SECONDS:
        raise ValueError("a share link is valid for more than 0 seconds and at most 366 days")
    if conn.execute(select(incidents.c.id).where(incidents.c.id == incident_pk)).first() is None:
        raise LookupError(f"no incident {incident_pk}")
    secret = secrets.token_urlsafe(32)
    conn.execute(
        insert(incident_shares).values(
            incident_id=incident_pk, token_hash=_hash(secret), created_at=now, expires_at=now + valid_for
        )
    )
    return secret


def share_allows(conn: Connection, incident_pk: int, secret: str, now: float) -> bool:
    """True when ``secret`` is a link to this incident that has not expired or been revoked."""
    if not secret or len(secret) > 200:
        return False
    row = conn.execute(
        select(
            incident_shares.c.incident_id, incident_shares.c.expires_at, incident_shares.c.revoked_at
        ).where(incident_shares.c.token_hash == _hash(secret))
    ).first()
    return (
        row is not None and row.incident_id == incident_pk and row.revoked_at is None and now < row.expires_at
    )


def revoke_shares(conn: Connection, incident_pk: int, now: float) -> int:
    """Revoke every live link of the incident; how many were."""
    result = conn.execute(
        update(incident_shares)
        .where(incident_shares.c.incident_id == incident_pk, incident_shares.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)

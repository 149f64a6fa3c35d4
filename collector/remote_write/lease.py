"""A job that one replica at a time does, held by a lease row in ``singleton_leases``.

The holder renews its lease each time it does the job; when it dies, another replica
takes the lease once it has expired. One upsert decides (as in collector/leases.py): it
replaces the row only when the lease has ended or the asker already holds it, so two
replicas asking at once cannot both win.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Engine, bindparam
from sqlalchemy.dialects import postgresql, sqlite

from collector.db.engine import writer
from collector.db.schema import singleton_leases


def hold(engine: Engine, name: str, holder: str, now: float, seconds: float) -> bool:
    """Take or renew the lease ``name`` for ``holder`` until ``now + seconds``; whether
    ``holder`` holds it now."""
    with writer(engine) as conn, conn.begin():
        taken = conn.execute(_statement(engine.dialect.name), {
            "name": name, "holder": holder, "expires_at": now + seconds, "now": now}).first()
    return taken is not None


@functools.cache
def _statement(dialect_name: str) -> Any:
    dialect: Any = postgresql if dialect_name == "postgresql" else sqlite
    upsert = dialect.insert(singleton_leases).values(
        name=bindparam("name"), holder=bindparam("holder"), expires_at=bindparam("expires_at"))
    current = singleton_leases.c
    return upsert.on_conflict_do_update(
        index_elements=["name"],
        set_={"holder": upsert.excluded.holder, "expires_at": upsert.excluded.expires_at},
        where=(current.expires_at <= bindparam("now")) | (current.holder == upsert.excluded.holder),
    ).returning(current.holder)

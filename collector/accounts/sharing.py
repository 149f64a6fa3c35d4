"""A board's consent that the cooperative's analysts see its schools one by one.

Unshared (``boards.shared_at`` null), an analyst sees the board's schools only inside
aggregates of at least AGGREGATE_MINIMUM schools (collector/accounts/roles.py); shared, in
the comparison report's per-school rows as well. Sharing again keeps the first date.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select, update

from collector.db.engine import writer
from collector.db.schema import boards


class UnknownBoard(ValueError):
    """No board with that id; the message is one line."""


@dataclass(frozen=True)
class BoardSharing:
    id: int
    slug: str
    name: str
    shared_at: float | None

    @property
    def shared(self) -> bool:
        return self.shared_at is not None


def board_sharing(engine: Engine, board: str) -> BoardSharing:
    with engine.connect() as conn:
        return _board(conn, board)


def set_board_shared(engine: Engine, board: str, shared: bool, now: float | None = None) -> BoardSharing:
    now = time.time() if now is None else now
    with writer(engine) as conn, conn.begin():
        current = _board(conn, board)
        if shared != current.shared:
            conn.execute(update(boards).where(boards.c.id == current.id)
                         .values(shared_at=now if shared else None))
    return board_sharing(engine, board)


def _board(conn: Connection, board: str) -> BoardSharing:
    row = conn.execute(select(boards.c.id, boards.c.slug, boards.c.name, boards.c.shared_at)
                       .where(boards.c.slug == board)).first()
    if row is None:
        raise UnknownBoard(f"no board with id {board!r} (see: board list)")
    return BoardSharing(row.id, row.slug, row.name, row.shared_at)

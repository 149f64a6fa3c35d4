"""What a route asks of the store before it asks the Viewer: which board a school, an
incident or a board id belongs to, and whether that board has shared its schools.

The answers when the viewer may not (the same everywhere, so every route is alike):

- a thing of a board the viewer may not *see* answers 404, with the very words a thing that
  does not exist gets, so a board's user cannot find out which schools or incidents another
  board has;
- a thing the viewer sees but may not *change* (a board viewer, an analyst) answers 403;
- a request that is not about one thing (the whole contracts file, the agents of every
  board) answers 403 to a role that may not make it.

Provider-wide incidents (no board) name every board's schools: the collector's admin only
(404 to every other role, analysts too); a board sees its own school's incident, which links
to it by id.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from fastapi import HTTPException
from sqlalchemy import Connection, select

from collector.accounts.roles import Viewer
from collector.db.schema import boards, incidents, schools
from collector.registry import RegistryError


@dataclass(frozen=True)
class BoardScope:
    """The boards a viewer sees one by one (ids -> slugs), and whether it sees incidents
    that belong to no board."""

    boards: dict[int, str]
    provider_wide: bool

    @property
    def ids(self) -> Collection[int]:
        return self.boards.keys()

    @property
    def slugs(self) -> set[str]:
        return set(self.boards.values())


def refused(detail: str = "your role may not do this") -> HTTPException:
    return HTTPException(403, detail)


def sees_provider_wide(viewer: Viewer) -> bool:
    # A provider-wide incident names every school it links, of every board, with each
    # school's figures: the collector's admin only (an analyst would see the schools of
    # boards that have not shared; a board sees its own school's incident, which links here).
    return viewer.is_admin


def board_scope(conn: Connection, viewer: Viewer) -> BoardScope:
    rows = conn.execute(select(boards.c.id, boards.c.slug, boards.c.shared_at)).all()
    readable = {row.id: row.slug for row in rows
                if viewer.may_read_board(row.id, row.shared_at is not None)}
    return BoardScope(readable, sees_provider_wide(viewer))


def _board(conn: Connection, slug: str) -> tuple[int, bool] | None:
    row = conn.execute(select(boards.c.id, boards.c.shared_at).where(boards.c.slug == slug)).first()
    return None if row is None else (int(row.id), row.shared_at is not None)


def readable_board(conn: Connection, viewer: Viewer, slug: str, missing: str) -> int:
    """The board's id, or 404 with ``missing`` (what an unknown board gets) when it does
    not exist or the viewer may not see it."""
    found = _board(conn, slug)
    if found is None or not viewer.may_read_board(*found):
        raise HTTPException(404, missing)
    return found[0]


def manageable_board(conn: Connection, viewer: Viewer, slug: str, missing: str) -> int:
    """As readable_board, and 403 when the viewer sees the board but may not change it."""
    board_id = readable_board(conn, viewer, slug, missing)
    if not viewer.may_manage_board(board_id):
        raise refused("only this board's admins (or the collector's admin) may change this")
    return board_id


def school_missing(board: str, school: str) -> str:
    # collector/registry.py resolve_school's words for a school that does not exist.
    return f"no school {f'{board}/{school}'!r} (see: school list)"


def readable_school(conn: Connection, viewer: Viewer, board: str, school: str) -> None:
    """404 (as for no such school) unless the viewer sees the school's board. Whether the
    school itself exists is left to the route, which says so in the same words."""
    readable_board(conn, viewer, board, school_missing(board, school))


def manageable_school(conn: Connection, viewer: Viewer, board: str, school: str) -> None:
    manageable_board(conn, viewer, board, school_missing(board, school))


def incident_missing(incident_id: int) -> str:
    # collector/incidents/views.py get_incident's words for an incident that does not exist.
    return f"no incident {incident_id} (see: incident list)"


def _incident_board(conn: Connection, incident_id: int) -> tuple[bool, int | None, bool]:
    """(exists, its board or None, that board shared)."""
    row = conn.execute(select(incidents.c.board_id, boards.c.shared_at)
                       .outerjoin(boards, boards.c.id == incidents.c.board_id)
                       .where(incidents.c.id == incident_id)).first()
    if row is None:
        return False, None, False
    return True, row.board_id, row.shared_at is not None


def may_read_incident(conn: Connection, viewer: Viewer, incident_id: int) -> bool:
    """False both for an incident that does not exist and for one the viewer may not see."""
    exists, board_id, shared = _incident_board(conn, incident_id)
    if not exists:
        return False
    if board_id is None:
        return sees_provider_wide(viewer)
    return viewer.may_read_board(board_id, shared)


def readable_incident(conn: Connection, viewer: Viewer, incident_id: int, missing: str | None = None) -> None:
    if not may_read_incident(conn, viewer, incident_id):
        raise HTTPException(404, missing or incident_missing(incident_id))


def manageable_incident(conn: Connection, viewer: Viewer, incident_id: int, missing: str | None = None
                        ) -> None:
    """404 unless the viewer sees the incident; 403 when it sees but may not act on it (a
    provider-wide incident is the admin's: may_manage_board(None) is the admin alone)."""
    readable_incident(conn, viewer, incident_id, missing)
    _, board_id, _ = _incident_board(conn, incident_id)
    if not viewer.may_manage_board(board_id):
        raise refused("only the incident's board admins (or the collector's admin) may act on it")


def school_in_scope(conn: Connection, scope: BoardScope, ref: str) -> str:
    """A filter's ``SCHOOL`` or ``BOARD/SCHOOL`` as ``BOARD/SCHOOL`` among the boards the
    viewer sees; RegistryError in the registry's words when there is none (or several)
    there, so a school id that other boards also use reveals nothing about them."""
    board, _, school = ref.rpartition("/")
    query = (select(boards.c.slug.label("board"), schools.c.slug)
             .join(boards, boards.c.id == schools.c.board_id)
             .where(schools.c.slug == school, schools.c.board_id.in_(list(scope.ids))))
    if board:
        query = query.where(boards.c.slug == board)
    rows = conn.execute(query).all()
    if not rows:
        raise RegistryError(f"no school {ref!r} (see: school list)")
    if len(rows) > 1:
        choices = ", ".join(f"{row.board}/{row.slug}" for row in rows)
        raise RegistryError(f"school id {school!r} is in several boards; say which: {choices}")
    return f"{rows[0].board}/{rows[0].slug}"

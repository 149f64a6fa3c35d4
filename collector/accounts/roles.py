"""Who is asking, and what they may see and do: the one place scope is decided.

Four roles (DESIGN.md, "Who uses it"):

- ``admin``: the collector's administrator: everything. An admin token (the API's bearer
  token, for automation) is an admin too.
- ``board_admin``: manages and sees its own board's schools (contracts' effects, agent
  settings, incidents, share links, the board's consent to share).
- ``board_viewer``: sees its own board's schools; changes nothing.
- ``analyst``: a purchasing cooperative's analyst: every board's data, but the schools of
  another board only inside aggregates of at least ``AGGREGATE_MINIMUM`` schools, unless that
  board has shared its schools (``boards.shared_at``). An analyst may have a home board,
  seen in full.

Every route asks a ``Viewer`` (below) rather than comparing roles itself, so a new route
cannot forget a case: ``may_read_board`` for pages and exports about one board's schools,
``may_manage_board`` for changes, ``sees_schools_of`` for the report's per-school rows.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, cast, get_args

Role = Literal["admin", "board_admin", "board_viewer", "analyst"]
ROLES: tuple[Role, ...] = get_args(Role)
# Roles that belong to one board: the account must name it.
BOARD_ROLES: tuple[Role, ...] = ("board_admin", "board_viewer")

# Schools of a board that has not shared are shown to an analyst only inside an aggregate
# that holds at least this many of them (so no figure is any one school's).
AGGREGATE_MINIMUM = 5

ROLE_NAMES = {
    "en": {"admin": "collector admin", "board_admin": "board admin",
           "board_viewer": "board viewer", "analyst": "cooperative analyst"},
    "nl": {"admin": "beheerder collector", "board_admin": "bestuursbeheerder",
           "board_viewer": "bestuurslezer", "analyst": "analist coöperatie"},
}


class NotPermitted(Exception):
    """The viewer may not see or do this; the message is one line for them."""


@dataclass(frozen=True)
class Viewer:
    """A signed-in person (``user_id`` set) or an admin token (``token_id`` set)."""

    role: Role
    name: str  # display name, or "admin token N"
    username: str | None = None
    user_id: int | None = None
    token_id: int | None = None
    session_id: int | None = None
    board_id: int | None = None  # the board of a board role; an analyst's home board
    board: str | None = None  # that board's id (slug)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def by_cookie(self) -> bool:
        """Signed in through a browser session: its unsafe requests need the CSRF token."""
        return self.session_id is not None

    def actor(self) -> str:
        """How events name this viewer: "Anne de Vries (board admin de-regenboog)"."""
        if self.token_id is not None:
            return f"admin token {self.token_id}"
        role = ROLE_NAMES["en"][self.role]
        where = f" {self.board}" if self.board and self.role != "admin" else ""
        return f"{self.name} ({role}{where})"

    def may_read_board(self, board_id: int | None, shared: bool = False) -> bool:
        """May see this board's schools one by one (pages, exports, per-school rows)."""
        if self.is_admin:
            return True
        if board_id is None:
            return False
        if self.board_id == board_id:
            return True
        return self.role == "analyst" and shared

    def may_manage_board(self, board_id: int | None) -> bool:
        """May change what belongs to this board (settings, incidents, shares, consent)."""
        return self.is_admin or (self.role == "board_admin" and board_id is not None
                                 and self.board_id == board_id)

    def readable_boards(self, all_boards: Collection[int], shared: Collection[int]) -> set[int]:
        """Of ``all_boards``, those whose schools this viewer sees one by one."""
        return {b for b in all_boards if self.may_read_board(b, b in shared)}

    def aggregate_boards(self, all_boards: Collection[int]) -> set[int]:
        """Of ``all_boards``, those whose schools count in this viewer's aggregates: every
        board for an admin or an analyst (hidden ones only in groups of AGGREGATE_MINIMUM),
        their own board for a board role."""
        if self.is_admin or self.role == "analyst":
            return set(all_boards)
        return {b for b in all_boards if b == self.board_id}

    def require_read(self, board_id: int | None, shared: bool = False) -> None:
        if not self.may_read_board(board_id, shared):
            raise NotPermitted("you may not see this board's schools")

    def require_manage(self, board_id: int | None) -> None:
        if not self.may_manage_board(board_id):
            raise NotPermitted("only this board's admins (or the collector's admin) may change this")


def check_role(role: str, board: str | None) -> Role:
    """A role as typed (``board-admin`` or ``board_admin``), checked against the board rule."""
    normal = role.strip().lower().replace("-", "_")
    if normal not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(r.replace('_', '-') for r in ROLES)}")
    if normal in BOARD_ROLES and not board:
        raise ValueError(f"role {role} belongs to a board: give --board BOARD")
    if normal == "admin" and board:
        raise ValueError("a collector admin belongs to no board: leave out --board")
    return cast(Role, normal)

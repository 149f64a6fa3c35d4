"""The analyst's privacy rule, in one place.

A school is visible to a viewer when the viewer may read its board one by one
(``Viewer.may_read_board`` with the board's consent, ``boards.shared_at``). Any figure made
from schools — a group, a normalisation cell, one hour of a profile, a distribution, or one
figure of a group (only the schools that contribute to it count) — is withheld ("hidden")
when it rests on at least one and fewer than AGGREGATE_MINIMUM schools the viewer may not
see: then no figure is any one hidden school's, nor the difference between a shown group
and the visible schools listed beside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from collector.accounts.roles import AGGREGATE_MINIMUM


class Counted(Protocol):
    @property
    def school_pk(self) -> int: ...

    @property
    def visible(self) -> bool: ...


def hidden_schools(items: Iterable[Counted]) -> int:
    return len({item.school_pk for item in items if not item.visible})


def withheld(items: Iterable[Counted]) -> bool:
    """True when 0 < hidden schools < AGGREGATE_MINIMUM: the figure must not be shown."""
    return 0 < hidden_schools(items) < AGGREGATE_MINIMUM

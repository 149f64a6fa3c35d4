"""The analyst's privacy rule, in one place.

A school is visible to a viewer when the viewer may read its board one by one
(``Viewer.may_read_board`` with the board's consent, ``boards.shared_at``). Any figure made
from schools — a group, a normalisation cell, one hour of a profile, the quartiles of a
distribution's hidden lines, or one figure of a group (only the schools that contribute to
it count) — is withheld ("hidden") when it rests on at least one and fewer than
AGGREGATE_MINIMUM schools the viewer may not see.

Complementary suppression: a row withheld that way could still be worked out from the rows
beside it (the overall row minus the providers shown gives away a provider whose only school
is hidden). So within each partition of a shown row (overall into providers, overall into
technologies, a provider or a technology into its like-for-like cells), when the hidden
schools of the withheld rows number 1 to 4 — all of them, or those that appear in no shown
row — more rows are withheld, the shown ones with the fewest hidden schools first, until
they number 0 or at least AGGREGATE_MINIMUM; failing that, the parent row is withheld. This
is done on whole rows (a row shown whose single figure is withheld is not a withheld row).

An analyst's board filter names only boards it may see one by one (its home board, boards
that have shared): the boards that have not shared are counted all together or not at all,
never one against the others. Region, technology and provider filters stay free: two
reports whose filters differ by one school can still be subtracted, which no rule on a
single report can stop (docs/report.md, "Privacy").
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Protocol

from collector.accounts.roles import AGGREGATE_MINIMUM


class Counted(Protocol):
    @property
    def school_pk(self) -> int: ...

    @property
    def visible(self) -> bool: ...


def hidden_set(items: Iterable[Counted]) -> frozenset[int]:
    return frozenset(item.school_pk for item in items if not item.visible)


def hidden_schools(items: Iterable[Counted]) -> int:
    return len(hidden_set(items))


def too_few(count: int) -> bool:
    return 0 < count < AGGREGATE_MINIMUM


def withheld(items: Iterable[Counted]) -> bool:
    """True when 0 < hidden schools < AGGREGATE_MINIMUM: the figure must not be shown."""
    return too_few(hidden_schools(items))


Partition = tuple[Hashable, Sequence[Hashable]]  # (parent row, its child rows)


def complementary(partitions: Sequence[Partition], hidden_of: Mapping[Hashable, frozenset[int]],
                  withheld_rows: Iterable[Hashable]) -> set[Hashable]:
    """The rows to withhold: ``withheld_rows`` and enough more that no shown parent minus
    its shown children rests on 1 to AGGREGATE_MINIMUM - 1 hidden schools. Repeated until
    nothing changes, as a row withheld in one partition is a child (or a parent) in another."""
    out = set(withheld_rows)
    changed = True
    while changed:
        changed = False
        for parent, children in partitions:
            if parent in out:
                continue
            while _gives_away(children, hidden_of, out):
                shown = [c for c in children if c not in out and hidden_of[c]]
                if not shown:
                    out.add(parent)
                    changed = True
                    break
                # fewest hidden schools first; ties in the rows' own order
                out.add(min(shown, key=lambda c: len(hidden_of[c])))
                changed = True
    return out


def _gives_away(children: Sequence[Hashable], hidden_of: Mapping[Hashable, frozenset[int]],
                out: set[Hashable]) -> bool:
    gone: frozenset[int] = frozenset().union(*(hidden_of[c] for c in children if c in out))
    kept: frozenset[int] = frozenset().union(*(hidden_of[c] for c in children if c not in out))
    return too_few(len(gone)) or too_few(len(gone - kept))

""""Your line compared with similar schools": one school's main line beside its peers.

Peers are the measured main lines (at least MIN_TESTS_PER_LINE school-hours tests) of the
*other* schools of any board that the viewer may not see one by one (for an admin: every
other school), with the same technology and advertised tier; when they come from fewer
than AGGREGATE_MINIMUM distinct schools, the same technology whatever the tier
("technology"); when still fewer, no comparison ("none"). The viewer's own schools are no
peers: they are not anonymous to it, and its figures of them set beside the quartiles would
tell on the rest. Nothing of a peer leaves but the nearest-rank quartiles of a figure over
lines of at least AGGREGATE_MINIMUM distinct schools, and the share of peer lines whose
figure is worse than the school's (lower is better for latency, loss and cost per Mbit/s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from collector.accounts.roles import AGGREGATE_MINIMUM
from collector.comparison.lines import LineData
from collector.comparison.model import Benchmark, Estimate, Filters, LineFigures, PeerFigure
from collector.comparison.store import SchoolRow
from collector.verdicts.stats import nearest_rank

# name -> (the figure of a line, higher is better)
FIGURES: tuple[tuple[str, Callable[[LineFigures], Estimate], bool], ...] = (
    ("median_ratio", lambda f: f.median_ratio, True),
    ("ratio_80_80", lambda f: f.ratio_80_80, True),
    ("availability", lambda f: f.availability, True),
    ("latency_seconds", lambda f: f.latency_seconds, False),
    ("loss_ratio", lambda f: f.loss_ratio, False),
    ("cost_per_mbps", lambda f: f.cost_per_mbps, False),
)


def benchmark(datas: Sequence[LineData], target: SchoolRow, board: str, filters: Filters, *,
              now: float, every_school_a_peer: bool = False) -> Benchmark:
    own = [d for d in datas if d.school_pk == target.pk]
    if not own:
        return Benchmark(board=board, school=target.slug, school_name=target.name, filters=filters,
                         generated_at=now, line=None, similarity="none", peers=0, figures=())
    line = own[0].figures
    others = [d for d in datas if d.school_pk != target.pk and d.measured
              and (every_school_a_peer or not d.visible) and d.figures.technology == line.technology]
    similarity: Literal["technology_tier", "technology", "none"] = "technology_tier"
    peers = [d for d in others if d.figures.tier == line.tier]
    if schools_of(peers) < AGGREGATE_MINIMUM:
        similarity, peers = "technology", others
    if schools_of(peers) < AGGREGATE_MINIMUM:
        return Benchmark(board=board, school=target.slug, school_name=target.name, filters=filters,
                         generated_at=now, line=line, similarity="none", peers=0, figures=())
    figures = tuple(peer_figure(name, pick, higher, line, peers) for name, pick, higher in FIGURES)
    return Benchmark(board=board, school=target.slug, school_name=target.name, filters=filters,
                     generated_at=now, line=line, similarity=similarity, peers=schools_of(peers),
                     figures=figures)


def schools_of(lines: Sequence[LineData]) -> int:
    return len({d.school_pk for d in lines})


def peer_figure(name: str, pick: Callable[[LineFigures], Estimate], higher_is_better: bool,
                line: LineFigures, peer_lines: Sequence[LineData]) -> PeerFigure:
    school = pick(line)
    if name == "cost_per_mbps":
        # Money in one currency only: the school's, or the peers' one if the school has none.
        currencies = {p.figures.currency for p in peer_lines if pick(p.figures).value is not None}
        currency = line.currency or (currencies.pop() if len(currencies) == 1 else None)
        peer_lines = [p for p in peer_lines if p.figures.currency == currency]
    having = [p for p in peer_lines if pick(p.figures).value is not None]
    values = [v for v in (pick(p.figures).value for p in having) if v is not None]
    if schools_of(having) < AGGREGATE_MINIMUM:
        return PeerFigure(name=name, school=school, peers_n=len(values), peers_p25=None,
                          peers_median=None, peers_p75=None, better_than=None,
                          higher_is_better=higher_is_better)
    mine = school.value
    worse = (None if mine is None else
             sum(1 for v in values if (v < mine if higher_is_better else v > mine)) / len(values))
    return PeerFigure(name=name, school=school, peers_n=len(values), peers_p25=nearest_rank(values, 25),
                      peers_median=nearest_rank(values, 50), peers_p75=nearest_rank(values, 75),
                      better_than=worse, higher_is_better=higher_is_better)

"""Real packet loss: the agent's loss ratio against a known, random loss on the path.

nft in the ``internet`` namespace drops echo requests to one target at random with
``numgen random mod 10000 < k``: 1 % for one target, 10 % for another, none for a third,
all in one 20 s window at 10 ms (about 1950 probes each). The number the agent counts as
lost must lie in the binomial 99.9 % band around the truth for the number it sent (about
±0.7 % at 1 %, ±2.2 % at 10 %): a miscount of in-flight probes at the window's end, a
late reply counted as a loss, a duplicate counted twice would each fall outside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from support.netns import require_netns
from support.school_network import TARGETS, SchoolNetwork
from support.tools import require_tool

pytestmark = pytest.mark.e2e

CONFIDENCE = 0.999
MIN_PROBES = 1000


def binomial_band(n: int, p: float, confidence: float = CONFIDENCE) -> tuple[int, int]:
    """The central ``confidence`` interval of Binomial(n, p): (lo, hi) with
    P(X < lo) <= tail and P(X > hi) <= tail, tail = (1 - confidence) / 2."""
    tail = (1 - confidence) / 2
    log_p, log_q = math.log(p), math.log1p(-p)
    cumulative, lo, hi = 0.0, None, n
    for k in range(n + 1):
        cumulative += math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                               + k * log_p + (n - k) * log_q)
        if lo is None and cumulative > tail:
            lo = k
        if cumulative >= 1 - tail:
            hi = k
            break
    assert lo is not None
    return lo, hi


def test_binomial_band_matches_the_normal_approximation() -> None:
    # n = 2000, p = 0.1: mean 200, sd 13.4, z(0.9995) = 3.29 -> about 156..244.
    lo, hi = binomial_band(2000, 0.1)
    assert 152 <= lo <= 158 and 242 <= hi <= 248, (lo, hi)


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchoolNetwork]:
    require_netns()
    require_tool("nft")
    with SchoolNetwork(tmp_path_factory.mktemp("loss"), prefix="ls", collector=False) as network:
        yield network


def test_measured_loss_is_within_the_binomial_band_of_the_truth(school: SchoolNetwork) -> None:
    truth = {TARGETS[0]: 0.01, TARGETS[1]: 0.10, TARGETS[2]: 0.0}
    for target, ratio in truth.items():
        school.loss("internet", ratio, target=target)
    school.configure(window="20s", ping_interval="0.01s", timeout="0.5s", targets=list(truth), hops=0,
                     dns_interval="2s", http_interval="5s")
    result = school.measure(timeout=60)
    assert result.returncode == 0, f"{result.document.get('error')} {result.stderr[-2000:]}"
    # ~2000 probes spread over the 20 s, not fired in a burst.
    assert result.document["window_seconds"] == pytest.approx(20, rel=0.05), result.document
    by_target = {stats["target"]: stats for stats in result.document["targets"]}
    for target, ratio in truth.items():
        stats = by_target[target]
        sent, lost = stats["sent"], stats["sent"] - stats["received"]
        assert sent >= MIN_PROBES, stats
        assert stats["loss_ratio"] == pytest.approx(lost / sent), stats
        if ratio:
            lo, hi = binomial_band(sent, ratio)
            assert lo <= lost <= hi, f"{target}: {lost} of {sent} lost, {ratio:.0%} gives {lo}..{hi}"
        else:
            # Nothing is dropped on the way; at most a reply or two late on a busy machine.
            assert lost <= 2, stats
    gateway = result.document["gateway"]
    assert gateway["sent"] >= MIN_PROBES and gateway["received"] >= gateway["sent"] - 2, gateway

"""Window statistics (loss, percentiles, RFC 3550-style jitter) and path segmentation."""

from __future__ import annotations

import pytest

from agent.probes.connectivity.segments import Thresholds, locate
from agent.probes.connectivity.stats import jitter, percentile, summarise

LIMITS = Thresholds(loss_ratio=0.02, latency_seconds=0.1)


def test_percentiles_are_nearest_rank_values_that_happened() -> None:
    ordered = [float(n) for n in range(1, 101)]
    assert percentile(ordered, 0.5) == 50.0
    assert percentile(ordered, 0.9) == 90.0
    assert percentile(ordered, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) is None


def test_jitter_is_the_mean_difference_of_consecutive_round_trips_in_sending_order() -> None:
    assert jitter([0.010, 0.030, 0.020, 0.020]) == pytest.approx((0.020 + 0.010 + 0.0) / 3)
    assert jitter([0.010]) is None
    # Sorted order would hide the swings: the order sent is what jitter is about.
    assert jitter([0.01, 0.05, 0.01, 0.05]) == pytest.approx(0.04)


def test_summary_counts_loss_over_every_probe_sent() -> None:
    s = summarise(120, [0.02] * 114)
    assert s.loss_ratio == pytest.approx(6 / 120)
    assert (s.minimum, s.p50, s.maximum, s.jitter) == (0.02, 0.02, 0.02, 0.0)
    nothing = summarise(0, [])
    assert nothing.loss_ratio is None and nothing.p50 is None


def good(sent: int = 100, rtt: float = 0.01) -> object:
    return summarise(sent, [rtt] * sent)


def lossy(ratio: float, rtt: float = 0.01, sent: int = 100) -> object:
    return summarise(sent, [rtt] * round(sent * (1 - ratio)))


def test_loss_at_the_gateway_is_the_lan() -> None:
    segment, reason = locate(lossy(0.1), [lossy(0.1)], {"t": lossy(0.1)}, LIMITS)  # type: ignore[arg-type]
    assert segment == "lan" and "gateway: 10.0% loss" in reason


def test_loss_from_the_first_provider_hop_on_is_the_access() -> None:
    segment, _ = locate(good(), [lossy(0.1)], {"t": lossy(0.1)}, LIMITS)  # type: ignore[arg-type]
    assert segment == "access"


def test_loss_only_past_the_provider_hops_is_beyond() -> None:
    segment, reason = locate(good(), [good()], {"t": lossy(0.1), "u": good()}, LIMITS)  # type: ignore[arg-type]
    assert segment == "beyond" and "t: 10.0% loss" in reason


def test_a_hop_that_drops_its_own_answers_but_not_traffic_is_not_blamed() -> None:
    segment, _ = locate(good(), [lossy(0.5)], {"t": good()}, LIMITS)  # type: ignore[arg-type]
    assert segment == "none"


def test_nothing_past_the_gateway_answering_is_the_access_line() -> None:
    segment, _ = locate(good(), [summarise(20, [])], {"t": summarise(100, [])}, LIMITS)  # type: ignore[arg-type]
    assert segment == "access"


def test_without_hop_answers_access_and_beyond_cannot_be_told_apart() -> None:
    segment, reason = locate(good(), [], {"t": lossy(0.1)}, LIMITS)  # type: ignore[arg-type]
    assert segment == "unknown" and "no provider hop answered" in reason


def test_a_slow_median_is_bad_like_loss() -> None:
    segment, _ = locate(good(), [good()], {"t": good(rtt=0.3)}, LIMITS)  # type: ignore[arg-type]
    assert segment == "beyond"


def test_a_gateway_slow_to_answer_pings_itself_is_no_lan_fault_while_traffic_flows() -> None:
    segment, _ = locate(lossy(0.3, rtt=0.15), [good()], {"t": good()}, LIMITS)  # type: ignore[arg-type]
    assert segment == "none"

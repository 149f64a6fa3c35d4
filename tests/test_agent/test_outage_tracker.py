"""The outage tracker: kind, start and end from rounds, persistence across restarts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.probes import Event
from agent.probes.connectivity.outages import STATE_FILE, Moment, OutageTracker
from agent.wire import OutagePayload

BOOT = "boot-a"


class Tracker(OutageTracker):
    """The tracker, with the outages it hands over kept for the test to read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ended: list[Event] = []
        super().__init__(*args, on_end=self.ended.append, **kwargs)


def tracker(state_dir: Path | None = None, outage_after: int = 3, boot: str = BOOT) -> Tracker:
    return Tracker(outage_after, state_dir, stale_after=180, boot_id=lambda: boot,
                   synchronized=lambda: True, since_boot=lambda: at(10).since_boot)


def at(second: float) -> Moment:
    # The boot clock runs 1000 s behind the wall clock, as a Pi's would after a step.
    return Moment(1_790_000_000.0 + second, second + 5000.0)


def echo(t: Tracker, seconds: range | list[float], internet: bool, gateway: bool | None = True) -> None:
    for second in seconds:
        t.echo_round(at(second), internet, gateway, "detail")


def outages(t: Tracker) -> list[OutagePayload]:
    """The outages handed over since the last call."""
    ended, t.ended[:] = list(t.ended), []
    return [OutagePayload.model_validate(event.payload) for event in ended]


def test_an_isp_outage_starts_at_the_first_failed_round_and_ends_at_the_first_good_one() -> None:
    t = tracker()
    echo(t, range(0, 10), internet=True)
    echo(t, range(10, 20), internet=False, gateway=True)
    assert t.current is not None and t.current.kind == "isp"
    assert t.current.start.wall == at(10).wall
    echo(t, range(20, 25), internet=True)
    [outage] = outages(t)
    assert (outage.outage_kind, outage.start_seconds, outage.end_seconds) == ("isp", at(10).wall, at(20).wall)
    assert outage.duration_seconds == pytest.approx(10.0)
    assert t.current is None


def test_fewer_failed_rounds_than_outage_after_is_no_outage() -> None:
    t = tracker(outage_after=3)
    echo(t, range(0, 5), internet=True)
    echo(t, [5, 6], internet=False)
    echo(t, range(7, 10), internet=True)
    assert t.current is None and outages(t) == []


def test_the_gateway_failing_too_makes_it_a_lan_outage_without_a_gateway_internet() -> None:
    t = tracker()
    echo(t, range(0, 4), internet=False, gateway=False)
    assert t.current is not None and t.current.kind == "lan"
    t2 = tracker()
    echo(t2, range(0, 4), internet=False, gateway=None)
    assert t2.current is not None and t2.current.kind == "internet"


def test_a_change_of_kind_ends_one_outage_where_the_next_begins() -> None:
    t = tracker()
    echo(t, range(0, 10), internet=False, gateway=True)      # isp from 0
    echo(t, [10, 11], internet=False, gateway=False)          # too few lan rounds yet
    assert t.current is not None and t.current.kind == "isp"
    echo(t, range(12, 20), internet=False, gateway=False)     # lan from 10
    echo(t, [20], internet=True)
    first, second = outages(t)
    assert (first.outage_kind, first.start_seconds, first.end_seconds) == ("isp", at(0).wall, at(10).wall)
    assert (second.outage_kind, second.start_seconds, second.end_seconds) == ("lan", at(10).wall, at(20).wall)


def test_dns_outage_needs_the_internet_up_and_its_own_failed_rounds() -> None:
    t = tracker()
    echo(t, range(0, 10), internet=False)
    for second in (2, 4, 6, 8):  # resolvers fail while nothing answers: says nothing
        t.dns_round(at(second), False, "no resolver")
    echo(t, range(10, 12), internet=True)
    [isp] = outages(t)
    assert isp.outage_kind == "isp"
    t.dns_round(at(12), False, "no resolver")
    t.dns_round(at(14), False, "no resolver")
    assert t.current is None, "two failed DNS rounds are not yet an outage"
    t.dns_round(at(16), False, "no resolver")
    assert t.current is not None and t.current.kind == "dns" and t.current.start.wall == at(12).wall
    echo(t, [17], internet=False)  # one lost echo round does not end the DNS outage
    echo(t, [18], internet=True)
    t.dns_round(at(18), True, "resolvers answer")
    [dns] = outages(t)
    assert (dns.outage_kind, dns.start_seconds, dns.end_seconds) == ("dns", at(12).wall, at(18).wall)


def test_down_seconds_counts_the_overlap_with_a_window() -> None:
    t = tracker()
    echo(t, range(0, 10), internet=True)
    echo(t, range(10, 20), internet=False)
    echo(t, [20], internet=True)
    echo(t, range(30, 40), internet=False)  # still going at the window's end
    assert t.down_seconds(at(15).wall, at(45).wall) == pytest.approx(5 + 15)


def test_an_outage_under_way_survives_a_restart(tmp_path: Path) -> None:
    first = tracker(tmp_path)
    echo(first, range(0, 5), internet=False)
    first.checkpoint()
    assert (tmp_path / STATE_FILE).exists()
    second = tracker(tmp_path)  # a restarted agent, same boot, moments later
    assert second.current is not None and second.current.start.wall == at(0).wall
    echo(second, [6], internet=True)
    [outage] = outages(second)
    assert outage.start_seconds == at(0).wall and not outage.interrupted
    assert not (tmp_path / STATE_FILE).exists(), "an ended outage is no longer kept"


def test_an_outage_left_by_an_agent_stopped_long_ago_ends_where_last_seen(tmp_path: Path) -> None:
    first = tracker(tmp_path)
    echo(first, range(0, 5), internet=False)
    first.checkpoint()
    saved = json.loads((tmp_path / STATE_FILE).read_text())
    assert saved["kind"] == "isp"
    later = tracker(tmp_path, boot="boot-b")  # the Pi rebooted meanwhile
    [outage] = outages(later)
    assert outage.interrupted and outage.end_seconds == at(4).wall
    assert later.current is None


def test_a_broken_state_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("{not json")
    t = tracker(tmp_path)
    assert t.current is None and not (tmp_path / STATE_FILE).exists()


def test_a_wall_clock_stepped_during_an_outage_leaves_its_start_true() -> None:
    """A Pi without a real-time clock: the outage starts while the clock says last Friday,
    NTP steps it to now once the line is back. The boot clock keeps the duration, and the
    start is the end minus it, not last Friday."""
    t = tracker()
    friday = 1_789_500_000.0
    for second in range(0, 6):
        t.echo_round(Moment(friday + second, 5000.0 + second), False, True, "detail")
    t.echo_round(Moment(1_790_000_300.0, 5300.0), True, True, "detail")  # stepped
    [outage] = outages(t)
    assert outage.duration_seconds == pytest.approx(300.0)
    assert outage.end_seconds == 1_790_000_300.0
    assert outage.start_seconds == pytest.approx(1_790_000_000.0)


def test_an_outage_that_ends_goes_out_at_once_when_there_is_a_sink() -> None:
    kept: list[object] = []
    t = OutageTracker(3, None, stale_after=180, boot_id=lambda: BOOT, synchronized=lambda: True,
                      on_end=kept.append)
    echo(t, range(0, 5), internet=False)
    echo(t, [5], internet=True)
    assert len(kept) == 1, "handed over when it ended, not at the window's end"


def test_a_dns_outage_survives_one_lost_echo_round_during_a_dns_round() -> None:
    t = tracker()
    echo(t, range(0, 3), internet=True)
    for second in (3, 4, 5):
        t.dns_round(at(second), False, "no resolver")
    assert t.current is not None and t.current.kind == "dns"
    echo(t, [6], internet=False)              # one round without a reply ...
    t.dns_round(at(6.5), False, "no resolver")  # ... as a DNS round comes in
    echo(t, [7], internet=True)
    assert t.current is not None and t.current.kind == "dns", "still the same DNS outage"
    assert outages(t) == []


def test_a_short_isp_outage_inside_a_dns_outage_keeps_its_own_length() -> None:
    t = tracker()
    echo(t, range(0, 3), internet=True)
    for second in (3, 4, 5):
        t.dns_round(at(second), False, "no resolver")
    echo(t, range(10, 15), internet=False)    # the line goes: an ISP outage from 10
    echo(t, [15], internet=True)               # back at 15
    dns, isp = outages(t)
    assert (dns.outage_kind, dns.start_seconds, dns.end_seconds) == ("dns", at(3).wall, at(10).wall)
    assert (isp.outage_kind, isp.end_seconds) == ("isp", at(15).wall)
    assert isp.duration_seconds == pytest.approx(5.0)
    assert t.current is None, "DNS needs failed rounds of its own after the line is back"


def test_a_state_file_of_an_unknown_kind_is_dropped_not_fatal(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps({
        "kind": "meteor", "start": {"wall": 1.0, "since_boot": 1.0}, "boot_id": BOOT,
        "last_down": {"wall": 2.0, "since_boot": 2.0}}))
    t = tracker(tmp_path)
    assert t.current is None and not (tmp_path / STATE_FILE).exists()

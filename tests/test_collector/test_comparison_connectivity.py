"""Latency and loss of a line over a period (collector/comparison/connectivity.py), from
windows delivered through the collector's real ingest route, checked by hand.

The school: Europe/Amsterdam, school hours 08:30-15:30 on weekdays (the defaults); in June
that is 06:30Z-13:30Z. The period: Monday 8 to Wednesday 10 June 2026, Wednesday being
today (``NOW``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, update

from collector.aggregates import load_aggregates
from collector.calendar import SchoolCalendar, load_calendar
from collector.comparison.connectivity import (
    LinkQuality,
    school_link_quality,
)
from collector.db.schema import daily_aggregates
from collector.registry import resolve_school
from collector.retention import apply_retention
from collector.settings import CollectorSettings
from tests.support.records import at, deliver, new_stream, record
from tests.test_collector.conftest import Site, make_site

pytestmark = pytest.mark.both_stores

MONDAY, TUESDAY, WEDNESDAY = date(2026, 6, 8), date(2026, 6, 9), date(2026, 6, 10)
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC).timestamp()

Target = tuple[int, int, float | None]  # sent, received, median round trip


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def echo(name: str, role: str, sent: int, received: int, p50: float | None) -> dict[str, Any]:
    return {"target": name, "address": name, "role": role, "method": "icmp", "sent": sent,
            "received": received, "loss_ratio": 1 - received / sent if sent else None,
            "latency_p50_seconds": p50 if received else None,
            "error": None if received == sent else "no reply within 2 s"}


def window_payload(targets: list[Target], gateway: tuple[int, int] | None = (100, 100),
                   segment: str = "none", outage_kind: str | None = None) -> dict[str, Any]:
    return {
        "window_seconds": 60.0, "method": "icmp", "up": outage_kind is None,
        "down_seconds": 60.0 if outage_kind else 0.0, "outage_kind": outage_kind,
        "gateway": echo("192.168.1.1", "gateway", *gateway, 0.0005) if gateway else None,
        "targets": [echo(f"10.0.0.{n + 1}", "internet", sent, received, p50)
                    for n, (sent, received, p50) in enumerate(targets)],
        "segment": segment, "segment_reason": "",
    }


class School:
    """The test site's school, its calendar, and one agent's outbox stream."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.stream = new_stream()
        self.seq = 0
        with site.engine.connect() as conn:
            self.pk = resolve_school(conn, "test-board/test-school")[0]
            self.calendar: SchoolCalendar = load_calendar(conn, self.pk, "Europe/Amsterdam")

    def window(self, when: str, targets: list[Target], **changes: Any) -> dict[str, Any]:
        self.seq += 1
        return at(record(self.seq, self.stream, "connectivity", payload=window_payload(targets, **changes)),
                  utc(when))

    def failed(self, when: str) -> dict[str, Any]:
        self.seq += 1
        return at(record(self.seq, self.stream, "connectivity", ok=False, error="no echo method works",
                         payload={}), utc(when))

    def quality(self, first: date = MONDAY, last: date = WEDNESDAY, now: float = NOW) -> LinkQuality:
        return school_link_quality(self.site.engine, self.pk, self.calendar, first, last, now)

    def stored(self, day: date) -> dict[str, Any]:
        with self.site.engine.connect() as conn:
            return {row.scope: row.data for row in load_aggregates(conn, self.pk, day, day, "connectivity")}

    def received_earlier(self, seconds: float = 60.0) -> None:
        """Move every record's arrival ``seconds`` back: delivered a while before the
        report is asked for, as in life (not within the margin of the documents' stamp)."""
        self.site.sql("UPDATE records SET received_at = received_at - ?", seconds)


def the_period(school: School) -> list[dict[str, Any]]:
    """Monday: three judged school-hours windows, one before school, two the LAN spoiled,
    one failed; Tuesday: two judged (one target unroutable), one after school; Wednesday
    (today, up to noon): two judged, one after school."""
    return [
        school.window("2026-06-08T07:00", [(100, 90, 0.010), (100, 100, 0.030)]),  # median 0.020
        school.window("2026-06-08T08:00", [(100, 100, 0.040), (100, 98, 0.060)]),  # 0.050
        school.window("2026-06-08T09:00", [(100, 100, 0.012)]),
        school.window("2026-06-08T05:00", [(100, 50, 0.500)]),  # 07:00 local: before school
        school.window("2026-06-08T10:00", [(100, 0, None)], gateway=(100, 0), segment="lan",
                      outage_kind="lan"),
        # The gateway answered nothing, though the agent could not say where: left out too.
        school.window("2026-06-08T11:00", [(100, 100, 0.900)], gateway=(100, 0), segment="unknown"),
        school.failed("2026-06-08T12:00"),
        school.window("2026-06-09T07:00", [(200, 180, 0.100)]),
        # No route to the second target (an IPv6 one at a school without IPv6): not probed.
        school.window("2026-06-09T07:01", [(100, 100, 0.080), (0, 0, None)]),
        school.window("2026-06-09T14:00", [(100, 0, None)]),  # 16:00 local: after school
        school.window("2026-06-10T07:00", [(100, 100, 0.030)]),
        school.window("2026-06-10T13:00", [(100, 90, 0.070)]),
        school.window("2026-06-10T13:40", [(100, 10, 0.300)]),  # 15:40 local: after school
    ]


# By hand: Monday 3 windows, 500 sent, 488 received, window medians [0.012, 0.020, 0.050]
# -> 0.020; Tuesday 2, 300, 280, [0.080, 0.100] -> 0.080; Wednesday 2, 200, 190,
# [0.030, 0.070] -> 0.030. The period: 7 windows, 1000 sent, 958 received (loss 4.2 %), 3
# days, daily medians [0.020, 0.030, 0.080] -> 0.030.
EXPECTED = LinkQuality(windows=7, sent=1000, received=958, days=3, latency_seconds=0.030)


@pytest.fixture
def school(tmp_path: Path, db_url: str) -> Iterator[School]:
    with make_site(tmp_path, db_url) as site:
        yield School(site)


def payload_reads(school: School) -> Any:
    """A list that gathers every statement reading connectivity payloads from ``records``."""
    seen: list[str] = []

    def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "records.payload" in statement:
            seen.append(statement)

    event.listen(school.site.engine, "before_cursor_execute", listen)
    return seen


def test_loss_and_latency_by_hand_lan_windows_left_out(school: School) -> None:
    assert set(deliver(school.site, *the_period(school))) == {"accepted"}
    assert school.quality() == EXPECTED
    assert school.quality().loss_ratio == pytest.approx(0.042)

    monday = school.stored(MONDAY)["agent/pi"]
    names = ("windows", "failed_windows", "lan_windows", "targets_sent", "targets_received",
             "latency_windows", "latency_p50_seconds")
    assert {name: monday["school"][name] for name in names} == {
        "windows": 5, "failed_windows": 1, "lan_windows": 2, "targets_sent": 500, "targets_received": 488,
        "latency_windows": 3, "latency_p50_seconds": 0.020}
    assert (monday["outside"]["targets_sent"], monday["outside"]["targets_received"]) == (100, 50)
    assert monday["outside"]["latency_p50_seconds"] == 0.5
    assert monday["all"]["targets_sent"] == 600 and monday["all"]["lan_windows"] == 2
    tuesday = school.stored(TUESDAY)["agent/pi"]["school"]
    assert (tuesday["targets_sent"], tuesday["latency_windows"], tuesday["latency_p50_seconds"]) == (
        300, 2, 0.080)
    # Today is not over: computed, not stored.
    assert school.stored(WEDNESDAY) == {}


def test_the_second_call_reads_the_stored_days(school: School) -> None:
    deliver(school.site, *the_period(school))
    school.received_earlier()
    reads = payload_reads(school)
    assert school.quality() == EXPECTED
    cold = len(reads)
    assert cold > 1  # the past days' windows, and today's
    reads.clear()
    assert school.quality() == EXPECTED
    # Only today's windows are read again.
    assert len(reads) == 1
    # Today alone, and a period that has not begun.
    assert school.quality(WEDNESDAY, WEDNESDAY) == LinkQuality(2, 200, 190, 1, 0.030)
    assert school.quality(date(2026, 6, 11), date(2026, 6, 30)) == LinkQuality(0, 0, 0, 0, None)


def test_a_late_window_makes_its_day_computed_again(school: School) -> None:
    deliver(school.site, *the_period(school))
    school.received_earlier()
    assert school.quality() == EXPECTED
    with school.site.engine.connect() as conn:
        written = dict(conn.execute(select(daily_aggregates.c.day, daily_aggregates.c.updated_at).where(
            daily_aggregates.c.kind == "connectivity")).all())
    # Monday, 11:30 local, delivered after Monday's documents were written (the agent was
    # offline): the day is computed again, from every window it has now.
    deliver(school.site, school.window("2026-06-08T09:30", [(100, 60, 0.200)]))
    assert school.quality() == LinkQuality(windows=8, sent=1100, received=1018, days=3, latency_seconds=0.030)
    with school.site.engine.connect() as conn:
        rewritten = dict(conn.execute(select(daily_aggregates.c.day, daily_aggregates.c.updated_at).where(
            daily_aggregates.c.kind == "connectivity")).all())
    assert rewritten["2026-06-08"] > written["2026-06-08"]
    assert rewritten["2026-06-09"] == written["2026-06-09"]  # nothing new for Tuesday
    monday = school.stored(MONDAY)["agent/pi"]["school"]
    # Window medians [0.012, 0.020, 0.050, 0.200]: the nearest-rank median is still 0.020.
    assert (monday["targets_sent"], monday["targets_received"], monday["latency_p50_seconds"]) == (
        600, 548, 0.020)


def test_a_late_window_is_found_whatever_its_clocks_say(school: School) -> None:
    deliver(school.site, *the_period(school))
    school.received_earlier()
    school.quality()
    with school.site.engine.connect() as conn:
        stamp = conn.scalar(select(daily_aggregates.c.updated_at).where(
            daily_aggregates.c.kind == "connectivity", daily_aggregates.c.day == "2026-06-09"))
    # A Tuesday window stamped as received before the documents were written (ingest stamps
    # it before it commits, so one may commit after the day was read): the day's count of
    # windows no longer matches, so it is computed again and takes it.
    deliver(school.site, school.window("2026-06-09T08:00", [(100, 0, None)]))
    school.site.sql("UPDATE records SET received_at = ? WHERE seq = ?", stamp - 3600, school.seq)
    assert school.quality() == LinkQuality(windows=8, sent=1100, received=958, days=3, latency_seconds=0.030)


def test_documents_from_before_the_quality_figures_are_computed_again(school: School) -> None:
    deliver(school.site, *the_period(school))
    school.received_earlier()
    school.quality()
    # As an older collector wrote Monday: its connectivity document without the figures.
    with school.site.engine.connect() as conn:
        row = conn.execute(select(daily_aggregates.c.id, daily_aggregates.c.data).where(
            daily_aggregates.c.kind == "connectivity", daily_aggregates.c.day == "2026-06-08")).one()
    old = {part: {k: v for k, v in figures.items() if k in ("windows", "failed_windows", "window_seconds",
                                                           "down_seconds", "outages", "outage_seconds")}
           for part, figures in row.data.items()}
    with school.site.engine.begin() as conn:
        conn.execute(update(daily_aggregates).where(daily_aggregates.c.id == row.id).values(data=old))
    assert school.quality() == EXPECTED
    assert school.stored(MONDAY)["agent/pi"]["school"]["targets_sent"] == 500


def test_pruned_days_are_final(tmp_path: Path, db_url: str) -> None:
    with make_site(tmp_path, db_url, retention=30 * 86400) as site:
        school = School(site)
        deliver(site, *the_period(school))
        # Retention a month and a half later: the June days are aggregated, then pruned.
        later = datetime(2026, 7, 25, 12, 0, tzinfo=UTC).timestamp()
        settings = CollectorSettings(db=site.db_url, retention=30 * 86400)
        apply_retention(site.engine, settings, later)
        assert site.sql("SELECT count(*) FROM records WHERE kind = 'connectivity'")[0][0] == 0
        past = LinkQuality(windows=7, sent=1000, received=958, days=3, latency_seconds=0.030)
        assert school.quality(now=later) == past
        # The agent sends a Monday window again (as after restoring its outbox): stored anew,
        # but the pruned day keeps its figures.
        deliver(site, school.window("2026-06-08T09:30", [(100, 0, None)]))
        assert school.quality(now=later) == past

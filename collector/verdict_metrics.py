"""The contracts, the calendar and the verdicts on ``/metrics``.

Per school: whether it is in session now (its own hours, zone and holidays: alert rules
use it to page only in school hours), its connections with their current contract speeds,
and — over the verdict window — the medians and 80/80 ratios, every rule set's outcome,
the capacity per profile and the availability in school hours. They come from the same
``judge_school`` as ``schoolnet-collector verdicts``.

Judging every school reads its window of results and outages: about 12 ms a school here
(tests/bench/bench_verdicts.py), 3.5 s for 300 schools. That is too much for every scrape, and
a verdict over 30 days does not change in a minute. So the families are computed at most once
per ``ttl`` seconds and served from memory between; once they are older, a scrape starts a
new computation in the background and is answered with the previous one, so a scrape never
waits for a big store's judging (only the first, which has nothing to show yet).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, select

from collector.calendar import in_session_families, load_calendars
from collector.contracts import all_connections, board_policy
from collector.db.schema import boards, schools
from collector.exposition import Family
from collector.policy import RULE_SETS
from collector.school_verdicts import judge_school, school_outages
from collector.terms import DIRECTIONS, LEVELS, terms_on
from collector.verdicts.availability import school_hours_availability

log = logging.getLogger("schoolnet.collector.verdicts")

SCHOOL = ("board", "school")
LINE = ("board", "school", "connection")
DAY = 86400.0
AVAILABILITY_WINDOWS = {"7d": 7 * DAY, "30d": 30 * DAY}


class VerdictFamilies:
    """The families, recomputed when older than ``ttl`` seconds: in the background while
    the previous ones are served (see above); ``ttl`` 0 computes them at every call."""

    def __init__(self, engine: Engine, *, window: float, default_timezone: str, ttl: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.window = window
        self.default_timezone = default_timezone
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()  # held while the first computation runs
        self._computed_at: float | None = None
        self._families: list[Family] = []
        self._refreshing: threading.Thread | None = None

    def families(self) -> list[Family]:
        now = self.clock()
        if self.ttl <= 0:
            return self.compute(now)
        with self._lock:
            if self._computed_at is None:
                self._store(self.compute(now), now)
            elif now - self._computed_at >= self.ttl and self._refreshing is None:
                self._refreshing = threading.Thread(target=self._refresh, name="verdict-families",
                                                    daemon=True)
                self._refreshing.start()
            return self._families

    def _refresh(self) -> None:
        now = self.clock()
        try:
            families = self.compute(now)
        except Exception:
            # The store failing now and then: the previous verdicts stay, the next
            # scrape tries again.
            log.warning("could not judge the schools for /metrics; serving the previous verdicts",
                        exc_info=True)
            families = None
        with self._lock:
            if families is not None:
                self._store(families, now)
            self._refreshing = None

    def _store(self, families: list[Family], now: float) -> None:
        self._families = families
        self._computed_at = now

    def compute(self, now: float) -> list[Family]:
        window_name = _duration_name(self.window)
        info = Family("schoolnet_connection_info",
                      "A school's internet line from the registry, value 1: its provider (an id), "
                      "technology and role (main or backup); read from the store",
                      "gauge", (*LINE, "provider", "technology", "role"))
        contract = {(d, level): Family(
            f"schoolnet_contract_{d}{'' if level == 'advertised' else '_' + level}_bytes_per_second",
            f"The {level} {d} speed of the line's contract in force today (the registry's), "
            "bytes per second; absent where the contract states none", "gauge", LINE)
            for d in DIRECTIONS for level in LEVELS}
        median = Family("schoolnet_bandwidth_median_ratio",
                        f"Median of measured / advertised over the valid tests of the last "
                        f"{window_name} (hours: school or all), each test judged by the contract in "
                        "force then, a ratio (1 = as advertised); recomputed every few minutes",
                        "gauge", (*LINE, "direction", "hours"))
        eighty = Family("schoolnet_bandwidth_80_80_ratio",
                        f"The speed reached in 80 % of the valid tests of the last {window_name} (the "
                        "20th percentile, nearest rank) / advertised, a ratio; recomputed every few "
                        "minutes", "gauge", (*LINE, "direction", "hours"))
        tests = Family("schoolnet_bandwidth_window_tests",
                       f"Valid tests judged over the last {window_name} (hours: school or all), a "
                       "count: the sample size of the ratios", "gauge", (*LINE, "hours"))
        passed = Family("schoolnet_verdict_pass",
                        f"Whether the line passes the rule set over the last {window_name} (1) or "
                        "fails it (0); absent when the rule set could not judge (too few measurements "
                        "or days, or a speed the contract does not state: the verdict's reason says "
                        "which); recomputed every few minutes", "gauge", (*LINE, "rule_set"))
        enough = Family("schoolnet_verdict_enough_data",
                        f"Whether the last {window_name} held the measurements and days the rule set "
                        "needs (1) or not (0), in both directions", "gauge", (*LINE, "rule_set"))
        sufficient = Family("schoolnet_capacity_sufficient",
                            "Whether the median download in school hours covers what the profile "
                            "needs at the school's peak of concurrent devices plus the margin (1) or "
                            "not (0); absent without device counts", "gauge", (*LINE, "profile"))
        required = Family("schoolnet_capacity_required_bytes_per_second",
                          "What the profile needs at the school's peak (devices x per-device speed, "
                          "or its video lessons, plus the margin), bytes per second", "gauge",
                          (*LINE, "profile"))
        availability = Family("schoolnet_connectivity_school_hours_availability_ratio",
                              "Share of the school hours (the school's calendar) within the window "
                              "without an outage seen by any of its agents, a ratio; absent when no "
                              "school time was observed", "gauge", (*SCHOOL, "window"))
        chosen = Family("schoolnet_board_rule_set_info",
                        "The rule set the board judges its lines by, value 1 (the others are judged "
                        "too, for comparison; alerts follow this one); read from the store",
                        "gauge", ("board", "rule_set"))
        with self.engine.connect() as conn:
            for board_pk, board_slug in conn.execute(select(boards.c.id, boards.c.slug)).all():
                chosen.add((board_slug, board_policy(conn, board_pk).rule_set), 1)
            identities = {row.id: (row.board, row.school) for row in conn.execute(
                select(schools.c.id, boards.c.slug.label("board"), schools.c.slug.label("school"))
                .join(boards, boards.c.id == schools.c.board_id))}
            calendars = load_calendars(conn, self.default_timezone)
            lines = all_connections(conn)
            for school_pk, (board, school) in sorted(identities.items(), key=lambda item: item[1]):
                calendar = calendars.get(school_pk)
                if calendar is None:
                    continue  # added between the two reads: judged at the next computation
                today = calendar.local_date(now)
                for line in lines.get(school_pk, []):
                    labels = (board, school, line.slug)
                    info.add((*labels, line.provider_id, line.technology, line.role), 1)
                    current = terms_on(line.terms, today)
                    for (d, level), family in contract.items():
                        value = current.speed(d, level) if current is not None else None
                        if value is not None:
                            family.add(labels, value)
                if school_pk in lines:
                    judgement = judge_school(conn, school_pk, board, school,
                                             start=now - self.window, end=now, hours="all",
                                             rule_sets=list(RULE_SETS),
                                             default_timezone=self.default_timezone,
                                             with_availability=False)
                    for c in judgement.connections:
                        labels = (board, school, c.line.slug)
                        for hours in ("school", "all"):
                            summary = c.summaries[("download", hours)]
                            tests.add((*labels, hours), summary.n)
                            for d in DIRECTIONS:
                                s = c.summaries[(d, hours)]
                                if s.median_ratio is not None:
                                    median.add((*labels, d, hours), s.median_ratio)
                                if s.ratio_80_80 is not None:
                                    eighty.add((*labels, d, hours), s.ratio_80_80)
                        for name, verdict in c.verdicts.items():
                            enough.add((*labels, name), 1 if verdict.enough_data else 0)
                            if verdict.outcome != "not_enough_data":
                                passed.add((*labels, name), 1 if verdict.outcome == "pass" else 0)
                        for profile, p in c.capacity.profiles.items():
                            if p.required_bytes_per_second is not None:
                                required.add((*labels, profile), p.required_bytes_per_second)
                            if p.measured_sufficient is not None:
                                sufficient.add((*labels, profile), 1 if p.measured_sufficient else 0)
                longest = max(AVAILABILITY_WINDOWS.values())
                outages, observed_from = school_outages(conn, school_pk, now - longest, now)
                if observed_from is None:
                    continue
                intervals = [(o.start, o.end) for o in outages]
                for span, seconds in AVAILABILITY_WINDOWS.items():
                    start = max(now - seconds, observed_from)
                    ratio = school_hours_availability(
                        intervals, calendar.session_intervals(start, now), start, now)
                    if ratio is not None:
                        availability.add((board, school, span), ratio)
        return [*in_session_families(calendars, identities, now), chosen, info, *contract.values(), median,
                eighty, tests, passed, enough, sufficient, required, availability]


def _duration_name(seconds: float) -> str:
    days = seconds / DAY
    return f"{days:g} days" if days >= 1 else f"{seconds / 3600:g} hours"

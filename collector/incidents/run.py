"""One detection run over every school, and the loop that runs it while the collector serves.

Per school: its history over the longest lookback the policy uses (one read), the
detectors (pure), then the incidents opened, refreshed or closed in one short write
transaction; after all schools, the provider-wide merge. Then the notifications that are
due go out (outside any transaction: a slow receiver never holds the store's write lock).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from collector.db.engine import writer
from collector.db.schema import boards, schools
from collector.incidents.changes import Change
from collector.incidents.model import DetectionPolicy, Held
from collector.incidents.notify import Channels, DeliveryReport, deliver_due
from collector.incidents.provider_wide import merge_provider_wide
from collector.incidents.store import apply_detection
from collector.settings import CollectorSettings

log = logging.getLogger("schoolnet.collector.incidents")


def detection_policy(settings: CollectorSettings) -> DetectionPolicy:
    """The collector's thresholds: the defaults, with Wi-Fi's "poor" where rooms put it."""
    return DetectionPolicy(wifi_poor_dbm=settings.wifi_browsing_dbm)


def lookback(policy: DetectionPolicy) -> float:
    """How far back one run reads: the longest period any detector looks at."""
    return policy.lookback_seconds


@dataclass
class RunReport:
    now: float
    schools: int = 0
    changes: list[Change] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "BOARD/SCHOOL: what failed"

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now, "schools": self.schools,
                "changes": [dataclasses.asdict(c) for c in self.changes],
                "held": [dataclasses.asdict(h) for h in self.held], "errors": self.errors}

    def lines(self) -> Iterator[str]:
        for change in self.changes:
            if change.action == "refreshed":
                continue
            yield (f"incident {change.incident_id} {change.action} ({change.kind}, {change.state})"
                   + (f": {change.note}" if change.note else ""))
        refreshed = sum(1 for c in self.changes if c.action == "refreshed")
        for error in self.errors:
            yield f"error: {error}"
        yield (f"{self.schools} schools checked; {len(self.changes) - refreshed} changes, "
               f"{refreshed} active incidents still hold, {len(self.held)} not (yet) proven")


def run_detection(engine: Engine, settings: CollectorSettings, now: float,
                  policy: DetectionPolicy | None = None) -> RunReport:
    from collector.incidents.detect import detect_school
    from collector.incidents.history import load_history
    from collector.incidents.impact import assess

    policy = policy or detection_policy(settings)
    channels = Channels.from_settings(settings)
    report = RunReport(now)
    with engine.connect() as conn:
        school_rows = conn.execute(select(schools.c.id, boards.c.slug, schools.c.slug.label("school"))
                                   .join(boards, boards.c.id == schools.c.board_id)
                                   .order_by(schools.c.id)).all()
    start = now - lookback(policy)
    for row in school_rows:
        report.schools += 1
        try:
            with engine.connect() as conn:
                history = load_history(conn, row.id, start, now, settings.timezone)
            detection = detect_school(history, policy, now)
            report.held.extend(detection.held)
            with writer(engine) as conn, conn.begin():
                report.changes += apply_detection(conn, detection, history, assess, now, channels=channels)
        except Exception as exc:
            # One school's trouble does not stop the others; the next run tries again.
            log.exception("incident detection failed for %s/%s", row.slug, row.school)
            report.errors.append(f"{row.slug}/{row.school}: {type(exc).__name__}: {exc}")
    with writer(engine) as conn, conn.begin():
        report.changes += merge_provider_wide(conn, now, policy, channels=channels,
                                              default_timezone=settings.timezone)
    return report


def run_once(engine: Engine, settings: CollectorSettings, now: float) -> tuple[RunReport, DeliveryReport]:
    report = run_detection(engine, settings, now)
    return report, deliver_due(engine, settings, time.time())


async def incident_loop(engine: Engine, settings: CollectorSettings, first_delay: float = 30.0) -> None:
    """Detect and notify every ``settings.incident_interval`` seconds while the collector
    serves (0: never); cancel the task to stop. The work runs in a thread; a failed run is
    logged and tried again next time. Due notifications are also sent between runs (every
    FIRST_RETRY_SECONDS at most), so retries keep their backoff."""
    interval = settings.incident_interval
    if interval <= 0:
        return
    await asyncio.sleep(min(first_delay, interval))
    next_run = 0.0
    while True:
        try:
            if time.time() >= next_run:
                next_run = time.time() + interval
                report = await asyncio.to_thread(run_detection, engine, settings, time.time())
                for line in report.lines():
                    log.info("incidents: %s", line)
            delivered = await asyncio.to_thread(deliver_due, engine, settings, time.time())
            if delivered.sent or delivered.retrying or delivered.failed:
                log.info("incidents: %s", delivered.line())
        except Exception:
            log.exception("incident run failed; trying again in %.0f s", interval)
        await asyncio.sleep(max(min(30.0, next_run - time.time()), 1.0))

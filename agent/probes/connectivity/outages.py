"""Outages: when connectivity was down, for how long, and of which kind.

The echo rounds say whether any internet target answered and whether the gateway did; the
DNS rounds whether any resolver did. A condition must hold for ``outage_after`` rounds in a
row before it is an outage (one lost echo is not), and the outage then starts at the first
of those rounds, so the start is as exact as the probe interval. It ends at the first round
that is fine again. When the kind changes (the ISP line is down, then the gateway goes too)
one outage ends and the next begins where the new kind was first seen.

An outage under way is kept in the state directory, so an agent restarted during it goes
on with the same outage; one found there from long ago (the agent was stopped for a while)
ends where it was last seen down, marked ``interrupted``: the agent cannot know more.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from agent import clock
from agent.probes import Event
from agent.wire import ClockStamp, OutageKind, OutagePayload

log = logging.getLogger("schoolnet.agent.connectivity")

STATE_FILE = "connectivity-outage.json"


@dataclass(frozen=True)
class Moment:
    """A point in time on both clocks: the wall clock for the record, the boot clock for
    durations (immune to NTP stepping the wall clock of a Pi that booted without time)."""

    wall: float
    since_boot: float


def moment_now() -> Moment:
    return Moment(time.time(), clock.since_boot())


@dataclass
class OpenOutage:
    kind: OutageKind
    start: Moment
    boot_id: str
    last_down: Moment
    detail: str


@dataclass
class _Streak:
    """Consecutive rounds with the same condition (None = fine)."""

    condition: OutageKind | None = None
    since: Moment | None = None
    rounds: int = 0
    detail: str = ""

    def add(self, condition: OutageKind | None, at: Moment, detail: str) -> None:
        if condition != self.condition or self.since is None:
            self.condition, self.since, self.rounds = condition, at, 0
        self.rounds += 1
        self.detail = detail


class _Keep:
    """No change: the rounds are not yet conclusive."""


KEEP = _Keep()


class OutageTracker:
    def __init__(self, outage_after: int, state_dir: Path | None, stale_after: float,
                 boot_id: Callable[[], str] = clock.boot_id,
                 synchronized: Callable[[], bool | None] = clock.clock_synchronized,
                 since_boot: Callable[[], float] = clock.since_boot,
                 on_end: Callable[[Event], None] = lambda event: None) -> None:
        self.outage_after = outage_after
        # Where an ended outage goes at once (the daemon: the outbox), so that an agent
        # stopped before its window ends loses nothing.
        self.on_end = on_end
        self.since_boot = since_boot
        self.state_path = state_dir / STATE_FILE if state_dir else None
        self.boot_id = boot_id()
        self.synchronized = synchronized
        self.echo = _Streak()
        self.dns = _Streak()
        self.current: OpenOutage | None = None
        # (start, end) wall times of outages that ended, for the window's down time.
        self.closed_spans: list[tuple[float, float]] = []
        self._resume(stale_after)

    # -- what the probes saw -----------------------------------------------------------

    def echo_round(self, at: Moment, internet_ok: bool, gateway_ok: bool | None, detail: str) -> None:
        condition: OutageKind | None = None
        if not internet_ok:
            condition = "internet" if gateway_ok is None else "isp" if gateway_ok else "lan"
        self.echo.add(condition, at, detail)
        self._decide(at)

    def dns_round(self, at: Moment, ok: bool, detail: str) -> None:
        if self.echo.condition is not None:
            # Echo trouble right now: that no resolver answers says nothing about DNS, so
            # this round neither adds to a DNS streak nor breaks one.
            return
        self.dns.add(None if ok else "dns", at, detail)
        self._decide(at)

    # -- deciding ----------------------------------------------------------------------

    def _wanted(self) -> tuple[OutageKind, Moment, str] | _Keep | None:
        """The outage the rounds show now, with its start; echo trouble outranks DNS."""
        echo, dns = self.echo, self.dns
        if echo.condition is not None and echo.since is not None:
            if echo.rounds >= self.outage_after or self._continues(echo.condition):
                return echo.condition, echo.since, echo.detail
            return KEEP  # too few rounds yet to begin an outage, or to change its kind
        if dns.condition is not None and dns.since is not None:
            if dns.rounds >= self.outage_after or self._continues("dns"):
                return "dns", dns.since, dns.detail
            return KEEP
        return None

    def _continues(self, kind: OutageKind) -> bool:
        return self.current is not None and self.current.kind == kind

    def _decide(self, at: Moment) -> None:
        wanted = self._wanted()
        current = self.current
        if isinstance(wanted, _Keep) or (current is not None and wanted is not None
                                         and wanted[0] == current.kind):
            if current is not None:
                current.last_down = at
            return
        end: Moment | None = None
        if current is not None:
            # Over, or another kind now: this one ends where the change was first seen
            # (never before it began).
            end = wanted[1] if wanted is not None else at
            if end.since_boot < current.start.since_boot:
                end = current.start
            self._close(current, end, interrupted=False)
        if wanted is not None:
            kind, since, detail = wanted
            if end is not None and since.since_boot < end.since_boot:
                since = end  # the next begins where the last ended, not inside it
            if kind != "dns":
                # DNS rounds before the internet went are no evidence for after it is back.
                self.dns = _Streak()
            self.current = OpenOutage(kind, since, self.boot_id, at, detail)
            log.warning("outage (%s) since %s: %s", kind, time.strftime(
                "%H:%M:%S", time.localtime(since.wall)), detail)
            self._save()

    def _close(self, outage: OpenOutage, end: Moment, interrupted: bool) -> None:
        same_boot = outage.boot_id == self.boot_id or interrupted
        if same_boot:
            # The boot clock is the truth within one boot: a Pi without a real-time clock
            # that booted with last week's time has its wall clock stepped by NTP once the
            # line is back. The start is then the end's wall time minus the duration.
            duration = max(0.0, end.since_boot - outage.start.since_boot)
            start_wall = end.wall - duration
        else:
            duration = max(0.0, end.wall - outage.start.wall)
            start_wall = outage.start.wall
        payload = OutagePayload(
            outage_kind=outage.kind, start_seconds=start_wall, end_seconds=end.wall,
            duration_seconds=duration, interrupted=interrupted, detail=outage.detail[:1000])
        boot = outage.boot_id if interrupted else self.boot_id
        stamp = ClockStamp(wall_time_seconds=end.wall, boot_id=boot,
                           since_boot_seconds=max(0.0, end.since_boot),
                           clock_synchronized=self.synchronized())
        event = Event("outage", stamp, payload.model_dump(mode="json"))
        self.on_end(event)
        self.closed_spans.append((start_wall, end.wall))
        log.warning("outage (%s) over after %.1f s", outage.kind, payload.duration_seconds)
        self.current = None
        self._save()

    # -- what a window reports ---------------------------------------------------------

    def down_seconds(self, start: float, end: float) -> float:
        """Time between ``start`` and ``end`` (wall) inside an outage; forgets spans before it."""
        spans = [span for span in self.closed_spans if span[1] > start]
        self.closed_spans = spans
        if self.current is not None:
            spans = [*spans, (self.current.start.wall, end)]
        down = sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)
        return min(down, max(0.0, end - start))

    def checkpoint(self) -> None:
        """Keep the outage under way (its last-seen time) for a restarted agent."""
        if self.current is not None:
            self._save()

    # -- persistence -------------------------------------------------------------------

    def _save(self) -> None:
        if self.state_path is None:
            return
        try:
            if self.current is None:
                self.state_path.unlink(missing_ok=True)
                return
            temporary = self.state_path.with_suffix(".tmp")
            temporary.write_text(json.dumps(asdict(self.current)))
            os.replace(temporary, self.state_path)
        except OSError as exc:
            log.warning("cannot keep the outage under way in %s: %s", self.state_path, exc.strerror)

    def _resume(self, stale_after: float) -> None:
        if self.state_path is None or not self.state_path.exists():
            return
        try:
            saved = json.loads(self.state_path.read_text())
            outage = OpenOutage(kind=saved["kind"], start=Moment(**saved["start"]),
                                boot_id=saved["boot_id"], last_down=Moment(**saved["last_down"]),
                                detail=saved.get("detail", ""))
            if outage.kind not in ("isp", "lan", "dns", "internet") or not outage.boot_id:
                raise ValueError(f"unknown outage kind {outage.kind!r} or no boot id")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring %s: %s", self.state_path, exc)
            self.state_path.unlink(missing_ok=True)
            return
        # Staleness on the boot clock where it can be compared (a stepped wall clock
        # would make a fresh outage look old, or an old one fresh).
        fresh = (outage.boot_id == self.boot_id
                 and self.since_boot() - outage.last_down.since_boot <= stale_after)
        if fresh:
            self.current = outage  # the same outage goes on (or ends at the next good round)
            streak = _Streak(outage.kind, outage.start, self.outage_after, outage.detail)
            if outage.kind == "dns":
                self.dns = streak
            else:
                self.echo = streak
        else:
            self._close(outage, outage.last_down, interrupted=True)

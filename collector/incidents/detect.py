"""Detection: a school's history in, per problem a Finding, a Held or a Recovery out.

Pure: no store, no clock (``now`` is given). The thresholds are a DetectionPolicy. The rules:

Bandwidth, per line and direction (key ``bandwidth:<school>:<line>:<direction>``, the
provider responsible). The line's tests of the last ``bandwidth_lookback`` count when they
are valid (a test the agent itself limited is invalid) and, where the school has a wired
agent, ran over a wired interface. A test is below when its rate is under
``bandwidth_ratio`` x the advertised speed of the terms in force on its local day (a test
without terms that day is not judged). A Finding when the newest ``bandwidth_tests``
counted tests in school hours are all below, and each of them is
- corroborated by a second server: its retest on another server was below too, or the
  tests together used at least two servers (a retest on another server that reached the
  threshold contradicts it: the first server was the limit), and
- clear of the LAN: every connectivity window of the testing agent within 5 minutes of the
  test had the gateway fine (loss under ``gateway_loss_max``, median round trip under
  ``gateway_latency_max``), and there was at least one such window.
Otherwise Held, with the first reason that failed. It began at the oldest test of the
unbroken run of below tests that ends with the newest. With no counted test below, Held
when only invalid tests are (agent-limited), or when only a wireless agent's tests are and
the school's wired agent is fine. Recovery: the newest ``bandwidth_tests`` counted tests of
any hours all at or above the threshold, since the first of their unbroken run, unless the
Finding holds (a line slow in school hours is not recovered by fine tests in the evening).

Outage (key ``outage:<school>``, the provider responsible). The newest provider-side outage
("isp": the gateway answered while no internet target did, so the LAN is ruled out) of at
least ``outage_min_seconds``, under way or ended within the period read. The agents' spans
of it are merged (overlapping spans are one outage). With several agents, every agent that
sent windows during it must have seen it too (an "isp" or "internet" outage then), else
Held naming those that did not. A "lan", "dns" or "internet" outage of that length is Held:
the LAN is not ruled out. Recovery: the outage ended, no agent has one under way and every
agent's latest window is up; since its end. An outage that ended before it was seen (the
agent could not send while the line was down) is both: its Finding and its Recovery.

Loss and latency, per agent (keys ``loss:<school>:<agent>``, ``latency:<school>:<agent>``,
the provider responsible). Where the school has a wired agent, only wired agents count.
The agent's newest ``quality_windows`` windows (windows in an outage and windows that sent
nothing are left out: they are the outage's) all had the internet targets' pooled loss at
or above ``loss_ratio`` (latency: the targets' median round trip at or above
``latency_seconds``) with the gateway fine in each: a Finding. All bad but the gateway not
fine in some: Held (the LAN). Began at the oldest window of the run of bad windows.
Recovery: the newest ``quality_windows`` windows all fine, since the first of their run.

Wi-Fi, per room (key ``wifi:<school>:<room>``, the school responsible). The median signal
(nearest rank) of the room's readings in school hours within ``wifi_lookback`` below
``wifi_poor_dbm`` from at least ``wifi_observations`` readings: a Finding; from fewer: Held.
Recovery: the median at or above it from as many.

Silent, per agent not revoked (key ``silent:<school>:<agent>``, the school responsible): no
report for ``silent_after`` while the school is in session now: a Finding. Out of session:
Held (an agent silent at night is not an incident). Recovery: a report within
``silent_after``, since that report.

Revoked agents: what only that agent watched (its silence, the loss and latency it saw:
the keys ``silent``, ``loss`` and ``latency`` of that agent) can neither hold nor recover any
more, so a Recovery that is no restore (``restored=False``): the incident closes and says
why, without a time of restore.

Every figure is a measured value or one computed from measured values; a value that is not
known is None, never a guess. Figures are JSON-able (numbers, strings, lists, dicts).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from collector.contracts import ConnectionInfo
from collector.incidents.history import (
    AgentState,
    BandwidthTest,
    OutageSpan,
    RoomReading,
    SchoolHistory,
    Window,
)
from collector.incidents.impact import duration_english
from collector.incidents.model import (
    Detection,
    DetectionPolicy,
    Finding,
    Held,
    IncidentKind,
    Recovery,
    school_key,
)
from collector.incidents.sentences import Sentence, moment
from collector.rooms import median_nearest_rank
from collector.terms import DIRECTIONS, Direction, Terms, terms_on

# How near a connectivity window must be to a bandwidth test to speak for the LAN then.
LAN_EVIDENCE_SECONDS = 300.0
# Outage kinds that say the internet was gone for an agent (a corroborating agent with no
# gateway probed says "internet": it saw the line go too).
SAW_THE_LINE_GO = frozenset({"isp", "internet"})

Outcome = Finding | Held | Recovery


def detect_school(history: SchoolHistory, policy: DetectionPolicy, now: float) -> Detection:
    """Every detector over one school's history, as of ``now``."""
    detection = Detection(history.school_pk)
    outcomes: list[Outcome] = [
        *bandwidth(history, policy, now), *outage(history, policy, now),
        *quality(history, policy, "loss"), *quality(history, policy, "latency"),
        *wifi(history, policy, now), *silent(history, policy, now), *revoked(history)]
    for o in outcomes:
        if isinstance(o, Finding):
            detection.findings.append(o)
        elif isinstance(o, Held):
            detection.held.append(o)
        else:
            detection.recoveries[o.key] = o
    return detection


# --- shared -----------------------------------------------------------------------------------


def gateway_fine(window: Window, policy: DetectionPolicy) -> bool:
    return (window.gateway_loss_ratio is not None and window.gateway_latency_p50_seconds is not None
            and window.gateway_loss_ratio < policy.gateway_loss_max
            and window.gateway_latency_p50_seconds < policy.gateway_latency_max_seconds)


def wired_agents(history: SchoolHistory) -> set[int]:
    return {a.pk for a in history.agents if a.wired is True and not a.revoked}


def percent(ratio: float | None) -> str:
    return "unknown" if ratio is None else f"{ratio * 100:.0f} %"


def mbit(rate: float | None) -> str:
    return "unknown" if rate is None else f"{rate / 125_000:.1f} Mbit/s"


def clock(history: SchoolHistory, t: float) -> str:
    return f"{history.calendar.local_datetime(t):%Y-%m-%d %H:%M}"


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def trailing_run(items: Sequence[Any], holds: Callable[[Any], bool]) -> list[Any]:
    """The unbroken run of items that ``holds`` at the end of ``items`` (oldest first)."""
    run: list[Any] = []
    for item in reversed(items):
        if not holds(item):
            break
        run.append(item)
    run.reverse()
    return run


# --- bandwidth ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """A test of one direction against the terms of its day."""

    test: BandwidthTest
    terms: Terms
    rate: float
    advertised: float
    threshold: float

    @property
    def ratio(self) -> float:
        return self.rate / self.advertised

    @property
    def below(self) -> bool:
        return self.rate < self.threshold


def _rate(test: BandwidthTest, direction: Direction, retest: bool = False) -> float | None:
    if retest:
        return (test.retest_download_bytes_per_second if direction == "download"
                else test.retest_upload_bytes_per_second)
    return test.download_bytes_per_second if direction == "download" else test.upload_bytes_per_second


def _judged(history: SchoolHistory, line: ConnectionInfo, direction: Direction,
            tests: Iterable[BandwidthTest], ratio: float) -> list[Judged]:
    judged = []
    for test in tests:
        rate = _rate(test, direction)
        terms = terms_on(line.terms, history.calendar.local_date(test.measured_at))
        if rate is None or terms is None:
            continue  # no rate that way, or no contract that day: nothing to judge
        advertised = terms.speed(direction, "advertised")
        if advertised is None or advertised <= 0:
            continue
        judged.append(Judged(test, terms, rate, advertised, ratio * advertised))
    return judged


def _is_wired(test: BandwidthTest, wired: set[int]) -> bool:
    if test.interface_wireless is not None:
        return not test.interface_wireless
    return test.agent_pk in wired  # the test did not say: the agent's newest test did


def bandwidth(history: SchoolHistory, policy: DetectionPolicy, now: float) -> list[Outcome]:
    out: list[Outcome] = []
    since = now - policy.bandwidth_lookback_seconds
    recent = [t for t in history.tests if since <= t.measured_at <= now]
    wired = wired_agents(history)
    for line in history.lines:
        mine = [t for t in recent if t.connection_pk == line.id]
        for direction in DIRECTIONS:
            out.extend(_bandwidth_line(history, policy, line, direction, mine, wired))
    return out


def _bandwidth_line(history: SchoolHistory, policy: DetectionPolicy, line: ConnectionInfo,
                    direction: Direction, tests: list[BandwidthTest], wired: set[int]) -> list[Outcome]:
    key = school_key("bandwidth", history.school_pk, line.slug, direction)
    judged = _judged(history, line, direction, tests, policy.bandwidth_ratio)
    counted = [j for j in judged if j.test.valid and (not wired or _is_wired(j.test, wired))]
    school_hours = [j for j in counted if j.test.in_session]
    n = policy.bandwidth_tests
    out: list[Outcome] = []
    newest = school_hours[-n:]
    if len(newest) == n and all(j.below for j in newest):
        out.append(_bandwidth_finding(history, policy, line, direction, key, school_hours, newest))
    else:
        held = _bandwidth_not_counted(history, policy, key, judged, counted, wired)
        if held is not None:
            out.append(held)
    recovered = counted[-n:]
    # A problem that holds in school hours has not recovered by tests in the evening.
    finding = any(isinstance(o, Finding) for o in out)
    if not finding and len(recovered) == n and not any(j.below for j in recovered):
        run = trailing_run(counted, lambda j: not j.below)
        out.append(Recovery(key, run[0].test.measured_at, Sentence("bw_recovered", {
            "direction": direction, "ratios": [j.ratio for j in recovered],
            "threshold": policy.bandwidth_ratio})))
    return out


def _bandwidth_not_counted(history: SchoolHistory, policy: DetectionPolicy, key: str,
                           judged: list[Judged], counted: list[Judged], wired: set[int]) -> Held | None:
    """Why tests that were below do not make an incident, when none of the counted ones
    carries one: they were agent-limited, or a wireless agent's beside a fine wired one."""
    school_hours = [j for j in judged if j.test.in_session]
    if any(j.below for j in counted if j.test.in_session):
        return None  # valid tests below, but not enough in a row: no evidence either way
    invalid = [j for j in school_hours if j.below and not j.test.valid]
    wireless = [j for j in school_hours
                if j.below and j.test.valid and wired and not _is_wired(j.test, wired)]
    if invalid:
        reasons = sorted({r for j in invalid for r in j.test.invalid_reasons})
        return Held("bandwidth", key, history.school_pk, (
            f"{len(invalid)} test(s) below {percent(policy.bandwidth_ratio)} of the advertised speed "
            f"were agent-limited (invalid: {'; '.join(reasons)}); no valid test is below"))
    if wireless:
        fine = [j for j in counted if j.test.in_session]
        return Held("bandwidth", key, history.school_pk, (
            f"only tests over Wi-Fi are below {percent(policy.bandwidth_ratio)} of the advertised speed "
            f"({', '.join(sorted({j.test.agent_slug or '?' for j in wireless}))}); the school's wired "
            f"agent counts where there is one, and its {len(fine)} test(s) in school hours are not below"))
    return None


def _windows_near(history: SchoolHistory, test: BandwidthTest) -> list[Window]:
    if test.agent_pk is None:
        return []
    low, high = test.measured_at - LAN_EVIDENCE_SECONDS, test.measured_at + LAN_EVIDENCE_SECONDS
    return [w for w in history.windows
            if w.agent_pk == test.agent_pk and w.start <= high and w.start + w.seconds >= low]


def _bandwidth_finding(history: SchoolHistory, policy: DetectionPolicy, line: ConnectionInfo,
                       direction: Direction, key: str, school_hours: list[Judged],
                       newest: list[Judged]) -> Finding | Held:
    servers = sorted({j.test.server for j in newest})
    corroboration: list[Sentence] = []
    for j in newest:
        t = j.test
        retest = _rate(t, direction, retest=True)
        second = t.retest_server is not None and t.retest_server != t.server and retest is not None
        when = clock(history, t.measured_at)
        if second and retest is not None and retest >= j.threshold:
            return Held("bandwidth", key, history.school_pk, (
                f"the test of {when} measured {mbit(j.rate)} on {t.server}, but its retest on "
                f"{t.retest_server} reached {mbit(retest)} ({percent(retest / j.advertised)}): "
                "the first server may have been the limit"))
        if not second and len(servers) < 2:
            return Held("bandwidth", key, history.school_pk, (
                f"single server: every test below was made against {servers[0]} and the test of "
                f"{when} has no retest on a second server"
                + (f" ({t.retest_error})" if t.retest_error else "")))
        near = _windows_near(history, t)
        with_gateway = [w for w in near if w.gateway_loss_ratio is not None]
        if not with_gateway:
            return Held("bandwidth", key, history.school_pk, (
                f"no gateway evidence: no connectivity window of the testing agent within 5 minutes "
                f"of the test of {when}, so the school's LAN is not ruled out"))
        bad = [w for w in with_gateway if not gateway_fine(w, policy)]
        if bad:
            w = bad[0]
            return Held("bandwidth", key, history.school_pk, (
                f"gateway not fine near the test of {when}: {percent(w.gateway_loss_ratio)} loss, "
                f"median {_ms(w.gateway_latency_p50_seconds)} to the gateway at {clock(history, w.start)}; "
                "the school's LAN is not ruled out"))
        at = moment(t.measured_at, history.calendar)
        if second and retest is not None:
            corroboration.append(Sentence("bw_retest", {
                "at": at, "rate": j.rate, "server": t.server, "retest_server": t.retest_server,
                "retest_rate": retest, "retest_ratio": retest / j.advertised}))
        worst = max(with_gateway, key=lambda w: w.gateway_loss_ratio or 0.0)
        corroboration.append(Sentence("bw_gateway_fine", {
            "at": at, "loss_max": worst.gateway_loss_ratio, "windows": len(with_gateway)}))
    if len(servers) >= 2:
        corroboration.append(Sentence("bw_servers", {"servers": servers}))
    if all(_is_wired(j.test, wired_agents(history)) for j in newest):
        corroboration.append(Sentence("bw_wired"))
    corroboration.append(Sentence("bw_valid"))
    run = trailing_run(school_hours, lambda j: j.below)
    current = newest[-1].terms
    figures: dict[str, Any] = {
        "direction": direction,
        "threshold_ratio": policy.bandwidth_ratio,
        "advertised_bytes_per_second": current.speed(direction, "advertised"),
        "normal_bytes_per_second": current.speed(direction, "normal"),
        "minimum_bytes_per_second": current.speed(direction, "minimum"),
        "connection": line.slug,
        "provider": line.provider,
        "provider_id": line.provider_id,
        "tests_required": policy.bandwidth_tests,
        "tests": [_test_figures(history, policy, j, direction) for j in run],
        "median_ratio": median([j.ratio for j in run]),
        "servers": sorted({j.test.server for j in run}),
    }
    return Finding(
        kind="bandwidth", key=key, school_pk=history.school_pk, responsible="provider",
        started_at=run[0].test.measured_at, last_evidence_at=run[-1].test.measured_at,
        figures=figures, corroboration=tuple(corroboration), connection_pk=line.id)


def _test_figures(history: SchoolHistory, policy: DetectionPolicy, j: Judged,
                  direction: Direction) -> dict[str, Any]:
    t = j.test
    retest = _rate(t, direction, retest=True)
    near = [w for w in _windows_near(history, t) if w.gateway_loss_ratio is not None]
    return {
        "result_id": t.result_id, "measured_at": t.measured_at, "agent": t.agent_slug,
        "rate_bytes_per_second": j.rate, "ratio": j.ratio,
        "advertised_bytes_per_second": j.advertised,
        "server": t.server, "backend": t.backend, "streams": t.streams,
        "retest_server": t.retest_server, "retest_rate_bytes_per_second": retest,
        "retest_ratio": None if retest is None else retest / j.advertised,
        "retest_error": t.retest_error,
        "interface_wireless": t.interface_wireless, "concurrent_devices": t.concurrent_devices,
        "cross_traffic_bytes": (t.download_cross_traffic_bytes if direction == "download"
                                else t.upload_cross_traffic_bytes),
        "idle_latency_seconds": t.idle_latency_seconds, "leased": t.leased,
        "gateway_windows": len(near),
        "gateway_loss_ratio_max": max((w.gateway_loss_ratio or 0.0 for w in near), default=None),
        "gateway_latency_p50_seconds_max": max(
            (w.gateway_latency_p50_seconds for w in near if w.gateway_latency_p50_seconds is not None),
            default=None),
        "gateway_fine": bool(near) and all(gateway_fine(w, policy) for w in near),
    }


def _ms(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds * 1000:.1f} ms"


# --- outage -------------------------------------------------------------------------------------


@dataclass
class Episode:
    """Overlapping spans of one outage kind, over the school's agents."""

    spans: list[OutageSpan]

    @property
    def start(self) -> float:
        return min(s.start for s in self.spans)

    @property
    def end(self) -> float:
        return max(s.end for s in self.spans)

    @property
    def ongoing(self) -> bool:
        return any(s.ongoing for s in self.spans)

    @property
    def kind(self) -> str:
        return self.spans[0].kind


def episodes(spans: Iterable[OutageSpan]) -> list[Episode]:
    """Spans merged per kind where they overlap (or touch), oldest first."""
    merged: list[Episode] = []
    for span in sorted(spans, key=lambda s: (s.kind, s.start)):
        last = merged[-1] if merged else None
        if last is not None and last.kind == span.kind and span.start <= last.end:
            last.spans.append(span)
        else:
            merged.append(Episode([span]))
    merged.sort(key=lambda e: e.start)
    return merged


def outage(history: SchoolHistory, policy: DetectionPolicy, now: float) -> list[Outcome]:
    key = school_key("outage", history.school_pk)
    # A revoked agent's outage "under way" is only where it stopped measuring: not the line's.
    gone = {a.pk for a in history.agents if a.revoked}
    spans = [s for s in history.outages if s.start <= now and not (s.ongoing and s.agent_pk in gone)]
    long_enough = [e for e in episodes(spans) if e.end - e.start >= policy.outage_min_seconds]
    out: list[Outcome] = []
    for e in long_enough:
        if e.kind != "isp":
            out.append(Held("outage", key, history.school_pk, (
                f"a {e.kind} outage of {duration_english(e.end - e.start)} from {clock(history, e.start)}"
                f"{' (under way)' if e.ongoing else ''}: {_LAN_NOT_RULED_OUT.get(e.kind, '')}")))
    provider = [e for e in long_enough if e.kind == "isp"]
    if not provider:
        return out
    e = provider[-1]
    saw = {s.agent_pk for s in e.spans}
    missed = _agents_that_missed(history, e, saw)
    if missed:
        out.append(Held("outage", key, history.school_pk, (
            f"an isp outage of {duration_english(e.end - e.start)} from {clock(history, e.start)}, but "
            f"{', '.join(missed)} sent windows then and saw none: not corroborated by every agent")))
        return out
    corroboration = [Sentence("outage_lan_up")]
    slugs = sorted({s.agent_slug for s in e.spans})
    if len(slugs) > 1:
        corroboration.append(Sentence("outage_every_agent", {"agents": slugs}))
    figures: dict[str, Any] = {
        "kind": e.kind, "start": e.start, "end": e.end, "ongoing": e.ongoing,
        "duration_seconds": e.end - e.start, "threshold_seconds": policy.outage_min_seconds,
        "agents": slugs,
        "detail": max(e.spans, key=lambda s: s.end - s.start).detail,
        "spans": [{"agent": s.agent_slug, "start": s.start, "end": s.end, "ongoing": s.ongoing,
                   "detail": s.detail} for s in e.spans],
        "lines": [line.slug for line in history.lines],
    }
    main = [line for line in history.lines if line.role == "main"]
    out.append(Finding(
        kind="outage", key=key, school_pk=history.school_pk, responsible="provider",
        started_at=e.start, last_evidence_at=e.end, figures=figures,
        corroboration=tuple(corroboration),
        connection_pk=main[0].id if len(main) == 1 else None))
    if not e.ongoing and _latest_windows_up(history):
        out.append(Recovery(key, e.end, Sentence("outage_ended", {
            "end": moment(e.end, history.calendar), "seconds": e.end - e.start})))
    return out


_LAN_NOT_RULED_OUT = {
    "lan": "the gateway did not answer either, so this is the school's own network (or its router), "
           "not the provider's line",
    "dns": "the line answered echo but the school's resolvers did not: the LAN's DNS is not ruled out",
    "internet": "no gateway is probed, so the school's LAN is not ruled out",
}


def _agents_that_missed(history: SchoolHistory, e: Episode, saw: set[int]) -> list[str]:
    """Agents that sent windows during the outage but saw no outage of the line then."""
    missed = []
    others = [a for a in history.agents if a.pk not in saw and not a.revoked]
    for agent in others:
        during = [w for w in history.windows
                  if w.agent_pk == agent.pk and w.start < e.end and w.start + w.seconds > e.start]
        if not during:
            continue  # it was not measuring then: it says nothing
        saw_it = any(s.agent_pk == agent.pk and s.kind in SAW_THE_LINE_GO and s.start < e.end
                     and s.end > e.start for s in history.outages) or any(
            w.outage_kind in SAW_THE_LINE_GO for w in during)
        if not saw_it:
            missed.append(agent.slug)
    return missed


def _latest_windows_up(history: SchoolHistory) -> bool:
    # A revoked agent's last window (down, perhaps: it was unplugged in the outage) no longer
    # speaks for the line.
    gone = {a.pk for a in history.agents if a.revoked}
    newest: dict[int, Window] = {}
    for w in history.windows:
        if w.agent_pk not in gone:
            newest[w.agent_pk] = w
    return all(w.up is True for w in newest.values())


# --- loss and latency ------------------------------------------------------------------------


def quality(history: SchoolHistory, policy: DetectionPolicy, kind: IncidentKind) -> list[Outcome]:
    wired = wired_agents(history)
    out: list[Outcome] = []
    for agent in history.agents:
        if agent.revoked:
            continue
        windows = [w for w in history.windows if w.agent_pk == agent.pk and _judgeable(w, kind)]
        counted = not wired or agent.pk in wired
        out.extend(_quality_agent(history, policy, kind, agent, windows, counted))
    return out


def _judgeable(w: Window, kind: IncidentKind) -> bool:
    if w.down_seconds or w.outage_kind is not None:
        return False  # the outage detector's
    value = w.targets_loss_ratio if kind == "loss" else w.targets_latency_p50_seconds
    return value is not None


def _value(w: Window, kind: IncidentKind) -> float:
    value = w.targets_loss_ratio if kind == "loss" else w.targets_latency_p50_seconds
    assert value is not None  # _judgeable
    return value


def _quality_agent(history: SchoolHistory, policy: DetectionPolicy, kind: IncidentKind,
                   agent: AgentState, windows: list[Window], counted: bool) -> list[Outcome]:
    key = school_key(kind, history.school_pk, agent.slug)
    limit = policy.loss_ratio if kind == "loss" else policy.latency_seconds
    n = policy.quality_windows
    newest = windows[-n:]
    if len(newest) < n:
        return []
    out: list[Outcome] = []
    what = "loss to the internet targets" if kind == "loss" else "median round trip to the internet targets"
    shown = percent if kind == "loss" else _ms
    if all(_value(w, kind) >= limit for w in newest):
        lan = [w for w in newest if not gateway_fine(w, policy)]
        if not counted:
            out.append(Held(kind, key, history.school_pk, (
                f"{agent.slug} ({'Wi-Fi' if agent.wired is False else 'interface unknown'}) saw "
                f"{what} at or above {shown(limit)} in its last {n} windows, but the school has a wired "
                "agent, and only wired agents count")))
        elif lan:
            w = lan[0]
            out.append(Held(kind, key, history.school_pk, (
                f"{agent.slug} saw {what} at or above {shown(limit)} in its last {n} windows, but the "
                f"gateway was not fine in {len(lan)} of them (e.g. {percent(w.gateway_loss_ratio)} loss, "
                f"median {_ms(w.gateway_latency_p50_seconds)} at {clock(history, w.start)}): the LAN "
                "is not ruled out")))
        else:
            run = trailing_run(windows, lambda w: _value(w, kind) >= limit and gateway_fine(w, policy))
            out.append(_quality_finding(history, policy, kind, key, agent, run, limit))
        return out
    if counted and all(_value(w, kind) < limit for w in newest):
        run = trailing_run(windows, lambda w: _value(w, kind) < limit)
        out.append(Recovery(key, run[0].start, Sentence("quality_recovered", {
            "kind": kind, "agent": agent.slug, "windows": n, "threshold": limit,
            "max": max(_value(w, kind) for w in newest)})))
    return out


def _quality_finding(history: SchoolHistory, policy: DetectionPolicy, kind: IncidentKind, key: str,
                     agent: AgentState, run: list[Window], limit: float) -> Finding:
    values = [_value(w, kind) for w in run]
    gateway_loss = [w.gateway_loss_ratio for w in run if w.gateway_loss_ratio is not None]
    gateway_latency = [w.gateway_latency_p50_seconds for w in run
                       if w.gateway_latency_p50_seconds is not None]
    hops = sorted({w.access_hop_address for w in run if w.access_hop_address})
    figures: dict[str, Any] = {
        "agent": agent.slug, "wired": agent.wired,
        "threshold": limit, "unit": "ratio" if kind == "loss" else "seconds",
        "windows": len(run), "windows_required": policy.quality_windows,
        "first_window_start": run[0].start, "last_window_end": run[-1].start + run[-1].seconds,
        "median": median(values), "max": max(values),
        "targets_sent": sum(w.targets_sent for w in run),
        "targets_received": sum(w.targets_received for w in run),
        "gateway_address": next((w.gateway_address for w in reversed(run) if w.gateway_address), None),
        "gateway_loss_ratio_max": max(gateway_loss, default=None),
        "gateway_latency_p50_seconds_median": median(gateway_latency),
        "gateway_loss_max": policy.gateway_loss_max,
        "gateway_latency_max_seconds": policy.gateway_latency_max_seconds,
        "access_hops": hops,
    }
    corroboration = [Sentence("quality_lan_fine", {
        "windows": len(run), "gateway_loss_max": policy.gateway_loss_max,
        "gateway_latency_max_seconds": policy.gateway_latency_max_seconds})]
    if agent.wired:
        corroboration.append(Sentence("quality_wired", {"agent": agent.slug}))
    main = [line for line in history.lines if line.role == "main"]
    return Finding(
        kind=kind, key=key, school_pk=history.school_pk, responsible="provider",
        started_at=run[0].start, last_evidence_at=run[-1].start + run[-1].seconds, figures=figures,
        corroboration=tuple(corroboration), agent_pk=agent.pk,
        connection_pk=main[0].id if len(main) == 1 else None)


# --- Wi-Fi ------------------------------------------------------------------------------------


def wifi(history: SchoolHistory, policy: DetectionPolicy, now: float) -> list[Outcome]:
    since = now - policy.wifi_lookback_seconds
    by_room: dict[int, list[RoomReading]] = {}
    for r in history.readings:
        if since <= r.measured_at <= now and r.in_session and r.signal_dbm is not None:
            by_room.setdefault(r.room_pk, []).append(r)
    out: list[Outcome] = []
    for readings in by_room.values():
        out.extend(_wifi_room(history, policy, readings))
    return out


def _wifi_room(history: SchoolHistory, policy: DetectionPolicy, readings: list[RoomReading]) -> list[Outcome]:
    room = readings[-1]
    key = school_key("wifi", history.school_pk, room.room_slug)
    signals = [r.signal_dbm for r in readings if r.signal_dbm is not None]
    middle = median_nearest_rank([(s, 1) for s in signals])
    if middle is None:
        return []
    enough = len(signals) >= policy.wifi_observations
    limit = policy.wifi_poor_dbm
    if middle < limit and not enough:
        return [Held("wifi", key, history.school_pk, (
            f"{room.room_name}: median signal {middle:.0f} dBm, below {limit:.0f} dBm, but from too few "
            f"observations ({len(signals)} of the {policy.wifi_observations} needed)"))]
    if not enough:
        return []
    if middle >= limit:
        run = trailing_run(readings, lambda r: r.signal_dbm is not None and r.signal_dbm >= limit)
        at = (run[0] if run else readings[-1]).measured_at
        return [Recovery(key, at, Sentence("wifi_recovered", {
            "room_name": room.room_name, "median_dbm": middle, "readings": len(signals),
            "threshold_dbm": limit}))]
    poor = [s for s in signals if s < limit]
    figures: dict[str, Any] = {
        "room": room.room_slug, "room_name": room.room_name,
        "observations": len(signals), "observations_required": policy.wifi_observations,
        "median_signal_dbm": middle, "threshold_dbm": limit,
        "min_signal_dbm": min(signals), "max_signal_dbm": max(signals),
        "poor_share": len(poor) / len(signals),
        "sources": {source: sum(1 for r in readings if r.source == source)
                    for source in sorted({r.source for r in readings})},
        "first_reading_at": readings[0].measured_at, "last_reading_at": readings[-1].measured_at,
    }
    return [Finding(
        kind="wifi", key=key, school_pk=history.school_pk, responsible="school",
        started_at=readings[0].measured_at, last_evidence_at=readings[-1].measured_at, figures=figures,
        corroboration=(Sentence("wifi_readings", {"readings": len(signals), "poor": len(poor),
                                                  "threshold_dbm": limit}),),
        room_pk=room.room_pk)]


# --- silent agents ------------------------------------------------------------------------------


def silent(history: SchoolHistory, policy: DetectionPolicy, now: float) -> list[Outcome]:
    out: list[Outcome] = []
    in_session = history.calendar.in_session(now)
    for agent in history.agents:
        if agent.revoked:
            continue
        key = school_key("silent", history.school_pk, agent.slug)
        last = agent.last_report_at
        since = last if last is not None else agent.created_at
        quiet = now - since
        if quiet < policy.silent_after_seconds:
            if last is not None:
                out.append(Recovery(key, last, Sentence("silent_reported", {
                    "agent": agent.slug, "at": moment(last, history.calendar)})))
            continue
        said = (f"{agent.slug} has not reported since {clock(history, since)}" if last is not None
                else f"{agent.slug} has never reported since it was enrolled at {clock(history, since)}")
        if not in_session:
            out.append(Held("silent", key, history.school_pk, (
                f"{said} ({duration_english(quiet)}), but the school is not in session now: an agent "
                "silent out of school hours is not an incident")))
            continue
        out.append(Finding(
            kind="silent", key=key, school_pk=history.school_pk, responsible="school",
            started_at=since, last_evidence_at=now,
            figures={"agent": agent.slug, "agent_name": agent.name, "last_report_at": last,
                     "enrolled_at": agent.created_at, "silent_seconds": quiet,
                     "threshold_seconds": policy.silent_after_seconds, "in_session": True},
            corroboration=(Sentence("silent_in_session", {
                "agent": agent.slug, "since": moment(since, history.calendar), "never": last is None,
                "seconds": quiet}),),
            agent_pk=agent.pk))
    return out


# --- revoked agents -----------------------------------------------------------------------------


def revoked(history: SchoolHistory) -> list[Outcome]:
    """A revoked agent no longer measures: the problems only it watched are closed (or an
    open one would stay open for ever), without a time of restore: nothing was restored."""
    out: list[Outcome] = []
    for agent in history.agents:
        if not agent.revoked:
            continue
        at = agent.revoked_at if agent.revoked_at is not None else history.end
        reason = Sentence("agent_revoked", {"agent": agent.slug, "at": moment(at, history.calendar)})
        for kind in ("silent", "loss", "latency"):
            out.append(Recovery(school_key(kind, history.school_pk, agent.slug), at, reason, restored=False))
    return out

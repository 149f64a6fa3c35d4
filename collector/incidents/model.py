"""The words of incidents: kinds, states, what a detector finds, and its thresholds.

A detector looks at a school's recent history and says, per problem (its ``key``), one of
three things: a ``Finding`` (the problem holds now and the evidence is corroborated), a
``Held`` (something looks wrong but the evidence does not stand up: agent-limited results, a
single server, a LAN that was not fine), or a ``Recovery`` (the measurements show the problem
is over). Silence on a key means no evidence either way: an open incident stays as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from collector.incidents.sentences import Sentence

# The problems detection knows. "provider" is the provider-wide incident that links the
# schools' own incidents when several schools on one provider degrade together.
IncidentKind = Literal["bandwidth", "outage", "loss", "latency", "wifi", "silent", "provider"]
INCIDENT_KINDS: tuple[IncidentKind, ...] = get_args(IncidentKind)
# The kinds that are about the line (the provider's side) and may merge provider-wide.
LINE_KINDS: tuple[IncidentKind, ...] = ("bandwidth", "outage", "loss", "latency")

State = Literal["open", "acknowledged", "escalated", "resolved", "dismissed"]
STATES: tuple[State, ...] = get_args(State)
ACTIVE_STATES: tuple[State, ...] = ("open", "acknowledged", "escalated")
CLOSED_STATES: tuple[State, ...] = ("resolved", "dismissed")

# Who must act: the line's provider, or the school (its own network, Wi-Fi or agent).
Responsible = Literal["provider", "school"]
Impact = Literal["teaching", "administration"]
Urgency = Literal["high", "normal", "low"]
SlaClock = Literal["24x7", "business"]
SLA_CLOCKS: tuple[SlaClock, ...] = get_args(SlaClock)

# How an incident was closed: measurements recovered (the detector), by a person, or
# dismissed (a person, with a reason).
Resolution = Literal["recovered", "manual", "dismissed"]

# The actor of what the detector does, in incident_events.actor.
DETECTOR = "detector"


@dataclass(frozen=True)
class Finding:
    """A problem that holds now, on corroborated evidence."""

    kind: IncidentKind
    key: str
    school_pk: int
    responsible: Responsible
    started_at: float  # when the problem began: its first qualifying evidence
    last_evidence_at: float  # the newest evidence that it still holds
    # What was broken and by how much, JSON-able: e.g. {"direction": "download",
    # "threshold_ratio": 0.8, "ratio": 0.41, "advertised_bytes_per_second": 1.25e7,
    # "tests": [result ids]}. The evidence pack shows these.
    figures: Mapping[str, Any]
    # Why this is not the agent or the school's LAN: codes with params (sentences.py words
    # them in English and Dutch).
    corroboration: tuple[Sentence, ...]
    connection_pk: int | None = None
    agent_pk: int | None = None
    room_pk: int | None = None


@dataclass(frozen=True)
class Held:
    """Something looked wrong, but no incident: the reason, in one sentence."""

    kind: IncidentKind
    key: str
    school_pk: int
    reason: str


@dataclass(frozen=True)
class Recovery:
    """The measurements show the problem of ``key`` is over, since ``at``."""

    key: str
    at: float
    reason: Sentence  # "2 valid tests at 96 % and 101 % of the advertised download speed (…)"
    # False when the problem is over because it can no longer be measured (its agent was
    # revoked): the incident closes, but ``at`` is no time of restore and none is recorded.
    restored: bool = True


@dataclass
class Detection:
    school_pk: int
    findings: list[Finding] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    recoveries: dict[str, Recovery] = field(default_factory=dict)


@dataclass(frozen=True)
class DetectionPolicy:
    """The thresholds detection uses (collector-wide; defaults are what the alert rules use)."""

    # Bandwidth: the newest `bandwidth_tests` valid school-hours tests of a line within
    # `bandwidth_lookback` all below `bandwidth_ratio` of the advertised speed, each
    # corroborated by a second server; recovery: as many valid tests at or above it.
    bandwidth_ratio: float = 0.8
    bandwidth_tests: int = 2
    bandwidth_lookback_seconds: float = 24 * 3600.0
    # Outage: a provider-side outage (kind "isp") lasting at least this long.
    outage_min_seconds: float = 300.0
    # Loss and latency: `quality_windows` connectivity windows in a row with the internet
    # targets' loss at or above `loss_ratio` (or their median round trip at or above
    # `latency_seconds`) while the gateway was fine; recovery: as many fine windows in a row.
    quality_windows: int = 10
    loss_ratio: float = 0.05
    latency_seconds: float = 0.150
    # The gateway is "fine" (the LAN ruled out) below this loss and this median round trip.
    gateway_loss_max: float = 0.02
    gateway_latency_max_seconds: float = 0.030
    # Wi-Fi: a room whose median signal over its observations in the last
    # `wifi_lookback` school hours is below the "browsing" threshold, from at least
    # `wifi_observations` observations.
    wifi_observations: int = 5
    wifi_lookback_seconds: float = 24 * 3600.0
    wifi_poor_dbm: float = -75.0
    # Agent silent: no report for this long while its school is in session.
    silent_after_seconds: float = 1800.0
    # Provider-wide: this many schools of one provider with a line incident of the same
    # kind that began within `provider_merge_seconds` of each other.
    provider_min_schools: int = 3
    provider_merge_seconds: float = 2 * 3600.0

    @property
    def lookback_seconds(self) -> float:
        """How far back one run reads: the longest period any detector looks at (and how
        long a closed school incident may still merge provider-wide)."""
        return max(self.bandwidth_lookback_seconds, self.wifi_lookback_seconds,
                   self.silent_after_seconds, self.outage_min_seconds, self.provider_merge_seconds)


def school_key(kind: IncidentKind, school_pk: int, *parts: str) -> str:
    """The key of a school's problem: kind, school, and what it is about (line, direction,
    room, agent), so one problem has one key however often it is detected."""
    return ":".join((kind, str(school_pk), *parts))


def provider_key(provider_id: str, kind: IncidentKind) -> str:
    return f"provider:{provider_id}:{kind}"

"""Is the line big enough for the school's own use, per capacity profile?

    required = max(peak concurrent devices in school hours * per device,
                   video participants * per participant) * (1 + margin)

compared twice: with the median download measured in school hours (does the line deliver
it?) and with the advertised download of the current terms (is the contract itself big
enough?). The profiles and their sources are in collector/policy.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from collector.policy import PROFILES, CapacityPolicy, ProfileName
from collector.terms import Terms
from collector.verdicts.model import Measurement
from collector.verdicts.stats import median


class Latest(Enum):
    """Take the contract from the latest measurement (the caller does not know today's)."""

    TERMS = "latest"


@dataclass(frozen=True)
class ProfileCapacity:
    profile: ProfileName
    per_device_bytes_per_second: float
    required_bytes_per_second: float | None
    measured_sufficient: bool | None  # median school-hours download >= required
    contract_sufficient: bool | None  # advertised download >= required
    reason: str | None  # why a verdict is None


@dataclass(frozen=True)
class CapacityVerdict:
    peak_concurrent_devices: int | None  # in school hours, over valid tests that counted devices
    video_participants: int | None
    school_hours_tests: int  # valid tests with a download in school hours
    median_download_bytes_per_second: float | None
    advertised_download_bytes_per_second: float | None
    margin_ratio: float
    profiles: dict[ProfileName, ProfileCapacity]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def capacity_verdict(measurements: Sequence[Measurement], policy: CapacityPolicy,
                     video_participants: int | None, terms: Terms | Latest | None = Latest.TERMS
                     ) -> CapacityVerdict:
    """``terms``: the contract in force now (None: none is, so no contract verdict); by
    default the terms of the latest measurement."""
    school = [m for m in measurements if m.valid and m.in_session]
    devices = [m.concurrent_devices for m in school if m.concurrent_devices is not None]
    downloads = [m.download for m in school if m.download is not None]
    peak = max(devices) if devices else None
    measured = median(downloads) if downloads else None
    if isinstance(terms, Latest):
        latest = max((m for m in measurements if m.terms is not None), key=lambda m: m.measured_at,
                     default=None)
        terms = latest.terms if latest is not None else None
    advertised = terms.download_advertised if terms is not None else None
    profiles: dict[ProfileName, ProfileCapacity] = {}
    for name in PROFILES:
        per_device = policy.per_device_bytes_per_second[name]
        required = None
        if peak is not None:
            video = (video_participants or 0) * policy.per_video_participant_bytes_per_second
            required = max(peak * per_device, video) * (1 + policy.margin_ratio)
        profiles[name] = ProfileCapacity(
            profile=name, per_device_bytes_per_second=per_device, required_bytes_per_second=required,
            measured_sufficient=None if required is None or measured is None else measured >= required,
            contract_sufficient=None if required is None or advertised is None else advertised >= required,
            reason=_reason(peak, measured, advertised))
    return CapacityVerdict(
        peak_concurrent_devices=peak, video_participants=video_participants,
        school_hours_tests=len(downloads), median_download_bytes_per_second=measured,
        advertised_download_bytes_per_second=advertised, margin_ratio=policy.margin_ratio,
        profiles=profiles)


def _reason(peak: int | None, measured: float | None, advertised: float | None) -> str | None:
    if peak is None:
        # Video participants alone would understate the need: every other device counts too.
        return "no test in school hours counted the concurrent devices"
    missing = []
    if measured is None:
        missing.append("no valid download measured in school hours")
    if advertised is None:
        missing.append("no contract terms known")
    return "; ".join(missing) or None

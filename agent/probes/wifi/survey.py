"""Site surveys: a room's Wi-Fi as a laptop sees it, from a walk or an imported capture.

The walk (``schoolnet-agent survey``) is for an ICT coordinator carrying a laptop from
room to room: it asks for the room, takes a few samples, shows the grade at once and keeps
one ``survey`` record per room. The import (``survey import FILE --room ROOM``) turns a
capture a teacher made on a classroom laptop into the same record.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.coverage import MEANING, grade
from agent.probes.wifi.formats import Capture
from agent.probes.wifi.networks import fit_reading, radio_fields, summarise_scan
from agent.probes.wifi.reading import LinkReading, ScanEntry
from agent.units import slugify
from agent.wire import CoverageGrade, SurveyMethod, SurveyPayload, WifiScan

ROOM_NAME_MAX = 200


class SurveyError(ValueError):
    """A survey that cannot be recorded; the message says why, in one line."""


def room_id(name: str) -> str:
    """The room's id from what the coordinator typed ("Lokaal 1.04" -> "lokaal-1-04")."""
    name = name.strip()
    if not name:
        raise SurveyError("the room needs a name")
    if len(name) > ROOM_NAME_MAX:
        raise SurveyError(f"a room name of more than {ROOM_NAME_MAX} characters is too long")
    slug = slugify(name)
    if not slug:
        raise SurveyError(f"{name!r} gives no room id: use letters or digits")
    return slug


def median_index(values: Sequence[float]) -> int:
    """The position (in ``values``) of the nearest-rank median: a value that was measured,
    never an average of two."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    return order[math.ceil(len(values) / 2) - 1]


def survey_record(room: str, links: Sequence[LinkReading], scan: Sequence[ScanEntry] | None,
                  method: SurveyMethod, configured_ssids: Sequence[str],
                  source: str | None = None) -> SurveyPayload:
    """One room's record from its samples (a walk) or one capture (an import).

    Only links to the school's own networks (``configured_ssids``) count: a laptop on a
    phone's hotspot in a room with bad Wi-Fi measures the phone, not the school, and its
    name and address must not be recorded. A link whose SSID the tool hid (macOS without
    Location permission) is taken as the school's: it carries no name or address to leak.

    The signal is the median of the school-connected samples, with its other values
    (channel, bitrates, noise) from that same sample; min and max show the spread. With no
    such link but a scan, the signal is the strongest access point of the school's own
    networks: what a device there would connect to. No connection and no such access
    point: the room has no coverage, and the record says so (signal null, grade "none").
    Only connections to other networks and nothing else: SurveyError, as that says nothing
    about the room.
    """
    name = room.strip()
    own = frozenset(configured_ssids)
    links = [fit_reading(link) for link in links]  # a value the wire refuses is not a sample's
    school = [link for link in links if link.connected and (link.ssid is None or link.ssid in own)]
    foreign = sorted({link.ssid for link in links if link.connected and link.ssid is not None
                      and link.ssid not in own})
    measured = [link for link in school if link.signal_dbm is not None]
    chosen = measured[median_index([link.signal_dbm for link in measured])] if measured else None  # type: ignore[misc]
    if chosen is None and school:
        chosen = school[0]
    summary = summarise_scan(scan, own) if scan is not None else WifiScan()
    if chosen is not None:
        fields = radio_fields(chosen, own)  # a hidden SSID keeps no BSSID either
    else:
        fields = _from_strongest_access_point(summary, source or (links[0].source if links else "scan"))
        if fields.get("signal_dbm") is None and foreign:
            raise SurveyError(f"connected to {', '.join(map(repr, foreign))}, not to one of the "
                              f"school's networks ({', '.join(configured_ssids)}): connect to the "
                              "school's Wi-Fi and measure again")
    signals = [link.signal_dbm for link in measured if link.signal_dbm is not None]
    return SurveyPayload(
        room=room_id(name), room_name=name, method=method, samples=max(len(links), 1),
        scanned=scan is not None, signal_min_dbm=min(signals) if signals else None,
        signal_max_dbm=max(signals) if signals else None,
        **summary.model_dump(), **fields)


def _from_strongest_access_point(summary: WifiScan, source: str) -> dict[str, object]:
    strongest = next((p for p in summary.access_points if p.signal_dbm is not None), None)
    if strongest is None:
        return {"source": source, "connected": False}
    return {"source": source, "connected": False, "ssid": strongest.ssid, "bssid": strongest.bssid,
            "signal_dbm": strongest.signal_dbm, "signal_converted": strongest.signal_converted,
            "frequency_hertz": strongest.frequency_hertz, "channel": strongest.channel,
            "band": strongest.band}


def import_record(capture: Capture, room: str, configured_ssids: Sequence[str]) -> SurveyPayload:
    """The survey record of one imported capture; a capture that says nothing about the
    room's coverage is refused with the reason."""
    link = capture.link
    if link is not None and not link.connected and not capture.scan:
        raise SurveyError(f"the '{capture.format}' capture shows no Wi-Fi connection: make it "
                          "while the laptop is connected to the school's Wi-Fi")
    if link is not None and link.connected and link.signal_dbm is None:
        raise SurveyError(f"the '{capture.format}' capture has no signal strength in dBm "
                          "(this driver reports relative units): capture another tool's output")
    try:
        record = survey_record(room, [link] if link is not None else [], capture.scan or None,
                               "import", configured_ssids, source=link.source if link else None)
    except SurveyError as exc:
        raise SurveyError(f"the '{capture.format}' capture is {exc}") from None
    if record.signal_dbm is None and not record.connected:
        raise SurveyError(f"the '{capture.format}' capture shows no access point of the school's "
                          f"networks ({', '.join(configured_ssids)}): capture while connected to one")
    return record


# --- the walk -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoomResult:
    record: SurveyPayload

    @property
    def grade(self) -> CoverageGrade:
        return grade(self.record.signal_dbm)

    def summary(self) -> str:
        """One line for the coordinator, shown the moment the room is done."""
        record = self.record
        if record.signal_dbm is None:
            return f"{record.room_name}: no Wi-Fi connection in {record.samples} samples (grade none)"
        where = ", ".join(part for part in (
            record.band, f"channel {record.channel}" if record.channel else None,
            f"access point {record.bssid}" if record.bssid else None) if part)
        spread = ""
        if record.signal_min_dbm is not None and record.signal_max_dbm is not None and record.samples > 1:
            spread = f" (min {record.signal_min_dbm:g}, max {record.signal_max_dbm:g})"
        converted = " converted from the tool's percentage," if record.signal_converted else ""
        return (f"{record.room_name}: {record.signal_dbm:g} dBm{spread},{converted} grade "
                f"{self.grade}: {MEANING[self.grade]}" + (f"; {where}" if where else ""))


Sampler = Callable[[], LinkReading]
Scanner = Callable[[], list[ScanEntry]]


def sample_room(room: str, sampler: Sampler, samples: int, every: float,
                scanner: Scanner | None, configured_ssids: Sequence[str],
                progress: Callable[[int], None] = lambda done: None,
                sleep: Callable[[float], None] = time.sleep) -> RoomResult:
    """Take ``samples`` link readings ``every`` seconds apart (then a scan, when asked) and
    make the room's record. A reading that fails is a failed sample, not a failed room: the
    reason surfaces only when every sample failed."""
    room_id(room)  # refuse a bad name before the coordinator waits for samples
    links: list[LinkReading] = []
    failures: list[str] = []
    for index in range(samples):
        if index:
            sleep(every)
        try:
            links.append(sampler())
        except Exception as exc:  # the source's Unavailable, a tool's odd output: one sample lost
            failures.append(str(exc) or type(exc).__name__)
        progress(index + 1)
    if not links:
        raise SurveyError(f"no sample could be read: {failures[-1]}")
    scan: list[ScanEntry] | None = None
    if scanner is not None:
        try:
            scan = scanner()
        except Exception:
            scan = None  # the link samples are the survey; a scan only adds to it
    return RoomResult(survey_record(room, links, scan, "walk", configured_ssids))


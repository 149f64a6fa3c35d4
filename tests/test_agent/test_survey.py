"""The survey: records from samples and captures, and the walk driven with answers on
stdin and a fake sampler (there is no Wi-Fi hardware here)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from agent.cli import CommandError
from agent.probes.wifi.formats import Capture
from agent.probes.wifi.reading import LinkReading, ScanEntry
from agent.probes.wifi.survey import (
    SurveyError,
    import_record,
    median_index,
    room_id,
    sample_room,
)
from agent.survey_cli import read_text, walk

AP = "04:f0:21:32:3f:d2"


def reading(signal: float, **values: object) -> LinkReading:
    return LinkReading(source="iw-link", interface="wlan0", ssid="School", bssid=AP,
                       signal_dbm=signal, channel=36, band="5GHz", frequency_hertz=5_180_000_000,
                       **values)  # type: ignore[arg-type]


class Sampler:
    """Readings in turn, as a laptop carried through a room would give them."""

    def __init__(self, *signals: float | Exception | None) -> None:
        self.signals = list(signals)

    def __call__(self) -> LinkReading:
        value = self.signals.pop(0)
        if isinstance(value, Exception):
            raise value
        if value is None:
            return LinkReading(source="iw-link", interface="wlan0", connected=False)
        return reading(value, rx_bitrate_bits_per_second=-value * 1e6)


def no_sleep(_: float) -> None:
    pass


def test_room_ids_come_from_what_the_coordinator_types() -> None:
    assert room_id("Lokaal 1.04") == "lokaal-1-04"
    assert room_id("  Gym  ") == "gym"
    with pytest.raises(SurveyError, match="needs a name"):
        room_id("  ")
    with pytest.raises(SurveyError, match="gives no room id"):
        room_id("???")


def test_the_median_is_a_sample_that_was_measured() -> None:
    assert median_index([-60, -70, -65]) == 2
    assert median_index([-60, -70]) == 1  # nearest rank: the lower of two, never their mean
    assert median_index([-50]) == 0


def test_a_room_record_is_the_median_sample_with_the_spread() -> None:
    result = sample_room("B 204", Sampler(-58, -71, -64, -60, -66), 5, 0, None, [], sleep=no_sleep)
    record = result.record
    assert (record.room, record.room_name, record.method) == ("b-204", "B 204", "walk")
    assert record.samples == 5 and not record.scanned
    # The median sample (-64) with its own other values, not a mix of samples.
    assert record.signal_dbm == -64 and record.rx_bitrate_bits_per_second == 64e6
    assert (record.signal_min_dbm, record.signal_max_dbm) == (-71, -58)
    assert result.grade == "video"
    assert "B 204: -64 dBm (min -71, max -58)" in result.summary()


def test_a_failed_sample_is_one_sample_lost_and_all_failed_is_an_error() -> None:
    result = sample_room("Gym", Sampler(RuntimeError("iw hung"), -75, -77), 3, 0, None, [],
                         sleep=no_sleep)
    assert result.record.samples == 2 and result.record.signal_dbm == -77
    assert result.grade == "poor"
    with pytest.raises(SurveyError, match="no sample could be read: iw hung"):
        sample_room("Gym", Sampler(RuntimeError("iw hung")), 1, 0, None, [], sleep=no_sleep)


def test_a_room_without_any_connection_is_recorded_as_no_coverage() -> None:
    result = sample_room("Cellar", Sampler(None, None), 2, 0, None, [], sleep=no_sleep)
    assert result.record.signal_dbm is None and not result.record.connected
    assert result.grade == "none"
    assert "no Wi-Fi connection" in result.summary()


def test_a_scan_in_the_room_adds_the_schools_access_points_only() -> None:
    scan = [ScanEntry("iw-scan", AP, "School", signal_dbm=-60, channel=36, band="5GHz", station_count=7),
            ScanEntry("iw-scan", "cc:db:93:d1:06:c0", "Neighbour", signal_dbm=-70, channel=1)]
    result = sample_room("B 204", Sampler(-60), 1, 0, lambda: scan, [], sleep=no_sleep)
    record = result.record
    assert record.scanned
    assert [(p.bssid, p.station_count) for p in record.access_points] == [(AP, 7)]
    assert record.other_networks == 1


def test_an_import_of_a_disconnected_capture_says_what_to_do() -> None:
    capture = Capture("netsh wlan show interfaces", LinkReading(source="netsh-interfaces", connected=False))
    with pytest.raises(SurveyError, match="shows no Wi-Fi connection"):
        import_record(capture, "B 204", [])


def test_an_import_without_dbm_is_refused_rather_than_guessed() -> None:
    capture = Capture("cat /proc/net/wireless",
                      LinkReading(source="proc-net-wireless", signal_percent=60, signal_dbm=None))
    with pytest.raises(SurveyError, match="no signal strength in dBm"):
        import_record(capture, "B 204", [])


def test_a_bare_scan_import_grades_by_the_strongest_school_access_point() -> None:
    scan = [ScanEntry("netsh-networks", AP, "School", signal_dbm=-73.5, signal_percent=53,
                      signal_converted=True, channel=6, band="2.4GHz"),
            ScanEntry("netsh-networks", "04:f0:21:32:3f:d3", "School", signal_dbm=-80, channel=11)]
    record = import_record(Capture("netsh wlan show networks mode=bssid", None, scan), "B 204", ["School"])
    assert record.signal_dbm == -73.5 and record.signal_converted and record.bssid == AP
    assert not record.connected
    with pytest.raises(SurveyError, match="no access point of the school's networks"):
        import_record(Capture("netsh wlan show networks mode=bssid", None, scan), "B 204", ["Other"])


def test_the_walk_asks_until_an_empty_answer_and_shows_each_room_at_once() -> None:
    answers = io.StringIO("Lokaal 1.04\n???\nGym\n\nnever asked\n")
    screen = io.StringIO()
    sampler = Sampler(-55, -57, -56, -74, -76, -75)
    records = walk(answers, screen, sampler, None, [], samples=3, every=0)
    assert [r.room for r in records] == ["lokaal-1-04", "gym"]
    assert [r.signal_dbm for r in records] == [-56, -75]
    shown = screen.getvalue()
    assert shown.count("Room (name or number") == 4
    assert "Lokaal 1.04: -56 dBm" in shown and "grade video" in shown
    assert "???: '???' gives no room id" in shown  # refused before any sample was taken
    assert "Gym: -75 dBm" in shown and "grade poor" in shown


def test_the_walk_ends_at_the_end_of_input(capsys: pytest.CaptureFixture[str]) -> None:
    records = walk(io.StringIO("Gym"), io.StringIO(), Sampler(-60), None, [], samples=1, every=0,
                   as_json=True)
    assert len(records) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["room"] == "gym" and printed["grade"] == "video" and printed["signal_dbm"] == -60


def test_captures_are_read_whatever_wrote_them(tmp_path: Path) -> None:
    text = "    Signal                 : 53%\n    Übertragungsrate (MBit/s) : 300\n"
    cases = {"utf16.txt": text.encode("utf-16"), "utf8.txt": b"\xef\xbb\xbf" + text.encode(),
             "cp850.txt": text.encode("cp850")}
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        assert read_text(str(tmp_path / name)).lstrip("\ufeff") == text, name
    with pytest.raises(CommandError, match="does not exist"):
        read_text(str(tmp_path / "missing.txt"))

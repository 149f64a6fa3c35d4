"""The survey: records from samples and captures, and the walk driven with answers on
stdin and a fake sampler (there is no Wi-Fi hardware here)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
from pathlib import Path

import pytest
from support.wifi_samples import sample

from agent.cli import CommandError
from agent.probes.wifi.formats import Capture, read_capture
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
SCHOOL = ["School"]  # probes.wifi.ssids: a survey must know the school's networks


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
    result = sample_room("B 204", Sampler(-58, -71, -64, -60, -66), 5, 0, None, SCHOOL, sleep=no_sleep)
    record = result.record
    assert (record.room, record.room_name, record.method) == ("b-204", "B 204", "walk")
    assert record.samples == 5 and not record.scanned
    # The median sample (-64) with its own other values, not a mix of samples.
    assert record.signal_dbm == -64 and record.rx_bitrate_bits_per_second == 64e6
    assert (record.signal_min_dbm, record.signal_max_dbm) == (-71, -58)
    assert result.grade == "video"
    assert "B 204: -64 dBm (min -71, max -58)" in result.summary()


def test_a_failed_sample_is_one_sample_lost_and_all_failed_is_an_error() -> None:
    result = sample_room("Gym", Sampler(RuntimeError("iw hung"), -75, -77), 3, 0, None, SCHOOL,
                         sleep=no_sleep)
    assert result.record.samples == 2 and result.record.signal_dbm == -77
    assert result.grade == "poor"
    with pytest.raises(SurveyError, match="no sample could be read: iw hung"):
        sample_room("Gym", Sampler(RuntimeError("iw hung")), 1, 0, None, SCHOOL, sleep=no_sleep)


def test_a_room_without_any_connection_is_recorded_as_no_coverage() -> None:
    result = sample_room("Cellar", Sampler(None, None), 2, 0, None, SCHOOL, sleep=no_sleep)
    assert result.record.signal_dbm is None and not result.record.connected
    assert result.grade == "none"
    assert "no Wi-Fi connection" in result.summary()


def test_a_scan_in_the_room_adds_the_schools_access_points_only() -> None:
    scan = [ScanEntry("iw-scan", AP, "School", signal_dbm=-60, channel=36, band="5GHz", station_count=7),
            ScanEntry("iw-scan", "cc:db:93:d1:06:c0", "Neighbour", signal_dbm=-70, channel=1)]
    result = sample_room("B 204", Sampler(-60), 1, 0, lambda: scan, SCHOOL, sleep=no_sleep)
    record = result.record
    assert record.scanned
    assert [(p.bssid, p.station_count) for p in record.access_points] == [(AP, 7)]
    assert record.other_networks == 1


def test_an_import_of_a_disconnected_capture_says_what_to_do() -> None:
    capture = Capture("netsh wlan show interfaces", LinkReading(source="netsh-interfaces", connected=False))
    with pytest.raises(SurveyError, match="shows no Wi-Fi connection"):
        import_record(capture, "B 204", SCHOOL)


def test_an_import_without_dbm_is_refused_rather_than_guessed() -> None:
    capture = Capture("cat /proc/net/wireless",
                      LinkReading(source="proc-net-wireless", signal_percent=60, signal_dbm=None))
    with pytest.raises(SurveyError, match="no signal strength in dBm"):
        import_record(capture, "B 204", SCHOOL)


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
    records = walk(answers, screen, sampler, None, SCHOOL, samples=3, every=0)
    assert [r.room for r in records] == ["lokaal-1-04", "gym"]
    assert [r.signal_dbm for r in records] == [-56, -75]
    shown = screen.getvalue()
    assert shown.count("Room (name or number") == 4
    assert "Lokaal 1.04: -56 dBm" in shown and "grade video" in shown
    assert "???: '???' gives no room id" in shown  # refused before any sample was taken
    assert "Gym: -75 dBm" in shown and "grade poor" in shown


def test_the_walk_ends_at_the_end_of_input(capsys: pytest.CaptureFixture[str]) -> None:
    records = walk(io.StringIO("Gym"), io.StringIO(), Sampler(-60), None, SCHOOL, samples=1, every=0,
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


# ---- review of issue 5: odd values, two captures in one file, nothing lost ------------------

def test_a_sample_the_wire_would_refuse_loses_that_value_not_the_room() -> None:
    # A driver's positive "dBm" and a channel above 255 would make the whole record invalid.
    odd = dataclasses.replace(reading(35.0), channel=300)
    result = sample_room("Gym", Sampler(-70), 1, 0, None, SCHOOL, sleep=no_sleep)
    odd_result = sample_room("Gym", lambda: odd, 1, 0, None, SCHOOL, sleep=no_sleep)
    assert result.record.signal_dbm == -70
    assert odd_result.record.signal_dbm is None and odd_result.record.channel is None
    assert odd_result.record.signal_max_dbm is None
    assert odd_result.record.frequency_hertz == 5_180_000_000


def test_two_captures_pasted_into_one_file_are_read_together() -> None:
    interfaces = sample("windows_netsh_show_interfaces.txt", "A").replace(
        "AP BSSID               : xx:xx:xx:xx:xx:xx", "AP BSSID               : 00:aa:f2:77:a5:53")
    networks = sample("windows_netsh_show_networks_bssid.txt", "A").replace("AP-Test1", "SomeSSID")
    for text in (f"C:\\Users\\juf>netsh wlan show interfaces\n{interfaces}\n"
                 f"C:\\Users\\juf>netsh wlan show networks mode=bssid\n{networks}",
                 f"{networks}\n{interfaces}"):
        capture = read_capture(text)
        assert capture.link is not None and capture.link.signal_dbm == -73.5
        # The link's own values, not the first network's (this build prints no Band there).
        assert (capture.link.channel, capture.link.band, capture.link.phy_mode) == (36, "5GHz", "802.11ax")
        assert [(e.ssid, e.channel) for e in capture.scan] == [("SomeSSID", 6)]
        assert "netsh wlan show interfaces" in capture.format
        assert "netsh wlan show networks mode=bssid" in capture.format
        record = import_record(capture, "Lokaal 2.11", ["SomeSSID"])
        assert record.signal_dbm == -73.5 and record.connected and record.scanned
        assert [p.bssid for p in record.access_points] == ["00:aa:f2:77:a5:53"]


def test_iw_link_with_its_scan_and_station_dump_in_one_file() -> None:
    link = sample("linux_iw_dev_link.txt", 0)
    scan = sample("linux_iw_scan_raspberrypi.txt")
    capture = read_capture(f"$ iw dev wlp0s20f3 link\n{link}$ iw dev wlan0 scan\n{scan}")
    assert capture.link is not None and capture.link.signal_dbm == -44
    assert capture.link.ssid is not None and len(capture.scan) == 2
    station = sample("linux_iw_station_dump.txt", "A")
    ap = re.search(r"Station (\S+)", station)
    assert ap is not None
    own_link = link.replace(re.search(r"Connected to (\S+)", link).group(1), ap.group(1))  # type: ignore[union-attr]
    both = read_capture(f"{own_link}\n{station}")
    assert both.link is not None and both.link.tx_retries is not None  # from the station dump
    assert both.link.ssid is not None and both.link.frequency_hertz is not None  # from the link


class Interrupted(io.StringIO):
    """Answers that end in Ctrl-C, as a coordinator ends a walk."""

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        line = super().readline()
        if not line:
            raise KeyboardInterrupt
        return line


def test_each_room_is_kept_the_moment_it_is_done_and_ctrl_c_ends_the_walk() -> None:
    kept: list[str] = []
    records = walk(Interrupted("Library\nGym\n"), io.StringIO(), Sampler(-60, -70), None, SCHOOL,
                   samples=1, every=0, keep=lambda record: kept.append(record.room))
    assert [r.room for r in records] == ["library", "gym"]
    assert kept == ["library", "gym"]


def test_a_utf16_file_cut_short_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "cut.txt"
    path.write_bytes("    Signal : 53%\n".encode("utf-16") + b"\x20")  # an odd number of bytes
    assert "Signal : 53%" in read_text(str(path))


def enrolled_laptop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delivered: list[int]) -> Path:
    """A config of an enrolled laptop whose collector cannot be reached: ``delivered`` gets
    the outbox depth at each delivery attempt. Returns the config file."""
    from agent.credential import Credential, save_credential
    from agent.outbox import Outbox

    state = tmp_path / "state"
    save_credential(state, Credential("https://127.0.0.1:9", "sna_walk", "b", "s", "laptop"))
    config = tmp_path / "agent.toml"
    config.write_text(f'state_dir = "{state}"\n[probes.wifi]\nssids = ["School", "HOME5"]\n')
    for variable in [name for name in os.environ if name.startswith("SCHOOLNET_")]:
        monkeypatch.delenv(variable)

    def unreachable(settings: object, credential: object, outbox: Outbox) -> list[str]:
        delivered.append(outbox.status().records)
        return ["upload: cannot reach the collector (the records stay in the outbox)"]

    monkeypatch.setattr("agent.daemon.deliver", unreachable)
    return config


def outbox_records(config: Path) -> int:
    from agent.daemon import OUTBOX_FILE
    from agent.outbox import Outbox

    outbox = Outbox(config.parent / "state" / OUTBOX_FILE, 10_000_000)
    try:
        return outbox.status().records
    finally:
        outbox.close()


def test_a_walk_that_cannot_deliver_leaves_every_room_in_the_outbox(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from agent import cli

    delivered: list[int] = []
    config = enrolled_laptop(tmp_path, monkeypatch, delivered)

    class Laptop:
        name, interface = "fake", "wlan0"
        link = staticmethod(Sampler(-60, -70))

        def scan(self, trigger: bool) -> list[ScanEntry]:
            return []

    monkeypatch.setattr("agent.probes.wifi.source.open_source", lambda config: Laptop())
    monkeypatch.setattr("sys.stdin", Interrupted("Library\nGym\n"))  # ended with Ctrl-C
    status = cli.main(["--config", str(config), "survey", "--samples", "1", "--every", "0s"])
    err = capsys.readouterr().err
    assert status == 1
    assert "2 survey records kept in the outbox" in err
    assert delivered == [2]
    assert outbox_records(config) == 2


def test_an_import_that_cannot_deliver_stays_in_the_outbox(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from agent import cli

    delivered: list[int] = []
    config = enrolled_laptop(tmp_path, monkeypatch, delivered)
    capture = tmp_path / "lokaal.txt"
    capture.write_text(sample("linux_iw_dev_link.txt", 0))
    status = cli.main(["--config", str(config), "survey", "import", str(capture), "--room", "Lokaal 1"])
    out, err = capsys.readouterr()
    assert status == 1 and "grade video" in out
    assert "1 survey record kept in the outbox" in err
    assert delivered == [1] and outbox_records(config) == 1


@pytest.mark.parametrize(("which", "signal"), [("B", -67.5), ("C", -52.5)])  # fr-FR, es-ES
def test_a_capture_saved_by_old_notepad_in_the_ansi_code_page_is_read(
        tmp_path: Path, which: str, signal: float) -> None:
    # Pasted from the console into Notepad before Windows 10 1903, saved as "ANSI": cp1252,
    # not the console's cp850 ("Señal" would become "Se±al", and the signal unknown).
    text = sample("windows_netsh_show_interfaces_localised.txt", which)
    path = tmp_path / "notepad.txt"
    path.write_bytes(text.encode("cp1252"))
    assert read_text(str(path)) == text
    capture = read_capture(read_text(str(path)))
    assert capture.link is not None and capture.link.signal_dbm == signal
    console = text.replace("\u2019", "'")  # cp850 has no typographic apostrophe
    (tmp_path / "console.txt").write_bytes(console.encode("cp850"))  # cmd.exe's own `>`
    assert read_text(str(tmp_path / "console.txt")) == console


# ---- only the school's own networks count ---------------------------------------------------


def test_a_laptop_on_a_phone_hotspot_measures_the_phone_and_is_refused() -> None:
    hotspot = LinkReading(source="netsh-interfaces", ssid="Jan's iPhone", bssid="cc:db:93:d1:06:c0",
                          signal_dbm=-40.0, channel=6)
    with pytest.raises(SurveyError, match="connected to \"Jan's iPhone\", not to one of the school's"):
        sample_room("Gym", lambda: hotspot, 2, 0, None, SCHOOL, sleep=no_sleep)
    with pytest.raises(SurveyError, match="capture is connected to \"Jan's iPhone\""):
        import_record(Capture("netsh wlan show interfaces", hotspot), "Gym", SCHOOL)
    # With a scan that hears the school's access point, that is the room's coverage, and the
    # phone's name and address are nowhere in the record.
    scan = [ScanEntry("netsh-networks", AP, "School", signal_dbm=-70.0, channel=1),
            ScanEntry("netsh-networks", "cc:db:93:d1:06:c0", "Jan's iPhone", signal_dbm=-40.0, channel=6)]
    record = import_record(Capture("netsh wlan show interfaces", hotspot, scan), "Gym", SCHOOL)
    assert record.signal_dbm == -70.0 and record.bssid == AP and not record.connected
    text = record.model_dump_json()
    assert "iPhone" not in text and "cc:db:93" not in text


def test_a_link_whose_ssid_the_os_hid_counts_without_name_or_address() -> None:
    hidden = LinkReading(source="system-profiler", ssid=None, bssid=None, signal_dbm=-58.0, channel=149)
    record = sample_room("Aula", lambda: hidden, 1, 0, None, SCHOOL, sleep=no_sleep).record
    assert record.signal_dbm == -58.0 and record.connected
    assert record.ssid is None and record.bssid is None


def test_a_survey_without_the_schools_network_names_is_refused(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from agent import cli

    for variable in [name for name in os.environ if name.startswith("SCHOOLNET_")]:
        monkeypatch.delenv(variable)
    config = tmp_path / "agent.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    capture = tmp_path / "capture.txt"
    capture.write_text(sample("linux_iw_dev_link.txt", 0))
    for command in (["survey", "import", str(capture), "--room", "Gym", "--json"], ["survey"]):
        assert cli.main(["--config", str(config), *command]) == 1
        [line] = capsys.readouterr().err.strip().splitlines()
        assert "a survey must know the school's Wi-Fi networks: set probes.wifi.ssids" in line

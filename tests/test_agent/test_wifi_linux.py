"""The Linux source: interface discovery in fake sysfs trees, source selection, and reading
through fake `iw` / `nmcli` executables that print the real captures."""

from __future__ import annotations

import errno
import shlex
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.wifi_samples import sample

from agent.config import WifiProbeConfig
from agent.probes.wifi import linux
from agent.probes.wifi.source import NoWirelessInterface, Unavailable

PROC_HEADER = ("Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n"
               " face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n")
# iw's survey.c print format (see test_wifi_iw.py).
SURVEY = ("Survey data from wlp0s20f3\n\tfrequency:\t\t\t5280 MHz [in use]\n\tnoise:\t\t\t\t-95 dBm\n"
          "Survey data from wlp0s20f3\n\tfrequency:\t\t\t5300 MHz\n\tnoise:\t\t\t\t-92 dBm\n")
TERSE = ",".join(("IN-USE", "BSSID", "SSID", "CHAN", "FREQ", "RATE", "SIGNAL", "SECURITY"))




def sysfs(tmp_path: Path, wireless: dict[str, str], wired: tuple[str, ...] = ("eth0", "lo")) -> Path:
    """A fake /sys/class/net: each wireless interface with its "wireless" (wireless
    extensions) or "phy80211" (cfg80211) entry, wired ones without."""
    root = tmp_path / "sys" / "class" / "net"
    for name, entry in wireless.items():
        (root / name / entry).mkdir(parents=True)
    for name in wired:
        (root / name).mkdir(parents=True)
        (root / name / "operstate").write_text("up\n")
    return root


@dataclass
class Reply:
    stdout: str = ""
    stderr: str = ""
    status: int = 0


class FakeTool:
    """An executable script that answers each exact argument list with a canned reply and
    logs every call (arguments and its LC_ALL) for the test to read."""

    def __init__(self, tmp_path: Path, name: str, replies: dict[str, Reply]) -> None:
        self.path = tmp_path / "bin" / name
        self.path.parent.mkdir(exist_ok=True)
        self._log = tmp_path / f"{name}.calls"
        cases = []
        for index, (arguments, reply) in enumerate(replies.items()):
            out = tmp_path / f"{name}.{index}.out"
            err = tmp_path / f"{name}.{index}.err"
            out.write_text(reply.stdout, encoding="utf-8")
            err.write_text(reply.stderr, encoding="utf-8")
            cases.append(f"  {shlex.quote(arguments)}) cat {out}; cat {err} >&2; exit {reply.status} ;;")
        self.path.write_text("#!/bin/sh\n"
                             f'printf "%s|%s\\n" "$LC_ALL" "$*" >> {self._log}\n'
                             'case "$*" in\n' + "\n".join(cases) +
                             '\n  *) echo "unexpected arguments: $*" >&2; exit 64 ;;\nesac\n')
        self.path.chmod(0o755)

    def calls(self) -> list[str]:
        return self._log.read_text().splitlines() if self._log.exists() else []


class NoNl80211:
    """A netlink socket whose kernel knows no nl80211 family (ENOENT), like this machine's."""

    def __init__(self) -> None:
        self._reply = b""

    def bind(self, address: tuple[int, int], /) -> None: ...

    def setsockopt(self, level: int, option: int, value: int, /) -> None: ...

    def settimeout(self, timeout: float | None, /) -> None: ...

    def send(self, data: bytes, /) -> int:
        seq = struct.unpack_from("=I", data, 8)[0]
        # struct nlmsghdr + struct nlmsgerr {int error; struct nlmsghdr msg} (linux/netlink.h)
        header = struct.pack("=IHHII", 36, 2, 0x100, seq, 0)  # NLMSG_ERROR, NLM_F_CAPPED
        self._reply = header + struct.pack("=i", -errno.ENOENT) + data[:16]
        return len(data)

    def recv(self, size: int, /) -> bytes:
        return self._reply

    def close(self) -> None: ...


def config(**values: object) -> WifiProbeConfig:
    return WifiProbeConfig.model_validate(values)


# ---- interfaces ---------------------------------------------------------------------------

def test_wireless_interfaces_in_sysfs(tmp_path: Path) -> None:
    root = sysfs(tmp_path, {"wlx00c0ca000001": "wireless", "wlan0": "phy80211"})
    assert linux.wireless_interfaces(root) == ["wlan0", "wlx00c0ca000001"]
    assert linux.wireless_interfaces(tmp_path / "missing") == []


def test_no_wireless_interface(tmp_path: Path) -> None:
    root = sysfs(tmp_path, {})
    with pytest.raises(NoWirelessInterface) as raised:
        linux.open_linux_source(config(), sysfs=root)
    assert str(raised.value) == (f"no wireless interface on this machine (none of the interfaces in {root} "
                                 "is wireless)")


def test_this_machine_is_told_apart_by_its_real_sysfs() -> None:
    """The real /sys/class/net: the CI machine has no Wi-Fi and gets the exact message; a
    developer's laptop with Wi-Fi gets a source, never that message."""
    if not linux.wireless_interfaces():
        with pytest.raises(NoWirelessInterface, match=r"^no wireless interface on this machine \(none of "
                                                      r"the interfaces in /sys/class/net is wireless\)$"):
            linux.open_linux_source(config())
        return
    try:
        linux.open_linux_source(config())
    except NoWirelessInterface as exc:
        pytest.fail(f"a machine with {linux.wireless_interfaces()} was told it has no Wi-Fi: {exc}")
    except Unavailable:
        pass  # a wireless interface, but no source usable by this user: said otherwise


def test_a_configured_interface_that_is_missing_or_wired(tmp_path: Path) -> None:
    root = sysfs(tmp_path, {"wlan0": "phy80211"})
    with pytest.raises(Unavailable, match=r"the configured Wi-Fi interface wlan1 does not exist \(wireless "
                                          r"interfaces here: wlan0\)"):
        linux.open_linux_source(config(interface="wlan1"), sysfs=root)
    with pytest.raises(Unavailable, match="the configured Wi-Fi interface eth0 is not wireless"):
        linux.open_linux_source(config(interface="eth0"), sysfs=root)


# ---- choosing the source ----------------------------------------------------------------------

def test_auto_falls_back_from_nl80211_to_iw(tmp_path: Path) -> None:
    root = sysfs(tmp_path, {"wlp0s20f3": "phy80211"})
    tool = FakeTool(tmp_path, "iw", {})
    source = linux.open_linux_source(config(iw_binary=str(tool.path)), sysfs=root, socket_factory=NoNl80211)
    assert isinstance(source, linux.IwSource)
    assert (source.name, source.interface) == ("iw", "wlp0s20f3")


def test_a_named_source_is_the_only_one_tried(tmp_path: Path) -> None:
    root = sysfs(tmp_path, {"wlan0": "phy80211"})
    tool = FakeTool(tmp_path, "iw", {})
    with pytest.raises(Unavailable, match="the kernel has no nl80211"):
        linux.open_linux_source(config(source="nl80211", iw_binary=str(tool.path)), sysfs=root,
                                socket_factory=NoNl80211)
    with pytest.raises(Unavailable, match="/nonexistent/iw is not installed"):
        linux.open_linux_source(config(source="iw", iw_binary="/nonexistent/iw"), sysfs=root)
    with pytest.raises(Unavailable, match="does not exist"):
        linux.open_linux_source(config(source="proc"), sysfs=root, proc=tmp_path / "no-proc")
    with pytest.raises(Unavailable, match="'netsh' is not a Linux source"):
        linux.open_linux_source(config(source="netsh"), sysfs=root)


def test_nothing_works_says_why_for_each(tmp_path: Path) -> None:
    root = sysfs(tmp_path, {"wlan0": "phy80211"})
    with pytest.raises(Unavailable) as raised:
        linux.open_linux_source(config(iw_binary="/nonexistent/iw", nmcli_binary="/nonexistent/nmcli"),
                                sysfs=root, proc=tmp_path / "no-proc", socket_factory=NoNl80211)
    message = str(raised.value)
    assert message.startswith("no way to read Wi-Fi on wlan0: nl80211: the kernel has no nl80211")
    assert "iw: /nonexistent/iw is not installed" in message
    assert "nmcli: /nonexistent/nmcli is not installed" in message


# ---- iw ---------------------------------------------------------------------------------------

def iw_tool(tmp_path: Path, scan: Reply) -> FakeTool:
    # The station dump of sample A, as this machine's interface and access point would give it.
    station = (sample("linux_iw_station_dump.txt", "A").replace("04:f0:21:32:3f:d2", "64:d1:54:68:93:ae")
               .replace("wlo1", "wlp0s20f3"))
    return FakeTool(tmp_path, "iw", {
        "dev wlp0s20f3 link": Reply(sample("linux_iw_dev_link.txt").split("\n", 1)[1]),
        "dev wlp0s20f3 station dump": Reply(station),
        "dev wlp0s20f3 survey dump": Reply(SURVEY),
        "dev wlp0s20f3 scan": scan,
        "dev wlp0s20f3 scan dump": Reply(sample("linux_iw_scan_raspberrypi.txt").split("\n", 1)[1]),
    })


def test_iw_link_filled_from_station_dump_and_survey(tmp_path: Path) -> None:
    tool = iw_tool(tmp_path, Reply())
    source = linux.IwSource("wlp0s20f3", str(tool.path))
    reading = source.link()
    assert reading.source == "iw-link"
    assert (reading.ssid, reading.bssid, reading.signal_dbm) == ("HOME5", "64:d1:54:68:93:ae", -44.0)
    assert reading.tx_bitrate_bits_per_second == pytest.approx(866.7e6)  # the link's, not the dump's
    assert (reading.tx_retries, reading.beacon_loss, reading.connected_seconds) == (976, 0, 233.0)
    assert reading.noise_dbm == -95.0  # the in-use channel's
    assert tool.calls() == ["C|dev wlp0s20f3 link", "C|dev wlp0s20f3 station dump",
                            "C|dev wlp0s20f3 survey dump"]  # each with LC_ALL=C


def test_iw_never_reads_a_station_that_is_not_the_access_point(tmp_path: Path) -> None:
    tool = FakeTool(tmp_path, "iw", {
        "dev wlp0s20f3 link": Reply(sample("linux_iw_dev_link.txt")),
        "dev wlp0s20f3 station dump": Reply(sample("linux_iw_station_dump.txt", "A")),  # another BSSID
        "dev wlp0s20f3 survey dump": Reply("", "command failed: Operation not supported (-95)", 161),
    })
    reading = linux.IwSource("wlp0s20f3", str(tool.path)).link()
    assert reading.signal_dbm == -44.0
    assert reading.tx_retries is None and reading.noise_dbm is None


def test_iw_not_connected(tmp_path: Path) -> None:
    tool = FakeTool(tmp_path, "iw", {"dev wlan0 link": Reply("Not connected.\n")})
    reading = linux.IwSource("wlan0", str(tool.path)).link()
    assert (reading.connected, reading.interface) == (False, "wlan0")
    assert tool.calls() == ["C|dev wlan0 link"]  # nothing more to ask


def test_iw_scan_needs_root_so_the_cache_is_read(tmp_path: Path) -> None:
    tool = iw_tool(tmp_path, Reply("", "command failed: Operation not permitted (-1)\n", 255))
    source = linux.IwSource("wlp0s20f3", str(tool.path))
    entries = source.scan(trigger=True)
    assert [entry.ssid for entry in entries] == ["WIFI_IUTB_IOT", "eduroam"]
    assert not source.last_scan_triggered
    assert source.last_scan_fallback is not None and "root or CAP_NET_ADMIN" in source.last_scan_fallback
    assert tool.calls()[-2:] == ["C|dev wlp0s20f3 scan", "C|dev wlp0s20f3 scan dump"]


def test_iw_triggered_and_cached_scans(tmp_path: Path) -> None:
    tool = iw_tool(tmp_path, Reply(sample("linux_iw_scan_raspberrypi.txt").split("\n", 1)[1]))
    source = linux.IwSource("wlp0s20f3", str(tool.path))
    assert len(source.scan(trigger=True)) == 2
    assert source.last_scan_triggered and source.last_scan_fallback is None
    assert len(source.scan(trigger=False)) == 2
    assert not source.last_scan_triggered
    assert tool.calls() == ["C|dev wlp0s20f3 scan", "C|dev wlp0s20f3 scan dump"]


def test_iw_failures_are_one_line_reasons(tmp_path: Path) -> None:
    gone = Reply("", "command failed: No such device (-19)\n", 237)
    tool = FakeTool(tmp_path, "iw", {"dev wlan0 link": gone})
    with pytest.raises(Unavailable) as raised:
        linux.IwSource("wlan0", str(tool.path)).link()
    assert str(raised.value) == f"{tool.path} dev wlan0 link failed: command failed: No such device (-19)"


# ---- /proc/net/wireless and nmcli -----------------------------------------------------------

def nmcli_tool(tmp_path: Path, rescan: Reply | None = None) -> FakeTool:
    listing = ("*:64\\:D1\\:54\\:68\\:93\\:AE:Lokaal 12:36:5180 MHz:270 Mbit/s:78:WPA2\n"
               " :64\\:D1\\:54\\:68\\:93\\:AF:Lokaal 13:1:2412 MHz:130 Mbit/s:41:WPA2\n")
    base = f"-t -e yes -f {TERSE} device wifi list --rescan"
    return FakeTool(tmp_path, "nmcli", {f"{base} no ifname wlp5s0": Reply(listing),
                                        f"{base} yes ifname wlp5s0": rescan or Reply(listing)})


def proc_file(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "wireless"
    path.write_text(PROC_HEADER + line)
    return path


def test_proc_with_nmcli(tmp_path: Path) -> None:
    root = sysfs(tmp_path, {"wlp5s0": "phy80211"})
    tool = nmcli_tool(tmp_path)
    proc = proc_file(tmp_path, sample("linux_proc_net_wireless.txt", "A").splitlines()[-1] + "\n")
    source = linux.open_linux_source(config(iw_binary="/nonexistent/iw", nmcli_binary=str(tool.path)),
                                     sysfs=root, proc=proc, socket_factory=NoNl80211)
    assert isinstance(source, linux.ProcSource) and source.name == "proc+nmcli"
    reading = source.link()
    assert reading.source == "proc-net-wireless"
    # The kernel's dBm, not NetworkManager's 78 % converted; the network from nmcli.
    assert (reading.signal_dbm, reading.signal_percent, reading.signal_converted) == (-42.0, None, False)
    assert (reading.ssid, reading.bssid, reading.channel, reading.band) == (
        "Lokaal 12", "64:d1:54:68:93:ae", 36, "5GHz")
    entries = source.scan(trigger=True)
    assert [entry.ssid for entry in entries] == ["Lokaal 12", "Lokaal 13"]
    assert source.last_scan_triggered
    assert tool.calls()[-1] == f"C|-t -e yes -f {TERSE} device wifi list --rescan yes ifname wlp5s0"


def test_proc_in_relative_units_takes_nmclis_converted_signal(tmp_path: Path) -> None:
    tool = nmcli_tool(tmp_path)
    relative = "wlp5s0: 0000  100.   95.    0.       0      0      0      0      0        0\n"
    proc = proc_file(tmp_path, relative)
    source = linux.ProcSource("wlp5s0", proc, linux.NmcliSource("wlp5s0", str(tool.path)))
    reading = source.link()
    assert (reading.signal_dbm, reading.signal_percent, reading.signal_converted) == (-42.0, 78.0, True)


def test_nmcli_rescan_refused_reads_the_cache(tmp_path: Path) -> None:
    refused = Reply("", "Error: Scanning not allowed while unavailable or activating.\n", 1)
    tool = nmcli_tool(tmp_path, rescan=refused)
    source = linux.NmcliSource("wlp5s0", str(tool.path))
    assert len(source.scan(trigger=True)) == 2
    assert not source.last_scan_triggered
    assert source.last_scan_fallback is not None and "Scanning not allowed" in source.last_scan_fallback
    link = source.link()
    assert (link.source, link.interface, link.ssid, link.signal_converted) == (
        "nmcli", "wlp5s0", "Lokaal 12", True)


def test_proc_alone(tmp_path: Path) -> None:
    proc = proc_file(tmp_path, "wlan0: 0000    0     0     0        0      0      0      0      0        0\n")
    source = linux.ProcSource("wlan0", proc)
    assert source.name == "proc"
    assert not source.link().connected
    with pytest.raises(Unavailable, match="lists no access points"):
        source.scan(trigger=False)
    with pytest.raises(Unavailable, match="has no line for wlan1"):
        linux.ProcSource("wlan1", proc).link()


def test_a_scan_fallback_is_logged_once_across_runs(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linux, "_LOGGED_FALLBACKS", {})
    tool = iw_tool(tmp_path, Reply("", "command failed: Operation not permitted (-1)\n", 255))
    with caplog.at_level("WARNING", logger="agent.probes.wifi.linux"):
        for _run in range(3):  # the probe opens its source anew every run
            linux.IwSource("wlp0s20f3", str(tool.path)).scan(trigger=True)
    (record,) = caplog.records
    assert "needs root or CAP_NET_ADMIN" in record.getMessage()


def test_of_two_wireless_interfaces_without_nl80211_the_one_up_is_read(tmp_path: Path) -> None:
    root = sysfs(tmp_path, {"wlan0": "wireless", "wlan1": "wireless"})
    (root / "wlan0" / "operstate").write_text("dormant\n")  # not associated
    (root / "wlan1" / "operstate").write_text("up\n")
    tool = FakeTool(tmp_path, "iw", {})
    source = linux.open_linux_source(config(iw_binary=str(tool.path)), sysfs=root, socket_factory=NoNl80211)
    assert source.interface == "wlan1"

"""The /proc/net/wireless reader against real captures and lines in the kernel's format."""

from __future__ import annotations

import pytest
from support.wifi_samples import sample

from agent.probes.wifi.proc import is_proc_net_wireless, parse_proc_net_wireless
from agent.probes.wifi.reading import NotParsable

PROC = "linux_proc_net_wireless.txt"
HEADER = ("Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n"
          " face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n")




@pytest.mark.parametrize(("label", "interface", "level"), [
    ("A", "wlp5s0", -42.0), ("B", "wlo1", -31.0), ("C", "wlp2s0", -47.0)])
def test_cfg80211_laptops(label: str, interface: str, level: float) -> None:
    text = sample(PROC, label)
    assert is_proc_net_wireless(text)
    (reading,) = parse_proc_net_wireless(text)
    assert reading.source == "proc-net-wireless"
    assert reading.interface == interface
    assert reading.connected
    assert reading.signal_dbm == level
    assert reading.noise_dbm is None  # -256: "not available"
    # cfg80211's compatibility layer never counts missed beacons: its 0 is no count.
    assert reading.beacon_loss is None
    assert reading.ssid is None and reading.bssid is None and reading.frequency_hertz is None


def test_relative_units_of_an_older_driver_give_no_dbm() -> None:
    # https://github.com/eidottermihi/rpicheck/issues/16 (2013, a Raspberry Pi under xbian),
    # the line the fixture's header names as source D.
    text = "xbian@xbian ~ $ cat /proc/net/wireless\n" + HEADER + (
        " wlan0: 0000  100.   95.    0.       0      0      0      0      0        0\n")
    (reading,) = parse_proc_net_wireless(text)
    assert reading.connected
    assert reading.signal_dbm is None  # 95 is in the driver's own units: no documented mapping
    assert reading.signal_percent is None and not reading.signal_converted
    assert reading.noise_dbm is None  # 0: not available
    assert reading.beacon_loss == 0  # a wireless-extensions driver's own count


def test_a_driver_reporting_noise_and_missed_beacons() -> None:
    # wext-proc.c's "%6s: %04x  %3d%c  %3d%c  %3d%c  %6d %6d %6d %6d %6d   %6d\n".
    text = HEADER + "  eth1: 0000   54.  -56.  -92.       0      0      0     12      0        3\n"
    (reading,) = parse_proc_net_wireless(text)
    assert (reading.interface, reading.signal_dbm, reading.noise_dbm, reading.beacon_loss) == (
        "eth1", -56.0, -92.0, 3)


def test_an_unassociated_interface_prints_zeros() -> None:
    # The kernel's "nullstats" for a wireless interface without statistics, plus a second
    # interface that is associated.
    text = HEADER + ("wlan0: 0000    0     0     0        0      0      0      0      0        0\n"
                     "wlan1: 0000   70.  -31.  -256        0      0      0      0     25        0\n")
    idle, busy = parse_proc_net_wireless("\ufeff" + text.replace("\n", "\r\n"))
    assert (idle.interface, idle.connected, idle.signal_dbm) == ("wlan0", False, None)
    assert (busy.interface, busy.connected, busy.signal_dbm) == ("wlan1", True, -31.0)


def test_no_interfaces_and_other_text() -> None:
    assert parse_proc_net_wireless(HEADER) == []
    with pytest.raises(NotParsable, match="Inter-"):
        parse_proc_net_wireless("Connected to 64:d1:54:68:93:ae (on wlan0)\n")
    assert not is_proc_net_wireless("Not connected.\n")

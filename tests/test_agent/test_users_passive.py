"""The passive listener: captured frames through the parser and the BPF program, then
real frames sent across a veth pair between namespaces."""

from __future__ import annotations

import datetime
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from support import census_samples as samples
from support.census_lan import CensusLan, in_namespace
from support.netns import require_netns

from agent.config import PassiveCensusConfig
from agent.probes.users import passive
from agent.probes.users.census import CensusUnavailable, DeviceKeys
from agent.probes.users.passive import (
    FILTER,
    PassiveSource,
    announced_address,
    default_route_interface,
    open_capture,
)


def fixed_keys() -> DeviceKeys:
    return DeviceKeys(today=lambda: datetime.date(2025, 3, 10), random=lambda n: b"k" * n)


def hashes(addresses: set[bytes], keys: DeviceKeys | None = None) -> frozenset[bytes]:
    keys = keys or fixed_keys()
    return frozenset(keys(address) for address in addresses)


# ---- the parser ---------------------------------------------------------------------------

def test_each_counted_frame_announces_its_sender() -> None:
    found = [announced_address(frame) for frame in samples.COUNTED_FRAMES]
    assert found == [samples.PHONE, samples.LAPTOP, samples.PRINTER, samples.TABLET]


def test_frames_that_are_not_announcements_give_no_address() -> None:
    for frame in samples.FILTERED_FRAMES:
        assert announced_address(frame) is None, frame.hex()
    assert announced_address(b"\x01\x02") is None
    truncated_dhcp = samples.dhcp_discover(samples.LAPTOP, "x")[:14 + 20 + 8 + 20]
    assert announced_address(truncated_dhcp) is None


def test_a_later_ip_fragment_is_not_read_as_udp() -> None:
    frame = bytearray(samples.dhcp_discover(samples.LAPTOP, "x"))
    frame[14 + 6:14 + 8] = struct.pack("!H", 0x0010)  # fragment offset 16 (x 8 bytes)
    assert announced_address(bytes(frame)) is None


# ---- the BPF program, run by a small interpreter of the opcodes it uses -----------------

def run_bpf(program: list[tuple[int, int, int, int]], frame: bytes) -> int:
    """What the kernel's classic BPF would return (0: drop) for the opcodes used here."""
    a = x = pc = 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1

        def load(offset: int, size: int) -> int | None:
            return int.from_bytes(frame[offset:offset + size], "big") if offset + size <= len(frame) else None

        loaded: int | None
        if code in (0x20, 0x28, 0x30):
            loaded = load(k, {0x20: 4, 0x28: 2, 0x30: 1}[code])
        elif code == 0x48:
            loaded = load(x + k, 2)
        elif code == 0xB1:
            value = load(k, 1)
            if value is None:
                return 0
            x = 4 * (value & 0x0F)
            continue
        elif code == 0x15:
            pc += jt if a == k else jf
            continue
        elif code == 0x45:
            pc += jt if a & k else jf
            continue
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"opcode {code:#x} not expected in the program")
        if loaded is None:
            return 0  # a load past the end of the frame drops it, as in the kernel
        a = loaded


def test_the_filter_passes_announcements_and_drops_the_rest() -> None:
    for frame in samples.COUNTED_FRAMES + samples.PASSED_NOT_COUNTED:
        assert run_bpf(FILTER, frame) == passive.SNAP_BYTES, frame.hex()
    for frame in samples.FILTERED_FRAMES:
        assert run_bpf(FILTER, frame) == 0, frame.hex()
    assert len(passive.filter_bytes()) == 8 * len(FILTER)


# ---- the source over a real socket (no privileges) ---------------------------------------

class ReplayedCapture:
    """Frames through a datagram socketpair, with the address AF_PACKET would give them."""

    def __init__(self, frames: list[tuple[bytes, int]], own: bytes) -> None:
        self._reader, self._writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._own = own
        self._types: list[int] = []
        for frame, packet_type in frames:
            self._writer.send(frame)
            self._types.append(packet_type)

    def recvfrom(self, size: int) -> tuple[bytes, tuple[str, int, int, int, bytes]]:
        return self._reader.recv(size), ("eth0", 3, self._types.pop(0), 1, self._own)

    def getsockname(self) -> tuple[str, int, int, int, bytes]:
        return ("eth0", 3, 0, 1, self._own)

    def fileno(self) -> int:
        return self._reader.fileno()

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


def test_the_source_counts_distinct_senders_not_itself_not_its_own_frames() -> None:
    frames = [(frame, 1) for frame in samples.COUNTED_FRAMES * 2 + samples.PASSED_NOT_COUNTED]
    frames.append((samples.arp_request(samples.mac("02:5e:10:00:01:99"), "10.203.170.9", "10.203.170.1"),
                   passive.PACKET_OUTGOING))  # sent by this host (another address of it)
    opened: list[str] = []

    def capture(interface: str) -> ReplayedCapture:
        opened.append(interface)
        return ReplayedCapture(frames, samples.AGENT)

    config = PassiveCensusConfig(interface="eth0", listen=0.2)
    started = time.monotonic()
    result = PassiveSource(config, fixed_keys(), capture=capture).census()
    assert time.monotonic() - started == pytest.approx(0.2, abs=0.15)
    assert opened == ["eth0"]
    assert result.source == "passive"
    assert result.devices == hashes(samples.SENDERS)
    assert result.count == 4
    assert result.duration_seconds == pytest.approx(0.2, abs=0.15)


ROUTES = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlan0\t00000000\t0100CBAA\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t0100CBAA\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t00AACB0A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
"""


def test_without_an_interface_it_listens_on_the_default_routes(tmp_path: Path) -> None:
    routes = tmp_path / "route"
    routes.write_text(ROUTES)
    assert default_route_interface(routes) == "eth0"
    routes.write_text(ROUTES.splitlines()[0] + "\n" + ROUTES.splitlines()[3] + "\n")
    assert default_route_interface(routes) is None
    with pytest.raises(CensusUnavailable, match=r"no default route; set users\.passive\.interface"):
        PassiveSource(PassiveCensusConfig(), fixed_keys(), route_table=routes).census()


def test_a_missing_interface_is_named() -> None:
    require_netns()  # root, for the raw socket

    def open_missing() -> None:
        open_capture("nosuch0")

    with pytest.raises(CensusUnavailable, match=r"'nosuch0' .* does not exist"), CensusLan() as lan:
        in_namespace(lan.namespaces["agent"], open_missing)


# ---- real frames between namespaces (root) ------------------------------------------------

def _send(interface: str, frames: list[bytes]) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sender:
        sender.bind((interface, 0))
        for frame in frames:
            sender.send(frame)


def test_the_filter_lets_only_announcements_reach_the_socket() -> None:
    require_netns()
    sent = samples.COUNTED_FRAMES + samples.PASSED_NOT_COUNTED + samples.FILTERED_FRAMES
    with CensusLan() as lan:
        capture = in_namespace(lan.namespaces["agent"], lambda: open_capture(lan.agent_interface))
        try:
            in_namespace(lan.namespaces["lan"], lambda: _send(lan.lan_interface, sent))
            assert isinstance(capture, socket.socket)
            capture.settimeout(0.5)
            received = []
            while True:
                try:
                    received.append(capture.recv(4096))
                except TimeoutError:
                    break
        finally:
            capture.close()
    # SNAP_BYTES: the kernel hands up the frame's first 128 bytes at most.
    passed = [frame[:passive.SNAP_BYTES] for frame in samples.COUNTED_FRAMES + samples.PASSED_NOT_COUNTED]
    dropped = [frame[:passive.SNAP_BYTES] for frame in samples.FILTERED_FRAMES]
    assert [frame for frame in received if frame in passed] == passed
    assert not [frame for frame in received if frame in dropped]
    assert all(len(frame) <= passive.SNAP_BYTES for frame in received)


def test_the_listener_counts_exactly_the_senders_on_a_real_link() -> None:
    require_netns()
    keys = DeviceKeys()
    ready = threading.Event()
    own: list[bytes] = []

    def capture(interface: str) -> passive.Capture:
        sock = open_capture(interface)
        own.append(sock.getsockname()[4])
        ready.set()
        return sock

    with CensusLan() as lan:
        config = PassiveCensusConfig(interface=lan.agent_interface, listen=1.0)
        outcome: dict[str, object] = {}

        def listen() -> None:
            source = PassiveSource(config, keys, capture=capture)
            outcome["result"] = in_namespace(lan.namespaces["agent"], source.census)

        listener = threading.Thread(target=listen)
        listener.start()
        assert ready.wait(10)
        agent_mac = own[0]
        frames = [*samples.COUNTED_FRAMES, *samples.COUNTED_FRAMES, *samples.FILTERED_FRAMES,
                  samples.mdns_v4(samples.ETH_BROADCAST, "10.203.170.105", "x"),
                  samples.arp_request(agent_mac, "10.203.170.2", "10.203.170.1")]  # the agent's own
        in_namespace(lan.namespaces["lan"], lambda: _send(lan.lan_interface, frames))
        listener.join(15)
    result = outcome["result"]
    assert getattr(result, "devices", None) == hashes(samples.SENDERS, keys)
    assert getattr(result, "count", None) == 4


def test_an_interface_that_goes_away_mid_listen_makes_the_source_unavailable() -> None:
    require_netns()
    ready = threading.Event()

    def capture(interface: str) -> passive.Capture:
        sock = open_capture(interface)
        ready.set()
        return sock

    with CensusLan() as lan:
        config = PassiveCensusConfig(interface=lan.agent_interface, listen=10.0)
        outcome: dict[str, BaseException] = {}

        def listen() -> None:
            try:
                source = PassiveSource(config, fixed_keys(), capture=capture)
                in_namespace(lan.namespaces["agent"], source.census)
            except BaseException as error:  # handed to the test below
                outcome["error"] = error

        listener = threading.Thread(target=listen)
        listener.start()
        assert ready.wait(10)
        started = time.monotonic()
        lan.run("agent", "ip", "link", "del", lan.agent_interface)
        listener.join(15)
        assert time.monotonic() - started < 5  # at once, not at the end of the window
    error = outcome.get("error")
    assert isinstance(error, CensusUnavailable), repr(error)
    assert str(error) == f"listening on {lan.agent_interface!r} stopped: Network is down"

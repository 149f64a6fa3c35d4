"""The http bandwidth backend against servers that work, and servers that misbehave:
every failure is a reason, never a crash and never a number."""

from __future__ import annotations

import re
import socket
import time

import pytest
from support.speed_servers import COUNTED, good_server, raw_server
from support.tools import free_port

from agent.probes.bandwidth.backend import BackendOptions, Limits, TransferError
from agent.probes.bandwidth.http import HttpBackend


def backend(url: str, stall_seconds: float = 5.0) -> HttpBackend:
    return HttpBackend(BackendOptions(server=url, stall_seconds=stall_seconds))


def limits(duration: float = 5.0, max_bytes: int = 100_000_000, streams: int = 2) -> Limits:
    return Limits(duration=duration, max_bytes=max_bytes, min_streams=streams, max_streams=streams)


def test_the_byte_cap_holds_exactly_across_streams() -> None:
    COUNTED.clear()
    with raw_server(good_server) as url:
        down = backend(url).download(limits(30, 3_000_000, streams=3))
        up = backend(url).upload(limits(30, 2_500_000, streams=3))
        latency = backend(url).ping()
    assert down.bytes == 3_000_000 and down.bytes_per_second > 0
    # Upload counts what the server's TCP acknowledged: the bodies and the request heads.
    assert sum(COUNTED) == 2_500_000
    assert 2_500_000 <= up.bytes <= 2_500_000 + 3 * 400
    assert 0 < latency < 1


def test_a_transfer_stops_at_its_duration() -> None:
    def slow(connection: socket.socket, request: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        for _ in range(1000):
            connection.sendall(b"x" * 100_000)
            time.sleep(0.01)

    with raw_server(slow) as url:
        started = time.monotonic()
        result = backend(url).download(limits(1.0))
        elapsed = time.monotonic() - started
    assert elapsed < 3
    assert 0 < result.bytes < 100_000_000
    assert 0 < result.window_seconds < result.seconds <= 1.3


def test_unreachable_server() -> None:
    with pytest.raises(TransferError, match="cannot connect"):
        backend(f"http://127.0.0.1:{free_port()}").download(limits())


def test_a_url_that_is_not_http_is_refused_before_any_traffic() -> None:
    with pytest.raises(TransferError, match="not an http"):
        backend("ftp://example.org/")


def test_a_stalling_server() -> None:
    def stall(connection: socket.socket, request: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 100_000)
        time.sleep(3)

    with raw_server(stall) as url, pytest.raises(TransferError, match="stalled"):
        backend(url, stall_seconds=1).download(limits(10))


def test_a_server_closing_mid_stream() -> None:
    def close_early(connection: socket.socket, request: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 500_000)

    with raw_server(close_early) as url, pytest.raises(TransferError, match="closed the connection"):
        backend(url).download(limits(10))


@pytest.mark.parametrize("answer, message", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "too few to measure|without an answer|reset"),
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", "answered 404 not found"),
    (b"this is not HTTP at all\r\n\r\n", "not HTTP"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n", "bad Content-Length"),
])
def test_garbage_download_answers(answer: bytes, message: str) -> None:
    with raw_server(lambda c, r: c.sendall(answer)) as url, pytest.raises(TransferError, match=message):
        backend(url).download(limits(1.0))


def test_an_upload_the_server_refuses() -> None:
    def refuse(connection: socket.socket, request: bytes) -> None:
        connection.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo much")

    with raw_server(refuse) as url, pytest.raises(TransferError, match=r"413|connection failed"):
        backend(url).upload(limits(3.0))


def test_the_probe_records_each_directions_error_and_fails_only_when_both_fail(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.config import AgentSettings
    from agent.probes import ProbeContext
    from agent.probes.bandwidth import BandwidthProbe

    def download_only(connection: socket.socket, request: bytes) -> None:
        if b"/speed/upload" in request.split(b"\r\n", 1)[0]:
            connection.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        else:
            good_server(connection, request)

    def probe_for(url: str) -> BandwidthProbe:
        settings = AgentSettings(state_dir=tmp_path, probes={"bandwidth": {
            "backend": "http", "server": url, "duration": "2s", "max_bytes": "20MB"}})
        return BandwidthProbe(ProbeContext(settings, None, tmp_path, interactive=True))

    with raw_server(download_only) as url:
        half = probe_for(url).measure()
    assert half.ok and half.payload is not None
    assert half.payload["download_bytes_per_second"] > 0
    assert half.payload["upload_bytes_per_second"] is None
    # The server answers 503 and hangs up while the body is still coming: which of the two
    # the client sees first depends on timing; either way it is a reason, not a number.
    assert re.search("503|connection failed|closed", half.payload["upload_error"])
    assert half.payload["leased"] is None, "measure asks for no lease"

    nothing = probe_for(f"http://127.0.0.1:{free_port()}").measure()
    assert not nothing.ok and nothing.error and "cannot connect" in nothing.error
    assert nothing.payload is not None and nothing.payload["download_bytes_per_second"] is None


def test_one_lost_ping_does_not_void_the_latency() -> None:
    calls = {"n": 0}

    def drops_the_first(connection: socket.socket, request: bytes) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            good_server(connection, request)

    with raw_server(drops_the_first) as url:
        latency = backend(url).ping()
    assert 0 < latency < 1


def test_only_one_bandwidth_test_at_a_time_on_this_agent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.config import AgentSettings
    from agent.probes import ProbeContext
    from agent.probes.bandwidth import BandwidthProbe
    from agent.probes.bandwidth.exclusive import exclusive_test

    with raw_server(good_server) as url:
        settings = AgentSettings(state_dir=tmp_path, probes={"bandwidth": {
            "backend": "http", "server": url, "duration": "5s", "max_bytes": "1MB"}})
        probe = BandwidthProbe(ProbeContext(settings, None, tmp_path, interactive=True))
        with exclusive_test(tmp_path):  # e.g. the daemon is testing right now
            busy = probe.measure()
        free = probe.measure()
    assert not busy.ok and busy.error == "another bandwidth test is running on this agent"
    assert free.ok and free.payload and free.payload["download_bytes"] == 1_000_000

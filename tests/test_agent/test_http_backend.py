"""The http bandwidth backend against servers that work, and servers that misbehave:
every failure is a reason, never a crash and never a number."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from support.tools import free_port

from agent.probes.bandwidth.backend import TransferError
from agent.probes.bandwidth.http import HttpBackend

Handler = Callable[[socket.socket, bytes], None]


@contextmanager
def raw_server(handler: Handler) -> Iterator[str]:
    """A TCP server on 127.0.0.1 whose every connection is given to ``handler``."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                request += chunk
            threading.Thread(target=_run, args=(handler, connection, request), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


def _run(handler: Handler, connection: socket.socket, request: bytes) -> None:
    try:
        handler(connection, request)
    except OSError:
        pass
    finally:
        connection.close()


def good_server(connection: socket.socket, request: bytes) -> None:
    """Download: N bytes as asked; upload: count the chunked body; ping: 204."""
    line = request.split(b"\r\n", 1)[0].decode()
    if "/speed/download" in line:
        size = int(line.split("bytes=")[1].split()[0])
        connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n"
                           "Content-Type: application/octet-stream\r\n\r\n".encode())
        block = b"\x5a" * 65536
        while size > 0:
            connection.sendall(block[:size])
            size -= min(size, len(block))
    elif "/speed/upload" in line:
        body = request.split(b"\r\n\r\n", 1)[1]
        received = _read_chunked(connection, body)
        answer = json.dumps({"received_bytes": received, "seconds": 0.1}).encode()
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                           b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))
    else:
        connection.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")


def _read_chunked(connection: socket.socket, buffered: bytes) -> int:
    data = buffered
    total = 0
    while True:
        while b"\r\n" not in data:
            data += connection.recv(65536)
        size_line, data = data.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            return total
        while len(data) < size + 2:
            data += connection.recv(1 << 20)
        total += size
        data = data[size + 2:]


def test_exact_byte_counts_against_a_working_server() -> None:
    with raw_server(good_server) as url:
        backend = HttpBackend(url, None)
        down = backend.download(duration=30, max_bytes=3_000_000)
        up = backend.upload(duration=30, max_bytes=2_500_000)
        latency = backend.ping()
        backend.close()
    assert down.bytes == 3_000_000 and down.bytes_per_second > 0
    assert up.bytes == 2_500_000 and up.bytes_per_second > 0
    assert 0 < latency < 1


def test_a_transfer_stops_at_its_duration() -> None:
    def slow(connection: socket.socket, request: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        for _ in range(1000):
            connection.sendall(b"x" * 100_000)
            time.sleep(0.01)

    with raw_server(slow) as url:
        started = time.monotonic()
        result = HttpBackend(url, None).download(duration=1.0, max_bytes=100_000_000)
        elapsed = time.monotonic() - started
    assert elapsed < 3
    assert 0 < result.bytes < 100_000_000


def test_unreachable_server() -> None:
    with pytest.raises(TransferError, match="cannot connect"):
        HttpBackend(f"http://127.0.0.1:{free_port()}", None).download(5, 1_000_000)


def test_a_stalling_server() -> None:
    def stall(connection: socket.socket, request: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 100_000)
        time.sleep(3)

    with raw_server(stall) as url, pytest.raises(TransferError, match="read timeout"):
        HttpBackend(url, None, stall_seconds=1).download(10, 10_000_000)


def test_a_server_closing_mid_stream() -> None:
    def close_early(connection: socket.socket, request: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 500_000)

    with raw_server(close_early) as url, pytest.raises(TransferError, match="closed"):
        HttpBackend(url, None).download(10, 10_000_000)


@pytest.mark.parametrize("answer, message", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "ended early"),
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", "answered 404"),
    (b"this is not HTTP at all\r\n\r\n", "closed unexpectedly|RemoteProtocolError|Protocol"),
])
def test_garbage_download_answers(answer: bytes, message: str) -> None:
    with raw_server(lambda c, r: c.sendall(answer)) as url, pytest.raises(TransferError, match=message):
        HttpBackend(url, None).download(5, 1_000_000)


def test_an_upload_answer_that_is_not_a_count() -> None:
    def html(connection: socket.socket, request: bytes) -> None:
        _read_chunked(connection, request.split(b"\r\n\r\n", 1)[1])
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n<html>hi</html>")

    with raw_server(html) as url, pytest.raises(TransferError, match="not a byte count"):
        HttpBackend(url, None).upload(5, 1_000_000)


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
            "server": url, "duration": "5s", "max_bytes": "2MB"}})
        return BandwidthProbe(ProbeContext(settings, None, tmp_path))

    with raw_server(download_only) as url:
        half = probe_for(url).measure()
    assert half.ok and half.payload is not None
    assert half.payload["download_bytes_per_second"] > 0
    assert half.payload["upload_bytes_per_second"] is None
    # The server answers 503 and hangs up while the body is still coming: which of the two
    # the client sees first depends on timing; either way it is a reason, not a number.
    assert re.search("503|closed", half.payload["upload_error"])

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
        latency = HttpBackend(url, None).ping()
    assert 0 < latency < 1


def test_only_one_bandwidth_test_at_a_time_on_this_agent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.config import AgentSettings
    from agent.probes import ProbeContext
    from agent.probes.bandwidth import BandwidthProbe
    from agent.probes.bandwidth.exclusive import exclusive_test

    with raw_server(good_server) as url:
        settings = AgentSettings(state_dir=tmp_path, probes={"bandwidth": {
            "server": url, "duration": "5s", "max_bytes": "1MB"}})
        probe = BandwidthProbe(ProbeContext(settings, None, tmp_path))
        with exclusive_test(tmp_path):  # e.g. the daemon is testing right now
            busy = probe.measure()
        free = probe.measure()
    assert not busy.ok and busy.error == "another bandwidth test is running on this agent"
    assert free.ok and free.payload and free.payload["download_bytes"] == 1_000_000

"""The ndt7 backend against a real ndt7 server on 127.0.0.1 (tests/support/ndt7_server.py)
and a mock of M-Lab's locate service: byte accounting, rates against a rate-limited
server, the locate flow with access tokens, and every failure as a reason, never a number."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.ndt7_server import Behaviour, LocateMock, LocateMode, Ndt7Server, Served, self_signed_tls
from support.tools import free_port, require_tool, unavailable

from agent.config import BandwidthProbeConfig, Ndt7Config
from agent.probes.bandwidth import ndt7
from agent.probes.bandwidth.backend import BackendOptions, Limits, TransferError
from agent.probes.bandwidth.ndt7 import Ndt7Backend

LINUX = sys.platform.startswith("linux")
CREDENTIAL = "collector-credential-must-not-leak"
# Generous: the margins absorb a loaded CI machine, the numbers stay meaningful.
RATE_TOLERANCE = 0.15


def options(server: str = "", locate_url: str = "http://127.0.0.1:9/none", stall: float = 2.0,
            ca_bundle: Path | None = None) -> BackendOptions:
    config = BandwidthProbeConfig(ndt7=Ndt7Config(locate_url=locate_url))
    return BackendOptions(server=server, credential=CREDENTIAL, ca_bundle=ca_bundle, config=config,
                          stall_seconds=stall)


def limits(duration: float = 2.0, max_bytes: int = 10**12) -> Limits:
    return Limits(duration=duration, max_bytes=max_bytes)


@pytest.fixture
def server() -> Iterator[Ndt7Server]:
    with Ndt7Server() as running:
        yield running


def served(server: Ndt7Server, direction: str, timeout: float = 5.0) -> Served:
    """What the server did in its latest test of that direction, once it has finished."""
    found = [entry for entry in server.served if entry.direction == direction]
    assert found, f"the server saw no {direction}"
    assert found[-1].done.wait(timeout), f"the server's {direction} did not finish"
    return found[-1]


# --- measurements ---------------------------------------------------------------------


def test_download_counts_every_message_byte_the_server_sent() -> None:
    # The server ends first (its 1.5 s are up before our 3 s): every byte it sent arrived.
    with Ndt7Server(Behaviour(duration=1.5)) as server:
        backend = Ndt7Backend(options(server.url))
        result = backend.download(limits(duration=3.0))
        sent = served(server, "download")
    assert result.bytes == sent.binary_bytes + sent.text_bytes
    assert sent.text_bytes > 0  # measurements came, and were counted as the spec says
    assert result.bytes_per_second > 0
    assert 0 < result.window_seconds < result.seconds <= 3.0
    assert result.streams == 1 and backend.streams == 1
    assert result.loaded_latency_seconds is not None and 0 <= result.loaded_latency_seconds < 1
    if LINUX:
        assert result.retransmits is not None
        assert result.details["retransmits_by"].startswith("server")
        assert 0 <= result.details["server_min_rtt_seconds"] < 1
    assert result.details["server_measurements"] >= 4
    assert result.details["ignored_measurements"] == 0


def test_download_stops_at_our_duration_while_the_server_would_go_on(server: Ndt7Server) -> None:
    began = time.perf_counter()
    result = Ndt7Backend(options(server.url)).download(limits(duration=1.0))
    took = time.perf_counter() - began
    assert 0.95 <= result.seconds <= 1.3
    assert took < 2.0, "closing while the server still sends must not wait out a timeout"
    assert result.bytes_per_second > 0


def test_download_stops_at_max_bytes() -> None:
    with Ndt7Server(Behaviour(rate=40e6, max_message_size=64 * 1024)) as server:
        result = Ndt7Backend(options(server.url)).download(limits(duration=5.0, max_bytes=30_000_000))
    assert 30_000_000 <= result.bytes < 30_000_000 + 128 * 1024
    assert result.seconds < 1.5


def test_download_rate_matches_a_rate_limited_server() -> None:
    rate = 4e6
    with Ndt7Server(Behaviour(rate=rate, max_message_size=64 * 1024)) as server:
        result = Ndt7Backend(options(server.url)).download(limits(duration=2.0))
    assert result.bytes_per_second == pytest.approx(rate, rel=RATE_TOLERANCE)


def test_upload_is_counted_by_the_servers_bytes_received(server: Ndt7Server) -> None:
    result = Ndt7Backend(options(server.url)).upload(limits(duration=1.0))
    seen = served(server, "upload")
    if not LINUX:
        unavailable("the test server reads TCP_INFO, which only Linux offers")
    assert result.details["counted_by"] == "server TCPInfo.BytesReceived"
    assert result.bytes in seen.reported_bytes  # a number the server said, not ours
    assert result.bytes <= result.details["sent_bytes"] * 1.01 + 64 * 1024
    assert result.bytes_per_second > 0
    assert 0 < result.window_seconds < result.seconds
    assert result.streams == 1
    assert result.loaded_latency_seconds is not None
    assert result.details["latency_by"].startswith("agent TCP_INFO")
    assert result.retransmits is not None


def test_upload_rate_is_the_servers_count_not_what_we_wrote() -> None:
    # The server reads 4 MB/s but reports half of what it received: the result follows
    # the server's count (2 MB/s), which proves it is the one used.
    with Ndt7Server(Behaviour(rate=4e6, report_scale=0.5)) as server:
        result = Ndt7Backend(options(server.url)).upload(limits(duration=2.0))
    if not LINUX:
        unavailable("the test server reads TCP_INFO, which only Linux offers")
    assert result.details["counted_by"] == "server TCPInfo.BytesReceived"
    assert result.bytes_per_second == pytest.approx(2e6, rel=RATE_TOLERANCE)


def test_upload_rate_matches_a_rate_limited_server() -> None:
    with Ndt7Server(Behaviour(rate=4e6)) as server:
        result = Ndt7Backend(options(server.url)).upload(limits(duration=2.0))
    assert result.bytes_per_second == pytest.approx(4e6, rel=RATE_TOLERANCE)


def test_upload_without_tcp_info_from_the_server_uses_its_application_count() -> None:
    with Ndt7Server(Behaviour(report="appinfo")) as server:
        result = Ndt7Backend(options(server.url)).upload(limits(duration=1.0))
        seen = served(server, "upload")
    assert result.details["counted_by"] == "server AppInfo.NumBytes"
    assert result.bytes in seen.reported_bytes
    assert result.bytes <= result.details["sent_bytes"]
    assert result.bytes_per_second > 0


def test_the_server_ending_the_upload_is_its_normal_end() -> None:
    # The server's 1.2 s end after half of our 2 s: a result, measured up to its end.
    with Ndt7Server(Behaviour(duration=1.2)) as server:
        began = time.perf_counter()
        result = Ndt7Backend(options(server.url)).upload(limits(duration=2.0))
        took = time.perf_counter() - began
    assert result.bytes_per_second > 0
    assert result.seconds <= 1.3  # the server's time, not ours
    assert took < 2.0


def test_upload_messages_start_small_and_scale_up_to_one_mebibyte(server: Ndt7Server) -> None:
    Ndt7Backend(options(server.url)).upload(limits(duration=1.0))
    sizes = served(server, "upload").message_sizes
    assert sizes[0] == 8192
    assert max(sizes) == 1 << 20
    assert sizes == sorted(sizes)  # only ever grows


def test_upload_without_server_counts_falls_back_to_our_acknowledged_bytes() -> None:
    with Ndt7Server(Behaviour(report="none")) as server:
        backend = Ndt7Backend(options(server.url))
        if not LINUX:
            with pytest.raises(TransferError, match="cannot be counted honestly"):
                backend.upload(limits(duration=1.0))
            return
        result = backend.upload(limits(duration=1.0))
    assert result.details["counted_by"].startswith("agent TCP_INFO bytes_acked")
    assert 0 < result.bytes <= result.details["sent_bytes"] * 1.01 + 64 * 1024
    assert result.bytes_per_second > 0


def test_upload_with_garbage_measurements_ignores_them_and_says_so() -> None:
    with Ndt7Server(Behaviour(garbage="text")) as server:
        result = Ndt7Backend(options(server.url)).upload(limits(duration=1.0))
    if not LINUX:
        unavailable("the fallback count needs TCP_INFO, which only Linux offers")
    assert result.details["counted_by"].startswith("agent TCP_INFO")
    assert result.details["ignored_measurements"] >= 2
    assert result.details["server_measurements"] == 0


def test_upload_counts_a_server_claims_beyond_what_we_sent_are_not_believed() -> None:
    with Ndt7Server(Behaviour(report_scale=3.0)) as server:
        result = Ndt7Backend(options(server.url)).upload(limits(duration=1.0))
    if not LINUX:
        unavailable("the fallback count needs TCP_INFO, which only Linux offers")
    assert result.details["counted_by"].startswith("agent TCP_INFO")
    assert result.details["ignored_measurements"] >= 2
    assert result.bytes <= result.details["sent_bytes"] * 1.01 + 64 * 1024


def test_ping_is_the_tcp_connect_time(server: Ndt7Server) -> None:
    seconds = Ndt7Backend(options(server.url)).ping()
    assert 0 < seconds < 0.5
    assert not server.served, "a ping opens no ndt7 test"


# --- what is sent to the server, and what is recorded -----------------------------------


def test_no_credential_of_ours_reaches_the_ndt7_server(server: Ndt7Server) -> None:
    backend = Ndt7Backend(options(server.url))
    backend.download(limits(duration=0.6))
    backend.upload(limits(duration=0.6))
    assert len(server.requests) == 2
    for request in server.requests:
        assert "authorization" not in request.headers
        assert CREDENTIAL not in repr(request)
        assert request.headers["sec-websocket-protocol"] == "net.measurementlab.ndt.v7"
        assert request.query["client_name"] == ["schoolnet-agent"]


def test_configured_server_is_used_as_given() -> None:
    assert Ndt7Backend.discover(options("ws://127.0.0.1:4444/")) == ["ws://127.0.0.1:4444"]
    backend = Ndt7Backend(options("wss://ndt.example.org"))
    assert backend.server == "wss://ndt.example.org"


@pytest.mark.parametrize(("server", "reason"), [
    ("https://ndt.example.org", "not a ws:// or wss:// base URL"),
    ("ndt.example.org", "not a ws:// or wss:// base URL"),
    ("wss://ndt.example.org/?access_token=abc", "without a query"),
    ("wss://user:pw@ndt.example.org", "without a query or user name"),
])
def test_a_bad_configured_server_is_refused_with_a_reason(server: str, reason: str) -> None:
    with pytest.raises(TransferError, match=reason) as failure:
        Ndt7Backend.discover(options(server))
    assert "abc" not in str(failure.value) and "pw" not in str(failure.value)


# --- the locate service ---------------------------------------------------------------


def test_locate_flow_uses_the_token_urls_and_records_no_token() -> None:
    token = "tok-SECRET-42"
    with Ndt7Server(Behaviour(require_token=token)) as first, \
            Ndt7Server(Behaviour(require_token=token)) as second, \
            LocateMock([first, second], token=token) as locate:
        found = Ndt7Backend.discover(options(locate_url=locate.url))
        assert found == [first.url, second.url]  # best first, as the service ranked them
        backend = Ndt7Backend(options(found[0], locate_url=locate.url))
        result = backend.download(limits(duration=1.0))
        upload = backend.upload(limits(duration=1.0))
        assert backend.server == first.url
    assert result.bytes_per_second > 0 and upload.bytes_per_second > 0
    assert token not in backend.server and "access_token" not in backend.server
    assert token not in repr(result) and token not in repr(upload)
    assert result.details["server_machine"].startswith("mlab1-")
    assert result.details["server_location"] == "Testdorp, NL"
    assert [seen.query["access_token"] for seen in first.requests] == [[token], [token]]
    assert not second.requests
    assert len(locate.requests) == 1  # each direction had its own fresh token
    assert all("authorization" not in headers for headers in locate.requests)
    assert all(headers["user-agent"].startswith("schoolnet-agent/") for headers in locate.requests)


def test_a_spent_token_is_replaced_by_asking_the_locate_service_again() -> None:
    with Ndt7Server(Behaviour(require_token="tok-SECRET-42", duration=0.6)) as server, \
            Ndt7Server() as other, LocateMock([server]) as locate:
        name = Ndt7Backend.discover(options(locate_url=locate.url))[0]
        backend = Ndt7Backend(options(name, locate_url=locate.url))
        backend.download(limits(duration=1.0))
        backend.download(limits(duration=1.0))  # a retest on the same server
        assert len(locate.requests) == 2
        locate.results = [(other,)]  # the service no longer offers it
        with pytest.raises(TransferError, match="no longer offered by the ndt7 locate service"):
            backend.download(limits(duration=1.0))


def test_the_locate_service_prefers_tls_urls(tmp_path: Path) -> None:
    certificate, context = self_signed_tls(tmp_path, require_tool("openssl"))
    with Ndt7Server(Behaviour(duration=0.6), tls=context) as secure, Ndt7Server() as plain, \
            LocateMock([(plain, secure)]) as locate:
        found = Ndt7Backend.discover(options(locate_url=locate.url))
        assert found == [secure.url]
        result = Ndt7Backend(options(found[0], locate_url=locate.url, ca_bundle=certificate)).download(
            limits(duration=1.0))
    assert result.bytes_per_second > 0
    assert secure.requests and not plain.requests


@pytest.mark.parametrize(("mode", "reason"), [
    ("500", r"answered HTTP 500"),
    ("garbage", r"not JSON"),
    ("shape", r"without a server list"),
    ("empty", r"offered no server \(M-Lab may be out of capacity\)"),
    ("no-capacity", r"offered no server"),
])
def test_locate_failures_are_reasons(mode: LocateMode, reason: str) -> None:
    with Ndt7Server() as server, LocateMock([server], mode=mode) as locate, \
            pytest.raises(TransferError, match=reason):
        Ndt7Backend.discover(options(locate_url=locate.url))


def test_an_unreachable_locate_service_is_a_reason() -> None:
    url = f"http://127.0.0.1:{free_port()}/v2/nearest/ndt/ndt7"
    with pytest.raises(TransferError, match=r"locate service .* cannot be reached: cannot connect"):
        Ndt7Backend.discover(options(locate_url=url))


# --- failures: a reason, never a number -------------------------------------------------


def test_unreachable_server() -> None:
    backend = Ndt7Backend(options(f"ws://127.0.0.1:{free_port()}"))
    with pytest.raises(TransferError, match=r"cannot connect to 127\.0\.0\.1:[0-9]+: connection refused"):
        backend.download(limits())
    with pytest.raises(TransferError, match="ping failed: cannot connect"):
        backend.ping()


SERVER_FAILURES = [
    pytest.param(Behaviour(handshake="500"), "download", r"refused the ndt7 test: HTTP 500", id="http-500"),
    pytest.param(Behaviour(handshake="no-subprotocol"), "upload",
                 r"did not accept the ndt7 WebSocket subprotocol", id="no-subprotocol"),
    pytest.param(Behaviour(require_token="right"), "download", r"HTTP 401 \(access token refused",
                 id="token-refused"),
    pytest.param(Behaviour(close_after_bytes=2_000_000), "download",
                 r"the server dropped the connection after [0-9]+ bytes", id="dropped-download"),
    pytest.param(Behaviour(close_after_bytes=2_000_000), "upload",
                 r"the server dropped the connection after [0-9]+ bytes", id="dropped-upload"),
    pytest.param(Behaviour(duration=0.4), "download", r"ended the download after 0.[0-9] s .*too early",
                 id="ended-early-download"),
    pytest.param(Behaviour(duration=0.4), "upload", r"ended the upload after 0.[0-9] s .*too early",
                 id="ended-early-upload"),
    pytest.param(Behaviour(garbage="text"), "download", r"not ndt7 measurements", id="garbage-text"),
    pytest.param(Behaviour(garbage="shape"), "download", r"not ndt7 measurements", id="garbage-shape"),
    pytest.param(Behaviour(binary_during_upload=True), "upload", r"binary data during the upload",
                 id="binary-during-upload"),
    pytest.param(Behaviour(stall_after_bytes=1_000_000), "download",
                 r"the server sent nothing for 0.5 s after [0-9]+ bytes \(stalled\)", id="stall-download"),
    pytest.param(Behaviour(stall_after_bytes=1_000_000), "upload",
                 r"the server stopped reading: nothing could be sent for 0.5 s .*\(stalled\)",
                 id="stall-upload"),
]


@pytest.mark.parametrize(("behaviour", "direction", "reason"), SERVER_FAILURES)
def test_a_misbehaving_server_gives_a_reason_never_a_number(behaviour: Behaviour, direction: str,
                                                             reason: str) -> None:
    began = time.perf_counter()
    with Ndt7Server(behaviour) as server, pytest.raises(TransferError, match=reason) as failure:
        getattr(Ndt7Backend(options(server.url, stall=0.5)), direction)(limits(duration=3.0))
    assert "\n" not in str(failure.value)
    assert time.perf_counter() - began < 3.0, "a failure is noticed within the stall time, not the test's"


def test_tls_to_a_server_that_does_not_speak_it(server: Ndt7Server) -> None:
    with pytest.raises(TransferError, match=r"TLS error with 127\.0\.0\.1"):
        Ndt7Backend(options(server.url.replace("ws://", "wss://"))).download(limits())


def test_tls_certificate_not_trusted_unless_in_the_ca_bundle(tmp_path: Path) -> None:
    certificate, context = self_signed_tls(tmp_path, require_tool("openssl"))
    with Ndt7Server(Behaviour(duration=0.6), tls=context) as server:
        with pytest.raises(TransferError, match=r"TLS certificate of 127\.0\.0\.1 not trusted"):
            Ndt7Backend(options(server.url)).download(limits())
        result = Ndt7Backend(options(server.url, ca_bundle=certificate)).download(limits(duration=1.0))
    assert result.bytes_per_second > 0


# --- measurement parsing ----------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "not json", "[1, 2]", '"a string"', "{}", '{"Other": 1}', '{"TCPInfo": "fast"}',
    '{"TCPInfo": {"RTT": "slow"}}', '{"TCPInfo": {"RTT": -5}}', '{"TCPInfo": {"RTT": true}}',
    '{"AppInfo": {"NumBytes": NaN}}',
])
def test_measurement_messages_that_are_not_ndt7_are_rejected(text: str) -> None:
    assert ndt7._measurement(text) is None


def test_a_measurement_message_in_the_spec_shape() -> None:
    values = ndt7._measurement(
        '{"AppInfo": {"ElapsedTime": 250000, "NumBytes": 1000}, "ConnectionInfo": {"UUID": "x"},'
        ' "TCPInfo": {"BytesReceived": 1200, "RTT": 15000, "MinRTT": 9000, "TotalRetrans": 3,'
        ' "ElapsedTime": 250100, "SndCwnd": 10}}')
    assert values == {"app_elapsed": 0.25, "num_bytes": 1000, "tcp_elapsed": 0.2501, "bytes_received": 1200,
                      "rtt": 0.015, "min_rtt": 0.009, "total_retrans": 3}

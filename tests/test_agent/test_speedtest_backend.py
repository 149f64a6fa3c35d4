"""The speedtest backend against a local speedtest.net and local Ookla servers
(support.speedtest_server): discovery through speedtest-cli, the transfer on our engine,
and every failure as a one-line reason.

speedtest-cli names www.speedtest.net itself; these tests reach it only through
``http_proxy`` pointing at the local server (set inside each test, ``no_proxy`` cleared),
and run with ``probes.bandwidth.speedtest.secure = false`` so that everything is plain
HTTP to 127.0.0.1 (HTTPS would need CONNECT, which the local proxy refuses). The request
log shows the absolute-URI requests arriving here: proof that nothing went out.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from support.speedtest_server import (
    CLIENT_LAT_LON,
    DEFAULT_SERVERS,
    RANDOM_SIZES,
    ListedServer,
    SpeedtestServer,
)
from support.tools import BIN, free_port, require_tool, unavailable

if importlib.util.find_spec("speedtest") is None:
    unavailable("speedtest-cli is not installed (pip install -e '.[dev]')")

from agent.config import BandwidthProbeConfig
from agent.probes.bandwidth.backend import BackendOptions, Limits, TransferError, backend_class
from agent.probes.bandwidth.speedtest import SpeedtestBackend

PLAIN_HTTP = BandwidthProbeConfig.model_validate({"speedtest": {"secure": False}})
CREDENTIAL = "collector-credential-0f3a9c"
# Loopback moves gigabytes a second: a cap this high leaves the duration to end the test.
LIMITS = Limits(duration=1.5, max_bytes=20_000_000_000, min_streams=2, max_streams=4)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def through(monkeypatch: pytest.MonkeyPatch, proxy: str) -> None:
    """speedtest-cli's requests for speedtest.net go to ``proxy``, and nowhere else."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("http_proxy", proxy)
    monkeypatch.setenv("https_proxy", proxy)


@pytest.fixture
def ookla(monkeypatch: pytest.MonkeyPatch) -> Iterator[SpeedtestServer]:
    # Latency order (Rotterdam, Groningen, Amsterdam) differs from distance order
    # (Amsterdam, Rotterdam, Groningen): the ranking must follow the latency test.
    delays = {"Amsterdam": 0.10, "Rotterdam": 0.0, "Groningen": 0.05}
    servers = tuple(ListedServer(s.id, s.sponsor, s.name, s.lat, s.lon, latency_delay=delays[s.name])
                    for s in DEFAULT_SERVERS)
    with SpeedtestServer(servers=servers) as server:
        through(monkeypatch, server.proxy_url)
        yield server


def options(server: str = "", **overrides: Any) -> BackendOptions:
    values: dict[str, Any] = {"server": server, "config": PLAIN_HTTP, "stall_seconds": 2.0}
    values.update(overrides)
    return BackendOptions(**values)


def assert_one_line(error: pytest.ExceptionInfo[TransferError]) -> str:
    text = str(error.value)
    assert text and "\n" not in text and "Traceback" not in text
    return text


# -- discovery -----------------------------------------------------------------------------


def test_discovery_ranks_the_nearest_servers_by_latency_through_the_proxy(ookla: SpeedtestServer) -> None:
    found = SpeedtestBackend.discover(options())

    amsterdam, rotterdam, groningen = ookla.server_urls
    assert found == [rotterdam, groningen, amsterdam]
    # speedtest.net was asked through the proxy, as absolute URIs, and answered here.
    config, = ookla.requests_to("/speedtest-config.php")
    assert config.proxied_host == "www.speedtest.net"
    assert config.target.startswith("http://www.speedtest.net/speedtest-config.php?")
    lists = ookla.requests_to("/speedtest-servers-static.php")
    assert [r.proxied_host for r in lists] == ["www.speedtest.net"]
    assert not [r for r in ookla.requests if r.method == "CONNECT"]
    # speedtest-cli's latency test went to each listed server itself (three GETs each).
    pings = ookla.requests_to("/speedtest/latency.txt")
    assert sorted(r.port for r in pings) == sorted(3 * [ookla.server_port(i) for i in range(3)])


def test_the_second_server_found_serves_a_retest(ookla: SpeedtestServer) -> None:
    first, second, *_ = SpeedtestBackend.discover(options())
    assert first != second
    backend = SpeedtestBackend(options(second))

    assert backend.server == second
    assert backend.ping() > 0


def test_a_server_id_is_looked_up_in_speedtest_nets_list(ookla: SpeedtestServer) -> None:
    assert SpeedtestBackend.discover(options("10003")) == [ookla.server_url(2)]
    assert len(ookla.requests_to("/speedtest-config.php")) == 1


def test_a_server_id_that_is_not_listed_is_a_reason(ookla: SpeedtestServer) -> None:
    with pytest.raises(TransferError) as error:
        SpeedtestBackend.discover(options("99999"))
    assert "Ookla server 99999 is not in the server list" in assert_one_line(error)


def test_a_server_url_is_used_without_asking_speedtest_net(ookla: SpeedtestServer) -> None:
    url = ookla.server_url(1)

    assert SpeedtestBackend.discover(options(url)) == [url]
    backend = SpeedtestBackend(options(url))

    assert backend.server == url
    assert ookla.requests == []  # not the configuration, not the list, not a ping


@pytest.mark.parametrize("server", ["fast-one", "http://host:8080/speedtest/", "ftp://host/speedtest/upload.php",
                                    "http://host:99999/speedtest/upload.php"])
def test_a_server_that_is_neither_an_id_nor_an_upload_url_is_a_reason(
        ookla: SpeedtestServer, server: str) -> None:
    with pytest.raises(TransferError) as error:
        SpeedtestBackend.discover(options(server))
    assert "upload URL" in assert_one_line(error)
    assert ookla.requests == []


# -- a whole test --------------------------------------------------------------------------


def test_ping_download_and_upload_against_the_chosen_server(ookla: SpeedtestServer) -> None:
    best = SpeedtestBackend.discover(options())[0]
    backend = SpeedtestBackend(options(best, credential=CREDENTIAL))
    best_port = ookla.server_port(1)  # Rotterdam answers latency.txt fastest

    assert 0 < backend.ping() < 1
    download = backend.download(LIMITS)
    upload = backend.upload(LIMITS)
    backend.close()

    for result in (download, upload):
        assert result.bytes_per_second > 0
        assert result.bytes > 0
        assert 0 < result.window_seconds < result.seconds
        assert result.streams >= LIMITS.min_streams
        assert result.details["ookla_server_id"] == 10002
        assert result.details["ookla_sponsor"] == "Loopback Rotterdam"
    assert ookla.downloaded_bytes >= download.bytes
    assert ookla.uploaded_bytes > 0
    transfers = [r for r in ookla.requests if "/random" in r.path or r.path.endswith("/upload.php")]
    assert transfers and {r.port for r in transfers} == {best_port}
    assert {r.path for r in transfers if r.method == "GET"} == {"/speedtest/random4000x4000.jpg"}
    # Straight to the server, never through the proxy.
    assert all(r.proxied_host is None for r in transfers)


def test_the_credential_never_reaches_an_ookla_server(ookla: SpeedtestServer) -> None:
    backend = SpeedtestBackend(options(SpeedtestBackend.discover(options())[0], credential=CREDENTIAL))
    backend.ping()
    backend.download(Limits(duration=0.5, max_bytes=50_000_000, min_streams=1, max_streams=1))
    backend.upload(Limits(duration=0.5, max_bytes=50_000_000, min_streams=1, max_streams=1))

    assert ookla.requests
    for request in ookla.requests:
        assert CREDENTIAL not in request.target
        assert "authorization" not in {name.lower() for name in request.headers}
        assert not [value for value in request.headers.values() if CREDENTIAL in value]


def test_the_library_writes_nothing_to_stdout_or_stderr(
        ookla: SpeedtestServer, capfd: pytest.CaptureFixture[str]) -> None:
    backend = SpeedtestBackend(options(SpeedtestBackend.discover(options())[0]))
    backend.ping()
    backend.download(Limits(duration=0.3, max_bytes=20_000_000, min_streams=1, max_streams=1))

    assert capfd.readouterr() == ("", "")


def test_a_small_byte_cap_asks_for_smaller_files(ookla: SpeedtestServer) -> None:
    backend = SpeedtestBackend(options(ookla.server_url(0)))
    result = backend.download(Limits(duration=2, max_bytes=20_000_000, min_streams=2, max_streams=4))

    # 20 MB for up to 4 streams, two files each: the 2.5 MB files (random1000x1000.jpg).
    assert {r.path for r in ookla.requests_to(".jpg")} == {"/speedtest/random1000x1000.jpg"}
    # The cap stops new requests; what was already asked for still arrives.
    assert result.bytes <= 20_000_000 + 4 * RANDOM_SIZES[1000]


# -- failures: each a reason, never a traceback, never a number ----------------------------


@pytest.mark.parametrize(("knobs", "expected"), [
    ({"config_body": b"\x00\x01 this is not xml {"}, "Ookla's configuration from http://www.speedtest.net "
                                                     "is unusable: Malformed"),
    ({"config_body": b"<html><body><p>Log in to the school Wi-Fi</p></body></html>"},
     "the answer from http://www.speedtest.net is not Ookla's configuration: a proxy or a login page"),
    ({"config_status": 403}, "answered HTTP 403 Forbidden; speedtest.net refuses plain HTTP: "
                             "set probes.bandwidth.speedtest.secure = true"),
    ({"servers": ()}, "no Ookla servers: speedtest.net's server list could not be fetched"),
    ({"servers_body": b"<<< not a server list"}, "Ookla's server list is unusable: Malformed"),
])
def test_speedtest_net_misbehaving_is_a_reason(monkeypatch: pytest.MonkeyPatch, knobs: dict[str, Any],
                                               expected: str) -> None:
    with SpeedtestServer(**knobs) as ookla:
        through(monkeypatch, ookla.proxy_url)
        with pytest.raises(TransferError) as error:
            SpeedtestBackend.discover(options())
    assert expected in assert_one_line(error)


def test_speedtest_net_unreachable_is_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    through(monkeypatch, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(TransferError) as error:
        SpeedtestBackend.discover(options())
    assert "cannot fetch Ookla's configuration from http://www.speedtest.net: Connection refused" in (
        assert_one_line(error))


def test_servers_that_answer_no_latency_test_are_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{free_port()}/speedtest/upload.php"
    lat, lon = CLIENT_LAT_LON
    listing = (f'<settings><servers><server url="{dead}" lat="{lat}" lon="{lon}" name="Utrecht" '
               'country="Netherlands" cc="NL" sponsor="Gone" id="4242" host="x"/></servers></settings>')
    with SpeedtestServer(servers_body=listing.encode()) as ookla:
        through(monkeypatch, ookla.proxy_url)
        with pytest.raises(TransferError) as error:
            SpeedtestBackend.discover(options())
    assert "none of the 1 nearest Ookla servers answered speedtest-cli's latency test: Gone (Utrecht)" in (
        assert_one_line(error))


def test_an_upload_answered_with_500_is_a_reason() -> None:
    with SpeedtestServer(upload_status=500) as ookla:
        backend = SpeedtestBackend(options(ookla.server_url(0)))
        with pytest.raises(TransferError) as error:
            backend.upload(LIMITS)
    assert "upload: the server answered 500 Internal Server Error" in assert_one_line(error)


def test_a_download_closed_mid_stream_is_a_reason() -> None:
    with SpeedtestServer(download_cut_after=300_000) as ookla:
        backend = SpeedtestBackend(options(ookla.server_url(0)))
        with pytest.raises(TransferError) as error:
            backend.download(LIMITS)
    assert "download: the server closed the connection with" in assert_one_line(error)


def test_a_download_that_stalls_is_a_reason() -> None:
    with SpeedtestServer(download_stall_after=300_000) as ookla:
        backend = SpeedtestBackend(options(ookla.server_url(0), stall_seconds=0.5))
        with pytest.raises(TransferError) as error:
            backend.download(Limits(duration=3, max_bytes=300_000_000, min_streams=2, max_streams=2))
    assert "download: the server stalled" in assert_one_line(error)


def test_an_unreachable_server_is_a_reason() -> None:
    port = free_port()
    backend = SpeedtestBackend(options(f"http://127.0.0.1:{port}/speedtest/upload.php"))
    for attempt in (backend.ping, lambda: backend.download(LIMITS), lambda: backend.upload(LIMITS)):
        with pytest.raises(TransferError) as error:
            attempt()
        assert f"cannot connect to 127.0.0.1:{port}" in assert_one_line(error)


def test_without_speedtest_cli_the_backend_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "speedtest", None)  # import speedtest now fails
    monkeypatch.delitem(sys.modules, "agent.probes.bandwidth.speedtest")
    with pytest.raises(ValueError) as error:
        backend_class("speedtest")
    assert str(error.value) == ("bandwidth backend 'speedtest' needs speedtest-cli: install it with "
                                "pip install 'schoolnet[speedtest]'")


# -- the real speedtest-cli command against the same server (what the benchmark runs) ------


def test_the_real_speedtest_cli_completes_a_test_against_the_local_server() -> None:
    program = BIN / "speedtest-cli"
    command = str(program) if program.exists() else require_tool("speedtest-cli")
    with SpeedtestServer(test_length=2) as ookla:
        # no_proxy=127.0.0.1: its own transfers go straight to the server, as ours do
        # (without it, urllib would send them through the proxy too).
        env = {"PATH": "/usr/bin:/bin", "http_proxy": ookla.proxy_url, "https_proxy": ookla.proxy_url,
               "no_proxy": "127.0.0.1"}
        done = subprocess.run([command, "--json", "--server", "10002", "--no-pre-allocate"], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        proxied = {r.proxied_host for r in ookla.requests if r.proxied_host}
        transfers = {r.port for r in ookla.requests if "/random" in r.path or "/upload" in r.path}
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["server"]["id"] == "10002"
    assert result["download"] > 0 and result["upload"] > 0
    assert result["bytes_received"] > 0 and result["bytes_sent"] > 0
    assert proxied == {"www.speedtest.net"}
    assert transfers == {ookla.server_port(1)}


def test_the_local_server_never_contacts_the_host_it_is_asked_for() -> None:
    with SpeedtestServer() as ookla, socket.create_connection(("127.0.0.1", ookla.port), timeout=5) as sock:
        sock.sendall(b"GET http://example.invalid/speedtest-config.php HTTP/1.1\r\n"
                     b"Host: example.invalid\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"<server-config" in answer
    assert ookla.requests[0].proxied_host == "example.invalid"


def test_secure_fetches_speedtest_net_over_https(ookla: SpeedtestServer) -> None:
    """The product default: HTTPS, which through a proxy is a CONNECT (refused here)."""
    with pytest.raises(TransferError) as error:
        SpeedtestBackend.discover(options(config=None))
    assert "cannot fetch Ookla's configuration from https://www.speedtest.net: Tunnel connection " \
        "failed: 405" in assert_one_line(error)
    assert [(r.method, r.target) for r in ookla.requests] == [("CONNECT", "www.speedtest.net:443")]

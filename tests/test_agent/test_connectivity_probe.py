"""The connectivity probe as a whole on loopback: windows, the start-up check, events."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.dns_server import DnsServer
from support.tools import LOCAL_ONLY_ENV, agent_env, console_script

from agent.clock import now
from agent.config import AgentSettings, ConfigError
from agent.daemon import store
from agent.outbox import Outbox
from agent.probes import Event, Measurement, ProbeContext
from agent.probes.connectivity import ConnectivityProbe, window_end
from agent.wire import ConnectivityPayload, OutagePayload


@pytest.fixture()
def local_web() -> Iterator[str]:
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/generate_204"
    server.shutdown()
    server.server_close()


def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **connectivity: Any) -> ConnectivityProbe:
    for name in LOCAL_ONLY_ENV:  # this test chooses every target itself, all on loopback
        monkeypatch.delenv(name)
    values = {"targets": ["127.0.0.1", "::1"], "gateway": "", "hops": 0, "dns_servers": [],
              "http_urls": [], "window": "2s", "ping_interval": "0.05s", "timeout": "0.5s",
              **connectivity}
    settings = AgentSettings(state_dir=tmp_path, probes={"connectivity": values})
    return ConnectivityProbe(ProbeContext(settings, None, tmp_path))


def test_windows_align_to_multiples_of_the_window() -> None:
    assert window_end(1000.0, 60.0) == 1020.0
    assert window_end(1020.0, 60.0) == 1080.0, "a run starting on a boundary covers the next window"
    assert window_end(1079.999, 60.0) == 1080.0


def test_the_planner_asks_for_the_next_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planner = probe(tmp_path, monkeypatch, window="60s", ping_interval="1s").timing()
    assert planner(1_790_000_010.0) == 1_790_000_040.0


def test_one_window_on_loopback_measures_echo_dns_and_http(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_web: str) -> None:
    with DnsServer("127.0.0.1", 0, {"learning.school.test": "10.203.80.1"}) as dns:
        p = probe(tmp_path, monkeypatch, dns_servers=[f"127.0.0.1:{dns.port}"],
                  dns_names=["learning.school.test"], dns_interval="0.5s", http_urls=[local_web],
                  http_interval="0.5s")
        measurement = p.measure()
    assert measurement.ok, measurement.error
    payload = ConnectivityPayload.model_validate(measurement.payload)
    assert payload.window_seconds == 2.0 and payload.up and payload.down_seconds == 0
    v4, v6 = payload.targets
    assert (v4.target, v6.target) == ("127.0.0.1", "::1")
    for target in (v4, v6):
        # 2 s at 0.05 s, sending stopping one timeout (0.5 s) early: about 30 probes. Loopback
        # loses a packet now and then when the machine is busy (its backlog queue is shared).
        assert 25 <= target.sent <= 31 and target.sent - 1 <= target.received <= target.sent
        assert target.latency_min_seconds is not None and target.latency_max_seconds is not None
        assert target.latency_p50_seconds is not None
        assert 0 < target.latency_min_seconds <= target.latency_p50_seconds <= target.latency_max_seconds
        assert target.latency_max_seconds < 0.25
        assert target.jitter_seconds is not None and target.method == payload.method
    [resolver] = payload.dns
    assert resolver.queries >= 2 and resolver.answered == resolver.queries
    assert resolver.latency_p50_seconds is not None and resolver.latency_p50_seconds < 0.1
    [service] = payload.http
    assert service.requests >= 2 and service.succeeded == service.requests and service.status == 204
    assert service.ttfb_p50_seconds is not None and service.connect_p50_seconds is not None
    assert payload.segment == "none" and measurement.events == ()


def test_a_dns_outage_is_an_event_with_its_own_kind_and_clock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    silent.bind(("127.0.0.1", 0))
    try:
        p = probe(tmp_path, monkeypatch, window="3s", timeout="0.2s", outage_after=2,
                  dns_servers=[f"127.0.0.1:{silent.getsockname()[1]}"], dns_names=["a.school.test"],
                  dns_interval="0.25s")
        first = p.measure()
        payload = ConnectivityPayload.model_validate(first.payload)
        assert not payload.up and payload.outage_kind == "dns" and payload.down_seconds > 1.5
        assert first.events == (), "the outage has not ended yet"
        # The resolver comes back (another one answering in its place).
        with DnsServer("127.0.0.1", 0, {"a.school.test": "10.203.80.1"}) as dns:
            p.context.settings.probes.connectivity.dns_servers = [f"127.0.0.1:{dns.port}"]
            second = p.measure()
    finally:
        silent.close()
    [event] = second.events
    outage = OutagePayload.model_validate(event.payload)
    assert event.kind == "outage" and outage.outage_kind == "dns" and not outage.interrupted
    assert event.clock.wall_time_seconds == outage.end_seconds
    assert outage.duration_seconds == pytest.approx(outage.end_seconds - outage.start_seconds, abs=0.05)
    assert ConnectivityPayload.model_validate(second.payload).up


def test_events_go_into_the_outbox_after_their_window(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", 10_000_000)
    window_clock, end_clock = now(), now()
    outage = OutagePayload(outage_kind="isp", start_seconds=end_clock.wall_time_seconds - 30,
                           end_seconds=end_clock.wall_time_seconds, duration_seconds=30)
    window = ConnectivityPayload(window_seconds=60, up=True, down_seconds=30)
    store(outbox, "connectivity", window_clock, Measurement.of(
        window, (Event("outage", end_clock, outage.model_dump(mode="json")),)))
    records = [record for _, record in outbox.next_batch(10).records]
    outbox.close()
    assert [r["kind"] for r in records] == ["connectivity", "outage"]
    assert records[1]["clock"]["wall_time_seconds"] == end_clock.wall_time_seconds
    assert records[1]["payload"]["outage_kind"] == "isp" and records[1]["ok"] is True


def test_a_target_that_does_not_exist_stops_the_start(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def nothing_there(host: str, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    p = probe(tmp_path, monkeypatch, targets=["elo.school.test"])
    monkeypatch.setattr(socket, "getaddrinfo", nothing_there)  # no lookup leaves this machine
    refused = r"probes\.connectivity\.targets: 'elo\.school\.test' does not resolve"
    with pytest.raises(ConfigError, match=refused):
        p.check()


def test_no_answer_from_dns_at_start_is_no_reason_to_refuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    def offline(host: str, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    p = probe(tmp_path, monkeypatch, targets=["elo.school.test", "127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", offline)
    p.check()
    assert "cannot resolve 'elo.school.test' now" in caplog.text
    monkeypatch.undo()


def test_measure_prints_one_window_and_refuses_a_bad_window(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[probes.connectivity]\ntargets = ["127.0.0.1"]\n'
                      'gateway = ""\nhops = 0\ndns_servers = []\nhttp_urls = []\nping_interval = "0.1s"\n'
                      'timeout = "0.5s"\n')
    agent = console_script("schoolnet-agent")
    result = subprocess.run([agent, "measure", "connectivity", "--window", "2s", "--json"],
                            env=agent_env(config), capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["probe"] == "connectivity" and document["window_seconds"] == 2.0
    assert document["targets"][0]["received"] >= 10
    bad = subprocess.run([agent, "measure", "connectivity", "--window", "0s", "--json"],
                         env=agent_env(config), capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--window" in bad.stderr
    wrong = subprocess.run([agent, "measure", "system", "--window", "2s"],
                           env=agent_env(config), capture_output=True, text=True, timeout=60, check=False)
    assert wrong.returncode == 1 and "--window is for connectivity" in wrong.stderr


def test_targets_held_by_the_collector_apply_and_the_local_file_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.config import load_settings

    for name in LOCAL_ONLY_ENV:  # only reading settings here: nothing is sent
        monkeypatch.delenv(name)
    (tmp_path / "central-settings.json").write_text(json.dumps({"settings": {"probes": {"connectivity": {
        "targets": ["192.0.2.10", "2001:db8::10"], "http_urls": ["https://elo.example.org/"],
        "dns_servers": ["192.0.2.53"]}}}}))
    config = tmp_path / "agent.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[probes.connectivity]\ndns_servers = ["system"]\n')
    connectivity = load_settings(config).probes.connectivity
    assert connectivity.targets == ["192.0.2.10", "2001:db8::10"]
    assert connectivity.http_urls == ["https://elo.example.org/"]
    assert connectivity.dns_servers == ["system"], "the local file overrides the collector"

"""The UniFi census source against a fake controller on 127.0.0.1 (tests/support/fake_unifi.py)
replaying a recorded stat/sta answer (tests/fixtures/users/unifi-stat-sta.json)."""

from __future__ import annotations

import contextlib
import datetime
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.fake_unifi import FakeUnifiController
from support.tools import free_port

from agent.config import UnifiCensusConfig
from agent.probes.users import unifi
from agent.probes.users.census import CensusUnavailable, DeviceKeys
from agent.probes.users.unifi import UnifiSource

FIXTURE = Path(__file__).parent.parent / "fixtures" / "users" / "unifi-stat-sta.json"
RECORDED = json.loads(FIXTURE.read_text())
PASSWORD = "correct horse"


def census(url: str, password: str = PASSWORD, site: str = "default") -> tuple[UnifiSource, DeviceKeys]:
    keys = DeviceKeys(today=lambda: datetime.date(2025, 3, 3))
    config = UnifiCensusConfig(url=url, username="census", password=password, site=site, timeout=2.0)
    return UnifiSource(config, keys), keys


@pytest.mark.parametrize("style", ["unifi_os", "classic"])
def test_counts_the_recorded_clients_with_either_login_and_logs_out(style: str) -> None:
    with FakeUnifiController(RECORDED, style=style) as controller:  # type: ignore[arg-type]
        source, keys = census(controller.url)
        result = source.census()
    assert result.source == "unifi" and result.count == 2
    expected = {keys(bytes.fromhex(c["mac"].replace(":", ""))) for c in RECORDED["data"]}
    assert result.devices == frozenset(expected)
    assert controller.logins == [{"username": "census", "password": PASSWORD}]
    paths = [path for _, path in controller.log]
    if style == "unifi_os":
        assert paths == ["/api/auth/login", "/proxy/network/api/s/default/stat/sta", "/api/auth/logout"]
    else:  # UniFi OS tried first, then the classic paths
        assert paths == ["/api/auth/login", "/api/login", "/api/s/default/stat/sta", "/api/logout"]
    # Nothing of a client but the keyed hash survives.
    text = repr(result)
    for client in RECORDED["data"]:
        for key in ("mac", "hostname", "name"):
            if key in client:
                assert client[key] not in text


@pytest.mark.parametrize("style", ["unifi_os", "classic"])
def test_a_wrong_password_is_said_without_echoing_it(style: str) -> None:
    with FakeUnifiController(RECORDED, style=style) as controller:  # type: ignore[arg-type]
        source, _ = census(controller.url, password="hunter2-wrong")
        with pytest.raises(CensusUnavailable, match="wrong username or password") as caught:
            source.census()
    assert "hunter2" not in str(caught.value)
    assert not any(path.endswith("stat/sta") for _, path in controller.log)


def test_an_empty_site_counts_zero() -> None:
    with FakeUnifiController({"meta": {"rc": "ok"}, "data": []}, style="classic") as controller:
        result = census(controller.url)[0].census()
    assert result.count == 0 and result.devices == frozenset()


@pytest.mark.parametrize("style", ["unifi_os", "classic"])
def test_an_unknown_site_is_named(style: str) -> None:
    with FakeUnifiController(RECORDED, style=style, site="school") as controller:  # type: ignore[arg-type]
        with pytest.raises(CensusUnavailable, match="no site 'default'"):
            census(controller.url)[0].census()
        assert controller.log[-1][1].endswith("logout")


def test_a_controller_that_is_down() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CensusUnavailable, match="cannot reach the UniFi controller") as caught:
        census(url)[0].census()
    assert url in str(caught.value) and PASSWORD not in str(caught.value)


def test_no_controller_configured() -> None:
    with pytest.raises(CensusUnavailable, match="no UniFi controller configured"):
        census("")[0].census()


class _HugeClientList(BaseHTTPRequestHandler):
    """A UniFi OS console whose client list is the recorded one padded to PADDED_BYTES with
    JSON whitespace: valid, and far more than any school's list (a wrong URL, a hostile
    server)."""

    PADDED_BYTES = 40 * 1024 * 1024
    sent = 0

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(b"{}")

    def do_GET(self) -> None:
        head = json.dumps(RECORDED).encode()[:-1]  # without its closing brace
        chunk = b" " * 65536
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(head) + self.PADDED_BYTES + 1))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(head)
            for _ in range(self.PADDED_BYTES // len(chunk)):
                self.wfile.write(chunk)
                type(self).sent += len(chunk)
            self.wfile.write(b"}")

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_huge_answer_is_refused_without_reading_it_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unifi, "MAX_BODY_BYTES", 1024 * 1024, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HugeClientList)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(CensusUnavailable, match="sent more than 1 MB: not a client list"):
            census(f"http://127.0.0.1:{server.server_address[1]}")[0].census()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert _HugeClientList.sent < _HugeClientList.PADDED_BYTES

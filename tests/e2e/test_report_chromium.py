"""The comparison report of a real collector process in a real browser: headless Chromium,
driven through its DevTools protocol with a signed-in session cookie, opens /report (the
cooperative scenario of tests/support/comparison.py), and the test checks the screenshot
(not blank), the console (no errors), the network (no request to any host but the
collector), the page printed to PDF, and the collector's own PDF, read back with pdftotext.

One collector and one Chromium for the module: both only read."""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from support import accounts
from support.comparison import cooperative
from support.processes import CollectorProcess
from support.tools import require_tool
from websockets.sync.client import ClientConnection, connect

from collector.accounts.sessions import create_session
from collector.db.engine import open_engine

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
PERIOD = "from=2026-03-01&to=2026-03-31"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CollectorProcess, str]]:
    """The collector on the cooperative's store, and an analyst's session secret."""
    workdir = tmp_path_factory.mktemp("collector")
    store = cooperative(workdir)
    store.engine.dispose()
    collector = CollectorProcess(workdir)
    collector.db_url = f"sqlite:///{workdir / 'comparison.db'}"
    collector.env["SCHOOLNET_DB"] = collector.db_url
    collector.env["SCHOOLNET_PUBLIC_URL"] = collector.url
    engine = open_engine(collector.db_url)
    user = accounts.add_user(engine, "analyst", "analyst", None, "Anne Analist")
    secret = create_session(engine, user, 3600)
    engine.dispose()
    collector.start()
    try:
        yield collector, secret
    finally:
        collector.stop()


class DevTools:
    """One page of a headless Chromium, over the DevTools protocol (JSON over a WebSocket)."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if message.get("id") == ident:
                assert "error" not in message, (method, message["error"])
                return dict(message.get("result", {}))
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            self.events.append(message)
            if message.get("method") == event:
                return message

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e["params"] for e in self.events if e.get("method") == event]


@pytest.fixture(scope="module")
def browser() -> Iterator[str]:
    """A headless Chromium with its DevTools endpoint on loopback: its http base URL."""
    binary = require_tool("chromium")
    with tempfile.TemporaryDirectory() as profile:
        process = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not (port_file.exists() and port_file.read_text().strip()):
                assert process.poll() is None, "chromium exited before it opened its DevTools port"
                assert time.monotonic() < deadline, "chromium opened no DevTools port in 30 s"
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port_file.read_text().split()[0]}"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def page(browser: str) -> Iterator[DevTools]:
    target = httpx.put(f"{browser}/json/new?about:blank", timeout=10).json()
    try:
        with connect(target["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=10) as socket:
            tools = DevTools(socket)
            for domain in ("Page", "Network", "Runtime", "Log"):
                tools.call(f"{domain}.enable")
            yield tools
    finally:
        httpx.get(f"{browser}/json/close/{target['id']}", timeout=10)


def open_report(tools: DevTools, collector: CollectorProcess, secret: str, query: str) -> float:
    cookie = accounts.session_cookie(collector.url, secret)["Cookie"]
    name, _, value = cookie.partition("=")
    # The collector names the cookie by its URL; loopback counts as secure (a __Host- cookie).
    secure = name.startswith("__Host-")
    assert tools.call("Network.setCookie", name=name, value=value, url=collector.url, path="/",
                      secure=secure, httpOnly=True, sameSite="Lax")["success"]
    tools.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1,
               mobile=False)
    started = time.monotonic()
    tools.call("Page.navigate", url=f"{collector.url}/report?{query}")
    tools.wait_for("Page.loadEventFired")
    return time.monotonic() - started


def pdf_text(data: bytes, folder: Path, name: str) -> str:
    path = folder / name
    path.write_bytes(data)
    out = subprocess.run([require_tool("pdftotext"), "-layout", str(path), "-"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return " ".join(out.split())


def test_report_in_chromium(served: Any, browser: str, tmp_path: Path) -> None:
    collector, secret = served
    with page(browser) as tools:
        seconds = open_report(tools, collector, secret, f"{PERIOD}&lang=en")
        # Signed in: the report itself, not the sign-in page.
        title = tools.call("Runtime.evaluate", expression="document.title")["result"]["value"]
        assert title.startswith("Provider comparison"), title

        # Every request went to the collector (and only http(s) ones count: data: URLs load nothing).
        # (Chromium's own date-picker icon arrives as a data: URL: no network, not counted.)
        requested = [p["request"]["url"] for p in tools.of("Network.requestWillBeSent")
                     if not p["request"]["url"].startswith("data:")]
        assert requested, "no request recorded"
        origin = urlsplit(collector.url)
        for url in requested:
            parts = urlsplit(url)
            assert (parts.scheme, parts.hostname, parts.port) == ("http", origin.hostname, origin.port), url
        statuses = [p["response"]["status"] for p in tools.of("Network.responseReceived")]
        assert statuses and all(s == 200 for s in statuses), statuses

        # No console error, no uncaught exception, no CSP violation in the log.
        errors = [p for p in tools.of("Runtime.consoleAPICalled") if p["type"] in ("error", "assert")]
        errors += tools.of("Runtime.exceptionThrown")
        errors += [p for p in tools.of("Log.entryAdded") if p["entry"]["level"] == "error"]
        assert not errors, errors

        # The screenshot of the whole page: large, and not blank (its pixels vary).
        shot = base64.b64decode(tools.call("Page.captureScreenshot", format="png",
                                           captureBeyondViewport=True)["data"])
        (tmp_path / "report.png").write_bytes(shot)
        image = Image.open(io.BytesIO(shot)).convert("L")
        assert image.width >= 1200 and image.height > 2500, image.size
        small = image.resize((image.width // 8, image.height // 8))
        spread = statistics.pstdev(small.tobytes())  # 0 for a blank page; ~20 for this text and charts
        assert spread > 10, spread
        # ink all the way down: each tenth of the page has dark pixels (no blank half, nothing cut off)
        tenths = [image.crop((0, k * image.height // 10, image.width, (k + 1) * image.height // 10))
                  for k in range(10)]
        darkest = [part.getextrema()[0] for part in tenths]
        assert all(d < 100 for d in darkest), darkest  # type: ignore[operator]
        svgs = tools.call("Runtime.evaluate", expression="document.querySelectorAll('svg.chart').length")
        assert svgs["result"]["value"] == 3

        # The browser's print of the page (the print CSS): the figures, not the form.
        printed = base64.b64decode(tools.call("Page.printToPDF", preferCSSPageSize=True,
                                              printBackground=False)["data"])
        words = pdf_text(printed, tmp_path, "printed.pdf")
    assert "Provider comparison" in words and "Glasnet" in words and "Per technology" in words
    assert "hidden: rests on fewer than 5 schools of boards that have not shared" in words
    assert "Show" not in words.split()  # the filter form's button is not printed
    print(f"chromium: /report loaded in {seconds:.2f} s, screenshot {image.width}x{image.height}, "
          f"{len(requested)} request(s), printed PDF {len(printed)} bytes")


def test_a_person_signs_in_through_the_form_and_lands_on_the_report(served: Any, browser: str) -> None:
    """The whole sign-in as a browser does it on the collector's own URL (plain http on
    loopback, where the cookies are still Secure and __Host- prefixed): sent to /login, the
    form with its nonce cookie, back to the page asked for."""
    collector, _ = served
    with page(browser) as tools:
        tools.call("Network.clearBrowserCookies")  # the module's browser: no session from before
        tools.call("Page.navigate", url=f"{collector.url}/report?{PERIOD}&lang=en")
        tools.wait_for("Page.loadEventFired")
        here = tools.call("Runtime.evaluate", expression="location.pathname")["result"]["value"]
        assert here == "/login"
        tools.call("Runtime.evaluate", expression=(
            "document.querySelector('input[name=username]').value = 'analyst';"
            f"document.querySelector('input[name=password]').value = {json.dumps(accounts.PASSWORD)};"
            "document.querySelector('input[name=password]').form.submit();"))
        tools.wait_for("Page.loadEventFired")
        landed = tools.call("Runtime.evaluate", expression="location.pathname + ' ' + document.title")
        assert landed["result"]["value"].startswith("/report Provider comparison"), landed
        cookies = {c["name"]: c for c in tools.call("Network.getCookies", urls=[collector.url])["cookies"]}
        session = cookies["__Host-schoolnet_session"]
        assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"


@pytest.mark.parametrize(
    ("lang", "headings"),
    [("nl", ("Vergelijking van providers", "Per provider", "Per techniek", "Grafieken", "Pagina 1 /")),
     ("en", ("Provider comparison", "Per provider", "Per technology", "Charts", "Page 1 /"))],
)
def test_server_pdf_text(served: Any, tmp_path: Path, lang: str, headings: tuple[str, ...]) -> None:
    collector, secret = served
    cookies = accounts.session_cookie(collector.url, secret)
    started = time.monotonic()
    answer = httpx.get(f"{collector.url}/report.pdf?{PERIOD}&lang={lang}", headers=cookies, timeout=60)
    seconds = time.monotonic() - started
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    words = pdf_text(answer.content, tmp_path, f"report-{lang}.pdf")
    for heading in headings:
        assert heading in words, heading
    for provider in ("Glasnet", "Kabelco", "Koperlijn"):
        assert provider in words, provider
    # Glasnet's median ratio as the JSON has it, said in the PDF's language
    report = httpx.get(f"{collector.url}/report.json?{PERIOD}", headers=cookies, timeout=60).json()
    glasnet = next(g for g in report["by_provider"] if g["provider"] == "Glasnet")
    median = round(glasnet["median_ratio"]["value"] * 100)
    assert (f"{median} %" if lang == "nl" else f"{median}%") in words, median
    print(f"report PDF ({lang}) over HTTP: {seconds:.2f} s, {len(answer.content)} bytes; "
          f"Glasnet median {median}")

"""The evidence pack of a real collector process, seen by a real browser: headless Chromium
takes a screenshot of the share link (read back with tesseract OCR) and prints the page to
PDF; the collector's own PDF is read back with pdftotext, in Dutch and English."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import incidents as si
from support.processes import CollectorProcess
from support.tools import require_tool

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
)


class RemoteSite:
    """What tests/support/incidents.py needs of a site, over HTTP to the real process."""

    def __init__(self, collector: CollectorProcess) -> None:
        self.client = httpx.Client(base_url=collector.url, timeout=30)
        code = collector.enroll_code()
        answer = self.client.post("/api/v1/enroll", json={"code": code, "name": "pi", "version": "0.1.0"})
        assert answer.status_code == 200, answer.text
        self.credential = answer.json()["credential"]
        self.engine = open_engine(collector.db_url)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}

    def sql(self, statement: str, *params: Any) -> list[Any]:
        connection = self.engine.raw_connection()
        try:
            return list(connection.execute(statement, params).fetchall())
        finally:
            connection.close()


# One collector with its incident for the whole module: the tests only read it, and
# starting and filling one takes some 5 s.
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CollectorProcess, str, int]]:
    collector = CollectorProcess(tmp_path_factory.mktemp("collector"))
    collector.start()
    collector.env["SCHOOLNET_PUBLIC_URL"] = collector.url
    try:
        site = RemoteSite(collector)
        si.register_line(site.engine)
        si.slow_line_day(site)  # type: ignore[arg-type]
        pk = si.slow_line_incident(site, si.result_ids(site))  # type: ignore[arg-type]
        site.engine.dispose()
        admin = collector.cli("admin-token", "create").stdout.strip()
        answer = httpx.post(
            f"{collector.url}/api/v1/admin/incidents/{pk}/share",
            json={"valid_for": "1d"},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        secret = answer.json()["url"].split("share=")[1]
        yield collector, secret, pk
    finally:
        collector.stop()


def chromium(*args: str) -> None:
    """One headless Chromium run to its end. It runs in a session of its own, and that whole
    process group is killed afterwards: Chromium's zygote and renderer children would
    otherwise outlive a run that timed out (subprocess.run kills only the first process)."""
    binary = require_tool("chromium")
    with tempfile.TemporaryDirectory() as profile:
        process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            _, stderr = process.communicate(timeout=120)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, stderr[-2000:]


def test_share_page_in_chromium_screenshot_ocr_and_print(served: Any, tmp_path: Path) -> None:
    collector, secret, pk = served
    url = f"{collector.url}/incidents/{pk}?share={secret}&lang=en"
    page = httpx.get(url, timeout=30)
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    # No request off the collector: nothing on the page names another origin to load.
    assert not re.search(r"<(script|link|img|iframe)\b", page.text)

    shot = tmp_path / "page.png"
    started = time.monotonic()
    chromium(f"--screenshot={shot}", "--window-size=1280,1400", url)
    render_seconds = time.monotonic() - started
    assert shot.stat().st_size > 10_000
    ocr = subprocess.run(
        [require_tool("tesseract"), str(shot), "-"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    flat = " ".join(ocr.split())
    assert "De Regenboog" in flat and "Example Fibre" in flat, flat[:2000]
    assert re.search(r"41 ?%", flat), flat[:2000]
    assert "41 Mbit/s" in flat, flat[:2000]

    printed = tmp_path / "printed.pdf"
    chromium(f"--print-to-pdf={printed}", "--no-pdf-header-footer", url)
    text = subprocess.run(
        [require_tool("pdftotext"), "-layout", str(printed), "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "delivered a median of 41 Mbit/s download" in " ".join(text.split())
    assert "127.0.0.1:9101" in text
    print(f"chromium screenshot of the evidence page: {render_seconds:.2f} s")


@pytest.mark.parametrize(
    ("lang", "phrases"),
    [
        (
            "nl",
            ("Op dinsdag 3 maart 2026 leverde de verbinding van De Regenboog", "Snelheidsmetingen", "41 %"),
        ),
        (
            "en",
            ("On Tuesday 3 March 2026 from 09:12 the line of De Regenboog", "Bandwidth measurements", "41 %"),
        ),
    ],
)
def test_server_pdf_has_the_summary_and_the_measurement_rows(
    served: Any, tmp_path: Path, lang: str, phrases: tuple[str, ...]
) -> None:
    collector, secret, pk = served
    started = time.monotonic()
    answer = httpx.get(
        f"{collector.url}/incidents/{pk}/evidence.pdf", params={"share": secret, "lang": lang}, timeout=60
    )
    seconds = time.monotonic() - started
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    path = tmp_path / f"pack-{lang}.pdf"
    path.write_bytes(answer.content)
    text = subprocess.run(
        [require_tool("pdftotext"), "-layout", str(path), "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    flat = " ".join(text.split())
    for phrase in phrases:
        assert phrase in flat, (phrase, flat[:1500])
    # Every measurement row: the four slow tests and the invalid one, with their servers.
    # (a narrow column may wrap a server's URL: its host is enough)
    assert "127.0.0.1:9101" in flat.replace(" ", "") and "127.0.0.1:9102" in flat.replace(" ", "")
    for clock in ("09:12", "10:40", "11:20", "12:05", "13:30"):
        assert f"3 {'mrt' if lang == 'nl' else 'Mar'} {clock}" in flat, clock
    print(f"evidence PDF ({lang}) over HTTP: {seconds:.2f} s")


# (the Dutch headers are the longer ones; at 800 px the last four columns were cut off,
# and a table that fits 800 px fits any wider window)
@pytest.mark.parametrize(
    ("width", "lang", "first", "last", "value"),
    [
        (800, "nl", "Tijd Agent Methode", r"Hertest.* Gateway( op dat moment)?$", "verlies"),
        (800, "en", "Time Agent Method", r"Retest.* Gateway( at the time)?$", "loss"),
    ],
)
def test_the_measurement_table_is_whole_in_a_narrow_window(
    served: Any, tmp_path: Path, width: int, lang: str, first: str, last: str, value: str
) -> None:
    """The twelve columns of the measurements fit the window: its last column's header and
    the values under it are on the screenshot (at 1200 px they were cut off)."""
    collector, secret, pk = served
    shot = tmp_path / f"page-{width}.png"
    # Tall enough to hold the page down to the measurement table.
    chromium(f"--screenshot={shot}", f"--window-size={width},3200",
             f"{collector.url}/incidents/{pk}?share={secret}&lang={lang}")
    ocr = subprocess.run(
        [require_tool("tesseract"), str(shot), "-"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    lines = [" ".join(line.split()) for line in ocr.splitlines() if line.strip()]
    # The header's first line, "Time Agent Method Server …", ends with the last column's
    # "Gateway" (the rest of its name may wrap below it).
    header = next((line for line in lines if line.startswith(first)), None)
    assert header is not None, ocr[:3000]
    assert re.search(last, header), header
    # A test's row ends with that column's gateway loss, "loss 0 %" (OCR misreads some of
    # the small print, the grey invalid row most: three of the five rows are enough).
    rows = [line for line in lines if "Mbit/s" in line]
    assert sum(bool(re.search(rf"{value} ?0[ .,]?%.{{0,2}}$", row)) for row in rows) >= 3, rows

"""The evidence PDF prints the names it is given: a school or contact named in Polish,
Turkish or Hungarian comes out letter for letter (read back with pdftotext from the PDF the
server sends), not as the black boxes Helvetica's WinAnsi encoding leaves for ł, ş and Ő.
Without any font file of the search list it still builds, in Helvetica."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from support import incidents as si
from support.tools import require_tool, unavailable
from test_collector.conftest import Site, make_site

from collector.incidents import pdf
from collector.registry import create_admin_token

SCHOOL = "Szkoła Şahin Ő"
CONTACT = "Łucja Öztürk-Ğül"


@pytest.fixture
def polish(tmp_path: Path) -> Iterator[tuple[Site, dict[str, str], int]]:
    with make_site(tmp_path) as site:
        si.register_line(site.engine, school_name=SCHOOL)
        si.slow_line_day(site)
        assessment = si.default_assessment()
        assessment["contact"] = {"name": CONTACT, "email": "ict@szkola.test", "phone": None, "role": "school"}
        pk = si.slow_line_incident(site, si.result_ids(site), assessment=assessment)
        yield site, {"Authorization": f"Bearer {create_admin_token(site.engine)}"}, pk


def pdftotext(path: Path) -> str:
    return subprocess.run(
        [require_tool("pdftotext"), str(path), "-"], capture_output=True, text=True, timeout=60, check=True
    ).stdout


def fonts_of(path: Path) -> set[str]:
    names: set[str] = set()
    for page in PdfReader(path).pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]))
    return names


def test_the_server_pdf_prints_names_beyond_winansi_intact(polish: Any, tmp_path: Path) -> None:
    site, admin, pk = polish
    if pdf.pdf_fonts().regular == "Helvetica":
        unavailable(f"none of {[r for r, _ in pdf.FONT_CANDIDATES]} is installed (fonts-dejavu-core)")
    answer = site.client.get(f"/incidents/{pk}/evidence.pdf", params={"lang": "en"}, headers=admin)
    assert answer.status_code == 200, answer.text
    path = tmp_path / "pack.pdf"
    path.write_bytes(answer.content)
    text = pdftotext(path)
    flat = " ".join(text.split())
    assert SCHOOL in flat, flat[:1500]
    assert CONTACT in flat, flat[:1500]
    assert "■" not in text
    # The figures are still there, and the font is the embedded TrueType one.
    assert "41 %" in flat and "127.0.0.1:9101" in flat.replace(" ", "")
    # DejaVu runs wider than Helvetica: the cells are a size smaller, so rows break as before.
    assert "3 Mar 09:12" in flat and "3 Mar 13:30" in flat
    assert any("DejaVuSans" in name for name in fonts_of(path)), fonts_of(path)


def test_without_a_font_file_the_pdf_is_built_in_helvetica(polish: Any, tmp_path: Path) -> None:
    """The search runs once a process, so another process with an empty search list."""
    site, _, pk = polish
    out = tmp_path / "helvetica.pdf"
    script = textwrap.dedent(
        f"""
        import time
        from collector.db.engine import open_engine
        from collector.incidents import pdf
        from collector.incidents.evidence import evidence_document

        pdf.FONT_CANDIDATES = (("{tmp_path}/missing/Sans.ttf", "{tmp_path}/missing/Sans-Bold.ttf"),)
        with open_engine({json.dumps(site.db_url)}).connect() as conn:
            document = evidence_document(conn, {pk}, time.time(), "Europe/Amsterdam")
        open({json.dumps(str(out))}, "wb").write(pdf.evidence_pdf(document, "en"))
        print(pdf.pdf_fonts().regular)
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["Helvetica"]
    fonts = fonts_of(out)
    assert {"/Helvetica", "/Helvetica-Bold"} <= fonts and not any("DejaVu" in f for f in fonts), fonts
    flat = " ".join(pdftotext(out).split())
    assert "41 %" in flat and "Example Fibre" in flat and "Szko" in flat


def test_the_search_list_takes_the_first_pair_present(tmp_path: Path) -> None:
    regular, bold = pdf.FONT_CANDIDATES[0]  # Debian's fonts-dejavu-core
    if not Path(regular).exists():
        unavailable(f"{regular} is missing (fonts-dejavu-core)")
    missing = (str(tmp_path / "a.ttf"), str(tmp_path / "b.ttf"))
    assert pdf.find_font_files((missing, (regular, bold))) == (regular, bold)
    # A regular face without its bold one is no pair: the headings would have no font.
    assert pdf.find_font_files(((regular, missing[1]),)) is None
    assert pdf.find_font_files(()) is None


def test_the_image_installs_the_package_that_holds_the_first_pair() -> None:
    """The Dockerfile's apt line installs fonts-dejavu-core, and that Debian package is what
    puts the first pair of the search list in place (asked of dpkg on this Debian machine)."""
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    joined = " ".join(dockerfile.replace("\\\n", " ").split())
    assert "apt-get install -y --no-install-recommends fonts-dejavu-core" in joined
    assert "rm -rf /var/lib/apt/lists/*" in joined
    owners = subprocess.run(
        [require_tool("dpkg"), "-S", *pdf.FONT_CANDIDATES[0]], capture_output=True, text=True, timeout=30
    )
    assert owners.returncode == 0, owners.stderr
    assert [line.split(":")[0] for line in owners.stdout.splitlines()] == ["fonts-dejavu-core"] * 2

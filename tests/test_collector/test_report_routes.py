"""The report's routes on a real store (tests/support/comparison.py's cooperative: 3 boards,
16 schools, 3 providers) through the collector's app: who may see what, the answers to bad
requests, the headers, and that the page, PDF, CSV and JSON render the same report."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from support import accounts
from support.comparison import cooperative

from collector.app import create_app
from collector.comparison import text
from collector.contracts_csv import TECHNOLOGIES
from collector.registry import create_admin_token
from collector.settings import CollectorSettings

PERIOD = {"from": "2026-03-01", "to": "2026-03-31"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    folder = tmp_path_factory.mktemp("report")
    store = cooperative(folder)
    store.engine.dispose()
    app = create_app(CollectorSettings(db=f"sqlite:///{folder / 'comparison.db'}",
                                       public_url="https://collector.example"))
    with TestClient(app, base_url="https://testserver") as client:
        site = SimpleNamespace(client=client, engine=app.state.engine)
        people: dict[str, dict[str, str]] = {}
        for role, board in (("analyst", None), ("board_viewer", "noord"), ("board_admin", "zuid")):
            user = accounts.add_user(site.engine, f"{role}-{board or 'coop'}", role, board)
            people[role] = accounts.sign_in(site, user, role, role).headers
        people["token"] = {"Authorization": f"Bearer {create_admin_token(site.engine)}"}
        yield SimpleNamespace(client=client, people=people)


def get(served: Any, path: str, who: str | None, **params: Any) -> Any:
    headers = served.people[who] if who else {}
    return served.client.get(path, params={**PERIOD, **params}, headers=headers, follow_redirects=False)


def test_analyst_page_in_both_languages(served: Any) -> None:
    nl = get(served, "/report", "analyst", lang="nl")
    en = get(served, "/report", "analyst", lang="en")
    assert nl.status_code == en.status_code == 200
    assert nl.headers["content-language"] == "nl" and "Vergelijking van providers" in nl.text
    assert "Provider comparison" in en.text and "Glasnet" in en.text
    # Kabelco and Koperlijn have 3 schools of unshared boards each: hidden, said so
    assert "hidden: rests on fewer than 5 schools of boards that have not shared" in en.text
    assert "verborgen: rust op minder dan 5 scholen van besturen die niet gedeeld hebben" in nl.text
    assert "schools of boards that have not shared are counted only in groups of at least 5" in en.text
    # Zuid shared: its schools are listed, the others not
    assert "De Eik" in en.text and "De Regenboog" not in en.text
    assert "/schools/zuid/de-eik/benchmark?" in en.text
    for bad in ("None", "nan"):
        assert f">{bad}<" not in en.text


def test_private_headers_and_form_action(served: Any) -> None:
    answer = get(served, "/report", "analyst")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "form-action 'self'" in policy and "script-src" not in policy
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-robots-tag"] == "noindex, nofollow"
    for path in ("/report.csv", "/report.json", "/report.pdf"):
        assert get(served, path, "analyst").headers["cache-control"] == "no-store", path


def test_board_viewer_sees_only_its_board(served: Any) -> None:
    body = get(served, "/report.json", "board_viewer").json()
    assert {line["board"] for line in body["lines"]} == {"noord"}
    assert body["overall"]["schools"] == 5 and body["hidden_schools"] == 0
    page = get(served, "/report", "board_viewer", lang="en").text
    assert "De Eik" not in page and "Stichting Zuid" not in page
    assert "counted only in groups" not in page


def test_board_role_asking_another_board_is_told_as_for_no_such_board(served: Any) -> None:
    # Another board answers exactly as a board that does not exist: its id cannot be probed.
    answer = get(served, "/report.json", "board_viewer", board="zuid")
    unknown = get(served, "/report.json", "board_viewer", board="nobody")
    assert answer.status_code == unknown.status_code == 422
    assert answer.json()["detail"] == "no board with id 'zuid'"
    assert unknown.json()["detail"] == "no board with id 'nobody'"
    page = get(served, "/report", "board_viewer", board="zuid", lang="en")
    unknown_page = get(served, "/report", "board_viewer", board="nobody", lang="en")
    assert page.status_code == unknown_page.status_code == 422 and "The report cannot be shown" in page.text
    assert page.text == unknown_page.text.replace("nobody", "zuid")
    assert page.headers["cache-control"] == "no-store"
    # An analyst counts an unshared board only with all the others (no subset to set against
    # another): naming it is told as naming no board; a board that shared may be named.
    noord = get(served, "/report.json", "analyst", board="noord")
    assert noord.status_code == 422 and noord.json()["detail"] == "no board with id 'noord'"
    zuid = get(served, "/report.json", "analyst", board="zuid")
    assert zuid.status_code == 200 and {line["board"] for line in zuid.json()["lines"]} == {"zuid"}


@pytest.mark.parametrize(
    ("params", "detail", "en", "nl"),
    [
        ({"from": "2026-13-01"}, "from: not a date (YYYY-MM-DD): '2026-13-01'",
         "from: not a date (YYYY-MM-DD): '2026-13-01'.", "from: geen datum (JJJJ-MM-DD): '2026-13-01'."),
        ({"to": "yesterday"}, "to: not a date", "to: not a date", "to: geen datum"),
        ({"lang": "de"}, "lang: nl or en, not 'de'", "lang: nl or en, not 'de'.", None),
        ({"technology": "pigeon"}, "unknown technology 'pigeon': one of fibre, cable",
         "Unknown technology 'pigeon': one of fibre, cable, vdsl",
         "Onbekende techniek 'pigeon': een van fibre"),
        ({"board": "nobody"}, "no board with id 'nobody'", "No board with id 'nobody'.",
         "Geen bestuur met id 'nobody'."),
        ({"from": "2026-04-01", "to": "2026-03-01"},
         "the period starts (2026-04-01) after it ends (2026-03-01)",
         "The period starts (1 Apr 2026) after it ends (1 Mar 2026).",
         "De periode begint (1 apr 2026) na haar einde (1 mrt 2026)."),
        ({"from": "9999-12-30", "to": "9999-12-31"},
         "the date 9999-12-30 is outside 2000-01-01 to 2100-12-31",
         "The date 30 Dec 9999 is outside the years a report may cover (1 Jan 2000 to 31 Dec 2100).",
         "De datum 30 dec 9999 valt buiten de jaren die een rapport mag beslaan (1 jan 2000 tot en met "
         "31 dec 2100)."),
    ],
)
def test_bad_requests_are_one_line_422(served: Any, params: dict[str, str], detail: str, en: str,
                                       nl: str | None) -> None:
    """The exports answer the English line as JSON; the page and the PDF word it in the
    reader's language (an unknown lang is said in English: there is no other to choose)."""
    for path in ("/report.json", "/report.csv", "/schools/zuid/de-eik/benchmark.json"):
        if path.startswith("/schools") and not set(params) <= {"from", "to", "lang"}:
            continue
        answer = get(served, path, "analyst", **params)
        assert answer.status_code == 422, (path, answer.text)
        said = answer.json()["detail"]
        assert said.startswith(detail) and "\n" not in said and "Traceback" not in said, said
    for path in ("/report", "/report.pdf"):
        for lang, words in (("en", en), ("nl", nl)):
            if words is None:
                continue
            query = {"lang": lang, **params}
            page = get(served, path, "analyst", **query)
            assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
            assert page.headers["content-language"] == lang
            assert words in html.unescape(page.text) and "Traceback" not in page.text, (path, lang)


def test_csv_and_json_do_not_depend_on_the_language(served: Any) -> None:
    for path in ("/report.csv", "/report.json"):
        nl, en, none = (get(served, path, "analyst", **q).text for q in ({"lang": "nl"}, {"lang": "en"}, {}))
        if path.endswith(".json"):  # generated_at is the clock's: compare the rest
            nl, en, none = (json.dumps({**json.loads(b), "generated_at": 0}) for b in (nl, en, none))
        assert nl == en == none, path


def test_without_a_session(served: Any) -> None:
    for path in ("/report", "/report.pdf", "/schools/zuid/de-eik/benchmark"):
        answer = get(served, path, None)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=/"), path
    for path in ("/report.csv", "/report.json", "/schools/zuid/de-eik/benchmark.json"):
        assert get(served, path, None).status_code == 401, path


def test_admin_token_works_everywhere(served: Any) -> None:
    for path in ("/report", "/report.pdf", "/report.csv", "/report.json",
                 "/schools/noord/de-regenboog/benchmark", "/schools/noord/de-regenboog/benchmark.json"):
        assert get(served, path, "token").status_code == 200, path
    body = get(served, "/report.json", "token").json()
    assert body["hidden_schools"] == 0 and len(body["lines"]) == 16


def test_csv_and_json_say_the_same(served: Any) -> None:
    body = get(served, "/report.json", "analyst").json()
    rows = list(csv.DictReader(io.StringIO(get(served, "/report.csv", "analyst").text)))
    providers = [r for r in rows if r["row_kind"] == "provider"]
    assert [r["provider_id"] for r in providers] == [g["provider_id"] for g in body["by_provider"]]
    for row, group in zip(providers, body["by_provider"], strict=True):
        value = group["median_ratio"]["value"]
        assert row["median_ratio"] == ("" if value is None else repr(value))
        assert row["hidden"] == ("true" if group["hidden"] else "false")
    assert len([r for r in rows if r["row_kind"] == "line"]) == len(body["lines"])
    assert get(served, "/report.csv", "analyst").headers["content-type"].startswith("text/csv")


def test_pdf_has_the_figures(served: Any) -> None:
    answer = get(served, "/report.pdf", "analyst", lang="en")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    words = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(answer.content)).pages).split())
    body = get(served, "/report.json", "analyst").json()
    glasnet = next(g for g in body["by_provider"] if g["provider"] == "Glasnet")
    assert f"{round(glasnet['median_ratio']['value'] * 100)}%" in words
    assert "Provider comparison" in words and "Kabelco" in words and "Page 1 /" in words


def test_benchmark_page_and_json(served: Any) -> None:
    page = get(served, "/schools/zuid/de-eik/benchmark", "analyst", lang="en")
    assert page.status_code == 200 and "Your line compared with similar schools" in page.text
    assert "De Beuk" not in page.text and "De Regenboog" not in page.text  # no peer named
    data = get(served, "/schools/zuid/de-eik/benchmark.json", "analyst").json()
    assert data["school"] == "de-eik" and data["similarity"] in ("technology_tier", "technology", "none")
    assert json.dumps(data).count("de-beuk") == 0
    # A school of a board the viewer may not see answers as a school that does not exist: 404,
    # in the same words (the page in the same page).
    for who, board, school in (("analyst", "noord", "de-regenboog"), ("board_viewer", "zuid", "de-eik")):
        for suffix in ("", ".json"):
            hidden_school = get(served, f"/schools/{board}/{school}/benchmark{suffix}", who, lang="en")
            unknown = get(served, f"/schools/{board}-x/{school}-x/benchmark{suffix}", who, lang="en")
            assert hidden_school.status_code == unknown.status_code == 404, (who, suffix)
            assert hidden_school.text == unknown.text.replace(f"{board}-x/{school}-x", f"{board}/{school}")
    missing = get(served, "/schools/zuid/nowhere/benchmark.json", "board_admin")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no school 'zuid/nowhere' (see: school list)"


def test_unknown_school_is_worded_in_the_readers_language(served: Any) -> None:
    for lang, words in (("en", "No school 'zuid/nowhere'."), ("nl", "Geen school 'zuid/nowhere'.")):
        page = get(served, "/schools/zuid/nowhere/benchmark", "board_admin", lang=lang)
        assert page.status_code == 404 and words in html.unescape(page.text), lang
        assert page.headers["content-language"] == lang


def test_hidden_groups_have_no_incident_count(served: Any) -> None:
    body = get(served, "/report.json", "analyst").json()
    hidden = [g for g in body["by_provider"] + body["by_technology"] if g["hidden"]]
    assert hidden, "the cooperative has hidden groups (Kabelco, Koperlijn)"
    assert all(g["incidents"] is None for g in hidden)
    rows = list(csv.DictReader(io.StringIO(get(served, "/report.csv", "analyst").text)))
    hidden_rows = [r for r in rows if r["hidden"] == "true"]
    assert len(hidden_rows) >= len(hidden) and all(r["incidents"] == "" for r in hidden_rows)
    shown = [r for r in rows if r["row_kind"] == "provider" and r["hidden"] == "false"]
    assert shown and all(r["incidents"].isdigit() for r in shown)


def test_dutch_page_has_no_technology_codes(served: Any) -> None:
    page = get(served, "/report", "analyst", lang="nl").text
    without_style = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    words = html.unescape(re.sub(r"<[^>]+>", " ", without_style))  # what a reader sees, not the URLs
    assert "glasvezel" in words
    codes = [code for code in TECHNOLOGIES if code.upper() != text.technology(code, "nl")]
    assert not re.findall(rf"\b({'|'.join(codes)})\b", words)

"""The report's routes on a real store (tests/support/comparison.py's cooperative: 3 boards,
16 schools, 3 providers) through the collector's app: who may see what, the answers to bad
requests, the headers, and that the page, PDF, CSV and JSON render the same report."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from support import accounts
from support.comparison import cooperative

from collector.app import create_app
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
    assert "hidden: fewer than 5 schools" in en.text and "verborgen: minder dan 5 scholen" in nl.text
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


def test_board_role_asking_another_board_is_403(served: Any) -> None:
    answer = get(served, "/report.json", "board_viewer", board="zuid")
    assert answer.status_code == 403 and "\n" not in answer.json()["detail"]
    page = get(served, "/report", "board_viewer", board="zuid", lang="en")
    assert page.status_code == 403 and "The report cannot be shown" in page.text
    assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"from": "2026-13-01"}, "from: not a date"),
        ({"to": "yesterday"}, "to: not a date"),
        ({"lang": "de"}, "lang: nl or en"),
        ({"technology": "pigeon"}, "pigeon"),
        ({"board": "nobody"}, "nobody"),
        ({"from": "2026-04-01", "to": "2026-03-01"}, ""),
    ],
)
def test_bad_requests_are_one_line_422(served: Any, params: dict[str, str], says: str) -> None:
    answer = get(served, "/report.json", "analyst", **params) if "lang" not in params else None
    if answer is not None:
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert says in detail and "\n" not in detail and "Traceback" not in detail
    page = get(served, "/report", "analyst", **params)
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert says in page.text and "Traceback" not in page.text


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
    assert get(served, "/schools/noord/de-regenboog/benchmark", "analyst").status_code == 403
    assert get(served, "/schools/zuid/de-eik/benchmark.json", "board_viewer").status_code == 403
    assert get(served, "/schools/zuid/nowhere/benchmark.json", "board_admin").status_code == 422

"""The incident pages over HTTP: who may see them (admin token, share link for one incident),
their headers, languages and the downloads."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import incidents as si
from test_collector.conftest import Site, make_site

from collector.db.engine import writer
from collector.incidents.shares import create_share, revoke_shares, share_allows
from collector.registry import create_admin_token


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[tuple[Site, dict[str, str], int, int]]:
    with make_site(tmp_path, public_url="https://schoolnet.example.nl") as site:
        si.register_line(site.engine)
        si.slow_line_day(site)
        slow = si.slow_line_incident(site, si.result_ids(site))
        other = si.outage_incident(site)
        admin = {"Authorization": f"Bearer {create_admin_token(site.engine)}"}
        yield site, admin, slow, other


def share(site: Site, admin: dict[str, str], pk: int, valid_for: str = "14d") -> str:
    answer = site.client.post(
        f"/api/v1/admin/incidents/{pk}/share", json={"valid_for": valid_for}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    url = answer.json()["url"]
    assert url.startswith(f"https://schoolnet.example.nl/incidents/{pk}?share=")
    return str(url.split("share=")[1])


def signs_in_first(answer: Any, path: str) -> bool:
    """A browser without a session is sent to the sign-in page, and back here after it."""
    return answer.status_code == 303 and answer.headers["location"].startswith(f"/login?next={path}")


def test_admin_token_or_share_link_or_sign_in(pages: Any) -> None:
    site, admin, slow, other = pages
    assert signs_in_first(site.client.get(f"/incidents/{slow}", follow_redirects=False), f"/incidents/{slow}")
    assert site.client.get(f"/incidents/{slow}", headers={"Authorization": "Bearer nope"}).status_code == 401
    # An agent's credential is not an admin token.
    assert site.client.get(f"/incidents/{slow}", headers=site.auth).status_code == 401
    assert site.client.get(f"/incidents/{slow}", headers=admin).status_code == 200
    assert site.client.get("/incidents/999", headers=admin).status_code == 404
    secret = share(site, admin, slow)
    page = site.client.get(f"/incidents/{slow}", params={"share": secret})
    assert page.status_code == 200 and "De Regenboog" in page.text
    # The share opens its own incident only: another one answers as if it did not exist.
    assert site.client.get(f"/incidents/{other}", params={"share": secret}).status_code == 404
    assert site.client.get("/incidents/999", params={"share": secret}).status_code == 404
    assert site.client.get(f"/incidents/{slow}", params={"share": "guess"}).status_code == 404
    # A share opens no list: without a session a browser is sent to sign in.
    assert signs_in_first(site.client.get("/incidents", params={"share": secret}, follow_redirects=False),
                          "/incidents")


def test_share_links_carry_the_secret_and_the_downloads_work_with_it(pages: Any) -> None:
    site, admin, slow, _ = pages
    secret = share(site, admin, slow)
    page = site.client.get(f"/incidents/{slow}", params={"share": secret, "lang": "en"})
    assert f"/incidents/{slow}/evidence.pdf?lang=en&amp;share={secret}" in page.text
    pdf = site.client.get(f"/incidents/{slow}/evidence.pdf", params={"share": secret})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    data = site.client.get(f"/incidents/{slow}/evidence.json", params={"share": secret}).json()
    assert data["rule"]["measured"] == pytest.approx(0.41)
    table = site.client.get(
        f"/incidents/{slow}/evidence.csv", params={"share": secret, "table": "measurements"}
    )
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert len(rows) == 5 and table.headers["content-type"].startswith("text/csv")
    bad = site.client.get(f"/incidents/{slow}/evidence.csv", params={"share": secret, "table": "x"})
    assert bad.status_code == 422 and "table must be one of" in bad.json()["detail"]


def test_private_headers_and_a_page_that_loads_nothing(pages: Any) -> None:
    site, admin, slow, _ = pages
    secret = share(site, admin, slow)
    for path in ("", "/evidence.pdf", "/evidence.json", "/evidence.csv"):
        answer = site.client.get(f"/incidents/{slow}{path}", params={"share": secret})
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "noindex" in answer.headers["x-robots-tag"]
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
    html = site.client.get(f"/incidents/{slow}", params={"share": secret}).text
    for needle in ("<script", "<link", "<img", "@import", "url("):
        assert needle not in html
    # The only addresses on it are the test servers the agent measured against (loopback).
    import re

    urls = {u.rstrip(",:") for u in re.findall(r"https?://[^\s\"'<)]+", html)}
    assert urls <= {si.SERVER_A, si.SERVER_B}, urls


def test_language_from_the_query_or_accept_language(pages: Any) -> None:
    site, admin, slow, _ = pages

    def lang(**kwargs: Any) -> str:
        text = site.client.get(f"/incidents/{slow}", headers=admin | kwargs.pop("headers", {}), **kwargs).text
        return text.split('<html lang="')[1][:2]

    assert lang(headers={"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.8"}) == "nl"
    assert lang(headers={"Accept-Language": "en-GB,en;q=0.9,nl;q=0.8"}) == "en"
    assert lang(headers={"Accept-Language": "de-DE,de;q=0.9"}) == "en"
    assert lang(headers={"Accept-Language": "nl"}, params={"lang": "en"}) == "en"
    assert site.client.get(f"/incidents/{slow}", headers=admin, params={"lang": "fr"}).status_code == 422


def test_expired_and_revoked_links_are_refused(pages: Any) -> None:
    site, admin, slow, _ = pages
    now = time.time()
    with writer(site.engine) as conn, conn.begin():
        short = create_share(conn, slow, 60, now)
        live = create_share(conn, slow, 3600, now)
    with site.engine.connect() as conn:
        assert share_allows(conn, slow, short, now + 30) and not share_allows(conn, slow, short, now + 61)
    assert site.client.get(f"/incidents/{slow}", params={"share": live}).status_code == 200
    revoked = site.client.delete(f"/api/v1/admin/incidents/{slow}/share", headers=admin)
    assert revoked.json() == {"revoked": 2}
    assert site.client.get(f"/incidents/{slow}", params={"share": live}).status_code == 404
    with writer(site.engine) as conn, conn.begin():
        assert revoke_shares(conn, slow, now) == 0
    # Only the hash is stored.
    assert all(live not in str(row) for row in site.sql("SELECT * FROM incident_shares"))


def test_share_link_requests(pages: Any) -> None:
    site, admin, slow, _ = pages
    assert site.client.post(f"/api/v1/admin/incidents/{slow}/share", json={}).status_code == 401
    assert site.client.post("/api/v1/admin/incidents/999/share", json={}, headers=admin).status_code == 404
    bad = site.client.post(f"/api/v1/admin/incidents/{slow}/share", json={"valid_for": "soon"}, headers=admin)
    assert bad.status_code == 422
    assert (
        site.client.post(
            f"/api/v1/admin/incidents/{slow}/share", json={"valid_for": "5y"}, headers=admin
        ).status_code
        == 422
    )


def test_lists(pages: Any) -> None:
    site, admin, slow, other = pages
    active = site.client.get("/incidents", headers=admin)
    assert active.status_code == 200 and f">{slow}</a>" in active.text and f">{other}</a>" not in active.text
    everything = site.client.get("/incidents", params={"state": "all"}, headers=admin).text
    assert everything.index(f">{slow}</a>") < everything.index(f">{other}</a>")  # active first
    school = site.client.get("/incidents/test-board/test-school", headers=admin)
    assert school.status_code == 200 and f">{other}</a>" in school.text and "De Regenboog" in school.text
    assert site.client.get("/incidents/test-board/nowhere", headers=admin).status_code == 404
    assert signs_in_first(site.client.get("/incidents/test-board/test-school", follow_redirects=False),
                          "/incidents/test-board/test-school")


def test_an_incident_number_beyond_sql_integers_is_a_422_not_a_500(pages: Any) -> None:
    site, admin, _, _ = pages
    huge = "99999999999999999999"
    for path in ("", "/evidence.pdf", "/evidence.json", "/evidence.csv"):
        assert site.client.get(f"/incidents/{huge}{path}", headers=admin).status_code == 422
        assert site.client.get(f"/incidents/{huge}{path}", params={"share": "x"}).status_code == 422
    share = site.client.post(f"/api/v1/admin/incidents/{huge}/share", json={}, headers=admin)
    assert share.status_code == 422
    assert site.client.delete(f"/api/v1/admin/incidents/{huge}/share", headers=admin).status_code == 422
    # Revoking the links of an incident that does not exist is a 404, like making one.
    missing = site.client.delete("/api/v1/admin/incidents/9999/share", headers=admin)
    assert missing.status_code == 404 and missing.json()["detail"] == "no incident 9999"


def test_the_cli_refuses_an_incident_number_beyond_sql_integers(pages: Any, capsys: Any) -> None:
    from collector.cli import main

    site, _, _, _ = pages
    with pytest.raises(SystemExit) as exit_:
        main(["evidence", "99999999999999999999", "--db", site.db_url])
    assert exit_.value.code == 2
    assert "is not an incident number" in capsys.readouterr().err


def test_the_cli_makes_a_share_link_and_revokes_every_link(pages: Any, capsys: Any) -> None:
    from collector.cli import main

    site, admin, slow, other = pages
    assert main(["evidence", str(slow), "--link", "--valid-for", "1d", "--db", site.db_url]) == 0
    url = capsys.readouterr().out.strip()
    assert f"/incidents/{slow}?share=" in url
    from_cli = url.split("share=")[1]
    from_api = share(site, admin, slow)
    kept = share(site, admin, other)
    for secret in (from_cli, from_api):
        assert site.client.get(f"/incidents/{slow}", params={"share": secret}).status_code == 200

    assert main(["evidence", str(slow), "--revoke-links", "--db", site.db_url]) == 0
    assert capsys.readouterr().out.strip() == f"revoked 2 share links of incident {slow}"
    for secret in (from_cli, from_api):
        assert site.client.get(f"/incidents/{slow}", params={"share": secret}).status_code == 404
    # Another incident's link is not touched; revoking again finds none left.
    assert site.client.get(f"/incidents/{other}", params={"share": kept}).status_code == 200
    assert main(["evidence", str(slow), "--revoke-links", "--db", site.db_url]) == 0
    assert capsys.readouterr().out.strip() == f"revoked 0 share links of incident {slow}"
    assert main(["evidence", str(other), "--revoke-links", "--db", site.db_url]) == 0
    assert capsys.readouterr().out.strip() == f"revoked 1 share link of incident {other}"


def test_the_cli_refuses_to_revoke_links_of_no_incident_or_with_link(pages: Any, capsys: Any) -> None:
    from collector.cli import main

    site, _, slow, _ = pages
    assert main(["evidence", "999", "--revoke-links", "--db", site.db_url]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip().endswith("error: no incident 999")
    with pytest.raises(SystemExit) as exit_:
        main(["evidence", str(slow), "--link", "--revoke-links", "--db", site.db_url])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_cli_help_says_how_to_revoke_a_link(capsys: Any) -> None:
    from collector.cli import main

    with pytest.raises(SystemExit):
        main(["evidence", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--revoke-links" in help_text and "admin API" not in help_text

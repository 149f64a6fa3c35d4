"""A signed-in browser's unsafe request whose CSRF token travels in a form body: the check
reads the form, and the route still gets its body (no "stream consumed", never a 500)."""

from __future__ import annotations

from pathlib import Path

from support.accounts import add_user, session_cookie
from test_collector.conftest import make_site

from collector.accounts.csrf import csrf_token
from collector.accounts.sessions import create_session


def test_a_form_posted_to_a_route_that_reads_its_own_body_is_answered_not_a_500(tmp_path: Path) -> None:
    with make_site(tmp_path, public_url="https://testserver") as site:
        user = add_user(site.engine, "anne", "board_admin", "test-board")
        secret = create_session(site.engine, user, 3600)
        answer = site.client.post(
            "https://testserver/api/v1/admin/contracts.csv",
            headers={**session_cookie("https://testserver", secret),
                     "Content-Type": "application/x-www-form-urlencoded"},
            content=f"csrf={csrf_token(secret)}".encode())
        # The token was accepted (not a 403), and the body reached the importer, which says
        # in one line what is wrong with it as a CSV.
        assert answer.status_code == 422, answer.text
        assert "\n" not in answer.json()["detail"]
        forged = site.client.post(
            "https://testserver/api/v1/admin/contracts.csv",
            headers={**session_cookie("https://testserver", secret),
                     "Content-Type": "application/x-www-form-urlencoded"},
            content=b"csrf=forged")
        assert forged.status_code == 403

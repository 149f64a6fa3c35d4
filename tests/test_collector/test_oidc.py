"""Sign-in through OpenID Connect against a real issuer on loopback (tests/support/oidc_issuer.py):
the whole authorization code flow with PKCE, account linking by verified e-mail, and every
check on the ID token refusing a token that fails it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from collector.accounts.passwords import hash_password
from collector.accounts.sessions import viewer_for_session
from collector.app import create_app
from collector.db.schema import boards, users
from collector.registry import add_board
from collector.settings import CollectorSettings
from tests.support.oidc_issuer import CLIENT_ID, CLIENT_SECRET, FakeIssuer

SESSION_COOKIE = "__Host-schoolnet_session"


@pytest.fixture(scope="module")
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as fake:
        yield fake


@pytest.fixture
def app(tmp_path: Path, issuer: FakeIssuer) -> Any:
    secret = tmp_path / "client-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    application = create_app(CollectorSettings(
        db=f"sqlite:///{tmp_path / 'collector.db'}", public_url="https://testserver",
        oidc_issuer=issuer.url, oidc_client_id=CLIENT_ID, oidc_client_secret_file=secret))
    add_board(application.state.engine, "Stichting Voorbeeld")
    issuer.tamper = {}
    issuer.next_claims = {}
    return application


def add_account(app: Any, username: str, email: str, *, disabled: bool = False,
                role: str = "board_viewer") -> int:
    now = time.time()
    with app.state.engine.begin() as conn:
        board = conn.scalar(select(boards.c.id))
        return int(conn.execute(users.insert().values(
            username=username, display_name=username.title(), email=email, role=role,
            board_id=None if role == "admin" else board,
            password_hash=hash_password("a long enough password"), created_at=now, updated_at=now,
            disabled_at=now if disabled else None)).inserted_primary_key[0])


def sign_in(client: TestClient, issuer: FakeIssuer, claims: dict[str, Any], next_path: str = "/report"
            ) -> httpx.Response:
    """Both legs, as a browser goes: to the issuer, back with a code; the collector's last answer."""
    issuer.next_claims = claims
    started = client.get("/login/oidc", params={"next": next_path}, follow_redirects=False)
    assert started.status_code == 303, started.text
    at_issuer = httpx.get(started.headers["location"], follow_redirects=False)
    assert at_issuer.status_code == 302
    back = urlsplit(at_issuer.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == "https://testserver/login/oidc/callback"
    return client.get(f"{back.path}?{back.query}", follow_redirects=False)


def signed_in_user(app: Any, client: TestClient) -> int | None:
    secret = client.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    viewer = viewer_for_session(app.state.engine, secret, 3600)
    return viewer.user_id if viewer else None


def test_the_first_sign_in_links_the_account_by_verified_email_and_later_ones_by_subject(
        app: Any, issuer: FakeIssuer) -> None:
    anne = add_account(app, "anne", "Anne@Regenboog.example")
    with TestClient(app, base_url="https://testserver") as client:
        answer = sign_in(client, issuer, {"sub": "fed-123", "email": "anne@regenboog.example",
                                          "email_verified": True, "name": "Anne de Vries"})
        assert answer.status_code == 303 and answer.headers["location"] == "/report"
        assert signed_in_user(app, client) == anne
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    with app.state.engine.connect() as conn:
        row = conn.execute(select(users.c.oidc_issuer, users.c.oidc_subject)).one()
    assert (row.oidc_issuer, row.oidc_subject) == (issuer.url, "fed-123")
    # Later the federation reports another address: the link by subject still holds.
    with TestClient(app, base_url="https://testserver") as client:
        answer = sign_in(client, issuer, {"sub": "fed-123", "email": "a.devries@elders.example",
                                          "email_verified": True})
        assert answer.status_code == 303 and signed_in_user(app, client) == anne
    # The flow used PKCE and the token endpoint: the issuer saw the code exchanged.
    assert ("POST", "/token") in issuer.log


@pytest.mark.parametrize(("claims", "why"), [
    ({"sub": "x1", "email": "anne@regenboog.example", "email_verified": False}, "did not vouch"),
    ({"sub": "x2", "email": "anne@regenboog.example"}, "did not vouch"),
    ({"sub": "x3", "email": "nobody@elders.example", "email_verified": True}, "no account here for"),
])
def test_an_identity_without_an_account_is_refused(app: Any, issuer: FakeIssuer, claims: dict[str, Any],
                                                    why: str) -> None:
    add_account(app, "anne", "anne@regenboog.example")
    with TestClient(app, base_url="https://testserver") as client:
        answer = sign_in(client, issuer, claims)
        assert answer.status_code == 401 and why in answer.text
        assert signed_in_user(app, client) is None
    with app.state.engine.connect() as conn:
        assert conn.scalar(select(users.c.oidc_subject)) is None


def test_a_collector_admin_is_never_linked_by_email(app: Any, issuer: FakeIssuer) -> None:
    # In a federation any member's identity provider could vouch for the admin's address.
    add_account(app, "root", "ict@bestuur.example", role="admin")
    with TestClient(app, base_url="https://testserver") as client:
        answer = sign_in(client, issuer, {"sub": "fed-7", "email": "ict@bestuur.example",
                                          "email_verified": True})
        assert answer.status_code == 401 and "signs in with a password" in answer.text
        assert signed_in_user(app, client) is None
    with app.state.engine.connect() as conn:
        assert conn.scalar(select(users.c.oidc_subject)) is None


def test_an_account_linked_before_it_was_made_admin_signs_in_with_its_password_only(
        app: Any, issuer: FakeIssuer) -> None:
    anne = add_account(app, "anne", "anne@regenboog.example")
    claims = {"sub": "fed-2", "email": "anne@regenboog.example", "email_verified": True}
    with TestClient(app, base_url="https://testserver") as client:
        assert sign_in(client, issuer, claims).status_code == 303
    with app.state.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == anne).values(role="admin", board_id=None))
    with TestClient(app, base_url="https://testserver") as client:
        answer = sign_in(client, issuer, claims)
        assert answer.status_code == 401 and "signs in with a password" in answer.text
        assert signed_in_user(app, client) is None


def test_signing_in_ends_the_session_the_browser_had(app: Any, issuer: FakeIssuer) -> None:
    anne = add_account(app, "anne", "anne@regenboog.example")
    with TestClient(app, base_url="https://testserver") as client:
        claims = {"sub": "fed-1", "email": "anne@regenboog.example", "email_verified": True}
        sign_in(client, issuer, claims)
        before = client.cookies.get(SESSION_COOKIE)
        sign_in(client, issuer, claims)
        assert signed_in_user(app, client) == anne and client.cookies.get(SESSION_COOKIE) != before
        assert before is not None and viewer_for_session(app.state.engine, before, 3600) is None


def test_a_disabled_account_cannot_sign_in_through_the_issuer(app: Any, issuer: FakeIssuer) -> None:
    add_account(app, "anne", "anne@regenboog.example", disabled=True)
    with TestClient(app, base_url="https://testserver") as client:
        answer = sign_in(client, issuer, {"sub": "fed-9", "email": "anne@regenboog.example",
                                          "email_verified": True})
        assert answer.status_code == 401 and signed_in_user(app, client) is None


@pytest.mark.parametrize(("tamper", "why"), [
    ({"claims": {"aud": "another-client"}}, "not valid"),
    ({"claims": {"iss": "https://evil.example"}}, "not valid"),
    ({"claims": {"nonce": "another-sign-in"}}, "another sign-in"),
    ({"claims": {"exp": int(time.time()) - 600}}, "expired"),
    ({"claims": {"iat": int(time.time()) + 3600}}, "not valid"),
    ({"drop": ["nonce"]}, "another sign-in"),
    ({"drop": ["exp"]}, "not valid"),
    ({"claims": {"aud": [CLIENT_ID, "other"], "azp": "other"}}, "another client"),
    ({"wrong_key": True}, "not valid"),
    ({"algorithm": "none"}, "not accepted"),
    ({"algorithm": "HS256"}, "not accepted"),
])
def test_every_check_on_the_id_token_refuses_a_token_that_fails_it(
        app: Any, issuer: FakeIssuer, tamper: dict[str, Any], why: str) -> None:
    add_account(app, "anne", "anne@regenboog.example")
    issuer.tamper = tamper
    with TestClient(app, base_url="https://testserver") as client:
        answer = sign_in(client, issuer, {"sub": "fed-1", "email": "anne@regenboog.example",
                                          "email_verified": True})
        assert answer.status_code == 401, answer.text
        assert why in answer.text and "Traceback" not in answer.text
        assert signed_in_user(app, client) is None


def test_a_callback_this_browser_did_not_start_is_refused(app: Any, issuer: FakeIssuer) -> None:
    add_account(app, "anne", "anne@regenboog.example")
    issuer.next_claims = {"sub": "fed-1", "email": "anne@regenboog.example", "email_verified": True}
    with TestClient(app, base_url="https://testserver") as victim, \
            TestClient(app, base_url="https://testserver") as attacker:
        # The attacker starts a sign-in and hands its callback link to another browser.
        started = attacker.get("/login/oidc", follow_redirects=False)
        callback = urlsplit(httpx.get(started.headers["location"], follow_redirects=False)
                            .headers["location"])
        answer = victim.get(f"{callback.path}?{callback.query}", follow_redirects=False)
        assert answer.status_code == 400 and "not started in this browser" in answer.text
        assert signed_in_user(app, victim) is None
        # A forged state with the right browser is refused as well.
        query = parse_qs(callback.query)
        answer = attacker.get("/login/oidc/callback", params={"code": query["code"][0], "state": "forged"},
                              follow_redirects=False)
        assert answer.status_code == 400 and signed_in_user(app, attacker) is None


def test_a_code_works_once_and_the_issuers_error_is_shown(app: Any, issuer: FakeIssuer) -> None:
    add_account(app, "anne", "anne@regenboog.example")
    with TestClient(app, base_url="https://testserver") as client:
        issuer.next_claims = {"sub": "fed-1", "email": "anne@regenboog.example", "email_verified": True}
        started = client.get("/login/oidc", follow_redirects=False)
        back = urlsplit(httpx.get(started.headers["location"], follow_redirects=False).headers["location"])
        assert client.get(f"{back.path}?{back.query}", follow_redirects=False).status_code == 303
        client.cookies.clear()
        client.get("/login/oidc", follow_redirects=False)  # a new state cookie, the old code
        replay = client.get(f"{back.path}?{back.query}", follow_redirects=False)
        assert replay.status_code in (400, 401) and signed_in_user(app, client) is None
        # The issuer's error is shown to the browser that started the sign-in (its state)…
        started = client.get("/login/oidc", follow_redirects=False)
        state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
        denied = client.get("/login/oidc/callback", params={"error": "access_denied", "state": state},
                            follow_redirects=False)
        assert denied.status_code == 401 and "access_denied" in denied.text
        # …and to no other: another site cannot make our page say what it likes.
        forged = client.get("/login/oidc/callback", params={"error": "call 0800-SCAM", "state": "x"},
                            follow_redirects=False)
        assert forged.status_code == 400 and "0800-SCAM" not in forged.text


def test_only_a_local_path_is_followed_after_signing_in(app: Any, issuer: FakeIssuer) -> None:
    add_account(app, "anne", "anne@regenboog.example")
    with TestClient(app, base_url="https://testserver") as client:
        answer = sign_in(client, issuer, {"sub": "fed-1", "email": "anne@regenboog.example",
                                          "email_verified": True}, next_path="//evil.example/x")
        assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_without_an_issuer_the_routes_say_so(tmp_path: Path) -> None:
    application = create_app(CollectorSettings(db=f"sqlite:///{tmp_path / 'c.db'}"))
    with TestClient(application, base_url="https://testserver") as client:
        answer = client.get("/login/oidc", follow_redirects=False)
        assert answer.status_code == 404 and "not configured" in answer.text


def test_an_issuer_that_is_not_https_or_lacks_a_client_is_refused_at_start(tmp_path: Path) -> None:
    secret = tmp_path / "s"
    secret.write_text("x")
    with pytest.raises(ValidationError, match="not an https:// issuer URL"):
        CollectorSettings(oidc_issuer="http://idp.example", oidc_client_id="c",
                          oidc_client_secret_file=secret)
    with pytest.raises(ValidationError, match="SCHOOLNET_OIDC_CLIENT_ID"):
        CollectorSettings(oidc_issuer="https://idp.example")


def test_an_issuer_that_does_not_answer_is_a_clear_refusal(tmp_path: Path) -> None:
    secret = tmp_path / "s"
    secret.write_text("x")
    # A port nothing listens on: connection refused at once.
    application = create_app(CollectorSettings(
        db=f"sqlite:///{tmp_path / 'c.db'}", public_url="https://testserver",
        oidc_issuer="http://127.0.0.1:9", oidc_client_id="c", oidc_client_secret_file=secret))
    with TestClient(application, base_url="https://testserver") as client:
        answer = client.get("/login/oidc", follow_redirects=False)
        assert answer.status_code == 502 and "did not answer" in answer.text

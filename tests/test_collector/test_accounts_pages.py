"""The account pages through the real app and store: sign-in with its nonce, cookies,
sign-out, CSRF, the home page, the password page and a board's sharing form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_collector.conftest import Site, make_site

from collector.accounts.throttle import PER_CLIENT_LIMIT, USERNAME_LIMIT
from collector.accounts.users import add_user, disable_user
from collector.cli import main
from collector.db.schema import boards, login_failures, user_sessions
from collector.registry import add_board, add_school, create_admin_token
from collector.routes.accounts_pages import safe_next

PASSWORD = "correct horse battery"
LIFETIME = 12 * 3600
FAILED = "Signing in did not work"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with make_site(tmp_path, session_lifetime=LIFETIME) as result:
        engine = result.engine
        add_board(engine, "Other Board")
        add_school(engine, "other-board", "Far School")
        add_user(engine, "anne", "board-admin", "test-board", "Anne de Vries", None, PASSWORD)
        add_user(engine, "ben", "board-viewer", "test-board", "Ben", None, PASSWORD)
        add_user(engine, "olga", "board-admin", "other-board", "Olga", None, PASSWORD)
        add_user(engine, "ana", "analyst", None, "Ana Lyst", None, PASSWORD)
        add_user(engine, "root", "admin", None, "Root", None, PASSWORD)
        yield result


def browser(site: Site, base_url: str = "https://testserver", address: str = "testclient") -> TestClient:
    """A browser at ``address``: the peer address the app sees (request.client.host)."""
    return TestClient(site.client.app, base_url=base_url, follow_redirects=False, client=(address, 50000))


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name!r} in the page"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, next_path: str = "/") -> Any:
    form = client.get("/login", params={"next": next_path})
    assert form.status_code == 200
    return client.post("/login", data={"username": username, "password": password,
                                       "nonce": hidden(form.text, "nonce"),
                                       "next": hidden(form.text, "next")})


def signed_in(site: Site, username: str) -> TestClient:
    client = browser(site)
    answer = sign_in(client, username)
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(client: TestClient, path: str = "/") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return hidden(page.text, "csrf")


def cookie_header(answer: Any, name: str) -> str:
    for header in answer.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return str(header)
    raise AssertionError(f"no Set-Cookie for {name}: {answer.headers.get_list('set-cookie')}")


def shared_at(site: Site, slug: str) -> Any:
    with site.engine.connect() as conn:
        return conn.scalar(select(boards.c.shared_at).where(boards.c.slug == slug))


def test_login_form_sets_a_nonce_cookie_equal_to_its_hidden_field(site: Site) -> None:
    client = browser(site)
    form = client.get("/login", params={"next": "/report"})
    assert form.status_code == 200 and 'name="password"' in form.text
    cookie = cookie_header(form, "__Host-schoolnet_login")
    assert hidden(form.text, "nonce") == client.cookies["__Host-schoolnet_login"]
    assert all(part in cookie for part in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"))
    assert hidden(form.text, "next") == "/report"
    policy = form.headers["content-security-policy"]
    assert "form-action 'self'" in policy and "default-src 'none'" in policy
    assert form.headers["cache-control"] == "no-store"


def test_sign_in_sets_a_host_only_secure_httponly_lax_session_cookie(site: Site) -> None:
    client = browser(site)
    answer = sign_in(client, "anne", next_path="/boards/test-board/sharing?lang=nl")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/boards/test-board/sharing?lang=nl"
    cookie = cookie_header(answer, "__Host-schoolnet_session")
    for part in ("HttpOnly", "Secure", "SameSite=lax", "Path=/", f"Max-Age={LIFETIME}"):
        assert part in cookie, cookie
    assert "Domain" not in cookie
    home = client.get("/")
    assert home.status_code == 200
    assert "Anne de Vries" in home.text and "board admin" in home.text and "Test Board" in home.text


def test_plain_http_public_url_gives_a_cookie_without_secure_or_prefix(tmp_path: Path) -> None:
    with make_site(tmp_path, public_url="http://collector.school.example") as site:
        add_user(site.engine, "anne", "board-admin", "test-board", None, None, PASSWORD)
        client = browser(site, "http://testserver")
        answer = sign_in(client, "anne")
        assert answer.status_code == 303
        cookie = cookie_header(answer, "schoolnet_session")
        assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert client.get("/").status_code == 200


@pytest.mark.parametrize("username, password", [
    ("nobody", PASSWORD), ("anne", "not the password"), ("", ""), ("Not a name!", PASSWORD)])
def test_failed_sign_in_is_401_with_one_message_and_no_session(site: Site, username: str,
                                                                 password: str) -> None:
    client = browser(site)
    answer = sign_in(client, username, password)
    assert answer.status_code == 401 and FAILED in answer.text and 'name="nonce"' in answer.text
    assert not any(h.startswith("__Host-schoolnet_session") for h in answer.headers.get_list("set-cookie"))
    assert client.get("/").status_code == 303


def alert(answer: Any) -> str:
    found = re.search(r'role="alert">([^<]*)<', answer.text)
    assert found, answer.text
    return found.group(1)


def test_throttled_disabled_and_wrong_get_the_same_answer(site: Site) -> None:
    client = browser(site)
    for _ in range(PER_CLIENT_LIMIT):
        assert sign_in(client, "ben", "not the password").status_code == 401
    locked = sign_in(client, "ben")  # the right password, but this client is throttled now
    disable_user(site.engine, "anne")
    disabled = sign_in(client, "anne")
    wrong = sign_in(client, "olga", "not the password")
    unknown = sign_in(client, "nobody", "not the password")
    messages = [alert(a) for a in (locked, disabled, wrong, unknown)]
    assert [a.status_code for a in (locked, disabled, wrong, unknown)] == [401] * 4
    assert len(set(messages)) == 1 and FAILED in messages[0]


def test_a_guesser_is_throttled_by_address_and_the_owner_elsewhere_signs_in(site: Site) -> None:
    guesser = browser(site, address="198.51.100.66")
    for _ in range(PER_CLIENT_LIMIT):
        assert sign_in(guesser, "root", "not the password").status_code == 401
    assert sign_in(guesser, "root").status_code == 401  # right password, wrong address
    assert sign_in(guesser, "ben").status_code == 303  # another username from there: fine
    owner = browser(site, address="192.0.2.10")
    assert sign_in(owner, "root").status_code == 303
    assert owner.get("/").status_code == 200
    # Both refusals were counted against the address, and nothing was written to the account.
    with site.engine.connect() as conn:
        assert conn.scalar(select(login_failures.c.failures)) == PER_CLIENT_LIMIT + 1


def test_a_spread_guess_refuses_the_name_until_user_enable_lifts_it(site: Site) -> None:
    for n in range(USERNAME_LIMIT // PER_CLIENT_LIMIT):
        guesser = browser(site, address=f"203.0.113.{n}")
        for _ in range(PER_CLIENT_LIMIT):
            assert sign_in(guesser, "anne", "not the password").status_code == 401
    owner = browser(site, address="192.0.2.10")
    assert sign_in(owner, "anne").status_code == 401
    assert sign_in(owner, "ben").status_code == 303
    code = main(["user", "enable", "anne", "--db", site.db_url])
    assert code == 0
    with site.engine.connect() as conn:
        assert conn.scalar(select(login_failures.c.key_hash)) is None  # every row of the name went
    assert sign_in(owner, "anne").status_code == 303


@pytest.mark.parametrize("nonce_in_cookie", [True, False])
def test_sign_in_without_the_matching_nonce_is_403(site: Site, nonce_in_cookie: bool) -> None:
    client = browser(site)
    form = client.get("/login")
    if not nonce_in_cookie:
        client.cookies.clear()
    nonce = "forged" if nonce_in_cookie else hidden(form.text, "nonce")
    answer = client.post("/login", data={"username": "anne", "password": PASSWORD, "nonce": nonce})
    assert answer.status_code == 403
    assert not any("schoolnet_session" in h for h in answer.headers.get_list("set-cookie"))
    with site.engine.connect() as conn:
        assert conn.scalar(select(user_sessions.c.id)) is None


@pytest.mark.parametrize("target", ["//evil.example/x", "/\\evil.example", "https://evil.example/",
                                    "javascript:alert(1)", "evil.example", "/ok\r\nSet-Cookie: x=1",
                                    "/\t/evil.example", ""])
def test_sign_in_never_redirects_off_the_collector(site: Site, target: str) -> None:
    client = browser(site)
    form = client.get("/login")
    answer = client.post("/login", data={"username": "anne", "password": PASSWORD,
                                         "nonce": hidden(form.text, "nonce"), "next": target})
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert safe_next(target) == "/"


def test_local_next_paths_are_kept() -> None:
    assert safe_next("/report?period=2026-01&lang=nl") == "/report?period=2026-01&lang=nl"
    assert safe_next("/schools/b/s/benchmark") == "/schools/b/s/benchmark"


def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(site: Site) -> None:
    client = browser(site)
    answer = client.get("/boards/test-board/sharing", params={"lang": "nl"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/boards/test-board/sharing%3Flang%3Dnl"


def test_signing_in_ends_the_session_the_browser_had(site: Site) -> None:
    client = signed_in(site, "anne")
    first = client.cookies["__Host-schoolnet_session"]
    assert sign_in(client, "ben").status_code == 303
    assert client.cookies["__Host-schoolnet_session"] != first
    other = browser(site)
    other.cookies.set("__Host-schoolnet_session", first)
    assert other.get("/").status_code == 303  # the old session no longer signs anyone in
    assert "Ben" in client.get("/").text


def test_sign_out_needs_the_csrf_token_and_then_ends_the_session(site: Site) -> None:
    client = signed_in(site, "anne")
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf": "0" * 64}).status_code == 403
    assert client.get("/").status_code == 200  # still signed in
    secret = client.cookies["__Host-schoolnet_session"]
    answer = client.post("/logout", data={"csrf": csrf_of(client)})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert 'Max-Age=0' in cookie_header(answer, "__Host-schoolnet_session")
    replay = browser(site)
    replay.cookies.set("__Host-schoolnet_session", secret)
    assert replay.get("/").status_code == 303


def test_home_links_what_each_role_may_open(site: Site) -> None:
    anne = signed_in(site, "anne").get("/").text
    assert "/schools/test-board/test-school/benchmark" in anne and "/incidents/test-board/test-school" in anne
    assert "/boards/test-board/sharing" in anne and "far-school" not in anne
    assert "/account/password" in anne and "/report" in anne and 'action="/logout"' in anne
    ben = signed_in(site, "ben").get("/").text
    assert "/schools/test-board/test-school/benchmark" in ben and "/sharing" not in ben
    analyst = signed_in(site, "ana").get("/", params={"lang": "nl"}).text
    assert "analist coöperatie" in analyst and "/schools/" not in analyst and "/report?lang=nl" in analyst
    root = signed_in(site, "root").get("/").text
    assert "/schools/other-board/far-school/benchmark" in root and "/boards/other-board/sharing" in root


def test_an_analyst_sees_a_board_one_by_one_only_once_it_shares(site: Site) -> None:
    analyst = signed_in(site, "ana")
    # Unshared, the board is as unknown to the analyst as one that does not exist.
    hidden_board = analyst.get("/boards/other-board/sharing")
    unknown = analyst.get("/boards/no-such-board/sharing")
    assert hidden_board.status_code == unknown.status_code == 404
    assert hidden_board.text == unknown.text and "There is no board with this id." in unknown.text
    olga = signed_in(site, "olga")
    assert olga.post("/boards/other-board/sharing",
                     data={"shared": "yes", "csrf": csrf_of(olga, "/boards/other-board/sharing")}
                     ).status_code == 303
    assert "/schools/other-board/far-school/benchmark" in analyst.get("/").text
    page = analyst.get("/boards/other-board/sharing")
    assert page.status_code == 200 and "shares its schools" in page.text and 'name="shared"' not in page.text


def test_sharing_form_explains_and_changes_consent_with_the_csrf_token(site: Site) -> None:
    client = signed_in(site, "anne")
    page = client.get("/boards/test-board/sharing")
    assert page.status_code == 200 and "at least 5 schools" in page.text and "one by one" in page.text
    token = hidden(page.text, "csrf")
    assert client.post("/boards/test-board/sharing", data={"shared": "yes"}).status_code == 403
    assert client.post("/boards/test-board/sharing", data={"shared": "yes", "csrf": token[::-1]}
                       ).status_code == 403
    assert shared_at(site, "test-board") is None
    answer = client.post("/boards/test-board/sharing", data={"shared": "yes", "csrf": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/boards/test-board/sharing"
    assert shared_at(site, "test-board") is not None
    assert "shares its schools" in client.get("/boards/test-board/sharing").text
    assert client.post("/boards/test-board/sharing", data={"shared": "maybe", "csrf": token}
                       ).status_code == 400
    assert client.post("/boards/test-board/sharing", data={"shared": "no", "csrf": token}).status_code == 303
    assert shared_at(site, "test-board") is None
    dutch = client.get("/boards/test-board/sharing", params={"lang": "nl"}).text
    assert "minstens 5 scholen" in dutch and 'lang="nl"' in dutch


def test_only_the_boards_admins_may_change_its_consent(site: Site) -> None:
    ben = signed_in(site, "ben")
    page = ben.get("/boards/test-board/sharing")
    assert page.status_code == 200 and 'name="shared"' not in page.text
    answer = ben.post("/boards/test-board/sharing", data={"shared": "yes", "csrf": hidden(page.text, "csrf")})
    assert answer.status_code == 403
    # Another board's admin: the board is not theirs to see, so it answers as a board that
    # does not exist (status and words), to the page and to the form alike.
    olga = signed_in(site, "olga")
    token = csrf_of(olga)
    for board in ("test-board", "no-such-board"):
        assert olga.get(f"/boards/{board}/sharing").status_code == 404
        assert olga.post(f"/boards/{board}/sharing", data={"shared": "yes", "csrf": token}
                         ).status_code == 404
    assert olga.get("/boards/test-board/sharing").text == olga.get("/boards/no-such-board/sharing").text
    assert olga.post("/boards/test-board/sharing", data={"shared": "yes", "csrf": token}).text == \
        olga.post("/boards/no-such-board/sharing", data={"shared": "yes", "csrf": token}).text
    assert shared_at(site, "test-board") is None
    root = signed_in(site, "root")
    assert root.post("/boards/test-board/sharing", data={"shared": "yes", "csrf": csrf_of(root)}
                     ).status_code == 303
    assert shared_at(site, "test-board") is not None


def test_changing_the_password_signs_out_every_other_browser(site: Site) -> None:
    here, elsewhere = signed_in(site, "anne"), signed_in(site, "anne")
    token = csrf_of(here, "/account/password")
    new = "a brand new passphrase"
    wrong = here.post("/account/password", data={"current": "not it at all", "new": new, "again": new,
                                                 "csrf": token})
    assert wrong.status_code == 400 and "current password is not right" in wrong.text
    differ = here.post("/account/password", data={"current": PASSWORD, "new": new, "again": new + "x",
                                                  "csrf": token})
    assert differ.status_code == 400 and "differ" in differ.text
    weak = here.post("/account/password", data={"current": PASSWORD, "new": "short", "again": "short",
                                                "csrf": token})
    assert weak.status_code == 400 and "at least 12 characters" in weak.text
    assert here.post("/account/password", data={"current": PASSWORD, "new": new, "again": new}
                     ).status_code == 403
    done = here.post("/account/password", data={"current": PASSWORD, "new": new, "again": new,
                                                "csrf": token})
    assert done.status_code == 200 and "every other session has ended" in done.text
    assert "Secure" in cookie_header(done, "__Host-schoolnet_session")
    assert here.get("/").status_code == 200  # this browser goes on, in a new session
    assert hidden(done.text, "csrf") == csrf_of(here)
    assert elsewhere.get("/").status_code == 303
    assert sign_in(browser(site), "anne").status_code == 401
    assert sign_in(browser(site), "anne", new).status_code == 303


def test_an_admin_token_has_no_password_page(site: Site) -> None:
    token = create_admin_token(site.engine)
    client = browser(site)
    answer = client.get("/account/password", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403
    assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_the_login_page_offers_the_configured_identity_provider(tmp_path: Path) -> None:
    secret = tmp_path / "client-secret"
    secret.write_text("not used by this page\n")
    with make_site(tmp_path, oidc_issuer="http://127.0.0.1:9/issuer", oidc_client_id="schoolnet",
                   oidc_client_secret_file=secret, oidc_label="SchoolFed") as site:
        page = browser(site).get("/login", params={"next": "/report?lang=nl", "lang": "nl"})
        assert 'href="/login/oidc?next=/report%3Flang%3Dnl"' in page.text
        assert "Inloggen met SchoolFed" in page.text
    (tmp_path / "plain").mkdir()
    with make_site(tmp_path / "plain") as site:
        assert "/login/oidc" not in browser(site).get("/login").text

"""Webhook and e-mail on state changes, received by real local servers on 127.0.0.1: the
signed JSON, a retry after a 500, the mail's subject, recipients, both languages and the
link; a receiver that refuses or is not there is retried, then failed, the row kept."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from test_collector.conftest import Site, make_site
from test_collector.incident_fixtures import bandwidth_finding, found, set_up_schools
from test_collector.incident_histories import local

from collector.incidents.notify import MAX_ATTEMPTS, Channels, deliver_due, retry_delay
from collector.settings import CollectorSettings

pytestmark = pytest.mark.both_stores


class Hook(http.server.BaseHTTPRequestHandler):
    answers: list[int] = []
    received: list[tuple[dict[str, str], bytes]] = []
    delay = 0.0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(type(self).delay)
        type(self).received.append((dict(self.headers), body))
        status = type(self).answers.pop(0) if type(self).answers else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[Hook]]]:
    handler = type("TestHook", (Hook,), {"answers": [], "received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/schoolnet?token=abc", handler
    server.shutdown()
    server.server_close()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def settings_for(tmp_path: Path, **changes: Any) -> CollectorSettings:
    return CollectorSettings(db=f"sqlite:///{tmp_path / 'collector.db'}", public_url="https://net.example",
                             **changes)


def open_incident(site: Site, settings: CollectorSettings) -> int:
    [change] = found(site, bandwidth_finding(site), local(10, 30), Channels.from_settings(settings))
    return change.incident_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def notifications(site: Site) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in site.sql(
        "SELECT channel, status, attempts, next_attempt_at, last_error, target FROM incident_notifications "
        "ORDER BY id")]


def test_webhook_signed_and_retried_after_a_500(
        tmp_path: Path, db_url: str, hook: tuple[str, type[Hook]]) -> None:
    url, handler = hook
    secret = tmp_path / "secret"
    secret.write_text("s3cret-value\n")
    handler.answers = [500]
    with make_site(tmp_path, db_url) as site:
        set_up_schools(site, tmp_path)
        settings = settings_for(tmp_path, incident_webhook_url=url, incident_webhook_secret_file=secret)
        incident_id = open_incident(site, settings)
        first = deliver_due(site.engine, settings, local(10, 31))
        assert (first.sent, first.retrying) == (0, 1)
        [(channel, status, attempts, next_at, error, _)] = notifications(site)
        assert (channel, status, attempts) == ("webhook", "pending", 1)
        assert next_at == local(10, 31) + 30 and "HTTP 500" in error and "abc" not in error
        assert deliver_due(site.engine, settings, local(10, 31) + 10).sent == 0  # not due yet
        assert deliver_due(site.engine, settings, local(10, 32)).sent == 1
        assert notifications(site)[0][1:3] == ("sent", 2)
    headers, body = handler.received[-1]
    assert headers["X-Schoolnet-Signature"] == "sha256=" + hmac.new(
        b"s3cret-value", body, hashlib.sha256).hexdigest()
    document = json.loads(body)
    assert document["event"] == "opened" and document["actor"] == "detector"
    incident = document["incident"]
    assert incident["id"] == incident_id and incident["url"] == f"https://net.example/incidents/{incident_id}"
    assert (incident["kind"], incident["state"], incident["board"], incident["school"]) == (
        "bandwidth", "open", "test-board", "test-school")
    assert incident["provider"] == "Telcom Zakelijk" and incident["impact"] == "teaching"
    assert incident["urgency"] in ("high", "normal", "low")
    assert incident["started_at"].endswith("+00:00")
    assert "download median 41% of the advertised speed" in incident["summary"]


def test_mail_in_both_languages_to_the_contact_and_the_list(
        tmp_path: Path, db_url: str, smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    with make_site(tmp_path, db_url) as site:
        set_up_schools(site, tmp_path)
        site.sql("UPDATE schools SET contact_email = 'ict@regenboog.example', contact_name = 'Iris' "
                 "WHERE slug = 'test-school'")
        settings = settings_for(tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                                mail_from="schoolnet@board.example", incident_mail_to="noc@board.example")
        incident_id = open_incident(site, settings)
        assert deliver_due(site.engine, settings, local(10, 31)).sent == 1
    [(recipients, mail)] = inbox.messages
    assert sorted(recipients) == ["ict@regenboog.example", "noc@board.example"]
    assert mail["Subject"] == "[schoolnet] Storing/Outage: Test School: bandwidth (open)"
    assert mail["From"] == "schoolnet@board.example"
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_payload(decode=True)
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_payload(decode=True)
    for part in (text.decode(), html.decode()):
        assert "bandbreedte onder contract" in part and "bandwidth below contract" in part
        assert f"https://net.example/incidents/{incident_id}" in part
        assert "Urgentie" in part and "Urgency" in part


def test_an_unreachable_receiver_is_retried_then_failed_and_kept(tmp_path: Path, db_url: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    with make_site(tmp_path, db_url) as site:
        set_up_schools(site, tmp_path)
        settings = settings_for(tmp_path, incident_webhook_url=url)
        open_incident(site, settings)
        now = local(10, 31)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            report = deliver_due(site.engine, settings, now)
            assert (report.retrying, report.failed) == ((1, 0) if attempt < MAX_ATTEMPTS else (0, 1))
            now += retry_delay(attempt)
        [(_, status, attempts, _, error, target)] = notifications(site)
        assert (status, attempts, target) == ("failed", MAX_ATTEMPTS, url)
        assert "cannot reach http://127.0.0.1:" in error and f"gave up after {MAX_ATTEMPTS}" in error
        assert deliver_due(site.engine, settings, now + 7200).failed == 0


def test_a_4xx_fails_at_once_but_429_is_retried(
        tmp_path: Path, db_url: str, hook: tuple[str, type[Hook]]) -> None:
    url, handler = hook
    handler.answers = [429, 410]
    with make_site(tmp_path, db_url) as site:
        set_up_schools(site, tmp_path)
        settings = settings_for(tmp_path, incident_webhook_url=url)
        open_incident(site, settings)
        assert deliver_due(site.engine, settings, local(10, 31)).retrying == 1
        assert deliver_due(site.engine, settings, local(10, 32)).failed == 1
        assert notifications(site)[0][1:3] == ("failed", 2)
        assert "HTTP 410" in notifications(site)[0][4] and "abc" not in notifications(site)[0][4]


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 7, 8, 9)] == [30, 60, 120, 1920, 3600, 3600]


def test_notes_notify_no_one(tmp_path: Path, db_url: str) -> None:
    from collector.incidents.lifecycle import perform

    with make_site(tmp_path, db_url) as site:
        set_up_schools(site, tmp_path)
        settings = settings_for(tmp_path, incident_webhook_url="http://127.0.0.1:9/x")
        incident_id = open_incident(site, settings)
        channels = Channels.from_settings(settings)
        perform(site.engine, incident_id, "note", "Anne", note="hm", now=local(10, 40), channels=channels)
        perform(site.engine, incident_id, "acknowledge", "Anne", now=local(10, 41), channels=channels)
        assert site.sql("SELECT e.action FROM incident_notifications n JOIN incident_events e "
                        "ON e.id = n.event_id ORDER BY n.id") == [("opened",), ("acknowledged",)]


# --- TLS, login, a receiver that hangs, a restart, two workers (review r3) -----------------


PASSWORD = "right-horse-battery"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"schoolnet"
          and auth_data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A self-signed certificate for 127.0.0.1 made by the real openssl, which the
    collector's default TLS context trusts through SSL_CERT_FILE (as an admin would point
    it at a board's own CA)."""
    from support.ndt7_server import self_signed_tls
    from support.tools import require_tool

    certificate, context = self_signed_tls(tmp_path, require_tool("openssl"))
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    return context


def _mail_settings(tmp_path: Path, port: int, password: str, **changes: Any) -> CollectorSettings:
    secret = tmp_path / "smtp-password"
    secret.write_text(password + "\n")
    return settings_for(tmp_path, smtp_host="127.0.0.1", smtp_port=port, mail_from="schoolnet@board.example",
                        incident_mail_to="noc@board.example", smtp_username="schoolnet",
                        smtp_password_file=secret, **changes)


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_mail_over_tls_with_a_login(tmp_path: Path, db_url: str, tls: Any, mode: str) -> None:
    inbox, port = Inbox(), free_port()
    # aiosmtpd offers AUTH over implicit TLS only with auth_require_tls off (it counts
    # only STARTTLS as TLS); the connection is TLS either way.
    tls_kwargs = ({"tls_context": tls, "require_starttls": True, "auth_require_tls": True}
                  if mode == "starttls" else {"ssl_context": tls, "auth_require_tls": False})
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=_authenticate,
                            **tls_kwargs)
    controller.start()
    try:
        with make_site(tmp_path, db_url) as site:
            set_up_schools(site, tmp_path)
            settings = _mail_settings(tmp_path, port, PASSWORD, smtp_starttls=mode == "starttls",
                                      smtp_ssl=mode == "smtps")
            open_incident(site, settings)
            report = deliver_due(site.engine, settings, local(10, 31))
            assert report.sent == 1, notifications(site)
    finally:
        controller.stop()
    [(recipients, mail)] = inbox.messages
    assert recipients == ["noc@board.example"] and "bandwidth" in mail["Subject"]


def test_a_refused_login_is_retried_and_never_shows_the_password(
        tmp_path: Path, db_url: str, tls: Any) -> None:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=_authenticate,
                            auth_require_tls=True, tls_context=tls, require_starttls=True)
    controller.start()
    try:
        with make_site(tmp_path, db_url) as site:
            set_up_schools(site, tmp_path)
            settings = _mail_settings(tmp_path, port, "wrong-password-123")
            open_incident(site, settings)
            report = deliver_due(site.engine, settings, local(10, 31))
            # The admin fixes the password file; the mail is not lost meanwhile.
            assert (report.sent, report.retrying, report.failed) == (0, 1, 0)
            [(_, status, _, _, error, _)] = notifications(site)
            assert status == "pending" and "refused the login of 'schoolnet'" in error
            assert "wrong-password-123" not in error and "535" in error
            fixed = _mail_settings(tmp_path, port, PASSWORD)
            assert deliver_due(site.engine, fixed, local(10, 32)).sent == 1
    finally:
        controller.stop()
    assert len(inbox.messages) == 1


def test_a_line_end_in_the_school_name_cannot_break_the_subject(tmp_path: Path, db_url: str,
                                                                 smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    with make_site(tmp_path, db_url) as site:
        set_up_schools(site, tmp_path)
        # The contracts CSV allows line ends inside a quoted cell.
        site.sql("UPDATE schools SET name = 'Test\r\nBcc: evil@attacker.example' WHERE slug = 'test-school'")
        settings = settings_for(tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                                mail_from="schoolnet@board.example", incident_mail_to="noc@board.example")
        open_incident(site, settings)
        assert deliver_due(site.engine, settings, local(10, 31)).sent == 1, notifications(site)
    [(recipients, mail)] = inbox.messages
    assert recipients == ["noc@board.example"] and mail["Bcc"] is None
    assert " ".join(mail["Subject"].split()) == (
        "[schoolnet] Storing/Outage: Test Bcc: evil@attacker.example: bandwidth (open)")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections (the kernel does) and never says a word: a hung receiver."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield int(server.getsockname()[1])


@pytest.mark.parametrize("channel", ["webhook", "email"])
def test_a_hung_receiver_costs_one_timeout_per_pass(
        tmp_path: Path, db_url: str, silent_server: int, channel: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from collector.incidents import notify
    from collector.incidents.lifecycle import perform

    monkeypatch.setattr(notify, "TIMEOUT_SECONDS", 1.0)
    with make_site(tmp_path, db_url) as site:
        set_up_schools(site, tmp_path)
        settings = (settings_for(tmp_path, incident_webhook_url=f"http://127.0.0.1:{silent_server}/hook")
                    if channel == "webhook" else
                    settings_for(tmp_path, smtp_host="127.0.0.1", smtp_port=silent_server,
                                 smtp_starttls=False, mail_from="schoolnet@board.example",
                                 incident_mail_to="noc@board.example"))
        channels = Channels.from_settings(settings)
        incident_id = open_incident(site, settings)
        perform(site.engine, incident_id, "acknowledge", "Anne", now=local(10, 31), channels=channels)
        perform(site.engine, incident_id, "escalate", "Anne", now=local(10, 32), channels=channels)
        started = time.monotonic()
        report = deliver_due(site.engine, settings, local(10, 33))
        took = time.monotonic() - started
        assert (report.sent, report.retrying, report.deferred) == (0, 1, 2)
        assert took < 2.5, f"{took:.1f} s: every row waited for the hung receiver"
        [first, *rest] = notifications(site)
        assert first[1:3] == ("pending", 1) and "no answer within 1 s" in first[4]
        assert [row[1:3] for row in rest] == [("pending", 0), ("pending", 0)]
        # The next pass tries the next row (the first waits for its backoff).
        assert deliver_due(site.engine, settings, local(10, 33) + 5).retrying == 1


def test_the_outbox_survives_a_restart(tmp_path: Path, db_url: str, hook: tuple[str, type[Hook]],
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from collector.cli import main

    url, handler = hook
    with make_site(tmp_path, db_url) as site:
        set_up_schools(site, tmp_path)
        incident_id = open_incident(site, settings_for(tmp_path, incident_webhook_url=url))
        db_url = site.db_url
    # The collector that queued it is gone; a new process on the same store sends it.
    monkeypatch.setenv("SCHOOLNET_INCIDENT_WEBHOOK_URL", url)
    monkeypatch.setenv("SCHOOLNET_PUBLIC_URL", "https://net.example")
    assert main(["incident", "notify", "--db", db_url]) == 0
    assert capsys.readouterr().out.strip() == "notifications: 1 sent, 0 to retry, 0 failed"
    [(_, body)] = handler.received
    assert json.loads(body)["incident"]["id"] == incident_id
    assert main(["incident", "notify", "--db", db_url]) == 0  # sent once, not again
    assert len(handler.received) == 1


def test_two_workers_send_each_notification_once(
        tmp_path: Path, db_url: str, hook: tuple[str, type[Hook]]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from collector.db.engine import open_engine
    from collector.incidents.lifecycle import perform

    url, handler = hook
    handler.delay = 0.2  # slow enough that both workers see the rows due
    with make_site(tmp_path, db_url) as site:
        set_up_schools(site, tmp_path)
        settings = settings_for(tmp_path, incident_webhook_url=url)
        channels = Channels.from_settings(settings)
        incident_id = open_incident(site, settings)
        perform(site.engine, incident_id, "acknowledge", "Anne", now=local(10, 31), channels=channels)
        perform(site.engine, incident_id, "escalate", "Anne", now=local(10, 32), channels=channels)
        engines = [open_engine(site.db_url), open_engine(site.db_url)]
        with ThreadPoolExecutor(2) as pool:
            reports = list(pool.map(lambda engine: deliver_due(engine, settings, local(10, 33)), engines))
        for engine in engines:
            engine.dispose()
        assert sum(report.sent for report in reports) == 3
        assert [row[1] for row in notifications(site)] == ["sent"] * 3
    events = sorted(json.loads(body)["event"] for _, body in handler.received)
    assert events == ["acknowledged", "escalated", "opened"]


def test_a_server_without_smtputf8_is_named_as_such(tmp_path: Path, db_url: str) -> None:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
    controller.start()
    try:
        with make_site(tmp_path, db_url) as site:
            set_up_schools(site, tmp_path)
            settings = settings_for(tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                                    mail_from="schoolnet@board.example",
                                    incident_mail_to="jürgen@board.example")
            open_incident(site, settings)
            assert deliver_due(site.engine, settings, local(10, 31)).retrying == 1
            error = notifications(site)[0][4]
            assert "SMTPUTF8" in error and "STARTTLS" not in error
    finally:
        controller.stop()
    assert inbox.messages == []


def test_a_secret_file_emptied_since_the_start_stops_the_call(tmp_path: Path, db_url: str,
                                                             hook: tuple[str, type[Hook]]) -> None:
    url, handler = hook
    secret = tmp_path / "secret"
    secret.write_text("s3cret-value\n")
    with make_site(tmp_path, db_url) as site:
        set_up_schools(site, tmp_path)
        settings = settings_for(tmp_path, incident_webhook_url=url, incident_webhook_secret_file=secret)
        open_incident(site, settings)
        secret.write_text("")
        assert deliver_due(site.engine, settings, local(10, 31)).retrying == 1
        assert "is empty" in notifications(site)[0][4]
        secret.unlink()
        assert deliver_due(site.engine, settings, local(10, 32)).retrying == 1
        assert "cannot read SCHOOLNET_INCIDENT_WEBHOOK_SECRET_FILE" in notifications(site)[0][4]
    assert handler.received == []  # never unsigned

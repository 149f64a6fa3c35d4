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


class Hook(http.server.BaseHTTPRequestHandler):
    answers: list[int] = []
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
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


def test_webhook_signed_and_retried_after_a_500(tmp_path: Path, hook: tuple[str, type[Hook]]) -> None:
    url, handler = hook
    secret = tmp_path / "secret"
    secret.write_text("s3cret-value\n")
    handler.answers = [500]
    with make_site(tmp_path) as site:
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


def test_mail_in_both_languages_to_the_contact_and_the_list(tmp_path: Path, smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    with make_site(tmp_path) as site:
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


def test_an_unreachable_receiver_is_retried_then_failed_and_kept(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    with make_site(tmp_path) as site:
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


def test_a_4xx_fails_at_once_but_429_is_retried(tmp_path: Path, hook: tuple[str, type[Hook]]) -> None:
    url, handler = hook
    handler.answers = [429, 410]
    with make_site(tmp_path) as site:
        set_up_schools(site, tmp_path)
        settings = settings_for(tmp_path, incident_webhook_url=url)
        open_incident(site, settings)
        assert deliver_due(site.engine, settings, local(10, 31)).retrying == 1
        assert deliver_due(site.engine, settings, local(10, 32)).failed == 1
        assert notifications(site)[0][1:3] == ("failed", 2)
        assert "HTTP 410" in notifications(site)[0][4] and "abc" not in notifications(site)[0][4]


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 7, 8, 9)] == [30, 60, 120, 1920, 3600, 3600]


def test_notes_notify_no_one(tmp_path: Path) -> None:
    from collector.incidents.store import perform

    with make_site(tmp_path) as site:
        set_up_schools(site, tmp_path)
        settings = settings_for(tmp_path, incident_webhook_url="http://127.0.0.1:9/x")
        incident_id = open_incident(site, settings)
        channels = Channels.from_settings(settings)
        perform(site.engine, incident_id, "note", "Anne", note="hm", now=local(10, 40), channels=channels)
        perform(site.engine, incident_id, "acknowledge", "Anne", now=local(10, 41), channels=channels)
        assert site.sql("SELECT e.action FROM incident_notifications n JOIN incident_events e "
                        "ON e.id = n.event_id ORDER BY n.id") == [("opened",), ("acknowledged",)]

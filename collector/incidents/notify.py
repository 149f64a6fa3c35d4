"""Telling people: a webhook and e-mail when an incident opens, is acknowledged, escalated,
resolved or dismissed (notes and refreshes notify no one).

A durable outbox: ``enqueue`` writes one ``incident_notifications`` row per configured
channel in the transaction of the event; ``deliver_due`` sends the rows that are due, marks
them sent, or tries again later with exponential backoff (30 s times 2^n, at most an hour) up to
``MAX_ATTEMPTS`` times, then marks the row failed with the last error. A webhook's 2xx is
success; a 4xx other than 408 and 429 will not get better and fails at once, as does an
address the mail server refuses for good (5xx).

The webhook's JSON body (``webhook_body``)::

    {"event": "opened", "at": "2026-03-03T08:15:00+00:00", "actor": "detector", "note": "…",
     "incident": {"id": 7, "url": "https://collector.example/incidents/7", "kind": "bandwidth",
                  "state": "open", "board": "primo", "school": "regenboog",
                  "school_name": "De Regenboog", "provider": "Example Fibre",
                  "impact": "teaching", "urgency": "normal",
                  "started_at": "2026-03-03T08:12:00+00:00", "ticket": null, "summary": "…"}}

signed, when ``SCHOOLNET_INCIDENT_WEBHOOK_SECRET_FILE`` is set, in the header
``X-Schoolnet-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes with the secret>``.

No secret reaches a log line or ``last_error``: URLs are shown as scheme://host:port only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, select, update

from collector.db.engine import writer
from collector.db.schema import boards, incident_events, incident_notifications, incidents, schools
from collector.incidents.shares import incident_url

log = logging.getLogger("schoolnet.collector.incidents")

NOTIFIED_ACTIONS = ("opened", "acknowledged", "escalated", "resolved", "dismissed")
MAX_ATTEMPTS = 10
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 3600.0
TIMEOUT_SECONDS = 10.0
# While one process sends a row, others leave it alone for this long (replicas).
CLAIM_SECONDS = 120.0


@dataclass(frozen=True)
class Channels:
    """What is configured: a webhook URL, and whether e-mail goes out (and to whom always)."""

    webhook_url: str | None = None
    mail: bool = False
    mail_to: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> Channels:
        return cls(settings.incident_webhook_url, bool(settings.smtp_host and settings.mail_from),
                   tuple(settings.incident_mail_recipients))


def enqueue(conn: Connection, channels: Channels, incident_id: int, event_id: int, action: str,
            now: float) -> int:
    """The notifications of one event, in the caller's transaction; how many."""
    if action not in NOTIFIED_ACTIONS:
        return 0
    rows = []
    if channels.webhook_url:
        rows.append(("webhook", channels.webhook_url))
    if channels.mail:
        recipients = _recipients(conn, channels, incident_id)
        if recipients:
            rows.append(("email", ",".join(recipients)[:500]))
        else:
            log.info("incident %s: no e-mail: no escalation contact known and no "
                     "SCHOOLNET_INCIDENT_MAIL_TO", incident_id)
    for channel, target in rows:
        conn.execute(incident_notifications.insert().values(
            incident_id=incident_id, event_id=event_id, channel=channel, target=target,
            status="pending", attempts=0, next_attempt_at=now, created_at=now))
    return len(rows)


def _recipients(conn: Connection, channels: Channels, incident_id: int) -> list[str]:
    """SCHOOLNET_INCIDENT_MAIL_TO, and the escalation contact of the school (of each
    school, for a provider-wide incident), without repeats."""
    from collector.incidents.contacts import escalation_contact

    school_ids = [pk for pk in conn.scalars(select(incidents.c.school_id).where(
        (incidents.c.id == incident_id) | (incidents.c.parent_id == incident_id))) if pk is not None]
    found = list(channels.mail_to)
    for pk in school_ids:
        contact = escalation_contact(conn, pk)
        if contact is not None and contact.email:
            found.append(contact.email)
    return list(dict.fromkeys(address.strip() for address in found if address.strip()))


# --- delivery ---------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    # Not tried in this pass: their channel's receiver could not be reached just before.
    deferred: int = 0

    def line(self) -> str:
        deferred = f", {self.deferred} left for the next pass (receiver unreachable)" if self.deferred else ""
        return f"notifications: {self.sent} sent, {self.retrying} to retry, {self.failed} failed{deferred}"


class Permanent(Exception):
    """A refusal that will not change on retry."""


def deliver_due(engine: Engine, settings: Any, now: float, limit: int = 100) -> DeliveryReport:
    """Send the pending notifications due at ``now`` (oldest first, at most ``limit``)."""
    report = DeliveryReport()
    with engine.connect() as conn:
        due = conn.execute(select(incident_notifications).where(
            incident_notifications.c.status == "pending",
            incident_notifications.c.next_attempt_at <= now)
            .order_by(incident_notifications.c.next_attempt_at, incident_notifications.c.id)
            .limit(limit)).all()
    # A channel whose receiver could not be reached (down, or no answer within the timeout)
    # is not tried again in this pass: a dead mail server costs one timeout, not one per
    # row, so detection (which waits for this pass while serving) goes on.
    unreachable: set[str] = set()
    for row in due:
        if row.channel in unreachable:
            report.deferred += 1
            continue
        if not _claim(engine, row, now):
            continue
        try:
            with engine.connect() as conn:
                message = notification_message(conn, row.incident_id, row.event_id, settings.public_url)
            if row.channel == "webhook":
                send_webhook(row.target, message, _secret(settings.incident_webhook_secret_file))
            else:
                send_mail(settings, row.target.split(","), message)
        except Permanent as exc:
            _finish(engine, row, "failed", str(exc), now)
            report.failed += 1
        except Exception as exc:  # every other failure: try again later
            if isinstance(exc, ConnectionError):
                unreachable.add(row.channel)
            error = _error_text(exc)
            if row.attempts + 1 >= MAX_ATTEMPTS:
                _finish(engine, row, "failed", f"{error} (gave up after {MAX_ATTEMPTS} attempts)", now)
                report.failed += 1
            else:
                _retry(engine, row, error, now)
                report.retrying += 1
        else:
            _finish(engine, row, "sent", None, now)
            report.sent += 1
    return report


def retry_delay(attempts: int) -> float:
    """Seconds until the next attempt after ``attempts`` failed ones (1, 2, …)."""
    return min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)


def _claim(engine: Engine, row: Any, now: float) -> bool:
    with writer(engine) as conn, conn.begin():
        claimed = conn.execute(update(incident_notifications).where(
            incident_notifications.c.id == row.id, incident_notifications.c.status == "pending",
            incident_notifications.c.next_attempt_at == row.next_attempt_at)
            .values(next_attempt_at=now + CLAIM_SECONDS)).rowcount
    return bool(claimed)


def _finish(engine: Engine, row: Any, status: str, error: str | None, now: float) -> None:
    with writer(engine) as conn, conn.begin():
        conn.execute(update(incident_notifications).where(incident_notifications.c.id == row.id).values(
            status=status, attempts=row.attempts + 1, last_error=error,
            sent_at=now if status == "sent" else None))
    if status == "failed":
        log.warning("incident %s: %s notification %s failed: %s", row.incident_id, row.channel,
                    row.id, error)


def _retry(engine: Engine, row: Any, error: str, now: float) -> None:
    attempts = row.attempts + 1
    with writer(engine) as conn, conn.begin():
        conn.execute(update(incident_notifications).where(incident_notifications.c.id == row.id).values(
            attempts=attempts, last_error=error, next_attempt_at=now + retry_delay(attempts)))
    log.info("incident %s: %s notification %s: %s; retry in %.0f s", row.incident_id, row.channel,
             row.id, error, retry_delay(attempts))


def _secret(path: Any) -> bytes | None:
    """The webhook's HMAC secret; an unreadable or empty file is an error, never an
    unsigned call (the settings check it at start; this is for a file changed since)."""
    if path is None:
        return None
    try:
        secret = Path(path).read_bytes().strip()
    except OSError as exc:
        raise RuntimeError(f"cannot read SCHOOLNET_INCIDENT_WEBHOOK_SECRET_FILE {path}: "
                           f"{exc.strerror or type(exc).__name__}") from None
    if not secret:
        raise RuntimeError(f"SCHOOLNET_INCIDENT_WEBHOOK_SECRET_FILE {path} is empty")
    return secret


def _error_text(exc: Exception) -> str:
    if isinstance(exc, (RuntimeError, ConnectionError)):
        return str(exc)  # ours: already says what, without secrets
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach the receiver: {exc.reason}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"mail server said {exc.smtp_code}: {_text(exc.smtp_error)}"
    if isinstance(exc, (TimeoutError, OSError)):
        return f"cannot reach the receiver: {exc.strerror or type(exc).__name__}"
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def redacted(url: str) -> str:
    """scheme://host:port of a URL: what may be shown of it (no user info, path or query)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


# --- the message -------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    event: dict[str, Any]
    incident: dict[str, Any]


def notification_message(conn: Connection, incident_id: int, event_id: int, public_url: str) -> Message:
    """The event and the incident as the notification tells them (the state the event led
    to, not whatever it is by the time it is sent)."""
    row = conn.execute(
        select(incidents, boards.c.slug.label("board_slug"), schools.c.slug.label("school_slug"),
               schools.c.name.label("school_display"))
        .outerjoin(schools, schools.c.id == incidents.c.school_id)
        .outerjoin(boards, boards.c.id == incidents.c.board_id)
        .where(incidents.c.id == incident_id)).one()
    event = conn.execute(select(incident_events).where(incident_events.c.id == event_id)).one()
    incident = {
        "id": row.id, "url": incident_url(public_url, row.id), "kind": row.kind,
        "state": event.to_state or row.state, "board": row.board_slug, "school": row.school_slug,
        "school_name": row.school_display, "provider": row.provider, "impact": row.impact,
        "urgency": row.urgency, "started_at": iso(row.started_at), "ticket": row.ticket,
        "summary": summary(row)}
    return Message({"event": event.action, "at": iso(event.at), "actor": event.actor, "note": event.note},
                   incident)


def webhook_body(message: Message) -> bytes:
    return json.dumps({**message.event, "incident": message.incident}, ensure_ascii=False,
                      separators=(",", ":")).encode()


def signature(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


KIND_WORDS = {
    "en": {"bandwidth": "bandwidth below contract", "outage": "outage", "loss": "packet loss",
           "latency": "high latency", "wifi": "poor Wi-Fi", "silent": "agent silent",
           "provider": "provider-wide problem"},
    "nl": {"bandwidth": "bandbreedte onder contract", "outage": "storing", "loss": "pakketverlies",
           "latency": "hoge vertraging", "wifi": "slechte wifi", "silent": "meetkastje stil",
           "provider": "storing bij de provider (meerdere scholen)"},
}
STATE_WORDS = {
    "en": {"open": "open", "acknowledged": "acknowledged", "escalated": "escalated",
           "resolved": "resolved", "dismissed": "dismissed"},
    "nl": {"open": "open", "acknowledged": "in behandeling", "escalated": "gemeld bij leverancier",
           "resolved": "opgelost", "dismissed": "vervallen"},
}


def summary(row: Any) -> str:
    """One English line: what, where, on whose line, and the key figure where there is one."""
    where = row.school_display or (f"{(row.findings or {}).get('school_count', '?')} schools")
    text = f"{KIND_WORDS['en'].get(row.kind, row.kind)} at {where}"
    if row.provider:
        text += f" ({row.provider})"
    figure = _key_figure((row.findings or {}).get("figures") or {})
    return text + (f": {figure}" if figure else "")


def _key_figure(figures: dict[str, Any]) -> str | None:
    ratio = figures.get("median_ratio", figures.get("ratio"))
    if isinstance(ratio, (int, float)):
        direction = figures.get("direction", "")
        return f"{direction} median {ratio:.0%} of the advertised speed".strip()
    duration = figures.get("duration_seconds", figures.get("duration"))
    if isinstance(duration, (int, float)):
        return f"{duration / 60:.0f} min" + (" so far" if figures.get("ongoing") else "")
    loss = figures.get("loss_ratio")
    if isinstance(loss, (int, float)):
        return f"loss {loss:.0%}"
    return None


def mail_message(settings: Any, recipients: list[str], message: Message) -> EmailMessage:
    """Dutch first, then English, in one mail; plain text and HTML."""
    incident = message.incident
    where = incident["school_name"] or incident["summary"]
    mail = EmailMessage()
    # One line: a line end in a name (the contracts CSV allows them in a cell) would make
    # the header unsendable, so every run of whitespace becomes one space.
    mail["Subject"] = " ".join(
        f"[schoolnet] Storing/Outage: {where}: {incident['kind']} ({incident['state']})".split())
    mail["From"] = settings.mail_from
    mail["To"] = ", ".join(recipients)
    parts = [_mail_part("nl", message), _mail_part("en", message)]
    mail.set_content("\n\n-----\n\n".join(text for text, _ in parts) + "\n")
    mail.add_alternative("<!doctype html><html><body>" + "<hr>".join(html for _, html in parts)
                         + "</body></html>", subtype="html")
    return mail


def _mail_part(lang: str, message: Message) -> tuple[str, str]:
    incident, event = message.incident, message.event
    kind = KIND_WORDS[lang].get(incident["kind"], incident["kind"])
    state = STATE_WORDS[lang].get(incident["state"], incident["state"])
    labels = {"nl": ("Incident", "School", "Provider", "Begonnen", "Impact", "Urgentie", "Status",
                     "Ticket", "Notitie", "Bekijk het incident en het bewijsdossier"),
              "en": ("Incident", "School", "Provider", "Started", "Impact", "Urgency", "State",
                     "Ticket", "Note", "See the incident and its evidence pack")}[lang]
    impact = {"nl": {"teaching": "onderwijs", "administration": "administratie"}}.get(lang, {})
    urgency = {"nl": {"high": "hoog", "normal": "normaal", "low": "laag"}}.get(lang, {})
    rows = [(labels[0], f"{incident['id']}: {kind}"),
            (labels[1], incident["school_name"] or incident["summary"]),
            (labels[2], incident["provider"] or "-"), (labels[3], incident["started_at"]),
            (labels[4], impact.get(incident["impact"], incident["impact"])),
            (labels[5], urgency.get(incident["urgency"], incident["urgency"])),
            (labels[6], f"{state} ({event['actor']})"), (labels[7], incident["ticket"] or "-")]
    if event.get("note"):
        rows.append((labels[8], event["note"]))
    text = "\n".join(f"{name}: {value}" for name, value in rows) + f"\n\n{labels[9]}: {incident['url']}"
    if lang == "en":
        text = incident["summary"] + "\n\n" + text
    html = (f'<div lang="{lang}">' + ("<p>" + escape(incident["summary"]) + "</p>" if lang == "en" else "")
            + "<table>" + "".join(f"<tr><th align=left>{escape(name)}</th><td>{escape(str(value))}</td></tr>"
                                  for name, value in rows)
            + f'</table><p><a href="{escape(incident["url"])}">{escape(labels[9])}</a></p></div>')
    return text, html


# --- the channels ---------------------------------------------------------------------------


def send_webhook(url: str, message: Message, secret: bytes | None) -> None:
    body = webhook_body(message)
    headers = {"Content-Type": "application/json", "User-Agent": "schoolnet-collector"}
    if secret:
        headers["X-Schoolnet-Signature"] = signature(body, secret)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise Permanent(f"HTTP {exc.code} from {redacted(url)}: the receiver refuses it") from None
        raise RuntimeError(f"HTTP {exc.code} from {redacted(url)}") from None
    except urllib.error.URLError as exc:
        raise ConnectionError(f"cannot reach {redacted(url)}: {_reason(exc.reason)}") from None
    except (TimeoutError, OSError) as exc:
        raise ConnectionError(f"cannot reach {redacted(url)}: {_reason(exc)}") from None
    if not 200 <= status < 300:
        raise RuntimeError(f"HTTP {status} from {redacted(url)}")


def _reason(reason: Any) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror)
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return f"no answer within {TIMEOUT_SECONDS:.0f} s"
    return str(reason) if not isinstance(reason, Exception) else type(reason).__name__


def send_mail(settings: Any, recipients: list[str], message: Message) -> None:
    mail = mail_message(settings, recipients, message)
    host, port = settings.smtp_host, settings.smtp_port
    password = ""
    if settings.smtp_username and settings.smtp_password_file:
        try:  # before connecting: a file problem is not the mail server's
            password = Path(settings.smtp_password_file).read_text().strip()
        except OSError as exc:
            raise RuntimeError(f"cannot read SCHOOLNET_SMTP_PASSWORD_FILE {settings.smtp_password_file}: "
                               f"{exc.strerror or type(exc).__name__}") from None
    try:
        smtp: smtplib.SMTP
        if settings.smtp_ssl:
            smtp = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS)
        with smtp:
            if settings.smtp_starttls and not settings.smtp_ssl:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, password)
            refused = smtp.send_message(mail, to_addrs=recipients)
    except smtplib.SMTPAuthenticationError as exc:
        # A 5xx, but the admin's to fix (user name, password file): retried, so the mail
        # still goes out once the login works. The server's answer never holds the password.
        raise RuntimeError(f"the mail server {host}:{port} refused the login of {settings.smtp_username!r} "
                           f"({exc.smtp_code}: {_text(exc.smtp_error)}); check SCHOOLNET_SMTP_USERNAME "
                           "and SCHOOLNET_SMTP_PASSWORD_FILE") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise Permanent(f"the mail server refused every recipient ({', '.join(exc.recipients)})") from None
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500:
            raise Permanent(f"the mail server {host}:{port} said {exc.smtp_code}: "
                            f"{_text(exc.smtp_error)}") from None
        raise RuntimeError(f"the mail server {host}:{port} said {exc.smtp_code}: "
                           f"{_text(exc.smtp_error)}") from None
    except smtplib.SMTPNotSupportedError as exc:
        # No STARTTLS, no AUTH, or no SMTPUTF8 for a non-ASCII address: say which.
        hint = " (SCHOOLNET_SMTP_STARTTLS=false to send without)" if "STARTTLS" in str(exc) else ""
        raise RuntimeError(f"the mail server {host}:{port}: {exc}{hint}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ConnectionError(f"cannot send through {host}:{port}: {_reason(exc)}") from None
    if refused:
        log.warning("mail server refused some recipients: %s", ", ".join(refused))

"""The collector's settings: from the environment (``SCHOOLNET_*``) and command-line flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.coverage import BROWSING_DBM, VIDEO_DBM
from agent.units import parse_duration

DEFAULT_DB = "sqlite:///schoolnet-collector.db"


class CollectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCHOOLNET_", extra="ignore")

    db: str = DEFAULT_DB
    # production: the API description is for admins only; development: open, for the demo.
    mode: Literal["production", "development"] = "production"
    # Agents silent for longer than this disappear from /metrics (their history stays).
    agent_expiry: float = 24 * 3600
    # The largest download or upload one speed-test request may ask for.
    speed_max_bytes: int = 1024**3
    # Ingest requests one process (one replica, one worker) takes at a time; beyond it the
    # next is answered 503 with a spread Retry-After before its body is read
    # (collector/admission.py). Per process: N replicas take N times this. 32: a full batch
    # of 500 connectivity windows costs about 0.25 s of collector CPU (bench_scale), so 32
    # queued stay well inside the agent's 30 s timeout even on a shared core; at 256 a
    # storm's requests timed out in the queue and were sent again: work done twice.
    ingest_queue_limit: int = Field(default=32, ge=1)
    # Coverage grades of rooms: a signal at or above wifi_video_dbm is "video", at or above
    # wifi_browsing_dbm "browsing", below it "poor". Grades are computed from the stored
    # signals whenever asked, so changing these re-grades the history too.
    wifi_video_dbm: float = Field(default=VIDEO_DBM, ge=-150, le=30, allow_inf_nan=False)
    wifi_browsing_dbm: float = Field(default=BROWSING_DBM, ge=-150, le=30, allow_inf_nan=False)
    # A room whose newest observation is older than this leaves /metrics (its history stays);
    # long by default: a room only surveyed is surveyed perhaps once a year.
    room_expiry: float = Field(default=400 * 86400, gt=0)
    # The time zone of schools that do not name their own (schools.timezone): school hours,
    # holidays and the days verdicts count are the school's local ones.
    timezone: str = "Europe/Amsterdam"
    # Raw records older than this are removed (their daily aggregates stay): 13 months, so
    # a year can be compared with the one before (396 days covers any 13 months).
    retention: float = Field(default=396 * 86400, gt=0)
    # The period verdicts look back over, on /metrics and by default in `verdicts`.
    verdict_window: float = Field(default=30 * 86400, gt=0)
    # How long /metrics serves the verdicts it computed before judging every school anew:
    # a verdict over 30 days does not change in a minute, and judging reads the window.
    verdict_refresh: float = Field(default=300, ge=0)
    # Incidents (collector/incidents/): detection runs every incident_interval (0 = never
    # while serving; `incidents detect` still runs it by hand) and then sends what is due.
    incident_interval: float = Field(default=300, ge=0)
    # A webhook called on every state change of an incident (JSON, see docs/incidents.md),
    # signed with HMAC-SHA256 of the body when a secret file is named.
    incident_webhook_url: str | None = None
    incident_webhook_secret_file: Path | None = None
    # E-mail on state changes, through this SMTP server (none = no e-mail): to the board's
    # escalation contact and to incident_mail_to (addresses separated by commas).
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    # Implicit TLS (port 465); when set, STARTTLS is not used.
    smtp_ssl: bool = False
    smtp_username: str | None = None
    smtp_password_file: Path | None = None
    mail_from: str | None = None
    incident_mail_to: str | None = None
    # The collector's address as people reach it (behind a proxy: the proxy's), for the
    # links in notifications.
    public_url: str = "http://127.0.0.1:8470"
    # Signed-in sessions (collector/accounts/sessions.py): one lasts at most session_lifetime,
    # and ends sooner after session_idle without a request.
    session_lifetime: float = Field(default=12 * 3600, gt=0)
    session_idle: float = Field(default=2 * 3600, gt=0)
    # Sign-in through OpenID Connect (collector/accounts/oidc.py), e.g. a federation of the
    # education sector, beside local passwords: the issuer's URL (https; http only on
    # loopback, for tests), this collector's client id and a file with its client secret.
    # The page's button says "Sign in with <oidc_label>".
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret_file: Path | None = None
    oidc_label: str = "OpenID Connect"
    oidc_scopes: str = "openid email profile"
    # Prometheus remote_write of the per-school series (docs/remote-write.md): to this
    # http(s) URL (VictoriaMetrics: http://HOST:8428/api/v1/write); unset = off, and /metrics
    # shows them as before. With it set, /metrics carries this process's own series only.
    remote_write_url: str | None = None
    # How often the state snapshot (everything /metrics would show) is sent, by one replica.
    # At least a second: each snapshot builds the whole /metrics page of every school.
    remote_write_interval: float = Field(default=60, ge=1)
    # The `instance` label of every series sent: one value for all replicas, so they do
    # not split a school's series in two.
    remote_write_instance: str = Field(default="schoolnet-collector", min_length=1)
    # A file holding a bearer token for the receiver (read at each request).
    remote_write_token_file: Path | None = None
    # Stored records per request, and how long one request may take. At most 10,000: a
    # batch's ids are bound one parameter each (SQLite allows 32,766, PostgreSQL 65,535).
    remote_write_batch: int = Field(default=500, ge=1, le=10_000)
    remote_write_timeout: float = Field(default=30, gt=0)

    @field_validator("agent_expiry", "room_expiry", "retention", "verdict_window",
                     "verdict_refresh", "incident_interval", "session_lifetime", "session_idle",
                     "remote_write_interval", "remote_write_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError(
                "timezone", f"{value!r} is not a time zone name (like Europe/Amsterdam)") from None
        return value

    @field_validator("wifi_browsing_dbm")
    @classmethod
    def _browsing_below_video(cls, value: float, info: ValidationInfo) -> float:
        video = info.data.get("wifi_video_dbm")
        if video is not None and video <= value:
            # A custom error: its message is the whole line the user sees (no "Value error, ").
            raise PydanticCustomError(
                "thresholds", f"{value:g} dBm must be below wifi_video_dbm ({video:g} dBm; "
                "SCHOOLNET_WIFI_VIDEO_DBM, SCHOOLNET_WIFI_BROWSING_DBM): video needs a stronger "
                "signal than browsing")
        return value

    @field_validator("incident_webhook_url", "public_url", "remote_write_url")
    @classmethod
    def _http_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or (not value.strip() and info.field_name != "public_url"):
            return None
        parts = urlsplit(value.strip())
        try:
            parts.port  # noqa: B018 (urlsplit only checks the port when asked)
        except ValueError:
            raise PydanticCustomError(
                "url", f"{parts.scheme}://{parts.hostname}:… has no valid port (1-65535)") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PydanticCustomError(
                "url", f"{_redacted(value)!r} is not an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            # urllib sends no user info (the call would fail on every incident); the
            # webhook is authenticated by its signature instead.
            instead = ("give a bearer token in SCHOOLNET_REMOTE_WRITE_TOKEN_FILE"
                       if info.field_name == "remote_write_url"
                       else "sign the calls with SCHOOLNET_INCIDENT_WEBHOOK_SECRET_FILE")
            raise PydanticCustomError(
                "url", f"{_redacted(value)!r}: a user name or password in the URL is not sent; "
                f"{instead} instead")
        return value.strip().rstrip("/") if info.field_name == "public_url" else value.strip()

    @field_validator("mail_from")
    @classmethod
    def _one_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return check_address(value.strip())

    @field_validator("incident_mail_to")
    @classmethod
    def _addresses(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return ",".join(check_address(part.strip()) for part in value.split(",") if part.strip())

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
            raise PydanticCustomError(
                "url", f"{_redacted(value)!r} is not an https:// issuer URL (an ID token's "
                "keys must come over TLS)")
        return value.strip().rstrip("/")

    @field_validator("incident_webhook_secret_file", "smtp_password_file", "oidc_client_secret_file",
                     "remote_write_token_file")
    @classmethod
    def _readable_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and not value.is_file():
            raise PydanticCustomError("file", f"{str(value)!r} is not a readable file")
        if value is not None and info.field_name in ("incident_webhook_secret_file",
                                                     "remote_write_token_file"):
            # An empty secret would sign nothing: say so now, not send unsigned calls. An
            # empty token likewise: every write would be refused.
            try:
                empty = not value.read_bytes().strip()
            except OSError as exc:
                raise PydanticCustomError("file", f"{str(value)!r} is not a readable file "
                                          f"({exc.strerror})") from None
            if empty:
                what = ("the receiver's bearer token" if info.field_name == "remote_write_token_file"
                        else "the webhook's secret")
                raise PydanticCustomError("file", f"{str(value)!r} is empty: put {what} in it")
        return value

    @field_validator("smtp_host", "smtp_username")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value.strip() if value and value.strip() else None

    @model_validator(mode="after")
    def _mail_needs_sender(self) -> CollectorSettings:
        if self.smtp_host and not self.mail_from:
            raise PydanticCustomError(
                "mail", "SCHOOLNET_SMTP_HOST is set but SCHOOLNET_MAIL_FROM is not: e-mail needs "
                "a sender address")
        if self.smtp_password_file and not self.smtp_username:
            raise PydanticCustomError(
                "mail", "SCHOOLNET_SMTP_PASSWORD_FILE needs SCHOOLNET_SMTP_USERNAME too")
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_client_secret_file):
            raise PydanticCustomError(
                "oidc", "SCHOOLNET_OIDC_ISSUER needs SCHOOLNET_OIDC_CLIENT_ID and "
                "SCHOOLNET_OIDC_CLIENT_SECRET_FILE too")
        return self

    @property
    def incident_mail_recipients(self) -> tuple[str, ...]:
        return tuple(self.incident_mail_to.split(",")) if self.incident_mail_to else ()


def check_address(value: str) -> str:
    """A minimal but clear check of an e-mail address: one @, something on both sides, a
    dot in the domain, no spaces or angle brackets (a typo should fail at start, not at
    the first incident)."""
    local, at, domain = value.rpartition("@")
    if (not at or not local or "." not in domain.strip(".") or any(c in value for c in " <>,;\"\t")
            or domain.startswith(".") or domain.endswith(".")):
        raise PydanticCustomError("email", f"{value!r} is not an e-mail address (like ict@school.example)")
    return value


def _redacted(url: str) -> str:
    """A URL without what may be secret in it (user info, path, query): for messages."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.hostname:
        return url if len(url) <= 40 and "@" not in url else "the URL"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"

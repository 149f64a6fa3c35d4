"""The agent at work: ``run`` (the daemon) and ``once`` (every probe once, then upload)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from agent.central import refresh_central_settings
from agent.clock import now as clock_now
from agent.config import AgentSettings, ConfigError, load_settings
from agent.credential import Credential, credential_path, load_credential
from agent.outbox import Outbox
from agent.probes import Event, Measurement, Probe, ProbeContext, probe_class
from agent.scheduler import Scheduler, Timing
from agent.transport import make_client
from agent.uploader import Backoff, CredentialRejected, RetryLater, Uploader, UploadLoop
from agent.wire import ClockStamp

log = logging.getLogger("schoolnet.agent")

OUTBOX_FILE = "outbox.sqlite"
CENTRAL_REFRESH_SECONDS = 3600.0
ONCE_UPLOAD_ATTEMPTS = 3
ONCE_BACKOFF_CAP_SECONDS = 10.0


class NotEnrolled(Exception):
    pass


def open_outbox(settings: AgentSettings) -> Outbox:
    return Outbox(settings.state_dir / OUTBOX_FILE, settings.outbox.max_bytes)


def require_credential(settings: AgentSettings) -> Credential:
    credential = load_credential(settings.state_dir)
    if credential is None:
        raise NotEnrolled(f"not enrolled (no {credential_path(settings.state_dir)}): "
                          "run 'schoolnet-agent enroll --collector URL --code CODE' first")
    return credential


def collector_url(settings: AgentSettings, credential: Credential) -> str:
    # collector.url in the config overrides the enrolment's (e.g. a new host name).
    return settings.collector.url or credential.collector_url


def enabled_probes(settings: AgentSettings, credential: Credential | None, scheduled: bool = False,
                   outbox: Outbox | None = None) -> dict[str, tuple[Probe, Timing]]:
    """The enabled probes; with ``outbox``, events they see go into it the moment they happen."""
    emit = partial(store_event, outbox) if outbox is not None else None
    context = ProbeContext(settings, credential, settings.state_dir, scheduled=scheduled, emit=emit)
    probes = {}
    for name in type(settings.probes).model_fields:
        config = getattr(settings.probes, name)
        if config.enabled is False:
            continue
        probe = probe_class(name)(context)
        if config.enabled == "auto":
            # "auto": only where the machine has what the probe measures (Wi-Fi needs a
            # wireless interface); say once why not, instead of a failure every run.
            reason = probe.not_applicable()
            if reason:
                log.info("%s probe not run: %s (set probes.%s.enabled = true to run it anyway)",
                         name, reason, name)
                continue
        probes[name] = (probe, probe.timing())
    return probes


def checked(probes: dict[str, tuple[Probe, Timing]]) -> dict[str, tuple[Probe, Timing]]:
    """Refuse to start with a configuration a probe cannot work with (ConfigError)."""
    for probe, _ in probes.values():
        probe.check()
    return probes


def keep(outbox: Outbox) -> Callable[[str, ClockStamp, Measurement], None]:
    def sink(name: str, stamp: ClockStamp, measurement: Measurement) -> None:
        store(outbox, name, stamp, measurement)
    return sink


def store(outbox: Outbox, name: str, stamp: ClockStamp, measurement: Measurement) -> None:
    """The run's own record, then the events it saw (and did not store yet), each with its
    own clock."""
    outbox.add(name, stamp, measurement.ok, measurement.error, measurement.payload)
    for event in measurement.events:
        store_event(outbox, event)


def store_event(outbox: Outbox, event: Event) -> None:
    outbox.add(event.kind, event.clock, True, None, event.payload)


def make_uploader(settings: AgentSettings, credential: Credential, outbox: Outbox) -> Uploader:
    client = make_client(settings.collector.timeout, settings.collector.ca_bundle,
                         credential.credential)
    return Uploader(outbox, client, collector_url(settings, credential),
                    settings.upload.batch_records)


def refresh(settings: AgentSettings, credential: Credential, config: Path | None) -> AgentSettings:
    refresh_central_settings(credential, collector_url(settings, credential), settings.state_dir,
                             min(settings.collector.timeout, 10), settings.collector.ca_bundle)
    return load_settings(config)


def once(settings: AgentSettings, config: Path | None) -> list[str]:
    """Every enabled probe once, then upload; return the problems (empty = all done)."""
    credential = require_credential(settings)
    settings = refresh(settings, credential, config)
    outbox = open_outbox(settings)
    probes = checked(enabled_probes(settings, credential, outbox=outbox))
    problems: list[str] = []
    for name, (probe, _) in probes.items():
        stamp = clock_now()
        measurement = probe.measure()
        store(outbox, name, stamp, measurement)
        problems.extend(f"{name}: {reason}" for reason in measurement.problems())
    problems.extend(deliver(settings, credential, outbox))
    outbox.close()
    return problems


def deliver(settings: AgentSettings, credential: Credential, outbox: Outbox) -> list[str]:
    """Send what the outbox holds now, with a few quick retries; the problems, if any (the
    records then stay in the outbox for the daemon or the next command)."""
    problems: list[str] = []
    uploader = make_uploader(settings, credential, outbox)
    backoff = Backoff(cap=ONCE_BACKOFF_CAP_SECONDS)
    for attempt in range(ONCE_UPLOAD_ATTEMPTS):
        try:
            uploader.drain()
            break
        except CredentialRejected as exc:
            problems.append(str(exc))
            break
        except RetryLater as exc:
            if attempt == ONCE_UPLOAD_ATTEMPTS - 1:
                problems.append(f"upload: {exc} (the records stay in the outbox)")
            else:
                time.sleep(backoff.next_delay(exc.retry_after))
    uploader.client.close()
    return problems


def run(settings: AgentSettings, config: Path | None, stop: threading.Event) -> None:
    """The daemon: measure on schedule, upload on its own cadence, until ``stop``."""
    credential = require_credential(settings)
    settings = refresh(settings, credential, config)
    outbox = open_outbox(settings)
    probes = checked(enabled_probes(settings, credential, scheduled=True, outbox=outbox))
    scheduler = Scheduler(keep(outbox))
    scheduler.configure(probes)
    delivery = Delivery(settings, outbox)
    upload = threading.Thread(target=delivery.loop(stop.wait).run, daemon=True)
    upload.start()
    log.info("agent %s running; reporting to %s", credential.identity,
             collector_url(settings, credential))
    next_refresh = time.monotonic() + CENTRAL_REFRESH_SECONDS
    while not stop.is_set():
        scheduler.start_due()
        if time.monotonic() >= next_refresh:
            next_refresh = time.monotonic() + CENTRAL_REFRESH_SECONDS
            try:
                # A re-enrolment since the start brings a new credential for the probes too.
                credential = load_credential(settings.state_dir) or credential
            except ValueError as exc:
                log.error("%s", exc)
            try:
                settings = refresh(settings, credential, config)
            except (ConfigError, OSError) as exc:
                # The file was edited into something invalid: keep running as configured.
                log.error("keeping the current settings: %s", exc)
            scheduler.configure(enabled_probes(settings, credential, scheduled=True, outbox=outbox))
            delivery.apply(settings)
        stop.wait(min(scheduler.seconds_until_next(), 30.0))
    upload.join(timeout=15)
    outbox.close()


class Delivery:
    """The upload side of the daemon, following the settings as they change (the hourly
    refresh may bring a new interval, batch size, outbox cap or collector address)."""

    def __init__(self, settings: AgentSettings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox
        self.upload_loop: UploadLoop | None = None

    def loop(self, wait: Callable[[float], bool]) -> UploadLoop:
        self.upload_loop = UploadLoop(
            self.connect, lambda: _stamp(credential_path(self.settings.state_dir)),
            self.settings.upload.interval, self.settings.upload.max_backoff, wait,
            settings_stamp=self.connection_settings)
        return self.upload_loop

    def apply(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.outbox.max_bytes = settings.outbox.max_bytes
        if self.upload_loop is not None:
            self.upload_loop.interval = settings.upload.interval
            self.upload_loop.backoff.cap = settings.upload.max_backoff

    def connect(self) -> Uploader | None:
        # A half-edited credential.json or a CA bundle that went away must not end
        # uploading for good: say so, and try again on the next round.
        try:
            credential = load_credential(self.settings.state_dir)
            return make_uploader(self.settings, credential, self.outbox) if credential else None
        except ValueError as exc:
            log.error("cannot upload: %s", exc)
            return None

    def connection_settings(self) -> object:
        """What the uploader is built from, besides the credential: a change means a new
        client (another collector address or CA, another timeout or batch size)."""
        collector = self.settings.collector
        return (collector.url, collector.ca_bundle, collector.timeout,
                self.settings.upload.batch_records)


def _stamp(path: Path) -> tuple[float, int, int]:
    """What changes when credential.json is written again (mtime alone may not, within
    its resolution)."""
    try:
        info = path.stat()
    except OSError:
        return (-1.0, -1, -1)
    return (info.st_mtime, info.st_ino, info.st_size)

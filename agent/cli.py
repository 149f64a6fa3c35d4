"""``schoolnet-agent``: enrol, run, measure once, and show the outbox.

Heavy modules are imported inside the commands, so ``--help`` and ``status`` start fast
on a Raspberry Pi.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

from agent import __version__

PROG = "schoolnet-agent"


class CommandError(Exception):
    """The command could not do what was asked; exit 1 with this one line."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming what was wrong, then exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="The schoolnet agent: measures the school's network and delivers the "
        "results to its collector. Opens no listening port.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="TOML config file (default: $SCHOOLNET_AGENT_CONFIG; every key "
                        "has a default, see deploy/agent/agent.example.toml)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True,
                                     parser_class=OneLineParser)

    enroll = commands.add_parser("enroll", help="exchange an enrolment code for this agent's "
                                 "credential (stored with mode 0600 in the state directory)")
    enroll.add_argument("--collector", required=True, metavar="URL",
                        help="the collector's base URL, e.g. https://collector.example.org")
    enroll.add_argument("--code", required=True, help="the code from "
                        "'schoolnet-collector enroll-code'")
    enroll.add_argument("--name", help="this agent's name (default: the host name); its id "
                        "is derived from it")
    enroll.set_defaults(run=cmd_enroll)

    run = commands.add_parser("run", help="the daemon: measure on schedule and upload, until "
                              "SIGTERM or Ctrl-C")
    run.set_defaults(run=cmd_run)

    once = commands.add_parser("once", help="run every enabled probe once, then upload; exit 0 "
                               "only when everything was measured and delivered")
    once.set_defaults(run=cmd_once)

    measure = commands.add_parser("measure", help="one measurement, printed; nothing is stored "
                                  "or sent; exit 0 only when it measured")
    measure.add_argument("probe", help="system, bandwidth, connectivity or wifi")
    measure.add_argument("--json", action="store_true", help="print one JSON object")
    measure.add_argument("--backend", choices=("http", "ndt7", "speedtest", "iperf3"),
                         help="bandwidth: the protocol (default: probes.bandwidth.backend)")
    measure.add_argument("--min-streams", help="bandwidth: parallel TCP streams to start with")
    measure.add_argument("--max-streams", help="bandwidth: the most streams while throughput rises")
    measure.add_argument("--server", metavar="URL", help="bandwidth: the test server: a base URL "
                         "(http, ndt7: ws:// or wss://), host[:port] (iperf3), or an Ookla id "
                         "(speedtest); the credential goes only to the agent's own collector "
                         "(default: the backend's own choice; http: the collector's speed endpoints)")
    measure.add_argument("--duration", help="bandwidth: seconds per direction, e.g. 10s")
    measure.add_argument("--max-bytes", help="bandwidth: cap per direction, e.g. 500MB")
    measure.add_argument("--window", help="connectivity: how long to probe, e.g. 10s "
                         "(default: the configured window)")
    measure.set_defaults(run=cmd_measure)

    from agent.survey_cli import add_survey_parser

    add_survey_parser(commands, OneLineParser)

    status = commands.add_parser("status", help="outbox depth and bytes, oldest record, last "
                                 "upload and error, evicted and dead-lettered counts")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(run=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except CommandError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from agent.config import ConfigError
        from agent.daemon import NotEnrolled

        if isinstance(exc, ConfigError):
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, (NotEnrolled, ValueError, OSError)):
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 1
        print(f"{PROG}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _settings(args: argparse.Namespace, use_central: bool = True) -> Any:
    from agent.config import config_path, load_settings

    settings = load_settings(config_path(args.config), use_central)
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.log_level != "debug":
        # httpx logs every request at info: a line a minute in the journal, saying nothing.
        for noisy in ("httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return settings


# --- commands -------------------------------------------------------------------------------


def cmd_enroll(args: argparse.Namespace) -> int:
    import socket

    import httpx

    from agent.credential import Credential, save_credential
    from agent.transport import describe_error, make_client
    from agent.wire import ENROLL_PATH, EnrollRequest, EnrollResponse

    settings = _settings(args, use_central=False)
    url = args.collector.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CommandError(f"--collector {args.collector!r} must start with https:// (or http://)")
    request = EnrollRequest(code=args.code, name=args.name or socket.gethostname(),
                            version=__version__)
    try:
        with make_client(settings.collector.timeout, settings.collector.ca_bundle) as client:
            answer = client.post(url + ENROLL_PATH, json=request.model_dump())
    except httpx.HTTPError as exc:
        raise CommandError(f"cannot reach the collector at {url}: {describe_error(exc)}") from None
    if answer.status_code != 200:
        raise CommandError(f"enrolment refused ({answer.status_code}): {_detail(answer)}")
    try:
        enrolled = EnrollResponse.model_validate(answer.json())
    except ValueError:
        raise CommandError(f"{url} did not answer like a schoolnet collector") from None
    credential = Credential(collector_url=url, credential=enrolled.credential,
                            board=enrolled.board, school=enrolled.school, agent=enrolled.agent)
    save_credential(settings.state_dir, credential)
    print(f"enrolled as {credential.identity} with {url}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from agent.daemon import run

    settings = _settings(args)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run(settings, _config(args), stop)
    return 0


def cmd_once(args: argparse.Namespace) -> int:
    from agent.daemon import once

    problems = once(_settings(args), _config(args))
    for problem in problems:
        print(f"{PROG}: {problem}", file=sys.stderr)
    return 1 if problems else 0


def cmd_measure(args: argparse.Namespace) -> int:
    from agent.credential import load_credential
    from agent.probes import ProbeContext, probe_class

    settings = _settings(args)
    overrides = {key: value for key, value in (
        ("backend", args.backend), ("server", args.server), ("duration", args.duration),
        ("max_bytes", args.max_bytes), ("min_streams", args.min_streams),
        ("max_streams", args.max_streams)) if value is not None}
    if overrides:
        if args.probe != "bandwidth":
            raise CommandError("--backend, --server, --duration, --max-bytes, --min-streams and "
                               "--max-streams are for bandwidth")
        settings = _with_probe(settings, "bandwidth", overrides)
    if args.window is not None:
        if args.probe != "connectivity":
            raise CommandError("--window is for connectivity")
        settings = _with_probe(settings, "connectivity", {"window": args.window})
    try:
        probe = probe_class(args.probe)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    try:
        credential = load_credential(settings.state_dir)
    except ValueError:
        # Measuring against a given server needs no enrolment, so an unreadable
        # credential (another user's state directory) is no reason to refuse.
        if args.probe == "bandwidth" and not args.server:
            raise
        credential = None
    started = time.time()
    instance = probe(ProbeContext(settings, credential, settings.state_dir, interactive=True))
    instance.check()
    measurement = instance.measure()
    document = {"probe": args.probe, "ok": measurement.ok, "error": measurement.error,
                "measured_at_seconds": started, **(measurement.payload or {})}
    if measurement.events:
        document["events"] = [{"kind": event.kind, "clock": event.clock.model_dump(mode="json"),
                               "payload": event.payload} for event in measurement.events]
    if args.json:
        print(json.dumps(document))
    else:
        for key, value in document.items():
            print(f"{key:32} {value}")
    return 1 if measurement.problems() else 0


def cmd_status(args: argparse.Namespace) -> int:
    from agent.credential import load_credential
    from agent.daemon import OUTBOX_FILE, open_outbox

    settings = _settings(args, use_central=False)
    credential = load_credential(settings.state_dir)
    document: dict[str, Any] = {
        "enrolled": credential is not None,
        "agent": credential.identity if credential else None,
        "collector_url": (settings.collector.url or credential.collector_url) if credential else None,
        "state_dir": str(settings.state_dir),
    }
    if (settings.state_dir / OUTBOX_FILE).exists():
        outbox = open_outbox(settings)
        status = outbox.status()
        outbox.close()
        document.update({
            "outbox_records": status.records, "outbox_bytes": status.bytes,
            "oldest_record_age_seconds": status.oldest_record_age_seconds,
            "evicted_total": status.evicted_total,
            "dead_lettered_total": status.dead_lettered_total,
            "last_upload_at": status.last_upload_at, "last_error": status.last_error,
            "last_error_at": status.last_error_at,
            "credential_rejected": status.credential_rejected,
            "stream_id": status.stream_id,
        })
    else:
        # Nothing measured yet: the same keys, so scripts need no special case.
        document.update({"outbox_records": 0, "outbox_bytes": 0, "oldest_record_age_seconds": None,
                         "evicted_total": 0, "dead_lettered_total": 0, "last_upload_at": None,
                         "last_error": None, "last_error_at": None, "credential_rejected": None,
                         "stream_id": None})
    if args.json:
        print(json.dumps(document))
    else:
        for key, value in document.items():
            print(f"{key:28} {_human(key, value)}")
    return 0


# --- helpers ----------------------------------------------------------------------------------


def _config(args: argparse.Namespace) -> Path | None:
    from agent.config import config_path

    return config_path(args.config)


def _with_probe(settings: Any, name: str, overrides: dict[str, str]) -> Any:
    from pydantic import ValidationError

    from agent.config import AgentSettings, ConfigError
    from agent.wire import describe_validation_error

    data = settings.model_dump()
    data["probes"][name].update(overrides)
    try:
        return AgentSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("option " + describe_validation_error(exc).replace(
            f"probes.{name}.", "--").replace("_", "-")) from None


def _detail(answer: Any) -> str:
    try:
        detail = answer.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else answer.text[:200]


def _human(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.endswith("_at") and isinstance(value, float):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    return str(value)


if __name__ == "__main__":
    sys.exit(main())

"""``schoolnet-collector``: serve the API and administer boards, schools and agents."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent import __version__
from agent.cli import OneLineParser
from agent.units import parse_duration
from agent.wire import describe_validation_error

PROG = "schoolnet-collector"


class UsageError(Exception):
    """Bad input from the command line: exit 2 with one line."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line for the user, never a traceback
        from collector.db.engine import StoreError
        from collector.registry import RegistryError

        if isinstance(exc, (RegistryError, StoreError, ValueError)):
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        print(f"{PROG}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="The schoolnet collector: keeps what agents measure, exposes it to "
        "Prometheus, and administers boards, schools and agents.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--db", metavar="URL", help=DB_HELP)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True,
                                     parser_class=OneLineParser)

    serve = commands.add_parser("serve", help="run the HTTP API, /metrics and the speed endpoints")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8470, help="port (default 8470)")
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate: terminate HTTPS here")
    serve.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1",
                       help="reverse proxies whose X-Forwarded-* headers are trusted")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes (default 1). More use more cores (2 on a "
                       "2-core box); on SQLite they take turns at the one write lock; the "
                       "schoolnet_collector_* request counters are then per worker")
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date "
                                  "(every command also does this at start)")
    migrate.set_defaults(run=cmd_migrate)

    board = commands.add_parser("board", help="boards (school boards, besturen)")
    board_commands = board.add_subparsers(metavar="ACTION", required=True, parser_class=OneLineParser)
    board_add = board_commands.add_parser("add", help="add a board; prints its id")
    board_add.add_argument("name", help="display name")
    board_add.add_argument("--id", help="short id (default: derived from the name)")
    board_add.set_defaults(run=cmd_board_add)
    board_commands.add_parser("list", help="list boards: id and name").set_defaults(run=cmd_board_list)

    school = commands.add_parser("school", help="schools of a board")
    school_commands = school.add_subparsers(metavar="ACTION", required=True, parser_class=OneLineParser)
    school_add = school_commands.add_parser("add", help="add a school; prints its id")
    school_add.add_argument("--board", required=True, help="the board's id")
    school_add.add_argument("name", help="display name")
    school_add.add_argument("--id", help="short id, unique in the board (default: from the name)")
    school_add.set_defaults(run=cmd_school_add)
    school_list = school_commands.add_parser("list", help="list schools: board, id and name")
    school_list.add_argument("--board", help="only this board's schools")
    school_list.set_defaults(run=cmd_school_list)

    code = commands.add_parser("enroll-code", help="make an enrolment code for a school's "
                               "agents; prints the code alone")
    code.add_argument("--school", required=True, help="SCHOOL id, or BOARD/SCHOOL")
    code.add_argument("--uses", type=int, default=1, help="how many agents may use it (default 1)")
    code.add_argument("--valid-for", default="24h", help="e.g. 30m, 24h, 7d (default 24h)")
    code.set_defaults(run=cmd_enroll_code)

    _add_token_commands(commands, "admin-token", ADMIN, "tokens for the admin API (and /metrics)")
    _add_token_commands(commands, "metrics-token", METRICS,
                        "tokens that read /metrics and nothing else (for Prometheus)")

    agent = commands.add_parser("agent", help="enrolled agents")
    agent_commands = agent.add_subparsers(metavar="ACTION", required=True, parser_class=OneLineParser)
    agent_list = agent_commands.add_parser("list", help="list agents with version and last report")
    agent_list.add_argument("--school", help="SCHOOL or BOARD/SCHOOL")
    agent_list.set_defaults(run=cmd_agent_list)
    revoke = agent_commands.add_parser("revoke", help="revoke an agent's credential (it gets 401)")
    revoke.add_argument("agent", help="BOARD/SCHOOL/AGENT, or SCHOOL/AGENT")
    revoke.set_defaults(run=cmd_agent_revoke)

    settings = commands.add_parser("agent-settings", help="settings the collector holds for "
                                   "agents (a partial agent config; the agent's file wins)")
    settings_commands = settings.add_subparsers(metavar="ACTION", required=True,
                                                parser_class=OneLineParser)
    settings_set = settings_commands.add_parser("set", help="merge KEY=VALUE settings, e.g. "
                                                "probes.bandwidth.interval=4h")
    settings_show = settings_commands.add_parser("show", help="print the settings as JSON")
    for sub in (settings_set, settings_show):
        sub.add_argument("--school", required=True, help="SCHOOL or BOARD/SCHOOL")
        sub.add_argument("--agent", help="one agent's id (default: every agent of the school)")
    settings_set.add_argument("assignments", nargs="+", metavar="KEY=VALUE",
                              help="dotted key; the value is JSON when it parses, else text")
    settings_set.set_defaults(run=cmd_settings_set)
    settings_show.set_defaults(run=cmd_settings_show)

    rooms = commands.add_parser("rooms", help="a school's rooms: Wi-Fi coverage grade now, and "
                                "the observations, median signal and share per grade over a period")
    rooms.add_argument("--school", required=True, help="SCHOOL id, or BOARD/SCHOOL")
    rooms.add_argument("--since", default="30d", help="the period, back from now: e.g. 7d, 30d "
                       "(default 30d)")
    rooms.add_argument("--hours", choices=("school", "outside", "all"), default="all",
                       help="the period's figures over the observations in school hours, outside "
                       "them, or all (default all), by the school's calendar; the grade now is "
                       "always the newest observation")
    rooms.add_argument("--json", action="store_true", help="print one JSON object, not a table")
    rooms.set_defaults(run=cmd_rooms)
    imports = commands.add_parser("import", help="read a CSV (or iCalendar) file into the store: "
                                  "contracts, measurements")
    import_commands = imports.add_subparsers(metavar="WHAT", required=True, parser_class=OneLineParser)
    exports = commands.add_parser("export", help="write what the store holds as CSV")
    export_commands = exports.add_subparsers(metavar="WHAT", required=True, parser_class=OneLineParser)
    # Commands of their own modules: each adds its parsers to `commands`, and its kinds of
    # file to `import` and `export`.
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(commands, import_commands, export_commands)
    _accept_db_everywhere(parser)
    return parser


# Contracts and school details (import/export), rooms, measurement imports, the calendar,
# verdicts, retention and backup, incidents and their evidence packs.
COMMAND_MODULES = ("collector.cli_registry", "collector.cli_rooms", "collector.cli_measurements",
                   "collector.cli_calendar", "collector.cli_verdicts", "collector.cli_retention",
                   "collector.cli_incidents", "collector.cli_evidence", "collector.cli_users")

DB_HELP = ("database URL: sqlite:///FILE (default: $SCHOOLNET_DB, else "
           "sqlite:///schoolnet-collector.db) or postgresql://USER@HOST/DB")


def _accept_db_everywhere(parser: argparse.ArgumentParser) -> None:
    """Every command takes ``--db`` after its name too (``board list --db URL``), as well
    as before it. SUPPRESS: when not given there, the value from before the name stays."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                _accept_db_everywhere(sub)
            return
    if parser.prog != PROG:
        parser.add_argument("--db", default=argparse.SUPPRESS, metavar="URL", help=DB_HELP)


# --- commands ----------------------------------------------------------------------------


def _engine(args: argparse.Namespace) -> Any:
    from collector.db.engine import open_engine
    from collector.db.migrate import upgrade

    engine = open_engine(_settings(args).db)
    upgrade(engine)
    return engine


def _settings(args: argparse.Namespace) -> Any:
    from collector.settings import CollectorSettings

    try:
        overrides = {"db": args.db} if args.db else {}
        return CollectorSettings(**overrides)
    except ValidationError as exc:
        raise UsageError("settings: " + describe_validation_error(exc)) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from collector.server import make_config, serve

    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    for path in (args.tls_cert, args.tls_key):
        if path and not path.is_file():
            raise UsageError(f"{path} is not a readable file")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a port number (1-65535)")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    settings = _settings(args)
    # Migrate once here, not racing in every worker; the workers read the settings from
    # the environment.
    _engine(args).dispose()
    os.environ["SCHOOLNET_DB"] = settings.db
    scheme = "https" if args.tls_cert else "http"
    host = f"[{args.host}]" if ":" in args.host else args.host

    def announce() -> None:
        print(f"{PROG}: serving on {scheme}://{host}:{args.port}", flush=True)

    config = make_config(
        host=args.host, port=args.port, workers=args.workers, log_level=args.log_level,
        tls_cert=str(args.tls_cert) if args.tls_cert else None,
        tls_key=str(args.tls_key) if args.tls_key else None,
        forwarded_allow_ips=args.forwarded_allow_ips)
    if not serve(config, announce):
        # uvicorn has logged why (e.g. the port is taken).
        print(f"{PROG}: error: could not serve on {host}:{args.port}", file=sys.stderr)
        return 1
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    _engine(args)
    return 0


def cmd_board_add(args: argparse.Namespace) -> int:
    from collector.registry import add_board

    print(add_board(_engine(args), args.name, args.id))
    return 0


def cmd_board_list(args: argparse.Namespace) -> int:
    from collector.registry import list_boards

    for slug, name in list_boards(_engine(args)):
        print(f"{slug}\t{name}")
    return 0


def cmd_school_add(args: argparse.Namespace) -> int:
    from collector.registry import add_school

    print(add_school(_engine(args), args.board, args.name, args.id))
    return 0


def cmd_school_list(args: argparse.Namespace) -> int:
    from collector.registry import list_schools

    for board, slug, name in list_schools(_engine(args), args.board):
        print(f"{board}\t{slug}\t{name}")
    return 0


def cmd_enroll_code(args: argparse.Namespace) -> int:
    from collector.registry import create_enrolment_code

    valid_for = _duration(args.valid_for, "--valid-for")
    print(create_enrolment_code(_engine(args), args.school, args.uses, valid_for))
    return 0


# Token scopes as collector/registry.py names them (not imported: the parser is built
# without loading the store's modules).
ADMIN, METRICS = "admin", "metrics"


def _add_token_commands(commands: Any, name: str, scope: str, help_text: str) -> None:
    """``NAME create|list|revoke``: the same three actions for admin and metrics tokens."""
    parser = commands.add_parser(name, help=help_text)
    actions = parser.add_subparsers(metavar="ACTION", required=True, parser_class=OneLineParser)
    actions.add_parser("create", help=f"print a new {scope} token alone (shown once; its id goes to "
                       "stderr)").set_defaults(run=cmd_token_create, scope=scope)
    actions.add_parser("list", help=f"list {scope} tokens: id, created, active or revoked"
                       ).set_defaults(run=cmd_token_list, scope=scope)
    revoke = actions.add_parser("revoke", help=f"revoke a {scope} token (it gets 401 from then on)")
    revoke.add_argument("token", metavar="ID|-", help="the token's id (see list), or - to read the "
                        "token itself from stdin")
    revoke.set_defaults(run=cmd_token_revoke, scope=scope)


def cmd_token_create(args: argparse.Namespace) -> int:
    from collector.registry import create_token

    token_id, token = create_token(_engine(args), args.scope)
    print(token)
    print(f"{args.scope} token {token_id} created; revoke it with: {PROG} {args.scope}-token revoke "
          f"{token_id}", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from collector.registry import list_tokens

    for row in list_tokens(_engine(args), args.scope):
        state = f"revoked {_utc(row['revoked_at'])}" if row["revoked_at"] else "active"
        print(f"{row['id']}\tcreated {_utc(row['created_at'])}\t{state}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from collector.registry import is_token_id, revoke_token

    # The token itself only through stdin: on the command line it would show in `ps`.
    ref = sys.stdin.readline().strip() if args.token == "-" else args.token
    if not ref or (args.token != "-" and not is_token_id(ref)):
        raise UsageError(f"give the token's id (see: {args.scope}-token list), or - and the token "
                         "on stdin")
    token_id = revoke_token(_engine(args), args.scope, ref)
    print(f"revoked {args.scope} token {token_id}", file=sys.stderr)
    return 0


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def cmd_agent_list(args: argparse.Namespace) -> int:
    from collector.registry import list_agents

    for row in list_agents(_engine(args), args.school):
        state = "revoked" if row["revoked_at"] else "active"
        print(f"{row['board']}/{row['school']}/{row['agent']}\t{state}\t"
              f"version={row['version'] or '-'}\tlast_report={row['last_report_at'] or '-'}")
    return 0


def cmd_agent_revoke(args: argparse.Namespace) -> int:
    from collector.registry import revoke_agent

    revoke_agent(_engine(args), args.agent)
    print(f"revoked {args.agent}", file=sys.stderr)
    return 0


def cmd_settings_set(args: argparse.Namespace) -> int:
    from collector.agent_settings import parse_assignments, update_settings

    document = update_settings(_engine(args), args.school, args.agent,
                               parse_assignments(args.assignments))
    print(json.dumps(document, indent=2, sort_keys=True))
    return 0


def cmd_settings_show(args: argparse.Namespace) -> int:
    from collector.agent_settings import show_settings

    print(json.dumps(show_settings(_engine(args), args.school, args.agent), indent=2,
                     sort_keys=True))
    return 0


def cmd_rooms(args: argparse.Namespace) -> int:
    from collector.registry import RegistryError
    from collector.rooms import Thresholds, rooms_table, school_rooms

    since = _duration(args.since, "--since")
    if since <= 0:
        raise UsageError("--since must be longer than zero")
    settings = _settings(args)
    thresholds = Thresholds(settings.wifi_video_dbm, settings.wifi_browsing_dbm)
    engine = _engine(args)
    now = time.time()
    try:
        # A period longer than the epoch (99999d, or digits enough to make infinity) is all
        # of it: from 1970 on, so the JSON never holds -Infinity and the date prints.
        report = school_rooms(engine, args.school, max(now - since, 0.0), now, thresholds,
                              args.hours, settings.timezone)
    except RegistryError as exc:
        # Not a usage error: the command was well formed, the school is not there.
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.as_dict(), indent=2) if args.json else rooms_table(report))
    return 0


def _duration(text: str, option: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


Command = Callable[[argparse.Namespace], int]

# For the command modules (collector/cli_*.py): the store, the settings and durations as
# every command here reads them.
open_store = _engine
load_settings = _settings
duration_option = _duration

if __name__ == "__main__":
    sys.exit(main())

"""`schoolnet-collector` commands for the registry: the contracts CSV (import, export),
a school's connections, school details (with its own incident contact), a board's
policy (with its escalation contact) and its consent to share its schools with analysts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TypeAlias

from agent.cli import OneLineParser

# argparse._SubParsersAction is not subscriptable at run time: annotations only.
Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"


def register(commands: Subcommands, imports: Subcommands, exports: Subcommands) -> None:
    """Add this module's commands to the collector's parser (`imports`, `exports`: the
    actions of `import` and `export`)."""
    contracts_in = imports.add_parser(
        "contracts", help="contracts CSV: boards, schools, their lines and contract terms, one "
        "row per term (see docs/contracts-csv.md); all rows or none")
    contracts_in.add_argument("file", type=Path, metavar="FILE.csv")
    contracts_in.set_defaults(run=cmd_import_contracts)

    contracts_out = exports.add_parser("contracts", help="the contracts CSV, one row per term")
    contracts_out.add_argument("--board", help="only this board's schools")
    contracts_out.add_argument("--output", type=Path, metavar="FILE",
                               help="write here (default: standard output)")
    contracts_out.set_defaults(run=cmd_export_contracts)

    connection = commands.add_parser("connection", help="a school's internet lines and contracts")
    connection_commands = connection.add_subparsers(metavar="ACTION", required=True,
                                                    parser_class=OneLineParser)
    listing = connection_commands.add_parser("list", help="the school's lines with the terms in "
                                             "force today (Mbit/s)")
    listing.add_argument("--school", required=True, help="SCHOOL id, or BOARD/SCHOOL")
    listing.add_argument("--json", action="store_true", help="one JSON object, with every term")
    listing.set_defaults(run=cmd_connection_list)

    board_commands = _actions_of(commands, "board")
    board_set = board_commands.add_parser(
        "set", help="set the board's policy: rule_set=bnetza, capacity.profile=basis, "
        "capacity.margin_ratio=0.5, capacity.per_device_mbps.basis=0.75, "
        "capacity.per_video_participant_mbps=1.5; and who contacts providers about incidents: "
        "escalation=central escalation_name=... escalation_email=... escalation_phone=... (one "
        "central ICT person) or escalation=school (each school's own contact, see school set); "
        "prints the policy with the escalation contact")
    board_set.add_argument("board", help="the board's id")
    board_set.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    board_set.set_defaults(run=cmd_board_set)
    board_show = board_commands.add_parser("show", help="print the board's policy and escalation "
                                           "contact as JSON (speeds in bytes per second)")
    board_show.add_argument("board", help="the board's id")
    board_show.set_defaults(run=cmd_board_show)
    board_share = board_commands.add_parser(
        "share", help="record the board's consent that the cooperative's analysts see its schools "
        "one by one in the comparison report (unshared: only inside aggregates of at least 5 schools)")
    board_share.add_argument("board", help="the board's id")
    board_share.set_defaults(run=cmd_board_share, shared=True)
    board_unshare = board_commands.add_parser(
        "unshare", help="withdraw that consent: analysts see the board's schools only inside aggregates")
    board_unshare.add_argument("board", help="the board's id")
    board_unshare.set_defaults(run=cmd_board_share, shared=False)

    school_commands = _actions_of(commands, "school")
    school_set = school_commands.add_parser(
        "set", help="set school details, as the CSV's columns: school_name, external_id, pupils, "
        "address, postcode, city, region, latitude, longitude, timezone, school_hours=08:30-15:30, "
        "school_days=mon-fri, video_participants, and the school's own contact for incidents: "
        "contact_name, contact_email, contact_phone (KEY= clears one); prints them")
    school_set.add_argument("school", help="SCHOOL id, or BOARD/SCHOOL")
    school_set.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    school_set.set_defaults(run=cmd_school_set)
    school_show = school_commands.add_parser("show", help="print the school's details as JSON")
    school_show.add_argument("school", help="SCHOOL id, or BOARD/SCHOOL")
    school_show.set_defaults(run=cmd_school_show)


def _actions_of(commands: Subcommands, name: str) -> Subcommands:
    """The ACTION subparsers of a command that collector/cli.py defines (board, school)."""
    parser = commands.choices[name]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise LookupError(f"the {name!r} command has no actions")


def cmd_import_contracts(args: argparse.Namespace) -> int:
    from collector.cli import open_store
    from collector.cli_files import print_import_errors, read_text_file
    from collector.contracts import import_contracts
    from collector.contracts_csv import ContractImportError

    text = read_text_file(args.file)
    try:
        report = import_contracts(open_store(args), text, source_name=str(args.file))
    except ContractImportError as exc:
        # Every problem, one per line, so a board can fix the whole sheet in one go.
        print_import_errors(exc.errors, str(exc))
        return 1
    print(report.summary(), file=sys.stderr)
    return 0


def cmd_export_contracts(args: argparse.Namespace) -> int:
    from collector.cli import open_store
    from collector.cli_files import write_output
    from collector.contracts import export_contracts

    write_output(export_contracts(open_store(args), args.board), args.output)
    return 0


def cmd_connection_list(args: argparse.Namespace) -> int:
    from collector.cli import load_settings, open_store
    from collector.contracts import connections_document

    document = connections_document(open_store(args), args.school, load_settings(args).timezone)
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print("connection\tprovider\ttechnology\trole\tdown Mbit/s\tup Mbit/s\tsince")
    for line in document["connections"]:
        current = line["current"]
        speeds = ("-", "-", "-") if current is None else (
            _mbps(current["download_advertised_mbps"]), _mbps(current["upload_advertised_mbps"]),
            current["starts_on"])
        print("\t".join((line["connection"], line["provider"], line["technology"], line["role"],
                         *speeds)))
    return 0


def _mbps(value: float) -> str:
    return f"{value:g}"


def cmd_board_set(args: argparse.Namespace) -> int:
    from collector.cli import UsageError, open_store
    from collector.contracts import ESCALATION_KEYS, policy_assignments, set_board_policy

    policy_keys: list[str] = []
    escalation: dict[str, str] = {}
    for assignment in args.assignments:
        key, sep, value = assignment.partition("=")
        if sep and key.strip() in ESCALATION_KEYS:
            escalation[key.strip()] = value
        elif sep and key.strip().startswith("escalation"):
            raise UsageError(f"unknown escalation key {key.strip()!r}; one of {', '.join(ESCALATION_KEYS)}")
        else:
            policy_keys.append(assignment)
    engine = open_store(args)
    policy = set_board_policy(engine, args.board, policy_assignments(policy_keys), escalation=escalation)
    print(json.dumps(_board_document(engine, args.board, policy), indent=2))
    return 0


def cmd_board_show(args: argparse.Namespace) -> int:
    from collector.cli import open_store
    from collector.contracts import show_board_policy

    engine = open_store(args)
    print(json.dumps(_board_document(engine, args.board, show_board_policy(engine, args.board)), indent=2))
    return 0


def _board_document(engine: Any, board: str, policy: Any) -> dict[str, Any]:
    """The policy document with the board's escalation contact beside it."""
    from collector.contracts import policy_document, show_board_escalation

    return {**policy_document(policy), "escalation": show_board_escalation(engine, board).as_document()}


def cmd_board_share(args: argparse.Namespace) -> int:
    from collector.accounts.sharing import set_board_shared
    from collector.cli import open_store

    board = set_board_shared(open_store(args), args.board, args.shared)
    state = f"shared since {_utc(board.shared_at)}" if board.shared_at is not None else "not shared"
    print(f"{board.slug}: {state}", file=sys.stderr)
    return 0


def _utc(seconds: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def cmd_school_set(args: argparse.Namespace) -> int:
    from collector.cli import UsageError, open_store
    from collector.contracts import set_school_details

    assignments: dict[str, str] = {}
    for assignment in args.assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{assignment!r} is not KEY=VALUE (e.g. school_hours=08:30-15:30)")
        assignments[key.strip()] = value
    print(json.dumps(set_school_details(open_store(args), args.school, assignments), indent=2))
    return 0


def cmd_school_show(args: argparse.Namespace) -> int:
    from collector.cli import open_store
    from collector.contracts import school_details

    print(json.dumps(school_details(open_store(args), args.school), indent=2))
    return 0

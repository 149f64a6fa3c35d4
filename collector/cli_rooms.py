"""``schoolnet-collector import rooms`` / ``export rooms``: a board's rooms as CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TypeAlias

# argparse._SubParsersAction is not subscriptable at run time: annotations only.
Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"


def register(commands: Subcommands, imports: Subcommands, exports: Subcommands) -> None:
    """Add ``rooms`` to ``import`` and ``export``."""
    rooms_in = imports.add_parser("rooms", help="a CSV of rooms (board, school, room, room_name): "
                                  "create and name them before agents and surveys use them")
    rooms_in.add_argument("file", type=Path, metavar="FILE.csv")
    rooms_in.set_defaults(run=cmd_import_rooms)
    rooms_out = exports.add_parser("rooms", help="every school's rooms as CSV")
    rooms_out.add_argument("--board", help="only this board's schools")
    rooms_out.add_argument("--output", type=Path, help="write to FILE (default: standard output)")
    rooms_out.set_defaults(run=cmd_export_rooms)


def cmd_import_rooms(args: argparse.Namespace) -> int:
    from collector.cli import PROG, UsageError, open_store
    from collector.cli_registry import _read_text
    from collector.rooms_csv import RoomImportError, import_rooms

    text = _read_text(args.file, UsageError)
    try:
        report = import_rooms(open_store(args), text, source_name=str(args.file))
    except RoomImportError as exc:
        for line in str(exc).splitlines():
            print(f"{PROG}: error: {line}", file=sys.stderr)
        print(f"{PROG}: nothing was imported ({len(exc.errors)} problems)", file=sys.stderr)
        return 1
    print(report.line(), file=sys.stderr)
    return 0


def cmd_export_rooms(args: argparse.Namespace) -> int:
    from collector.cli import UsageError, open_store
    from collector.rooms_csv import export_rooms

    text = export_rooms(open_store(args), args.board)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--output {args.output}: {exc.strerror}") from None
    return 0

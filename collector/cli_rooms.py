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
    from collector.cli import open_store
    from collector.cli_files import print_import_errors, read_text_file
    from collector.rooms_csv import RoomImportError, import_rooms

    text = read_text_file(args.file)
    try:
        report = import_rooms(open_store(args), text, source_name=str(args.file))
    except RoomImportError as exc:
        print_import_errors(exc.errors, str(exc))
        return 1
    print(report.line(), file=sys.stderr)
    return 0


def cmd_export_rooms(args: argparse.Namespace) -> int:
    from collector.cli import open_store
    from collector.cli_files import write_output
    from collector.rooms_csv import export_rooms

    write_output(export_rooms(open_store(args), args.board), args.output)
    return 0

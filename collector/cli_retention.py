"""`schoolnet-collector` commands: `retention run` and `backup FILE`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, TypeAlias

from agent.cli import OneLineParser

# argparse._SubParsersAction is not subscriptable at run time: annotations only.
Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"


def register(commands: Subcommands, imports: Subcommands, exports: Subcommands) -> None:
    """Add this module's commands to the collector's parser (`imports`, `exports`: the
    actions of `import` and `export`)."""
    retention = commands.add_parser(
        "retention", help="raw records older than SCHOOLNET_RETENTION (default 396d) go; "
        "their daily aggregates stay")
    actions = retention.add_subparsers(metavar="ACTION", required=True, parser_class=OneLineParser)
    run = actions.add_parser("run", help="aggregate the days about to go (and the last 7), then "
                             "delete the raw rows before the cut-off; prints what it did")
    run.add_argument("--dry-run", action="store_true", help="say what would be done; change nothing")
    run.add_argument("--json", action="store_true", help="print one JSON object, not lines")
    run.set_defaults(run=cmd_retention_run)

    backup = commands.add_parser(
        "backup", help="copy the SQLite store to FILE while it serves (consistent, self-contained)")
    backup.add_argument("file", type=Path, metavar="FILE", help="the copy to write")
    backup.add_argument("--force", action="store_true", help="replace FILE when it exists")
    backup.set_defaults(run=cmd_backup)


def cmd_retention_run(args: argparse.Namespace) -> int:
    from collector.cli import load_settings, open_store
    from collector.retention import apply_retention

    settings = load_settings(args)
    report = apply_retention(open_store(args), settings, time.time(), dry_run=args.dry_run)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        for line in report.lines():
            print(line)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from collector.backup import backup
    from collector.cli import UsageError, load_settings, open_store

    # Refused before anything is opened (no driver or server needed to say so).
    try:
        backend = make_url(load_settings(args).db).get_backend_name()
    except Exception:
        backend = ""  # open_store names what is wrong with the URL
    if backend == "postgresql":
        raise UsageError("backup copies a SQLite store; for PostgreSQL use pg_dump")
    result = backup(open_store(args), args.file, force=args.force)
    print(f"{result.path}: {result.size_bytes} bytes, integrity ok"
          + (" (copied in one step: the store kept changing)" if result.one_step else ""))
    for table, count in result.rows.items():
        print(f"{table}\t{count}")
    return 0

"""`schoolnet-collector` commands: bandwidth results in and out as CSV.

``import measurements FILE.csv --school S`` reads a board's historical speed tests (our
format or Speedtest Tracker's export; docs/measurements-csv.md); ``export measurements``
writes the school's results in our format, which the import reads back.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TypeAlias

# argparse._SubParsersAction is not subscriptable at run time: annotations only.
Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"

PROG = "schoolnet-collector"


def register(commands: Subcommands, imports: Subcommands, exports: Subcommands) -> None:
    """Add this module's commands to the collector's parser (`imports`, `exports`: the
    actions of `import` and `export`)."""
    from collector.measurements_csv import FORMATS

    read = imports.add_parser(
        "measurements", help="historical speed tests from a CSV file: ours, or Speedtest "
        "Tracker's export (see docs/measurements-csv.md); a re-import adds nothing")
    read.add_argument("file", type=Path, metavar="FILE.csv")
    read.add_argument("--school", required=True, help="SCHOOL id, or BOARD/SCHOOL")
    read.add_argument("--connection", help="the connection (line) the tests ran over, for rows "
                      "that do not name one")
    read.add_argument("--format", choices=FORMATS, default="auto",
                      help="the file's format (default: told by its header)")
    read.add_argument("--timezone", metavar="ZONE",
                      help="the zone of times without a UTC offset (default: the school's for "
                      "our format, UTC for Speedtest Tracker's)")
    read.set_defaults(run=cmd_import_measurements)

    write = exports.add_parser("measurements", help="a school's bandwidth results as CSV "
                               "(our format, times in the school's zone)")
    write.add_argument("--school", required=True, help="SCHOOL id, or BOARD/SCHOOL")
    write.add_argument("--since", help="from this date (YYYY-MM-DD, the school's midnight) or "
                       "for this long back from now (e.g. 30d); default: everything")
    write.add_argument("--output", type=Path, metavar="FILE", help="write here (default: stdout)")
    write.set_defaults(run=cmd_export_measurements)


def cmd_import_measurements(args: argparse.Namespace) -> int:
    from collector.cli import UsageError, load_settings, open_store
    from collector.measurements_csv import CsvErrors, import_measurements

    if not args.file.is_file():
        raise UsageError(f"{args.file} is not a readable file")
    settings = load_settings(args)
    try:
        report = import_measurements(open_store(args), args.file, args.school, args.connection,
                                     args.format, settings.timezone, args.timezone)
    except CsvErrors as exc:
        for error in exc.errors:
            print(f"{PROG}: error: {error}", file=sys.stderr)
        print(f"{PROG}: nothing imported ({len(exc.errors)} errors)", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


def cmd_export_measurements(args: argparse.Namespace) -> int:
    from collector.cli import duration_option, load_settings, open_store
    from collector.cli_files import write_output
    from collector.measurements_csv import export_measurements, since_option
    from collector.registry import resolve_school
    from collector.results import school_zone

    settings = load_settings(args)
    engine = open_store(args)
    since = None
    if args.since:
        with engine.connect() as conn:
            zone = school_zone(conn, resolve_school(conn, args.school)[0], settings.timezone)
        since = since_option(args.since, time.time(), zone,
                             lambda text: duration_option(text, "--since"))
    write_output(export_measurements(engine, args.school, since, settings.timezone), args.output)
    return 0

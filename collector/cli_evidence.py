"""``schoolnet-collector evidence ID``: an incident's evidence pack as HTML, PDF, CSV or JSON,
or (``--link``) a share link to it for the provider's helpdesk, or (``--revoke-links``) the
end of every such link (the CLI twin of DELETE /api/v1/admin/incidents/ID/share)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TypeAlias

from collector.incidents.action_input import MAX_ID

Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"


def register(commands: Subcommands, imports: Subcommands, exports: Subcommands) -> None:
    from collector.incidents.export import TABLES

    evidence = commands.add_parser(
        "evidence", help="an incident's evidence pack (html, pdf, csv, json), or a share link to it"
    )
    evidence.add_argument("incident", type=incident_number, help="the incident's number")
    evidence.add_argument(
        "--format",
        choices=("html", "pdf", "csv", "json"),
        default="html",
        help="what to write (default html)",
    )
    evidence.add_argument(
        "--table",
        choices=TABLES,
        default="measurements",
        help="for --format csv: which table (default measurements)",
    )
    evidence.add_argument("--lang", choices=("nl", "en"), default="nl", help="language (default nl)")
    evidence.add_argument(
        "-o", "--output", type=Path, help="write to this file (pdf needs it unless stdout is not a terminal)"
    )
    links = evidence.add_mutually_exclusive_group()
    links.add_argument(
        "--link",
        action="store_true",
        help="print a share link instead (no token needed to open it; end it with --revoke-links)",
    )
    links.add_argument(
        "--revoke-links",
        action="store_true",
        help="revoke every share link of the incident instead, and print how many were",
    )
    evidence.add_argument("--valid-for", default="14d", help="with --link: how long it works (default 14d)")
    evidence.set_defaults(run=cmd_evidence)


def incident_number(text: str) -> int:
    """An incident's number: a positive SQL integer (a larger one would overflow SQLite)."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an incident number") from None
    if not 1 <= number <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{text!r} is not an incident number (1 to {MAX_ID})")
    return number


def cmd_evidence(args: argparse.Namespace) -> int:
    from collector.cli import PROG, UsageError, duration_option, load_settings, open_store
    from collector.db.engine import writer
    from collector.incidents.evidence import IncidentNotFound, evidence_document
    from collector.incidents.export import evidence_csv, evidence_json
    from collector.incidents.shares import create_share, incident_url

    settings = load_settings(args)
    engine = open_store(args)
    now = time.time()
    if args.revoke_links:
        return _revoke_links(engine, args.incident, now)
    if args.link:
        valid_for = duration_option(args.valid_for, "--valid-for")
        try:
            with writer(engine) as conn, conn.begin():
                secret = create_share(conn, args.incident, valid_for, now)
        except LookupError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 1
        except ValueError as exc:
            raise UsageError(f"--valid-for: {exc}") from None
        print(incident_url(settings.public_url, args.incident, secret))
        return 0
    if args.format == "pdf" and args.output is None and sys.stdout.isatty():
        raise UsageError("a PDF is binary: write it with -o FILE (or redirect stdout)")
    try:
        with engine.connect() as conn:
            document = evidence_document(conn, args.incident, now, settings.timezone)
            if args.format == "csv":
                body: str | bytes = evidence_csv(document, args.table, conn, settings.timezone)
            elif args.format == "json":
                body = evidence_json(document)
            elif args.format == "pdf":
                from collector.incidents.pdf import evidence_pdf

                body = evidence_pdf(document, args.lang)
            else:
                from collector.incidents.render import evidence_html

                body = evidence_html(document, args.lang)
    except IncidentNotFound as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    data = body.encode() if isinstance(body, str) else body
    if args.output is not None:
        try:
            args.output.write_bytes(data)
        except OSError as exc:
            raise UsageError(f"-o {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def _revoke_links(engine: Any, incident_pk: int, now: float) -> int:
    from sqlalchemy import select

    from collector.cli import PROG
    from collector.db.engine import writer
    from collector.db.schema import incidents
    from collector.incidents.shares import revoke_shares

    with writer(engine) as conn, conn.begin():
        # A mistyped number says so, rather than "revoked 0" as if the links were gone.
        if conn.execute(select(incidents.c.id).where(incidents.c.id == incident_pk)).first() is None:
            print(f"{PROG}: error: no incident {incident_pk}", file=sys.stderr)
            return 1
        count = revoke_shares(conn, incident_pk, now)
    print(f"revoked {count} share link{'' if count == 1 else 's'} of incident {incident_pk}")
    return 0

"""``schoolnet-collector incidents detect`` and ``incident list|show|ack|escalate|resolve|
dismiss|note|ticket|notify``: incidents from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TypeAlias

from agent.cli import OneLineParser

# argparse._SubParsersAction is not subscriptable at run time: annotations only.
Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"

STATE_CHOICES = ("open", "acknowledged", "escalated", "resolved", "dismissed", "active", "all")
# CLI word → store action
ACTION_WORDS = {"ack": "acknowledge", "escalate": "escalate", "resolve": "resolve",
                "dismiss": "dismiss", "note": "note", "ticket": "ticket"}


def register(commands: Subcommands, imports: Subcommands, exports: Subcommands) -> None:
    """Add ``incidents`` and ``incident`` to the collector's parser."""
    incidents = commands.add_parser("incidents", help="detect incidents now (the server also does "
                                    "every SCHOOLNET_INCIDENT_INTERVAL)")
    incidents_actions = incidents.add_subparsers(metavar="ACTION", required=True,
                                                 parser_class=OneLineParser)
    detect = incidents_actions.add_parser("detect", help="run detection over every school once, "
                                          "send due notifications; prints what changed")
    detect.add_argument("--json", action="store_true", help="print one JSON object, not lines")
    detect.set_defaults(run=cmd_detect)

    incident = commands.add_parser("incident", help="incidents: list, show, and act on one")
    actions = incident.add_subparsers(metavar="ACTION", required=True, parser_class=OneLineParser)
    listing = actions.add_parser("list", help="incidents, newest first")
    listing.add_argument("--board", help="only this board's")
    listing.add_argument("--school", help="only this school's (SCHOOL or BOARD/SCHOOL)")
    listing.add_argument("--state", choices=STATE_CHOICES, default="active",
                         help="which (default active: open, acknowledged or escalated)")
    listing.add_argument("--json", action="store_true", help="print JSON, not a table")
    listing.set_defaults(run=cmd_list)
    show = actions.add_parser("show", help="one incident with its events and time to restore")
    show.add_argument("id", type=incident_id, metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=cmd_show)
    helps = {"ack": "acknowledge: someone is on it", "escalate": "reported to the provider "
             "(--ticket: its ticket number)", "resolve": "resolved by hand (--note required)",
             "dismiss": "not an incident (--reason required)", "note": "add a note (--note)",
             "ticket": "set the provider's ticket number (--ticket)"}
    for word, text in helps.items():
        sub = actions.add_parser(word, help=text)
        sub.add_argument("id", type=incident_id, metavar="ID")
        sub.add_argument("--by", help="who does it (recorded with the event)")
        sub.add_argument("--note", help="a note for the record")
        if word in ("escalate", "ticket"):
            sub.add_argument("--ticket", required=word == "ticket", help="the provider's ticket number")
        if word == "dismiss":
            sub.add_argument("--reason", help="why this is not an incident")
        sub.add_argument("--json", action="store_true", help="print the incident as JSON afterwards")
        sub.set_defaults(run=cmd_action, action=ACTION_WORDS[word])
    notify = actions.add_parser("notify", help="send the notifications that are due now")
    notify.set_defaults(run=cmd_notify)


def incident_id(text: str) -> int:
    """argparse's type of an incident id: a one-line usage error (exit 2) for anything else."""
    from collector.incidents.action_input import InputError, parse_id

    try:
        return parse_id(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_detect(args: argparse.Namespace) -> int:
    from collector.cli import load_settings, open_store
    from collector.incidents.run import run_once

    settings = load_settings(args)
    report, delivered = run_once(open_store(args), settings, time.time())
    if args.json:
        print(json.dumps({**report.as_dict(), "notifications": vars(delivered)}, indent=2))
    else:
        for line in report.lines():
            print(line)
        print(delivered.line())
    return 1 if report.errors else 0


def cmd_list(args: argparse.Namespace) -> int:
    from collector.cli import PROG, load_settings, open_store
    from collector.incidents.action_input import check_board
    from collector.incidents.model import ACTIVE_STATES
    from collector.incidents.views import list_incidents
    from collector.registry import RegistryError

    settings = load_settings(args)
    states = (None if args.state == "all" else ACTIVE_STATES if args.state == "active" else (args.state,))
    engine = open_store(args)
    now = time.time()
    try:
        with engine.connect() as conn:
            check_board(conn, args.board)
            views = list_incidents(conn, args.board, args.school, states,
                                   default_timezone=settings.timezone, now=now)
    except RegistryError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([view.as_dict() for view in views], indent=2))
        return 0
    for view in views:
        where = f"{view.board}/{view.school}" if view.school else f"{view.provider} (provider-wide)"
        started = local_time(view.started_at, view.timezone)
        print(f"{view.id}\t{view.state}\t{view.kind}\t{where}\tstarted {started}\turgency {view.urgency}\t"
              f"{view.impact}" + (f"\tticket {view.ticket}" if view.ticket else ""))
    if not views:
        print("no incidents", file=sys.stderr)
    else:  # the zone once, beside the table (stdout stays one incident a line)
        print(f"times in {', '.join(sorted({view.timezone for view in views}))}", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from collector.cli import PROG, load_settings, open_store
    from collector.incidents.errors import UnknownIncident
    from collector.incidents.views import get_incident

    settings = load_settings(args)
    try:
        with open_store(args).connect() as conn:
            view = get_incident(conn, args.id, default_timezone=settings.timezone, now=time.time())
    except UnknownIncident as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(view.as_dict(), indent=2) if args.json else incident_text(view))
    return 0


def cmd_action(args: argparse.Namespace) -> int:
    from collector.cli import PROG, UsageError, load_settings, open_store
    from collector.incidents.action_input import MAX_BY, MAX_TICKET, InputError, check_line, check_text
    from collector.incidents.errors import IncidentError
    from collector.incidents.lifecycle import perform
    from collector.incidents.notify import Channels

    settings = load_settings(args)
    try:  # the API's limits: what one front end refuses, the other does too
        by = check_line("--by", args.by, MAX_BY)
        note = check_text("--note", args.note)
        ticket = check_line("--ticket", getattr(args, "ticket", None), MAX_TICKET)
        reason = check_text("--reason", getattr(args, "reason", None))
    except InputError as exc:
        raise UsageError(str(exc)) from None
    actor = f"{by} (command line)" if by else "command line"
    try:
        view = perform(open_store(args), args.id, args.action, actor, note=note, ticket=ticket, reason=reason,
                       now=time.time(), channels=Channels.from_settings(settings),
                       default_timezone=settings.timezone)
    except IncidentError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(view.as_dict(), indent=2))
    else:
        print(f"incident {view.id}: {view.state}" + (f", ticket {view.ticket}" if view.ticket else ""))
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    from collector.cli import load_settings, open_store
    from collector.incidents.notify import deliver_due

    delivered = deliver_due(open_store(args), load_settings(args), time.time())
    print(delivered.line())
    return 0


def incident_text(view: Any) -> str:
    """``incident show``: every time in the school's zone, as the evidence pack and the
    detector's sentences write them ("Tue 3 Mar 2026 10:15 (CET)"); the zone said once."""
    from collector.incidents.sentences import say
    from collector.incidents.text import duration

    zone = view.timezone

    def at(seconds: float) -> str:
        return local_time(seconds, zone)

    where = (f"{view.board}/{view.school} ({view.school_name})" if view.school
             else f"{view.provider}: provider-wide")
    lines = [f"incident {view.id}: {view.kind} at {where}, {view.state}",
             f"  times in {zone}",
             f"  responsible {view.responsible}" + (f" ({view.provider})" if view.provider else ""),
             f"  impact {view.impact}, urgency {view.urgency}",
             f"  started {at(view.started_at)}, detected {at(view.detected_at)}, last evidence "
             f"{at(view.last_evidence_at)}"]
    for reason in view.assessment.get("reasons", []):
        lines.append(f"  - {reason.get('text') if isinstance(reason, dict) else reason}")
    if view.ticket:
        lines.append(f"  provider's ticket {view.ticket}")
    restore = view.restore
    if restore["wall_seconds"] is not None:
        so_far = " so far" if restore["ongoing"] else ""
        taken = f"  time to restore{so_far}: {duration(restore['wall_seconds'], 'en')}"
        if restore["sla_restore_seconds"] is not None:
            # Only a contract's restore time has an SLA clock to count on.
            used = duration(restore["sla_seconds"], "en") if restore["sla_seconds"] is not None else "?"
            verdict = {True: "met", False: "missed", None: "not yet known"}[restore["met"]]
            taken += (f" wall, {used} on the SLA clock ({restore['sla_clock']}) against "
                      f"{duration(restore['sla_restore_seconds'], 'en')} allowed: {verdict}")
        lines.append(taken)
    if view.closed_at:
        lines.append(f"  closed {at(view.closed_at)} ({view.resolution}): {view.resolution_note or ''}")
    if view.parent_id:
        lines.append(f"  part of provider-wide incident {view.parent_id}")
    if view.children:
        lines.append(f"  schools' incidents: {', '.join(str(c) for c in view.children)}")
    for corroboration in view.findings.get("corroboration", []):
        lines.append(f"  evidence: {say(corroboration, 'en')}")
    lines.append("  events:")
    for event in view.events:
        move = ""
        if event.to_state is not None and event.from_state != event.to_state:
            move = f" {event.from_state} → {event.to_state}" if event.from_state else f" → {event.to_state}"
        lines.append(f"    {at(event.at)} {event.actor}: {event.action}{move}"
                     + (f": {event.note}" if event.note else ""))
    return "\n".join(lines)


def local_time(seconds: float, zone: str) -> str:
    """A time in ``zone`` as the evidence pack writes it: "Tue 3 Mar 2026 10:15 (CET)"."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from collector.incidents.text import when

    local = datetime.fromtimestamp(seconds, ZoneInfo(zone)).isoformat(timespec="seconds")
    return when({"seconds": seconds, "local": local}, "en", zone)

"""``schoolnet-collector verdicts``: a school's lines judged against their contracts."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TypeAlias

# argparse._SubParsersAction is not subscriptable at run time: annotations only.
Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"

MBIT = 125_000.0


def register(commands: Subcommands, imports: Subcommands, exports: Subcommands) -> None:
    """Add ``verdicts`` to the collector's parser."""
    verdicts = commands.add_parser(
        "verdicts",
        help="judge a school's lines against their contracts over a window: medians, 80/80, "
        "the board's rule set (or another), capacity, availability in school hours")
    verdicts.add_argument("--school", required=True, help="SCHOOL id, or BOARD/SCHOOL")
    verdicts.add_argument("--rule-set", choices=["acm", "bnetza", "fcc", "giga", "all"],
                          help="the rules to judge by (default: the board's, else acm); all: every one")
    verdicts.add_argument("--window", help="the period, back from now: e.g. 7d, 30d "
                          "(default: SCHOOLNET_VERDICT_WINDOW, 30d)")
    verdicts.add_argument("--hours", choices=["school", "outside", "all"], default="all",
                          help="which measurements the rule sets judge: in school hours, outside "
                          "them, or all (default all; the summaries show all three)")
    verdicts.add_argument("--json", action="store_true", help="print one JSON object, not a summary")
    verdicts.set_defaults(run=cmd_verdicts)


def cmd_verdicts(args: argparse.Namespace) -> int:
    from collector.cli import PROG, UsageError, duration_option, load_settings, open_store
    from collector.registry import RegistryError
    from collector.school_verdicts import school_verdicts

    settings = load_settings(args)
    window = duration_option(args.window, "--window") if args.window else settings.verdict_window
    if window <= 0:
        raise UsageError("--window must be longer than zero")
    engine = open_store(args)
    try:
        document = school_verdicts(
            engine, args.school, window=window, now=time.time(),
            rule_set=None if args.rule_set in (None, "all") else args.rule_set,
            all_rule_sets=args.rule_set == "all", hours=args.hours,
            default_timezone=settings.timezone)
    except RegistryError as exc:
        # Well formed, but the school is not there: not a usage error.
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(document, indent=2) if args.json else verdicts_text(document))
    return 0


def verdicts_text(document: dict[str, Any]) -> str:
    """The verdicts for a person at a terminal: per line, the rule sets' outcomes and the
    medians that matter, in Mbit/s."""
    window = document["window"]
    lines = [f"{document['board']}/{document['school']}: {window['start']} to {window['end']} "
             f"({document['timezone']})"]
    if not document["connections"]:
        lines.append("  no connections registered: import the contracts first "
                     "(schoolnet-collector import contracts FILE.csv)")
    for line in document["connections"]:
        terms = line["terms_now"]
        advertised = (f"{_mbit(terms['download_advertised_bytes_per_second'])}/"
                      f"{_mbit(terms['upload_advertised_bytes_per_second'])} Mbit/s advertised"
                      if terms else "no contract in force today")
        results = line["results"]
        days = f"{results['days']} day" + ("" if results["days"] == 1 else "s")
        lines.append(f"  {line['connection']} ({line['provider']}, {line['technology']}, "
                     f"{line['role']}): {advertised}; {results['valid']} valid of "
                     f"{results['total']} results on {days}")
        for direction in ("download", "upload"):
            for hours in ("school", "all"):
                summary = line[direction][hours]
                lines.append(f"    {direction:8} {hours + ' hours' if hours == 'school' else 'overall':12} "
                             f"n={summary['n']:<4} median {_ratio(summary['median_ratio'])} of "
                             f"advertised {_interval(summary['median_ratio_interval'])}, "
                             f"80/80 {_ratio(summary['ratio_80_80'])}")
        for verdict in line["verdicts"]:
            why = f" ({verdict['reason']})" if verdict.get("reason") else ""
            lines.append(f"    {verdict['rule_set']}: {verdict['outcome']}{why}")
        lines.append(_capacity_text(line["capacity"]))
    availability = document["availability_school_hours"]
    if availability["all_outages"] is not None:
        lines.append(f"  availability in school hours: {availability['all_outages']:.4%} "
                     f"(provider's side only: {availability['provider_outages']:.4%})")
    unattributed = document["unattributed_results"]
    if unattributed["count"]:
        lines.append(f"  {unattributed['count']} results not attributed: {unattributed['why']}")
    return "\n".join(lines)


def _capacity_text(capacity: dict[str, Any]) -> str:
    peak = capacity["peak_concurrent_devices"]
    if peak is None:
        reasons = [profile["reason"] for profile in capacity["profiles"].values()]
        reason = reasons[0] if reasons else "no capacity profiles"
        return f"    capacity: no verdict ({reason})"
    verdicts = []
    for name, profile in capacity["profiles"].items():
        enough = profile["measured_sufficient"]
        word = "?" if enough is None else "enough" if enough else "too little"
        verdicts.append(f"{name} {word} (needs {_mbit(profile['required_bytes_per_second'])} Mbit/s)")
    return (f"    capacity: peak {peak} devices in school hours, median download "
            f"{_mbit(capacity['median_download_bytes_per_second'])} Mbit/s: {', '.join(verdicts)}")


def _mbit(value: float | None) -> str:
    return "?" if value is None else f"{value / MBIT:g}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _interval(interval: list[float] | None) -> str:
    return "(too few for a 95 % interval)" if interval is None else (
        f"(95 % interval {interval[0]:.0%}-{interval[1]:.0%})")

"""``schoolnet-agent survey``: the walk from room to room, and ``survey import`` of a capture.

Both make ``survey`` records, kept in the outbox like every other record and delivered at
once when the collector answers (else by the daemon, or the next command, later). With
``--json`` the records are printed instead, and nothing is kept or sent.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

IMPORT_HELP = ("turn a capture made on a classroom laptop into the room's survey record: "
               "'netsh wlan show interfaces' (Windows), 'iw dev IF link' or 'iw dev IF station "
               "dump' or 'nmcli dev wifi list' or /proc/net/wireless (Linux), 'system_profiler "
               "SPAirPortDataType' or 'sudo wdutil info' (macOS); the format is detected. The "
               "record is dated when it is imported.")


def add_survey_parser(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    survey = commands.add_parser(
        "survey", help="walk from room to room with this laptop: asks each room's name, takes "
        "samples, shows the room's Wi-Fi grade at once, and records it for the collector")
    survey.add_argument("--samples", type=_positive_int, default=5,
                        help="link readings per room (default 5)")
    survey.add_argument("--every", default="2s", help="time between readings (default 2s)")
    survey.add_argument("--no-scan", action="store_true",
                        help="do not scan for the school's access points in each room")
    survey.add_argument("--json", action="store_true",
                        help="print each room's record as one JSON line; nothing is kept or sent")
    survey.set_defaults(run=cmd_survey_walk)
    actions = survey.add_subparsers(title="actions", metavar="ACTION", parser_class=parser_class)
    imported = actions.add_parser("import", help=IMPORT_HELP, description=IMPORT_HELP)
    imported.add_argument("file", metavar="FILE", help="the capture, a text file ('-' for stdin)")
    imported.add_argument("--room", required=True, help="the room it was captured in, by id or "
                          "name (a new room is created on first use)")
    imported.add_argument("--json", action="store_true",
                          help="print the parsed record as one JSON object; nothing is kept or sent")
    imported.set_defaults(run=cmd_survey_import)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 1000")
    return value


def school_networks(settings: Any) -> list[str]:
    """The school's network names, which a survey must know: a laptop on a phone's hotspot
    measures the phone, and its name and address must not be recorded."""
    from agent.cli import CommandError

    ssids: list[str] = settings.probes.wifi.ssids
    if not ssids:
        raise CommandError(
            "a survey must know the school's Wi-Fi networks: set probes.wifi.ssids in the config "
            "(or for the whole school on the collector: schoolnet-collector agent-settings set "
            "--school SCHOOL 'probes.wifi.ssids=[\"School WiFi\"]')")
    return ssids


def survey_settings(args: argparse.Namespace) -> Any:
    """The settings, with the collector's for this agent fetched first when it will be sent
    records anyway (the school's network names are usually held there)."""
    from agent.cli import _config, _settings
    from agent.credential import load_credential
    from agent.daemon import refresh

    settings = _settings(args)
    credential = load_credential(settings.state_dir) if not args.json else None
    return refresh(settings, credential, _config(args)) if credential else settings


# --- import ----------------------------------------------------------------------------------


def read_text(path: str, stdin: TextIO = sys.stdin) -> str:
    """A capture as text, whatever wrote it: PowerShell 5's `>` writes UTF-16 with a byte
    order mark, cmd.exe's `>` the console's code page (850 in Western Europe), an older
    Notepad's "ANSI" cp1252, everything else UTF-8."""
    from agent.cli import CommandError

    if path == "-":
        return stdin.read()
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise CommandError(f"{path} does not exist") from None
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        # A capture copied off before PowerShell finished writing it can end mid-character.
        return raw.decode("utf-16", errors="replace")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # A console's text pasted into Notepad and saved as "ANSI" (before Windows 10 1903 its
    # default) is cp1252, not the console's own cp850. Accented letters tell them apart:
    # cp850 has them below 0xA6 (é 0x82, ñ 0xA4), cp1252 from 0xC0 (é 0xE9, ñ 0xF1).
    high = [byte for byte in raw if byte >= 0x80]
    ansi = sum(byte >= 0xC0 for byte in high) > len(high) / 2
    return raw.decode("cp1252" if ansi else "cp850", errors="replace")


def cmd_survey_import(args: argparse.Namespace) -> int:
    from agent.cli import CommandError
    from agent.probes.wifi.formats import read_capture
    from agent.probes.wifi.reading import NotParsable
    from agent.probes.wifi.survey import RoomResult, SurveyError, import_record

    settings = survey_settings(args)
    ssids = school_networks(settings)
    text = read_text(args.file)
    try:
        capture = read_capture(text)
        record = import_record(capture, args.room, ssids)
    except (NotParsable, SurveyError) as exc:
        raise CommandError(f"{args.file}: {exc}") from None
    result = RoomResult(record)
    if args.json:
        print(json.dumps({**record.model_dump(mode="json"), "format": capture.format,
                          "grade": result.grade}))
        return 0
    print(result.summary())
    return _keep_and_deliver(settings, [record])


# --- the walk --------------------------------------------------------------------------------


def cmd_survey_walk(args: argparse.Namespace) -> int:
    from agent.cli import CommandError
    from agent.probes.wifi.source import Unavailable, open_source
    from agent.units import parse_duration

    settings = survey_settings(args)
    school_networks(settings)
    try:
        every = parse_duration(args.every)
    except ValueError as exc:
        raise CommandError(f"--every: {exc}") from None
    if not args.json:
        from agent.daemon import require_credential

        require_credential(settings)  # before the walk, not after it
    config = settings.probes.wifi
    try:
        source = open_source(config)
    except Unavailable as exc:
        raise CommandError(str(exc)) from None
    scanner = None if args.no_scan or not config.scan else (
        lambda: source.scan(trigger=config.trigger_scan))
    keep = None if args.json else (lambda record: _keep(settings, [record]))
    records = walk(sys.stdin, sys.stderr, source.link, scanner, config.ssids, args.samples, every,
                   as_json=args.json, keep=keep)
    if not records:
        raise CommandError("no room was surveyed")
    if args.json:
        return 0
    return _deliver(settings, len(records))


def walk(answers: TextIO, screen: TextIO, sampler: Any, scanner: Any, ssids: list[str],
         samples: int, every: float, as_json: bool = False,
         keep: Callable[[Any], None] | None = None) -> list[Any]:
    """Ask for rooms until an empty answer (or the end of input, or Ctrl-C), survey each,
    show its result at once; return the records. ``keep`` gets each room's record the
    moment it is done, so a walk that ends badly loses none of the rooms already done. A
    room that fails is said and asked for again."""
    records: list[Any] = []
    try:
        _walk(answers, screen, sampler, scanner, ssids, samples, every, as_json, keep, records)
    except KeyboardInterrupt:
        screen.write("\nsurvey ended (Ctrl-C)\n")
    return records


def _walk(answers: TextIO, screen: TextIO, sampler: Any, scanner: Any, ssids: list[str],
          samples: int, every: float, as_json: bool, keep: Callable[[Any], None] | None,
          records: list[Any]) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from agent.probes.wifi.survey import SurveyError, sample_room

    console = Console(file=screen, highlight=False)
    while True:
        screen.write("Room (name or number; an empty line ends the survey): ")
        screen.flush()
        answer = answers.readline()
        if not answer.strip():
            break
        room = answer.strip()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task(f"sampling {room}", total=samples)

            def advance(done: int, task: Any = task) -> None:
                progress.update(task, completed=done)

            try:
                result = sample_room(room, sampler, samples, every, scanner, ssids, progress=advance)
            except SurveyError as exc:
                console.print(f"{room}: {exc}", style="red", markup=False)
                continue
        if keep is not None:
            keep(result.record)
        records.append(result.record)
        if as_json:
            print(json.dumps({**result.record.model_dump(mode="json"), "grade": result.grade}),
                  flush=True)
        console.print(result.summary(), markup=False)


def _keep(settings: Any, records: list[Any]) -> None:
    """Into the outbox: from there nothing surveyed is lost, whatever happens next."""
    from agent.clock import now as clock_now
    from agent.daemon import open_outbox, require_credential

    require_credential(settings)
    outbox = open_outbox(settings)
    try:
        for record in records:
            outbox.add("survey", clock_now(), True, None, record.model_dump(mode="json"))
    finally:
        outbox.close()


def _keep_and_deliver(settings: Any, records: list[Any]) -> int:
    """Into the outbox first (nothing surveyed is lost), then one delivery attempt."""
    _keep(settings, records)
    return _deliver(settings, len(records))


def _deliver(settings: Any, kept: int) -> int:
    """One delivery attempt of what the outbox holds; ``kept`` survey records were added."""
    from agent.daemon import deliver, open_outbox, require_credential

    credential = require_credential(settings)
    outbox = open_outbox(settings)
    try:
        problems = deliver(settings, credential, outbox)
    finally:
        outbox.close()
    count = f"{kept} survey record{'s' if kept != 1 else ''}"
    if problems:
        for problem in problems:
            print(f"schoolnet-agent: {problem}", file=sys.stderr)
        print(f"{count} kept in the outbox; the agent delivers them when the collector answers",
              file=sys.stderr)
        return 1
    print(f"{count} delivered to the collector")
    return 0

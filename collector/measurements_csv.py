"""Historical speed tests from a CSV file, and our results out as one (docs/measurements-csv.md).

Two formats: ours (``schoolnet``: Mbit/s and milliseconds, what a board's spreadsheet
holds) and Speedtest Tracker's CSV export (alexjustesen/speedtest-tracker, which many
schools already run: its ``Download``/``Upload`` columns are bits per second, ``Ping``
milliseconds, ``Created at`` the app's clock, UTC unless its APP_TIMEZONE was changed).

Every row is checked before anything is written; all the errors are reported, as
``FILE:LINE: column: what is wrong``, and a file with one error writes nothing. Each row
has a key (school, time, speeds, server), so importing a file twice - or a file exported
from this store - adds nothing the second time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Engine, select

from collector.attribution import Line, attribute, load_lines
from collector.contracts_csv import text_lines
from collector.db.engine import writer
from collector.db.schema import bandwidth_results, connections
from collector.registry import resolve_school
from collector.results import IMPORT_ATTRIBUTION, load_results, local_date, school_zone

FormatName = Literal["auto", "schoolnet", "speedtest-tracker"]
FORMATS: tuple[FormatName, ...] = ("auto", "schoolnet", "speedtest-tracker")
COLUMNS = ("measured_at", "download_mbps", "upload_mbps", "latency_ms", "server", "backend",
           "connection", "valid", "concurrent_devices")
# Speedtest Tracker's export labels (Filament derives them from the column names).
TRACKER_REQUIRED = ("created at", "download", "upload")
MBIT = 1_000_000 / 8  # bytes per second in one Mbit/s
# A clock a little ahead is a clock; a day ahead is a typo in the year or the zone.
FUTURE_SLACK_SECONDS = 86_400
# A number as spreadsheets and Speedtest Tracker write it: float() alone would also take
# "1_000", "inf", "nan" and digits of other scripts.
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?")
# C0 control characters (NUL above all: PostgreSQL refuses it in text) except tab.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
TRUE_WORDS = {"true", "yes", "1", "y", "ja"}
FALSE_WORDS = {"false", "no", "0", "n", "nee"}
# A school's years of a test every few minutes; a file past it is several files' worth.
MAX_ROWS = 500_000
# Rows written per INSERT inside the one transaction: the row dicts of one chunk are all
# that is held beside the parsed rows.
WRITE_CHUNK = 5_000
# Distinct text cells kept to share (servers, backends: a handful in a real file).
SHARED_TEXTS = 10_000


@dataclass(frozen=True, slots=True)
class ImportRow:
    # slots: half a million of these are held between the check and the write.
    line: int
    measured_at: float
    download_bytes_per_second: float | None
    upload_bytes_per_second: float | None
    latency_seconds: float | None
    server: str
    backend: str
    connection: str | None
    valid: bool
    concurrent_devices: int | None
    # The line's public address where the file says it (Speedtest Tracker's "IP address"):
    # evidence of the line, matched against the connections' networks.
    public_address: str | None = None


@dataclass
class Parsed:
    format: str
    rows: list[ImportRow] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass
class ImportReport:
    format: str
    imported: int = 0
    already_there: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        text = (f"imported {self.imported}, already there {self.already_there}, "
                f"skipped {sum(self.skipped.values())}")
        if self.skipped:
            text += " (" + ", ".join(f"{count} {why}" for why, count in sorted(self.skipped.items())) + ")"
        return f"{text} [format {self.format}]"


class CsvErrors(ValueError):
    """Every bad row of a file, one ``FILE:LINE: column: what`` line each."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


def import_key(school_pk: int, measured_at: float, download: float | None,
               upload: float | None, server: str) -> str:
    """What makes a result the same result. Rounded as the export writes them (ms, and
    Mbit/s to 6 decimals), so an exported file imported again matches its source rows."""
    def mbps(value: float | None) -> str:
        return "" if value is None else f"{value / MBIT:.6f}"

    text = f"{school_pk}|{round(measured_at, 3):.3f}|{mbps(download)}|{mbps(upload)}|{server}"
    return hashlib.sha256(text.encode()).hexdigest()


# --- reading a file ------------------------------------------------------------------------


def read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError as exc:
        raise CsvErrors([f"{path.name}: not UTF-8 text (byte {exc.start}); save it as CSV UTF-8 "
                         "(Excel: Save As, \"CSV UTF-8 (comma delimited)\")"]) from None


def parse(text: str, name: str, fmt: FormatName, zone: ZoneInfo, now: float,
          naive_zone: ZoneInfo | None = None) -> Parsed:
    """Check every row; raise CsvErrors with all that is wrong. ``zone`` is the school's
    (naive times of our format); ``naive_zone`` overrides the zone of naive times."""
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    reader = csv.reader(text_lines(text), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise CsvErrors([f"{name}:1: header: the file is empty"]) from None
    except csv.Error as exc:
        raise CsvErrors([f"{name}:1: header: {exc}"]) from None
    names = [column.strip().lower() for column in header]
    chosen = _detect(names) if fmt == "auto" else fmt
    if chosen is None:
        raise CsvErrors([f"{name}:1: header: not a known format (ours starts with measured_at; "
                         "Speedtest Tracker's export has Created at, Download, Upload)"])
    errors = _header_errors(names, chosen, name)
    if errors:
        raise CsvErrors(errors)
    decimal_comma = delimiter == ";"
    if chosen == "schoolnet":
        row_parser: Callable[[dict[str, str], _Cells], ImportRow | str] = _schoolnet_row
        zone_of_naive = naive_zone or zone
    else:
        row_parser = _tracker_row
        zone_of_naive = naive_zone or ZoneInfo("UTC")
    parsed = Parsed(chosen)
    previous_end = 1
    filled = 0
    # The same server and backend on every row: one string object each, not one per row.
    shared: dict[str, str] = {}
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(f"{name}:{reader.line_num}: {exc}")
            break
        line, previous_end = previous_end + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # a blank line (spreadsheets leave them at the end)
        filled += 1
        if filled > MAX_ROWS:
            raise CsvErrors([f"{name}: more than {MAX_ROWS} rows, the most one file may have: split "
                             "it (by year, for instance) and import the parts one by one"])
        if len(cells) > len(names):
            errors.append(f"{name}:{line}: has {len(cells)} fields, the header has {len(names)}")
            continue
        values = {column: (cells[i].strip() if i < len(cells) else "") for i, column in enumerate(names)}
        context = _Cells(name, line, zone_of_naive, now, decimal_comma, shared)
        outcome = row_parser(values, context)
        if context.errors:
            errors.extend(context.errors)
        elif isinstance(outcome, str):
            parsed.skipped[outcome] += 1
        else:
            parsed.rows.append(outcome)
    if errors:
        raise CsvErrors(errors)
    return parsed


def _detect(names: list[str]) -> FormatName | None:
    if "measured_at" in names:
        return "schoolnet"
    if all(column in names for column in TRACKER_REQUIRED):
        return "speedtest-tracker"
    return None


def _header_errors(names: list[str], fmt: str, name: str) -> list[str]:
    errors = []
    for column, count in Counter(names).items():
        if count > 1:
            errors.append(f"{name}:1: {column}: the column appears {count} times")
    if fmt == "schoolnet":
        for column in names:
            if column not in COLUMNS:
                errors.append(f"{name}:1: {column or '(empty)'}: not a column of this format "
                              f"(columns: {', '.join(COLUMNS)})")
        if "measured_at" not in names:
            errors.append(f"{name}:1: measured_at: the column is missing")
        if "download_mbps" not in names and "upload_mbps" not in names:
            errors.append(f"{name}:1: download_mbps: the file has neither download_mbps nor upload_mbps")
    else:
        errors += [f"{name}:1: {column}: the column is missing (is this Speedtest Tracker's export?)"
                   for column in TRACKER_REQUIRED if column not in names]
        if "successful" in names and "data" in names:
            # The old bulk export wrote the stored bytes per second where today's writes bits.
            errors.append(f"{name}:1: successful: this is the old Speedtest Tracker bulk export "
                          "(bytes, not bits, per second): export again from a current version")
    return errors


@dataclass
class _Cells:
    """Reads one row's cells, collecting what is wrong with them."""

    file: str
    line: int
    zone: ZoneInfo
    now: float
    decimal_comma: bool
    # Text cells seen before, to hand out one string object per distinct text.
    shared: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def fail(self, column: str, what: str) -> None:
        self.errors.append(f"{self.file}:{self.line}: {column}: {what}")

    def number(self, values: dict[str, str], column: str, scale: float = 1.0) -> float | None:
        """The cell times ``scale`` (its unit to the store's), finite and not negative."""
        text = values.get(column, "")
        if not text:
            return None
        plain = text.replace(",", ".") if self.decimal_comma else text
        if not _NUMBER.fullmatch(plain):
            negative = plain.startswith("-") and _NUMBER.fullmatch(plain[1:])
            self.fail(column, f"{text!r} is not a number" + (" of zero or more" if negative else ""))
            return None
        value = float(plain) * scale
        if not math.isfinite(value):
            # 1e308 Mbit/s is a float, but not in bytes per second: it would be stored as inf.
            self.fail(column, f"{text!r} is too large")
            return None
        return value

    def integer(self, values: dict[str, str], column: str) -> int | None:
        text = values.get(column, "")
        if not text:
            return None
        if not re.fullmatch(r"\d{1,18}", text):
            self.fail(column, f"{text!r} is not a whole number of zero or more")
            return None
        return int(text)

    def text(self, values: dict[str, str], column: str, longest: int) -> str:
        text = values.get(column, "")
        if len(text) > longest:
            self.fail(column, f"longer than {longest} characters")
        control = _CONTROL.search(text)
        if control:
            self.fail(column, f"holds a control character (U+{ord(control.group()):04X})")
        if len(self.shared) < SHARED_TEXTS:
            return self.shared.setdefault(text, text)
        return self.shared.get(text, text)

    def boolean(self, values: dict[str, str], column: str, default: bool) -> bool:
        text = values.get(column, "").lower()
        if not text:
            return default
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
        self.fail(column, f"{text!r} is not true or false")
        return default

    def moment(self, values: dict[str, str], column: str) -> float | None:
        text = values.get(column, "")
        if not text:
            self.fail(column, "missing (every row needs its time)")
            return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            self.fail(column, f"{text!r} is not an ISO 8601 time (like 2026-03-02T10:15:00+01:00)")
            return None
        try:
            if parsed.tzinfo is None:
                localized = localize(parsed, self.zone)
                if isinstance(localized, str):
                    self.fail(column, f"{text!r} {localized}")
                    return None
                parsed = localized
            t = parsed.timestamp()
        except (OverflowError, ValueError):
            # Year 1 or 9999 moved by a zone's offset leaves the calendar.
            self.fail(column, f"{text!r} is out of the range of dates")
            return None
        if t < 0:
            # Results are read from 1970 on (Unix time); an earlier one is a typo in the year.
            self.fail(column, f"{text!r} lies before 1970")
            return None
        if t > self.now + FUTURE_SLACK_SECONDS:
            self.fail(column, f"{text!r} lies in the future")
            return None
        return t


def localize(naive: datetime, zone: ZoneInfo) -> datetime | str:
    """A naive local time in ``zone``, or why it names no single moment (the hour skipped
    when the clocks go forward, the hour lived twice when they go back)."""
    early, late = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early
    back = early.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back != naive:
        return f"does not exist in {zone.key} (the clocks went forward then): give the UTC offset"
    return f"happened twice in {zone.key} (the clocks went back then): give the UTC offset"


def _schoolnet_row(values: dict[str, str], cells: _Cells) -> ImportRow | str:
    measured_at = cells.moment(values, "measured_at")
    download = cells.number(values, "download_mbps", MBIT)
    upload = cells.number(values, "upload_mbps", MBIT)
    if download is None and upload is None and not cells.errors:
        cells.fail("download_mbps", "a row needs a download or an upload speed")
    latency = cells.number(values, "latency_ms")
    server = cells.text(values, "server", 500)
    backend = cells.text(values, "backend", 32) or "import"
    connection = cells.text(values, "connection", 63) or None
    valid = cells.boolean(values, "valid", True)
    devices = cells.integer(values, "concurrent_devices")
    return ImportRow(
        line=cells.line, measured_at=measured_at or 0.0,
        download_bytes_per_second=download, upload_bytes_per_second=upload,
        latency_seconds=None if latency is None else latency / 1000,
        server=server, backend=backend, connection=connection, valid=valid,
        concurrent_devices=devices)


def _tracker_row(values: dict[str, str], cells: _Cells) -> ImportRow | str:
    # The export left out the status for a while (its ResultExporter has it commented
    # out); where it is there, only a completed test is a measurement. A failed test has
    # no speeds: it is not a measurement of zero.
    status = values.get("status", "").lower()
    if status and status != "completed":
        return f"status {status}"
    if not values.get("download") and not values.get("upload"):
        return "without speeds (a failed test)"
    measured_at = cells.moment(values, "created at")
    download = cells.number(values, "download", 1 / 8)  # bits per second -> bytes
    upload = cells.number(values, "upload", 1 / 8)
    ping = cells.number(values, "ping")  # milliseconds
    # Read for control characters only: the length is cut to the store's below, as before.
    name, server_id = cells.text(values, "server name", 10_000), cells.text(values, "server id", 10_000)
    server = f"{name} ({server_id})" if name and server_id else name or server_id
    service = cells.text(values, "service", 10_000).lower()
    # Ookla's servers are what our `speedtest` backend tests against too.
    backend = "speedtest" if service == "ookla" else (service or "speedtest-tracker")
    return ImportRow(
        line=cells.line, measured_at=measured_at or 0.0,
        download_bytes_per_second=download, upload_bytes_per_second=upload,
        latency_seconds=None if ping is None else ping / 1000,
        server=server[:500], backend=backend[:32], connection=None, valid=True,
        concurrent_devices=None, public_address=values.get("ip address") or None)


# --- into the store --------------------------------------------------------------------------


def import_measurements(engine: Engine, path: Path, school: str, connection: str | None = None,
                        fmt: FormatName = "auto", default_timezone: str | None = None,
                        naive_timezone: str | None = None, now: float | None = None) -> ImportReport:
    """Check the whole file, then write it in one transaction (or raise CsvErrors and
    write nothing).

    Checking, the rows' keys and their lines are worked out before the store's write lock
    is taken (agents' reports wait behind it); under the lock only what the store holds is
    read again (the keys already there, and the registry, in case it changed meanwhile)
    and the rows are written in chunks of WRITE_CHUNK, so memory is the parsed rows and
    one chunk of row dicts."""
    text = read_text(path)
    naive_zone = _zone(naive_timezone) if naive_timezone else None
    with engine.connect() as conn:
        seen = _school_state(conn, school, default_timezone)
    parsed = parse(text, path.name, fmt, seen.zone, time.time() if now is None else now, naive_zone)
    del text  # the rows hold what is needed; the text is the file's size again
    _check_connections(parsed.rows, seen, connection, path.name)
    targets = _Targets.of(parsed.rows, seen, connection)
    with writer(engine) as conn, conn.begin():
        state = _school_state(conn, school, default_timezone)
        if state != seen:
            # The registry changed while the file was checked: as the write sees it, then.
            if state.zone != seen.zone or state.school_pk != seen.school_pk:
                raise CsvErrors([f"{path.name}: the school changed during the import (its time "
                                 "zone or itself): import the file again"])
            _check_connections(parsed.rows, state, connection, path.name)
            targets = _Targets.of(parsed.rows, state, connection)
        report = ImportReport(parsed.format, skipped=parsed.skipped)
        if not parsed.rows:
            return report
        known = _known_keys(conn, state.school_pk, parsed.rows)
        chunk: list[dict[str, Any]] = []
        for index, row in enumerate(parsed.rows):
            key = targets.keys[index]
            if key in known:
                report.already_there += 1
                continue
            known.add(key)
            chunk.append({
                "school_id": state.school_pk, "agent_id": None, "record_id": None, "import_key": key,
                "source": "import", "connection_id": targets.connection_ids[index],
                "attribution": targets.methods[index], "measured_at": row.measured_at,
                "download_bytes_per_second": row.download_bytes_per_second,
                "upload_bytes_per_second": row.upload_bytes_per_second,
                "latency_seconds": row.latency_seconds, "valid": row.valid,
                "invalid_reasons": [] if row.valid else ["marked invalid in the imported file"],
                "backend": row.backend, "server": row.server,
                "concurrent_devices": row.concurrent_devices})
            if len(chunk) == WRITE_CHUNK:
                conn.execute(bandwidth_results.insert(), chunk)
                report.imported += len(chunk)
                chunk = []
        if chunk:
            conn.execute(bandwidth_results.insert(), chunk)
            report.imported += len(chunk)
    return report


@dataclass(frozen=True)
class _SchoolState:
    """What of the store the rows are checked and attributed against."""

    school_pk: int
    zone: ZoneInfo
    slugs: dict[str, int]
    lines: tuple[Line, ...]


def _school_state(conn: Connection, school: str, default_timezone: str | None) -> _SchoolState:
    school_pk, _, _ = resolve_school(conn, school)
    slugs = {row.slug: row.id for row in conn.execute(
        select(connections.c.slug, connections.c.id).where(connections.c.school_id == school_pk))}
    return _SchoolState(school_pk, school_zone(conn, school_pk, default_timezone), slugs,
                        tuple(load_lines(conn, school_pk)))


def _check_connections(rows: Sequence[ImportRow], state: _SchoolState, connection: str | None,
                       file: str) -> None:
    errors = []
    if connection is not None and connection not in state.slugs:
        errors.append(f"--connection: the school has no connection {connection!r} "
                      f"(it has: {', '.join(sorted(state.slugs)) or 'none'})")
    errors += [f"{file}:{row.line}: connection: the school has no connection {row.connection!r}"
               for row in rows if row.connection is not None and row.connection not in state.slugs]
    if errors:
        raise CsvErrors(errors)


@dataclass
class _Targets:
    """Per row (same index): its key and the line it is attributed to. Parallel lists, not
    a tuple per row: half a million rows."""

    keys: list[str]
    connection_ids: list[int | None]
    methods: list[str]

    @classmethod
    def of(cls, rows: Sequence[ImportRow], state: _SchoolState, connection: str | None) -> _Targets:
        targets = cls([], [], [])
        lines = list(state.lines)
        for row in rows:
            targets.keys.append(import_key(state.school_pk, row.measured_at, row.download_bytes_per_second,
                                           row.upload_bytes_per_second, row.server))
            slug = row.connection or connection
            if slug is not None:
                targets.connection_ids.append(state.slugs[slug])
                targets.methods.append(IMPORT_ATTRIBUTION)
            else:
                evidence = [row.public_address] if row.public_address else []
                found = attribute(lines, local_date(row.measured_at, state.zone), None, evidence)
                targets.connection_ids.append(found.connection_id)
                targets.methods.append(found.method)
        return targets


def _known_keys(conn: Connection, school_pk: int, rows: Sequence[ImportRow]) -> set[str]:
    """The keys of the results the school already has in the file's span: imported ones
    and the agents' too (a file exported from here and imported again adds nothing)."""
    low = min(row.measured_at for row in rows) - 1
    high = max(row.measured_at for row in rows) + 1
    query = (select(bandwidth_results.c.import_key, bandwidth_results.c.measured_at,
                    bandwidth_results.c.download_bytes_per_second,
                    bandwidth_results.c.upload_bytes_per_second, bandwidth_results.c.server)
             .where(bandwidth_results.c.school_id == school_pk,
                    bandwidth_results.c.measured_at.between(low, high)))
    known = set()
    for found in conn.execute(query):
        if found.import_key:
            known.add(found.import_key)
        known.add(import_key(school_pk, found.measured_at, found.download_bytes_per_second,
                             found.upload_bytes_per_second, found.server))
    return known


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--timezone: {name!r} is not a time zone name (like Europe/Amsterdam "
                         "or UTC)") from None


# --- out of the store ------------------------------------------------------------------------


def export_measurements(engine: Engine, school: str, since: float | None = None,
                        default_timezone: str | None = None, until: float | None = None) -> str:
    """The school's results as a CSV file in our format, times in the school's zone."""
    with engine.connect() as conn:
        school_pk, _, _ = resolve_school(conn, school)
        zone = school_zone(conn, school_pk, default_timezone)
        results = load_results(conn, school_pk, since if since is not None else 0.0,
                               until if until is not None else math.inf)
    out = io.StringIO()
    writer_ = csv.writer(out, lineterminator="\n")
    writer_.writerow(COLUMNS)
    for result in results:
        moment = datetime.fromtimestamp(round(result.measured_at, 3), zone)
        writer_.writerow([
            moment.isoformat(timespec="milliseconds"),
            _mbps(result.download_bytes_per_second), _mbps(result.upload_bytes_per_second),
            "" if result.latency_seconds is None else _trim(f"{result.latency_seconds * 1000:.3f}"),
            result.server, result.backend, result.connection_slug or "",
            "true" if result.valid else "false",
            "" if result.concurrent_devices is None else str(result.concurrent_devices),
        ])
    return out.getvalue()


def _mbps(value: float | None) -> str:
    return "" if value is None else _trim(f"{value / MBIT:.6f}")


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def since_option(text: str, now: float, zone: ZoneInfo, parse_duration: Callable[[str], float]) -> float:
    """``--since``: a date (the school's local midnight) or a duration back from now."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return max(now - parse_duration(text), 0.0)
    return datetime.combine(day, datetime.min.time(), zone).timestamp()


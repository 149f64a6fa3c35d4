"""The contracts CSV: one row per contract term, as boards keep it in their spreadsheets.

Parsing here is pure (text in, validated rows out, no store): every row is checked and
every error is collected as ``FILE:LINE: column: what is wrong`` before anything is
written, so a file is imported whole or not at all. Line numbers are the spreadsheet's
row numbers (the header is row 1), which is where a board member will look.

Excel in the Netherlands writes ``;`` between cells, a UTF-8 byte order mark and a decimal
comma; all three are accepted, as are ``,`` and CRLF. The columns are documented, with
units and examples, in docs/contracts-csv.md.
"""

from __future__ import annotations

import csv
import functools
import io
import ipaddress
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.units import parse_duration, slugify
from collector.ids import check_id
from collector.registry import RegistryError
from collector.terms import DIRECTIONS, LEVELS, SLA_CLOCKS, Terms

BOARD_COLUMNS = ("board", "board_name")
SCHOOL_COLUMNS = ("school", "school_name", "external_id", "pupils", "address", "postcode", "city",
                  "region", "latitude", "longitude", "timezone", "school_hours", "school_days",
                  "video_participants")
CONNECTION_COLUMNS = ("connection", "provider", "technology", "role", "networks", "support_contact")
SPEED_COLUMNS = tuple(f"{direction}_{level}_mbps" for level in LEVELS for direction in DIRECTIONS)
TERMS_COLUMNS = ("contract_start", "contract_end", *SPEED_COLUMNS, "monthly_cost", "currency",
                 "sla_response", "sla_restore", "sla_clock")
COLUMNS = (*BOARD_COLUMNS, *SCHOOL_COLUMNS, *CONNECTION_COLUMNS, *TERMS_COLUMNS)
REQUIRED = ("board", "school", "connection", "provider", "technology", "contract_start",
            "download_advertised_mbps", "upload_advertised_mbps")

TECHNOLOGIES = ("fibre", "cable", "vdsl", "adsl", "4g", "5g", "satellite", "other")
ROLES = ("main", "backup")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_CURRENCY = "EUR"
BYTES_PER_MBIT = Decimal(125_000)
MAX_ERRORS_SHOWN = 20
# A board's sheet is hundreds of rows, a cooperative's some thousands; 50 000 is far past
# any real one and keeps one import to seconds of the store's write lock.
MAX_ROWS = 50_000


class ContractImportError(RegistryError):
    """Rows that cannot be imported; ``errors`` holds one line per problem, every one."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        shown = errors[:MAX_ERRORS_SHOWN]
        if len(errors) > MAX_ERRORS_SHOWN:
            shown = [*shown, f"and {len(errors) - MAX_ERRORS_SHOWN} more"]
        super().__init__("\n".join(shown))


class FieldError(ValueError):
    """One cell is wrong; the message says what (the caller adds file, line and column)."""


@dataclass(frozen=True)
class ContractRow:
    """One validated row. The ``*_fields`` hold store columns, and only for the CSV
    columns the file has: a column the file leaves out leaves what is stored alone."""

    line: int
    board: str
    board_fields: dict[str, Any]
    school: str
    school_fields: dict[str, Any]
    connection: str
    connection_fields: dict[str, Any]
    terms: Terms


# --- cells ----------------------------------------------------------------------------------

# ASCII digits only: Python's \d also takes other scripts' digits (Arabic-Indic ones), which no sheet means.
_DECIMAL = re.compile(r"^(-?)([0-9]+)(?:[.,]([0-9]+))?$")
# More digits than any speed, cost or coordinate needs; more would overflow to infinity.
MAX_DIGITS = 30
# C0 control characters (NUL above all: PostgreSQL refuses it in text) except tab and line ends.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def parse_decimal(text: str, *, signed: bool = False) -> Decimal:
    """``"100"``, ``"100.5"`` or ``"100,5"`` (the Dutch decimal comma). No thousands
    separators: "1.000" would be read as one, so it is better refused than guessed."""
    match = _DECIMAL.match(text)
    if match and len(text) > MAX_DIGITS:
        raise FieldError(f"{text[:12]}...: more than {MAX_DIGITS} digits is not a number we can use")
    if not match or (match.group(1) and not signed):
        kind = "a decimal number" if signed else "a number of at least 0"
        raise FieldError(f"{text!r} is not {kind} (write it like 100 or 100,5; no thousands separator)")
    return Decimal(f"{match.group(1)}{match.group(2)}.{match.group(3) or '0'}")


def parse_mbps(text: str) -> float:
    """Mbit/s as written -> bytes per second, exactly (no binary float on the way)."""
    value = parse_decimal(text)
    if value <= 0:
        raise FieldError(f"{text!r}: a speed must be more than 0 Mbit/s")
    return float(value * BYTES_PER_MBIT)


def parse_count(text: str) -> int:
    # ASCII digits, and few enough for the store's integer (str.isdigit takes "²" too).
    if not re.fullmatch(r"[0-9]+", text):
        raise FieldError(f"{text!r} is not a whole number of at least 0")
    if len(text) > 9:
        raise FieldError(f"{text!r} is more than 999999999")
    return int(text)


def parse_iso_date(text: str) -> date:
    try:
        if not _ISO_DATE.match(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise FieldError(f"{text!r} is not a date (write it as YYYY-MM-DD, e.g. 2025-08-01)") from None


def parse_school_hours(text: str) -> tuple[str, str]:
    start, sep, end = (part.strip() for part in text.partition("-"))
    if not sep or not _CLOCK.match(start) or not _CLOCK.match(end):
        raise FieldError(f"{text!r} is not school hours (write them like 08:30-15:30)")
    if end <= start:
        raise FieldError(f"{text!r}: the school day must end after it starts")
    return start, end


def parse_school_days(text: str) -> str:
    """``"mon-fri"``, ``"mon,tue,wed,thu,fri"`` or ``"mon-wed,fri"`` -> ISO weekday
    numbers as stored: ``"1,2,3,4,5"``."""
    days: set[int] = set()
    for part in text.lower().split(","):
        first, sep, last = (p.strip() for p in part.partition("-"))
        if first not in WEEKDAYS or (sep and last not in WEEKDAYS):
            raise FieldError(f"{text!r} is not a list of weekdays (write it like mon-fri or "
                             "mon,tue,thu)")
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last if sep else first)
        if end < start:
            raise FieldError(f"{part.strip()!r}: a range of days runs forward, like mon-fri")
        days.update(range(start + 1, end + 2))
    return ",".join(str(day) for day in sorted(days))


def format_school_days(stored: str) -> str:
    """``"1,2,3,4,5"`` -> ``"mon-fri"``; runs of three or more days become ranges."""
    numbers = sorted(int(n) for n in stored.split(","))
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    parts: list[str] = []
    for run in runs:
        names = [WEEKDAYS[n - 1] for n in run]
        parts.extend([f"{names[0]}-{names[-1]}"] if len(run) >= 3 else names)
    return ",".join(parts)


def parse_timezone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError(f"{text!r} is not a time zone name (like Europe/Amsterdam)") from None
    return text


def parse_networks(text: str) -> list[str]:
    networks: list[str] = []
    # Spaces are the documented separator; a sheet often has commas (or semicolons) too.
    for item in re.split(r"[\s,;]+", text.strip()):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise FieldError(f"{item!r} is not an address or a CIDR prefix (like 192.0.2.0/24)") from None
        try:
            ipaddress.ip_network(item, strict=True)
        except ValueError:
            # A prefix with host bits set is most often a typo in the length. (Compared by
            # value, not text: 2001:DB8::/48 and 2001:0db8::/48 are written forms of a network.)
            raise FieldError(f"{item!r} has host bits set; did you mean {network}?") from None
        networks.append(str(network))
    return networks


def parse_duration_cell(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise FieldError(str(exc)) from None
    if seconds <= 0:
        raise FieldError(f"{text!r}: the time must be longer than zero")
    return seconds


def parse_sla_clock(text: str) -> str:
    """ "24x7" or "business" (any case) as stored."""
    value = text.strip().lower()
    if value not in SLA_CLOCKS:
        raise FieldError(f"{text!r} is not one of {', '.join(SLA_CLOCKS)} (empty = 24x7)")
    return value


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{format_decimal(seconds)}s"


def format_decimal(value: float, scale: Decimal = Decimal(1)) -> str:
    """A stored float back as the shortest decimal that reads to it, with "." and no
    exponent, so an exported file imports to exactly what is stored."""
    number = (Decimal(repr(value)) / scale).normalize()
    return format(number, "f")


def _latitude(text: str) -> float:
    value = parse_decimal(text, signed=True)
    if not -90 <= value <= 90:
        raise FieldError(f"{text!r} is not a latitude (-90 to 90 degrees)")
    return float(value)


def _longitude(text: str) -> float:
    value = parse_decimal(text, signed=True)
    if not -180 <= value <= 180:
        raise FieldError(f"{text!r} is not a longitude (-180 to 180 degrees)")
    return float(value)


def parse_text(limit: int) -> Callable[[str], str]:
    """A parser of free text: at most ``limit`` characters, no control characters."""
    return _text(limit)


def _text(limit: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if len(text) > limit:
            raise FieldError(f"at most {limit} characters, not {len(text)}")
        control = _CONTROL.search(text)
        if control:
            raise FieldError(f"holds a control character (U+{ord(control.group()):04X}) at "
                             f"character {control.start() + 1}")
        return text
    return parse


# School columns as stored: CSV column -> (parse a non-empty cell -> store columns).
# An empty cell clears the stored value (the spreadsheet says "not known").
SchoolParser = Callable[[str], dict[str, Any]]


def _one(column: str, parse: Callable[[str], Any]) -> SchoolParser:
    return lambda text: {column: parse(text)}


def _hours(text: str) -> dict[str, Any]:
    start, end = parse_school_hours(text)
    return {"hours_start": start, "hours_end": end}


SCHOOL_PARSERS: dict[str, SchoolParser] = {
    "school_name": _one("name", _text(200)),
    "external_id": _one("external_id", _text(64)),
    "pupils": _one("pupils", parse_count),
    "address": _one("address", _text(300)),
    "postcode": _one("postcode", _text(16)),
    "city": _one("city", _text(100)),
    "region": _one("region", _text(100)),
    "latitude": _one("latitude", _latitude),
    "longitude": _one("longitude", _longitude),
    "timezone": _one("timezone", parse_timezone),
    "school_hours": _hours,
    "school_days": _one("school_days", parse_school_days),
    "video_participants": _one("video_participants", parse_count),
}

def school_field(column: str, text: str, school_slug: str) -> dict[str, Any]:
    """One school detail as store columns (for the CSV and for ``school set``)."""
    text = text.strip()
    if column not in SCHOOL_PARSERS:
        raise FieldError(f"unknown school detail {column!r}; one of {', '.join(SCHOOL_PARSERS)}")
    if not text:
        return {"name": school_slug} if column == "school_name" else dict(_CLEARED[column])
    return SCHOOL_PARSERS[column](text)


_CLEARED: dict[str, dict[str, Any]] = {
    "school_name": {},
    "external_id": {"external_id": None}, "pupils": {"pupils": None}, "address": {"address": None},
    "postcode": {"postcode": None}, "city": {"city": None}, "region": {"region": None},
    "latitude": {"latitude": None}, "longitude": {"longitude": None},
    "timezone": {"timezone": None}, "school_hours": {"hours_start": None, "hours_end": None},
    "school_days": {"school_days": None}, "video_participants": {"video_participants": None},
}


def school_cells(row: Mapping[Any, Any]) -> dict[str, str]:
    """Stored school columns -> the CSV's school cells."""
    def cell(value: Any) -> str:
        if value is None:
            return ""
        return format_decimal(value) if isinstance(value, float) else str(value)

    hours = f"{row['hours_start']}-{row['hours_end']}" if row["hours_start"] else ""
    return {
        "school_name": row["name"], "external_id": cell(row["external_id"]),
        "pupils": cell(row["pupils"]), "address": cell(row["address"]),
        "postcode": cell(row["postcode"]), "city": cell(row["city"]), "region": cell(row["region"]),
        "latitude": cell(row["latitude"]), "longitude": cell(row["longitude"]),
        "timezone": cell(row["timezone"]), "school_hours": hours,
        "school_days": format_school_days(row["school_days"]) if row["school_days"] else "",
        "video_participants": cell(row["video_participants"]),
    }


def terms_cells(terms: Terms) -> dict[str, str]:
    cells = {"contract_start": terms.starts_on.isoformat(),
             "contract_end": terms.ends_on.isoformat() if terms.ends_on else ""}
    for level in LEVELS:
        for direction in DIRECTIONS:
            speed = terms.speed(direction, level)
            cells[f"{direction}_{level}_mbps"] = (
                "" if speed is None else format_decimal(speed, BYTES_PER_MBIT))
    cells["monthly_cost"] = "" if terms.monthly_cost is None else format_decimal(terms.monthly_cost)
    cells["currency"] = terms.currency or ""
    for name, seconds in (("sla_response", terms.sla_response_seconds),
                          ("sla_restore", terms.sla_restore_seconds)):
        cells[name] = "" if seconds is None else format_duration(seconds)
    cells["sla_clock"] = terms.sla_clock or ""
    return cells


# --- the file ---------------------------------------------------------------------------------


def read_header(text: str) -> tuple[str, list[list[str]]]:
    """The delimiter (``,`` or ``;``, from the header line) and the rows, BOM removed."""
    text = text.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    return delimiter, list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def parse_contracts(text: str, source_name: str) -> list[ContractRow]:
    """Every row validated, or ContractImportError listing every problem found."""
    errors: list[str] = []

    def error(line: int, column: str, message: str) -> None:
        errors.append(f"{source_name}:{line}: {column}: {message}")

    try:
        table = _read_table(text, source_name)
    except csv.Error as exc:
        raise ContractImportError([f"{source_name}: not a readable CSV file: {exc}"]) from None
    if not table or not any(cell.strip() for cell in table[0]):
        raise ContractImportError([f"{source_name}:1: header: the file has no header row "
                                   f"(it starts with: {', '.join(REQUIRED)})"])
    header = [cell.strip() for cell in table[0]]
    for index, name in enumerate(header):
        if name not in COLUMNS:
            error(1, name or f"column {index + 1}", "unknown column (see docs/contracts-csv.md)")
        elif header.index(name) != index:
            error(1, name, "this column appears twice")
    for name in REQUIRED:
        if name not in header:
            error(1, name, "required column is missing")
    if errors:
        raise ContractImportError(errors)

    rows: list[ContractRow] = []
    for line, cells in enumerate(table[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # an empty spreadsheet row
        if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header):]):
            error(line, "row", f"{len(cells)} cells, but the header names {len(header)} columns")
            continue
        values = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)}
        row = _parse_row(line, values, functools.partial(error, line))
        if row is not None:
            rows.append(row)
    _check_consistent(rows, source_name, errors)
    _check_overlaps(rows, source_name, errors)
    if errors:
        raise ContractImportError(errors)
    return rows


def text_lines(text: str) -> Iterator[str]:
    """The lines of a text with their ends (\\n, \\r\\n or \\r), as csv.reader wants them:
    what ``io.StringIO(text, newline="")`` gives, without its copy of the whole text at
    four bytes a character."""
    for match in _LINE.finditer(text):
        yield match.group()


_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")


def _read_table(text: str, source_name: str) -> list[list[str]]:
    """The rows of the file, BOM removed; at most MAX_ROWS of them that are not empty (a
    larger file is refused as soon as it is seen to be one, before it is all in memory)."""
    text = text.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    table: list[list[str]] = []
    filled = 0
    for cells in csv.reader(text_lines(text), delimiter=delimiter):
        if table and any(cell.strip() for cell in cells):
            filled += 1
            if filled > MAX_ROWS:
                raise ContractImportError([
                    f"{source_name}: more than {MAX_ROWS} rows, the most one file may have: split "
                    "it (by board, for instance) and import the parts one by one"])
        table.append(cells)
    return table


def _parse_row(line: int, values: dict[str, str], error: Callable[[str, str], None]
               ) -> ContractRow | None:
    failed = False

    def get(column: str, parse: Callable[[str], Any], *, default: Any = None) -> Any:
        nonlocal failed
        text = values.get(column, "")
        if not text:
            if column in REQUIRED:
                error(column, "required, but empty")
                failed = True
            return default
        try:
            return parse(text)
        except (FieldError, ValueError) as exc:
            error(column, str(exc))
            failed = True
            return default

    board = get("board", lambda t: check_id(t, "board"))
    school = get("school", lambda t: check_id(t, "school"))
    connection = get("connection", lambda t: check_id(t, "connection"))

    board_fields: dict[str, Any] = {}
    if "board_name" in values:
        board_fields["name"] = get("board_name", _text(200)) or board
    school_fields: dict[str, Any] = {}
    for column in SCHOOL_PARSERS:
        if column in values:
            try:
                school_fields.update(school_field(column, values[column], school or ""))
            except ValueError as exc:  # FieldError, and any parser's own ValueError
                error(column, str(exc))
                failed = True

    provider = get("provider", _text(200))
    connection_fields: dict[str, Any] = {"provider": provider}
    if provider and not slugify(provider):
        error("provider", f"{provider!r} has no letters or digits to make an id of")
        failed = True
    connection_fields["provider_id"] = slugify(provider or "")
    connection_fields["technology"] = get("technology", lambda t: _choice(t, TECHNOLOGIES))
    if "role" in values:
        connection_fields["role"] = get("role", lambda t: _choice(t, ROLES), default="main")
    if "networks" in values:
        connection_fields["networks"] = get("networks", parse_networks, default=[])
    if "support_contact" in values:
        connection_fields["support_contact"] = get("support_contact", _text(300))

    starts_on = get("contract_start", parse_iso_date)
    ends_on = get("contract_end", parse_iso_date)
    if starts_on and ends_on and ends_on < starts_on:
        error("contract_end", f"{ends_on} is before contract_start {starts_on}")
        failed = True
    speeds = {f"{direction}_{level}": get(f"{direction}_{level}_mbps", parse_mbps)
              for level in LEVELS for direction in DIRECTIONS}
    failed |= not _check_speed_order(speeds, error)
    cost = get("monthly_cost", lambda t: float(parse_decimal(t)))
    currency = get("currency", _currency, default=DEFAULT_CURRENCY)
    response = get("sla_response", parse_duration_cell)
    restore = get("sla_restore", parse_duration_cell)
    # Empty = 24x7, stored as null (what every contract was before there was a clock).
    sla_clock = get("sla_clock", parse_sla_clock)
    if failed or not (board and school and connection and starts_on):
        return None
    terms = Terms(starts_on=starts_on, ends_on=ends_on, **speeds, monthly_cost=cost,
                  currency=currency, sla_response_seconds=response, sla_restore_seconds=restore,
                  sla_clock=sla_clock)
    return ContractRow(line, board, board_fields, school, school_fields, connection,
                       connection_fields, terms)


def _check_speed_order(speeds: dict[str, float | None], error: Callable[[str, str], None]) -> bool:
    """EU law (Regulation 2015/2120 and BEREC's guidelines): minimum <= normally available
    <= maximum, and the advertised speed no more than the maximum. The advertised speed may
    sit below the minimum or above the normal one, so that is not checked."""
    good = True
    for direction in DIRECTIONS:
        def mbps(level: str, direction: str = direction) -> float | None:
            return speeds[f"{direction}_{level}"]

        for low, high in (("minimum", "normal"), ("normal", "maximum"), ("minimum", "maximum"),
                          ("advertised", "maximum")):
            low_value, high_value = mbps(low), mbps(high)
            if low_value is not None and high_value is not None and low_value > high_value:
                error(f"{direction}_{low}_mbps",
                      f"{format_decimal(low_value, BYTES_PER_MBIT)} Mbit/s is more than "
                      f"{direction}_{high}_mbps {format_decimal(high_value, BYTES_PER_MBIT)}")
                good = False
                break
    return good


def _choice(text: str, choices: tuple[str, ...]) -> str:
    value = text.lower()
    if value not in choices:
        raise FieldError(f"{text!r} is not one of {', '.join(choices)}")
    return value


def _currency(text: str) -> str:
    value = text.upper()
    if not _CURRENCY.match(value):
        raise FieldError(f"{text!r} is not an ISO 4217 currency code (like EUR)")
    return value


def _check_consistent(rows: list[ContractRow], source_name: str, errors: list[str]) -> None:
    """Details repeated on several rows (a school's, a board's, a line's) must agree, and a
    connection has one term per start date; the error names both lines."""
    seen: dict[tuple[Any, ...], tuple[int, dict[str, Any]]] = {}
    for row in rows:
        checks: list[tuple[tuple[Any, ...], dict[str, Any], str, dict[str, str]]] = [
            (("board", row.board), row.board_fields, f"board {row.board!r}", {"name": "board_name"}),
            (("school", row.board, row.school), row.school_fields, f"school {row.board}/{row.school}",
             _SCHOOL_STORE_TO_COLUMN),
            (("connection", row.board, row.school, row.connection), row.connection_fields,
             f"connection {row.connection!r} of {row.board}/{row.school}", {"provider_id": "provider"}),
        ]
        for key, fields, what, columns in checks:
            if key not in seen:
                seen[key] = (row.line, fields)
                continue
            first_line, first = seen[key]
            for name, value in fields.items():
                if first.get(name) != value:
                    errors.append(f"{source_name}:{row.line}: {columns.get(name, name)}: {what} is given "
                                  f"as {_shown(value)} here but {_shown(first.get(name))} on line "
                                  f"{first_line}")
                    break
        term_key = ("terms", row.board, row.school, row.connection, row.terms.starts_on)
        if term_key in seen:
            errors.append(f"{source_name}:{row.line}: contract_start: connection {row.connection!r} "
                          f"of {row.board}/{row.school} has a term from {row.terms.starts_on} on "
                          f"line {seen[term_key][0]} already")
        else:
            seen[term_key] = (row.line, {})


def _check_overlaps(rows: list[ContractRow], source_name: str, errors: list[str]) -> None:
    """A term with a contract_end on or after the next term's contract_start (same line,
    same file) says two contracts held at once: which one the sheet meant is a guess, so it
    is refused. An open-ended term followed by a later one is the normal case of a changed
    contract: the later start wins (collector/terms.py)."""
    by_line: dict[tuple[str, str, str], list[ContractRow]] = {}
    for row in rows:
        by_line.setdefault((row.board, row.school, row.connection), []).append(row)
    for (board, school, line), terms in by_line.items():
        terms.sort(key=lambda row: row.terms.starts_on)
        for earlier, later in itertools.pairwise(terms):
            end = earlier.terms.ends_on
            if end is not None and end >= later.terms.starts_on:
                errors.append(f"{source_name}:{earlier.line}: contract_end: connection {line!r} of "
                              f"{board}/{school}: contract_end {end} runs past the next term, which "
                              f"starts {later.terms.starts_on} on line {later.line}")


_SCHOOL_STORE_TO_COLUMN = {"name": "school_name", "hours_start": "school_hours",
                           "hours_end": "school_hours"}


def _shown(value: Any) -> str:
    return "(empty)" if value in (None, "", []) else repr(value)


def format_contracts(rows: Iterable[Mapping[str, str]]) -> str:
    """Rows of cells (column -> text) as the CSV: a header, "," between cells, "\\n"."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()

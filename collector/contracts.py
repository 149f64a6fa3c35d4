"""The registry of lines and contracts: reads for verdicts and /metrics, and the writes
behind the contracts CSV, ``school set``, ``board set`` and the admin API.

``board set`` also holds the board's escalation contact (escalation=central|school and
escalation_name/email/phone) and ``school set`` the school's own contact (contact_name,
contact_email, contact_phone); the documents and their checks are
collector/incidents/contacts.py.

A school has connections (a main line, perhaps a 4G backup); a connection has terms, a
new row each time the contract changes. Speeds are bytes per second throughout. The CSV
format itself (parsing, validation, cells) is collector/contracts_csv.py.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Row, bindparam, select

from agent.config import deep_merge
from agent.wire import describe_validation_error
from collector.contracts_csv import (
    BYTES_PER_MBIT,
    ContractRow,
    FieldError,
    format_contracts,
    parse_contracts,
    parse_decimal,
    school_cells,
    school_field,
    terms_cells,
)
from collector.db.engine import writer
from collector.db.schema import bandwidth_results, boards, connections, contracts, schools
from collector.incidents.contacts import (
    ContactError,
    Escalation,
    check_email,
    check_name,
    check_phone,
    parse_escalation,
)
from collector.policy import MBIT, PROFILES, BoardPolicy
from collector.registry import RegistryError, resolve_school
from collector.terms import DIRECTIONS, LEVELS, Terms, terms_on

# The store columns of a school that the CSV and `school set` describe.
SCHOOL_DETAILS = ("name", "external_id", "pupils", "address", "postcode", "city", "region",
                  "latitude", "longitude", "timezone", "hours_start", "hours_end", "school_days",
                  "video_participants")
# The school's own contact for incidents (``school set``, not a CSV column): column -> check.
CONTACT_FIELDS = {"contact_name": check_name, "contact_email": check_email, "contact_phone": check_phone}
# ``board set`` keys of the escalation contact -> the document's fields.
ESCALATION_KEYS = {"escalation": "mode", "escalation_name": "name", "escalation_email": "email",
                   "escalation_phone": "phone"}
TERMS_FIELDS = ("ends_on", *(f"{d}_{level}" for level in LEVELS for d in DIRECTIONS),
                "monthly_cost", "currency", "sla_response_seconds", "sla_restore_seconds", "sla_clock")


@dataclass(frozen=True)
class ConnectionInfo:
    id: int
    school_id: int
    slug: str
    provider: str
    provider_id: str
    technology: str
    role: str
    networks: tuple[str, ...]
    support_contact: str | None
    terms: tuple[Terms, ...]  # oldest first


# --- reads -----------------------------------------------------------------------------------


def school_connections(conn: Connection, school_pk: int) -> list[ConnectionInfo]:
    return _connections(conn, school_pk).get(school_pk, [])


def all_connections(conn: Connection) -> dict[int, list[ConnectionInfo]]:
    """Every school's connections, by school pk (for /metrics: two queries in all)."""
    return dict(_connections(conn, None))


def _connections(conn: Connection, school_pk: int | None) -> dict[int, list[ConnectionInfo]]:
    lines = select(connections).order_by(connections.c.school_id, connections.c.slug)
    terms = (select(contracts).join(connections, connections.c.id == contracts.c.connection_id)
             .order_by(contracts.c.connection_id, contracts.c.starts_on))
    if school_pk is not None:
        lines = lines.where(connections.c.school_id == school_pk)
        terms = terms.where(connections.c.school_id == school_pk)
    terms_by_line: dict[int, list[Terms]] = defaultdict(list)
    for row in conn.execute(terms):
        terms_by_line[row.connection_id].append(_terms(row))
    result: dict[int, list[ConnectionInfo]] = defaultdict(list)
    for row in conn.execute(lines):
        result[row.school_id].append(ConnectionInfo(
            id=row.id, school_id=row.school_id, slug=row.slug, provider=row.provider,
            provider_id=row.provider_id, technology=row.technology, role=row.role,
            networks=tuple(row.networks), support_contact=row.support_contact,
            terms=tuple(terms_by_line[row.id])))
    return result


def _terms(row: Row[Any]) -> Terms:
    return Terms(starts_on=dt.date.fromisoformat(row.starts_on),
                 ends_on=dt.date.fromisoformat(row.ends_on) if row.ends_on else None,
                 **{name: getattr(row, name) for name in TERMS_FIELDS if name != "ends_on"})


def board_policy(conn: Connection, board_pk: int) -> BoardPolicy:
    """What the board decided, over the defaults (collector/policy.py). The stored document
    holds only what the board set, so a default it never touched stays the documented one."""
    row = conn.execute(select(boards.c.rule_set, boards.c.policy).where(boards.c.id == board_pk)).first()
    if row is None:
        raise RegistryError(f"no board with pk {board_pk}")
    return _policy(row.rule_set, row.policy)


def _policy(rule_set: str | None, stored: dict[str, Any] | None) -> BoardPolicy:
    document = deep_merge(BoardPolicy().model_dump(), stored or {})
    if rule_set:
        document["rule_set"] = rule_set
    return BoardPolicy.model_validate(document)


def school_today(conn: Connection, school_pk: int, default_timezone: str = "UTC",
                 now: float | None = None) -> dt.date:
    """The school's local date now (its own time zone, else the collector's default)."""
    zone = conn.scalar(select(schools.c.timezone).where(schools.c.id == school_pk)) or default_timezone
    return dt.datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(zone)).date()


def contract_settings(conn: Connection, school_pk: int, default_timezone: str = "UTC",
                      now: float | None = None) -> dict[str, Any]:
    """The contract speeds the school's agents fetch with their settings: the advertised
    speeds of the main line's terms in force today; {} when there are none."""
    today = school_today(conn, school_pk, default_timezone, now)
    for line in school_connections(conn, school_pk):
        current = terms_on(line.terms, today)
        if line.role == "main" and current is not None:
            return {"contract": {"download_bytes_per_second": current.download_advertised,
                                 "upload_bytes_per_second": current.upload_advertised}}
    return {}


def connections_document(engine: Engine, school_ref: str, default_timezone: str = "UTC",
                         now: float | None = None) -> dict[str, Any]:
    """A school's connections with their current terms in Mbit/s (for people: the CLI and
    the admin API), and every term in bytes per second."""
    with engine.connect() as conn:
        school_pk, board, school = resolve_school(conn, school_ref)
        today = school_today(conn, school_pk, default_timezone, now)
        lines = school_connections(conn, school_pk)
    return {"board": board, "school": school, "date": today.isoformat(),
            "connections": [_line_document(line, today) for line in lines]}


def _line_document(line: ConnectionInfo, today: dt.date) -> dict[str, Any]:
    current = terms_on(line.terms, today)
    document: dict[str, Any] = {
        "connection": line.slug, "provider": line.provider, "provider_id": line.provider_id,
        "technology": line.technology, "role": line.role, "networks": list(line.networks),
        "support_contact": line.support_contact,
        "current": None if current is None else _terms_in_mbps(current),
        "terms": [_terms_document(terms) for terms in line.terms]}
    return document


def _terms_document(terms: Terms) -> dict[str, Any]:
    document = asdict(terms)
    document["starts_on"] = terms.starts_on.isoformat()
    document["ends_on"] = terms.ends_on.isoformat() if terms.ends_on else None
    return document


def _terms_in_mbps(terms: Terms) -> dict[str, Any]:
    document: dict[str, Any] = {"starts_on": terms.starts_on.isoformat(),
                                "ends_on": terms.ends_on.isoformat() if terms.ends_on else None}
    for level in LEVELS:
        for direction in DIRECTIONS:
            speed = terms.speed(direction, level)
            document[f"{direction}_{level}_mbps"] = None if speed is None else speed / MBIT
    document.update(monthly_cost=terms.monthly_cost, currency=terms.currency,
                    sla_response_seconds=terms.sla_response_seconds,
                    sla_restore_seconds=terms.sla_restore_seconds,
                    sla_clock=terms.sla_clock or "24x7")
    return document


# --- the contracts CSV --------------------------------------------------------------------------


@dataclass
class ImportReport:
    boards_created: int = 0
    boards_updated: int = 0
    schools_created: int = 0
    schools_updated: int = 0
    connections_created: int = 0
    connections_updated: int = 0
    terms_created: int = 0
    terms_updated: int = 0
    rows: int = 0

    @property
    def unchanged(self) -> bool:
        return not any(value for name, value in asdict(self).items() if name != "rows")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unchanged": self.unchanged}

    def summary(self) -> str:
        if self.unchanged:
            return f"{self.rows} rows read; unchanged: the store already says all of it"
        parts = [f"{what} {getattr(self, what + '_created')} created, "
                 f"{getattr(self, what + '_updated')} updated"
                 for what in ("boards", "schools", "connections", "terms")]
        return f"{self.rows} rows read; " + "; ".join(parts)


def import_contracts(engine: Engine, text: str, *, source_name: str) -> ImportReport:
    """Validate every row (ContractImportError lists every problem; nothing is written),
    then upsert it all in one transaction: boards by id, schools by (board, id),
    connections by (school, id), terms by (connection, contract_start). Terms that the
    file does not mention are kept: the file adds and corrects, it does not prune.

    The validation runs before the write lock is taken, and the writes are set-based: the
    store's boards, schools, lines and terms of the file's scope are read in a few queries,
    compared in memory and written with executemany. (One query per row held the lock for
    minutes on a large file, with the agents' ingest waiting behind it.)"""
    rows = parse_contracts(text, source_name)
    report = ImportReport(rows=len(rows))
    now = time.time()
    with writer(engine) as conn, conn.begin():
        _UpsertRun(conn, report, now).run(rows)
    return report


# SQLite allows 32766 parameters in a statement (999 before 3.32); stay far below either.
_IN_CHUNK = 500


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for index in range(0, len(items), size):
        yield items[index:index + size]


class _UpsertRun:
    """One import's writes: per level (boards, schools, lines, terms) read what the store
    has for the file's keys, then insert the new ones and update the changed ones."""

    def __init__(self, conn: Connection, report: ImportReport, now: float) -> None:
        self.conn, self.report, self.now = conn, report, now
        # Schools whose lines, terms or details (the time zone) changed: their results
        # may belong to another line now.
        self.touched: set[int] = set()

    def run(self, rows: list[ContractRow]) -> None:
        board_pks = self._boards(rows)
        school_pks = self._schools(rows, board_pks)
        line_pks = self._connections(rows, school_pks)
        self._terms(rows, line_pks)
        _reattribute(self.conn, self._with_results(sorted(self.touched)))

    def _boards(self, rows: list[ContractRow]) -> dict[str, int]:
        wanted = {row.board: row.board_fields for row in reversed(rows)}  # the first row's
        found: dict[str, Any] = {}
        for slugs in _chunks(sorted(wanted)):
            for stored in self.conn.execute(select(boards.c.id, boards.c.slug, boards.c.name)
                                            .where(boards.c.slug.in_(slugs))):
                found[stored.slug] = stored
        new = [{"slug": slug, "name": fields.get("name") or slug, "created_at": self.now}
               for slug, fields in sorted(wanted.items()) if slug not in found]
        changed = [{"pk": found[slug].id, "v_name": fields["name"]}
                   for slug, fields in sorted(wanted.items())
                   if slug in found and "name" in fields and fields["name"] != found[slug].name]
        if new:
            self.conn.execute(boards.insert(), new)
        if changed:
            self.conn.execute(boards.update().where(boards.c.id == bindparam("pk"))
                              .values(name=bindparam("v_name")), changed)
        self.report.boards_created += len(new)
        self.report.boards_updated += len(changed)
        pks = {slug: int(stored.id) for slug, stored in found.items()}
        if new:
            for slugs in _chunks([row["slug"] for row in new]):
                pks.update((r.slug, int(r.id)) for r in self.conn.execute(
                    select(boards.c.id, boards.c.slug).where(boards.c.slug.in_(slugs))))
        return pks

    def _schools(self, rows: list[ContractRow], board_pks: dict[str, int]) -> dict[tuple[str, str], int]:
        wanted = {(row.board, row.school): row.school_fields for row in reversed(rows)}
        found = self._existing(schools, schools.c.board_id, sorted(set(board_pks.values())))
        by_key = {(board_pks[board], school): fields for (board, school), fields in wanted.items()}
        new = [{"board_id": board_pk, "slug": slug, "created_at": self.now, "name": slug, **fields}
               for (board_pk, slug), fields in sorted(by_key.items()) if (board_pk, slug) not in found]
        changed = [(found[key].id, fields) for key, fields in sorted(by_key.items())
                   if key in found and _changed(found[key]._mapping, fields)]
        self._insert_many(schools, new)
        self._update_many(schools, changed)
        self.touched.update(pk for pk, _ in changed)
        self.report.schools_created += len(new)
        self.report.schools_updated += len(changed)
        pks = {key: int(stored.id) for key, stored in found.items()}
        if new:
            pks.update((key, int(stored.id)) for key, stored in self._existing(
                schools, schools.c.board_id, sorted({row["board_id"] for row in new})).items())
        return {(board, school): pks[(board_pks[board], school)] for board, school in wanted}

    def _connections(self, rows: list[ContractRow], school_pks: dict[tuple[str, str], int]
                     ) -> dict[tuple[str, str, str], int]:
        wanted = {(row.board, row.school, row.connection): row.connection_fields for row in reversed(rows)}
        by_key = {(school_pks[(board, school)], line): fields
                  for (board, school, line), fields in wanted.items()}
        touched_schools = sorted(set(school_pks.values()))
        found = self._existing(connections, connections.c.school_id, touched_schools)
        new = [{"school_id": school_pk, "slug": slug, "created_at": self.now, "role": "main",
                "networks": [], "support_contact": None, **fields}
               for (school_pk, slug), fields in sorted(by_key.items()) if (school_pk, slug) not in found]
        changed_keys = [key for key, fields in sorted(by_key.items())
                        if key in found and _changed(found[key]._mapping, fields)]
        changed = [(found[key].id, by_key[key]) for key in changed_keys]
        self._insert_many(connections, new)
        self._update_many(connections, changed)
        self.touched.update(row["school_id"] for row in new)
        self.touched.update(school_pk for school_pk, _ in changed_keys)
        self.report.connections_created += len(new)
        self.report.connections_updated += len(changed)
        pks = {key: int(stored.id) for key, stored in found.items()}
        if new:
            pks.update((key, int(stored.id)) for key, stored in self._existing(
                connections, connections.c.school_id, sorted({row["school_id"] for row in new})).items())
        return {(board, school, line): pks[(school_pks[(board, school)], line)]
                for board, school, line in wanted}

    def _terms(self, rows: list[ContractRow], line_pks: dict[tuple[str, str, str], int]) -> None:
        found: dict[tuple[int, str], Any] = {}
        line_school: dict[int, int] = {}
        for pks in _chunks(sorted(set(line_pks.values()))):
            for stored in self.conn.execute(select(contracts).where(contracts.c.connection_id.in_(pks))):
                found[(stored.connection_id, stored.starts_on)] = stored
            line_school.update((r.id, r.school_id) for r in self.conn.execute(
                select(connections.c.id, connections.c.school_id).where(connections.c.id.in_(pks))))
        new: list[dict[str, Any]] = []
        changed: list[tuple[int, dict[str, Any]]] = []
        for row in rows:
            line_pk = line_pks[(row.board, row.school, row.connection)]
            values = _terms_values(row.terms)
            existing = found.get((line_pk, values["starts_on"]))
            if existing is None:
                new.append({"connection_id": line_pk, "updated_at": self.now, **values})
            elif _changed(existing._mapping, values):
                changed.append((existing.id, {"updated_at": self.now, **values}))
            else:
                continue
            self.touched.add(line_school[line_pk])
        self._insert_many(contracts, new)
        self._update_many(contracts, changed)
        self.report.terms_created += len(new)
        self.report.terms_updated += len(changed)

    def _existing(self, table: Any, parent: Any, parent_pks: Sequence[int]) -> dict[tuple[int, str], Any]:
        """The table's rows under the given parents, by (parent pk, slug)."""
        found: dict[tuple[int, str], Any] = {}
        for pks in _chunks(parent_pks):
            for stored in self.conn.execute(select(table).where(parent.in_(pks))):
                found[(stored._mapping[parent.name], stored.slug)] = stored
        return found

    def _insert_many(self, table: Any, values: list[dict[str, Any]]) -> None:
        # executemany wants one set of keys: the rows of one file have the same columns,
        # but group by them anyway rather than assume it.
        for group in _by_keys(values):
            self.conn.execute(table.insert(), group)

    def _update_many(self, table: Any, changed: list[tuple[int, dict[str, Any]]]) -> None:
        for group in _by_keys([{"pk": pk, **{f"v_{k}": v for k, v in fields.items()}}
                               for pk, fields in changed]):
            columns = [key[2:] for key in group[0] if key != "pk"]
            self.conn.execute(table.update().where(table.c.id == bindparam("pk"))
                              .values({name: bindparam(f"v_{name}") for name in columns}), group)

    def _with_results(self, school_pks: list[int]) -> list[int]:
        """Of these schools, those that have results to attribute (a new school has none)."""
        having: set[int] = set()
        for pks in _chunks(school_pks):
            having.update(self.conn.scalars(select(bandwidth_results.c.school_id).distinct()
                                            .where(bandwidth_results.c.school_id.in_(pks))))
        return [pk for pk in school_pks if pk in having]


def _by_keys(values: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for value in values:
        groups.setdefault(tuple(sorted(value)), []).append(value)
    return list(groups.values())


def _reattribute(conn: Connection, school_pks: list[int]) -> None:
    # Results are attributed to the line whose networks they came from: new or changed
    # networks can move them. collector/results.py is another part's; without it there
    # is nothing to attribute.
    try:
        from collector.results import reattribute  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return
    for school_pk in school_pks:
        reattribute(conn, school_pk)


def _terms_values(terms: Terms) -> dict[str, Any]:
    values = {name: getattr(terms, name) for name in TERMS_FIELDS}
    values["starts_on"] = terms.starts_on.isoformat()
    values["ends_on"] = terms.ends_on.isoformat() if terms.ends_on else None
    return values


def _changed(stored: Mapping[Any, Any], wanted: Mapping[str, Any]) -> bool:
    return any(stored[name] != value for name, value in wanted.items())


def export_contracts(engine: Engine, board: str | None = None) -> str:
    """The store as the contracts CSV: one row per term (a school without a connection has
    no row: the format is about lines), sorted by board, school, connection and start."""
    query = (select(boards.c.slug.label("board"), boards.c.name.label("board_name"),
                    schools.c.slug.label("school"), *(schools.c[name] for name in SCHOOL_DETAILS),
                    connections.c.slug.label("connection"), connections.c.provider,
                    connections.c.technology, connections.c.role, connections.c.networks,
                    connections.c.support_contact, contracts)
             .select_from(contracts)
             .join(connections, connections.c.id == contracts.c.connection_id)
             .join(schools, schools.c.id == connections.c.school_id)
             .join(boards, boards.c.id == schools.c.board_id)
             .order_by(boards.c.slug, schools.c.slug, connections.c.slug, contracts.c.starts_on))
    with engine.connect() as conn:
        if board is not None:
            board_pk_of(conn, board)
            query = query.where(boards.c.slug == board)
        rows = conn.execute(query).all()
    return format_contracts(_export_cells(row) for row in rows)


def _export_cells(row: Any) -> dict[str, str]:
    data = row._mapping
    return {"board": data["board"], "board_name": data["board_name"], "school": data["school"],
            **school_cells(data), "connection": data["connection"], "provider": data["provider"],
            "technology": data["technology"], "role": data["role"],
            "networks": " ".join(data["networks"]), "support_contact": data["support_contact"] or "",
            **terms_cells(_terms(row))}


# --- school details and board policy ---------------------------------------------------------


def school_details(engine: Engine, school_ref: str) -> dict[str, Any]:
    with engine.connect() as conn:
        school_pk, board, school = resolve_school(conn, school_ref)
        return _school_document(conn, school_pk, board, school)


def _school_document(conn: Connection, school_pk: int, board: str, school: str) -> dict[str, Any]:
    row = conn.execute(select(*(schools.c[name] for name in (*SCHOOL_DETAILS, *CONTACT_FIELDS)))
                       .where(schools.c.id == school_pk)).one()
    contact = {name: row._mapping[name] or "" for name in CONTACT_FIELDS}
    return {"board": board, "school": school, **school_cells(row._mapping), **contact}


def set_school_details(engine: Engine, school_ref: str, assignments: Mapping[str, str]
                       ) -> dict[str, Any]:
    """``{"school_hours": "08:15-14:45", "pupils": "412"}`` (CSV column names and cells,
    validated the same way; an empty value clears one) -> the school's details after."""
    with writer(engine) as conn, conn.begin():
        school_pk, board, school = resolve_school(conn, school_ref)
        values: dict[str, Any] = {}
        for column, text in assignments.items():
            try:
                if column in CONTACT_FIELDS:
                    # An empty value clears it, as for the other details.
                    values[column] = CONTACT_FIELDS[column](text) if text.strip() else None
                else:
                    values.update(school_field(column, text, school))
            except FieldError as exc:
                if str(exc).startswith("unknown school detail"):
                    raise RegistryError(f"{exc}, {', '.join(CONTACT_FIELDS)}") from None
                raise RegistryError(f"{column}: {exc}") from None
            except ValueError as exc:  # ContactError, and any parser's own ValueError
                raise RegistryError(f"{column}: {exc}") from None
        if values:
            conn.execute(schools.update().where(schools.c.id == school_pk).values(**values))
        return _school_document(conn, school_pk, board, school)


class UnknownBoard(RegistryError):
    """No board has that id (a 404 in the API)."""


def board_pk_of(conn: Connection, board: str) -> int:
    board_pk = conn.scalar(select(boards.c.id).where(boards.c.slug == board))
    if board_pk is None:
        raise UnknownBoard(f"no board with id {board!r} (see: board list)")
    return int(board_pk)


def show_board_policy(engine: Engine, board: str) -> BoardPolicy:
    with engine.connect() as conn:
        return board_policy(conn, board_pk_of(conn, board))


def show_board_escalation(engine: Engine, board: str) -> Escalation:
    from collector.incidents.contacts import board_escalation

    with engine.connect() as conn:
        return board_escalation(conn, board_pk_of(conn, board))


def escalation_changes(stored: Mapping[str, Any] | None, assignments: Mapping[str, str]) -> Escalation:
    """``{"escalation": "central", "escalation_email": "ict@b.example"}`` (``board set``
    keys; an empty value clears a field) over what the board has -> the checked result.
    Switching to escalation=school forgets the central contact."""
    document: dict[str, Any] = dict(stored or {})
    for key in assignments:
        if key not in ESCALATION_KEYS:
            raise RegistryError(f"unknown escalation key {key!r}; one of {', '.join(ESCALATION_KEYS)}")
    if "escalation" in assignments:
        mode = assignments["escalation"].strip().lower()
        if mode not in ("central", "school"):
            raise RegistryError(f"escalation: {assignments['escalation']!r} is not one of central, school")
        document = {"mode": "school"} if mode == "school" else {**document, "mode": "central"}
    for key, text in assignments.items():
        if key != "escalation":
            document[ESCALATION_KEYS[key]] = text.strip() or None
    try:
        return parse_escalation(document)
    except ContactError as exc:
        raise RegistryError(str(exc)) from None


def set_board_policy(engine: Engine, board: str, changes: Mapping[str, Any], *,
                     replace: bool = False, escalation: Mapping[str, str] | None = None) -> BoardPolicy:
    """Merge ``changes`` (a partial BoardPolicy document, bytes per second) into what the
    board has set, or with ``replace`` set exactly that; validated as a whole first.
    ``escalation``: ``board set`` keys of the escalation contact (escalation_changes), set
    in the same transaction, so a bad one changes nothing."""
    changes = dict(changes)
    with writer(engine) as conn, conn.begin():
        board_pk = board_pk_of(conn, board)
        row = conn.execute(select(boards.c.rule_set, boards.c.policy, boards.c.escalation)
                           .where(boards.c.id == board_pk)).one()
        if escalation:
            contact = escalation_changes(row.escalation, escalation)
            conn.execute(boards.update().where(boards.c.id == board_pk)
                         .values(escalation=contact.as_document()))
        stored: dict[str, Any] = {} if replace else dict(row.policy or {})
        rule_set = None if replace else row.rule_set
        if "rule_set" in changes:
            rule_set = changes.pop("rule_set")
        stored = deep_merge(stored, changes)
        try:
            policy = _policy(rule_set, stored)
        except ValidationError as exc:
            raise RegistryError("policy: " + describe_validation_error(exc)) from None
        conn.execute(boards.update().where(boards.c.id == board_pk)
                     .values(rule_set=policy.rule_set if rule_set else None, policy=stored or None))
    return policy


def policy_assignments(assignments: list[str]) -> dict[str, Any]:
    """``board set`` input -> a partial BoardPolicy document. Speeds are typed in Mbit/s
    (``capacity.per_device_mbps.basis=0.75``) and stored in bytes per second."""
    document: dict[str, Any] = {}
    capacity: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = (part.strip() for part in assignment.partition("="))
        if not sep:
            raise RegistryError(f"{assignment!r} is not KEY=VALUE (e.g. rule_set=bnetza)")
        if key == "rule_set":
            document["rule_set"] = raw.lower()
        elif key == "capacity.profile":
            capacity["profile"] = raw.lower()
        elif key == "capacity.margin_ratio":
            capacity["margin_ratio"] = _number(key, raw)
        elif key == "capacity.per_video_participant_mbps":
            capacity["per_video_participant_bytes_per_second"] = _mbps(key, raw)
        elif key.startswith("capacity.per_device_mbps.") and key.rpartition(".")[2] in PROFILES:
            per_device = capacity.setdefault("per_device_bytes_per_second", {})
            per_device[key.rpartition(".")[2]] = _mbps(key, raw)
        else:
            raise RegistryError(
                f"unknown policy key {key!r}; one of rule_set, capacity.profile, "
                "capacity.margin_ratio, capacity.per_video_participant_mbps, "
                f"capacity.per_device_mbps.{{{','.join(PROFILES)}}}")
    if capacity:
        document["capacity"] = capacity
    return document


def _number(key: str, raw: str) -> float:
    try:
        return float(parse_decimal(raw))
    except FieldError as exc:
        raise RegistryError(f"{key}: {exc}") from None


def _mbps(key: str, raw: str) -> float:
    value = _number(key, raw)
    if value <= 0:
        raise RegistryError(f"{key}: {raw!r} must be more than 0 Mbit/s")
    return value * float(BYTES_PER_MBIT)


def policy_document(policy: BoardPolicy) -> dict[str, Any]:
    return policy.model_dump(mode="json")


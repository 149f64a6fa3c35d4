"""The rooms CSV: a board's list of its schools' rooms, so they exist (with their names)
before an agent or a survey names them, and the list comes back out for the spreadsheet.

Columns: ``board``, ``school``, ``room`` (the id agents and surveys use, derived from
``room_name`` when empty) and ``room_name``. Rows are checked as the contracts CSV's are
(collector/contracts_csv.py): every error as ``FILE:LINE: column: what is wrong``, and
nothing is written unless every row is right. A room that exists gets the file's name; a
newer name reported by an agent or a survey renames it again (a room's name is the newest
one anyone gave it, see collector/rooms.py).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass

from sqlalchemy import Engine, select

from agent.units import slugify
from collector.contracts_csv import ContractImportError, read_header
from collector.db.engine import writer
from collector.db.schema import boards, rooms, schools
from collector.ids import check_id
from collector.registry import RegistryError

COLUMNS = ("board", "school", "room", "room_name")
NAME_LIMIT = 200


class RoomImportError(ContractImportError):
    """Rows that cannot be imported; ``errors`` holds one line per problem."""


@dataclass(frozen=True)
class RoomRow:
    line: int
    board: str
    school: str
    room: str
    name: str


@dataclass
class RoomImportReport:
    rows: int = 0
    created: int = 0
    renamed: int = 0

    def line(self) -> str:
        return (f"{self.rows} rows read; rooms {self.created} created, {self.renamed} renamed, "
                f"{self.rows - self.created - self.renamed} unchanged")


def parse_rooms(text: str, source_name: str) -> list[RoomRow]:
    """Every row checked, or RoomImportError listing every problem."""
    _, table = read_header(text)
    if not table or not any(cell.strip() for cell in table[0]):
        raise RoomImportError([f"{source_name}:1: the file is empty; the header names the columns "
                               f"({', '.join(COLUMNS)})"])
    header = [cell.strip() for cell in table[0]]
    errors = [f"{source_name}:1: {name}: unknown column (the columns are {', '.join(COLUMNS)})"
              for name in header if name not in COLUMNS]
    errors += [f"{source_name}:1: {name}: the column is missing" for name in ("board", "school")
               if name not in header]
    if "room" not in header and "room_name" not in header:
        errors.append(f"{source_name}:1: room: give room, room_name or both")
    if errors:
        raise RoomImportError(errors)
    parsed: list[RoomRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    for number, cells in enumerate(table[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line between blocks, as spreadsheets leave them
        values = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)}

        def error(column: str, message: str, line: int = number) -> None:
            errors.append(f"{source_name}:{line}: {column}: {message}")

        ids = {}
        for column in ("board", "school"):
            try:
                ids[column] = check_id(values[column], column)
            except ValueError as exc:
                error(column, str(exc) if values[column] else "empty; the id is required")
        name = values.get("room_name", "")
        room = values.get("room", "") or slugify(name)
        if len(name) > NAME_LIMIT:
            error("room_name", f"longer than {NAME_LIMIT} characters")
        if not room:
            error("room", "empty, and no room_name to derive the id from")
        else:
            try:
                room = check_id(room, "room")
            except ValueError as exc:
                error("room", str(exc))
                continue
        if len(ids) < 2 or not room:
            continue
        key = (ids["board"], ids["school"], room)
        if key in seen:
            error("room", f"{'/'.join(key)} is on line {seen[key]} already")
            continue
        seen[key] = number
        parsed.append(RoomRow(number, ids["board"], ids["school"], room, name or room))
    if errors:
        raise RoomImportError(errors)
    return parsed


def import_rooms(engine: Engine, text: str, *, source_name: str) -> RoomImportReport:
    rows = parse_rooms(text, source_name)
    report = RoomImportReport(rows=len(rows))
    now = time.time()
    with writer(engine) as conn, conn.begin():
        known = {(row.board, row.school): row.id for row in conn.execute(
            select(schools.c.id, boards.c.slug.label("board"), schools.c.slug.label("school"))
            .join(boards, boards.c.id == schools.c.board_id))}
        missing = [f"{source_name}:{row.line}: school: no school {row.board}/{row.school} "
                   "(import the contracts, or add it with: school add)"
                   for row in rows if (row.board, row.school) not in known]
        if missing:
            raise RoomImportError(missing)
        for row in rows:
            school_pk = known[(row.board, row.school)]
            stored = conn.execute(select(rooms.c.id, rooms.c.name).where(
                rooms.c.school_id == school_pk, rooms.c.slug == row.room)).first()
            if stored is None:
                conn.execute(rooms.insert().values(school_id=school_pk, slug=row.room, name=row.name,
                                                   named_at=now, created_at=now))
                report.created += 1
            elif stored.name != row.name:
                conn.execute(rooms.update().where(rooms.c.id == stored.id)
                             .values(name=row.name, named_at=now))
                report.renamed += 1
    return report


def export_rooms(engine: Engine, board: str | None = None) -> str:
    query = (select(boards.c.slug.label("board"), schools.c.slug.label("school"),
                    rooms.c.slug.label("room"), rooms.c.name.label("room_name"))
             .join(schools, schools.c.id == rooms.c.school_id)
             .join(boards, boards.c.id == schools.c.board_id)
             .order_by(boards.c.slug, schools.c.slug, rooms.c.slug))
    if board is not None:
        query = query.where(boards.c.slug == board)
    out = io.StringIO()
    table = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    table.writeheader()
    with engine.connect() as conn:
        if board is not None and conn.scalar(select(boards.c.id).where(boards.c.slug == board)) is None:
            raise RegistryError(f"no board with id {board!r} (see: board list)")
        table.writerows(dict(row._mapping) for row in conn.execute(query))
    return out.getvalue()

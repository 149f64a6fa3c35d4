"""Boards, schools, agents and their secrets: the admin side of the store."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from agent.wire import EnrollResponse
from collector.db.engine import writer
from collector.db.schema import admin_tokens, agents, boards, enrolment_codes, schools
from collector.ids import check_id, slugify
from collector.tokens import hash_secret, new_enrolment_code, new_secret


class RegistryError(ValueError):
    """Bad input for an admin operation; the message is one line for the user."""


class NotAllowed(RegistryError):
    """A code, credential or token that does not (or no longer) give access."""


@dataclass(frozen=True)
class AgentIdentity:
    id: int
    slug: str
    school_id: int
    school: str
    board: str


# --- boards and schools ------------------------------------------------------------------


def add_board(engine: Engine, name: str, board_id: str | None = None) -> str:
    slug = _new_id(name, board_id, "board")
    with writer(engine) as conn, conn.begin():
        if conn.scalar(select(boards.c.id).where(boards.c.slug == slug)) is not None:
            raise RegistryError(f"a board with id {slug!r} exists already")
        conn.execute(boards.insert().values(slug=slug, name=name, created_at=time.time()))
    return slug


def add_school(engine: Engine, board: str, name: str, school_id: str | None = None) -> str:
    slug = _new_id(name, school_id, "school")
    with writer(engine) as conn, conn.begin():
        board_pk = conn.scalar(select(boards.c.id).where(boards.c.slug == board))
        if board_pk is None:
            raise RegistryError(f"no board with id {board!r} (see: board list)")
        exists = select(schools.c.id).where(schools.c.board_id == board_pk, schools.c.slug == slug)
        if conn.scalar(exists) is not None:
            raise RegistryError(f"board {board!r} has a school with id {slug!r} already")
        conn.execute(schools.insert().values(
            board_id=board_pk, slug=slug, name=name, created_at=time.time()))
    return slug


def list_boards(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(boards.c.slug, boards.c.name).order_by(boards.c.slug))
        return [(row.slug, row.name) for row in rows]


def list_schools(engine: Engine, board: str | None = None) -> list[tuple[str, str, str]]:
    query = (select(boards.c.slug.label("board"), schools.c.slug, schools.c.name)
             .join(boards, boards.c.id == schools.c.board_id)
             .order_by(boards.c.slug, schools.c.slug))
    if board:
        query = query.where(boards.c.slug == board)
    with engine.connect() as conn:
        return [(row.board, row.slug, row.name) for row in conn.execute(query)]


def resolve_school(conn: Connection, ref: str) -> tuple[int, str, str]:
    """``BOARD/SCHOOL`` or ``SCHOOL`` (when that id is unique) -> (pk, board, school)."""
    board, _, school = ref.rpartition("/")
    query = (select(schools.c.id, boards.c.slug.label("board"), schools.c.slug)
             .join(boards, boards.c.id == schools.c.board_id)
             .where(schools.c.slug == school))
    if board:
        query = query.where(boards.c.slug == board)
    rows = conn.execute(query).all()
    if not rows:
        raise RegistryError(f"no school {ref!r} (see: school list)")
    if len(rows) > 1:
        choices = ", ".join(f"{row.board}/{row.slug}" for row in rows)
        raise RegistryError(f"school id {school!r} is in several boards; say which: {choices}")
    return rows[0].id, rows[0].board, rows[0].slug


# --- enrolment -------------------------------------------------------------------------------


def create_enrolment_code(engine: Engine, school: str, uses: int, valid_for: float) -> str:
    if uses < 1:
        raise RegistryError("--uses must be at least 1")
    if valid_for <= 0:
        raise RegistryError("--valid-for must be longer than zero")
    code = new_enrolment_code()
    now = time.time()
    with writer(engine) as conn, conn.begin():
        school_pk, _, _ = resolve_school(conn, school)
        conn.execute(enrolment_codes.insert().values(
            code_hash=_code_hash(code), school_id=school_pk, uses_left=uses,
            expires_at=now + valid_for, created_at=now))
    return code


def enroll(engine: Engine, code: str, name: str | None, version: str) -> EnrollResponse:
    """Exchange an enrolment code for a new agent's credential (shown once, stored hashed)."""
    if "\x00" in (name or "") + version:
        raise RegistryError("name and version must not contain a NUL character")
    now = time.time()
    credential = new_secret("sna")
    base = slugify(name or "") or "agent"
    with writer(engine) as conn, conn.begin():
        row = conn.execute(
            select(enrolment_codes.c.id, enrolment_codes.c.school_id,
                   enrolment_codes.c.uses_left, enrolment_codes.c.expires_at)
            .where(enrolment_codes.c.code_hash == _code_hash(code))
        ).first()
        if row is None:
            raise NotAllowed("unknown enrolment code")
        if row.expires_at < now:
            raise NotAllowed("this enrolment code has expired; ask for a new one")
        # The use is taken only while one is left, decided by the UPDATE itself: two
        # replicas redeeming the last use at once both read uses_left=1 above, but on
        # PostgreSQL the second UPDATE waits for the first's row lock and then finds 0.
        used = conn.execute(update(enrolment_codes).where(
            enrolment_codes.c.id == row.id, enrolment_codes.c.uses_left >= 1)
            .values(uses_left=enrolment_codes.c.uses_left - 1)).rowcount
        if row.uses_left < 1 or not used:
            raise NotAllowed("this enrolment code has been used up; ask for a new one")
        # Agents of one school enrol one after another: on PostgreSQL two enrolments (other
        # codes, other replicas) would otherwise both read the same free id below and one
        # fail on the unique (school, slug). The school's row lock orders them (SQLite's
        # single writer already did; FOR UPDATE is left out there).
        conn.execute(select(schools.c.id).where(schools.c.id == row.school_id).with_for_update())
        # Suffixed ids are cut to fit 63 characters, so look for the shortened stem too.
        stem = base[:58].rstrip("-")
        taken = set(conn.scalars(select(agents.c.slug).where(
            agents.c.school_id == row.school_id, agents.c.slug.like(f"{stem}%"))))
        slug = base
        suffix = 2
        while slug in taken:
            slug = f"{stem}-{suffix}"
            suffix += 1
        conn.execute(agents.insert().values(
            school_id=row.school_id, slug=slug, name=name or slug,
            credential_hash=hash_secret(credential), created_at=now, version=version))
        school = conn.execute(
            select(boards.c.slug.label("board"), schools.c.slug)
            .join(boards, boards.c.id == schools.c.board_id)
            .where(schools.c.id == row.school_id)).one()
    return EnrollResponse(board=school.board, school=school.slug, agent=slug,
                          credential=credential)


def authenticate_agent(engine: Engine, credential: str) -> AgentIdentity:
    with engine.connect() as conn:
        row = conn.execute(
            select(agents.c.id, agents.c.slug, agents.c.school_id, agents.c.revoked_at,
                   schools.c.slug.label("school"), boards.c.slug.label("board"))
            .join(schools, schools.c.id == agents.c.school_id)
            .join(boards, boards.c.id == schools.c.board_id)
            .where(agents.c.credential_hash == hash_secret(credential))
        ).first()
    if row is None:
        raise NotAllowed("unknown agent credential; enrol the agent again")
    if row.revoked_at is not None:
        raise NotAllowed("this agent's credential was revoked; enrol it again")
    return AgentIdentity(row.id, row.slug, row.school_id, row.school, row.board)


def list_agents(engine: Engine, school: str | None = None) -> list[dict[str, Any]]:
    query = (select(boards.c.slug.label("board"), schools.c.slug.label("school"),
                    agents.c.slug.label("agent"), agents.c.version, agents.c.last_report_at,
                    agents.c.revoked_at, agents.c.outbox_records)
             .join(schools, schools.c.id == agents.c.school_id)
             .join(boards, boards.c.id == schools.c.board_id)
             .order_by(boards.c.slug, schools.c.slug, agents.c.slug))
    with engine.connect() as conn:
        if school:
            school_pk, _, _ = resolve_school(conn, school)
            query = query.where(agents.c.school_id == school_pk)
        return [dict(row._mapping) for row in conn.execute(query)]


def find_agent(conn: Connection, ref: str) -> tuple[int, int]:
    """``BOARD/SCHOOL/AGENT`` or ``SCHOOL/AGENT`` -> (agent pk, school pk)."""
    school_ref, _, agent = ref.rpartition("/")
    if not school_ref:
        raise RegistryError(f"name the agent as SCHOOL/AGENT or BOARD/SCHOOL/AGENT, not {ref!r}")
    school_pk, board, school = resolve_school(conn, school_ref)
    agent_pk = conn.scalar(select(agents.c.id).where(
        agents.c.school_id == school_pk, agents.c.slug == agent))
    if agent_pk is None:
        raise RegistryError(f"no agent {agent!r} in {board}/{school} (see: agent list)")
    return agent_pk, school_pk


def revoke_agent(engine: Engine, ref: str) -> None:
    with writer(engine) as conn, conn.begin():
        agent_pk, _ = find_agent(conn, ref)
        conn.execute(update(agents).where(agents.c.id == agent_pk, agents.c.revoked_at.is_(None))
                     .values(revoked_at=time.time()))


# --- admin and metrics tokens ---------------------------------------------------------------
#
# One table, two scopes: an "admin" token may use the admin API and read /metrics; a
# "metrics" token (for Prometheus) may read /metrics only. A token is found by the SHA-256
# of what was sent, so no stored secret is ever compared byte by byte with the request.

ADMIN_SCOPE = "admin"
METRICS_SCOPE = "metrics"
_PREFIXES = {ADMIN_SCOPE: "snadmin", METRICS_SCOPE: "snmetrics"}


def create_admin_token(engine: Engine) -> str:
    return _create_token(engine, ADMIN_SCOPE)[1]


def create_token(engine: Engine, scope: str) -> tuple[int, str]:
    """A new token of ``scope`` (admin or metrics): (its id, for revoking; the token)."""
    if scope not in _PREFIXES:
        raise RegistryError(f"no token scope {scope!r}")
    return _create_token(engine, scope)


def create_metrics_token(engine: Engine) -> tuple[int, str]:
    """A new token that reads /metrics and nothing else: (its id, for revoking; the token)."""
    return _create_token(engine, METRICS_SCOPE)


def is_admin(engine: Engine, token: str) -> bool:
    return token_scope(engine, token) == ADMIN_SCOPE


def may_read_metrics(engine: Engine, token: str) -> bool:
    return token_scope(engine, token) in (ADMIN_SCOPE, METRICS_SCOPE)


def token_scope(engine: Engine, token: str) -> str | None:
    """The scope of an active token; None when it is unknown or revoked."""
    with engine.connect() as conn:
        scope: str | None = conn.scalar(select(admin_tokens.c.scope).where(
            admin_tokens.c.token_hash == hash_secret(token), admin_tokens.c.revoked_at.is_(None)))
    return scope


def list_tokens(engine: Engine, scope: str) -> list[dict[str, Any]]:
    query = (select(admin_tokens.c.id, admin_tokens.c.created_at, admin_tokens.c.revoked_at)
             .where(admin_tokens.c.scope == scope).order_by(admin_tokens.c.id))
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def revoke_token(engine: Engine, scope: str, ref: str) -> int:
    """Revoke the token of ``scope`` named by its id or by the token itself; returns its id.

    Revoking twice is not an error (the first time stands); an id of another scope is
    "no such token", so ``metrics-token revoke`` can never lock out an admin.
    """
    ref = ref.strip()
    # An id is ASCII digits as `list` prints them: str.isdigit() alone also takes "²" (which
    # int() refuses) and other scripts' digits. One beyond a 64-bit integer is no token's id,
    # not an OverflowError from the driver.
    by_id = is_token_id(ref)
    if by_id and int(ref) >= 2**63:
        raise RegistryError(f"no {scope} token {ref} (see: {scope}-token list)")
    where = admin_tokens.c.id == int(ref) if by_id else admin_tokens.c.token_hash == hash_secret(ref)
    with writer(engine) as conn, conn.begin():
        token_id = conn.scalar(select(admin_tokens.c.id).where(where, admin_tokens.c.scope == scope))
        if token_id is None:
            raise RegistryError(f"no {scope} token {ref if by_id else '(as given)'} "
                                f"(see: {scope}-token list)")
        conn.execute(update(admin_tokens)
                     .where(admin_tokens.c.id == token_id, admin_tokens.c.revoked_at.is_(None))
                     .values(revoked_at=time.time()))
    return int(token_id)


def is_token_id(ref: str) -> bool:
    """Whether ``ref`` names a token by its id (ASCII digits), not by the token itself."""
    return ref.isascii() and ref.isdigit()


def _create_token(engine: Engine, scope: str) -> tuple[int, str]:
    token = new_secret(_PREFIXES[scope])
    with writer(engine) as conn, conn.begin():
        inserted = conn.execute(admin_tokens.insert().values(
            token_hash=hash_secret(token), created_at=time.time(), scope=scope))
    assert inserted.inserted_primary_key is not None
    return int(inserted.inserted_primary_key[0]), token


# --- helpers -----------------------------------------------------------------------------------


def _new_id(name: str, given: str | None, what: str) -> str:
    if not name.strip():
        raise RegistryError(f"the {what} needs a name")
    slug = given if given is not None else slugify(name)
    if not slug:
        raise RegistryError(f"cannot derive an id from {name!r}; give one with --id")
    try:
        return check_id(slug, what)
    except ValueError as exc:
        raise RegistryError(str(exc)) from None


def _code_hash(code: str) -> str:
    # Codes are typed by hand: case and surrounding spaces do not matter.
    return hash_secret(code.strip().upper())


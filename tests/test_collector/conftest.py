from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from collector.app import create_app
from collector.registry import add_board, add_school, create_enrolment_code, create_metrics_token
from collector.settings import CollectorSettings


@dataclass
class Site:
    """A collector app on its own store (a SQLite file, or a PostgreSQL database for tests
    marked both_stores), with one board, school and enrolled agent, and a metrics token
    for reading /metrics as Prometheus does."""

    client: TestClient
    credential: str
    db_url: str
    metrics_token: str = ""

    @property
    def engine(self) -> Any:
        return self.client.app.state.engine  # type: ignore[attr-defined]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}

    @property
    def metrics_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.metrics_token}"}

    def metrics(self) -> Any:
        """GET /metrics with the metrics token (the response: ``.text``, ``.status_code``)."""
        return self.client.get("/metrics", headers=self.metrics_auth)

    def enroll(self, name: str = "pi", school: str = "test-board/test-school") -> str:
        code = create_enrolment_code(self.engine, school, 1, 3600)
        answer = self.client.post("/api/v1/enroll", json={"code": code, "name": name,
                                                          "version": "0.1.0"})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["credential"])

    def sql(self, statement: str, *params: Any) -> list[Any]:
        """One statement with ``?`` placeholders, committed; its rows as the driver gives them
        (on PostgreSQL JSON comes back as text, as on SQLite, so tests compare one way)."""
        return run_sql(self.engine, statement, *params)


def run_sql(engine: Any, statement: str, *params: Any) -> list[Any]:
    """``statement`` (``?`` placeholders) on ``engine``'s raw DB-API connection, committed."""
    return run_sql_named(engine, statement, *params)[1]


def run_sql_named(engine: Any, statement: str, *params: Any) -> tuple[list[str], list[Any]]:
    """``run_sql``, with the names of the result's columns."""
    connection = engine.raw_connection()
    try:
        if engine.dialect.name != "postgresql":
            cursor = connection.execute(statement, params)
        else:
            from psycopg.types.string import TextLoader

            cursor = connection.cursor()
            # The cursor's own adapters: the pooled connection keeps parsing JSON for the app.
            for json_type in ("json", "jsonb"):
                cursor.adapters.register_loader(json_type, TextLoader)
            if params:
                cursor.execute(psycopg_placeholders(statement), params)
            else:
                cursor.execute(statement)
        names = [column[0] for column in cursor.description or ()]
        rows = list(cursor.fetchall()) if cursor.description else []
        connection.commit()
        return names, rows
    finally:
        connection.close()


# A quoted string ('…', '' inside), a quoted name ("…") or a comment: kept as written.
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)


def psycopg_placeholders(statement: str) -> str:
    """``statement`` with psycopg's ``%s`` for each ``?`` placeholder. A ``?`` or ``%``
    inside a string literal, a quoted name or a comment is text, not a placeholder: it
    stays a ``?`` (a literal ``%`` becomes ``%%``, as psycopg reads every ``%`` once
    parameters are given)."""
    parts: list[str] = []
    done = 0
    for quoted in _QUOTED.finditer(statement):
        parts.append(statement[done:quoted.start()].replace("%", "%%").replace("?", "%s"))
        parts.append(quoted.group().replace("%", "%%"))
        done = quoted.end()
    parts.append(statement[done:].replace("%", "%%").replace("?", "%s"))
    return "".join(parts)


@contextmanager
def make_site(tmp_path: Path, db_url: str | None = None, **settings: Any) -> Iterator[Site]:
    """The test collector on the store ``db_url`` (the ``db_url`` fixture's; by default a
    SQLite file in tmp_path) with these CollectorSettings."""
    db_url = db_url or f"sqlite:///{tmp_path / 'collector.db'}"
    app = create_app(CollectorSettings(db=db_url, **settings))
    add_board(app.state.engine, "Test Board")
    add_school(app.state.engine, "test-board", "Test School")
    with TestClient(app) as client:
        result = Site(client, "", db_url, create_metrics_token(app.state.engine)[1])
        result.credential = result.enroll()
        yield result


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Site]:
    with make_site(tmp_path, db_url) as result:
        yield result

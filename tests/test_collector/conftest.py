from __future__ import annotations

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
    """A collector app on its own SQLite file, with one board, school and enrolled agent, and
    a metrics token for reading /metrics as Prometheus does."""

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
        connection = self.engine.raw_connection()
        try:
            return list(connection.execute(statement, params).fetchall())
        finally:
            connection.close()


@contextmanager
def make_site(tmp_path: Path, **settings: Any) -> Iterator[Site]:
    """The test collector with these CollectorSettings (beyond its own database)."""
    db_url = f"sqlite:///{tmp_path / 'collector.db'}"
    app = create_app(CollectorSettings(db=db_url, **settings))
    add_board(app.state.engine, "Test Board")
    add_school(app.state.engine, "test-board", "Test School")
    with TestClient(app) as client:
        result = Site(client, "", db_url, create_metrics_token(app.state.engine)[1])
        result.credential = result.enroll()
        yield result


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with make_site(tmp_path) as result:
        yield result

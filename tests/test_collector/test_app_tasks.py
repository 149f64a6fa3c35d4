"""The collector's background work runs while it serves and stops with it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import collector.app
from collector.settings import CollectorSettings


def test_retention_runs_while_serving_and_is_cancelled_at_shutdown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    async def retention_loop(engine: Any, settings: CollectorSettings) -> None:
        seen.append(f"started with retention {settings.retention:.0f}")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    monkeypatch.setattr(collector.app, "retention_loop", retention_loop)
    app = collector.app.create_app(CollectorSettings(db=f"sqlite:///{tmp_path / 'c.db'}", retention="30d"))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert seen == [f"started with retention {30 * 86400}"]
    assert seen[-1] == "cancelled"

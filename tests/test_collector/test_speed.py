"""The speed endpoints the agent's http backend uses."""

from __future__ import annotations

import os

from collector.settings import CollectorSettings


def test_download_streams_exactly_the_bytes_asked_for(site) -> None:  # type: ignore[no-untyped-def]
    for size in (1, 262_144, 3_000_001):
        answer = site.client.get(f"/api/v1/speed/download?bytes={size}", headers=site.auth)
        assert answer.status_code == 200
        assert len(answer.content) == size
        assert answer.headers["content-length"] == str(size)
    # Incompressible: random, not zeros.
    body = site.client.get("/api/v1/speed/download?bytes=65536", headers=site.auth).content
    assert len(set(body)) > 200


def test_upload_counts_and_discards(site) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(1_234_567)
    answer = site.client.post("/api/v1/speed/upload", content=data, headers=site.auth)
    assert answer.status_code == 200
    assert answer.json()["received_bytes"] == len(data)
    assert site.client.get("/api/v1/speed/ping", headers=site.auth).status_code == 204


def test_speed_endpoints_need_a_credential_and_respect_the_cap(site) -> None:  # type: ignore[no-untyped-def]
    assert site.client.get("/api/v1/speed/download?bytes=10").status_code == 401
    assert site.client.post("/api/v1/speed/upload", content=b"x").status_code == 401
    assert site.client.get("/api/v1/speed/ping").status_code == 401
    cap = CollectorSettings().speed_max_bytes
    answer = site.client.get(f"/api/v1/speed/download?bytes={cap + 1}", headers=site.auth)
    assert answer.status_code == 400 and "cap" in answer.json()["detail"]
    assert site.client.get("/api/v1/speed/download?bytes=0", headers=site.auth).status_code == 422
    site.client.app.state.settings.speed_max_bytes = 1000
    answer = site.client.post("/api/v1/speed/upload", content=b"x" * 1001, headers=site.auth)
    assert answer.status_code == 413

"""Enrolment codes, agent ids, revocation, the admin API and central agent settings."""

from __future__ import annotations

import time

import pytest

from collector.agent_settings import parse_assignments, update_settings
from collector.registry import (
    NotAllowed,
    RegistryError,
    add_board,
    add_school,
    create_admin_token,
    create_enrolment_code,
    enroll,
)

pytestmark = pytest.mark.both_stores


def test_a_code_has_limited_uses_and_ids_stay_unique(site) -> None:  # type: ignore[no-untyped-def]
    code = create_enrolment_code(site.engine, "test-school", 2, 3600)
    first = enroll(site.engine, code.lower(), "Pi Lokaal 12", "0.1.0")  # typed by hand
    second = enroll(site.engine, code, "Pi Lokaal 12", "0.1.0")
    assert (first.agent, second.agent) == ("pi-lokaal-12", "pi-lokaal-12-2")
    assert (first.board, first.school) == ("test-board", "test-school")
    assert first.credential != second.credential
    with pytest.raises(NotAllowed, match="used up"):
        enroll(site.engine, code, "third", "0.1.0")
    # Only a hash of the credential is stored.
    hashes = [row[0] for row in site.sql("SELECT credential_hash FROM agents")]
    assert first.credential not in hashes and len(hashes[0]) == 64


def test_expired_and_unknown_codes_are_refused_over_http(site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code = create_enrolment_code(site.engine, "test-board/test-school", 1, 60)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 61)
    answer = site.client.post("/api/v1/enroll", json={"code": code, "version": "1"})
    assert answer.status_code == 403 and "expired" in answer.json()["detail"]
    monkeypatch.undo()
    answer = site.client.post("/api/v1/enroll", json={"code": "NOPE-NOPE", "version": "1"})
    assert answer.status_code == 403 and "unknown" in answer.json()["detail"]
    answer = site.client.post("/api/v1/enroll", json={"version": "1"})
    assert answer.status_code == 422 and answer.json()["detail"] == "code: Field required"


def test_school_ids_repeat_across_boards_and_must_then_be_qualified(site) -> None:  # type: ignore[no-untyped-def]
    add_board(site.engine, "Other Board")
    add_school(site.engine, "other-board", "Test School")
    with pytest.raises(RegistryError, match="several boards"):
        create_enrolment_code(site.engine, "test-school", 1, 60)
    assert create_enrolment_code(site.engine, "other-board/test-school", 1, 60)
    with pytest.raises(RegistryError, match="exists already"):
        add_board(site.engine, "Other Board")
    with pytest.raises(RegistryError, match="lowercase"):
        add_board(site.engine, "X", "Bad_Id")


def test_admin_api_needs_an_admin_token(site) -> None:  # type: ignore[no-untyped-def]
    assert site.client.get("/api/v1/admin/agents").status_code == 401
    assert site.client.get("/api/v1/admin/agents", headers=site.auth).status_code == 401
    token = create_admin_token(site.engine)
    answer = site.client.get("/api/v1/admin/agents", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert [a["agent"] for a in answer.json()] == ["pi"]
    # Production mode: the API description is for admins only.
    assert site.client.get("/openapi.json").status_code == 401
    assert site.client.get("/docs").status_code == 404
    assert site.client.get("/openapi.json", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_agent_settings_merge_school_then_agent(site) -> None:  # type: ignore[no-untyped-def]
    token = create_admin_token(site.engine)
    admin = {"Authorization": f"Bearer {token}"}
    answer = site.client.put("/api/v1/admin/schools/test-board/test-school/agent-settings",
                             json={"probes": {"system": {"interval": "30s"},
                                              "bandwidth": {"interval": "4h"}}}, headers=admin)
    assert answer.status_code == 200
    update_settings(site.engine, "test-school", "pi",
                    parse_assignments(["probes.bandwidth.interval=2h",
                                       "contract.download_bytes_per_second=12500000"]))
    fetched = site.client.get("/api/v1/agent/settings", headers=site.auth).json()
    assert fetched["settings"] == {"probes": {"system": {"interval": "30s"},
                                              "bandwidth": {"interval": "2h"}},
                                   "contract": {"download_bytes_per_second": 12500000}}
    assert fetched["updated_at_seconds"] > 0
    missing = site.client.put("/api/v1/admin/schools/test-board/nope/agent-settings",
                              json={}, headers=admin)
    assert missing.status_code == 404
    with pytest.raises(RegistryError, match="KEY=VALUE"):
        parse_assignments(["no-equals-sign"])


def test_development_mode_opens_the_api_description(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from collector.app import create_app
    from collector.settings import CollectorSettings

    app = create_app(CollectorSettings(db=f"sqlite:///{tmp_path / 'dev.db'}", mode="development"))
    with TestClient(app) as client:
        assert client.get("/docs").status_code == 200
        schema = client.get("/openapi.json").json()
        assert "/api/v1/ingest" in schema["paths"]


def test_admin_settings_need_a_json_object(site) -> None:  # type: ignore[no-untyped-def]
    admin = {"Authorization": f"Bearer {create_admin_token(site.engine)}"}
    path = "/api/v1/admin/schools/test-board/test-school/agents/pi/agent-settings"
    for body in ([1, 2], "text", 5):
        answer = site.client.put(path, json=body, headers=admin)
        assert answer.status_code == 422, answer.text
    assert site.client.put(path, json={"probes": {"system": {"interval": "2m"}}},
                           headers=admin).json() == {"probes": {"system": {"interval": "2m"}}}
    assert site.client.put(path.replace("/pi/", "/ghost/"), json={}, headers=admin).status_code == 404


def test_agents_of_one_name_enrolling_at_once_on_separate_connections_all_get_an_id(site) -> None:  # type: ignore[no-untyped-def]
    """A rollout images many Pis alike: they enrol with the same name at the same moment,
    on different replicas, with codes of their own (one code's row lock would queue them).
    Each must get its own id (no unique-constraint error)."""
    import threading

    from collector.db.engine import open_engine

    engines = [open_engine(site.db_url) for _ in range(8)]
    codes = [create_enrolment_code(site.engine, "test-school", 1, 3600) for _ in engines]
    start = threading.Barrier(len(engines))
    answers: list[object] = []

    def join(engine: object, code: str) -> None:
        start.wait()
        try:
            answers.append(enroll(engine, code, "pi", "0.1.0").agent)  # type: ignore[arg-type]
        except Exception as exc:  # the failure is the finding: keep it for the assert
            answers.append(exc)

    threads = [threading.Thread(target=join, args=pair) for pair in zip(engines, codes, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for engine in engines:
        engine.dispose()
    # "pi" is the agent make_site enrolled: these are pi-2 … pi-9.
    assert sorted(map(str, answers)) == sorted(f"pi-{n}" for n in range(2, 10)), answers

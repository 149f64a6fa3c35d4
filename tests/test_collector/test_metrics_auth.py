"""/metrics needs a metrics or admin token; a metrics token reads /metrics and nothing else.

Through the real app (TestClient on its own SQLite file), the real `schoolnet-collector
metrics-token` commands, the real migration from 0005, and Debian's Prometheus scraping a
real collector with and without the token file.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.processes import CollectorProcess, PrometheusProcess, wait_until
from support.records import deliver, new_stream, record
from support.store import alembic_config
from support.tools import console_script

from collector.app import create_app
from collector.registry import (
    METRICS_SCOPE,
    RegistryError,
    create_admin_token,
    create_metrics_token,
    is_admin,
    revoke_token,
)
from collector.settings import CollectorSettings


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(answer: Any) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "schoolnet_" not in answer.text, "a refused scrape must not leak any figure"


def test_metrics_without_a_valid_token_is_401(site) -> None:  # type: ignore[no-untyped-def]
    deliver(site, record(1, new_stream()))
    assert_refused(site.client.get("/metrics"))
    assert_refused(site.client.get("/metrics", headers={"Authorization": "Bearer"}))
    assert_refused(site.client.get("/metrics", headers={"Authorization": f"Basic {site.metrics_token}"}))
    assert_refused(site.client.get("/metrics", headers=bearer("snmetrics_not-a-token-we-made")))
    # Almost the right token: one character changed.
    wrong = site.metrics_token[:-1] + ("A" if site.metrics_token[-1] != "A" else "B")
    assert_refused(site.client.get("/metrics", headers=bearer(wrong)))


def test_an_agents_credential_cannot_read_every_schools_figures(site) -> None:  # type: ignore[no-untyped-def]
    deliver(site, record(1, new_stream()))
    assert_refused(site.client.get("/metrics", headers=site.auth))


def test_metrics_and_admin_tokens_read_metrics(site) -> None:  # type: ignore[no-untyped-def]
    deliver(site, record(1, new_stream()))
    for token in (site.metrics_token, create_admin_token(site.engine)):
        answer = site.client.get("/metrics", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        assert 'schoolnet_agent_info{board="test-board",school="test-school",agent="pi"' in answer.text
    # Surrounding spaces and the scheme's case do not matter (RFC 7235: the scheme is
    # case-insensitive).
    assert site.client.get("/metrics", headers={
        "Authorization": f"bearer  {site.metrics_token} "}).status_code == 200


def test_a_revoked_metrics_token_is_401_and_others_keep_working(site) -> None:  # type: ignore[no-untyped-def]
    other_id, other = create_metrics_token(site.engine)
    assert site.client.get("/metrics", headers=bearer(other)).status_code == 200
    assert revoke_token(site.engine, METRICS_SCOPE, str(other_id)) == other_id
    assert_refused(site.client.get("/metrics", headers=bearer(other)))
    assert site.metrics().status_code == 200
    # Revoked by the token itself; twice is not an error.
    assert revoke_token(site.engine, METRICS_SCOPE, site.metrics_token) != other_id
    revoke_token(site.engine, METRICS_SCOPE, site.metrics_token)
    assert_refused(site.metrics())


def test_metrics_token_revocation_never_touches_an_admin_token(site) -> None:  # type: ignore[no-untyped-def]
    admin = create_admin_token(site.engine)
    [(admin_id,)] = site.sql("SELECT id FROM admin_tokens WHERE scope = 'admin'")
    with pytest.raises(RegistryError, match="no metrics token"):
        revoke_token(site.engine, METRICS_SCOPE, str(admin_id))
    with pytest.raises(RegistryError, match="no metrics token"):
        revoke_token(site.engine, METRICS_SCOPE, admin)
    assert is_admin(site.engine, admin)


def test_a_metrics_token_cannot_use_the_admin_api_or_send_records(site) -> None:  # type: ignore[no-untyped-def]
    reader = bearer(site.metrics_token)
    assert site.client.get("/api/v1/admin/agents", headers=reader).status_code == 401
    answer = site.client.put("/api/v1/admin/schools/test-board/test-school/agent-settings",
                             json={"probes": {"system": {"interval": "30s"}}}, headers=reader)
    assert answer.status_code == 401
    assert site.client.get("/openapi.json", headers=reader).status_code == 401
    assert site.client.post("/api/v1/ingest", json={}, headers=reader).status_code == 401
    assert not is_admin(site.engine, site.metrics_token)


def test_only_a_hash_of_a_metrics_token_is_stored(site) -> None:  # type: ignore[no-untyped-def]
    [(stored, scope)] = site.sql("SELECT token_hash, scope FROM admin_tokens")
    assert scope == "metrics" and len(stored) == 64
    assert site.metrics_token.startswith("snmetrics_") and site.metrics_token not in stored


def cli(db: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SCHOOLNET_DB=f"sqlite:///{db}")
    return subprocess.run([console_script("schoolnet-collector"), *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_metrics_token_commands_create_list_and_revoke(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    made = cli(db, "metrics-token", "create")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert made.stdout == token + "\n" and token.startswith("snmetrics_"), "the token alone on stdout"
    assert "metrics-token revoke 1" in made.stderr
    second = cli(db, "metrics-token", "create").stdout.strip()
    admin = cli(db, "admin-token", "create").stdout.strip()

    app = create_app(CollectorSettings(db=f"sqlite:///{db}"))
    with TestClient(app) as client:
        assert client.get("/metrics", headers=bearer(token)).status_code == 200
        assert client.get("/api/v1/admin/agents", headers=bearer(token)).status_code == 401
        assert client.get("/api/v1/admin/agents", headers=bearer(admin)).status_code == 200

        assert cli(db, "metrics-token", "revoke", "1").returncode == 0
        assert client.get("/metrics", headers=bearer(token)).status_code == 401
        assert client.get("/metrics", headers=bearer(second)).status_code == 200
        # The token itself only through stdin, where `ps` does not show it.
        revoked = cli(db, "metrics-token", "revoke", "-", stdin=second + "\n")
        assert revoked.returncode == 0 and "revoked metrics token 2" in revoked.stderr
        assert client.get("/metrics", headers=bearer(second)).status_code == 401
        assert client.get("/metrics", headers=bearer(admin)).status_code == 200

    listed = cli(db, "metrics-token", "list").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["1", "2"], "admin tokens are not listed"
    assert all(line.split("\t")[2].startswith("revoked 20") for line in listed), listed


def test_admin_tokens_are_listed_and_revoked_like_metrics_tokens(tmp_path: Path) -> None:
    """A leaked admin token can be revoked; metrics-token ids are not admin ids."""
    from collector import cli as collector_cli
    from collector.registry import ADMIN_SCOPE, METRICS_SCOPE

    assert (collector_cli.ADMIN, collector_cli.METRICS) == (ADMIN_SCOPE, METRICS_SCOPE)
    db = tmp_path / "c.db"
    made = cli(db, "admin-token", "create")
    assert made.returncode == 0 and made.stdout.strip().startswith("snadmin_")
    assert "admin-token revoke 1" in made.stderr
    leaked, kept = made.stdout.strip(), cli(db, "admin-token", "create").stdout.strip()
    metrics = cli(db, "metrics-token", "create").stdout.strip()
    assert [line.split("\t")[0] for line in cli(db, "admin-token", "list").stdout.splitlines()] == ["1", "2"]
    refused = cli(db, "admin-token", "revoke", "3")  # the metrics token's id
    assert refused.returncode == 2 and "no admin token 3" in refused.stderr
    assert cli(db, "admin-token", "revoke", "-", stdin=leaked + "\n").returncode == 0
    app = create_app(CollectorSettings(db=f"sqlite:///{db}"))
    with TestClient(app) as client:
        assert client.get("/api/v1/admin/agents", headers=bearer(leaked)).status_code == 401
        assert client.get("/metrics", headers=bearer(leaked)).status_code == 401
        assert client.get("/api/v1/admin/agents", headers=bearer(kept)).status_code == 200
        assert client.get("/metrics", headers=bearer(metrics)).status_code == 200
    listed = cli(db, "admin-token", "list").stdout.splitlines()
    assert listed[0].split("\t")[2].startswith("revoked 20") and listed[1].endswith("active")


@pytest.mark.parametrize("args, stdin, message", [
    (["metrics-token", "revoke", "3"], None, "no metrics token 3"),
    (["metrics-token", "revoke", "snmetrics_abc"], None, "give the token's id"),
    (["metrics-token", "revoke", "-"], "", "give the token's id"),
    (["metrics-token", "revoke", "-"], "snmetrics_unknown\n", "no metrics token (as given)"),
    (["metrics-token"], None, "required"),
])
def test_bad_metrics_token_commands_give_one_line(tmp_path: Path, args: list[str], stdin: str | None,
                                                  message: str) -> None:
    result = cli(tmp_path / "c.db", *args, stdin=stdin)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("schoolnet-collector") and message in lines[0], lines
    assert "snmetrics_unknown" not in result.stderr, "a token is never echoed back"


def test_tokens_from_before_scopes_stay_admin_tokens_and_a_downgrade_revokes_metrics_tokens(
        tmp_path: Path) -> None:
    from alembic import command

    from collector.db.engine import open_engine
    from collector.tokens import hash_secret


    engine = open_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), "0005")  # the store as the previous release left it
        connection.exec_driver_sql("INSERT INTO admin_tokens (token_hash, created_at) VALUES (?, 1)",
                                   (hash_secret("snadmin_old"),))
        connection.commit()
        command.upgrade(alembic_config(connection), "head")
        connection.commit()
    assert is_admin(engine, "snadmin_old")
    _, reader = create_metrics_token(engine)
    with engine.connect() as connection:
        command.downgrade(alembic_config(connection), "0005")
        connection.commit()
        rows = dict(connection.exec_driver_sql("SELECT token_hash, revoked_at FROM admin_tokens").fetchall())
    # Without the column every row would read as an admin token: the metrics one is revoked.
    assert rows[hash_secret("snadmin_old")] is None
    assert rows[hash_secret(reader)] is not None


EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "prometheus.example.yml"


def test_prometheus_scrapes_with_the_example_configs_token_file_and_gets_401_without(
        tmp_path: Path) -> None:
    """The example config's scrape job, as shipped but for address, scheme and pace, reads a
    real collector with a token from `metrics-token create`; the same job without its
    authorization block is refused."""
    import yaml

    collector = CollectorProcess(tmp_path)
    collector.start()
    try:
        token_file = collector.metrics_token_file()
        assert token_file.stat().st_mode & 0o777 == 0o600
        [job] = yaml.safe_load(EXAMPLE_CONFIG.read_text())["scrape_configs"]
        assert job["authorization"] == {"type": "Bearer",
                                        "credentials_file": "/etc/prometheus/schoolnet-collector.token"}
        job.update(scheme="http", static_configs=[{"targets": [f"127.0.0.1:{collector.port}"]}],
                   authorization={**job["authorization"], "credentials_file": str(token_file)})
        anonymous = {key: value for key, value in job.items() if key != "authorization"}
        anonymous["job_name"] = "anonymous"
        prometheus = PrometheusProcess(tmp_path, "unused")
        prometheus.config_path.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [job, anonymous]}))
        prometheus.start()
        try:
            def both_scraped() -> dict[str, str] | None:
                up = prometheus.query("up")
                return {s["metric"]["job"]: s["value"][1] for s in up} if len(up) == 2 else None

            assert wait_until(both_scraped, 20, "both scrapes") == {"schoolnet-collector": "1",
                                                                     "anonymous": "0"}
            assert prometheus.query('scrape_samples_scraped{job="schoolnet-collector"} > 0')
            [refused] = [t for t in targets(prometheus) if t["labels"]["job"] == "anonymous"]
            assert "401" in refused["lastError"], refused
        finally:
            prometheus.stop()
    finally:
        collector.stop()


def targets(prometheus: PrometheusProcess) -> list[dict[str, Any]]:
    import httpx

    answer = httpx.get(f"{prometheus.url}/api/v1/targets", timeout=5)
    answer.raise_for_status()
    return list(answer.json()["data"]["activeTargets"])

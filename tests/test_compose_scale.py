"""The scale tier (deploy/compose/compose.scale.yaml) merged onto the one-box stack.

No Docker engine here: the merge is done by Debian's docker-compose (v1, `config` needs no
engine), and the result is checked against the Compose Specification's schema and the
stack's own rules; the configs it mounts are checked with the real tools: caddy, promtool
and vmalert (Debian's victoria-metrics package), which must accept the unchanged rules.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from support.tools import require_tool
from test_compose import (
    CADDY_VAR,
    PINNED,
    ROOT,
    SCHEMA,
    STACK,
    caddy_env,
    filled_env,
)

SCALE_FILE = STACK / "compose.scale.yaml"
CADDYFILE_SCALE = STACK / "Caddyfile.scale"
PROMETHEUS_SCALE = STACK / "prometheus.scale.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules"
POSTGRES_PINNED = re.compile(r"^postgres:\d+\.\d+-(bookworm|trixie)$")
NEW_SERVICES = {"postgres", "victoriametrics", "vmalert"}


@pytest.fixture(scope="module")
def merged() -> dict[str, Any]:
    """compose.yaml with compose.scale.yaml on top, as `docker compose -f … -f …` sees it."""
    tool = require_tool("docker-compose")
    result = subprocess.run(
        [tool, "-f", str(STACK / "compose.yaml"), "-f", str(SCALE_FILE), "config"],
        env={**os.environ, **filled_env()}, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert isinstance(data, dict)
    return data


def scale_file() -> dict[str, Any]:
    data = yaml.safe_load(SCALE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def test_the_merged_stack_matches_the_compose_specification_schema(merged: dict[str, Any]) -> None:
    # Validated after interpolation, as Compose does (replicas is a number only then).
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
              for error in validator.iter_errors(merged)]
    assert errors == []
    assert set(merged["services"]) >= NEW_SERVICES


def test_collectors_use_postgresql_and_remote_write_to_the_stacks_victoriametrics(
        merged: dict[str, Any]) -> None:
    services = merged["services"]
    collector = services["collector"]
    env = collector["environment"]
    assert env["SCHOOLNET_DB"] == "postgresql://schoolnet@postgres:5432/schoolnet"
    # No password in the URL or the environment: libpq reads the mounted password file.
    assert "@" in env["SCHOOLNET_DB"] and ":" not in env["SCHOOLNET_DB"].split("//")[1].split("@")[0]
    assert env["PGPASSFILE"] == "/run/secrets/postgres_pgpass"
    secrets = {secret if isinstance(secret, str) else secret["source"]
               for secret in collector["secrets"]}
    assert "postgres_pgpass" in secrets
    assert env["SCHOOLNET_REMOTE_WRITE_URL"] == "http://victoriametrics:8428/api/v1/write"
    assert "-httpListenAddr=:8428" in services["victoriametrics"]["command"]
    # Replicas: one instance label for all, so a school's series stay one series.
    assert env["SCHOOLNET_REMOTE_WRITE_INSTANCE"] == filled_env()["SCHOOLNET_COLLECTOR_DOMAIN"]
    assert int(collector["deploy"]["replicas"]) == 2
    # The collector reaches PostgreSQL; nothing else but the server itself is on that network.
    on_store = {name for name, service in services.items() if "store" in service["networks"]}
    assert on_store == {"collector", "postgres"}
    assert "container_name" not in collector  # replicas need distinct names


def test_new_services_are_pinned_checked_and_unprivileged(merged: dict[str, Any]) -> None:
    for name in NEW_SERVICES:
        service = merged["services"][name]
        # PostgreSQL numbers its releases MAJOR.MINOR: 17.6 is one exact release.
        exact = PINNED if name != "postgres" else POSTGRES_PINNED
        assert exact.match(service["image"]), f"{name}: {service['image']}"
        assert service.get("restart") == "unless-stopped", name
        assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert not service.get("ports"), f"{name} publishes a port"
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
    assert str(merged["services"]["postgres"]["user"]).split(":")[0] == "999"
    assert str(merged["services"]["vmalert"]["user"]).split(":")[0] == "65534"
    # Still only the proxy publishes ports.
    assert {name for name, service in merged["services"].items() if service.get("ports")} == {"proxy"}


def test_mounts_exist_and_replace_the_one_box_configs(merged: dict[str, Any]) -> None:
    def mounts(service: str) -> dict[str, Path]:
        found = {}
        for volume in merged["services"][service].get("volumes", []):
            if isinstance(volume, dict):
                source, target = volume.get("source", ""), volume["target"]
            else:
                source, target = volume.split(":")[:2]
            if source.startswith("/"):
                found[target] = Path(source)
        return found

    for service in merged["services"]:
        for target, source in mounts(service).items():
            assert source.exists(), f"{service}: {source} (at {target}) is missing"
    assert mounts("prometheus")["/etc/prometheus/prometheus.yml"] == PROMETHEUS_SCALE
    assert mounts("proxy")["/etc/caddy/Caddyfile"] == CADDYFILE_SCALE
    assert mounts("vmalert")["/etc/rules"] == RULES
    datasources = mounts("grafana")["/etc/grafana/provisioning/datasources"]
    [source] = [entry for path in sorted(datasources.glob("*.y*ml"))
                for entry in yaml.safe_load(path.read_text())["datasources"]]
    # The uid every dashboard's datasource variable defaults to, at VictoriaMetrics.
    assert source["uid"] == "schoolnet-prometheus"
    assert source["url"] == "http://victoriametrics:8428"


def test_secret_files_of_the_scale_tier_are_kept_out_of_git() -> None:
    git = require_tool("git")
    for name, secret in scale_file()["secrets"].items():
        path = (STACK / secret["file"]).resolve()
        result = subprocess.run([git, "check-ignore", "-q", str(path)], cwd=ROOT, check=False)
        assert result.returncode == 0, f"secret {name}: {path} is not git-ignored"


@pytest.mark.parametrize("tls", ["internal", "ict@school.test"])
def test_caddy_validates_the_balancing_caddyfile(tls: str, tmp_path: Path,
                                                 merged: dict[str, Any]) -> None:
    caddy = require_tool("caddy")
    result = subprocess.run([caddy, "validate", "--adapter", "caddyfile", "--config",
                             str(CADDYFILE_SCALE)], env=caddy_env(tls, tmp_path),
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "not formatted" not in result.stderr
    assert set(CADDY_VAR.findall(CADDYFILE_SCALE.read_text())) <= set(
        merged["services"]["proxy"]["environment"])
    assert "dynamic a collector 8470" in CADDYFILE_SCALE.read_text()


def test_promtool_checks_the_scale_prometheus_config(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    (tmp_path / "run" / "secrets").mkdir(parents=True)
    (tmp_path / "run" / "secrets" / "metrics_token").write_text("a-metrics-token\n")
    config = tmp_path / "prometheus.yml"
    config.write_text(PROMETHEUS_SCALE.read_text().replace("/run/secrets/", f"{tmp_path}/run/secrets/"))
    result = subprocess.run([promtool, "check", "config", str(config)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    parsed = yaml.safe_load(PROMETHEUS_SCALE.read_text())
    # The rules run in vmalert; Prometheus forwards what it scrapes to VictoriaMetrics.
    assert "rule_files" not in parsed
    assert parsed["remote_write"] == [{"url": "http://victoriametrics:8428/api/v1/write"}]
    jobs = {job["job_name"]: job for job in parsed["scrape_configs"]}
    assert jobs["schoolnet-collector"]["dns_sd_configs"][0]["names"] == ["collector"]


def test_vmalert_accepts_the_unchanged_rules_and_refuses_a_broken_one(tmp_path: Path,
                                                                       merged: dict[str, Any]) -> None:
    vmalert = require_tool("vmalert")
    flags = merged["services"]["vmalert"]["command"]
    label = next(flag for flag in flags if flag.startswith("-external.label="))
    assert label.startswith("-external.label=collector_url=https://")

    def dry_run(pattern: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([vmalert, f"-rule={pattern}", "-dryRun", label],
                              capture_output=True, text=True, timeout=60, check=False)

    result = dry_run(str(RULES / "*.yml"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    broken = tmp_path / "broken.yml"
    shutil.copy(RULES / "schoolnet.alerts.yml", broken)
    broken.write_text(broken.read_text().replace("expr: ", "expr: sum(by (", 1))
    assert dry_run(str(broken)).returncode != 0

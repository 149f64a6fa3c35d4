"""The server stack (deploy/compose/), the collector's Dockerfile and its build context.

No Docker engine and no Compose plugin here, so the compose file is checked against the
Compose Specification's JSON schema (vendored: tests/fixtures/compose/SOURCE.md), by
Debian's docker-compose (v1, which validates without an engine) and by `docker compose
config` where the plugin exists; then by the stack's own rules (pinned images,
healthchecks, mounts, variables, ports). The configs the stack mounts are checked with the
real tools (promtool, amtool, caddy), and the Dockerfile's command and healthcheck, and
the Caddyfile, are run for real in a network namespace of their own.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from support.tools import require_tool, unavailable

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / "deploy" / "compose"
COMPOSE_FILE = STACK / "compose.yaml"
ENV_EXAMPLE = STACK / ".env.example"
CADDYFILE = STACK / "Caddyfile"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SCHEMA = ROOT / "tests" / "fixtures" / "compose" / "compose_spec.json"

PROXY = "proxy"
# An exact version (v3.5.0, 12.0.2, 2.10.2-alpine, 3.11.12-slim-bookworm), optionally with
# a digest; never `latest` nor a bare major or minor (`3`, `3.11-slim`).
PINNED = re.compile(r"^[a-z0-9][a-z0-9._/-]*:v?\d+\.\d+\.\d+(?:-[a-z0-9.-]+)?(?:@sha256:[0-9a-f]{64})?$")
# ${VAR}, ${VAR:-default}, ${VAR:?error} as Compose interpolates them ($$ is a literal $).
COMPOSE_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:[:?\-+][^}]*)?\}")
CADDY_VAR = re.compile(r"\{\$([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def env_example() -> dict[str, str]:
    """VAR=value lines of .env.example, each of which must have a comment right above it."""
    values: dict[str, str] = {}
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), f".env.example:{number + 1}: {line!r}"
        assert number > 0 and lines[number - 1].startswith("#"), f"{name} has no comment above it"
        values[name] = value
    return values


def filled_env() -> dict[str, str]:
    """.env.example as an operator fills it in: the required password set."""
    env = env_example()
    env["GRAFANA_ADMIN_PASSWORD"] = "a-long-random-test-password"
    return env


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path resolved against the compose file's folder, container path) per bind mount."""
    mounts = []
    for volume in service.get("volumes", []):
        assert isinstance(volume, str), "volumes in short syntax, SOURCE:TARGET[:ro]"
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append(((STACK / source).resolve(), target))
    return mounts


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comment lines dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, rest = pending.strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def dockerfile(keyword: str) -> list[str]:
    return [rest for key, rest in dockerfile_instructions() if key == keyword]


# --- the compose file -----------------------------------------------------------------


def test_compose_file_matches_the_compose_specification_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
              for error in validator.iter_errors(compose())]
    assert errors == []


def test_the_schema_rejects_a_broken_service() -> None:
    """The vendored schema really checks services (a typo'd key is an error)."""
    broken = compose()
    broken["services"]["collector"]["helthcheck"] = broken["services"]["collector"].pop("healthcheck")
    assert not jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text())).is_valid(broken)


def test_docker_compose_v1_accepts_the_stack() -> None:
    """Debian's docker-compose validates the file, interpolation included, without an engine."""
    tool = require_tool("docker-compose")
    env = {**os.environ, **filled_env()}
    result = subprocess.run([tool, "-f", str(COMPOSE_FILE), "config", "-q"], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    # A required variable left out is an error naming it, not an empty value.
    del env["SCHOOLNET_TLS"]
    result = subprocess.run([tool, "-f", str(COMPOSE_FILE), "config", "-q"], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "SCHOOLNET_TLS" in result.stderr


def test_the_newest_compose_present_accepts_the_stack() -> None:
    """`docker compose config` where the plugin is present (it cannot be installed here: no
    engine, and Debian packages only docker-compose v1); otherwise Debian's docker-compose,
    which scripts/test installs. Never a skip: one of them always judges the file."""
    docker = shutil.which("docker")
    probe = (subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
             if docker else None)
    plugin = docker is not None and probe is not None and probe.returncode == 0
    command = ([docker, "compose"] if plugin and docker else [require_tool("docker-compose")])
    result = subprocess.run([*command, "-f", str(COMPOSE_FILE), "config", "-q"],
                            env={**os.environ, **filled_env()}, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


def test_every_image_is_pinned_to_an_exact_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in services().items():
        image = service["image"]
        if "build" in service:
            # Our own image: tagged with the version it is built from.
            assert image.rsplit(":", 1)[1] == version, f"{name}: {image} is not {version}"
        else:
            assert PINNED.match(image), f"{name}: {image} is not an exact version"
        assert ":latest" not in image


def test_every_service_has_a_healthcheck_and_a_restart_policy() -> None:
    for name, service in services().items():
        check = service.get("healthcheck", {})
        assert not check.get("disable"), name
        assert check.get("test", [None])[0] in {"CMD", "CMD-SHELL"}, f"{name} has no healthcheck"
        assert service.get("restart") in {"unless-stopped", "always"}, name


@pytest.mark.parametrize(("service", "url"), [
    ("collector", "http://127.0.0.1:8470/healthz"),
    ("prometheus", "http://127.0.0.1:9090/-/healthy"),
    ("alertmanager", "http://127.0.0.1:9093/-/healthy"),
    ("grafana", "http://127.0.0.1:3000/api/health"),
    ("proxy", "http://127.0.0.1:2019/config/"),
])
def test_healthchecks_ask_each_service_its_own_health_endpoint(service: str, url: str) -> None:
    assert url in " ".join(services()[service]["healthcheck"]["test"])


def test_only_the_proxy_publishes_ports_and_only_80_and_443() -> None:
    publishing = {name for name, service in services().items() if service.get("ports")}
    assert publishing == {PROXY}
    for name, service in services().items():
        assert "network_mode" not in service, f"{name}: host networking bypasses the proxy"
    ports = {str(port).split(":")[-1] for port in services()[PROXY]["ports"]}
    assert ports == {"80", "443", "443/udp"}


def test_services_run_without_root_or_without_capabilities() -> None:
    for name, service in services().items():
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service.get("cap_drop") == ["ALL"], name
        assert not service.get("privileged"), name
        if name == "collector":
            continue  # its image's USER (the Dockerfile test checks it)
        if name == PROXY:
            # Caddy's image keeps its certificates in root-owned volumes: root, but with
            # nothing more than the right to bind 80 and 443.
            assert service.get("cap_add") == ["NET_BIND_SERVICE"]
            continue
        uid = str(service.get("user", "0")).split(":")[0]
        assert uid not in {"0", "root"}, f"{name} runs as root"


def test_every_mounted_host_path_exists_in_the_repository() -> None:
    for name, service in services().items():
        for source, target in bind_mounts(service):
            assert source.exists(), f"{name}: {source} (mounted at {target}) is missing"
            assert ROOT in source.parents, f"{name}: {source} is outside the repository"
    build = services()["collector"]["build"]
    assert (STACK / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_named_volumes_and_networks_are_declared_and_used() -> None:
    data = compose()
    used_volumes = {volume.split(":")[0] for service in data["services"].values()
                    for volume in service.get("volumes", []) if not volume.startswith((".", "/"))}
    assert used_volumes == set(data["volumes"])
    used_networks = {network for service in data["services"].values()
                     for network in service.get("networks", [])}
    assert used_networks == set(data["networks"])
    # Prometheus and Alertmanager have no login: the proxy must not reach them.
    edge = {name for name, service in data["services"].items() if "edge" in service["networks"]}
    assert edge == {"collector", "grafana", PROXY}


def test_secret_files_are_kept_out_of_git() -> None:
    git = require_tool("git")
    for name, secret in compose()["secrets"].items():
        path = (STACK / secret["file"]).resolve()
        result = subprocess.run([git, "check-ignore", "-q", str(path)], cwd=ROOT, check=False)
        assert result.returncode == 0, f"secret {name}: {path} is not git-ignored"


def test_variables_in_the_stack_and_in_env_example_are_the_same() -> None:
    # The scale tier's file is part of the stack (tests/test_compose_scale.py checks it).
    used = {name for path in (COMPOSE_FILE, STACK / "compose.scale.yaml")
            for name in COMPOSE_VAR.findall(path.read_text())}
    documented = set(env_example())
    # COMPOSE_* are read by Compose itself (the project name), not by compose.yaml.
    assert used == {name for name in documented if not name.startswith("COMPOSE_")}
    # Caddy reads its variables from its environment: compose must pass each one in.
    proxy_env = services()[PROXY]["environment"]
    assert set(CADDY_VAR.findall(CADDYFILE.read_text())) <= set(proxy_env)


def test_every_required_variable_has_a_value_or_says_what_to_fill_in() -> None:
    values = env_example()
    for match in re.finditer(r"\$\{([A-Z_]+):\?([^}]*)\}", COMPOSE_FILE.read_text()):
        name, message = match.groups()
        assert message.strip(), f"{name}: ${{{name}:?…}} needs a message"
        if not values[name]:
            assert name == "GRAFANA_ADMIN_PASSWORD", f"{name} is empty in .env.example"


# --- what the stack mounts --------------------------------------------------------------


def caddy_upstreams() -> list[tuple[str, int]]:
    return [(host, int(port)) for host, port in
            re.findall(r"^\s*reverse_proxy\s+([a-z0-9-]+):(\d+)", CADDYFILE.read_text(), re.MULTILINE)]


def test_caddyfile_proxies_to_services_of_the_stack_on_their_ports() -> None:
    upstreams = dict(caddy_upstreams())
    assert set(upstreams) == {"collector", "grafana"}
    stack = services()
    assert "--port" in stack["collector"]["command"]
    collector_port = stack["collector"]["command"][stack["collector"]["command"].index("--port") + 1]
    assert upstreams["collector"] == int(collector_port)
    assert upstreams["grafana"] == 3000  # Grafana's port (GF_SERVER_HTTP_PORT is not set)
    assert "GF_SERVER_HTTP_PORT" not in stack["grafana"]["environment"]
    mounted = {target for _, target in bind_mounts(stack[PROXY])}
    assert "/etc/caddy/Caddyfile" in mounted


def caddy_env(tls: str, home: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "SCHOOLNET_COLLECTOR_DOMAIN": "collector.school.test",
            "SCHOOLNET_GRAFANA_DOMAIN": "grafana.school.test", "SCHOOLNET_TLS": tls}


@pytest.mark.parametrize("tls", ["internal", "ict@school.test"])
def test_caddy_validates_the_caddyfile(tls: str, tmp_path: Path) -> None:
    caddy = require_tool("caddy")
    result = subprocess.run([caddy, "validate", "--adapter", "caddyfile", "--config", str(CADDYFILE)],
                            env=caddy_env(tls, tmp_path), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "not formatted" not in result.stderr  # `caddy fmt --overwrite` keeps it tidy


def mirror_prometheus(tmp_path: Path) -> Path:
    """The Prometheus container's files under tmp_path: its config with absolute paths
    moved under tmp_path, every bind mount copied to its target, the secret files."""
    service = services()["prometheus"]
    for source, target in bind_mounts(service):
        destination = tmp_path / target.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination)
        else:
            shutil.copy(source, destination)
    secrets = tmp_path / "run" / "secrets"
    secrets.mkdir(parents=True)
    for name in service["secrets"]:
        (secrets / name).write_text("a-metrics-token\n")
    config = tmp_path / "etc" / "prometheus" / "prometheus.yml"
    text = config.read_text()
    for prefix in ("/etc/prometheus/", "/run/secrets/"):
        text = text.replace(prefix, str(tmp_path) + prefix)
    config.write_text(text)
    return config


def test_promtool_checks_the_stacks_prometheus_config(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    config = mirror_prometheus(tmp_path)
    result = subprocess.run([promtool, "check", "config", str(config)],
                            capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rules = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
    assert rules and f"SUCCESS: {len(rules)} rule files found" in output


def test_prometheus_config_points_at_the_stack() -> None:
    stack = services()
    prometheus = stack["prometheus"]
    flags = dict(flag.split("=", 1) for flag in prometheus["command"])
    mounts = {target: source for source, target in bind_mounts(prometheus)}
    config = yaml.safe_load(mounts[flags["--config.file"]].read_text())
    # Rules from the mounted rules folder.
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert mounts["/etc/prometheus/rules"] == ROOT / "deploy" / "prometheus" / "rules"
    # The collector's job: the name the alert rules watch, the token from the secret.
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    collector = jobs["schoolnet-collector"]
    assert collector["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
    assert "metrics_token" in prometheus["secrets"]
    assert 'up{job="schoolnet-collector"}' in (ROOT / "deploy" / "prometheus" / "rules"
                                               / "schoolnet.alerts.yml").read_text()
    [target] = collector["static_configs"][0]["targets"]
    assert target == "collector:8470"
    [alertmanager] = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = alertmanager.split(":")
    assert host in stack and port == "9093"


def test_amtool_checks_the_alertmanager_config_the_stack_mounts() -> None:
    amtool = require_tool("amtool")
    service = services()["alertmanager"]
    flags = dict(flag.split("=", 1) for flag in service["command"])
    mounts = {target: source for source, target in bind_mounts(service)}
    config = mounts[flags["--config.file"]]
    assert config == ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
    result = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert flags["--cluster.listen-address"] == ""


def test_grafana_provisioning_finds_the_mounted_dashboards() -> None:
    """The dashboard provider's path is where compose.yaml mounts grafana/dashboards, and the
    datasource points at the stack's Prometheus."""
    grafana = services()["grafana"]
    mounts = {target: source for source, target in bind_mounts(grafana)}
    assert mounts["/etc/grafana/provisioning"] == ROOT / "grafana" / "provisioning"
    [dashboards_target] = [target for target, source in mounts.items()
                           if source == ROOT / "grafana" / "dashboards"]
    provisioning = ROOT / "grafana" / "provisioning"
    providers = [provider for path in sorted((provisioning / "dashboards").glob("*.y*ml"))
                 for provider in yaml.safe_load(path.read_text())["providers"]]
    assert providers, "grafana/provisioning/dashboards has no provider"
    for provider in providers:
        assert provider["options"]["path"].rstrip("/") == dashboards_target, provider
    datasources = [source for path in sorted((provisioning / "datasources").glob("*.y*ml"))
                   for source in yaml.safe_load(path.read_text())["datasources"]]
    prometheus = [source for source in datasources if source["type"] == "prometheus"]
    assert prometheus and all(source["url"].rstrip("/") == "http://prometheus:9090" for source in prometheus)


# --- the Dockerfile and its build context -----------------------------------------------


def test_dockerfile_base_image_is_pinned_and_python_3_11() -> None:
    [base] = dockerfile("FROM")
    assert PINNED.match(base), base
    assert base.startswith("python:3.11.") and "slim" in base


def test_dockerfile_runs_as_a_user_of_its_own_with_a_healthcheck() -> None:
    users = dockerfile("USER")
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    [check] = dockerfile("HEALTHCHECK")
    assert "CMD" in check and "/healthz" in check
    [cmd] = dockerfile("CMD")
    assert json.loads(cmd)[:4] == ["schoolnet-collector", "serve", "--host", "0.0.0.0"]
    [volume] = dockerfile("VOLUME")
    assert json.loads(volume) == ["/var/lib/schoolnet"]
    assert any("SCHOOLNET_DB=sqlite:////var/lib/schoolnet/" in env for env in dockerfile("ENV"))
    # The compose volume lands where the store is.
    assert "collector-data:/var/lib/schoolnet" in services()["collector"]["volumes"]
    assert any('pip install --no-compile ".[collector]"' in run for run in dockerfile("RUN"))


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(exclude?, regex) per .dockerignore line, in order; Docker's rules: the last
    matching line wins, `**` spans folders, a match on a folder covers what is in it."""
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        body = line.removeprefix("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", body):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        patterns.append((not include, re.compile(regex + "(?:/.*)?")))
    return patterns


def build_context() -> set[str]:
    """The files of the repository that a docker build would see (git-ignored ones too:
    Docker reads the folder, not git)."""
    patterns = dockerignore_patterns()
    sent = set()
    for path in ROOT.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(ROOT).as_posix()
        excluded = False
        for exclude, regex in patterns:
            if regex.fullmatch(relative):
                excluded = exclude
        if not excluded:
            sent.add(relative)
    return sent


def test_build_context_holds_what_the_install_needs_and_nothing_else() -> None:
    context = build_context()
    tops = {path.split("/")[0] for path in context}
    assert tops == {"pyproject.toml", "README.md", "agent", "collector"}
    # Everything COPY names is in it.
    for copy in dockerfile("COPY"):
        for source in copy.split()[:-1]:
            assert source in context or any(path.startswith(source + "/") for path in context), source
    # The migrations and the wire format's doc (package data) are in; stores and caches out.
    assert any(path.startswith("collector/migrations/versions/") for path in context)
    assert not [path for path in context if path.endswith((".db", ".pyc", ".db-wal", ".db-journal"))]


def test_dockerignore_matcher_follows_dockers_rules() -> None:
    """The check above is only as good as its reading of .dockerignore."""
    patterns = dockerignore_patterns()

    def excluded(path: str) -> bool:
        result = False
        for exclude, regex in patterns:
            if regex.fullmatch(path):
                result = exclude
        return result

    assert excluded(".demo/metrics-token") and excluded("deploy/compose/secrets/metrics-token")
    assert excluded("schoolnet-collector.db") and excluded("collector/__pycache__/cli.cpython-311.pyc")
    assert not excluded("collector/cli.py") and not excluded("pyproject.toml")


# --- run for real ------------------------------------------------------------------------


class Namespace:
    """A network namespace of this test's own, with only loopback, and a hosts file there
    (`ip netns exec` mounts /etc/netns/NAME/hosts over /etc/hosts): the stack's service
    names resolve to loopback, and 0.0.0.0, 80 and 443 are this namespace's alone."""

    def __init__(self, hosts: list[str]) -> None:
        self.name = f"schoolnet-compose-{os.getpid()}"
        self.etc = Path("/etc/netns") / self.name
        self.processes: list[subprocess.Popen[bytes]] = []
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        self.etc.mkdir(parents=True)
        (self.etc / "hosts").write_text("127.0.0.1 localhost " + " ".join(hosts) + "\n")
        self.run(["ip", "link", "set", "lo", "up"], check=True)

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: list[str], check: bool = False, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(argv), capture_output=True, text=True, check=check,
                              env=env, timeout=60)

    def start(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            process = subprocess.Popen(self.command(argv), env=env, stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        subprocess.run(["ip", "netns", "delete", self.name], check=False, capture_output=True)
        shutil.rmtree(self.etc, ignore_errors=True)


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    if os.geteuid() != 0 or not shutil.which("ip"):
        unavailable("running the stack's processes in a network namespace needs root and iproute2")
    space = Namespace(hosts=["collector", "grafana", "collector.school.test", "grafana.school.test"])
    try:
        yield space
    finally:
        space.close()


def dockerfile_env(tmp_path: Path) -> dict[str, str]:
    """The image's environment, with the venv being this test's and the store under tmp_path."""
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    for line in dockerfile("ENV"):
        for assignment in shlex.split(line):
            name, _, value = assignment.partition("=")
            if name != "PATH":
                env[name] = value.replace("/var/lib/schoolnet", str(tmp_path / "state"))
    (tmp_path / "state").mkdir()
    return env


def healthcheck_command(spec: str) -> list[str]:
    """The argv of a Dockerfile HEALTHCHECK's exec-form CMD."""
    return list(json.loads(spec.split("CMD", 1)[1]))


def wait_for(condition: Any, timeout: float, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"{what}: the process exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"{what} within {timeout}s: {log.read_text()[-2000:]}"
        time.sleep(0.2)


@pytest.mark.e2e
def test_the_images_command_serves_and_its_healthcheck_tells_up_from_down(
        namespace: Namespace, tmp_path: Path) -> None:
    """The Dockerfile's CMD with its ENV (store moved to tmp_path) serves on 0.0.0.0:8470 in a
    namespace of its own; the HEALTHCHECK passes while it runs and fails once it stops."""
    env = dockerfile_env(tmp_path)
    [cmd] = dockerfile("CMD")
    log = tmp_path / "collector.log"
    collector = namespace.start(json.loads(cmd), env, log)
    [check] = dockerfile("HEALTHCHECK")
    probe = healthcheck_command(check)
    probe[0] = sys.executable  # the image's `python` is the venv's
    wait_for(lambda: namespace.run(probe, env=env).returncode == 0, 30, "healthcheck passes",
             collector, log)
    # Migrations ran at start: the store exists in the state volume's place.
    assert (tmp_path / "state" / "collector.db").is_file()
    collector.send_signal(signal.SIGTERM)
    collector.wait(15)
    failed = namespace.run(probe, env=env)
    assert failed.returncode != 0


@pytest.mark.e2e
def test_caddy_serves_the_collector_over_tls_with_the_stacks_caddyfile(
        namespace: Namespace, tmp_path: Path) -> None:
    """The stack's Caddyfile as it is (`tls internal`) in front of a real collector: HTTPS with
    Caddy's own CA, HTTP redirected to HTTPS, the collector's /healthz through the proxy."""
    caddy = require_tool("caddy")
    curl = require_tool("curl")
    env = dockerfile_env(tmp_path)
    [cmd] = dockerfile("CMD")
    collector_log = tmp_path / "collector.log"
    collector = namespace.start(json.loads(cmd), env, collector_log)
    proxy_log = tmp_path / "caddy.log"
    home = tmp_path / "caddy"
    proxy = namespace.start([caddy, "run", "--adapter", "caddyfile", "--config", str(CADDYFILE)],
                            caddy_env("internal", home), proxy_log)
    root = home / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    url = "https://collector.school.test/healthz"

    def through_proxy() -> bool:
        if not root.exists() or collector.poll() is not None:
            return False
        return namespace.run([curl, "-sf", "--cacert", str(root), url]).returncode == 0

    wait_for(through_proxy, 30, "the collector answers through Caddy", proxy, proxy_log)
    answer = namespace.run([curl, "-s", "--cacert", str(root), url])
    assert json.loads(answer.stdout) == {"status": "ok"}
    # Plain HTTP is redirected to HTTPS, and without the CA the certificate is not trusted.
    redirect = namespace.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                              "http://collector.school.test/healthz"])
    assert redirect.stdout == "308 https://collector.school.test/healthz"
    assert namespace.run([curl, "-sf", url]).returncode != 0
    # The Caddy healthcheck's endpoint answers inside (and the admin API only on loopback).
    admin = namespace.run([curl, "-sf", "http://127.0.0.1:2019/config/"])
    assert admin.returncode == 0 and json.loads(admin.stdout)["apps"]["http"]

"""The demo's agent sends nothing beyond this machine: its targets are loopback and the
local collector, its census only reads the kernel's neighbour table, and its Wi-Fi probe
never asks for a scan (which would transmit). The product's defaults differ; the demo's
configuration must override every one that would leave the machine."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from agent.config import AgentSettings

DEMO = Path(__file__).resolve().parents[1] / "scripts" / "demo.py"


@pytest.fixture
def demo_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AgentSettings:
    for variable in [name for name in os.environ if name.startswith("SCHOOLNET_")]:
        monkeypatch.delenv(variable)  # the demo's file alone, not the tests' safety net
    spec = importlib.util.spec_from_file_location("demo", DEMO)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    text = demo.AGENT_CONFIG.format(state_dir=tmp_path, url="http://127.0.0.1:8470")
    return AgentSettings(**tomllib.loads(text))


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def test_the_demo_census_only_reads_the_neighbour_table(demo_settings: AgentSettings) -> None:
    assert demo_settings.probes.users.sources == ["neighbours"]
    assert AgentSettings(state_dir="/tmp").probes.users.sources == ["neighbours"]  # the product too


def test_the_demo_never_asks_for_a_wifi_scan(demo_settings: AgentSettings) -> None:
    assert demo_settings.probes.wifi.trigger_scan is False


def test_every_demo_target_is_this_machine(demo_settings: AgentSettings) -> None:
    connectivity = demo_settings.probes.connectivity
    assert all(is_loopback(target) for target in connectivity.targets)
    assert connectivity.gateway == "" and connectivity.hops == 0 and connectivity.dns_servers == []
    assert all(is_loopback(urlsplit(url).hostname or "") for url in connectivity.http_urls)
    bandwidth = demo_settings.probes.bandwidth
    assert bandwidth.backend == "http" and bandwidth.server == ""  # the local collector's endpoints
    assert is_loopback(urlsplit(demo_settings.collector.url).hostname or "")

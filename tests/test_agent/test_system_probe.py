"""The system probe on this very host, and the default-route parser."""

from __future__ import annotations

from pathlib import Path

import psutil

from agent.config import AgentSettings
from agent.probes import ProbeContext
from agent.probes.system import SystemProbe, default_route_interface
from agent.wire import SystemPayload


def test_measures_this_host(tmp_path: Path) -> None:
    probe = SystemProbe(ProbeContext(AgentSettings(state_dir=tmp_path), None, tmp_path))
    measurement = probe.measure()
    assert measurement.ok, measurement.error
    payload = SystemPayload.model_validate(measurement.payload)
    assert payload.memory_total_bytes == psutil.virtual_memory().total
    assert payload.cpu_count == psutil.cpu_count()
    assert 0 <= payload.cpu_usage_ratio <= 1
    assert 10_000_000 < payload.agent_resident_memory_bytes < 500_000_000
    assert payload.state_dir_free_bytes and payload.state_dir_free_bytes > 0
    second = SystemPayload.model_validate(probe.measure().payload)
    assert second.host_boot_time_seconds == payload.host_boot_time_seconds


def test_default_route_interface(tmp_path: Path) -> None:
    table = tmp_path / "route"
    table.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "wlan0\t0000A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0\n"
        "eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n")
    assert default_route_interface(table) == "eth0"
    assert default_route_interface(tmp_path / "missing") is None

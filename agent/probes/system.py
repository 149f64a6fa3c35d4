"""The ``system`` probe: is the measuring machine itself healthy?

A bandwidth result is only as good as the machine that measured it: a Pi at 100 % CPU or
with a 100 Mbit/s NIC cannot measure a 1 Gbit/s line.
"""

from __future__ import annotations

import os
import shutil

import psutil

from agent.config import SystemProbeConfig
from agent.probes import Probe, ProbeContext
from agent.routes import default_route_interface
from agent.wire import SystemPayload

__all__ = ["SystemProbe", "default_route_interface"]


def hottest_temperature() -> float | None:
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return None
    try:
        sensors = reader()
    except (OSError, RuntimeError):
        return None
    readings = [entry.current for entries in sensors.values() for entry in entries
                if entry.current is not None]
    return max(readings) if readings else None


class SystemProbe(Probe):
    name = "system"
    default_interval = 60.0
    config_model = SystemProbeConfig

    def __init__(self, context: ProbeContext) -> None:
        super().__init__(context)
        self.process = psutil.Process()
        # The first cpu_percent(None) has no earlier sample: measure a short interval once.
        psutil.cpu_percent(interval=None)
        self.first = True

    def run(self) -> SystemPayload:
        cpu = psutil.cpu_percent(interval=0.5 if self.first else None) / 100
        self.first = False
        memory = psutil.virtual_memory()
        try:
            load: tuple[float | None, ...] = tuple(os.getloadavg())
        except OSError:
            load = (None, None, None)
        interface = default_route_interface()
        speed = received = sent = None
        if interface:
            stats = psutil.net_if_stats().get(interface)
            if stats and stats.speed > 0:  # 0 = the driver does not say (Wi-Fi, virtual)
                speed = stats.speed * 1_000_000 // 8
            counters = psutil.net_io_counters(pernic=True).get(interface)
            if counters:
                received, sent = counters.bytes_recv, counters.bytes_sent
        try:
            free = shutil.disk_usage(self.context.state_dir).free
        except OSError:
            free = None
        return SystemPayload(
            cpu_usage_ratio=min(1.0, max(0.0, cpu)), cpu_count=psutil.cpu_count() or 1,
            load_average_1m=load[0], load_average_5m=load[1], load_average_15m=load[2],
            memory_total_bytes=memory.total, memory_available_bytes=memory.available,
            temperature_celsius=hottest_temperature(),
            uplink_interface=interface, uplink_speed_bytes_per_second=speed,
            uplink_received_bytes_total=received, uplink_sent_bytes_total=sent,
            agent_resident_memory_bytes=self.process.memory_info().rss,
            host_boot_time_seconds=psutil.boot_time(), state_dir_free_bytes=free,
        )

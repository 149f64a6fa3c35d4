"""Fakes shared by tests: a settable clock and a week's worth of system payloads."""

from __future__ import annotations

from agent.wire import SystemPayload


class FakeClock:
    """A wall clock that moves only when a test moves it."""

    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def system_payload(minute: int) -> dict[str, object]:
    return SystemPayload(cpu_usage_ratio=0.1, cpu_count=4, memory_total_bytes=4 << 30,
                         memory_available_bytes=3 << 30, agent_resident_memory_bytes=40 << 20,
                         uplink_received_bytes_total=minute * 1000).model_dump(mode="json")

"""Records and batches in the real wire format, for tests and benchmarks."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from typing import Any


def record(seq: int, stream_id: str, kind: str = "system", **changes: Any) -> dict[str, Any]:
    payloads: dict[str, dict[str, Any]] = {
        "system": {"cpu_usage_ratio": 0.25, "cpu_count": 4, "memory_total_bytes": 4_000_000_000,
                   "memory_available_bytes": 1_000_000_000, "agent_resident_memory_bytes": 40_000_000,
                   "temperature_celsius": 51.5, "uplink_speed_bytes_per_second": 125_000_000},
        "bandwidth": {"backend": "http", "server": "https://collector.example", "streams": 1,
                      "download_bytes_per_second": 11_000_000.0, "upload_bytes_per_second": 2_000_000.0,
                      "idle_latency_seconds": 0.012},
    }
    base: dict[str, Any] = {
        "stream_id": stream_id, "seq": seq, "kind": kind, "ok": True, "error": None,
        "clock": {"wall_time_seconds": time.time(), "boot_id": "boot-1",
                  "since_boot_seconds": 100.0 + seq, "clock_synchronized": True},
        "payload": payloads.get(kind, {}),
    }
    base.update(changes)
    return base


def batch(*records: dict[str, Any], given_up: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"sent_at_seconds": time.time(),
            "health": {"version": "0.1.0", "outbox_records": 7, "outbox_bytes": 4096,
                       "given_up": given_up or []},
            "records": list(records)}


def new_stream() -> str:
    return uuid.uuid4().hex


def deliver(site: Any, *records: dict[str, Any], credential: str | None = None) -> list[str]:
    """Post one gzip batch through the collector's real ingest route (``site`` is the test
    collector of tests/test_collector/conftest.py) and return each record's status."""
    body = gzip.compress(json.dumps(batch(*records)).encode())
    auth = {"Authorization": f"Bearer {credential}"} if credential else site.auth
    answer = site.client.post("/api/v1/ingest", content=body,
                              headers={**auth, "Content-Encoding": "gzip"})
    assert answer.status_code == 200, answer.text
    return [result["status"] for result in answer.json()["results"]]


def page_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A /metrics page as {(sample name, sorted labels): value}, to compare two writers."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def at(rec: dict[str, Any], seconds: float) -> dict[str, Any]:
    """``rec`` measured at ``seconds`` (agent clock)."""
    rec["clock"]["wall_time_seconds"] = seconds
    return rec


def metric_values(site: Any, expiry: float = 3600) -> Any:
    """``get_sample_value`` of the store's families as /metrics builds them for ``site``."""
    from prometheus_client import CollectorRegistry

    from collector.metrics import StoreCollector

    registry = CollectorRegistry()
    registry.register(StoreCollector(site.engine, expiry))
    return registry.get_sample_value

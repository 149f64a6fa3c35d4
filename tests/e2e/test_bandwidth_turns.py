"""Agents of one school take turns: two bandwidth tests at once would each measure half
the line. Two real agents of one school, started together against a real collector."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest
from support.processes import AgentProcess, CollectorProcess

pytestmark = pytest.mark.e2e

TEST = """
[probes.system]
enabled = false
[probes.bandwidth]
backend = "http"
duration = "1.5s"
max_bytes = "100MB"
lease_wait = "60s"
"""


def test_two_agents_of_one_school_never_test_at_the_same_time(
    collector: CollectorProcess, enrolled_agent: Callable[[str], AgentProcess]
) -> None:
    agents = [enrolled_agent(TEST), enrolled_agent(TEST)]
    runs = [subprocess.Popen(agent.cli_command("once"), env=agent.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for agent in agents]
    for run in runs:
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
    rows = collector.query("SELECT payload FROM records WHERE kind = 'bandwidth' AND ok")
    payloads = [json.loads(row[0]) for row in rows]
    assert len(payloads) == 2
    assert all(payload["leased"] is True for payload in payloads)
    waits = sorted(payload["lease_wait_seconds"] for payload in payloads)
    first_test = min(p["download_seconds"] + p["upload_seconds"] for p in payloads)
    # One went straight in; the other waited at least for the first one's transfers.
    assert waits[0] < 1.0
    assert waits[1] >= first_test, (
        f"the second agent waited {waits[1]:.1f} s, the first test took {first_test:.1f} s")
    leases = collector.query("SELECT COUNT(*) FROM bandwidth_leases")
    assert leases == [(0,)], "each agent ended its lease when done"

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.processes import AgentProcess, CollectorProcess


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[CollectorProcess]:
    process = CollectorProcess(tmp_path)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def enrolled_agent(
    tmp_path: Path, collector: CollectorProcess
) -> Iterator[Callable[[str], AgentProcess]]:
    """Make an agent with the given extra config, enrolled in the test collector."""
    agents: list[AgentProcess] = []

    def make(config: str = "") -> AgentProcess:
        workdir = tmp_path / f"agent{len(agents)}"
        workdir.mkdir()
        agent = AgentProcess(workdir, config)
        agent.cli("enroll", "--collector", collector.url, "--code", collector.enroll_code(),
                  "--name", f"agent-{len(agents)}")
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop()

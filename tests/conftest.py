"""Settings every test shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from support.postgres import PostgresServer
from support.tools import LOCAL_ONLY_ENV

from collector.accounts import passwords

# argon2id at its smallest cost: a test signs in dozens of times, and the cost parameters
# are the one thing tests need not pay for (a hash carries its own, so a hash made by a real
# command-line run still verifies). Tests marked production_hashing keep the real hasher.
QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
QUICK_DUMMY_HASH = QUICK_HASHER.hash("schoolnet: no such account")


@pytest.fixture(autouse=True)
def _no_public_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agent settings built inside a test read the environment too: the same safety net
    as for agent processes (see support.tools.LOCAL_ONLY_ENV)."""
    for name, value in LOCAL_ONLY_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def _quick_password_hashes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("production_hashing") is None:
        monkeypatch.setattr(passwords, "_hasher", QUICK_HASHER)
        monkeypatch.setattr(passwords, "_DUMMY_HASH", QUICK_DUMMY_HASH)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run, started on first use; each test takes
    its own database from it (``postgres.fresh_database()``)."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()

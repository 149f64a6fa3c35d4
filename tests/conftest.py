"""Settings every test shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from support.pg_databases import DatabasePool
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


# --- The store under test: SQLite, and for tests marked both_stores also PostgreSQL ---------

STORE_BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``both_stores`` that uses the store (``store_backend``, directly or
    through ``db_url``/``site``) runs once per backend: the same code must hold on both."""
    if (metafunc.definition.get_closest_marker("both_stores") is not None
            and "store_backend" in metafunc.fixturenames):
        metafunc.parametrize("store_backend", STORE_BACKENDS, indirect=True, ids=STORE_BACKENDS)


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """"sqlite" unless the test is parametrized by ``both_stores``."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres_databases(postgres: PostgresServer) -> DatabasePool:
    """Migrated databases on the session's server, reused once emptied."""
    return DatabasePool(postgres)


@pytest.fixture
def new_store_url(store_backend: str, tmp_path: Path,
                  request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """Makes stores of the test's backend, ``new_store_url("other")``: a SQLite file in
    tmp_path (not there yet; whoever opens it first migrates it), or a new database on the
    session's PostgreSQL server at the newest schema. PostgreSQL ones are emptied after the
    test and handed out again (support/pg_databases.py: ~20 ms instead of ~0.4 s each)."""
    if store_backend == "sqlite":
        yield lambda name: f"sqlite:///{tmp_path / name}.db"
        return
    pool: DatabasePool = request.getfixturevalue("postgres_databases")
    made: list[str] = []

    def make(_name: str) -> str:
        made.append(pool.take())
        return made[-1]

    try:
        yield make
    finally:
        for url in made:
            pool.give_back(url)


@pytest.fixture
def db_url(new_store_url: Callable[[str], str]) -> str:
    """The URL of the test's store, with no data in it (see ``new_store_url``)."""
    return new_store_url("collector")


@pytest.fixture
def empty_store_url(store_backend: str, tmp_path: Path,
                    request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a store with no schema at all, for tests that migrate it to an older
    revision first: a SQLite file in tmp_path (not there yet), or a new database on the
    session's PostgreSQL server, dropped after the test (WITH FORCE: engines left open too)."""
    if store_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.fresh_database(migrated=False)
    try:
        yield url
    finally:
        server.drop_database(url.rsplit("/", 1)[1])

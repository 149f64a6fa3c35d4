"""A cooperative's store for the comparison report's tests: boards, schools, main lines
with contracts (imported through the contracts CSV, as a board does), bandwidth results
written straight into ``bandwidth_results`` with chosen speeds at chosen times, agents'
observation and outages, and incidents; all through the collector's own SQLite store.

Every day is in March 2026, Europe/Amsterdam (CET, UTC+1; the clocks change on 29 March,
after the last test day used here), default school hours 08:30-15:30, Monday to Friday,
no holidays. ``PERIOD`` is the whole month.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, select, update

from collector.accounts.roles import Role, Viewer
from collector.comparison.model import Filters
from collector.contracts import import_contracts
from collector.contracts_csv import COLUMNS
from collector.db.engine import open_engine
from collector.db.migrate import upgrade
from collector.db.schema import (
    agents,
    bandwidth_results,
    boards,
    connections,
    connectivity_first_windows,
    records,
    schools,
)
from collector.registry import resolve_school
from support.incidents import insert_incident

ZONE = ZoneInfo("Europe/Amsterdam")
TIMEZONE = "Europe/Amsterdam"
MBIT = 125_000.0  # bytes per second in one Mbit/s
PERIOD = Filters(start=date(2026, 3, 1), end=date(2026, 3, 31))
NOW = datetime(2026, 4, 15, 12, 0, tzinfo=ZONE).timestamp()
FIRST_SCHOOL_DAY = date(2026, 3, 2)  # a Monday
TEST_HOURS = (9, 10, 11, 12, 13, 14)  # all inside 08:30-15:30


def local(day: date, hour: int, minute: int = 0) -> float:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).timestamp()


def school_days(first: date = FIRST_SCHOOL_DAY) -> Iterator[date]:
    day = first
    while True:
        if day.isoweekday() <= 5:
            yield day
        day += timedelta(days=1)


def school_hour_times(n: int, first: date = FIRST_SCHOOL_DAY, minute: int = 10) -> list[float]:
    """``n`` instants in school hours: 09:10, 10:10, ... 14:10 on each school day from ``first``."""
    slots = ((day, hour) for day in school_days(first) for hour in TEST_HOURS)
    return [local(day, hour, minute) for day, hour in itertools.islice(slots, n)]


@dataclass
class ComparisonStore:
    engine: Engine

    @classmethod
    def create(cls, folder: Path, url: str | None = None) -> ComparisonStore:
        """On the store ``url`` (a test's ``db_url``), or a new SQLite file in ``folder``."""
        engine = open_engine(url or f"sqlite:///{folder / 'comparison.db'}")
        upgrade(engine)
        return cls(engine)

    # --- the registry --------------------------------------------------------------------

    def line(self, board: str, school: str, *, provider: str, technology: str, down_mbps: float,
             up_mbps: float | None = None, cost: float | None = None, currency: str = "EUR",
             pupils: int | None = None, region: str | None = None, contract_start: str = "2026-01-01",
             contract_end: str = "", connection: str = "main", role: str = "main",
             school_name: str | None = None, board_name: str | None = None) -> None:
        """One contract term of a line (a second call with a later ``contract_start`` is an
        upgrade); the board and school are created by the same import."""
        values = {name: "" for name in COLUMNS}
        values.update(
            board=board, board_name=board_name or board.replace("-", " ").title(), school=school,
            school_name=school_name or school.replace("-", " ").title(),
            pupils="" if pupils is None else str(pupils), region=region or "", timezone=TIMEZONE,
            connection=connection, provider=provider, technology=technology, role=role,
            contract_start=contract_start, contract_end=contract_end,
            download_advertised_mbps=f"{down_mbps:g}",
            upload_advertised_mbps=f"{(up_mbps if up_mbps is not None else down_mbps):g}",
            monthly_cost="" if cost is None else f"{cost:.2f}", currency=currency if cost is not None else "")
        header = ",".join(COLUMNS)
        row = ",".join(values[name] for name in COLUMNS)
        import_contracts(self.engine, f"{header}\n{row}\n", source_name="lines.csv")

    def share(self, board: str) -> None:
        """The board consents that analysts see its schools one by one."""
        with self.engine.begin() as conn:
            conn.execute(update(boards).where(boards.c.slug == board).values(shared_at=time.time()))

    def board_pk(self, board: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(boards.c.id).where(boards.c.slug == board)))

    def viewer(self, role: Role, board: str | None = None) -> Viewer:
        return Viewer(role=role, name=f"{role} of {board or 'the cooperative'}",
                      board_id=self.board_pk(board) if board else None, board=board)

    def _line_pk(self, conn: Any, board: str, school: str, connection: str) -> tuple[int, int]:
        school_pk, _, _ = resolve_school(conn, f"{board}/{school}")
        line_pk = conn.scalar(select(connections.c.id).where(connections.c.school_id == school_pk,
                                                             connections.c.slug == connection))
        assert line_pk is not None, f"{board}/{school} has no connection {connection}"
        return school_pk, int(line_pk)

    # --- measurements ----------------------------------------------------------------------

    def tests(self, board: str, school: str, downs_mbps: Sequence[float | None], *,
              ups_mbps: Sequence[float | None] | None = None, times: Sequence[float] | None = None,
              valid: bool = True, connection: str = "main") -> None:
        """Bandwidth results of the line: download (and upload: the same unless given) in
        Mbit/s, at ``times`` (default: school_hour_times)."""
        times = list(times) if times is not None else school_hour_times(len(downs_mbps))
        ups = list(ups_mbps) if ups_mbps is not None else list(downs_mbps)
        assert len(times) == len(downs_mbps) == len(ups)
        with self.engine.begin() as conn:
            school_pk, line_pk = self._line_pk(conn, board, school, connection)
            conn.execute(insert(bandwidth_results), [{
                "school_id": school_pk, "agent_id": None, "record_id": None,
                "import_key": hashlib.sha256(f"{line_pk}:{t}:{i}:{down}".encode()).hexdigest(),
                "source": "import", "connection_id": line_pk, "attribution": "import",
                "measured_at": t, "download_bytes_per_second": None if down is None else down * MBIT,
                "upload_bytes_per_second": None if up is None else up * MBIT, "latency_seconds": 0.01,
                "valid": valid, "invalid_reasons": [] if valid else ["the agent's CPU was the limit"],
                "backend": "http", "server": "http://127.0.0.1:9101", "concurrent_devices": 150,
            } for i, (t, down, up) in enumerate(zip(times, downs_mbps, ups, strict=True))])

    def observe(self, board: str, school: str, since: float,
                outages: Sequence[tuple[float, float]] = (), kind: str = "isp") -> None:
        """An agent of the school observing from ``since`` (its first connectivity window),
        with ended outages of ``kind`` as the agent records them."""
        with self.engine.begin() as conn:
            school_pk, _, _ = resolve_school(conn, f"{board}/{school}")
            agent_pk = conn.execute(insert(agents).values(
                school_id=school_pk, slug=f"pi-{school_pk}", name="pi",
                credential_hash=hashlib.sha256(f"agent {school_pk}".encode()).hexdigest(),
                created_at=since - 3600)).inserted_primary_key[0]
            conn.execute(insert(connectivity_first_windows).values(agent_id=agent_pk, first_window_at=since))
            for seq, (start, end) in enumerate(outages, 1):
                conn.execute(insert(records).values(
                    agent_id=agent_pk, stream_id="s" * 32, seq=seq, kind="outage", ok=True, error=None,
                    measured_at=end, boot_id="boot", since_boot_seconds=1000.0 + seq,
                    clock_synchronized=True, received_at=end + 5,
                    payload={"outage_kind": kind, "start_seconds": start, "end_seconds": end,
                             "duration_seconds": end - start, "interrupted": False, "detail": "test"}))

    def incident(self, board: str, school: str, *, kind: str, started_at: float,
                 restored_at: float | None = None, responsible: str = "provider",
                 connection: str | None = "main") -> int:
        """An incident row of the school (on its line ``connection``; None: the school's)."""
        with self.engine.connect() as conn:
            line_pk = self._line_pk(conn, board, school, connection)[1] if connection else None
        state = "restored" if restored_at is not None else "open"
        return insert_incident(
            self.engine, kind=kind, key=f"{kind}:{board}/{school}:{started_at}", started_at=started_at,
            figures={}, school=f"{board}/{school}", state=state, responsible=responsible,
            restored_at=restored_at, connection_id=line_pk)

    def school_pk(self, board: str, school: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(schools.c.id).join(boards, boards.c.id == schools.c.board_id)
                                   .where(boards.c.slug == board, schools.c.slug == school)))


# --- the cooperative: 3 boards, 16 schools, 3 providers ----------------------------------------

# (board, school, provider, technology, advertised down Mbit/s, cost EUR, pupils, region,
#  school-hours download ratios cycled over 30 tests)
COOPERATIVE: tuple[tuple[str, str, str, str, float, float, int, str, tuple[float, ...]], ...] = (
    ("noord", "de-regenboog", "Glasnet", "fibre", 500, 240.0, 410, "Noord", (0.95, 0.92, 0.97, 0.90)),
    ("noord", "het-kompas", "Glasnet", "fibre", 500, 240.0, 260, "Noord", (0.91, 0.88, 0.93)),
    ("noord", "de-vlinder", "Kabelco", "cable", 250, 120.0, 180, "Noord", (0.70, 0.62, 0.75, 0.68)),
    ("noord", "de-linde", "Kabelco", "cable", 250, 120.0, 330, "Noord", (0.81, 0.77, 0.85)),
    ("noord", "het-anker", "Koperlijn", "vdsl", 50, 65.0, 150, "Noord", (0.55, 0.60, 0.52)),
    ("midden", "de-wereld", "Glasnet", "fibre", 500, 255.0, 520, "Midden", (0.96, 0.99, 0.94)),
    ("midden", "de-boog", "Glasnet", "fibre", 500, 255.0, 300, "Midden", (0.89, 0.86, 0.92)),
    ("midden", "de-toren", "Glasnet", "fibre", 500, 255.0, 340, "Midden", (0.82, 0.79, 0.85)),
    ("midden", "de-klimop", "Kabelco", "cable", 250, 115.0, 210, "Midden", (0.66, 0.72, 0.58)),
    ("midden", "de-zonnewijzer", "Koperlijn", "vdsl", 50, 60.0, 95, "Midden", (0.78, 0.81, 0.74)),
    ("midden", "de-horizon", "Koperlijn", "vdsl", 50, 60.0, 120, "Midden", (0.48, 0.51, 0.45)),
    ("zuid", "de-eik", "Glasnet", "fibre", 500, 230.0, 450, "Zuid", (0.93, 0.97, 0.90)),
    ("zuid", "de-beuk", "Glasnet", "fibre", 500, 230.0, 280, "Zuid", (0.87, 0.84, 0.91)),
    ("zuid", "de-wilg", "Kabelco", "cable", 250, 125.0, 240, "Zuid", (0.79, 0.74, 0.83)),
    ("zuid", "de-populier", "Kabelco", "cable", 250, 125.0, 190, "Zuid", (0.64, 0.69, 0.61)),
    ("zuid", "de-es", "Koperlijn", "vdsl", 50, 62.0, 110, "Zuid", (0.70, 0.73)),
)
BOARD_NAMES = {"noord": "Stichting Noord", "midden": "Stichting Midden", "zuid": "Stichting Zuid"}
COOPERATIVE_TESTS = 30
# De Es has only 4 tests (too few); Zuid has shared its schools with the analysts, so an
# analyst sees Zuid's 5 schools one by one, Glasnet (5 schools of unshared boards) as a group,
# and Kabelco and Koperlijn (3 each) hidden.
FEW_TESTS_SCHOOL = ("zuid", "de-es")
SHARED_BOARD = "zuid"


def cooperative(folder: Path, url: str | None = None) -> ComparisonStore:
    """The cooperative scenario a5's pages and the e2e test render: every school observed
    from 1 March, one provider outage of 45 minutes at De Vlinder and a restored incident,
    a second open incident at Het Anker; Zuid shared."""
    store = ComparisonStore.create(folder, url)
    for board, school, provider, technology, down, cost, pupils, region, ratios in COOPERATIVE:
        store.line(board, school, provider=provider, technology=technology, down_mbps=down,
                   up_mbps=down / 10 if technology != "fibre" else down, cost=cost, pupils=pupils,
                   region=region, board_name=BOARD_NAMES[board])
        n = 4 if (board, school) == FEW_TESTS_SCHOOL else COOPERATIVE_TESTS
        cycle = itertools.cycle(ratios)
        downs = [round(next(cycle) * down, 3) for _ in range(n)]
        up = down / 10 if technology != "fibre" else down
        store.tests(board, school, downs, ups_mbps=[round(0.9 * up, 3)] * n)
        outages = ([(local(date(2026, 3, 10), 10, 0), local(date(2026, 3, 10), 10, 45))]
                   if school == "de-vlinder" else [])
        store.observe(board, school, local(date(2026, 3, 1), 0, 0), outages)
    store.incident("noord", "de-vlinder", kind="outage", started_at=local(date(2026, 3, 10), 10, 0),
                   restored_at=local(date(2026, 3, 10), 10, 45))
    store.incident("noord", "het-anker", kind="bandwidth", started_at=local(date(2026, 3, 16), 9, 0))
    store.share(SHARED_BOARD)
    return store

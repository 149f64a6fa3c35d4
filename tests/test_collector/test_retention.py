"""Daily aggregates and retention on a real store (SQLite and PostgreSQL): hand-checked days,
exact pruning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, update

from collector.aggregates import aggregate_days, load_aggregates, nearest_rank
from collector.cli import main
from collector.db.engine import open_engine, writer
from collector.db.migrate import upgrade
from collector.db.schema import (
    agents,
    bandwidth_results,
    connections,
    daily_aggregates,
    given_up_ranges,
    holidays,
    latest,
    records,
    rejected_records,
    room_observations,
    rooms,
    schools,
    streams,
)
from collector.registry import add_board, add_school, resolve_school
from collector.retention import apply_retention
from collector.settings import CollectorSettings
from tests.support.records import at, deliver, new_stream, record

pytestmark = pytest.mark.both_stores

MB = 1_000_000.0
DAY = 86400.0


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def outage(kind: str, start: float, end: float) -> dict[str, Any]:
    """An outage payload as the agent sends it (agent.wire.OutagePayload)."""
    return {"outage_kind": kind, "start_seconds": start, "end_seconds": end,
            "duration_seconds": end - start, "interrupted": False, "detail": ""}


class Store:
    """Two schools in two zones, filled by hand."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = open_engine(url)
        upgrade(self.engine)
        add_board(self.engine, "Board")
        add_school(self.engine, "board", "Amsterdam")
        add_school(self.engine, "board", "Tokyo")
        with writer(self.engine) as conn, conn.begin():
            self.ams = resolve_school(conn, "board/amsterdam")[0]
            self.tokyo = resolve_school(conn, "board/tokyo")[0]
            conn.execute(update(schools).where(schools.c.id == self.tokyo).values(timezone="Asia/Tokyo"))
            self.agent = self._agent(conn, self.ams, "pi")
            self.tokyo_agent = self._agent(conn, self.tokyo, "pi")
            self.main = self._connection(conn, self.ams, "main", "main")
            self.backup = self._connection(conn, self.ams, "backup", "backup")
            self.room = conn.execute(rooms.insert().values(
                school_id=self.ams, slug="lab", name="Lab", created_at=0.0)).inserted_primary_key[0]
        self.stream = "a" * 32
        self.seq = 0

    @staticmethod
    def _agent(conn: Any, school: int, slug: str) -> int:
        return int(conn.execute(agents.insert().values(
            school_id=school, slug=slug, name=slug, credential_hash=f"{school}-{slug}".ljust(64, "0"),
            created_at=0.0)).inserted_primary_key[0])

    @staticmethod
    def _connection(conn: Any, school: int, slug: str, role: str) -> int:
        return int(conn.execute(connections.insert().values(
            school_id=school, slug=slug, provider="KPN", provider_id="kpn", technology="fibre",
            role=role, networks=[], created_at=0.0)).inserted_primary_key[0])

    def result(self, t: float, download: float | None, upload: float | None = 1 * MB, valid: bool = True,
               connection: int | None = None, school: int | None = None, source: str = "agent") -> None:
        with writer(self.engine) as conn, conn.begin():
            conn.execute(bandwidth_results.insert().values(
                school_id=school or self.ams, agent_id=self.agent if source == "agent" else None,
                source=source, connection_id=connection, attribution="test", measured_at=t,
                download_bytes_per_second=download, upload_bytes_per_second=upload, valid=valid,
                invalid_reasons=[] if valid else ["cpu"], backend="http", server="http://127.0.0.1"))

    def raw(self, t: float, kind: str, payload: dict[str, Any], ok: bool = True,
            agent: int | None = None, watermark: bool = True) -> None:
        """A record, and (``watermark``) the stream's watermark moved over it, as ingest would."""
        self.seq += 1
        agent_id = agent or self.agent
        with writer(self.engine) as conn, conn.begin():
            conn.execute(records.insert().values(
                agent_id=agent_id, stream_id=self.stream, seq=self.seq, kind=kind, ok=ok,
                measured_at=t, boot_id="b", since_boot_seconds=1.0, received_at=t, payload=payload))
            if watermark:
                mark = conn.scalar(select(streams.c.accounted_through).where(
                    streams.c.agent_id == agent_id, streams.c.stream_id == self.stream))
                if mark is None:
                    conn.execute(streams.insert().values(agent_id=agent_id, stream_id=self.stream,
                                                         accounted_through=self.seq))
                else:
                    conn.execute(update(streams).where(
                        streams.c.agent_id == agent_id, streams.c.stream_id == self.stream
                    ).values(accounted_through=self.seq))

    def observation(self, t: float, signal: float | None) -> None:
        with writer(self.engine) as conn, conn.begin():
            conn.execute(room_observations.insert().values(
                room_id=self.room, agent_id=self.agent, measured_at=t, source="agent", signal_dbm=signal))

    def aggregates(self, school: int, day: str, kind: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            rows = load_aggregates(conn, school, date.fromisoformat(day), date.fromisoformat(day), kind)
        return {row.scope: row.data for row in rows}

    def count(self, table: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    result = Store(db_url)
    yield result
    result.engine.dispose()


def test_nearest_rank_takes_a_measured_value() -> None:
    assert nearest_rank([50, 10, 40, 20, 30], 50) == 30
    assert nearest_rank([50, 10, 40, 20, 30], 20) == 10
    assert nearest_rank([1, 2, 3, 4], 50) == 2
    assert nearest_rank([7], 20) == 7
    assert nearest_rank([], 50) is None


def test_aggregates_of_a_dst_day_in_two_zones(store: Store) -> None:
    # 2026-03-29 in Amsterdam is 23 hours long: 2026-03-28T23:00Z to 2026-03-29T22:00Z.
    for t, value, connection in [("2026-03-28T23:10", 10, store.main), ("2026-03-29T05:00", 20, store.main),
                                 ("2026-03-29T12:00", 30, store.main), ("2026-03-29T15:00", 40, store.backup),
                                 ("2026-03-29T21:30", 50, store.backup)]:
        store.result(utc(t), value * MB, connection=connection)
    store.result(utc("2026-03-29T13:00"), 1 * MB, valid=False)  # invalid, unattributed
    store.result(utc("2026-03-29T14:00"), None, upload=3 * MB)  # download failed, upload measured
    # 22:30Z is 00:30 on the 30th in Amsterdam (UTC+2 since the change): a 24-hour day would take it.
    store.result(utc("2026-03-29T22:30"), 99 * MB, connection=store.main)
    # Before the day starts (22:59Z on the 28th is 23:59 local, UTC+1).
    store.result(utc("2026-03-28T22:59"), 98 * MB, connection=store.main)
    # Tokyo: 16:00Z on the 29th is 01:00 on the 30th there; 14:00Z is 23:00 on the 29th.
    store.result(utc("2026-03-29T16:00"), 7 * MB, school=store.tokyo)
    store.result(utc("2026-03-29T14:00"), 5 * MB, school=store.tokyo)

    for t, down, window_ok in [("2026-03-29T08:00", 0.0, True), ("2026-03-29T08:01", 24.5, True),
                               ("2026-03-29T08:02", 60.0, True), ("2026-03-29T08:03", 0.0, False)]:
        store.raw(utc(t), "connectivity", {"window_seconds": 60.0, "down_seconds": down} if window_ok else {},
                  ok=window_ok)
    store.raw(utc("2026-03-29T08:20"), "outage", outage("isp", utc("2026-03-29T08:20") - 911.5,
                                                          utc("2026-03-29T08:20")))
    store.raw(utc("2026-03-29T09:00"), "outage", outage("lan", utc("2026-03-29T08:59:30"),
                                                          utc("2026-03-29T09:00")))
    for t, devices in [("2026-03-29T08:00", 10), ("2026-03-29T09:00", 40), ("2026-03-29T10:00", 25),
                       ("2026-03-29T11:00", 30)]:
        store.raw(utc(t), "users", {"window_seconds": 300.0, "concurrent_devices": devices})
    for t, signal in [("2026-03-29T08:00", -60.0), ("2026-03-29T09:00", -70.0), ("2026-03-29T10:00", None),
                      ("2026-03-29T11:00", -50.0)]:
        store.observation(utc(t), signal)

    written = aggregate_days(store.engine, None, date(2026, 3, 29), date(2026, 3, 30))
    assert written > 0

    bandwidth = store.aggregates(store.ams, "2026-03-29", "bandwidth")
    # A Sunday: nothing in school hours, everything outside them.
    assert bandwidth["school"]["school"]["tests"] == 0
    assert bandwidth["school"]["outside"] == bandwidth["school"]["all"]
    school = bandwidth["school"]["all"]
    assert (school["tests"], school["valid_tests"], school["unattributed_tests"]) == (7, 6, 2)
    assert school["download_bytes_per_second"] == {"count": 5, "median": 30 * MB, "p20": 10 * MB,
                                                   "min": 10 * MB, "max": 50 * MB}
    assert school["upload_bytes_per_second"]["count"] == 6
    assert school["upload_bytes_per_second"]["max"] == 3 * MB
    assert bandwidth["connection/main"]["all"]["download_bytes_per_second"] == {
        "count": 3, "median": 20 * MB, "p20": 10 * MB, "min": 10 * MB, "max": 30 * MB}
    assert bandwidth["connection/backup"]["all"]["download_bytes_per_second"]["median"] == 40 * MB
    next_day = store.aggregates(store.ams, "2026-03-30", "bandwidth")
    # Monday 00:30 local: a school day, but not school hours.
    assert (next_day["school"]["all"]["tests"], next_day["school"]["school"]["tests"]) == (1, 0)
    assert next_day["connection/main"]["outside"]["download_bytes_per_second"]["max"] == 99 * MB
    assert "connection/backup" not in next_day

    tokyo_29 = store.aggregates(store.tokyo, "2026-03-29", "bandwidth")["school"]["all"]
    tokyo_30 = store.aggregates(store.tokyo, "2026-03-30", "bandwidth")["school"]
    assert tokyo_29["download_bytes_per_second"]["max"] == 5 * MB
    # 16:00Z is 01:00 on Monday in Tokyo: outside its school hours too.
    assert tokyo_30["outside"]["download_bytes_per_second"]["max"] == 7 * MB
    assert tokyo_30["school"]["tests"] == 0

    by_hours = store.aggregates(store.ams, "2026-03-29", "connectivity")["agent/pi"]
    assert by_hours["school"] == {"windows": 0, "failed_windows": 0, "window_seconds": 0.0,
                                  "down_seconds": 0.0, "lan_windows": 0, "targets_sent": 0,
                                  "targets_received": 0, "latency_windows": 0, "latency_p50_seconds": None,
                                  "outages": {}, "outage_seconds": {}}
    connectivity = by_hours["all"]
    assert by_hours["outside"] == connectivity
    assert connectivity["windows"] == 3 and connectivity["failed_windows"] == 1
    assert connectivity["window_seconds"] == 180.0 and connectivity["down_seconds"] == 84.5
    assert connectivity["outages"] == {"isp": 1, "lan": 1}
    assert connectivity["outage_seconds"] == {"isp": 911.5, "lan": 30.0}
    users = store.aggregates(store.ams, "2026-03-29", "users")["agent/pi"]["all"]
    assert users["windows"] == 4 and users["peak_concurrent_devices"] == 40
    assert users["median_concurrent_devices"] == 25
    wifi = store.aggregates(store.ams, "2026-03-29", "wifi")["school"]["all"]
    assert wifi["rooms"]["lab"] == {"observations": 4, "with_signal": 3, "median_signal_dbm": -60.0,
                                    "min_signal_dbm": -70.0, "max_signal_dbm": -50.0}
    # The other school's agent had nothing: no agent scope there; its empty day still says so.
    assert store.aggregates(store.tokyo, "2026-03-29", "connectivity") == {}
    assert store.aggregates(store.tokyo, "2026-03-29", "wifi")["school"] == {
        "all": {"rooms": {}}, "school": {"rooms": {}}, "outside": {"rooms": {}}}


def test_a_school_day_splits_into_school_hours_and_outside(store: Store) -> None:
    """Tuesday 2026-06-09 in Amsterdam (UTC+2): school hours 08:30-15:30 are 06:30Z-13:30Z,
    the start inside, the end outside."""
    for t, value, valid, connection, source in [
            ("2026-06-09T06:00", 10, True, store.main, "agent"),     # 08:00: outside
            ("2026-06-09T06:30", 20, True, store.main, "agent"),     # 08:30: school
            ("2026-06-09T10:00", 40, True, store.backup, "agent"),   # school
            ("2026-06-09T11:00", 1, False, None, "agent"),           # school, invalid
            ("2026-06-09T13:30", 30, True, store.main, "agent"),     # 15:30: outside
            ("2026-06-09T19:00", 50, True, None, "import")]:         # outside, imported
        store.result(utc(t), value * MB, valid=valid, connection=connection, source=source)
    # Tokyo (UTC+9, no DST): 01:00Z is 10:00 there (school), 10:00Z is 19:00 (outside).
    store.result(utc("2026-06-09T01:00"), 3 * MB, school=store.tokyo)
    store.result(utc("2026-06-09T10:00"), 4 * MB, school=store.tokyo)

    for t, down, ok in [("2026-06-09T06:29", 10.0, True), ("2026-06-09T06:30", 0.0, True),
                        ("2026-06-09T12:00", 60.0, True), ("2026-06-09T12:01", 0.0, False),
                        ("2026-06-09T20:00", 5.0, True)]:
        store.raw(utc(t), "connectivity", {"window_seconds": 60.0, "down_seconds": down} if ok else {}, ok=ok)
    # 08:20-08:40 local: 10 minutes each side of the start.
    store.raw(utc("2026-06-09T06:40"), "outage",
              outage("isp", utc("2026-06-09T06:20"), utc("2026-06-09T06:40")))
    store.raw(utc("2026-06-09T12:02"), "outage",
              outage("lan", utc("2026-06-09T12:00"), utc("2026-06-09T12:02")))
    # From Monday 15:00 local to Tuesday 08:35: 17 h 35 min (63,300 s), of which 30 min on
    # Monday and 5 min on Tuesday were school time; it counts on the Tuesday, when it ended.
    store.raw(utc("2026-06-09T06:35"), "outage",
              outage("isp", utc("2026-06-08T13:00"), utc("2026-06-09T06:35")))
    for t, devices in [("2026-06-09T06:00", 5), ("2026-06-09T07:00", 300), ("2026-06-09T09:00", 250),
                       ("2026-06-09T12:00", 280), ("2026-06-09T18:00", 8)]:
        store.raw(utc(t), "users", {"window_seconds": 300.0, "concurrent_devices": devices})
    for t, signal in [("2026-06-09T06:00", -80.0), ("2026-06-09T08:00", -60.0), ("2026-06-09T09:00", None),
                      ("2026-06-09T10:00", -50.0)]:
        store.observation(utc(t), signal)

    aggregate_days(store.engine, None, date(2026, 6, 9), date(2026, 6, 9))

    bandwidth = store.aggregates(store.ams, "2026-06-09", "bandwidth")
    school = bandwidth["school"]
    assert set(school) == {"all", "school", "outside"}
    counts = ("tests", "valid_tests", "imported_tests", "unattributed_tests")
    assert [school["all"][name] for name in counts] == [6, 5, 1, 2]
    assert [school["school"][name] for name in counts] == [3, 2, 0, 1]
    assert [school["outside"][name] for name in counts] == [3, 3, 1, 1]
    assert school["all"]["download_bytes_per_second"] == {
        "count": 5, "median": 30 * MB, "p20": 10 * MB, "min": 10 * MB, "max": 50 * MB}
    assert school["school"]["download_bytes_per_second"] == {
        "count": 2, "median": 20 * MB, "p20": 20 * MB, "min": 20 * MB, "max": 40 * MB}
    assert school["outside"]["download_bytes_per_second"] == {
        "count": 3, "median": 30 * MB, "p20": 10 * MB, "min": 10 * MB, "max": 50 * MB}
    assert school["school"]["upload_bytes_per_second"]["count"] == 2
    main_line = bandwidth["connection/main"]
    assert "unattributed_tests" not in main_line["all"]
    assert [main_line[part]["tests"] for part in ("all", "school", "outside")] == [3, 1, 2]
    assert main_line["school"]["download_bytes_per_second"]["median"] == 20 * MB
    assert main_line["outside"]["download_bytes_per_second"]["max"] == 30 * MB
    tokyo = store.aggregates(store.tokyo, "2026-06-09", "bandwidth")["school"]
    assert tokyo["school"]["download_bytes_per_second"]["max"] == 3 * MB
    assert tokyo["outside"]["download_bytes_per_second"]["max"] == 4 * MB

    connectivity = store.aggregates(store.ams, "2026-06-09", "connectivity")["agent/pi"]
    windows = ("windows", "failed_windows", "window_seconds", "down_seconds")
    assert [connectivity["all"][name] for name in windows] == [4, 1, 240.0, 75.0]
    assert [connectivity["school"][name] for name in windows] == [2, 1, 120.0, 60.0]
    assert [connectivity["outside"][name] for name in windows] == [2, 0, 120.0, 15.0]
    assert connectivity["all"]["outages"] == {"isp": 2, "lan": 1}
    assert connectivity["all"]["outage_seconds"] == {"isp": 1200.0 + 63300.0, "lan": 120.0}
    # Both isp outages had school time, and outside time; the lan one only school time.
    assert connectivity["school"]["outages"] == {"isp": 2, "lan": 1}
    assert connectivity["school"]["outage_seconds"] == {"isp": 600.0 + 2100.0, "lan": 120.0}
    assert connectivity["outside"]["outages"] == {"isp": 2}
    assert connectivity["outside"]["outage_seconds"] == {"isp": 600.0 + 61200.0}

    users = store.aggregates(store.ams, "2026-06-09", "users")["agent/pi"]
    assert users["all"] == {"windows": 5, "peak_concurrent_devices": 300, "median_concurrent_devices": 250}
    assert users["school"] == {"windows": 3, "peak_concurrent_devices": 300, "median_concurrent_devices": 280}
    assert users["outside"] == {"windows": 2, "peak_concurrent_devices": 8, "median_concurrent_devices": 5}

    wifi = store.aggregates(store.ams, "2026-06-09", "wifi")["school"]
    assert wifi["all"]["rooms"]["lab"] == {"observations": 4, "with_signal": 3, "median_signal_dbm": -60.0,
                                           "min_signal_dbm": -80.0, "max_signal_dbm": -50.0}
    assert wifi["school"]["rooms"]["lab"] == {"observations": 3, "with_signal": 2,
                                              "median_signal_dbm": -60.0, "min_signal_dbm": -60.0,
                                              "max_signal_dbm": -50.0}
    assert wifi["outside"]["rooms"]["lab"] == {"observations": 1, "with_signal": 1,
                                               "median_signal_dbm": -80.0, "min_signal_dbm": -80.0,
                                               "max_signal_dbm": -80.0}


def test_a_holiday_and_a_weekend_have_no_school_hours(store: Store) -> None:
    """Midday on a holiday (Wednesday 2026-06-10, the school's own calendar) and on a
    Saturday (2026-06-13) is outside school hours; the Thursday between is not a holiday."""
    with writer(store.engine) as conn, conn.begin():
        conn.execute(holidays.insert().values(calendar=f"school:{store.ams}", starts_on="2026-06-10",
                                              ends_on="2026-06-10", name="Studiedag", created_at=0.0))
    for day in ("2026-06-10", "2026-06-11", "2026-06-13"):
        store.result(utc(f"{day}T10:00"), 10 * MB, connection=store.main)
        store.raw(utc(f"{day}T10:00"), "users", {"window_seconds": 300.0, "concurrent_devices": 7})
        store.observation(utc(f"{day}T10:00"), -65.0)
        store.raw(utc(f"{day}T10:05"), "outage", outage("isp", utc(f"{day}T10:00"), utc(f"{day}T10:05")))
    aggregate_days(store.engine, store.ams, date(2026, 6, 10), date(2026, 6, 13))
    for day, in_school in (("2026-06-10", False), ("2026-06-11", True), ("2026-06-13", False)):
        inside, outside = ("school", "outside") if in_school else ("outside", "school")
        bandwidth = store.aggregates(store.ams, day, "bandwidth")["school"]
        assert (bandwidth[inside]["tests"], bandwidth[outside]["tests"]) == (1, 0), day
        assert bandwidth[outside]["download_bytes_per_second"] == {
            "count": 0, "median": None, "p20": None, "min": None, "max": None}
        users = store.aggregates(store.ams, day, "users")["agent/pi"]
        assert users[outside] == {"windows": 0, "peak_concurrent_devices": None,
                                  "median_concurrent_devices": None}
        assert users[inside]["peak_concurrent_devices"] == 7
        connectivity = store.aggregates(store.ams, day, "connectivity")["agent/pi"]
        assert connectivity[inside]["outage_seconds"] == {"isp": 300.0}
        assert connectivity[outside]["outages"] == {} and connectivity[outside]["outage_seconds"] == {}
        wifi = store.aggregates(store.ams, day, "wifi")["school"]
        assert list(wifi[inside]["rooms"]) == ["lab"] and wifi[outside]["rooms"] == {}


def test_recomputing_a_day_replaces_it_and_takes_late_records(store: Store) -> None:
    store.result(utc("2026-05-04T10:00"), 10 * MB, connection=store.main)
    aggregate_days(store.engine, store.ams, date(2026, 5, 4), date(2026, 5, 4))
    # Late: measured that day, delivered after its aggregate was made; and the line changed.
    store.result(utc("2026-05-04T11:00"), 20 * MB, connection=store.backup)
    with writer(store.engine) as conn, conn.begin():
        conn.execute(update(bandwidth_results).where(bandwidth_results.c.connection_id == store.main)
                     .values(connection_id=store.backup))
    aggregate_days(store.engine, store.ams, date(2026, 5, 4), date(2026, 5, 4))
    bandwidth = store.aggregates(store.ams, "2026-05-04", "bandwidth")
    assert bandwidth["school"]["all"]["tests"] == 2
    assert set(bandwidth) == {"school", "connection/backup"}  # the scope without data went
    with store.engine.connect() as conn:
        rows = conn.scalar(select(func.count()).select_from(daily_aggregates).where(
            daily_aggregates.c.day == "2026-05-04", daily_aggregates.c.kind == "bandwidth"))
    assert rows == 2


def fill_history(store: Store, now: float) -> dict[str, float]:
    """Rows around the cut-off of a 10-day retention. In Amsterdam (UTC+2 in May),
    now - 10 d is 2026-05-05T12:00Z: the cut-off is that local day's start, 2026-05-04T22:00Z."""
    times = {"old": utc("2026-05-01T10:00"), "older": utc("2026-04-20T10:00"),
             "edge": utc("2026-05-04T21:59"), "cutoff_day": utc("2026-05-05T06:00"),
             "recent": now - 3600}
    for t in times.values():
        store.result(t, 10 * MB, connection=store.main)
        store.raw(t, "connectivity", {"window_seconds": 60.0, "down_seconds": 0.0})
        store.raw(t, "users", {"window_seconds": 300.0, "concurrent_devices": 12})
        store.observation(t, -55.0)
    store.result(times["older"], 5 * MB, source="import")
    with writer(store.engine) as conn, conn.begin():
        stream = {"agent_id": store.agent, "stream_id": store.stream}
        conn.execute(rejected_records.insert().values(**stream, seq=1, code="mac_address", reason="x",
                                                      received_at=times["old"]))
        conn.execute(rejected_records.insert().values(**stream, seq=None, code="invalid_field", reason="x",
                                                      received_at=times["recent"]))
        conn.execute(given_up_ranges.insert().values(**stream, first_seq=1, last_seq=2, reason="evicted",
                                                     reported_at=times["old"]))
    return times


NOW = utc("2026-05-15T12:00")


def settings_for(store: Store, retention: str = "10d") -> CollectorSettings:
    return CollectorSettings(db=str(store.engine.url), retention=retention)


def test_prune_removes_exactly_the_rows_before_the_cutoff_and_keeps_aggregates(store: Store) -> None:
    times = fill_history(store, NOW)
    report = apply_retention(store.engine, settings_for(store), NOW)
    ams = next(school for school in report.schools if school.school == "board/amsterdam")
    assert ams.cutoff == utc("2026-05-04T22:00") and ams.cutoff_day == "2026-05-05"
    # old (2 rows of each raw table, plus the one minute before the cut-off).
    assert ams.deleted == {"records": 6, "room_observations": 3, "bandwidth_results": 3,
                           "rejected_records": 1, "given_up_ranges": 1}
    with store.engine.connect() as conn:
        kept = sorted(conn.scalars(select(records.c.measured_at).where(records.c.kind == "users")))
        imported = conn.scalar(select(func.count()).select_from(bandwidth_results).where(
            bandwidth_results.c.source == "import"))
    assert kept == sorted([times["cutoff_day"], times["recent"]])
    assert imported == 1  # a board's archive stays
    assert store.count(room_observations) == 2 and store.count(rejected_records) == 1
    assert store.count(streams) == 1  # state stays
    # Every pruned day has its aggregates and a marker, from the oldest row on.
    assert (ams.first_aggregated, ams.pruned_days) == ("2026-04-20", 15)
    assert store.aggregates(store.ams, "2026-04-20", "bandwidth")["school"]["all"]["tests"] == 2
    users = store.aggregates(store.ams, "2026-05-04", "users")["agent/pi"]["all"]
    assert users["peak_concurrent_devices"] == 12
    assert store.aggregates(store.ams, "2026-05-04", "pruned") != {}
    assert store.aggregates(store.ams, "2026-04-25", "bandwidth")["school"]["all"]["tests"] == 0
    # The last 7 days were aggregated too (2026-05-08 .. today).
    assert ams.last_aggregated == "2026-05-15"
    assert store.aggregates(store.ams, "2026-05-15", "users")["agent/pi"]["all"]["windows"] == 1

    # Running again deletes nothing more and leaves the pruned days' aggregates alone.
    again = apply_retention(store.engine, settings_for(store), NOW)
    assert again.deleted == dict.fromkeys(again.deleted, 0)
    assert store.aggregates(store.ams, "2026-04-20", "bandwidth")["school"]["all"]["tests"] == 2


def test_deletion_is_chunked(store: Store) -> None:
    for index in range(23):
        store.raw(utc("2026-04-01T10:00") + index, "users",
                  {"window_seconds": 300.0, "concurrent_devices": 1})
    deletes: list[int] = []

    @event.listens_for(store.engine, "after_cursor_execute")
    def _count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("DELETE FROM records"):
            deletes.append(cursor.rowcount)

    report = apply_retention(store.engine, settings_for(store), NOW, chunk=5)
    assert report.deleted["records"] == 23
    assert [count for count in deletes if count] == [5, 5, 5, 5, 3]
    assert store.count(records) == 0


def test_dry_run_changes_nothing(store: Store) -> None:
    fill_history(store, NOW)
    tables = (records, room_observations, bandwidth_results, rejected_records, given_up_ranges,
              daily_aggregates)
    before = {table.name: store.count(table) for table in tables}
    dry = apply_retention(store.engine, settings_for(store), NOW, dry_run=True)
    after = {table.name: store.count(table) for table in tables}
    assert before == after
    real = apply_retention(store.engine, settings_for(store), NOW)
    assert dry.deleted == real.deleted
    assert [s.aggregated_days for s in dry.schools] == [s.aggregated_days for s in real.schools]


def test_rows_the_watermark_has_not_passed_are_kept(store: Store) -> None:
    store.raw(utc("2026-04-01T10:00"), "users", {"window_seconds": 300.0, "concurrent_devices": 1})
    # seq 2 lost, seq 3 stored: the watermark stays at 1 until 2 is accounted for.
    store.seq += 1
    store.raw(utc("2026-04-01T10:05"), "users", {"window_seconds": 300.0, "concurrent_devices": 2},
              watermark=False)
    report = apply_retention(store.engine, settings_for(store), NOW)
    ams = report.schools[0]
    assert ams.deleted["records"] == 1 and ams.kept_above_watermark == 1
    with store.engine.connect() as conn:
        assert list(conn.scalars(select(records.c.seq))) == [3]


def census(seq: int, stream: str, t: float) -> dict[str, Any]:
    return at(record(seq, stream, "users", payload={"window_seconds": 300.0, "concurrent_devices": 9}), t)


def test_redelivery_after_prune_is_a_duplicate_and_pruned_days_stay_final(site: Any) -> None:
    """Ingest tells a record at or below its stream's watermark a duplicate even once
    retention deleted its row: a pruned record sent again is neither stored nor counted.
    A new record measured on a pruned day (an agent offline for longer than the retention)
    is stored, then deleted by the next run, and the day's final aggregates stay."""
    stream = new_stream()
    measured = NOW - 30 * DAY
    old = [census(seq, stream, measured + seq) for seq in (1, 2)]
    assert deliver(site, *old) == ["accepted", "accepted"]
    with site.engine.connect() as conn:
        runs_before = conn.scalar(select(latest.c.runs_total).where(latest.c.kind == "users"))
        school = conn.scalar(select(agents.c.school_id))
    settings = CollectorSettings(db=site.db_url, retention="10d")
    first = apply_retention(site.engine, settings, NOW)
    assert first.deleted["records"] == 2
    day = datetime.fromtimestamp(measured, UTC).date().isoformat()

    def day_tests() -> Any:
        with site.engine.connect() as conn:
            rows = load_aggregates(conn, school, date.fromisoformat(day), date.fromisoformat(day), "users")
        return {row.scope: row.data["all"]["windows"] for row in rows}

    assert day_tests() == {"agent/pi": 2}

    assert deliver(site, census(1, stream, measured + 1)) == ["duplicate"]
    with site.engine.connect() as conn:
        runs_after = conn.scalar(select(latest.c.runs_total).where(latest.c.kind == "users"))
        stored = conn.scalar(select(func.count()).select_from(records))
    assert (runs_after, stored) == (runs_before, 0)
    assert deliver(site, census(3, stream, measured + 3)) == ["accepted"]
    second = apply_retention(site.engine, settings, NOW)
    assert second.deleted["records"] == 1
    assert second.schools[0].late_rows_days == 1
    assert day_tests() == {"agent/pi": 2}  # not recomputed from the one late row
    # The collector still serves and ingests after a prune.
    assert site.metrics().status_code == 200
    assert deliver(site, record(4, stream)) == ["accepted"]


def test_retention_cli(store: Store, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The command uses the real clock: a retention that makes the whole history old.
    monkeypatch.setenv("SCHOOLNET_RETENTION", "1d")
    fill_history(store, utc("2026-05-15T12:00"))
    url = store.url
    assert main(["retention", "run", "--dry-run", "--json", "--db", url]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] is True
    assert sum(dry["deleted"].values()) > 0
    assert store.count(daily_aggregates) == 0
    assert main(["retention", "run", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "board/amsterdam: raw rows before" in out and out.splitlines()[-1].startswith("total: deleted")
    assert store.count(daily_aggregates) > 0
    assert store.count(room_observations) == 0
    with pytest.raises(SystemExit) as exit_info:
        main(["retention", "run", "--bogus", "--db", url])
    assert exit_info.value.code == 2
    monkeypatch.setenv("SCHOOLNET_RETENTION", "soon")
    assert main(["retention", "run", "--db", url]) == 2
    assert "settings" in capsys.readouterr().err

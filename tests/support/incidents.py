"""Incidents for the evidence-pack tests: a school with a registered line, realistic records
ingested through the collector's real ingest route, and an incident row with its events
written straight into the store (what collector/incidents/store.py writes once detection
opens one; used here so the pack is tested on its own, with figures we know).

The school day is Tuesday 3 March 2026 in Europe/Amsterdam (CET, UTC+1), default school
hours 08:30-15:30. The line: De Regenboog, Example Fibre, 100/100 Mbit/s advertised.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert

from collector.contracts import import_contracts
from collector.contracts_csv import COLUMNS
from collector.db.schema import incident_events, incidents
from collector.registry import resolve_school
from support.records import deliver, new_stream, record

ZONE = ZoneInfo("Europe/Amsterdam")
MBIT = 125_000.0
SERVER_A = "http://127.0.0.1:9101"
SERVER_B = "http://127.0.0.1:9102"
GATEWAY = "192.168.10.1"
# The provider's first hop past the gateway: the line's side, allowed in a pack.
ACCESS_HOP = "198.51.100.1"


def local(hour: int, minute: int = 0, second: int = 0, day: int = 3) -> float:
    """Unix seconds of a wall-clock time on the test day (3 March 2026) in Amsterdam."""
    return datetime(2026, 3, day, hour, minute, second, tzinfo=ZONE).timestamp()


def register_line(engine: Engine, **cells: str) -> None:
    """Test Board's school "test-school" becomes De Regenboog with one fibre line of
    Example Fibre, 100/100 Mbit/s advertised (80 normal, 50 minimum), EUR 89.50 a month,
    restore within 8 h (24x7) unless ``cells`` say otherwise."""
    values = {name: "" for name in COLUMNS}
    values.update(
        board="test-board",
        board_name="Test Board",
        school="test-school",
        school_name="De Regenboog",
        external_id="12AB",
        address="Schoolstraat 1",
        postcode="1234 AB",
        city="Utrecht",
        timezone="Europe/Amsterdam",
        connection="main",
        provider="Example Fibre",
        technology="fibre",
        role="main",
        support_contact="helpdesk@example-fibre.test",
        contract_start="2026-01-01",
        download_advertised_mbps="100",
        upload_advertised_mbps="100",
        download_normal_mbps="80",
        upload_normal_mbps="80",
        download_minimum_mbps="50",
        upload_minimum_mbps="50",
        download_maximum_mbps="100",
        upload_maximum_mbps="100",
        monthly_cost="89.50",
        currency="EUR",
        sla_restore="8h",
    )
    values.update(cells)
    header = ",".join(COLUMNS)
    row = ",".join(_cell(values[name]) for name in COLUMNS)
    import_contracts(engine, f"{header}\n{row}\n", source_name="line.csv")


def _cell(value: str) -> str:
    return f'"{value}"' if "," in value else value


# --- records in the wire format ----------------------------------------------------------------


class Agent:
    """One enrolled agent's stream of records, delivered through the real ingest route."""

    def __init__(self, site: Any, credential: str | None = None) -> None:
        self.site = site
        self.credential = credential or site.credential
        self.stream = new_stream()
        self.seq = 0

    def deliver(self, records: Iterable[dict[str, Any]]) -> None:
        chunk: list[dict[str, Any]] = []
        for rec in records:
            chunk.append(rec)
            if len(chunk) == 200:
                self._send(chunk)
                chunk = []
        if chunk:
            self._send(chunk)

    def _send(self, chunk: list[dict[str, Any]]) -> None:
        statuses = deliver(self.site, *chunk, credential=self.credential)
        assert all(s == "accepted" for s in statuses), statuses

    def make(
        self, kind: str, at: float, payload: dict[str, Any], ok: bool = True, error: str | None = None
    ) -> dict[str, Any]:
        self.seq += 1
        rec = record(self.seq, self.stream, kind, payload=payload, ok=ok, error=error)
        rec["clock"]["wall_time_seconds"] = at
        rec["clock"]["since_boot_seconds"] = 1000.0 + self.seq
        return rec


def bandwidth(
    down_mbit: float | None,
    up_mbit: float | None,
    server: str = SERVER_A,
    *,
    retest_server: str | None = None,
    retest_down_mbit: float | None = None,
    retest_up_mbit: float | None = None,
    devices: int | None = 180,
    invalid: Sequence[str] = (),
    wireless: bool = False,
    cross_down_bytes: int = 1_200_000,
    cross_up_bytes: int = 300_000,
) -> dict[str, Any]:
    """A bandwidth payload as the agent sends it (HTTP backend, 4 streams, wired)."""
    payload: dict[str, Any] = {
        "backend": "http",
        "server": server,
        "streams": 4,
        "download_bytes_per_second": None if down_mbit is None else down_mbit * MBIT,
        "upload_bytes_per_second": None if up_mbit is None else up_mbit * MBIT,
        "download_bytes": 60_000_000,
        "upload_bytes": 55_000_000,
        "download_seconds": 10.0,
        "upload_seconds": 10.0,
        "idle_latency_seconds": 0.0042,
        "interface": "eth0",
        "interface_wireless": wireless,
        "interface_speed_bytes_per_second": 125_000_000.0,
        "cpu_usage_ratio": 0.21,
        "download_cross_traffic_bytes": cross_down_bytes,
        "upload_cross_traffic_bytes": cross_up_bytes,
        "contract_download_bytes_per_second": 100 * MBIT,
        "contract_upload_bytes_per_second": 100 * MBIT,
        "invalid_reasons": list(invalid),
        "leased": True,
        "lease_wait_seconds": 0.4,
        "concurrent_devices": devices,
    }
    if down_mbit is None:
        payload["download_error"] = "timed out after 15 s"
    if retest_server is not None:
        payload["retest_server"] = retest_server
        payload["retest_download_bytes_per_second"] = (
            None if retest_down_mbit is None else retest_down_mbit * MBIT
        )
        payload["retest_upload_bytes_per_second"] = None if retest_up_mbit is None else retest_up_mbit * MBIT
    return payload


def echo(target: str, role: str, sent: int, received: int, p50: float | None) -> dict[str, Any]:
    loss = None if sent == 0 else round(1 - received / sent, 4)
    return {
        "target": target,
        "address": target,
        "role": role,
        "method": "icmp",
        "sent": sent,
        "received": received,
        "loss_ratio": loss,
        "latency_min_seconds": None if p50 is None else p50 * 0.8,
        "latency_mean_seconds": p50,
        "latency_p50_seconds": p50,
        "latency_p90_seconds": None if p50 is None else p50 * 1.3,
        "latency_p99_seconds": None if p50 is None else p50 * 1.6,
        "latency_max_seconds": None if p50 is None else p50 * 1.8,
        "jitter_seconds": None if p50 is None else p50 * 0.1,
        "error": None if received == sent else "no reply within 2 s",
    }


def window(
    *,
    gateway_received: int = 120,
    target_received: int = 120,
    target_p50: float | None = 0.011,
    outage_kind: str | None = None,
    outage_start: float | None = None,
    down_seconds: float = 0.0,
) -> dict[str, Any]:
    """A 60-second connectivity window: the gateway and two internet targets, 120 probes each."""
    gateway_p50 = 0.0006 if gateway_received else None
    up = outage_kind is None
    if not up:
        segment, reason = "access", "no reply from the provider's first hops or any target; gateway fine"
    elif target_received < 120:
        segment, reason = "beyond", "targets lose probes; gateway and the provider's first hop fine"
    else:
        segment, reason = "none", "every target answered"
    if gateway_received < 120:
        segment, reason = "lan", "the gateway loses probes"
    return {
        "window_seconds": 60.0,
        "method": "icmp",
        "up": up,
        "down_seconds": down_seconds,
        "outage_kind": outage_kind,
        "outage_start_seconds": outage_start,
        "gateway": echo(GATEWAY, "gateway", 120, gateway_received, gateway_p50),
        "targets": [
            echo("192.0.2.53", "internet", 120, target_received, target_p50),
            echo("203.0.113.9", "internet", 120, target_received, target_p50),
        ],
        "hops": [
            {
                "ttl": 1,
                "address": GATEWAY,
                "segment": "lan",
                "sent": 12,
                "received": 12,
                "loss_ratio": 0.0,
                "latency_p50_seconds": 0.0006,
                "latency_max_seconds": 0.001,
            },
            {
                "ttl": 2,
                "address": ACCESS_HOP if up else None,
                "segment": "access",
                "sent": 12,
                "received": 12 if up else 0,
                "loss_ratio": 0.0 if up else 1.0,
                "latency_p50_seconds": 0.003 if up else None,
                "latency_max_seconds": 0.005 if up else None,
            },
        ],
        "segment": segment,
        "segment_reason": reason,
    }


def users(devices: int) -> dict[str, Any]:
    return {
        "window_seconds": 300.0,
        "concurrent_devices": devices,
        "daily_devices": devices * 2,
        "hour_peak_devices": devices,
        "sources": [
            {
                "source": "neighbours",
                "devices": devices,
                "daily_devices": devices * 2,
                "duration_seconds": 0.004,
                "rounds": None,
                "requests": None,
                "error": None,
            }
        ],
    }


# --- the two school days the tests tell about ----------------------------------------------------

# The slow line: four valid tests in school hours at 41 % of 100 Mbit/s download, two
# servers, each retested on the other; one invalid test (the agent's CPU) in between.
SLOW_TESTS = (
    (9, 12, 41.0, 93.0, SERVER_A, SERVER_B, 40.0),
    (10, 40, 42.5, 94.0, SERVER_B, SERVER_A, 41.5),
    (12, 5, 39.5, 92.0, SERVER_A, SERVER_B, 40.5),
    (13, 30, 41.0, 95.0, SERVER_B, SERVER_A, 42.0),
)


def slow_line_day(site: Any) -> Agent:
    """3 March 2026: connectivity windows every minute 07:00-15:00 (gateway fine, targets
    fine), a census every 5 minutes, the four slow tests above and an invalid one."""
    agent = Agent(site)
    records = []
    t = local(7, 0)
    while t < local(15, 0):
        records.append(agent.make("connectivity", t, window()))
        t += 60
    t = local(7, 0)
    while t < local(15, 0):
        records.append(agent.make("users", t, users(170 + int((t - local(7)) // 1800))))
        t += 300
    for hour, minute, down, up, server, retest, retest_down in SLOW_TESTS:
        records.append(
            agent.make(
                "bandwidth",
                local(hour, minute, 30),
                bandwidth(down, up, server, retest_server=retest, retest_down_mbit=retest_down, devices=182),
            )
        )
    records.append(
        agent.make(
            "bandwidth",
            local(11, 20, 30),
            bandwidth(
                22.0,
                30.0,
                SERVER_A,
                invalid=["the agent's CPU was 97 % busy: the agent was the limit"],
                devices=190,
            ),
        )
    )
    records.sort(key=lambda r: r["clock"]["wall_time_seconds"])
    agent.deliver(records)
    return agent


OUTAGE_START = (10, 2, 15)
OUTAGE_END = (10, 49, 45)


def outage_day(site: Any) -> Agent:
    """3 March 2026: the provider's side down 10:02:15-10:49:45 (47 min 30 s; the gateway
    answered throughout), windows every minute 08:00-12:00 and the outage record at its end."""
    agent = Agent(site)
    start, end = local(*OUTAGE_START), local(*OUTAGE_END)
    records = []
    t = local(8, 0)
    while t < local(12, 0):
        w_end = t + 60
        down = max(0.0, min(w_end, end) - max(t, start))
        if start <= w_end and end > w_end:
            payload = window(
                target_received=0, target_p50=None, outage_kind="isp", outage_start=start, down_seconds=down
            )
        else:
            payload = window(down_seconds=down)
        records.append(agent.make("connectivity", t, payload))
        t += 60
    records.append(
        agent.make(
            "outage",
            end,
            {
                "outage_kind": "isp",
                "start_seconds": start,
                "end_seconds": end,
                "duration_seconds": end - start,
                "interrupted": False,
                "detail": f"no reply from 192.0.2.53, 203.0.113.9; gateway {GATEWAY} answered",
            },
        )
    )
    records.sort(key=lambda r: r["clock"]["wall_time_seconds"])
    agent.deliver(records)
    return agent


# --- incident rows ---------------------------------------------------------------------------


def insert_incident(
    engine: Engine,
    *,
    kind: str,
    key: str,
    started_at: float,
    figures: dict[str, Any],
    school: str | None = "test-board/test-school",
    corroboration: Sequence[str] = (),
    assessment: dict[str, Any] | None = None,
    state: str = "open",
    events: Sequence[tuple[float, str, str, str | None, str | None, str | None]] = (),
    **columns: Any,
) -> int:
    """An incident row as the detector opens one (findings = {"figures", "corroboration"},
    the assessment document of collector/incidents/impact.py) and its events
    (at, actor, action, from_state, to_state, note). Returns its id."""
    from sqlalchemy import select

    from collector.db.schema import connections

    now = time.time()
    with engine.begin() as conn:
        school_pk = board_pk = connection_pk = None
        provider = provider_id = None
        if school is not None:
            school_pk, _, _ = resolve_school(conn, school)
            from collector.db.schema import schools

            board_pk = conn.execute(select(schools.c.board_id).where(schools.c.id == school_pk)).scalar()
            line = conn.execute(select(connections).where(connections.c.school_id == school_pk)).first()
            if line is not None:
                connection_pk, provider, provider_id = line.id, line.provider, line.provider_id
        values: dict[str, Any] = dict(
            key=key,
            kind=kind,
            board_id=board_pk,
            school_id=school_pk,
            connection_id=connection_pk,
            provider=provider,
            provider_id=provider_id,
            responsible="provider",
            state=state,
            started_at=started_at,
            detected_at=started_at + 1800,
            last_evidence_at=started_at + 3600,
            impact="teaching",
            urgency="normal",
            assessment=assessment if assessment is not None else default_assessment(),
            sla_restore_seconds=8 * 3600.0,
            sla_clock="24x7",
            sla_deadline_at=started_at + 8 * 3600,
            findings={"figures": figures, "corroboration": list(corroboration)},
            updated_at=now,
        )
        values.update(columns)
        pk = int(conn.execute(insert(incidents).values(**values)).inserted_primary_key[0])
        for at, actor, action, from_state, to_state, note in events:
            conn.execute(
                insert(incident_events).values(
                    incident_id=pk,
                    at=at,
                    actor=actor,
                    action=action,
                    from_state=from_state,
                    to_state=to_state,
                    note=note,
                    data=None,
                )
            )
    return pk


def default_assessment() -> dict[str, Any]:
    return {
        "impact": "teaching",
        "urgency": "normal",
        "reasons": [{"code": "in_session", "params": {}, "text": "the problem overlaps school hours"}],
        "sla_restore_seconds": 8 * 3600.0,
        "sla_clock": "24x7",
        "supplier": {"name": "Example Fibre", "support_contact": "helpdesk@example-fibre.test"},
        "contact": {
            "name": "Anna de Vries",
            "email": "ict@regenboog.test",
            "phone": "030 123 4567",
            "role": "school",
        },
    }


def slow_line_incident(site: Any, result_ids: Sequence[int], **columns: Any) -> int:
    """The bandwidth incident the slow line day would open: download, 4 tests, median 41 %."""
    figures = {
        "direction": "download",
        "threshold_ratio": 0.8,
        "advertised_bytes_per_second": 100 * MBIT,
        "normal_bytes_per_second": 80 * MBIT,
        "minimum_bytes_per_second": 50 * MBIT,
        "median_ratio": 0.41,
        "tests": [{"result_id": r} for r in result_ids],
    }
    return insert_incident(
        site.engine,
        kind="bandwidth",
        key="bandwidth:1:main:download",
        started_at=local(9, 12, 30),
        figures=figures,
        corroboration=[
            "each test was retested on a second server, also below",
            "the gateway answered without loss around every test",
        ],
        events=[(local(9, 45), "detector", "opened", None, "open", "4 valid tests below 80 %")],
        **columns,
    )


def outage_incident(site: Any, **columns: Any) -> int:
    start, end = local(*OUTAGE_START), local(*OUTAGE_END)
    figures = {
        "kind": "isp",
        "start": start,
        "end": end,
        "ongoing": False,
        "duration_seconds": end - start,
        "agents": ["pi"],
        "detail": f"no reply from 192.0.2.53, 203.0.113.9; gateway {GATEWAY} answered",
    }
    return insert_incident(
        site.engine,
        kind="outage",
        key="outage:1",
        started_at=start,
        figures=figures,
        corroboration=["the gateway answered throughout: the school network was up"],
        restored_at=end,
        state="resolved",
        closed_at=end + 60,
        resolution="recovered",
        resolution_note="resolved itself: the outage ended at 10:49",
        events=[
            (start + 300, "detector", "opened", None, "open", None),
            (
                start + 900,
                "Anna de Vries (admin token 1)",
                "escalated",
                "open",
                "escalated",
                "called the helpdesk",
            ),
            (
                end + 60,
                "detector",
                "resolved",
                "escalated",
                "resolved",
                "resolved itself: the outage ended at 10:49",
            ),
        ],
        ticket="EF-2026-0412",
        **columns,
    )


def result_ids(site: Any, valid_only: bool = True) -> list[int]:
    rows = site.sql("SELECT id, valid FROM bandwidth_results ORDER BY measured_at")
    return [int(r[0]) for r in rows if r[1] or not valid_only]


def dumps(document: Any) -> str:
    return json.dumps(document, sort_keys=True)

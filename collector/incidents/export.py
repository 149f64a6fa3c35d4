"""The evidence pack's raw data: the whole document as JSON, or one table as CSV.

One CSV per table (``?table=`` / ``--table``), each with a header row; column names carry
their base unit (``_bytes_per_second``, ``_seconds``, ``_ratio`` where 1 = 100 %, ``_bytes``)
and every time is two columns, Unix seconds and the school's local ISO time. Empty cells
are values the store does not have. The tables:

- ``measurements``: every bandwidth test in the period (the pack's measurement rows);
- ``windows``: every connectivity window of every agent in the period (not the page's
  five-minute buckets): gateway and internet targets side by side;
- ``outages``: each outage (kind, start, end, duration, agent, detail);
- ``devices``: each concurrent-device count;
- ``readings``: each Wi-Fi reading of the incident's room (every room's for other kinds);
- ``events``: the incident's timeline.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from collector.calendar import SchoolCalendar, load_calendar
from collector.db.schema import agents
from collector.incidents.evidence import EvidenceDocument, stamp
from collector.incidents.history import Window, load_windows
from collector.registry import resolve_school

TABLES = ("measurements", "windows", "outages", "devices", "readings", "events")


class UnknownTable(ValueError):
    def __init__(self, table: str) -> None:
        super().__init__(f"table must be one of {', '.join(TABLES)}, not {table!r}")


def evidence_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _time(prefix: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        f"{prefix}_unix_seconds": value["seconds"] if value else None,
        f"{prefix}_local": value["local"] if value else None,
    }


_MEASUREMENT_COLUMNS = (
    "result_id",
    "measured_at_unix_seconds",
    "measured_at_local",
    "in_session",
    "counted",
    "agent",
    "source",
    "line",
    "attribution",
    "backend",
    "server",
    "streams",
    "valid",
    "invalid_reasons",
    "download_bytes_per_second",
    "upload_bytes_per_second",
    "download_ratio",
    "upload_ratio",
    "advertised_download_bytes_per_second",
    "advertised_upload_bytes_per_second",
    "retest_server",
    "retest_download_bytes_per_second",
    "retest_upload_bytes_per_second",
    "retest_download_ratio",
    "retest_upload_ratio",
    "retest_error",
    "idle_latency_seconds",
    "concurrent_devices",
    "interface_wireless",
    "download_cross_traffic_bytes",
    "upload_cross_traffic_bytes",
    "leased",
    "gateway_loss_ratio",
    "gateway_latency_p50_seconds",
)
_WINDOW_COLUMNS = (
    "agent",
    "start_unix_seconds",
    "start_local",
    "window_seconds",
    "up",
    "down_seconds",
    "outage_kind",
    "segment",
    "segment_reason",
    "gateway_address",
    "gateway_loss_ratio",
    "gateway_latency_p50_seconds",
    "targets_sent",
    "targets_received",
    "targets_loss_ratio",
    "targets_latency_p50_seconds",
    "access_hop_address",
)
_OUTAGE_COLUMNS = (
    "agent",
    "kind",
    "start_unix_seconds",
    "start_local",
    "end_unix_seconds",
    "end_local",
    "duration_seconds",
    "ongoing",
    "detail",
)
_DEVICE_COLUMNS = ("agent", "measured_at_unix_seconds", "measured_at_local", "concurrent_devices")
_READING_COLUMNS = (
    "room",
    "room_name",
    "agent",
    "measured_at_unix_seconds",
    "measured_at_local",
    "in_session",
    "source",
    "signal_dbm",
)
_EVENT_COLUMNS = ("at_unix_seconds", "at_local", "actor", "action", "from_state", "to_state", "note")


def _measurement_rows(
    document: Mapping[str, Any], conn: Connection | None, tz: str
) -> Iterable[dict[str, Any]]:
    for m in document["measurements"]:
        row = {k: v for k, v in m.items() if k != "measured_at"}
        row.update(_time("measured_at", m["measured_at"]))
        row["invalid_reasons"] = "; ".join(m["invalid_reasons"])
        yield row


def _window_rows(document: Mapping[str, Any], conn: Connection | None, tz: str) -> Iterable[dict[str, Any]]:
    """Every window of the document's school and period (the document itself keeps only
    the buckets): the ones its build read, or, for a document without them (one read back
    from its JSON), those windows alone read again from the store."""
    school = document.get("school") or {}
    if conn is None or not school.get("id"):
        return
    windows, calendar = _windows_and_calendar(document, school, conn, tz)
    for w in windows:
        yield {
            "agent": w.agent_slug,
            **_time("start", stamp(w.start, calendar)),
            "window_seconds": w.seconds,
            "up": w.up,
            "down_seconds": w.down_seconds,
            "outage_kind": w.outage_kind,
            "segment": w.segment,
            "segment_reason": w.segment_reason,
            "gateway_address": w.gateway_address,
            "gateway_loss_ratio": w.gateway_loss_ratio,
            "gateway_latency_p50_seconds": w.gateway_latency_p50_seconds,
            "targets_sent": w.targets_sent,
            "targets_received": w.targets_received,
            "targets_loss_ratio": w.targets_loss_ratio,
            "targets_latency_p50_seconds": w.targets_latency_p50_seconds,
            "access_hop_address": w.access_hop_address,
        }


def _windows_and_calendar(
    document: Mapping[str, Any], school: Mapping[str, Any], conn: Connection, tz: str
) -> tuple[Sequence[Window], SchoolCalendar]:
    """The period's windows, and the calendar whose local times the table shows."""
    start, end = document["period"]["start"]["seconds"], document["period"]["end"]["seconds"]
    if isinstance(document, EvidenceDocument) and document.history is not None:
        history = document.history
        if (history.board, history.school, history.start, history.end) == (
            school["board"],
            school["id"],
            start,
            end,
        ):
            # The zone given matters only to a school without its own, as in load_history.
            calendar = (
                history.calendar
                if tz == document.default_timezone
                else load_calendar(conn, history.school_pk, tz)
            )
            return history.windows, calendar
    school_pk, _, _ = resolve_school(conn, f"{school['board']}/{school['id']}")
    of_school = select(agents.c.id, agents.c.slug).where(agents.c.school_id == school_pk)
    slugs: dict[int, str] = {row.id: row.slug for row in conn.execute(of_school)}
    return load_windows(conn, sorted(slugs), start, end, slugs), load_calendar(conn, school_pk, tz)


def _outage_rows(document: Mapping[str, Any], conn: Connection | None, tz: str) -> Iterable[dict[str, Any]]:
    for o in document["outages"]:
        yield {
            "agent": o["agent"],
            "kind": o["kind"],
            **_time("start", o["start"]),
            **_time("end", o["end"]),
            "duration_seconds": o["duration_seconds"],
            "ongoing": o["ongoing"],
            "detail": o["detail"],
        }


def _device_rows(document: Mapping[str, Any], conn: Connection | None, tz: str) -> Iterable[dict[str, Any]]:
    for d in document["devices"]["counts"]:
        yield {
            "agent": d["agent"],
            **_time("measured_at", d["measured_at"]),
            "concurrent_devices": d["concurrent_devices"],
        }


def _reading_rows(
    document: Mapping[str, Any], conn: Connection | None, tz: str
) -> Iterable[dict[str, Any]]:
    for r in document.get("readings") or ():
        row = {k: v for k, v in r.items() if k != "measured_at"}
        row.update(_time("measured_at", r["measured_at"]))
        yield row


def _event_rows(document: Mapping[str, Any], conn: Connection | None, tz: str) -> Iterable[dict[str, Any]]:
    for e in document["events"]:
        yield {
            **_time("at", e["at"]),
            **{k: e[k] for k in ("actor", "action", "from_state", "to_state", "note")},
        }


_TABLES: dict[
    str, tuple[Sequence[str], Callable[[Mapping[str, Any], Connection | None, str], Iterable[dict[str, Any]]]]
] = {
    "measurements": (_MEASUREMENT_COLUMNS, _measurement_rows),
    "windows": (_WINDOW_COLUMNS, _window_rows),
    "outages": (_OUTAGE_COLUMNS, _outage_rows),
    "devices": (_DEVICE_COLUMNS, _device_rows),
    "readings": (_READING_COLUMNS, _reading_rows),
    "events": (_EVENT_COLUMNS, _event_rows),
}


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def evidence_csv(
    document: Mapping[str, Any], table: str, conn: Connection | None = None, default_timezone: str = "UTC"
) -> str:
    """One table of the pack as CSV (``windows`` needs ``conn``: it reads the store)."""
    if table not in _TABLES:
        raise UnknownTable(table)
    columns, rows = _TABLES[table]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows(document, conn, default_timezone):
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return out.getvalue()

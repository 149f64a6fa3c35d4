"""Scenario histories for the incident tests: a school in Amsterdam on a 12.5/2.5 Mbit/s line,
its agents' records built in the real wire format (agent/wire.py's models) and delivered
through the collector's real ingest route.

The school day is the Tuesday of last week (in the past, so no record is "from the future"
and a room reading keeps its own clock), 08:30-15:30 local (the calendar's defaults).
Helpers take local times as (hour, minute) on that day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from support.records import deliver, new_stream, record
from test_collector.conftest import Site

from agent.wire import ConnectivityPayload, EchoStats, HopStats, OutagePayload
from collector.cli import main
from collector.incidents.history import SchoolHistory, load_history

ZONE = ZoneInfo("Europe/Amsterdam")
MBIT = 125_000.0  # bytes per second in a Mbit/s
ADVERTISED_DOWN_MBIT = 12.5
ADVERTISED_UP_MBIT = 2.5
HEADER = ("board,school,connection,provider,technology,role,contract_start,"
          "download_advertised_mbps,upload_advertised_mbps,download_minimum_mbps,upload_minimum_mbps,"
          "download_normal_mbps,upload_normal_mbps,download_maximum_mbps,upload_maximum_mbps")
# A VDSL line: 12.5/2.5 advertised, 10/2 normally available, 6/1 minimum.
CONTRACT = (f"{HEADER}\n"
            "test-board,test-school,vdsl,Telcom Zakelijk,vdsl,main,2020-01-01,12.5,2.5,6,1,10,2,12.5,2.5\n")
# Two of the self-hosted test servers (loopback, as every test's traffic).
SERVER = "http://127.0.0.1:8080"
SECOND_SERVER = "http://127.0.0.2:8080"
GATEWAY = "10.203.0.1"
ACCESS_HOP = "195.190.228.1"  # the provider's first router past the gateway


def school_day() -> dt.date:
    """The Tuesday of last week, in the school's zone."""
    today = dt.datetime.now(ZONE).date()
    return today - dt.timedelta(days=today.weekday() + 7) + dt.timedelta(days=1)


def local(hour: int, minute: int = 0, second: int = 0, day: dt.date | None = None) -> float:
    """Unix seconds of a local time on the school day (or on ``day``)."""
    return dt.datetime.combine(day or school_day(), dt.time(hour, minute, second), ZONE).timestamp()


def import_contract(site: Site, tmp_path: Path, text: str = CONTRACT) -> None:
    path = tmp_path / "contracts.csv"
    path.write_text(text)
    assert main(["import", "contracts", str(path), "--db", site.db_url]) == 0


@dataclass
class Agent:
    """One enrolled agent of the school with its own outbox stream."""

    site: Site
    credential: str
    stream: str = field(default_factory=new_stream)
    seq: int = 0

    def send(self, records: Iterable[dict[str, Any]]) -> None:
        """Deliver the records in batches of at most 1000 (the wire's limit), all accepted."""
        pending = list(records)
        for first in range(0, len(pending), 1000):
            statuses = deliver(self.site, *pending[first:first + 1000], credential=self.credential)
            assert set(statuses) == {"accepted"}, statuses

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def stamped(self, kind: str, when: float, payload: dict[str, Any]) -> dict[str, Any]:
        rec = record(self.next_seq(), self.stream, kind, payload=payload)
        rec["clock"]["wall_time_seconds"] = when
        return rec

    # --- the records ------------------------------------------------------------------------

    def bandwidth(self, when: float, down_mbit: float | None, up_mbit: float | None = 2.4, *,
                  server: str = SERVER, retest_server: str | None = None,
                  retest_down_mbit: float | None = None, retest_up_mbit: float | None = None,
                  wireless: bool = False, invalid_reasons: Iterable[str] = (),
                  devices: int | None = 212, cross_traffic_bytes: int | None = 180_000) -> dict[str, Any]:
        """A test as the http backend reports it (both directions, 4 streams)."""
        payload: dict[str, Any] = {
            "backend": "http", "server": server, "streams": 4,
            "download_bytes_per_second": None if down_mbit is None else down_mbit * MBIT,
            "upload_bytes_per_second": None if up_mbit is None else up_mbit * MBIT,
            "download_bytes": int((down_mbit or 0) * MBIT * 10), "download_seconds": 10.4,
            "upload_bytes": int((up_mbit or 0) * MBIT * 10), "upload_seconds": 10.3,
            "download_window_seconds": 8.0, "upload_window_seconds": 8.0,
            "idle_latency_seconds": 0.014,
            "interface": "wlan0" if wireless else "eth0", "interface_wireless": wireless,
            "interface_speed_bytes_per_second": 12_500_000 if wireless else 125_000_000,
            "cpu_usage_ratio": 0.22, "agent_cpu_seconds": 1.9,
            "download_cross_traffic_bytes": cross_traffic_bytes,
            "upload_cross_traffic_bytes": cross_traffic_bytes,
            "contract_download_bytes_per_second": ADVERTISED_DOWN_MBIT * MBIT,
            "contract_upload_bytes_per_second": ADVERTISED_UP_MBIT * MBIT,
            "invalid_reasons": list(invalid_reasons), "leased": True, "lease_wait_seconds": 0.0,
            "concurrent_devices": devices,
        }
        if down_mbit is None:
            payload["download_error"] = "the server closed the connection"
        if retest_server is not None:
            payload.update(retest_server=retest_server,
                           retest_download_bytes_per_second=(
                               None if retest_down_mbit is None else retest_down_mbit * MBIT),
                           retest_upload_bytes_per_second=(
                               None if retest_up_mbit is None else retest_up_mbit * MBIT))
        return self.stamped("bandwidth", when, payload)

    def window(self, start: float, *, gateway_loss: float = 0.0, gateway_p50: float = 0.0006,
               targets_loss: float = 0.0, targets_p50: float = 0.011, up: bool = True,
               down_seconds: float = 0.0, outage_kind: str | None = None,
               outage_start: float | None = None, gateway: bool = True) -> dict[str, Any]:
        """One 60 s connectivity window: the gateway, two internet targets, two hops."""
        sent = 120

        def echo(target: str, role: str, loss: float, p50: float) -> EchoStats:
            received = round(sent * (1 - loss))
            answered = received > 0
            return EchoStats(
                target=target, address=target, role=role, method="icmp",  # type: ignore[arg-type]
                sent=sent, received=received, loss_ratio=(sent - received) / sent,
                latency_min_seconds=p50 * 0.7 if answered else None,
                latency_mean_seconds=p50 * 1.1 if answered else None,
                latency_p50_seconds=p50 if answered else None,
                latency_p90_seconds=p50 * 1.5 if answered else None,
                latency_p99_seconds=p50 * 2.5 if answered else None,
                latency_max_seconds=p50 * 3 if answered else None,
                jitter_seconds=p50 * 0.1 if received > 1 else None,
                error=None if received == sent else "no reply within 2 s")

        payload = ConnectivityPayload(
            window_seconds=60.0, method="icmp", up=up, down_seconds=down_seconds,
            outage_kind=outage_kind, outage_start_seconds=outage_start,  # type: ignore[arg-type]
            gateway=echo(GATEWAY, "gateway", gateway_loss, gateway_p50) if gateway else None,
            targets=[echo("127.0.0.1", "internet", targets_loss, targets_p50),
                     echo("127.0.0.2", "internet", targets_loss, targets_p50 * 1.2)],
            hops=[HopStats(ttl=1, address=GATEWAY, segment="lan", sent=12, received=12, loss_ratio=0.0,
                           latency_p50_seconds=gateway_p50, latency_max_seconds=gateway_p50 * 3),
                  HopStats(ttl=2, address=ACCESS_HOP if up else None, segment="access", sent=12,
                           received=12 if up else 0, loss_ratio=0.0 if up else 1.0,
                           latency_p50_seconds=0.006 if up else None,
                           latency_max_seconds=0.012 if up else None)],
            segment="none" if up and targets_loss < 0.05 else "access",
            segment_reason="" if up else "no reply from the provider's first hops or any target; "
            "gateway fine")
        return self.stamped("connectivity", start, payload.model_dump(mode="json"))

    def windows(self, first: float, last: float, **changes: Any) -> list[dict[str, Any]]:
        """A window a minute from ``first`` up to (not including) ``last``."""
        return [self.window(first + 60 * i, **changes) for i in range(int((last - first) // 60))]

    def outage(self, kind: str, start: float, end: float,
               detail: str = "no reply from 127.0.0.1, 127.0.0.2; gateway 10.203.0.1 answered",
               ) -> dict[str, Any]:
        payload = OutagePayload(outage_kind=kind, start_seconds=start, end_seconds=end,  # type: ignore[arg-type]
                                duration_seconds=end - start, detail=detail)
        return self.stamped("outage", end, payload.model_dump(mode="json"))  # sent when it ended

    def users(self, when: float, devices: int) -> dict[str, Any]:
        return self.stamped("users", when, {
            "window_seconds": 300.0, "concurrent_devices": devices, "daily_devices": devices + 40,
            "hour_peak_devices": devices,
            "sources": [{"source": "arp", "devices": devices, "daily_devices": devices + 40,
                         "duration_seconds": 2.5, "rounds": 3, "requests": 762, "error": None}]})

    def wifi(self, when: float, signal_dbm: float, room: str = "lokaal-2-11",
             room_name: str = "Lokaal 2.11") -> dict[str, Any]:
        return self.stamped("wifi", when, {
            "source": "iw", "connected": True, "interface": "wlan0", "ssid": "SchoolNet",
            "signal_dbm": signal_dbm, "frequency_hertz": 5180000000, "channel": 36, "band": "5GHz",
            "room": room, "room_name": room_name, "own_network": True})


def first_agent(site: Site) -> Agent:
    """The agent make_site enrolled ("pi")."""
    return Agent(site, site.credential)


def second_agent(site: Site, name: str) -> Agent:
    return Agent(site, site.enroll(name))


def history_of(site: Site, start: float, end: float) -> SchoolHistory:
    """The school's history as detection reads it."""
    with site.engine.connect() as conn:
        return load_history(conn, school_pk(site), start, end, "Europe/Amsterdam")


def school_pk(site: Site) -> int:
    [(pk,)] = site.sql("SELECT id FROM schools WHERE slug = 'test-school'")
    return int(pk)


# --- scenarios (each returns the time to detect at) ------------------------------------------------


def around(agent: Agent, t: float, **changes: Any) -> list[dict[str, Any]]:
    """The agent's windows from 5 minutes before ``t`` to 5 minutes after (the LAN evidence)."""
    first = t - 300 - (t % 60)
    return agent.windows(first, first + 660, **changes)


def slow_line(site: Site, tmp_path: Path, down_mbit: float = 5.1) -> float:
    """The line delivers 5.1 of its 12.5 Mbit/s in school hours: two valid tests by the wired
    Pi (10:00 and 13:00), each retested on a second server (5.0 and 5.3 Mbit/s), the
    gateway fine around both; upload as contracted. Detect at 14:00."""
    import_contract(site, tmp_path)
    pi = first_agent(site)
    pi.send([*around(pi, local(10, 0)), *around(pi, local(13, 0)),
             pi.bandwidth(local(10, 0), down_mbit, retest_server=SECOND_SERVER, retest_down_mbit=5.0),
             pi.bandwidth(local(13, 0), down_mbit, retest_server=SECOND_SERVER, retest_down_mbit=5.3)])
    return local(14, 0)


def provider_outage(site: Site, minutes: float = 25) -> float:
    """The line is gone from 10:00 for ``minutes`` (the gateway answering all along), the
    wired Pi's windows up again after it. Detect at 11:00."""
    pi = first_agent(site)
    end = local(10, 0) + minutes * 60
    pi.send([*pi.windows(local(9, 50), local(10, 0)), pi.outage("isp", local(10, 0), end),
             *pi.windows(end - end % 60 + 60, local(11, 0))])
    return local(11, 0)


def lossy_line(site: Site, loss: float = 0.3, gateway_loss: float = 0.0) -> float:
    """The wired Pi's last 15 windows (10:45-11:00) lose ``loss`` of their echoes to the
    internet, the gateway losing ``gateway_loss``; fine before. Detect at 11:00."""
    pi = first_agent(site)
    pi.send([pi.bandwidth(local(9, 0), 12.0),  # says the Pi is wired
             *pi.windows(local(10, 0), local(10, 45)),
             *pi.windows(local(10, 45), local(11, 0), targets_loss=loss, gateway_loss=gateway_loss)])
    return local(11, 0)


def poor_room(site: Site, signals: Iterable[float] = (-80, -79, -70, -77, -82, -81)) -> float:
    """An agent in Lokaal 2.11 reading these signals in school hours (from 09:00, one every
    10 minutes). Detect at 12:00."""
    laptop = second_agent(site, "laptop")
    laptop.send([laptop.wifi(local(9, 0) + 600 * i, s) for i, s in enumerate(signals)])
    return local(12, 0)

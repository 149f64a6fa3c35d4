"""Incidents for the lifecycle, provider-wide, notification, CLI and API tests: real schools
and lines in a real store (through the contracts import), findings handed to the store as
the detectors would hand them, and the store's own functions to move them on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_collector.conftest import Site, run_sql_named
from test_collector.incident_histories import HEADER, local

from collector.cli import main
from collector.db.engine import writer
from collector.incidents.changes import Change
from collector.incidents.history import SchoolHistory, load_history
from collector.incidents.model import Detection, DetectionPolicy, Finding, Recovery, school_key
from collector.incidents.notify import Channels
from collector.incidents.provider_wide import merge_provider_wide
from collector.incidents.store import apply_detection

ZONE = "Europe/Amsterdam"
# Four schools of one board on the same provider (Telcom Zakelijk), one on another; an 8 h
# restore time on a 24x7 clock.
SCHOOLS = ("test-school", "de-regenboog", "het-kompas", "de-linde")
ROWS = "".join(
    f"test-board,{school},vdsl,Telcom Zakelijk,vdsl,main,2020-01-01,12.5,2.5,6,1,10,2,12.5,2.5,8h\n"
    for school in SCHOOLS) + (
    "test-board,de-eik,glas,Other Fibre,fibre,main,2020-01-01,100,100,50,50,80,80,100,100,8h\n")
CONTRACTS = f"{HEADER},sla_restore\n{ROWS}"


def set_up_schools(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "contracts.csv"
    path.write_text(CONTRACTS)
    assert main(["import", "contracts", str(path), "--db", site.db_url]) == 0


def school_pk(site: Site, slug: str = "test-school") -> int:
    [(pk,)] = site.sql("SELECT id FROM schools WHERE slug = ?", slug)
    return int(pk)


def history(site: Site, slug: str = "test-school", now: float | None = None) -> SchoolHistory:
    now = now or local(11)
    with site.engine.connect() as conn:
        return load_history(conn, school_pk(site, slug), now - 3600, now, ZONE)


def bandwidth_finding(site: Site, slug: str = "test-school", started_at: float | None = None,
                      ratio: float = 0.41) -> Finding:
    pk = school_pk(site, slug)
    [(line,)] = site.sql("SELECT id FROM connections WHERE school_id = ?", pk)
    started = started_at or local(9, 12)
    return Finding(kind="bandwidth", key=school_key("bandwidth", pk, "vdsl", "download"), school_pk=pk,
                   responsible="provider", started_at=started, last_evidence_at=started + 3600,
                   figures={"direction": "download", "threshold_ratio": 0.8, "median_ratio": ratio,
                            "advertised_bytes_per_second": 12.5 * 125_000},
                   corroboration=("2 valid tests on 2 servers", "the gateway answered without loss"),
                   connection_pk=int(line))


def detect(site: Site, detection: Detection, now: float, slug: str = "test-school",
           channels: Channels | None = None) -> list[Change]:
    hist = history(site, slug, now)
    with writer(site.engine) as conn, conn.begin():
        return apply_detection(conn, detection, hist, None, now, channels=channels)


def found(site: Site, finding: Finding, now: float, channels: Channels | None = None) -> list[Change]:
    slug = site.sql("SELECT slug FROM schools WHERE id = ?", finding.school_pk)[0][0]
    return detect(site, Detection(finding.school_pk, findings=[finding]), now, slug, channels)


def recovered(site: Site, key: str, at: float, now: float, slug: str = "test-school",
              reason: str = "2 valid tests at 96 % and 101 % of the advertised speed") -> list[Change]:
    return detect(site, Detection(school_pk(site, slug), recoveries={key: Recovery(key, at, reason)}),
                  now, slug)


def merge(site: Site, now: float, policy: DetectionPolicy | None = None,
          channels: Channels | None = None) -> list[Change]:
    with writer(site.engine) as conn, conn.begin():
        return merge_provider_wide(conn, now, policy or DetectionPolicy(), channels=channels)


def row(site: Site, incident_id: int) -> dict[str, Any]:
    names, [values] = run_sql_named(site.engine, "SELECT * FROM incidents WHERE id = ?", incident_id)
    return dict(zip(names, values, strict=True))


def events(site: Site, incident_id: int) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in site.sql(
        "SELECT actor, action, from_state, to_state, note FROM incident_events WHERE incident_id = ? "
        "ORDER BY id", incident_id)]

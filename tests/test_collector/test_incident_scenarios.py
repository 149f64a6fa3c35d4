"""End to end: realistic records through the real ingest API, then run_detection over the
store: incidents open, refresh, and resolve; the metric shows them."""

from __future__ import annotations

from pathlib import Path

from test_collector.conftest import make_site
from test_collector.incident_histories import first_agent, local, provider_outage, slow_line

from collector.incident_metrics import incident_families
from collector.incidents.run import run_detection
from collector.settings import CollectorSettings


def test_a_slow_line_opens_a_bandwidth_incident_and_recovers(tmp_path: Path) -> None:
    with make_site(tmp_path) as site:
        now = slow_line(site, tmp_path)
        settings = CollectorSettings(db=site.db_url)
        report = run_detection(site.engine, settings, now)
        assert report.errors == []
        [opened] = [c for c in report.changes if c.action == "opened"]
        assert opened.kind == "bandwidth" and opened.key.endswith(":vdsl:download")
        [(state, provider, started, findings)] = site.sql(
            "SELECT state, provider, started_at, findings FROM incidents")
        assert (state, provider, started) == ("open", "Telcom Zakelijk", local(10, 0))
        assert '"corroboration"' in findings
        # Run again: the same incident, refreshed, not a second one.
        again = run_detection(site.engine, settings, now + 300)
        assert [(c.incident_id, c.action) for c in again.changes] == [(opened.incident_id, "refreshed")]
        with site.engine.connect() as conn:
            counts, oldest = incident_families(conn)
        assert counts.rows == [("", ("test-board", "test-school", "bandwidth", "open"), 1.0)]
        assert oldest.rows == [("", ("test-board", "test-school"), local(10, 0))]
        # Two good tests later: it resolves itself.
        pi = first_agent(site)
        pi.send([pi.bandwidth(local(14, 30), 12.4), pi.bandwidth(local(15, 0), 12.3)])
        done = run_detection(site.engine, settings, local(15, 10))
        [resolved] = [c for c in done.changes if c.action == "resolved"]
        assert resolved.incident_id == opened.incident_id and resolved.note.startswith("resolved itself: ")
        with site.engine.connect() as conn:
            assert incident_families(conn)[0].rows == []


def test_a_provider_outage_opens_an_outage_incident(tmp_path: Path) -> None:
    from test_collector.incident_histories import import_contract

    with make_site(tmp_path) as site:
        import_contract(site, tmp_path)
        now = provider_outage(site)
        settings = CollectorSettings(db=site.db_url)
        report = run_detection(site.engine, settings, now)
        # Over before it could be reported: opened and resolved in one run, restored at its end.
        outage = [(c.action, c.state) for c in report.changes if c.kind == "outage"]
        assert outage == [("opened", "open"), ("resolved", "resolved")]
        [(state, started, restored, note)] = site.sql(
            "SELECT state, started_at, restored_at, resolution_note FROM incidents WHERE kind = 'outage'")
        assert (state, started, restored) == ("resolved", local(10, 0), local(10, 25))
        assert note.startswith("resolved itself: the outage ended")
        # The next runs (the outage still in the period read) do not open it again.
        again = run_detection(site.engine, settings, now + 300)
        assert [c for c in again.changes if c.kind == "outage"] == []
        assert site.sql("SELECT count(*) FROM incidents WHERE kind = 'outage'")[0][0] == 1

"""End to end: realistic records through the real ingest API, then run_detection over the
store: incidents open, refresh, and resolve; the metric shows them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from test_collector.conftest import Site, make_site
from test_collector.incident_fixtures import set_up_schools
from test_collector.incident_histories import (
    HEADER,
    SECOND_SERVER,
    Agent,
    around,
    first_agent,
    import_contract,
    local,
    lossy_line,
    poor_room,
    provider_outage,
    school_day,
    slow_line,
)

from collector.cli import main
from collector.incident_metrics import incident_families
from collector.incidents.run import run_detection
from collector.incidents.views import get_incident
from collector.settings import CollectorSettings

pytestmark = pytest.mark.both_stores


def test_a_slow_line_opens_a_bandwidth_incident_and_recovers(tmp_path: Path, db_url: str) -> None:
    with make_site(tmp_path, db_url) as site:
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


def test_a_provider_outage_opens_an_outage_incident(tmp_path: Path, db_url: str) -> None:
    from test_collector.incident_histories import import_contract

    with make_site(tmp_path, db_url) as site:
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


# --- review: end to end across schools, agents and the calendar --------------------------------


def _slow_school(agent: Agent, hours: Iterable[int] = (10, 13), day: dt.date | None = None,
                 down_mbit: float = 5.1) -> None:
    """The agent's wired tests at these local hours, each retested on a second server, with
    the gateway fine around them: the line gives ``down_mbit`` of its 12.5 Mbit/s."""
    records = []
    for hour in hours:
        t = local(hour, day=day)
        records += [*around(agent, t), agent.bandwidth(t, down_mbit, retest_server=SECOND_SERVER,
                                                       retest_down_mbit=down_mbit - 0.1)]
    agent.send(records)


def test_three_schools_slow_together_make_one_provider_wide_incident_through_run_detection(
        tmp_path: Path, db_url: str) -> None:
    with make_site(tmp_path, db_url) as site:
        set_up_schools(site, tmp_path)
        agents = {"test-school": first_agent(site)}
        for slug in ("de-regenboog", "het-kompas"):
            agents[slug] = Agent(site, site.enroll("pi", school=f"test-board/{slug}"))
        for agent in agents.values():
            _slow_school(agent)
        settings = CollectorSettings(db=site.db_url)
        report = run_detection(site.engine, settings, local(14))
        assert report.errors == []
        opened = [c for c in report.changes if c.action == "opened"]
        assert sorted(c.kind for c in opened) == ["bandwidth"] * 3 + ["provider"]
        [parent] = [c for c in opened if c.kind == "provider"]
        children = site.sql("SELECT parent_id, state FROM incidents WHERE kind = 'bandwidth'")
        assert children == [(parent.incident_id, "open")] * 3
        # A second run, and a second process (its own engine) do not double it.
        again = run_detection(site.engine, settings, local(14, 5))
        other = create_engine(site.db_url)
        try:
            third = run_detection(other, settings, local(14, 10))
        finally:
            other.dispose()
        for later in (again, third):
            assert {c.action for c in later.changes} == {"refreshed"}, later.changes
        assert site.sql("SELECT count(*) FROM incidents")[0][0] == 4
        # 16:30: of the 8 h restore time from 10:00, 1.5 h left (under a quarter): the
        # schools' incidents are urgent now, and so is the one escalation for all of them.
        late = run_detection(site.engine, settings, local(16, 30))
        assert site.sql("SELECT DISTINCT urgency FROM incidents WHERE kind = 'bandwidth'") == [("high",)]
        assert site.sql("SELECT urgency FROM incidents WHERE kind = 'provider'") == [("high",)]
        assert (parent.incident_id, "reassessed") in {(c.incident_id, c.action) for c in late.changes}
        # The lines were fine again from 15:00 (the tests arrive late): each school's incident,
        # then the provider-wide one, resolve, restored at 15:00.
        for agent in agents.values():
            agent.seq += 1000
            agent.send([agent.bandwidth(local(15), 12.4), agent.bandwidth(local(15, 20), 12.3)])
        done = run_detection(site.engine, settings, local(16, 45))
        resolved = sorted(c.kind for c in done.changes if c.action == "resolved")
        assert resolved == ["bandwidth"] * 3 + ["provider"]
        [(state, resolution, restored)] = site.sql(
            "SELECT state, resolution, restored_at FROM incidents WHERE kind = 'provider'")
        assert (state, resolution, restored) == ("resolved", "recovered", local(15))


def test_a_school_without_a_contract_opens_an_outage_without_a_provider(tmp_path: Path, db_url: str) -> None:
    with make_site(tmp_path, db_url) as site:
        now = provider_outage(site)
        report = run_detection(site.engine, CollectorSettings(db=site.db_url), now)
        assert report.errors == []
        [(state, provider, connection, started, restored, urgency, sla)] = site.sql(
            "SELECT state, provider, connection_id, started_at, restored_at, urgency, sla_restore_seconds "
            "FROM incidents WHERE kind = 'outage'")
        assert (state, provider, connection, started, restored) == (
            "resolved", None, None, local(10, 0), local(10, 25))
        assert sla is None and urgency in ("high", "normal", "low")


def test_a_revoked_agents_silence_and_loss_close_when_it_is_revoked(tmp_path: Path, db_url: str) -> None:
    with make_site(tmp_path, db_url) as site:
        import_contract(site, tmp_path)
        now = lossy_line(site)
        settings = CollectorSettings(db=site.db_url)
        # The Pi reported "now" (the collector's clock, last week's records): silent from an
        # hour later, in the lessons of the next school day.
        site.sql("UPDATE agents SET last_report_at = ? WHERE slug = 'pi'", now)
        report = run_detection(site.engine, settings, now)
        assert {c.kind for c in report.changes if c.action == "opened"} == {"loss"}
        silent_at = local(10, day=school_day() + dt.timedelta(days=1))
        report = run_detection(site.engine, settings, silent_at)
        assert {c.kind for c in report.changes if c.action == "opened"} == {"silent"}
        # The school replaces the broken Pi: it is revoked. Its incidents close, without a
        # restore time (nothing was measured to be restored).
        revoked = silent_at + 600
        site.sql("UPDATE agents SET revoked_at = ? WHERE slug = 'pi'", revoked)
        report = run_detection(site.engine, settings, revoked + 300)
        assert sorted(c.kind for c in report.changes if c.action == "resolved") == ["loss", "silent"]
        rows = site.sql("SELECT kind, state, restored_at, resolution_note FROM incidents ORDER BY kind")
        assert [(kind, state, restored) for kind, state, restored, _ in rows] == [
            ("loss", "resolved", None), ("silent", "resolved", None)]
        assert all("revoked" in note for *_, note in rows)
        # Later runs leave them closed.
        assert run_detection(site.engine, settings, revoked + 900).changes == []


BUSINESS_CONTRACT = (f"{HEADER},sla_restore,sla_clock\n"
                     "test-board,test-school,vdsl,Telcom Zakelijk,vdsl,main,2020-01-01,12.5,2.5,6,1,10,2,"
                     "12.5,2.5,8h,business\n")


def _friday() -> dt.date:
    return school_day() + dt.timedelta(days=3)


def test_a_business_hours_sla_across_a_weekend(tmp_path: Path, db_url: str) -> None:
    """Slow from Friday 13:00: 5 business hours on Friday, the other 3 on Monday morning."""
    with make_site(tmp_path, db_url) as site:
        import_contract(site, tmp_path, BUSINESS_CONTRACT)
        pi = first_agent(site)
        friday = _friday()
        monday = friday + dt.timedelta(days=3)
        _slow_school(pi, hours=(13, 15), day=friday)
        settings = CollectorSettings(db=site.db_url)
        run_detection(site.engine, settings, local(15, 10, day=friday))
        [(incident_id, started, deadline, clock)] = site.sql(
            "SELECT id, started_at, sla_deadline_at, sla_clock FROM incidents")
        assert (started, clock) == (local(13, day=friday), "business")
        assert deadline == local(11, day=monday)
        # Saturday: no lessons until Monday: low.
        run_detection(site.engine, settings, local(10, day=friday + dt.timedelta(days=1)))
        assert site.sql("SELECT urgency FROM incidents")[0][0] == "low"
        # Monday 10:30, in lessons, with half an hour of the SLA left and no new test yet
        # (the Friday tests are out of the detector's day): urgent now.
        run_detection(site.engine, settings, local(10, 30, day=monday))
        assert site.sql("SELECT urgency FROM incidents")[0][0] == "high"
        # Restored Monday at 10:00 (two good tests): 7 business hours of the 8: met.
        pi.seq += 1000
        pi.send([pi.bandwidth(local(10, day=monday), 12.4), pi.bandwidth(local(11, day=monday), 12.3)])
        run_detection(site.engine, settings, local(11, 10, day=monday))
        with site.engine.connect() as conn:
            view = get_incident(conn, incident_id, default_timezone="Europe/Amsterdam")
        assert view.state == "resolved" and view.restored_at == local(10, day=monday)
        assert view.restore["sla_seconds"] == 7 * 3600 and view.restore["met"] is True
        assert view.restore["wall_seconds"] == local(10, day=monday) - local(13, day=friday)


def test_a_public_holiday_stops_the_business_clock_and_exams_make_it_urgent(
        tmp_path: Path, db_url: str) -> None:
    with make_site(tmp_path, db_url) as site:
        import_contract(site, tmp_path, BUSINESS_CONTRACT)
        friday = _friday()
        monday = friday + dt.timedelta(days=3)
        assert main(["calendar", "add", "--calendar", "all", "--from", monday.isoformat(),
                     "--name", "Pinkstermaandag", "--kind", "public", "--db", site.db_url]) == 0
        tuesday = monday + dt.timedelta(days=1)
        assert main(["calendar", "add", "--calendar", "all", "--from", tuesday.isoformat(),
                     "--name", "Centraal examen", "--kind", "exams", "--db", site.db_url]) == 0
        pi = first_agent(site)
        _slow_school(pi, hours=(13, 15), day=friday)
        settings = CollectorSettings(db=site.db_url)
        run_detection(site.engine, settings, local(15, 10, day=friday))
        # Monday is a public holiday: the 3 remaining hours run on Tuesday morning.
        assert site.sql("SELECT sla_deadline_at FROM incidents")[0][0] == local(11, day=tuesday)
        run_detection(site.engine, settings, local(12, day=monday))
        assert site.sql("SELECT urgency FROM incidents")[0][0] == "normal"  # lessons tomorrow
        # Tuesday, an exam day, at 08:40 with more than a quarter of the SLA left: urgent.
        run_detection(site.engine, settings, local(8, 40, day=tuesday))
        [(urgency, assessment)] = site.sql("SELECT urgency, assessment FROM incidents")
        assert urgency == "high" and "exam_period" in assessment


def test_an_outage_reported_late_opens_and_resolves_with_its_own_times(tmp_path: Path, db_url: str) -> None:
    """The line is down 10:00-10:40: the Pi cannot send, so the collector hears nothing
    (silent from 10:30, the school's agent in lessons) until the line is back and the
    outbox arrives at 10:41."""
    with make_site(tmp_path, db_url) as site:
        import_contract(site, tmp_path)
        pi = first_agent(site)
        settings = CollectorSettings(db=site.db_url)
        pi.send(pi.windows(local(9, 30), local(10, 0)))
        site.sql("UPDATE agents SET last_report_at = ? WHERE slug = 'pi'", local(10, 0))
        during = run_detection(site.engine, settings, local(10, 35))
        assert [c.kind for c in during.changes if c.action == "opened"] == ["silent"]
        assert site.sql("SELECT count(*) FROM incidents WHERE kind = 'outage'")[0][0] == 0
        # Back at 10:40: the outage record and the windows after it, all at once.
        pi.send([pi.outage("isp", local(10, 0), local(10, 40)), *pi.windows(local(10, 40), local(10, 41))])
        site.sql("UPDATE agents SET last_report_at = ? WHERE slug = 'pi'", local(10, 41))
        after = run_detection(site.engine, settings, local(10, 45))
        assert sorted((c.kind, c.action) for c in after.changes) == [
            ("outage", "opened"), ("outage", "resolved"), ("silent", "resolved")]
        [(started, restored, detected)] = site.sql(
            "SELECT started_at, restored_at, detected_at FROM incidents WHERE kind = 'outage'")
        assert (started, restored, detected) == (local(10, 0), local(10, 40), local(10, 45))
        assert run_detection(site.engine, settings, local(10, 50)).changes == []


def test_loss_latency_and_a_poor_room_open_through_run_detection(tmp_path: Path, db_url: str) -> None:
    with make_site(tmp_path, db_url) as site:
        import_contract(site, tmp_path)
        pi = first_agent(site)
        pi.send([pi.bandwidth(local(9, 0), 12.0), *pi.windows(local(10, 0), local(10, 45)),
                 *pi.windows(local(10, 45), local(11, 0), targets_loss=0.3, targets_p50=0.180)])
        poor_room(site)
        report = run_detection(site.engine, CollectorSettings(db=site.db_url), local(12))
        assert report.errors == []
        rows = site.sql("SELECT kind, responsible, provider, started_at FROM incidents ORDER BY kind")
        assert rows == [("latency", "provider", "Telcom Zakelijk", local(10, 45)),
                        ("loss", "provider", "Telcom Zakelijk", local(10, 45)),
                        ("wifi", "school", None, local(9, 0))]


def test_agent_limited_and_single_server_results_open_nothing_through_run_detection(
        tmp_path: Path, db_url: str) -> None:
    with make_site(tmp_path, db_url) as site:
        import_contract(site, tmp_path)
        pi = first_agent(site)
        limited = ["the agent's CPU was the limit (94 % busy)"]
        pi.send([*around(pi, local(10)), *around(pi, local(11)),
                 pi.bandwidth(local(10), 5.1, retest_server=SECOND_SERVER, retest_down_mbit=5.0,
                              invalid_reasons=limited),
                 pi.bandwidth(local(11), 5.1, retest_server=SECOND_SERVER, retest_down_mbit=5.0,
                              invalid_reasons=limited)])
        settings = CollectorSettings(db=site.db_url)
        report = run_detection(site.engine, settings, local(11, 30))
        assert report.changes == [] and ["agent-limited" in h.reason for h in report.held] == [True]
        # Valid now, but against one server only and no retest.
        pi.send([*around(pi, local(12)), *around(pi, local(13)),
                 pi.bandwidth(local(12), 5.1), pi.bandwidth(local(13), 5.1)])
        report = run_detection(site.engine, settings, local(13, 30))
        assert report.changes == [] and [h.reason.split(":")[0] for h in report.held] == ["single server"]
        assert site.sql("SELECT count(*) FROM incidents")[0][0] == 0


# --- review: the line down at several schools at once -------------------------------------------

TELCOM_SCHOOLS = ("test-school", "de-regenboog", "het-kompas")
HOOK = "http://127.0.0.1:9/hook"  # nothing listens: the notifications stay in the outbox


def _telcom_agents(site: Site, tmp_path: Path, slugs: Iterable[str] = TELCOM_SCHOOLS) -> dict[str, Agent]:
    set_up_schools(site, tmp_path)
    agents = {}
    for slug in slugs:
        agents[slug] = first_agent(site) if slug == "test-school" else Agent(
            site, site.enroll("pi", school=f"test-board/{slug}"))
    return agents


def _reported(site: Site, slug: str, at: float) -> None:
    """The collector heard the school's agent last at ``at`` (ingest stamps the wall clock;
    the scenario's day is last week)."""
    site.sql("UPDATE agents SET last_report_at = ? WHERE school_id = "
             "(SELECT id FROM schools WHERE slug = ?)", at, slug)


def _back_after_outage(agent: Agent, start: float, end: float, sent: float) -> None:
    """The outage record and the windows after it, sent once the line is back."""
    agent.send([agent.outage("isp", start, end), *agent.windows(end - end % 60 + 60, sent)])


def _notified(site: Site, incident_id: int) -> list[str]:
    return [action for (action,) in site.sql(
        "SELECT e.action FROM incident_notifications n JOIN incident_events e ON e.id = n.event_id "
        "WHERE n.incident_id = ? ORDER BY n.id", incident_id)]


def test_three_schools_down_together_reported_after_it_ended_make_one_resolved_provider_wide_outage(
        tmp_path: Path, db_url: str) -> None:
    with make_site(tmp_path, db_url) as site:
        agents = _telcom_agents(site, tmp_path)
        # Telcom is down 10:00-10:40 (each school's line a minute apart); the agents' records
        # arrive at 10:45, when the line is back.
        spans = {"test-school": (local(10, 0), local(10, 40)), "de-regenboog": (local(10, 1), local(10, 39)),
                 "het-kompas": (local(10, 2), local(10, 41))}
        for slug, agent in agents.items():
            agent.send(agent.windows(local(9, 30), local(10, 0)))
            _back_after_outage(agent, *spans[slug], local(10, 45))
            _reported(site, slug, local(10, 45))
        settings = CollectorSettings(db=site.db_url, incident_webhook_url=HOOK)
        report = run_detection(site.engine, settings, local(10, 45))
        assert report.errors == []
        [parent] = [c for c in report.changes if c.kind == "provider" and c.action == "opened"]
        assert [(c.kind, c.action) for c in report.changes if c.incident_id == parent.incident_id] == [
            ("provider", "opened"), ("provider", "resolved")]
        [(key, state, resolution, started, restored, note)] = site.sql(
            "SELECT key, state, resolution, started_at, restored_at, resolution_note FROM incidents "
            "WHERE kind = 'provider'")
        assert key.startswith("provider:") and key.endswith(":outage")
        assert (state, resolution, started, restored) == (
            "resolved", "recovered", local(10, 0), local(10, 41))
        assert "over before it was detected" in note and "10:00 to 10:41" in note
        children = site.sql("SELECT parent_id, state, restored_at FROM incidents WHERE kind = 'outage' "
                            "ORDER BY started_at")
        assert children == [(parent.incident_id, "resolved", spans[slug][1]) for slug in TELCOM_SCHOOLS]
        # The events say it was detected after it ended; one notification, the "resolved" one.
        opened_note = site.sql("SELECT note FROM incident_events WHERE incident_id = ? AND action = 'opened'",
                               parent.incident_id)[0][0]
        assert "detected after it ended" in opened_note
        assert _notified(site, parent.incident_id) == ["resolved"]
        with site.engine.connect() as conn:
            view = get_incident(conn, parent.incident_id, default_timezone="Europe/Amsterdam")
        assert view.children == [c for (c,) in site.sql("SELECT id FROM incidents WHERE kind = 'outage' "
                                                         "ORDER BY id")]
        assert view.restore["wall_seconds"] == 41 * 60
        # Later runs (the outages still in the period read) create nothing new.
        for later in (local(10, 50), local(11, 10)):
            assert run_detection(site.engine, settings, later).changes == []
        assert site.sql("SELECT count(*) FROM incidents")[0][0] == 4
        # A fourth school's records arrive late: it joins the resolved incident, not a new one.
        linde = Agent(site, site.enroll("pi", school="test-board/de-linde"))
        linde.send(linde.windows(local(9, 30), local(10, 0)))
        _back_after_outage(linde, local(10, 0), local(10, 43), local(10, 55))
        _reported(site, "de-linde", local(10, 55))
        late = run_detection(site.engine, settings, local(11, 12))
        assert sorted((c.kind, c.action) for c in late.changes) == [
            ("outage", "merged"), ("outage", "opened"), ("outage", "resolved")]
        [(count, restored, findings)] = site.sql(
            "SELECT count(*), max(p.restored_at), p.findings FROM incidents p JOIN incidents c "
            "ON c.parent_id = p.id WHERE p.kind = 'provider' GROUP BY p.id")
        assert (count, restored) == (4, local(10, 43)) and '"school_count": 4' in findings
        assert site.sql("SELECT count(*) FROM incidents WHERE kind = 'provider'")[0][0] == 1


def test_two_schools_down_together_make_no_provider_wide_incident(tmp_path: Path, db_url: str) -> None:
    with make_site(tmp_path, db_url) as site:
        agents = _telcom_agents(site, tmp_path, TELCOM_SCHOOLS[:2])
        for slug, agent in agents.items():
            agent.send(agent.windows(local(9, 30), local(10, 0)))
            _back_after_outage(agent, local(10, 0), local(10, 40), local(10, 45))
            _reported(site, slug, local(10, 45))
        report = run_detection(site.engine, CollectorSettings(db=site.db_url), local(10, 45))
        assert sorted(c.kind for c in report.changes if c.action == "opened") == ["outage", "outage"]
        assert site.sql("SELECT count(*) FROM incidents WHERE kind = 'provider'")[0][0] == 0


def test_schools_silent_together_are_suspected_provider_wide_until_their_outage_records_prove_it(
        tmp_path: Path, db_url: str) -> None:
    with make_site(tmp_path, db_url) as site:
        agents = _telcom_agents(site, tmp_path)
        settings = CollectorSettings(db=site.db_url, incident_webhook_url=HOOK)
        for slug, agent in agents.items():
            agent.send(agent.windows(local(9, 30), local(10, 0)))
            _reported(site, slug, local(10, 0))
        # 10:35, in lessons: every agent of the three schools silent since 10:00.
        during = run_detection(site.engine, settings, local(10, 35))
        assert sorted(c.kind for c in during.changes if c.action == "opened") == ["provider"] + ["silent"] * 3
        [(silent_id, key, responsible, state, urgency, impact, findings)] = site.sql(
            "SELECT id, key, responsible, state, urgency, impact, findings FROM incidents "
            "WHERE kind = 'provider'")
        assert key.endswith(":silent") and (responsible, state) == ("provider", "open")
        assert (urgency, impact) == ("high", "teaching")
        assert '"suspected": true' in findings and "not yet proven" in findings
        assert site.sql("SELECT parent_id FROM incidents WHERE kind = 'silent'") == [(silent_id,)] * 3
        assert _notified(site, silent_id) == ["opened"]
        # While it lasts, nothing more.
        meanwhile = run_detection(site.engine, settings, local(10, 40))
        assert {c.action for c in meanwhile.changes} <= {"refreshed"}
        # 10:45: the line is back; the outage records (10:00-10:40) arrive.
        for slug, agent in agents.items():
            _back_after_outage(agent, local(10, 0), local(10, 40), local(10, 44))
            _reported(site, slug, local(10, 44))
        after = run_detection(site.engine, settings, local(10, 45))
        assert after.errors == []
        [outage_parent] = [c.incident_id for c in after.changes
                           if c.kind == "provider" and c.action == "opened"]
        assert site.sql("SELECT DISTINCT parent_id, state FROM incidents WHERE kind = 'outage'") == [
            (outage_parent, "resolved")]
        assert site.sql("SELECT DISTINCT state FROM incidents WHERE kind = 'silent'") == [("resolved",)]
        [(state, resolution, note, restored)] = site.sql(
            "SELECT state, resolution, resolution_note, restored_at FROM incidents WHERE id = ?", silent_id)
        assert (state, resolution, restored) == ("resolved", "recovered", local(10, 44))
        assert "reported again" in note and f"provider-wide incident {outage_parent}" in note
        assert "10:00 to 10:40" in note
        opened_note = site.sql("SELECT note FROM incident_events WHERE incident_id = ? AND action = 'opened'",
                               outage_parent)[0][0]
        assert f"silence in provider-wide incident {silent_id}" in opened_note
        assert site.sql("SELECT state, restored_at FROM incidents WHERE id = ?", outage_parent) == [
            ("resolved", local(10, 40))]
        assert run_detection(site.engine, settings, local(10, 50)).changes == []


def test_a_school_with_one_agent_still_reporting_is_not_silent_provider_wide(
        tmp_path: Path, db_url: str) -> None:
    with make_site(tmp_path, db_url) as site:
        agents = _telcom_agents(site, tmp_path)
        laptop = Agent(site, site.enroll("laptop", school="test-board/het-kompas"))
        for slug, agent in agents.items():
            agent.send(agent.windows(local(9, 30), local(10, 0)))
            _reported(site, slug, local(10, 0))
        # Het Kompas's laptop still reports: its line is there, so only two schools are silent.
        laptop.send(laptop.windows(local(10, 0), local(10, 30)))
        site.sql("UPDATE agents SET last_report_at = ? WHERE slug = 'laptop'", local(10, 30))
        report = run_detection(site.engine, CollectorSettings(db=site.db_url), local(10, 35))
        assert sorted(c.kind for c in report.changes if c.action == "opened") == ["silent"] * 3
        assert site.sql("SELECT count(*) FROM incidents WHERE kind = 'provider'")[0][0] == 0

"""Several schools on one provider degrading together: one provider-wide incident that links
them, one escalation for all, resolved when every school's incident is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_collector.conftest import Site, make_site
from test_collector.incident_fixtures import (
    bandwidth_finding,
    events,
    found,
    merge,
    recovered,
    row,
    set_up_schools,
)
from test_collector.incident_histories import local

from collector.incidents.errors import NotAllowedNow
from collector.incidents.lifecycle import perform
from collector.incidents.model import DetectionPolicy, provider_key
from collector.incidents.notify import Channels

pytestmark = pytest.mark.both_stores

WEBHOOK = Channels(webhook_url="http://127.0.0.1:9/hook")


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Any:
    with make_site(tmp_path, db_url) as result:
        set_up_schools(result, tmp_path)
        yield result


def school_incident(site: Site, slug: str, started: float) -> int:
    [change] = found(site, bandwidth_finding(site, slug, started_at=started), local(11), WEBHOOK)
    return change.incident_id


def test_two_schools_are_not_enough(site: Site) -> None:
    school_incident(site, "test-school", local(9))
    school_incident(site, "de-regenboog", local(9, 30))
    assert merge(site, local(11, 5)) == []
    assert site.sql("SELECT count(*) FROM incidents WHERE kind = 'provider'")[0][0] == 0


def test_three_schools_within_the_window_merge_and_others_stay_out(site: Site) -> None:
    children = [school_incident(site, slug, local(9, minute))
                for slug, minute in (("test-school", 0), ("de-regenboog", 20), ("het-kompas", 50))]
    # Began more than 2 h after the first: not the same event.
    late = school_incident(site, "de-linde", local(11, 30) - 1)
    changes = merge(site, local(11, 5), channels=WEBHOOK)
    [parent_change] = [c for c in changes if c.kind == "provider"]
    parent = row(site, parent_change.incident_id)
    [(provider_id,)] = site.sql("SELECT DISTINCT provider_id FROM incidents WHERE school_id IS NOT NULL")
    assert parent["key"] == provider_key(provider_id, "bandwidth") and parent["school_id"] is None
    assert parent["provider"] == "Telcom Zakelijk" and parent["started_at"] == local(9)
    assert parent["board_id"] == row(site, children[0])["board_id"]
    assert [row(site, c)["parent_id"] for c in children] == [parent["id"]] * 3
    assert row(site, late)["parent_id"] is None
    findings = parent["findings"] if isinstance(parent["findings"], dict) else json.loads(parent["findings"])
    assert findings["school_count"] == 3
    assert [s["school"] for s in findings["schools"]] == ["test-school", "de-regenboog", "het-kompas"]
    assert findings["schools"][0]["figures"]["median_ratio"] == 0.41
    assert events(site, children[0])[-1][1:] == ("merged", "open", "open",
                                                  f"part of provider-wide incident {parent['id']}")
    # Merging again changes nothing.
    assert [c for c in merge(site, local(11, 10)) if c.action != "refreshed"] == []


def test_one_escalation_cascades_to_the_children_and_a_late_child_follows(site: Site) -> None:
    children = [school_incident(site, slug, local(9, 10 * i))
                for i, slug in enumerate(("test-school", "de-regenboog", "het-kompas"))]
    parent_id = next(c.incident_id for c in merge(site, local(11, 5), channels=WEBHOOK)
                     if c.kind == "provider")
    before = site.sql("SELECT count(*) FROM incident_notifications")[0][0]
    view = perform(site.engine, parent_id, "escalate", "Anne (admin token 1)", ticket="TZ-9001",
                   note="called the helpdesk", now=local(11, 20), channels=WEBHOOK)
    assert view.state == "escalated"
    for child in children:
        incident = row(site, child)
        assert (incident["state"], incident["ticket"]) == ("escalated", "TZ-9001")
        actor, action, _, to_state, note = events(site, child)[-1]
        assert (actor, action, to_state) == ("Anne (admin token 1)", "escalated", "escalated")
        assert note == (f"provider's ticket TZ-9001; via provider-wide incident {parent_id}: "
                        "called the helpdesk")
    # One notification (the parent's), not four.
    assert site.sql("SELECT count(*) FROM incident_notifications")[0][0] == before + 1
    # A fourth school whose problem began in the window joins, escalated with the ticket.
    late = school_incident(site, "de-linde", local(10))
    merge(site, local(11, 30))
    incident = row(site, late)
    assert (incident["parent_id"], incident["state"], incident["ticket"]) == (
        parent_id, "escalated", "TZ-9001")
    assert events(site, parent_id)[-1][1] == "merged" and "de-linde" in events(site, parent_id)[-1][4]


def test_the_parent_resolves_itself_when_its_children_are_closed(site: Site) -> None:
    children = [school_incident(site, slug, local(9, 10 * i))
                for i, slug in enumerate(("test-school", "de-regenboog", "het-kompas"))]
    parent_id = next(c.incident_id for c in merge(site, local(11, 5)) if c.kind == "provider")
    slugs = ("test-school", "de-regenboog", "het-kompas")
    for i, (child, slug) in enumerate(zip(children[:2], slugs, strict=False)):
        recovered(site, row(site, child)["key"], at=local(12, i), now=local(12, 30), slug=slug)
    merge(site, local(12, 35))
    assert row(site, parent_id)["state"] == "open"
    # The last by hand: the parent closes at once.
    perform(site.engine, children[2], "resolve", "Anne", note="router restarted", now=local(13))
    parent = row(site, parent_id)
    assert (parent["state"], parent["resolution"]) == ("resolved", "recovered")
    assert parent["restored_at"] == local(13)
    assert parent["resolution_note"] == "resolved itself: the incidents of all 3 schools are closed"


def test_dismissing_the_parent_dismisses_the_children(site: Site) -> None:
    children = [school_incident(site, slug, local(9, 10 * i))
                for i, slug in enumerate(("test-school", "de-regenboog", "het-kompas"))]
    parent_id = next(c.incident_id for c in merge(site, local(11, 5)) if c.kind == "provider")
    perform(site.engine, parent_id, "acknowledge", "Anne", now=local(11, 10))
    assert {row(site, c)["state"] for c in children} == {"acknowledged"}
    perform(site.engine, parent_id, "dismiss", "Anne", reason="the speed-test server was overloaded",
            now=local(11, 15))
    assert {row(site, c)["state"] for c in children} == {"dismissed"}
    assert row(site, parent_id)["state"] == "dismissed"
    with pytest.raises(NotAllowedNow):
        perform(site.engine, parent_id, "escalate", "Anne", now=local(11, 20))


# --- review: incidents already over when they merge ---------------------------------------------


def test_closed_by_recovery_merges_and_keeps_its_state_dismissed_and_by_hand_do_not(site: Site) -> None:
    slugs = ("test-school", "de-regenboog", "het-kompas", "de-linde")
    ids = [school_incident(site, slug, local(9, 10 * i)) for i, slug in enumerate(slugs)]
    # Het Kompas's line recovered at 10:30 before the merge; De Linde's was dismissed.
    recovered(site, row(site, ids[2])["key"], at=local(10, 30), now=local(11, 0), slug="het-kompas")
    perform(site.engine, ids[3], "dismiss", "Anne", reason="the school's own router", now=local(11, 1))
    changes = merge(site, local(11, 5), channels=WEBHOOK)
    [parent_id] = [c.incident_id for c in changes if c.kind == "provider"]
    parent = row(site, parent_id)
    assert (parent["state"], parent["closed_at"]) == ("open", None)
    # The recovered one is a child and stays resolved (linking does not reopen it).
    assert [(row(site, i)["parent_id"], row(site, i)["state"]) for i in ids] == [
        (parent_id, "open"), (parent_id, "open"), (parent_id, "resolved"), (None, "dismissed")]
    assert row(site, ids[2])["closed_at"] == local(11, 0)


def test_a_school_resolved_by_hand_does_not_count(site: Site) -> None:
    ids = [school_incident(site, slug, local(9, 10 * i))
           for i, slug in enumerate(("test-school", "de-regenboog", "het-kompas"))]
    perform(site.engine, ids[0], "resolve", "Anne", note="not the line after all", now=local(10, 50))
    assert [c for c in merge(site, local(11, 5)) if c.kind == "provider"] == []


def test_incidents_over_before_the_merge_make_a_resolved_one_and_an_old_one_stays_out(site: Site) -> None:
    slugs = ("test-school", "de-regenboog", "het-kompas")
    ids = [school_incident(site, slug, local(9, 10 * i)) for i, slug in enumerate(slugs)]
    for i, (incident, slug) in enumerate(zip(ids, slugs, strict=True)):
        recovered(site, row(site, incident)["key"], at=local(10, 30 + i), now=local(11), slug=slug)
    # Beyond the detection lookback (a day), closed incidents merge no more.
    late = DetectionPolicy()
    assert merge(site, local(11) + late.lookback_seconds + 1) == []
    changes = merge(site, local(11, 5), channels=WEBHOOK)
    [parent_id] = {c.incident_id for c in changes if c.kind == "provider"}
    parent = row(site, parent_id)
    assert (parent["state"], parent["resolution"], parent["restored_at"]) == ("resolved", "recovered",
                                                                              local(10, 32))
    assert [e[1] for e in events(site, parent_id)] == ["opened", "resolved"]
    assert site.sql("SELECT e.action FROM incident_notifications n JOIN incident_events e "
                    "ON e.id = n.event_id WHERE n.incident_id = ?", parent_id) == [("resolved",)]
    # A problem at a fourth school still under way does not join a resolved one (it would
    # have to reopen it): it waits for schools of its own.
    ongoing = school_incident(site, "de-linde", local(9, 40))
    assert [c for c in merge(site, local(11, 10)) if c.action != "refreshed"] == []
    assert row(site, ongoing)["parent_id"] is None

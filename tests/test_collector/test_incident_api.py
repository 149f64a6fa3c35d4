"""The incidents admin API: list and read; act with 200, 404, 409, 422; 401 without a token;
the actor recorded as "NAME (admin token N)"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_collector.conftest import make_site
from test_collector.incident_fixtures import bandwidth_finding, events, found, set_up_schools
from test_collector.incident_histories import local

from collector.registry import create_token

pytestmark = pytest.mark.both_stores


@pytest.fixture
def api(tmp_path: Path, db_url: str) -> Any:
    with make_site(tmp_path, db_url) as site:
        set_up_schools(site, tmp_path)
        token_id, token = create_token(site.engine, "admin")
        [change] = found(site, bandwidth_finding(site), local(10, 30))
        yield site, {"Authorization": f"Bearer {token}"}, token_id, change.incident_id


def test_list_show_and_act(api: Any) -> None:
    site, auth, token_id, incident_id = api
    client = site.client
    listed = client.get("/api/v1/admin/incidents", headers=auth)
    assert listed.status_code == 200 and [i["id"] for i in listed.json()] == [incident_id]
    assert client.get("/api/v1/admin/incidents?state=resolved", headers=auth).json() == []
    shown = client.get(f"/api/v1/admin/incidents/{incident_id}", headers=auth).json()
    assert shown["state"] == "open" and shown["events"][0]["action"] == "opened"
    answer = client.post(f"/api/v1/admin/incidents/{incident_id}/escalate", headers=auth,
                         json={"by": "Anne", "ticket": "TZ-1", "note": "called"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "escalated" and answer.json()["ticket"] == "TZ-1"
    assert events(site, incident_id)[-1][0] == f"Anne (admin token {token_id})"


def test_errors(api: Any) -> None:
    site, auth, _, incident_id = api
    client = site.client
    assert client.get("/api/v1/admin/incidents").status_code == 401
    assert client.post(f"/api/v1/admin/incidents/{incident_id}/acknowledge").status_code == 401
    assert client.get("/api/v1/admin/incidents/999", headers=auth).status_code == 404
    assert client.post("/api/v1/admin/incidents/999/acknowledge", headers=auth, json={}).status_code == 404
    assert client.get("/api/v1/admin/incidents?school=nowhere", headers=auth).status_code == 404
    assert client.get("/api/v1/admin/incidents?board=nowhere", headers=auth).status_code == 404
    assert client.get("/api/v1/admin/incidents?board=test-board", headers=auth).status_code == 200
    assert client.get("/api/v1/admin/incidents?state=closed", headers=auth).status_code == 422
    refused = client.post(f"/api/v1/admin/incidents/{incident_id}/dismiss", headers=auth, json={"by": "A"})
    assert refused.status_code == 422 and "reason" in refused.json()["detail"]
    assert client.post(f"/api/v1/admin/incidents/{incident_id}/note", headers=auth,
                       json={"color": "red"}).status_code == 422
    assert client.post(f"/api/v1/admin/incidents/{incident_id}/resolve", headers=auth,
                       json={"note": "fixed"}).status_code == 200
    conflict = client.post(f"/api/v1/admin/incidents/{incident_id}/acknowledge", headers=auth, json={})
    assert conflict.status_code == 409 and "resolved" in conflict.json()["detail"]


@pytest.mark.parametrize("number", ["99999999999999999999", "0", "abc"])
def test_an_id_that_is_no_id_is_422_not_500(api: Any, number: str) -> None:
    site, auth, _, _ = api
    assert site.client.get(f"/api/v1/admin/incidents/{number}", headers=auth).status_code == 422
    answer = site.client.post(f"/api/v1/admin/incidents/{number}/acknowledge", headers=auth, json={})
    assert answer.status_code == 422 and "incident_id" in answer.json()["detail"]


@pytest.mark.parametrize(("body", "says"), [
    ({"note": "clear\x1b[2Jscreen"}, "control character (U+001B)"),
    ({"note": "nul\x00"}, "U+0000"),
    ({"note": "x" * 4001}, "at most 4000 characters"),
    ({"note": "ok", "by": "Eve\r\nMallory"}, "one line"),
    ({"note": "ok", "ticket": "TZ\n1"}, "one line"),
])
def test_control_characters_and_huge_text_are_422(api: Any, body: dict[str, str], says: str) -> None:
    site, auth, _, incident_id = api
    answer = site.client.post(f"/api/v1/admin/incidents/{incident_id}/note", headers=auth, json=body)
    assert answer.status_code == 422 and says in answer.json()["detail"], answer.text
    assert [e for e in events(site, incident_id) if e[1] == "note"] == []


def test_a_note_with_line_breaks_is_kept(api: Any) -> None:
    site, auth, token_id, incident_id = api
    answer = site.client.post(f"/api/v1/admin/incidents/{incident_id}/note", headers=auth,
                              json={"note": "called\r\nno answer", "by": "  Anne "})
    assert answer.status_code == 200, answer.text
    assert answer.json()["events"][-1]["note"] == "called\nno answer"
    assert answer.json()["events"][-1]["actor"] == f"Anne (admin token {token_id})"


def test_the_metric_on_metrics_has_the_documented_labels(api: Any) -> None:
    site, auth, _, incident_id = api
    text = site.metrics().text
    assert ('schoolnet_incidents_active{board="test-board",school="test-school",kind="bandwidth",'
            'state="open"} 1') in text
    started = site.sql("SELECT started_at FROM incidents WHERE id = ?", incident_id)[0][0]
    [line] = [line for line in text.splitlines()
              if line.startswith("schoolnet_incident_oldest_active_start_timestamp_seconds{")]
    assert line.startswith('schoolnet_incident_oldest_active_start_timestamp_seconds{board="test-board",'
                           'school="test-school"} ') and float(line.split()[-1]) == started
    site.client.post(f"/api/v1/admin/incidents/{incident_id}/dismiss", headers=auth, json={"reason": "test"})
    assert "schoolnet_incidents_active{" not in site.metrics().text

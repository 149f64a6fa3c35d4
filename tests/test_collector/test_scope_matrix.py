"""Every route of the collector, called by every kind of caller, with the path parameters of
board A's school or incident, of board B's, of the provider-wide incident and of made-up
ones ("none"): each answer is either allowed (the route's own success) or refused (401, 403,
404, or a browser sent to sign in), never a 5xx; a caller who may not see a board's thing
gets, status and body, what the made-up thing gets (its id in place of the made-up one), so
ids cannot be probed; and no allowed answer (PDFs read with pypdf too) names a board's
schools to a caller who may not see them.

``RULES`` classifies each (method, path template); a route that is not in it fails the test,
so a new route must say who may call it. Routes other helpers are still writing are listed
too: while ``CI`` is not set an entry without its route is skipped, in CI it fails.

The rules (collector/routes/scope.py): admin (user or token): everything; board admin of A:
reads and changes of A's schools and incidents; board viewer of A: those reads; analyst:
reads of incidents, verdicts and lines of boards that shared and of its home board;
provider-wide incidents (which name every board's schools): the admin only (scope.py
sees_provider_wide); a thing of a board the caller may not see is a 404, a change the
caller may not make of a thing it sees a 403; /metrics takes a metrics or admin token (never
a session); the agents' routes take an agent's credential.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pypdf import PdfReader
from sqlalchemy import select
from support.accounts import (
    A_NAMES,
    A_SCHOOL_NAMES,
    AGENT_B,
    B_NAMES,
    B_SCHOOL_NAMES,
    BOARD_A,
    BOARD_B,
    NO_AGENT,
    NO_BOARD,
    NO_INCIDENT,
    NO_SCHOOL,
    SCHOOL_A,
    SCHOOL_B,
    Principal,
    Tenants,
    fresh,
    set_shared,
    two_boards,
)
from test_collector.conftest import Site, make_site

from collector.db.schema import incidents

# --- who may: sets of principals (support/accounts.py two_boards makes them) ------------------

ADMINS = {"admin_token", "admin_user"}
USERS = {"admin_user", "board_admin_a", "board_viewer_a", "analyst", "analyst_home_a",
         "analyst_b_shared", "board_admin_b"}
VIEWERS = USERS | {"admin_token"}
BOARD_MEMBERS = ADMINS | {"board_admin_a", "board_viewer_a", "board_admin_b"}
AGENTS = {"agent", "agent_b"}
METRICS = {"metrics_token", "admin_token"}
EVERYONE = {"anonymous", "metrics_token"} | AGENTS | VIEWERS
PRINCIPALS = sorted(EVERYONE)

# Whose things are whose: the readers and the managers of A's, B's, provider-wide and made-up
# ("none": nobody's) things.
READERS: dict[str, set[str]] = {
    "a": ADMINS | {"board_admin_a", "board_viewer_a", "analyst_home_a"},
    "b": ADMINS | {"board_admin_b", "analyst_b_shared"},
    "provider": set(ADMINS),
    "none": set(),
}
MANAGERS: dict[str, set[str]] = {"a": ADMINS | {"board_admin_a"}, "b": ADMINS | {"board_admin_b"},
                                 "provider": set(ADMINS), "none": set()}
# Who may name a board in the report's ``board=``: whoever reads it one by one (an analyst
# counts unshared boards only all together, so that no subset of them can be set against
# another: collector/comparison/compute.py selected_boards).
REPORT_NAMERS: dict[str, set[str]] = {"-": VIEWERS, **{v: READERS[v] for v in ("a", "b", "none")}}
REFUSALS = frozenset({401, 403, 404})

OK = {200}
ACTED = {200, 409}  # an incident action may not fit the state the matrix left it in: past scope
FORM = {200, 303, 400}  # a form answers with its page, a redirect, or its own error
PUBLIC = set(range(200, 500))  # anyone; just never a 5xx


@dataclass(frozen=True)
class Rule:
    """Who may call a route, per variant of its parameters ("-": no board in it; "a", "b",
    "provider": whose thing it names; "none": a made-up one), which answers count as allowed
    and which as refused, and who may tell that a variant's thing exists (``sees``; None: the
    route names no board's thing). Everyone else must get what "none" gets."""

    who: Callable[[str], set[str]]
    variants: tuple[str, ...] = ("-",)
    ok: frozenset[int] = frozenset(OK)
    public: bool = False  # a route for anyone (sign-in, health): only "never a 5xx"
    refusals: frozenset[int] = REFUSALS
    sees: Callable[[str], set[str]] | None = None


def everyone_may(who: set[str], ok: set[int] = OK, public: bool = False) -> Rule:
    return Rule(lambda _v: who, ok=frozenset(ok), public=public)


BOARDS = ("a", "b", "none")
INCIDENT = ("a", "b", "provider", "none")


def by_board(table: dict[str, set[str]], variants: tuple[str, ...] = BOARDS, ok: set[int] = OK) -> Rule:
    # A reader who may not change the thing gets 403 (it sees it); only a non-reader must
    # get the made-up thing's answer.
    return Rule(lambda v: table[v], variants, frozenset(ok), sees=lambda v: READERS[v])


# The report's board= filter: another board is as unknown as a made-up one, a 422 in the
# same words ("no board with id …"), as for any filter that matches nothing.
REPORT = Rule(lambda v: REPORT_NAMERS[v], ("-", "a", "b", "none"), refusals=frozenset({401, 422}),
              sees=lambda v: REPORT_NAMERS[v])
RULES: dict[tuple[str, str], Rule] = {
    # Agents (their credential) and the open door.
    ("POST", "/api/v1/ingest"): everyone_may(AGENTS, {200, 400, 422}),
    ("POST", "/api/v1/enroll"): everyone_may(EVERYONE, PUBLIC, public=True),
    ("GET", "/api/v1/agent/settings"): everyone_may(AGENTS),
    ("GET", "/api/v1/speed/download"): everyone_may(AGENTS),
    ("POST", "/api/v1/speed/upload"): everyone_may(AGENTS),
    ("GET", "/api/v1/speed/ping"): everyone_may(AGENTS, {204}),
    ("POST", "/api/v1/speed/lease"): everyone_may(AGENTS, {200, 422}),
    ("DELETE", "/api/v1/speed/lease/{lease_id}"): everyone_may(AGENTS, {204, 404}),
    ("GET", "/healthz"): everyone_may(EVERYONE, public=True),
    ("GET", "/metrics"): everyone_may(METRICS),
    ("GET", "/openapi.json"): everyone_may(ADMINS),
    # The admin API.
    ("GET", "/api/v1/admin/agents"): everyone_may(BOARD_MEMBERS),
    ("PUT", "/api/v1/admin/schools/{board}/{school}/agent-settings"): by_board(MANAGERS),
    ("PUT", "/api/v1/admin/schools/{board}/{school}/agents/{agent}/agent-settings"): by_board(MANAGERS),
    # "-": the whole file (admin, or a board role's own rows); "a"/"b": ?board=.
    ("GET", "/api/v1/admin/contracts.csv"): Rule(
        lambda v: BOARD_MEMBERS if v == "-" else READERS[v], ("-", *BOARDS), sees=lambda v: READERS[v]),
    # "a"/"b": a file of A's rows, of B's rows (a board admin gets 403 for any other board's
    # row, existing or not; a made-up board's rows would make an admin that board).
    ("POST", "/api/v1/admin/contracts.csv"): by_board(MANAGERS, ("a", "b")),
    ("GET", "/api/v1/admin/schools/{board}/{school}/connections"): by_board(READERS),
    ("PUT", "/api/v1/admin/boards/{board}/policy"): by_board(MANAGERS),
    ("GET", "/api/v1/admin/schools/{board}/{school}/verdicts"): by_board(READERS),
    # "-": the viewer's own list; "a"/"b": ?board=.
    ("GET", "/api/v1/admin/incidents"): Rule(lambda v: VIEWERS if v == "-" else READERS[v], ("-", *BOARDS),
                                             sees=lambda v: READERS[v]),
    ("GET", "/api/v1/admin/incidents/{incident_id}"): by_board(READERS, INCIDENT),
    **{("POST", f"/api/v1/admin/incidents/{{incident_id}}/{action}"): by_board(MANAGERS, INCIDENT, ACTED)
       for action in ("acknowledge", "escalate", "resolve", "dismiss", "note", "ticket")},
    ("POST", "/api/v1/admin/incidents/{incident_id}/share"): by_board(MANAGERS, INCIDENT),
    ("DELETE", "/api/v1/admin/incidents/{incident_id}/share"): by_board(MANAGERS, INCIDENT),
    # The incident pages.
    ("GET", "/incidents"): everyone_may(VIEWERS),
    ("GET", "/incidents/{board}/{school}"): by_board(READERS),
    ("GET", "/incidents/{incident_id}"): by_board(READERS, INCIDENT),
    ("GET", "/incidents/{incident_id}/evidence.pdf"): by_board(READERS, INCIDENT),
    ("GET", "/incidents/{incident_id}/evidence.json"): by_board(READERS, INCIDENT),
    ("GET", "/incidents/{incident_id}/evidence.csv"): by_board(READERS, INCIDENT),
    # Accounts (a1): signing in is for anyone; the pages of an account need a person.
    ("GET", "/login"): everyone_may(EVERYONE, PUBLIC, public=True),
    ("POST", "/login"): everyone_may(EVERYONE, PUBLIC, public=True),
    ("GET", "/login/oidc"): everyone_may(EVERYONE, PUBLIC, public=True),
    ("GET", "/login/oidc/callback"): everyone_may(EVERYONE, PUBLIC, public=True),
    ("POST", "/logout"): everyone_may(EVERYONE, PUBLIC, public=True),
    ("GET", "/"): everyone_may(VIEWERS),
    ("GET", "/account/password"): everyone_may(USERS),
    ("POST", "/account/password"): everyone_may(USERS, FORM),
    ("GET", "/boards/{board}/sharing"): by_board(READERS),
    ("POST", "/boards/{board}/sharing"): by_board(MANAGERS, ok=FORM),
    # The comparison report (a5): every viewer gets its own scope's report; a school's
    # benchmark shows that school's line, so it is for whoever sees the school's board.
    # "-": no board= filter; "a"/"b"/"none": board= that board.
    ("GET", "/report"): REPORT,
    ("GET", "/report.pdf"): REPORT,
    ("GET", "/report.csv"): REPORT,
    ("GET", "/report.json"): REPORT,
    ("GET", "/schools/{board}/{school}/benchmark"): by_board(READERS),
    ("GET", "/schools/{board}/{school}/benchmark.json"): by_board(READERS),
}

# Sign-out ends the caller's session: each caller's last request.
LAST = ("POST", "/logout")


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path template) of every APIRoute the app serves (routers included)."""
    try:  # FastAPI >= 0.16x keeps included routers as such; this walks them.
        from fastapi.routing import iter_route_contexts

        contexts = [(c.original_route, c.path) for c in iter_route_contexts(app.routes)]
    except ImportError:
        contexts = [(r, r.path) for r in app.routes]
    found = set()
    for route, path in contexts:
        if isinstance(route, APIRoute):
            found.update((method, path) for method in route.methods or ())
    return found


@dataclass
class World:
    site: Site
    tenants: Tenants
    contracts: dict[str, str]  # "a"/"b": that board's rows of the contracts CSV


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp_path: Path = tmp_path_factory.mktemp("scope")
    with make_site(tmp_path, public_url="https://schoolnet.example.nl") as site:
        tenants = two_boards(site)
        admin = tenants.principals["admin_token"].headers
        contracts = {}
        for variant, board in (("a", BOARD_A), ("b", BOARD_B)):
            answer = site.client.get("/api/v1/admin/contracts.csv", params={"board": board}, headers=admin)
            assert answer.status_code == 200 and board in answer.text, answer.text
            contracts[variant] = answer.text
        yield World(site, tenants, contracts)


@dataclass(frozen=True)
class Ids:
    board: str
    school: str
    agent: str
    incident: int


def ids_of(world: World, variant: str) -> Ids:
    """The board, school, agent and incident a variant names ("-" and "provider": A's
    board and school)."""
    tenants = world.tenants
    incident = {"a": tenants.incident_a, "b": tenants.incident_b, "provider": tenants.incident_provider,
                "none": NO_INCIDENT}.get(variant, tenants.incident_a)
    if variant == "b":
        return Ids(BOARD_B, SCHOOL_B, AGENT_B, incident)
    if variant == "none":
        return Ids(NO_BOARD, NO_SCHOOL, NO_AGENT, incident)
    return Ids(BOARD_A, SCHOOL_A, "pi", incident)


def request_for(world: World, method: str, path: str, variant: str) -> dict[str, Any]:
    """The URL, query and body of one call of the route for the variant's board or incident."""
    ids = ids_of(world, variant)
    url = (path.replace("{board}", ids.board).replace("{school}", ids.school).replace("{agent}", ids.agent)
           .replace("{incident_id}", str(ids.incident)).replace("{lease_id}", "no-such-lease"))
    call: dict[str, Any] = {"method": method, "url": url, "params": {}}
    if path.startswith("/report") and variant != "-":
        call["params"]["board"] = ids.board
    if path in ("/api/v1/admin/contracts.csv", "/api/v1/admin/incidents") and variant != "-":
        if method == "GET":
            call["params"]["board"] = ids.board
        else:
            call["content"] = world.contracts[variant].encode()
            call["headers"] = {"Content-Type": "text/csv"}
    if path == "/api/v1/admin/incidents":
        call["params"]["state"] = "all"
    if path == "/api/v1/speed/download":
        call["params"]["bytes"] = 1000
    if path.endswith("/agent-settings") or path.endswith("/policy") or path == "/api/v1/speed/lease":
        call["json"] = {}
    if "/incidents/{incident_id}/" in path and method == "POST":
        call["json"] = {"valid_for": "1d"} if path.endswith("/share") else {
            "note": "scope matrix", "reason": "scope matrix", "ticket": "T-1"}
    if path == "/api/v1/ingest":
        call["json"] = {}
    if path == "/boards/{board}/sharing" and method == "POST":
        call["data"] = {"shared": "no"}
    return call


def hidden_names(principal: str) -> tuple[str, ...]:
    """What of the other board the caller must never be shown: a board's user nothing of it;
    an analyst who may not see a board's schools one by one (neither has shared, unless the
    principal says so), their names (the board itself is named in the comparison's
    aggregates)."""
    return {
        "board_admin_a": B_NAMES, "board_viewer_a": B_NAMES, "board_admin_b": A_NAMES,
        "analyst": B_SCHOOL_NAMES + A_SCHOOL_NAMES, "analyst_home_a": B_SCHOOL_NAMES,
        "analyst_b_shared": A_SCHOOL_NAMES,
    }.get(principal, ())


def is_refused(answer: Any, refusals: frozenset[int] = REFUSALS) -> bool:
    if answer.status_code in refusals:
        return True
    return answer.status_code == 303 and answer.headers.get("location", "").startswith("/login")


def shown_text(answer: Any) -> str:
    """What a reader of the answer sees: a PDF's extracted text (whitespace made single, as
    lines wrap), else the body as text."""
    if answer.headers.get("content-type", "").startswith("application/pdf"):
        pages = PdfReader(io.BytesIO(answer.content)).pages
        return " ".join(" ".join(page.extract_text() for page in pages).split())
    return str(answer.text)


@dataclass(frozen=True)
class Seen:
    """What an answer tells: its status, where it sends the browser, and its body."""

    status: int
    location: str
    body: str


def seen(answer: Any) -> Seen:
    return Seen(answer.status_code, answer.headers.get("location", ""), str(answer.text))


def as_if(none: Seen, ids: Ids) -> Seen:
    """The made-up thing's answer with the variant's ids in place of the made-up ones: what
    the variant's thing must answer to a caller who may not see it."""
    def put(text: str) -> str:
        return (text.replace(NO_BOARD, ids.board).replace(NO_SCHOOL, ids.school)
                .replace(NO_AGENT, ids.agent).replace(str(NO_INCIDENT), str(ids.incident)))
    return Seen(none.status, put(none.location), put(none.body))


def test_every_route_has_a_rule(world: World) -> None:
    routes = app_routes(world.site.client.app)
    unclassified = sorted(routes - RULES.keys())
    assert not unclassified, f"routes without a scope rule in RULES: {unclassified}"
    absent = sorted(RULES.keys() - routes)
    if absent and os.environ.get("CI"):
        pytest.fail(f"RULES name routes the app does not have: {absent}")


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_every_route_for_every_caller(world: World, principal: str) -> None:
    site, tenants = world.site, world.tenants
    caller: Principal = tenants.principals[principal]
    set_shared(site.engine, BOARD_B, principal == "analyst_b_shared")
    routes = app_routes(site.client.app)
    problems: list[str] = []
    for key in sorted(RULES, key=lambda k: (k == LAST, k)):
        method, path = key
        if key not in routes:
            continue  # test_every_route_has_a_rule says whether that is allowed
        rule = RULES[key]
        answers: dict[str, Seen] = {}
        # The made-up thing first: each variant is compared with it as it is answered.
        for variant in sorted(rule.variants, key=lambda v: v != "none"):
            call = request_for(world, method, path, variant)
            headers = {**caller.for_method(method), **call.pop("headers", {})}
            answer = site.client.request(**call, headers=headers, follow_redirects=False)
            where = f"{principal} {method} {call['url']} {call['params'] or ''} ({variant})"
            if answer.status_code >= 500:
                problems.append(f"{where}: {answer.status_code} {answer.text[:200]}")
                continue
            if rule.public:
                continue
            answers[variant] = seen(answer)
            allowed = principal in rule.who(variant)
            if allowed and answer.status_code not in rule.ok:
                problems.append(f"{where}: allowed, but {answer.status_code} {answer.text[:200]}")
            if not allowed and not is_refused(answer, rule.refusals):
                problems.append(f"{where}: should be refused, got {answer.status_code} {answer.text[:200]}")
            if rule.sees is not None and variant not in ("-", "none") and "none" in answers \
                    and principal not in rule.sees(variant):
                expected = as_if(answers["none"], ids_of(world, variant))
                if answers[variant] != expected:
                    problems.append(f"{where}: answers unlike a made-up id: {answers[variant].status} "
                                    f"{answers[variant].body[:150]!r}, made-up: {expected.status} "
                                    f"{expected.body[:150]!r}")
            hidden = hidden_names(principal)
            if hidden and answer.status_code == 200:
                text = shown_text(answer)
                leaked = [name for name in hidden if name in text]
                if leaked:
                    problems.append(f"{where}: shows the other board's {leaked}")
    assert not problems, "\n".join(problems)


# --- what the allowed answers hold ------------------------------------------------------------


def person(world: World, principal: str) -> Principal:
    # The matrix signs each person out at its end: the tests below sign in anew.
    return fresh(world.site, world.tenants, principal)


def get(world: World, principal: str, url: str, **params: Any) -> Any:
    caller = person(world, principal)
    return world.site.client.get(url, params=params, headers=caller.headers, follow_redirects=False)


def test_a_board_user_gets_its_own_agents_and_incidents_only(world: World) -> None:
    set_shared(world.site.engine, BOARD_B, False)
    tenants = world.tenants
    for principal in ("board_admin_a", "board_viewer_a"):
        agents = get(world, principal, "/api/v1/admin/agents").json()
        assert [(a["board"], a["school"], a["agent"]) for a in agents] == [(BOARD_A, SCHOOL_A, "pi")]
        listed = get(world, principal, "/api/v1/admin/incidents", state="all")
        assert [i["id"] for i in listed.json()] == [tenants.incident_a]
        assert not [name for name in B_NAMES if name in listed.text]
        page = get(world, principal, "/incidents", state="all")
        assert f">{tenants.incident_a}</a>" in page.text
        assert f">{tenants.incident_b}</a>" not in page.text
        assert f">{tenants.incident_provider}</a>" not in page.text
        # Another board's school, named as a filter, is as unknown as a school that does not exist.
        for school in (SCHOOL_B, f"{BOARD_B}/{SCHOOL_B}", "no-such-school"):
            refused = get(world, principal, "/api/v1/admin/incidents", school=school)
            assert refused.status_code == 404
            assert refused.json()["detail"] == f"no school {school!r} (see: school list)"
        csv = get(world, principal, "/api/v1/admin/contracts.csv")
        assert csv.status_code == 200 and SCHOOL_A in csv.text
        assert not [name for name in B_NAMES if name in csv.text]
    all_ids = {tenants.incident_a, tenants.incident_b, tenants.incident_provider}
    everything = get(world, "admin_user", "/api/v1/admin/incidents", state="all").json()
    assert {i["id"] for i in everything} == all_ids
    # A provider-wide incident names every board's schools: the collector's admin only.
    assert get(world, "analyst", "/api/v1/admin/incidents", state="all").json() == []
    assert [i["id"] for i in get(world, "analyst_home_a", "/api/v1/admin/incidents", state="all").json()] == [
        tenants.incident_a]
    set_shared(world.site.engine, BOARD_B, True)
    try:
        shared = get(world, "analyst", "/api/v1/admin/incidents", state="all").json()
        assert [i["id"] for i in shared] == [tenants.incident_b]
        # Sharing lets analysts read B; it gives another board's users nothing.
        assert [i["id"] for i in get(world, "board_admin_a", "/api/v1/admin/incidents", state="all").json()] \
            == [tenants.incident_a]
    finally:
        set_shared(world.site.engine, BOARD_B, False)


def test_a_change_by_a_signed_in_browser_needs_the_csrf_token(world: World) -> None:
    caller = person(world, "board_admin_a")
    url = f"/api/v1/admin/boards/{BOARD_A}/policy"
    without = world.site.client.put(url, json={}, headers=caller.headers)
    assert without.status_code == 403 and "reload the page" in without.json()["detail"]
    forged = world.site.client.put(url, json={}, headers={**caller.headers, "X-CSRF-Token": "0" * 64})
    assert forged.status_code == 403
    assert world.site.client.put(url, json={}, headers=caller.for_method("PUT")).status_code == 200


def test_an_action_names_the_person_and_a_token_keeps_its_by_name(world: World) -> None:
    tenants, client = world.tenants, world.site.client
    url = f"/api/v1/admin/incidents/{tenants.incident_a}/note"
    admin_a = person(world, "board_admin_a")
    # A signed-in person is who the session says, whatever "by" claims.
    noted = client.post(url, json={"note": "called", "by": "Someone Else"},
                        headers=admin_a.for_method("POST"))
    assert noted.status_code == 200, noted.text
    assert noted.json()["events"][-1]["actor"] == f"board_admin_a (board admin {BOARD_A})"
    token = tenants.principals["admin_token"]
    noted = client.post(url, json={"note": "called", "by": "Anne"}, headers=token.headers)
    assert noted.json()["events"][-1]["actor"].startswith("Anne (admin token ")
    # A board viewer sees the incident and may not act on it: 403, not 404.
    viewer = person(world, "board_viewer_a")
    assert client.post(url, json={"note": "x"}, headers=viewer.for_method("POST")).status_code == 403
    assert client.post(f"/api/v1/admin/incidents/{tenants.incident_b}/note", json={"note": "x"},
                       headers=admin_a.for_method("POST")).status_code == 404


def test_metrics_refuse_a_session_and_a_share_opens_its_pack_only(world: World) -> None:
    tenants, client = world.tenants, world.site.client
    assert client.get("/metrics", headers=person(world, "admin_user").headers).status_code == 401
    made = client.post(f"/api/v1/admin/incidents/{tenants.incident_a}/share", json={"valid_for": "1d"},
                       headers=person(world, "board_admin_a").for_method("POST"))
    assert made.status_code == 200, made.text
    secret = made.json()["url"].split("share=")[1]
    assert client.get(f"/incidents/{tenants.incident_a}", params={"share": secret}).status_code == 200
    assert client.get(f"/incidents/{tenants.incident_b}", params={"share": secret}).status_code == 404
    listed = client.get("/incidents", params={"share": secret}, follow_redirects=False)
    assert listed.status_code == 303 and listed.headers["location"].startswith("/login")
    # Board B's admin opens A's pack neither by number nor with a share it was not given.
    other = person(world, "board_admin_b")
    assert client.get(f"/incidents/{tenants.incident_a}", headers=other.headers).status_code == 404


def test_the_provider_wide_incident_links_both_boards_as_the_detector_does(world: World) -> None:
    # The matrix's leak checks mean something only if the provider-wide incident holds B:
    # B's school incident is its child, and its findings name B's school (provider_wide.py).
    tenants, engine = world.tenants, world.site.engine
    with engine.connect() as conn:
        rows = {row.id: row for row in conn.execute(select(incidents).where(incidents.c.id.in_(
            [tenants.incident_a, tenants.incident_b, tenants.incident_provider])))}
    wide = rows[tenants.incident_provider]
    assert (wide.kind, wide.board_id, wide.school_id) == ("provider", None, None)
    assert rows[tenants.incident_a].parent_id == rows[tenants.incident_b].parent_id == wide.id
    named = {(entry["board"], entry["school"], entry["school_name"]) for entry in wide.findings["schools"]}
    assert named == {(BOARD_A, SCHOOL_A, "De Regenboog"), (BOARD_B, SCHOOL_B, "Bij de Molen")}
    # The admin's pack of it shows B's school; nobody else opens it (the matrix: READERS).
    pack = get(world, "admin_user", f"/incidents/{wide.id}/evidence.pdf")
    assert pack.status_code == 200 and "Bij de Molen" in shown_text(pack)

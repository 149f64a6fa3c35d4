"""Two boards, their schools, lines, agents and incidents, and one signed-in person per role,
for the scope tests (and any test that needs a user of some role).

Board A is the test site's own "test-board" (school "test-school", De Regenboog); board B is
"other-board" ("other-school", named ``B_NAMES`` below, so a test can assert that nothing a
board-A user gets mentions them). Each has a registered line, an enrolled agent and an
incident; both lines are of one provider, and their incidents began together, so the
detector's own merge (collector/incidents/provider_wide.py) links both to one provider-wide
incident of no board, whose findings name B's school: a route that shows a provider-wide
incident, or its children, to a board-A user leaks B. Users are written straight
into the store with the real password hash, and signed in with a real session
(collector/accounts/sessions.py); a request carries the session as its cookie and, for an
unsafe method, the session's CSRF token, as the collector's own pages do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update

from collector.accounts.csrf import HEADER, csrf_token
from collector.accounts.passwords import hash_password
from collector.accounts.roles import check_role
from collector.accounts.sessions import cookie_is_secure, cookie_name, create_session
from collector.db.engine import writer
from collector.db.schema import boards, users
from collector.incidents.model import DetectionPolicy
from collector.incidents.provider_wide import merge_provider_wide
from collector.registry import add_board, add_school, create_admin_token
from support import incidents as si

BOARD_A, SCHOOL_A = "test-board", "test-school"
BOARD_B, SCHOOL_B = "other-board", "other-school"
AGENT_B = "other-pi"
# What must never reach a board-A user: B's ids and names (and a board-B user: A's).
B_SCHOOL_NAMES = ("other-school", "Bij de Molen", AGENT_B)
B_NAMES = ("other-board", "Other Board", *B_SCHOOL_NAMES)
A_SCHOOL_NAMES = ("test-school", "De Regenboog")
A_NAMES = ("test-board", "Test Board", *A_SCHOOL_NAMES)
# Made-up ids for the "none" variant: what a thing that does not exist answers.
NO_BOARD, NO_SCHOOL, NO_AGENT, NO_INCIDENT = "no-such-board", "no-such-school", "no-such-agent", 999999
PASSWORD = "correct horse battery staple 42"


@dataclass
class Principal:
    """Who calls: the headers every request carries, and the ones an unsafe request adds."""

    name: str
    headers: dict[str, str] = field(default_factory=dict)
    unsafe_headers: dict[str, str] = field(default_factory=dict)
    role: str | None = None  # a user's role; None for a token, an agent or nobody

    def for_method(self, method: str) -> dict[str, str]:
        if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
            return {**self.headers, **self.unsafe_headers}
        return dict(self.headers)


@dataclass
class Tenants:
    """What ``two_boards`` made: the incidents of A, B and no board, and the people."""

    incident_a: int
    incident_b: int
    incident_provider: int
    admin_token: str
    principals: dict[str, Principal]
    user_ids: dict[str, int] = field(default_factory=dict)  # principal name -> account


def add_user(engine: Engine, username: str, role: str, board: str | None = None,
             display_name: str | None = None) -> int:
    """An account as the user store keeps it (argon2id hash of ``PASSWORD``); its id."""
    checked = check_role(role, board)
    now = time.time()
    with writer(engine) as conn, conn.begin():
        board_id = None
        if board is not None:
            board_id = conn.scalar(select(boards.c.id).where(boards.c.slug == board))
            assert board_id is not None, board
        return int(conn.execute(users.insert().values(
            username=username, display_name=display_name or username.title(), role=checked,
            board_id=board_id, password_hash=hash_password(PASSWORD), created_at=now,
            updated_at=now)).inserted_primary_key[0])


def session_cookie(public_url: str, secret: str) -> dict[str, str]:
    """The Cookie header a browser sends back for this session (its name depends on
    whether the collector's URL makes the cookie Secure)."""
    return {"Cookie": f"{cookie_name(cookie_is_secure(public_url))}={secret}"}


def sign_in(site: Any, user_id: int, name: str, role: str) -> Principal:
    """A real session for the account: the cookie, and the CSRF token for unsafe requests."""
    settings = site.client.app.state.settings
    secret = create_session(site.engine, user_id, settings.session_lifetime)
    return Principal(name, session_cookie(settings.public_url, secret), {HEADER: csrf_token(secret)}, role)


def set_shared(engine: Engine, board: str, shared: bool) -> None:
    with writer(engine) as conn, conn.begin():
        conn.execute(update(boards).where(boards.c.slug == board)
                     .values(shared_at=time.time() if shared else None))


def second_board(site: Any) -> str:
    """Board B with its school, a line of A's provider and an enrolled agent; returns the
    agent's credential."""
    add_board(site.engine, "Other Board")
    add_school(site.engine, BOARD_B, "Other School")
    si.register_line(site.engine, board=BOARD_B, board_name="Other Board", school=SCHOOL_B,
                     school_name="Bij de Molen", external_id="34CD", address="Molenweg 2",
                     postcode="5678 CD", city="Zwolle")
    return str(site.enroll(AGENT_B, f"{BOARD_B}/{SCHOOL_B}"))


def outage(site: Any, key: str, school: str | None, **columns: Any) -> int:
    """A 19-minute ISP outage on the test day (resolved by itself), at ``school`` or, with
    None, provider-wide."""
    start, end = si.local(10, 30), si.local(10, 49)
    figures = {"kind": "isp", "start": start, "end": end, "ongoing": False,
               "duration_seconds": end - start, "agents": ["pi"],
               "detail": f"no reply from 192.0.2.53, 203.0.113.9; gateway {si.GATEWAY} answered"}
    return si.insert_incident(
        site.engine, kind="outage", key=key, started_at=start, figures=figures, school=school,
        corroboration=["the gateway answered throughout: the school network was up"],
        events=[(start + 300, "detector", "opened", None, "open", None)], **columns)


def provider_wide(engine: Engine) -> int:
    """The provider-wide incident the detector makes of the open line incidents (A's and B's):
    parent of both, its findings naming each school with its figures. Two schools make one
    here (the default policy asks three): a board's policy may say so, and two is all the
    scope tests have."""
    with writer(engine) as conn, conn.begin():
        changes = merge_provider_wide(conn, time.time(), DetectionPolicy(provider_min_schools=2))
    opened = [c.incident_id for c in changes if c.kind == "provider" and c.action == "opened"]
    assert len(opened) == 1, changes
    return opened[0]


def two_boards(site: Any) -> Tenants:
    """Boards A and B with a line, an agent and an incident each, the provider-wide incident
    they are part of, and a principal per kind of caller (see PRINCIPALS in the scope matrix
    test)."""
    si.register_line(site.engine)
    agent_b = second_board(site)
    incident_a = outage(site, "outage:a", f"{BOARD_A}/{SCHOOL_A}")
    incident_b = outage(site, "outage:b", f"{BOARD_B}/{SCHOOL_B}")
    incident_provider = provider_wide(site.engine)
    admin = create_admin_token(site.engine)
    people = {
        "admin_user": ("admin", None),
        "board_admin_a": ("board_admin", BOARD_A),
        "board_viewer_a": ("board_viewer", BOARD_A),
        "analyst": ("analyst", None),
        "analyst_home_a": ("analyst", BOARD_A),
        "board_admin_b": ("board_admin", BOARD_B),
    }
    principals = {
        "anonymous": Principal("anonymous"),
        "admin_token": Principal("admin_token", {"Authorization": f"Bearer {admin}"}),
        "metrics_token": Principal("metrics_token", site.metrics_auth),
        "agent": Principal("agent", site.auth),
        "agent_b": Principal("agent_b", {"Authorization": f"Bearer {agent_b}"}),
    }
    user_ids: dict[str, int] = {}
    for name, (role, board) in people.items():
        user_id = add_user(site.engine, name.replace("_", "-"), role, board, display_name=name)
        user_ids[name] = user_id
        principals[name] = sign_in(site, user_id, name, role)
        if name == "analyst":
            # The analyst again (a session of its own), for when board B has shared its
            # schools (the test sets boards.shared_at).
            principals["analyst_b_shared"] = sign_in(site, user_id, "analyst_b_shared", role)
            user_ids["analyst_b_shared"] = user_id
    return Tenants(incident_a, incident_b, incident_provider, admin, principals, user_ids)


def fresh(site: Any, tenants: Tenants, name: str) -> Principal:
    """The principal with a new session (a test that signed it out goes on signed in)."""
    caller = tenants.principals[name]
    if name not in tenants.user_ids:
        return caller
    return sign_in(site, tenants.user_ids[name], name, caller.role or "")

"""The school's turn for a bandwidth test, and the speed endpoints an agent uses in it.

One agent of a school at a time: the collector grants a lease per school. The speed
endpoints must take a client that leaves mid-transfer (the agent's engine closes its
streams at its deadline) without logging an error.
"""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import httpx
import pytest
from support.processes import CollectorProcess, wait_until

from collector.db.engine import open_engine
from collector.db.migrate import upgrade
from collector.leases import GRACE_SECONDS, release_lease, request_lease
from collector.registry import (
    AgentIdentity,
    add_board,
    add_school,
    authenticate_agent,
    create_enrolment_code,
)

pytestmark = pytest.mark.both_stores

LEASE = "/api/v1/speed/lease"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def identity(site, name: str, school: str = "test-board/test-school") -> AgentIdentity:  # type: ignore[no-untyped-def]
    return authenticate_agent(site.engine, site.enroll(name, school))


def test_one_agent_of_a_school_at_a_time_until_the_lease_ends(site) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    first = authenticate_agent(site.engine, site.credential)
    second = identity(site, "pi-2")
    granted = request_lease(site.engine, first, 120, clock)
    assert granted.granted and granted.lease_id and len(granted.lease_id) >= 24
    assert granted.expires_at_seconds == clock.now + 120 + GRACE_SECONDS
    assert granted.retry_after_seconds is None

    clock.now += 20
    refused = request_lease(site.engine, second, 60, clock)
    assert not refused.granted and refused.lease_id is None
    assert refused.retry_after_seconds == pytest.approx(100 + GRACE_SECONDS)

    # The lease ends by itself: at its expiry, not a moment before.
    clock.now = granted.expires_at_seconds - 0.01
    assert not request_lease(site.engine, second, 60, clock).granted
    clock.now = granted.expires_at_seconds
    taken = request_lease(site.engine, second, 60, clock)
    assert taken.granted and taken.lease_id != granted.lease_id
    assert not request_lease(site.engine, first, 60, clock).granted


def test_the_holder_asking_again_gets_a_fresh_lease_that_replaces_its_old_one(site) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    holder = authenticate_agent(site.engine, site.credential)
    other = identity(site, "pi-2")
    old = request_lease(site.engine, holder, 30, clock)
    clock.now += 25
    renewed = request_lease(site.engine, holder, 300, clock)
    assert renewed.granted and renewed.lease_id != old.lease_id
    assert renewed.expires_at_seconds == clock.now + 300 + GRACE_SECONDS
    # The old id ends nothing any more: the renewed lease still keeps the other out.
    assert old.lease_id and not release_lease(site.engine, holder, old.lease_id)
    clock.now += 60
    assert not request_lease(site.engine, other, 30, clock).granted
    assert site.sql("SELECT count(*) FROM bandwidth_leases") == [(1,)]


def test_release_ends_only_the_callers_own_lease(site) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    holder = authenticate_agent(site.engine, site.credential)
    other = identity(site, "pi-2")
    lease = request_lease(site.engine, holder, 120, clock)
    assert lease.lease_id
    # Another agent of the school cannot end it, even knowing its id.
    assert not release_lease(site.engine, other, lease.lease_id)
    assert not request_lease(site.engine, other, 30, clock).granted
    assert release_lease(site.engine, holder, lease.lease_id)
    assert not release_lease(site.engine, holder, lease.lease_id)  # nothing left to end
    assert request_lease(site.engine, other, 30, clock).granted


def test_schools_take_their_turns_independently(site) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    add_school(site.engine, "test-board", "Other School")
    here = authenticate_agent(site.engine, site.credential)
    there = identity(site, "pi", "test-board/other-school")
    assert request_lease(site.engine, here, 600, clock).granted
    assert request_lease(site.engine, there, 600, clock).granted
    assert not request_lease(site.engine, identity(site, "pi-2"), 10, clock).granted


def test_agents_racing_on_separate_connections_get_one_lease(site) -> None:  # type: ignore[no-untyped-def]
    agents = [identity(site, f"pi-{n}") for n in range(2, 10)]
    # Each with its own engine, as separate processes would be: SQLite's lock decides.
    engines = [open_engine(site.db_url) for _ in agents]
    start = threading.Barrier(len(agents))
    answers = []

    def ask(agent: AgentIdentity, engine: object) -> None:
        start.wait()
        answers.append(request_lease(engine, agent, 60))  # type: ignore[arg-type]

    threads = [threading.Thread(target=ask, args=pair) for pair in zip(agents, engines, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for engine in engines:
        engine.dispose()
    assert len(answers) == len(agents)
    assert sum(answer.granted for answer in answers) == 1
    assert all(0 < (a.retry_after_seconds or 0) <= 60 + GRACE_SECONDS
               for a in answers if not a.granted)


def test_two_agents_of_one_school_take_turns_over_http(site) -> None:  # type: ignore[no-untyped-def]
    first = site.auth
    second = {"Authorization": f"Bearer {site.enroll('pi-2')}"}
    answer = site.client.post(LEASE, json={"seconds": 90}, headers=first)
    assert answer.status_code == 200, answer.text
    lease = answer.json()
    assert lease["granted"] is True and lease["expires_at_seconds"] > 0

    waiting = site.client.post(LEASE, json={"seconds": 90}, headers=second).json()
    assert waiting["granted"] is False and waiting["lease_id"] is None
    assert 90 < waiting["retry_after_seconds"] <= 90 + GRACE_SECONDS

    # The second agent cannot end the first one's turn; ending an unknown one is fine.
    assert site.client.delete(f"{LEASE}/{lease['lease_id']}", headers=second).status_code == 204
    assert site.client.delete(f"{LEASE}/no-such-lease", headers=second).status_code == 204
    assert site.client.post(LEASE, json={"seconds": 90}, headers=second).json()["granted"] is False

    assert site.client.delete(f"{LEASE}/{lease['lease_id']}", headers=first).status_code == 204
    turn = site.client.post(LEASE, json={"seconds": 30}, headers=second).json()
    assert turn["granted"] is True
    # Ending an old lease again changes nothing for the new holder.
    assert site.client.delete(f"{LEASE}/{lease['lease_id']}", headers=first).status_code == 204
    assert site.client.post(LEASE, json={"seconds": 30}, headers=first).json()["granted"] is False


def test_lease_requests_are_checked(site) -> None:  # type: ignore[no-untyped-def]
    assert site.client.post(LEASE, json={"seconds": 60}).status_code == 401
    assert site.client.delete(f"{LEASE}/anything").status_code == 401
    wrong = {"Authorization": "Bearer sna_not-a-credential"}
    assert site.client.post(LEASE, json={"seconds": 60}, headers=wrong).status_code == 401
    for body in ({"seconds": 601}, {"seconds": 0}, {}, {"seconds": 60, "school": "x"},
                 {"seconds": "soon"}):
        answer = site.client.post(LEASE, json=body, headers=site.auth)
        assert answer.status_code == 422, body
        detail = answer.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail, detail
    assert "seconds" in site.client.post(LEASE, json={"seconds": 601}, headers=site.auth
                                         ).json()["detail"]
    long_id = "x" * 65
    assert site.client.delete(f"{LEASE}/{long_id}", headers=site.auth).status_code == 422
    assert site.sql("SELECT count(*) FROM bandwidth_leases") == [(0,)]


def test_a_failing_store_answers_503_to_a_lease(site) -> None:  # type: ignore[no-untyped-def]
    site.sql("DROP TABLE bandwidth_leases")
    for answer in (site.client.post(LEASE, json={"seconds": 60}, headers=site.auth),
                   site.client.delete(f"{LEASE}/some-id", headers=site.auth)):
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"


# --- clients that leave mid-transfer, against the real server ------------------------------


def _connect(collector: CollectorProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", collector.port), timeout=10)


def _abort(sock: socket.socket) -> None:
    """Close with a reset, as a process killed mid-transfer does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_clients_that_leave_mid_transfer_leave_no_error_in_the_log(tmp_path: Path) -> None:
    collector = CollectorProcess(tmp_path)
    # The school and the code straight in the store: quicker than four admin commands.
    engine = open_engine(collector.db_url)
    upgrade(engine)
    add_board(engine, "Test Board")
    add_school(engine, "test-board", "Test School")
    code = create_enrolment_code(engine, "test-school", 1, 600)
    engine.dispose()
    collector.start()
    try:
        credential = httpx.post(f"{collector.url}/api/v1/enroll", timeout=10, json={
            "code": code, "name": "pi", "version": "0.1.0"}).json()["credential"]
        auth = f"Authorization: Bearer {credential}\r\n"
        for close in (socket.socket.close, _abort):
            upload = _connect(collector)
            upload.sendall(f"POST /api/v1/speed/upload HTTP/1.1\r\nHost: test\r\n{auth}"
                           "Content-Length: 50000000\r\n\r\n".encode())
            upload.sendall(b"\x00" * 2_000_000)
            close(upload)

            download = _connect(collector)
            download.sendall(f"GET /api/v1/speed/download?bytes=900000000 HTTP/1.1\r\n"
                             f"Host: test\r\n{auth}\r\n".encode())
            received = 0
            while received < 2_000_000:
                received += len(download.recv(1 << 16))
            close(download)
        # The server is not stuck writing into dead sockets: it answers at once, and a
        # full transfer still works.
        headers = {"Authorization": f"Bearer {credential}"}
        ping = httpx.get(f"{collector.url}/api/v1/speed/ping", headers=headers, timeout=5)
        assert ping.status_code == 204 and ping.elapsed.total_seconds() < 1
        whole = httpx.get(f"{collector.url}/api/v1/speed/download?bytes=3000000", headers=headers,
                          timeout=10)
        assert len(whole.content) == 3_000_000
        wait_until(lambda: collector.log_path.read_text().count("speed/download") >= 3, 10,
                   "the downloads in the access log")
    finally:
        collector.stop()
    log = collector.log_path.read_text()
    for sign in ("Traceback", "Exception in ASGI application", "socket.send() raised",
                 "ERROR", "returned without"):
        assert sign not in log, log[-3000:]

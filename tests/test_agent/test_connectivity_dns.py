"""DNS resolution time (agent/probes/connectivity/dnsquery.py) against the hand-written test
server (tests/support/dns_server.py) on 127.0.0.1 and ::1, and resolv.conf parsing."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.dns_server import (
    NOERROR,
    REFUSED,
    TYPE_CNAME,
    DnsServer,
    Query,
    Record,
    address_record,
    build_response,
    encode_name,
)
from support.tools import unavailable

from agent.probes.connectivity.dnsquery import DnsOutcome, Resolver, query_all, resolvers

ZONE = {"school.test": "10.203.0.10", "v6only.test": "fd00:203::10",
        "both.test": ["10.203.0.11", "fd00:203::11"]}
DNS_SERVER_SCRIPT = Path(__file__).parents[1] / "support" / "dns_server.py"


def local(server: DnsServer, label: str = "test") -> Resolver:
    return Resolver(label, server.host, server.port)


def ask(resolver: Resolver, name: str, timeout: float = 2.0, qtype: str = "A") -> DnsOutcome:
    [outcome] = query_all([resolver], name, timeout, qtype)
    return outcome


def unused_udp_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def silent_udp(host: str = "127.0.0.1") -> Iterator[int]:
    """A bound UDP port that receives and never answers: a resolver that is gone quiet."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        yield int(sock.getsockname()[1])


def ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError as exc:
        unavailable(f"IPv6 loopback (::1) is not available here: {exc.strerror or exc}")


# --- answers ----------------------------------------------------------------------------


def test_an_answer_is_timed_from_send_to_answer() -> None:
    with DnsServer("127.0.0.1", 0, ZONE) as server:
        outcome = ask(local(server), "school.test")
        assert outcome.error is None
        assert outcome.seconds is not None and 0 < outcome.seconds < 0.5
        assert outcome.name == "school.test" and outcome.resolver == local(server)
        # What went on the wire: one question, recursion desired, the name asked.
        [query] = server.queries
        assert query.name == "school.test" and query.qtype == 1 and query.flags & 0x0100


def test_a_slow_server_shows_in_the_time() -> None:
    with DnsServer("127.0.0.1", 0, ZONE, delay=0.2) as server:
        outcome = ask(local(server), "school.test")
    assert outcome.error is None
    assert outcome.seconds is not None and 0.2 <= outcome.seconds < 0.6


def test_an_alias_counts_when_its_target_has_an_address() -> None:
    with DnsServer("127.0.0.1", 0, ZONE, cnames={"www.school.test": "school.test"}) as server:
        assert ask(local(server), "WWW.School.Test.").error is None  # case and trailing dot


def test_an_alias_to_a_name_without_an_address_is_no_answer() -> None:
    def alias_only(query: Query) -> list[bytes]:
        cname = Record(query.name, TYPE_CNAME, encode_name("elsewhere.test"))
        # An A record for a name that is not in the chain must not count either.
        stray = address_record("unrelated.test", "10.203.0.99")
        return [build_response(query, NOERROR, [cname, stray])]

    with DnsServer("127.0.0.1", 0, handler=alias_only) as server:
        outcome = ask(local(server), "www.school.test")
    assert (outcome.seconds, outcome.error) == (None, "no A record in the answer")


def test_ipv6_resolver_and_aaaa() -> None:
    ipv6_loopback()
    with DnsServer("::1", 0, ZONE) as server:
        resolver = local(server)
        assert ask(resolver, "v6only.test", qtype="AAAA").error is None
        assert ask(resolver, "both.test", qtype="AAAA").error is None
        assert ask(resolver, "v6only.test", qtype="A").error == "no A record in the answer"
        assert ask(resolver, "school.test", qtype="AAAA").error == "no AAAA record in the answer"


# --- failures, one line each -------------------------------------------------------------


def test_nxdomain_and_servfail() -> None:
    with DnsServer("127.0.0.1", 0, ZONE, servfail=["broken.test"]) as server:
        nx, sf = ask(local(server), "missing.test"), ask(local(server), "broken.test")
    assert (nx.seconds, nx.error) == (None, "NXDOMAIN")
    assert (sf.seconds, sf.error) == (None, "SERVFAIL")


def test_refused_and_truncated() -> None:
    def refuse(query: Query) -> list[bytes]:
        if query.name == "refused.test":
            return [build_response(query, REFUSED)]
        return [build_response(query, NOERROR, [address_record(query.name, "10.203.0.1")], truncated=True)]

    with DnsServer("127.0.0.1", 0, handler=refuse) as server:
        assert ask(local(server), "refused.test").error == "REFUSED"
        assert ask(local(server), "big.test").error == "truncated answer"


def test_a_silent_server_times_out_after_the_timeout() -> None:
    with silent_udp() as port:
        began = time.monotonic()
        outcome = ask(Resolver("quiet", "127.0.0.1", port), "school.test", timeout=0.3)
        elapsed = time.monotonic() - began
    assert (outcome.seconds, outcome.error) == (None, "timeout after 0.3 s")
    assert 0.3 <= elapsed < 0.6


def test_nothing_listening_is_port_unreachable_at_once() -> None:
    began = time.monotonic()
    outcome = ask(Resolver("gone", "127.0.0.1", unused_udp_port()), "school.test", timeout=2.0)
    assert (outcome.seconds, outcome.error) == (None, "port unreachable")
    assert time.monotonic() - began < 1.0  # the ICMP error ends the wait, not the timeout


def test_resolvers_are_asked_at_once_not_one_after_another() -> None:
    with silent_udp() as quiet1, silent_udp() as quiet2, silent_udp() as quiet3, \
            DnsServer("127.0.0.1", 0, ZONE) as server:
        chosen = [Resolver("q1", "127.0.0.1", quiet1), local(server, "answers"),
                  Resolver("q2", "127.0.0.1", quiet2), Resolver("q3", "127.0.0.1", quiet3),
                  Resolver("gone", "127.0.0.1", unused_udp_port())]
        began = time.monotonic()
        outcomes = query_all(chosen, "school.test", 0.4)
        elapsed = time.monotonic() - began
    assert 0.4 <= elapsed < 0.8  # about one timeout; asked in turn it would be 1.2 s or more
    assert [o.resolver for o in outcomes] == chosen  # in the order given
    assert [o.error for o in outcomes] == ["timeout after 0.4 s", None, "timeout after 0.4 s",
                                           "timeout after 0.4 s", "port unreachable"]
    answered = outcomes[1].seconds
    assert answered is not None and answered < 0.2


def test_forged_answers_are_ignored() -> None:
    """A wrong id or a different question is a spoofed or stray datagram: wait for ours."""
    def forge_first(query: Query) -> list[bytes]:
        good = [address_record(query.name, "10.203.0.10")]
        other_question = encode_name("evil.test") + b"\x00\x01\x00\x01"
        return [build_response(query, NOERROR, good, ident=query.ident ^ 0x5A5A),
                build_response(query, NOERROR, good, question=other_question),
                build_response(query, REFUSED, ident=(query.ident + 1) & 0xFFFF),
                build_response(query, NOERROR, good)]

    def forge_only(query: Query) -> list[bytes]:
        return [build_response(query, NOERROR, [address_record(query.name, "10.203.0.66")],
                               ident=query.ident ^ 1)]

    with DnsServer("127.0.0.1", 0, handler=forge_first) as server:
        assert ask(local(server), "school.test").error is None
    with DnsServer("127.0.0.1", 0, handler=forge_only) as server:
        assert ask(local(server), "school.test", timeout=0.3).error == "timeout after 0.3 s"


def test_query_ids_are_random() -> None:
    with DnsServer("127.0.0.1", 0, ZONE) as server:
        for _ in range(8):
            ask(local(server), "school.test")
        ids = {query.ident for query in server.queries}
    assert len(ids) >= 6  # eight 16-bit random ids: a repeat is rare, a constant id is a bug


def test_a_bad_name_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="not a name DNS can ask for"):
        query_all([Resolver("x", "127.0.0.1", 53)], "a..b", 1.0)
    with pytest.raises(ValueError, match="query type"):
        query_all([Resolver("x", "127.0.0.1", 53)], "school.test", 1.0, qtype="MX")


# --- the server as a process (as the namespace tests run it) ------------------------------


def test_the_server_script_answers_after_saying_ready() -> None:
    port = unused_udp_port()
    process = subprocess.Popen(
        [sys.executable, str(DNS_SERVER_SCRIPT), "--listen", f"127.0.0.1:{port}",
         "--answer", "school.test=10.203.0.10", "--cname", "www.school.test=school.test",
         "--servfail", "broken.test"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        resolver = Resolver("script", "127.0.0.1", port)
        outcomes = [ask(resolver, name) for name in ("www.school.test", "missing.test", "broken.test")]
        assert [o.error for o in outcomes] == [None, "NXDOMAIN", "SERVFAIL"]
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0  # SIGTERM is a clean stop


# --- which resolvers -----------------------------------------------------------------------

RESOLV_CONF = """\
# Generated by NetworkManager
; an old-style comment
search school.example lan
domain school.example
nameserver 192.168.10.1
nameserver   fe80::1%eth0
nameserver not-an-address
nameserver
options edns0 trust-ad
nameserver 2001:db8::53
"""


def test_system_means_the_nameservers_of_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(RESOLV_CONF)
    assert resolvers(["system"], conf) == [
        Resolver("system", "192.168.10.1", 53), Resolver("system", "fe80::1%eth0", 53),
        Resolver("system", "2001:db8::53", 53)]


def test_resolv_conf_without_a_nameserver_is_a_clear_error(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# nothing here\nsearch lan\nnameserver bogus\n")
    with pytest.raises(ValueError, match=r"names no usable nameserver") as caught:
        resolvers(["system"], conf)
    assert "\n" not in str(caught.value) and str(conf) in str(caught.value)
    with pytest.raises(ValueError, match=r"cannot read .*missing"):
        resolvers(["system"], tmp_path / "missing")


def test_configured_servers_with_and_without_port(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 10.203.0.1\n")
    assert resolvers(["9.9.9.9", "9.9.9.9:5353", "[2001:db8::1]:53", "2606:4700:4700::1111", "system"],
                     conf) == [
        Resolver("9.9.9.9", "9.9.9.9", 53), Resolver("9.9.9.9:5353", "9.9.9.9", 5353),
        Resolver("[2001:db8::1]:53", "2001:db8::1", 53),
        Resolver("2606:4700:4700::1111", "2606:4700:4700::1111", 53),
        Resolver("system", "10.203.0.1", 53)]
    with pytest.raises(ValueError, match="bad port"):
        resolvers(["9.9.9.9:99999"], conf)


def test_a_server_given_by_name_is_looked_up_once() -> None:
    [resolver] = resolvers(["localhost:5353"])  # the one name a test may resolve
    assert resolver.label == "localhost:5353" and resolver.port == 5353
    assert resolver.host in ("127.0.0.1", "::1")


def test_an_unresolvable_server_name_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # No real lookup: that would ask the machine's resolver, a real address.
    def no_such_name(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    with pytest.raises(ValueError, match=r"DNS server 'dns.school.example': cannot resolve "
                                         r"dns.school.example: Name or service not known"):
        resolvers(["dns.school.example"])


def test_a_link_local_resolver_on_a_missing_interface_is_a_clear_error() -> None:
    """resolv.conf written for another machine: the scope names an interface not here
    (nothing is sent: the address cannot even be formed)."""
    outcome = ask(Resolver("system", "fe80::53%schoolnet-none0", 53), "school.test")
    assert outcome.seconds is None
    assert outcome.error is not None
    assert outcome.error.startswith("fe80::53%schoolnet-none0 is not a usable address here (")

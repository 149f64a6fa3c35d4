"""The SNMP census source against a fake SNMP agent on 127.0.0.1 replaying recorded walks.

The walks are in tests/fixtures/users/ (each file says where it was recorded); the fake
agent (tests/support/fake_snmp.py) encodes its answers with a BER codec of its own. A test
against Net-SNMP's snmpd is in test_users_snmpd.py.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest
from support.fake_snmp import GET, GET_BULK, FakeSnmpAgent, gauge32, integer, octets, walk_rows

from agent.config import SnmpCensusConfig
from agent.probes.users import snmp
from agent.probes.users.census import CensusUnavailable, DeviceKeys

FIXTURES = Path(__file__).parent.parent / "fixtures" / "users"
BABAR = walk_rows(FIXTURES / "snmpwalk-ipNetToMediaPhysAddress-babar.txt")
DEBIAN = walk_rows(FIXTURES / "snmpwalk-ipNetToMediaPhysAddress-debian.txt")
ARP_TABLE = (1, 3, 6, 1, 2, 1, 4, 22, 1, 2)
# What else a router's MIB has around the ARP table: the next column (ipNetToMediaNetAddress
# of babar's first row) and sysDescr, so a walk must stop at the end of its subtree.
NEIGHBOURS = {(*ARP_TABLE[:-1], 3, 1, 130, 59, 4, 11): octets(bytes([130, 59, 4, 11])),
              (1, 3, 6, 1, 2, 1, 1, 1, 0): octets(b"SunOS babar 5.5.1 sun4u")}
BABAR_DEVICES = 9  # the fixture's unicast rows; its 5 multicast mappings are no devices


def keys() -> DeviceKeys:
    return DeviceKeys(today=lambda: datetime.date(2025, 3, 3))


def source(*hosts: str, community: str = "public", timeout: float = 0.3, **config: object
           ) -> tuple[snmp.SnmpSource, DeviceKeys]:
    device_keys = keys()
    section = SnmpCensusConfig(hosts=list(hosts), community=community, timeout=timeout, **config)
    return snmp.SnmpSource(section, device_keys, overall_timeout=5.0), device_keys


def test_counts_the_devices_of_a_recorded_arp_table_and_stops_at_the_subtree_end() -> None:
    with FakeSnmpAgent({**BABAR, **NEIGHBOURS}) as agent:
        census, device_keys = source(agent.address)
        result = census.census()
    assert result.source == "snmp"
    assert result.count == BABAR_DEVICES
    # The hashes are the day's keyed hashes of the recorded unicast addresses, nothing else.
    unicast = {value[2:] for value in BABAR.values() if not value[2] & 1}
    assert result.devices == frozenset(device_keys(mac) for mac in unicast)
    assert len(unicast) == BABAR_DEVICES
    assert agent.requests(GET_BULK) == 1 and result.requests == 1


def test_a_table_spanning_several_getbulk_replies_is_walked_to_its_end() -> None:
    with FakeSnmpAgent({**BABAR, **NEIGHBOURS}, max_repetitions=3) as agent:
        result = source(agent.address)[0].census()
    assert result.count == BABAR_DEVICES
    # 14 rows at 3 a reply: 5 replies, the last one reaching past the table.
    assert agent.requests(GET_BULK) == 5
    cursors = [asked[0] for kind, asked in agent.received]
    assert cursors[0] == ARP_TABLE and cursors == sorted(cursors)


def test_end_of_mib_view_ends_the_walk() -> None:
    # The ARP table is the last thing the agent has: the reply runs into endOfMibView.
    with FakeSnmpAgent(BABAR, max_repetitions=20) as agent:
        result = source(agent.address)[0].census()
    assert result.count == BABAR_DEVICES
    assert agent.requests(GET_BULK) == 1


def test_the_same_device_seen_by_two_hosts_counts_once() -> None:
    # A core switch and the router both hold the school's ARP table (here: the same
    # recording), and a second router one more device.
    with FakeSnmpAgent(BABAR) as router, FakeSnmpAgent(BABAR) as switch, FakeSnmpAgent(DEBIAN) as other:
        result = source(router.address, switch.address, other.address)[0].census()
    assert result.count == BABAR_DEVICES + 1
    assert result.devices is not None and len(result.devices) == BABAR_DEVICES + 1


def test_a_wrong_community_gets_no_answer_and_the_message_names_the_host_not_the_community() -> None:
    with FakeSnmpAgent(BABAR, community="s3cret-community") as agent:
        census, _ = source(agent.address, community="wrong-guess", timeout=0.2)
        began = time.monotonic()
        with pytest.raises(CensusUnavailable) as caught:
            census.census()
    assert time.monotonic() - began < 1.5  # two tries of 0.2 s, not the overall timeout
    assert agent.bad_community == 2  # one retry
    message = str(caught.value)
    assert agent.address in message and "did not answer" in message
    assert "wrong-guess" not in message and "s3cret" not in message


@pytest.mark.parametrize(("status", "words"), [(16, "refused access"), (6, "refused access"),
                                               (5, "genErr")])
def test_an_error_status_is_said_plainly(status: int, words: str) -> None:
    with FakeSnmpAgent(BABAR, error_status=status) as agent, pytest.raises(
            CensusUnavailable, match=words) as caught:
        source(agent.address)[0].census()
    assert agent.address in str(caught.value)


def test_a_host_where_nothing_listens() -> None:
    with FakeSnmpAgent(BABAR) as agent:
        address = agent.address
    # The port is closed now: the kernel answers ICMP port unreachable on loopback.
    with pytest.raises(CensusUnavailable, match="nothing listens") as caught:
        source(address, timeout=0.2)[0].census()
    assert address in str(caught.value)


def test_value_oids_are_read_as_counts_and_a_missing_one_is_named() -> None:
    # A count-only setup: an access point's client count (a Gauge32) and no tables.
    ap_clients = (1, 3, 6, 1, 4, 1, 41112, 1, 6, 1, 2, 1, 8, 1)
    with FakeSnmpAgent({ap_clients: gauge32(23), **NEIGHBOURS}) as agent:
        result = source(agent.address, count_oids=[], value_oids=[snmp.format_oid(ap_clients)]
                        )[0].census()
        assert result.count == 23 and result.devices is None
        assert agent.requests(GET) == 1
        with pytest.raises(CensusUnavailable, match=r"has no 1\.3\.6\.1\.4\.1\.41112\.1\.6\.1\.2\.1\.8\.2"):
            source(agent.address, count_oids=[], value_oids=["1.3.6.1.4.1.41112.1.6.1.2.1.8.2"]
                   )[0].census()
        with pytest.raises(CensusUnavailable, match="not a count"):
            source(agent.address, count_oids=[], value_oids=["1.3.6.1.2.1.1.1.0"])[0].census()


def test_a_table_and_a_value_add_up() -> None:
    ap_clients = (1, 3, 6, 1, 4, 1, 41112, 1, 6, 1, 2, 1, 8, 1)
    with FakeSnmpAgent({**BABAR, ap_clients: gauge32(23)}) as agent:
        result = source(agent.address, value_oids=[snmp.format_oid(ap_clients)])[0].census()
    assert result.count == BABAR_DEVICES + 23
    assert result.devices is not None and len(result.devices) == BABAR_DEVICES


def test_a_table_of_other_values_counts_its_rows() -> None:
    # ipNetToMediaType (column 4) of babar's table: integers, one per row.
    types = {(*ARP_TABLE[:-1], 4, *oid[len(ARP_TABLE):]): integer(3) for oid in BABAR}
    with FakeSnmpAgent(types) as agent:
        result = source(agent.address, count_oids=["1.3.6.1.2.1.4.22.1.4"])[0].census()
    assert result.count == len(BABAR) and result.devices is None


def test_a_walk_is_bounded() -> None:
    huge: dict[tuple[int, ...], bytes] = {
        (*ARP_TABLE, 1, 10, 0, n // 256, n % 256): integer(1) for n in range(snmp.MAX_ROWS + 1)}
    with FakeSnmpAgent(huge) as agent, pytest.raises(CensusUnavailable, match="more than 10000 rows"):
        source(agent.address, timeout=2.0)[0].census()


def test_the_overall_timeout_bounds_many_silent_hosts() -> None:
    agents = [FakeSnmpAgent(BABAR, silent=True) for _ in range(4)]
    for agent in agents:
        agent.__enter__()
    try:
        section = SnmpCensusConfig(hosts=[a.address for a in agents], timeout=0.4)
        census = snmp.SnmpSource(section, keys(), overall_timeout=0.5)
        began = time.monotonic()
        with pytest.raises(CensusUnavailable, match=r"did not answer|ran out of time"):
            census.census()
        assert time.monotonic() - began < 1.0
    finally:
        for agent in agents:
            agent.__exit__(None, None, None)


def test_configuration_mistakes_are_reported() -> None:
    with pytest.raises(CensusUnavailable, match="no SNMP hosts"):
        source()[0].census()
    with pytest.raises(CensusUnavailable, match="dotted numbers"):
        source("127.0.0.1:9", count_oids=["IP-MIB::ipNetToMediaPhysAddress"])[0].census()


# --- the BER codec, against encodings written out in the standards -------------------------


def test_ber_matches_x690_and_rfc_examples() -> None:
    # X.690 §8.19.5's example: {2 100 3} is 06 03 81 34 03.
    assert snmp.encode_oid((2, 100, 3)) == bytes.fromhex("0603813403")
    assert snmp.decode_oid(bytes.fromhex("813403")) == (2, 100, 3)
    # sysDescr.0 as every SNMP capture shows it.
    assert snmp.encode_oid((1, 3, 6, 1, 2, 1, 1, 1, 0)) == bytes.fromhex("06082b06010201010100")
    for value, encoded in [(0, "020100"), (127, "02017f"), (128, "02020080"), (-128, "020180"),
                           (-129, "0202ff7f"), (2**31 - 1, "02047fffffff")]:
        assert snmp.encode_integer(value) == bytes.fromhex(encoded)
        assert snmp.decode_integer(bytes.fromhex(encoded)[2:]) == value
    assert snmp.encode_length(300) == bytes.fromhex("82012c")
    # A Counter32 at its top without the padding octet some agents omit reads unsigned.
    assert snmp.decode_unsigned(bytes.fromhex("ffffffff")) == 2**32 - 1


def test_a_get_request_is_byte_for_byte_what_net_snmp_sends() -> None:
    # Captured here from Net-SNMP 5.9.3: `snmpget -v2c -c public 127.0.0.1:PORT
    # 1.3.6.1.2.1.1.1.0` (request-id 0x4d7fdde3), the layout of RFC 1157 §4 with version 1.
    captured = bytes.fromhex("302902010104067075626c6963a01c02044d7fdde3020100020100"
                             "300e300c06082b060102010101000500")
    request = snmp.encode_request(b"public", snmp.GET_REQUEST, 0x4D7FDDE3, [(1, 3, 6, 1, 2, 1, 1, 1, 0)])
    assert request == captured


def test_a_hostile_object_identifier_is_refused_at_once() -> None:
    # One arc of 64 kB in a reply: before the bound it cost 0.3 s of CPU per datagram, and a
    # flood of them during the wait for the real answer kept the agent's CPU busy.
    for content in (b"\xff" * 65000 + b"\x01", b"\x2b" + b"\x01" * (snmp.MAX_OID_ARCS * 5)):
        began = time.process_time()
        with pytest.raises(snmp.BerError):
            snmp.decode_oid(content)
        assert time.process_time() - began < 0.05
    # The largest arcs the SMI allows still decode, in both places the first octets can be.
    assert snmp.decode_oid(snmp.encode_oid((1, 3, 2**32 - 1))[2:]) == (1, 3, 2**32 - 1)
    assert snmp.decode_oid(snmp.encode_oid((2, 2**32 - 1))[2:]) == (2, 2**32 - 1)

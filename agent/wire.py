"""The wire format between agent and collector: its one definition.

The agent builds these objects and the collector validates against them; the collector
imports this module, the agent never imports the collector. Every field and kind is
described in ``agent/WIRE.md``; change both together, and only on purpose.

Units are base units throughout: seconds, bytes, bytes per second, ratios where 1 means
100 %, Unix seconds for points in time.
"""

from __future__ import annotations

import ipaddress
import json
import re
import string
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

WIRE_VERSION = 1

# Limits of one batch. The collector answers 413 above them and the agent splits.
MAX_RECORDS_PER_BATCH = 1000
MAX_COMPRESSED_BODY_BYTES = 1 * 1024 * 1024
MAX_DECOMPRESSED_BODY_BYTES = 8 * 1024 * 1024

INGEST_PATH = "/api/v1/ingest"
ENROLL_PATH = "/api/v1/enroll"
AGENT_SETTINGS_PATH = "/api/v1/agent/settings"
SPEED_DOWNLOAD_PATH = "/api/v1/speed/download"
SPEED_UPLOAD_PATH = "/api/v1/speed/upload"
SPEED_PING_PATH = "/api/v1/speed/ping"
SPEED_LEASE_PATH = "/api/v1/speed/lease"

STREAM_ID_PATTERN = r"^[0-9a-f]{32}$"
ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"


class _Strict(BaseModel):
    # No NaN or Infinity (Python's json accepts them; databases and Prometheus choke).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# Every integer fits a signed 64-bit column.
INT64_MAX = 2**63 - 1


# --- the record -----------------------------------------------------------------------


class ClockStamp(_Strict):
    """When a record was measured, with what is needed to repair a wrong wall clock.

    A Raspberry Pi has no real-time clock: after a power cut it boots with the time it
    last saved until NTP answers. ``since_boot_seconds`` (CLOCK_BOOTTIME, counts through
    suspend) and ``boot_id`` let the collector re-anchor records of one boot to a later
    record of the same boot taken with a synchronised clock.
    """

    wall_time_seconds: float = Field(description="Agent wall clock, Unix seconds.")
    boot_id: str = Field(min_length=1, max_length=64, description="Kernel boot id.")
    since_boot_seconds: float = Field(ge=0, description="Seconds since boot.")
    clock_synchronized: bool | None = Field(
        description="Kernel NTP state at measurement time; null when the OS cannot say."
    )


class Record(_Strict):
    """One measurement (or one failed attempt at one)."""

    stream_id: str = Field(pattern=STREAM_ID_PATTERN)
    seq: int = Field(ge=1, le=INT64_MAX, description="Position in the stream; never reused.")
    kind: str = Field(min_length=1, max_length=64)
    clock: ClockStamp
    ok: bool = Field(description="False when the probe could not measure.")
    error: str | None = Field(default=None, max_length=1000)
    payload: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _failed_records_say_why(self) -> Record:
        if not self.ok and not self.error:
            raise ValueError("a record with ok=false must carry an error")
        return self


# --- payloads, one model per kind -----------------------------------------------------


class SystemPayload(_Strict):
    """The agent's host: is the measuring machine itself healthy?"""

    cpu_usage_ratio: float = Field(ge=0, le=1)
    cpu_count: int = Field(ge=1, le=INT64_MAX)
    load_average_1m: float | None = Field(default=None, ge=0)
    load_average_5m: float | None = Field(default=None, ge=0)
    load_average_15m: float | None = Field(default=None, ge=0)
    memory_total_bytes: int = Field(ge=0, le=INT64_MAX)
    memory_available_bytes: int = Field(ge=0, le=INT64_MAX)
    temperature_celsius: float | None = None
    uplink_interface: str | None = Field(default=None, max_length=64)
    uplink_speed_bytes_per_second: int | None = Field(default=None, ge=0, le=INT64_MAX)
    uplink_received_bytes_total: int | None = Field(default=None, ge=0, le=INT64_MAX)
    uplink_sent_bytes_total: int | None = Field(default=None, ge=0, le=INT64_MAX)
    agent_resident_memory_bytes: int = Field(ge=0, le=INT64_MAX)
    host_boot_time_seconds: float | None = None
    state_dir_free_bytes: int | None = Field(default=None, ge=0, le=INT64_MAX)


Direction = Literal["download", "upload"]


class BandwidthPayload(_Strict):
    """One bandwidth test: both directions, with what is needed to judge it.

    Rates are goodput (application payload) over each direction's stable window, the TCP
    slow start left out; ``*_bytes`` and ``*_seconds`` cover the whole transfer.
    """

    backend: str = Field(max_length=32)
    server: str = Field(max_length=500, description="Base URL or host of the test server.")
    streams: int = Field(ge=1, le=INT64_MAX, description="Most parallel TCP streams used.")
    download_bytes_per_second: float | None = Field(default=None, ge=0)
    download_bytes: int = Field(default=0, ge=0, le=INT64_MAX)
    download_seconds: float = Field(default=0, ge=0)
    download_window_seconds: float | None = Field(default=None, ge=0)
    download_streams: int | None = Field(default=None, ge=1, le=INT64_MAX)
    download_loaded_latency_seconds: float | None = Field(default=None, ge=0)
    download_retransmits: int | None = Field(default=None, ge=0, le=INT64_MAX)
    download_error: str | None = Field(default=None, max_length=1000)
    upload_bytes_per_second: float | None = Field(default=None, ge=0)
    upload_bytes: int = Field(default=0, ge=0, le=INT64_MAX)
    upload_seconds: float = Field(default=0, ge=0)
    upload_window_seconds: float | None = Field(default=None, ge=0)
    upload_streams: int | None = Field(default=None, ge=1, le=INT64_MAX)
    upload_loaded_latency_seconds: float | None = Field(default=None, ge=0)
    upload_retransmits: int | None = Field(default=None, ge=0, le=INT64_MAX)
    upload_error: str | None = Field(default=None, max_length=1000)
    idle_latency_seconds: float | None = Field(default=None, ge=0)
    # What the validity checks looked at (null where the OS cannot say).
    interface: str | None = Field(default=None, max_length=64,
                                  description="The agent's interface the test ran over.")
    interface_wireless: bool | None = None
    interface_speed_bytes_per_second: int | None = Field(default=None, ge=0, le=INT64_MAX)
    cpu_usage_ratio: float | None = Field(
        default=None, ge=0, le=1, description="Host CPU busy during the test (1 = every core).")
    agent_cpu_seconds: float | None = Field(default=None, ge=0,
                                            description="CPU time the test itself used.")
    download_cross_traffic_bytes: int | None = Field(default=None, ge=0, le=INT64_MAX)
    upload_cross_traffic_bytes: int | None = Field(default=None, ge=0, le=INT64_MAX)
    contract_download_bytes_per_second: float | None = Field(default=None, gt=0)
    contract_upload_bytes_per_second: float | None = Field(default=None, gt=0)
    # The retest on a second server, made when a direction came out below the contract.
    retest_server: str | None = Field(default=None, max_length=500)
    retest_download_bytes_per_second: float | None = Field(default=None, ge=0)
    retest_upload_bytes_per_second: float | None = Field(default=None, ge=0)
    retest_error: str | None = Field(default=None, max_length=1000)
    invalid_reasons: list[str] = Field(
        default_factory=list, max_length=20,
        description="Why this result must not be judged; empty = valid.")
    leased: bool | None = Field(
        default=None, description="Whether the collector granted the school's turn; null "
        "when not asked (measure), false when the collector could not be reached."
    )
    lease_wait_seconds: float | None = Field(
        default=None, ge=0, description="How long the agent waited for the school's turn: the "
        "test itself began this long after the record's clock.")
    concurrent_devices: int | None = Field(
        default=None, ge=0, le=INT64_MAX, description="Devices on the network at test time, when counted."
    )

    @model_validator(mode="after")
    def _missing_rate_says_why(self) -> BandwidthPayload:
        for direction in ("download", "upload"):
            if (
                getattr(self, f"{direction}_bytes_per_second") is None
                and not getattr(self, f"{direction}_error")
            ):
                raise ValueError(f"{direction}_bytes_per_second is null without {direction}_error")
        return self


# --- connectivity: windows of echo, DNS and HTTP probes, and outages --------------------

EchoMethod = Literal["icmp", "icmp-raw", "tcp"]
EchoRole = Literal["gateway", "internet"]
# isp: no internet target answered while the gateway did; lan: the gateway failed too;
# internet: no internet target answered and no gateway was probed (cannot say which side);
# dns: echo fine, but the machine's own resolvers (or, without them, all) did not answer.
OutageKind = Literal["isp", "lan", "dns", "internet"]
# Where a bad window's trouble is: the school LAN (up to the gateway), the provider's access
# (the first hops past the gateway), further away, nowhere, or not decidable.
Segment = Literal["none", "lan", "access", "beyond", "unknown"]

Seconds = Field(default=None, ge=0)


class EchoStats(_Strict):
    """One echo target over one window: the gateway or an internet target."""

    target: str = Field(max_length=255, description="The target as configured.")
    address: str | None = Field(default=None, max_length=64, description="The address probed.")
    role: EchoRole
    method: EchoMethod | None = None
    sent: int = Field(ge=0, le=INT64_MAX)
    received: int = Field(ge=0, le=INT64_MAX)
    loss_ratio: float | None = Field(default=None, ge=0, le=1,
                                     description="Null when nothing could be sent.")
    latency_min_seconds: float | None = Seconds
    latency_mean_seconds: float | None = Seconds
    latency_p50_seconds: float | None = Seconds
    latency_p90_seconds: float | None = Seconds
    latency_p99_seconds: float | None = Seconds
    latency_max_seconds: float | None = Seconds
    jitter_seconds: float | None = Field(
        default=None, ge=0, description="Mean absolute difference of consecutive round trips "
        "(RFC 3550 style, unsmoothed).")
    error: str | None = Field(default=None, max_length=1000,
                              description="Why probes failed, the latest reason.")


class HopStats(_Strict):
    """TTL-limited probes: the router ``ttl`` hops away, as far as the provider's access."""

    ttl: int = Field(ge=1, le=64)
    address: str | None = Field(default=None, max_length=64,
                                description="The router that answered; null when none did.")
    segment: Literal["lan", "access"]
    sent: int = Field(ge=0, le=INT64_MAX)
    received: int = Field(ge=0, le=INT64_MAX)
    loss_ratio: float | None = Field(default=None, ge=0, le=1)
    latency_p50_seconds: float | None = Seconds
    latency_max_seconds: float | None = Seconds


class DnsStats(_Strict):
    """Resolution time against one resolver over one window."""

    server: str = Field(max_length=255)
    queries: int = Field(ge=0, le=INT64_MAX)
    answered: int = Field(ge=0, le=INT64_MAX, description="Queries answered with an address.")
    failure_ratio: float | None = Field(default=None, ge=0, le=1)
    latency_p50_seconds: float | None = Seconds
    latency_p90_seconds: float | None = Seconds
    latency_max_seconds: float | None = Seconds
    latency_mean_seconds: float | None = Seconds
    error: str | None = Field(default=None, max_length=1000)


class HttpStats(_Strict):
    """Time to first byte of one service the school depends on, over one window."""

    url: str = Field(max_length=500)
    requests: int = Field(ge=0, le=INT64_MAX)
    succeeded: int = Field(ge=0, le=INT64_MAX, description="Requests answered with a status below 500.")
    failure_ratio: float | None = Field(default=None, ge=0, le=1)
    status: int | None = Field(default=None, ge=100, le=599, description="The latest HTTP status.")
    connect_p50_seconds: float | None = Field(
        default=None, ge=0, description="Name lookup plus TCP (and TLS) set-up, median.")
    ttfb_p50_seconds: float | None = Field(
        default=None, ge=0, description="From the start of the request to the first byte of "
        "the response, median.")
    ttfb_p90_seconds: float | None = Seconds
    ttfb_max_seconds: float | None = Seconds
    ttfb_mean_seconds: float | None = Seconds
    error: str | None = Field(default=None, max_length=1000)


class ConnectivityPayload(_Strict):
    """One window of the continuous connectivity probes (the record's clock is its start)."""

    window_seconds: float = Field(gt=0)
    method: EchoMethod | None = Field(default=None, description="How echo probes were sent.")
    up: bool = Field(description="No outage under way at the window's end.")
    down_seconds: float = Field(ge=0, description="Time in this window inside an outage.")
    outage_kind: OutageKind | None = Field(default=None,
                                           description="The outage under way at the window's end.")
    outage_start_seconds: float | None = None
    gateway: EchoStats | None = None
    targets: list[EchoStats] = Field(default_factory=list, max_length=32)
    hops: list[HopStats] = Field(default_factory=list, max_length=32)
    dns: list[DnsStats] = Field(default_factory=list, max_length=32)
    http: list[HttpStats] = Field(default_factory=list, max_length=32)
    segment: Segment = "unknown"
    segment_reason: str = Field(default="", max_length=1000)


class OutagePayload(_Strict):
    """One outage, sent when it ended (the record's clock is its end); delivered late when
    the agent was offline, with these original times."""

    outage_kind: OutageKind
    start_seconds: float = Field(description="Unix seconds, agent clock.")
    end_seconds: float = Field(description="Unix seconds, agent clock.")
    duration_seconds: float = Field(ge=0, description="Measured on the monotonic clock where "
                                    "the agent ran throughout (immune to clock steps).")
    interrupted: bool = Field(default=False, description="The agent stopped during the outage: "
                              "the end is the last time it was seen, not when it was over.")
    detail: str = Field(default="", max_length=1000, description="What failed and what answered.")

    @model_validator(mode="after")
    def _ends_after_start(self) -> OutagePayload:
        if self.end_seconds < self.start_seconds:
            raise ValueError("end_seconds is before start_seconds")
        return self


# --- Wi-Fi: the agent's own link, scans of the school's access points, surveys ----------

Band = Literal["2.4GHz", "5GHz", "6GHz", "60GHz"]
Dbm = Field(default=None, ge=-150, le=30)
BitRate = Field(default=None, ge=0)
Counter64 = Field(default=None, ge=0, le=INT64_MAX)
# The grades a room's coverage can have, best first (thresholds: collector settings).
CoverageGrade = Literal["video", "browsing", "poor", "none"]


class WifiRadio(_Strict):
    """The link to an access point as one tool reported it; null = the tool does not say."""

    source: str = Field(max_length=32, description="The tool or API the values came from.")
    connected: bool = Field(description="Associated with an access point.")
    ssid: str | None = Field(default=None, max_length=64, description="Null when not one of "
                             "the school's own networks (or hidden by the OS).")
    bssid: str | None = Field(default=None, max_length=17,
                              description="The school's access point, aa:bb:cc:dd:ee:ff.")
    signal_dbm: float | None = Dbm
    signal_percent: float | None = Field(default=None, ge=0, le=100, description="What the "
                                         "tool printed when it printed a percentage.")
    signal_converted: bool = Field(default=False, description="signal_dbm was converted from "
                                   "signal_percent with the platform's documented mapping.")
    noise_dbm: float | None = Dbm
    frequency_hertz: int | None = Field(default=None, ge=0, le=INT64_MAX)
    channel: int | None = Field(default=None, ge=0, le=255)
    band: Band | None = None
    channel_width_hertz: int | None = Field(default=None, ge=0, le=INT64_MAX)
    rx_bitrate_bits_per_second: float | None = BitRate
    tx_bitrate_bits_per_second: float | None = BitRate
    phy_mode: str | None = Field(default=None, max_length=32)


class WifiAccessPoint(_Strict):
    """One access point of the school's own networks, seen in a scan."""

    bssid: str | None = Field(default=None, max_length=17)
    ssid: str = Field(max_length=64)
    signal_dbm: float | None = Dbm
    signal_converted: bool = False
    frequency_hertz: int | None = Field(default=None, ge=0, le=INT64_MAX)
    channel: int | None = Field(default=None, ge=0, le=255)
    band: Band | None = None
    station_count: int | None = Field(default=None, ge=0, le=65535, description="Stations "
                                      "the access point says it has (BSS Load element).")
    channel_utilization_ratio: float | None = Field(default=None, ge=0, le=1, description=
                                                    "How busy it finds its channel (BSS Load).")
    associated: bool = Field(default=False, description="The one this machine is connected to.")


class WifiChannel(_Strict):
    """Other networks on one channel: counted, never named."""

    band: Band | None = None
    channel: int = Field(ge=0, le=255)
    networks: int = Field(ge=0, le=INT64_MAX, description="Access points of other networks.")
    strongest_signal_dbm: float | None = Dbm


class WifiScan(_Strict):
    """What a scan saw: the school's own access points in full, the rest as counts."""

    access_points: list[WifiAccessPoint] = Field(default_factory=list, max_length=256)
    channels: list[WifiChannel] = Field(default_factory=list, max_length=128)
    other_networks: int | None = Field(default=None, ge=0, le=INT64_MAX,
                                       description="Access points of other networks, in all.")


class WifiPayload(WifiRadio):
    """The agent's own wireless interface and its link, one record per run."""

    interface: str = Field(max_length=64)
    room: str | None = Field(default=None, pattern=ID_PATTERN,
                             description="The room the agent is in (agent setting `room`).")
    room_name: str | None = Field(default=None, max_length=200)
    own_network: bool | None = Field(default=None, description="Connected to one of the "
                                     "school's own networks; null when not connected.")
    tx_retries_total: int | None = Field(default=None, ge=0, le=INT64_MAX,
                                         description="Since the association.")
    tx_failed_total: int | None = Field(default=None, ge=0, le=INT64_MAX)
    beacon_loss_total: int | None = Field(default=None, ge=0, le=INT64_MAX)
    connected_seconds: float | None = Field(default=None, ge=0)
    scan_error: str | None = Field(default=None, max_length=1000, description="Why the scan "
                                   "due in this run could not be made (a made one is a "
                                   "`wifi_scan` record of its own).")


class WifiScanPayload(WifiScan):
    """A scan by the agent's wireless interface, made every `scan_interval` (its own record,
    so the latest scan stays on /metrics between scans)."""

    interface: str = Field(max_length=64)
    source: str = Field(max_length=32)
    triggered: bool = Field(description="A fresh scan; false: the system's latest cached results.")
    room: str | None = Field(default=None, pattern=ID_PATTERN)
    room_name: str | None = Field(default=None, max_length=200)


SurveyMethod = Literal["walk", "import"]


class SurveyPayload(WifiRadio, WifiScan):
    """One room of a site survey: the link as a laptop saw it there (the median of the
    walk's samples, or one imported capture)."""

    room: str = Field(pattern=ID_PATTERN)
    room_name: str = Field(min_length=1, max_length=200)
    method: SurveyMethod
    samples: int = Field(ge=1, le=10000)
    scanned: bool = Field(default=False, description="access_points and channels come from a "
                          "scan made there; false: no scan (they are empty).")
    signal_min_dbm: float | None = Dbm
    signal_max_dbm: float | None = Dbm


# --- users: how many devices are on the school's network ----------------------------------

UsersSourceName = Literal["arp", "passive", "neighbours", "bss_load", "snmp", "unifi"]


class UsersSourceStats(_Strict):
    """What one census source counted in one window: counts only, never an identity."""

    source: UsersSourceName
    devices: int | None = Field(default=None, ge=0, le=INT64_MAX,
                                description="Distinct devices it saw; null when it failed.")
    daily_devices: int | None = Field(
        default=None, ge=0, le=INT64_MAX, description="Distinct devices it saw today so far "
        "(sources that tell devices apart; randomised MAC addresses inflate it).")
    duration_seconds: float | None = Field(default=None, ge=0)
    rounds: int | None = Field(default=None, ge=0, le=1000, description="ARP rounds sent.")
    requests: int | None = Field(default=None, ge=0, le=INT64_MAX, description="Probes sent.")
    error: str | None = Field(default=None, max_length=1000)


class UsersPayload(_Strict):
    """One census window (the record's clock is its start)."""

    window_seconds: float = Field(gt=0)
    concurrent_devices: int = Field(ge=0, le=INT64_MAX, description="Distinct devices over all "
                                    "sources (see agent/WIRE.md for how sources combine).")
    daily_devices: int | None = Field(default=None, ge=0, le=INT64_MAX)
    hour_peak_devices: int | None = Field(default=None, ge=0, le=INT64_MAX, description=
                                          "The most concurrent devices of a window this hour.")
    sources: list[UsersSourceStats] = Field(default_factory=list, max_length=16)


# A failed record whose error starts with this is a run the probe chose not to make
# (the traffic budget is spent, another agent of the school kept the turn): not a fault.
SKIPPED_PREFIX = "skipped: "


# The kinds the collector accepts, with their payload model. A new probe adds its kind here.
PAYLOADS: dict[str, type[BaseModel]] = {
    "system": SystemPayload,
    "bandwidth": BandwidthPayload,
    "connectivity": ConnectivityPayload,
    "outage": OutagePayload,
    "wifi": WifiPayload,
    "wifi_scan": WifiScanPayload,
    "survey": SurveyPayload,
    "users": UsersPayload,
}

# Kinds that no scheduled probe makes (no runs or failures to count): an outage is an
# event the connectivity probe reports; a survey is a room measured by a person.
EVENT_KINDS = frozenset({"outage", "survey"})


# --- privacy: MAC-shaped values -------------------------------------------------------

# Colon, dash and Cisco-dot notations of a 48-bit hardware address, anywhere in a string.
_MAC_SHAPED = re.compile(
    r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}"
    r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})(?![0-9A-Fa-f])"
)

# A cheap necessary condition: every MAC-shaped value contains ":hh:hh:" / "-hh-hh-" or
# ".hhhh." (h: a hex digit). Searching for that is four times faster than the full pattern, so whole
# bodies are screened with it and only a hit leads to the precise walk.
_MAC_HINT = r"[:-][0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-]|\.[0-9A-Fa-f]{4}\."
_MAC_HINT_TEXT = re.compile(_MAC_HINT)
_MAC_HINT_BYTES = re.compile(_MAC_HINT.encode())


def may_contain_mac(text: str | bytes) -> bool:
    """False only when ``text`` certainly holds nothing MAC-shaped."""
    if isinstance(text, bytes):
        return _MAC_HINT_BYTES.search(text) is not None
    return _MAC_HINT_TEXT.search(text) is not None


# Only these field names may hold a MAC-shaped value: the BSSIDs of the school's own
# access points. A pupil's device address never has a place in a payload.
BSSID_FIELDS = frozenset({"bssid", "bssids", "access_point_bssid"})


# A run of hex digits and colons: an IPv6 address is one, and six of its groups can look
# like a MAC (2001:db8:10:20:30:40:50:60). Provider hops and targets are IPv6 addresses.
_COLON_HEX_RUN = re.compile(r"[0-9A-Fa-f:]+")


def is_mac_shaped(text: str) -> bool:
    """Whether ``text`` holds a 48-bit hardware address anywhere, not counting the groups of
    a whole IPv6 address (a MAC inside one, as in "mac:aa:bb:cc:dd:ee:ff", still counts)."""
    return next(_mac_shaped_matches(text), None) is not None


def hide_mac_shaped(text: str, replacement: str = "<address>") -> str:
    """``text`` with every value ``is_mac_shaped`` finds replaced: for reasons that quote a
    tool's output, which the collector would otherwise refuse (and must not see)."""
    parts, end = [], 0
    for match in _mac_shaped_matches(text):
        parts += [text[end:match.start()], replacement]
        end = match.end()
    return "".join(parts) + text[end:] if parts else text


def _mac_shaped_matches(text: str) -> Iterator[re.Match[str]]:
    for match in _MAC_SHAPED.finditer(text):
        run = _COLON_HEX_RUN.match(text, _run_start(text, match.start()))
        if match.group(1) != ":" or run is None or not _is_ipv6(run.group().strip(":")):
            yield match


def _run_start(text: str, index: int) -> int:
    while index > 0 and (text[index - 1] == ":" or text[index - 1] in string.hexdigits):
        index -= 1
    return index


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def find_mac_shaped(value: Any, path: str = "") -> str | None:
    """Return the dotted path of the first MAC-shaped string outside a BSSID field."""
    # Fast path: nearly every record has no MAC-shaped text at all, and one search over
    # its JSON is several times cheaper than walking it.
    if not may_contain_mac(json.dumps(value, ensure_ascii=False, default=str)):
        return None
    for where, text in _strings(value, path):
        if is_mac_shaped(text):
            return where or "(value)"
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if str(key) in BSSID_FIELDS:
                continue
            yield path, str(key)
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def validate_record(raw: Any, may_hold_mac: bool = True) -> Record:
    """Validate one raw record fully: envelope fields, kind, payload, privacy.

    ``may_hold_mac=False`` skips the privacy walk; pass it only when the text the record
    came from holds nothing MAC-shaped at all (one search over a whole batch body is far
    cheaper than a walk per record). Raises ``RecordError`` with a one-line reason; the
    collector turns it into a ``rejected`` status for that record alone.
    """
    from pydantic import ValidationError

    if not isinstance(raw, Mapping):
        raise RecordError("invalid_field", "record is not a JSON object")
    # Privacy first: a MAC-shaped value is rejected whatever else is wrong, so that the
    # reason (and the counter by reason) says what matters most.
    where = find_mac_shaped(raw) if may_hold_mac else None
    if where:
        raise RecordError("mac_address", f"MAC-shaped value in field {where!r}")
    try:
        record = Record.model_validate(raw)
    except ValidationError as exc:
        raise RecordError(_code_of(exc), describe_validation_error(exc)) from None
    model = PAYLOADS.get(record.kind)
    if model is None:
        raise RecordError("unknown_kind", f"unknown kind {record.kind!r}")
    if record.ok or record.payload:
        try:
            model.model_validate(record.payload)
        except ValidationError as exc:
            raise RecordError(
                _code_of(exc), "payload." + describe_validation_error(exc)
            ) from None
    return record


class RecordError(ValueError):
    """A record that cannot be accepted: ``code`` is a short, fixed category (a metric
    label), the message is the one-line reason sent back to the agent."""

    CODES = ("mac_address", "unknown_kind", "unknown_field", "invalid_field")

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _code_of(exc: Any) -> str:
    kinds = {error.get("type") for error in exc.errors()}
    return "unknown_field" if "extra_forbidden" in kinds else "invalid_field"


def describe_validation_error(exc: Any) -> str:
    """One line naming the first bad field, e.g. ``seq: Input should be ... (got -1)``."""
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first.get("loc", ())) or "(value)"
    message = first.get("msg", "invalid")
    more = len(exc.errors()) - 1
    return f"{location}: {message}" + (f" (and {more} more)" if more else "")


# --- the batch and the answer ----------------------------------------------------------


class SeqRange(_Strict):
    """Records ``first..last`` (inclusive) of a stream that the agent gave up on."""

    stream_id: str = Field(pattern=STREAM_ID_PATTERN)
    first: int = Field(ge=1, le=INT64_MAX)
    last: int = Field(ge=1, le=INT64_MAX)
    reason: Literal["evicted", "dead_lettered"]

    @model_validator(mode="after")
    def _ordered(self) -> SeqRange:
        if self.last < self.first:
            raise ValueError("last must be >= first")
        return self


class AgentHealth(_Strict):
    """The agent's own state, sent with every batch."""

    version: str = Field(max_length=64)
    outbox_records: int = Field(ge=0, le=INT64_MAX)
    outbox_bytes: int = Field(ge=0, le=INT64_MAX)
    oldest_record_age_seconds: float | None = Field(default=None, ge=0)
    given_up: list[SeqRange] = Field(
        default_factory=list,
        max_length=10000,
        description="Ranges evicted (outbox full) or dead-lettered since the last acknowledged batch.",
    )


class Batch(_Strict):
    """The body of ``POST /api/v1/ingest``. It carries no agent or school identity: those
    come from the credential."""

    wire_version: Literal[1] = 1
    sent_at_seconds: float
    health: AgentHealth
    # Raw objects on purpose: each record is validated on its own so that one bad record
    # never costs the good ones beside it.
    records: list[dict[str, Any]] = Field(max_length=MAX_RECORDS_PER_BATCH)


RecordState = Literal["accepted", "duplicate", "rejected"]


class RecordResult(_Strict):
    stream_id: str | None
    seq: int | None
    status: RecordState
    reason: str | None = None


class BatchResult(_Strict):
    results: list[RecordResult]
    accounted_through: dict[str, int] = Field(
        description="Per stream: the highest seq up to which every record is stored, "
        "duplicate, rejected or reported given up."
    )


# --- enrolment and settings -----------------------------------------------------------


class EnrollRequest(_Strict):
    code: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=100)
    version: str = Field(max_length=64)


class EnrollResponse(_Strict):
    board: str
    school: str
    agent: str
    credential: str


class CentralSettings(_Strict):
    """Settings the collector holds for an agent: a partial agent config (same keys as
    the agent's TOML file) that the local file overrides."""

    settings: dict[str, Any] = Field(default_factory=dict)
    updated_at_seconds: float | None = None


# --- the school's turn for a bandwidth test --------------------------------------------


class LeaseRequest(_Strict):
    """``POST /api/v1/speed/lease``: may this agent test the school's line now?"""

    seconds: float = Field(gt=0, le=600, description="How long the test may take at most.")


class LeaseAnswer(_Strict):
    granted: bool
    lease_id: str | None = Field(default=None, description="Set when granted; "
                                 "DELETE /api/v1/speed/lease/{lease_id} ends it early.")
    expires_at_seconds: float | None = None
    retry_after_seconds: float | None = Field(
        default=None, description="When refused: when the current holder's lease ends.")

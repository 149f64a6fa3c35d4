"""The agent's configuration.

Lowest to highest: defaults < settings the collector holds for this agent (cached in the
state directory, so they apply offline) < the local TOML file < ``SCHOOLNET_*``
environment variables (``probes.system.interval`` -> ``SCHOOLNET_PROBES__SYSTEM__INTERVAL``).
Every key is documented in ``deploy/agent/agent.example.toml``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from agent.paths import default_state_dir
from agent.units import parse_duration, parse_size, slugify, split_host_port, valid_host
from agent.wire import describe_validation_error

log = logging.getLogger("schoolnet.agent")

CONFIG_ENV = "SCHOOLNET_AGENT_CONFIG"
CENTRAL_CACHE = "central-settings.json"


def _not_a_bool(value: Any) -> Any:
    # pydantic would read `interval = true` as 1 second: a typo must not pass as a number.
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is not a number")
    return value


def _duration(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else _not_a_bool(value)


def _size(value: Any) -> Any:
    return parse_size(value) if isinstance(value, str) else _not_a_bool(value)


# Finite: `1e400` in TOML is infinity, and an interval of infinity never runs.
Duration = Annotated[float, BeforeValidator(_duration), Field(gt=0, allow_inf_nan=False)]
ByteSize = Annotated[int, BeforeValidator(_size), Field(gt=0)]
Count = Annotated[int, BeforeValidator(_not_a_bool)]


class ConfigError(ValueError):
    """A bad configuration; the message is one line naming the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectorConfig(_Section):
    url: str = ""
    ca_bundle: Path | None = None
    timeout: Duration = 30.0


class OutboxConfig(_Section):
    max_bytes: ByteSize = 50_000_000


class UploadConfig(_Section):
    interval: Duration = 60.0
    batch_records: Count = Field(default=500, ge=1, le=1000)
    max_backoff: Duration = 600.0


class SystemProbeConfig(_Section):
    enabled: bool = True
    interval: Duration = 60.0


class Ndt7Config(_Section):
    # M-Lab's locate service: the nearest ndt7 servers, used when `server` is empty.
    locate_url: str = "https://locate.measurementlab.net/v2/nearest/ndt/ndt7"


class SpeedtestConfig(_Section):
    # HTTPS to Ookla's configuration and servers (speedtest-cli's --secure).
    secure: bool = True


class Iperf3Config(_Section):
    # The iperf3 program; the server is `host` or `host:port` (default port 5201).
    binary: str = "iperf3"


_CLOCK_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def _clock_range(value: Any) -> Any:
    if isinstance(value, str) and not _CLOCK_RANGE.match(value.strip()):
        raise ValueError(f"{value!r} is not a time range (write it like 08:30-15:30)")
    return value.strip() if isinstance(value, str) else value


ClockRange = Annotated[str, BeforeValidator(_clock_range)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class BandwidthProbeConfig(_Section):
    enabled: bool = True
    # Unset: `tests_per_day` tests at random times inside `windows`. Set: one test every
    # `interval` (jittered), ignoring the windows (handy for a demo).
    interval: Duration | None = None
    tests_per_day: Count = Field(default=4, ge=1, le=96)
    windows: list[ClockRange] = ["07:00-18:00"]
    days: list[Weekday] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    avoid_lessons: bool = False
    lessons: ClockRange = "08:30-15:30"
    lesson_days: list[Weekday] = ["mon", "tue", "wed", "thu", "fri"]
    # Public by default (M-Lab's ndt7 servers, licence-clean): a school needs no server of
    # its own. The demo and the tests point every backend at local servers.
    backend: Literal["http", "ndt7", "speedtest", "iperf3"] = "ndt7"
    server: str = ""
    retest_server: str = ""
    duration: Duration = 10.0
    max_bytes: ByteSize = 1_000_000_000
    min_streams: Count = Field(default=4, ge=1, le=64)
    max_streams: Count = Field(default=16, ge=1, le=64)
    daily_budget: ByteSize = 5_000_000_000
    monthly_budget: ByteSize = 60_000_000_000
    lease_wait: Duration = 120.0
    require_wired: bool = False
    ndt7: Ndt7Config = Ndt7Config()
    speedtest: SpeedtestConfig = SpeedtestConfig()
    iperf3: Iperf3Config = Iperf3Config()


def _echo_target(value: Any) -> Any:
    if isinstance(value, str) and not valid_host(value.strip()):
        raise ValueError(f"{value!r} is not a host name or an IP address")
    return value.strip() if isinstance(value, str) else value


def _dns_server(value: Any) -> Any:
    if isinstance(value, str) and value.strip() != SYSTEM_RESOLVERS:
        try:
            split_host_port(value.strip(), 53)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()
    return value


# A window records each URL as configured (wire.HttpStats.url holds at most 500).
MAX_URL_CHARS = 500


def _http_url(value: Any) -> Any:
    if isinstance(value, str):
        parts = urlsplit(value.strip())
        if len(value.strip()) > MAX_URL_CHARS:
            raise ValueError(f"a URL of more than {MAX_URL_CHARS} characters is too long to record")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(f"{value!r} has a bad port") from None
        return value.strip()
    return value


# In `dns_servers`: the resolvers the machine itself uses (/etc/resolv.conf), usually the
# school router's or the provider's: what pupils' devices get from DHCP too.
SYSTEM_RESOLVERS = "system"
EchoTarget = Annotated[str, BeforeValidator(_echo_target)]
DnsServer = Annotated[str, BeforeValidator(_dns_server)]
HttpUrl = Annotated[str, BeforeValidator(_http_url)]


class ConnectivityProbeConfig(_Section):
    enabled: bool = True
    # One record per window: loss, jitter and percentiles are over the window's probes
    # (60 s at 0.5 s, stopping one 2 s timeout early: 116 per target, enough for a loss
    # figure that means something).
    window: Duration = 60.0
    ping_interval: Duration = 0.5
    timeout: Duration = 2.0
    method: Literal["auto", "icmp", "tcp"] = "auto"
    tcp_port: Count = Field(default=443, ge=1, le=65535)
    # Public and anycast by default (near every school); the demo and the tests use local ones.
    targets: list[EchoTarget] = Field(
        default=["1.1.1.1", "8.8.8.8", "9.9.9.9", "2606:4700:4700::1111", "2001:4860:4860::8888"],
        min_length=1, max_length=16)
    gateway: str = "auto"
    hops: Count = Field(default=2, ge=0, le=8)
    hop_interval: Duration = 5.0
    dns_servers: list[DnsServer] = Field(
        default=[SYSTEM_RESOLVERS, "1.1.1.1", "8.8.8.8", "9.9.9.9", "2606:4700:4700::1111"],
        max_length=16)
    dns_names: list[EchoTarget] = Field(default=["www.google.com", "www.wikipedia.org"],
                                        max_length=16)
    dns_interval: Duration = 10.0
    http_urls: list[HttpUrl] = Field(
        default=["https://www.google.com/generate_204", "https://www.wikipedia.org/"],
        max_length=16)
    http_interval: Duration = 30.0
    outage_after: Count = Field(default=3, ge=1, le=100)
    loss_threshold: float = Field(default=0.02, gt=0, lt=1)
    latency_threshold: Duration = 0.1

    @model_validator(mode="after")
    def _fits_in_window(self) -> ConnectivityProbeConfig:
        if self.ping_interval * 10 > self.window:
            raise ValueError(f"ping_interval ({self.ping_interval:g} s) must fit at least 10 "
                             f"times in window ({self.window:g} s)")
        if self.gateway not in ("auto", "") and not valid_host(self.gateway):
            raise ValueError(f"gateway {self.gateway!r} is not 'auto', '' or an address")
        if self.dns_servers and not self.dns_names:
            raise ValueError("dns_names is empty while dns_servers is not: name something to resolve")
        return self


WifiSource = Literal["auto", "nl80211", "iw", "proc", "nmcli", "wlanapi", "netsh", "wdutil",
                     "system_profiler"]


def _ssid(value: Any) -> Any:
    if isinstance(value, str) and not 1 <= len(value.encode()) <= 32:
        raise ValueError(f"{value!r} is not an SSID (1 to 32 bytes)")
    return value


class WifiProbeConfig(_Section):
    # auto: run when the machine has a wireless interface (a wired Pi has none, and says so
    # once in the log); true: run anyway and record why it cannot measure.
    enabled: bool | Literal["auto"] = "auto"
    interval: Duration = 60.0
    interface: str = ""
    ssids: list[Annotated[str, BeforeValidator(_ssid)]] = Field(default=[], max_length=32)
    scan: bool = True
    scan_interval: Duration = 900.0
    trigger_scan: bool = True
    source: WifiSource = "auto"
    iw_binary: str = "iw"
    nmcli_binary: str = "nmcli"

    @model_validator(mode="after")
    def _scan_not_more_often_than_link(self) -> WifiProbeConfig:
        if self.scan_interval < self.interval:
            raise ValueError(f"scan_interval ({self.scan_interval:g} s) is shorter than interval "
                             f"({self.interval:g} s): a scan is made in a run, at most once per run")
        return self


UsersSource = Literal["arp", "passive", "neighbours", "bss_load", "snmp", "unifi"]


def _subnet(value: Any) -> Any:
    import ipaddress

    if isinstance(value, str):
        try:
            network = ipaddress.IPv4Network(value.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 subnet (write it like 10.1.0.0/22)") from None
        return str(network)
    return value


Subnet = Annotated[str, BeforeValidator(_subnet)]


class ArpCensusConfig(_Section):
    # The interface to census on. Empty: the one with the default route.
    interface: str = ""
    # Subnets to ask (each address once a round). Empty: the interface's own subnet(s).
    subnets: list[Subnet] = Field(default=[], max_length=16)
    # Rounds per census: a device that did not answer is asked again (phones asleep,
    # requests lost); one that answered is not. Two, like arp-scan's two attempts.
    rounds: Count = Field(default=2, ge=1, le=10)
    # Requests per second: arp-scan's default pace (256 kbit/s), kind to a school's LAN.
    rate: Count = Field(default=500, ge=10, le=10000)
    # How long to wait for late answers after the last request of a round (arp-scan: 500 ms).
    wait: Duration = 0.5
    # The largest census: a /20 (4096 addresses) at the default rate takes 8 s a round.
    max_addresses: Count = Field(default=4096, ge=1, le=65536)


class PassiveCensusConfig(_Section):
    interface: str = ""
    # How long to listen for ARP, DHCP and mDNS each window.
    listen: Duration = 30.0


class SnmpCensusConfig(_Section):
    # Routers or access points to ask (host or host:port); SNMP v2c.
    hosts: list[str] = Field(default=[], max_length=32)
    community: str = "public"
    # Tables whose rows are counted (default: ipNetToMediaPhysAddress, the router's ARP
    # table), and single values read as counts (e.g. an access point's client count).
    count_oids: list[str] = ["1.3.6.1.2.1.4.22.1.2"]
    value_oids: list[str] = []
    timeout: Duration = 2.0


class UnifiCensusConfig(_Section):
    # The UniFi Network controller (https://host:8443, or a UniFi OS console https://host).
    url: str = ""
    username: str = ""
    password: str = ""
    site: str = "default"
    ca_bundle: Path | None = None
    verify_tls: bool = True
    timeout: Duration = 10.0


class UsersProbeConfig(_Section):
    enabled: bool = True
    # One census window this often; the counts are per window (the primary figure).
    interval: Duration = 300.0
    # Which sources count. The default sends nothing on the network (the kernel's own
    # neighbour table); "arp" and "passive" need CAP_NET_RAW, and "arp" sends requests.
    sources: list[UsersSource] = Field(default=["neighbours"], min_length=1, max_length=6)
    arp: ArpCensusConfig = ArpCensusConfig()
    passive: PassiveCensusConfig = PassiveCensusConfig()
    snmp: SnmpCensusConfig = SnmpCensusConfig()
    unifi: UnifiCensusConfig = UnifiCensusConfig()


class ProbesConfig(_Section):
    system: SystemProbeConfig = SystemProbeConfig()
    bandwidth: BandwidthProbeConfig = BandwidthProbeConfig()
    connectivity: ConnectivityProbeConfig = ConnectivityProbeConfig()
    wifi: WifiProbeConfig = WifiProbeConfig()
    users: UsersProbeConfig = UsersProbeConfig()


class ContractConfig(_Section):
    download_bytes_per_second: Annotated[float | None, BeforeValidator(_not_a_bool)] = Field(
        default=None, gt=0, allow_inf_nan=False)
    upload_bytes_per_second: Annotated[float | None, BeforeValidator(_not_a_bool)] = Field(
        default=None, gt=0, allow_inf_nan=False)


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCHOOLNET_", env_nested_delimiter="__", extra="forbid",
        nested_model_default_partial_update=True,
    )

    state_dir: Path = Field(default_factory=default_state_dir)  # per platform: agent/paths.py
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    room: str = Field(default="", max_length=200)
    collector: CollectorConfig = CollectorConfig()
    outbox: OutboxConfig = OutboxConfig()
    upload: UploadConfig = UploadConfig()
    probes: ProbesConfig = ProbesConfig()
    contract: ContractConfig = ContractConfig()

    @field_validator("room")
    @classmethod
    def _room_has_an_id(cls, value: str) -> str:
        if value.strip() and not slugify(value):
            raise ValueError(f"{value!r} gives no room id: use letters or digits")
        return value.strip()

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment beats the file (passed as init values): an operator can override
        # one key for one run without editing the file.
        return env_settings, init_settings


def config_path(given: str | None) -> Path | None:
    text = given or os.environ.get(CONFIG_ENV)
    return Path(text) if text else None


def read_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config: {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path} is not valid TOML: {exc}") from None


def load_settings(path: Path | None, use_central: bool = True) -> AgentSettings:
    """Build the settings; with ``use_central`` the cached collector settings apply too."""
    local = read_file(path)
    settings = _validate(local)
    if not use_central:
        return settings
    central = read_central_cache(settings.state_dir)
    if not central:
        return settings
    try:
        return AgentSettings(**deep_merge(known_keys(central, AgentSettings), local))
    except ValidationError as exc:
        # A bad value held centrally must not stop the agent: the local config still works.
        log.warning("ignoring the collector's settings for this agent: %s",
                    describe_validation_error(exc))
        return settings


def _validate(values: dict[str, Any]) -> AgentSettings:
    try:
        return AgentSettings(**values)
    except ValidationError as exc:
        raise ConfigError("config: " + describe_validation_error(exc)) from None
    except SettingsError as exc:
        # An environment variable naming a whole section (SCHOOLNET_PROBES=...) must hold
        # JSON; pydantic-settings says so without the variable's name.
        raise ConfigError("config: " + describe_settings_error(exc)) from None


def describe_settings_error(exc: SettingsError) -> str:
    match = re.search(r'field "([^"]+)"', str(exc))
    if match is None:
        return str(exc).splitlines()[0]
    field = match.group(1)
    variable = section_variable(field) or "SCHOOLNET_" + field.upper()
    return f"{field}: {variable} names a section, not a key; set one key with {variable}__KEY"


def section_variable(field: str) -> str | None:
    """The environment variable that gave a whole section a value (the culprit)."""
    prefix = "SCHOOLNET_" + field.upper()
    for name in sorted(os.environ):
        if name != prefix and not name.startswith(prefix + "__"):
            continue
        model: Any = AgentSettings
        for part in name.removeprefix("SCHOOLNET_").lower().split("__"):
            annotation = model.model_fields[part].annotation if part in model.model_fields else None
            model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
            if model is None:
                break
        if model is not None:
            return name
    return None


def read_central_cache(state_dir: Path) -> dict[str, Any]:
    try:
        document = json.loads((state_dir / CENTRAL_CACHE).read_text())
    except (OSError, ValueError):
        return {}
    settings = document.get("settings") if isinstance(document, dict) else None
    return settings if isinstance(settings, dict) else {}


def known_keys(document: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Only the keys this agent knows: a newer collector may hold settings we do not."""
    kept: dict[str, Any] = {}
    for key, value in document.items():
        field = model.model_fields.get(key)
        if field is None:
            log.warning("the collector's settings name %r, which this agent does not know", key)
            continue
        annotation = field.annotation
        if isinstance(value, dict) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            kept[key] = known_keys(value, annotation)
        else:
            kept[key] = value
    return kept


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged

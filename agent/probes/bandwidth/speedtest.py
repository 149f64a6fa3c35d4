"""The ``speedtest`` backend: Ookla's servers, found by speedtest-cli, measured by our engine.

speedtest-cli is used only for what it does well: fetching Ookla's configuration
(where speedtest.net places this client), the server list, and ranking the nearest
servers by its latency test. Its own transfer code is not used: on a 50 Mbit/s link
shaped with tbf it reported uploads of 53-56 Mbit/s (it counts bytes written into the
socket buffer, not bytes the server received) and cost about 3 CPU seconds and 174 MB
per test. The transfer runs on the multi-stream engine over the server's legacy HTTP
endpoints instead (``latency.txt``, ``random{N}x{N}.jpg``, ``upload.php``), where an
upload counts what the server's TCP acknowledged.

``server`` may be empty (the nearest servers, best by latency first), an Ookla server
id (a number, looked up in speedtest.net's list), or a server's upload URL
(``http://host:8080/speedtest/upload.php``), which is used as given: then nothing is
asked of speedtest.net at all. That case bypasses speedtest-cli entirely, because
``speedtest.Speedtest()`` always fetches the configuration in its constructor.

``probes.bandwidth.speedtest.secure`` makes speedtest-cli fetch the configuration and
list over HTTPS (speedtest.net refuses plain HTTP nowadays). The test itself goes to
the URL the list gives, as speedtest-cli's does: Ookla's servers are listed with
``http://`` on their own port, and TLS would only add CPU on a Pi to what is measured.

speedtest-cli is optional (``schoolnet[speedtest]``, because of Ookla's licence) and
this module is imported only when the backend is chosen. As a library it writes
nothing to stdout or stderr (it prints only in its command-line tool, or with its
module-level DEBUG flag, which stays off). Our collector's credential is never sent
to an Ookla server: the test requests carry no credential at all.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from agent.probes import one_line_reason
from agent.probes.bandwidth.backend import BackendOptions, DirectionResult, Limits, TransferError
from agent.probes.bandwidth.httpstream import HttpEndpoint, idle_ping, measure_direction

# Importing speedtest-cli wraps file descriptors 1 and 2 in objects of its own (for its
# command-line output) that would close them if the module were ever unloaded: once
# imported, it stays imported for the life of the process.
try:
    import speedtest
except ImportError:
    # backend_class() turns this into: bandwidth backend 'speedtest' needs speedtest-cli:
    # install it with pip install 'schoolnet[speedtest]'.
    raise ImportError("the speedtest backend needs speedtest-cli: pip install 'schoolnet[speedtest]'",
                      name="speedtest-cli") from None

# The files every Ookla server has for the legacy test: side -> bytes (the same on
# every server). A stream asks for one again on its keep-alive connection whenever one
# ends; the largest file keeps those round trips few.
OOKLA_FILES = {350: 245_388, 500: 505_544, 750: 1_118_012, 1000: 1_986_284, 1500: 4_468_241,
               2000: 7_907_740, 2500: 12_407_926, 3000: 17_816_816, 3500: 24_262_167,
               4000: 31_625_365}
# One upload POST's body: 1 MiB. It is one of the sizes speedtest-cli itself posts to
# every server (512 KiB, 1 MiB and 7 MiB with the configuration's ratio="5"), and the
# largest that also passes a default nginx in front of an upload.php (its
# client_max_body_size is 1m; PHP's own post_max_size is 8 MiB); the configuration's
# maxchunksize="512K" is the old Flash client's chunk. What it costs: each stream waits
# one round trip per MiB for the "size=N" answer, which the engine's extra streams fill.
UPLOAD_BYTES = 1024 * 1024
# How many of the nearest servers (by distance) speedtest-cli's latency test ranks.
CANDIDATES = 5
# speedtest-cli scores a failed latency request as 3600 s and divides the sum of its
# three by 6: a server that answered none of them scores this (in milliseconds).
NONE_ANSWERED_MS = 3 * 3600 / 6 * 1000
UPLOAD_SCRIPT = ("upload.php", "upload.asp", "upload.aspx", "upload.jsp")


@dataclass(frozen=True)
class OoklaServer:
    """What speedtest.net says about one server (kept for the record's details)."""

    id: int
    sponsor: str
    name: str
    country: str
    distance_km: float


# Upload URL -> metadata, for every server discovery met in this process.
_KNOWN: dict[str, OoklaServer] = {}


class SpeedtestBackend:
    name = "speedtest"

    def __init__(self, options: BackendOptions) -> None:
        wanted = options.server.strip()
        # Normally the probe passes back what discover() returned (an upload URL); an id
        # or nothing is resolved here the same way.
        self.server = upload_url(wanted) if _looks_like_url(wanted) else self.discover(options)[0]
        base, _, script = self.server.rpartition("/")
        # Cache busters, as speedtest-cli adds (a school's transparent proxy must not
        # answer a test from its cache); one per backend, since the streams reuse a path.
        self.bust = f"?x={secrets.token_hex(6)}"
        self.endpoint = HttpEndpoint(
            base_url=base,
            download_path=f"/random4000x4000.jpg{self.bust}",  # sized per test: _sized()
            upload_path=f"/{script}{self.bust}",
            ping_path=f"/latency.txt{self.bust}",
            request_bytes=UPLOAD_BYTES,
            headers=(),  # no credential: that is for our own collector only
            # options.ca_bundle is our collector's CA; an Ookla server with an https URL
            # has a public certificate, checked against the system's store.
            ca_bundle=None,
            stall_seconds=options.stall_seconds,
        )
        self.idle: float | None = None  # the round trip before the test, once pinged

    @classmethod
    def discover(cls, options: BackendOptions) -> list[str]:
        """Upload URLs of the servers to test against, best first."""
        wanted = options.server.strip()
        if _looks_like_url(wanted):
            return [upload_url(wanted)]  # used as given: no request to speedtest.net
        if wanted and not (wanted.isascii() and wanted.isdigit()):
            raise TransferError(f"{wanted!r} is neither an Ookla server id (a number) nor a server's "
                                "upload URL (like http://host:8080/speedtest/upload.php)")
        client = _client(options)
        if wanted:
            servers = _server_list(client, [int(wanted)])
            return [_remember(server) for server in servers[:1]]
        candidates = _closest(client)
        return [_remember(server) for server in _rank_by_latency(client, candidates)]

    def ping(self) -> float:
        self.idle = idle_ping(self.endpoint)
        return self.idle

    def download(self, limits: Limits) -> DirectionResult:
        result = measure_direction("download", self._sized(limits), limits, self.idle, self.endpoint)
        return dataclasses.replace(result, details=self._details())

    def upload(self, limits: Limits) -> DirectionResult:
        result = measure_direction("upload", self.endpoint, limits, self.idle)
        return dataclasses.replace(result, details=self._details())

    def _sized(self, limits: Limits) -> HttpEndpoint:
        """The download endpoint with the largest Ookla file of which the byte cap holds
        two per stream the engine may open: a server decides a file's size, and one
        31 MB file taken by the first stream could leave nothing for the others."""
        share = limits.max_bytes // (2 * max(1, limits.max_streams))
        side = max((side for side, size in OOKLA_FILES.items() if size <= share), default=min(OOKLA_FILES))
        return dataclasses.replace(self.endpoint, download_path=f"/random{side}x{side}.jpg{self.bust}")

    def close(self) -> None:
        return  # every stream and ping connection is closed when its direction ends

    def _details(self) -> dict[str, Any]:
        known = _KNOWN.get(self.server)
        if known is None:
            return {}
        return {"ookla_server_id": known.id, "ookla_sponsor": known.sponsor,
                "ookla_server_name": known.name, "ookla_country": known.country,
                "ookla_distance_km": round(known.distance_km, 1)}


def _looks_like_url(server: str) -> bool:
    return "://" in server


def upload_url(server: str) -> str:
    """A server's upload URL, checked: http(s), a host, a valid port, .../upload.<ext>."""
    url = urlsplit(server)
    try:
        port_ok = url.port is None or 0 < url.port < 65536
    except ValueError:
        port_ok = False
    script = url.path.rpartition("/")[2]
    if url.scheme not in ("http", "https") or not url.hostname or not port_ok or script not in UPLOAD_SCRIPT:
        raise TransferError(f"{server!r} is not an Ookla server's upload URL "
                            "(like http://host:8080/speedtest/upload.php)")
    return f"{url.scheme}://{url.netloc}{url.path}"


# -- speedtest-cli, wrapped: every failure becomes one line, never a traceback -----------


def _client(options: BackendOptions) -> Any:
    """speedtest-cli's client, which fetches Ookla's configuration as it is made."""
    section = getattr(options.config, "speedtest", None)
    secure = bool(getattr(section, "secure", True))
    where = f"{'https' if secure else 'http'}://www.speedtest.net"
    try:
        return speedtest.Speedtest(timeout=options.stall_seconds, secure=secure)
    except speedtest.ConfigRetrievalError as exc:
        reason = _network_reason(exc.args[0] if exc.args else exc)
        hint = ("; speedtest.net refuses plain HTTP: set probes.bandwidth.speedtest.secure = true"
                if not secure and "403" in reason else "")
        raise TransferError(one_line_reason(f"cannot fetch Ookla's configuration from {where}: "
                                            f"{reason}{hint}")) from None
    except speedtest.SpeedtestConfigError as exc:
        raise TransferError(one_line_reason(
            f"Ookla's configuration from {where} is unusable: {exc}")) from None
    except speedtest.HTTP_ERRORS as exc:
        raise TransferError(one_line_reason(f"cannot fetch Ookla's configuration from {where}: "
                                            f"{_network_reason(exc)}")) from None
    except Exception as exc:
        # speedtest-cli reads the XML with bare lookups: a proxy's or captive portal's page
        # in its place surfaces as KeyError, AttributeError, even NameError (its fallback
        # parser is not imported); only a missing field is worth naming.
        missing = f" (no {exc})" if isinstance(exc, KeyError) else ""
        raise TransferError(one_line_reason(
            f"the answer from {where} is not Ookla's configuration{missing}: a proxy or a login "
            "page in the way?")) from None


def _server_list(client: Any, ids: list[int] | None = None) -> list[dict[str, Any]]:
    """speedtest.net's servers (those with ``ids`` only, when given), nearest first."""
    try:
        by_distance = client.get_servers(ids)
    except speedtest.NoMatchedServers:
        wanted = ", ".join(str(i) for i in ids or [])
        raise TransferError(f"Ookla server {wanted} is not in the server list speedtest.net gives "
                            "this location (speedtest-cli --list shows that list)") from None
    except (speedtest.ServersRetrievalError, speedtest.SpeedtestServersError) as exc:
        raise TransferError(one_line_reason(
            f"Ookla's server list is unusable: {str(exc) or type(exc).__name__}")) from None
    except speedtest.HTTP_ERRORS as exc:
        raise TransferError(one_line_reason(
            f"cannot fetch Ookla's server list: {_network_reason(exc)}")) from None
    except Exception as exc:  # the same bare lookups as in the configuration
        missing = f" (no {exc})" if isinstance(exc, KeyError) else ""
        raise TransferError(f"the answer for Ookla's server list is not one{missing}: a proxy or a "
                            "login page in the way?") from None
    servers = [server for distance in sorted(by_distance) for server in by_distance[distance]]
    if not servers:
        # speedtest-cli tries four addresses and keeps quiet about each failure.
        raise TransferError("no Ookla servers: speedtest.net's server list could not be fetched "
                            "or holds no server for this location")
    return servers


def _closest(client: Any) -> list[dict[str, Any]]:
    return _server_list(client)[:CANDIDATES]


def _rank_by_latency(client: Any, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """speedtest-cli's latency test on each candidate (three GETs of latency.txt), best
    first; servers that answered none are dropped.

    One ``get_best_server`` call per server, so every server gets its score (speedtest-cli
    keeps only the best), run side by side: its connections have a fixed 10 s timeout,
    and five silent servers in a row would hold discovery for two and a half minutes.
    """
    def score(server: dict[str, Any]) -> float:
        try:
            return float(client.get_best_server([server])["latency"])
        except Exception:  # it reads the answer outside its own error handling
            return math.inf

    with ThreadPoolExecutor(max_workers=len(candidates), thread_name_prefix="speedtest-latency") as pool:
        scores = list(pool.map(score, candidates))
    ranked = sorted((s, i) for i, s in enumerate(scores) if s < NONE_ANSWERED_MS)
    if not ranked:
        names = ", ".join(f"{c.get('sponsor')} ({c.get('name')})" for c in candidates)
        raise TransferError(one_line_reason(f"none of the {len(candidates)} nearest Ookla servers "
                                            f"answered speedtest-cli's latency test: {names}"))
    return [candidates[index] for _, index in ranked]


def _remember(server: dict[str, Any]) -> str:
    """The server's upload URL, its metadata kept for the record."""
    try:
        url = upload_url(str(server["url"]))
        _KNOWN[url] = OoklaServer(int(server["id"]), str(server.get("sponsor", "")),
                                  str(server.get("name", "")), str(server.get("country", "")),
                                  float(server.get("d", 0.0)))
    except (KeyError, TypeError, ValueError):
        raise TransferError(one_line_reason(f"speedtest.net listed a server without a usable upload "
                                            f"URL: {server.get('url')!r}")) from None
    return url


def _network_reason(exc: BaseException) -> str:
    if isinstance(exc, HTTPError):
        return f"answered HTTP {exc.code} {exc.reason}".rstrip()
    if isinstance(exc, URLError):
        reason = exc.reason
        return _network_reason(reason) if isinstance(reason, BaseException) else str(reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__

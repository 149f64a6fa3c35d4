"""Census source: the clients a UniFi Network controller has associated or seen, right now.

The controller knows every Wi-Fi client of every access point it manages (all VLANs and
SSIDs, even with client isolation) and the wired clients its switches see. Two login
styles exist: a UniFi OS console (UDM, Cloud Key Gen2+, UniFi OS Server) takes
POST /api/auth/login and serves the Network application under /proxy/network, with a CSRF
token from the login response required on later requests; the classic self-hosted
controller (port 8443) takes POST /api/login and serves /api directly. We try UniFi OS
first and fall back to classic when that path does not exist (404, or a redirect to the
classic web UI).

Privacy: of each client in ``stat/sta`` only its "mac" is read, hashed with the day's key
at once (to de-duplicate with the other sources); host names, IPs, names and the address
itself are never kept, logged or put into a message, and neither is the password.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx

from agent.config import UnifiCensusConfig
from agent.probes.users.census import CensusUnavailable, DeviceKeys, SourceResult, is_device_address

MAX_CLIENTS = 100_000  # far beyond any school; more means the answer is not a client list
# A client's entry in stat/sta is 1-3 kB, so 64 MB is some 20,000 clients: read no more than
# that into the agent's long-lived process (a wrong URL or a hostile server may send gigabytes).
MAX_BODY_BYTES = 64 * 1024 * 1024


class UnifiSource:
    name = "unifi"

    def __init__(self, config: UnifiCensusConfig, keys: DeviceKeys, *,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.keys = keys
        self.transport = transport  # tests may inject one; the default is a real socket

    def census(self) -> SourceResult:
        config = self.config
        if not config.url:
            raise CensusUnavailable("no UniFi controller configured (probes.users.unifi.url)")
        base = config.url.rstrip("/")
        verify: Any = str(config.ca_bundle) if config.ca_bundle else config.verify_tls
        try:
            with httpx.Client(verify=verify, timeout=config.timeout, follow_redirects=False,
                              transport=self.transport) as client:
                clients = self._fetch(client, base)
        except httpx.TimeoutException:
            raise CensusUnavailable(f"the UniFi controller at {base} did not answer within "
                                    f"{config.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise CensusUnavailable(f"cannot reach the UniFi controller at {base} "
                                    f"({type(exc).__name__}: {_first_line(exc)})") from None
        devices = set()
        for entry in clients:
            mac = _mac_bytes(entry.get("mac") if isinstance(entry, dict) else None)
            if mac is not None and is_device_address(mac):
                devices.add(self.keys(mac))
        return SourceResult(source=self.name, count=len(devices), devices=frozenset(devices),
                            requests=None)

    def _fetch(self, client: httpx.Client, base: str) -> list[Any]:
        credentials = {"username": self.config.username, "password": self.config.password}
        site = self.config.site
        login, _ = _bounded(client, base, "POST", "/api/auth/login", json=credentials)
        if login.status_code in (404, 405) or login.is_redirect:
            # A classic controller: no UniFi OS login path.
            login, _ = _bounded(client, base, "POST", "/api/login", json=credentials)
            self._check_login(login, base)
            try:
                return self._clients(*_bounded(client, base, "GET", f"/api/s/{site}/stat/sta"), base)
            finally:
                _quietly(client, f"{base}/api/logout")
        self._check_login(login, base)
        headers = {}
        token = login.headers.get("x-csrf-token")
        if token:
            headers["X-CSRF-Token"] = token
        try:
            return self._clients(*_bounded(client, base, "GET", f"/proxy/network/api/s/{site}/stat/sta",
                                           headers=headers), base)
        finally:
            _quietly(client, f"{base}/api/auth/logout", headers=headers)

    @staticmethod
    def _check_login(response: httpx.Response, base: str) -> None:
        if response.status_code in (400, 401, 403):
            raise CensusUnavailable(f"the UniFi controller at {base} refused the login: wrong "
                                    "username or password (probes.users.unifi), or the account "
                                    "needs two-factor authentication (use a local account)")
        if response.status_code == 429:
            raise CensusUnavailable(f"the UniFi controller at {base} refused the login: too many "
                                    "attempts, it is rate limiting (HTTP 429)")
        if response.status_code != 200:
            raise CensusUnavailable(f"the UniFi controller at {base} answered the login with "
                                    f"HTTP {response.status_code}")

    def _clients(self, response: httpx.Response, content: bytes, base: str) -> list[Any]:
        site = self.config.site
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        meta = body.get("meta") if isinstance(body, dict) else None
        message = meta.get("msg") if isinstance(meta, dict) else None
        if message == "api.err.NoSiteContext" or (response.status_code == 404 and body is None):
            raise CensusUnavailable(f"the UniFi controller at {base} has no site {site!r} "
                                    "(probes.users.unifi.site is the site's short name, e.g. default)")
        if response.status_code in (401, 403):
            raise CensusUnavailable(f"the UniFi controller at {base} refused the client list "
                                    f"(HTTP {response.status_code}): the account may lack access "
                                    f"to site {site!r}")
        if response.status_code != 200 or not isinstance(body, dict):
            raise CensusUnavailable(f"the UniFi controller at {base} answered the client list with "
                                    f"HTTP {response.status_code}")
        data = body.get("data")
        if not isinstance(data, list) or (isinstance(meta, dict) and meta.get("rc") not in (None, "ok")):
            raise CensusUnavailable(f"the UniFi controller at {base} sent no client list "
                                    f"({message or 'no data'})")
        if len(data) > MAX_CLIENTS:
            raise CensusUnavailable(f"the UniFi controller at {base} listed more than {MAX_CLIENTS} "
                                    "clients: not a client list")
        return data


def _mac_bytes(text: object) -> bytes | None:
    if not isinstance(text, str):
        return None
    digits = text.replace(":", "").replace("-", "")
    if len(digits) != 12:
        return None
    try:
        return bytes.fromhex(digits)
    except ValueError:
        return None


def _bounded(client: httpx.Client, base: str, method: str, path: str,
             **kwargs: Any) -> tuple[httpx.Response, bytes]:
    """The response and at most MAX_BODY_BYTES of its (decoded) body, read as it streams."""
    with client.stream(method, base + path, **kwargs) as response:
        content = bytearray()
        for chunk in response.iter_bytes():
            content += chunk
            if len(content) > MAX_BODY_BYTES:
                raise CensusUnavailable(f"the UniFi controller at {base} sent more "
                                        f"than {MAX_BODY_BYTES // 2**20} MB: not a client list")
    return response, bytes(content)


def _quietly(client: httpx.Client, url: str, **kwargs: Any) -> None:
    # Logging out is good manners (the session would expire anyway): its failure is no
    # reason to lose a count already made. Its answer is not read.
    with contextlib.suppress(httpx.HTTPError), client.stream("POST", url, **kwargs):
        pass


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else "no detail"

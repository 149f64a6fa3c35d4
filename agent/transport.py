"""HTTP to the collector and to test servers: verified TLS, proxies, IPv4 and IPv6."""

from __future__ import annotations

import functools
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from agent import __version__

USER_AGENT = f"schoolnet-agent/{__version__}"


def make_client(timeout: float, ca_bundle: Path | None = None,
                credential: str | None = None) -> httpx.Client:
    """One client: certificates verified (system store, or a school's own CA bundle), and
    HTTPS_PROXY/NO_PROXY honoured, because many schools sit behind a filtering proxy."""
    if ca_bundle is not None and not ca_bundle.is_file():
        raise ValueError(f"collector.ca_bundle: {ca_bundle} is not a file")
    verify = tls_context(ca_bundle)
    headers = {"User-Agent": USER_AGENT}
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    return httpx.Client(verify=verify, trust_env=True, headers=headers,
                        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))


@functools.cache
def tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """One verifying context per CA choice, shared by every client: loading the system
    store costs about a megabyte and some CPU each time, on a Pi, every minute."""
    try:
        return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    except ssl.SSLError as exc:
        raise ValueError(f"collector.ca_bundle: {ca_bundle} holds no usable certificate "
                         f"({exc.reason or exc})") from None


def same_origin(first: str, second: str) -> bool:
    """Whether two URLs name the same server: the credential goes to our collector only."""
    a, b = urlsplit(first), urlsplit(second)
    default = {"http": 80, "https": 443}
    return (a.scheme, a.hostname, a.port or default.get(a.scheme)) == (
        b.scheme, b.hostname, b.port or default.get(b.scheme))


def describe_error(exc: Exception) -> str:
    """A network failure as one line a school's ICT person can act on."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {_root(exc)}"
    if isinstance(exc, httpx.ReadTimeout):
        return "no answer in time (read timeout)"
    if isinstance(exc, httpx.WriteTimeout):
        return "the server stopped reading (write timeout)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"connection closed unexpectedly: {_root(exc)}"
    if isinstance(exc, httpx.ProxyError):
        return f"proxy error: {_root(exc)}"
    return f"{type(exc).__name__}: {_root(exc)}"


def _root(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return str(exc) or type(exc).__name__

"""Durations and sizes as people write them in config files and on command lines."""

from __future__ import annotations

import ipaddress
import re
import unicodedata

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|[smhdw]?)\s*$")

_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """``"30s"``, ``"30m"``, ``"24h"``, ``"7d"`` or plain seconds -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (write it like 30s, 30m, 24h or 7d)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]


def parse_size(text: str) -> int:
    """``"50MB"`` (decimal), ``"50MiB"`` (binary) or plain bytes -> bytes."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size (write it like 50MB, 50MiB or 50000000)")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


# RFC 1123 host names: labels of letters, digits and inner dashes, at most 253 characters.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def valid_host(text: str) -> bool:
    """An IP address (v4 or v6) or a syntactically valid host name."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    name = text.removesuffix(".")
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``"9.9.9.9"``, ``"9.9.9.9:5353"``, ``"2001:db8::1"`` or ``"[2001:db8::1]:5353"``
    -> (host, port)."""
    host, port = text, default_port
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not an address or [address]:port")
        if rest:
            port = _port(text, rest[1:])
    elif text.count(":") == 1:
        host, _, raw = text.partition(":")
        port = _port(text, raw)
    if not valid_host(host):
        raise ValueError(f"{text!r} is not an address, a host name, or one of them with :port")
    return host, port


def _port(text: str, raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ValueError(f"{text!r} has a bad port")
    return int(raw)


def slugify(name: str) -> str:
    """A short id from a display name: ``"De Regenboog (Utrecht)"`` -> ``"de-regenboog-utrecht"``
    (boards, schools and agents in the collector; rooms on the agent too)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:63].rstrip("-")

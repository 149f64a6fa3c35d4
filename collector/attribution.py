"""Which of a school's internet lines a bandwidth result went over.

A school may have a main line and a backup (4G); a result judged against the wrong line's
contract is a wrong verdict, so each result says which line it used and how we know. The
evidence, strongest first:

1. ``agent-setting``: the agent is pinned to a line (agent settings key ``connection``, the
   agent's own document before the school's): someone who knows the wiring said so.
2. ``network <cidr>``: the provider's access routers the agent saw (the ``access`` hops of
   its connectivity record nearest in time) lie in one line's registered networks. The
   first such hop wins: it is the router nearest the school, the line's own side.
3. ``only-connection``: one line only was in force that (local) day.
4. ``main``: several were, and exactly one of them is the main line (the usual route).
5. ``none``: nothing to go by; the result is kept but belongs to no contract.

``attribute`` is a pure function of its inputs; ``load_lines``, ``pinned_connection`` and
``access_addresses_near`` read those inputs from the store.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import BindParameter, Connection, bindparam, func, select

from collector.db.schema import agent_settings, connections, contracts, latest, records

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# How far from a bandwidth test a connectivity window still tells which line was in use:
# wider and a failover in between could mislead, narrower and windows are missed.
EVIDENCE_WINDOW_SECONDS = 15 * 60


@dataclass(frozen=True)
class Line:
    """One connection as attribution sees it."""

    id: int
    slug: str
    role: str  # main | backup
    networks: tuple[IPNetwork, ...]
    # The contract periods (starts_on, ends_on inclusive or None); empty = no terms known.
    periods: tuple[tuple[date, date | None], ...] = ()

    def in_force_on(self, day: date) -> bool:
        # A line registered without any terms is taken as in force: nothing says otherwise.
        if not self.periods:
            return True
        return any(start <= day and (end is None or day <= end) for start, end in self.periods)


@dataclass(frozen=True)
class Attribution:
    connection_id: int | None
    method: str


NONE = Attribution(None, "none")


def attribute(lines: Sequence[Line], day: date, pinned: str | None = None,
              access_addresses: Iterable[str] = ()) -> Attribution:
    """The line a result measured on ``day`` (the school's local date) used."""
    if not lines:
        return NONE
    if pinned:
        for line in lines:
            if line.slug == pinned:
                return Attribution(line.id, "agent-setting")
        # A pin naming a line that is not (or no longer) registered says nothing: fall through.
    for address in access_addresses:
        match = _network_match(lines, address)
        if match is not None:
            return match
    in_force = [line for line in lines if line.in_force_on(day)]
    if len(in_force) == 1:
        return Attribution(in_force[0].id, "only-connection")
    mains = [line for line in (in_force or lines) if line.role == "main"]
    if len(mains) == 1:
        return Attribution(mains[0].id, "main")
    return NONE


def _network_match(lines: Sequence[Line], address: str) -> Attribution | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    best: tuple[int, Line, IPNetwork] | None = None
    for line in lines:
        for network in line.networks:
            # The most specific prefix wins: a line's own /29 inside the provider's /16.
            if (ip.version == network.version and ip in network
                    and (best is None or network.prefixlen > best[0])):
                best = (network.prefixlen, line, network)
    if best is None:
        return None
    return Attribution(best[1].id, f"network {best[2]}")


def access_addresses(payload: Any) -> list[str]:
    """The addresses of the provider's access routers in a connectivity payload, nearest
    the school first."""
    if not isinstance(payload, dict):
        return []
    hops = [hop for hop in payload.get("hops") or [] if isinstance(hop, dict)
            and hop.get("segment") == "access" and isinstance(hop.get("address"), str)]
    hops.sort(key=_ttl)
    return [hop["address"] for hop in hops]


def _ttl(hop: dict[str, Any]) -> int:
    ttl = hop.get("ttl")
    return ttl if isinstance(ttl, int) else 0


# --- loaders ------------------------------------------------------------------------------


def load_lines(conn: Connection, school_pk: int) -> list[Line]:
    """The school's connections with their contract periods (two small queries)."""
    rows = conn.execute(select(connections.c.id, connections.c.slug, connections.c.role,
                               connections.c.networks)
                        .where(connections.c.school_id == school_pk)
                        .order_by(connections.c.id)).all()
    if not rows:
        return []
    periods: dict[int, list[tuple[date, date | None]]] = {}
    for term in conn.execute(select(contracts.c.connection_id, contracts.c.starts_on,
                                    contracts.c.ends_on)
                             .where(contracts.c.connection_id.in_([row.id for row in rows]))):
        periods.setdefault(term.connection_id, []).append(
            (date.fromisoformat(term.starts_on),
             date.fromisoformat(term.ends_on) if term.ends_on else None))
    return [Line(row.id, row.slug, row.role, _networks(row.networks),
                 tuple(periods.get(row.id, ()))) for row in rows]


def _networks(value: Any) -> tuple[IPNetwork, ...]:
    result = []
    for text in value if isinstance(value, list) else []:
        try:
            result.append(ipaddress.ip_network(str(text), strict=False))
        except ValueError:
            continue  # the registry validates; a bad stored prefix must not stop ingest
    return tuple(result)


def pinned_connections(conn: Connection, school_pk: int) -> dict[int | None, str]:
    """Per agent pk (None = the school's document): the ``connection`` its settings pin."""
    pins: dict[int | None, str] = {}
    for row in conn.execute(select(agent_settings.c.agent_id, agent_settings.c.document)
                            .where(agent_settings.c.school_id == school_pk)):
        value = row.document.get("connection") if isinstance(row.document, dict) else None
        if isinstance(value, str) and value:
            pins[row.agent_id] = value
    return pins


def pin_for(pins: dict[int | None, str], agent_pk: int | None) -> str | None:
    """The agent's own pin, else the school's."""
    return pins.get(agent_pk) if agent_pk in pins else pins.get(None)


def access_addresses_near(conn: Connection, agent_pk: int, measured_at: float,
                          batch: Sequence[tuple[float, Any]] = (),
                          newest: tuple[float, Any] | Literal["read"] | None = "read") -> list[str]:
    """Access-hop addresses from the agent's connectivity window nearest ``measured_at``
    (within ±15 min): from ``batch`` (this batch's (time, payload) pairs), else the
    agent's latest one (``newest``: as read once for a whole batch by ``newest_window``;
    by default read here), else the stored records."""
    low, high = measured_at - EVIDENCE_WINDOW_SECONDS, measured_at + EVIDENCE_WINDOW_SECONDS
    near = sorted((abs(t - measured_at), index) for index, (t, _) in enumerate(batch)
                  if low <= t <= high)
    for _, index in near:
        found = access_addresses(batch[index][1])
        if found:
            return found
    if newest == "read":
        newest = newest_window(conn, agent_pk)
    if newest is not None and low <= newest[0] <= high:
        found = access_addresses(newest[1])
        if found:
            return found
    # The index on (agent, kind, measured_at) keeps this to the rows of half an hour.
    rows = conn.execute(_nearest_windows_statement(),
                        {"a_id": agent_pk, "low": low, "high": high, "at": measured_at}).all()
    for row in rows:
        found = access_addresses(row.payload)
        if found:
            return found
    return []


def newest_window(conn: Connection, agent_pk: int) -> tuple[float, Any] | None:
    """The agent's latest connectivity window as (time, payload), or None."""
    row = conn.execute(select(latest.c.measured_at, latest.c.payload)
                       .where(latest.c.agent_id == agent_pk, latest.c.kind == "connectivity")).first()
    return None if row is None or row.measured_at is None else (row.measured_at, row.payload)


@functools.cache
def _nearest_windows_statement() -> Any:
    """Built once: building it per bandwidth record cost more than running it."""
    at: BindParameter[float] = bindparam("at")
    return (select(records.c.payload)
            .where(records.c.agent_id == bindparam("a_id"), records.c.kind == "connectivity",
                   records.c.ok.is_(True), records.c.measured_at.between(bindparam("low"), bindparam("high")))
            .order_by(func.abs(records.c.measured_at - at))
            .limit(8))


"""Building measurement histories by hand for the verdict tests: a school in Amsterdam."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from collector.policy import MBIT
from collector.terms import Terms
from collector.verdicts.model import Measurement

ZONE = ZoneInfo("Europe/Amsterdam")
# 100/20 Mbit/s advertised and maximum, 80/16 normally available, 50/10 minimum.
TERMS = Terms(starts_on=date(2026, 1, 1), ends_on=None,
              download_advertised=100 * MBIT, upload_advertised=20 * MBIT,
              download_minimum=50 * MBIT, upload_minimum=10 * MBIT,
              download_normal=80 * MBIT, upload_normal=16 * MBIT,
              download_maximum=100 * MBIT, upload_maximum=20 * MBIT)


def hour_key(local: datetime) -> str:
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%dT%H}{offset[:3]}:{offset[3:]}"


def at(local: datetime, down_mbit: float | None, up_mbit: float | None = None, *, terms: Terms | None = TERMS,
       valid: bool = True, in_session: bool = True, devices: int | None = None) -> Measurement:
    """One measurement at a local wall-clock time (aware datetimes pass through, so the
    repeated autumn hour can be given with its fold)."""
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZONE)
    t = local.timestamp()
    local = datetime.fromtimestamp(t, ZONE)
    return Measurement(
        measured_at=t, local_day=local.date(), hour_key=hour_key(local), in_session=in_session,
        download=None if down_mbit is None else down_mbit * MBIT,
        upload=None if up_mbit is None else up_mbit * MBIT,
        terms=terms, valid=valid, concurrent_devices=devices, source="agent", backend="http",
        server="http://127.0.0.1:8080")


def days_of(first: date, count: int, step: int = 1) -> list[date]:
    return [first + timedelta(days=i * step) for i in range(count)]


def spread(downs: list[float], days: list[date], up: float = 20.0, first_hour: int = 9,
           **kwargs: Any) -> list[Measurement]:
    """Measurements round-robin over the days, one per hour, from 09:00 local on."""
    out = []
    for i, down in enumerate(downs):
        day = days[i % len(days)]
        hour = first_hour + i // len(days)
        out.append(at(datetime(day.year, day.month, day.day, hour, 0), down, up, **kwargs))
    return out


def window(ms: list[Measurement]) -> tuple[float, float]:
    return min(m.measured_at for m in ms) - 1, max(m.measured_at for m in ms) + 1

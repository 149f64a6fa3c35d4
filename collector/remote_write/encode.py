"""The body of a Prometheus remote_write 1.0 request: a WriteRequest in protobuf, snappy
(block format) compressed.

Four message types of the spec (prompb/remote.proto, types.proto) are all we send:

    WriteRequest { repeated TimeSeries timeseries = 1; }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }   // timestamp in ms

A protobuf library (and generated code, and its version pins) for four messages costs more
than the forty lines below: varints, length-delimited fields and one fixed64.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import cramjam

# Wire types of the protobuf encoding.
_VARINT, _FIXED64, _LENGTH_DELIMITED = 0, 1, 2


@dataclass(frozen=True)
class TimeSeries:
    """One series: its labels, ``__name__`` included, sorted by name (the spec asks for
    it), and its samples as (value, timestamp in milliseconds), oldest first."""

    labels: tuple[tuple[str, str], ...]
    samples: tuple[tuple[float, int], ...]


def series(labels: Mapping[str, str], samples: Iterable[tuple[float, int]]) -> TimeSeries:
    """A TimeSeries with its labels sorted and empty ones left out (in Prometheus an empty
    label value is the same as no label) and its samples sorted by time."""
    return TimeSeries(tuple(sorted((k, v) for k, v in labels.items() if v != "")),
                      tuple(sorted(samples, key=lambda sample: sample[1])))


def write_request(timeseries: Sequence[TimeSeries]) -> bytes:
    """The uncompressed protobuf WriteRequest."""
    out = bytearray()
    for one in timeseries:
        _field(out, 1, _time_series(one))
    return bytes(out)


def compressed_write_request(timeseries: Sequence[TimeSeries]) -> bytes:
    """The request body: the WriteRequest in snappy's block format (not its framing
    format: remote_write receivers read the block format only)."""
    return bytes(cramjam.snappy.compress_raw(write_request(timeseries)))


def _time_series(one: TimeSeries) -> bytes:
    out = bytearray()
    for name, text in one.labels:
        label = bytearray()
        _field(label, 1, name.encode())
        _field(label, 2, text.encode())
        _field(out, 1, bytes(label))
    for value, timestamp in one.samples:
        sample = bytearray()
        # Always written, even 0.0 and 0 (proto3 may omit defaults; writing them is valid
        # and keeps the encoder free of special cases).
        _key(sample, 1, _FIXED64)
        sample += struct.pack("<d", value)
        _key(sample, 2, _VARINT)
        _varint(sample, timestamp & 0xFFFF_FFFF_FFFF_FFFF)  # int64: two's complement
        _field(out, 2, bytes(sample))
    return bytes(out)


def _field(out: bytearray, number: int, payload: bytes) -> None:
    """A length-delimited field (strings, embedded messages)."""
    _key(out, number, _LENGTH_DELIMITED)
    _varint(out, len(payload))
    out += payload


def _key(out: bytearray, number: int, wire_type: int) -> None:
    _varint(out, number << 3 | wire_type)


def _varint(out: bytearray, value: int) -> None:
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)


def milliseconds(seconds: float) -> int:
    """A Unix time in seconds as remote_write's int64 milliseconds (rounded: a float
    seconds value such as 1700000000.123 is 1700000000122.9999 ms)."""
    return round(seconds * 1000)


def sample_value(value: object) -> float | None:
    """A stored value as a sample's double; None for what is no number."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if not math.isnan(number) or value.strip().lower() == "nan" else None
    return None

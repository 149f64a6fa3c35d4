"""Metric families as plain rows, and a fast writer of the Prometheus text format.

prometheus_client formats every sample on its own (about 12 µs each here); with 10,000
agents and some 25 series each, that alone took over 3 s. A family here is a list of
(label values, value) rows: the label string of an agent is rendered once and reused
for all its series. The same families are also offered to prometheus_client as ordinary
metric families (``to_metric``), so registries, tests and the library's own exposition
see exactly what the fast writer writes.

A summary's rows are its quantiles (``quantile`` is its last label name) and, per label
set without it, its ``_sum`` and ``_count`` (``add_sum_count``): both writers put them
under one ``summary`` TYPE, as promtool and Prometheus expect of a ``quantile`` label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

LabelValues = tuple[str, ...]
# (suffix of the sample name, label values, value): the suffix is empty but for a
# summary's `_sum` and `_count`, whose label values leave out the quantile.
Row = tuple[str, LabelValues, float]
QUANTILE = "quantile"


@dataclass
class Family:
    name: str  # without the `_total` of a counter
    help: str
    type: Literal["gauge", "counter", "summary"]
    labelnames: tuple[str, ...]  # a summary's end with `quantile`
    rows: list[Row] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.type == "summary" and self.labelnames[-1:] != (QUANTILE,):
            raise ValueError(f"{self.name}: a summary's last label is {QUANTILE!r}")

    def add(self, labels: LabelValues, value: float) -> None:
        """A sample: a gauge's or counter's value, or one quantile of a summary."""
        self.rows.append(("", labels, value))

    def add_sum_count(self, labels: LabelValues, total: float, count: float) -> None:
        """A summary's `_sum` and `_count` for ``labels`` (without the quantile); added
        after that label set's quantiles, so its samples stay together on the page."""
        if self.type != "summary":
            raise ValueError(f"{self.name}: only a summary has _sum and _count")
        self.rows.append(("_sum", labels, total))
        self.rows.append(("_count", labels, count))

    @property
    def sample_name(self) -> str:
        return f"{self.name}_total" if self.type == "counter" else self.name

    def names_of(self, suffix: str) -> tuple[str, ...]:
        """The label names of a row with this suffix (a summary's `_sum` and `_count`
        have no quantile)."""
        return self.labelnames[:-1] if suffix and self.type == "summary" else self.labelnames

    def to_metric(self) -> Metric:
        if self.type == "summary":
            # SummaryMetricFamily takes only _count and _sum per label set, no quantiles:
            # the samples are added by hand, as the fast writer writes them.
            metric = Metric(self.name, self.help, "summary")
            for suffix, labels, value in self.rows:
                metric.add_sample(f"{self.name}{suffix}",
                                  dict(zip(self.names_of(suffix), labels, strict=True)), value)
            return metric
        kind = CounterMetricFamily if self.type == "counter" else GaugeMetricFamily
        family = kind(self.name, self.help, labels=list(self.labelnames))
        for _, labels, value in self.rows:
            family.add_metric(list(labels), value)
        return family


# Labels are written in the family's order, not sorted (the format does not ask for it):
# then the leading identity labels, the same for all of an agent's series, are rendered
# once per agent and reused.
SHARED_LABELS = 3


def render(families: list[Family]) -> str:
    """The text exposition format (version 0.0.4) of ``families``."""
    lines: list[str] = []
    heads: dict[tuple[tuple[str, ...], LabelValues], str] = {}
    for family in families:
        name = family.sample_name
        lines.append(f"# HELP {name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {name} {family.type}")
        # (head, tail) label names: of the family's own samples, and of a summary's
        # `_sum` and `_count` (without the quantile).
        own, short = family.labelnames, family.names_of("_sum")
        split = {"": (own[:SHARED_LABELS], own[SHARED_LABELS:]),
                 "_sum": (short[:SHARED_LABELS], short[SHARED_LABELS:])}
        split["_count"] = split["_sum"]
        for suffix, labels, value in family.rows:
            head_names, tail_names = split[suffix]
            key = (head_names, labels[:SHARED_LABELS])
            rendered = heads.get(key)
            if rendered is None:
                rendered = _labels(head_names, key[1])
                heads[key] = rendered
            if tail_names:
                rendered = f"{rendered},{_labels(tail_names, labels[SHARED_LABELS:])}"
            lines.append(f"{name}{suffix}{{{rendered}}} {_number(value)}" if rendered
                         else f"{name}{suffix} {_number(value)}")
    lines.append("")
    return "\n".join(lines)


def _labels(names: tuple[str, ...], values: LabelValues) -> str:
    return ",".join(f'{n}="{_escape_value(v)}"' for n, v in zip(names, values, strict=True))


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _escape_value(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def stored_number(value: Any) -> float | None:
    """A stored number as sent (a count stays an integer on the page); None when absent.
    Validation is lax ("12" passed as a number), so strings are read too."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class FirstSeries:
    """A family that keeps the first value of each label set, read as stored (an absent one
    adds nothing): a payload naming a target twice, or two access points a scan cannot tell
    apart, must not put one series on the page twice (an invalid page)."""

    def __init__(self, family: Family) -> None:
        self.family = family
        self.seen: set[LabelValues] = set()

    def add(self, labels: LabelValues, value: Any) -> None:
        number = stored_number(value)
        if number is None or labels in self.seen:
            return
        self.seen.add(labels)
        self.family.add(labels, number)

"""Metric families as remote_write series: the same names and labels as on ``/metrics``,
plus ``job`` and ``instance`` (what a Prometheus scrape of the page would have added), each
sample at a time of our choosing (a record's measurement time, or the snapshot's)."""

from __future__ import annotations

from collections.abc import Iterable

from collector.exposition import Family
from collector.remote_write.encode import TimeSeries, milliseconds, sample_value, series

# The job the rules and dashboards select (up{job="schoolnet-collector"}, and the job a
# scrape of /metrics has in the example Prometheus configuration).
JOB = "schoolnet-collector"

LabelKey = tuple[tuple[str, str], ...]


class SeriesBatch:
    """Samples gathered for one request, grouped by series (a series may get several
    samples: the same agent's records of one kind at different times)."""

    def __init__(self, instance: str) -> None:
        self.target = {"job": JOB, "instance": instance}
        self._samples: dict[LabelKey, dict[int, float]] = {}
        self.count = 0

    def add(self, families: Iterable[Family], seconds: float) -> None:
        """Every sample of ``families`` at ``seconds`` (Unix time)."""
        timestamp = milliseconds(seconds)
        for family in families:
            for suffix, values, raw in family.rows:
                value = sample_value(raw)
                if value is None:
                    continue  # what is no number is not on the page either
                labels = dict(zip(family.names_of(suffix), values, strict=True))
                labels.update(self.target)
                labels["__name__"] = family.sample_name + suffix
                key = tuple(sorted(labels.items()))
                samples = self._samples.setdefault(key, {})
                if timestamp not in samples:
                    self.count += 1
                # One value per series and millisecond: two records of one probe measured
                # in the same millisecond keep the later one (a receiver would too).
                samples[timestamp] = value

    def timeseries(self) -> list[TimeSeries]:
        return [series(dict(key), [(value, ts) for ts, value in samples.items()])
                for key, samples in self._samples.items()]

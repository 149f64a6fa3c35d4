"""The report as CSV and JSON, for a spreadsheet or another program.

JSON is ``Report.as_dict()`` (``Benchmark.as_dict()``): every field of
collector/comparison/model.py, dates as ISO text, no value as null.

CSV: one row per group (``row_kind`` provider, technology, provider_technology_tier,
overall) and one per line the viewer may see (``row_kind`` line), in that order. Columns,
in this order (``CSV_COLUMNS``):

- ``row_kind``; ``board``, ``school``, ``school_name``, ``region``, ``pupils``,
  ``connection`` (lines only); ``provider_id``, ``provider``, ``technology``, ``tier``
  (index into TIER_BOUNDS_MBPS) and ``tier_mbps`` (its lower bound), empty for "every";
- counts: ``schools``, ``lines``, ``measured_lines`` (groups), ``tests``,
  ``tests_all_hours`` (lines), ``hidden`` (groups: true/false), ``below_80`` (lines:
  true/false, empty with too few tests), ``incidents``, ``currency``,
  ``advertised_download_bytes_per_second``, ``advertised_upload_bytes_per_second`` (lines);
- for each figure in ``FIGURES``: ``<figure>``, ``<figure>_low``, ``<figure>_high``,
  ``<figure>_n``, ``<figure>_unit``, ``<figure>_missing`` (the reason code when there is no
  value: too_few_tests, too_few_lines, hidden, no_cost, no_pupils, mixed_currency, no_data).

Units are the store's, not the page's: ratios (1 = 100 %), bytes per second, seconds,
money per month in ``currency``. A figure a row kind does not have is an empty cell.
Numbers are written with a full stop and no thousands separator.

Both are language-independent: codes (technology "fibre", reason "too_few_lines"), not
words, so ``?lang=`` changes nothing here (the routes still refuse a language other than
nl or en, as everywhere).

Formula injection: a spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return as a formula, and names (a provider's, a school's) come from
contract sheets anyone may have typed. Such a text cell is written with a leading ``'``
(``'=1+2 Glasnet``), which spreadsheets show as text; numbers are never prefixed (a negative
number is a number, not text).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from collector.comparison.model import (
    TIER_BOUNDS_MBPS,
    Benchmark,
    Estimate,
    GroupFigures,
    LineFigures,
    Report,
)

FIGURES: tuple[str, ...] = (
    "median_ratio",
    "ratio_80_80",
    "share_below_80",
    "upload_median_ratio",
    "median_download_bytes_per_second",
    "normalised_ratio",
    "availability",
    "latency_seconds",
    "loss_ratio",
    "median_restore_seconds",
    "monthly_cost",
    "cost_per_mbps",
    "cost_per_pupil",
)
LABEL_COLUMNS: tuple[str, ...] = (
    "row_kind", "board", "school", "school_name", "region", "pupils", "connection",
    "provider_id", "provider", "technology", "tier", "tier_mbps",
)
COUNT_COLUMNS: tuple[str, ...] = (
    "schools", "lines", "measured_lines", "tests", "tests_all_hours", "hidden", "below_80", "incidents",
    "currency", "advertised_download_bytes_per_second", "advertised_upload_bytes_per_second",
)
CSV_COLUMNS: tuple[str, ...] = LABEL_COLUMNS + COUNT_COLUMNS + tuple(
    f"{name}{suffix}" for name in FIGURES for suffix in ("", "_low", "_high", "_n", "_unit", "_missing")
)


# What a spreadsheet takes for the start of a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else ""
    return str(value)


def _estimate_cells(name: str, estimate: Estimate) -> dict[str, Any]:
    return {
        name: estimate.value,
        f"{name}_low": estimate.low,
        f"{name}_high": estimate.high,
        f"{name}_n": estimate.n,
        f"{name}_unit": estimate.unit,
        f"{name}_missing": estimate.missing,
    }


def _row(kind: str, item: GroupFigures | LineFigures) -> dict[str, Any]:
    row: dict[str, Any] = {"row_kind": kind}
    for column in LABEL_COLUMNS[1:] + COUNT_COLUMNS:
        if hasattr(item, column):
            row[column] = getattr(item, column)
    tier = row.get("tier")
    row["tier_mbps"] = TIER_BOUNDS_MBPS[tier] if isinstance(tier, int) and 0 <= tier < len(TIER_BOUNDS_MBPS) \
        else None
    for name in FIGURES:
        value = getattr(item, name, None)
        if isinstance(value, Estimate):
            row.update(_estimate_cells(name, value))
    return row


def report_rows(report: Report) -> list[dict[str, Any]]:
    rows = [_row("provider", g) for g in report.by_provider]
    rows += [_row("technology", g) for g in report.by_technology]
    rows += [_row("provider_technology_tier", g) for g in report.by_provider_technology_tier]
    rows.append(_row("overall", report.overall))
    rows += [_row("line", line) for line in report.lines]
    return rows


def report_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report_rows(report):
        writer.writerow([_plain(row.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()


def report_json(report: Report) -> str:
    return json.dumps(report.as_dict(), ensure_ascii=False, indent=1, allow_nan=False)


def benchmark_json(benchmark: Benchmark) -> str:
    return json.dumps(benchmark.as_dict(), ensure_ascii=False, indent=1, allow_nan=False)

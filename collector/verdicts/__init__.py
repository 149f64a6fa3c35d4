"""Verdict maths: what was measured, judged against the contract, by the rules regulators use.

Pure functions, no store: the caller loads results, contract terms and the school calendar,
builds `model.Measurement`s and calls `summary.direction_summary`, `rulesets.evaluate`,
`capacity.capacity_verdict` and `availability.school_hours_availability`. docs/verdicts.md
explains every rule in plain words.
"""

from __future__ import annotations

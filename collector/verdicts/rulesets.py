"""The rule sets by name, as a board selects them (`boards.rule_set`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from collector.policy import RULE_SETS, RuleSetName
from collector.verdicts import acm, bnetza, fcc, giga
from collector.verdicts.model import Measurement
from collector.verdicts.verdict import RuleVerdict

Evaluate = Callable[[Sequence[Measurement], float, float], RuleVerdict]
EVALUATORS: dict[RuleSetName, Evaluate] = {
    "acm": acm.evaluate, "bnetza": bnetza.evaluate, "fcc": fcc.evaluate, "giga": giga.evaluate}
assert set(EVALUATORS) == set(RULE_SETS)


def evaluate(rule_set: RuleSetName, measurements: Sequence[Measurement], window_start: float,
             window_end: float) -> RuleVerdict:
    """The verdict of one rule set over [window_start, window_end)."""
    try:
        rule = EVALUATORS[rule_set]
    except KeyError:
        raise ValueError(f"unknown rule set {rule_set!r}: one of {', '.join(RULE_SETS)}") from None
    return rule(measurements, window_start, window_end)

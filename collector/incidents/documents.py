"""What an incident's JSON columns hold of a school's finding and its assessment
(incidents.findings, incidents.assessment): plain JSON values, each reason also in English."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from collector.incidents.model import Finding
from collector.incidents.sentences import Sentence


def findings_document(finding: Finding) -> dict[str, Any]:
    """incidents.findings of a school's incident: the detector's figures and its
    corroboration, as they were at the last run: each {"code", "params", "text"} (the
    English beside the code; rows from before the codes hold the English alone)."""
    return {"figures": jsonable(finding.figures),
            "corroboration": [jsonable(c.as_document() if isinstance(c, Sentence) else c)
                              for c in finding.corroboration]}


def assessment_document(assessment: Any, now: float) -> dict[str, Any]:
    """incidents.assessment: the Assessment as JSON, each reason also in English, and when."""
    document = jsonable(assessment)
    reasons = []
    for reason in getattr(assessment, "reasons", ()):
        entry = jsonable(reason)
        if not isinstance(entry, dict):
            entry = {"code": None, "params": {}, "text": str(reason)}
        entry.setdefault("text", _english(reason))
        reasons.append(entry)
    document["reasons"] = reasons
    document["sla_deadline_at"] = finite(getattr(assessment, "sla_deadline_at", None))
    document["assessed_at"] = now
    return document


def _english(reason: Any) -> str:
    english = getattr(reason, "english", None)
    if callable(english):
        return str(english())
    try:
        from collector.incidents import impact

        helper = getattr(impact, "english", None)
        if callable(helper):
            return str(helper(reason))
    except ImportError:
        pass
    return str(reason)


def jsonable(value: Any) -> Any:
    """Dataclasses, tuples, mappings and numbers as plain JSON values (no NaN or inf:
    JSON has none; a missing figure is null)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return finite(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None

"""Overview: every school of the chosen boards with its status, one row each."""

from __future__ import annotations

from grafana.build.model import (
    BOARD_VARIABLE,
    GRADE_MAPPINGS,
    Dashboard,
    Panel,
    Query,
    merged_table,
    school_link,
    school_variable,
)

S = 'board=~"$board", school=~"$school"'


# The verdict of each line by its board's own rule set, as one number a value mapping names:
# 1 pass, 0 fail, -1 enough data but a speed the rule needs is not in the contract, -2 not
# enough data. `schoolnet_verdict_pass` is absent when the rule set could not judge, so the
# "or" falls back to `schoolnet_verdict_enough_data` (1 or 0) shifted below zero.
def verdict(selector: str, own_rule_set: bool = True) -> str:
    """The verdict of each line (by its board's own rule set, or by every rule set)."""
    own = " and on (board, rule_set) schoolnet_board_rule_set_info" if own_rule_set else ""
    return (
        f"(schoolnet_verdict_pass{{{selector}}}{own}) or on (board, school, connection, rule_set) "
        f"((schoolnet_verdict_enough_data{{{selector}}}{own}) - 2)"
    )


VERDICT = verdict(S)


def worst_verdict(selector: str) -> str:
    """Per school the worst verdict of its lines: a fail (0) whenever one line fails, else the
    lowest of the rest. A plain `min` would show a school with one failing line and one short
    of data as "not enough data" (-2 < 0) and hide the fail."""
    own = verdict(selector)
    return f"min by (board, school) (({own}) == 0) or min by (board, school) ({own})"


VERDICT_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "1": {"text": "pass", "color": "green", "index": 0},
            "0": {"text": "fail", "color": "red", "index": 1},
            "-1": {"text": "cannot judge (speed not in contract)", "color": "orange", "index": 2},
            "-2": {"text": "not enough data", "color": "blue", "index": 3},
        },
    }
]
UP_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "1": {"text": "up", "color": "green", "index": 0},
            "0": {"text": "down", "color": "red", "index": 1},
        },
    }
]
# For counts of problems: none is green, one or more red.
COUNT_THRESHOLDS = {
    "mode": "absolute",
    "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}],
}
SILENT_AFTER = 3600  # seconds: an agent reports every minute or so; an hour is clearly silent


def column(name: str, unit: str, **more: object) -> dict[str, object]:
    properties: list[dict[str, object]] = [{"id": "unit", "value": unit}]
    properties += [{"id": key, "value": value} for key, value in more.items()]
    return {"matcher": {"id": "byName", "options": name}, "properties": properties}


def ratio_thresholds(red_below: float, yellow_below: float) -> dict[str, object]:
    return {
        "mode": "absolute",
        "steps": [
            {"color": "red", "value": None},
            {"color": "yellow", "value": red_below},
            {"color": "green", "value": yellow_below},
        ],
    }


def count_stat(title: str, description: str, expr: str) -> Panel:
    """A count of problems; `or vector(0)` so that none is a 0, not an empty panel."""
    return Panel(
        "stat",
        title,
        description,
        "short",
        [Query(f"{expr} or vector(0)", instant=True)],
        width=6,
        height=4,
        defaults={
            "thresholds": {
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}],
            }
        },
        options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
    )


TABLE = Panel(
    "table",
    "Schools",
    "One row per school: the median of measured / advertised download in school hours over the "
    "verdict window (SCHOOLNET_VERDICT_WINDOW, 30 days) of its worst line, the worst verdict of "
    "its lines by the board's rule set (a fail first, then not enough data, cannot judge, pass), "
    "whether its line is up now, outages that ended in the chosen time range, "
    "availability in school hours over 7 days, the worst Wi-Fi grade of its rooms, and how long ago "
    "its quietest agent last reported. Click a column to sort; click a school to open it.",
    "percentunit",
    [
        Query(
            f'min by (board, school) (schoolnet_bandwidth_median_ratio{{{S}, direction="download", '
            f'hours="school"}})',
            instant=True,
            table=True,
        ),
        Query(worst_verdict(S), instant=True, table=True),
        Query(f"min by (board, school) (schoolnet_connectivity_up{{{S}}})", instant=True, table=True),
        Query(
            f"sum by (board, school) (increase(schoolnet_connectivity_outages_total{{{S}}}[$__range]))",
            instant=True,
            table=True,
        ),
        Query(
            f"min by (board, school) (schoolnet_connectivity_school_hours_availability_ratio{{{S}, "
            f'window="7d"}})',
            instant=True,
            table=True,
        ),
        Query(
            f"min by (board, school) (schoolnet_wifi_room_coverage_grade{{{S}}})", instant=True, table=True
        ),
        Query(
            f"max by (board, school) (agent:schoolnet_agent_last_report_age_seconds:max{{{S}}})",
            instant=True,
            table=True,
        ),
    ],
    width=24,
    height=12,
    defaults={
        "custom": {"filterable": True, "cellOptions": {"type": "color-text"}},
        "thresholds": ratio_thresholds(0.8, 0.95),
        "decimals": 0,
    },
    overrides=[
        school_link(),
        column("Verdict", "short", mappings=VERDICT_MAPPINGS),
        column("Line now", "short", mappings=UP_MAPPINGS),
        # Its own thresholds: the table's default ones are for ratios and would paint 0
        # outages red and any number of them green.
        column("Outages (range)", "short", thresholds=COUNT_THRESHOLDS),
        # Two decimals: 99.6 % must not read as 100 %.
        column("Availability school hours 7d", "percentunit", decimals=2),
        column("Worst room", "short", mappings=GRADE_MAPPINGS),
        column(
            "Last report (quietest agent)",
            "s",
            thresholds={
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}, {"color": "red", "value": SILENT_AFTER}],
            },
        ),
    ],
    options={
        "showHeader": True,
        "cellHeight": "sm",
        "sortBy": [{"displayName": "Median download / advertised", "desc": False}],
    },
    transformations=merged_table(
        ("A", "Median download / advertised"),
        ("B", "Verdict"),
        ("C", "Line now"),
        ("D", "Outages (range)"),
        ("E", "Availability school hours 7d"),
        ("F", "Worst room"),
        ("G", "Last report (quietest agent)"),
    ),
)

DASHBOARD = Dashboard(
    "schoolnet-overview",
    "schoolnet: overview",
    "Every school of the board at a glance: is the line delivering what the contract says, is it "
    "up, is the Wi-Fi good enough, and are the measuring agents still reporting?",
    [BOARD_VARIABLE, school_variable()],
    [
        count_stat(
            "Schools below 80 % of advertised",
            "Schools whose worst line's median download in school hours over the verdict window is "
            "below 80 % of the advertised speed (the FCC-style 80/80 bar).",
            f'count(min by (board, school) (schoolnet_bandwidth_median_ratio{{{S}, direction="download", '
            f'hours="school"}}) < 0.8)',
        ),
        count_stat(
            "Lines failing their verdict",
            "Lines that fail the rule set their board chose (acm, bnetza, fcc or giga) over the verdict "
            "window; docs/verdicts.md explains each.",
            f"count(({VERDICT}) == 0)",
        ),
        count_stat(
            "Schools with an outage now",
            "Schools where at least one agent's latest connectivity window ended inside an outage.",
            f"count(max by (board, school) (schoolnet_connectivity_outage_active{{{S}}}))",
        ),
        count_stat(
            "Agents silent for over an hour",
            "Agents whose last delivered batch is more than an hour old (the collector drops an agent "
            "from /metrics after 24 h of silence: the fleet dashboard lists the rest).",
            f"count(agent:schoolnet_agent_last_report_age_seconds:max{{{S}}} > {SILENT_AFTER})",
        ),
        TABLE,
        Panel(
            "timeseries",
            "Median download / advertised, school hours",
            "Per school, the median measured / advertised download ratio of its worst line in school hours "
            "over the verdict window, as it changed (1 = as advertised).",
            "percentunit",
            [
                Query(
                    f'min by (board, school) (schoolnet_bandwidth_median_ratio{{{S}, direction="download", '
                    f'hours="school"}})',
                    legend="{{school}}",
                )
            ],
            width=12,
        ),
        Panel(
            "timeseries",
            "Availability in school hours, 7 days",
            "Per school, the share of school hours in the last 7 days without an outage seen by any of its "
            "agents (its own calendar).",
            "percentunit",
            [
                Query(
                    f"min by (board, school) (schoolnet_connectivity_school_hours_availability_ratio{{{S}, "
                    f'window="7d"}})',
                    legend="{{school}}",
                )
            ],
            width=12,
            defaults={"min": 0, "max": 1},
        ),
    ],
)

"""Providers and technologies: which delivers, over the chosen boards' lines, with sample sizes."""

from __future__ import annotations

from grafana.build.model import BOARD_VARIABLE, Dashboard, Panel, Query, merged_table

B = 'board=~"$board"'
# Attach provider and technology to a per-line figure: schoolnet_connection_info has exactly one
# series per (board, school, connection), so the join is one-to-one.
PER_LINE = "* on (board, school, connection) group_left (provider, technology) schoolnet_connection_info"
MEDIAN = f'(schoolnet_bandwidth_median_ratio{{{B}, direction="download", hours="school"}} {PER_LINE})'
OWN_VERDICT = (
    f"((schoolnet_verdict_pass{{{B}}} and on (board, rule_set) schoolnet_board_rule_set_info) {PER_LINE})"
)


def column(name: str, unit: str) -> dict[str, object]:
    return {"matcher": {"id": "byName", "options": name}, "properties": [{"id": "unit", "value": unit}]}


DASHBOARD = Dashboard(
    "schoolnet-providers",
    "schoolnet: providers",
    "Per provider and technology over the chosen boards' lines: how close to the advertised speed they "
    "come in school hours, how many pass their verdict, how available they are, and on how many lines "
    "and tests each figure rests.",
    [BOARD_VARIABLE],
    [
        Panel(
            "table",
            "Providers and technologies",
            "One row per provider and technology: lines in the registry (main lines), the median over "
            "its lines "
            "of each line's median measured / advertised download in school hours, the lowest line's 80/80 "
            "ratio, the valid tests those rest on, the share of judged lines that pass their board's "
            "rule set, "
            "and the lines judged. Compare providers only where the lines and tests are not few.",
            "percentunit",
            [
                Query(
                    f'count by (provider, technology) (schoolnet_connection_info{{{B}, role="main"}})',
                    instant=True,
                    table=True,
                ),
                Query(f"quantile by (provider, technology) (0.5, {MEDIAN})", instant=True, table=True),
                Query(
                    "min by (provider, technology) (schoolnet_bandwidth_80_80_ratio"
                    f'{{{B}, direction="download", hours="school"}} {PER_LINE})',
                    instant=True,
                    table=True,
                ),
                Query(
                    f'sum by (provider, technology) (schoolnet_bandwidth_window_tests{{{B}, hours="school"}} '
                    f"{PER_LINE})",
                    instant=True,
                    table=True,
                ),
                Query(f"avg by (provider, technology) ({OWN_VERDICT})", instant=True, table=True),
                Query(f"count by (provider, technology) ({OWN_VERDICT})", instant=True, table=True),
            ],
            width=24,
            height=9,
            defaults={"decimals": 2, "custom": {"filterable": True}},
            overrides=[
                column("Main lines", "short"),
                column("Valid tests (school hours)", "short"),
                column("Lines judged", "short"),
            ],
            options={
                "showHeader": True,
                "sortBy": [{"displayName": "Median download / advertised", "desc": True}],
            },
            transformations=merged_table(
                ("A", "Main lines"),
                ("B", "Median download / advertised"),
                ("C", "Lowest 80/80 ratio"),
                ("D", "Valid tests (school hours)"),
                ("E", "Share passing"),
                ("F", "Lines judged"),
            ),
        ),
        Panel(
            "timeseries",
            "Median download / advertised per provider",
            "Per provider and technology, the median over its lines of each line's median measured / "
            "advertised "
            "download in school hours over the verdict window, as it changed.",
            "percentunit",
            [
                Query(
                    f"quantile by (provider, technology) (0.5, {MEDIAN})",
                    legend="{{provider}} {{technology}}",
                )
            ],
            width=12,
        ),
        Panel(
            "timeseries",
            "Availability per provider (provider's side), 7 days",
            "Per provider of the schools' main lines, the mean over its schools of the share of the last "
            "7 days without an outage on the provider's side (outages=\"isp\": the gateway answered, the "
            "internet did not).",
            "percentunit",
            [
                Query(
                    f'avg by (provider) (schoolnet_connectivity_availability_ratio{{{B}, window="7d", '
                    f'outages="isp"}} * on (board, school) group_left (provider) '
                    "school:schoolnet_main_provider:info)",
                    legend="{{provider}}",
                )
            ],
            width=12,
            defaults={"max": 1},
        ),
        Panel(
            "bargauge",
            "Lines per technology",
            "Lines in the registry per technology and role (main or backup).",
            "short",
            [
                Query(
                    f"count by (technology, role) (schoolnet_connection_info{{{B}}})",
                    legend="{{technology}} {{role}}",
                    instant=True,
                )
            ],
            width=12,
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        ),
        Panel(
            "bargauge",
            "Lines with enough capacity for Digitaal",
            "Per provider and technology, the share of lines whose median download in school hours "
            "covers what "
            "the Digitaal profile needs for the school's peak of devices.",
            "percentunit",
            [
                Query(
                    "avg by (provider, technology) "
                    f'(schoolnet_capacity_sufficient{{{B}, profile="digitaal"}} {PER_LINE})',
                    legend="{{provider}} {{technology}}",
                    instant=True,
                )
            ],
            width=12,
            defaults={"min": 0, "max": 1},
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        ),
    ],
    time_from="now-30d",
)

"""Fleet: the measuring agents themselves: versions, last report, outbox, what they gave up, probes."""

from __future__ import annotations

from grafana.build.model import (
    AGENT_VARIABLE,
    BOARD_VARIABLE,
    Dashboard,
    Panel,
    Query,
    merged_table,
    school_link,
    school_variable,
)

A = 'board=~"$board", school=~"$school", agent=~"$agent"'
# Every column of the agents table carries the agent's version, so the merge joins one row per agent.
VERSION = "* on (board, school, agent) group_left (version) schoolnet_agent_info"
SUCCESS_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "1": {"text": "measured", "color": "green", "index": 0},
            "0": {"text": "failed", "color": "red", "index": 1},
        },
    }
]


def column(name: str, unit: str) -> dict[str, object]:
    return {"matcher": {"id": "byName", "options": name}, "properties": [{"id": "unit", "value": unit}]}


DASHBOARD = Dashboard(
    "schoolnet-fleet",
    "schoolnet: fleet",
    "Are the measuring machines healthy: which versions run, when did each last report, is anything "
    "piling up in an outbox or being given up, and which probes fail?",
    [BOARD_VARIABLE, school_variable(), AGENT_VARIABLE],
    [
        Panel(
            "stat",
            "Agents",
            "Agents on /metrics for the chosen schools (reported within SCHOOLNET_AGENT_EXPIRY).",
            "short",
            [Query(f"count(schoolnet_agent_info{{{A}}})", instant=True)],
            width=6,
            height=5,
            options={"reduceOptions": {"calcs": ["lastNotNull"]}},
        ),
        Panel(
            "bargauge",
            "Versions",
            "Agents per agent version.",
            "short",
            [Query(f"count by (version) (schoolnet_agent_info{{{A}}})", legend="{{version}}", instant=True)],
            width=6,
            height=5,
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        ),
        Panel(
            "table",
            "Silent agents",
            "Agents whose last delivered batch is more than an hour old. Empty when every agent reports.",
            "s",
            [
                Query(
                    f"agent:schoolnet_agent_last_report_age_seconds:max{{{A}}} > 3600",
                    instant=True,
                    table=True,
                )
            ],
            width=12,
            height=5,
            allow_empty="lists only agents silent for more than an hour",
            transformations=merged_table(("A", "Silent for")),
        ),
        Panel(
            "table",
            "Agents",
            "One row per agent: its version, seconds since its last delivered batch and when that was, "
            "records "
            "and bytes waiting in its outbox as of that batch, records it gave up on since it enrolled "
            "(evicted "
            "when the outbox was full, dead-lettered when refused as malformed) and probe runs that "
            "failed in "
            "the chosen time range. Click a school to open it.",
            "short",
            [
                Query(
                    f"agent:schoolnet_agent_last_report_age_seconds:max{{{A}}} {VERSION}",
                    instant=True,
                    table=True,
                ),
                Query(
                    "1000 * max by (board, school, agent) "
                    f"(schoolnet_agent_last_report_timestamp_seconds{{{A}}}) "
                    f"{VERSION}",
                    instant=True,
                    table=True,
                ),
                Query(
                    f"max by (board, school, agent) (schoolnet_agent_outbox_records{{{A}}}) {VERSION}",
                    instant=True,
                    table=True,
                ),
                Query(
                    f"max by (board, school, agent) (schoolnet_agent_outbox_bytes{{{A}}}) {VERSION}",
                    instant=True,
                    table=True,
                ),
                Query(
                    f"sum by (board, school, agent) (schoolnet_agent_given_up_records_total{{{A}}}) "
                    f"{VERSION}",
                    instant=True,
                    table=True,
                ),
                Query(
                    "sum by (board, school, agent) "
                    f"(increase(schoolnet_probe_failures_total{{{A}}}[$__range])) "
                    f"{VERSION}",
                    instant=True,
                    table=True,
                ),
            ],
            width=24,
            height=9,
            defaults={"custom": {"filterable": True}},
            overrides=[
                school_link(),
                column("Last report age", "s"),
                column("Last report", "dateTimeAsIso"),
                column("Outbox bytes", "bytes"),
            ],
            options={"showHeader": True, "sortBy": [{"displayName": "Last report age", "desc": True}]},
            transformations=merged_table(
                ("A", "Last report age"),
                ("B", "Last report"),
                ("C", "Outbox records"),
                ("D", "Outbox bytes"),
                ("E", "Given up (since enrolment)"),
                ("F", "Failed runs (range)"),
            ),
        ),
        Panel(
            "timeseries",
            "Seconds since the last report",
            "Per agent, how long ago its last batch arrived; a steady climb is an agent that fell silent.",
            "s",
            [Query(f"agent:schoolnet_agent_last_report_age_seconds:max{{{A}}}", legend="{{agent}}")],
            width=12,
        ),
        Panel(
            "timeseries",
            "Outbox depth",
            "Records waiting in each agent's outbox as of its last batch: a rising line is an agent that "
            "measures faster than it can deliver.",
            "short",
            [Query(f"schoolnet_agent_outbox_records{{{A}}}", legend="{{agent}}")],
            width=12,
        ),
        Panel(
            "timeseries",
            "Records given up",
            "Records each agent gave up on per interval, by reason: evicted (outbox full, oldest first) or "
            "dead-lettered (the collector refused the batch as malformed). Each is a measurement lost.",
            "short",
            [
                Query(
                    f"sum by (agent, reason) (increase(schoolnet_agent_given_up_records_total{{{A}}}"
                    "[$__rate_interval]))",
                    legend="{{agent}} {{reason}}",
                )
            ],
            width=12,
        ),
        Panel(
            "bargauge",
            "Failed runs by probe",
            "Probe runs that could not measure in the chosen time range, per probe, over the chosen agents.",
            "short",
            [
                Query(
                    f"sum by (probe) (increase(schoolnet_probe_failures_total{{{A}}}[$__range]))",
                    legend="{{probe}}",
                    instant=True,
                )
            ],
            width=12,
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        ),
        Panel(
            "state-timeline",
            "Newest run per probe",
            "Whether each agent's newest stored run of each probe measured or failed.",
            "short",
            [Query(f"schoolnet_probe_success{{{A}}}", legend="{{agent}} {{probe}}")],
            width=12,
            defaults={"mappings": SUCCESS_MAPPINGS},
        ),
        Panel(
            "bargauge",
            "Bandwidth tests by result",
            "Speed tests stored in the chosen time range: valid, invalid (the agent itself was the limit), "
            "failed, skipped (budget spent or another agent had the school's turn).",
            "short",
            [
                Query(
                    f"sum by (result) (increase(schoolnet_bandwidth_tests_total{{{A}}}[$__range]))",
                    legend="{{result}}",
                    instant=True,
                )
            ],
            width=12,
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        ),
        Panel(
            "timeseries",
            "Agent memory",
            "Resident memory of each agent process, from its latest system run.",
            "bytes",
            [Query(f"schoolnet_agent_resident_memory_bytes{{{A}}}", legend="{{agent}}")],
            width=12,
        ),
        Panel(
            "timeseries",
            "Free space for the outbox",
            "Free bytes where each agent keeps its outbox, from its latest system run.",
            "bytes",
            [Query(f"schoolnet_agent_state_dir_free_bytes{{{A}}}", legend="{{agent}}")],
            width=12,
        ),
        Panel(
            "timeseries",
            "Host CPU busy",
            "Share of the agent host's CPU time busy (1 = every core).",
            "percentunit",
            [Query(f"schoolnet_system_cpu_usage_ratio{{{A}}}", legend="{{agent}}")],
            width=12,
        ),
    ],
    time_from="now-24h",
)

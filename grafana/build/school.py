"""One school: its line against its contract over time, latency, loss, outages, devices, Wi-Fi."""

from __future__ import annotations

from grafana.build.model import (
    AGENT_VARIABLE,
    BOARD_VARIABLE,
    GRADE_MAPPINGS,
    Dashboard,
    Panel,
    Query,
    school_variable,
)
from grafana.build.overview import UP_MAPPINGS, VERDICT_MAPPINGS, verdict

S = 'board=~"$board", school=~"$school"'
A = f'{S}, agent=~"$agent"'

LATEST_TEST = (
    "A measured value is the agent's latest test as /metrics shows it: a step is a new test, "
    "a flat stretch the time between tests (the full history stays in the collector's store)."
)


def contract_panel(direction: str) -> Panel:
    lines = [
        Query(
            f"max by (agent) (schoolnet_bandwidth_{direction}_bytes_per_second{{{A}}})",
            legend="{{agent}} measured",
        ),
        Query(
            f"max by (connection) (schoolnet_contract_{direction}_bytes_per_second{{{S}}})",
            legend="{{connection}} advertised",
        ),
    ]
    lines += [
        Query(
            f"max by (connection) (schoolnet_contract_{direction}_{term}_bytes_per_second{{{S}}})",
            legend=f"{{{{connection}}}} {term}",
        )
        for term in ("normal", "minimum")
    ]
    return Panel(
        "timeseries",
        f"{direction.title()} versus the contract",
        f"{direction.title()} goodput of each agent's latest valid or invalid test against the line's "
        "advertised, normally available and minimum speeds (the contract in force today; normal and "
        f"minimum only where the contract states them). {LATEST_TEST}",
        "Bps",
        lines,
        defaults={"custom": {"lineInterpolation": "stepAfter"}},
    )


DASHBOARD = Dashboard(
    "schoolnet-school",
    "schoolnet: school",
    "One school in detail: does its line deliver the contract, in school hours and under load; when "
    "was it down; how many devices shared it; how good is the Wi-Fi in each room?",
    [BOARD_VARIABLE, school_variable(multi=False), AGENT_VARIABLE],
    [
        contract_panel("download"),
        contract_panel("upload"),
        Panel(
            "timeseries",
            "Measured / advertised download",
            "Each agent's latest valid test as a share of the advertised speed (invalid tests, where the "
            "agent "
            "itself was the limit, leave a gap), and per line the median over the verdict window in school "
            f"hours. 1 = as advertised. {LATEST_TEST}",
            "percentunit",
            [
                Query(
                    f"agent:schoolnet_bandwidth_download_ratio:valid{{{A}}}",
                    legend="{{agent}} latest valid test",
                ),
                Query(
                    f'schoolnet_bandwidth_median_ratio{{{S}, direction="download", hours="school"}}',
                    legend="{{connection}} median, school hours",
                ),
            ],
            width=12,
            defaults={"custom": {"lineInterpolation": "stepAfter"}},
        ),
        Panel(
            "table",
            "Verdicts by rule set",
            "Each line judged by every rule set over the verdict window (the board's own choice drives the "
            "alerts): pass, fail, cannot judge (a speed the rule needs is not in the contract) or not enough "
            "data (run `schoolnet-collector verdicts` for what is missing).",
            "short",
            [
                Query(verdict(S, own_rule_set=False), instant=True, table=True),
                Query(f'schoolnet_bandwidth_window_tests{{{S}, hours="school"}}', instant=True, table=True),
            ],
            width=12,
            defaults={"mappings": VERDICT_MAPPINGS},
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True, "__name__": True, "hours": True},
                        "renameByName": {"Value #A": "Verdict", "Value #B": "Tests in school hours"},
                    },
                },
            ],
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "Tests in school hours"},
                    "properties": [{"id": "mappings", "value": []}],
                }
            ],
        ),
        Panel(
            "timeseries",
            "Latency idle and under load",
            "Median round trip to the speed-test server before the test (idle) and while the download and "
            "the upload ran (under load: a big rise is bufferbloat), and the median echo round trip to each "
            "internet target in the latest connectivity window.",
            "s",
            [
                Query(f"schoolnet_bandwidth_idle_latency_seconds{{{A}}}", legend="{{agent}} idle"),
                Query(
                    f"schoolnet_bandwidth_download_loaded_latency_seconds{{{A}}}",
                    legend="{{agent}} under download",
                ),
                Query(
                    f"schoolnet_bandwidth_upload_loaded_latency_seconds{{{A}}}",
                    legend="{{agent}} under upload",
                ),
                Query(
                    f'schoolnet_latency_seconds{{{A}, role="internet", quantile="0.5"}}',
                    legend="{{agent}} echo {{target}}",
                ),
            ],
            width=12,
        ),
        Panel(
            "timeseries",
            "Packet loss",
            "Share of echo probes without a reply in each agent's latest connectivity window, per "
            "target, and "
            "the lowest over its internet targets (above 0 only when every target lost probes: the line, not "
            "one far-away target).",
            "percentunit",
            [
                Query(f"schoolnet_packet_loss_ratio{{{A}}}", legend="{{agent}} → {{target}}"),
                Query(f"agent:schoolnet_internet_packet_loss_ratio:min{{{A}}}", legend="{{agent}} line"),
            ],
            width=12,
        ),
        Panel(
            "state-timeline",
            "Line up or down",
            "Per agent, whether its latest connectivity window ended inside an outage. An agent cut off "
            "by an "
            "outage reports it when the line is back, so a gap here is read with the last report.",
            "short",
            [Query(f"schoolnet_connectivity_up{{{A}}}", legend="{{agent}}")],
            width=12,
            height=6,
            defaults={"mappings": UP_MAPPINGS},
        ),
        Panel(
            "state-timeline",
            "Outage under way",
            "The kind of outage under way now, per school (isp: the provider's side; lan: the school's "
            "network; "
            "dns; internet: side unknown). Empty while the line is up.",
            "short",
            [Query(f"school:schoolnet_connectivity_outage_active:max{{{S}}}", legend="{{kind}}")],
            width=12,
            height=6,
            allow_empty="only while an outage is under way",
            defaults={"mappings": [{"type": "value", "options": {"1": {"text": "outage", "color": "red"}}}]},
        ),
        Panel(
            "bargauge",
            "Outages that ended in the time range",
            "Outages of each kind that ended within the chosen time range, counted over all of the school's "
            "agents (an outage seen by two agents counts twice here; availability counts it once).",
            "short",
            [
                Query(
                    f"sum by (kind) (increase(schoolnet_connectivity_outages_total{{{A}}}[$__range]))",
                    legend="{{kind}}",
                    instant=True,
                )
            ],
            width=8,
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        ),
        Panel(
            "bargauge",
            "Outage time in the time range",
            "How long the outages that ended in the chosen time range lasted, per kind, seconds on the "
            "agents' "
            "monotonic clocks.",
            "s",
            [
                Query(
                    f"sum by (kind) (increase(schoolnet_connectivity_outage_seconds_total{{{A}}}[$__range]))",
                    legend="{{kind}}",
                    instant=True,
                )
            ],
            width=8,
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        ),
        Panel(
            "stat",
            "Availability",
            "Share of the observed time without an outage over 1, 7 and 30 days (any kind, the union "
            "over the "
            "school's agents), and of the school hours only over 7 and 30 days.",
            "percentunit",
            [
                Query(
                    f'schoolnet_connectivity_availability_ratio{{{S}, outages="all"}}',
                    legend="{{window}}",
                    instant=True,
                ),
                Query(
                    f"schoolnet_connectivity_school_hours_availability_ratio{{{S}}}",
                    legend="{{window}} school hours",
                    instant=True,
                ),
            ],
            width=8,
            defaults={"decimals": 2},
            options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"},
        ),
        Panel(
            "timeseries",
            "Devices on the network",
            "Devices counted by each agent's census in its latest window (all sources combined), the most of "
            "one window this hour, and the count at the latest speed test: read every bandwidth figure "
            "with it.",
            "short",
            [
                Query(f'schoolnet_concurrent_devices{{{A}, source="all"}}', legend="{{agent}} now"),
                Query(f"schoolnet_concurrent_devices_hour_peak{{{A}}}", legend="{{agent}} this hour's peak"),
                Query(
                    f"schoolnet_bandwidth_concurrent_devices{{{A}}}", legend="{{agent}} at the latest test"
                ),
            ],
            width=12,
        ),
        Panel(
            "bargauge",
            "Capacity needed per profile",
            "What each profile (Basis, Digitaal, Experimenteel) needs for the peak of devices in school "
            "hours, "
            "beside the line's median download in school hours.",
            "Bps",
            [
                Query(
                    f"schoolnet_capacity_required_bytes_per_second{{{S}}}",
                    legend="{{connection}} {{profile}}",
                    instant=True,
                )
            ],
            width=12,
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        ),
        Panel(
            "state-timeline",
            "Wi-Fi grade per room",
            "Each room's coverage grade from its newest observation (an agent in the room or a survey): "
            "video, "
            "browsing, poor or none (thresholds SCHOOLNET_WIFI_VIDEO_DBM and SCHOOLNET_WIFI_BROWSING_DBM).",
            "short",
            [Query(f"schoolnet_wifi_room_coverage_grade{{{S}}}", legend="{{room}}")],
            width=12,
            defaults={"mappings": GRADE_MAPPINGS},
        ),
        Panel(
            "timeseries",
            "Wi-Fi signal per room",
            "Signal of each room's newest observation per source (agent, survey), against the weakest "
            "signals "
            "that still earn video and browsing.",
            "dBm",
            [
                Query(f"schoolnet_wifi_room_signal_dbm{{{S}}}", legend="{{room}} ({{source}})"),
                Query("max by (grade) (schoolnet_wifi_coverage_threshold_dbm)", legend="{{grade}} threshold"),
            ],
            width=12,
        ),
    ],
)

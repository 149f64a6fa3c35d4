"""Wi-Fi rooms: coverage grade and signal per room over time, and each agent's own link."""

from __future__ import annotations

from grafana.build.model import (
    BOARD_VARIABLE,
    GRADE_MAPPINGS,
    Dashboard,
    Panel,
    Query,
    merged_table,
    query_variable,
    school_variable,
)

S = 'board=~"$board", school=~"$school"'
R = f'{S}, room=~"$room"'

ROOM_VARIABLE = {
    **query_variable(
        "room",
        "Room",
        f"label_values(schoolnet_wifi_room_coverage_grade{{{S}}}, room)",
        "The room, by id, among the chosen schools' rooms on /metrics (a room stays for "
        "SCHOOLNET_ROOM_EXPIRY, 400 days by default, after its newest observation). All includes "
        "agents placed in no room.",
    ),
    # All must also match an agent that has no room (room=""): the agents' own link panels
    # follow this variable, and ".+" would drop those agents from them.
    "allValue": ".*",
}


def column(name: str, unit: str, **more: object) -> dict[str, object]:
    properties: list[dict[str, object]] = [{"id": "unit", "value": unit}]
    properties += [{"id": key, "value": value} for key, value in more.items()]
    return {"matcher": {"id": "byName", "options": name}, "properties": properties}


DASHBOARD = Dashboard(
    "schoolnet-wifi-rooms",
    "schoolnet: Wi-Fi rooms",
    "Which rooms have Wi-Fi good enough for video lessons, which only for browsing, and which are poor: "
    "from agents placed in rooms and from surveys.",
    [BOARD_VARIABLE, school_variable(), ROOM_VARIABLE],
    [
        Panel(
            "table",
            "Rooms now",
            "Per room its grade from the newest observation of any source, the newest signal from an "
            "agent in "
            "the room and from a survey, when it was last observed and how many observations it has had. "
            "`schoolnet-collector rooms --school SCHOOL` gives the history per room.",
            "short",
            [
                Query(
                    f"max by (board, school, room) (schoolnet_wifi_room_coverage_grade{{{R}}})",
                    instant=True,
                    table=True,
                ),
                Query(
                    f'max by (board, school, room) (schoolnet_wifi_room_signal_dbm{{{R}, source="agent"}})',
                    instant=True,
                    table=True,
                ),
                Query(
                    f'max by (board, school, room) (schoolnet_wifi_room_signal_dbm{{{R}, source="survey"}})',
                    instant=True,
                    table=True,
                ),
                Query(
                    "1000 * max by (board, school, room) "
                    f"(schoolnet_wifi_room_observation_timestamp_seconds{{{R}}})",
                    instant=True,
                    table=True,
                ),
                Query(
                    f"sum by (board, school, room) (schoolnet_wifi_room_observations_total{{{R}}})",
                    instant=True,
                    table=True,
                ),
            ],
            width=24,
            height=9,
            defaults={"custom": {"filterable": True}},
            overrides=[
                column("Grade", "short", mappings=GRADE_MAPPINGS),
                column("Signal (agent)", "dBm"),
                column("Signal (survey)", "dBm"),
                column("Last observed", "dateTimeAsIso"),
            ],
            options={"showHeader": True, "sortBy": [{"displayName": "Grade", "desc": False}]},
            transformations=merged_table(
                ("A", "Grade"),
                ("B", "Signal (agent)"),
                ("C", "Signal (survey)"),
                ("D", "Last observed"),
                ("E", "Observations"),
            ),
        ),
        Panel(
            "state-timeline",
            "Coverage grade per room",
            "Each room's grade over time: video, browsing, poor, none. It changes when an agent in the room "
            "reports or a survey is made there.",
            "short",
            [Query(f"schoolnet_wifi_room_coverage_grade{{{R}}}", legend="{{school}} / {{room}}")],
            width=24,
            defaults={"mappings": GRADE_MAPPINGS},
        ),
        Panel(
            "timeseries",
            "Signal per room",
            "Signal of each room's newest observation per source, against the weakest signals that still "
            "earn "
            "video (SCHOOLNET_WIFI_VIDEO_DBM) and browsing (SCHOOLNET_WIFI_BROWSING_DBM).",
            "dBm",
            [
                Query(f"schoolnet_wifi_room_signal_dbm{{{R}}}", legend="{{school}} / {{room}} ({{source}})"),
                Query("max by (grade) (schoolnet_wifi_coverage_threshold_dbm)", legend="{{grade}} threshold"),
            ],
            width=12,
        ),
        Panel(
            "timeseries",
            "Agents' own link: signal",
            "Signal of each agent's own Wi-Fi link in its latest run, by the room it is in (no series for an "
            "agent whose Wi-Fi is not associated: a wired Pi).",
            "dBm",
            [Query(f"schoolnet_wifi_signal_dbm{{{R}}}", legend="{{agent}} in {{room}}")],
            width=12,
        ),
        Panel(
            "timeseries",
            "Agents' own link: bitrate",
            "PHY bitrate of the last frames each agent received and sent (the radio's rate, not traffic).",
            "Bps",
            [
                Query(f"schoolnet_wifi_receive_bitrate_bytes_per_second{{{R}}}", legend="{{agent}} receive"),
                Query(
                    f"schoolnet_wifi_transmit_bitrate_bytes_per_second{{{R}}}", legend="{{agent}} transmit"
                ),
            ],
            width=12,
        ),
        Panel(
            "timeseries",
            "Agents' own link: retries",
            "Frames each agent had to send again, per second (a counter since the association: a "
            "re-association "
            "counts as a reset).",
            "pps",
            [
                Query(
                    f"rate(schoolnet_wifi_transmit_retries_total{{{R}}}[$__rate_interval])",
                    legend="{{agent}} in {{room}}",
                )
            ],
            width=12,
        ),
    ],
)

"""The pieces of a Grafana 11 dashboard (schemaVersion 39) as plain dicts, built from a few
helpers so every panel gets the same datasource, a unit and a description by construction.

Every panel and every query variable reads the `${datasource}` template variable, never a
uid: the one uid written down is the provisioned datasource's, as that variable's default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DATASOURCE_UID = "schoolnet-prometheus"  # grafana/provisioning/datasources/schoolnet.yml
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
TAG = "schoolnet"

# The collector's grades (docs/metrics.md, Rooms) as Grafana value mappings and colours.
GRADE_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "none", "color": "dark-red", "index": 0},
            "1": {"text": "poor", "color": "red", "index": 1},
            "2": {"text": "browsing", "color": "yellow", "index": 2},
            "3": {"text": "video", "color": "green", "index": 3},
        },
    }
]


@dataclass
class Query:
    """One PromQL query of a panel. ``instant`` for tables and stats that show the value now."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False

    def target(self, ref_id: str) -> dict[str, Any]:
        return {
            "refId": ref_id,
            "datasource": DATASOURCE,
            "expr": self.expr,
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "instant": self.instant,
            "format": "table" if self.table else "time_series",
            "editorMode": "code",
        }


@dataclass
class Panel:
    """A panel; ``allow_empty`` is the reason a query may rightly return nothing (a panel that
    shows only problems). It is not written into the JSON: the end-to-end test reads it here."""

    type: str
    title: str
    description: str
    unit: str
    queries: list[Query]
    width: int = 12
    height: int = 8
    allow_empty: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    transformations: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        refs = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        return {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "targets": [q.target(refs[i]) for i, q in enumerate(self.queries)],
            "fieldConfig": {"defaults": {"unit": self.unit, **self.defaults}, "overrides": self.overrides},
            "options": self.options,
            "transformations": self.transformations,
        }


def datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "description": "The Prometheus (or VictoriaMetrics) that scrapes the collector; by default "
        "the provisioned one. A cooperative gives each board its own (docs/grafana.md).",
        "current": {"selected": False, "text": "schoolnet", "value": DATASOURCE_UID},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
        "includeAll": False,
        "multi": False,
    }


def query_variable(name: str, label: str, query: str, description: str, multi: bool = True) -> dict[str, Any]:
    """A `label_values(...)` variable; ``multi`` ones offer All (a regex of every value)."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "description": description,
        "definition": query,
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "sort": 1,
        "regex": "",
        "hide": 0,
        "options": [],
        "current": {},
        "includeAll": multi,
        "multi": multi,
        **({"allValue": ".+"} if multi else {}),
    }


BOARD_VARIABLE = query_variable(
    "board",
    "Board",
    "label_values(schoolnet_board_rule_set_info, board)",
    "The school board (bestuur), by id. Every board on the collector has a rule set, so every "
    "board is listed, with or without agents.",
)
SCHOOL_QUERY = 'label_values(schoolnet_school_in_session{board=~"$board"}, school)'
SCHOOL_DESCRIPTION = (
    "The school, by id, among the chosen boards' schools (every school in the "
    "registry has a calendar, so it is listed before its first agent reports)."
)
AGENT_VARIABLE = query_variable(
    "agent",
    "Agent",
    'label_values(schoolnet_agent_info{board=~"$board", school=~"$school"}, agent)',
    "The measuring machine (agent), by id, among the chosen schools' agents on /metrics (an agent "
    "silent for longer than SCHOOLNET_AGENT_EXPIRY, 24 h by default, leaves the list).",
)


def school_variable(multi: bool = True) -> dict[str, Any]:
    return query_variable("school", "School", SCHOOL_QUERY, SCHOOL_DESCRIPTION, multi=multi)


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    variables: list[dict[str, Any]]
    panels: list[Panel]
    time_from: str = "now-7d"

    def to_json(self) -> dict[str, Any]:
        laid_out, x, y, row_height = [], 0, 0, 0
        for number, panel in enumerate(self.panels, start=1):
            if x + panel.width > 24:  # next row
                x, y, row_height = 0, y + row_height, 0
            laid_out.append(panel.to_json(number, x, y))
            x, row_height = x + panel.width, max(row_height, panel.height)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": [TAG],
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "editable": True,
            "graphTooltip": 1,
            "timezone": "browser",
            "refresh": "1m",
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "annotations": {"list": []},
            "links": [
                {
                    "title": "schoolnet dashboards",
                    "type": "dashboards",
                    "tags": [TAG],
                    "asDropdown": True,
                    "includeVars": True,
                    "keepTime": True,
                    "targetBlank": False,
                    "icon": "external link",
                    "tooltip": "",
                    "url": "",
                }
            ],
            "templating": {"list": [datasource_variable(), *self.variables]},
            "panels": laid_out,
        }


def school_link(field_name: str = "school") -> dict[str, Any]:
    """A table override: the school's cell opens the school dashboard for that school."""
    return {
        "matcher": {"id": "byName", "options": field_name},
        "properties": [
            {
                "id": "links",
                "value": [
                    {
                        "title": "Open the school's dashboard",
                        "url": "/d/schoolnet-school/schoolnet-school?var-datasource=${datasource}"
                        "&var-board=${__data.fields.board}&var-school=${__value.raw}&${__url_time_range}",
                    }
                ],
            }
        ],
    }


def merged_table(*columns: tuple[str, str], hidden: tuple[str, ...] = ("Time",)) -> list[dict[str, Any]]:
    """Transformations that join instant queries A, B, … into one row per label set and name each
    value column ``Value #A`` → the given title."""
    rename = {f"Value #{ref}": title for ref, title in columns}
    return [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": dict.fromkeys(hidden, True),
                "renameByName": rename,
                "indexByName": {},
            },
        },
    ]

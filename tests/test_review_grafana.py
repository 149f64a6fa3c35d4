"""Review of the dashboards: what a coordinator would read wrongly although every query returns data.

The verdict column is evaluated by Prometheus's own engine (`promtool test rules`, Debian's
promtool) on series shaped as the collector exposes them; the rest reads the generated JSON.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from support.tools import require_tool

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the generator lives beside the packages, not in them
    sys.path.insert(0, str(ROOT))

from grafana.build import generated  # noqa: E402

BOARDS = {name: json.loads(text) for name, text in generated().items()}


def panel(file: str, title: str) -> dict[str, Any]:
    [found] = [p for p in BOARDS[file]["panels"] if p["title"] == title]
    return found


def column_colour(table: dict[str, Any], column: str, value: float) -> str:
    """The colour Grafana gives ``value`` in ``column`` of a table: a value mapping's colour if one
    matches, else the last threshold step at or below the value (the column's override, or the
    panel's default thresholds)."""
    defaults = table["fieldConfig"]["defaults"]
    mappings, thresholds = defaults.get("mappings", []), defaults.get("thresholds")
    for override in table["fieldConfig"]["overrides"]:
        if override["matcher"] == {"id": "byName", "options": column}:
            for prop in override["properties"]:
                if prop["id"] == "mappings":
                    mappings = prop["value"]
                elif prop["id"] == "thresholds":
                    thresholds = prop["value"]
    for mapping in mappings:
        hit = mapping["options"].get(f"{value:g}") if mapping["type"] == "value" else None
        if hit and hit.get("color"):
            return str(hit["color"])
    assert thresholds, f"{column} has no colour"
    colour = thresholds["steps"][0]["color"]
    for step in thresholds["steps"][1:]:
        if value >= step["value"]:
            colour = step["color"]
    return str(colour)


def test_no_outage_is_green_and_any_outage_red_in_the_overview_table() -> None:
    # The table colours every cell (color-text) with thresholds made for ratios (red below
    # 0.8, green from 0.95): without its own, 0 outages was red and 5 outages green.
    table = panel("overview.json", "Schools")
    assert table["fieldConfig"]["defaults"]["custom"]["cellOptions"]["type"] == "color-text"
    assert column_colour(table, "Outages (range)", 0) == "green"
    assert column_colour(table, "Outages (range)", 1) == "red"
    assert column_colour(table, "Outages (range)", 5) == "red"


def series(name: str, labels: dict[str, str], value: float) -> dict[str, str]:
    body = ", ".join(f'{key}="{val}"' for key, val in labels.items())
    return {"series": f"{name}{{{body}}}", "values": f"{value:g}x5"}


def test_the_overview_verdict_of_a_school_shows_a_failing_line_before_one_short_of_data(
        tmp_path: Path) -> None:
    """A school with one failing line and one without enough data must read "fail" (0), not
    "not enough data" (-2): `min` over the 1/0/-1/-2 encoding picked -2 and hid the fail."""
    promtool = require_tool("promtool")
    [expr] = [t["expr"] for t in panel("overview.json", "Schools")["targets"] if t["refId"] == "B"]
    expr = expr.replace("$board", ".+").replace("$school", ".+")
    line = {"board": "b"}
    inputs = [series("schoolnet_board_rule_set_info", {"board": "b", "rule_set": "acm"}, 1)]
    lines = {
        # school: (connection, verdict_pass or None when absent, enough_data)
        "mixed": [("glas", 0, 1), ("mobiel", None, 0)],
        "passes": [("glas", 1, 1)],
        "short": [("glas", None, 0), ("mobiel", None, 1)],
        "unjudgeable": [("glas", None, 1), ("mobiel", 1, 1)],
    }
    for school, connections in lines.items():
        for connection, passes, enough in connections:
            for rule_set in ("acm", "fcc"):  # fcc is not the board's: never counted
                labels = {**line, "school": school, "connection": connection, "rule_set": rule_set}
                inputs.append(series("schoolnet_verdict_enough_data", labels,
                                     enough if rule_set == "acm" else 1))
                if passes is not None or rule_set == "fcc":
                    inputs.append(series("schoolnet_verdict_pass", labels,
                                         passes if rule_set == "acm" and passes is not None else 1))
    wanted = {"mixed": 0, "passes": 1, "short": -2, "unjudgeable": -1}
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": inputs,
            "promql_expr_test": [{
                "expr": expr,
                "eval_time": "2m",
                "exp_samples": [{"labels": f'{{board="b", school="{school}"}}', "value": value}
                                for school, value in wanted.items()],
            }],
        }],
    }
    path = tmp_path / "verdict.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


ROOM_METRIC = re.compile(r"(schoolnet_wifi_(?:room_\w+|signal_dbm|\w+_bitrate_bytes_per_second|"
                         r"transmit_\w+_total|connected|info))\{([^}]*)\}")


def test_every_wifi_rooms_panel_follows_the_room_variable_and_all_keeps_agents_without_a_room() -> None:
    # The agents' own link panels ignored $room: picking one room still showed every agent.
    board = BOARDS["wifi-rooms.json"]
    unfiltered = []
    for each in board["panels"]:
        for target in each["targets"]:
            for metric, selector in ROOM_METRIC.findall(target["expr"]):
                if 'room=~"$room"' not in selector:
                    unfiltered.append((each["title"], metric))
    assert unfiltered == []
    [room] = [v for v in board["templating"]["list"] if v["name"] == "room"]
    # All is this regex: an agent in no room has room="" and must stay under All.
    assert re.fullmatch(room["allValue"], "") and re.fullmatch(room["allValue"], "b-204")


def test_every_school_link_keeps_the_board() -> None:
    # A school id is unique only within its board: a link without var-board opens the wrong
    # school (or none) on a cooperative's collector.
    text = json.dumps(list(BOARDS.values()))
    links = re.findall(r'"url": "(/d/schoolnet-school/[^"]*)"', text)
    assert links
    for link in links:
        assert "var-board=${__data.fields.board}" in link and "var-school=${__value.raw}" in link, link

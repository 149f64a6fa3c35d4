"""Lint rules for the Grafana dashboards and provisioning (no processes: Grafana is not
installable here, so what it would check on load is checked here)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the generator lives beside the packages, not in them
    sys.path.insert(0, str(ROOT))

from grafana.build import DASHBOARDS, OUTPUT, generated, main  # noqa: E402
from grafana.build.model import DATASOURCE_UID  # noqa: E402

PROVISIONING = ROOT / "grafana" / "provisioning"
PANEL_TYPES = {"timeseries", "stat", "table", "bargauge", "state-timeline"}
UNITS = {"Bps", "s", "percentunit", "dBm", "short", "bytes", "dateTimeAsIso", "pps"}
COMMITTED = {path.name: json.loads(path.read_text()) for path in sorted(OUTPUT.glob("*.json"))}
# The uids are part of the links and bookmarks users keep: changing one breaks them.
STABLE_UIDS = {
    "overview.json": "schoolnet-overview",
    "school.json": "schoolnet-school",
    "providers.json": "schoolnet-providers",
    "wifi-rooms.json": "schoolnet-wifi-rooms",
    "fleet.json": "schoolnet-fleet",
}


def panels() -> list[tuple[str, dict[str, Any]]]:
    return [(name, panel) for name, board in COMMITTED.items() for panel in board["panels"]]


def test_committed_json_is_what_the_code_generates() -> None:
    assert set(COMMITTED) == set(DASHBOARDS)
    for name, text in generated().items():
        assert (OUTPUT / name).read_text() == text, f"{name} differs: run python -m grafana.build"
    assert main(["--check"]) == 0


def test_check_names_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--output", str(tmp_path)]) == 0
    (tmp_path / "fleet.json").write_text("{}\n")
    assert main(["--check", "--output", str(tmp_path)]) == 1
    assert "fleet.json" in capsys.readouterr().err


def test_uids_are_unique_and_stable() -> None:
    assert {name: board["uid"] for name, board in COMMITTED.items()} == STABLE_UIDS
    for board in COMMITTED.values():
        assert board["schemaVersion"] >= 39
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), board["uid"]


@pytest.mark.parametrize(("name", "panel"), panels(), ids=lambda v: v if isinstance(v, str) else v["title"])
def test_every_panel_has_unit_description_and_the_datasource_variable(
    name: str, panel: dict[str, Any]
) -> None:
    assert panel["type"] in PANEL_TYPES
    assert panel["fieldConfig"]["defaults"]["unit"] in UNITS
    assert len(panel["description"]) > 20
    assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert panel["targets"]
    for target in panel["targets"]:
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert target["expr"].strip()
    for override in panel["fieldConfig"]["overrides"]:
        for prop in override["properties"]:
            assert prop["id"] != "unit" or prop["value"] in UNITS


def test_every_variable_has_a_description_and_the_datasource_variable_defaults_to_the_provisioned_uid() -> (
    None
):
    for board in COMMITTED.values():
        variables = board["templating"]["list"]
        assert variables[0]["name"] == "datasource" and variables[0]["type"] == "datasource"
        assert variables[0]["query"] == "prometheus"
        assert variables[0]["current"]["value"] == DATASOURCE_UID
        for variable in variables:
            assert variable["description"].strip(), (board["uid"], variable["name"])
            if variable["type"] == "query":
                assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
                assert variable["query"]["query"].startswith("label_values(")
        names = [v["name"] for v in variables]
        # School depends on board, agent and room on both: chained.
        if "school" in names:
            school = variables[names.index("school")]
            assert "$board" in school["query"]["query"] and names.index("board") < names.index("school")


def test_the_provisioned_uid_is_written_nowhere_else() -> None:
    for board in COMMITTED.values():
        text = json.dumps(board)
        assert text.count(DATASOURCE_UID) == 1, board["uid"]  # the datasource variable's default
        assert not re.search(r'"uid": "(?!\$\{datasource\}|schoolnet-)', text), board["uid"]


def test_every_link_resolves_to_a_dashboard() -> None:
    uids = {board["uid"] for board in COMMITTED.values()}
    links = re.findall(r"/d/([\w-]+)", json.dumps(list(COMMITTED.values())))
    assert links, "the overview links to the school dashboard"
    assert set(links) <= uids
    overview = json.dumps(COMMITTED["overview.json"])
    assert "/d/schoolnet-school/" in overview and "var-school=${__value.raw}" in overview
    for board in COMMITTED.values():
        for link in board["links"]:
            assert link["type"] == "dashboards" and link["tags"] == ["schoolnet"]
            assert "schoolnet" in board["tags"]


def test_provisioning_parses_and_names_the_uid_and_the_folder() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "schoolnet.yml").read_text())
    assert datasources["apiVersion"] == 1
    [datasource] = datasources["datasources"]
    assert datasource["uid"] == DATASOURCE_UID and datasource["type"] == "prometheus"
    assert datasource["url"].startswith("http")
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "schoolnet.yml").read_text())
    [provider] = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")

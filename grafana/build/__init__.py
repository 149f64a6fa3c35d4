"""Generate grafana/dashboards/*.json from the dashboard definitions beside this file.

    python -m grafana.build           # write the JSON files
    python -m grafana.build --check   # exit 1 naming every file that differs from the code

The committed JSON is what Grafana's file provider reads; tests/test_grafana_lint.py checks it
equals what this code generates, so the two never drift.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grafana.build import fleet, overview, providers, school, wifi_rooms
from grafana.build.model import Dashboard

OUTPUT = Path(__file__).resolve().parents[1] / "dashboards"
DASHBOARDS: dict[str, Dashboard] = {
    "overview.json": overview.DASHBOARD,
    "school.json": school.DASHBOARD,
    "providers.json": providers.DASHBOARD,
    "wifi-rooms.json": wifi_rooms.DASHBOARD,
    "fleet.json": fleet.DASHBOARD,
}


def render(dashboard: Dashboard) -> str:
    return json.dumps(dashboard.to_json(), indent=2, ensure_ascii=False) + "\n"


def generated() -> dict[str, str]:
    """File name → the JSON text the code makes for it."""
    return {name: render(dashboard) for name, dashboard in DASHBOARDS.items()}


def allow_empty() -> dict[tuple[str, str], str]:
    """(dashboard uid, panel title) → why that panel's queries may rightly return nothing."""
    return {(d.uid, p.title): p.allow_empty for d in DASHBOARDS.values() for p in d.panels if p.allow_empty}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grafana.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="folder to write (default: %(default)s)")
    args = parser.parse_args(argv)
    stale = []
    for name, text in generated().items():
        path: Path = args.output / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
            continue
        try:
            args.output.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        except OSError as error:
            print(f"python -m grafana.build: cannot write {path}: {error.strerror}", file=sys.stderr)
            return 1
    if stale:
        print(
            f"python -m grafana.build: out of date in {args.output}: {', '.join(stale)} "
            "(run python -m grafana.build)",
            file=sys.stderr,
        )
        return 1
    return 0


def load(name: str) -> dict[str, Any]:
    """The committed JSON of one dashboard file."""
    return dict(json.loads((OUTPUT / name).read_text()))

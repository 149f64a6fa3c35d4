"""The example config documents every key with its default, and parses."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agent.config import AgentSettings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "agent" / "agent.example.toml"


def keys_of(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= keys_of(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_the_example_parses_to_the_defaults(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for key in [k for k in __import__("os").environ if k.startswith("SCHOOLNET_")]:
        monkeypatch.delenv(key)
    assert load_settings(EXAMPLE, use_central=False) == AgentSettings()


def test_every_key_is_in_the_example_with_a_comment() -> None:
    text = EXAMPLE.read_text()
    lines = text.splitlines()
    for key in sorted(keys_of(AgentSettings)):
        name = key.rsplit(".", 1)[-1]
        places = [i for i, line in enumerate(lines) if line.lstrip("# ").startswith(f"{name} =")]
        assert places, f"{key} is not in {EXAMPLE.name}"
        assert lines[places[0] - 1].startswith("#"), f"{key} has no comment above it"
    parsed: dict[str, Any] = tomllib.loads(text)
    assert parsed["probes"]["system"]["interval"] == "60s"

"""The collector's settings: from the environment (``SCHOOLNET_*``) and command-line flags."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.units import parse_duration

DEFAULT_DB = "sqlite:///schoolnet-collector.db"


class CollectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCHOOLNET_", extra="ignore")

    db: str = DEFAULT_DB
    # production: the API description is for admins only; development: open, for the demo.
    mode: Literal["production", "development"] = "production"
    # Agents silent for longer than this disappear from /metrics (their history stays).
    agent_expiry: float = 24 * 3600
    # The largest download or upload one speed-test request may ask for.
    speed_max_bytes: int = 1024**3

    @field_validator("agent_expiry", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

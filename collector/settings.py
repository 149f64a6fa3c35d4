"""The collector's settings: from the environment (``SCHOOLNET_*``) and command-line flags."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.coverage import BROWSING_DBM, VIDEO_DBM
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
    # Coverage grades of rooms: a signal at or above wifi_video_dbm is "video", at or above
    # wifi_browsing_dbm "browsing", below it "poor". Grades are computed from the stored
    # signals whenever asked, so changing these re-grades the history too.
    wifi_video_dbm: float = Field(default=VIDEO_DBM, ge=-150, le=30, allow_inf_nan=False)
    wifi_browsing_dbm: float = Field(default=BROWSING_DBM, ge=-150, le=30, allow_inf_nan=False)
    # A room whose newest observation is older than this leaves /metrics (its history stays);
    # long by default: a room only surveyed is surveyed perhaps once a year.
    room_expiry: float = Field(default=400 * 86400, gt=0)
    # The time zone of schools that do not name their own (schools.timezone): school hours,
    # holidays and the days verdicts count are the school's local ones.
    timezone: str = "Europe/Amsterdam"
    # Raw records older than this are removed (their daily aggregates stay): 13 months, so
    # a year can be compared with the one before (396 days covers any 13 months).
    retention: float = Field(default=396 * 86400, gt=0)
    # The period verdicts look back over, on /metrics and by default in `verdicts`.
    verdict_window: float = Field(default=30 * 86400, gt=0)
    # How long /metrics serves the verdicts it computed before judging every school anew:
    # a verdict over 30 days does not change in a minute, and judging reads the window.
    verdict_refresh: float = Field(default=300, ge=0)

    @field_validator("agent_expiry", "room_expiry", "retention", "verdict_window",
                     "verdict_refresh", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError(
                "timezone", f"{value!r} is not a time zone name (like Europe/Amsterdam)") from None
        return value

    @field_validator("wifi_browsing_dbm")
    @classmethod
    def _browsing_below_video(cls, value: float, info: ValidationInfo) -> float:
        video = info.data.get("wifi_video_dbm")
        if video is not None and video <= value:
            # A custom error: its message is the whole line the user sees (no "Value error, ").
            raise PydanticCustomError(
                "thresholds", f"{value:g} dBm must be below wifi_video_dbm ({video:g} dBm; "
                "SCHOOLNET_WIFI_VIDEO_DBM, SCHOOLNET_WIFI_BROWSING_DBM): video needs a stronger "
                "signal than browsing")
        return value

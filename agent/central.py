"""Fetching the settings the collector holds for this agent, and caching them offline."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import httpx

from agent.config import CENTRAL_CACHE
from agent.credential import Credential
from agent.transport import describe_error, make_client
from agent.wire import AGENT_SETTINGS_PATH, CentralSettings

log = logging.getLogger("schoolnet.agent.settings")


def refresh_central_settings(credential: Credential, collector_url: str, state_dir: Path,
                             timeout: float, ca_bundle: Path | None) -> bool:
    """Fetch and cache; on any failure keep the cached copy (it still applies) and say so."""
    try:
        with make_client(timeout, ca_bundle, credential.credential) as client:
            answer = client.get(collector_url.rstrip("/") + AGENT_SETTINGS_PATH)
        answer.raise_for_status()
        settings = CentralSettings.model_validate(answer.json())
    except httpx.HTTPStatusError as exc:
        log.warning("could not fetch settings from the collector: %s", exc.response.status_code)
        return False
    except httpx.HTTPError as exc:
        log.warning("could not fetch settings from the collector: %s", describe_error(exc))
        return False
    except ValueError as exc:
        log.warning("the collector's settings are not valid: %s", str(exc).splitlines()[0])
        return False
    cache = state_dir / CENTRAL_CACHE
    temporary = cache.with_suffix(".tmp")
    try:
        temporary.write_text(json.dumps(settings.model_dump(mode="json"), indent=2))
        os.replace(temporary, cache)  # atomic: a reader never sees half a document
    except OSError as exc:
        log.warning("could not cache the collector's settings in %s: %s", cache, exc.strerror)
        return False
    return True

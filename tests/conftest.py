"""Settings every test shares."""

from __future__ import annotations

import pytest
from support.tools import LOCAL_ONLY_ENV


@pytest.fixture(autouse=True)
def _no_public_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agent settings built inside a test read the environment too: the same safety net
    as for agent processes (see support.tools.LOCAL_ONLY_ENV)."""
    for name, value in LOCAL_ONLY_ENV.items():
        monkeypatch.setenv(name, value)

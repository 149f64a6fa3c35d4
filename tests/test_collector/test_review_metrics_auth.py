"""Review of the /metrics credentials: malformed headers, revoked admin tokens, token ids on the CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.tools import console_script

from collector.registry import ADMIN_SCOPE, create_admin_token, revoke_token


@pytest.mark.parametrize("header", [
    b"Bearer", b"Bearer  \t ", b"Bearer \xff\xfe", "Bearer é".encode("latin-1"), b"Bearer \xc3\xa9",
    b"Bearer " + b"a" * 10_000, b"Bearer\tsnmetrics_x", b"Bearer snmetrics_x\x7f",
])
def test_a_malformed_authorization_header_is_401_never_500(site, header: bytes) -> None:  # type: ignore[no-untyped-def]
    answer = site.client.get("/metrics", headers=[(b"authorization", header)])
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == "Bearer" and "schoolnet_" not in answer.text


def test_a_revoked_admin_token_no_longer_reads_metrics(site) -> None:  # type: ignore[no-untyped-def]
    admin = create_admin_token(site.engine)
    assert site.client.get("/metrics", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
    revoke_token(site.engine, ADMIN_SCOPE, admin)
    assert site.client.get("/metrics", headers={"Authorization": f"Bearer {admin}"}).status_code == 401


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SCHOOLNET_DB=f"sqlite:///{db}")
    return subprocess.run([console_script("schoolnet-collector"), *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize("ref, message", [
    # Beyond a 64-bit id: was "error: OverflowError: Python int too large…", exit 1.
    ("99999999999999999999999", "no metrics token 99999999999999999999999"),
    # str.isdigit() takes these: superscript two crashed in int(), the Arabic-Indic one revoked token 1.
    ("\u00b2", "give the token's id"),
    ("\u0661", "give the token's id"),
])
def test_a_token_id_is_ascii_digits_within_range(tmp_path: Path, ref: str, message: str) -> None:
    db = tmp_path / "c.db"
    assert cli(db, "metrics-token", "create").returncode == 0
    result = cli(db, "metrics-token", "revoke", ref)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert "\tactive" in cli(db, "metrics-token", "list").stdout, "token 1 must stay active"

"""The collector terminating TLS itself, and the agent verifying it (custom CA bundle)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import httpx
from support.processes import AgentProcess, CollectorProcess
from support.tools import require_tool


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    openssl = require_tool("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_https_with_a_private_ca(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    collector = CollectorProcess(tmp_path)
    collector.url = collector.url.replace("http://", "https://")
    collector.serve_args = ["--tls-cert", str(cert), "--tls-key", str(key)]
    trust = ssl.create_default_context(cafile=str(cert))
    collector.verify = trust
    collector.start()
    try:
        assert httpx.get(f"{collector.url}/healthz", verify=trust).status_code == 200

        (tmp_path / "a1").mkdir()
        untrusting = AgentProcess(tmp_path / "a1")
        refused = untrusting.cli("enroll", "--collector", collector.url, "--code",
                                 collector.enroll_code(), check=False)
        assert refused.returncode == 1
        assert "certificate" in refused.stderr.lower()
        assert len(refused.stderr.strip().splitlines()) == 1

        (tmp_path / "a2").mkdir()
        trusting = AgentProcess(tmp_path / "a2", f'[collector]\nca_bundle = "{cert}"\n'
                                                 '[probes.bandwidth]\nbackend = "http"\nduration = "1s"\n'
                                                 'max_bytes = "20MB"\n')
        trusting.cli("enroll", "--collector", collector.url, "--code", collector.enroll_code())
        trusting.cli("once")
        stored = collector.query("SELECT kind, ok FROM records ORDER BY kind")
        # Every default probe measured and was delivered over TLS (the census reads only the
        # kernel's neighbour table here).
        assert stored == [("bandwidth", 1), ("system", 1), ("users", 1)]
    finally:
        collector.stop()

"""The ``http`` backend: a LibreSpeed-style server (the collector's own speed endpoints,
or any server speaking the same three paths).

Single stream, for now: the accurate multi-stream engine replaces the transfer loops
behind the same interface.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from agent.probes.bandwidth.backend import Transfer, TransferError
from agent.transport import describe_error, make_client
from agent.wire import SPEED_DOWNLOAD_PATH, SPEED_PING_PATH, SPEED_UPLOAD_PATH

# No data for this long means the server stalled.
STALL_SECONDS = 5.0
# Fewer bytes than this cannot give a meaningful rate.
MINIMUM_BYTES = 64 * 1024
UPLOAD_BLOCK = os.urandom(256 * 1024)
PINGS = 5


class HttpBackend:
    name = "http"
    streams = 1

    def __init__(self, server: str, credential: str | None, ca_bundle: Path | None = None,
                 stall_seconds: float = STALL_SECONDS) -> None:
        self.server = server.rstrip("/")
        self.client: httpx.Client = make_client(stall_seconds, ca_bundle, credential)

    def close(self) -> None:
        self.client.close()

    def ping(self) -> float:
        """Median round trip of a few empty requests, seconds. A single lost ping (a
        keep-alive connection the server just closed) does not void the others."""
        times: list[float] = []
        problem = "no answer"
        for _ in range(PINGS):
            started = time.perf_counter()
            try:
                answer = self.client.get(self.server + SPEED_PING_PATH)
            except httpx.HTTPError as exc:
                problem = describe_error(exc)
                continue
            if answer.status_code >= 400:
                problem = f"answered {answer.status_code}"
                continue
            times.append(time.perf_counter() - started)
        if not times:
            raise TransferError(f"ping failed: {problem}")
        return statistics.median(times)

    def download(self, duration: float, max_bytes: int) -> Transfer:
        url = f"{self.server}{SPEED_DOWNLOAD_PATH}?bytes={max_bytes}"
        received = 0
        try:
            with self.client.stream("GET", url) as answer:
                _check(answer, "download")
                started = time.perf_counter()
                deadline = started + duration
                # Chunks as the socket delivers them: no re-chunking copies on a small CPU.
                for chunk in answer.iter_raw():
                    received += len(chunk)
                    if received >= max_bytes or time.perf_counter() >= deadline:
                        break
                elapsed = time.perf_counter() - started
        except httpx.HTTPError as exc:
            raise TransferError(f"download failed after {received} bytes: {describe_error(exc)}") from None
        if received < max_bytes and elapsed < duration:
            raise TransferError(f"download ended early: {received} of {max_bytes} bytes, "
                                f"after {elapsed:.1f} s")
        return _transfer(received, elapsed, "download")

    def upload(self, duration: float, max_bytes: int) -> Transfer:
        sent = 0

        def body() -> Iterator[bytes]:
            nonlocal sent
            deadline = time.perf_counter() + duration
            while sent < max_bytes and time.perf_counter() < deadline:
                block = UPLOAD_BLOCK[: max_bytes - sent]
                sent += len(block)
                yield block

        started = time.perf_counter()
        try:
            answer = self.client.post(self.server + SPEED_UPLOAD_PATH, content=body(),
                                      headers={"Content-Type": "application/octet-stream"})
        except httpx.HTTPError as exc:
            raise TransferError(f"upload failed after {sent} bytes: {describe_error(exc)}") from None
        elapsed = time.perf_counter() - started
        _check(answer, "upload")
        try:
            counted = int(answer.json()["received_bytes"])
        except (ValueError, KeyError, TypeError):
            raise TransferError("upload: the server's answer is not a byte count") from None
        if counted != sent:
            raise TransferError(f"upload: sent {sent} bytes but the server counted {counted}")
        return _transfer(sent, elapsed, "upload")


def _check(answer: httpx.Response, direction: str) -> None:
    if answer.status_code != 200:
        answer.read()
        detail = " ".join(answer.text.split())[:200]
        raise TransferError(f"{direction}: server answered {answer.status_code} {detail}".rstrip())


def _transfer(moved: int, seconds: float, direction: str) -> Transfer:
    if moved < MINIMUM_BYTES or seconds <= 0:
        raise TransferError(f"{direction}: only {moved} bytes moved, too few to measure a rate")
    return Transfer(moved, seconds)

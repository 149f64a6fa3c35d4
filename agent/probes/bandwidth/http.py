"""The ``http`` backend: a LibreSpeed-style server — the collector's own speed endpoints,
or any server speaking the same three paths:

- ``GET  {base}/api/v1/speed/download?bytes=N``: N random bytes;
- ``POST {base}/api/v1/speed/upload``: the body is counted and discarded;
- ``GET  {base}/api/v1/speed/ping``: an empty answer.

Transfers run on the multi-stream engine (``engine.py``) over plain sockets
(``httpstream.py``).
"""

from __future__ import annotations

import dataclasses

from agent.probes.bandwidth.backend import BackendOptions, DirectionResult, Limits, TransferError
from agent.probes.bandwidth.httpstream import HttpEndpoint, idle_ping, measure_direction
from agent.wire import SPEED_DOWNLOAD_PATH, SPEED_PING_PATH, SPEED_UPLOAD_PATH

# What one request asks for at most: few enough round trips for new requests, small
# enough that streams added later still find bytes left under the test's cap.
REQUEST_BYTES = 64 * 1024 * 1024
MIN_REQUEST_BYTES = 1024 * 1024


class HttpBackend:
    name = "http"

    def __init__(self, options: BackendOptions) -> None:
        self.server = options.server.rstrip("/")
        headers = (("Authorization", f"Bearer {options.credential}"),) if options.credential else ()
        self.endpoint = HttpEndpoint(
            base_url=self.server, download_path=SPEED_DOWNLOAD_PATH + "?bytes={bytes}",
            upload_path=SPEED_UPLOAD_PATH, ping_path=SPEED_PING_PATH,
            request_bytes=REQUEST_BYTES, headers=headers, ca_bundle=options.ca_bundle,
            stall_seconds=options.stall_seconds)
        _ = self.endpoint.parts  # a bad URL fails here, with its reason, not mid-test
        self.idle: float | None = None  # the round trip before the test, once pinged

    @classmethod
    def discover(cls, options: BackendOptions) -> list[str]:
        if not options.server:
            raise TransferError("the http backend needs a server URL")
        return [options.server]

    def ping(self) -> float:
        self.idle = idle_ping(self.endpoint)
        return self.idle

    def download(self, limits: Limits) -> DirectionResult:
        return measure_direction("download", self._sized(limits), limits, self.idle)

    def upload(self, limits: Limits) -> DirectionResult:
        return measure_direction("upload", self._sized(limits), limits, self.idle)

    def close(self) -> None:
        """Nothing stays open between tests."""

    def _sized(self, limits: Limits) -> HttpEndpoint:
        # A share of the cap per request, so that every stream the engine may add finds
        # some left (a server's own cap is often the largest test it wants to serve).
        share = limits.max_bytes // (2 * limits.max_streams)
        size = max(MIN_REQUEST_BYTES, min(REQUEST_BYTES, share))
        return dataclasses.replace(self.endpoint, request_bytes=size)

"""A scripted HTTP server on 127.0.0.1 that speaks the ingest side of the wire contract."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A handler takes the decoded batch and returns (status, headers, body).
Answer = tuple[int, dict[str, str], Any]
Script = Callable[[dict[str, Any]], Answer]


def accept_all(batch: dict[str, Any]) -> Answer:
    results = [{"stream_id": r["stream_id"], "seq": r["seq"], "status": "accepted"}
               for r in batch["records"]]
    streams: dict[str, int] = {}
    for r in batch["records"]:
        streams[r["stream_id"]] = max(streams.get(r["stream_id"], 0), r["seq"])
    return 200, {}, {"results": results, "accounted_through": streams}


class FakeCollector:
    def __init__(self, script: Script = accept_all, settings: dict[str, Any] | None = None) -> None:
        self.script = script
        # What GET /api/v1/agent/settings answers (the collector's settings for the agent).
        self.settings = settings or {}
        self.settings_requests = 0
        self.batches: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    @property
    def delivered_seqs(self) -> list[int]:
        return [r["seq"] for b in self.batches for r in b["records"]]


@contextmanager
def serve(fake: FakeCollector) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            batch = json.loads(body)
            fake.batches.append(batch)
            fake.headers.append(dict(self.headers))
            status, headers, answer = fake.script(batch)
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != "/api/v1/agent/settings":
                self.send_error(404)
                return
            fake.settings_requests += 1
            data = json.dumps({"settings": fake.settings, "updated_at_seconds": None}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

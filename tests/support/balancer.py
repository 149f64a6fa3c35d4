"""A tiny round-robin TCP load balancer on 127.0.0.1: the "any load balancer" in front of
collector replicas in the tests and the scale benchmark.

Each accepted connection goes to the next backend in turn; a backend whose connect fails
(a killed replica) is skipped for that connection and the next one tried, so clients
only see a failure when every backend is down. Bytes are copied both ways unchanged (TCP,
not HTTP: keep-alive connections stay on the backend they were opened to, as with any
layer-4 balancer). Runs its own asyncio loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Sequence

from support.tools import free_port

CONNECT_TIMEOUT_SECONDS = 2.0
COPY_CHUNK_BYTES = 64 * 1024


class Balancer:
    def __init__(self, backends: Sequence[tuple[str, int]]) -> None:
        self.backends = list(backends)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = [0] * len(self.backends)  # per backend, for tests to check
        self.skipped = 0  # connects that failed and went to the next backend
        self._turn = itertools.cycle(range(len(self.backends)))
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="balancer", daemon=True)

    def start(self) -> Balancer:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(asyncio.start_server(
            self._serve, "127.0.0.1", self.port, backlog=4096), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            # Let each connection's finally close its sockets before the loop stops (a
            # cancelled task that never runs again leaves them open), and the transports
            # finish closing.
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> Balancer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        backend_writer: asyncio.StreamWriter | None = None
        try:
            upstream = await self._connect()
            if upstream is None:  # every backend is down: the client sees a closed connection
                return
            backend_reader, backend_writer = upstream
            await asyncio.gather(_copy(client_reader, backend_writer),
                                 _copy(backend_reader, client_writer))
        except (OSError, asyncio.CancelledError):
            pass  # a side reset (a killed replica), or stop(): both sides are closed below
        finally:
            for writer in (backend_writer, client_writer):
                if writer is not None:
                    writer.close()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.backends)):
            index = next(self._turn)
            host, port = self.backends[index]
            try:
                upstream = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                  CONNECT_TIMEOUT_SECONDS)
            except (TimeoutError, OSError):
                self.skipped += 1
                continue
            self.connections[index] += 1
            return upstream
        return None


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then pass the end on (a half-close: the other direction
    may still be answering). A reset raises, and the caller closes both sides."""
    while chunk := await reader.read(COPY_CHUNK_BYTES):
        writer.write(chunk)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()

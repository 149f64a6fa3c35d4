"""Small HTTP speed-test servers on 127.0.0.1 for the bandwidth tests: one that works and
a harness for ones that misbehave on purpose."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Handler = Callable[[socket.socket, bytes], None]


@contextmanager
def tcp_server(on_connection: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP listener on 127.0.0.1 (its port is yielded) that hands every connection to
    ``on_connection`` in the accepting thread; the listener closes on exit."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            on_connection(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        listener.close()


@contextmanager
def raw_server(handler: Handler) -> Iterator[str]:
    """An HTTP-ish server on 127.0.0.1: every connection's request goes to ``handler``
    in a thread of its own."""
    def start(connection: socket.socket) -> None:
        threading.Thread(target=_run, args=(handler, connection), daemon=True).start()

    with tcp_server(start) as port:
        yield f"http://127.0.0.1:{port}"


def _run(handler: Handler, connection: socket.socket) -> None:
    try:
        # Read the request here, not in the accept loop: a client that connects and
        # sends nothing must not block the others.
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = connection.recv(65536)
            if not chunk:
                return
            request += chunk
        handler(connection, request)
    except OSError:
        pass
    finally:
        connection.close()


def good_server(connection: socket.socket, request: bytes) -> None:
    """Download: N bytes as asked; upload: read the body by its length and answer with
    the count; ping: 204. One request per connection, like a plain HTTP/1.0 server."""
    line = request.split(b"\r\n", 1)[0].decode()
    if "/speed/download" in line:
        size = int(line.split("bytes=")[1].split()[0])
        connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n"
                           "Content-Type: application/octet-stream\r\n\r\n".encode())
        block = b"\x5a" * 65536
        while size > 0:
            connection.sendall(block[:size])
            size -= min(size, len(block))
    elif "/speed/upload" in line:
        head, _, body = request.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
        received = len(body)
        while received < length:
            chunk = connection.recv(1 << 20)
            if not chunk:
                return
            received += len(chunk)
        COUNTED.append(received)
        answer = json.dumps({"received_bytes": received}).encode()
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                           b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))
    else:
        connection.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")


COUNTED: list[int] = []




def paced_server(bytes_per_second: float) -> Handler:
    """Like ``good_server``, but a slow server: it sends and reads at about this rate
    (one connection's worth: several streams each get it)."""
    chunk = 64 * 1024
    pause = chunk / bytes_per_second

    def handle(connection: socket.socket, request: bytes) -> None:
        line = request.split(b"\r\n", 1)[0].decode()
        if "/speed/download" in line:
            size = int(line.split("bytes=")[1].split()[0])
            connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n"
                               "Connection: close\r\n\r\n".encode())
            block = b"\x5a" * chunk
            while size > 0:
                connection.sendall(block[:size])
                size -= min(size, chunk)
                time.sleep(pause)
        elif "/speed/upload" in line:
            head, _, body = request.partition(b"\r\n\r\n")
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
            received = len(body)
            while received < length:
                data = connection.recv(min(chunk, length - received))
                if not data:
                    return
                received += len(data)
                time.sleep(pause * len(data) / chunk)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else:
            good_server(connection, request)

    return handle

"""Running the app under uvicorn, and saying so only once it listens.

``uvicorn.run`` logs its own start message; scripts and service managers that wait for
our one line (``schoolnet-collector: serving on URL``) need it to mean "connect now",
so it is printed after the socket is bound and the app has started.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable

import uvicorn
from uvicorn.supervisors import Multiprocess

APP_FACTORY = "collector.app:create_app"


class _AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self.announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self.announce()


def serve(config: uvicorn.Config, announce: Callable[[], None]) -> bool:
    """Serve until SIGTERM or SIGINT; False when the server could not start."""
    if config.workers > 1:
        # The supervisor binds once and hands the socket to its workers: from then on
        # connections queue in the kernel until a worker accepts them.
        sock = config.bind_socket()
        announce()
        Multiprocess(config, sockets=[sock]).run()
        return True
    server = _AnnouncingServer(config, announce)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the
    # handler it found; ours turns that into a normal return, so a stop is exit 0.
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        server.run()
    except (KeyboardInterrupt, _Stopped):
        pass
    except SystemExit:
        # uvicorn exits this way when it cannot bind or start the app; it logged why.
        return False
    finally:
        signal.signal(signal.SIGTERM, previous)
    return server.started


class _Stopped(Exception):
    """SIGTERM arrived and uvicorn has finished its graceful shutdown."""


def _stop(_signum: int, _frame: object) -> None:
    raise _Stopped


def make_config(*, host: str, port: int, workers: int, log_level: str,
                tls_cert: str | None, tls_key: str | None, forwarded_allow_ips: str
                ) -> uvicorn.Config:
    return uvicorn.Config(
        APP_FACTORY, factory=True, workers=workers, host=host, port=port,
        log_level=log_level, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
        proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips,
        # Requests in flight (an ingest waiting for its commit) get this long to finish.
        timeout_graceful_shutdown=10,
    )

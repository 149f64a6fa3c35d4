"""The collector's web application: ``create_app(settings)``."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent import __version__
from agent.wire import INGEST_PATH
from collector.accounts.web import SignInRequired, login_redirect
from collector.admission import Admission
from collector.db.engine import open_engine
from collector.db.migrate import upgrade
from collector.deps import Admin
from collector.incidents.run import incident_loop
from collector.ingest import GroupCommitter
from collector.metrics import CollectorMetrics
from collector.remote_write.queue import enable_queue
from collector.remote_write.sender import RemoteWriter, remote_write_loop
from collector.remote_write.sender import config_of as remote_write_config
from collector.retention import retention_loop
from collector.rooms import Thresholds
from collector.routes import (
    accounts_pages,
    admin,
    enrol,
    health,
    incidents_api,
    incidents_pages,
    ingest,
    oidc_pages,
    registry,
    report_pages,
    speed,
    verdicts,
)
from collector.settings import CollectorSettings
from collector.verdict_metrics import VerdictFamilies

log = logging.getLogger("schoolnet.collector")


def create_app(settings: CollectorSettings | None = None) -> FastAPI:
    settings = settings or CollectorSettings()
    # Ingest threads alternate between CPU (validation) and waiting on fsync while they
    # hold the store's write lock; with the default 5 ms GIL switch interval the writer,
    # back from fsync, queued behind validating threads and throughput fell by a sixth.
    sys.setswitchinterval(0.0005)
    development = settings.mode == "development"
    app = FastAPI(
        title="schoolnet collector", version=__version__,
        # In production the API description is for admins only (see /openapi.json below).
        docs_url="/docs" if development else None,
        redoc_url="/redoc" if development else None,
        openapi_url="/openapi.json" if development else None,
    )
    engine = open_engine(settings.db)
    upgrade(engine)
    remote_write = remote_write_config(settings)
    app.state.settings = settings
    app.state.engine = engine
    app.state.metrics = CollectorMetrics(
        engine, settings.agent_expiry,
        thresholds=Thresholds(settings.wifi_video_dbm, settings.wifi_browsing_dbm),
        room_expiry_seconds=settings.room_expiry,
        verdicts=VerdictFamilies(engine, window=settings.verdict_window,
                                 default_timezone=settings.timezone, ttl=settings.verdict_refresh),
        remote_write=remote_write is not None)
    if remote_write is not None:
        # Before the committer starts: every record stored from now on is queued.
        enable_queue(engine)
        app.state.remote_writer = RemoteWriter(engine, remote_write, app.state.metrics.store,
                                               app.state.metrics.process_registry)
    app.state.committer = GroupCommitter(engine)
    app.state.admission = Admission(settings.ingest_queue_limit,
                                    registry=app.state.metrics.process_registry)

    for module in (ingest, enrol, speed, admin, registry, verdicts, incidents_api, incidents_pages,
                   accounts_pages, oidc_pages, report_pages, health):
        app.include_router(module.router)
    if not development:
        @app.get("/openapi.json", include_in_schema=False, dependencies=[Admin])
        def openapi() -> dict[str, Any]:
            return app.openapi()

    @app.exception_handler(RequestValidationError)
    async def one_line_validation_error(request: Request, exc: RequestValidationError
                                        ) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}"}, 422)

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, exc: SignInRequired) -> RedirectResponse:
        return RedirectResponse(login_redirect(exc.next_path), 303,
                                headers={"Cache-Control": "no-store"})

    @app.exception_handler(SQLAlchemyError)
    async def store_unavailable(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        # Whatever the route: a store that fails is the server's trouble, not the
        # client's, and a client may retry; never a 500 with a traceback.
        log.warning("store error on %s %s: %s", request.method, request.url.path,
                    type(exc).__name__)
        return JSONResponse({"detail": "the store is not available; retry later"}, 503,
                            headers={"Retry-After": "5"})

    app.add_middleware(CountIngestAnswers, metrics=app.state.metrics)
    # Raw records older than the retention go once a day (collector/retention.py); incidents
    # are detected and their notifications sent every few minutes (collector/incidents/run.py).
    # With --workers N each worker runs both: retention runs are idempotent (the later ones
    # find nothing), and an incident is opened once (a unique index on its key) and each
    # notification claimed before it is sent.
    background: list[asyncio.Task[None]] = []

    def start_background() -> None:
        loop = asyncio.get_running_loop()
        background.append(loop.create_task(retention_loop(engine, settings)))
        background.append(loop.create_task(incident_loop(engine, settings)))
        if remote_write is not None:
            # On every replica: each drains the shared queue; the snapshot lease picks one
            # to send the state (collector/remote_write/sender.py).
            background.append(loop.create_task(remote_write_loop(app.state.remote_writer)))

    def stop_background() -> None:
        for task in background:
            task.cancel()

    app.router.add_event_handler("startup", start_background)
    app.router.add_event_handler("shutdown", stop_background)
    app.router.add_event_handler("shutdown", app.state.committer.close)
    app.router.add_event_handler("shutdown", engine.dispose)
    return app


class CountIngestAnswers:
    """Counts ingest answers by HTTP status (pure ASGI: speed-test streams pass untouched)."""

    def __init__(self, app: ASGIApp, metrics: CollectorMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != INGEST_PATH:
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.batches.labels(str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)



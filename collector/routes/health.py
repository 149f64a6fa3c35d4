"""``/healthz`` for load balancers (open) and ``/metrics`` for Prometheus (with a metrics token)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from collector.deps import EngineDep, MetricsReader

router = APIRouter()


@router.get("/healthz", summary="Whether the collector and its store answer")
def healthz(engine: EngineDep) -> dict[str, str]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        raise HTTPException(503, "the store does not answer") from None
    return {"status": "ok"}


@router.get("/metrics", summary="Prometheus metrics, built from the store at each scrape; needs a "
            "metrics or admin token", dependencies=[MetricsReader])
async def metrics(request: Request) -> Response:
    try:
        body = await run_in_threadpool(request.app.state.metrics.render)
    except SQLAlchemyError:
        raise HTTPException(503, "the store does not answer", headers={"Retry-After": "5"}) from None
    return Response(body, media_type=CONTENT_TYPE_LATEST)

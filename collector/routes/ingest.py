"""``POST /api/v1/ingest``: the wire contract of agent/WIRE.md."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from agent.wire import (
    INGEST_PATH,
    MAX_COMPRESSED_BODY_BYTES,
    MAX_DECOMPRESSED_BODY_BYTES,
    MAX_RECORDS_PER_BATCH,
    Batch,
    BatchResult,
    describe_validation_error,
)
from collector.body import decode, read_limited
from collector.deps import CurrentAgent, EngineDep
from collector.ingest import ingest_batch

router = APIRouter()


@router.post(INGEST_PATH, response_model=BatchResult, summary="Deliver a batch of records")
async def ingest(request: Request, agent: CurrentAgent, engine: EngineDep) -> Any:
    raw = await read_limited(request.stream(), request.headers.get("content-length"),
                             MAX_COMPRESSED_BODY_BYTES)
    body = decode(raw, request.headers.get("content-encoding"), MAX_DECOMPRESSED_BODY_BYTES)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(422, f"body is not JSON: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("records"), list) and (
        len(document["records"]) > MAX_RECORDS_PER_BATCH
    ):
        raise HTTPException(413, f"{len(document['records'])} records in one batch; "
                                 f"at most {MAX_RECORDS_PER_BATCH}")
    try:
        batch = Batch.model_validate(document)
    except ValidationError as exc:
        raise HTTPException(422, "batch " + describe_validation_error(exc)) from None
    try:
        outcome = await run_in_threadpool(ingest_batch, engine, agent, batch)
    except SQLAlchemyError:
        raise HTTPException(503, "the store is not available; retry later",
                            headers={"Retry-After": "5"}) from None
    request.app.state.metrics.count_outcome(outcome)
    return outcome.result

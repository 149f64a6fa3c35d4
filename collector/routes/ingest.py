"""``POST /api/v1/ingest``: the wire contract of agent/WIRE.md."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import ClientDisconnect

from agent.wire import (
    INGEST_PATH,
    MAX_COMPRESSED_BODY_BYTES,
    MAX_DECOMPRESSED_BODY_BYTES,
    MAX_RECORDS_PER_BATCH,
    Batch,
    BatchResult,
    describe_validation_error,
    may_contain_mac,
)
from collector.admission import Admission, Overloaded
from collector.body import decode, read_limited
from collector.deps import CurrentAgent
from collector.ingest import contains_nul, prepare

router = APIRouter()


async def admitted(request: Request) -> AsyncIterator[None]:
    """First of the route's dependencies, so a refusal costs no credential check (a
    database query) and no body read: see collector/admission.py. Async: it runs on the
    event loop, not behind the thread pool's queue."""
    admission: Admission = request.app.state.admission
    try:
        admission.enter()
    except Overloaded as exc:
        await _discard_body(request)
        raise HTTPException(503, str(exc), headers={
            "Retry-After": str(exc.retry_after_seconds)}) from None
    try:
        yield
    finally:
        admission.leave()


async def _discard_body(request: Request) -> None:
    """Take in (and drop) the body of a refused request, up to the batch limit. Answered
    with its body unread, the connection is closed while the agent is still sending: its
    kernel then sees a reset instead of the 503 and its Retry-After (1 % of a storm's
    requests were such errors), and its next try needs a new connection."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_COMPRESSED_BODY_BYTES:
        return
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > MAX_COMPRESSED_BODY_BYTES:
                return
    except ClientDisconnect:
        return


# Declared before the agent, so FastAPI resolves it first.
Admitted = Annotated[None, Depends(admitted)]


@router.post(INGEST_PATH, response_model=BatchResult, summary="Deliver a batch of records")
async def ingest(request: Request, _admitted: Admitted, agent: CurrentAgent) -> Any:
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
    # JSON spells a NUL character only as an escape; without one, no text can hold it.
    may_hold_nul = b"\\u0000" in body
    if may_hold_nul and contains_nul(batch.health.model_dump()):
        raise HTTPException(422, "batch health: a text value contains a NUL character")
    try:
        # A JSON escape (\\u003a is ":") could spell a MAC that the raw text does not show.
        may_hold_mac = b"\\u" in body or may_contain_mac(body)
        # Validation runs on the event loop: a hop to the thread pool per batch cost more
        # (GIL hand-overs) than the few milliseconds it blocks the loop.
        prepared = prepare(agent, batch, may_hold_mac, may_hold_nul)
        # Stored by the writer thread with whatever else is waiting; committed before this
        # returns.
        outcome = await asyncio.wrap_future(request.app.state.committer.submit(prepared))
    except SQLAlchemyError:
        raise HTTPException(503, "the store is not available; retry later",
                            headers={"Retry-After": "5"}) from None
    request.app.state.metrics.count_outcome(outcome)
    # Serialised directly: the result is already a validated model.
    return Response(outcome.result.model_dump_json(), media_type="application/json")

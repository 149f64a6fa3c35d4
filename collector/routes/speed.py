"""Speed-test endpoints for the agent's ``http`` bandwidth backend (LibreSpeed-style)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse

from agent.wire import SPEED_DOWNLOAD_PATH, SPEED_PING_PATH, SPEED_UPLOAD_PATH
from collector.deps import CurrentAgent

router = APIRouter()

# One random block made at start and sent over and over: incompressible, so no proxy or
# modem can inflate the result, and no N-sized buffer for an N-byte download.
BLOCK = os.urandom(1024 * 1024)
CHUNK = 256 * 1024


async def _random_bytes(count: int) -> AsyncIterator[bytes]:
    view = memoryview(BLOCK)
    position = 0
    while count > 0:
        size = min(CHUNK, count, len(BLOCK) - position)
        yield bytes(view[position : position + size])
        count -= size
        position = (position + size) % len(BLOCK)


@router.get(SPEED_DOWNLOAD_PATH, summary="Download N random bytes")
def download(
    request: Request,
    agent: CurrentAgent,
    size: Annotated[int, Query(alias="bytes", ge=1, description="How many bytes to send")],
) -> StreamingResponse:
    limit = request.app.state.settings.speed_max_bytes
    if size > limit:
        raise HTTPException(400, f"bytes={size} is over this collector's cap of {limit}")
    return StreamingResponse(
        _random_bytes(size), media_type="application/octet-stream",
        headers={"Content-Length": str(size), "Cache-Control": "no-store"},
    )


@router.post(SPEED_UPLOAD_PATH, summary="Upload a body that is counted and discarded")
async def upload(request: Request, agent: CurrentAgent) -> dict[str, int | float]:
    limit = request.app.state.settings.speed_max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {declared} bytes is over the cap of {limit}")
    started = time.perf_counter()
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise HTTPException(413, f"upload is over the cap of {limit} bytes")
    return {"received_bytes": received, "seconds": time.perf_counter() - started}


@router.get(SPEED_PING_PATH, status_code=204, summary="An empty answer, for round-trip times")
def ping(agent: CurrentAgent) -> Response:
    return Response(status_code=204)

"""Speed-test endpoints for the agent's ``http`` bandwidth backend (LibreSpeed-style),
and the school's lease that lets one agent of a school test at a time.

A client that stops mid-transfer is normal here: the agent's engine closes its streams
at its deadline, whatever is still in flight. Neither direction logs that as an error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from agent.wire import (
    SPEED_DOWNLOAD_PATH,
    SPEED_LEASE_PATH,
    SPEED_PING_PATH,
    SPEED_UPLOAD_PATH,
    LeaseAnswer,
    LeaseRequest,
)
from collector.deps import CurrentAgent, EngineDep
from collector.leases import release_lease, request_lease

router = APIRouter()
log = logging.getLogger("schoolnet.collector.speed")

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
        # A send to a client that has gone returns at once without waiting, so without
        # this the loop would never hear of the disconnect: it would write the rest of
        # the asked-for bytes (up to the cap) into a dead socket, blocking the event
        # loop, and asyncio would log "socket.send() raised exception." for each chunk.
        await asyncio.sleep(0)


class _QuietStreamingResponse(StreamingResponse):
    """A stream whose client may leave early: that ends it, without a traceback."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            # Raised by servers of ASGI spec 2.4 and later when a send fails.
            log.debug("download ended by the client")


@router.get(SPEED_DOWNLOAD_PATH, summary="Download N random bytes")
def download(
    request: Request,
    agent: CurrentAgent,
    size: Annotated[int, Query(alias="bytes", ge=1, description="How many bytes to send")],
) -> StreamingResponse:
    limit = request.app.state.settings.speed_max_bytes
    if size > limit:
        raise HTTPException(400, f"bytes={size} is over this collector's cap of {limit}")
    return _QuietStreamingResponse(
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
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise HTTPException(413, f"upload is over the cap of {limit} bytes")
    except ClientDisconnect:
        # Nobody is left to read the answer; the server drops it quietly.
        log.debug("upload ended by the client after %d bytes", received)
    return {"received_bytes": received, "seconds": time.perf_counter() - started}


@router.get(SPEED_PING_PATH, status_code=204, summary="An empty answer, for round-trip times")
def ping(agent: CurrentAgent) -> Response:
    return Response(status_code=204)


@router.post(SPEED_LEASE_PATH, response_model=LeaseAnswer,
             summary="Ask for the school's turn for a bandwidth test")
def take_lease(body: LeaseRequest, agent: CurrentAgent, engine: EngineDep) -> LeaseAnswer:
    return request_lease(engine, agent, body.seconds)


@router.delete(SPEED_LEASE_PATH + "/{lease_id}", status_code=204,
               summary="End the calling agent's turn early (204 whatever there was to end)")
def end_lease(lease_id: Annotated[str, Path(max_length=64)], agent: CurrentAgent,
              engine: EngineDep) -> Response:
    release_lease(engine, agent, lease_id)
    return Response(status_code=204)

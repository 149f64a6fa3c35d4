"""The admin API of the registry: the contracts CSV, a school's lines, a board's policy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from agent.wire import describe_validation_error
from collector.body import read_limited
from collector.contracts import (
    UnknownBoard,
    connections_document,
    export_contracts,
    import_contracts,
    policy_document,
    set_board_policy,
)
from collector.contracts_csv import ContractImportError
from collector.deps import Admin, EngineDep
from collector.policy import BoardPolicy
from collector.registry import RegistryError

router = APIRouter(prefix="/api/v1/admin", dependencies=[Admin], tags=["registry"])

# A board's sheet is some hundreds of rows; this leaves room for a cooperative's thousands.
# The work is bounded by the row limit (contracts_csv.MAX_ROWS, 50 000), which parsing
# applies here as for the command line; the bytes bound the memory of the body.
MAX_CSV_BYTES = 16 * 1024 * 1024


@router.get("/contracts.csv", summary="The contracts CSV, one row per term",
            response_class=Response)
def get_contracts(engine: EngineDep, board: str | None = None) -> Response:
    try:
        text = export_contracts(engine, board)
    except UnknownBoard as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(text, media_type="text/csv; charset=utf-8")


@router.post("/contracts.csv", summary="Import a contracts CSV (all rows or none)")
async def post_contracts(request: Request, engine: EngineDep) -> dict[str, Any]:
    # Streamed with the limit applied as it arrives (and to Content-Length first): reading
    # the whole body before measuring it would let one request fill the memory.
    body = await read_limited(request.stream(), request.headers.get("content-length"), MAX_CSV_BYTES)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, {"errors": [f"contracts.csv: not UTF-8 text (byte {exc.start}); "
                                             "save it as CSV UTF-8"]}) from None
    try:
        # Sync work on an async route would block the loop: run it in the thread pool.
        report = await run_in_threadpool(import_contracts, engine, text, source_name="contracts.csv")
    except ContractImportError as exc:
        raise HTTPException(422, {"errors": exc.errors}) from None
    return report.as_dict()


@router.get("/schools/{board}/{school}/connections",
            summary="A school's lines with the terms in force today and every term")
def school_lines(board: str, school: str, request: Request, engine: EngineDep) -> dict[str, Any]:
    try:
        return connections_document(engine, f"{board}/{school}", request.app.state.settings.timezone)
    except RegistryError as exc:
        raise HTTPException(404, str(exc)) from None


@router.put("/boards/{board}/policy", summary="Set a board's policy (what it leaves out is "
            "the default); speeds in bytes per second")
def put_policy(board: str, engine: EngineDep, document: dict[str, Any]) -> dict[str, Any]:
    try:
        BoardPolicy.model_validate(document)
    except ValidationError as exc:
        raise HTTPException(422, describe_validation_error(exc)) from None
    try:
        policy = set_board_policy(engine, board, document, replace=True)
    except UnknownBoard as exc:
        raise HTTPException(404, str(exc)) from None
    except RegistryError as exc:
        raise HTTPException(422, str(exc)) from None
    return policy_document(policy)

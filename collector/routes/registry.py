"""The admin API of the registry: the contracts CSV, a school's lines, a board's policy.

Scope (collector/routes/scope.py): a school's lines are read by whoever sees its board; a
board's policy is set by its board admins. The contracts CSV: GET gives the admin every
row (or one board's), a board role its own board's rows, an analyst the rows of a board it
sees when it names one (the whole file holds boards that have not shared: 403); POST is
the admin's, or a board admin's when every row of the file is its own board's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from agent.wire import describe_validation_error
from collector.accounts.roles import BOARD_ROLES, Viewer
from collector.accounts.web import ApiViewer
from collector.body import read_limited
from collector.contracts import (
    UnknownBoard,
    connections_document,
    export_contracts,
    import_contracts,
    policy_document,
    set_board_policy,
)
from collector.contracts_csv import ContractImportError, parse_contracts
from collector.deps import EngineDep
from collector.policy import BoardPolicy
from collector.registry import RegistryError
from collector.routes.scope import manageable_board, readable_board, readable_school, refused

router = APIRouter(prefix="/api/v1/admin", tags=["registry"])

# A board's sheet is some hundreds of rows; this leaves room for a cooperative's thousands.
# The work is bounded by the row limit (contracts_csv.MAX_ROWS, 50 000), which parsing
# applies here as for the command line; the bytes bound the memory of the body.
MAX_CSV_BYTES = 16 * 1024 * 1024


@router.get("/contracts.csv", summary="The contracts CSV, one row per term",
            response_class=Response)
def get_contracts(engine: EngineDep, viewer: ApiViewer, board: str | None = None) -> Response:
    if not viewer.is_admin:
        if board is None and viewer.role not in BOARD_ROLES:
            raise refused("name a board (?board=BOARD): the whole file is for the collector's admin")
        board = board or viewer.board
        assert board is not None  # a board role always has its board
        with engine.connect() as conn:
            readable_board(conn, viewer, board, _board_missing(board))
    try:
        text = export_contracts(engine, board)
    except UnknownBoard as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(text, media_type="text/csv; charset=utf-8")


@router.post("/contracts.csv", summary="Import a contracts CSV (all rows or none)")
async def post_contracts(request: Request, engine: EngineDep, viewer: ApiViewer) -> dict[str, Any]:
    if not viewer.is_admin and viewer.role != "board_admin":
        raise refused("only the collector's admin and board admins import contracts")
    # Streamed with the limit applied as it arrives (and to Content-Length first): reading
    # the whole body before measuring it would let one request fill the memory.
    body = await read_limited(request.stream(), request.headers.get("content-length"), MAX_CSV_BYTES)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, {"errors": [f"contracts.csv: not UTF-8 text (byte {exc.start}); "
                                             "save it as CSV UTF-8"]}) from None
    try:
        if not viewer.is_admin:
            # A board's sheet is small: reading it twice (here, then in the import) is cheap.
            await run_in_threadpool(_own_rows_only, viewer, text)
        # Sync work on an async route would block the loop: run it in the thread pool.
        report = await run_in_threadpool(import_contracts, engine, text, source_name="contracts.csv")
    except ContractImportError as exc:
        raise HTTPException(422, {"errors": exc.errors}) from None
    return report.as_dict()


@router.get("/schools/{board}/{school}/connections",
            summary="A school's lines with the terms in force today and every term")
def school_lines(board: str, school: str, request: Request, engine: EngineDep, viewer: ApiViewer
                 ) -> dict[str, Any]:
    with engine.connect() as conn:
        readable_school(conn, viewer, board, school)
    try:
        return connections_document(engine, f"{board}/{school}", request.app.state.settings.timezone)
    except RegistryError as exc:
        raise HTTPException(404, str(exc)) from None


@router.put("/boards/{board}/policy", summary="Set a board's policy (what it leaves out is "
            "the default); speeds in bytes per second")
def put_policy(board: str, engine: EngineDep, viewer: ApiViewer, document: dict[str, Any]
               ) -> dict[str, Any]:
    with engine.connect() as conn:
        manageable_board(conn, viewer, board, _board_missing(board))
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


def _board_missing(board: str) -> str:
    # collector/contracts.py board_pk_of's words for a board that does not exist.
    return f"no board with id {board!r} (see: board list)"


def _own_rows_only(viewer: Viewer, text: str) -> None:
    """A board admin's file holds its own board's rows only (403 naming the first other
    board, which the file itself names; ContractImportError for a file that does not parse)."""
    for row in parse_contracts(text, "contracts.csv"):
        if row.board != viewer.board:
            raise refused(f"contracts.csv:{row.line}: board {row.board!r}: a board admin imports "
                          f"the rows of its own board ({viewer.board}) only")

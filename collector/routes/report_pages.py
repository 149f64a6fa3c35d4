"""The provider comparison (web page, PDF, CSV, JSON) and a school's benchmark.

Who may look: a signed-in user or an admin token (collector/accounts/web.py). Pages (.html,
.pdf) send a browser without a session to the sign-in page; the exports (.csv, .json) answer
401. What each viewer sees is decided by collector/comparison/compute.py from the Viewer:
a board the viewer may not see answers as one that does not exist (a board it may not read
one by one in ``board=``: 422 "no board with id …"; another board's school on the
benchmark: 404 "no school …", as a school that does not exist), so ids cannot be probed; a
bad filter is a 422 with one line (a page for the page and the PDF, JSON for the exports).

Every answer is private, as the evidence pack's (collector/routes/incidents_pages.py): not
cached, no Referer, not indexed, and a Content-Security-Policy that loads nothing; only the
filter form may submit, and only to this collector (``form-action 'self'``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from collector.accounts.roles import Viewer
from collector.accounts.web import ApiViewer, PageViewer
from collector.comparison import compute, export, pdf, render, text
from collector.comparison.model import Benchmark, Filters, Report
from collector.comparison.text import Lang
from collector.routes.incidents_pages import PRIVATE_HEADERS, preferred_lang

router = APIRouter(tags=["comparison report"])

REPORT_HEADERS = {
    **PRIVATE_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
}

Many = Annotated[list[str], Query()]
OneText = Annotated[str | None, Query()]


class BadRequest(Exception):
    """A request the report cannot answer: status and one line for the reader. ``message`` is
    English (the exports' ``detail``); ``code`` and ``params`` let the page say it in the
    reader's language (collector/comparison/text.py, "error.<code>")."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 params: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.params = params or {}


def _day(value: str | None, name: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(422, f"{name}: not a date (YYYY-MM-DD): {value[:40]!r}", "not_a_date",
                         {"name": name, "value": value[:40]}) from None


def _lang(request: Request, asked: str | None) -> Lang:
    if asked not in (None, "", "nl", "en"):
        raise BadRequest(422, f"lang: nl or en, not {asked[:20]!r}", "bad_lang", {"value": asked[:20]})
    return preferred_lang(request, asked or None)


def _clean(values: list[str]) -> tuple[str, ...]:
    """Repeated values once each, in the order given; empty ones (an empty form field) dropped."""
    return tuple(dict.fromkeys(v.strip() for v in values if v.strip()))


def _filters(request: Request, asked: Asked) -> Filters:
    today = datetime.now(ZoneInfo(request.app.state.settings.timezone)).date()
    default = compute.default_filters(today)
    first, last = _day(asked.start, "from"), _day(asked.end, "to")
    filters = Filters(
        start=first or default.start,
        end=last or default.end,
        regions=_clean(asked.region),
        technologies=_clean(asked.technology),
        boards=_clean(asked.board),
        providers=_clean(asked.provider),
    )
    # The period's own checks (years 2000-2100, order, length) before anything else uses its
    # days: the same 422, in the same words, as the report's.
    try:
        compute.check_period(filters)
    except compute.ReportError as exc:
        raise _refused(exc, 422) from None
    return filters


def _refused(exc: Exception, status: int) -> BadRequest:
    """A compute.ReportError as the route's answer, its code and params kept for the page."""
    return BadRequest(status, str(exc), getattr(exc, "code", None), getattr(exc, "params", None))


def _build_report(request: Request, viewer: Viewer, filters: Filters) -> Report:
    try:
        return compute.build_report(request.app.state.engine, viewer, filters, now=time.time(),
                                    default_timezone=request.app.state.settings.timezone)
    except compute.ReportError as exc:
        raise _refused(exc, 422) from None


def _build_benchmark(request: Request, viewer: Viewer, board: str, school: str, filters: Filters
                     ) -> Benchmark:
    try:
        return compute.build_benchmark(request.app.state.engine, viewer, board, school, filters,
                                       now=time.time(), default_timezone=request.app.state.settings.timezone)
    except compute.UnknownSchool as exc:
        raise _refused(exc, 404) from None
    except compute.ReportError as exc:
        raise _refused(exc, 422) from None


def _private(response: Response) -> Response:
    response.headers.update(REPORT_HEADERS)
    return response


def _page_error(exc: BadRequest, lang: Lang) -> Response:
    message = text.refusal(exc.code, exc.params, lang, exc.message)
    return _private(HTMLResponse(render.error_html(message, lang), exc.status,
                                 headers={"Content-Language": lang}))


def _api_error(exc: BadRequest) -> Response:
    return _private(JSONResponse({"detail": exc.message}, exc.status))


def _fail_page(request: Request, asked: str | None, exc: BadRequest) -> Response:
    try:
        lang = _lang(request, asked)
    except BadRequest:
        lang = preferred_lang(request, None)
    return _page_error(exc, lang)


# FastAPI names query parameters by the function's arguments; "from" is a keyword in Python.
From = Annotated[str | None, Query(alias="from", description="first day, YYYY-MM-DD")]
To = Annotated[str | None, Query(alias="to", description="last day, YYYY-MM-DD")]


@dataclass(frozen=True)
class Asked:
    """The filters as the query gave them (checked when the report is built)."""

    start: str | None
    end: str | None
    region: list[str]
    technology: list[str]
    board: list[str]
    provider: list[str]


def _asked(start: From = None, end: To = None, region: Many = [], technology: Many = [],  # noqa: B006
           board: Many = [], provider: Many = []) -> Asked:  # noqa: B006
    return Asked(start, end, region, technology, board, provider)


def _period_only(start: From = None, end: To = None) -> Asked:
    return Asked(start, end, [], [], [], [])


ReportQuery = Annotated[Asked, Depends(_asked)]
PeriodQuery = Annotated[Asked, Depends(_period_only)]


def _report(request: Request, viewer: Viewer, asked: Asked) -> Report:
    return _build_report(request, viewer, _filters(request, asked))


@router.get("/report", response_class=HTMLResponse, summary="The provider comparison (web page)")
def report_page(request: Request, viewer: PageViewer, asked: ReportQuery, lang: OneText = None) -> Response:
    try:
        language = _lang(request, lang)
        report = _report(request, viewer, asked)
    except BadRequest as exc:
        return _fail_page(request, lang, exc)
    html = render.report_html(report, language)
    return _private(HTMLResponse(html, headers={"Content-Language": language}))


@router.get("/report.pdf", summary="The provider comparison as an A4 PDF")
def report_pdf(request: Request, viewer: PageViewer, asked: ReportQuery, lang: OneText = None) -> Response:
    try:
        language = _lang(request, lang)
        report = _report(request, viewer, asked)
    except BadRequest as exc:
        return _fail_page(request, lang, exc)
    name = f"report-{report.filters.start.isoformat()}-{report.filters.end.isoformat()}-{language}.pdf"
    return _private(Response(pdf.report_pdf(report, language), media_type="application/pdf",
                             headers={"Content-Disposition": f'inline; filename="{name}"'}))


@router.get("/report.csv", summary="The provider comparison as CSV (one row per group and per visible line)")
def report_csv(request: Request, viewer: ApiViewer, asked: ReportQuery, lang: OneText = None) -> Response:
    try:
        _lang(request, lang)  # checked, not used: the CSV is language-independent (export.py)
        report = _report(request, viewer, asked)
    except BadRequest as exc:
        return _api_error(exc)
    name = f"report-{report.filters.start.isoformat()}-{report.filters.end.isoformat()}.csv"
    return _private(Response(export.report_csv(report), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'}))


@router.get("/report.json", summary="The provider comparison as JSON (every figure with its sample)")
def report_json(request: Request, viewer: ApiViewer, asked: ReportQuery, lang: OneText = None) -> Response:
    try:
        _lang(request, lang)  # checked, not used: the JSON is language-independent (export.py)
        report = _report(request, viewer, asked)
    except BadRequest as exc:
        return _api_error(exc)
    return _private(Response(export.report_json(report), media_type="application/json"))


@router.get("/schools/{board}/{school}/benchmark", response_class=HTMLResponse,
            summary="A school's line compared with similar schools (anonymised)")
def benchmark_page(board: str, school: str, request: Request, viewer: PageViewer, asked: PeriodQuery,
                   lang: OneText = None) -> Response:
    try:
        language = _lang(request, lang)
        result = _build_benchmark(request, viewer, board, school, _filters(request, asked))
    except BadRequest as exc:
        return _fail_page(request, lang, exc)
    html = render.benchmark_html(result, language)
    return _private(HTMLResponse(html, headers={"Content-Language": language}))


@router.get("/schools/{board}/{school}/benchmark.json",
            summary="A school's line compared with similar schools, as JSON")
def benchmark_json(board: str, school: str, request: Request, viewer: ApiViewer, asked: PeriodQuery,
                   lang: OneText = None) -> Response:
    try:
        _lang(request, lang)  # checked, not used: the JSON is language-independent (export.py)
        result = _build_benchmark(request, viewer, board, school, _filters(request, asked))
    except BadRequest as exc:
        return _api_error(exc)
    return _private(Response(export.benchmark_json(result), media_type="application/json"))

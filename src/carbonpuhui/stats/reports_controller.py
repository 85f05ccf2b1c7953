"""HTTP routes for the pilot cities' quarterly reports: submit (freeze a revision), the status list,
a submitted revision as JSON, CSV or a printable HTML page, and the current draft."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from msgspec import Meta, Struct

from carbonpuhui.auth import access
from carbonpuhui.caching import NOT_MODIFIED, conditional_response
from carbonpuhui.db.engine import read_snapshot
from carbonpuhui.deps import CurrentPrincipal, DbSession
from carbonpuhui.errors import request_locale
from carbonpuhui.stats import render, reports
from carbonpuhui.throttle import spend_compute

CityPath = Annotated[str, PathParameter(min_length=1, max_length=6, description="A city's GB/T 2260 code, e.g. 370600")]
QuarterPath = Annotated[str, PathParameter(min_length=1, max_length=6, description="e.g. 2025Q1 (CST)")]
Format = Annotated[Literal["json", "csv", "html"] | None, QueryParameter(
    description="Overrides the Accept header: application/json, text/csv or text/html")]
Lang = Annotated[str | None, QueryParameter(max_length=35, description="zh-Hans, zh-Hant or en (CSV, HTML)")]
MEDIA = {"json": "application/json", "csv": "text/csv", "html": "text/html"}
PRIVATE = {"Cache-Control": "private, no-store"}
REVALIDATE = "public, no-cache"  # the latest revision may be superseded: ask again, cheaply
IMMUTABLE = "public, max-age=31536000, immutable"  # a named revision never changes


class ReportIn(Struct, kw_only=True, forbid_unknown_fields=True):
    city: Annotated[str, Meta(min_length=1, max_length=6, description="The city's GB/T 2260 code, e.g. 370600")]
    quarter: Annotated[str, Meta(min_length=1, max_length=6, description="An ended quarter, e.g. 2025Q1")]
    note: Annotated[str, Meta(max_length=1000)] | None = None


class ReportSubmitted(Struct, kw_only=True):
    city: str
    quarter: str
    revision: int
    submitted_at: str
    content_sha256: str
    late: bool
    url: str


class ReportStatus(Struct, kw_only=True):
    city: str
    quarter: str
    status: Annotated[Literal["submitted", "due", "overdue", "open"], Meta(
        description="open: the quarter has not ended; due: ended, before the due day ends; overdue: "
                    "after that, not submitted")]
    due_on: str
    revisions: int
    latest_revision: int | None
    submitted_at: Annotated[str | None, Meta(description="The first revision's submission (decides `late`)")]
    latest_submitted_at: str | None
    late: Annotated[bool, Meta(description="The first revision came after the due day ended (CST)")]


class ReportStatusPage(Struct, kw_only=True):
    items: list[ReportStatus]
    next_cursor: str | None = None


REPORT_RESPONSES = {
    HTTP_200_OK: ResponseSpec(data_container=dict[str, Any], description=(
        "The report: its stored JSON content (application/json), one CSV row per indicator and cell "
        "(text/csv) or a printable HTML page with SVG charts (text/html), by `format` or Accept")),
    **NOT_MODIFIED,
}
DRAFT_RESPONSES = {HTTP_200_OK: REPORT_RESPONSES[HTTP_200_OK]}  # computed afresh: no validator, no 304


def _format(request: Request[Any, Any, Any], chosen: str | None) -> str:
    if chosen is not None:
        return chosen
    try:
        wanted = request.accept.best_match(list(MEDIA.values()), default="application/json")
    except (ValueError, OverflowError):  # a quality Litestar cannot rank: the default
        wanted = "application/json"
    return next(key for key, media in MEDIA.items() if media == wanted)


def _represent(request: Request[Any, Any, Any], content: dict[str, Any], sha: str | None, chosen: str | None,
               cache_control: str, filename: str) -> Response[Any]:
    fmt = _format(request, chosen)
    headers = {"Cache-Control": cache_control, "Vary": "Accept, Accept-Language", "X-Content-Type-Options": "nosniff"}
    if fmt == "json":
        body, media = render.to_json(content), "application/json"
        variant = "json"
    else:
        locale = request_locale(request)
        headers["Content-Language"] = locale
        variant = f"{fmt}:{locale}"
        if fmt == "csv":
            body, media = render.to_csv(content, locale).encode(), "text/csv; charset=utf-8"
            headers["Content-Disposition"] = f'attachment; filename="{filename}.{locale}.csv"'
        else:
            body, media = render.to_html(content, locale, sha=sha).encode(), "text/html; charset=utf-8"
            headers["Content-Security-Policy"] = render.PAGE_CSP
    if sha is None:  # a draft: no validator worth keeping
        return Response(content=body, media_type=media, headers=headers)
    etag = '"' + hashlib.sha256(f"{sha}|{variant}".encode()).hexdigest()[:32] + '"'
    return conditional_response(request, body, etag, headers=headers, media_type=media)


class ReportController(Controller):
    path = "/v1/stats/reports"
    tags = ["statistics"]

    @post("", **access(roles=("officer", "admin"), errors=(403, 409, 422), body=True), status_code=HTTP_201_CREATED,
          summary="Submit a city's quarterly report: freeze today's figures as its next revision",
          description="An officer whose agency's organisation profile is in the city, or an admin. Only for "
                      "an ended quarter (CST). Each submission is a new revision (1, 2, ...); a submitted "
                      "revision never changes.")
    async def submit(self, data: JSONBody[ReportIn], db_session: DbSession,
                     principal: CurrentPrincipal) -> Response[ReportSubmitted]:
        city = reports.parse_city(data.city)
        quarter = reports.parse_quarter(data.quarter)
        row = await reports.submit(db_session, city=city, quarter=quarter, principal=principal, note=data.note)
        body = ReportSubmitted(city=row.city_code, quarter=row.quarter, revision=row.revision,
                               submitted_at=row.content["submitted_at"], content_sha256=row.content_sha256,
                               late=bool(row.content["late"]),
                               url=f"/v1/stats/reports/{row.city_code}/{row.quarter}?revision={row.revision}")
        return Response(body, status_code=HTTP_201_CREATED, headers=PRIVATE)

    @get("", **access(public=True, errors=(422,)),
         summary="A city's reports per quarter since the pilot began: submitted, due, overdue or open",
         description="Due by the 10th of the quarter's next month (CST); overdue from the day after.")
    async def list_reports(self, db_session: DbSession,
                           city: Annotated[str, QueryParameter(min_length=1, max_length=6)],
                           year: Annotated[int | None, QueryParameter(ge=2000, le=2999)] = None) -> ReportStatusPage:
        items = await reports.statuses(db_session, reports.parse_city(city), year)
        return ReportStatusPage(items=[ReportStatus(**item) for item in items])

    @get("/{city:str}/{quarter:str}", **access(public=True, errors=(404, 422), responses=REPORT_RESPONSES),
         summary="A submitted report (the latest revision, or `revision`), as JSON, CSV or HTML",
         description="Exactly the content frozen at submission, whatever changed since. The HTML page has "
                     "no script and loads nothing; it prints on A4.", media_type="application/json")
    async def report(self, request: Request[Any, Any, Any], db_session: DbSession, city: CityPath,
                     quarter: QuarterPath, revision: Annotated[int | None, QueryParameter(ge=1, le=10_000)] = None,
                     format: Format = None, lang: Lang = None) -> Response[Any]:  # noqa: A002 - the API's name
        code, period = reports.parse_city(city), reports.parse_quarter(quarter)
        row = await reports.stored(db_session, code, period, revision)
        return _represent(request, row.content, row.content_sha256, format,
                          IMMUTABLE if revision is not None else REVALIDATE, f"report-{code}-{period}-r{row.revision}")

    @get("/{city:str}/{quarter:str}/draft", **access(roles=("officer", "admin"), errors=(422, 429),
                                                     responses=DRAFT_RESPONSES), before_request=spend_compute,
         summary="The report as it would be submitted now (not stored), as JSON, CSV or HTML",
         media_type="application/json")
    async def draft(self, request: Request[Any, Any, Any], db_session: DbSession, city: CityPath,
                    quarter: QuarterPath, format: Format = None,  # noqa: A002
                    lang: Lang = None) -> Response[Any]:
        code, period = reports.parse_city(city), reports.parse_quarter(quarter)
        await read_snapshot(db_session)  # every part of the draft from one state of the database
        content = await reports.build(db_session, code, period)
        return _represent(request, content, None, format, PRIVATE["Cache-Control"], f"report-{code}-{period}-draft")


HANDLERS: list[object] = [ReportController]

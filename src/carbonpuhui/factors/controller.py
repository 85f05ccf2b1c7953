"""HTTP routes of the factor database (``/v1/factors``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, Reference, RequestBody, Schema
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from carbonpuhui.auth import access
from carbonpuhui.caching import NOT_MODIFIED, cached_response
from carbonpuhui.deps import CurrentPrincipal, DbSession, MaybePrincipal
from carbonpuhui.errors import UnsupportedMediaTypeError, request_locale
from carbonpuhui.factors.importer import CSV_COLUMNS, import_factors, parse
from carbonpuhui.factors.schemas import (
    CATEGORY_PATTERN,
    FACTOR_ID_PATTERN,
    REGION_PATTERN,
    UNIT_PATTERN,
    FactorBody,
    FactorCreate,
    FactorOut,
    FactorPage,
    ImportResult,
    Resolution,
    Tier,
)
from carbonpuhui.factors.service import FactorService, enterprise_of, to_out
from carbonpuhui.i18n import N_
from carbonpuhui.paging import decode_cursor, encode_cursor

Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Page size")]
# Parameters carry their constraints on Litestar's markers: msgspec ``Meta`` inside them is not enforced.
FactorIdPath = Annotated[str, PathParameter(pattern=FACTOR_ID_PATTERN, max_length=100)]
# Versions in their one canonical spelling: Python's int() would also take "01", "1_0", "+1" or
# Arabic-Indic digits, and make several public, cacheable addresses for one version.
VersionPath = Annotated[str, PathParameter(pattern=r"^[1-9][0-9]{0,9}(?!\n)$", description="1, 2, 3, ...")]
CategoryQuery = Annotated[str, QueryParameter(pattern=CATEGORY_PATTERN, max_length=100)]
UnitQuery = Annotated[str, QueryParameter(pattern=UNIT_PATTERN, min_length=1, max_length=32)]
RegionQuery = Annotated[str, QueryParameter(pattern=REGION_PATTERN, description="ISO 3166 code or GLO")]
OptionalCategory = Annotated[str | None, QueryParameter(pattern=CATEGORY_PATTERN, max_length=100)]
OptionalRegion = Annotated[str | None, QueryParameter(pattern=REGION_PATTERN, description="ISO 3166 code or GLO")]


@dataclass
class _ImportOperation(Operation):
    """The import reads its body itself (CSV or JSON); describe both forms in the schema."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(required=True, description="A CSV file or a JSON array of factors", content={
            "text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, description=(
                "Header row, then one factor per row; columns: " + ", ".join(CSV_COLUMNS)))),
            "application/json": OpenAPIMediaType(schema=Schema(
                type=OpenAPIType.ARRAY, items=Reference(ref="#/components/schemas/FactorCreate"))),
        })


FactorOutDoc = "Sends an ETag; a matching If-None-Match gives 304 Not Modified."


class FactorController(Controller):
    path = "/v1/factors"
    tags = ["factors"]

    @get("", **access(public=True, errors=(400, 422)), summary="Search published factors")
    async def list_factors(
        self, db_session: DbSession, principal: MaybePrincipal,
        q: Annotated[str | None, QueryParameter(max_length=200, description="Text in id, names, source")] = None,
        category: OptionalCategory = None, region: OptionalRegion = None,
        tier: FromQuery[Tier | None] = None, valid_on: FromQuery[date | None] = None,
        cursor: FromQuery[str | None] = None, limit: Limit = 50,
    ) -> FactorPage:
        after = decode_cursor(cursor)
        rows = await FactorService(db_session).search(
            principal, q=q, category=category, region=region, tier=tier, valid_on=valid_on, after=after,
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return FactorPage(items=[to_out(r) for r in rows],
                          next_cursor=encode_cursor(rows[-1].factor_id) if more and rows else None)

    @get("/resolve", **access(public=True, errors=(404, 422)),
         summary="The factor that applies to an activity on a date",
         description="Enterprise (the caller's organisation's own) > provincial > national > default.")
    async def resolve(
        self, request: Request[Any, Any, Any], db_session: DbSession, principal: MaybePrincipal,
        category: CategoryQuery, unit: UnitQuery, region: RegionQuery = "CN",
        resolve_date: Annotated[date | None, QueryParameter(name="date", description="Default: today")] = None,
    ) -> Resolution:
        day = resolve_date or datetime.now(UTC).date()
        return await FactorService(db_session).resolve(
            category=category, unit=unit, region=region, day=day,
            org=enterprise_of(principal), locale=request_locale(request),
        )

    @post("/import", **access(roles=("admin",), errors=(409, 415), body=True), status_code=HTTP_200_OK,
          summary="Import factors from CSV or a JSON array (all or nothing)",
          request_max_body_size=32 * 1024 * 1024, operation_class=_ImportOperation)
    async def import_file(self, request: Request[Any, Any, Any], db_session: DbSession,
                          principal: CurrentPrincipal, publish: FromQuery[bool] = False) -> ImportResult:
        media_type = request.headers.get("content-type", "")
        if media_type.split(";")[0].strip().lower() not in ("text/csv", "application/csv", "application/json"):
            raise UnsupportedMediaTypeError(N_("Send text/csv or application/json."), reason="unsupported_media_type")
        rows = await asyncio.to_thread(parse, await request.body(), media_type)  # CPU-bound
        return await import_factors(FactorService(db_session), rows, principal, publish=publish,
                                    locale=request_locale(request))

    @post("", **access(roles=("admin",), errors=(409,), body=True), status_code=HTTP_201_CREATED,
          summary="Create a factor (a draft at version 1)")
    async def create(self, data: JSONBody[FactorCreate], db_session: DbSession, principal: CurrentPrincipal) -> FactorOut:
        return to_out(await FactorService(db_session).create(data, principal))

    @get("/{factor_id:str}", **access(public=True, errors=(404, 422), responses=NOT_MODIFIED),
         summary="The latest published version of a factor", description=FactorOutDoc)
    async def latest(self, request: Request[Any, Any, Any], factor_id: FactorIdPath, db_session: DbSession,
                     principal: MaybePrincipal) -> Response[FactorOut]:
        row = await FactorService(db_session).get_latest(factor_id, principal)
        # "Latest" moves when a new version publishes: cache briefly, revalidate by ETag.
        return cached_response(request, to_out(row), max_age=60, shared=row.tier != "enterprise")

    @get("/{factor_id:str}/versions", **access(public=True, errors=(404, 422)), summary="All visible versions")
    async def versions(self, factor_id: FactorIdPath, db_session: DbSession,
                       principal: MaybePrincipal) -> FactorPage:
        # A factor has few versions: one page, in the list envelope every list uses.
        rows = await FactorService(db_session).versions(factor_id, principal)
        return FactorPage(items=[to_out(r) for r in rows], next_cursor=None)

    @post("/{factor_id:str}/versions", **access(roles=("admin",), errors=(404, 409, 422), body=True),
          status_code=HTTP_201_CREATED, summary="Add the next version (a draft)")
    async def add_version(self, factor_id: FactorIdPath, data: JSONBody[FactorBody], db_session: DbSession,
                          principal: CurrentPrincipal) -> FactorOut:
        return to_out(await FactorService(db_session).add_version(factor_id, data, principal))

    @get("/{factor_id:str}/versions/{version:str}", **access(public=True, errors=(404, 422), responses=NOT_MODIFIED),
         summary="One version (drafts: admins only)", description=FactorOutDoc)
    async def version(self, request: Request[Any, Any, Any], factor_id: FactorIdPath, version: VersionPath,
                      db_session: DbSession, principal: MaybePrincipal) -> Response[FactorOut]:
        row = await FactorService(db_session).get_version(factor_id, int(version), principal)
        # A published version's content never changes; only a retirement can, so keep it minutes, not hours.
        shared = row.status != "draft" and row.tier != "enterprise"
        return cached_response(request, to_out(row), max_age=300, shared=shared)

    @post("/{factor_id:str}/versions/{version:str}/publish", **access(roles=("admin",), errors=(404, 409, 422)),
          status_code=HTTP_200_OK, summary="Publish a draft; published versions never change")
    async def publish(self, factor_id: FactorIdPath, version: VersionPath, db_session: DbSession,
                      principal: CurrentPrincipal) -> FactorOut:
        return to_out(await FactorService(db_session).publish(factor_id, int(version), principal))

    @post("/{factor_id:str}/versions/{version:str}/retire", **access(roles=("admin",), errors=(404, 409, 422)),
          status_code=HTTP_200_OK, summary="Retire a published version (it stays readable)")
    async def retire(self, factor_id: FactorIdPath, version: VersionPath, db_session: DbSession,
                     principal: CurrentPrincipal) -> FactorOut:
        return to_out(await FactorService(db_session).retire(factor_id, int(version), principal))

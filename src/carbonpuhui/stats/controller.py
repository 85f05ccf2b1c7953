"""HTTP routes for organisation profiles, their sites, and the export shipments enterprises declare."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from carbonpuhui.auth import access
from carbonpuhui.deps import CurrentPrincipal, DbSession
from carbonpuhui.errors import FieldError, UnprocessableError, UnsupportedMediaTypeError, request_locale
from carbonpuhui.i18n import N_
from carbonpuhui.paging import decode_cursor, encode_cursor
from carbonpuhui.stats.api_schemas import (
    MAX_ITEMS,
    BatchWithdrawn,
    OrganisationIn,
    OrganisationOut,
    OrganisationPage,
    ShipmentBatch,
    ShipmentPage,
    ShipmentsIn,
    SiteIn,
    SiteOut,
    SitePage,
)
from carbonpuhui.stats.organisations import OrganisationService
from carbonpuhui.stats.quarters import Quarter
from carbonpuhui.stats.shipments import (
    CSV_COLUMNS,
    MAX_CSV_BYTES,
    ShipmentService,
    csv_location,
    csv_rows,
    json_location,
)

OrgPath = Annotated[str, PathParameter(min_length=1, max_length=100, description="The organisation (token `org`)")]
BatchPath = Annotated[str, PathParameter(min_length=1, max_length=36, description="The batch id a declaration returned")]
Cursor = Annotated[str | None, QueryParameter(max_length=200)]
Limit = Annotated[int, QueryParameter(ge=1, le=500)]
PRIVATE = {"Cache-Control": "private, no-store"}
PROFILE_RESPONSES = {
    HTTP_201_CREATED: ResponseSpec(data_container=OrganisationOut, description="The profile, created"),
    HTTP_200_OK: ResponseSpec(data_container=OrganisationOut, description="The profile, replaced"),
}


def _quarter(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return str(Quarter.parse(text))
    except ValueError:
        raise UnprocessableError(N_("Some fields are invalid."), errors=[
            FieldError(field="quarter", message=N_("A quarter is written like 2025Q1."))]) from None


def _shipment_cursor(key: str) -> tuple[str, str] | None:
    quarter, sep, ident = key.partition("|")
    try:
        Quarter.parse(quarter)
    except ValueError:
        return None
    return (quarter, ident) if sep and ident else None


class _CsvOperation(Operation):
    """The import reads its body itself: describe the CSV in the schema."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(required=True, description=(
            f"UTF-8 CSV (a BOM is fine), header `{','.join(CSV_COLUMNS)}`, at most {MAX_ITEMS} rows and "
            f"{MAX_CSV_BYTES // (1024 * 1024)} MiB"), content={"text/csv": OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.STRING))})


class OrganisationController(Controller):
    path = "/v1/organisations"
    tags = ["statistics"]

    @put("/{org:str}", **access(roles=("admin",), body=True, responses=PROFILE_RESPONSES),
         status_code=HTTP_200_OK, summary="Create or replace an organisation's profile (division and industry)",
         description="`division_code`: a GB/T 2260 code in force (a county, city or province); statistics "
                     "count the organisation in its city. `industry`: one of the industries statistics group by.")
    async def put_profile(self, org: OrgPath, data: JSONBody[OrganisationIn], db_session: DbSession,
                          principal: CurrentPrincipal) -> Response[OrganisationOut]:
        service = OrganisationService(db_session)
        row, created = await service.put(org, data, principal)
        return Response(service.out(row), status_code=HTTP_201_CREATED if created else HTTP_200_OK, headers=PRIVATE)

    @get("", **access(roles=("admin", "officer"), errors=(422,)), summary="Organisation profiles, by org")
    async def list_profiles(self, db_session: DbSession,
                            division: Annotated[str | None, QueryParameter(
                                max_length=6, description="A province, city or county code: those within it")] = None,
                            industry: Annotated[str | None, QueryParameter(max_length=32)] = None,
                            cursor: Cursor = None, limit: Limit = 100) -> Response[OrganisationPage]:
        service = OrganisationService(db_session)
        rows = await service.page(after=decode_cursor(cursor), limit=limit + 1, area=division, industry=industry)
        more = len(rows) > limit
        rows = rows[:limit]
        page = OrganisationPage(items=[service.out(r) for r in rows],
                                next_cursor=encode_cursor(rows[-1].org) if more else None)
        return Response(page, headers=PRIVATE)

    @get("/{org:str}", **access(authenticated=True, errors=(404, 422)),
         summary="An organisation's profile (admins, officers, the organisation's own members; others 404)")
    async def get_profile(self, org: OrgPath, db_session: DbSession,
                          principal: CurrentPrincipal) -> Response[OrganisationOut]:
        service = OrganisationService(db_session)
        return Response(service.out(await service.readable(org, principal)), headers=PRIVATE)

    @post("/{org:str}/sites", **access(roles=("admin", "merchant"), errors=(404,), body=True),
          status_code=HTTP_201_CREATED, summary="Add a site (plant, shop) of the organisation",
          description="Admins, or a merchant of the organisation. Products made there may name it (`site_id`) "
                      "and then count in the site's division and industry.")
    async def add_site(self, org: OrgPath, data: JSONBody[SiteIn], db_session: DbSession,
                       principal: CurrentPrincipal) -> Response[SiteOut]:
        service = OrganisationService(db_session)
        return Response(service.site_out(await service.add_site(org, data, principal)), status_code=HTTP_201_CREATED,
                        headers=PRIVATE)

    @get("/{org:str}/sites", **access(authenticated=True, errors=(404, 422)),
         summary="The organisation's sites (who may read the profile)")
    async def list_sites(self, org: OrgPath, db_session: DbSession, principal: CurrentPrincipal,
                         cursor: Cursor = None, limit: Limit = 100) -> Response[SitePage]:
        service = OrganisationService(db_session)
        rows = await service.sites(org, principal, after=decode_cursor(cursor), limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        page = SitePage(items=[service.site_out(r) for r in rows], next_cursor=encode_cursor(rows[-1].id) if more else None)
        return Response(page, headers=PRIVATE)


class ExportShipmentController(Controller):
    path = "/v1/merchant/export-shipments"
    tags = ["statistics"]

    @post("", **access(roles=("merchant",), body=True), status_code=HTTP_201_CREATED,
          request_max_body_size=MAX_CSV_BYTES,
          summary="Declare export shipments of your products, all or nothing",
          description=f"At most {MAX_ITEMS} items. One invalid item (`items[3].gtin`) rejects the call and "
                      "stores nothing. `quantity` is in the product's declared unit.")
    async def declare(self, request: Request[Any, Any, Any], data: JSONBody[ShipmentsIn], db_session: DbSession,
                      principal: CurrentPrincipal) -> Response[ShipmentBatch]:
        items = [(index, item, None) for index, item in enumerate(data.items)]
        batch_id, count = await ShipmentService(db_session).declare(
            items, principal, locate=json_location, locale=request_locale(request))
        return Response(ShipmentBatch(batch_id=batch_id, count=count), status_code=HTTP_201_CREATED, headers=PRIVATE)

    @post("/import", **access(roles=("merchant",), errors=(415,), body=True), status_code=HTTP_201_CREATED,
          request_max_body_size=MAX_CSV_BYTES, operation_class=_CsvOperation,
          summary="Declare export shipments from a CSV file, all or nothing",
          description="Errors name the line (`line`, 1 = the header) and the column (`field`).")
    async def import_csv(self, request: Request[Any, Any, Any], db_session: DbSession,
                         principal: CurrentPrincipal) -> Response[ShipmentBatch]:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in ("text/csv", "application/csv"):
            raise UnsupportedMediaTypeError(N_("Send text/csv."), reason="unsupported_media_type")
        service = ShipmentService(db_session)
        service.exporter(principal)  # refuse a token without an organisation before reading the file
        locale = request_locale(request)
        body = await request.body()

        def parse() -> list[tuple[int, Any, Any]]:
            out = []
            for row in csv_rows(body, locale):
                out.append((row.line, row.item, row.error))
                if len(out) > MAX_ITEMS:
                    break
            return out

        rows = await asyncio.to_thread(parse)  # CPU-bound
        batch_id, count = await service.declare(rows, principal, locate=csv_location, locale=locale)
        return Response(ShipmentBatch(batch_id=batch_id, count=count), status_code=HTTP_201_CREATED, headers=PRIVATE)

    @get("", **access(roles=("merchant",), errors=(422,)), summary="Your organisation's declared shipments")
    async def list_shipments(self, db_session: DbSession, principal: CurrentPrincipal,
                             quarter: Annotated[str | None, QueryParameter(max_length=6)] = None,
                             batch_id: Annotated[str | None, QueryParameter(max_length=36)] = None,
                             cursor: Cursor = None, limit: Limit = 100) -> Response[ShipmentPage]:
        service = ShipmentService(db_session)
        key = decode_cursor(cursor, lambda k: _shipment_cursor(k) is not None)
        rows = await service.page(principal, quarter=_quarter(quarter), batch_id=batch_id,
                                  after=None if key is None else _shipment_cursor(key), limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        page = ShipmentPage(items=[service.out(r) for r in rows],
                            next_cursor=encode_cursor(f"{rows[-1].quarter}|{rows[-1].id}") if more else None)
        return Response(page, headers=PRIVATE)

    @delete("/batches/{batch_id:str}", **access(roles=("merchant",), errors=(404, 409, 422)), status_code=HTTP_200_OK,
            summary="Withdraw a batch of your shipments (a wrong import), all of it")
    async def withdraw(self, batch_id: BatchPath, db_session: DbSession,
                       principal: CurrentPrincipal) -> Response[BatchWithdrawn]:
        deleted = await ShipmentService(db_session).withdraw(batch_id, principal)
        return Response(BatchWithdrawn(batch_id=batch_id, deleted=deleted), headers=PRIVATE)


HANDLERS: list[object] = [OrganisationController, ExportShipmentController]

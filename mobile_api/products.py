"""Merchant routes for products, inventories and footprints (the public view is in ``labels``)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from carbonpuhui.auth import access
from carbonpuhui.deps import CurrentPrincipal, DbSession
from carbonpuhui.errors import FieldError, UnprocessableError, request_locale
from carbonpuhui.footprints.schemas import (
    Footprint,
    InventoryIn,
    InventoryOut,
    ProductCreate,
    ProductOut,
    ProductPage,
    ProductUpdate,
    RefreshResult,
    VerifierAssign,
)
from carbonpuhui.footprints.service import ProductService
from carbonpuhui.i18n import N_
from carbonpuhui.paging import decode_cursor, encode_cursor
from carbonpuhui.throttle import spend_compute

GtinPath = Annotated[str, PathParameter(min_length=1, max_length=20, description="GTIN-8, -12, -13 or -14")]
OrgPath = Annotated[str, PathParameter(min_length=1, max_length=100)]
Samples = Annotated[int, QueryParameter(ge=100, le=100_000, description="Monte Carlo samples")]
Seed = Annotated[int, QueryParameter(ge=0, le=2**63 - 1, description="Same seed, same numbers")]
IfMatch = Annotated[str | None, HeaderParameter(name="If-Match", required=False,
                                                description='The inventory revision being replaced, e.g. "3"')]
READERS = ("merchant", "verifier", "admin")  # the service narrows this to owner / assigned body / admin


def _is_gtin14(key: str) -> bool:
    return key.isascii() and key.isdigit() and len(key) == 14


def _revision(header: str | None) -> int | None:
    if header is None or header.strip() == "*":  # RFC 9110: any current revision
        return None
    text = header.strip().removeprefix("W/").strip('"')
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise UnprocessableError(N_("Some fields are invalid."), errors=[
            FieldError(field="If-Match", message=N_("Give the inventory revision, e.g. \"3\"."))])
    return int(text)


def _with_etag(inventory: InventoryOut) -> Response[InventoryOut]:
    return Response(inventory, headers={"ETag": f'"{inventory.revision}"', "Cache-Control": "private, no-store"})


class MerchantProductController(Controller):
    path = "/v1/merchant/products"
    tags = ["products"]

    @post("", **access(roles=("merchant",), errors=(403, 409), body=True), status_code=HTTP_201_CREATED,
          summary="Register a product of the caller's organisation")
    async def create(self, data: JSONBody[ProductCreate], db_session: DbSession,
                     principal: CurrentPrincipal) -> ProductOut:
        service = ProductService(db_session)
        return await service.out(await service.create(data, principal))

    @get("", **access(roles=("merchant",), errors=(422,)), summary="The organisation's products")
    async def list_own(self, db_session: DbSession, principal: CurrentPrincipal,
                       cursor: Annotated[str | None, QueryParameter()] = None,
                       limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50) -> ProductPage:
        service = ProductService(db_session)
        rows = await service.list_owned(principal, after=decode_cursor(cursor, _is_gtin14), limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].gtin) if more else None
        return ProductPage(items=[await service.out(r) for r in rows], next_cursor=next_cursor)

    @get("/{gtin:str}", **access(roles=("merchant",), errors=(404, 422)), summary="One of the organisation's products")
    async def get_own(self, gtin: GtinPath, db_session: DbSession, principal: CurrentPrincipal) -> ProductOut:
        service = ProductService(db_session)
        return await service.out(await service.owned(gtin, principal))

    @patch("/{gtin:str}", **access(roles=("merchant",), errors=(404,), body=True), status_code=HTTP_200_OK,
           summary="Change one of the organisation's products (fields left out stay as they are)",
           description="`site_id`: a site of the organisation where the product is made (statistics count it "
                       "there), or null for the organisation's seat; another organisation's site is a 422.")
    async def update(self, gtin: GtinPath, data: JSONBody[ProductUpdate], db_session: DbSession,
                     principal: CurrentPrincipal) -> ProductOut:
        service = ProductService(db_session)
        return await service.out(await service.update(gtin, data, principal))

    @put("/{gtin:str}/inventory", **access(roles=("merchant",), errors=(404, 409), body=True),
         status_code=HTTP_200_OK, summary="Replace the product's inventory (activity data)",
         description="Factor versions are pinned now; later factor publications change nothing until "
                     "`POST .../footprint/refresh`. Send `If-Match` with the revision you edited to "
                     "refuse a concurrent overwrite (409).")
    async def put_inventory(self, request: Request[Any, Any, Any], gtin: GtinPath, data: JSONBody[InventoryIn],
                            db_session: DbSession, principal: CurrentPrincipal,
                            if_match: IfMatch = None) -> Response[InventoryOut]:
        service = ProductService(db_session)
        product = await service.put_inventory(gtin, data, principal, locale=request_locale(request),
                                              expected_revision=_revision(if_match))
        return _with_etag(await service.inventory(product.gtin, principal))

    @get("/{gtin:str}/inventory", **access(roles=READERS, errors=(404, 422)),
         summary="The inventory (owner, assigned verifier, admin)")
    async def get_inventory(self, gtin: GtinPath, db_session: DbSession,
                            principal: CurrentPrincipal) -> Response[InventoryOut]:
        return _with_etag(await ProductService(db_session).inventory(gtin, principal))

    @get("/{gtin:str}/footprint", **access(roles=READERS, errors=(404, 422, 429)), before_request=spend_compute,
         summary="The footprint per declared unit: stages, lines, hotspots, quality, Monte Carlo",
         description="Same inventory, same factor versions and same seed give identical numbers.")
    async def footprint(self, gtin: GtinPath, db_session: DbSession, principal: CurrentPrincipal,
                        samples: Samples = 10_000, seed: Seed = 1) -> Response[Footprint]:
        result = await ProductService(db_session).footprint(gtin, principal, samples=samples, seed=seed)
        return Response(result, headers={"Cache-Control": "private, no-store"})

    @post("/{gtin:str}/footprint/refresh", **access(roles=("merchant",), errors=(404, 409, 422, 429)),
          before_request=spend_compute,
          status_code=HTTP_200_OK, summary="Move resolved lines to the newest factor versions, explicitly")
    async def refresh(self, gtin: GtinPath, db_session: DbSession, principal: CurrentPrincipal,
                      samples: Samples = 10_000, seed: Seed = 1) -> RefreshResult:
        return await ProductService(db_session).refresh(gtin, principal, samples=samples, seed=seed)

    @post("/{gtin:str}/verifiers", **access(roles=("merchant",), errors=(404,), body=True),
          status_code=HTTP_200_OK, summary="Entrust a certification body with the inventory")
    async def assign(self, gtin: GtinPath, data: JSONBody[VerifierAssign], db_session: DbSession,
                     principal: CurrentPrincipal) -> ProductOut:
        service = ProductService(db_session)
        return await service.out(await service.assign_verifier(gtin, data.certification_body, principal))

    @delete("/{gtin:str}/verifiers/{body_org:str}", **access(roles=("merchant",), errors=(404, 422)),
            status_code=HTTP_200_OK, summary="Withdraw a certification body's access")
    async def unassign(self, gtin: GtinPath, body_org: OrgPath, db_session: DbSession,
                       principal: CurrentPrincipal) -> ProductOut:
        service = ProductService(db_session)
        return await service.out(await service.unassign_verifier(gtin, body_org, principal))

"""What apps, shoppers and phones see of labels (no login), and the merchant side of labels and listings.

Public label reads come from the shared cache (``carbonpuhui.labels.cache``), carry an ETag and
``Cache-Control: public, no-cache`` (a client or CDN may keep them but asks again, cheaply, with
``If-None-Match``), so a revocation or a regrade shows on the very next read.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response import Redirect
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_201_CREATED,
    HTTP_204_NO_CONTENT,
    HTTP_308_PERMANENT_REDIRECT,
)

from carbonpuhui.auth import access
from carbonpuhui.caching import NOT_MODIFIED, cached_response, conditional_response
from carbonpuhui.deps import CurrentPrincipal, DbSession
from carbonpuhui.errors import NotFoundError, request_locale
from carbonpuhui.factors.schemas import CATEGORY_PATTERN
from carbonpuhui.footprints.service import gtin14
from carbonpuhui.i18n import N_
from carbonpuhui.ids import is_uuid
from carbonpuhui.labels import render
from carbonpuhui.labels.cache import PublicCache
from carbonpuhui.labels.schemas import (
    GRADES,
    AlternativesPage,
    ApplicationIn,
    ApplicationOut,
    LabelOut,
    ListingIn,
    ListingOut,
    ListingPage,
    PublicProduct,
    SelfDeclarationIn,
)
from carbonpuhui.labels.service import CertificationService, PublicLabelService
from carbonpuhui.paging import decode_cursor, encode_cursor

GtinPath = Annotated[str, PathParameter(min_length=1, max_length=20, description="GTIN-8, -12, -13 or -14")]
IdPath = Annotated[str, PathParameter(min_length=1, max_length=64)]
REVALIDATE = "public, no-cache"
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"
SVG_RESPONSE = {200: ResponseSpec(data_container=str, media_type="image/svg+xml", description="The label (SVG)"),
                **NOT_MODIFIED}
PAGE_RESPONSES = {
    200: ResponseSpec(data_container=PublicProduct, description="An HTML page of the label; the product JSON "
                      "for `Accept: application/json`"),
    308: ResponseSpec(data_container=None, description="A short GTIN: the 14-digit address"),
    **NOT_MODIFIED,
}


def _cache(request: Request[Any, Any, Any]) -> PublicCache:
    return PublicCache(request.app.state.stores)


def _base_url(request: Request[Any, Any, Any]) -> str:
    # Without a configured address, the request's: its Host is a host name and port at most (the
    # request-id middleware refuses anything else), since it ends up in QR codes and cache keys.
    return request.app.state.settings.public_base_url or str(request.base_url).rstrip("/")


async def _cached(request: Request[Any, Any, Any], gtin: str, variant: str, media_type: str,
                  render_body: Any, *, headers: dict[str, str] | None = None) -> Response[Any]:
    """The variant of the product's public view from the shared cache, or built and cached.

    The base URL is part of the key: where it comes from the request (no public_base_url set), a
    forged Host header can only ever poison its own variant, never what others are served. A cache
    hit opens no database session at all.
    """
    key = gtin14(gtin)
    base = _base_url(request)

    async def build() -> tuple[bytes, int]:
        async with request.app.state.db.transaction() as session:
            view, ttl = await PublicLabelService(session).view(key, base)
        return render_body(view, base), ttl

    body, etag = await _cache(request).get_or_build(key, f"{variant}|{base}", build)
    return conditional_response(request, body, etag, media_type=media_type, headers={
        "Cache-Control": REVALIDATE, "Vary": "Accept, Accept-Language", "X-Content-Type-Options": "nosniff",
        **(headers or {})})


def _json(view: PublicProduct, _base: str) -> bytes:
    return msgspec.json.encode(view)


class PublicLabelController(Controller):
    path = "/v1/products"
    tags = ["labels"]

    @get("/{gtin:str}", **access(public=True, errors=(404, 422), responses=NOT_MODIFIED),
         summary="A product as anyone may see it: names, category, current label, listings")
    async def public(self, request: Request[Any, Any, Any], gtin: GtinPath) -> Response[PublicProduct]:
        return await _cached(request, gtin, "json", "application/json", _json)

    @get("/{gtin:str}/label.svg", **access(public=True, errors=(404, 422), responses=SVG_RESPONSE),
         summary="The label as an SVG picture in the reader's language, with a QR code of its Digital Link",
         media_type="image/svg+xml")
    async def label_svg(self, request: Request[Any, Any, Any], gtin: GtinPath,
                        lang: Annotated[str | None, QueryParameter(max_length=35)] = None) -> Response[str]:
        locale = request_locale(request)

        def draw(view: PublicProduct, base: str) -> bytes:
            if view.label is None:  # nothing to draw (and nothing cached: this is the rare path)
                raise NotFoundError(N_("Product {gtin} has no carbon label."), reason="label_not_found", gtin=gtin)
            return render.label_svg(view, locale=locale, base_url=base).encode()

        return await _cached(request, gtin, f"svg:{locale}", "image/svg+xml", draw,
                             headers={"Content-Security-Policy": SVG_CSP})

    @get("/{gtin:str}/alternatives", **access(public=True, errors=(404, 422), responses=NOT_MODIFIED),
         summary="Listed products of the same category with a better grade or a lower footprint, best first")
    async def alternatives(self, request: Request[Any, Any, Any], gtin: GtinPath,
                           db_session: DbSession) -> Response[AlternativesPage]:
        page = await PublicLabelService(db_session).alternatives(gtin, _base_url(request))
        return cached_response(request, page, max_age=0, shared=True, cache_control=REVALIDATE)


class DigitalLinkController(Controller):
    """GS1 Digital Link: ``/01/{gtin14}`` is the address a phone opens from the label's QR code."""

    path = "/01"
    tags = ["labels"]

    @get("/{gtin:str}", **access(public=True, errors=(404, 422), responses=PAGE_RESPONSES),
         summary="The label page (HTML in the request's language), or the product JSON", media_type="text/html")
    async def page(self, request: Request[Any, Any, Any], gtin: GtinPath,
                   lang: Annotated[str | None, QueryParameter(max_length=35)] = None) -> Response[Any]:
        key = gtin14(gtin)
        if gtin != key:  # GS1 Digital Link's canonical form is the 14-digit GTIN
            query = f"?{request.url.query}" if request.url.query else ""
            return Redirect(f"/01/{key}{query}", status_code=HTTP_308_PERMANENT_REDIRECT)
        try:
            wanted = request.accept.best_match(["text/html", "application/json"], default="text/html")
        except (ValueError, OverflowError):  # Litestar cannot rank a quality such as q=inf: the page
            wanted = "text/html"
        if wanted == "application/json":
            return await _cached(request, key, "json", "application/json", _json)
        locale = request_locale(request)

        def page_html(view: PublicProduct, base: str) -> bytes:
            return render.label_page(view, locale=locale, base_url=base,
                                     svg_url=f"/v1/products/{view.gtin}/label.svg?lang={locale}").encode()

        return await _cached(request, key, f"html:{locale}", "text/html", page_html,
                             headers={"Content-Security-Policy": render.PAGE_CSP, "Content-Language": locale})


class MerchantLabelController(Controller):
    path = "/v1/merchant/products"
    tags = ["labels"]

    @post("/{gtin:str}/label-applications", **access(roles=("merchant",), errors=(404, 409), body=True),
          status_code=HTTP_201_CREATED, summary="Apply for a verified label (owner)",
          description="Naming a certification body entrusts it with the inventory; naming none lets any "
                      "body see and decide it, and the first to decide becomes the assigned body.")
    async def apply(self, gtin: GtinPath, data: JSONBody[ApplicationIn], db_session: DbSession,
                    principal: CurrentPrincipal) -> ApplicationOut:
        return await CertificationService(db_session).apply(gtin, data, principal)

    @post("/{gtin:str}/label-applications/{application_id:str}/withdraw",
          **access(roles=("merchant",), errors=(404, 409, 422)), status_code=HTTP_200_OK,
          summary="Withdraw a pending application (owner)")
    async def withdraw(self, gtin: GtinPath, application_id: IdPath, db_session: DbSession,
                       principal: CurrentPrincipal) -> ApplicationOut:
        if not is_uuid(application_id):
            raise NotFoundError(N_("Application {id} was not found."), reason="application_not_found",
                                id=application_id)
        return await CertificationService(db_session).withdraw(gtin, application_id.lower(), principal)

    @post("/{gtin:str}/self-declared-label", **access(roles=("merchant",), errors=(404, 409), body=True),
          status_code=HTTP_201_CREATED, summary="Declare a label without a verifier (shown as self_declared)",
          description="Graded like any label, but shown as `self_declared` and never earning credits.")
    async def self_declare(self, request: Request[Any, Any, Any], gtin: GtinPath, data: JSONBody[SelfDeclarationIn],
                           db_session: DbSession, principal: CurrentPrincipal) -> LabelOut:
        return await CertificationService(db_session, _cache(request)).self_declare(gtin, data, principal)


def _listing_cursor(key: str) -> bool:
    grade, _, ident = key.partition("|")
    return grade in (*GRADES, "Z") and is_uuid(ident)


class ListingController(Controller):
    tags = ["labels"]

    @post("/v1/merchant/listings", **access(roles=("merchant",), errors=(403, 409), body=True),
          status_code=HTTP_201_CREATED, summary="List a product in one of the merchant's stores")
    async def create(self, request: Request[Any, Any, Any], data: JSONBody[ListingIn], db_session: DbSession,
                     principal: CurrentPrincipal) -> ListingOut:
        return await PublicLabelService(db_session, _cache(request)).create_listing(data, principal)

    @delete("/v1/merchant/listings/{listing_id:str}", **access(roles=("merchant",), errors=(404, 422)),
            status_code=HTTP_204_NO_CONTENT, summary="Withdraw one of the merchant's listings")
    async def remove(self, request: Request[Any, Any, Any], listing_id: IdPath, db_session: DbSession,
                     principal: CurrentPrincipal) -> None:
        if not is_uuid(listing_id):
            raise NotFoundError(N_("Listing {id} was not found."), reason="listing_not_found", id=listing_id)
        await PublicLabelService(db_session, _cache(request)).delete_listing(listing_id.lower(), principal)

    @get("/v1/listings", **access(public=True, errors=(422,), responses=NOT_MODIFIED),
         summary="Low-carbon goods: listings with their product's label, best grade first")
    async def search(self, request: Request[Any, Any, Any], db_session: DbSession,
                     category: Annotated[str | None, QueryParameter(pattern=CATEGORY_PATTERN, max_length=100)] = None,
                     max_grade: Annotated[Literal["A", "B", "C", "D", "E"] | None, QueryParameter()] = None,
                     merchant: Annotated[str | None, QueryParameter(min_length=1, max_length=100)] = None,
                     cursor: Annotated[str | None, QueryParameter()] = None,
                     limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50) -> Response[ListingPage]:
        after = decode_cursor(cursor, _listing_cursor)
        key = None if after is None else tuple(after.split("|", 1))
        items, last = await PublicLabelService(db_session).search(
            category=category, max_grade=max_grade, merchant=merchant, after=key, limit=limit)  # type: ignore[arg-type]
        page = ListingPage(items=items, next_cursor=None if last is None else encode_cursor("|".join(last)))
        return cached_response(request, page, max_age=0, shared=True, cache_control=REVALIDATE)

"""HTTP routes of PACT v2.3 (``/auth/token``, discovery, ``/2/footprints``, ``/2/events``) and the
merchant routes that publish, share and import footprints."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.background_tasks import BackgroundTask
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from carbonpuhui.auth import Principal, access
from carbonpuhui.auth.tokens import PACT_ISSUER, mint_token
from carbonpuhui.deps import CurrentPrincipal, DbSession
from carbonpuhui.errors import BadRequestError, request_locale
from carbonpuhui.factors.schemas import FactorOut
from carbonpuhui.factors.service import to_out
from carbonpuhui.i18n import N_
from carbonpuhui.ids import is_uuid
from carbonpuhui.pact import events
from carbonpuhui.pact.bodies import (
    ImportFootprint,
    PublishedFootprint,
    PublishedPage,
    PublishFootprint,
    Sharing,
)
from carbonpuhui.pact.clients import TOKEN_TTL_SECONDS, TokenServer, basic_client_id
from carbonpuhui.pact.errors import EXCEPTION_HANDLERS, PactError, PactErrorBody
from carbonpuhui.pact.filtering import FilterError, parse_filter
from carbonpuhui.pact.models import PactClient
from carbonpuhui.pact.schemas import ProductFootprint
from carbonpuhui.pact.service import PactService
from carbonpuhui.paging import decode_cursor, encode_cursor
from carbonpuhui.throttle import spend_compute

log = logging.getLogger("carbonpuhui.pact")


class TokenResponse(msgspec.Struct, kw_only=True):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


class FootprintList(msgspec.Struct, kw_only=True):
    data: list[ProductFootprint]


class FootprintOne(msgspec.Struct, kw_only=True):
    data: ProductFootprint


class OAuthError(msgspec.Struct, kw_only=True, omit_defaults=True):
    error: str
    error_description: str | None = None


def _pact_errors(*statuses: int) -> dict[int, ResponseSpec]:
    return {s: ResponseSpec(data_container=PactErrorBody, media_type="application/json",
                            description=f"PACT error ({s})") for s in statuses}


PACT_ERRORS = _pact_errors(400, 401, 403, 404, 413, 422)
TOKEN_ERRORS = {
    # Over plain HTTP the token route refuses like every PACT route (PACT's error body), before OAuth runs.
    400: ResponseSpec(data_container=OAuthError | PactErrorBody, media_type="application/json",  # type: ignore[arg-type]
                      description="OAuth 2.0 error (RFC 6749 §5.2), or PACT's BadRequest when not over HTTPS"),
    401: ResponseSpec(data_container=OAuthError, media_type="application/json",
                      description="OAuth 2.0 error (RFC 6749 §5.2)"),
}
GtinPath = Annotated[str, PathParameter(min_length=1, max_length=20, description="GTIN-8, -12, -13 or -14")]
FootprintIdPath = Annotated[str, PathParameter(min_length=1, max_length=100)]


def require_https(request: Request[Any, Any, Any]) -> None:
    """PACT is HTTPS-only; behind a TLS-terminating proxy the scheme comes from a trusted hop."""
    if request.url.scheme != "https" and not request.app.state.settings.pact_allow_http:
        raise PactError("BadRequest", N_("PACT endpoints are served over HTTPS only."))


def _page_after(cursor: str | None) -> str | None:
    """The footprint id a page starts after; a bad cursor is PACT's BadRequest."""
    try:
        return decode_cursor(cursor, is_uuid)
    except BadRequestError:
        raise PactError("BadRequest", N_("The cursor is not valid.")) from None


async def _client_of(db_session: Any, principal: Principal) -> PactClient:
    """The registered, unrevoked client behind a PACT token (a revoked client's tokens stop at once)."""
    row = await db_session.get(PactClient, principal.client_id)
    if row is None or row.revoked_at is not None or row.org != principal.org:
        raise PactError("AccessDenied", N_("This client is not (or no longer) registered."))
    return row


@dataclass
class _TokenOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(required=True, content={
            "application/x-www-form-urlencoded": OpenAPIMediaType(schema=Schema(
                type=OpenAPIType.OBJECT, required=["grant_type"],
                properties={"grant_type": Schema(type=OpenAPIType.STRING, enum=["client_credentials"]),
                            "scope": Schema(type=OpenAPIType.STRING)}))})


class PactAuthController(Controller):
    tags = ["pact"]
    exception_handlers = EXCEPTION_HANDLERS

    @post("/auth/token", **access(public=True, throttled=False, body=True, responses=TOKEN_ERRORS), status_code=HTTP_200_OK,
          summary="OAuth 2.0 client credentials (client id and secret in HTTP Basic)",
          operation_class=_TokenOperation, before_request=require_https)
    async def token(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[TokenResponse]:
        form = dict(await request.form())
        authorization = request.headers.get("authorization")
        client_id = basic_client_id(authorization)
        row = await db_session.get(PactClient, client_id) if client_id and len(client_id) <= 64 else None
        settings = request.app.state.settings

        def mint(client: PactClient) -> str:
            issuer = PACT_ISSUER if settings.jwks_url else settings.token_issuer
            return mint_token(settings.key_path, issuer=issuer, audience=settings.token_audience,
                              sub=f"pact-client:{client.client_id}", roles=[], org=client.org,
                              ttl=TOKEN_TTL_SECONDS, client_id=client.client_id, scope="pact")

        server = TokenServer(row, mint)
        # Authlib needs an https URI; require_https has already applied the transport policy.
        uri = "https://" + str(request.url).split("://", 1)[1]
        status, body, headers = server.respond(
            uri=uri, authorization=authorization if client_id else None,
            form={k: str(v) for k, v in form.items()})
        headers.update({"Cache-Control": "no-store", "Pragma": "no-cache"})
        return Response(body, status_code=status, headers=headers, media_type="application/json")

    @get("/.well-known/openid-configuration", **access(public=True, responses=_pact_errors(400)), summary="Discovery: the token endpoint",
         before_request=require_https)
    async def discovery(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {
            "issuer": request.app.state.settings.token_issuer,
            "token_endpoint": f"{base}/auth/token",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "scopes_supported": ["pact"],
        }


class PactApiController(Controller):
    path = "/2"
    tags = ["pact"]
    exception_handlers = EXCEPTION_HANDLERS
    before_request = require_https

    @get("/footprints", **access(pact_client=True, errors=(404,), responses=PACT_ERRORS), summary="ListFootprints (PACT v2.3)",
         description="Pages are announced in an RFC 8288 `Link: <...>; rel=\"next\"` header. `$filter` takes "
                     "the PACT v2 OData subset (created, updated, productCategoryCpc, pcf/geographyCountry, "
                     "pcf/referencePeriodStart/End with eq/lt/le/gt/ge; productIds/any, companyIds/any; and).")
    async def list_footprints(self, request: Request[Any, Any, Any], db_session: DbSession,
                              principal: CurrentPrincipal,
                              limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
                              cursor: Annotated[str | None, QueryParameter(max_length=100)] = None,
                              ) -> Response[FootprintList]:
        text = request.query_params.get("$filter")
        try:
            keep = parse_filter(text) if text is not None else None
        except FilterError as exc:
            raise PactError("BadRequest", N_("The $filter cannot be read: {problem}"), problem=str(exc)) from None
        client = await _client_of(db_session, principal)
        service, after, rows = PactService(db_session), _page_after(cursor), []
        # Filtered pages scan the client's visible footprints in id order until a page is full.
        while len(rows) <= limit:
            batch = await service.visible(client.org, after=after, limit=limit + 1 if keep is None else 500)
            rows += [row for row in batch if keep is None or keep(row.document)]
            if keep is None or len(batch) < 500:
                break
            after = batch[-1].id
        headers = {"Cache-Control": "private, no-store"}
        if len(rows) > limit:
            rows = rows[:limit]
            query = {"limit": str(limit), "cursor": encode_cursor(rows[-1].id)} | ({"$filter": text} if text else {})
            headers["Link"] = f'<{request.url.with_replacements(query=urlencode(query))}>; rel="next"'
        return Response({"data": [row.document for row in rows]}, headers=headers)

    @get("/footprints/{footprint_id:str}", **access(pact_client=True, errors=(404,), responses=PACT_ERRORS),
         summary="GetFootprint (PACT v2.3)")
    async def get_footprint(self, footprint_id: FootprintIdPath, db_session: DbSession,
                            principal: CurrentPrincipal) -> Response[FootprintOne]:
        client = await _client_of(db_session, principal)
        row = await PactService(db_session).get_visible(footprint_id, client.org)
        if row is None:
            raise PactError("NoSuchFootprint", N_("Footprint {id} was not found."), id=footprint_id)
        return Response({"data": row.document}, headers={"Cache-Control": "private, no-store"})

    @post("/events", **access(pact_client=True, body=True, responses=PACT_ERRORS), status_code=HTTP_200_OK,
          summary="Action Events (PACT v2.3, CloudEvents structured mode)",
          description="ProductFootprintRequest.Created is answered asynchronously with a Fulfilled or "
                      "Rejected event at the client's registered PACT API.")
    async def events(self, request: Request[Any, Any, Any], db_session: DbSession,
                     principal: CurrentPrincipal) -> Response[bytes]:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in ("application/cloudevents+json", "application/json"):
            raise PactError("BadRequest", N_("Send application/cloudevents+json."))
        client = await _client_of(db_session, principal)
        answer = await events.receive(PactService(db_session), client, await request.body())
        task = None
        if answer is not None:
            task = BackgroundTask(events.deliver, request.app.state, answer)
        return Response(b"", status_code=200, media_type="text/plain", background=task)  # PACT: empty body


class MerchantPactController(Controller):
    tags = ["pact"]

    @post("/v1/merchant/products/{gtin:str}/pact-footprints",
          **access(roles=("merchant",), errors=(404, 409, 429), body=True), before_request=spend_compute,
          status_code=HTTP_201_CREATED, summary="Publish the product's footprint as a PACT ProductFootprint")
    async def publish(self, request: Request[Any, Any, Any], gtin: GtinPath, data: JSONBody[PublishFootprint],
                      db_session: DbSession, principal: CurrentPrincipal) -> PublishedFootprint:
        service = PactService(db_session)
        return await service.out(await service.publish(gtin, data, principal, locale=request_locale(request)))

    @get("/v1/merchant/pact-footprints", **access(roles=("merchant",), errors=(422,)), summary="The organisation's published footprints")
    async def list_own(self, db_session: DbSession, principal: CurrentPrincipal,
                       cursor: Annotated[str | None, QueryParameter(max_length=100)] = None,
                       limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50) -> PublishedPage:
        service = PactService(db_session)
        rows = await service.list_own(principal, after=decode_cursor(cursor, is_uuid), limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return PublishedPage(items=[await service.out(r) for r in rows],
                             next_cursor=encode_cursor(rows[-1].id) if more and rows else None)

    @put("/v1/merchant/pact-footprints/{footprint_id:str}/sharing", **access(roles=("merchant",), errors=(404,), body=True),
         status_code=HTTP_200_OK, summary="Who may read a published footprint: everyone, or named organisations")
    async def sharing(self, footprint_id: FootprintIdPath, data: JSONBody[Sharing], db_session: DbSession,
                      principal: CurrentPrincipal) -> PublishedFootprint:
        service = PactService(db_session)
        return await service.out(await service.set_sharing(footprint_id, data, principal))

    @post("/v1/merchant/pact-imports", **access(roles=("merchant",), errors=(403, 409), body=True),
          status_code=HTTP_201_CREATED, summary="A supplier's ProductFootprint becomes an enterprise factor")
    async def import_footprint(self, request: Request[Any, Any, Any], data: JSONBody[ImportFootprint],
                               db_session: DbSession, principal: CurrentPrincipal) -> FactorOut:
        row = await PactService(db_session).import_footprint(data, principal, request.app.state.settings)
        return to_out(row)


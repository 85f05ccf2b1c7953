"""Benchmarks (admins), certification (verifiers) and labels (revocation, history)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK

from carbonpuhui.auth import access
from carbonpuhui.deps import CurrentPrincipal, DbSession
from carbonpuhui.errors import NotFoundError
from carbonpuhui.factors.schemas import CATEGORY_PATTERN, Names
from carbonpuhui.i18n import N_
from carbonpuhui.ids import is_uuid
from carbonpuhui.labels.cache import PublicCache
from carbonpuhui.labels.schemas import (
    ApplicationPage,
    BenchmarkIn,
    BenchmarkOut,
    BenchmarkPage,
    DecisionIn,
    DecisionOut,
    LabelHistory,
    LabelOut,
    QueueItem,
    RevokeIn,
)
from carbonpuhui.labels.service import BenchmarkService, CertificationService
from carbonpuhui.paging import decode_cursor, decode_time_cursor, encode_cursor, encode_time_cursor
from carbonpuhui.throttle import spend_compute

CategoryPath = Annotated[str, PathParameter(pattern=CATEGORY_PATTERN, max_length=100)]
IdPath = Annotated[str, PathParameter(min_length=1, max_length=64)]


def public_cache(request: Request) -> PublicCache:  # type: ignore[type-arg]
    return PublicCache(request.app.state.stores)


class BenchmarkController(Controller):
    path = "/v1/benchmarks"
    tags = ["labels"]

    @put("/{category:str}", **access(roles=("admin",), errors=(409, 422), body=True), status_code=HTTP_200_OK,
         summary="Set a category's benchmark; every current label of the category is regraded at once",
         description="`fixed`: thresholds (upper bounds of A-D, inclusive) and baseline from an industry "
                     "association. `percentile`: computed now from the verified labels in force in the "
                     "category (at least 10), by linear interpolation (NumPy's default); the baseline is P50.")
    async def put_benchmark(self, request: Request, category: CategoryPath, data: JSONBody[BenchmarkIn],  # type: ignore[type-arg]
                            db_session: DbSession, principal: CurrentPrincipal) -> BenchmarkOut:
        return await BenchmarkService(db_session, public_cache(request)).put(category, data, principal)

    @get("/{category:str}", **access(public=True, errors=(404, 422)), summary="A category's benchmark")
    async def get_benchmark(self, category: CategoryPath, db_session: DbSession) -> BenchmarkOut:
        service = BenchmarkService(db_session)
        return service.out(await service.get(category))

    @get("", **access(public=True, errors=(422,)), summary="All benchmarks")
    async def list_benchmarks(self, db_session: DbSession, cursor: Annotated[str | None, QueryParameter()] = None,
                              limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50) -> BenchmarkPage:
        service = BenchmarkService(db_session)
        rows = list(await service.repo.benchmarks(after=decode_cursor(cursor), limit=limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        return BenchmarkPage(items=[service.out(b) for b in rows],
                             next_cursor=encode_cursor(rows[-1].category) if more else None)


class CertificationController(Controller):
    path = "/v1/certification/applications"
    tags = ["labels"]

    @get("", **access(roles=("verifier",), errors=(403, 422, 429)), before_request=spend_compute,
         summary="Applications for the caller's certification body, with inventory and footprint",
         description="Applications naming the body, and open applications (naming none) while pending: "
                     "an applicant who names no body shares the inventory with every certification body "
                     "until one decides.")
    async def queue(self, db_session: DbSession, principal: CurrentPrincipal,
                    status: Annotated[Literal["pending", "approved", "rejected"] | None, QueryParameter()] = "pending",
                    cursor: Annotated[str | None, QueryParameter()] = None,
                    limit: Annotated[int, QueryParameter(ge=1, le=20)] = 10) -> ApplicationPage:
        key = decode_time_cursor(cursor, is_uuid)
        service = CertificationService(db_session)
        rows = await service.queue(principal, status, after=key, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        items = [QueueItem(**msgspec.structs.asdict(service.application_out(app)),
                           names=msgspec.convert(product.names, Names), category=product.category,
                           declared_unit=product.declared_unit, inventory=inventory, footprint=footprint)
                 for app, product, inventory, footprint in rows]
        last = rows[-1][0] if rows else None
        next_cursor = encode_time_cursor(last.created_at, last.id) if more and last else None
        return ApplicationPage(items=items, next_cursor=next_cursor)

    @post("/{application_id:str}/decision", **access(roles=("verifier",), errors=(403, 404, 409), body=True),
          status_code=HTTP_200_OK, summary="Approve (issuing a verified label) or reject an application")
    async def decide(self, request: Request, application_id: IdPath, data: JSONBody[DecisionIn],  # type: ignore[type-arg]
                     db_session: DbSession, principal: CurrentPrincipal) -> DecisionOut:
        return await CertificationService(db_session, public_cache(request)).decide(
            _uuid(application_id), data, principal)


def _uuid(value: str) -> str:
    """Ids we issue are UUIDs: anything else cannot name one (and never reaches the database)."""
    if not is_uuid(value):
        raise NotFoundError(N_("No resource exists at this address."))
    return value.lower()


class LabelController(Controller):
    path = "/v1/labels"
    tags = ["labels"]

    @get("/{label_id:str}", **access(public=True, errors=(404, 422)), summary="A label, as anyone may see it")
    async def get_label(self, label_id: IdPath, db_session: DbSession) -> LabelOut:
        return await CertificationService(db_session).get(_uuid(label_id))

    @post("/{label_id:str}/revoke", **access(roles=("verifier", "admin", "merchant"), errors=(403, 404, 409),
                                             body=True),
          status_code=HTTP_200_OK, summary="Revoke a label (issuing body's verifier, admin; owner if self-declared)")
    async def revoke(self, request: Request, label_id: IdPath, data: JSONBody[RevokeIn],  # type: ignore[type-arg]
                     db_session: DbSession, principal: CurrentPrincipal) -> LabelOut:
        return await CertificationService(db_session, public_cache(request)).revoke(
            _uuid(label_id), data, principal)

    @get("/{label_id:str}/history", **access(roles=("verifier", "admin", "merchant"), errors=(404, 422)),
         summary="Every transition of the label and its application: who, when, why")
    async def history(self, label_id: IdPath, db_session: DbSession, principal: CurrentPrincipal) -> LabelHistory:
        return await CertificationService(db_session).history(_uuid(label_id), principal)

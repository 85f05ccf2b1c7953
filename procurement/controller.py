"""HTTP routes for tenders, sealed bids, evaluations and their reports (政府采购)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from carbonpuhui.auth import access
from carbonpuhui.deps import CurrentPrincipal, DbSession
from carbonpuhui.errors import request_locale
from carbonpuhui.paging import decode_cursor, decode_time_cursor, encode_cursor, encode_time_cursor
from carbonpuhui.throttle import spend_compute
from procurement import report
from procurement.schemas import (
    AwardIn,
    BidIn,
    BidOut,
    BidPage,
    BidReceipt,
    EvaluationIn,
    EvaluationOut,
    TenderIn,
    TenderOut,
    TenderPage,
)
from procurement.service import TenderService, in_calendar

TenderPath = Annotated[str, PathParameter(min_length=1, max_length=36, description="The tender's id")]
BidPath = Annotated[str, PathParameter(min_length=1, max_length=36, description="The bid's id")]
Limit = Annotated[int, QueryParameter(ge=1, le=500)]
PRIVATE = {"Cache-Control": "private, no-store"}
RECEIPT_RESPONSES = {
    HTTP_201_CREATED: ResponseSpec(data_container=BidReceipt, description="The bid, received: its id and receipt"),
    HTTP_200_OK: ResponseSpec(data_container=BidReceipt, description="The supplier's earlier bid, replaced"),
}
CSV_RESPONSE = {HTTP_200_OK: ResponseSpec(data_container=str, media_type="text/csv",
                                          description="One row per bid: scores, rank, rank acceptability")}
SVG_RESPONSE = {HTTP_200_OK: ResponseSpec(data_container=str, media_type="image/svg+xml",
                                          description="A chart of rank acceptability per bid")}


class TenderController(Controller):
    path = "/v1/tenders"
    tags = ["procurement"]

    @post("", **access(roles=("officer",), errors=(403, 422), body=True), status_code=HTTP_201_CREATED,
          summary="Call for bids, for the officer's agency (the token's org)",
          description="Weights sum to exactly 1. `ratio_to_best`: best/value; `linear`: min-max; "
                      "`benchmark`: the category's thresholds (snapshotted now); `monetised`: price + shadow "
                      "carbon price x footprint x quantity, scored as a price. Price is always scored as "
                      "best price / bid price.")
    async def create(self, data: JSONBody[TenderIn], db_session: DbSession, principal: CurrentPrincipal) -> TenderOut:
        service = TenderService(db_session)
        return await service.out(await service.create(data, principal))

    @get("", **access(public=True, errors=(400, 422)), summary="Tenders by deadline (public)")
    async def list_tenders(self, db_session: DbSession,
                           agency: Annotated[str | None, QueryParameter(min_length=1, max_length=100)] = None,
                           category: Annotated[str | None, QueryParameter(min_length=1, max_length=100)] = None,
                           status: Annotated[Literal["open", "closed"] | None, QueryParameter()] = None,
                           cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
                           limit: Limit = 50) -> TenderPage:
        service = TenderService(db_session)
        # Deadlines we issue are also dates in China, where label validity is judged.
        after = decode_time_cursor(cursor, bool, in_calendar)
        rows = await service.tenders(after=after, limit=limit + 1, agency=agency, category=category, status=status)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_time_cursor(rows[-1].deadline, rows[-1].id) if more else None
        return TenderPage(items=[await service.out(r) for r in rows], next_cursor=next_cursor)

    @get("/{tender_id:str}", **access(public=True, errors=(404, 422)),
         summary="A tender's public summary: its rules, never a bid's content",
         description="`bid_count` appears once the deadline has passed.")
    async def get_tender(self, tender_id: TenderPath, db_session: DbSession) -> TenderOut:
        service = TenderService(db_session)
        return await service.out(await service.tender(tender_id))

    @post("/{tender_id:str}/bids", **access(roles=("merchant",), errors=(403, 404, 409), body=True,
                                            responses=RECEIPT_RESPONSES), status_code=HTTP_201_CREATED,
          summary="Bid as a supplier (the token's org); again before the deadline to replace the bid",
          description="The receipt is the SHA-256 of `canonical`, the submitted content in canonical JSON "
                      "(sorted keys, no spaces, decimals normalised). After the deadline: 409.")
    async def submit(self, tender_id: TenderPath, data: JSONBody[BidIn], db_session: DbSession,
                     principal: CurrentPrincipal) -> Response[BidReceipt]:
        service = TenderService(db_session)
        bid, replaced = await service.submit(tender_id, data, principal)
        return Response(service.receipt(bid, replaced), status_code=HTTP_200_OK if replaced else HTTP_201_CREATED,
                        headers=PRIVATE)

    @get("/{tender_id:str}/bids", **access(roles=("officer", "merchant"), errors=(403, 404, 409, 422)),
         summary="Bids: all of them for the agency's officers after the deadline; a supplier its own")
    async def list_bids(self, tender_id: TenderPath, db_session: DbSession, principal: CurrentPrincipal,
                        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
                        limit: Limit = 100) -> Response[BidPage]:
        service = TenderService(db_session)
        rows = await service.readable_bids(tender_id, principal, after=decode_cursor(cursor), limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        page = BidPage(items=[service.bid_out(r) for r in rows],
                       next_cursor=encode_cursor(rows[-1].id) if more else None)
        return Response(page, headers=PRIVATE)

    @get("/{tender_id:str}/bids/{bid_id:str}", **access(roles=("officer", "merchant"), errors=(404, 422)),
         summary="One bid: to its supplier, or to the agency's officers after the deadline")
    async def get_bid(self, tender_id: TenderPath, bid_id: BidPath, db_session: DbSession,
                      principal: CurrentPrincipal) -> Response[BidOut]:
        service = TenderService(db_session)
        return Response(service.bid_out(await service.readable_bid(tender_id, bid_id, principal)), headers=PRIVATE)

    @post("/{tender_id:str}/evaluation", **access(roles=("officer",), errors=(403, 404, 409, 429), body=True),
          before_request=spend_compute, status_code=HTTP_200_OK,
          summary="Rank the bids (the agency's officers, after the deadline), with the SMAA-2 uncertainty analysis",
          description="Same bids, same samples and same seed give the same answer. The reports show the "
                      "latest evaluation.")
    async def evaluate(self, tender_id: TenderPath, data: JSONBody[EvaluationIn], db_session: DbSession,
                       principal: CurrentPrincipal) -> Response[EvaluationOut]:
        result = await TenderService(db_session).evaluate(tender_id, data, principal)
        return Response(result, headers=PRIVATE)

    @post("/{tender_id:str}/award", **access(roles=("officer",), errors=(403, 404, 409), body=True),
          status_code=HTTP_200_OK,
          summary="Award the tender to an eligible bid (the agency's officers, after the deadline)",
          description="The bid must be one the evaluation would score (eligible). Awarding the same bid "
                      "again changes nothing (200); another bid once awarded is a 409 `already_awarded`. "
                      "The public tender then shows the award: the winning bid's id, supplier, price and "
                      "footprint, as a result notice (中标公告) publishes them; the other bids stay sealed.")
    async def award(self, tender_id: TenderPath, data: JSONBody[AwardIn], db_session: DbSession,
                    principal: CurrentPrincipal) -> TenderOut:
        service = TenderService(db_session)
        return await service.out(await service.award(tender_id, data, principal))

    @get("/{tender_id:str}/report.csv", **access(roles=("officer",), errors=(403, 404, 409, 422),
                                      responses=CSV_RESPONSE),
         media_type="text/csv", summary="The latest evaluation as CSV (the agency's officers)")
    async def report_csv(self, tender_id: TenderPath, db_session: DbSession,
                         principal: CurrentPrincipal) -> Response[str]:
        tender, result = await TenderService(db_session).latest_evaluation(tender_id, principal)
        return Response(report.to_csv(result), media_type="text/csv", headers={
            **PRIVATE, "Content-Disposition": f'attachment; filename="tender-{tender.id}.csv"'})

    @get("/{tender_id:str}/report.svg", **access(roles=("officer",), errors=(403, 404, 409, 422),
                                      responses=SVG_RESPONSE),
         media_type="image/svg+xml", summary="The latest evaluation's rank acceptability as a chart (SVG)")
    async def report_svg(self, request: Request[Any, Any, Any], tender_id: TenderPath, db_session: DbSession,
                         principal: CurrentPrincipal,
                         lang: Annotated[str | None, QueryParameter(max_length=35)] = None) -> Response[str]:
        locale = request_locale(request)
        tender, result = await TenderService(db_session).latest_evaluation(tender_id, principal)
        return Response(report.to_svg(result, title=tender.title, locale=locale), media_type="image/svg+xml",
                        headers={**PRIVATE, "Content-Language": locale, "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})

"""Carbon-inclusive credits over HTTP: merchants' receipt keys and rewards, consumers' claims,
wallet, redemptions, leaderboard, and their personal data (export, erasure).

Credit-moving POSTs take an ``Idempotency-Key``; their responses are personal, so never cached.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from carbonpuhui.auth import access
from carbonpuhui.credits.idempotency import HEADER, idempotent
from carbonpuhui.credits.leaderboard import Leaderboard
from carbonpuhui.credits.schemas import (
    EntryPage,
    LeaderboardOut,
    Period,
    PurchaseIn,
    PurchaseOut,
    ReceiptKeyIn,
    ReceiptKeyOut,
    ReceiptKeyPage,
    RedemptionIn,
    RedemptionOut,
    RewardIn,
    RewardOut,
    RewardPage,
    TripIn,
    TripOut,
    WalletOut,
)
from carbonpuhui.credits.service import (
    ClaimService,
    KeyService,
    RewardService,
    WalletService,
)
from carbonpuhui.deps import CurrentPrincipal, DbSession
from carbonpuhui.ids import is_uuid
from carbonpuhui.paging import decode_cursor, decode_time_cursor, encode_cursor, encode_time_cursor

PRIVATE = {"Cache-Control": "private, no-store"}
Limit = Annotated[int, QueryParameter(ge=1, le=500)]
Cursor = Annotated[str | None, QueryParameter(max_length=200)]
IdempotencyKey = Annotated[str | None, HeaderParameter(
    name=HEADER, required=False,
    description="Any unique string (1-255 visible ASCII). A retry with the same key and body gets the first "
                "response back (header Idempotent-Replayed: true); the same key with another body is a 422.")]


def _leaderboard(request: Request[Any, Any, Any]) -> Leaderboard:
    return request.app.state.leaderboard


def _replay(status: int, body: type) -> dict[int, ResponseSpec]:
    return {status: ResponseSpec(data_container=body, description="Done; or, under a reused Idempotency-Key, "
                                                                   "the first response again")}


class ReceiptKeyController(Controller):
    path = "/v1/merchant/receipt-keys"
    tags = ["credits"]

    @post("", **access(roles=("merchant",), errors=(403, 409), body=True), status_code=HTTP_201_CREATED,
          summary="Register a point-of-sale's (or a transit operator's) public key",
          description="An OKP Ed25519 or EC P-256 public JWK. Its `kid` (the RFC 7638 thumbprint) goes in the "
                      "header of every receipt or trip attestation it signs; the JWS `iss` must be your org.")
    async def register(self, request: Request[Any, Any, Any], data: JSONBody[ReceiptKeyIn], db_session: DbSession,
                       principal: CurrentPrincipal) -> ReceiptKeyOut:
        return await KeyService(db_session, request.app.state.settings).register(data.jwk, principal)

    @get("", **access(roles=("merchant",), errors=(403, 422)), summary="Your organisation's keys, oldest first")
    async def list_keys(self, request: Request[Any, Any, Any], db_session: DbSession, principal: CurrentPrincipal,
                        cursor: Cursor = None, limit: Limit = 100) -> ReceiptKeyPage:
        service = KeyService(db_session, request.app.state.settings)
        after = decode_time_cursor(cursor, lambda kid: 0 < len(kid) <= 64)
        rows = await service.keys(principal, after=after, limit=limit + 1)
        more, rows = len(rows) > limit, rows[:limit]
        return ReceiptKeyPage(items=[service.out(r) for r in rows],
                              next_cursor=encode_time_cursor(rows[-1].created_at, rows[-1].kid) if more else None)

    @delete("/{kid:str}", **access(roles=("merchant",), errors=(403, 404, 422)), status_code=HTTP_204_NO_CONTENT,
            summary="Revoke a key: receipts and attestations it signed are refused from now on")
    async def revoke(self, request: Request[Any, Any, Any], kid: Annotated[str, PathParameter(
            min_length=1, max_length=64)], db_session: DbSession, principal: CurrentPrincipal) -> None:
        await KeyService(db_session, request.app.state.settings).revoke(kid, principal)


class ClaimController(Controller):
    path = "/v1/credits"
    tags = ["credits"]

    @post("/purchases", **access(roles=("consumer",), errors=(409,), body=True,
                                   responses=_replay(HTTP_201_CREATED, PurchaseOut)), status_code=HTTP_201_CREATED,
          summary="Claim credits for a signed purchase receipt",
          description="Each item with a verified label in force earns max(0, category baseline - label) x "
                      "declared units per item x qty, in grams (rounded down). A receipt earns once, ever: "
                      "claimed again (by anyone) it is a 409 `receipt_already_claimed` naming the first "
                      "`claim_id`. Refusals (422 `reason`): malformed_jws, unsupported_algorithm, unknown_key, "
                      "key_revoked, bad_signature, issuer_mismatch, invalid_receipt, receipt_too_old, "
                      "receipt_from_future.")
    async def purchase(self, request: Request[Any, Any, Any], data: JSONBody[PurchaseIn], db_session: DbSession,
                       principal: CurrentPrincipal, idempotency_key: IdempotencyKey = None) -> Response[PurchaseOut]:
        service = ClaimService(db_session, request.app.state.settings, _leaderboard(request))
        response = await idempotent(db_session, owner=principal.sub, route="purchases", key=idempotency_key,
                                    data=data, status=HTTP_201_CREATED,
                                    run=lambda: service.purchase(principal, data))
        response.headers.update(PRIVATE)
        return response

    @post("/trips", **access(roles=("consumer",), body=True, responses=_replay(HTTP_201_CREATED, TripOut)),
          status_code=HTTP_201_CREATED,
          summary="Claim credits for a green trip (walk, bike, bus, metro, rail)",
          description="credit = reduction per passenger-km of the mode x distance, from the versioned "
                      "methodology, up to the daily caps (`capped`). Unattested trips earn only for walking and "
                      "cycling. Refusals (422 `reason`): invalid_trip_times, trip_in_future, trip_too_old, "
                      "trip_too_short, trip_too_long, implausible_speed, trip_overlap, attestation_reused, "
                      "attestation_subject_mismatch, attestation_mismatch and the JWS reasons of purchases. "
                      "No location is stored: mode, distance and times only.")
    async def trip(self, request: Request[Any, Any, Any], data: JSONBody[TripIn], db_session: DbSession,
                   principal: CurrentPrincipal, idempotency_key: IdempotencyKey = None) -> Response[TripOut]:
        service = ClaimService(db_session, request.app.state.settings, _leaderboard(request))
        response = await idempotent(db_session, owner=principal.sub, route="trips", key=idempotency_key, data=data,
                                    status=HTTP_201_CREATED, run=lambda: service.trip(principal, data))
        response.headers.update(PRIVATE)
        return response


class WalletController(Controller):
    path = "/v1/wallet"
    tags = ["credits"]

    @get("", **access(roles=("consumer",)), summary="Your balance, what you earned, redeemed and what expires soon")
    async def wallet(self, request: Request[Any, Any, Any], db_session: DbSession,
                     principal: CurrentPrincipal) -> Response[WalletOut]:
        out = await WalletService(db_session, request.app.state.settings).wallet(principal)
        return Response(out, headers=PRIVATE)

    @get("/entries", **access(roles=("consumer",), errors=(422,)), summary="Your ledger entries, newest first")
    async def entries(self, request: Request[Any, Any, Any], db_session: DbSession, principal: CurrentPrincipal,
                      cursor: Cursor = None, limit: Limit = 50) -> Response[EntryPage]:
        before = decode_cursor(cursor, lambda key: key.isascii() and key.isdigit() and len(key) < 19)
        rows = await WalletService(db_session, request.app.state.settings).entries(
            principal, before=None if before is None else int(before), limit=limit + 1)
        more, rows = len(rows) > limit, rows[:limit]
        return Response(EntryPage(items=rows, next_cursor=encode_cursor(str(rows[-1].id)) if more else None),
                        headers=PRIVATE)

    @post("/redemptions", **access(roles=("consumer",), errors=(404, 409), body=True,
                                      responses=_replay(HTTP_201_CREATED, RedemptionOut)), status_code=HTTP_201_CREATED,
          summary="Spend credits on a reward",
          description="409 `insufficient_balance` or `out_of_stock`. Credits that have lapsed cannot pay.")
    async def redeem(self, request: Request[Any, Any, Any], data: JSONBody[RedemptionIn], db_session: DbSession,
                     principal: CurrentPrincipal, idempotency_key: IdempotencyKey = None) -> Response[RedemptionOut]:
        service = RewardService(db_session, request.app.state.settings)
        response = await idempotent(db_session, owner=principal.sub, route="redemptions", key=idempotency_key,
                                    data=data, status=HTTP_201_CREATED,
                                    run=lambda: service.redeem(principal, data.reward_id))
        response.headers.update(PRIVATE)
        return response


class RewardController(Controller):
    tags = ["credits"]

    @post("/v1/merchant/rewards", **access(roles=("merchant",), errors=(403,), body=True),
          status_code=HTTP_201_CREATED, summary="Offer a reward for credits (your organisation's)")
    async def create(self, request: Request[Any, Any, Any], data: JSONBody[RewardIn], db_session: DbSession,
                     principal: CurrentPrincipal) -> RewardOut:
        return await RewardService(db_session, request.app.state.settings).create(data, principal)

    @get("/v1/rewards", **access(public=True, errors=(422,)), summary="Rewards on offer, newest first")
    async def rewards(self, request: Request[Any, Any, Any], db_session: DbSession,
                      merchant: Annotated[str | None, QueryParameter(min_length=1, max_length=100)] = None,
                      available: Annotated[bool, QueryParameter(description="Only those in stock")] = False,
                      cursor: Cursor = None, limit: Limit = 50) -> RewardPage:
        service = RewardService(db_session, request.app.state.settings)
        after = decode_time_cursor(cursor, is_uuid)
        rows = await service.rewards(merchant=merchant, available=available, after=after, limit=limit + 1)
        more, rows = len(rows) > limit, rows[:limit]
        return RewardPage(items=[service.out(r) for r in rows],
                          next_cursor=encode_time_cursor(rows[-1].created_at, rows[-1].id) if more else None)


class LeaderboardController(Controller):
    path = "/v1/leaderboard"
    tags = ["credits"]

    @get("", **access(roles=("consumer",), errors=(422,)),
         summary="This week's or month's top earners (China time), and you",
         description="Names are pseudonyms. `me` is null until you earn in the period.")
    async def board(self, request: Request[Any, Any, Any], db_session: DbSession, principal: CurrentPrincipal,
                    period: Annotated[Period, QueryParameter()] = "week") -> Response[LeaderboardOut]:
        service = WalletService(db_session, request.app.state.settings)
        account = await service.ledger.find("person", principal.sub)
        out = await _leaderboard(request).board(db_session, period, None if account is None else account.id)
        return Response(out, headers=PRIVATE)

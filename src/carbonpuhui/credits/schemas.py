"""Request and response bodies for keys, claims, the wallet, rewards and the leaderboard (API.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

Mode = Literal["walk", "bike", "bus", "metro", "rail"]
Period = Literal["week", "month"]
Grams = Annotated[int, Meta(ge=0, description="Grams CO2e")]
CompactJws = Annotated[str, Meta(min_length=1, max_length=16384, description="A compact JWS")]
ItemReason = Literal["unknown_product", "no_label", "label_not_verified", "label_not_in_force", "no_benchmark",
                     "unit_mismatch", "not_below_baseline", "credited_below_one_gram"]


class ReceiptKeyIn(Struct, kw_only=True, forbid_unknown_fields=True):
    jwk: Annotated[dict[str, Any], Meta(description="A public JWK: OKP Ed25519 or EC P-256")]


class ReceiptKeyOut(Struct, kw_only=True):
    kid: Annotated[str, Meta(description="Put this in the JWS header of every receipt (RFC 7638 thumbprint)")]
    org: str
    kty: str
    jwk: dict[str, str]
    created_at: datetime
    revoked_at: datetime | None


class ReceiptKeyPage(Struct, kw_only=True):
    items: list[ReceiptKeyOut]
    next_cursor: str | None


class PurchaseIn(Struct, kw_only=True, forbid_unknown_fields=True):
    receipt: CompactJws


class PurchaseItemOut(Struct, kw_only=True):
    gtin: str
    qty: int
    credited_g: int
    reason: Annotated[ItemReason | None, Meta(description="Why the item earned nothing (null: it earned)")]


class PurchaseOut(Struct, kw_only=True):
    claim_id: str
    credited_g: int
    items: list[PurchaseItemOut]
    balance_g: int


class TripIn(Struct, kw_only=True, forbid_unknown_fields=True):
    mode: Mode
    distance_km: Annotated[Decimal, Meta(description="Passenger-km travelled (more than 0)")]
    started_at: datetime
    ended_at: datetime
    attestation: Annotated[CompactJws | None, Meta(description="A transit operator's signed attestation")] = None


class TripOut(Struct, kw_only=True):
    claim_id: str
    credited_g: int
    capped: Annotated[bool, Meta(description="The daily cap cut the credit short")]
    methodology_version: str
    balance_g: int
    reason: Annotated[Literal["attestation_required", "daily_cap_reached"] | None,
                      Meta(description="Why the trip earned nothing (null: it earned)")] = None


class WalletOut(Struct, kw_only=True):
    balance_g: int
    earned_g: int
    redeemed_g: int
    expiring_30d_g: int
    expired_g: int


class EntryOut(Struct, kw_only=True):
    id: int
    transfer_id: str
    kind: Literal["purchase", "trip", "redemption", "expiry", "erasure"]
    amount_g: Annotated[int, Meta(description="Signed grams: credits are positive, debits negative")]
    created_at: datetime
    expires_at: datetime | None
    reference: str | None


class EntryPage(Struct, kw_only=True):
    items: list[EntryOut]
    next_cursor: str | None


class RewardIn(Struct, kw_only=True, forbid_unknown_fields=True):
    title: Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
    cost_g: Annotated[int, Meta(ge=1, le=10**12)]
    stock: Annotated[int, Meta(ge=0, le=10**7)]


class RewardOut(Struct, kw_only=True):
    id: str
    merchant: str
    title: str
    cost_g: int
    stock: int
    redeemed: int
    created_at: datetime


class RewardPage(Struct, kw_only=True):
    items: list[RewardOut]
    next_cursor: str | None


class RedemptionIn(Struct, kw_only=True, forbid_unknown_fields=True):
    reward_id: Annotated[str, Meta(min_length=1, max_length=36)]


class RedemptionOut(Struct, kw_only=True):
    id: str
    reward_id: str
    title: str
    cost_g: int
    balance_g: int
    redeemed_at: datetime


class RankOut(Struct, kw_only=True):
    rank: int
    display_name: str
    credited_g: int


class MyRank(Struct, kw_only=True):
    rank: int
    credited_g: int


class LeaderboardOut(Struct, kw_only=True):
    period: Period
    starts_at: datetime
    items: list[RankOut]
    me: MyRank | None

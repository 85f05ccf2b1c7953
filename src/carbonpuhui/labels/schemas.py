"""Request and response bodies for benchmarks, certification, labels and listings (names per API.md)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import Meta, Struct, field

from carbonpuhui.factors.schemas import Names
from carbonpuhui.footprints.schemas import GTIN, DeclaredUnit, FactorRef, Footprint, InventoryOut, Org

Grade = Literal["A", "B", "C", "D", "E"]
GRADES: tuple[Grade, ...] = ("A", "B", "C", "D", "E")
Scheme = Literal["verified", "self_declared"]
LabelStatus = Literal["active", "revoked", "expired"]
ApplicationStatus = Literal["pending", "approved", "rejected", "withdrawn"]
Text = Annotated[str, Meta(min_length=1, max_length=2000)]
Percentile = Annotated[int, Meta(ge=1, le=99)]


class BenchmarkIn(Struct, kw_only=True, forbid_unknown_fields=True):
    method: Literal["fixed", "percentile"]
    thresholds: Annotated[list[Decimal], Meta(min_length=4, max_length=4,
                                              description="Upper bounds of A, B, C, D (fixed only)")] | None = None
    baseline: Annotated[Decimal, Meta(description="The category baseline (fixed only)")] | None = None
    percentiles: Annotated[list[Percentile], Meta(min_length=4, max_length=4,
                                                  description="Which percentiles bound A-D")] = field(
        default_factory=lambda: [20, 40, 60, 80])
    declared_unit: Annotated[DeclaredUnit | None, Meta(
        description="Unit the numbers are per; default: the declared unit of the category's products")] = None
    uncertainty_penalty: Annotated[Decimal, Meta(
        description="Surcharge on a declared value without uncertainty data (0.2 = +20 %)")] = Decimal("0.2")
    source: Annotated[str, Meta(min_length=1, max_length=500)] | None = None


class BenchmarkOut(Struct, kw_only=True):
    category: str
    method: str
    declared_unit: str
    percentiles: list[int]
    thresholds: list[str]
    baseline: str
    uncertainty_penalty: str
    sample_size: int | None
    source: str | None
    revision: int
    updated_at: datetime
    regraded: int = 0


class LabelOut(Struct, kw_only=True):
    id: str
    gtin: str
    category: str
    kgco2e_per_unit: Annotated[str, Meta(description="The conservative value, kgCO2e per declared unit")]
    declared_unit: str
    grade: Grade
    scheme: Scheme
    status: LabelStatus
    certification_body: str | None
    issued_at: datetime
    valid_until: date
    factor_versions: list[FactorRef]
    conservative_basis: Literal["monte_carlo_p80", "declared_with_penalty"]
    earns_credits: bool


class ListingIn(Struct, kw_only=True, forbid_unknown_fields=True):
    gtin: GTIN
    store: Annotated[str, Meta(min_length=1, max_length=200)]
    price_cents: Annotated[int, Meta(ge=0, le=10**12)]
    url: Annotated[str, Meta(min_length=1, max_length=2000, pattern=r"^https?://")] | None = None


class ListingOut(Struct, kw_only=True):
    id: str
    gtin: str
    merchant: str
    store: str
    price_cents: int
    url: str | None
    created_at: datetime


class ListingItem(Struct, kw_only=True):
    """A listing with what a shopper compares: the product and its current label."""

    id: str
    gtin: str
    merchant: str
    store: str
    price_cents: int
    url: str | None
    names: Names
    category: str
    declared_unit: str
    label: LabelOut | None


class ListingPage(Struct, kw_only=True):
    items: list[ListingItem]
    next_cursor: str | None


class PublicProduct(Struct, kw_only=True):
    """What anyone may see: no inventory, no factor detail beyond the label's versions."""

    gtin: str
    names: Names
    category: str
    declared_unit: str
    declared_units_per_item: str
    label: LabelOut | None
    listings: list[ListingOut]
    digital_link: Annotated[str, Meta(description="The product's GS1 Digital Link address (/01/{gtin14})")]


class AlternativesPage(Struct, kw_only=True):
    items: list[PublicProduct]


class ApplicationIn(Struct, kw_only=True, forbid_unknown_fields=True):
    certification_body: Org | None = None


class ApplicationOut(Struct, kw_only=True):
    id: str
    gtin: str
    status: ApplicationStatus
    certification_body: str | None
    applicant_org: str
    inventory_revision: int
    created_at: datetime
    decided_at: datetime | None = None
    comment: str | None = None
    label_id: str | None = None


class QueueItem(ApplicationOut, kw_only=True):
    """An application as its certification body sees it: while pending, with the inventory and the
    footprint (the Monte Carlo samples and seed) that approving it would label."""

    names: Names
    category: str
    declared_unit: str
    inventory: InventoryOut | None = None
    footprint: Footprint | None = None


class ApplicationPage(Struct, kw_only=True):
    items: list[QueueItem]
    next_cursor: str | None


class BenchmarkPage(Struct, kw_only=True):
    items: list[BenchmarkOut]
    next_cursor: str | None


class DecisionIn(Struct, kw_only=True, forbid_unknown_fields=True):
    decision: Literal["approve", "reject"]
    comment: Text | None = None
    valid_until: date | None = None


class DecisionOut(Struct, kw_only=True):
    status: ApplicationStatus
    label: LabelOut | None


class SelfDeclarationIn(Struct, kw_only=True, forbid_unknown_fields=True):
    valid_until: date


class RevokeIn(Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Text


class EventOut(Struct, kw_only=True):
    action: str
    from_status: str | None
    to_status: str | None
    actor: str
    actor_org: str | None
    at: datetime
    reason: str | None


class LabelHistory(Struct, kw_only=True):
    label: LabelOut
    events: list[EventOut]

"""Request and response bodies for tenders, bids and evaluations (field names per API.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import Meta, Struct, field

from carbonpuhui.footprints.schemas import Category, DeclaredUnit

CarbonMethod = Literal["ratio_to_best", "linear", "benchmark", "monetised"]
Criterion = Literal["price", "carbon", "quality"]
CRITERIA: tuple[Criterion, ...] = ("price", "carbon", "quality")
TenderStatus = Literal["open", "closed"]
MAX_SAMPLES = 100_000
Weight = Annotated[Decimal, Meta(description="A share of the total, 0-1, exact decimal")]


class Eligibility(Struct, kw_only=True, forbid_unknown_fields=True):
    max_kgco2e_per_unit: Annotated[Decimal, Meta(
        description="Bids above this footprint per functional unit are ineligible")] | None = None
    label_required: Annotated[bool, Meta(description="Only bids citing a verified carbon label are eligible")] = False


class Weights(Struct, kw_only=True, forbid_unknown_fields=True):
    price: Weight
    carbon: Weight
    quality: Weight = Decimal(0)


class WeightRange(Struct, kw_only=True, forbid_unknown_fields=True):
    min: Weight
    max: Weight


class WeightRanges(Struct, kw_only=True, forbid_unknown_fields=True):
    """Ranges the uncertainty analysis samples weights from (uniformly on the simplex restricted to
    them); a criterion left out keeps its weight."""

    price: WeightRange | None = None
    carbon: WeightRange | None = None
    quality: WeightRange | None = None


class TenderIn(Struct, kw_only=True, forbid_unknown_fields=True):
    title: Annotated[str, Meta(min_length=1, max_length=200)]
    category: Category
    functional_unit: Annotated[DeclaredUnit, Meta(
        description="The unit bids' footprints are per (a declared unit, as products and labels use)")]
    quantity: Annotated[Decimal, Meta(description="How many functional units are bought, > 0")]
    deadline: Annotated[datetime, Meta(description="RFC 3339 with an offset; bids are sealed until then")]
    weights: Weights
    carbon_method: CarbonMethod
    eligibility: Eligibility = field(default_factory=Eligibility)
    shadow_price_cents_per_tco2e: Annotated[int, Meta(
        ge=1, le=10**12, description="Carbon price for the monetised method, cents per tonne CO2e")] | None = None
    weight_ranges: WeightRanges | None = None


class EligibilityOut(Struct, kw_only=True):
    max_kgco2e_per_unit: str | None
    label_required: bool


class WeightsOut(Struct, kw_only=True):
    price: str
    carbon: str
    quality: str


class WeightRangeOut(Struct, kw_only=True):
    min: str
    max: str


class WeightRangesOut(Struct, kw_only=True):
    price: WeightRangeOut | None
    carbon: WeightRangeOut | None
    quality: WeightRangeOut | None


class BenchmarkSnapshot(Struct, kw_only=True):
    """The category benchmark a ``benchmark`` tender scores against, per functional unit."""

    percentiles: list[int]
    thresholds: list[str]
    baseline: str
    revision: int


class AwardIn(Struct, kw_only=True, forbid_unknown_fields=True):
    bid_id: Annotated[str, Meta(min_length=1, max_length=36, description="An eligible bid of this tender")]


class AwardOut(Struct, kw_only=True):
    """The award as the result notice (中标公告) publishes it: the winning supplier, its price and the
    footprint it was scored on. The other bids stay sealed."""

    bid_id: str
    supplier_org: str
    price_cents: Annotated[int, Meta(description="The winning bid's price (中标金额)")]
    kgco2e_per_unit: Annotated[str, Meta(description="The winning bid's footprint per functional unit")]
    awarded_at: datetime


class TenderOut(Struct, kw_only=True):
    """A tender as anyone may see it: its rules, never a bid's content (only the winning bid's
    supplier, price and footprint once awarded)."""

    id: str
    agency: str
    title: str
    category: str
    functional_unit: str
    quantity: str
    deadline: datetime
    status: TenderStatus
    eligibility: EligibilityOut
    weights: WeightsOut
    carbon_method: CarbonMethod
    shadow_price_cents_per_tco2e: int | None
    weight_ranges: WeightRangesOut | None
    benchmark: BenchmarkSnapshot | None
    bid_count: Annotated[int | None, Meta(description="Shown once the deadline has passed")]
    created_at: datetime
    award: Annotated[AwardOut | None, Meta(description="Null until the agency awards the tender")] = None


class TenderPage(Struct, kw_only=True):
    items: list[TenderOut]
    next_cursor: str | None


class FootprintIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """Either ``{"kgco2e_per_unit": x, "gsd": g}`` (a lognormal with median x) or ``{"label_id": id}``."""

    kgco2e_per_unit: Annotated[Decimal, Meta(description="Median kgCO2e per functional unit, > 0")] | None = None
    gsd: Annotated[float, Meta(ge=1.0, le=100.0, description="Geometric standard deviation (1: exact)")] | None = None
    label_id: Annotated[str, Meta(min_length=1, max_length=36, description="A current, active label of yours")] | None = None


class BidIn(Struct, kw_only=True, forbid_unknown_fields=True):
    price_cents: Annotated[int, Meta(ge=1, le=10**15, description="The whole bid's price, in cents")]
    footprint: FootprintIn
    quality_score: Annotated[Decimal, Meta(description="0-100")] | None = None


class BidReceipt(Struct, kw_only=True):
    id: str
    tender_id: str
    receipt_sha256: Annotated[str, Meta(description="SHA-256 (hex) of `canonical`, the content as submitted")]
    canonical: str
    revision: int
    replaced: bool
    submitted_at: datetime


class FootprintOut(Struct, kw_only=True):
    source: Literal["declared", "label"]
    kgco2e_per_unit: Annotated[str, Meta(description="Per functional unit; for a label its certified value")]
    median_kgco2e_per_unit: str
    gsd: float
    label_id: str | None
    label_scheme: str | None


class BidOut(Struct, kw_only=True):
    id: str
    tender_id: str
    supplier: str
    price_cents: int
    footprint: FootprintOut
    quality_score: str | None
    receipt_sha256: str
    revision: int
    submitted_at: datetime


class BidPage(Struct, kw_only=True):
    items: list[BidOut]
    next_cursor: str | None


class EvaluationIn(Struct, kw_only=True, forbid_unknown_fields=True):
    samples: Annotated[int, Meta(ge=100, le=MAX_SAMPLES, description="Monte Carlo samples")] = 10_000
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1, description="Same seed, same numbers")] = 1


class RankedBid(Struct, kw_only=True):
    bid_id: str
    supplier: str
    rank: Annotated[int | None, Meta(description="1 = best; ties share the better rank; null if ineligible")]
    total: str | None
    price_score: str | None
    carbon_score: str | None
    quality_score: str | None
    eligible: bool
    reasons: list[str]
    price_cents: int
    kgco2e_per_unit: str


class CentralWeights(Struct, kw_only=True):
    price: float
    carbon: float
    quality: float


class Analysis(Struct, kw_only=True):
    """SMAA-2 over the eligible bids, rows and columns in ``bid_ids`` order (the ranking's)."""

    bid_ids: list[str]
    rank_acceptability: Annotated[list[list[float]], Meta(description="[i][r]: P(bid i has rank r + 1)")]
    p_first: list[float]
    pairwise_winning: Annotated[list[list[float]], Meta(description="[i][k]: P(u_i > u_k)")]
    central_weights: Annotated[list[CentralWeights | None], Meta(
        description="Mean weights over the samples where the bid ranks first; null if it never does")]
    confidence: Annotated[list[float | None], Meta(
        description="P(first) with the weights fixed at the bid's central weights")]
    mc_error: Annotated[float, Meta(description="Largest standard error of any reported probability")]
    mc_error_bound: Annotated[float, Meta(description="Worst-case standard error, 0.5 / sqrt(samples)")]
    weights_sampled: bool
    samples: int
    seed: int


class EvaluationOut(Struct, kw_only=True):
    tender_id: str
    evaluated_at: datetime
    ranking: list[RankedBid]
    analysis: Analysis

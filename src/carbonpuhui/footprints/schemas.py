"""Request and response bodies for products, inventories and footprints (field names per API.md)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from carbonpuhui.factors.schemas import (
    CATEGORY_PATTERN,
    FACTOR_ID_PATTERN,
    REGION_PATTERN,
    UNIT_PATTERN,
    DataQuality,
    Names,
    Uncertainty,
)

Stage = Literal["raw_materials", "production", "distribution", "use", "end_of_life"]
# Length only: the service checks digits and check digit, so every refusal names its reason.
GTIN = Annotated[str, Meta(min_length=1, max_length=20, description="GTIN-8, -12, -13 or -14 (check digit validated)")]
Category = Annotated[str, Meta(pattern=CATEGORY_PATTERN, max_length=100)]
Unit = Annotated[str, Meta(min_length=1, max_length=32, pattern=UNIT_PATTERN)]
Org = Annotated[str, Meta(min_length=1, max_length=100)]
MAX_LINES = 1000
SiteId = Annotated[str, Meta(min_length=1, max_length=36, description=(
    "A site of the owner (POST /v1/organisations/{org}/sites) where it is made: statistics count the "
    "product in the site's division and industry; null: the owner's"))]

# The declared units a product's footprint can be expressed in (ISO 14067 declared unit).
DECLARED_UNITS = ("kilogram", "tonne", "piece", "pair", "litre", "m³", "m²", "kWh", "MJ", "t·km")
DeclaredUnit = Literal["kilogram", "tonne", "piece", "pair", "litre", "m³", "m²", "kWh", "MJ", "t·km"]


class ProductCreate(Struct, kw_only=True, forbid_unknown_fields=True):
    gtin: GTIN
    names: Names
    category: Category
    declared_unit: DeclaredUnit
    declared_units_per_item: Annotated[Decimal, Meta(description="Declared units in one sold item, > 0")]
    region: Annotated[str, Meta(pattern=REGION_PATTERN, description="Where it is made; factors resolve here")] = "CN"
    site_id: SiteId | None = None


class ProductUpdate(Struct, kw_only=True, forbid_unknown_fields=True):
    """Fields left out stay as they are."""

    site_id: SiteId | None | UnsetType = UNSET


class ProductOut(Struct, kw_only=True):
    gtin: str
    names: Names
    category: str
    declared_unit: str
    declared_units_per_item: str
    region: str
    owner_org: str
    inventory_revision: int
    verifiers: list[str]
    created_at: datetime
    site_id: str | None = None


class ProductPage(Struct, kw_only=True):
    items: list[ProductOut]
    next_cursor: str | None


class InventoryLineIn(Struct, kw_only=True, forbid_unknown_fields=True):
    stage: Stage
    description: Annotated[str, Meta(min_length=1, max_length=500)]
    quantity: Annotated[Decimal, Meta(description="Per one declared unit of the product, in `unit`")]
    unit: Unit
    factor_id: Annotated[str, Meta(pattern=FACTOR_ID_PATTERN, max_length=100)] | None = None
    factor_version: Annotated[int, Meta(ge=1, le=2**31 - 1)] | None = None
    factor_category: Category | None = None
    direct_kgco2e: Annotated[Decimal, Meta(description="kgCO2e per `unit` of this line, measured")] | None = None
    primary: bool = False
    activity_uncertainty: Uncertainty | None = None
    data_quality: DataQuality | None = None


class InventoryIn(Struct, kw_only=True, forbid_unknown_fields=True):
    lines: Annotated[list[InventoryLineIn], Meta(max_length=MAX_LINES)]
    reference_period_start: date | None = None
    reference_period_end: date | None = None


class FactorRef(Struct, kw_only=True, frozen=True):
    id: str
    version: int


class InventoryLineOut(Struct, kw_only=True):
    position: int
    stage: Stage
    description: str
    quantity: str
    unit: str
    factor_id: str | None
    factor_version: int | None
    version_requested: bool
    factor_category: str | None
    direct_kgco2e: str | None
    primary: bool
    activity_uncertainty: Uncertainty | None
    data_quality: DataQuality | None


class InventoryOut(Struct, kw_only=True):
    gtin: str
    revision: int
    reference_period_start: date
    reference_period_end: date
    lines: list[InventoryLineOut]
    updated_at: datetime | None


class LineResult(Struct, kw_only=True):
    position: int
    stage: Stage
    description: str
    factor: FactorRef | None
    factor_unit: str | None
    amount: Annotated[str, Meta(description="The activity in the factor's unit")]
    kgco2e_per_unit: str
    share: Annotated[float, Meta(description="Fraction of the total (by absolute contribution)")]
    primary: bool
    dqr: float


class Hotspot(Struct, kw_only=True):
    position: int
    stage: Stage
    description: str
    kgco2e_per_unit: str
    share: float


class StageHotspot(Struct, kw_only=True):
    stage: Stage
    kgco2e_per_unit: str
    share: float


class MonteCarlo(Struct, kw_only=True):
    samples: int
    seed: int
    mean: str
    p5: str
    p50: str
    p80: str
    p95: str


class StaleFactor(Struct, kw_only=True):
    id: str
    version: int
    latest_version: int


class Footprint(Struct, kw_only=True):
    gtin: str
    declared_unit: str
    inventory_revision: int
    kgco2e_per_unit: str
    by_stage: dict[str, str]
    lines: list[LineResult]
    hotspots: list[Hotspot]
    stage_hotspots: list[StageHotspot]
    primary_data_share: Annotated[float, Meta(description="Percent of the total from primary data")]
    dqr: Annotated[float, Meta(description="PEF data-quality rating, 1 (best) to 5; contribution-weighted")]
    dqr_level: Literal["excellent", "very_good", "good", "fair", "poor"]
    monte_carlo: MonteCarlo
    factor_versions: list[FactorRef]
    stale_factors: list[StaleFactor]
    reference_period_start: date
    reference_period_end: date


class VerifierAssign(Struct, kw_only=True, forbid_unknown_fields=True):
    certification_body: Org


class RefreshResult(Struct, kw_only=True):
    updated: list[StaleFactor]
    footprint: Footprint

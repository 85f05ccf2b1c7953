"""Request and response bodies of the factor database (field names per API.md)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

# "(?!\n)$": in Python a bare "$" also matches before a final newline, which would let "kWh\n"
# through as a look-alike unit (and overflow columns); ECMA regexes read these the same way.
FACTOR_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}(?!\n)$"
CATEGORY_PATTERN = r"^[a-z0-9_]+(\.[a-z0-9_]+)*(?!\n)$"
UNIT_PATTERN = r"^[A-Za-z0-9_./²³·-]+(?!\n)$"
REGION_PATTERN = r"^([A-Z]{2}(-[A-Z0-9]{1,3})?|GLO)(?!\n)$"

FactorId = Annotated[str, Meta(pattern=FACTOR_ID_PATTERN, max_length=100, description="Stable slug id")]
Category = Annotated[str, Meta(pattern=CATEGORY_PATTERN, max_length=100)]
Unit = Annotated[str, Meta(min_length=1, max_length=32, pattern=UNIT_PATTERN)]
Region = Annotated[str, Meta(pattern=REGION_PATTERN, description="ISO 3166-1 alpha-2, ISO 3166-2, or GLO")]
Org = Annotated[str, Meta(min_length=1, max_length=100)]
Text = Annotated[str, Meta(min_length=1, max_length=200)]
Rating = Annotated[int, Meta(ge=1, le=5, description="1 = best, 5 = worst (PEF data-quality scale)")]
Tier = Literal["enterprise", "provincial", "national", "default"]
Status = Literal["draft", "published", "retired"]


class Names(Struct, kw_only=True, forbid_unknown_fields=True, rename={"zh_hans": "zh-Hans", "zh_hant": "zh-Hant"}):
    zh_hans: Text
    zh_hant: Text
    en: Text


class Lognormal(Struct, kw_only=True, forbid_unknown_fields=True, tag_field="distribution", tag="lognormal"):
    """The value is the median (geometric mean); ``gsd`` the geometric standard deviation."""

    gsd: Annotated[float, Meta(ge=1.0, le=100.0)]


class Normal(Struct, kw_only=True, forbid_unknown_fields=True, tag_field="distribution", tag="normal"):
    sd: Decimal


class Triangular(Struct, kw_only=True, forbid_unknown_fields=True, tag_field="distribution", tag="triangular"):
    min: Decimal
    mode: Decimal
    max: Decimal


class Uniform(Struct, kw_only=True, forbid_unknown_fields=True, tag_field="distribution", tag="uniform"):
    min: Decimal
    max: Decimal


class NoUncertainty(Struct, kw_only=True, forbid_unknown_fields=True, tag_field="distribution", tag="none"):
    pass


Uncertainty = Lognormal | Normal | Triangular | Uniform | NoUncertainty


class DataQuality(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    technological: Rating | None = None
    geographical: Rating | None = None
    time: Rating | None = None
    precision: Rating | None = None
    completeness: Rating | None = None


class FactorBody(Struct, kw_only=True, forbid_unknown_fields=True):
    """A factor version's content: ``POST /v1/factors/{id}/versions``."""

    names: Names
    category: Category
    unit: Unit
    kgco2e_per_unit: Annotated[Decimal, Meta(description="kg CO2e per activity unit, exact decimal")]
    gwp_basis: Literal["AR4", "AR5", "AR6"]
    region: Region
    tier: Tier
    valid_from: date
    source: Annotated[str, Meta(min_length=1, max_length=2000)]
    owner_org: Org | None = None
    valid_to: date | None = None
    uncertainty: Uncertainty = msgspec.field(default_factory=NoUncertainty)
    data_quality: DataQuality | None = None
    supplements: FactorId | None = None
    version_note: Annotated[str, Meta(max_length=500)] | None = None


class FactorCreate(FactorBody, kw_only=True, forbid_unknown_fields=True):
    """A new factor: ``POST /v1/factors`` (and one row of an import)."""

    id: FactorId


class FactorOut(Struct, kw_only=True):
    id: str
    version: int
    status: Status
    names: Names
    category: str
    unit: str
    kgco2e_per_unit: Annotated[str, Meta(description="Exact decimal, plain digits")]
    gwp_basis: str
    region: str
    tier: Tier
    owner_org: str | None
    valid_from: date
    valid_to: date | None
    source: str
    uncertainty: Uncertainty
    data_quality: DataQuality | None
    supplements: str | None
    version_note: str | None
    created_at: datetime
    published_at: datetime | None
    retired_at: datetime | None


class FactorPage(Struct, kw_only=True):
    items: list[FactorOut]
    next_cursor: str | None


class PassedOver(Struct, kw_only=True):
    tier: Tier
    code: Literal["no_organisation", "no_match", "outranked"]
    why: str


class Resolution(Struct, kw_only=True):
    factor: FactorOut
    tier: Tier
    passed_over: list[PassedOver]


class ImportResult(Struct, kw_only=True):
    created: int
    unchanged: int
    published: int = 0

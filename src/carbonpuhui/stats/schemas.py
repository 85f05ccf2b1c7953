"""The indicators response: every figure with its definition and its disclosure status."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

Status = Literal["published", "primary", "secondary"]
Unit = Literal["count", "g", "kg", "cents", "ratio", "people"]
LocalisedText = Annotated[dict[str, str], Meta(description='{"zh-Hans": ..., "zh-Hant": ..., "en": ...}')]


class Cell(Struct, kw_only=True):
    group: Annotated[str, Meta(description='An industry, a category or an ISO 3166-1 country code; "*": all')]
    group_names: LocalisedText
    value: Annotated[int | str | None, Meta(
        description="Integers for counts, g and cents; exact decimal strings for kg; ratios to 4 decimal "
                    "places; null when suppressed")]
    status: Annotated[Status, Meta(
        description="primary: too few enterprises or one dominates; secondary: hidden so that no "
                    "suppressed figure can be computed from the published ones")]


class Indicator(Struct, kw_only=True, omit_defaults=True):
    id: str
    unit: Unit
    names: LocalisedText
    definition: LocalisedText
    cells: list[Cell]
    by_destination: list[Cell] | None = None  # trade indicators: per destination country


class Area(Struct, kw_only=True):
    code: str
    level: Literal["province", "city"]
    names: LocalisedText


class Period(Struct, kw_only=True):
    starts_on: date
    ends_on: date
    time_zone: str = "Asia/Shanghai"


class Indicators(Struct, kw_only=True):
    area: Area
    quarter: str
    period: Period
    by: Literal["industry", "category"]
    generated_at: datetime
    indicators: list[Indicator]
    unattributed_products: Annotated[int, Meta(
        description="Products listed by the quarter's end whose owner has no organisation profile (and "
                    "no site): counted in no division")]

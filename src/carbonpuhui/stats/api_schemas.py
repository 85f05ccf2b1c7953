"""Request and response bodies for organisation profiles, sites and export shipments (API.md style:
snake_case, decimals as strings on output, values in cents)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from msgspec import Meta, Struct

from carbonpuhui.factors.schemas import Names

# Lengths only: the service checks the list, so every refusal says what is wrong.
DivisionCode = Annotated[str, Meta(min_length=1, max_length=6,
                                   description="GB/T 2260 division code in force, e.g. 370602")]
Industry = Annotated[str, Meta(min_length=1, max_length=32,
                               description="One of the industries statistics group by, e.g. steel")]
MAX_ITEMS = 10_000  # shipments per call or file: one quarter's declarations of a large exporter


class OrganisationIn(Struct, kw_only=True, forbid_unknown_fields=True):
    names: Names
    division_code: DivisionCode
    industry: Industry


class SiteIn(Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    division_code: DivisionCode
    industry: Industry


class Division(Struct, kw_only=True):
    code: str
    level: Annotated[str, Meta(description="province, city or county")]
    names: dict[str, str]


class OrganisationOut(Struct, kw_only=True):
    org: str
    names: Names
    division_code: str
    division: Division
    city: Annotated[Division, Meta(description="The prefecture-level city statistics count it in")]
    province: Division
    industry: str
    industry_names: dict[str, str]
    updated_at: datetime


class OrganisationPage(Struct, kw_only=True):
    items: list[OrganisationOut]
    next_cursor: str | None


class SiteOut(Struct, kw_only=True):
    id: str
    org: str
    name: str
    division_code: str
    division: Division
    city: Division
    industry: str
    industry_names: dict[str, str]
    created_at: datetime


class SitePage(Struct, kw_only=True):
    items: list[SiteOut]
    next_cursor: str | None


class ShipmentIn(Struct, kw_only=True, forbid_unknown_fields=True):
    quarter: Annotated[str, Meta(max_length=6, description="e.g. 2025Q1: an ended or the current quarter (CST)")]
    gtin: Annotated[str, Meta(min_length=1, max_length=20, description="One of your organisation's products")]
    hs_code: Annotated[str, Meta(min_length=1, max_length=20,
                                 description="6-10 digits; dots and spaces are dropped (7208.51 -> 720851)")]
    destination: Annotated[str, Meta(min_length=1, max_length=2,
                                     description="ISO 3166-1 alpha-2, outside China's customs territory")]
    quantity: Annotated[Decimal, Meta(description="In the product's declared unit, > 0")]
    value_cents: Annotated[int, Meta(ge=0, le=10**15, description="Customs value in CNY cents")]


class ShipmentsIn(Struct, kw_only=True, forbid_unknown_fields=True):
    items: Annotated[list[ShipmentIn], Meta(min_length=1, max_length=MAX_ITEMS)]


class ShipmentBatch(Struct, kw_only=True):
    batch_id: str
    count: int


class ShipmentOut(Struct, kw_only=True):
    id: str
    quarter: str
    gtin: str
    hs_code: str
    destination: str
    quantity: str
    value_cents: int
    batch_id: str
    created_at: datetime


class ShipmentPage(Struct, kw_only=True):
    items: list[ShipmentOut]
    next_cursor: str | None


class BatchWithdrawn(Struct, kw_only=True):
    batch_id: str
    deleted: int

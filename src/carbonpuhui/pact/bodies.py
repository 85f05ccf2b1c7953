"""The platform's own request bodies around PACT: publishing, sharing and importing footprints."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from msgspec import Meta, Struct

from carbonpuhui.factors.schemas import CATEGORY_PATTERN, FACTOR_ID_PATTERN

Org = Annotated[str, Meta(min_length=1, max_length=100)]
Text = Annotated[str, Meta(max_length=2000)]


class PublishFootprint(Struct, kw_only=True, forbid_unknown_fields=True):
    """Freeze the product's current footprint as a PACT ProductFootprint and say who may read it."""

    company_name: Annotated[str, Meta(min_length=1, max_length=200)]
    product_category_cpc: Annotated[str, Meta(pattern=r"^[0-9]{1,5}(?!\n)$", description="UN CPC code")]
    public: bool = False
    shared_with: Annotated[list[Org], Meta(max_length=100)] = []
    comment: Text = ""
    boundary_description: Text = "Cradle-to-gate"
    exempted_emissions_percent: Annotated[Decimal, Meta(description="0 to 5")] = Decimal(0)
    exempted_emissions_description: Text = ""
    packaging_emissions_included: bool = False
    validity_end: date | None = None


class Sharing(Struct, kw_only=True, forbid_unknown_fields=True):
    public: bool
    shared_with: Annotated[list[Org], Meta(max_length=100)] = []


class PublishedFootprint(Struct, kw_only=True):
    id: str
    gtin: str
    status: str
    version: int
    public: bool
    shared_with: list[str]
    document: dict[str, Any]


class PublishedPage(Struct, kw_only=True):
    items: list[PublishedFootprint]
    next_cursor: str | None


class SupplierEndpoint(Struct, kw_only=True, forbid_unknown_fields=True):
    """A supplier's PACT API: base URL, the client credentials it issued to us, the footprint id."""

    base_url: Annotated[str, Meta(min_length=8, max_length=500)]
    client_id: Annotated[str, Meta(min_length=1, max_length=200)]
    client_secret: Annotated[str, Meta(min_length=1, max_length=500)]
    footprint_id: Annotated[str, Meta(min_length=1, max_length=100)]


class ImportFootprint(Struct, kw_only=True, forbid_unknown_fields=True):
    """A supplier's ProductFootprint, uploaded (``footprint``) or fetched (``supplier``), becomes an
    enterprise-tier factor of the buyer's that inventory lines can name."""

    category: Annotated[str, Meta(pattern=CATEGORY_PATTERN, max_length=100)]
    footprint: dict[str, Any] | None = None
    supplier: SupplierEndpoint | None = None
    factor_id: Annotated[str, Meta(pattern=FACTOR_ID_PATTERN, max_length=100)] | None = None

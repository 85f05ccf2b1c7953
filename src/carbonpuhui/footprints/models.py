"""Products, their inventories (activity data) and the certification bodies assigned to verify them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from carbonpuhui.db.base import Base, DecimalText, UTCDateTime

STAGES = ("raw_materials", "production", "distribution", "use", "end_of_life")


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("length(gtin) = 14", name="gtin14"),
        Index("ix_products_owner", "owner_org", "gtin"),
        Index("ix_products_category", "category"),
    )

    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    owner_org: Mapped[str] = mapped_column(String(100))
    names: Mapped[dict[str, str]] = mapped_column(JSON)
    category: Mapped[str] = mapped_column(String(100))
    declared_unit: Mapped[str] = mapped_column(String(32))
    declared_units_per_item: Mapped[Decimal] = mapped_column(DecimalText())
    region: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    # Bumped by every inventory change: a PUT names the revision it replaces (If-Match) so two
    # editors cannot silently overwrite each other, and results name the revision they describe.
    inventory_revision: Mapped[int] = mapped_column(Integer, default=0)
    inventory_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    inventory_updated_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reference_period_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    reference_period_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    # Where it is made, for statistics (the site's division and industry); none: the owner's seat.
    # No foreign key: adding one to products on SQLite means re-creating the table, which would run
    # its children's cascades; the service checks the site is the owner's, and sites are never deleted.
    site_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class InventoryLine(Base):
    __tablename__ = "inventory_lines"
    __table_args__ = (
        CheckConstraint("stage IN ('raw_materials','production','distribution','use','end_of_life')",
                        name="stage_known"),
        # A line is a factor line (a pinned version) or a direct-emission line, never both.
        CheckConstraint("(factor_id IS NULL) = (factor_version IS NULL)", name="factor_pinned"),
        CheckConstraint("(factor_id IS NULL) <> (direct_kgco2e IS NULL)", name="factor_or_direct"),
    )

    gtin: Mapped[str] = mapped_column(String(14), ForeignKey("products.gtin", ondelete="CASCADE"),
                                      primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(DecimalText())
    unit: Mapped[str] = mapped_column(String(32))
    # The exact factor version used; ``version_requested`` says whether the owner chose it
    # (it never moves) or it was resolved (a newer version is offered, applied only on request).
    factor_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    factor_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # A line may name a category instead of a factor id: resolved as GET /v1/factors/resolve does.
    factor_category: Mapped[str | None] = mapped_column(String(100), nullable=True)
    direct_kgco2e: Mapped[Decimal | None] = mapped_column(DecimalText(), nullable=True)
    primary: Mapped[bool] = mapped_column(Boolean)
    activity_uncertainty: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    data_quality: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class ProductVerifier(Base):
    """A certification body the owner has entrusted with the product's inventory."""

    __tablename__ = "product_verifiers"

    gtin: Mapped[str] = mapped_column(String(14), ForeignKey("products.gtin", ondelete="CASCADE"),
                                      primary_key=True)
    body_org: Mapped[str] = mapped_column(String(100), primary_key=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    assigned_by: Mapped[str] = mapped_column(String(200))

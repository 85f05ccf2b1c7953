"""Tenders, sealed bids and the evaluations run on them (政府采购)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from carbonpuhui.db.base import Base, DecimalText, UTCDateTime


class Tender(Base):
    """A call for bids by an agency. Its rules (weights, method, benchmark snapshot) are fixed at
    creation: bidders must know how they will be scored, and nothing moves under them later."""

    __tablename__ = "tenders"
    __table_args__ = (
        CheckConstraint("carbon_method IN ('ratio_to_best','linear','benchmark','monetised')", name="method_known"),
        Index("ix_tenders_deadline", "deadline", "id"),
        Index("ix_tenders_agency", "agency_org", "deadline"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agency_org: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(100))
    functional_unit: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[Decimal] = mapped_column(DecimalText())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    max_kgco2e_per_unit: Mapped[Decimal | None] = mapped_column(DecimalText(), nullable=True)
    label_required: Mapped[bool] = mapped_column(Boolean)
    weight_price: Mapped[Decimal] = mapped_column(DecimalText())
    weight_carbon: Mapped[Decimal] = mapped_column(DecimalText())
    weight_quality: Mapped[Decimal] = mapped_column(DecimalText())
    carbon_method: Mapped[str] = mapped_column(String(16))
    shadow_price_cents_per_tco2e: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # {"price": {"min": "0.5", "max": "0.7"}, ...}: criteria absent keep their weight.
    weight_ranges: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    # The category benchmark as it stood at creation, converted to the functional unit.
    benchmark: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    # The award, once the agency has chosen (after opening): statistics count the awarded footprint.
    awarded_bid_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    awarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    awarded_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Bid(Base):
    """One supplier's sealed bid on a tender (one per supplier: a new submission replaces it).
    ``canonical`` is the exact text the receipt hashes, kept so a receipt can be checked later."""

    __tablename__ = "bids"
    __table_args__ = (
        CheckConstraint("price_cents > 0", name="price_positive"),
        CheckConstraint("footprint_source IN ('declared','label')", name="source_known"),
        Index("uq_bids_supplier", "tender_id", "supplier_org", unique=True),
        Index("ix_bids_tender", "tender_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tender_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenders.id", ondelete="CASCADE"))
    supplier_org: Mapped[str] = mapped_column(String(100))
    submitted_by: Mapped[str] = mapped_column(String(200))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revision: Mapped[int] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    footprint_source: Mapped[str] = mapped_column(String(16))
    # The point value per functional unit the ranking uses; for a label, its certified value.
    kgco2e_per_unit: Mapped[Decimal] = mapped_column(DecimalText())
    # The Monte Carlo distribution: lognormal with this median and geometric standard deviation.
    median_kgco2e_per_unit: Mapped[Decimal] = mapped_column(DecimalText())
    gsd: Mapped[float] = mapped_column(Float)
    label_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    label_scheme: Mapped[str | None] = mapped_column(String(16), nullable=True)
    quality_score: Mapped[Decimal | None] = mapped_column(DecimalText(), nullable=True)
    receipt_sha256: Mapped[str] = mapped_column(String(64))
    canonical: Mapped[str] = mapped_column(Text)


class TenderEvaluation(Base):
    """An evaluation as it was answered; the reports show the latest one."""

    __tablename__ = "tender_evaluations"
    __table_args__ = (Index("ix_tender_evaluations_tender", "tender_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tender_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenders.id", ondelete="CASCADE"))
    samples: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    evaluated_by: Mapped[str] = mapped_column(String(200))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)

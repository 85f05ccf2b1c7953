"""Benchmarks, label applications, labels, listings, and the record of every transition."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from carbonpuhui.db.base import Base, DecimalText, UTCDateTime


class Benchmark(Base):
    """A category's grade boundaries (upper bounds of A, B, C, D; inclusive) and its baseline, in kgCO2e
    per the benchmark's declared unit. Percentile benchmarks are a snapshot taken when an admin asks:
    a new verified label does not move everyone's grade behind their backs."""

    __tablename__ = "benchmarks"
    __table_args__ = (CheckConstraint("method IN ('fixed','percentile')", name="method_known"),)

    category: Mapped[str] = mapped_column(String(100), primary_key=True)
    method: Mapped[str] = mapped_column(String(16))
    declared_unit: Mapped[str] = mapped_column(String(32))
    percentiles: Mapped[list[int]] = mapped_column(JSON)  # which percentiles the thresholds are (20, 40, 60, 80)
    thresholds: Mapped[list[str]] = mapped_column(JSON)  # exact decimals as text, ascending
    baseline: Mapped[Decimal] = mapped_column(DecimalText())
    # Relative surcharge on a declared value that has no uncertainty data (0.2 = +20 %).
    uncertainty_penalty: Mapped[Decimal] = mapped_column(DecimalText())
    sample_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source: Mapped[str | None] = mapped_column(String(500), nullable=True)
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))


class LabelApplication(Base):
    __tablename__ = "label_applications"
    __table_args__ = (
        CheckConstraint("status IN ('pending','approved','rejected','withdrawn')", name="status_known"),
        Index("ix_label_applications_queue", "status", "certification_body", "created_at"),
        Index("ix_label_applications_gtin", "gtin", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14), ForeignKey("products.gtin", ondelete="CASCADE"))
    applicant_org: Mapped[str] = mapped_column(String(100))
    applicant_sub: Mapped[str] = mapped_column(String(200))
    # Null: any certification body may take it; the first to decide becomes the assigned body.
    certification_body: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    inventory_revision: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    label_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class Label(Base):
    """An issued label. ``status`` is stored as active or revoked; expiry is derived from
    ``valid_until`` at read time, so an expired label stops counting without any job running."""

    __tablename__ = "labels"
    __table_args__ = (
        CheckConstraint("scheme IN ('verified','self_declared')", name="scheme_known"),
        CheckConstraint("status IN ('active','revoked')", name="status_known"),
        CheckConstraint("grade IN ('A','B','C','D','E')", name="grade_known"),
        # At most one current label per product, enforced by the database, not only by the service.
        Index("uq_labels_current_gtin", "gtin", unique=True, sqlite_where=text("current"),
              postgresql_where=text("current")),
        Index("ix_labels_category", "category", "current"),
        # Lookups filter on ``current IS true``, which neither database matches to the partial index
        # above: without this, every uncached label read and every purchase claim scanned the table.
        Index("ix_labels_gtin", "gtin"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14), ForeignKey("products.gtin", ondelete="CASCADE"))
    owner_org: Mapped[str] = mapped_column(String(100))
    application_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    scheme: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    current: Mapped[bool] = mapped_column(Boolean)
    category: Mapped[str] = mapped_column(String(100))
    declared_unit: Mapped[str] = mapped_column(String(32))
    # The conservative value graded and shown (Monte Carlo P80, or the declared value plus the penalty).
    kgco2e_per_unit: Mapped[Decimal] = mapped_column(DecimalText())
    declared_kgco2e_per_unit: Mapped[Decimal] = mapped_column(DecimalText())
    conservative_basis: Mapped[str] = mapped_column(String(32))
    uncertainty: Mapped[dict[str, Any]] = mapped_column(JSON)  # Monte Carlo summary behind the value
    gsd: Mapped[float | None] = mapped_column(Float, nullable=True)  # lognormal fit, for procurement
    grade: Mapped[str] = mapped_column(String(1))
    benchmark_revision: Mapped[int] = mapped_column(Integer)
    certification_body: Mapped[str | None] = mapped_column(String(100), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_by: Mapped[str] = mapped_column(String(200))
    valid_until: Mapped[date] = mapped_column(Date)
    factor_versions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    inventory_revision: Mapped[int] = mapped_column(Integer)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class CertificationEvent(Base):
    """Every transition of an application, a label or a benchmark: who, when, why. Never updated."""

    __tablename__ = "certification_events"
    __table_args__ = (Index("ix_certification_events_subject", "subject_kind", "subject_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_kind: Mapped[str] = mapped_column(String(16))  # application | label | benchmark
    subject_id: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    actor_sub: Mapped[str] = mapped_column(String(200))
    actor_org: Mapped[str | None] = mapped_column(String(100), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class Listing(Base):
    """Where a merchant offers a product: a store (physical or online), a price, an address."""

    __tablename__ = "listings"
    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price_non_negative"),
        Index("uq_listings_offer", "merchant_org", "gtin", "store", unique=True),
        Index("ix_listings_gtin", "gtin"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14), ForeignKey("products.gtin", ondelete="CASCADE"))
    merchant_org: Mapped[str] = mapped_column(String(100))
    store: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(BigInteger)
    url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))

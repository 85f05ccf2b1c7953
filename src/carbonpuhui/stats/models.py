"""What statistics need beyond the other domains: where enterprises (and their sites) are and what
industry they are in, the export shipments they declare, and the quarterly reports as submitted."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from carbonpuhui.db.base import Base, DecimalText, UTCDateTime


class Organisation(Base):
    """An enterprise, merchant, operator or agency as statistics see it: its registered division
    (GB/T 2260, six digits) and industry. Keyed by the ``org`` claim tokens carry."""

    __tablename__ = "organisations"
    __table_args__ = (
        CheckConstraint("length(division_code) = 6", name="division_six_digits"),
        Index("ix_organisations_division", "division_code", "industry"),
    )

    org: Mapped[str] = mapped_column(String(100), primary_key=True)
    names: Mapped[dict[str, str]] = mapped_column(JSON)
    division_code: Mapped[str] = mapped_column(String(6))
    industry: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))


class Site(Base):
    """A plant or shop of an organisation, possibly in another division (and industry) than its seat.
    A product made at a site counts where the site is."""

    __tablename__ = "sites"
    __table_args__ = (
        CheckConstraint("length(division_code) = 6", name="division_six_digits"),
        Index("ix_sites_org", "org", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org: Mapped[str] = mapped_column(String(100), ForeignKey("organisations.org", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    division_code: Mapped[str] = mapped_column(String(6))
    industry: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class ExportShipment(Base):
    """One declared export of a product in a quarter: quantity in the product's declared unit, value in
    CNY cents. Commercial data: only the exporter and admins see the rows; statistics see sums."""

    __tablename__ = "export_shipments"
    __table_args__ = (
        CheckConstraint("value_cents >= 0", name="value_not_negative"),
        Index("ix_export_shipments_quarter", "quarter", "org"),
        Index("ix_export_shipments_org", "org", "quarter", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org: Mapped[str] = mapped_column(String(100))
    quarter: Mapped[str] = mapped_column(String(6))  # "2025Q1"
    gtin: Mapped[str] = mapped_column(String(14), ForeignKey("products.gtin", ondelete="RESTRICT"))
    hs_code: Mapped[str] = mapped_column(String(10))
    destination: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    quantity: Mapped[Decimal] = mapped_column(DecimalText())  # in the product's declared unit
    value_cents: Mapped[int] = mapped_column(BigInteger)
    batch_id: Mapped[str] = mapped_column(String(36))  # one API call or CSV import: all or nothing
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class StatReport(Base):
    """A pilot city's quarterly report as submitted: the figures are frozen in ``content`` (a later data
    change alters nothing); re-generating makes the next revision, never an update."""

    __tablename__ = "stat_reports"
    __table_args__ = (
        Index("uq_stat_reports_revision", "city_code", "quarter", "revision", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6))
    quarter: Mapped[str] = mapped_column(String(6))
    revision: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_sha256: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_by: Mapped[str] = mapped_column(String(200))
    submitted_org: Mapped[str | None] = mapped_column(String(100), nullable=True)
    note: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # The confidential inputs behind the frozen figures (each atom's contributions), never served: the
    # next revision is protected against this one, so their difference cannot single out an enterprise.
    private_atoms: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)

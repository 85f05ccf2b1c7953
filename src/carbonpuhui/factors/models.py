"""Factor versions. One row per (factor id, version); published rows never change their content."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, Index, Integer, String, Text, event, inspect
from sqlalchemy.orm import Mapped, Session, mapped_column

from carbonpuhui.db.base import Base, DecimalText, UTCDateTime

TIERS = ("enterprise", "provincial", "national", "default")
STATUSES = ("draft", "published", "retired")

# What may still change on a published row: only its retirement.
_MUTABLE_WHEN_PUBLISHED = frozenset({"status", "retired_at", "retired_by"})


class FactorVersion(Base):
    __tablename__ = "factor_versions"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("tier IN ('enterprise','provincial','national','default')", name="tier_known"),
        CheckConstraint("status IN ('draft','published','retired')", name="status_known"),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="validity_ordered"),
        Index("ix_factor_versions_lookup", "category", "unit", "status"),
        Index("ix_factor_versions_content", "factor_id", "content_hash"),
    )

    factor_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    names: Mapped[dict[str, str]] = mapped_column(JSON)
    category: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(32))
    kgco2e_per_unit: Mapped[Decimal] = mapped_column(DecimalText())
    gwp_basis: Mapped[str] = mapped_column(String(8))
    region: Mapped[str] = mapped_column(String(10))
    tier: Mapped[str] = mapped_column(String(16))
    owner_org: Mapped[str | None] = mapped_column(String(100), nullable=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    source: Mapped[str] = mapped_column(Text)
    uncertainty: Mapped[dict[str, Any]] = mapped_column(JSON)
    data_quality: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    supplements: Mapped[str | None] = mapped_column(String(100), nullable=True)
    version_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Lower-cased id, names, category and source: one portable column for ?q= on both databases.
    search_text: Mapped[str] = mapped_column(Text)
    # SHA-256 of the canonical body: an import row equal to an existing version changes nothing.
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    retired_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ImmutableFactorError(RuntimeError):
    """Raised when code tries to change a published factor version in place."""


@event.listens_for(Session, "before_flush")
def _refuse_edits_to_published(session: Session, _ctx: Any, _instances: Any) -> None:
    # A last line of defence below the service layer: published content is immutable.
    for obj in session.dirty:
        if not isinstance(obj, FactorVersion):
            continue
        state = inspect(obj)
        was = state.attrs.status.history.deleted
        previous_status = was[0] if was else obj.status
        if previous_status == "draft":
            continue
        # A published version may only be retired: going back to draft would reopen it for edits.
        if obj.status != previous_status and (previous_status, obj.status) != ("published", "retired"):
            raise ImmutableFactorError(
                f"factor {obj.factor_id} v{obj.version} cannot go from {previous_status} to {obj.status}"
            )
        changed = {attr.key for attr in state.attrs if attr.history.has_changes()}
        if changed - _MUTABLE_WHEN_PUBLISHED:
            raise ImmutableFactorError(
                f"factor {obj.factor_id} v{obj.version} is {previous_status}; changed: {sorted(changed)}"
            )
    for obj in session.deleted:
        if isinstance(obj, FactorVersion) and obj.status != "draft":
            raise ImmutableFactorError(f"factor {obj.factor_id} v{obj.version} cannot be deleted")

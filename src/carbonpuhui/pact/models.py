"""PACT data exchange: machine clients, published ProductFootprints and who they are shared with,
and the action events received (so a retried event is answered once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from carbonpuhui.db.base import Base, UTCDateTime


class PactClient(Base):
    """An OAuth 2.0 client (client credentials) of an organisation, registered by an administrator."""

    __tablename__ = "pact_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org: Mapped[str] = mapped_column(String(100))
    # 256 random bits, stored as SHA-256: a slow password hash would add nothing against guessing a
    # random secret, and would cost every token request.
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Where this client's own PACT API takes action events (answers to its requests). Registered by
    # an administrator, never taken from an event's ``source``: that would let any client make the
    # platform send requests anywhere.
    callback_base_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    callback_client_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    callback_client_secret: Mapped[str | None] = mapped_column(Text, nullable=True)


class PactFootprint(Base):
    """A ProductFootprint as published: its document is frozen, only status and version move when a
    newer footprint of the product deprecates it."""

    __tablename__ = "pact_footprints"
    __table_args__ = (
        CheckConstraint("status IN ('Active','Deprecated')", name="status_known"),
        Index("ix_pact_footprints_owner", "owner_org", "created_at"),
        Index("ix_pact_footprints_gtin", "gtin", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14), ForeignKey("products.gtin", ondelete="CASCADE"))
    owner_org: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    public: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)


class PactShare(Base):
    __tablename__ = "pact_shares"

    footprint_id: Mapped[str] = mapped_column(String(36), ForeignKey("pact_footprints.id", ondelete="CASCADE"),
                                              primary_key=True)
    org: Mapped[str] = mapped_column(String(100), primary_key=True)


class PactEvent(Base):
    __tablename__ = "pact_events"
    __table_args__ = (UniqueConstraint("client_id", "event_id", name="client_event"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # received -> fulfilled | rejected (answer built), then delivered or undeliverable
    outcome: Mapped[str] = mapped_column(String(32))
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    delivery_error: Mapped[str | None] = mapped_column(Text, nullable=True)

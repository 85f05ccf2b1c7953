"""The credits ledger (碳普惠): accounts, append-only double-entry transfers, the claims that
earned them, receipt and attestation keys, rewards and redemptions, idempotency records.

Credits are integer grams CO2e. Entries are never updated or deleted: a reversal or an expiry is a
new transfer. Only people's and merchants' accounts keep a cached balance (checked against the sum of
their entries by ``carbonpuhui ledger check``); the platform's own accounts (issuance, expiry,
forfeit) are the sum of their entries, so no claim has to lock one hot row.
"""

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
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from carbonpuhui.db.base import Base, DecimalText, UTCDateTime

TRACKED = ("person", "merchant")  # kinds whose balance is cached and may never go below zero
SYSTEM = ("issuance", "expiry", "forfeit")  # the platform's accounts: one row each, id = kind
# BIGINT on PostgreSQL, the rowid alias on SQLite (so it autoincrements there too).
EntryId = BigInteger().with_variant(Integer(), "sqlite")


class Account(Base):
    __tablename__ = "credit_accounts"
    __table_args__ = (
        CheckConstraint("kind IN ('person','merchant','issuance','expiry','forfeit')", name="kind_known"),
        CheckConstraint("kind NOT IN ('person','merchant') OR balance_g >= 0", name="no_negative_balance"),
        # One live account per person or merchant; an erased person's account keeps no owner.
        UniqueConstraint("kind", "owner", name="uq_credit_accounts_owner"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)  # a person's sub, a merchant's org
    balance_g: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Transfer(Base):
    __tablename__ = "credit_transfers"
    __table_args__ = (
        CheckConstraint("kind IN ('purchase','trip','redemption','expiry','erasure')", name="kind_known"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(36), nullable=True)  # the claim or redemption
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Entry(Base):
    __tablename__ = "credit_entries"
    __table_args__ = (
        CheckConstraint("amount_g <> 0", name="amount_nonzero"),
        Index("ix_credit_entries_account", "account_id", "id"),
        Index("ix_credit_entries_transfer", "transfer_id"),
        Index("ix_credit_entries_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(EntryId, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(String(36), ForeignKey("credit_transfers.id"))
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("credit_accounts.id"))
    amount_g: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # On credits earned by a person: when they lapse (oldest first, ``carbonpuhui credits expire``).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Claim(Base):
    """One receipt or trip submitted for credit. The natural key (kind, issuer, jti) is unique in the
    database and written in the same transaction as the entries: a receipt earns once, ever."""

    __tablename__ = "credit_claims"
    __table_args__ = (
        CheckConstraint("kind IN ('purchase','trip')", name="kind_known"),
        UniqueConstraint("kind", "issuer", "jti", name="uq_credit_claims_natural_key"),
        Index("ix_credit_claims_account", "account_id", "claimed_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    issuer: Mapped[str] = mapped_column(String(100))  # the merchant or operator org; "-" for an unattested trip
    jti: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("credit_accounts.id"))
    transfer_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("credit_transfers.id"), nullable=True)
    credited_g: Mapped[int] = mapped_column(BigInteger)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # What was bought (items and their outcome): personal data, dropped when the person is erased.
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class Trip(Base):
    """A green trip: mode, distance, times and the outcome, never a location trace."""

    __tablename__ = "credit_trips"
    __table_args__ = (
        Index("ix_credit_trips_account", "account_id", "started_at"),
        Index("ix_credit_trips_day", "account_id", "day"),
    )

    claim_id: Mapped[str] = mapped_column(String(36), ForeignKey("credit_claims.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("credit_accounts.id"))
    mode: Mapped[str] = mapped_column(String(8))
    distance_km: Mapped[Decimal] = mapped_column(DecimalText())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    day: Mapped[date] = mapped_column(Date)  # in China Standard Time: daily caps count per this day
    attested_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    credited_g: Mapped[int] = mapped_column(BigInteger)
    capped: Mapped[bool] = mapped_column(Boolean)
    methodology_version: Mapped[str] = mapped_column(String(32))


class ReceiptKey(Base):
    """A public key a merchant's point-of-sale (or a transit operator) signs receipts with."""

    __tablename__ = "receipt_keys"
    __table_args__ = (Index("ix_receipt_keys_org", "org", "created_at"),)

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)  # the RFC 7638 thumbprint
    org: Mapped[str] = mapped_column(String(100))
    kty: Mapped[str] = mapped_column(String(8))
    jwk: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Reward(Base):
    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint("cost_g > 0", name="cost_positive"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        Index("ix_rewards_merchant", "merchant_org", "created_at"),
        Index("ix_rewards_created", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    merchant_org: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    cost_g: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int] = mapped_column(Integer)  # still available
    redeemed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class Redemption(Base):
    __tablename__ = "redemptions"
    __table_args__ = (Index("ix_redemptions_account", "account_id", "redeemed_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reward_id: Mapped[str] = mapped_column(String(36), ForeignKey("rewards.id"))
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("credit_accounts.id"))
    transfer_id: Mapped[str] = mapped_column(String(36), ForeignKey("credit_transfers.id"))
    cost_g: Mapped[int] = mapped_column(BigInteger)
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyRecord(Base):
    """The first response to a credit-moving POST under an ``Idempotency-Key``, kept in the database
    in the same transaction as the credit (Redis may lose it; a retry must still not pay twice)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)

    owner: Mapped[str] = mapped_column(String(200), primary_key=True)  # the caller's sub
    route: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    response: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

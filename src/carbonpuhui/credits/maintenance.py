"""The ledger's jobs: expiry (``carbonpuhui credits expire``) and the invariant check
(``carbonpuhui ledger check``). Both read only the ledger, never Redis."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.credits.ledger import Ledger, utcnow
from carbonpuhui.credits.models import (
    SYSTEM,
    TRACKED,
    Account,
    Claim,
    Entry,
    IdempotencyRecord,
    Redemption,
    Reward,
    Transfer,
)
from carbonpuhui.db import Database


async def lapsed_accounts(session: AsyncSession, now: datetime) -> list[str]:
    """People whose credits have lapsed and are not yet spent or expired."""
    lapsed = func.sum(case((Entry.amount_g > 0, case((Entry.expires_at <= now, Entry.amount_g), else_=0)), else_=0))
    debited = func.sum(case((Entry.amount_g < 0, -Entry.amount_g), else_=0))
    rows = await session.scalars(
        select(Entry.account_id).join(Account, Account.id == Entry.account_id).where(Account.kind == "person")
        .group_by(Entry.account_id).having(lapsed - debited > 0).order_by(Entry.account_id))
    return list(rows)


async def expire_all(db: Database, now: datetime | None = None) -> tuple[int, int]:
    """Expire every lapsed credit, one account per transaction (a long run holds no lock for long).
    Running it twice expires nothing more: what is swept is a debit, and debits consume the
    oldest credits first."""
    now = now or utcnow()
    async with db.transaction() as session:
        candidates = await lapsed_accounts(session, now)
    accounts = grams = 0
    for account_id in candidates:
        async with db.transaction() as session:
            ledger = Ledger(session)
            await ledger.open()
            account = await session.get(Account, account_id, with_for_update=True, populate_existing=True)
            if account is None:
                continue
            swept = await ledger.sweep(account, now)
            accounts, grams = accounts + (swept > 0), grams + swept
    return accounts, grams


PURGEABLE = ("purchases", "trips")
IDEMPOTENCY_DAYS = 7  # how long a stored response answers a retry; later, the claim's own key still holds


async def purge_idempotency(db: Database, now: datetime | None = None, days: int = IDEMPOTENCY_DAYS) -> int:
    """Forget stored responses older than ``days`` for claims, whose retry is refused anyway by a
    natural key (a receipt's id, an attestation's id, an unattested trip's times: 409 or 422).
    Redemptions have no such key, so their records are kept."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    async with db.transaction() as session:
        result = await session.execute(delete(IdempotencyRecord).where(
            IdempotencyRecord.created_at < cutoff, IdempotencyRecord.route.in_(PURGEABLE)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def check(session: AsyncSession, now: datetime | None = None) -> tuple[dict[str, int], list[str]]:
    """Every invariant of the ledger; returns counts and the violations (empty: all hold)."""
    now = now or utcnow()
    problems: list[str] = []
    counts = {
        "transfers": int(await session.scalar(select(func.count()).select_from(Transfer)) or 0),
        "entries": int(await session.scalar(select(func.count()).select_from(Entry)) or 0),
        "accounts": int(await session.scalar(select(func.count()).select_from(Account)) or 0),
        "claims": int(await session.scalar(select(func.count()).select_from(Claim)) or 0),
    }
    # 1. Every transfer has two entries or more, summing to zero.
    for transfer_id, total, legs in await session.execute(
            select(Transfer.id, func.coalesce(func.sum(Entry.amount_g), 0), func.count(Entry.id))
            .outerjoin(Entry, Entry.transfer_id == Transfer.id).group_by(Transfer.id)
            .having((func.coalesce(func.sum(Entry.amount_g), 0) != 0) | (func.count(Entry.id) < 2))):
        problems.append(f"transfer {transfer_id}: {legs} entries summing to {total} g (must be >= 2 summing to 0)")
    # 2. Cached balances equal their entries, and none is negative.
    sums = (select(Entry.account_id.label("account_id"), func.sum(Entry.amount_g).label("total"))
            .group_by(Entry.account_id).subquery())
    for account_id, kind, balance, total in await session.execute(
            select(Account.id, Account.kind, Account.balance_g, func.coalesce(sums.c.total, literal(0)))
            .outerjoin(sums, sums.c.account_id == Account.id)):
        total = int(total)
        if kind in TRACKED:
            if balance != total:
                problems.append(f"account {account_id}: balance {balance} g but entries sum to {total} g")
            if balance < 0 or total < 0:
                problems.append(f"account {account_id}: negative balance ({balance} g, entries {total} g)")
        elif kind in SYSTEM and ((kind == "issuance" and total > 0) or (kind != "issuance" and total < 0)):
            problems.append(f"{kind} account: entries sum to {total} g, the wrong sign")
    # 3. Each claim credited what its transfer paid the claimant, and nothing without a transfer.
    paid = (select(Entry.transfer_id.label("transfer_id"), Entry.account_id.label("account_id"),
                   func.sum(Entry.amount_g).label("amount")).group_by(Entry.transfer_id, Entry.account_id).subquery())
    for claim_id, credited, transfer_id, amount in await session.execute(
            select(Claim.id, Claim.credited_g, Claim.transfer_id, paid.c.amount)
            .outerjoin(paid, (paid.c.transfer_id == Claim.transfer_id) & (paid.c.account_id == Claim.account_id))):
        expected = 0 if transfer_id is None else int(amount or 0)
        if credited != expected or (transfer_id is None) != (credited == 0) or credited < 0:
            problems.append(f"claim {claim_id}: credited {credited} g, its transfer paid {expected} g")
    # ... and no transfer pays two claims, nor names another claim than the one it pays.
    for transfer_id, claims in await session.execute(
            select(Claim.transfer_id, func.count()).where(Claim.transfer_id.is_not(None))
            .group_by(Claim.transfer_id).having(func.count() > 1)):
        problems.append(f"transfer {transfer_id}: pays {claims} claims")
    for claim_id, reference in await session.execute(
            select(Claim.id, Transfer.reference).join(Transfer, Transfer.id == Claim.transfer_id)
            .where((Transfer.reference.is_(None)) | (Transfer.reference != Claim.id))):
        problems.append(f"claim {claim_id}: its transfer names {reference}")
    # 4. Nothing expired before its time: no person's expiries exceed what had lapsed by now.
    lapsed = func.sum(case((Entry.amount_g > 0, case((Entry.expires_at <= now, Entry.amount_g), else_=0)), else_=0))
    expired = func.sum(case((Transfer.kind == "expiry", -Entry.amount_g), else_=0))
    for account_id, lapsed_g, expired_g in await session.execute(
            select(Entry.account_id, lapsed, expired).join(Transfer, Transfer.id == Entry.transfer_id)
            .join(Account, Account.id == Entry.account_id).where(Account.kind == "person")
            .group_by(Entry.account_id).having(expired > lapsed)):
        problems.append(f"account {account_id}: {expired_g} g expired, only {lapsed_g} g had lapsed")
    # 5. Rewards: the redeemed count is the number of redemptions.
    count = (select(Redemption.reward_id.label("reward_id"), func.count().label("n"))
             .group_by(Redemption.reward_id).subquery())
    for reward_id, redeemed, n in await session.execute(
            select(Reward.id, Reward.redeemed, func.coalesce(count.c.n, 0)).outerjoin(count, count.c.reward_id == Reward.id)
            .where(Reward.redeemed != func.coalesce(count.c.n, 0))):
        problems.append(f"reward {reward_id}: redeemed {redeemed} but {n} redemptions")
    return counts, problems

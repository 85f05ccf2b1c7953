"""The double-entry ledger: accounts, transfers that sum to zero, balances that never go below zero.

Rules every caller relies on:
- A transfer's entries sum to zero and are written with the balance updates in one transaction.
- A tracked balance (a person's, a merchant's) only moves by a conditional UPDATE that refuses to go
  below zero, so concurrent debits can never overdraw it, on any number of processes.
- Accounts are locked (``person(..., lock=True)``) before anything that reads a balance to decide,
  always a person before a reward before a merchant: a fixed order, so no two requests deadlock.
- Expiry is first in, first out: whatever the debits have not yet consumed of the credits whose
  ``expires_at`` has passed lapses (``sweep``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import msgspec
from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from carbonpuhui.credits import clock
from carbonpuhui.credits.models import SYSTEM, TRACKED, Account, Entry, Transfer
from carbonpuhui.errors import ConflictError
from carbonpuhui.i18n import N_


def utcnow() -> datetime:
    return clock.now()


def new_id() -> str:
    return str(uuid.uuid4())


class Leg(msgspec.Struct, frozen=True):
    account: Account
    amount_g: int
    expires_at: datetime | None = None


class InsufficientBalance(ConflictError):
    def __init__(self, balance_g: int, needed_g: int) -> None:
        super().__init__(N_("The balance ({balance_g} g) does not cover {needed_g} g."),
                         reason="insufficient_balance", balance_g=balance_g, needed_g=needed_g,
                         extra={"balance_g": balance_g})


# The hot statements, built once with bind parameters: building a SQLAlchemy statement anew on every
# claim (coercing each column and literal) cost more CPU than running it.
_FIND = select(Account).where(Account.kind == bindparam("kind"), Account.owner == bindparam("owner"))
_FIND_LOCKED = _FIND.with_for_update()
_MOVE = (update(Account).where(Account.id == bindparam("account_id"),
                               Account.balance_g + bindparam("amount_g") >= 0)
         .values(balance_g=Account.balance_g + bindparam("amount_g")).returning(Account.balance_g))
_LAPSED = (select(func.coalesce(func.sum(case((Entry.amount_g > 0,
                                               case((Entry.expires_at <= bindparam("at", type_=Entry.expires_at.type),
                                                     Entry.amount_g), else_=0)), else_=0)), 0),
                  func.coalesce(func.sum(case((Entry.amount_g < 0, -Entry.amount_g), else_=0)), 0))
           .where(Entry.account_id == bindparam("account_id")))
_SYSTEM_ROWS = {dialect: insert(Account).on_conflict_do_nothing(index_elements=["id"])
                for dialect, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}


class Ledger:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _insert(self, table: type) -> object:
        dialect = self.session.get_bind().dialect.name
        return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)

    async def open(self) -> None:
        """Make sure the platform's accounts exist. The first statement of every credit-moving unit
        of work: on SQLite it takes the write lock up front, so a request never fails half-way on
        upgrading a read snapshot; on PostgreSQL it costs an index probe and locks nothing."""
        now = utcnow()
        await self.session.execute(_SYSTEM_ROWS[self.session.get_bind().dialect.name], [
            {"id": kind, "kind": kind, "owner": None, "balance_g": 0, "created_at": now} for kind in SYSTEM])

    @staticmethod
    def system(kind: str) -> Account:
        """One of the platform's accounts (``open()`` made sure its row exists). Its balance is the
        sum of its entries, never a cached column, so a leg needs only its id: no query."""
        assert kind in SYSTEM
        return Account(id=kind, kind=kind, owner=None, balance_g=0)

    async def find(self, kind: str, owner: str, *, lock: bool = False) -> Account | None:
        return (await self.session.scalars(_FIND_LOCKED if lock else _FIND, {"kind": kind, "owner": owner},
                                           execution_options={"populate_existing": True})).first()

    async def account(self, kind: str, owner: str, *, lock: bool = False) -> Account:
        """A person's or merchant's account, created on first use; ``lock`` holds its row until commit."""
        found = await self.find(kind, owner, lock=lock)
        if found is not None:
            return found
        stmt = self._insert(Account).values(  # type: ignore[attr-defined]
            id=new_id(), kind=kind, owner=owner, balance_g=0, created_at=utcnow())
        await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["kind", "owner"]))
        found = await self.find(kind, owner, lock=lock)
        assert found is not None
        return found

    async def post(self, kind: str, reference: str | None, legs: Sequence[Leg], *,
                   at: datetime | None = None) -> Transfer:
        """Write one transfer. Tracked balances move in account-id order (no deadlocks) and only if
        they stay at or above zero; otherwise nothing is written and ``InsufficientBalance`` rises."""
        if sum(leg.amount_g for leg in legs) != 0 or any(leg.amount_g == 0 for leg in legs) or len(legs) < 2:
            raise ValueError(f"a transfer's legs must be non-zero and sum to zero: {legs!r}")
        now = at or utcnow()
        for leg in sorted(legs, key=lambda leg: leg.account.id):
            if leg.account.kind not in TRACKED:
                continue
            new_balance = await self.session.scalar(_MOVE, {"account_id": leg.account.id, "amount_g": leg.amount_g})
            if new_balance is None:
                current = await self.session.scalar(select(Account.balance_g).where(Account.id == leg.account.id))
                raise InsufficientBalance(int(current or 0), -leg.amount_g)
            set_committed_value(leg.account, "balance_g", int(new_balance))
        transfer = Transfer(id=new_id(), kind=kind, reference=reference, created_at=now)
        self.session.add(transfer)
        await self.session.flush()
        await self.session.execute(Entry.__table__.insert(), [  # type: ignore[attr-defined]
            {"transfer_id": transfer.id, "account_id": leg.account.id, "amount_g": leg.amount_g,
             "created_at": now, "expires_at": leg.expires_at} for leg in legs])
        return transfer

    async def lapsed(self, account_id: str, at: datetime) -> int:
        """Grams of this account's credits that have lapsed by ``at`` and not yet been spent or
        expired: first in, first out, every debit consumed the oldest credits first."""
        lapsed_total, debited = (await self.session.execute(_LAPSED, {"account_id": account_id, "at": at})).one()
        return max(0, int(lapsed_total) - int(debited))

    async def sweep(self, account: Account, at: datetime | None = None) -> int:
        """Expire what has lapsed on a locked account; returns the grams expired (0: nothing due)."""
        now = at or utcnow()
        due = min(await self.lapsed(account.id, now), account.balance_g)
        if due > 0:
            await self.post("expiry", None, [Leg(account, -due), Leg(self.system("expiry"), due)], at=now)
        return due

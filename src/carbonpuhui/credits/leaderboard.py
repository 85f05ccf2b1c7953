"""Leaderboards: the credits people earned this week or month (China Standard Time).

The board is a Redis sorted set per period. After each credit commits, the person's totals for the
period (read in the claim's transaction) are written with ZADD GT: totals only grow, so the greater
is the newer whatever order writes arrive in, and a rebuild merges rather than replaces. It is only
a view: the ledger decides. A board Redis lost (a flush, a new replica) is rebuilt from the ledger on
the next read; one a write could not reach (an outage) is rebuilt once Redis answers again; every
board is rebuilt at least every ten minutes; ``carbonpuhui leaderboard rebuild`` forces it. Without Redis the
board is read from the ledger directly, with the same order (credits, then account id, descending).
People with equal credits share a rank.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.credits import clock
from carbonpuhui.credits.models import Account, Entry, Transfer
from carbonpuhui.credits.schemas import LeaderboardOut, MyRank, Period, RankOut
from carbonpuhui.stores import Stores

CST = ZoneInfo("Asia/Shanghai")
PERIODS: tuple[Period, ...] = ("week", "month")
EARNING = ("purchase", "trip")
log = logging.getLogger("carbonpuhui.leaderboard")
_OUTAGE = (RedisError, OSError, TimeoutError)

# Bump a board only once it has been built from the ledger (its marker exists), with the account's
# total for the period (not an increment): a total only grows within a period, so the greater of two
# is the newer (ZADD GT), whichever order bumps and rebuilds land in.
_BUMP = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2])
  return 1
end
return 0
"""
MARKER_TTL = 600  # a board is rebuilt from the ledger at least this often (seconds): lost bumps heal


def period_bounds(period: Period, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the week (from Monday) or month containing ``now``, in CST, as UTC."""
    day = now.astimezone(CST).date()
    if period == "week":
        first = day - timedelta(days=day.weekday())
        following = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
    start = datetime.combine(first, time(0), tzinfo=CST).astimezone(UTC)
    return start, datetime.combine(following, time(0), tzinfo=CST).astimezone(UTC)


def competition_ranks(scores: list[int]) -> list[int]:
    """Ranks of scores sorted best first, ties sharing one ("1224"): the rank is one more than the
    number of people who earned strictly more."""
    ranks: list[int] = []
    for index, score in enumerate(scores):
        ranks.append(ranks[-1] if index and score == scores[index - 1] else index + 1)
    return ranks


def display_name(account_id: str) -> str:
    # People are not named on a public board: a stable pseudonym from the account (not the sub).
    return f"#{account_id.replace('-', '')[:8]}"


async def ledger_totals(session: AsyncSession, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """(account id, grams earned in [start, end)) for people, best first: the board's source of truth."""
    total = func.sum(Entry.amount_g)
    rows = await session.execute(
        select(Entry.account_id, total)
        .join(Transfer, Transfer.id == Entry.transfer_id)
        .join(Account, Account.id == Entry.account_id)
        .where(Account.kind == "person", Account.owner.is_not(None), Transfer.kind.in_(EARNING),
               Entry.amount_g > 0, Entry.created_at >= start, Entry.created_at < end)
        .group_by(Entry.account_id)
        .order_by(total.desc(), Entry.account_id.desc()))
    return [(account_id, int(grams)) for account_id, grams in rows]


async def account_totals(session: AsyncSession, account_id: str, at: datetime) -> dict[Period, int]:
    """One person's grams earned in the periods containing ``at`` (in the claim's own transaction, its
    account locked: exactly the totals once it commits)."""
    bounds = {period: period_bounds(period, at) for period in PERIODS}
    earliest = min(start for start, _end in bounds.values())
    sums = [func.coalesce(func.sum(case(((Entry.created_at >= start) & (Entry.created_at < end), Entry.amount_g),
                                        else_=0)), 0) for start, end in bounds.values()]
    row = (await session.execute(  # one query for both periods
        select(*sums).join(Transfer, Transfer.id == Entry.transfer_id)
        .where(Entry.account_id == account_id, Transfer.kind.in_(EARNING), Entry.amount_g > 0,
               Entry.created_at >= earliest))).one()
    return {period: int(total) for period, total in zip(bounds, row, strict=True)}


class Leaderboard:
    def __init__(self, stores: Stores, size: int = 20) -> None:
        self.stores = stores
        self.size = size
        self._stale: set[str] = set()  # markers of boards a bump could not reach: rebuilt once Redis answers

    def _keys(self, period: Period, start: datetime) -> tuple[str, str]:
        # One hash tag per board, so the board and its marker live in one Cluster slot.
        tag = f"{self.stores.namespace}:leaderboard:{{{period}:{start.date().isoformat()}}}"
        return tag, f"{tag}:built"

    @staticmethod
    def _ttl(start: datetime, end: datetime) -> int:
        return int((end - start).total_seconds()) + 7 * 86400  # gone a week after its period

    async def credit(self, account_id: str, totals: dict[Period, int], at: datetime) -> None:
        """After commit: put the account's totals on the current boards (no-op without Redis; fails open)."""
        redis = self.stores.redis
        if redis is None:
            return
        keys = {period: self._keys(period, period_bounds(period, at)[0]) for period in PERIODS}
        try:
            await self._forget_stale()
            async with redis.pipeline(transaction=False) as pipe:
                for period, grams in totals.items():
                    if grams > 0:
                        pipe.eval(_BUMP, 2, *keys[period], grams, account_id)
                await pipe.execute()
        except _OUTAGE as exc:
            # The board may well survive this (a blip, a restart from a snapshot): rebuild it once Redis answers.
            self._stale.update(marker for _board, marker in keys.values())
            log.warning("leaderboard not bumped (rebuilt from the ledger later): %r", exc)

    async def _forget_stale(self) -> None:
        if self._stale and self.stores.redis is not None:
            stale = sorted(self._stale)
            await self.stores.redis.delete(*stale)
            self._stale.difference_update(stale)

    async def forget(self, account_id: str) -> None:
        redis = self.stores.redis
        if redis is None:
            return
        now = clock.now()
        try:
            for period in PERIODS:
                start, _end = period_bounds(period, now)
                previous, _ = period_bounds(period, start - timedelta(seconds=1))  # kept a week past its end
                for begin in (start, previous):
                    await redis.zrem(self._keys(period, begin)[0], account_id)
        except _OUTAGE as exc:
            log.warning("leaderboard entry not removed: %r", exc)

    async def _build(self, session: AsyncSession, period: Period, start: datetime, end: datetime) -> int:
        board, marker = self._keys(period, start)
        totals = await ledger_totals(session, start, end)
        redis = self.stores.redis
        assert redis is not None
        # Merged, never replaced: a claim that committed after our read has bumped its newer (greater)
        # total, which ZADD GT keeps. Only the erased leave (forget() may have missed them in an outage).
        absent = sorted({m.decode() for m in await redis.zrange(board, 0, -1)} - {a for a, _ in totals})
        erased = list(await session.scalars(select(Account.id).where(
            Account.id.in_(absent), Account.owner.is_(None)))) if absent else []
        async with redis.pipeline(transaction=True) as pipe:
            if erased:
                pipe.zrem(board, *erased)
            if totals:
                pipe.zadd(board, {account_id: grams for account_id, grams in totals}, gt=True)
            pipe.expire(board, self._ttl(start, end))
            pipe.set(marker, "1", ex=min(MARKER_TTL, self._ttl(start, end)))
            await pipe.execute()
        return len(totals)

    async def rebuild(self, session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
        """Replace the current boards by the ledger's figures; returns the people on each."""
        now = now or clock.now()
        counts: dict[str, int] = {}
        for period in PERIODS:
            start, end = period_bounds(period, now)
            if self.stores.redis is None:
                counts[period] = len(await ledger_totals(session, start, end))
            else:
                counts[period] = await self._build(session, period, start, end)
        return counts

    async def board(self, session: AsyncSession, period: Period, me: str | None,
                    now: datetime | None = None) -> LeaderboardOut:
        now = now or clock.now()
        start, end = period_bounds(period, now)
        if self.stores.redis is not None:
            try:
                return await self._from_redis(session, period, start, end, me)
            except _OUTAGE as exc:
                log.warning("leaderboard read from the ledger, Redis unavailable: %r", exc)
        totals = await ledger_totals(session, start, end)
        ranks = competition_ranks([g for _a, g in totals])
        items = [RankOut(rank=r, display_name=display_name(a), credited_g=g)
                 for r, (a, g) in zip(ranks[:self.size], totals[:self.size], strict=True)]
        mine = next((MyRank(rank=r, credited_g=g) for r, (a, g) in zip(ranks, totals, strict=True) if a == me), None)
        return LeaderboardOut(period=period, starts_at=start, items=items, me=mine)

    async def _from_redis(self, session: AsyncSession, period: Period, start: datetime, end: datetime,
                          me: str | None) -> LeaderboardOut:
        redis = self.stores.redis
        assert redis is not None
        board, marker = self._keys(period, start)
        await self._forget_stale()
        if not await redis.exists(marker):
            await self._build(session, period, start, end)
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zrevrange(board, 0, self.size - 1, withscores=True)
            if me is not None:
                pipe.zscore(board, me)
            results = await pipe.execute()
        top = [(member.decode(), int(score)) for member, score in results[0]]
        items = []
        for rank, (member, score) in zip(competition_ranks([s for _m, s in top]), top, strict=True):
            items.append(RankOut(rank=rank, display_name=display_name(member), credited_g=score))
        mine = None
        if me is not None and results[1] is not None:
            score = int(results[1])
            # Tied people share a rank: one more than the number who earned strictly more.
            mine = MyRank(rank=int(await redis.zcount(board, f"({score}", "+inf")) + 1, credited_g=score)
        return LeaderboardOut(period=period, starts_at=start, items=items, me=mine)

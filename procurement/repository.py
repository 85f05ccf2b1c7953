"""Queries on tenders, bids, evaluations, and the labels and benchmarks bids and tenders rest on.
Repositories read and add; they never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.labels.models import Benchmark, Label
from procurement.models import Bid, Tender, TenderEvaluation


class TenderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def tender(self, tender_id: str) -> Tender | None:
        return await self.session.get(Tender, tender_id)

    async def tenders(self, *, after: tuple[datetime, str] | None, limit: int, agency: str | None = None,
                      category: str | None = None, open_at: datetime | None = None,
                      closed_at: datetime | None = None) -> Sequence[Tender]:
        """By deadline, then id. ``open_at``: only tenders still open then; ``closed_at``: only closed."""
        stmt = select(Tender)
        if agency is not None:
            stmt = stmt.where(Tender.agency_org == agency)
        if category is not None:
            # A prefix compared as text, not LIKE: "_" and "%" are no wildcards, and SQLite's LIKE
            # ignores case where PostgreSQL's does not.
            prefix = f"{category}."
            stmt = stmt.where(or_(Tender.category == category,
                                  func.substr(Tender.category, 1, len(prefix)) == prefix))
        if open_at is not None:
            stmt = stmt.where(Tender.deadline > open_at)
        if closed_at is not None:
            stmt = stmt.where(Tender.deadline <= closed_at)
        if after is not None:
            deadline, tender_id = after
            stmt = stmt.where(or_(Tender.deadline > deadline, and_(Tender.deadline == deadline, Tender.id > tender_id)))
        stmt = stmt.order_by(Tender.deadline, Tender.id).limit(limit)
        return (await self.session.scalars(stmt)).all()

    async def claim_award(self, tender_id: str, bid_id: str, *, at: datetime, by: str) -> bool:
        """Record the award unless one is already recorded (a conditional UPDATE, so two officers
        awarding at once cannot both win); True if this call recorded it."""
        result = await self.session.execute(
            update(Tender).where(Tender.id == tender_id, Tender.awarded_bid_id.is_(None))
            .values(awarded_bid_id=bid_id, awarded_at=at, awarded_by=by)
            .execution_options(synchronize_session=False))
        return bool(result.rowcount)

    async def bid_count(self, tender_id: str) -> int:
        return int(await self.session.scalar(select(func.count()).where(Bid.tender_id == tender_id)) or 0)

    async def bid(self, tender_id: str, bid_id: str) -> Bid | None:
        bid = await self.session.get(Bid, bid_id)
        return bid if bid is not None and bid.tender_id == tender_id else None

    async def supplier_bid(self, tender_id: str, supplier_org: str, *, for_update: bool = False) -> Bid | None:
        stmt = select(Bid).where(Bid.tender_id == tender_id, Bid.supplier_org == supplier_org)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).first()

    async def bids(self, tender_id: str, *, after: str | None = None, limit: int | None = None) -> Sequence[Bid]:
        stmt = select(Bid).where(Bid.tender_id == tender_id)
        if after is not None:
            stmt = stmt.where(Bid.id > after)
        stmt = stmt.order_by(Bid.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return (await self.session.scalars(stmt)).all()

    async def labels(self, label_ids: Sequence[str]) -> dict[str, Label]:
        unique = sorted(set(label_ids))
        if not unique:
            return {}
        rows = (await self.session.scalars(select(Label).where(Label.id.in_(unique)))).all()
        return {row.id: row for row in rows}

    async def benchmark(self, category: str) -> Benchmark | None:
        return await self.session.get(Benchmark, category)

    async def latest_evaluation(self, tender_id: str) -> TenderEvaluation | None:
        stmt = (select(TenderEvaluation).where(TenderEvaluation.tender_id == tender_id)
                .order_by(TenderEvaluation.id.desc()).limit(1))
        return (await self.session.scalars(stmt)).first()

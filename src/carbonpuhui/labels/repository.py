"""Queries for benchmarks, applications, labels and listings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import Integer, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.footprints.models import Product
from carbonpuhui.labels.models import Benchmark, CertificationEvent, Label, LabelApplication, Listing

# The public read path's statements, built once (bound parameters carry the values): building an
# ORM select and its cache key anew cost a tenth of a millisecond each, on every cache miss.
_CURRENT = select(Label).where(Label.gtin == bindparam("gtin"), Label.current.is_(True))
_PRODUCT_AND_CURRENT = (select(Product, Label).outerjoin(Label, and_(Label.gtin == Product.gtin, Label.current.is_(True)))
                        .where(Product.gtin == bindparam("gtin")))
_LISTINGS_OF_PRODUCT = (select(Listing).where(Listing.gtin == bindparam("gtin"))
                        .order_by(Listing.price_cents, Listing.id).limit(bindparam("limit", type_=Integer)))


def in_force(today: date):  # type: ignore[no-untyped-def]
    """A label that counts: current, not revoked, not past its validity."""
    return and_(Label.current.is_(True), Label.status == "active", Label.valid_until >= today)


class LabelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- benchmarks ---
    async def benchmark(self, category: str, *, lock: bool = False) -> Benchmark | None:
        """``lock``: hold the row until the transaction ends (PostgreSQL), so that no label is graded
        against a benchmark being replaced meanwhile, and two replacements never share a revision."""
        return await self.session.get(Benchmark, category, with_for_update=True if lock else None)

    async def benchmarks(self, *, after: str | None, limit: int) -> Sequence[Benchmark]:
        stmt = select(Benchmark).order_by(Benchmark.category).limit(limit)
        if after is not None:
            stmt = stmt.where(Benchmark.category > after)
        return (await self.session.scalars(stmt)).all()

    async def declared_units(self, category: str) -> list[str]:
        stmt = select(Product.declared_unit).where(Product.category == category).distinct()
        return sorted((await self.session.scalars(stmt)).all())

    async def verified_in_force(self, category: str, today: date) -> Sequence[Label]:
        stmt = select(Label).where(Label.category == category, Label.scheme == "verified", in_force(today))
        return (await self.session.scalars(stmt)).all()

    async def current_in_category(self, category: str) -> Sequence[Label]:
        stmt = select(Label).where(Label.category == category, Label.current.is_(True))
        return (await self.session.scalars(stmt)).all()

    async def set_grades(self, changes: Sequence[tuple[str, str]], revision: int) -> None:
        """One executemany for the whole batch."""
        if not changes:
            return
        stmt = (update(Label.__table__).where(Label.__table__.c.id == bindparam("label_id"))
                .values(grade=bindparam("new_grade"), benchmark_revision=revision))
        await self.session.execute(stmt, [{"label_id": i, "new_grade": g} for i, g in changes])

    # --- applications ---
    async def application(self, application_id: str) -> LabelApplication | None:
        return await self.session.get(LabelApplication, application_id)

    async def pending_for(self, gtin: str) -> LabelApplication | None:
        stmt = select(LabelApplication).where(LabelApplication.gtin == gtin, LabelApplication.status == "pending")
        return (await self.session.scalars(stmt.limit(1))).first()

    async def queue(self, body: str, status: str | None, *, after: tuple[datetime, str] | None,
                    limit: int) -> Sequence[LabelApplication]:
        """Applications a certification body may see: named to it, or open to any body while pending."""
        visible = or_(LabelApplication.certification_body == body,
                      and_(LabelApplication.certification_body.is_(None), LabelApplication.status == "pending"))
        stmt = select(LabelApplication).where(visible)
        if status is not None:
            stmt = stmt.where(LabelApplication.status == status)
        if after is not None:
            stmt = stmt.where(or_(LabelApplication.created_at > after[0],
                                  and_(LabelApplication.created_at == after[0], LabelApplication.id > after[1])))
        stmt = stmt.order_by(LabelApplication.created_at, LabelApplication.id).limit(limit)
        return (await self.session.scalars(stmt)).all()

    async def claim_decision(self, application_id: str, body: str, **values: object) -> bool:
        """Decide a pending application, atomically: of two bodies deciding at once exactly one wins."""
        result = await self.session.execute(
            update(LabelApplication)
            .where(LabelApplication.id == application_id, LabelApplication.status == "pending",
                   or_(LabelApplication.certification_body == body, LabelApplication.certification_body.is_(None)))
            .values(certification_body=body, **values).execution_options(synchronize_session=False))
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def withdraw(self, application_id: str, **values: object) -> bool:
        """Withdraw a pending application, atomically against a concurrent decision."""
        result = await self.session.execute(
            update(LabelApplication).where(LabelApplication.id == application_id, LabelApplication.status == "pending")
            .values(status="withdrawn", **values).execution_options(synchronize_session=False))
        return result.rowcount == 1  # type: ignore[attr-defined]

    # --- labels ---
    async def label(self, label_id: str) -> Label | None:
        return await self.session.get(Label, label_id)

    async def current(self, gtin: str) -> Label | None:
        return (await self.session.scalars(_CURRENT, {"gtin": gtin})).first()

    async def product_and_current(self, gtin: str) -> tuple[Product, Label | None] | None:
        """The product (None: no such product) and its current label, in one query (a unique
        partial index keeps at most one label current per product)."""
        row = (await self.session.execute(_PRODUCT_AND_CURRENT, {"gtin": gtin})).first()
        return None if row is None else (row[0], row[1])

    async def retire_current(self, gtin: str) -> None:
        await self.session.execute(update(Label).where(Label.gtin == gtin, Label.current.is_(True))
                                   .values(current=False).execution_options(synchronize_session="fetch"))

    async def events(self, kind: str, subject_id: str) -> Sequence[CertificationEvent]:
        stmt = (select(CertificationEvent).where(CertificationEvent.subject_kind == kind,
                                                 CertificationEvent.subject_id == subject_id)
                .order_by(CertificationEvent.id))
        return (await self.session.scalars(stmt)).all()

    async def alternatives(self, category: str, exclude: str, today: date,
                           limit: int) -> Sequence[tuple[Product, Label]]:
        """Listed products of the category with a label in force (the caller compares them)."""
        listed = select(Listing.gtin).where(Listing.gtin == Product.gtin).exists()
        stmt = (select(Product, Label).join(Label, Label.gtin == Product.gtin)
                .where(Product.category == category, Product.gtin != exclude, in_force(today), listed)
                .order_by(Label.grade, Product.gtin).limit(limit))
        return [(p, lab) for p, lab in (await self.session.execute(stmt)).all()]

    # --- listings ---
    async def listing(self, listing_id: str) -> Listing | None:
        return await self.session.get(Listing, listing_id)

    async def listing_of(self, merchant: str, gtin: str, store: str) -> Listing | None:
        stmt = select(Listing).where(Listing.merchant_org == merchant, Listing.gtin == gtin, Listing.store == store)
        return (await self.session.scalars(stmt)).first()

    async def listings_of_product(self, gtin: str, limit: int) -> Sequence[Listing]:
        return (await self.session.scalars(_LISTINGS_OF_PRODUCT, {"gtin": gtin, "limit": limit})).all()

    async def search_listings(self, *, today: date, category: str | None, max_grade: str | None,
                              merchant: str | None, after: tuple[str, str] | None,
                              limit: int) -> Sequence[tuple[Listing, Product, Label | None]]:
        """Listings, best grade first (unlabelled last), then by id; keyset paging on (grade, id)."""
        label = select(Label).where(in_force(today)).subquery()
        rank = func.coalesce(label.c.grade, "Z")
        stmt = (select(Listing, Product, label.c.id).join(Product, Product.gtin == Listing.gtin)
                .outerjoin(label, label.c.gtin == Listing.gtin))
        if category is not None:
            stmt = stmt.where(Product.category == category)
        if merchant is not None:
            stmt = stmt.where(Listing.merchant_org == merchant)
        if max_grade is not None:
            stmt = stmt.where(label.c.grade.is_not(None), label.c.grade <= max_grade)
        if after is not None:
            stmt = stmt.where(or_(rank > after[0], and_(rank == after[0], Listing.id > after[1])))
        rows = (await self.session.execute(stmt.order_by(rank, Listing.id).limit(limit))).all()
        ids = [label_id for _, _, label_id in rows if label_id is not None]
        labels = {}
        if ids:
            labels = {lab.id: lab for lab in (await self.session.scalars(select(Label).where(Label.id.in_(ids)))).all()}
        return [(listing, product, labels.get(label_id) if label_id else None) for listing, product, label_id in rows]

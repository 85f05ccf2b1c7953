"""Queries on products, inventory lines and verifier assignments. Never commits."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.factors.models import FactorVersion
from carbonpuhui.footprints.models import InventoryLine, Product, ProductVerifier


class ProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, gtin: str) -> Product | None:
        return await self.session.get(Product, gtin)

    async def list_owned(self, org: str, *, after: str | None, limit: int) -> Sequence[Product]:
        stmt = select(Product).where(Product.owner_org == org).order_by(Product.gtin).limit(limit)
        if after:
            stmt = stmt.where(Product.gtin > after)
        return (await self.session.scalars(stmt)).all()

    async def lines(self, gtin: str) -> Sequence[InventoryLine]:
        stmt = select(InventoryLine).where(InventoryLine.gtin == gtin).order_by(InventoryLine.position)
        return (await self.session.scalars(stmt)).all()

    async def claim_revision(self, gtin: str, expected: int, **values: object) -> bool:
        """Move the inventory from revision ``expected`` to the next, atomically: of two concurrent
        writers of one revision exactly one wins, on SQLite and PostgreSQL alike."""
        result = await self.session.execute(
            update(Product).where(Product.gtin == gtin, Product.inventory_revision == expected)
            .values(inventory_revision=expected + 1, **values).execution_options(synchronize_session=False))
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def lock(self, gtin: str) -> None:
        """Hold the product row's write lock until the transaction ends: a write that changes nothing,
        which locks the row on PostgreSQL and the database on SQLite alike (FOR UPDATE is PostgreSQL only)."""
        await self.session.execute(
            update(Product).where(Product.gtin == gtin).values(inventory_revision=Product.inventory_revision)
            .execution_options(synchronize_session=False))

    async def replace_lines(self, gtin: str, lines: Sequence[InventoryLine]) -> None:
        await self.session.execute(delete(InventoryLine).where(InventoryLine.gtin == gtin))
        self.session.add_all(lines)
        await self.session.flush()

    async def verifiers(self, gtin: str) -> list[str]:
        stmt = select(ProductVerifier.body_org).where(ProductVerifier.gtin == gtin).order_by(ProductVerifier.body_org)
        return list((await self.session.scalars(stmt)).all())

    async def remove_verifier(self, gtin: str, body: str) -> bool:
        result = await self.session.execute(
            delete(ProductVerifier).where(ProductVerifier.gtin == gtin, ProductVerifier.body_org == body))
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def factor_units(self, category: str) -> list[str]:
        """The units published factors of a category are expressed in."""
        stmt = (select(FactorVersion.unit).where(FactorVersion.category == category,
                                                 FactorVersion.status == "published").distinct())
        return sorted((await self.session.scalars(stmt)).all())

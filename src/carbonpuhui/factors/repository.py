"""Queries on factor versions. Repositories read and add; they never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from carbonpuhui.factors.models import FactorVersion


def _valid_on(day: date):  # type: ignore[no-untyped-def]
    return and_(FactorVersion.valid_from <= day,
                or_(FactorVersion.valid_to.is_(None), FactorVersion.valid_to >= day))


class FactorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, factor_id: str, version: int) -> FactorVersion | None:
        return await self.session.get(FactorVersion, (factor_id, version))

    async def versions(self, factor_id: str) -> Sequence[FactorVersion]:
        stmt = select(FactorVersion).where(FactorVersion.factor_id == factor_id).order_by(FactorVersion.version)
        return (await self.session.scalars(stmt)).all()

    async def max_version(self, factor_id: str) -> int:
        stmt = select(func.max(FactorVersion.version)).where(FactorVersion.factor_id == factor_id)
        return (await self.session.scalar(stmt)) or 0

    async def latest_published(self, factor_id: str) -> FactorVersion | None:
        stmt = (select(FactorVersion)
                .where(FactorVersion.factor_id == factor_id, FactorVersion.status == "published")
                .order_by(FactorVersion.version.desc()).limit(1))
        return (await self.session.scalars(stmt)).first()

    async def versions_of_many(self, ids: Sequence[str], chunk: int = 1000) -> list[FactorVersion]:
        """Every version of each of ``ids``, in chunks that stay under driver parameter limits."""
        rows: list[FactorVersion] = []
        unique = sorted(set(ids))
        for start in range(0, len(unique), chunk):
            stmt = select(FactorVersion).where(FactorVersion.factor_id.in_(unique[start:start + chunk]))
            rows.extend((await self.session.scalars(stmt)).all())
        return rows

    async def published_national_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` have a published national version (what ``supplements`` may name)."""
        if not ids:
            return set()
        stmt = select(FactorVersion.factor_id).where(
            FactorVersion.factor_id.in_(list(ids)), FactorVersion.tier == "national",
            FactorVersion.status == "published").distinct()
        return set((await self.session.scalars(stmt)).all())

    async def transition(self, factor_id: str, version: int, *, from_status: str, **values: object) -> bool:
        """Move one version out of ``from_status`` in a single conditional UPDATE, so that of two
        concurrent publishes (in any processes) exactly one succeeds."""
        stmt = (update(FactorVersion)
                .where(FactorVersion.factor_id == factor_id, FactorVersion.version == version,
                       FactorVersion.status == from_status)
                .values(**values).execution_options(synchronize_session=False))
        result = await self.session.execute(stmt)
        return result.rowcount == 1

    async def list_published(
        self, *, q: str | None, category: str | None, region: str | None, tier: str | None,
        valid_on: date | None, viewer_org: str | None, is_admin: bool, after: str | None, limit: int,
    ) -> Sequence[FactorVersion]:
        """The newest published version of each factor matching the filters, ordered by id."""
        conditions = [FactorVersion.status == "published"]
        if category:
            conditions.append(or_(FactorVersion.category == category,
                                  FactorVersion.category.startswith(category + ".", autoescape=True)))
        if region:
            conditions.append(FactorVersion.region == region)
        if tier:
            conditions.append(FactorVersion.tier == tier)
        if valid_on:
            conditions.append(_valid_on(valid_on))
        if not is_admin:
            # Enterprise factors are the enterprise's own data: only its members (and admins) see them.
            visible = FactorVersion.tier != "enterprise"
            if viewer_org:
                visible = or_(visible, FactorVersion.owner_org == viewer_org)
            conditions.append(visible)
        if after:
            conditions.append(FactorVersion.factor_id > after)
        newest = (select(FactorVersion.factor_id, func.max(FactorVersion.version).label("version"))
                  .where(*conditions).group_by(FactorVersion.factor_id).subquery())
        stmt: Select[tuple[FactorVersion]] = (
            select(FactorVersion)
            .join(newest, and_(FactorVersion.factor_id == newest.c.factor_id,
                               FactorVersion.version == newest.c.version))
            .order_by(FactorVersion.factor_id).limit(limit)
        )
        if q:
            # Text matches what is shown (the chosen version), not what an older version said.
            stmt = stmt.where(FactorVersion.search_text.contains(q.lower(), autoescape=True))
        return (await self.session.scalars(stmt)).all()

    def _tier_candidates(self, *, tier: str, category: str, unit: str, day: date,
                         regions: Sequence[str], org: str | None) -> list[Any]:
        conditions = [FactorVersion.status == "published", FactorVersion.tier == tier,
                      FactorVersion.category == category, FactorVersion.unit == unit,
                      FactorVersion.region.in_(list(regions)), _valid_on(day)]
        if tier == "enterprise":
            conditions.append(FactorVersion.owner_org == org)
        return conditions

    async def has_candidate(self, **where: Any) -> bool:
        stmt = select(FactorVersion.factor_id).where(*self._tier_candidates(**where)).limit(1)
        return (await self.session.scalar(stmt)) is not None

    async def best_in_tier(self, **where: Any) -> FactorVersion | None:
        """The tier's winner, chosen in the database (a category may hold many factors): of each
        factor the newest version valid that day; then the most specific region, the newest
        validity, the id."""
        regions: Sequence[str] = where["regions"]
        newer = aliased(FactorVersion)
        newest_valid = (select(func.max(newer.version))
                        .where(newer.factor_id == FactorVersion.factor_id, newer.status == "published",
                               newer.valid_from <= where["day"],
                               or_(newer.valid_to.is_(None), newer.valid_to >= where["day"]))
                        .scalar_subquery())
        specificity = case({region: rank for rank, region in enumerate(regions)}, value=FactorVersion.region)
        stmt = (select(FactorVersion)
                .where(*self._tier_candidates(**where), FactorVersion.version == newest_valid)
                .order_by(specificity, FactorVersion.valid_from.desc(), FactorVersion.factor_id)
                .limit(1))
        return (await self.session.scalars(stmt)).first()

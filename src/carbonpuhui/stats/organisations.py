"""Organisation profiles (division and industry, as statistics count them) and their sites.

Who sees a profile: admins, officers (they compile the statistics), and the organisation's own
members (any token whose ``org`` is it). Anyone else gets the same 404 as for an organisation that
has no profile, so probing names learns nothing. Services flush and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.auth import Principal
from carbonpuhui.errors import FieldError, NotFoundError, UnprocessableError
from carbonpuhui.factors.schemas import Names
from carbonpuhui.i18n import N_
from carbonpuhui.stats import divisions
from carbonpuhui.stats.api_schemas import Division, OrganisationIn, OrganisationOut, SiteIn, SiteOut
from carbonpuhui.stats.models import Organisation, Site

INVALID = N_("Some fields are invalid.")
NO_PROFILE = N_("Organisation {org} was not found: it has no profile (an administrator registers it).")


def utcnow() -> datetime:
    return datetime.now(UTC)


def division(code: str) -> Division:
    return Division(code=code, level=divisions.level(code), names=divisions.names(code))


def place_problems(division_code: str, industry: str) -> list[FieldError]:
    problems: list[FieldError] = []
    # A seat or site is in a city (or one of its counties): a province code would count it in no city
    # and make its figures collide with the province's own total.
    if not divisions.is_division(division_code) or divisions.level(division_code) == "province":
        problems.append(FieldError(field="division_code",
                                   message=N_("A city or county code in force (GB/T 2260), e.g. 370602.")))
    if industry not in divisions.INDUSTRIES:
        problems.append(FieldError(field="industry", message=N_("Unknown industry; see the API documentation.")))
    return problems


def _no_nul(field: str, *texts: str) -> list[FieldError]:
    if any("\x00" in t for t in texts):  # PostgreSQL text cannot hold U+0000
        return [FieldError(field=field, message=N_("Must not contain the NUL character."))]
    return []


class OrganisationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, org: str) -> Organisation | None:
        return await self.session.get(Organisation, org)

    async def page(self, *, after: str | None, limit: int, area: str | None = None,
                   industry: str | None = None) -> Sequence[Organisation]:
        stmt = select(Organisation)
        if area is not None:
            # A prefix compared as text (a province: 2 digits, a city: 4), as divisions.contains does.
            width = {"province": 2, "city": 4}.get(divisions.level(area), 6)
            stmt = stmt.where(func.substr(Organisation.division_code, 1, width) == area[:width])
        if industry is not None:
            stmt = stmt.where(Organisation.industry == industry)
        if after is not None:
            stmt = stmt.where(Organisation.org > after)
        return (await self.session.scalars(stmt.order_by(Organisation.org).limit(limit))).all()

    async def site(self, site_id: str) -> Site | None:
        return await self.session.get(Site, site_id)

    async def sites(self, org: str, *, after: str | None, limit: int) -> Sequence[Site]:
        stmt = select(Site).where(Site.org == org)
        if after is not None:
            stmt = stmt.where(Site.id > after)
        return (await self.session.scalars(stmt.order_by(Site.id).limit(limit))).all()


class OrganisationService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repo = OrganisationRepository(session)

    # --- who may see what -------------------------------------------------------------------

    @staticmethod
    def may_read(org: str, viewer: Principal) -> bool:
        return viewer.has("admin", "officer") or (bool(viewer.org) and viewer.org == org)

    @staticmethod
    def may_add_site(org: str, viewer: Principal) -> bool:
        return viewer.has("admin") or (viewer.has("merchant") and bool(viewer.org) and viewer.org == org)

    @staticmethod
    def _not_found(org: str) -> NotFoundError:
        return NotFoundError(NO_PROFILE, reason="organisation_not_found", org=org)

    async def readable(self, org: str, viewer: Principal) -> Organisation:
        row = await self.repo.get(org) if self.may_read(org, viewer) else None
        if row is None:
            raise self._not_found(org)
        return row

    # --- profiles ----------------------------------------------------------------------------

    async def put(self, org: str, data: OrganisationIn, actor: Principal) -> tuple[Organisation, bool]:
        """Create or replace the profile; True when it was created."""
        problems = _no_nul("org", org) + place_problems(data.division_code, data.industry)
        problems += _no_nul("names", data.names.zh_hans, data.names.zh_hant, data.names.en)
        if problems:
            raise UnprocessableError(INVALID, errors=problems)
        row = await self.repo.get(org)
        created = row is None
        if row is None:
            row = Organisation(org=org)
            self.session.add(row)
        row.names = msgspec.to_builtins(data.names)
        row.division_code = data.division_code
        row.industry = data.industry
        row.updated_at = utcnow()
        row.updated_by = actor.sub
        await self.session.flush()
        return row, created

    async def page(self, *, after: str | None, limit: int, area: str | None,
                   industry: str | None) -> Sequence[Organisation]:
        problems = []
        if area is not None and not divisions.is_division(area):
            problems.append(FieldError(field="division", message=N_("Not a GB/T 2260 division code in force, e.g. 370602.")))
        if industry is not None and industry not in divisions.INDUSTRIES:
            problems.append(FieldError(field="industry", message=N_("Unknown industry; see the API documentation.")))
        if problems:
            raise UnprocessableError(INVALID, errors=problems)
        return await self.repo.page(after=after, limit=limit, area=area, industry=industry)

    @staticmethod
    def out(row: Organisation) -> OrganisationOut:
        code = row.division_code
        return OrganisationOut(
            org=row.org, names=msgspec.convert(row.names, Names), division_code=code, division=division(code),
            city=division(divisions.city_of(code)), province=division(divisions.province_of(code)),
            industry=row.industry, industry_names=divisions.industry_names(row.industry), updated_at=row.updated_at)

    # --- sites -------------------------------------------------------------------------------

    async def add_site(self, org: str, data: SiteIn, actor: Principal) -> Site:
        owner = await self.repo.get(org) if self.may_add_site(org, actor) else None
        if owner is None:
            raise self._not_found(org)
        problems = _no_nul("name", data.name) + place_problems(data.division_code, data.industry)
        if problems:
            raise UnprocessableError(INVALID, errors=problems)
        row = Site(id=str(uuid.uuid4()), org=owner.org, name=data.name, division_code=data.division_code,
                   industry=data.industry, created_at=utcnow(), created_by=actor.sub)
        self.session.add(row)
        await self.session.flush()
        return row

    async def sites(self, org: str, viewer: Principal, *, after: str | None, limit: int) -> Sequence[Site]:
        owner = await self.readable(org, viewer)
        return await self.repo.sites(owner.org, after=after, limit=limit)

    @staticmethod
    def site_out(row: Site) -> SiteOut:
        code = row.division_code
        return SiteOut(id=row.id, org=row.org, name=row.name, division_code=code, division=division(code),
                       city=division(divisions.city_of(code)), industry=row.industry,
                       industry_names=divisions.industry_names(row.industry), created_at=row.created_at)


async def site_of(session: AsyncSession, org: str, site_id: str) -> Site | None:
    """The site, if it belongs to ``org`` (a product may only name its owner's sites)."""
    row = await session.get(Site, site_id)
    return row if row is not None and row.org == org else None

"""Factor database rules: drafts, publication, immutability, resolution. Never commits."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec
import pycountry
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.auth import Principal
from carbonpuhui.errors import ConflictError, FieldError, NotFoundError, UnprocessableError
from carbonpuhui.factors.models import FactorVersion
from carbonpuhui.factors.repository import FactorRepository
from carbonpuhui.factors.schemas import (
    DataQuality,
    FactorBody,
    FactorCreate,
    FactorOut,
    Lognormal,
    Names,
    Normal,
    PassedOver,
    Resolution,
    Triangular,
    Uncertainty,
    Uniform,
)
from carbonpuhui.i18n import N_, translate

TIER_ORDER = ("enterprise", "provincial", "national", "default")
GLOBAL_REGION = "GLO"
_MAX_DIGITS = 30  # per side of the point (as the message says): fits the 64-character DecimalText column
_MAX_VERSION = 2**31 - 1  # versions are a 32-bit INTEGER on PostgreSQL


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- validation beyond the schema ---------------------------------------------------------------


def region_known(code: str) -> bool:
    if code == GLOBAL_REGION:
        return True
    if "-" in code:
        return pycountry.subdivisions.get(code=code) is not None
    return pycountry.countries.get(alpha_2=code) is not None


def region_chain(code: str) -> list[str]:
    """The region and the regions containing it, most specific first (CN-SD -> CN-SD, CN)."""
    chain = [code]
    if "-" in code:
        sub = pycountry.subdivisions.get(code=code)
        while sub is not None and getattr(sub, "parent_code", None):
            chain.append(sub.parent_code)
            sub = pycountry.subdivisions.get(code=sub.parent_code)
        chain.append(code.split("-", 1)[0])
    return chain


def fits(value: Decimal) -> bool:
    """A finite decimal with at most 30 digits either side of the point: stored written out in full
    in a 64-character column (1E+999999 would be a million digits)."""
    return value.is_finite() and value.adjusted() < _MAX_DIGITS and value.as_tuple().exponent >= -_MAX_DIGITS  # type: ignore[operator]


def plain(value: Decimal) -> str:
    """A decimal as plain digits ("0.0000001", "500"), never in exponent form."""
    return format(value, "f")


# Words that are routes under /v1/factors/, so they can never be factor ids.
RESERVED_IDS = frozenset({"resolve", "import"})
RESERVED_MESSAGE = N_("This id is reserved; choose another.")


def body_problems(body: FactorBody) -> list[FieldError]:
    """Cross-field rules a schema cannot express. Messages are message ids (translated later)."""
    problems: list[FieldError] = []

    def bad(field: str, message: str) -> None:
        problems.append(FieldError(field=field, message=message))

    value = body.kgco2e_per_unit
    if not value.is_finite():
        bad("kgco2e_per_unit", N_("Must be a finite number."))
        return problems
    if not fits(value):
        bad("kgco2e_per_unit", N_("Use at most 30 digits before and 30 after the decimal point."))
        return problems
    parameters = [getattr(body.uncertainty, name) for name in ("sd", "min", "mode", "max")
                  if isinstance(getattr(body.uncertainty, name, None), Decimal)]
    if not all(p.is_finite() and fits(p) for p in parameters):
        bad("uncertainty", N_("Use at most 30 digits before and 30 after the decimal point."))
        return problems
    # PostgreSQL text cannot hold U+0000 (the patterned fields exclude it already).
    free_text = {"names": (body.names.zh_hans, body.names.zh_hant, body.names.en), "source": (body.source,),
                 "owner_org": (body.owner_org or "",), "version_note": (body.version_note or "",)}
    for field, texts in free_text.items():
        if any("\x00" in text for text in texts):
            bad(field, N_("Must not contain the NUL character."))
    if not region_known(body.region):
        bad("region", N_("Unknown ISO 3166 region code."))
    elif body.tier == "national" and ("-" in body.region or body.region == GLOBAL_REGION):
        bad("region", N_("A national factor needs a country code, not a subdivision."))
    elif body.tier == "provincial" and "-" not in body.region:
        bad("region", N_("A provincial factor needs a subdivision code such as CN-SD."))
    if body.tier == "enterprise" and not body.owner_org:
        bad("owner_org", N_("An enterprise factor needs its owner organisation."))
    if body.tier != "enterprise" and body.owner_org:
        bad("owner_org", N_("Only enterprise factors have an owner organisation."))
    if body.valid_to is not None and body.valid_to < body.valid_from:
        bad("valid_to", N_("Must not be before valid_from."))
    u = body.uncertainty
    if isinstance(u, Lognormal) and value <= 0:
        bad("uncertainty", N_("A lognormal factor needs a positive value."))
    if isinstance(u, Normal) and (not u.sd.is_finite() or u.sd < 0):
        bad("uncertainty", N_("The standard deviation must be zero or more."))
    # NaN bounds fail the ordering rules (comparing a NaN Decimal would raise instead).
    if isinstance(u, Triangular):
        if not all(x.is_finite() for x in (u.min, u.mode, u.max)) \
                or not (u.min <= u.mode <= u.max) or not (u.min <= value <= u.max):
            bad("uncertainty", N_("Needs min <= mode <= max, with the value inside [min, max]."))
    if isinstance(u, Uniform) and (not (u.min.is_finite() and u.max.is_finite()) or not u.min <= value <= u.max):
        bad("uncertainty", N_("Needs min <= value <= max."))
    return problems


# What makes a factor the factor it is: a new version may change its value, validity, source or
# uncertainty, never whose it is or what it measures (that is a new factor id).
IDENTITY_FIELDS = ("tier", "owner_org", "category", "unit", "region")
SUPPLEMENTS_MESSAGE = N_("Must name a national factor that has a published version.")


def identity_problems(body: FactorBody, previous: FactorVersion | FactorBody) -> list[FieldError]:
    return [FieldError(field=name, message=N_("A new version cannot change this; create a new factor id."))
            for name in IDENTITY_FIELDS if getattr(body, name) != getattr(previous, name)]


def enterprise_of(viewer: Principal | None) -> str | None:
    """The enterprise a caller acts for: the ``org`` of a merchant token (enterprises are merchants).
    Another role's ``org`` (a certification body, an agency) gives no access to enterprise data."""
    if viewer is None or not viewer.org or not viewer.has("merchant"):
        return None
    return viewer.org


def content_hash(body: FactorBody) -> str:
    """The identity of a version's content, independent of id, status and key order."""
    fields = msgspec.structs.asdict(body)
    fields.pop("id", None)
    canonical = msgspec.json.encode(fields, order="sorted")
    return hashlib.sha256(canonical).hexdigest()


def _search_text(factor_id: str, body: FactorBody) -> str:
    parts = [factor_id, body.names.zh_hans, body.names.zh_hant, body.names.en, body.category, body.source]
    return " ".join(parts).lower()


def to_out(row: FactorVersion) -> FactorOut:
    return FactorOut(
        id=row.factor_id, version=row.version, status=row.status,  # type: ignore[arg-type]
        names=msgspec.convert(row.names, Names),
        category=row.category, unit=row.unit, kgco2e_per_unit=plain(row.kgco2e_per_unit),
        gwp_basis=row.gwp_basis, region=row.region, tier=row.tier,  # type: ignore[arg-type]
        owner_org=row.owner_org, valid_from=row.valid_from, valid_to=row.valid_to, source=row.source,
        uncertainty=msgspec.convert(row.uncertainty, Uncertainty),  # type: ignore[arg-type]
        data_quality=msgspec.convert(row.data_quality, DataQuality) if row.data_quality else None,
        supplements=row.supplements, version_note=row.version_note,
        created_at=row.created_at, published_at=row.published_at, retired_at=row.retired_at,
    )


def new_version_row(factor_id: str, version: int, body: FactorBody, actor: str, status: str = "draft") -> FactorVersion:
    now = utcnow()
    return FactorVersion(
        factor_id=factor_id, version=version, status=status,
        names=msgspec.to_builtins(body.names),
        category=body.category, unit=body.unit, kgco2e_per_unit=Decimal(plain(body.kgco2e_per_unit)),
        gwp_basis=body.gwp_basis, region=body.region, tier=body.tier, owner_org=body.owner_org,
        valid_from=body.valid_from, valid_to=body.valid_to, source=body.source,
        uncertainty=msgspec.to_builtins(body.uncertainty),
        data_quality=msgspec.to_builtins(body.data_quality) if body.data_quality else None,
        supplements=body.supplements, version_note=body.version_note,
        search_text=_search_text(factor_id, body), content_hash=content_hash(body),
        created_at=now, created_by=actor,
        published_at=now if status == "published" else None,
        published_by=actor if status == "published" else None,
    )


def body_of(create: FactorCreate) -> FactorBody:
    fields = msgspec.structs.asdict(create)
    fields.pop("id")
    return FactorBody(**fields)


class FactorService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repo = FactorRepository(session)

    async def _check(self, body: FactorBody, *, previous: FactorVersion | None = None) -> None:
        problems = body_problems(body)
        if previous is not None:
            problems += identity_problems(body, previous)
        if body.supplements and not await self.repo.published_national_ids([body.supplements]):
            problems.append(FieldError(field="supplements", message=SUPPLEMENTS_MESSAGE))
        if problems:
            raise UnprocessableError(N_("Some fields are invalid."), errors=problems)

    async def _insert(self, row: FactorVersion) -> FactorVersion:
        # Add inside the savepoint: a concurrent writer that took this (id, version) first makes
        # this insert fail alone, and the session stays usable for the 409.
        try:
            async with self.session.begin_nested():
                self.session.add(row)
                await self.session.flush()
        except IntegrityError:
            raise ConflictError(N_("Factor {id} version {version} already exists."),
                                reason="version_exists", id=row.factor_id, version=row.version) from None
        return row

    async def create(self, data: FactorCreate, actor: Principal) -> FactorVersion:
        if data.id in RESERVED_IDS:
            raise UnprocessableError(N_("Some fields are invalid."), errors=[
                FieldError(field="id", message=RESERVED_MESSAGE)])
        body = body_of(data)
        await self._check(body)
        if await self.repo.max_version(data.id):
            raise ConflictError(N_("Factor {id} already exists; add a version instead."),
                                reason="factor_exists", id=data.id)
        return await self._insert(new_version_row(data.id, 1, body, actor.sub))

    async def add_version(self, factor_id: str, body: FactorBody, actor: Principal) -> FactorVersion:
        latest = await self.repo.max_version(factor_id)
        if not latest:
            raise NotFoundError(N_("Factor {id} was not found."), reason="factor_not_found", id=factor_id)
        await self._check(body, previous=await self.repo.get(factor_id, latest))
        return await self._insert(new_version_row(factor_id, latest + 1, body, actor.sub))

    async def _get(self, factor_id: str, version: int, viewer: Principal | None = None,
                   *, check_visible: bool = False) -> FactorVersion:
        # A version outside the column's range cannot exist (and PostgreSQL would refuse the query).
        row = await self.repo.get(factor_id, version) if 1 <= version <= _MAX_VERSION else None
        if row is None or (check_visible and not self.visible(row, viewer)):
            raise NotFoundError(N_("Factor {id} version {version} was not found."),
                                reason="factor_not_found", id=factor_id, version=version)
        return row

    async def publish(self, factor_id: str, version: int, actor: Principal) -> FactorVersion:
        row = await self._get(factor_id, version)
        if row.status == "draft" and row.supplements and not await self.repo.published_national_ids([row.supplements]):
            raise ConflictError(N_("Publish the national factor {national} first: this factor supplements it."),
                                reason="supplements_unpublished", national=row.supplements)
        return await self._transition(factor_id, version, "draft", "published", N_(
            "Factor {id} version {version} is {status}; only drafts can be published."), "not_a_draft",
            published_at=utcnow(), published_by=actor.sub)

    async def retire(self, factor_id: str, version: int, actor: Principal) -> FactorVersion:
        return await self._transition(factor_id, version, "published", "retired", N_(
            "Factor {id} version {version} is {status}; only published versions can be retired."), "not_published",
            retired_at=utcnow(), retired_by=actor.sub)

    async def _transition(self, factor_id: str, version: int, from_status: str, to_status: str,
                          refusal: str, reason: str, **values: object) -> FactorVersion:
        row = await self._get(factor_id, version)
        moved = row.status == from_status and await self.repo.transition(
            factor_id, version, from_status=from_status, status=to_status, **values)
        await self.session.refresh(row)
        if not moved:
            raise ConflictError(refusal, reason=reason, id=factor_id, version=version, status=row.status)
        return row

    @staticmethod
    def visible(row: FactorVersion, viewer: Principal | None) -> bool:
        """Drafts are the administrators'; enterprise factors their owners' (and administrators')."""
        is_admin = viewer is not None and viewer.has("admin")
        if row.status == "draft" and not is_admin:
            return False
        if row.tier == "enterprise" and not is_admin:
            return enterprise_of(viewer) == row.owner_org
        return True

    async def search(self, viewer: Principal | None, *, q: str | None, category: str | None, region: str | None,
                     tier: str | None, valid_on: date | None, after: str | None, limit: int) -> Sequence[FactorVersion]:
        """Published factors the viewer may see (the newest matching version of each), by id."""
        return await self.repo.list_published(
            q=q, category=category, region=region, tier=tier, valid_on=valid_on,
            viewer_org=enterprise_of(viewer), is_admin=viewer is not None and viewer.has("admin"),
            after=after, limit=limit)

    async def get_latest(self, factor_id: str, viewer: Principal | None) -> FactorVersion:
        row = await self.repo.latest_published(factor_id)
        if row is None or not self.visible(row, viewer):
            raise NotFoundError(N_("Factor {id} has no published version."), reason="factor_not_found",
                                id=factor_id)
        return row

    async def get_version(self, factor_id: str, version: int, viewer: Principal | None) -> FactorVersion:
        return await self._get(factor_id, version, viewer, check_visible=True)

    async def versions(self, factor_id: str, viewer: Principal | None) -> list[FactorVersion]:
        rows = [r for r in await self.repo.versions(factor_id) if self.visible(r, viewer)]
        if not rows:
            raise NotFoundError(N_("Factor {id} was not found."), reason="factor_not_found", id=factor_id)
        return rows

    async def resolve(self, *, category: str, unit: str, region: str, day: date, org: str | None,
                      locale: str) -> Resolution:
        """Most specific published factor valid on ``day``: enterprise (own) > provincial > national
        > default; within a tier the most specific region, then the newest validity, then version."""
        if not region_known(region):
            raise UnprocessableError(N_("Some fields are invalid."), errors=[
                FieldError(field="region", message=translate(N_("Unknown ISO 3166 region code."), locale))])
        chain = region_chain(region) + [GLOBAL_REGION]
        chosen: FactorVersion | None = None
        passed: list[PassedOver] = []
        for tier in TIER_ORDER:
            where = {"tier": tier, "category": category, "unit": unit, "day": day, "regions": chain, "org": org}
            if tier == "enterprise" and not org:
                why = translate(N_("No organisation was given, so enterprise factors were not considered."), locale)
                passed.append(PassedOver(tier=tier, code="no_organisation", why=why))
            elif chosen is not None:
                if await self.repo.has_candidate(**where):
                    passed.append(PassedOver(tier=tier, code="outranked", why=translate(
                        N_("Outranked by the {tier} factor {id}."), locale, tier=chosen.tier, id=chosen.factor_id)))
            # Of one factor, the newest version valid that day supersedes older ones (a correction
            # wins over what it corrects); across factors, the most specific region, then the
            # newest validity.
            elif (best := await self.repo.best_in_tier(**where)) is not None:
                chosen = best
            else:
                why = translate(N_("No published {tier} factor for {category} in {unit} covers {region} on {date}."),
                                locale, tier=tier, category=category, unit=unit, region=region, date=day.isoformat())
                passed.append(PassedOver(tier=tier, code="no_match", why=why))
        if chosen is None:
            raise NotFoundError(
                N_("No published factor for {category} in {unit} covers {region} on {date}."),
                reason="no_factor", category=category, unit=unit, region=region, date=day.isoformat(),
                extra={"passed_over": msgspec.to_builtins(passed)},
            )
        return Resolution(factor=to_out(chosen), tier=chosen.tier, passed_over=passed)  # type: ignore[arg-type]


__all__ = ["FactorService", "body_of", "body_problems", "content_hash", "to_out"]

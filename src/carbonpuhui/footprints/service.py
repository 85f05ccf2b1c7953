"""Products, inventories and footprints: who may see what, validation, factor pinning, results.
Services flush and never commit; the request's unit of work commits."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

import scoring
from carbonpuhui.auth import Principal
from carbonpuhui.errors import ConflictError, FieldError, ForbiddenError, NotFoundError, UnprocessableError
from carbonpuhui.factors.models import FactorVersion
from carbonpuhui.factors.repository import FactorRepository
from carbonpuhui.factors.schemas import (
    DataQuality,
    Lognormal,
    Names,
    Normal,
    Triangular,
    Uncertainty,
    Uniform,
)
from carbonpuhui.factors.service import FactorService, enterprise_of, fits, plain, region_known
from carbonpuhui.footprints import calculation
from carbonpuhui.footprints.gtin import InvalidGTIN, normalise_gtin
from carbonpuhui.footprints.models import InventoryLine, Product, ProductVerifier
from carbonpuhui.footprints.repository import ProductRepository
from carbonpuhui.footprints.schemas import (
    FactorRef,
    Footprint,
    Hotspot,
    InventoryIn,
    InventoryLineIn,
    InventoryLineOut,
    InventoryOut,
    LineResult,
    MonteCarlo,
    ProductCreate,
    ProductOut,
    ProductUpdate,
    RefreshResult,
    StageHotspot,
    StaleFactor,
)
from carbonpuhui.footprints.units import UnitError, conversion_factor, known_unit
from carbonpuhui.i18n import N_, translate
from carbonpuhui.stats.organisations import site_of


def utcnow() -> datetime:
    return datetime.now(UTC)


def gtin14(text: str) -> str:
    """A GTIN from a path or body, as 14 digits; a malformed one is a 422 naming the field."""
    try:
        return normalise_gtin(text)
    except InvalidGTIN as exc:
        message = (N_("The GTIN's check digit is wrong.") if exc.code == "gtin_check_digit"
                   else N_("A GTIN has 8, 12, 13 or 14 digits."))
        raise UnprocessableError(N_("Some fields are invalid."), reason=exc.code,
                                 errors=[FieldError(field="gtin", message=message)]) from None


def number_text(value: float, digits: int = 6) -> str:
    """A Monte Carlo statistic as plain digits, to ``digits`` significant figures."""
    if value == 0 or value != value:
        return "0"
    return plain(Decimal(f"{value:.{digits}g}"))


def default_reference_period(today: date) -> tuple[date, date]:
    """The last full calendar year: what an annual footprint usually describes."""
    return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)


def activity_problems(line: InventoryLineIn, field: str) -> list[FieldError]:
    """Rules on a line's quantity, direct value and activity uncertainty (in the line's unit)."""
    problems: list[FieldError] = []

    def bad(name: str, message: str) -> None:
        problems.append(FieldError(field=f"{field}.{name}", message=message))

    if not fits(line.quantity):
        bad("quantity", N_("Use at most 30 digits before and 30 after the decimal point."))
        return problems
    if line.quantity < 0:
        bad("quantity", N_("Must be zero or more."))
    if line.direct_kgco2e is not None and not fits(line.direct_kgco2e):
        bad("direct_kgco2e", N_("Use at most 30 digits before and 30 after the decimal point."))
    if "\x00" in line.description:
        bad("description", N_("Must not contain the NUL character."))
    chosen = [x is not None for x in (line.factor_id, line.factor_category, line.direct_kgco2e)]
    if sum(chosen) != 1:
        bad("factor_id", N_("Give exactly one of factor_id, factor_category or direct_kgco2e."))
    if line.factor_version is not None and line.factor_id is None:
        bad("factor_version", N_("A version needs a factor_id."))
    u = line.activity_uncertainty
    q = line.quantity
    if isinstance(u, Lognormal) and q <= 0:
        bad("activity_uncertainty", N_("A lognormal amount needs a positive quantity."))
    if isinstance(u, Normal) and (not fits(u.sd) or u.sd < 0):
        bad("activity_uncertainty", N_("The standard deviation must be zero or more."))
    if isinstance(u, Triangular) and (not all(fits(x) for x in (u.min, u.mode, u.max))
                                      or not (u.min <= u.mode <= u.max) or not (u.min <= q <= u.max)):
        bad("activity_uncertainty", N_("Needs min <= mode <= max, with the value inside [min, max]."))
    if isinstance(u, Uniform) and (not (fits(u.min) and fits(u.max)) or not u.min <= q <= u.max):
        bad("activity_uncertainty", N_("Needs min <= value <= max."))
    return problems


class ProductService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repo = ProductRepository(session)
        self.factors = FactorService(session)
        self.factor_repo = FactorRepository(session)

    # --- who may see what -------------------------------------------------------------------

    @staticmethod
    def is_owner(product: Product, viewer: Principal | None) -> bool:
        return enterprise_of(viewer) == product.owner_org

    async def may_read_inventory(self, product: Product, viewer: Principal) -> bool:
        """The owner, a verifier of a certification body assigned to the product, administrators."""
        if viewer.has("admin") or self.is_owner(product, viewer):
            return True
        return viewer.has("verifier") and bool(viewer.org) and viewer.org in await self.repo.verifiers(product.gtin)

    async def _product(self, gtin: str) -> Product:
        product = await self.repo.get(gtin14(gtin))
        if product is None:
            raise NotFoundError(N_("Product {gtin} was not found."), reason="product_not_found", gtin=gtin)
        return product

    async def owned(self, gtin: str, viewer: Principal) -> Product:
        """The product, if the viewer's organisation owns it. Anyone else learns only that it is
        not theirs to change (404: whether another organisation has it is nobody's business here)."""
        product = await self._product(gtin)
        if not self.is_owner(product, viewer):
            raise NotFoundError(N_("Product {gtin} was not found."), reason="product_not_found", gtin=gtin)
        return product

    async def readable(self, gtin: str, viewer: Principal) -> Product:
        product = await self._product(gtin)
        if not await self.may_read_inventory(product, viewer):
            raise NotFoundError(N_("Product {gtin} was not found."), reason="product_not_found", gtin=gtin)
        return product

    # --- products ----------------------------------------------------------------------------

    async def create(self, data: ProductCreate, actor: Principal) -> Product:
        org = enterprise_of(actor)
        if org is None:
            raise ForbiddenError(N_("A merchant token with an organisation (org) is needed."), reason="no_organisation")
        gtin = gtin14(data.gtin)
        problems: list[FieldError] = []
        if not fits(data.declared_units_per_item) or data.declared_units_per_item <= 0:
            problems.append(FieldError(field="declared_units_per_item", message=N_("Must be a positive number.")))
        if not region_known(data.region):
            problems.append(FieldError(field="region", message=N_("Unknown ISO 3166 region code.")))
        texts = (data.names.zh_hans, data.names.zh_hant, data.names.en)
        if any("\x00" in t for t in texts):
            problems.append(FieldError(field="names", message=N_("Must not contain the NUL character.")))
        if data.site_id is not None:
            problems += await self._site_problems(org, data.site_id)
        if problems:
            raise UnprocessableError(N_("Some fields are invalid."), errors=problems)
        existing = await self.repo.get(gtin)
        if existing is not None:
            raise self._taken(existing, org, gtin)
        row = Product(gtin=gtin, owner_org=org, names=msgspec.to_builtins(data.names), category=data.category,
                      declared_unit=data.declared_unit,
                      declared_units_per_item=Decimal(plain(data.declared_units_per_item)),
                      region=data.region, created_at=utcnow(), created_by=actor.sub, inventory_revision=0,
                      site_id=data.site_id)
        try:
            async with self.session.begin_nested():  # a concurrent registration of the GTIN fails alone
                self.session.add(row)
                await self.session.flush()
        except IntegrityError:
            raise self._taken(await self.repo.get(gtin), org, gtin) from None
        return row

    async def _site_problems(self, org: str, site_id: str) -> list[FieldError]:
        # Another organisation's site reads as unknown: its site ids are nobody else's business.
        if "\x00" in site_id or await site_of(self.session, org, site_id) is None:  # U+0000: no id of ours
            return [FieldError(field="site_id", message=N_("Not a site of your organisation."))]
        return []

    async def update(self, gtin: str, data: ProductUpdate, actor: Principal) -> Product:
        product = await self.owned(gtin, actor)
        if data.site_id is not msgspec.UNSET:
            if data.site_id is not None and (problems := await self._site_problems(product.owner_org, data.site_id)):
                raise UnprocessableError(N_("Some fields are invalid."), errors=problems)
            product.site_id = data.site_id
        await self.session.flush()
        return product

    @staticmethod
    def _taken(existing: Product | None, org: str, gtin: str) -> ConflictError:
        if existing is not None and existing.owner_org != org:
            return ConflictError(N_("GTIN {gtin} is registered by another organisation."),
                                 reason="gtin_owned_by_another_organisation", gtin=gtin)
        return ConflictError(N_("Product {gtin} already exists."), reason="product_exists", gtin=gtin)

    async def list_owned(self, viewer: Principal, *, after: str | None, limit: int) -> list[Product]:
        org = enterprise_of(viewer)
        return [] if org is None else list(await self.repo.list_owned(org, after=after, limit=limit))

    async def out(self, product: Product) -> ProductOut:
        return ProductOut(
            gtin=product.gtin, names=msgspec.convert(product.names, Names), category=product.category,
            declared_unit=product.declared_unit, declared_units_per_item=plain(product.declared_units_per_item),
            region=product.region, owner_org=product.owner_org, inventory_revision=product.inventory_revision,
            verifiers=await self.repo.verifiers(product.gtin), created_at=product.created_at, site_id=product.site_id)

    # --- verifiers ---------------------------------------------------------------------------

    async def assign_verifier(self, gtin: str, body: str, actor: Principal) -> Product:
        product = await self.owned(gtin, actor)
        if "\x00" in body:  # PostgreSQL text cannot hold U+0000
            raise UnprocessableError(N_("Some fields are invalid."), errors=[
                FieldError(field="certification_body", message=N_("Must not contain the NUL character."))])
        if body not in await self.repo.verifiers(product.gtin):
            self.session.add(ProductVerifier(gtin=product.gtin, body_org=body, assigned_at=utcnow(),
                                             assigned_by=actor.sub))
            try:
                async with self.session.begin_nested():
                    await self.session.flush()
            except IntegrityError:
                pass  # assigned concurrently: the same outcome
        return product

    async def unassign_verifier(self, gtin: str, body: str, actor: Principal) -> Product:
        product = await self.owned(gtin, actor)
        if not await self.repo.remove_verifier(product.gtin, body):
            raise NotFoundError(N_("{body} is not assigned to this product."), reason="verifier_not_assigned", body=body)
        return product

    # --- inventories -------------------------------------------------------------------------

    async def _pin(self, line: InventoryLineIn, field: str, product: Product, day: date, viewer: Principal,
                   locale: str) -> tuple[FactorVersion | None, list[FieldError]]:
        """The exact factor version a line uses: the one asked for, or the newest published one
        valid on the reference date (by id), or what resolution picks (by category)."""
        def bad(name: str, message: str, **params: object) -> tuple[None, list[FieldError]]:
            return None, [FieldError(field=f"{field}.{name}", message=translate(message, locale, **params))]

        if line.direct_kgco2e is not None:
            return None, []
        if line.factor_category is not None:
            return await self._resolve_category(line, field, product, day, viewer, locale)
        assert line.factor_id is not None
        if line.factor_version is not None:
            row = await self.factor_repo.get(line.factor_id, line.factor_version)
            if row is None or row.status == "draft" or not FactorService.visible(row, viewer):
                return bad("factor_version", N_("Factor {id} version {version} was not found."),
                           id=line.factor_id, version=line.factor_version)
            if row.status == "retired":
                return bad("factor_version", N_("Factor {id} version {version} is retired; use a current version."),
                           id=line.factor_id, version=line.factor_version)
            return row, []
        candidates = [r for r in await self.factor_repo.versions(line.factor_id)
                      if r.status == "published" and FactorService.visible(r, viewer)]
        if not candidates:
            return bad("factor_id", N_("Factor {id} has no published version."), id=line.factor_id)
        newest = _newest_valid(candidates, day)
        if newest is None:
            return bad("factor_id", N_("No published version of factor {id} is valid on {date}."),
                       id=line.factor_id, date=day.isoformat())
        return newest, []

    async def _resolve_category(self, line: InventoryLineIn, field: str, product: Product, day: date,
                                viewer: Principal, locale: str) -> tuple[FactorVersion | None, list[FieldError]]:
        assert line.factor_category is not None
        units = [line.unit] + [u for u in await self.repo.factor_units(line.factor_category) if u != line.unit]
        for unit in units:
            try:
                conversion_factor(line.unit, unit)
            except UnitError:
                continue
            try:
                resolution = await self.factors.resolve(category=line.factor_category, unit=unit,
                                                        region=product.region, day=day,
                                                        org=enterprise_of(viewer) or product.owner_org,
                                                        locale=locale)
            except NotFoundError:
                continue
            return await self.factor_repo.get(resolution.factor.id, resolution.factor.version), []
        message = translate(N_("No published factor for {category} in a unit convertible from {unit} covers "
                               "{region} on {date}."), locale, category=line.factor_category, unit=line.unit,
                            region=product.region, date=day.isoformat())
        return None, [FieldError(field=f"{field}.factor_category", message=message)]

    async def put_inventory(self, gtin: str, data: InventoryIn, actor: Principal, *, locale: str,
                            expected_revision: int | None = None) -> Product:
        product = await self.owned(gtin, actor)
        start, end = default_reference_period(utcnow().date())
        start = data.reference_period_start or start
        end = data.reference_period_end or end
        problems: list[FieldError] = []
        if end < start:
            problems.append(FieldError(field="reference_period_end",
                                       message=N_("Must not be before reference_period_start.")))
        day = min(end, utcnow().date())  # factors valid at the end of the period (or today)
        rows: list[InventoryLine] = []
        # Lines naming the same factor (or category and unit) pin the same version: look it up once.
        pinned: dict[tuple[object, ...], tuple[FactorVersion | None, list[FieldError]]] = {}
        for i, line in enumerate(data.lines):
            field = f"lines[{i}]"
            line_problems = activity_problems(line, field)
            if line_problems:
                problems += line_problems
                continue
            key = (line.factor_id, line.factor_version, line.factor_category, line.unit, line.direct_kgco2e is None)
            if key not in pinned:
                pinned[key] = await self._pin(line, field, product, day, actor, locale)
            factor, pin_problems = pinned[key]
            pin_problems = [FieldError(field=f"{field}.{e.field.split('.', 1)[1]}", message=e.message)
                            for e in pin_problems] if pin_problems else []
            problems += pin_problems
            if pin_problems:
                continue
            if factor is not None:
                try:
                    conversion_factor(line.unit, factor.unit)
                except UnitError as exc:
                    message = (N_("Unknown unit {unit}.") if exc.code == "unknown_unit" else
                               N_("{unit} does not convert to the factor's unit {factor_unit}."))
                    problems.append(FieldError(field=f"{field}.unit", message=translate(
                        message, locale, unit=line.unit, factor_unit=factor.unit)))
                    continue
            else:
                if not known_unit(line.unit):
                    problems.append(FieldError(field=f"{field}.unit", message=translate(
                        N_("Unknown unit {unit}."), locale, unit=line.unit)))
                    continue
            rows.append(InventoryLine(
                gtin=product.gtin, position=i + 1, stage=line.stage, description=line.description,
                quantity=Decimal(plain(line.quantity)), unit=line.unit,
                factor_id=factor.factor_id if factor else None, factor_version=factor.version if factor else None,
                version_requested=line.factor_version is not None, factor_category=line.factor_category,
                direct_kgco2e=Decimal(plain(line.direct_kgco2e)) if line.direct_kgco2e is not None else None,
                primary=line.primary,
                activity_uncertainty=msgspec.to_builtins(line.activity_uncertainty) if line.activity_uncertainty else None,
                data_quality=msgspec.to_builtins(line.data_quality) if line.data_quality else None,
            ))
        if problems:
            raise UnprocessableError(N_("Some fields are invalid."), errors=problems)
        revision = product.inventory_revision if expected_revision is None else expected_revision
        if not await self.repo.claim_revision(product.gtin, revision, inventory_updated_at=utcnow(),
                                              inventory_updated_by=actor.sub, reference_period_start=start,
                                              reference_period_end=end):
            await self.session.refresh(product)
            raise ConflictError(N_("The inventory changed meanwhile (now revision {revision}); reload and retry."),
                                reason="inventory_revision_mismatch", revision=product.inventory_revision)
        await self.repo.replace_lines(product.gtin, rows)
        await self.session.refresh(product)
        return product

    async def inventory(self, gtin: str, viewer: Principal) -> InventoryOut:
        return await self.inventory_of(await self.readable(gtin, viewer))

    async def inventory_of(self, product: Product) -> InventoryOut:
        """The inventory, for a caller who has already established the viewer may read it."""
        lines = await self.repo.lines(product.gtin)
        start, end = self._period(product)
        return InventoryOut(gtin=product.gtin, revision=product.inventory_revision, reference_period_start=start,
                            reference_period_end=end, updated_at=product.inventory_updated_at,
                            lines=[_line_out(line) for line in lines])

    @staticmethod
    def _period(product: Product) -> tuple[date, date]:
        default = default_reference_period(product.created_at.date())
        return product.reference_period_start or default[0], product.reference_period_end or default[1]

    # --- results -------------------------------------------------------------------------------

    async def resolved_lines(self, product: Product) -> tuple[list[calculation.ResolvedLine], list[FactorVersion]]:
        lines = await self.repo.lines(product.gtin)
        keys = {(line.factor_id, line.factor_version) for line in lines if line.factor_id}
        factors: dict[tuple[str, int], FactorVersion] = {}
        for factor_id, version in sorted(keys):  # type: ignore[type-var]
            row = await self.factor_repo.get(factor_id, version)  # type: ignore[arg-type]
            assert row is not None, "pinned factor versions are never deleted (published rows are immutable)"
            factors[(factor_id, version)] = row  # type: ignore[index]
        resolved = []
        for line in lines:
            factor = factors.get((line.factor_id, line.factor_version)) if line.factor_id else None  # type: ignore[arg-type]
            resolved.append(calculation.ResolvedLine(
                position=line.position, stage=line.stage, description=line.description, primary=line.primary,
                quantity=line.quantity,
                conversion=conversion_factor(line.unit, factor.unit) if factor else Decimal(1),
                factor_key=(factor.factor_id, factor.version) if factor else None,
                factor_unit=factor.unit if factor else None,
                factor_value=factor.kgco2e_per_unit if factor else line.direct_kgco2e,  # type: ignore[arg-type]
                factor_uncertainty=factor.uncertainty if factor else {"distribution": "none"},
                activity_uncertainty=line.activity_uncertainty,
                # The line's own ratings override the factor's, criterion by criterion.
                data_quality={**((factor.data_quality or {}) if factor else {}), **(line.data_quality or {})} or None,
            ))
        return resolved, [factors[k] for k in sorted(factors)]

    async def stale(self, product: Product) -> list[StaleFactor]:
        """Resolved (not chosen) factor versions that a newer published version has overtaken."""
        lines = [line for line in await self.repo.lines(product.gtin) if line.factor_id and not line.version_requested]
        owner = Principal(sub="owner", roles=frozenset({"merchant"}), org=product.owner_org)
        day = min(self._period(product)[1], utcnow().date())
        out: dict[tuple[str, int], StaleFactor] = {}
        newest: dict[str, FactorVersion | None] = {}
        for line in lines:
            if line.factor_id not in newest:  # one query per factor, however many lines use it
                newest[line.factor_id] = _newest_valid(  # type: ignore[index]
                    [r for r in await self.factor_repo.versions(line.factor_id)  # type: ignore[arg-type]
                     if r.status == "published" and FactorService.visible(r, owner)], day)
            latest = newest[line.factor_id]  # type: ignore[index]
            if latest is not None and latest.version > (line.factor_version or 0):
                key = (line.factor_id, line.factor_version)
                out[key] = StaleFactor(id=line.factor_id, version=line.factor_version,  # type: ignore[arg-type]
                                       latest_version=latest.version)
        return [out[k] for k in sorted(out)]  # type: ignore[type-var]

    async def footprint(self, gtin: str, viewer: Principal, *, samples: int, seed: int) -> Footprint:
        product = await self.readable(gtin, viewer)
        return await self.compute(product, samples=samples, seed=seed)

    async def compute(self, product: Product, *, samples: int, seed: int,
                      resolved: tuple[list[calculation.ResolvedLine], list[FactorVersion]] | None = None) -> Footprint:
        """The footprint of the product's inventory (``resolved``: its lines, if the caller has them)."""
        lines, factors = resolved or await self.resolved_lines(product)
        result = calculation.totals(lines)
        mc_factors, mc_lines = calculation.monte_carlo_inputs(lines)
        # CPU-bound (and GIL-free in the kernel): off the event loop.
        draws = await asyncio.to_thread(scoring.sample_footprint, mc_factors, mc_lines, samples=samples, seed=seed)
        summary = scoring.summarise(draws, seed=seed)
        start, end = self._period(product)
        return Footprint(
            gtin=product.gtin, declared_unit=product.declared_unit, inventory_revision=product.inventory_revision,
            kgco2e_per_unit=plain(result.total),
            by_stage={stage: plain(value) for stage, value in result.by_stage.items()},
            lines=[LineResult(position=line.position, stage=line.stage, description=line.description,  # type: ignore[arg-type]
                              factor=FactorRef(id=line.factor_key[0], version=line.factor_key[1]) if line.factor_key else None,
                              factor_unit=line.factor_unit, amount=plain(line.amount), kgco2e_per_unit=plain(line.kgco2e),
                              share=result.shares[i], primary=line.primary, dqr=calculation.line_dqr(line))
                   for i, line in enumerate(lines)],
            hotspots=[Hotspot(position=lines[i].position, stage=lines[i].stage,  # type: ignore[arg-type]
                              description=lines[i].description, kgco2e_per_unit=plain(lines[i].kgco2e),
                              share=result.shares[i]) for i in result.hotspots],
            stage_hotspots=[StageHotspot(stage=stage, kgco2e_per_unit=plain(result.by_stage[stage]),  # type: ignore[arg-type]
                                         share=float(abs(result.by_stage[stage]) / sum(abs(v) for v in result.by_stage.values())))
                            for stage in result.stage_order],
            primary_data_share=result.primary_share, dqr=result.dqr,
            dqr_level=calculation.dqr_level(result.dqr),  # type: ignore[arg-type]
            monte_carlo=MonteCarlo(samples=summary.samples, seed=summary.seed, mean=number_text(summary.mean),
                                   p5=number_text(summary.p5), p50=number_text(summary.p50),
                                   p80=number_text(summary.p80), p95=number_text(summary.p95)),
            factor_versions=[FactorRef(id=f.factor_id, version=f.version) for f in factors],
            stale_factors=await self.stale(product),
            reference_period_start=start, reference_period_end=end,
        )

    async def refresh(self, gtin: str, actor: Principal, *, samples: int, seed: int) -> RefreshResult:
        """Move resolved lines to the newest published version of their factor: explicit, so a
        published factor correction never changes a footprint behind its owner's back."""
        product = await self.owned(gtin, actor)
        stale = await self.stale(product)
        if stale:
            latest = {(s.id, s.version): s.latest_version for s in stale}
            lines = list(await self.repo.lines(product.gtin))
            if not await self.repo.claim_revision(product.gtin, product.inventory_revision,
                                                  inventory_updated_at=utcnow(), inventory_updated_by=actor.sub):
                raise ConflictError(N_("The inventory changed meanwhile; reload and retry."),
                                    reason="inventory_revision_mismatch")
            for line in lines:
                if not line.version_requested and (line.factor_id, line.factor_version) in latest:
                    line.factor_version = latest[(line.factor_id, line.factor_version)]  # type: ignore[index]
            await self.session.flush()
            await self.session.refresh(product)
        return RefreshResult(updated=stale, footprint=await self.compute(product, samples=samples, seed=seed))


def _newest_valid(rows: list[FactorVersion], day: date) -> FactorVersion | None:
    valid = [r for r in rows if r.valid_from <= day and (r.valid_to is None or r.valid_to >= day)]
    return max(valid, key=lambda r: r.version) if valid else None


def _line_out(line: InventoryLine) -> InventoryLineOut:
    return InventoryLineOut(
        position=line.position, stage=line.stage, description=line.description,  # type: ignore[arg-type]
        quantity=plain(line.quantity), unit=line.unit, factor_id=line.factor_id, factor_version=line.factor_version,
        version_requested=line.version_requested, factor_category=line.factor_category,
        direct_kgco2e=plain(line.direct_kgco2e) if line.direct_kgco2e is not None else None, primary=line.primary,
        activity_uncertainty=msgspec.convert(line.activity_uncertainty, Uncertainty) if line.activity_uncertainty else None,  # type: ignore[arg-type]
        data_quality=msgspec.convert(line.data_quality, DataQuality) if line.data_quality else None,
    )

"""PACT data exchange: publishing and sharing footprints, what a client may read, action events,
and importing suppliers' footprints as enterprise factors. Never commits."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.auth import Principal
from carbonpuhui.errors import ConflictError, FieldError, ForbiddenError, NotFoundError, UnprocessableError
from carbonpuhui.factors.schemas import FactorBody, FactorCreate, Names, NoUncertainty
from carbonpuhui.factors.service import FactorService, content_hash, enterprise_of, plain
from carbonpuhui.footprints import calculation
from carbonpuhui.footprints.gtin import InvalidGTIN, normalise_gtin
from carbonpuhui.footprints.models import Product
from carbonpuhui.footprints.service import ProductService
from carbonpuhui.i18n import N_, translate
from carbonpuhui.ids import is_uuid
from carbonpuhui.pact import export
from carbonpuhui.pact.bodies import ImportFootprint, PublishedFootprint, PublishFootprint, Sharing
from carbonpuhui.pact.models import PactEvent, PactFootprint, PactShare
from carbonpuhui.pact.outbound import fetch_supplier_footprint
from carbonpuhui.pact.schemas import add_years
from carbonpuhui.settings import Settings

# The request body's JSON numbers arrive as Decimal (ExactDecimalRequest); they go back out as
# numbers, or a float property such as exemptedEmissionsPercent would re-encode as a string.
_NUMBERS = msgspec.json.Encoder(decimal_format="number")
# Distinct GTINs one footprint request may name: bounds the query (PostgreSQL takes at most 32767
# parameters per statement); a request naming more is answered for the first ones.
MAX_REQUESTED_GTINS = 1000


def utcnow() -> datetime:
    return datetime.now(UTC)


def org_urn(org: str) -> str:
    # Organisation ids are free text; a name-based UUID makes a URN PACT accepts for any of them.
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'carbonpuhui:org:' + org)}"


def pact_dqi(criteria: dict[str, float], *, coverage: Decimal) -> dict[str, Decimal]:
    """PEF ratings (1 best .. 5 worst) on PACT's DQR scale (1 best .. 3 worst), linearly."""
    def scaled(name: str) -> Decimal:
        return Decimal(str(round(1 + (criteria[name] - 1) / 2, 2)))

    return {"coveragePercent": coverage, "technologicalDQR": scaled("technological"),
            "temporalDQR": scaled("time"), "geographicalDQR": scaled("geographical"),
            "completenessDQR": scaled("completeness"), "reliabilityDQR": scaled("precision")}


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def publish_problems(body: PublishFootprint, product: Product, now: datetime, locale: str) -> list[FieldError]:
    """What PACT v2.3 cannot carry, found before anything is computed: its validity period runs from
    publication (``now``) to at most 3 years after the reference period's (exclusive) end, so that
    period must have ended, and not more than 3 years ago."""
    problems: list[FieldError] = []

    def bad(field: str, message: str, **params: object) -> None:
        problems.append(FieldError(field=field, message=translate(message, locale, **params)))

    exempted = body.exempted_emissions_percent
    if not exempted.is_finite() or not Decimal(0) <= exempted <= Decimal(5):
        bad("exempted_emissions_percent", N_("Must be between 0 and 5."))
    if not body.company_name.strip():
        bad("company_name", N_("Must not be blank."))
    if not product.names["en"].strip():
        bad("names.en", N_("Must not be blank."))
    if any("\x00" in org for org in body.shared_with):
        bad("shared_with", N_("Must not contain the NUL character."))
    today = now.date()
    _start, end = ProductService._period(product)  # noqa: SLF001 - the inventory's (or the default) period
    if end >= today:
        bad("reference_period_end", N_("Must be at most {n}."), n=(today - timedelta(days=1)).isoformat())
        return problems
    latest_end = add_years(_start_of(end + timedelta(days=1)), 3)
    if latest_end <= now:
        bad("reference_period_end", N_("Must be at least {n}."), n=add_years(_start_of(today), -3).date().isoformat())
    elif body.validity_end is not None and not today < body.validity_end <= latest_end.date():
        if body.validity_end <= today:
            bad("validity_end", N_("Must be at least {n}."), n=(today + timedelta(days=1)).isoformat())
        else:
            bad("validity_end", N_("Must be at most {n}."), n=latest_end.date().isoformat())
    return problems


class PactService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- publishing ----------------------------------------------------------------------------

    async def publish(self, gtin: str, body: PublishFootprint, actor: Principal, *, locale: str = "en") -> PactFootprint:
        products = ProductService(self.session)
        product = await products.owned(gtin, actor)
        now = utcnow()
        problems = publish_problems(body, product, now, locale)
        if problems:
            raise UnprocessableError(N_("Some fields are invalid."), errors=problems)
        # Publications of one product one at a time (across processes), so each deprecates the one
        # before it: two racing publishers would otherwise both deprecate the same one, leaving two Active.
        await products.repo.lock(product.gtin)
        if not await products.repo.lines(product.gtin):
            raise ConflictError(N_("The product has no inventory yet."), reason="no_inventory")
        resolved = await products.resolved_lines(product)
        result = await products.compute(product, samples=1000, seed=1, resolved=resolved)
        criteria = calculation.criteria_dqr(resolved[0])
        factors = [await products.factor_repo.get(f.id, f.version) for f in result.factor_versions]
        bases = sorted({f.gwp_basis for f in factors if f is not None}) or ["AR6"]
        if not set(bases) <= {"AR5", "AR6"}:  # PACT v2.3's characterizationFactors
            raise ConflictError(N_("PACT v2.3 takes AR5 or AR6 characterisation factors only; this footprint "
                                   "uses {gwp_basis}."), reason="pact_gwp_basis_unsupported",
                                gwp_basis=", ".join(bases))
        total = Decimal(result.kgco2e_per_unit)
        if total < 0:
            # pCfExcludingBiogenic is >= 0: publishing 0 instead would misstate the footprint to every reader.
            raise ConflictError(N_("PACT cannot express a negative footprint ({value} kgCO2e per declared unit)."),
                                reason="pact_negative_footprint", value=result.kgco2e_per_unit)
        previous = list((await self.session.scalars(select(PactFootprint).where(
            PactFootprint.gtin == product.gtin, PactFootprint.status == "Active"))).all())
        names = product.names
        source = export.PactSource(
            id=uuid.uuid4(), version=1, created=now, updated=None, status="Active",
            preceding_ids=[uuid.UUID(p.id) for p in previous],
            company_name=body.company_name, company_ids=[org_urn(product.owner_org)],
            product_description=f"{names['en']} / {names['zh-Hans']}", gtin14=product.gtin,
            product_category_cpc=body.product_category_cpc, product_name_company=names["en"],
            comment=body.comment, declared_unit=product.declared_unit,
            unitary_product_amount=product.declared_units_per_item,
            kgco2e_per_declared_unit=total.copy_abs(),  # -0 -> 0
            gwp_basis=bases[-1],
            reference_period_start=_start_of(result.reference_period_start),
            # PACT's reference period end is exclusive: the day after the last day covered.
            reference_period_end=_start_of(result.reference_period_end + timedelta(days=1)),
            geography_country=product.region,
            boundary_description=body.boundary_description, cross_sectoral_standards=["ISO Standard 14067"],
            exempted_percent=body.exempted_emissions_percent,
            exempted_description=body.exempted_emissions_description,
            packaging_included=body.packaging_emissions_included,
            primary_data_share=Decimal(str(result.primary_data_share)),
            dqi=pact_dqi(criteria, coverage=Decimal(100) - body.exempted_emissions_percent),
            validity_start=now, validity_end=_start_of(body.validity_end) if body.validity_end else None,
        )
        try:
            document = msgspec.to_builtins(export.build_product_footprint(source))
        except export.UnsupportedUnit:
            raise ConflictError(N_("PACT cannot express the declared unit {unit}."), reason="pact_unit_unsupported",
                                unit=product.declared_unit) from None
        for old in previous:  # superseded: still readable, now Deprecated (PACT keeps history)
            old.status = "Deprecated"
            old.version += 1
            old.document = {**old.document, "status": "Deprecated", "version": old.version,
                            "updated": now.isoformat().replace("+00:00", "Z")}
        row = PactFootprint(id=str(source.id), gtin=product.gtin, owner_org=product.owner_org, status="Active",
                            version=1, public=body.public, created_at=now, created_by=actor.sub, document=document)
        self.session.add(row)
        await self.session.flush()
        await self._set_shares(row, body.shared_with)
        return row

    async def _set_shares(self, row: PactFootprint, orgs: list[str]) -> None:
        existing = await self.shares(row.id)
        for org in set(existing) - set(orgs):
            await self.session.delete(await self.session.get(PactShare, (row.id, org)))
        for org in sorted(set(orgs) - set(existing)):
            self.session.add(PactShare(footprint_id=row.id, org=org))
        await self.session.flush()

    async def shares(self, footprint_id: str) -> list[str]:
        stmt = select(PactShare.org).where(PactShare.footprint_id == footprint_id).order_by(PactShare.org)
        return list((await self.session.scalars(stmt)).all())

    async def owned(self, footprint_id: str, actor: Principal) -> PactFootprint:
        row = await self.session.get(PactFootprint, footprint_id) if is_uuid(footprint_id) else None
        if row is None or row.owner_org != enterprise_of(actor):
            raise NotFoundError(N_("Footprint {id} was not found."), reason="footprint_not_found", id=footprint_id)
        return row

    async def set_sharing(self, footprint_id: str, body: Sharing, actor: Principal) -> PactFootprint:
        row = await self.owned(footprint_id, actor)
        if any("\x00" in org for org in body.shared_with):  # PostgreSQL text cannot hold U+0000
            raise UnprocessableError(N_("Some fields are invalid."), errors=[
                FieldError(field="shared_with", message=N_("Must not contain the NUL character."))])
        row.public = body.public
        await self._set_shares(row, body.shared_with)
        return row

    async def list_own(self, actor: Principal, *, after: str | None, limit: int) -> list[PactFootprint]:
        org = enterprise_of(actor)
        if org is None:
            return []
        stmt = select(PactFootprint).where(PactFootprint.owner_org == org).order_by(PactFootprint.id).limit(limit)
        if after:
            stmt = stmt.where(PactFootprint.id > after)
        return list((await self.session.scalars(stmt)).all())

    async def out(self, row: PactFootprint) -> PublishedFootprint:
        return PublishedFootprint(id=row.id, gtin=row.gtin, status=row.status, version=row.version, public=row.public,
                                  shared_with=await self.shares(row.id), document=row.document)

    # --- what a PACT client may read -------------------------------------------------------------

    @staticmethod
    def _visible(org: str):  # type: ignore[no-untyped-def]
        shared = select(PactShare.footprint_id).where(PactShare.org == org)
        return or_(PactFootprint.public.is_(True), PactFootprint.owner_org == org, PactFootprint.id.in_(shared))

    async def visible(self, org: str, *, after: str | None, limit: int) -> list[PactFootprint]:
        stmt = select(PactFootprint).where(self._visible(org)).order_by(PactFootprint.id).limit(limit)
        if after:
            stmt = stmt.where(PactFootprint.id > after)
        return list((await self.session.scalars(stmt)).all())

    async def get_visible(self, footprint_id: str, org: str) -> PactFootprint | None:
        if not is_uuid(footprint_id):
            return None
        stmt = select(PactFootprint).where(PactFootprint.id == footprint_id.lower(), self._visible(org))
        return (await self.session.scalars(stmt)).first()

    async def matching(self, org: str, product_ids: list[str]) -> list[PactFootprint]:
        """Active footprints the client may read whose product ids meet the request's."""
        gtins: set[str] = set()
        for urn in product_ids:
            if not urn.startswith("urn:gtin:") or len(gtins) >= MAX_REQUESTED_GTINS:
                continue
            try:  # stored GTINs are valid 14-digit ones: nothing else can match (or reach the query)
                gtins.add(normalise_gtin(urn.removeprefix("urn:gtin:")))
            except InvalidGTIN:
                continue
        if not gtins:
            return []
        stmt = (select(PactFootprint).where(self._visible(org), PactFootprint.status == "Active",
                                            PactFootprint.gtin.in_(sorted(gtins)))
                .order_by(PactFootprint.id))
        return list((await self.session.scalars(stmt)).all())

    async def record_event(self, client_id: str, event_id: str, type_: str, outcome: str,
                           answer: dict[str, Any] | None) -> PactEvent | None:
        """The event, once: a retried event (same client, same id) returns None and is not answered again."""
        existing = (await self.session.scalars(select(PactEvent).where(
            PactEvent.client_id == client_id, PactEvent.event_id == event_id))).first()
        if existing is not None:
            return None
        row = PactEvent(client_id=client_id, event_id=event_id, type=type_, received_at=utcnow(),
                        outcome=outcome, answer=answer)
        try:
            async with self.session.begin_nested():  # the same event sent twice at once: one is recorded
                self.session.add(row)
                await self.session.flush()
        except IntegrityError:
            return None
        return row

    # --- import ----------------------------------------------------------------------------------

    async def import_footprint(self, body: ImportFootprint, actor: Principal, settings: Settings):  # type: ignore[no-untyped-def]
        org = enterprise_of(actor)
        if org is None:
            raise ForbiddenError(N_("A merchant token with an organisation (org) is needed."), reason="no_organisation")
        if (body.footprint is None) == (body.supplier is None):
            raise UnprocessableError(N_("Some fields are invalid."), errors=[
                FieldError(field="footprint", message=N_("Give exactly one of footprint or supplier."))])
        raw = (_NUMBERS.encode(body.footprint) if body.footprint is not None
               else await fetch_supplier_footprint(body.supplier, settings))  # type: ignore[arg-type]
        try:
            pf = export.parse_product_footprint(raw)
        except msgspec.ValidationError as exc:
            raise UnprocessableError(N_("The ProductFootprint is not valid: {problem}"), reason="invalid_footprint",
                                     problem=str(exc)) from None
        try:
            fields = export.footprint_as_factor_fields(pf)
        except export.UnsupportedUnit:
            raise UnprocessableError(N_("PACT cannot express the declared unit {unit}."),
                                     reason="pact_unit_unsupported", unit=str(pf.pcf.declared_unit)) from None
        except (ValueError, OverflowError) as exc:  # dates past the calendar's ends (validity after 9999)
            raise UnprocessableError(N_("The ProductFootprint is not valid: {problem}"), reason="invalid_footprint",
                                     problem=str(exc)) from None
        own_prefix = f"pact-{uuid.uuid5(uuid.NAMESPACE_URL, org).hex[:8]}-"
        if body.factor_id is not None and body.factor_id.startswith("pact-") and not body.factor_id.startswith(own_prefix):
            # Another organisation's default import ids: taking one would block its own import.
            raise UnprocessableError(N_("Some fields are invalid."), errors=[
                FieldError(field="factor_id", message=N_("This id is reserved; choose another."))])
        factor_id = body.factor_id or f"{own_prefix}{pf.id}"
        name = pf.product_name_company[:200]
        region = fields.get("region") or "GLO"
        # Usable for the period the footprint describes too: a supplier publishes last year's
        # footprint this year, and its buyer accounts last year with it.
        valid_from = min(fields["valid_from"], fields["reference_period_start"].astimezone(UTC).date())
        factor_body = FactorBody(
            names=Names(zh_hans=name, zh_hant=name, en=name), category=body.category, unit=fields["unit"],
            kgco2e_per_unit=Decimal(plain(fields["kgco2e_per_unit"])), gwp_basis=fields["gwp_basis"],
            region=region, tier="enterprise", owner_org=org, valid_from=valid_from, valid_to=fields.get("valid_to"),
            source=str(fields["source"])[:2000], uncertainty=NoUncertainty(),
            version_note=f"PACT {pf.id} v{pf.version}")
        service = FactorService(self.session)
        if await service.repo.max_version(factor_id):
            latest = await service.repo.get(factor_id, await service.repo.max_version(factor_id))
            if latest is not None and latest.owner_org != org:
                raise ConflictError(N_("Factor {id} already exists; add a version instead."), reason="factor_exists",
                                    id=factor_id)
            if latest is not None and latest.status == "published" and latest.content_hash == content_hash(factor_body):
                return latest  # the same footprint imported again changes nothing
            row = await service.add_version(factor_id, factor_body, actor_admin(actor))
        else:
            fields_create = msgspec.structs.asdict(factor_body)
            row = await service.create(FactorCreate(id=factor_id, **fields_create), actor_admin(actor))
        return await service.publish(row.factor_id, row.version, actor_admin(actor))


def actor_admin(actor: Principal) -> Principal:
    # The factor service's writes are an administrator's; an import is the buyer's own factor,
    # recorded under the buyer's subject.
    return Principal(sub=actor.sub, roles=frozenset({"admin"}), org=actor.org)


__all__ = ["PactService", "Product", "org_urn"]

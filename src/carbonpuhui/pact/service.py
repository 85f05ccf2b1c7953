"""PACT data exchange: publishing and sharing footprints, what a client may read, action events,
and importing suppliers' footprints as enterprise factors. Never commits."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.auth import Principal
from carbonpuhui.errors import ConflictError, FieldError, ForbiddenError, NotFoundError, UnprocessableError
from carbonpuhui.factors.schemas import FactorBody, FactorCreate, Names, NoUncertainty
from carbonpuhui.factors.service import FactorService, enterprise_of, plain
from carbonpuhui.footprints import calculation
from carbonpuhui.footprints.models import Product
from carbonpuhui.footprints.service import ProductService
from carbonpuhui.i18n import N_
from carbonpuhui.pact import export
from carbonpuhui.pact.bodies import ImportFootprint, PublishedFootprint, PublishFootprint, Sharing
from carbonpuhui.pact.models import PactEvent, PactFootprint, PactShare
from carbonpuhui.settings import Settings

FETCH_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# The request body's JSON numbers arrive as Decimal (ExactDecimalRequest); they go back out as
# numbers, or a float property such as exemptedEmissionsPercent would re-encode as a string.
_NUMBERS = msgspec.json.Encoder(decimal_format="number")
MAX_FETCH_BYTES = 1_048_576


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


class PactService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- publishing ----------------------------------------------------------------------------

    async def publish(self, gtin: str, body: PublishFootprint, actor: Principal) -> PactFootprint:
        products = ProductService(self.session)
        product = await products.owned(gtin, actor)
        if not Decimal(0) <= body.exempted_emissions_percent <= Decimal(5):
            raise UnprocessableError(N_("Some fields are invalid."), errors=[
                FieldError(field="exempted_emissions_percent", message=N_("Must be between 0 and 5."))])
        if not await products.repo.lines(product.gtin):
            raise ConflictError(N_("The product has no inventory yet."), reason="no_inventory")
        result = await products.compute(product, samples=1000, seed=1)
        criteria = calculation.criteria_dqr((await products.resolved_lines(product))[0])
        factors = [await products.factor_repo.get(f.id, f.version) for f in result.factor_versions]
        bases = sorted({f.gwp_basis for f in factors if f is not None}) or ["AR6"]
        previous = list((await self.session.scalars(select(PactFootprint).where(
            PactFootprint.gtin == product.gtin, PactFootprint.status == "Active"))).all())
        now = utcnow()
        names = product.names
        source = export.PactSource(
            id=uuid.uuid4(), version=1, created=now, updated=None, status="Active",
            preceding_ids=[uuid.UUID(p.id) for p in previous],
            company_name=body.company_name, company_ids=[org_urn(product.owner_org)],
            product_description=f"{names['en']} / {names['zh-Hans']}", gtin14=product.gtin,
            product_category_cpc=body.product_category_cpc, product_name_company=names["en"],
            comment=body.comment, declared_unit=product.declared_unit,
            unitary_product_amount=product.declared_units_per_item,
            kgco2e_per_declared_unit=max(Decimal(result.kgco2e_per_unit), Decimal(0)),
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
        row = await self.session.get(PactFootprint, footprint_id) if _is_uuid(footprint_id) else None
        if row is None or row.owner_org != enterprise_of(actor):
            raise NotFoundError(N_("Footprint {id} was not found."), reason="footprint_not_found", id=footprint_id)
        return row

    async def set_sharing(self, footprint_id: str, body: Sharing, actor: Principal) -> PactFootprint:
        row = await self.owned(footprint_id, actor)
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
        if not _is_uuid(footprint_id):
            return None
        stmt = select(PactFootprint).where(PactFootprint.id == footprint_id.lower(), self._visible(org))
        return (await self.session.scalars(stmt)).first()

    async def matching(self, org: str, product_ids: list[str]) -> list[PactFootprint]:
        """Active footprints the client may read whose product ids meet the request's."""
        gtins = {urn.removeprefix("urn:gtin:") for urn in product_ids if urn.startswith("urn:gtin:")}
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
        self.session.add(row)
        await self.session.flush()
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
        factor_id = body.factor_id or f"pact-{uuid.uuid5(uuid.NAMESPACE_URL, org).hex[:8]}-{pf.id}"
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
            row = await service.add_version(factor_id, factor_body, actor_admin(actor))
        else:
            fields_create = msgspec.structs.asdict(factor_body)
            row = await service.create(FactorCreate(id=factor_id, **fields_create), actor_admin(actor))
        return await service.publish(row.factor_id, row.version, actor_admin(actor))


def actor_admin(actor: Principal) -> Principal:
    # The factor service's writes are an administrator's; an import is the buyer's own factor,
    # recorded under the buyer's subject.
    return Principal(sub=actor.sub, roles=frozenset({"admin"}), org=actor.org)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36


def check_outbound(url: str, settings: Settings) -> None:
    """Outbound calls go to https:// on public addresses only, unless the deployment allows more
    (development and tests on loopback): a buyer must not make the platform probe its own network."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (settings.pact_allow_http and parts.scheme == "http"):
        raise UnprocessableError(N_("Supplier endpoints must use https."), reason="insecure_endpoint")
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise UnprocessableError(N_("The supplier endpoint {host} could not be resolved."), reason="endpoint_unreachable",
                                 host=host) from None
    if settings.pact_outbound_private:
        return
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise UnprocessableError(N_("The supplier endpoint {host} is not a public address."),
                                     reason="endpoint_not_public", host=host)


def httpx_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=FETCH_TIMEOUT, verify=settings.pact_ca_bundle or True, follow_redirects=False)


async def client_credentials_token(client: httpx.AsyncClient, base_url: str, client_id: str, secret: str) -> str:
    token_url = f"{base_url}/auth/token"
    try:
        discovery = await client.get(f"{base_url}/.well-known/openid-configuration")
        if discovery.status_code == 200 and isinstance(found := discovery.json().get("token_endpoint"), str):
            if urlsplit(found).netloc == urlsplit(base_url).netloc:  # never follow discovery elsewhere
                token_url = found
    except (httpx.HTTPError, ValueError, AttributeError):
        pass
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = await client.post(token_url, data={"grant_type": "client_credentials"},
                                 headers={"Authorization": f"Basic {basic}", "Accept": "application/json"})
    response.raise_for_status()
    return str(response.json()["access_token"])


async def fetch_supplier_footprint(supplier: Any, settings: Settings) -> bytes:
    base = supplier.base_url.rstrip("/")
    await asyncio.to_thread(check_outbound, base, settings)
    try:
        async with httpx_client(settings) as client:
            token = await client_credentials_token(client, base, supplier.client_id, supplier.client_secret)
            response = await client.get(f"{base}/2/footprints/{supplier.footprint_id}",
                                        headers={"Authorization": f"Bearer {token}"})
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise UnprocessableError(N_("The supplier endpoint could not be read: {problem}"),
                                 reason="endpoint_unreachable", problem=type(exc).__name__) from None
    if response.status_code != 200 or len(response.content) > MAX_FETCH_BYTES:
        raise UnprocessableError(N_("The supplier endpoint answered {status}."), reason="endpoint_refused",
                                 status=response.status_code)
    try:
        data = msgspec.json.decode(response.content)["data"]
    except (msgspec.DecodeError, KeyError, TypeError):
        raise UnprocessableError(N_("The supplier endpoint answered {status}."), reason="endpoint_refused",
                                 status=response.status_code) from None
    return msgspec.json.encode(data)


__all__ = ["PactService", "Product", "org_urn"]

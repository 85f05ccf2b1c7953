"""Benchmarks and grades, certification, labels and listings. Services flush and never commit; the
request's unit of work commits, and public caches are invalidated only after it has."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.auth import Principal
from carbonpuhui.db.engine import after_commit
from carbonpuhui.errors import ConflictError, FieldError, ForbiddenError, NotFoundError, UnprocessableError
from carbonpuhui.factors.schemas import Names
from carbonpuhui.factors.service import enterprise_of, fits, plain
from carbonpuhui.footprints.calculation import EXACT
from carbonpuhui.footprints.models import Product
from carbonpuhui.footprints.repository import ProductRepository
from carbonpuhui.footprints.schemas import FactorRef, Footprint, InventoryOut
from carbonpuhui.footprints.service import ProductService, gtin14
from carbonpuhui.footprints.units import UnitError, conversion_factor
from carbonpuhui.i18n import N_
from carbonpuhui.labels.cache import MAX_TTL, PublicCache
from carbonpuhui.labels.grading import grade_batch, grade_of, percentile
from carbonpuhui.labels.models import Benchmark, CertificationEvent, Label, LabelApplication, Listing
from carbonpuhui.labels.repository import LabelRepository
from carbonpuhui.labels.schemas import (
    GRADES,
    AlternativesPage,
    ApplicationIn,
    ApplicationOut,
    BenchmarkIn,
    BenchmarkOut,
    DecisionIn,
    DecisionOut,
    EventOut,
    LabelHistory,
    LabelOut,
    ListingIn,
    ListingItem,
    ListingOut,
    PublicProduct,
    RevokeIn,
    SelfDeclarationIn,
)

CST = ZoneInfo("Asia/Shanghai")  # validity dates are the scheme's local calendar days
LABEL_SAMPLES = 20_000
MIN_PERCENTILE_LABELS = 10
MAX_VALIDITY_DAYS = 5 * 366
LISTINGS_SHOWN = 50
Z95 = 1.6448536269514722  # the standard normal 95th percentile


def utcnow() -> datetime:
    return datetime.now(UTC)


def today_cst(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(CST).date()


def expires_at(valid_until: date) -> datetime:
    """A label is valid through its last day, China Standard Time."""
    return datetime.combine(valid_until + timedelta(days=1), time(0), tzinfo=CST).astimezone(UTC)


def label_status(label: Label, today: date) -> str:
    if label.status == "revoked":
        return "revoked"
    return "expired" if label.valid_until < today else "active"


def label_out(label: Label, today: date) -> LabelOut:
    status = label_status(label, today)
    return LabelOut(
        id=label.id, gtin=label.gtin, category=label.category, kgco2e_per_unit=plain(label.kgco2e_per_unit),
        declared_unit=label.declared_unit, grade=label.grade, scheme=label.scheme,  # type: ignore[arg-type]
        status=status, certification_body=label.certification_body,  # type: ignore[arg-type]
        issued_at=label.issued_at, valid_until=label.valid_until,
        factor_versions=[FactorRef(id=f["id"], version=f["version"]) for f in label.factor_versions],
        conservative_basis=label.conservative_basis,  # type: ignore[arg-type]
        earns_credits=label.scheme == "verified" and status == "active")


def seed_of(identifier: str) -> int:
    """A Monte Carlo seed from an id: the same application always gives the same numbers."""
    return int(uuid.UUID(identifier).hex[:15], 16)


def lognormal_gsd(p50: Decimal, p95: Decimal) -> float | None:
    """The geometric standard deviation of a lognormal through the median and the 95th percentile."""
    if p50 <= 0 or p95 <= p50:
        return None
    return math.exp(math.log(float(p95) / float(p50)) / Z95)


def _field(field: str, message: str, reason: str | None = None, **params: object) -> UnprocessableError:
    return UnprocessableError(N_("Some fields are invalid."), reason=reason,
                              errors=[FieldError(field=field, message=message)], **params)


class _Base:
    def __init__(self, session: AsyncSession, cache: PublicCache | None = None) -> None:
        self.session = session
        self.repo = LabelRepository(session)
        self.products = ProductService(session)
        self.cache = cache

    def touch(self, gtins: Iterable[str]) -> None:
        """The public views of these products change with this transaction."""
        cache, changed = self.cache, sorted(set(gtins))
        if cache is not None and changed:
            async def invalidate() -> None:
                await cache.invalidate(changed)
            after_commit(self.session, invalidate)

    def record(self, kind: str, subject: str, action: str, actor: Principal, *, before: str | None = None,
               after: str | None = None, reason: str | None = None, detail: dict[str, object] | None = None) -> None:
        self.session.add(CertificationEvent(subject_kind=kind, subject_id=subject, action=action, from_status=before,
                                            to_status=after, actor_sub=actor.sub, actor_org=actor.org, at=utcnow(),
                                            reason=reason, detail=detail))

    @staticmethod
    def per_benchmark_unit(value: Decimal, product_unit: str, benchmark_unit: str) -> Decimal:
        """A footprint per product unit, expressed per the benchmark's unit (kilogram -> tonne: x 1000)."""
        try:
            factor = conversion_factor(benchmark_unit, product_unit)
        except UnitError:
            raise ConflictError(N_("The category's benchmark is per {benchmark_unit}, which {unit} does not "
                                   "convert to."), reason="declared_unit_mismatch", benchmark_unit=benchmark_unit,
                                unit=product_unit) from None
        with localcontext(EXACT):
            return value * factor


class BenchmarkService(_Base):
    async def get(self, category: str) -> Benchmark:
        bench = await self.repo.benchmark(category)
        if bench is None:
            raise NotFoundError(N_("No benchmark exists for category {category}."), reason="benchmark_not_found",
                                category=category)
        return bench

    @staticmethod
    def out(bench: Benchmark, regraded: int = 0) -> BenchmarkOut:
        return BenchmarkOut(category=bench.category, method=bench.method, declared_unit=bench.declared_unit,
                            percentiles=list(bench.percentiles), thresholds=list(bench.thresholds),
                            baseline=plain(bench.baseline), uncertainty_penalty=plain(bench.uncertainty_penalty),
                            sample_size=bench.sample_size, source=bench.source, revision=bench.revision,
                            updated_at=bench.updated_at, regraded=regraded)

    async def _unit(self, category: str, given: str | None) -> str:
        if given is not None:
            return given
        units = await self.repo.declared_units(category)
        if len(units) == 1:
            return units[0]
        message = (N_("Products of this category use several declared units ({units}): name one.") if units
                   else N_("No product of this category exists yet: name the declared unit."))
        raise _field("declared_unit", message, reason="declared_unit_required", units=", ".join(units))

    def _check_numbers(self, data: BenchmarkIn) -> None:
        problems: list[FieldError] = []
        if data.percentiles != sorted(set(data.percentiles)):
            problems.append(FieldError(field="percentiles", message=N_("Give increasing percentiles, e.g. 20, 40, 60, 80.")))
        if data.source is not None and "\x00" in data.source:
            problems.append(FieldError(field="source", message=N_("Must not contain the NUL character.")))
        if not fits(data.uncertainty_penalty) or not Decimal(0) <= data.uncertainty_penalty <= Decimal(10):
            problems.append(FieldError(field="uncertainty_penalty", message=N_("Must be between 0 and 10.")))
        if data.method == "fixed":
            if data.thresholds is None:
                problems.append(FieldError(field="thresholds", message=N_("Fixed benchmarks need four thresholds.")))
            elif not all(fits(t) for t in data.thresholds):
                problems.append(FieldError(field="thresholds",
                                           message=N_("Use at most 30 digits before and 30 after the decimal point.")))
            elif data.thresholds != sorted(data.thresholds):
                problems.append(FieldError(field="thresholds", message=N_("Thresholds must not decrease.")))
            if data.baseline is None:
                problems.append(FieldError(field="baseline", message=N_("Fixed benchmarks need a baseline.")))
            elif not fits(data.baseline) or data.baseline < 0:
                problems.append(FieldError(field="baseline", message=N_("Must be zero or more.")))
        else:
            for name in ("thresholds", "baseline"):
                if getattr(data, name) is not None:
                    problems.append(FieldError(field=name, message=N_("Percentile benchmarks compute this; leave it out.")))
        if problems:
            raise UnprocessableError(N_("Some fields are invalid."), errors=problems)

    async def put(self, category: str, data: BenchmarkIn, actor: Principal) -> BenchmarkOut:
        self._check_numbers(data)
        unit = await self._unit(category, data.declared_unit)
        today = today_cst()
        sample_size = None
        if data.method == "fixed":
            thresholds, baseline = list(data.thresholds or []), data.baseline or Decimal(0)
        else:
            labels = await self.repo.verified_in_force(category, today)
            if len(labels) < MIN_PERCENTILE_LABELS:
                raise UnprocessableError(
                    N_("A percentile benchmark needs at least {needed} verified footprints in the category; it has "
                       "{count}. Set fixed thresholds instead."), reason="too_few_verified_footprints",
                    needed=MIN_PERCENTILE_LABELS, count=len(labels))
            values = sorted(self.per_benchmark_unit(lab.kgco2e_per_unit, lab.declared_unit, unit) for lab in labels)
            thresholds = [percentile(values, p) for p in data.percentiles]
            baseline, sample_size = percentile(values, 50), len(values)
        bench = await self.repo.benchmark(category, lock=True)
        before = None if bench is None else {"method": bench.method, "thresholds": bench.thresholds,
                                             "baseline": plain(bench.baseline), "revision": bench.revision}
        if bench is None:
            bench = Benchmark(category=category, revision=0)
            self.session.add(bench)
        bench.method, bench.declared_unit, bench.percentiles = data.method, unit, list(data.percentiles)
        bench.thresholds, bench.baseline = [plain(t) for t in thresholds], baseline
        bench.uncertainty_penalty, bench.sample_size, bench.source = data.uncertainty_penalty, sample_size, data.source
        bench.revision += 1
        bench.updated_at, bench.updated_by = utcnow(), actor.sub
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError:
            raise ConflictError(N_("The benchmark changed meanwhile; retry."), reason="benchmark_conflict") from None
        self.record("benchmark", category, "set", actor, detail={"before": before, "revision": bench.revision,
                                                                 "thresholds": bench.thresholds})
        regraded = await self.regrade(bench)
        return self.out(bench, regraded)

    async def regrade(self, bench: Benchmark) -> int:
        """Regrade every current label of the category in one batch; returns how many changed."""
        labels = list(await self.repo.current_in_category(bench.category))
        if not labels:
            return 0
        thresholds = [[Decimal(t) for t in bench.thresholds]]
        values = [self.per_benchmark_unit(lab.kgco2e_per_unit, lab.declared_unit, bench.declared_unit)
                  for lab in labels]
        grades = grade_batch(values, [0] * len(values), thresholds)
        changes = [(lab.id, g) for lab, g in zip(labels, grades, strict=True) if lab.grade != g]
        await self.repo.set_grades([(lab.id, g) for lab, g in zip(labels, grades, strict=True)], bench.revision)
        self.touch([lab.gtin for lab in labels])
        for lab in labels:
            self.session.expire(lab)  # written behind the ORM's back
        return len(changes)


class CertificationService(_Base):
    # --- applications -------------------------------------------------------------------------

    @staticmethod
    def application_out(app: LabelApplication) -> ApplicationOut:
        return ApplicationOut(id=app.id, gtin=app.gtin, status=app.status,  # type: ignore[arg-type]
                              certification_body=app.certification_body, applicant_org=app.applicant_org,
                              inventory_revision=app.inventory_revision, created_at=app.created_at,
                              decided_at=app.decided_at, comment=app.comment, label_id=app.label_id)

    async def apply(self, gtin: str, data: ApplicationIn, actor: Principal) -> ApplicationOut:
        product = await self.products.owned(gtin, actor)
        await ProductRepository(self.session).lock(product.gtin)  # one pending application per product
        if data.certification_body is not None and "\x00" in data.certification_body:
            raise _field("certification_body", N_("Must not contain the NUL character."))
        if not await ProductRepository(self.session).lines(product.gtin):
            raise UnprocessableError(N_("The product has no inventory yet; add one before applying."),
                                     reason="inventory_empty")
        pending = await self.repo.pending_for(product.gtin)
        if pending is not None:
            raise ConflictError(N_("Application {id} for this product is still pending."),
                                reason="application_pending", id=pending.id)
        app = LabelApplication(id=str(uuid.uuid4()), gtin=product.gtin, applicant_org=product.owner_org,
                               applicant_sub=actor.sub, certification_body=data.certification_body, status="pending",
                               inventory_revision=product.inventory_revision, created_at=utcnow())
        self.session.add(app)
        if data.certification_body is not None:
            # Naming a body entrusts it with the inventory, as POST .../verifiers does.
            await self.products.assign_verifier(product.gtin, data.certification_body, actor)
        self.record("application", app.id, "apply", actor, after="pending",
                    detail={"gtin": product.gtin, "certification_body": data.certification_body})
        await self.session.flush()
        return self.application_out(app)

    async def withdraw(self, gtin: str, application_id: str, actor: Principal) -> ApplicationOut:
        """The applicant takes a pending application back (e.g. a body that never answers)."""
        product = await self.products.owned(gtin, actor)
        app = await self.repo.application(application_id)
        if app is None or app.gtin != product.gtin:
            raise NotFoundError(N_("Application {id} was not found."), reason="application_not_found",
                                id=application_id)
        if not await self.repo.withdraw(app.id, decided_at=utcnow(), decided_by=actor.sub):
            raise ConflictError(N_("Application {id} was already decided ({status})."),
                                reason="application_not_pending", id=app.id, status=app.status)
        await self.session.refresh(app)
        self.record("application", app.id, "withdraw", actor, before="pending", after="withdrawn")
        await self.session.flush()
        return self.application_out(app)

    @staticmethod
    def _body(viewer: Principal) -> str:
        if not viewer.org:
            raise ForbiddenError(N_("A verifier token must name its certification body (org)."),
                                 reason="no_organisation")
        return viewer.org

    async def queue(self, viewer: Principal, status: str | None, *, after: tuple[datetime, str] | None,
                    limit: int) -> list[tuple[LabelApplication, Product, InventoryOut | None, Footprint | None]]:
        """The body's applications, each pending one with the inventory and the footprint a decision
        would label (the same samples and seed)."""
        if not viewer.org:
            return []  # a verifier of no certification body has no applications to see
        out = []
        for app in await self.repo.queue(viewer.org, status, after=after, limit=limit):
            product = await self.products.repo.get(app.gtin)
            assert product is not None  # applications cascade with their product
            inventory = footprint = None
            # A body the owner has unassigned since keeps seeing the application, not the inventory.
            if app.status == "pending" and (app.certification_body is None
                                            or viewer.org in await self.products.repo.verifiers(product.gtin)):
                inventory = await self.products.inventory_of(product)
                footprint = await self.products.compute(product, samples=LABEL_SAMPLES, seed=seed_of(app.id))
            out.append((app, product, inventory, footprint))
        return out

    async def decide(self, application_id: str, data: DecisionIn, actor: Principal) -> DecisionOut:
        body = self._body(actor)
        app = await self.repo.application(application_id)
        if app is None or app.certification_body not in (None, body):
            raise NotFoundError(N_("Application {id} was not found."), reason="application_not_found",
                                id=application_id)
        if app.status != "pending":
            raise ConflictError(N_("Application {id} was already decided ({status})."),
                                reason="application_not_pending", id=app.id, status=app.status)
        today = today_cst()
        if data.comment is not None and "\x00" in data.comment:
            raise _field("comment", N_("Must not contain the NUL character."))
        if data.decision == "reject" and not data.comment:
            raise _field("comment", N_("Say why the application is rejected."))
        if data.decision == "approve":
            if data.valid_until is None:
                raise _field("valid_until", N_("An approval needs the label's last valid day."))
            self._check_validity(data.valid_until, today)
        # The inventory cannot change between the check below and the footprint the label is issued on.
        await ProductRepository(self.session).lock(app.gtin)
        product = await self.products.repo.get(app.gtin)
        assert product is not None
        if (data.decision == "approve" and app.certification_body is not None
                and body not in await self.products.repo.verifiers(product.gtin)):
            raise ConflictError(N_("The applicant has withdrawn the inventory from {body}; the application can "
                                   "only be rejected."), reason="verifier_not_assigned", body=body)
        if data.decision == "approve" and product.inventory_revision != app.inventory_revision:
            raise ConflictError(N_("The inventory changed after the application (revision {applied} -> {now}); "
                                   "the applicant must apply again."), reason="inventory_changed",
                                applied=app.inventory_revision, now=product.inventory_revision)
        status = "approved" if data.decision == "approve" else "rejected"
        if not await self.repo.claim_decision(app.id, body, status=status, decided_at=utcnow(), decided_by=actor.sub,
                                              comment=data.comment):
            raise ConflictError(N_("Application {id} was already decided."), reason="application_not_pending",
                                id=app.id, status="decided")
        await self.session.refresh(app)
        self.record("application", app.id, data.decision, actor, before="pending", after=status, reason=data.comment)
        label = None
        if status == "approved":
            await self.products.assign_verifier(product.gtin, body, _as_owner(product))
            label = await self._issue(product, scheme="verified", body=body, valid_until=data.valid_until,  # type: ignore[arg-type]
                                      actor=actor, application_id=app.id, seed=seed_of(app.id))
            app.label_id = label.id
            await self.session.flush()
        return DecisionOut(status=status, label=None if label is None else label_out(label, today))  # type: ignore[arg-type]

    @staticmethod
    def _check_validity(valid_until: date, today: date) -> None:
        if valid_until < today:
            raise _field("valid_until", N_("The last valid day cannot be in the past."), reason="validity_in_past")
        if (valid_until - today).days > MAX_VALIDITY_DAYS:
            raise _field("valid_until", N_("A label is valid for at most five years."), reason="validity_too_long")

    # --- labels -------------------------------------------------------------------------------

    async def self_declare(self, gtin: str, data: SelfDeclarationIn, actor: Principal) -> LabelOut:
        product = await self.products.owned(gtin, actor)
        await ProductRepository(self.session).lock(product.gtin)
        today = today_cst()
        self._check_validity(data.valid_until, today)
        if not await ProductRepository(self.session).lines(product.gtin):
            raise UnprocessableError(N_("The product has no inventory yet; add one before applying."),
                                     reason="inventory_empty")
        current = await self.repo.current(product.gtin)
        if current is not None and current.scheme == "verified" and label_status(current, today) == "active":
            raise ConflictError(N_("The product has a verified label in force; a self-declared one cannot replace it."),
                                reason="verified_label_in_force")
        label_id = str(uuid.uuid4())
        label = await self._issue(product, scheme="self_declared", body=None, valid_until=data.valid_until,
                                  actor=actor, application_id=None, seed=seed_of(label_id), label_id=label_id)
        return label_out(label, today)

    async def _issue(self, product: Product, *, scheme: str, body: str | None, valid_until: date, actor: Principal,
                     application_id: str | None, seed: int, label_id: str | None = None) -> Label:
        bench = await self.repo.benchmark(product.category, lock=True)
        if bench is None:
            raise ConflictError(N_("Category {category} has no benchmark yet, so no grade can be given."),
                                reason="benchmark_missing", category=product.category)
        footprint = await self.products.compute(product, samples=LABEL_SAMPLES, seed=seed)
        mc = footprint.monte_carlo
        declared = Decimal(footprint.kgco2e_per_unit)
        p5, p50, p80, p95 = (Decimal(x) for x in (mc.p5, mc.p50, mc.p80, mc.p95))
        with localcontext(EXACT):
            if p5 == p95:  # no uncertainty data on any line: the declared value, surcharged
                # Upwards whatever the sign: x (1 + penalty) would make a negative footprint look better.
                value = (declared + abs(declared) * bench.uncertainty_penalty).normalize()
                basis = "declared_with_penalty"
            else:
                value, basis = p80, "monte_carlo_p80"
        graded = self.per_benchmark_unit(value, product.declared_unit, bench.declared_unit)
        grade = grade_of(graded, [Decimal(t) for t in bench.thresholds])
        today = today_cst()
        previous = await self.repo.current(product.gtin)
        if previous is not None:
            if label_status(previous, today) == "active":
                previous.status, previous.revoked_at, previous.revoked_by = "revoked", utcnow(), actor.sub
                previous.revoked_reason = "superseded"
                self.record("label", previous.id, "supersede", actor, before="active", after="revoked",
                            reason="superseded")
            previous.current = False
            await self.session.flush()  # the old one stops being current before the new one is
        label = Label(
            id=label_id or str(uuid.uuid4()), gtin=product.gtin, owner_org=product.owner_org,
            application_id=application_id, scheme=scheme, status="active", current=True, category=product.category,
            declared_unit=product.declared_unit, kgco2e_per_unit=value, declared_kgco2e_per_unit=declared,
            conservative_basis=basis, uncertainty={"samples": mc.samples, "seed": mc.seed, "mean": mc.mean,
                                                   "p5": mc.p5, "p50": mc.p50, "p80": mc.p80, "p95": mc.p95},
            gsd=lognormal_gsd(p50, p95), grade=grade, benchmark_revision=bench.revision, certification_body=body,
            issued_at=utcnow(), issued_by=actor.sub, valid_until=valid_until,
            factor_versions=[{"id": f.id, "version": f.version} for f in footprint.factor_versions],
            inventory_revision=product.inventory_revision)
        self.session.add(label)
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError:
            raise ConflictError(N_("Another label was issued for this product meanwhile; retry."),
                                reason="label_conflict") from None
        self.record("label", label.id, "issue", actor, after="active",
                    detail={"scheme": scheme, "grade": grade, "kgco2e_per_unit": plain(value), "basis": basis,
                            "application_id": application_id, "benchmark_revision": bench.revision})
        self.touch([product.gtin])
        return label

    async def _label(self, label_id: str) -> Label:
        label = await self.repo.label(label_id)
        if label is None:
            raise NotFoundError(N_("Label {id} was not found."), reason="label_not_found", id=label_id)
        return label

    async def get(self, label_id: str) -> LabelOut:
        return label_out(await self._label(label_id), today_cst())

    def _may_manage(self, label: Label, actor: Principal) -> bool:
        """Who may revoke: the issuing body's verifiers, admins, and for a self-declared label its owner."""
        if actor.has("admin"):
            return True
        if label.scheme == "verified":
            return actor.has("verifier") and bool(actor.org) and actor.org == label.certification_body
        return enterprise_of(actor) == label.owner_org

    async def revoke(self, label_id: str, data: RevokeIn, actor: Principal) -> LabelOut:
        label = await self._label(label_id)
        if not self._may_manage(label, actor):
            raise ForbiddenError(N_("Only the issuing certification body or an administrator may revoke this label."),
                                 reason="not_issuing_body")
        if "\x00" in data.reason:
            raise _field("reason", N_("Must not contain the NUL character."))
        today = today_cst()
        status = label_status(label, today)
        if status != "active":
            raise ConflictError(N_("Label {id} is {status}; only an active label can be revoked."),
                                reason="label_not_active", id=label.id, status=status)
        label.status, label.revoked_at, label.revoked_by, label.revoked_reason = "revoked", utcnow(), actor.sub, data.reason
        self.record("label", label.id, "revoke", actor, before="active", after="revoked", reason=data.reason)
        await self.session.flush()
        self.touch([label.gtin])
        return label_out(label, today)

    async def history(self, label_id: str, viewer: Principal) -> LabelHistory:
        label = await self._label(label_id)
        if not (self._may_manage(label, viewer) or enterprise_of(viewer) == label.owner_org):
            raise NotFoundError(N_("Label {id} was not found."), reason="label_not_found", id=label_id)
        events = list(await self.repo.events("label", label.id))
        if label.application_id:
            events = list(await self.repo.events("application", label.application_id)) + events
        events.sort(key=lambda e: (e.at, e.id))
        return LabelHistory(label=label_out(label, today_cst()), events=[
            EventOut(action=e.action, from_status=e.from_status, to_status=e.to_status, actor=e.actor_sub,
                     actor_org=e.actor_org, at=e.at, reason=e.reason) for e in events])


def _as_owner(product: Product) -> Principal:
    """The owner's consent given by applying: the deciding body joins the product's verifiers."""
    return Principal(sub="certification", roles=frozenset({"merchant"}), org=product.owner_org)


class PublicLabelService(_Base):
    """What anyone may see: products with their current label, listings, alternatives."""

    async def view(self, gtin: str, base_url: str) -> tuple[PublicProduct, int]:
        """The public view and how long it may be cached (never past the label's expiry)."""
        found = await self.repo.product_and_current(gtin14(gtin))  # one query, not two
        if found is None:
            raise NotFoundError(N_("Product {gtin} was not found."), reason="product_not_found", gtin=gtin)
        product, label = found
        today = today_cst()
        listings = await self.repo.listings_of_product(product.gtin, LISTINGS_SHOWN)
        ttl = MAX_TTL
        if label is not None and label_status(label, today) == "active":
            ttl = min(ttl, int((expires_at(label.valid_until) - utcnow()).total_seconds()))
        return self._public(product, label, listings, today, base_url), max(ttl, 0)

    @staticmethod
    def _public(product: Product, label: Label | None, listings: Iterable[Listing], today: date,
                base_url: str) -> PublicProduct:
        return PublicProduct(
            gtin=product.gtin, names=msgspec.convert(product.names, Names), category=product.category,
            declared_unit=product.declared_unit, declared_units_per_item=plain(product.declared_units_per_item),
            label=None if label is None else label_out(label, today),
            listings=[listing_out(x) for x in listings], digital_link=f"{base_url}/01/{product.gtin}")

    async def alternatives(self, gtin: str, base_url: str, limit: int = 20) -> AlternativesPage:
        """Listed products of the same category with a better grade or a lower footprint, best first."""
        product = await self.products._product(gtin)  # noqa: SLF001
        today = today_cst()
        own = await self.repo.current(product.gtin)
        own_in_force = own is not None and label_status(own, today) == "active"
        candidates = []
        for other, label in await self.repo.alternatives(product.category, product.gtin, today, limit=500):
            try:
                value = self.per_benchmark_unit(label.kgco2e_per_unit, label.declared_unit, product.declared_unit)
            except ConflictError:
                continue  # a unit that cannot be compared is no alternative
            if own_in_force:
                assert own is not None
                if not (label.grade < own.grade or value < own.kgco2e_per_unit):
                    continue
            candidates.append((GRADES.index(label.grade), value, other, label))  # type: ignore[arg-type]
        candidates.sort(key=lambda c: (c[0], c[1], c[2].gtin))
        out = []
        for _, _, other, label in candidates[:limit]:
            listings = await self.repo.listings_of_product(other.gtin, LISTINGS_SHOWN)
            out.append(self._public(other, label, listings, today, base_url))
        return AlternativesPage(items=out)

    # --- listings -----------------------------------------------------------------------------

    async def create_listing(self, data: ListingIn, actor: Principal) -> ListingOut:
        org = enterprise_of(actor)
        if org is None:
            raise ForbiddenError(N_("A merchant token with an organisation (org) is needed."), reason="no_organisation")
        gtin = gtin14(data.gtin)
        for name in ("store", "url"):
            if "\x00" in (getattr(data, name) or ""):
                raise _field(name, N_("Must not contain the NUL character."))
        if await self.products.repo.get(gtin) is None:
            raise _field("gtin", N_("No product with this GTIN is registered."), reason="product_not_found")
        if await self.repo.listing_of(org, gtin, data.store) is not None:
            raise ConflictError(N_("This product is already listed in that store."), reason="listing_exists")
        listing = Listing(id=str(uuid.uuid4()), gtin=gtin, merchant_org=org, store=data.store,
                          price_cents=data.price_cents, url=data.url, created_at=utcnow(), created_by=actor.sub)
        self.session.add(listing)
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError:
            raise ConflictError(N_("This product is already listed in that store."), reason="listing_exists") from None
        self.touch([gtin])
        return listing_out(listing)

    async def delete_listing(self, listing_id: str, actor: Principal) -> None:
        listing = await self.repo.listing(listing_id)
        if listing is None or listing.merchant_org != enterprise_of(actor):
            raise NotFoundError(N_("Listing {id} was not found."), reason="listing_not_found", id=listing_id)
        await self.session.delete(listing)
        await self.session.flush()
        self.touch([listing.gtin])

    async def search(self, *, category: str | None, max_grade: str | None, merchant: str | None,
                     after: tuple[str, str] | None, limit: int) -> tuple[list[ListingItem], tuple[str, str] | None]:
        today = today_cst()
        rows = await self.repo.search_listings(today=today, category=category, max_grade=max_grade,
                                               merchant=merchant, after=after, limit=limit + 1)
        more = len(rows) > limit
        rows = list(rows)[:limit]
        items = [ListingItem(id=x.id, gtin=x.gtin, merchant=x.merchant_org, store=x.store, price_cents=x.price_cents,
                             url=x.url, names=msgspec.convert(p.names, Names), category=p.category,
                             declared_unit=p.declared_unit, label=None if lab is None else label_out(lab, today))
                 for x, p, lab in rows]
        last = rows[-1] if rows else None
        cursor = ((last[2].grade if last[2] is not None else "Z"), last[0].id) if more and last else None
        return items, cursor


def listing_out(listing: Listing) -> ListingOut:
    return ListingOut(id=listing.id, gtin=listing.gtin, merchant=listing.merchant_org, store=listing.store,
                      price_cents=listing.price_cents, url=listing.url, created_at=listing.created_at)

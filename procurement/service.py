"""Tenders, sealed bids and evaluations: validation, who may read what and when, receipts.
Services flush and never commit; the request's unit of work commits.

Sealing: before the deadline a bid's content reaches its supplier only, through every route; the
agency's officers read all bids once the deadline has passed, officers of other agencies never,
and no other role at all. Where a refusal would reveal that a bid exists, it is a 404.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import MAX_PREC, Context, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.auth import Principal
from carbonpuhui.errors import ConflictError, FieldError, ForbiddenError, NotFoundError, UnprocessableError
from carbonpuhui.factors.service import enterprise_of, fits, plain
from carbonpuhui.footprints.units import UnitError, conversion_factor
from carbonpuhui.i18n import N_
from carbonpuhui.labels.models import Label
from procurement import evaluation
from procurement.models import Bid, Tender, TenderEvaluation
from procurement.repository import TenderRepository
from procurement.schemas import (
    CRITERIA,
    Analysis,
    AwardIn,
    AwardOut,
    BenchmarkSnapshot,
    BidIn,
    BidOut,
    BidReceipt,
    CentralWeights,
    EligibilityOut,
    EvaluationIn,
    EvaluationOut,
    FootprintOut,
    RankedBid,
    TenderIn,
    TenderOut,
    WeightRangeOut,
    WeightRangesOut,
    WeightsOut,
)

CHINA = ZoneInfo("Asia/Shanghai")  # label validity dates are Chinese calendar dates
SCORE_PLACES = Decimal("0.000001")
INVALID = N_("Some fields are invalid.")
MAX_CELLS = 20_000_000  # samples × bids of one evaluation
# The analysis holds bids × bids matrices (per thread, in the answer, in the stored result): beyond
# this many bids they alone take gigabytes, whatever the samples.
MAX_BIDS = 1_000
# normalize() rounds to its context's precision (28 digits by default): receipts must not.
EXACT = Context(prec=MAX_PREC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def china_date(moment: datetime) -> date:
    return moment.astimezone(CHINA).date()


def in_calendar(moment: datetime) -> bool:
    """Whether ``moment`` is a date in UTC and in China (where label validity is judged): 9999-12-31
    at -05:00 is not, and converting it would raise."""
    try:
        moment.astimezone(UTC)
        china_date(moment)
    except OverflowError:
        return False
    return True


def canonical_decimal(value: Decimal) -> str:
    """One spelling per number: "1.20", "1.2" and "12E-1" all read "1.2"; every digit is kept."""
    return plain(value.normalize(EXACT))


def score_text(value: Fraction | None) -> str | None:
    """An exact score as a decimal string, to six places (half to even)."""
    if value is None:
        return None
    return plain((Decimal(value.numerator) / Decimal(value.denominator)).quantize(SCORE_PLACES))


def tender_problems(data: TenderIn, now: datetime) -> list[FieldError]:
    """Cross-field rules a schema cannot express. Messages are message ids (translated later)."""
    problems: list[FieldError] = []

    def bad(field: str, message: str) -> None:
        problems.append(FieldError(field=field, message=message))

    if "\x00" in data.title:
        bad("title", N_("Must not contain the NUL character."))
    if not fits(data.quantity) or data.quantity <= 0:
        bad("quantity", N_("Must be a positive number."))
    if data.deadline.tzinfo is None or data.deadline.utcoffset() is None:
        bad("deadline", N_("Give the time with its offset (RFC 3339), e.g. 2027-01-31T09:00:00+08:00."))
    elif data.deadline <= now:
        bad("deadline", N_("The deadline must be in the future."))
    elif not in_calendar(data.deadline):
        bad("deadline", N_("The deadline is too far in the future."))
    limit = data.eligibility.max_kgco2e_per_unit
    if limit is not None and (not fits(limit) or limit <= 0):
        bad("eligibility.max_kgco2e_per_unit", N_("Must be a positive number."))
    weights = {name: getattr(data.weights, name) for name in CRITERIA}
    shares_ok = True
    for name, weight in weights.items():
        if not fits(weight) or not Decimal(0) <= weight <= 1:
            bad(f"weights.{name}", N_("A weight is between 0 and 1."))
            shares_ok = False
    if shares_ok and sum(Fraction(w) for w in weights.values()) != 1:  # exact: 30 + 30 digits exceed Decimal
        bad("weights", N_("The weights must sum to exactly 1."))
    if data.carbon_method == "monetised" and data.shadow_price_cents_per_tco2e is None:
        bad("shadow_price_cents_per_tco2e", N_("The monetised method needs a shadow carbon price."))
    if data.carbon_method != "monetised" and data.shadow_price_cents_per_tco2e is not None:
        bad("shadow_price_cents_per_tco2e", N_("Only the monetised method uses a shadow carbon price."))
    if data.weight_ranges is not None and shares_ok:
        varying = 0
        for name in CRITERIA:
            span = getattr(data.weight_ranges, name)
            if span is None:
                continue
            field = f"weight_ranges.{name}"
            if not (fits(span.min) and fits(span.max)) or not Decimal(0) <= span.min <= span.max <= 1:
                bad(field, N_("Needs 0 <= min <= max <= 1."))
            elif not span.min <= weights[name] <= span.max:
                bad(field, N_("The range must contain the criterion's weight."))
            else:
                varying += span.min < span.max
        if varying < 2 and not any(p.field and p.field.startswith("weight_ranges") for p in problems):
            bad("weight_ranges", N_("Give ranges to at least two criteria: the weights always sum to 1."))
    return problems


def label_state(label: Label | None, deadline: datetime) -> str:
    """A cited label as it stands for the opening: revoked (or gone), expired before the deadline's
    date in China, or active."""
    if label is None or label.status == "revoked":
        return "revoked"
    if label.valid_until < china_date(deadline):
        return "expired"
    return "active"


def label_distribution(label: Label, factor: Decimal) -> tuple[Decimal, float]:
    """A label's footprint for the Monte Carlo, per functional unit: lognormal with the label's
    Monte Carlo P50 as median and its fitted gsd; without those (no uncertainty data), exactly
    its certified value."""
    try:
        p50 = Decimal(str((label.uncertainty or {}).get("p50")))
    except (InvalidOperation, ValueError):
        p50 = Decimal("NaN")
    if label.gsd is None or not label.gsd > 1 or not p50.is_finite() or p50 <= 0:
        return label.kgco2e_per_unit * factor, 1.0
    return p50 * factor, float(label.gsd)


class TenderService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repo = TenderRepository(session)

    # --- who may see what -------------------------------------------------------------------

    @staticmethod
    def is_agency_officer(tender: Tender, viewer: Principal | None) -> bool:
        return viewer is not None and viewer.has("officer") and bool(viewer.org) and viewer.org == tender.agency_org

    @staticmethod
    def is_open(tender: Tender) -> bool:
        return utcnow() < tender.deadline

    async def tender(self, tender_id: str) -> Tender:
        tender = await self.repo.tender(tender_id)
        if tender is None:
            raise NotFoundError(N_("Tender {tender_id} was not found."), reason="tender_not_found",
                                tender_id=tender_id)
        return tender

    def _agency_after_deadline(self, tender: Tender, viewer: Principal) -> None:
        """The agency's officers, once bids are opened; anyone else is refused."""
        if not self.is_agency_officer(tender, viewer):
            raise ForbiddenError(N_("Only officers of the tender's agency may do this."), reason="not_tender_agency")
        if self.is_open(tender):
            raise ConflictError(N_("Bids are sealed until the deadline, {deadline}."), reason="bids_sealed",
                                deadline=tender.deadline.isoformat())

    # --- tenders -----------------------------------------------------------------------------

    async def create(self, data: TenderIn, actor: Principal) -> Tender:
        if not actor.org:
            raise ForbiddenError(N_("An officer token with an organisation (org) is needed."),
                                 reason="no_organisation")
        problems = tender_problems(data, utcnow())
        if problems:
            raise UnprocessableError(INVALID, errors=problems)
        benchmark = await self._benchmark(data) if data.carbon_method == "benchmark" else None
        ranges = None
        if data.weight_ranges is not None:
            ranges = {name: {"min": plain(span.min), "max": plain(span.max)}
                      for name in CRITERIA if (span := getattr(data.weight_ranges, name)) is not None}
        row = Tender(
            id=str(uuid.uuid4()), agency_org=actor.org, title=data.title, category=data.category,
            functional_unit=data.functional_unit, quantity=data.quantity, deadline=data.deadline.astimezone(UTC),
            max_kgco2e_per_unit=data.eligibility.max_kgco2e_per_unit,
            label_required=data.eligibility.label_required, weight_price=data.weights.price,
            weight_carbon=data.weights.carbon, weight_quality=data.weights.quality,
            carbon_method=data.carbon_method, shadow_price_cents_per_tco2e=data.shadow_price_cents_per_tco2e,
            weight_ranges=ranges, benchmark=benchmark, created_at=utcnow(), created_by=actor.sub)
        self.session.add(row)
        await self.session.flush()
        return row

    async def _benchmark(self, data: TenderIn) -> dict[str, Any]:
        """The category's benchmark now, per functional unit: the tender is scored on this snapshot."""
        benchmark = await self.repo.benchmark(data.category)
        if benchmark is None or not benchmark.thresholds:
            raise UnprocessableError(N_("Category {category} has no benchmark to score against."),
                                     reason="benchmark_missing", category=data.category,
                                     errors=[FieldError(field="carbon_method",
                                                        message=N_("Choose another method, or ask for a benchmark."))])
        try:
            factor = conversion_factor(data.functional_unit, benchmark.declared_unit)
        except UnitError:
            raise UnprocessableError(
                N_("The benchmark is per {unit}, which does not convert to the functional unit."),
                reason="benchmark_unit_mismatch", unit=benchmark.declared_unit,
                errors=[FieldError(field="functional_unit", message=N_("Not convertible to the benchmark's unit."))],
            ) from None
        return {"percentiles": list(benchmark.percentiles),
                "thresholds": [canonical_decimal(Decimal(t) * factor) for t in benchmark.thresholds],
                "baseline": canonical_decimal(benchmark.baseline * factor), "revision": benchmark.revision}

    async def tenders(self, *, after: tuple[datetime, str] | None, limit: int, agency: str | None,
                      category: str | None, status: str | None) -> Sequence[Tender]:
        now = utcnow()
        return await self.repo.tenders(after=after, limit=limit, agency=agency, category=category,
                                       open_at=now if status == "open" else None,
                                       closed_at=now if status == "closed" else None)

    async def out(self, tender: Tender) -> TenderOut:
        closed = not self.is_open(tender)
        ranges = None
        if tender.weight_ranges is not None:
            ranges = WeightRangesOut(**{name: (WeightRangeOut(**span) if (span := tender.weight_ranges.get(name))
                                               else None) for name in CRITERIA})
        return TenderOut(
            id=tender.id, agency=tender.agency_org, title=tender.title, category=tender.category,
            functional_unit=tender.functional_unit, quantity=plain(tender.quantity), deadline=tender.deadline,
            status="closed" if closed else "open",
            eligibility=EligibilityOut(
                max_kgco2e_per_unit=None if tender.max_kgco2e_per_unit is None else plain(tender.max_kgco2e_per_unit),
                label_required=tender.label_required),
            weights=WeightsOut(price=plain(tender.weight_price), carbon=plain(tender.weight_carbon),
                               quality=plain(tender.weight_quality)),
            carbon_method=tender.carbon_method,  # type: ignore[arg-type]
            shadow_price_cents_per_tco2e=tender.shadow_price_cents_per_tco2e, weight_ranges=ranges,
            benchmark=None if tender.benchmark is None else msgspec.convert(tender.benchmark, BenchmarkSnapshot),
            # Before the deadline even the number of bids is sealed: it tells competitors too much.
            bid_count=await self.repo.bid_count(tender.id) if closed else None,
            created_at=tender.created_at, award=await self._award_out(tender))

    async def _award_out(self, tender: Tender) -> AwardOut | None:
        if tender.awarded_bid_id is None or tender.awarded_at is None:
            return None
        bid = await self.repo.bid(tender.id, tender.awarded_bid_id)
        if bid is None:
            return None
        return AwardOut(bid_id=bid.id, supplier_org=bid.supplier_org, price_cents=bid.price_cents,
                        kgco2e_per_unit=plain(bid.kgco2e_per_unit), awarded_at=tender.awarded_at)

    # --- bids --------------------------------------------------------------------------------

    async def submit(self, tender_id: str, data: BidIn, actor: Principal) -> tuple[Bid, bool]:
        """Create the supplier's bid, or replace it (same id, next revision) until the deadline."""
        tender = await self.tender(tender_id)
        supplier = enterprise_of(actor)
        if supplier is None:
            raise ForbiddenError(N_("A merchant token with an organisation (org) is needed."),
                                 reason="no_organisation")
        if supplier == tender.agency_org:
            raise ForbiddenError(N_("An agency cannot bid on its own tender."), reason="own_tender")
        if not self.is_open(tender):
            raise self._closed(tender)
        values = await self._footprint(tender, data, supplier)
        quality = data.quality_score
        if quality is not None and (not fits(quality) or not Decimal(0) <= quality <= 100):
            raise UnprocessableError(INVALID, errors=[
                FieldError(field="quality_score", message=N_("A quality score is between 0 and 100."))])
        footprint: dict[str, Any] = (
            {"label_id": data.footprint.label_id} if data.footprint.label_id is not None else
            {"kgco2e_per_unit": canonical_decimal(data.footprint.kgco2e_per_unit or Decimal(0)),
             "gsd": data.footprint.gsd})
        canonical = msgspec.json.encode({
            "tender_id": tender.id, "supplier": supplier, "price_cents": data.price_cents, "footprint": footprint,
            "quality_score": None if quality is None else canonical_decimal(quality)}, order="sorted").decode()
        fields = dict(values, price_cents=data.price_cents, quality_score=quality, canonical=canonical,
                      receipt_sha256=hashlib.sha256(canonical.encode()).hexdigest(), submitted_by=actor.sub)
        existing = await self.repo.supplier_bid(tender.id, supplier, for_update=True)
        # In time means recorded before the deadline: checked again now that the label lookup and the
        # row lock are behind us, with the very instant the bid is stamped with.
        fields["submitted_at"] = now = utcnow()
        if now >= tender.deadline:
            raise self._closed(tender)
        if existing is None:
            row = Bid(id=str(uuid.uuid4()), tender_id=tender.id, supplier_org=supplier, revision=1, **fields)
            try:
                async with self.session.begin_nested():  # a concurrent first submission wins alone
                    self.session.add(row)
                    await self.session.flush()
                return row, False
            except IntegrityError:
                existing = await self.repo.supplier_bid(tender.id, supplier, for_update=True)
                if existing is None:
                    raise
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.revision += 1
        await self.session.flush()
        return existing, True

    @staticmethod
    def _closed(tender: Tender) -> ConflictError:
        return ConflictError(N_("The deadline for bids has passed ({deadline})."), reason="tender_closed",
                             deadline=tender.deadline.isoformat())

    async def _footprint(self, tender: Tender, data: BidIn, supplier: str) -> dict[str, Any]:
        """The bid's footprint per functional unit: point value, Monte Carlo median and gsd."""
        given = data.footprint
        if (given.label_id is None) == (given.kgco2e_per_unit is None):
            raise UnprocessableError(INVALID, errors=[FieldError(
                field="footprint", message=N_("Give either kgco2e_per_unit with gsd, or label_id."))])
        if given.kgco2e_per_unit is not None:
            problems = []
            if not fits(given.kgco2e_per_unit) or given.kgco2e_per_unit <= 0:
                problems.append(FieldError(field="footprint.kgco2e_per_unit", message=N_("Must be a positive number.")))
            if given.gsd is None:
                problems.append(FieldError(field="footprint.gsd",
                                           message=N_("Give the geometric standard deviation (1 for an exact value).")))
            if problems:
                raise UnprocessableError(INVALID, errors=problems)
            return {"footprint_source": "declared", "kgco2e_per_unit": given.kgco2e_per_unit,
                    "median_kgco2e_per_unit": given.kgco2e_per_unit, "gsd": given.gsd, "label_id": None,
                    "label_scheme": None}
        if given.gsd is not None:
            raise UnprocessableError(INVALID, errors=[FieldError(
                field="footprint.gsd", message=N_("A label brings its own uncertainty; leave gsd out."))])
        return self._label_footprint(tender, await self.repo.labels([given.label_id or ""]), given.label_id or "",
                                     supplier)

    @staticmethod
    def _label_footprint(tender: Tender, labels: dict[str, Label], label_id: str, supplier: str) -> dict[str, Any]:
        label = labels.get(label_id)

        def refuse(message: str, reason: str) -> UnprocessableError:
            return UnprocessableError(message, reason=reason, errors=[
                FieldError(field="footprint.label_id", message=message)])

        if label is None or label.owner_org != supplier:  # another organisation's label: as if absent
            raise refuse(N_("Your organisation has no such label."), "label_not_found")
        if label.status == "revoked":
            raise refuse(N_("This label has been revoked."), "label_revoked")
        if not label.current:
            raise refuse(N_("This label has been superseded by a newer one; cite that."), "label_superseded")
        if label.valid_until < china_date(utcnow()):
            raise refuse(N_("This label has expired."), "label_expired")
        if label.category != tender.category and not label.category.startswith(f"{tender.category}."):
            raise refuse(N_("The label is for another category than the tender's."), "label_category_mismatch")
        try:
            factor = conversion_factor(tender.functional_unit, label.declared_unit)
        except UnitError:
            raise refuse(N_("The label's declared unit does not convert to the tender's functional unit."),
                         "label_unit_mismatch") from None
        median, gsd = label_distribution(label, factor)
        return {"footprint_source": "label", "kgco2e_per_unit": label.kgco2e_per_unit * factor,
                "median_kgco2e_per_unit": median, "gsd": gsd, "label_id": label.id, "label_scheme": label.scheme}

    async def readable_bids(self, tender_id: str, viewer: Principal, *, after: str | None,
                            limit: int) -> Sequence[Bid]:
        """All bids for the agency's officers after the deadline; a supplier's own bid to the supplier."""
        tender = await self.tender(tender_id)
        if self.is_agency_officer(tender, viewer):
            self._agency_after_deadline(tender, viewer)
            return await self.repo.bids(tender.id, after=after, limit=limit)
        supplier = enterprise_of(viewer)
        if supplier is None:
            raise ForbiddenError(N_("Only the tender's agency and its bidders may read bids."), reason="not_a_party")
        own = await self.repo.supplier_bid(tender.id, supplier)
        return [own] if own is not None and (after is None or own.id > after) else []

    async def readable_bid(self, tender_id: str, bid_id: str, viewer: Principal) -> Bid:
        tender = await self.tender(tender_id)
        bid = await self.repo.bid(tender.id, bid_id)
        if bid is not None and (bid.supplier_org == enterprise_of(viewer) or (
                self.is_agency_officer(tender, viewer) and not self.is_open(tender))):
            return bid
        raise NotFoundError(N_("Bid {bid_id} was not found."), reason="bid_not_found", bid_id=bid_id)

    @staticmethod
    def bid_out(bid: Bid) -> BidOut:
        return BidOut(
            id=bid.id, tender_id=bid.tender_id, supplier=bid.supplier_org, price_cents=bid.price_cents,
            footprint=FootprintOut(source=bid.footprint_source,  # type: ignore[arg-type]
                                   kgco2e_per_unit=plain(bid.kgco2e_per_unit),
                                   median_kgco2e_per_unit=plain(bid.median_kgco2e_per_unit), gsd=bid.gsd,
                                   label_id=bid.label_id, label_scheme=bid.label_scheme),
            quality_score=None if bid.quality_score is None else plain(bid.quality_score),
            receipt_sha256=bid.receipt_sha256, revision=bid.revision, submitted_at=bid.submitted_at)

    @staticmethod
    def receipt(bid: Bid, replaced: bool) -> BidReceipt:
        return BidReceipt(id=bid.id, tender_id=bid.tender_id, receipt_sha256=bid.receipt_sha256,
                          canonical=bid.canonical, revision=bid.revision, replaced=replaced,
                          submitted_at=bid.submitted_at)

    # --- evaluation --------------------------------------------------------------------------

    @staticmethod
    def rules(tender: Tender) -> evaluation.Rules:
        ranges = None
        if tender.weight_ranges is not None:
            nominal = (tender.weight_price, tender.weight_carbon, tender.weight_quality)
            ranges = tuple((Decimal(span["min"]), Decimal(span["max"])) if (span := tender.weight_ranges.get(name))
                           else (weight, weight) for name, weight in zip(CRITERIA, nominal, strict=True))
        thresholds = tuple(Decimal(t) for t in (tender.benchmark or {}).get("thresholds", []))
        return evaluation.Rules(
            weights=(tender.weight_price, tender.weight_carbon, tender.weight_quality), method=tender.carbon_method,
            quantity=tender.quantity, shadow_price_cents_per_tco2e=tender.shadow_price_cents_per_tco2e,
            thresholds=thresholds, max_kgco2e=tender.max_kgco2e_per_unit, label_required=tender.label_required,
            weight_ranges=ranges)

    async def evaluate(self, tender_id: str, data: EvaluationIn, actor: Principal) -> EvaluationOut:
        tender = await self.tender(tender_id)
        self._agency_after_deadline(tender, actor)
        bids = await self.repo.bids(tender.id)
        if not bids:
            raise ConflictError(N_("The tender received no bids."), reason="no_bids")
        if len(bids) > MAX_BIDS:
            raise ConflictError(N_("With more than {limit} bids the analysis cannot be run in one request."),
                                reason="too_many_bids", limit=MAX_BIDS)
        if data.samples * len(bids) > MAX_CELLS:  # bounds the time and memory one request may take
            raise UnprocessableError(
                N_("With {bids} bids, at most {samples} samples can be evaluated at once."), reason="too_many_samples",
                errors=[FieldError(field="samples", message=N_("Too many samples for this many bids."))],
                bids=len(bids), samples=MAX_CELLS // len(bids))
        facts = await self._facts(tender, bids)
        ranked, smaa = await asyncio.to_thread(evaluation.evaluate, facts, self.rules(tender),
                                               samples=data.samples, seed=data.seed)
        now = utcnow()
        out = EvaluationOut(tender_id=tender.id, evaluated_at=now, ranking=[self._ranked(r) for r in ranked],
                            analysis=self._analysis(smaa))
        self.session.add(TenderEvaluation(tender_id=tender.id, samples=data.samples, seed=data.seed,
                                          evaluated_at=now, evaluated_by=actor.sub, result=msgspec.to_builtins(out)))
        await self.session.flush()
        return out

    async def _facts(self, tender: Tender, bids: Sequence[Bid]) -> list[evaluation.BidFacts]:
        """The bids as the evaluation (and the award) judges them: cited labels as they stand for the opening."""
        labels = await self.repo.labels([b.label_id for b in bids if b.label_id])
        return [evaluation.BidFacts(
            bid_id=b.id, supplier=b.supplier_org, price_cents=b.price_cents, kgco2e=b.kgco2e_per_unit,
            median=b.median_kgco2e_per_unit, gsd=b.gsd, quality=b.quality_score, label_scheme=b.label_scheme,
            label_state=None if b.label_id is None else label_state(labels.get(b.label_id), tender.deadline))
            for b in bids]

    # --- award -------------------------------------------------------------------------------

    async def award(self, tender_id: str, data: AwardIn, actor: Principal) -> Tender:
        """Award the tender to an eligible bid (the agency's officers, after the deadline). The same bid
        again changes nothing; another bid once awarded is a 409 (an award is not re-decided here)."""
        tender = await self.tender(tender_id)
        self._agency_after_deadline(tender, actor)
        if tender.awarded_bid_id is not None:
            return self._same_award(tender, data.bid_id)
        # PostgreSQL text cannot hold U+0000: such an id is no bid's.
        bid = None if "\x00" in data.bid_id else await self.repo.bid(tender.id, data.bid_id)
        if bid is None:
            message = N_("No such bid on this tender.")
            raise UnprocessableError(message, reason="bid_not_found",
                                     errors=[FieldError(field="bid_id", message=message)])
        # The evaluation's own rule: the bid it would score, not one it excludes.
        reasons = evaluation.ineligibility((await self._facts(tender, [bid]))[0], self.rules(tender))
        if reasons:
            message = N_("This bid is not eligible: {reasons}.")
            raise UnprocessableError(message, reason="bid_ineligible", reasons=", ".join(reasons),
                                     errors=[FieldError(field="bid_id", message=message)],
                                     extra={"ineligibility": list(reasons)})
        if not await self.repo.claim_award(tender.id, bid.id, at=utcnow(), by=actor.sub):
            await self.session.refresh(tender)  # another officer awarded it meanwhile
            return self._same_award(tender, bid.id)
        await self.session.refresh(tender)
        return tender

    @staticmethod
    def _same_award(tender: Tender, bid_id: str) -> Tender:
        if tender.awarded_bid_id == bid_id:
            return tender
        raise ConflictError(N_("The tender has already been awarded to another bid."), reason="already_awarded",
                            extra={"awarded_bid_id": tender.awarded_bid_id})

    async def latest_evaluation(self, tender_id: str, viewer: Principal) -> tuple[Tender, EvaluationOut]:
        tender = await self.tender(tender_id)
        self._agency_after_deadline(tender, viewer)
        row = await self.repo.latest_evaluation(tender.id)
        if row is None:
            raise ConflictError(N_("The tender has not been evaluated yet."), reason="not_evaluated")
        return tender, msgspec.convert(row.result, EvaluationOut, strict=False)

    @staticmethod
    def _ranked(r: evaluation.Ranked) -> RankedBid:
        return RankedBid(bid_id=r.bid.bid_id, supplier=r.bid.supplier, rank=r.rank, total=score_text(r.total),
                         price_score=score_text(r.price_score), carbon_score=score_text(r.carbon_score),
                         quality_score=score_text(r.quality_score), eligible=r.eligible, reasons=list(r.reasons),
                         price_cents=r.bid.price_cents, kgco2e_per_unit=plain(r.bid.kgco2e))

    @staticmethod
    def _analysis(smaa: evaluation.Smaa) -> Analysis:
        central = [None if math.isnan(row[0]) else CentralWeights(price=float(row[0]), carbon=float(row[1]),
                                                                  quality=float(row[2]))
                   for row in smaa.central_weights]
        return Analysis(
            bid_ids=smaa.bid_ids, rank_acceptability=smaa.rank_acceptability.tolist(), p_first=smaa.p_first.tolist(),
            pairwise_winning=smaa.pairwise_winning.tolist(), central_weights=central,
            confidence=[None if math.isnan(c) else float(c) for c in smaa.confidence], mc_error=smaa.mc_error,
            mc_error_bound=0.5 / smaa.samples ** 0.5, weights_sampled=smaa.weights_sampled, samples=smaa.samples,
            seed=smaa.seed)

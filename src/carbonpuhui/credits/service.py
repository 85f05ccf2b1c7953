"""Carbon-inclusive credits: receipt keys, purchase and trip claims, the wallet, rewards, expiry,
personal data. Services take the request's session and never commit.

Every claim is decided by the database alone: its natural key (merchant + receipt id, operator +
attestation id) is unique and written in the same transaction as its entries, and the claimant's
account row is locked first, so retries and races across processes credit once. Redis only
carries the leaderboard, bumped after commit.
"""

from __future__ import annotations

import calendar
import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from carbonpuhui.auth.access import Principal
from carbonpuhui.credits import signing, travel
from carbonpuhui.credits.leaderboard import EARNING, Leaderboard, account_totals
from carbonpuhui.credits.ledger import Ledger, Leg, new_id, utcnow
from carbonpuhui.credits.models import (
    Account,
    Claim,
    Entry,
    IdempotencyRecord,
    ReceiptKey,
    Redemption,
    Reward,
    Transfer,
    Trip,
)
from carbonpuhui.credits.schemas import (
    EntryOut,
    Mode,
    PurchaseIn,
    PurchaseItemOut,
    PurchaseOut,
    ReceiptKeyOut,
    RedemptionOut,
    RewardIn,
    RewardOut,
    TripIn,
    TripOut,
    WalletOut,
)
from carbonpuhui.db.engine import after_commit
from carbonpuhui.errors import ConflictError, FieldError, ForbiddenError, NotFoundError, UnprocessableError
from carbonpuhui.footprints.gtin import InvalidGTIN, normalise_gtin
from carbonpuhui.footprints.models import Product
from carbonpuhui.footprints.units import UnitError, conversion_factor
from carbonpuhui.i18n import N_
from carbonpuhui.ids import is_uuid
from carbonpuhui.labels.models import Benchmark, Label
from carbonpuhui.labels.service import label_status, today_cst
from carbonpuhui.settings import Settings

FUTURE_SKEW = timedelta(minutes=5)  # point-of-sale clocks drift; a receipt minutes ahead is still real
UNATTESTED = "-"  # the issuer of an unattested trip's claim (its jti a fresh uuid: no natural key)


def add_months(moment: datetime, months: int) -> datetime:
    """The same wall-clock moment ``months`` later in China (31 Jan + 1 month: 28/29 Feb)."""
    local = moment.astimezone(travel.CST)
    total = local.month - 1 + months
    year, month = local.year + total // 12, total % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(UTC)


def natural_id(jti: str) -> str:
    """The receipt's or attestation's id as the ledger keeps it: a digest, so that after a person's
    erasure the claim's row no longer carries the till's receipt number in the clear (it stays
    unique, so the receipt still earns once, ever). The id itself is in ``detail``, erased with them."""
    return "sha256:" + hashlib.sha256(jti.encode()).hexdigest()


def _refuse(reason: str, where: str, message: str, **params: object) -> UnprocessableError:
    return UnprocessableError(message, reason=reason, errors=[FieldError(field=where, message=message)], **params)


def _entry_out(entry: Entry, transfer: Transfer) -> EntryOut:
    return EntryOut(id=entry.id, transfer_id=entry.transfer_id, kind=transfer.kind,  # type: ignore[arg-type]
                    amount_g=entry.amount_g, created_at=entry.created_at, expires_at=entry.expires_at,
                    reference=transfer.reference)


# --- what signed receipts and attestations must carry -------------------------------------------

# No NUL (PostgreSQL text cannot hold it) and no other control character in ids we store.
Text100 = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text200 = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ReceiptItem(Struct, kw_only=True):
    gtin: Annotated[str, Meta(min_length=1, max_length=20)]
    qty: Annotated[int, Meta(ge=1, le=100_000)]


class ReceiptClaims(Struct, kw_only=True):
    iss: Text100
    jti: Text200
    iat: Annotated[int, Meta(ge=0, le=253402300799)]
    items: Annotated[list[ReceiptItem], Meta(min_length=1, max_length=500)]


class AttestationClaims(Struct, kw_only=True):
    iss: Text100
    jti: Text200
    sub: Text200
    mode: Mode
    distance_km: Decimal
    started_at: datetime
    ended_at: datetime


def _claims(raw: dict[str, object], kind: type[Struct], field: str) -> Any:
    try:
        # Strict (no "2" for 2, no true for 1); RFC 3339 text still becomes a datetime, and a JSON
        # number an exact Decimal of its shortest text (12.5, never 12.4999...).
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise _refuse(f"invalid_{field}", field, N_("The {field}'s claims are invalid: {problem}"),
                      problem=str(exc), field=field) from None


class _Base:
    def __init__(self, session: AsyncSession, settings: Settings, leaderboard: Leaderboard | None = None) -> None:
        self.session = session
        self.settings = settings
        self.ledger = Ledger(session)
        self.leaderboard = leaderboard

    async def _person(self, principal: Principal) -> Account:
        return await self.ledger.account("person", principal.sub, lock=True)

    async def _bump(self, account_id: str, grams: int, at: datetime) -> None:
        board = self.leaderboard
        if board is not None and board.stores.redis is not None and grams > 0:
            # The account is locked until commit: these are its totals once this claim commits.
            totals = await account_totals(self.session, account_id, at)

            async def bump() -> None:
                await board.credit(account_id, totals, at)
            after_commit(self.session, bump)

    async def _claim(self, kind: str, issuer: str, jti: str, account: Account, now: datetime) -> Claim | None:
        """Insert the claim under its natural key; None if that receipt or attestation was claimed
        (on PostgreSQL a concurrent first claim is waited for, then counts as the first)."""
        claim_id = new_id()
        jti = natural_id(jti)
        table = Claim.__table__
        inserted = await self.session.execute(
            self.ledger._insert(Claim).values(  # type: ignore[attr-defined]  # noqa: SLF001
                id=claim_id, kind=kind, issuer=issuer, jti=jti, account_id=account.id, credited_g=0,
                claimed_at=now).on_conflict_do_nothing(index_elements=["kind", "issuer", "jti"])
            .returning(table.c.id))
        if inserted.first() is None:
            return None
        # The row as inserted, made persistent without reading it back: later changes flush as an UPDATE.
        claim = Claim(id=claim_id, kind=kind, issuer=issuer, jti=jti, account_id=account.id, transfer_id=None,
                      credited_g=0, claimed_at=now, detail=None)
        make_transient_to_detached(claim)
        self.session.add(claim)
        return claim

    async def _first_claim(self, kind: str, issuer: str, jti: str) -> str | None:
        return await self.session.scalar(select(Claim.id).where(Claim.kind == kind, Claim.issuer == issuer,
                                                                Claim.jti == natural_id(jti)))

    async def _signed(self, token: str, field: str) -> tuple[dict[str, object], ReceiptKey]:
        """Verify a receipt or attestation against its issuer's registered key."""
        unverified = signing.peek(token, field)
        key = await self.session.get(ReceiptKey, unverified.kid)
        if key is None:
            raise _refuse("unknown_key", field, N_("No key {kid} is registered."), kid=unverified.kid[:80])
        if key.revoked_at is not None:
            raise _refuse("key_revoked", field, N_("The key {kid} was revoked."), kid=key.kid)
        claims = signing.verify(token, signing.RegisteredKey(kid=key.kid, kty=key.kty, jwk=key.jwk), field)
        if claims.get("iss") != key.org:
            raise _refuse("issuer_mismatch", field,
                          N_("The {field} names an issuer other than the organisation that registered its key."),
                          field=field)
        return claims, key


class KeyService(_Base):
    @staticmethod
    def out(key: ReceiptKey) -> ReceiptKeyOut:
        return ReceiptKeyOut(kid=key.kid, org=key.org, kty=key.kty, jwk=key.jwk, created_at=key.created_at,
                             revoked_at=key.revoked_at)

    async def register(self, jwk: object, actor: Principal) -> ReceiptKeyOut:
        org = _org(actor)
        registered = signing.register_jwk(jwk)
        existing = await self.session.get(ReceiptKey, registered.kid)
        if existing is not None:
            # The same public key twice: for its owner the registration stands (an idempotent retry);
            # another organisation may not sign as this one.
            if existing.org == org and existing.revoked_at is None:
                return self.out(existing)
            raise ConflictError(N_("This key is already registered."), reason="key_already_registered")
        key = ReceiptKey(kid=registered.kid, org=org, kty=registered.kty, jwk=registered.jwk, created_at=utcnow(),
                         created_by=actor.sub)
        self.session.add(key)
        await self.session.flush()
        return self.out(key)

    async def keys(self, actor: Principal, *, after: tuple[datetime, str] | None, limit: int) -> Sequence[ReceiptKey]:
        if not actor.org:
            return []
        stmt = select(ReceiptKey).where(ReceiptKey.org == actor.org)
        if after is not None:
            stmt = stmt.where((ReceiptKey.created_at > after[0])
                              | ((ReceiptKey.created_at == after[0]) & (ReceiptKey.kid > after[1])))
        return (await self.session.scalars(stmt.order_by(ReceiptKey.created_at, ReceiptKey.kid).limit(limit))).all()

    async def revoke(self, kid: str, actor: Principal) -> None:
        key = await self.session.get(ReceiptKey, kid, with_for_update=True)
        if key is None or key.org != actor.org:
            raise NotFoundError(N_("No key {kid} is registered."), kid=kid[:80])
        if key.revoked_at is None:
            key.revoked_at, key.revoked_by = utcnow(), actor.sub


def _org(actor: Principal) -> str:
    if not actor.org:
        raise ForbiddenError(N_("A merchant token with an organisation (org) is needed."), reason="no_organisation")
    return actor.org


class ClaimService(_Base):
    async def purchase(self, principal: Principal, data: PurchaseIn) -> PurchaseOut:
        raw, key = await self._signed(data.receipt, "receipt")
        receipt: ReceiptClaims = _claims(raw, ReceiptClaims, "receipt")
        now = utcnow()
        issued = datetime.fromtimestamp(receipt.iat, UTC)
        if issued > now + FUTURE_SKEW:
            raise _refuse("receipt_from_future", "receipt", N_("The receipt is dated in the future."))
        if issued < now - timedelta(days=self.settings.receipt_max_age_days):
            raise _refuse("receipt_too_old", "receipt", N_("Receipts can be claimed for {days} days."),
                          days=self.settings.receipt_max_age_days)
        account = await self._person(principal)
        claim = await self._claim("purchase", key.org, receipt.jti, account, now)
        if claim is None:
            first = await self._first_claim("purchase", key.org, receipt.jti)
            raise ConflictError(N_("This receipt was already claimed."), reason="receipt_already_claimed",
                                extra={"claim_id": first})
        items = await self._price(receipt.items, today_cst(now))
        total = sum(item.credited_g for item in items)
        if total > self.settings.max_receipt_g:
            raise _refuse("receipt_implausible", "receipt",
                          N_("The receipt claims more than {limit} g; the merchant must check it."),
                          limit=self.settings.max_receipt_g)
        await self.ledger.sweep(account, now)  # the balance we answer with is what can be spent
        claim.credited_g = total
        claim.detail = {"receipt_id": receipt.jti, "receipt_issued_at": issued.isoformat(),
                        "items": msgspec.to_builtins(items)}
        if total > 0:
            transfer = await self.ledger.post("purchase", claim.id, [
                Leg(self.ledger.system("issuance"), -total),
                Leg(account, total, add_months(now, self.settings.credit_expiry_months))], at=now)
            claim.transfer_id = transfer.id
            await self._bump(account.id, total, now)
        await self.session.flush()
        return PurchaseOut(claim_id=claim.id, credited_g=total, items=items, balance_g=account.balance_g)

    async def _price(self, items: Sequence[ReceiptItem], today: date) -> list[PurchaseItemOut]:
        """Grams per item: max(0, baseline - label) x declared units per item x qty, rounded down,
        for items with a verified label in force; the reason for the others."""
        gtins: dict[int, str | None] = {}
        for index, item in enumerate(items):
            try:
                gtins[index] = normalise_gtin(item.gtin)
            except InvalidGTIN:
                gtins[index] = None
        wanted = sorted({g for g in gtins.values() if g})
        products: dict[str, Product] = {}
        labels: dict[str, Label] = {}
        benches: dict[str, Benchmark] = {}
        # One query: each product with its current label and that label's category benchmark.
        for product, label, bench in (await self.session.execute(
                select(Product, Label, Benchmark)
                .outerjoin(Label, (Label.gtin == Product.gtin) & Label.current.is_(True))
                .outerjoin(Benchmark, Benchmark.category == Label.category)
                .where(Product.gtin.in_(wanted)))).all():
            products[product.gtin] = product
            if label is not None:
                labels[label.gtin] = label
            if bench is not None:
                benches[bench.category] = bench
        in_force_ids = {lab.id for lab in labels.values() if label_status(lab, today) == "active"}
        out = []
        for index, item in enumerate(items):
            gtin = gtins[index]
            grams, reason = self._item_grams(gtin, item.qty, products.get(gtin or ""), labels.get(gtin or ""),
                                             in_force_ids, benches)
            out.append(PurchaseItemOut(gtin=gtin or item.gtin, qty=item.qty, credited_g=grams, reason=reason))
        return out

    @staticmethod
    def _item_grams(gtin: str | None, qty: int, product: Product | None, label: Label | None,
                    in_force_ids: set[str], benches: dict[str, Benchmark]) -> tuple[int, Any]:
        if gtin is None or product is None:
            return 0, "unknown_product"
        if label is None:
            return 0, "no_label"
        if label.scheme != "verified":
            return 0, "label_not_verified"
        if label.id not in in_force_ids:
            return 0, "label_not_in_force"
        bench = benches.get(label.category)
        if bench is None:
            return 0, "no_benchmark"
        try:
            per_bench_unit = Fraction(conversion_factor(bench.declared_unit, label.declared_unit))  # label units
        except UnitError:
            return 0, "unit_mismatch"
        # Exact fractions: the baseline per label unit, less the label, per item, times qty, in grams.
        avoided_kg_per_unit = Fraction(bench.baseline) / per_bench_unit - Fraction(label.kgco2e_per_unit)
        if avoided_kg_per_unit <= 0:
            return 0, "not_below_baseline"
        grams = math.floor(avoided_kg_per_unit * Fraction(product.declared_units_per_item) * qty * 1000)
        return (grams, None) if grams > 0 else (0, "credited_below_one_gram")

    async def trip(self, principal: Principal, data: TripIn) -> TripOut:
        method = travel.load_methodology()
        now = utcnow()
        travel.check_trip(method, data.mode, data.distance_km, data.started_at, data.ended_at, now)
        issuer, jti, attested_by = UNATTESTED, None, None
        if data.attestation is not None:
            raw, key = await self._signed(data.attestation, "attestation")
            att: AttestationClaims = _claims(raw, AttestationClaims, "attestation")
            if att.sub != principal.sub:
                raise _refuse("attestation_subject_mismatch", "attestation",
                              N_("The attestation is for another person."))
            if (att.mode, att.distance_km, att.started_at, att.ended_at) != (
                    data.mode, data.distance_km, data.started_at, data.ended_at):
                raise _refuse("attestation_mismatch", "attestation",
                              N_("The attestation does not match the trip's mode, distance or times."))
            if key.org not in self.settings.transit_operators:
                raise _refuse("not_a_transit_operator", "attestation",
                              N_("The attestation is not signed by a registered transit operator."))
            issuer, jti, attested_by = key.org, att.jti, key.org
        account = await self._person(principal)
        await self.ledger.sweep(account, now)
        # The account is locked: overlaps and the day's total cannot change under us.
        # The natural key first: the same attestation again is "reused", not an overlap with itself.
        claim = await self._claim("trip", issuer, jti or new_id(), account, now)
        if claim is None:
            raise _refuse("attestation_reused", "attestation", N_("This attestation was already used."))
        # An unattested ride that earned nothing for want of an attestation does not block the same
        # ride claimed again with its operator's attestation.
        needs_attestation = [m for m in travel.MODES if not travel.earns_unattested(method, m)]
        overlapping = await self.session.scalar(select(Trip.claim_id).where(
            Trip.account_id == account.id, Trip.started_at < data.ended_at, Trip.ended_at > data.started_at,
            ~(Trip.attested_by.is_(None) & Trip.mode.in_(needs_attestation))).limit(1))
        if overlapping is not None:
            raise _refuse("trip_overlap", "started_at", N_("The trip overlaps another trip of yours."))
        day = travel.trip_day(data.started_at)
        reason = None
        if attested_by is None and not travel.earns_unattested(method, data.mode):
            grams, credited, capped, reason = 0, 0, False, "attestation_required"
        else:
            grams = travel.trip_grams(method, data.mode, data.distance_km)
            mode_today, all_today = await self._day_totals(account.id, day, data.mode)
            credited, capped = travel.apply_caps(method, data.mode, grams, mode_today_g=mode_today,
                                                 all_today_g=all_today)
            if credited == 0 and grams > 0:
                reason = "daily_cap_reached"
        claim.credited_g = credited
        if jti is not None:
            claim.detail = {"attestation_id": jti}
        if credited > 0:
            transfer = await self.ledger.post("trip", claim.id, [
                Leg(self.ledger.system("issuance"), -credited),
                Leg(account, credited, add_months(now, self.settings.credit_expiry_months))], at=now)
            claim.transfer_id = transfer.id
            await self._bump(account.id, credited, now)
        self.session.add(Trip(claim_id=claim.id, account_id=account.id, mode=data.mode, distance_km=data.distance_km,
                              started_at=data.started_at, ended_at=data.ended_at, day=day, attested_by=attested_by,
                              credited_g=credited, capped=capped, methodology_version=method.version))
        await self.session.flush()
        return TripOut(claim_id=claim.id, credited_g=credited, capped=capped, methodology_version=method.version,
                       balance_g=account.balance_g, reason=reason)  # type: ignore[arg-type]

    async def _day_totals(self, account_id: str, day: date, mode: str) -> tuple[int, int]:
        rows = (await self.session.execute(
            select(Trip.mode, func.sum(Trip.credited_g)).where(Trip.account_id == account_id, Trip.day == day)
            .group_by(Trip.mode))).all()
        totals = {m: int(g or 0) for m, g in rows}
        return totals.get(mode, 0), sum(totals.values())


class WalletService(_Base):
    async def wallet(self, principal: Principal, now: datetime | None = None) -> WalletOut:
        account = await self.ledger.find("person", principal.sub)
        if account is None:
            return WalletOut(balance_g=0, earned_g=0, redeemed_g=0, expiring_30d_g=0, expired_g=0)
        return await self._wallet(account, now or utcnow())

    async def _wallet(self, account: Account, now: datetime) -> WalletOut:
        rows = (await self.session.execute(
            select(Transfer.kind, func.sum(Entry.amount_g)).join(Transfer, Transfer.id == Entry.transfer_id)
            .where(Entry.account_id == account.id).group_by(Transfer.kind))).all()
        by_kind = {kind: int(total or 0) for kind, total in rows}
        # What has lapsed but not yet been swept by ``credits expire`` is no longer spendable.
        lapsed_now = await self.ledger.lapsed(account.id, now)
        lapsed_soon = await self.ledger.lapsed(account.id, now + timedelta(days=30))
        return WalletOut(balance_g=account.balance_g - lapsed_now,
                         earned_g=sum(by_kind.get(kind, 0) for kind in EARNING),
                         redeemed_g=-by_kind.get("redemption", 0),
                         expiring_30d_g=lapsed_soon - lapsed_now,
                         expired_g=-by_kind.get("expiry", 0) + lapsed_now)

    async def entries(self, principal: Principal, *, before: int | None, limit: int) -> list[EntryOut]:
        account = await self.ledger.find("person", principal.sub)
        if account is None:
            return []
        stmt = (select(Entry, Transfer).join(Transfer, Transfer.id == Entry.transfer_id)
                .where(Entry.account_id == account.id))
        if before is not None:
            stmt = stmt.where(Entry.id < before)
        rows = (await self.session.execute(stmt.order_by(Entry.id.desc()).limit(limit))).all()
        return [_entry_out(entry, transfer) for entry, transfer in rows]


class RewardService(_Base):
    @staticmethod
    def out(reward: Reward) -> RewardOut:
        return RewardOut(id=reward.id, merchant=reward.merchant_org, title=reward.title, cost_g=reward.cost_g,
                         stock=reward.stock, redeemed=reward.redeemed, created_at=reward.created_at)

    async def create(self, data: RewardIn, actor: Principal) -> RewardOut:
        reward = Reward(id=new_id(), merchant_org=_org(actor), title=data.title, cost_g=data.cost_g,
                        stock=data.stock, redeemed=0, created_at=utcnow(), created_by=actor.sub)
        self.session.add(reward)
        await self.session.flush()
        return self.out(reward)

    async def rewards(self, *, merchant: str | None, available: bool, after: tuple[datetime, str] | None,
                      limit: int) -> Sequence[Reward]:
        stmt = select(Reward)
        if merchant is not None:
            stmt = stmt.where(Reward.merchant_org == merchant)
        if available:
            stmt = stmt.where(Reward.stock > 0)
        if after is not None:
            stmt = stmt.where((Reward.created_at < after[0])
                              | ((Reward.created_at == after[0]) & (Reward.id < after[1])))
        return (await self.session.scalars(stmt.order_by(Reward.created_at.desc(), Reward.id.desc())
                                           .limit(limit))).all()

    async def redeem(self, principal: Principal, reward_id: str) -> RedemptionOut:
        now = utcnow()
        account = await self._person(principal)  # locks: person, then reward, then merchant
        if not is_uuid(reward_id):
            raise NotFoundError(N_("No reward {reward_id} exists."), reward_id=reward_id[:40])
        reward = await self.session.get(Reward, reward_id, with_for_update=True, populate_existing=True)
        if reward is None:
            raise NotFoundError(N_("No reward {reward_id} exists."), reward_id=reward_id[:40])
        await self.ledger.sweep(account, now)  # lapsed credits cannot pay
        if reward.stock <= 0:
            raise ConflictError(N_("This reward is out of stock."), reason="out_of_stock")
        if account.balance_g < reward.cost_g:
            raise ConflictError(N_("The balance ({balance_g} g) does not cover {needed_g} g."),
                                reason="insufficient_balance", balance_g=account.balance_g, needed_g=reward.cost_g,
                                extra={"balance_g": account.balance_g})
        taken = await self.session.scalar(
            update(Reward).where(Reward.id == reward.id, Reward.stock > 0)
            .values(stock=Reward.stock - 1, redeemed=Reward.redeemed + 1).returning(Reward.stock))
        if taken is None:  # cannot happen while the row is locked; refuse rather than oversell
            raise ConflictError(N_("This reward is out of stock."), reason="out_of_stock")
        redemption_id = new_id()
        transfer = await self.ledger.post("redemption", redemption_id, [
            Leg(account, -reward.cost_g), Leg(await self.ledger.account("merchant", reward.merchant_org),
                                              reward.cost_g)], at=now)
        self.session.add(Redemption(id=redemption_id, reward_id=reward.id, account_id=account.id,
                                    transfer_id=transfer.id, cost_g=reward.cost_g, redeemed_at=now))
        await self.session.flush()
        return RedemptionOut(id=redemption_id, reward_id=reward.id, title=reward.title, cost_g=reward.cost_g,
                             balance_g=account.balance_g, redeemed_at=now)


class PersonalDataService(_Base):
    async def export(self, principal: Principal) -> dict[str, Any]:
        """Everything the platform keeps about the caller as a consumer."""
        account = await self.ledger.find("person", principal.sub)
        result: dict[str, Any] = {"sub": principal.sub, "exported_at": utcnow(), "account": None, "wallet": None,
                                  "entries": [], "claims": [], "trips": [], "redemptions": []}
        if account is None:
            return result
        wallet = WalletService(self.session, self.settings)
        result["account"] = {"id": account.id, "created_at": account.created_at, "balance_g": account.balance_g}
        result["wallet"] = await wallet._wallet(account, utcnow())  # noqa: SLF001
        rows = (await self.session.execute(
            select(Entry, Transfer).join(Transfer, Transfer.id == Entry.transfer_id)
            .where(Entry.account_id == account.id).order_by(Entry.id))).all()
        result["entries"] = [_entry_out(entry, transfer) for entry, transfer in rows]
        for claim in await self.session.scalars(
                select(Claim).where(Claim.account_id == account.id).order_by(Claim.claimed_at, Claim.id)):
            result["claims"].append({"claim_id": claim.id, "kind": claim.kind,
                                     "issuer": None if claim.issuer == UNATTESTED else claim.issuer,
                                     "credited_g": claim.credited_g, "claimed_at": claim.claimed_at,
                                     "detail": claim.detail})
        for trip in await self.session.scalars(
                select(Trip).where(Trip.account_id == account.id).order_by(Trip.started_at)):
            result["trips"].append({"claim_id": trip.claim_id, "mode": trip.mode,
                                    "distance_km": format(trip.distance_km, "f"), "started_at": trip.started_at,
                                    "ended_at": trip.ended_at, "attested_by": trip.attested_by,
                                    "credited_g": trip.credited_g, "capped": trip.capped,
                                    "methodology_version": trip.methodology_version})
        for redemption, title in (await self.session.execute(
                select(Redemption, Reward.title).join(Reward, Reward.id == Redemption.reward_id)
                .where(Redemption.account_id == account.id).order_by(Redemption.redeemed_at))).all():
            result["redemptions"].append({"id": redemption.id, "reward_id": redemption.reward_id, "title": title,
                                          "cost_g": redemption.cost_g, "redeemed_at": redemption.redeemed_at})
        return result

    async def erase(self, principal: Principal) -> None:
        """Erase the caller's personal data. The ledger stays balanced: the remaining balance is
        forfeited by a transfer, and the entries stay, on an account no longer linked to anyone."""
        await self.ledger.open()
        await self.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.owner == principal.sub))
        account = await self.ledger.find("person", principal.sub, lock=True)
        if account is None:
            return
        now = utcnow()
        if account.balance_g > 0:
            await self.ledger.post("erasure", None, [Leg(account, -account.balance_g),
                                                     Leg(self.ledger.system("forfeit"), account.balance_g)],
                                   at=now)
        # What was bought, and where and when one travelled, goes; the claims' natural keys stay, so a
        # receipt or attestation still earns once, ever.
        await self.session.execute(update(Claim).where(Claim.account_id == account.id).values(detail=None))
        await self.session.execute(delete(Trip).where(Trip.account_id == account.id))
        await self.session.execute(update(Account).where(Account.id == account.id)
                                   .values(owner=None, erased_at=now))
        board, account_id = self.leaderboard, account.id
        if board is not None:
            async def forget() -> None:
                await board.forget(account_id)
            after_commit(self.session, forget)

"""The credits ledger against a model: hypothesis drives random purchase claims (new and again),
trips (walking, cycling, metro; attested or not), rewards and redemptions, clock moves, expiry runs, purges
of stored responses and erasures through the HTTP API, and checks every response and, after every
step, the ledger against a small in-memory model.

The model is written from the rules (DESIGN.md, API.md, green_travel.toml), not from the code:
a person's credits are lots (grams, expires_at) consumed first in, first out by redemptions and
expiries; a purchase earns floor((baseline - label) x kg per item x qty x 1000) per item; a trip
floor(g/pkm x km), cut by the per-mode and all-modes caps of its CST day; lapsed credits are not
spendable, and are swept by the expire job, a redemption or a claim.

After every step: the wallets (GET /v1/wallet) the step may have changed — everyone's when the
clock moved — equal the model's; every tracked balance in the database equals the model's and none
is negative; tracked balances plus the platform's accounts sum to zero, and issuance, expiry,
forfeit, the merchant's account and reward stock equal the model's; ``ledger check`` finds nothing
(skipped only where the ledger cannot have changed: a clock move, a refused request).

Each example starts from empty credit tables (products, labels and keys stay) and the same clock.
Bounded by default; ``CARBONPUHUI_STATEFUL_EXAMPLES`` / ``CARBONPUHUI_STATEFUL_STEPS`` raise it.
"""

from __future__ import annotations

import calendar
import math
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import HealthCheck, event
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from litestar.testing import TestClient
from sqlalchemy import delete, func, select, text

from carbonpuhui.app import create_app
from carbonpuhui.credits import travel
from carbonpuhui.credits.maintenance import IDEMPOTENCY_DAYS, check, expire_all, purge_idempotency
from carbonpuhui.credits.models import (
    SYSTEM,
    TRACKED,
    Account,
    Claim,
    Entry,
    IdempotencyRecord,
    Redemption,
    Reward,
    Transfer,
    Trip,
)
from carbonpuhui.settings import Settings
from tests.api.credit_flow import OPERATOR, SHOP, CreditFlow, Signer
from tests.api.label_flow import CATEGORY, NEXT_YEAR, gtin
from tests.api.test_products import create_product, line, put_inventory

EXAMPLES = int(os.environ.get("CARBONPUHUI_STATEFUL_EXAMPLES", "25"))
STEPS = int(os.environ.get("CARBONPUHUI_STATEFUL_STEPS", "30"))

CST = ZoneInfo("Asia/Shanghai")
EXPIRY_MONTHS = 2  # short, so that a few clock moves make credits lapse
MAX_RECEIPT_G = 4000  # low, so that a receipt of many oats is refused as implausible
MAX_AGE = timedelta(days=30)  # Settings.receipt_max_age_days, and check_trip's max_age_days
SKEW = timedelta(minutes=5)  # a receipt or trip may be this far in the future
SUBS = ("ann", "bo", "cy")
TOKEN_TTL = 86400  # a day: a long run, or its shrinking, may outlast the usual ten minutes
KEYS = (None, None, "k1", "k2")  # Idempotency-Key: mostly none, sometimes one of two reused keys
BASELINE = Fraction(50)  # kg CO2e per kg, the category's benchmark baseline


@dataclass(frozen=True)
class Product:
    n: int
    label_kg: str | None  # None: a product without a label
    per_item: str = "1"
    verified: bool = True
    exists: bool = True
    valid_days: int | None = None  # the label's last valid day, from today; None: NEXT_YEAR


# Labels per kilogram against a 50 kg baseline; grams per item in the comments.
PRODUCTS = {
    "oats": Product(801, "12.5", "0.0123"),  # 461.25 g an item: the fraction matters from qty 1
    "soap": Product(802, "49.99", "0.7"),  # 7 g
    "rice": Product(803, "31.4", "0.0031"),  # 57.66 g
    "even": Product(804, "50"),  # at the baseline: nothing
    "heavy": Product(805, "61", "0.5"),  # above it: nothing
    "tiny": Product(806, "49.999", "0.0001"),  # 0.0001 g: below one gram
    "brief": Product(810, "20", "0.01", valid_days=40),  # 300 g, until its label lapses in 40 days
    "claimed": Product(807, "10", verified=False),  # self-declared
    "bare": Product(808, None),  # no label
    "ghost": Product(809, None, exists=False),  # no such product
}


def add_months(moment: datetime, months: int) -> datetime:
    """The same wall-clock time ``months`` later in China; past the month's end, its last day."""
    local = moment.astimezone(CST)
    year, month0 = divmod(local.year * 12 + local.month - 1 + months, 12)
    day = min(local.day, calendar.monthrange(year, month0 + 1)[1])
    return local.replace(year=year, month=month0 + 1, day=day).astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- the model ----------------------------------------------------------------------------------


@dataclass
class Lot:
    grams: int
    expires_at: datetime
    left: int


@dataclass
class TripRecord:
    start: datetime
    end: datetime
    mode: str
    day: date
    credited: int
    blocks: bool  # whether it blocks overlapping trips: not an unattested ride that needed an attestation


@dataclass
class Person:
    lots: list[Lot] = field(default_factory=list)  # oldest first
    trips: list[TripRecord] = field(default_factory=list)
    redeemed: int = 0
    swept: int = 0  # expired by a sweep (the expire job, or a redemption)

    def balance(self) -> int:  # the ledger's balance: lapsed credits count until swept
        return sum(lot.left for lot in self.lots)

    def lapsed(self, at: datetime) -> int:
        return sum(lot.left for lot in self.lots if lot.expires_at <= at)

    def sweep(self, at: datetime) -> int:
        due = 0
        for lot in self.lots:
            if lot.expires_at <= at:
                due, lot.left = due + lot.left, 0
        self.swept += due
        return due

    def spend(self, grams: int) -> None:
        for lot in self.lots:
            taken = min(lot.left, grams)
            lot.left, grams = lot.left - taken, grams - taken
        assert grams == 0, "the model spent more than the balance"

    def wallet(self, now: datetime) -> dict[str, int]:
        lapsed = self.lapsed(now)
        return {"balance_g": self.balance() - lapsed, "earned_g": sum(lot.grams for lot in self.lots),
                "redeemed_g": self.redeemed, "expiring_30d_g": self.lapsed(now + timedelta(days=30)) - lapsed,
                "expired_g": self.swept + lapsed}


@dataclass(frozen=True)
class Receipt:
    jti: str
    iat: int
    items: tuple[tuple[str, int, bool], ...]  # (product, qty, as GTIN-14)
    token: str = field(repr=False)


@dataclass(frozen=True)
class AttestedTrip:
    sub: str
    jti: str
    body: dict[str, Any] = field(repr=False)


class World:
    """What every example shares: the app, its actors, products, keys and the clock."""

    def __init__(self, client: TestClient[Any], flow: CreditFlow, shop: Signer, operator: Signer,
                 valid_until: dict[str, date], start: datetime) -> None:
        self.client, self.flow, self.shop, self.operator = client, flow, shop, operator
        self.valid_until = valid_until  # each product's label's last valid day
        self.start = self.now = start
        self.db = client.app.state.db
        self.people = {sub: flow.auth("consumer", sub=sub, ttl=TOKEN_TTL) for sub in SUBS}
        flow.shop = flow.auth("merchant", org=SHOP, sub="sam", ttl=TOKEN_TTL)  # offers rewards
        self.method = travel.load_methodology()

    def clock(self) -> datetime:
        return self.now

    def call(self, fn: Any, *args: Any) -> Any:
        return self.client.blocking_portal.call(fn, *args)


def expected_item(product: Product, qty: int, today: date, valid_until: date) -> tuple[int, str | None]:
    if not product.exists:
        return 0, "unknown_product"
    if product.label_kg is None:
        return 0, "no_label"
    if not product.verified:
        return 0, "label_not_verified"
    if valid_until < today:
        return 0, "label_not_in_force"
    avoided = BASELINE - Fraction(product.label_kg)
    if avoided <= 0:
        return 0, "not_below_baseline"
    grams = math.floor(avoided * Fraction(product.per_item) * qty * 1000)
    return (grams, None) if grams > 0 else (0, "credited_below_one_gram")


# --- the database's side --------------------------------------------------------------------------


CREDIT_TABLES = (Redemption, Trip, Claim, Entry, Transfer, IdempotencyRecord, Account, Reward)  # children first


async def _reset(db: Any) -> None:
    # Products, labels, benchmarks and receipt keys stay for the next example.
    async with db.transaction() as session:
        if session.get_bind().dialect.name == "postgresql":
            # TRUNCATE: PostgreSQL's append-only triggers refuse row deletes from the ledger.
            names = ", ".join(table.__tablename__ for table in CREDIT_TABLES)
            await session.execute(text(f"TRUNCATE {names}"))
            return
        for table in CREDIT_TABLES:
            await session.execute(delete(table))


async def _snapshot(db: Any, now: datetime, full: bool) -> dict[str, Any]:
    async with db.transaction() as session:
        problems = (await check(session, now))[1] if full else []
        accounts = (await session.execute(select(Account.kind, Account.owner, Account.balance_g))).all()
        system = dict((await session.execute(
            select(Account.kind, func.coalesce(func.sum(Entry.amount_g), 0))
            .outerjoin(Entry, Entry.account_id == Account.id).where(Account.kind.in_(SYSTEM))
            .group_by(Account.kind))).all())
        rewards = {rid: (stock, redeemed) for rid, stock, redeemed in await session.execute(
            select(Reward.id, Reward.stock, Reward.redeemed))}
    return {"problems": problems, "accounts": [tuple(a) for a in accounts],
            "system": {k: int(v) for k, v in system.items()}, "rewards": rewards}


# --- the machine ------------------------------------------------------------------------------------

person_st = st.sampled_from(SUBS)
key_st = st.sampled_from(KEYS)
# The products that earn, more often than those that do not.
items_st = st.lists(st.tuples(st.sampled_from(["oats", "soap", "rice", "brief"] * 2 + sorted(PRODUCTS)),
                              st.integers(1, 5),
                              st.booleans()),
                    min_size=1, max_size=4).map(tuple)
# Seconds before the clock a receipt was issued: mostly recent, sometimes around the limits.
iat_age_st = st.one_of(st.integers(-600, 6 * 3600), st.integers(0, 32 * 86400),
                       st.sampled_from([-SKEW.seconds, -SKEW.seconds - 1, int(MAX_AGE.total_seconds()),
                                        int(MAX_AGE.total_seconds()) + 1]))
# Hundredths of a km: any, long (hypothesis favours small numbers), or at the walking cap's edge
# (21.73 km earns 999 g, 21.74 km 1000 g: the cap itself, not capped).
centikm_st = st.one_of(st.integers(1, 4000), st.integers(1500, 4000), st.sampled_from([1, 2, 2173, 2174, 2175]))
cost_st = st.one_of(st.integers(1, 100), st.integers(1, 2000))
stock_st = st.one_of(st.just(0), st.integers(1, 5))
# When a trip ended, in seconds before the clock (negative: in the future); or seconds between it
# and the person's latest or earliest trip (negative: overlapping it): the same day, for the caps.
placement_st = st.one_of(st.tuples(st.just("ended_ago"), st.integers(-600, 8 * 3600)),
                         st.tuples(st.just("ended_ago"), st.integers(0, 31 * 86400)),
                         st.tuples(st.sampled_from(["after_latest", "before_earliest"]), st.integers(-1800, 3600)))


class LedgerMachine(RuleBasedStateMachine):
    receipts = Bundle("receipts")
    rewards = Bundle("rewards")
    attested = Bundle("attested")

    def __init__(self, world: World) -> None:
        super().__init__()
        self.w = world
        world.now = world.start
        world.call(_reset, world.db)
        self.people = {sub: Person() for sub in SUBS}
        self.claimed: dict[tuple[str, str], str] = {}  # (issuer, jti) -> the first claim_id
        self.stock: dict[str, list[int]] = {}  # reward id -> [cost, stock, redeemed]
        # (sub, route, key) -> (the request, status, body, when): what a retry under that key gets back
        self.idempotent: dict[tuple[str, str, str], tuple[Any, int, dict[str, Any], datetime]] = {}
        self.issued = self.expired = self.forfeited = self.merchant = 0
        self.dirty: set[str] = set(SUBS)  # whose wallet the last step may have changed
        self.clock_only = False  # the last step only moved the clock
        self.refused = False  # the last step's request was refused

    @property
    def now(self) -> datetime:
        return self.w.now

    # --- helpers ---

    def _post(self, sub: str, path: str, body: dict[str, Any], key: str | None):
        self.dirty.add(sub)
        headers = dict(self.w.people[sub])
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.w.client.post(path, json=body, headers=headers)

    def _replayed(self, sub: str, route: str, key: str | None, fingerprint: Any, response) -> bool:
        """Whether the model expects a stored response (or a key reused with another body): checked here."""
        if key is None or (sub, route, key) not in self.idempotent:
            return False
        stored_fingerprint, status, body, _at = self.idempotent[(sub, route, key)]
        if stored_fingerprint == fingerprint:
            event(f"{route}: replayed")
            assert response.status_code == status, response.text
            assert response.headers.get("Idempotent-Replayed") == "true"
            assert response.json() == body
        else:
            self._refused(response, 422, "idempotency_key_reused")
        return True

    def _remember(self, sub: str, route: str, key: str | None, fingerprint: Any, response) -> None:
        if key is not None:
            self.idempotent[(sub, route, key)] = (fingerprint, response.status_code, response.json(), self.now)

    def _refused(self, response, status: int, reason: str) -> dict[str, Any]:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["reason"] == reason, body
        self.refused = True
        event(f"refused: {reason}")
        return body

    def _credit(self, person: Person, grams: int) -> None:
        if grams > 0:
            expires_at = add_months(self.now, EXPIRY_MONTHS)
            assert not person.lots or person.lots[-1].expires_at <= expires_at  # FIFO = oldest expiry first
            person.lots.append(Lot(grams, expires_at, grams))
            self.issued += grams

    # --- purchases ---

    def _submit_receipt(self, sub: str, receipt: Receipt, key: str | None) -> None:
        response = self._post(sub, "/v1/credits/purchases", {"receipt": receipt.token}, key)
        if self._replayed(sub, "purchases", key, receipt.token, response):
            return
        issued = datetime.fromtimestamp(receipt.iat, UTC)
        if issued > self.now + SKEW:
            self._refused(response, 422, "receipt_from_future")
            return
        if issued < self.now - MAX_AGE:
            self._refused(response, 422, "receipt_too_old")
            return
        if (SHOP, receipt.jti) in self.claimed:
            body = self._refused(response, 409, "receipt_already_claimed")
            assert body["claim_id"] == self.claimed[(SHOP, receipt.jti)]
            return
        today = self.now.astimezone(CST).date()
        expected = []
        for name, qty, _long_form in receipt.items:
            product = PRODUCTS[name]
            grams, reason = expected_item(product, qty, today, self.w.valid_until[name])
            # Either form names the same product; the response always has the 14-digit one.
            expected.append({"gtin": gtin(product.n).zfill(14), "qty": qty, "credited_g": grams, "reason": reason})
        total = sum(item["credited_g"] for item in expected)
        if total > MAX_RECEIPT_G:  # refused whole, and not claimed: the merchant may issue it again
            self._refused(response, 422, "receipt_implausible")
            return
        assert response.status_code == 201, response.text
        out = response.json()
        assert out["items"] == expected
        assert out["credited_g"] == total
        event("purchase: credited" if total else "purchase: nothing credited")
        for item in expected:
            event(f"item: {item['reason'] or 'credited'}")
        person = self.people[sub]
        self.expired += person.sweep(self.now)  # a claim answers with what can be spent
        self._credit(person, total)
        self.claimed[(SHOP, receipt.jti)] = out["claim_id"]
        assert out["balance_g"] == person.balance()
        self._remember(sub, "purchases", key, receipt.token, response)

    @rule(target=receipts, sub=person_st, items=items_st, age_s=iat_age_st, key=key_st)
    def claim(self, sub: str, items: tuple[tuple[str, int, bool], ...], age_s: int, key: str | None) -> Receipt:
        iat = int((self.now - timedelta(seconds=age_s)).timestamp())
        lines = [{"gtin": gtin(PRODUCTS[name].n).zfill(14 if long_form else 13), "qty": qty}
                 for name, qty, long_form in items]
        jti = uuid.uuid4().hex
        receipt = Receipt(jti=jti, iat=iat, items=items, token=self.w.shop.receipt(lines, jti=jti, iat=iat))
        self._submit_receipt(sub, receipt, key)
        return receipt

    @rule(receipt=receipts, sub=person_st, key=key_st)
    def reclaim(self, receipt: Receipt, sub: str, key: str | None) -> None:
        """The same receipt again, by anyone: once claimed, a 409 naming the first claim."""
        self._submit_receipt(sub, receipt, key)

    # --- trips ---

    def _submit_trip(self, sub: str, body: dict[str, Any], attestation: AttestedTrip | None,
                     key: str | None) -> None:
        fingerprint = tuple(sorted(body.items()))
        response = self._post(sub, "/v1/credits/trips", body, key)
        if self._replayed(sub, "trips", key, fingerprint, response):
            return
        rules = self.w.method.modes[body["mode"]]
        km = Decimal(body["distance_km"])
        start = datetime.fromisoformat(body["started_at"])
        end = datetime.fromisoformat(body["ended_at"])
        duration = (end - start).total_seconds()
        person = self.people[sub]
        refusal = None
        if end > self.now + SKEW:
            refusal = "trip_in_future"
        elif start < self.now - MAX_AGE:
            refusal = "trip_too_old"
        elif duration > 86400 or km > rules.max_distance_km:
            refusal = "trip_too_long"
        elif duration < rules.min_duration_s:
            refusal = "trip_too_short"
        elif Fraction(km) * 3600 > Fraction(rules.max_avg_speed_kmh) * Fraction(duration):
            refusal = "implausible_speed"
        elif attestation is not None and attestation.sub != sub:
            refusal = "attestation_subject_mismatch"
        elif attestation is not None and (OPERATOR, attestation.jti) in self.claimed:
            refusal = "attestation_reused"  # before the overlap: the same attestation overlaps itself
        elif any(start < t.end and end > t.start and t.blocks for t in person.trips):
            refusal = "trip_overlap"
        if refusal is not None:
            self._refused(response, 422, refusal)
            return
        assert response.status_code == 201, response.text
        out = response.json()
        day = start.astimezone(CST).date()
        if attestation is None and rules.attestation_required:
            credited, capped, reason = 0, False, "attestation_required"
        else:
            grams = math.floor(Fraction(rules.g_per_pkm) * Fraction(km))
            mode_today = sum(t.credited for t in person.trips if t.day == day and t.mode == rules.name)
            all_today = sum(t.credited for t in person.trips if t.day == day)
            credited = max(0, min(grams, rules.daily_cap_g - mode_today, self.w.method.daily_cap_g - all_today))
            capped = credited < grams
            reason = "daily_cap_reached" if credited == 0 and grams > 0 else None
        assert (out["credited_g"], out["capped"], out["reason"]) == (credited, capped, reason), out
        assert out["methodology_version"] == self.w.method.version
        event(f"trip: {reason or ('capped' if capped else 'credited')}")
        blocks = attestation is not None or not rules.attestation_required
        person.trips.append(TripRecord(start, end, rules.name, day, credited, blocks))
        self.expired += person.sweep(self.now)
        self._credit(person, credited)
        if attestation is not None:
            self.claimed[(OPERATOR, attestation.jti)] = out["claim_id"]
        assert out["balance_g"] == person.balance()
        self._remember(sub, "trips", key, fingerprint, response)

    @rule(target=attested, sub=person_st, mode=st.sampled_from(["walk", "walk", "bike", "metro"]),
          centikm=centikm_st, slack_s=st.integers(-300, 7200), placement=placement_st,
          attest=st.booleans(), key=key_st)
    def trip(self, sub: str, mode: str, centikm: int, slack_s: int, placement: tuple[str, int], attest: bool,
             key: str | None):
        rules = self.w.method.modes[mode]
        km = Decimal(centikm) / 100
        # As fast as the mode allows, plus the slack (negative: too fast, or too short).
        fastest = math.ceil(Fraction(km) * 3600 / Fraction(rules.max_avg_speed_kmh))
        duration = timedelta(seconds=max(1, fastest + slack_s))
        how, seconds = placement
        trips, gap = self.people[sub].trips, timedelta(seconds=seconds)
        if how == "after_latest":
            start = (max(t.end for t in trips) if trips else self.now - timedelta(hours=6)) + gap
        elif how == "before_earliest":
            start = (min(t.start for t in trips) if trips else self.now) - gap - duration
        else:
            start = self.now - gap - duration
        attestation = self._travel(sub, mode, km, start, duration, attest, key)
        # Kept even when refused: a trip ending in the future may be claimed once the clock moves on.
        return attestation if attestation is not None else multiple()

    def _travel(self, sub: str, mode: str, km: Decimal, start: datetime, duration: timedelta, attest: bool,
                key: str | None) -> AttestedTrip | None:
        body = {"mode": mode, "distance_km": str(km), "started_at": iso(start), "ended_at": iso(start + duration)}
        attestation = None
        if attest:
            jti = uuid.uuid4().hex
            body = {**body, "attestation": self.w.operator.attestation(sub, body, jti=jti)}
            attestation = AttestedTrip(sub=sub, jti=jti, body=body)
        self._submit_trip(sub, body, attestation, key)
        return attestation

    @rule(target=attested, sub=person_st, order=st.permutations(["walk", "bike", "metro"]),
          ended_ago_s=st.integers(0, 12 * 3600))
    def day_out(self, sub: str, order: list[str], ended_ago_s: int):
        """A long walk, a long ride and an attested metro ride back to back (1000 + 1500 + 920 g
        before the caps): the day's all-modes cap of 3000 g cuts the last, unless they span midnight."""
        distance = {"walk": Decimal(25), "bike": Decimal(35), "metro": Decimal(20)}
        duration = {mode: timedelta(seconds=math.ceil(distance[mode] * 3600 / self.w.method.modes[mode].max_avg_speed_kmh))
                    for mode in order}
        start = self.now - timedelta(seconds=ended_ago_s) - sum(duration.values(), timedelta(minutes=len(order)))
        attestation = None
        for mode in order:
            made = self._travel(sub, mode, distance[mode], start, duration[mode], mode == "metro", None)
            attestation = attestation or made
            start += duration[mode] + timedelta(minutes=1)
        return attestation

    @rule(trip=attested, sub=person_st, key=key_st)
    def retrip(self, trip: AttestedTrip, sub: str, key: str | None) -> None:
        """An attested trip again: by its subject, its attestation was used (if it was accepted);
        by anyone else, it is not theirs."""
        self._submit_trip(sub, trip.body, trip, key)

    # --- rewards ---

    @initialize(target=rewards, cost=cost_st, stock=stock_st)
    def first_offer(self, cost: int, stock: int) -> str:
        return self.offer(cost, stock)

    @precondition(lambda self: len(self.stock) < 4)
    @rule(target=rewards, cost=cost_st, stock=stock_st)
    def offer(self, cost: int, stock: int) -> str:
        reward_id = self.w.flow.reward(cost, stock)
        self.stock[reward_id] = [cost, stock, 0]
        return reward_id

    @rule(who=st.sampled_from(SUBS + ("richest",)), reward_id=rewards, key=key_st)
    def redeem(self, who: str, reward_id: str, key: str | None) -> None:
        """By someone, or by whoever can spend the most (most people, most of the time, have little)."""
        sub = who if who != "richest" else max(
            SUBS, key=lambda sub: self.people[sub].balance() - self.people[sub].lapsed(self.now))
        response = self._post(sub, "/v1/wallet/redemptions", {"reward_id": reward_id}, key)
        if self._replayed(sub, "redemptions", key, reward_id, response):
            return
        person, reward = self.people[sub], self.stock[reward_id]
        cost, stock, _ = reward
        spendable = person.balance() - person.lapsed(self.now)
        if stock <= 0:
            self._refused(response, 409, "out_of_stock")  # the sweep before it is rolled back too
            return
        if spendable < cost:
            body = self._refused(response, 409, "insufficient_balance")
            assert body["balance_g"] == spendable
            return
        assert response.status_code == 201, response.text
        self.expired += person.sweep(self.now)  # lapsed credits cannot pay: swept in the same transaction
        person.spend(cost)
        person.redeemed += cost
        reward[1], reward[2] = stock - 1, reward[2] + 1
        self.merchant += cost
        out = response.json()
        assert (out["reward_id"], out["cost_g"], out["balance_g"]) == (reward_id, cost, person.balance())
        event("redeem: paid")
        self._remember(sub, "redemptions", key, reward_id, response)

    # --- time and the jobs ---

    def _next_expiry(self) -> datetime | None:
        due = [lot.expires_at for p in self.people.values() for lot in p.lots if lot.left and lot.expires_at > self.now]
        return min(due, default=None)

    # Three rules rather than one: hypothesis switches rules off at random per example (swarm
    # testing), and an example whose clock never moves tests little of expiry.
    @rule(days=st.integers(0, 40), seconds=st.integers(0, 86399))
    def tick(self, days: int, seconds: int) -> None:
        self.dirty.update(SUBS)
        self.clock_only = True
        self.w.now += timedelta(days=days, seconds=seconds)

    @rule(months=st.integers(1, 3))
    def tick_months(self, months: int) -> None:
        """Calendar months in China: 31 Mar + 1 month is 30 Apr."""
        self.dirty.update(SUBS)
        self.clock_only = True
        self.w.now = add_months(self.now, months)

    @precondition(lambda self: self._next_expiry() is not None)
    @rule(offset_s=st.sampled_from([-1, 0, 1]))
    def tick_to_expiry(self, offset_s: int) -> None:
        """To a second before, at, or after the moment the next credits lapse."""
        self.dirty.update(SUBS)
        self.clock_only = True
        target = self._next_expiry()
        assert target is not None
        self.w.now = max(self.now, target + timedelta(seconds=offset_s))
        event("clock: to an expiry " + ("before", "at", "after")[offset_s + 1])

    @rule(twice=st.booleans(), purge=st.booleans())
    def jobs(self, twice: bool, purge: bool) -> None:
        """The nightly jobs: ``credits expire`` (run again: nothing more), and the purge of stored
        responses."""
        self._expire(twice)
        if purge:
            self._purge()

    def _expire(self, twice: bool) -> None:
        self.dirty.update(SUBS)
        accounts, grams = self.w.call(expire_all, self.w.db, self.now)
        swept = [person.sweep(self.now) for person in self.people.values()]
        assert (accounts, grams) == (sum(1 for g in swept if g), sum(swept))
        self.expired += grams
        event("expire: swept" if grams else "expire: nothing due")
        if twice:  # nothing more: what was swept is a debit, and debits consume the oldest credits first
            assert self.w.call(expire_all, self.w.db, self.now) == (0, 0)

    def _purge(self) -> None:
        # Stored claim responses are forgotten after a week (a retry then meets the claim's own
        # natural key); redemptions' are kept.
        purged = self.w.call(purge_idempotency, self.w.db, self.now)
        cutoff = self.now - timedelta(days=IDEMPOTENCY_DAYS)
        gone = {k for k, (*_rest, at) in self.idempotent.items() if k[1] in ("purchases", "trips") and at < cutoff}
        assert purged == len(gone)
        self.idempotent = {k: v for k, v in self.idempotent.items() if k not in gone}
        event("purge: forgot" if gone else "purge: nothing")

    @precondition(lambda self: any(p.lots or p.trips for p in self.people.values()))
    @rule(sub=person_st)
    def erase(self, sub: str) -> None:
        self.dirty.add(sub)
        response = self.w.client.delete("/v1/me", headers=self.w.people[sub])
        assert response.status_code == 204, response.text
        export = self.w.client.get("/v1/me/export", headers=self.w.people[sub])
        assert export.status_code == 200, export.text
        kept = {k: v for k, v in export.json().items() if k not in ("sub", "exported_at")}
        assert kept == {"account": None, "wallet": None, "entries": [], "claims": [], "trips": [], "redemptions": []}
        self.forfeited += self.people[sub].balance()  # lapsed or not: the whole balance is forfeited
        event("erase: forfeited" if self.people[sub].balance() else "erase: nothing to forfeit")
        self.people[sub] = Person()  # the sub comes back, if ever, to a new account
        self.idempotent = {k: v for k, v in self.idempotent.items() if k[0] != sub}

    # --- after every step ---

    @invariant()
    def matches_the_model(self) -> None:
        # The wallets the step may have changed (everyone's, when the clock moved): the ledger's
        # balances below are everyone's, and three GETs a step would double the run time.
        for sub in sorted(self.dirty):
            response = self.w.client.get("/v1/wallet", headers=self.w.people[sub])
            assert response.status_code == 200, response.text
            wallet = response.json()
            assert wallet == self.people[sub].wallet(self.now), sub
            assert wallet["balance_g"] >= 0
        self.dirty.clear()
        clock_only, refused = self.clock_only, self.refused
        self.clock_only = self.refused = False
        if clock_only:  # the database is as the last check left it, and later is no worse
            return
        # ``ledger check`` after every step that may have written to the ledger; after a refusal
        # (rolled back) the balances and the platform's accounts below still show it wrote nothing.
        self._ledger_matches(full=not refused)

    def _ledger_matches(self, full: bool) -> None:
        snap = self.w.call(_snapshot, self.w.db, self.now, full)
        assert snap["problems"] == []
        tracked = [(kind, owner, balance) for kind, owner, balance in snap["accounts"] if kind in TRACKED]
        assert all(balance >= 0 for _kind, _owner, balance in tracked)
        assert sum(balance for *_rest, balance in tracked) + sum(snap["system"].values()) == 0
        people = {owner: balance for kind, owner, balance in tracked if kind == "person" and owner is not None}
        assert set(people) <= set(SUBS)
        assert {sub: people.get(sub, 0) for sub in SUBS} == {sub: p.balance() for sub, p in self.people.items()}
        assert all(balance == 0 for kind, owner, balance in tracked if kind == "person" and owner is None)
        merchants = {owner: balance for kind, owner, balance in tracked if kind == "merchant"}
        assert merchants == ({SHOP: self.merchant} if self.merchant else {})  # opened by the first redemption
        system = snap["system"]
        assert (system.get("issuance", 0), system.get("expiry", 0), system.get("forfeit", 0)) == (
            -self.issued, self.expired, self.forfeited)
        assert snap["rewards"] == {rid: (stock, redeemed) for rid, (_c, stock, redeemed) in self.stock.items()}


def _world(settings: Settings, auth: Any, client: TestClient[Any]) -> World:
    flow = CreditFlow(client, auth)
    flow.benchmark(["10", "20", "30", "40"], baseline=str(BASELINE), uncertainty_penalty="0")
    valid_until = {name: date.today() + timedelta(days=p.valid_days) if p.valid_days is not None
                   else date.fromisoformat(NEXT_YEAR) for name, p in PRODUCTS.items()}
    for name, product in PRODUCTS.items():
        if not product.exists:
            continue
        if product.label_kg is None:
            flow.product(product.n, "1")
        elif product.valid_days is not None:  # CreditFlow.labelled, with a label valid for valid_days
            code = gtin(product.n)
            create_product(client, flow.owner, code, category=CATEGORY, declared_unit="kilogram",
                           declared_units_per_item=product.per_item)
            body = [line("production", "measured", "1", "kg", direct_kgco2e=product.label_kg)]
            assert put_inventory(client, flow.owner, body, gtin=code).status_code == 200
            flow.certify(code, valid_until=valid_until[name].isoformat())
        else:
            flow.labelled(product.n, product.label_kg, per_item=product.per_item, verified=product.verified)
    shop = flow.register()
    operator = flow.register(headers=flow.operator, org=OPERATOR)
    return World(client, flow, shop, operator, valid_until, datetime.now(UTC).replace(microsecond=0))


def test_ledger_follows_the_model(settings: Settings, auth: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(msgspec.structs.replace(settings, credit_expiry_months=EXPIRY_MONTHS,
                                             max_receipt_g=MAX_RECEIPT_G))
    assert settings.receipt_max_age_days == MAX_AGE.days
    with TestClient(app, raise_server_exceptions=False) as client:
        world = _world(settings, auth, client)
        monkeypatch.setattr("carbonpuhui.credits.clock.now", world.clock)
        run_state_machine_as_test(lambda: LedgerMachine(world), settings=hypothesis_settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))

"""The wallet (GET /v1/wallet, /v1/wallet/entries), rewards and redemptions, and expiry of credits
oldest first (``expire_all`` / ``carbonpuhui credits expire``), against independent models."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.cli import main
from carbonpuhui.credits.maintenance import expire_all
from carbonpuhui.credits.models import Account, Entry, Redemption, Reward
from tests.api.credit_flow import SHOP, CreditFlow
from tests.api.test_credit_trips import CHINA, NOW, Clock, at, grams, in_db, ledger_problems, reason


@pytest.fixture
def flow(client, auth) -> CreditFlow:
    return CreditFlow(client, auth)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, NOW)


def earn(flow: CreditFlow, clock: Clock, headers: dict[str, str], mode: str, km: str, when: datetime) -> int:
    """Claim a trip at clock time ``when`` (the trip ended shortly before); the grams credited."""
    clock.set(when)
    body = at(when - timedelta(hours=4), mode, km)
    out = flow.ok(flow.trip(headers, body), 201)
    assert out["credited_g"] == grams(mode, km)
    return out["credited_g"]


def rewards_page(flow: CreditFlow, **params: Any) -> dict[str, Any]:
    return flow.ok(flow.client.get("/v1/rewards", params=params))


def reward_row(flow: CreditFlow, reward_id: str) -> dict[str, Any]:
    [row] = [r for r in rewards_page(flow, limit=500)["items"] if r["id"] == reward_id]
    return row


def merchant_balance(flow: CreditFlow, org: str) -> int | None:
    async def job(session: AsyncSession) -> int | None:
        return await session.scalar(select(Account.balance_g).where(Account.kind == "merchant", Account.owner == org))

    return in_db(flow, job)


def all_entries(flow: CreditFlow, headers: dict[str, str], limit: int) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        page = flow.ok(flow.client.get("/v1/wallet/entries", params=params, headers=headers))
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "paging does not end"


# --- the wallet -----------------------------------------------------------------------------------


def test_someone_new_has_an_empty_wallet(flow, clock) -> None:
    bob = flow.consumer("bob")
    wallet = flow.wallet(bob)
    assert {k: wallet[k] for k in ("balance_g", "earned_g", "redeemed_g", "expiring_30d_g")} == dict.fromkeys(
        ("balance_g", "earned_g", "redeemed_g", "expiring_30d_g"), 0)
    page = flow.ok(flow.client.get("/v1/wallet/entries", headers=bob))
    assert page == {"items": [], "next_cursor": None}


def test_the_wallet_is_what_was_earned_less_what_was_redeemed(flow, clock) -> None:
    alice = flow.consumer("alice")
    earned = earn(flow, clock, alice, "walk", "5", NOW - timedelta(days=2))
    earned += earn(flow, clock, alice, "bike", "10", NOW - timedelta(days=1))
    cheap, dear = flow.reward(earned // 3, 5), flow.reward(earned // 4, 5, title="Mug")
    clock.set(NOW)
    first = flow.ok(flow.redeem(alice, cheap), 201)
    assert set(first) >= {"id", "balance_g"}
    assert first["balance_g"] == earned - earned // 3
    second = flow.ok(flow.redeem(alice, dear), 201)
    assert second["balance_g"] == earned - earned // 3 - earned // 4
    wallet = flow.wallet(alice)
    assert {k: wallet[k] for k in ("balance_g", "earned_g", "redeemed_g", "expiring_30d_g")} == {
        "balance_g": second["balance_g"], "earned_g": earned, "redeemed_g": earned // 3 + earned // 4,
        "expiring_30d_g": 0}
    assert flow.wallet(flow.consumer("bob"))["balance_g"] == 0
    assert ledger_problems(flow) == []


def test_entries_are_newest_first_signed_and_paged(flow, clock) -> None:
    alice, bob = flow.consumer("alice"), flow.consumer("bob")
    expected: list[tuple[str, int]] = []  # (kind, signed grams), oldest first
    when = NOW - timedelta(days=9)
    for i in range(8):
        km = str(1 + i % 3)
        expected.append(("trip", earn(flow, clock, alice, "walk", km, when)))
        when += timedelta(hours=13)
    earn(flow, clock, bob, "walk", "2", when)  # not hers
    reward = flow.reward(50, 10)
    for _ in range(3):
        when += timedelta(hours=1)
        clock.set(when)
        flow.ok(flow.redeem(alice, reward), 201)
        expected.append(("redemption", -50))
    pages = all_entries(flow, alice, limit=2)
    assert len(pages) > 3
    assert all(0 < len(page) <= 2 for page in pages)
    entries = [e for page in pages for e in page]
    assert [(e["kind"], e["amount_g"]) for e in entries] == expected[::-1]
    assert len({e["id"] for e in entries}) == len(entries)
    times = [datetime.fromisoformat(e["created_at"]) for e in entries]
    assert times == sorted(times, reverse=True) and len(set(times)) == len(times)
    # Credits carry when they lapse (with the configured months), debits nothing.
    assert all((e["expires_at"] is None) == (e["amount_g"] < 0) for e in entries)
    assert sum(e["amount_g"] for e in entries) == flow.wallet(alice)["balance_g"]
    # One page with all of them is the same list.
    whole = flow.ok(flow.client.get("/v1/wallet/entries", params={"limit": 500}, headers=alice))
    assert whole["items"] == entries and whole["next_cursor"] is None
    bobs = flow.ok(flow.client.get("/v1/wallet/entries", headers=bob))["items"]
    assert [e["amount_g"] for e in bobs] == [grams("walk", "2")]
    assert not {e["id"] for e in bobs} & {e["id"] for e in entries}


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_bad_entries_cursor_is_a_400(flow, clock) -> None:
    alice = flow.consumer("alice")
    earn(flow, clock, alice, "walk", "1", NOW)
    for cursor in ("!!!", _b64("abc"), _b64("-1"), _b64("1" * 40), _b64("1\x00"), "=", _b64("١٢")):
        response = flow.client.get("/v1/wallet/entries", params={"cursor": cursor}, headers=alice)
        assert (response.status_code, reason(response)) == (400, "invalid_cursor"), (cursor, response.text)
    for params in ({"limit": 0}, {"limit": 501}, {"limit": -1}, {"limit": "ten"}, {"cursor": "x" * 201}):
        response = flow.client.get("/v1/wallet/entries", params=params, headers=alice)
        assert response.status_code in (400, 422), (params, response.text)


def test_the_wallet_is_a_consumers(flow, clock) -> None:
    for path in ("/v1/wallet", "/v1/wallet/entries"):
        assert flow.client.get(path, headers=flow.shop).status_code == 403
        assert flow.client.get(path).status_code == 401
    assert flow.client.get("/v1/wallet", headers=flow.consumer("alice")).headers["cache-control"].startswith(
        "private")


# --- rewards --------------------------------------------------------------------------------------


def test_a_merchant_offers_a_reward(flow, clock) -> None:
    response = flow.client.post("/v1/merchant/rewards", json={"title": "Tote bag", "cost_g": 500, "stock": 3},
                                headers=flow.shop)
    reward = flow.ok(response, 201)
    assert uuid.UUID(reward["id"])
    assert {k: reward[k] for k in ("merchant", "title", "cost_g", "stock", "redeemed")} == {
        "merchant": SHOP, "title": "Tote bag", "cost_g": 500, "stock": 3, "redeemed": 0}
    assert reward_row(flow, reward["id"]) == reward


def test_only_merchants_offer_rewards(flow, clock) -> None:
    body = {"title": "Tote bag", "cost_g": 500, "stock": 3}
    for role in ("consumer", "verifier", "officer", "admin"):
        response = flow.client.post("/v1/merchant/rewards", json=body, headers=flow.auth(role, org="x", sub="x"))
        assert response.status_code == 403, role
    assert flow.client.post("/v1/merchant/rewards", json=body).status_code == 401
    assert rewards_page(flow)["items"] == []


def test_an_invalid_reward_is_refused(flow, clock) -> None:
    for body in ({"title": "x", "cost_g": 0, "stock": 1}, {"title": "x", "cost_g": 10, "stock": -1},
                 {"title": "", "cost_g": 10, "stock": 1}, {"cost_g": 10, "stock": 1},
                 {"title": "x", "cost_g": 10, "stock": 1, "merchant": "rival"}):
        response = flow.client.post("/v1/merchant/rewards", json=body, headers=flow.shop)
        assert response.status_code in (400, 422), (body, response.text)
    assert rewards_page(flow)["items"] == []


def test_rewards_are_public_newest_first_and_paged(flow, clock) -> None:
    made = []  # (id, merchant, stock), oldest first
    for i in range(7):
        clock.set(NOW + timedelta(minutes=i))
        headers, org = (flow.shop, SHOP) if i % 2 == 0 else (flow.rival, "rival")
        stock = 0 if i in (2, 5) else i + 1
        made.append((flow.reward(100 + i, stock, headers=headers, title=f"Reward {i}"), org, stock))
    newest_first = made[::-1]
    ids, cursor, pages = [], None, 0
    while True:
        page = rewards_page(flow, limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= 2
        ids += [r["id"] for r in page["items"]]
        pages, cursor = pages + 1, page["next_cursor"]
        if cursor is None:
            break
    assert pages > 3
    assert ids == [r[0] for r in newest_first]
    available = [r["id"] for r in rewards_page(flow, available="true", limit=500)["items"]]
    assert available == [r[0] for r in newest_first if r[2] > 0]
    shops = [r["id"] for r in rewards_page(flow, merchant=SHOP)["items"]]
    assert shops == [r[0] for r in newest_first if r[1] == SHOP]
    assert flow.client.get("/v1/rewards", params={"cursor": "!!!"}).status_code == 400
    assert flow.client.get("/v1/rewards", params={"cursor": _b64("2026-01-01T00:00:00|nope")}).status_code == 400


def test_redeeming_takes_the_cost_and_one_from_stock_and_pays_the_merchant(flow, clock) -> None:
    alice, bob = flow.consumer("alice"), flow.consumer("bob")
    balance = earn(flow, clock, alice, "bike", "20", NOW - timedelta(days=1))
    bob_balance = earn(flow, clock, bob, "walk", "10", NOW - timedelta(days=1))
    clock.set(NOW)
    tote, mug = flow.reward(300, 2), flow.reward(120, 5, headers=flow.rival, title="Mug")
    out = flow.ok(flow.redeem(alice, tote), 201)
    assert uuid.UUID(out["id"]) and out["balance_g"] == balance - 300
    flow.ok(flow.redeem(alice, mug), 201)
    flow.ok(flow.redeem(bob, tote), 201)
    assert (reward_row(flow, tote)["stock"], reward_row(flow, tote)["redeemed"]) == (0, 2)
    assert (reward_row(flow, mug)["stock"], reward_row(flow, mug)["redeemed"]) == (4, 1)
    assert flow.wallet(alice)["balance_g"] == balance - 300 - 120
    assert flow.wallet(bob)["balance_g"] == bob_balance - 300
    # The merchants' accounts got exactly what their rewards cost.
    assert merchant_balance(flow, SHOP) == 600
    assert merchant_balance(flow, "rival") == 120

    async def redemptions(session: AsyncSession) -> list[tuple[str, int]]:
        return sorted((r.reward_id, r.cost_g) for r in await session.execute(
            select(Redemption.reward_id, Redemption.cost_g)))

    assert in_db(flow, redemptions) == sorted([(tote, 300), (mug, 120), (tote, 300)])
    assert ledger_problems(flow) == []


def test_too_little_balance_is_a_409_and_changes_nothing(flow, clock) -> None:
    alice = flow.consumer("alice")
    balance = earn(flow, clock, alice, "walk", "5", NOW - timedelta(hours=1))
    clock.set(NOW)
    reward = flow.reward(balance + 1, 3)
    response = flow.redeem(alice, reward)
    assert (response.status_code, reason(response)) == (409, "insufficient_balance"), response.text
    assert flow.wallet(alice)["balance_g"] == balance
    assert (reward_row(flow, reward)["stock"], reward_row(flow, reward)["redeemed"]) == (3, 0)
    assert merchant_balance(flow, SHOP) in (None, 0)
    # Exactly the balance is enough.
    exact = flow.reward(balance, 1)
    assert flow.ok(flow.redeem(alice, exact), 201)["balance_g"] == 0
    # Someone with nothing at all.
    response = flow.redeem(flow.consumer("bob"), reward)
    assert (response.status_code, reason(response)) == (409, "insufficient_balance")
    assert ledger_problems(flow) == []


def test_out_of_stock_is_a_409_and_charges_nothing(flow, clock) -> None:
    alice, bob = flow.consumer("alice"), flow.consumer("bob")
    earn(flow, clock, alice, "bike", "20", NOW - timedelta(hours=1))
    bob_balance = earn(flow, clock, bob, "bike", "20", NOW - timedelta(hours=1))
    clock.set(NOW)
    last_one, none_left = flow.reward(100, 1), flow.reward(100, 0)
    flow.ok(flow.redeem(alice, last_one), 201)
    for reward_id in (last_one, none_left):
        response = flow.redeem(bob, reward_id)
        assert (response.status_code, reason(response)) == (409, "out_of_stock"), response.text
    assert flow.wallet(bob)["balance_g"] == bob_balance
    assert reward_row(flow, last_one)["stock"] == 0 and reward_row(flow, none_left)["redeemed"] == 0
    assert merchant_balance(flow, SHOP) == 100
    assert ledger_problems(flow) == []


def test_an_unknown_reward_is_a_404(flow, clock) -> None:
    alice = flow.consumer("alice")
    balance = earn(flow, clock, alice, "walk", "5", NOW - timedelta(hours=1))
    clock.set(NOW)
    for reward_id in (str(uuid.uuid4()), "nope", "0" * 36):
        assert flow.redeem(alice, reward_id).status_code == 404, reward_id
    assert flow.wallet(alice)["balance_g"] == balance


def test_a_retried_redemption_redeems_once(flow, clock) -> None:
    alice = flow.consumer("alice")
    balance = earn(flow, clock, alice, "bike", "20", NOW - timedelta(hours=1))
    clock.set(NOW)
    reward = flow.reward(100, 5)
    first, again = flow.redeem(alice, reward, key="r-1"), flow.redeem(alice, reward, key="r-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert flow.wallet(alice)["balance_g"] == balance - 100
    assert reward_row(flow, reward)["stock"] == 4


def test_only_consumers_redeem(flow, clock) -> None:
    reward = flow.reward(100, 5)
    assert flow.redeem(flow.shop, reward).status_code == 403
    assert flow.client.post("/v1/wallet/redemptions", json={"reward_id": reward}).status_code == 401


# --- expiry ---------------------------------------------------------------------------------------


def months_later(moment: datetime, months: int) -> datetime:
    """The same wall-clock time in Beijing ``months`` later; only for days every month has."""
    local = moment.astimezone(CHINA)
    assert local.day <= 28
    years, month0 = divmod(local.month - 1 + months, 12)
    return local.replace(year=local.year + years, month=month0 + 1).astimezone(UTC)


@dataclass
class Fifo:
    """What a wallet should hold: credits (lots) consumed oldest first by every debit."""

    lots: list[list[Any]] = field(default_factory=list)  # [grams left, expires_at]

    def credit(self, grams: int, expires_at: datetime) -> None:
        self.lots.append([grams, expires_at])

    def debit(self, grams: int) -> None:
        for lot in self.lots:
            taken = min(lot[0], grams)
            lot[0], grams = lot[0] - taken, grams - taken
        assert grams == 0, "overdrawn"

    def lapsed(self, now: datetime) -> int:
        return sum(left for left, expires_at in self.lots if expires_at <= now)

    def expire(self, now: datetime) -> int:
        gone = self.lapsed(now)
        self.debit(gone)
        return gone

    @property
    def balance(self) -> int:
        return sum(left for left, _ in self.lots)


def expire(flow: CreditFlow, now: datetime) -> tuple[int, int]:
    db = flow.client.app.state.db
    with flow.client.portal() as portal:
        return portal.call(expire_all, db, now)


FIRST = datetime(2026, 1, 10, 4, 0, tzinfo=UTC)  # noon in Beijing
SECOND = FIRST + timedelta(days=40)


@pytest.mark.parametrize("spent", ["nothing", "part of the first", "all the first", "into the second"])
def test_expiry_takes_what_lapsed_oldest_first_and_only_once(flow, clock, settings, spent) -> None:
    months = settings.credit_expiry_months
    alice = flow.consumer("alice")
    model = Fifo()
    first = earn(flow, clock, alice, "walk", "10", FIRST)
    model.credit(first, months_later(FIRST, months))
    second = earn(flow, clock, alice, "bike", "20", SECOND)
    model.credit(second, months_later(SECOND, months))
    cost = {"nothing": 0, "part of the first": first // 3, "all the first": first,
            "into the second": first + second // 2}[spent]
    if cost:
        clock.set(SECOND + timedelta(days=1))
        flow.ok(flow.redeem(alice, flow.reward(cost, 1)), 201)
        model.debit(cost)
    lapses = model.lots[0][1]
    entries = flow.ok(flow.client.get("/v1/wallet/entries", params={"limit": 500}, headers=alice))["items"]
    assert sorted(datetime.fromisoformat(e["expires_at"]) for e in entries if e["amount_g"] > 0) == [
        lapses, model.lots[1][1]]

    # Ten days before: what will lapse within 30 days is what is left of the first credit.
    clock.set(lapses - timedelta(days=10))
    wallet = flow.wallet(alice)
    assert wallet["expiring_30d_g"] == model.lapsed(lapses) == max(0, first - cost)
    assert wallet["balance_g"] == first + second - cost
    assert flow.wallet(alice)["expiring_30d_g"] == wallet["expiring_30d_g"]
    clock.set(lapses - timedelta(days=31))
    assert flow.wallet(alice)["expiring_30d_g"] == 0

    # A minute before it lapses nothing goes.
    assert expire(flow, lapses - timedelta(minutes=1)) == (0, 0)
    # A minute after, the credit no longer pays, even before the sweep.
    after = lapses + timedelta(minutes=1)
    clock.set(after)
    due = model.lapsed(after)
    assert flow.wallet(alice)["balance_g"] == first + second - cost - due
    assert expire(flow, after) == ((1, due) if due else (0, 0))
    assert model.expire(after) == due
    assert expire(flow, after) == (0, 0)
    assert expire(flow, after + timedelta(days=1)) == (0, 0)
    wallet = flow.wallet(alice)
    assert wallet["balance_g"] == model.balance == first + second - cost - due
    assert wallet["redeemed_g"] == cost and wallet["earned_g"] == first + second
    assert ledger_problems(flow, after) == []

    # Then the second credit lapses in its turn: nothing is left.
    end = model.lots[1][1] + timedelta(minutes=1)
    clock.set(end)
    rest = model.expire(end)
    assert expire(flow, end) == ((1, rest) if rest else (0, 0))
    assert flow.wallet(alice)["balance_g"] == model.balance == 0
    assert ledger_problems(flow, end) == []
    kinds = [e["kind"] for e in flow.ok(flow.client.get("/v1/wallet/entries", params={"limit": 500},
                                                        headers=alice))["items"]]
    assert kinds.count("expiry") == (due > 0) + (rest > 0)


def test_a_lapsed_credit_cannot_pay_for_a_reward(flow, clock, settings) -> None:
    alice = flow.consumer("alice")
    first = earn(flow, clock, alice, "walk", "10", FIRST)
    second = earn(flow, clock, alice, "bike", "20", SECOND)
    after = months_later(FIRST, settings.credit_expiry_months) + timedelta(hours=1)
    clock.set(after)
    dear, fair = flow.reward(second + 1, 1), flow.reward(second, 1)
    response = flow.redeem(alice, dear)
    assert (response.status_code, reason(response)) == (409, "insufficient_balance"), response.text
    assert flow.ok(flow.redeem(alice, fair), 201)["balance_g"] == 0
    wallet = flow.wallet(alice)
    assert (wallet["balance_g"], wallet["redeemed_g"], wallet["earned_g"]) == (0, second, first + second)
    assert expire(flow, after) == (0, 0)  # the redemption swept it already
    assert ledger_problems(flow, after) == []


def test_expiry_only_touches_those_whose_credits_lapsed(flow, clock, settings) -> None:
    alice, bob = flow.consumer("alice"), flow.consumer("bob")
    first = earn(flow, clock, alice, "walk", "10", FIRST)
    later = earn(flow, clock, bob, "walk", "10", SECOND)
    after = months_later(FIRST, settings.credit_expiry_months) + timedelta(minutes=1)
    clock.set(after)
    assert expire(flow, after) == (1, first)
    assert (flow.wallet(alice)["balance_g"], flow.wallet(bob)["balance_g"]) == (0, later)

    async def expired_total(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.sum(Entry.amount_g)).where(Entry.account_id == "expiry")) or 0)

    assert in_db(flow, expired_total) == first


def test_the_cli_expires_once_and_the_ledger_checks(flow, clock, settings) -> None:
    alice = flow.consumer("alice")
    first = earn(flow, clock, alice, "walk", "10", FIRST)
    second = earn(flow, clock, alice, "bike", "20", SECOND)
    clock.set(months_later(FIRST, settings.credit_expiry_months) + timedelta(minutes=1))
    env = {"CARBONPUHUI_DATA_DIR": str(settings.data_dir), "CARBONPUHUI_DATABASE_URL": settings.database_url or "",
           "CARBONPUHUI_REDIS_URL": settings.redis_url or "", "CARBONPUHUI_REDIS_NAMESPACE": settings.redis_namespace}
    runner = CliRunner()
    result = runner.invoke(main, ["credits", "expire"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["accounts"], out["expired_g"]) == (1, first)
    result = runner.invoke(main, ["credits", "expire"], env=env, catch_exceptions=False)
    out = json.loads(result.stdout)
    assert (out["accounts"], out["expired_g"]) == (0, 0)
    result = runner.invoke(main, ["ledger", "check"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["violations"] == 0
    assert flow.wallet(alice)["balance_g"] == second


def test_rewards_stock_and_count_agree_in_the_database(flow, clock) -> None:
    alice = flow.consumer("alice")
    earn(flow, clock, alice, "bike", "20", NOW - timedelta(hours=1))
    clock.set(NOW)
    reward = flow.reward(10, 3)
    for _ in range(3):
        flow.ok(flow.redeem(alice, reward), 201)

    async def row(session: AsyncSession) -> tuple[int, int]:
        found = await session.get_one(Reward, reward)
        return found.stock, found.redeemed

    assert in_db(flow, row) == (0, 3)
    assert ledger_problems(flow) == []

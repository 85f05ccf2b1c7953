"""``carbonpuhui ledger check``: it passes on a ledger written through the API (purchases, a trip, a
redemption, an expiry run), and reports each kind of tampering done directly in the database —
a transfer that no longer sums to zero, a cached balance that disagrees with its entries, a claim
that says it credited something else, credits expired before their time — with exit status 1.

Both the function (``carbonpuhui.credits.maintenance.check``) and the CLI (click's CliRunner, with
CARBONPUHUI_DATA_DIR / CARBONPUHUI_DATABASE_URL pointing at the test database) are exercised.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from carbonpuhui.cli import main
from carbonpuhui.credits.maintenance import check, expire_all
from carbonpuhui.credits.models import Account, Claim, Entry, Reward, Transfer
from carbonpuhui.db import Database
from carbonpuhui.db.engine import create_engine
from tests.api.credit_flow import CreditFlow, trip_body

EARNED_PURCHASE_G = 3000  # baseline 5 - label 2 kgCO2e/kg, 1 kg
EARNED_TRIP_G = 92  # 2 km walked x 46 g/km (green_travel.toml)
REWARD_G = 1000


@dataclass(frozen=True, kw_only=True)
class Ledger:
    url: str
    person: str  # the consumer's account id
    purchase_transfer: str
    purchase_claim: str
    reward: str


def run(url: str, job: Callable[[AsyncConnection], Awaitable[Any]], *, bypass_triggers: bool = False) -> Any:
    """``job`` in one transaction on its own engine. ``bypass_triggers``: on PostgreSQL, switch off
    the ledger's append-only triggers for this transaction (as a superuser could), to tamper."""

    async def go() -> Any:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                if bypass_triggers and conn.dialect.name == "postgresql":
                    await conn.execute(text("SET LOCAL session_replication_role = replica"))
                return await job(conn)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def check_now(url: str, now: datetime | None = None) -> tuple[dict[str, int], list[str]]:
    async def go() -> tuple[dict[str, int], list[str]]:
        db = Database(url)
        try:
            async with db.transaction() as session:
                return await check(session, now)
        finally:
            await db.dispose()

    return asyncio.run(go())


def cli_check(settings) -> tuple[int, dict[str, Any], list[str]]:
    result = CliRunner().invoke(main, ["ledger", "check"], env={
        "CARBONPUHUI_DATA_DIR": str(settings.data_dir),
        "CARBONPUHUI_DATABASE_URL": settings.effective_database_url,
    })
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    violations = [line.removeprefix("violation: ") for line in result.stderr.splitlines()
                  if line.startswith("violation: ")]
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1]), violations


@pytest.fixture
def ledger(client, auth, settings) -> Ledger:
    """One consumer: a purchase that earns, one that earns nothing, a walk, a redemption."""
    flow = CreditFlow(client, auth)
    flow.benchmark(["1", "2", "3", "4"], baseline="5", uncertainty_penalty="0")
    code = flow.labelled(1, "2")
    signer = flow.register()
    person = flow.consumer("pat")
    claim = flow.ok(flow.claim(person, signer.receipt([{"gtin": code, "qty": 1}])), 201)
    assert claim["credited_g"] == EARNED_PURCHASE_G
    assert flow.ok(flow.claim(person, signer.receipt([{"gtin": flow.product(2, "1"), "qty": 1}])),
                   201)["credited_g"] == 0
    assert flow.ok(flow.trip(person, trip_body("walk", "2", 30)), 201)["credited_g"] == EARNED_TRIP_G
    reward = flow.reward(REWARD_G, 3)
    flow.ok(flow.redeem(person, reward), 201)
    assert flow.wallet(person)["balance_g"] == EARNED_PURCHASE_G + EARNED_TRIP_G - REWARD_G

    async def ids(conn: AsyncConnection) -> tuple[str, str]:
        account = (await conn.execute(select(Account.id).where(Account.kind == "person",
                                                                Account.owner == "pat"))).scalar_one()
        transfer = (await conn.execute(select(Claim.transfer_id).where(Claim.id == claim["claim_id"]))).scalar_one()
        return account, transfer

    account, transfer = run(settings.effective_database_url, ids)
    return Ledger(url=settings.effective_database_url, person=account, purchase_transfer=transfer,
                  purchase_claim=claim["claim_id"], reward=reward)


# --- a sound ledger -----------------------------------------------------------------------------

def test_a_ledger_written_through_the_api_passes(ledger: Ledger, settings) -> None:
    counts, problems = check_now(ledger.url)
    assert problems == []
    # 3 transfers (purchase, trip, redemption) of 2 legs; 3 claims (one earned nothing, so no
    # transfer); accounts: issuance, expiry, forfeit, the person, the merchant.
    assert counts == {"transfers": 3, "entries": 6, "accounts": 5, "claims": 3}
    code, out, violations = cli_check(settings)
    assert (code, out["violations"], violations) == (0, 0, [])
    assert {k: out[k] for k in counts} == counts


def test_an_expiry_run_at_its_time_passes_and_reads_as_premature_before_it(ledger: Ledger, settings) -> None:
    later = datetime.now(UTC) + timedelta(days=31 * settings.credit_expiry_months + 1)

    async def expire() -> tuple[int, int]:
        db = Database(ledger.url)
        try:
            return await expire_all(db, later)
        finally:
            await db.dispose()

    accounts, grams = asyncio.run(expire())
    assert (accounts, grams) == (1, EARNED_PURCHASE_G + EARNED_TRIP_G - REWARD_G)
    assert check_now(ledger.url, later)[1] == []
    # Seen from today, the same expiry came before its time.
    problems = check_now(ledger.url)[1]
    assert len(problems) == 1 and ledger.person in problems[0] and "expired" in problems[0]


# --- tampering ----------------------------------------------------------------------------------

async def _issuance_leg_changed(conn: AsyncConnection, ledger: Ledger) -> None:
    await conn.execute(update(Entry).where(Entry.transfer_id == ledger.purchase_transfer,
                                           Entry.account_id == "issuance").values(amount_g=Entry.amount_g - 7))


async def _persons_leg_changed(conn: AsyncConnection, ledger: Ledger) -> None:
    await conn.execute(update(Entry).where(Entry.transfer_id == ledger.purchase_transfer,
                                           Entry.account_id == ledger.person).values(amount_g=Entry.amount_g + 7))


async def _balance_changed(conn: AsyncConnection, ledger: Ledger) -> None:
    await conn.execute(update(Account).where(Account.id == ledger.person).values(balance_g=Account.balance_g + 500))


async def _merchant_balance_changed(conn: AsyncConnection, ledger: Ledger) -> None:
    await conn.execute(update(Account).where(Account.kind == "merchant").values(balance_g=Account.balance_g - 1))


async def _claim_changed(conn: AsyncConnection, ledger: Ledger) -> None:
    await conn.execute(update(Claim).where(Claim.id == ledger.purchase_claim).values(credited_g=Claim.credited_g + 1))


async def _empty_claim_says_it_credited(conn: AsyncConnection, ledger: Ledger) -> None:
    await conn.execute(update(Claim).where(Claim.transfer_id.is_(None), Claim.kind == "purchase")
                       .values(credited_g=250))


async def _early_expiry(conn: AsyncConnection, ledger: Ledger) -> None:
    """An expiry of 500 g written now, with the balance moved to match: everything sums, but
    nothing had lapsed (the credits last 24 months)."""
    now = datetime.now(UTC)
    transfer = str(uuid.uuid4())
    await conn.execute(insert(Transfer).values(id=transfer, kind="expiry", reference=None, created_at=now))
    await conn.execute(insert(Entry), [
        {"transfer_id": transfer, "account_id": ledger.person, "amount_g": -500, "created_at": now, "expires_at": None},
        {"transfer_id": transfer, "account_id": "expiry", "amount_g": 500, "created_at": now, "expires_at": None}])
    await conn.execute(update(Account).where(Account.id == ledger.person).values(balance_g=Account.balance_g - 500))


async def _one_legged_transfer(conn: AsyncConnection, ledger: Ledger) -> None:
    await conn.execute(insert(Transfer).values(id=str(uuid.uuid4()), kind="erasure", reference=None,
                                               created_at=datetime.now(UTC)))


async def _reward_count_changed(conn: AsyncConnection, ledger: Ledger) -> None:
    await conn.execute(update(Reward).where(Reward.id == ledger.reward).values(redeemed=Reward.redeemed + 1))


async def _second_claim_on_one_transfer(conn: AsyncConnection, ledger: Ledger) -> None:
    """The claim that earned nothing now points at the paying claim's transfer, crediting as much:
    each claim alone matches what the transfer paid its claimant."""
    await conn.execute(update(Claim).where(Claim.transfer_id.is_(None), Claim.kind == "purchase")
                       .values(transfer_id=ledger.purchase_transfer, credited_g=EARNED_PURCHASE_G))


BALANCE = EARNED_PURCHASE_G + EARNED_TRIP_G - REWARD_G

# name -> (tampering, what each reported problem must name: one list per problem)
TAMPERING: dict[str, tuple[Callable[[AsyncConnection, Ledger], Awaitable[None]], list[list[str]]]] = {
    "an entry's amount (the issuance leg)": (_issuance_leg_changed, [["transfer", "{transfer}", "-7 g"]]),
    "an entry's amount (the person's leg)": (_persons_leg_changed, [
        ["transfer", "{transfer}", "7 g"], ["account", "{person}", f"{BALANCE + 7} g"],
        ["claim", "{claim}", f"{EARNED_PURCHASE_G + 7} g"]]),
    "a person's cached balance": (_balance_changed, [["account", "{person}", f"{BALANCE + 500} g",
                                                       f"{BALANCE} g"]]),
    "a merchant's cached balance": (_merchant_balance_changed, [["account", f"{REWARD_G - 1} g", f"{REWARD_G} g"]]),
    "a claim's credited_g": (_claim_changed, [["claim", "{claim}", f"{EARNED_PURCHASE_G + 1} g",
                                               f"{EARNED_PURCHASE_G} g"]]),
    "a claim crediting without a transfer": (_empty_claim_says_it_credited, [["claim", "250 g", "0 g"]]),
    "an expiry before its time": (_early_expiry, [["account", "{person}", "500 g expired", "0 g had lapsed"]]),
    "a transfer without entries": (_one_legged_transfer, [["transfer", "0 entries"]]),
    "two claims on one transfer": (_second_claim_on_one_transfer, [
        ["transfer", "{transfer}", "pays 2 claims"], ["claim", "its transfer names {claim}"]]),
    "a reward's redeemed count": (_reward_count_changed, [["reward", "{reward}", "redeemed 2", "1 redemptions"]]),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_tampering_is_reported_and_the_cli_exits_1(ledger: Ledger, settings, name: str) -> None:
    tamper, expected = TAMPERING[name]
    assert check_now(ledger.url)[1] == []
    run(ledger.url, lambda conn: tamper(conn, ledger), bypass_triggers=True)
    names = {"transfer": ledger.purchase_transfer, "person": ledger.person, "claim": ledger.purchase_claim,
             "reward": ledger.reward}
    wanted = [[part.format(**names) for part in parts] for parts in expected]
    _, problems = check_now(ledger.url)
    assert len(problems) == len(wanted), problems
    for parts in wanted:
        assert any(all(part in problem for part in parts) for problem in problems), (parts, problems)
    code, out, violations = cli_check(settings)
    assert code == 1
    assert out["violations"] == len(problems)
    assert sorted(violations) == sorted(problems)


def test_the_check_reads_the_entries_not_a_cache(ledger: Ledger, settings) -> None:
    """Undoing a tampering makes the ledger pass again: the check has no memory of its own."""
    run(ledger.url, lambda conn: _balance_changed(conn, ledger), bypass_triggers=True)
    assert len(check_now(ledger.url)[1]) == 1

    async def undo(conn: AsyncConnection) -> None:
        total = (await conn.execute(select(func.sum(Entry.amount_g)).where(Entry.account_id == ledger.person)))
        await conn.execute(update(Account).where(Account.id == ledger.person).values(balance_g=total.scalar_one()))

    run(ledger.url, undo)
    assert check_now(ledger.url)[1] == []
    assert cli_check(settings)[0] == 0


def test_on_postgresql_the_database_refuses_to_rewrite_entries(settings, request: pytest.FixtureRequest) -> None:
    if not settings.effective_database_url.startswith("postgresql"):
        pytest.skip("the append-only triggers are PostgreSQL's")
    ledger: Ledger = request.getfixturevalue("ledger")
    for tamper in (_issuance_leg_changed, _persons_leg_changed):
        with pytest.raises(DBAPIError, match="append-only"):
            run(ledger.url, lambda conn, tamper=tamper: tamper(conn, ledger))

    async def delete_transfer(conn: AsyncConnection) -> None:
        await conn.execute(Transfer.__table__.delete().where(Transfer.id == ledger.purchase_transfer))

    with pytest.raises(DBAPIError, match="append-only"):
        run(ledger.url, delete_transfer)
    assert check_now(ledger.url)[1] == []

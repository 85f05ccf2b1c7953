"""A person's data: GET /v1/me/export (everything of theirs, nothing of anyone else's) and
DELETE /v1/me (erasure that keeps the ledger balanced and every receipt claimed once, ever)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.credits.models import Account, Claim, Entry, IdempotencyRecord, Redemption, Trip
from tests.api.credit_flow import OPERATOR, CreditFlow, Signer, trip_body
from tests.api.test_credit_trips import export, grams, in_db, ledger_problems, reason

BASELINE, LABEL = "50", "30"  # kg CO2e per kg: the category's baseline and the product's label


@pytest.fixture
def flow(client, auth) -> CreditFlow:
    return CreditFlow(client, auth)


def receipt_grams(qty: int) -> int:
    # One kilogram per item: (baseline − label) kg × qty, in grams.
    return int((Decimal(BASELINE) - Decimal(LABEL)) * 1000 * qty)


class World:
    """Alice and Bob, each with a purchase, trips and a redemption."""

    def __init__(self, flow: CreditFlow) -> None:
        self.flow = flow
        flow.benchmark(["10", "20", "30", "40"], baseline=BASELINE, uncertainty_penalty="0")
        self.gtin = flow.labelled(1, LABEL)
        self.shop: Signer = flow.register()
        self.metro: Signer = flow.register(headers=flow.operator, org=OPERATOR)
        self.alice, self.bob = flow.consumer("alice"), flow.consumer("bob")
        self.reward = flow.reward(1000, 10)
        self.alice_receipt = self.shop.receipt([{"gtin": self.gtin, "qty": 2}], jti="till-1-0001")
        self.bob_receipt = self.shop.receipt([{"gtin": self.gtin, "qty": 1}], jti="till-1-0002")
        self.alice_ride = trip_body("metro", "12.5", 40, ago=timedelta(hours=5))
        self.alice_ride["attestation"] = self.metro.attestation("alice", self.alice_ride, jti="gate-7")
        self.ids: dict[str, dict[str, Any]] = {"alice": {}, "bob": {}}
        for who, headers, receipt, qty in (("alice", self.alice, self.alice_receipt, 2),
                                           ("bob", self.bob, self.bob_receipt, 1)):
            out = flow.ok(flow.claim(headers, receipt, key=f"{who}-p"), 201)
            assert out["credited_g"] == receipt_grams(qty)
            walk = flow.ok(flow.trip(headers, trip_body("walk", "3", 40), key=f"{who}-t"), 201)
            redemption = flow.ok(flow.redeem(headers, self.reward, key=f"{who}-r"), 201)
            self.ids[who] = {"purchase": out["claim_id"], "walk": walk["claim_id"], "redemption": redemption["id"]}
        ride = flow.ok(flow.trip(self.alice, self.alice_ride), 201)
        assert ride["credited_g"] == grams("metro", "12.5")
        self.ids["alice"]["ride"] = ride["claim_id"]
        self.alice_balance = receipt_grams(2) + grams("walk", "3") + grams("metro", "12.5") - 1000
        self.bob_balance = receipt_grams(1) + grams("walk", "3") - 1000


@pytest.fixture
def world(flow: CreditFlow) -> World:
    return World(flow)


def account_of(flow: CreditFlow, sub: str) -> str:
    return export(flow, flow.consumer(sub))["account"]["id"]


# --- export ---------------------------------------------------------------------------------------


def test_the_export_holds_the_wallet_entries_claims_trips_and_redemptions(flow, world) -> None:
    data = export(flow, world.alice)
    assert data["sub"] == "alice"
    wallet = flow.wallet(world.alice)
    assert data["wallet"] == wallet and wallet["balance_g"] == world.alice_balance
    listed = flow.ok(flow.client.get("/v1/wallet/entries", params={"limit": 500}, headers=world.alice))["items"]
    assert sorted(data["entries"], key=lambda e: e["id"]) == sorted(listed, key=lambda e: e["id"])
    assert sum(e["amount_g"] for e in data["entries"]) == world.alice_balance
    claims = {c["claim_id"]: c for c in data["claims"]}
    assert set(claims) == {world.ids["alice"][k] for k in ("purchase", "walk", "ride")}
    purchase = claims[world.ids["alice"]["purchase"]]
    assert (purchase["kind"], purchase["issuer"], purchase["credited_g"]) == ("purchase", "shop", receipt_grams(2))
    assert '"till-1-0001"' in json.dumps(purchase), "her export names the till's receipt id"
    assert purchase["detail"]["items"] == [{"gtin": world.gtin.zfill(14), "qty": 2, "credited_g": receipt_grams(2),
                                            "reason": None}]
    ride = claims[world.ids["alice"]["ride"]]
    assert ride["issuer"] == OPERATOR and '"gate-7"' in json.dumps(ride)
    trips = {t["claim_id"]: t for t in data["trips"]}
    assert set(trips) == {world.ids["alice"]["walk"], world.ids["alice"]["ride"]}
    assert (trips[world.ids["alice"]["ride"]]["mode"], trips[world.ids["alice"]["ride"]]["attested_by"]) == (
        "metro", OPERATOR)
    [redemption] = data["redemptions"]
    assert (redemption["id"], redemption["reward_id"], redemption["cost_g"]) == (
        world.ids["alice"]["redemption"], world.reward, 1000)
    assert flow.client.get("/v1/me/export", headers=world.alice).headers["cache-control"].startswith("private")


def test_the_export_holds_nothing_of_anyone_else(flow, world) -> None:
    text = json.dumps(export(flow, world.alice))
    bob = export(flow, world.bob)
    assert bob["sub"] == "bob"
    for value in [bob["account"]["id"], "till-1-0002", *world.ids["bob"].values(),
                  *(e["transfer_id"] for e in bob["entries"])]:
        assert value not in text, value
    assert '"bob"' not in text
    assert {e["id"] for e in bob["entries"]}.isdisjoint(e["id"] for e in export(flow, world.alice)["entries"])


def test_someone_new_exports_nothing(flow) -> None:
    data = export(flow, flow.consumer("carol"))
    assert data["sub"] == "carol"
    assert (data["entries"], data["claims"], data["trips"], data["redemptions"]) == ([], [], [], [])


@pytest.mark.parametrize("method", ["GET /v1/me/export", "DELETE /v1/me"])
def test_only_a_consumer_exports_or_erases_themselves(flow, method) -> None:
    verb, path = method.split()
    for role in ("merchant", "verifier", "officer", "admin"):
        assert flow.client.request(verb, path, headers=flow.auth(role, org="x", sub="alice")).status_code == 403
    assert flow.client.request(verb, path).status_code == 401


# --- erasure --------------------------------------------------------------------------------------


def _counts(account_id: str, sub: str):
    async def job(session: AsyncSession) -> dict[str, Any]:
        async def count(model, *where) -> int:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        account = await session.get(Account, account_id, populate_existing=True)
        assert account is not None
        details = (await session.scalars(select(Claim.detail).where(Claim.account_id == account_id))).all()
        return {
            "owner": account.owner, "erased": account.erased_at is not None, "balance_g": account.balance_g,
            "entries": await count(Entry, Entry.account_id == account_id),
            "entry_sum": int(await session.scalar(select(func.sum(Entry.amount_g))
                                                  .where(Entry.account_id == account_id)) or 0),
            "claims": await count(Claim, Claim.account_id == account_id),
            "details": [d for d in details if d is not None],
            "trips": await count(Trip, Trip.account_id == account_id),
            "redemptions": await count(Redemption, Redemption.account_id == account_id),
            "idempotency": await count(IdempotencyRecord, IdempotencyRecord.owner == sub),
            "forfeit": int(await session.scalar(select(func.sum(Entry.amount_g))
                                                .where(Entry.account_id == "forfeit")) or 0),
        }

    return job


def test_erasure_unlinks_the_ledger_and_deletes_the_personal_data(flow, world) -> None:
    alice_id, bob_id = account_of(flow, "alice"), account_of(flow, "bob")
    before = in_db(flow, _counts(alice_id, "alice"))
    assert (before["owner"], before["trips"], before["idempotency"]) == ("alice", 2, 3)
    assert before["details"], "the purchase's items are kept until erasure"
    bob_before = in_db(flow, _counts(bob_id, "bob"))
    bob_export = export(flow, world.bob)

    response = flow.client.delete("/v1/me", headers=world.alice)
    assert response.status_code == 204, response.text

    after = in_db(flow, _counts(alice_id, "alice"))
    # The entries stay (one more: the forfeit of the balance), on an account that is no one's.
    assert (after["owner"], after["erased"], after["balance_g"]) == (None, True, 0)
    assert after["entries"] == before["entries"] + 1 and after["entry_sum"] == 0
    assert after["forfeit"] == before["forfeit"] + world.alice_balance
    # The claims' natural keys stay, without what was bought; the trips and the retry records go.
    assert (after["claims"], after["details"], after["trips"], after["idempotency"]) == (3, [], 0, 0)
    assert ledger_problems(flow) == []

    # To the API she is someone new.
    data = export(flow, world.alice)
    assert (data["account"], data["entries"], data["claims"], data["trips"], data["redemptions"]) == (
        None, [], [], [], [])
    wallet = flow.wallet(world.alice)
    assert (wallet["balance_g"], wallet["earned_g"], wallet["redeemed_g"]) == (0, 0, 0)
    assert flow.ok(flow.client.get("/v1/wallet/entries", headers=world.alice))["items"] == []

    # Bob is untouched.
    assert in_db(flow, _counts(bob_id, "bob")) | {"forfeit": 0} == bob_before | {"forfeit": 0}
    assert export(flow, world.bob) | {"exported_at": None} == bob_export | {"exported_at": None}


def test_an_erased_persons_receipts_and_attestations_still_earn_once(flow, world) -> None:
    assert flow.client.delete("/v1/me", headers=world.alice).status_code == 204
    for headers in (world.alice, world.bob, flow.consumer("carol")):
        response = flow.claim(headers, world.alice_receipt)
        assert (response.status_code, reason(response)) == (409, "receipt_already_claimed"), response.text
    # Her old Idempotency-Key is forgotten, but the receipt is not.
    response = flow.claim(world.alice, world.alice_receipt, key="alice-p")
    assert (response.status_code, reason(response)) == (409, "receipt_already_claimed"), response.text
    # Her trips are gone, so nothing overlaps: the attestation itself is what was used.
    response = flow.trip(world.alice, world.alice_ride)
    assert (response.status_code, reason(response)) == (422, "attestation_reused"), response.text
    assert flow.wallet(world.alice)["balance_g"] == 0
    assert ledger_problems(flow) == []


def test_after_erasure_one_starts_afresh(flow, world) -> None:
    old = account_of(flow, "alice")
    assert flow.client.delete("/v1/me", headers=world.alice).status_code == 204
    out = flow.ok(flow.trip(world.alice, trip_body("walk", "2", 30, ago=timedelta(hours=1))), 201)
    assert out["balance_g"] == grams("walk", "2")
    data = export(flow, world.alice)
    assert data["account"]["id"] != old
    assert [c["claim_id"] for c in data["claims"]] == [out["claim_id"]]
    assert [t["claim_id"] for t in data["trips"]] == [out["claim_id"]]
    assert ledger_problems(flow) == []


def test_erasing_twice_or_with_nothing_to_erase_is_fine(flow, world) -> None:
    for _ in range(2):
        assert flow.client.delete("/v1/me", headers=world.alice).status_code == 204
    assert flow.client.delete("/v1/me", headers=flow.consumer("carol")).status_code == 204
    assert flow.wallet(world.alice)["balance_g"] == 0
    assert flow.wallet(world.bob)["balance_g"] == world.bob_balance
    assert ledger_problems(flow) == []


def test_erasure_with_an_empty_wallet_forfeits_nothing(flow) -> None:
    carol = flow.consumer("carol")
    out = flow.ok(flow.trip(carol, trip_body("metro", "10", 30)), 201)  # unattested: 0 g
    assert out["credited_g"] == 0
    carol_id = account_of(flow, "carol")
    assert flow.client.delete("/v1/me", headers=carol).status_code == 204
    after = in_db(flow, _counts(carol_id, "carol"))
    assert (after["owner"], after["entries"], after["forfeit"], after["trips"]) == (None, 0, 0, 0)
    assert ledger_problems(flow) == []


def test_the_export_times_are_utc(flow, world) -> None:
    data = export(flow, world.alice)
    for trip in data["trips"]:
        for key in ("started_at", "ended_at"):
            assert datetime.fromisoformat(trip[key]).utcoffset() == timedelta(0)
    assert abs(datetime.fromisoformat(data["exported_at"]) - datetime.now(UTC)) < timedelta(minutes=5)

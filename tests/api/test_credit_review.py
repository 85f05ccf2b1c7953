"""An adversarial review of the credits ledger (issue 5): each test shows one defect found in review.

The tests state what the contract (API.md, DESIGN.md, the issue) requires; where the code does not
yet do it they fail, and the review report names the cause and the fix. Run on SQLite and on
PostgreSQL + Redis (some defects only show on PostgreSQL, which refuses NUL and over-long text).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.credit_flow import OPERATOR, SHOP, CreditFlow, trip_body
from tests.api.test_credit_trips import CHINA, NOW, Clock, at, grams, in_db, ledger_problems

BASELINE = "5"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def flow(client, auth) -> CreditFlow:
    f = CreditFlow(client, auth)
    f.benchmark(["1", "2", "3", "4"], baseline=BASELINE, uncertainty_penalty="0")
    return f


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, NOW)


def assert_refused(response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:500])
    return response.json()


# --- 5xx from a consumer's (unsigned) input --------------------------------------------------------


@pytest.mark.parametrize("route", ["/v1/credits/purchases", "/v1/credits/trips"])
def test_a_nul_in_the_jws_kid_is_a_422_not_a_500(flow, clock, route) -> None:
    # Nobody signs this: any consumer can send it. peek() accepts any string kid, and the key lookup
    # sends it to PostgreSQL, which cannot hold U+0000 in text.
    token = ".".join([b64json({"alg": "EdDSA", "kid": "k\u0000id"}), b64json({"iss": SHOP}), b64url(b"\x00" * 64)])
    if route.endswith("purchases"):
        body: dict[str, Any] = {"receipt": token}
    else:
        body = {**at(NOW - timedelta(hours=3), "walk", "2"), "attestation": token}
    out = assert_refused(flow.client.post(route, json=body, headers=flow.consumer("alice")))
    assert out["reason"] in {"malformed_jws", "unknown_key"}


@pytest.mark.parametrize("distance", [
    "0." + "0" * 70 + "1",  # 73 characters written out: the column is VARCHAR(64)
    "1" + "0" * 9 + "." + "0" * 60 + "1",  # 10^9 km plus a hair: refused for length, but only after
    "1E-200000",  # written out in full (format "f") as 200 002 characters, in the row and the export
])
def test_a_trip_distance_with_absurd_precision_is_a_422(flow, clock, distance) -> None:
    body = trip_body("walk", distance, 30, start=NOW - timedelta(hours=3))
    response = flow.trip(flow.consumer("alice"), body)
    assert response.status_code == 422, (response.status_code, response.text[:300])
    assert ledger_problems(flow) == []


@pytest.mark.parametrize(("started", "ended"), [
    ("0001-01-01T00:00:00+01:00", "0001-01-01T00:30:00+01:00"),  # before 0001-01-01 in UTC
    ("9999-12-31T23:00:00-05:00", "9999-12-31T23:30:00-05:00"),  # after 9999-12-31 in UTC
])
def test_trip_times_at_the_ends_of_the_calendar_are_a_422(flow, clock, started, ended) -> None:
    body = {"mode": "walk", "distance_km": "2", "started_at": started, "ended_at": ended}
    out = assert_refused(flow.trip(flow.consumer("alice"), body))
    assert out["reason"] in {"invalid_trip_times", "trip_too_old", "trip_in_future"}


def test_a_credit_too_large_for_the_ledger_is_a_422_not_a_500(flow, clock) -> None:
    # declared_units_per_item is the merchant's own figure (up to 30 digits); the receipt multiplies
    # it by qty (up to 100 000) and 1000: far past BIGINT.
    clock.set(datetime.now(UTC).replace(microsecond=0))
    code = flow.labelled(1, "1", per_item="1" + "0" * 20)
    signer = flow.register()
    receipt = signer.receipt([{"gtin": code, "qty": 100_000}])
    response = flow.claim(flow.consumer("alice"), receipt)
    assert response.status_code < 500, response.text[:300]
    assert ledger_problems(flow) == []


# --- money ---------------------------------------------------------------------------------------


def test_an_unattested_bus_trip_does_not_forfeit_its_attested_claim(flow, clock) -> None:
    # The app sends the trip first without the operator's attestation (it earns 0, "attestation_required"),
    # then with it: the second is refused as overlapping the first, and the credit is lost for good.
    alice = flow.consumer("alice")
    body = at(NOW - timedelta(hours=3), "bus", "10")
    first = flow.ok(flow.trip(alice, body), 201)
    assert (first["credited_g"], first["reason"]) == (0, "attestation_required")
    signer = flow.register(headers=flow.operator, org=OPERATOR)
    attested = {**body, "attestation": signer.attestation("alice", body)}
    second = flow.trip(alice, attested)
    assert second.status_code == 201, second.text[:300]
    assert second.json()["credited_g"] == grams("bus", "10")


def test_a_claims_balance_leaves_out_lapsed_credits_as_the_wallet_does(flow, clock, settings) -> None:
    alice = flow.consumer("alice")
    old = flow.ok(flow.trip(alice, at(NOW - timedelta(hours=3), "walk", "2")), 201)["credited_g"]
    assert old == grams("walk", "2") > 0
    later = NOW + timedelta(days=31 * settings.credit_expiry_months + 1)  # the first credit has lapsed
    clock.set(later)
    out = flow.ok(flow.trip(alice, at(later - timedelta(hours=3), "walk", "1")), 201)
    wallet = flow.wallet(alice)
    assert wallet["balance_g"] == grams("walk", "1")  # the wallet already leaves the lapsed credit out
    assert out["balance_g"] == wallet["balance_g"], "the claim's balance_g counts credits that cannot pay"


def test_only_a_transit_operator_attests_trips(flow, clock) -> None:
    # Any merchant org (a shop) can register a key and attest metro trips for anyone: unlimited,
    # unreviewed issuance up to the daily caps for every consumer. Also a receipt key doubles as an
    # attestation key.
    shop = flow.register()  # the shop's point-of-sale key
    body = at(NOW - timedelta(hours=3), "metro", "20")
    body["attestation"] = shop.attestation("alice", body)
    response = flow.trip(flow.consumer("alice"), body)
    assert response.status_code == 422, f"a shop's attestation earned: {response.text[:200]}"


# --- idempotency ------------------------------------------------------------------------------------


def test_the_same_trip_retried_with_the_same_key_is_a_replay(flow, clock) -> None:
    # "12.5" and "12.50" are the same distance, and "+08:00" the same instant as "Z": the body hash
    # is of the decoded body, yet Decimal and datetime keep their spelling, so the retry is a 422.
    alice = flow.consumer("alice")
    body = at(NOW - timedelta(hours=3), "walk", "2.5")
    first = flow.ok(flow.trip(alice, body, key="trip-1"), 201)
    respelled = {**body, "distance_km": "2.50",
                 "started_at": datetime.fromisoformat(body["started_at"]).astimezone(CHINA).isoformat()}
    again = flow.trip(alice, respelled, key="trip-1")
    assert again.status_code == 201, again.text[:300]
    assert again.json() == first


def test_a_redemption_retried_after_the_idempotency_purge_is_not_paid_twice(flow, clock, settings) -> None:
    # `credits expire` forgets Idempotency-Key records after a week; a redemption has no natural key,
    # so the same retry redeems (and debits) again.
    alice = flow.consumer("alice")
    earned = flow.ok(flow.trip(alice, at(NOW - timedelta(hours=4), "walk", "5")), 201)["credited_g"]
    assert earned == grams("walk", "5") >= 200
    reward = flow.reward(cost=100, stock=5)
    flow.ok(flow.redeem(alice, reward, key="redeem-1"), 201)
    later = NOW + timedelta(days=8)
    clock.set(later)

    from carbonpuhui.credits.maintenance import purge_idempotency

    async def purge(_session) -> int:
        return await purge_idempotency(flow.client.app.state.db, later)

    in_db(flow, purge)
    again = flow.redeem(alice, reward, key="redeem-1")
    assert flow.wallet(alice)["balance_g"] == earned - 100, (again.status_code, again.text[:200])


# --- personal data -----------------------------------------------------------------------------------


def test_erasure_leaves_no_claim_of_the_person_linkable_by_receipt_time(flow, clock) -> None:
    # After DELETE /v1/me the claims keep jti, issuer and claimed_at: the merchant's till roll (jti ->
    # items, card) re-identifies the anonymised account and everything it did. Documented as
    # intended ("Receipts you claimed stay claimed"); flagged so that it is a decision, not an accident.
    clock.set(datetime.now(UTC).replace(microsecond=0))
    code = flow.labelled(1, "1")
    signer = flow.register()
    alice = flow.consumer("alice")
    flow.ok(flow.claim(alice, signer.receipt([{"gtin": code, "qty": 1}], jti="till-7-000123")), 201)
    assert flow.client.delete("/v1/me", headers=alice).status_code == 204

    from sqlalchemy import select

    from carbonpuhui.credits.models import Claim

    async def jtis(session) -> list[str]:
        return list(await session.scalars(select(Claim.jti)))

    assert "till-7-000123" not in in_db(flow, jtis)

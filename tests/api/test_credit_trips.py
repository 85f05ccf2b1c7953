"""Green trips (POST /v1/credits/trips): what a trip earns by the methodology, every refusal, daily
caps per China Standard Time day, attestations by transit operators, and no location kept.

Every figure comes from ``load_methodology()``; the clock is fixed (``carbonpuhui.credits.clock.now``)
so that ages, the future and CST days are exact.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.credits.signing import generate_private_jwk, sign, thumbprint
from carbonpuhui.credits.travel import load_methodology
from tests.api.credit_flow import OPERATOR, CreditFlow, Signer, public_part, trip_body

METHOD = load_methodology()
CHINA = ZoneInfo("Asia/Shanghai")  # China Standard Time, UTC+8 all year
# A Wednesday, 14:00 in Beijing: the clock of every test here.
NOW = datetime(2026, 11, 18, 6, 0, tzinfo=UTC)
T = TypeVar("T")


# --- helpers other credit tests share ------------------------------------------------------------


class Clock:
    """The credits' clock, set by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, at: datetime) -> None:
        self.at = at
        monkeypatch.setattr("carbonpuhui.credits.clock.now", lambda: self.at)

    def set(self, at: datetime) -> None:
        self.at = at


def in_db(flow: CreditFlow, job: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``job(session)`` in one transaction on the app's database, on the app's event loop."""
    async def run() -> T:
        async with flow.client.app.state.db.transaction() as session:
            return await job(session)

    with flow.client.portal() as portal:
        return portal.call(run)


def ledger_problems(flow: CreditFlow, now: datetime | None = None) -> list[str]:
    from carbonpuhui.credits.maintenance import check

    async def job(session: AsyncSession) -> list[str]:
        return (await check(session, now))[1]

    return in_db(flow, job)


def grams(mode: str, km: str | Decimal) -> int:
    """The oracle: floor(g_per_pkm × km), in exact fractions."""
    return math.floor(Fraction(METHOD.modes[mode].g_per_pkm) * Fraction(str(km)))


def minutes_for(mode: str, km: str | Decimal) -> float:
    """A duration at half the mode's speed limit, and no shorter than its minimum."""
    rules = METHOD.modes[mode]
    at_half_speed = Fraction(str(km)) / (Fraction(str(rules.max_avg_speed_kmh)) / 2) * 60
    return float(max(math.ceil(at_half_speed), math.ceil(rules.min_duration_s / 60) + 1))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def cst_midnight(day: date) -> datetime:
    """00:00 in Beijing on ``day``, in UTC (16:00 the day before)."""
    return datetime.combine(day, time(0), tzinfo=CHINA).astimezone(UTC)


def reason(response) -> str | None:
    return response.json().get("reason")


def export(flow: CreditFlow, headers: dict[str, str]) -> dict[str, Any]:
    return flow.ok(flow.client.get("/v1/me/export", headers=headers))


def operator(flow: CreditFlow) -> Signer:
    return flow.register(headers=flow.operator, org=OPERATOR)


# --- fixtures -------------------------------------------------------------------------------------


BUS_OPERATOR = "bus-op"


@pytest.fixture
def settings(settings):
    # A second transit operator besides the shared tests' metro operator.
    return msgspec.structs.replace(settings, transit_operators=settings.transit_operators | {BUS_OPERATOR})


@pytest.fixture
def flow(client, auth) -> CreditFlow:
    return CreditFlow(client, auth)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, NOW)


def at(start: datetime, mode: str, km: str, minutes: float | None = None, **extra: Any) -> dict[str, Any]:
    return trip_body(mode, km, minutes_for(mode, km) if minutes is None else minutes, start=start, **extra)


def two_hours_ago(mode: str = "walk", km: str = "2", minutes: float | None = None, **extra: Any) -> dict[str, Any]:
    """A trip that started two hours ago (earlier if it lasts longer than 110 minutes)."""
    minutes = minutes_for(mode, km) if minutes is None else minutes
    return at(min(NOW - timedelta(hours=2), NOW - timedelta(minutes=minutes + 10)), mode, km, minutes, **extra)


# --- what a trip earns ----------------------------------------------------------------------------

EARNS_UNATTESTED = sorted(m for m, r in METHOD.modes.items() if not r.attestation_required)


def test_the_methodology_asks_attestations_of_transit_only() -> None:
    # The API's contract: unattested bus, metro and rail trips earn nothing; walks and rides do.
    assert {m for m, r in METHOD.modes.items() if r.attestation_required} == {"bus", "metro", "rail"}
    assert EARNS_UNATTESTED == ["bike", "walk"]


def test_an_unattested_walk_or_ride_earns_g_per_pkm_times_km_rounded_down(flow, clock) -> None:
    for mode in EARNS_UNATTESTED:
        for km in ("2", "3.33", "0.77", "12.345"):
            someone = flow.consumer(f"{mode}-{km}")  # one person per trip: no caps, no overlaps
            out = flow.ok(flow.trip(someone, two_hours_ago(mode, km)), 201)
            expected = grams(mode, km)
            assert expected > 0
            assert set(out) >= {"claim_id", "credited_g", "capped", "methodology_version", "balance_g"}
            assert uuid.UUID(out["claim_id"])
            assert (out["credited_g"], out["capped"], out["balance_g"]) == (expected, False, expected), (mode, km)
            assert out["methodology_version"] == METHOD.version
            assert out.get("reason") is None
            assert flow.wallet(someone)["balance_g"] == expected


def test_trips_add_up_in_the_balance(flow, clock) -> None:
    alice = flow.consumer("alice")
    first = flow.ok(flow.trip(alice, at(NOW - timedelta(hours=5), "walk", "1.9")), 201)
    second = flow.ok(flow.trip(alice, at(NOW - timedelta(hours=2), "bike", "7.25")), 201)
    assert first["balance_g"] == grams("walk", "1.9")
    assert second["balance_g"] == grams("walk", "1.9") + grams("bike", "7.25")
    assert first["claim_id"] != second["claim_id"]
    assert flow.wallet(alice)["earned_g"] == second["balance_g"]


def test_unattested_transit_is_recorded_but_earns_nothing(flow, clock) -> None:
    for mode in ("bus", "metro", "rail"):
        someone = flow.consumer(f"rider-{mode}")
        out = flow.ok(flow.trip(someone, two_hours_ago(mode, "12.5")), 201)
        assert (out["credited_g"], out["capped"], out["balance_g"], out["reason"]) == (
            0, False, 0, "attestation_required"), mode
        assert out["methodology_version"] == METHOD.version
        wallet = flow.wallet(someone)
        assert (wallet["balance_g"], wallet["earned_g"]) == (0, 0)
        [trip] = export(flow, someone)["trips"]
        assert (trip["mode"], trip["credited_g"], trip["attested_by"]) == (mode, 0, None)
    assert ledger_problems(flow) == []


def test_a_trip_attested_by_an_operator_earns(flow, clock) -> None:
    signer = operator(flow)
    for mode in sorted(METHOD.modes):
        sub, km = f"rider-{mode}", "12.5" if METHOD.modes[mode].max_distance_km >= 13 else "1"
        body = two_hours_ago(mode, km)
        body["attestation"] = signer.attestation(sub, body, jti=f"gate-{mode}")
        someone = flow.consumer(sub)
        out = flow.ok(flow.trip(someone, body), 201)
        assert (out["credited_g"], out["capped"], out["balance_g"]) == (grams(mode, km), False, grams(mode, km)), mode
        assert out.get("reason") is None
        data = export(flow, someone)
        [trip] = data["trips"]
        assert (trip["attested_by"], trip["mode"], Decimal(trip["distance_km"])) == (OPERATOR, mode, Decimal(km))
        [claim] = data["claims"]
        assert (claim["claim_id"], claim["kind"], claim["issuer"]) == (out["claim_id"], "trip", OPERATOR)
        assert f'"gate-{mode}"' in json.dumps(claim), "her export names the operator's id of the ride"
    assert ledger_problems(flow) == []


def test_an_attestation_may_write_the_same_instants_in_beijing_time(flow, clock) -> None:
    signer = operator(flow)
    body = two_hours_ago("metro", "12.5")
    local = {**body, **{k: datetime.fromisoformat(body[k]).astimezone(CHINA).isoformat()
                        for k in ("started_at", "ended_at")}}
    assert local["started_at"].endswith("+08:00")
    body["attestation"] = signer.attestation("alice", local)
    out = flow.ok(flow.trip(flow.consumer("alice"), body), 201)
    assert out["credited_g"] == grams("metro", "12.5")


def test_a_metro_attestation_signed_with_an_ec_key_earns_too(flow, clock) -> None:
    signer = flow.register(headers=flow.operator, org=OPERATOR, kty="EC")
    body = two_hours_ago("metro", "20")
    body["attestation"] = signer.attestation("alice", body)
    assert flow.ok(flow.trip(flow.consumer("alice"), body), 201)["credited_g"] == grams("metro", "20")


# --- refusals -------------------------------------------------------------------------------------

WALK = METHOD.modes["walk"]


def _refusals() -> list[tuple[str, str, dict[str, Any]]]:
    start = NOW - timedelta(hours=3)
    over_speed = str(WALK.max_avg_speed_kmh + Decimal("0.1"))  # in exactly one hour
    return [
        ("implausible_speed", "a walk just over the speed limit", at(start, "walk", over_speed, 60)),
        ("implausible_speed", "a bike at twice its limit", at(start, "bike", str(METHOD.modes["bike"].max_avg_speed_kmh
                                                                                 * 2), 60)),
        ("trip_too_short", "a second under the minimum", at(start, "walk", "0.01", (WALK.min_duration_s - 1) / 60)),
        ("trip_too_long", "longer than the mode allows",
         at(start - timedelta(hours=20), "walk", str(WALK.max_distance_km + Decimal("0.1")), 20 * 60)),
        ("trip_too_long", "more than 24 hours", at(start - timedelta(hours=25), "walk", "1", 24 * 60 + 1)),
        ("invalid_trip_times", "ends when it starts", at(start, "walk", "1", 0)),
        ("invalid_trip_times", "ends before it starts", at(start, "walk", "1", -30)),
        ("invalid_trip_times", "no UTC offset", {**at(start, "walk", "1"), "started_at": "2026-11-18T03:00:00",
                                                 "ended_at": "2026-11-18T03:30:00"}),
        ("trip_in_future", "starts in an hour", at(NOW + timedelta(hours=1), "walk", "1")),
        ("trip_in_future", "ends in ten minutes", at(NOW - timedelta(minutes=20), "walk", "1", 30)),
        ("trip_too_old", "31 days ago", at(NOW - timedelta(days=31), "walk", "1")),
        ("distance_not_positive", "zero km", at(start, "walk", "0")),
        ("distance_not_positive", "negative km", at(start, "walk", "-2")),
    ]


def test_an_implausible_or_impossible_trip_is_refused_and_not_kept(flow, clock) -> None:
    alice = flow.consumer("alice")
    wrong = []
    for expected, case, body in _refusals():
        response = flow.trip(alice, body)
        got = (response.status_code, reason(response), bool(response.json().get("errors")))
        if got != (422, expected, True):  # a refusal names its reason and the field
            wrong.append((case, expected, got))
    assert wrong == []
    assert flow.wallet(alice)["balance_g"] == 0
    data = export(flow, alice)
    assert (data["trips"], data["claims"]) == ([], [])


def test_the_limits_themselves_are_accepted(flow, clock) -> None:
    alice = flow.consumer("alice")
    # Exactly the speed limit for an hour, the minimum duration, the longest walk, 30 days ago less a minute.
    cases = [
        at(NOW - timedelta(days=30) + timedelta(minutes=1), "walk", "1"),
        at(NOW - timedelta(hours=20), "walk", str(WALK.max_avg_speed_kmh), 60),
        at(NOW - timedelta(hours=18), "walk", "0.05", WALK.min_duration_s / 60),
        at(NOW - timedelta(hours=17), "walk", str(WALK.max_distance_km), 6 * 60),
        at(NOW - timedelta(minutes=30), "walk", "1", 34),  # ends 4 minutes ahead: phone clocks drift
    ]
    for body in cases:
        assert flow.trip(alice, body).status_code == 201, body
    assert len(export(flow, alice)["trips"]) == len(cases)


def test_no_location_is_accepted(flow, clock) -> None:
    alice = flow.consumer("alice")
    for extra in ({"latitude": 22.54, "longitude": 114.06}, {"route": [[22.54, 114.06]]},
                  {"start_location": {"lat": 22.5, "lon": 114.0}}, {"trace": "u4pruyd"}):
        response = flow.trip(alice, {**two_hours_ago(), **extra})
        assert response.status_code == 422, (extra, response.text)
    assert export(flow, alice)["trips"] == []


def test_a_trip_keeps_only_mode_distance_times_and_the_outcome(flow, clock) -> None:
    from carbonpuhui.credits.models import Trip

    alice = flow.consumer("alice")
    body = two_hours_ago("bike", "7.5")
    out = flow.ok(flow.trip(alice, body), 201)
    [trip] = export(flow, alice)["trips"]
    assert set(trip) <= {"claim_id", "mode", "distance_km", "started_at", "ended_at", "attested_by", "credited_g",
                         "capped", "methodology_version"}
    assert (trip["claim_id"], trip["mode"], trip["distance_km"]) == (out["claim_id"], "bike", "7.5")
    assert datetime.fromisoformat(trip["started_at"]) == datetime.fromisoformat(body["started_at"])
    assert datetime.fromisoformat(trip["ended_at"]) == datetime.fromisoformat(body["ended_at"])
    # Nor can the table hold more: no column for a place finer than DESIGN.md's "coarse area"
    # (the CST day is derived from started_at).
    columns = {c.name for c in Trip.__table__.columns}
    core = {"claim_id", "account_id", "mode", "distance_km", "started_at", "ended_at", "day", "attested_by",
            "credited_g", "capped", "methodology_version"}
    assert core <= columns <= core | {"area"}


# --- overlaps -------------------------------------------------------------------------------------


def test_a_trip_overlapping_another_of_the_same_person_is_refused(flow, clock) -> None:
    alice, bob = flow.consumer("alice"), flow.consumer("bob")
    start = NOW - timedelta(hours=4)
    first = flow.ok(flow.trip(alice, at(start, "walk", "3", 60)), 201)
    for overlapping in (at(start + timedelta(minutes=30), "bike", "5", 60),  # starts during it
                        at(start - timedelta(minutes=30), "walk", "2", 31),  # ends a minute into it
                        at(start + timedelta(minutes=10), "walk", "1", 20),  # inside it
                        at(start - timedelta(minutes=10), "bike", "20", 90)):  # around it
        response = flow.trip(alice, overlapping)
        assert (response.status_code, reason(response)) == (422, "trip_overlap"), response.text
    # The same instants written in Beijing time overlap just as much.
    local = {"mode": "walk", "distance_km": "1", "started_at": (start + timedelta(minutes=5)).astimezone(CHINA)
             .isoformat(), "ended_at": (start + timedelta(minutes=25)).astimezone(CHINA).isoformat()}
    response = flow.trip(alice, local)
    assert (response.status_code, reason(response)) == (422, "trip_overlap"), response.text
    # Back to back is not an overlap; nor is another person's trip at the very same time.
    flow.ok(flow.trip(alice, at(start + timedelta(minutes=60), "walk", "1", 20)), 201)
    flow.ok(flow.trip(alice, at(start - timedelta(minutes=20), "walk", "1", 20)), 201)
    assert flow.ok(flow.trip(bob, at(start, "walk", "3", 60)), 201)["credited_g"] == grams("walk", "3")
    assert flow.wallet(alice)["balance_g"] == first["credited_g"] + 2 * grams("walk", "1")


def test_an_unattested_ride_does_not_block_the_same_ride_attested(flow, clock) -> None:
    signer = operator(flow)
    alice = flow.consumer("alice")
    ride = at(NOW - timedelta(hours=4), "metro", "10", 30)
    assert flow.ok(flow.trip(alice, ride), 201)["reason"] == "attestation_required"
    attested = {**ride, "attestation": signer.attestation("alice", ride)}
    assert flow.ok(flow.trip(alice, attested), 201)["credited_g"] == grams("metro", "10")
    # Now the attested ride is hers: nothing else fits in that half hour, attested or not.
    for body in (ride, at(NOW - timedelta(hours=4), "walk", "2", 30)):
        response = flow.trip(alice, body)
        assert (response.status_code, reason(response)) == (422, "trip_overlap"), response.text
    assert flow.wallet(alice)["balance_g"] == grams("metro", "10")


# --- attestations ---------------------------------------------------------------------------------


def test_an_attestation_id_earns_once(flow, clock) -> None:
    signer = operator(flow)
    alice = flow.consumer("alice")
    first = two_hours_ago("metro", "10")
    first["attestation"] = signer.attestation("alice", first, jti="ride-1")
    paid = flow.ok(flow.trip(alice, first), 201)["credited_g"]
    # The operator's id on another ride of hers: reused.
    later = at(NOW - timedelta(minutes=50), "metro", "8", 20)
    later["attestation"] = signer.attestation("alice", later, jti="ride-1")
    response = flow.trip(alice, later)
    assert (response.status_code, reason(response)) == (422, "attestation_reused"), response.text
    assert flow.wallet(alice)["balance_g"] == paid
    assert len(export(flow, alice)["trips"]) == 1


def test_the_same_attestation_twice_is_reused(flow, clock) -> None:
    # A client retrying without an Idempotency-Key must learn that the attestation was used, not
    # that the trip "overlaps" itself.
    signer = operator(flow)
    alice = flow.consumer("alice")
    ride = two_hours_ago("metro", "10")
    ride["attestation"] = signer.attestation("alice", ride)
    paid = flow.ok(flow.trip(alice, ride), 201)["credited_g"]
    again = flow.trip(alice, ride)
    assert (again.status_code, reason(again)) == (422, "attestation_reused"), again.text
    assert flow.wallet(alice)["balance_g"] == paid


def test_another_operator_may_use_the_same_attestation_id(flow, clock) -> None:
    metro = operator(flow)
    bus = flow.register(headers=flow.auth("merchant", org=BUS_OPERATOR, sub="boris"), org=BUS_OPERATOR)
    alice = flow.consumer("alice")
    ride = two_hours_ago("metro", "10")
    ride["attestation"] = metro.attestation("alice", ride, jti="42")
    flow.ok(flow.trip(alice, ride), 201)
    other = at(NOW - timedelta(minutes=50), "bus", "8", 30)
    other["attestation"] = bus.attestation("alice", other, jti="42")
    assert flow.ok(flow.trip(alice, other), 201)["credited_g"] == grams("bus", "8")


def test_someone_elses_attestation_is_refused(flow, clock) -> None:
    signer = operator(flow)
    body = two_hours_ago("metro", "10")
    body["attestation"] = signer.attestation("bob", body)
    response = flow.trip(flow.consumer("alice"), body)
    assert (response.status_code, reason(response)) == (422, "attestation_subject_mismatch")
    # Bob may still use it: a refusal claims nothing.
    assert flow.ok(flow.trip(flow.consumer("bob"), body), 201)["credited_g"] == grams("metro", "10")


def test_an_attestation_of_another_trip_is_refused(flow, clock) -> None:
    signer = operator(flow)
    attested = two_hours_ago("metro", "10", minutes=30)
    token = signer.attestation("alice", attested)
    for change in ({"distance_km": "10.1"}, {"mode": "bus"}, {"ended_at": iso(NOW - timedelta(minutes=60))},
                   {"started_at": iso(NOW - timedelta(minutes=121))}):
        response = flow.trip(flow.consumer("alice"), {**attested, **change, "attestation": token})
        assert (response.status_code, reason(response)) == (422, "attestation_mismatch"), (change, response.text)
    assert flow.wallet(flow.consumer("alice"))["balance_g"] == 0


def test_the_same_distance_written_otherwise_matches(flow, clock) -> None:
    signer = operator(flow)
    attested = two_hours_ago("metro", "10.50")
    claimed = {**attested, "distance_km": "10.5", "attestation": signer.attestation("alice", attested)}
    assert flow.ok(flow.trip(flow.consumer("alice"), claimed), 201)["credited_g"] == grams("metro", "10.5")


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


JWS_CASES = ["changed_after_signing", "signed_by_another_key", "unregistered_key", "revoked_key", "another_issuer",
             "not_a_jws", "two_parts", "alg_none", "alg_hs256", "claims_missing", "a_shop_not_an_operator"]
JWS_REASONS = {"changed_after_signing": "bad_signature", "signed_by_another_key": "bad_signature",
               "unregistered_key": "unknown_key", "revoked_key": "key_revoked", "another_issuer": "issuer_mismatch",
               "not_a_jws": "malformed_jws", "two_parts": "malformed_jws", "alg_none": "unsupported_algorithm",
               "alg_hs256": "unsupported_algorithm", "claims_missing": "invalid_attestation",
               "a_shop_not_an_operator": "not_a_transit_operator"}


def _forged(flow: CreditFlow, case: str, body: dict[str, Any]) -> str:
    signer = operator(flow)
    header, payload, signature = signer.attestation("alice", body).split(".")
    stranger = generate_private_jwk("OKP")
    if case == "changed_after_signing":  # a longer trip under the signature of the real one
        longer = {"iss": OPERATOR, "jti": "x", "sub": "alice", "mode": "metro", "distance_km": "30",
                  "started_at": body["started_at"], "ended_at": body["ended_at"]}
        return f"{header}.{_b64(longer)}.{signature}"
    if case == "signed_by_another_key":  # the operator's kid, someone else's private key
        return Signer(OPERATOR, stranger, signer.kid).attestation("alice", body)
    if case == "unregistered_key":
        return Signer(OPERATOR, stranger, thumbprint(public_part(stranger))).attestation("alice", body)
    if case == "revoked_key":
        revoked = flow.register(headers=flow.operator, org=OPERATOR)
        assert flow.client.delete(f"/v1/merchant/receipt-keys/{revoked.kid}", headers=flow.operator).status_code == 204
        return revoked.attestation("alice", body)
    if case == "another_issuer":  # a real signature, but it claims to speak for another organisation
        return signer.attestation("alice", body, iss="shop")
    if case == "not_a_jws":
        return "not-a-jws"
    if case == "two_parts":
        return f"{header}.{payload}"
    if case == "alg_none":
        return f"{_b64({'alg': 'none', 'kid': signer.kid})}.{payload}."
    if case == "alg_hs256":
        return f"{_b64({'alg': 'HS256', 'kid': signer.kid})}.{payload}.{signature}"
    if case == "a_shop_not_an_operator":  # a registered key, but of an organisation that runs no transit
        return flow.register().attestation("alice", body)
    assert case == "claims_missing"
    return sign({"iss": OPERATOR, "jti": "y", "mode": "metro"}, signer.private_jwk, signer.kid)


def test_an_attestation_that_does_not_verify_is_refused(flow, clock) -> None:
    alice = flow.consumer("alice")
    body = two_hours_ago("metro", "10", minutes=30)
    wrong = []
    for case in JWS_CASES:
        response = flow.trip(alice, {**body, "attestation": _forged(flow, case, body)})
        if (response.status_code, reason(response)) != (422, JWS_REASONS[case]):
            wrong.append((case, JWS_REASONS[case], response.status_code, reason(response)))
    assert wrong == []
    assert flow.wallet(alice)["balance_g"] == 0
    assert export(flow, alice)["trips"] == []


# --- daily caps -----------------------------------------------------------------------------------


def _km_for_a_share(mode: str, cap: int) -> str:
    """A distance earning about cap / 3.5 grams, where the cap is no multiple of the trip."""
    rules = METHOD.modes[mode]
    km = Decimal(cap) / Decimal(rules.g_per_pkm) / Decimal("3.5")
    km = min(km, rules.max_distance_km).quantize(Decimal("0.1"))
    while cap % grams(mode, km) == 0:
        km += Decimal("0.1")
    return str(km)


def fill(flow: CreditFlow, headers: dict[str, str], mode: str, start: datetime, room: int,
         signer: Signer | None = None, sub: str = "alice") -> tuple[datetime, list[dict[str, Any]]]:
    """Trips of ``mode`` one after another from ``start`` until one is cut short. Checks each against
    the cap model: a trip earns its grams while ``room`` (what the tighter cap leaves) allows, the one
    crossing it earns the rest. Returns when the next trip may start, and the responses."""
    km = _km_for_a_share(mode, room)
    worth, minutes = grams(mode, km), minutes_for(mode, km)
    outs: list[dict[str, Any]] = []
    left = room
    while left > 0:
        body = at(start, mode, km, minutes)
        if signer is not None:
            body["attestation"] = signer.attestation(sub, body)
        out = flow.ok(flow.trip(headers, body), 201)
        assert out["credited_g"] == min(worth, left), (out, left)
        assert out["capped"] is (worth > left)
        assert out.get("reason") is None
        outs.append(out)
        left -= out["credited_g"]
        start += timedelta(minutes=minutes + 5)
    assert outs[-1]["capped"] and 0 < outs[-1]["credited_g"] < worth, "the last trip crossed the cap"
    return start, outs


def test_a_modes_daily_cap_credits_up_to_it_then_nothing(flow, clock) -> None:
    alice = flow.consumer("alice")
    day = (NOW - timedelta(days=3)).astimezone(CHINA).date()
    walk_cap = METHOD.modes["walk"].daily_cap_g
    assert walk_cap < METHOD.daily_cap_g
    start, outs = fill(flow, alice, "walk", cst_midnight(day) + timedelta(hours=1), walk_cap)
    assert outs[-1]["balance_g"] == walk_cap
    after = flow.ok(flow.trip(alice, at(start, "walk", "2")), 201)
    assert (after["credited_g"], after["capped"], after["reason"]) == (0, True, "daily_cap_reached")
    assert after["balance_g"] == walk_cap
    # Another mode's cap is its own: a ride the same day still earns in full.
    ride = flow.ok(flow.trip(alice, at(start + timedelta(hours=1), "bike", "5")), 201)
    assert (ride["credited_g"], ride["capped"]) == (grams("bike", "5"), False)
    # So does a walk the next day, and someone else's walk on the capped day.
    flow.ok(flow.trip(alice, at(cst_midnight(day + timedelta(days=1)) + timedelta(hours=8), "walk", "2")), 201)
    bob = flow.ok(flow.trip(flow.consumer("bob"), at(start, "walk", "2")), 201)
    assert (bob["credited_g"], bob["capped"]) == (grams("walk", "2"), False)
    assert flow.wallet(alice)["balance_g"] == walk_cap + grams("bike", "5") + grams("walk", "2")
    assert ledger_problems(flow) == []


def test_the_daily_cap_over_all_modes_credits_up_to_it_then_nothing(flow, clock) -> None:
    alice = flow.consumer("alice")
    signer = operator(flow)
    day = (NOW - timedelta(days=2)).astimezone(CHINA).date()
    walk_cap = METHOD.modes["walk"].daily_cap_g
    rest = METHOD.daily_cap_g - walk_cap
    # A mode whose own cap is above what the day leaves, so that the overall cap is what bites.
    wide = [m for m, r in METHOD.modes.items() if m != "walk" and r.daily_cap_g > rest]
    assert wide, "the methodology has no mode whose cap exceeds the day's remainder"
    mode = wide[0]
    start, _ = fill(flow, alice, "walk", cst_midnight(day) + timedelta(hours=1), walk_cap)
    start, outs = fill(flow, alice, mode, start, rest,
                       signer=signer if METHOD.modes[mode].attestation_required else None)
    assert outs[-1]["balance_g"] == METHOD.daily_cap_g
    for other in sorted(METHOD.modes):
        if other == "walk" or (METHOD.modes[other].attestation_required and other != mode):
            continue
        body = at(start, other, "3")
        if METHOD.modes[other].attestation_required:
            body["attestation"] = signer.attestation("alice", body)
        out = flow.ok(flow.trip(alice, body), 201)
        assert (out["credited_g"], out["capped"], out["reason"]) == (0, True, "daily_cap_reached"), other
        start += timedelta(hours=1)
    assert flow.wallet(alice)["balance_g"] == METHOD.daily_cap_g
    assert ledger_problems(flow) == []


def test_caps_count_per_china_standard_time_day(flow, clock) -> None:
    alice = flow.consumer("alice")
    day = (NOW - timedelta(days=3)).astimezone(CHINA).date()
    walk_cap = METHOD.modes["walk"].daily_cap_g
    # From 01:00 Beijing time (17:00 UTC the day before): the whole cap of the CST day `day`.
    fill(flow, alice, "walk", cst_midnight(day) + timedelta(hours=1), walk_cap)
    # 15:59 UTC is 23:59 in Beijing: the same, capped, day (its UTC date is a new day, not its CST date).
    late = datetime.combine(day, time(15, 59), tzinfo=UTC)
    assert late.astimezone(CHINA).date() == day
    out = flow.ok(flow.trip(alice, at(late, "walk", "0.15", 1.5)), 201)
    assert (out["credited_g"], out["reason"]) == (0, "daily_cap_reached")
    # 16:01 UTC is 00:01 the next day in Beijing: a fresh cap.
    early = datetime.combine(day, time(16, 1), tzinfo=UTC)
    assert early.astimezone(CHINA).date() == day + timedelta(days=1)
    out = flow.ok(flow.trip(alice, at(early, "walk", "3")), 201)
    assert (out["credited_g"], out["capped"]) == (grams("walk", "3"), False)
    assert out["balance_g"] == walk_cap + grams("walk", "3")


def test_a_trip_counts_on_the_day_it_started(flow, clock) -> None:
    # Started 23:30 in Beijing on a capped day, ended after midnight: still that day's.
    alice = flow.consumer("alice")
    day = (NOW - timedelta(days=4)).astimezone(CHINA).date()
    fill(flow, alice, "walk", cst_midnight(day) + timedelta(hours=1), METHOD.modes["walk"].daily_cap_g)
    out = flow.ok(flow.trip(alice, at(cst_midnight(day + timedelta(days=1)) - timedelta(minutes=30), "walk", "5",
                                      60)), 201)
    assert (out["credited_g"], out["reason"]) == (0, "daily_cap_reached")


# --- retries --------------------------------------------------------------------------------------


def test_a_retried_trip_returns_the_first_result(flow, clock) -> None:
    alice = flow.consumer("alice")
    body = two_hours_ago("walk", "4")
    first = flow.trip(alice, body, key="trip-1")
    again = flow.trip(alice, body, key="trip-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert flow.wallet(alice)["balance_g"] == grams("walk", "4")
    other = flow.trip(alice, two_hours_ago("walk", "5"), key="trip-1")
    assert (other.status_code, reason(other)) == (422, "idempotency_key_reused")


def test_only_consumers_claim_trips(flow, clock) -> None:
    assert flow.trip(flow.shop, two_hours_ago()).status_code == 403
    assert flow.client.post("/v1/credits/trips", json=two_hours_ago()).status_code == 401


def test_hostile_distances_are_refused_not_crashed(flow, clock) -> None:
    alice = flow.consumer("alice")
    wrong = []
    for km in ("NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "1e999999", "1e-999999", "0e5", "1" * 400, 1e308,
               True, None, "", "2,5", "0x10", [2], {"km": 2}):
        response = flow.trip(alice, {**two_hours_ago(), "distance_km": km})
        if response.status_code not in (400, 422):
            wrong.append((km, response.status_code))
    assert wrong == []
    assert export(flow, alice)["trips"] == []

"""Purchase claims over HTTP: what each item earns, why items earn nothing, a receipt earning once,
every 422 refusal of a receipt, and the Idempotency-Key on the credit-moving POSTs.

Oracles: credited grams computed here with Fractions from the numbers the test chose (the
benchmark's baseline, the label's kgCO2e, the product's declared units per item); tokens forged by
hand (base64url + json + hmac) for the refusals; the wallet as a second view of the balance.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import text

from carbonpuhui.credits.signing import generate_private_jwk, sign, thumbprint
from carbonpuhui.db.engine import create_engine
from tests.api.credit_flow import SHOP, CreditFlow, Signer, public_part, trip_body
from tests.api.label_flow import CATEGORY, gtin

PURCHASES = "/v1/credits/purchases"
BASELINE = "5"  # kgCO2e per kilogram, the steel category's benchmark baseline
TONNE_CATEGORY = "steel.wire_rod"
TONNE_BASELINE = "3100.5"  # kgCO2e per tonne
KG_PER_TONNE = 1000
CJK = range(0x4E00, 0xA000)


@pytest.fixture
def flow(client, auth) -> CreditFlow:
    f = CreditFlow(client, auth)
    f.benchmark(["1", "2", "3", "4"], baseline=BASELINE, uncertainty_penalty="0")
    return f


@pytest.fixture
def signer(flow: CreditFlow) -> Signer:
    return flow.register()


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Sets the credits' clock (whole seconds, so that iat arithmetic is exact)."""

    def set_to(moment: datetime) -> None:
        monkeypatch.setattr("carbonpuhui.credits.clock.now", lambda: moment)

    return set_to


def whole_second_now() -> datetime:
    return datetime.fromtimestamp(int(time.time()), UTC)


def expected_grams(baseline: str, label: str, per_item: str, qty: int, *, kg_per_bench_unit: int = 1) -> int:
    """max(0, baseline - label) x declared units per item x qty, kg -> g, rounded down."""
    avoided = Fraction(baseline) / kg_per_bench_unit - Fraction(label)
    return max(0, math.floor(avoided * Fraction(per_item) * qty * 1000))


def reason(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()["reason"]


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def claims_for(signer: Signer, items: list[dict[str, Any]] | None = None, **over: Any) -> dict[str, Any]:
    claims = {"iss": signer.org, "jti": uuid.uuid4().hex, "iat": int(time.time()),
              "items": items if items is not None else [{"gtin": gtin(900), "qty": 1}]}
    claims.update(over)
    return claims


def wallet_balance(flow: CreditFlow, headers: dict[str, str]) -> int:
    return flow.wallet(headers)["balance_g"]


def entry_count(flow: CreditFlow, headers: dict[str, str]) -> int:
    return len(flow.ok(flow.client.get("/v1/wallet/entries", params={"limit": 500}, headers=headers))["items"])


def label_of(flow: CreditFlow, code: str) -> dict[str, Any]:
    label = flow.public(code)["label"]
    assert label is not None
    return label


def delete_benchmark(url: str, category: str) -> None:
    async def run() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM benchmarks WHERE category = :c"), {"c": category})
        finally:
            await engine.dispose()

    asyncio.run(run())


# --- what items earn ----------------------------------------------------------------------------

def test_each_item_earns_baseline_less_label_times_units_times_qty_rounded_down(flow: CreditFlow,
                                                                                signer: Signer) -> None:
    flow.benchmark(["1000", "2000", "3000", "4000"], baseline=TONNE_BASELINE, uncertainty_penalty="0",
                   category=TONNE_CATEGORY, declared_unit="tonne")
    # (label kgCO2e/kg, kg per item, qty, benchmark): chosen so that floor, the fractional per_item,
    # decimal (not binary) arithmetic and the tonne -> kilogram conversion each matter.
    cases = [
        ("1.25", "1", 3, "kg"),  # 3750 g an item, exact
        ("2.1", "0.333", 7, "kg"),  # 965.7 g an item: 6759.9 -> 6759 (not 6755, not 6760)
        ("4.9", "3", 1, "kg"),  # 0.1 x 3 x 1000 = 300 exactly; binary floats give 299.99...
        ("1.7777", "0.37", 3, "t"),  # (3.1005 - 1.7777) x 0.37 x 3 kg: 1468.308 -> 1468
        ("0.0001", "0.001", 1, "t"),  # 3.1004 g for 1 g of product: 3
    ]
    items, codes = [], []
    for n, (label, per_item, qty, bench) in enumerate(cases, start=1):
        code = flow.labelled(n, label, per_item=per_item, category=CATEGORY if bench == "kg" else TONNE_CATEGORY)
        assert Fraction(label_of(flow, code)["kgco2e_per_unit"]) == Fraction(label)  # zero penalty: exact
        codes.append(code)
        items.append({"gtin": code, "qty": qty})
    expected = [expected_grams(TONNE_BASELINE if bench == "t" else BASELINE, label, per_item, qty,
                               kg_per_bench_unit=KG_PER_TONNE if bench == "t" else 1)
                for label, per_item, qty, bench in cases]
    assert expected == [11250, 6759, 300, 1468, 3]  # the oracle's arithmetic, spelled out once
    person = flow.consumer("pat")
    out = flow.ok(flow.claim(person, signer.receipt(items)), 201)
    assert [(i["gtin"], i["qty"], i["credited_g"], i["reason"]) for i in out["items"]] == [
        ("0" + code, item["qty"], grams, None) for code, item, grams in zip(codes, items, expected, strict=True)]
    assert out["credited_g"] == sum(expected)
    assert out["balance_g"] == sum(expected) == wallet_balance(flow, person)
    assert isinstance(out["claim_id"], str) and out["claim_id"]


def test_items_that_earn_nothing_say_why(flow: CreditFlow, signer: Signer, settings) -> None:
    earning = flow.labelled(1, "3", per_item="2")
    no_label = flow.product(2, "1")
    self_declared = flow.labelled(3, "1", verified=False)
    revoked = flow.labelled(4, "1")
    label = label_of(flow, revoked)
    flow.ok(flow.client.post(f"/v1/labels/{label['id']}/revoke", json={"reason": "audit failed"},
                             headers=flow.verifier))
    above = flow.labelled(5, "6")
    at_baseline = flow.labelled(6, BASELINE)
    tiny = flow.labelled(7, "4.9999", per_item="0.001")  # 0.0001 g an item
    orphan_category = "steel.rebar"
    flow.benchmark(["1", "2", "3", "4"], baseline="9", uncertainty_penalty="0", category=orphan_category)
    orphan = flow.labelled(8, "1", category=orphan_category)
    delete_benchmark(settings.effective_database_url, orphan_category)  # no API removes one
    items = [
        (earning, 2, expected_grams(BASELINE, "3", "2", 2), None),
        (gtin(777), 1, 0, "unknown_product"),  # a valid GTIN nobody registered
        ("6901234567890", 1, 0, "unknown_product"),  # a wrong check digit
        ("not-a-gtin", 1, 0, "unknown_product"),
        (no_label, 1, 0, "no_label"),
        (self_declared, 1, 0, "label_not_verified"),
        (revoked, 1, 0, "label_not_in_force"),
        (orphan, 1, 0, "no_benchmark"),
        (above, 1, 0, "not_below_baseline"),
        (at_baseline, 1, 0, "not_below_baseline"),
        (tiny, 3, 0, "credited_below_one_gram"),
    ]
    person = flow.consumer("pat")
    out = flow.ok(flow.claim(person, signer.receipt([{"gtin": g, "qty": q} for g, q, _, _ in items])), 201)
    got = [(i["qty"], i["credited_g"], i["reason"]) for i in out["items"]]
    assert got == [(q, grams, why) for _, q, grams, why in items]
    assert out["items"][0]["gtin"] == "0" + earning
    assert out["credited_g"] == items[0][2] == 8000  # 2 kg avoided x 2 kg x 2
    assert out["balance_g"] == 8000 == wallet_balance(flow, person)


def test_a_receipt_earning_nothing_is_still_claimed_once(flow: CreditFlow, signer: Signer) -> None:
    person = flow.consumer("pat")
    receipt = signer.receipt([{"gtin": gtin(777), "qty": 1}])
    out = flow.ok(flow.claim(person, receipt), 201)
    assert (out["credited_g"], out["balance_g"]) == (0, 0)
    again = flow.claim(flow.consumer("quinn"), receipt)
    assert reason(again, 409) == "receipt_already_claimed"
    assert again.json()["claim_id"] == out["claim_id"]
    assert wallet_balance(flow, person) == 0


def test_an_expired_label_earns_nothing(flow: CreditFlow, signer: Signer, fixed_now) -> None:
    code = flow.labelled(1, "1")
    valid_until = datetime.fromisoformat(label_of(flow, code)["valid_until"]).replace(tzinfo=UTC)
    later = valid_until + timedelta(days=2)
    fixed_now(later)
    person = flow.consumer("pat")
    out = flow.ok(flow.claim(person, signer.receipt([{"gtin": code, "qty": 1}], iat=later.timestamp())), 201)
    assert [(i["credited_g"], i["reason"]) for i in out["items"]] == [(0, "label_not_in_force")]


def test_balance_in_the_response_is_the_wallets_across_claims(flow: CreditFlow, signer: Signer) -> None:
    code = flow.labelled(1, "4.5", per_item="0.7")  # 350 g an item
    per_item = expected_grams(BASELINE, "4.5", "0.7", 1)
    person, other = flow.consumer("pat"), flow.consumer("quinn")
    total = 0
    for qty in (1, 2, 5):
        out = flow.ok(flow.claim(person, signer.receipt([{"gtin": code, "qty": qty}])), 201)
        total += per_item * qty
        assert (out["credited_g"], out["balance_g"]) == (per_item * qty, total)
        assert wallet_balance(flow, person) == total
    out = flow.ok(flow.claim(other, signer.receipt([{"gtin": code, "qty": 1}])), 201)
    assert out["balance_g"] == per_item == wallet_balance(flow, other)
    assert wallet_balance(flow, person) == total


# --- a receipt earns once, ever -----------------------------------------------------------------

def test_a_receipt_claimed_again_by_anyone_is_a_409_naming_the_first_claim(flow: CreditFlow, signer: Signer) -> None:
    code = flow.labelled(1, "2")
    receipt = signer.receipt([{"gtin": code, "qty": 1}])
    person, other = flow.consumer("pat"), flow.consumer("quinn")
    first = flow.ok(flow.claim(person, receipt), 201)
    for who in (person, other):
        again = flow.claim(who, receipt)
        assert reason(again, 409) == "receipt_already_claimed"
        assert again.json()["claim_id"] == first["claim_id"]
        assert again.json()["status"] == 409
    assert wallet_balance(flow, person) == first["credited_g"] == 3000
    assert wallet_balance(flow, other) == 0


def test_the_receipt_is_its_merchant_and_jti_not_its_bytes(flow: CreditFlow, signer: Signer) -> None:
    """Re-signed with other items or another key of the same merchant, the same jti is the same
    receipt; the same jti from another merchant is another receipt."""
    code = flow.labelled(1, "2")
    person = flow.consumer("pat")
    first = flow.ok(flow.claim(person, signer.receipt([{"gtin": code, "qty": 1}], jti="R-1")), 201)
    second_key = flow.register()
    for token in (signer.receipt([{"gtin": code, "qty": 9}], jti="R-1"),
                  second_key.receipt([{"gtin": code, "qty": 1}], jti="R-1")):
        again = flow.claim(person, token)
        assert reason(again, 409) == "receipt_already_claimed"
        assert again.json()["claim_id"] == first["claim_id"]
    rival = flow.register(flow.rival, org="rival")
    other = flow.ok(flow.claim(person, rival.receipt([{"gtin": code, "qty": 1}], jti="R-1")), 201)
    assert other["claim_id"] != first["claim_id"]
    assert wallet_balance(flow, person) == 6000


def test_a_conflict_is_a_localised_problem(flow: CreditFlow, signer: Signer) -> None:
    receipt = signer.receipt([{"gtin": gtin(777), "qty": 1}])
    person = flow.consumer("pat")
    flow.ok(flow.claim(person, receipt), 201)
    en = flow.client.post(PURCHASES, json={"receipt": receipt}, headers={**person, "Accept-Language": "en"})
    hant = flow.client.post(PURCHASES, json={"receipt": receipt}, headers={**person, "Accept-Language": "zh-Hant"})
    assert reason(en, 409) == reason(hant, 409) == "receipt_already_claimed"
    assert en.json()["detail"] == "This receipt was already claimed."
    assert en.json()["title"] != hant.json()["title"]
    assert en.json()["detail"] != hant.json()["detail"]
    assert any(ord(c) in CJK for c in hant.json()["detail"])


# --- refusals (422) -----------------------------------------------------------------------------

def _hs256(signer: Signer) -> str:
    """HMAC keyed with the registered public key (as JSON): the algorithm-confusion forgery."""
    public = json.dumps(public_part(signer.private_jwk), separators=(",", ":")).encode()
    head = b64json({"alg": "HS256", "kid": signer.kid, "typ": "JWT"}) + "." + b64json(claims_for(signer))
    return head + "." + b64url(hmac.new(public, head.encode(), hashlib.sha256).digest())


def _hs256_raw_x(signer: Signer) -> str:
    head = b64json({"alg": "HS256", "kid": signer.kid}) + "." + b64json(claims_for(signer))
    return head + "." + b64url(hmac.new(unb64(signer.private_jwk["x"]), head.encode(), hashlib.sha256).digest())


def _tampered(change: Callable[[dict[str, Any]], None]) -> Callable[[Signer], str]:
    """A real receipt whose payload is changed after signing (header and signature kept)."""

    def make(signer: Signer) -> str:
        header, payload, signature = signer.receipt([{"gtin": gtin(900), "qty": 1}]).split(".")
        claims = json.loads(unb64(payload))
        change(claims)
        return f"{header}.{b64json(claims)}.{signature}"

    return make


def _other_key_same_kid(signer: Signer) -> str:
    return sign(claims_for(signer), generate_private_jwk("OKP"), signer.kid)


def _unregistered(signer: Signer) -> str:
    private = generate_private_jwk("OKP")
    return sign(claims_for(signer), private, thumbprint(private))


def _signed(**over: Any) -> Callable[[Signer], str]:
    def make(signer: Signer) -> str:
        claims = claims_for(signer)
        for name, value in over.items():
            if value is _DROP:
                claims.pop(name)
            else:
                claims[name] = value
        return sign(claims, signer.private_jwk, signer.kid)

    return make


_DROP = object()

REFUSALS: dict[str, tuple[str, Callable[[Signer], str]]] = {
    "garbage": ("malformed_jws", lambda s: "garbage"),
    "two parts": ("malformed_jws", lambda s: "eyJhbGciOiJFZERTQSJ9.e30"),
    "not base64url": ("malformed_jws", lambda s: "!!!.???.***"),
    "header not JSON": ("malformed_jws", lambda s: b64url(b"alg") + "." + b64json(claims_for(s)) + "." + b64url(b"x")),
    "payload not an object": ("malformed_jws", lambda s: b64json({"alg": "EdDSA", "kid": s.kid}) + "."
                              + b64json([1, 2]) + "." + b64url(b"x" * 64)),
    "alg none": ("unsupported_algorithm", lambda s: b64json({"alg": "none", "kid": s.kid}) + "."
                 + b64json(claims_for(s)) + "."),
    "alg none without kid": ("unsupported_algorithm", lambda s: b64json({"alg": "none"}) + "."
                             + b64json(claims_for(s)) + "."),
    "HS256 keyed with the public JWK": ("unsupported_algorithm", _hs256),
    "HS256 keyed with the public x": ("unsupported_algorithm", _hs256_raw_x),
    "ES256 on an Ed25519 key": ("unsupported_algorithm",
                                lambda s: sign(claims_for(s), generate_private_jwk("EC"), s.kid)),
    "unregistered key": ("unknown_key", _unregistered),
    "made-up kid": ("unknown_key", lambda s: sign(claims_for(s), s.private_jwk, "no-such-kid")),
    "tampered qty": ("bad_signature", _tampered(lambda c: c["items"][0].update(qty=100))),
    "tampered jti": ("bad_signature", _tampered(lambda c: c.update(jti=c["jti"] + "x"))),
    "another key under the registered kid": ("bad_signature", _other_key_same_kid),
    "iss another org": ("issuer_mismatch", _signed(iss="rival")),
    "items missing": ("invalid_receipt", _signed(items=_DROP)),
    "items empty": ("invalid_receipt", _signed(items=[])),
    "qty 0": ("invalid_receipt", _signed(items=[{"gtin": gtin(900), "qty": 0}])),
    "qty negative": ("invalid_receipt", _signed(items=[{"gtin": gtin(900), "qty": -2}])),
    "qty fractional": ("invalid_receipt", _signed(items=[{"gtin": gtin(900), "qty": 1.5}])),
    "qty a string": ("invalid_receipt", _signed(items=[{"gtin": gtin(900), "qty": "2"}])),
    "gtin a number": ("invalid_receipt", _signed(items=[{"gtin": int(gtin(900)), "qty": 1}])),
    "jti missing": ("invalid_receipt", _signed(jti=_DROP)),
    "jti empty": ("invalid_receipt", _signed(jti="")),
    "iat missing": ("invalid_receipt", _signed(iat=_DROP)),
    "iat fractional": ("invalid_receipt", _signed(iat=int(time.time()) + 0.5)),
    "iat a string": ("invalid_receipt", _signed(iat=str(int(time.time())))),
    "iat a boolean": ("invalid_receipt", _signed(iat=True)),
    "iat negative": ("invalid_receipt", _signed(iat=-1)),
}


def _refusal_problems(flow: CreditFlow, token: str, expected: str) -> list[str]:
    """What is wrong with the answers (en and zh-Hant) to one refused receipt; empty: all right."""
    person = flow.consumer("pat")
    en = flow.client.post(PURCHASES, json={"receipt": token}, headers={**person, "Accept-Language": "en"})
    hant = flow.client.post(PURCHASES, json={"receipt": token}, headers={**person, "Accept-Language": "zh-Hant"})
    if (en.status_code, hant.status_code) != (422, 422):
        return [f"status {en.status_code}/{hant.status_code}: {en.text[:300]}"]
    wrong = []
    a, b = en.json(), hant.json()
    if (a.get("reason"), b.get("reason")) != (expected, expected):
        wrong.append(f"reason {a.get('reason')}/{b.get('reason')}")
    if not en.headers["content-type"].startswith("application/problem+json"):
        wrong.append(f"content-type {en.headers['content-type']}")
    if a["title"] == b["title"] or a["detail"] == b["detail"] or not any(ord(c) in CJK for c in b["detail"]):
        wrong.append(f"not localised: {a['title']!r} {a['detail']!r} / {b['title']!r} {b['detail']!r}")
    if hant.headers.get("content-language") != "zh-Hant":
        wrong.append(f"content-language {hant.headers.get('content-language')}")
    if [e["field"] for e in a.get("errors") or []] != ["receipt"]:
        wrong.append(f"errors {a.get('errors')}")
    return wrong


@pytest.mark.parametrize("expected", sorted({why for why, _ in REFUSALS.values()}))
def test_every_refusal_is_a_localised_422_with_its_reason(flow: CreditFlow, signer: Signer, expected: str) -> None:
    """All the cases of one reason in one test (an app per case would cost seconds each)."""
    failures = {name: wrong for name, (why, make) in REFUSALS.items() if why == expected
                if (wrong := _refusal_problems(flow, make(signer), expected))}
    assert failures == {}
    assert wallet_balance(flow, flow.consumer("pat")) == 0


def test_field_messages_have_their_placeholders_filled(flow: CreditFlow, signer: Signer) -> None:
    """errors[].message, like detail, names the kid / field / problem, not "{kid}"."""
    unfilled = []
    for name in ("made-up kid", "iss another org", "qty 0"):
        token = REFUSALS[name][1](signer)
        for language in ("en", "zh-Hant"):
            response = flow.client.post(PURCHASES, json={"receipt": token},
                                        headers={**flow.consumer("pat"), "Accept-Language": language})
            assert reason(response, 422) == REFUSALS[name][0]
            body = response.json()
            unfilled += [(name, language, text) for text in [body["detail"], *(e["message"] for e in body["errors"])]
                         if "{" in text]
    assert unfilled == []


def test_a_refused_receipt_can_still_be_claimed_once_fixed(flow: CreditFlow, signer: Signer) -> None:
    """A refusal does not burn the receipt's jti."""
    code = flow.labelled(1, "2")
    person = flow.consumer("pat")
    assert reason(flow.claim(person, signer.receipt([{"gtin": code, "qty": 1}], jti="R-9", iss="rival")),
                  422) == "issuer_mismatch"
    assert reason(flow.claim(person, signer.receipt([{"gtin": code, "qty": 1}], jti="R-9",
                                                     iat=time.time() + 3600)), 422) == "receipt_from_future"
    assert flow.ok(flow.claim(person, signer.receipt([{"gtin": code, "qty": 1}], jti="R-9")), 201)["credited_g"] == 3000


def test_a_receipt_may_be_claimed_for_exactly_the_maximum_age(flow: CreditFlow, signer: Signer, fixed_now) -> None:
    now = whole_second_now()
    fixed_now(now)
    person = flow.consumer("pat")
    limit = now - timedelta(days=30)
    assert flow.claim(person, signer.receipt([{"gtin": gtin(900), "qty": 1}], iat=limit.timestamp())).status_code == 201
    for moment in (limit - timedelta(seconds=1), now - timedelta(days=31)):
        response = flow.client.post(PURCHASES, json={"receipt": signer.receipt([{"gtin": gtin(900), "qty": 1}],
                                                                               iat=moment.timestamp())},
                                    headers={**person, "Accept-Language": "en"})
        assert reason(response, 422) == "receipt_too_old"
        assert response.json()["detail"] == "Receipts can be claimed for 30 days."


def test_the_maximum_age_follows_the_setting(settings, tmp_path, fixed_now) -> None:
    from litestar.testing import TestClient

    from carbonpuhui.app import create_app
    from tests.conftest import make_settings

    now = whole_second_now()
    fixed_now(now)
    short_settings = make_settings(tmp_path / "short", database_url=settings.database_url, receipt_max_age_days=2)
    with TestClient(create_app(short_settings), raise_server_exceptions=False) as short:
        short_flow = CreditFlow(short, _auth_for(short_settings))
        signer = short_flow.register()
        person = short_flow.consumer("pat")
        ok = short_flow.claim(person, signer.receipt([{"gtin": gtin(900), "qty": 1}],
                                                     iat=(now - timedelta(days=2)).timestamp()))
        assert ok.status_code == 201, ok.text
        old = short_flow.claim(person, signer.receipt([{"gtin": gtin(900), "qty": 1}],
                                                      iat=(now - timedelta(days=2, seconds=1)).timestamp()))
        assert reason(old, 422) == "receipt_too_old"


def _auth_for(settings) -> Callable[..., dict[str, str]]:
    from carbonpuhui.auth.tokens import mint_token

    def make(*roles: str, sub: str = "tester", org: str | None = None) -> dict[str, str]:
        value = mint_token(settings.key_path, issuer=settings.token_issuer, audience=settings.token_audience,
                           sub=sub, roles=list(roles), org=org, ttl=600)
        return {"Authorization": f"Bearer {value}"}

    return make


def test_a_receipt_minutes_ahead_passes_further_ahead_is_from_the_future(flow: CreditFlow, signer: Signer,
                                                                        fixed_now) -> None:
    now = whole_second_now()
    fixed_now(now)
    person = flow.consumer("pat")
    outcomes = {}
    for ahead in (timedelta(minutes=4), timedelta(minutes=5), timedelta(minutes=5, seconds=1),
                  timedelta(minutes=10)):
        response = flow.claim(person, signer.receipt([{"gtin": gtin(900), "qty": 1}], iat=(now + ahead).timestamp()))
        outcomes[ahead.total_seconds()] = (response.status_code, response.json().get("reason"))
    assert outcomes == {240: (201, None), 300: (201, None), 301: (422, "receipt_from_future"),
                        600: (422, "receipt_from_future")}


def test_a_receipt_from_a_revoked_key_is_key_revoked(flow: CreditFlow, signer: Signer) -> None:
    receipt = signer.receipt([{"gtin": gtin(900), "qty": 1}])
    assert flow.client.delete(f"/v1/merchant/receipt-keys/{signer.kid}", headers=flow.shop).status_code == 204
    assert reason(flow.claim(flow.consumer("pat"), receipt), 422) == "key_revoked"


def test_an_ec_key_signs_receipts_too(flow: CreditFlow) -> None:
    signer = flow.register(kty="EC")
    code = flow.labelled(1, "2")
    out = flow.ok(flow.claim(flow.consumer("pat"), signer.receipt([{"gtin": code, "qty": 2}])), 201)
    assert out["credited_g"] == 6000


def test_the_rfc_9864_alg_name_is_accepted(flow: CreditFlow, signer: Signer) -> None:
    token = sign(claims_for(signer), signer.private_jwk, signer.kid, alg="Ed25519")
    assert flow.claim(flow.consumer("pat"), token).status_code == 201


def test_only_consumers_claim(flow: CreditFlow, signer: Signer) -> None:
    receipt = signer.receipt([{"gtin": gtin(900), "qty": 1}])
    assert flow.claim(flow.shop, receipt).status_code == 403
    assert flow.client.post(PURCHASES, json={"receipt": receipt}).status_code == 401
    assert flow.claim(flow.consumer("pat"), receipt).status_code == 201  # not burnt by the refusals


# --- Idempotency-Key ----------------------------------------------------------------------------

def test_the_same_key_and_body_replay_the_first_response_and_credit_once(flow: CreditFlow, signer: Signer) -> None:
    code = flow.labelled(1, "2")
    person = flow.consumer("pat")
    receipt = signer.receipt([{"gtin": code, "qty": 1}])
    first = flow.claim(person, receipt, key="k-1")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(2):
        again = flow.claim(person, receipt, key="k-1")
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert "no-store" in again.headers.get("cache-control", "")
    assert wallet_balance(flow, person) == 3000
    assert entry_count(flow, person) == 1
    # Without the key the same receipt is the ordinary 409.
    assert reason(flow.claim(person, receipt), 409) == "receipt_already_claimed"


def test_the_same_key_with_another_body_is_a_422(flow: CreditFlow, signer: Signer) -> None:
    code = flow.labelled(1, "2")
    person = flow.consumer("pat")
    first = flow.ok(flow.claim(person, signer.receipt([{"gtin": code, "qty": 1}]), key="k-1"), 201)
    other_receipt = signer.receipt([{"gtin": code, "qty": 2}])
    response = flow.client.post(PURCHASES, json={"receipt": other_receipt},
                                headers={**person, "Idempotency-Key": "k-1", "Accept-Language": "en"})
    assert reason(response, 422) == "idempotency_key_reused"
    assert response.json()["detail"] == "This Idempotency-Key was used with a different request body."
    assert wallet_balance(flow, person) == first["balance_g"] == 3000
    # The other receipt was not consumed: under another key it earns.
    assert flow.ok(flow.claim(person, other_receipt, key="k-2"), 201)["credited_g"] == 6000


def test_the_key_belongs_to_its_caller(flow: CreditFlow, signer: Signer) -> None:
    code = flow.labelled(1, "2")
    pat, quinn = flow.consumer("pat"), flow.consumer("quinn")
    receipt = signer.receipt([{"gtin": code, "qty": 1}])
    first = flow.ok(flow.claim(pat, receipt, key="shared"), 201)
    # Another person, same key, same body: not pat's answer replayed, the receipt's own 409.
    same_body = flow.claim(quinn, receipt, key="shared")
    assert reason(same_body, 409) == "receipt_already_claimed"
    assert "idempotent-replayed" not in same_body.headers
    # Same key, own receipt: runs normally.
    own = flow.claim(quinn, signer.receipt([{"gtin": code, "qty": 2}]), key="shared")
    assert own.status_code == 201, own.text
    assert "idempotent-replayed" not in own.headers
    assert own.json()["claim_id"] != first["claim_id"]
    assert (wallet_balance(flow, pat), wallet_balance(flow, quinn)) == (3000, 6000)


INVALID_KEYS: dict[str, str | bytes] = {
    "empty": "", "space": " ", "256 characters": "x" * 256, "300 characters": "x" * 300,
    "UTF-8": "键".encode(), "Latin-1": "café".encode("latin-1"), "inner space": "a b", "tab": "tab\there",
}


def test_an_invalid_key_is_a_422(flow: CreditFlow, signer: Signer) -> None:
    person = flow.consumer("pat")
    receipt = signer.receipt([{"gtin": gtin(900), "qty": 1}])
    outcomes = {}
    for name, key in INVALID_KEYS.items():
        response = flow.client.post(PURCHASES, json={"receipt": receipt}, headers={**person, "Idempotency-Key": key})
        body = response.json()
        outcomes[name] = (response.status_code, body.get("reason"), [e["field"] for e in body.get("errors") or []])
    assert outcomes == {name: (422, "invalid_idempotency_key", ["Idempotency-Key"]) for name in INVALID_KEYS}
    assert flow.claim(person, receipt).status_code == 201  # the refused requests claimed nothing


def test_a_key_of_255_visible_characters_is_fine(flow: CreditFlow, signer: Signer) -> None:
    key = "".join(chr(0x21 + i % 94) for i in range(255))
    person = flow.consumer("pat")
    receipt = signer.receipt([{"gtin": gtin(900), "qty": 1}])
    first = flow.claim(person, receipt, key=key)
    assert first.status_code == 201, first.text
    assert flow.claim(person, receipt, key=key).headers["idempotent-replayed"] == "true"


def test_a_failed_first_attempt_leaves_no_record(flow: CreditFlow, signer: Signer, fixed_now) -> None:
    now = whole_second_now()
    fixed_now(now)
    code = flow.labelled(1, "2")
    person = flow.consumer("pat")
    early = signer.receipt([{"gtin": code, "qty": 1}], iat=(now + timedelta(minutes=10)).timestamp())
    for _ in range(2):  # the retry runs again (no replay header, no "key reused")
        response = flow.claim(person, early, key="k-1")
        assert reason(response, 422) == "receipt_from_future"
        assert "idempotent-replayed" not in response.headers
    # Once the receipt's time has come, the very same request under the same key succeeds ...
    fixed_now(now + timedelta(minutes=6))
    later = flow.claim(person, early, key="k-1")
    assert later.status_code == 201, later.text
    assert "idempotent-replayed" not in later.headers
    # ... and a refused first attempt did not pin the key to its body either.
    bad = signer.receipt([{"gtin": code, "qty": 1}], iss="rival")
    assert reason(flow.claim(person, bad, key="k-2"), 422) == "issuer_mismatch"
    assert reason(flow.claim(person, bad, key="k-2"), 422) == "issuer_mismatch"
    good = flow.claim(person, signer.receipt([{"gtin": code, "qty": 2}]), key="k-2")
    assert good.status_code == 201, good.text
    assert wallet_balance(flow, person) == 3000 + 6000


def test_a_conflict_under_a_key_leaves_no_record(flow: CreditFlow, signer: Signer) -> None:
    person = flow.consumer("pat")
    receipt = signer.receipt([{"gtin": gtin(900), "qty": 1}])
    flow.ok(flow.claim(flow.consumer("quinn"), receipt), 201)
    assert reason(flow.claim(person, receipt, key="k-1"), 409) == "receipt_already_claimed"
    fresh = flow.claim(person, signer.receipt([{"gtin": gtin(900), "qty": 2}]), key="k-1")
    assert fresh.status_code == 201, fresh.text


def test_trips_replay_under_their_key(flow: CreditFlow) -> None:
    person = flow.consumer("pat")
    body = trip_body("walk", "2", 30)
    first = flow.trip(person, body, key="trip-1")
    assert first.status_code == 201, first.text
    assert first.json()["credited_g"] == 2 * 46  # the methodology's walking figure, g per km
    again = flow.trip(person, body, key="trip-1")
    assert (again.status_code, again.headers.get("idempotent-replayed"), again.json()) == (201, "true", first.json())
    assert reason(flow.trip(person, trip_body("walk", "3", 40), key="trip-1"), 422) == "idempotency_key_reused"
    # The key is per route: the same string on purchases is another key.
    assert "idempotent-replayed" not in flow.claim(person, flow.register().receipt(
        [{"gtin": gtin(900), "qty": 1}]), key="trip-1").headers
    assert wallet_balance(flow, person) == 92
    assert entry_count(flow, person) == 1


def test_redemptions_replay_under_their_key(flow: CreditFlow, signer: Signer) -> None:
    code = flow.labelled(1, "2")
    person = flow.consumer("pat")
    flow.ok(flow.claim(person, signer.receipt([{"gtin": code, "qty": 1}])), 201)
    reward = flow.reward(1000, 5)
    first = flow.redeem(person, reward, key="r-1")
    assert first.status_code == 201, first.text
    again = flow.redeem(person, reward, key="r-1")
    assert (again.status_code, again.headers.get("idempotent-replayed"), again.json()) == (201, "true", first.json())
    assert first.json()["balance_g"] == 2000 == wallet_balance(flow, person)
    listed = {r["id"]: r for r in flow.ok(flow.client.get("/v1/rewards", params={"merchant": SHOP}))["items"]}
    assert (listed[reward]["stock"], listed[reward]["redeemed"]) == (4, 1)
    assert flow.wallet(person)["redeemed_g"] == 1000
    # A second redemption needs a second key (or none).
    assert flow.redeem(person, reward, key="r-2").json()["balance_g"] == 1000

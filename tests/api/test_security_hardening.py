"""Hostile input, the cases the other suites leave open (issue 7).

Already covered elsewhere, so not repeated here:
- tokens: alg none, HS256 keyed with the public JWK or PEM, wrong iss / aud, expired, missing exp /
  sub, typ JWT, a foreign key under our kid, garbage (tests/api/test_auth.py; nbf, odd kid types,
  crit, unknown roles dropped: tests/unit/test_tokens.py);
- another organisation's inventory, footprint, product record, verifiers (test_inventory_confidentiality.py),
  sealed bids and an officer of another agency before and after the deadline (test_sealed_bids.py),
  another merchant's receipt key (test_credit_keys.py), listing (test_label_views.py), PACT sharing
  (test_pact_api.py);
- 5,000-deep JSON and a huge exponent on POST /v1/factors, the 1 MiB limit on one route
  (test_hostile_input.py, test_problems.py); receipts: garbage, two parts, header not JSON, payload
  an array, alg none / HS256 / ES256 on an Ed25519 key (test_credit_purchases.py, test_credit_trips.py).

What is here: tokens whose key comes from somewhere else (embedded jwk, jku, x5u, kid paths, a
merchant's receipt key), not-yet-valid and role-less tokens over HTTP; another organisation's label
applications, labels, PACT footprints, idempotency records; injection strings in every text field
of every JSON request body, the fields read from the served OpenAPI schema; oversized, 100,000-deep,
huge-number and duplicate-key bodies on every body route; and malformed receipts and attestations
(truncated, four or five segments, header an array, b64 false, crit, huge kid, JWS JSON serialisation)
that must be a 422 with a reason and credit nothing.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import html
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from itertools import count
from typing import Any

import pytest
from joserfc.jwk import ECKey
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import inspect

from carbonpuhui.app import create_app
from carbonpuhui.auth.access import ROLES
from carbonpuhui.auth.keys import load_or_create_signing_key
from carbonpuhui.auth.tokens import mint_token
from carbonpuhui.credits.signing import generate_private_jwk, sign
from carbonpuhui.db.engine import create_engine
from carbonpuhui.db.migrate import upgrade
from carbonpuhui.db.models import metadata
from carbonpuhui.stats.shipments import MAX_CSV_BYTES
from tests.api.credit_flow import OPERATOR, CreditFlow, public_part, trip_body
from tests.api.label_flow import CATEGORY, NEXT_YEAR, gtin
from tests.api.test_auth import FACTOR, b64, es256, good_claims
from tests.api.test_products import line
from tests.api.test_role_matrix import url as dummy_url
from tests.conftest import TEST_DATABASE_URL, _empty_tables, make_settings

PROBLEM = "application/problem+json"


def problem(response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, f"{response.status_code}: {response.text[:400]}"
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    return response.json()


# --- tokens whose key or claims come from somewhere else -------------------------------------------


def _attacker_token(settings, case: str, client) -> str:  # type: ignore[no-untyped-def]
    """An admin token that is wrong in one way, signed so that only that way is wrong."""
    ours = load_or_create_signing_key(settings.key_path)
    attacker = ECKey.generate_key("P-256", private=True)
    header = {"alg": "ES256", "typ": "at+jwt", "kid": ours.kid}
    claims = good_claims(settings)
    now = int(time.time())
    if case == "embedded_jwk":  # RFC 7515 jwk header: "trust the key I carry"
        header = {**header, "kid": attacker.thumbprint(), "jwk": attacker.as_dict(private=False)}
    elif case == "embedded_jwk_our_kid":
        header = {**header, "jwk": attacker.as_dict(private=False)}
    elif case == "jku":
        header = {**header, "kid": "evil", "jku": "https://attacker.example/jwks.json"}
    elif case == "x5u":
        header = {**header, "kid": "evil", "x5u": "https://attacker.example/cert.pem"}
    elif case == "kid_path":
        header = {**header, "kid": "../../../../dev/null"}
    elif case == "kid_sql":
        header = {**header, "kid": "' OR 1=1 --"}
    elif case == "kid_huge":
        header = {**header, "kid": "k" * 20_000}
    elif case == "receipt_key":
        # A key a merchant registered for receipts: it is in the platform's database, but never a
        # key for access tokens.
        private = generate_private_jwk("EC")
        merchant = {"Authorization": f"Bearer {_mint(settings, 'merchant', org='shop')}"}
        registered = client.post("/v1/merchant/receipt-keys", json={"jwk": public_part(private)}, headers=merchant)
        assert registered.status_code == 201, registered.text
        attacker = ECKey.import_key(private)
        header = {**header, "kid": registered.json()["kid"]}
    elif case == "not_yet_valid":
        attacker = ours
        claims = good_claims(settings, iat=now + 3600, nbf=now + 3600, exp=now + 7200)
    elif case == "issued_in_the_future_only":
        attacker = ours
        claims = good_claims(settings, nbf=now + 600)
    elif case == "iss_list":
        attacker = ours
        claims = good_claims(settings, iss=[settings.token_issuer])
    elif case == "aud_number":
        attacker = ours
        claims = good_claims(settings, aud=7)
    elif case == "exp_string":
        attacker = ours
        claims = good_claims(settings, exp=str(now + 600))
    else:
        raise AssertionError(case)
    return es256(attacker, header, claims)


def _mint(settings, *roles: str, org: str | None = None, sub: str = "tester") -> str:  # type: ignore[no-untyped-def]
    return mint_token(settings.key_path, issuer=settings.token_issuer, audience=settings.token_audience,
                      sub=sub, roles=list(roles), org=org, ttl=600)


FOREIGN_KEY_CASES = ["embedded_jwk", "embedded_jwk_our_kid", "jku", "x5u", "kid_path", "kid_sql", "kid_huge",
                     "receipt_key", "not_yet_valid", "issued_in_the_future_only", "iss_list", "aud_number",
                     "exp_string"]


@pytest.mark.parametrize("case", FOREIGN_KEY_CASES)
def test_a_token_not_signed_by_our_key_for_us_is_401_and_writes_nothing(shared, case: str) -> None:
    client, settings, auth = shared.client, shared.settings, shared.auth
    token = _attacker_token(settings, case, client)
    for method, path in (("POST", "/v1/factors"), ("GET", "/v1/me"), ("GET", "/v1/factors")):
        response = client.request(method, path, json=FACTOR if method == "POST" else None,
                                  headers={"Authorization": f"Bearer {token}"})
        body = problem(response, 401)
        assert body["reason"] == "invalid_token", body
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert client.get(f"/v1/factors/{FACTOR['id']}/versions", headers=auth("admin")).status_code == 404


@pytest.mark.parametrize("roles", [None, [], ["root"], ["ADMIN"], ["admin "], "root superuser", [["admin"]]],
                         ids=["no_roles_claim", "empty", "unknown", "upper_case", "trailing_space", "unknown_str",
                              "nested_list"])
def test_a_token_without_a_known_role_never_writes(shared, roles: object) -> None:
    client, settings, auth = shared.client, shared.settings, shared.auth
    # Design (tests/unit/test_tokens.py): unknown roles are dropped, so a well-signed token without a
    # known role is a valid token with no role: 403 on role routes (401 if the claim is malformed).
    key = load_or_create_signing_key(settings.key_path)
    claims = {**good_claims(settings), "roles": roles}
    if roles is None:
        claims.pop("roles")
    token = es256(key, {"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, claims)
    response = client.post("/v1/factors", json=FACTOR, headers={"Authorization": f"Bearer {token}"})
    body = problem(response, 401, 403)
    assert body["reason"] == ("invalid_token" if roles == [["admin"]] else "missing_role"), body
    assert client.get(f"/v1/factors/{FACTOR['id']}/versions", headers=auth("admin")).status_code == 404


# --- cross-organisation ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(shared) -> dict[str, Any]:
    """Organisation A ("acme") with a product under review, a certified product with a label and a
    listing, a published PACT footprint, a receipt key and a reward."""
    flow, client = shared.flow, shared.client
    pending_code = flow.product(1, "15")
    pending = flow.apply(pending_code)
    labelled = flow.product(2, "12")
    label = flow.certify(labelled)
    listing = flow.listing(labelled)
    pact_code = gtin(3)
    flow.ok(client.post("/v1/merchant/products", json={
        "gtin": pact_code, "names": {"zh-Hans": "钢", "zh-Hant": "鋼", "en": "Steel"}, "category": CATEGORY,
        "declared_unit": "kilogram", "declared_units_per_item": "1"}, headers=flow.owner), 201)
    flow.ok(client.put(f"/v1/merchant/products/{pact_code}/inventory", json={"lines": [
        line("production", "power", "2", "kWh", factor_id="inj-grid", primary=True)]}, headers=flow.owner))
    footprint = client.post(f"/v1/merchant/products/{pact_code}/pact-footprints", json={
        "company_name": "Acme", "product_category_cpc": "4124", "public": False, "shared_with": ["buyer"]},
        headers=flow.owner)
    assert footprint.status_code == 201, footprint.text
    signer = flow.register(headers=flow.owner, org="acme")
    reward = flow.reward(100, 5, headers=flow.owner, title="A's tote")
    return {"flow": flow, "pending_code": pending_code, "pending": pending, "labelled": labelled, "label": label,
            "listing": listing, "pact_code": pact_code, "footprint": footprint.json(), "kid": signer.kid,
            "reward": reward}


def _snapshot(world: dict[str, Any]) -> dict[str, Any]:
    """A's data as A (and the public) see it."""
    flow: CreditFlow = world["flow"]
    c, a = flow.client, flow.owner
    return {
        "products": c.get("/v1/merchant/products", headers=a).json(),
        "pending": c.get(f"/v1/merchant/products/{world['pending_code']}", headers=a).json(),
        "labelled_public": c.get(f"/v1/products/{world['labelled']}").json(),
        "label": c.get(f"/v1/labels/{world['label']['id']}").json(),
        "history": c.get(f"/v1/labels/{world['label']['id']}/history", headers=a).json(),
        "queue": c.get("/v1/certification/applications", params={"status": "pending"},
                       headers=flow.verifier).json(),
        "pact": c.get("/v1/merchant/pact-footprints", headers=a).json(),
        "keys": c.get("/v1/merchant/receipt-keys", headers=a).json(),
        "rewards": c.get("/v1/rewards", params={"merchant": "acme"}).json(),
        "listings": c.get("/v1/listings", params={"merchant": "acme"}).json(),
    }


def _attempts(world: dict[str, Any]) -> dict[str, Callable[[dict[str, str]], Any]]:
    c = world["flow"].client
    pending, labelled, label = world["pending_code"], world["labelled"], world["label"]["id"]
    app_id, fp_id = world["pending"]["id"], world["footprint"]["id"]
    return {
        "withdraw A's application": lambda h: c.post(
            f"/v1/merchant/products/{pending}/label-applications/{app_id}/withdraw", headers=h),
        "apply for A's product": lambda h: c.post(f"/v1/merchant/products/{labelled}/label-applications",
                                                  json={"certification_body": None}, headers=h),
        "self-declare A's product": lambda h: c.post(f"/v1/merchant/products/{pending}/self-declared-label",
                                                     json={"valid_until": NEXT_YEAR}, headers=h),
        "revoke A's label": lambda h: c.post(f"/v1/labels/{label}/revoke", json={"reason": "spite"}, headers=h),
        "read A's label history": lambda h: c.get(f"/v1/labels/{label}/history", headers=h),
        "publish A's PACT footprint": lambda h: c.post(
            f"/v1/merchant/products/{world['pact_code']}/pact-footprints",
            json={"company_name": "B", "product_category_cpc": "4124", "public": True, "shared_with": []}, headers=h),
        "make A's PACT footprint public": lambda h: c.put(f"/v1/merchant/pact-footprints/{fp_id}/sharing",
                                                          json={"public": True, "shared_with": ["b"]}, headers=h),
        "revoke A's receipt key": lambda h: c.delete(f"/v1/merchant/receipt-keys/{world['kid']}", headers=h),
        "delete A's listing": lambda h: c.delete(f"/v1/merchant/listings/{world['listing']['id']}", headers=h),
        "assign a verifier to A's product": lambda h: c.post(f"/v1/merchant/products/{pending}/verifiers",
                                                             json={"certification_body": "cb-evil"}, headers=h),
        "refresh A's footprint": lambda h: c.post(f"/v1/merchant/products/{pending}/footprint/refresh", headers=h),
        "read A's footprint": lambda h: c.get(f"/v1/merchant/products/{pending}/footprint", headers=h),
    }


OUTSIDERS: dict[str, Callable[[Any], dict[str, str]]] = {
    "merchant_b": lambda auth: auth("merchant", org="rival", sub="rita"),
    "merchant_no_org": lambda auth: auth("merchant", sub="nobody"),
    "merchant_named_like_the_body": lambda auth: auth("merchant", org="cb-sgs", sub="m"),
    "verifier_of_another_body": lambda auth: auth("verifier", org="cb-cqc", sub="otto"),
}
ATTEMPT_NAMES = list(_attempts({"flow": type("F", (), {"client": None})(), "pending_code": "", "labelled": "",
                                "label": {"id": ""}, "pending": {"id": ""}, "footprint": {"id": ""},
                                "pact_code": "", "kid": "", "listing": {"id": ""}}))


@pytest.mark.parametrize("outsider", OUTSIDERS)
def test_another_organisation_neither_reads_nor_changes_as_data(shared, world, outsider: str) -> None:
    before = _snapshot(world)
    headers = OUTSIDERS[outsider](shared.auth)
    wrong = []
    for name, attempt in _attempts(world).items():
        response = attempt(headers)
        if response.status_code not in (403, 404) or not response.headers["content-type"].startswith(PROBLEM):
            wrong.append(f"{name}: {response.status_code} {response.text[:200]}")
        elif "acme" in response.text or "alice" in response.text:
            wrong.append(f"{name}: the refusal names A: {response.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert _snapshot(world) == before


def test_a_verifier_of_another_body_cannot_decide_an_application_naming_a_body(shared) -> None:
    flow, application = shared.flow, shared.application()
    decided = flow.decide(application, headers=flow.other_verifier)
    assert decided.status_code in (403, 404), decided.text
    assert problem(decided, 403, 404)
    queue = shared.client.get("/v1/certification/applications", params={"status": "pending"},
                              headers=flow.other_verifier)
    assert application not in queue.text
    assert flow.ok(flow.decide(application))["status"] == "approved"  # the named body still can


def test_another_consumers_idempotency_key_replays_nothing_of_theirs(shared) -> None:
    flow = shared.flow
    body = trip_body("walk", "2", ago=timedelta(hours=5))
    first = flow.ok(flow.trip(flow.consumer("idem-alice"), body, key="shared-key-1"), 201)
    # Bob reuses Alice's key with her body: his own claim (or a refusal), never her response.
    bobs = flow.trip(flow.consumer("idem-bob"), body, key="shared-key-1")
    assert bobs.headers.get("idempotent-replayed") is None
    assert first["claim_id"] not in bobs.text
    assert flow.wallet(flow.consumer("idem-alice"))["balance_g"] == first["balance_g"]


# --- injection strings in every text field -----------------------------------------------------------

INJECTIONS = {
    "sql_or": "' OR 1=1 --",
    "sql_drop": '"; DROP TABLE products; --',
    "jinja": "{{7*7}}",
    "el": "${7*7}",
    "script": "<script>alert(1)</script>",
    "format": "%s%s%n%x{0}",
    "nul": "a\x00b",
    "rtl": "abc\u202egnp.exe",
    "long_unicode": "漢😀" * 60_000,
}


class _Shared:
    """An app of its own on a database of its own (SQLite file, or a PostgreSQL database of the run),
    shared by the whole module: one start instead of one per test. Every test makes fresh GTINs,
    ids and people (nothing is emptied between tests), and reads back what it checks."""

    def __init__(self, client: TestClient[Litestar], settings) -> None:  # type: ignore[no-untyped-def]
        self.client, self.settings = client, settings
        self.n = count(100)

        def auth(*roles: str, **kw: Any) -> dict[str, str]:
            return {"Authorization": f"Bearer {_mint(settings, *roles, **kw)}"}

        self.auth = auth
        self.flow = CreditFlow(client, auth)
        self.everyone = auth(*ROLES, org="acme", sub="alice")  # past every guard
        self.officer = auth("officer", org="agency", sub="olga")
        flow = self.flow
        client.post("/v1/factors", json={**FACTOR, "id": "inj-grid", "gwp_basis": "AR6"}, headers=flow.admin)
        flow.ok(client.post("/v1/factors/inj-grid/versions/1/publish", headers=flow.admin))
        flow.benchmark(["10", "20", "30", "40"])
        self.code = self.product()
        self.signer = flow.register()
        tender = client.post("/v1/tenders", json={
            "title": "t", "category": CATEGORY, "functional_unit": "kilogram", "quantity": 10,
            "deadline": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
            "eligibility": {"max_kgco2e_per_unit": None, "label_required": False},
            "weights": {"price": 0.6, "carbon": 0.4, "quality": 0.0}, "carbon_method": "ratio_to_best"},
            headers=self.officer)
        assert tender.status_code == 201, tender.text
        self.tender = tender.json()["id"]
        self.reward = flow.reward(1, 5)
        footprint = client.post(f"/v1/merchant/products/{self.code}/pact-footprints", json={
            "company_name": "Acme", "product_category_cpc": "4124", "public": False, "shared_with": []},
            headers=flow.owner)
        assert footprint.status_code == 201, footprint.text
        self.footprint = footprint.json()["id"]

    def product(self) -> str:
        code = gtin(next(self.n))
        self.flow.ok(self.client.post("/v1/merchant/products", json={
            "gtin": code, "names": {"zh-Hans": "钢", "zh-Hant": "鋼", "en": "Steel"}, "category": CATEGORY,
            "declared_unit": "kilogram", "declared_units_per_item": "1"}, headers=self.flow.owner), 201)
        self.flow.ok(self.client.put(f"/v1/merchant/products/{code}/inventory", json={"lines": [
            line("production", "power", "2", "kWh", factor_id="inj-grid", primary=True)]}, headers=self.flow.owner))
        return code

    def application(self) -> str:
        return self.flow.apply(self.product())["id"]

    def label(self) -> str:
        return self.flow.certify(self.product())["id"]

    # A known-good request per operation: (path, body, headers), fresh where the route creates.
    def base(self, key: tuple[str, str]) -> tuple[str, Any, dict[str, str]] | None:
        f, n = self.flow, next(self.n)
        factor = {**FACTOR, "id": f"inj-{n}", "version_note": "note", "owner_org": None}
        bodies: dict[tuple[str, str], Callable[[], tuple[str, Any, dict[str, str]]]] = {
            ("POST", "/v1/factors"): lambda: ("/v1/factors", factor, f.admin),
            ("POST", "/v1/factors/{factor_id}/versions"): lambda: (
                "/v1/factors/inj-grid/versions", {k: v for k, v in factor.items() if k != "id"}, f.admin),
            ("POST", "/v1/factors/import"): lambda: ("/v1/factors/import", [factor], f.admin),
            ("PUT", "/v1/benchmarks/{category}"): lambda: (
                f"/v1/benchmarks/inj.c{n}", {"method": "fixed", "thresholds": ["1", "2", "3", "4"], "baseline": "5",
                                            "declared_unit": "kilogram", "source": "s"}, f.admin),
            ("POST", "/v1/merchant/products"): lambda: ("/v1/merchant/products", {
                "gtin": gtin(n), "names": {"zh-Hans": "钢", "zh-Hant": "鋼", "en": "Steel"}, "category": CATEGORY,
                "declared_unit": "kilogram", "declared_units_per_item": "1", "region": "CN"}, f.owner),
            ("PUT", "/v1/merchant/products/{gtin}/inventory"): lambda: (
                f"/v1/merchant/products/{self.code}/inventory",
                {"lines": [line("production", "power", "2", "kWh", factor_id="inj-grid", primary=True)]}, f.owner),
            ("POST", "/v1/merchant/products/{gtin}/verifiers"): lambda: (
                f"/v1/merchant/products/{self.code}/verifiers", {"certification_body": "cb-x"}, f.owner),
            ("POST", "/v1/merchant/products/{gtin}/label-applications"): lambda: (
                f"/v1/merchant/products/{self.product()}/label-applications", {"certification_body": "cb-sgs"},
                f.owner),
            ("POST", "/v1/merchant/products/{gtin}/self-declared-label"): lambda: (
                f"/v1/merchant/products/{self.product()}/self-declared-label", {"valid_until": NEXT_YEAR}, f.owner),
            ("POST", "/v1/certification/applications/{application_id}/decision"): lambda: (
                f"/v1/certification/applications/{self.application()}/decision",
                {"decision": "approve", "comment": "ok", "valid_until": NEXT_YEAR}, f.verifier),
            ("POST", "/v1/labels/{label_id}/revoke"): lambda: (
                f"/v1/labels/{self.label()}/revoke", {"reason": "why"}, f.verifier),
            ("POST", "/v1/merchant/listings"): lambda: (
                "/v1/merchant/listings", {"gtin": self.code, "store": f"store {n}", "price_cents": 100,
                                          "url": f"https://shop.example/{n}"}, f.owner),
            ("POST", "/v1/merchant/products/{gtin}/pact-footprints"): lambda: (
                f"/v1/merchant/products/{self.code}/pact-footprints",
                {"company_name": "Acme", "product_category_cpc": "4124", "public": False, "shared_with": ["b"],
                 "comment": "c", "boundary_description": "b"}, f.owner),
            ("PUT", "/v1/merchant/pact-footprints/{footprint_id}/sharing"): lambda: (
                f"/v1/merchant/pact-footprints/{self.footprint}/sharing", {"public": False, "shared_with": ["b"]},
                f.owner),
            ("POST", "/v1/merchant/rewards"): lambda: (
                "/v1/merchant/rewards", {"title": "Tote", "cost_g": 1, "stock": 1}, f.shop),
            ("POST", "/v1/merchant/receipt-keys"): lambda: (
                "/v1/merchant/receipt-keys", {"jwk": public_part(generate_private_jwk("EC"))}, f.shop),
            ("POST", "/v1/credits/purchases"): lambda: (
                "/v1/credits/purchases", {"receipt": self.signer.receipt([{"gtin": self.code, "qty": 1}])},
                f.consumer(f"p{n}")),
            ("POST", "/v1/credits/trips"): lambda: (
                "/v1/credits/trips", {**trip_body("walk", "2"), "attestation": None}, f.consumer(f"t{n}")),
            ("POST", "/v1/wallet/redemptions"): lambda: (
                "/v1/wallet/redemptions", {"reward_id": self.reward}, f.consumer(f"r{n}")),
            ("POST", "/v1/tenders"): lambda: ("/v1/tenders", {
                "title": "t", "category": CATEGORY, "functional_unit": "kilogram", "quantity": "10",
                "deadline": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
                "eligibility": {"max_kgco2e_per_unit": "100", "label_required": False},
                "weights": {"price": "0.6", "carbon": "0.4", "quality": "0"}, "carbon_method": "ratio_to_best"},
                self.officer),
            ("POST", "/v1/tenders/{tender_id}/bids"): lambda: (
                f"/v1/tenders/{self.tender}/bids", {"price_cents": 100, "footprint": {"kgco2e_per_unit": "2",
                                                                                      "gsd": 1.2},
                                                   "quality_score": 50}, self.auth("merchant", org=f"sup{n}")),
        }
        make = bodies.get(key)
        return make() if make else None


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[_Shared]:
    if TEST_DATABASE_URL:
        database_url = request.getfixturevalue("postgres_databases").create()
    else:
        database_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('inj') / 'inj.sqlite3'}"
    upgrade(database_url)
    s = make_settings(tmp_path_factory.mktemp("inj-data"), database_url=database_url,
                      public_rate_limit_per_minute=1_000_000, compute_rate_limit_per_minute=1_000_000)
    with TestClient(create_app(s), raise_server_exceptions=False) as client:
        yield _Shared(client, s)
    _empty_tables(database_url)


def _served_spec() -> dict[str, Any]:
    from tests.api.test_fuzz import schema

    return schema.raw_schema


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _text_paths(spec: dict[str, Any], node: dict[str, Any], path: tuple = (), depth: int = 0) -> set[tuple]:
    """Dotted paths (list items as 0) of every free-text string property under ``node``."""
    node = _resolve(spec, node)
    out: set[tuple] = set()
    if depth > 8:
        return out
    for combinator in ("oneOf", "anyOf", "allOf"):
        for sub in node.get(combinator, []):
            out |= _text_paths(spec, sub, path, depth + 1)
    types = node.get("type")
    types = types if isinstance(types, list) else [types]
    if "string" in types and "enum" not in node and "const" not in node:
        out.add(path)
    for name, sub in node.get("properties", {}).items():
        out |= _text_paths(spec, sub, (*path, name), depth + 1)
    if "array" in types and "items" in node:
        out |= _text_paths(spec, node["items"], (*path, 0), depth + 1)
    return out


def _json_body_operations() -> dict[tuple[str, str], set[tuple]]:
    spec = _served_spec()
    found = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                found[(method.upper(), path)] = _text_paths(spec, content["application/json"]["schema"])
    # A JWK is a free-form object in the schema: its members are text all the same.
    found[("POST", "/v1/merchant/receipt-keys")] |= {("jwk", "kty"), ("jwk", "crv"), ("jwk", "x"), ("jwk", "y"),
                                                    ("jwk", "kid")}
    return found


OPERATIONS = _json_body_operations()


def _set(body: Any, path: tuple, value: Any) -> Any:
    out = copy.deepcopy(body)
    node = out
    for i, step in enumerate(path):
        last = i == len(path) - 1
        if isinstance(step, int):
            if not isinstance(node, list):
                return None
            while len(node) <= step:
                node.append({} if not last else None)
            if last:
                node[step] = value
            else:
                node = node[step] if isinstance(node[step], (dict, list)) else node.__setitem__(step, {}) or node[step]
        else:
            if not isinstance(node, dict):
                return None
            if last:
                node[step] = value
            else:
                if not isinstance(node.get(step), (dict, list)):
                    node[step] = [] if isinstance(path[i + 1], int) else {}
                node = node[step]
    return out


def _get(value: Any, path: tuple) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or len(value) <= step:
                return _MISSING
        elif not isinstance(value, dict) or step not in value:
            return _MISSING
        value = value[step]
    return value


_MISSING = object()


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*map(_strings, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_strings, value)) if value else set()
    return set()


def _tables(url: str) -> set[str]:
    async def run() -> set[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("operation", sorted(OPERATIONS), ids=lambda op: f"{op[0]} {op[1]}")
def test_injection_strings_in_every_text_field(shared: _Shared, operation: tuple[str, str], payload: str) -> None:
    text = INJECTIONS[payload]
    wrong: list[str] = []
    method, template = operation
    for field in sorted(OPERATIONS[operation], key=str):
        base = shared.base(operation)
        if base is None:  # no known-good body: the field alone, past every guard
            path, body, headers = dummy_url(template), _set({}, field, text), shared.everyone
        else:
            path, good, headers = base
            body = _set(good, field, text)
        if body is None:
            continue
        response = shared.client.request(method, path, json=body, headers=headers)
        where = f"{method} {template} {'.'.join(map(str, field))}"
        if response.status_code >= 500:
            wrong.append(f"{where}: {response.status_code} {response.text[:300]}")
            continue
        if response.status_code >= 400:
            if not response.headers["content-type"].startswith(PROBLEM):
                wrong.append(f"{where}: {response.status_code} as {response.headers['content-type']}")
            continue
        if response.status_code == 204 or base is None:
            continue
        echoed = _get(response.json(), field[1:] if field and field[0] == 0 else field)
        if echoed is not _MISSING and echoed is not None and echoed != text:
            wrong.append(f"{where}: stored {str(echoed)[:80]!r}, sent {text[:80]!r}")
        if "7*7" in text and text.replace("{{7*7}}", "49").replace("${7*7}", "49") in _strings(response.json()):
            wrong.append(f"{where}: {text!r} was evaluated")
    assert not wrong, "\n".join(wrong)
    assert {t.name for t in metadata.sorted_tables} <= _tables(shared.settings.effective_database_url)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.data: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.scripts += tag == "script"

    def handle_data(self, data: str) -> None:
        self.data.append(data)


VIEW_PAYLOADS = ["script", "jinja", "el", "rtl", "sql_drop"]


def _names(text: str) -> dict[str, str]:
    return {"zh-Hans": text, "zh-Hant": text, "en": text}


@pytest.mark.parametrize("payload", VIEW_PAYLOADS)
def test_the_public_views_show_hostile_names_as_text(shared, payload: str) -> None:
    text = INJECTIONS[payload] + " & \"q\" 'a'"
    flow, client, n = shared.flow, shared.client, next(shared.n)
    plain, hostile = flow.product(n, "12"), gtin(next(shared.n))
    flow.ok(client.post("/v1/merchant/products", json={
        "gtin": hostile, "names": _names(text), "category": CATEGORY, "declared_unit": "kilogram",
        "declared_units_per_item": "1"}, headers=flow.owner), 201)
    flow.ok(client.put(f"/v1/merchant/products/{hostile}/inventory", json={"lines": [
        line("production", "measured", "1", "kg", direct_kgco2e="12")]}, headers=flow.owner))
    for code in (plain, hostile):
        flow.certify(code)
    assert flow.public(hostile)["names"] == _names(text)  # stored and returned verbatim

    def page(code: str) -> tuple[str, _Text]:
        response = client.get(f"/01/0{code}", headers={"Accept": "text/html", "Accept-Language": "en"},
                              follow_redirects=True)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/html")
        parsed = _Text()
        parsed.feed(response.text)
        return response.text, parsed

    baseline, base_parsed = page(plain)
    shown, parsed = page(hostile)
    assert parsed.scripts == base_parsed.scripts  # no element came out of the name
    assert text in "".join(parsed.data)  # shown as text, verbatim
    assert "<script>alert" not in shown
    for code in (plain, hostile):
        svg = client.get(f"/v1/products/{code}/label.svg", params={"lang": "en"})
        assert svg.status_code == 200, svg.text
        root = ET.fromstring(svg.content)  # well-formed: nothing broke out of an attribute or element
        assert not [e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "script"]
        assert "<script>alert" not in svg.text
        assert html.unescape("".join(root.itertext())).count("49") <= baseline.count("49") + 10


# --- oversized, deep, huge and duplicate bodies on every body route --------------------------------------

BODY_OPERATIONS = sorted(OPERATIONS)


@pytest.mark.parametrize("operation", BODY_OPERATIONS, ids=lambda op: f"{op[0]} {op[1]}")
def test_bodies_beyond_reason_are_refused_cleanly(shared, operation: tuple[str, str]) -> None:
    method, template = operation
    path = dummy_url(template)
    client = shared.client
    headers = {**shared.everyone, "Content-Type": "application/json"}
    # A shipments batch may be as large as its CSV twin (4 MiB); every other JSON body 1 MiB.
    limit = MAX_CSV_BYTES if template == "/v1/merchant/export-shipments" else shared.settings.max_body_bytes
    cases: dict[str, tuple[bytes, tuple[int, ...]]] = {
        "over the limit": (b'{"x": "' + b"a" * (limit + 1) + b'"}', (413,)),
        "100,000 deep": (b"[" * 100_000 + b"]" * 100_000, (400,)),
        "100,000 deep object": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, (400,)),
        "unclosed 100,000 deep": (b"[" * 100_000, (400,)),
        "huge integer": (b'{"price_cents": ' + b"9" * 5000 + b', "cost_g": ' + b"9" * 5000 + b"}", (400, 422)),
        "huge exponent": (b'{"quantity": 1e999999999, "stock": 1e999999999}', (400, 422)),
        "duplicate keys": (b'{"title": "a", "title": "b", "receipt": "x", "receipt": "y"}', (400, 422)),
        "NaN literal": (b'{"quantity": NaN}', (400,)),
    }
    if operation == ("POST", "/v1/factors/import"):
        # A file: its limit is 32 MiB (test_problems.py), and what does not parse is a 422 naming line 1.
        cases = {name: (content, (422,)) for name, (content, _) in cases.items() if name != "over the limit"}
    wrong = []
    for name, (content, statuses) in cases.items():
        response = client.request(method, path, content=content, headers=headers)
        if response.status_code not in statuses or not response.headers["content-type"].startswith(PROBLEM):
            wrong.append(f"{name}: {response.status_code} {response.headers.get('content-type')} "
                         f"{response.text[:200]}")
    assert not wrong, "\n".join(wrong)


# --- malformed receipts and attestations ------------------------------------------------------------


def _b64json(value: Any) -> str:
    return b64(json.dumps(value).encode())


def _jws_cases(signer) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    """name -> (token, reason) for a receipt-shaped or attestation-shaped signer output."""
    good = signer()
    head, payload, signature = good.split(".")
    header = json.loads(_unb64(head))
    return {
        "truncated": (good[: len(good) // 2], "malformed_jws"),
        "truncated signature": (good[:-4], "malformed_jws|bad_signature"),
        "one segment": (head, "malformed_jws"),
        "four segments": (f"{good}.{signature}", "malformed_jws"),
        "five segments (JWE shape)": (f"{head}..{payload}.{signature}.tag", "malformed_jws"),
        "empty": ("", "malformed_jws"),
        "dots only": ("..", "malformed_jws"),
        "base64 garbage": ("%%%.@@@.$$$", "malformed_jws"),
        "padded base64": (f"{head}==.{payload}.{signature}", "malformed_jws"),
        "header not JSON": (f"{b64(b'{not json')}.{payload}.{signature}", "malformed_jws"),
        "header a JSON array": (f"{_b64json([header])}.{payload}.{signature}", "malformed_jws"),
        "header JSON null": (f"{_b64json(None)}.{payload}.{signature}", "malformed_jws"),
        "payload not JSON": (f"{head}.{b64(b'items=1')}.{signature}", "malformed_jws"),
        "payload JSON string": (f"{head}.{_b64json('claims')}.{signature}", "malformed_jws"),
        "huge kid": (f"{_b64json({**header, 'kid': 'k' * 5000})}.{payload}.{signature}", "malformed_jws"),
        "kid not a string": (f"{_b64json({**header, 'kid': ['a']})}.{payload}.{signature}", "malformed_jws"),
        "b64 false": (f"{_b64json({**header, 'b64': False, 'crit': ['b64']})}.{payload}.{signature}",
                      "malformed_jws"),
        "crit": (f"{_b64json({**header, 'crit': ['exp'], 'exp': 1})}.{payload}.{signature}", "malformed_jws"),
        "alg ES256 on the Ed25519 key": (f"{_b64json({**header, 'alg': 'ES256'})}.{payload}.{signature}",
                                         "unsupported_algorithm"),
        "alg RS256": (f"{_b64json({**header, 'alg': 'RS256'})}.{payload}.{signature}", "unsupported_algorithm"),
        "alg ES256K": (f"{_b64json({**header, 'alg': 'ES256K'})}.{payload}.{signature}", "unsupported_algorithm"),
        "signature of another key": (sign(json.loads(_unb64(payload)), generate_private_jwk("OKP"), header["kid"]),
                                     "bad_signature"),
        "signature of another token": (f"{head}.{payload}.{signer().split('.')[2]}", "bad_signature"),
        "JWS JSON serialisation": (json.dumps({"payload": payload, "protected": head, "signature": signature}),
                                   "malformed_jws"),
        "JWS general JSON serialisation": (json.dumps({"payload": payload, "signatures": [
            {"protected": head, "signature": signature}]}), "malformed_jws"),
        "whitespace around": (f" {good}\n", "malformed_jws"),
        "NUL inside": (f"{head}.\x00{payload}.{signature}", "malformed_jws"),
    }


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


JWS_CASE_NAMES = [
    "truncated", "truncated signature", "one segment", "four segments", "five segments (JWE shape)", "empty",
    "dots only", "base64 garbage", "padded base64", "header not JSON", "header a JSON array", "header JSON null",
    "payload not JSON", "payload JSON string", "huge kid", "kid not a string", "b64 false", "crit",
    "alg ES256 on the Ed25519 key", "alg RS256", "alg ES256K", "signature of another key",
    "signature of another token", "JWS JSON serialisation", "JWS general JSON serialisation",
    "whitespace around", "NUL inside",
]


@pytest.mark.parametrize("kind", ["receipt", "attestation"])
def test_malformed_jws_is_422_with_a_reason_and_credits_nothing(shared, kind: str) -> None:
    flow = shared.flow
    person = flow.consumer(f"jws-{kind}")
    code = flow.labelled(next(shared.n), "12")
    if kind == "receipt":
        signer = flow.register()
        cases = _jws_cases(lambda: signer.receipt([{"gtin": code, "qty": 1}]))
        send = lambda token: flow.client.post("/v1/credits/purchases", json={"receipt": token},  # noqa: E731
                                              headers=person)
    else:
        signer = flow.register(headers=flow.operator, org=OPERATOR)
        trip = trip_body("metro", "10", minutes=30)
        cases = _jws_cases(lambda: signer.attestation(f"jws-{kind}", trip))
        send = lambda token: flow.trip(person, {**trip, "attestation": token})  # noqa: E731
    assert sorted(cases) == sorted(JWS_CASE_NAMES)
    wrong = []
    for name, (token, expected) in cases.items():
        response = send(token)
        body = response.json() if response.headers["content-type"].startswith(("application/json", PROBLEM)) else {}
        # The empty string fails the schema before any JWS is read: a 422 naming the field.
        validation = name == "empty" and [e["field"] for e in body.get("errors") or []] == [kind]
        if response.status_code != 422 or (body.get("reason") not in expected.split("|") and not validation):
            wrong.append(f"{name}: {response.status_code} {body.get('reason')} (expected 422 {expected}) "
                         f"{response.text[:160]}")
    assert not wrong, "\n".join(wrong)
    assert flow.wallet(person)["balance_g"] == 0
    entries = flow.client.get("/v1/wallet/entries", headers=person).json()["items"]
    assert entries == []


def test_uuid_and_path_probes_do_not_leak_existence(shared) -> None:
    # Ids that are not ids: the same 404 (or 422) as a well-formed unknown id, never a 500.
    client, admin = shared.client, shared.everyone
    for probe in ("' OR 1=1 --", "..%2F..%2Fetc%2Fpasswd", "%00", "{{7*7}}", "9" * 300, str(uuid.uuid4()).upper()):
        for path in (f"/v1/labels/{probe}", f"/v1/tenders/{probe}", f"/v1/factors/{probe}",
                     f"/v1/merchant/products/{probe}", f"/01/{probe}", f"/v1/merchant/receipt-keys/{probe}"):
            method = "DELETE" if "receipt-keys" in path else "GET"
            response = client.request(method, path, headers=admin)
            assert response.status_code in (400, 404, 422), (path, response.status_code, response.text[:200])
            assert response.headers["content-type"].startswith(PROBLEM), path


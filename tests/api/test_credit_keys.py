"""Merchants' receipt keys over HTTP: registration (kid = RFC 7638 thumbprint), listing, revocation,
refusals (invalid_jwk, key_already_registered), roles.

Oracles: keys generated with ``cryptography`` and written out as JWKs by hand, thumbprints computed
here with hashlib from RFC 7638 §3 (and RFC 8037 Appendix A.3's published one), never with the
code under test.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, PublicFormat

from tests.api.credit_flow import SHOP, CreditFlow, Signer

KEYS = "/v1/merchant/receipt-keys"
# RFC 8037 Appendix A.2 (public key) and A.3 (its RFC 7638 thumbprint).
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_KID = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def rfc7638(jwk: dict[str, Any]) -> str:
    """RFC 7638 §3: the required members only, lexicographic order, no whitespace, SHA-256."""
    required = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}[jwk["kty"]]
    canonical = "{" + ",".join(f'"{name}":"{jwk[name]}"' for name in sorted(required)) + "}"
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def ed25519_jwk(private: bool = False) -> dict[str, str]:
    key = Ed25519PrivateKey.generate()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))}
    if private:
        jwk["d"] = b64url(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, _no_encryption()))
    return jwk


def p256_jwk(private: bool = False, curve: ec.EllipticCurve | None = None, crv: str = "P-256") -> dict[str, str]:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    size = (key.curve.key_size + 7) // 8
    jwk = {"kty": "EC", "crv": crv, "x": b64url(numbers.x.to_bytes(size, "big")),
           "y": b64url(numbers.y.to_bytes(size, "big"))}
    if private:
        jwk["d"] = b64url(key.private_numbers().private_value.to_bytes(size, "big"))
    return jwk


def _no_encryption():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import NoEncryption

    return NoEncryption()


@pytest.fixture
def flow(client, auth) -> CreditFlow:
    return CreditFlow(client, auth)


def reason(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()["reason"]


def register(flow: CreditFlow, jwk: dict[str, Any], headers: dict[str, str] | None = None):
    return flow.client.post(KEYS, json={"jwk": jwk}, headers=headers or flow.shop)


def list_all(flow: CreditFlow, headers: dict[str, str], limit: int) -> tuple[list[dict[str, Any]], int]:
    """Every key, page by page: (keys, pages)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = flow.ok(flow.client.get(KEYS, params=params, headers=headers))
        pages += 1
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages
        assert pages < 20, "the cursor does not advance"


def items_receipt(signer: Signer, **kwargs: Any) -> str:
    return signer.receipt([{"gtin": "6901234567892", "qty": 1}], **kwargs)


# --- registration -------------------------------------------------------------------------------

def test_the_rfc_8037_key_gets_its_published_thumbprint_as_kid(flow: CreditFlow) -> None:
    out = flow.ok(register(flow, {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}), 201)
    assert out["kid"] == RFC8037_KID
    assert rfc7638({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}) == RFC8037_KID  # the oracle itself


@pytest.mark.parametrize("make", [ed25519_jwk, p256_jwk], ids=["OKP-Ed25519", "EC-P-256"])
def test_register_answers_201_with_the_rfc_7638_thumbprint(flow: CreditFlow, make) -> None:
    jwk = make()
    out = flow.ok(register(flow, jwk), 201)
    assert out["kid"] == rfc7638(jwk)
    assert (out["org"], out["kty"], out["revoked_at"]) == (SHOP, jwk["kty"], None)
    assert out["jwk"] == jwk
    listed = flow.ok(flow.client.get(KEYS, headers=flow.shop))["items"]
    assert [k["kid"] for k in listed] == [rfc7638(jwk)]


@pytest.mark.parametrize("make,alg", [(ed25519_jwk, "EdDSA"), (ed25519_jwk, "Ed25519"), (p256_jwk, "ES256")])
def test_optional_members_do_not_change_the_kid_and_are_not_kept(flow: CreditFlow, make, alg: str) -> None:
    jwk = make()
    out = flow.ok(register(flow, {**jwk, "kid": "my-pos-1", "alg": alg, "use": "sig", "key_ops": ["verify"]}), 201)
    assert out["kid"] == rfc7638(jwk)  # the thumbprint, not the kid the merchant chose
    assert out["jwk"] == jwk


def test_the_same_key_again_by_its_owner_is_the_same_registration(flow: CreditFlow) -> None:
    jwk = ed25519_jwk()
    first = flow.ok(register(flow, jwk), 201)
    again = flow.ok(register(flow, dict(reversed(list(jwk.items())))), 201)
    assert again["kid"] == first["kid"]
    assert again["created_at"] == first["created_at"]
    items, _ = list_all(flow, flow.shop, 10)
    assert [k["kid"] for k in items] == [first["kid"]]


@pytest.mark.parametrize("make", [ed25519_jwk, p256_jwk], ids=["OKP", "EC"])
def test_the_same_key_by_another_organisation_is_a_409(flow: CreditFlow, make) -> None:
    jwk = make()
    flow.ok(register(flow, jwk), 201)
    assert reason(register(flow, jwk, flow.rival), 409) == "key_already_registered"
    # Also spelled with extra members: the thumbprint decides, not the JSON.
    assert reason(register(flow, {**jwk, "kid": "rival-pos"}, flow.rival), 409) == "key_already_registered"
    assert flow.ok(flow.client.get(KEYS, headers=flow.rival))["items"] == []
    shop_keys = flow.ok(flow.client.get(KEYS, headers=flow.shop))["items"]
    assert [(k["kid"], k["org"]) for k in shop_keys] == [(rfc7638(jwk), SHOP)]


def test_a_revoked_key_cannot_be_registered_again(flow: CreditFlow) -> None:
    jwk = ed25519_jwk()
    kid = flow.ok(register(flow, jwk), 201)["kid"]
    assert flow.client.delete(f"{KEYS}/{kid}", headers=flow.shop).status_code == 204
    assert reason(register(flow, jwk), 409) == "key_already_registered"
    assert reason(register(flow, jwk, flow.rival), 409) == "key_already_registered"


def _tamper_y(jwk: dict[str, str]) -> dict[str, str]:
    y = bytearray(base64.urlsafe_b64decode(jwk["y"] + "=="))
    y[-1] ^= 1
    return {**jwk, "y": b64url(bytes(y))}


def _rsa_jwk() -> dict[str, str]:
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_numbers()
    return {"kty": "RSA", "n": b64url(numbers.n.to_bytes(256, "big")), "e": "AQAB"}


INVALID_JWKS = {
    "private OKP": lambda: ed25519_jwk(private=True),
    "private EC": lambda: p256_jwk(private=True),
    "X25519 (key agreement)": lambda: {"kty": "OKP", "crv": "X25519", "x": b64url(
        X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))},
    "Ed448": lambda: {"kty": "OKP", "crv": "Ed448", "x": b64url(
        Ed448PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))},
    "EC P-384": lambda: p256_jwk(curve=ec.SECP384R1(), crv="P-384"),
    "EC secp256k1": lambda: p256_jwk(curve=ec.SECP256K1(), crv="secp256k1"),
    "P-256 coordinates labelled secp256k1": lambda: {**p256_jwk(), "crv": "secp256k1"},
    "EC point off the curve": lambda: _tamper_y(p256_jwk()),
    "EC without y": lambda: {k: v for k, v in p256_jwk().items() if k != "y"},
    "RSA": _rsa_jwk,
    "oct (a shared secret)": lambda: {"kty": "oct", "k": b64url(b"s" * 32)},
    "use enc": lambda: {**ed25519_jwk(), "use": "enc"},
    "alg ES256 on an OKP key": lambda: {**ed25519_jwk(), "alg": "ES256"},
    "empty": dict,
}


def test_anything_but_a_public_ed25519_or_p256_key_is_invalid_jwk(flow: CreditFlow) -> None:
    outcomes = {}
    for name, make in INVALID_JWKS.items():
        response = register(flow, make())
        body = response.json()
        outcomes[name] = (response.status_code, body.get("reason"), [e["field"] for e in body.get("errors") or []])
    assert outcomes == {name: (422, "invalid_jwk", ["jwk"]) for name in INVALID_JWKS}
    assert flow.ok(flow.client.get(KEYS, headers=flow.shop))["items"] == []


def test_a_private_jwk_is_refused_even_though_its_public_part_is_fine(flow: CreditFlow) -> None:
    private = ed25519_jwk(private=True)
    assert reason(register(flow, private), 422) == "invalid_jwk"
    public = {k: v for k, v in private.items() if k != "d"}
    assert flow.ok(register(flow, public), 201)["kid"] == rfc7638(public)


# --- listing ------------------------------------------------------------------------------------

def test_the_list_holds_only_your_organisations_keys_oldest_first_in_pages(flow: CreditFlow) -> None:
    shop = [flow.ok(register(flow, (ed25519_jwk if i % 2 else p256_jwk)()), 201)["kid"] for i in range(5)]
    rival = [flow.ok(register(flow, ed25519_jwk(), flow.rival), 201)["kid"] for _ in range(2)]
    items, pages = list_all(flow, flow.shop, 2)
    assert pages == 3
    assert [k["kid"] for k in items] == shop  # registration order: oldest first
    assert all(k["org"] == SHOP for k in items)
    items, pages = list_all(flow, flow.rival, 100)
    assert ([k["kid"] for k in items], pages) == (rival, 1)
    # Another merchant of the same organisation sees the organisation's keys.
    colleague = flow.auth("merchant", org=SHOP, sub="sue")
    assert [k["kid"] for k in list_all(flow, colleague, 3)[0]] == shop


def test_a_bad_cursor_is_a_client_error(flow: CreditFlow) -> None:
    flow.ok(register(flow, ed25519_jwk()), 201)
    response = flow.client.get(KEYS, params={"cursor": "not-a-cursor"}, headers=flow.shop)
    assert 400 <= response.status_code < 500 and response.status_code != 404, response.text


# --- revocation ---------------------------------------------------------------------------------

def test_revoke_is_204_and_receipts_signed_with_it_are_then_refused(flow: CreditFlow) -> None:
    signer = flow.register()
    other = flow.register()
    person = flow.consumer("pat")
    signed_before = items_receipt(signer)
    assert flow.client.delete(f"{KEYS}/{signer.kid}", headers=flow.shop).status_code == 204
    listed = {k["kid"]: k for k in flow.ok(flow.client.get(KEYS, headers=flow.shop))["items"]}
    assert listed[signer.kid]["revoked_at"] is not None
    assert listed[other.kid]["revoked_at"] is None
    # Signed before or after the revocation: both refused.
    for receipt in (signed_before, items_receipt(signer)):
        assert reason(flow.claim(person, receipt), 422) == "key_revoked"
    assert flow.claim(person, items_receipt(other)).status_code == 201  # the other key still signs
    # Revoking again changes nothing.
    assert flow.client.delete(f"{KEYS}/{signer.kid}", headers=flow.shop).status_code == 204
    again = {k["kid"]: k for k in flow.ok(flow.client.get(KEYS, headers=flow.shop))["items"]}
    assert again[signer.kid]["revoked_at"] == listed[signer.kid]["revoked_at"]


def test_a_colleague_in_the_same_organisation_may_revoke(flow: CreditFlow) -> None:
    signer = flow.register()
    colleague = flow.auth("merchant", org=SHOP, sub="sue")
    assert flow.client.delete(f"{KEYS}/{signer.kid}", headers=colleague).status_code == 204
    assert reason(flow.claim(flow.consumer("pat"), items_receipt(signer)), 422) == "key_revoked"


def test_another_merchants_key_is_a_404_and_stays_in_force(flow: CreditFlow) -> None:
    signer = flow.register()
    response = flow.client.delete(f"{KEYS}/{signer.kid}", headers=flow.rival)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    unknown = flow.client.delete(f"{KEYS}/{rfc7638(ed25519_jwk())}", headers=flow.rival)
    assert unknown.status_code == 404
    # Same answer for someone else's key and for no key at all: nothing to learn from probing.
    assert response.json()["title"] == unknown.json()["title"]
    assert flow.ok(flow.client.get(KEYS, headers=flow.shop))["items"][0]["revoked_at"] is None
    assert flow.claim(flow.consumer("pat"), items_receipt(signer)).status_code == 201


# --- who may ------------------------------------------------------------------------------------

def test_a_consumer_may_not_touch_receipt_keys(flow: CreditFlow) -> None:
    signer = flow.register()
    person = flow.consumer("pat")
    assert register(flow, ed25519_jwk(), person).status_code == 403
    assert flow.client.get(KEYS, headers=person).status_code == 403
    assert flow.client.delete(f"{KEYS}/{signer.kid}", headers=person).status_code == 403
    for role in ("verifier", "officer"):
        assert register(flow, ed25519_jwk(), flow.auth(role, org=SHOP, sub="v")).status_code == 403
    assert flow.ok(flow.client.get(KEYS, headers=flow.shop))["items"][0]["revoked_at"] is None


def test_a_merchant_token_without_an_organisation_registers_nothing_and_sees_nothing(flow: CreditFlow) -> None:
    signer = flow.register()
    orgless = flow.auth("merchant", sub="nobody")
    assert reason(register(flow, ed25519_jwk(), orgless), 403) == "no_organisation"
    assert flow.ok(flow.client.get(KEYS, headers=orgless))["items"] == []
    assert flow.client.delete(f"{KEYS}/{signer.kid}", headers=orgless).status_code == 404
    assert flow.ok(flow.client.get(KEYS, headers=flow.shop))["items"][0]["revoked_at"] is None


def test_no_token_is_a_401(flow: CreditFlow) -> None:
    signer = flow.register()
    assert flow.client.post(KEYS, json={"jwk": ed25519_jwk()}).status_code == 401
    assert flow.client.get(KEYS).status_code == 401
    assert flow.client.delete(f"{KEYS}/{signer.kid}").status_code == 401
    bad = {"Authorization": "Bearer not.a.token"}
    assert flow.client.post(KEYS, json={"jwk": ed25519_jwk()}, headers=bad).status_code == 401
    assert flow.ok(flow.client.get(KEYS, headers=flow.shop))["items"][0]["revoked_at"] is None


def test_a_hand_built_private_jwk_signs_receipts_for_its_registered_kid(flow: CreditFlow) -> None:
    """The kid computed here is the one receipts must carry: a receipt signed by a key built with
    cryptography, under the hashlib thumbprint, is accepted."""
    private = ed25519_jwk(private=True)
    public = {k: v for k, v in private.items() if k != "d"}
    flow.ok(register(flow, public), 201)
    signer = Signer(SHOP, private, rfc7638(public))
    assert flow.claim(flow.consumer("pat"), items_receipt(signer)).status_code == 201

"""Receipt / attestation signatures (``carbonpuhui.credits.signing``) without HTTP.

Oracles independent of the code under test: tokens signed with ``cryptography`` directly and
assembled by hand, the RFC 8037 Appendix A key and its published RFC 7638 thumbprint, RFC 7638
thumbprints computed from the spec's rules, forged tokens (alg none, HMAC keyed with the public
key, RSA), and OpenSSL itself showing that small-order Ed25519 keys admit forgeries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonpuhui.credits.signing import (
    ALGORITHMS,
    RegisteredKey,
    Unverified,
    generate_private_jwk,
    peek,
    register_jwk,
    sign,
    thumbprint,
    verify,
)
from carbonpuhui.errors import UnprocessableError

FIELD = "receipt"
CLAIMS: dict[str, Any] = {"iss": "org_merchant_1", "jti": "r-0001", "iat": 1_760_000_000,
                          "items": [{"gtin": "06901234567892", "qty": 2}]}

# RFC 8037 Appendix A.1 / A.2 / A.3 / A.4.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_JWS = ("eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
               "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")

# Field primes, from the curves' definitions (RFC 7748 §4.1, SEC 2 §2.4.2).
P25519 = 2**255 - 19
P256 = 2**256 - 2**224 + 2**192 + 2**96 - 1
P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B


# --- helpers -------------------------------------------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value).encode())


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def by_hand(header: dict[str, Any], payload: Any, signer: Callable[[bytes], bytes]) -> str:
    """A compact JWS assembled without joserfc."""
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    return f"{signing_input}.{b64(signer(signing_input.encode()))}"


def public_of(private_jwk: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in private_jwk.items() if name != "d"}


def ed25519_jwk(sk: Ed25519PrivateKey) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": b64(sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))}


def ec_jwk(numbers: ec.EllipticCurvePublicNumbers, crv: str = "P-256", size: int = 32) -> dict[str, str]:
    return {"kty": "EC", "crv": crv, "x": b64(numbers.x.to_bytes(size, "big")),
            "y": b64(numbers.y.to_bytes(size, "big"))}


def es256_raw(sk: ec.EllipticCurvePrivateKey) -> Callable[[bytes], bytes]:
    def signer(data: bytes) -> bytes:
        r, s = decode_dss_signature(sk.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS wants r || s, not DER
    return signer


def refused(reason: str, call: Callable[..., object], *args: object, field: str = FIELD) -> UnprocessableError:
    with pytest.raises(UnprocessableError) as info:
        call(*args)
    exc = info.value
    assert exc.reason == reason, (exc.reason, str(exc))
    assert exc.status_code == 422
    assert exc.errors and [e.field for e in exc.errors] == [field]
    assert all(e.message for e in exc.errors)
    return exc


def new_key(kty: str) -> tuple[dict[str, str], RegisteredKey]:
    private = generate_private_jwk(kty)
    return private, register_jwk(public_of(private))


OKP_KEY = new_key("OKP")[1]
EC_KEY = new_key("EC")[1]


@pytest.fixture(scope="module")
def okp() -> tuple[dict[str, str], RegisteredKey]:
    return new_key("OKP")


@pytest.fixture(scope="module")
def ec_key() -> tuple[dict[str, str], RegisteredKey]:
    return new_key("EC")


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kty", "alg"), [("OKP", "EdDSA"), ("OKP", "Ed25519"), ("EC", "ES256"),
                                          ("OKP", None), ("EC", None)])
def test_round_trip(kty: str, alg: str | None) -> None:
    private, key = new_key(kty)
    assert key.kty == kty
    token = sign(CLAIMS, private, key.kid, alg)
    header = json.loads(unb64(token.split(".")[0]))
    assert header == {"alg": alg or {"OKP": "EdDSA", "EC": "ES256"}[kty], "kid": key.kid}
    seen = peek(token, FIELD)
    assert isinstance(seen, Unverified)
    assert (seen.kid, seen.alg, seen.claims, seen.header) == (key.kid, header["alg"], CLAIMS, header)
    assert verify(token, key, FIELD) == CLAIMS


def test_the_deprecated_eddsa_name_raises_no_warning(okp: tuple[dict[str, str], RegisteredKey]) -> None:
    private, key = okp
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert verify(sign(CLAIMS, private, key.kid, "EdDSA"), key, FIELD) == CLAIMS
    assert caught == []


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519"])
def test_an_ed25519_token_signed_by_cryptography_verifies(alg: str) -> None:
    sk = Ed25519PrivateKey.generate()
    key = register_jwk(ed25519_jwk(sk))
    token = by_hand({"alg": alg, "kid": key.kid}, CLAIMS, sk.sign)
    assert verify(token, key, FIELD) == CLAIMS


def test_an_es256_token_signed_by_cryptography_verifies() -> None:
    sk = ec.generate_private_key(ec.SECP256R1())
    key = register_jwk(ec_jwk(sk.public_key().public_numbers()))
    token = by_hand({"alg": "ES256", "kid": key.kid, "typ": "JWT"}, CLAIMS, es256_raw(sk))
    assert verify(token, key, FIELD) == CLAIMS


def test_an_es256_signature_in_der_form_does_not_verify() -> None:
    # A common point-of-sale mistake: ECDSA's DER output instead of the JWS r || s.
    sk = ec.generate_private_key(ec.SECP256R1())
    key = register_jwk(ec_jwk(sk.public_key().public_numbers()))
    token = by_hand({"alg": "ES256", "kid": key.kid}, CLAIMS, lambda data: sk.sign(data, ec.ECDSA(hashes.SHA256())))
    refused("bad_signature", verify, token, key, FIELD)


def test_sign_makes_the_rfc8032_signature_over_header_and_payload() -> None:
    # Ed25519 is deterministic: cryptography, given RFC 8037's private key, must produce the same bytes.
    token = sign(CLAIMS, {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "d": RFC8037_D}, RFC8037_THUMBPRINT)
    header, payload, signature = token.split(".")
    expected = Ed25519PrivateKey.from_private_bytes(unb64(RFC8037_D)).sign(f"{header}.{payload}".encode())
    assert unb64(signature) == expected
    assert json.loads(unb64(payload)) == CLAIMS


# --- tampering -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kty", ["OKP", "EC"])
def test_tampered_tokens_do_not_verify(kty: str) -> None:
    private, key = new_key(kty)
    header, payload, signature = sign(CLAIMS, private, key.kid).split(".")
    more = b64json({**CLAIMS, "items": [{"gtin": "06901234567892", "qty": 20}]})
    refused("bad_signature", verify, f"{header}.{more}.{signature}", key, FIELD)
    # The same alg and kid, respelled: still a different signing input.
    alg = json.loads(unb64(header))["alg"]
    refused("bad_signature", verify, f"{b64json({'kid': key.kid, 'alg': alg})}.{payload}.{signature}", key, FIELD)
    refused("bad_signature", verify, f"{b64json({'alg': alg, 'kid': key.kid, 'typ': 'JWT'})}.{payload}.{signature}",
            key, FIELD)
    raw = bytearray(unb64(signature))
    for index in (0, len(raw) // 2, len(raw) - 1):
        flipped = raw.copy()
        flipped[index] ^= 0x01
        refused("bad_signature", verify, f"{header}.{payload}.{b64(bytes(flipped))}", key, FIELD)
    refused("bad_signature", verify, f"{header}.{payload}.{b64(bytes(raw[:-1]))}", key, FIELD)
    refused("bad_signature", verify, f"{header}.{payload}.", key, FIELD)


@pytest.mark.parametrize("kty", ["OKP", "EC"])
def test_a_token_signed_by_another_key_does_not_verify(kty: str) -> None:
    _, key = new_key(kty)
    other, _ = new_key(kty)
    exc = refused("bad_signature", verify, sign(CLAIMS, other, key.kid), key, FIELD)
    assert key.kid in str(exc) and FIELD in str(exc)


def test_the_kid_must_name_the_key_given(okp: tuple[dict[str, str], RegisteredKey]) -> None:
    private, key = okp
    refused("bad_signature", verify, sign(CLAIMS, private, "some-other-kid"), key, FIELD)


# --- algorithms that are never accepted ---------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS256", "HS512", "RS256", "PS256", "ES384", "ES512",
                                 "ES256K", "Ed448", "eddsa", "es256", ""])
def test_unaccepted_algs_are_refused_before_any_key_lookup(alg: str) -> None:
    token = f"{b64json({'alg': alg, 'kid': 'k1'})}.{b64json(CLAIMS)}.{b64(b'x' * 64)}"
    exc = refused("unsupported_algorithm", peek, token, FIELD)
    assert alg in str(exc)


@pytest.mark.parametrize("kty", ["OKP", "EC"])
def test_alg_none_is_refused(kty: str) -> None:
    _, key = new_key(kty)
    for signature in ("", b64(b"\0" * 64)):
        token = f"{b64json({'alg': 'none', 'kid': key.kid})}.{b64json(CLAIMS)}.{signature}"
        refused("unsupported_algorithm", peek, token, FIELD)
        refused("unsupported_algorithm", verify, token, key, FIELD)
    refused("unsupported_algorithm", peek, f"{b64json({'alg': 'none'})}.{b64json(CLAIMS)}.", FIELD)


@pytest.mark.parametrize("kty", ["OKP", "EC"])
def test_hmac_keyed_with_the_public_key_is_refused(kty: str) -> None:
    # The classic confusion attack: the public key (as bytes, as its JWK text) used as an HMAC secret.
    _, key = new_key(kty)
    secrets = [unb64(key.jwk["x"]), key.jwk["x"].encode(), json.dumps(key.jwk).encode(),
               json.dumps(key.jwk, separators=(",", ":"), sort_keys=True).encode()]
    for secret in secrets:
        for alg, digest in (("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)):
            token = by_hand({"alg": alg, "kid": key.kid}, CLAIMS,
                            lambda data, s=secret, d=digest: hmac.new(s, data, d).digest())
            refused("unsupported_algorithm", peek, token, FIELD)
            refused("unsupported_algorithm", verify, token, key, FIELD)


def test_rs256_is_refused(okp: tuple[dict[str, str], RegisteredKey]) -> None:
    _, key = okp
    sk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = by_hand({"alg": "RS256", "kid": key.kid}, CLAIMS,
                    lambda data: sk.sign(data, padding.PKCS1v15(), hashes.SHA256()))
    refused("unsupported_algorithm", peek, token, FIELD)
    refused("unsupported_algorithm", verify, token, key, FIELD)


def test_the_alg_must_fit_the_key_type(okp: tuple[dict[str, str], RegisteredKey],
                                       ec_key: tuple[dict[str, str], RegisteredKey]) -> None:
    (okp_private, okp_key), (ec_private, ec_registered) = okp, ec_key
    es256_for_okp = sign(CLAIMS, ec_private, okp_key.kid)  # ES256, naming the OKP key
    assert peek(es256_for_okp, FIELD).alg == "ES256"  # fine in itself
    exc = refused("unsupported_algorithm", verify, es256_for_okp, okp_key, FIELD)
    assert "ES256" in str(exc) and okp_key.kid in str(exc)
    for alg in ALGORITHMS["OKP"]:
        refused("unsupported_algorithm", verify, sign(CLAIMS, okp_private, ec_registered.kid, alg),
                ec_registered, FIELD)


def test_sign_refuses_an_alg_that_does_not_fit(okp: tuple[dict[str, str], RegisteredKey]) -> None:
    private, key = okp
    with pytest.raises(ValueError):
        sign(CLAIMS, private, key.kid, "ES256")
    with pytest.raises(ValueError):
        sign(CLAIMS, public_of(private), key.kid)  # no private key
    with pytest.raises(ValueError):
        generate_private_jwk("RSA")


# --- peek: malformed tokens ---------------------------------------------------------------------


GOOD_HEADER = b64json({"alg": "EdDSA", "kid": "k1"})
GOOD_PAYLOAD = b64json(CLAIMS)
SIG = b64(b"s" * 64)
DUPLICATE_KID = b64(b'{"alg":"EdDSA","kid":"k1","kid":"k2"}')
DUPLICATE_JTI = b64(b'{"jti":"a","jti":"b"}')
NAN = b64(b'{"qty":NaN}')
LONE_SURROGATE = b64(b'{"iss":"\\ud800"}')
NOT_UTF8 = b64(b'{"iss":"\xff"}')


@pytest.mark.parametrize("token", [
    None, 123, b"abc.def.ghi", ["a", "b", "c"], {"jws": "x"},
    "", ".", "..", "a.b", "a.b.c.d", f"{GOOD_HEADER}.{GOOD_PAYLOAD}", f"{GOOD_HEADER}.{GOOD_PAYLOAD}.{SIG}.",
    f"{GOOD_HEADER}=.{GOOD_PAYLOAD}.{SIG}",  # padding
    f"{GOOD_HEADER}.{GOOD_PAYLOAD}.{SIG}=",
    f"{GOOD_HEADER[:-1]}+.{GOOD_PAYLOAD}.{SIG}",  # base64, not base64url
    f"{GOOD_HEADER}.{GOOD_PAYLOAD}.{SIG[:-1]}/",
    f" {GOOD_HEADER}.{GOOD_PAYLOAD}.{SIG}", f"{GOOD_HEADER}.{GOOD_PAYLOAD}.{SIG}\n",
    f"{GOOD_HEADER}.{GOOD_PAYLOAD}.{SIG}é",
    f"{GOOD_HEADER}.{GOOD_PAYLOAD}.A",  # impossible length
    f"{GOOD_HEADER}.{GOOD_PAYLOAD}.AB",  # non-canonical trailing bits ("AA" is canonical)
    f"{b64(b'not json')}.{GOOD_PAYLOAD}.{SIG}",
    f"{b64json(['alg', 'EdDSA'])}.{GOOD_PAYLOAD}.{SIG}",
    f"{b64json('EdDSA')}.{GOOD_PAYLOAD}.{SIG}",
    f"{DUPLICATE_KID}.{GOOD_PAYLOAD}.{SIG}",
    f"{b64json({'kid': 'k1'})}.{GOOD_PAYLOAD}.{SIG}",  # no alg
    f"{b64json({'alg': ['EdDSA'], 'kid': 'k1'})}.{GOOD_PAYLOAD}.{SIG}",
    f"{b64json({'alg': 'EdDSA'})}.{GOOD_PAYLOAD}.{SIG}",  # no kid
    f"{b64json({'alg': 'EdDSA', 'kid': 7})}.{GOOD_PAYLOAD}.{SIG}",
    f"{b64json({'alg': 'EdDSA', 'kid': None})}.{GOOD_PAYLOAD}.{SIG}",
    f"{b64json({'alg': 'EdDSA', 'kid': ''})}.{GOOD_PAYLOAD}.{SIG}",
    f"{b64json({'alg': 'EdDSA', 'kid': 'k' * 300})}.{GOOD_PAYLOAD}.{SIG}",
    f"{b64json({'alg': 'EdDSA', 'kid': 'k1', 'crit': ['exp']})}.{GOOD_PAYLOAD}.{SIG}",
    f"{b64json({'alg': 'EdDSA', 'kid': 'k1', 'crit': []})}.{GOOD_PAYLOAD}.{SIG}",
    f"{b64json({'alg': 'EdDSA', 'kid': 'k1', 'b64': False, 'crit': ['b64']})}.{GOOD_PAYLOAD}.{SIG}",
    f"{b64json({'alg': 'EdDSA', 'kid': 'k1', 'b64': False})}.{GOOD_PAYLOAD}.{SIG}",
    f"{b64json({'alg': 'EdDSA', 'kid': 'k1', 'b64': 'true'})}.{GOOD_PAYLOAD}.{SIG}",
    f"{GOOD_HEADER}..{SIG}",  # detached payload
    f"{GOOD_HEADER}.{b64(b'hello')}.{SIG}",
    f"{GOOD_HEADER}.{b64json([CLAIMS])}.{SIG}",
    f"{GOOD_HEADER}.{b64json('claims')}.{SIG}",
    f"{GOOD_HEADER}.{b64json(None)}.{SIG}",
    f"{GOOD_HEADER}.{DUPLICATE_JTI}.{SIG}",
    f"{GOOD_HEADER}.{NAN}.{SIG}",
    f"{GOOD_HEADER}.{LONE_SURROGATE}.{SIG}",
    f"{GOOD_HEADER}.{b64(json.dumps(CLAIMS).encode('utf-16'))}.{SIG}",
    f"{GOOD_HEADER}.{NOT_UTF8}.{SIG}",
    f"{GOOD_HEADER}.{b64(b'[' * 5000 + b']' * 5000)}.{SIG}",
    f"{GOOD_HEADER}.{b64json({'blob': 'x' * 13_000})}.{SIG}",  # over 16 KiB
    f"{b64json({'alg': 'EdDSA', 'kid': 'k1', 'pad': 'x' * 1000})}.{GOOD_PAYLOAD}.{SIG}",  # header over 1 KiB
    f"{GOOD_HEADER}.{GOOD_PAYLOAD}.{b64(b'x' * 800)}",  # signature segment over 1 KiB
])
def test_malformed_tokens_are_refused(token: object) -> None:
    exc = refused("malformed_jws", peek, token, FIELD)
    assert FIELD in str(exc)


def test_the_size_limit_is_16_kib() -> None:
    def token(pad: int) -> str:
        return f"{GOOD_HEADER}.{b64json({**CLAIMS, 'pad': 'x' * pad})}.{SIG}"

    pad = 12_000
    while len(token(pad + 1)) <= 16 * 1024:
        pad += 1
    assert len(token(pad)) <= 16 * 1024 < len(token(pad + 1))
    assert peek(token(pad), FIELD).claims["pad"] == "x" * pad
    refused("malformed_jws", peek, token(pad + 1), FIELD)


def test_peek_reads_iss_and_kid_but_trusts_nothing() -> None:
    token = f"{b64json({'alg': 'ES256', 'kid': 'abc', 'typ': 'JWT', 'b64': True})}.{b64json(CLAIMS)}.{SIG}"
    seen = peek(token, "attestation")
    assert (seen.kid, seen.alg, seen.claims["iss"]) == ("abc", "ES256", "org_merchant_1")
    refused("malformed_jws", peek, 42, "attestation", field="attestation")


def test_a_token_is_verified_whole_with_joserfc_too() -> None:
    # The RFC 8037 A.4 token is valid JWS but has no kid and a non-JSON payload: not a receipt.
    refused("malformed_jws", peek, RFC8037_JWS, FIELD)
    key = register_jwk({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X})
    refused("malformed_jws", verify, RFC8037_JWS, key, FIELD)


# --- registering keys ---------------------------------------------------------------------------


def test_rfc8037_thumbprint_is_the_kid() -> None:
    key = register_jwk({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X})
    assert key.kid == RFC8037_THUMBPRINT
    assert key == RegisteredKey(kid=RFC8037_THUMBPRINT, kty="OKP",
                                jwk={"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X})
    assert thumbprint({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "d": RFC8037_D}) == RFC8037_THUMBPRINT
    # The registered x is the RFC's public key: it checks the RFC's own signature.
    header, payload, signature = RFC8037_JWS.split(".")
    Ed25519PublicKey.from_public_bytes(unb64(key.jwk["x"])).verify(unb64(signature), f"{header}.{payload}".encode())


def test_ec_thumbprint_follows_rfc7638() -> None:
    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    jwk = ec_jwk(numbers)
    # RFC 7638 §3: required members only, lexicographic order, no whitespace, SHA-256, base64url.
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{jwk["x"]}","y":"{jwk["y"]}"}}'
    expected = b64(hashlib.sha256(canonical.encode()).digest())
    key = register_jwk({**jwk, "kid": "pos-7", "alg": "ES256", "use": "sig", "key_ops": ["verify"], "ext": True})
    assert key.kid == expected
    assert key.jwk == {"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]}  # kid/alg/use/... stripped


def test_metadata_is_stripped_and_the_kid_ignores_it() -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    for extra in ({"kid": "till-3"}, {"alg": "EdDSA"}, {"alg": "Ed25519"}, {"use": "sig"},
                  {"key_ops": ["verify"]}, {"x5t#S256": "abc"}, {"ext": True}):
        key = register_jwk({**jwk, **extra})
        assert (key.kid, key.jwk) == (RFC8037_THUMBPRINT, jwk)


@pytest.mark.parametrize("extra", [{"use": "enc"}, {"alg": "ES256"}, {"alg": "ECDH-ES"}, {"alg": "HS256"},
                                   {"key_ops": ["encrypt"]}, {"key_ops": ["sign"]}, {"key_ops": "verify"},
                                   {"key_ops": [1]}])
def test_a_key_meant_for_something_else_is_refused(extra: dict[str, Any]) -> None:
    refused("invalid_jwk", register_jwk, {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, **extra}, field="jwk")


@pytest.mark.parametrize("kty", ["OKP", "EC"])
def test_a_private_jwk_is_refused_without_echoing_it(kty: str) -> None:
    private = generate_private_jwk(kty)
    exc = refused("invalid_jwk", register_jwk, private, field="jwk")
    assert "private" in exc.errors[0].message  # type: ignore[index]
    assert private["d"] not in repr(exc.__dict__) and private["d"] not in str(exc)


def _x_of(public_key: Any) -> str:
    return b64(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def _refused_keys() -> list[tuple[str, Any]]:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    k256 = ec.generate_private_key(ec.SECP256K1()).public_key().public_numbers()
    rsa_numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_numbers()
    good_x = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    p256 = ec_jwk(ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers())
    return [
        ("X25519", {"kty": "OKP", "crv": "X25519", "x": _x_of(X25519PrivateKey.generate().public_key())}),
        ("Ed448", {"kty": "OKP", "crv": "Ed448", "x": _x_of(Ed448PrivateKey.generate().public_key())}),
        ("P-384", ec_jwk(p384, "P-384", 48)),
        ("P-384 named P-256", ec_jwk(p384, "P-256", 48)),
        ("secp256k1", ec_jwk(k256, "secp256k1")),
        ("secp256k1 named P-256", ec_jwk(k256)),  # same sizes; not on P-256
        ("oct", {"kty": "oct", "k": b64(b"a shared secret, 32 bytes long!!")}),
        ("RSA", {"kty": "RSA", "n": b64(rsa_numbers.n.to_bytes(256, "big")), "e": "AQAB"}),
        ("OKP with EC crv", {**good_x, "crv": "P-256"}),
        ("EC with OKP crv", {**p256, "crv": "Ed25519"}),
        ("no kty", {"crv": "Ed25519", "x": RFC8037_X}),
        ("kty not a string", {**good_x, "kty": ["OKP"]}),
        ("lower-case kty", {**good_x, "kty": "okp"}),
        ("no x", {"kty": "OKP", "crv": "Ed25519"}),
        ("x not a string", {**good_x, "x": 12345}),
        ("x padded", {**good_x, "x": RFC8037_X + "="}),
        ("x in base64", {**good_x, "x": base64.b64encode(unb64(RFC8037_X)).decode()}),
        ("x too short", {**good_x, "x": b64(unb64(RFC8037_X)[:31])}),
        ("x too long", {**good_x, "x": b64(unb64(RFC8037_X) + b"\0")}),
        ("x non-canonical base64url", {**good_x, "x": RFC8037_X[:-1] + "p"}),  # 'o' -> 'p' changes only padding bits
        ("EC without y", {k: v for k, v in p256.items() if k != "y"}),
        ("EC short y", {**p256, "y": b64(unb64(p256["y"])[1:])}),
        ("EC y off the curve", {**p256, "y": b64(((int.from_bytes(unb64(p256["y"]), "big") + 1) % P256)
                                                  .to_bytes(32, "big"))}),
        ("EC at zero", {**p256, "x": b64(bytes(32)), "y": b64(bytes(32))}),
        ("with d", {**good_x, "d": RFC8037_D}),
        ("with d null", {**good_x, "d": None}),
        ("with RSA private members", {**good_x, "p": "AQAB"}),
        ("not a dict", [good_x]),
        ("a string", json.dumps(good_x)),
        ("None", None),
        ("non-string member names", {**good_x, 1: "one"}),
        ("oversize value", {**good_x, "kid": "k" * 5000}),
        ("too many members", {**good_x, **{f"m{i}": "v" for i in range(500)}}),
        ("oversize x", {**good_x, "x": "A" * 100_000}),
    ]


REFUSED_KEYS = _refused_keys()


@pytest.mark.parametrize(("name", "jwk"), REFUSED_KEYS, ids=[name for name, _ in REFUSED_KEYS])
def test_keys_other_than_public_ed25519_or_p256_are_refused(name: str, jwk: Any) -> None:
    refused("invalid_jwk", register_jwk, jwk, field="jwk")


def _p256_point_with_small_x() -> tuple[int, int]:
    """A P-256 point whose x is small enough that x + p still fits in 32 bytes (p ≡ 3 mod 4)."""
    for x in range(1, 1000):
        rhs = (x**3 - 3 * x + P256_B) % P256
        y = pow(rhs, (P256 + 1) // 4, P256)
        if y * y % P256 == rhs:
            return x, y
    raise AssertionError("no point found")


def test_an_ec_coordinate_of_p_or_more_is_refused() -> None:
    x, y = _p256_point_with_small_x()
    ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()  # a real point ...
    register_jwk({"kty": "EC", "crv": "P-256", "x": b64(x.to_bytes(32, "big")), "y": b64(y.to_bytes(32, "big"))})
    # ... spelled with x + p, which OpenSSL would silently reduce.
    jwk = {"kty": "EC", "crv": "P-256", "x": b64((x + P256).to_bytes(32, "big")), "y": b64(y.to_bytes(32, "big"))}
    refused("invalid_jwk", register_jwk, jwk, field="jwk")


def _rfc8032_decodes(encoded: bytes) -> bool:
    """RFC 8032 §5.1.3 point decoding, steps 1-4 (the square-root method, not Euler's criterion)."""
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    if y >= P25519:
        return False
    d = -121665 * pow(121666, -1, P25519) % P25519
    u, v = (y * y - 1) % P25519, (d * y * y + 1) % P25519
    x = u * pow(v, 3, P25519) * pow(u * pow(v, 7, P25519), (P25519 - 5) // 8, P25519) % P25519
    if v * x * x % P25519 == u:
        root = x
    elif v * x * x % P25519 == (-u) % P25519:
        root = x * pow(2, (P25519 - 1) // 4, P25519) % P25519
    else:
        return False
    return not (root == 0 and encoded[31] >> 7)


def test_an_ed25519_x_off_the_curve_is_refused() -> None:
    off = [y for y in range(2, 200) if not _rfc8032_decodes(y.to_bytes(32, "little"))]
    assert len(off) > 50  # about half of all y have no x
    for y in off[:20]:
        refused("invalid_jwk", register_jwk, {"kty": "OKP", "crv": "Ed25519", "x": b64(y.to_bytes(32, "little"))},
                field="jwk")


def test_genuine_ed25519_and_p256_keys_are_all_accepted() -> None:
    for _ in range(200):
        sk = Ed25519PrivateKey.generate()
        assert _rfc8032_decodes(unb64(ed25519_jwk(sk)["x"]))
        assert register_jwk(ed25519_jwk(sk)).jwk == ed25519_jwk(sk)
    for _ in range(50):
        jwk = ec_jwk(ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers())
        assert register_jwk(jwk).jwk == jwk


def _small_order_points() -> list[bytes]:
    y8 = int.from_bytes(bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little")

    def encode(y: int, x_odd: int) -> bytes:
        raw = bytearray(y.to_bytes(32, "little"))
        raw[31] |= x_odd << 7
        return bytes(raw)

    return [encode(1, 0), encode(P25519 - 1, 0), encode(0, 0), encode(0, 1),
            encode(y8, 0), encode(y8, 1), encode(P25519 - y8, 0), encode(P25519 - y8, 1)]


@pytest.mark.parametrize("point", _small_order_points(), ids=lambda p: p.hex()[:8])
def test_small_order_ed25519_keys_are_refused_because_openssl_accepts_forgeries_with_them(point: bytes) -> None:
    # The oracle: OpenSSL itself verifies a signature nobody made (R = identity, S = 0).
    weak = Ed25519PublicKey.from_public_bytes(point)
    forged = bytes([1]) + bytes(31) + bytes(32)
    forgeries = 0
    for message in range(64):
        try:
            weak.verify(forged, str(message).encode())
            forgeries += 1
        except InvalidSignature:
            pass
    assert forgeries > 0
    refused("invalid_jwk", register_jwk, {"kty": "OKP", "crv": "Ed25519", "x": b64(point)}, field="jwk")


@pytest.mark.parametrize("y", [P25519, P25519 + 1, 2**255 - 1])
def test_non_canonical_ed25519_encodings_are_refused(y: int) -> None:
    refused("invalid_jwk", register_jwk, {"kty": "OKP", "crv": "Ed25519", "x": b64(y.to_bytes(32, "little"))},
            field="jwk")


# --- fuzzing -------------------------------------------------------------------------------------

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
PEEK_REASONS = {"malformed_jws", "unsupported_algorithm"}
VERIFY_REASONS = PEEK_REASONS | {"bad_signature"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
headers = st.dictionaries(
    st.sampled_from(["alg", "kid", "crit", "b64", "typ", "jku", "x5c", "jwk", "cty"]) | st.text(max_size=6),
    json_values, max_size=5,
) | st.fixed_dictionaries(
    {"alg": st.sampled_from(["EdDSA", "Ed25519", "ES256", "none", "HS256"]) | st.text(max_size=8),
     "kid": st.text(max_size=50) | json_values},
    optional={"typ": json_values, "b64": json_values, "crit": json_values, "jku": json_values,
              "x5c": json_values, "jwk": json_values},
)
structured_tokens = st.builds(
    lambda header, payload, signature: f"{b64json(header)}.{b64json(payload)}.{b64(signature)}",
    headers, json_values | st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.binary(max_size=80),
)
dotted = st.lists(st.text(alphabet=B64URL + "=+/.", max_size=60), min_size=1, max_size=5).map(".".join)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _peek_or_refuse(token: object) -> None:
    try:
        seen = peek(token, FIELD)
    except UnprocessableError as exc:
        assert exc.reason in PEEK_REASONS
        assert exc.errors and exc.errors[0].field == FIELD
        return
    assert isinstance(seen.kid, str) and seen.alg in {"EdDSA", "Ed25519", "ES256"}
    assert isinstance(seen.claims, dict)


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300) | dotted | structured_tokens
       | st.integers() | st.none() | json_values)
def test_peek_never_fails_with_anything_else(token: object) -> None:
    _peek_or_refuse(token)


@FUZZ
@given(structured_tokens | dotted)
def test_verify_never_fails_with_anything_else(token: str) -> None:
    for key in (OKP_KEY, EC_KEY):
        try:
            verify(token, key, FIELD)
        except UnprocessableError as exc:
            assert exc.reason in VERIFY_REASONS
        else:
            raise AssertionError("a forged token verified")


@FUZZ
@given(st.sampled_from(["EdDSA", "Ed25519", "ES256"]), st.binary(min_size=0, max_size=96))
def test_random_signatures_never_verify(alg: str, signature: bytes) -> None:
    key = EC_KEY if alg == "ES256" else OKP_KEY
    token = f"{b64json({'alg': alg, 'kid': key.kid})}.{b64json(CLAIMS)}.{b64(signature)}"
    try:
        verify(token, key, FIELD)
    except UnprocessableError as exc:
        assert exc.reason == "bad_signature"
    else:
        raise AssertionError("a random signature verified")


@FUZZ
@given(st.dictionaries(st.sampled_from(["kty", "crv", "x", "y", "d", "use", "alg", "key_ops", "kid"])
                       | st.text(max_size=4),
                       st.sampled_from(["OKP", "EC", "Ed25519", "P-256", "sig", RFC8037_X]) | json_values,
                       max_size=6)
       | json_values)
def test_register_jwk_never_fails_with_anything_else(jwk: Any) -> None:
    try:
        key = register_jwk(jwk)
    except UnprocessableError as exc:
        assert exc.reason == "invalid_jwk"
        assert exc.errors and exc.errors[0].field == "jwk"
    else:
        assert key.kid == thumbprint(key.jwk)


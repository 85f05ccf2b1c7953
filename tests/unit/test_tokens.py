"""Token minting and validation (``carbonpuhui.auth.tokens`` / ``keys``) without HTTP.

Forged tokens are built by hand (base64url + raw signatures), so the validator is tested against
inputs no well-behaved library would produce. Authlib is the independent verifier of minted tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
import types
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey
from joserfc.jws import JWSRegistry

from carbonpuhui.auth import keys as keys_module
from carbonpuhui.auth.keys import KeyProvider, load_or_create_signing_key, public_jwks
from carbonpuhui.auth.tokens import CLOCK_SKEW_SECONDS, TokenValidator, mint_token
from carbonpuhui.errors import UnauthorizedError

with warnings.catch_warnings(record=True):  # authlib.jose is deprecated upstream, still a fine oracle
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.jose.errors import BadSignatureError

ISS, AUD = "urn:test:issuer", "test-audience"


def b64(data: bytes | dict[str, Any] | list[Any] | str) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {"iss": ISS, "aud": AUD, "sub": "alice", "iat": now, "nbf": now,
                              "exp": now + 600, "roles": ["admin"], "client_id": "test"}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def es256(key: ECKey, header: dict[str, Any], payload: dict[str, Any] | bytes) -> str:
    """A compact JWS signed by hand, so headers joserfc would refuse to emit can be tested."""
    signing_input = f"{b64(header)}.{b64(payload)}".encode()
    signature = JWSRegistry.algorithms["ES256"].sign(signing_input, key)
    return f"{signing_input.decode()}.{b64(signature)}"


def hs256(secret: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{b64(header)}.{b64(payload)}".encode()
    return f"{signing_input.decode()}.{b64(hmac.new(secret, signing_input, hashlib.sha256).digest())}"


def header_for(key: ECKey, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "signing-key.jwk"


@pytest.fixture
def key(key_path: Path) -> ECKey:
    return load_or_create_signing_key(key_path)


@pytest.fixture
def validator(key_path: Path, key: ECKey) -> TokenValidator:
    return TokenValidator(KeyProvider.local(key_path), issuer=ISS, audience=AUD)


async def rejected(validator: TokenValidator, token: str) -> UnauthorizedError:
    with pytest.raises(UnauthorizedError) as info:
        await validator.validate(token)
    error = info.value
    assert error.status_code == 401
    assert error.reason == "invalid_token"
    assert error.headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return error


# --- the signing key and minting ----------------------------------------------------------------


def test_signing_key_is_created_once_with_mode_0600(key_path: Path) -> None:
    first = load_or_create_signing_key(key_path)
    content = key_path.read_bytes()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    second = load_or_create_signing_key(key_path)
    assert key_path.read_bytes() == content
    assert first.thumbprint() == second.thumbprint()
    assert first.kid == first.thumbprint()
    assert json.loads(content)["d"]  # the file is the private key
    assert not list(key_path.parent.glob(".*.tmp"))  # the atomic-write temp file is gone


def test_public_jwks_has_no_private_part(key: ECKey) -> None:
    jwks = public_jwks(key)
    assert len(jwks["keys"]) == 1
    jwk = jwks["keys"][0]
    assert "d" not in jwk
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256"
    assert jwk["kid"] == key.kid and jwk["alg"] == "ES256" and jwk["use"] == "sig"


def test_minted_token_verifies_with_authlib(key_path: Path, key: ECKey) -> None:
    token = mint_token(key_path, issuer=ISS, audience=AUD, sub="bob", roles=["merchant", "verifier"],
                       org="acme", ttl=120)
    decoded = JsonWebToken(["ES256"]).decode(token, JsonWebKey.import_key_set(public_jwks(key)))
    decoded.validate()  # exp / nbf / iat, by Authlib's own clock checks
    assert decoded.header["alg"] == "ES256"
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.header["kid"] == key.kid
    assert decoded["iss"] == ISS and decoded["aud"] == AUD and decoded["sub"] == "bob"
    assert decoded["roles"] == ["merchant", "verifier"] and decoded["org"] == "acme"
    assert decoded["exp"] - decoded["iat"] == 120
    assert decoded["jti"]


def test_authlib_rejects_minted_token_under_another_key(key_path: Path, key: ECKey) -> None:
    token = mint_token(key_path, issuer=ISS, audience=AUD, sub="bob", roles=["admin"])
    other = public_jwks(ECKey.generate_key("P-256", private=True))
    other["keys"][0]["kid"] = key.kid
    with pytest.raises(BadSignatureError):
        JsonWebToken(["ES256"]).decode(token, JsonWebKey.import_key_set(other))


def test_mint_refuses_unknown_roles_and_bad_ttl(key_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        mint_token(key_path, issuer=ISS, audience=AUD, sub="x", roles=["root"])
    with pytest.raises(ValueError, match="ttl"):
        mint_token(key_path, issuer=ISS, audience=AUD, sub="x", roles=["admin"], ttl=0)


# --- the validator, local key -------------------------------------------------------------------


async def test_valid_token_gives_principal(validator: TokenValidator, key_path: Path) -> None:
    token = mint_token(key_path, issuer=ISS, audience=AUD, sub="bob", roles=["merchant"], org="acme")
    principal = await validator.validate(token)
    assert principal.sub == "bob"
    assert principal.roles == frozenset({"merchant"})
    assert principal.org == "acme"
    assert principal.client_id == "carbonpuhui-cli"


async def test_unknown_roles_are_dropped_and_space_separated_roles_read(validator: TokenValidator,
                                                                         key: ECKey) -> None:
    principal = await validator.validate(es256(key, header_for(key), claims(roles=["admin", "root"])))
    assert principal.roles == frozenset({"admin"})
    principal = await validator.validate(es256(key, header_for(key), claims(roles="consumer officer")))
    assert principal.roles == frozenset({"consumer", "officer"})


async def test_application_at_jwt_typ_is_accepted(validator: TokenValidator, key: ECKey) -> None:
    principal = await validator.validate(es256(key, header_for(key, typ="application/at+jwt"), claims()))
    assert principal.sub == "alice"


async def test_signature_by_other_key_with_same_kid_is_rejected(validator: TokenValidator, key: ECKey) -> None:
    impostor = ECKey.generate_key("P-256", private=True)
    assert impostor.thumbprint() != key.thumbprint()
    error = await rejected(validator, es256(impostor, header_for(key), claims()))
    assert error.message == "The token's signature is not valid."


async def test_tampered_claims_are_rejected(validator: TokenValidator, key: ECKey) -> None:
    token = es256(key, header_for(key), claims(roles=["consumer"]))
    head, _, signature = token.split(".")
    forged = f"{head}.{b64(claims(roles=['admin']))}.{signature}"
    await rejected(validator, forged)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_rejected(validator: TokenValidator, key: ECKey, alg: str) -> None:
    token = f"{b64({'alg': alg, 'typ': 'at+jwt', 'kid': key.kid})}.{b64(claims())}."
    error = await rejected(validator, token)
    assert error.params == {"alg": alg}


@pytest.mark.parametrize("secret_kind", ["jwk_json", "jwks_json", "pem"])
async def test_hs256_keyed_with_the_public_key_is_rejected(validator: TokenValidator, key: ECKey,
                                                           secret_kind: str) -> None:
    jwks = public_jwks(key)
    secret = {
        "jwk_json": json.dumps(jwks["keys"][0]).encode(),
        "jwks_json": json.dumps(jwks).encode(),
        "pem": key.as_pem(private=False),
    }[secret_kind]
    assert b"-----BEGIN PUBLIC KEY-----" in key.as_pem(private=False)
    error = await rejected(validator, hs256(secret, header_for(key, alg="HS256"), claims()))
    assert error.params == {"alg": "HS256"}


async def test_symmetric_key_in_key_set_does_not_enable_hs256() -> None:
    # Even a JWKS that (wrongly) carries an oct key must not make HMAC tokens acceptable.
    secret = OctKey.generate_key(256, parameters={"kid": "oct"})
    provider = KeyProvider(static=KeySet([secret]))
    validator = TokenValidator(provider, issuer=ISS, audience=AUD)
    token = jwt.encode({"alg": "HS256", "typ": "at+jwt", "kid": "oct"}, claims(), secret, algorithms=["HS256"])
    await rejected(validator, token)


@pytest.mark.parametrize(("overrides", "claim"), [
    ({"iss": "urn:someone:else"}, "iss"),
    ({"aud": "another-api"}, "aud"),
    ({"aud": ["another-api", "third"]}, "aud"),
    ({"sub": None}, "sub"),
    ({"iss": None}, "iss"),
    ({"aud": None}, "aud"),
    ({"nbf": int(time.time()) + 3600}, "nbf"),
])
async def test_bad_claims_are_rejected(validator: TokenValidator, key: ECKey, overrides: dict[str, Any],
                                       claim: str) -> None:
    error = await rejected(validator, es256(key, header_for(key), claims(**overrides)))
    assert error.params.get("claim") == claim


async def test_audience_list_containing_ours_is_accepted(validator: TokenValidator, key: ECKey) -> None:
    principal = await validator.validate(es256(key, header_for(key), claims(aud=["other", AUD])))
    assert principal.sub == "alice"


async def test_missing_exp_is_rejected(validator: TokenValidator, key: ECKey) -> None:
    await rejected(validator, es256(key, header_for(key), claims(exp=None)))


async def test_expired_beyond_leeway_is_rejected(validator: TokenValidator, key: ECKey) -> None:
    now = int(time.time())
    token = es256(key, header_for(key), claims(iat=now - 900, nbf=now - 900, exp=now - CLOCK_SKEW_SECONDS - 90))
    error = await rejected(validator, token)
    assert error.message == "The token has expired."


async def test_just_expired_within_leeway_is_accepted(validator: TokenValidator, key: ECKey) -> None:
    now = int(time.time())
    token = es256(key, header_for(key), claims(iat=now - 900, nbf=now - 900, exp=now - 5))
    assert (await validator.validate(token)).sub == "alice"


@pytest.mark.parametrize("typ", ["JWT", "jwt", "JOSE", None, ""])
async def test_typ_other_than_at_jwt_is_rejected(validator: TokenValidator, key: ECKey, typ: str | None) -> None:
    header = header_for(key, typ=typ) if typ is not None else {"alg": "ES256", "kid": key.kid}
    error = await rejected(validator, es256(key, header, claims()))
    assert error.message == "The token is not an access token (typ must be at+jwt)."


@pytest.mark.parametrize("bad_claims", [
    {"roles": {"admin": True}}, {"roles": ["admin", 7]}, {"org": 42}, {"sub": 5},
])
async def test_wrongly_typed_claims_are_rejected(validator: TokenValidator, key: ECKey,
                                                 bad_claims: dict[str, Any]) -> None:
    await rejected(validator, es256(key, header_for(key), claims(**bad_claims)))


_NOT_JSON = b64(b"\xff\xfe")
GARBAGE = [
    "abc", "a.b.c", "...", "a.b", "a.b.c.d", "", " ", "Bearer", "e" * 100_000, "eyJ" + "A" * 50_000 + ".e.e",
    "é.é.é", "令牌", "\x00\x01.\x02.\x03",
    f"{b64([1, 2])}.{b64(claims())}.", f"{b64('text')}.{b64(claims())}.", f"{_NOT_JSON}.{b64(claims())}.",
    f"{b64({'alg': ['ES256'], 'typ': 'at+jwt'})}.{b64(claims())}.",
    f"{b64({'alg': {'x': 1}, 'typ': 'at+jwt'})}.{b64(claims())}.",
    f"{b64({'alg': 'ES256', 'typ': 'at+jwt'})}.{b64(claims())}.not-base64!",
]


@pytest.mark.parametrize("garbage", GARBAGE, ids=lambda g: repr(g[:16]))
async def test_garbage_is_a_401_not_a_crash(validator: TokenValidator, garbage: str) -> None:
    await rejected(validator, garbage)


@pytest.mark.parametrize("header_extra", [{"kid": {"x": 1}}, {"kid": 5}, {"kid": "unknown"},
                                          {"crit": ["nope"], "nope": 1}])
async def test_odd_headers_on_a_real_signature_are_rejected(validator: TokenValidator, key: ECKey,
                                                            header_extra: dict[str, Any]) -> None:
    await rejected(validator, es256(key, header_for(key, **header_extra), claims()))


@pytest.mark.parametrize("payload", [b"[1]", b'"s"', b"\xff", b"null"])
async def test_non_object_payloads_are_rejected(validator: TokenValidator, key: ECKey, payload: bytes) -> None:
    await rejected(validator, es256(key, header_for(key), payload))


# --- remote JWKS --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    # Only the key cache's clock: the event loop keeps the real one.
    monkeypatch.setattr(keys_module, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


class FakeIdP:
    """An identity provider's JWKS endpoint behind httpx.MockTransport."""

    url = "https://idp.example.test/.well-known/jwks.json"

    def __init__(self) -> None:
        self.keys: list[ECKey] = []
        self.calls = 0
        self.failure: str | None = None

    def add_key(self, kid: str) -> ECKey:
        key = ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)
        self.keys.append(key)
        return key

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        assert str(request.url) == self.url
        if self.failure == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.failure == "500":
            return httpx.Response(500, text="oops")
        if self.failure == "html":
            return httpx.Response(200, text="<html>login</html>")
        if self.failure == "not_a_key_set":
            return httpx.Response(200, json={"keys": [{"kty": "nope"}]})
        return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.keys]})

    def provider(self, **kwargs: Any) -> KeyProvider:
        return KeyProvider(jwks_url=self.url, transport=httpx.MockTransport(self.handler), **kwargs)

    def validator(self, **kwargs: Any) -> TokenValidator:
        return TokenValidator(self.provider(**kwargs), issuer=ISS, audience=AUD)


def test_key_provider_needs_a_source() -> None:
    with pytest.raises(ValueError):
        KeyProvider()


async def test_remote_keys_validate_and_are_cached(clock: FakeClock) -> None:
    idp = FakeIdP()
    key = idp.add_key("k1")
    validator = idp.validator()
    assert idp.calls == 0  # nothing fetched before the first token
    principal = await validator.validate(es256(key, header_for(key), claims(sub="carol", roles=["officer"])))
    assert principal.sub == "carol" and principal.roles == frozenset({"officer"})
    clock.now += 60
    await validator.validate(es256(key, header_for(key), claims()))
    assert idp.calls == 1


async def test_remote_token_by_foreign_key_is_rejected(clock: FakeClock) -> None:
    idp = FakeIdP()
    idp.add_key("k1")
    impostor = ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True)
    await rejected(idp.validator(), es256(impostor, header_for(impostor), claims()))


async def test_key_rotation_refetches_on_unknown_kid(clock: FakeClock) -> None:
    idp = FakeIdP()
    old = idp.add_key("k1")
    validator = idp.validator()
    await validator.validate(es256(old, header_for(old), claims()))
    assert idp.calls == 1

    new = idp.add_key("k2")  # the IdP rotates
    idp.keys.remove(old)
    clock.now += 120
    principal = await validator.validate(es256(new, header_for(new), claims(sub="after-rotation")))
    assert principal.sub == "after-rotation"
    assert idp.calls == 2
    # The retired key is gone from the fetched set.
    await rejected(validator, es256(old, header_for(old), claims()))


async def test_unknown_kids_do_not_refetch_in_a_loop(clock: FakeClock) -> None:
    idp = FakeIdP()
    key = idp.add_key("k1")
    validator = idp.validator(refetch_after_seconds=30)
    await validator.validate(es256(key, header_for(key), claims()))
    stranger = ECKey.generate_key("P-256", parameters={"kid": "junk"}, private=True)
    for _ in range(5):
        await rejected(validator, es256(stranger, header_for(stranger), claims()))
    assert idp.calls == 1  # a flood of unknown kids cannot hammer the IdP
    clock.now += 31
    await rejected(validator, es256(stranger, header_for(stranger), claims()))
    assert idp.calls == 2


async def test_keys_are_refreshed_after_their_ttl(clock: FakeClock) -> None:
    idp = FakeIdP()
    key = idp.add_key("k1")
    validator = idp.validator(ttl_seconds=600)
    await validator.validate(es256(key, header_for(key), claims()))
    clock.now += 599
    await validator.validate(es256(key, header_for(key), claims()))
    assert idp.calls == 1
    clock.now += 2
    await validator.validate(es256(key, header_for(key), claims()))
    assert idp.calls == 2


@pytest.mark.parametrize("failure", ["down", "500", "html", "not_a_key_set"])
async def test_unreachable_or_broken_jwks_is_a_401(clock: FakeClock, failure: str) -> None:
    idp = FakeIdP()
    key = idp.add_key("k1")
    idp.failure = failure
    validator = idp.validator()
    error = await rejected(validator, es256(key, header_for(key), claims()))
    assert error.message == "The token's signing keys could not be loaded."
    # Once the IdP recovers, the next token is checked against freshly fetched keys.
    idp.failure = None
    assert (await validator.validate(es256(key, header_for(key), claims(sub="back")))).sub == "back"


async def test_real_unreachable_jwks_url_is_a_401(key: ECKey) -> None:
    validator = TokenValidator(KeyProvider(jwks_url="http://127.0.0.1:9/jwks"), issuer=ISS, audience=AUD)
    await rejected(validator, es256(key, header_for(key), claims()))


async def test_stale_keys_serve_through_an_idp_outage_but_not_forever(clock: FakeClock) -> None:
    idp = FakeIdP()
    key = idp.add_key("k1")
    validator = idp.validator(ttl_seconds=600, max_stale_seconds=3600)
    await validator.validate(es256(key, header_for(key), claims()))
    idp.failure = "down"
    clock.now += 601  # keys are stale and the refresh fails: the cached keys still verify
    assert (await validator.validate(es256(key, header_for(key), claims(sub="during-outage")))).sub == "during-outage"
    assert idp.calls == 2
    clock.now += 3600  # past the staleness bound: no keys are trusted any more
    await rejected(validator, es256(key, header_for(key), claims()))
    idp.failure = None
    assert (await validator.validate(es256(key, header_for(key), claims(sub="recovered")))).sub == "recovered"

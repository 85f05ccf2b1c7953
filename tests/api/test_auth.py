"""Bearer-token authentication over HTTP: the middleware, the guards, the JWKS endpoint, the CLI.

Protected routes used: POST /v1/factors (admin) and GET /v1/me (any valid token). Forged tokens
are signed by hand with the server's own key (or a look-alike), so only the claim or header under
test is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import stat
import time
import types
import warnings
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from joserfc.jwk import ECKey
from joserfc.jws import JWSRegistry
from litestar.testing import TestClient

from carbonpuhui.app import create_app
from carbonpuhui.auth import keys as keys_module
from carbonpuhui.auth.keys import KeyProvider, load_or_create_signing_key
from carbonpuhui.auth.tokens import TokenValidator, mint_token
from carbonpuhui.cli import main
from carbonpuhui.settings import Settings
from tests.conftest import make_settings

with warnings.catch_warnings(record=True):  # authlib.jose is deprecated upstream, still a fine oracle
    from authlib.jose import JsonWebKey, JsonWebToken

FACTOR = {
    "id": "t-grid", "names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"}, "category": "electricity.grid",
    "unit": "kWh", "kgco2e_per_unit": "0.5366", "gwp_basis": "AR5", "region": "CN", "tier": "national",
    "valid_from": "2022-01-01", "source": "test",
}
PROBLEM = "application/problem+json"
JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'


def b64(data: bytes | dict[str, Any]) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def es256(key: ECKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = f"{b64(header)}.{b64(claims)}".encode()
    return f"{signing_input.decode()}.{b64(JWSRegistry.algorithms['ES256'].sign(signing_input, key))}"


def good_claims(settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {"iss": settings.token_issuer, "aud": settings.token_audience, "sub": "mallory",
                              "iat": now, "nbf": now, "exp": now + 600, "roles": ["admin"]}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def bad_token(settings: Settings, case: str) -> str:
    """A token that is wrong in exactly one way (and otherwise carries the admin role)."""
    key = load_or_create_signing_key(settings.key_path)
    header = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid}
    now = int(time.time())
    if case == "bad_signature":
        impostor = ECKey.generate_key("P-256", private=True)  # same kid and claims, other key
        return es256(impostor, header, good_claims(settings))
    if case == "alg_none":
        return f"{b64({**header, 'alg': 'none'})}.{b64(good_claims(settings))}."
    if case in ("hs256_jwk", "hs256_pem"):
        public = key.as_dict(private=False)
        secret = json.dumps(public).encode() if case == "hs256_jwk" else key.as_pem(private=False)
        signing_input = f"{b64({**header, 'alg': 'HS256'})}.{b64(good_claims(settings))}".encode()
        mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
        return f"{signing_input.decode()}.{b64(mac)}"
    claims = {
        "wrong_issuer": good_claims(settings, iss="urn:evil:issuer"),
        "wrong_audience": good_claims(settings, aud="some-other-api"),
        "expired": good_claims(settings, iat=now - 3600, nbf=now - 3600, exp=now - 120),
        "missing_exp": good_claims(settings, exp=None),
        "missing_sub": good_claims(settings, sub=None),
        "typ_jwt": good_claims(settings),
    }[case]
    if case == "typ_jwt":
        header = {**header, "typ": "JWT"}
    return es256(key, header, claims)


BAD_CASES = ["bad_signature", "alg_none", "hs256_jwk", "hs256_pem", "wrong_issuer", "wrong_audience",
             "expired", "missing_exp", "missing_sub", "typ_jwt"]
PROTECTED = [("POST", "/v1/factors"), ("GET", "/v1/me")]


def call(client: TestClient[Any], method: str, path: str, headers: dict[str, Any] | None = None) -> httpx.Response:
    return client.request(method, path, headers=headers, json=FACTOR if method == "POST" else None)


def assert_401(response: httpx.Response, reason: str, challenge: str) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers["www-authenticate"] == challenge
    body = response.json()
    assert body["status"] == 401
    assert body["type"] == "urn:carbonpuhui:problem:unauthorized"
    assert body["reason"] == reason
    assert body["title"] and body["detail"]
    return body


# --- no token, wrong scheme ---------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_token_is_401_with_challenge(client, method: str, path: str) -> None:
    body = assert_401(call(client, method, path), "missing_token", "Bearer")
    assert body["instance"] == path


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Token abc.def.ghi", "Bearer", "Bearer   ", "Digest x=1"])
@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_non_bearer_scheme_is_401(client, method: str, path: str, value: str) -> None:
    assert_401(call(client, method, path, {"Authorization": value}), "invalid_request",
               'Bearer error="invalid_request"')


def test_raw_token_without_scheme_is_401(client, token) -> None:
    assert_401(call(client, "GET", "/v1/me", {"Authorization": token("admin")}), "invalid_request",
               'Bearer error="invalid_request"')


def test_bearer_scheme_is_case_insensitive(client, token) -> None:
    response = client.get("/v1/me", headers={"Authorization": f"bearer {token('consumer', sub='u1')}"})
    assert response.status_code == 200
    assert response.json()["sub"] == "u1"


# --- invalid tokens -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_invalid_token_is_401(client, settings, method: str, path: str, case: str) -> None:
    response = call(client, method, path, {"Authorization": f"Bearer {bad_token(settings, case)}"})
    assert_401(response, "invalid_token", INVALID_TOKEN_CHALLENGE)


def test_forged_admin_tokens_create_nothing(client, settings, auth) -> None:
    for case in BAD_CASES:
        call(client, "POST", "/v1/factors", {"Authorization": f"Bearer {bad_token(settings, case)}"})
    assert client.get("/v1/factors/t-grid/versions", headers=auth("admin")).status_code == 404


GARBAGE: list[str | bytes] = [
    "abc", "a.b.c", "...", "a.b.c.d", "e" * 20_000, "eyJ" + "A" * 20_000 + ".eyJ.sig", "%00%01",
    "é.é.é".encode(), "令牌.令牌.令牌".encode(), b"\xff\xfe\xfd",
]


@pytest.mark.parametrize("garbage", GARBAGE, ids=lambda g: repr(g[:12]))
@pytest.mark.parametrize(("method", "path"), [*PROTECTED, ("GET", "/v1/factors")])
def test_garbage_token_is_401_never_500(client, method: str, path: str, garbage: str | bytes) -> None:
    value = b"Bearer " + garbage if isinstance(garbage, bytes) else f"Bearer {garbage}"
    assert_401(call(client, method, path, {"Authorization": value}), "invalid_token", INVALID_TOKEN_CHALLENGE)


def test_token_just_inside_the_leeway_is_accepted(client, settings) -> None:
    now = int(time.time())
    key = load_or_create_signing_key(settings.key_path)
    token = es256(key, {"alg": "ES256", "typ": "at+jwt", "kid": key.kid},
                  good_claims(settings, sub="late", iat=now - 900, nbf=now - 900, exp=now - 5))
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["sub"] == "late"


# --- roles --------------------------------------------------------------------------------------


@pytest.mark.parametrize("roles", [("consumer",), ("merchant", "verifier", "officer"), ()])
def test_token_without_the_role_is_403(client, auth, roles: tuple[str, ...]) -> None:
    response = client.post("/v1/factors", json=FACTOR, headers=auth(*roles))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 403 and body["reason"] == "missing_role"
    assert "admin" in body["detail"]
    assert "www-authenticate" not in response.headers


def test_token_with_the_role_passes(client, auth) -> None:
    response = client.post("/v1/factors", json=FACTOR, headers=auth("merchant", "admin"))
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "t-grid"


@pytest.mark.parametrize("roles", [("consumer",), ("admin",), ()])
def test_any_valid_token_reaches_me(client, auth, roles: tuple[str, ...]) -> None:
    response = client.get("/v1/me", headers=auth(*roles, sub="who", org="acme"))
    assert response.status_code == 200
    assert response.json() == {"sub": "who", "roles": sorted(roles), "org": "acme"}


# --- public routes ------------------------------------------------------------------------------


def test_invalid_token_on_a_public_route_is_401(client, settings) -> None:
    # Design choice: a caller who sent a token meant to authenticate and must learn it failed.
    assert client.get("/v1/factors").status_code == 200
    for case in ("expired", "bad_signature", "wrong_audience"):
        response = client.get("/v1/factors", headers={"Authorization": f"Bearer {bad_token(settings, case)}"})
        assert_401(response, "invalid_token", INVALID_TOKEN_CHALLENGE)


def test_valid_token_on_a_public_route_is_fine(client, auth) -> None:
    assert client.get("/v1/factors", headers=auth("consumer")).status_code == 200


def test_api_docs_are_outside_the_bearer_middleware(client) -> None:
    response = client.get("/schema/openapi.json", headers={"Authorization": "Bearer abc"})
    assert response.status_code == 200
    assert "/v1/factors" in response.json()["paths"]


# --- JWKS endpoint, Authlib as the independent verifier ------------------------------------------


def test_jwks_serves_only_the_public_key(client, settings) -> None:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    assert "max-age" in response.headers["cache-control"]
    jwks = response.json()
    assert len(jwks["keys"]) == 1
    jwk = jwks["keys"][0]
    assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk)
    assert {"kty": jwk["kty"], "crv": jwk["crv"], "alg": jwk["alg"], "use": jwk["use"]} == {
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig"}
    private = json.loads(settings.key_path.read_text())
    assert (jwk["x"], jwk["y"]) == (private["x"], private["y"])
    assert jwk["kid"] == private["kid"]


def test_minted_token_verifies_with_authlib_against_served_jwks(client, settings, token) -> None:
    jwks = client.get("/.well-known/jwks.json").json()
    decoded = JsonWebToken(["ES256"]).decode(token("merchant", sub="m1", org="acme", ttl=60),
                                             JsonWebKey.import_key_set(jwks))
    decoded.validate()
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.header["kid"] == jwks["keys"][0]["kid"]
    assert decoded["iss"] == settings.token_issuer and decoded["aud"] == settings.token_audience
    assert (decoded["sub"], decoded["roles"], decoded["org"]) == ("m1", ["merchant"], "acme")


# --- the CLI ------------------------------------------------------------------------------------


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {"CARBONPUHUI_DATA_DIR": str(settings.data_dir), "CARBONPUHUI_TOKEN_ISSUER": settings.token_issuer,
            "CARBONPUHUI_TOKEN_AUDIENCE": settings.token_audience, "CARBONPUHUI_JWKS_URL": "", **extra}


def test_cli_token_is_accepted_and_key_created_once(settings) -> None:
    assert not settings.key_path.exists()
    runner = CliRunner()
    args = ["token", "--sub", "s", "--role", "admin", "--org", "o", "--ttl", "60"]
    first = runner.invoke(main, args, env=cli_env(settings))
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert len(lines) == 1 and JWT_SHAPE.match(lines[0])
    assert stat.S_IMODE(settings.key_path.stat().st_mode) == 0o600
    key_file = settings.key_path.read_bytes()

    second = runner.invoke(main, args, env=cli_env(settings))
    assert second.exit_code == 0, second.output
    assert settings.key_path.read_bytes() == key_file  # same key, not regenerated
    assert second.stdout.strip() != lines[0]  # a fresh jti

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for printed in (lines[0], second.stdout.strip()):
            response = client.get("/v1/me", headers={"Authorization": f"Bearer {printed}"})
            assert response.status_code == 200, response.text
            assert response.json() == {"sub": "s", "roles": ["admin"], "org": "o"}
        created = client.post("/v1/factors", json=FACTOR, headers={"Authorization": f"Bearer {lines[0]}"})
        assert created.status_code == 201, created.text
        jwks = client.get("/.well-known/jwks.json").json()
    decoded = JsonWebToken(["ES256"]).decode(lines[0], JsonWebKey.import_key_set(jwks))
    assert decoded["exp"] - decoded["iat"] == 60


def test_cli_token_refuses_unknown_role_and_external_idp(settings) -> None:
    runner = CliRunner()
    bad_role = runner.invoke(main, ["token", "--sub", "s", "--role", "root"], env=cli_env(settings))
    assert bad_role.exit_code == 2 and bad_role.stdout == ""
    external = runner.invoke(main, ["token", "--sub", "s", "--role", "admin"],
                             env=cli_env(settings, CARBONPUHUI_JWKS_URL="https://idp.example/jwks"))
    assert external.exit_code == 2 and external.stdout == ""
    assert not settings.key_path.exists()


# --- external identity provider ------------------------------------------------------------------


def test_app_with_jwks_url_takes_no_local_role_tokens_and_401s_when_keys_unreachable(settings) -> None:
    external = make_settings(settings.data_dir.parent / "external", database_url=settings.database_url,
                             jwks_url="http://127.0.0.1:9/jwks")
    token = mint_token(external.key_path, issuer=external.token_issuer, audience=external.token_audience,
                       sub="s", roles=["admin"])
    with TestClient(create_app(external), raise_server_exceptions=False) as client:
        # The platform's own key is published: it signs the PACT clients' tokens, nothing else.
        jwks = client.get("/.well-known/jwks.json")
        assert jwks.status_code == 200
        assert [k["kid"] for k in jwks.json()["keys"]] == [load_or_create_signing_key(external.key_path).kid]
        for method, path in [*PROTECTED, ("GET", "/v1/factors")]:
            response = call(client, method, path, {"Authorization": f"Bearer {token}"})
            assert_401(response, "invalid_token", INVALID_TOKEN_CHALLENGE)
        assert_401(client.get("/v1/me"), "missing_token", "Bearer")
        assert client.get("/v1/factors").status_code == 200


class FakeIdP:
    url = "https://idp.example.test/jwks"

    def __init__(self) -> None:
        self.keys: list[ECKey] = []
        self.calls = 0
        self.down = False

    def rotate_in(self, kid: str) -> ECKey:
        key = ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)
        self.keys.append(key)
        return key

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.keys]})


def test_remote_jwks_end_to_end(app, client, settings, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = types.SimpleNamespace(now=5_000.0)
    monkeypatch.setattr(keys_module, "time", types.SimpleNamespace(monotonic=lambda: clock.now))
    idp = FakeIdP()
    k1 = idp.rotate_in("k1")
    provider = KeyProvider(jwks_url=idp.url, transport=httpx.MockTransport(idp.handler))
    app.state.token_validator = TokenValidator(provider, issuer=settings.token_issuer,
                                               audience=settings.token_audience)

    def bearer(key: ECKey, **claims: Any) -> dict[str, str]:
        token = es256(key, {"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, good_claims(settings, **claims))
        return {"Authorization": f"Bearer {token}"}

    idp.down = True  # unreachable keys: a 401, never a 500
    assert_401(client.get("/v1/me", headers=bearer(k1)), "invalid_token", INVALID_TOKEN_CHALLENGE)
    assert idp.calls == 1
    idp.down = False
    me = client.get("/v1/me", headers=bearer(k1, sub="idp-user", roles=["verifier"], org="cert-co"))
    assert me.status_code == 200
    assert me.json() == {"sub": "idp-user", "roles": ["verifier"], "org": "cert-co"}
    # The platform's own key means nothing once an external IdP is configured.
    local = load_or_create_signing_key(settings.key_path)
    assert_401(client.get("/v1/me", headers=bearer(local)), "invalid_token", INVALID_TOKEN_CHALLENGE)

    clock.now += 60
    k2 = idp.rotate_in("k2")
    # Key rotation: the unknown kid k2 makes the platform refetch the IdP's keys.
    assert client.post("/v1/factors", json=FACTOR, headers=bearer(k2, roles=["admin"])).status_code == 201
    assert client.post("/v1/factors", json=FACTOR, headers=bearer(k2, roles=["consumer"])).status_code == 403
    assert idp.calls == 3

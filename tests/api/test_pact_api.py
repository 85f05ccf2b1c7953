"""PACT v2.3 over HTTP: the token endpoint and discovery, ListFootprints / GetFootprint with paging
and PACT's error bodies, who sees which footprint, the exported document against the fixture schema,
action events (answered once, delivered to the client's own API) and importing a supplier's
footprint as an enterprise factor.

Oracles: RFC 6749 (token errors), RFC 8288 (the Link header, parsed here), the conformance
service's expected results for v2 (error codes, HTTPS refusal), the hand-written JSON Schema in
tests/fixtures/pact, and kgCO2e worked out as quantity x factor value.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select, text

from carbonpuhui.app import create_app
from carbonpuhui.auth import tokens
from carbonpuhui.cli import main
from carbonpuhui.db import Database
from carbonpuhui.pact.clients import create_client
from carbonpuhui.pact.models import PactEvent
from carbonpuhui.settings import Settings
from tests.conftest import make_settings
from tests.http_stub import JSONHandler, StubServer
from tests.pact_schema import VALIDATOR

HTTPS = "https://testserver.local"
HTTP = "http://testserver.local"
D = Decimal

CREATED = "org.wbcsd.pathfinder.ProductFootprintRequest.Created.v1"
FULFILLED = "org.wbcsd.pathfinder.ProductFootprintRequest.Fulfilled.v1"
REJECTED = "org.wbcsd.pathfinder.ProductFootprintRequest.Rejected.v1"
PUBLISHED = "org.wbcsd.pathfinder.ProductFootprint.Published.v1"
CLOUDEVENTS = "application/cloudevents+json; charset=UTF-8"

NAMES = {"zh-Hans": "热轧钢卷", "zh-Hant": "熱軋鋼卷", "en": "Hot-rolled coil"}
GRID = D("0.5366")  # the grid factor's kgCO2e per kWh
PUBLISH = {"company_name": "Acme Steel", "product_category_cpc": "4124", "public": False, "shared_with": ["buyer"]}


# --- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
def pact(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url=HTTPS, raise_server_exceptions=False) as test_client:
        yield test_client


def gtin(n: int) -> str:
    """A GTIN-13 with its GS1 mod-10 check digit (weights 3, 1, 3, ... from the right)."""
    body = f"690123456{n:03d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def db_call(settings: Settings, work: Callable[[Any], Any]) -> Any:
    async def run() -> Any:
        db = Database(settings.effective_database_url)
        try:
            async with db.transaction() as session:
                return await work(session)
        finally:
            await db.dispose()

    return asyncio.run(run())


def new_client(settings: Settings, org: str, **callback: Any) -> tuple[str, str]:
    async def work(session: Any) -> tuple[str, str]:
        row, secret = await create_client(session, org=org, actor="test", **callback)
        return row.client_id, secret

    return db_call(settings, work)


def events_of(settings: Settings) -> list[dict[str, Any]]:
    async def work(session: Any) -> list[dict[str, Any]]:
        rows = (await session.scalars(select(PactEvent).order_by(PactEvent.seq))).all()
        return [{"client_id": r.client_id, "event_id": r.event_id, "type": r.type, "outcome": r.outcome,
                 "answer": r.answer, "delivered_at": r.delivered_at, "delivery_error": r.delivery_error}
                for r in rows]

    return db_call(settings, work)


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def raw_basic(credentials: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


GRANT = {"grant_type": "client_credentials"}


def access_token(pact, client_id: str, secret: str) -> str:
    response = pact.post("/auth/token", data=GRANT, headers=basic(client_id, secret))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client_headers(pact, settings: Settings, org: str) -> dict[str, str]:
    return bearer(access_token(pact, *new_client(settings, org)))


def assert_pact_error(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == "application/json"
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


def oauth_error(response, code: str) -> None:
    assert response.status_code in (400, 401), response.text
    body = response.json()
    assert body["error"] == code, body
    assert "access_token" not in body


def grid_factor(pact, admin: dict[str, str]) -> None:
    body = {"id": "t-grid", "names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"},
            "category": "electricity.grid", "unit": "kWh", "kgco2e_per_unit": str(GRID), "gwp_basis": "AR6",
            "region": "CN", "tier": "national", "valid_from": "2020-01-01", "source": "test",
            "data_quality": {"technological": 2, "geographical": 1, "time": 2, "precision": 3}}
    created = pact.post("/v1/factors", json=body, headers=admin)
    assert created.status_code == 201, created.text
    published = pact.post("/v1/factors/t-grid/versions/1/publish", headers=admin)
    assert published.status_code == 200, published.text


def product(pact, merchant: dict[str, str], code: str, *, kwh: str = "2", declared_unit: str = "kilogram",
            category: str = "steel.hot_rolled_coil") -> None:
    body = {"gtin": code, "names": NAMES, "category": category, "declared_unit": declared_unit,
            "declared_units_per_item": "1"}
    created = pact.post("/v1/merchant/products", json=body, headers=merchant)
    assert created.status_code == 201, created.text
    lines = [{"stage": "production", "description": "electricity", "quantity": kwh, "unit": "kWh",
              "factor_id": "t-grid", "primary": True}]
    inventory = pact.put(f"/v1/merchant/products/{code}/inventory", json={"lines": lines}, headers=merchant)
    assert inventory.status_code == 200, inventory.text


def publish(pact, merchant: dict[str, str], code: str, **overrides: Any) -> dict[str, Any]:
    response = pact.post(f"/v1/merchant/products/{code}/pact-footprints", json={**PUBLISH, **overrides},
                         headers=merchant)
    assert response.status_code == 201, response.text
    return response.json()


def published_product(pact, merchant, code: str, **overrides: Any) -> dict[str, Any]:
    product(pact, merchant, code)
    return publish(pact, merchant, code, **overrides)


def list_ids(pact, headers: dict[str, str]) -> list[str]:
    response = pact.get("/2/footprints", headers=headers)
    assert response.status_code == 200, response.text
    return [pf["id"] for pf in response.json()["data"]]


LINK = re.compile(r'<(?P<url>[^>]*)>\s*((?:;\s*[^;,]+)*)')


def next_link(header: str | None) -> str | None:
    """The target of the ``rel="next"`` link of an RFC 8288 Link header (None if there is none)."""
    if not header:
        return None
    for match in LINK.finditer(header):
        params = dict(
            (k.strip().lower(), v.strip().strip('"'))
            for k, _, v in (p.partition("=") for p in match.group(2).split(";") if p.strip()))
        if "next" in params.get("rel", "").split():
            return match.group("url")
    return None


def event(type_: str, data: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id or str(uuid.uuid4()), "source": "//buyer.example/pact",
            "time": "2025-06-01T10:00:00Z", "type": type_, "data": data}


def post_event(pact, headers: dict[str, str], body: Any, content_type: str = CLOUDEVENTS):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return pact.post("/2/events", content=content, headers={**headers, "Content-Type": content_type})


# --- token endpoint -------------------------------------------------------------------------------


def test_client_credentials_token_works_on_footprints(pact, settings, auth):
    grid_factor(pact, auth("admin"))
    shared = published_product(pact, auth("merchant", org="acme"), gtin(1))
    client_id, secret = new_client(settings, "buyer")
    response = pact.post("/auth/token", data=GRANT, headers=basic(client_id, secret))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert {"access_token", "token_type", "expires_in"} <= set(body) <= {"access_token", "token_type",
                                                                          "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert list_ids(pact, bearer(body["access_token"])) == [shared["id"]]


@pytest.mark.parametrize("case", ["wrong_secret", "unknown_client", "bad_base64", "not_utf8", "no_colon",
                                  "empty_secret", "missing_header", "bearer_scheme", "credentials_in_form"])
def test_bad_client_authentication_is_invalid_client(pact, settings, case):
    client_id, secret = new_client(settings, "buyer")
    headers, form = {
        "wrong_secret": (basic(client_id, secret + "x"), GRANT),
        "unknown_client": (basic(uuid.uuid4().hex, secret), GRANT),
        "bad_base64": ({"Authorization": "Basic !!not*base64!!"}, GRANT),
        "not_utf8": (raw_basic(client_id.encode() + b":\xff\xfe" + secret.encode()), GRANT),
        "no_colon": (raw_basic((client_id + secret).encode()), GRANT),
        "empty_secret": (raw_basic(client_id.encode() + b":"), GRANT),
        "missing_header": ({}, GRANT),
        "bearer_scheme": ({"Authorization": f"Bearer {secret}"}, GRANT),
        "credentials_in_form": ({}, {**GRANT, "client_id": client_id, "client_secret": secret}),
    }[case]
    response = pact.post("/auth/token", data=form, headers=headers)
    assert response.status_code < 500
    oauth_error(response, "invalid_client")
    assert response.headers["cache-control"] == "no-store"
    if response.status_code == 401:  # RFC 6749 §5.2: a 401 names the scheme to authenticate with
        assert response.headers["www-authenticate"].lower().startswith("basic")


@pytest.mark.parametrize("form", [{"grant_type": "password", "username": "u", "password": "p"},
                                  {"grant_type": "authorization_code", "code": "x"}, {}])
def test_grant_other_than_client_credentials_is_refused(pact, settings, form):
    client_id, secret = new_client(settings, "buyer")
    response = pact.post("/auth/token", data=form, headers=basic(client_id, secret))
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("unsupported_grant_type", "invalid_request")
    assert "access_token" not in response.json()
    if form.get("grant_type"):
        assert response.json()["error"] == "unsupported_grant_type"


def test_token_request_body_that_is_not_a_form_is_not_a_500(pact, settings):
    client_id, secret = new_client(settings, "buyer")
    response = pact.post("/auth/token", content=b"\xff\x00{]", headers={
        **basic(client_id, secret), "Content-Type": "application/x-www-form-urlencoded"})
    assert 400 <= response.status_code < 500, response.text
    assert "access_token" not in response.text


def _cli(settings: Settings, *args: str):
    env = {"CARBONPUHUI_DATA_DIR": str(settings.data_dir), "CARBONPUHUI_DATABASE_URL": settings.effective_database_url,
           "CARBONPUHUI_REDIS_URL": "", "CARBONPUHUI_JWKS_URL": ""}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_cli_create_prints_credentials_once_and_keeps_only_the_digest(pact, settings):
    result = _cli(settings, "clients", "create", "--org", "buyer")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    printed = json.loads(lines[0])
    assert set(printed) == {"client_id", "client_secret"}
    secret = printed["client_secret"]
    assert len(secret) >= 32

    async def read(session: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in (await session.execute(text("SELECT * FROM pact_clients"))).all()]

    rows = db_call(settings, read)
    assert len(rows) == 1
    values = [str(v) for v in rows[0] if v is not None]
    assert all(secret not in v for v in values)
    assert hashlib.sha256(secret.encode()).hexdigest() in values
    assert printed["client_id"] in values and "buyer" in values
    access_token(pact, printed["client_id"], secret)  # the printed pair works


def test_cli_revoke_stops_new_and_existing_tokens(pact, settings):
    created = _cli(settings, "clients", "create", "--org", "buyer")
    assert created.exit_code == 0, created.output
    creds = json.loads(created.stdout)
    token = access_token(pact, creds["client_id"], creds["client_secret"])
    assert pact.get("/2/footprints", headers=bearer(token)).status_code == 200

    revoked = _cli(settings, "clients", "revoke", creds["client_id"])
    assert revoked.exit_code == 0, revoked.output
    oauth_error(pact.post("/auth/token", data=GRANT, headers=basic(creds["client_id"], creds["client_secret"])),
                "invalid_client")
    assert_pact_error(pact.get("/2/footprints", headers=bearer(token)), 403, "AccessDenied")
    assert_pact_error(pact.get(f"/2/footprints/{uuid.uuid4()}", headers=bearer(token)), 403, "AccessDenied")
    assert_pact_error(post_event(pact, bearer(token), event(PUBLISHED, {"pfIds": [str(uuid.uuid4())]})),
                      403, "AccessDenied")
    assert events_of(settings) == []
    unknown = _cli(settings, "clients", "revoke", "no-such-client")
    assert unknown.exit_code != 0


def test_plain_http_is_refused_everywhere(pact, settings, auth):
    grid_factor(pact, auth("admin"))
    shared = published_product(pact, auth("merchant", org="acme"), gtin(1))
    client_id, secret = new_client(settings, "buyer")
    token = access_token(pact, client_id, secret)
    # Over https the same calls succeed, so what follows is refused for the scheme alone.
    assert pact.get(f"/2/footprints/{shared['id']}", headers=bearer(token)).status_code == 200
    with TestClient(create_app(settings), base_url=HTTP, raise_server_exceptions=False) as plain:
        refused = [
            plain.post("/auth/token", data=GRANT, headers=basic(client_id, secret)),
            plain.get("/2/footprints", headers=bearer(token)),
            plain.get(f"/2/footprints/{shared['id']}", headers=bearer(token)),
            post_event(plain, bearer(token), event(CREATED, {"pf": {"productIds": [f"urn:gtin:0{gtin(1)}"]}})),
            plain.get("/.well-known/openid-configuration"),
        ]
    for response in refused:
        body = assert_pact_error(response, 400, "BadRequest")
        assert "access_token" not in body and "data" not in body
        assert token not in response.text
    assert events_of(settings) == []  # the refused event was not recorded either


def test_discovery_names_a_working_token_endpoint(pact, settings):
    response = pact.get("/.well-known/openid-configuration")
    assert response.status_code == 200, response.text
    config = response.json()
    endpoint = config["token_endpoint"]
    assert endpoint.endswith("/auth/token")
    assert urlsplit(endpoint).scheme == "https" and urlsplit(endpoint).hostname == "testserver.local"
    assert "client_credentials" in config["grant_types_supported"]
    client_id, secret = new_client(settings, "buyer")
    token = pact.post(endpoint, data=GRANT, headers=basic(client_id, secret))
    assert token.status_code == 200, token.text
    assert pact.get("/2/footprints", headers=bearer(token.json()["access_token"])).status_code == 200


# --- ListFootprints / GetFootprint ----------------------------------------------------------------


def test_list_pages_follow_the_link_header_visiting_each_once(pact, settings, auth):
    grid_factor(pact, auth("admin"))
    acme = auth("merchant", org="acme")
    published = {published_product(pact, acme, gtin(i))["id"] for i in range(1, 4)}
    headers = client_headers(pact, settings, "buyer")

    seen: list[str] = []
    url: str | None = "/2/footprints?limit=1"
    pages = 0
    while url is not None:
        response = pact.get(url, headers=headers)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert len(data) == 1
        seen += [pf["id"] for pf in data]
        pages += 1
        assert pages <= 3, "a fourth page was announced"
        url = next_link(response.headers.get("link"))
        if url is not None:
            parts = urlsplit(url)
            assert (parts.scheme, parts.hostname, parts.path) == ("https", "testserver.local", "/2/footprints")
            assert dict(parse_qsl(parts.query))["limit"] == "1"
        else:
            assert "link" not in response.headers
    assert sorted(seen) == sorted(published) and len(seen) == 3

    whole = pact.get("/2/footprints", headers=headers)
    assert "link" not in whole.headers
    assert sorted(pf["id"] for pf in whole.json()["data"]) == sorted(published)


def test_link_header_parser_is_rfc_8288():
    assert next_link('<https://a.example/2/footprints?cursor=x>; rel="next"') == "https://a.example/2/footprints?cursor=x"
    assert next_link('<https://a/p1>; rel="prev", <https://a/p3>;rel=next') == "https://a/p3"
    assert next_link('<https://a/p1>; rel="prev"') is None
    assert next_link(None) is None


@pytest.mark.parametrize("cursor", ["!!!", "bm90LWEtdXVpZA", "%00", "a"])
def test_bad_cursor_is_bad_request(pact, settings, cursor):
    headers = client_headers(pact, settings, "buyer")
    assert_pact_error(pact.get("/2/footprints", params={"cursor": cursor}, headers=headers), 400, "BadRequest")


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "abc"}, {"limit": "100000"}])
def test_bad_limit_is_bad_request(pact, settings, params):
    headers = client_headers(pact, settings, "buyer")
    assert_pact_error(pact.get("/2/footprints", params=params, headers=headers), 400, "BadRequest")


def test_filter_selects_by_the_pact_odata_subset_and_pages_with_it(pact, settings, auth):
    grid_factor(pact, auth("admin"))
    acme = auth("merchant", org="acme")
    docs = [published_product(pact, acme, gtin(n), **({"product_category_cpc": "4125"} if n == 3 else {}))["document"]
            for n in (1, 2, 3)]
    headers = client_headers(pact, settings, "buyer")

    def ids(flt: str, **params: str) -> list[str]:
        response = pact.get("/2/footprints", params={"$filter": flt, **params}, headers=headers)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["data"]]

    everything = sorted(d["id"] for d in docs)
    assert sorted(ids(f"created ge '{docs[1]['created']}'")) == sorted(d["id"] for d in docs[1:])
    assert ids(f"created lt '{docs[0]['created']}'") == []
    assert ids("productCategoryCpc eq '4125'") == [docs[2]["id"]]
    assert ids(f"productIds/any(productId:(productId eq '{docs[0]['productIds'][0]}'))") == [docs[0]["id"]]
    assert sorted(ids(f"companyIds/any(companyId:(companyId eq '{docs[0]['companyIds'][0]}')) and "
                      "pcf/geographyCountry eq 'CN'")) == everything
    assert ids("updated ge '2000-01-01T00:00:00Z'") == []  # none was ever updated
    # Paging keeps the filter: two of the three match, one per page.
    flt = "productCategoryCpc eq '4124'"
    first = pact.get("/2/footprints", params={"$filter": flt, "limit": "1"}, headers=headers)
    follow = next_link(first.headers.get("link"))
    assert follow is not None and "%24filter=" in follow
    second = pact.get(follow, headers=headers)
    assert next_link(second.headers.get("link")) is None
    seen = [d["id"] for d in first.json()["data"] + second.json()["data"]]
    assert sorted(seen) == sorted(d["id"] for d in docs[:2])


@pytest.mark.parametrize("flt", ["foo eq 'x'", "created ge 'yesterday'", "created ge '2020", "created", "",
                                 "sellerIds/any(s:(s eq 'x'))", "created eq '2020-01-01T00:00:00'"])
def test_unreadable_filter_is_bad_request(pact, settings, flt):
    headers = client_headers(pact, settings, "buyer")
    response = pact.get("/2/footprints", params={"$filter": flt}, headers=headers)
    assert_pact_error(response, 400, "BadRequest")


def test_get_footprint_matches_the_list(pact, settings, auth):
    grid_factor(pact, auth("admin"))
    shared = published_product(pact, auth("merchant", org="acme"), gtin(1))
    headers = client_headers(pact, settings, "buyer")
    listed = pact.get("/2/footprints", headers=headers).json()["data"]
    got = pact.get(f"/2/footprints/{shared['id']}", headers=headers)
    assert got.status_code == 200, got.text
    assert got.json() == {"data": listed[0]}
    assert got.json()["data"] == shared["document"]
    upper = pact.get(f"/2/footprints/{shared['id'].upper()}", headers=headers)
    assert upper.status_code == 200 and upper.json()["data"]["id"] == shared["id"]


@pytest.mark.parametrize("footprint_id", [str(uuid.uuid4()), "non-existent-id", "1" * 100,
                                          "3fa85f64-5717-4562-b3fc-2c963f66afa6x"])
def test_unknown_footprint_is_no_such_footprint(pact, settings, footprint_id):
    headers = client_headers(pact, settings, "buyer")
    assert_pact_error(pact.get(f"/2/footprints/{footprint_id}", headers=headers), 404, "NoSuchFootprint")


# --- PACT error bodies for the platform's own refusals ----------------------------------------------


def test_invalid_token_is_bad_request(pact):
    # PACT's table puts BadRequest at 400; the conformance cases 6, 7 and 16 expect exactly that.
    for response in (pact.get("/2/footprints", headers=bearer("invalid-access-token")),
                     pact.get(f"/2/footprints/{uuid.uuid4()}", headers=bearer("invalid-access-token")),
                     post_event(pact, bearer("invalid-access-token"),
                                event(PUBLISHED, {"pfIds": [str(uuid.uuid4())]}))):
        assert_pact_error(response, 400, "BadRequest")


def test_missing_token_is_bad_request(pact):
    assert_pact_error(pact.get("/2/footprints"), 400, "BadRequest")
    assert_pact_error(pact.get(f"/2/footprints/{uuid.uuid4()}"), 400, "BadRequest")
    assert_pact_error(post_event(pact, {}, event(PUBLISHED, {"pfIds": [str(uuid.uuid4())]})), 400, "BadRequest")


def test_expired_token_is_token_expired(pact, settings, monkeypatch):
    client_id, _ = new_client(settings, "buyer")
    issued = time.time() - 3600  # an hour ago, for one second: far beyond the 30 s clock skew
    with monkeypatch.context() as m:
        m.setattr(tokens, "time", SimpleNamespace(time=lambda: issued))
        expired = tokens.mint_token(settings.key_path, issuer=settings.token_issuer,
                                    audience=settings.token_audience, sub=f"pact-client:{client_id}", roles=[],
                                    org="buyer", ttl=1, client_id=client_id, scope="pact")
    fresh = tokens.mint_token(settings.key_path, issuer=settings.token_issuer, audience=settings.token_audience,
                              sub=f"pact-client:{client_id}", roles=[], org="buyer", ttl=60,
                              client_id=client_id, scope="pact")
    assert pact.get("/2/footprints", headers=bearer(fresh)).status_code == 200  # the same claims, unexpired
    assert_pact_error(pact.get("/2/footprints", headers=bearer(expired)), 401, "TokenExpired")
    assert_pact_error(pact.get(f"/2/footprints/{uuid.uuid4()}", headers=bearer(expired)), 401, "TokenExpired")


def test_platform_tokens_are_access_denied(pact, settings, auth):
    client_id, _ = new_client(settings, "buyer")
    wrong_org = tokens.mint_token(settings.key_path, issuer=settings.token_issuer, audience=settings.token_audience,
                                  sub=f"pact-client:{client_id}", roles=[], org="acme", ttl=60,
                                  client_id=client_id, scope="pact")
    unregistered = tokens.mint_token(settings.key_path, issuer=settings.token_issuer,
                                     audience=settings.token_audience, sub="pact-client:ghost", roles=[],
                                     org="buyer", ttl=60, client_id="ghost", scope="pact")
    for headers in (auth("merchant", org="buyer"), auth("admin"), bearer(wrong_org), bearer(unregistered)):
        assert_pact_error(pact.get("/2/footprints", headers=headers), 403, "AccessDenied")
        assert_pact_error(pact.get(f"/2/footprints/{uuid.uuid4()}", headers=headers), 403, "AccessDenied")
        assert_pact_error(post_event(pact, headers, event(PUBLISHED, {"pfIds": [str(uuid.uuid4())]})),
                          403, "AccessDenied")
    assert events_of(settings) == []


# --- visibility ------------------------------------------------------------------------------------


def test_visibility_matrix_and_unsharing(pact, settings, auth):
    grid_factor(pact, auth("admin"))
    acme, buyer, other = (auth("merchant", org=o) for o in ("acme", "buyer", "other"))
    shared = published_product(pact, acme, gtin(1), shared_with=["buyer"])["id"]
    public = published_product(pact, acme, gtin(2), public=True, shared_with=[])["id"]
    for_other = published_product(pact, acme, gtin(3), shared_with=["other"])["id"]
    own = published_product(pact, buyer, gtin(4), shared_with=[])["id"]
    others_private = published_product(pact, other, gtin(5), shared_with=[])["id"]
    everything = {shared, public, for_other, own, others_private}
    expected = {"buyer": {shared, public, own}, "other": {public, for_other, others_private},
                "acme": {shared, public, for_other}, "stranger": {public}}

    clients = {org: client_headers(pact, settings, org) for org in expected}
    for org, visible in expected.items():
        assert sorted(list_ids(pact, clients[org])) == sorted(visible), org
        for pf_id in everything:
            response = pact.get(f"/2/footprints/{pf_id}", headers=clients[org])
            if pf_id in visible:
                assert response.status_code == 200 and response.json()["data"]["id"] == pf_id
            else:
                assert_pact_error(response, 404, "NoSuchFootprint")

    # Only the owner changes who reads a footprint.
    stolen = pact.put(f"/v1/merchant/pact-footprints/{shared}/sharing", json={"public": True}, headers=buyer)
    assert stolen.status_code == 404, stolen.text
    unshared = pact.put(f"/v1/merchant/pact-footprints/{shared}/sharing",
                        json={"public": False, "shared_with": ["other"]}, headers=acme)
    assert unshared.status_code == 200, unshared.text
    assert unshared.json()["shared_with"] == ["other"] and unshared.json()["public"] is False
    assert sorted(list_ids(pact, clients["buyer"])) == sorted({public, own})
    assert_pact_error(pact.get(f"/2/footprints/{shared}", headers=clients["buyer"]), 404, "NoSuchFootprint")
    assert shared in list_ids(pact, clients["other"])

    # The owner's own list shows its footprints with their sharing.
    own_list = pact.get("/v1/merchant/pact-footprints", headers=acme)
    assert own_list.status_code == 200, own_list.text
    assert {i["id"]: i["shared_with"] for i in own_list.json()["items"]} == {
        shared: ["other"], public: [], for_other: ["other"]}


# --- the exported document --------------------------------------------------------------------------


def test_export_validates_and_carries_the_products_footprint(pact, settings, auth):
    grid_factor(pact, auth("admin"))
    acme = auth("merchant", org="acme")
    code = gtin(7)
    product(pact, acme, code, kwh="3.25")
    footprint = pact.get(f"/v1/merchant/products/{code}/footprint", headers=acme)
    assert footprint.status_code == 200, footprint.text
    published = publish(pact, acme, code)
    doc = pact.get(f"/2/footprints/{published['id']}", headers=client_headers(pact, settings, "buyer")).json()["data"]

    errors = sorted(e.json_path + ": " + e.message for e in VALIDATOR.iter_errors(doc))
    assert errors == []
    pcf = doc["pcf"]
    assert D(pcf["pCfExcludingBiogenic"]) == D(footprint.json()["kgco2e_per_unit"])
    assert D(pcf["pCfExcludingBiogenic"]) == D("3.25") * GRID  # 3.25 kWh x 0.5366 kgCO2e/kWh
    assert pcf["declaredUnit"] == "kilogram"
    assert doc["productIds"] == [f"urn:gtin:{code.zfill(14)}"]
    assert doc["productCategoryCpc"] == "4124" and doc["companyName"] == "Acme Steel"
    assert (doc["status"], doc["version"]) == ("Active", 1) and "precedingPfIds" not in doc
    # the schema oracle is not vacuous: the same document with a broken field fails it
    assert list(VALIDATOR.iter_errors({**doc, "pcf": {**pcf, "pCfExcludingBiogenic": 1.5}}))
    assert list(VALIDATOR.iter_errors({**doc, "created": "yesterday"}))


def test_republishing_deprecates_the_previous_footprint(pact, settings, auth):
    grid_factor(pact, auth("admin"))
    acme = auth("merchant", org="acme")
    code = gtin(8)
    first = published_product(pact, acme, code)
    lines = [{"stage": "production", "description": "electricity", "quantity": "5", "unit": "kWh",
              "factor_id": "t-grid", "primary": True}]
    changed = pact.put(f"/v1/merchant/products/{code}/inventory", json={"lines": lines}, headers=acme)
    assert changed.status_code == 200, changed.text
    second = publish(pact, acme, code)
    headers = client_headers(pact, settings, "buyer")

    old = pact.get(f"/2/footprints/{first['id']}", headers=headers).json()["data"]
    new = pact.get(f"/2/footprints/{second['id']}", headers=headers).json()["data"]
    assert (old["status"], old["version"]) == ("Deprecated", 2)
    assert "updated" in old
    assert (new["status"], new["version"]) == ("Active", 1)
    assert new["precedingPfIds"] == [first["id"]]
    assert D(new["pcf"]["pCfExcludingBiogenic"]) == D("5") * GRID
    assert D(old["pcf"]["pCfExcludingBiogenic"]) == D("2") * GRID  # the old document is otherwise frozen
    for doc in (old, new):
        assert [e.message for e in VALIDATOR.iter_errors(doc)] == []
    assert sorted(list_ids(pact, headers)) == sorted([first["id"], second["id"]])
    own = pact.get("/v1/merchant/pact-footprints", headers=acme).json()["items"]
    assert {i["id"]: (i["status"], i["version"]) for i in own} == {first["id"]: ("Deprecated", 2),
                                                                     second["id"]: ("Active", 1)}
    # A request for the product is answered with the current footprint only.
    request = event(CREATED, {"pf": {"productIds": [f"urn:gtin:{code.zfill(14)}"]}})
    assert post_event(pact, headers, request).status_code == 200
    [row] = events_of(settings)
    assert [pf["id"] for pf in row["answer"]["data"]["pfs"]] == [second["id"]]


# --- action events ----------------------------------------------------------------------------------


def test_request_created_for_a_readable_product_is_fulfilled(pact, settings, auth):
    grid_factor(pact, auth("admin"))
    code = gtin(1)
    shared = published_product(pact, auth("merchant", org="acme"), code)
    client_id, secret = new_client(settings, "buyer")
    headers = bearer(access_token(pact, client_id, secret))
    request = event(CREATED, {"pf": {"productIds": [f"urn:gtin:{code.zfill(14)}"]}, "comment": "2025 please"})
    response = post_event(pact, headers, request)
    assert response.status_code == 200, response.text
    assert response.content == b""

    [row] = events_of(settings)
    assert (row["client_id"], row["event_id"], row["outcome"]) == (client_id, request["id"], "fulfilled")
    answer = row["answer"]
    assert answer["type"] == FULFILLED and answer["specversion"] == "1.0"
    assert answer["id"] != request["id"]
    assert answer["data"]["requestEventId"] == request["id"]
    assert [pf["id"] for pf in answer["data"]["pfs"]] == [shared["id"]]
    assert answer["data"]["pfs"][0]["pcf"]["pCfExcludingBiogenic"] == shared["document"]["pcf"]["pCfExcludingBiogenic"]
    assert row["delivered_at"] is None and row["delivery_error"]  # no callback registered for this client


@pytest.mark.parametrize("product_ids, code", [
    (["urn:pact:null"], "BadRequest"),  # nothing this host can look up: the request itself is at fault
    ([], "BadRequest"),
    ("unreadable", "NoSuchFootprint"),  # a GTIN that exists, but not for this client
    (["urn:gtin:00000000000000"], "NoSuchFootprint"),
])
def test_request_without_a_readable_match_is_rejected(pact, settings, auth, product_ids, code):
    grid_factor(pact, auth("admin"))
    private = gtin(2)
    published_product(pact, auth("merchant", org="acme"), private, shared_with=["other"])
    if product_ids == "unreadable":  # exists, but the buyer may not read it
        product_ids = [f"urn:gtin:{private.zfill(14)}"]
    headers = client_headers(pact, settings, "buyer")
    request = event(CREATED, {"pf": {"productIds": product_ids}})
    response = post_event(pact, headers, request)
    assert response.status_code == 200, response.text
    assert response.content == b""
    [row] = events_of(settings)
    assert row["outcome"] == "rejected"
    answer = row["answer"]
    assert answer["type"] == REJECTED
    assert answer["data"]["requestEventId"] == request["id"]
    assert answer["data"]["error"]["code"] == code
    assert isinstance(answer["data"]["error"]["message"], str) and answer["data"]["error"]["message"]
    assert "pfs" not in answer["data"]


def test_the_same_event_twice_is_answered_once(pact, settings):
    client_id, secret = new_client(settings, "buyer")
    headers = bearer(access_token(pact, client_id, secret))
    request = event(CREATED, {"pf": {"productIds": ["urn:pact:null"]}})
    assert post_event(pact, headers, request).status_code == 200
    assert post_event(pact, headers, request).status_code == 200
    rows = events_of(settings)
    assert [(r["event_id"], r["outcome"]) for r in rows] == [(request["id"], "rejected")]
    # Event ids are per client: another client's event with the same id is its own.
    other = client_headers(pact, settings, "other")
    assert post_event(pact, other, request).status_code == 200
    assert len(events_of(settings)) == 2


def test_published_notification_takes_pf_ids(pact, settings):
    headers = client_headers(pact, settings, "buyer")
    ok = post_event(pact, headers, event(PUBLISHED, {"pfIds": [str(uuid.uuid4())]}))
    assert ok.status_code == 200, ok.text
    assert ok.content == b""
    [row] = events_of(settings)
    assert (row["type"], row["outcome"], row["answer"]) == (PUBLISHED, "received", None)
    urn = post_event(pact, headers, event(PUBLISHED, {"pfIds": ["urn:gtin:4712345060507"]}))
    assert_pact_error(urn, 400, "BadRequest")
    empty = post_event(pact, headers, event(PUBLISHED, {"pfIds": []}))
    assert_pact_error(empty, 400, "BadRequest")
    assert len(events_of(settings)) == 1


def test_answers_to_our_requests_are_acknowledged(pact, settings):
    headers = client_headers(pact, settings, "buyer")
    rejected = event(REJECTED, {"requestEventId": "r-1", "error": {"code": "NotFound", "message": "none"}})
    assert post_event(pact, headers, rejected).status_code == 200
    assert [r["outcome"] for r in events_of(settings)] == ["received"]


@pytest.mark.parametrize("body, content_type, code", [
    (event("org.wbcsd.pathfinder.Something.Else.v1", {}), CLOUDEVENTS, "NotImplemented"),
    (b'{"specversion": "1.0", "id": ', CLOUDEVENTS, "BadRequest"),
    (b"\xff\xfe not json", CLOUDEVENTS, "BadRequest"),
    ({k: v for k, v in event(CREATED, {"pf": {}}).items() if k != "id"}, CLOUDEVENTS, "BadRequest"),
    ({**event(CREATED, {"pf": {}}), "specversion": "0.3"}, CLOUDEVENTS, "BadRequest"),
    ([event(CREATED, {"pf": {}})], CLOUDEVENTS, "BadRequest"),
    (event(CREATED, {"pf": {"productIds": ["urn:pact:null"]}}), "text/plain", "BadRequest"),
    (event(CREATED, {"pf": {"productIds": ["urn:pact:null"]}}), "application/x-www-form-urlencoded", "BadRequest"),
])
def test_malformed_events_are_refused_and_not_recorded(pact, settings, body, content_type, code):
    headers = client_headers(pact, settings, "buyer")
    assert_pact_error(post_event(pact, headers, body, content_type), 400, code)
    assert events_of(settings) == []


def test_plain_json_content_type_is_accepted(pact, settings):
    headers = client_headers(pact, settings, "buyer")
    response = post_event(pact, headers, event(PUBLISHED, {"pfIds": [str(uuid.uuid4())]}), "application/json")
    assert response.status_code == 200, response.text


class Receiver(StubServer):
    """A tiny PACT host on loopback: a token endpoint taking one credential pair, an events endpoint
    recording what arrives, and a footprint endpoint serving whatever ``footprints`` holds."""

    CLIENT_ID, SECRET, TOKEN = "platform-at-buyer", "s3cret", "buyer-issued-token"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.footprints: dict[str, dict[str, Any]] = {}
        receiver = self

        class Handler(JSONHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/2/footprints/"):
                    if self.headers.get("Authorization") != f"Bearer {receiver.TOKEN}":
                        return self._send(400, {"code": "BadRequest", "message": "token"})
                    pf = receiver.footprints.get(self.path.rsplit("/", 1)[1])
                    return self._send(200, {"data": pf}) if pf else self._send(404, {"code": "NoSuchFootprint",
                                                                                     "message": "no"})
                return self._send(404, {"code": "NoSuchFootprint", "message": "no"})

            def do_POST(self) -> None:  # noqa: N802
                body = self._body()
                if self.path == "/auth/token":
                    expected = basic(receiver.CLIENT_ID, receiver.SECRET)["Authorization"]
                    form = parse_qs(body.decode())
                    if self.headers.get("Authorization") != expected or form.get("grant_type") != ["client_credentials"]:
                        return self._send(401, {"error": "invalid_client"})
                    return self._send(200, {"access_token": receiver.TOKEN, "token_type": "Bearer", "expires_in": 60})
                if self.path == "/2/events":
                    receiver.events.append({"authorization": self.headers.get("Authorization"),
                                            "content_type": self.headers.get("Content-Type"),
                                            "body": json.loads(body)})
                    return self._send(200)
                return self._send(404, {"code": "NoSuchFootprint", "message": "no"})

        super().__init__(Handler)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def loopback_settings(settings: Settings) -> Settings:
    """The test database, with outbound http to loopback allowed (development settings)."""
    return make_settings(settings.data_dir, database_url=settings.effective_database_url,
                         pact_allow_http=True, pact_outbound_private=True)


@pytest.fixture
def loopback(loopback_settings: Settings) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(loopback_settings), base_url=HTTPS, raise_server_exceptions=False) as test_client:
        yield test_client


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_answer_is_delivered_to_the_clients_own_api(loopback, settings, auth, receiver):
    grid_factor(loopback, auth("admin"))
    code = gtin(1)
    shared = published_product(loopback, auth("merchant", org="acme"), code)
    client_id, secret = new_client(settings, "buyer", callback_base_url=receiver.base_url,
                                   callback_client_id=Receiver.CLIENT_ID, callback_client_secret=Receiver.SECRET)
    headers = bearer(access_token(loopback, client_id, secret))
    request = event(CREATED, {"pf": {"productIds": [f"urn:gtin:{code.zfill(14)}"]}})
    response = post_event(loopback, headers, request)
    assert response.status_code == 200 and response.content == b""

    assert wait_for(lambda: events_of(settings)[0]["delivered_at"] is not None), events_of(settings)
    [delivered] = receiver.events
    assert delivered["authorization"] == f"Bearer {Receiver.TOKEN}"
    assert delivered["content_type"].split(";")[0] == "application/cloudevents+json"
    body = delivered["body"]
    assert body["type"] == FULFILLED and body["data"]["requestEventId"] == request["id"]
    assert [pf["id"] for pf in body["data"]["pfs"]] == [shared["id"]]
    [row] = events_of(settings)
    assert row["answer"] == body and row["delivery_error"] is None


def test_answer_to_a_non_public_callback_is_not_sent_by_default(pact, settings, receiver):
    client_id, secret = new_client(settings, "buyer", callback_base_url=receiver.base_url,
                                   callback_client_id=Receiver.CLIENT_ID, callback_client_secret=Receiver.SECRET)
    headers = bearer(access_token(pact, client_id, secret))
    assert post_event(pact, headers, event(CREATED, {"pf": {"productIds": ["urn:pact:null"]}})).status_code == 200
    assert wait_for(lambda: events_of(settings)[0]["delivery_error"] is not None)
    [row] = events_of(settings)
    assert row["delivered_at"] is None and row["outcome"] == "rejected"
    assert receiver.events == []


# --- import -----------------------------------------------------------------------------------------


def imported_setup(pact, settings, auth) -> tuple[dict[str, Any], dict[str, str]]:
    """acme publishes a litre-declared product for buyer; buyer reads the document over PACT."""
    grid_factor(pact, auth("admin"))
    acme = auth("merchant", org="acme")
    code = gtin(1)
    product(pact, acme, code, kwh="0.75", declared_unit="litre", category="chemicals.solvent")
    published = publish(pact, acme, code)
    doc = pact.get(f"/2/footprints/{published['id']}", headers=client_headers(pact, settings, "buyer")).json()["data"]
    assert doc["pcf"]["declaredUnit"] == "liter"
    return doc, auth("merchant", org="buyer")


def test_import_makes_an_enterprise_factor_of_the_buyer(pact, settings, auth):
    doc, buyer = imported_setup(pact, settings, auth)
    response = pact.post("/v1/merchant/pact-imports", json={"category": "chemicals.solvent", "footprint": doc},
                         headers=buyer)
    assert response.status_code == 201, response.text
    factor = response.json()
    assert (factor["tier"], factor["owner_org"], factor["status"]) == ("enterprise", "buyer", "published")
    assert D(factor["kgco2e_per_unit"]) == D(doc["pcf"]["pCfExcludingBiogenic"]) == D("0.75") * GRID
    assert factor["unit"] == "litre"  # PACT's "liter" in the platform's spelling
    assert factor["category"] == "chemicals.solvent"
    assert factor["gwp_basis"] == doc["pcf"]["characterizationFactors"]
    assert doc["id"] in factor["source"]
    # The same footprint again changes nothing; a changed one is the next version.
    again = pact.post("/v1/merchant/pact-imports", json={"category": "chemicals.solvent", "footprint": doc},
                      headers=buyer)
    assert again.status_code == 201 and again.json()["version"] == factor["version"]
    changed = {**doc, "comment": doc["comment"], "pcf": {**doc["pcf"], "pCfExcludingBiogenic": "0.5"}}
    newer = pact.post("/v1/merchant/pact-imports", json={"category": "chemicals.solvent", "footprint": changed},
                      headers=buyer)
    assert newer.status_code == 201, newer.text
    assert newer.json()["version"] == factor["version"] + 1 and newer.json()["kgco2e_per_unit"] == "0.5"
    assert pact.post("/v1/merchant/pact-imports", json={"category": "chemicals.solvent", "footprint": doc},
                     headers=buyer).json()["version"] == factor["version"] + 2  # back to the first value: new version

    # The buyer's inventory can name it: 4 L of solvent per kilogram of the buyer's product.
    code = gtin(9)
    body = {"gtin": code, "names": NAMES, "category": "paint.interior", "declared_unit": "kilogram",
            "declared_units_per_item": "1"}
    assert pact.post("/v1/merchant/products", json=body, headers=buyer).status_code == 201
    lines = [{"stage": "raw_materials", "description": "solvent", "quantity": "4", "unit": "L",
              "factor_id": factor["id"], "primary": False}]
    # The factor is valid from the start of the period the footprint describes (not only from the
    # day acme published it), so the buyer can account that period with it.
    assert factor["valid_from"] == doc["pcf"]["referencePeriodStart"][:10]
    assert factor["valid_from"] < doc["validityPeriodStart"][:10]
    period = {"reference_period_start": doc["pcf"]["referencePeriodStart"][:10],
              "reference_period_end": doc["pcf"]["referencePeriodStart"][:10]}
    inventory = pact.put(f"/v1/merchant/products/{code}/inventory", json={"lines": lines, **period}, headers=buyer)
    assert inventory.status_code == 200, inventory.text
    footprint = pact.get(f"/v1/merchant/products/{code}/footprint", headers=buyer)
    assert footprint.status_code == 200, footprint.text
    assert D(footprint.json()["kgco2e_per_unit"]) == D("4") * D(factor["kgco2e_per_unit"])

    # Nobody else sees it or may use it.
    for headers in ({}, auth("merchant", org="other"), auth("merchant", org="acme")):
        assert pact.get(f"/v1/factors/{factor['id']}", headers=headers).status_code == 404
        listed = pact.get("/v1/factors", params={"category": "chemicals.solvent"}, headers=headers)
        assert factor["id"] not in {f["id"] for f in listed.json()["items"]}
    assert pact.get(f"/v1/factors/{factor['id']}", headers=buyer).status_code == 200
    other = auth("merchant", org="other")
    body["gtin"] = gtin(10)
    assert pact.post("/v1/merchant/products", json=body, headers=other).status_code == 201
    stolen = pact.put(f"/v1/merchant/products/{gtin(10)}/inventory", json={"lines": lines, **period}, headers=other)
    assert stolen.status_code == 422, stolen.text
    assert [e["field"] for e in stolen.json()["errors"]] == ["lines[0].factor_id"]


@pytest.mark.parametrize("mutate", [
    lambda d: {"id": d["id"]},
    lambda d: {**d, "pcf": {**d["pcf"], "pCfExcludingBiogenic": "-1"}},
    lambda d: {**d, "pcf": {**d["pcf"], "declaredUnit": "piece"}},
    lambda d: {**d, "id": "not-a-uuid"},
    lambda d: {k: v for k, v in d.items() if k != "companyIds"},
])
def test_invalid_document_is_invalid_footprint(pact, settings, auth, mutate):
    doc, buyer = imported_setup(pact, settings, auth)
    response = pact.post("/v1/merchant/pact-imports", json={"category": "chemicals.solvent", "footprint": mutate(doc)},
                         headers=buyer)
    assert response.status_code == 422, response.text
    assert response.json()["reason"] == "invalid_footprint"
    assert pact.get("/v1/factors", params={"category": "chemicals.solvent"}, headers=buyer).json()["items"] == []


def supplier(base_url: str, footprint_id: str | None = None) -> dict[str, Any]:
    return {"base_url": base_url, "client_id": Receiver.CLIENT_ID, "client_secret": Receiver.SECRET,
            "footprint_id": footprint_id or str(uuid.uuid4())}


@pytest.mark.parametrize("base_url, reason", [
    ("http://127.0.0.1:9", "insecure_endpoint"),
    ("http://supplier.example", "insecure_endpoint"),
    ("https://127.0.0.1:9", "endpoint_not_public"),
    ("https://10.1.2.3", "endpoint_not_public"),
    ("https://[::1]:9", "endpoint_not_public"),
    ("https://169.254.169.254", "endpoint_not_public"),
])
def test_fetch_refuses_insecure_or_private_suppliers(pact, auth, base_url, reason):
    response = pact.post("/v1/merchant/pact-imports", json={"category": "chemicals.solvent",
                                                            "supplier": supplier(base_url)},
                         headers=auth("merchant", org="buyer"))
    assert response.status_code == 422, response.text
    assert response.json()["reason"] == reason


def test_fetch_from_a_supplier_api(loopback, settings, auth, receiver):
    doc, buyer = imported_setup(loopback, settings, auth)
    receiver.footprints[doc["id"]] = doc
    response = loopback.post("/v1/merchant/pact-imports", json={
        "category": "chemicals.solvent", "supplier": supplier(receiver.base_url, doc["id"])}, headers=buyer)
    assert response.status_code == 201, response.text
    assert D(response.json()["kgco2e_per_unit"]) == D(doc["pcf"]["pCfExcludingBiogenic"])
    missing = loopback.post("/v1/merchant/pact-imports", json={
        "category": "chemicals.solvent", "supplier": supplier(receiver.base_url)}, headers=buyer)
    assert missing.status_code == 422 and missing.json()["reason"] == "endpoint_refused"


def test_import_needs_exactly_one_source(pact, auth):
    buyer = auth("merchant", org="buyer")
    neither = pact.post("/v1/merchant/pact-imports", json={"category": "chemicals.solvent"}, headers=buyer)
    assert neither.status_code == 422, neither.text
    assert pact.post("/v1/merchant/pact-imports", json={"category": "chemicals.solvent", "footprint": {}},
                     headers=auth("consumer")).status_code == 403


def test_refusals_before_routing_are_pact_shaped_under_2_only(pact):
    for method, path, status, code in (("DELETE", "/2/footprints", 405, "BadRequest"),
                                       ("GET", "/2/no-such-action", 404, "NoSuchFootprint")):
        response = pact.request(method, path)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.json().keys() == {"code", "message"} and response.json()["code"] == code
    elsewhere = pact.request("DELETE", "/v1/factors")
    assert elsewhere.status_code == 405
    assert elsewhere.headers["content-type"].startswith("application/problem+json")


def test_failures_inside_pact_routes_are_pact_shaped(pact, settings, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from carbonpuhui.pact.service import PactService

    async def down(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database down"))

    async def bug(*_args, **_kwargs):
        raise RuntimeError("a bug")

    headers = client_headers(pact, settings, "buyer")
    monkeypatch.setattr(PactService, "visible", down)
    unavailable = pact.get("/2/footprints", headers=headers)
    assert unavailable.status_code == 503 and unavailable.headers["retry-after"]
    assert unavailable.json()["code"] == "InternalError" and unavailable.json().keys() == {"code", "message"}
    monkeypatch.setattr(PactService, "visible", bug)
    broken = pact.get("/2/footprints", headers=headers)
    assert broken.status_code == 500
    assert broken.json()["code"] == "InternalError" and "a bug" not in broken.text


def test_pact_clients_work_when_people_sign_in_at_an_identity_provider(settings, auth):
    # People's tokens come from an external IdP (its JWKS is unreachable here); the platform still
    # issues its PACT clients' tokens itself, under its own issuer, and accepts only those from its key.
    external = make_settings(settings.data_dir.parent / "idp-mode", database_url=settings.database_url,
                             jwks_url="http://127.0.0.1:9/jwks")
    with TestClient(create_app(external), base_url=HTTPS, raise_server_exceptions=False) as pact:
        token = access_token(pact, *new_client(external, "buyer"))
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert claims["iss"] == tokens.PACT_ISSUER and claims["scope"] == "pact" and claims["roles"] == []
        listed = pact.get("/2/footprints", headers=bearer(token))
        assert listed.status_code == 200, listed.text
        assert listed.json() == {"data": []}
        # The same key cannot make a person's token: roles, or a missing pact scope, are refused.
        for roles, scope in ((["admin"], "pact"), ([], None)):
            forged = tokens.mint_token(external.key_path, issuer=tokens.PACT_ISSUER, audience=external.token_audience,
                                       sub="x", roles=roles, org="buyer", scope=scope)
            assert pact.get("/v1/me", headers=bearer(forged)).status_code == 401
        # Nor may a PACT token claim the IdP's issuer with the platform's key.
        wrong_issuer = tokens.mint_token(external.key_path, issuer=external.token_issuer,
                                         audience=external.token_audience, sub="x", roles=[], org="buyer",
                                         client_id=claims["client_id"], scope="pact")
        assert_pact_error(pact.get("/2/footprints", headers=bearer(wrong_issuer)), 400, "BadRequest")


def test_undelivered_answers_are_delivered_again_on_request(pact, settings, receiver):
    client_id, secret = new_client(settings, "buyer", callback_base_url=receiver.base_url,
                                   callback_client_id=Receiver.CLIENT_ID, callback_client_secret=Receiver.SECRET)
    headers = bearer(access_token(pact, client_id, secret))
    request = event(CREATED, {"pf": {"productIds": ["urn:pact:null"]}})
    assert post_event(pact, headers, request).status_code == 200
    # The default settings refuse the loopback callback: the answer waits, recorded.
    assert wait_for(lambda: events_of(settings)[0]["delivery_error"] is not None)
    loopback_env = ("CARBONPUHUI_PACT_ALLOW_HTTP", "CARBONPUHUI_PACT_OUTBOUND_PRIVATE")
    env = {"CARBONPUHUI_DATA_DIR": str(settings.data_dir), "CARBONPUHUI_DATABASE_URL": settings.effective_database_url,
           "CARBONPUHUI_REDIS_URL": "", "CARBONPUHUI_JWKS_URL": "", **dict.fromkeys(loopback_env, "1")}
    first = CliRunner().invoke(main, ["pact", "redeliver"], env=env, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"tried": 1, "delivered": 1}
    [arrived] = receiver.events
    assert arrived["body"]["data"]["requestEventId"] == request["id"]
    [row] = events_of(settings)
    assert row["delivered_at"] is not None and row["delivery_error"] is None
    again = CliRunner().invoke(main, ["pact", "redeliver"], env=env, catch_exceptions=False)
    assert json.loads(again.stdout) == {"tried": 0, "delivered": 0} and len(receiver.events) == 1
    # Still refused by the default settings: the command says so with its exit status.
    assert post_event(pact, headers, event(CREATED, {"pf": {"productIds": ["urn:pact:null"]}})).status_code == 200
    assert wait_for(lambda: events_of(settings)[-1]["delivery_error"] is not None)
    refused = CliRunner().invoke(main, ["pact", "redeliver"], env={**env, **dict.fromkeys(loopback_env, "")},
                                 catch_exceptions=False)
    assert refused.exit_code == 1 and json.loads(refused.stdout) == {"tried": 1, "delivered": 0}

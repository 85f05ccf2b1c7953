"""Adversarial checks on products, footprints and PACT: outbound calls that must not be steerable to
private addresses (DNS rebinding, addresses embedding a private IPv4, scheme downgrade by discovery),
bounded work against hostile suppliers and clients (huge or endless answers, event floods), event
fields that must fit what is stored, factor ids one organisation could take from another, and token
confusion between PACT clients and platform users.

Oracles: which requests a loopback host actually received (none, when the platform must not call
it), how many chunks of a body were consumed, the peak number of concurrent deliveries observed by
the receiving host, and the documented reason codes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from carbonpuhui.app import create_app
from carbonpuhui.auth.tokens import mint_token
from carbonpuhui.db import Database
from carbonpuhui.errors import UnprocessableError
from carbonpuhui.pact import events, outbound
from carbonpuhui.pact.service import PactService
from carbonpuhui.settings import Settings
from tests.api.test_pact_api import (
    CREATED,
    HTTPS,
    access_token,
    bearer,
    client_headers,
    db_call,
    event,
    events_of,
    grid_factor,
    gtin,
    imported_setup,
    new_client,
    pact,  # noqa: F401 - the fixture
    post_event,
    published_product,
)
from tests.conftest import make_settings
from tests.http_stub import JSONHandler, StubServer

REAL_GETADDRINFO = socket.getaddrinfo
PUBLIC_IP = "93.184.216.34"  # any global unicast address; nothing connects to it in these tests


class Recorder(StubServer):
    """A loopback HTTP host recording every request line; ``hold`` seconds are spent on each
    POST /2/events while counting how many are in progress at once."""

    def __init__(self, hold: float = 0.0) -> None:
        self.requests: list[str] = []
        self.hold = hold
        self.active = 0
        self.peak = 0
        lock = threading.Lock()
        recorder = self

        class Handler(JSONHandler):
            def do_GET(self) -> None:  # noqa: N802
                recorder.requests.append(f"GET {self.path}")
                self._send(404, {"code": "NoSuchFootprint", "message": "no"})

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.requests.append(f"POST {self.path}")
                if self.path == "/auth/token":
                    return self._send(200, {"access_token": "t", "token_type": "Bearer"})
                with lock:
                    recorder.active += 1
                    recorder.peak = max(recorder.peak, recorder.active)
                time.sleep(recorder.hold)
                with lock:
                    recorder.active -= 1
                return self._send(200)

        super().__init__(Handler)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder() as r:
        yield r


def app_with(settings: Settings, **overrides: Any) -> TestClient[Litestar]:
    return TestClient(create_app(make_settings(settings.data_dir, database_url=settings.effective_database_url,
                                               **overrides)), base_url=HTTPS, raise_server_exceptions=False)


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """``answers[name]``: the address of each successive lookup of ``name`` (the last one repeats)."""
    looked_up: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in answers:
            looked_up.append(name)
            sequence = answers[name]
            return REAL_GETADDRINFO(sequence[min(len(looked_up), len(sequence)) - 1], port, *args, **kwargs)
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def supplier_import(client: TestClient[Litestar], headers: dict[str, str], base_url: str) -> Any:
    return client.post("/v1/merchant/pact-imports", headers=headers, json={
        "category": "chemicals.solvent",
        "supplier": {"base_url": base_url, "client_id": "c", "client_secret": "s", "footprint_id": str(uuid.uuid4())}})


# --- SSRF: the address checked is the address connected to ---------------------------------------


def test_dns_rebinding_after_the_check_cannot_reach_a_private_host(settings, auth, recorder, monkeypatch):
    # http is allowed (as in development) so the loopback recorder can answer; private targets are not.
    fake_dns(monkeypatch, {"rebind.test": [PUBLIC_IP, "127.0.0.1"]})
    with app_with(settings, pact_allow_http=True) as client:
        response = supplier_import(client, auth("merchant", org="buyer"), f"http://rebind.test:{recorder.port}")
    assert response.status_code == 422, response.text
    assert response.json()["reason"] == "endpoint_not_public"
    assert recorder.requests == []


def test_dns_rebinding_cannot_steer_an_event_answer(settings, recorder, monkeypatch):
    fake_dns(monkeypatch, {"rebind.test": [PUBLIC_IP, "127.0.0.1"]})
    client_id, secret = new_client(settings, "buyer", callback_base_url=f"http://rebind.test:{recorder.port}",
                                   callback_client_id="c", callback_client_secret="s")
    with app_with(settings, pact_allow_http=True) as client:
        headers = bearer(access_token(client, client_id, secret))
        assert post_event(client, headers, event(CREATED, {"pf": {"productIds": ["urn:pact:null"]}})).status_code == 200
        deadline = time.monotonic() + 10
        while events_of(settings)[0]["delivery_error"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
    [row] = events_of(settings)
    assert row["delivered_at"] is None and row["delivery_error"]
    assert recorder.requests == []


@pytest.mark.parametrize("address", [
    "64:ff9b::a00:1",  # NAT64 (RFC 6052) of 10.0.0.1: a NAT64 gateway forwards it into the private network
    "64:ff9b::a9fe:a9fe",  # NAT64 of the cloud metadata address 169.254.169.254
    "64:ff9b:1::a00:1",  # the local-use NAT64 prefix (RFC 8215)
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "::a9fe:a9fe",  # IPv4-compatible (deprecated) 169.254.169.254
])
def test_ipv6_addresses_embedding_a_private_ipv4_are_not_public(settings, monkeypatch, address):
    assert ipaddress.ip_address(address).is_global  # what the stdlib alone would let through
    fake_dns(monkeypatch, {"embedded.test": [address]})
    with pytest.raises(UnprocessableError) as refused:
        outbound.check_outbound("https://embedded.test", settings)
    assert refused.value.reason == "endpoint_not_public"


@pytest.mark.parametrize("base_url", [
    "https://2130706433", "https://0x7f000001", "https://0177.0.0.1", "https://127.1", "https://0",
    "https://[::ffff:127.0.0.1]", "https://[::ffff:7f00:1]", "https://[::]", "https://user:pw@127.0.0.1",
    "https://public.example@127.0.0.1", "https://localhost", "https://100.64.0.1", "https://[fd00::1]",
])
def test_loopback_and_private_spellings_are_refused(pact, auth, base_url):  # noqa: F811
    response = supplier_import(pact, auth("merchant", org="buyer"), base_url)
    assert response.status_code == 422, response.text
    assert response.json()["reason"] == "endpoint_not_public"


def test_discovery_cannot_downgrade_the_token_endpoint_to_http():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"token_endpoint": "http://supplier.example/auth/token"})
        return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer"})

    async def run() -> str:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await outbound.client_credentials_token(client, "https://supplier.example", "id", "secret")

    assert asyncio.run(run()) == "t"
    # The client secret never travels over plain http, whatever the supplier's discovery says.
    assert seen == ["https://supplier.example/.well-known/openid-configuration", "https://supplier.example/auth/token"]


# --- bounded work against hostile suppliers ----------------------------------------------------------


class Endless:
    """An async body of ``chunks`` 64 KiB chunks, counting how many were consumed."""

    def __init__(self, chunks: int = 1024, delay: float = 0.0) -> None:
        self.chunks, self.delay, self.served = chunks, delay, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.served += 1
            if self.delay:
                await asyncio.sleep(self.delay)
            yield b" " * (65536 if not self.delay else 1)


def mock_supplier(monkeypatch: pytest.MonkeyPatch, bodies: dict[str, Endless]) -> list[str]:
    """Supplier endpoints answered in-process: ``bodies`` maps a path to an endless body."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        seen.append(f"{request.method} {path}")
        if path in bodies:
            return httpx.Response(200, content=bodies[path])
        if path == "/auth/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer"})
        return httpx.Response(404, json={"code": "NoSuchFootprint", "message": "no"})

    monkeypatch.setattr(outbound, "check_outbound", lambda url, settings: None)
    monkeypatch.setattr(outbound, "httpx_client", lambda settings: httpx.AsyncClient(
        transport=httpx.MockTransport(handler), timeout=outbound.FETCH_TIMEOUT))
    return seen


FOOTPRINT_PATH = "/2/footprints/00000000-0000-4000-8000-000000000001"


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/auth/token", FOOTPRINT_PATH])
def test_a_giant_supplier_answer_is_read_only_up_to_the_limit(pact, auth, monkeypatch, path):  # noqa: F811
    body = Endless()  # 64 MiB
    mock_supplier(monkeypatch, {path: body})
    response = pact.post("/v1/merchant/pact-imports", headers=auth("merchant", org="buyer"), json={
        "category": "chemicals.solvent", "supplier": {"base_url": "https://supplier.example", "client_id": "c",
                                                      "client_secret": "s", "footprint_id": FOOTPRINT_PATH[14:]}})
    assert response.status_code == 422, response.text
    assert body.served <= outbound.MAX_FETCH_BYTES // 65536 + 2, body.served


def test_a_supplier_that_trickles_its_answer_runs_into_a_deadline(pact, auth, monkeypatch):  # noqa: F811
    monkeypatch.setattr(outbound, "FETCH_DEADLINE_SECONDS", 0.5, raising=False)
    seen = mock_supplier(monkeypatch, {"/.well-known/openid-configuration": Endless(chunks=40, delay=0.1)})
    response = pact.post("/v1/merchant/pact-imports", headers=auth("merchant", org="buyer"), json={
        "category": "chemicals.solvent", "supplier": {"base_url": "https://supplier.example", "client_id": "c",
                                                      "client_secret": "s", "footprint_id": FOOTPRINT_PATH[14:]}})
    assert response.status_code == 422, response.text
    assert response.json()["reason"] == "endpoint_unreachable"
    assert seen == ["GET /.well-known/openid-configuration"]  # it gave up there, not 4 seconds later


# --- events -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_id", ["x" * 201, "a\x00b"], ids=["longer-than-stored", "nul"])
def test_event_ids_that_cannot_be_stored_are_bad_requests(pact, settings, event_id):  # noqa: F811
    headers = client_headers(pact, settings, "buyer")
    response = post_event(pact, headers, event(CREATED, {"pf": {"productIds": ["urn:pact:null"]}}, event_id))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "BadRequest"
    assert events_of(settings) == []


@pytest.mark.parametrize("product_ids", [
    [f"urn:gtin:{n}" for n in range(40_000)],  # more than a PostgreSQL statement takes as parameters
    ["urn:gtin:6901234\x00567892"],
], ids=["forty-thousand", "nul"])
def test_requests_naming_odd_gtins_are_answered_not_500(pact, settings, auth, product_ids):  # noqa: F811
    grid_factor(pact, auth("admin"))
    headers = client_headers(pact, settings, "buyer")
    response = post_event(pact, headers, event(CREATED, {"pf": {"productIds": product_ids}}))
    assert response.status_code == 200, response.text
    [row] = events_of(settings)
    assert row["answer"]["data"]["error"]["code"] == "NoSuchFootprint"


def test_a_gtin_urn_in_any_gtin_form_finds_the_footprint(pact, settings, auth):  # noqa: F811
    grid_factor(pact, auth("admin"))
    code = gtin(1)  # GTIN-13
    shared = published_product(pact, auth("merchant", org="acme"), code)
    headers = client_headers(pact, settings, "buyer")
    assert post_event(pact, headers, event(CREATED, {"pf": {"productIds": [f"urn:gtin:{code}"]}})).status_code == 200
    [row] = events_of(settings)
    assert [pf["id"] for pf in row["answer"]["data"]["pfs"]] == [shared["id"]]


def test_an_event_flood_holds_only_a_few_deliveries_open_per_client(settings):
    """Every answered request is a delivery to the client's API; a client sending thousands must not
    make the platform open thousands of connections at once."""
    loopback = make_settings(settings.data_dir, database_url=settings.effective_database_url,
                             pact_allow_http=True, pact_outbound_private=True)
    with Recorder(hold=0.3) as slow:
        client_id, _ = new_client(settings, "buyer", callback_base_url=f"http://127.0.0.1:{slow.port}")

        async def record(session: Any) -> list[int]:
            pact_service = PactService(session)
            rows = [await pact_service.record_event(client_id, f"e{i}", CREATED, "rejected", {"n": i})
                    for i in range(12)]
            return [row.seq for row in rows if row is not None]

        seqs = db_call(settings, record)

        async def deliver_all() -> None:
            db = Database(settings.effective_database_url)
            try:
                state = SimpleNamespace(db=db, settings=loopback)
                await asyncio.gather(*(events.deliver(state, seq) for seq in seqs))  # type: ignore[arg-type]
            finally:
                await db.dispose()

        asyncio.run(deliver_all())
    assert len([r for r in slow.requests if r == "POST /2/events"]) == 12
    assert all(row["delivered_at"] is not None for row in events_of(settings))
    assert 1 <= slow.peak <= events.DELIVERIES_PER_CLIENT < 12, slow.peak


def test_an_events_source_is_never_called(pact, settings, recorder):  # noqa: F811
    headers = client_headers(pact, settings, "buyer")  # no callback registered
    request = {**event(CREATED, {"pf": {"productIds": ["urn:pact:null"]}}),
               "source": f"http://127.0.0.1:{recorder.port}/"}
    assert post_event(pact, headers, request).status_code == 200
    assert events_of(settings)[0]["answer"]["source"] == events.SOURCE
    assert recorder.requests == []


# --- imports and factor ids ---------------------------------------------------------------------------


def test_an_import_cannot_take_another_organisations_default_factor_id(pact, settings, auth):  # noqa: F811
    doc, buyer = imported_setup(pact, settings, auth)
    buyer_default = f"pact-{uuid.uuid5(uuid.NAMESPACE_URL, 'buyer').hex[:8]}-{doc['id']}"
    squatter = pact.post("/v1/merchant/pact-imports", headers=auth("merchant", org="rival"), json={
        "category": "chemicals.solvent", "footprint": doc, "factor_id": buyer_default})
    assert squatter.status_code == 422, squatter.text
    assert [e["field"] for e in squatter.json()["errors"]] == ["factor_id"]
    own = pact.post("/v1/merchant/pact-imports", headers=buyer, json={"category": "chemicals.solvent", "footprint": doc})
    assert own.status_code == 201, own.text
    assert (own.json()["id"], own.json()["owner_org"]) == (buyer_default, "buyer")


def test_an_import_never_versions_another_organisations_or_a_public_factor(pact, settings, auth):  # noqa: F811
    doc, buyer = imported_setup(pact, settings, auth)
    first = pact.post("/v1/merchant/pact-imports", headers=buyer, json={"category": "chemicals.solvent",
                                                                         "footprint": doc, "factor_id": "buyer-solvent"})
    assert first.status_code == 201, first.text
    rival = auth("merchant", org="rival")
    for factor_id in ("buyer-solvent", "t-grid"):
        response = pact.post("/v1/merchant/pact-imports", headers=rival, json={
            "category": "chemicals.solvent", "footprint": doc, "factor_id": factor_id})
        assert response.status_code == 409, response.text
        assert response.json()["reason"] == "factor_exists"
    versions = pact.get("/v1/factors/buyer-solvent/versions", headers=buyer).json()["items"]
    assert [(v["version"], v["owner_org"]) for v in versions] == [(1, "buyer")]
    assert [v["version"] for v in pact.get("/v1/factors/t-grid/versions").json()["items"]] == [1]


# --- token confusion -----------------------------------------------------------------------------------


def test_a_pact_client_token_is_not_a_merchant_token(pact, settings, auth):  # noqa: F811
    grid_factor(pact, auth("admin"))
    code = gtin(1)
    published_product(pact, auth("merchant", org="acme"), code)
    headers = client_headers(pact, settings, "acme")  # a PACT client of the owner itself
    for method, path in (("GET", f"/v1/merchant/products/{code}/inventory"),
                         ("GET", f"/v1/merchant/products/{code}/footprint"),
                         ("GET", "/v1/merchant/pact-footprints"),
                         ("PUT", f"/v1/merchant/products/{code}/inventory")):
        response = pact.request(method, path, headers=headers, json={"lines": []} if method == "PUT" else None)
        assert response.status_code == 403, (path, response.text)


def test_a_platform_token_claiming_scope_pact_needs_a_live_client_of_its_organisation(pact, settings):  # noqa: F811
    client_id, _ = new_client(settings, "acme")

    def forged(org: str, cid: str) -> dict[str, str]:
        return bearer(mint_token(settings.key_path, issuer=settings.token_issuer, audience=settings.token_audience,
                                 sub="mallory", roles=["merchant"], org=org, client_id=cid, scope="pact"))

    for headers in (forged("rival", client_id), forged("acme", "no-such-client"), forged("acme", "carbonpuhui-cli")):
        response = pact.get("/2/footprints", headers=headers)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "AccessDenied"

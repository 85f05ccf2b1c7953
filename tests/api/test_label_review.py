"""Review of the labels feature: hostile input that used to be a 500, the conservative value of a
negative footprint, a body the owner unassigned, the inventory or the benchmark changing while a
decision is made, and cache invalidation only on commit."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from carbonpuhui.db.engine import create_engine
from carbonpuhui.footprints.service import ProductService
from carbonpuhui.labels.cache import PublicCache
from carbonpuhui.paging import encode_cursor
from tests.api.label_flow import BODY, CATEGORY, Flow, gtin, gtin14

SOME_UUID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def flow(client, auth) -> Flow:
    f = Flow(client, auth)
    f.benchmark(["10", "20", "30", "40"], uncertainty_penalty="0")
    return f


def _problem(response, status: int, reason: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    if reason is not None:
        assert body["reason"] == reason, body
    return body


# --- NUL bytes PostgreSQL text cannot hold --------------------------------------------------------

@pytest.mark.parametrize("decision", ["reject", "approve"])
def test_a_decision_comment_with_a_nul_is_422(flow: Flow, decision: str) -> None:
    application = flow.apply(flow.product(1, "15"))
    body = _problem(flow.decide(application["id"], decision, comment="checked\x00"), 422)
    assert [e["field"] for e in body["errors"]] == ["comment"]
    queue = flow.ok(flow.client.get("/v1/certification/applications", headers=flow.verifier))["items"]
    assert [x["status"] for x in queue] == ["pending"]  # nothing was decided


def test_a_benchmark_source_with_a_nul_is_422(flow: Flow) -> None:
    response = flow.client.put(f"/v1/benchmarks/{CATEGORY}", headers=flow.admin, json={
        "method": "fixed", "thresholds": ["1", "2", "3", "4"], "baseline": "2", "declared_unit": "kilogram",
        "source": "CISA\x00"})
    assert [e["field"] for e in _problem(response, 422)["errors"]] == ["source"]
    assert flow.ok(flow.client.get(f"/v1/benchmarks/{CATEGORY}"))["thresholds"] == ["10", "20", "30", "40"]


# --- cursors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stamp", ["2026-01-01T00:00:00", "2026-01-01", "2026-01-01T00:00:00.123456"])
def test_a_queue_cursor_without_a_time_zone_is_400(flow: Flow, stamp: str) -> None:
    response = flow.client.get("/v1/certification/applications", headers=flow.verifier,
                               params={"cursor": encode_cursor(f"{stamp}|{SOME_UUID}")})
    _problem(response, 400, "invalid_cursor")


def test_a_queue_cursor_with_a_time_zone_still_pages(flow: Flow) -> None:
    for n in (1, 2):
        flow.apply(flow.product(n, "15"))
    first = flow.ok(flow.client.get("/v1/certification/applications", headers=flow.verifier, params={"limit": 1}))
    rest = flow.ok(flow.client.get("/v1/certification/applications", headers=flow.verifier,
                                   params={"limit": 1, "cursor": first["next_cursor"]}))
    assert [x["gtin"] for x in first["items"] + rest["items"]] == [gtin14(1), gtin14(2)]
    assert rest["next_cursor"] is None


# --- the conservative value -------------------------------------------------------------------------

def test_the_penalty_never_makes_a_negative_footprint_look_better(flow: Flow) -> None:
    flow.benchmark(["-11", "-9", "-5", "10"], uncertainty_penalty="0.25")
    label = flow.certify(flow.product(1, "-10"))
    # Surcharged upwards: -10 + |-10| x 0.25 = -7.5 (x 1.25 would give -12.5, grade A).
    assert (label["kgco2e_per_unit"], label["conservative_basis"], label["grade"]) == (
        "-7.5", "declared_with_penalty", "C")
    positive = flow.certify(flow.product(2, "8"))
    assert (positive["kgco2e_per_unit"], positive["grade"]) == ("10", "D")  # 8 x 1.25, on the D boundary


# --- request headers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("accept", ["application/json;q=inf", "*/*;q=1e400", "text/html;q=1e999"])
def test_an_accept_quality_litestar_cannot_rank_gets_the_page(flow: Flow, accept: str) -> None:
    flow.certify(flow.product(1, "15"))
    response = flow.client.get(f"/01/{gtin14(1)}", headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("host", ["x" * 3000, "user@labels.example.cn", "[::1",
                                  "labels%2eexample.cn"])
def test_a_host_that_is_no_host_name_is_400(flow: Flow, host: str) -> None:
    code = flow.product(1, "15")
    flow.certify(code)
    flow.listing(code)
    for path in (f"/01/{gtin14(1)}", f"/v1/products/{code}", f"/v1/products/{code}/label.svg",
                 f"/v1/products/{code}/alternatives"):
        _problem(flow.client.get(path, headers={"Host": host}), 400, "invalid_host")


@pytest.mark.parametrize("host", ["labels.example.cn", "labels.example.cn:8443", "10.0.0.7:8000", "[2001:db8::1]:80",
                                  "svc_labels"])
def test_real_host_names_are_served(flow: Flow, host: str) -> None:
    flow.certify(flow.product(1, "15"))
    response = flow.client.get(f"/01/{gtin14(1)}", headers={"Host": host, "Accept": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["digital_link"] == f"http://{host}/01/{gtin14(1)}"


def test_a_configured_base_url_ignores_the_host(tmp_path, migrated_database_url, auth) -> None:
    from litestar.testing import TestClient

    from carbonpuhui.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, database_url=migrated_database_url, public_base_url="https://labels.example.cn")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get(f"/v1/products/{gtin(1)}", headers={"Host": "evil.example:8080"})
    assert response.status_code == 404, response.text  # no such product, and the Host never mattered


# --- a body the owner has unassigned ------------------------------------------------------------------

def test_a_body_the_owner_unassigned_sees_no_inventory_and_cannot_approve(flow: Flow) -> None:
    code = flow.product(1, "15")
    application = flow.apply(code)
    assert flow.client.delete(f"/v1/merchant/products/{code}/verifiers/{BODY}", headers=flow.owner).status_code < 300
    assert flow.client.get(f"/v1/merchant/products/{code}/inventory", headers=flow.verifier).status_code == 404
    [item] = flow.ok(flow.client.get("/v1/certification/applications", headers=flow.verifier))["items"]
    assert (item["id"], item["inventory"], item["footprint"]) == (application["id"], None, None)
    _problem(flow.decide(application["id"]), 409, "verifier_not_assigned")
    product = flow.ok(flow.client.get(f"/v1/merchant/products/{code}", headers=flow.owner))
    assert product["verifiers"] == []  # approving would have entrusted the body with it again
    assert flow.public(code)["label"] is None
    # Rejecting is still possible, and frees the product for a new application.
    assert flow.ok(flow.decide(application["id"], "reject"))["status"] == "rejected"
    assert flow.apply(code, body=BODY)["status"] == "pending"


def test_an_open_application_still_shows_every_body_the_inventory(flow: Flow) -> None:
    application = flow.apply(flow.product(1, "15"), body=None)
    [item] = flow.ok(flow.client.get("/v1/certification/applications", headers=flow.other_verifier))["items"]
    assert item["id"] == application["id"] and item["inventory"] is not None and item["footprint"] is not None


# --- the inventory changing while a decision is made (PostgreSQL: row locks) ---------------------------

def test_no_inventory_change_lands_between_the_check_and_the_label(flow: Flow, settings, monkeypatch) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers: the decision's first write already excludes every other")
    code = flow.product(1, "15")
    application = flow.apply(code)
    compute = ProductService.compute
    outcome: list[str] = []

    async def concurrent_put_inventory() -> None:
        # What PUT .../inventory does, in its order: claim the product's revision, then replace lines.
        engine = create_engine(settings.database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("SET LOCAL lock_timeout = '500ms'"))
                await conn.execute(text("UPDATE products SET inventory_revision = inventory_revision + 1 "
                                        "WHERE gtin = :g"), {"g": gtin14(1)})
                await conn.execute(text("UPDATE inventory_lines SET direct_kgco2e = '45' WHERE gtin = :g"),
                                   {"g": gtin14(1)})
            outcome.append("changed")
        except DBAPIError:
            outcome.append("blocked")
        finally:
            await engine.dispose()

    async def racing_compute(self, product, **kwargs):
        if not outcome:
            await asyncio.wait_for(concurrent_put_inventory(), 10)
        return await compute(self, product, **kwargs)

    monkeypatch.setattr(ProductService, "compute", racing_compute)
    label = flow.ok(flow.decide(application["id"]))["label"]
    assert outcome == ["blocked"]
    assert label["kgco2e_per_unit"] == "15"  # the inventory the verifier saw, and the revision applied for


def test_no_benchmark_change_lands_between_grading_and_issuing(flow: Flow, settings, monkeypatch) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers: the decision's first write already excludes every other")
    application = flow.apply(flow.product(1, "15"))
    compute = ProductService.compute
    outcome: list[str] = []

    async def concurrent_benchmark_put() -> None:
        engine = create_engine(settings.database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("SET LOCAL lock_timeout = '500ms'"))
                await conn.execute(text("UPDATE benchmarks SET revision = revision + 1 WHERE category = :c"),
                                   {"c": CATEGORY})
            outcome.append("changed")
        except DBAPIError:
            outcome.append("blocked")
        finally:
            await engine.dispose()

    async def racing_compute(self, product, **kwargs):
        if not outcome:
            await asyncio.wait_for(concurrent_benchmark_put(), 10)
        return await compute(self, product, **kwargs)

    monkeypatch.setattr(ProductService, "compute", racing_compute)
    flow.ok(flow.decide(application["id"]))
    assert outcome == ["blocked"]  # a benchmark PUT waits, and then regrades this label too


# --- the public cache ----------------------------------------------------------------------------------

def test_only_a_committed_change_invalidates_the_public_cache(flow: Flow, monkeypatch) -> None:
    code = flow.product(1, "15")
    other = flow.product(2, "15", category="tyre.passenger")  # no benchmark in this category
    invalidated: list[list[str]] = []
    original = PublicCache.invalidate

    async def spy(self, gtins):
        invalidated.append(sorted(gtins))
        await original(self, gtins)

    monkeypatch.setattr(PublicCache, "invalidate", spy)
    before = flow.public(other)
    failing = flow.decide(flow.apply(other)["id"])  # decided, then no grade can be given: all rolled back
    _problem(failing, 409, "benchmark_missing")
    _problem(flow.client.post("/v1/merchant/listings", headers=flow.owner,
                              json={"gtin": other, "store": "s\x00", "price_cents": 1}), 422)
    assert invalidated == []
    assert flow.public(other) == before
    flow.certify(code)
    assert invalidated == [[gtin14(1)]]

"""Hostile and edge input on the product-footprint and PACT routes, found by review: each once gave
a 500 (or left stored data wrong) and is now a clear, localised 4xx that changes nothing stored.
Races run two apps ("two processes") on the run's database (SQLite, or PostgreSQL with
``CARBONPUHUI_TEST_DATABASE_URL``), with a barrier that makes the collision certain.

Oracles: the PACT v2.3 rules the exporter enforces (validity within 3 years of the reference
period's end, pCfExcludingBiogenic >= 0, AR5/AR6 only), float64's range (1.8e308) for the Monte
Carlo inputs, and the stored inventory read back before and after a refused request.
"""

from __future__ import annotations

import inspect
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import TestClient

from carbonpuhui.app import create_app
from carbonpuhui.cli import main
from carbonpuhui.footprints.repository import ProductRepository
from carbonpuhui.footprints.service import ProductService
from carbonpuhui.i18n import translate
from carbonpuhui.pact import export
from carbonpuhui.pact.service import PactService
from carbonpuhui.settings import Settings
from tests.api.test_pact_api import (
    CLOUDEVENTS,
    CREATED,
    HTTPS,
    PUBLISH,
    PUBLISHED,
    assert_pact_error,
    client_headers,
    event,
    events_of,
    grid_factor,
    gtin,
    post_event,
    product,
)
from tests.api.test_products import NAMES, create_factor, line

D = Decimal
PROBLEM = "application/problem+json"
BARRIER_SECONDS = 30


@pytest.fixture
def pact(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url=HTTPS, raise_server_exceptions=False) as test_client:
        yield test_client


def problem(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    return response.json()


def fields_of(response) -> list[str | None]:
    return [e["field"] for e in problem(response, 422)["errors"]]


def inventory_of(pact, headers, code: str) -> dict[str, Any]:
    response = pact.get(f"/v1/merchant/products/{code}/inventory", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def own_footprints(pact, headers) -> list[dict[str, Any]]:
    response = pact.get("/v1/merchant/pact-footprints", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def new_product(pact, headers, code: str, lines: list[dict[str, Any]], **inventory: Any) -> None:
    body = {"gtin": code, "names": NAMES, "category": "steel.hot_rolled_coil", "declared_unit": "kilogram",
            "declared_units_per_item": "1"}
    created = pact.post("/v1/merchant/products", json=body, headers=headers)
    assert created.status_code == 201, created.text
    put = pact.put(f"/v1/merchant/products/{code}/inventory", json={"lines": lines, **inventory}, headers=headers)
    assert put.status_code == 200, put.text


# --- units whose conversion factor leaves the range of exact decimals or of float64 ----------------

# Each is commensurable with kg but 10**±1296 of it (yotta/yocto metres to the 27th cancel in
# dimension, not in magnitude), or so large that the Decimal conversion itself overflows.
HOSTILE_MASS_UNITS = ["Ym³³/ym³³·kg", "ym³³/Ym³³·kg", "Ym³³³/ym³³³·kg", "Ym³/ym³·Zm³/zm³·Em³/am³·kg"]


@pytest.mark.parametrize("unit", HOSTILE_MASS_UNITS)
@pytest.mark.parametrize("how", ["factor_id", "factor_category"])
def test_a_unit_with_an_absurd_conversion_is_a_422_and_keeps_the_inventory(pact, auth, unit, how):
    admin, acme = auth("admin"), auth("merchant", org="acme")
    create_factor(pact, admin, "t-steel", category="steel.scrap", unit="kg", value="2")
    code = gtin(1)
    new_product(pact, acme, code, [line(quantity="3", unit="kg", factor_id="t-steel")])
    before = inventory_of(pact, acme, code)
    ref = {"factor_id": "t-steel"} if how == "factor_id" else {"factor_category": "steel.scrap"}
    lognormal = {"distribution": "lognormal", "gsd": 1.2}
    response = pact.put(f"/v1/merchant/products/{code}/inventory", headers={**acme, "Accept-Language": "en"},
                        json={"lines": [line(quantity="1", unit=unit, activity_uncertainty=lognormal, **ref)]})
    field = "lines[0].unit" if how == "factor_id" else "lines[0].factor_category"
    assert fields_of(response) == [field]
    assert inventory_of(pact, acme, code) == before
    footprint = pact.get(f"/v1/merchant/products/{code}/footprint", params={"samples": 100}, headers=acme)
    assert footprint.status_code == 200, footprint.text
    assert D(footprint.json()["kgco2e_per_unit"]) == D("3") * D("2")


def test_sensible_prefixed_units_still_convert(pact, auth):
    admin, acme = auth("admin"), auth("merchant", org="acme")
    create_factor(pact, admin, "t-steel", category="steel.scrap", unit="kg", value="2")
    code = gtin(1)
    # 5 Mg = 5000 kg; 7 mg = 0.000007 kg.
    new_product(pact, acme, code, [line(quantity="5", unit="Mg", factor_id="t-steel"),
                                   line(quantity="7", unit="mg", factor_id="t-steel")])
    footprint = pact.get(f"/v1/merchant/products/{code}/footprint", params={"samples": 100}, headers=acme).json()
    assert [D(x["amount"]) for x in footprint["lines"]] == [D("5000"), D("0.000007")]
    assert D(footprint["kgco2e_per_unit"]) == (D("5000") + D("0.000007")) * 2


# --- publishing a PACT footprint ---------------------------------------------------------------------


def publish(pact, headers, code: str, **overrides: Any):
    return pact.post(f"/v1/merchant/products/{code}/pact-footprints", json={**PUBLISH, **overrides},
                     headers={**headers, "Accept-Language": "en"})


@pytest.mark.parametrize("period", [
    ("2000-01-01", "2000-12-31"),  # ended more than 3 years ago: no PACT validity can include today
    ("0001-01-01", "0001-12-31"),
    ("2999-01-01", "2999-12-31"),  # has not ended: validity would start before the period ends
    ("9999-01-01", "9999-12-31"),  # the day after the end does not exist
], ids=["2000", "year-1", "2999", "9999"])
def test_a_reference_period_pact_cannot_date_is_a_4xx_and_publishes_nothing(pact, auth, period):
    acme = auth("merchant", org="acme")
    code = gtin(1)
    new_product(pact, acme, code, [line(quantity="2", direct_kgco2e="0.5")],
                reference_period_start=period[0], reference_period_end=period[1])
    assert fields_of(publish(pact, acme, code)) == ["reference_period_end"]
    assert own_footprints(pact, acme) == []


def _days_from_now(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


@pytest.mark.parametrize("validity_end", [
    "2000-01-01", _days_from_now(-1), _days_from_now(365 * 10), "9999-12-31",
], ids=["long-past", "yesterday", "in-ten-years", "9999"])
def test_a_validity_end_outside_the_pact_window_is_a_422(pact, auth, validity_end):
    grid_factor(pact, auth("admin"))
    acme = auth("merchant", org="acme")
    product(pact, acme, gtin(1))  # the default reference period: last calendar year
    assert fields_of(publish(pact, acme, gtin(1), validity_end=validity_end)) == ["validity_end"]
    assert own_footprints(pact, acme) == []


def test_a_validity_end_inside_the_window_is_published(pact, auth):
    grid_factor(pact, auth("admin"))
    acme = auth("merchant", org="acme")
    product(pact, acme, gtin(1))
    end = date(datetime.now(UTC).year + 1, 6, 30)  # before last year's end + 3 years
    response = publish(pact, acme, gtin(1), validity_end=end.isoformat())
    assert response.status_code == 201, response.text
    assert response.json()["document"]["validityPeriodEnd"].startswith(end.isoformat())


@pytest.mark.parametrize("value", ["NaN", "sNaN", "-NaN", "Infinity", "-Infinity"])
def test_a_non_finite_exempted_percent_is_a_422(pact, auth, value):
    grid_factor(pact, auth("admin"))
    acme = auth("merchant", org="acme")
    product(pact, acme, gtin(1))
    assert fields_of(publish(pact, acme, gtin(1), exempted_emissions_percent=value)) == ["exempted_emissions_percent"]


@pytest.mark.parametrize("name", [" ", "\t\n", "\u3000"], ids=["space", "tab-newline", "ideographic-space"])
def test_a_blank_company_name_is_a_422(pact, auth, name):
    grid_factor(pact, auth("admin"))
    acme = auth("merchant", org="acme")
    product(pact, acme, gtin(1))
    assert fields_of(publish(pact, acme, gtin(1), company_name=name)) == ["company_name"]


def test_a_blank_english_product_name_is_a_4xx_not_a_500(pact, auth):
    acme = auth("merchant", org="acme")
    body = {"gtin": gtin(1), "names": {**NAMES, "en": " "}, "category": "steel.hot_rolled_coil",
            "declared_unit": "kilogram", "declared_units_per_item": "1"}
    assert pact.post("/v1/merchant/products", json=body, headers=acme).status_code == 201
    put = pact.put(f"/v1/merchant/products/{gtin(1)}/inventory", json={"lines": [line(direct_kgco2e="1")]},
                   headers=acme)
    assert put.status_code == 200, put.text
    response = publish(pact, acme, gtin(1))
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert own_footprints(pact, acme) == []


def test_an_ar4_factor_cannot_be_published_as_pact(pact, auth):
    # PACT v2.3's characterizationFactors are AR5 or AR6 only.
    admin, acme = auth("admin"), auth("merchant", org="acme")
    create_factor(pact, admin, "t-ar4", category="electricity.grid", unit="kWh", value="0.5", gwp_basis="AR4")
    code = gtin(1)
    new_product(pact, acme, code, [line(quantity="1", unit="kWh", factor_id="t-ar4")])
    body = problem(publish(pact, acme, code), 409)
    assert body["reason"] == "pact_gwp_basis_unsupported"
    assert own_footprints(pact, acme) == []


def test_a_negative_total_is_refused_rather_than_published_as_zero(pact, auth):
    # pCfExcludingBiogenic must be >= 0; publishing 0 for a product whose inventory sums to -5
    # would tell every buyer (and every import of it as a factor) something the inventory does not say.
    acme = auth("merchant", org="acme")
    code = gtin(1)
    new_product(pact, acme, code, [line(quantity="1", direct_kgco2e="1"), line(quantity="1", direct_kgco2e="-6")])
    assert D(pact.get(f"/v1/merchant/products/{code}/footprint", params={"samples": 100},
                      headers=acme).json()["kgco2e_per_unit"]) == D("-5")
    body = problem(publish(pact, acme, code), 409)
    assert body["reason"] == "pact_negative_footprint"
    assert own_footprints(pact, acme) == []


@pytest.mark.parametrize("lines", [
    [line(quantity="0", direct_kgco2e="3")],
    [line(quantity="1", direct_kgco2e="-5"), line(quantity="1", direct_kgco2e="5")],
], ids=["all-zero", "sums-to-zero"])
def test_a_zero_total_is_published_as_zero(pact, auth, lines):
    acme = auth("merchant", org="acme")
    code = gtin(1)
    new_product(pact, acme, code, lines)
    footprint = pact.get(f"/v1/merchant/products/{code}/footprint", params={"samples": 100}, headers=acme)
    assert footprint.status_code == 200, footprint.text
    fp = footprint.json()
    assert D(fp["kgco2e_per_unit"]) == 0 and fp["monte_carlo"]["p50"] == "0"
    assert sum(x["share"] for x in fp["lines"]) == pytest.approx(1.0 if len(lines) == 2 else 0.0)
    response = publish(pact, acme, code)
    assert response.status_code == 201, response.text
    assert D(response.json()["document"]["pcf"]["pCfExcludingBiogenic"]) == 0


@pytest.mark.parametrize("locale", ["en", "zh-Hans", "zh-Hant"])
def test_the_new_publish_refusals_follow_accept_language(pact, auth, locale):
    acme = auth("merchant", org="acme")
    code = gtin(1)
    new_product(pact, acme, code, [line(quantity="1", direct_kgco2e="-2")])
    headers = {**acme, "Accept-Language": locale}
    url = f"/v1/merchant/products/{code}/pact-footprints"
    negative = problem(pact.post(url, json=PUBLISH, headers=headers), 409)
    assert negative["detail"] == translate(
        "PACT cannot express a negative footprint ({value} kgCO2e per declared unit).", locale, value="-2")
    blank = problem(pact.post(url, json={**PUBLISH, "company_name": " ", "validity_end": "2000-01-01"},
                              headers=headers), 422)
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    assert blank["errors"] == [
        {"field": "company_name", "message": translate("Must not be blank.", locale)},
        {"field": "validity_end", "message": translate("Must be at least {n}.", locale, n=tomorrow)}]
    if locale != "en":  # really translated, not the English id passed through
        assert negative["detail"] != "PACT cannot express a negative footprint (-2 kgCO2e per declared unit)."
        assert blank["errors"][0]["message"] != "Must not be blank."


def test_an_all_negative_inventory_has_shares_and_hotspots_by_magnitude(pact, auth):
    acme = auth("merchant", org="acme")
    code = gtin(1)
    new_product(pact, acme, code, [
        line(stage="end_of_life", quantity="1", direct_kgco2e="-2", activity_uncertainty={"distribution": "normal", "sd": "0.1"}),
        line(stage="use", quantity="3", direct_kgco2e="-1")])
    fp = pact.get(f"/v1/merchant/products/{code}/footprint", params={"samples": 1000}, headers=acme).json()
    assert D(fp["kgco2e_per_unit"]) == D("-5")
    assert [x["share"] for x in fp["lines"]] == pytest.approx([2 / 5, 3 / 5])
    assert [h["position"] for h in fp["hotspots"]] == [2, 1]  # 60 % alone is under 80 %
    assert [s["stage"] for s in fp["stage_hotspots"]] == ["use", "end_of_life"]
    mc = {k: D(v) for k, v in fp["monte_carlo"].items() if k not in ("samples", "seed")}
    assert mc["p5"] <= mc["p50"] <= mc["p80"] <= mc["p95"] < 0


@pytest.mark.parametrize("where", ["publish", "sharing"])
def test_a_nul_in_shared_with_is_a_422(pact, auth, where):
    grid_factor(pact, auth("admin"))
    acme = auth("merchant", org="acme")
    product(pact, acme, gtin(1))
    if where == "publish":
        response = publish(pact, acme, gtin(1), shared_with=["buyer", "a\x00b"])
    else:
        created = publish(pact, acme, gtin(1))
        assert created.status_code == 201, created.text
        response = pact.put(f"/v1/merchant/pact-footprints/{created.json()['id']}/sharing",
                            json={"public": False, "shared_with": ["a\x00b"]}, headers=acme)
    assert fields_of(response) == ["shared_with"]
    listed = own_footprints(pact, acme)
    assert all(item["shared_with"] in ([], ["buyer"]) for item in listed)


def test_a_nul_in_a_certification_body_is_a_422(pact, auth):
    acme = auth("merchant", org="acme")
    code = gtin(1)
    new_product(pact, acme, code, [line(direct_kgco2e="1")])
    response = pact.post(f"/v1/merchant/products/{code}/verifiers", json={"certification_body": "cb\x00"},
                         headers=acme)
    assert fields_of(response) == ["certification_body"]
    assert pact.get(f"/v1/merchant/products/{code}", headers=acme).json()["verifiers"] == []


# --- PACT action events ------------------------------------------------------------------------------


DEEP_EVENT = b'{"specversion": "1.0", "data": ' + b"[" * 5000 + b"]" * 5000 + b"}"
DEEP_OBJECT = b'{"a":' * 3000 + b"1" + b"}" * 3000


@pytest.mark.parametrize("body", [DEEP_EVENT, DEEP_OBJECT], ids=["deep-array", "deep-object"])
def test_deeply_nested_events_are_bad_request(pact, settings, body):
    headers = {**client_headers(pact, settings, "buyer"), "Accept-Language": "zh-Hant"}
    refused = assert_pact_error(post_event(pact, headers, body), 400, "BadRequest")
    assert refused["message"] == translate("The request is malformed.", "zh-Hant")
    assert events_of(settings) == []


@pytest.mark.parametrize("event_id", ["e\x00", "x" * 201], ids=["nul", "201-chars"])
def test_an_event_id_the_database_cannot_hold_is_bad_request(pact, settings, event_id):
    headers = client_headers(pact, settings, "buyer")
    body = event(PUBLISHED, {"pfIds": [str(uuid.uuid4())]}, event_id=event_id)
    assert_pact_error(post_event(pact, headers, body), 400, "BadRequest")
    assert events_of(settings) == []


def test_an_event_id_of_200_characters_is_accepted(pact, settings):
    headers = client_headers(pact, settings, "buyer")
    body = event(PUBLISHED, {"pfIds": [str(uuid.uuid4())]}, event_id="x" * 200)
    assert post_event(pact, headers, body).status_code == 200
    assert [e["event_id"] for e in events_of(settings)] == ["x" * 200]


@pytest.mark.parametrize("product_id", ["urn:gtin:\x00", "urn:gtin:0690123456001\x005", "urn:gtin:" + "9" * 500])
def test_request_for_an_impossible_gtin_is_rejected_not_a_500(pact, settings, product_id):
    headers = client_headers(pact, settings, "buyer")
    response = post_event(pact, headers, event(CREATED, {"pf": {"productIds": [product_id]}}))
    assert response.status_code == 200, response.text
    [recorded] = events_of(settings)
    assert recorded["outcome"] == "rejected"
    assert recorded["answer"]["data"]["error"]["code"] == "NoSuchFootprint"


# --- imports ------------------------------------------------------------------------------------------


def _published_document(pact, settings, auth) -> tuple[dict[str, Any], dict[str, str]]:
    grid_factor(pact, auth("admin"))
    acme = auth("merchant", org="acme")
    product(pact, acme, gtin(1), declared_unit="litre")
    created = publish(pact, acme, gtin(1), public=True)
    assert created.status_code == 201, created.text
    return created.json()["document"], auth("merchant", org="buyer")


def test_an_import_whose_default_validity_overflows_the_calendar_is_invalid_footprint(pact, settings, auth):
    doc, buyer = _published_document(pact, settings, auth)
    doc = {k: v for k, v in doc.items() if k not in ("validityPeriodStart", "validityPeriodEnd")}
    doc["pcf"] = {**doc["pcf"], "referencePeriodEnd": "9999-06-01T00:00:00Z"}  # + 3 years: year 10002
    response = pact.post("/v1/merchant/pact-imports", json={"category": "chemicals.solvent", "footprint": doc},
                         headers=buyer)
    assert problem(response, 422)["reason"] == "invalid_footprint"
    assert pact.get("/v1/factors", params={"category": "chemicals.solvent"}, headers=buyer).json()["items"] == []


@pytest.mark.parametrize("base_url", ["https://[::1", "https://supplier.example:99999", "https://supplier.example:x"])
def test_a_malformed_supplier_url_is_a_422(pact, auth, base_url):
    supplier = {"base_url": base_url, "client_id": "c", "client_secret": "s", "footprint_id": str(uuid.uuid4())}
    response = pact.post("/v1/merchant/pact-imports", json={"category": "chemicals.solvent", "supplier": supplier},
                         headers=auth("merchant", org="buyer"))
    assert problem(response, 422)["reason"] == "endpoint_unreachable"


# --- the CLI -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["", "a" * 65, "exämple.com"], ids=["empty", "65-chars", "unicode"])
def test_serve_self_signed_with_a_host_no_certificate_can_name_is_a_usage_error(tmp_path, host):
    env = {"CARBONPUHUI_DATA_DIR": str(tmp_path / "data"), "CARBONPUHUI_DATABASE_URL": "",
           "CARBONPUHUI_REDIS_URL": "", "CARBONPUHUI_JWKS_URL": ""}
    result = CliRunner().invoke(main, ["serve", "--tls-self-signed", "--host", host], env=env)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output and "--host" in result.output


@pytest.mark.parametrize("url", ["https://partner.example:99999", "https://partner.example:x"])
def test_clients_create_refuses_a_callback_url_with_a_bad_port(tmp_path, url):
    env = {"CARBONPUHUI_DATA_DIR": str(tmp_path / "data"), "CARBONPUHUI_DATABASE_URL": "",
           "CARBONPUHUI_REDIS_URL": "", "CARBONPUHUI_JWKS_URL": ""}
    result = CliRunner().invoke(main, ["clients", "create", "--org", "buyer", "--callback-url", url], env=env)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "client_secret" not in result.output


# --- races between two processes ------------------------------------------------------------------------


@pytest.fixture
def two_apps(settings: Settings) -> Iterator[tuple[TestClient[Litestar], TestClient[Litestar]]]:
    """Two app instances (own engines and pools) on one database, as two API processes would be."""
    with ExitStack() as stack:
        first = stack.enter_context(TestClient(create_app(settings), base_url=HTTPS, raise_server_exceptions=False))
        second = stack.enter_context(TestClient(create_app(settings), base_url=HTTPS, raise_server_exceptions=False))
        yield first, second


def rendezvous(monkeypatch, owner: Any, name: str, parties: int = 2, *, before: bool = False,
               at_most: float | None = None) -> None:
    """The first ``parties`` calls of ``owner.name`` wait for each other (after running, or before
    with ``before``): every racer has read the same state before any of them writes. Each app runs
    on its own event-loop thread, so a blocking wait holds up only its own racer. With ``at_most``
    a racer waits that long and then goes on alone: where the code under test rightly serialises
    the racers, the second cannot arrive until the first has finished."""
    barrier = threading.Barrier(parties, timeout=at_most or BARRIER_SECONDS)
    original = getattr(owner, name)
    calls = iter(range(parties))
    lock = threading.Lock()

    def waits() -> bool:
        with lock:
            if next(calls, None) is None:
                return False
        if at_most is None:
            return True
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return False

    if asyncio_function(original):
        async def patched(*args: Any, **kwargs: Any) -> Any:
            if before and waits():
                barrier.wait()
            result = await original(*args, **kwargs)
            if not before and waits():
                barrier.wait()
            return result
    else:
        def patched(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            if before and waits():
                barrier.wait()
            result = original(*args, **kwargs)
            if not before and waits():
                barrier.wait()
            return result

    monkeypatch.setattr(owner, name, patched)


def asyncio_function(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn)


def race(*calls: Callable[[], Any]) -> list[Any]:
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result(timeout=BARRIER_SECONDS * 2) for f in futures]


def test_two_puts_of_one_inventory_never_mix(two_apps, auth, monkeypatch):
    a, b = two_apps
    admin, acme = auth("admin"), auth("merchant", org="acme")
    create_factor(a, admin, "t-grid", category="electricity.grid", unit="kWh", value="0.5")
    code = gtin(1)
    new_product(a, acme, code, [line(direct_kgco2e="1")])
    bodies = [[line(description=f"{who}-{i}", quantity=str(i + 1), factor_id="t-grid") for i in range(n)]
              for who, n in (("a", 3), ("b", 5))]
    rendezvous(monkeypatch, ProductService, "owned")
    url = f"/v1/merchant/products/{code}/inventory"
    responses = race(lambda: a.put(url, json={"lines": bodies[0]}, headers=acme),
                     lambda: b.put(url, json={"lines": bodies[1]}, headers=acme))
    monkeypatch.undo()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["reason"] == "inventory_revision_mismatch"
    winner = responses.index(next(r for r in responses if r.status_code == 200))
    stored = inventory_of(a, acme, code)
    assert stored["revision"] == 2
    assert [x["description"] for x in stored["lines"]] == [x["description"] for x in bodies[winner]]


def test_refresh_racing_a_put_never_mixes(two_apps, auth, monkeypatch):
    a, b = two_apps
    admin, acme = auth("admin"), auth("merchant", org="acme")
    create_factor(a, admin, "t-grid", category="electricity.grid", unit="kWh", value="0.5")
    code = gtin(1)
    new_product(a, acme, code, [line(description="old", factor_id="t-grid")])
    current = a.get("/v1/factors/t-grid/versions", headers=admin).json()["items"][-1]
    keep = ("names", "category", "unit", "gwp_basis", "region", "tier", "valid_from", "source")
    assert a.post("/v1/factors/t-grid/versions", json={**{k: current[k] for k in keep}, "kgco2e_per_unit": "0.6"},
                  headers=admin).status_code == 201
    assert a.post("/v1/factors/t-grid/versions/2/publish", headers=admin).status_code == 200
    rendezvous(monkeypatch, ProductService, "owned")
    responses = race(
        lambda: a.post(f"/v1/merchant/products/{code}/footprint/refresh", params={"samples": 100}, headers=acme),
        lambda: b.put(f"/v1/merchant/products/{code}/inventory", json={"lines": [line(description="new", direct_kgco2e="2")]},
                      headers=acme))
    monkeypatch.undo()
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    stored = inventory_of(a, acme, code)
    assert stored["revision"] == 2
    if responses[0].status_code == 200:  # the refresh won: the old line, moved to version 2
        assert [(x["description"], x["factor_version"]) for x in stored["lines"]] == [("old", 2)]
    else:
        assert [(x["description"], x["direct_kgco2e"]) for x in stored["lines"]] == [("new", "2")]


def test_two_organisations_registering_one_gtin(two_apps, auth, monkeypatch):
    a, b = two_apps
    body = {"gtin": gtin(1), "names": NAMES, "category": "steel.hot_rolled_coil", "declared_unit": "kilogram",
            "declared_units_per_item": "1"}
    rendezvous(monkeypatch, ProductRepository, "get")  # the "is it taken?" read
    responses = race(lambda: a.post("/v1/merchant/products", json=body, headers=auth("merchant", org="acme")),
                     lambda: b.post("/v1/merchant/products", json=body, headers=auth("merchant", org="other")))
    monkeypatch.undo()
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 201).json()["owner_org"]
    loser = next(r for r in responses if r.status_code == 409).json()
    assert loser["reason"] == "gtin_owned_by_another_organisation"
    for org in ("acme", "other"):
        mine = a.get(f"/v1/merchant/products/{gtin(1)}", headers=auth("merchant", org=org))
        assert mine.status_code == (200 if org == winner else 404)


def test_two_publishes_of_one_product_leave_one_active_footprint(two_apps, auth, monkeypatch):
    a, b = two_apps
    grid_factor(a, auth("admin"))
    acme = auth("merchant", org="acme")
    product(a, acme, gtin(1))
    first = publish(a, acme, gtin(1))
    assert first.status_code == 201, first.text
    # Both racers have read the Active footprint they are about to deprecate (unless publishing
    # serialises them, as it must: then the second waits for the first to commit).
    rendezvous(monkeypatch, export, "build_product_footprint", at_most=3)
    url = f"/v1/merchant/products/{gtin(1)}/pact-footprints"
    responses = race(lambda: a.post(url, json=PUBLISH, headers=acme), lambda: b.post(url, json=PUBLISH, headers=acme))
    monkeypatch.undo()
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    listed = own_footprints(a, acme)
    assert sorted(item["status"] for item in listed) == ["Active", "Deprecated", "Deprecated"]
    # Each publication deprecated the one before it: a chain, not two heads.
    active = next(item for item in listed if item["status"] == "Active")
    middle = next(item for item in listed if item["id"] == active["document"]["precedingPfIds"][0])
    assert middle["document"]["precedingPfIds"] == [first.json()["id"]]


def test_the_same_event_twice_at_once_is_recorded_once(two_apps, settings, monkeypatch):
    a, b = two_apps
    headers = client_headers(a, settings, "buyer")
    body = event(PUBLISHED, {"pfIds": [str(uuid.uuid4())]})
    rendezvous(monkeypatch, PactService, "record_event", before=True)
    responses = race(lambda: post_event(a, headers, body, CLOUDEVENTS), lambda: post_event(b, headers, body, CLOUDEVENTS))
    monkeypatch.undo()
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert [e["event_id"] for e in events_of(settings)] == [body["id"]]

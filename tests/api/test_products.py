"""Products over HTTP: registration, GTIN validation and normalisation, ownership conflicts,
listing, and the public view. Also the helpers the footprint tests share."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.unit.test_gtin import gs1_check_digit

NAMES = {"zh-Hans": "热轧钢卷", "zh-Hant": "熱軋鋼卷", "en": "Hot-rolled coil"}
STEEL_GTIN = "6901234567892"  # API.md's example; its check digit 2 by the GS1 rule
STEEL_GTIN14 = "06901234567892"

FACTOR: dict[str, Any] = {
    "names": {"zh-Hans": "因子", "zh-Hant": "因子", "en": "Factor"}, "gwp_basis": "AR5", "region": "CN",
    "tier": "national", "valid_from": "2022-01-01", "source": "test",
}


def product_body(gtin: str = STEEL_GTIN, **overrides: Any) -> dict[str, Any]:
    return {"gtin": gtin, "names": NAMES, "category": "steel.hot_rolled_coil", "declared_unit": "kilogram",
            "declared_units_per_item": "1000", **overrides}


def create_product(client, headers, gtin: str = STEEL_GTIN, **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/merchant/products", json=product_body(gtin, **overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def create_factor(client, admin, factor_id: str, *, category: str, unit: str, value: str,
                  publish: bool = True, **overrides: Any) -> dict[str, Any]:
    body = {**FACTOR, "id": factor_id, "category": category, "unit": unit, "kgco2e_per_unit": value, **overrides}
    response = client.post("/v1/factors", json=body, headers=admin)
    assert response.status_code == 201, response.text
    if publish:
        publish_version(client, admin, factor_id, 1)
    return response.json()


def add_version(client, admin, factor_id: str, *, publish: bool = True, **changes: Any) -> int:
    """The next version of a factor with ``changes``; published unless told otherwise."""
    current = client.get(f"/v1/factors/{factor_id}/versions", headers=admin).json()["items"][-1]
    keep = ("names", "category", "unit", "kgco2e_per_unit", "gwp_basis", "region", "tier", "valid_from",
            "source", "owner_org", "uncertainty", "data_quality")
    body = {k: current[k] for k in keep if current.get(k) is not None}
    body.update(changes)
    response = client.post(f"/v1/factors/{factor_id}/versions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    version = response.json()["version"]
    if publish:
        publish_version(client, admin, factor_id, version)
    return version


def publish_version(client, admin, factor_id: str, version: int) -> None:
    response = client.post(f"/v1/factors/{factor_id}/versions/{version}/publish", headers=admin)
    assert response.status_code == 200, response.text


def line(stage: str = "production", description: str = "line", quantity: str = "1", unit: str = "kWh",
         **fields: Any) -> dict[str, Any]:
    return {"stage": stage, "description": description, "quantity": quantity, "unit": unit, **fields}


def put_inventory(client, headers, lines: list[dict[str, Any]], gtin: str = STEEL_GTIN, **extra: Any):
    return client.put(f"/v1/merchant/products/{gtin}/inventory", json={"lines": lines, **extra}, headers=headers)


def field_errors(response) -> list[str | None]:
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


def with_check_digit(body: str) -> str:
    return body + gs1_check_digit(body)


def wrong_check_digit(gtin: str) -> str:
    return gtin[:-1] + str((int(gtin[-1]) + 1) % 10)


# --- registration -------------------------------------------------------------------------------


def test_register_answers_with_14_digits(client, auth):
    out = create_product(client, auth("merchant", org="acme", sub="alice"))
    assert out["gtin"] == STEEL_GTIN14
    assert out["owner_org"] == "acme"
    assert out["inventory_revision"] == 0 and out["verifiers"] == []
    assert (out["declared_unit"], out["declared_units_per_item"], out["region"]) == ("kilogram", "1000", "CN")
    assert out["names"] == NAMES and out["category"] == "steel.hot_rolled_coil"


@pytest.mark.parametrize("body", ["9638507", "03600029145", "690123456789", "8061414112345"])
def test_every_gtin_length_registers_and_normalises(client, auth, body):
    gtin = with_check_digit(body)
    out = create_product(client, auth("merchant", org="acme"), gtin=gtin)
    assert out["gtin"] == gtin.zfill(14)


@pytest.mark.parametrize("gtin", ["6901234567893", "96385075", "036000291453", "80614141123459"])
def test_wrong_check_digit_is_422_naming_gtin(client, auth, gtin):
    assert gs1_check_digit(gtin[:-1]) != gtin[-1]
    response = client.post("/v1/merchant/products", json=product_body(gtin), headers=auth("merchant", org="acme"))
    assert response.status_code == 422
    assert response.json()["reason"] == "gtin_check_digit"
    assert response.json()["errors"][0]["field"] == "gtin"


@pytest.mark.parametrize("gtin", ["6901234567", "690123456789212", "٦٩٠١٢٣٤٥٦٧٨٩٢", "69012345678 2", "6901234567892\n",
                                  ""])
def test_malformed_gtin_is_422_naming_gtin(client, auth, gtin):
    response = client.post("/v1/merchant/products", json=product_body(gtin), headers=auth("merchant", org="acme"))
    assert response.status_code == 422, response.text
    # Not 8/12/13/14 ASCII digits: refused with its own reason (the empty string by the schema).
    assert response.json()["errors"][0]["field"] == "gtin"
    if gtin:
        assert response.json()["reason"] == "gtin_format"
    assert client.get("/v1/merchant/products", headers=auth("merchant", org="acme")).json()["items"] == []


@pytest.mark.parametrize("path", ["/v1/merchant/products/{}", "/v1/products/{}",
                                  "/v1/merchant/products/{}/inventory", "/v1/merchant/products/{}/footprint"])
def test_wrong_check_digit_in_a_path_is_422_naming_gtin(client, auth, path):
    create_product(client, auth("merchant", org="acme"))
    response = client.get(path.format(wrong_check_digit(STEEL_GTIN)), headers=auth("merchant", org="acme"))
    assert response.status_code == 422
    assert response.json()["reason"] == "gtin_check_digit"
    assert response.json()["errors"][0]["field"] == "gtin"
    short = client.get(path.format("69012345678"), headers=auth("merchant", org="acme"))
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "gtin"
    assert short.json()["reason"] == "gtin_format"


def test_another_organisations_gtin_is_409_in_any_form(client, auth):
    create_product(client, auth("merchant", org="acme"))
    for form in (STEEL_GTIN, STEEL_GTIN14):
        response = client.post("/v1/merchant/products", json=product_body(form), headers=auth("merchant", org="beta"))
        assert response.status_code == 409
        assert response.json()["reason"] == "gtin_owned_by_another_organisation"
    # Nothing changed hands.
    assert client.get(f"/v1/merchant/products/{STEEL_GTIN}", headers=auth("merchant", org="acme")).status_code == 200
    assert client.get(f"/v1/merchant/products/{STEEL_GTIN}", headers=auth("merchant", org="beta")).status_code == 404


def test_same_organisation_twice_is_409_product_exists(client, auth):
    create_product(client, auth("merchant", org="acme", sub="alice"))
    for form in (STEEL_GTIN, STEEL_GTIN14):
        again = client.post("/v1/merchant/products", json=product_body(form, category="steel.rebar"),
                            headers=auth("merchant", org="acme", sub="bob"))
        assert again.status_code == 409
        assert again.json()["reason"] == "product_exists"
    out = client.get(f"/v1/merchant/products/{STEEL_GTIN}", headers=auth("merchant", org="acme")).json()
    assert out["category"] == "steel.hot_rolled_coil"


def test_any_gtin_form_finds_the_same_product(client, auth):
    acme = auth("merchant", org="acme")
    gtin8 = "96385074"
    create_product(client, acme, gtin=gtin8)
    forms = [gtin8, "0000" + gtin8, "00000" + gtin8, "000000" + gtin8]  # GTIN-8, -12, -13, -14
    for form in forms:
        own = client.get(f"/v1/merchant/products/{form}", headers=acme)
        assert own.status_code == 200, form
        assert own.json()["gtin"] == "00000096385074"
        public = client.get(f"/v1/products/{form}")
        assert public.status_code == 200, form
        assert public.json()["gtin"] == "00000096385074"
    upc = "036000291452"
    create_product(client, acme, gtin="0" + upc)  # registered as a GTIN-13
    for form in (upc, "0" + upc, "00" + upc):
        assert client.get(f"/v1/merchant/products/{form}", headers=acme).json()["gtin"] == "00" + upc
        assert client.get(f"/v1/products/{form}").json()["gtin"] == "00" + upc


def test_unknown_product_is_404(client, auth):
    for path in (f"/v1/merchant/products/{STEEL_GTIN}", f"/v1/products/{STEEL_GTIN}"):
        response = client.get(path, headers=auth("merchant", org="acme"))
        assert response.status_code == 404
        assert response.json()["reason"] == "product_not_found"


@pytest.mark.parametrize(("overrides", "field"), [
    ({"declared_units_per_item": "0"}, "declared_units_per_item"),
    ({"declared_units_per_item": "-1"}, "declared_units_per_item"),
    ({"declared_units_per_item": "1E+99"}, "declared_units_per_item"),
    ({"region": "XX"}, "region"),
    ({"declared_unit": "bushel"}, "declared_unit"),
    ({"names": {**NAMES, "en": "a\x00b"}}, "names"),
])
def test_invalid_product_fields(client, auth, overrides, field):
    response = client.post("/v1/merchant/products", json=product_body(**overrides),
                           headers=auth("merchant", org="acme"))
    assert field in field_errors(response)
    assert client.get(f"/v1/products/{STEEL_GTIN}").status_code == 404


def test_merchant_without_organisation_is_403(client, auth):
    response = client.post("/v1/merchant/products", json=product_body(), headers=auth("merchant"))
    assert response.status_code == 403
    assert response.json()["reason"] == "no_organisation"
    # A certification body's or an agency's org is not an enterprise.
    for role in ("consumer", "verifier", "officer", "admin"):
        other = client.post("/v1/merchant/products", json=product_body(), headers=auth(role, org="acme"))
        assert other.status_code == 403, role


def test_listing_is_the_organisations_own_products_page_by_page(client, auth):
    acme, beta = auth("merchant", org="acme"), auth("merchant", org="beta")
    bodies = [f"69012345{n:04d}" for n in range(5)]
    mine = sorted(with_check_digit(b).zfill(14) for b in bodies)
    for b in bodies:
        create_product(client, acme, gtin=with_check_digit(b))
    create_product(client, beta, gtin="96385074")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/merchant/products", params=params, headers=acme)
        assert page.status_code == 200
        assert len(page.json()["items"]) <= 2
        seen += [p["gtin"] for p in page.json()["items"]]
        assert all(p["owner_org"] == "acme" for p in page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == mine
    assert [p["gtin"] for p in client.get("/v1/merchant/products", headers=beta).json()["items"]] == ["00000096385074"]
    bad = base64.urlsafe_b64encode(b"not-a-gtin").decode()
    assert client.get("/v1/merchant/products", params={"cursor": bad}, headers=acme).status_code == 400


def test_public_view_has_names_and_no_owner(client, auth):
    create_product(client, auth("merchant", org="acme-steel-works"))
    public = client.get(f"/v1/products/{STEEL_GTIN}")
    assert public.status_code == 200
    body = public.json()
    assert set(body) == {"gtin", "names", "category", "declared_unit", "declared_units_per_item", "label", "listings",
                         "digital_link"}
    assert body["label"] is None and body["listings"] == []
    assert "acme-steel-works" not in public.text

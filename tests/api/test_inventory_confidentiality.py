"""Who may see and change a product's inventory: the owner, verifiers of an assigned certification
body, administrators; nobody else learns it exists. The public view carries no inventory detail."""

from __future__ import annotations

import pytest

from tests.api.test_products import STEEL_GTIN, create_factor, create_product, line, put_inventory

OWNER = "acme-secret-org"
BODY = "cb1"
SECRET_LINES = [
    line("raw_materials", "SECRET pig iron from supplier Zeta", "937.125", "g", factor_id="t-secret-iron"),
    line("production", "SECRET rolling mill electricity", "452.75", "Wh", factor_id="t-secret-grid", primary=True),
    line("production", "SECRET measured process CO2", "1.0625", "kg", direct_kgco2e="0.1234567"),
]
READS = ("inventory", "footprint")


@pytest.fixture
def product(client, auth):
    admin = auth("admin")
    create_factor(client, admin, "t-secret-iron", category="iron.pig_iron", unit="kg", value="1.8765")
    create_factor(client, admin, "t-secret-grid", category="electricity.grid", unit="kWh", value="0.5432",
                  uncertainty={"distribution": "lognormal", "gsd": 1.07})
    owner = auth("merchant", org=OWNER)
    create_product(client, owner)
    response = put_inventory(client, owner, SECRET_LINES)
    assert response.status_code == 200, response.text
    return response.json()


def read(client, headers, what: str):
    return client.get(f"/v1/merchant/products/{STEEL_GTIN}/{what}", params={"samples": 100}, headers=headers)


def assign(client, headers, body: str = BODY):
    return client.post(f"/v1/merchant/products/{STEEL_GTIN}/verifiers", json={"certification_body": body},
                       headers=headers)


def unassign(client, headers, body: str = BODY):
    return client.delete(f"/v1/merchant/products/{STEEL_GTIN}/verifiers/{body}", headers=headers)


@pytest.mark.parametrize("what", READS)
def test_owner_and_admin_read(client, auth, product, what):
    for headers in (auth("merchant", org=OWNER, sub="someone-else-at-the-owner"), auth("admin")):
        response = read(client, headers, what)
        assert response.status_code == 200, response.text
        assert response.json()["gtin"] == product["gtin"]
        assert "no-store" in response.headers["cache-control"] and "private" in response.headers["cache-control"]


@pytest.mark.parametrize("what", READS)
def test_nobody_else_learns_the_product_exists(client, auth, product, what):
    outsiders = [
        auth("merchant", org="beta"),
        auth("merchant"),  # a merchant without an organisation
        auth("merchant", org=BODY),  # a merchant named like the body: not a verifier
        auth("verifier", org=BODY),  # not (yet) assigned
        auth("verifier", org=OWNER),  # a verifier whose org is named like the owner: not a merchant
        auth("verifier"),
    ]
    # The same answer as for a product that does not exist at all.
    nowhere = client.get(f"/v1/merchant/products/96385074/{what}", headers=auth("merchant", org="beta"))
    assert nowhere.status_code == 404 and nowhere.json()["reason"] == "product_not_found"
    for headers in outsiders:
        response = read(client, headers, what)
        assert response.status_code == 404, response.text
        assert response.json()["reason"] == "product_not_found"
        assert "SECRET" not in response.text and "t-secret" not in response.text


@pytest.mark.parametrize("what", READS)
def test_other_roles_are_403_and_anonymous_401(client, auth, product, what):
    for role in ("consumer", "officer"):
        assert read(client, auth(role, org=OWNER), what).status_code == 403
    anonymous = read(client, {}, what)
    assert anonymous.status_code == 401
    assert "SECRET" not in anonymous.text


@pytest.mark.parametrize("what", READS)
def test_assigned_body_reads_until_unassigned(client, auth, product, what):
    owner = auth("merchant", org=OWNER)
    verifier, other_body = auth("verifier", org=BODY), auth("verifier", org="cb2")
    assert read(client, verifier, what).status_code == 404
    assigned = assign(client, owner)
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["verifiers"] == [BODY]
    assert assign(client, owner).json()["verifiers"] == [BODY]  # assigning twice is the same
    seen = read(client, verifier, what)
    assert seen.status_code == 200
    assert seen.json() == read(client, owner, what).json()
    assert read(client, auth("verifier", org=BODY, sub="another-auditor"), what).status_code == 200
    assert read(client, other_body, what).status_code == 404
    assert read(client, auth("merchant", org=BODY), what).status_code == 404

    removed = unassign(client, owner)
    assert removed.status_code == 200 and removed.json()["verifiers"] == []
    assert read(client, verifier, what).status_code == 404
    again = unassign(client, owner)
    assert again.status_code == 404 and again.json()["reason"] == "verifier_not_assigned"


def test_only_the_owner_changes_the_inventory_and_its_verifiers(client, auth, product):
    owner = auth("merchant", org=OWNER)
    assert assign(client, owner).status_code == 200
    replacement = [line(unit="kg", direct_kgco2e="99")]
    gtin = STEEL_GTIN
    attempts = {
        "put": lambda h: put_inventory(client, h, replacement),
        "refresh": lambda h: client.post(f"/v1/merchant/products/{gtin}/footprint/refresh", headers=h),
        "assign": lambda h: assign(client, h, "cb-evil"),
        "unassign": lambda h: unassign(client, h, BODY),
    }
    refusals = [
        (auth("merchant", org="beta"), 404),
        (auth("merchant"), 404),
        (auth("merchant", org=BODY), 404),
        (auth("verifier", org=BODY), 403),  # the assigned body reads, never writes
        (auth("admin"), 403),
        (auth("consumer"), 403),
        (auth("officer", org=OWNER), 403),
        ({}, 401),
    ]
    for name, attempt in attempts.items():
        for headers, status in refusals:
            response = attempt(headers)
            assert response.status_code == status, (name, headers, response.text)
    stored = read(client, owner, "inventory").json()
    assert stored["revision"] == 1
    assert [x["description"] for x in stored["lines"]] == [x["description"] for x in SECRET_LINES]
    mine = client.get(f"/v1/merchant/products/{gtin}", headers=owner).json()
    assert mine["verifiers"] == [BODY]
    # The owner can do all four.
    assert put_inventory(client, owner, replacement).status_code == 200
    assert client.post(f"/v1/merchant/products/{gtin}/footprint/refresh", headers=owner).status_code == 200
    assert assign(client, owner, "cb2").json()["verifiers"] == [BODY, "cb2"]
    assert unassign(client, owner, BODY).json()["verifiers"] == ["cb2"]


def test_owners_product_record_is_not_for_others(client, auth, product):
    for headers, status in ((auth("merchant", org="beta"), 404), (auth("verifier", org=BODY), 403),
                            (auth("consumer"), 403), ({}, 401)):
        assert client.get(f"/v1/merchant/products/{STEEL_GTIN}", headers=headers).status_code == status
    assert client.get("/v1/merchant/products", headers=auth("merchant", org="beta")).json()["items"] == []


def test_public_view_has_no_inventory_detail(client, auth, product):
    owner = auth("merchant", org=OWNER)
    assert assign(client, owner).status_code == 200
    full = read(client, owner, "footprint").json()
    stored = read(client, owner, "inventory").json()
    for headers in ({}, auth("consumer"), auth("merchant", org="beta"), owner, auth("admin")):
        response = client.get(f"/v1/products/{STEEL_GTIN}", headers=headers)
        assert response.status_code == 200
        body = response.json()
        assert body["label"] is None and body["listings"] == []
        assert body["gtin"] == product["gtin"]
        text = response.text
        # No key of the inventory or the footprint (beyond the product's own gtin and declared
        # unit), and no value of either, appears anywhere.
        forbidden_keys = (set(stored) | set(stored["lines"][0]) | set(full) | set(full["lines"][0])
                          | {"owner_org", "verifiers", "created_by"}) - {"gtin", "declared_unit"}
        keys = set(body) | {k for v in body.values() if isinstance(v, dict) for k in v}
        assert not keys & forbidden_keys, keys & forbidden_keys
        for key in forbidden_keys:
            assert f'"{key}"' not in text, key
        values = [OWNER, BODY, full["kgco2e_per_unit"], full["monte_carlo"]["mean"], "1.8765", "0.5432", "1.07"]
        values += [x[k] for x in stored["lines"] for k in ("description", "quantity", "factor_id", "direct_kgco2e")]
        values += [x[k] for x in full["lines"] for k in ("amount", "kgco2e_per_unit")]
        for value in values:
            if value:
                assert value not in text, value
        assert "SECRET" not in text and "t-secret" not in text

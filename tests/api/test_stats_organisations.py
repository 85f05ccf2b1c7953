"""Organisation profiles and sites over HTTP: validation against GB/T 2260 and the industry list, who
may read and write what (others get the same 404 as a missing profile), paging, and a product's
``site_id`` (only the owner's sites)."""

from __future__ import annotations

from typing import Any

from tests.api.test_products import create_product, field_errors

NAMES = {"zh-Hans": "示例钢铁", "zh-Hant": "示例鋼鐵", "en": "Demo Steel"}


def profile(division_code: str = "370602", industry: str = "steel", names: dict[str, str] = NAMES) -> dict[str, Any]:
    return {"names": names, "division_code": division_code, "industry": industry}


def put_profile(client, auth, org: str, **kwargs: Any) -> dict[str, Any]:
    response = client.put(f"/v1/organisations/{org}", json=profile(**kwargs), headers=auth("admin"))
    assert response.status_code in (200, 201), response.text
    return response.json()


def add_site(client, headers, org: str, name: str = "Longkou plant", division_code: str = "370681",
             industry: str = "steel") -> dict[str, Any]:
    response = client.post(f"/v1/organisations/{org}/sites", headers=headers,
                           json={"name": name, "division_code": division_code, "industry": industry})
    assert response.status_code == 201, response.text
    return response.json()


def test_put_creates_then_replaces_and_reads_with_names(client, auth) -> None:
    admin = auth("admin")
    first = client.put("/v1/organisations/acme", json=profile(), headers=admin)
    assert first.status_code == 201, first.text
    body = first.json()
    # 370602 is Zhifu district of Yantai: a county that counts in its city and province.
    assert body["division"]["code"] == "370602" and body["division"]["level"] == "county"
    assert body["city"] == {"code": "370600", "level": "city",
                            "names": {"zh-Hans": "烟台市", "zh-Hant": "煙臺市", "en": "Yantai"}}
    assert body["province"]["code"] == "370000"
    assert body["industry_names"] == {"zh-Hans": "钢铁", "zh-Hant": "鋼鐵", "en": "Steel"}
    second = client.put("/v1/organisations/acme", json=profile("371500", "tyres"), headers=admin)
    assert second.status_code == 200
    read = client.get("/v1/organisations/acme", headers=auth("merchant", org="acme")).json()
    assert (read["division_code"], read["city"]["code"], read["industry"]) == ("371500", "371500", "tyres")
    assert read["names"] == NAMES


def test_invalid_division_and_industry_are_field_errors(client, auth) -> None:
    admin = auth("admin")
    # 370282 (Jimo city) was abolished in 2017; 999999 was never a code; "shipbuilding" is not an
    # industry statistics group by.
    for code in ("370282", "999999", "37060A", "3706"):
        response = client.put("/v1/organisations/acme", json=profile(code), headers=admin)
        assert field_errors(response) == ["division_code"], code
    response = client.put("/v1/organisations/acme", json=profile(industry="shipbuilding"), headers=admin)
    assert field_errors(response) == ["industry"]
    response = client.put("/v1/organisations/acme", json={**profile(), "extra": 1}, headers=admin)
    assert response.status_code == 422
    assert client.get("/v1/organisations/acme", headers=admin).status_code == 404  # nothing was stored


def test_who_reads_a_profile(client, auth) -> None:
    put_profile(client, auth, "acme")
    for headers in (auth("admin"), auth("officer", org="some-agency"), auth("merchant", org="acme"),
                    auth("verifier", org="acme")):
        assert client.get("/v1/organisations/acme", headers=headers).status_code == 200
    # Another organisation's member, or a token without org: the same 404 as an unknown organisation.
    foreign = client.get("/v1/organisations/acme", headers=auth("merchant", org="rival"))
    missing = client.get("/v1/organisations/nobody", headers={**auth("merchant", org="nobody"), "Accept-Language": "en"})
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["reason"] == missing.json()["reason"] == "organisation_not_found"
    assert "profile" in missing.json()["detail"]
    assert client.get("/v1/organisations/acme", headers=auth("consumer")).status_code == 404
    assert client.get("/v1/organisations/acme").status_code == 401


def test_list_pages_and_filters_by_area_and_industry(client, auth) -> None:
    for org, code, industry in [("a-steel", "370602", "steel"), ("b-tyre", "370211", "tyres"),
                                ("c-steel", "371502", "steel"), ("d-shop", "370600", "retail")]:
        put_profile(client, auth, org, division_code=code, industry=industry)
    officer = auth("officer", org="agency")
    seen, cursor = [], None
    while True:
        page = client.get("/v1/organisations", params={"limit": 3, **({"cursor": cursor} if cursor else {})},
                          headers=officer).json()
        seen += [item["org"] for item in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == ["a-steel", "b-tyre", "c-steel", "d-shop"]
    yantai = client.get("/v1/organisations", params={"division": "370600"}, headers=officer).json()["items"]
    assert [i["org"] for i in yantai] == ["a-steel", "d-shop"]
    steel = client.get("/v1/organisations", params={"division": "370000", "industry": "steel"},
                       headers=officer).json()["items"]
    assert [i["org"] for i in steel] == ["a-steel", "c-steel"]
    assert field_errors(client.get("/v1/organisations", params={"industry": "nope"}, headers=officer)) == ["industry"]
    assert client.get("/v1/organisations", headers=auth("merchant", org="a-steel")).status_code == 403


def test_sites_by_admin_or_own_merchant(client, auth) -> None:
    put_profile(client, auth, "acme")
    own = auth("merchant", org="acme")
    site = add_site(client, own, "acme")
    assert site["org"] == "acme" and site["city"]["code"] == "370600" and site["division"]["level"] == "county"
    add_site(client, auth("admin"), "acme", name="Qingdao depot", division_code="370211", industry="transport")
    # A rival merchant: 404 like an organisation without a profile, and nothing added.
    rival = client.post("/v1/organisations/acme/sites", headers=auth("merchant", org="rival"),
                        json={"name": "x", "division_code": "370602", "industry": "steel"})
    assert rival.status_code == 404 and rival.json()["reason"] == "organisation_not_found"
    none = client.post("/v1/organisations/ghost/sites", headers=auth("merchant", org="ghost"),
                       json={"name": "x", "division_code": "370602", "industry": "steel"})
    assert none.status_code == 404
    bad = client.post("/v1/organisations/acme/sites", headers=own,
                      json={"name": "x", "division_code": "370282", "industry": "nope"})
    assert sorted(field_errors(bad)) == ["division_code", "industry"]
    listed = client.get("/v1/organisations/acme/sites", headers=auth("officer", org="agency")).json()["items"]
    assert sorted(s["name"] for s in listed) == ["Longkou plant", "Qingdao depot"]
    assert client.get("/v1/organisations/acme/sites", headers=auth("merchant", org="rival")).status_code == 404


def test_product_site_must_be_the_owners(client, auth) -> None:
    put_profile(client, auth, "acme")
    put_profile(client, auth, "rival", division_code="370211")
    own = auth("merchant", org="acme")
    mine = add_site(client, own, "acme")
    theirs = add_site(client, auth("merchant", org="rival"), "rival", division_code="370212")
    created = create_product(client, own, site_id=mine["id"])
    assert created["site_id"] == mine["id"]
    gtin = created["gtin"]
    # Another organisation's site and an unknown id read the same: a field error, nothing changed.
    for site_id in (theirs["id"], "no-such-site"):
        assert field_errors(client.patch(f"/v1/merchant/products/{gtin}", json={"site_id": site_id},
                                         headers=own)) == ["site_id"]
    assert client.get(f"/v1/merchant/products/{gtin}", headers=own).json()["site_id"] == mine["id"]
    cleared = client.patch(f"/v1/merchant/products/{gtin}", json={"site_id": None}, headers=own)
    assert cleared.status_code == 200 and cleared.json()["site_id"] is None
    unchanged = client.patch(f"/v1/merchant/products/{gtin}", json={}, headers=own)
    assert unchanged.status_code == 200 and unchanged.json()["site_id"] is None
    assert client.patch(f"/v1/merchant/products/{gtin}", json={"site_id": mine["id"]},
                        headers=auth("merchant", org="rival")).status_code == 404
    # Creating with a rival's site: 422 on site_id, and the product is not registered.
    from tests.api.test_products import product_body, with_check_digit
    other = with_check_digit("690123456790")
    response = client.post("/v1/merchant/products", json=product_body(other, site_id=theirs["id"]), headers=own)
    assert field_errors(response) == ["site_id"]
    assert client.get(f"/v1/merchant/products/{other}", headers=own).status_code == 404


def test_demo_stats_load_once_and_point_at_the_demo_products(client, auth, settings) -> None:
    from carbonpuhui.stats.demo import load_demo_stats
    from tests.api.test_tenders import run_db

    steel = auth("merchant", org="demo-steel")
    create_product(client, steel, "6901234567892")
    create_product(client, auth("merchant", org="demo-tyre"), "6923456789012", category="tyres.passenger",
                   declared_unit="piece", declared_units_per_item="1")
    first = run_db(settings, load_demo_stats)
    assert first == {"organisations": 7, "sites": 2, "product_sites": 1, "shipments": 6}
    assert run_db(settings, load_demo_stats) == {"organisations": 0, "sites": 0, "product_sites": 0, "shipments": 0}
    officer = auth("officer", org="demo-agency-yantai")
    cities = {o["org"]: o["city"]["code"] for o in client.get("/v1/organisations", headers=officer).json()["items"]}
    assert {cities["demo-steel"], cities["demo-tyre"], cities["demo-shop"]} == {"371500", "370200", "370600"}
    site = client.get("/v1/organisations/demo-steel/sites", headers=steel).json()["items"][0]
    assert site["city"]["code"] == "370600"  # the coil is rolled in Yantai, the company seated in Liaocheng
    assert client.get("/v1/merchant/products/6901234567892", headers=steel).json()["site_id"] == site["id"]
    rows = client.get("/v1/merchant/export-shipments", headers=steel).json()["items"]
    assert sorted(r["destination"] for r in rows) == ["DE", "KR", "VN"]
    assert {r["hs_code"] for r in rows} == {"720851"}

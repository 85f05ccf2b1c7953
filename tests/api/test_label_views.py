"""What the public and the apps see: the product view in any GTIN form, ETag/304 and the shared
cache, the SVG and the GS1 Digital Link page, listings and low-carbon alternatives."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.api.label_flow import CATEGORY, Flow, gtin, gtin14


@pytest.fixture
def flow(client, auth) -> Flow:
    f = Flow(client, auth)
    f.benchmark(["10", "20", "30", "40"], uncertainty_penalty="0")
    return f


def test_any_gtin_form_finds_the_same_product_and_label(flow: Flow) -> None:
    code = flow.product(1, "15")
    label = flow.certify(code)
    views = [flow.public(form) for form in (code, "0" + code)]
    assert views[0] == views[1]
    assert views[0]["label"]["id"] == label["id"]
    assert set(views[0]) >= {"gtin", "names", "category", "declared_unit", "label", "listings"}
    assert views[0]["digital_link"].endswith(f"/01/{gtin14(1)}")


def test_a_product_without_a_label_shows_null(flow: Flow) -> None:
    code = flow.product(1, "15")
    assert flow.public(code)["label"] is None
    assert flow.client.get(f"/v1/products/{code}/label.svg").status_code == 404


def test_public_reads_carry_etag_and_answer_304(flow: Flow) -> None:
    code = flow.product(1, "15")
    flow.certify(code)
    flow.listing(code)
    for path in (f"/v1/products/{code}", f"/v1/products/{code}/label.svg", f"/01/{gtin14(1)}",
                 f"/v1/products/{code}/alternatives", "/v1/listings?max_grade=C"):
        first = flow.client.get(path)
        assert first.status_code == 200, path
        assert first.headers["cache-control"] == "public, no-cache"
        etag = first.headers["etag"]
        again = flow.client.get(path, headers={"If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b""), path
        assert flow.client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_a_change_is_visible_on_the_next_read(flow: Flow) -> None:
    code = flow.product(1, "15")
    before = flow.client.get(f"/v1/products/{code}")
    label = flow.certify(code)
    after = flow.client.get(f"/v1/products/{code}", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.json()["label"]["id"] == label["id"]
    svg = flow.client.get(f"/v1/products/{code}/label.svg").text
    flow.ok(flow.client.post(f"/v1/labels/{label['id']}/revoke", json={"reason": "x"}, headers=flow.verifier))
    assert flow.public(code)["label"]["status"] == "revoked"
    assert flow.client.get(f"/v1/products/{code}/label.svg").text != svg
    flow.listing(code)
    assert len(flow.public(code)["listings"]) == 1


def test_label_svg_is_well_formed_in_the_readers_language(flow: Flow) -> None:
    code = flow.product(1, "15")
    flow.certify(code)
    hant = flow.client.get(f"/v1/products/{code}/label.svg", params={"lang": "zh-Hant"})
    assert hant.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(hant.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = "".join(root.itertext())
    assert "B" in text and "熱軋鋼卷" in text and "15" in text
    en = flow.client.get(f"/v1/products/{code}/label.svg", headers={"Accept-Language": "en"})
    assert "Hot-rolled coil" in "".join(ET.fromstring(en.content).itertext())
    assert hant.headers["etag"] != en.headers["etag"]


def test_digital_link_page_json_and_redirects(flow: Flow) -> None:
    code = flow.product(1, "15")
    flow.certify(code)
    page = flow.client.get(f"/01/{gtin14(1)}", headers={"Accept-Language": "zh-Hant"})
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-Hant"' in page.text and 'data-grade="B"' in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # no script at all: default-src 'none'
    as_json = flow.client.get(f"/01/{gtin14(1)}", headers={"Accept": "application/json"})
    assert as_json.json() == flow.public(code)
    short = flow.client.get(f"/01/{code}?lang=en", follow_redirects=False)
    assert short.status_code == 308 and short.headers["location"] == f"/01/{gtin14(1)}?lang=en"
    assert flow.client.get("/01/6901234567890").status_code == 422  # wrong check digit
    assert flow.client.get(f"/01/{gtin14(99)}").status_code == 404


def test_a_forged_host_cannot_poison_what_others_are_served(flow: Flow) -> None:
    code = flow.product(1, "15")
    flow.certify(code)
    evil = flow.client.get(f"/v1/products/{code}", headers={"Host": "evil.example"})
    assert evil.status_code == 200
    assert "evil.example" not in flow.client.get(f"/v1/products/{code}").text


# --- listings -----------------------------------------------------------------------------------

def test_listings_filter_by_category_grade_and_merchant(flow: Flow, auth) -> None:
    shop = auth("merchant", org="jd-shop", sub="shop")
    flow.benchmark(["1", "2", "3", "4"], category="tyre.passenger", uncertainty_penalty="0")
    a, c, e = flow.product(1, "5"), flow.product(2, "25"), flow.product(3, "45")
    tyre = flow.product(4, "0.5", category="tyre.passenger")
    bare = flow.product(5, "5")  # listed, never labelled
    for code in (a, c, e, tyre):
        flow.certify(code)
    ids = {code: flow.listing(code, headers=shop)["id"] for code in (a, c, e, tyre, bare)}
    own = flow.listing(c, store="Acme factory outlet")

    def gtins(**params) -> list[str]:
        return [x["gtin"] for x in flow.ok(flow.client.get("/v1/listings", params=params))["items"]]

    assert gtins(max_grade="C", category=CATEGORY, merchant="jd-shop") == ["0" + a, "0" + c]
    assert sorted(gtins(max_grade="A")) == sorted(["0" + a, "0" + tyre])  # one grade: in listing-id order
    assert gtins(merchant="acme") == ["0" + c]
    everything = flow.ok(flow.client.get("/v1/listings"))["items"]
    assert len(everything) == 6 and everything[-1]["label"] is None  # unlabelled last
    assert [x["label"]["grade"] for x in everything[:-1]] == sorted(x["label"]["grade"] for x in everything[:-1])
    assert {x["id"] for x in everything} == {*ids.values(), own["id"]}


def test_listings_page_with_a_cursor(flow: Flow) -> None:
    codes = [flow.product(n, str(5 * n)) for n in range(1, 8)]
    for code in codes[:4]:
        flow.certify(code)
    for code in codes:
        flow.listing(code)
    seen, cursor = [], None
    while True:
        page = flow.ok(flow.client.get("/v1/listings", params={"limit": 3, **({"cursor": cursor} if cursor else {})}))
        seen += [x["id"] for x in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == len(set(seen)) == 7
    assert flow.client.get("/v1/listings", params={"cursor": "eA"}).status_code == 400


def test_listing_validation_and_ownership(flow: Flow) -> None:
    code = flow.product(1, "15")
    listing = flow.listing(code)
    again = flow.client.post("/v1/merchant/listings", json={"gtin": "0" + code, "store": "Jinan store",
                                                            "price_cents": 5}, headers=flow.owner)
    assert again.status_code == 409 and again.json()["reason"] == "listing_exists"
    for body, field in [({"gtin": gtin(77), "store": "s", "price_cents": 1}, "gtin"),
                        ({"gtin": code, "store": "s", "price_cents": -1}, "price_cents"),
                        ({"gtin": code, "store": "", "price_cents": 1}, "store"),
                        ({"gtin": code, "store": "s", "price_cents": 1, "url": "javascript:alert(1)"}, "url"),
                        ({"gtin": code, "store": "s", "price_cents": 1.5}, "price_cents")]:
        response = flow.client.post("/v1/merchant/listings", json=body, headers=flow.owner)
        assert response.status_code == 422, body
        assert field in [e["field"] for e in response.json()["errors"]], body
    assert flow.client.delete(f"/v1/merchant/listings/{listing['id']}", headers=flow.rival).status_code == 404
    assert flow.client.delete(f"/v1/merchant/listings/{listing['id']}", headers=flow.owner).status_code == 204
    assert flow.public(code)["listings"] == []


# --- alternatives -------------------------------------------------------------------------------

def test_alternatives_are_listed_better_products_of_the_category_best_first(flow: Flow) -> None:
    mine = flow.product(1, "25")  # C
    better_grade = flow.product(2, "5")  # A
    same_grade_lower = flow.product(3, "22")  # C, but lower
    worse = flow.product(4, "35")  # D
    unlisted = flow.product(5, "1")  # A, but nowhere to buy it
    other_category = flow.product(6, "1", category="textile.cotton")
    flow.benchmark(["10", "20", "30", "40"], category="textile.cotton", uncertainty_penalty="0")
    for code in (mine, better_grade, same_grade_lower, worse, unlisted, other_category):
        flow.certify(code)
    for code in (mine, better_grade, same_grade_lower, worse, other_category):
        flow.listing(code)
    items = flow.ok(flow.client.get(f"/v1/products/{mine}/alternatives"))["items"]
    assert [x["gtin"] for x in items] == ["0" + better_grade, "0" + same_grade_lower]
    assert all(x["listings"] for x in items)


def test_without_a_label_every_labelled_alternative_counts(flow: Flow) -> None:
    mine = flow.product(1, "25")
    others = [flow.product(n, v) for n, v in ((2, "35"), (3, "5"))]
    for code in others:
        flow.certify(code)
        flow.listing(code)
    items = flow.ok(flow.client.get(f"/v1/products/{mine}/alternatives"))["items"]
    assert [x["gtin"] for x in items] == ["0" + others[1], "0" + others[0]]  # A before D

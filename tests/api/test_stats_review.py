"""Adversarial review of the statistics (issue 8): can a public caller (or an enterprise that knows
its own figures) recover a suppressed enterprise figure by combining what the API publishes; do
hostile inputs to the stats routes stay below 500; do the access rules, revisions and ETags hold.

Tests that fail here name a bug (see the report); the others pin behaviour worth keeping.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from sqlalchemy import insert

from carbonpuhui.footprints.models import Product
from carbonpuhui.stats import indicators, reports
from carbonpuhui.stats.models import ExportShipment, Organisation
from carbonpuhui.stats.quarters import Quarter
from tests.api.label_flow import gtin14

YANTAI, SHANDONG = "370600", "370000"
Q1 = Quarter(2025, 1)
MID = datetime(2025, 2, 15, tzinfo=UTC)
AFTER_Q1 = datetime(2025, 4, 5, tzinfo=UTC)
CATEGORY = "steel.hot_rolled_coil"


# --- helpers --------------------------------------------------------------------------------------


def run(client, job):  # type: ignore[no-untyped-def]
    async def wrapped():  # type: ignore[no-untyped-def]
        async with client.app.state.db.transaction() as session:
            return await job(session)

    with client.portal() as portal:
        return portal.call(wrapped)


def seed(client, *rows: object) -> None:
    async def job(session):  # type: ignore[no-untyped-def]
        for row in rows:
            session.add(row)
            await session.flush()

    run(client, job)


def org(name: str, division: str = "370602", industry: str = "steel") -> Organisation:
    return Organisation(org=name, names={"zh-Hans": name, "zh-Hant": name, "en": name}, division_code=division,
                        industry=industry, updated_at=MID, updated_by="root")


def product(n: int, owner: str) -> Product:
    return Product(gtin=gtin14(n), owner_org=owner, names={"zh-Hans": f"卷{n}", "zh-Hant": f"卷{n}", "en": f"Coil {n}"},
                   category=CATEGORY, declared_unit="kilogram", declared_units_per_item=Decimal(1), region="CN-SD",
                   created_at=MID, created_by="t")


def shipment(owner: str, n: int, destination: str, value_cents: int, quarter: str = "2025Q1") -> ExportShipment:
    return ExportShipment(id=str(uuid.uuid4()), org=owner, quarter=quarter, gtin=gtin14(n), hs_code="720851",
                          destination=destination, quantity=Decimal(10), value_cents=value_cents, batch_id="b",
                          created_at=MID, created_by="t")


def cell(body: dict[str, Any], indicator: str, group: str = "*", field: str = "cells") -> dict[str, Any]:
    found = next(i for i in body["indicators"] if i["id"] == indicator)
    return next(c for c in found[field] or [] if c["group"] == group)


def public(client, area: str = YANTAI, by: str = "industry") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.get("/v1/stats/indicators", params={"area": area, "quarter": "2025Q1", "by": by})
    assert response.status_code == 200, response.text
    return response.json()


def raw(client, area: str, by: str = "industry") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def job(session):  # type: ignore[no-untyped-def]
        return msgspec.to_builtins(await indicators.compute(session, area=area, quarter=Q1, by=by, protected=False))

    return run(client, job)


def at(monkeypatch: pytest.MonkeyPatch, instant: datetime) -> None:
    monkeypatch.setattr(reports, "now", lambda: instant)


# --- 1. confidentiality ---------------------------------------------------------------------------


def test_an_exporter_cannot_recover_another_ones_destination_from_the_published_residual(client) -> None:
    """Five Yantai steel exporters: three ship to DE (100,000 each), s1 alone to JP (50,000), s2 alone to
    US (70,000). JP and US are primary. If both the total and DE are published, JP + US = total − DE is a
    published two-enterprise aggregate: s1, who knows its own 50,000, gets s2's US exports exactly (the
    'singleton' attack every cell-suppression tool guards against: a residual of suppressed cells must
    itself pass the primary rule)."""
    rows: list[object] = [org(f"s{k}") for k in range(1, 6)] + [product(k, f"s{k}") for k in range(1, 6)]
    rows += [shipment("s1", 1, "JP", 50_000), shipment("s2", 2, "US", 70_000)]
    rows += [shipment(f"s{k}", k, "DE", 100_000) for k in (3, 4, 5)]
    seed(client, *rows)
    body = public(client)
    jp = cell(body, "export_value_cents", "JP", "by_destination")
    us = cell(body, "export_value_cents", "US", "by_destination")
    assert jp["status"] == us["status"] == "primary"
    published = [c for c in next(i for i in body["indicators"] if i["id"] == "export_value_cents")["by_destination"]]
    total = next(c for c in published if c["group"] == "*")
    if total["status"] == "published":
        residual = total["value"] - sum(c["value"] for c in published if c["group"] != "*" and c["value"] is not None)
        hidden = [c["group"] for c in published if c["group"] != "*" and c["value"] is None]
        # s1 subtracts its own JP figure from the hidden residual: what is left is s2's alone.
        assert not (hidden == ["JP", "US"] and residual - 50_000 == 70_000), (
            "s1 recovers s2's US export value from total − DE − its own JP figure")


def test_report_revisions_do_not_reveal_the_one_enterprise_whose_data_changed(client, auth, monkeypatch) -> None:
    """Revision 1 of Yantai's 2025Q1 report is frozen with four exporters. If a fifth could then declare
    its 2025Q1 exports (or one withdraw its own), revision 2 minus revision 1, both public forever, would
    be that one enterprise's figure: once a city's report for a quarter is submitted, that quarter's
    declarations there are closed, and a new revision shows the same trade figures."""
    at(monkeypatch, AFTER_Q1)
    rows: list[object] = [org(f"s{k}") for k in range(1, 6)] + [product(k, f"s{k}") for k in range(1, 6)]
    rows += [shipment(f"s{k}", k, "DE", 100_000) for k in range(1, 5)]
    seed(client, *rows)
    admin = auth("admin", sub="root")
    first = client.post("/v1/stats/reports", json={"city": YANTAI, "quarter": "2025Q1"}, headers=admin)
    assert first.status_code == 201, first.text
    declared = client.post("/v1/merchant/export-shipments", headers={**auth("merchant", org="s5"),
                                                                      "Accept-Language": "en"}, json={"items": [
        {"quarter": "2025Q1", "gtin": gtin14(5), "hs_code": "7208.51", "destination": "DE", "quantity": "10",
         "value_cents": 61_234}]})
    assert declared.status_code == 422, declared.text
    assert [e["field"] for e in declared.json()["errors"]] == ["items[0].quarter"]
    assert "closed" in declared.json()["errors"][0]["message"]
    withdrawn = client.delete("/v1/merchant/export-shipments/batches/b", headers=auth("merchant", org="s1"))
    assert withdrawn.status_code == 409 and withdrawn.json()["reason"] == "quarter_closed", withdrawn.text
    # Another quarter of the same city stays open.
    assert client.post("/v1/merchant/export-shipments", headers=auth("merchant", org="s5"), json={"items": [
        {"quarter": "2025Q2", "gtin": gtin14(5), "hs_code": "7208.51", "destination": "DE", "quantity": "10",
         "value_cents": 1}]}).status_code == 201
    second = client.post("/v1/stats/reports", json={"city": YANTAI, "quarter": "2025Q1"}, headers=admin)
    assert second.status_code == 201, second.text
    r1 = client.get(f"/v1/stats/reports/{YANTAI}/2025Q1", params={"revision": 1}).json()
    r2 = client.get(f"/v1/stats/reports/{YANTAI}/2025Q1", params={"revision": 2}).json()
    assert cell(r1["indicators"], "export_value_cents") == cell(r2["indicators"], "export_value_cents")
    assert cell(r2["indicators"], "export_value_cents")["value"] == 400_000


def test_a_seat_or_site_at_province_level_is_refused(client, auth) -> None:
    """A province code (370000) would count a seat in no city and collide with the province's own total
    (city "3700" + "00" is the province key): profiles and sites name a city or county."""
    put = client.put("/v1/organisations/prov-co", headers=auth("admin", sub="root"), json={
        "names": {"zh-Hans": "省公司", "zh-Hant": "省公司", "en": "Provincial Co"}, "division_code": SHANDONG,
        "industry": "steel"})
    assert put.status_code == 422, put.text
    assert [e["field"] for e in put.json()["errors"]] == ["division_code"]
    seed(client, org("yt-co"))
    site = client.post("/v1/organisations/yt-co/sites", headers=auth("admin", sub="root"), json={
        "name": "HQ", "division_code": SHANDONG, "industry": "steel"})
    assert site.status_code == 422, site.text
    assert client.get("/v1/organisations/prov-co", headers=auth("admin", sub="root")).status_code == 404


def test_officers_see_no_other_agencys_figures_and_merchants_no_other_orgs_data(client, auth) -> None:
    seed(client, org("s1"), org("s2"), product(1, "s1"), shipment("s1", 1, "DE", 5_000))
    sites = client.post("/v1/organisations/s1/sites", headers=auth("merchant", org="s1"), json={
        "name": "Plant", "division_code": "370602", "industry": "steel"})
    assert sites.status_code == 201, sites.text
    other = auth("merchant", org="s2")
    assert client.get("/v1/organisations/s1", headers=other).status_code == 404
    assert client.get("/v1/organisations/s1/sites", headers=other).status_code == 404
    assert client.post("/v1/organisations/s1/sites", headers=other, json={
        "name": "x", "division_code": "370602", "industry": "steel"}).status_code == 404
    assert client.get("/v1/merchant/export-shipments", headers=other).json()["items"] == []
    assert client.delete("/v1/merchant/export-shipments/batches/b", headers=other).status_code == 404
    # s2 cannot declare s1's product.
    bad = client.post("/v1/merchant/export-shipments", headers=other, json={"items": [
        {"quarter": "2025Q1", "gtin": gtin14(1), "hs_code": "720851", "destination": "DE", "quantity": "1",
         "value_cents": 1}]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "items[0].gtin"
    # A lone exporter's figure is hidden from the public and from officers of any agency.
    for headers in ({}, auth("officer", org="ag1"), auth("admin", org="ag1")):
        body = client.get("/v1/stats/indicators", params={"area": YANTAI, "quarter": "2025Q1"}, headers=headers)
        assert cell(body.json(), "export_value_cents")["value"] is None


# --- 2. hostile input -------------------------------------------------------------------------------


def test_huge_declared_values_do_not_overflow_the_sum(client) -> None:
    """The API accepts value_cents up to 10**15 and 10,000 items per call: 9,300 such shipments of one
    product (one call) sum past 2**63, which SQLite's integer SUM refuses ('integer overflow')."""
    seed(client, org("s1"), product(1, "s1"))
    rows = [{"id": str(uuid.uuid4()), "org": "s1", "quarter": "2025Q1", "gtin": gtin14(1), "hs_code": "720851",
             "destination": "DE", "quantity": Decimal(1), "value_cents": 10**15, "batch_id": "b",
             "created_at": MID, "created_by": "t"} for _ in range(9_300)]

    async def job(session):  # type: ignore[no-untyped-def]
        await session.execute(insert(ExportShipment), rows)

    run(client, job)
    response = client.get("/v1/stats/indicators", params={"area": YANTAI, "quarter": "2025Q1"})
    assert response.status_code == 200, response.text[:300]
    assert cell(raw(client, YANTAI), "export_value_cents")["value"] == 9_300 * 10**15


HOSTILE_GETS = [
    ("/v1/stats/indicators", {"area": YANTAI, "quarter": "9999Q4"}),
    ("/v1/stats/indicators", {"area": YANTAI, "quarter": "0000Q1"}),
    ("/v1/stats/indicators", {"area": YANTAI, "quarter": "2000Q1"}),
    ("/v1/stats/indicators", {"area": YANTAI, "quarter": "\u0662\u0660\u0662\u0665Q1"}),  # Arabic-Indic digits
    ("/v1/stats/indicators", {"area": "000000", "quarter": "2025Q1"}),
    ("/v1/stats/indicators", {"area": "\u0663\u0667\u0660\u0666\u0660\u0660", "quarter": "2025Q1"}),
    ("/v1/stats/indicators", {"area": "=1+1", "quarter": "2025Q1"}),
    ("/v1/stats/reports", {"city": "000000"}),
    ("/v1/stats/reports", {"city": YANTAI, "year": "\u0662\u0660\u0662\u0665"}),
    ("/v1/stats/reports", {"city": YANTAI, "year": "99999999999999999999"}),
    ("/v1/stats/reports", {"city": SHANDONG}),
    (f"/v1/stats/reports/{YANTAI}/9999Q4", {}),
    (f"/v1/stats/reports/{YANTAI}/2025Q1", {"revision": "99999999999999999999"}),
    (f"/v1/stats/reports/{YANTAI}/2025Q1", {"format": "pdf"}),
    (f"/v1/stats/reports/{YANTAI}/\u0662\u0660\u0662\u0665Q1", {}),
]


def test_hostile_queries_are_never_a_server_error(client, auth) -> None:
    for path, params in HOSTILE_GETS:
        response = client.get(path, params=params)
        assert response.status_code < 500, (path, params, response.text[:300])
    for quarter in ("2999Q4", "2000Q1", "\u0662\u0660\u0662\u0665Q1", "0000Q1", "2025Q5"):
        response = client.get(f"/v1/stats/reports/{YANTAI}/{quarter}/draft", headers=auth("admin"))
        assert response.status_code < 500, (quarter, response.text[:300])


HOSTILE_QUANTITIES = ["1E+999999", "NaN", "-0", "Infinity", "sNaN", "1e-31", "\u0661\u0660", "=HYPERLINK(\"x\")",
                      "0x10", "1_000"]


def test_hostile_csv_quantities_store_nothing_but_a_finite_positive_ascii_decimal(client, auth) -> None:
    seed(client, org("s1"), product(1, "s1"))
    merchant = auth("merchant", org="s1")
    stored = 0
    for value in HOSTILE_QUANTITIES:
        body = f"quarter,gtin,hs_code,destination,quantity,value_cents\n2025Q1,{gtin14(1)},720851,DE,{value},100\n"
        response = client.post("/v1/merchant/export-shipments/import", content=body.encode(),
                               headers={**merchant, "Content-Type": "text/csv"})
        assert response.status_code in (201, 422), (value, response.text[:300])
        stored += response.status_code == 201
        listed = client.get("/v1/merchant/export-shipments", headers=merchant).json()["items"]
        assert len(listed) == stored, value
        for item in listed:  # only a finite positive decimal may be stored, written in ASCII digits
            assert Decimal(item["quantity"]) > 0 and item["quantity"].isascii(), (value, item)


def test_csv_with_nul_and_formulas_is_refused_whole(client, auth) -> None:
    seed(client, org("s1"), product(1, "s1"))
    good = f"2025Q1,{gtin14(1)},720851,DE,1,100"
    body = ("quarter,gtin,hs_code,destination,quantity,value_cents\n" + good + "\n"
            + f"2025Q1\x00,{gtin14(1)},720851,DE,1,100\n" + f"=cmd|' /C calc'!A0,{gtin14(1)},720851,DE,1,100\n")
    response = client.post("/v1/merchant/export-shipments/import", content=body.encode(),
                           headers={**auth("merchant", org="s1"), "Content-Type": "text/csv"})
    assert response.status_code == 422, response.text[:300]
    assert {e.get("line") for e in response.json()["errors"]} >= {3, 4}
    assert client.get("/v1/merchant/export-shipments", headers=auth("merchant", org="s1")).json()["items"] == []


# --- 3. report freezing and ETags -----------------------------------------------------------------


def test_latest_report_etag_changes_with_a_new_revision_and_a_named_revision_is_stable(client, auth,
                                                                                       monkeypatch) -> None:
    at(monkeypatch, AFTER_Q1)
    rows: list[object] = [org(f"s{k}") for k in range(1, 4)] + [product(k, f"s{k}") for k in range(1, 4)]
    rows += [shipment(f"s{k}", k, "DE", 100_000) for k in range(1, 4)]
    seed(client, *rows)
    admin = auth("admin", sub="root")
    assert client.post("/v1/stats/reports", json={"city": YANTAI, "quarter": "2025Q1"}, headers=admin).status_code == 201
    url = f"/v1/stats/reports/{YANTAI}/2025Q1"
    latest = client.get(url)
    named = client.get(url, params={"revision": 1})
    assert latest.headers["etag"] == named.headers["etag"]
    assert client.get(url, headers={"If-None-Match": latest.headers["etag"]}).status_code == 304
    # Different representations and locales: different validators.
    tags = {client.get(url, params={"format": f, "lang": lang}).headers["etag"]
            for f in ("json", "csv", "html") for lang in ("en", "zh-Hant")}
    assert len(tags) == 5  # JSON is locale-free
    # A data change does not alter revision 1; a new revision changes the latest's validator.
    seed(client, shipment("s1", 1, "US", 1))
    assert client.get(url, params={"revision": 1}).content == named.content
    assert client.post("/v1/stats/reports", json={"city": YANTAI, "quarter": "2025Q1"}, headers=admin).status_code == 201
    again = client.get(url, headers={"If-None-Match": latest.headers["etag"]})
    assert again.status_code == 200 and again.json()["revision"] == 2
    assert client.get(url, params={"revision": 1}).content == named.content


def test_export_volume_is_exact_for_large_declared_quantities(client) -> None:
    """The API accepts quantities with up to 30 digits either side of the point; the volume at baseline
    is documented exact. Python's default decimal context keeps 28 significant digits."""
    from decimal import localcontext

    from carbonpuhui.labels.models import Benchmark

    quantity = Decimal("123456789012345678901234567.891")  # 30 significant digits: the API's fits() accepts it
    bench = Benchmark(category=CATEGORY, method="fixed", declared_unit="kilogram", percentiles=[20, 40, 60, 80],
                      thresholds=["1", "2", "3", "4"], baseline=Decimal("3.7"), uncertainty_penalty=Decimal("0.2"),
                      revision=1, updated_at=MID, updated_by="root")
    ship = shipment("s1", 1, "DE", 1)
    ship.quantity = quantity
    seed(client, org("s1"), product(1, "s1"), bench, ship)
    with localcontext() as ctx:
        ctx.prec = 100
        expected = quantity * Decimal("3.7")
    assert Decimal(cell(raw(client, YANTAI), "export_volume_kg_baseline")["value"]) == expected

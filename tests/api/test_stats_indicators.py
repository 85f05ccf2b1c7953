"""GET /v1/stats/indicators on a hand-computed data set: every indicator, quarter bounds in CST (an
instant one second before 2025-04-01 00:00 CST is in 2025Q1, that instant itself is not), a product
counted at its site rather than its owner's seat, by industry and by category, a city and the province,
and disclosure control (a lone enterprise's cell is null with status primary; an agency's officer sees
the figures made of the agency's own tenders alone).

Raw figures (``protected=False``) are checked against arithmetic on the inserted rows; the public
figures must equal them wherever published, and be null wherever not.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgspec
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker

from carbonpuhui.credits.models import Account, Claim, Entry, Redemption, Reward, Transfer
from carbonpuhui.db.engine import create_engine
from carbonpuhui.footprints.models import Product
from carbonpuhui.labels.models import Benchmark, Label
from carbonpuhui.stats import indicators
from carbonpuhui.stats.models import ExportShipment, Organisation, Site
from carbonpuhui.stats.quarters import Quarter
from procurement.models import Bid, Tender

Q1 = Quarter(2025, 1)
IN = datetime(2025, 3, 31, 15, 59, 59, tzinfo=UTC)  # 2025-03-31 23:59:59 CST: the quarter's last second
OUT = datetime(2025, 3, 31, 16, 0, 0, tzinfo=UTC)  # 2025-04-01 00:00:00 CST: the next quarter
MID = datetime(2025, 2, 15, tzinfo=UTC)
YANTAI, QINGDAO, SHANDONG = "370600", "370200", "370000"
IDS = {"listed_products", "labelled_products", "labelled_share", "grade_A", "grade_B", "grade_C", "grade_D",
       "grade_E", "intensity_vs_baseline", "credits_purchases_g", "credits_travel_g", "credits_redeemed_g",
       "active_people", "tenders", "tenders_with_carbon_criteria", "awarded_bids", "awarded_footprint_kg",
       "awarded_baseline_kg", "avoided_kg", "export_value_cents", "export_value_covered_cents",
       "export_value_covered_share", "export_volume_kg_baseline", "export_volume_covered_kg_baseline",
       "export_volume_covered_share", "export_intensity_vs_baseline"}


def ratio(value: Fraction) -> str:
    return str((Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.0001")))


def _org(org: str, division: str, industry: str) -> Organisation:
    return Organisation(org=org, names={"zh-Hans": org, "zh-Hant": org, "en": org}, division_code=division,
                        industry=industry, updated_at=MID, updated_by="root")


def _product(n: int, owner: str, category: str, unit: str, *, site: str | None = None,
             created: datetime = MID) -> Product:
    return Product(gtin=f"{n:014d}", owner_org=owner, names={"en": f"p{n}"}, category=category, declared_unit=unit,
                   declared_units_per_item=Decimal(1), region="CN-SD", created_at=created, created_by="x",
                   inventory_revision=0, site_id=site)


def _label(n: int, owner: str, category: str, unit: str, kg: str, grade: str, *, scheme: str = "verified",
           issued: datetime = MID, valid_until: date = date(2026, 1, 1), revoked: datetime | None = None) -> Label:
    return Label(id=str(uuid.uuid4()), gtin=f"{n:014d}", owner_org=owner, scheme=scheme,
                 status="revoked" if revoked else "active", current=True, category=category, declared_unit=unit,
                 kgco2e_per_unit=Decimal(kg), declared_kgco2e_per_unit=Decimal(kg), conservative_basis="declared",
                 uncertainty={}, grade=grade, benchmark_revision=1, issued_at=issued, issued_by="v",
                 valid_until=valid_until, factor_versions=[], inventory_revision=0, revoked_at=revoked)


def _tender(tid: str, agency: str, category: str, *, weight_carbon: str = "0", cap: str | None = None,
            label_required: bool = False, created: datetime = MID, quantity: str = "1",
            baseline: str | None = "2") -> Tender:
    return Tender(id=tid, agency_org=agency, title=tid, category=category, functional_unit="t",
                  quantity=Decimal(quantity), deadline=MID, max_kgco2e_per_unit=Decimal(cap) if cap else None,
                  label_required=label_required, weight_price=Decimal("0.5"), weight_carbon=Decimal(weight_carbon),
                  weight_quality=Decimal("0.2"), carbon_method="linear",
                  benchmark={"baseline": baseline, "revision": 1} if baseline else None,
                  created_at=created, created_by="o")


def _bid(bid_id: str, tender_id: str, supplier: str, kg: str) -> Bid:
    return Bid(id=bid_id, tender_id=tender_id, supplier_org=supplier, submitted_by="s", submitted_at=MID,
               revision=1, price_cents=100, footprint_source="declared", kgco2e_per_unit=Decimal(kg),
               median_kgco2e_per_unit=Decimal(kg), gsd=1.1, receipt_sha256="0" * 64, canonical="{}")


def _shipment(org: str, n: int, destination: str, quantity: str, value_cents: int, quarter: str = "2025Q1"
              ) -> ExportShipment:
    return ExportShipment(id=str(uuid.uuid4()), org=org, quarter=quarter, gtin=f"{n:014d}", hs_code="7214",
                          destination=destination, quantity=Decimal(quantity), value_cents=value_cents,
                          batch_id="b", created_at=MID, created_by="x")


def _rows() -> list[list[Any]]:
    """The data set, in insertion order (parents first)."""
    orgs = [_org(o, "370602", "steel") for o in ("s1", "s2", "s3")] + [
        _org("s4", "370202", "steel"), _org("t1", "370600", "textiles"), _org("x1", "110101", "steel"),
        *(_org(m, "370600", "retail") for m in ("m1", "m2", "m3")), _org("op1", "370600", "transport"),
        *(_org(a, "370600", "public_sector") for a in ("ag1", "ag2", "ag3"))]
    site = Site(id="site-q", org="t1", name="Qingdao tyre plant", division_code="370203", industry="tyres",
                created_at=MID, created_by="x")
    benches = [Benchmark(category=c, method="fixed", declared_unit=u, percentiles=[20, 40, 60, 80],
                         thresholds=["1", "2", "3", "4"], baseline=Decimal(b), uncertainty_penalty=Decimal("0.2"),
                         revision=1, updated_at=MID, updated_by="root")
               for c, u, b in (("steel.rebar", "t", "2"), ("tyre.car", "item", "10"))]
    rebar = ("steel.rebar", "t")
    products = [_product(1, "s1", *rebar), _product(2, "s1", *rebar), _product(3, "s2", *rebar),
                _product(4, "s2", *rebar), _product(5, "s3", *rebar), _product(6, "s3", *rebar),
                _product(7, "s4", *rebar), _product(8, "t1", "tyre.car", "item", site="site-q"),
                _product(9, "t1", "textile.shirt", "item"), _product(10, "nop", *rebar),
                _product(11, "s1", *rebar, created=OUT), _product(12, "x1", *rebar)]
    labels = [_label(1, "s1", *rebar, "1.0", "A", issued=IN),  # in force at the end: issued in its last second
              _label(2, "s1", *rebar, "1.2", "A", issued=OUT),  # issued at 00:00 CST on 1 April: Q2
              _label(3, "s2", *rebar, "1.5", "B", valid_until=date(2025, 3, 31)),  # valid through the last day
              _label(4, "s2", *rebar, "1.1", "B", revoked=datetime(2025, 2, 1, tzinfo=UTC)),
              _label(5, "s3", *rebar, "3.0", "B", revoked=OUT),  # revoked after the end: counts
              _label(6, "s3", *rebar, "0.5", "A", scheme="self_declared"),
              _label(8, "t1", "tyre.car", "item", "8", "C"),
              _label(9, "t1", "textile.shirt", "item", "5", "D", valid_until=date(2025, 3, 30)),  # expired
              _label(12, "x1", *rebar, "1", "A")]
    people = {p: Account(id=f"acc-{p}", kind="person", owner=p, balance_g=0, created_at=MID) for p in "ABCD"}
    system = [Account(id="issuance", kind="issuance", owner=None, balance_g=0, created_at=MID),
              Account(id="acc-m1", kind="merchant", owner="m1", balance_g=0, created_at=MID)]
    transfers, entries, claims = [], [], []
    credited = [("purchase", "m1", "A", 100, MID), ("purchase", "m2", "B", 200, MID),
                ("purchase", "m3", "C", 300, MID), ("purchase", "m2", "A", 50, IN),
                ("purchase", "m1", "A", 1000, OUT), ("trip", "op1", "A", 500, MID), ("trip", "-", "D", 70, MID)]
    for n, (kind, issuer, person, grams, at) in enumerate(credited):
        tid, cid = f"tr-{n}", f"cl-{n}"
        transfers.append(Transfer(id=tid, kind=kind, reference=cid, created_at=at))
        entries += [Entry(transfer_id=tid, account_id="issuance", amount_g=-grams, created_at=at),
                    Entry(transfer_id=tid, account_id=f"acc-{person}", amount_g=grams, created_at=at)]
        claims.append(Claim(id=cid, kind=kind, issuer=issuer, jti=f"j{n}", account_id=f"acc-{person}",
                            transfer_id=tid, credited_g=grams, claimed_at=at))
    reward = Reward(id="rw-1", merchant_org="m1", title="tote", cost_g=40, stock=9, redeemed=1, created_at=MID,
                    created_by="m")
    transfers.append(Transfer(id="tr-r", kind="redemption", reference="rd-1", created_at=MID))
    entries += [Entry(transfer_id="tr-r", account_id="acc-B", amount_g=-40, created_at=MID),
                Entry(transfer_id="tr-r", account_id="acc-m1", amount_g=40, created_at=MID)]
    redemption = Redemption(id="rd-1", reward_id="rw-1", account_id="acc-B", transfer_id="tr-r", cost_g=40,
                            redeemed_at=MID)
    tenders = [_tender("T1", "ag1", "steel.rebar", weight_carbon="0.3", quantity="100"),
               _tender("T2", "ag2", "steel.rebar", quantity="10"),
               _tender("T3", "ag3", "paper.a4", cap="3", created=IN, baseline=None),
               _tender("T4", "ag1", "steel.rebar", weight_carbon="0.3", created=OUT),
               _tender("T5", "ag1", "paper.a4", label_required=True)]
    bids = [_bid("B1", "T1", "s1", "1.5"), _bid("B2", "T2", "s2", "1.8"), _bid("B5", "T5", "s3", "1")]
    shipments = [_shipment("s1", 1, "DE", "10", 100_000), _shipment("s2", 3, "DE", "4", 50_000),
                 _shipment("s3", 6, "US", "5", 30_000), _shipment("t1", 8, "DE", "3", 20_000),
                 _shipment("s1", 1, "DE", "99", 999_999, quarter="2025Q2"), _shipment("t1", 9, "US", "2", 10_000)]
    return [orgs, [site], benches, products, labels, [*people.values(), *system], transfers, entries, claims,
            [reward], [redemption], tenders, bids, shipments]


def seed(url: str) -> None:
    async def run() -> None:
        engine = create_engine(url)
        try:
            async with async_sessionmaker(engine)() as session:
                for group in _rows():
                    session.add_all(group)
                    await session.flush()
                for tender, bid, at in (("T1", "B1", MID), ("T2", "B2", IN), ("T5", "B5", OUT)):
                    row = await session.get(Tender, tender)
                    row.awarded_bid_id, row.awarded_at, row.awarded_by = bid, at, "o"
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(run())


def raw(url: str, area: str, by: str) -> dict[str, Any]:
    """The figures without disclosure control (the oracle the public figures are cut from)."""
    async def run() -> dict[str, Any]:
        engine = create_engine(url)
        try:
            async with async_sessionmaker(engine)() as session:
                return msgspec.to_builtins(await indicators.compute(session, area=area, quarter=Q1, by=by,
                                                                    protected=False))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def table(body: dict[str, Any], field: str = "cells") -> dict[tuple[str, str], tuple[Any, str]]:
    return {(i["id"], c["group"]): (c["value"], c["status"]) for i in body["indicators"] for c in i.get(field) or []}


def values(body: dict[str, Any], field: str = "cells") -> dict[tuple[str, str], Any]:
    return {k: v for k, (v, _) in table(body, field).items()}


def test_raw_figures_by_hand(settings, migrated_database_url) -> None:
    seed(migrated_database_url)
    yantai = raw(migrated_database_url, YANTAI, "industry")
    assert {i["id"] for i in yantai["indicators"]} == IDS
    assert yantai["area"] == {"code": YANTAI, "level": "city", "names": {"zh-Hans": "烟台市", "zh-Hant": "煙臺市",
                                                                            "en": "Yantai"}}
    assert yantai["period"] == {"starts_on": "2025-01-01", "ends_on": "2025-03-31", "time_zone": "Asia/Shanghai"}
    assert yantai["unattributed_products"] == 1  # product 10: its owner "nop" has no profile
    v = values(yantai)
    # Products 1-6 (s1-s3, seat in Yantai); 11 was created at 00:00 CST on 1 April; 8 is made at t1's
    # Qingdao site, so only t1's product 9 counts in Yantai (textiles, t1's own industry).
    assert (v["listed_products", "steel"], v["listed_products", "textiles"], v["listed_products", "*"]) == (6, 1, 7)
    assert ("listed_products", "tyres") not in v
    # In force at the end: 1 (issued 23:59:59 CST), 3 (valid through 31 March), 5 (revoked after the end).
    # Not: 2 (issued in Q2), 4 (revoked in February), 6 (self-declared), 9 (expired 30 March).
    assert (v["labelled_products", "steel"], v["labelled_products", "textiles"], v["labelled_products", "*"]) == (3, 0, 3)
    assert (v["grade_A", "steel"], v["grade_B", "steel"], v["grade_C", "*"], v["grade_D", "*"],
            v["grade_E", "*"]) == (1, 2, 0, 0, 0)
    assert v["labelled_share", "steel"] == ratio(Fraction(3, 6))
    assert v["labelled_share", "textiles"] == ratio(Fraction(0, 1))
    assert v["labelled_share", "*"] == ratio(Fraction(3, 7))
    # Mean of label ÷ baseline 2: (1.0/2 + 1.5/2 + 3.0/2) / 3.
    assert v["intensity_vs_baseline", "steel"] == ratio((Fraction(1, 2) + Fraction(3, 4) + Fraction(3, 2)) / 3)
    assert v["intensity_vs_baseline", "textiles"] is None  # no comparable label: nothing to average
    # Purchases by m1-m3 (Yantai retail): 100 + 200 + 300 + 50 (at 23:59:59 CST); 1000 at 00:00 CST 1 April is Q2.
    assert v["credits_purchases_g", "retail"] == v["credits_purchases_g", "*"] == 100 + 200 + 300 + 50
    assert v["credits_travel_g", "transport"] == v["credits_travel_g", "*"] == 500  # op1's attested trip
    assert v["credits_redeemed_g", "retail"] == 40
    # People: A, B, C bought (B also redeemed at m1); A travelled with op1; D's trip was unattested.
    assert (v["active_people", "retail"], v["active_people", "transport"], v["active_people", "*"]) == (3, 1, 3)
    # Tenders created in Q1: T1, T2, T3 (at 23:59:59 CST), T5; T4 is Q2. Criteria: T1 (weight), T3 (cap), T5 (label).
    assert v["tenders", "public_sector"] == 4 and v["tenders_with_carbon_criteria", "*"] == 3
    # Awarded in Q1: T1 (1.5 x 100, baseline 2 x 100) and T2 at 23:59:59 CST (1.8 x 10, 2 x 10); T5 in Q2.
    assert v["awarded_bids", "*"] == 2
    assert Decimal(v["awarded_footprint_kg", "*"]) == Decimal("1.5") * 100 + Decimal("1.8") * 10  # 168
    assert v["awarded_footprint_kg", "*"] == "168"  # exact decimal text, no trailing zeros
    assert v["awarded_baseline_kg", "*"] == "220"
    assert v["avoided_kg", "*"] == str(220 - 168)
    # Shipments in 2025Q1 (the Q2 one left out): steel 100000 + 50000 (covered) + 30000 (s3's product 6:
    # self-declared only); textiles 10000 (product 9, label expired). Volume at baseline 2: 10x2, 4x2, 5x2.
    assert v["export_value_cents", "steel"] == 180_000 and v["export_value_covered_cents", "steel"] == 150_000
    assert v["export_value_cents", "*"] == 190_000
    assert v["export_value_covered_share", "*"] == ratio(Fraction(150_000, 190_000))
    assert v["export_volume_kg_baseline", "steel"] == str(10 * 2 + 4 * 2 + 5 * 2) == "38"
    assert v["export_volume_covered_kg_baseline", "steel"] == "28"
    assert v["export_volume_kg_baseline", "textiles"] == "0"  # no benchmark for textile.shirt
    assert v["export_volume_covered_share", "steel"] == ratio(Fraction(28, 38))
    # Σ q x label / Σ q x baseline over covered: (10x1.0 + 4x1.5) / (10x2 + 4x2).
    assert v["export_intensity_vs_baseline", "steel"] == ratio(Fraction(16, 28))
    d = values(yantai, "by_destination")
    assert (d["export_value_cents", "DE"], d["export_value_cents", "US"]) == (150_000, 30_000 + 10_000)
    assert d["export_value_covered_cents", "US"] == 0
    names = {c["group"]: c["group_names"] for i in yantai["indicators"] if i["id"] == "export_value_cents"
             for c in i["by_destination"]}
    assert names["DE"] == {"zh-Hans": "德国", "zh-Hant": "德國", "en": "Germany"}

    qingdao = values(raw(migrated_database_url, QINGDAO, "industry"))
    assert (qingdao["listed_products", "steel"], qingdao["listed_products", "tyres"]) == (1, 1)  # s4; t1's site
    assert qingdao["grade_C", "tyres"] == 1 and qingdao["intensity_vs_baseline", "tyres"] == ratio(Fraction(8, 10))
    assert qingdao["export_volume_kg_baseline", "tyres"] == str(3 * 10)

    province = values(raw(migrated_database_url, SHANDONG, "industry"))
    # x1 (Beijing) counts nowhere in Shandong.
    assert (province["listed_products", "steel"], province["listed_products", "*"]) == (7, 9)
    assert province["labelled_share", "*"] == ratio(Fraction(4, 9))
    assert province["intensity_vs_baseline", "*"] == ratio(
        (Fraction(1, 2) + Fraction(3, 4) + Fraction(3, 2) + Fraction(8, 10)) / 4)
    assert province["credits_travel_g", "*"] == 500 + 70  # unattested travel counts in the province only
    assert province["active_people", "*"] == 4
    assert province["export_value_covered_share", "*"] == ratio(Fraction(170_000, 210_000))
    assert province["export_intensity_vs_baseline", "*"] == ratio(Fraction(10 + 6 + 24, 20 + 8 + 30))

    by_category = values(raw(migrated_database_url, SHANDONG, "category"))
    assert (by_category["listed_products", "steel.rebar"], by_category["listed_products", "tyre.car"],
            by_category["listed_products", "textile.shirt"]) == (7, 1, 1)
    assert by_category["tenders", "steel.rebar"] == 2 and by_category["tenders", "paper.a4"] == 2
    assert by_category["credits_purchases_g", "*"] == 650  # credits have no category: the total only
    assert not any(k[0] == "credits_purchases_g" and k[1] != "*" for k in by_category)


def test_public_figures_are_protected(settings, migrated_database_url, client, auth) -> None:
    seed(migrated_database_url)
    for area in (YANTAI, QINGDAO, SHANDONG):
        for by in ("industry", "category"):
            response = client.get("/v1/stats/indicators", params={"area": area, "quarter": "2025Q1", "by": by})
            assert response.status_code == 200, response.text
            body = response.json()
            oracle = raw(migrated_database_url, area, by)
            for field in ("cells", "by_destination"):
                oracle_field = values(oracle, field)
                for key, (value, status) in table(body, field).items():
                    if status == "published":
                        assert value == oracle_field[key], (area, by, key)
                    else:
                        assert value is None, (area, by, key)
    body = client.get("/v1/stats/indicators", params={"area": YANTAI, "quarter": "2025Q1"}).json()
    cells = table(body)
    # One enterprise alone: s1 is Yantai's only grade A product; op1 its only travel; m1 its only reward.
    assert cells["grade_A", "steel"] == (None, "primary")
    assert cells["grade_B", "steel"] == (None, "primary")  # two enterprises (s2, s3)
    assert cells["credits_travel_g", "transport"] == (None, "primary")
    assert cells["credits_redeemed_g", "*"] == (None, "primary")
    assert cells["awarded_footprint_kg", "*"] == (None, "primary")  # two agencies
    assert cells["avoided_kg", "*"][0] is None
    # Three merchants, none above 85 % (m1 100, m2 250, m3 300 g), in every table that shows them: published.
    assert cells["credits_purchases_g", "retail"] == cells["credits_purchases_g", "*"] == (650, "published")
    # Yantai's three labelled steel products are published in no table that would, subtracted from the
    # province's, give Qingdao's lone labelled product (t1's): the smaller of the two totals is hidden.
    assert cells["labelled_products", "*"] == (None, "secondary")
    qingdao = table(client.get("/v1/stats/indicators", params={"area": QINGDAO, "quarter": "2025Q1"}).json())
    assert qingdao["listed_products", "tyres"] == (None, "primary")
    assert qingdao["intensity_vs_baseline", "tyres"] == (None, "primary")
    # Shares follow their parts: a suppressed numerator or denominator hides the ratio.
    for key, (_value, status) in cells.items():
        if key[0] == "labelled_share" and status == "published":
            assert cells["labelled_products", key[1]][1] == cells["listed_products", key[1]][1] == "published"

    # T1 is ag1's alone among steel.rebar tenders with carbon criteria: hidden from the public, shown to
    # ag1's officers (whose own figure it is), never to another agency's.
    params = {"area": YANTAI, "quarter": "2025Q1", "by": "category"}
    public = table(client.get("/v1/stats/indicators", params=params).json())
    assert public["tenders_with_carbon_criteria", "steel.rebar"] == (None, "primary")
    own = table(client.get("/v1/stats/indicators", params=params, headers=auth("officer", org="ag1")).json())
    assert own["tenders_with_carbon_criteria", "steel.rebar"] == (1, "published")
    other = table(client.get("/v1/stats/indicators", params=params, headers=auth("officer", org="ag2")).json())
    assert other["tenders_with_carbon_criteria", "steel.rebar"] == (None, "primary")


def test_bad_area_and_quarter_are_field_errors(client) -> None:
    response = client.get("/v1/stats/indicators", params={"area": "370699", "quarter": "2025Q5"})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"area", "quarter"}
    county = client.get("/v1/stats/indicators", params={"area": "370602", "quarter": "2025Q1"})
    assert county.status_code == 422 and county.json()["errors"][0]["field"] == "area"
    future = client.get("/v1/stats/indicators", params={"area": YANTAI, "quarter": "2999Q1"})
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "quarter"
    by = client.get("/v1/stats/indicators", params={"area": YANTAI, "quarter": "2025Q1", "by": "colour"})
    assert by.status_code == 422


def test_tables_cut_from_a_spanning_forest_protect_as_all_atoms_do() -> None:
    """``_Table`` hands disclosure control only a spanning forest of its atoms (see ``_forest``): the
    protection must be the one every atom gives, and each figure the plain sum of its rows."""
    import random

    rng = random.Random(8)
    for trial in range(6):
        table = indicators._Table(SHANDONG)
        rows = []
        for _ in range(rng.randint(30, 120)):
            city = rng.choice(["3702", "3706", "3715", None])
            industry, category = rng.choice(["steel", "tyres", "paper"]), rng.choice(["c1", "c2", "c3", "c4"])
            destination, covered = rng.choice(["DE", "US", "JP", "NZ"]), rng.random() < 0.5
            org = f"o{rng.randint(0, 12)}"
            magnitude = rng.choice([0, rng.randint(1, 50), Decimal(rng.randint(1, 900)) / 100])
            ids = ["export_value_cents", *(["export_value_covered_cents"] if covered else [])]
            dims = {"industry": industry, "category": category, "destination": destination}
            table.add(("v", city, industry, category, destination, covered), org, magnitude, ids, city, dims)
            rows.append((city, dims, ids, magnitude))
        table.finish()
        for key, value in table.exact.items():
            indicator, area, dim, group = key
            expected = sum((m for city, dims, ids, m in rows if indicator in ids
                            and (area == SHANDONG or city is not None and city + "00" == area)
                            and (dim == "*" or city is not None and dims[dim] == group)), Decimal(0))
            assert Decimal(value) == expected, (trial, key)
        published = [indicators.disclosure.Published(k, a) for k, a in table.figures.items()]
        forest = indicators.disclosure.protect_summarised(published, table.summaries, zero_atoms=table.zero_atoms,
                                                          basis_atoms=table.basis_atoms)
        every = indicators.disclosure.protect_summarised(published, table.summaries, zero_atoms=table.zero_atoms)
        assert (forest.primary, forest.secondary, forest.exposed) == (every.primary, every.secondary, every.exposed)
        assert forest.exposed == frozenset()
        assert forest.primary and forest.secondary  # something to protect, and complements chosen


def test_one_computation_reads_one_state_of_the_database(settings, migrated_database_url, monkeypatch) -> None:
    """A product committed by someone else while the computation runs (after its snapshot was taken,
    before the products' query) counts in none of its queries, as read_snapshot promises; the next
    computation counts it. Without the snapshot the products query would see it (READ COMMITTED on
    PostgreSQL, one transaction per SELECT on SQLite). On PostgreSQL the products' query runs on a
    second connection, beside the shipments' (one server process each), from the same exported
    snapshot: without the import it would see the product too."""
    from sqlalchemy import text

    from carbonpuhui.db.engine import read_snapshot
    from carbonpuhui.stats.repository import StatsRepository

    seed(migrated_database_url)
    backends: dict[str, int] = {}
    postgres = make_url(migrated_database_url).get_backend_name() == "postgresql"

    async def listed() -> Any:
        engine = create_engine(migrated_database_url)
        try:
            async with async_sessionmaker(engine)() as session:
                assert await read_snapshot(session)
                body = msgspec.to_builtins(await indicators.compute(session, area=SHANDONG, quarter=Q1,
                                                                    by="industry", protected=False))
                assert not await read_snapshot(session)  # begun: the caller's from here on
                return values(body)[("listed_products", indicators.TOTAL)]
        finally:
            await engine.dispose()

    plain_products, plain_shipments = StatsRepository.products, StatsRepository.shipments

    async def backend(repo: StatsRepository) -> int:
        return (await repo.session.execute(text("SELECT pg_backend_pid()"))).scalar_one() if postgres else 0

    async def shipments(self: StatsRepository, province: str, quarter: Quarter) -> Any:
        backends["shipments"] = await backend(self)
        return await plain_shipments(self, province, quarter)

    async def then_a_product_arrives(self: StatsRepository, province: str, quarter: Quarter) -> Any:
        other = create_engine(migrated_database_url)
        try:
            async with async_sessionmaker(other)() as session:
                session.add(_product(99, "s1", "steel.rebar", "t"))
                await session.commit()
        finally:
            await other.dispose()
        rows = await plain_products(self, province, quarter)
        backends["products"] = await backend(self)  # (after: its query is the first to need a snapshot)
        return rows

    before = asyncio.run(listed())
    monkeypatch.setattr(StatsRepository, "shipments", shipments)
    monkeypatch.setattr(StatsRepository, "products", then_a_product_arrives)
    during = asyncio.run(listed())
    monkeypatch.setattr(StatsRepository, "products", plain_products)
    after = asyncio.run(listed())
    assert int(during) == int(before) and int(after) == int(before) + 1
    assert (backends["shipments"] != backends["products"]) == postgres


def test_a_superseded_label_and_its_successor_count_once(client, auth, migrated_database_url) -> None:
    """Re-certifying a product revokes its label at the instant the successor is issued, so at any
    quarter's end at most one of the two is in force: the product counts once, at its new grade."""
    from tests.api.label_flow import OWNER, Flow
    from tests.api.test_products import line, put_inventory
    from tests.api.test_stats_organisations import put_profile

    flow = Flow(client, auth)
    flow.benchmark(["10", "20", "30", "40"], uncertainty_penalty="0")
    put_profile(client, auth, OWNER)
    code = flow.product(1, "15")
    first = flow.certify(code)
    put_inventory(client, flow.owner, [line("production", "measured", "1", "kg", direct_kgco2e="8")], gtin=code)
    second = flow.certify(code)
    assert (first["grade"], second["grade"]) == ("B", "A")

    async def figures() -> dict[tuple[str, str], Any]:
        engine = create_engine(migrated_database_url)
        try:
            async with async_sessionmaker(engine)() as session:
                return values(msgspec.to_builtins(await indicators.compute(
                    session, area=SHANDONG, quarter=Quarter.of(datetime.now(UTC)), by="industry", protected=False)))
        finally:
            await engine.dispose()

    got = asyncio.run(figures())
    total = indicators.TOTAL
    assert (got[("listed_products", total)], got[("labelled_products", total)]) == (1, 1)
    assert (got[("grade_A", total)], got[("grade_B", total)]) == (1, 0)


def test_a_twin_reader_only_for_a_read_only_snapshot(settings, migrated_database_url) -> None:  # (settings: emptied after)
    """snapshot_twin gives a second session only where it reads what the first one reads: PostgreSQL, in
    a read-only REPEATABLE READ transaction (then both see one snapshot, whatever commits meanwhile);
    never on SQLite, nor for a session that may hold writes of its own (READ COMMITTED: a statement
    in another connection would not see them)."""
    from sqlalchemy import text

    from carbonpuhui.db.engine import read_snapshot, snapshot_twin

    postgres = make_url(migrated_database_url).get_backend_name() == "postgresql"
    count = text("SELECT count(*) FROM organisations")

    async def run() -> list[Any]:
        engine = create_engine(migrated_database_url)
        seen: list[Any] = []
        try:
            sessions = async_sessionmaker(engine)
            async with sessions() as session:  # a plain transaction: it may write
                await session.execute(count)
                async with snapshot_twin(session) as twin:
                    seen.append(twin)
            async with sessions() as session:
                assert await read_snapshot(session)
                before = (await session.execute(count)).scalar_one()
                async with sessions() as writer:
                    writer.add(Organisation(org="late", names={"en": "Late"}, division_code="370600",
                                            industry="steel", updated_at=datetime.now(UTC), updated_by="t"))
                    await writer.commit()
                async with snapshot_twin(session) as twin:
                    seen.append(None if twin is None else (before, (await twin.execute(count)).scalar_one()))
            async with sessions() as session:
                seen.append((await session.execute(count)).scalar_one())
        finally:
            await engine.dispose()
        return seen

    plain, twin, now = asyncio.run(run())
    assert plain is None
    if postgres:
        before, in_twin = twin
        assert in_twin == before and now == before + 1
    else:
        assert twin is None


def test_records_straight_from_the_driver_are_sqlalchemys_rows(settings, migrated_database_url) -> None:  # (settings: emptied after)
    """StatsRepository._records (PostgreSQL: the large aggregates read through asyncpg directly) sends
    the statement SQLAlchemy would, with its parameters processed alike (here a UTC instant, a date and
    two literals), in the connection's transaction (which it never runs outside of)."""
    import pytest
    from sqlalchemy import and_, literal, select, text

    from carbonpuhui.stats.repository import StatsRepository

    if make_url(migrated_database_url).get_backend_name() != "postgresql":
        pytest.skip("asyncpg only")
    seed(migrated_database_url)
    stmt = (select(Label.gtin, Label.issued_at, literal(3) + literal(3)).where(
        and_(Label.issued_at < Q1.end, Label.valid_until >= Q1.last_day)).order_by(Label.gtin))

    async def run() -> tuple[Any, Any, Any]:
        engine = create_engine(migrated_database_url)
        try:
            async with engine.connect() as connection:
                outside = await StatsRepository._records(connection, select(literal(1)))  # (begins it)
                await connection.execute(text("SET LOCAL work_mem = '64MB'"))
                inside = await StatsRepository._records(connection, stmt)
                return outside, inside, list((await connection.execute(stmt)).all())
        finally:
            await engine.dispose()

    outside, records, rows = asyncio.run(run())
    assert [tuple(r) for r in outside] == [(1,)]
    assert rows and [tuple(r) for r in records] == [tuple(r) for r in rows]


def test_second_connections_take_at_most_half_the_pool(settings, migrated_database_url) -> None:  # (settings: emptied after)
    """A computation holds its connection while it waits for a second one: were every connection held
    so, none would come free. So at most half the pool (5 of 10) are second connections at once; a
    computation beyond that runs its queries in turn (no twin), and a slot is free again after use."""
    from sqlalchemy import text

    from carbonpuhui.db.engine import read_snapshot, snapshot_twin

    if make_url(migrated_database_url).get_backend_name() != "postgresql":
        import pytest

        pytest.skip("second connections on PostgreSQL only")

    async def run() -> list[bool]:
        engine = create_engine(migrated_database_url)
        try:
            async with contextlib.AsyncExitStack() as stack:
                got = []
                for _ in range(6):
                    session = await stack.enter_async_context(async_sessionmaker(engine)())
                    assert await read_snapshot(session)
                    await session.execute(text("SELECT 1"))
                    got.append(await stack.enter_async_context(snapshot_twin(session)) is not None)
            async with async_sessionmaker(engine)() as session:
                assert await read_snapshot(session)
                async with snapshot_twin(session) as twin:
                    got.append(twin is not None)
            return got
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == [True] * 5 + [False, True]

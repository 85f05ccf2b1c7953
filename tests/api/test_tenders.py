"""Tenders over HTTP: creation rules, the public summary, bids with receipts and labels, the
evaluation and its reports. Also the helpers the sealed-bid tests share (a clock that can be moved
past the deadline, tenders, bids, labels written straight into the database)."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

import procurement.service
from carbonpuhui import throttle
from carbonpuhui.app import create_app
from carbonpuhui.db.engine import create_engine
from carbonpuhui.labels.models import Benchmark, Label
from tests.api.test_products import create_product, with_check_digit
from tests.conftest import make_settings

AGENCY = "sd-procurement-centre"
CATEGORY = "steel.hot_rolled_coil"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def pass_deadline(self, tender: dict[str, Any]) -> None:
        self.now = datetime.fromisoformat(tender["deadline"]) + timedelta(seconds=1)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(procurement.service, "utcnow", c)
    return c


def officer(auth, org: str = AGENCY, sub: str = "officer-1") -> dict[str, str]:
    return auth("officer", org=org, sub=sub)


def supplier(auth, org: str) -> dict[str, str]:
    return auth("merchant", org=org, sub=f"{org}-user")


def tender_body(clock: Clock, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "热轧钢卷 2027", "category": CATEGORY, "functional_unit": "tonne", "quantity": 500,
        "deadline": (clock.now + timedelta(days=7)).isoformat(),
        "eligibility": {"max_kgco2e_per_unit": None, "label_required": False},
        "weights": {"price": 0.6, "carbon": 0.4, "quality": 0.0}, "carbon_method": "ratio_to_best",
        "shadow_price_cents_per_tco2e": None, "weight_ranges": None,
    }
    body.update(overrides)
    return body


def create_tender(client, auth, clock: Clock, **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/tenders", json=tender_body(clock, **overrides), headers=officer(auth))
    assert response.status_code == 201, response.text
    return response.json()


def submit(client, headers, tender_id: str, price: int = 100_000, kg: Any = "2000", gsd: float | None = 1.2,
           **extra: Any):
    footprint = extra.pop("footprint", {"kgco2e_per_unit": kg, "gsd": gsd})
    return client.post(f"/v1/tenders/{tender_id}/bids", json={"price_cents": price, "footprint": footprint, **extra},
                       headers=headers)


def bid(client, headers, tender_id: str, **kwargs: Any) -> dict[str, Any]:
    response = submit(client, headers, tender_id, **kwargs)
    assert response.status_code in (200, 201), response.text
    return response.json()


def run_db(settings, work) -> Any:  # type: ignore[no-untyped-def]
    """Run ``work(session)`` in a transaction of its own on the app's database."""
    async def run() -> Any:
        engine = create_engine(settings.effective_database_url)
        try:
            async with AsyncSession(engine, expire_on_commit=False) as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


def add_label(settings, client, auth, org: str, *, gtin_body: str, kg: str = "1.9", gsd: float | None = 1.15,
              p50: str | None = "1.7", scheme: str = "verified", status: str = "active", current: bool = True,
              valid_until: date | None = None, category: str = CATEGORY, declared_unit: str = "kilogram") -> str:
    """A product of ``org`` with a label as certification leaves it (values per kilogram)."""
    gtin = with_check_digit(gtin_body)
    create_product(client, supplier(auth, org), gtin, category=category, declared_unit=declared_unit)
    label_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    uncertainty = {} if p50 is None else {"p5": "1.4", "p50": p50, "p80": kg, "p95": "2.2", "samples": 10000, "seed": 1}
    row = Label(id=label_id, gtin="0" * (14 - len(gtin)) + gtin, owner_org=org, scheme=scheme, status=status,
                current=current, category=category, declared_unit=declared_unit, kgco2e_per_unit=Decimal(kg),
                declared_kgco2e_per_unit=Decimal(kg), conservative_basis="monte_carlo_p80", uncertainty=uncertainty,
                gsd=gsd, grade="B", benchmark_revision=1, certification_body="cb", issued_at=now, issued_by="v",
                valid_until=valid_until or date(now.year + 2, 12, 31), factor_versions=[], inventory_revision=1)

    async def work(session: AsyncSession) -> None:
        session.add(row)

    run_db(settings, work)
    return label_id


def set_label(settings, label_id: str, **values: Any) -> None:
    async def work(session: AsyncSession) -> None:
        await session.execute(update(Label).where(Label.id == label_id).values(**values))

    run_db(settings, work)


def add_benchmark(settings, category: str = CATEGORY, thresholds: tuple[str, ...] = ("1.2", "1.6", "2.0", "2.4"),
                  declared_unit: str = "kilogram") -> None:
    row = Benchmark(category=category, method="fixed", declared_unit=declared_unit, percentiles=[20, 40, 60, 80],
                    thresholds=list(thresholds), baseline=Decimal("1.8"), uncertainty_penalty=Decimal("0.2"),
                    sample_size=None, source="test", revision=3, updated_at=datetime.now(UTC), updated_by="admin")

    async def work(session: AsyncSession) -> None:
        session.add(row)

    run_db(settings, work)


def field_errors(response) -> list[str | None]:
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


# --- creating tenders ---------------------------------------------------------------------------


def test_an_officer_creates_a_tender_for_the_agency_and_anyone_reads_its_summary(client, auth, clock) -> None:
    created = create_tender(client, auth, clock, weight_ranges={"price": {"min": "0.5", "max": "0.7"},
                                                                "carbon": {"min": 0.3, "max": 0.5}})
    assert created["agency"] == AGENCY and created["status"] == "open"
    assert created["weights"] == {"price": "0.6", "carbon": "0.4", "quality": "0.0"}
    assert created["weight_ranges"] == {"price": {"min": "0.5", "max": "0.7"}, "carbon": {"min": "0.3", "max": "0.5"},
                                        "quality": None}
    assert created["quantity"] == "500" and created["functional_unit"] == "tonne"
    assert created["bid_count"] is None and created["benchmark"] is None
    summary = client.get(f"/v1/tenders/{created['id']}")
    assert summary.status_code == 200
    assert summary.json() == created


def test_the_deadline_is_kept_in_utc(client, auth, clock) -> None:
    local = (clock.now + timedelta(days=3)).astimezone(ZoneInfo("Asia/Shanghai"))
    created = create_tender(client, auth, clock, deadline=local.isoformat())
    assert datetime.fromisoformat(created["deadline"]) == local
    assert datetime.fromisoformat(created["deadline"]).utcoffset() == timedelta(0)


def test_weights_are_compared_as_exact_decimals(client, auth, clock) -> None:
    # 0.1 + 0.2 + 0.7 is exactly 1 as decimals (it is not as binary floats).
    created = create_tender(client, auth, clock, weights={"price": 0.1, "carbon": 0.2, "quality": 0.7})
    assert created["weights"] == {"price": "0.1", "carbon": "0.2", "quality": "0.7"}
    response = client.post("/v1/tenders", json=tender_body(clock, weights={"price": 0.6, "carbon": 0.3}),
                           headers=officer(auth))
    assert field_errors(response) == ["weights"]
    response = client.post("/v1/tenders", json=tender_body(clock, weights={"price": "0.6000000000000000001",
                                                                           "carbon": 0.4}), headers=officer(auth))
    assert field_errors(response) == ["weights"]


@pytest.mark.parametrize(("overrides", "fields"), [
    ({"weights": {"price": 1.2, "carbon": -0.2}}, ["weights.price", "weights.carbon"]),
    ({"quantity": 0}, ["quantity"]),
    ({"quantity": "-3"}, ["quantity"]),
    ({"deadline": "2020-01-01T00:00:00Z"}, ["deadline"]),
    ({"deadline": "2030-01-01T00:00:00"}, ["deadline"]),
    ({"carbon_method": "monetised"}, ["shadow_price_cents_per_tco2e"]),
    ({"shadow_price_cents_per_tco2e": 5000}, ["shadow_price_cents_per_tco2e"]),
    ({"eligibility": {"max_kgco2e_per_unit": "0"}}, ["eligibility.max_kgco2e_per_unit"]),
    ({"weight_ranges": {"price": {"min": 0.7, "max": 0.5}, "carbon": {"min": 0.3, "max": 0.5}}},
     ["weight_ranges.price"]),
    ({"weight_ranges": {"price": {"min": 0.7, "max": 0.9}, "carbon": {"min": 0.3, "max": 0.5}}},
     ["weight_ranges.price"]),
    ({"weight_ranges": {"price": {"min": 0.5, "max": 0.7}}}, ["weight_ranges"]),
    ({"weight_ranges": {"price": {"min": 0.5, "max": 0.7}, "carbon": {"min": 0.4, "max": 0.4}}}, ["weight_ranges"]),
    ({"weight_ranges": {"price": {"min": -0.1, "max": 0.7}, "carbon": {"min": 0.3, "max": 1.5}}},
     ["weight_ranges.price", "weight_ranges.carbon"]),
])
def test_invalid_tenders_are_refused_naming_the_field(client, auth, clock, overrides, fields) -> None:
    response = client.post("/v1/tenders", json=tender_body(clock, **overrides), headers=officer(auth))
    assert field_errors(response) == fields
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(("overrides", "field"), [
    ({"carbon_method": "cheapest"}, "carbon_method"),
    ({"functional_unit": "furlong"}, "functional_unit"),
    ({"weights": {"price": "abc", "carbon": 0.4}}, "weights.price"),
    ({"surprise": 1}, "surprise"),
    ({"title": ""}, "title"),
])
def test_schema_violations_are_422(client, auth, clock, overrides, field) -> None:
    assert field_errors(client.post("/v1/tenders", json=tender_body(clock, **overrides),
                                    headers=officer(auth))) == [field]


def test_an_officer_without_an_organisation_cannot_create_a_tender(client, auth, clock) -> None:
    response = client.post("/v1/tenders", json=tender_body(clock), headers=auth("officer"))
    assert response.status_code == 403 and response.json()["reason"] == "no_organisation"


def test_the_benchmark_method_needs_the_category_benchmark_and_snapshots_it(client, auth, clock, settings) -> None:
    response = client.post("/v1/tenders", json=tender_body(clock, carbon_method="benchmark"), headers=officer(auth))
    assert response.status_code == 422
    assert response.json()["reason"] == "benchmark_missing"
    add_benchmark(settings)  # per kilogram; the tender buys tonnes
    created = create_tender(client, auth, clock, carbon_method="benchmark")
    assert created["benchmark"] == {"percentiles": [20, 40, 60, 80], "thresholds": ["1200", "1600", "2000", "2400"],
                                    "baseline": "1800", "revision": 3}
    response = client.post("/v1/tenders", json=tender_body(clock, carbon_method="benchmark", functional_unit="piece"),
                           headers=officer(auth))
    assert response.status_code == 422 and response.json()["reason"] == "benchmark_unit_mismatch"


def test_unknown_tenders_are_404(client, auth) -> None:
    for path in ("", "/bids", "/report.csv", "/report.svg"):
        response = client.get(f"/v1/tenders/{uuid.uuid4()}{path}", headers=officer(auth))
        assert response.status_code == 404, path
        assert response.json()["reason"] == "tender_not_found"


def test_tenders_are_listed_by_deadline_and_filtered(client, auth, clock) -> None:
    late = create_tender(client, auth, clock, deadline=(clock.now + timedelta(days=9)).isoformat())
    soon = create_tender(client, auth, clock, deadline=(clock.now + timedelta(days=2)).isoformat())
    other = client.post("/v1/tenders", json=tender_body(clock, category="tyre.passenger"),
                        headers=officer(auth, org="qd-centre"))
    assert other.status_code == 201
    page = client.get("/v1/tenders", params={"limit": 1})
    assert page.status_code == 200
    first = page.json()
    assert [t["id"] for t in first["items"]] == [soon["id"]]
    rest = client.get("/v1/tenders", params={"cursor": first["next_cursor"], "limit": 5}).json()
    assert [t["id"] for t in rest["items"]] == [other.json()["id"], late["id"]] or \
        [t["id"] for t in rest["items"]] == [late["id"], other.json()["id"]]
    assert rest["next_cursor"] is None
    assert [t["id"] for t in client.get("/v1/tenders", params={"agency": "qd-centre"}).json()["items"]] == \
        [other.json()["id"]]
    assert {t["id"] for t in client.get("/v1/tenders", params={"category": "steel"}).json()["items"]} == \
        {late["id"], soon["id"]}
    clock.pass_deadline(soon)
    assert [t["id"] for t in client.get("/v1/tenders", params={"status": "closed"}).json()["items"]] == [soon["id"]]
    assert soon["id"] not in {t["id"] for t in client.get("/v1/tenders", params={"status": "open"}).json()["items"]}
    assert client.get("/v1/tenders", params={"cursor": "!!"}).status_code == 400


# --- bids ---------------------------------------------------------------------------------------


def test_a_bid_gets_a_receipt_over_its_canonical_content(client, auth, clock) -> None:
    tender = create_tender(client, auth, clock)
    response = submit(client, supplier(auth, "jigang"), tender["id"], price=123_456, kg="2000.50", gsd=1.25,
                      quality_score=85)
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["revision"] == 1 and receipt["replaced"] is False
    assert hashlib.sha256(receipt["canonical"].encode()).hexdigest() == receipt["receipt_sha256"]
    assert json.loads(receipt["canonical"]) == {
        "tender_id": tender["id"], "supplier": "jigang", "price_cents": 123_456,
        "footprint": {"kgco2e_per_unit": "2000.5", "gsd": 1.25}, "quality_score": "85"}
    assert receipt["canonical"] == json.dumps(json.loads(receipt["canonical"]), sort_keys=True, separators=(",", ":"),
                                              ensure_ascii=False)
    # The same content spelt differently has the same receipt.
    again = submit(client, supplier(auth, "jigang"), tender["id"], price=123_456, kg=2000.5, gsd=1.25,
                   quality_score="85.0").json()
    assert again["receipt_sha256"] == receipt["receipt_sha256"]


def test_a_supplier_replaces_its_bid_until_the_deadline(client, auth, clock) -> None:
    tender = create_tender(client, auth, clock)
    headers = supplier(auth, "jigang")
    first = bid(client, headers, tender["id"], price=100_000)
    response = submit(client, headers, tender["id"], price=95_000)
    assert response.status_code == 200
    second = response.json()
    assert second["id"] == first["id"] and second["revision"] == 2 and second["replaced"] is True
    assert second["receipt_sha256"] != first["receipt_sha256"]
    mine = client.get(f"/v1/tenders/{tender['id']}/bids", headers=headers).json()["items"]
    assert [(b["id"], b["price_cents"], b["receipt_sha256"]) for b in mine] == \
        [(first["id"], 95_000, second["receipt_sha256"])]
    clock.pass_deadline(tender)
    late = submit(client, headers, tender["id"], price=90_000)
    assert late.status_code == 409 and late.json()["reason"] == "tender_closed"
    late_new = submit(client, supplier(auth, "latecomer"), tender["id"])
    assert late_new.status_code == 409 and late_new.json()["reason"] == "tender_closed"


@pytest.mark.parametrize(("footprint", "extra", "fields"), [
    ({"kgco2e_per_unit": "2", "gsd": 1.1, "label_id": "x"}, {}, ["footprint"]),
    ({}, {}, ["footprint"]),
    ({"kgco2e_per_unit": "2"}, {}, ["footprint.gsd"]),
    ({"kgco2e_per_unit": "0", "gsd": 1.1}, {}, ["footprint.kgco2e_per_unit"]),
    ({"kgco2e_per_unit": "-1", "gsd": 1.1}, {}, ["footprint.kgco2e_per_unit"]),
    ({"kgco2e_per_unit": "1e40", "gsd": 1.1}, {}, ["footprint.kgco2e_per_unit"]),
    ({"kgco2e_per_unit": "2", "gsd": 0.9}, {}, ["footprint.gsd"]),
    ({"kgco2e_per_unit": "2", "gsd": 1.1}, {"quality_score": 101}, ["quality_score"]),
    ({"kgco2e_per_unit": "2", "gsd": 1.1}, {"price_cents": 0}, ["price_cents"]),
    ({"label_id": "x", "gsd": 1.1}, {}, ["footprint.gsd"]),
])
def test_invalid_bids_are_refused_naming_the_field(client, auth, clock, footprint, extra, fields) -> None:
    tender = create_tender(client, auth, clock)
    body = {"price_cents": 100, "footprint": footprint, **extra}
    response = client.post(f"/v1/tenders/{tender['id']}/bids", json=body, headers=supplier(auth, "jigang"))
    assert field_errors(response) == fields


def test_a_merchant_without_an_organisation_and_the_agency_itself_cannot_bid(client, auth, clock) -> None:
    tender = create_tender(client, auth, clock)
    response = submit(client, auth("merchant"), tender["id"])
    assert response.status_code == 403 and response.json()["reason"] == "no_organisation"
    response = submit(client, auth("merchant", org=AGENCY), tender["id"])
    assert response.status_code == 403 and response.json()["reason"] == "own_tender"


def test_a_bid_may_cite_its_own_current_label_converted_to_the_functional_unit(client, auth, clock, settings) -> None:
    tender = create_tender(client, auth, clock)  # per tonne; the label is per kilogram
    label_id = add_label(settings, client, auth, "jigang", gtin_body="690123400001", kg="1.9", p50="1.7", gsd=1.15)
    headers = supplier(auth, "jigang")
    receipt = bid(client, headers, tender["id"], footprint={"label_id": label_id})
    assert json.loads(receipt["canonical"])["footprint"] == {"label_id": label_id}
    own = client.get(f"/v1/tenders/{tender['id']}/bids/{receipt['id']}", headers=headers).json()
    assert own["footprint"] == {"source": "label", "kgco2e_per_unit": "1900", "median_kgco2e_per_unit": "1700",
                                "gsd": 1.15, "label_id": label_id, "label_scheme": "verified"}


def test_a_label_without_uncertainty_data_is_exact_at_its_certified_value(client, auth, clock, settings) -> None:
    tender = create_tender(client, auth, clock, functional_unit="kilogram")
    label_id = add_label(settings, client, auth, "jigang", gtin_body="690123400002", kg="2.4", p50=None, gsd=None)
    headers = supplier(auth, "jigang")
    receipt = bid(client, headers, tender["id"], footprint={"label_id": label_id})
    own = client.get(f"/v1/tenders/{tender['id']}/bids/{receipt['id']}", headers=headers).json()
    assert (own["footprint"]["kgco2e_per_unit"], own["footprint"]["median_kgco2e_per_unit"],
            own["footprint"]["gsd"]) == ("2.4", "2.4", 1.0)


@pytest.mark.parametrize(("label", "reason"), [
    ({"owner": "other-mill"}, "label_not_found"),
    ({"status": "revoked"}, "label_revoked"),
    ({"current": False}, "label_superseded"),
    ({"valid_until": date(2020, 1, 1)}, "label_expired"),
    ({"category": "tyre.passenger"}, "label_category_mismatch"),
    ({"declared_unit": "piece"}, "label_unit_mismatch"),
])
def test_a_bid_may_not_cite_a_label_that_does_not_hold(client, auth, clock, settings, label, reason) -> None:
    tender = create_tender(client, auth, clock)
    owner = label.pop("owner", "jigang")
    label_id = add_label(settings, client, auth, owner, gtin_body="690123400003", **label)
    response = submit(client, supplier(auth, "jigang"), tender["id"], footprint={"label_id": label_id})
    assert response.status_code == 422, response.text
    assert response.json()["reason"] == reason
    assert [e["field"] for e in response.json()["errors"]] == ["footprint.label_id"]
    unknown = submit(client, supplier(auth, "jigang"), tender["id"], footprint={"label_id": str(uuid.uuid4())})
    assert unknown.status_code == 422 and unknown.json()["reason"] == "label_not_found"


def test_a_label_of_a_subcategory_may_be_cited(client, auth, clock, settings) -> None:
    tender = create_tender(client, auth, clock, category="steel")
    label_id = add_label(settings, client, auth, "jigang", gtin_body="690123400004")
    assert submit(client, supplier(auth, "jigang"), tender["id"], footprint={"label_id": label_id}).status_code == 201


# --- evaluation ---------------------------------------------------------------------------------


def opened_tender(client, auth, clock, **overrides: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """A tender with three bids, past its deadline: (tender, bid id by supplier)."""
    tender = create_tender(client, auth, clock, **overrides)
    ids = {}
    for org, price, kg, gsd in (("jigang", 100_000, "2000", 1.1), ("rizhao", 90_000, "2400", 1.2),
                                ("laigang", 120_000, "1500", 1.3)):
        ids[org] = bid(client, supplier(auth, org), tender["id"], price=price, kg=kg, gsd=gsd)["id"]
    clock.pass_deadline(tender)
    return tender, ids


def evaluate(client, auth, tender_id: str, samples: int = 2_000, seed: int = 7, **kwargs: Any):
    return client.post(f"/v1/tenders/{tender_id}/evaluation", json={"samples": samples, "seed": seed},
                       headers=kwargs.get("headers") or officer(auth))


def test_the_evaluation_ranks_with_the_statutory_formulas(client, auth, clock) -> None:
    tender, ids = opened_tender(client, auth, clock)
    response = evaluate(client, auth, tender["id"])
    assert response.status_code == 200, response.text
    result = response.json()
    ranking = {r["supplier"]: r for r in result["ranking"]}
    # price: 0.6 × 90000 / price; carbon (ratio to best): 0.4 × 1500 / footprint.
    assert ranking["rizhao"]["price_score"] == "0.600000" and ranking["rizhao"]["carbon_score"] == "0.250000"
    assert ranking["jigang"]["price_score"] == "0.540000" and ranking["jigang"]["carbon_score"] == "0.300000"
    assert ranking["laigang"]["price_score"] == "0.450000" and ranking["laigang"]["carbon_score"] == "0.400000"
    totals = [(r["supplier"], r["rank"], r["total"]) for r in result["ranking"]]
    # rizhao 0.85 and laigang 0.85 tie on total: the lower price (rizhao) ranks first.
    assert totals == [("rizhao", 1, "0.850000"), ("laigang", 2, "0.850000"), ("jigang", 3, "0.840000")]
    assert all(r["eligible"] and r["reasons"] == [] and r["quality_score"] == "0.000000" for r in result["ranking"])
    analysis = result["analysis"]
    assert analysis["bid_ids"] == [ids["rizhao"], ids["laigang"], ids["jigang"]]
    assert analysis["samples"] == 2_000 and analysis["seed"] == 7 and analysis["weights_sampled"] is False
    assert [round(sum(row), 12) for row in analysis["rank_acceptability"]] == [1.0, 1.0, 1.0]
    assert analysis["p_first"] == [row[0] for row in analysis["rank_acceptability"]]
    assert all(analysis["pairwise_winning"][i][i] == 0 for i in range(3))
    assert 0 < analysis["mc_error"] <= analysis["mc_error_bound"] == pytest.approx(0.5 / 2_000 ** 0.5)
    assert analysis["central_weights"][0] == {"price": 0.6, "carbon": 0.4, "quality": 0.0}
    assert analysis["confidence"] == analysis["p_first"]


def test_same_seed_same_answer_other_seed_other_numbers(client, auth, clock) -> None:
    tender, _ = opened_tender(client, auth, clock, weight_ranges={"price": {"min": 0.4, "max": 0.8},
                                                                  "carbon": {"min": 0.2, "max": 0.6}})
    first = evaluate(client, auth, tender["id"], seed=3).json()
    again = evaluate(client, auth, tender["id"], seed=3).json()
    other = evaluate(client, auth, tender["id"], seed=4).json()
    assert first["ranking"] == again["ranking"] and first["analysis"] == again["analysis"]
    assert first["analysis"]["weights_sampled"] is True
    assert other["analysis"]["rank_acceptability"] != first["analysis"]["rank_acceptability"]
    assert other["ranking"] == first["ranking"]  # the deterministic part does not depend on the seed


def test_eligibility_is_decided_at_evaluation_with_reasons(client, auth, clock, settings) -> None:
    tender = create_tender(client, auth, clock, eligibility={"max_kgco2e_per_unit": "2200", "label_required": True})
    verified = add_label(settings, client, auth, "jigang", gtin_body="690123400005", kg="1.9")
    declared = add_label(settings, client, auth, "rizhao", gtin_body="690123400006", kg="1.8", scheme="self_declared")
    soon_revoked = add_label(settings, client, auth, "laigang", gtin_body="690123400007", kg="1.7")
    bid(client, supplier(auth, "jigang"), tender["id"], footprint={"label_id": verified})
    bid(client, supplier(auth, "rizhao"), tender["id"], footprint={"label_id": declared})
    bid(client, supplier(auth, "laigang"), tender["id"], footprint={"label_id": soon_revoked})
    bid(client, supplier(auth, "shougang"), tender["id"], kg="2500", gsd=1.1)
    set_label(settings, soon_revoked, status="revoked")
    clock.pass_deadline(tender)
    result = evaluate(client, auth, tender["id"]).json()
    reasons = {r["supplier"]: (r["eligible"], r["rank"], r["reasons"]) for r in result["ranking"]}
    assert reasons == {
        "jigang": (True, 1, []),
        "rizhao": (False, None, ["label_not_verified"]),
        "laigang": (False, None, ["label_revoked"]),
        "shougang": (False, None, ["footprint_above_limit", "label_missing"]),
    }
    assert result["ranking"][0]["supplier"] == "jigang"
    assert len(result["analysis"]["bid_ids"]) == 1 and result["analysis"]["p_first"] == [1.0]
    csv_rows = list(csv.DictReader(io.StringIO(client.get(f"/v1/tenders/{tender['id']}/report.csv",
                                                          headers=officer(auth)).text)))
    assert {r["supplier"]: r["reasons"] for r in csv_rows}["shougang"] == "footprint_above_limit;label_missing"


def test_a_label_that_expires_before_the_deadline_makes_the_bid_ineligible(client, auth, clock, settings) -> None:
    tender = create_tender(client, auth, clock)
    label_id = add_label(settings, client, auth, "jigang", gtin_body="690123400008",
                         valid_until=(clock.now + timedelta(days=2)).date())
    bid(client, supplier(auth, "jigang"), tender["id"], footprint={"label_id": label_id})
    clock.pass_deadline(tender)
    result = evaluate(client, auth, tender["id"]).json()
    assert result["ranking"][0]["reasons"] == ["label_expired"]
    assert result["analysis"]["bid_ids"] == []


def test_monetised_and_benchmark_tenders_evaluate(client, auth, clock, settings) -> None:
    add_benchmark(settings)
    tender, ids = opened_tender(client, auth, clock, carbon_method="benchmark")
    ranking = {r["supplier"]: r for r in evaluate(client, auth, tender["id"]).json()["ranking"]}
    # thresholds 1200/1600/2000/2400 per tonne: 1500 is 3/4 of the way to P40 -> 1 - 0.75/3.
    assert ranking["laigang"]["carbon_score"] == "0.300000"
    assert ranking["jigang"]["carbon_score"] == "0.133333"
    assert ranking["rizhao"]["carbon_score"] == "0.000000"
    clock.now = datetime.now(UTC).replace(microsecond=0)
    tender, _ = opened_tender(client, auth, clock, carbon_method="monetised", shadow_price_cents_per_tco2e=10_000,
                              quantity=1)
    ranking = {r["supplier"]: r for r in evaluate(client, auth, tender["id"]).json()["ranking"]}
    # cost = price + 10000 × kg / 1000: 120000, 114000, 135000 -> best 114000 (rizhao).
    assert ranking["rizhao"]["carbon_score"] == "0.400000"
    assert ranking["jigang"]["carbon_score"] == "0.380000"
    assert ranking["laigang"]["carbon_score"] == "0.337778"


def test_an_evaluation_needs_bids(client, auth, clock) -> None:
    tender = create_tender(client, auth, clock)
    clock.pass_deadline(tender)
    response = evaluate(client, auth, tender["id"])
    assert response.status_code == 409 and response.json()["reason"] == "no_bids"


@pytest.mark.parametrize("body", [{"samples": 99}, {"samples": 100_001}, {"seed": -1}, {"extra": 1}])
def test_evaluation_parameters_are_bounded(client, auth, clock, body) -> None:
    tender, _ = opened_tender(client, auth, clock)
    response = client.post(f"/v1/tenders/{tender['id']}/evaluation", json=body, headers=officer(auth))
    assert response.status_code == 422


def test_evaluations_spend_the_compute_budget(client, auth, clock, settings, monkeypatch) -> None:
    tender, _ = opened_tender(client, auth, clock)
    monkeypatch.setattr(throttle, "time", SimpleNamespace(time=lambda: 1_800_000_015.0))  # mid-minute
    tight = make_settings(settings.data_dir, database_url=settings.effective_database_url,
                          compute_rate_limit_per_minute=2)
    with TestClient(create_app(tight), raise_server_exceptions=False) as limited:
        statuses = [evaluate(limited, auth, tender["id"], samples=100).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        # Reading the reports computes nothing and costs nothing.
        assert limited.get(f"/v1/tenders/{tender['id']}/report.csv", headers=officer(auth)).status_code == 200


# --- reports ------------------------------------------------------------------------------------


def test_reports_show_the_latest_evaluation(client, auth, clock) -> None:
    tender, ids = opened_tender(client, auth, clock)
    for suffix in ("report.csv", "report.svg"):
        response = client.get(f"/v1/tenders/{tender['id']}/{suffix}", headers=officer(auth))
        assert response.status_code == 409 and response.json()["reason"] == "not_evaluated"
    evaluate(client, auth, tender["id"], seed=1)
    result = evaluate(client, auth, tender["id"], seed=2).json()
    response = client.get(f"/v1/tenders/{tender['id']}/report.csv", headers=officer(auth))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["bid_id"] for r in rows] == result["analysis"]["bid_ids"]
    assert [r["rank"] for r in rows] == ["1", "2", "3"]
    assert {r["seed"] for r in rows} == {"2"}
    for i, row in enumerate(rows):
        shares = [float(row[f"rank_{k + 1}"]) for k in range(3)]
        assert shares == pytest.approx(result["analysis"]["rank_acceptability"][i], abs=1e-6)
        assert row["total"] == result["ranking"][i]["total"]
    svg = client.get(f"/v1/tenders/{tender['id']}/report.svg", headers=officer(auth))
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.text)
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text or "" for t in root.iter(f"{ns}text")]
    assert any(tender["title"] in t for t in texts)
    assert any("jigang" in t for t in texts) and any("2000" in t and "2" in t for t in texts)
    bars = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert len({r.get("y") for r in bars}) == 3  # one bar per bid
    widths: dict[str, float] = {}  # each bar's segments add up to its whole width
    for r in bars:
        widths[r.get("y") or ""] = widths.get(r.get("y") or "", 0.0) + float(r.get("width") or 0)
    assert all(w == pytest.approx(560, abs=0.05) for w in widths.values())


def test_the_chart_speaks_the_reader_language(client, auth, clock) -> None:
    tender, _ = opened_tender(client, auth, clock)
    evaluate(client, auth, tender["id"])
    hant = client.get(f"/v1/tenders/{tender['id']}/report.svg", params={"lang": "zh-Hant"}, headers=officer(auth))
    en = client.get(f"/v1/tenders/{tender['id']}/report.svg", headers={**officer(auth), "Accept-Language": "en"})
    assert hant.headers["content-language"] == "zh-Hant" and en.headers["content-language"] == "en"
    assert "Rank acceptability" in en.text and "Rank acceptability" not in hant.text
    assert 'lang="zh-Hant"' in hant.text


def test_csv_cells_cannot_become_formulas(client, auth, clock) -> None:
    tender = create_tender(client, auth, clock)
    bid(client, supplier(auth, "=HYPERLINK(1)"), tender["id"])
    clock.pass_deadline(tender)
    evaluate(client, auth, tender["id"])
    text = client.get(f"/v1/tenders/{tender['id']}/report.csv", headers=officer(auth)).text
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["supplier"] == "'=HYPERLINK(1)"


def test_an_evaluation_too_large_for_one_request_is_refused(client, auth, clock, monkeypatch) -> None:
    tender, _ = opened_tender(client, auth, clock)
    monkeypatch.setattr(procurement.service, "MAX_CELLS", 3 * 1_000)
    assert evaluate(client, auth, tender["id"], samples=1_000).status_code == 200
    response = client.post(f"/v1/tenders/{tender['id']}/evaluation", json={"samples": 1_001},
                           headers={**officer(auth), "Accept-Language": "en"})
    assert response.status_code == 422 and response.json()["reason"] == "too_many_samples"
    assert "at most 1000 samples" in response.json()["detail"]
    assert [e["field"] for e in response.json()["errors"]] == ["samples"]

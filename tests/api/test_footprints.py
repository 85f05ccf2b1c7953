"""Inventories and footprints over HTTP: a worked steel example computed by hand, Monte Carlo,
factor pinning and explicit refresh, optimistic concurrency, and validation of inventory lines."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from tests.api.test_products import (
    STEEL_GTIN,
    STEEL_GTIN14,
    add_version,
    create_factor,
    create_product,
    field_errors,
    line,
    put_inventory,
    with_check_digit,
)

D = Decimal
BEST = {"technological": 1, "geographical": 1, "time": 1, "precision": 1}


def footprint(client, headers, gtin: str = STEEL_GTIN, **params: Any) -> dict[str, Any]:
    response = client.get(f"/v1/merchant/products/{gtin}/footprint", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def inventory(client, headers, gtin: str = STEEL_GTIN):
    response = client.get(f"/v1/merchant/products/{gtin}/inventory", headers=headers)
    assert response.status_code == 200, response.text
    return response


def ok(response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


# --- the worked example -----------------------------------------------------------------------------


def steel_factors(client, admin) -> None:
    create_factor(client, admin, "t-grid", category="electricity.grid", unit="kWh", value="0.5366",
                  uncertainty={"distribution": "lognormal", "gsd": 1.05},
                  data_quality={"technological": 2, "geographical": 1, "time": 2, "precision": 3})
    create_factor(client, admin, "t-pig-iron", category="iron.pig_iron", unit="kg", value="1.85",
                  data_quality={"technological": 1, "geographical": 2, "time": 3})  # precision unrated
    create_factor(client, admin, "t-gas", category="fuel.natural_gas", unit="GJ", value="56.1")  # unrated
    create_factor(client, admin, "t-freight", category="transport.road_freight", unit="t·km", value="0.062",
                  data_quality={"technological": 3, "geographical": 3, "time": 3, "precision": 3,
                                "completeness": 1})


# Per kilogram of hot-rolled coil (the declared unit), in each line's own unit.
STEEL_LINES = [
    line("raw_materials", "pig iron", "940", "g", factor_id="t-pig-iron"),
    line("production", "electricity, rolling mill", "450", "Wh", factor_id="t-grid", primary=True),
    line("production", "natural gas, reheating furnace", "2.5", "MJ", factor_id="t-gas", primary=True,
         data_quality=BEST),  # the line's own rating replaces the (unrated) factor's
    line("production", "process CO2, measured", "1", "kg", direct_kgco2e="0.12", primary=True,
         data_quality={"technological": 1, "geographical": 1, "time": 1, "precision": 2}),
    line("distribution", "road freight to the customer", "300", "kg·km", factor_id="t-freight"),
    line("end_of_life", "electricity, scrap shredding", "50", "Wh", factor_id="t-grid"),
    line("end_of_life", "recycling credit", "0.9", "kg", direct_kgco2e="-0.35"),
]

# amount = quantity x unit conversion (in the factor's unit); kgCO2e = amount x factor value.
AMOUNTS = [
    D("940") * D("0.001"),  # 940 g = 0.94 kg
    D("450") * D("0.001"),  # 450 Wh = 0.45 kWh
    D("2.5") * D("0.001"),  # 2.5 MJ = 0.0025 GJ
    D("1"),  # direct: 1 kg
    D("300") * D("0.001"),  # 300 kg·km = 0.3 t·km
    D("50") * D("0.001"),  # 50 Wh = 0.05 kWh
    D("0.9"),  # direct: 0.9 kg
]
VALUES = [D("1.85"), D("0.5366"), D("56.1"), D("0.12"), D("0.062"), D("0.5366"), D("-0.35")]
KG = [D("1.739"),  # 0.94 x 1.85
      D("0.24147"),  # 0.45 x 0.5366
      D("0.14025"),  # 0.0025 x 56.1
      D("0.12"),  # 1 x 0.12
      D("0.0186"),  # 0.3 x 0.062
      D("0.02683"),  # 0.05 x 0.5366
      D("-0.315")]  # 0.9 x -0.35
TOTAL = D("1.97115")  # 1.739 + 0.24147 + 0.14025 + 0.12 + 0.0186 + 0.02683 - 0.315
MAGNITUDE = D("2.60115")  # the same with +0.315: shares, hotspots, primary share and DQR use |kgCO2e|
BY_STAGE = {
    "raw_materials": D("1.739"),
    "production": D("0.50172"),  # 0.24147 + 0.14025 + 0.12
    "distribution": D("0.0186"),
    "use": D("0"),
    "end_of_life": D("-0.28817"),  # 0.02683 - 0.315
}
# Line DQR: the mean of technological, geographical, time and precision, unrated = 5.
LINE_DQR = [
    (1 + 2 + 3 + 5) / 4,  # pig iron factor: precision unrated -> 2.75
    (2 + 1 + 2 + 3) / 4,  # grid factor -> 2.0
    (1 + 1 + 1 + 1) / 4,  # gas line's own rating -> 1.0
    (1 + 1 + 1 + 2) / 4,  # direct line's own rating -> 1.25
    (3 + 3 + 3 + 3) / 4,  # freight: completeness is not a DQR criterion -> 3.0
    (2 + 1 + 2 + 3) / 4,  # grid factor -> 2.0
    (5 + 5 + 5 + 5) / 4,  # unrated direct line -> 5.0
]


def test_worked_steel_example(client, auth):
    # The hand arithmetic itself first.
    assert [a * v for a, v in zip(AMOUNTS, VALUES, strict=True)] == KG
    assert sum(KG) == TOTAL and sum(abs(k) for k in KG) == MAGNITUDE and sum(BY_STAGE.values()) == TOTAL
    admin, acme = auth("admin"), auth("merchant", org="acme")
    steel_factors(client, admin)
    create_product(client, acme)
    ok(put_inventory(client, acme, STEEL_LINES))
    fp = footprint(client, acme)

    assert fp["gtin"] == STEEL_GTIN14 and fp["declared_unit"] == "kilogram" and fp["inventory_revision"] == 1
    assert D(fp["kgco2e_per_unit"]) == TOTAL
    assert {stage: D(v) for stage, v in fp["by_stage"].items()} == BY_STAGE

    assert [x["position"] for x in fp["lines"]] == [1, 2, 3, 4, 5, 6, 7]
    assert [D(x["amount"]) for x in fp["lines"]] == AMOUNTS
    assert [D(x["kgco2e_per_unit"]) for x in fp["lines"]] == KG
    assert [x["share"] for x in fp["lines"]] == pytest.approx([float(abs(k) / MAGNITUDE) for k in KG])
    assert [x["dqr"] for x in fp["lines"]] == pytest.approx(LINE_DQR)
    assert [x["factor"] for x in fp["lines"]] == [
        {"id": "t-pig-iron", "version": 1}, {"id": "t-grid", "version": 1}, {"id": "t-gas", "version": 1}, None,
        {"id": "t-freight", "version": 1}, {"id": "t-grid", "version": 1}, None]
    assert [x["factor_unit"] for x in fp["lines"]] == ["kg", "kWh", "GJ", None, "t·km", "kWh", None]
    assert [x["primary"] for x in fp["lines"]] == [False, True, True, True, False, False, False]
    assert [x["stage"] for x in fp["lines"]] == [x["stage"] for x in STEEL_LINES]

    # Hotspots: by |kgCO2e|, the fewest lines reaching 80 % of 2.60115 = 2.08092:
    # pig iron 1.739 (66.9 %), + the credit 0.315 -> 2.054 (79.0 %), + rolling mill 0.24147 -> 2.29547.
    assert D("0.8") * MAGNITUDE == D("2.080920")
    assert D("1.739") + D("0.315") < D("2.08092") <= D("1.739") + D("0.315") + D("0.24147")
    assert [(h["position"], h["stage"], h["description"]) for h in fp["hotspots"]] == [
        (1, "raw_materials", "pig iron"), (7, "end_of_life", "recycling credit"),
        (2, "production", "electricity, rolling mill")]
    assert [D(h["kgco2e_per_unit"]) for h in fp["hotspots"]] == [D("1.739"), D("-0.315"), D("0.24147")]
    assert [h["share"] for h in fp["hotspots"]] == pytest.approx(
        [float(D("1.739") / MAGNITUDE), float(D("0.315") / MAGNITUDE), float(D("0.24147") / MAGNITUDE)])

    # Stages by |stage total|, shares of the sum of |stage totals| = 1.739 + 0.50172 + 0.0186 + 0.28817.
    stage_magnitude = D("2.54749")
    assert sum(abs(v) for v in BY_STAGE.values()) == stage_magnitude
    assert [(s["stage"], D(s["kgco2e_per_unit"])) for s in fp["stage_hotspots"]] == [
        ("raw_materials", D("1.739")), ("production", D("0.50172")), ("end_of_life", D("-0.28817")),
        ("distribution", D("0.0186"))]  # "use" is empty: left out
    assert [s["share"] for s in fp["stage_hotspots"]] == pytest.approx(
        [float(D(x) / stage_magnitude) for x in ("1.739", "0.50172", "0.28817", "0.0186")])

    # Primary lines 2, 3, 4: (0.24147 + 0.14025 + 0.12) / 2.60115 = 0.50172 / 2.60115 = 19.288 %.
    assert fp["primary_data_share"] == pytest.approx(float(D("0.50172") / MAGNITUDE * 100), abs=1e-4)
    assert 19.28 < fp["primary_data_share"] < 19.29

    # DQR weighted by |kgCO2e|: (1.739 x 2.75 + 0.24147 x 2 + 0.14025 x 1 + 0.12 x 1.25 + 0.0186 x 3
    #  + 0.02683 x 2 + 0.315 x 5) / 2.60115 = 7.2399 / 2.60115 = 2.7834 -> "good" (2 < DQR <= 3).
    weighted = (D("1.739") * D("2.75") + D("0.24147") * 2 + D("0.14025") * 1 + D("0.12") * D("1.25")
                + D("0.0186") * 3 + D("0.02683") * 2 + D("0.315") * 5)
    assert weighted == D("7.2399")
    assert fp["dqr"] == pytest.approx(float(weighted / MAGNITUDE), abs=1e-4)
    assert fp["dqr_level"] == "good"

    # Every version used, once, by id.
    assert fp["factor_versions"] == [{"id": "t-freight", "version": 1}, {"id": "t-gas", "version": 1},
                                     {"id": "t-grid", "version": 1}, {"id": "t-pig-iron", "version": 1}]
    assert fp["stale_factors"] == []
    assert fp["monte_carlo"]["samples"] == 10_000 and fp["monte_carlo"]["seed"] == 1


def test_inventory_round_trips_what_was_put(client, auth):
    admin, acme = auth("admin"), auth("merchant", org="acme")
    steel_factors(client, admin)
    create_product(client, acme)
    put = put_inventory(client, acme, STEEL_LINES, reference_period_start="2024-01-01",
                        reference_period_end="2024-12-31")
    got = inventory(client, acme)
    assert put.json() == got.json()
    body = got.json()
    assert (body["gtin"], body["revision"]) == (STEEL_GTIN14, 1)
    assert (body["reference_period_start"], body["reference_period_end"]) == ("2024-01-01", "2024-12-31")
    for i, (sent, stored) in enumerate(zip(STEEL_LINES, body["lines"], strict=True)):
        assert stored["position"] == i + 1
        for key in ("stage", "description", "unit", "primary"):
            assert stored[key] == sent.get(key, False)
        assert D(stored["quantity"]) == D(sent["quantity"])
        assert stored["factor_id"] == sent.get("factor_id")
        assert stored["factor_version"] == (1 if "factor_id" in sent else None)  # resolved and pinned
        assert stored["version_requested"] is False
        assert stored["direct_kgco2e"] == sent.get("direct_kgco2e")
        assert stored["data_quality"] == sent.get("data_quality")
    fp = footprint(client, acme)
    assert (fp["reference_period_start"], fp["reference_period_end"]) == ("2024-01-01", "2024-12-31")


# --- Monte Carlo ------------------------------------------------------------------------------------


def test_monte_carlo_is_reproducible_by_seed(client, auth):
    admin, acme = auth("admin"), auth("merchant", org="acme")
    steel_factors(client, admin)
    other_gtin = with_check_digit("690123456790")
    for gtin in (STEEL_GTIN, other_gtin):
        create_product(client, acme, gtin=gtin)
        ok(put_inventory(client, acme, STEEL_LINES, gtin=gtin))
    first = footprint(client, acme, samples=5000, seed=42)["monte_carlo"]
    assert first["samples"] == 5000 and first["seed"] == 42
    assert footprint(client, acme, samples=5000, seed=42)["monte_carlo"] == first
    # The same inventory of another product: the same numbers.
    assert footprint(client, acme, gtin=other_gtin, samples=5000, seed=42)["monte_carlo"] == first
    other_seed = footprint(client, acme, samples=5000, seed=43)["monte_carlo"]
    assert other_seed["seed"] == 43
    assert {k: other_seed[k] for k in ("mean", "p5", "p50", "p95")} != {k: first[k] for k in ("mean", "p5", "p50", "p95")}
    for mc in (first, other_seed):
        assert D(mc["p5"]) <= D(mc["p50"]) <= D(mc["p80"]) <= D(mc["p95"])
        assert D(mc["p5"]) < TOTAL < D(mc["p95"])  # only the grid factor is uncertain (gsd 1.05)
    # The default is 10 000 samples, seed 1.
    default = footprint(client, acme)["monte_carlo"]
    assert (default["samples"], default["seed"]) == (10_000, 1)


@pytest.mark.parametrize("params", [{"samples": 99}, {"samples": 100_001}, {"seed": -1}, {"seed": 2**63},
                                    {"samples": "many"}])
def test_monte_carlo_parameters_are_bounded(client, auth, params):
    acme = auth("merchant", org="acme")
    create_product(client, acme)
    response = client.get(f"/v1/merchant/products/{STEEL_GTIN}/footprint", params=params, headers=acme)
    assert response.status_code == 422, response.text


def test_single_lognormal_line_matches_the_lognormal_moments(client, auth):
    admin, acme = auth("admin"), auth("merchant", org="acme")
    gsd, value = 1.5, 0.8
    create_factor(client, admin, "t-mc", category="electricity.grid", unit="kWh", value=str(value),
                  uncertainty={"distribution": "lognormal", "gsd": gsd})
    create_product(client, acme)
    ok(put_inventory(client, acme, [line(quantity="1000", unit="Wh", factor_id="t-mc")]))  # 1 kWh
    n = 100_000
    fp = footprint(client, acme, samples=n, seed=7)
    assert D(fp["kgco2e_per_unit"]) == D("0.8")
    mc = fp["monte_carlo"]
    sigma = math.log(gsd)
    # Median of a lognormal = its scale; mean = median x exp(sigma² / 2) = 0.8 x 1.0857 = 0.8686.
    expected_mean = value * math.exp(sigma**2 / 2)
    sd = value * math.sqrt((math.exp(sigma**2) - 1) * math.exp(sigma**2))
    assert float(mc["mean"]) == pytest.approx(expected_mean, abs=4 * sd / math.sqrt(n))
    assert abs(float(mc["mean"]) - value) > 20 * sd / math.sqrt(n)  # the mean is not the median
    # Standard error of the sample median: sqrt(0.25 / n) / density at the median, value / (sigma sqrt(2 pi)).
    se_median = math.sqrt(0.25 / n) * value * sigma * math.sqrt(2 * math.pi)
    assert float(mc["p50"]) == pytest.approx(value, abs=4 * se_median)
    # The other percentiles in log space: ln(value) + z sigma, each within 5 standard errors of a
    # sample quantile, sigma sqrt(p (1 - p) / n) / phi(z).
    for name, p, zq in (("p5", 0.05, -1.6448536269514722), ("p80", 0.8, 0.8416212335729143),
                        ("p95", 0.95, 1.6448536269514722)):
        se = sigma * math.sqrt(p * (1 - p) / n) / (math.exp(-zq**2 / 2) / math.sqrt(2 * math.pi))
        assert math.log(float(mc[name]) / value) == pytest.approx(zq * sigma, abs=5 * se)


def test_direct_credit_with_lognormal_activity(client, auth):
    # A measured credit (negative kgCO2e per kg of scrap) whose activity is lognormal.
    acme = auth("merchant", org="acme")
    create_product(client, acme)
    ok(put_inventory(client, acme, [
        line("production", "process CO2", "1", "kg", direct_kgco2e="0.5"),
        line("end_of_life", "recycling credit", "0.9", "kg", direct_kgco2e="-0.35",
             activity_uncertainty={"distribution": "lognormal", "gsd": 1.2}),
    ]))
    n = 20_000
    fp = footprint(client, acme, samples=n, seed=3)
    assert D(fp["kgco2e_per_unit"]) == D("0.5") - D("0.315")
    mc = fp["monte_carlo"]
    # 0.5 - 0.315 x exp(sigma² / 2) in the mean; the credit's median stays -0.315.
    sigma = math.log(1.2)
    sd = 0.315 * math.sqrt((math.exp(sigma**2) - 1) * math.exp(sigma**2))
    assert float(mc["mean"]) == pytest.approx(0.5 - 0.315 * math.exp(sigma**2 / 2), abs=5 * sd / math.sqrt(n))
    se_median = math.sqrt(0.25 / n) * 0.315 * sigma * math.sqrt(2 * math.pi)
    assert float(mc["p50"]) == pytest.approx(0.5 - 0.315, abs=5 * se_median)
    assert D(mc["p5"]) < D(mc["p50"]) < D(mc["p95"]) < D("0.5")


# --- pinning and explicit refresh ---------------------------------------------------------------------


def test_new_version_changes_nothing_until_refresh(client, auth):
    admin, acme = auth("admin"), auth("merchant", org="acme")
    steel_factors(client, admin)
    create_product(client, acme)
    ok(put_inventory(client, acme, STEEL_LINES))
    before = footprint(client, acme)
    add_version(client, admin, "t-grid", kgco2e_per_unit="0.5306")

    after = footprint(client, acme)
    assert after["stale_factors"] == [{"id": "t-grid", "version": 1, "latest_version": 2}]
    assert {k: v for k, v in after.items() if k != "stale_factors"} == {k: v for k, v in before.items()
                                                                        if k != "stale_factors"}
    assert inventory(client, acme).json()["revision"] == 1

    refreshed = ok(client.post(f"/v1/merchant/products/{STEEL_GTIN}/footprint/refresh", headers=acme))
    assert refreshed["updated"] == [{"id": "t-grid", "version": 1, "latest_version": 2}]
    fp = refreshed["footprint"]
    # Both grid lines move: 0.45 + 0.05 = 0.5 kWh at 0.5306 instead of 0.5366: 0.003 less.
    assert D(fp["kgco2e_per_unit"]) == TOTAL - D("0.5") * (D("0.5366") - D("0.5306")) == D("1.96815")
    assert D(fp["lines"][1]["kgco2e_per_unit"]) == D("0.45") * D("0.5306")
    assert D(fp["lines"][5]["kgco2e_per_unit"]) == D("0.05") * D("0.5306")
    assert D(fp["by_stage"]["production"]) == BY_STAGE["production"] - D("0.45") * D("0.006")
    assert {"id": "t-grid", "version": 2} in fp["factor_versions"]
    assert {"id": "t-grid", "version": 1} not in fp["factor_versions"]
    assert fp["stale_factors"] == [] and fp["inventory_revision"] == 2
    assert footprint(client, acme) == fp  # what refresh answered is what GET says now
    stored = inventory(client, acme).json()
    assert stored["revision"] == 2
    assert [x["factor_version"] for x in stored["lines"] if x["factor_id"] == "t-grid"] == [2, 2]

    nothing = ok(client.post(f"/v1/merchant/products/{STEEL_GTIN}/footprint/refresh", headers=acme))
    assert nothing["updated"] == [] and nothing["footprint"]["inventory_revision"] == 2
    # A refresh is an inventory change: an editor still holding revision 1 is refused.
    late = client.put(f"/v1/merchant/products/{STEEL_GTIN}/inventory", json={"lines": STEEL_LINES},
                      headers={**acme, "If-Match": '"1"'})
    assert late.status_code == 409 and late.json()["reason"] == "inventory_revision_mismatch"


def test_a_requested_version_never_moves(client, auth):
    admin, acme = auth("admin"), auth("merchant", org="acme")
    create_factor(client, admin, "t-grid", category="electricity.grid", unit="kWh", value="0.5366")
    create_product(client, acme)
    ok(put_inventory(client, acme, [
        line(description="resolved", quantity="1", factor_id="t-grid"),
        line(description="chosen", quantity="2", factor_id="t-grid", factor_version=1),
    ]))
    add_version(client, admin, "t-grid", kgco2e_per_unit="0.6")
    fp = footprint(client, acme)
    assert fp["stale_factors"] == [{"id": "t-grid", "version": 1, "latest_version": 2}]
    refreshed = ok(client.post(f"/v1/merchant/products/{STEEL_GTIN}/footprint/refresh", headers=acme))
    assert [x["factor"] for x in refreshed["footprint"]["lines"]] == [{"id": "t-grid", "version": 2},
                                                                       {"id": "t-grid", "version": 1}]
    # 1 kWh x 0.6 + 2 kWh x 0.5366
    assert D(refreshed["footprint"]["kgco2e_per_unit"]) == D("0.6") + 2 * D("0.5366")
    assert refreshed["footprint"]["factor_versions"] == [{"id": "t-grid", "version": 1}, {"id": "t-grid", "version": 2}]
    assert refreshed["footprint"]["stale_factors"] == []  # the chosen line is not stale: it was chosen
    lines = inventory(client, acme).json()["lines"]
    assert [(x["factor_version"], x["version_requested"]) for x in lines] == [(2, False), (1, True)]
    add_version(client, admin, "t-grid", kgco2e_per_unit="0.7")
    again = ok(client.post(f"/v1/merchant/products/{STEEL_GTIN}/footprint/refresh", headers=acme))
    assert [x["factor"]["version"] for x in again["footprint"]["lines"]] == [3, 1]


def test_only_versions_valid_in_the_reference_period_are_offered(client, auth):
    admin, acme = auth("admin"), auth("merchant", org="acme")
    create_factor(client, admin, "t-grid", category="electricity.grid", unit="kWh", value="0.5366")
    create_product(client, acme)
    period = {"reference_period_start": "2024-01-01", "reference_period_end": "2024-12-31"}
    ok(put_inventory(client, acme, [line(factor_id="t-grid")], **period))
    add_version(client, admin, "t-grid", kgco2e_per_unit="0.5", valid_from="2025-01-01")  # after the period
    assert footprint(client, acme)["stale_factors"] == []
    ok(put_inventory(client, acme, [line(factor_id="t-grid")], **period))
    assert inventory(client, acme).json()["lines"][0]["factor_version"] == 1
    # Explicitly asked for, a published version may still be used.
    ok(put_inventory(client, acme, [line(factor_id="t-grid", factor_version=2)], **period))
    assert D(footprint(client, acme)["kgco2e_per_unit"]) == D("0.5")


def test_retired_and_draft_versions_cannot_be_requested(client, auth):
    admin, acme = auth("admin"), auth("merchant", org="acme")
    create_factor(client, admin, "t-grid", category="electricity.grid", unit="kWh", value="0.5366")
    add_version(client, admin, "t-grid", kgco2e_per_unit="0.55")  # v2 published
    add_version(client, admin, "t-grid", kgco2e_per_unit="0.56", publish=False)  # v3 a draft
    create_product(client, acme)
    ok(put_inventory(client, acme, [line(factor_id="t-grid", factor_version=2)]))
    assert client.post("/v1/factors/t-grid/versions/2/retire", headers=admin).status_code == 200
    # The pinned line keeps its (now retired) version: results never change behind the owner's back.
    fp = footprint(client, acme)
    assert fp["factor_versions"] == [{"id": "t-grid", "version": 2}]
    assert D(fp["kgco2e_per_unit"]) == D("0.55")
    for version in (2, 3, 9):
        response = put_inventory(client, acme, [line(factor_id="t-grid"),
                                                line(factor_id="t-grid", factor_version=version)])
        assert field_errors(response) == ["lines[1].factor_version"], version
    assert inventory(client, acme).json()["revision"] == 1
    # Unversioned, the newest published (not retired, not draft) version is pinned.
    ok(put_inventory(client, acme, [line(factor_id="t-grid")]))
    assert inventory(client, acme).json()["lines"][0]["factor_version"] == 1


# --- optimistic concurrency ---------------------------------------------------------------------------


def test_if_match_and_etag_are_the_revision(client, auth):
    acme = auth("merchant", org="acme")
    create_product(client, acme)
    direct = [line(unit="kg", direct_kgco2e="1")]
    first = client.put(f"/v1/merchant/products/{STEEL_GTIN}/inventory", json={"lines": direct},
                       headers={**acme, "If-Match": '"0"'})
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == '"1"' and first.json()["revision"] == 1
    assert inventory(client, acme).headers["etag"] == '"1"'

    stale = client.put(f"/v1/merchant/products/{STEEL_GTIN}/inventory",
                       json={"lines": [line(unit="kg", direct_kgco2e="2")]}, headers={**acme, "If-Match": '"0"'})
    assert stale.status_code == 409
    assert stale.json()["reason"] == "inventory_revision_mismatch"
    kept = inventory(client, acme).json()
    assert kept["revision"] == 1 and kept["lines"][0]["direct_kgco2e"] == "1"

    for tag, revision in (('W/"1"', 2), ("2", 3)):
        moved = client.put(f"/v1/merchant/products/{STEEL_GTIN}/inventory", json={"lines": direct},
                           headers={**acme, "If-Match": tag})
        assert moved.status_code == 200, moved.text
        assert moved.headers["etag"] == f'"{revision}"'
    # Without If-Match the PUT replaces whatever is there.
    assert put_inventory(client, acme, direct).headers["etag"] == '"4"'
    assert inventory(client, acme).headers["etag"] == '"4"'
    assert footprint(client, acme)["inventory_revision"] == 4
    assert client.get(f"/v1/merchant/products/{STEEL_GTIN}", headers=acme).json()["inventory_revision"] == 4

    bad = client.put(f"/v1/merchant/products/{STEEL_GTIN}/inventory", json={"lines": direct},
                     headers={**acme, "If-Match": "latest"})
    assert field_errors(bad) == ["If-Match"]
    # "*" (RFC 9110): whatever revision is current.
    anything = client.put(f"/v1/merchant/products/{STEEL_GTIN}/inventory", json={"lines": direct},
                          headers={**acme, "If-Match": "*"})
    assert anything.status_code == 200 and anything.headers["etag"] == '"5"'


def test_empty_product_has_revision_0_and_a_zero_footprint(client, auth):
    acme = auth("merchant", org="acme")
    create_product(client, acme)
    got = inventory(client, acme)
    assert got.headers["etag"] == '"0"' and got.json()["lines"] == [] and got.json()["revision"] == 0
    fp = footprint(client, acme)
    assert D(fp["kgco2e_per_unit"]) == 0 and fp["lines"] == [] and fp["hotspots"] == []
    assert fp["factor_versions"] == [] and fp["dqr_level"] == "poor"


# --- validation ---------------------------------------------------------------------------------------


def test_unit_that_does_not_convert_names_the_line(client, auth):
    admin, acme = auth("admin"), auth("merchant", org="acme")
    steel_factors(client, admin)
    create_product(client, acme)
    response = put_inventory(client, acme, [
        line(quantity="450", unit="Wh", factor_id="t-grid"),
        line(quantity="1", unit="kg", factor_id="t-grid"),  # kg of electricity
        line(quantity="10", unit="pkm", factor_id="t-freight"),  # passengers are not tonnes
        line(quantity="1", unit="piece", factor_id="t-pig-iron"),
        line(quantity="1", unit="degC", direct_kgco2e="1"),  # not an activity unit
        line(quantity="1", unit="kg/kg", factor_id="t-pig-iron"),
    ])
    assert field_errors(response) == ["lines[1].unit", "lines[2].unit", "lines[3].unit", "lines[4].unit",
                                      "lines[5].unit"]
    messages = [e["message"] for e in response.json()["errors"]]
    assert "kg" in messages[0] and "kWh" in messages[0]
    assert inventory(client, acme).json()["revision"] == 0


@pytest.mark.parametrize(("fields", "field"), [
    ({}, "lines[0].factor_id"),  # none of the three
    ({"factor_id": "t-grid", "direct_kgco2e": "1"}, "lines[0].factor_id"),
    ({"factor_id": "t-grid", "factor_category": "electricity.grid"}, "lines[0].factor_id"),
    ({"factor_category": "electricity.grid", "direct_kgco2e": "1"}, "lines[0].factor_id"),
    ({"direct_kgco2e": "1", "factor_version": 1}, "lines[0].factor_version"),
    ({"factor_id": "t-grid", "quantity": "-1"}, "lines[0].quantity"),
    ({"direct_kgco2e": "1", "quantity": "-0.001"}, "lines[0].quantity"),
    ({"direct_kgco2e": "1", "quantity": "1E+40"}, "lines[0].quantity"),
    ({"direct_kgco2e": "1", "quantity": "NaN"}, "lines[0].quantity"),
    ({"direct_kgco2e": "1", "quantity": "Infinity"}, "lines[0].quantity"),
    ({"direct_kgco2e": "NaN"}, "lines[0].direct_kgco2e"),
    ({"direct_kgco2e": "1E+40"}, "lines[0].direct_kgco2e"),
    ({"direct_kgco2e": "1", "description": "a\x00b"}, "lines[0].description"),
    ({"factor_id": "nope"}, "lines[0].factor_id"),
    ({"factor_id": "t-grid", "factor_version": 7}, "lines[0].factor_version"),
    ({"factor_category": "nothing.here"}, "lines[0].factor_category"),
    ({"factor_id": "t-grid", "activity_uncertainty": {"distribution": "lognormal", "gsd": 1.2}, "quantity": "0"},
     "lines[0].activity_uncertainty"),
    ({"factor_id": "t-grid", "activity_uncertainty": {"distribution": "normal", "sd": "-1"}},
     "lines[0].activity_uncertainty"),
    ({"factor_id": "t-grid", "activity_uncertainty": {"distribution": "triangular", "min": "2", "mode": "1",
                                                      "max": "3"}}, "lines[0].activity_uncertainty"),
    ({"factor_id": "t-grid", "activity_uncertainty": {"distribution": "triangular", "min": "2", "mode": "2",
                                                      "max": "3"}}, "lines[0].activity_uncertainty"),  # 1 outside
    ({"factor_id": "t-grid", "activity_uncertainty": {"distribution": "uniform", "min": "1.5", "max": "3"}},
     "lines[0].activity_uncertainty"),
    ({"factor_id": "t-grid", "activity_uncertainty": {"distribution": "normal", "sd": "NaN"}},
     "lines[0].activity_uncertainty"),
    ({"factor_id": "t-grid", "activity_uncertainty": {"distribution": "uniform", "min": "NaN", "max": "3"}},
     "lines[0].activity_uncertainty"),
    ({"factor_id": "t-grid", "data_quality": {"technological": 6}}, "lines[0].data_quality.technological"),
])
def test_invalid_lines_name_the_field(client, auth, fields, field):
    admin, acme = auth("admin"), auth("merchant", org="acme")
    create_factor(client, admin, "t-grid", category="electricity.grid", unit="kWh", value="0.5366")
    create_product(client, acme)
    assert field_errors(put_inventory(client, acme, [line(**fields)])) == [field]
    assert inventory(client, acme).json()["revision"] == 0


@pytest.mark.parametrize("uncertainty", [
    {"distribution": "lognormal", "gsd": 0.5},  # a geometric sd is at least 1
    {"distribution": "lognormal"},
    {"distribution": "beta", "a": 1},
    {"distribution": "normal", "sd": "1", "mean": "2"},
    {"distribution": "triangular", "min": "0", "max": "2"},
])
def test_malformed_uncertainty_is_422(client, auth, uncertainty):
    acme = auth("merchant", org="acme")
    create_product(client, acme)
    response = put_inventory(client, acme, [line(unit="kg", direct_kgco2e="1", activity_uncertainty=uncertainty)])
    assert response.status_code == 422, response.text
    assert inventory(client, acme).json()["revision"] == 0


@pytest.mark.parametrize("fields", [{"stage": "transport"}, {"quantity": "lots"}, {"unit": "kWh\n"},
                                    {"unit": ""}, {"description": ""}, {"colour": "red"}])
def test_malformed_lines_are_422(client, auth, fields):
    acme = auth("merchant", org="acme")
    create_product(client, acme)
    response = put_inventory(client, acme, [{**line(unit="kg", direct_kgco2e="1"), **fields}])
    assert response.status_code == 422, response.text


def test_every_bad_line_is_named_and_nothing_is_stored(client, auth):
    admin, acme = auth("admin"), auth("merchant", org="acme")
    create_factor(client, admin, "t-grid", category="electricity.grid", unit="kWh", value="0.5366")
    create_product(client, acme)
    response = put_inventory(client, acme, [
        line(factor_id="t-grid"), line(factor_id="t-nope"), line(factor_id="t-grid"),
        line(factor_id="t-grid", quantity="-2"), line(unit="kg", direct_kgco2e="1"),
    ])
    assert field_errors(response) == ["lines[1].factor_id", "lines[3].quantity"]
    assert "t-nope" in response.json()["errors"][0]["message"]
    assert inventory(client, acme).json()["lines"] == []


def test_reference_period_must_be_ordered(client, auth):
    acme = auth("merchant", org="acme")
    create_product(client, acme)
    response = put_inventory(client, acme, [], reference_period_start="2025-01-01",
                             reference_period_end="2024-12-31")
    assert field_errors(response) == ["reference_period_end"]


def test_at_most_1000_lines(client, auth):
    acme = auth("merchant", org="acme")
    create_product(client, acme)
    direct = line(unit="kg", quantity="0.001", direct_kgco2e="1")
    assert "lines" in field_errors(put_inventory(client, acme, [direct] * 1001))
    assert inventory(client, acme).json()["revision"] == 0
    ok(put_inventory(client, acme, [direct] * 1000))
    fp = footprint(client, acme, samples=100)
    assert len(fp["lines"]) == 1000
    assert D(fp["kgco2e_per_unit"]) == 1000 * D("0.001") * 1
    assert len(fp["hotspots"]) == 5  # 1000 equal lines: the cap


def test_category_lines_resolve_by_tier_and_pin_the_version(client, auth):
    admin = auth("admin")
    acme, beta = auth("merchant", org="acme"), auth("merchant", org="beta")
    grid = {"category": "electricity.grid", "unit": "kWh"}
    create_factor(client, admin, "t-grid-glo", value="0.7", tier="default", region="GLO", **grid)
    create_factor(client, admin, "t-grid-cn", value="0.5366", **grid)
    create_factor(client, admin, "t-grid-gd", value="0.4", tier="provincial", region="CN-GD", **grid)
    create_factor(client, admin, "t-grid-acme", value="0.2", tier="enterprise", region="CN-GD", owner_org="acme",
                  **grid)
    cases = [  # (owner, GTIN body, product region, the factor resolution must pick)
        (acme, "690123450001", "CN-GD", "t-grid-acme"),  # enterprise (own) > provincial > national > default
        (beta, "690123450002", "CN-GD", "t-grid-gd"),  # another org's enterprise factor is not a candidate
        (beta, "690123450003", "CN-SD", "t-grid-cn"),  # the Guangdong factor does not cover Shandong
        (beta, "690123450004", "US", "t-grid-glo"),
    ]
    for owner, body, region, expected in cases:
        gtin = with_check_digit(body)
        create_product(client, owner, gtin=gtin, region=region)
        ok(put_inventory(client, owner, [line(quantity="500", unit="Wh", factor_category="electricity.grid")],
                         gtin=gtin))
        stored = inventory(client, owner, gtin).json()["lines"][0]
        assert (stored["factor_id"], stored["factor_version"], stored["version_requested"],
                stored["factor_category"]) == (expected, 1, False, "electricity.grid"), region
        resolved = client.get("/v1/factors/resolve", params={"category": "electricity.grid", "unit": "kWh",
                                                              "region": region}, headers=owner)
        assert resolved.status_code == 200 and resolved.json()["factor"]["id"] == expected  # the same answer
    # A new version of the resolved factor is offered, not applied.
    add_version(client, admin, "t-grid-gd", kgco2e_per_unit="0.38")
    gd = with_check_digit("690123450002")
    fp = footprint(client, beta, gtin=gd)
    assert fp["stale_factors"] == [{"id": "t-grid-gd", "version": 1, "latest_version": 2}]
    assert D(fp["kgco2e_per_unit"]) == D("0.5") * D("0.4")
    refreshed = ok(client.post(f"/v1/merchant/products/{gd}/footprint/refresh", headers=beta))
    assert D(refreshed["footprint"]["kgco2e_per_unit"]) == D("0.5") * D("0.38")


def test_another_organisations_enterprise_factor_cannot_be_cited(client, auth):
    admin, beta = auth("admin"), auth("merchant", org="beta")
    create_factor(client, admin, "t-grid-acme", category="electricity.grid", unit="kWh", value="0.2",
                  tier="enterprise", region="CN", owner_org="acme")
    create_product(client, beta)
    for fields in ({"factor_id": "t-grid-acme"}, {"factor_id": "t-grid-acme", "factor_version": 1}):
        response = put_inventory(client, beta, [line(**fields)])
        assert len(field_errors(response)) == 1
        assert field_errors(response)[0].startswith("lines[0].factor")


def test_a_lines_own_ratings_override_the_factors_criterion_by_criterion(client, auth):
    admin, acme = auth("admin"), auth("merchant", org="acme")
    create_factor(client, admin, "rated-grid", category="electricity.grid", unit="kWh", value="0.5",
                  data_quality={"technological": 2, "geographical": 2, "time": 2, "precision": 4})
    create_product(client, acme)
    put_inventory(client, acme, [line(quantity="2", unit="kWh", factor_id="rated-grid", data_quality={"precision": 1}),
                                 line(quantity="2", unit="kWh", factor_id="rated-grid")])
    result = footprint(client, acme)
    # Line 1: its own precision (1) with the factor's other three (2, 2, 2); line 2: the factor's.
    assert [r["dqr"] for r in result["lines"]] == [(2 + 2 + 2 + 1) / 4, (2 + 2 + 2 + 4) / 4]
    assert result["dqr"] == pytest.approx(((2 + 2 + 2 + 1) / 4 + (2 + 2 + 2 + 4) / 4) / 2)


def test_lines_sharing_a_factor_each_name_their_own_refusal(client, auth):
    acme = auth("merchant", org="acme")
    create_product(client, acme)
    lines = [line(factor_id="no-such-factor"), line(direct_kgco2e="1", unit="kg"), line(factor_id="no-such-factor")]
    response = put_inventory(client, acme, lines)
    assert response.status_code == 422
    assert field_errors(response) == ["lines[0].factor_id", "lines[2].factor_id"]


def test_footprint_computations_have_a_per_caller_budget(settings, auth, monkeypatch):
    from types import SimpleNamespace

    from litestar.testing import TestClient

    from carbonpuhui import throttle
    from carbonpuhui.app import create_app
    from tests.conftest import make_settings

    # One instant for the whole test, 15 s into a window: no window boundary can reset the count.
    monkeypatch.setattr(throttle, "time", SimpleNamespace(time=lambda: 1_800_000_015.0))

    tight = make_settings(settings.data_dir, database_url=settings.effective_database_url,
                          compute_rate_limit_per_minute=2)
    with TestClient(create_app(tight), raise_server_exceptions=False) as client:
        acme, admin = auth("merchant", org="acme", sub="alice"), auth("admin", sub="root")
        create_product(client, acme)
        put_inventory(client, acme, [line(unit="kg", direct_kgco2e="1")])
        url = f"/v1/merchant/products/{STEEL_GTIN}/footprint"
        assert [client.get(url, headers=acme).status_code for _ in range(2)] == [200, 200]
        refused = client.get(url, headers=acme, params={"lang": "en"})
        assert refused.status_code == 429, refused.text
        assert refused.json()["reason"] == "compute_rate_limited"
        assert refused.headers["retry-after"] == "45"
        assert "footprint computations" in refused.json()["detail"]
        # The budget is the caller's: another caller still computes; reads without computing are free.
        assert client.get(url, headers=admin).status_code == 200
        assert client.get(f"/v1/merchant/products/{STEEL_GTIN}/inventory", headers=acme).status_code == 200
        # Refused before any work: an anonymous call is a 401, not a spent budget.
        assert client.get(url).status_code == 401

"""Benchmarks and graded tiers: boundaries, the uncertainty-adjusted value, percentile benchmarks
(checked against NumPy's percentile) and batch regrading when a benchmark changes."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from tests.api.label_flow import CATEGORY, Flow, gtin


@pytest.fixture
def flow(client, auth) -> Flow:
    return Flow(client, auth)


# --- tiers at their boundaries ------------------------------------------------------------------

# Thresholds 10 / 20 / 30 / 40: A <= 10 < B <= 20 < C <= 30 < D <= 40 < E, inclusive as written.
BOUNDARY_CASES = [("9.99", "A"), ("10", "A"), ("10.000001", "B"), ("20", "B"), ("20.5", "C"), ("30", "C"),
                  ("30.01", "D"), ("40", "D"), ("40.0000000000000000000001", "E"), ("1000", "E"), ("-3", "A")]


def test_grades_at_the_boundaries(flow: Flow) -> None:
    flow.benchmark(["10", "20", "30", "40"], uncertainty_penalty="0")
    for n, (value, grade) in enumerate(BOUNDARY_CASES, start=1):
        label = flow.certify(flow.product(n, value))
        assert (label["kgco2e_per_unit"], label["grade"]) == (value, grade), value
        assert label["conservative_basis"] == "declared_with_penalty"


def test_boundaries_are_configurable_per_category(flow: Flow) -> None:
    flow.benchmark(["10", "20", "30", "40"], uncertainty_penalty="0")
    flow.benchmark(["1", "2", "3", "4"], category="tyre.passenger", uncertainty_penalty="0")
    steel = flow.certify(flow.product(1, "3"))
    tyre = flow.certify(flow.product(2, "3", category="tyre.passenger"))
    assert (steel["grade"], tyre["grade"]) == ("A", "C")


def test_a_declared_value_without_uncertainty_is_surcharged(flow: Flow) -> None:
    flow.benchmark(["10", "20", "30", "40"], uncertainty_penalty="0.25")
    label = flow.certify(flow.product(1, "18"))  # 18 x 1.25 = 22.5: B without the penalty, C with it
    assert (Decimal(label["kgco2e_per_unit"]), label["grade"]) == (Decimal("22.5"), "C")
    assert label["conservative_basis"] == "declared_with_penalty"


def test_with_uncertainty_the_label_shows_the_monte_carlo_p80(flow: Flow) -> None:
    flow.benchmark(["0.5", "0.6", "0.7", "0.8"])
    code = flow.uncertain_product(1, "0.5", 1.3)
    application = flow.apply(code)
    queued = flow.ok(flow.client.get("/v1/certification/applications", headers=flow.verifier))["items"]
    footprint = next(item for item in queued if item["id"] == application["id"])["footprint"]
    label = flow.ok(flow.decide(application["id"]))["label"]
    # The very numbers the verifier reviewed (same samples, same seed) ...
    assert label["kgco2e_per_unit"] == footprint["monte_carlo"]["p80"]
    assert label["conservative_basis"] == "monte_carlo_p80"
    # ... and the analytic P80 of a lognormal: median x gsd ** z(0.8), within Monte Carlo error.
    analytic = 0.5 * 1.3 ** 0.8416212335729143
    assert float(label["kgco2e_per_unit"]) == pytest.approx(analytic, rel=0.01)
    assert label["grade"] == "C"  # 0.6 < 0.62 <= 0.7

def test_the_benchmark_unit_converts_the_product_unit(flow: Flow) -> None:
    # Thresholds per tonne; the product is declared per kilogram: 0.015 kg/kg = 15 kg/t.
    flow.benchmark(["10", "20", "30", "40"], uncertainty_penalty="0", declared_unit="tonne")
    label = flow.certify(flow.product(1, "0.015"))
    assert (label["kgco2e_per_unit"], label["declared_unit"], label["grade"]) == ("0.015", "kilogram", "B")


def test_an_incommensurable_unit_cannot_be_graded(flow: Flow) -> None:
    flow.benchmark(["10", "20", "30", "40"], declared_unit="kilogram")
    code = flow.product(1, "5", unit="piece")
    response = flow.decide(flow.apply(code)["id"])
    assert response.status_code == 409
    assert response.json()["reason"] == "declared_unit_mismatch"


# --- benchmarks ---------------------------------------------------------------------------------

def test_percentile_benchmark_matches_numpy(flow: Flow) -> None:
    flow.benchmark(["1000", "2000", "3000", "4000"], uncertainty_penalty="0")  # to issue the first labels
    values = ["12.5", "3", "7.25", "19", "4.4", "11", "8", "15.5", "6", "9.75", "13"]
    for n, value in enumerate(values, start=1):
        flow.certify(flow.product(n, value))
    out = flow.ok(flow.client.put(f"/v1/benchmarks/{CATEGORY}", json={"method": "percentile"}, headers=flow.admin))
    expected = np.percentile(np.array(values, dtype=float), [20, 40, 60, 80, 50])  # NumPy's linear method
    assert [float(t) for t in out["thresholds"]] == pytest.approx(expected[:4].tolist(), abs=1e-12)
    assert float(out["baseline"]) == pytest.approx(expected[4], abs=1e-12)
    assert out["sample_size"] == len(values) and out["method"] == "percentile"
    # Everyone was regraded against the new thresholds, in the same request.
    grades = {v: flow.public(gtin(n))["label"]["grade"] for n, v in enumerate(values, start=1)}
    for value, grade in grades.items():
        rank = sum(1 for t in expected[:4] if float(value) > t)
        assert grade == "ABCDE"[rank], value
    assert out["regraded"] == sum(1 for g in grades.values() if g != "A")


def test_percentiles_are_configurable(flow: Flow) -> None:
    flow.benchmark(["1000", "2000", "3000", "4000"], uncertainty_penalty="0")
    values = [str(v) for v in range(1, 13)]
    for n, value in enumerate(values, start=1):
        flow.certify(flow.product(n, value))
    out = flow.ok(flow.client.put(f"/v1/benchmarks/{CATEGORY}", json={"method": "percentile",
                                                                       "percentiles": [10, 25, 50, 90]},
                                  headers=flow.admin))
    expected = np.percentile(np.arange(1, 13, dtype=float), [10, 25, 50, 90])
    assert [float(t) for t in out["thresholds"]] == pytest.approx(expected.tolist())


def test_percentile_benchmark_needs_ten_verified_footprints(flow: Flow) -> None:
    flow.benchmark(["1000", "2000", "3000", "4000"], uncertainty_penalty="0")
    for n in range(1, 10):
        flow.certify(flow.product(n, str(n)))
    # A self-declared label is not a verified footprint: still nine.
    code = flow.product(50, "5")
    assert flow.client.post(f"/v1/merchant/products/{code}/self-declared-label", json={"valid_until": "2030-01-01"},
                            headers=flow.owner).status_code == 201
    response = flow.client.put(f"/v1/benchmarks/{CATEGORY}", json={"method": "percentile"}, headers=flow.admin)
    assert response.status_code == 422
    assert response.json()["reason"] == "too_few_verified_footprints"
    assert "9" in response.json()["detail"]
    # The fixed benchmark in place is untouched.
    assert flow.ok(flow.client.get(f"/v1/benchmarks/{CATEGORY}"))["thresholds"] == ["1000", "2000", "3000", "4000"]


def test_benchmark_change_regrades_every_label_and_shows_on_the_next_read(flow: Flow) -> None:
    flow.benchmark(["10", "20", "30", "40"], uncertainty_penalty="0")
    codes = [flow.product(n, v) for n, v in enumerate(["5", "15", "25", "35", "45"], start=1)]
    for code in codes:
        flow.certify(code)
    before = [flow.public(c)["label"]["grade"] for c in codes]  # also fills the cache
    assert before == ["A", "B", "C", "D", "E"]
    out = flow.benchmark(["20", "30", "40", "50"])
    assert out["regraded"] == 4 and out["revision"] == 2
    assert [flow.public(c)["label"]["grade"] for c in codes] == ["A", "A", "B", "C", "D"]


@pytest.mark.parametrize(("body", "field"), [
    ({"method": "fixed", "baseline": "5"}, "thresholds"),
    ({"method": "fixed", "thresholds": ["1", "2", "3"], "baseline": "5"}, "thresholds"),
    ({"method": "fixed", "thresholds": ["4", "3", "2", "1"], "baseline": "5"}, "thresholds"),
    ({"method": "fixed", "thresholds": ["1", "2", "3", "NaN"], "baseline": "5"}, "thresholds"),
    ({"method": "fixed", "thresholds": ["1", "2", "3", "4"]}, "baseline"),
    ({"method": "fixed", "thresholds": ["1", "2", "3", "4"], "baseline": "-1"}, "baseline"),
    ({"method": "percentile", "thresholds": ["1", "2", "3", "4"]}, "thresholds"),
    ({"method": "percentile", "percentiles": [40, 20, 60, 80]}, "percentiles"),
    ({"method": "percentile", "percentiles": [0, 20, 60, 80]}, "percentiles[0]"),
    ({"method": "fixed", "thresholds": ["1", "2", "3", "4"], "baseline": "2", "uncertainty_penalty": "-1"},
     "uncertainty_penalty"),
    ({"method": "median"}, "method"),
])
def test_invalid_benchmarks_are_422_naming_the_field(flow: Flow, body, field) -> None:
    flow.product(1, "5")  # the category's declared unit
    response = flow.client.put(f"/v1/benchmarks/{CATEGORY}", json=body, headers=flow.admin)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_benchmark_without_products_needs_a_declared_unit(flow: Flow) -> None:
    response = flow.client.put("/v1/benchmarks/textile.cotton", json={
        "method": "fixed", "thresholds": ["1", "2", "3", "4"], "baseline": "2"}, headers=flow.admin)
    assert response.status_code == 422 and response.json()["reason"] == "declared_unit_required"


def test_benchmarks_are_public_and_listed(flow: Flow) -> None:
    flow.benchmark(["10", "20", "30", "40"], "25", source="China Iron and Steel Association, 2025")
    one = flow.ok(flow.client.get(f"/v1/benchmarks/{CATEGORY}"))
    assert (one["baseline"], one["source"], one["declared_unit"]) == ("25", "China Iron and Steel Association, 2025",
                                                                      "kilogram")
    assert [b["category"] for b in flow.ok(flow.client.get("/v1/benchmarks"))["items"]] == [CATEGORY]
    assert flow.client.get("/v1/benchmarks/no.such").status_code == 404

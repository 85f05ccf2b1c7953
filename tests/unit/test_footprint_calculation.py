"""The arithmetic of a footprint (``footprints.calculation``), checked against written-out sums and a
reference implementation of the hotspot rule; Monte Carlo inputs against the distributions they mean."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import scoring
from carbonpuhui.footprints.calculation import (
    HOTSPOT_COVERAGE,
    HOTSPOT_MAX,
    ResolvedLine,
    dqr_level,
    line_dqr,
    monte_carlo_inputs,
    totals,
)
from carbonpuhui.footprints.models import STAGES

D = Decimal
NONE: dict[str, Any] = {"distribution": "none"}


def factor_line(position: int, quantity: str, value: str, *, stage: str = "production", conversion: str = "1",
                key: tuple[str, int] | None = None, primary: bool = False, uncertainty: dict[str, Any] | None = None,
                activity: dict[str, Any] | None = None, quality: dict[str, int] | None = None) -> ResolvedLine:
    return ResolvedLine(position=position, stage=stage, description=f"line {position}", primary=primary,
                        quantity=D(quantity), conversion=D(conversion), factor_key=key or (f"f{position}", 1),
                        factor_unit="kg", factor_value=D(value), factor_uncertainty=uncertainty or NONE,
                        activity_uncertainty=activity, data_quality=quality)


def direct_line(position: int, quantity: str, kgco2e: str, *, stage: str = "production", primary: bool = True,
                activity: dict[str, Any] | None = None, quality: dict[str, int] | None = None) -> ResolvedLine:
    return ResolvedLine(position=position, stage=stage, description=f"direct {position}", primary=primary,
                        quantity=D(quantity), conversion=D(1), factor_key=None, factor_unit=None,
                        factor_value=D(kgco2e), factor_uncertainty=NONE, activity_uncertainty=activity,
                        data_quality=quality)


# --- data quality ----------------------------------------------------------------------------------


def test_line_dqr_is_the_mean_of_four_pef_criteria_unrated_counting_5():
    assert line_dqr(factor_line(1, "1", "1")) == 5.0
    assert line_dqr(factor_line(1, "1", "1", quality={"technological": 1})) == (1 + 5 + 5 + 5) / 4
    full = {"technological": 1, "geographical": 2, "time": 3, "precision": 4}
    assert line_dqr(factor_line(1, "1", "1", quality=full)) == (1 + 2 + 3 + 4) / 4
    # Completeness is not one of PEF 2021's four DQR criteria (TeR, GR, TiR, P).
    assert line_dqr(factor_line(1, "1", "1", quality={**full, "completeness": 5})) == 2.5
    assert line_dqr(factor_line(1, "1", "1", quality={**full, "completeness": 1})) == 2.5


@pytest.mark.parametrize(("dqr", "level"), [
    (1.0, "excellent"), (1.5, "excellent"), (1.5001, "very_good"), (2.0, "very_good"), (2.0001, "good"),
    (3.0, "good"), (3.0001, "fair"), (4.0, "fair"), (4.0001, "poor"), (5.0, "poor"),
])
def test_dqr_levels_follow_pef_table(dqr, level):
    assert dqr_level(dqr) == level


# --- totals ----------------------------------------------------------------------------------------


def test_totals_are_exact_decimal_sums_per_stage():
    lines = [
        factor_line(1, "0.1", "1", stage="raw_materials"),  # 0.1
        factor_line(2, "0.2", "1", stage="raw_materials"),  # 0.2: 0.1 + 0.2 = 0.3 exactly (in floats it is not)
        factor_line(3, "450", "0.5366", stage="production", conversion="0.001"),  # 0.45 kWh * 0.5366 = 0.24147
        direct_line(4, "0.9", "-0.35", stage="end_of_life"),  # a credit: -0.315
    ]
    out = totals(lines)
    assert 0.1 + 0.2 != 0.3
    assert out.by_stage == {"raw_materials": D("0.3"), "production": D("0.24147"), "distribution": D(0),
                            "use": D(0), "end_of_life": D("-0.315")}
    assert list(out.by_stage) == list(STAGES)
    assert out.total == D("0.3") + D("0.24147") - D("0.315") == D("0.22647")
    magnitude = D("0.1") + D("0.2") + D("0.24147") + D("0.315")  # 0.85647
    assert out.shares == pytest.approx([float(D(x) / magnitude) for x in ("0.1", "0.2", "0.24147", "0.315")])
    assert sum(out.shares) == pytest.approx(1.0)
    # Stages by magnitude: end of life's credit 0.315 > raw materials 0.3 > production 0.24147.
    assert out.stage_order == ["end_of_life", "raw_materials", "production"]


def test_primary_share_and_dqr_are_weighted_by_absolute_contribution():
    lines = [
        factor_line(1, "3", "1", primary=True, quality={"technological": 1, "geographical": 1, "time": 1,
                                                        "precision": 1}),  # 3, dqr 1
        factor_line(2, "1", "1"),  # 1, dqr 5
        direct_line(3, "1", "-1", primary=True, quality={"technological": 2, "geographical": 2, "time": 2,
                                                         "precision": 2}),  # -1, dqr 2
    ]
    out = totals(lines)
    # |3| + |1| + |-1| = 5; primary: 3 + 1 = 4 of 5 = 80 %.
    assert out.primary_share == pytest.approx(80.0)
    assert out.dqr == pytest.approx((3 * 1 + 1 * 5 + 1 * 2) / 5)
    assert out.total == D(3)


def test_empty_and_all_zero_inventories():
    out = totals([])
    assert out.total == 0 and out.hotspots == [] and out.stage_order == [] and out.primary_share == 0.0
    assert out.dqr == 5.0
    zero = totals([factor_line(1, "0", "2"), factor_line(2, "0", "3")])
    assert zero.total == 0 and zero.shares == [0.0, 0.0]
    assert zero.hotspots == [0]  # "always at least the largest one", even when nothing is large


def reference_hotspots(contributions: list[Decimal]) -> list[int]:
    """The rule written independently: the k largest lines by magnitude (ties by position), with k
    the smallest number that covers 80 % of the total magnitude, at least 1 and at most 5."""
    order = sorted(range(len(contributions)), key=lambda i: (-abs(contributions[i]), i))
    magnitude = sum(abs(c) for c in contributions)
    for k in range(1, len(order) + 1):
        if k == HOTSPOT_MAX or sum(abs(contributions[i]) for i in order[:k]) >= HOTSPOT_COVERAGE * magnitude:
            return order[:k]
    return order


@given(st.lists(st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False), min_size=1, max_size=12))
def test_hotspots_follow_the_80_percent_rule_capped_at_five(values):
    lines = [direct_line(i + 1, "1", str(v)) for i, v in enumerate(values)]
    out = totals(lines)
    if not any(values):
        assert out.hotspots == [0]
        return
    assert out.hotspots == reference_hotspots(list(values))
    assert 1 <= len(out.hotspots) <= 5


def test_hotspot_examples():
    dominant = totals([direct_line(1, "1", "1"), direct_line(2, "1", "9")])
    assert dominant.hotspots == [1]  # 9 of 10 is 90 %: one line suffices
    ten_equal = totals([direct_line(i, "1", "1") for i in range(1, 11)])
    assert ten_equal.hotspots == [0, 1, 2, 3, 4]  # 80 % would need 8; five is the cap; ties by position
    # 50 + 30 = 80 of 100 exactly: the boundary counts as covered.
    boundary = totals([direct_line(1, "1", "20"), direct_line(2, "1", "50"), direct_line(3, "1", "-30")])
    assert boundary.hotspots == [1, 2]


# --- Monte Carlo inputs -----------------------------------------------------------------------------


def test_a_factor_cited_twice_is_one_distribution():
    grid = {"distribution": "lognormal", "gsd": 1.05}
    lines = [
        factor_line(1, "450", "0.5366", conversion="0.001", key=("grid", 1), uncertainty=grid),
        factor_line(2, "2", "1.85", key=("iron", 1)),
        factor_line(3, "50", "0.5366", conversion="0.001", key=("grid", 1), uncertainty=grid),
        factor_line(4, "1", "0.5366", key=("grid", 2), uncertainty=grid),  # another version: another factor
    ]
    factors, mc = monte_carlo_inputs(lines)
    assert factors == [scoring.Distribution("lognormal", 0.5366, gsd=1.05), scoring.Distribution("none", 1.85),
                       scoring.Distribution("lognormal", 0.5366, gsd=1.05)]
    assert [m.factor for m in mc] == [0, 1, 0, 2]
    # The amounts are in the factor's unit: 450 Wh = 0.45 kWh.
    assert [m.amount for m in mc] == [scoring.Distribution("none", 0.45), scoring.Distribution("none", 2.0),
                                      scoring.Distribution("none", 0.05), scoring.Distribution("none", 1.0)]


def test_activity_uncertainty_is_converted_with_the_amount():
    lines = [
        factor_line(1, "450", "1", conversion="0.001", activity={"distribution": "normal", "sd": "20"}),
        factor_line(2, "450", "1", conversion="0.001",
                    activity={"distribution": "triangular", "min": "400", "mode": "450", "max": "600"}),
        factor_line(3, "450", "1", conversion="0.001", activity={"distribution": "uniform", "min": "400", "max": "500"}),
        factor_line(4, "450", "1", conversion="0.001", activity={"distribution": "lognormal", "gsd": 1.2}),
    ]
    _, mc = monte_carlo_inputs(lines)
    assert mc[0].amount == scoring.Distribution("normal", 0.45, sd=0.02)
    assert mc[1].amount == scoring.Distribution("triangular", 0.45, low=0.4, mode=0.45, high=0.6)
    assert mc[2].amount == scoring.Distribution("uniform", 0.45, low=0.4, mode=0.4, high=0.5)
    assert mc[3].amount == scoring.Distribution("lognormal", 0.45, gsd=1.2)  # scaling keeps the gsd


def _mean_of(lines: list[ResolvedLine], samples: int = 200_000, seed: int = 3) -> tuple[float, np.ndarray]:
    factors, mc = monte_carlo_inputs(lines)
    draws = scoring.sample_footprint(factors, mc, samples=samples, seed=seed)
    return float(draws.mean()), draws


def test_direct_credit_with_uncertain_activity_keeps_its_sign():
    # A recycling credit: 0.9 kg of scrap (triangular 0.8 .. 0.9 .. 1.0) at -0.35 kgCO2e per kg.
    credit = direct_line(1, "0.9", "-0.35", activity={"distribution": "triangular", "min": "0.8", "mode": "0.9",
                                                      "max": "1.0"})
    mean, draws = _mean_of([credit])
    assert draws.max() <= -0.35 * 0.8 + 1e-12 and draws.min() >= -0.35 * 1.0 - 1e-12
    # Triangular mean (a + b + c) / 3 = 0.9 kg, times -0.35: -0.315; sd of the mean from the variance
    # (a² + b² + c² - ab - ac - bc) / 18 of the triangle.
    sd = 0.35 * math.sqrt((0.8**2 + 0.9**2 + 1.0**2 - 0.8 * 0.9 - 0.8 * 1.0 - 0.9 * 1.0) / 18)
    assert mean == pytest.approx(-0.315, abs=5 * sd / math.sqrt(draws.size))


@pytest.mark.parametrize("kgco2e", ["-0.35", "0", "0.35"])
def test_direct_line_with_lognormal_activity_of_any_sign(kgco2e):
    # The activity (0.9 kg, gsd 1.2) is lognormal; the measured value per kg may be a credit or zero.
    line_ = direct_line(1, "0.9", kgco2e, activity={"distribution": "lognormal", "gsd": 1.2})
    mean, draws = _mean_of([line_])
    sigma = math.log(1.2)
    expected = 0.9 * float(kgco2e) * math.exp(sigma**2 / 2)
    sd = abs(0.9 * float(kgco2e)) * math.sqrt((math.exp(sigma**2) - 1) * math.exp(sigma**2))
    assert mean == pytest.approx(expected, abs=5 * sd / math.sqrt(draws.size) + 1e-15)
    assert float(np.median(draws)) == pytest.approx(0.9 * float(kgco2e), rel=0.01, abs=1e-15)


def test_exact_inventory_samples_are_the_deterministic_total():
    lines = [factor_line(1, "450", "0.5366", conversion="0.001"), direct_line(2, "1", "0.12"),
             direct_line(3, "0.9", "-0.35", stage="end_of_life")]
    _, draws = _mean_of(lines, samples=100)
    assert np.allclose(draws, float(totals(lines).total), rtol=1e-12)


def test_shared_factor_draw_moves_lines_together():
    """Two lines citing one lognormal factor: the total is lognormal with the same gsd (perfect
    correlation). Two independent factors of the same value and gsd give a narrower total."""
    gsd = 1.5
    lognormal = {"distribution": "lognormal", "gsd": gsd}
    shared = [factor_line(1, "1", "2", key=("grid", 1), uncertainty=lognormal),
              factor_line(2, "1", "2", key=("grid", 1), uncertainty=lognormal, stage="end_of_life")]
    separate = [factor_line(1, "1", "2", key=("a", 1), uncertainty=lognormal),
                factor_line(2, "1", "2", key=("b", 1), uncertainty=lognormal, stage="end_of_life")]
    n = 100_000
    _, together = _mean_of(shared, samples=n)
    _, apart = _mean_of(separate, samples=n)
    # log(total) ~ Normal(log 4, ln gsd): its 95th percentile is z = 1.6449 sd above the median.
    sigma = math.log(gsd)
    z95 = 1.6448536269514722
    observed = math.log(np.percentile(together, 95) / np.percentile(together, 50))
    # The standard error of a sample quantile: sqrt(p (1 - p) / n) / density, here in log space.
    se = sigma * math.sqrt(0.95 * 0.05 / n) / (math.exp(-z95**2 / 2) / math.sqrt(2 * math.pi))
    assert observed == pytest.approx(z95 * sigma, abs=5 * 2 * se)
    assert np.percentile(together, 50) == pytest.approx(4.0, rel=0.01)
    narrower = math.log(np.percentile(apart, 95) / np.percentile(apart, 50))
    assert narrower < z95 * sigma - 10 * se

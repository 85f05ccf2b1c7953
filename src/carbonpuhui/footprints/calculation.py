"""The arithmetic of a footprint: exact totals per line and stage, hotspots, primary share, data
quality, and the Monte Carlo inputs for ``scoring``. Pure: no database, no web."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from typing import Any

import scoring
from carbonpuhui.footprints.models import STAGES

# Inputs have up to 30 digits either side of the point: products and sums of them stay exact here
# (the default context keeps 28 significant digits).
EXACT = Context(prec=200)
HOTSPOT_COVERAGE = Decimal("0.8")  # hotspots: the largest lines that together make 80% (Pareto) ...
HOTSPOT_MAX = 5  # ... but never more than five, and always at least the largest one
UNRATED_DQR = 5.0  # a criterion nobody rated counts as the worst (PEF's scale is 1 best .. 5 worst)
_PEF_CRITERIA = ("technological", "geographical", "time", "precision")


@dataclass(frozen=True, kw_only=True)
class ResolvedLine:
    position: int
    stage: str
    description: str
    primary: bool
    quantity: Decimal  # in the line's unit, per declared unit of the product
    conversion: Decimal  # line unit -> factor unit (1 for direct lines)
    factor_key: tuple[str, int] | None  # (id, version) of the factor, None for direct emissions
    factor_unit: str | None
    factor_value: Decimal  # kgCO2e per factor unit, or the line's direct kgCO2e per line unit
    factor_uncertainty: dict[str, Any]
    activity_uncertainty: dict[str, Any] | None
    data_quality: dict[str, int] | None  # the line's own rating, else the factor's

    @property
    def amount(self) -> Decimal:
        with localcontext(EXACT):
            return self.quantity * self.conversion

    @property
    def kgco2e(self) -> Decimal:
        with localcontext(EXACT):
            return self.amount * self.factor_value


def line_dqr(line: ResolvedLine) -> float:
    ratings = line.data_quality or {}
    return sum(float(ratings.get(name) or UNRATED_DQR) for name in _PEF_CRITERIA) / len(_PEF_CRITERIA)


def criteria_dqr(lines: Sequence[ResolvedLine]) -> dict[str, float]:
    """Each PEF criterion's contribution-weighted rating (1 best .. 5 worst; unrated counts 5)."""
    weights = [abs(line.kgco2e) for line in lines]
    total = sum(weights, Decimal(0))
    out: dict[str, float] = {}
    for name in (*_PEF_CRITERIA, "completeness"):
        if not total:
            out[name] = UNRATED_DQR
            continue
        out[name] = sum(float(w / total) * float((line.data_quality or {}).get(name) or UNRATED_DQR)
                        for line, w in zip(lines, weights, strict=True))
    return out


def dqr_level(dqr: float) -> str:
    # PEF Guide (2021), table 23: overall data-quality levels by DQR.
    if dqr <= 1.5:
        return "excellent"
    if dqr <= 2.0:
        return "very_good"
    if dqr <= 3.0:
        return "good"
    if dqr <= 4.0:
        return "fair"
    return "poor"


@dataclass(frozen=True, kw_only=True)
class Totals:
    total: Decimal
    by_stage: dict[str, Decimal]
    shares: list[float]  # per line, by absolute contribution
    hotspots: list[int]  # indexes into the lines, largest first
    stage_order: list[str]  # stages by absolute contribution, largest first (empty stages left out)
    primary_share: float  # percent
    dqr: float


def totals(lines: Sequence[ResolvedLine]) -> Totals:
    with localcontext(EXACT):
        return _totals(lines)


def _totals(lines: Sequence[ResolvedLine]) -> Totals:
    contributions = [line.kgco2e for line in lines]
    total = sum(contributions, Decimal(0))
    by_stage = {stage: Decimal(0) for stage in STAGES}
    for line, value in zip(lines, contributions, strict=True):
        by_stage[line.stage] += value
    # Shares by absolute value: a credit line (negative) is as much a hotspot as a burden.
    magnitude = sum((abs(v) for v in contributions), Decimal(0))
    shares = [float(abs(v) / magnitude) if magnitude else 0.0 for v in contributions]
    order = sorted(range(len(lines)), key=lambda i: (-abs(contributions[i]), lines[i].position))
    hotspots: list[int] = []
    covered = Decimal(0)
    for i in order:
        if len(hotspots) >= HOTSPOT_MAX or (hotspots and covered >= HOTSPOT_COVERAGE * magnitude):
            break
        if not contributions[i] and hotspots:
            break
        hotspots.append(i)
        covered += abs(contributions[i])
    stage_magnitude = {s: abs(v) for s, v in by_stage.items() if v}
    stage_order = sorted(stage_magnitude, key=lambda s: (-stage_magnitude[s], STAGES.index(s)))
    primary = sum((abs(v) for line, v in zip(lines, contributions, strict=True) if line.primary), Decimal(0))
    primary_share = float(primary / magnitude * 100) if magnitude else 0.0
    if magnitude:
        dqr = sum(float(abs(v) / magnitude) * line_dqr(line) for line, v in zip(lines, contributions, strict=True))
    else:
        dqr = UNRATED_DQR
    return Totals(total=total, by_stage=by_stage, shares=shares, hotspots=hotspots, stage_order=stage_order,
                  primary_share=round(primary_share, 4), dqr=round(dqr, 4))


def _distribution(value: Decimal, uncertainty: dict[str, Any] | None, scale: Decimal = Decimal(1)) -> scoring.Distribution:
    """A value and its stored uncertainty (parameters in the value's own unit), scaled by ``scale``."""
    kind = (uncertainty or {}).get("distribution", "none")
    central = float(value * scale)
    u = uncertainty or {}
    if kind == "lognormal":
        return scoring.Distribution("lognormal", central, gsd=float(u["gsd"]))
    if kind == "normal":
        return scoring.Distribution("normal", central, sd=float(Decimal(str(u["sd"])) * abs(scale)))
    if kind in ("triangular", "uniform"):
        low, high = Decimal(str(u["min"])) * scale, Decimal(str(u["max"])) * scale
        mode = Decimal(str(u.get("mode", u["min"]))) * scale
        if scale < 0:
            low, high = high, low
        return scoring.Distribution(kind, central, low=float(low), mode=float(mode), high=float(high))
    return scoring.Distribution("none", central)


def monte_carlo_inputs(lines: Sequence[ResolvedLine]) -> tuple[list[scoring.Distribution], list[scoring.Line]]:
    """Factors shared by several lines are one draw per sample (perfectly correlated); a direct
    line's measured value is its own, uncorrelated with anything."""
    factors: list[scoring.Distribution] = []
    index: dict[tuple[str, int], int] = {}
    out: list[scoring.Line] = []
    for line in lines:
        amount = _distribution(line.quantity, line.activity_uncertainty, line.conversion)
        if line.factor_key is None:
            # Direct emissions: the measured value, as an exact factor of its own (it takes no draw),
            # times the (possibly uncertain) activity. Folding the value into the activity instead
            # would give a credit or a zero a lognormal with a median <= 0, which does not exist.
            factors.append(scoring.Distribution("none", float(line.factor_value)))
            out.append(scoring.Line(len(factors) - 1, amount))
            continue
        if line.factor_key not in index:
            index[line.factor_key] = len(factors)
            factors.append(_distribution(line.factor_value, line.factor_uncertainty))
        out.append(scoring.Line(index[line.factor_key], amount))
    return factors, out

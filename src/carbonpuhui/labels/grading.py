"""Exact grading and percentile benchmarks over decimal footprints.

The batch kernel works in float64; a value whose float equals one of its thresholds' floats may sit
on the boundary or a hair either side of it, so those few are decided again in exact decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext

import numpy as np

import scoring
from carbonpuhui.footprints.calculation import EXACT
from carbonpuhui.labels.schemas import GRADES, Grade


def grade_of(value: Decimal, thresholds: Sequence[Decimal]) -> Grade:
    """The rule as written: A <= t[0], B <= t[1], ..., E above the last."""
    return GRADES[sum(1 for bound in thresholds if value > bound)]


def grade_batch(values: Sequence[Decimal], categories: Sequence[int],
                thresholds: Sequence[Sequence[Decimal]]) -> list[Grade]:
    """Grades of many labels at once (one threshold row per category index)."""
    if not values:
        return []
    v = np.array([float(x) for x in values])
    c = np.array(categories, dtype=np.int64)
    t = np.array([[float(x) for x in row] for row in thresholds])
    grades = scoring.grade_values(v, c, t)
    ties = np.flatnonzero((v[:, None] == t[c]).any(axis=1))
    out = [GRADES[g] for g in grades.tolist()]
    for i in ties.tolist():
        out[i] = grade_of(values[i], thresholds[categories[i]])
    return out


def percentile(sorted_values: Sequence[Decimal], p: int) -> Decimal:
    """The ``p``-th percentile by linear interpolation between order statistics (Hyndman & Fan
    type 7, NumPy's default), in exact decimals."""
    n = len(sorted_values)
    with localcontext(EXACT):
        h = Decimal(n - 1) * Decimal(p) / Decimal(100)
        lo = int(h)
        if lo >= n - 1:
            return sorted_values[-1]
        frac = h - lo
        return (sorted_values[lo] + frac * (sorted_values[lo + 1] - sorted_values[lo])).normalize()

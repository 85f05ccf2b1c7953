"""Grades from per-category thresholds: the batch regrade behind a benchmark change.

``grade_values(values, categories, thresholds)`` gives each value the number of its category's
thresholds it lies strictly above: 0 (A) at or below the first, 1 (B) up to the second, ..., k
above the last. Boundaries are inclusive, as the scheme writes them (A <= P20, B <= P40, ...).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from scoring.config import NUMBA_OPTIONS, parallel_section, register_warmer

MAX_THRESHOLDS = 126  # grades fit an int8


@njit(parallel=True, **NUMBA_OPTIONS)
def _kernel_grades(values, categories, thresholds, out):
    k = thresholds.shape[1]
    for i in prange(values.shape[0]):  # each label writes only its own slot
        row = categories[i]
        v = values[i]
        g = 0
        for j in range(k):  # thresholds ascend, so counting is the same as finding the tier
            if v > thresholds[row, j]:
                g += 1
        out[i] = g


def grade_values(values: object, categories: object, thresholds: object) -> np.ndarray:
    """Grades (int8, 0 = best) of ``values`` (1-D, finite) against ``thresholds[categories[i]]``.

    ``categories``: 1-D integers, one row index of ``thresholds`` per value. ``thresholds``: 2-D
    (categories × k), finite and non-decreasing along each row, at most 126 columns.
    """
    v = np.asarray(values)
    c = np.asarray(categories)
    t = np.asarray(thresholds)
    if v.ndim != 1 or c.ndim != 1:
        raise ValueError("values and categories must be 1-D arrays")
    if v.shape != c.shape:
        raise ValueError(f"values ({v.shape[0]}) and categories ({c.shape[0]}) differ in length")
    if t.ndim != 2 or t.shape[0] == 0 or not 1 <= t.shape[1] <= MAX_THRESHOLDS:
        raise ValueError(f"thresholds must be 2-D with at least one row and 1 to {MAX_THRESHOLDS} columns")
    for name, a in (("values", v), ("thresholds", t)):
        if a.dtype.kind not in "iuf":
            raise ValueError(f"{name} must be real numbers, not {a.dtype}")
    if c.dtype.kind not in "iu":
        raise ValueError(f"categories must be integers, not {c.dtype}")
    v = np.ascontiguousarray(v, dtype=np.float64)
    t = np.ascontiguousarray(t, dtype=np.float64)
    if not np.isfinite(v).all():
        raise ValueError("values must be finite (no NaN or infinity)")
    if not np.isfinite(t).all():
        raise ValueError("thresholds must be finite (no NaN or infinity)")
    if (np.diff(t, axis=1) < 0).any():
        raise ValueError("each category's thresholds must be non-decreasing")
    if c.size and (c.min() < 0 or c.max() >= t.shape[0]):
        raise ValueError(f"categories must index the {t.shape[0]} threshold rows")
    out = np.empty(v.shape[0], dtype=np.int8)
    if v.size:
        with parallel_section():
            _kernel_grades(v, np.ascontiguousarray(c, dtype=np.int64), t, out)
    return out


@register_warmer
def _warm() -> None:
    grade_values(np.array([1.0, 5.0]), np.array([0, 0]), np.array([[1.0, 2.0, 3.0, 4.0]]))

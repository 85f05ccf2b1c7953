"""``scoring.grade_values`` against a plain-Python oracle of the scheme's rule (A <= P20, B <= P40, ...)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import grade_values


def oracle(values, categories, thresholds) -> list[int]:
    """The rule as written: the first tier whose (inclusive) upper bound holds the value, else the last."""
    out = []
    for v, c in zip(values, categories, strict=True):
        row = thresholds[c]
        out.append(next((j for j, bound in enumerate(row) if v <= bound), len(row)))
    return out


def test_boundaries_are_inclusive() -> None:
    t = np.array([[10.0, 20.0, 30.0, 40.0]])
    values = np.array([9.99, 10.0, 10.01, 20.0, 20.5, 30.0, 40.0, 40.0001, 1e9, -5.0])
    got = grade_values(values, np.zeros(len(values), dtype=np.int64), t)
    assert got.tolist() == [0, 0, 1, 1, 2, 2, 3, 4, 4, 0]
    assert got.dtype == np.int8


def test_each_value_uses_its_own_category() -> None:
    t = np.array([[1.0, 2.0, 3.0, 4.0], [100.0, 200.0, 300.0, 400.0]])
    got = grade_values(np.array([150.0, 150.0, 2.5]), np.array([0, 1, 0]), t)
    assert got.tolist() == [4, 1, 2]


def test_equal_thresholds_skip_a_tier() -> None:
    # B's and C's bounds coincide: nothing can be C, a value at the bound is B.
    got = grade_values(np.array([2.0, 2.5]), np.array([0, 0]), np.array([[1.0, 2.0, 2.0, 3.0]]))
    assert got.tolist() == [1, 3]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_matches_the_oracle_and_numpy_searchsorted(data) -> None:
    m = data.draw(st.integers(1, 5))
    k = data.draw(st.integers(1, 6))
    rows = [sorted(data.draw(st.lists(st.integers(-50, 50), min_size=k, max_size=k))) for _ in range(m)]
    n = data.draw(st.integers(0, 60))
    values = data.draw(st.lists(st.integers(-60, 60), min_size=n, max_size=n))  # integers: many exact ties
    cats = data.draw(st.lists(st.integers(0, m - 1), min_size=n, max_size=n))
    t = np.array(rows, dtype=np.float64)
    got = grade_values(np.array(values, dtype=np.float64), np.array(cats, dtype=np.int64), t)
    assert got.tolist() == oracle(values, cats, rows)
    searchsorted = [int(np.searchsorted(t[c], v, side="left")) for v, c in zip(values, cats, strict=True)]
    assert got.tolist() == searchsorted


def test_accepts_any_real_dtype_and_layout() -> None:
    t = np.asfortranarray(np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.int32))
    values = np.arange(10, dtype=np.float32)[::-1]
    cats = np.array([0, 1] * 5, dtype=np.uint8)
    assert grade_values(values, cats, t).tolist() == oracle(values.tolist(), cats.tolist(), t.tolist())


@pytest.mark.parametrize(("values", "cats", "thresholds", "message"), [
    (np.ones((2, 2)), np.zeros(2, int), np.ones((1, 4)), "1-D"),
    (np.ones(3), np.zeros(2, int), np.ones((1, 4)), "differ in length"),
    (np.ones(2), np.zeros(2, int), np.ones(4), "2-D"),
    (np.ones(2), np.zeros(2, int), np.ones((0, 4)), "2-D"),
    (np.array([1.0, np.nan]), np.zeros(2, int), np.ones((1, 4)), "finite"),
    (np.array([1.0, np.inf]), np.zeros(2, int), np.ones((1, 4)), "finite"),
    (np.ones(2), np.zeros(2, int), np.array([[1.0, np.nan, 3, 4]]), "finite"),
    (np.ones(2), np.zeros(2, int), np.array([[4.0, 3, 2, 1]]), "non-decreasing"),
    (np.ones(2), np.array([0, 1]), np.ones((1, 4)), "index"),
    (np.ones(2), np.array([0, -1]), np.ones((1, 4)), "index"),
    (np.ones(2), np.array([0.0, 0.0]), np.ones((1, 4)), "integers"),
    (np.array(["a", "b"]), np.zeros(2, int), np.ones((1, 4)), "real numbers"),
])
def test_refuses_bad_input(values, cats, thresholds, message) -> None:
    with pytest.raises(ValueError, match=message):
        grade_values(values, cats, thresholds)


def test_empty_input_gives_no_grades() -> None:
    assert grade_values(np.array([]), np.array([], dtype=np.int64), np.ones((1, 4))).shape == (0,)

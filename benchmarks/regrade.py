"""Batch regrading: ``scoring.grade_values`` (Numba) against NumPy ``searchsorted`` in the same run.

    python benchmarks/regrade.py [--labels 1000000] [--repeat 7]

Two cases: one category (what a benchmark change regrades) and 50 categories at once (a full
regrade, e.g. after a methodology change), where NumPy needs one ``searchsorted`` per category.
Both sides get the same float64 arrays; the grades are checked equal before timing.
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best

import scoring


def numpy_grades(values: np.ndarray, categories: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    out = np.empty(values.shape[0], dtype=np.int8)
    if thresholds.shape[0] == 1:
        out[:] = np.searchsorted(thresholds[0], values, side="left")
        return out
    for c in range(thresholds.shape[0]):
        idx = np.flatnonzero(categories == c)
        out[idx] = np.searchsorted(thresholds[c], values[idx], side="left")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(4)
    scoring.warm_up()
    print(f"{args.labels:,} labels; best of {args.repeat}")
    print(f"{'categories':>10} {'numpy searchsorted':>19} {'grade_values':>13} {'speed-up':>9}")
    for n_categories in (1, 50):
        thresholds = np.sort(rng.lognormal(1.0, 0.5, size=(n_categories, 4)), axis=1)
        categories = rng.integers(0, n_categories, size=args.labels)
        values = rng.lognormal(1.0, 0.6, size=args.labels)
        assert np.array_equal(scoring.grade_values(values, categories, thresholds),
                              numpy_grades(values, categories, thresholds))
        base = best(lambda: numpy_grades(values, categories, thresholds), repeat=args.repeat)  # noqa: B023
        fast = best(lambda: scoring.grade_values(values, categories, thresholds), repeat=args.repeat)  # noqa: B023
        print(f"{n_categories:>10} {base * 1e3:>16.1f} ms {fast * 1e3:>10.1f} ms {base / fast:>8.1f}x")


if __name__ == "__main__":
    main()

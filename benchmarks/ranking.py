"""Procurement rank statistics: ``scoring.rank_acceptability``, ``scoring.pairwise_winning`` and
``scoring.first_rank_probability`` (Numba) against straightforward vectorised NumPy implementations,
timed in the same run on the same utilities (i.i.d. standard normal: no ties, no structure).

    python benchmarks/ranking.py [--repeat 5] [--quick] [--crossover]

Times are the best of ``--repeat`` runs after a warm-up call (which also checks that both sides give
the same numbers). The public functions are timed as a caller sees them, input validation included;
the baselines validate nothing. ``--crossover`` times the two per-sample rankers of the kernels
(counting vs radix sort) single-threaded, to re-tune ``scoring.ranking._COUNT_MAX`` on a new machine.
The NumPy pairwise baseline at 1,000 bids takes several seconds per run.
"""

from __future__ import annotations

import argparse

import numba
import numpy as np
from _timing import best

import scoring
from scoring import ranking

SIZES = [(100_000, 50), (20_000, 200), (10_000, 1000)]  # (samples, bids)
QUICK_SIZES = [(2_000, 20), (300, 500)]
CHUNK_CELLS = 1 << 22  # bools per chunk of the broadcasting baseline


def numpy_ranks(u: np.ndarray) -> np.ndarray:
    """0-based ranks: a stable descending argsort, then each tie group takes its first position."""
    s, n = u.shape
    order = np.argsort(-u, axis=1, kind="stable")
    ordered = np.take_along_axis(u, order, axis=1)
    starts = np.ones((s, n), bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0), axis=1)
    ranks = np.empty((s, n), np.int64)
    np.put_along_axis(ranks, order, first, axis=1)
    return ranks


def numpy_acceptability(u: np.ndarray) -> np.ndarray:
    s, n = u.shape
    cells = np.arange(n) * n + numpy_ranks(u)
    return np.bincount(cells.ravel(), minlength=n * n).reshape(n, n) / s


def numpy_pairwise(u: np.ndarray) -> np.ndarray:
    s, n = u.shape
    counts = np.zeros((n, n), np.int64)
    rows = max(1, CHUNK_CELLS // (n * n))
    for start in range(0, s, rows):
        b = u[start:start + rows]
        counts += (b[:, :, None] > b[:, None, :]).sum(axis=0)
    return counts / s


def numpy_first(u: np.ndarray) -> np.ndarray:
    return (u == u.max(axis=1, keepdims=True)).sum(axis=0) / u.shape[0]


CASES = [("rank_acceptability", scoring.rank_acceptability, numpy_acceptability),
         ("pairwise_winning", scoring.pairwise_winning, numpy_pairwise),
         ("first_rank_probability", scoring.first_rank_probability, numpy_first)]


@numba.njit(**scoring.NUMBA_OPTIONS)
def _rank_rows(u, radix):
    rank = np.empty(u.shape[1], np.int64)
    scratch = ranking._scratch(u.shape[1])
    for s in range(u.shape[0]):
        if radix:
            ranking._rank_by_radix(u[s], rank, scratch)
        else:
            ranking._rank_by_counting(u[s], rank)


def crossover(repeat: int, rng: np.random.Generator) -> None:
    print(f"ranking one sample, one thread, microseconds (the kernels count up to {ranking._COUNT_MAX} bids)")
    print(f"{'bids':>6} {'data':>8} {'counting':>9} {'radix':>9}")
    for n in (64, 128, 256, 384, 512, 768, 1024):
        s = 1_000_000 // n
        for name, u in (("normal", rng.standard_normal((s, n))), ("uniform", rng.uniform(0.2, 0.9, (s, n))),
                        ("ties", rng.integers(0, 3, (s, n)).astype(np.float64))):
            _rank_rows(u[:2], True)
            t_count = best(_rank_rows, u, False, repeat=repeat) / s * 1e6
            t_radix = best(_rank_rows, u, True, repeat=repeat) / s * 1e6
            print(f"{n:>6} {name:>8} {t_count:>9.2f} {t_radix:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--crossover", action="store_true", help="counting vs radix ranking per sample")
    args = parser.parse_args()
    scoring.warm_up()
    rng = np.random.default_rng(0)
    if args.crossover:
        crossover(args.repeat, rng)
        return
    print(f"numba threads: {numba.get_num_threads()}, threading layer: {numba.threading_layer()}")
    print(f"{'samples':>8} {'bids':>5} {'function':>23} {'numba s':>9} {'numpy s':>9} {'speed-up':>9}")
    for samples, bids in QUICK_SIZES if args.quick else SIZES:
        u = rng.standard_normal((samples, bids))
        for name, fast, baseline in CASES:
            assert np.array_equal(fast(u), baseline(u)), f"{name}: the baseline must compute the same numbers"
            t_numba = best(fast, u, repeat=args.repeat)
            t_numpy = best(baseline, u, repeat=args.repeat)
            print(f"{samples:>8} {bids:>5} {name:>23} {t_numba:>9.4f} {t_numpy:>9.4f} "
                  f"{t_numpy / t_numba:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()

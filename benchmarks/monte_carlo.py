"""Monte Carlo footprint sampling: ``scoring.sample_footprint`` (Numba) against a straightforward
vectorised NumPy implementation of the same transform, timed in the same run on the same draws.

    python benchmarks/monte_carlo.py [--repeat 5]

Both sides draw their variates from the same seeded streams (that cost is common to both and
reported separately); the ratio shows what the kernel adds beyond NumPy on the arithmetic.
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best

import scoring
from scoring import uncertainty
from scoring.uncertainty import Distribution, Line

SIZES = [(20, 10_000), (200, 10_000), (200, 100_000), (1000, 100_000)]  # (lines, samples)


def inventory(n_lines: int, rng: np.random.Generator) -> tuple[list[Distribution], list[Line]]:
    """A realistic mix: a quarter of the lines share a few factors; all four distribution kinds."""
    n_factors = max(1, n_lines * 3 // 4)
    factors = []
    for i in range(n_factors):
        v = float(rng.uniform(0.1, 5))
        factors.append([Distribution("lognormal", v, gsd=1.2), Distribution("normal", v, sd=v * 0.1),
                        Distribution("triangular", v, low=v * 0.8, mode=v, high=v * 1.3),
                        Distribution("uniform", v, low=v * 0.9, high=v * 1.1)][i % 4])
    lines = [Line(int(rng.integers(n_factors)), Distribution("normal", float(rng.uniform(1, 10)), sd=0.5))
             for _ in range(n_lines)]
    return factors, lines


def numpy_totals(factors: list[Distribution], lines: list[Line], samples: int, seed: int) -> np.ndarray:
    """The same plan and draws as the kernel, transformed with whole-array NumPy operations."""
    plan = uncertainty._plan(factors, lines)
    normal_ss, uniform_ss = np.random.SeedSequence(seed).spawn(2)
    normal = np.random.Generator(np.random.PCG64(normal_ss))
    uniform = np.random.Generator(np.random.PCG64(uniform_ss))
    rows = max(1, uncertainty._CHUNK_VALUES // max(plan.n_normal, plan.n_uniform, 1))
    out = np.empty(samples)
    for start in range(0, samples, rows):
        m = min(rows, samples - start)
        z = normal.standard_normal((m, plan.n_normal))
        u = uniform.random((m, plan.n_uniform))
        value = np.ones((m, len(lines)))
        for s in range(2):
            kind, p, col = plan.kind[:, s], plan.par[:, s], plan.col[:, s]
            part = np.broadcast_to(p[:, 0], (m, len(lines))).copy()  # exact values
            for k in (1, 2, 3, 4):  # lognormal, normal, triangular, uniform
                idx = np.nonzero((kind == k) & (col >= 0))[0]
                if idx.size == 0:
                    continue
                pk = p[idx]
                if k == 1:
                    part[:, idx] = pk[:, 0] * np.exp(pk[:, 1] * z[:, col[idx]])
                elif k == 2:
                    part[:, idx] = pk[:, 0] + pk[:, 1] * z[:, col[idx]]
                elif k == 3:
                    low, mode, high = pk[:, 0], pk[:, 1], pk[:, 2]
                    uu = u[:, col[idx]]
                    left = uu * (high - low) < mode - low
                    part[:, idx] = np.where(left, low + np.sqrt(uu * (high - low) * (mode - low)),
                                            high - np.sqrt((1 - uu) * (high - low) * (high - mode)))
                else:
                    part[:, idx] = pk[:, 0] + u[:, col[idx]] * pk[:, 1]
            value *= part
        out[start:start + m] = value.sum(axis=1)
    return out


def draws_only(factors: list[Distribution], lines: list[Line], samples: int, seed: int) -> None:
    """The variates alone, drawn in the same chunks: the part both sides share."""
    plan = uncertainty._plan(factors, lines)
    normal_ss, uniform_ss = np.random.SeedSequence(seed).spawn(2)
    normal = np.random.Generator(np.random.PCG64(normal_ss))
    uniform = np.random.Generator(np.random.PCG64(uniform_ss))
    rows = max(1, uncertainty._CHUNK_VALUES // max(plan.n_normal, plan.n_uniform, 1))
    for start in range(0, samples, rows):
        m = min(rows, samples - start)
        normal.standard_normal((m, plan.n_normal))
        uniform.random((m, plan.n_uniform))


def _numba(factors: list[Distribution], lines: list[Line], samples: int, seed: int) -> np.ndarray:
    return scoring.sample_footprint(factors, lines, samples=samples, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    scoring.warm_up()
    rng = np.random.default_rng(0)
    print(f"{'lines':>6} {'samples':>8} {'numba s':>9} {'numpy s':>9} {'draws s':>9} {'speed-up':>9} "
          f"{'beyond draws':>13}")
    for n_lines, samples in SIZES:
        factors, lines = inventory(n_lines, rng)
        a = scoring.sample_footprint(factors, lines, samples=samples, seed=7)
        b = numpy_totals(factors, lines, samples, 7)
        assert np.allclose(a, b, rtol=1e-12, atol=0), "the baseline must compute the same numbers"
        case = (factors, lines, samples, 7)
        t_numba = best(_numba, *case, repeat=args.repeat)
        t_numpy = best(numpy_totals, *case, repeat=args.repeat)
        t_draws = best(draws_only, *case, repeat=args.repeat)
        beyond = (t_numpy - t_draws) / max(t_numba - t_draws, 1e-9)
        print(f"{n_lines:>6} {samples:>8} {t_numba:>9.4f} {t_numpy:>9.4f} {t_draws:>9.4f} {t_numpy / t_numba:>8.2f}x "
              f"{beyond:>12.2f}x")


if __name__ == "__main__":
    main()

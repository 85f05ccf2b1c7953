"""Monte Carlo propagation of factor and activity uncertainty through a footprint.

A footprint is ``sum(factor * amount)`` over its lines. Each sample draws every uncertain factor
once and every uncertain amount once; lines that cite the same factor share its draw (perfectly
correlated, as in LCA practice), because the same database value is wrong in the same way for all.

Randomness: standard normals and uniforms come from two independent PCG64 streams spawned from
``SeedSequence(seed)`` and are drawn row by row (one row per sample). A chunk of rows therefore
continues the same stream as the previous chunk, so the result does not depend on the chunk size,
and the kernel writes each sample's own slot, so it does not depend on the number of threads.
Columns are given out walking the lines in order: the line's factor on its first citation, then
the line's amount; normal and lognormal take the next normal column, triangular and uniform the
next uniform one; exact ("none") values and uncited factors take none.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from scoring.config import NUMBA_OPTIONS, parallel_section, register_warmer

__all__ = ["KINDS", "Distribution", "Line", "Summary", "sample_footprint", "sample_lines", "summarise"]

KINDS = ("none", "lognormal", "normal", "triangular", "uniform")
_NONE, _LOGNORMAL, _NORMAL, _TRIANGULAR, _UNIFORM = range(len(KINDS))
MAX_SAMPLES = 1_000_000
# Variates per chunk and per stream (8 MiB of float64): bounds memory for 1000 lines x 100k samples.
_CHUNK_VALUES = 1 << 20
# sample_lines returns the whole (samples, lines) matrix; refuse more than 400 MB of it.
MAX_LINE_CELLS = 50_000_000


class Distribution(NamedTuple):
    """An uncertain quantity. Fields a kind does not use are ignored (but must be finite)."""

    kind: str
    value: float  # lognormal: the median (geometric mean); normal: the mean; none: the value
    gsd: float = 1.0
    sd: float = 0.0
    low: float = 0.0
    mode: float = 0.0
    high: float = 0.0


class Line(NamedTuple):
    factor: int  # index into ``factors``; -1 for a direct emission (the factor is exactly 1)
    amount: Distribution  # activity in the factor's unit, or kgCO2e for a direct line


class Summary(NamedTuple):
    mean: float
    p5: float
    p50: float
    p80: float
    p95: float
    samples: int
    seed: int


# --- validation: Distribution -> (kind code, 4 parameters the kernel uses) ------------------------


def _params(d: object, what: str) -> tuple[int, tuple[float, float, float, float]]:
    if not isinstance(d, Distribution):
        raise ValueError(f"{what}: expected a Distribution, got {type(d).__name__}")
    if d.kind not in KINDS:
        raise ValueError(f"{what}: unknown distribution kind {d.kind!r} (expected one of {', '.join(KINDS)})")
    try:
        nums = [float(x) for x in d[1:]]
    except (TypeError, ValueError):
        raise ValueError(f"{what}: every number must be finite, got {d!r}") from None
    if not all(math.isfinite(x) for x in nums):
        raise ValueError(f"{what}: every number must be finite, got {d!r}")
    value, gsd, sd, low, mode, high = nums
    kind = KINDS.index(d.kind)
    if kind == _LOGNORMAL:
        if gsd < 1.0:
            raise ValueError(f"{what}: lognormal gsd must be >= 1, got {gsd}")
        if value <= 0.0:
            raise ValueError(f"{what}: lognormal value (the median) must be > 0, got {value}")
        return kind, (value, math.log(gsd), 0.0, 0.0)
    if kind == _NORMAL:
        if sd < 0.0:
            raise ValueError(f"{what}: normal sd must be >= 0, got {sd}")
        return kind, (value, sd, 0.0, 0.0)
    if kind == _TRIANGULAR:
        if not low <= mode <= high:
            raise ValueError(f"{what}: triangular needs low <= mode <= high, got {low}, {mode}, {high}")
        return kind, (low, mode, high, 0.0)
    if kind == _UNIFORM:
        if not low <= high:
            raise ValueError(f"{what}: uniform needs low <= high, got {low}, {high}")
        return kind, (low, high - low, 0.0, 0.0)
    return kind, (value, 0.0, 0.0, 0.0)


def _count(x: object, name: str, low: int, high: int) -> int:
    if isinstance(x, bool):
        raise ValueError(f"{name} must be an integer, got {x!r}")
    try:
        n = operator.index(x)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {x!r}") from None
    if not low <= n <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {n}")
    return n


class _Plan(NamedTuple):
    kind: np.ndarray  # (n_lines, 2) int64: slot 0 the factor, slot 1 the amount
    par: np.ndarray  # (n_lines, 2, 4) float64
    col: np.ndarray  # (n_lines, 2) int64: column in the normal or uniform matrix, -1 if exact
    n_normal: int
    n_uniform: int


def _plan(factors: Sequence[Distribution], lines: Sequence[Line]) -> _Plan:
    fparams = [_params(f, f"factors[{i}]") for i, f in enumerate(factors)]
    n = len(lines)
    kind = np.zeros((n, 2), np.int64)
    par = np.zeros((n, 2, 4), np.float64)
    col = np.full((n, 2), -1, np.int64)
    columns = {_NORMAL: 0, _UNIFORM: 0}  # next free column of each stream's matrix
    factor_col: dict[int, int] = {}

    def take(k: int) -> int:
        stream = _NORMAL if k in (_NORMAL, _LOGNORMAL) else _UNIFORM
        c = columns[stream]
        columns[stream] = c + 1
        return c

    for j, line in enumerate(lines):
        if not isinstance(line, Line):
            raise ValueError(f"lines[{j}]: expected a Line, got {type(line).__name__}")
        fi = _count(line.factor, f"lines[{j}].factor", -1, len(factors) - 1)
        fk, fp = (_NONE, (1.0, 0.0, 0.0, 0.0)) if fi < 0 else fparams[fi]
        ak, ap = _params(line.amount, f"lines[{j}].amount")
        kind[j] = fk, ak
        par[j] = fp, ap
        if fk != _NONE:  # one column per cited factor: the shared draw
            if fi not in factor_col:
                factor_col[fi] = take(fk)
            col[j, 0] = factor_col[fi]
        if ak != _NONE:
            col[j, 1] = take(ak)
    return _Plan(kind, par, col, columns[_NORMAL], columns[_UNIFORM])


# --- kernels ---------------------------------------------------------------------------------------


@njit(**NUMBA_OPTIONS)
def _draw(kind, p, z, u):
    """One value of a distribution from its standard normal ``z`` or uniform ``u`` in [0, 1)."""
    if kind == 1:  # lognormal: median * gsd**z
        return p[0] * math.exp(p[1] * z)
    if kind == 2:
        return p[0] + p[1] * z
    if kind == 3:  # triangular, inverse CDF; the comparison avoids dividing by a zero width
        low, mode, high = p[0], p[1], p[2]
        if u * (high - low) < mode - low:
            return low + math.sqrt(u * (high - low) * (mode - low))
        return high - math.sqrt((1.0 - u) * (high - low) * (high - mode))
    if kind == 4:
        return p[0] + u * p[1]
    return p[0]


@njit(**NUMBA_OPTIONS)
def _line_value(j, i, kind, par, col, z, u):
    out = 1.0
    for s in range(2):  # the factor, then the amount
        c = col[j, s]
        k = kind[j, s]
        if c < 0:
            out *= par[j, s, 0]
        elif k == 1 or k == 2:
            out *= _draw(k, par[j, s], z[i, c], 0.0)
        else:
            out *= _draw(k, par[j, s], 0.0, u[i, c])
    return out


@njit(parallel=True, **NUMBA_OPTIONS)
def _kernel_totals(kind, par, col, z, u, out):
    for i in prange(out.shape[0]):  # each sample writes only its own slot: no race, no reduction
        total = 0.0
        for j in range(kind.shape[0]):
            total += _line_value(j, i, kind, par, col, z, u)
        out[i] = total


@njit(parallel=True, **NUMBA_OPTIONS)
def _kernel_lines(kind, par, col, z, u, out):
    for i in prange(out.shape[0]):
        for j in range(kind.shape[0]):
            out[i, j] = _line_value(j, i, kind, par, col, z, u)


# --- public functions ------------------------------------------------------------------------------


def _run(factors, lines, samples, seed, per_line: bool) -> np.ndarray:
    samples = _count(samples, "samples", 1, MAX_SAMPLES)
    seed = _count(seed, "seed", 0, 2**63 - 1)
    plan = _plan(factors, lines)
    n = len(plan.kind)
    if per_line and samples * n > MAX_LINE_CELLS:
        raise ValueError(f"samples x lines must be <= {MAX_LINE_CELLS}, got {samples} x {n}")
    out = np.zeros((samples, n) if per_line else samples, np.float64)
    if n == 0:
        return out
    normal_ss, uniform_ss = np.random.SeedSequence(seed).spawn(2)
    normal = np.random.Generator(np.random.PCG64(normal_ss))
    uniform = np.random.Generator(np.random.PCG64(uniform_ss))
    rows = max(1, _CHUNK_VALUES // max(plan.n_normal, plan.n_uniform, 1))
    kernel = _kernel_lines if per_line else _kernel_totals
    for start in range(0, samples, rows):
        m = min(rows, samples - start)
        z = normal.standard_normal((m, plan.n_normal))
        u = uniform.random((m, plan.n_uniform))
        with parallel_section():
            kernel(plan.kind, plan.par, plan.col, z, u, out[start:start + m])
    return out


def sample_footprint(factors: Sequence[Distribution], lines: Sequence[Line], *, samples: int, seed: int) -> np.ndarray:
    """``samples`` Monte Carlo totals (float64): sum over lines of factor draw x amount draw."""
    return _run(factors, lines, samples, seed, per_line=False)


def sample_lines(factors: Sequence[Distribution], lines: Sequence[Line], *, samples: int, seed: int) -> np.ndarray:
    """The same draws as ``sample_footprint``, per line: a (samples, lines) matrix of contributions."""
    return _run(factors, lines, samples, seed, per_line=True)


def summarise(totals: np.ndarray, *, seed: int) -> Summary:
    """Mean and percentiles (NumPy's default linear interpolation) of Monte Carlo totals."""
    arr = np.asarray(totals, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"totals must be a non-empty 1-D array, got shape {arr.shape}")
    p5, p50, p80, p95 = (float(x) for x in np.percentile(arr, [5, 50, 80, 95]))
    return Summary(float(arr.mean()), p5, p50, p80, p95, int(arr.size), _count(seed, "seed", 0, 2**63 - 1))


@register_warmer
def _warm() -> None:
    factors = [Distribution("lognormal", 1.0, gsd=1.1), Distribution("normal", 1.0, sd=0.1)]
    amount = Distribution("triangular", 1.0, low=0.5, mode=1.0, high=2.0)
    lines = [Line(0, amount), Line(1, Distribution("uniform", 1.0, low=0.0, high=1.0)), Line(-1, amount)]
    sample_footprint(factors, lines, samples=4, seed=0)
    sample_lines(factors, lines, samples=4, seed=0)

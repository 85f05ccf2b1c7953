"""Monte Carlo footprint sampler (``scoring.uncertainty``) against analytic moments and a NumPy reference.

Statistical checks compare a sample statistic with its analytic value within 5 standard errors
(computed from the analytic distribution); the seeds are fixed, so they cannot flake either.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
import pytest

import scoring
from scoring import uncertainty
from scoring.uncertainty import Distribution, Line, sample_footprint, sample_lines, summarise

N = 200_000
ROOT = Path(__file__).resolve().parents[2]
EXACT = Distribution("none", 1.0)


def within(stat: float, expected: float, se: float, k: float = 5.0) -> bool:
    return abs(stat - expected) <= k * se


def mean_ok(x: np.ndarray, mean: float, var: float) -> bool:
    return within(float(x.mean()), mean, math.sqrt(var / x.size))


def normal_var_ok(x: np.ndarray, var: float) -> bool:
    # Var of the sample variance of a normal: 2 sigma^4 / (n - 1).
    return within(float(x.var(ddof=1)), var, math.sqrt(2 * var**2 / (x.size - 1)))


# --- a slow reference: the documented draws, transformed with plain NumPy -------------------------


def reference(factors: list[Distribution], lines: list[Line], samples: int, seed: int) -> np.ndarray:
    ss_normal, ss_uniform = np.random.SeedSequence(seed).spawn(2)
    streams = {"normal": [], "uniform": []}  # column -> (line index, slot) of who uses it
    which = {"lognormal": "normal", "normal": "normal", "triangular": "uniform", "uniform": "uniform"}
    factor_col: dict[int, int] = {}
    cols: list[list[int | None]] = []
    for j, line in enumerate(lines):
        fcol = acol = None
        f = factors[line.factor] if line.factor >= 0 else EXACT
        if f.kind != "none":
            if line.factor not in factor_col:
                factor_col[line.factor] = len(streams[which[f.kind]])
                streams[which[f.kind]].append((j, 0))
            fcol = factor_col[line.factor]
        if line.amount.kind != "none":
            acol = len(streams[which[line.amount.kind]])
            streams[which[line.amount.kind]].append((j, 1))
        cols.append([fcol, acol])
    z = np.random.Generator(np.random.PCG64(ss_normal)).standard_normal((samples, len(streams["normal"])))
    u = np.random.Generator(np.random.PCG64(ss_uniform)).random((samples, len(streams["uniform"])))

    def draw(d: Distribution, c: int | None) -> np.ndarray:
        if d.kind == "lognormal":
            return d.value * np.power(d.gsd, z[:, c])
        if d.kind == "normal":
            return d.value + d.sd * z[:, c]
        if d.kind == "triangular":
            x, a, m, b = u[:, c], d.low, d.mode, d.high
            fc = (m - a) / (b - a) if b > a else 0.0
            return np.where(x < fc, a + np.sqrt(x * (b - a) * (m - a)), b - np.sqrt((1 - x) * (b - a) * (b - m)))
        if d.kind == "uniform":
            return d.low + u[:, c] * (d.high - d.low)
        return np.full(samples, d.value)

    total = np.zeros(samples)
    for line, (fcol, acol) in zip(lines, cols, strict=True):
        f = factors[line.factor] if line.factor >= 0 else EXACT
        total = total + draw(f, fcol) * draw(line.amount, acol)
    return total


MIXED_FACTORS = [
    Distribution("lognormal", 0.5366, gsd=1.3),
    Distribution("normal", 2.0, sd=0.4),
    Distribution("triangular", 1.0, low=0.8, mode=1.0, high=1.5),
    Distribution("uniform", 3.0, low=2.5, high=3.5),
    Distribution("none", 7.0),
    Distribution("lognormal", 9.0, gsd=2.0),  # cited by nobody: draws nothing
    Distribution("triangular", 1.0, low=1.0, mode=1.0, high=2.0),  # mode at the low edge
]
MIXED_LINES = [
    Line(0, Distribution("none", 120.0)),
    Line(1, Distribution("lognormal", 3.0, gsd=1.1)),
    Line(0, Distribution("uniform", 0.0, low=10.0, high=12.0)),  # shares factor 0 with line 0
    Line(2, Distribution("normal", 4.0, sd=0.2)),
    Line(-1, Distribution("triangular", 0.0, low=0.1, mode=0.3, high=0.3)),  # direct; mode at the high edge
    Line(3, Distribution("triangular", 0.0, low=5.0, mode=5.0, high=5.0)),  # degenerate: exactly 5
    Line(4, Distribution("normal", 1.0, sd=0.1)),
    Line(6, EXACT),
    Line(-1, Distribution("none", 2.5)),
]


def test_matches_the_numpy_reference() -> None:
    got = sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=5000, seed=11)
    np.testing.assert_allclose(got, reference(MIXED_FACTORS, MIXED_LINES, 5000, 11), rtol=1e-12, atol=0)


def test_result_does_not_depend_on_the_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=3001, seed=5)
    monkeypatch.setattr(uncertainty, "_CHUNK_VALUES", 7)  # one row per chunk, and ragged
    assert np.array_equal(sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=3001, seed=5), whole)


def test_per_line_contributions_sum_to_the_totals() -> None:
    per_line = sample_lines(MIXED_FACTORS, MIXED_LINES, samples=2000, seed=3)
    assert per_line.shape == (2000, len(MIXED_LINES))
    np.testing.assert_allclose(per_line.sum(axis=1), sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=2000,
                                                                      seed=3), rtol=1e-12)
    # The degenerate triangular times the uniform factor, and the exact direct line.
    assert np.all((per_line[:, 5] >= 5 * 2.5) & (per_line[:, 5] < 5 * 3.5))
    assert np.all(per_line[:, 8] == 2.5)


# --- analytic moments -------------------------------------------------------------------------------


def test_lognormal_mean_and_median() -> None:
    median, gsd = 2.0, 1.5
    x = sample_footprint([Distribution("lognormal", median, gsd=gsd)], [Line(0, EXACT)], samples=N, seed=1)
    mu, s = math.log(median), math.log(gsd)
    mean = math.exp(mu + s * s / 2)
    var = (math.exp(s * s) - 1) * math.exp(2 * mu + s * s)
    assert mean_ok(x, mean, var)
    # P(X <= median) = 1/2 exactly: a binomial proportion with standard error sqrt(1/4n).
    assert within(float(np.mean(x <= median)), 0.5, math.sqrt(0.25 / N))
    assert within(float(np.mean(np.log(x))), mu, s / math.sqrt(N))


def test_independent_normal_lines_add_means_and_variances() -> None:
    factors = [Distribution("normal", 10.0, sd=2.0), Distribution("normal", 5.0, sd=1.0)]
    x = sample_footprint(factors, [Line(0, Distribution("none", 3.0)), Line(1, Distribution("none", 4.0))],
                         samples=N, seed=2)
    var = 3**2 * 2**2 + 4**2 * 1**2
    assert mean_ok(x, 3 * 10 + 4 * 5, var)
    assert normal_var_ok(x, var)


def test_lines_sharing_a_factor_scale_together() -> None:
    sd, a1, a2 = 1.0, 2.0, 3.0
    shared = [Distribution("normal", 10.0, sd=sd)]
    lines = [Line(0, Distribution("none", a1)), Line(0, Distribution("none", a2))]
    x = sample_footprint(shared, lines, samples=N, seed=3)
    single = sample_footprint(shared, [Line(0, EXACT)], samples=N, seed=3)  # the factor's own draws
    np.testing.assert_allclose(x, (a1 + a2) * single, rtol=1e-14)
    assert np.corrcoef(x, single)[0, 1] == pytest.approx(1.0, abs=1e-12)
    correlated, independent = (a1 + a2) ** 2 * sd**2, (a1**2 + a2**2) * sd**2
    assert normal_var_ok(x, correlated)
    se = math.sqrt(2 * correlated**2 / (N - 1))
    assert correlated - independent > 20 * se  # the two hypotheses are far apart at this n
    assert not normal_var_ok(x, independent)
    # Two distinct factors with the same distribution are independent: the variances add.
    y = sample_footprint(shared * 2, [Line(0, lines[0].amount), Line(1, lines[1].amount)], samples=N, seed=3)
    assert normal_var_ok(y, independent)


def test_triangular_moments() -> None:
    a, m, b = 1.0, 2.0, 6.0
    x = sample_footprint([Distribution("triangular", m, low=a, mode=m, high=b)], [Line(0, EXACT)],
                         samples=N, seed=4)
    var = (a * a + m * m + b * b - a * m - a * b - m * b) / 18
    assert mean_ok(x, (a + m + b) / 3, var)
    assert x.min() >= a and x.max() <= b
    # CDF at the mode is (m - a) / (b - a).
    p = (m - a) / (b - a)
    assert within(float(np.mean(x <= m)), p, math.sqrt(p * (1 - p) / N))


def test_uniform_moments() -> None:
    low, high = -2.0, 4.0
    x = sample_footprint([Distribution("uniform", 0.0, low=low, high=high)], [Line(0, EXACT)], samples=N, seed=5)
    var = (high - low) ** 2 / 12
    assert mean_ok(x, (low + high) / 2, var)
    mu4 = (high - low) ** 4 / 80  # fourth central moment: Var(s^2) ~ (mu4 - sigma^4) / n
    assert within(float(x.var(ddof=1)), var, math.sqrt((mu4 - var**2) / N))
    assert x.min() >= low and x.max() < high


def test_activity_uncertainty_on_an_exact_factor() -> None:
    x = sample_footprint([Distribution("none", 2.0)], [Line(0, Distribution("normal", 5.0, sd=0.5))],
                         samples=N, seed=6)
    assert mean_ok(x, 10.0, 4 * 0.25)
    assert normal_var_ok(x, 4 * 0.25)


def test_factor_and_activity_uncertainty_multiply() -> None:
    # Independent X, Y: E[XY] = E[X]E[Y], Var[XY] = (vx + mx^2)(vy + my^2) - mx^2 my^2.
    mx, vx, my, vy = 3.0, 0.25, 10.0, (12 - 8) ** 2 / 12
    x = sample_footprint([Distribution("normal", mx, sd=math.sqrt(vx))],
                         [Line(0, Distribution("uniform", 0.0, low=8.0, high=12.0))], samples=N, seed=7)
    assert mean_ok(x, mx * my, (vx + mx**2) * (vy + my**2) - mx**2 * my**2)


def test_direct_lines_have_a_factor_of_one() -> None:
    amount = Distribution("uniform", 0.0, low=1.0, high=3.0)
    x = sample_footprint([], [Line(-1, amount), Line(-1, Distribution("none", 4.0))], samples=N, seed=8)
    assert np.all((x >= 5.0) & (x < 7.0))
    assert mean_ok(x, 2.0 + 4.0, 4 / 12)
    assert np.array_equal(sample_footprint([], [Line(-1, Distribution("none", 4.0))], samples=10, seed=8),
                          np.full(10, 4.0))


def test_exact_inputs_give_the_exact_total() -> None:
    factors = [Distribution("none", 0.5), Distribution("normal", 3.0, sd=0.0), Distribution("lognormal", 2.0)]
    lines = [Line(0, Distribution("none", 4.0)), Line(1, Distribution("none", 2.0)), Line(2, EXACT)]
    assert np.allclose(sample_footprint(factors, lines, samples=100, seed=9), 0.5 * 4 + 3 * 2 + 2, rtol=1e-15)


def test_zero_lines_give_zero_totals() -> None:
    x = sample_footprint([Distribution("lognormal", 1.0, gsd=2.0)], [], samples=17, seed=0)
    assert x.dtype == np.float64 and x.shape == (17,) and not x.any()
    assert sample_lines([], [], samples=3, seed=0).shape == (3, 0)


def test_an_uncited_factor_changes_nothing() -> None:
    lines = [Line(0, Distribution("normal", 1.0, sd=0.1))]
    base = sample_footprint([Distribution("lognormal", 2.0, gsd=1.2)], lines, samples=1000, seed=4)
    more = [Distribution("lognormal", 2.0, gsd=1.2), Distribution("uniform", 0.0, low=0.0, high=1.0)]
    assert np.array_equal(sample_footprint(more, lines, samples=1000, seed=4), base)


# --- reproducibility --------------------------------------------------------------------------------


def test_same_seed_same_array_other_seed_other_array() -> None:
    a = sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=1000, seed=42)
    assert np.array_equal(a, sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=1000, seed=42))
    assert not np.array_equal(a, sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=1000, seed=43))
    # A longer run starts with the shorter run's samples.
    assert np.array_equal(sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=1500, seed=42)[:1000], a)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_thread_count_does_not_change_the_result() -> None:
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=50_000, seed=12)
        numba.set_num_threads(2)
        two = sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=50_000, seed=12)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, two)


def test_concurrent_calls_from_threads_agree() -> None:
    # The app runs the sampler in worker threads (nogil); each call must still see only its own data.
    serial = [sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=20_000, seed=s) for s in range(6)]
    if not scoring.config.JIT_DISABLED and numba.threading_layer() == "workqueue":
        pytest.skip("the workqueue threading layer does not allow concurrent parallel calls")
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = list(pool.map(lambda s: sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=20_000, seed=s),
                                 range(6)))
    assert all(np.array_equal(a, b) for a, b in zip(serial, threaded, strict=True))


@pytest.mark.skipif(scoring.config.JIT_DISABLED, reason="this process is interpreted already")
def test_interpreted_run_matches_the_compiled_run(tmp_path: Path) -> None:
    spec = json.dumps({"factors": MIXED_FACTORS, "lines": [[ln.factor, ln.amount] for ln in MIXED_LINES]})
    script = (
        "import json, sys, numpy as np\n"
        "from scoring import uncertainty as u\n"
        "assert u.sample_footprint.__module__ == 'scoring.uncertainty'\n"
        "spec = json.loads(sys.argv[1])\n"
        "f = [u.Distribution(*d) for d in spec['factors']]\n"
        "ls = [u.Line(i, u.Distribution(*d)) for i, d in spec['lines']]\n"
        "assert not hasattr(u._kernel_totals, 'signatures')  # really interpreted\n"
        "np.save(sys.argv[2], u.sample_footprint(f, ls, samples=3000, seed=21))\n"
    )
    out = tmp_path / "totals.npy"
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", script, spec, str(out)], check=True, env=env, cwd=ROOT, timeout=300)
    compiled = sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=3000, seed=21)
    assert uncertainty._kernel_totals.signatures  # this side really was compiled
    np.testing.assert_allclose(np.load(out), compiled, rtol=1e-12, atol=0)


def test_warm_up_compiles_the_sampler() -> None:
    assert uncertainty._warm in scoring.config._WARMERS
    assert scoring.warm_up() >= 1


# --- summary ----------------------------------------------------------------------------------------


def test_summary_is_numpys_percentiles() -> None:
    x = sample_footprint(MIXED_FACTORS, MIXED_LINES, samples=999, seed=13)
    s = summarise(x, seed=13)
    assert (s.p5, s.p50, s.p80, s.p95) == tuple(np.percentile(x, [5, 50, 80, 95]))
    assert s.mean == pytest.approx(float(np.mean(x)), rel=1e-15)
    assert s.p5 <= s.p50 <= s.p80 <= s.p95
    assert (s.samples, s.seed) == (999, 13)
    # Linear interpolation by hand: rank (n - 1) p between order statistics, for 1, 2, 3, 4.
    assert summarise(np.array([4.0, 1.0, 3.0, 2.0]), seed=0)[:5] == pytest.approx((2.5, 1.15, 2.5, 3.4, 3.85))


@pytest.mark.parametrize("totals", [np.array([]), np.zeros((2, 2))])
def test_summary_refuses_empty_or_matrix(totals: np.ndarray) -> None:
    with pytest.raises(ValueError, match="non-empty 1-D"):
        summarise(totals, seed=0)


# --- validation -------------------------------------------------------------------------------------

GOOD_F = [Distribution("lognormal", 1.0, gsd=1.2)]
GOOD_L = [Line(0, EXACT)]
INF = float("inf")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"samples": 0}, "samples must be in 1..1000000"),
    ({"samples": 1_000_001}, "samples must be in"),
    ({"samples": 10.0}, "samples must be an integer"),
    ({"samples": True}, "samples must be an integer"),
    ({"seed": -1}, "seed must be in 0..9223372036854775807"),
    ({"seed": 2**63}, "seed must be in"),
    ({"seed": "1"}, "seed must be an integer"),
    ({"lines": [Line(1, EXACT)]}, r"lines\[0\].factor must be in -1..0"),
    ({"lines": [Line(-2, EXACT)]}, r"lines\[0\].factor must be in"),
    ({"lines": [Line(0.0, EXACT)]}, r"lines\[0\].factor must be an integer"),
    ({"lines": [(0, EXACT)]}, r"lines\[0\]: expected a Line"),
    ({"lines": [Line(0, 1.0)]}, r"lines\[0\].amount: expected a Distribution"),
    ({"factors": [Distribution("gamma", 1.0)]}, r"factors\[0\]: unknown distribution kind 'gamma'"),
    ({"factors": [Distribution("none", float("nan"))]}, r"factors\[0\]: every number must be finite"),
    ({"factors": [Distribution("normal", 1.0, sd=INF)]}, "finite"),
    ({"factors": [Distribution("normal", None, sd=1.0)]}, "finite"),
    ({"lines": [Line(0, Distribution("none", 1.0, high=-INF))]}, r"lines\[0\].amount: every number must be finite"),
    ({"factors": [Distribution("lognormal", 1.0, gsd=0.99)]}, "gsd must be >= 1"),
    ({"factors": [Distribution("lognormal", 0.0, gsd=1.1)]}, "value .the median. must be > 0"),
    ({"factors": [Distribution("lognormal", -1.0, gsd=1.1)]}, "must be > 0"),
    ({"factors": [Distribution("normal", 1.0, sd=-0.1)]}, "sd must be >= 0"),
    ({"factors": [Distribution("triangular", 1.0, low=2.0, mode=1.0, high=3.0)]}, "low <= mode <= high"),
    ({"factors": [Distribution("triangular", 1.0, low=0.0, mode=4.0, high=3.0)]}, "low <= mode <= high"),
    ({"factors": [Distribution("uniform", 1.0, low=2.0, high=1.0)]}, "uniform needs low <= high"),
    ({"factors": [1.0]}, r"factors\[0\]: expected a Distribution"),
])
def test_invalid_input_is_refused(kwargs: dict, match: str) -> None:
    args = {"factors": GOOD_F, "lines": GOOD_L, "samples": 10, "seed": 0, **kwargs}
    for fn in (sample_footprint, sample_lines):
        with pytest.raises(ValueError, match=match):
            fn(args["factors"], args["lines"], samples=args["samples"], seed=args["seed"])


def test_invalid_factor_is_refused_even_if_uncited() -> None:
    with pytest.raises(ValueError, match=r"factors\[1\]"):
        sample_footprint(GOOD_F + [Distribution("normal", 1.0, sd=-1.0)], GOOD_L, samples=1, seed=0)


def test_per_line_matrix_is_bounded() -> None:
    lines = [Line(-1, EXACT)] * 100
    with pytest.raises(ValueError, match="samples x lines"):
        sample_lines([], lines, samples=uncertainty.MAX_LINE_CELLS // 100 + 1, seed=0)


def test_numpy_integers_are_accepted() -> None:
    x = sample_footprint(GOOD_F, [Line(np.int64(0), EXACT)], samples=np.int32(5), seed=np.uint64(3))
    assert np.array_equal(x, sample_footprint(GOOD_F, GOOD_L, samples=5, seed=3))


def test_parallel_sections_serialise_only_where_the_threading_layer_needs_it() -> None:
    from scoring import config

    scoring.warm_up()  # a parallel kernel has run, so Numba has chosen its threading layer
    if config.JIT_DISABLED:
        pytest.skip("no threading layer without the JIT")
    with config.parallel_section():
        held = not config._SERIAL.acquire(blocking=False)
        if not held:
            config._SERIAL.release()
    # omp and tbb take concurrent launches safely: nothing is held; any other layer holds the lock.
    assert held == (numba.threading_layer() not in ("omp", "tbb"))

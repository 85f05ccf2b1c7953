"""Rank statistics (``scoring.ranking``) against a slow pure-NumPy reference.

The reference compares every pair of bids in every sample by broadcasting, in the input's own dtype
(so int64 beyond 2**53 and long doubles are compared exactly), and counts. Fractions are counts
divided by the sample count on both sides, so they must agree exactly, not just closely.
Sizes stay small so that the run with ``NUMBA_DISABLE_JIT=1`` is quick too.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import scoring
from scoring import ranking
from scoring.ranking import first_rank_probability, pairwise_winning, rank_acceptability

RADIX_BIDS = ranking._COUNT_MAX + 17  # enough bids for the radix-sort path


# --- the reference ----------------------------------------------------------------------------------


def greater_counts(u: np.ndarray) -> np.ndarray:
    """[s, i] = how many bids have a strictly greater utility than bid i in sample s."""
    u = np.asarray(u)
    return (u[:, None, :] > u[:, :, None]).sum(axis=2)


def ref_acceptability(u: np.ndarray) -> np.ndarray:
    g = greater_counts(u)
    n = g.shape[1]
    return np.stack([(g == r).mean(axis=0) for r in range(n)], axis=1)


def ref_pairwise(u: np.ndarray) -> np.ndarray:
    u = np.asarray(u)
    return (u[:, :, None] > u[:, None, :]).mean(axis=0)


def ref_first(u: np.ndarray) -> np.ndarray:
    return (greater_counts(u) == 0).mean(axis=0)


def check_all(u: np.ndarray) -> None:
    acc, pw, first = rank_acceptability(u), pairwise_winning(u), first_rank_probability(u)
    for got in (acc, pw, first):
        assert got.dtype == np.float64
    np.testing.assert_array_equal(acc, ref_acceptability(u))
    np.testing.assert_array_equal(pw, ref_pairwise(u))
    np.testing.assert_array_equal(first, ref_first(u))


rng = np.random.default_rng(20240606)


# --- agreement with the reference -------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (9, 1), (301, 5), (200, 40), (1, RADIX_BIDS)])
def test_random_floats(shape: tuple[int, int]) -> None:
    check_all(rng.standard_normal(shape))


@pytest.mark.parametrize("shape", [(500, 12), (257, 3), (1, RADIX_BIDS)])
def test_tie_heavy_integers(shape: tuple[int, int]) -> None:
    u = rng.integers(0, 3, size=shape)
    check_all(u)
    check_all(u.astype(np.float64) - 1.0)  # negative values and zeros too


def test_all_tied_and_single_bid() -> None:
    u = np.full((6, 4), 2.5)
    np.testing.assert_array_equal(rank_acceptability(u), np.eye(4)[[0, 0, 0, 0]])  # everyone shares rank 1
    np.testing.assert_array_equal(pairwise_winning(u), np.zeros((4, 4)))
    np.testing.assert_array_equal(first_rank_probability(u), np.ones(4))
    one = rng.standard_normal((50, 1))
    assert rank_acceptability(one).tolist() == [[1.0]]
    assert pairwise_winning(one).tolist() == [[0.0]]
    assert first_rank_probability(one).tolist() == [1.0]


def test_a_worked_example() -> None:
    u = [[3.0, 1.0, 3.0],  # ranks 1, 3, 1
         [0.0, 2.0, 1.0],  # ranks 3, 1, 2
         [5.0, 5.0, 5.0],  # all rank 1
         [1.0, 2.0, 3.0]]  # ranks 3, 2, 1
    np.testing.assert_array_equal(rank_acceptability(u), np.array([[2, 0, 2], [2, 1, 1], [3, 1, 0]]) / 4)
    np.testing.assert_array_equal(pairwise_winning(u), np.array([[0, 1, 0], [2, 0, 1], [2, 2, 0]]) / 4)
    np.testing.assert_array_equal(first_rank_probability(u), np.array([2, 2, 3]) / 4)


@pytest.mark.parametrize("layout", ["fortran", "strided", "reversed", "transposed"])
def test_memory_layouts(layout: str) -> None:
    base = rng.integers(-4, 5, size=(120, 30)).astype(np.float64)
    u = {"fortran": np.asfortranarray(base), "strided": base[::3, 1::2], "reversed": base[::-1, ::-1],
         "transposed": base.T[:, :40].T}[layout]
    check_all(u)
    np.testing.assert_array_equal(rank_acceptability(u), rank_acceptability(np.array(u, order="C")))


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint8, np.int16, np.int32, np.uint32, np.int64,
                                   np.uint64, np.float16, np.float32, np.float64, np.longdouble])
def test_real_dtypes(dtype: type) -> None:
    u = rng.integers(0, 5, size=(150, 9))
    if dtype is np.bool_:
        u = u > 2
    check_all(u.astype(dtype))
    if np.dtype(dtype).kind == "f":
        check_all((rng.standard_normal((150, 9)) * 100).astype(dtype))


def test_plain_lists_are_accepted() -> None:
    check_all([[1, 2, 3], [3, 2, 1]])
    check_all([[0.5, True, 2], [-1, 0.5, 3]])


def test_large_integers_are_ranked_exactly() -> None:
    # float64 would round these into ties; they must stay distinct.
    big = np.array([[0, 1, 2], [2, 1, 0], [1, 1, 2]], dtype=np.int64) + 2**62
    assert np.float64(big[0, 0]) == np.float64(big[0, 2])
    check_all(big)
    np.testing.assert_array_equal(first_rank_probability(big), [1 / 3, 0.0, 2 / 3])
    check_all(np.array([[2**64 - 1, 2**64 - 2, 0], [2**64 - 2, 2**64 - 1, 2**63]], dtype=np.uint64))
    check_all(np.array([[-(2**63), -(2**63) + 1, 2**53 + 1, 2**53]], dtype=np.int64))


@pytest.mark.skipif(np.finfo(np.longdouble).nmant <= np.finfo(np.float64).nmant,
                    reason="long double is float64 here")
def test_long_doubles_are_ranked_exactly() -> None:
    eps = np.finfo(np.longdouble).eps
    one = np.longdouble(1)
    u = np.array([[one, one + eps, one + 2 * eps], [one + 2 * eps, one, one + eps]])
    assert len(set(u[0].astype(np.float64))) == 1  # float64 would see a three-way tie
    check_all(u)
    huge = np.array([[np.finfo(np.longdouble).max, np.longdouble(1e300) * 1e300, 1.0]])  # beyond float64
    check_all(huge)


def test_signed_zeros_tie_and_extremes_order() -> None:
    tiny = np.nextafter(0.0, 1.0)  # the smallest subnormal
    big = np.finfo(np.float64).max
    u = np.array([[-0.0, 0.0, -1.0, tiny, -tiny], [0.0, -0.0, -big, big, 1e-310],
                  [-0.0, -0.0, -0.0, -tiny, -big]])
    check_all(u)
    assert pairwise_winning(u)[0, 1] == pairwise_winning(u)[1, 0] == 0.0  # -0.0 and 0.0 always tie
    check_all(u[1:, [0, 1, 2, 3, 4] * (RADIX_BIDS // 5 + 1)])  # the same through the radix sort


@pytest.mark.parametrize("kind", ["normal", "ties", "zeros", "wide", "near", "clusters"])
def test_both_per_sample_rankers(kind: str) -> None:
    n = 700
    eps = np.finfo(np.float64).eps
    row = {"normal": rng.standard_normal(n),
           "ties": rng.integers(-2, 2, n) * 1.0,
           # float32 rounds all of these to zero: one long run the exact sort must order
           "zeros": rng.choice([-0.0, 0.0, 5e-324, -5e-324, 1e-300, -1e-60, 1.0], n),
           # beyond float32's range both ways, and both signs
           "wide": rng.choice([-1.0, 1.0], n) * np.exp(rng.standard_normal(n) * 150),
           "near": 1.0 + np.arange(n)[::-1] * eps,  # distinct, equal in float32, descending
           # short runs equal in float32 but not in float64, in random order: insertion sorted
           "clusters": np.repeat(rng.standard_normal(n // 5), 5) * (1 + rng.integers(0, 9, n) * eps)}[kind]
    expected = (row[None, :] > row[:, None]).sum(axis=1)
    rank = np.full(n, -1, np.int64)
    ranking._rank_by_counting(row, rank)
    np.testing.assert_array_equal(rank, expected)
    rank[:] = -1
    with np.errstate(over="ignore"):  # interpreted, the float32 rounding of "wide" overflows
        ranking._rank_by_radix(row, rank, ranking._scratch(n))
    np.testing.assert_array_equal(rank, expected)


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 60), elements=st.floats(allow_nan=False, allow_infinity=False)))
def test_property_both_rankers_on_any_floats(row: np.ndarray) -> None:
    expected = (row[None, :] > row[:, None]).sum(axis=1)
    rank = np.full(row.size, -1, np.int64)
    ranking._rank_by_counting(row, rank)
    np.testing.assert_array_equal(rank, expected)
    with np.errstate(over="ignore"):
        ranking._rank_by_radix(row, rank, ranking._scratch(row.size))
    np.testing.assert_array_equal(rank, expected)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=9),
                  elements=st.sampled_from([-2.5, -1.0, -0.0, 0.0, 1e-300, 1.0, 3.0, 1e300])))
def test_property_few_distinct_values(u: np.ndarray) -> None:
    check_all(u)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.int64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=8),
                  elements=st.integers(-(2**63), 2**63 - 1)))
def test_property_any_int64(u: np.ndarray) -> None:
    check_all(u)


# --- identities ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("u", [rng.standard_normal((400, 25)), rng.integers(0, 3, size=(400, 25)),
                               rng.standard_normal((2, RADIX_BIDS)).round(1)],
                         ids=["floats", "ties", "radix"])
def test_identities(u: np.ndarray) -> None:
    acc, pw, first = rank_acceptability(u), pairwise_winning(u), first_rank_probability(u)
    n = u.shape[1]
    np.testing.assert_allclose(acc.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(acc[:, 0], first)
    assert np.all(np.diag(pw) == 0.0)
    tie = (u[:, :, None] == u[:, None, :]).mean(axis=0)
    np.testing.assert_allclose(pw + pw.T + tie, np.ones((n, n)), rtol=0, atol=1e-12)
    # Bid i's expected rank - 1 is the expected number of bids strictly ahead: sum over k of P(u_k > u_i).
    np.testing.assert_allclose(acc @ np.arange(n), pw.sum(axis=0), rtol=1e-12)


def test_without_ties_every_rank_is_taken_once() -> None:
    acc = rank_acceptability(rng.standard_normal((300, 17)))
    np.testing.assert_allclose(acc.sum(axis=0), 1.0, rtol=1e-12)


def test_two_normal_bids_against_the_analytic_probability() -> None:
    n, delta = 20_000, 0.3
    u = rng.standard_normal((n, 2)) + [delta, 0.0]
    p = 0.5 * (1 + math.erf(delta / 2))  # P(Z1 - Z2 > -delta), Z1 - Z2 ~ N(0, 2)
    se = math.sqrt(p * (1 - p) / n)
    assert abs(pairwise_winning(u)[0, 1] - p) <= 5 * se
    assert abs(first_rank_probability(u)[0] - p) <= 5 * se


@pytest.mark.parametrize("chunks", [1, 3, 7])
def test_results_do_not_depend_on_the_chunking(monkeypatch: pytest.MonkeyPatch, chunks: int) -> None:
    u = rng.integers(0, 4, size=(101, 11))
    expected = (rank_acceptability(u), pairwise_winning(u), first_rank_probability(u))
    monkeypatch.setattr(ranking, "_chunks", lambda samples, work: min(chunks, samples))
    got = (rank_acceptability(u), pairwise_winning(u), first_rank_probability(u))
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_small_jobs_run_serially_and_large_ones_in_parallel() -> None:
    assert ranking._chunks(10**6, ranking._PARALLEL_WORK - 1) == 1
    assert ranking._chunks(10**6, ranking._PARALLEL_WORK) == numba.get_num_threads()
    assert ranking._chunks(1, 10**12) == 1


def test_pairwise_blocks_of_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    # More samples per chunk than one block holds: the counts must carry over between blocks.
    u = rng.integers(0, 3, size=(ranking._PAIR_BLOCK * 2 + 7, 3))
    monkeypatch.setattr(ranking, "_chunks", lambda samples, work: 1)
    np.testing.assert_array_equal(pairwise_winning(u), ref_pairwise(u))


def test_concurrent_calls_agree() -> None:
    inputs = [rng.integers(0, 5, size=(200, 9)) for _ in range(6)]
    serial = [pairwise_winning(u) for u in inputs]
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = list(pool.map(pairwise_winning, inputs))
    assert all(np.array_equal(a, b) for a, b in zip(serial, threaded, strict=True))


def test_the_input_is_not_modified() -> None:
    u = np.array([[-0.0, 2.0, 1.0], [3.0, -0.0, 3.0]])
    before = u.copy()
    check_all(u)
    assert np.array_equal(u, before) and np.signbit(u[0, 0])


# --- input errors -----------------------------------------------------------------------------------


FUNCTIONS = [rank_acceptability, pairwise_winning, first_rank_probability]


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize(("value", "message"), [
    (np.ones(3), "2-D"), (np.ones((2, 2, 2)), "2-D"), (np.float64(1.0), "2-D"),
    (np.ones((0, 3)), "at least one sample and one bid"), (np.ones((3, 0)), "at least one sample"),
    (np.ones((2, 2), complex), "real numbers"), (np.array([["a", "b"]]), "real numbers"),
    (np.array([[1, None]], dtype=object), "real numbers"), ([[1, 2], [3]], "2-D array of real numbers"),
    (np.array([[1, 2]], dtype="datetime64[s]"), "real numbers"), ([[2**70, 1]], "real numbers"),
])
def test_bad_shapes_and_dtypes(fn, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fn(value)


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (2, 4), (3, 5)])
def test_non_finite_values(fn, bad: float, where: tuple[int, int]) -> None:
    u = rng.standard_normal((4, 6))
    u[where] = bad
    with pytest.raises(ValueError, match=rf"finite, got {bad} at sample {where[0]}, bid {where[1]}"):
        fn(u)


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_non_finite_values_on_the_radix_path_and_in_other_dtypes(fn) -> None:
    u = rng.standard_normal((1, RADIX_BIDS))
    u[0, -1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fn(u)
    with pytest.raises(ValueError, match="finite"):
        fn(np.array([[1.0, np.inf]], dtype=np.float32))
    with pytest.raises(ValueError, match="finite"):
        fn(np.array([[1.0, -np.inf]], dtype=np.longdouble))


def test_pairwise_bid_limit() -> None:
    with pytest.raises(ValueError, match="at most 32768 bids"):
        pairwise_winning(np.zeros((1, ranking.MAX_PAIRWISE_BIDS + 1)))


# --- compilation ------------------------------------------------------------------------------------


def test_exported_and_warmed() -> None:
    assert scoring.rank_acceptability is rank_acceptability
    assert scoring.pairwise_winning is pairwise_winning
    assert scoring.first_rank_probability is first_rank_probability
    assert ranking._warm in scoring.config._WARMERS
    assert scoring.warm_up() >= 1
    if not scoring.config.JIT_DISABLED:
        for kernel in (ranking._kernel_acceptability, ranking._kernel_pairwise, ranking._kernel_first):
            assert kernel.signatures  # compiled by the warm-up, for the one signature requests use

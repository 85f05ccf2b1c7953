"""Bid scoring: the statutory price score, each carbon method, eligibility, tie rules (exact), and
the SMAA-2 analysis against independent oracles: a slow NumPy re-implementation of the documented
sampling protocol, rejection sampling for the weights, and the lognormal pairwise formula
P(A above B) = Φ((ln m_B − ln m_A) / √(ln²g_A + ln²g_B))."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from procurement import evaluation
from procurement.evaluation import BidFacts, Rules, WeightSampler, analyse, rank_bids

D = Decimal


def bid(bid_id: str, price: int, kg: str, gsd: float = 1.0, **extra: object) -> BidFacts:
    return BidFacts(bid_id=bid_id, supplier=f"s-{bid_id}", price_cents=price, kgco2e=D(kg), median=D(kg), gsd=gsd,
                    **extra)  # type: ignore[arg-type]


def rules(price: str = "0.6", carbon: str = "0.4", quality: str = "0", method: str = "ratio_to_best",
          **extra: object) -> Rules:
    return Rules(weights=(D(price), D(carbon), D(quality)), method=method, **extra)  # type: ignore[arg-type]


def by_id(ranked: list[evaluation.Ranked]) -> dict[str, evaluation.Ranked]:
    return {r.bid.bid_id: r for r in ranked}


def phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


# --- the deterministic ranking ------------------------------------------------------------------


def test_statutory_price_score_worked_example() -> None:
    # 评标基准价 = the lowest eligible price; score = base / price × weight: 1000/1250 × 60 % = 48 %.
    ranked = by_id(rank_bids([bid("a", 100_000, "1"), bid("b", 125_000, "1"), bid("c", 200_000, "1")],
                             rules(price="0.6", carbon="0.4")))
    assert [ranked[k].price_score for k in "abc"] == [Fraction(6, 10), Fraction(48, 100), Fraction(3, 10)]
    assert [ranked[k].rank for k in "abc"] == [1, 2, 3]


def test_ratio_to_best_carbon_score() -> None:
    ranked = by_id(rank_bids([bid("a", 100, "10"), bid("b", 100, "12.5"), bid("c", 100, "20")], rules()))
    assert [ranked[k].carbon_score for k in "abc"] == [Fraction(4, 10), Fraction(32, 100), Fraction(2, 10)]
    assert ranked["b"].total == Fraction(6, 10) + Fraction(32, 100)


def test_linear_carbon_score_is_min_max() -> None:
    ranked = by_id(rank_bids([bid("a", 100, "10"), bid("b", 100, "15"), bid("c", 100, "20")],
                             rules(method="linear")))
    assert [ranked[k].carbon_score for k in "abc"] == [Fraction(4, 10), Fraction(2, 10), Fraction(0)]
    same = rank_bids([bid("a", 100, "7"), bid("b", 100, "7")], rules(method="linear"))
    assert [r.carbon_score for r in same] == [Fraction(4, 10)] * 2  # nobody is worse than anybody


@pytest.mark.parametrize(("kg", "expected"), [
    ("5", Fraction(1)), ("10", Fraction(1)), ("15", Fraction(5, 6)), ("20", Fraction(2, 3)),
    ("35", Fraction(1, 6)), ("40", Fraction(0)), ("55", Fraction(0)),
])
def test_benchmark_carbon_score_is_piecewise_linear_in_the_thresholds(kg: str, expected: Fraction) -> None:
    thresholds = (D("10"), D("20"), D("30"), D("40"))
    ranked = rank_bids([bid("a", 100, kg)], rules(price="0", carbon="1", method="benchmark", thresholds=thresholds))
    assert ranked[0].carbon_score == expected


def test_benchmark_with_equal_thresholds_steps() -> None:
    t = [Fraction(10), Fraction(20), Fraction(20), Fraction(40)]
    assert evaluation.benchmark_position(Fraction(19), t) == 1 - Fraction(9, 10) / 3
    assert evaluation.benchmark_position(Fraction(20), t) == Fraction(1, 3)
    assert evaluation.benchmark_position(Fraction(30), t) == Fraction(1, 6)


def test_monetised_scores_the_life_cycle_cost_as_a_price() -> None:
    # 10 kg/unit × 1000 units = 10 t at 100.00 yuan/t adds 1000.00 yuan (100000 cents) to the price.
    r = rules(price="0.5", carbon="0.5", method="monetised", quantity=D(1000), shadow_price_cents_per_tco2e=10_000)
    ranked = by_id(rank_bids([bid("a", 100_000, "10"), bid("b", 120_000, "5")], r))
    assert ranked["a"].carbon_score == Fraction(1, 2) * Fraction(170_000, 200_000)
    assert ranked["b"].carbon_score == Fraction(1, 2)
    assert ranked["a"].price_score == Fraction(1, 2)  # price itself stays statutory
    assert ranked["b"].price_score == Fraction(1, 2) * Fraction(100_000, 120_000)


def test_quality_counts_its_share_and_missing_quality_scores_zero() -> None:
    ranked = by_id(rank_bids([bid("a", 100, "1", quality=D("80")), bid("b", 100, "1")],
                             rules(price="0.5", carbon="0.3", quality="0.2")))
    assert ranked["a"].quality_score == Fraction(16, 100)
    assert ranked["b"].quality_score == 0
    assert ranked["a"].rank == 1 and ranked["b"].rank == 2


def test_eligibility_reasons_and_ineligible_bids_set_no_benchmark_price() -> None:
    r = rules(max_kgco2e=D("15"), label_required=True)
    bids = [
        bid("ok", 200, "10", label_scheme="verified", label_state="active"),
        bid("cheap_but_heavy", 50, "16", label_scheme="verified", label_state="active"),
        bid("no_label", 100, "10"),
        bid("self", 100, "10", label_scheme="self_declared", label_state="active"),
        bid("revoked", 100, "10", label_scheme="verified", label_state="revoked"),
        bid("expired", 100, "20", label_scheme="verified", label_state="expired"),
    ]
    ranked = by_id(rank_bids(bids, r))
    assert ranked["ok"].eligible and ranked["ok"].rank == 1
    assert ranked["ok"].price_score == Fraction(6, 10)  # the cheaper ineligible bids set no benchmark price
    assert ranked["cheap_but_heavy"].reasons == ("footprint_above_limit",)
    assert ranked["no_label"].reasons == ("label_missing",)
    assert ranked["self"].reasons == ("label_not_verified",)
    assert ranked["revoked"].reasons == ("label_revoked",)
    assert ranked["expired"].reasons == ("footprint_above_limit", "label_expired")
    for key in ("cheap_but_heavy", "no_label", "self", "revoked", "expired"):
        assert ranked[key].rank is None and ranked[key].total is None and not ranked[key].eligible


def test_a_revoked_label_excludes_even_without_label_required() -> None:
    ranked = rank_bids([bid("a", 100, "1", label_scheme="verified", label_state="revoked")], rules())
    assert ranked[0].reasons == ("label_revoked",)


def test_ties_higher_total_then_lower_price_then_lower_footprint_else_shared() -> None:
    # Equal totals (0.75) by exact arithmetic: the cheaper bid ranks first.
    ranked = rank_bids([bid("b", 200, "10"), bid("a", 100, "20")], rules(price="0.5", carbon="0.5"))
    assert [(r.bid.bid_id, r.rank, r.total) for r in ranked] == [("a", 1, Fraction(3, 4)), ("b", 2, Fraction(3, 4))]
    # Equal totals and prices: the lower footprint first.
    ranked = rank_bids([bid("x", 100, "9"), bid("y", 100, "8")], rules(price="1", carbon="0"))
    assert [(r.bid.bid_id, r.rank) for r in ranked] == [("y", 1), ("x", 2)]
    # Equal in all three: a shared rank, and the next bid's rank counts both.
    ranked = rank_bids([bid("p", 100, "8"), bid("q", 100, "8"), bid("r", 150, "8")], rules())
    assert [(r.bid.bid_id, r.rank) for r in ranked] == [("p", 1), ("q", 1), ("r", 3)]


def test_exact_arithmetic_ties_what_floats_would_split() -> None:
    # 0.1 + 0.2 != 0.3 in binary floating point; here the totals are exactly equal, so price decides.
    r = rules(price="0.1", carbon="0.2", quality="0.7")
    ranked = rank_bids([bid("b", 100, "1", quality=D("100")), bid("a", 100, "1", quality=D("100"))], r)
    assert ranked[0].total == ranked[1].total == 1
    assert [x.rank for x in ranked] == [1, 1]


# --- the Monte Carlo analysis: oracles ----------------------------------------------------------


def reference_ranks(u: np.ndarray) -> np.ndarray:
    """1 + the number of strictly greater utilities in the sample (slow, obvious)."""
    return 1 + (u[:, None, :] > u[:, :, None]).sum(axis=2)


def reference_utilities(bids: list[BidFacts], r: Rules, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The documented protocol, written out sample by sample: one standard normal per bid per
    sample from the first of two PCG64 streams spawned from SeedSequence(seed); fixed weights."""
    footprint_seq, _ = np.random.SeedSequence(seed).spawn(2)
    z = np.random.Generator(np.random.PCG64(footprint_seq)).standard_normal((samples, len(bids)))
    price = np.array([b.price_cents for b in bids], dtype=float)
    wp, wc, wq = (float(w) for w in r.weights)
    u = np.empty((samples, len(bids)))
    carbon = np.empty((samples, len(bids)))
    for s in range(samples):
        f = np.array([float(b.median) * b.gsd ** z[s, i] for i, b in enumerate(bids)])
        if r.method == "ratio_to_best":
            c = f.min() / f
        elif r.method == "linear":
            c = (f.max() - f) / (f.max() - f.min())
        else:
            cost = price + float(r.shadow_price_cents_per_tco2e or 0) * float(r.quantity) / 1000 * f
            c = cost.min() / cost
        carbon[s] = c
        q = np.array([0 if b.quality is None else float(b.quality) / 100 for b in bids])
        u[s] = wp * price.min() / price + wc * c + wq * q
    return u, carbon


def random_bids(n: int, seed: int) -> list[BidFacts]:
    rng = np.random.default_rng(seed)
    return [bid(f"b{i:02d}", int(rng.integers(9_000, 11_000)), f"{rng.uniform(8, 12):.3f}",
                float(rng.uniform(1.0, 1.4)), quality=D(int(rng.integers(0, 101)))) for i in range(n)]


@pytest.mark.parametrize("method", ["ratio_to_best", "linear", "monetised"])
def test_analysis_matches_the_sample_by_sample_reference(method: str) -> None:
    bids = random_bids(7, seed=3)
    r = rules(price="0.5", carbon="0.3", quality="0.2", method=method, quantity=D(100),
              shadow_price_cents_per_tco2e=5_000)
    smaa = analyse(bids, r, samples=3_000, seed=11)
    u, _ = reference_utilities(bids, r, 3_000, 11)
    ranks = reference_ranks(u)
    expected_ra = np.stack([(ranks == k + 1).mean(axis=0) for k in range(len(bids))], axis=1)
    np.testing.assert_allclose(smaa.rank_acceptability, expected_ra, atol=1e-12)
    expected_pw = (u[:, :, None] > u[:, None, :]).mean(axis=0)
    np.testing.assert_allclose(smaa.pairwise_winning, expected_pw, atol=1e-12)
    np.testing.assert_allclose(smaa.rank_acceptability.sum(axis=1), 1.0)
    assert not smaa.weights_sampled
    ever = expected_ra[:, 0] > 0
    np.testing.assert_allclose(smaa.confidence[ever], expected_ra[ever, 0])  # fixed weights: P(first)
    assert np.isnan(smaa.confidence[~ever]).all() and np.isnan(smaa.central_weights[~ever]).all()
    np.testing.assert_allclose(smaa.central_weights[ever], np.tile([0.5, 0.3, 0.2], (ever.sum(), 1)))


@pytest.mark.parametrize(("m_a", "g_a", "m_b", "g_b"), [(10.0, 1.2, 12.0, 1.3), (5.0, 1.5, 5.0, 1.1),
                                                        (8.0, 1.05, 7.5, 1.6)])
def test_pairwise_probability_matches_the_lognormal_formula(m_a: float, g_a: float, m_b: float, g_b: float) -> None:
    samples = 40_000
    bids = [BidFacts("A", "a", 100, D(str(m_a)), D(str(m_a)), g_a), BidFacts("B", "b", 100, D(str(m_b)), D(str(m_b)), g_b)]
    smaa = analyse(bids, rules(price="0", carbon="1"), samples=samples, seed=5)
    expected = phi((math.log(m_b) - math.log(m_a)) / math.hypot(math.log(g_a), math.log(g_b)))
    se = math.sqrt(expected * (1 - expected) / samples)
    assert abs(smaa.pairwise_winning[0, 1] - expected) < 4 * se
    assert smaa.pairwise_winning[0, 1] + smaa.pairwise_winning[1, 0] == pytest.approx(1.0)
    assert smaa.rank_acceptability[0, 0] == pytest.approx(smaa.pairwise_winning[0, 1])
    estimate = smaa.pairwise_winning[0, 1]
    assert math.sqrt(estimate * (1 - estimate) / samples) <= smaa.mc_error <= 0.5 / math.sqrt(samples)


def test_same_seed_same_answer_and_chunking_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    bids = random_bids(9, seed=8)
    r = rules(price="0.5", carbon="0.4", quality="0.1",
              weight_ranges=((D("0.3"), D("0.7")), (D("0.2"), D("0.6")), (D("0"), D("0.2"))))
    first = analyse(bids, r, samples=2_000, seed=42)
    again = analyse(bids, r, samples=2_000, seed=42)
    monkeypatch.setattr(evaluation, "CHUNK_CELLS", 50)  # many small chunks, the same streams
    chunked = analyse(bids, r, samples=2_000, seed=42)
    monkeypatch.setattr(evaluation, "KEEP_CELLS", 0)  # the confidence pass draws everything again
    redrawn = analyse(bids, r, samples=2_000, seed=42)
    other = analyse(bids, r, samples=2_000, seed=43)
    for a in (again, chunked, redrawn):
        np.testing.assert_array_equal(first.rank_acceptability, a.rank_acceptability)
        np.testing.assert_array_equal(first.pairwise_winning, a.pairwise_winning)
        np.testing.assert_allclose(first.central_weights, a.central_weights, rtol=1e-12)
        np.testing.assert_array_equal(first.confidence, a.confidence)
    assert not np.array_equal(first.rank_acceptability, other.rank_acceptability)


def test_degenerate_footprints_reproduce_the_deterministic_ranking() -> None:
    bids = [bid("a", 100, "12"), bid("b", 120, "8"), bid("c", 90, "15"), bid("d", 200, "5")]
    r = rules(price="0.7", carbon="0.3")
    ranked = [x for x in rank_bids(bids, r) if x.eligible]
    smaa = analyse([x.bid for x in ranked], r, samples=500, seed=1)
    np.testing.assert_array_equal(smaa.rank_acceptability, np.eye(4))
    assert smaa.mc_error == 0.0
    np.testing.assert_allclose(evaluation.carbon_scores(np.array([[12.0, 8, 15, 5]]), np.array([100.0, 120, 90, 200]), r),
                               [[5 / 12, 5 / 8, 5 / 15, 1]])


def test_float_benchmark_scores_agree_with_the_exact_ones() -> None:
    thresholds = (D("1.5"), D("2"), D("2"), D("3.25"))
    r = rules(method="benchmark", thresholds=thresholds)
    values = np.linspace(0.5, 4, 141)
    floats = evaluation.carbon_scores(values[None, :], np.ones(len(values)), r)[0]
    exact = [float(evaluation.benchmark_position(Fraction(str(v)), [Fraction(t) for t in thresholds])) for v in values]
    np.testing.assert_allclose(floats, exact, atol=1e-12)


def test_no_eligible_bids_give_an_empty_analysis() -> None:
    smaa = analyse([], rules(), samples=1000, seed=1)
    assert smaa.bid_ids == [] and smaa.rank_acceptability.shape == (0, 0) and smaa.p_first.shape == (0,)


# --- weights ------------------------------------------------------------------------------------


def rejection_reference(ranges: list[tuple[float, float]], n: int) -> np.ndarray:
    """Uniform on the simplex (Dirichlet(1, 1, 1)), kept where every weight is in its range."""
    w = np.random.default_rng(99).dirichlet([1, 1, 1], n)
    keep = np.all([(w[:, j] >= lo) & (w[:, j] <= hi) for j, (lo, hi) in enumerate(ranges)], axis=0)
    return w[keep]


@pytest.mark.parametrize("ranges", [
    [(0.4, 0.8), (0.1, 0.5), (0.0, 0.2)],
    [(0.0, 1.0), (0.0, 1.0), (0.0, 1.0)],
    [(0.5, 0.7), (0.2, 0.45), (0.05, 0.25)],
])
def test_sampled_weights_are_uniform_on_the_restricted_simplex(ranges: list[tuple[float, float]]) -> None:
    sampler = WeightSampler([0.6, 0.3, 0.1], ranges)
    assert sampler.sampled
    w = sampler.draw(np.random.default_rng(1), 200_000)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    for j, (lo, hi) in enumerate(ranges):
        assert w[:, j].min() >= lo - 1e-12 and w[:, j].max() <= hi + 1e-12
    reference = rejection_reference(ranges, 3_000_000)
    assert len(reference) > 20_000
    for j in range(3):
        np.testing.assert_allclose(np.quantile(w[:, j], [0.1, 0.5, 0.9]),
                                   np.quantile(reference[:, j], [0.1, 0.5, 0.9]), atol=0.006)


def test_two_varying_weights_move_along_a_segment() -> None:
    sampler = WeightSampler([0.6, 0.4, 0.0], [(0.5, 0.7), (0.3, 0.6), (0.0, 0.0)])
    w = sampler.draw(np.random.default_rng(2), 50_000)
    np.testing.assert_allclose(w[:, 0] + w[:, 1], 1.0)
    assert (w[:, 2] == 0).all()
    assert w[:, 0].min() == pytest.approx(0.5, abs=1e-3) and w[:, 0].max() == pytest.approx(0.7, abs=1e-3)
    assert abs(w[:, 0].mean() - 0.6) < 0.002  # uniform on [0.5, 0.7]


def test_no_ranges_keep_the_weights() -> None:
    sampler = WeightSampler([0.6, 0.4, 0.0], None)
    assert not sampler.sampled
    np.testing.assert_array_equal(sampler.draw(np.random.default_rng(0), 3), np.tile([0.6, 0.4, 0.0], (3, 1)))


def test_central_weights_and_confidence_match_a_direct_computation() -> None:
    bids = random_bids(6, seed=21)
    ranges = ((D("0.3"), D("0.7")), (D("0.2"), D("0.6")), (D("0"), D("0.2")))
    r = rules(price="0.5", carbon="0.4", quality="0.1", weight_ranges=ranges)
    samples, seed = 4_000, 9
    smaa = analyse(bids, r, samples=samples, seed=seed)
    _, carbon = reference_utilities(bids, r, samples, seed)
    _, weight_seq = np.random.SeedSequence(seed).spawn(2)
    w = WeightSampler([0.5, 0.4, 0.1], [(float(a), float(b)) for a, b in ranges]).draw(
        np.random.Generator(np.random.PCG64(weight_seq)), samples)
    price = np.array([b.price_cents for b in bids], dtype=float)
    p = price.min() / price
    q = np.array([float(b.quality or 0) / 100 for b in bids])
    u = w[:, 0:1] * p + w[:, 1:2] * carbon + w[:, 2:3] * q
    first = u >= u.max(axis=1, keepdims=True)
    np.testing.assert_allclose(smaa.p_first, first.mean(axis=0), atol=1e-12)
    ranks = reference_ranks(u)
    expected_ra = np.stack([(ranks == k + 1).mean(axis=0) for k in range(len(bids))], axis=1)
    np.testing.assert_allclose(smaa.rank_acceptability, expected_ra, atol=1e-12)
    for i in range(len(bids)):
        if not first[:, i].any():
            assert smaa.central_weights[i] != smaa.central_weights[i]  # NaN: never first
            continue
        central = w[first[:, i]].mean(axis=0)
        np.testing.assert_allclose(smaa.central_weights[i], central, rtol=1e-9)
        fixed = central[1] * carbon + (central[0] * p + central[2] * q)
        assert smaa.confidence[i] == pytest.approx((fixed[:, i] >= fixed.max(axis=1)).mean(), abs=1e-12)
    assert smaa.weights_sampled

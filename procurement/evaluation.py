"""Scoring bids: the deterministic ranking (in exact rationals) and the SMAA-2 Monte Carlo analysis.

Pure compute on plain values (no database, no web): the service loads the tender and its bids,
this module scores them, off the event loop.

Scores are per criterion in [0, 1], then weighted: total = w_price·P + w_carbon·C + w_quality·Q.
- P (statutory price score) = lowest eligible price / bid price.
- C by the tender's method, on footprints f per functional unit:
  ``ratio_to_best`` min f / f; ``linear`` (max f − f) / (max f − min f), 1 for all when every f is
  equal; ``benchmark`` 1 at or below the category's lowest threshold, 0 at or above the highest,
  piecewise linear in between, each threshold interval an equal step (with P20..P80: 1, 2/3, 1/3,
  0 at the thresholds); ``monetised`` min a / a with a = price + shadow price × f × quantity / 1000
  (cents per tonne, kilograms), the life-cycle cost scored as a price.
- Q = quality score / 100 (0 when the bid gives none).
Only eligible bids are scored; the best and worst values are those of the eligible bids.

The Monte Carlo analysis redraws every eligible bid's footprint (lognormal: median × gsd^z) and,
given weight ranges, the weights (uniform on the simplex restricted to the ranges), and applies the
same formulas per sample. Randomness: two PCG64 streams spawned from ``SeedSequence(seed)``, one
for footprints (one standard normal per bid per sample, row by row, in ``bid_ids`` order) and one
for weights, so the numbers depend on the seed and the bids only, never on chunking.
Outputs (SMAA-2, Lahdelma & Salminen): rank acceptability b[i, r] and pairwise winning c[i, k]
from ``scoring``; the central weights of a bid, the mean weights over the samples where it ranks
first; its confidence factor, P(first) with the weights fixed at those central weights over the
same footprint draws (with fixed weights: P(first) itself); the Monte Carlo error, the largest
standard error √(p(1 − p) / S) of any of these probabilities.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction

import numpy as np

import scoring

# Samples × bids per chunk of the Monte Carlo (16 MiB of float64 per array); up to KEEP_CELLS the
# carbon scores are kept for the confidence pass, beyond it they are drawn again (the same numbers).
CHUNK_CELLS = 1 << 21
KEEP_CELLS = 1 << 22
# Bids that settle most confidence-factor samples before the full comparison.
STRONG_BIDS = 16


@dataclass(frozen=True)
class BidFacts:
    bid_id: str
    supplier: str
    price_cents: int
    kgco2e: Decimal  # the point value per functional unit (a label's certified value)
    median: Decimal  # the lognormal median the Monte Carlo draws around
    gsd: float
    quality: Decimal | None = None
    label_scheme: str | None = None  # None: no label cited
    label_state: str | None = None  # "active", "revoked" or "expired" (by the deadline)


@dataclass(frozen=True)
class Rules:
    weights: tuple[Decimal, Decimal, Decimal]  # price, carbon, quality
    method: str
    quantity: Decimal = Decimal(1)
    shadow_price_cents_per_tco2e: int | None = None
    thresholds: tuple[Decimal, ...] = ()  # benchmark upper bounds, ascending, per functional unit
    max_kgco2e: Decimal | None = None
    label_required: bool = False
    # (min, max) per criterion (price, carbon, quality); None: the weights are fixed.
    weight_ranges: tuple[tuple[Decimal, Decimal], ...] | None = None


@dataclass(frozen=True)
class Ranked:
    bid: BidFacts
    eligible: bool
    reasons: tuple[str, ...]
    rank: int | None = None
    price_score: Fraction | None = None  # weighted
    carbon_score: Fraction | None = None
    quality_score: Fraction | None = None

    @property
    def total(self) -> Fraction | None:
        if self.price_score is None or self.carbon_score is None or self.quality_score is None:
            return None
        return self.price_score + self.carbon_score + self.quality_score


@dataclass(frozen=True)
class Smaa:
    bid_ids: list[str]
    rank_acceptability: np.ndarray  # N × N
    pairwise_winning: np.ndarray  # N × N
    central_weights: np.ndarray  # N × 3, NaN rows for bids never ranked first
    confidence: np.ndarray  # N, NaN for bids never ranked first
    mc_error: float
    samples: int
    seed: int
    weights_sampled: bool

    @property
    def p_first(self) -> np.ndarray:
        return self.rank_acceptability[:, 0] if len(self.bid_ids) else np.zeros(0)


# --- eligibility --------------------------------------------------------------------------------


def ineligibility(bid: BidFacts, rules: Rules) -> tuple[str, ...]:
    """Reason codes that exclude a bid from scoring (none: eligible)."""
    reasons: list[str] = []
    if rules.max_kgco2e is not None and bid.kgco2e > rules.max_kgco2e:
        reasons.append("footprint_above_limit")
    if bid.label_state == "revoked":
        reasons.append("label_revoked")  # the footprint it rests on is no longer certified
    elif bid.label_state == "expired":
        reasons.append("label_expired")
    if rules.label_required:
        if bid.label_scheme is None:
            reasons.append("label_missing")
        elif bid.label_scheme != "verified":
            reasons.append("label_not_verified")
    return tuple(reasons)


# --- the deterministic ranking (exact) ----------------------------------------------------------


def benchmark_position(value: Fraction, thresholds: Sequence[Fraction]) -> Fraction:
    """1 at or below the lowest threshold, 0 at or above the highest, linear within each interval,
    each interval an equal share."""
    if value <= thresholds[0]:
        return Fraction(1)
    if value >= thresholds[-1]:
        return Fraction(0)
    j = bisect_right(thresholds, value)  # thresholds[j - 1] <= value < thresholds[j]
    low, high = thresholds[j - 1], thresholds[j]
    return 1 - ((j - 1) + (value - low) / (high - low)) / (len(thresholds) - 1)


def exact_carbon_scores(bids: Sequence[BidFacts], rules: Rules) -> list[Fraction]:
    values = [Fraction(b.kgco2e) for b in bids]
    if rules.method == "ratio_to_best":
        best = min(values)
        return [best / v if v > 0 else Fraction(1) for v in values]
    if rules.method == "linear":
        low, high = min(values), max(values)
        return [(high - v) / (high - low) if high > low else Fraction(1) for v in values]
    if rules.method == "benchmark":
        thresholds = [Fraction(t) for t in rules.thresholds]
        return [benchmark_position(v, thresholds) for v in values]
    if rules.method == "monetised":
        shadow = Fraction(rules.shadow_price_cents_per_tco2e or 0) * Fraction(rules.quantity) / 1000
        costs = [b.price_cents + shadow * v for b, v in zip(bids, values, strict=True)]
        best = min(costs)
        return [best / c for c in costs]
    raise ValueError(f"unknown carbon method {rules.method!r}")


def rank_bids(bids: Sequence[BidFacts], rules: Rules) -> list[Ranked]:
    """Eligible bids in rank order (ties: higher total, then lower price, then lower footprint, else
    a shared rank: 1 + the number of bids strictly ahead), then the ineligible ones by id."""
    checked = [(b, ineligibility(b, rules)) for b in bids]
    eligible = [b for b, reasons in checked if not reasons]
    ranked: list[Ranked] = []
    if eligible:
        wp, wc, wq = (Fraction(w) for w in rules.weights)
        best_price = min(b.price_cents for b in eligible)
        carbon = exact_carbon_scores(eligible, rules)
        scored = []
        for bid, c in zip(eligible, carbon, strict=True):
            quality = Fraction(bid.quality) / 100 if bid.quality is not None else Fraction(0)
            scored.append(Ranked(bid=bid, eligible=True, reasons=(), price_score=wp * Fraction(best_price, bid.price_cents),
                                 carbon_score=wc * c, quality_score=wq * quality))

        def key(r: Ranked) -> tuple[Fraction, int, Decimal]:
            return -(r.total or 0), r.bid.price_cents, r.bid.kgco2e

        keys = sorted(key(r) for r in scored)
        ranked = sorted((replace(r, rank=bisect_left(keys, key(r)) + 1) for r in scored),
                        key=lambda r: (r.rank, r.bid.bid_id))
    ranked += [Ranked(bid=b, eligible=False, reasons=reasons)
               for b, reasons in sorted(checked, key=lambda x: x[0].bid_id) if reasons]
    return ranked


# --- the Monte Carlo analysis -------------------------------------------------------------------


def carbon_scores(f: np.ndarray, price_cents: np.ndarray, rules: Rules) -> np.ndarray:
    """Unweighted carbon scores of sampled footprints ``f`` (samples × bids), as the exact ones."""
    if rules.method == "ratio_to_best":
        best = f.min(axis=1, keepdims=True)
        return np.divide(best, f, out=np.ones_like(f), where=f > 0)
    if rules.method == "linear":
        low, high = f.min(axis=1, keepdims=True), f.max(axis=1, keepdims=True)
        span = high - low
        return np.divide(high - f, span, out=np.ones_like(f), where=span > 0)
    if rules.method == "benchmark":
        t = np.array([float(x) for x in rules.thresholds])
        if len(t) == 1:
            return (f <= t[0]).astype(np.float64)
        j = np.clip(np.searchsorted(t, f, side="right"), 1, len(t) - 1)
        low, high = t[j - 1], t[j]
        with np.errstate(divide="ignore", invalid="ignore"):  # only outside the interior, replaced below
            inner = 1.0 - ((j - 1) + (f - low) / (high - low)) / (len(t) - 1)
        return np.where(f <= t[0], 1.0, np.where(f >= t[-1], 0.0, inner))
    if rules.method == "monetised":
        shadow = float(rules.shadow_price_cents_per_tco2e or 0) * float(rules.quantity) / 1000.0
        cost = price_cents + shadow * f
        return cost.min(axis=1, keepdims=True) / cost
    raise ValueError(f"unknown carbon method {rules.method!r}")


class WeightSampler:
    """Weights uniform on {w ≥ 0, Σw = 1, min_j ≤ w_j ≤ max_j}: a point, a segment or a polygon
    (triangulated, a triangle picked by area, then a uniform point in it)."""

    def __init__(self, nominal: Sequence[float], ranges: Sequence[tuple[float, float]] | None) -> None:
        self.nominal = np.asarray(nominal, dtype=np.float64)
        self.triangles = np.zeros((0, 3, 3))
        self.segment: np.ndarray | None = None
        if ranges is None:
            return
        low = np.array([r[0] for r in ranges], dtype=np.float64)
        high = np.array([r[1] for r in ranges], dtype=np.float64)
        free = [j for j in range(3) if high[j] > low[j]]
        if len(free) == 2:
            a, b = free
            rest = 1.0 - sum(self.nominal[j] for j in range(3) if j not in free)
            lo, hi = max(low[a], rest - high[b]), min(high[a], rest - low[b])
            if hi > lo:
                ends = np.tile(self.nominal, (2, 1))
                ends[:, a] = (lo, hi)
                ends[:, b] = rest - ends[:, a]
                self.segment = ends
        elif len(free) == 3:
            self._polygon(low, high)

    def _polygon(self, low: np.ndarray, high: np.ndarray) -> None:
        # In (w0, w1), w2 = 1 − w0 − w1: the box clipped by 1 − high2 ≤ w0 + w1 ≤ 1 − low2.
        poly = [(low[0], low[1]), (high[0], low[1]), (high[0], high[1]), (low[0], high[1])]
        poly = _clip(poly, 1.0, 1.0 - low[2])
        poly = _clip(poly, -1.0, -(1.0 - high[2]))
        points = np.array([(x, y, 1.0 - x - y) for x, y in poly])
        if len(points) >= 3:
            tris = np.stack([np.stack([points[0], points[k], points[k + 1]]) for k in range(1, len(points) - 1)])
            area = np.abs(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])[:, 2]) / 2
            if area.sum() > 1e-12:
                self.triangles, self.cumulative = tris, np.cumsum(area) / area.sum()
                return
        if len(points) >= 2:  # the region is flat: sample along its longest extent
            d = np.linalg.norm(points[:, None] - points[None, :], axis=2)
            i, k = np.unravel_index(np.argmax(d), d.shape)
            if d[i, k] > 1e-12:
                self.segment = points[[i, k]]

    @property
    def sampled(self) -> bool:
        return self.segment is not None or len(self.triangles) > 0

    def draw(self, rng: np.random.Generator, m: int) -> np.ndarray:
        if len(self.triangles):
            r = rng.random((m, 3))
            t = np.minimum(np.searchsorted(self.cumulative, r[:, 0], side="right"), len(self.triangles) - 1)
            r1, r2 = r[:, 1:2], r[:, 2:3]
            flip = (r1 + r2) > 1.0
            r1, r2 = np.where(flip, 1.0 - r1, r1), np.where(flip, 1.0 - r2, r2)
            tri = self.triangles[t]
            w = tri[:, 0] + r1 * (tri[:, 1] - tri[:, 0]) + r2 * (tri[:, 2] - tri[:, 0])
        elif self.segment is not None:
            u = rng.random((m, 1))
            w = self.segment[0] + u * (self.segment[1] - self.segment[0])
        else:
            return np.tile(self.nominal, (m, 1))
        return np.clip(w, 0.0, 1.0)  # rounding can leave a vertex a hair outside


def _clip(poly: list[tuple[float, float]], sign: float, bound: float) -> list[tuple[float, float]]:
    """Sutherland–Hodgman: keep the part of ``poly`` where sign·(x + y) ≤ bound."""
    out: list[tuple[float, float]] = []
    for k, p in enumerate(poly):
        q = poly[(k + 1) % len(poly)]
        fp, fq = sign * (p[0] + p[1]) - bound, sign * (q[0] + q[1]) - bound
        if fp <= 0:
            out.append(p)
        if (fp < 0 < fq) or (fq < 0 < fp):
            t = fp / (fp - fq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def _counts(fraction: np.ndarray, m: int) -> np.ndarray:
    return np.rint(fraction * m)


def _confidence_hits(chunks: Iterator[tuple[np.ndarray, np.ndarray | None]], weights: np.ndarray,
                     candidates: np.ndarray, strong: np.ndarray, price_score: np.ndarray,
                     quality: np.ndarray) -> np.ndarray:
    """For each candidate i = candidates[j], in how many samples it ranks first with the weights
    fixed at ``weights[j]`` (nobody's utility strictly greater). A sample in which one of the
    ``strong`` bids is ahead is settled by that alone; only the rest are compared with every bid.
    Every utility is computed by the same expression, so the comparisons are exact."""
    b, n = len(candidates), len(price_score)
    base = weights[:, 0:1] * price_score + weights[:, 2:3] * quality  # candidates × bids
    carbon = weights[:, 1]
    rows = max(1, CHUNK_CELLS // (8 * n))
    hits = np.zeros(b)
    for c, _ in chunks:
        own = c[:, candidates] * carbon + base[np.arange(b), candidates]  # samples × candidates
        ahead = np.zeros(own.shape, dtype=bool)
        for k in strong:
            ahead |= c[:, k:k + 1] * carbon + base[:, k] > own
        sample, which = np.nonzero(~ahead)
        for start in range(0, len(sample), rows):
            s, j = sample[start:start + rows], which[start:start + rows]
            u = c[s] * carbon[j, None] + base[j]
            hits += np.bincount(j, weights=u.max(axis=1) <= own[s, j], minlength=b)
    return hits


def analyse(bids: Sequence[BidFacts], rules: Rules, *, samples: int, seed: int) -> Smaa:
    """SMAA-2 over ``bids`` (the eligible ones, in ranking order)."""
    n = len(bids)
    nominal = [float(w) for w in rules.weights]
    ranges = None if rules.weight_ranges is None else [(float(a), float(b)) for a, b in rules.weight_ranges]
    sampler = WeightSampler(nominal, ranges)
    if n == 0:
        empty = np.zeros((0, 0))
        return Smaa(bid_ids=[], rank_acceptability=empty, pairwise_winning=empty, central_weights=np.zeros((0, 3)),
                    confidence=np.zeros(0), mc_error=0.0, samples=samples, seed=seed,
                    weights_sampled=sampler.sampled)
    price = np.array([b.price_cents for b in bids], dtype=np.float64)
    price_score = price.min() / price
    quality = np.array([0.0 if b.quality is None else float(b.quality) / 100 for b in bids])
    median = np.array([float(b.median) for b in bids])
    sigma = np.log(np.array([b.gsd for b in bids], dtype=np.float64))
    footprint_seq, weight_seq = np.random.SeedSequence(seed).spawn(2)

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """(carbon scores, sampled weights or None) per chunk of samples; the same on every pass."""
        draws = np.random.Generator(np.random.PCG64(footprint_seq))
        weights = np.random.Generator(np.random.PCG64(weight_seq))
        rows = max(1, CHUNK_CELLS // n)
        for start in range(0, samples, rows):
            m = min(rows, samples - start)
            f = draws.standard_normal((m, n))
            f *= sigma  # in place: fresh arrays of this size cost page faults
            np.exp(f, out=f)
            f *= median
            yield carbon_scores(f, price, rules), (sampler.draw(weights, m) if sampler.sampled else None)

    def utilities(c: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        if w is None:
            return nominal[1] * c + (nominal[0] * price_score + nominal[2] * quality)
        return w[:, 0:1] * price_score + w[:, 1:2] * c + w[:, 2:3] * quality

    ra = np.zeros((n, n))
    pw = np.zeros((n, n))
    weight_sums = np.zeros((n, 3))
    first_seen = np.zeros(n)
    # A small analysis keeps its carbon scores for the confidence pass instead of drawing them again.
    kept: list[tuple[np.ndarray, np.ndarray | None]] | None = [] if samples * n <= KEEP_CELLS else None
    for c, w in chunks():
        if kept is not None:
            kept.append((c, w))
        u = utilities(c, w)
        m = len(u)
        ra += _counts(scoring.rank_acceptability(u), m)
        pw += _counts(scoring.pairwise_winning(u), m)
        if w is not None:
            first = u >= u.max(axis=1, keepdims=True)  # rank 1: nobody strictly ahead
            weight_sums += first.T.astype(np.float64) @ w
            first_seen += first.sum(axis=0)
    first_counts = ra[:, 0].copy()
    ever_first = first_counts > 0
    central = np.full((n, 3), np.nan)
    confidence = np.full(n, np.nan)
    if not sampler.sampled:  # fixed weights: the central weights are the weights, confidence is P(first)
        central[ever_first] = nominal
        confidence[ever_first] = first_counts[ever_first] / samples
    else:
        candidates = np.nonzero(first_seen > 0)[0]
        central[candidates] = weight_sums[candidates] / first_seen[candidates, None]
        strong = np.argsort(-first_counts, kind="stable")[:STRONG_BIDS]
        hits = _confidence_hits(iter(kept) if kept is not None else chunks(), central[candidates], candidates, strong, price_score, quality)
        confidence[candidates] = hits / samples
    ra /= samples
    pw /= samples
    probabilities = np.concatenate([ra.ravel(), pw.ravel(), confidence[~np.isnan(confidence)]])
    mc_error = float(np.sqrt((probabilities * (1 - probabilities)).max() / samples))
    return Smaa(bid_ids=[b.bid_id for b in bids], rank_acceptability=ra, pairwise_winning=pw,
                central_weights=central, confidence=confidence, mc_error=mc_error, samples=samples, seed=seed,
                weights_sampled=sampler.sampled)


def evaluate(bids: Sequence[BidFacts], rules: Rules, *, samples: int, seed: int) -> tuple[list[Ranked], Smaa]:
    """The ranking, then the analysis of its eligible bids in ranking order."""
    ranked = rank_bids(bids, rules)
    analysis = analyse([r.bid for r in ranked if r.eligible], rules, samples=samples, seed=seed)
    return ranked, analysis

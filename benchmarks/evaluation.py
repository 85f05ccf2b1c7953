"""Tender evaluation: 200 bids at 10,000 samples must answer in under a second.

    python benchmarks/evaluation.py [--bids 200] [--samples 10000] [--repeat 5] [--no-http]

Two levels, each with fixed weights and with weight ranges (which add central weights sampled
per bid and a second pass for the confidence factors):
- service: ``procurement.evaluation.evaluate`` (ranking + SMAA-2) against a straightforward NumPy
  implementation of the same analysis on the same draws (ranks by sorting each sample, pairwise
  winning by broadcasting), timed in the same run; the ratio is the speed-up.
- HTTP: ``POST /v1/tenders/{id}/evaluation`` through the whole app (auth, SQLite, JSON, storing
  the result for the reports), the request an officer makes, against the one-second budget.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from _timing import times

import scoring
from procurement import evaluation
from procurement.evaluation import BidFacts, Rules

BUDGET_S = 1.0
RANGES = ((Decimal("0.4"), Decimal("0.8")), (Decimal("0.2"), Decimal("0.6")), (Decimal("0"), Decimal("0")))


def bids(n: int, seed: int = 0) -> list[BidFacts]:
    """Competitive bids: prices within ±10 %, footprints 1.6-2.4 t per unit, gsd 1.05-1.5."""
    rng = np.random.default_rng(seed)
    return [BidFacts(bid_id=f"{i:04d}", supplier=f"s{i}", price_cents=int(rng.integers(9_000_000, 11_000_000)),
                     kgco2e=Decimal(f"{rng.uniform(1600, 2400):.1f}"), median=Decimal(f"{rng.uniform(1600, 2400):.1f}"),
                     gsd=float(rng.uniform(1.05, 1.5))) for i in range(n)]


def numpy_analysis(facts: list[BidFacts], rules: Rules, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank acceptability and pairwise winning the obvious way, on the same draws."""
    n = len(facts)
    footprint_seq, weight_seq = np.random.SeedSequence(seed).spawn(2)
    z = np.random.Generator(np.random.PCG64(footprint_seq)).standard_normal((samples, n))
    median = np.array([float(b.median) for b in facts])
    f = median * np.array([b.gsd for b in facts]) ** z
    price = np.array([b.price_cents for b in facts], dtype=float)
    c = f.min(axis=1, keepdims=True) / f
    sampler = evaluation.WeightSampler([float(w) for w in rules.weights],
                                       None if rules.weight_ranges is None else
                                       [(float(a), float(b)) for a, b in rules.weight_ranges])
    if sampler.sampled:
        w = sampler.draw(np.random.Generator(np.random.PCG64(weight_seq)), samples)
        u = w[:, 0:1] * (price.min() / price) + w[:, 1:2] * c
    else:
        u = float(rules.weights[0]) * (price.min() / price) + float(rules.weights[1]) * c
    ordered = np.sort(u, axis=1)
    ranks = np.empty((samples, n), dtype=np.int64)
    for s in range(samples):  # 1 + the number strictly greater
        ranks[s] = n - np.searchsorted(ordered[s], u[s], side="right") + 1
    ra = np.zeros((n, n))
    np.add.at(ra, (np.tile(np.arange(n), samples), ranks.ravel() - 1), 1)
    pw = np.zeros((n, n))
    for start in range(0, samples, 100):
        block = u[start:start + 100]
        pw += (block[:, :, None] > block[:, None, :]).sum(axis=0)
    return ra / samples, pw / samples


def service_level(n: int, samples: int, repeat: int) -> None:
    facts = bids(n)
    print(f"service level: procurement.evaluation.evaluate, {n} bids x {samples} samples (best / median of {repeat})")
    print(f"{'weights':>8} {'ours s':>8} {'median':>8} {'numpy s':>8} {'speed-up':>9} {'first>0':>8}")
    for name, ranges in (("fixed", None), ("ranges", RANGES)):
        rules = Rules(weights=(Decimal("0.6"), Decimal("0.4"), Decimal(0)), method="ratio_to_best",
                      weight_ranges=ranges)
        ranked, smaa = evaluation.evaluate(facts, rules, samples=samples, seed=7)
        in_rank_order = [r.bid for r in ranked]  # the analysis draws in ranking order
        ra, pw = numpy_analysis(in_rank_order, rules, samples, 7)
        assert np.allclose(smaa.rank_acceptability, ra) and np.allclose(smaa.pairwise_winning, pw), \
            "the baseline must compute the same numbers"
        ours = times(lambda rules=rules: evaluation.evaluate(facts, rules, samples=samples, seed=7), repeat=repeat)
        base = times(lambda rules=rules, bids=in_rank_order: numpy_analysis(bids, rules, samples, 7),
                     repeat=max(1, repeat // 2))
        print(f"{name:>8} {min(ours):>8.3f} {statistics.median(ours):>8.3f} {min(base):>8.3f} "
              f"{min(base) / min(ours):>8.1f}x {int((smaa.p_first > 0).sum()):>8}")


def http_level(n: int, samples: int, repeat: int) -> None:
    from litestar.testing import TestClient

    import procurement.service
    from carbonpuhui.app import create_app
    from carbonpuhui.auth.tokens import mint_token
    from carbonpuhui.db.migrate import upgrade
    from carbonpuhui.settings import load_settings

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    now = datetime.now(UTC)
    clock = {"now": now}
    procurement.service.utcnow = lambda: clock["now"]  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({}, data_dir=Path(tmp), log_json=False, compute_rate_limit_per_minute=10_000)
        upgrade(settings.effective_database_url)

        def headers(role: str, org: str) -> dict[str, str]:
            token = mint_token(settings.key_path, issuer=settings.token_issuer, audience=settings.token_audience,
                               sub=f"{org}-user", roles=[role], org=org, ttl=3600)
            return {"Authorization": f"Bearer {token}"}

        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            print(f"HTTP level: POST /v1/tenders/{{id}}/evaluation on SQLite, {n} bids x {samples} samples")
            print(f"{'weights':>8} {'best s':>8} {'median':>8} {'worst':>8} {'budget':>7} {'response':>9}")
            for name, ranges in (("fixed", None), ("ranges", {"price": {"min": 0.4, "max": 0.8},
                                                               "carbon": {"min": 0.2, "max": 0.6}})):
                clock["now"] = now
                agency = headers("officer", "agency")
                tender = client.post("/v1/tenders", headers=agency, json={
                    "title": "benchmark", "category": "steel.hot_rolled_coil", "functional_unit": "tonne",
                    "quantity": 500, "deadline": (now + timedelta(days=1)).isoformat(),
                    "weights": {"price": 0.6, "carbon": 0.4}, "carbon_method": "ratio_to_best",
                    "weight_ranges": ranges}).json()
                for b in bids(n):
                    response = client.post(f"/v1/tenders/{tender['id']}/bids", headers=headers("merchant", b.supplier),
                                           json={"price_cents": b.price_cents, "footprint": {
                                               "kgco2e_per_unit": str(b.median), "gsd": b.gsd}})
                    assert response.status_code == 201, response.text
                clock["now"] = now + timedelta(days=2)
                url = f"/v1/tenders/{tender['id']}/evaluation"
                body = {"samples": samples, "seed": 7}
                first = client.post(url, headers=agency, json=body)
                assert first.status_code == 200, first.text
                took = times(lambda url=url, body=body, h=agency: client.post(url, headers=h, json=body),
                             repeat=repeat)
                verdict = "ok" if statistics.median(took) < BUDGET_S else "OVER"
                print(f"{name:>8} {min(took):>8.3f} {statistics.median(took):>8.3f} {max(took):>8.3f} "
                      f"{verdict:>7} {len(first.content) / 1e6:>7.2f}MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bids", type=int, default=200)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()
    scoring.warm_up()
    service_level(args.bids, args.samples, args.repeat)
    if not args.no_http:
        http_level(args.bids, args.samples, args.repeat)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

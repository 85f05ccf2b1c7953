"""Purchase claims per second on PostgreSQL as a ratio to pgbench's TPC-B-like transactions per second
on the same server, measured in the same run.

    python benchmarks/claims.py [--seconds 10] [--clients 16] [--products 50] [--workers 2]
                                [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
                                [--redis redis://127.0.0.1:6379/0] [--scale 1]

First pgbench (``pgbench -i -s SCALE``, then ``-c CLIENTS -j 2 -T SECONDS``) on a scratch database; then
``carbonpuhui serve --workers WORKERS`` on a second scratch database and Redis, seeded through the API
with labelled products and a merchant's receipt key, and CLIENTS concurrent clients posting distinct
signed receipts (signed before the clock starts) for SECONDS. A claim is the platform's heaviest
write: signature check, receipt key lookup, locked account, natural-key insert, label and benchmark
reads, a two-leg transfer, the balance update, the leaderboard bump after commit. Both loads run on
this machine, as does the HTTP client, so the ratio is of one box's capacity for each. Ends with
``carbonpuhui ledger check`` (and fails unless it passes and the ledger holds exactly the claims that
got a 201); the scratch databases and Redis keys are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from pathlib import Path

import httpx
from _servers import (
    admin,
    clean_redis,
    cpu_seconds,
    free_port,
    percentile,
    server_version,
    start,
    stop,
    wait_ready,
)
from sqlalchemy.engine import URL, make_url

from carbonpuhui.auth.tokens import mint_token
from carbonpuhui.credits.signing import generate_private_jwk, sign
from carbonpuhui.db.engine import normalise_url
from carbonpuhui.db.migrate import upgrade
from carbonpuhui.settings import load_settings

CATEGORY = "bench.steel"


# --- pgbench ----------------------------------------------------------------------------------------


def find_pgbench() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"),
                        key=lambda p: int(re.search(r"/(\d+)/bin/", p).group(1)))  # type: ignore[union-attr]
    if not candidates:
        raise SystemExit("needs pgbench (Debian: postgresql-contrib / postgresql-client)")
    return candidates[-1]


def pgbench(binary: str, url: URL, clients: int, seconds: int, scale: int, work: Path) -> dict[str, float]:
    env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
    conn = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    subprocess.run([binary, *conn, "-i", "-s", str(scale), "-q", url.database or ""], env=env, check=True,
                   capture_output=True, text=True)
    prefix = work / "pgbench"
    out = subprocess.run([binary, *conn, "-c", str(clients), "-j", "2", "-T", str(seconds), "-l",
                          f"--log-prefix={prefix}", url.database or ""], env=env, check=True, capture_output=True,
                         text=True).stdout
    # "tps = 1234.5 (without initial connection time)" (PostgreSQL 14+), "(excluding connections
    # establishing)" before: either way the figure without connecting, as our clients keep theirs.
    found = (re.search(r"tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)",
                       out) or re.search(r"tps = ([\d.]+)", out))
    if found is None:
        raise SystemExit(f"no tps in pgbench's output:\n{out}")
    failed = re.search(r"number of failed transactions: (\d+)", out)
    # Per-transaction log lines: client_id transaction_no latency_us script_no epoch epoch_us.
    latencies = sorted(int(line.split()[2]) / 1000 for path in glob.glob(f"{prefix}.*")
                       for line in Path(path).read_text().splitlines() if line.strip())
    return {"tps": float(found.group(1)), "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
            "errors": float(failed.group(1)) if failed else 0.0, "count": float(len(latencies))}


# --- the platform -----------------------------------------------------------------------------------


class Actors:
    def __init__(self, env: dict[str, str]) -> None:
        self.settings = load_settings(env)

    def __call__(self, role: str, sub: str, org: str | None = None) -> dict[str, str]:
        s = self.settings
        token = mint_token(s.key_path, issuer=s.token_issuer, audience=s.token_audience, sub=sub, roles=[role],
                           org=org, ttl=3600)
        return {"Authorization": f"Bearer {token}"}


def gtin13(i: int) -> str:
    from stdnum import ean

    body = f"69{i:010d}"
    return body + ean.calc_check_digit(body)


async def seed(base: str, auth: Actors, products: int) -> tuple[list[str], dict[str, str], str]:
    """Through the API: a benchmark, labelled products, the shop's receipt key (its private JWK, kid)."""
    admin_, owner, verifier = auth("admin", "bench"), auth("merchant", "bench", "bench-steel"), \
        auth("verifier", "bench", "bench-cb")
    shop = auth("merchant", "till", "bench-shop")
    codes: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        def ok(r: httpx.Response, status: int = 200) -> dict:
            if r.status_code != status:
                raise SystemExit(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")
            return r.json()

        ok(await client.put(f"/v1/benchmarks/{CATEGORY}", headers=admin_, json={
            "method": "fixed", "thresholds": ["1", "2", "3", "4"], "baseline": "6", "declared_unit": "kilogram",
            "uncertainty_penalty": "0"}))
        semaphore = asyncio.Semaphore(4)

        async def one(i: int) -> None:
            code = gtin13(i)
            async with semaphore:
                ok(await client.post("/v1/merchant/products", headers=owner, json={
                    "gtin": code, "names": {"zh-Hans": f"钢卷 {i}", "zh-Hant": f"鋼卷 {i}", "en": f"Coil {i}"},
                    "category": CATEGORY, "declared_unit": "kilogram", "declared_units_per_item": "0.5"}), 201)
                ok(await client.put(f"/v1/merchant/products/{code}/inventory", headers=owner, json={"lines": [
                    {"stage": "production", "description": "measured", "quantity": "1", "unit": "kg",
                     "direct_kgco2e": f"{1 + (i % 40) / 10:.1f}", "primary": True}]}))
                application = ok(await client.post(f"/v1/merchant/products/{code}/label-applications",
                                                   headers=owner, json={"certification_body": "bench-cb"}), 201)
                ok(await client.post(f"/v1/certification/applications/{application['id']}/decision",
                                     headers=verifier, json={"decision": "approve", "valid_until": "2030-12-31"}))
                codes.append(code)

        await asyncio.gather(*(one(i) for i in range(products)))
        private = generate_private_jwk("OKP")
        kid = ok(await client.post("/v1/merchant/receipt-keys", headers=shop,
                                   json={"jwk": {k: v for k, v in private.items() if k != "d"}}), 201)["kid"]
    return codes, private, kid


def presign(count: int, codes: list[str], private: dict[str, str], kid: str, seed_: int) -> deque[str]:
    rng = random.Random(seed_)
    now = int(time.time())
    out: deque[str] = deque()
    for _ in range(count):
        items = [{"gtin": g, "qty": rng.randint(1, 3)} for g in rng.sample(codes, rng.randint(1, 3))]
        out.append(sign({"iss": "bench-shop", "jti": uuid.uuid4().hex, "iat": now, "items": items}, private, kid))
    return out


async def drive(base: str, receipts: deque[str], consumers: list[list[dict[str, str]]], seconds: int,
                server_group: int) -> dict[str, float]:
    """len(consumers) clients, each posting one claim after another (its own consumers in turn) until
    the time is up or the signed receipts run out."""
    clients = len(consumers)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    latencies: list[float] = []
    outcomes: Counter[int] = Counter()
    warm: Counter[int] = Counter()
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        async def post(headers: dict[str, str], tally: Counter[int]) -> float:
            receipt = receipts.popleft()
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/credits/purchases", json={"receipt": receipt}, headers=headers)
                tally[r.status_code] += 1
            except httpx.HTTPError:
                tally[0] += 1
            return time.perf_counter() - t0

        # Untimed: every connection opened and every worker's caches warm once.
        await asyncio.gather(*(post(mine[0], warm) for mine in consumers for _ in range(2)))
        server_cpu, client_cpu, load = cpu_seconds(server_group), time.process_time(), os.getloadavg()[0]
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(mine: list[dict[str, str]]) -> None:
            n = 0
            while time.perf_counter() < deadline and receipts:
                latencies.append(await post(mine[n % len(mine)], outcomes))
                n += 1

        await asyncio.gather(*(worker(mine) for mine in consumers))
        elapsed = time.perf_counter() - started
        server_cpu, client_cpu = cpu_seconds(server_group) - server_cpu, time.process_time() - client_cpu
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {"tps": outcomes[201] / elapsed, "p50": percentile(ms, 50), "p99": percentile(ms, 99),
            "errors": float(sum(n for status, n in outcomes.items() if status != 201)),
            "count": float(outcomes[201]), "elapsed": elapsed, "created": float(outcomes[201] + warm[201]),
            "warm_errors": float(sum(n for status, n in warm.items() if status != 201)),
            "ran_out": float(not receipts), "server_cpu": server_cpu, "client_cpu": client_cpu,
            "load": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="each load's duration")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (pgbench -c and ours)")
    parser.add_argument("--products", type=int, default=50, help="labelled products receipts draw from")
    parser.add_argument("--workers", type=int, default=2, help="carbonpuhui serve --workers")
    parser.add_argument("--database-url", default=os.environ.get(
        "CARBONPUHUI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server (any database on it) where scratch databases may be created")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the platform's Redis")
    parser.add_argument("--receipts", type=int, default=0,
                        help="receipts signed up front (default: 600 per second of load, plus the warm-up)")
    parser.add_argument("--scale", type=int, default=1,
                        help="pgbench -i -s (at 1, one branch row: its clients queue on it, as claims do not)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    binary = find_pgbench()
    server = make_url(normalise_url(args.database_url))
    tag = f"cpb_claims_{os.getpid()}"
    bench_db, app_db = server.set(database=f"{tag}_pgbench"), server.set(database=f"{tag}_app")
    namespace = f"bench-claims-{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="cpb-claims-"))
    created: list[str] = []
    platform: subprocess.Popen[bytes] | None = None
    try:
        version = server_version(server)
        for url in (bench_db, app_db):
            admin(server, f'CREATE DATABASE "{url.database}"')
            created.append(url.database or "")
        pg = pgbench(binary, bench_db, args.clients, args.seconds, args.scale, work)

        upgrade(app_db.render_as_string(hide_password=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONPUHUI_")}
        env.update(CARBONPUHUI_DATA_DIR=str(work / "data"),
                   CARBONPUHUI_DATABASE_URL=app_db.render_as_string(hide_password=False),
                   CARBONPUHUI_REDIS_URL=args.redis, CARBONPUHUI_REDIS_NAMESPACE=namespace,
                   CARBONPUHUI_LOG_JSON="true", CARBONPUHUI_PUBLIC_RATE_LIMIT_PER_MINUTE="100000000",
                   CARBONPUHUI_COMPUTE_RATE_LIMIT_PER_MINUTE="100000000")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = work / "platform.log"
        platform = start([sys.executable, "-m", "carbonpuhui.cli", "serve", "--port", str(port), "--workers",
                          str(args.workers)], env, log)
        wait_ready(f"{base}/readyz", platform, log)
        auth = Actors(env)
        t0 = time.perf_counter()
        codes, private, kid = asyncio.run(seed(base, auth, args.products))
        consumers = [[auth("consumer", f"shopper-{k + j * args.clients}") for j in range(4)]
                     for k in range(args.clients)]
        count = args.receipts or args.seconds * 600 + 2 * args.clients
        receipts = presign(count, codes, private, kid, args.seed)
        print(f"seeded {len(codes)} labelled products and signed {count:,} receipts in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        ours = asyncio.run(drive(base, receipts, consumers, args.seconds, platform.pid))

        checked = subprocess.run([sys.executable, "-m", "carbonpuhui.cli", "ledger", "check"], env=env,
                                 capture_output=True, text=True)
        stop(platform)
        platform = None
    finally:
        if platform is not None:
            stop(platform)
        for name in created:
            admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        try:
            clean_redis(args.redis, namespace)
        except Exception as exc:  # noqa: BLE001 - a benchmark's leftovers expire with the boards
            print(f"Redis keys {namespace}:* not removed: {exc!r}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)

    print(f"PostgreSQL {version} at {server.host}:{server.port or 5432}, {os.cpu_count()} CPUs; "
          f"{args.clients} clients for {args.seconds} s each; carbonpuhui serve --workers {args.workers} "
          f"on Redis, the HTTP client on the same machine")
    print(f"{'workload':<44} {'tx/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    print(f"{f'pgbench TPC-B-like (scale {args.scale}, -j 2)':<44} {pg['tps']:>9.1f} {pg['p50']:>8.2f} {pg['p99']:>8.2f} "
          f"{pg['errors']:>7.0f}")
    print(f"{'POST /v1/credits/purchases (1-3 items)':<44} {ours['tps']:>9.1f} {ours['p50']:>8.2f} "
          f"{ours['p99']:>8.2f} {ours['errors']:>7.0f}")
    print(f"ratio claims/s / pgbench tps: {ours['tps'] / pg['tps']:.2f}")
    per = max(ours["count"] + ours["errors"], 1)
    print(f"CPU per claim: server {ours['server_cpu'] / per * 1000:.1f} ms (all workers), HTTP client "
          f"{ours['client_cpu'] / per * 1000:.1f} ms; 1-minute load average {ours['load']:.1f} as the claims "
          f"began (what else this machine was running shows there)")
    if ours["ran_out"]:
        print(f"(the signed receipts ran out after {ours['elapsed']:.1f} s: raise --receipts)")
    report = json.loads(checked.stdout) if checked.stdout.strip().startswith("{") else {}
    print(f"ledger check: exit {checked.returncode}, {json.dumps(report)}")
    if checked.returncode != 0:
        raise SystemExit(f"ledger check failed:\n{checked.stderr}")
    if report.get("claims") != ours["created"]:
        raise SystemExit(f"the ledger holds {report.get('claims')} claims, {ours['created']:.0f} were answered 201")
    if ours["warm_errors"]:
        print(f"warm-up errors: {ours['warm_errors']:.0f}")


if __name__ == "__main__":
    main()

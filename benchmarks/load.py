"""The platform under a bounded mix of its busiest requests on demo-sized data (PostgreSQL + Redis),
with label lookups as a ratio to a bare Litestar JSON route served the same way, in the same run.

    python benchmarks/load.py [--seconds 20] [--clients 16] [--workers 2] [--products 100000]
                              [--people 10000] [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
                              [--redis redis://127.0.0.1:6379/0] [--json FILE] [--seed 1]

``carbonpuhui serve --workers WORKERS`` on a scratch database and its own Redis key namespace. The
API creates what the server must (a category benchmark, 40 labelled template products through
inventory, application and approval, a shop's receipt key, a tender with 20 sealed bids); the rest is
written straight into the tables (``_seed``: COPY in chunks): PRODUCTS labelled products cloned
from the templates and PEOPLE people, each with an account and one earlier purchase claim. Receipts
are signed and tokens minted before the clock starts. A bare Litestar app (one constant route
returning a product view's JSON) runs under uvicorn with the same worker count and settings.

A separate load-generator process (asyncio + httpx, CLIENTS keep-alive clients) then runs, each
phase SECONDS long after a short untimed warm-up: the bare route alone, label lookups alone
(``GET /v1/products/{gtin}``, random among all products: the shared cache starts cold, as after a
deploy), and the mix (``MIX``: lookups, purchase claims with distinct signed receipts and wallet
reads for random people, unattested walk/bike trips at distinct times per person, and now and then
the agency officer's ``POST /v1/tenders/{id}/evaluation``). Prints per phase and route the requests,
throughput, p50 and p99 latency and the non-success statuses; the CPU the servers and the generator
used; the sequential scans PostgreSQL counted on the scratch database's tables
(``pg_stat_user_tables``: a table read end to end per request shows there); the server log's
errors. Ends with ``carbonpuhui ledger check`` and fails (exit 1) unless it passes and the ledger
holds exactly the seeded claims plus one per 201 (purchases and trips). The scratch database and
the Redis keys are removed whatever happens. ``--json FILE`` writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from _seed import clone_labelled, people
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
from claims import CATEGORY, Actors, gtin13, presign
from claims import seed as seed_templates
from sqlalchemy.engine import make_url

from carbonpuhui.db.engine import normalise_url
from carbonpuhui.db.migrate import upgrade

TEMPLATES = 40  # labelled through the API (claims.seed): footprints 1.0 .. 4.9 kg against a baseline of 6
BIDS = 20
SAMPLES = 10_000  # the evaluation's Monte Carlo samples (the API's default)
WARM_SECONDS = 3
# Relative weights of the mixed phase: mostly reads, as phones scanning labels and opening wallets are.
MIX = {"lookup": 60, "wallet": 15, "purchase": 15, "trip": 9.5, "evaluation": 0.5}
ROUTES = {"bare": "GET bare Litestar JSON route", "lookup": "GET /v1/products/{gtin}",
          "wallet": "GET /v1/wallet", "purchase": "POST /v1/credits/purchases",
          "trip": "POST /v1/credits/trips (walk/bike)", "evaluation": "POST /v1/tenders/{id}/evaluation"}
SUCCESS = {"bare": 200, "lookup": 200, "wallet": 200, "purchase": 201, "trip": 201, "evaluation": 200}

# A constant product view on the same uvicorn settings as `carbonpuhui serve` (label_lookup.BARE_APP
# passes the app object to uvicorn.run, which cannot start several workers: this one is imported by name).
BARE_APP = textwrap.dedent('''
    import json, os

    from litestar import Litestar, get

    BODY = json.loads(os.environ["BENCH_BARE_BODY"])

    @get("/v1/products/{gtin:str}")
    async def product(gtin: str) -> dict:
        return BODY

    app = Litestar([product])
''')


# --- seeding through the API ------------------------------------------------------------------------


def ok(r: httpx.Response, status: int = 200) -> Any:
    if r.status_code != status:
        raise SystemExit(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:2000]}")
    return r.json()


async def tender(base: str, auth: Actors, bids: int, deadline: datetime) -> str:
    """A tender on the benchmark category with ``bids`` sealed bids (declared footprints), due at ``deadline``."""
    officer = auth("officer", "bench-officer", "bench-agency")
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        tender_id = ok(await client.post("/v1/tenders", headers=officer, json={
            "title": "Steel coil, load benchmark", "category": CATEGORY, "functional_unit": "kilogram",
            "quantity": "100000", "deadline": deadline.isoformat(),
            "weights": {"price": 0.6, "carbon": 0.4, "quality": 0}, "carbon_method": "ratio_to_best"}), 201)["id"]
        rng = random.Random(7)
        for i in range(bids):
            ok(await client.post(f"/v1/tenders/{tender_id}/bids", headers=auth("merchant", f"bidder-{i}", f"supplier-{i}"),
                                 json={"price_cents": rng.randint(9_000_000, 11_000_000), "footprint": {
                                     "kgco2e_per_unit": f"{rng.uniform(1.6, 2.4):.2f}",
                                     "gsd": round(rng.uniform(1.05, 1.5), 2)}}), 201)
    return tender_id


# --- the load generator (a separate process) --------------------------------------------------------


async def scans(conn: asyncpg.Connection) -> dict[str, list[int]]:
    """Per table of the scratch database: sequential scans, rows they read, index scans (so far)."""
    return {r["relname"]: [r["seq_scan"], r["seq_tup_read"], r["idx_scan"]] for r in await conn.fetch(
        "SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0) AS idx_scan FROM pg_stat_user_tables")}


class Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.samples: dict[int, str] = {}  # one body per unexpected status, for the report


async def _phase(plan: dict[str, Any], weights: dict[str, float], seconds: float, state: dict[str, Any],
                 platform: httpx.AsyncClient, bare: httpx.AsyncClient) -> dict[str, Any]:
    tallies = {route: Tally() for route in weights}
    names, shares = list(weights), list(weights.values())
    receipts: list[str] = state["receipts"]
    tokens: list[str] = plan["tokens"]
    gtins: list[str] = plan["gtins"]
    officer = {"Authorization": plan["officer"]}
    evaluation = f"/v1/tenders/{plan['tender']}/evaluation"

    def trip(rng: random.Random, person: int) -> dict[str, Any]:
        # Trip j of a person started 3 h before trip j-1: never overlapping, all within the last 30 days.
        slot = state["trips"].get(person, 0)
        state["trips"][person] = slot + 1
        started = state["epoch"] - timedelta(hours=3 * slot)
        walk = rng.random() < 0.5
        return {"mode": "walk" if walk else "bike", "distance_km": "1.5" if walk else "5",
                "started_at": started.isoformat(), "ended_at": (started + timedelta(minutes=20)).isoformat(),
                "attestation": None}

    async def one(rng: random.Random, route: str) -> None:
        person = rng.randrange(len(tokens))
        consumer = {"Authorization": tokens[person]}
        if route == "purchase" and not receipts:
            state["ran_out"] = True
            route = "lookup" if "lookup" in tallies else names[0]
        t0 = time.perf_counter()
        try:
            if route == "bare":
                r = await bare.get(f"/v1/products/{rng.choice(gtins)}")
            elif route == "lookup":
                r = await platform.get(f"/v1/products/{rng.choice(gtins)}")
            elif route == "wallet":
                r = await platform.get("/v1/wallet", headers=consumer)
            elif route == "purchase":
                r = await platform.post("/v1/credits/purchases", headers=consumer,
                                        json={"receipt": receipts.pop()})
            elif route == "trip":
                r = await platform.post("/v1/credits/trips", headers=consumer, json=trip(rng, person))
            else:
                r = await platform.post(evaluation, headers=officer,
                                        json={"samples": SAMPLES, "seed": rng.randrange(2**31)})
            status = r.status_code
            if status != SUCCESS[route]:
                tallies.setdefault(route, Tally()).samples.setdefault(status, r.text[:300])
        except httpx.HTTPError as exc:
            status = 0
            tallies.setdefault(route, Tally()).samples.setdefault(0, repr(exc)[:300])
        tally = tallies.setdefault(route, Tally())
        tally.latencies.append(time.perf_counter() - t0)
        tally.statuses[status] += 1

    async def client(k: int, deadline: float) -> None:
        rng = random.Random(plan["seed"] * 1000 + k + state["round"] * 100_000)
        while time.perf_counter() < deadline:
            await one(rng, rng.choices(names, weights=shares)[0])

    state["round"] += 1
    groups = plan["groups"]
    scanned = await scans(state["stats"])
    before = {name: cpu_seconds(pid) for name, pid in groups.items()}
    client_cpu, load = time.process_time(), os.getloadavg()
    started = time.perf_counter()
    await asyncio.gather(*(client(k, started + seconds) for k in range(plan["clients"])))
    elapsed = time.perf_counter() - started
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in groups.items()}
    cpu["generator"] = time.process_time() - client_cpu
    await asyncio.sleep(1.5)  # backends under load flush their table statistics about every second
    after = await scans(state["stats"])
    tables = {name: [a - b for a, b in zip(v, scanned.get(name, [0, 0, 0]), strict=True)] for name, v in after.items()}
    out: dict[str, Any] = {"elapsed_s": elapsed, "cpu_s": cpu, "loadavg": list(load), "routes": {},
                           "tables": {name: {"seq_scan": v[0], "seq_rows": v[1], "idx_scan": v[2]}
                                      for name, v in tables.items() if any(v)}}
    for route, tally in tallies.items():
        ms = sorted(x * 1000 for x in tally.latencies)
        count = len(ms)
        out["routes"][route] = {
            "requests": count, "per_s": count / elapsed, "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
            "ok": tally.statuses[SUCCESS[route]],
            "errors": {str(s): n for s, n in sorted(tally.statuses.items()) if s != SUCCESS[route]},
            "error_samples": {str(s): body for s, body in tally.samples.items()}}
    return out


async def _generate(plan: dict[str, Any]) -> dict[str, Any]:
    clients = plan["clients"]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    state: dict[str, Any] = {"receipts": plan["receipts"], "trips": {}, "round": 0, "ran_out": False,
                             "epoch": datetime.now(UTC) - timedelta(hours=1)}
    phases: dict[str, Any] = {}
    state["stats"] = await asyncpg.connect(plan["dsn"])
    async with httpx.AsyncClient(base_url=plan["platform"], timeout=120, limits=limits) as platform, \
            httpx.AsyncClient(base_url=plan["bare"], timeout=120, limits=limits) as bare:
        # Untimed: every connection opened, every worker's code paths run once (its results still count
        # for the ledger: the claims it made are real).
        phases["warm-up"] = await _phase(plan, {**MIX, "bare": 30}, WARM_SECONDS, state, platform, bare)
        phases["bare"] = await _phase(plan, {"bare": 1}, plan["seconds"], state, platform, bare)
        phases["lookup"] = await _phase(plan, {"lookup": 1}, plan["seconds"], state, platform, bare)
        phases["mixed"] = await _phase(plan, MIX, plan["seconds"], state, platform, bare)
    await state["stats"].close()
    return {"phases": phases, "ran_out": state["ran_out"], "receipts_left": len(state["receipts"])}


def generate(plan_path: str, out_path: str) -> None:
    """The load generator's process: reads the plan, drives the phases, writes the figures."""
    plan = json.loads(Path(plan_path).read_text())
    Path(out_path).write_text(json.dumps(asyncio.run(_generate(plan))))


# --- reporting --------------------------------------------------------------------------------------


def table(name: str, phase: dict[str, Any], clients: int) -> list[str]:
    requests = max(1, sum(r["requests"] for r in phase["routes"].values()))
    cpu = ", ".join(f"{k} {v:.1f} s ({v / requests * 1000:.2f} ms/request)" for k, v in phase["cpu_s"].items())
    lines = [f"{name}: {clients} clients, {phase['elapsed_s']:.1f} s; CPU: {cpu}; load average "
             f"{phase['loadavg'][0]:.2f} as it began",
             f"  {'route':<38} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  errors (status: count)"]
    for route, r in phase["routes"].items():
        errors = " ".join(f"{s}: {n}" for s, n in r["errors"].items()) or "-"
        p50, p99 = (f"{r[k]:>8.2f}" if r["requests"] else f"{'-':>8}" for k in ("p50_ms", "p99_ms"))
        lines.append(f"  {ROUTES[route]:<38} {r['requests']:>9} {r['per_s']:>8.1f} {p50} {p99}  {errors}")
    heavy = sorted(((t, v) for t, v in phase["tables"].items() if v["seq_scan"]), key=lambda x: -x[1]["seq_rows"])
    lines.append("  sequential scans (PostgreSQL's table statistics): " + (", ".join(
        f"{t} {v['seq_scan']:,} reading {v['seq_rows']:,} rows" for t, v in heavy[:4]) or "none"))
    return lines


def log_problems(log: Path, limit: int = 12) -> tuple[int, list[str]]:
    """Server log lines about errors or 5xx answers (the app logs JSON, uvicorn plain text)."""
    found: list[str] = []
    count = 0
    for line in log.read_text(errors="replace").splitlines():
        low = line.lower()
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            status = record.get("status_code", record.get("status", 0))
            bad = (str(record.get("level", "")).lower() in ("error", "critical", "exception")
                   or (isinstance(status, int) and status >= 500))
        else:
            bad = "error" in low or "traceback" in low or "exception" in low
        if bad:
            count += 1
            if len(found) < limit:
                found.append(line[:400])
    return count, found


# --- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="each phase's duration")
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive clients")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of both servers")
    parser.add_argument("--products", type=int, default=100_000, help="labelled products")
    parser.add_argument("--people", type=int, default=10_000, help="people with an account")
    parser.add_argument("--database-url", default=os.environ.get(
        "CARBONPUHUI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server (any database on it) where a scratch database may be created")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the platform's Redis")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here as JSON")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.products < TEMPLATES or args.people < 1:
        raise SystemExit(f"--products must be at least {TEMPLATES}, --people at least 1")
    server = make_url(normalise_url(args.database_url))
    app_db = server.set(database=f"cpb_load_{os.getpid()}")
    dsn = app_db.set(drivername="postgresql").render_as_string(hide_password=False)
    namespace = f"bench-load-{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="cpb-load-"))
    created = False
    platform: subprocess.Popen[bytes] | None = None
    bare: subprocess.Popen[bytes] | None = None
    log = work / "platform.log"
    try:
        version = server_version(server)
        admin(server, f'CREATE DATABASE "{app_db.database}"')
        created = True
        upgrade(app_db.render_as_string(hide_password=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONPUHUI_")}
        env.update(CARBONPUHUI_DATA_DIR=str(work / "data"),
                   CARBONPUHUI_DATABASE_URL=app_db.render_as_string(hide_password=False),
                   CARBONPUHUI_REDIS_URL=args.redis, CARBONPUHUI_REDIS_NAMESPACE=namespace,
                   CARBONPUHUI_LOG_JSON="true", CARBONPUHUI_PUBLIC_RATE_LIMIT_PER_MINUTE="100000000",
                   CARBONPUHUI_COMPUTE_RATE_LIMIT_PER_MINUTE="100000000")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        platform = start([sys.executable, "-m", "carbonpuhui.cli", "serve", "--port", str(port), "--workers",
                          str(args.workers)], env, log)
        wait_ready(f"{base}/readyz", platform, log)
        auth = Actors(env)

        t0 = time.perf_counter()
        templates, private, kid = asyncio.run(seed_templates(base, auth, TEMPLATES))
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        tender_id = asyncio.run(tender(base, auth, BIDS, deadline))
        t_api = time.perf_counter() - t0
        t0 = time.perf_counter()
        gtins = asyncio.run(clone_labelled(
            dsn, sorted("0" + code for code in templates), args.products, lambda i: "0" + gtin13(i),
            lambda i: {"zh-Hans": f"钢卷 {i}", "zh-Hant": f"鋼卷 {i}", "en": f"Coil {i}"}))
        t_products = time.perf_counter() - t0
        t0 = time.perf_counter()
        subs = [f"person-{k}" for k in range(args.people)]
        seeded_claims = asyncio.run(people(dsn, subs, "bench-shop", gtins[0], lambda k: 100 + k % 900))
        t_people = time.perf_counter() - t0
        print(f"seeded through the API ({TEMPLATES} labelled products, a receipt key, a tender with {BIDS} bids) "
              f"in {t_api:.1f} s; {len(gtins) - TEMPLATES:,} more labelled products by COPY in {t_products:.1f} s; "
              f"{len(subs):,} people with an earlier claim each in {t_people:.1f} s", flush=True)

        t0 = time.perf_counter()
        tokens = [auth("consumer", sub)["Authorization"] for sub in subs]
        count = (args.seconds + WARM_SECONDS) * 200  # far more than 15 % of the mix has used
        receipts = list(presign(count, gtins, private, kid, args.seed))
        print(f"minted {len(tokens):,} consumer tokens and signed {count:,} receipts in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)

        # Checks that the clones are what the platform would have made, before any load.
        with httpx.Client(base_url=base, timeout=60) as client:
            sample = ok(client.get(f"/v1/products/{gtins[-1]}"))
            label = sample.get("label") or {}
            if label.get("scheme") != "verified" or label.get("status") != "active":
                raise SystemExit(f"a cloned product has no verified label in force: {sample}")
            claim = ok(client.post("/v1/credits/purchases", headers={"Authorization": tokens[0]},
                                   json={"receipt": receipts.pop()}), 201)
            if not claim["credited_g"] > 0:
                raise SystemExit(f"a claim of cloned products credited nothing: {claim}")
            time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds() + 0.2))
            t0 = time.perf_counter()
            ok(client.post(f"/v1/tenders/{tender_id}/evaluation", headers=auth("officer", "bench-officer",
                                                                               "bench-agency"),
                           json={"samples": SAMPLES, "seed": 1}))
            t_evaluation = time.perf_counter() - t0
        print(f"one evaluation ({BIDS} bids, {SAMPLES:,} samples) alone: {t_evaluation * 1000:.0f} ms", flush=True)

        (work / "bare.py").write_text(BARE_APP)
        bare_port = free_port()
        bare = start([sys.executable, "-m", "uvicorn", "bare:app", "--app-dir", str(work), "--host", "127.0.0.1",
                      "--port", str(bare_port), "--workers", str(args.workers), "--log-level", "warning",
                      "--no-access-log", "--limit-concurrency", "1000", "--timeout-keep-alive", "5",
                      "--backlog", "2048"], {**env, "BENCH_BARE_BODY": json.dumps(sample)}, work / "bare.log")
        wait_ready(f"http://127.0.0.1:{bare_port}/v1/products/x", bare, work / "bare.log")

        plan = {"platform": base, "bare": f"http://127.0.0.1:{bare_port}", "clients": args.clients,
                "seconds": args.seconds, "seed": args.seed, "gtins": gtins, "tokens": tokens, "receipts": receipts,
                "officer": auth("officer", "bench-officer", "bench-agency")["Authorization"], "tender": tender_id,
                "dsn": dsn, "groups": {"platform": platform.pid, "bare": bare.pid}}
        (work / "plan.json").write_text(json.dumps(plan))
        process = multiprocessing.get_context("spawn").Process(
            target=generate, args=(str(work / "plan.json"), str(work / "result.json")))
        process.start()
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"the load generator failed (exit {process.exitcode})")
        result = json.loads((work / "result.json").read_text())

        checked = subprocess.run([sys.executable, "-m", "carbonpuhui.cli", "ledger", "check"], env=env,
                                 capture_output=True, text=True)

        async def claim_counts() -> dict[str, int]:
            conn = await asyncpg.connect(dsn)
            try:
                return {r["kind"]: r["n"] for r in await conn.fetch(
                    "SELECT kind, count(*) AS n FROM credit_claims GROUP BY kind")}
            finally:
                await conn.close()

        in_ledger = asyncio.run(claim_counts())
        stop(platform)
        platform = None
        problems, problem_lines = log_problems(log)
    finally:
        for process_ in (platform, bare):
            if process_ is not None:
                stop(process_)
        if created:
            admin(server, f'DROP DATABASE IF EXISTS "{app_db.database}" WITH (FORCE)')
        try:
            clean_redis(args.redis, namespace)
        except Exception as exc:  # noqa: BLE001 - the cache's entries expire by themselves
            print(f"Redis keys {namespace}:* not removed: {exc!r}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)

    phases = result["phases"]
    print(f"PostgreSQL {version} at {server.host}:{server.port or 5432}, Redis {args.redis}, {os.cpu_count()} CPUs; "
          f"{len(gtins):,} labelled products, {len(subs):,} people; carbonpuhui serve --workers {args.workers} "
          f"and the bare app under uvicorn --workers {args.workers}; the generator (one process, httpx) on the "
          f"same machine")
    for name in ("bare", "lookup", "mixed"):
        print("\n".join(table(name, phases[name], args.clients)))
    bare_rate = phases["bare"]["routes"]["bare"]["per_s"]
    alone = phases["lookup"]["routes"]["lookup"]["per_s"]
    mixed = phases["mixed"]["routes"]["lookup"]["per_s"]
    mixed_total = sum(r["per_s"] for r in phases["mixed"]["routes"].values())
    print(f"ratio label lookups alone / bare route alone: {alone / bare_rate:.2f}")
    print(f"ratio label lookups in the mix / bare route alone: {mixed / bare_rate:.2f} "
          f"(lookups are {MIX['lookup'] / sum(MIX.values()):.0%} of the mix; all mixed requests: "
          f"{mixed_total:.1f} req/s, {mixed_total / bare_rate:.2f} of the bare route)")
    if result["ran_out"]:
        print("(the signed receipts ran out: purchases were replaced by lookups)")
    for name, phase in phases.items():
        for route, r in phase["routes"].items():
            for status, body in r["error_samples"].items():
                print(f"{name} {ROUTES[route]} -> {status}: {body}")
    print(f"server log: {problems} error lines" + "".join(f"\n  {line}" for line in problem_lines))

    purchases = 1 + sum(p["routes"].get("purchase", {}).get("ok", 0) for p in phases.values())
    trips = sum(p["routes"].get("trip", {}).get("ok", 0) for p in phases.values())
    report = json.loads(checked.stdout) if checked.stdout.strip().startswith("{") else {}
    print(f"ledger check: exit {checked.returncode}, {json.dumps(report)}; purchase claims {in_ledger.get('purchase', 0)} "
          f"(seeded {seeded_claims} + {purchases} answered 201), trip claims {in_ledger.get('trip', 0)} ({trips} "
          f"answered 201)")
    if args.json:
        args.json.write_text(json.dumps({
            "postgresql": version, "cpus": os.cpu_count(), "workers": args.workers, "clients": args.clients,
            "seconds": args.seconds, "products": len(gtins), "people": len(subs),
            "seeding_s": {"api": t_api, "products_copy": t_products, "people_copy": t_people},
            "evaluation_alone_ms": t_evaluation * 1000, "phases": phases,
            "ratio_lookup_alone_to_bare": alone / bare_rate, "ratio_lookup_mixed_to_bare": mixed / bare_rate,
            "ledger_check": report, "claims_in_ledger": in_ledger, "server_log_errors": problems}, indent=2))
    if checked.returncode != 0:
        raise SystemExit(f"ledger check failed:\n{checked.stderr}")
    if in_ledger.get("purchase", 0) != seeded_claims + purchases:
        raise SystemExit(f"the ledger holds {in_ledger.get('purchase', 0)} purchase claims, "
                         f"{seeded_claims} seeded + {purchases} answered 201")
    if in_ledger.get("trip", 0) != trips:
        raise SystemExit(f"the ledger holds {in_ledger.get('trip', 0)} trip claims, {trips} answered 201")


if __name__ == "__main__":
    main()

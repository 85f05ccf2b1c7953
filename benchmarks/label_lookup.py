"""Label lookup throughput as a ratio to a bare Litestar JSON route, measured in the same run.

    python benchmarks/label_lookup.py [--seconds 10] [--connections 32] [--products 2000] [--redis URL]

Starts real servers, one after the other, each a single uvicorn worker on loopback with the same
settings: the platform (``carbonpuhui serve`` on a fresh SQLite data directory, seeded with labelled
products through the API; with ``--redis``, on that Redis), then the same app with one extra route
returning a constant JSON object of the size of a product view (so the platform's own middleware
stack is measured apart from the lookup), then a bare Litestar app with only that constant route. Load comes from ``wrk`` (Debian package ``wrk``), a
separate process, cycling through the labelled GTINs. Prints requests per second, latency and the
ratio. The platform runs its whole stack on every lookup: authentication, rate limiting, request id,
metrics, structured logging, the shared cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import httpx
from _servers import free_port, start, stop, wait_ready

BARE_APP = textwrap.dedent('''
    import json, sys

    import uvicorn
    from litestar import Litestar, get

    BODY = json.loads(sys.argv[1])

    @get("/v1/products/{gtin:str}")
    async def product(gtin: str) -> dict:
        return BODY

    app = Litestar([product])
    # The same server settings as `carbonpuhui serve`.
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False,
                limit_concurrency=1000, timeout_keep_alive=5, backlog=2048)
''')


# The platform as `serve` runs it, plus one constant JSON route: the same middleware stack
# (request id, metrics, logging, authentication, rate limit) with nothing to look up.
PLATFORM_PLUS = textwrap.dedent('''
    import json, sys

    import uvicorn
    from litestar import get

    from carbonpuhui.app import create_app
    from carbonpuhui.auth import access

    BODY = json.loads(sys.argv[1])

    @get("/bench/constant", **access(public=True))
    async def constant() -> dict:
        return BODY

    def factory():
        app = create_app()
        app.register(constant)
        return app

    uvicorn.run(factory, factory=True, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
                access_log=False, limit_concurrency=1000, timeout_keep_alive=5, backlog=2048)
''')


async def seed(base: str, env: dict[str, str], products: int) -> list[str]:
    """Products with verified labels, through the public API (as an integration partner would)."""
    from stdnum import ean

    def token(role: str, org: str | None = None) -> dict[str, str]:
        cli = [sys.executable, "-m", "carbonpuhui.cli", "token", "--sub", "bench", "--role", role]
        text = subprocess.run(cli + (["--org", org] if org else []), env=env, capture_output=True, text=True,
                              check=True).stdout.strip()
        return {"Authorization": f"Bearer {text}"}

    admin, owner, verifier = token("admin"), token("merchant", "bench-steel"), token("verifier", "bench-cb")
    gtins = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await client.put("/v1/benchmarks/bench.steel", headers=admin, json={
            "method": "fixed", "thresholds": ["1", "2", "3", "4"], "baseline": "2.5", "declared_unit": "kilogram"})
        semaphore = asyncio.Semaphore(4)

        async def one(i: int) -> None:
            body = f"69{i:010d}"
            code = body + ean.calc_check_digit(body)
            async with semaphore:
                r = await client.post("/v1/merchant/products", headers=owner, json={
                    "gtin": code, "names": {"zh-Hans": f"钢卷 {i}", "zh-Hant": f"鋼卷 {i}", "en": f"Coil {i}"},
                    "category": "bench.steel", "declared_unit": "kilogram", "declared_units_per_item": "1000"})
                assert r.status_code == 201, r.text
                value = Decimal(1) + Decimal(i % 400) / 100
                r = await client.put(f"/v1/merchant/products/{code}/inventory", headers=owner, json={"lines": [
                    {"stage": "production", "description": "measured", "quantity": "1", "unit": "kg",
                     "direct_kgco2e": str(value), "primary": True}]})
                assert r.status_code == 200, r.text
                r = await client.post(f"/v1/merchant/products/{code}/label-applications", headers=owner,
                                      json={"certification_body": "bench-cb"})
                assert r.status_code == 201, r.text
                r = await client.post(f"/v1/certification/applications/{r.json()['id']}/decision", headers=verifier,
                                      json={"decision": "approve", "valid_until": "2030-12-31"})
                assert r.status_code == 200, r.text
                gtins.append("0" + code)

        await asyncio.gather(*(one(i) for i in range(products)))
    return gtins


def wrk(url: str, seconds: int, connections: int, script: Path | None) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%"), "non_2xx": float(errors.group(1)) if errors else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--redis", default=None, help="run the platform on this Redis (else the in-process store)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk (Debian: apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="cpb-lookup-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONPUHUI_")}
    env.update(CARBONPUHUI_DATA_DIR=str(work / "data"), CARBONPUHUI_PUBLIC_RATE_LIMIT_PER_MINUTE="100000000",
               CARBONPUHUI_COMPUTE_RATE_LIMIT_PER_MINUTE="100000000", CARBONPUHUI_LOG_JSON="true")
    if args.redis:
        env.update(CARBONPUHUI_REDIS_URL=args.redis, CARBONPUHUI_REDIS_NAMESPACE=f"bench-{os.getpid()}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    platform = start([sys.executable, "-m", "carbonpuhui.cli", "serve", "--port", str(port)], env,
                     work / "platform.log")
    try:
        wait_ready(f"{base}/readyz", platform, work / "platform.log")
        t0 = time.perf_counter()
        gtins = asyncio.run(seed(base, env, args.products))
        print(f"seeded {len(gtins):,} labelled products in {time.perf_counter() - t0:.0f} s")
        sample = httpx.get(f"{base}/v1/products/{gtins[0]}").content
        script = work / "gtins.lua"
        script.write_text("gtins = {" + ",".join(f'"{g}"' for g in gtins) + "}\ni = 0\n"
                          "request = function()\n  i = i % #gtins + 1\n"
                          "  return wrk.format(\"GET\", \"/v1/products/\" .. gtins[i])\nend\n")
    finally:
        stop(platform)
    # Measured on the same server: the lookups, and the constant route through the same stack.
    (work / "platform_plus.py").write_text(PLATFORM_PLUS)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    plus = start([sys.executable, str(work / "platform_plus.py"), json.dumps(json.loads(sample)), str(port)], env,
                 work / "platform_plus.log")
    try:
        wait_ready(f"{base}/readyz", plus, work / "platform_plus.log")
        for g in gtins:  # warm the cache once, as a long-running server would be
            httpx.get(f"{base}/v1/products/{g}")
        ours = wrk(base, args.seconds, args.connections, script)
        stack = wrk(f"{base}/bench/constant", args.seconds, args.connections, None)
    finally:
        stop(plus)
    (work / "bare.py").write_text(BARE_APP)
    port = free_port()
    bare = start([sys.executable, str(work / "bare.py"), json.dumps(json.loads(sample)), str(port)], env,
                 work / "bare.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/products/x", bare, work / "bare.log")
        baseline = wrk(f"http://127.0.0.1:{port}/v1/products/x", args.seconds, args.connections, None)
    finally:
        stop(bare)
    store = "Redis" if args.redis else "in-process store"
    print(f"one uvicorn worker each, wrk -t1 -c{args.connections} -d{args.seconds}s; platform on SQLite + {store}")
    print(f"{'route':<44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, r in (("bare Litestar JSON route", baseline), ("constant JSON route on the platform's stack", stack),
                    ("GET /v1/products/{gtin} (label lookup)", ours)):
        print(f"{name:<44} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['non_2xx']:>8.0f}")
    print(f"ratio label lookup / bare route: {ours['rps'] / baseline['rps']:.2f}")
    print(f"ratio label lookup / constant route on the same stack: {ours['rps'] / stack['rps']:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

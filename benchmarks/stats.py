"""The pilot indicators over a million and more rows on PostgreSQL, against a plain count(*) of the same
tables measured in the same run.

    python benchmarks/stats.py [--orgs 2000] [--products 300000] [--labelled 0.8] [--entries 500000]
                               [--shipments 300000] [--categories 20] [--repeat 3]
                               [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
                               [--keep | --seed-only | --reuse NAME]

Seeds a scratch database by COPY: organisations across Shandong's 16 cities (some with a site in
another city), products with verified labels in force, credit claims with their two-leg transfers
(purchases, attested and unattested trips, redemptions), export shipments, with a rare industry and
rare destinations so that disclosure control has cells to suppress and complements to choose; then times
``indicators.compute`` (queries + disclosure control, the whole province's tables every time) for one
city and for the province, best of REPEAT, beside ``SELECT count(*)`` over products, labels,
credit_entries and export_shipments. Prints each query's time and the EXPLAIN (ANALYZE, BUFFERS) plan of
the slowest (under the same settings compute() uses). The scratch database is dropped at the end
(--keep or --seed-only keep it; --reuse NAME measures a kept one without seeding again).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from _servers import admin, server_version
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker

from carbonpuhui.db.engine import create_engine, normalise_url, read_snapshot
from carbonpuhui.db.migrate import upgrade
from carbonpuhui.stats import divisions, indicators
from carbonpuhui.stats.quarters import Quarter
from carbonpuhui.stats.repository import StatsRepository

QUARTER = Quarter(2025, 1)
INDUSTRIES = ["steel", "tyres", "textiles", "chemicals", "building_materials", "paper", "machinery", "food"]
DESTINATIONS = ["DE", "US", "JP", "KR", "FR", "GB", "NL", "IT", "ES", "AU", "CA", "SG", "VN", "TH", "MY", "ID",
                "IN", "AE", "SA", "BR", "MX", "ZA", "RU", "PL", "SE"]
RARE_INDUSTRY = "ceramics"
RARE_DESTINATIONS = ["IS", "NZ", "CL", "PE"]  # a few shipments each: small cells
CHUNK = 20_000


async def copy(conn: asyncpg.Connection, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    for start in range(0, len(rows), CHUNK):
        await conn.copy_records_to_table(table, records=rows[start:start + CHUNK], columns=columns)


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy since boot (Linux /proc/stat: not idle, not iowait)."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def instant(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds()))


async def seed(dsn: str, args: argparse.Namespace) -> dict[str, int]:
    rng = random.Random(args.seed)
    cities = divisions.cities()
    t0 = datetime(2024, 7, 1, tzinfo=UTC)
    start, end = QUARTER.start, QUARTER.end
    names = json.dumps({"zh-Hans": "企业", "zh-Hant": "企業", "en": "Enterprise"})
    orgs = [f"org-{i:05d}" for i in range(args.orgs)]
    # One organisation in a hundred is in a rare industry: cells of one or two enterprises, so that
    # primary and secondary suppression have real work to do.
    org_rows = [(o, names, rng.choice(cities)[:4] + rng.choice(["00", "02", "03"]),
                 RARE_INDUSTRY if k % 100 == 7 else rng.choice(INDUSTRIES), t0, "bench") for k, o in enumerate(orgs)]
    org_rows = [(o, n, d if divisions.is_division(d) else d[:4] + "00", i, t, b) for o, n, d, i, t, b in org_rows]
    sites = [(f"site-{k:04d}", orgs[rng.randrange(args.orgs)], "plant", rng.choice(cities), rng.choice(INDUSTRIES),
              t0, "bench") for k in range(args.orgs // 10)]
    site_of: dict[str, str] = {s[1]: s[0] for s in sites}
    categories = [f"bench.c{k:02d}" for k in range(args.categories)]
    benches = [(c, "fixed", "kg", json.dumps([20, 40, 60, 80]), json.dumps(["1", "2", "3", "4"]),
                f"{rng.uniform(1.5, 3):.3f}", "0.2", 1, t0, "bench") for c in categories]
    org_categories = {o: rng.sample(categories, 2) for o in orgs}
    products, labels, by_org = [], [], {o: [] for o in orgs}
    for n in range(args.products):
        owner = orgs[rng.randrange(args.orgs)]
        gtin = f"{n:014d}"
        site = site_of.get(owner) if rng.random() < 0.3 else None
        category = rng.choice(org_categories[owner])
        products.append((gtin, owner, names, category, "kg", "1", "CN-SD", instant(rng, t0, end), "bench", 0, site))
        by_org[owner].append(gtin)
        if rng.random() < args.labelled:
            kg = rng.uniform(0.5, 4)
            revoked = instant(rng, start, end + timedelta(days=30)) if rng.random() < 0.05 else None
            labels.append((str(uuid.uuid4()), gtin, owner, "verified", "revoked" if revoked else "active",
                           revoked is None, category, "kg", f"{kg:.4f}", f"{kg:.4f}", "declared_with_penalty", "{}",
                           "ABCDE"[min(4, int(kg))], 1, instant(rng, t0, end + timedelta(days=10)), "bench",
                           date(2026, 6, 30), "[]", 0, revoked))
    people = [f"acc-p{k:06d}" for k in range(args.entries // 10)]
    merchants = orgs[: max(3, args.orgs // 5)]
    operators = orgs[-20:]
    accounts = [(p, "person", p, 0, t0) for p in people] + [("issuance", "issuance", None, 0, t0)] + [
        (f"acc-{m}", "merchant", m, 0, t0) for m in merchants]
    rewards = [(f"rw-{m}", m, "reward", 100, 1000, 0, t0, "bench") for m in merchants]
    transfers, entries, claims, redemptions = [], [], [], []
    window_start = start - timedelta(days=30)  # a few entries fall in the quarter before
    for k in range(args.entries // 2):
        tid, at, person = f"tr-{k}", instant(rng, window_start, end), rng.choice(people)
        draw = rng.random()
        if draw < 0.9:
            kind = "purchase" if draw < 0.75 else "trip"
            issuer = rng.choice(merchants) if kind == "purchase" else (rng.choice(operators) if draw < 0.85 else "-")
            grams = rng.randint(10, 2000)
            cid = f"cl-{k}"
            transfers.append((tid, kind, cid, at))
            entries += [(tid, "issuance", -grams, at, None), (tid, person, grams, at, at + timedelta(days=365))]
            claims.append((cid, kind, issuer, f"j{k}", person, tid, grams, at))
        else:
            merchant, rid = rng.choice(merchants), f"rd-{k}"
            transfers.append((tid, "redemption", rid, at))
            entries += [(tid, person, -100, at, None), (tid, f"acc-{merchant}", 100, at, None)]
            redemptions.append((rid, f"rw-{merchant}", person, tid, 100, at))
    shipments = []
    exporters = [o for o in orgs if by_org[o]]
    for k in range(args.shipments):
        org = rng.choice(exporters)
        shipments.append((f"sh-{k}", org, str(QUARTER) if rng.random() < 0.9 else str(QUARTER.previous()),
                          rng.choice(by_org[org]), "7214",
                          rng.choice(RARE_DESTINATIONS) if rng.random() < 0.002
                          else rng.choice(DESTINATIONS[:8] if int(org[-1]) % 2 else DESTINATIONS),
                          f"{rng.uniform(1, 500):.2f}", rng.randint(10_000, 10_000_000), "batch", t0, "bench"))
    conn = await asyncpg.connect(dsn)
    try:
        await copy(conn, "organisations", ["org", "names", "division_code", "industry", "updated_at", "updated_by"],
                   org_rows)
        await copy(conn, "sites", ["id", "org", "name", "division_code", "industry", "created_at", "created_by"], sites)
        await copy(conn, "benchmarks", ["category", "method", "declared_unit", "percentiles", "thresholds", "baseline",
                                        "uncertainty_penalty", "revision", "updated_at", "updated_by"], benches)
        await copy(conn, "products", ["gtin", "owner_org", "names", "category", "declared_unit",
                                      "declared_units_per_item", "region", "created_at", "created_by",
                                      "inventory_revision", "site_id"], products)
        await copy(conn, "labels", ["id", "gtin", "owner_org", "scheme", "status", "current", "category",
                                    "declared_unit", "kgco2e_per_unit", "declared_kgco2e_per_unit",
                                    "conservative_basis", "uncertainty", "grade", "benchmark_revision", "issued_at",
                                    "issued_by", "valid_until", "factor_versions", "inventory_revision", "revoked_at"],
                   labels)
        await copy(conn, "credit_accounts", ["id", "kind", "owner", "balance_g", "created_at"], accounts)
        await copy(conn, "rewards", ["id", "merchant_org", "title", "cost_g", "stock", "redeemed", "created_at",
                                     "created_by"], rewards)
        await copy(conn, "credit_transfers", ["id", "kind", "reference", "created_at"], transfers)
        await copy(conn, "credit_entries", ["transfer_id", "account_id", "amount_g", "created_at", "expires_at"],
                   entries)
        await copy(conn, "credit_claims", ["id", "kind", "issuer", "jti", "account_id", "transfer_id", "credited_g",
                                           "claimed_at"], claims)
        await copy(conn, "redemptions", ["id", "reward_id", "account_id", "transfer_id", "cost_g", "redeemed_at"],
                   redemptions)
        await copy(conn, "export_shipments", ["id", "org", "quarter", "gtin", "hs_code", "destination", "quantity",
                                              "value_cents", "batch_id", "created_at", "created_by"], shipments)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return {"organisations": len(org_rows), "products": len(products), "labels": len(labels),
            "credit_entries": len(entries), "credit_claims": len(claims), "export_shipments": len(shipments)}


async def measure(url: str, args: argparse.Namespace) -> None:
    engine = create_engine(url)
    statements: list[tuple[float, str, Any, tuple[str, ...]]] = []
    # Per connection, the SET LOCALs in force (compute() sets some around single queries, on each of
    # its two connections).

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        conn.info["started"] = time.perf_counter()
        settings = conn.info.setdefault("settings", {})
        if statement.startswith("SET LOCAL "):
            settings[statement.split()[2]] = statement
        elif statement.startswith("RESET "):
            settings.pop(statement.split()[1], None)

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append((time.perf_counter() - conn.info["started"], statement, parameters,
                           tuple(conn.info.get("settings", {}).values())))

    # The two large aggregates go to asyncpg directly (StatsRepository._records), past SQLAlchemy's events.
    records = StatsRepository.__dict__["_records"].__func__

    async def timed_records(connection: Any, stmt: Any) -> list[Any]:
        began = time.perf_counter()
        rows = await records(connection, stmt)
        sql, arguments = StatsRepository.compiled(connection, stmt)
        statements.append((time.perf_counter() - began, sql, tuple(arguments),
                           tuple(connection.sync_connection.info.get("settings", {}).values())))
        return rows

    sessions = async_sessionmaker(engine)
    try:
        async def count_all() -> float:
            async with engine.connect() as conn:
                began = time.perf_counter()
                for table in ("products", "labels", "credit_entries", "export_shipments"):
                    await conn.execute(text(f"SELECT count(*) FROM {table}"))
                return time.perf_counter() - began

        protects: list[tuple[float, int, int, int]] = []
        plain = indicators._Table.protect

        def timed(table: Any, agency: str | None = None) -> Any:
            began = time.perf_counter()
            out = plain(table, agency)
            protects.append((time.perf_counter() - began, table.atom_count, len(table.figures),
                             len(out.primary) + len(out.secondary)))
            return out

        indicators._Table.protect = timed  # type: ignore[method-assign]

        async def run(area: str) -> tuple[float, Any]:
            async with sessions() as session:
                began = time.perf_counter()
                await read_snapshot(session)  # as the indicators route does
                result = await indicators.compute(session, area=area, quarter=QUARTER, by="industry",
                                                  protected=args.protect)
                return time.perf_counter() - began, result

        counts = min([await count_all() for _ in range(args.repeat)])
        print(f"SELECT count(*) over products, labels, credit_entries, export_shipments: best {counts * 1e3:.0f} ms")
        for area in ("370600", "370000"):
            times, result = [], None
            for _ in range(args.repeat):
                spent, result = await run(area)
                times.append(spent)
            best = min(times)
            suppressed = sum(c.status != "published" for i in result.indicators for c in i.cells)
            cells = sum(len(i.cells) for i in result.indicators)
            print(f"compute area={area} ({divisions.names(area)['en']}): best of {args.repeat} {best * 1e3:.0f} ms "
                  f"(all: {', '.join(f'{t * 1e3:.0f}' for t in times)} ms); {cells} cells, {suppressed} suppressed; "
                  f"ratio to count(*): {best / counts:.1f}x")
        if args.protect:
            print("disclosure control per measure (last run): "
                  + "; ".join(f"{t * 1e3:.0f} ms for {a} atoms, {f} figures, {h} suppressed" for t, a, f, h in protects[-9:]))
        event.listen(engine.sync_engine, "before_cursor_execute", before)
        event.listen(engine.sync_engine, "after_cursor_execute", after)
        StatsRepository._records = staticmethod(timed_records)  # type: ignore[method-assign]
        async with sessions() as session:
            began, cpu, busy = time.perf_counter(), time.process_time(), machine_busy()
            await read_snapshot(session)
            await indicators.compute(session, area="370000", quarter=QUARTER, by="industry", protected=args.protect)
            total, cpu, busy = time.perf_counter() - began, time.process_time() - cpu, machine_busy() - busy
        event.remove(engine.sync_engine, "before_cursor_execute", before)
        event.remove(engine.sync_engine, "after_cursor_execute", after)
        StatsRepository._records = staticmethod(records)  # type: ignore[method-assign]
        in_sql = sum(s[0] for s in statements)
        # The tables are built in a worker thread while the next query runs: the two overlap, so the
        # CPU figures say more than a split of the wall time would.
        print(f"\none province compute: {total * 1e3:.0f} ms wall; {len(statements)} queries on two connections "
              f"at once waited on for {in_sql * 1e3:.0f} ms in all (rows fetched and decoded included); this process's CPU {cpu * 1e3:.0f} ms "
              f"(decoding, rows -> atoms -> disclosure control; one GIL); the machine's busy CPU "
              f"{busy * 1e3:.0f} ms of {os.cpu_count()} x {total * 1e3:.0f} ms (PostgreSQL's included)")
        statements = [s for s in statements if not s[1].startswith(("SET ", "RESET "))]
        for spent, statement, *_ in sorted(statements, key=lambda s: s[0], reverse=True):
            print(f"  {spent * 1e3:7.1f} ms  {' '.join(statement.split())[:110]}")
        spent, statement, parameters, in_force = max(statements, key=lambda s: s[0])
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            async with driver.transaction():  # the settings compute() ran this query with
                for setting in in_force:
                    await driver.execute(setting)
                plan = await driver.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *parameters)
        print("\nEXPLAIN (ANALYZE, BUFFERS) of the slowest query, under " + "; ".join(in_force) + ":")
        print(statement)
        for row in plan:
            print("  " + row[0])
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=2000)
    parser.add_argument("--products", type=int, default=300_000)
    parser.add_argument("--labelled", type=float, default=0.8, help="share of products with a verified label")
    parser.add_argument("--entries", type=int, default=500_000, help="credit entries (two per transfer)")
    parser.add_argument("--shipments", type=int, default=300_000)
    parser.add_argument("--categories", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--no-protect", dest="protect", action="store_false",
                        help="time queries and aggregation without disclosure control (compute(protected=False))")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (prints its name)")
    parser.add_argument("--seed-only", action="store_true", help="seed and keep the database, measure nothing")
    parser.add_argument("--reuse", metavar="NAME", help="measure an already seeded scratch database (no seeding)")
    parser.add_argument("--database-url", default=os.environ.get(
        "CARBONPUHUI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    server = make_url(normalise_url(args.database_url))
    scratch = server.set(database=args.reuse or f"cpb_stats_{os.getpid()}")
    url = scratch.render_as_string(hide_password=False)
    dsn = scratch.set(drivername="postgresql").render_as_string(hide_password=False)
    print(f"PostgreSQL {server_version(server)}")
    if args.reuse:
        asyncio.run(measure(url, args))
        return
    admin(server, f'CREATE DATABASE "{scratch.database}"')
    try:
        upgrade(url)
        began = time.perf_counter()
        rows = asyncio.run(seed(dsn, args))
        counted = rows["labels"] + rows["credit_entries"] + rows["export_shipments"]
        print(f"seeded in {time.perf_counter() - began:.0f} s: "
              + ", ".join(f"{n:,} {t}" for t, n in rows.items())
              + f" ({counted:,} labels + credit entries + shipments)")
        if not args.seed_only:
            asyncio.run(measure(url, args))
    finally:
        if args.keep or args.seed_only:
            print(f"kept scratch database {scratch.database}")
        else:
            admin(server, f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)')


if __name__ == "__main__":
    main()

"""Faults and scale-out, on real processes: Redis killed under load (and back, empty), PostgreSQL
crashed under load (and back), a server killed with claims in flight, and two servers hammered at
once with duplicate receipts and redemptions of a scarce reward. The ledger is the oracle each time:
nothing acknowledged is lost, nothing refused is half written, nothing is credited twice.

They run in the PostgreSQL leg only (separate processes sharing one database), on a PostgreSQL cluster
and a redis-server of the module's own, which they crash and restart: the shared ones are never
touched. One set of servers serves the module (each start costs seconds of CPU); every test leaves
the services running."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from carbonpuhui.db.migrate import upgrade
from tests.conftest import once_per_ci
from tests.integration.private_services import PrivatePostgres, module_redis, private_postgres, wait_until
from tests.integration.test_credit_concurrency import (
    GOOD,
    Cluster,
    PrivateRedis,
    Shop,
    _board_oracle,
    _env,
    _ledger_check,
    _ready,
    _shop,
    _sql,
    _start,
    _stop,
    grams,
)

# On a private PostgreSQL and Redis of their own, whatever database the run targets.
pytestmark = [pytest.mark.services, once_per_ci]
__all__ = ["module_redis", "private_postgres"]  # fixtures, used by name

DEADLINE = 10  # seconds any one request may take, outage or not: longer is a hang
PROBLEM = "application/problem+json"
# The ledger keeps a receipt's id as a digest (erasable people); the claim's detail names it in the clear.
RECEIPT_ID = "(c.detail ->> 'receipt_id')"


# --- servers ----------------------------------------------------------------------------------------


def _boot(tmp: Path, database: str, redis_url: str, count: int) -> tuple[Cluster, list[Any]]:
    """``count`` servers on a migrated database, with limits that load tests do not trip over."""
    upgrade(database)
    env = _env(tmp / "data", database, redis_url)
    # The label loop reads far more than a person would; a board long enough to hold everyone.
    env.update(CARBONPUHUI_PUBLIC_RATE_LIMIT_PER_MINUTE="100000", CARBONPUHUI_LEADERBOARD_SIZE="500")
    logs = [tmp / f"server-{i}.log" for i in range(count)]
    started = [_start(env, log) for log in logs]
    processes = [process for process, _ in started]
    try:
        for (process, base), log in zip(started, logs, strict=True):
            _ready(base, process, log)
    except BaseException:
        for process in processes:
            _stop(process)
        raise
    return Cluster(env=env, bases=[base for _, base in started], database=database, logs=logs), processes


@dataclass
class Victim:
    process: Any
    base: str
    log: Path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, private_postgres: PrivatePostgres, module_redis: PrivateRedis
            ) -> Iterator[tuple[Cluster, Victim]]:
    """Two servers on a fresh private PostgreSQL cluster and a private Redis, and a third on them for
    a test to kill (started with the others: each start spends seconds of CPU)."""
    found, processes = _boot(tmp_path_factory.mktemp("faults"), private_postgres.url, module_redis.url, 3)
    try:
        yield (Cluster(env=found.env, bases=found.bases[:2], database=found.database, logs=found.logs[:2]),
               Victim(processes[2], found.bases[2], found.logs[2]))
    finally:
        for process in processes:
            _stop(process)


@pytest.fixture(scope="module")
def cluster(servers: tuple[Cluster, Victim]) -> Cluster:
    return servers[0]


@pytest.fixture(scope="module")
def shop(cluster: Cluster) -> Iterator[Shop]:
    with httpx.Client(base_url=cluster.bases[0], timeout=30) as client:
        yield _shop(cluster, client)


# --- records of what the servers answered -----------------------------------------------------------


@dataclass
class Call:
    kind: str  # claim, read, ready
    sent: float
    done: float
    status: int | None  # None: no answer (a transport error or a timeout)
    media: str
    body: Any
    sub: str = ""
    receipt: str = ""
    qty: int = 0
    error: str = ""
    phase: str = ""  # what the test was doing to the services when it was sent


async def _call(client: httpx.AsyncClient, kind: str, method: str, path: str, **kwargs: Any) -> Call:
    sent = time.monotonic()
    try:
        response = await client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        return Call(kind, sent, time.monotonic(), None, "", None, error=repr(exc))
    media = response.headers.get("content-type", "").split(";")[0]
    body = response.json() if media.endswith("json") else response.text
    return Call(kind, sent, time.monotonic(), response.status_code, media, body)


def _receipt_jti(receipt: str) -> str:
    import base64
    import json

    payload = receipt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


def _logged_database_errors(cluster: Cluster) -> list[str]:
    """The distinct database errors in the servers' logs (the last line of each traceback)."""
    logs = "\n".join(log.read_text(errors="replace") for log in cluster.logs)
    return sorted(set(re.findall(r"(sqlalchemy\.exc\.\w+: \([^)]*\) [^\\\n]*)", logs)))


async def _ledger_holds(database: str) -> None:
    """What `carbonpuhui ledger check` runs, in this process (a CLI start costs seconds of CPU; the
    database crash test runs the CLI itself)."""
    from carbonpuhui.credits.maintenance import check
    from carbonpuhui.db import Database

    db = Database(database)
    try:
        async with db.transaction() as session:
            counts, problems = await check(session)
    finally:
        await db.dispose()
    assert problems == [], problems
    assert counts["transfers"] > 0, counts


async def _ledger_board(database: str) -> tuple[dict[str, int], dict[str, str]]:
    """Earned credits per person straight from the ledger's entries (this run is inside one week)."""
    rows = await _sql(database, "SELECT a.owner, a.id, sum(e.amount_g) AS g FROM credit_entries e "
                                "JOIN credit_transfers t ON t.id = e.transfer_id JOIN credit_accounts a "
                                "ON a.id = e.account_id WHERE a.kind = 'person' AND t.kind IN ('purchase', 'trip') "
                                "GROUP BY a.owner, a.id")
    return {r.owner: int(r.g) for r in rows}, {r.owner: r.id for r in rows}


# --- 1. Redis killed under load, and back empty -----------------------------------------------------


async def test_redis_killed_under_load_then_back_empty(cluster: Cluster, shop: Shop,
                                                       module_redis: PrivateRedis) -> None:
    run = uuid.uuid4().hex[:6]
    subs = [f"r-{run}-{i}" for i in range(4)]
    headers = {sub: cluster.auth("consumer", sub=sub) for sub in subs}
    namespace = cluster.env["CARBONPUHUI_REDIS_NAMESPACE"]
    with httpx.Client(base_url=cluster.bases[0], timeout=DEADLINE) as client:
        before = shop.flow.ok(client.get(f"/v1/products/{shop.good}"))
    label = before["label"]
    assert label is not None and label["status"] == "active" and float(label["kgco2e_per_unit"]) == float(GOOD)

    calls: list[Call] = []
    phase = ["up"]
    stop = asyncio.Event()
    clients = [httpx.AsyncClient(base_url=base, timeout=DEADLINE) for base in cluster.bases]

    async def reader(n: int) -> None:
        while not stop.is_set():
            call = await _call(clients[n % 2], "read", "GET", f"/v1/products/{shop.good}")
            call.phase, n = phase[0], n + 1
            calls.append(call)
            await asyncio.sleep(0.01)

    async def claimer(i: int) -> None:
        sub, n = subs[i], 0
        while not stop.is_set():
            qty = 1 + n % 3
            receipt = shop.signer.receipt([{"gtin": shop.good, "qty": qty}])
            call = await _call(clients[(i + n) % 2], "claim", "POST", "/v1/credits/purchases",
                               json={"receipt": receipt}, headers=headers[sub])
            call.sub, call.receipt, call.qty, call.phase, n = sub, receipt, qty, phase[0], n + 1
            calls.append(call)

    def count(kind: str, in_phase: str) -> int:
        return sum(c.kind == kind and c.phase == in_phase for c in calls)

    async def until(check: Any, what: str, deadline: float = 15) -> None:
        end = time.monotonic() + deadline
        while not check():
            assert time.monotonic() < end, f"{what}: not within {deadline} s\n{cluster.server_logs()}"
            await asyncio.sleep(0.05)

    workers = [asyncio.create_task(reader(n)) for n in range(2)] + [asyncio.create_task(claimer(i))
                                                                     for i in range(len(subs))]
    try:
        await until(lambda: count("claim", "up") >= 4 and count("read", "up") >= 4, "load before the outage")
        await asyncio.to_thread(module_redis.kill)
        phase[0] = "down"
        await until(lambda: count("claim", "down") >= 8 and count("read", "down") >= 8, "load during the outage")
        for base in cluster.bases:  # readiness names what is missing (and the database is fine)
            ready = await _call(clients[cluster.bases.index(base)], "ready", "GET", "/readyz")
            assert ready.status == 503, ready
            assert ready.body["status"] == "unavailable", ready.body
            assert ready.body["checks"]["database"] == "ok" and ready.body["checks"]["schema"] == "ok", ready.body
            assert ready.body["checks"]["redis"].startswith("down: "), ready.body
        await asyncio.to_thread(module_redis.start)  # the same port, empty
        phase[0] = "back"

        async def all_ready() -> bool:
            return all([(await _call(c, "ready", "GET", "/readyz")).status == 200 for c in clients])

        end = time.monotonic() + 15
        while not await all_ready():  # the servers reconnect by themselves: nobody restarts them
            assert time.monotonic() < end, f"not ready after Redis came back\n{cluster.server_logs()}"
            await asyncio.sleep(0.1)
        await until(lambda: count("claim", "back") >= 4 and count("read", "back") >= 4, "load after the outage")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), DEADLINE + 5)
        for c in clients:
            await c.aclose()

    # Every label read answered from the database when the cache was gone: 200, the same label.
    reads = [c for c in calls if c.kind == "read"]
    assert all(c.status == 200 for c in reads), Counter((c.phase, c.status) for c in reads)
    assert all(c.body["label"] == label for c in reads)
    # Every claim was credited exactly what API.md says, whatever Redis was doing.
    claims = [c for c in calls if c.kind == "claim"]
    assert all(c.status == 201 for c in claims), [(c.phase, c.status, c.body) for c in claims if c.status != 201]
    earned: Counter[str] = Counter()
    for c in claims:
        assert c.body["credited_g"] == grams(GOOD, c.qty), c.body
        earned[c.sub] += grams(GOOD, c.qty)
    with httpx.Client(base_url=cluster.bases[1], timeout=DEADLINE) as client:
        for sub in subs:
            wallet = shop.flow.ok(client.get("/v1/wallet", headers=headers[sub]))
            assert (wallet["balance_g"], wallet["earned_g"]) == (earned[sub], earned[sub]), (sub, wallet)

        # The cache works again: a label read writes its entry into the (new, empty) Redis.
        store = module_redis.client()
        key = f"{namespace}:cache:view:0{shop.good}"  # the cache keys products by GTIN-14

        def cached() -> bool:
            assert shop.flow.ok(client.get(f"/v1/products/{shop.good}"))["label"] == label
            return any(field.startswith(b"json|") for field in store.hkeys(key))

        wait_until(cached, DEADLINE, "a label read after Redis came back is cached in it")

        # The leaderboard is the ledger's again: rebuilt from it on a read, no CLI, no restart.
        totals, accounts = await _ledger_board(cluster.database)
        assert {sub: totals[sub] for sub in subs} == dict(earned)
        expected = _board_oracle(totals, accounts)
        for base, period in zip(cluster.bases, ("week", "month"), strict=True):
            board = shop.flow.ok(client.get(f"{base}/v1/leaderboard", params={"period": period},
                                            headers=headers[subs[0]]))
            assert board["items"] == expected, (base, period, board)
            rank = next(r["rank"] for r in expected if r["display_name"] == f"#{accounts[subs[0]].replace('-', '')[:8]}")
            assert board["me"] == {"rank": rank, "credited_g": earned[subs[0]]}
        # ...and lives in the new Redis again (the week's and the month's), as the ledger's totals by account.
        boards = [k for k in store.keys(f"{namespace}:leaderboard:*") if store.type(k) == b"zset"]
        assert len(boards) == 2, boards
        for board_key in boards:
            in_redis = {m.decode(): int(g) for m, g in store.zrange(board_key, 0, -1, withscores=True)}
            assert in_redis == {accounts[sub]: g for sub, g in totals.items() if g}, board_key


# --- 2. PostgreSQL crashed under load, and back -----------------------------------------------------


async def test_postgres_crash_under_load_answers_503_and_recovers(cluster: Cluster, shop: Shop,
                                                                  private_postgres: PrivatePostgres) -> None:
    try:
        await _postgres_crash(cluster, shop, private_postgres)
    finally:
        if not private_postgres.running():  # the next test needs its database, whatever this one found
            private_postgres.start()


async def _postgres_crash(cluster: Cluster, shop: Shop, server: PrivatePostgres) -> None:
    with httpx.Client(base_url=cluster.bases[0], timeout=DEADLINE) as sync_client:
        label = shop.flow.ok(sync_client.get(f"/v1/products/{shop.good}"))["label"]
    run = uuid.uuid4().hex[:6]
    subs = [f"p-{run}-{i}" for i in range(3)]
    headers = {sub: cluster.auth("consumer", sub=sub) for sub in subs}
    calls: list[Call] = []
    stop = asyncio.Event()
    clients = [httpx.AsyncClient(base_url=base, timeout=DEADLINE) for base in cluster.bases]

    async def loop(kind: str, sub: str = "") -> None:
        n = 0
        while not stop.is_set():
            client = clients[n % len(clients)]  # both servers go through the outage
            if kind == "claim":
                qty = 1 + n % 3
                receipt = shop.signer.receipt([{"gtin": shop.good, "qty": qty}])
                call = await _call(client, kind, "POST", "/v1/credits/purchases", json={"receipt": receipt},
                                   headers=headers[sub])
                call.sub, call.receipt, call.qty = sub, receipt, qty
            elif kind == "read":
                call = await _call(client, kind, "GET", f"/v1/products/{shop.good}")
            elif kind == "label":
                call = await _call(client, kind, "GET", f"/v1/labels/{label['id']}")
            else:
                call = await _call(client, kind, "GET", "/readyz")
            calls.append(call)
            n += 1
            await asyncio.sleep(0.02 if call.status in (200, 201) else 0.25)  # an outage is not a busy loop

    def answered(kind: str, status: int, after: float) -> int:
        return sum(c.kind == kind and c.status == status and c.sent > after for c in calls)

    async def until(check: Any, what: str, deadline: float = 20) -> float:
        end = time.monotonic() + deadline
        while not check():
            assert time.monotonic() < end, (f"{what}: not within {deadline} s\n{cluster.server_logs()}\n"
                                            f"{server.log_tail()}")
            await asyncio.sleep(0.05)
        return time.monotonic()

    workers = [asyncio.create_task(loop("claim", sub)) for sub in subs] + [asyncio.create_task(loop(kind))
                                                                           for kind in ("read", "label", "ready")]
    try:
        await until(lambda: answered("claim", 201, 0) >= 6, "claims before the crash")
        await asyncio.to_thread(server.crash)
        crashed = time.monotonic()
        await asyncio.sleep(2)
        restarting = time.monotonic()
        await asyncio.to_thread(server.start)
        restarted = time.monotonic()
        # Back by itself: the pool drops its dead connections and opens new ones.
        await until(lambda: all(answered(kind, ok, restarted) >= 3 for kind, ok in
                                (("claim", 201), ("label", 200), ("ready", 200))), "recovery after the restart")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), DEADLINE + 5)
        for client in clients:
            await client.aclose()

    summary = Counter((c.kind, c.status) for c in calls)
    # Never a hang, never a 500: an answer within the deadline, a success or a 503.
    hung = [c for c in calls if c.status is None]
    assert not hung, [c.error for c in hung]
    allowed = {"claim": (201, 503), "read": (200, 503), "label": (200, 503), "ready": (200, 503)}
    odd = [c for c in calls if c.status not in allowed[c.kind]]
    assert not odd, ([(c.kind, c.status, c.body.get("detail") if isinstance(c.body, dict) else c.body) for c in odd],
                     _logged_database_errors(cluster))
    for c in calls:
        if c.status == 503 and c.kind != "ready":
            assert c.media == PROBLEM, c
            assert (c.body["status"], c.body["reason"]) == (503, "dependency_unavailable"), c.body
        elif c.status == 503:  # readiness answers its own document: which check failed (the crash may
            # come between its database and schema probes)
            checks = c.body["checks"]
            # The readiness document names each check; on a loaded 2-core machine a Redis probe
            # racing the crash's reconnects was seen to time out as well: what matters is that the
            # document says unavailable and that some check says why.
            assert c.body["status"] == "unavailable", c.body
            assert "database" in checks and set(checks) <= {"database", "schema", "redis"}, c.body
            assert any(v != "ok" for v in checks.values()), c.body
            assert any(checks.get(name, "").startswith("down: ") for name in ("database", "schema")), c.body
        elif c.kind == "read":
            assert c.body["label"] == label
        elif c.kind == "label":
            assert c.body == label
    # While it was down (sent after the crash, answered before the restart began) nothing that needs
    # the database succeeded, and each kind was refused; the product page came from the cache (a hit
    # opens no database session), right.
    during = [c for c in calls if c.sent > crashed and c.done < restarting]
    assert {c.status for c in during if c.kind != "read"} == {503}, Counter((c.kind, c.status) for c in during)
    assert {c.kind for c in during if c.status == 503} == {"claim", "label", "ready"}, summary
    assert {c.status for c in during if c.kind == "read"} == {200}, summary
    # And the tail, after the recovery, is all successes.
    for kind in ("claim", "read", "label", "ready"):
        last = [c for c in calls if c.kind == kind][-2:]
        assert all(c.status in (200, 201) for c in last), (kind, last)

    # The ledger holds every acknowledged claim as answered and no refused one.
    claims = [c for c in calls if c.kind == "claim"]
    stored = {r.jti: (r.id, int(r.credited_g)) for r in await _sql(
        cluster.database, f"SELECT {RECEIPT_ID} AS jti, c.id, c.credited_g FROM credit_claims c JOIN credit_accounts a "
                          "ON a.id = c.account_id WHERE c.kind = 'purchase' AND a.owner = ANY(:subs)", subs=subs)}
    acknowledged = {_receipt_jti(c.receipt): (c.body["claim_id"], c.body["credited_g"]) for c in claims
                    if c.status == 201}
    refused = [c for c in claims if c.status == 503]
    assert refused and acknowledged, summary
    assert stored == acknowledged, "every 201 is in the ledger as answered; no 503 left a claim behind"
    orphans = await _sql(cluster.database, "SELECT t.id FROM credit_transfers t LEFT JOIN credit_claims c "
                                           "ON c.transfer_id = t.id WHERE t.kind = 'purchase' AND c.id IS NULL")
    assert orphans == []  # no purchase transfer without its claim
    unpaid = await _sql(cluster.database, "SELECT id FROM credit_claims WHERE kind = 'purchase' AND transfer_id IS NULL")
    assert unpaid == []  # and no claim without its transfer
    # A refused claim was refused whole: tried again now, it earns.
    earned: Counter[str] = Counter()
    for c in claims:
        if c.status == 201:
            earned[c.sub] += c.body["credited_g"]
    async with httpx.AsyncClient(base_url=cluster.bases[0], timeout=DEADLINE) as client:
        retries = await asyncio.wait_for(asyncio.gather(*[client.post(
            "/v1/credits/purchases", json={"receipt": c.receipt}, headers=headers[c.sub]) for c in refused]), DEADLINE + 5)
    for c, again in zip(refused, retries, strict=True):
        assert again.status_code == 201, again.text
        assert again.json()["credited_g"] == grams(GOOD, c.qty)
        earned[c.sub] += grams(GOOD, c.qty)
    with httpx.Client(base_url=cluster.bases[0], timeout=DEADLINE) as sync_client:
        for sub in subs:
            wallet = sync_client.get("/v1/wallet", headers=headers[sub]).json()
            assert wallet["balance_g"] == wallet["earned_g"] == earned[sub], (sub, wallet)
    _ledger_check(cluster)  # and every invariant holds after the crash


# --- 3. a server killed with claims in flight -------------------------------------------------------


async def test_server_killed_mid_claims_loses_nothing_and_credits_nothing_twice(
        servers: tuple[Cluster, Victim], shop: Shop) -> None:
    cluster, victim = servers
    run = uuid.uuid4().hex[:6]
    subs = [f"k-{run}-{i}" for i in range(4)]
    headers = {sub: cluster.auth("consumer", sub=sub) for sub in subs}
    plan = [(subs[n % len(subs)], 1 + n % 3) for n in range(24)]
    receipts = [shop.signer.receipt([{"gtin": shop.good, "qty": qty}]) for _, qty in plan]
    try:
        assert victim.process.poll() is None, victim.log.read_text(errors="replace")[-3000:]
        limits = httpx.Limits(max_connections=len(plan))
        async with httpx.AsyncClient(base_url=victim.base, timeout=DEADLINE, limits=limits) as client:
            tasks = [asyncio.create_task(client.post("/v1/credits/purchases", json={"receipt": receipt},
                                                     headers=headers[sub]))
                     for (sub, _), receipt in zip(plan, receipts, strict=True)]
            end = time.monotonic() + DEADLINE
            while sum(task.done() for task in tasks) < 2:  # a few acknowledged, the rest in flight
                assert time.monotonic() < end, "no claim answered"
                await asyncio.wait(tasks, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
            os.killpg(victim.process.pid, signal.SIGKILL)
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), DEADLINE + 5)
        victim.process.wait(timeout=10)
    finally:
        _stop(victim.process)

    answers: list[httpx.Response | None] = []
    for task in tasks:
        result = None if task.exception() else task.result()
        assert result is None or result.status_code == 201, result.text
        answers.append(result)
    unanswered = [n for n, a in enumerate(answers) if a is None]
    assert unanswered, "the kill came after every claim was answered: the test proved nothing"

    jtis = [_receipt_jti(r) for r in receipts]
    rows = await _sql(cluster.database, f"SELECT {RECEIPT_ID} AS jti, c.id, c.credited_g, a.owner FROM credit_claims c "
                                        "JOIN credit_accounts a ON a.id = c.account_id WHERE c.kind = 'purchase' "
                                        f"AND {RECEIPT_ID} = ANY(:j)", j=jtis)
    stored = {r.jti: r for r in rows}
    assert len(stored) == len(rows)
    for n, answer in enumerate(answers):  # every acknowledged claim, exactly as answered
        if answer is not None:
            row = stored[jtis[n]]
            assert (row.id, int(row.credited_g), row.owner) == (answer.json()["claim_id"], grams(GOOD, plan[n][1]),
                                                                plan[n][0])
    # Every claim that exists has its transfer, and the transfer its two legs of the claim's amount.
    legs = await _sql(cluster.database, f"SELECT {RECEIPT_ID} AS jti, count(e.id) AS n, "
                                        "coalesce(sum(abs(e.amount_g)), 0) AS g FROM credit_claims c "
                                        "LEFT JOIN credit_entries e ON e.transfer_id = c.transfer_id "
                                        f"WHERE {RECEIPT_ID} = ANY(:j) GROUP BY c.id", j=jtis)
    assert sorted((r.jti, r.n, int(r.g)) for r in legs) == sorted(
        (r.jti, 2, 2 * int(r.credited_g)) for r in rows), legs

    # The unacknowledged, retried on a live server: each earns now, or was committed before the kill
    # and names that claim.
    async with httpx.AsyncClient(base_url=cluster.bases[0], timeout=DEADLINE) as client:
        retries = await asyncio.wait_for(asyncio.gather(*[
            client.post("/v1/credits/purchases", json={"receipt": receipts[n]}, headers=headers[plan[n][0]])
            for n in unanswered]), DEADLINE + 5)
    for n, again in zip(unanswered, retries, strict=True):
        if again.status_code == 201:
            assert jtis[n] not in stored and again.json()["credited_g"] == grams(GOOD, plan[n][1]), again.text
        else:
            problem = again.json()
            assert (again.status_code, problem["reason"]) == (409, "receipt_already_claimed"), again.text
            assert problem["claim_id"] == stored[jtis[n]].id
    earned: Counter[str] = Counter()
    for sub, qty in plan:
        earned[sub] += grams(GOOD, qty)
    with httpx.Client(base_url=cluster.bases[1], timeout=DEADLINE) as client:
        for sub in subs:  # each receipt once: nothing lost, nothing twice
            wallet = shop.flow.ok(client.get("/v1/wallet", headers=headers[sub]))
            assert wallet["balance_g"] == wallet["earned_g"] == earned[sub], (sub, wallet)
    counts = await _sql(cluster.database, f"SELECT {RECEIPT_ID} AS jti, count(*) AS n FROM credit_claims c "
                                          f"WHERE {RECEIPT_ID} = ANY(:j) GROUP BY 1", j=jtis)
    assert sorted((r.jti, r.n) for r in counts) == sorted((j, 1) for j in jtis)
    await _ledger_holds(cluster.database)


# --- 4. two servers, duplicate receipts and a scarce reward, all at once ----------------------------


async def test_two_servers_claims_and_redemptions_at_once(cluster: Cluster, shop: Shop) -> None:
    cost, stock, copies = 2500, 5, 3
    reward_id = shop.flow.reward(cost, stock, title=f"Mug {uuid.uuid4().hex[:6]}")
    run = uuid.uuid4().hex[:6]
    subs = [f"s-{run}-{i}" for i in range(8)]
    headers = {sub: cluster.auth("consumer", sub=sub) for sub in subs}
    start = grams(GOOD, 3)
    assert start >= copies * cost  # enough to pay for every attempt: the stock alone limits
    async with httpx.AsyncClient(base_url=cluster.bases[0], timeout=DEADLINE) as client:
        firsts = await asyncio.wait_for(asyncio.gather(*[client.post("/v1/credits/purchases", headers=headers[sub], json={
            "receipt": shop.signer.receipt([{"gtin": shop.good, "qty": 3}])}) for sub in subs]), DEADLINE + 5)
    assert [r.status_code for r in firsts] == [201] * len(subs), [r.text for r in firsts]
    receipts = {sub: shop.signer.receipt([{"gtin": shop.good, "qty": 1 + i % 3}]) for i, sub in enumerate(subs)}
    requests = []
    for copy in range(copies):  # each receipt and each redemption to both servers, interleaved
        for i, sub in enumerate(subs):
            requests.append((sub, "claim", (i + copy) % 2, "/v1/credits/purchases", {"receipt": receipts[sub]}))
            requests.append((sub, "redeem", (i + copy + 1) % 2, "/v1/wallet/redemptions", {"reward_id": reward_id}))
    limits = httpx.Limits(max_connections=len(requests))
    clients = [httpx.AsyncClient(base_url=base, timeout=DEADLINE, limits=limits) for base in cluster.bases]
    try:
        responses = await asyncio.wait_for(asyncio.gather(*[
            clients[server].post(path, json=body, headers=headers[sub])
            for sub, _, server, path, body in requests]), DEADLINE + 5)
    finally:
        for c in clients:
            await c.aclose()

    outcomes = Counter((kind, r.status_code, r.json().get("reason")) for (_, kind, *_), r in
                       zip(requests, responses, strict=True))
    assert outcomes == {("claim", 201, None): len(subs), ("claim", 409, "receipt_already_claimed"):
                        len(subs) * (copies - 1), ("redeem", 201, None): stock,
                        ("redeem", 409, "out_of_stock"): len(subs) * copies - stock}, (outcomes, cluster.server_logs())
    claimed: dict[str, str] = {}
    redeemed: Counter[str] = Counter()
    for (sub, kind, *_), response in zip(requests, responses, strict=True):
        body = response.json()
        if kind == "claim" and response.status_code == 201:
            claimed[sub] = body["claim_id"]
            assert body["credited_g"] == grams(GOOD, 1 + subs.index(sub) % 3)
        elif kind == "redeem" and response.status_code == 201:
            redeemed[sub] += 1
    for (sub, kind, *_), response in zip(requests, responses, strict=True):
        if kind == "claim" and response.status_code == 409:
            assert response.json()["claim_id"] == claimed[sub]  # the one claim, whichever server took it
    with httpx.Client(base_url=cluster.bases[1], timeout=DEADLINE) as client:
        for i, sub in enumerate(subs):
            earned = start + grams(GOOD, 1 + i % 3)
            wallet = shop.flow.ok(client.get("/v1/wallet", headers=headers[sub]))
            assert (wallet["earned_g"], wallet["redeemed_g"], wallet["balance_g"]) == (
                earned, redeemed[sub] * cost, earned - redeemed[sub] * cost), (sub, wallet)
    jtis = [_receipt_jti(r) for r in receipts.values()]
    counts = await _sql(cluster.database, f"SELECT count(*) AS n, count(DISTINCT {RECEIPT_ID}) AS d FROM credit_claims c "
                                          f"WHERE {RECEIPT_ID} = ANY(:j)", j=jtis)
    assert tuple(counts[0]) == (len(subs), len(subs))
    sold = await _sql(cluster.database, "SELECT r.stock, r.redeemed, (SELECT count(*) FROM redemptions d "
                                        "WHERE d.reward_id = r.id) AS n FROM rewards r WHERE r.id = :r", r=reward_id)
    assert tuple(sold[0]) == (0, stock, stock)
    await _ledger_holds(cluster.database)

"""Credits under real concurrency: two `carbonpuhui serve` processes on one PostgreSQL database and
one Redis. One receipt submitted many times at once earns once; a reward with little stock,
redeemed by many at once, is never oversold and no balance goes below zero; with Redis gone
claims still succeed, the leaderboard is read from the ledger, and `leaderboard rebuild` restores
it once Redis is back (empty). The last two tests hold the board to the ledger where Redis comes back
with its data, and where a claim commits while a board is being rebuilt."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from math import floor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import text

from carbonpuhui.auth.tokens import mint_token
from carbonpuhui.db.engine import create_engine
from carbonpuhui.db.migrate import upgrade
from carbonpuhui.settings import load_settings
from tests.api.credit_flow import SHOP, CreditFlow, Signer
from tests.conftest import REDIS_NAMESPACE, once_per_ci, require_service
from tests.integration.test_serve import _free_port, wait_ready

pytestmark = [pytest.mark.services, once_per_ci]

DEADLINE = 45  # seconds for any one burst of requests: a lock wait that never ends fails, not hangs
BASELINE, GOOD, POOR, PER_ITEM = Decimal(50), Decimal(20), Decimal(45), Decimal("0.1")  # kg CO2e per kg, kg/item


def grams(label: Decimal, qty: int) -> int:
    """The credit API.md defines, computed here: (baseline - label) x kg per item x qty, in whole grams."""
    return floor(Fraction(BASELINE - label) * Fraction(PER_ITEM) * qty * 1000)


# --- servers ----------------------------------------------------------------------------------------


def _start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    with log.open("ab") as out:  # a file, not a pipe nobody reads: request logs would stall the server
        process = subprocess.Popen([sys.executable, "-m", "carbonpuhui.cli", "serve", "--port", str(port)], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return process, f"http://127.0.0.1:{port}"


def _ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    try:
        wait_ready(base, process)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log.read_text(errors='replace')[-4000:]}") from None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class Cluster:
    env: dict[str, str]
    bases: list[str]
    database: str
    logs: list[Path]

    def auth(self, *roles: str, sub: str = "tester", org: str | None = None) -> dict[str, str]:
        settings = load_settings(self.env)  # the servers' own key, issuer and audience
        token = mint_token(settings.key_path, issuer=settings.token_issuer, audience=settings.token_audience,
                           sub=sub, roles=list(roles), org=org, ttl=900)
        return {"Authorization": f"Bearer {token}"}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "carbonpuhui.cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=60)

    def server_logs(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-3000:] for log in self.logs)


@dataclass
class Shop:
    flow: CreditFlow
    signer: Signer
    good: str  # a GTIN earning grams(GOOD, qty)
    poor: str  # one earning grams(POOR, qty)


def _env(data_dir: Path, database: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONPUHUI_")}
    env.update(CARBONPUHUI_DATA_DIR=str(data_dir), CARBONPUHUI_DATABASE_URL=database, CARBONPUHUI_REDIS_URL=redis_url,
               CARBONPUHUI_REDIS_NAMESPACE=f"{REDIS_NAMESPACE}:{uuid.uuid4().hex[:6]}")
    return env


def _cluster(tmp: Path, database: str, redis_url: str, count: int) -> tuple[Cluster, list[subprocess.Popen[bytes]]]:
    upgrade(database)
    env = _env(tmp / "data", database, redis_url)
    logs = [tmp / f"server-{i}.log" for i in range(count)]
    started = [_start(env, log) for log in logs]  # all at once: each spends seconds warming its kernels
    processes = [process for process, _ in started]
    try:
        for (process, base), log in zip(started, logs, strict=True):
            _ready(base, process, log)
    except BaseException:
        for process in processes:
            _stop(process)
        raise
    return Cluster(env=env, bases=[base for _, base in started], database=database, logs=logs), processes


def _shop(cluster: Cluster, client: httpx.Client) -> Shop:
    """Through the API: a benchmark, two products with verified labels, the shop's receipt key."""
    flow = CreditFlow(client, cluster.auth)
    flow.benchmark(["10", "20", "30", "40"], baseline=str(BASELINE), uncertainty_penalty="0")
    good = flow.labelled(1, str(GOOD), per_item=str(PER_ITEM))
    poor = flow.labelled(2, str(POOR), per_item=str(PER_ITEM))
    return Shop(flow=flow, signer=flow.register(), good=good, poor=poor)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres_databases, redis_url: str) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("credit-cluster")
    found, processes = _cluster(tmp, postgres_databases.create(), redis_url, 2)
    try:
        yield found
    finally:
        for process in processes:
            _stop(process)
        # Ours alone to remove (the shared Redis is cleaned at the end of a run only when configured).
        shared = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
        keys = list(shared.scan_iter(match=f"{found.env['CARBONPUHUI_REDIS_NAMESPACE']}:*", count=1000))
        if keys:
            shared.delete(*keys)


@pytest.fixture(scope="module")
def shop(cluster: Cluster) -> Iterator[Shop]:
    with httpx.Client(base_url=cluster.bases[0], timeout=30) as client:
        yield _shop(cluster, client)


# --- helpers ----------------------------------------------------------------------------------------


async def _sql(database: str, sql: str, **params: Any) -> list[Any]:
    """Straight from the database, past the application's code."""
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())
    finally:
        await engine.dispose()


async def _burst(cluster: Cluster, requests: list[tuple[int, str, str, dict[str, Any], dict[str, str]]]
                 ) -> list[httpx.Response]:
    """All ``(server, method, path, body, headers)`` at once, over one connection each."""
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    clients = [httpx.AsyncClient(base_url=base, timeout=DEADLINE, limits=limits) for base in cluster.bases]
    try:
        calls = [clients[server].request(method, path, json=body, headers=headers)
                 for server, method, path, body, headers in requests]
        return await asyncio.wait_for(asyncio.gather(*calls), DEADLINE + 5)
    finally:
        for client in clients:
            await client.aclose()


def _ledger_check(cluster: Cluster) -> dict[str, int]:
    done = cluster.cli("ledger", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["violations"] == 0, report
    return report


def _wallet(client: httpx.Client, headers: dict[str, str]) -> dict[str, int]:
    response = client.get("/v1/wallet", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# --- 1. one receipt, many claims --------------------------------------------------------------------


@pytest.mark.parametrize(("consumers", "times"), [(50, 1), (5, 10)], ids=["50-consumers", "5-consumers-10-times"])
async def test_one_receipt_submitted_at_once_earns_once(cluster: Cluster, shop: Shop, consumers: int,
                                                        times: int) -> None:
    receipt = shop.signer.receipt([{"gtin": shop.good, "qty": 2}])
    run = uuid.uuid4().hex[:6]
    subs = [f"buyer-{run}-{i}" for i in range(consumers)]
    headers = {sub: cluster.auth("consumer", sub=sub) for sub in subs}
    # Interleaved: each consumer's attempts go to both servers.
    order = [subs[i % consumers] for i in range(consumers * times)]
    responses = await _burst(cluster, [(n % 2, "POST", "/v1/credits/purchases", {"receipt": receipt}, headers[sub])
                                       for n, sub in enumerate(order)])
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: len(order) - 1}, (statuses, [r.text for r in responses if r.status_code >= 500],
                                                       cluster.server_logs())
    (won,) = [(sub, r.json()) for sub, r in zip(order, responses, strict=True) if r.status_code == 201]
    winner, first = won
    assert first["credited_g"] == grams(GOOD, 2) == first["balance_g"]
    for response in responses:
        if response.status_code == 409:
            problem = response.json()
            assert problem["reason"] == "receipt_already_claimed", problem
            assert problem["claim_id"] == first["claim_id"], problem
    # The database: of everyone who tried, one claim and one purchase transfer, paying the winner.
    claims = await _sql(cluster.database, "SELECT c.id, c.transfer_id FROM credit_claims c JOIN credit_accounts a "
                                          "ON a.id = c.account_id WHERE a.owner = ANY(:subs)", subs=subs)
    assert [c.id for c in claims] == [first["claim_id"]]
    transfers = await _sql(cluster.database, "SELECT DISTINCT t.id, t.reference FROM credit_transfers t "
                                             "JOIN credit_entries e ON e.transfer_id = t.id JOIN credit_accounts a "
                                             "ON a.id = e.account_id WHERE t.kind = 'purchase' AND a.owner = ANY(:subs)",
                           subs=subs)
    assert [tuple(t) for t in transfers] == [(claims[0].transfer_id, first["claim_id"])]
    legs = await _sql(cluster.database, "SELECT a.kind, a.owner, e.amount_g FROM credit_entries e "
                                        "JOIN credit_accounts a ON a.id = e.account_id WHERE e.transfer_id = :t "
                                        "ORDER BY e.amount_g", t=transfers[0].id)
    assert [tuple(leg) for leg in legs] == [("issuance", None, -grams(GOOD, 2)), ("person", winner, grams(GOOD, 2))]
    with httpx.Client(base_url=cluster.bases[1], timeout=30) as client:
        for sub in subs:
            wallet = _wallet(client, headers[sub])
            expected = grams(GOOD, 2) if sub == winner else 0
            assert (wallet["balance_g"], wallet["earned_g"]) == (expected, expected), (sub, wallet)
    _ledger_check(cluster)


# --- 2. a reward with little stock, redeemed by many ------------------------------------------------


async def test_concurrent_redemptions_never_oversell_or_overdraw(cluster: Cluster, shop: Shop) -> None:
    cost, stock = 2500, 10
    reward_id = shop.flow.reward(cost, stock, title=f"Tote {uuid.uuid4().hex[:6]}")
    run = uuid.uuid4().hex[:6]
    # 40 consumers who can pay for 1, 2 or 3 each; 8 who earned too little; 2 who earned nothing.
    earned: dict[str, int] = {}
    receipts: dict[str, str] = {}
    for i in range(40):
        sub, qty = f"rich-{run}-{i}", 1 + i % 3
        earned[sub], receipts[sub] = grams(GOOD, qty), shop.signer.receipt([{"gtin": shop.good, "qty": qty}])
    for i in range(8):
        sub, qty = f"poor-{run}-{i}", 1 + i % 4
        earned[sub], receipts[sub] = grams(POOR, qty), shop.signer.receipt([{"gtin": shop.poor, "qty": qty}])
    for i in range(2):
        earned[f"none-{run}-{i}"] = 0
    assert all(g < cost for s, g in earned.items() if not s.startswith("rich")), "the poor cannot pay once"
    headers = {sub: cluster.auth("consumer", sub=sub) for sub in earned}
    claimed = await _burst(cluster, [(n % 2, "POST", "/v1/credits/purchases", {"receipt": receipts[sub]}, headers[sub])
                                     for n, sub in enumerate(receipts)])
    for sub, response in zip(receipts, claimed, strict=True):
        assert response.status_code == 201, response.text
        assert response.json()["credited_g"] == earned[sub]
    # 200 redemptions at once: four from every consumer, spread over both servers.
    order = [sub for _ in range(4) for sub in earned]
    assert len(order) == 200
    responses = await _burst(cluster, [(n % 2, "POST", "/v1/wallet/redemptions", {"reward_id": reward_id},
                                        headers[sub]) for n, sub in enumerate(order)])
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: stock, 409: len(order) - stock}, (statuses, cluster.server_logs())
    won: Counter[str] = Counter()
    paid_balances: dict[str, list[int]] = {}
    for sub, response in zip(order, responses, strict=True):
        body = response.json()
        if response.status_code == 201:
            won[sub] += 1
            paid_balances.setdefault(sub, []).append(body["balance_g"])
            assert body["cost_g"] == cost and body["reward_id"] == reward_id
        else:
            assert body["reason"] in {"out_of_stock", "insufficient_balance"}, body
            if body["reason"] == "insufficient_balance":
                assert 0 <= body["balance_g"] < cost, body
    for sub, count in won.items():
        assert count <= earned[sub] // cost, (sub, count, earned[sub])
        # Each person's redemptions were serialised: the balances they left are earned - k x cost, k = 1..n.
        assert sorted(paid_balances[sub], reverse=True) == [earned[sub] - k * cost for k in range(1, count + 1)]
    with httpx.Client(base_url=cluster.bases[0], timeout=30) as client:
        for sub, total in earned.items():
            wallet = _wallet(client, headers[sub])
            assert wallet["balance_g"] == total - won[sub] * cost >= 0, (sub, wallet)
            assert (wallet["earned_g"], wallet["redeemed_g"]) == (total, won[sub] * cost), (sub, wallet)
        listed = client.get("/v1/rewards", params={"merchant": SHOP, "limit": 500}).json()["items"]
    (reward,) = [r for r in listed if r["id"] == reward_id]
    assert (reward["stock"], reward["redeemed"]) == (0, stock)
    # The database agrees: ten redemptions, the shop paid ten times the cost, no balance below zero.
    rows = await _sql(cluster.database, "SELECT count(*) AS n, coalesce(sum(cost_g), 0) AS g FROM redemptions "
                                        "WHERE reward_id = :r", r=reward_id)
    assert tuple(rows[0]) == (stock, stock * cost)
    negative = await _sql(cluster.database, "SELECT id FROM credit_accounts WHERE balance_g < 0")
    assert negative == []
    _ledger_check(cluster)


# --- 3. Redis gone, and back empty ------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of this test's own (never the shared one), stoppable and restartable on one port."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.folder = folder  # its working directory: a SAVE writes dump.rdb there, a start loads it
        self.log = folder / "redis.log"
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--daemonize", "no", "--dir", str(self.folder)], stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=1).ping()
                return
            except redis.ConnectionError:
                assert self.process.poll() is None, self.log.read_text(errors="replace")
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # as a crash would: nothing saved (there is nothing to save to)
        self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        require_service("redis-server is not installed")
    (tmp_path / "redis").mkdir()
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()


def _board_oracle(totals: dict[str, int], accounts: dict[str, str]) -> list[dict[str, Any]]:
    """The board as the ledger makes it: credits earned this period, best first, ties listed by account
    id (descending) and sharing a rank (one more than the number who earned strictly more); people
    appear as a pseudonym of their account id."""
    ranked = sorted(((grams_, accounts[sub]) for sub, grams_ in totals.items() if grams_ > 0), reverse=True)
    return [{"rank": 1 + sum(other > g for other, _ in ranked),
             "display_name": f"#{account_id.replace('-', '')[:8]}", "credited_g": g} for g, account_id in ranked]


def test_claims_survive_redis_going_away_and_the_board_is_rebuilt(tmp_path: Path, postgres_databases,
                                                                     private_redis: PrivateRedis) -> None:
    cluster, processes = _cluster(tmp_path, postgres_databases.create(), private_redis.url, 1)
    namespace = cluster.env["CARBONPUHUI_REDIS_NAMESPACE"]
    try:
        with httpx.Client(base_url=cluster.bases[0], timeout=30) as client:
            shop = _shop(cluster, client)
            subs = [f"walker-{i}" for i in range(5)]
            headers = {sub: cluster.auth("consumer", sub=sub) for sub in subs}
            totals = dict.fromkeys(subs, 0)

            def claim(sub: str, qty: int, key: str | None = None) -> tuple[str, dict[str, Any]]:
                receipt = shop.signer.receipt([{"gtin": shop.good, "qty": qty}])
                response = shop.flow.claim(headers[sub], receipt, key)
                assert response.status_code == 201, (response.text, cluster.server_logs())
                totals[sub] += grams(GOOD, qty)
                assert response.json()["balance_g"] == totals[sub]
                return receipt, response.json()

            def board(sub: str, period: str = "week") -> dict[str, Any]:
                response = client.get("/v1/leaderboard", params={"period": period}, headers=headers[sub])
                assert response.status_code == 200, (response.text, cluster.server_logs())
                return response.json()

            def accounts() -> dict[str, str]:
                out = {}
                for sub in subs:
                    exported = client.get("/v1/me/export", headers=headers[sub])
                    assert exported.status_code == 200, exported.text
                    if exported.json()["account"] is not None:
                        out[sub] = exported.json()["account"]["id"]
                return out

            claim("walker-0", 1)
            claim("walker-1", 2)
            assert board("walker-0")["items"] == _board_oracle(totals, accounts())  # built in Redis on this read
            claim("walker-2", 3)  # bumped on the built board
            assert private_redis.client().keys(f"{namespace}:leaderboard:*"), "the board lives in Redis"

            private_redis.kill()
            started = time.monotonic()
            claim("walker-3", 1)
            receipt, first = claim("walker-0", 4, key="while-redis-is-down")
            assert time.monotonic() - started < 10, "a Redis outage must not stall claims"
            # Retries are still answered by the database: the same key replays, the same receipt is refused.
            replay = shop.flow.claim(headers["walker-0"], receipt, "while-redis-is-down")
            assert (replay.status_code, replay.json()) == (201, first), replay.text
            assert replay.headers.get("idempotent-replayed") == "true"
            again = shop.flow.claim(headers["walker-1"], receipt)
            assert (again.status_code, again.json()["claim_id"]) == (409, first["claim_id"]), again.text
            for sub in subs:
                wallet = _wallet(client, headers[sub])
                assert (wallet["balance_g"], wallet["earned_g"]) == (totals[sub], totals[sub]), (sub, wallet)
            ids = accounts()
            expected = _board_oracle(totals, ids)
            assert [r["credited_g"] for r in expected] == sorted((g for g in totals.values() if g), reverse=True)
            down = board("walker-0")
            assert down["items"] == expected, "without Redis the board is read from the ledger"
            assert down["me"] == {"rank": 1, "credited_g": totals["walker-0"]}
            assert board("walker-3", "month")["items"] == expected

            private_redis.start()  # the same port, empty
            rebuilt = cluster.cli("leaderboard", "rebuild")
            assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
            report = json.loads(rebuilt.stdout)
            assert (report["store"], report["week"], report["month"]) == ("redis", 4, 4), report
            # The rebuilt board, read straight from Redis: the ledger's totals, by account id.
            store = private_redis.client()
            week_keys = [k for k in store.keys(f"{namespace}:leaderboard:*week*") if store.type(k) == b"zset"]
            assert len(week_keys) == 1, week_keys
            in_redis = {m.decode(): int(s) for m, s in store.zrange(week_keys[0], 0, -1, withscores=True)}
            assert in_redis == {ids[sub]: g for sub, g in totals.items() if g}
            for period in ("week", "month"):
                shown = board("walker-1", period)
                assert shown["items"] == expected, period
                rank = next(r["rank"] for r in expected if r["display_name"] == f"#{ids['walker-1'].replace('-', '')[:8]}")
                assert shown["me"] == {"rank": rank, "credited_g": totals["walker-1"]}
            assert board("walker-4")["me"] is None  # never earned

            # A claim after the restart is bumped on the rebuilt board (a tie with walker-0: one rank, listed
            # by account id).
            claim("walker-4", 5)
            assert totals["walker-4"] == totals["walker-0"]
            ids = accounts()
            expected = _board_oracle(totals, ids)
            shown = board("walker-4")
            assert shown["items"] == expected
            assert shown["me"] == board("walker-0")["me"] == {"rank": 1, "credited_g": totals["walker-4"]}  # shared
        _ledger_check(cluster)
    finally:
        for process in processes:
            _stop(process)


# --- the board after an outage that kept Redis' data, and during a rebuild --------------------------


def test_board_is_right_after_redis_comes_back_with_its_data(tmp_path: Path, postgres_databases,
                                                             private_redis: PrivateRedis) -> None:
    """Redis restarts from its snapshot (as a persisted Redis, or a promoted replica, does): the board
    must still be the ledger's, claims made while it was away included."""
    cluster, processes = _cluster(tmp_path, postgres_databases.create(), private_redis.url, 1)
    try:
        with httpx.Client(base_url=cluster.bases[0], timeout=30) as client:
            shop = _shop(cluster, client)
            subs = ["rider-0", "rider-1", "rider-2"]
            headers = {sub: cluster.auth("consumer", sub=sub) for sub in subs}
            for qty, sub in enumerate(subs[:2], start=1):
                response = shop.flow.claim(headers[sub], shop.signer.receipt([{"gtin": shop.good, "qty": qty}]))
                assert response.status_code == 201, response.text
            assert len(shop.flow.ok(client.get("/v1/leaderboard", headers=headers["rider-0"]))["items"]) == 2
            private_redis.client().save()  # the snapshot a persisted Redis takes now and then
            private_redis.kill()
            response = shop.flow.claim(headers["rider-2"], shop.signer.receipt([{"gtin": shop.good, "qty": 3}]))
            assert response.status_code == 201, response.text
            private_redis.start()  # from its snapshot: the board and its "built" marker are back
            for _ in range(2):  # the second read surely from Redis, whatever the first made of a dead connection
                shown = shop.flow.ok(client.get("/v1/leaderboard", headers=headers["rider-2"]))
                assert shown["me"] == {"rank": 1, "credited_g": grams(GOOD, 3)}, shown
                assert [r["credited_g"] for r in shown["items"]] == [grams(GOOD, 3), grams(GOOD, 2), grams(GOOD, 1)]
    finally:
        for process in processes:
            _stop(process)


async def test_a_claim_committed_during_a_rebuild_stays_on_the_board(cluster: Cluster, shop: Shop,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`leaderboard rebuild` (and the rebuild on a read after Redis lost the board) reads the ledger,
    then replaces the board: a claim that commits in between must not vanish from it."""
    from carbonpuhui.credits import leaderboard as module
    from carbonpuhui.db import Database
    from carbonpuhui.stores import Stores

    sub = f"racer-{uuid.uuid4().hex[:6]}"
    headers = cluster.auth("consumer", sub=sub)
    qty = 100  # more than anyone else earns in this module: first on the board
    async with httpx.AsyncClient(base_url=cluster.bases[0], timeout=30) as client:
        assert (await client.get("/v1/leaderboard", headers=headers)).status_code == 200  # the board is built
        read, claims = module.ledger_totals, []

        async def read_then_a_claim_commits(session, start, end):  # type: ignore[no-untyped-def]
            totals = await read(session, start, end)
            if not claims:  # once, while the week's board is rebuilt (it comes first)
                claims.append(await client.post("/v1/credits/purchases", headers=headers, json={
                    "receipt": shop.signer.receipt([{"gtin": shop.good, "qty": qty}])}))
                assert claims[0].status_code == 201, claims[0].text  # committed, and bumped on the board
            return totals

        monkeypatch.setattr(module, "ledger_totals", read_then_a_claim_commits)
        settings = load_settings(cluster.env)
        db, stores = Database(settings.effective_database_url), Stores(settings)
        try:
            async with db.transaction() as session:  # what `carbonpuhui leaderboard rebuild` runs
                await module.Leaderboard(stores, settings.leaderboard_size).rebuild(session)
        finally:
            await stores.close()
            await db.dispose()
        monkeypatch.undo()
        assert len(claims) == 1
        shown = (await client.get("/v1/leaderboard", params={"period": "week"}, headers=headers)).json()
    assert shown["me"] == {"rank": 1, "credited_g": grams(GOOD, qty)}, shown

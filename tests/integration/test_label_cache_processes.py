"""Two server processes on one PostgreSQL and one Redis: a decision, a revocation or a benchmark change
made through one is visible on the very next read from the other, though both cache public reads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from carbonpuhui.db.migrate import upgrade
from tests.api.label_flow import gtin
from tests.conftest import REDIS_NAMESPACE, once_per_ci
from tests.integration.test_serve import _free_port, wait_ready

pytestmark = [pytest.mark.services, once_per_ci]


@pytest.fixture
def two_servers(tmp_path: Path, postgres_databases, redis_url: str) -> Iterator[tuple[str, str, dict[str, str]]]:
    database = postgres_databases.create()
    upgrade(database)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONPUHUI_")}
    env.update(CARBONPUHUI_DATA_DIR=str(tmp_path / "data"), CARBONPUHUI_DATABASE_URL=database,
               CARBONPUHUI_REDIS_URL=redis_url, CARBONPUHUI_REDIS_NAMESPACE=f"{REDIS_NAMESPACE}:{uuid.uuid4().hex[:6]}")
    processes, bases = [], []
    try:
        for _ in range(2):
            port = _free_port()
            cli = [sys.executable, "-m", "carbonpuhui.cli", "serve", "--port", str(port)]
            log = tmp_path / f"serve-{port}.log"
            with log.open("wb") as out:  # a file, not an unread pipe that would stall the server
                processes.append(subprocess.Popen(cli, env=env, stdout=out, stderr=subprocess.STDOUT,
                                                  start_new_session=True))
            bases.append(f"http://127.0.0.1:{port}")
            wait_ready(bases[-1], processes[-1], log)
        yield bases[0], bases[1], env
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)


def _token(env: dict[str, str], role: str, org: str | None = None) -> dict[str, str]:
    cli = [sys.executable, "-m", "carbonpuhui.cli", "token", "--sub", f"{role}-1", "--role", role]
    token = subprocess.run(cli + (["--org", org] if org else []), env=env, capture_output=True, text=True,
                           check=True).stdout.strip()
    return {"Authorization": f"Bearer {token}"}


def test_changes_through_one_process_show_on_the_next_read_from_the_other(two_servers) -> None:
    writer, reader, env = two_servers
    admin, owner = _token(env, "admin"), _token(env, "merchant", "acme")
    verifier = _token(env, "verifier", "cb-sgs")
    code = gtin(1)
    with httpx.Client(base_url=writer, timeout=30) as a, httpx.Client(base_url=reader, timeout=30) as b:
        def ok(response: httpx.Response, status: int = 200) -> dict:
            assert response.status_code == status, response.text
            return response.json()

        ok(a.post("/v1/merchant/products", headers=owner, json={
            "gtin": code, "names": {"zh-Hans": "钢", "zh-Hant": "鋼", "en": "Steel"},
            "category": "steel.hot_rolled_coil", "declared_unit": "kilogram", "declared_units_per_item": "1"}), 201)
        ok(a.put(f"/v1/merchant/products/{code}/inventory", headers=owner, json={"lines": [
            {"stage": "production", "description": "measured", "quantity": "1", "unit": "kg",
             "direct_kgco2e": "15", "primary": True}]}))
        ok(a.put("/v1/benchmarks/steel.hot_rolled_coil", headers=admin, json={
            "method": "fixed", "thresholds": ["10", "20", "30", "40"], "baseline": "25",
            "uncertainty_penalty": "0"}))
        # The reader caches "no label" (and its ETag) ...
        first = b.get(f"/v1/products/{code}")
        assert ok(first)["label"] is None
        assert b.get(f"/v1/products/{code}", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
        namespace = env["CARBONPUHUI_REDIS_NAMESPACE"]
        cached = redis.Redis.from_url(env["CARBONPUHUI_REDIS_URL"]).hkeys(f"{namespace}:cache:view:0{code}")
        assert cached, "the reader serves public views from Redis"
        # ... the writer approves: the reader's next read has the label.
        application = ok(a.post(f"/v1/merchant/products/{code}/label-applications", headers=owner,
                                json={"certification_body": "cb-sgs"}), 201)
        label = ok(a.post(f"/v1/certification/applications/{application['id']}/decision", headers=verifier,
                          json={"decision": "approve", "valid_until": "2030-12-31"}))["label"]
        shown = b.get(f"/v1/products/{code}", headers={"If-None-Match": first.headers["etag"]})
        assert shown.status_code == 200 and ok(shown)["label"]["grade"] == "B"
        svg = b.get(f"/v1/products/{code}/label.svg").text
        # A benchmark change regrades, and the reader sees the new grade at once (JSON and SVG).
        ok(a.put("/v1/benchmarks/steel.hot_rolled_coil", headers=admin, json={
            "method": "fixed", "thresholds": ["15", "20", "30", "40"], "baseline": "25", "uncertainty_penalty": "0"}))
        assert ok(b.get(f"/v1/products/{code}"))["label"]["grade"] == "A"
        assert b.get(f"/v1/products/{code}/label.svg").text != svg
        # A revocation likewise, on the JSON and on the Digital Link page.
        ok(a.post(f"/v1/labels/{label['id']}/revoke", headers=verifier, json={"reason": "audit"}))
        assert ok(b.get(f"/v1/products/{code}"))["label"]["status"] == "revoked"
        assert ok(b.get(f"/01/0{code}", headers={"Accept": "application/json"}))["label"]["status"] == "revoked"

"""Redis-backed stores: namespaced keys, and a rate limit shared by every API process."""

from __future__ import annotations

import uuid

import pytest
import redis
from litestar.testing import TestClient

from carbonpuhui.app import create_app
from carbonpuhui.stores import FailOpenStore, Stores
from tests.conftest import REDIS_NAMESPACE, make_settings

pytestmark = pytest.mark.services


def test_rate_limit_is_shared_across_processes(tmp_path, migrated_database_url, redis_url):
    namespace = f"{REDIS_NAMESPACE}:{uuid.uuid4().hex[:6]}"
    common = {"database_url": migrated_database_url, "redis_url": redis_url, "redis_namespace": namespace,
              "public_rate_limit_per_minute": 3}
    app_a = create_app(make_settings(tmp_path / "a", **common))
    app_b = create_app(make_settings(tmp_path / "b", **common))
    with TestClient(app_a) as a, TestClient(app_b) as b:
        statuses = [a.get("/v1/factors").status_code, b.get("/v1/factors").status_code,
                    a.get("/v1/factors").status_code, b.get("/v1/factors").status_code]
    # Two "processes", one window: the fourth request over both is the one refused.
    assert statuses == [200, 200, 200, 429]
    keys = redis.Redis.from_url(redis_url).keys(f"{namespace}:*")
    assert keys, "rate-limit windows live in Redis under the deployment's namespace"
    assert all(key.decode().startswith(f"{namespace}:rate_limit") for key in keys)


async def test_fail_open_only_for_disposable_stores(tmp_path):
    stores = Stores(make_settings(tmp_path, redis_url="redis://127.0.0.1:9/0"))
    try:
        throttle = stores.store("rate_limit")
        assert isinstance(throttle, FailOpenStore)
        assert await throttle.get("k") is None  # an outage reads as "nothing stored"
        await throttle.set("k", b"v")  # and writes are skipped, not raised
        strict = stores.store("idempotency")
        assert not isinstance(strict, FailOpenStore)
        with pytest.raises(redis.exceptions.ConnectionError):
            await strict.get("k")
    finally:
        await stores.close()

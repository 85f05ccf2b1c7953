"""Key-value stores: Redis when configured (namespaced, Cluster-friendly keys), in-process otherwise.

Redis is never the source of truth: it holds rate-limit windows, caches and counters only.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry
from redis.asyncio import Redis
from redis.exceptions import RedisError

from carbonpuhui.settings import Settings

log = logging.getLogger("carbonpuhui.stores")
_OUTAGE = (RedisError, OSError, TimeoutError)


class FailOpenStore(Store):
    """For data that only speeds things up or throttles (rate-limit windows, caches): when Redis is
    down, behave as an empty store and log, rather than fail the request."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        try:
            await self.inner.set(key, value, expires_in)
        except _OUTAGE as exc:
            log.warning("store unavailable, set skipped: %r", exc)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        try:
            return await self.inner.get(key, renew_for)
        except _OUTAGE as exc:
            log.warning("store unavailable, get missed: %r", exc)
            return None

    async def delete(self, key: str) -> None:
        try:
            await self.inner.delete(key)
        except _OUTAGE as exc:
            log.warning("store unavailable, delete skipped: %r", exc)

    async def delete_all(self) -> None:
        await self.inner.delete_all()

    async def exists(self, key: str) -> bool:
        try:
            return await self.inner.exists(key)
        except _OUTAGE:
            return False

    async def expires_in(self, key: str) -> int | None:
        try:
            return await self.inner.expires_in(key)
        except _OUTAGE:
            return None


# INCR and a first-time EXPIRE as one script: one round trip, atomic (EXPIRE NX needs Redis 7).
_COUNT = "local v = redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX') return v"

# Stores whose loss only costs speed or throttling; all others fail loudly when Redis is down.
FAIL_OPEN = frozenset({"rate_limit", "cache"})


class Stores:
    def __init__(self, settings: Settings) -> None:
        self.namespace = settings.redis_namespace
        self.redis: Redis | None = None
        if settings.redis_url:
            self.redis = Redis.from_url(
                settings.redis_url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30,
            )
            self._count_script = self.redis.register_script(_COUNT)  # EVALSHA, reloaded if Redis lost it
        self._memory: dict[str, MemoryStore] = {}
        self._counters: dict[tuple[str, str], tuple[int, float]] = {}
        self.local_views: dict[str, dict[bytes, bytes | int]] = {}  # the label cache without Redis

    @property
    def backend(self) -> str:
        return "redis" if self.redis is not None else "memory"

    def store(self, name: str) -> Store:
        if self.redis is not None:
            # "{namespace}:{name}:key" — one prefix per deployment, so test runs and tenants never collide.
            store: Store = RedisStore(self.redis, namespace=f"{self.namespace}:{name}", handle_client_shutdown=False)
            return FailOpenStore(store) if name in FAIL_OPEN else store
        return self._memory.setdefault(name, MemoryStore())

    def registry(self) -> StoreRegistry:
        return StoreRegistry(default_factory=self.store)

    async def count(self, store: str, key: str, expires_in: int) -> int | None:
        """Add one to a counter and return it: atomic across processes on Redis (INCR), and within
        the process on the in-process store. None when Redis is down (counters only throttle)."""
        if self.redis is None:
            now = time.monotonic()
            if len(self._counters) > 100_000:  # forget finished windows
                self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
            value, until = self._counters.get((store, key), (0, 0.0))
            if until <= now:
                value, until = 0, now + expires_in
            self._counters[(store, key)] = (value + 1, until)  # no await in between: atomic in-process
            return value + 1
        name = f"{self.namespace}:{store}:{key}"
        try:
            value = await self._count_script(keys=[name], args=[expires_in])
        except _OUTAGE as exc:
            log.warning("store unavailable, counter skipped: %r", exc)
            return None
        return int(value)

    async def ping(self) -> None:
        if self.redis is not None:
            await self.redis.ping()

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()

"""Key-value stores: Redis when configured (namespaced, Cluster-friendly keys), in-process otherwise.

Redis is never the source of truth: it holds rate-limit windows, caches and counters only.
"""

from __future__ import annotations

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry
from redis.asyncio import Redis

from carbonpuhui.settings import Settings


class Stores:
    def __init__(self, settings: Settings) -> None:
        self.namespace = settings.redis_namespace
        self.redis: Redis | None = None
        if settings.redis_url:
            self.redis = Redis.from_url(
                settings.redis_url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30,
            )
        self._memory: dict[str, MemoryStore] = {}

    @property
    def backend(self) -> str:
        return "redis" if self.redis is not None else "memory"

    def store(self, name: str) -> Store:
        if self.redis is not None:
            # "{namespace}:{name}:key" — one prefix per deployment, so test runs and tenants never collide.
            return RedisStore(self.redis, namespace=f"{self.namespace}:{name}", handle_client_shutdown=False)
        return self._memory.setdefault(name, MemoryStore())

    def registry(self) -> StoreRegistry:
        return StoreRegistry(default_factory=self.store)

    async def ping(self) -> None:
        if self.redis is not None:
            await self.redis.ping()

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()

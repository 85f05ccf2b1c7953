"""The shared cache of public label reads (Redis when configured, else in-process).

Each product has one entry holding a generation counter and the cached variants of its public view
(JSON, SVG and HTML per language), each variant tagged with the generation it was built under and
the moment it stops being valid. A read is one round trip (Redis ``HMGET`` of the generation and
the variant); a change increments the generation *after* its transaction commits (``HINCRBY``), so
a reader that raced the change and cached the old rows tagged them with the old generation, which
no read accepts any more: the next read from any process sees the change. The generation is never
reset while the entry lives, and if Redis evicts the entry its variants go with it. Variants expire
after five minutes at most and never outlive the label they show. Redis down: every read goes to the
database (the cache only ever speeds things up).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from carbonpuhui.caching import etag_of
from carbonpuhui.stores import Stores

MAX_TTL = 300
ENTRY_TTL = 24 * 3600  # an untouched product's entry (generation included) is dropped after a day
MAX_LOCAL_PRODUCTS = 50_000
_OUTAGE = (RedisError, OSError, TimeoutError)
log = logging.getLogger("carbonpuhui.cache")

Build = Callable[[], Awaitable[tuple[bytes, int]]]
# HSET and EXPIRE as one command (EVALSHA): a redis-py pipeline of two costs more client CPU than one call.
_WRITE = "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return redis.call('EXPIRE', KEYS[1], ARGV[3])"


def _pack(generation: int, expires: float, etag: str, body: bytes) -> bytes:
    return f"{generation}|{expires:.3f}|{etag}|".encode() + body


def _unpack(value: bytes, generation: int) -> tuple[bytes, str] | None:
    tag, expires, etag, body = value.split(b"|", 3)
    if int(tag) != generation or float(expires) <= time.time():
        return None
    return body, etag.decode()


class PublicCache:
    def __init__(self, stores: Stores) -> None:
        self.redis: Redis | None = stores.redis
        self.prefix = f"{stores.namespace}:cache:view:"
        # In-process: {gtin: {b"gen": generation, variant: packed}}; no await between a read and a
        # write of it, so it needs no lock.
        self.local = stores.local_views

    async def get_or_build(self, gtin: str, variant: str, build: Build) -> tuple[bytes, str]:
        """The body and ETag of ``variant`` of the product's public view; ``build`` gives the body
        and how many seconds it may be kept."""
        field = variant.encode()
        generation, hit = await self._read(gtin, field)
        if hit is not None and (found := _unpack(hit, generation)) is not None:
            return found
        body, ttl = await build()
        etag = etag_of(body)
        if ttl > 0:
            await self._write(gtin, field, _pack(generation, time.time() + min(ttl, MAX_TTL), etag, body))
        return body, etag

    async def invalidate(self, gtins: Iterable[str]) -> None:
        changed = sorted(set(gtins))
        if self.redis is None:
            for gtin in changed:
                entry = self.local.setdefault(gtin, {})
                entry[b"gen"] = int(entry.get(b"gen", 0)) + 1  # type: ignore[call-overload]
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for gtin in changed:
                    pipe.hincrby(self.prefix + gtin, "gen", 1)
                    pipe.expire(self.prefix + gtin, ENTRY_TTL)
                await pipe.execute()
        except _OUTAGE as exc:  # entries expire within MAX_TTL: stale for minutes at worst
            log.warning("cache unavailable, invalidation of %d products skipped: %r", len(changed), exc)

    async def _read(self, gtin: str, field: bytes) -> tuple[int, bytes | None]:
        if self.redis is None:
            entry = self.local.get(gtin)
            if entry is None:
                return 0, None
            return int(entry.get(b"gen", 0)), entry.get(field)  # type: ignore[call-overload, return-value]
        try:
            generation, value = await self.redis.hmget(self.prefix + gtin, ["gen", field])
        except _OUTAGE as exc:
            log.warning("cache unavailable, read missed: %r", exc)
            return -1, None  # -1: never written back (Redis is away)
        return int(generation or 0), value

    async def _write(self, gtin: str, field: bytes, value: bytes) -> None:
        if self.redis is None:
            if gtin not in self.local and len(self.local) >= MAX_LOCAL_PRODUCTS:
                self.local.clear()  # crude but bounded; a miss only costs a database read
            self.local.setdefault(gtin, {})[field] = value
            return
        if value.startswith(b"-1|"):
            return
        try:
            # EVALSHA, loading the script first if this Redis has not seen it (or was restarted).
            await self.redis.register_script(_WRITE)(keys=[self.prefix + gtin], args=[field, value, ENTRY_TTL])
        except _OUTAGE as exc:
            log.warning("cache unavailable, write skipped: %r", exc)

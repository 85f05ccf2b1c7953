"""The shared cache of public label reads (Redis when configured, else in-process).

Every product has a generation token; entries are stored under ``{gtin}:{generation}:{variant}``.
A change bumps the generation of each GTIN it touches *after* its transaction commits, so a reader
that raced the change can only have cached the old rows under the old generation, which nobody asks
for any more: the next read from any process sees the change. Entries also expire (at most five
minutes, and never past the moment the label they show expires), so even a lost bump heals itself.
The cache store fails open: with Redis down every read goes to the database.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Iterable

from litestar.stores.base import Store

MAX_TTL = 300


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


class PublicCache:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def _generation(self, gtin: str) -> str:
        found = await self.store.get(f"gen:{gtin}")
        if found is not None:
            return found.decode()
        # Unknown (first read, or evicted): a fresh token, so no entry older than the eviction is reused.
        token = secrets.token_hex(8)
        await self.store.set(f"gen:{gtin}", token)
        return token

    async def get_or_build(self, gtin: str, variant: str,
                           build: Callable[[], Awaitable[tuple[bytes, int]]]) -> tuple[bytes, str]:
        """The body and ETag of ``variant`` of the product's public view; ``build`` gives the body
        and how many seconds it may be kept."""
        generation = await self._generation(gtin)
        key = f"view:{gtin}:{generation}:{variant}"
        hit = await self.store.get(key)
        if hit is not None:
            etag, _, body = hit.partition(b"\n")
            return body, etag.decode()
        body, ttl = await build()
        etag = etag_of(body)
        if ttl > 0:
            await self.store.set(key, etag.encode() + b"\n" + body, expires_in=min(ttl, MAX_TTL))
        return body, etag

    async def invalidate(self, gtins: Iterable[str]) -> None:
        for gtin in sorted(set(gtins)):
            await self.store.set(f"gen:{gtin}", secrets.token_hex(8))

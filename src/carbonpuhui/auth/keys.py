"""Signing keys: the embedded default's local key, and verification key sets (local or a JWKS URL)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import ECKey, KeySet

log = logging.getLogger("carbonpuhui.auth")
SIGNING_ALG = "ES256"
# Only asymmetric algorithms: a symmetric one would let anyone holding the public JWKS mint tokens.
ACCEPTED_ALGS = ("ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256")


def load_or_create_signing_key(path: Path) -> ECKey:
    """The embedded default's P-256 key, generated once (atomically, so workers can race safely)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ECKey.generate_key("P-256", private=True)
        data = key.as_dict(private=True)
        data.update(kid=key.thumbprint(), alg=SIGNING_ALG, use="sig")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        try:
            os.link(tmp, path)  # fails if another process won the race; then use its key
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    data = json.loads(path.read_text())
    return ECKey.import_key(data)


def public_jwks(key: ECKey) -> dict[str, Any]:
    data = key.as_dict(private=False)
    data.update(kid=key.kid or key.thumbprint(), alg=SIGNING_ALG, use="sig")
    return {"keys": [data]}


class KeyProvider:
    """Verification keys: static (the local key) or fetched from a JWKS URL and cached."""

    def __init__(self, *, static: KeySet | None = None, jwks_url: str | None = None,
                 ttl_seconds: float = 600.0, refetch_after_seconds: float = 30.0,
                 max_stale_seconds: float = 86_400.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if static is None and jwks_url is None:
            raise ValueError("a static key set or a JWKS URL is required")
        self._keys = static
        self._url = jwks_url
        self._ttl = ttl_seconds
        self._refetch_after = refetch_after_seconds
        self._max_stale = max_stale_seconds
        self._fetched_at = 0.0
        self._transport = transport
        self._lock = asyncio.Lock()

    @classmethod
    def local(cls, path: Path) -> KeyProvider:
        return cls(static=KeySet.import_key_set(public_jwks(load_or_create_signing_key(path))))

    async def _fetch(self) -> None:
        async with httpx.AsyncClient(timeout=5.0, transport=self._transport) as client:
            response = await client.get(self._url)  # type: ignore[arg-type]
            response.raise_for_status()
            self._keys = KeySet.import_key_set(response.json())
            self._fetched_at = time.monotonic()

    async def key_set(self, kid: str | None) -> KeySet:
        if self._url is None:
            assert self._keys is not None
            return self._keys
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            known = self._keys is not None and (kid is None or any(k.kid == kid for k in self._keys.keys))
            # Refresh when stale, or when an unknown kid appears (key rotation), but not in a loop.
            if self._keys is None or age > self._ttl or (not known and age > self._refetch_after):
                try:
                    await self._fetch()
                except Exception:
                    # Stale-if-error: an identity provider outage must not log everybody out at
                    # once, so known keys stay usable for a while; never without any keys.
                    if self._keys is None or age > self._max_stale:
                        raise
                    log.warning("JWKS refresh from %s failed; using keys %.0f s old", self._url, age)
            assert self._keys is not None
            return self._keys

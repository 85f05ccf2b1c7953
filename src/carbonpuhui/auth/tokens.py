"""Minting (embedded default only) and validating RFC 9068 JWT access tokens with joserfc."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from carbonpuhui.auth.access import ROLES, Principal
from carbonpuhui.auth.keys import ACCEPTED_ALGS, SIGNING_ALG, KeyProvider, load_or_create_signing_key
from carbonpuhui.errors import UnauthorizedError
from carbonpuhui.i18n import N_

CLOCK_SKEW_SECONDS = 30
MAX_SUB_LENGTH = 200
MAX_ORG_LENGTH = 100


def mint_token(key_path: Path, *, issuer: str, audience: str, sub: str, roles: Sequence[str],
               org: str | None = None, ttl: int = 3600, client_id: str = "carbonpuhui-cli",
               scope: str | None = None) -> str:
    """Sign an access token with this machine's key (the ``carbonpuhui token`` command)."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(unknown)}; known: {', '.join(ROLES)}")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    if not 0 < len(sub) <= MAX_SUB_LENGTH or (org is not None and not 0 < len(org) <= MAX_ORG_LENGTH):
        raise ValueError(f"sub must be 1-{MAX_SUB_LENGTH} characters and org 1-{MAX_ORG_LENGTH}")
    key = load_or_create_signing_key(key_path)
    now = int(time.time())
    claims = {
        "iss": issuer, "aud": audience, "sub": sub, "client_id": client_id,
        "iat": now, "nbf": now, "exp": now + ttl, "jti": uuid.uuid4().hex, "roles": list(roles),
    }
    if org:
        claims["org"] = org
    if scope:
        claims["scope"] = scope
    header = {"alg": SIGNING_ALG, "typ": "at+jwt", "kid": key.kid or key.thumbprint()}
    return jwt.encode(header, claims, key, algorithms=[SIGNING_ALG])


def _invalid(message: str, **params: object) -> UnauthorizedError:
    return UnauthorizedError(
        message, reason="invalid_token",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}, **params,
    )


# With an external identity provider the platform still issues its PACT clients' tokens itself
# (client credentials at /auth/token), with its own key and under this issuer.
PACT_ISSUER = "urn:carbonpuhui:pact"


def _registry(issuer: str, audience: str) -> jwt.JWTClaimsRegistry:
    return jwt.JWTClaimsRegistry(
        leeway=CLOCK_SKEW_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        sub={"essential": True},
        exp={"essential": True},
    )


class TokenValidator:
    """``keys`` and ``issuer``: the tokens people and apps bring. ``pact_keys``: the platform's own
    key, when people's tokens come from an identity provider; tokens it signed are accepted only as
    PACT client tokens (issuer ``PACT_ISSUER``, scope ``pact``, no roles)."""

    def __init__(self, keys: KeyProvider, *, issuer: str, audience: str,
                 pact_keys: KeyProvider | None = None) -> None:
        self.keys = keys
        self.registry = _registry(issuer, audience)
        self.pact_keys = pact_keys
        self.pact_registry = _registry(PACT_ISSUER, audience)

    async def validate(self, token: str) -> Principal:
        try:
            header = extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError, json.JSONDecodeError):
            raise _invalid(N_("The bearer token is malformed.")) from None
        alg = header.get("alg")
        if alg not in ACCEPTED_ALGS:
            raise _invalid(N_("The token's signing algorithm {alg} is not accepted."), alg=str(alg))
        if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
            raise _invalid(N_("The token is not an access token (typ must be at+jwt)."))
        registry, pact_only = self.registry, False
        if self.pact_keys is not None:
            local = await self.pact_keys.key_set(None)
            if header.get("kid") in {k.kid for k in local.keys}:
                registry, pact_only = self.pact_registry, True
        try:
            keyset: KeySet = local if pact_only else await self.keys.key_set(header.get("kid"))
        except Exception:  # noqa: BLE001 - an unreachable JWKS must not become a 500
            raise _invalid(N_("The token's signing keys could not be loaded.")) from None
        try:
            decoded = jwt.decode(token, keyset, algorithms=list(ACCEPTED_ALGS))
        except (JoseError, ValueError):
            raise _invalid(N_("The token's signature is not valid.")) from None
        claims = decoded.claims
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise _invalid(N_("The token has expired.")) from None
        except JoseError as exc:
            name = getattr(exc, "claim", None) or getattr(exc, "error", "claims")
            raise _invalid(N_("The token's {claim} claim is not valid."), claim=str(name)) from None
        roles = claims.get("roles", [])
        if isinstance(roles, str):
            roles = roles.split()
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise _invalid(N_("The token's {claim} claim is not valid."), claim="roles")
        # Bounded like the columns that record who acted, so a token can never make a write fail.
        if not isinstance(claims["sub"], str) or not 0 < len(claims["sub"]) <= MAX_SUB_LENGTH:
            raise _invalid(N_("The token's {claim} claim is not valid."), claim="sub")
        org = claims.get("org")
        if org is not None and (not isinstance(org, str) or not 0 < len(org) <= MAX_ORG_LENGTH):
            raise _invalid(N_("The token's {claim} claim is not valid."), claim="org")
        scope = claims.get("scope")
        client_id = claims.get("client_id")
        if pact_only and (roles or not isinstance(scope, str) or "pact" not in scope.split()):
            raise _invalid(N_("The token's {claim} claim is not valid."), claim="scope")
        return Principal(sub=claims["sub"], roles=frozenset(r for r in roles if r in ROLES), org=org,
                         client_id=client_id if isinstance(client_id, str) else None,
                         scope=frozenset(scope.split()) if isinstance(scope, str) else frozenset())

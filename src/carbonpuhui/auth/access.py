"""Who may call what. Every route handler declares its access with ``access(...)``:

    @get("/v1/factors", **access(public=True, errors=(429,)))
    @post("/v1/factors", **access(roles=("admin",), errors=(409, 422)))

The declaration installs the guard, records the roles in ``opt["access"]`` (the role-matrix tests
read it) and documents the problem responses the route can give.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.openapi.datastructures import ResponseSpec

from carbonpuhui.errors import ForbiddenError, Problem, UnauthorizedError
from carbonpuhui.i18n import N_

ROLES = ("consumer", "merchant", "verifier", "officer", "admin")
PUBLIC = "public"
AUTHENTICATED = "authenticated"
PACT_CLIENT = "pact_client"  # a PACT machine client's token (client credentials, scope "pact")


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    sub: str
    roles: frozenset[str]
    org: str | None = None
    client_id: str | None = None
    scope: frozenset[str] = frozenset()

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Reads an optional bearer token. A token that is present but invalid is always a 401,
    even on public routes: the caller meant to authenticate and must learn it failed."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        if not header:
            return AuthenticationResult(user=None, auth=None)
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise UnauthorizedError(
                    N_("Use the Authorization header with the Bearer scheme."), reason="invalid_request",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_request"'},
                )
            principal = await connection.app.state.token_validator.validate(token.strip())
        except UnauthorizedError as exc:
            # Refused by ``reject_invalid_token`` inside the route, where the refusal is logged,
            # counted and localised like every other error.
            return AuthenticationResult(user=None, auth=exc)
        return AuthenticationResult(user=principal, auth=token.strip())


# Guards and hooks are coroutines: Litestar runs a plain function in a worker thread, a hop per request.
async def reject_invalid_token(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """App-wide guard: a token that was sent but is invalid is a 401, on public routes too."""
    failure = connection.scope.get("auth")
    if isinstance(failure, UnauthorizedError):
        raise failure


def current_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    user = connection.scope.get("user")
    return user if isinstance(user, Principal) else None


def _require(roles: tuple[str, ...] | None):  # type: ignore[no-untyped-def]
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        principal = current_principal(connection)
        if principal is None:
            raise UnauthorizedError(
                N_("A valid bearer token is required."), reason="missing_token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if roles is not None and not principal.has(*roles):
            raise ForbiddenError(
                N_("This action needs one of the roles: {roles}."), reason="missing_role",
                roles=", ".join(roles),
            )

    guard.__name__ = f"require_{'_'.join(roles) if roles else 'token'}"
    return guard


async def _require_pact_client(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    principal = current_principal(connection)
    if principal is None:
        raise UnauthorizedError(N_("A valid bearer token is required."), reason="missing_token",
                                headers={"WWW-Authenticate": "Bearer"})
    if "pact" not in principal.scope or not principal.client_id or not principal.org:
        raise ForbiddenError(N_("This needs a PACT client token from /auth/token."), reason="not_a_pact_client")


_DESCRIPTIONS = {
    400: "Malformed request (e.g. JSON that does not parse, a bad cursor)",
    401: "No token, or an invalid, expired or foreign token",
    403: "The token lacks a role or organisation this action needs",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Request body too large",
    503: "The database or Redis is unavailable; retry after the Retry-After seconds",
    415: "Unsupported media type",
    422: "Invalid input, or a domain refusal with a reason code",
    429: "Rate limit exceeded",
}


def problem_responses(statuses: Iterable[int]) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(data_container=Problem, description=_DESCRIPTIONS.get(status, "Problem"),
                             media_type="application/problem+json")
        for status in sorted(set(statuses))
    }


def access(*, public: bool = False, roles: Iterable[str] | None = None, authenticated: bool = False,
           pact_client: bool = False, errors: Iterable[int] = (), body: bool = False, throttled: bool = True, services: bool = True,
           responses: dict[int, ResponseSpec] | None = None) -> dict[str, Any]:
    """Route keyword arguments declaring who may call the route and which problems it returns.

    ``public``: anyone (an invalid token is still a 401). ``roles``: a token with one of these.
    ``authenticated``: any valid token. ``pact_client``: a PACT client's token. ``body``: the route takes a request body (adds 413/422).
    ``throttled``: public routes are rate-limited (429) unless they are probes.
    ``services``: the route needs the database or Redis, so it can answer 503 when they are down.
    """
    chosen = sum([public, roles is not None, authenticated, pact_client])
    if chosen != 1:
        raise ValueError("declare exactly one of public, roles, authenticated or pact_client")
    # A bad token is a 401 everywhere; 400 is declared here so Litestar does not add its own
    # (as application/json) where we answer with problem+json.
    statuses = set(errors) | {400, 401} | ({503} if services else set())
    if body:
        statuses |= {400, 413, 422}  # malformed, too large, invalid
    kwargs: dict[str, Any] = {}
    if public:
        kwargs["opt"] = {"access": PUBLIC, "throttled": throttled}
        if throttled:
            statuses.add(429)
    elif authenticated:
        kwargs["opt"] = {"access": AUTHENTICATED}
        kwargs["guards"] = [_require(None)]
    elif pact_client:
        kwargs["opt"] = {"access": PACT_CLIENT}
        kwargs["guards"] = [_require_pact_client]
        statuses.add(403)
    else:
        role_tuple = tuple(roles or ())
        unknown = set(role_tuple) - set(ROLES)
        if unknown or not role_tuple:
            raise ValueError(f"unknown or empty roles: {sorted(unknown)}")
        kwargs["opt"] = {"access": role_tuple}
        kwargs["guards"] = [_require(role_tuple)]
        statuses.add(403)
    kwargs["responses"] = {**problem_responses(statuses), **(responses or {})}
    return kwargs

"""Throttling: the public rate limit and a per-caller budget for expensive work (footprint
computations), both fixed one-minute windows counted atomically in Redis (INCR) or in-process, so
they hold across processes at O(1) per request. Both fail open when Redis is down: they protect
capacity, they decide nothing.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from carbonpuhui.auth.access import PUBLIC, current_principal
from carbonpuhui.errors import TooManyRequestsError
from carbonpuhui.i18n import N_

WINDOW_SECONDS = 60


def _window(now: float) -> tuple[int, int]:
    """The current window and the seconds until it ends."""
    return int(now // WINDOW_SECONDS), max(1, int(WINDOW_SECONDS - now % WINDOW_SECONDS))


async def spend_compute(request: Request[Any, Any, Any]) -> None:
    """Count one footprint computation for the caller; refuse past the per-minute budget (429)."""
    settings = request.app.state.settings
    principal = current_principal(request)
    who = principal.sub if principal is not None else (request.client.host if request.client else "anonymous")
    window, retry = _window(time.time())
    count = await request.app.state.stores.count("rate_limit", f"compute:{who}:{window}", WINDOW_SECONDS + 1)
    if count is not None and count > settings.compute_rate_limit_per_minute:
        raise TooManyRequestsError(N_("Too many footprint computations; try again in {seconds} s."),
                                   reason="compute_rate_limited", headers={"Retry-After": str(retry)}, seconds=retry)


class PublicRateLimit(ASGIMiddleware):
    """Per client address, on anonymous-capable reads (GET/HEAD of public routes) except probes.
    Answers carry the draft IETF ``RateLimit-*`` headers; a refusal is a 429 with ``Retry-After``."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        opt = scope["route_handler"].opt
        if scope["method"] not in ("GET", "HEAD") or opt.get("access") != PUBLIC or not opt.get("throttled", True):
            await next_app(scope, receive, send)
            return
        client = scope.get("client")
        window, reset = _window(time.time())
        state = scope["litestar_app"].state
        limit = state.settings.public_rate_limit_per_minute
        count = await state.stores.count("rate_limit", f"public:{client[0] if client else '-'}:{window}",
                                         WINDOW_SECONDS + 1)
        headers = {"RateLimit-Policy": f"{limit}; w={WINDOW_SECONDS}", "RateLimit-Limit": str(limit),
                   "RateLimit-Remaining": str(max(0, limit - (count or 0))), "RateLimit-Reset": str(reset)}
        if count is not None and count > limit:
            raise TooManyRequestsException(headers={**headers, "Retry-After": str(reset)})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message).update(headers)
            await send(message)

        await next_app(scope, receive, send_with_headers)

"""A per-caller budget for expensive work (footprint computations), in the shared rate-limit store.

A fixed one-minute window per caller, counted in Redis (or the in-process store), so the budget
holds across processes. The count is read and written without a transaction: under a burst a few
extra calls may slip through, which throttling tolerates. Like the public rate limit it fails open
when Redis is down: it protects capacity, it decides nothing.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request

from carbonpuhui.auth.access import current_principal
from carbonpuhui.errors import TooManyRequestsError
from carbonpuhui.i18n import N_

WINDOW_SECONDS = 60


async def spend_compute(request: Request[Any, Any, Any]) -> None:
    """Count one footprint computation for the caller; refuse past the per-minute budget (429)."""
    settings = request.app.state.settings
    principal = current_principal(request)
    who = principal.sub if principal is not None else (request.client.host if request.client else "anonymous")
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    store = request.app.state.stores.store("rate_limit")
    key = f"compute:{who}:{window}"
    count = int(await store.get(key) or 0) + 1
    await store.set(key, str(count), expires_in=WINDOW_SECONDS + 1)
    if count > settings.compute_rate_limit_per_minute:
        retry = max(1, int(WINDOW_SECONDS - now % WINDOW_SECONDS))
        raise TooManyRequestsError(N_("Too many footprint computations; try again in {seconds} s."),
                                   reason="compute_rate_limited", headers={"Retry-After": str(retry)}, seconds=retry)

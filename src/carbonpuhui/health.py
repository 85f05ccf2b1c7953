"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from carbonpuhui.auth import access
from carbonpuhui.db.migrate import head_revision

PROBE_TIMEOUT_SECONDS = 3.0
HEAD = head_revision()


class Health(msgspec.Struct, kw_only=True):
    status: str
    checks: dict[str, str] = {}


class HealthController(Controller):
    tags = ["operations"]

    @get("/healthz", **access(public=True, throttled=False, services=False), summary="Liveness: the process answers")
    async def healthz(self) -> Health:
        return Health(status="ok")

    @get("/readyz", **access(public=True, throttled=False, responses={
        503: ResponseSpec(data_container=Health, description="A dependency is down")}),
        summary="Readiness: the database answers and is migrated; Redis (when configured) answers")
    async def readyz(self, request: Request[Any, Any, Any]) -> Response[Health]:
        state = request.app.state
        checks: dict[str, str] = {}

        async def probe(name: str, coro: Any) -> None:
            try:
                await asyncio.wait_for(coro, PROBE_TIMEOUT_SECONDS)
                checks[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                checks[name] = f"down: {type(exc).__name__}"

        await probe("database", state.db.ping())
        if checks["database"] == "ok":
            # A process whose code expects a newer schema than the database has is not ready:
            # during a rolling deploy it waits for `carbonpuhui db upgrade`.
            try:
                at = await asyncio.wait_for(state.db.schema_revision(), PROBE_TIMEOUT_SECONDS)
                checks["schema"] = "ok" if at == HEAD else f"behind: at {at or 'nothing'}, code needs {HEAD}"
            except Exception as exc:  # noqa: BLE001
                checks["schema"] = f"down: {type(exc).__name__}"
        if state.stores.redis is not None:
            await probe("redis", state.stores.ping())
        ok = all(v == "ok" for v in checks.values())
        return Response(Health(status="ok" if ok else "unavailable", checks=checks),
                        status_code=200 if ok else 503)

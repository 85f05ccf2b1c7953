"""PACT data exchange as a Litestar plugin."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.config.app import AppConfig
from litestar.exceptions import HTTPException
from litestar.plugins import InitPluginProtocol

from carbonpuhui.pact.controller import MerchantPactController, PactApiController, PactAuthController
from carbonpuhui.pact.errors import handle_http_error

PACT_PREFIX = "/2/"


class PactPlugin(InitPluginProtocol):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend([PactAuthController, PactApiController, MerchantPactController])
        # Refusals before any route runs (no such path or method under /2/) are PACT-shaped too;
        # the controllers' own handlers cover everything raised inside them.
        platform = app_config.exception_handlers.get(HTTPException)

        def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
            if request.url.path.startswith(PACT_PREFIX) or platform is None:
                return handle_http_error(request, exc)
            return platform(request, exc)

        app_config.exception_handlers[HTTPException] = http_error
        return app_config

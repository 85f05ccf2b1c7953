"""PACT data exchange as a Litestar plugin."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

from carbonpuhui.pact.controller import MerchantPactController, PactApiController, PactAuthController


class PactPlugin(InitPluginProtocol):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend([PactAuthController, PactApiController, MerchantPactController])
        return app_config

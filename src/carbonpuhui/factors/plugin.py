"""The factor database as a Litestar plugin."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

from carbonpuhui.factors.controller import FactorController


class FactorsPlugin(InitPluginProtocol):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(FactorController)
        return app_config

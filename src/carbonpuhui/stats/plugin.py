"""Statistics as a Litestar plugin: organisation profiles, export shipments, indicators, reports."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.openapi.spec import Tag
from litestar.plugins import InitPluginProtocol

from carbonpuhui.stats import controller, indicators_controller, reports_controller


class StatsPlugin(InitPluginProtocol):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend([*controller.HANDLERS, *indicators_controller.HANDLERS,
                                          *reports_controller.HANDLERS])
        if app_config.openapi_config is not None:
            tags = list(app_config.openapi_config.tags or [])
            tags.append(Tag(name="statistics", description="Pilot indicators, trade greening, quarterly reports"))
            app_config.openapi_config.tags = tags
        return app_config

"""Procurement plugin: tenders, sealed bids, evaluations and their reports (政府采购)."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.openapi.spec import Tag
from litestar.plugins import InitPluginProtocol

from procurement.controller import TenderController


class ProcurementPlugin(InitPluginProtocol):
    route_handlers: list[object] = [TenderController]

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend(self.route_handlers)
        if app_config.openapi_config is not None:
            tags = list(app_config.openapi_config.tags or [])
            tags.append(Tag(name="procurement", description="Tenders, sealed bids, evaluation (政府采购)"))
            app_config.openapi_config.tags = tags
        return app_config

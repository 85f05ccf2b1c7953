"""Benchmarks, certification and labels as a Litestar plugin (the public label views are in mobile_api)."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.openapi.spec import Tag
from litestar.plugins import InitPluginProtocol

from carbonpuhui.labels.controller import BenchmarkController, CertificationController, LabelController


class LabelsPlugin(InitPluginProtocol):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend([BenchmarkController, CertificationController, LabelController])
        if app_config.openapi_config is not None:
            tags = list(app_config.openapi_config.tags or [])
            tags.append(Tag(name="labels", description="Benchmarks, grades, certification, labels (碳足迹标识认证)"))
            app_config.openapi_config.tags = tags
        return app_config

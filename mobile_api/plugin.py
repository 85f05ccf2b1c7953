"""Mobile API plugin: ``/v1/me``, merchants' products, footprints, label applications and listings,
and what anyone sees of products and labels (JSON, SVG, the GS1 Digital Link page)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

from carbonpuhui.auth import access
from carbonpuhui.deps import CurrentPrincipal


class Me(msgspec.Struct, kw_only=True):
    sub: str
    roles: list[str]
    org: str | None


class MeController(Controller):
    path = "/v1/me"
    tags = ["mobile"]

    @get("", **access(authenticated=True), summary="The caller, as the bearer token names them")
    async def me(self, principal: CurrentPrincipal) -> Me:
        return Me(sub=principal.sub, roles=sorted(principal.roles), org=principal.org)


class MobileAPIPlugin(InitPluginProtocol):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        from mobile_api.labels import (
            DigitalLinkController,
            ListingController,
            MerchantLabelController,
            PublicLabelController,
        )
        from mobile_api.products import MerchantProductController

        app_config.route_handlers.extend([MeController, MerchantProductController, MerchantLabelController,
                                          PublicLabelController, DigitalLinkController, ListingController])
        return app_config

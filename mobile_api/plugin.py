"""Mobile API plugin: ``/v1/me``, merchants' products, footprints, label applications and listings,
what anyone sees of products and labels (JSON, SVG, the GS1 Digital Link page), and credits
(receipt keys, claims, wallet, rewards, leaderboard, personal data)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Litestar, Request, Response, delete, get
from litestar.config.app import AppConfig
from litestar.openapi.spec import Tag
from litestar.plugins import InitPluginProtocol
from litestar.status_codes import HTTP_204_NO_CONTENT

from carbonpuhui.auth import access
from carbonpuhui.credits.service import PersonalDataService
from carbonpuhui.deps import CurrentPrincipal, DbSession


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

    @get("/export", **access(roles=("consumer",)), summary="All the platform keeps about you, as JSON",
         tags=["credits"])
    async def export(self, request: Request[Any, Any, Any], db_session: DbSession,
                     principal: CurrentPrincipal) -> Response[dict[str, Any]]:
        data = await PersonalDataService(db_session, request.app.state.settings).export(principal)
        return Response(data, headers={"Cache-Control": "private, no-store",
                                       "Content-Disposition": 'attachment; filename="carbonpuhui-me.json"'})

    @delete("", **access(roles=("consumer",)), status_code=HTTP_204_NO_CONTENT, tags=["credits"],
            summary="Erase your personal data",
            description="Your trips and what you bought are deleted and your account is unlinked from you; the "
                        "ledger stays balanced (your remaining balance is forfeited, the entries stay, anonymous). "
                        "Receipts you claimed stay claimed.")
    async def erase(self, request: Request[Any, Any, Any], db_session: DbSession,
                    principal: CurrentPrincipal) -> None:
        await PersonalDataService(db_session, request.app.state.settings,
                                  request.app.state.leaderboard).erase(principal)


class MobileAPIPlugin(InitPluginProtocol):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        from mobile_api.credits import (
            ClaimController,
            LeaderboardController,
            ReceiptKeyController,
            RewardController,
            WalletController,
        )
        from mobile_api.labels import (
            DigitalLinkController,
            ListingController,
            MerchantLabelController,
            PublicLabelController,
        )
        from mobile_api.products import MerchantProductController

        app_config.route_handlers.extend([MeController, MerchantProductController, MerchantLabelController,
                                          PublicLabelController, DigitalLinkController, ListingController,
                                          ReceiptKeyController, ClaimController, WalletController, RewardController,
                                          LeaderboardController])
        from carbonpuhui.credits.travel import load_methodology

        load_methodology()  # a broken methodology file stops the app before it credits anyone
        # After the platform plugin's startup hook has opened the stores.
        app_config.on_startup.append(open_leaderboard)
        if app_config.openapi_config is not None:
            tags = list(app_config.openapi_config.tags or [])
            tags.append(Tag(name="credits", description="Carbon-inclusive credits (碳普惠): claims, wallet, rewards"))
            app_config.openapi_config.tags = tags
        return app_config


def open_leaderboard(app: Litestar) -> None:
    from carbonpuhui.credits.leaderboard import Leaderboard

    app.state.leaderboard = Leaderboard(app.state.stores, app.state.settings.leaderboard_size)

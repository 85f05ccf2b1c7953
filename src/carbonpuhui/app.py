"""The composition point: settings, database, stores, auth and the component plugins make one app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

from litestar import Litestar, Request
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging.config import StructLoggingConfig
from litestar.middleware import DefineMiddleware
from litestar.middleware.logging import LoggingMiddlewareConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.plugins.structlog import StructlogConfig, StructlogPlugin
from sqlalchemy.ext.asyncio import AsyncSession

import scoring
from carbonpuhui import __version__
from carbonpuhui.auth.access import (
    PUBLIC,
    BearerAuthMiddleware,
    Principal,
    current_principal,
    reject_invalid_token,
)
from carbonpuhui.auth.jwks import JWKSController
from carbonpuhui.auth.keys import KeyProvider, load_or_create_signing_key, public_jwks
from carbonpuhui.auth.tokens import TokenValidator
from carbonpuhui.db import Database
from carbonpuhui.errors import FieldError, NotFoundError, UnprocessableError, exception_handlers
from carbonpuhui.factors.plugin import FactorsPlugin
from carbonpuhui.health import HealthController
from carbonpuhui.i18n import N_
from carbonpuhui.labels.plugin import LabelsPlugin
from carbonpuhui.pact.plugin import PactPlugin
from carbonpuhui.request_id import RequestIdMiddleware
from carbonpuhui.requests import ExactDecimalRequest
from carbonpuhui.settings import Settings, load_settings
from carbonpuhui.stats.plugin import StatsPlugin
from carbonpuhui.throttle import PublicRateLimit
from mobile_api import MobileAPIPlugin
from procurement import ProcurementPlugin

log = logging.getLogger("carbonpuhui")


async def provide_db_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """The request's unit of work: services flush, this commits once the handler has succeeded."""
    async with state.db.transaction() as session:
        yield session


def provide_principal(request: Request[Any, Any, Any]) -> Principal | None:
    return current_principal(request)


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False
    opt = {"access": PUBLIC, "throttled": False}


async def _refuse_nul(request: Request[Any, Any, Any]) -> None:
    # PostgreSQL text cannot hold U+0000: refuse it here rather than fail in the database with a 500.
    if "\x00" in request.url.path:
        raise NotFoundError(N_("No resource exists at this address."))
    bad = sorted({key for key, value in request.query_params.multi_items() if "\x00" in f"{key}{value}"})
    if bad:
        raise UnprocessableError(N_("Some fields are invalid."), errors=[
            FieldError(field=key, message=N_("Must not contain the NUL character.")) for key in bad])


class PlatformPlugin:
    """Core platform wiring, as a plugin, so the app factory only lists components."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        settings = self.settings
        # The database, stores, keys and default locale are set at startup, from the settings in the
        # app's state: what holds connections lives for one lifespan (and a test may run many on one app).
        app_config.state.update(settings=settings)
        app_config.on_startup.insert(0, open_resources)
        app_config.route_handlers.extend([HealthController, JWKSController, MetricsController])
        app_config.dependencies.update({
            "db_session": Provide(provide_db_session),
            "principal": Provide(provide_principal, sync_to_thread=False),
        })
        # After metrics and request logging (so refused requests are counted and logged too). The
        # token endpoint reads HTTP Basic client credentials itself.
        app_config.middleware.append(DefineMiddleware(BearerAuthMiddleware, exclude=["^/schema", "^/auth/token$"]))
        app_config.middleware.append(PublicRateLimit())
        app_config.exception_handlers.update(exception_handlers)
        app_config.request_class = ExactDecimalRequest  # JSON numbers stay exact decimals everywhere
        app_config.guards.insert(0, reject_invalid_token)
        app_config.before_request = _refuse_nul

        app_config.on_startup.append(warm_kernels)
        app_config.on_shutdown.append(close_resources)
        return app_config


def open_resources(app: Litestar) -> None:
    """The lifespan's database, stores and token validation, from ``app.state.settings``."""
    from carbonpuhui.stores import Stores

    settings: Settings = app.state.settings
    stores = Stores(settings)
    # The local key signs PACT client tokens in every mode, and everybody's tokens when no
    # identity provider (JWKS URL) is configured.
    jwks = public_jwks(load_or_create_signing_key(settings.key_path))
    if settings.jwks_url:
        validator = TokenValidator(KeyProvider(jwks_url=settings.jwks_url), issuer=settings.token_issuer,
                                   audience=settings.token_audience, pact_keys=KeyProvider.local(settings.key_path))
    else:
        validator = TokenValidator(KeyProvider.local(settings.key_path), issuer=settings.token_issuer,
                                   audience=settings.token_audience)
    app.state.update(db=Database(settings.effective_database_url), stores=stores, public_jwks=jwks,
                     default_locale=settings.default_locale, token_validator=validator)
    app.stores = stores.registry()


async def close_resources(app: Litestar) -> None:
    # (Also after a startup that failed before opening them: then there is nothing to close.)
    db, stores = getattr(app.state, "db", None), getattr(app.state, "stores", None)
    if db is not None:
        await db.dispose()
    if stores is not None:
        await stores.close()


async def warm_kernels() -> None:
    count = await asyncio.to_thread(scoring.warm_up)
    log.info("scoring kernels warmed: %d", count)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    prometheus = PrometheusConfig(app_name="carbonpuhui", prefix="carbonpuhui", group_path=True,
                                  exclude=["^/metrics"])
    # One JSON line per request, at the response, with method, path (bound by RequestIdMiddleware)
    # and status only: bodies, headers and queries may carry tokens, receipts or trips, which have
    # no place in logs. A second line per request would cost a fifth of a cached label read.
    logging_plugin = StructlogPlugin(StructlogConfig(
        # Our exception handlers log what matters (5xx with traceback, 503 as a warning); a 4xx is
        # the client's mistake, not an error of ours.
        structlog_logging_config=StructLoggingConfig(log_exceptions="never"),
        middleware_logging_config=LoggingMiddlewareConfig(
            request_log_fields=(), response_log_fields=("status_code",),
            exclude=["^/healthz$", "^/readyz$", "^/metrics$"],
        ),
    )) if settings.log_json else None
    plugins: list[Any] = [] if logging_plugin is None else [logging_plugin]  # outermost: logs everything
    plugins += [PlatformPlugin(settings), FactorsPlugin(), LabelsPlugin(), PactPlugin(), MobileAPIPlugin(),
                ProcurementPlugin(), StatsPlugin()]
    return Litestar(
        route_handlers=[],
        plugins=plugins,
        middleware=[RequestIdMiddleware(), prometheus.middleware],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="carbonpuhui", version=__version__,
            description="Provincial product carbon footprints, labels and carbon-inclusive credits (碳普惠).",
            path="/schema", render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin()],
        ),
        debug=False,
    )


__all__ = ["create_app"]

"""No input may produce a 500: schemathesis fuzzes every operation of the served OpenAPI schema.

The schema is read from ``/schema/openapi.json`` of a throw-away app at import time (collection
needs it); the requests go to an app on the run's migrated database, with an admin token, so the
guarded routes run their handlers instead of stopping at the 401.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from litestar import Litestar
from litestar.testing import TestClient
from schemathesis.checks import not_a_server_error

from carbonpuhui.app import create_app
from carbonpuhui.auth.tokens import mint_token
from tests.conftest import _empty_tables, make_settings

MAX_EXAMPLES = 30


def _served_spec() -> dict:
    with tempfile.TemporaryDirectory() as tmp, \
            TestClient(create_app(make_settings(Path(tmp), redis_url=None))) as client:
        response = client.get("/schema/openapi.json")
        response.raise_for_status()
        return response.json()


class _CurrentApp:
    """The ASGI app the generated requests go to; the fixture below points it at the app under test."""

    app: Litestar | None = None

    async def __call__(self, scope: dict, receive: object, send: object) -> None:
        assert self.app is not None, "the admin_headers fixture sets the app"
        await self.app(scope, receive, send)  # type: ignore[arg-type]


target = _CurrentApp()
schema = schemathesis.openapi.from_dict(_served_spec(), config=schemathesis.Config.from_dict({
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "mode": "all"},
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
}))
schema.app = target


@pytest.fixture(scope="module")
def admin_headers(tmp_path_factory: pytest.TempPathFactory, migrated_database_url: str) -> Iterator[dict[str, str]]:
    # Fuzzing sends hundreds of public reads a minute: lift the limit so 429s do not hide handlers.
    settings = make_settings(tmp_path_factory.mktemp("fuzz"), database_url=migrated_database_url,
                             public_rate_limit_per_minute=1_000_000)
    target.app = create_app(settings)
    token = mint_token(settings.key_path, issuer=settings.token_issuer, audience=settings.token_audience,
                       sub="fuzzer", roles=["admin"], org="fuzz-org", ttl=3600)
    yield {"Authorization": f"Bearer {token}"}
    # schemathesis keeps an app's lifespan running until the process exits: stop it while the
    # database still exists, then empty the shared database for the tests that follow.
    schemathesis.python.asgi.shutdown_lifespans()
    target.app = None
    _empty_tables(migrated_database_url)


@schema.parametrize()
def test_no_input_produces_a_server_error(case: schemathesis.Case, admin_headers: dict[str, str]) -> None:
    case.call_and_validate(headers=admin_headers, checks=[not_a_server_error])

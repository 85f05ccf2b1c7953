"""Shared fixtures.

By default the app runs on a fresh, migrated SQLite file and the in-process store. With
``CARBONPUHUI_TEST_DATABASE_URL`` (a PostgreSQL server URL) and ``CARBONPUHUI_TEST_REDIS_URL``
the same tests run on a database created for this run and a Redis key prefix of its own; both are
removed at the end. Tests marked ``services`` talk to PostgreSQL / Redis directly: they skip when
those are down, or fail when ``CARBONPUHUI_REQUIRE_SERVICES=1`` (as in CI).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from carbonpuhui.app import create_app
from carbonpuhui.auth.tokens import mint_token
from carbonpuhui.db.engine import create_engine, execute_autocommit, normalise_url
from carbonpuhui.db.migrate import upgrade
from carbonpuhui.db.models import metadata
from carbonpuhui.settings import Settings, load_settings

REQUIRE_SERVICES = os.environ.get("CARBONPUHUI_REQUIRE_SERVICES") == "1"
TEST_DATABASE_URL = os.environ.get("CARBONPUHUI_TEST_DATABASE_URL") or None
TEST_REDIS_URL = os.environ.get("CARBONPUHUI_TEST_REDIS_URL") or None
SERVICE_PG_URL = TEST_DATABASE_URL or "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SERVICE_REDIS_URL = TEST_REDIS_URL or "redis://127.0.0.1:6379/0"
# Multi-process tests that bring up their own servers on the shared (or a private) PostgreSQL and
# Redis do not depend on which database a test run targets: CI runs them once, in the SQLite leg
# (CARBONPUHUI_SHARED_SERVICE_TESTS=0 on the other), instead of twice.
SHARED_SERVICE_TESTS = os.environ.get("CARBONPUHUI_SHARED_SERVICE_TESTS", "1") != "0"
once_per_ci = pytest.mark.skipif(not SHARED_SERVICE_TESTS, reason="runs in the other CI leg "
                                 "(CARBONPUHUI_SHARED_SERVICE_TESTS=0)")


# Database-independent API tests that CI runs in the PostgreSQL leg only, to balance the two legs
# (CARBONPUHUI_ONCE_IN_OTHER_LEG=1, set in the SQLite leg, skips them there).
OTHER_LEG_TESTS = os.environ.get("CARBONPUHUI_ONCE_IN_OTHER_LEG") == "1"
POSTGRES_LEG_ONLY = ("/tests/api/test_fuzz_roles.py", "/tests/api/test_problems.py", "/tests/api/test_openapi.py")
# ... and in the SQLite leg only, with the unit tests and the multi-process ones.
# (The served-demo and PACT conformance tests run their own server on the embedded default.)
SQLITE_LEG_ONLY = ("/tests/api/test_role_matrix.py", "/tests/integration/test_serve.py",
                   "/tests/integration/test_pact_conformance.py")
in_other_leg = pytest.mark.skip(reason="runs in the other CI leg (CARBONPUHUI_ONCE_IN_OTHER_LEG=1)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Unit tests touch no database or store; the role matrix and the role fuzzing are decided by the
    guards before any handler runs; problem localisation and the served OpenAPI schema do not depend
    on the database: each gives the same answer in either CI leg, so CI runs it once, in one leg or
    the other (CARBONPUHUI_SHARED_SERVICE_TESTS=0 and CARBONPUHUI_ONCE_IN_OTHER_LEG=1 skip them), which
    keeps the two legs about as long."""
    for item in items:
        path = item.path.as_posix()
        if not SHARED_SERVICE_TESTS and ("/tests/unit/" in path or path.endswith(SQLITE_LEG_ONLY)):
            item.add_marker(once_per_ci)
        if OTHER_LEG_TESTS and path.endswith(POSTGRES_LEG_ONLY):
            item.add_marker(in_other_leg)


RUN_ID = uuid.uuid4().hex[:10]
REDIS_NAMESPACE = f"cpt-{RUN_ID}"


# --- services -----------------------------------------------------------------------------------


def _pg_reachable(url: str) -> str | None:
    async def probe() -> None:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(probe(), 5))
        return None
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL at {make_url(url).render_as_string()} unreachable: {exc!r}"


def _redis_reachable(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"Redis at {url} unreachable: {exc!r}"


def require_service(problem: str | None) -> None:
    if problem is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail(problem + " (CARBONPUHUI_REQUIRE_SERVICES=1)")
    pytest.skip(problem)


class PostgresDatabases:
    """Creates throw-away databases on the test server and drops them at the end of the run."""

    def __init__(self, server_url: str) -> None:
        self.server_url = normalise_url(server_url)
        self.created: list[str] = []

    def _admin(self, sql: str) -> None:
        execute_autocommit(self.server_url, sql)

    def create(self) -> str:
        name = f"cpt_{RUN_ID}_{len(self.created)}"
        self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        for name in self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    require_service(_pg_reachable(SERVICE_PG_URL))
    dbs = PostgresDatabases(SERVICE_PG_URL)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    require_service(_redis_reachable(SERVICE_REDIS_URL))
    yield SERVICE_REDIS_URL


@pytest.fixture(scope="session", autouse=True)
def _clean_redis_namespace() -> Iterator[None]:
    yield
    if TEST_REDIS_URL is None and not REQUIRE_SERVICES:
        return
    import redis

    try:
        client = redis.Redis.from_url(SERVICE_REDIS_URL, socket_connect_timeout=2)
        keys = list(client.scan_iter(match=f"{REDIS_NAMESPACE}*", count=1000))
        if keys:
            client.delete(*keys)
    except Exception:  # noqa: BLE001 - nothing to clean when Redis is gone
        pass


# --- the app under test -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def migrated_database_url(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    """One migrated database for the run; each test empties it afterwards."""
    if TEST_DATABASE_URL:
        url = request.getfixturevalue("postgres_databases").create()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    upgrade(url)
    return url


def _empty_tables(url: str) -> None:
    async def run() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # TRUNCATE: the credit ledger refuses row deletes (append-only triggers).
                    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
                    await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                    return
                for table in reversed(metadata.sorted_tables):
                    await conn.execute(table.delete())
        finally:
            await engine.dispose()

    asyncio.run(run())


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir, "database_url": None, "redis_url": TEST_REDIS_URL,
        "redis_namespace": REDIS_NAMESPACE + f":{uuid.uuid4().hex[:6]}", "log_json": False,
        "transit_operators": frozenset({"metro-op"}),  # the credit tests' transit operator
    }
    values.update(overrides)
    return load_settings({}, **values)


@pytest.fixture
def settings(tmp_path: Path, migrated_database_url: str) -> Iterator[Settings]:
    yield make_settings(tmp_path / "data", database_url=migrated_database_url)
    _empty_tables(migrated_database_url)


_SHARED_APPS: dict[tuple[object, ...], tuple[Litestar, dict[str, object]]] = {}


def shared_app(settings: Settings) -> Litestar:
    """``create_app(settings)``, but built once per process for each set of construction-time
    settings: registering the routes takes about 0.4 s, most of a short test. The database, stores
    and keys open at each lifespan's startup from ``app.state.settings``, so every test still gets
    its own; the state is reset to what the app was built with, plus this test's settings."""
    key = (settings.log_json, settings.max_body_bytes)
    if key not in _SHARED_APPS:
        built = create_app(settings)
        _SHARED_APPS[key] = (built, built.state.dict())
    app, initial = _SHARED_APPS[key]
    if app.logging_config:  # as a fresh app would: another test may have configured logging since
        app.get_logger = app.logging_config.configure()
    app.state = State({**initial, "settings": settings})
    return app


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return shared_app(settings)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


TokenFactory = Callable[..., str]


@pytest.fixture
def token(settings: Settings) -> TokenFactory:
    """``token("admin")`` or ``token("merchant", org="acme", sub="bob", ttl=60)``: a valid token."""

    def make(*roles: str, sub: str = "tester", org: str | None = None, ttl: int = 600) -> str:
        return mint_token(settings.key_path, issuer=settings.token_issuer, audience=settings.token_audience,
                          sub=sub, roles=list(roles), org=org, ttl=ttl)

    return make


@pytest.fixture
def auth(token: TokenFactory) -> Callable[..., dict[str, str]]:
    """``auth("admin")`` -> an Authorization header for a fresh token with those roles."""

    def make(*roles: str, **kwargs: object) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(*roles, **kwargs)}"}

    return make

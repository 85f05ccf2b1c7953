"""/readyz reports the database and Redis; when either is down it answers 503 (and /healthz stays up)."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from carbonpuhui.app import create_app
from tests.conftest import make_settings

CLOSED_PORT = 9  # discard: nothing listens there on loopback


def _ready(settings):  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        return client.get("/healthz"), client.get("/readyz")


def test_ready_on_the_run_database_without_redis(tmp_path, migrated_database_url):
    """The run's database (SQLite, or PostgreSQL in the services run) and the in-process store:
    without Redis configured, readiness checks the database alone."""
    live, ready = _ready(make_settings(tmp_path, database_url=migrated_database_url, redis_url=None))
    assert live.status_code == 200
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "schema": "ok"}}


def test_database_down_is_503(tmp_path):
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{CLOSED_PORT}/nothing"
    live, ready = _ready(make_settings(tmp_path, database_url=url, redis_url=None))
    assert live.status_code == 200
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("down")


def test_redis_down_is_503(tmp_path, migrated_database_url):
    live, ready = _ready(make_settings(tmp_path, database_url=migrated_database_url,
                                       redis_url=f"redis://127.0.0.1:{CLOSED_PORT}/0"))
    assert live.status_code == 200
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["redis"].startswith("down")


def test_public_reads_survive_a_redis_outage(tmp_path, migrated_database_url):
    """Redis holds only rate-limit windows here: with it down, public reads are served (unthrottled,
    with a warning in the log) from the database, which is the source of truth."""
    settings = make_settings(tmp_path, database_url=migrated_database_url,
                             redis_url=f"redis://127.0.0.1:{CLOSED_PORT}/0")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/v1/factors")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.services
def test_ready_with_postgres_and_redis(tmp_path, postgres_databases, redis_url):
    from carbonpuhui.db.migrate import upgrade

    url = postgres_databases.create()
    upgrade(url)
    live, ready = _ready(make_settings(tmp_path, database_url=url, redis_url=redis_url))
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "schema": "ok", "redis": "ok"}}


def test_a_database_behind_the_code_is_not_ready(tmp_path):
    """Mid rolling deploy: new code, old schema. The process must say so, not serve errors."""
    from carbonpuhui.db.migrate import downgrade, head_revision, upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'behind.sqlite3'}"
    upgrade(url)
    live, ready = _ready(make_settings(tmp_path, database_url=url, redis_url=None))
    assert ready.status_code == 200
    downgrade(url, "base")
    live, ready = _ready(make_settings(tmp_path, database_url=url, redis_url=None))
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"]["schema"] == f"behind: at nothing, code needs {head_revision()}"

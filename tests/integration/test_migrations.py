"""Migrations are the only way the schema is made: they must build it on SQLite and PostgreSQL,
agree exactly with the models, and go down again cleanly."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from carbonpuhui.db.engine import create_engine
from carbonpuhui.db.migrate import downgrade, upgrade
from carbonpuhui.db.models import metadata


def _diff_and_tables(url: str) -> tuple[list[object], set[str], str | None]:
    async def run() -> tuple[list[object], set[str], str | None]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                def inspect_sync(sync_conn):  # type: ignore[no-untyped-def]
                    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                    diff = compare_metadata(context, metadata)
                    tables = set(inspect(sync_conn).get_table_names())
                    return diff, tables, context.get_current_revision()

                return await conn.run_sync(inspect_sync)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _check_round_trip(url: str) -> None:
    upgrade(url)
    diff, tables, revision = _diff_and_tables(url)
    assert diff == [], f"models and migrations disagree: {diff}"
    assert {table.name for table in metadata.sorted_tables} <= tables
    assert revision is not None
    upgrade(url)  # idempotent: already at head
    downgrade(url, "base")
    _, tables, revision = _diff_and_tables(url)
    assert revision is None
    assert not ({table.name for table in metadata.sorted_tables} & tables)
    upgrade(url)
    diff, _, _ = _diff_and_tables(url)
    assert diff == []


def test_migrations_match_models_on_sqlite(tmp_path):
    _check_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite3'}")


@pytest.mark.services
def test_migrations_match_models_on_postgresql(postgres_databases):
    _check_round_trip(postgres_databases.create())


def test_compare_metadata_notices_a_missing_migration(tmp_path):
    """The check above can fail: a model column that no migration creates is reported."""
    from sqlalchemy import Column, MetaData, String, Table

    url = f"sqlite+aiosqlite:///{tmp_path / 'n.sqlite3'}"
    upgrade(url)
    extra = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(extra)
    Table("factor_versions", extra, Column("not_migrated", String(10)), extend_existing=True)

    async def run() -> list[object]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), extra))
        finally:
            await engine.dispose()

    diff = asyncio.run(run())
    assert any("not_migrated" in repr(item) for item in diff)

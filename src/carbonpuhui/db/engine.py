"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

AFTER_COMMIT = "carbonpuhui.after_commit"


def after_commit(session: AsyncSession, hook: Callable[[], Awaitable[None]]) -> None:
    """Run ``hook`` once the request's unit of work has committed (never if it rolls back)."""
    session.info.setdefault(AFTER_COMMIT, []).append(hook)


def _json_dumps(value: Any) -> str:
    # Keep Chinese names readable (and searchable) in the database.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` / ``sqlite://`` URLs and pick the async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str) -> AsyncEngine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, json_serializer=_json_dumps, connect_args={"timeout": 30}, hide_parameters=True,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(
        # hide_parameters: SQL errors must not copy request data (names, sources, values) into logs.
        url, json_serializer=_json_dumps, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


def execute_autocommit(url: str, sql: str) -> None:
    """Run one statement outside any transaction (CREATE or DROP DATABASE, for tests and benchmarks),
    from synchronous code."""

    async def run() -> None:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(run())


async def read_snapshot(session: AsyncSession) -> bool:
    """Make the rest of a fresh session's transaction read one snapshot of the database, so that
    figures computed by several queries agree with each other (and a concurrent commit shows in all
    of them or in none). For read-only work: PostgreSQL's REPEATABLE READ, READ ONLY; on SQLite an
    explicit BEGIN (its driver would otherwise run each SELECT in a transaction of its own). False,
    and nothing done, when the session's transaction has begun already: it is the caller's then."""
    if session.in_transaction():
        return False
    if session.get_bind().dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ",
                                                    "postgresql_readonly": True})
    else:
        connection = await session.connection()
        await connection.exec_driver_sql("BEGIN")
    return True


# Second connections in use, per engine. At most half the pool at once: a computation holds its first
# connection while it waits for its second, so were every connection held by one of them waiting, none
# would ever come free. With a cap, the others run their queries in turn and give theirs back.
_twins: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def _twin_slots(engine: Any) -> int:
    size = getattr(engine.pool, "size", None)
    return max(1, size() // 2) if callable(size) else 2**31  # (a pool without a size never blocks)


@asynccontextmanager
async def snapshot_twin(session: AsyncSession) -> AsyncIterator[AsyncSession | None]:
    """A second session, on a connection of its own, reading the very snapshot of ``session``'s
    read-only REPEATABLE READ transaction (PostgreSQL's exported snapshots): independent queries can
    then run at once, each on its own server process, and still agree with each other. None (run them
    in turn on ``session``) on SQLite, or when ``session`` is not in such a transaction: it may hold
    writes of its own, which another connection would not see; or when half the pool's connections are
    second connections already."""
    if session.get_bind().dialect.name != "postgresql" or not session.in_transaction():
        yield None
        return
    connection = await session.connection()
    isolation, read_only = (await connection.execute(text(
        "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')"))).one()
    if isolation != "repeatable read" or read_only != "on":
        yield None
        return
    engine = connection.engine.sync_engine
    if _twins.get(engine, 0) >= _twin_slots(engine):
        yield None
        return
    _twins[engine] = _twins.get(engine, 0) + 1  # (one event loop: nothing runs between check and count)
    try:
        snapshot = (await connection.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
        if not re.fullmatch(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?", snapshot):  # (inlined below: no parameters)
            raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
        async with connection.engine.connect() as twin:
            await twin.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            await twin.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # the transaction's first
            async with AsyncSession(bind=twin) as other:
                yield other
    finally:
        _twins[engine] -= 1


class Database:
    """Owns the engine and hands out sessions. Services receive a session and never commit."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = create_engine(self.url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def backend(self) -> str:
        return make_url(self.url).get_backend_name()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on any error."""
        async with self.sessionmaker() as session:
            try:
                yield session
                if session.in_transaction():  # a read served from the cache never touched the database
                    await session.commit()
            except BaseException:
                await session.rollback()
                raise
            # Cache invalidations and the like: only once the change is durable, so no other process
            # can read the old rows and cache them again after the invalidation.
            for hook in session.info.pop(AFTER_COMMIT, []):
                await hook()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None: never migrated)."""
        from carbonpuhui.db.migrate import current_revision

        async with self.engine.connect() as conn:
            return await conn.run_sync(current_revision)

    async def dispose(self) -> None:
        await self.engine.dispose()

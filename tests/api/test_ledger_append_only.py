"""On PostgreSQL the ledger's entries and transfers cannot be updated or deleted, even by SQL that
bypasses the application: corrections are new transfers."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from carbonpuhui.db.engine import create_engine
from tests.api.credit_flow import CreditFlow, trip_body


def _run_sql(url: str, sql: str) -> None:
    async def run() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.mark.parametrize("sql", [
    "UPDATE credit_entries SET amount_g = amount_g + 1",
    "DELETE FROM credit_entries",
    "UPDATE credit_transfers SET kind = 'trip'",
    "DELETE FROM credit_transfers",
])
def test_entries_and_transfers_refuse_changes(client, auth, settings, sql: str) -> None:
    if not settings.effective_database_url.startswith("postgresql"):
        pytest.skip("the append-only triggers are PostgreSQL's (SQLite is the embedded, single-node default)")
    flow = CreditFlow(client, auth)
    walker = flow.consumer("walker")
    assert flow.trip(walker, trip_body("walk", "3", 40)).status_code == 201
    before = flow.wallet(walker)
    with pytest.raises(DBAPIError, match="append-only"):
        _run_sql(settings.effective_database_url, sql)
    assert flow.wallet(walker) == before
    assert before["balance_g"] > 0

"""Two processes importing the same file at once: the database ends with one copy of each row,
and the loser gets either "unchanged" (it ran second) or a clean 409 (it raced), never a 500."""

from __future__ import annotations

import asyncio
import json

from carbonpuhui.auth import Principal
from carbonpuhui.db import Database
from carbonpuhui.errors import ConflictError
from carbonpuhui.factors.importer import import_factors, parse
from carbonpuhui.factors.service import FactorService

ADMIN = Principal(sub="ops", roles=frozenset({"admin"}))
ROWS = [{"id": f"imp-{i}", "names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"},
         "category": "electricity.grid", "unit": "kWh", "kgco2e_per_unit": f"0.{500 + i}", "gwp_basis": "AR5",
         "region": "CN", "tier": "national", "valid_from": "2022-01-01", "source": "test"} for i in range(40)]
FILE = json.dumps(ROWS).encode()


async def _import(db: Database, hold: float) -> str:
    try:
        async with db.transaction() as session:
            result = await import_factors(FactorService(session), parse(FILE, "application/json"), ADMIN,
                                          publish=True)
            await asyncio.sleep(hold)
        return f"created={result.created} unchanged={result.unchanged}"
    except ConflictError as exc:
        return str(exc.reason)


async def test_concurrent_imports_store_each_row_once(settings):
    a, b = Database(settings.effective_database_url), Database(settings.effective_database_url)
    try:
        outcomes = await asyncio.gather(_import(a, 0.05), _import(b, 0.0))
        async with a.transaction() as session:
            stored = await FactorService(session).repo.versions_of_many([r["id"] for r in ROWS])
    finally:
        await a.dispose()
        await b.dispose()
    assert sorted((r.factor_id, r.version) for r in stored) == sorted((r["id"], 1) for r in ROWS)
    assert "created=40 unchanged=0" in outcomes
    other = [o for o in outcomes if o != "created=40 unchanged=0"]
    assert other in (["concurrent_import"], ["created=0 unchanged=40"]), outcomes

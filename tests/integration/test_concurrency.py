"""Two API processes adding versions of one factor at once: every version number is taken exactly
once, and a loser gets a clean 409 (never a duplicate, a gap-filling overwrite, or a 500)."""

from __future__ import annotations

import asyncio

import msgspec

from carbonpuhui.auth import Principal
from carbonpuhui.db import Database
from carbonpuhui.errors import ConflictError
from carbonpuhui.factors.schemas import FactorBody, FactorCreate
from carbonpuhui.factors.service import FactorService

ADMIN = Principal(sub="ops", roles=frozenset({"admin"}))
BODY = {"names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"}, "category": "electricity.grid",
        "unit": "kWh", "gwp_basis": "AR5", "region": "CN", "tier": "national", "valid_from": "2022-01-01",
        "source": "test"}


async def _add(db: Database, value: str) -> int | str:
    body = msgspec.convert({**BODY, "kgco2e_per_unit": value}, FactorBody)
    try:
        async with db.transaction() as session:
            row = await FactorService(session).add_version("race", body, ADMIN)
            return row.version
    except ConflictError as exc:
        return exc.reason or "conflict"


async def test_concurrent_versions_never_share_a_number(settings):
    process_a = Database(settings.effective_database_url)
    process_b = Database(settings.effective_database_url)
    try:
        async with process_a.transaction() as session:
            await FactorService(session).create(
                msgspec.convert({**BODY, "id": "race", "kgco2e_per_unit": "1"}, FactorCreate), ADMIN)
        outcomes = await asyncio.gather(*[
            _add(process_a if i % 2 else process_b, f"2.{i:02d}") for i in range(12)
        ])
        async with process_a.transaction() as session:
            rows = await FactorService(session).repo.versions("race")
    finally:
        await process_a.dispose()
        await process_b.dispose()
    won = [o for o in outcomes if isinstance(o, int)]
    lost = [o for o in outcomes if not isinstance(o, int)]
    assert set(lost) <= {"version_exists"}
    assert len(won) == len(set(won)), "a version number was handed out twice"
    assert [r.version for r in rows] == list(range(1, len(won) + 2))
    # Each stored version holds the value of the call that won it: nothing was overwritten.
    assert len({r.kgco2e_per_unit for r in rows}) == len(rows)

"""Two API processes adding versions of one factor at once: every version number is taken exactly
once, and a loser gets a clean 409 (never a duplicate, a gap-filling overwrite, or a 500)."""

from __future__ import annotations

import asyncio

import msgspec

from carbonpuhui.auth import Principal
from carbonpuhui.db import Database
from carbonpuhui.errors import ConflictError
from carbonpuhui.factors.repository import FactorRepository
from carbonpuhui.factors.schemas import FactorBody, FactorCreate
from carbonpuhui.factors.service import FactorService

ADMIN = Principal(sub="ops", roles=frozenset({"admin"}))
BODY = {"names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"}, "category": "electricity.grid",
        "unit": "kWh", "gwp_basis": "AR5", "region": "CN", "tier": "national", "valid_from": "2022-01-01",
        "source": "test"}
# A hung race (a lock never released) fails the test instead of stalling the run.
DEADLINE_SECONDS = 60


async def _add(db: Database, value: str) -> int | str:
    body = msgspec.convert({**BODY, "kgco2e_per_unit": value}, FactorBody)
    try:
        async with db.transaction() as session:
            row = await FactorService(session).add_version("race", body, ADMIN)
            return row.version
    except ConflictError as exc:
        return exc.reason or "conflict"


async def _create(db: Database) -> None:
    async with db.transaction() as session:
        await FactorService(session).create(
            msgspec.convert({**BODY, "id": "race", "kgco2e_per_unit": "1"}, FactorCreate), ADMIN)


async def _stored(db: Database) -> list[tuple[int, str]]:
    async with db.transaction() as session:
        return [(r.version, str(r.kgco2e_per_unit)) for r in await FactorService(session).repo.versions("race")]


async def test_adders_that_all_read_the_same_latest_version_get_one_winner(settings, monkeypatch):
    """Contention made certain: every adder reads the latest version (1) before any of them inserts,
    so all of them go for version 2; exactly one gets it and every other one a version_exists 409."""
    adders = 4
    process_a = Database(settings.effective_database_url)
    process_b = Database(settings.effective_database_url)
    try:
        await _create(process_a)
        all_have_read = asyncio.Barrier(adders)
        read_latest = FactorRepository.max_version

        async def max_version_then_wait(self: FactorRepository, factor_id: str) -> int:
            latest = await read_latest(self, factor_id)
            await all_have_read.wait()
            return latest

        monkeypatch.setattr(FactorRepository, "max_version", max_version_then_wait)
        outcomes = await asyncio.wait_for(asyncio.gather(*[
            _add(process_a if i % 2 else process_b, f"2.{i}") for i in range(adders)
        ]), DEADLINE_SECONDS)
        monkeypatch.undo()
        # Losing is not final: the next attempt sees version 2 and takes 3.
        retry = await _add(process_b, "3")
        rows = await _stored(process_a)
    finally:
        await process_a.dispose()
        await process_b.dispose()
    assert sorted(outcomes, key=str) == [2] + ["version_exists"] * (adders - 1), outcomes
    winner = f"2.{outcomes.index(2)}"
    assert retry == 3
    # The winner's value is what version 2 holds; no loser overwrote it.
    assert rows == [(1, "1"), (2, winner), (3, "3")]


async def test_concurrent_versions_never_share_a_number(settings):
    """Free-running adders on two engines: however they interleave, numbers are unique and gapless."""
    adders = 12
    process_a = Database(settings.effective_database_url)
    process_b = Database(settings.effective_database_url)
    try:
        await _create(process_a)
        outcomes = await asyncio.wait_for(asyncio.gather(*[
            _add(process_a if i % 2 else process_b, f"2.{i:02d}") for i in range(adders)
        ]), DEADLINE_SECONDS)
        rows = await _stored(process_a)
    finally:
        await process_a.dispose()
        await process_b.dispose()
    won = [o for o in outcomes if isinstance(o, int)]
    lost = [o for o in outcomes if not isinstance(o, int)]
    assert set(lost) <= {"version_exists"}
    assert len(won) == len(set(won)), "a version number was handed out twice"
    assert [version for version, _ in rows] == list(range(1, len(won) + 2))
    # Each stored version holds the value of the call that won it: nothing was overwritten.
    assert {value for version, value in rows if version > 1} == {f"2.{outcomes.index(v):02d}" for v in won}

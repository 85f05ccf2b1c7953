"""Two API processes taking one supplier's first bid at once: the database keeps one bid per
supplier and tender, the loser's submission replaces the winner's (never a duplicate or a 500)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec

from carbonpuhui.auth import Principal
from carbonpuhui.db import Database
from procurement.repository import TenderRepository
from procurement.schemas import BidIn, TenderIn
from procurement.service import TenderService

OFFICER = Principal(sub="officer", roles=frozenset({"officer"}), org="agency")
SUPPLIER = Principal(sub="mill-user", roles=frozenset({"merchant"}), org="mill")
DEADLINE_SECONDS = 60


async def _tender(db: Database) -> str:
    body = msgspec.convert({
        "title": "race", "category": "steel", "functional_unit": "tonne", "quantity": "1",
        "deadline": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "weights": {"price": "0.6", "carbon": "0.4"}, "carbon_method": "ratio_to_best"}, TenderIn, strict=False)
    async with db.transaction() as session:
        return (await TenderService(session).create(body, OFFICER)).id


async def _submit(db: Database, tender_id: str, price: int) -> bool:
    body = msgspec.convert({"price_cents": price, "footprint": {"kgco2e_per_unit": "2", "gsd": 1.1}}, BidIn,
                           strict=False)
    async with db.transaction() as session:
        _, replaced = await TenderService(session).submit(tender_id, body, SUPPLIER)
        return replaced


async def test_first_bids_submitted_at_once_leave_one_bid(settings, monkeypatch) -> None:
    process_a = Database(settings.effective_database_url)
    process_b = Database(settings.effective_database_url)
    try:
        tender_id = await _tender(process_a)
        both_looked = asyncio.Barrier(2)
        look = TenderRepository.supplier_bid

        async def look_then_wait(self: TenderRepository, tender_id: str, supplier_org: str, *,
                                 for_update: bool = False):  # type: ignore[no-untyped-def]
            found = await look(self, tender_id, supplier_org, for_update=for_update)
            if found is None:  # contention made certain: neither inserts before both found nothing
                await both_looked.wait()
            return found

        monkeypatch.setattr(TenderRepository, "supplier_bid", look_then_wait)
        outcomes = await asyncio.wait_for(asyncio.gather(_submit(process_a, tender_id, 100),
                                                         _submit(process_b, tender_id, 200)), DEADLINE_SECONDS)
        monkeypatch.undo()
        async with process_a.transaction() as session:
            bids = await TenderRepository(session).bids(tender_id)
    finally:
        await process_a.dispose()
        await process_b.dispose()
    assert sorted(outcomes) == [False, True]
    assert len(bids) == 1 and bids[0].revision == 2
    assert bids[0].price_cents == (200 if outcomes == [False, True] else 100)  # the replacing one stands

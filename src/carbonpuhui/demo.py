"""The demo data set: real, sourced factors (each names its source). Loading it twice changes nothing."""

from __future__ import annotations

from importlib import resources

from carbonpuhui.auth import Principal
from carbonpuhui.db import Database
from carbonpuhui.factors.importer import import_factors, parse
from carbonpuhui.factors.schemas import ImportResult
from carbonpuhui.factors.service import FactorService

SYSTEM = Principal(sub="system:demo", roles=frozenset({"admin"}))


def demo_factor_file() -> bytes:
    return resources.files("carbonpuhui.factors").joinpath("demo_factors.json").read_bytes()


async def load_demo(db: Database) -> ImportResult:
    async with db.transaction() as session:
        return await import_factors(FactorService(session), parse(demo_factor_file(), "application/json"),
                                    SYSTEM, publish=True)

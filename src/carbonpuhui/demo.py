"""The demo data set: real, sourced factors (each names its source) and two illustrative products
with inventories. Loading it twice changes nothing."""

from __future__ import annotations

import json
from importlib import resources

import msgspec

from carbonpuhui.auth import Principal
from carbonpuhui.db import Database
from carbonpuhui.factors.importer import import_factors, parse
from carbonpuhui.factors.schemas import ImportResult
from carbonpuhui.factors.service import FactorService
from carbonpuhui.footprints.schemas import InventoryIn, ProductCreate
from carbonpuhui.footprints.service import ProductService

SYSTEM = Principal(sub="system:demo", roles=frozenset({"admin"}))


def demo_factor_file() -> bytes:
    return resources.files("carbonpuhui.factors").joinpath("demo_factors.json").read_bytes()


def demo_products() -> list[dict[str, object]]:
    return json.loads(resources.files("carbonpuhui.footprints").joinpath("demo_products.json").read_bytes())


async def load_demo(db: Database) -> ImportResult:
    async with db.transaction() as session:
        result = await import_factors(FactorService(session), parse(demo_factor_file(), "application/json"),
                                      SYSTEM, publish=True)
    for entry in demo_products():
        owner = Principal(sub="system:demo", roles=frozenset({"merchant"}), org=str(entry["org"]))
        product = msgspec.convert(entry["product"], ProductCreate)
        async with db.transaction() as session:
            service = ProductService(session)
            if await service.repo.get(product.gtin.zfill(14)) is not None:
                continue
            await service.create(product, owner)
            await service.put_inventory(product.gtin, msgspec.convert(entry["inventory"], InventoryIn), owner,
                                        locale="en")
            if entry.get("verifier"):
                await service.assign_verifier(product.gtin, str(entry["verifier"]), owner)
    return result

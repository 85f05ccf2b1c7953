"""The demo data set: real, sourced factors (each names its source), two illustrative products with
inventories, illustrative benchmarks, a verified and a self-declared label, listings, a demo shop's
receipt key and rewards. Loading it twice changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import resources

import msgspec

from carbonpuhui.auth import Principal
from carbonpuhui.db import Database
from carbonpuhui.factors.importer import import_factors, parse
from carbonpuhui.factors.schemas import ImportResult
from carbonpuhui.factors.service import FactorService
from carbonpuhui.footprints.schemas import InventoryIn, ProductCreate
from carbonpuhui.footprints.service import ProductService
from carbonpuhui.labels.schemas import ApplicationIn, BenchmarkIn, DecisionIn, ListingIn, SelfDeclarationIn
from carbonpuhui.labels.service import BenchmarkService, CertificationService, PublicLabelService, today_cst
from carbonpuhui.stats.demo import load_demo_stats

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
    await load_demo_labels(db)
    await load_demo_credits(db)
    async with db.transaction() as session:  # after the products: the coil is placed at a site
        await load_demo_stats(session)
    return result


def demo_labels() -> dict[str, object]:
    return json.loads(resources.files("carbonpuhui.labels").joinpath("demo_labels.json").read_bytes())


async def load_demo_labels(db: Database) -> None:
    """Benchmarks, labels and listings for the demo products (skipped where they already exist)."""
    spec = demo_labels()
    async with db.transaction() as session:
        benchmarks = BenchmarkService(session)
        for category, body in spec["benchmarks"].items():  # type: ignore[attr-defined]
            if await benchmarks.repo.benchmark(category) is None:
                await benchmarks.put(category, msgspec.convert(body, BenchmarkIn), SYSTEM)
    labels = [(entry, "verified") for entry in spec["verified"]] + [  # type: ignore[attr-defined]
        (entry, "self_declared") for entry in spec["self_declared"]]  # type: ignore[attr-defined]
    for entry, scheme in labels:
        async with db.transaction() as session:
            service = CertificationService(session)
            product = await service.products.repo.get(entry["gtin"].zfill(14))
            if product is None or await service.repo.current(product.gtin) is not None:
                continue
            owner = Principal(sub="system:demo", roles=frozenset({"merchant"}), org=product.owner_org)
            until = today_cst() + timedelta(days=entry["valid_days"])
            if scheme == "self_declared":
                await service.self_declare(product.gtin, SelfDeclarationIn(valid_until=until), owner)
                continue
            body = Principal(sub="system:demo-verifier", roles=frozenset({"verifier"}), org=entry["body"])
            application = await service.apply(product.gtin, ApplicationIn(certification_body=entry["body"]), owner)
            await service.decide(application.id, DecisionIn(decision="approve", comment="Demo verification",
                                                            valid_until=until), body)
    for entry in spec["listings"]:  # type: ignore[attr-defined]
        async with db.transaction() as session:
            public = PublicLabelService(session)
            merchant = Principal(sub="system:demo", roles=frozenset({"merchant"}), org=entry["org"])
            if await public.repo.listing_of(entry["org"], entry["gtin"].zfill(14), entry["store"]) is None:
                await public.create_listing(msgspec.convert({k: v for k, v in entry.items() if k != "org"},
                                                            ListingIn), merchant)


def demo_credits() -> dict[str, object]:
    return json.loads(resources.files("carbonpuhui.credits").joinpath("demo_credits.json").read_bytes())


async def load_demo_credits(db: Database) -> None:
    """The demo shop's point-of-sale key (its private half is in the file, for demo receipts) and rewards."""
    from sqlalchemy import select

    from carbonpuhui.credits.models import Reward
    from carbonpuhui.credits.schemas import RewardIn
    from carbonpuhui.credits.service import KeyService, RewardService
    from carbonpuhui.settings import load_settings

    spec = demo_credits()
    settings = load_settings()
    async with db.transaction() as session:
        keys = KeyService(session, settings)
        for entry in spec["receipt_keys"]:  # type: ignore[attr-defined]
            merchant = Principal(sub="system:demo", roles=frozenset({"merchant"}), org=entry["org"])
            await keys.register({k: v for k, v in entry["private_jwk"].items() if k != "d"}, merchant)
        rewards = RewardService(session, settings)
        for entry in spec["rewards"]:  # type: ignore[attr-defined]
            merchant = Principal(sub="system:demo", roles=frozenset({"merchant"}), org=entry["org"])
            exists = await session.scalar(select(Reward.id).where(Reward.merchant_org == entry["org"],
                                                                  Reward.title == entry["title"]))
            if exists is None:
                await rewards.create(msgspec.convert({k: v for k, v in entry.items() if k != "org"}, RewardIn),
                                     merchant)

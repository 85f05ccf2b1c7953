"""The demo's statistics data: the demo organisations' divisions (Qingdao, Yantai, Liaocheng) and
industries, two sites, a product made at one of them, and a handful of export shipments in the last
two ended quarters. Ids are derived from names, so loading it twice changes nothing. Needs the demo
products loaded first (shipments and sites point at them); what is missing is skipped."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.auth import Principal
from carbonpuhui.footprints.models import Product
from carbonpuhui.stats.api_schemas import OrganisationIn, ShipmentIn
from carbonpuhui.stats.models import ExportShipment, Site
from carbonpuhui.stats.organisations import OrganisationService
from carbonpuhui.stats.quarters import Quarter
from carbonpuhui.stats.shipments import check_item

SYSTEM = Principal(sub="system:demo", roles=frozenset({"admin"}))
_NAMESPACE = uuid.UUID("6f1c2f8e-2a51-4c55-9a57-7c1a3b0d5e21")  # fixed: demo ids are stable across loads


def demo_stats() -> dict[str, Any]:
    return json.loads(resources.files("carbonpuhui.stats").joinpath("demo_stats.json").read_bytes())


def _id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _quarter(now: datetime, offset: int) -> Quarter:
    quarter = Quarter.of(now)
    for _ in range(-offset):
        quarter = quarter.previous()
    return quarter


async def load_demo_stats(session: AsyncSession, *, now: datetime | None = None) -> dict[str, int]:
    """Add what is missing, in the caller's transaction; returns how many of each were added."""
    now = now or datetime.now(UTC)
    spec = demo_stats()
    added = {"organisations": 0, "sites": 0, "product_sites": 0, "shipments": 0}
    service = OrganisationService(session)
    for org, body in spec["organisations"].items():
        if await service.repo.get(org) is None:
            await service.put(org, msgstruct(body, OrganisationIn), SYSTEM)
            added["organisations"] += 1
    sites: dict[str, str] = {}
    for entry in spec["sites"]:
        site_id = sites[entry["key"]] = _id("site", entry["key"])
        if await session.get(Site, site_id) is None and await service.repo.get(entry["org"]) is not None:
            session.add(Site(id=site_id, org=entry["org"], name=entry["name"], division_code=entry["division_code"],
                             industry=entry["industry"], created_at=now, created_by=SYSTEM.sub))
            added["sites"] += 1
    await session.flush()
    for gtin, key in spec["product_sites"].items():
        product = await session.get(Product, gtin.zfill(14))
        site = await session.get(Site, sites[key])
        if product is not None and site is not None and site.org == product.owner_org and product.site_id is None:
            product.site_id = site.id
            added["product_sites"] += 1
    rows = []
    for index, entry in enumerate(spec["shipments"]):
        quarter = _quarter(now, int(entry["quarter_offset"]))
        # One batch per organisation and quarter, as an exporter's quarterly declaration would be.
        batch_id = _id("batch", entry["org"], str(quarter))
        shipment_id = _id("shipment", str(index), str(quarter))
        item = msgstruct({k: v for k, v in entry.items() if k not in ("org", "quarter_offset")} | {
            "quarter": str(quarter)}, ShipmentIn)
        checked, problems = check_item(item, Quarter.of(now))
        owner = await session.scalar(select(Product.owner_org).where(Product.gtin == item.gtin.zfill(14)))
        if checked is None or problems or owner != entry["org"] or await session.get(ExportShipment, shipment_id):
            continue
        rows.append({"id": shipment_id, "org": entry["org"], "quarter": checked.quarter, "gtin": checked.gtin,
                     "hs_code": checked.hs_code, "destination": checked.destination, "quantity": checked.quantity,
                     "value_cents": checked.value_cents, "batch_id": batch_id, "created_at": now,
                     "created_by": SYSTEM.sub})
    if rows:
        await session.execute(insert(ExportShipment), rows)
        added["shipments"] = len(rows)
    await session.flush()
    return added


def msgstruct(raw: dict[str, Any], kind: type[Any]) -> Any:
    return msgspec.convert(raw, kind)

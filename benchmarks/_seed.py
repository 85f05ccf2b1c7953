"""Demo-sized data written straight into PostgreSQL (COPY through asyncpg, in chunks), for benchmarks
that need more rows than the API can create in a minute.

Labelled products are cloned from a few templates the API created (a product, its inventory, its
verifier, application, label and certification events): every column is what the platform itself
wrote, only the GTIN, the ids and the names differ. People get a credit account and one earlier
purchase claim each, written as the ledger writes them (a transfer from issuance, two entries, the
cached balance), so ``carbonpuhui ledger check`` holds over them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from carbonpuhui.credits.models import SYSTEM
from carbonpuhui.credits.service import add_months, natural_id

CHUNK = 10_000
# Cloned in this order (foreign keys); rows found by the template's GTIN, events by their subject.
BY_GTIN = ("products", "inventory_lines", "product_verifiers", "label_applications", "labels")
SERIAL = {"certification_events": "id", "credit_entries": "id"}  # let the database number these


def chunks(rows: Iterator[tuple[Any, ...]], size: int = CHUNK) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def copy(conn: asyncpg.Connection, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
    count = 0
    for batch in chunks(rows):
        await conn.copy_records_to_table(table, records=batch, columns=columns)
        count += len(batch)
    return count


async def clone_labelled(dsn: str, templates: list[str], count: int, gtin_of: Callable[[int], str],
                         names_of: Callable[[int], dict[str, str]]) -> list[str]:
    """Products ``len(templates)`` .. ``count - 1`` (GTIN ``gtin_of(i)``, 14 digits), each a copy of
    template ``i % len(templates)`` (14-digit GTINs of labelled products). Returns every GTIN, the
    templates' first."""
    conn = await asyncpg.connect(dsn)
    try:
        rows: dict[str, dict[str, list[asyncpg.Record]]] = {}
        columns: dict[str, list[str]] = {}
        for table in BY_GTIN:
            found = await conn.fetch(f"SELECT * FROM {table} WHERE gtin = ANY($1::text[])", templates)
            if not found:
                raise SystemExit(f"the templates have no rows in {table}")
            columns[table] = list(found[0].keys())
            for row in found:
                rows.setdefault(row["gtin"], {}).setdefault(table, []).append(row)
        subjects = {r["id"]: t for t in templates for r in rows[t]["label_applications"] + rows[t]["labels"]}
        events = await conn.fetch("SELECT * FROM certification_events WHERE subject_id = ANY($1::text[])",
                                  list(subjects))
        columns["certification_events"] = [c for c in events[0].keys() if c != SERIAL["certification_events"]]
        for row in events:
            rows[subjects[row["subject_id"]]].setdefault("certification_events", []).append(row)
        json_columns = {(r["table_name"], r["column_name"]) for r in await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns WHERE data_type IN ('json', 'jsonb')")}

        # Per template row, the positions that change in a clone: ids (swapped) and JSON text naming them.
        recipes: dict[str, list[tuple[str, tuple[Any, ...], list[tuple[int, bool]]]]] = {}
        for template in templates:
            olds = {template} | {r["id"] for t in ("label_applications", "labels") for r in rows[template][t]}
            recipe = recipes[template] = []
            for table in (*BY_GTIN, "certification_events"):
                for row in rows[template].get(table, ()):
                    values = tuple(row[name] for name in columns[table])
                    changes = [(k, False) for k, v in enumerate(values) if isinstance(v, str) and v in olds]
                    changes += [(k, True) for k, (name, v) in enumerate(zip(columns[table], values, strict=True))
                                if (table, name) in json_columns and isinstance(v, str) and v not in olds
                                and any(old in v for old in olds)]
                    if table == "products":
                        changes.append((columns[table].index("names"), None))  # type: ignore[arg-type]
                    recipe.append((table, values, changes))

        # Ids of the clones: one random UUID's first 23 characters, then the clone's number and the
        # row's (uuid4() per row would take a tenth of the seeding).
        prefix = str(uuid.uuid4())[:23]
        tables = (*BY_GTIN, "certification_events")

        def build(first: int, last: int) -> dict[str, list[tuple[Any, ...]]]:
            """The rows of clones ``first`` .. ``last - 1``, per table."""
            out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in tables}
            for i in range(first, last):
                template = templates[i % len(templates)]
                new = {template: gtin_of(i)}
                ids = [r["id"] for t in ("label_applications", "labels") for r in rows[template][t]]
                for j, old_id in enumerate(ids):
                    new[old_id] = f"{prefix}-{i:08x}{j:04x}"
                for table, values, changes in recipes[template]:
                    row_ = list(values)
                    for k, is_json in changes:
                        if is_json is None:
                            row_[k] = json.dumps(names_of(i), ensure_ascii=False)
                        elif is_json:
                            text = row_[k]
                            for old, replacement in new.items():
                                text = text.replace(old, replacement)
                            row_[k] = text
                        else:
                            row_[k] = new[row_[k]]
                    out[table].append(tuple(row_))
            return out

        # The clones' foreign keys hold by construction: as a superuser, skip the trigger that looks
        # each one up again, row by row, and copy parents and children on two connections at once.
        # Otherwise one connection, parents first.
        other = await asyncpg.connect(dsn)
        try:
            try:
                for c in (conn, other):
                    await c.execute("SET session_replication_role = replica")
                lanes = [(conn, BY_GTIN[:3]), (other, (*BY_GTIN[3:], "certification_events"))]
            except asyncpg.InsufficientPrivilegeError:
                lanes = [(conn, tables)]

            async def lane(c: asyncpg.Connection, names: tuple[str, ...], batch: dict[str, list[Any]]) -> None:
                for table in names:
                    if batch[table]:
                        await c.copy_records_to_table(table, records=batch[table], columns=columns[table])

            async with conn.transaction(), other.transaction():
                def chunk(first: int) -> asyncio.Task[dict[str, list[tuple[Any, ...]]]]:
                    return asyncio.create_task(asyncio.to_thread(build, first, min(count, first + CHUNK)))

                starts = list(range(len(templates), count, CHUNK))
                pending = chunk(starts[0]) if starts else None
                for n in range(len(starts)):
                    assert pending is not None
                    batch = await pending
                    # The next chunk is built while this one is copied (the copying waits on PostgreSQL).
                    pending = chunk(starts[n + 1]) if n + 1 < len(starts) else None
                    await asyncio.gather(*(lane(c, names, batch) for c, names in lanes))
            for c in (conn, other):
                await c.execute("RESET session_replication_role")
        finally:
            await other.close()
        for table in (*BY_GTIN, "certification_events"):
            await conn.execute(f"ANALYZE {table}")  # the planner sees the real sizes from the first query
    finally:
        await conn.close()
    return templates + [gtin_of(i) for i in range(len(templates), count)]


async def people(dsn: str, subs: list[str], issuer: str, gtin: str, grams: Callable[[int], int],
                 expiry_months: int = 24) -> int:
    """A person's account for each ``sub``, with one purchase claim of ``grams(k)`` claimed ten days
    ago (receipt from ``issuer``, one item ``gtin``). Returns the number of claims written."""
    now = datetime.now(UTC)
    at = now - timedelta(days=10)
    expires = add_months(at, expiry_months)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO credit_accounts (id, kind, owner, balance_g, created_at) VALUES ($1, $1, NULL, 0, $2) "
                "ON CONFLICT DO NOTHING", [(kind, now) for kind in SYSTEM])
            accounts, transfers, entries, claims = [], [], [], []
            for k, sub in enumerate(subs):
                account, transfer, claim, jti, g = (str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()),
                                                    uuid.uuid4().hex, grams(k))
                accounts.append((account, "person", sub, g, at - timedelta(days=1)))
                transfers.append((transfer, "purchase", claim, at))
                entries.append((transfer, "issuance", -g, at, None))
                entries.append((transfer, account, g, at, expires))
                claims.append((claim, "purchase", issuer, natural_id(jti), account, transfer, g, at, json.dumps({
                    "receipt_id": jti, "receipt_issued_at": at.isoformat(),
                    "items": [{"gtin": gtin, "qty": 1, "credited_g": g, "reason": None}]})))
            await copy(conn, "credit_accounts", ["id", "kind", "owner", "balance_g", "created_at"], iter(accounts))
            await copy(conn, "credit_transfers", ["id", "kind", "reference", "created_at"], iter(transfers))
            await copy(conn, "credit_entries", ["transfer_id", "account_id", "amount_g", "created_at", "expires_at"],
                       iter(entries))
            await copy(conn, "credit_claims", ["id", "kind", "issuer", "jti", "account_id", "transfer_id",
                                               "credited_g", "claimed_at", "detail"], iter(claims))
        for table in ("credit_accounts", "credit_transfers", "credit_entries", "credit_claims"):
            await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()
    return len(claims)

"""``Idempotency-Key`` on credit-moving POSTs: the same key and body get the first response back,
the same key with another body is a 422.

The record is written in the same transaction as the credit it answers for, keyed by (caller,
route, key) under a primary key: a concurrent retry waits on the first request's row, then reads
its response; a first attempt that fails leaves no record, so the retry runs again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
from litestar import Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.credits.ledger import Ledger, utcnow
from carbonpuhui.credits.models import IdempotencyRecord
from carbonpuhui.errors import FieldError, UnprocessableError
from carbonpuhui.i18n import N_

HEADER = "Idempotency-Key"
KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as the IETF draft's examples use
REPLAYED = "Idempotent-Replayed"


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value.is_finite() else str(value)  # 2.50 == 2.5
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.utcoffset() is not None else value.isoformat()
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def body_hash(data: msgspec.Struct) -> str:
    # The decoded body, canonical: a retry that writes the same values differently (2.5 as "2.50",
    # Z as +08:00 local time) still matches.
    builtins = msgspec.to_builtins(data, builtin_types=(Decimal, datetime))
    return hashlib.sha256(msgspec.json.encode(_canonical(builtins), order="sorted")).hexdigest()


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not KEY.match(key):
        raise UnprocessableError(N_("Some fields are invalid."), reason="invalid_idempotency_key", errors=[
            FieldError(field=HEADER, message=N_("An Idempotency-Key is 1 to 255 visible ASCII characters."))])
    return key


async def idempotent(session: AsyncSession, *, owner: str, route: str, key: str | None, data: msgspec.Struct,
                     status: int, run: Callable[[], Awaitable[msgspec.Struct]]) -> Response[Any]:
    """Run a credit-moving action at most once per key; always opens the ledger first."""
    await Ledger(session).open()
    key = check_key(key)
    if key is None:
        return Response(await run(), status_code=status)
    digest = body_hash(data)
    table = IdempotencyRecord.__table__
    inserted = await session.execute(
        Ledger(session)._insert(IdempotencyRecord).values(  # type: ignore[attr-defined]  # noqa: SLF001
            owner=owner, route=route, key=key, body_hash=digest, status=0, response=b"", created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["owner", "route", "key"]).returning(table.c.key))
    if inserted.first() is None:
        record = await session.scalar(select(IdempotencyRecord).where(
            IdempotencyRecord.owner == owner, IdempotencyRecord.route == route, IdempotencyRecord.key == key))
        assert record is not None
        if record.body_hash != digest:
            raise UnprocessableError(N_("This Idempotency-Key was used with a different request body."),
                                     reason="idempotency_key_reused")
        return Response(content=record.response, status_code=record.status, media_type="application/json",
                        headers={REPLAYED: "true"})
    result = await run()
    encoded = msgspec.json.encode(result)
    await session.execute(update(IdempotencyRecord).where(
        IdempotencyRecord.owner == owner, IdempotencyRecord.route == route, IdempotencyRecord.key == key,
    ).values(status=status, response=encoded))
    return Response(content=encoded, status_code=status, media_type="application/json")

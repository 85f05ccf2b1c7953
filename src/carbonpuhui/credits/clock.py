"""The credits' one clock. Everything in the ledger asks ``clock.now()``, so tests (and a replay)
can move time for expiry, receipt ages and daily caps in one place."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)

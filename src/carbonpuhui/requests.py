"""The platform's request class."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import SerializationException
from litestar.types import Empty

_EXACT_JSON = msgspec.json.Decoder(float_hook=Decimal)


class ExactDecimalRequest(Request[Any, Any, Any]):
    """Decodes JSON numbers as exact decimals: Litestar's default decoder goes through float, which
    turns 0.123456789012345678 into 0.12345678901234568 before msgspec sees the ``Decimal`` field."""

    async def json(self) -> Any:
        if self._json is Empty:
            try:
                self._json = _EXACT_JSON.decode(await self.body() or b"null")
            except (msgspec.DecodeError, RecursionError, InvalidOperation, ValueError) as exc:
                # Malformed, nested beyond reason, or a number no decimal can hold: a 400.
                raise SerializationException(str(exc) or type(exc).__name__) from exc
        return self._json

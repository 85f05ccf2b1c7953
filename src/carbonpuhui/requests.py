"""The platform's request class."""

from __future__ import annotations

from decimal import Decimal
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
            except msgspec.DecodeError as exc:
                raise SerializationException(str(exc)) from exc
        return self._json

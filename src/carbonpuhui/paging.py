"""Opaque list cursors: the last key of a page, base64url without padding."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime

from carbonpuhui.errors import BadRequestError
from carbonpuhui.i18n import N_


def encode_cursor(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")


def read_cursor(cursor: str) -> str | None:
    """The key a cursor carries, or None if it is not one we could have issued."""
    try:
        # validate=True: urlsafe_b64decode drops unknown characters, so "!!!" would restart at page 1.
        key = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    # We never issue an empty key or a NUL (PostgreSQL would refuse it with a 500).
    return key if key and "\x00" not in key else None


def decode_cursor(cursor: str | None, valid: Callable[[str], bool] = lambda _key: True) -> str | None:
    """The key after which a page starts (None: the first page); a bad cursor is a 400."""
    if not cursor:
        return None
    key = read_cursor(cursor)
    if key is None or not valid(key):
        raise BadRequestError(N_("The cursor is not valid."), reason="invalid_cursor")
    return key


def encode_time_cursor(moment: datetime, ident: str) -> str:
    """A cursor for lists ordered by a time, then an id."""
    return encode_cursor(f"{moment.isoformat()}|{ident}")


def decode_time_cursor(cursor: str | None, valid_id: Callable[[str], bool],
                       valid_moment: Callable[[datetime], bool] = lambda _moment: True) -> tuple[datetime, str] | None:
    """The (time, id) a page starts after. Times we issue are aware and convertible to UTC; a naive
    or out-of-calendar one (or a bad id) would fail in the query, so it is a 400 here."""

    def parse(key: str) -> tuple[datetime, str] | None:
        stamp, sep, ident = key.partition("|")
        try:
            moment = datetime.fromisoformat(stamp)
            moment.astimezone(UTC)
        except (ValueError, OverflowError):
            return None
        ok = sep and moment.utcoffset() is not None and valid_id(ident) and valid_moment(moment)
        return (moment, ident) if ok else None

    key = decode_cursor(cursor, lambda k: parse(k) is not None)
    return None if key is None else parse(key)

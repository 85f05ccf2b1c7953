"""Identifiers as the platform issues them."""

from __future__ import annotations

import uuid


def is_uuid(text: str) -> bool:
    """A UUID in its 36-character form (what every id of ours is)."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36

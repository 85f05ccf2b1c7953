"""Placeholder: replaced by the module's owner."""

from __future__ import annotations

HANDLERS: list[object] = []

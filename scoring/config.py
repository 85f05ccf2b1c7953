"""The one place for Numba flags, and start-up warm-up of the compiled kernels."""

from __future__ import annotations

import os
from collections.abc import Callable

# cache=True writes compiled code beside the sources (or NUMBA_CACHE_DIR), so later processes load it.
NUMBA_OPTIONS: dict[str, object] = {"cache": True, "nogil": True, "fastmath": False}
JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")

_WARMERS: list[Callable[[], None]] = []


def register_warmer(fn: Callable[[], None]) -> Callable[[], None]:
    """Kernels register a tiny call here; ``warm_up`` runs them all once at start-up."""
    _WARMERS.append(fn)
    return fn


def warm_up() -> int:
    for fn in _WARMERS:
        fn()
    return len(_WARMERS)

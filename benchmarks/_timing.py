"""Timing shared by the benchmark scripts (run as ``python benchmarks/x.py``: this folder is on the path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def times(fn: Callable[..., Any], *args: Any, repeat: int) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls of ``fn(*args)``."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        out.append(time.perf_counter() - start)
    return out


def best(fn: Callable[..., Any], *args: Any, repeat: int) -> float:
    """The fastest of ``repeat`` calls: the least disturbed by whatever else the machine is doing."""
    return min(times(fn, *args, repeat=repeat))

"""The one place for Numba flags, and start-up warm-up of the compiled kernels."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# cache=True writes compiled code beside the sources (or NUMBA_CACHE_DIR), so later processes load it.
NUMBA_OPTIONS: dict[str, object] = {"cache": True, "nogil": True, "fastmath": False}
JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")

_WARMERS: list[Callable[[], None]] = []
_SERIAL = threading.Lock()


@contextmanager
def parallel_section() -> Iterator[None]:
    """Around a ``parallel=True`` kernel launch. Requests run kernels from several threads at once;
    Numba's ``workqueue`` threading layer aborts the process on concurrent launches (``omp`` and
    ``tbb`` do not), so launches are serialised there, and only there."""
    if JIT_DISABLED:
        yield
        return
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet (warm-up runs one, single-threaded)
        layer = None
    if layer in ("omp", "tbb"):
        yield
        return
    with _SERIAL:
        yield


def register_warmer(fn: Callable[[], None]) -> Callable[[], None]:
    """Kernels register a tiny call here; ``warm_up`` runs them all once at start-up."""
    _WARMERS.append(fn)
    return fn


def warm_up() -> int:
    for fn in _WARMERS:
        fn()
    return len(_WARMERS)

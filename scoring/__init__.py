"""Pure compute for carbonpuhui: NumPy + Numba kernels. Imports nothing of the web or the database.

Public functions validate and convert their input, then call private ``_kernel`` functions.
The kernels arrive with the footprint, label and procurement issues; ``warm_up`` compiles
whatever kernels exist so that no request ever waits for compilation.
"""

from __future__ import annotations

from scoring.config import NUMBA_OPTIONS, warm_up

__all__ = ["NUMBA_OPTIONS", "warm_up"]

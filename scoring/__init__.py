"""Pure compute for carbonpuhui: NumPy + Numba kernels. Imports nothing of the web or the database.

Public functions validate and convert their input, then call private ``_kernel`` functions.
``uncertainty`` samples footprints by Monte Carlo; ``grading`` regrades labels against
category thresholds; ``ranking`` ranks procurement bids under uncertainty. ``warm_up`` compiles
whatever kernels exist so that no request ever waits for compilation.
"""

from __future__ import annotations

from scoring.config import NUMBA_OPTIONS, warm_up
from scoring.grading import grade_values
from scoring.ranking import first_rank_probability, pairwise_winning, rank_acceptability
from scoring.uncertainty import Distribution, Line, Summary, sample_footprint, sample_lines, summarise

__all__ = ["NUMBA_OPTIONS", "Distribution", "Line", "Summary", "first_rank_probability", "grade_values",
           "pairwise_winning", "rank_acceptability", "sample_footprint", "sample_lines", "summarise", "warm_up"]

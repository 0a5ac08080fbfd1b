"""Seeds and yardsticks from the classical allocators, as genomes of a run's space.

:func:`genetic_sizer.allocators.classical.fit_allocations` fits them on the window with the space's bounds; here each
is checked against the space (bounds, cardinality, minimum positions, groups): an allocation that breaks any of them
is left out with the reason, never clipped or rescaled.
"""

from __future__ import annotations

import numpy as np

from genetic_sizer.allocators.classical import CLASSICAL, fit_allocations
from genetic_sizer.data.prices import Prices
from genetic_sizer.evolution.space import GenomeSpace

__all__ = ["classical_allocations"]


def classical_allocations(prices: Prices, space: GenomeSpace) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Fit the classical allocations on ``prices`` and keep those that are valid genomes of ``space``.

    Returns
    -------
    allocations : dict name -> weights (n_assets,), each a valid genome of ``space``
    skipped : dict name -> why it was left out
    """
    fitted, failed = fit_allocations(prices, space.lower, space.upper, space.min_position)
    allocations, skipped = {}, {}
    for name in CLASSICAL:  # the allocators' order, in both results
        if name in failed:
            skipped[name] = failed[name]
        elif (why := space.violation(fitted[name])) is not None:
            skipped[name] = why
        else:
            allocations[name] = space.validate(fitted[name], name)
    return allocations, skipped

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


def classical_allocations(
    prices: Prices, space: GenomeSpace, settings=None, notes: dict | None = None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Fit the classical allocations on ``prices`` and keep those that are valid genomes of ``space``.

    ``settings`` is the run's ``allocators:`` section (:class:`~genetic_sizer.config.AllocatorsConfig`, or a
    :class:`~genetic_sizer.config.RunConfig` holding it; None: its defaults: equal risk budgets, no views, no
    market-cap file); ``notes``, when given, is filled with how the toolkit's allocators were fitted, by name.

    Returns
    -------
    allocations : dict name -> weights (n_assets,), each a valid genome of ``space``
    skipped : dict name -> why it was left out
    """
    settings = getattr(settings, "allocators", settings)
    fitted, failed = fit_allocations(
        prices, space.lower, space.upper, space.min_position, settings=settings, notes=notes
    )
    allocations, skipped = {}, {}
    for name in CLASSICAL:  # the allocators' order, in both results
        if name in failed:
            skipped[name] = failed[name]
        elif (why := space.violation(fitted[name])) is not None:
            skipped[name] = why
        else:
            allocations[name] = space.validate(fitted[name], name)
    return allocations, skipped

"""Variation of a whole offspring array, and the population's diversity.

:func:`vary_population` varies a whole offspring array at once, one random stream per row, through the compiled
port of the genome operators in :mod:`genetic_sizer.evolution.vary_nb` (``engine="numba"``, the default) or through
the Python operators of :mod:`genetic_sizer.evolution.operators` (``engine="python"``, the reference): both draw the
same numbers and do the same floating-point operations in the same order, so they give the same children. Numba is
imported when variation runs, not when this module is imported.

:func:`diversity` is the mean pairwise total-variation distance of a population.
"""

from __future__ import annotations

import math

import numpy as np

from genetic_sizer.errors import GenomeError
from genetic_sizer.evolution.operators import _child, mutate
from genetic_sizer.evolution.space import GenomeSpace

__all__ = ["diversity", "vary_population"]

VARY_ENGINES = ("numba", "python")
"""Engines of :func:`vary_population`: the compiled kernel (:mod:`genetic_sizer.evolution.vary_nb`) or the Python
operators (:mod:`genetic_sizer.evolution.operators`)."""


def vary_population(
    space: GenomeSpace,
    weights: np.ndarray,
    cross: np.ndarray,
    mutating: np.ndarray,
    seeds: np.ndarray,
    *,
    alpha: float = 0.5,
    sigma: float = 0.05,
    shift_sigma: float = 0.1,
    p_shift: float = 0.6,
    p_transfer: float = 0.2,
    p_flip: float = 0.1,
    p_support: float = 0.1,
    engine: str = "numba",
    parallel: bool = False,
) -> np.ndarray:
    """Variation of a whole offspring array at once: the children of ``weights`` (n, n_assets), a new array.

    Rows ``2i`` and ``2i + 1`` cross over (:func:`~genetic_sizer.evolution.operators.line_crossover`'s two children)
    where ``cross[i]`` (``cross`` has ``n // 2`` entries; an odd last row never crosses); then every row ``j`` with
    ``mutating[j]`` mutates (:func:`~genetic_sizer.evolution.operators.mutate`). Row ``j`` draws all its randomness
    (its crossover child, then its mutation) from its own stream seeded by ``seeds[j]`` (uint64), so a child depends
    only on its parents and its seed: the result is the same however the rows are split or ordered for computing.
    Rows that neither cross nor mutate are copied.

    Parameters
    ----------
    space : GenomeSpace
        The space of the parents and children.
    weights : array_like of float64, shape (n, n_assets)
        The parents, valid genomes of ``space``.
    cross : array_like of bool, shape (n // 2,)
        Which pairs of rows cross over.
    mutating : array_like of bool, shape (n,)
        Which rows mutate.
    seeds : array_like of uint64, shape (n,)
        One random-stream seed per row (:class:`~genetic_sizer.evolution.vary_nb.RowStream`: xoshiro256** seeded by
        splitmix64).
    alpha, sigma, shift_sigma, p_shift, p_transfer, p_flip, p_support : float
        :func:`~genetic_sizer.evolution.operators.line_crossover`'s ``alpha`` and
        :func:`~genetic_sizer.evolution.operators.mutate`'s parameters.
    engine : {"numba", "python"}
        ``"numba"`` (the default): the compiled kernel :func:`genetic_sizer.evolution.vary_nb.vary_kernel`.
        ``"python"``: the Python operators of :mod:`genetic_sizer.evolution.operators` on
        :class:`~genetic_sizer.evolution.vary_nb.RowStream` streams, one row after another; the reference the kernel
        is tested against (same draws, same floating-point operations: the same children).
    parallel : bool
        Compiled engine only: rows on the Numba threads (True) or on this one (False, the default: variation is a
        small part of a generation, and a parallel region waits for its slowest thread on a shared machine; see
        :func:`~genetic_sizer.evolution.vary_nb.vary_kernel`). The children are the same either way.

    Returns
    -------
    ndarray of float64, shape (n, n_assets)
        The children, a new array.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != space.n_assets:
        raise GenomeError(
            f"vary_population: weights must be (n, {space.n_assets}) for this space's {space.n_assets} assets, "
            f"got shape {w.shape}"
        )
    if not np.isfinite(w).all():
        raise GenomeError("vary_population: weights contain NaN or infinity")
    n = w.shape[0]
    cross = np.asarray(cross, dtype=bool)
    mutating = np.asarray(mutating, dtype=bool)
    raw_seeds = np.asarray(seeds)
    if raw_seeds.dtype.kind not in "ui" or (raw_seeds.dtype.kind == "i" and (raw_seeds < 0).any()):
        raise GenomeError(
            f"vary_population: seeds must be non-negative integers, got {raw_seeds.dtype} {raw_seeds[:3]}"
        )
    seeds = raw_seeds.astype(np.uint64)
    if cross.shape != (n // 2,) or mutating.shape != (n,) or seeds.shape != (n,):
        raise GenomeError(
            f"vary_population: weights (n, n_assets), cross (n // 2,), mutating and seeds (n,); got {w.shape}, "
            f"{cross.shape}, {mutating.shape}, {seeds.shape}"
        )
    for name, x, hi in (
        ("alpha", alpha, np.inf),
        ("sigma", sigma, np.inf),
        ("shift_sigma", shift_sigma, np.inf),
        ("p_shift", p_shift, 1.0),
        ("p_transfer", p_transfer, 1.0),
        ("p_flip", p_flip, 1.0),
        ("p_support", p_support, 1.0),
    ):
        if not (math.isfinite(x) and 0.0 <= x <= hi):
            raise GenomeError(f"vary_population: {name} must be a finite number in [0, {hi:g}], got {x!r}")
    if engine not in VARY_ENGINES:
        raise ValueError(f"vary_population: engine must be one of {list(VARY_ENGINES)}, got {engine!r}")
    from genetic_sizer.evolution import (
        vary_nb,  # numba is imported when variation runs, not by every user of this module
    )

    if engine == "numba":
        out, err = vary_nb.vary_kernel(
            np.ascontiguousarray(w),
            np.ascontiguousarray(cross),
            np.ascontiguousarray(mutating),
            np.ascontiguousarray(seeds),
            space.kernel_space,
            float(alpha),
            float(sigma),
            float(shift_sigma),
            float(p_shift),
            float(p_transfer),
            float(p_flip),
            float(p_support),
            parallel,
        )
        if err.any():  # pragma: no cover - a bug, not input
            raise AssertionError(f"line search left a held box in row {int(np.flatnonzero(err)[0])}")
        return out
    out = w.copy()
    for j in range(n):
        rng = vary_nb.RowStream(int(seeds[j]))
        pair = j // 2
        if pair < cross.shape[0] and cross[pair]:
            a, b = (w[j], w[j + 1]) if j % 2 == 0 else (w[j], w[j - 1])
            out[j] = _child(space, a, b, alpha, rng)
        if mutating[j]:
            out[j] = mutate(
                space,
                out[j],
                rng,
                sigma=sigma,
                shift_sigma=shift_sigma,
                p_shift=p_shift,
                p_transfer=p_transfer,
                p_flip=p_flip,
                p_support=p_support,
            )
    return out


def diversity(weights: np.ndarray) -> float:
    """Mean pairwise total-variation distance ``0.5 * ||w_i - w_j||_1`` over a population (0: all equal,
    1: disjoint long-only portfolios), in O(n log n) per asset."""
    w = np.sort(np.asarray(weights, dtype=np.float64), axis=0)
    n = w.shape[0]
    if n < 2:
        return 0.0
    k = np.arange(1, n, dtype=np.float64)
    # over sorted x: sum_{i<j} (x_j - x_i) = sum_k (x_k - x_{k-1}) k (n - k), a sum of non-negative terms
    total = float(((w[1:] - w[:-1]) * (k * (n - k))[:, None]).sum())
    return 0.5 * total / (n * (n - 1) / 2.0)

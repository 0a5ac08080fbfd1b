"""How batches of genomes are evaluated: the map functions the evolution loop gets injected.

A map function takes the evaluator and a list of batches (each an array of genomes) and returns the list
of fitness arrays in the same order. :func:`serial_map` is the default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["MapFunction", "serial_map", "split_batches"]

MapFunction = Callable[[Callable[[np.ndarray], np.ndarray], Sequence[np.ndarray]], list]


def serial_map(fn, batches):
    """Evaluate the batches one after the other in this process."""
    return [fn(b) for b in batches]


def split_batches(weights: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split (n, n_assets) into consecutive batches of at most ``batch_size`` rows (0: one batch)."""
    n = len(weights)
    if n == 0:
        return []
    if batch_size <= 0 or batch_size >= n:
        return [weights]
    return [weights[i : i + batch_size] for i in range(0, n, batch_size)]


def make_map(parallel_config):
    """The map function a run's ``parallel`` section asks for."""
    if parallel_config.backend == "serial":
        return serial_map
    raise ValueError(f"unknown parallel backend {parallel_config.backend!r}")  # pragma: no cover - config checks

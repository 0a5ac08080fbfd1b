"""The state an evolution checkpoints (:class:`Checkpoint`) and where it goes (:class:`CheckpointStore`).

The loop builds a :class:`Checkpoint` after a generation and hands it to the store it was given; it never opens a
file. :class:`genetic_sizer.runs.rundir.RunDir` is the store of a run directory (JSON + ``.npz``, validated on read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

__all__ = ["Checkpoint", "CheckpointStore"]


@dataclass
class Checkpoint:
    """Everything an evolution needs to continue exactly where it stopped.

    ``archive`` / ``archive_fitness`` are the hall of fame (or Pareto front) in DEAP's order, best first;
    ``crowding`` the NSGA-II crowding distance of each population member (NaN when none was assigned);
    ``np_rng`` the operators' ``numpy`` bit generator state (``Generator.bit_generator.state``); ``py_random``
    DEAP's ``random.getstate()``; ``seeds`` is empty or ``{"used": [names], "skipped": {name: reason},
    "allocations": {name: weights}}``; ``trials`` is :meth:`genetic_sizer.evolution.trials.Trials.state` (scalars,
    arrays; a trial's row is its weights followed by its genes). ``population_genes`` / ``archive_genes`` (n, n_genes)
    are the strategy genes of the population and the archive (zero columns for a run without genes).
    """

    config_sha256: str
    data_sha256: str
    generation: int
    evaluations: int
    elapsed: float
    population: np.ndarray
    fitness: np.ndarray
    crowding: np.ndarray
    archive: np.ndarray
    archive_fitness: np.ndarray
    logbook: list[dict]
    np_rng: dict
    py_random: tuple
    seeds: dict = field(default_factory=dict)
    trials: tuple[dict, dict] = field(default_factory=lambda: ({}, {}))
    population_genes: np.ndarray | None = None
    archive_genes: np.ndarray | None = None

    @property
    def n_genes(self) -> int:
        return 0 if self.population_genes is None else int(np.shape(self.population_genes)[1])


class CheckpointStore(Protocol):
    """Where an evolution writes its checkpoints and logbook (and a resumed one reads its checkpoint)."""

    def write_checkpoint(self, cp: Checkpoint) -> object: ...

    def write_logbook(self, rows: list[dict]) -> object: ...

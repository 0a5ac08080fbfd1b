"""The state an evolution checkpoints (:class:`Checkpoint`) and where it goes (:class:`CheckpointStore`).

The loop builds a :class:`Checkpoint` after a generation and hands it to the store it was given; it never opens a
file. :class:`genetic_sizer.runs.rundir.RunDir` is the store of a run directory (JSON + ``.npz``, validated on read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from genetic_sizer.errors import ConfigError

__all__ = ["Checkpoint", "CheckpointStore", "checkpoint_problems"]


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


def checkpoint_problems(cp: Checkpoint, run) -> list[str]:
    """Why ``cp`` cannot continue ``run`` (an :class:`~genetic_sizer.evolution.loop.Evolution`): a ConfigError when
    the configuration or the data differ from the interrupted run's, else the list of what does not fit (empty:
    it fits)."""
    if cp.config_sha256 != run.config.sha256():
        raise ConfigError(
            "cannot resume: the configuration differs from the interrupted run's "
            f"(config sha256 {run.config.sha256()[:12]} vs {cp.config_sha256[:12]})"
        )
    if cp.data_sha256 != run.prices.sha256():
        raise ConfigError("cannot resume: the price data differs from the interrupted run's (close sha256)")
    ev = run.config.evolution
    n, n_assets = cp.population.shape
    problems = []
    if n != ev.population:
        problems.append(f"population of {n}, the config says {ev.population}")
    if n_assets != run.space.n_assets:
        problems.append(f"{n_assets} assets, the data has {run.space.n_assets}")
    if cp.fitness.shape[1] != run.n_obj:
        problems.append(f"{cp.fitness.shape[1]} objectives, the config has {run.n_obj}")
    if len(cp.archive) == 0:
        problems.append("an empty hall of fame")
    if (too_big := run.strategy.archive_problem(len(cp.archive))) is not None:
        problems.append(too_big)
    if cp.generation > ev.generations:
        problems.append(f"generation {cp.generation}, the config runs {ev.generations}")
    if cp.n_genes != run.n_genes:
        problems.append(f"{cp.n_genes} strategy genes, the config evolves {run.n_genes}")
    return problems

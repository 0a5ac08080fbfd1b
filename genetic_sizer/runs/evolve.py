"""An evolution in a run directory: :func:`evolve` runs (or resumes) :class:`~genetic_sizer.evolution.loop.Evolution`
with a :class:`~genetic_sizer.runs.rundir.RunDir` as its checkpoint store; :func:`load_result` reads a run's result
back from its checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from genetic_sizer.config import RunConfig
from genetic_sizer.data.prices import Prices
from genetic_sizer.evolution.loop import Evolution, restore_result
from genetic_sizer.evolution.result import EvolutionResult, Generation
from genetic_sizer.runs.rundir import RunDir

__all__ = ["evolve", "load_result"]


def load_result(config: RunConfig, prices: Prices, run_dir: str | Path | RunDir) -> tuple[EvolutionResult, int]:
    """The result held by a run directory's checkpoint, and the generation it reached."""
    rd = RunDir(run_dir)
    return restore_result(config, prices, rd.read_checkpoint(), rd.checkpoint_path)


def evolve(
    config: RunConfig,
    prices: Prices,
    run_dir: str | Path | RunDir,
    *,
    map_fn: Callable | None = None,
    resume: bool = False,
    on_generation: Callable[[Generation], None] | None = None,
) -> EvolutionResult:
    """Run (or resume) an evolution; checkpoints and the logbook go to ``run_dir`` (after the first generation, every
    ``run.checkpoint_every`` seconds, after the last one, and when interrupted).

    Parameters
    ----------
    config : RunConfig
    prices : Prices
        The data the genomes are evaluated on (already loaded and windowed).
    run_dir : path or RunDir
        The run directory. A new run needs a path that does not exist, an empty directory, or one holding
        only this config's ``config.yaml`` (see :meth:`RunDir.check_new`); it is created, with
        ``config.yaml``, once the config has been validated against the data, so a run that fails
        validation leaves nothing behind.
    map_fn : callable, optional
        ``map_fn(evaluator, batches) -> list of fitness arrays``; default
        :func:`~genetic_sizer.evolution.loop.serial_map`. A map with a ``start()`` method
        (:class:`~genetic_sizer.cluster.raymap.RayMap`) is started first; the caller closes it.
    resume : bool
        Continue from the checkpoint in ``run_dir`` (same config and data required). A run whose generations
        are all done returns its result without evolving further.
    on_generation : callable, optional
        Called with a :class:`Generation` after every generation (progress display), after that generation's
        checkpoint when one is due.

    Raises
    ------
    ConfigError
        The config does not fit the data; :class:`~genetic_sizer.errors.RunDirError` the directory cannot be
        used; :class:`~genetic_sizer.errors.CheckpointError` the checkpoint is missing, damaged or another run's.
    """
    rd = RunDir(run_dir)
    run = Evolution(config, prices, map_fn, on_generation)  # validates before anything is written
    if resume:
        run.restore(rd.read_checkpoint(), rd.checkpoint_path)
    else:
        RunDir.check_new(rd, config)
    start = getattr(map_fn, "start", None)
    if start is not None:  # e.g. a RayMap: connect before the first generation so batches fit its workers
        start()
    if resume:
        rd.write_logbook([dict(r) for r in run.logbook])  # derived from the checkpoint: never a generation behind
    else:
        rd = RunDir.create(rd, config)
    return run.run(rd)

"""The evolution loop: DEAP populations of weight genomes, single objective or NSGA-II, resumable.

Single objective (``objective: sharpe``)::

    population <- seeds (optional classical allocations) + random valid genomes; evaluate
    each generation:
        offspring <- tournament selection (DEAP selTournament) of population - elite
        pairs of offspring cross over (line crossover) with crossover_prob; each mutates with mutation_prob
        (a shift toward/away from one asset, a transfer between two, an add / drop / swap of an asset, a
        Gaussian step or, long/short, a flip; every child satisfies the bounds and constraints)
        evaluate the changed offspring (one map call over batches)
        population <- the elite best of the old population + offspring
        hall of fame, logbook, checkpoint

Several objectives (``objective: [sharpe, max_drawdown, turnover]``) run NSGA-II as in DEAP's example:
``selTournamentDCD`` for parents, the same variation, ``selNSGA2`` over parents + offspring; the hall of
fame is the Pareto front of every genome evaluated. The champion of a multi-objective run is the *compromise*
member of that front: each objective is min-max scaled over the front (1 = best on the front), and the member
closest (Euclidean) to the ideal point (all ones) wins; ties go to the better first objective.
``export --rank K`` counts in that order.

Determinism: operators draw from one ``numpy.random.Generator`` and DEAP's selections from a private
``random`` state (swapped in around each DEAP call), both seeded from ``evolution.seed`` and saved in the
checkpoint written after every generation; evaluation is a pure function of the genome. A resumed run
therefore ends with exactly the champion and logbook of the uninterrupted one.
"""

from __future__ import annotations

import csv
import math
import os
import pickle
import random
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from deap import base, creator, tools

from genetic_sizer import genome as G
from genetic_sizer.config import RunConfig
from genetic_sizer.data import Prices
from genetic_sizer.errors import ConfigError
from genetic_sizer.fitness import Evaluator
from genetic_sizer.parallel import serial_map, split_batches

__all__ = ["EvolutionResult", "Generation", "evolve", "load_result", "rank_members"]

CHECKPOINT = "checkpoint.pkl"
LOGBOOK = "logbook.csv"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class Generation:
    """What the progress callback receives after each generation."""

    gen: int
    generations: int
    record: dict
    elapsed: float
    evals_per_second: float


@dataclass
class EvolutionResult:
    """The end state of a run.

    ``members`` are the hall of fame (single objective, best first) or the Pareto front (compromise order);
    ``members_fitness`` their objective values, ``logbook`` one dict per generation.
    """

    config: RunConfig
    space: G.GenomeSpace
    population: np.ndarray
    fitness: np.ndarray
    members: np.ndarray
    members_fitness: np.ndarray
    logbook: list[dict]
    evaluations: int
    seeds: dict = field(default_factory=dict)

    @property
    def champion(self) -> np.ndarray:
        return self.members[0]


def _deap_classes(maximize: tuple[bool, ...]):
    """DEAP fitness and numpy individual classes for these objective directions (created once)."""
    tag = "_".join("max" if m else "min" for m in maximize)
    fit_name, ind_name = f"GSFitness_{tag}", f"GSIndividual_{tag}"
    if not hasattr(creator, fit_name):
        creator.create(fit_name, base.Fitness, weights=tuple(1.0 if m else -1.0 for m in maximize))
    if not hasattr(creator, ind_name):
        creator.create(ind_name, np.ndarray, fitness=getattr(creator, fit_name))
    return getattr(creator, ind_name)


def rank_members(fitness: np.ndarray, maximize: tuple[bool, ...]) -> np.ndarray:
    """Order of Pareto front members by the compromise rule (closest to the ideal point first)."""
    f = np.asarray(fitness, dtype=np.float64)
    signed = np.where(np.array(maximize), f, -f)  # larger is better in every column
    lo, hi = signed.min(axis=0), signed.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    score = np.where(hi > lo, (signed - lo) / span, 1.0)
    dist = np.sqrt(((1.0 - score) ** 2).sum(axis=1))
    return np.lexsort((np.arange(len(f)), -signed[:, 0], dist))


class _Run:
    def __init__(self, config: RunConfig, prices: Prices, run_dir: Path, map_fn, on_generation):
        self.config = config
        self.prices = prices
        self.run_dir = Path(run_dir)
        self.map_fn = map_fn or serial_map
        self.on_generation = on_generation
        ev, pf = config.evolution, config.portfolio
        if config.multi_objective and ev.population % 4:
            raise ConfigError(
                f"evolution.population must be a multiple of 4 for NSGA-II (DEAP's selTournamentDCD), "
                f"got {ev.population}"
            )
        self.space = G.GenomeSpace.from_config(prices.symbols, pf)
        self.evaluator = Evaluator.from_config(prices, config)
        self.maximize = self.evaluator.maximize
        self.Individual = _deap_classes(self.maximize)
        self.rng = np.random.default_rng(ev.seed)
        self._py_state = random.Random(ev.seed).getstate()
        self.logbook = tools.Logbook()
        self.hof = (
            tools.ParetoFront(similar=np.array_equal)
            if config.multi_objective
            else tools.HallOfFame(ev.hall_of_fame, similar=np.array_equal)
        )
        self.population: list = []
        self.gen = -1
        self.evaluations = 0
        self.elapsed = 0.0
        self.seeds: dict = {}

    # ---- helpers -----------------------------------------------------------------------------
    @contextmanager
    def _py_random(self):
        """DEAP's selections use the module-level ``random``: run them on this run's own state."""
        outer = random.getstate()
        random.setstate(self._py_state)
        try:
            yield
        finally:
            self._py_state = random.getstate()
            random.setstate(outer)

    def _ind(self, w) -> object:
        return self.Individual(np.array(w, dtype=np.float64))

    def _evaluate(self, individuals: list) -> int:
        todo = [ind for ind in individuals if not ind.fitness.valid]
        if not todo:
            return 0
        weights = self.space.validate_population(np.stack([np.asarray(i) for i in todo]))
        results = self.map_fn(self.evaluator, split_batches(weights, self._batch_size(len(weights))))
        fit = np.concatenate([np.asarray(r, dtype=np.float64).reshape(-1, len(self.maximize)) for r in results])
        if fit.shape != (len(todo), len(self.maximize)) or not np.isfinite(fit).all():
            raise RuntimeError(f"evaluation returned {fit.shape} values (finite: {np.isfinite(fit).all()})")
        for ind, f in zip(todo, fit, strict=True):
            ind.fitness.values = tuple(float(x) for x in f)
        self.evaluations += len(todo)
        return len(todo)

    def _batch_size(self, n: int) -> int:
        """Genomes per batch: the configured size, else the map's preference (e.g. one batch per Ray worker)."""
        size = self.config.parallel.batch_size
        if size:
            return size
        workers = getattr(self.map_fn, "num_workers", 1)
        return -(-n // workers)

    def _vary(self, offspring: list) -> None:
        ev, rng, space = self.config.evolution, self.rng, self.space
        for i in range(0, len(offspring) - 1, 2):
            if rng.random() < ev.crossover_prob:
                a, b = G.line_crossover(
                    space, np.asarray(offspring[i]), np.asarray(offspring[i + 1]), rng, ev.crossover_alpha
                )
                offspring[i], offspring[i + 1] = self._ind(a), self._ind(b)
        for i in range(len(offspring)):
            if rng.random() < ev.mutation_prob:
                w = G.mutate(
                    space,
                    np.asarray(offspring[i]),
                    rng,
                    sigma=ev.mutation_sigma,
                    shift_sigma=ev.shift_sigma,
                    p_shift=ev.shift_prob,
                    p_transfer=ev.transfer_prob,
                    p_flip=ev.flip_prob,
                    p_support=ev.support_prob,
                )
                offspring[i] = self._ind(w)

    def _record(self, nevals: int) -> dict:
        fit = np.array([ind.fitness.values for ind in self.population])
        rec = {"gen": self.gen, "nevals": nevals, "evaluations": self.evaluations}
        for j, name in enumerate(self.config.objective):
            col = fit[:, j]
            rec[f"{name}_best"] = float(col.max() if self.maximize[j] else col.min())
            rec[f"{name}_mean"] = float(col.mean())
            rec[f"{name}_std"] = float(col.std())
        rec["diversity"] = G.diversity(np.stack(self.population))
        self.logbook.record(**rec)
        return rec

    # ---- generations -------------------------------------------------------------------------
    def _initial(self) -> int:
        ev = self.config.evolution
        seeds: list[np.ndarray] = []
        if ev.seed_with_classical:
            from genetic_sizer.classical import classical_allocations

            allocations, skipped = classical_allocations(self.prices, self.space)
            self.seeds = {
                "used": sorted(allocations)[: ev.population],
                "skipped": skipped,
                "allocations": allocations,  # reused by the end-of-run summary
            }
            seeds = [allocations[name] for name in self.seeds["used"]]
        randoms = self.space.sample(self.rng, ev.population - len(seeds))
        self.population = [self._ind(w) for w in [*seeds, *randoms]]
        nevals = self._evaluate(self.population)
        if self.config.multi_objective:
            with self._py_random():
                self.population = tools.selNSGA2(self.population, len(self.population))  # crowding distances
        return nevals

    def _next(self) -> int:
        ev = self.config.evolution
        if self.config.multi_objective:
            with self._py_random():
                parents = tools.selTournamentDCD(self.population, len(self.population))
        else:
            with self._py_random():
                parents = tools.selTournament(self.population, ev.population - ev.elite, ev.tournament_size)
        offspring = [self._clone(p) for p in parents]
        self._vary(offspring)
        nevals = self._evaluate(offspring)
        if self.config.multi_objective:
            with self._py_random():
                self.population = tools.selNSGA2(self.population + offspring, ev.population)
        else:
            elite = [self._clone(e) for e in tools.selBest(self.population, ev.elite)]
            self.population = elite + offspring
        return nevals

    def _clone(self, ind):
        new = self._ind(ind)
        if ind.fitness.valid:
            new.fitness.values = ind.fitness.values
        if hasattr(ind.fitness, "crowding_dist"):
            new.fitness.crowding_dist = ind.fitness.crowding_dist
        return new

    # ---- checkpoints -------------------------------------------------------------------------
    def _state(self) -> dict:
        pop_fit = np.array([ind.fitness.values for ind in self.population])
        crowding = np.array([getattr(ind.fitness, "crowding_dist", np.nan) for ind in self.population])
        return {
            "version": CHECKPOINT_VERSION,
            "config_sha256": self.config.sha256(),
            "data_sha256": self.prices.sha256(),
            "generation": self.gen,
            "evaluations": self.evaluations,
            "elapsed": self.elapsed,
            "population": np.stack(self.population),
            "fitness": pop_fit,
            "crowding": crowding,
            "hof": np.stack(self.hof.items) if len(self.hof) else np.empty((0, self.space.n_assets)),
            "hof_fitness": np.array([i.fitness.values for i in self.hof.items]),
            "logbook": [dict(r) for r in self.logbook],
            "np_rng": self.rng.bit_generator.state,
            "py_random": self._py_state,
            "seeds": self.seeds,
        }

    def _restore(self, state: dict) -> None:
        if state.get("version") != CHECKPOINT_VERSION:
            raise ConfigError(f"checkpoint version {state.get('version')!r} is not {CHECKPOINT_VERSION}")
        if state["config_sha256"] != self.config.sha256():
            raise ConfigError(
                "cannot resume: the configuration differs from the interrupted run's "
                f"(config sha256 {self.config.sha256()[:12]} vs {state['config_sha256'][:12]})"
            )
        if state["data_sha256"] != self.prices.sha256():
            raise ConfigError("cannot resume: the price data differs from the interrupted run's (close sha256)")
        self.gen = state["generation"]
        self.evaluations = state["evaluations"]
        self.elapsed = state["elapsed"]
        self.population = []
        for w, f, c in zip(state["population"], state["fitness"], state["crowding"], strict=True):
            ind = self._ind(w)
            ind.fitness.values = tuple(f)
            if not math.isnan(c):
                ind.fitness.crowding_dist = float(c)
            self.population.append(ind)
        self.hof.items, self.hof.keys = [], []
        for w, f in zip(state["hof"], state["hof_fitness"], strict=True):
            ind = self._ind(w)
            ind.fitness.values = tuple(f)
            self.hof.items.append(ind)
            self.hof.keys.append(ind.fitness)
        self.logbook = tools.Logbook()
        for rec in state["logbook"]:
            self.logbook.record(**rec)
        self.rng.bit_generator.state = state["np_rng"]
        self._py_state = state["py_random"]
        self.seeds = state.get("seeds", {})

    def _checkpoint(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / CHECKPOINT
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(self._state(), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        write_logbook(self.run_dir / LOGBOOK, list(self.logbook))

    # ---- main loop ---------------------------------------------------------------------------
    def run(self, resume: bool) -> EvolutionResult:
        generations = self.config.evolution.generations
        if resume:
            self._restore(read_checkpoint(self.run_dir))
        start = time.perf_counter() - self.elapsed
        while self.gen < generations:
            t0 = time.perf_counter()
            nevals = self._initial() if self.gen < 0 else self._next()
            self.gen += 1
            self.hof.update(self.population)
            rec = self._record(nevals)
            self.elapsed = time.perf_counter() - start
            self._checkpoint()
            if self.on_generation is not None:
                dt = time.perf_counter() - t0
                self.on_generation(Generation(self.gen, generations, rec, self.elapsed, nevals / dt if dt else 0.0))
        return self._result()

    def _result(self) -> EvolutionResult:
        members = np.stack(self.hof.items)
        fit = np.array([i.fitness.values for i in self.hof.items])
        if self.config.multi_objective:
            order = rank_members(fit, self.maximize)
            members, fit = members[order], fit[order]
        return EvolutionResult(
            config=self.config,
            space=self.space,
            population=np.stack(self.population),
            fitness=np.array([ind.fitness.values for ind in self.population]),
            members=members,
            members_fitness=fit,
            logbook=[dict(r) for r in self.logbook],
            evaluations=self.evaluations,
            seeds=self.seeds,
        )


def load_result(config: RunConfig, prices: Prices, run_dir: str | Path) -> tuple[EvolutionResult, int]:
    """The result held by a run directory's checkpoint, and the generation it reached."""
    run = _Run(config, prices, Path(run_dir), None, None)
    run._restore(read_checkpoint(run_dir))
    return run._result(), run.gen


def read_checkpoint(run_dir: str | Path) -> dict:
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise ConfigError(f"cannot resume: no checkpoint at {path}")
    with open(path, "rb") as fh:
        return pickle.load(fh)


def write_logbook(path: Path, rows: list[dict]) -> None:
    """The logbook as CSV (deterministic: no timings), rewritten atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            for r in rows:
                writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in r.items()})
    os.replace(tmp, path)


def evolve(
    config: RunConfig,
    prices: Prices,
    run_dir: str | Path,
    *,
    map_fn: Callable | None = None,
    resume: bool = False,
    on_generation: Callable[[Generation], None] | None = None,
) -> EvolutionResult:
    """Run (or resume) an evolution; checkpoints and the logbook go to ``run_dir`` after every generation.

    Parameters
    ----------
    config : RunConfig
    prices : Prices
        The data the genomes are evaluated on (already loaded and windowed).
    run_dir : path
        Where the checkpoint and logbook are written (created if needed).
    map_fn : callable, optional
        ``map_fn(evaluator, batches) -> list of fitness arrays``; default :func:`serial_map`. A map with a
        ``start()`` method (:class:`~genetic_sizer.parallel.RayMap`) is started first; the caller closes it.
    resume : bool
        Continue from the checkpoint in ``run_dir`` (same config and data required).
    on_generation : callable, optional
        Called with a :class:`Generation` after every generation (progress display).
    """
    start = getattr(map_fn, "start", None)
    if start is not None:  # e.g. a RayMap: connect before the first generation so batches fit its workers
        start()
    return _Run(config, prices, Path(run_dir), map_fn, on_generation).run(resume)

"""The evolution loop: populations of weight genomes as arrays, single objective or NSGA-II, resumable.

A population is rows of arrays held by the run: ``weights`` (n, n_assets), ``genes`` (n, n_genes, the strategy
genes; no columns without them), ``fitness`` (n, n_objectives) and, for NSGA-II, crowding distances (n,).

Single objective (``objective: sharpe``)::

    population <- seeds (optional classical allocations) + random valid genomes; evaluate
    each generation:
        parents <- population - elite tournaments (select_tournament: DEAP selTournament's rules, in numpy)
        children <- variation.vary_population(parents): pairs (2i, 2i + 1) cross over (line crossover) with
            crossover_prob, each row mutates with mutation_prob (a shift toward/away from one asset, a transfer
            between two, an add / drop / swap of an asset, a Gaussian step or, long/short, a flip; every child
            satisfies the bounds and constraints); their genes: GeneSpace.vary_population (same pairs)
        evaluate the children that differ from their parent (one map call over batches); the others keep their
            parent's fitness
        population <- the elite best of the old population (select_best: DEAP selBest, a stable sort) + children
        hall of fame (HallOfFame: DEAP HallOfFame's rules on arrays), trials, logbook; checkpoint when due

With strategy genes (``evolution.genes``, :mod:`genetic_sizer.evolution.genes`) a genome is a strategy: a row of weights
and a row of genes (drift band, calendar policy, perp leverage). A crossover of two parents crosses their genes too (a
blend for a continuous gene, a swap for a choice), and each gene of a child mutates with
``evolution.gene_mutation_prob``; the hall of fame and the Pareto front tell members apart by weights and genes.
Without genes no random number is drawn for them.

Several objectives (``objective: [sharpe, max_drawdown, turnover]``) run NSGA-II as in DEAP's example:
``selTournamentDCD`` for parents, the same variation, ``selNSGA2`` over parents + children; the hall of fame is
DEAP's ``ParetoFront`` of every population ``selNSGA2`` kept. DEAP individuals are built from the rows for these
calls only.
The champion of a multi-objective run is the *compromise* member of that front: each objective is min-max scaled
over the front (1 = best on the front), and the member closest (Euclidean) to the ideal point (all ones) wins;
ties go to the better first objective. ``export --rank K`` counts in that order.

Determinism: the tournaments, the variation's coins and per-row seeds and the genes' variation draw from one
``numpy.random.Generator``, DEAP's NSGA-II selections from a private ``random`` state (swapped in around each DEAP
call), both seeded from ``evolution.seed``; evaluation is a pure function of the genome, so neither how the rows are
split into batches nor where they are evaluated (serially, on Ray) changes a result.

Exact resume: a checkpoint (:class:`~genetic_sizer.evolution.checkpoint.Checkpoint`, handed to the store the loop is
given; :class:`~genetic_sizer.runs.rundir.RunDir` writes it as JSON + ``.npz``, no pickle) holds everything the next
generation reads: the population with its fitness and crowding distances, the hall of fame or Pareto front
(best first), the logbook, the evaluation count, both random states, the trials and the seeded classical
allocations. It is written after the first generation, then whenever ``run.checkpoint_every`` seconds (default 5;
0: every generation) have passed, after the last generation, and when the loop is interrupted (Ctrl-C, an error):
then of the last finished generation, a generation in progress being abandoned with its random draws undone. The
hall of fame is restored as its arrays, the Pareto front through DEAP's public API (``clear`` then ``insert``,
worst first, which restores DEAP's internal order, ties included). A run interrupted after any generation and
resumed therefore ends with exactly the population, fitness, hall of fame / Pareto front, champion and logbook of
the uninterrupted run (tested for an interruption after every generation, single objective, NSGA-II, long/short,
with and without genes, and in the middle of a generation).
"""

from __future__ import annotations

import functools
import random
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import numpy as np

from genetic_sizer.allocators.toolkit import allocator_notes
from genetic_sizer.config import RunConfig
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import CheckpointError, ConfigError
from genetic_sizer.evolution.checkpoint import Checkpoint, CheckpointStore, checkpoint_problems
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.evolution.genes import GeneSpace
from genetic_sizer.evolution.result import EvolutionResult, Generation, generation_record, result_of
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.evolution.strategies import NSGA2, SingleObjective
from genetic_sizer.evolution.trials import Trials
from genetic_sizer.evolution.variation import vary_population

__all__ = ["Evolution", "check_run", "serial_map", "split_batches"]


def serial_map(fn, batches):
    """Evaluate the batches one after the other in this process (the default map)."""
    return [fn(b) for b in batches]


def split_batches(weights: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split (n, n_assets) into consecutive batches of at most ``batch_size`` rows (0: one batch)."""
    n = len(weights)
    if n == 0:
        return []
    if batch_size <= 0 or batch_size >= n:
        return [weights]
    return [weights[i : i + batch_size] for i in range(0, n, batch_size)]


@dataclass
class _Step:
    """What one generation computed, not yet part of the run (see :meth:`Evolution._commit`)."""

    weights: np.ndarray
    genes: np.ndarray
    fitness: np.ndarray
    crowding: np.ndarray
    evaluated: np.ndarray  # the rows evaluated (weights then genes), in order
    trial_sharpe: np.ndarray
    chosen: list | None = None  # NSGA-II: the DEAP individuals of the new population (for the Pareto front)


class Evolution:
    """One evolution. The constructor validates the config against the data (genome space, NSGA-II rules) and
    touches no file; :meth:`run` hands its checkpoints and logbook to a :class:`CheckpointStore`.

    The population is held as arrays: ``weights`` (n, n_assets), ``genes`` (n, n_genes; no columns without
    strategy genes), ``fitness`` (n, n_objectives) and ``crowding`` (n,; NSGA-II crowding distances, NaN for one
    objective). ``timings`` holds the seconds the last generation spent in each phase. Selection and the archive
    are the strategy's (:class:`~genetic_sizer.evolution.strategies.SingleObjective` or
    :class:`~genetic_sizer.evolution.strategies.NSGA2`). ``map_fn(evaluator, batches)`` evaluates (default
    :func:`serial_map`; a Ray map from :mod:`genetic_sizer.cluster.raymap` is passed in by the caller).
    """

    PHASES = ("selection", "variation", "evaluation", "archive", "record", "checkpoint")

    def __init__(self, config: RunConfig, prices: Prices, map_fn=None, on_generation=None):
        self.config = config
        self.prices = prices
        self.map_fn = map_fn or serial_map
        self.on_generation = on_generation
        ev, pf = config.evolution, config.portfolio
        if config.multi_objective and ev.population % 4:
            raise ConfigError(
                f"evolution.population must be a multiple of 4 for NSGA-II (DEAP's selTournamentDCD), "
                f"got {ev.population}"
            )
        self.space = GenomeSpace.from_config(prices.symbols, pf)
        allocator_notes(prices, config.allocators)  # the allocators: section against the data, before any work
        self.genes = GeneSpace.from_config(config)
        self.n_genes = 0 if self.genes is None else self.genes.n
        self.evaluator = Evaluator.from_config(prices, config)
        self._evaluate_fn = self.evaluator.with_trial_sharpe()  # objectives, then each genome's per-period Sharpe
        self.maximize = self.evaluator.maximize
        self.n_obj = len(self.maximize)
        self._sign = np.where(np.array(self.maximize), 1.0, -1.0)
        self.rng = np.random.default_rng(ev.seed)
        self._py_state = random.Random(ev.seed).getstate()
        self.logbook: list[dict] = []
        n_assets = self.space.n_assets
        self.strategy = NSGA2(self) if config.multi_objective else SingleObjective(self)
        self.weights = np.empty((0, n_assets))
        self.genes_ = np.empty((0, self.n_genes))
        self.fitness = np.empty((0, self.n_obj))
        self.crowding = np.empty(0)
        self.gen = -1
        self.evaluations = 0
        self.elapsed = 0.0
        self.seeds: dict = {}
        self.trials = Trials(n_assets + self.n_genes, ev.seed)  # a trial: weights and genes
        self.timings: dict[str, float] = {}
        self._consistent = True  # False while a generation is being committed (see run)

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

    def _tick(self, phase: str, t0: float) -> float:
        now = time.perf_counter()
        self.timings[phase] = self.timings.get(phase, 0.0) + now - t0
        return now

    def _evaluate(self, weights: np.ndarray, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fitness of the rows, the rows as evaluated (weights then genes) and their per-period Sharpe ratios."""
        rows = self.space.validate_population(weights)
        if self.genes is not None:  # each row: the weights, then the genes
            rows = np.hstack([rows, self.genes.validate_population(genes)])
        if not len(rows):
            return np.empty((0, self.n_obj)), rows, np.empty(0)
        results = self.map_fn(self._evaluate_fn, split_batches(rows, self._batch_size(len(rows))))
        n_obj = self.n_obj
        parts = [np.asarray(r, dtype=np.float64).reshape(-1, n_obj + 1) for r in results]
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)  # copied below
        if out.shape != (len(rows), n_obj + 1) or not np.isfinite(out).all():
            raise RuntimeError(f"evaluation returned {out.shape} values (finite: {np.isfinite(out).all()})")
        return out[:, :n_obj].copy(), rows, out[:, n_obj].copy()

    def _batch_size(self, n: int) -> int:
        """Genomes per batch: the configured size, else the map's preference (e.g. one batch per Ray worker)."""
        size = self.config.parallel.batch_size
        if size:
            return size
        workers = getattr(self.map_fn, "num_workers", 1)
        return -(-n // workers)

    def _vary(self, weights: np.ndarray, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The children of the selected rows and which of them differ from their parent.

        Draws from the run's generator, in this order: the crossover coins of the pairs, the mutation coins of the rows,
        one 64-bit seed per row (the weights' variation, :func:`genetic_sizer.evolution.variation.vary_population`),
        then the genes' variation (:meth:`GeneSpace.vary_population`, with the same pairs; nothing without genes). A
        child equal to its parent in weights and genes keeps the parent's row (and fitness)."""
        ev, rng = self.config.evolution, self.rng
        n = len(weights)
        cross = rng.random(n // 2) < ev.crossover_prob
        mutating = rng.random(n) < ev.mutation_prob
        seeds = rng.bit_generator.random_raw(n)  # = rng.integers(0, 2**64, n, dtype=np.uint64), 8x faster (tested)
        children = vary_population(
            self.space,
            weights,
            cross,
            mutating,
            seeds,
            alpha=ev.crossover_alpha,
            sigma=ev.mutation_sigma,
            shift_sigma=ev.shift_sigma,
            p_shift=ev.shift_prob,
            p_transfer=ev.transfer_prob,
            p_flip=ev.flip_prob,
            p_support=ev.support_prob,
        )
        changed = (children != weights).any(axis=1)
        child_genes = genes  # without genes: no columns, nothing to vary, compare or copy
        if self.genes is not None:
            child_genes = self.genes.vary_population(
                genes, cross, rng, ev.crossover_alpha, ev.gene_mutation_prob, ev.gene_sigma
            )
            changed |= (child_genes != genes).any(axis=1)
            child_genes = child_genes.copy()
        same = ~changed
        if same.any():
            children[same] = weights[same]  # the parent's bytes (0.0 and -0.0 compare equal)
        return children, child_genes, changed

    # ---- generations -------------------------------------------------------------------------
    def _initial(self) -> _Step:
        ev = self.config.evolution
        t = time.perf_counter()
        seeds = np.empty((0, self.space.n_assets))
        if ev.seed_with_classical:
            from genetic_sizer.evolution.seeding import classical_allocations

            allocations, skipped = classical_allocations(self.prices, self.space, self.config)
            self.seeds = {
                "used": sorted(allocations)[: ev.population],
                "skipped": skipped,
                "allocations": allocations,  # reused by the end-of-run summary
            }
            if self.seeds["used"]:
                seeds = np.stack([allocations[name] for name in self.seeds["used"]])
        randoms = np.asarray(self.space.sample(self.rng, ev.population - len(seeds)), dtype=np.float64)
        weights = np.vstack([seeds, randoms.reshape(-1, self.space.n_assets)])
        genes = np.empty((len(weights), 0)) if self.genes is None else self.genes.sample(self.rng, len(weights))
        t = self._tick("variation", t)
        fitness, rows, sharpe = self._evaluate(weights, genes)
        t = self._tick("evaluation", t)
        weights, genes, fitness, crowding, chosen = self.strategy.initial(weights, genes, fitness)
        self._tick("selection", t)
        return _Step(weights, genes, fitness, crowding, rows, sharpe, chosen)

    def _next(self) -> _Step:
        t = time.perf_counter()
        parents = self.strategy.parents()
        t = self._tick("selection", t)
        weights, genes, changed = self._vary(self.weights[parents], self.genes_[parents])
        fitness = self.fitness[parents]
        t = self._tick("variation", t)
        new_fit, rows, sharpe = self._evaluate(weights[changed], genes[changed])
        fitness[changed] = new_fit
        t = self._tick("evaluation", t)
        weights, genes, fitness, crowding, chosen = self.strategy.survivors(weights, genes, fitness)
        self._tick("selection", t)
        return _Step(weights, genes, fitness, crowding, rows, sharpe, chosen)

    def _commit(self, step: _Step) -> dict:
        """Make ``step`` the run's state: population, trials, counters, archive, logbook. Returns the record."""
        self._consistent = False
        t = time.perf_counter()
        self.weights, self.genes_, self.fitness, self.crowding = step.weights, step.genes, step.fitness, step.crowding
        self.trials.add(step.evaluated, step.trial_sharpe)
        nevals = len(step.evaluated)
        self.evaluations += nevals
        self.gen += 1
        self.strategy.update(step.chosen)
        t = self._tick("archive", t)
        rec = generation_record(self, nevals)
        self.logbook.append(rec)
        self._tick("record", t)
        self._consistent = True
        return rec

    # ---- checkpoints -------------------------------------------------------------------------
    @functools.cached_property
    def _fingerprints(self) -> tuple[str, str]:
        """The config's and the data's SHA-256 (computed once: every checkpoint records them)."""
        return self.config.sha256(), self.prices.sha256()

    def _state(self) -> Checkpoint:
        archive, archive_fit, archive_genes = self.strategy.arrays()
        return Checkpoint(
            config_sha256=self._fingerprints[0],
            data_sha256=self._fingerprints[1],
            generation=self.gen,
            evaluations=self.evaluations,
            elapsed=self.elapsed,
            population=self.weights,
            fitness=self.fitness,
            crowding=self.crowding,
            archive=archive,
            archive_fitness=archive_fit,
            logbook=self.logbook,
            np_rng=self.rng.bit_generator.state,
            py_random=self._py_state,
            seeds=self.seeds,
            trials=self.trials.state(),
            population_genes=self.genes_ if self.genes is not None else None,
            archive_genes=archive_genes if self.genes is not None else None,
        )

    def _write(self, store: CheckpointStore) -> None:
        """Checkpoint the last finished generation, then the logbook beside it."""
        store.write_checkpoint(self._state())
        store.write_logbook(self.logbook)

    def restore(self, cp: Checkpoint, where: object = "the checkpoint") -> None:
        """Continue from ``cp`` (same config and data required; ``where`` names it in errors)."""
        problems = checkpoint_problems(cp, self)
        if problems:
            raise CheckpointError(f"{where} does not fit this run: {'; '.join(problems)}")
        self.gen = cp.generation
        self.evaluations = cp.evaluations
        self.elapsed = cp.elapsed
        self.weights = np.array(cp.population, dtype=np.float64)
        self.genes_ = (
            np.array(cp.population_genes, dtype=np.float64) if self.n_genes else np.empty((len(cp.population), 0))
        )
        self.fitness = np.array(cp.fitness, dtype=np.float64)
        self.crowding = np.array(cp.crowding, dtype=np.float64)
        self.strategy.restore(cp.archive, cp.archive_fitness, cp.archive_genes if self.n_genes else None)
        self.logbook = [dict(r) for r in cp.logbook]
        self.rng.bit_generator.state = cp.np_rng
        self._py_state = cp.py_random
        self.seeds = cp.seeds
        self.trials.restore(*cp.trials)

    # ---- main loop ---------------------------------------------------------------------------
    def run(self, store: CheckpointStore) -> EvolutionResult:
        """Evolve until the configured generation, checkpointing into ``store`` (e.g. a run directory).

        A checkpoint (and the logbook) is written after the first generation of a new run, after the last one,
        and in between whenever ``run.checkpoint_every`` seconds have passed since the previous one (after every
        generation when it is 0). When anything interrupts the loop (Ctrl-C, an error in the map or the progress
        callback), the last finished generation is checkpointed before the exception goes on: a generation in
        progress is abandoned (its random draws are undone, nothing of it was kept), and the rare interrupt that
        lands while a finished generation is being committed leaves the previous checkpoint, which resumes exactly
        too. A checkpoint the process cannot write then is not retried: the previous one stands.
        """
        generations = self.config.evolution.generations
        every = self.config.run.checkpoint_every
        start = time.perf_counter() - self.elapsed
        on_disk = self.gen if self.gen >= 0 else None  # the generation the store holds
        writing = False
        last_write = time.perf_counter()
        try:
            while self.gen < generations:
                self.timings = dict.fromkeys(self.PHASES, 0.0)
                t0 = time.perf_counter()
                undo = (self.rng.bit_generator.state, self._py_state)
                try:
                    step = self._initial() if self.gen < 0 else self._next()
                except BaseException:
                    self.rng.bit_generator.state, self._py_state = undo
                    raise
                rec = self._commit(step)
                now = time.perf_counter()
                self.elapsed = now - start
                if on_disk is None or every == 0 or self.gen == generations or now - last_write >= every:
                    writing = True
                    self._write(store)
                    writing = False
                    on_disk, last_write = self.gen, time.perf_counter()
                    self._tick("checkpoint", now)
                if self.on_generation is not None:
                    dt = time.perf_counter() - t0
                    nevals = rec["nevals"]
                    self.on_generation(
                        Generation(
                            self.gen, generations, rec, self.elapsed, nevals / dt if dt else 0.0, dict(self.timings)
                        )
                    )
        except BaseException:
            if self._consistent and not writing and self.gen >= 0 and on_disk != self.gen:
                with suppress(Exception):  # a checkpoint that cannot be written now: the previous one stands
                    self._write(store)
            raise
        return result_of(self)


def check_run(config: RunConfig, prices: Prices) -> None:
    """Raise :class:`ConfigError` when ``config`` cannot run on ``prices`` (bounds the assets cannot meet, an
    NSGA-II population that is not a multiple of 4, ...). Nothing is written; :func:`genetic_sizer.runs.evolve.evolve`
    checks the same before it creates the run directory."""
    Evolution(config, prices)


def restore_result(config: RunConfig, prices: Prices, cp: Checkpoint, where: object) -> tuple[EvolutionResult, int]:
    """The result a checkpoint holds, and the generation it reached."""
    run = Evolution(config, prices)
    run.restore(cp, where)
    return result_of(run), run.gen

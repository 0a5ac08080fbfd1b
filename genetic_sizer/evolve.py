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

With strategy genes (``evolution.genes``, :mod:`genetic_sizer.genes`) a genome is a strategy: the individual's
array is still its weights, and its genes (drift band, calendar policy, perp leverage) ride along as
``individual.genes``. A
crossover of two parents crosses their genes too (a blend for a continuous gene, a swap for a choice), and each
gene of an offspring mutates with ``evolution.gene_mutation_prob``; the hall of fame and the Pareto front tell
members apart by weights and genes. Without genes no random number is drawn for them: a run is what it was.

Several objectives (``objective: [sharpe, max_drawdown, turnover]``) run NSGA-II as in DEAP's example:
``selTournamentDCD`` for parents, the same variation, ``selNSGA2`` over parents + offspring; the hall of
fame is the Pareto front of every genome evaluated. The champion of a multi-objective run is the *compromise*
member of that front: each objective is min-max scaled over the front (1 = best on the front), and the member
closest (Euclidean) to the ideal point (all ones) wins; ties go to the better first objective.
``export --rank K`` counts in that order.

Determinism: operators draw from one ``numpy.random.Generator`` and DEAP's selections from a private
``random`` state (swapped in around each DEAP call), both seeded from ``evolution.seed``; evaluation is a pure
function of the genome.

Exact resume: after every generation the run directory (:class:`~genetic_sizer.rundir.RunDir`) receives a
checkpoint (JSON + ``.npz``, no pickle) of everything the next generation reads: the population with its
fitness and crowding distances, the hall of fame or Pareto front in DEAP's order, the logbook, the evaluation
count, both random states and the seeded classical allocations. The archive is written as its members (best
first) and rebuilt through DEAP's public API (``clear`` then ``insert``, worst first), which restores DEAP's
internal order, ties included. A run interrupted after any generation and resumed therefore ends with exactly
the population, fitness, hall of fame / Pareto front, champion and logbook of the uninterrupted run (tested
for an interruption after every generation, single objective and NSGA-II).
"""

from __future__ import annotations

import math
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
from genetic_sizer.errors import CheckpointError, ConfigError
from genetic_sizer.fitness import Evaluator
from genetic_sizer.genes import GeneSpace
from genetic_sizer.parallel import serial_map, split_batches
from genetic_sizer.rundir import Checkpoint, RunDir
from genetic_sizer.trials import Trials

__all__ = ["EvolutionResult", "Generation", "check_run", "evolve", "load_result", "rank_members"]


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
    ``members_fitness`` their objective values, ``logbook`` one dict per generation. ``trials`` counts the
    distinct genomes evaluated and the variance of their in-sample per-period Sharpe ratios
    (``{"n", "sharpe_variance"}``, for the deflated Sharpe ratio); ``trial_sample`` is a uniform sample of up
    to 1,000 of them (for the probability of backtest overfitting). See :mod:`genetic_sizer.trials`.

    With strategy genes (``genes``, a :class:`~genetic_sizer.genes.GeneSpace`), ``population_genes``,
    ``members_genes`` and ``trial_sample_genes`` hold the genes of the corresponding rows (n, n_genes); without
    them they have no columns and every genome follows the portfolio's policy without a drift band.
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
    trials: dict = field(default_factory=dict)
    trial_sample: np.ndarray | None = None
    genes: GeneSpace | None = None
    population_genes: np.ndarray | None = None
    members_genes: np.ndarray | None = None
    trial_sample_genes: np.ndarray | None = None

    @property
    def champion(self) -> np.ndarray:
        return self.members[0]

    @property
    def champion_genes(self) -> np.ndarray | None:
        """The champion's strategy genes (None without genes)."""
        return None if self.genes is None else self.members_genes[0]

    def strategy(self, rank: int = 0) -> dict:
        """Member ``rank``'s strategy: ``{"rebalance": policy, "threshold": drift band or None}``, and ``"leverage"``
        when the run evolves it."""
        if self.genes is None:
            return {"rebalance": self.config.portfolio.rebalance, "threshold": None}
        return self.genes.strategy(self.members_genes[rank])


def _deap_classes(maximize: tuple[bool, ...]):
    """DEAP fitness and numpy individual classes for these objective directions (created once)."""
    tag = "_".join("max" if m else "min" for m in maximize)
    fit_name, ind_name = f"GSFitness_{tag}", f"GSIndividual_{tag}"
    if not hasattr(creator, fit_name):
        creator.create(fit_name, base.Fitness, weights=tuple(1.0 if m else -1.0 for m in maximize))
    if not hasattr(creator, ind_name):
        creator.create(ind_name, np.ndarray, fitness=getattr(creator, fit_name))
    return getattr(creator, ind_name)


def _same_genome(a, b) -> bool:
    """Archive similarity: the same weights and the same strategy genes."""
    return np.array_equal(a, b) and np.array_equal(a.genes, b.genes)


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
    """One evolution. The constructor validates the config against the data (genome space, NSGA-II rules) and
    touches no file; :meth:`run` writes the checkpoint and logbook into a :class:`RunDir`."""

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
        self.space = G.GenomeSpace.from_config(prices.symbols, pf)
        self.genes = GeneSpace.from_config(config)
        self.n_genes = 0 if self.genes is None else self.genes.n
        self.evaluator = Evaluator.from_config(prices, config)
        self._evaluate_fn = self.evaluator.with_trial_sharpe()  # objectives, then each genome's per-period Sharpe
        self.maximize = self.evaluator.maximize
        self.Individual = _deap_classes(self.maximize)
        self.rng = np.random.default_rng(ev.seed)
        self._py_state = random.Random(ev.seed).getstate()
        self.logbook = tools.Logbook()
        self.hof = (
            tools.ParetoFront(similar=_same_genome)
            if config.multi_objective
            else tools.HallOfFame(ev.hall_of_fame, similar=_same_genome)
        )
        self.population: list = []
        self.gen = -1
        self.evaluations = 0
        self.elapsed = 0.0
        self.seeds: dict = {}
        self.trials = Trials(self.space.n_assets + self.n_genes, ev.seed)  # a trial: weights and genes

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

    def _ind(self, w, genes=None) -> object:
        ind = self.Individual(np.array(w, dtype=np.float64))
        ind.genes = np.empty(0) if genes is None else np.array(genes, dtype=np.float64)
        return ind

    def _genes_of(self, individuals) -> np.ndarray:
        """The strategy genes of ``individuals`` as (n, n_genes)."""
        return np.array([ind.genes for ind in individuals], dtype=np.float64).reshape(len(individuals), self.n_genes)

    def _evaluate(self, individuals: list) -> int:
        todo = [ind for ind in individuals if not ind.fitness.valid]
        if not todo:
            return 0
        weights = self.space.validate_population(np.stack([np.asarray(i) for i in todo]))
        if self.genes is not None:  # each row: the weights, then the genes
            weights = np.hstack([weights, self.genes.validate_population(self._genes_of(todo))])
        results = self.map_fn(self._evaluate_fn, split_batches(weights, self._batch_size(len(weights))))
        n_obj = len(self.maximize)
        out = np.concatenate([np.asarray(r, dtype=np.float64).reshape(-1, n_obj + 1) for r in results])
        if out.shape != (len(todo), n_obj + 1) or not np.isfinite(out).all():
            raise RuntimeError(f"evaluation returned {out.shape} values (finite: {np.isfinite(out).all()})")
        fit = out[:, :n_obj]
        for ind, f in zip(todo, fit, strict=True):
            ind.fitness.values = tuple(float(x) for x in f)
        self.trials.add(weights, out[:, n_obj])
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
        ev, rng, space, genes = self.config.evolution, self.rng, self.space, self.genes
        for i in range(0, len(offspring) - 1, 2):
            if rng.random() < ev.crossover_prob:
                a, b = G.line_crossover(
                    space, np.asarray(offspring[i]), np.asarray(offspring[i + 1]), rng, ev.crossover_alpha
                )
                ga, gb = offspring[i].genes, offspring[i + 1].genes
                if genes is not None:
                    ga, gb = genes.crossover(ga, gb, rng, ev.crossover_alpha)
                offspring[i], offspring[i + 1] = self._ind(a, ga), self._ind(b, gb)
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
                offspring[i] = self._ind(w, offspring[i].genes)
            if genes is not None:
                g = genes.mutate(offspring[i].genes, rng, ev.gene_mutation_prob, ev.gene_sigma)
                if not np.array_equal(g, offspring[i].genes):
                    offspring[i] = self._ind(offspring[i], g)

    def _record(self, nevals: int) -> dict:
        fit = np.array([ind.fitness.values for ind in self.population])
        rec = {"gen": self.gen, "nevals": nevals, "evaluations": self.evaluations}
        # statistics of the live genomes only: a wiped-out genome's fitness is a sentinel, not a value
        wiped = self.evaluator.is_wiped_out(fit)
        live = fit[~wiped]
        for j, name in enumerate(self.config.objective):
            col = live[:, j]
            if len(col):
                rec[f"{name}_best"] = float(col.max() if self.maximize[j] else col.min())
                rec[f"{name}_mean"] = float(col.mean())
                rec[f"{name}_std"] = float(col.std())
            else:  # every genome of the generation was wiped out
                rec[f"{name}_best"] = rec[f"{name}_mean"] = rec[f"{name}_std"] = math.nan
        rec["wiped_out"] = int(wiped.sum())
        rec["diversity"] = G.diversity(np.stack(self.population))
        if self.genes is not None:  # where the population's strategies are
            genes = self._genes_of(self.population)
            th = self.genes.thresholds(genes)
            if th is not None:
                rec["threshold_mean"] = float(th.mean())
                rec["threshold_std"] = float(th.std())
            if self.genes.rebalance is not None:
                policies = self.genes.policies(genes)
                for code in self.genes.rebalance:
                    rec[f"rebalance_{code}"] = sum(p == code for p in policies)
            lev = self.genes.leverages(genes)
            if lev is not None:
                rec["leverage_mean"] = float(lev.mean())
                rec["leverage_std"] = float(lev.std())
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
        weights = [*seeds, *randoms]
        genes = [None] * len(weights) if self.genes is None else self.genes.sample(self.rng, len(weights))
        self.population = [self._ind(w, g) for w, g in zip(weights, genes, strict=True)]
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
        new = self._ind(ind, ind.genes)
        if ind.fitness.valid:
            new.fitness.values = ind.fitness.values
        if hasattr(ind.fitness, "crowding_dist"):
            new.fitness.crowding_dist = ind.fitness.crowding_dist
        return new

    # ---- checkpoints -------------------------------------------------------------------------
    def _state(self) -> Checkpoint:
        n_obj = len(self.maximize)
        archive, archive_fit, archive_genes = self._archive_arrays()
        return Checkpoint(
            config_sha256=self.config.sha256(),
            data_sha256=self.prices.sha256(),
            generation=self.gen,
            evaluations=self.evaluations,
            elapsed=self.elapsed,
            population=np.stack(self.population),
            fitness=np.array([ind.fitness.values for ind in self.population], dtype=np.float64).reshape(-1, n_obj),
            crowding=np.array([getattr(ind.fitness, "crowding_dist", np.nan) for ind in self.population]),
            archive=archive,
            archive_fitness=archive_fit,
            logbook=[dict(r) for r in self.logbook],
            np_rng=self.rng.bit_generator.state,
            py_random=self._py_state,
            seeds=self.seeds,
            trials=self.trials.state(),
            population_genes=self._genes_of(self.population) if self.genes is not None else None,
            archive_genes=archive_genes if self.genes is not None else None,
        )

    def _archive_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The hall of fame / Pareto front as (members, fitness, genes), in DEAP's order (best first)."""
        items = list(self.hof)
        if not items:
            return np.empty((0, self.space.n_assets)), np.empty((0, len(self.maximize))), np.empty((0, self.n_genes))
        fit = np.array([i.fitness.values for i in items], dtype=np.float64)
        return np.stack(items), fit, self._genes_of(items)

    def _restore_archive(self, members: np.ndarray, fitness: np.ndarray, genes: np.ndarray | None = None) -> None:
        """Rebuild the archive through DEAP's public API. ``insert`` bisects DEAP's ascending keys and puts a
        newcomer before members of equal fitness, so inserting worst first reproduces the saved order exactly,
        ties included."""
        self.hof.clear()
        if genes is None:
            genes = [None] * len(members)
        for w, f, g in zip(members[::-1], fitness[::-1], genes[::-1], strict=True):
            ind = self._ind(w, g)
            ind.fitness.values = tuple(float(x) for x in f)
            self.hof.insert(ind)

    def _restore(self, cp: Checkpoint, where: object = "the checkpoint") -> None:
        if cp.config_sha256 != self.config.sha256():
            raise ConfigError(
                "cannot resume: the configuration differs from the interrupted run's "
                f"(config sha256 {self.config.sha256()[:12]} vs {cp.config_sha256[:12]})"
            )
        if cp.data_sha256 != self.prices.sha256():
            raise ConfigError("cannot resume: the price data differs from the interrupted run's (close sha256)")
        ev = self.config.evolution
        n, n_assets = cp.population.shape
        problems = []
        if n != ev.population:
            problems.append(f"population of {n}, the config says {ev.population}")
        if n_assets != self.space.n_assets:
            problems.append(f"{n_assets} assets, the data has {self.space.n_assets}")
        if cp.fitness.shape[1] != len(self.maximize):
            problems.append(f"{cp.fitness.shape[1]} objectives, the config has {len(self.maximize)}")
        if len(cp.archive) == 0:
            problems.append("an empty hall of fame")
        if not self.config.multi_objective and len(cp.archive) > ev.hall_of_fame:
            problems.append(f"a hall of fame of {len(cp.archive)}, the config keeps {ev.hall_of_fame}")
        if cp.generation > ev.generations:
            problems.append(f"generation {cp.generation}, the config runs {ev.generations}")
        if cp.n_genes != self.n_genes:
            problems.append(f"{cp.n_genes} strategy genes, the config evolves {self.n_genes}")
        if problems:
            raise CheckpointError(f"{where} does not fit this run: {'; '.join(problems)}")
        self.gen = cp.generation
        self.evaluations = cp.evaluations
        self.elapsed = cp.elapsed
        self.population = []
        pop_genes = cp.population_genes if self.n_genes else [None] * len(cp.population)
        for w, f, c, g in zip(cp.population, cp.fitness, cp.crowding, pop_genes, strict=True):
            ind = self._ind(w, g)
            ind.fitness.values = tuple(float(x) for x in f)
            if not math.isnan(c):
                ind.fitness.crowding_dist = float(c)
            self.population.append(ind)
        self._restore_archive(cp.archive, cp.archive_fitness, cp.archive_genes if self.n_genes else None)
        self.logbook = tools.Logbook()
        for rec in cp.logbook:
            self.logbook.record(**rec)
        self.rng.bit_generator.state = cp.np_rng
        self._py_state = cp.py_random
        self.seeds = cp.seeds
        self.trials.restore(*cp.trials)

    # ---- main loop ---------------------------------------------------------------------------
    def run(self, run_dir: RunDir) -> EvolutionResult:
        """Evolve until the configured generation, checkpointing into ``run_dir`` after each one."""
        generations = self.config.evolution.generations
        start = time.perf_counter() - self.elapsed
        while self.gen < generations:
            t0 = time.perf_counter()
            nevals = self._initial() if self.gen < 0 else self._next()
            self.gen += 1
            self.hof.update(self.population)
            rec = self._record(nevals)
            self.elapsed = time.perf_counter() - start
            run_dir.write_checkpoint(self._state())
            run_dir.write_logbook(list(self.logbook))
            if self.on_generation is not None:
                dt = time.perf_counter() - t0
                self.on_generation(Generation(self.gen, generations, rec, self.elapsed, nevals / dt if dt else 0.0))
        return self._result()

    def _result(self) -> EvolutionResult:
        members, fit, members_genes = self._archive_arrays()
        if self.config.multi_objective:
            order = rank_members(fit, self.maximize)
            members, fit, members_genes = members[order], fit[order], members_genes[order]
        n_assets = self.space.n_assets
        sample = self.trials.sample
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
            trials=self.trials.summary(),
            trial_sample=sample[:, :n_assets].copy(),
            genes=self.genes,
            population_genes=self._genes_of(self.population),
            members_genes=members_genes,
            trial_sample_genes=sample[:, n_assets:].copy(),
        )


def check_run(config: RunConfig, prices: Prices) -> None:
    """Raise :class:`ConfigError` when ``config`` cannot run on ``prices`` (bounds the assets cannot meet, an
    NSGA-II population that is not a multiple of 4, ...). Nothing is written; :func:`evolve` checks the same
    before it creates the run directory."""
    _Run(config, prices)


def load_result(config: RunConfig, prices: Prices, run_dir: str | Path | RunDir) -> tuple[EvolutionResult, int]:
    """The result held by a run directory's checkpoint, and the generation it reached."""
    rd = RunDir(run_dir)
    run = _Run(config, prices)
    run._restore(rd.read_checkpoint(), rd.checkpoint_path)
    return run._result(), run.gen


def evolve(
    config: RunConfig,
    prices: Prices,
    run_dir: str | Path | RunDir,
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
    run_dir : path or RunDir
        The run directory. A new run needs a path that does not exist, an empty directory, or one holding
        only this config's ``config.yaml`` (see :meth:`RunDir.check_new`); it is created, with
        ``config.yaml``, once the config has been validated against the data, so a run that fails
        validation leaves nothing behind.
    map_fn : callable, optional
        ``map_fn(evaluator, batches) -> list of fitness arrays``; default :func:`serial_map`. A map with a
        ``start()`` method (:class:`~genetic_sizer.parallel.RayMap`) is started first; the caller closes it.
    resume : bool
        Continue from the checkpoint in ``run_dir`` (same config and data required). A run whose generations
        are all done returns its result without evolving further.
    on_generation : callable, optional
        Called with a :class:`Generation` after every generation (progress display).

    Raises
    ------
    ConfigError
        The config does not fit the data; :class:`~genetic_sizer.errors.RunDirError` the directory cannot be
        used; :class:`~genetic_sizer.errors.CheckpointError` the checkpoint is missing, damaged or another run's.
    """
    rd = RunDir(run_dir)
    run = _Run(config, prices, map_fn, on_generation)  # validates before anything is written
    if resume:
        run._restore(rd.read_checkpoint(), rd.checkpoint_path)
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

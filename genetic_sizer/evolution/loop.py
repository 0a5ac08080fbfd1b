"""The evolution loop: populations of weight genomes as arrays, single objective or NSGA-II, resumable.

A population is rows of arrays held by the run: ``weights`` (n, n_assets), ``genes`` (n, n_genes, the strategy
genes; no columns without them), ``fitness`` (n, n_objectives) and, for NSGA-II, crowding distances (n,).

Single objective (``objective: sharpe``)::

    population <- seeds (optional classical allocations) + random valid genomes; evaluate
    each generation:
        parents <- population - elite tournaments (select_tournament: DEAP selTournament's rules, in numpy)
        children <- genome.vary_population(parents): pairs (2i, 2i + 1) cross over (line crossover) with
            crossover_prob, each row mutates with mutation_prob (a shift toward/away from one asset, a transfer
            between two, an add / drop / swap of an asset, a Gaussian step or, long/short, a flip; every child
            satisfies the bounds and constraints); their genes: GeneSpace.vary_population (same pairs)
        evaluate the children that differ from their parent (one map call over batches); the others keep their
            parent's fitness
        population <- the elite best of the old population (select_best: DEAP selBest, a stable sort) + children
        hall of fame (HallOfFame: DEAP HallOfFame's rules on arrays), trials, logbook; checkpoint when due

With strategy genes (``evolution.genes``, :mod:`genetic_sizer.evolution.genes`) a genome is a strategy: a row of weights and a
row of genes (drift band, calendar policy, perp leverage). A crossover of two parents crosses their genes too (a
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

Exact resume: a checkpoint (:class:`~genetic_sizer.runs.rundir.RunDir`, JSON + ``.npz``, no pickle) holds everything the
next generation reads: the population with its fitness and crowding distances, the hall of fame or Pareto front
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

import bisect
import functools
import math
import random
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from deap import base, creator, tools

from genetic_sizer.cluster.raymap import serial_map, split_batches
from genetic_sizer.config import RunConfig
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import CheckpointError, ConfigError
from genetic_sizer.evolution import genome as G
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.evolution.genes import GeneSpace
from genetic_sizer.evolution.trials import Trials
from genetic_sizer.runs.rundir import Checkpoint, RunDir

__all__ = [
    "EvolutionResult",
    "Generation",
    "HallOfFame",
    "check_run",
    "evolve",
    "load_result",
    "rank_members",
    "select_best",
    "select_tournament",
]


@dataclass(frozen=True)
class Generation:
    """What the progress callback receives after each generation."""

    gen: int
    generations: int
    record: dict
    elapsed: float
    evals_per_second: float
    timings: dict = field(default_factory=dict)
    """Seconds this generation spent in each phase (``selection``, ``variation``, ``evaluation``, ``archive``,
    ``record``, ``checkpoint``; 0 for a phase it did not run)."""


@dataclass
class EvolutionResult:
    """The end state of a run.

    ``members`` are the hall of fame (single objective, best first) or the Pareto front (compromise order);
    ``members_fitness`` their objective values, ``logbook`` one dict per generation. ``trials`` counts the
    distinct genomes evaluated and the variance of their in-sample per-period Sharpe ratios
    (``{"n", "sharpe_variance"}``, for the deflated Sharpe ratio); ``trial_sample`` is a uniform sample of up
    to 1,000 of them (for the probability of backtest overfitting). See :mod:`genetic_sizer.evolution.trials`.

    With strategy genes (``genes``, a :class:`~genetic_sizer.evolution.genes.GeneSpace`), ``population_genes``,
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


# ---- single-objective selection and archive on arrays ------------------------------------------------------
def select_tournament(key: np.ndarray, k: int, tournsize: int, rng: np.random.Generator) -> np.ndarray:
    """Rows chosen by ``k`` tournaments (DEAP ``selTournament``'s semantics, on arrays).

    Each tournament draws ``tournsize`` aspirants uniformly with replacement (one ``rng.integers`` call draws all
    ``k * tournsize`` of them, tournament by tournament) and keeps the one with the largest ``key`` (the fitness
    with larger = better, DEAP's ``wvalues``). Ties go to the aspirant drawn first, as ``max`` over DEAP's aspirant
    list does.

    Parameters
    ----------
    key : ndarray (n,)
        Larger is better.
    k, tournsize : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int (k,)
        Indices into ``key``, in tournament order.
    """
    key = np.asarray(key, dtype=np.float64)
    aspirants = rng.integers(0, len(key), (k, tournsize))
    best = np.argmax(key[aspirants], axis=1)  # the first maximum: the earliest-drawn aspirant wins a tie
    return aspirants[np.arange(k), best]


def select_best(key: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` rows with the largest ``key``, best first (DEAP ``selBest``: a stable sort, so of equal keys the
    earlier row comes first)."""
    return np.argsort(-np.asarray(key, dtype=np.float64), kind="stable")[:k]


class HallOfFame:
    """The best ``maxsize`` distinct genomes seen, best first, as arrays (DEAP ``HallOfFame``'s semantics).

    Two genomes are the same when their weights and their strategy genes are equal (``==`` element by element, as
    ``np.array_equal``: 0.0 and -0.0 are equal). :meth:`update` goes through the rows in order, as DEAP's does: a row
    enters when the hall is not full or its key is strictly larger than the last member's, and no member is the
    same genome; a full hall then drops its last member. A newcomer goes after every member with a strictly larger
    key and before members with an equal key (DEAP's ``bisect_right`` insert): among equal fitness the newest comes
    first. The hall is exactly its three arrays (``weights``, ``genes``, ``fitness``), so saving them and
    :meth:`restore` continues identically.

    Parameters
    ----------
    maxsize : int
    n_assets, n_genes : int
    maximize : bool
        Whether larger fitness is better (the single objective's direction).
    """

    def __init__(self, maxsize: int, n_assets: int, n_genes: int, maximize: bool = True):
        self.maxsize = int(maxsize)
        self.sign = 1.0 if maximize else -1.0
        self.n_assets, self.n_genes = int(n_assets), int(n_genes)
        self.restore(np.empty((0, n_assets)), np.empty((0, 1)), np.empty((0, n_genes)))

    def __len__(self) -> int:
        return len(self.weights)

    @staticmethod
    def _identity(weights: np.ndarray, genes: np.ndarray) -> list[bytes]:
        """A genome's identity per row: its weights and genes as bytes, -0.0 read as 0.0 (equal values, equal
        bytes)."""
        rows = np.hstack([weights, genes]) + 0.0  # -0.0 + 0.0 is 0.0
        return [r.tobytes() for r in rows]

    def restore(self, weights: np.ndarray, fitness: np.ndarray, genes: np.ndarray | None = None) -> None:
        """Set the members (best first), e.g. from a checkpoint."""
        self.weights = np.array(weights, dtype=np.float64).reshape(-1, self.n_assets)
        self.fitness = np.array(fitness, dtype=np.float64).reshape(-1, 1)
        self.genes = (
            np.empty((len(self.weights), self.n_genes))
            if genes is None
            else np.array(genes, dtype=np.float64).reshape(len(self.weights), self.n_genes)
        )
        self._ids = self._identity(self.weights, self.genes)

    def update(self, weights: np.ndarray, genes: np.ndarray, fitness: np.ndarray) -> int:
        """Offer the rows of a population, in order; returns how many of them the hall holds afterwards."""
        key = self.sign * np.asarray(fitness, dtype=np.float64)[:, 0]
        candidates = np.arange(len(key))
        if len(self) >= self.maxsize:  # the last member only gets better: a row not above it now never enters
            candidates = candidates[key > self.sign * self.fitness[-1, 0]]
        if not len(candidates):
            return 0
        cand_ids = self._identity(weights[candidates], genes[candidates])
        present = set(self._ids)
        if all(i in present for i in cand_ids):  # only members offered again (the elite): none can enter
            return 0
        ids = list(self._ids)
        neg = (-self.sign * self.fitness[:, 0]).tolist()  # ascending: -key, best first
        rows: list = [("m", k) for k in range(len(ids))]  # where each member's row comes from
        for c, i in enumerate(candidates.tolist()):
            k = float(key[i])
            if len(ids) >= self.maxsize and not -k < neg[-1]:
                continue
            if cand_ids[c] in present:
                continue
            if len(ids) >= self.maxsize:
                present.discard(ids.pop())
                neg.pop()
                rows.pop()
            pos = bisect.bisect_left(neg, -k)  # after every member with a larger key, before equal ones
            ids.insert(pos, cand_ids[c])
            neg.insert(pos, -k)
            rows.insert(pos, ("c", i))
            present.add(cand_ids[c])
        if all(src == "m" for src, _ in rows) and len(rows) == len(self):
            return 0
        entered = sum(src == "c" for src, _ in rows)
        pick = lambda members, new: np.stack([members[k] if src == "m" else new[k] for src, k in rows])  # noqa: E731
        self.weights = pick(self.weights, weights).reshape(-1, self.n_assets)
        self.genes = pick(self.genes, genes).reshape(len(rows), self.n_genes)
        self.fitness = pick(self.fitness, np.asarray(fitness, dtype=np.float64)).reshape(-1, 1)
        self._ids = ids
        return entered


@dataclass
class _Step:
    """What one generation computed, not yet part of the run (see :meth:`_Run._commit`)."""

    weights: np.ndarray
    genes: np.ndarray
    fitness: np.ndarray
    crowding: np.ndarray
    evaluated: np.ndarray  # the rows evaluated (weights then genes), in order
    trial_sharpe: np.ndarray
    chosen: list | None = None  # NSGA-II: the DEAP individuals of the new population (for the Pareto front)


class _Run:
    """One evolution. The constructor validates the config against the data (genome space, NSGA-II rules) and
    touches no file; :meth:`run` writes the checkpoints and the logbook into a :class:`RunDir`.

    The population is held as arrays: ``weights`` (n, n_assets), ``genes`` (n, n_genes; no columns without
    strategy genes), ``fitness`` (n, n_objectives) and ``crowding`` (n,; NSGA-II crowding distances, NaN for one
    objective). ``timings`` holds the seconds the last generation spent in each phase.
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
        self.space = G.GenomeSpace.from_config(prices.symbols, pf)
        self.genes = GeneSpace.from_config(config)
        self.n_genes = 0 if self.genes is None else self.genes.n
        self.evaluator = Evaluator.from_config(prices, config)
        self._evaluate_fn = self.evaluator.with_trial_sharpe()  # objectives, then each genome's per-period Sharpe
        self.maximize = self.evaluator.maximize
        self.n_obj = len(self.maximize)
        self._sign = np.where(np.array(self.maximize), 1.0, -1.0)
        self.Individual = _deap_classes(self.maximize)
        self.rng = np.random.default_rng(ev.seed)
        self._py_state = random.Random(ev.seed).getstate()
        self.logbook: list[dict] = []
        n_assets = self.space.n_assets
        if config.multi_objective:
            self.hof = tools.ParetoFront(similar=_same_genome)
        else:
            self.hof = HallOfFame(ev.hall_of_fame, n_assets, self.n_genes, self.maximize[0])
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

    def _ind(self, w, genes=None) -> object:
        ind = self.Individual(np.array(w, dtype=np.float64))
        ind.genes = np.empty(0) if genes is None else np.array(genes, dtype=np.float64)
        return ind

    def _individuals(self, weights, genes, fitness, crowding=None) -> list:
        """DEAP individuals of rows (NSGA-II's selections and Pareto front only); each knows its ``row``."""
        out = []
        for k in range(len(weights)):
            ind = self._ind(weights[k], genes[k] if self.n_genes else None)
            ind.fitness.values = tuple(fitness[k].tolist())
            if crowding is not None and not math.isnan(crowding[k]):
                ind.fitness.crowding_dist = float(crowding[k])
            ind.row = k
            out.append(ind)
        return out

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
        out = np.concatenate([np.asarray(r, dtype=np.float64).reshape(-1, n_obj + 1) for r in results])
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

        Draws from the run's generator, in this order: the crossover coins of the pairs, the mutation coins of the
        rows, one 64-bit seed per row (the weights' variation, :func:`genetic_sizer.evolution.genome.vary_population`), then
        the genes' variation (:meth:`GeneSpace.vary_population`, with the same pairs; nothing without genes). A
        child equal to its parent in weights and genes keeps the parent's row (and fitness)."""
        ev, rng = self.config.evolution, self.rng
        n = len(weights)
        cross = rng.random(n // 2) < ev.crossover_prob
        mutating = rng.random(n) < ev.mutation_prob
        seeds = rng.integers(0, 2**64, n, dtype=np.uint64)
        children = G.vary_population(
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
        child_genes = genes
        if self.genes is not None:
            child_genes = self.genes.vary_population(
                genes, cross, rng, ev.crossover_alpha, ev.gene_mutation_prob, ev.gene_sigma
            )
        changed = (children != weights).any(axis=1) | (child_genes != genes).any(axis=1)
        children[~changed] = weights[~changed]  # the parent's bytes (0.0 and -0.0 compare equal)
        return children, child_genes.copy(), changed

    def _record(self, nevals: int) -> dict:
        fit = self.fitness
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
        rec["diversity"] = G.diversity(self.weights)
        if self.genes is not None:  # where the population's strategies are
            genes = self.genes_
            th = self.genes.thresholds(genes)
            if th is not None:
                rec["threshold_mean"] = float(th.mean())
                rec["threshold_std"] = float(th.std())
            if self.genes.rebalance is not None:
                col = genes[:, self.genes.names.index("rebalance")].astype(np.int64)
                counts = np.bincount(col, minlength=len(self.genes.rebalance))
                for k, code in enumerate(self.genes.rebalance):
                    rec[f"rebalance_{code}"] = int(counts[k])
            lev = self.genes.leverages(genes)
            if lev is not None:
                rec["leverage_mean"] = float(lev.mean())
                rec["leverage_std"] = float(lev.std())
        self.logbook.append(rec)
        return rec

    # ---- generations -------------------------------------------------------------------------
    def _initial(self) -> _Step:
        ev = self.config.evolution
        t = time.perf_counter()
        seeds = np.empty((0, self.space.n_assets))
        if ev.seed_with_classical:
            from genetic_sizer.evolution.seeding import classical_allocations

            allocations, skipped = classical_allocations(self.prices, self.space)
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
        crowding = np.full(len(weights), np.nan)
        chosen = None
        if self.config.multi_objective:  # crowding distances, and NSGA-II's order
            inds = self._individuals(weights, genes, fitness)
            with self._py_random():
                chosen = tools.selNSGA2(inds, len(inds))
            order = np.array([c.row for c in chosen])
            weights, genes, fitness = weights[order], genes[order], fitness[order]
            crowding = np.array([c.fitness.crowding_dist for c in chosen], dtype=np.float64)
            self._tick("selection", t)
        return _Step(weights, genes, fitness, crowding, rows, sharpe, chosen)

    def _next(self) -> _Step:
        ev = self.config.evolution
        t = time.perf_counter()
        if self.config.multi_objective:
            inds = self._individuals(self.weights, self.genes_, self.fitness, self.crowding)
            with self._py_random():
                parents = np.array([p.row for p in tools.selTournamentDCD(inds, len(inds))])
        else:
            key = self._sign[0] * self.fitness[:, 0]
            parents = select_tournament(key, ev.population - ev.elite, ev.tournament_size, self.rng)
        t = self._tick("selection", t)
        weights, genes, changed = self._vary(self.weights[parents], self.genes_[parents])
        fitness = self.fitness[parents]
        t = self._tick("variation", t)
        new_fit, rows, sharpe = self._evaluate(weights[changed], genes[changed])
        fitness[changed] = new_fit
        t = self._tick("evaluation", t)
        if self.config.multi_objective:
            all_w = np.vstack([self.weights, weights])
            all_g = np.vstack([self.genes_, genes])
            all_f = np.vstack([self.fitness, fitness])
            inds = self._individuals(all_w, all_g, all_f)
            with self._py_random():
                chosen = tools.selNSGA2(inds, ev.population)
            order = np.array([c.row for c in chosen])
            crowding = np.array([c.fitness.crowding_dist for c in chosen], dtype=np.float64)
            self._tick("selection", t)
            return _Step(all_w[order], all_g[order], all_f[order], crowding, rows, sharpe, chosen)
        elite = select_best(self._sign[0] * self.fitness[:, 0], ev.elite)
        self._tick("selection", t)
        return _Step(
            np.vstack([self.weights[elite], weights]),
            np.vstack([self.genes_[elite], genes]),
            np.vstack([self.fitness[elite], fitness]),
            np.full(ev.population, np.nan),
            rows,
            sharpe,
        )

    def _commit(self, step: _Step) -> dict:
        """Make ``step`` the run's state: population, trials, counters, archive, logbook. Returns the record."""
        self._consistent = False
        t = time.perf_counter()
        self.weights, self.genes_, self.fitness, self.crowding = step.weights, step.genes, step.fitness, step.crowding
        self.trials.add(step.evaluated, step.trial_sharpe)
        nevals = len(step.evaluated)
        self.evaluations += nevals
        self.gen += 1
        if self.config.multi_objective:
            self.hof.update(step.chosen)
        else:
            self.hof.update(self.weights, self.genes_, self.fitness)
        t = self._tick("archive", t)
        rec = self._record(nevals)
        self._tick("record", t)
        self._consistent = True
        return rec

    # ---- checkpoints -------------------------------------------------------------------------
    @functools.cached_property
    def _fingerprints(self) -> tuple[str, str]:
        """The config's and the data's SHA-256 (computed once: every checkpoint records them)."""
        return self.config.sha256(), self.prices.sha256()

    def _state(self) -> Checkpoint:
        archive, archive_fit, archive_genes = self._archive_arrays()
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

    def _write(self, run_dir: RunDir) -> None:
        """Checkpoint the last finished generation, then the logbook beside it."""
        run_dir.write_checkpoint(self._state())
        run_dir.write_logbook(self.logbook)

    def _archive_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The hall of fame / Pareto front as (members, fitness, genes), best first (the Pareto front in DEAP's
        order)."""
        if isinstance(self.hof, HallOfFame):
            return self.hof.weights.copy(), self.hof.fitness.copy(), self.hof.genes.copy()
        items = list(self.hof)
        if not items:
            return np.empty((0, self.space.n_assets)), np.empty((0, self.n_obj)), np.empty((0, self.n_genes))
        fit = np.array([i.fitness.values for i in items], dtype=np.float64)
        genes = np.array([i.genes for i in items], dtype=np.float64).reshape(len(items), self.n_genes)
        return np.stack(items), fit, genes

    def _restore_archive(self, members: np.ndarray, fitness: np.ndarray, genes: np.ndarray | None = None) -> None:
        """Rebuild the archive from its saved arrays (best first). The hall of fame is its arrays. The Pareto front
        goes through DEAP's public API: ``insert`` bisects DEAP's ascending keys and puts a newcomer before members
        of equal fitness, so inserting worst first reproduces the saved order exactly, ties included."""
        if isinstance(self.hof, HallOfFame):
            self.hof.restore(members, fitness, genes)
            return
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
        if cp.fitness.shape[1] != self.n_obj:
            problems.append(f"{cp.fitness.shape[1]} objectives, the config has {self.n_obj}")
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
        self.weights = np.array(cp.population, dtype=np.float64)
        self.genes_ = np.array(cp.population_genes, dtype=np.float64) if self.n_genes else np.empty((n, 0))
        self.fitness = np.array(cp.fitness, dtype=np.float64)
        self.crowding = np.array(cp.crowding, dtype=np.float64)
        self._restore_archive(cp.archive, cp.archive_fitness, cp.archive_genes if self.n_genes else None)
        self.logbook = [dict(r) for r in cp.logbook]
        self.rng.bit_generator.state = cp.np_rng
        self._py_state = cp.py_random
        self.seeds = cp.seeds
        self.trials.restore(*cp.trials)

    # ---- main loop ---------------------------------------------------------------------------
    def run(self, run_dir: RunDir) -> EvolutionResult:
        """Evolve until the configured generation, checkpointing into ``run_dir``.

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
        on_disk = self.gen if self.gen >= 0 else None  # the generation the run directory holds
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
                    self._write(run_dir)
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
                    self._write(run_dir)
            raise
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
            population=self.weights.copy(),
            fitness=self.fitness.copy(),
            members=members,
            members_fitness=fit,
            logbook=[dict(r) for r in self.logbook],
            evaluations=self.evaluations,
            seeds=self.seeds,
            trials=self.trials.summary(),
            trial_sample=sample[:, :n_assets].copy(),
            genes=self.genes,
            population_genes=self.genes_.copy(),
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
        ``map_fn(evaluator, batches) -> list of fitness arrays``; default :func:`serial_map`. A map with a
        ``start()`` method (:class:`~genetic_sizer.cluster.raymap.RayMap`) is started first; the caller closes it.
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

"""What an evolution reports: the progress of each generation (:class:`Generation`) and its end state
(:class:`EvolutionResult`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from genetic_sizer.config import RunConfig
from genetic_sizer.evolution.genes import GeneSpace
from genetic_sizer.evolution.selection import rank_members
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.evolution.variation import diversity

__all__ = ["EvolutionResult", "Generation", "generation_record", "result_of"]


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
    space: GenomeSpace
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


def _mean_std(col: np.ndarray) -> tuple[float, float]:
    """``(float(col.mean()), float(col.std()))`` bit for bit, in three numpy calls instead of numpy's eight: the sum
    (pairwise, as ``mean`` and ``std`` take it), divided by the count; the deviations from that mean, squared, summed
    and divided by the count; the square root (correctly rounded, as ``numpy.sqrt``)."""
    n = len(col)
    mean = float(np.add.reduce(col)) / n
    dev = col - mean
    dev *= dev
    return mean, math.sqrt(float(np.add.reduce(dev)) / n)


def generation_record(run, nevals: int) -> dict:
    """The logbook row of the generation ``run`` (an :class:`~genetic_sizer.evolution.loop.Evolution`) just
    finished: counters, each objective's best, mean and standard deviation over the live genomes, the wiped-out
    count, the diversity and, with genes, where the population's strategies are. With a resampled fitness
    (``robust.resample``) the row also says which (``fitness``: :attr:`~genetic_sizer.evolution.evaluator.Evaluator.
    fitness_label`), and the objectives' statistics are of that fitness."""
    fit = run.fitness
    rec = {"gen": run.gen, "nevals": nevals, "evaluations": run.evaluations}
    if run.evaluator.resampling is not None:  # the plain GA's rows stay as they were
        rec["fitness"] = run.evaluator.fitness_label
    # statistics of the live genomes only: a wiped-out genome's fitness is a sentinel, not a value
    wiped = run.evaluator.is_wiped_out(fit)
    live = fit[~wiped]
    for j, name in enumerate(run.config.objective):
        col = live[:, j]
        if len(col):
            rec[f"{name}_best"] = float(col.max() if run.maximize[j] else col.min())
            rec[f"{name}_mean"], rec[f"{name}_std"] = _mean_std(col)
        else:  # every genome of the generation was wiped out
            rec[f"{name}_best"] = rec[f"{name}_mean"] = rec[f"{name}_std"] = math.nan
    rec["wiped_out"] = int(wiped.sum())
    rec["diversity"] = diversity(run.weights)
    if run.genes is not None:  # where the population's strategies are
        genes = run.genes_
        th = run.genes.thresholds(genes)
        if th is not None:
            rec["threshold_mean"] = float(th.mean())
            rec["threshold_std"] = float(th.std())
        if run.genes.rebalance is not None:
            col = genes[:, run.genes.names.index("rebalance")].astype(np.int64)
            counts = np.bincount(col, minlength=len(run.genes.rebalance))
            for k, code in enumerate(run.genes.rebalance):
                rec[f"rebalance_{code}"] = int(counts[k])
        lev = run.genes.leverages(genes)
        if lev is not None:
            rec["leverage_mean"] = float(lev.mean())
            rec["leverage_std"] = float(lev.std())
        vt = run.genes.vol_targets(genes)
        if vt is not None:
            rec["vol_target_mean"] = float(vt.mean())
            rec["vol_target_std"] = float(vt.std())
    return rec


def result_of(run) -> EvolutionResult:
    """The end state of ``run`` (an :class:`~genetic_sizer.evolution.loop.Evolution`): its archive best first
    (a Pareto front in compromise order), population, logbook, trials."""
    members, fit, members_genes = run.strategy.arrays()
    if run.config.multi_objective:
        order = rank_members(fit, run.maximize)
        members, fit, members_genes = members[order], fit[order], members_genes[order]
    n_assets = run.space.n_assets
    sample = run.trials.sample
    return EvolutionResult(
        config=run.config,
        space=run.space,
        population=run.weights.copy(),
        fitness=run.fitness.copy(),
        members=members,
        members_fitness=fit,
        logbook=[dict(r) for r in run.logbook],
        evaluations=run.evaluations,
        seeds=run.seeds,
        trials=run.trials.summary(),
        trial_sample=sample[:, :n_assets].copy(),
        genes=run.genes,
        population_genes=run.genes_.copy(),
        members_genes=members_genes,
        trial_sample_genes=sample[:, n_assets:].copy(),
    )

"""How a generation selects and what it archives, one strategy per kind of run over the one loop of
:mod:`genetic_sizer.evolution.loop`.

:class:`SingleObjective`: DEAP ``eaSimple``'s rules on arrays: parents by tournaments, the elite best of the old
population kept, a hall of fame. :class:`NSGA2`: DEAP's NSGA-II example: ``selTournamentDCD`` for parents,
``selNSGA2`` over parents + children, a ``ParetoFront`` of every population it kept; DEAP individuals are built from
the rows for these calls only, and DEAP's module-level ``random`` runs on the run's own state.
"""

from __future__ import annotations

import math

import numpy as np
from deap import tools

from genetic_sizer.evolution.selection import HallOfFame, _deap_classes, _same_genome, select_best, select_tournament

__all__ = ["NSGA2", "SingleObjective"]


class SingleObjective:
    """Tournaments, an elite and a hall of fame, on arrays. ``run`` is the :class:`~genetic_sizer.evolution.loop.
    Evolution` it serves (its population, generator and config)."""

    def __init__(self, run):
        self.run = run
        ev = run.config.evolution
        self.archive = HallOfFame(ev.hall_of_fame, run.space.n_assets, run.n_genes, run.maximize[0])

    def _key(self) -> np.ndarray:
        return self.run._sign[0] * self.run.fitness[:, 0]

    def initial(self, weights, genes, fitness):
        """The first population as evaluated, no crowding distances."""
        return weights, genes, fitness, np.full(len(weights), np.nan), None

    def parents(self) -> np.ndarray:
        ev = self.run.config.evolution
        return select_tournament(self._key(), ev.population - ev.elite, ev.tournament_size, self.run.rng)

    def survivors(self, weights, genes, fitness):
        """The elite best of the old population, then the children."""
        run, ev = self.run, self.run.config.evolution
        elite = select_best(self._key(), ev.elite)
        return (  # rows of 2-D arrays: concatenate is vstack without its per-array checks
            np.concatenate((run.weights[elite], weights)),
            np.concatenate((run.genes_[elite], genes)),
            np.concatenate((run.fitness[elite], fitness)),
            np.full(ev.population, np.nan),
            None,
        )

    def update(self, chosen) -> None:
        run = self.run
        self.archive.update(run.weights, run.genes_, run.fitness)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The hall of fame as (members, fitness, genes), best first."""
        hof = self.archive
        return hof.weights.copy(), hof.fitness.copy(), hof.genes.copy()

    def restore(self, members: np.ndarray, fitness: np.ndarray, genes: np.ndarray | None) -> None:
        self.archive.restore(members, fitness, genes)

    def archive_problem(self, n: int) -> str | None:
        keep = self.run.config.evolution.hall_of_fame
        return f"a hall of fame of {n}, the config keeps {keep}" if n > keep else None


class NSGA2:
    """NSGA-II through DEAP's selections and ``ParetoFront``."""

    def __init__(self, run):
        self.run = run
        self.Individual = _deap_classes(run.maximize)
        self.archive = tools.ParetoFront(similar=_same_genome)

    def _ind(self, w, genes=None) -> object:
        ind = self.Individual(np.array(w, dtype=np.float64))
        ind.genes = np.empty(0) if genes is None else np.array(genes, dtype=np.float64)
        return ind

    def _individuals(self, weights, genes, fitness, crowding=None) -> list:
        """DEAP individuals of rows; each knows its ``row``."""
        out = []
        with_genes = self.run.n_genes > 0
        for k in range(len(weights)):
            ind = self._ind(weights[k], genes[k] if with_genes else None)
            ind.fitness.values = tuple(fitness[k].tolist())
            if crowding is not None and not math.isnan(crowding[k]):
                ind.fitness.crowding_dist = float(crowding[k])
            ind.row = k
            out.append(ind)
        return out

    def _select(self, weights, genes, fitness, k: int):
        """``selNSGA2`` of ``k`` rows: the rows in NSGA-II's order, their crowding distances, the individuals."""
        inds = self._individuals(weights, genes, fitness)
        with self.run._py_random():
            chosen = tools.selNSGA2(inds, k)
        order = np.array([c.row for c in chosen])
        crowding = np.array([c.fitness.crowding_dist for c in chosen], dtype=np.float64)
        return weights[order], genes[order], fitness[order], crowding, chosen

    def initial(self, weights, genes, fitness):
        """The first population in NSGA-II's order, with its crowding distances."""
        return self._select(weights, genes, fitness, len(weights))

    def parents(self) -> np.ndarray:
        run = self.run
        inds = self._individuals(run.weights, run.genes_, run.fitness, run.crowding)
        with run._py_random():
            return np.array([p.row for p in tools.selTournamentDCD(inds, len(inds))])

    def survivors(self, weights, genes, fitness):
        """``selNSGA2`` over the old population and the children."""
        run = self.run
        all_w = np.vstack([run.weights, weights])
        all_g = np.vstack([run.genes_, genes])
        all_f = np.vstack([run.fitness, fitness])
        return self._select(all_w, all_g, all_f, run.config.evolution.population)

    def update(self, chosen) -> None:
        self.archive.update(chosen)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The Pareto front as (members, fitness, genes), in DEAP's order."""
        run = self.run
        items = list(self.archive)
        if not items:
            return np.empty((0, run.space.n_assets)), np.empty((0, run.n_obj)), np.empty((0, run.n_genes))
        fit = np.array([i.fitness.values for i in items], dtype=np.float64)
        genes = np.array([i.genes for i in items], dtype=np.float64).reshape(len(items), run.n_genes)
        return np.stack(items), fit, genes

    def restore(self, members: np.ndarray, fitness: np.ndarray, genes: np.ndarray | None) -> None:
        """Through DEAP's public API: ``insert`` bisects DEAP's ascending keys and puts a newcomer before members of
        equal fitness, so inserting worst first reproduces the saved order exactly, ties included."""
        self.archive.clear()
        if genes is None:
            genes = [None] * len(members)
        for w, f, g in zip(members[::-1], fitness[::-1], genes[::-1], strict=True):
            ind = self._ind(w, g)
            ind.fitness.values = tuple(float(x) for x in f)
            self.archive.insert(ind)

    def archive_problem(self, n: int) -> str | None:
        return None

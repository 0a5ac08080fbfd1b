"""Selection and archives on arrays: DEAP's single-objective rules (``selTournament``, ``selBest``, ``HallOfFame``)
without individuals, the compromise order of a Pareto front, and the DEAP classes NSGA-II's selections need."""

from __future__ import annotations

import bisect

import numpy as np
from deap import base, creator

__all__ = ["HallOfFame", "rank_members", "select_best", "select_tournament"]


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
        fit = np.asarray(fitness, dtype=np.float64)
        key = self.sign * fit[:, 0]
        if len(self) >= self.maxsize:  # the last member only gets better: a row not above it now never enters
            candidates = np.flatnonzero(key > self.sign * self.fitness[-1, 0])
        else:
            candidates = np.arange(len(key))
        if not len(candidates):
            return 0
        cand_w, cand_g = weights[candidates], genes[candidates]
        cand_ids = self._identity(cand_w, cand_g)
        present = set(self._ids)
        if present.issuperset(cand_ids):  # only members offered again (the elite): none can enter
            return 0
        n_members = len(self._ids)
        ids = list(self._ids)
        neg = (-self.sign * self.fitness[:, 0]).tolist()  # ascending: -key, best first
        rows = list(range(n_members))  # where each row comes from: k < n_members a member, else candidate k - n_members
        for c, k in enumerate(key[candidates].tolist()):
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
            rows.insert(pos, n_members + c)
            present.add(cand_ids[c])
        entered = sum(r >= n_members for r in rows)
        if not entered and len(rows) == n_members:
            return 0
        order = np.array(rows, dtype=np.intp)  # one gather per array from the members followed by the candidates
        self.weights = np.concatenate([self.weights, cand_w])[order]
        self.genes = np.concatenate([self.genes, cand_g])[order]
        self.fitness = np.concatenate([self.fitness, fit[candidates, :1]])[order]
        self._ids = ids
        return entered

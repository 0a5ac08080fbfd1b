"""Cardinality-constrained efficient frontiers: P points traced by a GA over the genome space.

The constraints are the genome space's: at most ``max_assets`` held (exactly K with ``min_assets = max_assets``, the
model of Chang, Meade, Beasley and Sharaiha 2000), every held weight in ``[min_position, max_weight]``, weights summing
to 1. Two ways to trace the frontier, measured against each other in ``experiments/bench_frontier.py``:

* ``method="weighted"`` (Chang et al.'s): for ``P`` values of ``lam`` from 1 (minimum risk) down to 0 (maximum
  return), minimize ``lam * risk - (1 - lam) * return`` with a steady GA (tournaments, the compiled constraint-keeping
  operators of :mod:`genetic_sizer.evolution.variation`, an elite); each point's population starts from the final
  population of its neighbour (the previous ``lam``), so a point refines a nearby optimum instead of starting afresh.
  The ``lam`` values are spaced so that the points spread along the frontier:

  - ``spacing="return"`` (the default with moments): the ``lam`` at which the *unconstrained* long-only frontier
    (weights in ``[0, max_weight]``) has ``P`` evenly spaced returns, from its minimum-variance to its maximum-return
    portfolio (how OR-Library's ``portef`` files and skfolio's ``efficient_frontier_size`` sample a frontier). That
    frontier is traced exactly by :func:`~genetic_sizer.backtest.kernels.moments.support_qp` on all assets over a grid
    of ``t = (1 - lam) / lam`` (on a piece of the critical line the optimum is affine in ``t``, so interpolating ``t``
    at a target return is exact within a piece); its QP iterations are counted as evaluations of the first point;
  - ``spacing="slope"`` (the default without moments): ``lam_p = s_p / (s_p + 1)`` with slopes ``s_p = c
    tan(theta_p)``, ``theta_p`` evenly spaced over a quarter turn, ``c`` the frontier's typical slope ``d return /
    d risk`` (the span of the single assets' returns over the span of their risks);
  - ``spacing="linear"``: Chang et al.'s evenly spaced ``lam``.
* ``method="nsga2"``: one NSGA-II run on (risk, return) whose final front is thinned to ``P`` points evenly spread
  in return (see :func:`trace_nsga2`).

With moments (``mu``, ``cov``) every genome the GA keeps can be *polished*: its weights replaced by the exact optimum
of the weighted objective on its support (:func:`~genetic_sizer.backtest.kernels.moments.support_qp`, a convex
program once the support is fixed), which the GA then searches over supports. Every evaluation is counted: a genome
scored by the population kernel is one, and each active-set iteration of a polish (one candidate portfolio) is one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from genetic_sizer.backtest.kernels.moments import population_moments, support_qp
from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.selection import select_best, select_tournament
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.evolution.variation import vary_population

__all__ = [
    "METHODS",
    "SPACINGS",
    "FrontierOptions",
    "FrontierResult",
    "frontier_lambdas",
    "moments_evaluator",
    "return_lambdas",
    "trace_frontier",
]

METHODS = ("weighted", "nsga2")
SPACINGS = ("return", "slope", "linear")

Evaluate = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``evaluate(W) -> (returns, risks)`` for a population (n, n_assets)."""


@dataclass
class FrontierResult:
    """The traced points, lowest risk first: weights (P, n_assets), their return and risk, the ``lam`` of each point
    (NaN for NSGA-II), evaluations used per point and in all, and the non-dominated (return, risk) of every portfolio
    the search evaluated (the *archive*: Chang et al.'s heuristic frontier of all efficient points found)."""

    names: tuple[str, ...]
    weights: np.ndarray
    returns: np.ndarray
    risks: np.ndarray
    lambdas: np.ndarray
    evaluations: np.ndarray
    seconds: float
    method: str
    settings: dict = field(default_factory=dict)
    archive_returns: np.ndarray = field(default_factory=lambda: np.empty(0))
    archive_risks: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def total_evaluations(self) -> int:
        return int(self.evaluations.sum())


def moments_evaluator(mu: np.ndarray, cov: np.ndarray) -> Evaluate:
    """``evaluate(W) -> (w'mu, w'Sigma w)`` through the compiled population kernel."""
    mu = np.ascontiguousarray(mu, dtype=np.float64)
    cov = np.ascontiguousarray(cov, dtype=np.float64)

    def evaluate(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return population_moments(np.ascontiguousarray(W, dtype=np.float64), mu, cov)

    return evaluate


@dataclass(frozen=True)
class FrontierOptions:
    """The constraints and tracing settings of one frontier, as :func:`trace_frontier` takes them (the flags of
    ``genetic-sizer frontier``): ``FrontierOptions(...).kwargs()`` are its keywords."""

    k: int | None = None
    exact: bool = False
    min_weight: float = 0.0
    max_weight: float = 1.0
    points: int = 50
    seed: int = 0
    method: str = "weighted"
    budget: int | None = None
    spacing: str | None = None

    def kwargs(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def frontier_lambdas(points: int, spacing: str = "slope", scale: float | None = None) -> np.ndarray:
    """``points`` values of ``lam`` from 1 down to 0 (see the module docstring); ``scale``: the typical slope
    ``d return / d risk`` (needed for ``spacing="slope"``)."""
    if points < 2:
        raise ConfigError(f"--points must be at least 2, got {points}")
    if spacing not in SPACINGS:
        raise ConfigError(f"spacing must be one of {list(SPACINGS)}, got {spacing!r}")
    if spacing == "return":
        raise ConfigError("spacing 'return' reads the moments: see return_lambdas")
    if spacing == "linear" or scale is None or not np.isfinite(scale) or scale <= 0:
        return np.linspace(1.0, 0.0, points)
    c = float(scale)
    # slopes s = lam / (1 - lam) evenly spaced in arctan(s / c): a quarter turn from flat (lam 0) to vertical (lam 1)
    theta = np.linspace(np.pi / 2.0, 0.0, points)
    s = c * np.tan(theta[1:-1])
    return np.concatenate(([1.0], s / (s + 1.0), [0.0]))


def return_lambdas(points: int, mu, cov, max_weight: float = 1.0, grid: int = 400) -> tuple[np.ndarray, int]:
    """``points`` values of ``lam`` from 1 down to 0 at which the unconstrained long-only frontier (every weight in
    ``[0, max_weight]``) has evenly spaced returns (``spacing="return"``, see the module docstring), and the QP
    iterations spent (each one candidate portfolio)."""
    if points < 2:
        raise ConfigError(f"--points must be at least 2, got {points}")
    mu = np.ascontiguousarray(mu, dtype=np.float64)
    cov = np.ascontiguousarray(cov, dtype=np.float64)
    n = mu.size
    if max_weight * n < 1.0 - 1e-12:
        raise ConfigError(f"--max-weight {max_weight!r} x {n} assets is below 1: no portfolio is feasible")
    sup = np.arange(n)
    lo, hi = np.zeros(n), np.full(n, float(max_weight))
    var1 = np.diag(cov)
    c = max(float(np.ptp(var1)), 1e-300) / max(float(np.ptp(mu)), 1e-300)  # var per return: the scale of t
    ts = np.concatenate(([0.0], c * np.geomspace(1e-5, 1e5, grid)))
    w = np.clip(np.full(n, 1.0 / n), 0.0, max_weight)
    rets = np.empty(ts.size)
    ws = np.empty((ts.size, n))
    used = 0

    def solve(t, w0):
        w, its, ok = support_qp(sup, w0, mu, cov, 1.0 / (1.0 + t), lo, hi)
        for _ in range(50):  # from 1/N on hundreds of assets the active set can need more than one call's limit
            if ok:
                break
            w, more, ok = support_qp(sup, w, mu, cov, 1.0 / (1.0 + t), lo, hi)
            its += more
        return w, float(w @ mu), int(its)

    for i, t in enumerate(ts):  # warm-started along the critical line: a few iterations each
        w, rets[i], its = solve(t, w)
        ws[i] = w
        used += its
    w_top, its, _ok = support_qp(sup, w, mu, cov, 0.0, lo, hi)
    used += int(its)
    top = float(w_top @ mu)
    rets = np.maximum.accumulate(rets)  # the optimum's return never falls as t grows (rounding aside)
    targets = np.linspace(rets[0], top, points)
    tol = 1e-12 * max(abs(top), abs(rets[0]), 1e-300)
    t_at = np.empty(points - 2)
    for p, target in enumerate(targets[1:-1]):
        # regula falsi in t between the grid points that bracket the target: exact in one step within a piece
        b = int(np.searchsorted(rets, target))
        if b >= ts.size:  # beyond the grid's last return: the grid's end
            t_at[p] = ts[-1]
            continue
        if rets[b] == target or b == 0:
            t_at[p] = ts[b]
            continue
        ta, ra, tb, rb = ts[b - 1], rets[b - 1], ts[b], rets[b]
        t = ta
        for _ in range(40):
            t = ta + (target - ra) * (tb - ta) / (rb - ra)
            _w, r, its = solve(t, ws[b])
            used += its
            if abs(r - target) <= tol:
                break
            if r < target:
                ta, ra = t, r
            else:
                tb, rb = t, r
        t_at[p] = t
    return np.concatenate(([1.0], 1.0 / (1.0 + t_at), [0.0])), used


def _space(names, k: int | None, exact: bool, min_weight: float, max_weight: float) -> GenomeSpace:
    return GenomeSpace.create(
        names,
        "longonly",
        0.0,
        max_weight,
        max_assets=k,
        min_assets=k if exact else None,
        min_position=min_weight,
    )


class _Polisher:
    """The exact optimum on a genome's support (moments only), with its evaluation count."""

    def __init__(self, space: GenomeSpace, mu, cov):
        self.mu = np.ascontiguousarray(mu, dtype=np.float64)
        self.cov = np.ascontiguousarray(cov, dtype=np.float64)
        self.lo = float(space.min_position)
        self.hi = np.asarray(space.upper, dtype=np.float64)
        self.k_min = space.min_assets

    def __call__(self, w: np.ndarray, lam: float, max_it: int = 200) -> tuple[np.ndarray, int]:
        """The polished ``w`` and the iterations spent (at most ``max_it``: a stopped polish keeps its last feasible
        iterate, no worse than ``w``)."""
        sup = np.flatnonzero(w)
        x, its, _ok = support_qp(
            sup, w[sup].copy(), self.mu, self.cov, float(lam), np.full(sup.size, self.lo), self.hi[sup].copy(), max_it
        )
        out = np.zeros_like(w)
        out[sup] = _exact(x, self.lo, self.hi[sup])
        if np.count_nonzero(out) < self.k_min:  # the optimum on the support closes positions min_assets needs
            return w, int(its)
        return out, int(its)


def _exact(x: np.ndarray, lo: float, hi: np.ndarray) -> np.ndarray:
    """``x`` clipped to ``[lo, hi]`` with its sum moved to 1 by the weights that have room (rounding only)."""
    x = np.clip(x, lo, hi)
    for _ in range(4):
        r = 1.0 - float(x.sum())
        if r == 0.0:
            break
        room = (hi - x) if r > 0 else (x - lo)
        j = int(np.argmax(room))
        x[j] = min(max(x[j] + r, lo), hi[j])
    return x


def trace_frontier(
    names,
    evaluate: Evaluate,
    *,
    k: int | None,
    exact: bool = False,
    min_weight: float = 0.0,
    max_weight: float = 1.0,
    points: int = 50,
    seed: int = 0,
    method: str = "weighted",
    budget: int | None = None,
    population: int = 60,
    mu=None,
    cov=None,
    polish: bool = True,
    spacing: str | None = None,
    stall: int = 100,
) -> FrontierResult:
    """Trace ``points`` points of the constrained frontier (see the module docstring).

    ``budget`` is the most evaluations per point (default ``1000 x n_assets``, Chang et al.'s; a polish is cut at the
    iterations left, so no point passes it); a point stops early
    after ``stall`` generations without improving its best objective by more than 1e-15 relative. ``mu`` / ``cov``
    (moments) enable the polish and the return spacing of ``lam`` (``spacing=None``: ``"return"`` with moments,
    ``"slope"`` without). The slope spacing reads the scale from the ``n`` single-asset portfolios (evaluated once,
    counted on the first point, as are the return spacing's QP iterations: the first point's GA gets what its budget
    leaves, so only a budget below that setup, a few hundred, is passed, by the first point).
    """
    names = tuple(str(s) for s in names)
    if method not in METHODS:
        raise ConfigError(f"method must be one of {list(METHODS)}, got {method!r}")
    if exact and not min_weight > 0:
        raise ConfigError(
            f"--exact-cardinality needs --min-weight > 0 (the least weight of a held asset; Chang et al. use 0.01), "
            f"got {min_weight!r}: with 0 a weight of 0 counts as not held, so exactly K assets cannot be kept"
        )
    if spacing is None:
        spacing = "return" if (mu is not None and cov is not None) else "slope"
    if spacing not in SPACINGS:
        raise ConfigError(f"spacing must be one of {list(SPACINGS)}, got {spacing!r}")
    if spacing == "return" and (mu is None or cov is None):
        raise ConfigError("spacing 'return' needs the moments (mu and cov): use 'slope' or 'linear' without them")
    space = _space(names, k, exact, min_weight, max_weight)
    n = space.n_assets
    budget = 1000 * n if budget is None else int(budget)
    if budget < 2 * population:
        raise ConfigError(f"a budget of {budget} evaluations per point is below two generations of {population}")
    rng = np.random.default_rng(seed)
    polisher = _Polisher(space, mu, cov) if (polish and mu is not None) else None
    archive = _Archive()
    t0 = time.perf_counter()
    if method == "nsga2":
        W, evals = trace_nsga2(space, evaluate, rng, points, budget * points, population * 4, archive)
        lambdas = np.full(len(W), np.nan)
    else:
        # the typical slope: the span of the single assets' returns over the span of their risks
        ret1, risk1 = evaluate(np.eye(n))
        archive.add(ret1, risk1)
        scale = max(float(np.ptp(ret1)), 1e-300) / max(float(np.ptp(risk1)), 1e-300)
        W = np.empty((points, n))
        evals = np.zeros(points, dtype=np.int64)
        evals[0] = n
        if spacing == "return":
            lambdas, used = return_lambdas(points, mu, cov, max_weight)
            evals[0] += used
        else:
            lambdas = frontier_lambdas(points, spacing, scale)
        pop = space.sample(rng, population)
        for p, lam in enumerate(lambdas):
            W[p], pop, used = _point(space, evaluate, pop, float(lam), rng, budget - evals[p], polisher, stall, archive)
            evals[p] += used
    ret, risk = evaluate(W)
    settings = {
        "k": k,
        "exact": exact,
        "min_weight": min_weight,
        "max_weight": max_weight,
        "points": points,
        "seed": seed,
        "budget_per_point": budget,
        "population": population,
        "polish": polisher is not None,
        "spacing": spacing if method == "weighted" else None,
    }
    a_ret, a_risk = archive.front()
    return FrontierResult(
        names,
        W,
        np.asarray(ret),
        np.asarray(risk),
        lambdas,
        evals,
        time.perf_counter() - t0,
        method,
        settings,
        archive_returns=a_ret,
        archive_risks=a_risk,
    )


class _Archive:
    """Every (return, risk) the search evaluated, reduced to its non-dominated points now and then."""

    def __init__(self):
        self.ret: list[np.ndarray] = []
        self.risk: list[np.ndarray] = []
        self.size = 0

    def add(self, ret: np.ndarray, risk: np.ndarray) -> None:
        self.ret.append(np.asarray(ret, dtype=np.float64).copy())
        self.risk.append(np.asarray(risk, dtype=np.float64).copy())
        self.size += len(ret)
        if self.size > 200_000:
            self.front()

    def front(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.ret:
            return np.empty(0), np.empty(0)
        ret, risk = np.concatenate(self.ret), np.concatenate(self.risk)
        keep = nondominated(ret, risk)
        self.ret, self.risk, self.size = [ret[keep]], [risk[keep]], int(keep.size)
        return ret[keep], risk[keep]


def nondominated(ret: np.ndarray, risk: np.ndarray) -> np.ndarray:
    """Indices of the points no other point dominates (risk no higher and return no lower, one of them strictly),
    by increasing risk; of equal points the first is kept."""
    ret, risk = np.asarray(ret, dtype=np.float64), np.asarray(risk, dtype=np.float64)
    order = np.lexsort((-ret, risk))
    best = -np.inf
    keep = []
    for i in order:
        if ret[i] > best:
            keep.append(i)
            best = ret[i]
    return np.array(keep, dtype=np.int64)


def _objective(evaluate: Evaluate, W: np.ndarray, lam: float, archive: _Archive | None = None) -> np.ndarray:
    ret, risk = evaluate(W)
    if archive is not None:
        archive.add(ret, risk)
    return lam * np.asarray(risk) - (1.0 - lam) * np.asarray(ret)


def _point(space, evaluate, pop, lam, rng, budget, polisher, stall, archive) -> tuple[np.ndarray, np.ndarray, int]:
    """One point of the weighted method: a GA on ``lam * risk - (1 - lam) * return`` from ``pop``."""
    size = len(pop)
    elite = max(2, size // 10)
    pop = pop.copy()
    evals = 0
    if polisher is not None:
        for g in range(size):
            room = budget - evals - size  # the kernel's evaluation of the population comes after
            if room < 1:
                break
            pop[g], its = polisher(pop[g], lam, min(room, 200))
            evals += its
    f = _objective(evaluate, pop, lam, archive)
    evals += size
    best = float(f.min())
    quiet = 0
    while evals + size <= budget and quiet < stall:
        pidx = select_tournament(-f, size, 2, rng)
        parents = pop[pidx]
        cross = rng.random(size // 2) < 0.7
        mutating = rng.random(size) < 0.9
        seeds = rng.integers(0, 2**63, size, dtype=np.uint64)
        kids = vary_population(space, parents, cross, mutating, seeds, p_support=0.4, p_shift=0.3)
        same = (kids == parents).all(axis=1)
        changed = np.flatnonzero(~same)
        fk = np.where(same, f[pidx], np.inf)
        if polisher is not None:
            for g in changed:
                room = budget - evals - changed.size  # keep room for the kernel's evaluation of the children
                if room < 1:
                    break
                kids[g], its = polisher(kids[g], lam, min(room, 200))
                evals += its
        fk[changed] = _objective(evaluate, kids[changed], lam, archive)
        evals += changed.size
        # the elite of the old population, then the best children not already in it
        keep = select_best(-f, elite)
        merged = np.vstack((pop[keep], kids))
        fm = np.concatenate((f[keep], fk))
        order = np.argsort(fm, kind="stable")
        chosen, seen = [], set()
        for i in order:
            key = merged[i].tobytes()
            if key in seen or not np.isfinite(fm[i]):
                continue
            seen.add(key)
            chosen.append(i)
            if len(chosen) == size:
                break
        while len(chosen) < size:  # too few distinct genomes: refill with the best again
            chosen.append(order[len(chosen) % len(order)])
        pop, f = merged[chosen], fm[chosen]
        new_best = float(f[0])
        if new_best < best - 1e-15 * max(1.0, abs(best)):
            best, quiet = new_best, 0
        else:
            quiet += 1
    i = int(np.argmin(f))
    return pop[i].copy(), pop, evals


def _crowding(ret: np.ndarray, risk: np.ndarray) -> np.ndarray:
    n = len(ret)
    d = np.zeros(n)
    for x in (ret, risk):
        o = np.argsort(x, kind="stable")
        span = float(x[o[-1]] - x[o[0]]) or 1.0
        d[o[0]] = d[o[-1]] = np.inf
        d[o[1:-1]] += (x[o[2:]] - x[o[:-2]]) / span
    return d


def _fronts(ret: np.ndarray, risk: np.ndarray) -> np.ndarray:
    """Non-domination rank of each point (0: the first front), two objectives: risk down, return up."""
    rank = np.full(len(ret), -1)
    left = np.arange(len(ret))
    r = 0
    while left.size:
        keep = left[nondominated(ret[left], risk[left])]
        dominated = np.ones(left.size, dtype=bool)
        for i in keep:  # points equal to a front member belong to that front too
            dominated &= ~((ret[left] == ret[i]) & (risk[left] == risk[i]))
        rank[left[~dominated]] = r
        left = left[dominated]
        r += 1
    return rank


def trace_nsga2(space, evaluate, rng, points, budget, population, archive) -> tuple[np.ndarray, np.ndarray]:
    """NSGA-II on (risk, return): binary tournaments on (rank, crowding), the compiled operators, survivors by rank
    then crowding over parents + children, until ``budget`` evaluations; the final first front is thinned to
    ``points`` portfolios evenly spread in return (the nearest member to each of ``points`` evenly spaced returns,
    without repeats). Returns the weights and the evaluations (the whole run's count on the first point)."""
    size = population
    pop = space.sample(rng, size)
    ret, risk = evaluate(pop)
    archive.add(ret, risk)
    evals = size
    while evals + size <= budget:
        rank = _fronts(ret, risk)
        crowd = np.zeros(size)
        for r in np.unique(rank):
            m = rank == r
            crowd[m] = _crowding(ret[m], risk[m])
        a, b = rng.integers(0, size, (2, size))
        better_a = (rank[a] < rank[b]) | ((rank[a] == rank[b]) & (crowd[a] >= crowd[b]))
        pidx = np.where(better_a, a, b)
        cross = rng.random(size // 2) < 0.9
        mutating = rng.random(size) < 0.9
        seeds = rng.integers(0, 2**63, size, dtype=np.uint64)
        kids = vary_population(space, pop[pidx], cross, mutating, seeds, p_support=0.4, p_shift=0.3)
        kr, kv = evaluate(kids)
        archive.add(kr, kv)
        evals += size
        allw = np.vstack((pop, kids))
        allr, allv = np.concatenate((ret, kr)), np.concatenate((risk, kv))
        _, first = np.unique(allw, axis=0, return_index=True)
        uniq = np.sort(first)
        rank = _fronts(allr[uniq], allv[uniq])
        chosen: list[int] = []
        for r in np.unique(rank):
            members = uniq[rank == r]
            if len(chosen) + members.size <= size:
                chosen.extend(members.tolist())
            else:
                c = _crowding(allr[members], allv[members])
                chosen.extend(members[np.argsort(-c, kind="stable")[: size - len(chosen)]].tolist())
            if len(chosen) == size:
                break
        while len(chosen) < size:
            chosen.append(chosen[len(chosen) % max(1, len(chosen))])
        idx = np.array(chosen)
        pop, ret, risk = allw[idx], allr[idx], allv[idx]
    front = nondominated(ret, risk)
    targets = np.linspace(ret[front].min(), ret[front].max(), points)
    picked: list[int] = []
    for t in targets:
        order = front[np.argsort(np.abs(ret[front] - t), kind="stable")]
        pick = next((int(i) for i in order if int(i) not in picked), int(order[0]))
        picked.append(pick)
    W = pop[np.array(picked)]
    W = W[np.argsort(risk[np.array(picked)], kind="stable")]
    counts = np.zeros(points, dtype=np.int64)
    counts[0] = evals
    return W, counts

"""Cardinality-constrained efficient frontiers on the OR-Library problems (issue 25), against the published heuristics
and against exact constrained optima.

Port1: Hang Seng, 31 assets, exactly K = 10 assets, every held weight in [e, d] = [0.01, 1], 50 points, weekly
moments as given. The error measures are those of :mod:`genetic_sizer.evolution.frontier_errors`: Cura (2009)'s
three (to the nearest point of the unconstrained frontier portef1: mean Euclidean distance, mean variance-of-return
error %, mean return error %, relative to the traced point) and, beside them, Chang et al.'s horizontal and vertical
deviations interpolated on portef1 ("interp").

Published on port1 (as tabulated in later comparisons, Cura's definitions): Chang et al.'s GA 1.6441 % / 0.6072 %;
the best published heuristic 1.2387 % / 0.4715 %; the evaluation budget of Chang et al. is 1,000 x N = 31,000 per
point.

Compared (seeds 1..3 for the default):

* ``weighted+polish, return spacing`` (the default): the lambda sweep, each point's GA seeded from its neighbour,
  every genome the GA keeps polished to the exact optimum on its support (active-set QP iterations counted as
  evaluations), the lambdas those at which the unconstrained frontier has 50 evenly spaced returns;
* ``slope spacing``: lambdas spread by the frontier's slope; ``linear lambda``: Chang et al.'s evenly spaced lambda
  (the points are the same constrained optima at other lambdas: the errors measure where the points sit);
* ``weighted, no polish``: the GA alone;
* ``nsga2``: one NSGA-II run on (variance, return), the same total budget, thinned to 50 points.

Then the larger problems port2..port5 (DAX 100 85, FTSE 100 89, S&P 100 98, Nikkei 225 assets; shipped with the
package): the same model against their portef files, and, with exactly K = 2 or 3, against the exact constrained
optimum at each lambda (:func:`exact_small_k`: every support enumerated, each solved in closed form face by face):
the largest gap of the GA's objective to the exact optimum (relative to ``|exact| + lam var + (1-lam) |ret|``), the
share of points at the optimum (gap < 1e-9), the mean relative differences of variance and return to the exact
point, Cura's errors of both against portefN, evaluations and time.

Run: ``make bench`` or ``.venv/bin/python experiments/bench_frontier.py [--quick]`` (``--quick``: one seed, no
NSGA-II, port2 only for K = 10, three small-K cases).
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from genetic_sizer.data.moments import example_path, load_orlib, load_portef
from genetic_sizer.evolution.frontier import moments_evaluator, trace_frontier
from genetic_sizer.evolution.frontier_errors import frontier_errors

PUBLISHED = {"Chang et al. GA": (1.6441, 0.6072), "best published heuristic": (1.2387, 0.4715)}
K, E, D, P = 10, 0.01, 1.0, 50


def port1(seeds, nsga2: bool) -> None:
    m = load_orlib(example_path("port1"))
    ref = load_portef(example_path("portef1"))
    ev = moments_evaluator(m.mu, m.cov)
    variants = [("weighted+polish, return spacing", s, {}) for s in seeds]
    variants += [("weighted+polish, slope spacing", seeds[0], {"spacing": "slope"})]
    variants += [("weighted+polish, linear lambda", seeds[0], {"spacing": "linear"})]
    variants += [("weighted, no polish", seeds[0], {"polish": False})]
    if nsga2:
        variants += [("nsga2", seeds[0], {"method": "nsga2"})]
    trace_frontier(m.names[:12], moments_evaluator(m.mu[:12], m.cov[:12, :12]), k=3, points=2, budget=200)  # compile
    print(f"OR-Library port1: N = 31, exactly K = {K}, e = {E}, d = {D}, {P} points, budget 1000 x N per point")
    print(
        "errors: Cura (2009), to the nearest portef1 point; interp: Chang et al.'s deviations interpolated on portef1"
    )
    head = f"{'method':<34}{'seed':>5}{'distance':>11}{'var err %':>10}{'ret err %':>10}{'interp v/r %':>15}"
    print(head + f"{'evals':>10}{'max/point':>10}{'wall s':>8}{'CPU s':>7}")
    objectives = []
    for name, seed, kw in variants:
        t0, c0 = time.perf_counter(), time.process_time()
        res = trace_frontier(
            m.names, ev, k=K, exact=True, min_weight=E, max_weight=D, points=P, seed=seed, mu=m.mu, cov=m.cov, **kw
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        e = frontier_errors(res.returns, res.risks, *ref)
        per_point = "-" if kw.get("method") == "nsga2" else f"{int(res.evaluations.max()):,}"
        if not kw:
            objectives.append(res.lambdas * res.risks - (1 - res.lambdas) * res.returns)
        interp = f"{e.variance_error_interp_pct:.3f}/{e.return_error_interp_pct:.3f}"
        print(
            f"{name:<34}{seed:>5}{e.mean_euclidean_distance:>11.3e}{e.variance_error_pct:>10.4f}"
            f"{e.return_error_pct:>10.4f}{interp:>15}{res.total_evaluations:>10,}{per_point:>10}{wall:>8.1f}{cpu:>7.1f}"
        )
    for name, (v, r) in PUBLISHED.items():
        print(f"{name + ' (published)':<34}{'':>5}{'':>11}{v:>10.4f}{r:>10.4f}{'':>15}{31000 * 50:>10,}{31000:>10,}")
    spread = np.ptp(np.array(objectives), axis=0)
    print(
        f"return spacing over seeds {seeds}: largest spread of a point's objective {spread.max():.1e} "
        f"(the same optimum at every lambda from every seed)"
    )


def _supports(n: int, k: int) -> np.ndarray:
    flat = itertools.chain.from_iterable(itertools.combinations(range(n), k))
    return np.fromiter(flat, dtype=np.int64).reshape(-1, k)


def exact_small_k(mu, cov, k: int, lam: float, e: float, d: float, chunk: int = 100_000):
    """The exact optimum of ``lam w'Sigma w - (1 - lam) mu'w`` over portfolios of exactly ``k`` assets, each held
    weight in ``[e, d]``, weights summing to 1: every support enumerated and, on each, every face of its box (each
    weight at ``e``, at ``d`` or free) solved in closed form (the KKT system of the free weights, batched over the
    supports); the convex problem on a support has its optimum at the stationary point of the face whose relative
    interior holds it, so the least objective over the feasible stationary points is the optimum. ``lam = 0`` (a
    linear objective) fills the best mean returns first. Independent of the GA and of its polish (a different
    algorithm: enumeration of faces, not an active-set walk). Returns ``(objective, weights (n,))``."""
    n = len(mu)
    best_f, best_w = np.inf, None
    sups = _supports(n, k)
    for c0 in range(0, len(sups), chunk):
        sup = sups[c0 : c0 + chunk]
        m = mu[sup]
        S = cov[sup[:, :, None], sup[:, None, :]]
        rows = np.arange(len(sup))
        cands = []
        if lam == 0.0:
            w = np.full(sup.shape, e)
            left = np.full(len(sup), 1.0 - k * e)
            order = np.argsort(-m, axis=1, kind="stable")
            for j in range(k):
                add = np.minimum(d - e, np.maximum(left, 0.0))
                w[rows, order[:, j]] += add
                left -= add
            cands.append((w, np.abs(left) < 1e-12))
        else:
            for pattern in itertools.product((-1, 0, 1), repeat=k):
                pat = np.array(pattern)
                free = np.flatnonzero(pat == 0)
                fixed = np.flatnonzero(pat != 0)
                wx = np.where(pat[fixed] < 0, e, d)
                rest = 1.0 - wx.sum()
                w = np.empty(sup.shape)
                w[:, fixed] = wx
                if free.size == 0:
                    if abs(rest) > 1e-12:
                        continue
                    cands.append((w, np.ones(len(sup), dtype=bool)))
                    continue
                if rest < free.size * e - 1e-12 or rest > free.size * d + 1e-12:
                    continue
                nf = free.size
                A = np.zeros((len(sup), nf + 1, nf + 1))
                A[:, :nf, :nf] = 2.0 * lam * S[:, free[:, None], free[None, :]]
                A[:, :nf, nf] = 1.0
                A[:, nf, :nf] = 1.0
                rhs = np.zeros((len(sup), nf + 1))
                rhs[:, :nf] = (1.0 - lam) * m[:, free] - 2.0 * lam * S[:, free[:, None], fixed[None, :]] @ wx
                rhs[:, nf] = rest
                x = np.linalg.solve(A, rhs[:, :, None])[:, :nf, 0]
                ok = ((x >= e - 1e-12) & (x <= d + 1e-12)).all(axis=1)
                w[:, free] = np.clip(x, e, d)
                cands.append((w, ok))
        for w, ok in cands:
            f = lam * np.einsum("mi,mij,mj->m", w, S, w) - (1.0 - lam) * np.einsum("mi,mi->m", m, w)
            f = np.where(ok, f, np.inf)
            i = int(np.argmin(f))
            if f[i] < best_f:
                best_f = float(f[i])
                best_w = np.zeros(n)
                best_w[sup[i]] = w[i]
    return best_f, best_w


def orlib_k10(problems, points: int = P) -> None:
    """Chang et al.'s model (exactly K = 10, e = 0.01, d = 1, 50 points) on the larger OR-Library problems."""
    print(f"\nOR-Library port2..port5: exactly K = {K}, e = {E}, d = {D}, {points} points, return spacing, seed 1")
    head = f"{'problem':<10}{'N':>5}{'distance':>11}{'var err %':>10}{'ret err %':>10}{'interp v/r %':>16}"
    print(head + f"{'evals':>10}{'max/point':>10}{'budget/pt':>10}{'wall s':>8}{'CPU s':>7}")
    for k in problems:
        m = load_orlib(example_path(f"port{k}"))
        ref = load_portef(example_path(f"portef{k}"))
        t0, c0 = time.perf_counter(), time.process_time()
        res = trace_frontier(
            m.names, moments_evaluator(m.mu, m.cov), k=K, exact=True, min_weight=E, max_weight=D, points=points,
            seed=1, mu=m.mu, cov=m.cov,
        )  # fmt: skip
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        e = frontier_errors(res.returns, res.risks, *ref)
        interp = f"{e.variance_error_interp_pct:.3f}/{e.return_error_interp_pct:.3f}"
        print(
            f"{'port' + str(k):<10}{m.n_assets:>5}{e.mean_euclidean_distance:>11.3e}{e.variance_error_pct:>10.4f}"
            f"{e.return_error_pct:>10.4f}{interp:>16}{res.total_evaluations:>10,}{int(res.evaluations.max()):>10,}"
            f"{1000 * m.n_assets:>10,}{wall:>8.1f}{cpu:>7.1f}"
        )


def larger(cases, points: int = 10) -> None:
    """The GA against the exact constrained frontier (:func:`exact_small_k`) on the larger OR-Library problems with a
    small K, at the same ``lam`` values."""
    print(
        f"\nOR-Library port2..port5 with exactly K = 2 or 3 (e = {E}, d = {D}, {points} points, return spacing, budget "
        "1000 x N per point) against the exact constrained optimum at each lambda (every support enumerated); gap: "
        "(GA objective - exact) / (|exact| + lam var + (1 - lam) |ret|); same-lambda errors: mean 100 |v - v*| / v* "
        "and 100 |r - r*| / |r*| against the exact point; Cura: both against portefN"
    )
    print(
        f"{'problem':<8}{'N':>4}{'K':>3}{'max gap':>10}{'at opt':>8}{'var err %':>11}{'ret err %':>11}"
        f"{'Cura GA v/r %':>16}{'Cura exact v/r %':>18}{'evals':>10}{'GA s':>7}{'exact s':>9}"
    )
    for prob, k in cases:
        m = load_orlib(example_path(f"port{prob}"))
        ref = load_portef(example_path(f"portef{prob}"))
        mu, cov, n = m.mu, m.cov, m.n_assets
        t0 = time.perf_counter()
        res = trace_frontier(
            m.names, moments_evaluator(mu, cov), k=k, exact=True, min_weight=E, max_weight=D, points=points, seed=1,
            mu=mu, cov=cov,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        gaps, ex_r, ex_v = [], [], []
        for w, lam in zip(res.weights, res.lambdas, strict=True):
            f = lam * (w @ cov @ w) - (1 - lam) * (mu @ w)
            best, wx = exact_small_k(mu, cov, k, float(lam), E, D)
            if f < best - 1e-12 * (abs(best) + 1e-12):
                raise AssertionError(f"port{prob} K={k} lam={lam}: the GA's {f!r} is below the exact {best!r}")
            scale = abs(best) + lam * (w @ cov @ w) + (1 - lam) * abs(mu @ w)
            gaps.append(max(0.0, (f - best) / scale))
            ex_r.append(wx @ mu)
            ex_v.append(wx @ cov @ wx)
        exact_s = time.perf_counter() - t1
        g, ex_r, ex_v = np.array(gaps), np.array(ex_r), np.array(ex_v)
        verr = 100 * np.mean(np.abs(res.risks - ex_v) / ex_v)
        rerr = 100 * np.mean(np.abs(res.returns - ex_r) / np.abs(ex_r))
        cg = frontier_errors(res.returns, res.risks, *ref)
        ce = frontier_errors(ex_r, ex_v, *ref)
        print(
            f"{'port' + str(prob):<8}{n:>4}{k:>3}{g.max():>10.1e}{np.mean(g < 1e-9):>8.0%}{verr:>11.2e}{rerr:>11.2e}"
            f"{cg.variance_error_pct:>8.3f}/{cg.return_error_pct:<7.3f}{ce.variance_error_pct:>10.3f}/"
            f"{ce.return_error_pct:<7.3f}{res.total_evaluations:>10,}{wall:>7.1f}{exact_s:>9.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    port1([1] if args.quick else [1, 2, 3], nsga2=not args.quick)
    orlib_k10([2] if args.quick else [2, 3, 4, 5])
    quick = [(2, 2), (4, 3), (5, 2)]
    larger(quick if args.quick else [(2, 2), (2, 3), (3, 2), (3, 3), (4, 2), (4, 3), (5, 2), (5, 3)])


if __name__ == "__main__":
    main()

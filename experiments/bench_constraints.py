"""Search quality under constraints a convex optimizer cannot take, against exact constrained optima.

Problems: the embedded S&P 500 sample, 2015-2022, long-only, daily rebalancing, no fees, objective Sharpe, with
a cardinality limit and minimum positions (a mixed-integer problem):

* K = 4 of the first 12 assets, ``min_position: 0.1``; target: median >= 99.5% of the optimum at 5,000 evaluations;
* K = 5 of all 20 assets, ``min_position: 0.05``; target: median >= 99% at 5,000 evaluations;

and every champion feasible (checked with :meth:`GenomeSpace.validate`).

The exact optimum: with daily rebalancing and no fees the portfolio return of every bar is exactly ``w . r``, so
the GA's fitness (vectorbt's Sharpe: ``mean / std(ddof=1) * sqrt(252)`` of the per-bar returns, whose first
entry is 0 because the portfolio is bought at the first close) is the Sharpe ratio of the return matrix with a
leading row of zeros. That makes the problem exactly: maximize ``mu'w / sqrt(w' S w)`` over supports of size <= K
with ``min_position <= w_i <= 1`` on the support and ``sum w = 1``, where ``mu`` and ``S`` (ddof=1) come from
that zero-led matrix. Every support is enumerated: its convex sub-problem (the usual homogenized QP:
``min y'Sy`` s.t. ``mu'y = 1``, ``sum y = kappa``, ``m kappa <= y <= kappa``) is solved with Clarabel and
polished by solving the KKT system of its active set exactly; supports whose unconstrained tangency Sharpe
``sqrt(mu_S' S_S^-1 mu_S)`` (an upper bound) is below the best found are skipped. The script checks that the
simulated Sharpe of the optimum equals the formula's (printed as "fitness check").

Compared, at 2,000, 5,000 and 20,000 evaluations ("within N": the best of the first N genomes evaluated), median
and minimum over 5 seeds of the fraction of the optimum:

* random search: the best of N genomes drawn by :meth:`GenomeSpace.sample` (uniform support size, stick-breaking);
* genetic_sizer: :func:`genetic_sizer.runs.evolve.evolve` with its defaults, ``population: 40``, unseeded;
* skfolio ``MeanRisk(MAXIMIZE_RATIO, cardinality=K, threshold_long=m)`` solved by SCIP (``pyscipopt``, the
  ``bench`` extra), once per problem (deterministic), with its time.

Run: ``make bench`` or ``.venv/bin/python experiments/bench_constraints.py [--seeds 5]``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
import warnings

import numpy as np

from genetic_sizer.config import load_config
from genetic_sizer.data.loaders import load_default
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.runs.evolve import evolve

BUDGETS = (2_000, 5_000, 20_000)
WINDOW = ("2015-01-01", "2022-12-31")
POPULATION = 40
PROBLEMS = (
    {"n_assets": 12, "max_assets": 4, "min_position": 0.1, "target": 0.995},
    {"n_assets": 20, "max_assets": 5, "min_position": 0.05, "target": 0.99},
)
TARGET_BUDGET = 5_000


# ---- the exact optimum ---------------------------------------------------------------------------------
def zero_led_returns(prices) -> np.ndarray:
    """Per-bar simple returns as the GA's Sharpe sees them: a first row of zeros, then ``p_t / p_{t-1} - 1``."""
    close = prices.close
    r = close[1:] / close[:-1] - 1.0
    return np.vstack((np.zeros((1, close.shape[1])), r))


def sharpe_of(w: np.ndarray, mu: np.ndarray, cov: np.ndarray, ppy: float) -> float:
    return float(mu @ w / np.sqrt(w @ cov @ w) * np.sqrt(ppy))


class _Sub:
    """The homogenized max-Sharpe QP on one support size, compiled once (cvxpy parameters, DPP)."""

    def __init__(self, k: int, m: float):
        import cvxpy as cp

        self.cp = cp
        self.mu = cp.Parameter(k)
        self.lt = cp.Parameter((k, k))  # L' with S_S = L L'
        self.y = cp.Variable(k)
        self.kappa = cp.Variable(nonneg=True)
        cons = [self.mu @ self.y == 1, cp.sum(self.y) == self.kappa, self.y >= m * self.kappa, self.y <= self.kappa]
        self.problem = cp.Problem(cp.Minimize(cp.sum_squares(self.lt @ self.y)), cons)

    def solve(self, mu_s: np.ndarray, cov_s: np.ndarray) -> np.ndarray | None:
        self.mu.value = mu_s
        self.lt.value = np.linalg.cholesky(cov_s).T
        try:
            self.problem.solve(solver="CLARABEL")
        except self.cp.error.SolverError:  # pragma: no cover - numerical trouble: the polish step decides
            return None
        if self.problem.status not in ("optimal", "optimal_inaccurate") or self.kappa.value <= 0:
            return None
        return np.asarray(self.y.value) / float(self.kappa.value)


def _polish(w: np.ndarray, mu: np.ndarray, cov: np.ndarray, m: float) -> np.ndarray | None:
    """The exact optimum of the active set the solver found: weights near ``m`` are fixed there, the others solve
    the KKT system of ``min y'Sy`` s.t. ``mu'y = 1``, ``sum y = kappa`` (variables: free y and kappa)."""
    k = len(w)
    at = w <= m + 1e-7
    free = ~at
    nf = int(free.sum())
    if nf == 0:
        return None
    # y = P z, z = (y_free, kappa): y_free = z[:nf], y_at = m * kappa
    P = np.zeros((k, nf + 1))
    P[np.flatnonzero(free), np.arange(nf)] = 1.0
    P[at, nf] = m
    Q = P.T @ cov @ P
    a = P.T @ mu
    b = np.append(np.ones(nf), -(1.0 - m * at.sum()))
    kkt = np.zeros((nf + 3, nf + 3))
    kkt[: nf + 1, : nf + 1] = 2 * Q
    kkt[: nf + 1, nf + 1] = a
    kkt[: nf + 1, nf + 2] = b
    kkt[nf + 1, : nf + 1] = a
    kkt[nf + 2, : nf + 1] = b
    rhs = np.zeros(nf + 3)
    rhs[nf + 1] = 1.0
    try:
        z = np.linalg.solve(kkt, rhs)[: nf + 1]
    except np.linalg.LinAlgError:
        return None
    if z[nf] <= 0:
        return None
    out = (P @ z) / z[nf]
    if (out[free] < m).any() or (out > 1.0).any():
        return None
    out[at] = m
    return out


def exact_optimum(R: np.ndarray, max_assets: int, m: float, ppy: float) -> tuple[float, np.ndarray, dict]:
    """The best Sharpe over every support of size <= max_assets (min positions m), and its weights."""
    n = R.shape[1]
    mu = R.mean(axis=0)
    cov = np.cov(R, rowvar=False, ddof=1)
    best, best_w = -np.inf, None
    stats = {"supports": 0, "solved": 0}
    for k in range(1, max_assets + 1):
        if k * m > 1 + 1e-12:
            break
        supports = np.array(list(itertools.combinations(range(n), k)))
        stats["supports"] += len(supports)
        if k == 1:
            for (i,) in supports:
                s = mu[i] / np.sqrt(cov[i, i]) * np.sqrt(ppy)
                if s > best:
                    best, best_w = s, np.eye(n)[i]
            continue
        mus = mu[supports]  # (N, k)
        covs = cov[supports[:, :, None], supports[:, None, :]]  # (N, k, k)
        ub = np.sqrt(np.einsum("nk,nk->n", mus, np.linalg.solve(covs, mus[:, :, None])[:, :, 0])) * np.sqrt(ppy)
        sub = _Sub(k, m)
        for j in np.argsort(-ub, kind="stable"):
            if ub[j] <= best:
                break
            stats["solved"] += 1
            w_s = sub.solve(mus[j], covs[j])
            if w_s is None:
                continue
            polished = _polish(w_s, mus[j], covs[j], m)
            if polished is not None and sharpe_of(polished, mus[j], covs[j], ppy) >= sharpe_of(
                w_s, mus[j], covs[j], ppy
            ):
                w_s = polished
            s = sharpe_of(w_s, mus[j], covs[j], ppy)
            if s > best:
                best = s
                best_w = np.zeros(n)
                best_w[supports[j]] = w_s
    return best, best_w, stats


# ---- the searches --------------------------------------------------------------------------------------
def best_within(history: np.ndarray, budgets) -> list[float]:
    return [float(history[:b].max()) for b in budgets]


def random_search(evaluator, space: GenomeSpace, seed: int, budgets) -> tuple[list[float], np.ndarray]:
    w = space.sample(np.random.default_rng(seed), max(budgets))
    f = np.concatenate([evaluator(w[i : i + 2000])[:, 0] for i in range(0, len(w), 2000)])
    return best_within(f, budgets), w[int(np.argmax(f))]


def genetic_sizer_run(prices, problem: dict, seed: int, budgets) -> tuple[list[float], list[np.ndarray]]:
    history: list[float] = []
    genomes: list[np.ndarray] = []

    def counting_map(fn, batches):
        out = [fn(b) for b in batches]
        for b, r in zip(batches, out, strict=True):
            history.extend(np.asarray(r)[:, 0].tolist())
            genomes.extend(np.asarray(b))
        return out

    config = load_config(None, ga_overrides(prices, problem, seed))
    stop = max(budgets)

    class Enough(Exception):
        pass

    def on_generation(g):
        if len(history) >= stop:
            raise Enough

    with tempfile.TemporaryDirectory() as tmp:
        try:
            evolve(config, prices, tmp, map_fn=counting_map, on_generation=on_generation)
        except Enough:
            pass
    h = np.asarray(history)
    champions = [genomes[int(np.argmax(h[:b]))] for b in budgets]
    return best_within(h, budgets), champions


def ga_overrides(prices, problem: dict, seed: int) -> list[str]:
    return [
        f"data.symbols=[{', '.join(prices.symbols)}]",
        f"data.start={WINDOW[0]}",
        f"data.end={WINDOW[1]}",
        "portfolio.rebalance=D",
        "portfolio.fees=0",
        f"portfolio.max_assets={problem['max_assets']}",
        f"portfolio.min_position={problem['min_position']}",
        f"evolution.population={POPULATION}",
        "evolution.generations=100000",
        f"evolution.seed={seed}",
    ]


def skfolio_mip(R: np.ndarray, symbols, problem: dict) -> tuple[np.ndarray | None, float, str]:
    """skfolio MeanRisk max-Sharpe with cardinality and threshold_long, solved by SCIP, on the zero-led returns."""
    import pandas as pd
    from skfolio import RiskMeasure
    from skfolio.optimization import MeanRisk, ObjectiveFunction

    t0 = time.perf_counter()
    try:
        model = MeanRisk(
            risk_measure=RiskMeasure.VARIANCE,
            objective_function=ObjectiveFunction.MAXIMIZE_RATIO,
            min_weights=0.0,
            max_weights=1.0,
            cardinality=problem["max_assets"],
            threshold_long=problem["min_position"],
            solver="SCIP",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(pd.DataFrame(R, columns=list(symbols)))
        w = np.asarray(model.weights_, dtype=np.float64)
        return w, time.perf_counter() - t0, ""
    except Exception as exc:  # a missing solver or a failure is reported in the table
        return None, time.perf_counter() - t0, f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"


# ---- main ----------------------------------------------------------------------------------------------
def run_problem(problem: dict, seeds: int) -> dict:
    all_prices = load_default(start=WINDOW[0], end=WINDOW[1])
    symbols = list(all_prices.symbols[: problem["n_assets"]])
    prices = load_default(symbols=symbols, start=WINDOW[0], end=WINDOW[1])
    K, m = problem["max_assets"], problem["min_position"]
    evaluator = Evaluator(prices, ["sharpe"], rebalance="D", fees=0.0)
    space = GenomeSpace.create(prices.symbols, max_assets=K, min_position=m)
    R = zero_led_returns(prices)

    t0 = time.perf_counter()
    best, w_opt, stats = exact_optimum(R, K, m, prices.periods_per_year)
    t_exact = time.perf_counter() - t0
    simulated = float(evaluator(w_opt[None])[0, 0])
    held = ", ".join(f"{s} {x:.4f}" for s, x in zip(prices.symbols, w_opt, strict=True) if x > 0)
    print(f"\n== K = {K} of {prices.n_assets} assets, min_position {m:g} ({prices.n_bars} daily bars) ==")
    print(
        f"exact optimum: Sharpe {best:.6f}  [{held}]  ({stats['supports']:,} supports, {stats['solved']:,} QPs "
        f"solved, the rest bounded out; {t_exact:.1f} s)"
    )
    print(
        f"fitness check: simulated Sharpe of the optimum {simulated:.12f}, "
        f"relative difference {simulated / best - 1:.1e}"
    )

    rows: dict[str, np.ndarray] = {}
    feasible = True
    t0 = time.perf_counter()
    rows["random search"] = (
        np.array([random_search(evaluator, space, seed, BUDGETS)[0] for seed in range(seeds)]) / best
    )
    print(f"  random search on {seeds} seeds: {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    ga = []
    for seed in range(seeds):
        values, champions = genetic_sizer_run(prices, problem, seed, BUDGETS)
        ga.append(values)
        for c in champions:
            feasible &= space.violation(c) is None
    rows["genetic_sizer"] = np.array(ga) / best
    print(f"  genetic_sizer on {seeds} seeds: {time.perf_counter() - t0:.1f} s", flush=True)
    w_mip, t_mip, why = skfolio_mip(R, prices.symbols, problem)
    if w_mip is not None:
        w_mip = np.where(np.abs(w_mip) < 1e-9, 0.0, w_mip)
        mip_frac = float(evaluator(w_mip[None])[0, 0]) / best
        mip_text = f"{mip_frac:.4%} in {t_mip:.1f} s" + (
            "" if space.violation(w_mip) is None else f" (not a valid genome: {space.violation(w_mip)})"
        )
    else:
        mip_text = f"failed after {t_mip:.1f} s: {why}"

    head = f"{'method':<16}" + "".join(
        f"{'median@' + format(b, ','):>16}{'min@' + format(b, ','):>14}" for b in BUDGETS
    )
    print("\n" + head)
    for name, r in rows.items():
        cells = "".join(f"{np.median(r[:, j]):>15.4%} {r[:, j].min():>13.4%}" for j in range(len(BUDGETS)))
        print(f"{name:<16}{cells}")
    print(f"{'skfolio + SCIP':<16} {mip_text}")
    print("per seed (fraction of the optimum at " + " / ".join(format(b, ",") for b in BUDGETS) + "):")
    for name, r in rows.items():
        print(f"  {name:<16}" + "  ".join("/".join(f"{x:.6f}" for x in row) for row in r))
    j = BUDGETS.index(TARGET_BUDGET)
    return {
        "target": problem["target"],
        "median": float(np.median(rows["genetic_sizer"][:, j])),
        "feasible": feasible,
        "label": f"K = {K} of {prices.n_assets}, min_position {m:g}",
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args(argv)
    print(
        f"embedded S&P 500 sample {WINDOW[0]}..{WINDOW[1]}; long-only, daily rebalancing, no fees, objective Sharpe; "
        f"genetic_sizer defaults with population {POPULATION}"
    )
    results = [run_problem(p, args.seeds) for p in PROBLEMS]
    print()
    ok = True
    for r in results:
        passed = r["median"] >= r["target"]
        ok &= passed and r["feasible"]
        print(
            f"  [{'PASS' if passed else 'FAIL'}] {r['label']}: median {r['median']:.3%} >= {r['target']:.1%} "
            f"at {TARGET_BUDGET:,} evaluations"
        )
        print(f"  [{'PASS' if r['feasible'] else 'FAIL'}] {r['label']}: every champion is a valid genome")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

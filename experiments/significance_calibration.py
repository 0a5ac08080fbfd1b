"""How the significance and selection statistics behave where the truth is known (issue 23, items 5 and 6).

Part ``tests``: the pairwise Sharpe tests of :mod:`genetic_sizer.backtest.significance` on pairs of i.i.d. normal
series (400 bars, correlation 0.6, per-period Sharpe ratios 0.05 and 0.05 under the null, 0.25 and 0.05 under the
alternative): the share of pairs each test rejects at 5% (its size, then its power).

Part ``selection``: the statistics of :mod:`genetic_sizer.backtest.selection` on markets of 10 i.i.d. normal assets
(volatility 1% a bar) with mean 0 (pure noise) or with asset 0's mean raised by ``--edge`` volatilities. Each market
has two windows of ``--bars`` bars; on the first, 300 random long-only portfolios and a GA-like search (population
50, 30 generations, the 10 best by Sharpe bred by blend crossover and Gaussian mutation, projected on the simplex)
give 1,850 trials and a champion (the best in-sample Sharpe). Reported, over the markets: the deflated Sharpe of the
champion's excess over 1/N (raw count with the null variance; effective count of clusters with the clusters'
variance; and the raw count with the variance of the trials' observed Sharpe ratios, the original DSR's), the
verdict, and PBO over the clusters' representatives on the second window (held out) and on the first (bred on).

Run: ``.venv/bin/python experiments/significance_calibration.py [--part tests|selection|both] [--noise 60]
[--edges 30] [--edge 0.15] [--bars 1000]`` (about 5 minutes on 2 cores for the defaults).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from genetic_sizer.backtest import selection as sel
from genetic_sizer.backtest import significance as sig
from genetic_sizer.backtest import stats


def pair(seed: int, t: int, mu: tuple[float, float], rho: float = 0.6):
    rng = np.random.default_rng(seed)
    z1 = rng.standard_normal(t)
    z2 = rho * z1 + math.sqrt(1 - rho * rho) * rng.standard_normal(t)
    return mu[0] + z1, mu[1] + z2


def part_tests(n_null: int = 300, n_alt: int = 100, t: int = 400) -> None:
    for label, mu, n, base in (("size", (0.05, 0.05), n_null, 1000), ("power", (0.25, 0.05), n_alt, 5000)):
        hits = {"memmel": 0, "ledoit_wolf_hac": 0, "ledoit_wolf_bootstrap": 0}
        for s in range(n):
            a, b = pair(base + s, t, mu)
            hits["memmel"] += sig.memmel_test(a, b, 252).p_value < 0.05
            hits["ledoit_wolf_hac"] += sig.ledoit_wolf_hac(a, b, 252).p_value < 0.05
            hits["ledoit_wolf_bootstrap"] += sig.ledoit_wolf_bootstrap(a, b, 252, reps=499, seed=s).p_value < 0.05
        print(f"{label} over {n} pairs: " + ", ".join(f"{k} {v / n:.3f}" for k, v in hits.items()))


def breed(rng, returns, n_random=300, pop=50, gens=30, elite=10, step=0.05):
    n = returns.shape[1]
    trials = [rng.dirichlet(np.ones(n), n_random)]
    p = rng.dirichlet(np.ones(n), pop)
    trials.append(p)
    for _ in range(gens):
        parents = p[np.argsort(-stats.sharpe_per_period(returns @ p.T))[:elite]]
        a, b = parents[rng.integers(0, elite, pop)], parents[rng.integers(0, elite, pop)]
        u = rng.random((pop, 1))
        w = np.clip(u * a + (1 - u) * b + rng.normal(0.0, step, (pop, n)), 0.0, None)
        s = w.sum(axis=1, keepdims=True)
        p = np.where(s > 0, w / np.where(s > 0, s, 1.0), 1.0 / n)
        trials.append(p)
    return np.vstack(trials)


def market_stats(seed: int, bars: int, edge: float) -> dict:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, 0.01, (2 * bars, 10))
    r[:, 0] += edge * 0.01
    a, b = r[:bars], r[bars:]
    w = breed(rng, a)
    xa, xb = a @ w.T, b @ w.T
    champ = int(np.argmax(stats.sharpe_per_period(xa)))
    dsr = sel.excess_deflated_sharpe(xa[:, champ], a.mean(axis=1), xa)
    excess = xa - a.mean(axis=1)[:, None]
    return {
        "raw": dsr["raw"]["deflated_sharpe"],
        "effective": dsr["effective"]["deflated_sharpe"],
        "observed variance": stats.deflated_sharpe(excess[:, champ], stats.sharpe_per_period(excess)),
        "skill": dsr["verdict"] == "skill",
        "pbo held out": sel.representative_pbo(xb, benchmark=b.mean(axis=1))["pbo"],
        "pbo bred on": sel.representative_pbo(xa, benchmark=a.mean(axis=1))["pbo"],
    }


def part_selection(n_noise: int, n_edge: int, edge: float, bars: int) -> None:
    for label, n, e in (("pure noise", n_noise, 0.0), (f"edge {edge}", n_edge, edge)):
        rows = [market_stats(seed, bars, e) for seed in range(n)]
        print(f"{label}, {n} markets of {bars} bars: verdict 'skill' in {sum(r['skill'] for r in rows)}")
        for key in ("raw", "effective", "observed variance"):
            v = np.array([r[key] for r in rows])
            print(f"  DSR {key:17s} median {np.median(v):.3f}  max {v.max():.3f}  >= 0.95 in {int((v >= 0.95).sum())}")
        for key in ("pbo held out", "pbo bred on"):
            v = np.array([r[key] for r in rows])
            print(
                f"  {key:21s} median {np.median(v):.3f}  <= 0.05 in {int((v <= 0.05).sum())}  "
                f"<= 0.2 in {int((v <= 0.2).sum())}  >= 0.5 in {int((v >= 0.5).sum())}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("tests", "selection", "both"), default="both")
    ap.add_argument("--noise", type=int, default=60)
    ap.add_argument("--edges", type=int, default=30)
    ap.add_argument("--edge", type=float, default=0.15)
    ap.add_argument("--bars", type=int, default=1000)
    args = ap.parse_args()
    if args.part in ("tests", "both"):
        part_tests()
    if args.part in ("selection", "both"):
        part_selection(args.noise, args.edges, args.edge, args.bars)


if __name__ == "__main__":
    main()

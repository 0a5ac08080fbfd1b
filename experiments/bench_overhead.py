"""Benchmark: the time spent outside the Numba kernel per call of the fitness path and of simulate() (issue 27, items
1 and 3).

Fitness (``bench_loop.py``'s workload: 20 assets x the last 2,000 daily bars of the embedded S&P 500 data, monthly
rebalancing, fees 5 bp, objective Sharpe, batches of 75 genomes: a generation of population 100 less its unchanged
clones): the bare kernel ``score_population_nb`` on prepared arrays, the evaluator's call (``Evaluator.__call__``, with
the trial Sharpe column the loop asks for) and the loop's evaluation of a generation (``Evolution._evaluate``: the
space's checks, the evaluator, the batches' assembly). simulate() (``bench_simulate.py --frame-only``'s workload: a
random walk of 2,000 calendar days x 20 assets, 200 genomes, monthly, fees 5 bp): ``simulate(Prices)`` against the value
kernel on prepared arrays (``_simulate_fast``). Every figure is the best of many calls, interleaved, in one process;
the differences are the time outside the kernel.

Run: ``NUMBA_NUM_THREADS=1 .venv/bin/python experiments/bench_overhead.py [--calls 400]``; before/after a change: the
same command with ``PYTHONPATH`` at another checkout (e.g. ``git archive HEAD | tar -x -C /tmp/base``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numba
import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_loop import config, workload

import genetic_sizer
from genetic_sizer.backtest import resample as rs
from genetic_sizer.backtest import simulate as sim
from genetic_sizer.backtest.inputs import prepare
from genetic_sizer.backtest.kernels import spot as nb
from genetic_sizer.data.prices import Prices
from genetic_sizer.evolution.loop import Evolution
from genetic_sizer.evolution.space import GenomeSpace

BATCH = 75
FEES = 0.0005


def best_of(fns: dict, calls: int, variants: int) -> dict[str, float]:
    """The best time (seconds) of each function over ``calls`` interleaved rounds (argument: the round mod variants)."""
    for f in fns.values():
        for i in range(variants):
            f(i)
    best = dict.fromkeys(fns, np.inf)
    for r in range(calls):
        for name, f in fns.items():
            t0 = time.perf_counter()
            f(r % variants)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def fitness(calls: int) -> None:
    prices = workload()
    cfg = config(3, 42)
    evo = Evolution(cfg, prices)
    space = GenomeSpace.from_config(prices.symbols, cfg.portfolio)
    rng = np.random.default_rng(0)
    batches = [space.sample(rng, BATCH) for _ in range(8)]
    genes = np.empty((BATCH, 0))
    inp = prepare(prices, batches[0], None, "M", None, FEES, 0.0, 10_000.0, "spot", 1.0, None, None)
    w3 = [np.ascontiguousarray(w[:, None, :]) for w in batches]
    fixed = (np.zeros(BATCH, np.int64), np.full((BATCH, 1), np.inf), FEES, 0.0, 10_000.0, np.ones(BATCH, bool))
    out, scratch = np.empty((BATCH, nb.SCORE_WIDTH)), np.empty((BATCH, 0, nb.RESAMPLE_WIDTH))

    def kernel(i):
        nb.score_population_nb(
            prices.close, w3[i], inp.starts, inp.masks, *fixed, prices.periods_per_year, np.zeros(1), BATCH, out,
            rs.NONE.idx, rs.NONE.ptr, scratch, None,
        )  # fmt: skip

    best = best_of(
        {
            "kernel": kernel,
            "evaluator": lambda i: evo._evaluate_fn(batches[i]),
            "loop": lambda i: evo._evaluate(batches[i], genes),
        },
        calls,
        len(batches),
    )
    k = best["kernel"]
    print(
        f"fitness, {BATCH} genomes x {prices.n_assets} assets x {prices.n_bars} bars, monthly: kernel "
        f"{1e3 * k:.3f} ms; outside it: Evaluator.__call__ {1e3 * (best['evaluator'] - k):.4f} ms, "
        f"Evolution._evaluate {1e3 * (best['loop'] - k):.4f} ms per generation"
    )


def simulate_prices(calls: int) -> None:
    rng = np.random.default_rng(7)
    n_bars, n_assets, n_genomes = 2000, 20, 200
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, size=(n_bars, n_assets)), axis=0))
    index = pd.date_range("2015-01-01", periods=n_bars, freq="D", tz="UTC")
    prices = Prices.from_frame(pd.DataFrame(close, index=index, columns=[f"S{k:02d}" for k in range(n_assets)]))
    w = rng.dirichlet(np.ones(n_assets), size=n_genomes)
    inp = prepare(prices, w, None, "M", None, FEES, 0.0, 10_000.0, "spot", 1.0, None, None)
    args = (prices.close, inp.w, inp.starts, inp.masks, inp.mask_of, inp.thresholds, FEES, 0.0, 10_000.0)
    best = best_of(
        {
            "simulate": lambda i: sim.simulate(prices, w, rebalance="M", fees=FEES),
            "kernel": lambda i: sim._simulate_fast(*args),
        },
        calls // 4,
        1,
    )
    outside = best["simulate"] - best["kernel"]
    print(
        f"simulate(Prices), {n_genomes} genomes x {n_assets} assets x {n_bars} days, monthly: kernel "
        f"{1e3 * best['kernel']:.3f} ms; outside it {1e3 * outside:.4f} ms ({outside / best['simulate']:.1%})"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=400)
    args = ap.parse_args(argv)
    print(f"{genetic_sizer.__file__}; {numba.get_num_threads()} Numba threads")
    fitness(args.calls)
    simulate_prices(args.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())

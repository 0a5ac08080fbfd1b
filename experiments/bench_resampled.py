"""Benchmark: the cost of the resampled fitness (``robust.resample``, issue 23 item 1) in the fused scorer.

Workload (the bench's, as ``experiments/bench_simulate.py``): 200 genomes x 20 assets x 2000 daily bars of the embedded
S&P 500 data, fees 5 bp, monthly and daily rebalancing, spot; and the perp account (leverage 3, funding on every bar,
4.5 bp fees) monthly. For each, in the same run and process, the best of ``--repeats`` timings of:

* plain: ``score`` (the fused simulate-and-score kernel, whole-window metrics), what the plain GA evaluates;
* blocks K=4: the same kernel scoring 4 contiguous blocks of each genome's path too;
* bootstrap K=20: the same kernel scoring 20 stationary-bootstrap resamples (mean block length the cube root of the
  bars, 13) of each genome's path too;

with genomes per second and the ratio to plain: of the best wall-clock timings, of the medians, and of the median CPU
time the call consumed over all threads (the figure least moved by other processes on a shared machine). The variants
are timed interleaved (plain, blocks, bootstrap, plain, ...), so that a load from other processes hits each alike.
Everything is compiled before timing. Timings use Numba's default thread count (printed).

Run: ``.venv/bin/python experiments/bench_resampled.py [--repeats N] [--genomes N]``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--genomes", type=int, default=200)
    ap.add_argument("--assets", type=int, default=20)
    ap.add_argument("--bars", type=int, default=2000)
    args = ap.parse_args()

    import numba

    from genetic_sizer.backtest import resample as rs
    from genetic_sizer.backtest.simulate import score
    from genetic_sizer.data.loaders import load_default

    prices = load_default()
    prices = prices.select(list(prices.symbols[: args.assets]), start=prices.index[-args.bars])
    n = prices.n_bars
    w = np.random.default_rng(0).dirichlet(np.ones(prices.n_assets), size=args.genomes)
    variants = {
        "plain": None,
        "blocks K=4": rs.blocks(n, 4),
        "bootstrap K=20": rs.bootstrap(n, 20, None, seed=42),
    }
    funding = np.full((n, prices.n_assets), 1e-5)
    cases = {
        "spot monthly": dict(rebalance="M", fees=0.0005),
        "spot daily": dict(rebalance=1, fees=0.0005),
        "perp monthly": dict(
            rebalance="M", fees=0.00045, market="perp", leverage=3.0, max_leverage=10, funding=funding
        ),
    }
    print(
        f"workload: {args.genomes} genomes x {prices.n_assets} assets x {n} daily bars; Numba threads "
        f"{numba.get_num_threads()}; best of {args.repeats}"
    )
    rows = []
    for case, kw in cases.items():
        runs = {name: (lambda res=res, kw=kw: score(prices, w, resamples=res, **kw)) for name, res in variants.items()}
        for run in runs.values():
            run()  # compile
        times = {name: [] for name in runs}
        cpu = {name: [] for name in runs}
        for _ in range(args.repeats):  # interleaved, so that a load from other processes hits every variant alike
            for name, run in runs.items():
                t0, c0 = time.perf_counter(), time.process_time()
                run()
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        best = {name: min(t) for name, t in times.items()}
        median = {name: float(np.median(t)) for name, t in times.items()}
        cpu_median = {name: float(np.median(t)) for name, t in cpu.items()}
        for name in runs:
            row = {
                "case": case,
                "fitness": name,
                "best_ms": round(1e3 * best[name], 2),
                "genomes_per_s": round(args.genomes / best[name]),
                "vs_plain_best": round(best[name] / best["plain"], 2),
                "vs_plain_median": round(median[name] / median["plain"], 2),
                "cpu_ms_median": round(1e3 * cpu_median[name], 2),
                "vs_plain_cpu": round(cpu_median[name] / cpu_median["plain"], 2),
            }
            rows.append(row)
            print(
                f"  {case:13s} {name:15s} {row['best_ms']:9.2f} ms  {row['genomes_per_s']:7d} genomes/s  "
                f"x{row['vs_plain_best']:.2f} of plain (best), x{row['vs_plain_median']:.2f} (median); CPU "
                f"{row['cpu_ms_median']:.1f} ms, x{row['vs_plain_cpu']:.2f} (median)"
            )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

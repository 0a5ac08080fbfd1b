"""Ray scaling: evaluations per second for one generation of 1024 genomes x 50 assets x 5000 bars.

Measured in one run: serial in this process (1 Numba thread, and all threads), Ray with 1 worker on a
1-CPU local instance, Ray with 2 workers on a 2-CPU local instance (1 Numba thread each); the scaling
efficiency (2 workers vs 1), Ray's start-up time (instance + actors holding the data) and its
per-generation overhead (a generation of trivial batches through the same actors). From these it estimates
how many workers a generation of this size keeps busy before overhead dominates.

Run: ``make bench`` or ``.venv/bin/python experiments/bench_ray.py [--genomes 1024] [--reps 3]``.
Ray binds 127.0.0.1 only (the loopback flag is set before Ray is imported).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import numba
import numpy as np
import pandas as pd

from genetic_sizer.cluster.raymap import RayMap
from genetic_sizer.data.prices import Prices
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.evolution.loop import split_batches
from genetic_sizer.evolution.space import GenomeSpace


def synthetic(n_bars: int, n_assets: int, seed: int = 0) -> Prices:
    rng = np.random.default_rng(seed)
    rets = rng.normal(0.0003, 0.02, size=(n_bars, n_assets))
    close = 100 * np.exp(np.cumsum(rets, axis=0))
    index = pd.date_range("2005-01-03", periods=n_bars, freq="B", tz="UTC")
    return Prices(close=close, index=index, symbols=[f"A{k:02d}" for k in range(n_assets)], source="synthetic")


def best_of(reps: int, fn) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def ray_case(evaluator, tiny, weights, workers: int, cpus: int, reps: int) -> dict:
    t0 = time.perf_counter()
    ray_map = RayMap(num_workers=workers, num_cpus=cpus).start()
    init = time.perf_counter() - t0
    try:
        batches = split_batches(weights, -(-len(weights) // workers))
        t1 = time.perf_counter()
        ray_map(evaluator, batches[:1] and [batches[0][:2]] * workers)  # actors up, data delivered, kernels loaded
        actors = time.perf_counter() - t1
        ray_map(evaluator, batches)  # warm
        gen = best_of(reps, lambda: ray_map(evaluator, batches))
        tiny_batches = [np.full((2, tiny.prices.n_assets), 1.0 / tiny.prices.n_assets)] * workers
        ray_map(tiny, tiny_batches)
        overhead = best_of(reps * 5, lambda: ray_map(tiny, tiny_batches))
        threads = {i["numba_threads"] for i in ray_map.worker_info()}
    finally:
        ray_map.close()
    return {"gen": gen, "init": init, "actors": actors, "overhead": overhead, "threads": threads}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--genomes", type=int, default=1024)
    ap.add_argument("--assets", type=int, default=50)
    ap.add_argument("--bars", type=int, default=5000)
    ap.add_argument("--rebalance", default="M")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)

    prices = synthetic(args.bars, args.assets)
    evaluator = Evaluator(prices, ["sharpe"], rebalance=args.rebalance, fees=0.0005)
    tiny = Evaluator(synthetic(5, 2, seed=1), ["sharpe"], rebalance="M")
    weights = GenomeSpace.create(prices.symbols).sample(np.random.default_rng(0), args.genomes)
    n = len(weights)
    print(
        f"one generation: {n} genomes x {args.assets} assets x {args.bars} bars, rebalance {args.rebalance}, "
        f"fees 5 bp; {os.cpu_count()} CPUs; best of {args.reps}",
        flush=True,
    )

    evaluator(weights[:2])  # compile / load the cache
    all_threads = numba.get_num_threads()
    numba.set_num_threads(1)
    serial_1 = best_of(args.reps, lambda: evaluator(weights))
    numba.set_num_threads(all_threads)
    serial_n = best_of(args.reps, lambda: evaluator(weights))

    one = ray_case(evaluator, tiny, weights, workers=1, cpus=1, reps=args.reps)
    two = ray_case(evaluator, tiny, weights, workers=2, cpus=2, reps=args.reps)

    rows = [
        ("serial, 1 Numba thread", serial_1, "-"),
        (f"serial, {all_threads} Numba threads", serial_n, "-"),
        ("Ray, 1 worker (1 CPU)", one["gen"], f"{one['overhead'] * 1e3:.1f} ms"),
        ("Ray, 2 workers (1 CPU each)", two["gen"], f"{two['overhead'] * 1e3:.1f} ms"),
    ]
    print()
    print(f"{'':<30}{'s/generation':>14}{'evals/s':>12}{'overhead/gen':>15}")
    for name, t, ov in rows:
        print(f"{name:<30}{t:>14.3f}{n / t:>12,.0f}{ov:>15}")
    speedup = one["gen"] / two["gen"]
    print()
    print(
        f"scaling, 2 workers vs 1: {speedup:.2f}x (efficiency {speedup / 2:.0%}); target >= 1.6x: "
        f"{'PASS' if speedup >= 1.6 else 'FAIL'}"
    )
    print(f"Ray vs in-process serial (1 thread): 1 worker {serial_1 / one['gen']:.2f}x")
    print(
        f"Ray start-up: local instance {one['init']:.1f} s (1 CPU) / {two['init']:.1f} s (2 CPUs); "
        f"actors with the data {one['actors']:.2f} s / {two['actors']:.2f} s"
    )
    print(f"Numba threads per worker: 1 worker {sorted(one['threads'])}, 2 workers {sorted(two['threads'])}")
    work = one["gen"] - one["overhead"]  # seconds of evaluation per generation on one worker
    overhead = two["overhead"]
    for eff in (0.9, 0.8, 0.5):
        # time per generation on k workers ~ work / k + overhead; efficiency = (work / k) / (that)
        k = work * (1 - eff) / (eff * overhead)
        print(f"  estimate: efficiency stays >= {eff:.0%} up to ~{k:,.0f} workers for generations of this size")
    return 0 if speedup >= 1.6 else 1


if __name__ == "__main__":
    sys.exit(main())

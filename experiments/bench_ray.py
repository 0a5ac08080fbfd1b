"""Ray scaling: evaluations per second for one generation of 1024 genomes x 50 assets x 5000 bars.

Measured in one run: serial in this process (1 Numba thread, and all threads); then one local Ray instance of 2
CPUs with 2 actors of 1 CPU and 1 Numba thread each (``RayMap``: threads = the actor's CPUs), and each repetition
times the generation on 1 actor (one batch) and on both (two halves) back to back, so the 2-vs-1 ratio of each pair
sees the same machine load (a shared machine's load is printed at the start and the end). Ray's per-generation
overhead is the wall time of the 2-worker generation less the busiest actor's own time in the evaluator (the actors
clock it), and the round trip of a generation of trivial batches; Ray's start-up (instance, actors holding the data)
beside. From these it estimates how many workers a generation of this size keeps busy before overhead dominates.

Run: ``make bench`` or ``.venv/bin/python experiments/bench_ray.py [--genomes 1024] [--reps 5]``.
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


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes), as ``uptime`` prints them."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def timed_generation(ray_map, evaluator, batches, workers: int) -> tuple[float, float, float]:
    """Wall seconds of one generation on the first ``workers`` actors, the longest time one of them spent inside
    the evaluator (from the actors' own clocks: the difference is Ray's overhead in that generation), and the CPU
    seconds all of them spent evaluating (with 1 Numba thread each; a wait for a core is not counted)."""
    before = ray_map.worker_info()
    t0 = time.perf_counter()
    ray_map(evaluator, batches, workers=workers)
    wall = time.perf_counter() - t0
    after = ray_map.worker_info()
    busy = max(a["busy_seconds"] - b["busy_seconds"] for a, b in zip(after, before, strict=True))
    cpu = sum(a["cpu_seconds"] - b["cpu_seconds"] for a, b in zip(after, before, strict=True))
    return wall, busy, cpu


def ray_scaling(evaluator, tiny, weights, reps: int) -> dict:
    """One local instance of 2 CPUs, 2 actors of 1 CPU (1 Numba thread) each. Every repetition times the
    generation on 1 actor (all genomes in one batch) and on both (two halves) back to back, so that a change
    in the machine's load hits both alike; the ratio of each pair is a scaling figure."""
    t0 = time.perf_counter()
    ray_map = RayMap(num_workers=2, num_cpus=2).start()
    init = time.perf_counter() - t0
    halves = split_batches(weights, -(-len(weights) // 2))
    try:
        t1 = time.perf_counter()
        ray_map(evaluator, [weights[:2]] * 2)  # actors up, data delivered, kernels loaded (compiled if stale)
        actors = time.perf_counter() - t1
        ray_map(evaluator, halves)  # warm
        one, two, ratios = [], [], []
        for _ in range(reps):
            one.append(timed_generation(ray_map, evaluator, [weights], 1))
            two.append(timed_generation(ray_map, evaluator, halves, 2))
            ratios.append(one[-1][0] / two[-1][0])
        tiny_batches = [np.full((2, tiny.prices.n_assets), 1.0 / tiny.prices.n_assets)] * 2
        ray_map(tiny, tiny_batches)
        trivial = best_of(reps * 5, lambda: ray_map(tiny, tiny_batches))
        info = ray_map.worker_info()
    finally:
        ray_map.close()
    return {
        "one": one, "two": two, "ratios": ratios, "init": init, "actors": actors, "trivial": trivial,
        "threads": [(i["cpus"], i["numba_threads"]) for i in info],
    }  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--genomes", type=int, default=1024)
    ap.add_argument("--assets", type=int, default=50)
    ap.add_argument("--bars", type=int, default=5000)
    ap.add_argument("--rebalance", default="M")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)

    prices = synthetic(args.bars, args.assets)
    evaluator = Evaluator(prices, ["sharpe"], rebalance=args.rebalance, fees=0.0005)
    tiny = Evaluator(synthetic(5, 2, seed=1), ["sharpe"], rebalance="M")
    weights = GenomeSpace.create(prices.symbols).sample(np.random.default_rng(0), args.genomes)
    n = len(weights)
    print(
        f"one generation: {n} genomes x {args.assets} assets x {args.bars} bars, rebalance {args.rebalance}, "
        f"fees 5 bp; {os.cpu_count()} CPUs; {args.reps} repetitions; load average at start {load()}",
        flush=True,
    )

    evaluator(weights[:2])  # compile / load the cache
    all_threads = numba.get_num_threads()
    numba.set_num_threads(1)
    serial_1 = best_of(args.reps, lambda: evaluator(weights))
    numba.set_num_threads(all_threads)
    serial_n = best_of(args.reps, lambda: evaluator(weights))

    r = ray_scaling(evaluator, tiny, weights, args.reps)
    one_best = min(w for w, _, _ in r["one"])
    two_best = min(w for w, _, _ in r["two"])
    overhead = [w - b for w, b, _ in r["two"]]  # per generation: wall time less the busiest actor's evaluation time
    print()
    print(f"{'':<34}{'s/generation':>14}{'evals/s':>12}")
    for name, t in (
        ("serial, 1 Numba thread", serial_1),
        (f"serial, {all_threads} Numba threads", serial_n),
        ("Ray, 1 worker (1 CPU, best)", one_best),
        ("Ray, 2 workers (1 CPU each, best)", two_best),
    ):
        print(f"{name:<34}{t:>14.3f}{n / t:>12,.0f}")
    ratios = np.array(r["ratios"])
    speedup = float(np.median(ratios))
    print()
    print(
        f"scaling, 2 workers vs 1 (each repetition's pair, measured back to back): median {speedup:.2f}x, "
        f"best {ratios.max():.2f}x, all {', '.join(f'{x:.2f}' for x in ratios)}; ratio of best times "
        f"{one_best / two_best:.2f}x; target >= 1.8x: {'PASS' if speedup >= 1.8 else 'FAIL'}"
    )
    print(
        f"Ray overhead per generation (2 workers: wall time less the busiest actor's time in the evaluator): median "
        f"{np.median(overhead) * 1e3:.1f} ms ({np.median(overhead) / np.median([w for w, _, _ in r['two']]):.1%} of a "
        f"generation); a generation of 2 trivial batches: {r['trivial'] * 1e3:.1f} ms"
    )
    cpu_one = np.median([c for _, _, c in r["one"]])
    cpu_two = np.median([c for _, _, c in r["two"]])
    print(
        f"CPU seconds evaluating a generation (the actors' threads; what the load does not inflate): 1 worker "
        f"{cpu_one:.3f}, 2 workers {cpu_two:.3f} in all ({cpu_two / cpu_one:.2f}x: splitting the generation adds "
        f"{'no' if cpu_two < 1.05 * cpu_one else 'some'} work); with two free cores 2 workers would take about "
        f"{cpu_two / 2 + np.median(overhead):.3f} s, {cpu_one / (cpu_two / 2 + np.median(overhead)):.2f}x one (derived)"
    )
    print(f"Ray vs in-process serial (1 thread): 1 worker {serial_1 / one_best:.2f}x")
    print(f"Ray start-up: local instance {r['init']:.1f} s; actors with the data {r['actors']:.2f} s")
    print(f"CPUs and Numba threads per worker: {r['threads']}")
    print(f"load average at the end {load()}")
    work = one_best - r["trivial"]  # seconds of evaluation per generation on one worker
    for eff in (0.9, 0.8, 0.5):
        # time per generation on k workers ~ work / k + overhead; efficiency = (work / k) / (that)
        k = work * (1 - eff) / (eff * r["trivial"])
        print(f"  estimate: efficiency stays >= {eff:.0%} up to ~{k:,.0f} workers for generations of this size")
    return 0  # a figure, not a test: make bench goes on to the next benchmark either way


if __name__ == "__main__":
    sys.exit(main())

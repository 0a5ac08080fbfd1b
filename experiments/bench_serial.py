"""Under load: evaluations per second of a `make evolve`-like run, quiet and beside one CPU-bound process, for each
threading choice (issue 27, item 4).

Workload: bench_loop's (the embedded S&P data, 20 assets x 2,000 daily bars, monthly rebalancing, fees 5 bp, Sharpe),
population 100 (about 75 new genomes a generation: 3,000,000 genomes x assets x bars per evaluation call, above the
serial threshold) and population 20 (about 300,000, below it), ``--generations`` each. Threading choices, in the same
process: ``parallel`` (every kernel call on all Numba threads: ``SERIAL_BELOW = 0``), ``threshold`` (the default:
calls below :data:`genetic_sizer.backtest.kernels.SERIAL_BELOW` on one thread), ``serial`` (one Numba thread for
everything). The load: a child process spinning in a Python loop (started and stopped by its pid here); the machine's
load average is printed with every row, since other processes on a shared machine add to it. Each figure is the
median of ``--repeats`` runs of evaluations per second in generations 1 to G-1 (bench_loop's measure); the runs of the
three choices are interleaved, so a change in the machine's load hits them alike.

Run: ``.venv/bin/python experiments/bench_serial.py [--generations 40] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numba
import numpy as np

import genetic_sizer.backtest.kernels as K

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_loop

CHOICES = ("parallel", "threshold", "serial")


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def run(prices, population: int, generations: int, choice: str, threads: int, default_threshold: int) -> float:
    bench_loop.POPULATION = population
    K.SERIAL_BELOW = 0 if choice == "parallel" else default_threshold
    numba.set_num_threads(1 if choice == "serial" else threads)
    try:
        return bench_loop.loop_run(prices, generations, f"evolution.population={population}")["evals_per_s"]
    finally:
        numba.set_num_threads(threads)
        K.SERIAL_BELOW = default_threshold


def measure(prices, populations, generations, repeats, threads, default_threshold) -> dict:
    rates: dict = {}
    for _ in range(repeats):
        for pop in populations:
            for choice in CHOICES:
                r = run(prices, pop, generations, choice, threads, default_threshold)
                rates.setdefault((pop, choice), []).append(r)
    return {k: float(np.median(v)) for k, v in rates.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generations", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--populations", default="100,20")
    args = ap.parse_args(argv)
    populations = [int(p) for p in args.populations.split(",")]
    threads = numba.get_num_threads()
    default_threshold = K.SERIAL_BELOW
    prices = bench_loop.workload()
    print(
        f"{prices.n_assets} assets x {prices.n_bars} bars, monthly, {args.generations} generations, populations "
        f"{populations}; {threads} Numba threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, serial "
        f"threshold {default_threshold:,} genomes x assets x bars; median of {args.repeats}",
        flush=True,
    )
    bench_loop.loop_run(prices, 3)  # compile / load everything the loop calls
    for pop in populations:
        numba.set_num_threads(1)
        bench_loop.POPULATION = pop
        bench_loop.loop_run(prices, 2, f"evolution.population={pop}")
        numba.set_num_threads(threads)

    results = {}
    before = load()
    results["quiet"] = measure(prices, populations, args.generations, args.repeats, threads, default_threshold)
    print(f"  quiet: load average {before} -> {load()}", flush=True)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        before = load()
        results["busy"] = measure(prices, populations, args.generations, args.repeats, threads, default_threshold)
        print(f"  beside one CPU-bound process: load average {before} -> {load()}", flush=True)
    finally:
        busy.kill()
        busy.wait()

    print()
    print(f"{'evaluations/s':<26}" + "".join(f"{c:>12}" for c in CHOICES) + f"{'busy/quiet (threshold)':>26}")
    for pop in populations:
        for where in ("quiet", "busy"):
            row = results[where]
            print(f"{f'population {pop}, {where}':<26}" + "".join(f"{row[(pop, c)]:>12,.0f}" for c in CHOICES), end="")
            if where == "busy":
                q = results["quiet"][(pop, "threshold")]
                print(f"{row[(pop, 'threshold')] / q:>26.2f}", end="")
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

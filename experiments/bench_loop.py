"""Benchmark: does the evolution loop keep up with the kernel? (issue 14, "Loop")

Workload: population 100, 20 assets x the last 2000 daily bars of the embedded S&P 500 data (``load_default()``, its
first 20 symbols), monthly rebalancing, fees 5 bp, objective Sharpe, 60 generations, checkpoints as configured by
default (``run.checkpoint_every``) into a temporary run directory.

Two figures measured in the same run:

* the loop: evaluations per second inside :func:`genetic_sizer.runs.evolve.evolve` in its steady state, every
  generation but the first and the last (the time from the progress callback of generation 0 to that of the last
  generation but one: selection, variation, evaluation, archive, logbook and the checkpoints the interval asks for
  included; evaluations are the genomes the run sent to the evaluator). The checkpoints every run writes after its
  first and its last generation are fixed costs of a run, not of a generation: the last one's milliseconds are printed
  beside the rate;
* the kernel: :func:`genetic_sizer.backtest.simulate.simulate`'s genomes per second on batches of 100 genomes (one
  generation) of the same workload, timed the same way: windows of 20 consecutive calls, the best window, before and
  after the evolution.

Their ratio is the share of the kernel's speed the loop delivers (issue 27: >= 0.7 at population 100, >= 0.9 at
``--population 1000``); the same ratio in CPU time of this process (evaluations per CPU second: what a loaded machine
does not inflate, since time spent waiting for a CPU is not counted) is printed beside it. Then the mean milliseconds
per generation of each phase of the loop (the ``timings`` of :class:`genetic_sizer.evolution.result.Generation`;
"other" is the rest of the wall time: the progress callback, Python between phases), the ratio the same run gives
without its variation time (a derived figure: what the rest of the loop allows), and the same run with a checkpoint
after every generation (``run.checkpoint_every: 0``) for the price of checkpointing. Everything is compiled first (a
short evolution and a simulate call). Timings on a shared machine are noisy: the loop is timed ``--repeats`` times and
the best is reported.

Run: ``make bench`` or ``.venv/bin/python experiments/bench_loop.py [--generations 60] [--repeats 3] [--population N]``
(``NUMBA_NUM_THREADS=1`` for one thread: steadier figures on a machine whose other core is busy).

The figures are saved as the part ``population_N`` of ``experiments/results/bench_loop.json`` (the other populations'
parts kept) with the run's time, command, git commit, CPU count, load average at the start and Numba threads;
``experiments/readme_figures.py --bench --write`` makes README.md's speed table from it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numba
import numpy as np

from genetic_sizer.backtest.simulate import score, simulate
from genetic_sizer.config import load_config
from genetic_sizer.data.loaders import load_default
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.runs.evolve import evolve

POPULATION = 100
N_ASSETS = 20
N_BARS = 2000
FEES = 0.0005
WINDOW = 20
"""Consecutive simulate() calls timed as one window (the loop is timed over whole windows of generations too)."""
PHASES = ("selection", "variation", "evaluation", "archive", "record", "checkpoint")


def load() -> str:
    """The machine's load averages over 1, 5 and 15 minutes (as ``uptime`` prints them)."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def workload():
    prices = load_default()
    prices = prices.select(symbols=prices.symbols[:N_ASSETS])
    return prices.bars(prices.n_bars - N_BARS, prices.n_bars)


def config(generations: int, seed: int, *extra):
    return load_config(
        None,
        [
            "portfolio.rebalance=M",
            f"portfolio.fees={FEES}",
            "objective=sharpe",
            f"evolution.population={POPULATION}",
            f"evolution.generations={generations}",
            f"evolution.seed={seed}",
            "evolution.holdout=0",
            *extra,
        ],
    )


def kernel_rate(prices, repeats: int) -> float:
    """simulate()'s genomes per second on batches of one generation (the best of ``repeats`` windows)."""
    return kernel_rates(prices, repeats)[0]


def kernel_rates(prices, repeats: int, fn=simulate, window: int = WINDOW) -> tuple[float, float]:
    """simulate()'s (or ``fn``'s: :func:`~genetic_sizer.backtest.simulate.score`, the fitness the loop computes)
    genomes per second of wall time and per CPU second of this process (what a loaded machine does not inflate, since
    time spent waiting for a CPU is not counted), on batches of one generation.

    Timed as the loop is: windows of ``window`` consecutive calls (each on its own random population, drawn before the
    clock starts), the best of ``repeats`` windows for the wall rate, every window for the CPU rate. (The best single
    call would compare the kernel's luckiest call against the loop's whole windows.)"""
    space = GenomeSpace.create(prices.symbols)
    rng = np.random.default_rng(0)
    batches = [space.sample(rng, POPULATION) for _ in range(window)]
    best = np.inf
    cpu = 0.0
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for w in batches:
            fn(prices, w, rebalance="M", fees=FEES)
        best = min(best, time.perf_counter() - t0)
        cpu += time.process_time() - c0
    return POPULATION * window / best, POPULATION * window * repeats / cpu


def loop_run(prices, generations: int, *extra) -> dict:
    """One evolution: evaluations per second in its steady state, and the phases per generation.

    The window runs from the progress callback of generation 0 to that of the last generation but one: generation 0
    (the first population, and the checkpoint every new run writes after it) and the last generation (after which
    every run writes a checkpoint, whatever ``run.checkpoint_every`` says) are a run's fixed costs, not its rate; their
    checkpoints' milliseconds are reported beside it (``final_checkpoint_ms``). Checkpoints the interval asks for
    inside the window are counted (with ``run.checkpoint_every: 0``, one per generation)."""
    stamps, cpu, nevals, timings = [], [], [], []

    def on_generation(g):
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())
        nevals.append(g.record["nevals"])
        timings.append(g.timings)

    with tempfile.TemporaryDirectory() as tmp:
        evolve(config(generations, 42, *extra), prices, f"{tmp}/run", on_generation=on_generation)
    wall = stamps[-2] - stamps[0]
    inside = timings[1:-1]
    per_gen = {p: 1000 * np.mean([t[p] for t in inside]) for p in PHASES}
    per_gen["other"] = 1000 * wall / len(inside) - sum(per_gen.values())
    variation = sum(t["variation"] for t in inside)
    n = sum(nevals[1:-1])
    return {
        "evals_per_s": n / wall,
        "evals_per_cpu_s": n / (cpu[-2] - cpu[0]),
        "evals_per_s_without_variation": n / (wall - variation),
        "ms_per_gen": 1000 * wall / len(inside),
        "nevals_per_gen": float(np.mean(nevals[1:-1])),
        "phases": per_gen,
        "checkpoints": sum(1 for t in inside if t["checkpoint"] > 0),
        "final_checkpoint_ms": 1000 * timings[-1]["checkpoint"],
    }


def best_run(prices, generations: int, repeats: int, *extra) -> dict:
    runs = [loop_run(prices, generations, *extra) for _ in range(repeats)]
    return max(runs, key=lambda r: r["evals_per_s"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generations", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3, help="evolutions timed per setting (the best is reported)")
    ap.add_argument("--kernel-repeats", type=int, default=5, help=f"windows of {WINDOW} simulate() calls timed")
    ap.add_argument("--population", type=int, default=100, help="10x: 1000 (target 0.9)")
    args = ap.parse_args(argv)
    global POPULATION
    POPULATION = args.population
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import readme_figures

    context = readme_figures.run_context()  # the load average before this run's own load

    prices = workload()
    print(
        f"workload: population {POPULATION}, {prices.n_assets} assets x {prices.n_bars} daily bars "
        f"({prices.index[0].date()} .. {prices.index[-1].date()}), monthly rebalancing, fees {FEES * 1e4:g} bp, "
        f"objective sharpe, {args.generations} generations; {numba.get_num_threads()} Numba threads"
    )
    simulate(prices, GenomeSpace.create(prices.symbols).sample(np.random.default_rng(1), 2), rebalance="M", fees=FEES)
    loop_run(prices, 3)  # compile everything the loop calls
    kernel, kernel_cpu = kernel_rates(prices, args.kernel_repeats)
    _, score_cpu = kernel_rates(prices, args.kernel_repeats, score)
    default = best_run(prices, args.generations, args.repeats)
    every = best_run(prices, args.generations, args.repeats, "run.checkpoint_every=0")
    kernel2, kernel_cpu2 = kernel_rates(prices, args.kernel_repeats)
    kernel, kernel_cpu = max(kernel, kernel2), max(kernel_cpu, kernel_cpu2)
    score_cpu = max(score_cpu, kernel_rates(prices, args.kernel_repeats, score)[1])  # before and after, as above
    ratio = default["evals_per_s"] / kernel

    print(
        f"simulate(), batches of {POPULATION} genomes (best of {2 * args.kernel_repeats} windows of {WINDOW} calls): "
        f"{kernel:,.0f} genomes/s"
    )
    runs = (("default checkpoints (run.checkpoint_every: 5)", default), ("a checkpoint every generation", every))
    for name, r in runs:
        print(
            f"evolve, {name}: {r['evals_per_s']:,.0f} evaluations/s in generations 1 to {args.generations - 1} "
            f"(best of {args.repeats}; {r['ms_per_gen']:.2f} ms and {r['nevals_per_gen']:.1f} evaluations per "
            f"generation, {r['checkpoints']} checkpoints; the run's final checkpoint {r['final_checkpoint_ms']:.1f} ms)"
        )
    print(f"ratio loop / kernel: {ratio:.3f} (a checkpoint every generation: {every['evals_per_s'] / kernel:.3f})")
    cpu_ratio = default["evals_per_cpu_s"] / kernel_cpu
    print(
        f"ratio in CPU time (evaluations per CPU second of this process; what the load does not inflate): loop "
        f"{default['evals_per_cpu_s']:,.0f} / simulate() {kernel_cpu:,.0f} = {cpu_ratio:.3f}; load average {load()}"
    )
    print(
        f"  the fitness the loop computes, score() (simulate + metrics in one pass), runs {score_cpu:,.0f} genomes per "
        f"CPU second ({score_cpu / kernel_cpu:.3f} of simulate()'s: the ceiling of the ratio above); loop / score() "
        f"{default['evals_per_cpu_s'] / score_cpu:.3f} (the loop's own overhead)"
    )
    print(
        "  derived, the same run less its variation time (what the rest of the loop allows once variation is "
        f"free): {default['evals_per_s_without_variation'] / kernel:.3f}"
    )
    print()
    print("ms per generation" + "".join(f"{p:>12}" for p in (*PHASES, "other")))
    for name, r in (("default", default), ("every gen", every)):
        print(f"{name:<17}" + "".join(f"{r['phases'][p]:>12.3f}" for p in (*PHASES, "other")))
    print(f"(one simulate() of {POPULATION} genomes: {1000 * POPULATION / kernel:.3f} ms)")
    print()
    target = 0.7 if POPULATION < 1000 else 0.9  # issue 27: 0.7 at population 100, 0.9 at 10x
    for name, r in (("wall", ratio), ("CPU time", cpu_ratio)):
        ok = r >= target
        verdict = "PASS" if ok else "FAIL"
        print(f"  [{verdict}] evaluations/s inside evolve / simulate() genomes/s ({name}) >= {target} ({r:.3f})")
    figures = {
        **context,
        "numba_threads": numba.get_num_threads(),
        "population": POPULATION,
        "assets": prices.n_assets,
        "bars": prices.n_bars,
        "generations": args.generations,
        "repeats": args.repeats,
        "kernel_repeats": args.kernel_repeats,
        "simulate_genomes_per_s": kernel,
        "simulate_genomes_per_cpu_s": kernel_cpu,
        "score_genomes_per_cpu_s": score_cpu,
        "loop_evals_per_s": default["evals_per_s"],
        "loop_evals_per_cpu_s": default["evals_per_cpu_s"],
        "ratio_wall": ratio,
        "ratio_cpu": cpu_ratio,
        "ratio_every_generation_checkpointed": every["evals_per_s"] / kernel,
        "loop_over_score_cpu": default["evals_per_cpu_s"] / score_cpu,
        "ms_per_generation": default["ms_per_gen"],
        "phases_ms_per_generation": default["phases"],
        "final_checkpoint_ms": default["final_checkpoint_ms"],
        "window": "generations 1 to G-1; simulate(): best window of consecutive calls",
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    path = readme_figures.save_results("bench_loop", {f"population_{POPULATION}": figures})
    print(f"\nsaved population_{POPULATION} to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

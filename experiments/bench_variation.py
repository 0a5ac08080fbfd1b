"""Benchmark: variation of a whole offspring array, compiled against the Python operators, measured in one run.

Workloads: 100 and 1,000 offspring x 20 and 50 assets, in three spaces: long-only with plain bounds; long-only with
``max_assets`` and ``min_position``; long/short with ``max_assets``, ``min_position``, two overlapping groups with
bounds and a net-exposure band. Parents are sampled from the space; 90% of pairs cross over and every row mutates
with the evolution defaults (``crossover_prob``/``mutation_prob`` of a run are typically 0.9 / 0.2-1: mutating
every row is the upper end).

Engines, all on the same parents, masks and seeds:

* ``numba``: :func:`genetic_sizer.evolution.variation.vary_population` (the compiled kernel), rows one after another
  (the default), and with ``parallel=True`` on every Numba thread;
* ``python``: the same function with ``engine="python"`` (the Python operators on the same random streams: the
  reference the kernel is tested against);
* ``numpy rng``: the loop the evolution used before, the Python operators with one
  ``numpy.random.default_rng(seed)`` per row (different random numbers, the same work).

Each time is the best of several repeats after a warm-up call (which compiles or loads the kernels); the table gives
milliseconds per call, microseconds per child, and the Python reference's time over the compiled (default, serial)
one's. On a machine shared with other work the parallel times are the scheduler's (a parallel region waits for its
slowest thread). The script also checks that the compiled children equal the reference's (largest absolute
difference, same support) and that the parallel kernel's equal the serial one's.

Run: ``.venv/bin/python experiments/bench_variation.py [--quick]`` (``--quick``: 100 offspring only).
"""

from __future__ import annotations

import argparse
import sys
import time

import numba
import numpy as np

from genetic_sizer.evolution.operators import _child, mutate
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.evolution.variation import vary_population


def _best_time(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _spaces(n_assets: int) -> dict[str, GenomeSpace]:
    symbols = [f"S{k}" for k in range(n_assets)]
    half = n_assets // 2
    return {
        "long-only": GenomeSpace.create(symbols),
        "long-only K,min": GenomeSpace.create(
            symbols, max_weight=min(1.0, 4.0 / n_assets), max_assets=half, min_position=0.01
        ),
        "long/short K,min,groups,net": GenomeSpace.create(
            symbols,
            "longshort",
            -min(1.0, 5.0 / n_assets),
            min(1.0, 5.0 / n_assets),
            max_assets=half,
            min_position=0.01,
            groups={"a": symbols[: n_assets // 4], "b": symbols[n_assets // 5 : half]},
            max_group_weight={"a": 0.4, "b": 0.5},
            min_group_weight={"b": 0.1},
            net_exposure=[-0.2, 0.2],
        ),
    }


def _numpy_rng_loop(space, w, cross, mutating, seeds):
    """The per-row loop with numpy Generators (what vary_population did before the compiled kernel)."""
    out = w.copy()
    for j in range(w.shape[0]):
        rng = np.random.default_rng(int(seeds[j]))
        pair = j // 2
        if pair < cross.shape[0] and cross[pair]:
            other = j + 1 if j % 2 == 0 else j - 1
            out[j] = _child(space, w[j], w[other], 0.5, rng)
        if mutating[j]:
            out[j] = mutate(space, out[j], rng)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 offspring only")
    args = parser.parse_args(argv)
    sizes = [100] if args.quick else [100, 1000]
    all_threads = numba.config.NUMBA_NUM_THREADS
    print(f"numba threads available: {all_threads}; numpy {np.__version__}, numba {numba.__version__}")
    header = (
        f"{'space':<28} {'n':>5} {'assets':>6} | {'numba ms':>8} {'us/child':>8} {'parallel ms':>11} | "
        f"{'python ms':>9} {'numpy-rng ms':>12} | {'python/numba':>12} | {'max |diff|':>10}"
    )
    print(header)
    print("-" * len(header))
    worst = 0.0
    for n_assets in (20, 50):
        for name, space in _spaces(n_assets).items():
            for n in sizes:
                rng = np.random.default_rng(n + n_assets)
                w = space.sample(rng, n)
                cross = rng.random(n // 2) < 0.9
                mutating = np.ones(n, dtype=bool)
                seeds = rng.integers(0, 2**64, n, dtype=np.uint64)

                def fast(w=w, cross=cross, mutating=mutating, seeds=seeds, space=space):
                    return vary_population(space, w, cross, mutating, seeds)

                def par(w=w, cross=cross, mutating=mutating, seeds=seeds, space=space):
                    return vary_population(space, w, cross, mutating, seeds, parallel=True)

                def ref(w=w, cross=cross, mutating=mutating, seeds=seeds, space=space):
                    return vary_population(space, w, cross, mutating, seeds, engine="python")

                a = fast()  # compile / load the kernels
                assert np.array_equal(par(), a)
                b = ref()
                same_support = np.array_equal(a != 0, b != 0)
                diff = float(np.abs(a - b).max())
                worst = max(worst, diff)
                repeats_fast = 50 if n <= 100 else 10
                repeats_py = 3 if n <= 100 else 1
                tn = _best_time(fast, repeats_fast)
                t2 = _best_time(par, repeats_fast)
                tp = _best_time(ref, repeats_py)
                tr = _best_time(
                    lambda w=w, c=cross, m=mutating, s=seeds, sp=space: _numpy_rng_loop(sp, w, c, m, s), repeats_py
                )
                print(
                    f"{name:<28} {n:>5} {n_assets:>6} | {tn * 1e3:>8.3f} {tn / n * 1e6:>8.2f} {t2 * 1e3:>11.3f} | "
                    f"{tp * 1e3:>9.1f} {tr * 1e3:>12.1f} | {tp / tn:>11.0f}x | {diff:>10.1e}"
                    + ("" if same_support else "  SUPPORT DIFFERS")
                )
    print(f"largest difference compiled vs Python reference: {worst:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

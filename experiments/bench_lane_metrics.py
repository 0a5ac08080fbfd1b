"""Scoring value paths several genomes at a time (SIMD across genomes) against one at a time (issue 27, items 1 and 3).

The scalar path is what the fused scorer does per genome: :func:`genetic_sizer.backtest.kernels.spot.score_row_nb` on
each genome's value row. The lane path is :func:`genetic_sizer.backtest.kernels.lane_metrics.score_lanes_nb` on blocks
of ``width`` genomes laid out lane-innermost (``values[i, l]``), with one scratch array for all blocks. Both loops run
inside a compiled function on one Numba thread, over the same paths (random walks from 100 with a drift of 3 bp and a
volatility of 2 % per bar, from one generator seeded 0); the figure is the best of ``--repeats`` timings, in
nanoseconds per genome-bar. ``wiped`` rows set one genome of every block to 0 from a random bar of the second half
(the lanes then have different lengths: the masked block sums); ``rf`` rows score with a risk-free rate per bar.
``--widths``: lanes per block (a width other than ``LANES`` compiles the module's kernels again, uncached). 64 genomes
of 2,000 bars (1 MB) stay in the L2 cache, as a fused scorer's freshly simulated paths would. Every run first checks
that the two paths' outputs are equal bit for bit.

Run: ``.venv/bin/python experiments/bench_lane_metrics.py [--genomes 64] [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import time
import types

import numba
import numpy as np
from numba import njit

import genetic_sizer.backtest.kernels.lane_metrics as lane_metrics
from genetic_sizer.backtest.kernels.lane_metrics import STATE_ROWS
from genetic_sizer.backtest.kernels.spot import SCORE_WIDTH, score_row_nb


@njit(cache=False)
def scalar_all(values, init_cash, ann_factor, rf, out):
    for g in range(values.shape[0]):
        score_row_nb(values[g], init_cash, ann_factor, rf, out[g])


def lanes_kernel(width: int):
    """``lane_metrics.score_lanes_nb`` compiled for ``width`` lanes (the module's kernels compiled again, uncached,
    with ``LANES = width``), and a compiled loop calling it on every block of genomes."""
    scope = dict(vars(lane_metrics), LANES=width)
    for name in ("_blocks_shared", "_blocks_masked", "_drawdown_exact", "score_lanes_nb"):
        fn = getattr(lane_metrics, name).py_func
        scope[name] = njit(types.FunctionType(fn.__code__, scope, name, fn.__defaults__))
    score = scope["score_lanes_nb"]

    @njit(cache=False)
    def lanes_all(blocks, n_genomes, init_cash, ann_factor, rf, scratch, out):
        for b in range(blocks.shape[0]):
            lo = b * width
            n = min(width, n_genomes - lo)
            score(blocks[b], n, init_cash, ann_factor, rf, scratch, out[lo : lo + n])

    return lanes_all


def paths(n_genomes: int, n_bars: int, wiped: bool, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (n_genomes, n_bars)), axis=1))
    if wiped:
        for g in range(0, n_genomes, width):
            values[g, rng.integers(n_bars // 2, n_bars) :] = 0.0
    return values


def to_blocks(values: np.ndarray, width: int) -> np.ndarray:
    n_genomes, n_bars = values.shape
    n_blocks = -(-n_genomes // width)
    blocks = np.ones((n_blocks, n_bars, width))
    for g in range(n_genomes):
        blocks[g // width, :, g % width] = values[g]
    return blocks


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genomes", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--bars", type=int, nargs="+", default=[2000, 5000])
    ap.add_argument("--widths", type=int, nargs="+", default=[4, 8, 16])
    args = ap.parse_args()
    numba.set_num_threads(1)
    init_cash, ann_factor = 100.0, 252.0
    kernels: dict = {}
    print(f"{args.genomes} genomes, one thread, best of {args.repeats}; ns per genome-bar")
    print(f"{'bars':>5} {'case':>7} {'width':>5} {'scalar':>7} {'lanes':>7} {'ratio':>6}")
    for n_bars in args.bars:
        for case in ("plain", "rf", "wiped"):
            rf = np.full(n_bars, 1e-4) if case == "rf" else np.zeros(1)
            for width in args.widths:
                lanes_all = kernels.setdefault(width, lanes_kernel(width))
                values = paths(args.genomes, n_bars, case == "wiped", width)
                blocks = to_blocks(values, width)
                scratch = np.empty((n_bars + STATE_ROWS, width))
                ref = np.zeros((args.genomes, SCORE_WIDTH))
                got = np.zeros((args.genomes, SCORE_WIDTH))
                scalar_all(values, init_cash, ann_factor, rf, ref)
                lanes_all(blocks, args.genomes, init_cash, ann_factor, rf, scratch, got)
                if not np.array_equal(ref.view(np.int64), got.view(np.int64)):
                    raise SystemExit(f"lane scores differ from the scalar ones ({n_bars} bars, {case}, width {width})")
                t_s = best(lambda: scalar_all(values, init_cash, ann_factor, rf, ref), args.repeats)  # noqa: B023
                t_l = best(
                    lambda: lanes_all(blocks, args.genomes, init_cash, ann_factor, rf, scratch, got),  # noqa: B023
                    args.repeats,
                )
                per = 1e9 / (args.genomes * n_bars)
                print(f"{n_bars:>5} {case:>7} {width:>5} {t_s * per:7.3f} {t_l * per:7.3f} {t_s / t_l:6.2f}")


if __name__ == "__main__":
    main()

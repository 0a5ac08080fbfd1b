"""Benchmark: the lane kernel (``kernels/lanes.py``, :func:`simulate_block_nb`) alone, in nanoseconds per lane and
asset-bar, on one thread: blocks of 8 to 64 genomes side by side on the bench's workload (20 assets x 2,000 daily bars
of the embedded S&P 500 data, Dirichlet long-only weights, fees 5 bp), daily rebalancing and a 5% drift band without a
calendar policy. Each figure is the median of ``--repeats`` timings, each the best of ``--best`` calls.

Run: ``NUMBA_NUM_THREADS=1 .venv/bin/python experiments/bench_lanes.py [--widths 8 16 32 48] [--band]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _case(prices, n_genomes, band, seed=0):
    rng = np.random.default_rng(seed)
    n_bars, n_assets = prices.close.shape
    w = rng.dirichlet(np.ones(n_assets), size=n_genomes)[:, None, :].copy()
    thresholds = np.full((n_genomes, 1), band if band else np.inf)
    masks = np.ones((1, n_bars), dtype=np.bool_) if not band else np.zeros((1, n_bars), dtype=np.bool_)
    return w, thresholds, masks


def run(widths, band, repeats, best):
    from genetic_sizer.backtest.kernels.lanes import simulate_block_nb
    from genetic_sizer.data.loaders import load_default

    prices = load_default()
    prices = prices.select(list(prices.symbols[:20]), start=prices.index[-2000])
    close = np.ascontiguousarray(prices.close)
    n_bars, n_assets = close.shape
    out = {}
    for nl in widths:
        w, thr, masks = _case(prices, nl, band)
        gs = np.arange(nl, dtype=np.int64)
        args = (
            close, w, gs, gs, np.array([0]), masks, np.zeros(nl, dtype=np.int64), thr, 0.0005, 0.0, 10_000.0,
            np.ones(nl, dtype=np.bool_), np.empty((nl, n_bars)), np.empty((nl, n_bars), dtype=np.bool_),
            np.empty(nl), np.empty((nl, 0)), np.empty((0, 0, 8)),
        )  # fmt: skip
        simulate_block_nb(*args)
        times = []
        for _ in range(repeats):
            t = np.inf
            for _ in range(best):
                t0 = time.perf_counter()
                simulate_block_nb(*args)
                t = min(t, time.perf_counter() - t0)
            times.append(t)
        ns = float(np.median(times)) / (nl * n_bars * n_assets) * 1e9
        out[nl] = ns
        print(f"{'band 5%' if band else 'daily':<8} {nl:>3} lanes: {ns:6.2f} ns per lane and asset-bar", flush=True)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32, 48])
    ap.add_argument("--band", action="store_true", help="a 5% drift band, no calendar policy")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--best", type=int, default=5)
    a = ap.parse_args()
    run(a.widths, 0.05 if a.band else 0.0, a.repeats, a.best)

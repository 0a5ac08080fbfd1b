"""Benchmark: the fast population kernel against vectorbt's Portfolio.from_orders, measured in one run.

Workload (the issue's): 200 genomes x 20 assets x 2000 daily bars of the embedded S&P 500 data, monthly
and daily rebalancing, fees 5 bp; then the same with a weight schedule (8 segments of 250 bars, each
genome's targets changing at every segment start, as a walk-forward run produces). vectorbt simulates the
whole population in one from_orders call (one group per genome, cash sharing, call_seq='auto') and
computes the group values; the fast engine does the same through genetic_sizer.backtest.simulate. Both are
compiled before timing. Prints genomes per second, the ratio, and the largest relative difference
between the two engines' values.

Then drift-band rebalancing (``threshold``) on the same workload: for bands of 2%, 5% and 10% without a
calendar policy, the fast engine against an every-N-bars calendar policy with the same mean number of
rebalances per genome (N = bars / that number), timed in the same run: the drift test runs on every bar, so
its cost is the price of the band (target: within 2x of calendar rebalancing at the same number of
rebalances); and the fast engine against vectorbt's ``Portfolio.from_order_func`` reference (a pre-segment
function deciding each bar), genomes per second and the largest value difference.

Then the perp account (``market="perp"``: leverage 3, a funding rate on every bar, 4.5 bp fees, maintenance margin
at 1/(2 x 10)) on the same workload, timed in the same run as the spot kernel: genomes per second of each and their
ratio, and the largest difference between the perp kernel and the plain-Python reference loop on a few genomes.

The speed table has a second part: the fused simulate-and-score kernel (``genetic_sizer.backtest.simulate.score``, the
fitness path) against vectorbt's values plus its metrics (``pf.sharpe_ratio()`` and the others score computes).

Then thread scaling: the fitness path on 1 and on 2 Numba threads, 1024 genomes x 50 assets x 5000 daily bars,
monthly and daily rebalancing, beside the two-pass path (value matrix, then metrics), with the CPU time each call
consumes.

Then, in a fresh subprocess, the peak resident memory of scoring 2000 genomes x 50 assets x 5000 bars through the
fitness path (``Evaluator.metrics``, the fused scorer); the limit is 1 GiB.

Run: ``make bench`` or ``.venv/bin/python experiments/bench_simulate.py [--quick | --speed-only | --frame-only |
--scaling-only | --perp-only]``. Timings use Numba's default thread count (printed).

Every part that ran (``speed``, ``frame``, ``drift``, ``perp``, ``scaling``, ``memory``) is saved with its run's time,
command, git commit, CPU count, load average at the start and Numba threads into
``experiments/results/bench_simulate.json`` (beside the parts earlier runs saved; ``--quick``'s smaller workload is not
saved); ``experiments/readme_figures.py --bench --write`` makes README.md's speed table from it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

FAST_REPEATS = 25
"""Timings of the fast engine (milliseconds each) are the best of this many."""


def _best_time(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


VBT_METRICS = (
    "total_return",
    "annualized_return",
    "annualized_volatility",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "max_drawdown",
)
"""vectorbt's portfolio methods for the figures genetic_sizer.backtest.simulate.score computes."""


def _vectorbt_values(prices, w, mask, fees, starts=None, timings=None):
    """vectorbt's values of static weights (n_genomes, n_assets), or of a schedule (n_genomes, n_segments,
    n_assets) whose segments begin at ``starts`` (each a rebalance bar too).

    With a dict ``timings``, also computes vectorbt's metrics of those values (``VBT_METRICS``, what the fitness
    path computes) and records the seconds to the values (``"values"``) and to values and metrics (``"metrics"``).
    """
    import vectorbt as vbt

    t0 = time.perf_counter()

    if starts is None:
        w, starts = w[:, None, :], np.zeros(1, dtype=np.int64)
    n_genomes, _, n_assets = w.shape
    mask = mask.copy()
    mask[starts] = True
    rows = np.flatnonzero(mask)
    active = np.searchsorted(starts, rows, side="right") - 1
    tiled = np.tile(prices.close, (1, n_genomes))
    size = np.full(tiled.shape, np.nan)
    size[rows] = w[:, active, :].transpose(1, 0, 2).reshape(len(rows), -1)
    pf = vbt.Portfolio.from_orders(
        close=pd.DataFrame(tiled, index=prices.index),
        size=size,
        size_type="targetpercent",
        direction="longonly",
        group_by=np.repeat(np.arange(n_genomes), n_assets),
        cash_sharing=True,
        call_seq="auto",
        fees=fees,
        init_cash=10_000.0,
        min_size=1e-8,
        freq="1D",
    )
    values = pf.value().to_numpy()
    if timings is not None:
        timings["values"] = time.perf_counter() - t0
        for name in VBT_METRICS:
            getattr(pf, name)()
        timings["metrics"] = time.perf_counter() - t0
    return values


def bench_speed(n_genomes: int, n_assets: int, n_bars: int, vbt_repeats: int, segment_bars: int = 250) -> list[dict]:
    import numba

    from genetic_sizer.backtest.schedule import rebalance_mask
    from genetic_sizer.backtest.simulate import score, simulate
    from genetic_sizer.data.loaders import load_default

    prices = load_default()
    prices = prices.select(list(prices.symbols[:n_assets]), start=prices.index[-n_bars])
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(n_assets), size=n_genomes)
    starts = np.arange(0, prices.n_bars, segment_bars)
    schedule = rng.dirichlet(np.ones(n_assets), size=(n_genomes, len(starts)))
    print(
        f"workload: {n_genomes} genomes x {prices.n_assets} assets x {prices.n_bars} daily bars "
        f"({prices.index[0]:%Y-%m-%d} .. {prices.index[-1]:%Y-%m-%d}), fees 5 bp; "
        f"schedules: {len(starts)} segments of {segment_bars} bars; {numba.get_num_threads()} Numba threads"
    )
    rows = []
    cases = [("M", None), ("D", None), ("M", starts), ("D", starts)]
    for policy, seg in cases:
        mask = rebalance_mask(prices.index, policy)
        weights = w if seg is None else schedule
        kw = {"rebalance": policy, "fees": 0.0005, "segment_starts": seg}
        # compile / warm up both engines on the real shapes
        simulate(prices, weights[:2], **kw)
        score(prices, weights[:2], **kw)
        _vectorbt_values(prices, weights[:2], mask, 0.0005, seg, {})
        fast_values = simulate(prices, weights, **kw)
        # milliseconds each: the best of many, interleaved, so that other processes on the machine weigh less
        t_fast = t_score = t_fast_1 = np.inf
        threads = numba.get_num_threads()
        for _ in range(FAST_REPEATS):
            t_fast = min(t_fast, _best_time(lambda kw=kw, weights=weights: simulate(prices, weights, **kw), 1))
            t_score = min(t_score, _best_time(lambda kw=kw, weights=weights: score(prices, weights, **kw), 1))
            numba.set_num_threads(1)  # also on one thread: what the other processes on the machine cannot halve
            try:
                t_fast_1 = min(t_fast_1, _best_time(lambda kw=kw, weights=weights: simulate(prices, weights, **kw), 1))
            finally:
                numba.set_num_threads(threads)
        ref = None
        t_vbt = t_vbt_metrics = np.inf
        for _ in range(vbt_repeats):
            timings = {}
            ref = _vectorbt_values(prices, weights, mask, 0.0005, seg, timings)
            t_vbt = min(t_vbt, timings["values"])
            t_vbt_metrics = min(t_vbt_metrics, timings["metrics"])
        err = float(np.max(np.abs(fast_values - ref) / ref))
        label = {"M": "monthly", "D": "daily"}[policy] + ("" if seg is None else f" + {len(seg)} segments")
        rows.append(
            {
                "rebalance": label,
                "rebalances": int(mask.sum() if seg is None else (mask | np.isin(np.arange(mask.size), seg)).sum()),
                "fast_s": t_fast,
                "vbt_s": t_vbt,
                "fast_gps": n_genomes / t_fast,
                "vbt_gps": n_genomes / t_vbt,
                "ratio": t_vbt / t_fast,
                "max_rel_err": err,
                "score_s": t_score,
                "vbt_metrics_s": t_vbt_metrics,
                "score_ratio": t_vbt_metrics / t_score,
                "fast_1t_s": t_fast_1,
                "ratio_1t": t_vbt / t_fast_1,
            }
        )
    print(
        f"\n{'rebalance':<24}{'bars traded':>12}{'vectorbt g/s':>14}{'fast g/s':>12}{'ratio':>9}{'max rel diff':>14}"
        f"{'vbt+metrics g/s':>17}{'score g/s':>11}{'ratio':>9}{'fast 1t g/s':>13}{'ratio':>9}"
    )
    for r in rows:
        print(
            f"{r['rebalance']:<24}{r['rebalances']:>12}{r['vbt_gps']:>14.1f}{r['fast_gps']:>12.0f}"
            f"{r['ratio']:>8.0f}x{r['max_rel_err']:>14.1e}{n_genomes / r['vbt_metrics_s']:>17.1f}"
            f"{n_genomes / r['score_s']:>11.0f}{r['score_ratio']:>8.0f}x{n_genomes / r['fast_1t_s']:>13.0f}"
            f"{r['ratio_1t']:>8.0f}x"
        )
    print(
        "values: simulate() vs vectorbt from_orders + pf.value(), the same outputs (targets: >= 1,000x monthly, "
        ">= 300x daily); values equal to 1e-8 relative.\nscore: the fused simulate-and-score kernel (every metric, "
        "turnover) vs from_orders + pf.value() + " + ", ".join(f"pf.{m}()" for m in VBT_METRICS) + "\n"
        f"fast 1t: simulate() on one Numba thread (the other columns: {numba.get_num_threads()} threads); vectorbt "
        "runs on one"
    )
    return rows


def bench_frame(n_genomes: int = 200, n_assets: int = 20, n_bars: int = 2000, vbt_repeats: int = 2) -> list[dict]:
    """simulate() as users call it: a random-walk DataFrame of ``n_bars`` calendar days x ``n_assets`` passed on every
    call (checked and converted each time), against vectorbt's from_orders on the same frame, and where the time
    outside the kernel goes: the same call on ``Prices`` (checked once), and the kernel alone on prepared arrays. Every
    figure in this run, interleaved (the best of many); ratios are vectorbt's time over ours."""
    import numba

    from genetic_sizer.backtest import simulate as sim
    from genetic_sizer.backtest.inputs import prepare
    from genetic_sizer.backtest.schedule import rebalance_mask
    from genetic_sizer.data.prices import Prices

    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, size=(n_bars, n_assets)), axis=0))
    index = pd.date_range("2015-01-01", periods=n_bars, freq="D", tz="UTC")
    frame = pd.DataFrame(close, index=index, columns=[f"S{k:02d}" for k in range(n_assets)])
    prices = Prices.from_frame(frame)
    w = rng.dirichlet(np.ones(n_assets), size=n_genomes)
    print(
        f"\nsimulate() on a DataFrame each call: {n_genomes} genomes x {n_assets} assets x {n_bars} calendar days "
        f"(random walks), fees 5 bp; {numba.get_num_threads()} Numba threads"
    )
    rows = []
    for policy in ("M", "D"):
        kw = {"rebalance": policy, "fees": 0.0005}
        inp = prepare(frame, w, None, policy, None, 0.0005, 0.0, 10_000.0, "spot", 1.0, None, None)
        args = (inp.prices.close, inp.w, inp.starts, inp.masks, inp.mask_of, inp.thresholds, inp.fees, inp.slippage)

        def kernel(args=args, init_cash=inp.init_cash):
            return sim._simulate_fast(*args, init_cash)

        sim.simulate(frame, w[:2], **kw)  # compile / warm up
        _vectorbt_values(prices, w[:2], rebalance_mask(prices.index, policy), 0.0005)
        values = sim.simulate(frame, w, **kw)
        t_frame = t_prices = t_kernel = np.inf
        for _ in range(FAST_REPEATS):
            t_frame = min(t_frame, _best_time(lambda kw=kw: sim.simulate(frame, w, **kw), 1))
            t_prices = min(t_prices, _best_time(lambda kw=kw: sim.simulate(prices, w, **kw), 1))
            t_kernel = min(t_kernel, _best_time(kernel, 1))
        t_vbt, ref = np.inf, None
        for _ in range(vbt_repeats):
            t0 = time.perf_counter()
            ref = _vectorbt_values(prices, w, rebalance_mask(prices.index, policy), 0.0005)
            t_vbt = min(t_vbt, time.perf_counter() - t0)
        rows.append(
            {
                "rebalance": {"M": "monthly", "D": "daily"}[policy],
                "vbt_s": t_vbt,
                "frame_s": t_frame,
                "prices_s": t_prices,
                "kernel_s": t_kernel,
                "frame_ratio": t_vbt / t_frame,
                "prices_ratio": t_vbt / t_prices,
                "frame_overhead": 1.0 - t_kernel / t_frame,
                "prices_overhead": 1.0 - t_kernel / t_prices,
                "max_rel_err": float(np.max(np.abs(values - ref) / ref)),
            }
        )
    print(
        f"{'rebalance':<10}{'vectorbt g/s':>14}{'DataFrame g/s':>15}{'ratio':>8}{'Prices g/s':>12}{'ratio':>8}"
        f"{'kernel g/s':>12}{'outside kernel: frame':>23}{'Prices':>8}{'max rel diff':>14}"
    )
    for r in rows:
        print(
            f"{r['rebalance']:<10}{n_genomes / r['vbt_s']:>14.1f}"
            f"{n_genomes / r['frame_s']:>15.0f}{r['frame_ratio']:>7.0f}x"
            f"{n_genomes / r['prices_s']:>12.0f}{r['prices_ratio']:>7.0f}x{n_genomes / r['kernel_s']:>12.0f}"
            f"{r['frame_overhead']:>22.1%}{r['prices_overhead']:>9.1%}{r['max_rel_err']:>14.1e}"
        )
    print(
        "targets: >= 1,000x monthly and >= 300x daily (DataFrame and Prices); outside the kernel: what simulate() "
        "spends besides the kernel on prepared arrays (checks, conversion, rebalance masks, the output's transpose)"
    )
    return rows


def bench_drift(n_genomes: int, n_assets: int, n_bars: int, vbt_repeats: int, bands=(0.02, 0.05, 0.10)) -> list[dict]:
    """Drift bands against calendar rebalancing with as many rebalances, and against the from_order_func
    reference. Timed on one Numba thread: two threads' timings of a few milliseconds are the scheduler's on a
    shared 2-core machine (and vectorbt is single-threaded)."""
    import numba

    from genetic_sizer.backtest.simulate import backtest
    from genetic_sizer.data.loaders import load_default

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return _bench_drift(n_genomes, n_assets, n_bars, vbt_repeats, bands, backtest, load_default)
    finally:
        numba.set_num_threads(threads)


def _bench_drift(n_genomes, n_assets, n_bars, vbt_repeats, bands, backtest, load_default) -> list[dict]:

    prices = load_default()
    prices = prices.select(list(prices.symbols[:n_assets]), start=prices.index[-n_bars])
    w = np.random.default_rng(0).dirichlet(np.ones(n_assets), size=n_genomes)
    rows = []
    for band in bands:
        kw = {"rebalance": "once", "threshold": band, "fees": 0.0005}
        backtest(prices, w[:2], **kw)  # compile / warm up both engines
        backtest(prices, w[:2], engine="vectorbt", **kw)
        drift = backtest(prices, w, **kw)
        count = float(drift.rebalance.sum(axis=0).mean())
        every = max(1, round(prices.n_bars / count))
        cal_kw = {"rebalance": every, "fees": 0.0005}
        calendar = backtest(prices, w, **cal_kw)
        t_drift, t_cal = [], []
        for _ in range(25):  # interleaved, so both see the same machine load; the minimum of each
            t_drift.append(_best_time(lambda kw=kw: backtest(prices, w, **kw), 1))
            t_cal.append(_best_time(lambda kw=cal_kw: backtest(prices, w, **kw), 1))
        ref = None

        def run_vbt(kw=kw):
            nonlocal ref
            ref = backtest(prices, w, engine="vectorbt", **kw)

        t_vbt = _best_time(run_vbt, vbt_repeats)
        rows.append(
            {
                "band": band,
                "rebalances": count,
                "every": every,
                "calendar_rebalances": float(calendar.rebalance.sum(axis=0).mean()),
                "drift_s": min(t_drift),
                "calendar_s": min(t_cal),
                "ratio_calendar": min(t_drift) / min(t_cal),
                "vbt_gps": n_genomes / t_vbt,
                "fast_gps": n_genomes / min(t_drift),
                "max_rel_err": float(np.max(np.abs(drift.value - ref.value) / ref.value)),
                "same_bars": bool((drift.rebalance == ref.rebalance).all()),
            }
        )
    print(
        f"\ndrift bands, {n_genomes} genomes x {n_assets} assets x {n_bars} bars, no calendar policy, fees 5 bp, "
        "one Numba thread; calendar: every N bars with the same mean number of rebalances"
    )
    print(
        f"{'band':>6}{'rebalances':>12}{'calendar':>14}{'drift ms':>10}{'calendar ms':>13}{'drift/cal':>11}"
        f"{'from_order_func g/s':>21}{'fast g/s':>10}{'ratio':>8}{'max rel diff':>14}"
    )
    for r in rows:
        print(
            f"{r['band']:>6.2f}{r['rebalances']:>12.1f}{'every ' + str(r['every']):>14}{r['drift_s'] * 1e3:>10.2f}"
            f"{r['calendar_s'] * 1e3:>13.2f}{r['ratio_calendar']:>10.2f}x{r['vbt_gps']:>21.1f}{r['fast_gps']:>10.0f}"
            f"{r['fast_gps'] / r['vbt_gps']:>7.0f}x{r['max_rel_err']:>14.1e}"
        )
    print(
        "target: drift <= 2x calendar at the same number of rebalances; values equal to the from_order_func "
        "reference to 1e-8 relative, on the same rebalance bars"
    )
    return rows


def bench_perp(n_genomes: int, n_assets: int, n_bars: int, n_checked: int = 3) -> list[dict]:
    """Perp kernel vs spot kernel, static weights, monthly and daily rebalancing, in the same run."""
    from genetic_sizer.backtest.simulate import backtest, simulate
    from genetic_sizer.data.loaders import load_default

    prices = load_default()
    prices = prices.select(list(prices.symbols[:n_assets]), start=prices.index[-n_bars])
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(n_assets), size=n_genomes)
    funding = rng.normal(1.5e-4, 3e-4, size=prices.close.shape)  # daily bars: ~24 hourly rates summed
    perp = {"market": "perp", "leverage": 3.0, "funding": funding, "max_leverage": 10.0}
    # the same closes with a bar range around them: the liquidation test within each bar (every position at its
    # adverse extreme), timed beside the close-only test
    wide = 0.02 * rng.random(size=(2, *prices.close.shape))
    ranged = prices.with_fields({"low": prices.close * (1 - wide[0]), "high": prices.close * (1 + wide[1])})
    print(
        f"\nperp account: {n_genomes} genomes x {prices.n_assets} assets x {prices.n_bars} daily bars, leverage 3, "
        "funding on every bar, fees 4.5 bp, maintenance margin 5 %, static weights"
    )
    rows = []
    for policy in ("M", "D"):
        spot_kw = {"rebalance": policy, "fees": 0.00045}
        perp_kw = {**spot_kw, **perp}
        simulate(prices, w[:2], **spot_kw)
        simulate(prices, w[:2], **perp_kw)
        t_spot = _best_time(lambda kw=spot_kw: simulate(prices, w, **kw), 7)
        t_perp = _best_time(lambda kw=perp_kw: simulate(prices, w, **kw), 7)
        simulate(ranged, w[:2], **perp_kw)
        t_range = _best_time(lambda kw=perp_kw: simulate(ranged, w, **kw), 7)
        fast = backtest(prices, w[:n_checked], **perp_kw)
        ref = backtest(prices, w[:n_checked], **perp_kw, engine="reference")
        err = float(np.max(np.abs(fast.value - ref.value) / np.abs(ref.value)))
        rows.append(
            {
                "rebalance": {"M": "monthly", "D": "daily"}[policy],
                "spot_gps": n_genomes / t_spot,
                "perp_gps": n_genomes / t_perp,
                "ratio": t_spot / t_perp,
                "ranged_gps": n_genomes / t_range,
                "max_rel_err_vs_reference": err,
                "liquidated": int((backtest(prices, w, **perp_kw).liquidated >= 0).sum()),
            }
        )
    print(
        f"{'rebalance':<12}{'spot g/s':>12}{'perp g/s':>12}{'perp/spot':>11}{'vs reference':>14}{'liquidated':>12}"
        f"{'with h/l g/s':>14}"
    )
    for r in rows:
        print(
            f"{r['rebalance']:<12}{r['spot_gps']:>12.0f}{r['perp_gps']:>12.0f}{r['ratio']:>10.2f}x"
            f"{r['max_rel_err_vs_reference']:>14.1e}{r['liquidated']:>12}{r['ranged_gps']:>14.0f}"
        )
    print("target: perp in the same class as spot (same order of genomes per second)")
    return rows


def _vm_hwm_mib() -> float:
    """Peak resident memory of this process (VmHWM). Unlike ru_maxrss it is not inherited across exec."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _synthetic(n_genomes: int, n_assets: int, n_bars: int):
    """Daily geometric random walks of ``n_assets`` over ``n_bars`` and ``n_genomes`` Dirichlet genomes (seed 1)."""
    from genetic_sizer.data.prices import Prices

    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, size=(n_bars, n_assets)), axis=0))
    index = pd.date_range("2000-01-01", periods=n_bars, freq="D", tz="UTC")
    prices = Prices(close, index, [f"A{k}" for k in range(n_assets)])
    return prices, rng.dirichlet(np.ones(n_assets), size=n_genomes)


def _cpu_seconds() -> float:
    """User + system CPU time of this process, every thread included."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def bench_scaling(n_genomes: int, n_assets: int, n_bars: int, repeats: int = 5) -> list[dict]:
    """Fitness (the fused simulate-and-score path, genetic_sizer.backtest.simulate.score) on 1 and on 2 Numba threads,
    monthly and daily rebalancing, beside the two-pass path (backtest's value matrix, then compute_metrics). Timings
    alternate between the thread counts so both see the same machine load; the best of ``repeats`` each. The CPU
    time a call consumes (every thread) is printed too: when 2 threads take no more CPU time than 1, they do the
    same work and only the other processes on the machine stand between the wall-clock ratio and 2x."""
    import numba

    from genetic_sizer.backtest.metrics import compute_metrics
    from genetic_sizer.backtest.simulate import backtest, score

    if numba.config.NUMBA_NUM_THREADS < 2:
        print("\nthread scaling: skipped (Numba has 1 thread on this machine)")
        return []
    prices, w = _synthetic(n_genomes, n_assets, n_bars)
    ppy = prices.periods_per_year

    def two_pass(kw):
        bt = backtest(prices, w, **kw)
        return compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=ppy, traded=bt.traded)

    threads = numba.get_num_threads()
    rows = []
    try:
        for policy in ("M", "D"):
            kw = {"rebalance": policy, "fees": 0.0005}
            score(prices, w[:2], **kw)  # compile / warm up
            two_pass({**kw})
            wall = {(path, n): np.inf for path in ("score", "two-pass") for n in (1, 2)}
            cpu = dict(wall)
            for _ in range(repeats * (3 if policy == "M" else 1)):  # monthly calls are short: more of them
                for n in (1, 2):
                    numba.set_num_threads(n)
                    for path, fn in (("score", score), ("two-pass", None)):
                        c0, t0 = _cpu_seconds(), time.perf_counter()
                        if fn is None:
                            two_pass(kw)
                        else:
                            fn(prices, w, **kw)
                        wall[path, n] = min(wall[path, n], time.perf_counter() - t0)
                        cpu[path, n] = min(cpu[path, n], _cpu_seconds() - c0)
            rows.append(
                {
                    "rebalance": {"M": "monthly", "D": "daily"}[policy],
                    **{f"{path}_{n}t_s": wall[path, n] for path, n in wall},
                    **{f"{path}_{n}t_cpu_s": cpu[path, n] for path, n in cpu},
                    "score_ratio": wall["score", 1] / wall["score", 2],
                    "two_pass_ratio": wall["two-pass", 1] / wall["two-pass", 2],
                }
            )
    finally:
        numba.set_num_threads(threads)
    print(
        f"\nthread scaling: {n_genomes} genomes x {n_assets} assets x {n_bars} daily bars (synthetic), fees 5 bp; "
        f"best of {3 * repeats} (monthly) and {repeats} (daily), wall clock (CPU time of all threads)"
    )
    print(f"{'rebalance':<10}{'score 1t s':>16}{'score 2t s':>16}{'2t vs 1t':>10}{'two-pass 1t s':>16}"
          f"{'two-pass 2t s':>16}{'2t vs 1t':>10}")  # fmt: skip
    for r in rows:
        print(
            f"{r['rebalance']:<10}"
            + "".join(
                f"{r[f'{path}_{n}t_s']:>8.3f} ({r[f'{path}_{n}t_cpu_s']:>5.2f})"
                + (f"{r[f'{key}_ratio']:>9.2f}x" if n == 2 else "")
                for path, key in (("score", "score"), ("two-pass", "two_pass"))
                for n in (1, 2)
            )
        )
    print("target: score on 2 threads >= 1.7x its speed on 1 (the machine's other load counts against it)")
    return rows


def _memory_child(n_genomes: int, n_assets: int, n_bars: int) -> None:
    """Runs in a fresh interpreter: the fitness path (Evaluator -> the fused scorer) on synthetic data, print peak
    RSS as JSON."""
    from genetic_sizer.evolution.evaluator import Evaluator

    prices, w = _synthetic(n_genomes, n_assets, n_bars)
    evaluator = Evaluator(prices, ("sharpe",), rebalance="D", fees=0.0005)
    base = _vm_hwm_mib()
    t0 = time.perf_counter()
    m = evaluator.metrics(w)
    elapsed = time.perf_counter() - t0
    peak = _vm_hwm_mib()
    print(
        json.dumps(
            {
                "baseline_mib": base,
                "peak_mib": peak,
                "seconds": elapsed,
                "best_sharpe": float(m["sharpe"].max()),
            }
        )
    )


def bench_memory(n_genomes: int, n_assets: int, n_bars: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n_genomes), str(n_assets), str(n_bars)],
        capture_output=True,
        text=True,
        check=True,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"\nmemory: {n_genomes} genomes x {n_assets} assets x {n_bars} bars, daily rebalancing, the fitness path "
        f"(Evaluator.metrics: the fused scorer): peak RSS {res['peak_mib']:.0f} MiB (interpreter, imports and "
        f"prices {res['baseline_mib']:.0f} MiB), {res['seconds']:.1f} s incl. first-run compile if the cache is cold; "
        f"limit 1024 MiB: {'met' if res['peak_mib'] < 1024 else 'MISSED'}"
    )
    return res


def save(context: dict, parts: dict) -> None:
    """The figures of the parts that ran (name -> (rows, (genomes, assets, bars))) into
    ``experiments/results/bench_simulate.json`` (see the module's doc)."""
    import numba
    import readme_figures  # experiments/, on the path (main)

    threads = numba.get_num_threads()
    saved = {
        name: {**context, "genomes": g, "assets": a, "bars": b, "numba_threads": threads, "rows": rows}
        for name, (rows, (g, a, b)) in parts.items()
        if rows  # thread scaling on a one-thread machine: skipped
    }
    path = readme_figures.save_results("bench_simulate", saved)
    print(f"\nsaved {', '.join(saved)} to {path}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller workload, one vectorbt repeat")
    ap.add_argument("--perp-only", action="store_true", help="only the perp-vs-spot case")
    ap.add_argument("--speed-only", action="store_true", help="only the kernel-vs-vectorbt speed table")
    ap.add_argument("--frame-only", action="store_true", help="only simulate() on a DataFrame each call")
    ap.add_argument("--scaling-only", action="store_true", help="only thread scaling and memory")
    ap.add_argument("--memory-child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        _memory_child(*args.memory_child)
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import readme_figures

    context = readme_figures.run_context()  # the load average before this run's own load
    issue = (200, 20, 2000)  # the issue's workload
    if args.perp_only:
        save(context, {"perp": (bench_perp(*issue), issue)})
        return 0
    if args.speed_only:
        save(context, {"speed": (bench_speed(*issue, 2), issue), "frame": (bench_frame(*issue, 2), issue)})
        return 0
    if args.frame_only:
        save(context, {"frame": (bench_frame(*issue, 2), issue)})
        return 0
    if args.quick:
        bench_speed(50, 20, 1000, 1)
        bench_frame(50, 20, 1000, 1)
        bench_drift(50, 20, 1000, 1)
        bench_perp(50, 20, 1000)
        bench_scaling(128, 50, 2000, 2)
        bench_memory(200, 50, 5000)
        return 0  # a smaller workload: not saved
    heavy, memory = (1024, 50, 5000), (2000, 50, 5000)
    if args.scaling_only:
        save(context, {"scaling": (bench_scaling(*heavy), heavy), "memory": (bench_memory(*memory), memory)})
        return 0
    parts = {"speed": (bench_speed(*issue, 2), issue), "frame": (bench_frame(*issue, 2), issue)}
    parts["drift"] = (bench_drift(*issue, 1), issue)
    parts["perp"] = (bench_perp(*issue), issue)
    parts["scaling"] = (bench_scaling(*heavy), heavy)
    parts["memory"] = (bench_memory(*memory), memory)
    save(context, parts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

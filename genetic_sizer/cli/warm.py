"""Compile the kernels ahead of the first run: ``python -m genetic_sizer.cli.warm`` (``make install`` runs it).

Numba compiles a kernel for each combination of argument types it is called with and caches the machine code on disk
(:data:`genetic_sizer.backtest.kernels.CACHE_DIR`, a directory named by a hash of the kernel sources, so the code of
other sources is never loaded). :func:`warm` calls what runs call, on small inputs of the same types: an evolution
(``genetic-sizer evolve``, the default configuration on a few assets and generations), a walk-forward and a
constrained frontier on moments (``genetic-sizer frontier``, the moments kernel and its support QP), then the
simulation API (spot and perp, calendar, daily and drift-band rebalancing, schedules, leverage per genome and segment,
funding given or carried by the prices (a Hyperliquid file's) and bar ranges, the two-pass path and the fused scorer,
the lane scorer), and with ``reference=True`` the vectorbt reference (vectorbt's own kernels are cached beside its
package) and the resampled metrics of ``engine: vectorbt``. A first ``make evolve`` then loads every kernel from the
cache instead of compiling it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["warm"]

_SMALL = (
    "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY]",
    "data.start=2021-06-01",
    "evolution.population=8",
    "evolution.generations=2",
    "evolution.hall_of_fame=2",
)


def _synthetic(n_bars: int = 120, n_assets: int = 4, seed: int = 0):
    from genetic_sizer.data.prices import Prices

    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (n_bars, n_assets)), axis=0))
    index = pd.date_range("2024-01-01", periods=n_bars, freq="D", tz="UTC")
    spread = np.exp(np.abs(rng.normal(0.0, 0.01, close.shape)))
    prices = Prices(close=close, index=index, symbols=[f"A{k}" for k in range(n_assets)], source="warm-up")
    ranged = prices.with_fields({"high": close * spread, "low": close / spread})
    funding = rng.normal(1e-5, 1e-5, close.shape)
    return prices, ranged, funding


def _api(reference: bool) -> None:
    from genetic_sizer.backtest.simulate import backtest, score

    prices, ranged, funding = _synthetic()
    n = prices.n_assets
    longonly = np.full((3, n), 1.0 / n)
    longshort = np.tile(np.r_[0.5, -0.25, 0.25, -0.0][:n] / 1.0, (3, 1))
    longshort /= np.abs(longshort).sum(axis=1, keepdims=True)
    starts = [0, 40, 80]
    schedule = np.repeat(longonly[:, None, :], len(starts), axis=1)
    for w in (longonly, longshort):
        for kw in ({"rebalance": "M"}, {"rebalance": "D"}, {"rebalance": "once", "threshold": 0.05}):
            backtest(prices, w, fees=0.0005, **kw)
            score(prices, w, fees=0.0005, **kw)
            score(prices, w, fees=0.0005, risk_free=np.full(prices.n_bars, 1e-4), **kw)
    backtest(prices, schedule, segment_starts=starts, rebalance="M")
    score(prices, schedule, segment_starts=starts, rebalance="M")
    for p in (prices, ranged):
        for f in (None, funding, pd.DataFrame(funding, index=prices.index, columns=list(prices.symbols))):
            for w in (longonly, longshort):
                kw = {"market": "perp", "leverage": 2.0, "max_leverage": 10.0, "funding": f, "fees": 0.00045}
                backtest(p, w, **kw)
                score(p, w, **kw)
                score(p, w, threshold=0.05, **kw)
        carried = p.with_funding(funding)  # funding carried by the prices (a Hyperliquid file's): read-only arrays
        for w in (longonly, longshort):
            kw = {"market": "perp", "leverage": 2.0, "max_leverage": 10.0, "fees": 0.00045}
            backtest(carried, w, **kw)
            score(carried, w, **kw)
            score(carried, w, threshold=0.05, **kw)
        per_segment = np.full((3, len(starts)), 2.0)
        perp = {"market": "perp", "max_leverage": 10.0, "segment_starts": starts}
        for q in (p, carried):
            backtest(q, schedule, leverage=per_segment, **perp)
            score(q, schedule, leverage=per_segment, **perp)
    policy = {"min_trade": 0.01, "max_turnover": 0.5, "vol_target": 0.2}  # the rebalancing policies' kernels
    for kw in ({}, {"market": "perp", "leverage": 2.0, "max_leverage": 10.0, "funding": funding}):
        backtest(prices, longonly, policy=policy, **kw)
        score(prices, longonly, policy=policy, **kw)
    from genetic_sizer.backtest.kernels.lane_metrics import LANES, lane_scratch, score_lanes_nb
    from genetic_sizer.backtest.kernels.spot import SCORE_WIDTH

    lanes = np.ascontiguousarray(np.tile(prices.close[:, :1], (1, LANES)))  # genomes side by side (lane-innermost)
    out = np.empty((LANES, SCORE_WIDTH))
    for rf in (np.zeros(1), np.full(prices.n_bars, 1e-4)):
        score_lanes_nb(lanes, LANES, 100.0, 252.0, rf, lane_scratch(prices.n_bars), out)
    if reference:
        from genetic_sizer.backtest.resample import blocks

        backtest(prices, longonly, engine="vectorbt", fees=0.0005)
        backtest(prices, longonly, engine="vectorbt", rebalance="once", threshold=0.05, fees=0.0005)
        score(prices, longonly, engine="vectorbt", fees=0.0005, resamples=blocks(prices.n_bars, 4))  # engine: vectorbt


def _runs(tmp: Path) -> None:
    from genetic_sizer.cli.main import main

    args = [a for s in _SMALL for a in ("--set", s)]
    wf = ["--set", "walkforward.train=150", "--set", "walkforward.test=100"]
    for command, extra in (("evolve", []), ("walkforward", wf)):
        out = tmp / command
        code = main([command, "--out", str(out), "--no-plots", *args, *extra])
        if code != 0:
            raise RuntimeError(f"warm-up: genetic-sizer {command} exited with {code}")


def _frontier(tmp: Path) -> None:
    """``genetic-sizer frontier`` on the shipped port1 (the moments kernel, the support QP, the return spacing and the
    operators under exact cardinality), and the weighted objective kernel."""
    from genetic_sizer.backtest.kernels.moments import population_objective
    from genetic_sizer.cli.main import main
    from genetic_sizer.data.moments import example_path, load_orlib

    port1 = str(example_path("port1"))
    args = ["-K", "3", "--exact-cardinality", "--min-weight", "0.01", "--points", "3", "--budget", "200"]
    code = main(["frontier", "--moments", port1, *args, "--out", str(tmp / "frontier")])
    if code != 0:
        raise RuntimeError(f"warm-up: genetic-sizer frontier exited with {code}")
    m = load_orlib(port1)
    population_objective(np.full((2, m.n_assets), 1.0 / m.n_assets), m.mu, m.cov, 0.5)


def warm(*, reference: bool = False, quiet: bool = True) -> dict[str, float]:
    """Compile (or load from the cache) every kernel the runs and the simulation API use; seconds per step."""
    from genetic_sizer.backtest.kernels import CACHE_DIR

    seconds = {}
    sink = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="genetic_sizer-warm-") as tmp:
        steps = (
            ("runs", lambda: _runs(Path(tmp))),
            ("frontier", lambda: _frontier(Path(tmp))),
            ("api", lambda: _api(reference)),
        )
        for name, step in steps:
            t0 = time.perf_counter()
            if quiet:
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    step()
            else:
                step()
            seconds[name] = time.perf_counter() - t0
    seconds["cache_dir"] = str(CACHE_DIR)
    return seconds


PRUNE_DAYS = 30.0
"""Kernel caches of other sources (another version's hash) untouched for this many days are removed by the warm-up."""


def _newest_mtime(path: Path) -> float:
    newest = path.stat().st_mtime
    for p in path.rglob("*"):
        with contextlib.suppress(OSError):
            newest = max(newest, p.stat().st_mtime)
    return newest


def prune_caches(current: Path, older_than_days: float = PRUNE_DAYS, now: float | None = None) -> list[Path]:
    """Remove the kernel caches beside ``current`` (directories ``numba-`` + 16 hex digits, with a compile target's
    suffix or none: other sources' hashes) in which nothing was written for ``older_than_days``: a cache is written
    when its sources are compiled, so an old one belongs to a version not installed since (one still in use only
    recompiles, once). ``current``, the directories of its hash for other targets and any other name are kept.
    Returns the directories removed."""
    import re
    import shutil

    if older_than_days < 0:
        raise ValueError(f"older_than_days must be >= 0, got {older_than_days!r}")
    now = time.time() if now is None else now
    cache_name = re.compile(r"numba-([0-9a-f]{16})(-[A-Za-z0-9._-]+)?")
    mine = cache_name.fullmatch(current.name)
    source = mine[1] if mine else None  # its directories for other targets are kept
    removed = []
    if not current.parent.is_dir():
        return removed
    for d in sorted(current.parent.iterdir()):
        name = cache_name.fullmatch(d.name)
        if d == current or not d.is_dir() or d.is_symlink() or not name or name[1] == source:
            continue
        if now - _newest_mtime(d) >= older_than_days * 86400.0:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def _start_target(name: str):
    """The warm-up for compile target ``name`` in a child process (``NUMBA_CPU_NAME=name``: its own cache directory,
    :func:`genetic_sizer.backtest.kernels.target_suffix`), running beside this process's."""
    import os
    import subprocess

    env = {**os.environ, "NUMBA_CPU_NAME": name}
    env.pop("NUMBA_CPU_FEATURES", None)
    cmd = [sys.executable, "-m", "genetic_sizer.cli.warm", "--no-prune"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return name, proc


def _finish_target(name: str, proc) -> tuple[bool, str]:
    out, _ = proc.communicate()
    lines = out.strip().splitlines()
    if proc.returncode != 0:
        tail = "\n".join(lines[-20:])
        return False, f"warm-up for NUMBA_CPU_NAME={name} failed (exit code {proc.returncode}):\n{tail}"
    return True, f"NUMBA_CPU_NAME={name}: {lines[-1] if lines else 'done'}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", action="store_true", help="also compile the vectorbt reference's kernels")
    ap.add_argument(
        "--prune-days",
        type=float,
        default=PRUNE_DAYS,
        help=f"remove other sources' kernel caches untouched for this many days (default {PRUNE_DAYS:g})",
    )
    ap.add_argument(
        "--cpu",
        action="append",
        default=[],
        metavar="NAME",
        help="also compile for this target (NUMBA_CPU_NAME, e.g. generic or x86-64-v3), in a process of its own "
        "beside this one; repeatable",
    )
    ap.add_argument("--no-prune", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.prune_days < 0:
        ap.error(f"--prune-days must be >= 0, got {args.prune_days:g}")
    for name in args.cpu:
        if not name.strip() or not all(c.isalnum() or c in "._-" for c in name):
            ap.error(f"--cpu must name a compile target such as generic or x86-64-v3, got {name!r}")
    t0 = time.perf_counter()
    others = [_start_target(name) for name in dict.fromkeys(args.cpu)]
    try:
        done = warm(reference=args.reference)
    finally:
        results = [_finish_target(*other) for other in others]
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in done.items() if k != "cache_dir")
    print(f"kernels compiled into {done['cache_dir']} in {time.perf_counter() - t0:.1f} s ({steps})")
    for ok, text in results:
        print(text, file=sys.stdout if ok else sys.stderr)
    if not all(ok for ok, _ in results):
        return 1
    if args.no_prune:
        return 0
    removed = prune_caches(Path(done["cache_dir"]), args.prune_days)
    if removed:
        names = ", ".join(d.name for d in removed)
        days = f"{args.prune_days:g}"
        print(f"removed {len(removed)} kernel cache(s) of other sources untouched for {days} days: {names}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Shared fixtures: synthetic price sets of any shape and the embedded default data."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

# Ray must bind 127.0.0.1 only; set before any test can start it (inherited by its processes).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from genetic_sizer.data.loaders import load_default
from genetic_sizer.data.prices import Prices


def make_prices(
    n_bars: int,
    n_assets: int,
    seed: int = 0,
    *,
    freq: str = "D",
    start: str = "2010-01-01",
    vol: float = 0.02,
) -> Prices:
    """Geometric random walks with per-asset drift and volatility; ``freq`` 'D' (7 days a week),
    'B' (business days) or 'h' (hourly, 24/7)."""
    rng = np.random.default_rng(seed)
    drift = rng.normal(0.0003, 0.0005, n_assets)
    sigma = vol * rng.uniform(0.5, 1.5, n_assets)
    rets = rng.normal(drift, sigma, size=(n_bars, n_assets))
    close = 100.0 * rng.uniform(0.2, 5.0, n_assets) * np.exp(np.cumsum(rets, axis=0))
    index = pd.date_range(start, periods=n_bars, freq=freq, tz="UTC")
    symbols = [f"A{k:02d}" for k in range(n_assets)]
    return Prices(close=close, index=index, symbols=symbols, source=f"synthetic(seed={seed})")


def random_weights(n_genomes: int, n_assets: int, seed: int = 0, kind: str = "longonly") -> np.ndarray:
    """Valid genomes: Dirichlet points on the simplex (with some exact zeros and a one-hot genome) or
    long/short vectors with unit gross exposure."""
    rng = np.random.default_rng(seed)
    if kind == "longonly":
        w = rng.dirichlet(np.full(n_assets, 0.7), size=n_genomes)
        if n_genomes > 2:
            w[0] = 0.0
            w[0, rng.integers(n_assets)] = 1.0  # one-hot
            w[1, : n_assets // 2] = 0.0  # exact zeros
            w[1] /= w[1].sum()
        return w
    w = rng.normal(size=(n_genomes, n_assets))
    w /= np.abs(w).sum(axis=1, keepdims=True)
    return w


@pytest.fixture(scope="session")
def sp500() -> Prices:
    return load_default()


def make_wipeout_prices(n_bars: int = 90, seed: int = 0, *, noise: float = 0.005) -> Prices:
    """Daily prices of RALLY (rises 10x), FLAT, SLIDE (falls to 0.6x) and DRIFT (rises 1.2x), with a little
    noise: a long/short genome short of RALLY by more than about 11 % of its book loses more than its capital."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n_bars)[:, None]
    trend = np.array([10.0, 1.0, 0.6, 1.2]) ** t
    close = 100.0 * trend * np.exp(np.cumsum(rng.normal(0.0, noise, (n_bars, 4)), axis=0))
    index = pd.date_range("2024-01-01", periods=n_bars, freq="D", tz="UTC")
    return Prices(close=close, index=index, symbols=["RALLY", "FLAT", "SLIDE", "DRIFT"], source="synthetic(wipeout)")


@pytest.fixture(autouse=True)
def _live_state_dir(tmp_path_factory, monkeypatch):
    """The live sizer's state directory (account locks, the kill switch's latch, the high-water mark): a fresh one
    for every test (inherited by the processes it starts), never the user's."""
    monkeypatch.setenv("GENETIC_SIZER_STATE_DIR", str(tmp_path_factory.mktemp("state")))


FIRST = (
    "test_ray.py",
    "test_selection.py",
    "test_jobs.py",
    "test_walkforward.py",
    "test_vary_nb.py",
    "test_live_ops.py",
    "test_notebooks.py",
    "test_live_service.py",
    "test_constraints.py",
    "test_simulate.py",
    "test_champion.py",
    "test_significance.py",
    "test_live_safety.py",
    "test_genome.py",
    "test_frontier.py",
    "test_perp.py",
    "test_rebalance_policies.py",
    "test_kernel_cache.py",
    "test_cli.py",
    "test_isa.py",
)
"""The longest test files, longest first (about 60 s down to 5 s each with both processes busy: local Ray instances,
thirty selection scenarios, a Ray head running jobs, walk-forwards, notebooks, the soaks), then every other file in its
own order. ``make test`` runs the suite in two processes (pytest-xdist, a file to a process): started longest first,
the two end together instead of one waiting on the other's last long file, and the Ray files (mostly waiting on Ray's
processes) start beside files that compute. pytest-xdist would otherwise start files by their number of tests (its
``--loadscope-reorder``, turned off below), leaving a long file of few tests, e.g. the notebooks, for the end."""


def pytest_configure(config):
    """Under pytest-xdist: the order of :data:`FIRST` (xdist's ``--no-loadscope-reorder``), and numpy's BLAS
    (OpenBLAS) on each process's share of the CPUs (``OPENBLAS_NUM_THREADS``, unless set; inherited by the worker
    processes and what they start). With two processes on two cores, each one's BLAS threads wait on the core the
    other process is using: the selection, significance, allocator and statistics tests (``-n 2``) took 53 s of CPU
    against 43 s on one thread each on a quiet machine, and 126 s against 86 s of time with other work beside them.
    One process (``-p no:xdist``) keeps numpy's default."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    workers = getattr(config.option, "numprocesses", None)  # -n: an int, or "auto"/"logical" (one per CPU)
    if workers in ("auto", "logical") or (isinstance(workers, int) and workers > 1):
        per = 1 if isinstance(workers, str) else max(1, (os.cpu_count() or 1) // workers)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", str(per))  # read by numpy's BLAS as each worker starts


def pytest_collection_modifyitems(config, items):
    rank = {name: k for k, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))  # stable: every file keeps its own order

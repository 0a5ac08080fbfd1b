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


FIRST = ("test_jobs.py", "test_selection.py", "test_ray.py", "test_isa.py")
"""The longest test files (a Ray head running jobs, thirty evolutions, local Ray instances, and a compile for another
instruction set when ``make install`` did not warm it), started first so that ``make test``'s two processes
(pytest-xdist, a file to a process) do not end on one of them."""


def pytest_collection_modifyitems(config, items):
    rank = {name: k for k, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))  # stable: every file keeps its own order

"""Weights -> portfolio values, through the fast Numba kernel or through vectorbt.

This is the only module that imports vectorbt (lazily: ``import vectorbt`` takes seconds).

The reference semantics are::

    vbt.Portfolio.from_orders(close=tiled_close, size=targets, size_type='targetpercent',
                              group_by=genome_of_column, cash_sharing=True, call_seq='auto',
                              fees=fees, slippage=slippage, init_cash=init_cash, direction=...)

(and vectorbt's default ``min_size=1e-8``, passed explicitly so that global vectorbt settings cannot change
the reference) with ``targets`` NaN except on rebalance bars, where each asset's target is its weight. Long-only genomes
use ``direction='longonly'``, genomes with a short weight ``direction='both'``. ``engine="fast"`` runs
:func:`genetic_sizer.nb.simulate_population_nb`, which reproduces that to floating-point noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genetic_sizer import nb
from genetic_sizer.data import Prices
from genetic_sizer.errors import ConfigError, DataError, GenomeError

__all__ = [
    "ENGINES",
    "REBALANCE_CODES",
    "Backtest",
    "backtest",
    "rebalance_mask",
    "simulate",
    "validate_weights",
]

ENGINES = ("fast", "vectorbt")
REBALANCE_CODES = ("once", "D", "W", "M", "Q")
WEIGHT_TOL = 1e-9
"""Absolute tolerance on the sum of |w| (and on negative zero weights)."""

# vectorbt grows memory with columns: the reference engine simulates at most this many
# (bar x column) cells per from_orders call, i.e. about 8 MB per float64 array it allocates.
VBT_CHUNK_CELLS = 1_000_000


@dataclass(frozen=True)
class Backtest:
    """What one simulation of a population produced.

    Attributes
    ----------
    value : ndarray (n_bars, n_genomes)
        Portfolio value of every genome at every bar's close.
    traded : ndarray (n_genomes,)
        Sum over rebalance bars after the first of traded notional / portfolio value before trading
        (the initial allocation is not counted). :func:`genetic_sizer.fitness.compute_metrics` turns it
        into annualized turnover.
    rebalance : ndarray (n_bars,) of bool
        The bars on which the portfolio was rebalanced.
    """

    value: np.ndarray
    traded: np.ndarray
    rebalance: np.ndarray


def _as_prices(close) -> Prices:
    if isinstance(close, Prices):
        return close
    if isinstance(close, pd.DataFrame):
        return Prices.from_frame(close, source="DataFrame", leading_gaps="error")
    raise DataError(f"close must be a Prices or a pandas DataFrame, got {type(close).__name__}")


def rebalance_mask(index: pd.DatetimeIndex, rebalance) -> np.ndarray:
    """Boolean mask of rebalance bars for a policy.

    ``"once"``: the first bar only (buy and hold). ``"D"``, ``"W"``, ``"M"``, ``"Q"``: the first bar of
    each calendar day, week (Monday to Sunday), month or quarter, in UTC. An int N: every N bars,
    starting with the first. The first bar is always a rebalance bar.
    """
    n = len(index)
    mask = np.zeros(n, dtype=np.bool_)
    if isinstance(rebalance, bool) or not isinstance(rebalance, (int, np.integer, str)):
        raise ConfigError(f"rebalance must be one of {list(REBALANCE_CODES)} or a positive int, got {rebalance!r}")
    if isinstance(rebalance, (int, np.integer)):
        if rebalance < 1:
            raise ConfigError(f"rebalance every N bars needs N >= 1, got {rebalance}")
        mask[:: int(rebalance)] = True
        return mask
    code = rebalance.strip()
    if code.lower() == "once":
        mask[0] = True
        return mask
    code = code.upper()
    if code == "D":
        key = index.normalize().asi8
    elif code == "W":
        key = (index.normalize() - pd.to_timedelta(index.dayofweek, unit="D")).asi8
    elif code == "M":
        key = index.year.to_numpy() * 12 + index.month.to_numpy()
    elif code == "Q":
        key = index.year.to_numpy() * 4 + index.quarter.to_numpy()
    elif code.isdigit():
        return rebalance_mask(index, int(code))
    else:
        raise ConfigError(f"rebalance must be one of {list(REBALANCE_CODES)} or a positive int, got {rebalance!r}")
    mask[0] = True
    mask[1:] = key[1:] != key[:-1]
    return mask


def validate_weights(weights, n_assets: int, symbols=None) -> np.ndarray:
    """Check a population of weight genomes; return it as a C-contiguous float64 (n_genomes, n_assets).

    Every genome must be finite with sum of |w| equal to 1 (within 1e-9): long-only genomes lie on the
    simplex, long/short genomes have unit gross exposure. A 1-D array is one genome. Violations raise a
    :class:`GenomeError` naming the genome, the asset and the offending value or sum.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] != n_assets:
        raise GenomeError(f"weights must have shape (n_genomes, {n_assets}), got {np.shape(weights)}")
    if w.shape[0] == 0:
        raise GenomeError("weights: the population is empty")
    finite = np.isfinite(w)
    if not finite.all():
        g, k = np.argwhere(~finite)[0]
        name = symbols[k] if symbols is not None else k
        raise GenomeError(f"genome {g}: weight of asset {name!r} is {float(w[g, k])!r}")
    gross = np.abs(w).sum(axis=1)
    bad = np.flatnonzero(np.abs(gross - 1.0) > WEIGHT_TOL)
    if bad.size:
        g = int(bad[0])
        kind = "sum" if (w[g] >= 0).all() else "sum of |w|"
        raise GenomeError(
            f"genome {g}: {kind} of weights is {float(gross[g])!r}, must be 1 (within {WEIGHT_TOL:g}); "
            f"{bad.size} genome(s) invalid"
        )
    return np.ascontiguousarray(w)


def _check_costs(fees, slippage, init_cash) -> tuple[float, float, float]:
    out = []
    for name, v, lo, hi in (("fees", fees, 0.0, 1.0), ("slippage", slippage, 0.0, 1.0)):
        if not isinstance(v, (int, float, np.floating, np.integer)) or not (lo <= float(v) < hi):
            raise ConfigError(f"{name} must be a number in [{lo}, {hi}), got {v!r}")
        out.append(float(v))
    if not isinstance(init_cash, (int, float, np.floating, np.integer)) or not (
        math.isfinite(init_cash) and init_cash > 0
    ):
        raise ConfigError(f"init_cash must be a positive finite number, got {init_cash!r}")
    out.append(float(init_cash))
    return out[0], out[1], out[2]


def backtest(
    close,
    weights,
    *,
    rebalance="M",
    fees: float = 0.0,
    slippage: float = 0.0,
    init_cash: float = 10_000.0,
    engine: str = "fast",
) -> Backtest:
    """Simulate a population of genomes; return values, turnover and the rebalance mask.

    See :func:`simulate` for the parameters.
    """
    prices = _as_prices(close)
    w = validate_weights(weights, prices.n_assets, prices.symbols)
    fees, slippage, init_cash = _check_costs(fees, slippage, init_cash)
    mask = rebalance_mask(prices.index, rebalance)
    if engine == "fast":
        value, traded = _simulate_fast(prices.close, w, mask, fees, slippage, init_cash)
    elif engine == "vectorbt":
        value, traded = _simulate_vectorbt(prices, w, mask, fees, slippage, init_cash)
    else:
        raise ConfigError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    return Backtest(value=value, traded=traded, rebalance=mask)


def simulate(
    close,
    weights,
    *,
    rebalance="M",
    fees: float = 0.0,
    slippage: float = 0.0,
    init_cash: float = 10_000.0,
    engine: str = "fast",
) -> np.ndarray:
    """Portfolio value of every genome at every bar.

    Parameters
    ----------
    close : Prices or DataFrame
        Close prices (time index, one column per asset).
    weights : array-like (n_genomes, n_assets) or (n_assets,)
        Long-only (each >= 0, sum 1) or long/short (sum of |w| = 1) weight genomes.
    rebalance : {"once", "D", "W", "M", "Q"} or int
        When to trade back to the target weights (see :func:`rebalance_mask`).
    fees, slippage : float
        Proportional fees on traded notional and proportional price slippage, in [0, 1).
    init_cash : float
        Starting cash of every genome.
    engine : {"fast", "vectorbt"}
        The Numba population kernel, or the vectorbt reference (``Portfolio.from_orders``).

    Returns
    -------
    ndarray (n_bars, n_genomes)
    """
    return backtest(
        close,
        weights,
        rebalance=rebalance,
        fees=fees,
        slippage=slippage,
        init_cash=init_cash,
        engine=engine,
    ).value


def _simulate_fast(close, w, mask, fees, slippage, init_cash):
    n_genomes = w.shape[0]
    value = np.empty((n_genomes, close.shape[0]), dtype=np.float64)
    traded = np.empty(n_genomes, dtype=np.float64)
    longonly = (w >= 0).all(axis=1)
    nb.simulate_population_nb(close, w, mask, fees, slippage, init_cash, longonly, value, traded)
    return value.T, traded


def _simulate_vectorbt(prices: Prices, w, mask, fees, slippage, init_cash):
    """The reference: vectorbt's from_orders, one group per genome, in bounded chunks of genomes."""
    import vectorbt as vbt
    from vectorbt.portfolio.enums import Direction

    n_bars, n_assets = prices.close.shape
    n_genomes = w.shape[0]
    chunk = max(1, VBT_CHUNK_CELLS // (n_bars * n_assets))
    value = np.empty((n_bars, n_genomes), dtype=np.float64)
    traded = np.empty(n_genomes, dtype=np.float64)
    for lo in range(0, n_genomes, chunk):
        hi = min(n_genomes, lo + chunk)
        wc = w[lo:hi]
        m = hi - lo
        tiled = np.tile(prices.close, (1, m))
        size = np.full(tiled.shape, np.nan)
        size[mask] = wc.reshape(1, -1)
        direction = np.where(np.repeat((wc >= 0).all(axis=1), n_assets), Direction.LongOnly, Direction.Both)
        close_df = pd.DataFrame(tiled, index=prices.index)
        pf = vbt.Portfolio.from_orders(
            close=close_df,
            size=size,
            size_type="targetpercent",
            direction=direction[None, :],
            group_by=np.repeat(np.arange(m), n_assets),
            cash_sharing=True,
            call_seq="auto",
            fees=fees,
            slippage=slippage,
            init_cash=init_cash,
            min_size=nb.MIN_SIZE,
            freq=None,
        )
        value[:, lo:hi] = pf.value().to_numpy().reshape(n_bars, m)
        traded[lo:hi] = _vbt_traded(pf, tiled, mask, m, n_assets, init_cash)
    return value, traded


def _vbt_traded(pf, tiled_close, mask, n_groups, n_assets, init_cash) -> np.ndarray:
    """Turnover sum from vectorbt's order records, the same definition as the fast kernel's."""
    rec = pf.orders.values
    cash = pf.cash().to_numpy().reshape(-1, n_groups)  # after each bar's orders
    assets = pf.assets().to_numpy()  # (n_bars, n_columns)
    rows = np.flatnonzero(mask)
    rows = rows[rows > 0]
    pre_value = np.empty((len(rows), n_groups))
    for j, i in enumerate(rows):
        held = assets[i - 1] * tiled_close[i]
        pre_value[j] = cash[i - 1] + held.reshape(n_groups, n_assets).sum(axis=1)
    notional = np.zeros((tiled_close.shape[0], n_groups))
    np.add.at(notional, (rec["idx"], rec["col"] // n_assets), rec["size"] * rec["price"])
    return (notional[rows] / pre_value).sum(axis=0)

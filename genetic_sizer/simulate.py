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

A schedule of weights (``segment_starts``) changes a genome's targets over time: from bar
``segment_starts[s]`` on, the targets are ``weights[:, s]``. Every segment start is a rebalance bar too,
and each genome stays one portfolio (cash, positions and fees carry across segments).

``market="perp"`` simulates the account the sizer trades instead: Hyperliquid perpetuals with cross margin,
``leverage``, hourly ``funding``, taker fees and liquidation below the maintenance margin of ``max_leverage``
(:mod:`genetic_sizer.perp` states the semantics). vectorbt has no perpetuals (its issue #639): the fast kernel is
the engine, and ``engine="reference"`` runs :func:`genetic_sizer.perp.reference_genome`, a plain-Python loop of
the same account, which the test suite and every perp champion are checked against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genetic_sizer import nb, perp
from genetic_sizer import vocab as V
from genetic_sizer.data import Prices
from genetic_sizer.errors import ConfigError, DataError, GenomeError

__all__ = [
    "ENGINES",
    "REBALANCE_CODES",
    "Backtest",
    "backtest",
    "check_leverage",
    "holdings",
    "rebalance_mask",
    "resolve_max_leverage",
    "simulate",
    "validate_schedule",
    "validate_segment_starts",
    "validate_weights",
]

ENGINES = V.ENGINES
REBALANCE_CODES = V.REBALANCE_CODES
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
        (the initial allocation is not counted; segment switches are counted).
        :func:`genetic_sizer.fitness.compute_metrics` turns it into annualized turnover.
    rebalance : ndarray (n_bars,) of bool
        The bars on which the portfolio was rebalanced: the bars of the rebalance policy and every
        segment start (a liquidated perp account trades on none after its liquidation bar).
    segment_starts : ndarray (n_segments,) of int64
        First bar of each segment of the weight schedule; ``[0]`` for static weights.
    market : {"spot", "perp"}
        The account model simulated.
    funding_paid, funding_received, fees_paid : ndarray (n_genomes,), or None for spot
        Perp: the funding each genome paid and received, and the fees it paid, in the account's currency (>= 0).
    liquidated : ndarray (n_genomes,) of int64, or None for spot
        Perp: the bar on which each genome was liquidated, -1 if never.
    leverage : ndarray (n_genomes,), or None for spot
        Perp: the gross leverage each genome was sized at.
    """

    value: np.ndarray
    traded: np.ndarray
    rebalance: np.ndarray
    segment_starts: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    market: str = "spot"
    funding_paid: np.ndarray | None = None
    funding_received: np.ndarray | None = None
    fees_paid: np.ndarray | None = None
    liquidated: np.ndarray | None = None
    leverage: np.ndarray | None = None


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
    code = V.parse_rebalance(rebalance)
    if isinstance(code, int):
        mask[::code] = True
        return mask
    if code == "once":
        mask[0] = True
        return mask
    if code == "D":
        key = index.normalize().asi8
    elif code == "W":
        key = (index.normalize() - pd.to_timedelta(index.day_of_week, unit="D")).asi8
    elif code == "M":
        key = index.year.to_numpy() * 12 + index.month.to_numpy()
    else:  # "Q"
        key = index.year.to_numpy() * 4 + index.quarter.to_numpy()
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
        hint = "; a schedule (n_genomes, n_segments, n_assets) needs segment_starts" if w.ndim == 3 else ""
        raise GenomeError(f"weights must have shape (n_genomes, {n_assets}), got {np.shape(weights)}{hint}")
    _check_genomes(w[:, None, :], symbols, None)
    return np.ascontiguousarray(w)


def validate_segment_starts(segment_starts, n_bars: int) -> np.ndarray:
    """Check the first bar of each segment of a weight schedule; return them as int64 (n_segments,).

    They must be integer bar indices, the first 0, strictly increasing and below ``n_bars``. Violations
    raise a :class:`ConfigError` naming ``segment_starts`` and the offending value.
    """
    arr = np.asarray(segment_starts)
    if arr.ndim != 1 or arr.size == 0:
        raise ConfigError(f"segment_starts must be a non-empty 1-D sequence of bar indices, got {segment_starts!r}")
    items = arr.tolist() if isinstance(segment_starts, np.ndarray) else list(segment_starts)
    bad = [j for j, v in enumerate(items) if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer))]
    if bad or arr.dtype.kind not in "iu":
        # name a value with a fraction before an integral float such as 3.0
        j = next((j for j in bad if not (isinstance(items[j], float) and items[j].is_integer())), bad[0] if bad else 0)
        raise ConfigError(f"segment_starts[{j}] is {items[j]!r}, must be an integer bar index")
    if arr[0] != 0:
        raise ConfigError(f"segment_starts must begin at bar 0, got segment_starts[0] = {int(arr[0])}")
    if arr.size > 1:
        bad = np.flatnonzero(arr[1:] <= arr[:-1])
        if bad.size:
            j = int(bad[0]) + 1
            raise ConfigError(
                f"segment_starts must be strictly increasing, got segment_starts[{j}] = {int(arr[j])} "
                f"after segment_starts[{j - 1}] = {int(arr[j - 1])}"
            )
    if arr[-1] >= n_bars:
        j = int(np.flatnonzero(arr >= n_bars)[0])
        raise ConfigError(
            f"segment_starts[{j}] = {int(arr[j])} is out of range: the prices have {n_bars} bars (0..{n_bars - 1})"
        )
    return arr.astype(np.int64)


def validate_schedule(weights, segment_starts, n_bars: int, n_assets: int, symbols=None):
    """Check a population of weight schedules and their segment starts.

    Parameters
    ----------
    weights : array-like (n_genomes, n_segments, n_assets)
        From bar ``segment_starts[s]`` on, genome ``g`` targets ``weights[g, s]``. Each segment of each
        genome is checked like a static genome (finite, sum of |w| = 1 within 1e-9).
    segment_starts : sequence of int (n_segments,)
        See :func:`validate_segment_starts`.
    n_bars, n_assets : int
    symbols : sequence of str, optional
        Asset names for the error messages.

    Returns
    -------
    weights : ndarray float64 (n_genomes, n_segments, n_assets), C-contiguous
    segment_starts : ndarray int64 (n_segments,)

    Raises
    ------
    ConfigError
        Bad ``segment_starts``.
    GenomeError
        Weights of the wrong shape, or a genome's segment that is not finite or not of unit gross
        exposure; the message names the genome, the segment and the value.
    """
    starts = validate_segment_starts(segment_starts, n_bars)
    n_segments = starts.size
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 3 or w.shape[1:] != (n_segments, n_assets):
        raise GenomeError(
            f"with {n_segments} segment_starts, weights must have shape (n_genomes, {n_segments}, {n_assets}), "
            f"got {np.shape(weights)}"
        )
    _check_genomes(w, symbols, starts)
    return np.ascontiguousarray(w), starts


def _check_genomes(w, symbols, starts) -> None:
    """Finite weights and unit gross exposure for every genome and segment of ``w`` (n_genomes, n_segments,
    n_assets); ``starts`` None for static weights (messages then name the genome only)."""
    if w.shape[0] == 0:
        raise GenomeError("weights: the population is empty")

    def where(g, s):
        return f"genome {g}" if starts is None else f"genome {g}, segment {s} (from bar {int(starts[s])})"

    finite = np.isfinite(w)
    if not finite.all():
        g, s, k = np.argwhere(~finite)[0]
        name = symbols[k] if symbols is not None else k
        raise GenomeError(f"{where(g, s)}: weight of asset {name!r} is {float(w[g, s, k])!r}")
    gross = np.abs(w).sum(axis=2)
    bad = np.argwhere(np.abs(gross - 1.0) > WEIGHT_TOL)
    if bad.size:
        g, s = (int(x) for x in bad[0])
        kind = "sum" if (w[g, s] >= 0).all() else "sum of |w|"
        what = "genome(s)" if starts is None else "(genome, segment) pair(s)"
        raise GenomeError(
            f"{where(g, s)}: {kind} of weights is {float(gross[g, s])!r}, must be 1 (within {WEIGHT_TOL:g}); "
            f"{len(bad)} {what} invalid"
        )


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


def resolve_max_leverage(max_leverage, symbols) -> np.ndarray:
    """Each asset's maximum leverage as an array (``inf``: no maintenance margin).

    ``max_leverage`` is None (none for every asset), one number, a sequence of one per asset, or a mapping
    ``{SYMBOL: x, default: y}``; symbols the mapping names that are not among ``symbols`` are ignored (one table
    can serve several data sets), and an asset it leaves out takes ``default`` (without one, it is an error).
    Every value must be a finite number >= 1. Errors are :class:`ConfigError` naming ``max_leverage``.
    """
    n = len(symbols)
    if max_leverage is None:
        return np.full(n, np.inf)
    if isinstance(max_leverage, dict):
        missing = [s for s in symbols if s not in max_leverage and "default" not in max_leverage]
        if missing:
            raise ConfigError(f"max_leverage has no value for {missing} and no default; give {{SYMBOL: x, default: y}}")
        values = [max_leverage.get(s, max_leverage.get("default")) for s in symbols]
        names = [s if s in max_leverage else "default" for s in symbols]
    elif isinstance(max_leverage, (int, float, np.integer, np.floating)) and not isinstance(max_leverage, bool):
        values, names = [max_leverage] * n, [None] * n
    else:
        values = list(np.asarray(max_leverage, dtype=object).ravel()) if np.ndim(max_leverage) == 1 else None
        if values is None or len(values) != n:
            raise ConfigError(
                f"max_leverage must be None, a number, one number per asset ({n}) or a {{SYMBOL: x, default: y}} "
                f"mapping, got {max_leverage!r}"
            )
        names = list(symbols)
    out = np.empty(n)
    for k, (v, name) in enumerate(zip(values, names, strict=True)):
        key = "max_leverage" if name is None else f"max_leverage[{name!r}]"
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        if not ok or not (math.isfinite(float(v)) and float(v) >= 1.0):
            raise ConfigError(f"{key} must be a finite number >= 1, got {v!r}")
        out[k] = float(v)
    return out


def check_leverage(leverage, n_genomes: int, max_lev: np.ndarray, symbols) -> np.ndarray:
    """The gross leverage of every genome (one number, or one per genome), each > 0 and at most every asset's
    maximum leverage."""
    arr = np.asarray(leverage, dtype=object)
    if arr.ndim == 0:
        arr = np.full(n_genomes, leverage, dtype=object)
    if arr.ndim != 1 or arr.size != n_genomes:
        raise ConfigError(f"leverage must be a number or one per genome ({n_genomes}), got shape {arr.shape}")
    out = np.empty(n_genomes)
    for g, v in enumerate(arr):
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        if not ok or not (math.isfinite(float(v)) and float(v) > 0):
            where = "leverage" if np.ndim(leverage) == 0 else f"leverage[{g}]"
            raise ConfigError(f"{where} must be a positive finite number, got {v!r}")
        out[g] = float(v)
    top = out.max()
    if top > max_lev.min():
        k = int(np.argmin(max_lev))
        raise ConfigError(
            f"leverage {top:g} is above the max_leverage of {symbols[k]!r} ({max_lev[k]:g}): the exchange would "
            "refuse such positions"
        )
    return out


def _funding_rates(funding, prices: Prices) -> np.ndarray | None:
    """The funding rates a perp simulation charges, (n_bars, n_assets), or None for none (see :func:`simulate`)."""
    if funding is None:
        return prices.funding
    if funding is False:
        return None
    shape = (prices.n_bars, prices.n_assets)
    if isinstance(funding, pd.DataFrame):
        frame = funding.copy()
        frame.columns = [str(c) for c in frame.columns]
        try:
            index = pd.DatetimeIndex(frame.index)
        except (TypeError, ValueError):
            raise DataError("funding: a DataFrame of rates needs the prices' time index") from None
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        extra = index.difference(prices.index)
        if len(extra):
            raise DataError(
                f"funding: row {extra[0].isoformat()} is not a bar of the prices; rows are the prices' bars, each "
                "holding the rates paid since the previous bar (genetic_sizer.data.align_funding sums raw rates so)"
            )
        if index.has_duplicates:
            raise DataError(f"funding: timestamp {index[index.duplicated()][0].isoformat()} appears twice")
        frame.index = index
        arr = frame.reindex(index=prices.index, columns=list(prices.symbols)).to_numpy(dtype=np.float64)
    else:
        arr = np.array(funding, dtype=np.float64)
        if arr.shape != shape:
            raise DataError(f"funding must have shape (n_bars, n_assets) = {shape}, got {arr.shape}")
    if np.isinf(arr).any():
        t, k = np.argwhere(np.isinf(arr))[0]
        raise DataError(f"funding rate of {prices.symbols[k]!r} at {prices.index[t].isoformat()} is {arr[t, k]!r}")
    return np.nan_to_num(arr, nan=0.0)  # missing means no funding paid


def backtest(
    close,
    weights,
    *,
    segment_starts=None,
    rebalance="M",
    fees: float = 0.0,
    slippage: float = 0.0,
    init_cash: float = 10_000.0,
    engine: str = "fast",
    market: str = "spot",
    leverage=1.0,
    funding=None,
    max_leverage=None,
) -> Backtest:
    """Simulate a population of genomes; return values, turnover and the rebalance mask.

    See :func:`simulate` for the parameters.
    """
    prices = _as_prices(close)
    if segment_starts is None:
        w = validate_weights(weights, prices.n_assets, prices.symbols)[:, None, :]
        starts = np.zeros(1, dtype=np.int64)
    else:
        w, starts = validate_schedule(weights, segment_starts, prices.n_bars, prices.n_assets, prices.symbols)
    fees, slippage, init_cash = _check_costs(fees, slippage, init_cash)
    mask = rebalance_mask(prices.index, rebalance)
    if market == "perp":
        costs = (fees, slippage, init_cash)
        return _backtest_perp(prices, w, starts, mask, *costs, engine, leverage, funding, max_leverage)
    if market != "spot":
        raise ConfigError(f"market must be one of {list(V.MARKETS)}, got {market!r}")
    spot_only = {"leverage": bool(np.any(np.asarray(leverage) != 1.0)), "max_leverage": max_leverage is not None}
    spot_only["funding"] = funding is not None and funding is not False
    if any(spot_only.values()):
        name = next(k for k, v in spot_only.items() if v)
        raise ConfigError(f"{name} is a setting of market='perp'; the spot account has none")
    if engine == "fast":
        value, traded = _simulate_fast(prices.close, w, starts, mask, fees, slippage, init_cash)
    elif engine == "vectorbt":
        value, traded = _simulate_vectorbt(prices, w, starts, mask, fees, slippage, init_cash)
    else:
        raise ConfigError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    effective = mask.copy()
    effective[starts] = True
    return Backtest(value=value, traded=traded, rebalance=effective, segment_starts=starts)


def _backtest_perp(prices, w, starts, mask, fees, slippage, init_cash, engine, leverage, funding, max_leverage):
    """:func:`backtest` for ``market="perp"``: the perp kernel, or the plain-Python reference."""
    n_genomes, n_segments, _ = w.shape
    max_lev = resolve_max_leverage(max_leverage, prices.symbols)
    lev = check_leverage(leverage, n_genomes, max_lev, prices.symbols)
    mm_rate = np.where(np.isfinite(max_lev), 0.5 / max_lev, 0.0)
    rates = _funding_rates(funding, prices)
    thresholds = np.full((n_genomes, n_segments), np.inf)  # drift bands: calendar rebalancing only for now
    effective = mask.copy()
    effective[starts] = True
    n_bars = prices.n_bars
    if engine == "fast":
        value = np.empty((n_genomes, n_bars))
        traded = np.empty(n_genomes)
        rebalanced = np.empty((n_genomes, n_bars), dtype=np.bool_)
        account = np.empty((n_genomes, len(perp.ACCOUNT_FIELDS)))
        liquidated = np.empty(n_genomes, dtype=np.int64)
        has_funding = rates is not None
        f = rates if has_funding else np.zeros((1, prices.n_assets))
        perp.simulate_perp_population_nb(
            prices.close,
            np.ascontiguousarray(f),
            has_funding,
            w,
            starts,
            mask[None, :],
            np.zeros(n_genomes, dtype=np.int64),
            thresholds,
            lev,
            mm_rate,
            fees,
            slippage,
            init_cash,
            value,
            traded,
            rebalanced,
            account,
            liquidated,
        )
        paid, received, fees_paid = account.T
        value = value.T
    elif engine == "reference":
        runs = [
            perp.reference_genome(
                prices.close,
                w[g],
                starts,
                mask,
                thresholds=thresholds[g],
                leverage=lev[g],
                mm_rate=mm_rate,
                funding=rates,
                fees=fees,
                slippage=slippage,
                init_cash=init_cash,
            )
            for g in range(n_genomes)
        ]
        value = np.column_stack([r["value"] for r in runs])
        traded, paid, received, fees_paid = (
            np.array([r[k] for r in runs]) for k in ("traded", "funding_paid", "funding_received", "fees_paid")
        )
        liquidated = np.array([r["liquidated"] for r in runs], dtype=np.int64)
    elif engine == "vectorbt":
        raise ConfigError(
            "engine 'vectorbt' has no perpetuals account (vectorbt issue #639): market='perp' runs on engine 'fast', "
            "checked against engine 'reference' (genetic_sizer.perp.reference_genome)"
        )
    else:
        raise ConfigError(f"engine must be one of {[*V.ENGINES, 'reference']}, got {engine!r}")
    return Backtest(
        value=value,
        traded=traded,
        rebalance=effective,
        segment_starts=starts,
        market="perp",
        funding_paid=paid,
        funding_received=received,
        fees_paid=fees_paid,
        liquidated=liquidated,
        leverage=lev,
    )


def simulate(
    close,
    weights,
    *,
    segment_starts=None,
    rebalance="M",
    fees: float = 0.0,
    slippage: float = 0.0,
    init_cash: float = 10_000.0,
    engine: str = "fast",
    market: str = "spot",
    leverage=1.0,
    funding=None,
    max_leverage=None,
) -> np.ndarray:
    """Portfolio value of every genome at every bar.

    Parameters
    ----------
    close : Prices or DataFrame
        Close prices (time index, one column per asset).
    weights : array-like (n_genomes, n_assets) or (n_assets,); with segment_starts (n_genomes, n_segments, n_assets)
        Long-only (each >= 0, sum 1) or long/short (sum of |w| = 1) weight genomes; with
        ``segment_starts``, one such vector per genome and segment. A genome with a negative weight in
        any segment is simulated long/short (vectorbt's ``direction='both'``), otherwise long-only.
    segment_starts : sequence of int (n_segments,), optional
        A schedule of targets: strictly increasing bar indices, the first 0. From bar
        ``segment_starts[s]`` on, genome ``g`` targets ``weights[g, s]``. Every segment start is a
        rebalance bar, in addition to the bars of ``rebalance`` (an every-N-bars policy keeps counting
        from bar 0). Each genome is one portfolio throughout: cash, positions and fees carry across
        segments. None (default): static weights.
    rebalance : {"once", "D", "W", "M", "Q"} or int
        When to trade back to the target weights (see :func:`rebalance_mask`).
    fees, slippage : float
        Proportional fees on traded notional and proportional price slippage, in [0, 1).
    init_cash : float
        Starting cash of every genome.
    engine : {"fast", "vectorbt", "reference"}
        The Numba population kernel, or the reference: vectorbt's ``Portfolio.from_orders`` for spot,
        ``"reference"`` (the plain-Python loop :func:`genetic_sizer.perp.reference_genome`) for perps.
    market : {"spot", "perp"}
        ``"spot"``: a cash account (the semantics above). ``"perp"``: a cross-margin perpetuals account, marked to
        market every bar (see :mod:`genetic_sizer.perp`): on a rebalance bar every target is sized from the
        pre-trade equity, ``w_i * leverage * E / p_i``, fills at ``p * (1 +/- slippage)`` and pays ``fees`` on the
        fill notional; funding is charged on the positions held through each bar; the account is liquidated when
        its equity falls to the maintenance margin. With leverage 1, no funding, no fees and no slippage a
        long-only perp portfolio equals the spot one.
    leverage : float or array (n_genomes,)
        Perp: the gross leverage targets are sized at (> 0, at most every asset's ``max_leverage``).
    funding : None, False, array (n_bars, n_assets) or DataFrame
        Perp: funding rates per bar; row ``t`` holds the sum of the hourly rates paid in (t-1, t] (positive: longs
        pay, shorts receive), row 0 is never charged, NaN means 0. A DataFrame's rows must be bars of the prices
        (missing bars and symbols are 0). None (default): the rates ``close`` carries (:attr:`Prices.funding`,
        loaded next to Hyperliquid prices), or none; False: none.
    max_leverage : None, number, array (n_assets,) or {SYMBOL: x, default: y}
        Perp: each asset's maximum leverage; the maintenance margin is ``|q| * p / (2 * max_leverage)``. None: no
        maintenance margin (liquidated only when the equity reaches 0).

    Returns
    -------
    ndarray (n_bars, n_genomes)

    Raises
    ------
    GenomeError
        Invalid weights (see :func:`validate_weights`, :func:`validate_schedule`).
    ConfigError
        Invalid ``segment_starts``, rebalance policy, costs, engine, market, leverage or max_leverage (a
        leverage above an asset's max_leverage included).
    DataError
        ``close`` is neither Prices nor a DataFrame of valid prices; funding rates of the wrong shape or bars.
    """
    return backtest(
        close,
        weights,
        segment_starts=segment_starts,
        rebalance=rebalance,
        fees=fees,
        slippage=slippage,
        init_cash=init_cash,
        engine=engine,
        market=market,
        leverage=leverage,
        funding=funding,
        max_leverage=max_leverage,
    ).value


def _simulate_fast(close, w, starts, mask, fees, slippage, init_cash):
    """The Numba population kernel; ``w`` (n_genomes, n_segments, n_assets), ``starts`` (n_segments,)."""
    n_genomes = w.shape[0]
    value = np.empty((n_genomes, close.shape[0]), dtype=np.float64)
    traded = np.empty(n_genomes, dtype=np.float64)
    longonly = (w >= 0).all(axis=(1, 2))
    nb.simulate_population_nb(close, w, starts, mask, fees, slippage, init_cash, longonly, value, traded)
    return value.T, traded


def _vbt_portfolio(prices: Prices, wc, starts, mask, fees, slippage, init_cash):
    """vectorbt's ``from_orders`` for genomes ``wc`` (m, n_segments, n_assets), one group each; ``mask`` already
    holds the segment starts. On every rebalance bar the size array holds the active segment's targets."""
    import vectorbt as vbt
    from vectorbt.portfolio.enums import Direction

    n_assets = prices.n_assets
    m = wc.shape[0]
    rows = np.flatnonzero(mask)
    active = np.searchsorted(starts, rows, side="right") - 1  # segment of each rebalance bar
    tiled = np.tile(prices.close, (1, m))
    size = np.full(tiled.shape, np.nan)
    # row r of the rebalance bars: genome-major targets of segment active[r]
    size[rows] = wc[:, active, :].transpose(1, 0, 2).reshape(len(rows), m * n_assets)
    direction = np.where(np.repeat((wc >= 0).all(axis=(1, 2)), n_assets), Direction.LongOnly, Direction.Both)
    pf = vbt.Portfolio.from_orders(
        close=pd.DataFrame(tiled, index=prices.index),
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
    return pf, tiled


def _simulate_vectorbt(prices: Prices, w, starts, mask, fees, slippage, init_cash):
    """The reference: vectorbt's from_orders, one group per genome, in bounded chunks of genomes.

    ``w`` (n_genomes, n_segments, n_assets) with segments starting at ``starts``; ``mask`` is the policy's
    rebalance mask, to which the segment starts are added. On every rebalance bar the size array holds
    the active segment's targets, NaN elsewhere.
    """
    n_bars, n_assets = prices.close.shape
    n_genomes = w.shape[0]
    mask = mask.copy()
    mask[starts] = True
    chunk = max(1, VBT_CHUNK_CELLS // (n_bars * n_assets))
    value = np.empty((n_bars, n_genomes), dtype=np.float64)
    traded = np.empty(n_genomes, dtype=np.float64)
    for lo in range(0, n_genomes, chunk):
        hi = min(n_genomes, lo + chunk)
        m = hi - lo
        pf, tiled = _vbt_portfolio(prices, w[lo:hi], starts, mask, fees, slippage, init_cash)
        value[:, lo:hi] = pf.value().to_numpy().reshape(n_bars, m)
        traded[lo:hi] = _vbt_traded(pf, tiled, mask, m, n_assets, init_cash)
    return value, traded


def holdings(
    close,
    weights,
    *,
    segment_starts=None,
    rebalance="M",
    fees: float = 0.0,
    slippage: float = 0.0,
    init_cash: float = 10_000.0,
    market: str = "spot",
    leverage: float = 1.0,
    funding=None,
    max_leverage=None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """What one genome holds at every bar's close: each asset's value as a fraction of the portfolio value
    (weights drift between rebalances), computed by the reference engine (vectorbt for spot, the plain-Python
    loop for perps).

    Parameters are those of :func:`simulate` for a single genome (``weights`` (n_assets,), or
    (n_segments, n_assets) with ``segment_starts``). Returns the weights over time (a DataFrame: time index,
    one column per symbol; spot: cash is what the columns leave to 1; perp: each position's signed notional over
    ``leverage`` x equity, the quantity the targets are, NaN once the account is liquidated) and the rebalance
    mask.
    """
    if market == "perp":
        prices = _as_prices(close)
        w = np.asarray(weights, dtype=np.float64)
        if segment_starts is None:
            w = validate_weights(w, prices.n_assets, prices.symbols)[:, None, :]
            starts = np.zeros(1, dtype=np.int64)
        else:
            w, starts = validate_schedule(w[None], segment_starts, prices.n_bars, prices.n_assets, prices.symbols)
        fees, slippage, init_cash = _check_costs(fees, slippage, init_cash)
        max_lev = resolve_max_leverage(max_leverage, prices.symbols)
        lev = float(check_leverage(leverage, 1, max_lev, prices.symbols)[0])
        mask = rebalance_mask(prices.index, rebalance)
        run = perp.reference_genome(
            prices.close,
            w[0],
            starts,
            mask,
            leverage=lev,
            mm_rate=np.where(np.isfinite(max_lev), 0.5 / max_lev, 0.0),
            funding=_funding_rates(funding, prices),
            fees=fees,
            slippage=slippage,
            init_cash=init_cash,
        )
        gross = lev * run["value"][:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(gross > 0, run["position"] * prices.close / gross, np.nan)
        if run["liquidated"] >= 0:
            frac[run["liquidated"] :] = np.nan
        mask[starts] = True
        return pd.DataFrame(frac, index=prices.index, columns=list(prices.symbols)), mask
    prices = _as_prices(close)
    w = np.asarray(weights, dtype=np.float64)
    if segment_starts is None:
        w = validate_weights(w, prices.n_assets, prices.symbols)[:, None, :]
        starts = np.zeros(1, dtype=np.int64)
    else:
        w, starts = validate_schedule(w[None], segment_starts, prices.n_bars, prices.n_assets, prices.symbols)
    if w.shape[0] != 1:
        raise GenomeError(f"holdings are those of one genome, got {w.shape[0]}")
    fees, slippage, init_cash = _check_costs(fees, slippage, init_cash)
    mask = rebalance_mask(prices.index, rebalance)
    mask[starts] = True
    pf, _ = _vbt_portfolio(prices, w, starts, mask, fees, slippage, init_cash)
    asset_value = pf.asset_value(group_by=False).to_numpy()
    total = pf.value().to_numpy().reshape(-1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(total > 0, asset_value / total, np.nan)
    return pd.DataFrame(frac, index=prices.index, columns=list(prices.symbols)), mask


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

"""Weights -> portfolio values, through the fast Numba kernel or through vectorbt.

This is the only module that imports vectorbt (lazily: ``import vectorbt`` takes seconds).

The reference semantics are::

    vbt.Portfolio.from_orders(close=tiled_close, size=targets, size_type='targetpercent',
                              group_by=genome_of_column, cash_sharing=True, call_seq='auto',
                              fees=fees, slippage=slippage, init_cash=init_cash, direction=...)

(and vectorbt's default ``min_size=1e-8``, passed explicitly so that global vectorbt settings cannot change
the reference) with ``targets`` NaN except on rebalance bars, where each asset's target is its weight. Long-only genomes
use ``direction='longonly'``, genomes with a short weight ``direction='both'``. ``engine="fast"`` runs
:func:`genetic_sizer.backtest.kernels.spot.simulate_population_nb`, which reproduces that to floating-point noise.

A schedule of weights (``segment_starts``) changes a genome's targets over time: from bar
``segment_starts[s]`` on, the targets are ``weights[:, s]``. Every segment start is a rebalance bar too,
and each genome stays one portfolio (cash, positions and fees carry across segments).

A drift band (``threshold``) rebalances a genome on any bar where some asset's current weight (``position *
close / value``, the value before trading at that bar's close) differs from its target by at least the
threshold; calendar and drift triggers combine. The policy and the threshold may differ per genome (and, with a
schedule, per segment). The reference for a drift band is vectorbt's ``Portfolio.from_order_func`` with cash
sharing and one group per genome (seed S1's pattern; the callbacks are in ``genetic_sizer.backtest.vbt_reference``):
a pre-segment function sets the valuation prices to the bar's close, decides, and sorts the call sequence;
the order function returns target-percent orders or nothing.

``market="perp"`` simulates the account the sizer trades instead: Hyperliquid perpetuals with cross margin,
``leverage``, hourly ``funding``, taker fees and liquidation below the maintenance margin of ``max_leverage``
(:mod:`genetic_sizer.backtest.kernels.perp` states the semantics). vectorbt has no perpetuals (its issue #639): the fast kernel is
the engine, and ``engine="reference"`` runs :func:`genetic_sizer.backtest.kernels.perp.reference_genome`, a plain-Python loop of
the same account, which the test suite and every perp champion are checked against.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genetic_sizer import vocab as V
from genetic_sizer.backtest.kernels import perp
from genetic_sizer.backtest.kernels import spot as nb
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError, DataError, GenomeError

__all__ = [
    "ENGINES",
    "REBALANCE_CODES",
    "Backtest",
    "backtest",
    "check_leverage",
    "holdings",
    "rebalance_mask",
    "rebalance_masks",
    "resolve_max_leverage",
    "score",
    "simulate",
    "validate_schedule",
    "validate_segment_starts",
    "validate_thresholds",
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
        :func:`genetic_sizer.backtest.metrics.compute_metrics` turns it into annualized turnover.
    rebalance : ndarray (n_bars, n_genomes) of bool
        The bars on which each genome rebalanced: the bars of its rebalance policy, every segment start,
        and the bars where its drift band fired (a liquidated perp account trades on none after its
        liquidation bar). ``traded`` sums over these bars (after the first).
    segment_starts : ndarray (n_segments,) of int64
        First bar of each segment of the weight schedule; ``[0]`` for static weights.
    market : {"spot", "perp"}
        The account model simulated.
    funding_paid, funding_received, fees_paid : ndarray (n_genomes,), or None for spot
        Perp: the funding each genome paid and received, and the fees it paid, in the account's currency (>= 0).
    liquidated : ndarray (n_genomes,) of int64, or None for spot
        Perp: the bar on which each genome was liquidated, -1 if never.
    leverage : ndarray (n_genomes,) or (n_genomes, n_segments), or None for spot
        Perp: the gross leverage each genome was sized at; per segment when it was given per segment.
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


_MASKS: dict = {}
"""Computed calendar masks, ``(id(index), code) -> (weak reference to index, mask)``: an index is immutable, so its
masks are computed once (the evolution loop asks for the same ones every generation). An entry leaves with its index,
so a new index that reuses the id never finds another's mask."""


def rebalance_mask(index: pd.DatetimeIndex, rebalance) -> np.ndarray:
    """Boolean mask of rebalance bars for a policy (a new array each call).

    ``"once"``: the first bar only (buy and hold). ``"D"``, ``"W"``, ``"M"``, ``"Q"``: the first bar of
    each calendar day, week (Monday to Sunday), month or quarter, in UTC. An int N: every N bars,
    starting with the first. The first bar is always a rebalance bar.
    """
    code = V.parse_rebalance(rebalance)
    key = (id(index), code)
    hit = _MASKS.get(key)
    if hit is not None and hit[0]() is index:
        return hit[1].copy()
    mask = _calendar_mask(index, code)
    try:
        ref = weakref.ref(index, lambda dead, key=key: _MASKS.pop(key) if _MASKS.get(key, (None,))[0] is dead else None)
    except TypeError:  # not weak-referenceable (not a pandas index): nothing is cached
        return mask
    _MASKS[key] = (ref, mask)
    return mask.copy()


def _calendar_mask(index: pd.DatetimeIndex, code) -> np.ndarray:
    """The mask of :func:`rebalance_mask` for a parsed policy ``code``, computed."""
    n = len(index)
    mask = np.zeros(n, dtype=np.bool_)
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


def _is_policy(value) -> bool:
    """A single rebalance policy (a code or an int), as opposed to a sequence of them."""
    return isinstance(value, (str, int, np.integer)) and not isinstance(value, (bool, np.bool_))


def rebalance_masks(index: pd.DatetimeIndex, rebalance, n_genomes: int, segment_starts=None):
    """The rebalance bars of every genome's calendar policy, as a table of distinct masks.

    Parameters
    ----------
    index : DatetimeIndex (n_bars,)
    rebalance : policy, or a sequence of ``n_genomes`` entries
        One policy for every genome (see :func:`rebalance_mask`); or one entry per genome, each a policy or,
        with ``segment_starts``, a sequence of one policy per segment (within segment ``s`` the genome follows
        policy ``s``; an every-N-bars policy still counts from bar 0).
    n_genomes : int
    segment_starts : int64 (n_segments,), optional

    Returns
    -------
    masks : bool (n_masks, n_bars)
        The distinct masks (bar 0 is always a rebalance bar).
    mask_of : int64 (n_genomes,)
        Which mask each genome follows.
    """
    n = len(index)
    starts = np.zeros(1, dtype=np.int64) if segment_starts is None else np.asarray(segment_starts, dtype=np.int64)
    cache: dict = {}

    def mask_of_policy(policy, key):
        code = V.parse_rebalance(policy, key)
        if code not in cache:
            cache[code] = rebalance_mask(index, code)
        return code, cache[code]

    if _is_policy(rebalance):
        code, mask = mask_of_policy(rebalance, "rebalance")
        return mask[None, :], np.zeros(n_genomes, dtype=np.int64)
    if isinstance(rebalance, (dict, set)) or not hasattr(rebalance, "__len__"):
        raise ConfigError(
            f"rebalance must be a policy or a sequence of one per genome, got {type(rebalance).__name__}: {rebalance!r}"
        )
    items = list(rebalance)
    if len(items) != n_genomes:
        raise ConfigError(f"rebalance: one policy per genome ({n_genomes}), got {len(items)}")
    bounds = np.append(starts, n)
    rows: dict = {}
    masks = []
    mask_of = np.empty(n_genomes, dtype=np.int64)
    for g, item in enumerate(items):
        if _is_policy(item):
            key = mask_of_policy(item, f"rebalance[{g}]")[0]
        else:
            if isinstance(item, (dict, set)) or not hasattr(item, "__len__"):
                raise ConfigError(f"rebalance[{g}] must be a policy or one policy per segment, got {item!r}")
            per_segment = list(item)
            if segment_starts is None or len(per_segment) != len(starts):
                raise ConfigError(
                    f"rebalance[{g}] holds {len(per_segment)} policies: one per segment needs segment_starts "
                    f"({len(starts)} segment(s))"
                )
            codes = tuple(mask_of_policy(p, f"rebalance[{g}][{j}]")[0] for j, p in enumerate(per_segment))
            key = codes[0] if len(set(codes)) == 1 else codes
        if key not in rows:
            if isinstance(key, tuple):
                mask = np.zeros(n, dtype=np.bool_)
                for j, code in enumerate(key):
                    mask[bounds[j] : bounds[j + 1]] = cache[code][bounds[j] : bounds[j + 1]]
            else:
                mask = cache[key]
            rows[key] = len(masks)
            masks.append(mask)
        mask_of[g] = rows[key]
    return np.stack(masks), mask_of


def validate_thresholds(threshold, n_genomes: int, n_segments: int = 1) -> np.ndarray:
    """Drift bands as float64 (n_genomes, n_segments), ``inf`` where there is none.

    ``threshold`` is None (no drift band), a number (every genome), one entry per genome, or, with a schedule,
    ``(n_genomes, n_segments)``. An entry is a number >= 0 (a difference of weights: 0.05 is 5 percentage
    points; 0 rebalances on every bar, ``inf`` never) or None (no band). Anything else is a ConfigError naming
    the entry.
    """
    shape = (n_genomes, n_segments)
    if threshold is None:
        return np.full(shape, np.inf)
    number = isinstance(threshold, (int, float, np.integer, np.floating)) and not isinstance(threshold, bool)
    if number or (isinstance(threshold, np.ndarray) and threshold.dtype.kind in "iuf"):
        # the common case (a number, or an array such as the evaluator's): checked as one array
        arr = np.asarray(threshold, dtype=np.float64)
        if (arr >= 0).all():  # no NaN either
            if arr.ndim == 0:
                return np.full(shape, float(arr))
            if arr.ndim == 1 and arr.shape[0] == n_genomes:
                return np.repeat(arr[:, None], n_segments, axis=1)
            if arr.shape == shape:
                return np.ascontiguousarray(arr)
    obj = np.asarray(threshold, dtype=object)
    if obj.ndim == 0:
        obj = np.full(shape, obj.item(), dtype=object)
    elif obj.ndim == 1 and obj.shape[0] == n_genomes:
        obj = np.repeat(obj[:, None], n_segments, axis=1)
    elif obj.shape != shape:
        want = f"({n_genomes},)" + (f" or ({n_genomes}, {n_segments})" if n_segments > 1 else "")
        raise ConfigError(f"threshold must be a number, None or of shape {want}, got shape {obj.shape}")
    out = np.empty(shape)
    for idx, v in np.ndenumerate(obj):
        where = "threshold" + "".join(f"[{j}]" for j in idx[: np.ndim(threshold)])
        if v is None:
            out[idx] = np.inf
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ConfigError(f"{where} must be a number >= 0 or None, got {v!r}")
        if not float(v) >= 0:  # NaN too
            raise ConfigError(
                f"{where} is {v!r}: a drift band is a difference of weights >= 0 (0.05: 5 points; inf or None: none)"
            )
        out[idx] = float(v)
    return out


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


def check_leverage(leverage, n_genomes: int, max_lev: np.ndarray, symbols, n_segments: int = 1) -> np.ndarray:
    """The gross leverage of every genome in every segment, float64 (n_genomes, n_segments).

    ``leverage`` is one number (every genome), one per genome (n_genomes,) (every segment of it), or, with a
    schedule, one per genome and segment (n_genomes, n_segments) (a walk-forward's folds, each with its evolved
    leverage). Every entry must be a positive finite number at most every asset's maximum leverage (``max_lev``, see
    :func:`resolve_max_leverage`); anything else is a ConfigError naming the entry.
    """
    arr = np.asarray(leverage, dtype=object)
    if arr.ndim == 0:
        arr = np.full((n_genomes, n_segments), leverage, dtype=object)
    elif arr.ndim == 1 and arr.shape[0] == n_genomes:
        arr = np.repeat(arr[:, None], n_segments, axis=1)
    elif arr.shape != (n_genomes, n_segments):
        per_segment = f" or one per genome and segment ({n_genomes}, {n_segments})" if n_segments > 1 else ""
        raise ConfigError(
            f"leverage must be a number or one per genome ({n_genomes}){per_segment}, got shape {arr.shape}"
        )
    given = np.ndim(leverage)

    def where(g, s):
        return "leverage" + "".join(f"[{j}]" for j in (g, s)[:given])

    out = np.empty((n_genomes, n_segments))
    for (g, s), v in np.ndenumerate(arr):
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
        if not ok or not (math.isfinite(float(v)) and float(v) > 0):
            raise ConfigError(f"{where(g, s)} must be a positive finite number, got {v!r}")
        out[g, s] = float(v)
    cap = float(max_lev.min())
    if out.max() > cap:
        g, s = (int(j) for j in np.argwhere(out > cap)[0])
        k = int(np.argmin(max_lev))
        raise ConfigError(
            f"{where(g, s)} {out[g, s]:g} is above the max_leverage of {symbols[k]!r} ({max_lev[k]:g}): the exchange "
            "would refuse such positions"
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
                "holding the rates paid since the previous bar (genetic_sizer.data.prices.align_funding sums raw rates so)"
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


@dataclass(frozen=True)
class _Inputs:
    """A population's simulation inputs, validated once for :func:`backtest` and :func:`score` (see
    :func:`_prepare`): ``w`` (n_genomes, n_segments, n_assets), ``starts`` (n_segments,), the calendar ``masks``
    (n_masks, n_bars) with ``mask_of`` (n_genomes,), drift bands ``thresholds`` (n_genomes, n_segments, ``inf``:
    none; ``drift`` whether any was given), the costs, and for perps the leverage (n_genomes, n_segments), the
    maintenance margin rate per asset and the funding rates (None: none)."""

    prices: Prices
    w: np.ndarray
    starts: np.ndarray
    masks: np.ndarray
    mask_of: np.ndarray
    thresholds: np.ndarray
    drift: bool
    fees: float
    slippage: float
    init_cash: float
    market: str
    lev: np.ndarray | None = None
    per_segment_leverage: bool = False
    mm_rate: np.ndarray | None = None
    rates: np.ndarray | None = None


def _prepare(
    close, weights, segment_starts, rebalance, threshold, fees, slippage, init_cash, market, leverage, funding,
    max_leverage,
) -> _Inputs:  # fmt: skip
    """Validate the arguments :func:`backtest` and :func:`score` share (see :func:`simulate`); the engine is checked
    by each of them afterwards."""
    prices = _as_prices(close)
    if segment_starts is None:
        w = validate_weights(weights, prices.n_assets, prices.symbols)[:, None, :]
        starts = np.zeros(1, dtype=np.int64)
    else:
        w, starts = validate_schedule(weights, segment_starts, prices.n_bars, prices.n_assets, prices.symbols)
    fees, slippage, init_cash = _check_costs(fees, slippage, init_cash)
    masks, mask_of = rebalance_masks(prices.index, rebalance, w.shape[0], None if segment_starts is None else starts)
    thresholds = validate_thresholds(threshold, w.shape[0], starts.size)
    common = {"prices": prices, "w": w, "starts": starts, "masks": masks, "mask_of": mask_of}
    common.update(thresholds=thresholds, drift=threshold is not None, fees=fees, slippage=slippage, init_cash=init_cash)
    if market == "perp":
        max_lev = resolve_max_leverage(max_leverage, prices.symbols)
        lev = check_leverage(leverage, w.shape[0], max_lev, prices.symbols, starts.size)
        mm_rate = np.where(np.isfinite(max_lev), 0.5 / max_lev, 0.0)
        rates = _funding_rates(funding, prices)
        per_segment = np.ndim(leverage) == 2
        return _Inputs(**common, market="perp", lev=lev, per_segment_leverage=per_segment, mm_rate=mm_rate, rates=rates)
    if market != "spot":
        raise ConfigError(f"market must be one of {list(V.MARKETS)}, got {market!r}")
    spot_only = {"leverage": bool(np.any(np.asarray(leverage) != 1.0)), "max_leverage": max_leverage is not None}
    spot_only["funding"] = funding is not None and funding is not False
    if any(spot_only.values()):
        name = next(k for k, v in spot_only.items() if v)
        raise ConfigError(f"{name} is a setting of market='perp'; the spot account has none")
    return _Inputs(**common, market="spot")


def backtest(
    close,
    weights,
    *,
    segment_starts=None,
    rebalance="M",
    threshold=None,
    fees: float = 0.0,
    slippage: float = 0.0,
    init_cash: float = 10_000.0,
    engine: str = "fast",
    market: str = "spot",
    leverage=1.0,
    funding=None,
    max_leverage=None,
) -> Backtest:
    """Simulate a population of genomes; return values, turnover and the bars each genome rebalanced on.

    See :func:`simulate` for the parameters.
    """
    inp = _prepare(
        close, weights, segment_starts, rebalance, threshold, fees, slippage, init_cash, market, leverage, funding,
        max_leverage,
    )  # fmt: skip
    return _backtest(inp, engine)


def _backtest(inp: _Inputs, engine: str) -> Backtest:
    """:func:`backtest` of validated inputs."""
    if inp.market == "perp":
        return _backtest_perp(inp, engine)
    costs = (inp.fees, inp.slippage, inp.init_cash)
    if engine == "fast":
        value, traded, rebalanced = _simulate_fast(
            inp.prices.close, inp.w, inp.starts, inp.masks, inp.mask_of, inp.thresholds, *costs
        )
    elif engine == "vectorbt":
        value, traded, rebalanced = _simulate_vectorbt(
            inp.prices, inp.w, inp.starts, inp.masks[inp.mask_of].T, inp.thresholds if inp.drift else None, *costs
        )
    else:
        raise ConfigError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    return Backtest(value=value, traded=traded, rebalance=rebalanced, segment_starts=inp.starts)


SCORE_CHUNKS_PER_THREAD = 8
""":func:`score` splits a population into this many chunks of genomes per Numba thread, handed out one at a time
(``numba.parallel_chunksize(1)``): a thread slowed down by another process takes fewer chunks instead of holding the
others up at the end of the call."""


def score(
    close,
    weights,
    *,
    segment_starts=None,
    rebalance="M",
    threshold=None,
    fees: float = 0.0,
    slippage: float = 0.0,
    init_cash: float = 10_000.0,
    engine: str = "fast",
    market: str = "spot",
    leverage=1.0,
    funding=None,
    max_leverage=None,
    periods_per_year: float | None = None,
) -> dict[str, np.ndarray]:
    """Every fitness metric of every genome: simulate and score in one pass per genome, without the value matrix.

    The fitness path. With ``engine="fast"`` each genome is simulated into a scratch row of ``n_bars`` values
    (cache-resident) and scored from it at once (:func:`genetic_sizer.backtest.kernels.spot.score_population_nb`,
    :func:`genetic_sizer.backtest.kernels.perp.score_perp_population_nb`): nothing of size (genomes x bars) is allocated, so the
    memory does not grow with the population and Numba's threads do not wait on page faults. The figures equal
    ``compute_metrics(backtest(...).value, traded=...)`` (with :func:`genetic_sizer.backtest.metrics.account_metrics` for
    perps) bit for bit; the other engines compute them so.

    Parameters
    ----------
    close, weights, segment_starts, rebalance, threshold, fees, slippage, init_cash, engine, market, leverage, \
funding, max_leverage :
        As for :func:`simulate`.
    periods_per_year : float, optional
        Bars per year, for the annualized metrics; default the prices' (:attr:`Prices.periods_per_year`).

    Returns
    -------
    dict of metric name -> float64 array (n_genomes,)
        The names of :func:`genetic_sizer.backtest.metrics.compute_metrics` with ``turnover``; for perps also
        ``funding_paid``, ``funding_received``, ``fees_paid`` and ``liquidated`` (1.0 or 0.0), as
        :func:`genetic_sizer.backtest.metrics.account_metrics`.

    Raises
    ------
    GenomeError, ConfigError, DataError
        As :func:`simulate`; also a ConfigError for a bad ``periods_per_year`` or a value path that is not finite.
    """
    inp = _prepare(
        close, weights, segment_starts, rebalance, threshold, fees, slippage, init_cash, market, leverage, funding,
        max_leverage,
    )  # fmt: skip
    from genetic_sizer.backtest.metrics import (
        account_metrics,
        annualized_turnover,
        check_periods_per_year,
        compute_metrics,
        liquidated_flag,
    )

    prices = inp.prices
    ppy = check_periods_per_year(prices.periods_per_year if periods_per_year is None else periods_per_year)
    if engine != "fast":
        bt = _backtest(inp, engine)
        m = compute_metrics(bt.value, init_cash=inp.init_cash, periods_per_year=ppy, traded=bt.traded)
        m.update(account_metrics(bt))
        return m
    import numba

    n_genomes = inp.w.shape[0]
    n_chunks = min(n_genomes, SCORE_CHUNKS_PER_THREAD * numba.get_num_threads())
    out = np.empty((n_genomes, nb.SCORE_WIDTH))
    with numba.parallel_chunksize(1):
        if inp.market == "perp":
            f, has_funding = _funding_args(inp)
            perp.score_perp_population_nb(
                prices.close,
                f,
                has_funding,
                inp.w,
                inp.starts,
                inp.masks,
                inp.mask_of,
                inp.thresholds,
                inp.lev,
                inp.mm_rate,
                inp.fees,
                inp.slippage,
                inp.init_cash,
                ppy,
                n_chunks,
                out,
            )
        else:
            longonly = (inp.w >= 0).all(axis=(1, 2))
            nb.score_population_nb(
                prices.close,
                inp.w,
                inp.starts,
                inp.masks,
                inp.mask_of,
                inp.thresholds,
                inp.fees,
                inp.slippage,
                inp.init_cash,
                longonly,
                ppy,
                n_chunks,
                out,
            )
    if out[:, nb.SCORE_NONFINITE].any():
        g = int(np.argmax(out[:, nb.SCORE_NONFINITE]))
        raise ConfigError(f"values contain NaN or infinity (genome {g})")
    cols = np.ascontiguousarray(out.T)
    m = {name: cols[j] for j, name in enumerate(nb.METRIC_NAMES)}
    m["cagr"] = m["annualized_return"]
    m["turnover"] = annualized_turnover(cols[nb.SCORE_TRADED], ppy, prices.n_bars)
    if inp.market == "perp":
        for j, name in enumerate(perp.ACCOUNT_FIELDS):
            m[name] = cols[perp.SCORE_ACCOUNT + j]
        m["liquidated"] = liquidated_flag(cols[perp.SCORE_LIQUIDATED])
    return m


def _perp_engine_error(engine) -> ConfigError:
    if engine == "vectorbt":
        return ConfigError(
            "engine 'vectorbt' has no perpetuals account (vectorbt issue #639): market='perp' runs on engine 'fast', "
            "checked against engine 'reference' (genetic_sizer.backtest.kernels.perp.reference_genome)"
        )
    return ConfigError(f"engine must be one of {[*V.ENGINES, 'reference']}, got {engine!r}")


def _funding_args(inp: _Inputs) -> tuple[np.ndarray, bool]:
    """The perp kernels' ``funding`` and ``has_funding`` arguments."""
    if inp.rates is None:
        return np.zeros((1, inp.prices.n_assets)), False
    return np.ascontiguousarray(inp.rates), True


def _backtest_perp(inp: _Inputs, engine: str) -> Backtest:
    """:func:`backtest` for ``market="perp"``: the perp kernel, or the plain-Python reference."""
    prices, w, starts, lev = inp.prices, inp.w, inp.starts, inp.lev
    n_genomes = w.shape[0]
    n_bars = prices.n_bars
    if engine == "fast":
        value = np.empty((n_genomes, n_bars))
        traded = np.empty(n_genomes)
        rebalanced = np.empty((n_genomes, n_bars), dtype=np.bool_)
        account = np.empty((n_genomes, len(perp.ACCOUNT_FIELDS)))
        liquidated = np.empty(n_genomes, dtype=np.int64)
        f, has_funding = _funding_args(inp)
        perp.simulate_perp_population_nb(
            prices.close,
            f,
            has_funding,
            w,
            starts,
            inp.masks,
            inp.mask_of,
            inp.thresholds,
            lev,
            inp.mm_rate,
            inp.fees,
            inp.slippage,
            inp.init_cash,
            value,
            traded,
            rebalanced,
            account,
            liquidated,
        )
        paid, received, fees_paid = account.T
        value = value.T
        rebalanced = rebalanced.T
    elif engine == "reference":
        runs = [
            perp.reference_genome(
                prices.close,
                w[g],
                starts,
                inp.masks[inp.mask_of[g]],
                thresholds=inp.thresholds[g],
                leverage=lev[g],
                mm_rate=inp.mm_rate,
                funding=inp.rates,
                fees=inp.fees,
                slippage=inp.slippage,
                init_cash=inp.init_cash,
            )
            for g in range(n_genomes)
        ]
        value = np.column_stack([r["value"] for r in runs])
        traded, paid, received, fees_paid = (
            np.array([r[k] for r in runs]) for k in ("traded", "funding_paid", "funding_received", "fees_paid")
        )
        liquidated = np.array([r["liquidated"] for r in runs], dtype=np.int64)
        rebalanced = np.column_stack([r["rebalanced"] for r in runs])
    else:
        raise _perp_engine_error(engine)
    return Backtest(
        value=value,
        traded=traded,
        rebalance=rebalanced,
        segment_starts=starts,
        market="perp",
        funding_paid=paid,
        funding_received=received,
        fees_paid=fees_paid,
        liquidated=liquidated,
        leverage=lev if inp.per_segment_leverage else lev[:, 0],
    )


def simulate(
    close,
    weights,
    *,
    segment_starts=None,
    rebalance="M",
    threshold=None,
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
    rebalance : {"once", "D", "W", "M", "Q"} or int, or one per genome
        When to trade back to the target weights (see :func:`rebalance_mask`): one policy for every genome,
        or a sequence of one per genome; with ``segment_starts`` an entry may also be a sequence of one
        policy per segment (see :func:`rebalance_masks`).
    threshold : float, or one per genome, optional
        A drift band: on any bar where some asset's current weight (``position * close / value``, the value
        being cash + sum(position * close) before trading, at that bar's close) differs from its target by at
        least ``threshold`` in absolute terms, the genome's whole portfolio trades back to target on that bar,
        exactly as on a calendar rebalance. Calendar and drift triggers combine (``rebalance="once",
        threshold=0.05`` is pure drift-band rebalancing); the first bar always allocates. A number >= 0 for
        every genome, or an array (n_genomes,) (with ``segment_starts`` also (n_genomes, n_segments)); ``inf``
        or None entries have no band; 0 rebalances on every bar. None (default): calendar rebalancing only.
    fees, slippage : float
        Proportional fees on traded notional and proportional price slippage, in [0, 1).
    init_cash : float
        Starting cash of every genome.
    engine : {"fast", "vectorbt", "reference"}
        The Numba population kernel, or the reference: for spot vectorbt (``Portfolio.from_orders`` for calendar
        rebalancing, ``Portfolio.from_order_func`` when a ``threshold`` is given), for perps ``"reference"`` (the
        plain-Python loop :func:`genetic_sizer.backtest.kernels.perp.reference_genome`, drift bands included).
    market : {"spot", "perp"}
        ``"spot"``: a cash account (the semantics above). ``"perp"``: a cross-margin perpetuals account, marked to
        market every bar (see :mod:`genetic_sizer.backtest.kernels.perp`): on a rebalance bar every target is sized from the
        pre-trade equity, ``w_i * leverage * E / p_i``, fills at ``p * (1 +/- slippage)`` and pays ``fees`` on the
        fill notional; funding is charged on the positions held through each bar; the account is liquidated when
        its equity falls to the maintenance margin. With leverage 1, no funding, no fees and no slippage a
        long-only perp portfolio equals the spot one. ``rebalance`` and ``threshold`` work as for spot; a perp
        weight is measured against the gross exposure ``leverage * E`` (the band fires when
        ``|q_i * p_i - w_i * leverage * E| >= threshold * leverage * E``), which is the spot test at leverage 1.
    leverage : float, array (n_genomes,) or, with ``segment_starts``, (n_genomes, n_segments)
        Perp: the gross leverage targets are sized at (> 0, at most every asset's ``max_leverage``): one for every
        genome, one per genome (a leverage gene), or one per genome and segment (a walk-forward's folds, each with
        its evolved leverage: from a segment's first bar on, its targets are sized with its leverage from the
        equity before that bar's trades).
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
        Invalid ``segment_starts``, rebalance policy, threshold, costs, engine, market, leverage or max_leverage (a
        leverage above an asset's max_leverage included).
    DataError
        ``close`` is neither Prices nor a DataFrame of valid prices; funding rates of the wrong shape or bars.
    """
    return backtest(
        close,
        weights,
        segment_starts=segment_starts,
        rebalance=rebalance,
        threshold=threshold,
        fees=fees,
        slippage=slippage,
        init_cash=init_cash,
        engine=engine,
        market=market,
        leverage=leverage,
        funding=funding,
        max_leverage=max_leverage,
    ).value


def _simulate_fast(close, w, starts, masks, mask_of, thresholds, fees, slippage, init_cash):
    """The Numba population kernel; ``w`` (n_genomes, n_segments, n_assets), ``starts`` (n_segments,), ``masks``
    (n_masks, n_bars) with ``mask_of`` (n_genomes,), ``thresholds`` (n_genomes, n_segments)."""
    n_genomes = w.shape[0]
    n_bars = close.shape[0]
    value = np.empty((n_genomes, n_bars), dtype=np.float64)
    traded = np.empty(n_genomes, dtype=np.float64)
    rebalanced = np.empty((n_genomes, n_bars), dtype=np.bool_)
    longonly = (w >= 0).all(axis=(1, 2))
    nb.simulate_population_nb(
        close, w, starts, masks, mask_of, thresholds, fees, slippage, init_cash, longonly, value, traded, rebalanced
    )
    return value.T, traded, rebalanced.T


def _vbt_portfolio(prices: Prices, wc, starts, gmask, thresholds, fees, slippage, init_cash):
    """The vectorbt reference for genomes ``wc`` (m, n_segments, n_assets), one group each.

    ``gmask`` (n_bars, m) holds each genome's calendar bars (the segment starts are added here). Without a
    drift band (``thresholds`` None) this is ``from_orders``: on every rebalance bar the size array holds the
    active segment's targets. With ``thresholds`` (m, n_segments) it is ``from_order_func`` with the callbacks of
    :mod:`genetic_sizer.backtest.vbt_reference`, which decide each bar. Returns ``(portfolio, tiled close, the bars each
    genome rebalanced on (n_bars, m))``.
    """
    import vectorbt as vbt
    from vectorbt.portfolio.enums import Direction

    n_assets = prices.n_assets
    m = wc.shape[0]
    tiled = np.tile(prices.close, (1, m))
    close = pd.DataFrame(tiled, index=prices.index)
    longonly = (wc >= 0).all(axis=(1, 2))
    group_by = np.repeat(np.arange(m), n_assets)
    gmask = gmask.copy()
    gmask[starts] = True
    if thresholds is None:
        size = np.full(tiled.shape, np.nan)
        for g in range(m):
            rows = np.flatnonzero(gmask[:, g])
            active = np.searchsorted(starts, rows, side="right") - 1  # segment of each rebalance bar
            size[rows, g * n_assets : (g + 1) * n_assets] = wc[g, active]
        direction = np.where(np.repeat(longonly, n_assets), Direction.LongOnly, Direction.Both)
        pf = vbt.Portfolio.from_orders(
            close=close,
            size=size,
            size_type="targetpercent",
            direction=direction[None, :],
            group_by=group_by,
            cash_sharing=True,
            call_seq="auto",
            fees=fees,
            slippage=slippage,
            init_cash=init_cash,
            min_size=nb.MIN_SIZE,
            freq=None,
        )
        return pf, tiled, gmask
    from genetic_sizer.backtest import vbt_reference as R

    directions = np.where(longonly, int(Direction.LongOnly), int(Direction.Both)).astype(np.int64)
    rebalanced = np.zeros((prices.n_bars, m), dtype=np.bool_)
    pf = vbt.Portfolio.from_order_func(
        close,
        R.order_func_nb,
        float(fees),
        float(slippage),
        directions,
        float(nb.MIN_SIZE),
        pre_segment_func_nb=R.pre_segment_nb,
        pre_segment_args=(
            np.ascontiguousarray(wc),
            np.asarray(starts, dtype=np.int64),
            np.ascontiguousarray(gmask),
            np.ascontiguousarray(thresholds, dtype=np.float64),
            directions,
            rebalanced,
        ),
        group_by=group_by,
        cash_sharing=True,
        init_cash=init_cash,
        freq=None,
    )
    return pf, tiled, rebalanced


def _simulate_vectorbt(prices: Prices, w, starts, gmask, thresholds, fees, slippage, init_cash):
    """The reference, one group per genome, in bounded chunks of genomes (see :func:`_vbt_portfolio`).

    ``w`` (n_genomes, n_segments, n_assets) with segments starting at ``starts``; ``gmask`` (n_bars, n_genomes)
    each genome's calendar bars; ``thresholds`` (n_genomes, n_segments) or None (calendar rebalancing only:
    ``from_orders``).
    """
    n_bars, n_assets = prices.close.shape
    n_genomes = w.shape[0]
    chunk = max(1, VBT_CHUNK_CELLS // (n_bars * n_assets))
    value = np.empty((n_bars, n_genomes), dtype=np.float64)
    traded = np.empty(n_genomes, dtype=np.float64)
    rebalanced = np.empty((n_bars, n_genomes), dtype=np.bool_)
    for lo in range(0, n_genomes, chunk):
        hi = min(n_genomes, lo + chunk)
        m = hi - lo
        th = None if thresholds is None else thresholds[lo:hi]
        pf, tiled, reb = _vbt_portfolio(prices, w[lo:hi], starts, gmask[:, lo:hi], th, fees, slippage, init_cash)
        value[:, lo:hi] = pf.value().to_numpy().reshape(n_bars, m)
        traded[lo:hi] = _vbt_traded(pf, tiled, reb, m, n_assets)
        rebalanced[:, lo:hi] = reb
    return value, traded, rebalanced


def holdings(
    close,
    weights,
    *,
    segment_starts=None,
    rebalance="M",
    threshold=None,
    fees: float = 0.0,
    slippage: float = 0.0,
    init_cash: float = 10_000.0,
    market: str = "spot",
    leverage=1.0,
    funding=None,
    max_leverage=None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """What one genome holds at every bar's close: each asset's value as a fraction of the portfolio value
    (weights drift between rebalances), computed by the reference engine (vectorbt for spot, the plain-Python
    loop for perps).

    Parameters are those of :func:`simulate` for a single genome (``weights`` (n_assets,), or
    (n_segments, n_assets) with ``segment_starts``; ``rebalance`` one policy, or with ``segment_starts`` one per
    segment; ``threshold`` and, for perps, ``leverage`` a number, or one per segment). Returns the weights over
    time (a DataFrame: time index, one column per symbol; spot: cash is what the columns leave to 1; perp: each
    position's signed notional over the bar's segment's ``leverage`` x equity, the quantity the targets are, NaN
    once the account is liquidated) and the bars it rebalanced on (n_bars,).
    """
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
    policy = rebalance if _is_policy(rebalance) else [rebalance]
    masks, mask_of = rebalance_masks(prices.index, policy, 1, None if segment_starts is None else starts)
    thresholds = None if threshold is None else validate_thresholds([threshold], 1, starts.size)
    if market == "perp":
        max_lev = resolve_max_leverage(max_leverage, prices.symbols)
        per_genome = leverage if np.ndim(leverage) == 0 else [leverage]
        lev = check_leverage(per_genome, 1, max_lev, prices.symbols, starts.size)[0]
        run = perp.reference_genome(
            prices.close,
            w[0],
            starts,
            masks[mask_of[0]],
            thresholds=None if thresholds is None else thresholds[0],
            leverage=lev,
            mm_rate=np.where(np.isfinite(max_lev), 0.5 / max_lev, 0.0),
            funding=_funding_rates(funding, prices),
            fees=fees,
            slippage=slippage,
            init_cash=init_cash,
        )
        segment = np.searchsorted(starts, np.arange(prices.n_bars), side="right") - 1
        gross = lev[segment][:, None] * run["value"][:, None]  # each bar's segment's leverage x equity
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(gross > 0, run["position"] * prices.close / gross, np.nan)
        if run["liquidated"] >= 0:
            frac[run["liquidated"] :] = np.nan
        return pd.DataFrame(frac, index=prices.index, columns=list(prices.symbols)), run["rebalanced"]
    if market != "spot":
        raise ConfigError(f"market must be one of {list(V.MARKETS)}, got {market!r}")
    pf, _, rebalanced = _vbt_portfolio(prices, w, starts, masks[mask_of].T, thresholds, fees, slippage, init_cash)
    asset_value = pf.asset_value(group_by=False).to_numpy()
    total = pf.value().to_numpy().reshape(-1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(total > 0, asset_value / total, np.nan)
    return pd.DataFrame(frac, index=prices.index, columns=list(prices.symbols)), rebalanced[:, 0]


def _vbt_traded(pf, tiled_close, rebalanced, n_groups, n_assets) -> np.ndarray:
    """Turnover sum from vectorbt's order records, the same definition as the fast kernel's: over each genome's
    rebalance bars after the first (``rebalanced`` (n_bars, n_groups)), the traded notional divided by the group
    value before trading (bars where that value is not positive count nothing)."""
    rec = pf.orders.values
    cash = pf.cash().to_numpy().reshape(-1, n_groups)  # after each bar's orders
    assets = pf.assets().to_numpy()  # (n_bars, n_columns)
    n_bars = tiled_close.shape[0]
    held = (assets[:-1] * tiled_close[1:]).reshape(n_bars - 1, n_groups, n_assets).sum(axis=2)
    pre_value = cash[:-1] + held  # bars 1 .. n-1, before their orders
    notional = np.zeros((n_bars, n_groups))
    np.add.at(notional, (rec["idx"], rec["col"] // n_assets), rec["size"] * rec["price"])
    counted = rebalanced[1:] & (pre_value > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counted, notional[1:] / pre_value, 0.0).sum(axis=0)

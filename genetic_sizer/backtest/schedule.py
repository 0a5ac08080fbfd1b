"""When each genome trades and toward what: calendar rebalance masks, drift bands, and the checks of weights and of
weight schedules, shared by every engine of :mod:`genetic_sizer.backtest.simulate`.

A policy is ``"once"`` (buy and hold), ``"D"``, ``"W"``, ``"M"``, ``"Q"`` (the first bar of each calendar period, on
the index's own clock: the engines pass ``Prices.calendar_index``, UTC for UTC data and the local time of timestamps
written with a UTC offset) or an int N (every N bars); :func:`rebalance_masks` turns one policy per genome (or per
genome and segment) into a table of distinct masks. A weight schedule (``segment_starts``) gives each genome one weight
vector per segment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genetic_sizer import vocab as V
from genetic_sizer.data.times import IndexMemo
from genetic_sizer.errors import ConfigError, GenomeError

__all__ = [
    "check_population",
    "is_policy",
    "rebalance_mask",
    "rebalance_masks",
    "validate_schedule",
    "validate_segment_starts",
    "validate_thresholds",
    "validate_weights",
]

WEIGHT_TOL = 1e-9
"""Absolute tolerance on the sum of |w| (and on negative zero weights)."""


_MASKS = IndexMemo()
"""Computed calendar masks, keyed by the policy's code: an index is immutable, so its masks are computed once (the
evolution loop asks for the same ones every generation); an entry leaves with its index."""


def rebalance_mask(index: pd.DatetimeIndex, rebalance) -> np.ndarray:
    """Boolean mask of rebalance bars for a policy (a new array each call).

    ``"once"``: the first bar only (buy and hold). ``"D"``, ``"W"``, ``"M"``, ``"Q"``: the first bar of
    each calendar day, week (Monday to Sunday), month or quarter of ``index`` as it reads (a UTC index: in UTC;
    ``Prices.calendar_index``: in the source's local time). An int N: every N bars, starting with the first. The
    first bar is always a rebalance bar.
    """
    code = V.parse_rebalance(rebalance)
    mask = _MASKS.get(index, code)
    if mask is None:
        mask = _calendar_mask(index, code)
        _MASKS.put(index, code, mask)  # nothing is kept for an object that is not weak-referenceable
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
    if getattr(index, "tz", None) is None or str(index.tz) == "UTC":  # wall times are the int64 ns: numpy does it
        key = _period_keys(np.asarray(index.as_unit("ns").asi8), code)
    elif code == "D":
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


_DAY_NS = 86_400 * 10**9


def _period_keys(ns: np.ndarray, code: str) -> np.ndarray:
    """The calendar day, week (from Monday), month or quarter of each timestamp (int64 nanoseconds of wall time), as
    integers that change exactly where the period does: what pandas' ``normalize``, ``day_of_week``, ``year``,
    ``month`` and ``quarter`` give, without building their arrays (checked against them in the tests)."""
    if code in ("D", "W"):
        days = ns // _DAY_NS  # floor: days since 1970-01-01 (a Thursday), before 1970 too
        return days if code == "D" else days - (days + 3) % 7
    months = ns.view("M8[ns]").astype("M8[M]").view(np.int64)  # months since 1970-01
    return months if code == "M" else months // 3


def is_policy(value) -> bool:
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

    if is_policy(rebalance):
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
        if is_policy(item):
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


def check_population(weights, starts, symbols) -> np.ndarray:
    """A population's weights checked as :func:`validate_weights` (``starts`` None: (n_genomes, n_assets), or one
    genome) or, for a schedule of checked ``starts`` (:func:`validate_segment_starts`), as :func:`validate_schedule`
    (n_genomes, n_segments, n_assets); returned as a C-contiguous float64 (n_genomes, n_segments, n_assets)."""
    n_assets = len(symbols)
    if starts is None:
        return validate_weights(weights, n_assets, symbols)[:, None, :]
    return _schedule_weights(weights, starts, n_assets, symbols)


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
    return _schedule_weights(weights, starts, n_assets, symbols), starts


def _schedule_weights(weights, starts, n_assets: int, symbols) -> np.ndarray:
    """:func:`validate_schedule`'s weights, for checked ``starts``."""
    n_segments = starts.size
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 3 or w.shape[1:] != (n_segments, n_assets):
        raise GenomeError(
            f"with {n_segments} segment_starts, weights must have shape (n_genomes, {n_segments}, {n_assets}), "
            f"got {np.shape(weights)}"
        )
    _check_genomes(w, symbols, starts)
    return np.ascontiguousarray(w)


def _check_genomes(w, symbols, starts) -> None:
    """Finite weights and unit gross exposure for every genome and segment of ``w`` (n_genomes, n_segments,
    n_assets); ``starts`` None for static weights (messages then name the genome only)."""
    if w.shape[0] == 0:
        raise GenomeError("weights: the population is empty")

    if (np.abs(np.abs(w).sum(axis=2) - 1.0) <= WEIGHT_TOL).all():  # one pass in the usual case: NaN and inf fail it
        return

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

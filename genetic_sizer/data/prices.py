"""Prices: the one validated value every loader returns.

A close matrix (bars x assets, float64, C-contiguous), a strictly increasing UTC time index, the asset symbols,
where the data came from, and the number of bars per year used to annualize metrics
(:func:`infer_periods_per_year`). The files are read by :mod:`genetic_sizer.data.loaders`.

Validation happens here, at the boundary, and bad data is a :class:`~genetic_sizer.errors.DataError`
that names the source, the symbol and the timestamp:

* unsorted or duplicate timestamps (:mod:`genetic_sizer.data.times`);
* non-positive or non-finite prices inside the selected window;
* a symbol with no data (or an unknown symbol asked for);
* fewer than 2 assets or fewer than ``min_bars`` bars.

Leading gaps (an asset that is listed later than the others, so its first rows are empty) are handled by
an explicit policy, ``leading_gaps``:

``"trim"`` (default)
    the window starts at the first bar where every selected asset has a price; what was cut is recorded
    in :attr:`Prices.trimmed_bars` and reported by the CLI. Nothing is filled.
``"error"``
    a leading gap is a ``DataError`` naming the symbol and its first priced bar.

Gaps *inside* the window are never filled: they are errors.
"""

from __future__ import annotations

import copyreg
import dataclasses
import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genetic_sizer import vocab as V
from genetic_sizer.data.calendar import infer_periods_per_year, read_calendar
from genetic_sizer.data.times import (
    MAX_OFFSET_S,
    fmt_offset,
    fmt_ts,
    local_offsets,
    parse_bound,
    valid_utc_index,
)
from genetic_sizer.errors import ConfigError, DataError, DataWarning

__all__ = ["FIELDS", "MIN_BARS", "Prices", "infer_periods_per_year"]

MIN_BARS = 3
"""The fewest bars a price set may have: two returns are needed for a standard deviation."""


@dataclass(frozen=True, eq=False)
class Prices:
    """Validated close prices of several assets on one time index.

    Parameters
    ----------
    close : ndarray of shape (n_bars, n_assets)
        Close prices, float64, finite and strictly positive.
    index : DatetimeIndex of length n_bars
        Bar timestamps, UTC, strictly increasing.
    symbols : tuple of str, length n_assets
        Asset symbols, unique.
    source : str
        Where the data came from (a file path or a dataset name), used in error messages and provenance.
    periods_per_year : float, optional
        Bars per year for annualization; inferred from the bars in their own calendar when not given (see
        :func:`~genetic_sizer.data.calendar.infer_periods_per_year`: calendar months, quarters and years; weekly;
        24/7 or weekday markets).
    trimmed_bars : int
        Bars dropped at the start by the ``leading_gaps="trim"`` policy.
    notes : tuple of str
        How the loader read the source, for people: which columns it used (an adjusted close preferred
        over a raw one), the epoch unit it detected for numeric timestamps, the UTC offset of the timestamps,
        weekend bars in a weekday market, what was assumed of a window too short to show a weekend, holes far
        longer than the usual spacing (:mod:`genetic_sizer.data.calendar`). Carried into :meth:`provenance` and
        printed by ``genetic-sizer data info``.
    funding : ndarray of shape (n_bars, n_assets), optional
        Perpetual funding rates aligned to the bars (see :func:`~genetic_sizer.data.funding.align_funding`):
        row ``t`` holds the sum of the rates paid in (t-1, t] (positive: longs pay), 0 where none was paid. Loaded
        next to Hyperliquid prices (:func:`~genetic_sizer.data.loaders.load`); it travels with every window cut
        from these prices (:meth:`bars`, :meth:`select`). NaN marks a bar in which no rate was recorded for the coin
        (a hole in the funding file): a perp run refuses such a coin rather than charging it nothing.
    fields : dict of name -> (n_bars, n_assets), optional
        Per-asset matrices beside ``close`` (:data:`FIELDS`: ``high`` and ``low``), carried like ``funding``.
    margin : dict of symbol -> ((lower_bound, max_leverage), ...), optional
        The exchange's margin tiers (:mod:`genetic_sizer.data.margin`), for the perp account.
    utc_offset : int64 seconds (n_bars,), optional
        The UTC offset each timestamp was written with (None: UTC), for :attr:`calendar_index` (:func:`_check_offset`).
    """

    close: np.ndarray
    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    source: str = "memory"
    periods_per_year: float | None = None
    trimmed_bars: int = 0
    notes: tuple[str, ...] = ()
    _sha: list = field(default_factory=list, repr=False, compare=False)
    funding: np.ndarray | None = None
    fields: dict = field(default_factory=dict)
    margin: dict | None = None
    utc_offset: np.ndarray | None = None

    def __post_init__(self):
        close = np.ascontiguousarray(np.asarray(self.close, dtype=np.float64))
        index, how = valid_utc_index(self.index, self.source)
        notes = tuple(str(n) for n in self.notes) + ((f"time index read as {how}",) if how else ())
        symbols = tuple(str(s) for s in self.symbols)
        if close.ndim != 2:
            raise DataError(f"{self.source}: close must be 2-D (bars x assets), got shape {close.shape}")
        if close.shape != (len(index), len(symbols)):
            raise DataError(
                f"{self.source}: close has shape {close.shape} but there are {len(index)} timestamps "
                f"and {len(symbols)} symbols"
            )
        _check_symbols(symbols, self.source)
        _check_values(close, index, symbols, self.source)
        if len(symbols) < 2:
            raise DataError(f"{self.source}: need at least 2 assets, got {len(symbols)} ({list(symbols)})")
        if len(index) < MIN_BARS:
            raise DataError(f"{self.source}: need at least {MIN_BARS} bars, got {len(index)}")
        utc_offset = _check_offset(self.utc_offset, len(index), self.source, self.index)
        ppy = self.periods_per_year
        if ppy is None:
            ppy = infer_periods_per_year(index, utc_offset)
        elif not (np.isfinite(ppy) and ppy > 0):
            raise ConfigError(f"periods_per_year must be a positive number, got {ppy!r}")
        close.setflags(write=False)
        if self.funding is not None:
            object.__setattr__(self, "funding", _check_funding(self.funding, close, index, symbols, self.source))
        object.__setattr__(self, "fields", _check_fields(self.fields, close, index, symbols, self.source))
        object.__setattr__(self, "margin", _check_margin(self.margin, symbols, self.source))
        object.__setattr__(self, "close", close)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "symbols", symbols)
        object.__setattr__(self, "periods_per_year", float(ppy))
        object.__setattr__(self, "notes", notes)
        object.__setattr__(self, "utc_offset", utc_offset)

    # ------------------------------------------------------------------ views
    @property
    def n_bars(self) -> int:
        return self.close.shape[0]

    @property
    def n_assets(self) -> int:
        return self.close.shape[1]

    @property
    def high(self) -> np.ndarray | None:
        """Each bar's highest price (None: the data has closes only)."""
        return self.fields.get("high")

    @property
    def low(self) -> np.ndarray | None:
        """Each bar's lowest price (None: the data has closes only)."""
        return self.fields.get("low")

    @property
    def calendar_index(self) -> pd.DatetimeIndex:
        """The bars on their own clock, for calendar rebalances (see :func:`_calendar_index`)."""
        return _calendar_index(self)

    def bars(self, start: int, stop: int) -> Prices:
        """Bars ``start`` to ``stop - 1`` (positions, as a slice), with the same symbols, source and bars per
        year (a window is annualized like the data it was cut from, never re-inferred from its own spacing)."""
        n = self.n_bars
        if not (0 <= start < stop <= n):
            raise DataError(f"{self.source}: bars [{start}, {stop}) are not inside the {n} bars")
        return Prices(
            close=self.close[start:stop],
            index=self.index[start:stop],
            symbols=self.symbols,
            source=self.source,
            periods_per_year=self.periods_per_year,
            notes=self.notes,
            funding=None if self.funding is None else self.funding[start:stop],
            fields={k: v[start:stop] for k, v in self.fields.items()},
            margin=self.margin,
            utc_offset=None if self.utc_offset is None else self.utc_offset[start:stop],
        )

    def with_funding(self, funding, note: str | None = None) -> Prices:
        """These prices with ``funding`` (n_bars, n_assets) attached (None: without), ``note`` added to the notes."""
        return dataclasses.replace(self, funding=funding, notes=self.notes + ((note,) if note else ()), _sha=[])

    def with_fields(self, fields=None, margin=None, note: str | None = None) -> Prices:
        """These prices with ``fields`` added to theirs, the ``margin`` tiers when given, and ``note``."""
        merged, notes = {**self.fields, **(fields or {})}, self.notes + ((note,) if note else ())
        return dataclasses.replace(self, fields=merged, margin=margin or self.margin, notes=notes, _sha=[])

    def funding_frame(self) -> pd.DataFrame | None:
        """The funding rates per bar as a DataFrame (UTC index, one column per symbol), or None."""
        if self.funding is None:
            return None
        return pd.DataFrame(self.funding, index=self.index, columns=list(self.symbols))

    def to_frame(self) -> pd.DataFrame:
        """The close matrix as a DataFrame (UTC index, one column per symbol)."""
        return pd.DataFrame(self.close, index=self.index, columns=list(self.symbols))

    def sha256(self) -> str:
        """SHA-256 of the close matrix, the index and the symbols: the data's fingerprint for provenance."""
        if not self._sha:
            self._sha.append(_fingerprint(self))
        return self._sha[0]

    def provenance(self) -> dict:
        """A JSON-ready description of this data: source, window, size and fingerprint."""
        return {
            "source": self.source,
            "symbols": list(self.symbols),
            "first_bar": fmt_ts(self.index[0]),
            "last_bar": fmt_ts(self.index[-1]),
            "n_bars": self.n_bars,
            "periods_per_year": self.periods_per_year,
            "close_sha256": self.sha256(),
            "notes": list(self.notes),
            "funding": self.funding is not None,
            "fields": sorted(self.fields),
            "margin_tiers": self.margin is not None,
            "utc_offset": _offsets_text(self.utc_offset),
        }

    def select(
        self,
        symbols: Sequence[str] | None = None,
        start=None,
        end=None,
        *,
        leading_gaps: str = "trim",
    ) -> Prices:
        """A new :class:`Prices` restricted to ``symbols`` (in that order) and the window [start, end] (funding
        rates, if any, follow)."""
        out = Prices.from_frame(
            self.to_frame(),
            source=self.source,
            symbols=symbols,
            start=start,
            end=end,
            periods_per_year=self.periods_per_year,
            leading_gaps=leading_gaps,
            notes=self.notes,
            utc_offset=self.utc_offset,
            describe=False,
        )
        rows = self.index.get_indexer(out.index)
        cols = [self.symbols.index(s) for s in out.symbols]
        margin = None if self.margin is None else {s: self.margin[s] for s in out.symbols}
        out = out.with_fields({k: v[np.ix_(rows, cols)] for k, v in self.fields.items()}, margin)
        return out if self.funding is None else out.with_funding(self.funding[np.ix_(rows, cols)])

    # ----------------------------------------------------------- construction
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        source: str = "DataFrame",
        symbols: Sequence[str] | None = None,
        start=None,
        end=None,
        periods_per_year: float | None = None,
        leading_gaps: str = "trim",
        notes: Sequence[str] = (),
        utc_offset=None,
        around_the_clock: bool = False,
        describe: bool = True,
    ) -> Prices:
        """Build validated prices from a wide DataFrame (time index, one column per asset).

        ``symbols`` selects and orders columns; ``start``/``end`` bound the window (inclusive). Leading
        gaps follow ``leading_gaps`` (see the module docstring); every other missing or bad price inside
        the window is a :class:`DataError`. A numeric index is read as epoch timestamps, the unit
        (seconds, milliseconds, microseconds or nanoseconds) detected by magnitude and recorded in
        :attr:`notes`. ``utc_offset``: one per row of ``frame`` (see :attr:`utc_offset`). ``around_the_clock``: the
        market trades every day (Hyperliquid). ``describe``: read the calendar into the notes (see :func:`_describe`).
        """
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
        if leading_gaps not in V.LEADING_GAP_POLICIES:
            raise ConfigError(f"leading_gaps must be one of {V.LEADING_GAP_POLICIES}, got {leading_gaps!r}")
        if len(frame) == 0:
            raise DataError(f"{source}: no rows (columns {[str(c) for c in frame.columns]})")
        cols = [c if type(c) is str else str(c) for c in frame.columns.tolist()]  # a list: fast to iterate
        _check_symbols(tuple(cols), source)
        offsets = _check_offset(utc_offset, len(frame), source, frame.index)
        index, how = valid_utc_index(frame.index, source)  # an index object is read and checked once
        notes = tuple(notes) + ((f"time index read as {how}",) if how else ())
        if selected := symbols is not None or start is not None or end is not None:  # label-based, on a view
            frame = frame.copy(deep=False)  # new axes over the same data (the caller's frame is untouched)
            frame.columns = pd.Index(cols, dtype=object)
            frame.index = index

        if symbols is not None:
            symbols = [str(s) for s in symbols]
            missing = [s for s in symbols if s not in cols]
            if missing:
                raise DataError(f"{source}: symbol(s) {missing} not found; available: {sorted(cols)}")
            if len(set(symbols)) != len(symbols):
                raise DataError(f"{source}: symbols asked for twice in {symbols}")
            frame, cols = frame[symbols], symbols

        start_ts = parse_bound(start, "start")
        end_ts = parse_bound(end, "end")
        if start_ts is not None and end_ts is not None and start_ts > end_ts:
            raise ConfigError(f"data window: start {fmt_ts(start_ts)} is after end {fmt_ts(end_ts)}")
        if start_ts is not None:
            frame = frame[frame.index >= start_ts]
        if end_ts is not None:
            frame = frame[frame.index <= end_ts]
        if len(frame) == 0:
            raise DataError(
                f"{source}: no bars in the window [{start}, {end}] "
                f"(data spans {fmt_ts(index[0])} to {fmt_ts(index[-1])})"
            )

        idx = frame.index if selected else index  # the rows in UTC
        values = _numeric_values(frame, source, idx)
        finite = np.isfinite(values)
        trimmed = 0
        empty = ~finite.any(axis=0)
        if empty.any():
            raise DataError(f"{source}: symbol {cols[int(np.argmax(empty))]!r} has no data in the window")
        first_valid = np.argmax(finite, axis=0)
        if first_valid.max() > 0:
            j = int(np.argmax(first_valid))
            sym, first_ts = cols[j], idx[first_valid[j]]
            if leading_gaps == "error":
                raise DataError(
                    f"{source}: symbol {sym!r} has no price before {fmt_ts(first_ts)} "
                    f"(window starts {fmt_ts(idx[0])}); use leading_gaps='trim' to start the "
                    f"window at the first bar where every asset is priced"
                )
            trimmed = int(first_valid.max())
            values = values[trimmed:]
            idx = idx[trimmed:]
        offsets = None if offsets is None else _check_offset(offsets[index.get_indexer(idx)], len(idx), "")
        if len(idx) >= MIN_BARS and (describe or around_the_clock):  # fewer: refused by the constructor
            calendar = (periods_per_year, notes, source, around_the_clock, describe)
            periods_per_year, notes = _describe(idx, offsets, *calendar)
        return cls(
            close=values,
            index=idx,
            symbols=tuple(cols),
            source=source,
            periods_per_year=periods_per_year,
            trimmed_bars=trimmed,
            notes=notes,
            utc_offset=offsets,
        )


def _unpickled(state: dict) -> Prices:
    """A pickled :class:`Prices` (a worker's copy, a cache) back with its arrays read-only, as validated. Pickle gives
    arrays back writable, and a writable array is another type to Numba than a read-only one: every kernel the copy's
    prices reached would be compiled again (about 80 s for the spot scorer) instead of loaded from the warmed cache."""
    prices = object.__new__(Prices)
    prices.__dict__.update(state)
    for arr in (prices.close, prices.funding, prices.utc_offset, *prices.fields.values()):
        if isinstance(arr, np.ndarray):
            arr.setflags(write=False)
    return prices


def _pickled(prices: Prices):
    return _unpickled, (dict(prices.__dict__),)


copyreg.pickle(Prices, _pickled)


# ---------------------------------------------------------------- validation
FIELDS = {
    "high": "the bar's highest traded (mark) price, >= low and >= close",
    "low": "the bar's lowest traded (mark) price, > 0, <= close",
}
"""The per-asset matrices :class:`Prices` may carry beside ``close`` (``Prices.fields``): name -> what it holds.
A new kind of data per bar and asset (market capitalisations, volumes) is a new entry here and in
:func:`_check_fields`, and rides through every window, selection and join like these."""


def _fingerprint(prices: Prices) -> str:
    """:meth:`Prices.sha256`: the closes, index and symbols, and what else changes a perp account's results."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(prices.close).tobytes())
    h.update(prices.index.asi8.tobytes())
    h.update("\x1f".join(prices.symbols).encode())
    if prices.funding is not None:  # funding changes the perp results: part of the fingerprint
        h.update(b"funding")
        h.update(np.ascontiguousarray(prices.funding).tobytes())
    for name in sorted(prices.fields):  # the bars' ranges change the perp account's liquidations
        h.update(name.encode())
        h.update(np.ascontiguousarray(prices.fields[name]).tobytes())
    if prices.margin is not None:
        h.update(repr(sorted(prices.margin.items())).encode())
    if prices.utc_offset is not None:  # the local calendar moves calendar rebalances
        h.update(b"utc_offset")
        h.update(prices.utc_offset.tobytes())
    return h.hexdigest()


def _check_funding(funding, close: np.ndarray, index, symbols, source: str) -> np.ndarray:
    """``funding`` as a read-only float64 matrix of ``close``'s shape: finite, or NaN where no rate was recorded."""
    funding = np.ascontiguousarray(np.asarray(funding, dtype=np.float64))
    if funding.shape != close.shape:
        raise DataError(f"{source}: funding has shape {funding.shape}, the prices {close.shape}")
    if np.isinf(funding).any():
        t, k = np.argwhere(np.isinf(funding))[0]
        raise DataError(f"{source}: funding rate of {symbols[k]!r} at {fmt_ts(index[t])} is {funding[t, k]!r}")
    funding.setflags(write=False)
    return funding


def _check_fields(fields, close: np.ndarray, index, symbols, source: str) -> dict:
    """``fields`` as read-only float64 matrices of ``close``'s shape, checked (see :data:`FIELDS`)."""
    out = {}
    for name, value in dict(fields or {}).items():
        if name not in FIELDS:
            raise DataError(f"{source}: unknown price field {name!r}; known: {sorted(FIELDS)}")
        arr = np.ascontiguousarray(np.asarray(value, dtype=np.float64))
        if arr.shape != close.shape:
            raise DataError(f"{source}: {name} has shape {arr.shape}, the closes {close.shape}")
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(arr) & (arr > 0))
        if bad.any():
            t, k = np.argwhere(bad)[0]
            raise DataError(
                f"{source}: {name} of {symbols[k]!r} at {fmt_ts(index[t])} is not a positive price: {arr[t, k]!r}"
            )
        arr.setflags(write=False)
        out[name] = arr
    if ("high" in out) != ("low" in out):
        raise DataError(f"{source}: a bar's range needs both high and low, got only {sorted(out)}")
    if "high" in out:
        for name, bad in (("high", out["high"] < close), ("low", out["low"] > close)):
            if bad.any():
                t, k = np.argwhere(bad)[0]
                side = "below" if name == "high" else "above"
                raise DataError(
                    f"{source}: {name} of {symbols[k]!r} at {fmt_ts(index[t])} is {side} the close "
                    f"({out[name][t, k]!r} vs {close[t, k]!r})"
                )
    return out


def _check_margin(margin, symbols, source: str) -> dict | None:
    """``margin`` (symbol -> tiers) checked by :func:`genetic_sizer.data.margin.check_tiers`, one for every symbol."""
    if margin is None:
        return None
    from genetic_sizer.data.margin import check_tiers

    missing = [s for s in symbols if s not in margin]
    if missing:
        raise DataError(f"{source}: no margin tiers for {missing}")
    return {s: check_tiers(s, margin[s], source) for s in symbols}


def _check_symbols(symbols: tuple[str, ...], source: str) -> None:
    seen = set()
    for s in symbols:
        if not s or not s.strip():
            raise DataError(f"{source}: empty symbol name in {list(symbols)}")
        if s in seen:
            raise DataError(f"{source}: symbol {s!r} appears twice")
        seen.add(s)


def _check_values(close: np.ndarray, index: pd.DatetimeIndex, symbols, source: str) -> None:
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(close) & (close > 0)
    if ok.all():
        return
    i, j = np.argwhere(~ok)[0]
    v = close[i, j]
    what = "missing (NaN)" if np.isnan(v) else ("not finite" if not np.isfinite(v) else "not positive")
    raise DataError(f"{source}: price of {symbols[j]!r} at {fmt_ts(index[i])} is {what}: {float(v)!r}")


def _numeric_values(frame: pd.DataFrame, source: str, index: pd.DatetimeIndex) -> np.ndarray:
    """The frame's values as float64 (a view where they already are); ``index``: the frame's rows in UTC (messages)."""
    raw = frame.to_numpy()
    if raw.dtype.kind in "biuf":  # every column plain numbers (one look at the frame, no column taken out)
        return raw.astype(np.float64, copy=False)
    if all(pd.api.types.is_numeric_dtype(d) for d in frame.dtypes):  # nullable or extension numbers
        return frame.to_numpy(dtype=np.float64, na_value=np.nan)
    frame = frame.copy(deep=False)  # columns are converted below: never in the caller's frame
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            coerced = pd.to_numeric(frame[col], errors="coerce")
            bad = coerced.isna() & frame[col].notna()
            if bad.any():
                ts = index[np.flatnonzero(bad.to_numpy())[0]]
                val = frame[col][bad].iloc[0]
                raise DataError(f"{source}: price of {col!r} at {fmt_ts(ts)} is not a number: {val!r}")
            frame[col] = coerced
    return frame.to_numpy(dtype=np.float64, na_value=np.nan)


# ------------------------------------------------------------ local calendar
def _offsets_text(offsets: np.ndarray | None) -> str | None:
    """The distinct UTC offsets, in order of appearance, as ``+09:00`` (``-05:00/-04:00`` across a DST change)."""
    return None if offsets is None else "/".join(fmt_offset(s) for s in dict.fromkeys(offsets.tolist()))


def _describe(index, offsets, periods_per_year, notes, source: str, around_the_clock: bool, describe: bool):
    """``(periods_per_year, notes)`` of :meth:`Prices.from_frame`: the bars per year inferred when not given
    (:func:`~genetic_sizer.data.calendar.read_calendar`; ``around_the_clock``: a 365-day year whatever the window's
    weekdays) and, with ``describe``, what the calendar says added to ``notes`` (the UTC offset, weekend bars in a
    weekday market, what was assumed of an intraday window without a weekend, holes); what points at the data
    (weekend bars, holes) is also a :class:`~genetic_sizer.errors.DataWarning` unless ``notes`` already say it (a
    selection of noted prices)."""
    cal = read_calendar(index, offsets, around_the_clock=around_the_clock, periods_per_year=periods_per_year)
    new = [n for n in cal.notes if n not in notes] if describe else []
    for note in (n for n in new if n in cal.warnings):
        warnings.warn(f"{source}: {note}", DataWarning, stacklevel=4)
    return (cal.periods_per_year if periods_per_year is None else periods_per_year), tuple(notes) + tuple(new)


def _calendar_index(prices: Prices) -> pd.DatetimeIndex:
    """:attr:`Prices.calendar_index`: :attr:`~Prices.index` itself for UTC data, else the local wall-clock times (UTC +
    :attr:`~Prices.utc_offset`, timezone-naive), whose days, weekdays and months are the source's; calendar
    rebalances (:func:`genetic_sizer.backtest.schedule.rebalance_masks`) are taken on it. The same object on every
    call (the masks are cached per index object)."""
    if prices.utc_offset is None:
        return prices.index
    cached = prices.__dict__.get("_calendar_index")
    if cached is None:
        cached = pd.DatetimeIndex((prices.index.asi8 + prices.utc_offset * 10**9).view("M8[ns]"))
        object.__setattr__(prices, "_calendar_index", cached)
    return cached


def _check_offset(utc_offset, n: int, source: str, index=None) -> np.ndarray | None:
    """``utc_offset`` (:attr:`Prices.utc_offset`) as read-only int64 seconds east of UTC, one per bar (a single
    value, a ``timedelta``, applies to every bar; None takes the offsets of a timezone-aware ``index``), or None when
    every one is 0 (UTC data is UTC data). The offsets are read by the loaders from the time column
    (:func:`~genetic_sizer.data.times.local_offsets`) and put each bar on its own calendar day
    (:attr:`Prices.calendar_index`) for the weekend test, the bars of a day and calendar rebalances; they travel
    with every window (:meth:`Prices.bars`, :meth:`Prices.select`) and are part of :meth:`Prices.sha256`. A
    DataError unless whole seconds within 18 hours of UTC."""
    if utc_offset is None:
        return local_offsets(index) if isinstance(index, pd.DatetimeIndex) else None
    if isinstance(utc_offset, (pd.Timedelta, np.timedelta64)) or hasattr(utc_offset, "total_seconds"):
        utc_offset = pd.Timedelta(utc_offset).total_seconds()
    arr = np.asarray(utc_offset)
    if arr.dtype.kind == "m":
        arr = arr.astype("m8[s]").astype(np.int64)
    try:
        arr = np.broadcast_to(arr.astype(np.float64), (n,))
    except (TypeError, ValueError):
        raise DataError(
            f"{source}: utc_offset must be seconds east of UTC, one per bar ({n}) or one for all, got {utc_offset!r}"
        ) from None
    bad = ~(np.isfinite(arr) & (np.abs(arr) <= MAX_OFFSET_S) & (arr == np.round(arr)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: utc_offset of bar {i} is {float(arr[i])!r}: whole seconds east of UTC, at most {MAX_OFFSET_S} "
            f"(18 hours) either way"
        )
    if not arr.any():
        return None
    out = np.ascontiguousarray(arr, dtype=np.int64)
    out.setflags(write=False)
    return out

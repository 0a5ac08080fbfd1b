"""Price data: the only module that reads or writes price files.

Every loader returns one validated :class:`Prices` value: a close matrix (bars x assets, float64,
C-contiguous), a strictly increasing UTC time index, the asset symbols, where the data came from, and the
number of bars per year used to annualize metrics.

Validation happens here, at the boundary, and a bad file is a :class:`~genetic_sizer.errors.DataError`
that names the source, the symbol and the timestamp:

* unsorted or duplicate timestamps;
* non-positive or non-finite prices inside the selected window;
* a symbol with no data (or an unknown symbol asked for);
* fewer than 2 assets or fewer than ``min_bars`` bars;
* a file without rows, without a recognisable time column, or with timestamps that cannot be read
  (an impossible date, epoch numbers of no unit or of mixed units).

Files come in wide form (a time column and one column per asset) or long form (time, symbol and close
columns); :func:`load_csv` lists the column names recognised. What the loader chose (the time column,
the epoch unit of numeric timestamps, the close column of a long-form file) is kept in
:attr:`Prices.notes`.

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

import csv
import dataclasses
import hashlib
import itertools
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genetic_sizer import vocab as V
from genetic_sizer.errors import ConfigError, DataError

__all__ = [
    "FUNDING_SUFFIX",
    "LEADING_GAP_POLICIES",
    "MIN_BARS",
    "Prices",
    "align_funding",
    "funding_path_for",
    "infer_periods_per_year",
    "load",
    "load_csv",
    "load_default",
    "load_funding",
    "load_parquet",
    "save_parquet",
]

MIN_BARS = 3
"""The fewest bars a price set may have: two returns are needed for a standard deviation."""

LEADING_GAP_POLICIES = V.LEADING_GAP_POLICIES

# Column names are matched after normalization (lower case, only letters and digits): "Adj Close",
# "adj_close" and "ADJ-CLOSE" are all "adjclose".
_TIME_COLUMNS = ("timestamp", "datetime", "date", "time", "opentime")
"""Names that make a column the time column (in this order of preference)."""
_WEAK_TIME_COLUMNS = ("t", "ts")
"""Names that are also tickers (``T`` is AT&T): the time column only when the values are dates or epochs."""
_SYMBOL_COLUMNS = ("symbol", "ticker", "coin", "asset")
_WEAK_SYMBOL_COLUMNS = ("s",)
"""Hyperliquid candles' coin; also a ticker (SentinelOne): a symbol column only when it holds text."""
_ADJ_CLOSE_COLUMNS = ("adjclose", "adjustedclose")
"""Split- and dividend-adjusted closes, preferred over raw closes when a long-form file has both."""
_CLOSE_COLUMNS = ("close", "c", "price", "last")
_BAR_FIELDS = ("open", "high", "low", "close", "adjclose", "adjustedclose", "volume")
"""Fields of one asset's OHLCV bar: a wide file with two or more of them as "assets" is one asset's bars."""

_EPOCH_UNITS = (("s", "seconds", 1e8, 1e10), ("ms", "milliseconds", 1e11, 1e13), ("us", "microseconds", 1e14, 1e16))
_EPOCH_NS = ("ns", "nanoseconds", 1e17, 2**63 - 1)
"""Magnitude of an epoch timestamp in each unit for dates from 1973-03 to 2286-11 (nanoseconds: to 2262-04)."""

DEFAULT_SOURCE = "skfolio.datasets.load_sp500_dataset"


def _fmt_ts(ts) -> str:
    return pd.Timestamp(ts).isoformat()


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
        Bars per year for annualization; inferred from the bar spacing when not given
        (see :func:`infer_periods_per_year`).
    trimmed_bars : int
        Bars dropped at the start by the ``leading_gaps="trim"`` policy.
    notes : tuple of str
        How the loader read the source, for people: which columns it used (an adjusted close preferred
        over a raw one), the epoch unit it detected for numeric timestamps. Carried into
        :meth:`provenance` and printed by ``genetic-sizer data info``.
    funding : ndarray of shape (n_bars, n_assets), optional
        Perpetual funding rates aligned to the bars (see :func:`align_funding`): row ``t`` holds the sum of the
        rates paid in (t-1, t] (positive: longs pay), 0 where none was paid. Loaded next to Hyperliquid prices
        (:func:`load`); it travels with every window cut from these prices (:meth:`bars`, :meth:`select`).
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

    def __post_init__(self):
        close = np.ascontiguousarray(np.asarray(self.close, dtype=np.float64))
        index, how = _as_utc_index(self.index, self.source)
        notes = tuple(str(n) for n in self.notes) + ((f"time index read as {how}",) if how else ())
        symbols = tuple(str(s) for s in self.symbols)
        if close.ndim != 2:
            raise DataError(f"{self.source}: close must be 2-D (bars x assets), got shape {close.shape}")
        if close.shape != (len(index), len(symbols)):
            raise DataError(
                f"{self.source}: close has shape {close.shape} but there are {len(index)} timestamps "
                f"and {len(symbols)} symbols"
            )
        _check_index(index, self.source)
        _check_symbols(symbols, self.source)
        _check_values(close, index, symbols, self.source)
        if len(symbols) < 2:
            raise DataError(f"{self.source}: need at least 2 assets, got {len(symbols)} ({list(symbols)})")
        if len(index) < MIN_BARS:
            raise DataError(f"{self.source}: need at least {MIN_BARS} bars, got {len(index)}")
        ppy = self.periods_per_year
        if ppy is None:
            ppy = infer_periods_per_year(index)
        elif not (np.isfinite(ppy) and ppy > 0):
            raise ConfigError(f"periods_per_year must be a positive number, got {ppy!r}")
        close.setflags(write=False)
        if self.funding is not None:
            funding = np.ascontiguousarray(np.asarray(self.funding, dtype=np.float64))
            if funding.shape != close.shape:
                raise DataError(f"{self.source}: funding has shape {funding.shape}, the prices {close.shape}")
            if not np.isfinite(funding).all():
                t, k = np.argwhere(~np.isfinite(funding))[0]
                raise DataError(
                    f"{self.source}: funding rate of {symbols[k]!r} at {_fmt_ts(index[t])} is {funding[t, k]!r}"
                )
            funding.setflags(write=False)
            object.__setattr__(self, "funding", funding)
        object.__setattr__(self, "close", close)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "symbols", symbols)
        object.__setattr__(self, "periods_per_year", float(ppy))
        object.__setattr__(self, "notes", notes)

    # ------------------------------------------------------------------ views
    @property
    def n_bars(self) -> int:
        return self.close.shape[0]

    @property
    def n_assets(self) -> int:
        return self.close.shape[1]

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
        )

    def with_funding(self, funding, note: str | None = None) -> Prices:
        """These prices with ``funding`` (n_bars, n_assets) attached (None: without), ``note`` added to the notes."""
        return Prices(
            close=self.close,
            index=self.index,
            symbols=self.symbols,
            source=self.source,
            periods_per_year=self.periods_per_year,
            trimmed_bars=self.trimmed_bars,
            notes=self.notes + ((note,) if note else ()),
            funding=funding,
        )

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
            h = hashlib.sha256()
            h.update(np.ascontiguousarray(self.close).tobytes())
            h.update(self.index.asi8.tobytes())
            h.update("\x1f".join(self.symbols).encode())
            if self.funding is not None:  # funding changes the perp results: part of the fingerprint
                h.update(b"funding")
                h.update(np.ascontiguousarray(self.funding).tobytes())
            self._sha.append(h.hexdigest())
        return self._sha[0]

    def provenance(self) -> dict:
        """A JSON-ready description of this data: source, window, size and fingerprint."""
        return {
            "source": self.source,
            "symbols": list(self.symbols),
            "first_bar": _fmt_ts(self.index[0]),
            "last_bar": _fmt_ts(self.index[-1]),
            "n_bars": self.n_bars,
            "periods_per_year": self.periods_per_year,
            "close_sha256": self.sha256(),
            "notes": list(self.notes),
            "funding": self.funding is not None,
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
        )
        if self.funding is None:
            return out
        rows = self.index.get_indexer(out.index)
        cols = [self.symbols.index(s) for s in out.symbols]
        return out.with_funding(self.funding[np.ix_(rows, cols)])

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
    ) -> Prices:
        """Build validated prices from a wide DataFrame (time index, one column per asset).

        ``symbols`` selects and orders columns; ``start``/``end`` bound the window (inclusive). Leading
        gaps follow ``leading_gaps`` (see the module docstring); every other missing or bad price inside
        the window is a :class:`DataError`. A numeric index is read as epoch timestamps, the unit
        (seconds, milliseconds, microseconds or nanoseconds) detected by magnitude and recorded in
        :attr:`notes`.
        """
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
        if leading_gaps not in LEADING_GAP_POLICIES:
            raise ConfigError(f"leading_gaps must be one of {LEADING_GAP_POLICIES}, got {leading_gaps!r}")
        if len(frame) == 0:
            raise DataError(f"{source}: no rows (columns {[str(c) for c in frame.columns]})")
        frame = frame.copy()
        frame.columns = [str(c) for c in frame.columns]
        _check_symbols(tuple(frame.columns), source)
        index, how = _as_utc_index(frame.index, source)
        notes = tuple(notes) + ((f"time index read as {how}",) if how else ())
        _check_index(index, source)
        frame.index = index

        if symbols is not None:
            symbols = [str(s) for s in symbols]
            missing = [s for s in symbols if s not in frame.columns]
            if missing:
                raise DataError(f"{source}: symbol(s) {missing} not found; available: {sorted(frame.columns)}")
            if len(set(symbols)) != len(symbols):
                raise DataError(f"{source}: symbols asked for twice in {symbols}")
            frame = frame[symbols]

        start_ts = _parse_bound(start, "start")
        end_ts = _parse_bound(end, "end")
        if start_ts is not None and end_ts is not None and start_ts > end_ts:
            raise ConfigError(f"data window: start {_fmt_ts(start_ts)} is after end {_fmt_ts(end_ts)}")
        if start_ts is not None:
            frame = frame[frame.index >= start_ts]
        if end_ts is not None:
            frame = frame[frame.index <= end_ts]
        if len(frame) == 0:
            raise DataError(
                f"{source}: no bars in the window [{start}, {end}] "
                f"(data spans {_fmt_ts(index[0])} to {_fmt_ts(index[-1])})"
            )

        values = _numeric_values(frame, source)
        finite = np.isfinite(values)
        trimmed = 0
        for j, sym in enumerate(frame.columns):
            if not finite[:, j].any():
                raise DataError(f"{source}: symbol {sym!r} has no data in the window")
        first_valid = np.argmax(finite, axis=0)
        if first_valid.max() > 0:
            j = int(np.argmax(first_valid))
            sym, first_ts = frame.columns[j], frame.index[first_valid[j]]
            if leading_gaps == "error":
                raise DataError(
                    f"{source}: symbol {sym!r} has no price before {_fmt_ts(first_ts)} "
                    f"(window starts {_fmt_ts(frame.index[0])}); use leading_gaps='trim' to start the "
                    f"window at the first bar where every asset is priced"
                )
            trimmed = int(first_valid.max())
            values = values[trimmed:]
            frame = frame.iloc[trimmed:]
        return cls(
            close=values,
            index=frame.index,
            symbols=tuple(frame.columns),
            source=source,
            periods_per_year=periods_per_year,
            trimmed_bars=trimmed,
            notes=notes,
        )


# ---------------------------------------------------------------- validation
def _as_utc_index(index, source: str) -> tuple[pd.DatetimeIndex, str | None]:
    """``index`` as UTC nanosecond timestamps, and how numbers were read (None if they were not numbers)."""
    if isinstance(index, pd.DatetimeIndex):
        idx, how = index, None
    else:
        idx, how = _parse_times(pd.Series(index), "time index", source)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    else:
        idx = idx.tz_convert("UTC")
    if idx.hasnans:
        pos = int(np.flatnonzero(idx.isna())[0])
        raise DataError(f"{source}: missing timestamp at row {pos}")
    try:
        idx = idx.as_unit("ns")
    except (OverflowError, ValueError):  # OutOfBoundsDatetime: before 1677-09-22 or after 2262-04-11
        pos = int(np.flatnonzero((idx.year < 1678) | (idx.year > 2261))[0])
        raise DataError(
            f"{source}: timestamp {idx[pos].isoformat()} (row {pos}) is outside 1678-2261, the range of "
            f"nanosecond timestamps"
        ) from None
    _check_not_misread_epoch(idx, source)
    return idx, how


def _check_not_misread_epoch(index: pd.DatetimeIndex, source: str) -> None:
    """Refuse an index that is epoch numbers someone already read as nanoseconds (bars on 1970-01-01)."""
    if len(index) < 2:
        return
    ints = index.asi8
    if ints[-1] < 86_400 * 10**9 and np.median(np.diff(ints)) < 10**9:
        raise DataError(
            f"{source}: timestamps run from {_fmt_ts(index[0])} to {_fmt_ts(index[-1])}, less than a second "
            f"apart on 1970-01-01: these look like epoch seconds or milliseconds read as nanoseconds; pass "
            f"the numbers themselves (the unit is detected) or convert them with pd.to_datetime(..., unit='ms')"
        )


def _fmt_number(v: float) -> str:
    return str(int(v)) if np.isfinite(v) and float(v).is_integer() and abs(v) < 2**63 else repr(float(v))


def _epoch_times(values, what: str, source: str) -> tuple[pd.DatetimeIndex, str]:
    """Numbers -> UTC timestamps; the epoch unit is detected from their magnitude.

    Seconds are about 1e9, milliseconds 1e12, microseconds 1e15 and nanoseconds 1e18 for dates between
    1973 and 2262; a value that fits no unit, or a column that mixes units, is a DataError. Whole numbers
    from 18000101 to 22001231 that are all valid dates are read as YYYYMMDD.
    """
    raw = np.asarray(values)
    v = raw.astype(np.float64)
    bad = ~np.isfinite(v)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: {what} has a missing timestamp at row {i}")
    units = (*_EPOCH_UNITS, _EPOCH_NS)
    which = np.full(v.shape, -1)
    for k, (_, _, lo, hi) in enumerate(units):
        which[(v >= lo) & (v < hi)] = k
    if (which < 0).all() and ((v >= 18000101) & (v <= 22001231) & (v == np.round(v))).all():
        try:
            ymd = pd.to_datetime(pd.Series(v.astype(np.int64).astype(str)), format="%Y%m%d", utc=True)
        except (ValueError, OverflowError):
            pass
        else:
            return pd.DatetimeIndex(ymd), "YYYYMMDD dates"
    if (which < 0).any():
        i = int(np.flatnonzero(which < 0)[0])
        raise DataError(
            f"{source}: {what} holds {_fmt_number(v[i])} (row {i}), which is neither a date nor an epoch "
            f"timestamp in any unit (for dates 1973-2262 seconds are ~1e9, milliseconds ~1e12, "
            f"microseconds ~1e15, nanoseconds ~1e18)"
        )
    if (which != which[0]).any():
        i = int(np.flatnonzero(which != which[0])[0])
        raise DataError(
            f"{source}: {what} mixes epoch units: row 0 is {_fmt_number(v[0])} ({units[which[0]][1]}) but "
            f"row {i} is {_fmt_number(v[i])} ({units[which[i]][1]})"
        )
    unit, name = units[which[0]][:2]
    if np.issubdtype(raw.dtype, np.integer):
        idx = pd.to_datetime(raw.astype(np.int64), unit=unit, utc=True)
    else:
        idx = pd.to_datetime(v, unit=unit, utc=True)
        if unit in ("s", "ms"):
            idx = idx.round("us")  # float noise below the microsecond
    return pd.DatetimeIndex(idx), f"epoch {name}"


_NUMBER_TEXT = re.compile(r"\s*[-+]?\d+(\.\d*)?\s*")


def _parse_times(values: pd.Series, what: str, source: str) -> tuple[pd.DatetimeIndex, str | None]:
    """A time column (or index) -> UTC timestamps, and how numbers were read (None for dates).

    Dates and date-times (ISO 8601 or any one consistent format, with or without a UTC offset; naive
    ones are taken as UTC), epoch numbers in seconds, milliseconds, microseconds or nanoseconds (see
    :func:`_epoch_times`), or such numbers written as text. Anything else is a DataError naming ``what``,
    the row and the value.
    """
    values = pd.Series(values).reset_index(drop=True)
    missing = values.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(f"{source}: {what} has a missing timestamp at row {i}")
    if pd.api.types.is_bool_dtype(values.dtype):
        raise DataError(f"{source}: {what} holds {values.iloc[0]!r} (row 0), not a timestamp")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return pd.DatetimeIndex(pd.to_datetime(values, utc=True)), None
    if pd.api.types.is_numeric_dtype(values.dtype):
        return _epoch_times(values.to_numpy(), what, source)
    if all(isinstance(x, str) and _NUMBER_TEXT.fullmatch(x) for x in values):
        return _epoch_times(pd.to_numeric(values.str.strip()).to_numpy(), what, source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format": parsed one by one
        for fmt in ("ISO8601", None):
            try:
                return pd.DatetimeIndex(pd.to_datetime(values, utc=True, format=fmt)), None
            except (TypeError, ValueError, OverflowError) as exc:
                error = exc
        coerced = pd.to_datetime(values, utc=True, errors="coerce")
    bad = np.flatnonzero(coerced.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{source}: {what} holds {values.iloc[i]!r} (row {i}), which cannot be read as a timestamp")
    first = str(error).splitlines()[0]
    raise DataError(f"{source}: {what} cannot be read as timestamps ({first})")


def _try_times(values: pd.Series, what: str, source: str):
    """:func:`_parse_times` for a column that may hold prices instead (``T`` is AT&T): None when the values
    are not timestamps, but the error when they are meant as timestamps (epoch-sized numbers, text that
    is mostly dates) and some of them are wrong."""
    try:
        return _parse_times(values, what, source)
    except DataError:
        values = pd.Series(values).dropna()
        if pd.api.types.is_bool_dtype(values.dtype) or values.empty:
            return None
        numbers = pd.to_numeric(values, errors="coerce") if not pd.api.types.is_numeric_dtype(values) else values
        if numbers.notna().mean() > 0.5:  # numbers, or mostly numbers written as text
            meant = bool((numbers.abs() >= 1e7).any())  # prices are smaller; YYYYMMDD and epochs are not
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                meant = bool(pd.to_datetime(values.astype(str), errors="coerce", utc=True).notna().mean() > 0.5)
        if meant:
            raise
        return None


def _check_index(index: pd.DatetimeIndex, source: str) -> None:
    ints = index.asi8
    diffs = np.diff(ints)
    bad = np.flatnonzero(diffs <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        if diffs[i - 1] == 0:
            raise DataError(f"{source}: duplicate timestamp {_fmt_ts(index[i])} (rows {i - 1} and {i})")
        raise DataError(
            f"{source}: timestamps are not sorted: {_fmt_ts(index[i])} (row {i}) comes after {_fmt_ts(index[i - 1])}"
        )


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
    raise DataError(f"{source}: price of {symbols[j]!r} at {_fmt_ts(index[i])} is {what}: {float(v)!r}")


def _numeric_values(frame: pd.DataFrame, source: str) -> np.ndarray:
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            coerced = pd.to_numeric(frame[col], errors="coerce")
            bad = coerced.isna() & frame[col].notna()
            if bad.any():
                ts = frame.index[np.flatnonzero(bad.to_numpy())[0]]
                val = frame[col][bad].iloc[0]
                raise DataError(f"{source}: price of {col!r} at {_fmt_ts(ts)} is not a number: {val!r}")
            frame[col] = coerced
    return frame.to_numpy(dtype=np.float64, na_value=np.nan)


def _parse_bound(value, name: str):
    """``data.start`` / ``data.end`` -> a UTC Timestamp (None stays None); a ConfigError naming the key.

    Dates and date-times (a string, ``datetime.date`` or Timestamp; naive ones are UTC). Numbers are
    refused: ``2015`` would otherwise be 2015 nanoseconds after 1970.
    """
    if value is None:
        return None
    if isinstance(value, (bool, int, float, np.number)):
        raise ConfigError(f"data.{name}: {value!r} is a number, not a date; write a date such as '2015-01-31'")
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"data.{name}: cannot read {value!r} as a date ({why})") from None
    if ts is pd.NaT:
        raise ConfigError(f"data.{name}: {value!r} is not a date; leave it out for no bound")
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts


# ------------------------------------------------------------ annualization
def infer_periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per year implied by the spacing of ``index`` (UTC).

    * Bars a week or more apart (median spacing of 5 days or more) use calendar time: weekly gives
      52.18, monthly about 12.
    * Data with bars on a Saturday or Sunday trades around the clock (crypto) and uses a 365-day year:
      daily bars give 365; intraday bars give 365 x 24 hours / the median spacing (hourly: 8760).
    * Data without weekend bars (equities) uses 252 trading days: daily bars give 252; intraday bars give
      252 x the bars of a trading day, counted in the data: the median number of bars per UTC calendar
      day, leaving out the first and last day (often partial); with only two days, the larger count.
      Hourly bars of a
      6.5-hour session (7 a day) give 1764; 30-minute bars of it (13 a day) give 3276.

    Pass ``periods_per_year`` explicitly to override.
    """
    index = pd.DatetimeIndex(index)
    ints = index.as_unit("ns").asi8
    if len(ints) < 2:
        raise DataError("cannot infer bar spacing from fewer than 2 timestamps")
    step = float(np.median(np.diff(ints))) / 1e9  # seconds
    day = 86400.0
    if step >= 5 * day:
        return 365.25 * day / step
    if index.tz is not None:
        index = index.tz_convert("UTC")
    has_weekend = bool(np.any(index.day_of_week >= 5))
    if has_weekend:
        return 365.0 if step >= 0.75 * day else 365.0 * day / step
    if step >= 0.75 * day:
        return 252.0
    _, per_day = np.unique(ints // (86_400 * 10**9), return_counts=True)
    if per_day.size <= 2:  # one or two (maybe partial) days: the fuller one
        return 252.0 * float(per_day.max())
    return 252.0 * float(np.median(per_day[1:-1]))


# --------------------------------------------------------------- the loaders
def load_default(
    symbols: Sequence[str] | None = None,
    start=None,
    end=None,
    *,
    periods_per_year: float | None = None,
    leading_gaps: str = "trim",
) -> Prices:
    """The embedded default data set: 20 US stocks, daily adjusted closes 1990-2022.

    Shipped inside skfolio (``skfolio.datasets.load_sp500_dataset``), so it works offline.
    """
    from skfolio.datasets import load_sp500_dataset

    frame = load_sp500_dataset()
    return Prices.from_frame(
        frame,
        source=DEFAULT_SOURCE,
        symbols=symbols,
        start=start,
        end=end,
        periods_per_year=periods_per_year,
        leading_gaps=leading_gaps,
    )


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            head = list(itertools.islice(csv.reader(fh), 3))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot parse CSV ({exc})") from None
    if not head or not head[0]:
        raise DataError(f"{path}: empty file (no header, no rows)")
    header = head[0]
    if _is_two_row_header(head):
        return _read_two_row_header_csv(path, head)
    names = [h.strip() for h in header]
    twice = sorted({h for h in names if h and names.count(h) > 1})
    if twice:
        raise DataError(f"{path}: column(s) {twice} appear more than once in the header")
    try:
        return pd.read_csv(path, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: cannot parse CSV ({exc})") from None


def _is_two_row_header(head: list[list[str]]) -> bool:
    """The layout of ``yfinance.download([...]).to_csv()``: a row of fields and a row of tickers (in either
    order), then a row naming the index (``Date``) with nothing else."""
    if len(head) < 3 or len(head[0]) < 2 or len(head[0]) != len(head[1]):
        return False
    if _norm(head[2][0]) not in ("date", "datetime") or any(x.strip() for x in head[2][1:]):
        return False
    return any(sum(_norm(x) in _BAR_FIELDS for x in row[1:]) * 2 > len(row) - 1 for row in head[:2])


def _read_two_row_header_csv(path: Path, head: list[list[str]]) -> pd.DataFrame:
    """A two-row-header CSV -> long form (time, Ticker, one column per field), read by the long-form rules."""
    fields_row = 0 if sum(_norm(x) in _BAR_FIELDS for x in head[0][1:]) * 2 > len(head[0]) - 1 else 1
    try:
        frame = pd.read_csv(path, header=[0, 1], skiprows=[2], index_col=0, encoding="utf-8-sig")
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{path}: cannot parse CSV with two header rows ({exc})") from None
    frame.columns = frame.columns.set_names(["field", "ticker"] if fields_row == 0 else ["ticker", "field"])
    pairs = list(frame.columns)
    if len(set(pairs)) != len(pairs):
        twice = sorted({p for p in pairs if pairs.count(p) > 1})
        raise DataError(f"{path}: column(s) {twice} appear more than once in the header")
    long = frame.stack(level="ticker", future_stack=True)
    long.columns = [str(c) for c in long.columns]
    long = long.rename_axis([head[2][0].strip(), "Ticker"]).reset_index()
    long.attrs["layout"] = "two header rows (fields x tickers, as yfinance writes them) read as long form"
    return long


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise DataError(f"{path}: cannot read Parquet ({type(exc).__name__}: {exc})") from None
    # an index written with the file (a DatetimeIndex, a named index, a time x symbol MultiIndex) holds
    # data; an unnamed plain index is only row numbers
    if isinstance(raw.index, pd.MultiIndex) or raw.index.name is not None:
        raw = raw.reset_index()
    elif isinstance(raw.index, pd.DatetimeIndex):
        raw = raw.reset_index(names="time")
    return raw


def _load_file(reader, path, symbols, start, end, periods_per_year, leading_gaps) -> Prices:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return _from_table(reader(path), str(path), symbols, start, end, periods_per_year, leading_gaps)


def load_csv(
    path: str | Path,
    symbols: Sequence[str] | None = None,
    start=None,
    end=None,
    *,
    periods_per_year: float | None = None,
    leading_gaps: str = "trim",
) -> Prices:
    """Load a CSV file in wide form (time column + one column per asset) or long form (time, symbol, close).

    Column names are matched ignoring case, spaces and underscores:

    * time: ``Timestamp``, ``Datetime``, ``Date``, ``Time``, ``open_time`` (a ``Date`` column and a
      ``Time`` column holding times of day are joined); else ``t`` or ``ts``, a column whose name
      contains "date" or "time", or the first column, if its values are dates or epoch numbers (so a
      ticker column ``T`` holding prices stays an asset). Epoch numbers are read in seconds,
      milliseconds, microseconds or nanoseconds by their magnitude; whole numbers like 20240131 as
      YYYYMMDD. Timestamps without a UTC offset are taken as UTC.
    * long form, recognised by a symbol column ``Symbol``, ``Ticker``, ``Coin``, ``Asset`` (or ``s``
      holding text, as in Hyperliquid candles): the close is ``Adj Close`` / ``adjusted_close`` when
      present, else ``Close``, ``c``, ``Price`` or ``Last``. Other columns (open, high, volume ...) are
      ignored.
    * wide form: every other column is an asset. A wide file whose columns are one asset's bar fields
      (``Open``, ``High``, ``Close``, ``Volume`` ...) is refused.
    """
    return _load_file(_read_csv, path, symbols, start, end, periods_per_year, leading_gaps)


def load_parquet(
    path: str | Path,
    symbols: Sequence[str] | None = None,
    start=None,
    end=None,
    *,
    periods_per_year: float | None = None,
    leading_gaps: str = "trim",
) -> Prices:
    """Load a Parquet file in wide or long form (see :func:`load_csv`)."""
    return _load_file(_read_parquet, path, symbols, start, end, periods_per_year, leading_gaps)


def save_parquet(prices: Prices, path: str | Path) -> Path:
    """Write prices in wide form (a ``time`` column and one column per symbol)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = prices.to_frame()
    frame.index.name = "time"
    frame.reset_index().to_parquet(path, index=False)
    return path


_LOADERS = {"csv": load_csv, "parquet": load_parquet, "hyperliquid": load_parquet}
assert set(_LOADERS) | {"default"} == set(V.DATA_SOURCES)
"""``hyperliquid`` reads the Parquet file ``genetic-sizer data fetch`` wrote (the same wide form)."""


def load(
    source: str = "default",
    path: str | Path | None = None,
    symbols: Sequence[str] | None = None,
    start=None,
    end=None,
    *,
    periods_per_year: float | None = None,
    leading_gaps: str = "trim",
    funding_path: str | Path | bool | None = None,
) -> Prices:
    """Load prices from ``source`` (one of :data:`genetic_sizer.vocab.DATA_SOURCES`) and select symbols and
    window.

    ``funding_path`` attaches perpetual funding rates (:attr:`Prices.funding`, see :func:`load_funding`): None
    (default) reads the funding file ``genetic-sizer data fetch`` saved next to a ``hyperliquid`` price file
    (``NAME.funding.parquet`` beside ``NAME.parquet``) when there is one; a path reads that file (any source);
    False reads none.
    """
    kwargs = dict(periods_per_year=periods_per_year, leading_gaps=leading_gaps)
    if funding_path is not None and funding_path is not False and not isinstance(funding_path, (str, Path)):
        raise ConfigError(f"data.funding_path must be a file path, false or null, got {funding_path!r}")
    if source == "default":
        if path is not None:
            raise ConfigError(f"data.path must be empty for source 'default', got {str(path)!r}")
        prices = load_default(symbols, start, end, **kwargs)
    elif source in _LOADERS:
        if path is None:
            raise ConfigError(f"data.path is required for source {source!r}")
        if source == "hyperliquid" and periods_per_year is None:
            # Hyperliquid trades around the clock: a 365-day year, as when the candles were fetched,
            # even for a window without a weekend
            prices = load_parquet(path, symbols, start, end, leading_gaps=leading_gaps)
            step = float(np.median(np.diff(prices.index.asi8))) / 1e9
            if step < 5 * 86400:
                prices = dataclasses.replace(prices, periods_per_year=365.0 * 86400 / step, _sha=[])
        else:
            prices = _LOADERS[source](path, symbols, start, end, **kwargs)
    else:
        raise ConfigError(f"data.source must be one of {list(V.DATA_SOURCES)}, got {source!r}")
    if funding_path is False:
        return prices
    if funding_path is None:
        if source != "hyperliquid":
            return prices
        auto = funding_path_for(path)
        if not auto.is_file():
            return prices.with_funding(None, f"no funding rates: {auto} not found (fetched with --no-funding?)")
        funding_path = auto
    return load_funding(funding_path, prices)


def _norm(name) -> str:
    """A column name for matching: lower case, letters and digits only ("Adj Close" -> "adjclose")."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _find_column(columns, candidates, source: str, exclude=()):
    """The column whose normalized name is the first of ``candidates`` present (None if none is).

    When several columns normalize to the same name, the one spelled exactly like it wins (``t``, the
    open time of Hyperliquid candles, over ``T``, their close time); otherwise it is ambiguous.
    """
    cols = [c for c in columns if c not in exclude]
    for name in candidates:
        hits = [c for c in cols if _norm(c) == name]
        if len(hits) > 1:
            exact = [c for c in hits if str(c) == name]
            if len(exact) != 1:
                raise DataError(f"{source}: columns {[str(c) for c in hits]} are ambiguous: which one is {name!r}?")
            hits = exact
        if hits:
            return hits[0]
    return None


_TIME_OF_DAY = re.compile(r"\s*\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*")


def _time_column(raw: pd.DataFrame, source: str):
    """Find and parse the time column: (column names used, UTC timestamps, note)."""
    cols = list(raw.columns)
    col = _find_column(cols, _TIME_COLUMNS, source)
    if col is not None:
        other = _find_column(cols, ("time",), source, exclude=(col,)) if _norm(col) == "date" else None
        if other is not None and raw[other].map(lambda x: isinstance(x, str) and bool(_TIME_OF_DAY.fullmatch(x))).all():
            joined = raw[col].astype(str).str.strip() + " " + raw[other].str.strip()
            times, _ = _parse_times(joined, f"columns {str(col)!r} + {str(other)!r}", source)
            return (col, other), times, f"time from columns {str(col)!r} (date) + {str(other)!r} (time of day)"
        times, how = _parse_times(raw[col], f"column {str(col)!r}", source)
        return (col,), times, f"time column {str(col)!r} read as {how}" if how else f"time column {str(col)!r}"
    # names that are also tickers, then names that merely contain "date" or "time", then the first column
    # (an unnamed index written by DataFrame.to_csv): taken only if the values are dates or epochs
    weak = [c for name in _WEAK_TIME_COLUMNS for c in cols if _norm(c) == name]
    weak.sort(key=lambda c: str(c) not in _WEAK_TIME_COLUMNS)  # exact "t" before "T"
    weak += [c for c in cols if "date" in _norm(c) or "time" in _norm(c)]
    weak.append(cols[0])
    for c in dict.fromkeys(weak):
        parsed = _try_times(raw[c], f"column {str(c)!r}", source)
        if parsed is not None:
            times, how = parsed
            return (c,), times, f"time column {str(c)!r} read as {how}" if how else f"time column {str(c)!r}"
    raise DataError(
        f"{source}: no time column: none of the columns {[str(c) for c in cols]} is named Date, Datetime, "
        f"Time or Timestamp, and none holds dates or epoch timestamps"
    )


def _from_table(raw: pd.DataFrame, source, symbols, start, end, periods_per_year, leading_gaps) -> Prices:
    """Wide or long table -> Prices.

    Long form is recognised by a symbol column (``symbol``, ``ticker``, ``coin``, ``asset``, or ``s``
    holding text) and takes its prices from the adjusted close when there is one (``Adj Close``,
    ``adjusted_close``), else from ``close``, ``c``, ``price`` or ``last``. Every other table is wide: the
    time column and one column per asset.
    """
    if raw.shape[1] < 2:
        seps = [
            name for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")) if sep in str(raw.columns[0])
        ]
        hint = f" (the header looks separated by {seps[0]}; CSV files here are comma-separated)" if seps else ""
        raise DataError(f"{source}: expected a time column and price columns, got columns {list(raw.columns)}{hint}")
    if len(raw) == 0:
        raise DataError(f"{source}: no rows (only the columns {[str(c) for c in raw.columns]})")
    layout = raw.attrs.get("layout")
    raw = raw.rename(columns=lambda c: str(c).strip())
    time_cols, times, time_note = _time_column(raw, source)
    notes = [layout, time_note] if layout else [time_note]
    sym_col = _find_column(raw.columns, _SYMBOL_COLUMNS, source, exclude=time_cols)
    if sym_col is None:
        weak = _find_column(raw.columns, _WEAK_SYMBOL_COLUMNS, source, exclude=time_cols)
        if weak is not None and not pd.api.types.is_numeric_dtype(raw[weak]):
            sym_col = weak
    if sym_col is not None:
        used = (*time_cols, sym_col)
        adj_col = _find_column(raw.columns, _ADJ_CLOSE_COLUMNS, source, exclude=used)
        raw_col = _find_column(raw.columns, _CLOSE_COLUMNS, source, exclude=used)
        close_col = adj_col if adj_col is not None else raw_col
        if close_col is None:
            raise DataError(
                f"{source}: long form (symbol column {sym_col!r}) needs a close column (Adj Close, Close, c, "
                f"Price or Last); the columns are {list(raw.columns)}"
            )
        note = f"long form: symbol column {sym_col!r}, close column {close_col!r}"
        if adj_col is not None and raw_col is not None:
            note += f" (adjusted; {raw_col!r} not used)"
        notes.append(note)
        sym = raw[sym_col]
        if sym.isna().any():
            i = int(np.flatnonzero(sym.isna().to_numpy())[0])
            raise DataError(f"{source}: row {i} has no symbol in column {sym_col!r}")
        long = pd.DataFrame(
            {"time": times, "symbol": sym.astype(str).str.strip().to_numpy(), "close": raw[close_col].to_numpy()}
        )
        dup = long.duplicated(["time", "symbol"])
        if dup.any():
            row = long[dup].iloc[0]
            raise DataError(f"{source}: duplicate timestamp {_fmt_ts(row['time'])} for symbol {row['symbol']!r}")
        for sym, grp in long.groupby("symbol", sort=False):
            t = pd.DatetimeIndex(grp["time"])
            if not t.is_monotonic_increasing:
                i = int(np.flatnonzero(np.diff(t.as_unit("ns").asi8) < 0)[0]) + 1
                raise DataError(
                    f"{source}: timestamps of {sym!r} are not sorted: {_fmt_ts(t[i])} comes after {_fmt_ts(t[i - 1])}"
                )
        wide = long.pivot(index="time", columns="symbol", values="close")
        wide = wide[list(dict.fromkeys(long["symbol"]))]
    else:
        wide = raw.drop(columns=list(time_cols))
        fields = [str(c) for c in wide.columns if _norm(c) in _BAR_FIELDS]
        if len(fields) >= 2:
            raise DataError(
                f"{source}: columns {fields} look like the bars of one asset (open/high/low/close/volume), "
                f"not one column per asset: add a symbol column (long form: time, symbol, close) or give one "
                f"close column per asset"
            )
        wide.index = pd.DatetimeIndex(times)
    wide.columns.name = None
    return Prices.from_frame(
        wide,
        source=source,
        symbols=symbols,
        start=start,
        end=end,
        periods_per_year=periods_per_year,
        leading_gaps=leading_gaps,
        notes=notes,
    )


def load_from_config(data_config) -> Prices:
    """Load the prices a run's ``data`` section (:class:`genetic_sizer.config.DataConfig`) describes (with the
    funding rates ``data.funding_path`` names, or those saved next to Hyperliquid prices)."""
    dc = data_config
    return load(
        dc.source,
        dc.path,
        list(dc.symbols) if dc.symbols else None,
        dc.start,
        dc.end,
        periods_per_year=dc.periods_per_year,
        leading_gaps=dc.leading_gaps,
        funding_path=dc.funding_path,
    )


# ------------------------------------------------------------ funding rates
FUNDING_SUFFIX = ".funding.parquet"
"""``genetic-sizer data fetch --out NAME.parquet`` saves the funding history as ``NAME.funding.parquet``."""

FUNDING_SETTLEMENT = pd.Timedelta(hours=1)
"""Hyperliquid settles funding every hour, on the hour, and stamps each rate a few milliseconds to a second after
it: rate times are floored to the hour before they are assigned to bars."""


def funding_path_for(path: str | Path) -> Path:
    """Where ``genetic-sizer data fetch`` saves the funding history of the price file ``path``."""
    return Path(path).with_suffix(FUNDING_SUFFIX)


def bar_closes(index: pd.DatetimeIndex) -> np.ndarray:
    """Close times (int64 ns, UTC) of bars labelled by their open time: each label plus the bar interval (the median
    spacing of ``index``), as Hyperliquid candles are labelled."""
    ints = pd.DatetimeIndex(index).as_unit("ns").asi8
    step = int(np.median(np.diff(ints))) if len(ints) > 1 else 0
    return ints + step


def align_funding(rates: pd.DataFrame, prices: Prices, *, source: str = "funding") -> tuple[np.ndarray, str]:
    """Sum funding rates into the bars of ``prices``; return ``(funding (n_bars, n_assets), note)``.

    ``rates`` is long form: ``time`` (UTC timestamps or epoch numbers), ``coin``, ``funding_rate`` (the
    fundingHistory rows ``genetic-sizer data fetch`` saves). A rate paid at time H belongs to the bar whose close
    is at H: bars are labelled by their open time, so for hourly candles the bar labelled H - 1h, and a coarser
    bar (4h, 1d) sums the rates of its hours. Row ``t`` is the sum over (close of t-1, close of t]; after a gap in
    the bars the next bar takes the gap's rates (the positions were held through it). Times are floored to the
    hour first (:data:`FUNDING_SETTLEMENT`). Rates outside the bars are left out, coins not in ``prices`` are
    ignored, and a bar or coin without a rate gets 0 (the note says how many hours each coin covers).
    """
    missing = [c for c in ("time", "coin", "funding_rate") if c not in rates.columns]
    if missing:
        raise DataError(f"{source}: funding rates need columns time, coin, funding_rate; missing {missing}")
    n_bars, n_assets = prices.close.shape
    funding = np.zeros((n_bars, n_assets))
    if len(rates) == 0:
        return funding, f"funding from {source}: no rates (taken as 0)"
    times, _ = _parse_times(rates["time"], "column 'time'", source)
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    coins = rates["coin"].astype(str).to_numpy()
    values = pd.to_numeric(rates["funding_rate"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raw = rates["funding_rate"].iloc[i]
        raw = raw.item() if isinstance(raw, np.generic) else raw
        raise DataError(f"{source}: funding_rate of {coins[i]!r} at {_fmt_ts(times[i])} is {raw!r}")
    settled = times.floor(FUNDING_SETTLEMENT).as_unit("ns").asi8
    dup = pd.DataFrame({"t": settled, "c": coins}).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(f"{source}: two funding rates for {coins[i]!r} in the hour of {_fmt_ts(times[i])}")
    closes = bar_closes(prices.index)
    first_open = prices.index.as_unit("ns").asi8[0]
    row = np.searchsorted(closes, settled, side="left")
    col = np.array([prices.symbols.index(c) if c in prices.symbols else -1 for c in coins], dtype=np.int64)
    keep = (row < n_bars) & (settled > first_open) & (col >= 0)
    np.add.at(funding, (row[keep], col[keep]), values[keep])
    hours = int((closes[-1] - first_open) // FUNDING_SETTLEMENT.value)
    counts = {s: int((keep & (col == k)).sum()) for k, s in enumerate(prices.symbols)}
    cover = ", ".join(f"{s} {n}" for s, n in counts.items())
    note = f"funding from {source}: rates of the {hours} hours of the bars summed per bar ({cover} hours with a rate)"
    none = [s for s, n in counts.items() if n == 0]
    if none:
        note += f"; no rate for {none} (taken as 0)"
    return funding, note


def load_funding(path: str | Path, prices: Prices) -> Prices:
    """``prices`` with the funding rates of the long-form file ``path`` (Parquet or CSV: time, coin, funding_rate,
    as ``genetic-sizer data fetch`` saves them) summed into its bars (:func:`align_funding`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such funding file")
    raw = _read_csv(path) if path.suffix.lower() == ".csv" else _read_parquet(path)
    funding, note = align_funding(raw, prices, source=str(path))
    return prices.with_funding(funding, note)


# ------------------------------------------------------------ exchange candles
INTERVAL_MS = V.INTERVAL_MS
"""Candle intervals Hyperliquid serves, in milliseconds (one home: :mod:`genetic_sizer.vocab`)."""


@dataclass(frozen=True)
class CandleReport:
    """What aligning fetched candles found, per coin: candles received, grid bars missing, largest gap."""

    interval: str
    coins: dict
    dropped_bars: int
    first_bar: str
    last_bar: str

    def lines(self) -> list[str]:
        out = []
        for coin, r in self.coins.items():
            gap = f", largest gap {r['largest_gap_bars']} bars at {r['largest_gap_at']}" if r["missing"] else ""
            out.append(f"{coin}: {r['candles']} candles from {r['first']}, {r['missing']} missing in its span{gap}")
        if self.dropped_bars:
            out.append(f"{self.dropped_bars} bars dropped where some coin had no candle (prices are never filled)")
        return out


def prices_from_candles(candles: dict[str, list[dict]], interval: str, source: str = "hyperliquid") -> tuple:
    """Align candles of several coins on one time index; return (Prices, CandleReport).

    ``candles`` maps coin -> candles as the exchange sends them (``t`` open time in ms, ``c`` close as a
    string). The bar time is the candle's open time, the price its close. Bars where any coin has no candle
    (before a later listing, or exchange gaps) are dropped and reported, never filled.
    """
    if interval not in INTERVAL_MS:
        raise ConfigError(f"interval must be one of {list(INTERVAL_MS)}, got {interval!r}")
    step = INTERVAL_MS[interval]
    series, report = {}, {}
    for coin, rows in candles.items():
        if not rows:
            raise DataError(f"{source}: no candles for {coin!r} in the requested window")
        try:
            t = np.array([int(r["t"]) for r in rows], dtype=np.int64)
            c = np.array([float(r["c"]) for r in rows], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: malformed candle for {coin!r} ({exc!r})") from None
        order = np.argsort(t, kind="stable")
        t, c = t[order], c[order]
        keep = np.r_[True, t[1:] != t[:-1]]  # one candle per open time
        t, c = t[keep], c[keep]
        gaps = np.diff(t) // step - 1
        worst = int(np.argmax(gaps)) if gaps.size else 0
        report[coin] = {
            "candles": int(t.size),
            "first": _fmt_ts(pd.Timestamp(t[0], unit="ms", tz="UTC")),
            "missing": int(gaps.sum()) if gaps.size else 0,
            "largest_gap_bars": int(gaps[worst]) if gaps.size else 0,
            "largest_gap_at": _fmt_ts(pd.Timestamp(t[worst], unit="ms", tz="UTC")) if gaps.size else None,
        }
        series[coin] = pd.Series(c, index=pd.to_datetime(t, unit="ms", utc=True))
    frame = pd.DataFrame(series)
    complete = frame.dropna()
    if len(complete) < MIN_BARS:
        raise DataError(f"{source}: only {len(complete)} bars where every coin has a candle; fetch a longer window")
    # Hyperliquid trades around the clock: a 365-day year of bars, whatever the window's weekdays
    prices = Prices.from_frame(
        complete, source=source, leading_gaps="error", periods_per_year=365 * INTERVAL_MS["1d"] / step
    )
    rep = CandleReport(
        interval=interval,
        coins=report,
        dropped_bars=len(frame) - len(complete),
        first_bar=_fmt_ts(complete.index[0]),
        last_bar=_fmt_ts(complete.index[-1]),
    )
    return prices, rep


def save_funding(rows: dict[str, list[dict]], path: str | Path) -> Path:
    """Funding history (coin -> rows with ``time`` ms, ``fundingRate``, ``premium``) as long-form Parquet."""
    records = [
        {
            "time": pd.Timestamp(int(r["time"]), unit="ms", tz="UTC"),
            "coin": coin,
            "funding_rate": float(r["fundingRate"]),
            "premium": float(r.get("premium", "nan")),
        }
        for coin, rs in rows.items()
        for r in rs
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame.from_records(records, columns=["time", "coin", "funding_rate", "premium"]).to_parquet(
        path, index=False
    )
    return path

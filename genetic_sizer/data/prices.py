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

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genetic_sizer import vocab as V
from genetic_sizer.data.times import as_utc_index, check_index, fmt_ts, parse_bound
from genetic_sizer.errors import ConfigError, DataError

__all__ = ["MIN_BARS", "Prices", "infer_periods_per_year"]

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
        Bars per year for annualization; inferred from the bar spacing when not given
        (see :func:`infer_periods_per_year`).
    trimmed_bars : int
        Bars dropped at the start by the ``leading_gaps="trim"`` policy.
    notes : tuple of str
        How the loader read the source, for people: which columns it used (an adjusted close preferred
        over a raw one), the epoch unit it detected for numeric timestamps. Carried into
        :meth:`provenance` and printed by ``genetic-sizer data info``.
    funding : ndarray of shape (n_bars, n_assets), optional
        Perpetual funding rates aligned to the bars (see :func:`~genetic_sizer.data.funding.align_funding`):
        row ``t`` holds the sum of the rates paid in (t-1, t] (positive: longs pay), 0 where none was paid. Loaded
        next to Hyperliquid prices (:func:`~genetic_sizer.data.loaders.load`); it travels with every window cut
        from these prices (:meth:`bars`, :meth:`select`).
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
        index, how = as_utc_index(self.index, self.source)
        notes = tuple(str(n) for n in self.notes) + ((f"time index read as {how}",) if how else ())
        symbols = tuple(str(s) for s in self.symbols)
        if close.ndim != 2:
            raise DataError(f"{self.source}: close must be 2-D (bars x assets), got shape {close.shape}")
        if close.shape != (len(index), len(symbols)):
            raise DataError(
                f"{self.source}: close has shape {close.shape} but there are {len(index)} timestamps "
                f"and {len(symbols)} symbols"
            )
        check_index(index, self.source)
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
                    f"{self.source}: funding rate of {symbols[k]!r} at {fmt_ts(index[t])} is {funding[t, k]!r}"
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
            "first_bar": fmt_ts(self.index[0]),
            "last_bar": fmt_ts(self.index[-1]),
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
        if leading_gaps not in V.LEADING_GAP_POLICIES:
            raise ConfigError(f"leading_gaps must be one of {V.LEADING_GAP_POLICIES}, got {leading_gaps!r}")
        if len(frame) == 0:
            raise DataError(f"{source}: no rows (columns {[str(c) for c in frame.columns]})")
        frame = frame.copy()
        frame.columns = [str(c) for c in frame.columns]
        _check_symbols(tuple(frame.columns), source)
        index, how = as_utc_index(frame.index, source)
        notes = tuple(notes) + ((f"time index read as {how}",) if how else ())
        check_index(index, source)
        frame.index = index

        if symbols is not None:
            symbols = [str(s) for s in symbols]
            missing = [s for s in symbols if s not in frame.columns]
            if missing:
                raise DataError(f"{source}: symbol(s) {missing} not found; available: {sorted(frame.columns)}")
            if len(set(symbols)) != len(symbols):
                raise DataError(f"{source}: symbols asked for twice in {symbols}")
            frame = frame[symbols]

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
                    f"{source}: symbol {sym!r} has no price before {fmt_ts(first_ts)} "
                    f"(window starts {fmt_ts(frame.index[0])}); use leading_gaps='trim' to start the "
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


def _numeric_values(frame: pd.DataFrame, source: str) -> np.ndarray:
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            coerced = pd.to_numeric(frame[col], errors="coerce")
            bad = coerced.isna() & frame[col].notna()
            if bad.any():
                ts = frame.index[np.flatnonzero(bad.to_numpy())[0]]
                val = frame[col][bad].iloc[0]
                raise DataError(f"{source}: price of {col!r} at {fmt_ts(ts)} is not a number: {val!r}")
            frame[col] = coerced
    return frame.to_numpy(dtype=np.float64, na_value=np.nan)


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

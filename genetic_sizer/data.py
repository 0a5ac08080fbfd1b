"""Price data: the only module that reads or writes price files.

Every loader returns one validated :class:`Prices` value: a close matrix (bars x assets, float64,
C-contiguous), a strictly increasing UTC time index, the asset symbols, where the data came from, and the
number of bars per year used to annualize metrics.

Validation happens here, at the boundary, and a bad file is a :class:`~genetic_sizer.errors.DataError`
that names the source, the symbol and the timestamp:

* unsorted or duplicate timestamps;
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
from pathlib import Path

import numpy as np
import pandas as pd

from genetic_sizer.errors import ConfigError, DataError

__all__ = [
    "LEADING_GAP_POLICIES",
    "MIN_BARS",
    "Prices",
    "infer_periods_per_year",
    "load",
    "load_csv",
    "load_default",
    "load_parquet",
    "save_parquet",
]

MIN_BARS = 3
"""The fewest bars a price set may have: two returns are needed for a standard deviation."""

LEADING_GAP_POLICIES = ("trim", "error")

_TIME_COLUMNS = ("time", "timestamp", "date", "datetime", "t")
_SYMBOL_COLUMNS = ("symbol", "coin", "asset", "ticker")
_CLOSE_COLUMNS = ("close", "c", "price", "adj_close")

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
    """

    close: np.ndarray
    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    source: str = "memory"
    periods_per_year: float | None = None
    trimmed_bars: int = 0
    _sha: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self):
        close = np.ascontiguousarray(np.asarray(self.close, dtype=np.float64))
        index = _as_utc_index(self.index, self.source)
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
        object.__setattr__(self, "close", close)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "symbols", symbols)
        object.__setattr__(self, "periods_per_year", float(ppy))

    # ------------------------------------------------------------------ views
    @property
    def n_bars(self) -> int:
        return self.close.shape[0]

    @property
    def n_assets(self) -> int:
        return self.close.shape[1]

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
        }

    def select(
        self,
        symbols: Sequence[str] | None = None,
        start=None,
        end=None,
        *,
        leading_gaps: str = "trim",
    ) -> Prices:
        """A new :class:`Prices` restricted to ``symbols`` (in that order) and the window [start, end]."""
        return Prices.from_frame(
            self.to_frame(),
            source=self.source,
            symbols=symbols,
            start=start,
            end=end,
            periods_per_year=self.periods_per_year,
            leading_gaps=leading_gaps,
        )

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
    ) -> Prices:
        """Build validated prices from a wide DataFrame (time index, one column per asset).

        ``symbols`` selects and orders columns; ``start``/``end`` bound the window (inclusive). Leading
        gaps follow ``leading_gaps`` (see the module docstring); every other missing or bad price inside
        the window is a :class:`DataError`.
        """
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
        if leading_gaps not in LEADING_GAP_POLICIES:
            raise ConfigError(f"leading_gaps must be one of {LEADING_GAP_POLICIES}, got {leading_gaps!r}")
        frame = frame.copy()
        frame.columns = [str(c) for c in frame.columns]
        _check_symbols(tuple(frame.columns), source)
        index = _as_utc_index(frame.index, source)
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
        )


# ---------------------------------------------------------------- validation
def _as_utc_index(index, source: str) -> pd.DatetimeIndex:
    try:
        idx = pd.DatetimeIndex(index)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: time index cannot be read as timestamps ({exc})") from None
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    else:
        idx = idx.tz_convert("UTC")
    if idx.hasnans:
        pos = int(np.flatnonzero(idx.isna())[0])
        raise DataError(f"{source}: missing timestamp at row {pos}")
    return idx.as_unit("ns")


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
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"data.{name}: cannot read {value!r} as a date") from None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts


# ------------------------------------------------------------ annualization
def infer_periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per year implied by the spacing of ``index``.

    * Data that trades on weekends (crypto) uses a 365-day year: daily bars give 365, hourly 8760.
    * Data without weekend bars (equities) uses 252 trading days: daily bars give 252; intraday bars give
      252 x bars per day.
    * Bars a week or more apart use calendar time: weekly gives 52.18, monthly about 12.

    Pass ``periods_per_year`` explicitly to override.
    """
    ints = pd.DatetimeIndex(index).as_unit("ns").asi8
    if len(ints) < 2:
        raise DataError("cannot infer bar spacing from fewer than 2 timestamps")
    step = float(np.median(np.diff(ints))) / 1e9  # seconds
    day = 86400.0
    if step >= 5 * day:
        return 365.25 * day / step
    has_weekend = bool(np.any(index.dayofweek >= 5))
    days_per_year = 365.0 if has_weekend else 252.0
    if step >= 0.75 * day:
        return days_per_year
    return days_per_year * day / step


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
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: cannot parse CSV ({exc})") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise DataError(f"{path}: cannot read Parquet ({type(exc).__name__}: {exc})") from None
    if isinstance(raw.index, pd.DatetimeIndex):
        raw = raw.reset_index(names=raw.index.name or "time")
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
    """Load a CSV file in wide form (time column + one column per asset) or long form (time, symbol, close)."""
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
) -> Prices:
    """Load prices from ``source`` (``default``, ``csv`` or ``parquet``) and select symbols and window."""
    kwargs = dict(periods_per_year=periods_per_year, leading_gaps=leading_gaps)
    if source == "default":
        if path is not None:
            raise ConfigError(f"data.path must be empty for source 'default', got {str(path)!r}")
        return load_default(symbols, start, end, **kwargs)
    if source in _LOADERS:
        if path is None:
            raise ConfigError(f"data.path is required for source {source!r}")
        return _LOADERS[source](path, symbols, start, end, **kwargs)
    raise ConfigError(f"data.source must be one of {['default', *_LOADERS]}, got {source!r}")


def _find_column(columns, candidates) -> str | None:
    lower = {str(c).lower(): c for c in columns}
    for name in candidates:
        if name in lower:
            return lower[name]
    return None


def _from_table(raw: pd.DataFrame, source, symbols, start, end, periods_per_year, leading_gaps) -> Prices:
    """Wide or long table -> Prices. Long form is recognised by a symbol column and a close column."""
    if raw.shape[1] < 2:
        raise DataError(f"{source}: expected a time column and price columns, got columns {list(raw.columns)}")
    time_col = _find_column(raw.columns, _TIME_COLUMNS)
    if time_col is None:
        time_col = raw.columns[0]
    sym_col = _find_column(raw.columns, _SYMBOL_COLUMNS)
    close_col = _find_column(raw.columns, _CLOSE_COLUMNS)
    try:
        times = pd.to_datetime(raw[time_col], utc=True)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: column {time_col!r} cannot be read as timestamps ({exc})") from None
    if sym_col is not None and close_col is not None:
        long = pd.DataFrame({"time": times, "symbol": raw[sym_col].astype(str), "close": raw[close_col]})
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
        wide = raw.drop(columns=[time_col])
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
    )


def load_from_config(data_config) -> Prices:
    """Load the prices a run's ``data`` section (:class:`genetic_sizer.config.DataConfig`) describes."""
    dc = data_config
    return load(
        dc.source,
        dc.path,
        list(dc.symbols) if dc.symbols else None,
        dc.start,
        dc.end,
        periods_per_year=dc.periods_per_year,
        leading_gaps=dc.leading_gaps,
    )


# ------------------------------------------------------------ exchange candles
INTERVAL_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
"""Candle intervals Hyperliquid serves, in milliseconds (``1M``, calendar months, is not supported here)."""


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

"""Loaders: the only module that reads or writes price files (and reads funding files).

Every loader returns one validated :class:`~genetic_sizer.data.prices.Prices`. Files come in wide form (a time
column and one column per asset) or long form (time, symbol and close columns); :func:`load_csv` lists the column
names recognised. What the loader chose (the time column, the epoch unit of numeric timestamps, the close column
of a long-form file) is kept in :attr:`Prices.notes <genetic_sizer.data.prices.Prices.notes>`. A file without
rows, without a recognisable time column, or with timestamps that cannot be read (an impossible date, epoch
numbers of no unit or of mixed units) is a :class:`~genetic_sizer.errors.DataError`. Timestamps written with a UTC
offset keep it (:attr:`Prices.utc_offset <genetic_sizer.data.prices.Prices.utc_offset>`); what the data's calendar
says (weekend bars in a weekday market, holes, an intraday window without a weekend: :mod:`genetic_sizer.data.calendar`)
goes into the notes too, and weekend bars and holes are also a :class:`~genetic_sizer.errors.DataWarning`.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genetic_sizer import vocab as V
from genetic_sizer.data.funding import align_funding, funding_path_for
from genetic_sizer.data.margin import describe_tiers, load_meta, meta_path_for
from genetic_sizer.data.prices import Prices
from genetic_sizer.data.returns import compound_table
from genetic_sizer.data.times import fmt_ts, local_offsets, parse_times, try_times
from genetic_sizer.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_SOURCE",
    "load",
    "load_csv",
    "load_default",
    "load_from_config",
    "load_funding",
    "load_parquet",
    "load_rates",
    "save_parquet",
]

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

DEFAULT_SOURCE = "skfolio.datasets.load_sp500_dataset"


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


def _load_file(
    reader, path, symbols, start, end, periods_per_year, leading_gaps, around_the_clock=False, returns_unit=None
) -> Prices:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    table = reader(path)
    args = (symbols, start, end, periods_per_year, leading_gaps, around_the_clock)
    return _from_table(table, str(path), *args, returns_unit=returns_unit)


def load_csv(
    path: str | Path,
    symbols: Sequence[str] | None = None,
    start=None,
    end=None,
    *,
    periods_per_year: float | None = None,
    leading_gaps: str = "trim",
    kind: str = "prices",
    returns_unit: str | None = None,
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

    ``kind="returns"``: the file holds per-period simple returns in ``returns_unit`` (``fraction`` or ``percent``,
    never guessed), in wide form, compounded into prices from 1.0 one bar before the first return
    (:mod:`genetic_sizer.data.returns`).
    """
    unit = V.check_data_kind(kind, returns_unit)
    return _load_file(_read_csv, path, symbols, start, end, periods_per_year, leading_gaps, returns_unit=unit)


def load_parquet(
    path: str | Path,
    symbols: Sequence[str] | None = None,
    start=None,
    end=None,
    *,
    periods_per_year: float | None = None,
    leading_gaps: str = "trim",
    kind: str = "prices",
    returns_unit: str | None = None,
) -> Prices:
    """Load a Parquet file in wide or long form (see :func:`load_csv`; ``kind``, ``returns_unit`` too)."""
    unit = V.check_data_kind(kind, returns_unit)
    return _load_file(_read_parquet, path, symbols, start, end, periods_per_year, leading_gaps, returns_unit=unit)


def save_parquet(prices: Prices, path: str | Path) -> Path:
    """Write prices in wide form (a ``time`` column and one column per symbol), or, when they carry more than closes
    (:attr:`Prices.fields`: a bar's high and low), in long form (``time``, ``symbol``, ``close`` and a column per
    field), which :func:`load_parquet` reads back whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = prices.to_frame()
    frame.index.name = "time"
    if prices.fields:
        columns = {"close": prices.close, **prices.fields}
        long = {k: pd.DataFrame(v, index=frame.index, columns=frame.columns).stack() for k, v in columns.items()}
        frame = pd.DataFrame(long).rename_axis(["time", "symbol"])
    frame.reset_index().to_parquet(path, index=False)
    return path


_HIGH_COLUMNS = ("high", "h")
_LOW_COLUMNS = ("low", "l")
"""A long-form file's bar range (Hyperliquid candles: ``h``, ``l``), kept as :attr:`Prices.high`, :attr:`Prices.low`."""
CLOSES_ONLY = "closes only (no high and low): a perp account is tested for liquidation at the bars' closes only"
"""The note of a file without a bar range."""


def _ranges(raw: pd.DataFrame, long: pd.DataFrame, used, adj_col, raw_col, source) -> tuple[dict, str | None]:
    """The high and low columns of a long-form table as ``long``'s extra columns (None: not used, with why)."""
    hi = _find_column(raw.columns, _HIGH_COLUMNS, source, exclude=used)
    lo = _find_column(raw.columns, _LOW_COLUMNS, source, exclude=used)
    if hi is None or lo is None:
        return {}, CLOSES_ONLY
    out = {k: pd.to_numeric(raw[c], errors="coerce").to_numpy(dtype=np.float64) for k, c in (("high", hi), ("low", lo))}
    if adj_col is not None:  # an adjusted close: the range scaled by the same adjustment
        if raw_col is None:
            return {}, f"{CLOSES_ONLY} ({hi!r} and {lo!r} are not adjusted like {adj_col!r})"
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = long["close"].to_numpy(dtype=np.float64) / pd.to_numeric(raw[raw_col], errors="coerce").to_numpy()
        out = {k: v * factor for k, v in out.items()}
    close = pd.to_numeric(long["close"], errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):  # the rounding of an adjustment, not a range that misses the close
        for k, side in (("high", np.fmax), ("low", np.fmin)):
            out[k] = np.where(np.abs(out[k] - close) <= 1e-12 * close, side(out[k], close), out[k])
    return out, None


def _with_ranges(prices: Prices, wide: pd.DataFrame, ranges: dict) -> Prices:
    """``prices`` (read from ``wide``) with the ranges pivoted like ``wide``, or with the close-only note when they
    do not fit the window it kept (a missing or non-positive high or low there)."""
    rows = wide.index.get_indexer(prices.index)
    cols = [list(wide.columns).index(s) for s in prices.symbols]
    fields = {k: v.to_numpy(dtype=np.float64)[np.ix_(rows, cols)] for k, v in ranges.items()}
    try:
        return prices.with_fields(fields, note="each bar's high and low kept: the perp account's liquidation test")
    except DataError as exc:
        return prices.with_fields(note=f"{CLOSES_ONLY}; the high and low columns were not used ({exc})")


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
    kind: str = "prices",
    returns_unit: str | None = None,
) -> Prices:
    """Load prices from ``source`` (one of :data:`genetic_sizer.vocab.DATA_SOURCES`) and select symbols and
    window.

    ``funding_path`` attaches perpetual funding rates (:attr:`Prices.funding`, see :func:`load_funding`): None
    (default) reads the funding file ``genetic-sizer data fetch`` saved next to a ``hyperliquid`` price file
    (``NAME.funding.parquet`` beside ``NAME.parquet``) when there is one; a path reads that file (any source);
    False reads none. A ``hyperliquid`` price file also gets the exchange's margin tiers (:attr:`Prices.margin`)
    from the ``meta`` the fetch saved beside it (``NAME.meta.json``), when there is one.

    ``kind="returns"`` (``csv`` and ``parquet`` only): the file holds simple returns in ``returns_unit``, compounded
    into prices (see :func:`load_csv`).
    """
    kwargs = dict(periods_per_year=periods_per_year, leading_gaps=leading_gaps)
    if V.check_data_kind(kind, returns_unit, source if source in V.DATA_SOURCES else None) is not None:
        kwargs.update(kind=kind, returns_unit=returns_unit)
    if funding_path is not None and funding_path is not False and not isinstance(funding_path, (str, Path)):
        raise ConfigError(f"data.funding_path must be a file path, false or null, got {funding_path!r}")
    if source == "default":
        if path is not None:
            raise ConfigError(f"data.path must be empty for source 'default', got {str(path)!r}")
        prices = load_default(symbols, start, end, **kwargs)
    elif source in _LOADERS:
        if path is None:
            raise ConfigError(f"data.path is required for source {source!r}")
        if source == "hyperliquid":
            # Hyperliquid trades around the clock: a 365-day year, as when the candles were fetched,
            # even for a window without a weekend
            prices = _load_file(_read_parquet, path, symbols, start, end, periods_per_year, leading_gaps, True)
        else:
            prices = _LOADERS[source](path, symbols, start, end, **kwargs)
    else:
        raise ConfigError(f"data.source must be one of {list(V.DATA_SOURCES)}, got {source!r}")
    if source == "hyperliquid" and meta_path_for(path).is_file():
        tiers = load_meta(meta_path_for(path), prices.symbols)
        prices = prices.with_fields(
            margin=tiers, note=f"margin tiers from {meta_path_for(path)}: {describe_tiers(tiers)}"
        )
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


def load_funding(path: str | Path, prices: Prices) -> Prices:
    """``prices`` with the funding rates of the long-form file ``path`` (Parquet or CSV: time, coin, funding_rate,
    as ``genetic-sizer data fetch`` saves them) summed into its bars
    (:func:`~genetic_sizer.data.funding.align_funding`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such funding file")
    raw = _read_csv(path) if path.suffix.lower() == ".csv" else _read_parquet(path)
    funding, note = align_funding(raw, prices, source=str(path))
    return prices.with_funding(funding, note)


def load_rates(path: str | Path, column: str | None = None, what: str = "rates") -> tuple[pd.Series, str]:
    """A file of rates over time (Parquet or CSV: a time column, found as in price files, and the rate column
    ``column``, or the file's one other column): ``(float Series on sorted UTC times, note)``. No rows, a missing or
    non-numeric rate, or a time given twice is a DataError that starts with ``what`` and names the file and row."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what}: {path}: no such file")
    raw = _read_csv(path) if path.suffix.lower() == ".csv" else _read_parquet(path)
    source = f"{what}: {path}"
    if len(raw) == 0:
        raise DataError(f"{source}: no rows")
    raw = raw.rename(columns=lambda c: str(c).strip())
    time_cols, times, note = _time_column(raw, source)
    others = [str(c) for c in raw.columns if c not in time_cols]
    if column is None and len(others) != 1:
        raise DataError(f"{source}: which column holds the rates? It has {others} beside the time: name one")
    column = others[0] if column is None else column
    if column not in others:
        raise DataError(f"{source}: no rate column {column!r} (its columns beside the time: {others})")
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    values = pd.to_numeric(raw[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        x = raw[column].iloc[i]
        x = x.item() if isinstance(x, np.generic) else x
        raise DataError(f"{source}: the rate at {fmt_ts(times[i])} is {x!r}, not a finite number")
    if times.has_duplicates:
        raise DataError(f"{source}: time {fmt_ts(times[times.duplicated()][0])} appears twice")
    return pd.Series(values, index=times, name=column).sort_index(), f"{note}, rates from column {column!r}"


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
            times, _ = parse_times(joined, f"columns {str(col)!r} + {str(other)!r}", source)
            return (col, other), times, f"time from columns {str(col)!r} (date) + {str(other)!r} (time of day)"
        times, how = parse_times(raw[col], f"column {str(col)!r}", source)
        return (col,), times, f"time column {str(col)!r} read as {how}" if how else f"time column {str(col)!r}"
    # names that are also tickers, then names that merely contain "date" or "time", then the first column
    # (an unnamed index written by DataFrame.to_csv): taken only if the values are dates or epochs
    weak = [c for name in _WEAK_TIME_COLUMNS for c in cols if _norm(c) == name]
    weak.sort(key=lambda c: str(c) not in _WEAK_TIME_COLUMNS)  # exact "t" before "T"
    weak += [c for c in cols if "date" in _norm(c) or "time" in _norm(c)]
    weak.append(cols[0])
    for c in dict.fromkeys(weak):
        parsed = try_times(raw[c], f"column {str(c)!r}", source)
        if parsed is not None:
            times, how = parsed
            return (c,), times, f"time column {str(c)!r} read as {how}" if how else f"time column {str(c)!r}"
    raise DataError(
        f"{source}: no time column: none of the columns {[str(c) for c in cols]} is named Date, Datetime, "
        f"Time or Timestamp, and none holds dates or epoch timestamps"
    )


def _from_table(
    raw: pd.DataFrame, source, symbols, start, end, periods_per_year, leading_gaps, around_the_clock=False, *,
    returns_unit=None,
) -> Prices:  # fmt: skip
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
    offsets = local_offsets(raw[time_cols[0]]) if len(time_cols) == 1 else None  # the times' own UTC offsets
    notes = [layout, time_note] if layout else [time_note]
    sym_col = _find_column(raw.columns, _SYMBOL_COLUMNS, source, exclude=time_cols)
    if sym_col is None:
        weak = _find_column(raw.columns, _WEAK_SYMBOL_COLUMNS, source, exclude=time_cols)
        if weak is not None and not pd.api.types.is_numeric_dtype(raw[weak]):
            sym_col = weak
    if sym_col is not None and returns_unit is not None:
        raise DataError(
            f"{source}: data.kind returns reads wide files (a time column and one column of returns per asset), "
            f"not long form (symbol column {sym_col!r})"
        )
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
        extra, closes_only = _ranges(raw, long, (*used, close_col), adj_col, raw_col, source)
        for k, v in extra.items():
            long[k] = v
        notes.extend([closes_only] if closes_only else [])
        dup = long.duplicated(["time", "symbol"])
        if dup.any():
            row = long[dup].iloc[0]
            raise DataError(f"{source}: duplicate timestamp {fmt_ts(row['time'])} for symbol {row['symbol']!r}")
        for sym, grp in long.groupby("symbol", sort=False):
            t = pd.DatetimeIndex(grp["time"])
            if not t.is_monotonic_increasing:
                i = int(np.flatnonzero(np.diff(t.as_unit("ns").asi8) < 0)[0]) + 1
                raise DataError(
                    f"{source}: timestamps of {sym!r} are not sorted: {fmt_ts(t[i])} comes after {fmt_ts(t[i - 1])}"
                )
        order = list(dict.fromkeys(long["symbol"]))
        wide = long.pivot(index="time", columns="symbol", values="close")[order]
        ranges = {k: long.pivot(index="time", columns="symbol", values=k)[order] for k in extra}
        if offsets is not None:  # one per time (the first row's, if symbols disagree)
            offsets = pd.Series(offsets, index=times).groupby(level=0).first().reindex(wide.index).to_numpy()
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
        ranges = {}
        notes.append(CLOSES_ONLY)
        if returns_unit is not None:
            wide, offsets, note = compound_table(wide, offsets, symbols, returns_unit, source, leading_gaps)
            notes.append(note)
    wide.columns.name = None
    prices = Prices.from_frame(
        wide,
        source=source,
        symbols=symbols,
        start=start,
        end=end,
        periods_per_year=periods_per_year,
        leading_gaps=leading_gaps,
        notes=notes,
        utc_offset=offsets,
        around_the_clock=around_the_clock,
    )
    return _with_ranges(prices, wide, ranges) if ranges else prices


def load_from_config(data_config) -> Prices:
    """Load the prices a run's ``data`` section (:class:`genetic_sizer.config.DataConfig`) describes (with the
    funding rates ``data.funding_path`` names, or those saved next to Hyperliquid prices). ``data.strategies`` (run
    directories) are loaded a layer up, by :func:`genetic_sizer.runs.strategies.load_data`."""
    dc = data_config
    if getattr(dc, "strategies", None):
        raise ConfigError(
            f"data.strategies {list(dc.strategies)!r} are run directories: load them with "
            "genetic_sizer.runs.strategies.load_data (the data layer reads price and return files only)"
        )
    return load(
        dc.source,
        dc.path,
        list(dc.symbols) if dc.symbols else None,
        dc.start,
        dc.end,
        periods_per_year=dc.periods_per_year,
        leading_gaps=dc.leading_gaps,
        funding_path=dc.funding_path,
        kind=getattr(dc, "kind", "prices"),
        returns_unit=getattr(dc, "returns_unit", None),
    )

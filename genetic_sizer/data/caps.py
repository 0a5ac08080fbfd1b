"""Market-cap files: one column per asset in the price layout (the ``market_cap`` allocator and Black-Litterman's
equilibrium, :mod:`genetic_sizer.allocators.toolkit`). Read with the price files' readers and time-column rules
(:mod:`genetic_sizer.data.loaders`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genetic_sizer.data.loaders import _read_csv, _read_parquet, _time_column
from genetic_sizer.data.times import fmt_ts
from genetic_sizer.errors import DataError

__all__ = ["load_market_caps"]


def load_market_caps(path: str | Path, symbols: Sequence[str]) -> pd.DataFrame:
    """A market-cap file in the price layout (CSV or Parquet, wide form: a time column, found as in price files, and
    one column per asset; any number of rows, e.g. one of today's caps or a monthly history), as a DataFrame on
    sorted UTC times with one column per symbol of ``symbols`` (their order). A missing file or symbol, a time given
    twice, or a cap that is not a finite positive number (an empty cell is allowed: no cap at that time) is a
    DataError naming the file, the symbol and the time."""
    path = Path(path)
    source = f"market caps: {path}"
    if not path.is_file():
        raise DataError(f"{source}: no such file")
    raw = _read_csv(path) if path.suffix.lower() == ".csv" else _read_parquet(path)
    if len(raw) == 0:
        raise DataError(f"{source}: no rows")
    raw = raw.rename(columns=lambda c: str(c).strip())
    time_cols, times, _ = _time_column(raw, source)
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    if times.has_duplicates:
        raise DataError(f"{source}: time {fmt_ts(times[times.duplicated()][0])} appears twice")
    columns = {str(c): c for c in raw.columns if c not in time_cols}
    missing = [s for s in symbols if s not in columns]
    if missing:
        raise DataError(f"{source}: no column for {missing[0]!r} (its asset columns: {list(columns)})")
    caps = pd.DataFrame({s: pd.to_numeric(raw[columns[s]], errors="coerce") for s in symbols})
    caps.index = pd.DatetimeIndex(times)
    for s in symbols:
        v = caps[s].to_numpy(dtype=np.float64)
        bad = raw[columns[s]].notna().to_numpy() & ~(np.isfinite(v) & (v > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            x = raw[columns[s]].iloc[i]
            x = x.item() if isinstance(x, np.generic) else x
            raise DataError(f"{source}: the cap of {s!r} at {fmt_ts(times[i])} is {x!r}, not a number > 0")
    return caps.sort_index()

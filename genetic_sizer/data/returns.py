"""Files of returns (``data.kind: returns``): per-period simple returns compounded into prices.

Academic data sets (Ken French's portfolios, factor returns) come as returns, not prices. A file of returns has the
layout of a wide price file (a time column and one column per asset); each row holds the simple return of each asset
over the period that *ends* at that row's time, in the unit ``data.returns_unit`` says: ``fraction`` (0.012 is
1.2 %) or ``percent`` (1.2 is 1.2 %). The unit is never guessed: 0.5 could be either.

:func:`prices_from_returns` compounds them into prices that start at 1.0 one bar *before* the first return, so no
return is lost: n returns make n + 1 prices, and the price at each row's time is the value after that row's return.
Where the first price sits (its timestamp) follows the data's own spacing (:func:`bar_before`).

Every return of the columns read must be a number greater than -100 %: a missing return (a gap cannot be compounded)
or a return of -100 % or less (a price of zero or below) is a :class:`~genetic_sizer.errors.DataError` naming the
column and the date. Leading rows where some column has no return yet (a strategy that started later) are trimmed
under ``data.leading_gaps: trim``, the loaders' default (:func:`compound_table`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genetic_sizer import vocab as V
from genetic_sizer.data.times import check_index, fmt_ts
from genetic_sizer.errors import DataError

__all__ = ["bar_before", "compound_table", "prices_from_returns"]

_SCALE = {"fraction": 1.0, "percent": 0.01}


def bar_before(index: pd.DatetimeIndex) -> pd.Timestamp:
    """The timestamp one bar before ``index[0]``, by the data's own spacing: the month end (or month start, or the
    same day of the month) ``k`` months earlier when every bar is on one day of the month (``k`` the smallest step in
    months: 1 monthly, 3 quarterly, 12 yearly); the weekday before for daily bars without weekend bars; otherwise
    ``index[0]`` minus the smallest spacing. Needs two bars."""
    if len(index) < 2:
        raise DataError(f"{len(index)} return(s): at least 2 are needed to place the first price a bar before them")
    t0 = index[0]
    months = index.year * 12 + index.month
    steps = np.diff(np.asarray(months))
    same_time = (index.normalize() == index).all() or len(set(index.time)) == 1
    if same_time and (steps > 0).all():
        k = int(steps.min())
        if index.is_month_end.all():
            return t0 - pd.offsets.MonthEnd(k)
        if index.is_month_start.all():
            return t0 - pd.offsets.MonthBegin(k)
        if len(set(index.day)) == 1 and index[0].day <= 28:
            return t0 - pd.DateOffset(months=k)
    spacing = pd.Timedelta(int(np.diff(index.as_unit("ns").asi8).min()), "ns")
    if spacing == pd.Timedelta(days=1) and not (index.dayofweek >= 5).any():
        return t0 - pd.offsets.BDay(1)
    return t0 - spacing


def prices_from_returns(frame: pd.DataFrame, unit: str, source: str) -> tuple[pd.DataFrame, str]:
    """Compound a wide frame of simple returns (UTC time index, one column per asset) into prices from 1.0.

    Returns ``(prices, note)``: ``prices`` has one more row than ``frame``, the first (all 1.0) at
    :func:`bar_before` the first return; ``note`` says how the prices were made.
    """
    V.check_data_kind("returns", unit)
    if len(frame) == 0:
        raise DataError(f"{source}: no returns")
    index = pd.DatetimeIndex(frame.index)
    check_index(index, source)
    values = np.empty(frame.shape, dtype=np.float64)
    for j, col in enumerate(frame.columns):
        raw = frame.iloc[:, j]
        num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        missing = ~np.isfinite(num)
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            x = raw.iloc[i]
            x = x.item() if isinstance(x, np.generic) else x
            raise DataError(
                f"{source}: the return of {str(col)!r} at {fmt_ts(index[i])} is {x!r}, not a number "
                "(a gap in returns cannot be compounded: select other columns or another window)"
            )
        values[:, j] = num * _SCALE[unit]
        ruin = values[:, j] <= -1.0
        if ruin.any():
            i = int(np.flatnonzero(ruin)[0])
            hint = " (is the file in percent? set data.returns_unit: percent)" if unit == "fraction" else ""
            raise DataError(
                f"{source}: the return of {str(col)!r} at {fmt_ts(index[i])} is {num[i]:g} ({unit}), -100 % or "
                f"less: a price of zero or below{hint}"
            )
    first = bar_before(index)
    close = np.vstack([np.ones((1, values.shape[1])), np.cumprod(1.0 + values, axis=0)])
    prices = pd.DataFrame(close, index=pd.DatetimeIndex([first]).append(index), columns=frame.columns)
    note = (
        f"simple returns ({unit}) compounded into prices from 1.0 at {fmt_ts(first)}, one bar before the first "
        f"return ({fmt_ts(index[0])})"
    )
    return prices, note


def compound_table(wide: pd.DataFrame, offsets, symbols, unit: str, source: str, leading_gaps: str = "error"):
    """A wide table of returns -> (prices, UTC offsets, note) for the loaders: only the columns ``symbols`` selects are
    checked and compounded (an unknown symbol is refused, as ``Prices.from_frame`` refuses it); the first price takes
    the first return's UTC offset.

    ``leading_gaps="trim"`` (``data.leading_gaps``, the loaders' default): leading rows where some selected column has
    no return yet (a strategy or fund that started later) are dropped, so the returns start on the first row every
    column has one, and the note says so; ``"error"``: such a row is an error like any missing return."""
    if symbols is not None:
        missing = [str(s) for s in symbols if str(s) not in map(str, wide.columns)]
        if missing:
            raise DataError(f"{source}: symbol(s) {missing} not found; available: {sorted(map(str, wide.columns))}")
        wide = wide[[c for s in symbols for c in wide.columns if str(c) == str(s)]]
    trimmed = None
    if leading_gaps == "trim" and len(wide):
        complete = wide.notna().all(axis=1).to_numpy()
        k = int(np.argmax(complete)) if complete.any() else 0
        if k > 0:
            late = [str(c) for c in wide.columns if pd.isna(wide.iloc[k - 1][c])]
            trimmed = (
                f"{k} leading row(s) trimmed: no return yet for {late} before {fmt_ts(pd.Timestamp(wide.index[k]))}"
            )
            wide = wide.iloc[k:]
            offsets = None if offsets is None else np.asarray(offsets)[k:]
    prices, note = prices_from_returns(wide, unit, source)
    if trimmed is not None:
        note = f"{note}; {trimmed} (data.leading_gaps: trim)"
    if offsets is not None:
        offsets = np.concatenate([np.asarray(offsets)[:1], np.asarray(offsets)])
    return prices, offsets, note

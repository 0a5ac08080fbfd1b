"""Calendars: how many bars a year a price set has, whether its market trades at weekends, and where it has holes.

A price index is read in its own calendar: the UTC offset its timestamps were written with (``Prices.utc_offset``,
e.g. daily bars stamped at midnight ``+09:00`` are on Monday although Monday 00:00 in Tokyo is Sunday in UTC),
else UTC. :func:`read_calendar` returns the bars per year and notes for people (``Prices.notes``); the loaders warn
(:class:`~genetic_sizer.errors.DataWarning`) about the notes that point at the data (weekend bars in a weekday
market, holes).

**Bars per year** (:func:`infer_periods_per_year`):

* bars one calendar month apart, whatever the day of the month (month-end, month-start, the last business day):
  12 a year; two months 6, a quarter 4, four months 3, half a year 2, a year 1. At most one bar falls in each
  calendar period, most consecutive bars are exactly one period apart (the others a whole number of periods: a
  hole) and the median spacing is within 10% of the period's mean length.
* other bars a week or more apart (median spacing of 5 days or more): calendar time, 365.25 days / the median
  spacing (weekly: 52.18).
* daily and intraday bars of a market that trades around the clock: 365 days a year (daily: 365; intraday:
  365 x 24 h / the median spacing, hourly 8760). A market trades around the clock only when at least 10% of its bars
  fall on a Saturday or Sunday (:data:`WEEKEND_SHARE`; 24/7 data has 2/7 = 28.6%: over a window shorter than
  whole weeks the same proportion of the weekend time it covers) and there are bars on each weekend day the window
  holds (a weekday market whose timestamps are written in UTC from a time zone east of it has its Monday bars on
  Sunday, and none on Saturday).
* daily and intraday bars of any other market (equities): 252 trading days a year (daily: 252; intraday: 252 x
  the bars of a trading day, counted in the data: the median number of bars per calendar weekday, leaving out the
  first and last day, often partial; with only two days, the larger count). Hourly bars of a 6.5-hour session (7 a
  day): 1764; 30-minute bars: 3276. A stray weekend bar or two do not make equities 24/7: they are named in a note.
  An intraday window with no Saturday or Sunday in it cannot tell a weekday market from a 24/7 one: it is read as a
  weekday market, and a note says so and how to override it (``data.periods_per_year``).

**Holes** (far longer than the usual spacing): at daily frequency or finer, at least :data:`GAP_BARS` bars missing
at the usual spacing (a weekday market counts whole weekdays without a bar, so nights, weekends and holidays are no
holes); weekly and calendar-period bars, a whole period missing (holidays never remove a week or a month). Each is
a note naming the bars on either side and its length: the return across a hole counts as one bar's.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genetic_sizer.data.times import IndexMemo, fmt_offset, local_offsets
from genetic_sizer.errors import DataError

__all__ = ["GAP_BARS", "WEEKEND_SHARE", "Calendar", "infer_periods_per_year", "read_calendar"]

WEEKEND_SHARE = 0.10
"""The share of bars on Saturdays and Sundays (over whole weeks) from which a market trades around the clock."""
GAP_BARS = 10
"""A hole in daily or finer bars: at least this many bars missing (weekday markets: weekdays without a bar)."""
MAX_LISTED = 5
"""Weekend bars and holes named one by one in the notes; more are counted."""

_DAY_NS = 86_400 * 10**9
_DAY_S = 86_400.0
_MONTH_DAYS = 365.2425 / 12
_PERIODS = {1: "month", 2: "two months", 3: "quarter", 4: "four months", 6: "half year", 12: "year"}
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Calendar:
    """What :func:`read_calendar` found: the bars per year, the kind of calendar, notes for people and the notes
    worth a warning (a subset: the ones that point at the data)."""

    periods_per_year: float
    kind: str
    """``"24/7"``, ``"weekdays"``, ``"calendar time"`` (a spacing of 5 days or more that is no calendar period:
    weekly ...) or ``"monthly"``, ``"quarterly"``, ``"yearly"``, ``"every two months"`` ... (calendar periods)."""
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def infer_periods_per_year(index: pd.DatetimeIndex, utc_offset=None) -> float:
    """Bars per year of ``index`` read in its own calendar (see the module docstring).

    ``utc_offset``: seconds east of UTC of each timestamp (``Prices.utc_offset``); None reads the offsets of a
    timezone-aware ``index``, else UTC. Pass ``periods_per_year`` to :class:`~genetic_sizer.data.prices.Prices`
    (``data.periods_per_year``) to override.
    """
    return read_calendar(index, utc_offset).periods_per_year


def read_calendar(index, utc_offset=None, *, around_the_clock: bool = False, periods_per_year=None) -> Calendar:
    """Bars per year, kind of calendar, notes and warnings for the bars of ``index`` (see the module docstring).

    ``around_the_clock``: the market is known to trade every day (Hyperliquid): a 365-day year whatever the
    window's weekdays. ``periods_per_year``: the value the caller set; the notes then leave out how it would have
    been inferred (they still name weekend bars and holes).
    """
    by_object = utc_offset is None and isinstance(index, pd.DatetimeIndex)
    if by_object:  # an index is immutable: its calendar is read once per object (then by content, below)
        key = (around_the_clock, periods_per_year is None)
        cal = _BY_INDEX.get(index, key)
        if cal is None:
            cal = _read_by_content(index, None, around_the_clock, periods_per_year)
            _BY_INDEX.put(index, key, cal)
        return cal
    return _read_by_content(index, utc_offset, around_the_clock, periods_per_year)


def _read_by_content(index, utc_offset, around_the_clock: bool, periods_per_year) -> Calendar:
    index = pd.DatetimeIndex(index)
    if utc_offset is None:
        utc_offset = local_offsets(index)
    utc = index.as_unit("ns").asi8
    if len(utc) < 2:
        raise DataError("cannot infer bar spacing from fewer than 2 timestamps")
    offsets = None if utc_offset is None else np.broadcast_to(np.asarray(utc_offset, dtype=np.int64), utc.shape)
    key = _content_key(utc, offsets, around_the_clock, periods_per_year is None)
    cal = _READ.get(key)
    if cal is None:
        cal = _read_calendar(utc, offsets, around_the_clock, periods_per_year is None)
        with _READ_LOCK:
            _READ[key] = cal
            while len(_READ) > _READ_SIZE:
                del _READ[next(iter(_READ))]
    return cal


_BY_INDEX = IndexMemo()
"""The calendars of index objects, keyed by ``(around_the_clock, inferred)``."""


_READ: dict = {}
"""The calendars read last (:func:`read_calendar` is pure): keyed by the bytes of the timestamps and offsets (their
content, never an object's identity), at most :data:`_READ_SIZE` of them, the oldest dropped first."""
_READ_SIZE = 64
_READ_LOCK = threading.Lock()


def _content_key(utc: np.ndarray, offsets, around_the_clock: bool, inferred: bool) -> tuple:
    h = hashlib.blake2b(np.ascontiguousarray(utc).tobytes(), digest_size=20)
    if offsets is not None:
        h.update(b"offsets")
        h.update(np.ascontiguousarray(offsets).tobytes())
    return h.digest(), len(utc), bool(around_the_clock), bool(inferred)


def _read_calendar(utc: np.ndarray, offsets, around_the_clock: bool, inferred: bool) -> Calendar:
    """:func:`read_calendar` of int64 UTC nanoseconds and offsets in seconds (or None)."""
    local = utc if offsets is None else utc + offsets * 10**9
    step_ns = float(np.median(np.diff(utc)))
    head = () if offsets is None else (_offset_note(offsets),)
    if step_ns >= 5 * _DAY_NS:
        cal = _slow(local, step_ns)
    else:
        week = _Weekends(local, step_ns)
        if around_the_clock or week.around_the_clock:
            cal = _around_the_clock(local, step_ns)
        else:
            cal = _weekdays(local, step_ns, week, inferred)
    return Calendar(cal.periods_per_year, cal.kind, head + cal.notes, cal.warnings)


# ------------------------------------------------------------------------------------------ the three calendars
def _slow(local: np.ndarray, step_ns: float) -> Calendar:
    """Bars a week or more apart: calendar periods (months, quarters, years), else calendar time."""
    k, months = _months_apart(local, step_ns)
    if k:
        missing = months // k - 1
        what = {1: "months", 3: "quarters", 12: "years"}.get(k, f"periods of {_PERIODS[k]}")
        notes = _holes(local, missing >= 1, lambda i: f"{int(missing[i])} {what} missing", daily=True)
        kind = {1: "monthly", 3: "quarterly", 12: "yearly"}.get(k, f"every {_PERIODS[k]}")
        return Calendar(12.0 / k, kind, notes, notes)
    missing = np.rint(np.diff(local) / step_ns).astype(np.int64) - 1
    notes = _holes(local, missing >= 1, lambda i: f"{int(missing[i])} bars missing at the usual spacing", True)
    return Calendar(365.25 * _DAY_S / (step_ns / 1e9), "calendar time", notes, notes)


def _around_the_clock(local: np.ndarray, step_ns: float) -> Calendar:
    missing = np.rint(np.diff(local) / step_ns).astype(np.int64) - 1
    daily = step_ns >= 0.75 * _DAY_NS
    notes = _holes(local, missing >= GAP_BARS, lambda i: f"{int(missing[i])} bars missing at the usual spacing", daily)
    return Calendar(365.0 * _DAY_S / (step_ns / 1e9), "24/7", notes, notes)


def _weekdays(local: np.ndarray, step_ns: float, week: _Weekends, inferred: bool) -> Calendar:
    """A weekday market: 252 trading days; notes on weekend bars, on a window without a weekend, on holes."""
    daily = step_ns >= 0.75 * _DAY_NS
    days = local // _DAY_NS
    dates = days.astype("datetime64[D]")
    if daily:  # bars a trading day apart (or 2, 3 ...), weekdays counted
        per_day = None
        ppy = 252.0 / max(float(np.median(np.busday_count(dates[:-1], dates[1:]))), 1.0)
    else:
        _, counts = np.unique(days[~week.weekend] if not week.weekend.all() else days, return_counts=True)
        per_day = float(counts.max()) if counts.size <= 2 else float(np.median(counts[1:-1]))
        ppy = 252.0 * per_day
    notes, warn = [], []
    if week.weekend.any():
        note = _weekend_note(local, week, daily, inferred, ppy)
        notes.append(note)
        warn.append(note)
    elif inferred and not daily and not (_weekday(np.arange(days[0], days[-1] + 1)) >= 5).any():
        notes.append(_no_weekend_note(local, step_ns, per_day, ppy))
    missing = np.busday_count(dates[:-1] + 1, dates[1:])
    holes = _holes(local, missing >= GAP_BARS, lambda i: f"{int(missing[i])} weekdays without a bar", daily)
    return Calendar(ppy, "weekdays", tuple(notes) + holes, tuple(warn) + holes)


# ------------------------------------------------------------------------------------------------ the judgements
def _weekday(days) -> np.ndarray:
    """Monday 0 .. Sunday 6 of days counted from 1970-01-01 (a Thursday)."""
    return (np.asarray(days) + 3) % 7


class _Weekends:
    """The weekend bars of a window and whether they make a market that trades around the clock.

    ``share`` is the part of the window's time [first bar, last bar + spacing) on Saturdays and Sundays (2/7 over
    whole weeks): a market that trades around the clock has about that share of its bars there. It does when at
    least :data:`WEEKEND_SHARE` / (2/7) of that share of the bars are (10% over whole weeks) and every weekend day
    the window holds (at least half of it) has bars.
    """

    def __init__(self, local: np.ndarray, step_ns: float):
        dow = _weekday(local // _DAY_NS)
        self.weekend = dow >= 5
        start, stop = int(local[0]), int(local[-1] + step_ns)
        span = np.arange(start // _DAY_NS, (stop - 1) // _DAY_NS + 1)
        covered = np.clip(np.minimum((span + 1) * _DAY_NS, stop) - np.maximum(span * _DAY_NS, start), 0, None)
        on_weekend = _weekday(span) >= 5
        self.share = float(covered[on_weekend].sum() / covered.sum())
        self.needed = WEEKEND_SHARE / (2 / 7) * self.share
        self.held = sorted(set(_weekday(span[on_weekend & (covered >= _DAY_NS // 2)]).tolist()))
        self.with_bars = sorted(set(dow[self.weekend].tolist()))
        enough = self.weekend.any() and self.weekend.sum() >= self.needed * local.size
        self.around_the_clock = bool(enough and set(self.held) <= set(self.with_bars))


def _months_apart(local: np.ndarray, step_ns: float) -> tuple[int, np.ndarray]:
    """``(k, months)``: bars k calendar months apart (0 if they are not), and the months between consecutive bars
    (rounded, counting the day of the month as a fraction of it)."""
    t = pd.DatetimeIndex(np.asarray(local, dtype=np.int64).view("M8[ns]"))
    month = t.year.to_numpy(dtype=np.int64) * 12 + t.month.to_numpy(dtype=np.int64) - 1
    into = (t.day.to_numpy() - 1 + (local % _DAY_NS) / _DAY_NS) / t.days_in_month.to_numpy()
    months = np.rint(np.diff(month + into)).astype(np.int64)
    if (np.diff(month) < 1).any() or (months < 1).any():  # two bars in one calendar month
        return 0, months
    values, counts = np.unique(months, return_counts=True)
    k = int(values[np.argmax(counts)])
    regular = (
        k in _PERIODS
        and counts.max() * 2 >= months.size
        and not (months % k).any()
        and 0.9 <= step_ns / _DAY_NS / (k * _MONTH_DAYS) <= 1.1
    )
    return (k if regular else 0), months


# ------------------------------------------------------------------------------------------------------- notes
def _fmt(ns: int, daily: bool) -> str:
    t = pd.Timestamp(int(ns))
    return t.strftime("%Y-%m-%d") if daily and t == t.normalize() else t.strftime("%Y-%m-%d %H:%M")


def _span(ns: float) -> str:
    """A duration for people: ``125 days``, ``1.3 days``, ``1 hour``, ``30 minutes``."""
    for unit, size in (("day", _DAY_NS), ("hour", 3.6e12), ("minute", 6e10)):
        if ns >= size or unit == "minute":
            x = ns / size
            text = f"{x:.0f}" if abs(x - round(x)) < 0.05 else f"{x:.1f}"
            return f"{text} {unit}" + ("" if text == "1" else "s")
    raise AssertionError  # unreachable


def _offset_note(offsets: np.ndarray) -> str:
    seen = "/".join(fmt_offset(s) for s in dict.fromkeys(offsets.tolist()))
    return (
        f"timestamps written with a UTC offset ({seen}): days, weekdays and months (the weekend test, bars per day, "
        f"calendar rebalances) are those of that local time"
    )


def _weekend_note(local, week: _Weekends, daily: bool, inferred: bool, ppy: float) -> str:
    n, k = local.size, int(week.weekend.sum())
    at = np.flatnonzero(week.weekend)
    named = ", ".join(f"{_WEEKDAYS[_weekday(local[i] // _DAY_NS)]} {_fmt(local[i], daily)}" for i in at[:MAX_LISTED])
    more = f" and {k - MAX_LISTED} more" if k > MAX_LISTED else ""
    if k >= week.needed * n:
        empty = " or ".join(_WEEKDAY_NAMES[d] for d in week.held if d not in week.with_bars)
        why = f"but none on a {empty}, and a market that trades around the clock has bars on both weekend days"
    else:
        why = (
            f"fewer than the {week.needed:.1%} of a market that trades around the clock ({WEEKEND_SHARE:.0%} over "
            f"whole weeks: 24/7 data has 2/7 = 28.6%)"
        )
    how = (
        f"read as a weekday market, {ppy:g} bars a year (set data.periods_per_year to override)"
        if inferred
        else "read as a weekday market"
    )
    hint = ""
    if k > 1 and len(week.with_bars) == 1:  # every one on the same weekend day: a shifted weekday calendar?
        hint = (
            f" (every one a {_WEEKDAY_NAMES[week.with_bars[0]]}: the timestamps of a weekday market written in UTC "
            f"from another time zone put Monday on Sunday east of UTC and Friday on Saturday west of it; write them "
            f"with their UTC offset)"
        )
    head = f"{k} of {n} bars ({k / n:.1%}) fall on a Saturday or Sunday"
    return f"{head}, {why}: {how}. Weekend bars: {named}{more}{hint}"


def _no_weekend_note(local, step_ns: float, per_day: float, ppy: float) -> str:
    """An intraday window with no Saturday or Sunday in it: what was assumed, and how to say otherwise."""
    first, last = (pd.Timestamp(int(x)) for x in (local[0], local[-1]))
    return (
        f"the window ({first:%a %Y-%m-%d %H:%M} .. {last:%a %Y-%m-%d %H:%M}) holds no Saturday or Sunday, so whether "
        f"the market trades at weekends cannot be told: read as a weekday market, 252 days x {per_day:g} bars a "
        f"day = {ppy:g} bars a year; for a market that trades around the clock set data.periods_per_year: "
        f"{365.0 * _DAY_NS / step_ns:g} (365 days x 24 h / the {_span(step_ns)} spacing)"
    )


def _holes(local: np.ndarray, flagged: np.ndarray, missing, daily: bool) -> tuple[str, ...]:
    at = np.flatnonzero(flagged)
    notes = [
        f"hole in the data: no bar between {_fmt(local[i], daily)} and {_fmt(local[i + 1], daily)} "
        f"({_span(local[i + 1] - local[i])}; {missing(i)}): the move across it counts as one bar's return"
        for i in at[:MAX_LISTED]
    ]
    if at.size > MAX_LISTED:
        longest = int(at[np.argmax(np.diff(local)[at])])
        notes.append(
            f"and {at.size - MAX_LISTED} more holes ({at.size} in all; the longest: {_fmt(local[longest], daily)} "
            f"to {_fmt(local[longest + 1], daily)}, {_span(local[longest + 1] - local[longest])})"
        )
    return tuple(notes)

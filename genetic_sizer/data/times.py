"""Timestamps: reading time columns and indexes as UTC, checking them, and reading window bounds.

A time column (or index) holds dates and date-times (ISO 8601 or any one consistent format, with or without a
UTC offset; naive ones are taken as UTC) or epoch numbers, whose unit (seconds, milliseconds, microseconds or
nanoseconds) is detected from their magnitude. Timestamps that cannot be read (an impossible date, epoch numbers
of no unit or of mixed units), missing, duplicate or unsorted are a :class:`~genetic_sizer.errors.DataError`
naming the source, the row and the value.
"""

from __future__ import annotations

import datetime
import re
import threading
import warnings
import weakref

import numpy as np
import pandas as pd

from genetic_sizer.errors import ConfigError, DataError

__all__ = [
    "IndexMemo",
    "as_utc_index",
    "check_index",
    "fmt_offset",
    "fmt_ts",
    "local_offsets",
    "parse_bound",
    "parse_times",
    "try_times",
    "valid_utc_index",
]

_EPOCH_UNITS = (("s", "seconds", 1e8, 1e10), ("ms", "milliseconds", 1e11, 1e13), ("us", "microseconds", 1e14, 1e16))
_EPOCH_NS = ("ns", "nanoseconds", 1e17, 2**63 - 1)
"""Magnitude of an epoch timestamp in each unit for dates from 1973-03 to 2286-11 (nanoseconds: to 2262-04)."""


def fmt_ts(ts) -> str:
    return pd.Timestamp(ts).isoformat()


def as_utc_index(index, source: str) -> tuple[pd.DatetimeIndex, str | None]:
    """``index`` as UTC nanosecond timestamps, and how numbers were read (None if they were not numbers)."""
    if isinstance(index, pd.DatetimeIndex):
        idx, how = index, None
    else:
        idx, how = parse_times(pd.Series(index), "time index", source)
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


class IndexMemo:
    """What was computed from a pandas index object, kept while the object lives: an index is immutable, so what is
    derived from it alone (its UTC reading, its calendar, its rebalance masks) never changes. Entries are keyed by
    ``(id(index), key)`` and hold a weak reference to the index: an entry leaves with its index, and a new index that
    reuses the id never finds another's entry. A frame is never a key: its index can be replaced and its values
    changed, so what depends on them is checked on every call."""

    def __init__(self):
        self.entries: dict = {}
        self._lock = threading.RLock()  # re-entrant: a weak reference's callback may run while an entry is put

    def __contains__(self, key) -> bool:
        return key in self.entries

    def get(self, index, key, default=None):
        """The value put for ``index`` (this very object) under ``key``, else ``default``."""
        hit = self.entries.get((id(index), key))
        return hit[1] if hit is not None and hit[0]() is index else default

    def put(self, index, key, value) -> None:
        """Keep ``value`` for ``index`` under ``key`` while ``index`` lives (nothing is kept for an object that cannot
        be weakly referenced). ``value`` must not hold ``index`` itself, or the entry would keep it alive."""
        k = (id(index), key)
        try:
            ref = weakref.ref(index, lambda dead, k=k: self._forget(k, dead))
        except TypeError:
            return
        with self._lock:
            self.entries[k] = (ref, value)

    def _forget(self, k: tuple, dead) -> None:
        with self._lock:
            if self.entries.get(k, (None,))[0] is dead:
                del self.entries[k]


_VALID = IndexMemo()
"""Indexes already read and checked by :func:`valid_utc_index`: the UTC index of each (None for a UTC index given
back by it: the index itself)."""
_UNREAD = object()


def valid_utc_index(index, source: str) -> tuple[pd.DatetimeIndex, str | None]:
    """:func:`as_utc_index` of ``index``, checked by :func:`check_index` (sorted, no duplicates), and how numbers were
    read. A :class:`pandas.DatetimeIndex` is read and checked once (an index is immutable): later calls with the same
    object, or with the UTC index returned, return at once. Any other sequence is read on every call."""
    if isinstance(index, pd.DatetimeIndex):
        hit = _VALID.get(index, "utc", _UNREAD)
        if hit is not _UNREAD:
            return (index if hit is None else hit), None
    utc, how = as_utc_index(index, source)
    check_index(utc, source)
    if isinstance(index, pd.DatetimeIndex):
        _VALID.put(index, "utc", None if utc is index else utc)
        _VALID.put(utc, "utc", None)
    return utc, how


def _check_not_misread_epoch(index: pd.DatetimeIndex, source: str) -> None:
    """Refuse an index that is epoch numbers someone already read as nanoseconds (bars on 1970-01-01)."""
    if len(index) < 2:
        return
    ints = index.asi8
    if ints[-1] < 86_400 * 10**9 and np.median(np.diff(ints)) < 10**9:
        raise DataError(
            f"{source}: timestamps run from {fmt_ts(index[0])} to {fmt_ts(index[-1])}, less than a second "
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


def parse_times(values: pd.Series, what: str, source: str) -> tuple[pd.DatetimeIndex, str | None]:
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


_TRAILING_OFFSET = r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)\s*$"
"""A UTC offset written after a time of day: ``Z``, ``+09:00``, ``-0530``, ``+09`` (a date alone has none)."""

MAX_OFFSET_S = 18 * 3600
"""The largest UTC offset a timestamp may carry (ISO 8601 and Python's ``datetime`` allow up to 18 hours)."""


def local_offsets(values) -> np.ndarray | None:
    """The UTC offset, in seconds, that each timestamp of ``values`` was written with: None when there is none
    (epoch numbers, naive or UTC timestamps), else int64 seconds per value (0 for a naive or ``Z`` one).

    ``values`` is what :func:`parse_times` read (a column: text with offsets such as ``2024-01-02T00:00:00+09:00``,
    or timezone-aware datetimes) or a ``DatetimeIndex``. The timestamps themselves are kept as UTC instants; the
    offsets say which local calendar day and weekday each bar belongs to (see ``Prices.utc_offset``).
    """
    if isinstance(values, pd.DatetimeIndex):
        if values.tz is None or values.tz is datetime.UTC or str(values.tz) == "UTC":
            return None  # naive or UTC: no offset (the test is cheap; a UTC index's wall times are its instants)
        wall = values.tz_localize(None).as_unit("ns").asi8
        utc = values.tz_convert("UTC").tz_localize(None).as_unit("ns").asi8
        return _nonzero((wall - utc) // 10**9)
    values = pd.Series(values).reset_index(drop=True)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return local_offsets(pd.DatetimeIndex(values))
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        return None
    text = values.map(lambda x: x if isinstance(x, str) else None)
    if text.notna().all():
        found = text.str.extract(_TRAILING_OFFSET, flags=re.IGNORECASE)[0]
        if found.isna().all():
            return None
        seconds = {code: _offset_seconds(code) for code in found.dropna().unique()}
        return _nonzero(found.map(seconds).fillna(0).to_numpy(dtype=np.int64))
    out = np.zeros(len(values), dtype=np.int64)  # datetime objects (or a mix): their own tzinfo
    for i, x in enumerate(values):
        off = pd.Timestamp(x).utcoffset() if not isinstance(x, str) else None
        out[i] = 0 if off is None else int(off.total_seconds())
    return _nonzero(out)


def fmt_offset(seconds: int) -> str:
    """A UTC offset in seconds as ``+09:00`` / ``-05:30``."""
    h, m = divmod(abs(int(seconds)) // 60, 60)
    return f"{'-' if seconds < 0 else '+'}{h:02d}:{m:02d}"


def _offset_seconds(code: str) -> int:
    if code.upper() == "Z":
        return 0
    digits = code[1:].replace(":", "")
    sign = -1 if code[0] == "-" else 1
    return sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)


def _nonzero(offsets: np.ndarray) -> np.ndarray | None:
    offsets = np.asarray(offsets, dtype=np.int64)
    return None if not offsets.any() else offsets


def try_times(values: pd.Series, what: str, source: str):
    """:func:`parse_times` for a column that may hold prices instead (``T`` is AT&T): None when the values
    are not timestamps, but the error when they are meant as timestamps (epoch-sized numbers, text that
    is mostly dates) and some of them are wrong."""
    try:
        return parse_times(values, what, source)
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


def check_index(index: pd.DatetimeIndex, source: str) -> None:
    ints = index.asi8
    diffs = np.diff(ints)
    bad = np.flatnonzero(diffs <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        if diffs[i - 1] == 0:
            raise DataError(f"{source}: duplicate timestamp {fmt_ts(index[i])} (rows {i - 1} and {i})")
        raise DataError(
            f"{source}: timestamps are not sorted: {fmt_ts(index[i])} (row {i}) comes after {fmt_ts(index[i - 1])}"
        )


def parse_bound(value, name: str):
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

"""The walk-forward's folds: train and test windows of a price index, and each fold's evolution settings.

Windows counted in bars of closes (``train: 504, test: 126``) follow skfolio's
:class:`~skfolio.model_selection.WalkForward` (which this module calls): rolling train windows (expanding from the
first bar when ``anchored``), ``purge`` bars left out between a train window's end and its test window, test windows
back to back without overlap, a last window shorter than ``test`` dropped unless ``keep_partial``.

Calendar windows (``train: "3Y", test: "1Y"``; units D, W, M, Q, Y) are cut here, on skfolio's conventions: the
test windows are ``test`` calendar periods each (days, weeks from Monday, months, quarters, years, in UTC) back to
back, each starting on the first bar of its first period; a train window starts on the last bar at or before its
boundary (the test window's start minus ``train``: the close before it, so the window holds ``train`` worth of
returns) and ends on the bar before the test window (minus ``purge`` bars). A window is complete, and kept, when
the data covers it:

* the data's first bar may come after a train window's boundary when it is the first bar after it: no bar is
  missing between them (a weekday market's data may miss one weekday there, a holiday such as January 1st, when it
  misses weekdays elsewhere too; a 24/7 market's, none at its spacing; monthly or slower data, no calendar period);
* a test window is complete when its last bar is present: the data ends on the last bar before the window's end
  (the same tolerance), so data ending on December 31st holds that year, data ending two trading days short of it
  does not (``keep_partial: true`` keeps such a window).

Every test window the data touches but no fold tests is listed by :func:`plan_folds` with the reason
(``walkforward.json`` ``dropped_windows``; the CLI prints them). A fold's weights must earn at least
:data:`MIN_TEST_RETURNS` returns (:func:`min_test_bars`): a configuration whose test windows are shorter is refused
before anything evolves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genetic_sizer.config import WalkForwardConfig
from genetic_sizer.errors import ConfigError

__all__ = [
    "MIN_TEST_RETURNS",
    "MIN_TRAIN_BARS",
    "Fold",
    "FoldPlan",
    "describe_dropped",
    "execution_text",
    "fold_config",
    "fold_seed",
    "make_folds",
    "min_test_bars",
    "plan_folds",
]

MIN_TRAIN_BARS = 3
"""The fewest bars an evolution can run on (two returns for a standard deviation)."""
MIN_TEST_RETURNS = 2
"""The fewest returns a fold's weights must earn out of sample (a standard deviation): a test window of at least 2
bars, 3 with ``execution_delay: 1`` (the last fold's weights are traded at the close of its first test bar)."""


def min_test_bars(config: WalkForwardConfig) -> int:
    """The fewest bars a fold's test window may have (:data:`MIN_TEST_RETURNS` plus the execution delay)."""
    return MIN_TEST_RETURNS + config.execution_delay


_FREQ = {"D": "D", "W": "W-MON", "M": "MS", "Q": "QS-JAN", "Y": "YS-JAN"}
"""pandas frequency whose periods start each calendar test window, by span unit."""


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: bar positions (inclusive) of its train and test windows."""

    number: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    @property
    def train(self) -> slice:
        return slice(self.train_start, self.train_end + 1)

    @property
    def test(self) -> slice:
        return slice(self.test_start, self.test_end + 1)

    def traded_at(self, execution_delay: int = 0) -> int:
        """The bar at whose close the fold's weights are traded: the bar before its test window (delay 0), or the
        test window's first bar (delay 1). Its weights then earn the returns of the bars after it."""
        return self.test_start - 1 + int(execution_delay)

    def bounds(self, index: pd.DatetimeIndex) -> dict[str, str]:
        """The fold's windows as ISO-8601 bar timestamps (inclusive)."""
        return {
            "train_start": index[self.train_start].isoformat(),
            "train_end": index[self.train_end].isoformat(),
            "test_start": index[self.test_start].isoformat(),
            "test_end": index[self.test_end].isoformat(),
        }


@dataclass(frozen=True)
class FoldPlan:
    """The folds of a price index and the test windows left out: ``dropped`` is a list of JSON-able records, each
    with ``n_bars`` (the data's bars in the window), ``reason``, and the window's bounds: ``period_start`` and
    ``period_end`` (calendar boundaries, the end excluded) for calendar windows, ``first_bar`` and ``last_bar`` for
    windows counted in bars."""

    folds: list[Fold]
    dropped: list[dict] = field(default_factory=list)


def _offset(n: int, unit: str) -> pd.DateOffset:
    return {
        "D": pd.DateOffset(days=n),
        "W": pd.DateOffset(weeks=n),
        "M": pd.DateOffset(months=n),
        "Q": pd.DateOffset(months=3 * n),
        "Y": pd.DateOffset(years=n),
    }[unit]


# ---- windows counted in bars: skfolio ------------------------------------------------------------------------
def _bar_windows(index: pd.DatetimeIndex, config: WalkForwardConfig) -> tuple[list[tuple], list[dict]]:
    from skfolio.model_selection import WalkForward

    train, test = config.window("train"), config.window("test")
    splitter = WalkForward(
        test_size=test,
        train_size=train,
        purged_size=config.purge,
        expand_train=config.anchored,
        reduce_test=config.keep_partial,
    )
    frame = pd.DataFrame(np.zeros((len(index), 1)), index=index)
    try:
        splits = [(int(a[0]), int(a[-1]), int(b[0]), int(b[-1])) for a, b in splitter.split(frame) if len(b)]
    except ValueError as exc:
        raise ConfigError(f"walkforward: {exc}") from None
    dropped = []
    n = len(index)
    tail = splits[-1][3] + 1 if splits else None
    if tail is not None and tail < n:  # the last window, shorter than `test`, left out (keep_partial: false)
        dropped.append(
            {
                "first_bar": index[tail].isoformat(),
                "last_bar": index[-1].isoformat(),
                "n_bars": n - tail,
                "reason": f"partial: {n - tail} bar(s) after the last full test window, fewer than test = {test} "
                "(walkforward.keep_partial: true keeps it)",
            }
        )
    return splits, dropped


# ---- calendar windows ------------------------------------------------------------------------------------------
class _Coverage:
    """Whether the data's first bar is the first bar after a boundary, and its last bar the last one before one."""

    def __init__(self, index: pd.DatetimeIndex):
        from genetic_sizer.data.calendar import read_calendar

        cal = read_calendar(index)
        self.kind = cal.kind
        self.first, self.last = index[0], index[-1]
        self.step = pd.Timedelta(int(np.median(np.diff(index.asi8))), "ns")
        if cal.kind == "weekdays":
            dates = np.unique(index.tz_convert("UTC").tz_localize(None).normalize().to_numpy().astype("datetime64[D]"))
            weekdays = int(np.is_busday(dates).sum())
            # weekdays without a bar inside the data (holidays): then one may be missing at a boundary too
            self.holidays = 1 if np.busday_count(dates[0], dates[-1] + 1) > weekdays else 0
            self.period = None
        elif cal.kind in ("24/7", "weekly"):
            self.period = self.step  # the next bar is one step away
        else:  # calendar periods: monthly, quarterly, yearly, every two months, ...
            self.period = pd.DateOffset(months=max(1, round(12 / cal.periods_per_year)))

    @staticmethod
    def _day(t: pd.Timestamp) -> np.datetime64:
        return np.datetime64(t.tz_convert("UTC").date(), "D")

    def starts_at(self, boundary: pd.Timestamp) -> bool:
        """The data's first bar (after ``boundary``) is the first bar a window from ``boundary`` would hold."""
        if self.period is None:  # weekdays from the boundary's day to the first bar's day, holidays allowed
            return int(np.busday_count(self._day(boundary), self._day(self.first))) <= self.holidays
        return self.first < boundary + self.period

    def ends_at(self, boundary: pd.Timestamp) -> bool:
        """The data's last bar (before ``boundary``) is the last bar a window up to ``boundary`` would hold."""
        if self.period is None:  # weekdays after the last bar's day and before the boundary's day
            return int(np.busday_count(self._day(self.last) + 1, self._day(boundary))) <= self.holidays
        return self.last >= boundary - self.period

    def why_partial(self, boundary: pd.Timestamp) -> str:
        """Why a window ending at ``boundary`` is not complete (the data ends before its last bar)."""
        if self.period is None:
            k = int(np.busday_count(self._day(self.last) + 1, self._day(boundary)))
            allowed = "one may be a holiday" if self.holidays else "the data misses no weekday elsewhere"
            return f"{k} weekday(s) before {boundary.date()} have no bar ({allowed})"
        return f"bars are missing before {boundary.date()} at the data's spacing ({self.kind})"


def _period_starts(index: pd.DatetimeIndex, unit: str) -> pd.DatetimeIndex:
    """Period boundaries (UTC midnight) from the start of the period holding the first bar to the first boundary
    after the last bar."""
    first = index[0].tz_convert("UTC").normalize()
    floor = {
        "D": first,
        "W": first - pd.Timedelta(days=first.dayofweek),
        "M": first.replace(day=1),
        "Q": first.replace(month=3 * ((first.month - 1) // 3) + 1, day=1),
        "Y": first.replace(month=1, day=1),
    }[unit]
    offset = pd.tseries.frequencies.to_offset(_FREQ[unit])
    starts = pd.date_range(floor, index[-1], freq=offset)
    return starts.append(pd.DatetimeIndex([starts[-1] + offset]))


def _calendar_windows(index: pd.DatetimeIndex, config: WalkForwardConfig) -> tuple[list[tuple], list[dict]]:
    (n_test, unit), (n_train, train_unit) = config.window("test"), config.window("train")
    span = _offset(n_train, train_unit)
    bounds = _period_starts(index, unit)
    last_period = len(bounds) - 2  # [bounds[L], bounds[L + 1]) holds the last bar
    cover = _Coverage(index)
    pos = index.asi8

    def first_at(t) -> int:  # the first bar at or after t
        return int(np.searchsorted(pos, pd.Timestamp(t).value, side="left"))

    def window(j: int, k: int) -> dict:
        lo, hi = bounds[j], bounds[min(j + k, len(bounds) - 1)]
        if j + k >= len(bounds):
            hi = lo + _offset(k, unit)
        return {"period_start": lo.isoformat(), "period_end": hi.isoformat(), "n_bars": first_at(hi) - first_at(lo)}

    # the first test window whose train window the data covers (skfolio: a bar at or before its boundary)
    j0 = None
    for j in range(last_period + 1):
        boundary = bounds[j] - span
        if boundary >= index[0] or cover.starts_at(boundary):
            if bounds[j] >= index[0] or cover.starts_at(bounds[j]):
                j0 = j
                break
    splits, dropped = [], []
    if j0 is None:
        return splits, dropped
    if j0 > 0:  # the first train window: no test window fits before it
        dropped.append(
            {
                **window(0, j0),
                "reason": f"too early: the {config.train} train window before each of these test windows would "
                f"start before the data's first bar ({index[0].date()}), which is not the first bar after its start",
            }
        )
    for j in range(j0, last_period + 1, n_test):
        end = j + n_test
        rec = window(j, n_test)
        start, stop = first_at(bounds[j]), (first_at(bounds[end]) if end < len(bounds) else len(index))
        if stop <= start:
            dropped.append({**rec, "reason": "no bars in the window"})
            continue
        complete = end <= last_period or (end == last_period + 1 and cover.ends_at(bounds[end]))
        if not complete and not config.keep_partial:
            dropped.append(
                {
                    **rec,
                    "reason": f"partial: the data ends {index[-1].isoformat()}, before the window's last bar: "
                    f"{cover.why_partial(pd.Timestamp(rec['period_end']))} (walkforward.keep_partial: true keeps it)",
                }
            )
            continue
        boundary = bounds[j] - span
        train_start = max(int(np.searchsorted(pos, boundary.value, side="right")) - 1, 0)
        splits.append((0 if config.anchored else train_start, start - config.purge - 1, start, stop - 1))
    return splits, dropped


def plan_folds(index: pd.DatetimeIndex, config: WalkForwardConfig) -> FoldPlan:
    """The walk-forward folds of a price index, and the test windows left out with the reason (see the module
    docstring).

    Parameters
    ----------
    index : DatetimeIndex
        Bar timestamps of the whole window (``Prices.index``).
    config : WalkForwardConfig

    Returns
    -------
    FoldPlan; a ConfigError when the window holds no complete fold, a train window is shorter than
    :data:`MIN_TRAIN_BARS` bars, or a fold's test window shorter than :func:`min_test_bars` (a last partial window
    that ``keep_partial`` would keep is then dropped instead, and listed).
    """
    need = min_test_bars(config)
    index = pd.DatetimeIndex(index).as_unit("ns")
    if index.tz is None:  # naive timestamps are UTC, as everywhere
        index = index.tz_localize("UTC")
    if isinstance(config.window("test"), int):
        splits, dropped = _bar_windows(index, config)
    else:
        splits, dropped = _calendar_windows(index, config)
    if splits and config.keep_partial:
        c, d = splits[-1][2:]
        if d - c + 1 < need and len(splits) > 1 and d == len(index) - 1:
            splits.pop()
            dropped.append(
                {
                    "first_bar": index[c].isoformat(),
                    "last_bar": index[d].isoformat(),
                    "n_bars": d - c + 1,
                    "reason": f"partial window of {d - c + 1} bar(s) kept by walkforward.keep_partial, fewer than the "
                    f"{need} a test window needs (its weights must earn {MIN_TEST_RETURNS} returns)",
                }
            )
    folds = [Fold(k, *s) for k, s in enumerate(splits)]
    span = f"{index[0].date()} .. {index[-1].date()}, {len(index)} bars"
    if not folds:
        why = "; ".join(d["reason"] for d in dropped)
        raise ConfigError(
            f"walkforward: train {config.train!r} + purge {config.purge} + test {config.test!r} does not fit "
            f"in the data ({span}): no complete fold" + (f" ({why})" if why else "")
        )
    short = [f for f in folds if f.train_end - f.train_start + 1 < MIN_TRAIN_BARS]
    if short:
        raise ConfigError(
            f"walkforward: fold {short[0].number}'s train window has "
            f"{max(short[0].train_end - short[0].train_start + 1, 0)} bar(s); at least {MIN_TRAIN_BARS} are needed"
        )
    short = [f for f in folds if f.test_end - f.test_start + 1 < need]
    if short:
        f = short[0]
        delay = " with walkforward.execution_delay: 1" if config.execution_delay else ""
        raise ConfigError(
            f"walkforward.test = {config.test!r}: fold {f.number}'s test window ({index[f.test_start].date()} .. "
            f"{index[f.test_end].date()}) has {f.test_end - f.test_start + 1} bar(s); at least {need} are needed"
            f"{delay} (its weights must earn {MIN_TEST_RETURNS} returns out of sample): give a longer walkforward.test"
        )
    return FoldPlan(folds, dropped)


def describe_dropped(record: dict) -> str:
    """A line for people about a test window :func:`plan_folds` left out: its bounds, bars and reason."""
    lo = record.get("period_start", record.get("first_bar", ""))[:10]
    hi = record.get("period_end", record.get("last_bar", ""))[:10]
    end = "(excluded)" if "period_end" in record else ""
    return f"{lo} .. {hi}{end and ' ' + end}, {record['n_bars']} bars: {record['reason']}"


def execution_text(config: WalkForwardConfig) -> str:
    """When each fold's weights are traded, for people."""
    if config.execution_delay:
        return "weights traded at the close of each test window's first bar (walkforward.execution_delay: 1)"
    return "weights traded at the close of the last bar before each test window (walkforward.execution_delay: 0)"


def make_folds(index: pd.DatetimeIndex, config: WalkForwardConfig) -> list[Fold]:
    """The walk-forward folds of a price index (:func:`plan_folds` without the windows left out)."""
    return plan_folds(index, config).folds


def fold_seed(seed: int, fold: int) -> int:
    """The evolution seed of fold ``fold``: derived from the run's seed and the fold number (SeedSequence), so
    folds are independent of each other and of where they run."""
    words = np.random.SeedSequence([int(seed), int(fold)]).generate_state(2, dtype=np.uint32)
    return int((int(words[0]) << 31) ^ int(words[1])) & (2**63 - 1)


def fold_config(config, fold: int):
    """The configuration one fold evolves with: the run's, with the fold's seed and no holdout (the fold's test
    window is its out-of-sample part)."""
    ev = dataclasses.replace(config.evolution, seed=fold_seed(config.evolution.seed, fold), holdout=0)
    return dataclasses.replace(config, evolution=ev)

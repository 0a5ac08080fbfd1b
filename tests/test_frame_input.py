"""simulate() as users call it, a DataFrame each call: the frame is checked on every call (nothing is cached on the
frame object, which the user may change in place between calls), but what is pure in the timestamps alone (the calendar
read from them: bars per year, weekends, holes) is read once per distinct content of the index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.backtest.simulate import score, simulate
from genetic_sizer.data import calendar
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import DataError
from tests.conftest import make_prices, random_weights


@pytest.fixture
def frame():
    p = make_prices(400, 5, seed=3, freq="B")
    return p.to_frame()


def _counting(monkeypatch):
    calls = []
    real = calendar._read_calendar

    def counted(*args):
        calls.append(args[0].copy())
        return real(*args)

    monkeypatch.setattr(calendar, "_read_calendar", counted)
    monkeypatch.setattr(calendar, "_READ", {})
    monkeypatch.setattr(calendar, "_BY_INDEX", calendar.IndexMemo())  # the calendars of index objects already seen
    return calls


def test_the_calendar_of_a_frame_is_read_once_per_index_content(frame, monkeypatch):
    calls = _counting(monkeypatch)
    w = random_weights(6, 5, seed=1)
    first = simulate(frame, w, fees=0.001)
    again = simulate(frame, w, fees=0.001)
    copy = simulate(frame.copy(deep=True), w, fees=0.001)  # another object, the same content
    assert len(calls) == 1
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, copy)
    assert score(frame, w)["sharpe"].shape == (6,) and len(calls) == 1


def test_a_frame_changed_in_place_between_calls_is_simulated_as_it_now_is(frame, monkeypatch):
    """The user's frame is mutable: new timestamps (daily -> weekly spacing: other bars per year and rebalance bars),
    new prices, a bad price: each call sees the frame as it is, as a fresh frame would be seen."""
    calls = _counting(monkeypatch)
    w = random_weights(4, 5, seed=2)
    before = simulate(frame, w, rebalance="M", fees=0.001)
    ppy_before = score(frame, w)["annualized_return"]
    held = Prices.from_frame(frame)
    kept = held.close.copy()

    frame.index = pd.date_range("2001-01-05", periods=len(frame), freq="W-FRI", tz="UTC")  # the same object, new bars
    frame.iloc[::7, 2] *= 1.05  # and new prices, in place
    after = simulate(frame, w, rebalance="M", fees=0.001)
    fresh = frame.copy(deep=True)
    np.testing.assert_array_equal(after, simulate(fresh, w, rebalance="M", fees=0.001))
    assert not np.array_equal(after, before)
    assert len(calls) == 2  # the new timestamps were read
    np.testing.assert_array_equal(held.close, kept)  # prices read before the change keep their values
    p = Prices.from_frame(fresh)
    assert p.periods_per_year == pytest.approx(365.25 / 7)
    np.testing.assert_array_equal(score(frame, w)["annualized_return"], score(p, w)["annualized_return"])
    assert not np.array_equal(score(frame, w)["annualized_return"], ppy_before)

    frame.iloc[10, 1] = np.nan  # a hole is still refused on the next call
    with pytest.raises(DataError, match="A01"):
        simulate(frame, w)


def test_the_calendar_cache_is_bounded_and_keyed_by_offsets_too(monkeypatch):
    calls = _counting(monkeypatch)
    monkeypatch.setattr(calendar, "_READ_SIZE", 3)
    idx = pd.date_range("2024-01-01", periods=50, freq="D", tz="UTC")
    for k in range(5):
        calendar.read_calendar(idx + pd.Timedelta(days=k))
    assert len(calls) == 5 and len(calendar._READ) == 3
    calendar.read_calendar(idx + pd.Timedelta(days=4))  # still held
    assert len(calls) == 5
    calendar.read_calendar(idx)  # dropped: read again
    assert len(calls) == 6
    tokyo = calendar.read_calendar(idx, np.full(50, 9 * 3600))  # the same instants on another calendar
    assert len(calls) == 7 and tokyo.notes[0] != calendar.read_calendar(idx).notes[:1]
    assert calendar.read_calendar(idx, periods_per_year=260.0) is not None and len(calls) == 8


def test_a_frame_with_text_columns_is_still_read_and_its_bad_cells_named():
    idx = pd.date_range("2024-01-01", periods=10, freq="D", tz="UTC")
    good = pd.DataFrame({"A": np.linspace(10, 11, 10), "B": [f"{x:.2f}" for x in np.linspace(5, 6, 10)]}, index=idx)
    p = Prices.from_frame(good)
    np.testing.assert_allclose(p.close[:, 1], np.round(np.linspace(5, 6, 10), 2))
    assert good["B"].dtype == object or str(good["B"].dtype).startswith("str")  # the caller's frame untouched
    bad = good.copy()
    bad.iloc[4, 1] = "n/a"
    with pytest.raises(DataError, match=r"price of 'B' at 2024-01-05.* is not a number: 'n/a'"):
        Prices.from_frame(bad)


@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Tokyo"])
def test_calendar_rebalance_bars_equal_pandas_calendar_fields(tz):
    """The day, week, month and quarter of each bar (integer arithmetic on the timestamps for naive and UTC indexes)
    are those of pandas' calendar fields, before 1970, across DST and in every unit of time."""
    from genetic_sizer.backtest.schedule import rebalance_mask

    rng = np.random.default_rng(0)
    for start, freq, n in (("1965-12-25 23:00", "7h", 3000), ("1999-12-31", "B", 600), ("2020-03-01", "17min", 9000)):
        for unit in ("ns", "us", "s"):
            full = pd.date_range(start, periods=n, freq=freq, tz=tz).as_unit(unit)
            idx = full[np.sort(rng.choice(n, n // 2, replace=False))]
            day = idx.normalize()
            keys = {
                "D": day.asi8,
                "W": (day - pd.to_timedelta(idx.day_of_week, unit="D")).asi8,
                "M": idx.year.to_numpy() * 12 + idx.month.to_numpy(),
                "Q": idx.year.to_numpy() * 4 + idx.quarter.to_numpy(),
            }
            for code, key in keys.items():
                want = np.r_[True, key[1:] != key[:-1]]
                np.testing.assert_array_equal(rebalance_mask(idx, code), want, err_msg=f"{start} {unit} {code}")


def test_an_index_object_is_read_and_checked_once_and_its_entry_leaves_with_it(monkeypatch):
    """A pandas index is immutable: reading it as UTC and checking it (sorted, no duplicates) is done once per object,
    the UTC index given back is the same object each time (so the calendar and the rebalance masks cached per index
    object are found), a refused index is refused on every call, and an entry leaves with its index."""
    import gc

    from genetic_sizer.backtest import schedule
    from genetic_sizer.data import times

    reads, masks = [], []
    real_read, real_mask = times.as_utc_index, schedule._calendar_mask
    monkeypatch.setattr(times, "as_utc_index", lambda *a: reads.append(1) or real_read(*a))
    monkeypatch.setattr(schedule, "_calendar_mask", lambda *a: masks.append(1) or real_mask(*a))
    naive = pd.date_range("2020-01-01", periods=300, freq="D")  # naive: read as UTC, a new index
    frame = pd.DataFrame(np.linspace(1.0, 2.0, 600).reshape(300, 2), index=naive, columns=["A", "B"])
    w = np.array([[0.5, 0.5], [0.2, 0.8]])
    first = simulate(frame, w, rebalance="M")
    utc, how = times.valid_utc_index(naive, "x")
    assert how is None and str(utc.tz) == "UTC" and times.valid_utc_index(utc, "x")[0] is utc
    np.testing.assert_array_equal(simulate(frame, w, rebalance="M"), first)
    assert len(reads) == 1 and len(masks) == 1
    frame.iloc[100, 0] *= 1.5  # the values are read on every call: the change is seen
    assert not np.array_equal(simulate(frame, w, rebalance="M"), first)

    unsorted = naive[::-1]
    for _ in range(2):
        with pytest.raises(DataError, match="not sorted"):
            times.valid_utc_index(unsorted, "x")
    assert (id(unsorted), "utc") not in times._VALID

    key, utc_key = id(naive), id(utc)
    del frame, naive, utc
    gc.collect()
    assert (key, "utc") not in times._VALID and (utc_key, "utc") not in times._VALID


def test_the_calendar_of_an_index_object_is_read_once_and_equals_the_content_read(monkeypatch):
    keys = []
    real = calendar._content_key
    monkeypatch.setattr(calendar, "_content_key", lambda *a: keys.append(1) or real(*a))
    monkeypatch.setattr(calendar, "_BY_INDEX", calendar.IndexMemo())
    idx = pd.date_range("2021-01-04", periods=200, freq="B", tz="UTC")
    cal = calendar.read_calendar(idx)
    assert calendar.read_calendar(idx) is cal and len(keys) == 1  # the same object: not even hashed again
    other = calendar.read_calendar(idx.copy(deep=True))
    assert other == cal and len(keys) == 2  # another object with the same content: hashed, found by content
    assert calendar.read_calendar(idx, around_the_clock=True).periods_per_year == pytest.approx(365.0)
    assert calendar.read_calendar(idx) is cal

"""The data's own calendar (issue 22, items 1, 4 and 5): bars per year from calendar months, quarters and years; a
few weekend bars do not make a weekday market 24/7; timestamps are read in the UTC offset they were written with
(weekdays, bars per day, calendar rebalances); holes far longer than the usual spacing are noted and warned about."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.backtest.metrics import compute_metrics
from genetic_sizer.backtest.schedule import rebalance_mask
from genetic_sizer.backtest.simulate import backtest
from genetic_sizer.cli.main import main
from genetic_sizer.data.calendar import infer_periods_per_year, read_calendar
from genetic_sizer.data.loaders import load, load_csv, load_default
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import DataError, DataWarning


def _walk(n: int, seed: int = 0, drift: float = 0.0008) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(drift, 0.01, (n, 2)), axis=0))


def _csv(tmp_path, name: str, stamps, seed: int = 0):
    close = _walk(len(stamps), seed)
    path = tmp_path / name
    pd.DataFrame({"Date": list(stamps), "A": close[:, 0], "B": close[:, 1]}).to_csv(path, index=False)
    return path


def _load_quietly(path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prices = load_csv(path, **kw)
    return prices, [w for w in caught if issubclass(w.category, DataWarning)]


BDAYS = pd.bdate_range("2019-01-01", "2023-12-29")  # five years of weekdays, 1304 bars


# ---------------------------------------------------------------------------- item 1: calendar frequencies
@pytest.mark.parametrize(
    ("freq", "expected"),
    [
        ("ME", 12.0),  # month-end: the median spacing (31 days) gave 365.25 / 31 = 11.78
        ("MS", 12.0),  # month-start
        ("BME", 12.0),  # last business day of the month
        ("BMS", 12.0),
        ("SMS", None),  # twice a month: not monthly (calendar time, 24.35)
        ("QE", 4.0),  # quarter-end: 365.25 / 92 = 3.97
        ("QS", 4.0),  # quarter-start: 365.25 / 91 = 4.01
        ("BQE", 4.0),
        ("6ME", 2.0),
        ("YE", 1.0),  # 365.25 / 365 = 1.0007
        ("YS", 1.0),
        ("BYS", 1.0),  # the first business day of each year: 365 or 366 days apart, not always the same date
    ],
)
def test_calendar_periods_give_whole_periods_a_year(freq, expected):
    idx = pd.date_range("1990-01-01", periods=40, freq=freq, tz="UTC")
    got = infer_periods_per_year(idx)
    if expected is None:
        assert got == pytest.approx(365.25 / np.median(np.diff(idx.as_unit("ns").asi8) / 86400e9))
    else:
        assert got == expected


def test_month_end_closes_annualize_with_twelve_months():
    """Sharpe and CAGR of month-end data: mean / std x sqrt(12) and growth ^ (12 / n), by hand."""
    idx = pd.date_range("2000-01-31", periods=121, freq="BME", tz="UTC")
    close = _walk(121, seed=3, drift=0.01)
    prices = Prices(close, idx, ("A", "B"))
    assert prices.periods_per_year == 12.0
    bt = backtest(prices, [1.0, 0.0], rebalance="once")
    m = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=prices.periods_per_year)
    r = np.diff(np.r_[10_000.0, bt.value[:, 0]]) / np.r_[10_000.0, bt.value[:-1, 0]]
    assert m["sharpe"][0] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(12), rel=1e-12)
    assert m["cagr"][0] == pytest.approx((bt.value[-1, 0] / 10_000.0) ** (12 / r.size) - 1, rel=1e-12)


@pytest.mark.parametrize(
    ("days", "expected"),
    [(28, 365.25 / 28), (35, 365.25 / 35), (21, 365.25 / 21), (14, 365.25 / 14), (7, 365.25 / 7)],
    ids=["4-weekly", "5-weekly", "3-weekly", "2-weekly", "weekly"],
)
def test_regular_spacings_that_are_not_months_keep_calendar_time(days, expected):
    idx = pd.date_range("2000-01-07", periods=60, freq=f"{days}D", tz="UTC")
    assert infer_periods_per_year(idx) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("idx", "expected"),
    [
        (pd.date_range("2024-01-01", periods=200, freq="3D", tz="UTC"), 365 / 3),  # Hyperliquid's 3d candles
        (pd.date_range("2024-01-01", periods=400, freq="18h", tz="UTC"), 365 * 24 / 18),
        (pd.bdate_range("2024-01-01", periods=400, tz="UTC")[::2], 252 / 2),  # every other trading day
        (pd.date_range("2024-01-01", periods=400, freq="D", tz="America/New_York"), 365),  # 23 h and 25 h at DST
    ],
    ids=["24/7 3-day", "24/7 18-hour", "weekdays 2-day", "24/7 daily DST"],
)
def test_bars_more_than_a_day_apart_are_not_daily_bars(idx, expected):
    """Bars 0.75 day apart or more used to count as daily bars: 365 (24/7) or 252 a year whatever the spacing."""
    assert infer_periods_per_year(idx) == pytest.approx(expected, rel=1e-12)


def test_an_intraday_window_too_short_to_show_a_weekend_says_what_it_assumed():
    """60 hourly bars Wednesday to Friday: 252 x 24 = 6048 (it could be a 24x5 market), and the note says so and
    names data.periods_per_year with the 24/7 value."""
    idx = pd.date_range("2024-01-03", periods=60, freq="h", tz="UTC")  # Wed 00:00 .. Fri 11:00
    close = _walk(60)
    p = Prices.from_frame(pd.DataFrame(close, index=idx, columns=["A", "B"]))
    assert p.periods_per_year == 6048.0
    (note,) = p.notes
    assert note.startswith("the window (Wed 2024-01-03 00:00 .. Fri 2024-01-05 11:00) holds no Saturday or Sunday")
    assert "252 days x 24 bars a day = 6048 bars a year" in note
    assert "set data.periods_per_year: 8760 (365 days x 24 h / the 1 hour spacing)" in note
    # the same bars with a weekend in the window: 24/7, nothing assumed
    week = pd.date_range("2024-01-03", periods=24 * 4 + 2, freq="h", tz="UTC")  # to Sat 01:00
    q = Prices.from_frame(pd.DataFrame(_walk(week.size), index=week, columns=["A", "B"]))
    assert q.periods_per_year == 8760.0 and q.notes == ()
    # said otherwise: no note about what was not assumed
    r = Prices.from_frame(pd.DataFrame(close, index=idx, columns=["A", "B"]), periods_per_year=8760)
    assert r.periods_per_year == 8760.0 and r.notes == ()


# ---------------------------------------------------------------------------- item 4: weekend bars, offsets
def test_one_stray_saturday_does_not_make_equities_24_7(tmp_path):
    stamps = BDAYS.append(pd.DatetimeIndex(["2021-03-06"])).sort_values().strftime("%Y-%m-%d")
    prices, caught = _load_quietly(_csv(tmp_path, "sat.csv", stamps))
    assert prices.periods_per_year == 252.0  # was 365
    note = next(n for n in prices.notes if "Saturday or Sunday" in n)
    assert note.startswith("1 of 1305 bars (0.1%) fall on a Saturday or Sunday, fewer than the 10.0% of a market")
    assert "252 bars a year (set data.periods_per_year to override). Weekend bars: Sat 2021-03-06" in note
    assert [str(w.message) for w in caught] == [f"{tmp_path / 'sat.csv'}: {note}"]


def test_ten_percent_of_bars_on_weekends_make_a_market_24_7():
    """The threshold: 24/7 data has 2/7 of its bars on weekends; at least 10% over whole weeks is 24/7."""
    days = pd.date_range("2024-01-01", periods=7 * 20, freq="D", tz="UTC")  # 20 whole weeks
    weekday = days[days.day_of_week < 5]
    weekend = days[days.day_of_week >= 5]

    def ppy(n_weekend):  # the last weekend bars (both days; the window ends on a Sunday: whole weeks)
        return infer_periods_per_year(weekday.append(weekend[weekend.size - n_weekend :]).sort_values())

    n = weekday.size  # 100
    need = math.ceil(0.10 / 0.9 * n)  # k / (n + k) >= 10%: 12 weekend bars
    assert ppy(need - 1) == 252.0 and ppy(need) == 365.0 and ppy(weekend.size) == 365.0


def test_offset_timestamps_are_judged_on_their_own_days(tmp_path):
    """Daily bars stamped at midnight +09:00 are Monday to Friday in Tokyo, Sunday to Thursday in UTC: 252 a year,
    the offset kept, and the note says so."""
    stamps = BDAYS.strftime("%Y-%m-%dT00:00:00+09:00")
    prices, caught = _load_quietly(_csv(tmp_path, "jst.csv", stamps))
    assert prices.periods_per_year == 252.0 and caught == []  # was 365
    assert prices.index[0] == pd.Timestamp("2018-12-31 15:00", tz="UTC")  # the instants stay UTC
    assert prices.utc_offset.tolist() == [32400] * BDAYS.size
    assert (prices.calendar_index == BDAYS).all()
    assert prices.provenance()["utc_offset"] == "+09:00"
    assert (
        "timestamps written with a UTC offset (+09:00): days, weekdays and months (the weekend test, bars per day, "
        "calendar rebalances) are those of that local time" in prices.notes
    )
    # the same instants written in UTC: bars on Sunday, none on Saturday, so not 24/7 either; the note says why
    utc, caught = _load_quietly(_csv(tmp_path, "utc.csv", pd.DatetimeIndex(prices.index).strftime("%Y-%m-%dT%H:%MZ")))
    assert utc.periods_per_year == 252.0 and utc.utc_offset is None
    note = next(n for n in utc.notes if "Saturday or Sunday" in n)
    assert note.startswith("260 of 1304 bars (19.9%) fall on a Saturday or Sunday, but none on a Saturday")
    assert "every one a Sunday" in note and len(caught) == 1


def test_cagr_and_sharpe_of_offset_daily_bars_use_252_days(tmp_path):
    """The issue's figures: a CAGR of 22.0% annualized at 365 instead of 252 is 1.22 ** (365 / 252) - 1 = 33.4%, and
    the Sharpe ratio is sqrt(365 / 252) = 1.2035 times too large (1.35 -> 1.62)."""
    stamps = BDAYS.strftime("%Y-%m-%dT00:00:00+09:00")
    prices, _ = _load_quietly(_csv(tmp_path, "jst.csv", stamps, seed=5))
    bt = backtest(prices, [0.5, 0.5], rebalance="M")
    m = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=prices.periods_per_year)
    at365 = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=365.0)
    growth = bt.value[-1, 0] / 10_000.0
    assert m["cagr"][0] == pytest.approx(growth ** (252 / BDAYS.size) - 1, rel=1e-12)
    assert (1 + at365["cagr"][0]) == pytest.approx((1 + m["cagr"][0]) ** (365 / 252), rel=1e-12)
    assert at365["sharpe"][0] / m["sharpe"][0] == pytest.approx(math.sqrt(365 / 252), rel=1e-12)
    assert 1.22 ** (365 / 252) - 1 == pytest.approx(0.334, abs=5e-4) and math.sqrt(365 / 252) * 1.35 == pytest.approx(
        1.62, abs=5e-3
    )


def test_calendar_rebalances_follow_the_local_calendar(tmp_path):
    """Monthly and weekly rebalances of +09:00 data fall on the first local trading day of each month and week (in
    UTC the first bar of April, Monday 1 April in Tokyo, is still in March)."""
    stamps = BDAYS.strftime("%Y-%m-%dT00:00:00+09:00")
    prices, _ = _load_quietly(_csv(tmp_path, "jst.csv", stamps))
    local = BDAYS
    for policy, key in (("M", local.year * 12 + local.month), ("W", local.to_period("W-SUN").asi8)):
        key = np.asarray(key)
        want = np.r_[True, key[1:] != key[:-1]]  # the first bar of each local month / week, a plain loop's answer
        bt = backtest(prices, [0.5, 0.5], rebalance=policy)
        np.testing.assert_array_equal(bt.rebalance[:, 0], want)
        assert not np.array_equal(rebalance_mask(prices.index, policy), want)  # UTC puts them a bar late
    april = np.flatnonzero(backtest(prices, [0.5, 0.5], rebalance="M").rebalance[:, 0])
    assert pd.Timestamp("2019-04-01") in set(local[april])


def test_utc_data_is_read_as_before():
    """The embedded data (UTC midnight, no weekends): 252 bars a year, no offset, the calendar index is the index
    itself (the same masks, bit for bit), no notes."""
    p = load_default()
    assert p.periods_per_year == 252.0 and p.utc_offset is None and p.calendar_index is p.index and p.notes == ()
    explicit = Prices(p.close[:50], p.index[:50], p.symbols, utc_offset=0)
    assert explicit.utc_offset is None and explicit.sha256() == p.bars(0, 50).sha256()


def test_a_timezone_aware_index_keeps_its_offsets_and_they_travel():
    idx = pd.date_range("2024-03-04", periods=40, freq="B", tz="America/New_York")  # DST starts 10 March
    p = Prices(_walk(40), idx, ("A", "B"))
    assert p.utc_offset[0] == -5 * 3600 and p.utc_offset[-1] == -4 * 3600
    assert p.provenance()["utc_offset"] == "-05:00/-04:00"
    assert (p.calendar_index == idx.tz_localize(None)).all()
    w = p.bars(5, 20)
    np.testing.assert_array_equal(w.utc_offset, p.utc_offset[5:20])
    s = p.select(start="2024-03-11")
    np.testing.assert_array_equal(s.utc_offset, p.utc_offset[5:])
    assert p.sha256() != Prices(p.close, p.index, p.symbols, utc_offset=0).sha256()


def test_intraday_sessions_are_counted_on_local_days():
    """Hourly bars of a 10:00-16:00 session at +11:00 start on the previous UTC day (Monday's first bar is Sunday
    23:00 UTC): on its own days it is a weekday market of 7 bars a day."""
    days = pd.bdate_range("2024-01-08", periods=20)
    local = pd.DatetimeIndex([d + pd.Timedelta(hours=h) for d in days for h in range(10, 17)])
    idx = local.tz_localize("+11:00")
    p = Prices(_walk(local.size), idx, ("A", "B"))
    assert p.periods_per_year == 252 * 7
    assert infer_periods_per_year(idx.tz_convert("UTC")) == 252 * 7  # in UTC 1 of 7 bars is a weekend bar
    assert read_calendar(idx).notes[0].startswith("timestamps written with a UTC offset (+11:00)")


def test_bad_offsets_are_refused():
    idx = pd.bdate_range("2024-01-01", periods=5, tz="UTC")
    with pytest.raises(DataError, match=r"memory: utc_offset of bar 0 is 72000\.0: whole seconds east of UTC"):
        Prices(_walk(5), idx, ("A", "B"), utc_offset=20 * 3600)
    with pytest.raises(DataError, match=r"utc_offset must be seconds east of UTC, one per bar \(5\)"):
        Prices(_walk(5), idx, ("A", "B"), utc_offset=[3600, 3600])
    assert Prices(_walk(5), idx, ("A", "B"), utc_offset=pd.Timedelta(hours=9)).utc_offset.tolist() == [32400] * 5


# ---------------------------------------------------------------------------- item 5: holes
def test_a_four_month_hole_is_noted_and_warned(tmp_path):
    stamps = BDAYS[(BDAYS < "2020-03-01") | (BDAYS > "2020-07-01")].strftime("%Y-%m-%d")
    prices, caught = _load_quietly(_csv(tmp_path, "hole.csv", stamps))
    assert prices.periods_per_year == 252.0
    note = (
        "hole in the data: no bar between 2020-02-28 and 2020-07-02 (125 days; 88 weekdays without a bar): the "
        "move across it counts as one bar's return"
    )
    assert note in prices.notes
    assert [str(w.message) for w in caught] == [f"{tmp_path / 'hole.csv'}: {note}"]
    # a window of it is not warned about again, and keeps the note
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert note in prices.select(start="2020-01-01").notes


def test_holidays_nights_and_weekends_are_not_holes():
    """Exchange closures (9/11: four weekdays, Christmas, New Year) in the embedded data are no holes, nor are nights
    and weekends of intraday sessions; ten weekdays without a bar are."""
    assert load_default().notes == ()
    days = pd.bdate_range("2024-01-01", periods=60)
    session = pd.DatetimeIndex(
        [d + pd.Timedelta(hours=14, minutes=30) + pd.Timedelta(hours=h) for d in days for h in range(7)]
    )
    assert read_calendar(session.tz_localize("UTC")).notes == ()
    kept = days.delete(slice(20, 29))  # nine weekdays without a bar: not yet a hole
    assert read_calendar(kept.tz_localize("UTC")).notes == ()
    cut = days.delete(slice(20, 30))
    (note,) = read_calendar(cut.tz_localize("UTC")).notes
    assert note.startswith("hole in the data: no bar between 2024-01-26 and 2024-02-12 (17 days; 10 weekdays")


@pytest.mark.parametrize(
    ("idx", "note"),
    [
        (
            pd.date_range("2024-01-01", periods=24 * 20, freq="h", tz="UTC").delete(slice(100, 130)),
            "no bar between 2024-01-05 03:00 and 2024-01-06 10:00 (1.3 days; 30 bars missing at the usual spacing)",
        ),
        (
            pd.date_range("2000-01-31", periods=60, freq="ME", tz="UTC").delete([10, 11, 12]),
            "no bar between 2000-10-31 and 2001-02-28 (120 days; 3 months missing)",
        ),
        (
            pd.date_range("2000-01-07", periods=60, freq="W-FRI", tz="UTC").delete([30, 31]),
            "no bar between 2000-07-28 and 2000-08-18 (21 days; 2 bars missing at the usual spacing)",
        ),
    ],
    ids=["24/7 hourly", "monthly", "weekly"],
)
def test_holes_in_other_calendars(idx, note):
    (got,) = read_calendar(idx).notes
    assert got == f"hole in the data: {note}: the move across it counts as one bar's return"


def test_many_holes_are_counted_after_the_first_five():
    days = pd.bdate_range("2000-01-03", periods=400)
    keep = np.ones(days.size, dtype=bool)
    for k in range(7):
        keep[20 + 50 * k : 20 + 50 * k + 12 + k] = False  # 12 .. 18 weekdays without a bar
    notes = read_calendar(days[keep].tz_localize("UTC")).notes
    assert len(notes) == 6 and all(n.startswith("hole in the data") for n in notes[:5])
    assert notes[5].startswith("and 2 more holes (7 in all; the longest: ")


def test_data_info_prints_the_notes_and_warns(tmp_path, capsys):
    stamps = BDAYS[(BDAYS < "2020-03-01") | (BDAYS > "2020-07-01")].append(pd.DatetimeIndex(["2021-03-06"]))
    path = _csv(tmp_path, "both.csv", stamps.sort_values().strftime("%Y-%m-%d"))
    assert main(["data", "info", "--source", "csv", "--path", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "periods/year     252\n" in out
    assert "read             hole in the data: no bar between 2020-02-28 and 2020-07-02 (125 days" in out
    assert f"read             1 of {stamps.size} bars (0.1%) fall on a Saturday or Sunday" in out
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"warning: {path}: ") for line in lines)
    assert "Weekend bars: Sat 2021-03-06" in lines[0] and "no bar between 2020-02-28 and 2020-07-02" in lines[1]


def test_hyperliquid_files_stay_24_7_and_note_their_holes(tmp_path):
    from genetic_sizer.data.loaders import save_parquet

    idx = pd.date_range("2024-12-31", periods=48, freq="h", tz="UTC").delete(slice(10, 25))  # Tue-Wed, 15 h hole
    path = save_parquet(Prices(_walk(idx.size), idx, ("BTC", "ETH"), periods_per_year=8760), tmp_path / "hl.parquet")
    with pytest.warns(DataWarning, match=r"no bar between 2024-12-31 09:00 and 2025-01-01 01:00 \(16 hours; 15 bars"):
        p = load("hyperliquid", path, funding_path=False)
    assert p.periods_per_year == 8760.0 and not any("Saturday" in n for n in p.notes)

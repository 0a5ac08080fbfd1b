"""Walk-forward folds and evolution."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from genetic_sizer.config import WalkForwardConfig
from genetic_sizer.errors import ConfigError
from genetic_sizer.walkforward import make_folds


def _days(n, start="2020-01-01"):
    return pd.date_range(start, periods=n, freq="D", tz="UTC")


def _tuples(folds):
    return [(f.train_start, f.train_end, f.test_start, f.test_end) for f in folds]


def test_rolling_folds_in_bars_by_hand():
    # 10 bars, train 3, test 2: test windows back to back, the partial last one (bar 9) dropped
    folds = make_folds(_days(10), WalkForwardConfig(train=3, test=2))
    assert _tuples(folds) == [(0, 2, 3, 4), (2, 4, 5, 6), (4, 6, 7, 8)]
    assert [f.number for f in folds] == [0, 1, 2]


def test_purge_and_anchored_folds_by_hand():
    folds = make_folds(_days(10), WalkForwardConfig(train=3, test=2, purge=1))
    # one bar purged between each train window's end and its test window's start (skfolio's purged_size)
    assert _tuples(folds) == [(0, 2, 4, 5), (2, 4, 6, 7), (4, 6, 8, 9)]
    folds = make_folds(_days(10), WalkForwardConfig(train=3, test=2, anchored=True))
    assert _tuples(folds) == [(0, 2, 3, 4), (0, 4, 5, 6), (0, 6, 7, 8)]


def test_calendar_folds_start_each_test_year_on_its_first_bar():
    index = pd.bdate_range("2015-01-01", "2021-01-05", tz="UTC")
    folds = make_folds(index, WalkForwardConfig(train="2Y", test="1Y"))
    starts = [index[f.test_start] for f in folds]
    assert [t.year for t in starts] == [2017, 2018, 2019, 2020]  # 2021 is partial: dropped
    # a year whose last bars are missing is a partial window too (skfolio needs the next period's start)
    short = make_folds(index[index <= "2020-12-30"], WalkForwardConfig(train="2Y", test="1Y"))
    assert [index[f.test_start].year for f in short] == [2017, 2018, 2019]
    for f, t in zip(folds, starts, strict=True):
        assert t == index[index.year == t.year][0]  # first bar of the year
        assert index[f.test_end] == index[index.year == t.year][-1]  # through its last bar
        assert f.train_end == f.test_start - 1  # no purge: train ends on the bar before
        assert index[f.train_start] >= t - pd.DateOffset(years=2) - pd.Timedelta(days=4)
    for a, b in itertools.pairwise(folds):
        assert b.test_start == a.test_end + 1  # back to back, no overlap


def test_fold_bounds_are_iso_timestamps():
    index = _days(10)
    (f, *_) = make_folds(index, WalkForwardConfig(train=3, test=2))
    assert f.bounds(index) == {
        "train_start": "2020-01-01T00:00:00+00:00",
        "train_end": "2020-01-03T00:00:00+00:00",
        "test_start": "2020-01-04T00:00:00+00:00",
        "test_end": "2020-01-05T00:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (WalkForwardConfig(train=8, test=3), "does not fit in the data"),
        (WalkForwardConfig(train=9, test=1, purge=1), "walkforward:"),
        (WalkForwardConfig(train=2, test=2), "at least 3 are needed"),
    ],
)
def test_windows_that_do_not_fit_are_named_errors(cfg, message):
    with pytest.raises(ConfigError, match=message):
        make_folds(_days(10), cfg)

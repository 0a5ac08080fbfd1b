"""The data layer: loaders, selection, validation errors and annualization."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.data import (
    Prices,
    infer_periods_per_year,
    load,
    load_csv,
    load_default,
    load_parquet,
    save_parquet,
)
from genetic_sizer.errors import ConfigError, DataError

from .conftest import make_prices


def _wide(n=6, start="2024-01-01"):
    idx = pd.date_range(start, periods=n, freq="D")
    return pd.DataFrame({"time": idx, "BTC": np.linspace(100, 105, n), "ETH": np.linspace(10, 12, n)})


# ------------------------------------------------------------------ loaders
def test_default_dataset_is_the_skfolio_sp500(sp500):
    assert sp500.n_assets == 20
    assert sp500.symbols[:3] == ("AAPL", "AMD", "BAC")
    assert sp500.index[0] == pd.Timestamp("1990-01-02", tz="UTC")
    assert sp500.index[-1] == pd.Timestamp("2022-12-28", tz="UTC")
    assert sp500.close.dtype == np.float64 and sp500.close.flags.c_contiguous
    assert sp500.periods_per_year == 252.0  # weekday data
    assert str(sp500.index.tz) == "UTC"


def test_default_select_symbols_and_window():
    p = load_default(symbols=["MSFT", "AAPL"], start="2015-01-01", end="2015-12-31")
    assert p.symbols == ("MSFT", "AAPL")
    assert p.index[0] == pd.Timestamp("2015-01-02", tz="UTC")
    assert p.index[-1] == pd.Timestamp("2015-12-31", tz="UTC")
    assert p.n_bars == 252


def test_csv_wide_and_long_forms_load_the_same(tmp_path):
    wide = _wide()
    wide.to_csv(tmp_path / "wide.csv", index=False)
    long = wide.melt(id_vars="time", var_name="symbol", value_name="close").sample(frac=1, random_state=1)
    long = long.sort_values("time", kind="stable")
    long.to_csv(tmp_path / "long.csv", index=False)
    a = load_csv(tmp_path / "wide.csv")
    b = load_csv(tmp_path / "long.csv", symbols=["BTC", "ETH"])
    assert a.symbols == ("BTC", "ETH")
    np.testing.assert_array_equal(a.close, b.close)
    assert (a.index == b.index).all()
    assert a.close[2, 1] == pytest.approx(10.8)


def test_parquet_round_trip_wide_and_long(tmp_path):
    p = make_prices(50, 3, seed=4)
    path = save_parquet(p, tmp_path / "p.parquet")
    q = load_parquet(path)
    np.testing.assert_array_equal(p.close, q.close)
    assert q.symbols == p.symbols and (q.index == p.index).all()
    assert q.sha256() == p.sha256()
    long = (
        p.to_frame()
        .rename_axis("timestamp")
        .reset_index()
        .melt(id_vars="timestamp", var_name="coin", value_name="close")
    )
    long.to_parquet(tmp_path / "long.parquet")
    r = load(source="parquet", path=tmp_path / "long.parquet")
    np.testing.assert_array_equal(p.close, r.close)


def test_load_dispatch_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"data.source"):
        load(source="excel")
    with pytest.raises(ConfigError, match=r"data.path is required"):
        load(source="csv")
    with pytest.raises(DataError, match="no such file"):
        load(source="csv", path=tmp_path / "missing.csv")


def test_sha256_identifies_the_data():
    a, b = make_prices(30, 2, seed=1), make_prices(30, 2, seed=2)
    assert a.sha256() == make_prices(30, 2, seed=1).sha256()
    assert a.sha256() != b.sha256()
    prov = a.provenance()
    assert prov["n_bars"] == 30 and prov["close_sha256"] == a.sha256()


# ------------------------------------------------------------- validation
def test_unsorted_timestamps_name_file_and_timestamp(tmp_path):
    df = _wide()
    df.loc[[2, 3], "time"] = df.loc[[3, 2], "time"].to_numpy()
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad\.csv: timestamps are not sorted: 2024-01-03"):
        load_csv(tmp_path / "bad.csv")


def test_duplicate_timestamp(tmp_path):
    df = _wide()
    df.loc[4, "time"] = df.loc[3, "time"]
    df.to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(DataError, match=r"dup\.csv: duplicate timestamp 2024-01-04"):
        load_csv(tmp_path / "dup.csv")


def test_duplicate_timestamp_in_long_form(tmp_path):
    long = _wide().melt(id_vars="time", var_name="symbol", value_name="close")
    long = pd.concat([long, long.iloc[[3]]])
    long.to_csv(tmp_path / "long.csv", index=False)
    with pytest.raises(DataError, match=r"duplicate timestamp 2024-01-04.*'BTC'"):
        load_csv(tmp_path / "long.csv")


@pytest.mark.parametrize(
    ("value", "what"),
    [(0.0, "not positive"), (-3.0, "not positive"), (np.inf, "not finite"), (np.nan, "NaN")],
)
def test_bad_price_names_symbol_and_timestamp(tmp_path, value, what):
    df = _wide()
    df.loc[3, "ETH"] = value
    df.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(DataError, match=rf"p\.csv: price of 'ETH' at 2024-01-04T00:00:00\+00:00 is .*{what}"):
        load_csv(tmp_path / "p.csv")


def test_bad_price_outside_window_is_ignored(tmp_path):
    df = _wide(10)
    df.loc[0, "ETH"] = -1.0
    df.to_csv(tmp_path / "p.csv", index=False)
    p = load_csv(tmp_path / "p.csv", start="2024-01-02")
    assert p.n_bars == 9


def test_non_numeric_price(tmp_path):
    df = _wide().astype({"BTC": object})
    df.loc[2, "BTC"] = "12,5x"
    df.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(DataError, match=r"'BTC' at 2024-01-03.*not a number: .12,5x."):
        load_csv(tmp_path / "p.csv")


def test_symbol_with_no_data_and_unknown_symbol(tmp_path):
    df = _wide()
    df["SOL"] = np.nan
    df.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(DataError, match="symbol 'SOL' has no data"):
        load_csv(tmp_path / "p.csv")
    with pytest.raises(DataError, match=r"symbol\(s\) \['DOGE'\] not found; available: \['BTC', 'ETH', 'SOL'\]"):
        load_csv(tmp_path / "p.csv", symbols=["BTC", "DOGE"])


def test_too_few_assets_or_bars():
    with pytest.raises(DataError, match="at least 2 assets"):
        load_default(symbols=["AAPL"])
    with pytest.raises(DataError, match="at least 3 bars, got 2"):
        load_default(start="2022-12-27")
    with pytest.raises(DataError, match="no bars in the window"):
        load_default(start="2030-01-01")
    with pytest.raises(ConfigError, match=r"start .* is after end"):
        load_default(start="2020-01-01", end="2019-01-01")


def test_leading_gaps_trim_or_error():
    idx = pd.date_range("2024-01-01", periods=8, freq="D", tz="UTC")
    frame = pd.DataFrame({"OLD": np.arange(1.0, 9.0), "NEW": [np.nan] * 3 + list(np.arange(1.0, 6.0))}, index=idx)
    p = Prices.from_frame(frame, source="f")
    assert p.trimmed_bars == 3 and p.n_bars == 5
    assert p.index[0] == idx[3]
    np.testing.assert_array_equal(p.close[:, 0], np.arange(4.0, 9.0))
    with pytest.raises(DataError, match=r"f: symbol 'NEW' has no price before 2024-01-04"):
        Prices.from_frame(frame, source="f", leading_gaps="error")
    with pytest.raises(ConfigError, match="leading_gaps"):
        Prices.from_frame(frame, leading_gaps="ffill")


def test_interior_gap_is_an_error_not_filled():
    idx = pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC")
    frame = pd.DataFrame({"A": [1.0, 2, np.nan, 4, 5, 6], "B": np.ones(6)}, index=idx)
    with pytest.raises(DataError, match=r"price of 'A' at 2024-01-03.* missing"):
        Prices.from_frame(frame, source="f")


def test_naive_and_offset_timestamps_become_utc():
    idx = pd.date_range("2024-01-01 02:00", periods=4, freq="h", tz="Europe/Paris")
    p = Prices.from_frame(pd.DataFrame({"A": np.ones(4), "B": np.ones(4)}, index=idx))
    assert p.index[0] == pd.Timestamp("2024-01-01 01:00", tz="UTC")


# ------------------------------------------------------------ annualization
@pytest.mark.parametrize(
    ("freq", "expected"),
    [("D", 365.0), ("B", 252.0), ("h", 8760.0), ("4h", 2190.0), ("W-MON", 365.25 / 7)],
)
def test_periods_per_year_inferred_from_spacing(freq, expected):
    idx = pd.date_range("2024-01-01", periods=400, freq=freq, tz="UTC")
    assert infer_periods_per_year(idx) == pytest.approx(expected)


def test_periods_per_year_override():
    p = make_prices(40, 2)
    assert p.periods_per_year == 365.0
    q = p.select(periods_per_year=None) if False else Prices(p.close, p.index, p.symbols, periods_per_year=252)
    assert q.periods_per_year == 252.0
    with pytest.raises(ConfigError, match="periods_per_year"):
        Prices(p.close, p.index, p.symbols, periods_per_year=-1)


# ---- Hyperliquid candles ------------------------------------------------------------------------------
def _candles(coin_start_ms, n, step=3_600_000, skip=(), price0=100.0):
    out = []
    for k in range(n):
        if k in skip:
            continue
        t = coin_start_ms + k * step
        out.append(
            {
                "t": t,
                "T": t + step - 1,
                "s": "X",
                "i": "1h",
                "o": "1",
                "h": "1",
                "l": "1",
                "c": str(price0 + k),
                "v": "1",
                "n": 1,
            }
        )
    return out


def test_candles_align_on_common_bars_and_report_gaps():
    from genetic_sizer.data import prices_from_candles

    t0 = 1_735_689_600_000  # 2025-01-01T00:00Z
    candles = {
        "BTC": _candles(t0, 10, skip={4}),  # one exchange gap
        "ETH": _candles(t0 + 2 * 3_600_000, 8, price0=50.0),  # listed two hours later
    }
    candles["ETH"].append(dict(candles["ETH"][0]))  # a duplicate page overlap is ignored
    prices, report = prices_from_candles(candles, "1h")
    assert prices.symbols == ("BTC", "ETH")
    # common bars: hours 2..9 minus hour 4 (BTC gap) = 7 bars
    assert prices.n_bars == 7
    assert list(prices.index.hour) == [2, 3, 5, 6, 7, 8, 9]
    assert prices.close[0].tolist() == [102.0, 50.0] and prices.close[2].tolist() == [105.0, 53.0]
    assert prices.periods_per_year == 8760  # hourly 24/7 bars
    assert report.coins["BTC"]["missing"] == 1 and report.coins["BTC"]["largest_gap_bars"] == 1
    assert report.coins["ETH"]["missing"] == 0 and report.coins["ETH"]["candles"] == 8
    assert report.dropped_bars == 3  # hours 0, 1 (ETH not listed) and 4 (BTC gap)
    assert any("3 bars dropped" in line for line in report.lines())


def test_candle_errors_name_the_coin():
    from genetic_sizer.data import prices_from_candles

    with pytest.raises(DataError, match="no candles for 'SOL'"):
        prices_from_candles({"BTC": _candles(0, 5), "SOL": []}, "1h")
    with pytest.raises(DataError, match="malformed candle for 'BTC'"):
        prices_from_candles({"BTC": [{"t": 0}], "ETH": _candles(0, 5)}, "1h")
    with pytest.raises(ConfigError, match="interval must be one of"):
        prices_from_candles({"BTC": _candles(0, 5), "ETH": _candles(0, 5)}, "7m")


def test_fetched_parquet_loads_as_hyperliquid_source(tmp_path):
    from genetic_sizer.data import load, prices_from_candles, save_parquet

    t0 = 1_735_948_800_000  # Saturday 2025-01-04: the file spans a weekend, so hourly 24/7 bars are inferred
    prices, _ = prices_from_candles({"BTC": _candles(t0, 72), "ETH": _candles(t0, 72, price0=10)}, "1h")
    path = save_parquet(prices, tmp_path / "hl.parquet")
    again = load("hyperliquid", path)
    np.testing.assert_array_equal(again.close, prices.close)
    assert again.symbols == ("BTC", "ETH") and again.periods_per_year == 8760

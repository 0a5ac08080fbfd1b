"""The data layer: loaders, selection, validation errors and annualization."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.data.funding import align_funding, funding_path_for
from genetic_sizer.data.loaders import CLOSES_ONLY, load, load_csv, load_default, load_parquet, save_parquet
from genetic_sizer.data.prices import Prices, infer_periods_per_year
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
    from genetic_sizer.data.candles import prices_from_candles

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
    from genetic_sizer.data.candles import prices_from_candles

    with pytest.raises(DataError, match="no candles for 'SOL'"):
        prices_from_candles({"BTC": _candles(0, 5), "SOL": []}, "1h")
    with pytest.raises(DataError, match="malformed candle for 'BTC'"):
        prices_from_candles({"BTC": [{"t": 0}], "ETH": _candles(0, 5)}, "1h")
    with pytest.raises(ConfigError, match="interval must be one of"):
        prices_from_candles({"BTC": _candles(0, 5), "ETH": _candles(0, 5)}, "7m")


def test_fetched_parquet_loads_as_hyperliquid_source(tmp_path):
    from genetic_sizer.data.candles import prices_from_candles
    from genetic_sizer.data.loaders import load, save_parquet

    t0 = 1_735_948_800_000  # Saturday 2025-01-04: the file spans a weekend, so hourly 24/7 bars are inferred
    prices, _ = prices_from_candles({"BTC": _candles(t0, 72), "ETH": _candles(t0, 72, price0=10)}, "1h")
    path = save_parquet(prices, tmp_path / "hl.parquet")
    again = load("hyperliquid", path)
    np.testing.assert_array_equal(again.close, prices.close)
    assert again.symbols == ("BTC", "ETH") and again.periods_per_year == 8760


# ---- epoch timestamps ----------------------------------------------------------------------------------
_T0 = pd.Timestamp("2025-01-03", tz="UTC")  # a Friday: 72 hourly bars span a weekend
_EPOCH_SCALE = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_UNIT_NAME = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def _candle_rows(n=72, coins=("BTC", "ETH"), unit="ms"):
    """Long rows shaped like Hyperliquid candles: t (open time), T (close time), s (coin), o/h/l/c, ..."""
    times = pd.date_range(_T0, periods=n, freq="h")
    rows = []
    for j, coin in enumerate(coins):
        for k, t in enumerate(times):
            t_open = int(t.value) // _EPOCH_SCALE[unit]
            t_close = (int(t.value) + 3_599_999_000_000) // _EPOCH_SCALE[unit]
            px = 100.0 * (j + 1) + k
            rows.append({"t": t_open, "T": t_close, "s": coin, "i": "1h", "o": px, "c": px, "h": px, "l": px})
    return pd.DataFrame(rows), times


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_epoch_time_column_unit_is_detected(tmp_path, unit):
    raw, times = _candle_rows(unit=unit)
    raw.to_csv(tmp_path / "candles.csv", index=False)
    p = load_csv(tmp_path / "candles.csv")
    assert p.symbols == ("BTC", "ETH")
    assert (p.index == times).all()  # the open time `t`, not the close time `T`, not 1970
    np.testing.assert_array_equal(p.close[:, 0], 100.0 + np.arange(72))
    assert p.periods_per_year == 8760.0  # hourly, 24/7 (the window has a weekend)
    assert f"time column 't' read as epoch {_UNIT_NAME[unit]}" in p.notes
    assert p.provenance()["notes"] == list(p.notes)


def test_epoch_timestamp_column_in_wide_parquet(tmp_path):
    times = pd.date_range("2024-01-01", periods=10, freq="D", tz="UTC")
    wide = pd.DataFrame(
        {"timestamp": times.as_unit("ns").asi8 // 10**6, "BTC": np.arange(1.0, 11.0), "ETH": np.arange(2.0, 12.0)}
    )
    wide.to_parquet(tmp_path / "p.parquet", index=False)
    p = load_parquet(tmp_path / "p.parquet")
    assert (p.index == times).all() and p.periods_per_year == 365.0
    assert p.notes == ("time column 'timestamp' read as epoch milliseconds", CLOSES_ONLY)


def test_epoch_numbers_that_fit_no_unit_or_mix_units_are_refused(tmp_path):
    raw, _ = _candle_rows(n=6)
    raw.loc[2, "t"] = 123_456  # no date in any unit
    raw.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad\.csv: column 't' holds 123456 \(row 2\), which is neither a date nor"):
        load_csv(tmp_path / "bad.csv")
    raw, _ = _candle_rows(n=6)
    raw.loc[4, "t"] = raw.loc[4, "t"] // 1000  # seconds among milliseconds
    raw.to_csv(tmp_path / "mixed.csv", index=False)
    with pytest.raises(
        DataError,
        match=r"mixed\.csv: column 't' mixes epoch units: row 0 is \d+ \(milliseconds\) but row 4 is \d+ \(seconds",
    ):
        load_csv(tmp_path / "mixed.csv")


def test_frame_with_epoch_index_and_misread_epochs():
    times = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC")
    frame = pd.DataFrame({"A": np.arange(1.0, 6.0), "B": np.ones(5)}, index=times.as_unit("ns").asi8 // 10**9)
    p = Prices.from_frame(frame, source="f")
    assert (p.index == times).all() and p.notes == ("time index read as epoch seconds",)
    # epoch milliseconds someone already converted as nanoseconds: bars a millisecond apart in 1970
    frame.index = pd.to_datetime(times.as_unit("ns").asi8 // 10**6)
    with pytest.raises(DataError, match=r"f: timestamps run from 1970-01-01.*epoch seconds or milliseconds"):
        Prices.from_frame(frame, source="f")


# ---- annualization of intraday sessions ----------------------------------------------------------------
def _session_index(first_bar: str, bars_per_day: int, freq: str, days: int = 60) -> pd.DatetimeIndex:
    """Intraday bars on business days only: ``bars_per_day`` bars spaced ``freq`` from ``first_bar`` (UTC)."""
    out = []
    for d in pd.bdate_range("2024-01-01", periods=days):
        out.append(pd.date_range(d + pd.Timedelta(first_bar + ":00"), periods=bars_per_day, freq=freq))
    return pd.DatetimeIndex(np.concatenate(out)).tz_localize("UTC")


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (_session_index("14:30", 7, "h"), 252 * 7),  # hourly bars of a 6.5-hour session
        (_session_index("14:30", 13, "30min"), 252 * 13),  # 30-minute bars of it
        (_session_index("14:30", 7, "h", days=2), 252 * 7),  # two days only
        (_session_index("08:00", 2, "4h"), 252 * 2),  # two bars a day: median spacing 12 h
        (_session_index("00:00", 24, "h", days=10)[5:-5], 252 * 24),  # 24x5 (FX-like), partial first/last day
        (pd.date_range("2024-01-01", periods=24 * 60, freq="h", tz="UTC"), 8760),  # 24/7 crypto
        (pd.date_range("2024-01-01", periods=300, freq="B", tz="UTC"), 252),
        (pd.date_range("2024-01-01", periods=300, freq="D", tz="UTC"), 365),
        (pd.date_range("2024-01-01", periods=100, freq="W-FRI", tz="UTC"), 365.25 / 7),
    ],
    ids=["equity-1h", "equity-30min", "equity-1h-2days", "equity-4h", "24x5-1h", "crypto-1h", "B", "D", "W"],
)
def test_periods_per_year_counts_bars_of_a_trading_day(index, expected):
    assert infer_periods_per_year(index) == pytest.approx(expected)


def test_intraday_equity_csv_and_override(tmp_path):
    idx = _session_index("14:30", 7, "h")
    wide = pd.DataFrame({"Date": idx, "SPY": np.linspace(400, 420, len(idx)), "QQQ": np.linspace(300, 330, len(idx))})
    wide.to_csv(tmp_path / "h.csv", index=False)
    assert load_csv(tmp_path / "h.csv").periods_per_year == 1764.0
    assert load_csv(tmp_path / "h.csv", periods_per_year=1638).periods_per_year == 1638.0  # 252 x 6.5
    p = Prices(np.ones((len(idx), 2)), idx, ("A", "B"), periods_per_year=100)
    assert p.periods_per_year == 100.0


def test_hyperliquid_source_is_24_7_even_without_a_weekend(tmp_path):
    from genetic_sizer.data.candles import prices_from_candles

    t0 = 1_735_603_200_000  # Tuesday 2024-12-31: 48 hourly bars, no weekend
    candles = {"BTC": _candles(t0, 48), "ETH": _candles(t0, 48, price0=10)}
    prices, _ = prices_from_candles(candles, "1h")
    path = save_parquet(prices, tmp_path / "hl.parquet")
    assert load("hyperliquid", path).periods_per_year == 8760.0 == prices.periods_per_year
    assert load("hyperliquid", path, periods_per_year=1000).periods_per_year == 1000.0
    assert load("parquet", path).periods_per_year == 252 * 24  # a plain file: trading days without weekends


# ---- column recognition ----------------------------------------------------------------------------------
def _yahoo_long(adj="Adj Close", date="Date", ticker="Ticker"):
    """Yahoo-style per-ticker rows, concatenated; XYZ splits 4:1 on the 4th day (Close drops, Adj Close does not)."""
    days = pd.bdate_range("2024-01-01", periods=8)
    frames = []
    for tk, base in (("XYZ", 400.0), ("ABC", 50.0)):
        adj_close = base * (1 + 0.01 * np.arange(8))
        close = adj_close.copy()
        if tk == "XYZ":
            close[:3] *= 4.0  # unadjusted: 4x higher before the split
        frames.append(
            pd.DataFrame(
                {
                    date: days.strftime("%Y-%m-%d"),
                    "Open": close,
                    "High": close,
                    "Low": close,
                    "Close": close,
                    adj: adj_close,
                    "Volume": 1000,
                    ticker: tk,
                }
            )
        )
    return pd.concat(frames), days


@pytest.mark.parametrize(
    ("adj", "date", "ticker"),
    [
        ("Adj Close", "Date", "Ticker"),
        ("adj_close", "date", "symbol"),
        ("Adj_Close", "Datetime", "Symbol"),
        ("ADJ CLOSE", " DATE ", "TICKER"),
        ("adjusted_close", "timestamp", "Ticker"),
    ],
)
def test_long_form_prefers_the_adjusted_close(tmp_path, adj, date, ticker):
    raw, days = _yahoo_long(adj, date, ticker)
    raw.to_csv(tmp_path / "y.csv", index=False)
    p = load_csv(tmp_path / "y.csv")
    assert p.symbols == ("XYZ", "ABC")
    assert (p.index == days.tz_localize("UTC")).all()
    rets = p.close[1:] / p.close[:-1] - 1
    np.testing.assert_allclose(rets[:, 0], 0.01 / (1 + 0.01 * np.arange(7)))  # no -75% at the split
    close_col = raw.columns[5].strip()
    assert f"long form: symbol column {ticker.strip()!r}, close column {close_col!r} (adjusted; 'Close' not used)" in (
        p.notes
    )


def test_long_form_with_close_only_uses_it(tmp_path):
    raw, _ = _yahoo_long()
    raw.drop(columns="Adj Close").to_csv(tmp_path / "y.csv", index=False)
    p = load_csv(tmp_path / "y.csv")
    assert p.close[0, 0] == 1600.0 and "long form: symbol column 'Ticker', close column 'Close'" in p.notes


def test_hyperliquid_like_long_csv_with_coin_column(tmp_path):
    raw, times = _candle_rows(n=30)
    raw.rename(columns={"s": "coin"}).to_csv(tmp_path / "c.csv", index=False)
    p = load_csv(tmp_path / "c.csv", symbols=["ETH", "BTC"])
    assert p.symbols == ("ETH", "BTC") and (p.index == times[:30]).all()
    np.testing.assert_array_equal(p.close[:, 1], 100.0 + np.arange(30))


def test_ticker_columns_named_t_c_s_are_assets_not_time_or_symbol(tmp_path):
    idx = pd.bdate_range("2024-01-01", periods=10)
    prices = {"T": np.linspace(17, 18, 10), "C": np.linspace(50, 52, 10), "S": np.linspace(15, 14, 10)}
    wide = pd.DataFrame(prices, index=idx)
    wide.rename_axis("Date").to_csv(tmp_path / "named.csv")
    wide.to_csv(tmp_path / "unnamed.csv")  # DataFrame.to_csv: the index column has no name
    for name in ("named.csv", "unnamed.csv"):
        p = load_csv(tmp_path / name)
        assert p.symbols == ("T", "C", "S") and (p.index == idx.tz_localize("UTC")).all(), name
        np.testing.assert_array_equal(p.close[:, 0], prices["T"])


def test_no_time_column_is_named_clearly(tmp_path):
    pd.DataFrame({"AAA": [1.0, 2.0, 3.0, 4.0], "BBB": [2.0, 3.0, 4.0, 5.0]}).to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(DataError, match=r"p\.csv: no time column: none of the columns \['AAA', 'BBB'\] is named Date"):
        load_csv(tmp_path / "p.csv")


def test_one_assets_ohlcv_file_is_not_read_as_six_assets(tmp_path):
    raw, _ = _yahoo_long()
    raw[raw["Ticker"] == "XYZ"].drop(columns="Ticker").to_csv(tmp_path / "xyz.csv", index=False)
    with pytest.raises(DataError, match=r"xyz\.csv: columns \['Open', 'High', 'Low', 'Close', 'Adj Close', 'Volume'\]"):
        load_csv(tmp_path / "xyz.csv")


def test_date_and_time_of_day_columns_are_joined(tmp_path):
    raw = pd.DataFrame(
        {
            "Date": ["2024-01-02"] * 3 + ["2024-01-03"] * 3,
            "Time": ["14:30", "15:30", "16:30"] * 2,
            "A": np.arange(1.0, 7.0),
            "B": np.arange(2.0, 8.0),
        }
    )
    raw.to_csv(tmp_path / "dt.csv", index=False)
    p = load_csv(tmp_path / "dt.csv")
    assert p.symbols == ("A", "B") and p.index[3] == pd.Timestamp("2024-01-03 14:30", tz="UTC")
    assert p.periods_per_year == 252 * 3


def test_yyyymmdd_integers_and_bad_dates_in_the_file(tmp_path):
    idx = pd.bdate_range("2024-01-01", periods=5)
    pd.DataFrame({"date": idx.strftime("%Y%m%d").astype(int), "A": 1.0 + np.arange(5), "B": 2.0}).to_csv(
        tmp_path / "ymd.csv", index=False
    )
    p = load_csv(tmp_path / "ymd.csv")
    assert (p.index == idx.tz_localize("UTC")).all() and p.notes[0] == "time column 'date' read as YYYYMMDD dates"
    df = _wide().astype({"time": str})
    df.loc[3, "time"] = "2024-02-30"
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad\.csv: column 'time' holds '2024-02-30' \(row 3\)"):
        load_csv(tmp_path / "bad.csv")


def test_duplicate_header_columns_are_refused(tmp_path):
    (tmp_path / "d.csv").write_text("Date,AAPL,MSFT,AAPL\n2024-01-01,1,2,3\n2024-01-02,1,2,3\n2024-01-03,1,2,3\n")
    with pytest.raises(DataError, match=r"d\.csv: column\(s\) \['AAPL'\] appear more than once"):
        load_csv(tmp_path / "d.csv")


def test_parquet_with_an_epoch_index_or_a_time_symbol_index(tmp_path):
    raw, times = _candle_rows(n=10)
    raw.set_index("t").to_parquet(tmp_path / "t.parquet")
    assert (load_parquet(tmp_path / "t.parquet").index == times).all()
    long, days = _yahoo_long()
    long.set_index(["Date", "Ticker"]).to_parquet(tmp_path / "mi.parquet")
    p = load_parquet(tmp_path / "mi.parquet")
    assert p.symbols == ("XYZ", "ABC") and (p.index == days.tz_localize("UTC")).all()


# ---- named errors instead of tracebacks ------------------------------------------------------------------
def test_header_only_and_empty_files(tmp_path):
    (tmp_path / "h.csv").write_text("time,BTC,ETH\n")
    with pytest.raises(DataError, match=r"h\.csv: no rows \(only the columns \['time', 'BTC', 'ETH'\]\)"):
        load_csv(tmp_path / "h.csv")
    (tmp_path / "zero.csv").write_text("")
    with pytest.raises(DataError, match=r"zero\.csv: empty file"):
        load_csv(tmp_path / "zero.csv")
    _wide().iloc[:0].to_parquet(tmp_path / "e.parquet", index=False)
    with pytest.raises(DataError, match=r"e\.parquet: no rows"):
        load_parquet(tmp_path / "e.parquet")
    with pytest.raises(DataError, match=r"frame: no rows"):
        Prices.from_frame(_wide().set_index("time").iloc[:0], source="frame")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2015-02-30", r"data\.start: cannot read '2015-02-30' as a date \(day is out of range for month"),
        ("2015-13-01", r"data\.start: cannot read '2015-13-01' as a date"),
        ("", r"data\.start: '' is not a date"),
        ("nan", r"data\.start: 'nan' is not a date"),
        (2015, r"data\.start: 2015 is a number, not a date"),
        (20150101, r"data\.start: 20150101 is a number, not a date"),
    ],
)
def test_impossible_window_bounds_are_config_errors(value, message):
    with pytest.raises(ConfigError, match=message):
        load_default(start=value)
    with pytest.raises(ConfigError, match=message.replace("start", "end")):
        load(source="default", end=value)


@pytest.mark.parametrize("layout", ["fields-first", "tickers-first"])
def test_two_row_header_csv_as_yfinance_writes_it(tmp_path, layout):
    # yfinance.download(["XYZ", "ABC"]).to_csv(): a row of fields, a row of tickers, a row naming the index;
    # ABC is listed a day later (empty cells), XYZ splits 4:1 (Close drops, Adj Close does not)
    fields, tickers = ["Adj Close", "Adj Close", "Close", "Close", "Volume", "Volume"], ["XYZ", "ABC"] * 3
    rows = [
        "2024-01-02,400,,1600,,10,",
        "2024-01-03,404,50,1616,50,10,5",
        "2024-01-04,408,51,408,51,10,5",
        "2024-01-05,412,52,412,52,10,5",
    ]
    if layout == "fields-first":
        head = ["Price," + ",".join(fields), "Ticker," + ",".join(tickers)]
    else:  # group_by="ticker": tickers first (columns reordered accordingly)
        order = [0, 2, 4, 1, 3, 5]
        head = ["Ticker," + ",".join(tickers[k] for k in order), "Price," + ",".join(fields[k] for k in order)]
        rows = [",".join([r.split(",")[0]] + [r.split(",")[1:][k] for k in order]) for r in rows]
    (tmp_path / "yf.csv").write_text("\n".join([*head, "Date" + "," * 6, *rows]) + "\n")
    p = load_csv(tmp_path / "yf.csv")
    assert p.symbols == ("XYZ", "ABC") and p.trimmed_bars == 1
    assert p.index[0] == pd.Timestamp("2024-01-03", tz="UTC")
    np.testing.assert_array_equal(p.close, [[404.0, 50.0], [408.0, 51.0], [412.0, 52.0]])
    assert any("two header rows" in n for n in p.notes)
    assert "long form: symbol column 'Ticker', close column 'Adj Close' (adjusted; 'Close' not used)" in p.notes


def test_semicolon_separated_csv_is_named(tmp_path):
    (tmp_path / "eu.csv").write_text("Date;AAPL;MSFT\n2024-01-02;1,5;2\n2024-01-03;1,6;2\n2024-01-04;1,7;2\n")
    with pytest.raises(DataError, match=r"eu\.csv: expected a time column .*separated by semicolons"):
        load_csv(tmp_path / "eu.csv")


# ------------------------------------------------------------------ funding rates
def _hourly(n=10, start="2025-01-01 00:00", freq="h", coins=("BTC", "ETH")):
    idx = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    close = np.column_stack([np.linspace(100, 110, n) * (k + 1) for k in range(len(coins))])
    return Prices(close, idx, coins, source="hl-test")


def _rates(rows):
    """Long-form funding rows (time, coin, funding_rate), as data fetch saves them."""
    return pd.DataFrame(rows, columns=["time", "coin", "funding_rate"])


def test_a_rate_paid_at_h_belongs_to_the_bar_whose_close_is_at_h():
    prices = _hourly()  # hourly candles labelled by their open time: bar 3 is 03:00-04:00
    ts = pd.Timestamp
    rates = _rates(
        [
            (ts("2025-01-01 04:00:00.123", tz="UTC"), "BTC", 1e-4),  # stamped 123 ms after 04:00: bar 3
            (ts("2025-01-01 05:00", tz="UTC"), "ETH", -2e-4),  # bar 4
            (ts("2025-01-01 00:00:00.4", tz="UTC"), "BTC", 9.0),  # before bar 0's close: the hour before the data
            (ts("2025-01-01 01:00", tz="UTC"), "BTC", 3e-5),  # bar 0: held by nobody, never charged
            (ts("2025-01-01 11:00", tz="UTC"), "BTC", 7.0),  # after the last close (10:00-11:00 is not a bar)
            (ts("2025-01-01 10:00", tz="UTC"), "DOGE", 5.0),  # not in the prices
        ]
    )
    funding, note = align_funding(rates, prices)
    expected = np.full((10, 2), np.nan)  # a bar without a rate is a hole, not a rate of 0 (issue 22, item 6)
    expected[3, 0], expected[4, 1], expected[0, 0] = 1e-4, -2e-4, 3e-5
    np.testing.assert_array_equal(funding, expected)
    assert "BTC 2, ETH 1 hours with a rate" in note
    assert "no rate in 8 of 9 bars for BTC, 8 of 9 bars for ETH" in note  # bars 1 on (bar 0 is never charged)


def test_coarser_bars_and_gaps_sum_their_hours():
    four = _hourly(n=6, freq="4h")  # bars 00:00, 04:00, ... each closing 4 hours later
    hours = pd.date_range("2025-01-01 01:00", periods=24, freq="h", tz="UTC") + pd.Timedelta(milliseconds=250)
    rates = _rates([(t, "BTC", (k + 1) * 1e-6) for k, t in enumerate(hours)])
    funding, _ = align_funding(rates, four)
    # bar 0 (00:00-04:00) takes the rates paid at 01:00 .. 04:00 (k = 0..3), bar 1 those at 05:00 .. 08:00, ...
    np.testing.assert_allclose(funding[:, 0], [sum(range(4 * j + 1, 4 * j + 5)) * 1e-6 for j in range(6)], rtol=1e-12)
    idx = pd.DatetimeIndex([f"2025-01-01 {h:02d}:00" for h in (0, 1, 2, 6, 7, 8)], tz="UTC")  # 03:00-05:00 dropped
    holes = Prices(_hourly(n=6).close, idx, ("BTC", "ETH"))
    funding, _ = align_funding(rates, holes)
    # the bar labelled 06:00 closes at 07:00 and takes every hour since the close of 02:00-03:00: the rates paid at
    # 04:00 .. 07:00, which are 4e-6 .. 7e-6
    assert funding[3, 0] == pytest.approx((4 + 5 + 6 + 7) * 1e-6, rel=1e-12)


def test_funding_rate_errors_name_the_file_coin_and_time():
    prices = _hourly()
    ts = pd.Timestamp("2025-01-01 03:00", tz="UTC")
    with pytest.raises(DataError, match="missing \\['funding_rate'\\]"):
        align_funding(pd.DataFrame({"time": [ts], "coin": ["BTC"]}), prices, source="f.parquet")
    twice = r"f\.parquet: two funding rates for 'BTC' in the hour of 2025-01-01T03:00:00\.5"
    with pytest.raises(DataError, match=twice):
        align_funding(
            _rates([(ts, "BTC", 1e-5), (ts + pd.Timedelta("500ms"), "BTC", 1e-5)]), prices, source="f.parquet"
        )
    with pytest.raises(DataError, match="funding_rate of 'ETH' at 2025-01-01T03:00:00\\+00:00 is nan"):
        align_funding(_rates([(ts, "ETH", np.nan)]), prices)


def test_hyperliquid_prices_load_the_funding_saved_next_to_them(tmp_path):
    from genetic_sizer.data.synthetic import perp_market

    market = perp_market(("BTC", "ETH", "SOL"), hours=24 * 10, seed=3)
    path, funding_file = market.write(tmp_path / "hl_1h.parquet")
    assert funding_file == tmp_path / "hl_1h.funding.parquet" == funding_path_for(path)
    prices = load("hyperliquid", path)
    np.testing.assert_array_equal(prices.funding, market.prices.funding)
    assert prices.funding[1:].std() > 0 and any(n.startswith("funding from") for n in prices.notes)
    assert load("hyperliquid", path, funding_path=False).funding is None
    window = load("hyperliquid", path, symbols=["SOL", "BTC"], start="2025-01-03")
    rows = market.prices.index.get_indexer(window.index)
    np.testing.assert_array_equal(window.funding, market.prices.funding[rows][:, [2, 0]])
    csv = tmp_path / "rates.csv"
    pd.read_parquet(funding_file).to_csv(csv, index=False)  # any source may name a funding file
    np.testing.assert_array_equal(load("parquet", path, funding_path=csv).funding, prices.funding)
    funding_file.unlink()
    bare = load("hyperliquid", path)
    assert bare.funding is None and any("no funding rates" in n for n in bare.notes)
    with pytest.raises(DataError, match="no such funding file"):
        load("hyperliquid", path, funding_path=funding_file)


def test_funding_travels_with_every_window_and_changes_the_fingerprint():
    prices = _hourly(n=12)
    rates = np.arange(24, dtype=float).reshape(12, 2) * 1e-6
    funded = prices.with_funding(rates)
    np.testing.assert_array_equal(funded.bars(3, 9).funding, rates[3:9])
    np.testing.assert_array_equal(funded.select(["ETH", "BTC"]).funding, rates[:, ::-1])
    assert funded.sha256() != prices.sha256()
    assert funded.with_funding(rates * 2).sha256() != funded.sha256()
    assert funded.with_funding(None).sha256() == prices.sha256()
    assert funded.provenance()["funding"] is True and prices.provenance()["funding"] is False
    with pytest.raises(DataError, match="funding has shape"):
        prices.with_funding(rates[:5])


def test_synthetic_coarse_candles_sum_the_hourly_funding():
    from genetic_sizer.data.synthetic import perp_market

    hourly = perp_market(("BTC", "ETH"), hours=48, seed=1)
    four = perp_market(("BTC", "ETH"), hours=48, seed=1, interval="4h")
    np.testing.assert_array_equal(four.prices.close, hourly.prices.close[3::4])  # a 4h candle closes at its 4th hour
    np.testing.assert_allclose(four.prices.funding[1:], hourly.prices.funding.reshape(12, 4, 2).sum(axis=1)[1:])


# ---- bar ranges (high, low), funding holes and prices, margin tiers (issue 22, items 6-9) --------------------------
def _ranged_prices(n=12):
    p = _hourly(n=n)
    return p.with_fields({"high": p.close * 1.02, "low": p.close * 0.97})


def test_prices_carry_high_and_low_through_windows_selections_and_joins():
    from genetic_sizer.validation.holdout import _joined

    p = _ranged_prices()
    assert p.high.shape == p.close.shape and not p.high.flags.writeable
    np.testing.assert_array_equal(p.bars(3, 9).low, p.close[3:9] * 0.97)
    np.testing.assert_array_equal(p.select(["ETH", "BTC"], start=p.index[2]).high, p.close[2:, ::-1] * 1.02)
    funded = p.with_funding(np.zeros(p.close.shape))
    np.testing.assert_array_equal(funded.low, p.low)
    joined = _joined(p.bars(0, 7), p.bars(7, 12))
    np.testing.assert_array_equal(joined.high, p.high)
    assert p.sha256() != _hourly(n=12).sha256() and p.provenance()["fields"] == ["high", "low"]
    assert _hourly(n=12).high is None and _hourly(n=12).provenance()["fields"] == []


def test_a_bar_range_is_validated_naming_the_field_symbol_and_time():
    p = _hourly(n=5)
    high, low = p.close * 1.01, p.close * 0.99
    bad = high.copy()
    bad[2, 1] = p.close[2, 1] * 0.5
    with pytest.raises(DataError, match=r"high of 'ETH' at 2025-01-01T02:00:00\+00:00 is below the close"):
        p.with_fields({"high": bad, "low": low})
    with pytest.raises(DataError, match="needs both high and low, got only \\['high'\\]"):
        p.with_fields({"high": high})
    with pytest.raises(DataError, match="unknown price field 'volume'"):
        p.with_fields({"volume": high})
    with pytest.raises(DataError, match=r"low has shape \(4, 2\)"):
        p.with_fields({"high": high, "low": low[:4]})
    nan = low.copy()
    nan[1, 0] = np.nan
    with pytest.raises(DataError, match=r"low of 'BTC' at 2025-01-01T01:00:00\+00:00 is not a positive price"):
        p.with_fields({"high": high, "low": nan})


def test_ohlc_files_keep_the_range_and_close_only_files_say_so(tmp_path):
    p = _ranged_prices()
    path = save_parquet(p, tmp_path / "ohlc.parquet")
    back = load_parquet(path)
    np.testing.assert_array_equal(back.close, p.close)
    np.testing.assert_array_equal(back.high, p.high)
    np.testing.assert_array_equal(back.low, p.low)
    assert CLOSES_ONLY not in back.notes
    window = load_parquet(path, symbols=["ETH", "BTC"], start=p.index[4])
    np.testing.assert_array_equal(window.low, p.low[4:, ::-1])
    # Hyperliquid-like candle rows (t, s, o, h, l, c): h and l are the range
    raw, _ = _candle_rows(n=30)
    raw["h"], raw["l"] = raw["c"] + 2.0, raw["c"] - 1.0
    raw.to_csv(tmp_path / "c.csv", index=False)
    c = load_csv(tmp_path / "c.csv")
    np.testing.assert_array_equal(c.high - c.close, np.full(c.close.shape, 2.0))
    # adjusted closes: the range scaled by the same adjustment (a 4:1 split before the 4th day)
    y, _ = _yahoo_long()
    y["High"], y["Low"] = y["Close"] * 1.1, y["Close"] * 0.8
    y.to_csv(tmp_path / "y.csv", index=False)
    adj = load_csv(tmp_path / "y.csv")
    np.testing.assert_allclose(adj.high / adj.close, 1.1, rtol=1e-12)
    np.testing.assert_allclose(adj.low / adj.close, 0.8, rtol=1e-12)
    # a range that does not contain the close is not used, and the notes say so
    y["High"] = y["Close"] * 0.5
    y.to_csv(tmp_path / "bad.csv", index=False)
    bad = load_csv(tmp_path / "bad.csv")
    assert bad.high is None and any(n.startswith(CLOSES_ONLY) and "were not used" in n for n in bad.notes)
    assert CLOSES_ONLY in load_csv(_write_wide(tmp_path)).notes


def _write_wide(tmp_path):
    _wide().to_csv(tmp_path / "wide.csv", index=False)
    return tmp_path / "wide.csv"


def test_candles_keep_their_high_and_low():
    from genetic_sizer.data.candles import prices_from_candles

    rows = [{"t": k * 3_600_000, "c": str(100 + k), "h": str(103 + k), "l": str(98 + k)} for k in range(6)]
    prices, _ = prices_from_candles({"BTC": rows, "ETH": rows}, "1h")
    np.testing.assert_array_equal(prices.high[:, 0], 103.0 + np.arange(6))
    np.testing.assert_array_equal(prices.low[:, 1], 98.0 + np.arange(6))


def test_funding_inside_a_coarse_bar_is_charged_at_its_hours_close_by_hand():
    """4-hour bars: the rates paid at 01:00, 02:00 and 03:00 fall inside bar 0 (00:00-04:00) and the one at 04:00 at
    its close. With each hour's close in the file, bar 0's row is sum(rate x hour's close) / the bar's close, so the
    kernel's q x close x row pays q x the sum of rate x hour's close; a payment without a price is charged at the
    bar's close, and the note counts and dates those."""
    four = Prices(
        np.array([[100.0, 10.0], [104.0, 11.0], [108.0, 12.0]]),
        pd.date_range("2025-01-01", periods=3, freq="4h", tz="UTC"),
        ("BTC", "ETH"),
    )
    ts = pd.Timestamp
    rows = [(ts(f"2025-01-01 0{h}:00:00.2", tz="UTC"), "BTC", 1e-4 * h, 100.0 + h) for h in (1, 2, 3, 4)] + [
        (ts(f"2025-01-01 0{h}:00", tz="UTC"), "ETH", 2e-4, np.nan) for h in (5, 6, 7, 8)
    ]
    rates = pd.DataFrame(rows, columns=["time", "coin", "funding_rate", "price"])
    funding, note = align_funding(rates, four)
    expected = (1e-4 * 101.0 + 2e-4 * 102.0 + 3e-4 * 103.0) / 100.0 + 4e-4  # the 04:00 payment at the bar's close
    assert funding[0, 0] == pytest.approx(expected, rel=1e-14)
    assert funding[1, 1] == pytest.approx(8e-4, rel=1e-14)  # no prices: every hour at the bar's close
    assert "3 of 6 payments inside a bar priced at their hour's close" in note
    assert "3 at their bar's close (no hourly price; paid 2025-01-01T05:00:00+00:00 .. 2025-01-01T07:00:00+00:00)" in (
        note
    )
    # hourly bars: every payment is at its bar's close, priced exactly as before (weight 1)
    hourly = _hourly(n=6)
    hours = [(ts(f"2025-01-01 0{h}:00", tz="UTC"), "BTC", 1e-5 * h, 55.5) for h in range(1, 7)]
    funding, note = align_funding(pd.DataFrame(hours, columns=["time", "coin", "funding_rate", "price"]), hourly)
    np.testing.assert_array_equal(funding[:, 0], 1e-5 * np.arange(1, 7))
    assert "inside a bar" not in note


def test_an_empty_funding_file_or_a_coin_without_rows_is_a_hole_not_a_rate_of_zero(tmp_path):
    from genetic_sizer.data.funding import unfunded

    prices = _hourly()
    funding, note = align_funding(_rates([]), prices)
    assert np.isnan(funding).all() and "no rates" in note
    assert unfunded(prices.with_funding(funding)) == ["BTC", "ETH"]
    ts = pd.Timestamp("2025-01-01 03:00", tz="UTC")
    only_btc, note = align_funding(_rates([(ts, "BTC", 1e-5)]), prices)
    with_btc = prices.with_funding(only_btc)
    assert unfunded(with_btc) == ["ETH"] and unfunded(with_btc, ["BTC"]) == [] and unfunded(prices) == []
    assert unfunded(with_btc.bars(4, 10)) == ["BTC", "ETH"]  # a window the rates do not reach


def test_margin_tiers_are_read_from_the_saved_meta(tmp_path):
    from genetic_sizer.data.margin import describe_tiers, save_meta, tiers_of
    from genetic_sizer.data.synthetic import perp_market

    meta = {
        "universe": [
            {"name": "BTC", "szDecimals": 5, "maxLeverage": 40, "marginTableId": 56},
            {"name": "ETH", "szDecimals": 4, "maxLeverage": 25, "marginTableId": 25},
            {"name": "SOL", "szDecimals": 2, "maxLeverage": 20},
        ],
        "marginTables": [
            [
                56,
                {
                    "description": "tiered 40x",
                    "marginTiers": [
                        {"lowerBound": "0.0", "maxLeverage": 40},
                        {"lowerBound": "150000000.0", "maxLeverage": 20},
                    ],
                },
            ],
        ],
    }
    tiers = tiers_of(meta, ["BTC", "ETH", "SOL"])
    assert tiers == {"BTC": ((0.0, 40.0), (150e6, 20.0)), "ETH": ((0.0, 25.0),), "SOL": ((0.0, 20.0),)}
    assert describe_tiers(tiers) == "BTC 40x, 20x from 150M; ETH 25x; SOL 20x"
    with pytest.raises(DataError, match=r"does not list \['DOGE'\]"):
        tiers_of(meta, ["BTC", "DOGE"])
    broken = {**meta, "universe": [{**meta["universe"][0], "marginTableId": 57}]}
    with pytest.raises(DataError, match=r"BTC\.marginTableId 57 is not among the marginTables"):
        tiers_of(broken, ["BTC"])
    rising = {
        **meta,
        "marginTables": [
            [56, {"marginTiers": [{"lowerBound": 0, "maxLeverage": 10}, {"lowerBound": 5, "maxLeverage": 20}]}]
        ],
    }
    with pytest.raises(DataError, match="rise in notional and fall in leverage"):
        tiers_of(rising, ["BTC"])
    path, _ = perp_market(("BTC", "ETH", "SOL"), hours=48, seed=2).write(tmp_path / "hl.parquet")
    assert load("hyperliquid", path).margin is None  # no meta saved
    save_meta(meta, tmp_path / "hl.meta.json")
    loaded = load("hyperliquid", path, symbols=["SOL", "BTC"])
    assert loaded.margin == {"SOL": ((0.0, 20.0),), "BTC": ((0.0, 40.0), (150e6, 20.0))}
    assert any(n.startswith("margin tiers from") and "BTC 40x, 20x from 150M" in n for n in loaded.notes)
    assert loaded.select(["BTC", "SOL"]).margin == loaded.margin and loaded.bars(2, 9).margin == loaded.margin

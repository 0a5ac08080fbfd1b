"""The risk-free rate (``portfolio.risk_free``, issue 22): the config key, a file of rates aligned to the bars (per
period and annual, each checked against a plain loop over the file), its errors, and runs that score excess returns end
to end (the champion file, the summary, the deflated Sharpe, the walk-forward record, the tables and the report),
each figure recomputed here from the run's own values and rates."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.backtest.riskfree import RiskFree, describe, per_bar_rate
from genetic_sizer.config import load_config
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ChampionError, ConfigError, DataError

from .conftest import make_prices


def _prices(index, periods_per_year=None) -> Prices:
    n = len(index)
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(n).normal(0, 0.01, (n, 2)), axis=0))
    return Prices(close=close, index=index, symbols=["A", "B"], source="test", periods_per_year=periods_per_year)


def _write(path, times, values, column="RF", **extra):
    frame = pd.DataFrame({"date": times, column: values, **extra})
    if str(path).endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return str(path)


# ---- the config key ---------------------------------------------------------------------------------------------
def test_the_key_takes_an_annual_rate_or_a_file():
    assert load_config(None).portfolio.risk_free == 0.0
    assert load_config(None, ["portfolio.risk_free=0.02"]).portfolio.risk_free == 0.02
    assert load_config(None, ["portfolio.risk_free=-0.0075"]).portfolio.risk_free == -0.0075  # 2015's Swiss bills
    cfg = load_config(None, ["portfolio.risk_free={path: rf.csv, kind: per_period}"])
    assert cfg.portfolio.risk_free == {"path": "rf.csv", "column": None, "kind": "per_period", "percent": False}
    again = load_config(None, ["portfolio.risk_free={path: rf.csv, kind: annual, column: DTB3, percent: true}"])
    assert again.portfolio.risk_free == {"path": "rf.csv", "column": "DTB3", "kind": "annual", "percent": True}
    assert type(again).from_dict(again.to_dict()) == again
    assert again.sha256() != cfg.sha256() != load_config(None).sha256()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "2",
            r"portfolio\.risk_free must be an annual rate as a fraction \(0\.02 for 2 %\) in \[-0\.05, 0\.5\] "
            r"\(a rate in percent\? 2 % is 0\.02\), got 2$",
        ),
        (
            "-0.2",
            r"portfolio\.risk_free must be an annual rate as a fraction \(0\.02 for 2 %\) in \[-0\.05, 0\.5\], "
            r"got -0\.2$",
        ),
        ("0.51", r"portfolio\.risk_free must be .* in \[-0\.05, 0\.5\] .*, got 0\.51$"),
        ("true", r"portfolio\.risk_free must be an annual rate \(a number such as 0\.02\) or .*, got True$"),
        ("2%", r"portfolio\.risk_free must be an annual rate \(a number such as 0\.02\) or .*, got '2%'$"),
        (".nan", r"portfolio\.risk_free must be an annual rate .*, got nan$"),
        ("{path: rf.csv}", r"portfolio\.risk_free\.kind must be one of \['per_period', 'annual'\], got None$"),
        ("{path: rf.csv, kind: daily}", r"portfolio\.risk_free\.kind must be one of .*, got 'daily'$"),
        ("{kind: annual}", r"portfolio\.risk_free\.path must be the path of a CSV or Parquet file of rates, got None$"),
        ("{path: rf.csv, kind: annual, percent: 1}", r"portfolio\.risk_free\.percent must be true .*, got 1$"),
        ("{path: rf.csv, kind: annual, column: 3}", r"portfolio\.risk_free\.column must be a column name .*, got 3$"),
        ("{path: rf.csv, kind: annual, unit: pct}", r"portfolio\.risk_free must be a number or a mapping of .*unit"),
    ],
)
def test_bad_settings_are_errors_naming_the_key_and_value(value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"portfolio.risk_free={value}"])


# ---- a file of rates, aligned to the bars -----------------------------------------------------------------------
def test_per_period_rates_on_the_bars_own_times_are_taken_as_they_are(tmp_path):
    prices = _prices(pd.bdate_range("2020-01-01", periods=60, tz="UTC"), periods_per_year=252)
    days = pd.bdate_range("2019-12-01", "2020-06-30")  # more rows than bars, on either side
    rates = np.random.default_rng(1).uniform(0.0, 0.0003, len(days))
    for name in ("rf.csv", "rf.parquet"):
        path = _write(tmp_path / name, days, rates)
        got = RiskFree.of({"path": path, "kind": "per_period"}).rates(prices)
        want = pd.Series(rates, index=days.tz_localize("UTC")).reindex(prices.index).to_numpy()
        np.testing.assert_array_equal(got, want)


def test_french_style_monthly_rates_in_percent_align_to_month_end_bars(tmp_path):
    """Kenneth French's files label each month YYYYMM (read as its first day) and give RF in percent: the bar at a
    month's last trading day takes that month's rate, the first bar included."""
    ends = pd.bdate_range("2015-01-01", "2016-12-31", freq="BME", tz="UTC")
    prices = _prices(ends, periods_per_year=12)
    labels = pd.date_range("2014-06-01", "2017-03-01", freq="MS")
    percent = np.round(np.random.default_rng(2).uniform(0.0, 0.5, len(labels)), 2)
    path = _write(tmp_path / "ff.csv", labels.strftime("%Y-%m-%d"), percent)
    got = RiskFree.of({"path": path, "kind": "per_period", "percent": True}).rates(prices)
    want = [percent[labels.get_loc(pd.Timestamp(t.year, t.month, 1))] / 100 for t in ends]
    np.testing.assert_array_equal(got, want)


def test_a_finer_file_is_compounded_into_each_bar(tmp_path):
    """Daily rates on weekly bars: each bar compounds the rows in (previous bar, bar] (the first bar the week before
    it), as a plain loop over the file does."""
    bars = pd.date_range("2021-01-01", periods=30, freq="W-FRI", tz="UTC")
    prices = _prices(bars, periods_per_year=52)
    days = pd.date_range("2020-12-01", "2021-08-31", freq="D", tz="UTC")
    rates = np.random.default_rng(3).uniform(-0.00001, 0.0002, len(days))
    path = _write(tmp_path / "daily.csv", days, rates)
    got = RiskFree.of({"path": path, "kind": "per_period"}).rates(prices)
    for t, bar in enumerate(bars):
        since = bars[t - 1] if t else bar - pd.Timedelta(days=7)
        growth = 1.0
        for day, r in zip(days, rates, strict=True):
            if since < day <= bar:
                growth *= 1.0 + r
        assert got[t] == pytest.approx(growth - 1.0, rel=1e-13), t


def test_annual_rates_hold_from_their_row_on(tmp_path):
    """A quoted yield (``kind: annual``): each bar takes the latest quote at or before it, as a per-bar rate
    ``(1 + a) ** (1 / ppy) - 1``; quotes in percent with ``percent: true``."""
    bars = pd.bdate_range("2022-03-01", periods=40, tz="UTC")
    prices = _prices(bars, periods_per_year=252)
    quotes = pd.to_datetime(["2022-02-20", "2022-03-07", "2022-03-08", "2022-04-01", "2022-04-20"]).tz_localize("UTC")
    yields = np.array([0.35, 0.4, 0.41, 0.8, 0.95])  # percent
    path = _write(tmp_path / "dtb3.csv", quotes, yields, column="DTB3", other=np.ones(5))
    got = RiskFree.of({"path": path, "column": "DTB3", "kind": "annual", "percent": True}).rates(prices)
    for t, bar in enumerate(bars):
        latest = yields[[q <= bar for q in quotes]][-1] / 100
        assert got[t] == pytest.approx((1 + latest) ** (1 / 252) - 1, rel=1e-12), t


def _missing(path, bar, t, n):
    return rf"portfolio\.risk_free: {path} has no \w+ rate for the bar at {bar} \(bar {t} of {n}\)"


def test_a_bar_without_a_rate_is_an_error_naming_it(tmp_path):
    prices = _prices(pd.bdate_range("2020-01-01", periods=60, tz="UTC"), periods_per_year=252)
    days = prices.index.tz_localize(None)
    rates = np.full(60, 0.0001)
    hole = _write(tmp_path / "hole.csv", days.delete(10), np.delete(rates, 10))
    spec = {"path": hole, "kind": "per_period"}
    with pytest.raises(
        DataError, match=_missing(hole, "2020-01-15T00:00:00\\+00:00", 10, 60) + r": no row in \(2020-01-14"
    ):
        RiskFree.of(spec).rates(prices)
    late = _write(tmp_path / "late.csv", days[1:], rates[1:])  # nothing for the first bar
    with pytest.raises(DataError, match=_missing(late, "2020-01-01T00:00:00\\+00:00", 0, 60)):
        RiskFree.of({"path": late, "kind": "per_period"}).rates(prices)
    monthly = _write(tmp_path / "monthly.csv", pd.date_range("2019-12-31", periods=6, freq="ME"), np.full(6, 0.001))
    with pytest.raises(
        DataError, match=r"\(bar 0 of 60\): no row in \(2019-12-31.* coarser than the bars\? then use kind: annual"
    ):
        RiskFree.of({"path": monthly, "kind": "per_period"}).rates(prices)
    first = _missing(late, "2020-01-01T00:00:00\\+00:00", 0, 60) + r": its first row is at 2020-01-02"
    with pytest.raises(DataError, match=first):
        RiskFree.of({"path": late, "kind": "annual"}).rates(prices)  # the first bar is before the first quote
    stale = _write(tmp_path / "stale.csv", days[:20], np.full(20, 0.02))
    with pytest.raises(
        DataError,
        match=_missing(stale, "2020-02-10T00:00:00\\+00:00", 28, 60) + r": .* at 2020-01-28.*, is older than 10 days$",
    ):
        RiskFree.of({"path": stale, "kind": "annual"}).rates(prices)
    with pytest.raises(DataError, match=r"portfolio\.risk_free\.path: .*nope\.csv: no such file"):
        RiskFree.of({"path": str(tmp_path / "nope.csv"), "kind": "annual"}).rates(prices)


def test_rates_in_the_wrong_unit_or_unreadable_are_errors_naming_the_row(tmp_path):
    prices = _prices(pd.bdate_range("2020-01-01", periods=30, tz="UTC"), periods_per_year=252)
    days = prices.index.tz_localize(None)
    yields = _write(tmp_path / "y.csv", days, np.r_[np.full(5, 0.015), np.full(25, 1.6)])  # percent, unflagged
    with pytest.raises(
        DataError,
        match=r"the annual rate at 2020-01-08T00:00:00\+00:00 is 1\.6 a year, outside "
        r"\[-0\.05, 0\.5\] \(a rate in percent\?",
    ):
        RiskFree.of({"path": yields, "kind": "annual"}).rates(prices)
    daily = _write(tmp_path / "d.csv", days, np.full(30, 0.012))  # 0.012 % a day, read as a fraction
    with pytest.raises(
        DataError,
        match=r"the per-period rate at 2020-01-01T00:00:00\+00:00 \(annualized at the "
        r"file's 365\.2 periods a year\) is 7\d\.\d+ a year, outside",
    ):
        RiskFree.of({"path": daily, "kind": "per_period"}).rates(prices)
    two = _write(tmp_path / "two.csv", days, np.zeros(30), **{"Mkt-RF": np.zeros(30)})
    with pytest.raises(DataError, match=r"which column holds the rates\? It has \['RF', 'Mkt-RF'\] beside the time"):
        RiskFree.of({"path": two, "kind": "per_period"}).rates(prices)
    with pytest.raises(DataError, match=r"no rate column 'DTB3' \(its columns beside the time: \['RF', 'Mkt-RF'\]\)"):
        RiskFree.of({"path": two, "kind": "per_period", "column": "DTB3"}).rates(prices)
    assert RiskFree.of({"path": two, "kind": "per_period", "column": "RF"}).rates(prices).tolist() == [0.0]
    holes = _write(tmp_path / "nan.csv", days, ["0.0001"] * 7 + ["."] + ["0.0001"] * 22)  # FRED's missing value
    with pytest.raises(DataError, match=r"the rate at 2020-01-10T00:00:00\+00:00 is '\.', not a finite number"):
        RiskFree.of({"path": holes, "kind": "annual"}).rates(prices)
    twice = _write(tmp_path / "twice.csv", days.insert(3, days[3]), np.zeros(31))
    with pytest.raises(DataError, match=r"time 2020-01-06T00:00:00\+00:00 appears twice"):
        RiskFree.of({"path": twice, "kind": "annual"}).rates(prices)


def test_a_constant_rate_and_its_record():
    prices = make_prices(100, 2, seed=1)  # daily, 7 days a week: 365 bars a year
    rf = RiskFree.of(0.03)
    assert rf.rates(prices).tolist() == [per_bar_rate(0.03, 365.0)]
    assert per_bar_rate(0.03, 365.0) == pytest.approx(1.03 ** (1 / 365) - 1, rel=1e-13)
    rec = rf.record(prices)
    assert rec["annual"] == 0.03 and rec["annualized"] == pytest.approx(0.03, rel=1e-12)
    assert describe(rec).startswith(
        "Sharpe and Sortino are of the returns in excess of a risk-free rate of 3.000% a year"
    )
    assert describe(RiskFree.of(0).record(prices)) == "" and RiskFree.of(0).is_zero


# ---- runs score excess returns end to end -----------------------------------------------------------------------
def _excess_sharpe(values, init_cash, rf, ppy):
    prev = np.r_[init_cash, values[:-1]]
    x = values / prev - 1.0 - rf
    down = np.sqrt(np.mean(np.minimum(x, 0.0) ** 2))
    return x.mean() / x.std(ddof=1) * math.sqrt(ppy), x.mean() * ppy / (down * math.sqrt(ppy))


SMALL = [
    "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY]",
    "data.start=2021-06-01",
    "evolution.population=10",
    "evolution.generations=3",
    "evolution.hall_of_fame=3",
]


@pytest.mark.slow
def test_an_evolve_run_scores_returns_in_excess_of_a_constant_rate(tmp_path, capsys):
    """``portfolio.risk_free: 0.03``: the champion's metrics, the summary (both windows), the held-out metrics and the
    deflated Sharpe are of returns in excess of ``1.03 ** (1 / ppy) - 1`` a bar, recomputed here from values.csv; the
    champion file records the rate, the printed table and the report say it; the figures other than Sharpe and
    Sortino are those of a run without a rate."""
    from genetic_sizer.backtest import stats
    from genetic_sizer.cli.main import main
    from genetic_sizer.runs.champion import load

    args = [a for s in [*SMALL, "portfolio.risk_free=0.03"] for a in ("--set", s)]
    assert main(["evolve", "--out", str(tmp_path / "rf"), *args]) == 0
    printed = capsys.readouterr().out
    assert "Sharpe and Sortino are of the returns in excess of a risk-free rate of 3.000% a year" in " ".join(
        printed.split()
    )
    champion = json.loads((tmp_path / "rf" / "champion.json").read_text())
    ppy = champion["data"]["periods_per_year"]
    per_bar = 1.03 ** (1 / ppy) - 1
    rec = champion["portfolio"]["risk_free"]
    assert rec["annual"] == 0.03 and rec["per_bar"] == pytest.approx(per_bar, rel=1e-13)
    assert load(tmp_path / "rf" / "champion.json").risk_free == rec
    values = pd.read_csv(tmp_path / "rf" / "values.csv")
    summary = pd.read_csv(tmp_path / "rf" / "summary.csv").set_index(["allocation", "window"])
    for window in ("in_sample", "out_of_sample"):
        v = values[values.window == window]
        for name in ("champion", "equal_weight", "hrp"):
            sharpe, sortino = _excess_sharpe(v[name].to_numpy(), 10_000.0, per_bar, ppy)
            assert summary.loc[(name, window), "sharpe"] == pytest.approx(sharpe, rel=1e-9)
            assert summary.loc[(name, window), "sortino"] == pytest.approx(sortino, rel=1e-9)
    assert champion["metrics"]["sharpe"] == pytest.approx(summary.loc[("champion", "in_sample"), "sharpe"], rel=1e-12)
    oos = champion["out_of_sample"]["metrics"]["sharpe"]
    assert oos == pytest.approx(summary.loc[("champion", "out_of_sample"), "sharpe"], rel=1e-12)
    champ = values[values.window == "in_sample"]["champion"].to_numpy()
    excess = champ / np.r_[10_000.0, champ[:-1]] - 1.0 - per_bar
    trials = champion["trials"]
    want = stats.probabilistic_sharpe(excess, stats.expected_max_sharpe(trials["n"], trials["sharpe_variance"]))
    assert champion["deflated_sharpe"] == pytest.approx(want, rel=1e-9)
    assert "in excess of a risk-free rate of 3.000% a year" in (tmp_path / "rf" / "report.html").read_text()
    # the same run without a rate: the same genomes score the same on everything but Sharpe and Sortino
    args = [a for s in SMALL for a in ("--set", s)]
    assert main(["evolve", "--out", str(tmp_path / "none"), "--no-plots", *args]) == 0
    plain = pd.read_csv(tmp_path / "none" / "summary.csv").set_index(["allocation", "window"])
    for col in ("cagr", "max_drawdown", "annualized_volatility", "calmar"):
        assert summary.loc["equal_weight", col].tolist() == plain.loc["equal_weight", col].tolist()
    assert (summary.loc["equal_weight", "sharpe"] < plain.loc["equal_weight", "sharpe"]).all()
    assert "excess" not in capsys.readouterr().out
    none = json.loads((tmp_path / "none" / "champion.json").read_text())["portfolio"]["risk_free"]
    assert none["annual"] == 0.0 and none["per_bar"] == 0.0


def test_champion_files_without_a_rate_still_load_and_a_bad_record_is_refused(tmp_path):
    """Files written before ``portfolio.risk_free`` was recorded were scored without a rate: they load as such."""
    from genetic_sizer.runs import champion as C

    record = C.build(
        symbols=["A", "B"],
        weights=[0.5, 0.5],
        metrics={"sharpe": 1.0},
        objective=["sharpe"],
        portfolio={
            "direction": "longonly",
            "min_weight": 0.0,
            "max_weight": 1.0,
            "rebalance": "M",
            "fees": 0.0,
            "slippage": 0.0,
            "init_cash": 100.0,
        },
        data={
            "source": "t",
            "first_bar": "x",
            "last_bar": "y",
            "n_bars": 3,
            "periods_per_year": 252,
            "close_sha256": "0",
        },
        evolution={},
        config_sha256="0",
        selection="test",
        verification={},
    )
    C.write(record, tmp_path / "old.json")
    assert C.load(tmp_path / "old.json").risk_free == {"annual": 0.0, "per_bar": 0.0, "annualized": 0.0}
    record["portfolio"]["risk_free"] = {"annual": 0.02, "per_bar": "x", "annualized": 0.02}
    C.write(record, tmp_path / "bad.json")
    with pytest.raises(
        ChampionError, match=r"bad\.json: portfolio\.risk_free\.per_bar must be a finite number, got 'x'"
    ):
        C.load(tmp_path / "bad.json")
    record["portfolio"]["risk_free"] = 0.02
    C.write(record, tmp_path / "bad.json")
    with pytest.raises(ChampionError, match=r"portfolio\.risk_free must be an object with annual or path, got 0\.02"):
        C.load(tmp_path / "bad.json")


@pytest.mark.slow
def test_a_walkforward_scores_out_of_sample_returns_in_excess_of_a_rate_series(tmp_path, capsys):
    """A file of daily per-period rates: the stitched out-of-sample Sharpe and Sortino of every strategy and each
    fold's are those of the returns in excess of the file's rate on each bar, recomputed here from oos_values.csv;
    walkforward.json records the file and its mean rate; a fold's training window is scored against its own bars'
    rates (its in-sample figures change with the rates)."""
    from genetic_sizer.cli.main import main
    from genetic_sizer.data.loaders import load_from_config

    cfg = load_config(None, SMALL)
    bars = load_from_config(cfg.data).index
    days = pd.date_range(bars[0] - pd.Timedelta(days=10), bars[-1], freq="D")
    rates = np.random.default_rng(7).uniform(0.0, 0.0002, len(days))  # 0 to 7.6 % a year, a rate per calendar day
    path = _write(tmp_path / "rf.csv", days.strftime("%Y-%m-%d"), rates)
    wf_args = ["walkforward.train=150", "walkforward.test=100"]
    args = [
        a for s in [*SMALL, *wf_args, f"portfolio.risk_free={{path: {path}, kind: per_period}}"] for a in ("--set", s)
    ]
    assert main(["walkforward", "--out", str(tmp_path / "wf"), "--no-plots", *args]) == 0
    assert "Sharpe and Sortino are of the returns in excess of a risk-free rate of the per-period rates of" in " ".join(
        capsys.readouterr().out.split()
    )
    wf = json.loads((tmp_path / "wf" / "walkforward.json").read_text())
    oos = pd.read_csv(tmp_path / "wf" / "oos_values.csv")
    times = pd.to_datetime(oos["time"], utc=True)
    daily = pd.Series(rates, index=days)
    prev = [times[0] - pd.Timedelta(days=1), *times[:-1]]  # bar t takes the days in (bar t-1, bar t]; daily bars
    rf = np.array(
        [np.prod(1 + daily[(daily.index > a) & (daily.index <= b)]) - 1 for a, b in zip(prev, times, strict=True)]
    )
    ppy = wf["settings"]["data"]["periods_per_year"]
    for s in wf["strategies"]:
        sharpe, sortino = _excess_sharpe(oos[s].to_numpy(), 10_000.0, rf, ppy)
        assert wf["out_of_sample"][s]["sharpe"] == pytest.approx(sharpe, rel=1e-9), s
        assert wf["out_of_sample"][s]["sortino"] == pytest.approx(sortino, rel=1e-9), s
    rec = wf["settings"]["portfolio"]["risk_free"]
    assert rec["path"] == path and rec["kind"] == "per_period" and rec["per_bar"] == pytest.approx(rf.mean(), rel=1e-12)
    index = pd.DatetimeIndex(times)
    for fold in wf["folds"]:  # the returns its weights earned, from the value at the close they were traded at
        lo, hi = index.get_loc(pd.Timestamp(fold["traded_at"])), index.get_loc(pd.Timestamp(fold["held_until"]))
        for s, got in fold["out_of_sample"].items():
            v = oos[s].to_numpy()
            sharpe, sortino = _excess_sharpe(v[lo + 1 : hi + 1], v[lo], rf[lo + 1 : hi + 1], ppy)
            assert got["sharpe"] == pytest.approx(sharpe, rel=1e-9) and got["sortino"] == pytest.approx(
                sortino, rel=1e-9
            )
    base = [a for s in [*SMALL, *wf_args] for a in ("--set", s)]
    assert main(["walkforward", "--out", str(tmp_path / "none"), "--no-plots", *base]) == 0
    plain = json.loads((tmp_path / "none" / "walkforward.json").read_text())
    for s in wf["strategies"]:
        assert wf["out_of_sample"][s]["cagr"] == plain["out_of_sample"][s]["cagr"]
        assert wf["out_of_sample"][s]["sharpe"] < plain["out_of_sample"][s]["sharpe"]
    assert (
        wf["folds"][0]["in_sample"]["equal_weight"]["sharpe"] < plain["folds"][0]["in_sample"]["equal_weight"]["sharpe"]
    )


def test_a_run_refuses_rates_that_stop_before_its_last_bar_before_evolving(tmp_path, capsys):
    """Rates that cover the training window but not the held-out (or a test) window: ``evolve`` and ``walkforward``
    refuse before anything evolves or is written, naming the first bar without a rate."""
    from genetic_sizer.cli.main import main

    days = pd.date_range("2021-05-20", "2022-09-30", freq="D")
    path = _write(tmp_path / "short.csv", days.strftime("%Y-%m-%d"), np.full(len(days), 0.0001))
    rf = f"portfolio.risk_free={{path: {path}, kind: per_period}}"
    wf = ["walkforward.train=150", "walkforward.test=100"]
    for command, extra in (("evolve", []), ("walkforward", wf)):
        args = [a for s in [*SMALL, *extra, rf] for a in ("--set", s)]
        assert main([command, "--out", str(tmp_path / command), "--no-plots", *args]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "has no per_period rate for the bar at 2022-10-03T00:00:00+00:00" in err, command
        assert "no row in (2022-09-30T00:00:00+00:00, 2022-10-03T00:00:00+00:00]" in err, command
        assert not (tmp_path / command).exists()

"""Multi-strategy allocation: strategy return streams as the assets a genome weights (a CSV of strategy returns,
or ``data.strategies``: run directories of earlier champions), risk budgets per strategy, and the live book that
combines the strategies' targets. Figures are checked against hand computations and vectorbt."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from genetic_sizer.backtest.simulate import backtest
from genetic_sizer.cli.main import main
from genetic_sizer.config import AllocatorsConfig, DataConfig, RunConfig
from genetic_sizer.data.loaders import load, load_from_config
from genetic_sizer.errors import ConfigError, DataError, RunDirError
from genetic_sizer.runs.champion import load as load_champion
from genetic_sizer.runs.strategies import load_data, strategy_stream


def _evolve(out, *sets, plots=False) -> None:
    argv = ["evolve", "--out", str(out)]
    for s in sets:
        argv += ["--set", s]
    assert main(argv + ([] if plots else ["--no-plots"])) == 0


def _coins_csv(path, seed=3) -> None:
    """Synthetic prices of three coins on a 7-day calendar, 2016-07-01 .. 2020-06-30."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2016-07-01", "2020-06-30", freq="D", name="time")
    close = 100 * np.exp(np.cumsum(rng.normal(3e-4, 0.025, (len(idx), 3)), axis=0))
    pd.DataFrame(close, index=idx, columns=["BTC", "ETH", "SOL"]).to_csv(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two strategy runs: four embedded stocks (weekdays, monthly rebalance, 2016-2019) and three synthetic coins
    (every day, weekly rebalance, fees 0.001, 2016-07 .. 2020-06)."""
    root = tmp_path_factory.mktemp("strategies")
    _evolve(
        root / "stocks",
        "data.symbols=[AAPL, KO, XOM, JNJ]",
        "data.start=2016-01-01",
        "data.end=2019-12-31",
        "evolution.population=8",
        "evolution.generations=1",
        "evolution.holdout=0.25",
    )
    _coins_csv(root / "coins.csv")
    _evolve(
        root / "coinrun",
        "data.source=csv",
        f"data.path={root / 'coins.csv'}",
        "portfolio.rebalance=W",
        "portfolio.fees=0.001",
        "evolution.population=8",
        "evolution.generations=1",
    )
    return root


def _vbt_stream(run_dir) -> pd.Series:
    """A champion's value per bar on its run's data, simulated by vectorbt (``Portfolio.from_orders``)."""
    champ = load_champion(run_dir / "champion.json")
    config = RunConfig.from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    prices = load_from_config(config.data)
    bt = backtest(
        prices,
        champ.weights,
        rebalance=champ.rebalance,
        fees=config.portfolio.fees,
        slippage=config.portfolio.slippage,
        init_cash=config.portfolio.init_cash,
        engine="vectorbt",
    )
    return pd.Series(bt.value[:, 0], index=prices.index)


# ------------------------------------------------------------------------------------------------- a CSV of returns
def test_a_csv_of_strategy_returns_evolves_and_the_champion_compounds_by_hand(tmp_path):
    rng = np.random.default_rng(7)
    idx = pd.bdate_range("2021-01-04", periods=300, name="date")
    names = {"trend": (5e-4, 0.010), "carry": (2e-4, 0.004), "meanrev": (3e-4, 0.007)}
    r = pd.DataFrame({k: rng.normal(mu, sd, 300) for k, (mu, sd) in names.items()}, index=idx)
    r.to_csv(tmp_path / "strategies.csv")
    out = tmp_path / "run"
    _evolve(
        out,
        "data.source=csv",
        f"data.path={tmp_path / 'strategies.csv'}",
        "data.kind=returns",
        "data.returns_unit=fraction",
        "portfolio.rebalance=D",
        "portfolio.fees=0",
        "evolution.population=8",
        "evolution.generations=1",
        "evolution.holdout=0.25",
    )
    champ = load_champion(out / "champion.json")
    assert champ.assets == ("trend", "carry", "meanrev")
    # by hand: rebalanced every bar without fees, the value grows by 1 + w . r each bar of the in-sample window
    last = pd.Timestamp(champ.data["last_bar"]).tz_convert(None)
    window = r.loc[:last]  # the first price sits a weekday before the first return: every return up to last_bar
    assert champ.data["first_bar"].startswith("2021-01-01")  # the weekday before 2021-01-04
    expected = np.prod(1.0 + window.to_numpy() @ champ.weights) - 1.0
    assert champ.metrics["total_return"] == pytest.approx(expected, rel=1e-10)
    assert (out / "summary.csv").is_file()


def test_a_strategy_that_starts_later_is_a_leading_gap(tmp_path):
    text = "date,old,new\n2024-01-01,0.01,\n2024-01-02,0.02,\n2024-01-03,-0.01,0.03\n2024-01-04,0.02,-0.02\n"
    (tmp_path / "s.csv").write_text(text)
    p = load("csv", tmp_path / "s.csv", kind="returns", returns_unit="fraction")  # leading_gaps: trim (default)
    # the returns start on the first row both strategies have one; the first price (1.0) sits a weekday before it
    assert [str(t.date()) for t in p.index] == ["2024-01-02", "2024-01-03", "2024-01-04"]
    np.testing.assert_allclose(p.close, [[1.0, 1.0], [0.99, 1.03], [0.99 * 1.02, 1.03 * 0.98]], rtol=1e-15)
    assert any("2 leading row(s) trimmed: no return yet for ['new'] before 2024-01-03" in n for n in p.notes)
    with pytest.raises(DataError, match=r"the return of 'new' at 2024-01-01.* is nan"):
        load("csv", tmp_path / "s.csv", kind="returns", returns_unit="fraction", leading_gaps="error")
    gap = text.replace("2024-01-04,0.02,-0.02", "2024-01-04,0.02,")  # a hole after the start is still refused
    (tmp_path / "g.csv").write_text(gap)
    with pytest.raises(DataError, match=r"the return of 'new' at 2024-01-04.* is nan"):
        load("csv", tmp_path / "g.csv", kind="returns", returns_unit="fraction")


# --------------------------------------------------------------------------------------- run directories as assets
def test_run_directories_become_aligned_strategy_prices(runs):
    prices = load_data(DataConfig(strategies=[str(runs / "stocks"), {"coins": str(runs / "coinrun")}]))
    assert prices.symbols == ("stocks", "coins")
    stocks, coins = _vbt_stream(runs / "stocks"), _vbt_stream(runs / "coinrun")
    # the window: from the later start (the coins' first bar) to the earlier end (the stocks' last bar)
    assert prices.index[0] == coins.index[0] == pd.Timestamp("2016-07-01", tz="UTC")
    assert prices.index[-1] == stocks.index[-1]
    assert prices.periods_per_year == 365.0  # the union of a weekday and a 7-day calendar is every day
    frame = prices.to_frame()
    # the coins' stream: vectorbt's value of the coins' champion over its first value
    c = coins.loc[: prices.index[-1]]
    np.testing.assert_allclose(frame["coins"].to_numpy(), (c / c.iloc[0]).to_numpy(), rtol=1e-9)
    # the stocks' stream on its own bars: vectorbt's value over its first value (2016-01-04, before the window)
    base = stocks.iloc[0]
    own = stocks.loc[prices.index[0] :]
    np.testing.assert_allclose(frame["stocks"].reindex(own.index).to_numpy(), (own / base).to_numpy(), rtol=1e-9)
    # a weekend has no stock bar: the stocks' value stands at Friday's close (no profit or loss on Saturday, Sunday)
    fri, sat, sun = (pd.Timestamp(d, tz="UTC") for d in ("2018-03-09", "2018-03-10", "2018-03-11"))
    assert frame.loc[sat, "stocks"] == frame.loc[sun, "stocks"] == frame.loc[fri, "stocks"]
    assert frame.loc[fri, "stocks"] == pytest.approx(stocks.loc[fri] / base, rel=1e-12)
    assert any(
        "strategy stocks: the champion" in n and "evolved on 2016-01-04T00:00:00+00:00 .. 2018-12-31" in n
        for n in prices.notes
    )
    assert any("streams cut at 2019-12-31" in n and "coins" in n for n in prices.notes)
    # data.symbols and data.end select as for any prices
    both = [str(runs / "stocks"), str(runs / "coinrun")]
    sub = load_data(DataConfig(strategies=both, symbols=["coinrun", "stocks"], end="2018-06-30"))
    assert sub.symbols == ("coinrun", "stocks") and sub.index[-1] == pd.Timestamp("2018-06-30", tz="UTC")
    np.testing.assert_allclose(sub.close[:, 0], frame["coins"].loc[: sub.index[-1]].to_numpy(), rtol=1e-12)


def test_strategy_stream_is_the_champion_with_its_own_strategy(runs):
    s = strategy_stream("coins", runs / "coinrun")
    ref = _vbt_stream(runs / "coinrun")
    np.testing.assert_allclose(s.value.to_numpy(), ref.to_numpy(), rtol=1e-9)
    assert "rebalance W" in s.how and "fees 0.001" in s.how


def test_evolve_walkforward_and_report_on_strategies(runs, tmp_path):
    strategies = f"data.strategies=[{runs / 'stocks'}, {{coins: {runs / 'coinrun'}}}]"
    out = tmp_path / "alloc"
    _evolve(
        out, strategies, "portfolio.rebalance=D", "portfolio.fees=0", "evolution.population=8",
        "evolution.generations=1", plots=True,
    )  # fmt: skip
    champ = load_champion(out / "champion.json")
    assert champ.assets == ("stocks", "coins")
    assert champ.data["strategies"] == {"stocks": str(runs / "stocks"), "coins": str(runs / "coinrun")}
    assert champ.data["source"] == "strategies (stocks, coins)"
    assert (out / "report.html").is_file() and "stocks" in (out / "report.html").read_text()
    # by hand: every bar rebalanced to the champion's weights without fees
    prices = load_data(DataConfig(strategies=[str(runs / "stocks"), {"coins": str(runs / "coinrun")}]))
    frame = prices.to_frame().loc[: pd.Timestamp(champ.data["last_bar"])]
    r = frame.pct_change().iloc[1:].to_numpy()
    assert champ.metrics["total_return"] == pytest.approx(np.prod(1.0 + r @ champ.weights) - 1.0, rel=1e-10)
    # stress without a config: the streams of the run directories the champion recorded
    from genetic_sizer.runs.stress import stress_champion

    stress = stress_champion(out / "champion.json")
    assert (
        stress["data"]["source"] == "the strategies' run directories (recorded)" and stress["data"]["same_as_evolved"]
    )
    # live: the allocation champion's strategies, read back from their run directories
    from genetic_sizer.errors import SizingError
    from genetic_sizer.live.combine import parts_of

    parts, calendar = parts_of(champ)
    assert [p.name for p in parts] == ["stocks", "coins"]
    assert [p.allocation for p in parts] == list(champ.weights)
    coins = load_champion(runs / "coinrun" / "champion.json")
    assert parts[1].weights == dict(zip(coins.assets, coins.weights, strict=True))
    assert (calendar.spec, parts[0].calendar.spec, parts[1].calendar.spec) == ("1d", "M", "W")
    with pytest.raises(SizingError, match=r"not a multi-strategy allocation"):
        parts_of(coins)
    # the same strategies walked forward
    wf = tmp_path / "wf"
    code = main(
        ["walkforward", "--out", str(wf), "--set", strategies, "--set", "walkforward.train=400",
         "--set", "walkforward.test=200", "--set", "evolution.population=8", "--set", "evolution.generations=1",
         "--no-plots"]
    )  # fmt: skip
    assert code == 0
    record = json.loads((wf / "walkforward.json").read_text())
    assert len(record["folds"]) == (prices.n_bars - 400) // 200
    assert load_champion(wf / "champion.json").assets == ("stocks", "coins")


def test_bad_strategy_directories_are_named(runs, tmp_path):
    with pytest.raises(RunDirError, match=r"data.strategies: 'nowhere' \(.*nowhere\): no run directory"):
        load_data(DataConfig(strategies=[str(tmp_path / "nowhere")]))
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(runs / "stocks" / "config.yaml", half / "config.yaml")
    with pytest.raises(RunDirError, match=r"'half' .*has no champion.json"):
        load_data(DataConfig(strategies=[str(half), str(runs / "stocks")]))
    # the data changed since the champion was evolved: its fingerprint no longer matches
    moved = tmp_path / "moved"
    shutil.copytree(runs / "coinrun", moved)
    frame = pd.read_csv(runs / "coins.csv", index_col=0)
    frame.iloc[10, 0] *= 1.01
    frame.to_csv(tmp_path / "edited.csv")
    cfg = yaml.safe_load((moved / "config.yaml").read_text())
    cfg["data"]["path"] = str(tmp_path / "edited.csv")
    (moved / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(RunDirError, match=r"'moved' .*is not the data it was evolved on"):
        load_data(DataConfig(strategies=[str(moved), str(runs / "stocks")]))
    # a run that lists itself
    loop = tmp_path / "loop"
    shutil.copytree(runs / "stocks", loop)
    cfg = yaml.safe_load((loop / "config.yaml").read_text())
    cfg["data"] = {"strategies": [str(loop), str(runs / "stocks")]}
    (loop / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"lists itself"):
        load_data(DataConfig(strategies=[str(loop), str(runs / "coinrun")]))
    # the data layer reads files only
    with pytest.raises(ConfigError, match=r"data.strategies .* are run directories"):
        load_from_config(DataConfig(strategies=[str(runs / "stocks")]))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"strategies": []}, r"data.strategies must be a non-empty list"),
        ({"strategies": "runs/a"}, r"data.strategies must be a non-empty list"),
        ({"strategies": ["runs/a", "other/a"]}, r"data.strategies\[1\] must be a strategy not named 'a' again"),
        ({"strategies": [{"a": "x", "b": "y"}]}, r"data.strategies\[0\] must be a run directory or one"),
        ({"strategies": [""]}, r"data.strategies\[0\] must be a non-empty string"),
        ({"strategies": ["runs/a"], "source": "csv", "path": "f.csv"}, r"data.source must be 'default'.*got 'csv'"),
        ({"strategies": ["runs/a"], "kind": "returns", "returns_unit": "fraction"}, r"data.kind must be 'prices'"),
    ],
)
def test_config_errors_name_the_field_and_the_value(data, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict({"data": data})


def test_the_key_keeps_old_fingerprints_and_round_trips():
    assert RunConfig().sha256() == RunConfig.from_dict({"data": {"strategies": None}}).sha256()
    cfg = RunConfig.from_dict({"data": {"strategies": ["runs/a/", {"b": "x/y"}]}})
    assert cfg.data.strategy_dirs() == (("a", "runs/a/"), ("b", "x/y"))
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.sha256() != RunConfig().sha256()


# ------------------------------------------------------------------------------------------------------ risk budgets
def test_risk_budgeting_on_strategies_meets_the_budgets(runs):
    from genetic_sizer.allocators.classical import fit_allocations

    prices = load_data(DataConfig(strategies=[str(runs / "stocks"), {"coins": str(runs / "coinrun")}]))
    settings = AllocatorsConfig(budgets={"stocks": 3, "coins": 1})
    fitted, skipped = fit_allocations(
        prices, np.zeros(2), np.ones(2), 0.0, names=("risk_budgeting",), settings=settings
    )
    assert skipped == {}
    w = fitted["risk_budgeting"]
    r = np.diff(prices.close, axis=0) / prices.close[:-1]
    cov = np.cov(r, rowvar=False)
    shares = w * (cov @ w) / (w @ cov @ w)  # each strategy's share of the portfolio variance
    np.testing.assert_allclose(shares, [0.75, 0.25], atol=1e-6)
    assert w.sum() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match=r"allocators.budgets.BTC"):
        fit_allocations(prices, np.zeros(2), np.ones(2), 0.0, names=("risk_budgeting",),
                        settings=AllocatorsConfig(budgets={"BTC": 1, "default": 1}))  # fmt: skip


def test_load_still_reads_files(runs):
    assert load("csv", runs / "coins.csv").symbols == ("BTC", "ETH", "SOL")


# ----------------------------------------------------------------------------------------------------- the live book
def _parts():
    from genetic_sizer.live.combine import StrategyPart
    from genetic_sizer.live.guards import Period

    a = StrategyPart("trend", 0.7, {"BTC": 0.6, "ETH": 0.4}, calendar=Period.parse("M"))
    b = StrategyPart("carry", 0.3, {"ETH": 0.5, "SOL": 0.5}, calendar=Period.parse("D"))
    return a, b


DAY = 86400.0
T0 = 1_717_200_000.0  # 2024-06-01 00:00 UTC (a Saturday), the first day of June


def test_two_strategies_combine_into_one_book_by_hand():
    from genetic_sizer.live.combine import combine

    a, b = _parts()
    mids = {"BTC": 50_000.0, "ETH": 2_500.0, "SOL": 100.0}
    book = combine([a, b], 10_000.0, mids, T0 + 3600)
    # trend: 0.7 x 10000 = 7000 -> BTC 0.6 x 7000 / 50000, ETH 0.4 x 7000 / 2500; carry: 3000 -> ETH 0.6, SOL 15
    assert book.sizes == pytest.approx({"BTC": 0.084, "ETH": 1.12 + 0.6, "SOL": 15.0}, rel=1e-12)
    assert book.weights == pytest.approx({"BTC": 0.42, "ETH": 0.28 + 0.15, "SOL": 0.15}, rel=1e-12)
    assert book.leverage == 1.0 and set(book.changed) == {"trend", "carry"}
    # a day later, inside June: trend's monthly calendar holds its sizes, carry's daily calendar re-sets its part
    mids2 = {"BTC": 55_000.0, "ETH": 2_500.0, "SOL": 110.0}
    equity = 10_000.0 + 0.084 * 5_000 + 15 * 10  # the account gained what the book's sizes made
    book2 = combine([a, b], equity, mids2, T0 + DAY + 3600, state=book.to_dict())
    assert book2.changed == ("carry",)
    carry = 3_000.0 + 15 * 10  # carry's capital: its 3000 plus its SOL gain (ETH did not move)
    expected = {"BTC": 0.084, "ETH": 1.12 + 0.5 * carry / 2_500, "SOL": 0.5 * carry / 110}
    assert book2.sizes == pytest.approx(expected, rel=1e-12)
    assert book2.capital["trend"] == pytest.approx(7_000 + 0.084 * 5_000, rel=1e-12)
    assert book2.capital["carry"] == pytest.approx(carry, rel=1e-12)
    # another day in June at the same mids: trend's gain is counted once (its capital is still 7420, not 7840)
    book2b = combine([a, b], equity, mids2, T0 + 2 * DAY + 3600, state=book2.to_dict())
    assert book2b.capital["trend"] == pytest.approx(7_000 + 0.084 * 5_000, rel=1e-12)
    assert book2b.sizes == pytest.approx(book2.sizes, rel=1e-12)
    assert book2.weights["BTC"] == pytest.approx(0.084 * 55_000 / equity, rel=1e-12)
    assert "held" in book2.reasons["trend"]
    # July: a new month re-sets trend too; with an allocation calendar of M the capital is re-split 0.7 / 0.3
    from genetic_sizer.live.guards import Period

    july = T0 + 30 * DAY + 3600
    book3 = combine([a, b], equity, mids2, july, calendar=Period.parse("M"), state=book2.to_dict())
    assert set(book3.changed) == {"trend", "carry"}
    assert book3.sizes["BTC"] == pytest.approx(0.6 * 0.7 * equity / 55_000, rel=1e-12)
    # every calendar due: the plain sum of allocation x target weights
    assert book3.weights == pytest.approx({"BTC": 0.42, "ETH": 0.43, "SOL": 0.15}, rel=1e-12)


def test_the_sizer_trades_the_combined_book():
    from genetic_sizer.exchange.wire import AssetInfo
    from genetic_sizer.live.combine import StrategyPart, combine
    from genetic_sizer.live.sizer import SizerSettings, plan_orders

    long_btc = StrategyPart("long", 0.5, {"BTC": 1.0}, leverage=2.0)
    hedge = StrategyPart("hedge", 0.5, {"BTC": -0.5, "ETH": 0.5}, leverage=1.0)
    mids = {"BTC": 50_000.0, "ETH": 2_500.0}
    book = combine([long_btc, hedge], 20_000.0, mids, T0)
    # BTC: 1.0 x 2 x 10000 / 50000 = 0.4 long, -0.5 x 1 x 10000 / 50000 = -0.1 short: nets to 0.3
    assert book.sizes == pytest.approx({"BTC": 0.3, "ETH": 2.0}, rel=1e-12)
    assert book.leverage == pytest.approx(1.5)
    meta = {c: AssetInfo(c, 4, 20.0) for c in mids}
    plan = plan_orders(book.weights, 20_000.0, {}, mids, meta, SizerSettings(leverage=book.leverage))
    assert {o.coin: o.size for o in plan.orders} == pytest.approx({"BTC": 0.3, "ETH": 2.0}, rel=1e-12)


def test_bad_books_are_refused():
    from genetic_sizer.errors import SizingError
    from genetic_sizer.live.combine import StrategyPart, combine

    a, b = _parts()
    mids = {"BTC": 50_000.0, "ETH": 2_500.0, "SOL": 100.0}
    with pytest.raises(SizingError, match=r"allocations must sum to 1, got 1.2"):
        combine([a, StrategyPart("x", 0.5, {"SOL": 1.0})], 1e4, mids, T0)
    with pytest.raises(SizingError, match=r"no valid mid price for 'SOL'"):
        combine([a, b], 1e4, {"BTC": 1.0, "ETH": 1.0}, T0)
    with pytest.raises(SizingError, match=r"allocation of strategy 'y' must be a number >= 0, got -0.1"):
        StrategyPart("y", -0.1, {})
    with pytest.raises(SizingError, match=r"account value is 0"):
        combine([a, b], 0, mids, T0)


def test_size_refuses_an_allocation_whose_strategy_runs_are_missing(tmp_path, capsys, monkeypatch):
    """An allocation champion's assets are strategies: ``genetic-sizer size`` reads their champions and refuses one it
    cannot find, naming it, before it sends anything (the real SDK against the fake exchange on 127.0.0.1)."""
    from genetic_sizer.runs import champion as C
    from tests.fake_hyperliquid import FakeHyperliquid

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HL_SECRET_KEY", raising=False)
    record = C.build(
        symbols=["trend", "carry"],
        weights=[0.6, 0.4],
        metrics={"sharpe": 1.0},
        objective=["sharpe"],
        portfolio={
            "direction": "longonly",
            "min_weight": 0.0,
            "max_weight": 1.0,
            "rebalance": "M",
            "fees": 0.0,
            "slippage": 0.0,
            "init_cash": 10000.0,
            "market": "spot",
        },
        data={
            "source": "strategies (trend, carry)",
            "first_bar": "2025-01-01T00:00:00+00:00",
            "last_bar": "2025-06-01T00:00:00+00:00",
            "n_bars": 152,
            "periods_per_year": 365,
            "close_sha256": "0" * 64,
            "strategies": {"trend": "runs/trend", "carry": "runs/carry"},
        },
        evolution={"seed": 1},
        config_sha256="0" * 64,
        selection="test",
        verification={"engine": "vectorbt"},
    )
    champ = C.write(record, tmp_path / "alloc.json")
    universe = [
        {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
        {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
    ]
    with FakeHyperliquid(universe=universe, mids={"BTC": 60_000.0, "ETH": 3_000.0}, account_value=10_000.0) as fake:
        code = main(["size", "--champion", str(champ), "--base-url", fake.url])
        assert fake.exchange_requests == []
    assert code != 0
    err = capsys.readouterr().err
    assert "alloc.json: strategy 'trend': runs/trend/champion.json: no such champion file" in err


def test_a_changed_allocation_re_splits_every_strategys_capital():
    """A new allocation (one strategy's weight changed, one added) re-splits the whole account value: a strategy whose
    allocation did not change must not keep its grown capital, or the parts would size more than the account."""
    from genetic_sizer.live.combine import StrategyPart, combine

    a, b = StrategyPart("a", 0.5, {"BTC": 1.0}), StrategyPart("b", 0.5, {"ETH": 1.0})
    book = combine([a, b], 10_000.0, {"BTC": 100.0, "ETH": 100.0}, T0)
    mids = {"BTC": 100.0, "ETH": 120.0, "SOL": 10.0}
    equity = 10_000.0 + 50 * 20.0  # b's 50 ETH gained 20 each
    new = [StrategyPart("a", 0.3, {"BTC": 1.0}), b, StrategyPart("c", 0.2, {"SOL": 1.0})]
    book2 = combine(new, equity, mids, T0 + DAY, state=book.to_dict())
    assert book2.capital == pytest.approx({"a": 0.3 * equity, "b": 0.5 * equity, "c": 0.2 * equity}, rel=1e-12)
    assert sum(book2.capital.values()) == pytest.approx(equity, rel=1e-12)  # old code: 11500 on an 11000 account
    assert book2.sizes == pytest.approx({"BTC": 3_300 / 100, "ETH": 5_500 / 120, "SOL": 2_200 / 10}, rel=1e-12)
    assert set(book2.changed) == {"a", "b", "c"}
    # a strategy dropped from the allocation also re-splits: the remaining one trades the whole account
    book3 = combine([StrategyPart("a", 1.0, {"BTC": 1.0})], equity, mids, T0 + DAY, state=book.to_dict())
    assert book3.capital == pytest.approx({"a": equity}, rel=1e-12)


def test_a_strategy_that_lost_more_than_its_capital_is_flat_not_reversed():
    """A levered strategy whose losses exceed its capital is set flat at its next re-set: ``w x L x C / mid`` with a
    negative ``C`` would turn its long targets into shorts."""
    from genetic_sizer.live.combine import StrategyPart, combine
    from genetic_sizer.live.guards import Period

    lev = StrategyPart("lev", 0.5, {"BTC": 1.0}, leverage=3.0, calendar=Period.parse("D"))
    flat = StrategyPart("eth", 0.5, {"ETH": 1.0})
    book = combine([lev, flat], 10_000.0, {"BTC": 100.0, "ETH": 100.0}, T0)
    assert book.sizes["BTC"] == pytest.approx(150.0, rel=1e-12)  # 1.0 x 3 x 5000 / 100
    mids = {"BTC": 60.0, "ETH": 100.0}  # -40 on 150 BTC: -6000, more than its 5000
    book2 = combine([lev, flat], 4_000.0, mids, T0 + DAY, state=book.to_dict())
    assert book2.capital["lev"] == pytest.approx(-1_000.0, rel=1e-12)
    assert book2.sizes.get("BTC", 0.0) == 0.0  # old code: -50 BTC, a short the strategy never targets
    assert book2.sizes["ETH"] == pytest.approx(50.0, rel=1e-12)
    assert "lost its capital" in book2.reasons["lev"]


def test_an_allocation_window_over_a_strategys_in_sample_window_is_warned(runs):
    """Bars where a strategy's champion was selected flatter its stream: an allocation window that overlaps a
    strategy's in-sample window is a DataWarning and a note naming those strategies and the bar after which every
    stream is out of sample; a window after it is not warned."""
    from genetic_sizer.errors import DataWarning

    ends = {n: pd.Timestamp(load_champion(runs / d / "champion.json").data["last_bar"]) for n, d in
            (("stocks", "stocks"), ("coins", "coinrun"))}  # fmt: skip
    assert ends["stocks"] < ends["coins"] < pd.Timestamp("2019-12-01", tz="UTC")
    both = [str(runs / "stocks"), {"coins": str(runs / "coinrun")}]
    with pytest.warns(DataWarning, match=r"overlaps the in-sample window\(s\) of \['stocks', 'coins'\]"):
        p = load_data(DataConfig(strategies=both))
    note = [n for n in p.notes if "overlaps the in-sample" in n]
    assert len(note) == 1 and f"data.start after {ends['coins'].date()}" in note[0]
    day = pd.Timedelta(days=1)
    with pytest.warns(DataWarning, match=r"in-sample window\(s\) of \['coins'\]"):  # stocks' ended before
        load_data(DataConfig(strategies=both, start=str((ends["stocks"] + day).date())))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        after = load_data(DataConfig(strategies=both, start=str((ends["coins"] + day).date())))
    assert after.index[0] > ends["coins"] and not any("overlaps the in-sample" in n for n in after.notes)


def test_an_allocation_rebalance_scales_a_held_part_without_resetting_its_mix():
    """The allocation rebalanced daily, a strategy on a monthly calendar: its capital is re-split, but its part keeps
    the mix it drifted to (its sizes scaled by new capital / its value now), as the allocation's simulation holds a
    strategy's stream; only its own calendar re-sets it to its targets."""
    from genetic_sizer.live.combine import StrategyPart, combine
    from genetic_sizer.live.guards import Period

    a = StrategyPart("monthly", 0.5, {"BTC": 0.5, "ETH": 0.5}, calendar=Period.parse("M"))
    b = StrategyPart("daily", 0.5, {"SOL": 1.0}, calendar=Period.parse("D"))
    daily = Period.parse("D")
    book = combine([a, b], 10_000.0, {"BTC": 100.0, "ETH": 100.0, "SOL": 100.0}, T0, calendar=daily)
    assert book.sizes == pytest.approx({"BTC": 25.0, "ETH": 25.0, "SOL": 50.0}, rel=1e-12)
    mids = {"BTC": 140.0, "ETH": 100.0, "SOL": 100.0}
    equity = 10_000.0 + 25 * 40.0  # the monthly part is worth 6000, the daily one 5000
    book2 = combine([a, b], equity, mids, T0 + DAY, calendar=daily, state=book.to_dict())
    k = 0.5 * equity / 6_000.0  # the monthly part's new capital over what it is worth now
    assert book2.capital == pytest.approx({"monthly": 5_500.0, "daily": 5_500.0}, rel=1e-12)
    # old code: re-set to its targets, BTC 0.5 x 5500 / 140 = 19.64, ETH 27.5 (a monthly strategy rebalanced daily)
    assert book2.sizes == pytest.approx({"BTC": 25.0 * k, "ETH": 25.0 * k, "SOL": 55.0}, rel=1e-12)
    assert "scaled" in book2.reasons["monthly"]
    # the next day at the same mids: its value is its new capital, still in June's period (nothing to re-set)
    book3 = combine([a, b], equity, mids, T0 + 2 * DAY, calendar=daily, state=book2.to_dict())
    assert book3.capital["monthly"] == pytest.approx(5_500.0, rel=1e-12)
    assert book3.sizes == pytest.approx(book2.sizes, rel=1e-12)
    # July: its own calendar re-sets it to its targets
    july = combine([a, b], equity, mids, T0 + 30 * DAY, calendar=daily, state=book3.to_dict())
    assert july.sizes["BTC"] == pytest.approx(0.5 * 5_500.0 / 140.0, rel=1e-12)


def test_the_live_book_refuses_a_strategy_champion_replaced_since_the_allocation(runs, tmp_path):
    """The allocation champion records which champion each strategy run held (its config and data fingerprints and
    weights): a run directory whose champion.json was replaced since is refused by name before any book is sized."""
    from genetic_sizer.errors import SizingError
    from genetic_sizer.live.combine import parts_of

    shutil.copytree(runs / "stocks", tmp_path / "stocks")
    shutil.copytree(runs / "coinrun", tmp_path / "coins")
    out = tmp_path / "alloc"
    _evolve(
        out, f"data.strategies=[{tmp_path / 'stocks'}, {tmp_path / 'coins'}]", "data.start=2019-10-01",
        "evolution.population=8", "evolution.generations=1", "evolution.holdout=0",
    )  # fmt: skip
    champ = load_champion(out / "champion.json")
    coins = load_champion(tmp_path / "coins" / "champion.json")
    assert champ.data["strategy_champions"]["coins"] == {
        "config_sha256": coins.config_sha256,
        "close_sha256": coins.data["close_sha256"],
        "weights": dict(zip(coins.assets, coins.weights.tolist(), strict=True)),
    }
    assert [p.name for p in parts_of(champ)[0]] == ["stocks", "coins"]
    shutil.copy(runs / "stocks" / "champion.json", tmp_path / "coins" / "champion.json")  # another champion
    with pytest.raises(SizingError, match=r"strategy 'coins': .*champion.json is not the champion the allocation"):
        parts_of(champ)


# ------------------------------------------------------------------------------ the live book in `genetic-sizer size`
def _live_champion(path, weights, rebalance, *, strategies=None, recorded=None):
    from genetic_sizer.runs import champion as C

    data = {
        "source": "strategies" if strategies else "hyperliquid:test",
        "first_bar": "2025-01-01T00:00:00+00:00",
        "last_bar": "2025-06-01T00:00:00+00:00",
        "n_bars": 152,
        "periods_per_year": 365,
        "close_sha256": "0" * 64,
    }
    if strategies:
        data["strategies"] = strategies
        data["strategy_champions"] = recorded
    record = C.build(
        symbols=list(weights),
        weights=list(weights.values()),
        metrics={"sharpe": 1.0},
        objective=["sharpe"],
        portfolio={
            "direction": "longonly",
            "min_weight": 0.0,
            "max_weight": 1.0,
            "rebalance": rebalance,
            "fees": 0.0,
            "slippage": 0.0,
            "init_cash": 10000.0,
            "market": "perp",
            "leverage": 1.0,
        },
        data=data,
        evolution={"seed": 1},
        config_sha256="0" * 64,
        selection="test",
        verification={"engine": "vectorbt"},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    return C.write(record, path)


@pytest.fixture
def live_book(tmp_path, monkeypatch):
    """A monthly strategy (trend: BTC 0.6, ETH 0.4) and a daily one (carry: ETH 0.5, SOL 0.5), allocated 0.7 / 0.3
    on a monthly calendar; the fake exchange on 127.0.0.1 with 10000 in the account."""
    from tests.fake_hyperliquid import FakeHyperliquid
    from tests.test_live_cli import AGENT, MAIN, UNIVERSE

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HL_SECRET_KEY", raising=False)
    monkeypatch.delenv("HL_ACCOUNT_ADDRESS", raising=False)
    trend = _live_champion(tmp_path / "runs" / "trend" / "champion.json", {"BTC": 0.6, "ETH": 0.4}, "M")
    carry = _live_champion(tmp_path / "runs" / "carry" / "champion.json", {"ETH": 0.5, "SOL": 0.5}, "D")
    recorded = {
        name: {"config_sha256": "0" * 64, "close_sha256": "0" * 64, "weights": w}
        for name, w in (("trend", {"BTC": 0.6, "ETH": 0.4}), ("carry", {"ETH": 0.5, "SOL": 0.5}))
    }
    alloc = _live_champion(
        tmp_path / "alloc.json",
        {"trend": 0.7, "carry": 0.3},
        "M",
        strategies={"trend": str(trend.parent), "carry": str(carry.parent)},
        recorded=recorded,
    )
    mids = {"BTC": 60_000.0, "ETH": 3_000.0, "SOL": 150.0}
    with FakeHyperliquid(
        universe=UNIVERSE, mids=mids, account_address=MAIN, agents=[AGENT], account_value=10_000.0
    ) as fake:
        yield fake, alloc, tmp_path


def _book_states(directory):
    return sorted(directory.glob("*-book-*.json"))


def test_size_previews_the_combined_book_and_sends_nothing(live_book, capsys):
    """trend 7000: BTC 0.6 x 7000 / 60000 = 0.07, ETH 0.4 x 7000 / 3000 = 0.93333; carry 3000: ETH 0.5, SOL 10."""
    import os

    from tests.test_live_cli import MAIN

    fake, alloc, _ = live_book
    code = main(["size", "--champion", str(alloc), "--base-url", fake.url, "--address", MAIN])
    out = capsys.readouterr().out
    assert code == 0 and fake.exchange_requests == []
    assert "multi-strategy book (2 strategies, leverage 1)" in out
    assert "target BTC: size 0.07," in out and "target ETH: size 1.43333" in out and "target SOL: size 10," in out
    code = main(["size", "--champion", str(alloc), "--base-url", fake.url, "--address", MAIN, "--json"])
    out = capsys.readouterr().out
    plan = json.loads(out[out.index("{") :])["plan"]
    assert code == 0 and fake.exchange_requests == []
    assert {o["coin"]: o["size"] for o in plan["orders"]} == pytest.approx({"BTC": 0.07, "ETH": 1.4333, "SOL": 10.0})
    assert _book_states(__import__("pathlib").Path(os.environ["GENETIC_SIZER_STATE_DIR"])) == []  # preview: no state


def test_size_executes_the_combined_book_and_a_next_day_pass_moves_only_the_daily_part(live_book, capsys, monkeypatch):
    """The execution reaches the hand-computed book; the state file (written after the pass completed, restored by
    the next) keeps trend's part through a pass in which only carry's daily calendar starts a new period."""
    import os
    from pathlib import Path

    from tests.test_live_cli import AGENT_KEY, MAIN

    fake, alloc, tmp_path = live_book
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    base = ["size", "--champion", str(alloc), "--base-url", fake.url, "--execute"]
    assert main([*base, "--journal", str(tmp_path / "j1.jsonl")]) == 0
    assert fake.position("BTC") == 0.07 and fake.position("ETH") == 1.4333 and fake.position("SOL") == 10.0
    (state_file,) = _book_states(Path(os.environ["GENETIC_SIZER_STATE_DIR"]))
    assert MAIN.lower() in state_file.name and "127.0.0.1" in state_file.name  # keyed by network and account
    state = json.loads(state_file.read_text())
    assert state["parts"]["carry"]["sizes"] == pytest.approx({"ETH": 0.5, "SOL": 10.0}, rel=1e-12)
    # the next day: carry's daily calendar is in a new period (its recorded period one day back), trend's month is
    # not; SOL rose 150 -> 165, BTC 60000 -> 66000
    state["parts"]["carry"]["period"] -= 1
    state_file.write_text(json.dumps(state))
    fake.mids.update({"BTC": 66_000.0, "SOL": 165.0})
    fake.account_value = 10_000.0 + 0.07 * 6_000 + 10 * 15
    sent = len(fake.exchange_requests)
    assert main([*base, "--journal", str(tmp_path / "j2.jsonl")]) == 0
    capsys.readouterr()
    carry = 3_000.0 + 10 * 15  # its capital: 3000 plus its SOL gain; trend holds 0.07 BTC, 0.93333 ETH
    assert len(fake.exchange_requests) > sent
    assert fake.position("BTC") == 0.07  # trend's part did not change: no BTC order
    assert fake.position("ETH") == pytest.approx(7_000 * 0.4 / 3_000 + 0.5 * carry / 3_000, abs=1e-4)
    assert fake.position("SOL") == pytest.approx(0.5 * carry / 165, abs=0.01)
    state = json.loads(state_file.read_text())
    assert state["parts"]["trend"]["sizes"] == pytest.approx({"BTC": 0.07, "ETH": 7_000 * 0.4 / 3_000}, rel=1e-12)
    assert state["parts"]["carry"]["capital"] == pytest.approx(carry, rel=1e-12)


def test_size_refuses_a_stale_or_missing_strategy_champion_by_name(live_book, capsys):
    fake, alloc, tmp_path = live_book
    carry = tmp_path / "runs" / "carry" / "champion.json"
    _live_champion(carry, {"ETH": 0.2, "SOL": 0.8}, "D")  # replaced since the allocation was evolved
    assert main(["size", "--champion", str(alloc), "--base-url", fake.url]) != 0
    assert "strategy 'carry'" in capsys.readouterr().err and fake.exchange_requests == []
    carry.unlink()
    assert main(["size", "--champion", str(alloc), "--base-url", fake.url]) != 0
    err = capsys.readouterr().err
    assert "strategy 'carry'" in err and "champion.json" in err and fake.exchange_requests == []

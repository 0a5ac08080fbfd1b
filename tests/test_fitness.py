"""Fitness metrics: equal to vectorbt's portfolio methods to 1e-9, hand-computed values, degenerate genomes."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.data import Prices
from genetic_sizer.errors import ConfigError
from genetic_sizer.fitness import compute_metrics
from genetic_sizer.simulate import backtest, rebalance_mask

from .conftest import make_prices, random_weights

METRIC_RTOL = 1e-9

VBT_METHODS = {
    "total_return": "total_return",
    "annualized_return": "annualized_return",
    "annualized_volatility": "annualized_volatility",
    "sharpe": "sharpe_ratio",
    "sortino": "sortino_ratio",
    "calmar": "calmar_ratio",
    "max_drawdown": "max_drawdown",
}


def _vbt_portfolio(prices, w, policy, fees, slippage, init_cash, periods_per_year):
    """vectorbt's own portfolio for these genomes, built here and not through genetic_sizer.simulate."""
    import vectorbt as vbt

    n_genomes, n_assets = w.shape
    tiled = np.tile(prices.close, (1, n_genomes))
    size = np.full(tiled.shape, np.nan)
    size[rebalance_mask(prices.index, policy)] = w.reshape(1, -1)
    direction = np.repeat(np.where((w >= 0).all(axis=1), 0, 2), n_assets)  # LongOnly=0, Both=2
    return vbt.Portfolio.from_orders(
        close=pd.DataFrame(tiled, index=prices.index.tz_localize(None)),
        size=size,
        size_type="targetpercent",
        direction=direction[None, :],
        group_by=np.repeat(np.arange(n_genomes), n_assets),
        cash_sharing=True,
        call_seq="auto",
        fees=fees,
        slippage=slippage,
        init_cash=init_cash,
        freq="1D",
    )


@contextmanager
def _year_of(days: float):
    """vectorbt annualizes with year_freq / freq; with freq = 1 day, a year of ``days`` bars."""
    import vectorbt as vbt

    old = vbt.settings.returns["year_freq"]
    vbt.settings.returns["year_freq"] = pd.Timedelta(days=days)
    try:
        yield
    finally:
        vbt.settings.returns["year_freq"] = old


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n_assets", "n_bars", "policy", "kind", "fees", "slippage", "ppy", "seed"),
    [
        (4, 800, "M", "longonly", 0.001, 0.0, 252, 1),
        (10, 1500, "W", "longonly", 0.0, 0.002, 365, 2),
        (6, 600, 5, "longshort", 0.005, 0.005, 252, 3),
        (20, 2500, "D", "longonly", 0.0005, 0.0005, 365, 4),
        (3, 300, "once", "longshort", 0.0, 0.0, 52, 5),
    ],
)
def test_metrics_equal_vectorbt(n_assets, n_bars, policy, kind, fees, slippage, ppy, seed):
    prices = make_prices(n_bars, n_assets, seed=seed, vol=0.03)
    w = random_weights(5, n_assets, seed=seed, kind=kind)
    pf = _vbt_portfolio(prices, w, policy, fees, slippage, 10_000.0, ppy)
    bt = backtest(prices, w, rebalance=policy, fees=fees, slippage=slippage, init_cash=10_000.0)
    np.testing.assert_allclose(bt.value, pf.value().to_numpy(), rtol=1e-8)
    got = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=ppy)
    with _year_of(ppy):
        for name, method in VBT_METHODS.items():
            ref = np.asarray(getattr(pf, method)())
            assert np.isfinite(ref).all(), name
            np.testing.assert_allclose(got[name], ref, rtol=METRIC_RTOL, atol=0, err_msg=name)
    np.testing.assert_array_equal(got["cagr"], got["annualized_return"])


def test_metrics_by_hand():
    v = np.array([110.0, 99.0, 121.0, 108.9])  # returns +10%, -10%, +22.22%, -10% from 100
    r = np.array([0.1, -0.1, 121 / 99 - 1, -0.1])
    m = compute_metrics(v, init_cash=100.0, periods_per_year=4)
    assert m["total_return"][0] == pytest.approx(0.089, rel=1e-12)
    assert m["annualized_return"][0] == pytest.approx(0.089, rel=1e-12)  # 4 bars = exactly one year
    assert m["annualized_volatility"][0] == pytest.approx(r.std(ddof=1) * 2, rel=1e-12)
    assert m["sharpe"][0] == pytest.approx(r.mean() / r.std(ddof=1) * 2, rel=1e-12)
    downside = np.sqrt(np.mean(np.minimum(r, 0) ** 2)) * 2
    assert m["sortino"][0] == pytest.approx(r.mean() * 4 / downside, rel=1e-12)
    assert m["max_drawdown"][0] == pytest.approx(99 / 110 - 1, rel=1e-12)
    assert m["calmar"][0] == pytest.approx(0.089 / 0.1, rel=1e-12)


def test_degenerate_genomes_give_finite_documented_values():
    flat = np.full(50, 100.0)
    rising = 100.0 * 1.01 ** np.arange(1, 51)
    m = compute_metrics(np.column_stack([flat, rising]), init_cash=100.0, periods_per_year=252)
    for name, arr in m.items():
        assert np.isfinite(arr).all(), name
    assert m["sharpe"][0] == 0.0 and m["sortino"][0] == 0.0 and m["calmar"][0] == 0.0
    assert m["max_drawdown"][0] == 0.0 and m["total_return"][0] == 0.0
    # constant 1% a bar: zero volatility (within rounding), no downside, no drawdown
    assert m["sortino"][1] == 0.0 and m["calmar"][1] == 0.0 and m["max_drawdown"][1] == 0.0
    assert m["annualized_return"][1] == pytest.approx(1.01**252 - 1, rel=1e-9)


def test_wiped_out_portfolio_has_annualized_return_minus_one():
    m = compute_metrics(np.array([50.0, 10.0, 0.0, 0.0]), init_cash=100.0, periods_per_year=252)
    assert m["annualized_return"][0] == -1.0
    assert m["max_drawdown"][0] == -1.0
    assert np.isfinite(m["sharpe"]).all()


def test_turnover_is_annualized_traded_fraction():
    prices = make_prices(365 * 2, 3, seed=4)  # two years of daily 24/7 bars
    bt = backtest(prices, [0.2, 0.3, 0.5], rebalance="M", fees=0.001)
    m = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=365, traded=bt.traded)
    assert m["turnover"][0] == pytest.approx(bt.traded[0] / 2, rel=1e-12)
    assert 0 < m["turnover"][0] < 12  # monthly trades of a fraction of the book
    held = backtest(prices, [0.2, 0.3, 0.5], rebalance="once")
    assert compute_metrics(held.value, init_cash=1e4, periods_per_year=365, traded=held.traded)["turnover"][0] == 0


def test_turnover_is_two_way_by_hand():
    """Two assets held 50/50 from 1000 and rebalanced every bar of a three-bar year, without costs."""
    a, b = (10.0, 20.0, 20.0), (10.0, 10.0, 5.0)
    prices = Prices(np.column_stack([a, b]), pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC"), ("A", "B"))
    # bar 1: 50 A and 50 B are worth 1000 and 500 (weights 2/3, 1/3); back to 1/2 each (37.5 A, 75 B)
    drift1 = abs(0.5 - 1000 / 1500) + abs(0.5 - 500 / 1500)  # sell 250 of A, buy 250 of B: 500 of 1500
    # bar 2: 37.5 A and 75 B are worth 750 and 375 (weights 2/3, 1/3 again)
    drift2 = abs(0.5 - 750 / 1125) + abs(0.5 - 375 / 1125)
    assert drift1 == pytest.approx(1 / 3) and drift2 == pytest.approx(1 / 3)
    bt = backtest(prices, [0.5, 0.5], rebalance=1, init_cash=1000.0)
    m = compute_metrics(bt.value, init_cash=1000.0, periods_per_year=3, traded=bt.traded)
    # two-way: buys plus sells, summed over the rebalances after the first, times 3 bars a year / 3 bars
    assert m["turnover"][0] == pytest.approx((drift1 + drift2) * 3 / 3, rel=1e-14)
    assert m["turnover"][0] == pytest.approx(2 / 3, rel=1e-14)  # one-way turnover would be 1/3


def test_turnover_is_documented_as_two_way():
    import genetic_sizer.fitness as F

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    fitness_section = readme[readme.index("### Fitness") : readme.index("## Evolution")]
    for where, text in (("genetic_sizer.fitness", F.__doc__), ("README Fitness", fitness_section)):
        assert "two-way turnover" in text and "one-way" not in text, where


def test_metrics_input_errors():
    with pytest.raises(ConfigError, match="init_cash"):
        compute_metrics(np.ones((5, 2)), init_cash=0.0, periods_per_year=252)
    with pytest.raises(ConfigError, match="periods_per_year"):
        compute_metrics(np.ones((5, 2)), init_cash=1.0, periods_per_year=float("nan"))
    with pytest.raises(ConfigError, match="NaN"):
        compute_metrics(np.array([[1.0], [np.nan]]), init_cash=1.0, periods_per_year=252)
    with pytest.raises(ConfigError, match="traded"):
        compute_metrics(np.ones((5, 2)), init_cash=1.0, periods_per_year=252, traded=[1.0])

"""Diversification and attribution (genetic_sizer.backtest.analytics) against hand computations and skfolio's
Portfolio measures (effective number of assets, diversification, variance contributions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genetic_sizer.backtest.analytics import attribution, diversification, risk_contributions, simple_returns
from genetic_sizer.errors import ConfigError


@pytest.fixture(scope="module")
def returns():
    rng = np.random.default_rng(7)
    corr = np.array([[1, 0.5, 0.2, 0.0], [0.5, 1, 0.3, 0.1], [0.2, 0.3, 1, -0.2], [0.0, 0.1, -0.2, 1]])
    vol = np.array([0.01, 0.02, 0.015, 0.03])
    return rng.multivariate_normal(np.full(4, 3e-4), corr * np.outer(vol, vol), size=500)


def test_two_assets_by_hand():
    """Two uncorrelated assets of volatility 1% and 2% held 50/50: variance 0.25(1e-4) + 0.25(4e-4) = 1.25e-4; the
    contributions are 0.25e-4 and 1e-4 (20% and 80%); the ratio (0.5% + 1%) / sqrt(1.25e-4) = 1.3416."""
    cov = np.array([[1e-4, 0.0], [0.0, 4e-4]])
    np.testing.assert_allclose(risk_contributions([0.5, 0.5], cov), [20.0, 80.0], rtol=1e-12)
    # returns whose sample covariance is exactly cov: +-1 sign patterns scaled
    r = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=float) * np.array([0.01, 0.02]) * math.sqrt(3 / 4)
    d = diversification([0.5, 0.5], r)
    assert d["hhi"] == pytest.approx(0.5) and d["effective_assets"] == pytest.approx(2.0)
    assert d["diversification_ratio"] == pytest.approx(0.015 / math.sqrt(1.25e-4), rel=1e-12)
    np.testing.assert_allclose(d["risk_contribution"], [20.0, 80.0], rtol=1e-12)
    one = diversification([1.0, 0.0], r)
    assert one["hhi"] == 1.0 and one["diversification_ratio"] == pytest.approx(1.0)
    # a long/short book: HHI of the gross weights, a hedge's contribution is negative when correlated
    hedge = risk_contributions([1.0, -0.25], np.array([[1e-4, 1.5e-4], [1.5e-4, 4e-4]]))
    assert hedge[1] < 0 and hedge.sum() == pytest.approx(100.0)
    assert diversification([0.6, -0.2], r)["hhi"] == pytest.approx(0.75**2 + 0.25**2)


def test_diversification_matches_skfolio(returns):
    from skfolio import Portfolio, RiskMeasure

    w = np.array([0.4, 0.3, 0.2, 0.1])
    d = diversification(w, returns)
    p = Portfolio(returns, w)
    assert d["effective_assets"] == pytest.approx(p.effective_number_assets, rel=1e-12)
    assert d["diversification_ratio"] == pytest.approx(p.diversification, rel=1e-12)
    sk = p.contribution(measure=RiskMeasure.VARIANCE)  # finite differences of w' Sigma w: 2 w_i (Sigma w)_i
    np.testing.assert_allclose(d["risk_contribution"], 100 * sk / sk.sum(), rtol=1e-5)
    assert d["risk_contribution"].sum() == pytest.approx(100.0, abs=1e-10)


def test_attribution_by_hand(returns):
    w = np.array([0.4, 0.3, 0.2, 0.1])
    bw = np.full(4, 0.25)
    p, b = returns @ w, returns @ bw  # constant mixes: the contributions explain the whole active return
    a = attribution(returns, w, p, b, 252.0, benchmark_weights=bw)
    loop = [252 * sum(w[i] * returns[t, i] for t in range(len(returns))) / len(returns) for i in range(4)]
    np.testing.assert_allclose(a["contribution"], loop, rtol=1e-12)
    assert a["contribution"].sum() == pytest.approx(a["portfolio_return"], rel=1e-12)
    active = p - b
    te = math.sqrt(252) * math.sqrt(sum((x - active.mean()) ** 2 for x in active) / (len(active) - 1))
    assert a["tracking_error"] == pytest.approx(te, rel=1e-12)
    assert a["active_return"] == pytest.approx(252 * active.mean(), rel=1e-12)
    assert a["information_ratio"] == pytest.approx(252 * active.mean() / te, rel=1e-12)
    np.testing.assert_allclose(a["active_contribution"], a["contribution"] - 252 * (returns * bw).mean(axis=0))
    assert a["residual"] == pytest.approx(0.0, abs=1e-15)
    # traded returns that differ (costs): the residual is what the constant-mix contributions leave out
    costs = np.full(len(p), 1e-5)
    a2 = attribution(returns, w, p - costs, b, 252.0, benchmark_weights=bw)
    assert a2["residual"] == pytest.approx(-252 * 1e-5, rel=1e-9)
    # a benchmark price column: no weights, no per-asset benchmark contributions
    col = attribution(returns, w, p, b * 0.5, 252.0)
    assert col["active_contribution"] is None and col["benchmark_contribution"] is None
    # the residual is then the portfolio's own return the constant-mix contributions leave out (here none)
    assert col["residual"] == pytest.approx(0.0, abs=1e-15)
    col2 = attribution(returns, w, p - costs, b * 0.5, 252.0)
    assert col2["residual"] == pytest.approx(-252 * 1e-5, rel=1e-9)
    same = attribution(returns, w, p, p, 252.0)
    assert same["tracking_error"] == 0.0 and same["information_ratio"] is None


def test_bad_inputs_are_named():
    r = np.zeros((10, 3))
    with pytest.raises(ConfigError, match=r"weights must be 3 finite numbers"):
        diversification([0.5, 0.5], r)
    with pytest.raises(ConfigError, match="weights hold nothing"):
        diversification([0.0, 0.0, 0.0], r)
    with pytest.raises(ConfigError, match=r"benchmark_returns must be 10 finite numbers"):
        attribution(r, [1, 0, 0], np.zeros(10), np.zeros(9), 252.0)
    with pytest.raises(ConfigError, match="periods_per_year must be a number > 0"):
        attribution(r, [1, 0, 0], np.zeros(10), np.zeros(10), 0)
    np.testing.assert_allclose(simple_returns([100.0, 110.0, 99.0]), [0.1, -0.1])


def test_champion_analytics_against_an_allocator_a_left_out_1_over_n_and_a_price_column(tmp_path):
    import pandas as pd

    from genetic_sizer.config import load_config
    from genetic_sizer.errors import DataError
    from genetic_sizer.runs.analytics import champion_analytics, describe_analytics
    from tests.conftest import make_prices

    prices = make_prices(60, 3, seed=4, freq="B")
    r = simple_returns(prices.close)
    w = np.array([0.5, 0.3, 0.2])
    hrp = np.array([0.2, 0.2, 0.6])
    values = 100 * np.cumprod(np.vstack([np.ones((1, 2)), 1 + r @ np.column_stack([w, hrp])]), axis=0)
    cfg = load_config(None, ["allocators.benchmark=hrp"])
    got = champion_analytics(cfg, [("in_sample", prices, values)], ["champion", "hrp"], np.stack([w, hrp]))
    a = got["in_sample"]["attribution"]
    assert got["benchmark"] == "hrp" and got["in_sample"]["benchmark_note"] is None
    active = r @ w - r @ hrp
    assert a["active_return"] == pytest.approx(prices.periods_per_year * active.mean(), rel=1e-9)
    assert a["active_contribution"]["A02"] == pytest.approx(prices.periods_per_year * (r[:, 2] * -0.4).mean(), rel=1e-9)
    assert got["in_sample"]["diversification"]["hhi"] == pytest.approx(0.25 + 0.09 + 0.04)
    # 1/N by default, left out of the run: a constant mix, and said so
    default = champion_analytics(
        load_config(None), [("in_sample", prices, values)], ["champion", "hrp"], np.stack([w, hrp])
    )
    assert "constant mix" in default["in_sample"]["benchmark_note"]
    assert default["in_sample"]["attribution"]["residual"] == pytest.approx(0.0, abs=1e-9)
    lines = describe_analytics(default)
    assert lines[0].startswith("champion diversification IS: effective assets 2.63 (HHI 0.380)")
    # another allocator left out: no attribution, with the reason
    cfg = load_config(None, ["allocators.benchmark=min_variance"])
    other = champion_analytics(cfg, [("in_sample", prices, values)], ["champion", "hrp"], np.stack([w, hrp]))
    assert other["in_sample"]["attribution"] is None and "min_variance was left out" in describe_analytics(other)[1]
    # a benchmark price column: its simple returns on the window's bars
    bench = pd.DataFrame({"Date": prices.index.tz_localize(None), "SPY": np.linspace(100, 130, 60), "X": 1.0})
    bench.to_csv(tmp_path / "b.csv", index=False)
    cfg = load_config(None, [f"allocators.benchmark={{path: {tmp_path / 'b.csv'}, column: SPY}}"])
    col = champion_analytics(cfg, [("in_sample", prices, values)], ["champion", "hrp"], np.stack([w, hrp]))
    spy = simple_returns(np.linspace(100, 130, 60))
    assert col["in_sample"]["attribution"]["active_return"] == pytest.approx(
        prices.periods_per_year * (r @ w - spy).mean(), rel=1e-9
    )
    assert col["in_sample"]["attribution"]["active_contribution"] is None
    bench.iloc[:30].to_csv(tmp_path / "short.csv", index=False)
    cfg = load_config(None, [f"allocators.benchmark={{path: {tmp_path / 'short.csv'}, column: SPY}}"])
    with pytest.raises(DataError, match=r"benchmark: .*short.csv: no positive price in column 'SPY' at"):
        champion_analytics(cfg, [("in_sample", prices, values)], ["champion", "hrp"], np.stack([w, hrp]))


def test_a_perp_benchmark_is_sized_at_the_leverage_it_was_traded_at():
    """A perp run that evolves its leverage trades the champion at its own (here 3) and the classical allocations at
    ``portfolio.leverage`` (2, :func:`~genetic_sizer.runs.results.fixed_strategy`): the benchmark's contributions are
    of its weights x 2, consistent with its traded returns, not x the champion's 3."""
    from genetic_sizer.config import load_config
    from genetic_sizer.runs.analytics import champion_analytics
    from tests.conftest import make_prices

    prices = make_prices(60, 3, seed=4, freq="B")
    r = simple_returns(prices.close)
    w, hrp = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.2, 0.6])
    values = 100 * np.cumprod(np.vstack([np.ones((1, 2)), 1 + r @ np.column_stack([3 * w, 2 * hrp])]), axis=0)
    cfg = load_config(None, ["portfolio.market=perp", "portfolio.leverage=2", "allocators.benchmark=hrp"])
    got = champion_analytics(cfg, [("in_sample", prices, values)], ["champion", "hrp"], np.stack([w, hrp]), 3.0)
    a, ppy = got["in_sample"]["attribution"], prices.periods_per_year
    assert a["benchmark_contribution"]["A02"] == pytest.approx(ppy * (r[:, 2] * 2 * 0.6).mean(), rel=1e-9)  # old: x3
    assert a["contribution"]["A02"] == pytest.approx(ppy * (r[:, 2] * 3 * 0.2).mean(), rel=1e-9)
    assert sum(a["benchmark_contribution"].values()) == pytest.approx(a["benchmark_return"], rel=1e-9)
    # 1/N left out of the run: the constant mix it is measured as is sized at portfolio.leverage too
    cfg = load_config(None, ["portfolio.market=perp", "portfolio.leverage=2"])
    ew = champion_analytics(cfg, [("in_sample", prices, values)], ["champion", "hrp"], np.stack([w, hrp]), 3.0)
    b = ew["in_sample"]["attribution"]
    assert b["benchmark_return"] == pytest.approx(ppy * (r @ np.full(3, 2 / 3)).mean(), rel=1e-9)

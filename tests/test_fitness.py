"""Fitness metrics: equal to vectorbt's portfolio methods to 1e-9, hand-computed values, degenerate genomes."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from genetic_sizer.backtest.metrics import CAP, WIPED_OUT_FITNESS, compute_metrics
from genetic_sizer.backtest.schedule import rebalance_mask
from genetic_sizer.backtest.simulate import backtest
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.evaluator import Evaluator

from .conftest import make_prices, make_wipeout_prices, random_weights

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
    """vectorbt's own portfolio for these genomes, built here and not through genetic_sizer.backtest.simulate."""
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


def _plain_metrics(values, init_cash, ppy):
    """The metrics in one plain-Python loop over the bars (the definitions of genetic_sizer.backtest.metrics, summed in
    bar order): the reference for the kernel's four-block sums."""
    n = len(values)
    wiped = False
    for i, x in enumerate(values):
        if x <= 0:
            n, wiped = i + 1, True
            break
    v = [float(x) for x in values[:n]]
    if wiped:
        v[-1] = 0.0
    prev, rets = init_cash, []
    for x in v:
        rets.append((x - prev) / prev)
        prev = x
    mean = sum(rets) / n
    growth = 1.0
    for r in rets:
        growth *= 1.0 + r
    std = (sum((r - mean) ** 2 for r in rets) / (n - 1)) ** 0.5 if n > 1 else 0.0
    down = (sum(r * r for r in rets if r < 0) / n) ** 0.5
    peak, dd = -np.inf, 0.0
    for x in v:
        peak = max(peak, x)
        dd = min(dd, x / peak - 1.0)
    return {
        "total_return": -1.0 if wiped else v[-1] / init_cash - 1.0,
        "annualized_return": -1.0 if wiped else growth ** (ppy / n) - 1.0,
        "annualized_volatility": std * ppy**0.5,
        "sharpe": mean / std * ppy**0.5,
        "sortino": mean * ppy / (down * ppy**0.5),
        "max_drawdown": -1.0 if wiped else dd,
        "wiped_out": float(wiped),
    }


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 250, 2001])
@pytest.mark.parametrize("wipe", [False, True])
def test_block_sums_equal_a_plain_loop_for_every_length(n, wipe):
    """The kernel sums returns in four blocks walked side by side (and takes r_0 and the last return apart): every
    length, including those shorter than four blocks and with a tail, equals the plain loop to rounding."""
    rng = np.random.default_rng(n)
    values = 10_000.0 * np.cumprod(1.0 + rng.normal(0.001, 0.02, n))
    if wipe:
        values[n // 2] = -5.0  # reaches zero half-way: measured up to there
    got = compute_metrics(values, init_cash=10_000.0, periods_per_year=252.0)
    want = _plain_metrics(values, 10_000.0, 252.0)
    for name, x in want.items():
        assert got[name][0] == pytest.approx(x, rel=1e-12, abs=1e-15), name
    if not wipe:  # the drawdown is exact: the block peaks start from the maximum before them
        assert got["max_drawdown"][0] == want["max_drawdown"]


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


def _values(returns, init_cash=100.0):
    """The value series of per-bar returns (the first one from ``init_cash``)."""
    return init_cash * np.cumprod(1.0 + np.asarray(returns, dtype=np.float64), axis=0)


def test_degenerate_genomes_give_finite_documented_values():
    flat = np.full(50, 100.0)
    rising = 100.0 * 1.01 ** np.arange(1, 51)  # constant 1% a bar: no volatility, downside or drawdown
    falling = 100.0 * 0.99 ** np.arange(1, 51)  # constant -1% a bar
    m = compute_metrics(np.column_stack([flat, rising, falling]), init_cash=100.0, periods_per_year=252)
    for name, arr in m.items():
        assert np.isfinite(arr).all(), name
        assert (np.abs(arr) <= CAP).all(), name
    for name in ("sharpe", "sortino", "calmar", "max_drawdown", "total_return", "annualized_volatility"):
        assert m[name][0] == 0.0, name
    # the rising series' std is rounding noise (~1e-16 a bar): Sharpe was 1.6e15, Sortino and Calmar 0
    assert m["sharpe"][1] == CAP and m["sortino"][1] == CAP and m["calmar"][1] == CAP
    assert m["annualized_volatility"][1] == 0.0 and m["max_drawdown"][1] == 0.0
    assert m["annualized_return"][1] == pytest.approx(1.01**252 - 1, rel=1e-9)
    assert m["sharpe"][2] == -CAP
    assert m["sortino"][2] == pytest.approx(-np.sqrt(252), rel=1e-9)  # -1% a bar over a 1% downside deviation
    assert m["calmar"][2] == pytest.approx(m["annualized_return"][2] / (1 - 0.99**49), rel=1e-9)
    assert not m["wiped_out"].any()


def test_rounding_noise_is_not_a_signal():
    """A flat value with 1e-15 relative jitter (rounding in a simulation) has ratios 0, not noise / noise."""
    rng = np.random.default_rng(0)
    v = 100.0 * (1 + rng.choice([-1e-15, 1e-15], size=(200, 20)))
    m = compute_metrics(v, init_cash=100.0, periods_per_year=8760)
    for name in ("sharpe", "sortino", "calmar", "annualized_volatility", "max_drawdown"):
        np.testing.assert_array_equal(m[name], 0.0, err_msg=name)


def test_no_downside_ranks_at_or_above_every_genome_with_downside():
    rng = np.random.default_rng(1)
    lossy = _values(rng.normal(0.002, 0.01, size=(120, 300)))  # every column has losing bars
    gaining = _values(rng.uniform(0.0, 0.004, size=(120, 5)))  # gains of varying size, never a loss
    tiny = _values(np.full((120, 1), 1e-6))  # gains, but tiny and constant
    m = compute_metrics(np.column_stack([lossy, gaining, tiny]), init_cash=100.0, periods_per_year=252)
    best_lossy = {name: m[name][:300].max() for name in ("sortino", "calmar")}
    for name in ("sortino", "calmar"):
        assert best_lossy[name] < CAP
        np.testing.assert_array_equal(m[name][300:], CAP, err_msg=name)
    assert (m["sharpe"][300:305] < CAP).all() and m["sharpe"][305] == CAP  # varying gains have volatility


def test_metrics_are_clipped_to_cap():
    # two hourly bars, 4x in total: the CAGR overflows a float (4 ** 4380); vectorbt says inf
    v = np.array([[2e4, 1e4], [4e4, 4e4]])
    m = compute_metrics(v, init_cash=1e4, periods_per_year=8760, traded=[0.0, 1e20])
    for name, arr in m.items():
        assert np.isfinite(arr).all() and (np.abs(arr) <= CAP).all(), name
    assert m["annualized_return"].tolist() == [CAP, CAP] and m["total_return"].tolist() == [3.0, 3.0]
    assert m["calmar"][0] == CAP and m["calmar"][1] == CAP  # capped CAGR / drawdown of 50 %
    assert m["turnover"].tolist() == [0.0, CAP]


_returns = st.lists(st.floats(-0.5, 0.5, allow_nan=False), min_size=3, max_size=40)


@settings(max_examples=300, deadline=None)
@given(r=_returns, k=st.integers(0, 1000), loss=st.floats(1e-6, 0.4))
def test_adding_a_loss_never_increases_sortino(r, k, loss):
    """Lowering one bar's return never raises Sortino, from a loss-free series (Sortino +CAP) too.

    (Sortino is m / d with m the mean and d the downside deviation; lowering a return r_k <= 0 moves it by
    (D - S r_k) / (n d) with S the sum and D the sum of squared losses of the other returns, so it is
    monotone when S >= 0; with a negative mean a deeper loss can raise it, a property of the ratio.)"""
    r = np.asarray(r)
    k %= len(r)
    assume(r.sum() - r[k] >= 0)
    worse = r.copy()
    worse[k] -= loss
    assume(worse[k] > -0.95)
    m = compute_metrics(np.column_stack([_values(r), _values(worse)]), init_cash=100.0, periods_per_year=252)
    before, after = m["sortino"]
    assert after <= before + 1e-9 * (1 + abs(before))
    if (r >= 0).all() and r.mean() > 1e-9:
        assert before == CAP


@settings(max_examples=300, deadline=None)
@given(
    r=st.lists(st.floats(0.0, 0.05, allow_nan=False), min_size=3, max_size=40),
    at=st.integers(1, 1000),
    dips=st.lists(st.floats(0.0, 0.5), min_size=2, max_size=2),
)
def test_calmar_never_rises_with_a_deeper_drawdown(r, at, dips):
    """A gaining path with a dip of depth d (down by d, then back): Calmar does not rise with d, and the
    path without a dip (no drawdown) ranks at the top; scaling up its gains never lowers Calmar."""
    r = np.asarray(r)
    at = 1 + at % (len(r) - 1)
    small, large = sorted(dips)

    def dipped(d):
        x = np.insert(r, at, [-d, 1 / (1 - d) - 1])  # the same total return for every d
        return _values(x)

    m = compute_metrics(np.column_stack([dipped(small), dipped(large)]), init_cash=100.0, periods_per_year=52)
    assert m["calmar"][1] <= m["calmar"][0] + 1e-9 * (1 + abs(m["calmar"][0]))  # rounding in the dip and back
    if small == 0.0 and r.sum() > 1e-9:
        assert m["calmar"][0] == CAP
    scaled = compute_metrics(np.column_stack([_values(r), _values(2 * r)]), init_cash=100.0, periods_per_year=52)
    assert scaled["calmar"][1] >= scaled["calmar"][0]


@settings(max_examples=200, deadline=None)
@given(mean=st.floats(1e-4, 0.01), z=st.lists(st.floats(-1, 1), min_size=4, max_size=30), scale=st.floats(0, 1))
def test_sharpe_never_falls_as_dispersion_shrinks(mean, z, scale):
    """Returns mean + s * z with a positive mean: Sharpe does not fall as s shrinks, down to s = 0 (+CAP)."""
    z = np.asarray(z) - np.mean(z)
    returns = [mean + s * z for s in (0.01, 0.01 * scale, 0.0)]
    m = compute_metrics(np.column_stack([_values(x) for x in returns]), init_cash=100.0, periods_per_year=252)
    sharpe = m["sharpe"]
    assert sharpe[0] <= sharpe[1] * (1 + 1e-9) and sharpe[1] <= sharpe[2]
    assert sharpe[2] == CAP


def test_wiped_out_portfolio_is_measured_up_to_its_ruin():
    v = np.array([50.0, 10.0, 0.0, 0.0])
    m = compute_metrics(v, init_cash=100.0, periods_per_year=252)
    r = np.array([-0.5, -0.8, -1.0])  # up to the ruin; the rest is not a portfolio any more
    assert m["wiped_out"][0] == 1.0
    assert m["annualized_return"][0] == -1.0 and m["total_return"][0] == -1.0 and m["max_drawdown"][0] == -1.0
    assert m["calmar"][0] == -1.0
    assert m["sharpe"][0] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252), rel=1e-12)


def _reference_wiped(v, init_cash, ppy):
    """Plain numpy: the metrics of a value series that reaches zero, measured up to that bar (value 0)."""
    k = int(np.argmax(v <= 0))
    vv = np.append(v[:k], 0.0)
    r = vv / np.append(init_cash, vv[:-1]) - 1
    down = np.sqrt(np.mean(np.minimum(r, 0) ** 2)) * np.sqrt(ppy)
    return {
        "annualized_volatility": r.std(ddof=1) * np.sqrt(ppy),
        "sharpe": r.mean() / r.std(ddof=1) * np.sqrt(ppy),
        "sortino": r.mean() * ppy / down,
    }


@pytest.mark.parametrize("policy", ["once", 60])
def test_wiped_out_long_short_genome_with_both_engines(policy):
    """Short RALLY (which rises 10x) by half the book: the value goes below zero. Both engines simulate it
    identically (vectorbt's semantics are kept) and both are reported as a total loss, not -450 %."""
    prices = make_wipeout_prices()
    w = np.array([[-0.5, 0.5, 0.0, 0.0], [0.5, -0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    got = {}
    for engine in ("fast", "vectorbt"):
        bt = backtest(prices, w, rebalance=policy, engine=engine)
        got[engine] = (bt, compute_metrics(bt.value, init_cash=1e4, periods_per_year=365, traded=bt.traded))
    (fast, m), (ref, mr) = got["fast"], got["vectorbt"]
    np.testing.assert_allclose(fast.value, ref.value, rtol=1e-12)
    assert fast.value[:, 0].min() < -1e4  # it owes more than it started with
    assert (fast.value[:, 1:] > 0).all()
    for metrics in (m, mr):
        assert metrics["wiped_out"].tolist() == [1.0, 0.0, 0.0]
        for name in ("total_return", "annualized_return", "cagr", "max_drawdown", "calmar"):
            assert metrics[name][0] == -1.0, name
        for name, value in _reference_wiped(fast.value[:, 0], 1e4, 365).items():
            assert metrics[name][0] == pytest.approx(value, rel=1e-12), name
        for name, arr in metrics.items():
            assert np.isfinite(arr).all(), name
        assert -1 < metrics["max_drawdown"][1] <= 0 and metrics["total_return"][1] > 0


def test_evaluator_gives_wiped_out_genomes_the_worst_fitness():
    prices = make_wipeout_prices()
    w = np.array(
        [
            [-0.5, 0.5, 0.0, 0.0],  # wiped out
            [-0.05, 0.0, 0.95, 0.0],  # loses most of its capital, but lives
            [0.5, -0.5, 0.0, 0.0],
            [0.0, 0.5, 0.0, 0.5],
            [-0.3, 0.2, 0.0, 0.5],  # wiped out
        ]
    )
    objectives = ("sharpe", "sortino", "calmar", "cagr", "total_return", "max_drawdown")
    objectives += ("annualized_volatility", "turnover")
    for engine in ("fast", "vectorbt"):
        ev = Evaluator(prices, objectives, rebalance=60, fees=0.001, engine=engine)
        f = ev(w)
        m = ev.metrics(w)
        assert m["wiped_out"].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
        assert m["total_return"][1] < -0.5
        assert np.isfinite(f).all()
        sentinel = np.array([-WIPED_OUT_FITNESS] * 6 + [WIPED_OUT_FITNESS] * 2)
        np.testing.assert_array_equal(ev.wiped_out_fitness, sentinel)
        np.testing.assert_array_equal(f[[0, 4]], [sentinel, sentinel])
        live = f[[1, 2, 3]]
        signed = np.where(ev.maximize, f, -f)  # larger is better in every column
        assert (signed[[0, 4]].max(axis=0) < signed[[1, 2, 3]].min(axis=0)).all()
        np.testing.assert_array_equal(live, np.column_stack([m[o][[1, 2, 3]] for o in objectives]))
        assert ev.is_wiped_out(f).tolist() == [True, False, False, False, True]


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
    import genetic_sizer.backtest.metrics as F

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    fitness_section = readme[readme.index("### Fitness") : readme.index("## Evolution")]
    for where, text in (("genetic_sizer.backtest.metrics", F.__doc__), ("README Fitness", fitness_section)):
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


# ---- the perp account ---------------------------------------------------------------------------------
def _rally_then_crash() -> Prices:
    """RUN rises 1 % a bar for 60 hourly bars, then drops 9 % in one; CALM drifts up 0.01 % a bar."""
    run = 100.0 * np.r_[1.01 ** np.arange(61), 1.01**60 * 0.91, 1.01**60 * 0.91 * 1.001 ** np.arange(1, 20)]
    calm = 50.0 * 1.0001 ** np.arange(len(run)) * (1 + 0.002 * np.sin(np.arange(len(run))))
    index = pd.date_range("2025-01-01", periods=len(run), freq="h", tz="UTC")
    return Prices(np.column_stack([run, calm]), index, ("RUN", "CALM"), source="synthetic(rally, crash)")


def test_a_liquidated_perp_account_is_the_worst_outcome_whatever_it_earned():
    prices = _rally_then_crash()
    w = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    ev = Evaluator(
        prices, ("sharpe", "total_return", "turnover"), rebalance=1, market="perp", leverage=8, max_leverage=10
    )
    m = ev.metrics(w)
    # 8x long RUN: +8 % a bar for 60 bars, then -72 %: equity 0.28 of its peak, under the 5 % maintenance margin
    # of 7.3x its peak notional: liquidated with 27x its capital left, the best total return of the three
    assert m["liquidated"].tolist() == [1.0, 0.0, 0.0] and m["wiped_out"].tolist() == [0.0, 0.0, 0.0]
    assert m["total_return"][0] > 20 and m["total_return"][0] > m["total_return"][1:].max()
    assert m["sharpe"][0] > m["sharpe"][1]
    f = ev(w)
    np.testing.assert_array_equal(f[0], ev.wiped_out_fitness)
    np.testing.assert_array_equal(f[1:], np.column_stack([m[o][1:] for o in ev.objectives]))
    assert ev.is_wiped_out(f).tolist() == [True, False, False]


def test_perp_metrics_report_funding_fees_and_liquidation():
    prices = make_prices(200, 3, seed=2, freq="h")
    rates = np.random.default_rng(0).normal(5e-5, 5e-5, prices.close.shape)
    w = np.array([[0.5, 0.3, 0.2], [-0.5, -0.3, 0.2]])
    ev = Evaluator(prices.with_funding(rates), ("sharpe",), rebalance="D", fees=0.00045, market="perp", leverage=2)
    bt = ev.backtest(w)
    m = ev.metrics_of(bt)
    np.testing.assert_array_equal(m["funding_paid"], bt.funding_paid)
    np.testing.assert_array_equal(m["funding_received"], bt.funding_received)
    np.testing.assert_array_equal(m["fees_paid"], bt.fees_paid)
    assert m["liquidated"].tolist() == [0.0, 0.0]
    # mostly positive rates: the long book pays more than it receives, the net-short one receives more
    assert m["funding_paid"][0] > m["funding_received"][0] and m["funding_received"][1] > m["funding_paid"][1]
    assert (m["fees_paid"] > 0).all()
    spot = Evaluator(prices, ("sharpe",), rebalance="D").metrics(w[:1])
    assert "funding_paid" not in spot and "liquidated" not in spot


def test_a_perp_run_needs_funding_rates_unless_told_to_go_without():
    from genetic_sizer.config import load_config

    prices = make_prices(100, 3, freq="h")
    cfg = load_config(None, ["portfolio.market=perp", "portfolio.leverage=2"])
    with pytest.raises(ConfigError, match=r"data\.source 'default' carries none: set data\.funding_path"):
        Evaluator.from_config(prices, cfg)
    bare = load_config(None, ["portfolio.market=perp", "portfolio.leverage=2", "data.funding_path=false"])
    with pytest.raises(ConfigError, match=r"portfolio\.max_leverage is null"):  # no maintenance margin (issue 22)
        Evaluator.from_config(prices, bare)
    perp = ["portfolio.market=perp", "portfolio.leverage=2", "data.funding_path=false", "portfolio.max_leverage=10"]
    bare = load_config(None, perp)
    assert Evaluator.from_config(prices, bare).account() == {"market": "perp", "leverage": 2.0, "max_leverage": 10.0}
    cfg = load_config(None, ["portfolio.market=perp", "portfolio.leverage=2", "portfolio.max_leverage=10"])
    funded = Evaluator.from_config(prices.with_funding(np.zeros(prices.close.shape)), cfg)
    assert funded.reference_engine == "reference" and Evaluator.from_config(prices, load_config(None)).account() == {}
    with pytest.raises(ConfigError, match=r"leverage 12 is above the max_leverage of 'A00' \(10\)"):
        Evaluator(prices, ("sharpe",), market="perp", leverage=12, max_leverage=10)
    with pytest.raises(ConfigError, match="vectorbt issue #639"):
        Evaluator(prices, ("sharpe",), market="perp", engine="vectorbt")


def test_an_evaluator_with_a_leverage_gene_simulates_each_genome_at_its_own_leverage():
    """Rows of weights then genes (drift band, leverage): each genome is simulated at its own leverage with its own
    band, the same as a backtest of that genome alone at that leverage; a liquidation at a high leverage is the worst
    fitness while the same weights at a low one live; classical allocations (strategies without a leverage) run at
    portfolio.leverage."""
    from genetic_sizer.evolution.genes import GeneSpace

    prices = _rally_then_crash().with_funding(np.full((81, 2), 2e-5))
    space = GeneSpace.create({"threshold": [0.0, 0.1], "leverage": [1.0, 9.0]}, default_rebalance=6, default_leverage=2)
    ev = Evaluator(
        prices, ("sharpe",), rebalance=6, fees=0.00045, market="perp", leverage=2, max_leverage=10, genes=space
    )
    w = np.array([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.2, 0.8]])
    genes = np.array([[0.05, 8.5], [0.05, 1.0], [0.0, 3.3], [0.1, 9.0]])
    rebalance, threshold, leverage = ev.strategy_of(genes)
    assert rebalance == 6 and threshold.tolist() == [0.05, 0.05, 0.0, 0.1] and leverage.tolist() == [8.5, 1, 3.3, 9]
    m = ev.metrics(w, genes=genes)
    for g in range(4):
        alone = backtest(
            prices,
            w[g],
            rebalance=6,
            threshold=genes[g, 0],
            fees=0.00045,
            market="perp",
            leverage=genes[g, 1],
            max_leverage=10,
        )
        assert m["sharpe"][g] == ev.metrics_of(alone)["sharpe"][0] and m["liquidated"][g] == (alone.liquidated[0] >= 0)
    assert m["liquidated"].tolist()[:2] == [1.0, 0.0]  # the same weights: liquidated at 8.5x, alive at 1x
    f = ev(np.hstack([w, genes]))
    np.testing.assert_array_equal(f[0], ev.wiped_out_fitness)
    assert f[1, 0] == m["sharpe"][1]
    # strategies without a leverage (the classical allocations) run at portfolio.leverage; with one at theirs
    bt = ev.backtest_strategies(
        w[:2], [{"rebalance": 6, "threshold": None}, {"rebalance": 6, "threshold": None, "leverage": 8.5}]
    )
    np.testing.assert_array_equal(bt.leverage, [2.0, 8.5])
    plain = backtest(prices, w[:1], rebalance=6, fees=0.00045, market="perp", leverage=2, max_leverage=10)
    np.testing.assert_array_equal(bt.value[:, 0], plain.value[:, 0])
    # without genes: the portfolio's leverage
    assert ev.strategy_of(None)[2] == 2
    spot = Evaluator(prices, ("sharpe",), rebalance=6)
    with pytest.raises(ConfigError, match="a strategy's leverage is a setting of market perp"):
        spot.backtest_strategies(w[:1], [{"rebalance": 6, "threshold": None, "leverage": 2.0}])


# ---- the risk-free rate (issue 22): Sharpe and Sortino of excess returns ----------------------------------------
def _excess_reference(values, init_cash, ppy, rf):
    """Sharpe and Sortino of the excess returns ``r_i - rf_i`` in a plain-Python loop over the bars (a wiped-out path
    measured up to its ruin, as :func:`_plain_metrics`): the reference for a rate per bar."""
    n = len(values)
    wiped = False
    for i, x in enumerate(values):
        if x <= 0:
            n, wiped = i + 1, True
            break
    v = [float(x) for x in values[:n]]
    if wiped:
        v[-1] = 0.0
    prev, excess = init_cash, []
    for i, x in enumerate(v):
        excess.append((x - prev) / prev - float(rf[i]))
        prev = x
    mean = sum(excess) / n
    std = (sum((e - mean) ** 2 for e in excess) / (n - 1)) ** 0.5
    down = (sum(e * e for e in excess if e < 0) / n) ** 0.5
    sortino = mean * ppy / (down * ppy**0.5) if down > 0 else np.copysign(CAP, mean)  # no downside: +-CAP
    return {"sharpe": mean / std * ppy**0.5, "sortino": sortino}


_NOT_RATIOS = ("total_return", "annualized_return", "annualized_volatility", "calmar", "max_drawdown", "wiped_out")


@pytest.mark.parametrize(
    ("policy", "kind", "ppy", "rf"),
    [
        ("M", "longonly", 252, 0.0001),
        ("W", "longshort", 365, 0.00025),
        (5, "longonly", 252, -0.00002),
        ("D", "longshort", 52, 0.0009),
    ],
)
def test_excess_sharpe_and_sortino_of_a_constant_rate_equal_vectorbt(policy, kind, ppy, rf):
    """A per-bar rate ``rf``: Sharpe equals vectorbt's ``sharpe_ratio(risk_free=rf)`` and Sortino its
    ``sortino_ratio(required_return=rf)``, which is the Sortino ratio of the excess returns ``r - rf`` (vectorbt's
    sortino has no risk_free argument; checked on ``pf.returns() - rf`` too), to 1e-9 relative; the other metrics are
    those without a rate, bit for bit."""
    prices = make_prices(500, 5, seed=7, vol=0.02)
    w = random_weights(6, 5, seed=8, kind=kind)
    pf = _vbt_portfolio(prices, w, policy, 0.001, 0.0005, 10_000.0, ppy)
    bt = backtest(prices, w, rebalance=policy, fees=0.001, slippage=0.0005)
    got = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=ppy, risk_free=rf)
    plain = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=ppy)
    with _year_of(ppy):
        np.testing.assert_allclose(got["sharpe"], pf.sharpe_ratio(risk_free=rf), rtol=METRIC_RTOL, atol=0)
        np.testing.assert_allclose(got["sortino"], pf.sortino_ratio(required_return=rf), rtol=METRIC_RTOL, atol=0)
        excess = (pf.returns() - rf).vbt.returns(freq="1D")
        np.testing.assert_allclose(got["sortino"], excess.sortino_ratio(), rtol=METRIC_RTOL, atol=0)
        np.testing.assert_allclose(got["sharpe"], excess.sharpe_ratio(), rtol=METRIC_RTOL, atol=0)
    assert (np.abs(got["sharpe"] - plain["sharpe"]) > 1e-3).all()  # the rate matters
    for name in _NOT_RATIOS:
        np.testing.assert_array_equal(got[name], plain[name], err_msg=name)


@pytest.mark.parametrize("n", [2, 3, 5, 9, 13, 250, 2001])
@pytest.mark.parametrize("wipe", [False, True])
def test_excess_sharpe_and_sortino_of_a_rate_per_bar_equal_a_plain_loop(n, wipe):
    """A rate per bar (a series): the kernel's four-block sums of ``r_i - rf_i`` equal the plain loop to 1e-9 for
    every length, a wiped-out path included (measured up to its ruin, rates included); the other metrics are those
    without a rate, bit for bit."""
    rng = np.random.default_rng(n + 100)
    values = 10_000.0 * np.cumprod(1.0 + rng.normal(0.0008, 0.02, n))
    if wipe:
        values[n // 2] = -5.0
    rf = rng.uniform(-0.00005, 0.0004, n)
    got = compute_metrics(values, init_cash=10_000.0, periods_per_year=252.0, risk_free=rf)
    want = _excess_reference(values, 10_000.0, 252.0, rf)
    for name, x in want.items():
        assert got[name][0] == pytest.approx(x, rel=1e-9, abs=0), name
    plain = compute_metrics(values, init_cash=10_000.0, periods_per_year=252.0)
    for name in _NOT_RATIOS:
        np.testing.assert_array_equal(got[name], plain[name], err_msg=name)


def test_excess_metrics_by_hand():
    v = np.array([110.0, 99.0, 121.0, 108.9])  # returns +10%, -10%, +22.22%, -10% from 100
    x = np.array([0.1, -0.1, 121 / 99 - 1, -0.1]) - 0.01  # in excess of 1 % a bar
    m = compute_metrics(v, init_cash=100.0, periods_per_year=4, risk_free=0.01)
    assert m["sharpe"][0] == pytest.approx(x.mean() / x.std(ddof=1) * 2, rel=1e-12)
    assert m["sortino"][0] == pytest.approx(x.mean() * 4 / (np.sqrt(np.mean(np.minimum(x, 0) ** 2)) * 2), rel=1e-12)
    series = compute_metrics(v, init_cash=100.0, periods_per_year=4, risk_free=[0.0, 0.02, 0.0, 0.02])
    y = x + 0.01 - np.array([0.0, 0.02, 0.0, 0.02])
    assert series["sharpe"][0] == pytest.approx(y.mean() / y.std(ddof=1) * 2, rel=1e-12)


def test_a_rate_of_zero_is_no_rate_bit_for_bit():
    """0, [0.0], an array of zeros: the figures of no rate at all, bit for bit (the kernels subtract nothing); a
    constant given as an array of one rate per bar is that constant, bit for bit."""
    prices = make_prices(400, 5, seed=4, vol=0.03)
    w = random_weights(12, 5, seed=9, kind="longshort")
    bt = backtest(prices, w, rebalance="W", fees=0.001)
    base = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=252.0, traded=bt.traded)
    const = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=252.0, traded=bt.traded, risk_free=2e-4)
    for rf, expect in ((0, base), (0.0, base), ([0.0], base), (np.zeros(400), base), (np.full(400, 2e-4), const)):
        got = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=252.0, traded=bt.traded, risk_free=rf)
        for name in expect:
            np.testing.assert_array_equal(got[name], expect[name], err_msg=f"{name} with {rf!r}")


@pytest.mark.parametrize(
    ("risk_free", "message"),
    [
        (np.zeros(4), r"risk_free must have one rate per bar \(5\), got 4"),
        (0.02, r"risk_free \(0\.02 per bar, mean\) is 145\.\d+ a year, outside \[-0\.05, 0\.5\]"),
        ([0.0, np.nan, 0.0, 0.0, 0.0], r"risk_free\[1\] must be a finite per-bar rate above -1, got nan"),
        (-1.0, r"risk_free must be a finite per-bar rate above -1, got -1\.0"),
        (-0.001, r"risk_free \(-0\.001 per bar, mean\) is -0\.22\d* a year, outside \[-0\.05, 0\.5\]"),
        ("0.01", r"risk_free must be a per-bar rate or an array of one per bar, got '0\.01'"),
        (True, r"risk_free must be a per-bar rate or an array of one per bar, got True"),
    ],
)
def test_bad_risk_free_rates_are_errors_naming_the_value(risk_free, message):
    with pytest.raises(ConfigError, match=message):
        compute_metrics(np.linspace(100.0, 110.0, 5), init_cash=100.0, periods_per_year=252, risk_free=risk_free)


def test_an_annual_rate_becomes_a_compounded_per_bar_rate_in_the_evaluator():
    """``portfolio.risk_free: 0.03`` (the Evaluator's ``risk_free``) is the per-bar rate ``1.03 ** (1 / ppy) - 1``: a
    year of bars compounds to 3 %. Every figure of the evaluator, the fitness and the trial Sharpe (the deflated
    Sharpe's input) are of returns in excess of it."""
    prices = make_prices(300, 4, seed=2)
    ppy = prices.periods_per_year
    ev = Evaluator(prices, ("sharpe", "sortino"), rebalance="M", fees=0.001, risk_free=0.03)
    assert ev.rf.shape == (1,) and ev.rf[0] == pytest.approx(1.03 ** (1 / ppy) - 1, rel=1e-13)
    assert (1 + ev.rf[0]) ** ppy == pytest.approx(1.03, rel=1e-13)
    w = random_weights(6, 4, seed=1)
    m = ev.metrics(w)
    bt = ev.backtest(w)
    want = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=ppy, traded=bt.traded, risk_free=ev.rf[0])
    for name in want:
        np.testing.assert_array_equal(m[name], want[name], err_msg=name)
        np.testing.assert_array_equal(ev.metrics_of(bt)[name], want[name], err_msg=name)
    f = ev.with_trial_sharpe()(w)
    np.testing.assert_array_equal(f[:, :2], np.column_stack([m["sharpe"], m["sortino"]]))
    np.testing.assert_array_equal(f[:, 2], m["sharpe"] / np.sqrt(ppy))
    raw = Evaluator(prices, ("sharpe",), rebalance="M", fees=0.001).metrics(w)
    assert (m["sharpe"] < raw["sharpe"]).all() and (m["annualized_volatility"] == raw["annualized_volatility"]).all()
    with pytest.raises(ConfigError, match=r"portfolio\.risk_free must be an annual rate as a fraction .* got 3$"):
        Evaluator(prices, ("sharpe",), risk_free=3)

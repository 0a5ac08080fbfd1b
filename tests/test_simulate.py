"""The population simulator: hand-computed portfolios, rebalance policies, weight validation, and parity
of the fast Numba engine with vectorbt's ``Portfolio.from_orders`` across a matrix of settings."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.data import Prices
from genetic_sizer.errors import ConfigError, GenomeError
from genetic_sizer.simulate import backtest, rebalance_mask, simulate, validate_weights

from .conftest import make_prices, random_weights

PARITY_RTOL = 1e-8


def _tiny(a=(10.0, 20.0, 20.0), b=(10.0, 10.0, 5.0)) -> Prices:
    idx = pd.date_range("2024-01-01", periods=len(a), freq="D", tz="UTC")
    return Prices(np.column_stack([a, b]), idx, ("A", "B"))


# ------------------------------------------------------------ hand-computed
def test_buy_and_hold_by_hand():
    v = simulate(_tiny(), [0.5, 0.5], rebalance="once", init_cash=1000.0)
    np.testing.assert_allclose(v[:, 0], [1000.0, 1500.0, 1250.0], rtol=1e-14)


def test_rebalance_every_bar_by_hand():
    bt = backtest(_tiny(), [0.5, 0.5], rebalance=1, init_cash=1000.0)
    # bar 1: value 1500 -> 750 each: sell 12.5 A, buy 25 B; bar 2: 37.5*20 + 75*5
    np.testing.assert_allclose(bt.value[:, 0], [1000.0, 1500.0, 1125.0], rtol=1e-14)
    # turnover: 500/1500 on bar 1, 375/1125 on bar 2 (the initial allocation is not counted)
    np.testing.assert_allclose(bt.traded, [2 / 3], rtol=1e-14)


@pytest.mark.parametrize(("fees", "slippage"), [(0.01, 0.0), (0.0, 0.01)])
def test_buy_cut_down_to_cash_by_hand(fees, slippage):
    # A and B tie on order value; A goes first (stable sort) and costs 505; B wants 505, gets 495 of it.
    v = simulate(_tiny(), [0.5, 0.5], rebalance="once", init_cash=1000.0, fees=fees, slippage=slippage)
    b_units = 495.0 / 1.01 / 10.0
    np.testing.assert_allclose(v[:, 0], [500 + 10 * b_units, 1000 + 10 * b_units, 1000 + 5 * b_units], rtol=1e-13)


def test_long_short_sells_first_by_hand():
    p = _tiny(a=(10.0, 20.0, 20.0), b=(10.0, 5.0, 5.0))
    v = simulate(p, [0.75, -0.25], rebalance="once", init_cash=1000.0)
    # short 25 B for +250 cash, then buy 75 A for 750; bar 1: 500 + 1500 - 125
    np.testing.assert_allclose(v[:, 0], [1000.0, 1875.0, 1875.0], rtol=1e-14)


def test_sells_fund_buys_on_rebalance():
    # after A doubles, a 50/50 rebalance must sell A before buying B, otherwise B's buy would be cut
    bt = backtest(_tiny(), [0.5, 0.5], rebalance=1, init_cash=1000.0, fees=0.001)
    assert bt.value[1, 0] == pytest.approx(1500.0 - 0.5 - 1000 * 0.001 * 0.5 - 500 * 0.001, rel=1e-3)
    ref = backtest(_tiny(), [0.5, 0.5], rebalance=1, init_cash=1000.0, fees=0.001, engine="vectorbt")
    np.testing.assert_allclose(bt.value, ref.value, rtol=1e-12)


# --------------------------------------------------------------- rebalance
def test_rebalance_masks_daily_index():
    idx = pd.date_range("2024-01-01", periods=100, freq="D", tz="UTC")  # a Monday
    assert np.flatnonzero(rebalance_mask(idx, "once")).tolist() == [0]
    assert rebalance_mask(idx, "D").all()
    assert np.flatnonzero(rebalance_mask(idx, "W")).tolist() == list(range(0, 100, 7))
    assert np.flatnonzero(rebalance_mask(idx, "M")).tolist() == [0, 31, 60, 91]
    assert np.flatnonzero(rebalance_mask(idx, "Q")).tolist() == [0, 91]
    assert np.flatnonzero(rebalance_mask(idx, 30)).tolist() == [0, 30, 60, 90]
    assert np.flatnonzero(rebalance_mask(idx, "m")).tolist() == [0, 31, 60, 91]


def test_rebalance_masks_start_mid_period_and_business_days():
    idx = pd.date_range("2024-05-29", "2024-06-05", freq="B", tz="UTC")  # Wed .. Wed, June 1 is a Saturday
    days = [d.strftime("%m-%d") for d in idx[rebalance_mask(idx, "M")]]
    assert days == ["05-29", "06-03"]
    weeks = [d.strftime("%m-%d") for d in idx[rebalance_mask(idx, "W")]]
    assert weeks == ["05-29", "06-03"]


def test_rebalance_daily_on_hourly_bars():
    idx = pd.date_range("2024-01-01 05:00", periods=72, freq="h", tz="UTC")
    assert np.flatnonzero(rebalance_mask(idx, "D")).tolist() == [0, 19, 43, 67]


@pytest.mark.parametrize("bad", ["Y", 0, -3, 2.5, True, None])
def test_rebalance_bad_policy(bad):
    idx = pd.date_range("2024-01-01", periods=10, freq="D", tz="UTC")
    with pytest.raises(ConfigError, match="rebalance"):
        rebalance_mask(idx, bad)


# ------------------------------------------------------------ weights
def test_weight_errors_name_genome_and_value():
    p = make_prices(20, 3)
    with pytest.raises(GenomeError, match=r"genome 1: sum of weights is 0\.9"):
        simulate(p, [[0.2, 0.3, 0.5], [0.2, 0.2, 0.5]])
    with pytest.raises(GenomeError, match=r"genome 0: sum of \|w\| of weights is 1\.2"):
        simulate(p, [[0.7, -0.3, 0.2]])
    with pytest.raises(GenomeError, match=r"genome 0: weight of asset 'A01' is nan"):
        simulate(p, [[0.5, np.nan, 0.5]])
    with pytest.raises(GenomeError, match=r"shape \(n_genomes, 3\)"):
        simulate(p, [[0.5, 0.5]])
    with pytest.raises(GenomeError, match="empty"):
        validate_weights(np.empty((0, 3)), 3)


def test_cost_and_engine_errors():
    p = make_prices(20, 2)
    for kwargs, key in [
        ({"fees": -0.1}, "fees"),
        ({"slippage": 1.5}, "slippage"),
        ({"init_cash": 0}, "init_cash"),
        ({"engine": "gpu"}, "engine"),
    ]:
        with pytest.raises(ConfigError, match=key):
            simulate(p, [0.5, 0.5], **kwargs)


def test_dataframe_input_and_1d_weights():
    p = make_prices(40, 3, seed=3)
    v1 = simulate(p.to_frame(), [0.2, 0.3, 0.5])
    v2 = simulate(p, np.array([[0.2, 0.3, 0.5]]))
    assert v1.shape == (40, 1)
    np.testing.assert_array_equal(v1, v2)


def test_deterministic_and_independent_of_population():
    p = make_prices(300, 6, seed=5)
    w = random_weights(16, 6, seed=2)
    a = backtest(p, w, rebalance="W", fees=0.001, slippage=0.001)
    b = backtest(p, w, rebalance="W", fees=0.001, slippage=0.001)
    np.testing.assert_array_equal(a.value, b.value)
    alone = backtest(p, w[7:8], rebalance="W", fees=0.001, slippage=0.001)
    np.testing.assert_array_equal(alone.value[:, 0], a.value[:, 7])
    assert alone.traded[0] == a.traded[7]


def test_buy_and_hold_has_no_turnover():
    p = make_prices(100, 4, seed=1)
    bt = backtest(p, random_weights(5, 4), rebalance="once", fees=0.002)
    np.testing.assert_array_equal(bt.traded, 0.0)


# ------------------------------------------------------------ parity matrix
def _parity_cases():
    policies = ["once", "D", "W", "M", "Q", 1, 5, 21]
    kinds = ["longonly", "longshort"]
    shapes = [(2, 60), (5, 500), (20, 2000), (50, 1000), (3, 5000)]
    costs = [(0.0, 0.0), (0.0005, 0.0), (0.001, 0.002), (0.01, 0.0), (0.0, 0.01), (0.01, 0.01)]
    cases = []
    for n, (policy, kind) in enumerate(itertools.product(policies, kinds)):
        n_assets, n_bars = shapes[n % len(shapes)]
        fees, slippage = costs[n % len(costs)]
        freq = "h" if n % 4 == 3 else ("B" if n % 4 == 1 else "D")
        cases.append((n_assets, n_bars, freq, policy, kind, fees, slippage, 100 + n))
    # the largest sizes the issue names: 50 assets x 5000 bars
    cases.append((50, 5000, "D", "M", "longonly", 0.001, 0.001, 7))
    cases.append((50, 5000, "D", "W", "longshort", 0.01, 0.01, 8))
    return cases


@pytest.mark.slow
@pytest.mark.parametrize(("n_assets", "n_bars", "freq", "policy", "kind", "fees", "slippage", "seed"), _parity_cases())
def test_fast_engine_matches_vectorbt(n_assets, n_bars, freq, policy, kind, fees, slippage, seed):
    p = make_prices(n_bars, n_assets, seed=seed, freq=freq)
    n_genomes = 6 if n_assets * n_bars < 100_000 else 3
    w = random_weights(n_genomes, n_assets, seed=seed, kind=kind)
    kw = dict(rebalance=policy, fees=fees, slippage=slippage, init_cash=10_000.0)
    fast = backtest(p, w, **kw)
    ref = backtest(p, w, engine="vectorbt", **kw)
    rel = np.abs(fast.value - ref.value) / np.abs(ref.value)
    assert rel.max() <= PARITY_RTOL, f"max relative value error {rel.max():.3e}"
    np.testing.assert_allclose(fast.traded, ref.traded, rtol=PARITY_RTOL, atol=1e-12)
    # the simulation actually traded: values move away from init_cash and differ between genomes
    assert np.ptp(fast.value[-1]) > 0


@pytest.mark.slow
def test_fast_engine_matches_vectorbt_on_embedded_data(sp500):
    p = sp500.select(start="2015-01-01")
    w = np.vstack([random_weights(8, 20, seed=11), random_weights(4, 20, seed=12, kind="longshort")])
    for policy in ["D", "M"]:
        fast = simulate(p, w, rebalance=policy, fees=0.0005)
        ref = simulate(p, w, rebalance=policy, fees=0.0005, engine="vectorbt")
        assert (np.abs(fast - ref) / ref).max() <= PARITY_RTOL


def test_vectorbt_engine_chunks_large_populations(monkeypatch):
    import genetic_sizer.simulate as sim

    monkeypatch.setattr(sim, "VBT_CHUNK_CELLS", 2 * 3 * 50)  # two genomes per from_orders call
    p = make_prices(50, 3, seed=9)
    w = random_weights(5, 3, seed=9)
    chunked = backtest(p, w, rebalance=7, fees=0.001, engine="vectorbt")
    fast = backtest(p, w, rebalance=7, fees=0.001)
    np.testing.assert_allclose(chunked.value, fast.value, rtol=PARITY_RTOL)
    np.testing.assert_allclose(chunked.traded, fast.traded, rtol=PARITY_RTOL)

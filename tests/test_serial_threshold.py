"""Small kernel calls run on one thread (issue 27, item 4): below ``SERIAL_BELOW`` (genomes x assets x bars) a
population is evaluated on one Numba thread, which beside other CPU-bound processes avoids a parallel region's wait
for every thread to be scheduled; the results are bit-for-bit those of the parallel kernels."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import genetic_sizer.backtest.kernels as K
import genetic_sizer.backtest.portfolio as P
import genetic_sizer.backtest.scorer as SC
from genetic_sizer.backtest.portfolio import backtest_portfolio
from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.evaluator import Evaluator
from tests.conftest import make_prices, random_weights

two_threads = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")


@two_threads
def test_threads_for_runs_small_work_on_one_thread_and_restores_the_setting(monkeypatch):
    monkeypatch.setattr(K, "SERIAL_BELOW", 1000)
    numba.set_num_threads(2)
    with K.threads_for(999) as t:
        assert t == 1 and numba.get_num_threads() == 1
    assert numba.get_num_threads() == 2
    with K.threads_for(1000) as t:
        assert t == 2 and numba.get_num_threads() == 2
    monkeypatch.setattr(K, "SERIAL_BELOW", 0)  # 0: never serial
    with K.threads_for(1) as t:
        assert t == 2
    with pytest.raises(RuntimeError), K.threads_for(1):
        raise RuntimeError("inside")
    assert numba.get_num_threads() == 2  # restored after an error too


def test_a_bad_threshold_is_a_clear_error():
    assert K._serial_below("0") == 0 and K._serial_below("250000") == 250000
    for bad in ("-1", "1e6", "lots"):
        with pytest.raises(ConfigError, match=rf"GENETIC_SIZER_SERIAL_BELOW must be a whole number >= 0.*{bad!r}"):
            K._serial_below(bad)


@two_threads
@pytest.mark.parametrize("market", ["spot", "perp"])
def test_evaluations_below_the_threshold_run_serially_with_the_parallel_results(monkeypatch, market):
    from genetic_sizer.data.synthetic import perp_market

    if market == "spot":
        prices = make_prices(n_bars=400, n_assets=6, seed=3)
        ev = Evaluator(prices, ["sharpe", "max_drawdown", "turnover"], rebalance="W", fees=0.001, slippage=0.0005)
        w = random_weights(40, 6, seed=5, kind="longshort")
    else:
        prices = perp_market(hours=24 * 20, seed=2).prices
        kw = {"market": "perp", "leverage": 3.0, "max_leverage": 10.0}
        ev = Evaluator(prices, ["calmar", "sortino"], rebalance="D", fees=0.00045, **kw)
        w = random_weights(40, prices.n_assets, seed=6, kind="longshort")
    seen = []
    score = SC.score_inputs  # the fused kernel's call, which the evaluator's prepared scorer makes

    def spy(*a, **k):
        seen.append(numba.get_num_threads())
        return score(*a, **k)

    monkeypatch.setattr(SC, "score_inputs", spy)
    numba.set_num_threads(2)
    monkeypatch.setattr(K, "SERIAL_BELOW", 0)
    parallel = ev(w)
    monkeypatch.setattr(K, "SERIAL_BELOW", w.size * prices.n_bars + 1)
    serial = ev(w)
    small = ev(w[:3])
    assert seen == [2, 1, 1]
    np.testing.assert_array_equal(serial, parallel)  # bit for bit
    np.testing.assert_array_equal(small, parallel[:3])
    monkeypatch.setattr(K, "SERIAL_BELOW", w.size * prices.n_bars)  # the threshold itself runs in parallel
    np.testing.assert_array_equal(ev(w), parallel)
    assert seen[-1] == 2 and numba.get_num_threads() == 2


@two_threads
def test_one_portfolio_backtests_on_one_thread(monkeypatch):
    prices = make_prices(n_bars=300, n_assets=5, seed=1)
    seen = []
    backtest = P.backtest

    def spy(*a, **k):
        seen.append(numba.get_num_threads())
        return backtest(*a, **k)

    monkeypatch.setattr(P, "backtest", spy)
    numba.set_num_threads(2)
    one = backtest_portfolio(prices, rebalance="M", fees=0.001)
    monkeypatch.setattr(K, "SERIAL_BELOW", 0)
    two = backtest_portfolio(prices, rebalance="M", fees=0.001)
    assert seen == [1, 2]
    np.testing.assert_array_equal(one.result.value, two.result.value)
    assert one.metrics == two.metrics

"""The fused simulate-and-score path (:func:`genetic_sizer.backtest.simulate.score`): its figures equal those of
simulating the population and scoring the value matrix (``compute_metrics(backtest(...).value)``) exactly, for spot and
perp accounts, every rebalance trigger, schedules, per-genome strategies, wiped-out and liquidated genomes; they equal
vectorbt's to 1e-9; and the evaluator's fitness goes through it without a value matrix."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from genetic_sizer.backtest import simulate as S
from genetic_sizer.backtest.kernels import perp
from genetic_sizer.backtest.kernels import spot as nb
from genetic_sizer.backtest.metrics import METRICS, account_metrics, compute_metrics
from genetic_sizer.backtest.simulate import backtest, score
from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.evaluator import Evaluator

from .conftest import make_prices, make_wipeout_prices, random_weights
from .test_fitness import METRIC_RTOL, VBT_METHODS, _vbt_portfolio, _year_of
from .test_perp import _per_segment_case, _random_case, _ranged_case


def _two_pass(prices, w, engine="fast", **kw):
    """The unfused path: the whole value matrix, then its metrics."""
    bt = backtest(prices, w, engine=engine, **kw)
    m = compute_metrics(
        bt.value, init_cash=kw.get("init_cash", 10_000.0), periods_per_year=prices.periods_per_year, traded=bt.traded
    )
    m.update(account_metrics(bt))
    return m, bt


def _assert_same(got, expect):
    assert list(got) == list(expect)
    for name in expect:
        np.testing.assert_array_equal(got[name], expect[name], err_msg=name)
        assert got[name].dtype == np.float64 and got[name].shape == expect[name].shape, name


def _segments(n_bars, n):
    return np.linspace(0, n_bars, n, endpoint=False).astype(np.int64)


SPOT_CASES = [
    # policy, threshold, kind, fees, slippage
    ("M", None, "longonly", 0.0, 0.0),
    ("D", None, "longonly", 0.0005, 0.0005),
    ("once", None, "longshort", 0.0, 0.0),
    (7, None, "longshort", 0.002, 0.001),
    ("W", 0.0, "longonly", 0.001, 0.0),
    ("M", np.inf, "longshort", 0.001, 0.002),
    ("once", 0.05, "longonly", 0.0005, 0.0),
    ("once", 0.03, "longshort", 0.0, 0.003),
    ("D", 0.1, "longonly", 0.001, 0.001),
]


@pytest.mark.parametrize(("policy", "threshold", "kind", "fees", "slippage"), SPOT_CASES)
@pytest.mark.parametrize("n_segments", [1, 4])
def test_spot_score_equals_backtest_then_metrics_exactly(policy, threshold, kind, fees, slippage, n_segments):
    prices = make_prices(400, 6, seed=3, vol=0.03)
    rng = np.random.default_rng(7)
    kw = {"rebalance": policy, "threshold": threshold, "fees": fees, "slippage": slippage, "init_cash": 5_000.0}
    if n_segments == 1:
        w = random_weights(30, 6, seed=5, kind=kind)
    else:
        w = rng.normal(size=(30, n_segments, 6))
        w = np.abs(w) if kind == "longonly" else w
        w /= np.abs(w).sum(axis=2, keepdims=True)
        kw["segment_starts"] = _segments(prices.n_bars, n_segments)
    expect, bt = _two_pass(prices, w, **kw)
    _assert_same(score(prices, w, **kw), expect)
    assert (expect["turnover"] > 0).any() or policy == "once"
    if threshold == 0.0:  # a band of 0 trades on every bar
        assert bt.rebalance.all()


def test_per_genome_and_per_segment_policies_and_bands_score_exactly():
    prices = make_prices(500, 5, seed=11)
    rng = np.random.default_rng(1)
    n_genomes, n_segments = 24, 3
    w = rng.dirichlet(np.ones(5), size=(n_genomes, n_segments))
    w[::3] = rng.normal(size=(8, n_segments, 5))
    w[::3] /= np.abs(w[::3]).sum(axis=2, keepdims=True)  # some long/short genomes
    policies = [["M", "D", 5][g % 3] if g % 4 else ["once", "W", "M"] for g in range(n_genomes)]
    bands = rng.choice([np.inf, 0.0, 0.02, 0.08], size=(n_genomes, n_segments))
    kw = {"segment_starts": [0, 120, 333], "rebalance": policies, "threshold": bands, "fees": 0.001}
    expect, _ = _two_pass(prices, w, **kw)
    _assert_same(score(prices, w, **kw), expect)


@pytest.mark.parametrize("policy", ["once", 60])
def test_wiped_out_long_short_genomes_score_exactly(policy):
    prices = make_wipeout_prices()
    w = np.array([[-0.5, 0.5, 0.0, 0.0], [0.5, -0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [-0.3, 0.2, 0.0, 0.5]])
    expect, bt = _two_pass(prices, w, rebalance=policy, fees=0.001)
    got = score(prices, w, rebalance=policy, fees=0.001)
    _assert_same(got, expect)
    assert got["wiped_out"][0] == 1.0 and got["wiped_out"][1:3].tolist() == [0.0, 0.0]
    assert bt.value[:, 0].min() < 0  # the path goes through zero: measured up to its ruin


@pytest.mark.parametrize("seed", range(24))
@pytest.mark.parametrize("threshold", [None, 0.05])
def test_perp_score_equals_backtest_then_metrics_exactly(seed, threshold):
    p, w, kw = _random_case(seed)
    kw = {**kw, "threshold": threshold}
    if seed % 2:  # a leverage gene: one leverage per genome
        top = 4.0 if kw["max_leverage"] is None else float(np.min(kw["max_leverage"]))
        kw["leverage"] = np.random.default_rng(seed).uniform(0.5, top, size=len(w))
    expect, _ = _two_pass(p, w, **kw)
    _assert_same(score(p, w, **kw), expect)


@pytest.mark.parametrize("seed", range(0, 16, 3))
@pytest.mark.parametrize("tiers", [False, True])
def test_perp_score_within_bars_and_on_margin_tiers_equals_backtest_then_metrics_exactly(seed, tiers):
    """Liquidation tested within each bar (highs and lows) and, with ``tiers``, on the exchange's margin tiers: the
    fused scorer and the value kernel agree bit for bit, liquidated genomes included."""
    p, w, kw = _ranged_case(seed)
    if tiers:
        cash = kw["init_cash"]
        p = p.with_fields(margin={s: ((0.0, 20.0), (0.1 * cash, 6.0), (0.4 * cash, 2.5)) for s in p.symbols})
        kw = {**kw, "max_leverage": None, "leverage": min(2.0 * kw["leverage"], 8.0)}
    expect, _ = _two_pass(p, w, **kw)
    _assert_same(score(p, w, **kw), expect)
    assert p.high is not None


def test_the_ranged_perp_cases_cover_liquidations_within_bars():
    got = np.concatenate([score(p, w, **kw)["liquidated"] for p, w, kw in map(_ranged_case, range(0, 16, 3))])
    assert got.sum() >= 3 and (got == 0).sum() >= 30


def test_the_perp_cases_cover_liquidations_and_funding():
    got = [score(p, w, **kw) for p, w, kw in map(_random_case, range(24))]
    liquidated = np.concatenate([m["liquidated"] for m in got])
    assert liquidated.sum() >= 5 and (liquidated == 0).sum() >= 100
    assert all((m["funding_paid"] > 0).any() for m in got)


@pytest.mark.parametrize("seed", range(0, 12, 3))
def test_perp_score_with_a_leverage_per_segment_equals_backtest_then_metrics_exactly(seed):
    p, w, kw, lev = _per_segment_case(seed)
    for band in (None, 0.05):
        args = {**kw, "leverage": lev, "threshold": band}
        expect, _ = _two_pass(p, w, **args)
        _assert_same(score(p, w, **args), expect)


def test_score_does_not_depend_on_threads_chunks_or_the_rest_of_the_population():
    prices = make_prices(300, 4, seed=2)
    w = random_weights(37, 4, seed=9, kind="longshort")
    kw = {"rebalance": "W", "threshold": 0.04, "fees": 0.001}
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = score(prices, w, **kw)
    finally:
        numba.set_num_threads(threads)
    _assert_same(score(prices, w, **kw), one)
    for g in (0, 17, 36):
        alone = score(prices, w[g], **kw)
        for name in one:
            assert alone[name][0] == one[name][g], name


def test_spot_score_equals_vectorbt():
    """The fused figures against vectorbt's own portfolio methods (sharpe_ratio, ...), to 1e-9 relative."""
    prices = make_prices(600, 5, seed=4, vol=0.03)
    for kind, policy, fees, slippage in (("longonly", "M", 0.001, 0.0), ("longshort", 5, 0.002, 0.001)):
        w = random_weights(6, 5, seed=8, kind=kind)
        pf = _vbt_portfolio(prices, w, policy, fees, slippage, 10_000.0, 365)
        got = score(prices, w, rebalance=policy, fees=fees, slippage=slippage, periods_per_year=365)
        with _year_of(365):
            for name, method in VBT_METHODS.items():
                ref = np.asarray(getattr(pf, method)())
                np.testing.assert_allclose(got[name], ref, rtol=METRIC_RTOL, atol=0, err_msg=name)


def test_score_with_the_reference_engines_is_backtest_then_metrics():
    prices = make_prices(200, 3, seed=1)
    w = random_weights(4, 3, seed=2)
    fused = score(prices, w, rebalance="W", fees=0.001)
    vbt = score(prices, w, rebalance="W", fees=0.001, engine="vectorbt")
    _assert_same(vbt, _two_pass(prices, w, engine="vectorbt", rebalance="W", fees=0.001)[0])
    for name in fused:
        np.testing.assert_allclose(fused[name], vbt[name], rtol=1e-9, atol=1e-12, err_msg=name)
    kw = {"rebalance": "D", "market": "perp", "leverage": 2.0, "fees": 0.0005, "max_leverage": 10}
    ref = score(prices, w, engine="reference", **kw)
    _assert_same(ref, _two_pass(prices, w, engine="reference", **kw)[0])
    for name, arr in score(prices, w, **kw).items():
        np.testing.assert_allclose(arr, ref[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_score_errors():
    prices = make_prices(50, 3)
    w = random_weights(2, 3)
    with pytest.raises(ConfigError, match="periods_per_year must be a positive finite number"):
        score(prices, w, periods_per_year=0)
    with pytest.raises(ConfigError, match="engine must be one of"):
        score(prices, w, engine="nope")
    with pytest.raises(ConfigError, match="vectorbt issue #639"):
        score(prices, w, engine="vectorbt", market="perp")
    with pytest.raises(ConfigError, match="leverage is a setting of market='perp'"):
        score(prices, w, leverage=2)


def _no_value_matrix(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the fitness path simulated a value matrix")

    monkeypatch.setattr(S, "_simulate_fast", refuse)
    monkeypatch.setattr(perp, "simulate_perp_population_nb", refuse)
    monkeypatch.setattr(nb, "metrics_nb", refuse)


def test_the_evaluator_scores_with_the_fused_kernel(monkeypatch):
    """Fitness (``Evaluator.__call__`` and ``metrics``) runs the fused kernel, and equals the two-pass figures; the
    reference engines and ``metrics_of`` of a backtest keep the two-pass path."""
    prices = make_wipeout_prices()
    w = np.array([[-0.5, 0.5, 0.0, 0.0], [0.0, 0.5, 0.0, 0.5], [0.1, 0.2, 0.3, 0.4]])
    ev = Evaluator(prices, ("sharpe", "turnover", "calmar"), rebalance=60, fees=0.001)
    expect = ev.metrics_of(ev.backtest(w))
    fitness = ev(w)
    perp_ev = Evaluator(prices, ("sortino",), rebalance="once", market="perp", leverage=3, max_leverage=5, fees=0.0005)
    perp_expect = perp_ev.metrics_of(perp_ev.backtest(w))
    assert perp_expect["liquidated"].any()
    _no_value_matrix(monkeypatch)
    got = ev.metrics(w)
    _assert_same(got, expect)
    assert set(got) == set(METRICS) - set(perp.ACCOUNT_FIELDS) - {"liquidated"}
    np.testing.assert_array_equal(ev(w), fitness)
    np.testing.assert_array_equal(fitness[0], ev.wiped_out_fitness)
    _assert_same(perp_ev.metrics(w), perp_expect)
    assert set(perp_ev.metrics(w)) == set(METRICS)
    with pytest.raises(AssertionError, match="value matrix"):
        ev.metrics_of(ev.backtest(w))


# ---- the risk-free rate (issue 22) ------------------------------------------------------------------------------
def _rates(prices, kind):
    """No rate, one per-bar rate for every bar (4 % a year), or one per bar (a series of -1 % to 8 % a year)."""
    ppy = prices.periods_per_year
    if kind == "none":
        return 0.0
    if kind == "constant":
        return 1.04 ** (1 / ppy) - 1
    return np.random.default_rng(prices.n_bars).uniform(-0.01, 0.08, prices.n_bars) / ppy


@pytest.mark.parametrize("rates", ["none", "constant", "series"])
@pytest.mark.parametrize(("policy", "threshold", "kind", "fees", "slippage"), SPOT_CASES[::2])
def test_spot_score_with_a_risk_free_rate_equals_backtest_then_metrics_exactly(
    policy, threshold, kind, fees, slippage, rates
):
    """The fused kernel's Sharpe and Sortino of excess returns equal compute_metrics of the value matrix bit for bit,
    for one rate and a rate per bar; every other figure is that without a rate, bit for bit."""
    prices = make_prices(400, 6, seed=3, vol=0.03)
    w = random_weights(30, 6, seed=5, kind=kind)
    kw = {"rebalance": policy, "threshold": threshold, "fees": fees, "slippage": slippage, "init_cash": 5_000.0}
    rf = _rates(prices, rates)
    bt = backtest(prices, w, **kw)
    expect = compute_metrics(
        bt.value, init_cash=5_000.0, periods_per_year=prices.periods_per_year, traded=bt.traded, risk_free=rf
    )
    got = score(prices, w, risk_free=rf, **kw)
    _assert_same(got, expect)
    plain = score(prices, w, **kw)
    for name in plain:
        if name not in ("sharpe", "sortino"):
            np.testing.assert_array_equal(got[name], plain[name], err_msg=name)
        elif rates != "none":
            assert (got[name] != plain[name]).all(), name


@pytest.mark.parametrize("rates", ["constant", "series"])
@pytest.mark.parametrize("seed", range(0, 24, 5))
def test_perp_score_with_a_risk_free_rate_equals_backtest_then_metrics_exactly(seed, rates):
    """The perp scorer takes the same rates (liquidated accounts measured up to their end, as without a rate)."""
    p, w, kw = _random_case(seed)
    rf = _rates(p, rates)
    bt = backtest(p, w, **kw)
    expect = compute_metrics(
        bt.value,
        init_cash=kw.get("init_cash", 10_000.0),
        periods_per_year=p.periods_per_year,
        traded=bt.traded,
        risk_free=rf,
    )
    expect.update(account_metrics(bt))
    _assert_same(score(p, w, risk_free=rf, **kw), expect)


def test_score_with_a_rate_per_bar_checks_its_length_and_values():
    prices = make_prices(50, 3)
    w = random_weights(2, 3)
    with pytest.raises(ConfigError, match=r"risk_free must have one rate per bar \(50\), got 49"):
        score(prices, w, risk_free=np.zeros(49))
    with pytest.raises(ConfigError, match=r"risk_free\[3\] must be a finite per-bar rate above -1, got inf"):
        score(prices, w, risk_free=np.r_[np.zeros(3), np.inf, np.zeros(46)])
    with pytest.raises(ConfigError, match=r"risk_free \(0\.05 per bar, mean\) is .* a year, outside"):
        score(prices, w, risk_free=0.05, engine="vectorbt")

"""The prepared scorer (:class:`genetic_sizer.backtest.scorer.Scorer`, issue 27): ``Scorer(close, **settings)(weights)``
equals :func:`genetic_sizer.backtest.simulate.score` bit for bit (spot and perp, schedules, drift bands, policies,
risk-free rates, resamples, settings per genome given per call), reused with other weights and population sizes; the
genomes are checked on every call and the settings once, with the errors score() raises; and the evaluator scores
through one scorer it prepares once (rebuilt when a setting is replaced, not pickled)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import genetic_sizer.backtest.inputs as I
import genetic_sizer.backtest.scorer as SC
import genetic_sizer.backtest.simulate as S
import genetic_sizer.evolution.evaluator as E
from genetic_sizer.backtest import resample as rs
from genetic_sizer.backtest.policy import RebalancePolicy
from genetic_sizer.backtest.scorer import Scorer
from genetic_sizer.backtest.simulate import score
from genetic_sizer.errors import ConfigError, GenomeError
from genetic_sizer.evolution.evaluator import Evaluator, prepared_scorer

from .conftest import make_prices, random_weights
from .test_perp import _per_segment_case, _random_case
from .test_simulate_score import SPOT_CASES, _assert_same, _rates, _segments

_PER_CALL = ("rebalance", "threshold", "leverage", "policy")


def _split(kw):
    """score()'s keywords as a Scorer's settings (everything but the resamples)."""
    return {k: v for k, v in kw.items() if k != "resamples"}


def _schedule(rng, n_genomes, n_segments, n_assets, kind):
    w = rng.normal(size=(n_genomes, n_segments, n_assets))
    w = np.abs(w) if kind == "longonly" else w
    return w / np.abs(w).sum(axis=2, keepdims=True)


@pytest.mark.parametrize(("policy", "threshold", "kind", "fees", "slippage"), SPOT_CASES)
@pytest.mark.parametrize("n_segments", [1, 4])
def test_a_spot_scorer_equals_score_bit_for_bit_and_is_reused_with_other_weights(
    policy, threshold, kind, fees, slippage, n_segments
):
    prices = make_prices(400, 6, seed=3, vol=0.03)
    rng = np.random.default_rng(7)
    kw = {"rebalance": policy, "threshold": threshold, "fees": fees, "slippage": slippage, "init_cash": 5_000.0}
    if n_segments == 1:
        populations = [random_weights(n, 6, seed=5 + n, kind=kind) for n in (30, 7, 30)]
    else:
        kw["segment_starts"] = _segments(prices.n_bars, n_segments)
        populations = [_schedule(rng, n, n_segments, 6, kind) for n in (30, 7, 30)]
    scorer = Scorer(prices, **kw)
    for w in populations:  # one scorer, three populations (two sizes): each call is score() of its weights
        _assert_same(scorer(w), score(prices, w, **kw))


@pytest.mark.parametrize("rates", ["constant", "series"])
@pytest.mark.parametrize("ppy", [None, 52.0])
def test_a_scorer_with_a_risk_free_rate_and_periods_per_year_equals_score(rates, ppy):
    prices = make_prices(300, 5, seed=4, vol=0.02)
    w = random_weights(20, 5, seed=2, kind="longshort")
    kw = {"rebalance": "W", "threshold": 0.04, "fees": 0.001, "risk_free": _rates(prices, rates)}
    kw["periods_per_year"] = ppy
    got = Scorer(prices, **kw)(w)
    _assert_same(got, score(prices, w, **kw))
    assert (got["sharpe"] != score(prices, w, **{**kw, "risk_free": 0.0})["sharpe"]).all()


@pytest.mark.parametrize(
    "policy",
    [
        RebalancePolicy(vol_target=0.15, vol_lookback=7, min_trade=0.005, max_turnover=0.5),
        {"vol_lookback": 5, "min_trade": 0.01},
        {"vol_target": [0.05, 0.1, 0.2, 0.4, 0.0, 0.3, 1.0, 0.2], "vol_lookback": 5},  # one per genome: per call
    ],
)
def test_a_scorer_with_a_rebalancing_policy_equals_score(policy):
    prices = make_prices(350, 4, seed=8, vol=0.03)
    w = random_weights(8, 4, seed=3)
    kw = {"rebalance": "D", "fees": 0.0005, "policy": policy}
    _assert_same(Scorer(prices, **kw)(w), score(prices, w, **kw))


@pytest.mark.parametrize("seed", range(0, 24, 3))
@pytest.mark.parametrize("threshold", [None, 0.05])
def test_a_perp_scorer_equals_score_bit_for_bit(seed, threshold):
    """Funding, margin tiers, maximum leverage, schedules; one leverage for every genome (prepared once) or one per
    genome (checked per call)."""
    p, w, kw = _random_case(seed)
    kw = {**kw, "threshold": threshold}
    if seed % 2:
        top = 4.0 if kw["max_leverage"] is None else float(np.min(kw["max_leverage"]))
        kw["leverage"] = np.random.default_rng(seed).uniform(0.5, top, size=len(w))
    expect = score(p, w, **kw)
    scorer = Scorer(p, **kw)
    _assert_same(scorer(w), expect)
    _assert_same(scorer(w), expect)  # called again: the same figures


@pytest.mark.parametrize("seed", range(0, 12, 3))
def test_a_perp_scorer_with_a_leverage_per_segment_equals_score(seed):
    p, w, kw, lev = _per_segment_case(seed)
    kw = {**kw, "leverage": lev, "threshold": 0.05}
    _assert_same(Scorer(p, **kw)(w), score(p, w, **kw))


def test_settings_given_per_call_replace_the_scorers_and_equal_score():
    """The evaluator's strategy genes: each genome's own policy, band, leverage and volatility target, per call."""
    p, w, kw = _random_case(1)  # perp, long/short, no schedule
    n = len(w)
    rng = np.random.default_rng(3)
    per_genome = {
        "rebalance": [["M", "D", 5, "once"][g % 4] for g in range(n)],
        "threshold": rng.choice([np.inf, 0.02, 0.08], size=n),
        "leverage": rng.uniform(0.5, 3.0, size=n),
        "policy": {"vol_target": rng.uniform(0.0, 0.5, size=n), "vol_lookback": 4},
    }
    scorer = Scorer(p, **kw)
    for name in _PER_CALL:
        _assert_same(scorer(w, **{name: per_genome[name]}), score(p, w, **{**kw, name: per_genome[name]}))
    _assert_same(scorer(w, **per_genome), score(p, w, **{**kw, **per_genome}))
    _assert_same(scorer(w), score(p, w, **kw))  # and the scorer's own settings again
    spot = make_prices(200, 4, seed=1)
    ws = random_weights(6, 4, seed=2)
    with pytest.raises(ConfigError, match="leverage is a setting of market='perp'"):
        Scorer(spot)(ws, leverage=2.0)


def test_a_scorer_scores_resamples_as_score_does():
    prices = make_prices(300, 4, seed=5)
    w = random_weights(9, 4, seed=6, kind="longshort")
    res = rs.blocks(prices.n_bars, 4)
    m, rm = Scorer(prices, rebalance="W", fees=0.001)(w, resamples=res)
    m2, rm2 = score(prices, w, rebalance="W", fees=0.001, resamples=res)
    _assert_same(m, m2)
    _assert_same(rm, rm2)


def test_bad_genomes_raise_on_every_call_naming_the_genome_and_value():
    prices = make_prices(120, 3, seed=1)
    scorer = Scorer(prices, rebalance="M")
    good = random_weights(4, 3, seed=1)
    scorer(good)
    bad = good.copy()
    bad[2, 1] = np.nan
    with pytest.raises(GenomeError, match=r"genome 2: weight of asset 'A01' is nan"):
        scorer(bad)
    bad = good.copy()
    bad[3] = [0.5, 0.3, 0.1]
    with pytest.raises(GenomeError, match=r"genome 3: sum of weights is 0\.9.*must be 1"):
        scorer(bad)
    bad = good.copy()
    bad[1, 0] = np.inf
    with pytest.raises(GenomeError, match=r"genome 1: weight of asset 'A00' is inf"):
        scorer(bad)
    with pytest.raises(GenomeError, match=r"weights must have shape \(n_genomes, 3\), got \(4, 2\)"):
        scorer(good[:, :2])
    sched = Scorer(prices, segment_starts=[0, 60])
    w = np.repeat(good[:, None, :], 2, axis=1)
    _assert_same(sched(w), score(prices, w, segment_starts=[0, 60]))
    w[0, 1] = [0.2, 0.2, 0.2]
    with pytest.raises(GenomeError, match=r"genome 0, segment 1 \(from bar 60\): sum of weights is 0\.6"):
        sched(w)
    with pytest.raises(GenomeError, match=r"with 2 segment_starts, weights must have shape"):
        sched(good)


def test_the_weight_check_keeps_its_tolerance():
    """The one-pass check of the usual case accepts and refuses exactly what the per-genome check did."""
    prices = make_prices(60, 2, seed=1)
    scorer = Scorer(prices)
    scorer(np.array([[0.5 + 0.9e-9, 0.5]]))
    with pytest.raises(GenomeError, match=r"sum of weights is 1\.000000001[0-9]*, must be 1 \(within 1e-09\)"):
        scorer(np.array([[0.5 + 1.1e-9, 0.5]]))
    with pytest.raises(GenomeError, match=r"genome 1: weight of asset 'A00' is -inf"):
        scorer(np.array([[0.5, 0.5], [-np.inf, np.inf]]))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"fees": 1.5}, r"fees must be a number in \[0\.0, 1\.0\), got 1\.5"),
        ({"init_cash": -1.0}, r"init_cash must be a positive finite number, got -1\.0"),
        ({"periods_per_year": 0}, r"periods_per_year must be a positive finite number, got 0"),
        ({"risk_free": 0.05}, r"risk_free"),
        ({"risk_free": np.zeros(7)}, r"risk_free must have one rate per bar \(50\), got 7"),
        ({"market": "futures"}, r"market must be one of .*got 'futures'"),
        ({"leverage": 2.0}, r"leverage is a setting of market='perp'"),
        ({"rebalance": "fortnightly"}, r"rebalance"),
        ({"threshold": -0.1}, r"threshold is -0\.1"),
        ({"segment_starts": [0, 70]}, r"segment_starts\[1\] = 70 is out of range"),
        ({"market": "perp", "leverage": 8.0, "max_leverage": 5.0}, r"leverage 8 is above the max_leverage"),
        ({"policy": {"vol_lookback": 1}}, r"vol_lookback must be an integer >= 2"),
    ],
)
def test_bad_settings_raise_at_construction_as_score_raises(kw, match):
    prices = make_prices(50, 3)
    with pytest.raises(ConfigError, match=match):
        score(prices, random_weights(2, 3), **kw)
    with pytest.raises(ConfigError, match=match):
        Scorer(prices, **kw)


def _counting(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_the_evaluator_prepares_its_scorer_once(monkeypatch):
    """Fitness: the settings are checked once (one Scorer), not on every call (no prepare(), no check of the rates
    per call); the figures are score()'s; a replaced setting prepares a new scorer; a pickled copy has none and
    prepares its own."""
    prices = make_prices(300, 4, seed=2)
    ev = Evaluator(prices, ("sharpe", "turnover"), rebalance="W", fees=0.001, risk_free=0.03)
    rf = ev.rf  # the per-bar rates of 3 % a year
    assert rf.shape == (1,) and rf[0] > 0
    batches = [random_weights(n, 4, seed=n) for n in (10, 3, 10)]
    prepares, score_prepares = _counting(monkeypatch, I, "prepare"), _counting(monkeypatch, S, "prepare")
    built = _counting(monkeypatch, SC, "check_rates")
    for w in batches:
        expect = score(prices, w, rebalance="W", fees=0.001, risk_free=rf)
        _assert_same(ev.metrics(w), expect)
        np.testing.assert_array_equal(ev(w), np.column_stack([expect["sharpe"], expect["turnover"]]))
    assert built == [1] and prepares == [] and score_prepares == [1, 1, 1]  # score()'s own, for the expected figures
    assert prepared_scorer(ev) is prepared_scorer(ev)
    ev.fees = 0.01  # a replaced setting: prepared again, with it
    _assert_same(ev.metrics(batches[0]), score(prices, batches[0], rebalance="W", fees=0.01, risk_free=rf))
    assert built == [1, 1]
    copy = pickle.loads(pickle.dumps(ev))  # a worker's copy: prepares its own
    assert copy not in E._PREPARED
    np.testing.assert_array_equal(copy(batches[1]), ev(batches[1]))
    assert built == [1, 1, 1] and copy in E._PREPARED


def test_the_evaluator_with_the_trial_sharpe_column_is_unchanged():
    prices = make_prices(300, 4, seed=2)
    ev = Evaluator(prices, ("sortino", "max_drawdown"), rebalance="M", fees=0.0005).with_trial_sharpe()
    w = random_weights(12, 4, seed=4, kind="longshort")
    m = score(prices, w, rebalance="M", fees=0.0005)
    got = ev(w)
    expect = np.column_stack([m["sortino"], m["max_drawdown"], m["sharpe"] / np.sqrt(prices.periods_per_year)])
    np.testing.assert_array_equal(got, expect)
    assert got.flags.c_contiguous and got.dtype == np.float64


def test_a_scorer_calls_the_kernels_with_the_types_score_does():
    """No other signature: the warmed cache holds what the prepared scorer runs (a read-only or otherwise typed array
    would compile the kernel again, for minutes on a worker)."""
    from genetic_sizer.backtest.kernels import perp
    from genetic_sizer.backtest.kernels import spot as nb

    prices = make_prices(200, 4, seed=1)
    w = random_weights(6, 4, seed=2)
    p, wp, kw = _random_case(2)
    for settings in ({"rebalance": "M"}, {"rebalance": "W", "threshold": 0.05, "policy": {"vol_target": 0.2}}):
        score(prices, w, **settings)
        score(p, wp, **{**kw, **settings})
        spot_sigs, perp_sigs = len(nb.score_population_nb.signatures), len(perp.score_perp_population_nb.signatures)
        Scorer(prices, **settings)(w)
        Scorer(p, **{**kw, **settings})(wp)
        assert len(nb.score_population_nb.signatures) == spot_sigs
        assert len(perp.score_perp_population_nb.signatures) == perp_sigs

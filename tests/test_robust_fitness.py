"""Resampled fitness (``robust.resample``, issue 23 item 1): each objective on K resamples (contiguous blocks or
stationary-bootstrap draws) of a genome's one simulated path, combined on the pessimistic side of its direction.

The fused kernels' figures are checked against an independent plain-Python loop over the vectorbt value path (spot)
or the plain-Python reference loop's equity path (perp; vectorbt has no perpetuals), and the vectorbt engine's
resampled fitness against the fused kernel's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genetic_sizer.backtest import resample as rs
from genetic_sizer.backtest.metrics import CAP
from genetic_sizer.backtest.simulate import score
from genetic_sizer.config import load_config
from genetic_sizer.config.robust import RobustConfig
from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.evolution.genes import GeneSpace
from genetic_sizer.vocab import OBJECTIVES

from .conftest import make_prices, random_weights

SPOT_OBJECTIVES = ("sharpe", "sortino", "calmar", "cagr", "total_return", "max_drawdown", "annualized_volatility")
ALL_OBJECTIVES = (*SPOT_OBJECTIVES, "turnover")


# ---------------------------------------------------------------- the independent loop
def _returns(values, init_cash):
    out = []
    prev = init_cash
    for v in values:
        out.append(v / prev - 1.0)
        prev = v
    return out


def clip(x):
    return max(-CAP, min(CAP, x))


def _plain_metrics(r, rf, turn, ppy):
    """Every metric of one return series ``r`` (with its bars' risk-free rates and turnover terms), from first
    principles: the path compounded from 1, drawdowns from its first bar's value on (as the whole window's), every
    figure within [-CAP, CAP] (the metrics' documented bound)."""
    n = len(r)
    x = [a - b for a, b in zip(r, rf, strict=True)]
    mean_x = sum(x) / n
    std_x = math.sqrt(sum((a - mean_x) ** 2 for a in x) / (n - 1))
    mean_r = sum(r) / n
    std_r = math.sqrt(sum((a - mean_r) ** 2 for a in r) / (n - 1))
    down = math.sqrt(sum(min(a, 0.0) ** 2 for a in x) / n)
    path = []
    v = 1.0
    for a in r:
        v *= 1.0 + a
        path.append(v)
    peak = path[0]
    dd = 0.0
    for v in path:
        peak = max(peak, v)
        dd = min(dd, v / peak - 1.0)
    cagr = clip(path[-1] ** (ppy / n) - 1.0)
    return {
        "sharpe": clip(mean_x / std_x * math.sqrt(ppy)),
        "sortino": clip(mean_x * ppy / (down * math.sqrt(ppy))),
        "calmar": clip(cagr / abs(dd)),
        "cagr": cagr,
        "total_return": clip(path[-1] - 1.0),
        "max_drawdown": dd,
        "annualized_volatility": clip(std_r * math.sqrt(ppy)),
        "turnover": clip(sum(turn) * ppy / n),
    }


def _quantile(xs, q):
    """numpy's default (linear) quantile, by hand."""
    s = sorted(xs)
    h = (len(s) - 1) * q
    lo = math.floor(h)
    return s[lo] + (h - lo) * (s[min(lo + 1, len(s) - 1)] - s[lo])


def _combine(xs, robust, maximize):
    if robust.combine == "mean_std":
        inside = [a for a in xs if -CAP < a < CAP]  # a +-CAP resample counts as the row's extreme finite value
        if inside:
            xs = [max(inside) if a >= CAP else min(inside) if a <= -CAP else a for a in xs]
        mean = sum(xs) / len(xs)
        sd = math.sqrt(sum((a - mean) ** 2 for a in xs) / (len(xs) - 1))
        return mean - robust.penalty * sd if maximize else mean + robust.penalty * sd
    if robust.combine == "quantile":
        return _quantile(xs, robust.quantile if maximize else 1.0 - robust.quantile)
    return min(xs) if maximize else max(xs)


def _plain_fitness(values, turnover, init_cash, ppy, rf, resamples, objectives, robust):
    """(n_genomes, n_objectives) from value paths (n_bars, n_genomes) and per-bar turnover terms, by loops."""
    out = np.empty((values.shape[1], len(objectives)))
    rf = np.broadcast_to(np.asarray(rf, dtype=np.float64), (values.shape[0],))
    for g in range(values.shape[1]):
        r = _returns(list(values[:, g]), init_cash)
        per = []
        for k in range(resamples.k):
            bars = [int(i) for i in resamples.bars(k)]
            per.append(_plain_metrics([r[i] for i in bars], [rf[i] for i in bars], [turnover[i, g] for i in bars], ppy))
        for j, o in enumerate(objectives):
            out[g, j] = _combine([p[o] for p in per], robust, OBJECTIVES[o])
    return out


def _bootstrap_by_hand(n, k, length, seed):
    """The stationary bootstrap as documented, one step at a time."""
    rng = np.random.default_rng([seed, rs.BOOTSTRAP_STREAM])
    rows = []
    for _ in range(k):
        coins = rng.random(n)
        starts = rng.integers(0, n, n)
        row = []
        cur = 0
        for t in range(n):
            cur = int(starts[t]) if t == 0 or coins[t] < 1.0 / length else (cur + 1) % n
            row.append(cur)
        rows.append(row)
    return rows


# ---------------------------------------------------------------- resamples
def test_blocks_split_the_bars_into_nearly_equal_contiguous_blocks():
    res = rs.blocks(301, 4)
    assert [list(res.bars(k)[[0, -1]]) for k in range(4)] == [[0, 74], [75, 149], [150, 224], [225, 300]]
    np.testing.assert_array_equal(res.lengths, [75, 75, 75, 76])
    np.testing.assert_array_equal(np.concatenate([res.bars(k) for k in range(4)]), np.arange(301))


@pytest.mark.parametrize(("n", "root"), [(1, 1), (8, 2), (9, 3), (27, 3), (28, 4), (1000, 10), (1001, 11)])
def test_default_block_length_is_the_cube_root_rounded_up(n, root):
    assert rs.cube_root_ceil(n) == root


def test_bootstrap_indices_are_the_documented_stationary_bootstrap_and_deterministic():
    n, k = 250, 20
    res = rs.bootstrap(n, k, None, seed=7)
    assert res.block_length == 7  # 7**3 = 343 >= 250 > 216 = 6**3
    rows = [list(res.bars(j)) for j in range(k)]
    assert rows == _bootstrap_by_hand(n, k, 7, 7)
    again = rs.bootstrap(n, k, None, seed=7)
    np.testing.assert_array_equal(again.idx, res.idx)
    assert not np.array_equal(rs.bootstrap(n, k, None, seed=8).idx, res.idx)
    # blocks of consecutive bars (wrapping), with mean length near L
    steps = np.diff(res.idx.reshape(k, n), axis=1) % n
    continued = (steps == 1).mean()
    assert abs(continued - (1 - 1 / 7)) < 0.03


# ---------------------------------------------------------------- spot: fused kernel vs the loop over vectorbt's path
@pytest.fixture(scope="module")
def spot_case():
    p = make_prices(240, 5, seed=11)
    w = random_weights(6, 5, seed=3)
    return p, w


@pytest.mark.parametrize("resample", ["blocks", "bootstrap"])
@pytest.mark.parametrize("combine", ["mean_std", "quantile", "min"])
def test_spot_resampled_fitness_equals_a_plain_loop_over_the_vectorbt_path(spot_case, resample, combine):
    p, w = spot_case
    robust = RobustConfig(
        resample=resample, resamples=4 if resample == "blocks" else 9, combine=combine, penalty=0.7, quantile=0.3
    )
    kw = dict(rebalance="W", fees=0.001, slippage=0.0005, risk_free=0.03, robust=robust, seed=5)
    fast = Evaluator(p, ALL_OBJECTIVES, **kw)
    vbt = Evaluator(p, ALL_OBJECTIVES, engine="vectorbt", **kw)
    got = fast(w)
    bt = vbt.backtest(w)
    np.testing.assert_allclose(bt.turnover.sum(axis=0), bt.traded, rtol=1e-13)
    expected = _plain_fitness(
        bt.value, bt.turnover, fast.init_cash, p.periods_per_year, fast.rf, fast.resamples, ALL_OBJECTIVES, robust
    )
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(vbt(w), got, rtol=1e-8, atol=1e-10)  # the vectorbt engine's resampled fitness
    assert not np.allclose(got, Evaluator(p, ALL_OBJECTIVES, **{**kw, "robust": None})(w))


def test_spot_with_strategy_genes_and_a_per_bar_risk_free_rate(spot_case):
    """Genomes with their own policy and drift band; rates that vary by bar are resampled with the returns."""
    p, w = spot_case
    space = GeneSpace.create({"threshold": [0.0, 0.2], "rebalance": ["W", "M", "once"]}, default_rebalance="M")
    genes = np.array([[0.03, 0], [0.0, 1], [0.1, 2], [0.2, 0], [0.05, 1], [0.01, 2]], dtype=np.float64)
    robust = RobustConfig(resample="bootstrap", resamples=6, block_length=5, combine="mean_std", penalty=1.5)
    kw = dict(fees=0.002, genes=space, robust=robust, seed=1)
    fast = Evaluator(p, ALL_OBJECTIVES, **kw)
    rates = np.linspace(0.0, 0.0004, p.n_bars)
    fast.rf = rates  # a series of per-bar rates (as a rates file gives)
    rows = np.hstack([w, genes])
    got = fast(rows)
    vbt = Evaluator(p, ALL_OBJECTIVES, engine="vectorbt", **kw)
    vbt.rf = rates
    bt = vbt.backtest(w, genes=genes)
    expected = _plain_fitness(
        bt.value, bt.turnover, fast.init_cash, p.periods_per_year, rates, fast.resamples, ALL_OBJECTIVES, robust
    )
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(vbt(rows), got, rtol=1e-8, atol=1e-10)


def test_the_combination_is_pessimistic_for_each_direction(spot_case):
    """Maximized objectives (max_drawdown included: it is <= 0, closer to 0 is better) take the lowest of the K
    values, minimized ones (annualized_volatility, turnover) the highest; mean_std and quantile likewise."""
    p, w = spot_case
    objectives = ("sharpe", "max_drawdown", "annualized_volatility", "turnover")
    base = Evaluator(p, objectives, rebalance="W", fees=0.001, robust=RobustConfig(resample="blocks"), seed=0)
    _, per = base.metrics(w, resampled=True)
    for combine in ("min", "quantile", "mean_std"):
        robust = RobustConfig(resample="blocks", combine=combine, quantile=0.2, penalty=2.0)
        f = Evaluator(p, objectives, rebalance="W", fees=0.001, robust=robust, seed=0)(w)
        for j, o in enumerate(objectives):
            x = per[o]
            if combine == "min":
                want = x.min(axis=1) if OBJECTIVES[o] else x.max(axis=1)
            elif combine == "quantile":
                want = np.quantile(x, 0.2 if OBJECTIVES[o] else 0.8, axis=1)
            else:
                sign = -1.0 if OBJECTIVES[o] else 1.0
                want = x.mean(axis=1) + sign * 2.0 * x.std(axis=1, ddof=1)
            np.testing.assert_array_equal(f[:, j], want)
            # pessimistic: never better than the resamples' mean
            better = f[:, j] > x.mean(axis=1) if OBJECTIVES[o] else f[:, j] < x.mean(axis=1)
            assert not better.any(), (combine, o)
    assert (per["max_drawdown"] <= 0).all() and OBJECTIVES["max_drawdown"]
    assert not OBJECTIVES["turnover"] and not OBJECTIVES["annualized_volatility"]


def test_blocks_partition_the_window(spot_case):
    """Blocks: each block's total return compounds to the whole window's, and their turnover sums add up to it."""
    p, w = spot_case
    ev = Evaluator(p, ("sharpe",), rebalance="W", fees=0.001, robust=RobustConfig(resample="blocks", resamples=5))
    m, per = ev.metrics(w, resampled=True)
    np.testing.assert_allclose(np.prod(1.0 + per["total_return"], axis=1) - 1.0, m["total_return"], rtol=1e-11)
    lengths = ev.resamples.lengths
    ppy = p.periods_per_year
    np.testing.assert_allclose(
        (per["turnover"] * lengths / ppy).sum(axis=1), m["turnover"] * p.n_bars / ppy, rtol=1e-12
    )


# ---------------------------------------------------------------- perp
@pytest.mark.parametrize("resample", ["blocks", "bootstrap"])
@pytest.mark.parametrize("combine", ["mean_std", "quantile", "min"])
def test_perp_resampled_fitness_equals_a_plain_loop_over_the_reference_path(resample, combine):
    p = make_prices(200, 4, seed=21, freq="h")
    w = random_weights(5, 4, seed=9, kind="longshort")
    space = GeneSpace.create(
        {"threshold": [0.0, 0.1], "leverage": [1.0, 4.0]}, default_rebalance=12, default_leverage=2
    )
    genes = np.array([[0.02, 1.5], [0.0, 3.0], [0.1, 1.0], [0.05, 4.0], [0.03, 2.2]])
    robust = RobustConfig(resample=resample, resamples=5, combine=combine, penalty=0.5, quantile=0.4)
    objectives = SPOT_OBJECTIVES
    ev = Evaluator(p, objectives, fees=0.00045, market="perp", max_leverage=10, genes=space, robust=robust, seed=2)
    got = ev(np.hstack([w, genes]))
    bt = ev.backtest(w, engine="reference", genes=genes)
    assert (bt.liquidated < 0).all()
    no_turnover = np.zeros_like(bt.value)
    expected = _plain_fitness(
        bt.value, no_turnover, ev.init_cash, p.periods_per_year, ev.rf, ev.resamples, objectives, robust
    )
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)


def test_perp_turnover_terms_add_up_to_the_turnover_sum():
    p = make_prices(200, 4, seed=21, freq="h")
    w = random_weights(5, 4, seed=9, kind="longshort")
    ev = Evaluator(
        p,
        ("turnover",),
        rebalance=6,
        fees=0.00045,
        market="perp",
        leverage=2,
        max_leverage=10,
        robust=RobustConfig(resample="blocks", resamples=4, combine="min"),
    )
    m, per = ev.metrics(w, resampled=True)
    ppy = p.periods_per_year
    total = (per["turnover"] * ev.resamples.lengths / ppy).sum(axis=1)
    np.testing.assert_allclose(total, m["turnover"] * p.n_bars / ppy, rtol=1e-12)
    np.testing.assert_array_equal(ev(w)[:, 0], per["turnover"].max(axis=1))  # minimized: the worst block


# ---------------------------------------------------------------- whole-window figures and the plain GA
def test_default_config_is_the_plain_fitness_bit_for_bit(spot_case):
    p, w = spot_case
    objectives = ("sharpe", "max_drawdown", "turnover")
    plain = Evaluator(p, objectives, rebalance="W", fees=0.001)
    default = Evaluator(p, objectives, rebalance="W", fees=0.001, robust=RobustConfig(), seed=9)
    np.testing.assert_array_equal(default(w), plain(w))
    assert default.resamples is None and default.fitness_label == "whole_window"
    # the resampled scorer's whole-window figures are the plain scorer's, bit for bit
    m = score(p, w, rebalance="W", fees=0.001)
    m2, _ = score(p, w, rebalance="W", fees=0.001, resamples=rs.blocks(p.n_bars, 4))
    for name in m:
        np.testing.assert_array_equal(m2[name], m[name], err_msg=name)
    cfg = load_config(None)
    assert Evaluator.from_config(p, cfg).resampling is None


def test_trial_sharpe_stays_whole_window_and_wiped_out_genomes_keep_the_sentinel(spot_case):
    p, w = spot_case
    robust = RobustConfig(resample="bootstrap", resamples=8)
    ev = Evaluator(p, ("sharpe", "turnover"), rebalance="W", robust=robust, seed=4).with_trial_sharpe()
    f = ev(w)
    m = ev.metrics(w)
    np.testing.assert_array_equal(f[:, -1], m["sharpe"] / math.sqrt(p.periods_per_year))
    assert not np.allclose(f[:, 0], m["sharpe"])


def test_wiped_out_genome_gets_the_sentinel_under_resampling():
    from .conftest import make_wipeout_prices

    p = make_wipeout_prices()
    w = np.array([[-0.5, 0.2, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25]])
    robust = RobustConfig(resample="blocks", resamples=3)
    ev = Evaluator(p, ("sharpe", "turnover"), rebalance="once", robust=robust)
    f = ev(w)
    lost = ev.metrics(w)["wiped_out"] > 0
    assert lost.any()
    np.testing.assert_array_equal(f[lost], np.tile(ev.wiped_out_fitness, (int(lost.sum()), 1)))


def test_determinism_across_evaluators_and_pickling(spot_case):
    import pickle

    p, w = spot_case
    robust = RobustConfig(resample="bootstrap", resamples=7, combine="quantile")
    a = Evaluator(p, ("sharpe",), robust=robust, seed=3)
    b = pickle.loads(pickle.dumps(a))  # a worker's copy draws the same indices
    np.testing.assert_array_equal(a(w), b(w))
    np.testing.assert_array_equal(a(w), Evaluator(p, ("sharpe",), robust=robust, seed=3)(w))
    assert not np.array_equal(a(w), Evaluator(p, ("sharpe",), robust=robust, seed=4)(w))


def test_from_config_and_the_logbook_label():
    cfg = load_config(
        None, ["robust.resample=bootstrap", "robust.resamples=20", "robust.combine=quantile", "evolution.seed=11"]
    )
    p = make_prices(120, 3, seed=1)
    ev = Evaluator.from_config(p, cfg)
    assert ev.seed == 11 and ev.resampling.resamples == 20
    assert ev.fitness_label == "bootstrap K=20 L=5 quantile q=0.25"
    np.testing.assert_array_equal(ev.resamples.idx, rs.bootstrap(120, 20, None, 11).idx)


# ---------------------------------------------------------------- errors
def test_more_blocks_than_the_window_can_hold_is_refused():
    p = make_prices(30, 3, seed=1)
    w = random_weights(2, 3)
    ev = Evaluator(p, ("sharpe",), robust=RobustConfig(resample="blocks", resamples=16))
    with pytest.raises(ConfigError, match=r"robust\.resamples .*got 16 .*30 bars"):
        ev(w)
    with pytest.raises(ConfigError, match=r"robust\.resamples"):
        ev.with_trial_sharpe()  # before anything runs
    ev.metrics(w)  # whole-window figures (a held-out window) are still served
    with pytest.raises(ConfigError, match=r"robust\.block_length .*got 31"):
        Evaluator(p, ("sharpe",), robust=RobustConfig(resample="bootstrap", block_length=31))(w)
    with pytest.raises(ConfigError, match=r"robust\.resamples"):
        load_config(None, ["robust.resamples=1"])


# ---------------------------------------------------------------- a run
def test_a_multi_objective_run_evolves_on_the_resampled_fitness_and_the_logbook_says_so(tmp_path):
    from genetic_sizer.data.loaders import load_from_config
    from genetic_sizer.runs.evolve import evolve

    small = [
        "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY, MSFT, WMT]",
        "data.start=2021-01-01",
        "data.end=2022-12-31",
        "evolution.population=16",
        "evolution.generations=3",
        "evolution.hall_of_fame=5",
        "objective=[sharpe, max_drawdown, turnover]",
    ]
    cfg = load_config(None, [*small, "robust.resample=blocks", "robust.resamples=4", "robust.combine=min"])
    prices = load_from_config(cfg.data)
    res = evolve(cfg, prices, tmp_path / "robust")
    assert all(r["fitness"] == "blocks K=4 min" for r in res.logbook)
    ev = Evaluator.from_config(prices, cfg)
    np.testing.assert_array_equal(ev(res.members), res.members_fitness)  # every objective resampled
    _, per = ev.metrics(res.members, resampled=True)
    np.testing.assert_array_equal(res.members_fitness[:, 0], per["sharpe"].min(axis=1))
    np.testing.assert_array_equal(res.members_fitness[:, 1], per["max_drawdown"].min(axis=1))
    np.testing.assert_array_equal(res.members_fitness[:, 2], per["turnover"].max(axis=1))
    plain = evolve(load_config(None, small), prices, tmp_path / "plain")
    assert "fitness" not in plain.logbook[0]


def test_mean_std_clamps_each_rows_sentinels_to_its_finite_extremes():
    """A resample at the +-CAP sentinel (a Sortino without downside, a Calmar without drawdown in a short block)
    counts as the row's best (or worst) finite figure: the genome that never lost in a block no longer ranks last."""
    x = np.array([[CAP, 1.0, 1.0, 1.0], [2.0, 1.0, 1.0, 1.0], [-CAP, 3.0, 1.0, 2.0], [CAP, CAP, CAP, CAP]])
    got = rs.combine(x, "mean_std", maximize=True, penalty=1.0)
    s2 = np.std([2.0, 1.0, 1.0, 1.0], ddof=1)  # 0.5
    s3 = np.std([1.0, 3.0, 1.0, 2.0], ddof=1)
    np.testing.assert_allclose(got[:3], [1.0, 1.25 - s2, 7.0 / 4 - s3], rtol=0, atol=1e-12)
    assert got[3] == CAP  # only sentinels: kept
    assert got[0] > got[1]  # before the clamp: CAP/4 - CAP/2 = -CAP/4, the worst of all
    # minimized objective: +CAP clamped to the row's max
    got = rs.combine(np.array([[CAP, 0.1, 0.3]]), "mean_std", maximize=False, penalty=2.0)
    v = np.array([0.3, 0.1, 0.3])
    assert got[0] == pytest.approx(v.mean() + 2.0 * v.std(ddof=1), abs=1e-12)
    # the quantile and the minimum are unchanged by the clamp (order statistics)
    assert rs.combine(x[:1], "min", maximize=True)[0] == 1.0

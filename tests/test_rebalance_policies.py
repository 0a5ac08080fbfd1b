"""Rebalancing policies (issue 26): a minimum trade and a maximum turnover per rebalance, and volatility targeting.

The fast kernels are checked against vectorbt's ``Portfolio.from_order_func`` (spot) and the plain-Python perp
reference, against hand calculations, and against pandas' rolling standard deviation (the realized volatility)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.backtest.kernels import rules
from genetic_sizer.backtest.metrics import compute_metrics
from genetic_sizer.backtest.policy import RebalancePolicy
from genetic_sizer.backtest.simulate import backtest, score
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError

from .conftest import make_prices, random_weights

PARITY_RTOL = 1e-8


def _tiny(a=(10.0, 20.0, 20.0), b=(10.0, 10.0, 5.0)) -> Prices:
    idx = pd.date_range("2024-01-01", periods=len(a), freq="D", tz="UTC")
    return Prices(np.column_stack([a, b]), idx, ("A", "B"))


def _rule(desired, equity, min_trade=0.0, min_value=0.0, max_turnover=np.inf, fill=None):
    desired = np.asarray(desired, dtype=np.float64)
    fill = np.ones_like(desired) if fill is None else np.asarray(fill, dtype=np.float64)
    out = np.empty_like(desired)
    scale = rules.trade_rule_nb(desired, fill, float(equity), min_trade, min_value, max_turnover, out)
    return out, scale


# ------------------------------------------------------------ the rule, by hand
def test_trade_rule_by_hand():
    # the minimum first: 5 < 1% of 1000 is dropped; 130 of trades left, capped at 10% of 1000 = 100: scaled by 100/130
    out, scale = _rule([100.0, -30.0, 5.0, 0.0], 1000.0, min_trade=0.01, max_turnover=0.1)
    assert scale == pytest.approx(100 / 130, rel=1e-15)
    np.testing.assert_allclose(out, [100 * 100 / 130, -30 * 100 / 130, 0.0, 0.0], rtol=1e-15)
    assert np.abs(out).sum() == pytest.approx(100.0, rel=1e-15)
    # a trade scaled under the minimum is dropped: 112 -> 50 scales -12 to -5.36 < 10
    out, _ = _rule([100.0, -12.0], 1000.0, min_trade=0.01, max_turnover=0.05)
    np.testing.assert_allclose(out, [100 * 50 / 112, 0.0], rtol=1e-15)
    # the absolute minimum is judged at the fill price: a $10.05 sell filled 1% lower is $9.95 < $10
    out, _ = _rule([10.05, -10.05], 1e6, min_value=10.0, fill=[1.01, 0.99])
    np.testing.assert_array_equal(out, [10.05, 0.0])
    # nothing to do: every trade passes unchanged
    out, scale = _rule([3.0, -2.0], 100.0)
    assert scale == 1.0
    np.testing.assert_array_equal(out, [3.0, -2.0])


def test_min_trade_by_hand():
    """50/50 every bar on _tiny: bar 1 values 1500, A holds 1000 and B 500, each trade is 250 (1/6 of the value):
    under a minimum of 20% (300) neither is made; on bar 2 (1250: A 1000, B 250) each is 375 >= 250 and both are."""
    skip = backtest(_tiny(), [0.5, 0.5], rebalance=1, init_cash=1000.0, policy=RebalancePolicy(min_trade=0.2))
    np.testing.assert_allclose(skip.value[:, 0], [1000.0, 1500.0, 50 * 20 + 50 * 5], rtol=1e-14)
    np.testing.assert_allclose(skip.traded, [750 / 1250], rtol=1e-14)  # bar 1 traded nothing
    trade = backtest(_tiny(), [0.5, 0.5], rebalance=1, init_cash=1000.0, policy=RebalancePolicy(min_trade=0.1))
    np.testing.assert_allclose(trade.value[:, 0], [1000.0, 1500.0, 1125.0], rtol=1e-14)


def test_max_turnover_by_hand():
    """A cap of 100% lets the first allocation (100% of the value) and every later trade through; a cap of 20% caps
    every rebalance, the first allocation included (it builds the positions over several rebalances)."""
    pol = RebalancePolicy(max_turnover=0.2)
    p = Prices(np.array([[10.0, 10.0], [20.0, 10.0], [20.0, 5.0]]), _tiny().index, ("A", "B"))
    pol_first = RebalancePolicy(max_turnover=1.0)  # the first allocation trades 100% of the value: within the cap
    bt = backtest(p, [0.5, 0.5], rebalance=1, init_cash=1000.0, policy=pol_first)
    np.testing.assert_allclose(bt.value[:, 0], [1000.0, 1500.0, 1125.0], rtol=1e-14)
    seeded = backtest(p, [0.5, 0.5], rebalance=1, init_cash=1000.0, policy=pol)
    # the first allocation, capped at 200 of 1000: 100 in each, 800 cash; bar 1: 10 A at 20 + 10 B at 10 + 800 = 1100
    assert seeded.value[0, 0] == pytest.approx(1000.0, rel=1e-14)
    assert seeded.value[1, 0] == pytest.approx(1100.0, rel=1e-14)
    # bar 1: targets 550 each: buy 350 A and 450 B = 800 > 220: scaled by 220/800
    a = 10 + 350 * 220 / 800 / 20
    b = 10 + 450 * 220 / 800 / 10
    cash = 800 - 220
    assert seeded.value[2, 0] == pytest.approx(cash + a * 20 + b * 5, rel=1e-13)
    np.testing.assert_allclose(seeded.traded, [220 / 1100 + 0.2], rtol=1e-13)  # bar 2 is capped at 20% too


# ------------------------------------------------------------ spot: the fast kernel against from_order_func
SPOT_POLICIES = [
    RebalancePolicy(min_trade=0.02),
    RebalancePolicy(max_turnover=0.05),
    RebalancePolicy(min_trade=0.01, max_turnover=0.03, min_trade_value=150.0),
    RebalancePolicy(vol_target=0.1, vol_lookback=10),
    RebalancePolicy(vol_target=[0.05, 0.1, 0.2, 0.4, 0.0, 0.3, 1.0], vol_lookback=5, min_trade=0.01, max_turnover=0.2),
]


@pytest.mark.parametrize("policy", SPOT_POLICIES, ids=["min", "turnover", "min+value+turnover", "vol", "vol+all"])
def test_spot_policies_match_from_order_func(policy):
    p = make_prices(150, 4, seed=45)
    w = np.vstack([random_weights(4, 4, seed=45), random_weights(3, 4, seed=46, kind="longshort")])
    kw = dict(rebalance="W", threshold=[0.0, 0.01, 0.03, 0.05, None, 0.2, 0.3], fees=0.002, slippage=0.001)
    fast = backtest(p, w, policy=policy, **kw)
    ref = backtest(p, w, policy=policy, engine="vectorbt", **kw)
    assert (np.abs(fast.value - ref.value) / ref.value).max() <= PARITY_RTOL
    np.testing.assert_allclose(fast.traded, ref.traded, rtol=PARITY_RTOL, atol=1e-12)
    np.testing.assert_array_equal(fast.rebalance, ref.rebalance)
    # the policy changes the result (the test could not pass with the policy ignored)
    plain = backtest(p, w, **kw)
    assert (np.abs(fast.value - plain.value) / plain.value).max() > 1e-3
    # the fused scorer simulates the same path: its figures equal the value path's bit for bit
    m = score(p, w, policy=policy, **kw)
    expect = compute_metrics(fast.value, init_cash=10_000.0, periods_per_year=p.periods_per_year, traded=fast.traded)
    for name in ("sharpe", "total_return", "max_drawdown", "turnover"):
        np.testing.assert_array_equal(m[name], expect[name])


def test_spot_policy_with_a_schedule_matches_from_order_func():
    p = make_prices(120, 3, seed=47)
    rng = np.random.default_rng(47)
    w = rng.dirichlet(np.ones(3), size=(3, 2))
    pol = RebalancePolicy(vol_target=0.15, vol_lookback=7, min_trade=0.005, max_turnover=0.5)
    kw = dict(segment_starts=[0, 60], rebalance=[["W", 5], ["M", "once"], [3, "W"]], threshold=[[None, 0.02]] * 3)
    fast = backtest(p, w, policy=pol, fees=0.001, slippage=0.002, **kw)
    ref = backtest(p, w, policy=pol, fees=0.001, slippage=0.002, engine="vectorbt", **kw)
    assert (np.abs(fast.value - ref.value) / ref.value).max() <= PARITY_RTOL
    np.testing.assert_allclose(fast.traded, ref.traded, rtol=PARITY_RTOL, atol=1e-12)
    np.testing.assert_array_equal(fast.rebalance, ref.rebalance)


def test_an_active_policy_that_drops_nothing_equals_no_policy():
    """The policy path (vectorbt's exact sequence) computes what the default path computes when the rule keeps every
    trade: a minimum of 1e-300 in currency is on, and drops nothing."""
    p = make_prices(200, 5, seed=49)
    w = np.vstack([random_weights(3, 5, seed=49), random_weights(3, 5, seed=50, kind="longshort")])
    kw = dict(rebalance=[1, "W", "M", 5, "once", "D"], threshold=[None, 0.02, None, 0.05, 0.1, None], fees=0.003)
    on = backtest(p, w, policy=RebalancePolicy(min_trade_value=1e-300), slippage=0.001, **kw)
    off = backtest(p, w, slippage=0.001, **kw)
    assert (np.abs(on.value - off.value) / off.value).max() <= 1e-12
    np.testing.assert_allclose(on.traded, off.traded, rtol=1e-12)
    np.testing.assert_array_equal(on.rebalance, off.rebalance)


def test_default_policy_is_no_policy():
    p = make_prices(80, 3, seed=51)
    w = random_weights(4, 3, seed=51)
    a = backtest(p, w, rebalance="W", threshold=0.02, policy=RebalancePolicy(), fees=0.001)
    b = backtest(p, w, rebalance="W", threshold=0.02, fees=0.001)
    np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(a.traded, b.traded)


# ------------------------------------------------------------ volatility targeting
def _one_asset(n=60, seed=52):
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, 0.02, n)
    r[0] = 0.0
    close = 100.0 * np.cumprod(1 + r)
    idx = pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC")
    both = np.column_stack([close, np.full(n, 100.0)])  # B: held at weight 0
    return Prices(both, idx, ("A", "B"), periods_per_year=365.0), close


@pytest.mark.parametrize("target", [0.05, 0.2, 5.0])
def test_vol_target_exposure_against_pandas_rolling_std(target):
    """One asset, rebalanced every bar, no costs: the exposure chosen at bar i is the next bar's return over the
    asset's. It must be min(1, target / sigma_i), sigma_i pandas' rolling std (ddof=1) of the last L returns
    (bar i's included) times sqrt(365); 1 before L returns exist."""
    lookback = 10
    p, close = _one_asset()
    bt = backtest(p, [1.0, 0.0], rebalance=1, policy=RebalancePolicy(vol_target=target, vol_lookback=lookback))
    v = bt.value[:, 0]
    asset = close[1:] / close[:-1] - 1
    exposure = (v[1:] / v[:-1] - 1) / asset  # chosen at bars 0 .. n-2
    sigma = pd.Series(np.r_[np.nan, asset]).rolling(lookback).std(ddof=1).to_numpy() * np.sqrt(365.0)
    expect = np.where(np.arange(len(close)) < lookback, 1.0, np.minimum(1.0, target / sigma))[:-1]
    np.testing.assert_allclose(exposure, expect, rtol=1e-9)
    if target < 1:
        assert expect[lookback:].min() < 0.9  # targeting bit: the exposure was scaled down


def test_vol_target_on_perps_multiplies_the_leverage():
    """The exposure multiplies the leverage gene and is capped by max_leverage: gross = min(max_lev, L * e)."""
    lookback = 10
    p, close = _one_asset()
    lev, max_lev, target = 2.0, 3.0, 0.4
    bt = backtest(
        p, [1.0, 0.0], rebalance=1, market="perp", leverage=lev, max_leverage=max_lev, funding=False,
        policy=RebalancePolicy(vol_target=target, vol_lookback=lookback),
    )  # fmt: skip
    v = bt.value[:, 0]
    asset = close[1:] / close[:-1] - 1
    gross = (v[1:] / v[:-1] - 1) / asset
    sigma = pd.Series(np.r_[np.nan, asset]).rolling(lookback).std(ddof=1).to_numpy() * np.sqrt(365.0)
    expect = np.where(np.arange(len(close)) < lookback, lev, lev * np.minimum(max_lev / lev, target / sigma))[:-1]
    np.testing.assert_allclose(gross, expect, rtol=1e-8)
    assert (expect[lookback:] > lev).any() and (expect[lookback:] < lev).any()


# ------------------------------------------------------------ perps: the fast kernel against the reference loop
PERP_POLICIES = [
    RebalancePolicy(min_trade=0.02, max_turnover=0.3),
    RebalancePolicy(min_trade_value=800.0),
    RebalancePolicy(vol_target=[0.1, 0.2, 0.3, 0.5, 0.0, 0.25, 0.15], vol_lookback=8, max_turnover=0.5),
]


@pytest.mark.parametrize("policy", PERP_POLICIES, ids=["min+turnover", "value", "vol+turnover"])
def test_perp_policies_match_the_reference(policy):
    p = make_prices(150, 4, seed=53)
    w = np.vstack([random_weights(4, 4, seed=53), random_weights(3, 4, seed=54, kind="longshort")])
    kw = dict(
        rebalance="W", threshold=[0.0, 0.01, 0.03, 0.05, None, 0.2, 0.3], fees=0.00045, slippage=0.001,
        market="perp", leverage=np.array([1.0, 2.0, 1.5, 3.0, 1.0, 2.0, 2.5]), max_leverage=5,
    )  # fmt: skip
    fast = backtest(p, w, policy=policy, **kw)
    ref = backtest(p, w, policy=policy, engine="reference", **kw)
    assert (np.abs(fast.value - ref.value) / np.abs(ref.value)).max() <= PARITY_RTOL
    np.testing.assert_allclose(fast.traded, ref.traded, rtol=PARITY_RTOL, atol=1e-12)
    np.testing.assert_array_equal(fast.rebalance, ref.rebalance)
    np.testing.assert_array_equal(fast.liquidated, ref.liquidated)
    plain = backtest(p, w, **kw)
    assert (np.abs(fast.value - plain.value) / plain.value).max() > 1e-3
    m = score(p, w, policy=policy, **kw)
    expect = compute_metrics(fast.value, init_cash=10_000.0, periods_per_year=p.periods_per_year, traded=fast.traded)
    for name in ("sharpe", "total_return", "turnover"):
        np.testing.assert_array_equal(m[name], expect[name])


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"min_trade": 1.5}, r"min_trade must be a fraction of equity in \[0, 1\), got 1.5"),
        ({"min_trade": "x"}, r"min_trade must be a number, got 'x'"),
        ({"min_trade_value": -1}, r"min_trade_value must be a finite amount >= 0, got -1"),
        ({"max_turnover": 0}, r"max_turnover must be a positive finite fraction of equity or None, got 0"),
        ({"vol_lookback": 1}, r"vol_lookback must be an integer >= 2 \(bars\), got 1"),
        ({"vol_target": -0.1}, r"vol_target must be an annualized volatility >= 0 .*got -0.1"),
        ({"vol_target": [0.1, float("nan")]}, r"vol_target\[1\] must be an annualized volatility >= 0"),
    ],
)
def test_bad_policy_fields_are_named(fields, match):
    with pytest.raises(ConfigError, match=match):
        RebalancePolicy(**fields)


def test_bad_policy_shapes_and_markets():
    p = make_prices(40, 3, seed=55)
    w = random_weights(2, 3, seed=55)
    with pytest.raises(ConfigError, match=r"policy has unknown field\(s\) \['min_trad'\]"):
        backtest(p, w, policy={"min_trad": 0.1})
    with pytest.raises(ConfigError, match=r"vol_target must be a number or one per genome \(2\), got 3"):
        backtest(p, w, policy=RebalancePolicy(vol_target=[0.1, 0.2, 0.3]))
    with pytest.raises(ConfigError, match="vol_target on the perp account needs a finite max_leverage"):
        backtest(p, w, market="perp", funding=False, policy=RebalancePolicy(vol_target=0.2))
    ok = backtest(p, w, policy={"min_trade": 0.01})  # a mapping of the fields works
    assert ok.value.shape == (40, 2)


# ------------------------------------------------------------ the live sizer applies the backtest's rule
def test_live_sizer_and_backtest_make_the_same_trades():
    """One perp rebalance from the same state: the backtest (the reference loop, with the kernels' policy row) and
    the live sizer (positions, account value and mids of that bar) drop and scale the same trades. The case has a
    trade under min_trade (EEE: $200 < 0.3% of $100k), one under the $1000 minimum at its fill price (CCC: $505), a
    turnover of 2.42x capped at 2x, and a trade that scaling puts under the minimum (GGG: $1100 -> $909)."""
    from genetic_sizer.backtest.policy import policy_rows
    from genetic_sizer.backtest.reference import reference_genome
    from genetic_sizer.exchange.wire import AssetInfo
    from genetic_sizer.live.sizer import SizerSettings, plan_orders

    coins = ["AAA", "BBB", "CCC", "DDD", "EEE", "GGG"]
    close = np.array([[1000.0, 500.0, 2000.0, 300.0, 100.0, 50.0], [1100.0, 450.0, 2000.0, 300.0, 100.0, 50.0]])
    w = np.array([[0.4, 0.3, 0.15, 0.05, 0.05, 0.05], [-0.4, 0.1, 0.1525, 0.241, 0.051, 0.0555]])
    lev, slippage = 2.0, 0.01
    pol = RebalancePolicy(min_trade=0.003, min_trade_value=1000.0, max_turnover=2.0)
    row = policy_rows(pol, 1, 365.0, 10.0)[0]
    ref = reference_genome(
        close, w, [0, 1], np.array([True, True]), leverage=lev, slippage=slippage, init_cash=1e5, policy=row
    )
    q0, q1 = ref["position"]
    equity = ref["value"][0] + q0 @ (close[1] - close[0])  # before bar 1's trades
    desired = w[1] * lev * equity - q0 * close[1]
    assert np.abs(desired).sum() / equity == pytest.approx(2.42)  # above the cap: the trades are scaled
    settings = SizerSettings(leverage=lev, min_trade_usd=1000.0, min_trade=0.003, max_turnover=2.0, slippage=slippage)
    meta = {c: AssetInfo(c, 5, 10) for c in coins}
    book = {"weights": dict(zip(coins, w[1], strict=True)), "positions": dict(zip(coins, q0, strict=True))}
    mids = dict(zip(coins, close[1], strict=True))
    plan = plan_orders(book["weights"], equity, book["positions"], mids, meta, settings)
    live = np.array([c.delta if c.action == "trade" else 0.0 for c in plan.coins])
    np.testing.assert_allclose(live, q1 - q0, atol=2e-5)  # sizes rounded to 5 decimals
    traded = {c.coin for c in plan.coins if c.action == "trade"}
    assert traded == {"AAA", "BBB", "DDD"}
    reasons = {c.coin: c.reason for c in plan.coins}
    assert reasons["EEE"] == "trade of $200.00 below min_trade 0.003 of the account value ($300.00)"
    assert reasons["CCC"] == "order of $505.00 at its limit price 2020 is below the minimum of $1000"
    assert reasons["GGG"] == "trade scaled by max_turnover 2 below the minimum trade"
    # the orders sent: sizes x mids sum to the capped turnover less the dropped GGG
    sent = sum(o.size * o.mid for o in plan.orders)
    assert sent == pytest.approx(np.abs((q1 - q0) * close[1]).sum(), abs=1.0)
    assert sent < 2.0 * equity


def test_live_sizer_rule_settings_are_checked():
    from genetic_sizer.errors import SizingError
    from genetic_sizer.live.sizer import SizerSettings

    with pytest.raises(SizingError, match=r"min_trade must be a fraction of the account value in \[0, 1\), got 1"):
        SizerSettings(min_trade=1)
    with pytest.raises(SizingError, match=r"max_turnover must be a positive fraction of the account value or None"):
        SizerSettings(max_turnover=0.0)


# ------------------------------------------------------------ config keys
POLICY_SETS = [
    "portfolio.min_trade=0.01",
    "portfolio.min_trade_value=50",
    "portfolio.max_turnover=0.5",
    "portfolio.vol_target=0.15",
    "portfolio.vol_lookback=10",
]


def test_config_policy_keys_keep_the_fingerprint_at_their_defaults(monkeypatch):
    import genetic_sizer.config as config_module
    from genetic_sizer.config import RunConfig, load_config

    default = load_config(None)
    assert default.portfolio.policy() is None
    explicit = load_config(
        None, [s.split("=")[0] + "=" + v for s, v in zip(POLICY_SETS, ["0", "0", "null", "null", "20"], strict=True)]
    )
    assert explicit.sha256() == default.sha256()
    # the fingerprint the code before the keys computed: no such keys in the config, none in _ADDED_LATER
    keys = ("vol_target", "vol_lookback", "min_trade", "min_trade_value", "max_turnover")
    to_dict = RunConfig.to_dict

    def without(self):
        d = to_dict(self)
        for key in keys:
            d["portfolio"].pop(key)
        return d

    before = default.sha256()
    monkeypatch.setattr(RunConfig, "to_dict", without)
    old = {k: v for k, v in config_module._ADDED_LATER.items() if k[1] not in keys}
    monkeypatch.setattr(config_module, "_ADDED_LATER", old)
    assert default.sha256() == before
    monkeypatch.undo()
    for s in POLICY_SETS[:4]:
        assert load_config(None, [s]).sha256() != before, s


def test_config_policy_keys_are_checked_and_named():
    from genetic_sizer.config import load_config

    for bad, match in [
        ("portfolio.min_trade=1", r"portfolio.min_trade must be in \[0, 1\), got 1"),
        ("portfolio.min_trade_value=-5", r"portfolio.min_trade_value must be in \[0, inf\], got -5"),
        ("portfolio.max_turnover=0", r"portfolio.max_turnover must be in \(0, inf\], got 0"),
        ("portfolio.vol_target=-0.1", r"portfolio.vol_target must be in \(0, 100\], got -0.1"),
        ("portfolio.vol_lookback=1", r"portfolio.vol_lookback must be in \[2, 1e\+06\], got 1"),
        ("portfolio.vol_lookback=2.5", r"portfolio.vol_lookback must be an integer, got 2.5"),
    ]:
        with pytest.raises(ConfigError, match=match):
            load_config(None, [bad])
    cfg = load_config(None, ["portfolio.min_trade=0.01", "portfolio.max_turnover=0.5"])
    assert cfg.portfolio.policy() == {
        "vol_target": None, "vol_lookback": 20, "min_trade": 0.01, "min_trade_value": 0.0, "max_turnover": 0.5,
    }  # fmt: skip


def test_evaluator_runs_the_configs_policy():
    """The evolution's evaluator (fitness path and value path) and its reference engine take the config's policy."""
    from genetic_sizer.config import load_config
    from genetic_sizer.evolution.evaluator import Evaluator

    p = make_prices(120, 4, seed=56)
    w = random_weights(5, 4, seed=56)
    cfg = load_config(None, ["portfolio.min_trade=0.01", "portfolio.max_turnover=0.2", "portfolio.vol_target=0.1"])
    ev = Evaluator.from_config(p, cfg)
    pol = RebalancePolicy(**cfg.portfolio.policy())
    pf = cfg.portfolio
    kw = dict(rebalance=pf.rebalance, fees=pf.fees, slippage=pf.slippage, init_cash=pf.init_cash)
    expect = score(p, w, policy=pol, **kw)
    got = ev.metrics(w)
    np.testing.assert_array_equal(got["sharpe"], expect["sharpe"])
    assert not np.array_equal(got["sharpe"], score(p, w, **kw)["sharpe"])
    fast, ref = ev.backtest(w), ev.backtest(w, engine=ev.reference_engine)
    assert (np.abs(fast.value - ref.value) / ref.value).max() <= PARITY_RTOL


def _policy_champion(path, weights: dict, **policy):
    from genetic_sizer.runs import champion as C

    record = C.build(
        symbols=list(weights),
        weights=list(weights.values()),
        metrics={"sharpe": 1.0},
        objective=["sharpe"],
        portfolio={
            "direction": "longonly", "min_weight": 0.0, "max_weight": 1.0, "rebalance": "D", "fees": 0.00045,
            "slippage": 0.0, "init_cash": 10000.0, "market": "perp", "leverage": 1.0, **policy,
        },
        data={
            "source": "hyperliquid:test", "first_bar": "2025-01-01T00:00:00+00:00",
            "last_bar": "2025-02-01T00:00:00+00:00", "n_bars": 744, "periods_per_year": 8760, "close_sha256": "0" * 64,
        },
        evolution={"seed": 1},
        config_sha256="0" * 64,
        selection="test",
        verification={"engine": "reference"},
    )  # fmt: skip
    return C.write(record, path)


def test_size_applies_the_champions_minimum_trade_and_refuses_its_vol_target(tmp_path, capsys, monkeypatch):
    """`genetic-sizer size` against the fake exchange: a champion evolved with portfolio.min_trade 1% skips a $50 trade
    of a $10,000 account (the same rule as its backtest); one evolved with vol_target is refused, nothing sent."""
    import json

    from genetic_sizer.cli.main import main

    from .test_live_cli import MAIN, MIDS, UNIVERSE, FakeHyperliquid

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HL_SECRET_KEY", raising=False)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    weights = {"BTC": 0.5, "ETH": 0.3, "SOL": 0.195, "AVAX": 0.005}
    with FakeHyperliquid(universe=UNIVERSE, mids=dict(MIDS), account_address=MAIN, account_value=10_000.0) as fake:
        champ = _policy_champion(tmp_path / "c.json", weights, min_trade=0.01, max_turnover=2.0)
        assert main(["size", "--champion", str(champ), "--base-url", fake.url, "--json"]) == 0
        coins = {c["coin"]: c for c in json.loads(capsys.readouterr().out)["plan"]["coins"]}
        assert coins["AVAX"]["action"] == "skip"
        assert coins["AVAX"]["reason"] == "trade of $50.00 below min_trade 0.01 of the account value ($100.00)"
        assert {c for c, v in coins.items() if v["action"] == "trade"} == {"BTC", "ETH", "SOL"}
        vol = _policy_champion(tmp_path / "v.json", weights, vol_target=0.2, vol_lookback=20)
        assert main(["size", "--champion", str(vol), "--base-url", fake.url]) != 0
        assert "the champion targets a volatility (portfolio.vol_target 0.2)" in capsys.readouterr().err
        assert fake.exchange_requests == []


def test_holdings_follow_the_policy():
    """holdings() (the report's weights over time, vectorbt): after each rebalance the invested fraction is the
    exposure min(1, target / sigma), sigma from pandas' rolling std of the target portfolio's returns."""
    from genetic_sizer.backtest.simulate import holdings

    p = make_prices(90, 3, seed=57)
    w = np.array([0.5, 0.3, 0.2])
    pol = RebalancePolicy(vol_target=0.1, vol_lookback=10)
    frac, mask = holdings(p, w, rebalance="W", policy=pol)
    np.testing.assert_array_equal(mask, backtest(p, w, rebalance="W", policy=pol).rebalance[:, 0])
    r = pd.Series(np.r_[np.nan, (p.close[1:] / p.close[:-1] - 1) @ w])
    sigma = r.rolling(10).std(ddof=1).to_numpy() * np.sqrt(p.periods_per_year)
    bars = np.flatnonzero(mask)
    expect = np.where(bars < 10, 1.0, np.minimum(1.0, 0.1 / sigma[bars]))
    np.testing.assert_allclose(frac.to_numpy()[bars].sum(axis=1), expect, rtol=1e-9)
    assert expect.min() < 0.9


# ------------------------------------------------------------ review: the fused scorer's path is the value path's
def test_score_annualization_does_not_change_the_vol_targeted_path():
    """score(periods_per_year=...) annualizes the metrics; the volatility target is annualized with the data's bars
    per year (RebalancePolicy), so the simulated path, and the metrics, equal the value path's at any
    periods_per_year: bit for bit against compute_metrics of backtest()'s values."""
    p = make_prices(150, 4, seed=45)
    w = random_weights(3, 4, seed=45)
    pol = RebalancePolicy(vol_target=0.1, vol_lookback=10)
    bt = backtest(p, w, rebalance="W", policy=pol)
    for ppy in (252.0, p.periods_per_year):
        m = score(p, w, rebalance="W", policy=pol, periods_per_year=ppy)
        expect = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=ppy, traded=bt.traded)
        for name in ("total_return", "sharpe", "max_drawdown", "turnover"):
            np.testing.assert_array_equal(m[name], expect[name], err_msg=f"{name} at periods_per_year {ppy}")


def test_live_combine_refuses_a_strategy_that_targets_a_volatility(tmp_path):
    """The multi-strategy book (live.combine.parts_of) trades each strategy's champion weights; a strategy evolved
    with portfolio.vol_target earned its stream at scaled exposures the live sizer cannot reproduce (no price
    history), so, as `genetic-sizer size` does for one champion, it is refused, naming the strategy and the key."""
    from genetic_sizer.errors import SizingError
    from genetic_sizer.live.combine import parts_of
    from genetic_sizer.runs import champion as C

    plain, other, vol = tmp_path / "plain", tmp_path / "other", tmp_path / "vol"
    plain.mkdir(), other.mkdir(), vol.mkdir()
    _policy_champion(plain / "champion.json", {"BTC": 0.6, "ETH": 0.4}, min_trade=0.01)
    _policy_champion(other / "champion.json", {"BTC": 0.2, "ETH": 0.8})
    _policy_champion(vol / "champion.json", {"BTC": 0.5, "ETH": 0.5}, vol_target=0.2, vol_lookback=20)

    def allocation(path, dirs):
        record = C.build(
            symbols=list(dirs), weights=[1.0 / len(dirs)] * len(dirs), metrics={"sharpe": 1.0}, objective=["sharpe"],
            portfolio={"direction": "longonly", "min_weight": 0.0, "max_weight": 1.0, "rebalance": "D", "fees": 0.0,
                       "slippage": 0.0, "init_cash": 10000.0, "market": "spot"},
            data={"source": "strategies", "first_bar": "2025-01-01T00:00:00+00:00",
                  "last_bar": "2025-02-01T00:00:00+00:00", "n_bars": 32, "periods_per_year": 365,
                  "close_sha256": "0" * 64, "strategies": {k: str(v) for k, v in dirs.items()}},
            evolution={"seed": 1}, config_sha256="0" * 64, selection="test", verification={"engine": "vectorbt"},
        )  # fmt: skip
        return C.load(C.write(record, path))

    parts, _ = parts_of(allocation(tmp_path / "ok.json", {"a": plain, "b": other}))  # a minimum trade: as is
    assert [p.weights for p in parts] == [{"BTC": 0.6, "ETH": 0.4}, {"BTC": 0.2, "ETH": 0.8}]
    with pytest.raises(SizingError, match=r"strategy 'v'.*portfolio.vol_target 0.2"):
        parts_of(allocation(tmp_path / "bad.json", {"a": plain, "v": vol}))


def test_walkforward_stitch_trades_under_the_policy_by_hand():
    """The stitched out-of-sample path keeps the config's policy. Folds as in test_walkforward's hand case (fold 0
    all A traded at bar 2's close, fold 1 all B at bar 5's), no fees, portfolio.max_turnover 0.5. By hand: bar 2 buys
    5000 of A (10000 capped at 50%), 10500 at bar 3 (A +10%); bar 5 wants -5500 A, +10500 B = 16000 > 5250: both
    scaled by 5250/16000 -> A 3695.3125 (335.9375 units), B 3445.3125 (172.265625 units), cash 3359.375; bar 6 (A
    9.9, B 22): 3325.78125 + 3789.84375 + 3359.375 = 10475. Without the cap the path ends at 12100."""
    from genetic_sizer.config import load_config
    from genetic_sizer.validation.folds import make_folds
    from genetic_sizer.validation.stitch import stitch

    from .test_walkforward import _hand_prices, _hand_results

    prices = _hand_prices()
    sets = ["walkforward.train=3", "walkforward.test=3", "portfolio.rebalance=once", "portfolio.fees=0"]
    cfg = load_config(None, [*sets, "portfolio.max_turnover=0.5"])
    folds = make_folds(prices.index, cfg.walkforward)
    wf = stitch(cfg, prices, folds, _hand_results([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(
        wf.oos_values[:, 0], [10_000, 10_500, 10_500, 10_500, 10_475, 10_475, 10_475], rtol=1e-13
    )
    plain = stitch(load_config(None, sets), prices, folds, _hand_results([[1.0, 0.0], [0.0, 1.0]]))
    assert plain.oos_values[-1, 0] == pytest.approx(12_100, rel=1e-12)

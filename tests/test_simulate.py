"""The population simulator: hand-computed portfolios, rebalance policies, weight validation, and parity
of the fast Numba engine with vectorbt's ``Portfolio.from_orders`` across a matrix of settings."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.backtest.schedule import rebalance_mask, validate_weights
from genetic_sizer.backtest.simulate import backtest, simulate
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError, GenomeError

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
    with pytest.raises(ConfigError, match="did you mean 'M'"):  # one vocabulary: the config refuses it too
        rebalance_mask(idx, "m")


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
    import genetic_sizer.backtest.vbt as sim

    monkeypatch.setattr(sim, "VBT_CHUNK_CELLS", 2 * 3 * 50)  # two genomes per from_orders call
    p = make_prices(50, 3, seed=9)
    w = random_weights(5, 3, seed=9)
    chunked = backtest(p, w, rebalance=7, fees=0.001, engine="vectorbt")
    fast = backtest(p, w, rebalance=7, fees=0.001)
    np.testing.assert_allclose(chunked.value, fast.value, rtol=PARITY_RTOL)
    np.testing.assert_allclose(chunked.traded, fast.traded, rtol=PARITY_RTOL)


# ------------------------------------------------------------ weight schedules
def random_schedule(n_genomes, n_segments, n_assets, seed=0, kind="longonly") -> np.ndarray:
    """(n_genomes, n_segments, n_assets) valid weights; ``kind="mixed"``: the genomes alternate between
    long-only schedules, long/short ones, and ones whose segments switch between the two."""
    segs = []
    for s in range(n_segments):
        if kind == "mixed":
            lo = random_weights(n_genomes, n_assets, seed=seed + 1000 * s)
            ls = random_weights(n_genomes, n_assets, seed=seed + 1000 * s + 1, kind="longshort")
            g = np.arange(n_genomes)[:, None]
            segs.append(np.where((g % 3 == 0) | ((g % 3 == 2) & (s % 2 == 0)), lo, ls))
        else:
            segs.append(random_weights(n_genomes, n_assets, seed=seed + 1000 * s, kind=kind))
    return np.stack(segs, axis=1)


def test_schedule_by_hand_switch_carries_capital_and_fees():
    # all A, then all B from bar 1; "once" never rebalances, so bar 1 trades only because a segment starts
    w = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    bt = backtest(_tiny(), w, segment_starts=[0, 1], rebalance="once", init_cash=1000.0)
    # bar 0: 100 A; bar 1: 100 A sold for 2000, 200 B bought; bar 2: 200 B at 5
    np.testing.assert_allclose(bt.value[:, 0], [1000.0, 2000.0, 1000.0], rtol=1e-14)
    np.testing.assert_allclose(bt.traded, [(2000.0 + 2000.0) / 2000.0], rtol=1e-14)
    assert bt.rebalance.tolist() == [[True], [True], [False]]  # (n_bars, n_genomes)
    # with 1% fees the buy of A is cut to 1000 / 1.01; the switch sells it less 1% and the buy of B is cut
    # to the cash left: the fees of both segments compound in one portfolio
    v = simulate(_tiny(), w, segment_starts=[0, 1], rebalance="once", init_cash=1000.0, fees=0.01)
    a_units = 1000.0 / 1.01 / 10.0
    b_units = a_units * 20.0 * 0.99 / 1.01 / 10.0
    np.testing.assert_allclose(v[:, 0], [10.0 * a_units, 10.0 * b_units, 5.0 * b_units], rtol=1e-13)


def test_schedule_by_hand_short_in_a_later_segment():
    # long-only in segment 0, long/short from bar 1: the genome is simulated with direction 'both'
    w = np.array([[[0.5, 0.5], [0.75, -0.25]]])
    bt = backtest(_tiny(), w, segment_starts=np.array([0, 1]), rebalance="once", init_cash=1000.0)
    # bar 0: 50 A + 50 B; bar 1 (value 1500): sell 87.5 B (+875) to hold -37.5, buy 6.25 A (-125):
    # cash 750, 56.25 A; bar 2: 750 + 56.25 * 20 - 37.5 * 5 (long-only would have stopped B at 0: 1500)
    np.testing.assert_allclose(bt.value[:, 0], [1000.0, 1500.0, 1687.5], rtol=1e-14)
    np.testing.assert_allclose(bt.traded, [(875.0 + 125.0) / 1500.0], rtol=1e-14)


@pytest.mark.parametrize("policy", ["once", "W", "M", 1, 5])
@pytest.mark.parametrize("kind", ["longonly", "longshort"])
def test_schedule_with_one_segment_is_static_exactly(policy, kind):
    p = make_prices(400, 5, seed=21)
    w = random_weights(7, 5, seed=21, kind=kind)
    kw = dict(rebalance=policy, fees=0.001, slippage=0.002)
    static = backtest(p, w, **kw)
    for starts in ([0], np.zeros(1, dtype=np.int32)):
        sched = backtest(p, w[:, None, :], segment_starts=starts, **kw)
        np.testing.assert_array_equal(sched.value, static.value)
        np.testing.assert_array_equal(sched.traded, static.traded)
        np.testing.assert_array_equal(sched.rebalance, static.rebalance)
        assert sched.segment_starts.tolist() == static.segment_starts.tolist() == [0]


def test_schedule_of_equal_segments_is_a_rebalance_policy():
    # identical targets in every segment, segments every 10 bars, no calendar rebalancing:
    # exactly the static genome rebalanced every 10 bars
    p = make_prices(200, 4, seed=22)
    w = np.vstack([random_weights(3, 4, seed=22), random_weights(3, 4, seed=23, kind="longshort")])
    starts = np.arange(0, 200, 10)
    sched = backtest(
        p, np.repeat(w[:, None, :], len(starts), axis=1), segment_starts=starts, rebalance="once", fees=0.002
    )
    static = backtest(p, w, rebalance=10, fees=0.002)
    np.testing.assert_array_equal(sched.value, static.value)
    np.testing.assert_array_equal(sched.traded, static.traded)
    np.testing.assert_array_equal(sched.rebalance, static.rebalance)


@pytest.mark.parametrize("policy", ["once", "M", 7])
def test_schedule_is_one_continuous_portfolio(policy):
    # without costs, trading to new targets from the old positions is the same as starting afresh with
    # the portfolio's value: from a segment start on, the values are a static run from that bar
    p = make_prices(300, 5, seed=24)
    w = np.stack([random_weights(4, 5, seed=24), random_weights(4, 5, seed=25, kind="longshort")], axis=1)
    t = 7 * 17 if policy == 7 else 123  # every 7 bars counts from bar 0, so the restart must fall on its grid
    bt = backtest(p, w, segment_starts=[0, t], rebalance=policy)
    before = backtest(p, w[:, 0], rebalance=policy)
    np.testing.assert_array_equal(bt.value[:t], before.value[:t])
    for g in range(4):
        after = simulate(p.to_frame().iloc[t:], w[g, 1], rebalance=policy, init_cash=float(bt.value[t, g]))
        np.testing.assert_allclose(bt.value[t:, g], after[:, 0], rtol=1e-12)


def test_schedule_rebalance_mask_adds_segment_starts_and_keeps_the_count():
    p = make_prices(40, 3, seed=25)
    w = random_schedule(2, 3, 3, seed=25)
    bt = backtest(p, w, segment_starts=[0, 7, 8], rebalance=5)
    # every 5 bars still counts from bar 0; the starts 7 and 8 are added
    assert bt.rebalance.shape == (40, 2) and (bt.rebalance == bt.rebalance[:, :1]).all()
    assert np.flatnonzero(bt.rebalance[:, 0]).tolist() == [0, 5, 7, 8, 10, 15, 20, 25, 30, 35]
    assert bt.segment_starts.dtype == np.int64 and bt.segment_starts.tolist() == [0, 7, 8]
    # a start on a calendar bar (10) is one rebalance, not two: same result as without it when the
    # targets do not change
    same = np.concatenate([w, w[:, 2:3]], axis=1)
    a = backtest(p, same, segment_starts=[0, 7, 8, 10], rebalance=5, fees=0.001)
    b = backtest(p, w, segment_starts=[0, 7, 8], rebalance=5, fees=0.001)
    np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(a.traded, b.traded)


@pytest.mark.parametrize(
    ("starts", "message"),
    [
        ([3, 10], r"segment_starts must begin at bar 0, got segment_starts\[0\] = 3"),
        ([0, 10, 10], r"strictly increasing, got segment_starts\[2\] = 10 after segment_starts\[1\] = 10"),
        ([0, 12, 5], r"strictly increasing, got segment_starts\[2\] = 5 after segment_starts\[1\] = 12"),
        ([0, 5, 20], r"segment_starts\[2\] = 20 is out of range: the prices have 20 bars \(0\.\.19\)"),
        (np.array([0, 5, 2**40], dtype=np.uint64), r"segment_starts\[2\] = 1099511627776 is out of range"),
        ([0, 2.5, 6], r"segment_starts\[1\] is 2\.5, must be an integer bar index"),
        (np.array([0.0, 4.0, 6.0]), r"segment_starts\[0\] is 0\.0, must be an integer bar index"),
        ([False, True, 6], r"segment_starts\[0\] is False, must be an integer bar index"),
        ([0, "5", 6], r"segment_starts\[1\] is '5', must be an integer bar index"),
        ([], r"non-empty 1-D sequence of bar indices"),
        ([[0, 5, 6]], r"non-empty 1-D sequence of bar indices"),
    ],
)
def test_schedule_bad_segment_starts(starts, message):
    p = make_prices(20, 2)
    with pytest.raises(ConfigError, match=message):
        simulate(p, random_schedule(2, 3, 2), segment_starts=starts)


def test_schedule_weight_errors_name_genome_segment_and_value():
    p = make_prices(20, 3)
    w = random_schedule(3, 3, 3, seed=26)
    bad = w.copy()
    bad[1, 2] = [0.2, 0.2, 0.5]
    with pytest.raises(GenomeError, match=r"genome 1, segment 2 \(from bar 12\): sum of weights is 0\.9"):
        simulate(p, bad, segment_starts=[0, 5, 12])
    bad = w.copy()
    bad[2, 1] = [0.7, -0.3, 0.2]
    with pytest.raises(GenomeError, match=r"genome 2, segment 1 \(from bar 5\): sum of \|w\| of weights is 1\.2"):
        simulate(p, bad, segment_starts=[0, 5, 12])
    bad = w.copy()
    bad[0, 1, 1] = np.inf
    with pytest.raises(GenomeError, match=r"genome 0, segment 1 \(from bar 5\): weight of asset 'A01' is inf"):
        simulate(p, bad, segment_starts=[0, 5, 12])
    bad = w.copy()
    bad[:, 0] = [0.5, 0.5, 0.5]
    with pytest.raises(
        GenomeError, match=r"genome 0, segment 0 \(from bar 0\): .* 3 \(genome, segment\) pair\(s\) invalid"
    ):
        simulate(p, bad, segment_starts=[0, 5, 12])
    # shapes: S must match segment_starts, a schedule needs segment_starts, static weights are not a schedule
    with pytest.raises(
        GenomeError, match=r"with 2 segment_starts, weights must have shape \(n_genomes, 2, 3\), got \(3, 3, 3\)"
    ):
        simulate(p, w, segment_starts=[0, 5])
    with pytest.raises(
        GenomeError, match=r"with 3 segment_starts, weights must have shape \(n_genomes, 3, 3\), got \(3, 3\)"
    ):
        simulate(p, w[:, 0], segment_starts=[0, 5, 12])
    with pytest.raises(GenomeError, match=r"with 3 segment_starts, .* got \(3, 3, 2\)"):
        simulate(p, w[:, :, :2], segment_starts=[0, 5, 12])
    with pytest.raises(
        GenomeError, match=r"shape \(n_genomes, 3\), got \(3, 3, 3\); a schedule .* needs segment_starts"
    ):
        simulate(p, w)
    with pytest.raises(GenomeError, match="empty"):
        simulate(p, np.empty((0, 3, 3)), segment_starts=[0, 5, 12])


def _schedule_starts(mask: np.ndarray, n_segments: int, rng) -> np.ndarray:
    """Segment starts that include a one-bar segment, a start on a calendar rebalance bar (when the policy
    has one after bar 0), the last bar, and random bars."""
    n_bars = mask.size
    t = int(rng.integers(1, n_bars - 2))
    starts = {0, t, t + 1, n_bars - 1}
    calendar = np.flatnonzero(mask[1:]) + 1
    if calendar.size:
        starts.add(int(rng.choice(calendar)))
    while len(starts) < n_segments:
        starts.add(int(rng.integers(1, n_bars)))
    return np.array(sorted(starts))


def _schedule_parity_cases():
    policies = ["once", "D", "W", "M", "Q", 1, 5, 21]
    kinds = ["longonly", "longshort", "mixed"]
    shapes = [(2, 60), (5, 500), (20, 2000), (50, 1000), (3, 3000)]
    costs = [(0.0, 0.0), (0.0005, 0.0), (0.001, 0.002), (0.01, 0.0), (0.0, 0.01), (0.01, 0.01)]
    cases = []
    for n, (policy, kind) in enumerate(itertools.product(policies, kinds)):
        n_assets, n_bars = shapes[n % len(shapes)]
        fees, slippage = costs[n % len(costs)]
        freq = "h" if n % 4 == 3 else ("B" if n % 4 == 1 else "D")
        n_segments = (5, 12, 8)[n % 3]
        cases.append((n_assets, n_bars, freq, policy, kind, fees, slippage, n_segments, 300 + n))
    cases.append((50, 5000, "D", "M", "mixed", 0.001, 0.001, 20, 9))
    return cases


def test_schedule_fast_engine_matches_vectorbt_small():
    p = make_prices(120, 4, seed=30)
    mask = rebalance_mask(p.index, "W")
    starts = _schedule_starts(mask, 6, np.random.default_rng(30))
    w = random_schedule(6, len(starts), 4, seed=30, kind="mixed")
    fast = assert_vectorbt_parity(p, w, segment_starts=list(starts), rebalance="W", fees=0.002, slippage=0.001)
    # segment switches are turnover: more than the same policy without them
    assert (fast.traded > backtest(p, w[:, 0], rebalance="W", fees=0.002, slippage=0.001).traded).all()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n_assets", "n_bars", "freq", "policy", "kind", "fees", "slippage", "n_segments", "seed"),
    _schedule_parity_cases(),
)
def test_schedule_fast_engine_matches_vectorbt(n_assets, n_bars, freq, policy, kind, fees, slippage, n_segments, seed):
    p = make_prices(n_bars, n_assets, seed=seed, freq=freq)
    rng = np.random.default_rng(seed)
    starts = _schedule_starts(rebalance_mask(p.index, policy), n_segments, rng)
    n_genomes = 6 if n_assets * n_bars < 100_000 else 3
    w = random_schedule(n_genomes, len(starts), n_assets, seed=seed, kind=kind)
    assert_vectorbt_parity(
        p, w, segment_starts=starts, rebalance=policy, fees=fees, slippage=slippage, init_cash=10_000.0
    )


def test_schedule_vectorbt_engine_chunks_large_populations(monkeypatch):
    import genetic_sizer.backtest.vbt as sim

    monkeypatch.setattr(sim, "VBT_CHUNK_CELLS", 2 * 3 * 50)  # two genomes per from_orders call
    p = make_prices(50, 3, seed=31)
    w = random_schedule(5, 4, 3, seed=31, kind="mixed")
    kw = dict(segment_starts=[0, 9, 10, 33], rebalance=7, fees=0.001)
    chunked = backtest(p, w, engine="vectorbt", **kw)
    fast = backtest(p, w, **kw)
    np.testing.assert_allclose(chunked.value, fast.value, rtol=PARITY_RTOL)
    np.testing.assert_allclose(chunked.traded, fast.traded, rtol=PARITY_RTOL)


# ------------------------------------------------------------ drift bands (threshold)
def test_drift_band_by_hand():
    # 50/50 of A (10, 20, 20) and B (10, 10, 5), buy and hold plus a drift band
    p = _tiny()
    # bar 1: value 1500, A is 2/3 of it (drift 1/6): a band of 0.1 trades back to 50/50, so does bar 2
    # (37.5 A at 20 = 750 of 1125, drift 1/6 again): rebalancing every bar
    bt = backtest(p, [0.5, 0.5], rebalance="once", threshold=0.1, init_cash=1000.0)
    np.testing.assert_allclose(bt.value[:, 0], [1000.0, 1500.0, 1125.0], rtol=1e-14)
    assert bt.rebalance[:, 0].tolist() == [True, True, True]
    np.testing.assert_allclose(bt.traded, [2 / 3], rtol=1e-14)
    # a band of 0.2 lets bar 1 drift (1/6 < 0.2); bar 2: 50 A at 20 = 1000 of 1250, a drift of exactly 0.3
    for band in (0.2, 0.3):  # >=: a drift equal to the band trades
        bt = backtest(p, [0.5, 0.5], rebalance="once", threshold=band, init_cash=1000.0)
        np.testing.assert_allclose(bt.value[:, 0], [1000.0, 1500.0, 1250.0], rtol=1e-14)
        assert bt.rebalance[:, 0].tolist() == [True, False, True]
        np.testing.assert_allclose(bt.traded, [(375.0 + 375.0) / 1250.0], rtol=1e-14)  # sell 375 of A, buy B
    bt = backtest(p, [0.5, 0.5], rebalance="once", threshold=0.3000001, init_cash=1000.0)
    assert bt.rebalance[:, 0].tolist() == [True, False, False] and bt.traded[0] == 0.0
    ref = backtest(p, [0.5, 0.5], rebalance="once", threshold=0.3, init_cash=1000.0, engine="vectorbt")
    assert ref.rebalance[:, 0].tolist() == [True, False, True]


@pytest.mark.parametrize("kind", ["longonly", "longshort"])
def test_threshold_zero_is_rebalancing_every_bar(kind):
    p = make_prices(300, 6, seed=40)
    w = random_weights(8, 6, seed=40, kind=kind)
    kw = dict(fees=0.001, slippage=0.002)
    drift = backtest(p, w, rebalance="once", threshold=0.0, **kw)
    daily = backtest(p, w, rebalance=1, **kw)
    assert (daily.value > 0).all()  # nothing wiped out: every bar has a value to measure drift on
    np.testing.assert_array_equal(drift.value, daily.value)
    np.testing.assert_array_equal(drift.traded, daily.traded)
    assert drift.rebalance.all() and daily.rebalance.all()


@pytest.mark.parametrize("policy", ["once", "W", "M", 7])
def test_a_band_nothing_can_cross_is_the_calendar_policy_alone(policy):
    p = make_prices(400, 5, seed=41)
    lo = random_weights(6, 5, seed=41)
    ls = random_weights(6, 5, seed=42, kind="longshort")
    kw = dict(rebalance=policy, fees=0.001, slippage=0.001)
    for w, band in ((lo, 1.0), (lo, np.inf), (ls, np.inf)):  # long-only weights never drift by 1 or more
        calendar = backtest(p, w, **kw)
        drift = backtest(p, w, threshold=band, **kw)
        np.testing.assert_array_equal(drift.value, calendar.value)
        np.testing.assert_array_equal(drift.traded, calendar.traded)
        np.testing.assert_array_equal(drift.rebalance, calendar.rebalance)
    # a band that does bind adds rebalance bars to the calendar's and keeps every calendar bar
    calendar = backtest(p, lo, **kw)
    drift = backtest(p, lo, threshold=0.02, **kw)
    assert (drift.rebalance >= calendar.rebalance).all()
    assert (drift.rebalance.sum(axis=0)[2:] > calendar.rebalance.sum(axis=0)[2:]).all()  # all but the one-hot


def test_threshold_and_policy_per_genome_equal_separate_runs():
    p = make_prices(300, 4, seed=43)
    w = np.vstack([random_weights(3, 4, seed=43), random_weights(3, 4, seed=44, kind="longshort")])
    bands = np.array([0.02, np.inf, 0.0, 0.05, 0.1, 0.03])
    policies = ["once", "M", "W", 5, "Q", "once"]
    kw = dict(fees=0.002, slippage=0.001)
    together = backtest(p, w, rebalance=policies, threshold=bands, **kw)
    for g in range(len(w)):
        alone = backtest(p, w[g], rebalance=policies[g], threshold=float(bands[g]), **kw)
        np.testing.assert_array_equal(together.value[:, g], alone.value[:, 0])
        np.testing.assert_array_equal(together.rebalance[:, g], alone.rebalance[:, 0])
        assert together.traded[g] == alone.traded[0]
    # turnover counts each genome's own rebalance bars; they differ between genomes
    assert len({tuple(np.flatnonzero(r)) for r in together.rebalance.T}) == len(w)


def test_drift_band_fast_engine_matches_from_order_func_small():
    p = make_prices(150, 4, seed=45)
    w = np.vstack([random_weights(4, 4, seed=45), random_weights(3, 4, seed=46, kind="longshort")])
    bands = [0.0, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3]
    fast = backtest(p, w, rebalance="W", threshold=bands, fees=0.002, slippage=0.001)
    ref = backtest(p, w, rebalance="W", threshold=bands, fees=0.002, slippage=0.001, engine="vectorbt")
    assert (np.abs(fast.value - ref.value) / ref.value).max() <= PARITY_RTOL
    np.testing.assert_allclose(fast.traded, ref.traded, rtol=PARITY_RTOL, atol=1e-12)
    np.testing.assert_array_equal(fast.rebalance, ref.rebalance)
    weekly = rebalance_mask(p.index, "W")
    assert (fast.rebalance[~weekly].sum(axis=0)[:3] > 0).all()  # the narrower bands fired between calendar bars


def test_from_order_func_reference_equals_from_orders_without_a_band():
    """The drift-band reference (from_order_func, deciding in its pre-segment function) is the calendar
    reference (from_orders) exactly when no band can fire, long-only and long/short, with a schedule."""
    p = make_prices(120, 5, seed=47)
    w = random_schedule(6, 3, 5, seed=47, kind="mixed")
    kw = dict(segment_starts=[0, 40, 41], rebalance=["W", "M", 5, "once", "D", "Q"], fees=0.003, slippage=0.002)
    a = backtest(p, w, threshold=np.inf, engine="vectorbt", **kw)
    b = backtest(p, w, engine="vectorbt", **kw)
    np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(a.traded, b.traded)
    np.testing.assert_array_equal(a.rebalance, b.rebalance)


def test_schedule_with_a_band_and_a_policy_per_segment():
    """Per-segment policies and bands (what a walk-forward of strategies stitches): before the second segment the
    genome is its first segment's strategy alone; the engines agree on the whole schedule."""
    p = make_prices(200, 4, seed=48)
    w = random_schedule(3, 2, 4, seed=48, kind="mixed")
    t = 90
    policies = [["M", "once"], ["once", "W"], [5, 5]]
    bands = [[0.03, np.inf], [None, 0.04], [0.0, 0.05]]
    kw = dict(fees=0.001, slippage=0.001)
    fast = backtest(p, w, segment_starts=[0, t], rebalance=policies, threshold=bands, **kw)
    ref = backtest(p, w, segment_starts=[0, t], rebalance=policies, threshold=bands, engine="vectorbt", **kw)
    assert (np.abs(fast.value - ref.value) / ref.value).max() <= PARITY_RTOL
    np.testing.assert_array_equal(fast.rebalance, ref.rebalance)
    np.testing.assert_allclose(fast.traded, ref.traded, rtol=PARITY_RTOL, atol=1e-12)
    for g in range(3):
        first = backtest(p, w[g, 0], rebalance=policies[g][0], threshold=bands[g][0], **kw)
        np.testing.assert_array_equal(fast.value[:t, g], first.value[:t, 0])
        np.testing.assert_array_equal(fast.rebalance[:t, g], first.rebalance[:t, 0])
    # within the second segment, genome 0 follows "once" with no band: it trades only at the switch
    assert np.flatnonzero(fast.rebalance[t:, 0]).tolist() == [0]
    # genome 1's second segment is weekly: every Monday after t is a rebalance bar
    weekly = rebalance_mask(p.index, "W")
    assert fast.rebalance[t:, 1][weekly[t:]].all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": -0.1}, r"threshold is -0\.1: a drift band is a difference of weights >= 0"),
        ({"threshold": np.nan}, r"threshold is nan"),
        ({"threshold": "5%"}, r"threshold must be a number >= 0 or None, got '5%'"),
        ({"threshold": [0.1, -1.0, 0.1]}, r"threshold\[1\] is -1\.0"),
        ({"threshold": [0.1, 0.2]}, r"threshold must be a number, None or of shape \(3,\), got shape \(2,\)"),
        ({"threshold": [0.1, True, 0.1]}, r"threshold\[1\] must be a number >= 0 or None, got True"),
        ({"rebalance": ["M", "W"]}, r"rebalance: one policy per genome \(3\), got 2"),
        ({"rebalance": ["M", "m", "W"]}, r"rebalance\[1\] must be .* did you mean 'M'"),
        ({"rebalance": ["M", ["W", "M"], "W"]}, r"rebalance\[1\] holds 2 policies: one per segment needs"),
        ({"rebalance": {"M": 1}}, r"rebalance must be a policy or a sequence of one per genome"),
    ],
)
def test_bad_thresholds_and_policies_are_named_errors(kwargs, message):
    p = make_prices(30, 3, seed=49)
    with pytest.raises(ConfigError, match=message):
        backtest(p, random_weights(3, 3, seed=49), **kwargs)


def _drift_parity_cases():
    bands = [0.0, 0.01, 0.03, 0.05, 0.1, 0.3]
    policies = ["once", "W", "M", 21]
    kinds = ["longonly", "longshort"]
    shapes = [(2, 60), (5, 500), (20, 2000), (50, 1000), (3, 3000)]
    costs = [(0.0, 0.0), (0.0005, 0.0), (0.001, 0.002), (0.01, 0.0), (0.0, 0.01), (0.01, 0.01)]
    cases = []
    for n, (band, policy, kind) in enumerate(itertools.product(bands, policies, kinds)):
        if n % 2:  # half of the product keeps the sweep to minutes; every band, policy and kind still appears
            continue
        n_assets, n_bars = shapes[(n // 2) % len(shapes)]
        fees, slippage = costs[(n // 2) % len(costs)]
        freq = "h" if n % 8 == 6 else ("B" if n % 8 == 2 else "D")
        cases.append((n_assets, n_bars, freq, band, policy, kind, fees, slippage, 500 + n))
    return cases


def assert_vectorbt_parity(p, w, **kw):
    """The fast engine's values, traded notional and rebalance bars against vectorbt's on the same call, to
    PARITY_RTOL; the genomes' final values must differ (each traded its own way). Returns the fast backtest."""
    fast = backtest(p, w, **kw)
    ref = backtest(p, w, engine="vectorbt", **kw)
    rel = np.abs(fast.value - ref.value) / np.abs(ref.value)
    assert rel.max() <= PARITY_RTOL, f"max relative value error {rel.max():.3e}"
    np.testing.assert_allclose(fast.traded, ref.traded, rtol=PARITY_RTOL, atol=1e-12)
    np.testing.assert_array_equal(fast.rebalance, ref.rebalance)
    assert np.ptp(fast.value[-1]) > 0
    return fast


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n_assets", "n_bars", "freq", "band", "policy", "kind", "fees", "slippage", "seed"), _drift_parity_cases()
)
def test_drift_band_fast_engine_matches_from_order_func(
    n_assets, n_bars, freq, band, policy, kind, fees, slippage, seed
):
    p = make_prices(n_bars, n_assets, seed=seed, freq=freq)
    n_genomes = 6 if n_assets * n_bars < 100_000 else 3
    w = random_weights(n_genomes, n_assets, seed=seed, kind=kind)
    # the band given as one number, or per genome (one genome without a band)
    bands = band if seed % 4 else [band] * (n_genomes - 1) + [None]
    kw = dict(rebalance=policy, threshold=bands, fees=fees, slippage=slippage, init_cash=10_000.0)
    assert_vectorbt_parity(p, w, **kw)


def test_calendar_masks_are_computed_once_per_index_and_handed_out_as_copies():
    import gc

    from genetic_sizer.backtest import schedule as S

    index = pd.date_range("2024-01-01", periods=400, freq="D", tz="UTC")
    first = S.rebalance_mask(index, "M")
    assert first.sum() == 14 and first[0] and first[index.get_loc(pd.Timestamp("2024-02-01", tz="UTC"))]
    assert (id(index), "M") in S._MASKS
    first[:] = False  # a caller's copy: changing it changes nothing cached
    again = S.rebalance_mask(index, "M")
    np.testing.assert_array_equal(again, S._calendar_mask(index, "M"))
    assert again.sum() == 14
    other = pd.date_range("2024-01-01", periods=400, freq="h", tz="UTC")  # another index: its own mask
    assert S.rebalance_mask(other, "M").sum() == 1
    key = (id(index), "M")
    del index
    gc.collect()
    assert key not in S._MASKS  # the entry left with its index: a new index reusing the id computes its own

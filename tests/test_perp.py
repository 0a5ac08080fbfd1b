"""The perpetuals account (``market="perp"``): hand-computed cases (a funding payment, a short receiving funding,
fees and slippage, liquidations), equality with the spot engine at leverage 1 without costs, and agreement of the
fast kernel and the package's reference loop with an independent plain-Python loop written here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.backtest.inputs import margin_tiers, resolve_max_leverage
from genetic_sizer.backtest.kernels import perp
from genetic_sizer.backtest.reference import reference_genome
from genetic_sizer.backtest.schedule import rebalance_mask
from genetic_sizer.backtest.simulate import backtest, holdings, score, simulate
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError, DataError

from .conftest import make_prices, random_weights


def _prices(*columns, freq="h") -> Prices:
    close = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    index = pd.date_range("2025-01-01", periods=len(close), freq=freq, tz="UTC")
    return Prices(close, index, [f"C{k}" for k in range(close.shape[1])], source="hand")


def independent_loop(
    close, schedule, starts, mask, *, leverage, funding, max_lev, fees, slippage, init, threshold, low=None, high=None
):
    """The perp account as the issue states it, one bar at a time with whole-vector numpy steps; written without
    looking at the package's kernel or reference (division form of the drift test, np.sign for the fill side).
    ``leverage`` and ``threshold`` are one number or one per segment (the segment's leverage sizes its targets and
    measures its band). Liquidation as the exchange's rules (issue 22, item 7): tested at every position's adverse
    extreme of the bar (``low`` for a long, ``high`` for a short) when a range is given, else at the closes; at those
    prices an equity below 2/3 of the maintenance margin is taken whole by the backstop (0 left), otherwise the
    positions are sold into the book there with slippage and the fee."""
    n, m = close.shape
    q = np.zeros(m)
    equity = float(init)
    values = np.zeros(n)
    paid = received = fees_paid = 0.0
    liquidated = -1
    for t in range(n):
        seg = int(np.searchsorted(starts, t, side="right")) - 1
        w = schedule[seg]
        lev = float(np.broadcast_to(np.asarray(leverage, dtype=float), (len(starts),))[seg])
        band = threshold if threshold is None or np.ndim(threshold) == 0 else threshold[seg]
        if t > 0:
            equity += float(q @ (close[t] - close[t - 1]))
            if funding is not None:
                pay = q * close[t] * funding[t]
                equity -= float(pay.sum())
                paid += float(pay[pay > 0].sum())
                received -= float(pay[pay < 0].sum())
            px = close[t] if low is None else np.where(q > 0, low[t], high[t])
            at = equity + float(q @ (px - close[t]))

            def margin(prices, q=q):
                return 0.0 if max_lev is None else float(np.sum(np.abs(q) * prices / (2.0 * max_lev)))

            if equity <= margin(close[t]) or at <= margin(px):
                left = 0.0
                if at > 0 and (margin(px) == 0 or at >= 2.0 / 3.0 * margin(px)):
                    fill = px * (1.0 - slippage * np.sign(q))  # sells of longs, buys of shorts
                    fee = fees * float(np.sum(np.abs(q) * fill))
                    fees_paid += fee
                    left = max(at - float(np.sum(np.abs(q) * np.abs(fill - px))) - fee, 0.0)
                values[t:] = left
                liquidated = t
                break
        drift = band is not None and bool(np.any(np.abs(q * close[t] / (lev * equity) - w) >= band))
        if mask[t] or t in starts or drift:
            target = w * lev * equity / close[t]
            dq = target - q
            fill = close[t] * (1.0 + slippage * np.sign(dq))
            fee = fees * float(np.sum(np.abs(dq) * fill))
            equity -= float(np.sum(np.abs(dq) * np.abs(fill - close[t]))) + fee
            fees_paid += fee
            q = target
        values[t] = equity
    return {"value": values, "paid": paid, "received": received, "fees": fees_paid, "liquidated": liquidated}


# ------------------------------------------------------------ hand-computed
def test_a_long_pays_positive_funding_and_receives_negative_funding_by_hand():
    p = _prices([100.0, 110.0, 121.0], [50.0, 50.0, 50.0])
    funding = np.array([[0.5, 0.5], [0.001, 0.0], [-0.0005, 0.0]])  # row 0 is never charged
    bt = backtest(p, [1.0, 0.0], rebalance="once", init_cash=1000.0, market="perp", leverage=2, funding=funding)
    # bar 0: 20 units (1 x 2 x 1000 / 100); bar 1: +200 mark, -20 x 110 x 0.001; bar 2: +220, +20 x 121 x 0.0005
    np.testing.assert_allclose(bt.value[:, 0], [1000.0, 1197.8, 1419.01], rtol=1e-14)
    assert bt.funding_paid[0] == pytest.approx(2.2, rel=1e-14)
    assert bt.funding_received[0] == pytest.approx(1.21, rel=1e-14)
    assert bt.fees_paid[0] == 0.0 and bt.liquidated[0] == -1


def test_a_short_receives_funding_and_trades_pay_fees_and_slippage_by_hand():
    p = _prices([100.0, 90.0, 90.0], [50.0, 55.0, 55.0])
    funding = np.array([[0.0, 0.0], [0.002, 0.001], [0.0, 0.0]])
    bt = backtest(
        p,
        [-0.5, 0.5],
        rebalance="once",
        init_cash=1000.0,
        fees=0.001,
        slippage=0.01,
        market="perp",
        funding=funding,
    )
    # bar 0, sized on 1000: sell 5 C0 at 99 (slippage 5, fee 0.495), buy 10 C1 at 50.5 (slippage 5, fee 0.505)
    # bar 1: mark -5 x -10 + 10 x 5 = +100; the short receives 5 x 90 x 0.002 = 0.9, the long pays 10 x 55 x 0.001
    np.testing.assert_allclose(bt.value[:, 0], [989.0, 1089.35, 1089.35], rtol=1e-14)
    assert bt.funding_received[0] == pytest.approx(0.9, rel=1e-14)
    assert bt.funding_paid[0] == pytest.approx(0.55, rel=1e-14)
    assert bt.fees_paid[0] == pytest.approx(1.0, rel=1e-14)


def test_liquidation_at_the_maintenance_margin_by_hand():
    p = _prices([100.0, 90.0, 75.0, 100.0], [10.0, 10.0, 10.0, 10.0])
    kw = dict(rebalance=1, init_cash=1000.0, market="perp", leverage=5, max_leverage={"C0": 10, "default": 20})
    bt = backtest(p, [[1.0, 0.0]], **kw)
    # bar 0: 50 units. bar 1: equity 500 > maintenance 50 x 90 / 20 = 225; trades back to 5 x 500 / 90 units.
    q1 = 5 * 500.0 / 90.0
    e2 = 500.0 + q1 * (75.0 - 90.0)  # 83.3 <= q1 x 75 / 20 = 104.2: liquidated at bar 2, before any trade
    assert e2 == pytest.approx(250.0 / 3, rel=1e-14)
    np.testing.assert_allclose(bt.value[:, 0], [1000.0, 500.0, e2, e2], rtol=1e-13)
    assert bt.liquidated[0] == 2
    # without maintenance margin it survives bar 2 (equity > 0) and recovers with the price
    free = backtest(p, [[1.0, 0.0]], **{**kw, "max_leverage": None})
    assert free.liquidated[0] == -1 and free.value[3, 0] > e2


def test_equity_below_zero_is_liquidated_at_zero_by_hand():
    p = _prices([100.0, 70.0, 150.0], [10.0, 10.0, 10.0])
    bt = backtest(p, [1.0, 0.0], rebalance="once", init_cash=1000.0, market="perp", leverage=5)
    np.testing.assert_allclose(bt.value[:, 0], [1000.0, 0.0, 0.0])  # 1000 - 50 x 30 = -500: liquidated at 0
    assert bt.liquidated[0] == 1


def test_row_zero_of_funding_is_never_charged_and_nan_means_zero():
    p = make_prices(30, 3, freq="h")
    w = random_weights(4, 3, kind="longshort")
    base = simulate(p, w, rebalance=5, market="perp", leverage=2)
    funding = np.full(p.close.shape, np.nan)
    funding[0] = 0.3
    np.testing.assert_array_equal(simulate(p, w, rebalance=5, market="perp", leverage=2, funding=funding), base)


# ------------------------------------------------------------ spot equivalence
@pytest.mark.parametrize("policy", ["once", "D", 7, 1])
@pytest.mark.parametrize("segments", [None, [0, 40, 41, 150]])
def test_leverage_one_long_only_without_costs_equals_the_spot_engine(policy, segments):
    p = make_prices(300, 6, seed=3, freq="h")
    rng = np.random.default_rng(4)
    if segments is None:
        w = random_weights(25, 6, seed=5)
    else:
        w = rng.dirichlet(np.full(6, 0.7), size=(25, len(segments)))
    spot = backtest(p, w, segment_starts=segments, rebalance=policy)
    perp_bt = backtest(p, w, segment_starts=segments, rebalance=policy, market="perp", funding=False)
    # the spot engine keeps vectorbt's rules (orders under 1e-8 units rejected, 1e-9 relative snapping), which the
    # perp account has no use for: genome 15 holds a weight of 1.3e-9 whose rebalancing orders spot rejects, and
    # rebalancing every bar makes other tiny orders; that moves values by up to 2e-11 and the turnover sum by up to
    # 7e-9 relative. Bought once and held, nothing is rejected and they agree to rounding.
    np.testing.assert_allclose(perp_bt.value, spot.value, rtol=1e-10)
    np.testing.assert_allclose(perp_bt.traded, spot.traded, rtol=1e-8, atol=1e-12)
    if policy == "once" and segments is None:
        np.testing.assert_allclose(perp_bt.value, spot.value, rtol=1e-13)
    np.testing.assert_array_equal(perp_bt.rebalance, spot.rebalance)


# ------------------------------------------------------------ the independent loop
def _random_case(seed):
    rng = np.random.default_rng(seed)
    n_assets = int(rng.integers(2, 7))
    n_bars = int(rng.integers(20, 400))
    p = make_prices(n_bars, n_assets, seed=seed, freq="h", vol=float(rng.uniform(0.005, 0.05)))
    kind = "longshort" if seed % 2 else "longonly"
    n_genomes = 12
    segments = None
    if seed % 3 == 0:
        segments = sorted({0, *rng.integers(1, n_bars, size=3).tolist()})
        w = rng.normal(size=(n_genomes, len(segments), n_assets))
        if kind == "longonly":
            w = np.abs(w)
        w /= np.abs(w).sum(axis=2, keepdims=True)
    else:
        w = random_weights(n_genomes, n_assets, seed=seed, kind=kind)
    funding = rng.normal(2e-5, 1e-4, size=p.close.shape)
    funding[rng.random(p.close.shape) < 0.1] = np.nan  # missing rates: none paid
    max_lev = None if seed % 4 == 0 else rng.choice([5.0, 10.0, 20.0, 50.0], size=n_assets)
    top = 4.0 if max_lev is None else float(np.min(max_lev))
    kw = dict(
        segment_starts=segments,
        rebalance=["once", "D", 5, 1][seed % 4],
        fees=float(rng.choice([0.0, 0.00045, 0.002])),
        slippage=float(rng.choice([0.0, 0.0005, 0.01])),
        init_cash=float(rng.uniform(100, 1e6)),
        market="perp",
        leverage=float(rng.uniform(0.5, top)),
        funding=funding,
        max_leverage=max_lev,
    )
    return p, w, kw


def _by_loop(p, w, kw, threshold=None, leverage=None):
    w3 = w if kw["segment_starts"] is not None else w[:, None, :]
    starts = np.asarray(kw["segment_starts"] if kw["segment_starts"] is not None else [0])
    mask = rebalance_mask(p.index, kw["rebalance"])
    funding = np.nan_to_num(np.asarray(kw["funding"]), nan=0.0)
    ml = None if kw["max_leverage"] is None else np.asarray(kw["max_leverage"], dtype=float)
    return [
        independent_loop(
            p.close,
            w3[g],
            starts,
            mask,
            leverage=kw["leverage"] if leverage is None else leverage[g],
            funding=funding,
            max_lev=ml,
            fees=kw["fees"],
            slippage=kw["slippage"],
            init=kw["init_cash"],
            threshold=threshold,
        )
        for g in range(len(w))
    ]


@pytest.mark.parametrize("seed", range(24))
def test_fast_kernel_and_reference_agree_with_an_independent_loop(seed):
    p, w, kw = _random_case(seed)
    fast = backtest(p, w, **kw)
    ref = backtest(p, w, **kw, engine="reference")
    loops = _by_loop(p, w, kw)
    expect = np.column_stack([r["value"] for r in loops])
    scale = np.maximum(np.abs(expect), 1e-9 * kw["init_cash"])
    for got in (fast, ref):
        assert np.max(np.abs(got.value - expect) / scale) < 1e-9
        np.testing.assert_array_equal(got.liquidated, [r["liquidated"] for r in loops])
        for field, key in (("funding_paid", "paid"), ("funding_received", "received"), ("fees_paid", "fees")):
            np.testing.assert_allclose(getattr(got, field), [r[key] for r in loops], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fast.traded, ref.traded, rtol=1e-10, atol=1e-12)


def test_the_random_cases_cover_liquidations_and_survivors():
    outcomes = np.concatenate([backtest(p, w, **kw).liquidated for p, w, kw in map(_random_case, range(24))])
    assert (outcomes >= 0).sum() >= 5 and (outcomes < 0).sum() >= 100


@pytest.mark.parametrize("seed", [1, 2, 5, 7])
@pytest.mark.parametrize("threshold", [0.0, 0.02, 0.1])
def test_drift_band_in_the_kernel_agrees_with_the_independent_loop(seed, threshold):
    """The threshold trigger the drift issue adds, plugged into the perp kernel per genome and segment: the
    current weight is q * p / (leverage * E) on the pre-trade equity."""
    p, w, kw = _random_case(seed)
    w3 = w if kw["segment_starts"] is not None else w[:, None, :]
    starts = np.asarray(kw["segment_starts"] if kw["segment_starts"] is not None else [0], dtype=np.int64)
    mask = rebalance_mask(p.index, "once")
    max_lev = resolve_max_leverage(kw["max_leverage"], p.symbols)
    n_genomes, n_bars = len(w), p.n_bars
    value = np.empty((n_genomes, n_bars))
    rebalanced = np.empty((n_genomes, n_bars), dtype=bool)
    liquidated = np.empty(n_genomes, dtype=np.int64)
    perp.simulate_perp_population_nb(
        p.close,
        np.nan_to_num(kw["funding"]),
        True,
        np.zeros((1, p.n_assets)),  # no bar range: the liquidation test at the closes
        np.zeros((1, p.n_assets)),
        False,
        np.ascontiguousarray(w3),
        starts,
        mask[None, :],
        np.zeros(n_genomes, dtype=np.int64),
        np.full((n_genomes, len(starts)), threshold),
        np.full((n_genomes, len(starts)), kw["leverage"]),
        np.where(np.isfinite(max_lev), 0.5 / max_lev, 0.0),
        np.where(np.isfinite(max_lev), 0.5 / max_lev, 0.0)[:, None],  # one margin tier per asset
        np.zeros((p.n_assets, 1)),
        kw["fees"],
        kw["slippage"],
        kw["init_cash"],
        value,
        np.empty(n_genomes),
        rebalanced,
        np.empty((n_genomes, 3)),
        liquidated,
        None,  # no policy, passed as simulate() passes it: the signature the warm-up compiled, not a new one
    )
    loops = _by_loop(p, w, {**kw, "rebalance": "once"}, threshold=threshold)
    expect = np.column_stack([r["value"] for r in loops])
    scale = np.maximum(np.abs(expect), 1e-9 * kw["init_cash"])
    assert np.max(np.abs(value.T - expect) / scale) < 1e-9
    np.testing.assert_array_equal(liquidated, [r["liquidated"] for r in loops])
    if threshold == 0.0:  # a band of 0 trades on every bar the account lives
        live = np.arange(n_bars)[None, :] < np.where(liquidated < 0, n_bars, liquidated)[:, None]
        np.testing.assert_array_equal(rebalanced, live)
    ref = reference_genome(
        p.close,
        w3[0],
        starts,
        mask,
        thresholds=np.full(len(starts), threshold),
        leverage=kw["leverage"],
        mm_rate=np.where(np.isfinite(max_lev), 0.5 / max_lev, 0.0),
        funding=np.nan_to_num(kw["funding"]),
        fees=kw["fees"],
        slippage=kw["slippage"],
        init_cash=kw["init_cash"],
    )
    np.testing.assert_array_equal(ref["rebalanced"], rebalanced[0])


# ------------------------------------------------------------ settings and errors
def test_max_leverage_forms():
    syms = ("BTC", "ETH", "DOGE")
    np.testing.assert_array_equal(resolve_max_leverage(None, syms), [np.inf] * 3)
    np.testing.assert_array_equal(resolve_max_leverage(10, syms), [10.0] * 3)
    np.testing.assert_array_equal(resolve_max_leverage([40, 25, 10], syms), [40.0, 25.0, 10.0])
    mapping = {"BTC": 40, "SOL": 20, "default": 10}  # SOL is not in this data: ignored
    np.testing.assert_array_equal(resolve_max_leverage(mapping, syms), [40.0, 10.0, 10.0])
    with pytest.raises(ConfigError, match=r"no value for \['ETH', 'DOGE'\] and no default"):
        resolve_max_leverage({"BTC": 40}, syms)
    with pytest.raises(ConfigError, match=r"max_leverage\['DOGE'\] must be a finite number >= 1, got 0.5"):
        resolve_max_leverage({"DOGE": 0.5, "default": 3}, syms)
    with pytest.raises(ConfigError, match="one number per asset"):
        resolve_max_leverage([3, 4], syms)


def test_errors_name_the_setting():
    p = make_prices(20, 3, freq="h")
    w = [0.2, 0.3, 0.5]
    with pytest.raises(ConfigError, match=r"leverage 12 is above the max_leverage of 'A01' \(10\)"):
        simulate(p, w, market="perp", leverage=12, max_leverage={"A01": 10, "default": 20})
    with pytest.raises(ConfigError, match="leverage must be a positive finite number"):
        simulate(p, w, market="perp", leverage=0)
    with pytest.raises(ConfigError, match="vectorbt issue #639"):
        simulate(p, w, market="perp", engine="vectorbt")
    with pytest.raises(ConfigError, match="market must be one of"):
        simulate(p, w, market="futures")
    for kwargs, name in (({"leverage": 2}, "leverage"), ({"funding": np.zeros((20, 3))}, "funding")):
        with pytest.raises(ConfigError, match=f"{name} is a setting of market='perp'"):
            simulate(p, w, **kwargs)
    with pytest.raises(DataError, match=r"funding must have shape \(n_bars, n_assets\) = \(20, 3\)"):
        simulate(p, w, market="perp", funding=np.zeros((19, 3)))
    shifted = pd.DataFrame(0.0, index=p.index + pd.Timedelta(minutes=30), columns=list(p.symbols))
    with pytest.raises(DataError, match="is not a bar of the prices"):
        simulate(p, w, market="perp", funding=shifted)


def test_a_dataframe_of_rates_is_aligned_by_time_and_symbol():
    p = make_prices(40, 3, freq="h")
    w = [[0.5, -0.3, 0.2]]
    full = np.zeros(p.close.shape)
    full[10:, 1] = 1e-3
    frame = pd.DataFrame({"A01": full[10:, 1], "OTHER": 5.0}, index=p.index[10:])  # missing bars and A00, A02: 0
    np.testing.assert_array_equal(
        simulate(p, w, market="perp", leverage=3, funding=frame),
        simulate(p, w, market="perp", leverage=3, funding=full),
    )


def test_funding_carried_by_the_prices_is_charged_unless_switched_off():
    p = make_prices(50, 3, freq="h")
    rates = np.full(p.close.shape, 2e-4)
    carried = p.with_funding(rates)
    w = [[0.6, 0.4, 0.0]]
    explicit = simulate(p, w, market="perp", funding=rates)
    np.testing.assert_array_equal(simulate(carried, w, market="perp"), explicit)
    np.testing.assert_array_equal(simulate(carried, w, market="perp", funding=False), simulate(p, w, market="perp"))
    assert explicit[-1, 0] < simulate(p, w, market="perp")[-1, 0]  # longs paid
    np.testing.assert_array_equal(simulate(carried, w), simulate(p, w))  # spot ignores it


def test_leverage_per_genome_is_each_genome_at_its_own_leverage():
    """One leverage per genome (what a leverage gene will pass) equals each genome simulated at its leverage."""
    p = make_prices(120, 4, seed=9, freq="h")
    w = random_weights(3, 4, seed=9, kind="longshort")
    funding = np.random.default_rng(9).normal(1e-5, 1e-4, p.close.shape)
    kw = dict(rebalance=6, fees=0.00045, slippage=0.0002, market="perp", funding=funding, max_leverage=20)
    together = backtest(p, w, leverage=[1.0, 2.5, 7.0], **kw)
    for g, lev in enumerate([1.0, 2.5, 7.0]):
        alone = backtest(p, w[g : g + 1], leverage=lev, **kw)
        np.testing.assert_array_equal(together.value[:, g], alone.value[:, 0])
        assert together.leverage[g] == lev and together.funding_paid[g] == alone.funding_paid[0]
    with pytest.raises(ConfigError, match=r"leverage must be a number or one per genome \(3\)"):
        backtest(p, w, leverage=[1.0, 2.0], **kw)


# ------------------------------------------------------------ drift bands and per-genome policies through simulate
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5, 6])
def test_a_drift_band_through_simulate_agrees_with_the_reference_and_the_independent_loop(seed):
    """``threshold=`` with ``market="perp"``: the fast kernel, the package's reference loop and the independent loop
    agree on every value, liquidation and account figure, and kernel and reference on every rebalance bar; bands of
    0 to 0.3 per genome (None: no band), with the case's calendar policy, schedules and liquidations included."""
    p, w, kw = _random_case(seed)
    rng = np.random.default_rng(100 + seed)
    bands = [None if k % 4 == 3 else float(x) for k, x in enumerate(rng.uniform(0.0, 0.3, len(w)))]
    fast = backtest(p, w, threshold=bands, **kw)
    ref = backtest(p, w, threshold=bands, **kw, engine="reference")
    assert fast.rebalance.shape == (p.n_bars, len(w)) and fast.rebalance.dtype == bool
    np.testing.assert_array_equal(fast.rebalance, ref.rebalance)
    loops = [_by_loop(p, w[g : g + 1], kw, threshold=bands[g])[0] for g in range(len(w))]
    expect = np.column_stack([r["value"] for r in loops])
    scale = np.maximum(np.abs(expect), 1e-9 * kw["init_cash"])
    for got in (fast, ref):
        assert np.max(np.abs(got.value - expect) / scale) < 1e-9
        np.testing.assert_array_equal(got.liquidated, [r["liquidated"] for r in loops])
        np.testing.assert_allclose(got.fees_paid, [r["fees"] for r in loops], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fast.traded, ref.traded, rtol=1e-10, atol=1e-12)
    # the band changes what happens: more rebalance bars than the calendar alone for the genomes with a band
    calendar = backtest(p, w, **kw)
    banded = [g for g, b in enumerate(bands) if b is not None]
    assert (fast.rebalance[:, banded].sum() > calendar.rebalance[:, banded].sum()) or kw["rebalance"] == 1
    unbanded = [g for g, b in enumerate(bands) if b is None]
    np.testing.assert_array_equal(fast.value[:, unbanded], calendar.value[:, unbanded])


def test_a_liquidated_account_with_a_band_never_trades_again():
    p, w, kw = _random_case(5)
    kw = {**kw, "leverage": float(np.min(resolve_max_leverage(kw["max_leverage"], p.symbols)))}  # 10x
    bt = backtest(p, w, threshold=0.01, **kw)
    ref = backtest(p, w, threshold=0.01, **kw, engine="reference")
    np.testing.assert_array_equal(bt.rebalance, ref.rebalance)
    np.testing.assert_array_equal(bt.liquidated, ref.liquidated)
    gone = np.flatnonzero(bt.liquidated >= 0)
    assert 0 < gone.size < len(w)  # at the maximum leverage some genomes are liquidated, others survive
    for g in gone:
        assert not bt.rebalance[bt.liquidated[g] :, g].any() and bt.rebalance[: bt.liquidated[g], g].any()


def test_per_genome_and_per_segment_policies_and_bands_for_perps_equal_separate_runs():
    """One call with a policy and a band per genome (and per segment of a schedule) equals each genome simulated
    alone with its own, in the fast kernel and in the reference loop."""
    p = make_prices(300, 4, seed=11, freq="h")
    rng = np.random.default_rng(11)
    starts = [0, 90, 200]
    w = rng.dirichlet(np.ones(4), size=(4, 3)) * rng.choice([-1.0, 1.0], size=(4, 3, 4))
    w /= np.abs(w).sum(axis=2, keepdims=True)
    policies = [["D", 24, "once"], "once", [6, 6, "W"], "W"]
    bands = [[0.05, None, 0.0], [0.02] * 3, [None] * 3, [0.1, 0.2, 0.3]]
    funding = rng.normal(2e-5, 1e-4, p.close.shape)
    kw = dict(segment_starts=starts, fees=0.00045, slippage=0.0003, market="perp", leverage=2.5, funding=funding)
    for engine in ("fast", "reference"):
        together = backtest(p, w, rebalance=policies, threshold=bands, engine=engine, **kw)
        for g in range(4):
            pol = policies[g]
            alone_pol = pol if not isinstance(pol, list) else [pol]
            band = [bands[g]]
            alone = backtest(p, w[g : g + 1], rebalance=alone_pol, threshold=band, engine=engine, **kw)
            np.testing.assert_array_equal(together.value[:, g], alone.value[:, 0])
            np.testing.assert_array_equal(together.rebalance[:, g], alone.rebalance[:, 0])
    fast = backtest(p, w, rebalance=policies, threshold=bands, **kw)
    ref = backtest(p, w, rebalance=policies, threshold=bands, engine="reference", **kw)
    np.testing.assert_allclose(fast.value, ref.value, rtol=1e-10)
    np.testing.assert_array_equal(fast.rebalance, ref.rebalance)
    # segment 1 of genome 0 follows every 24 bars with no band: no trade there but its policy bars and its start
    seg1 = np.arange(90, 200)
    expected = (seg1 % 24 == 0) | (seg1 == 90)
    np.testing.assert_array_equal(fast.rebalance[90:200, 0], expected)


@pytest.mark.parametrize("threshold", [0.0, 0.01, 0.04])
@pytest.mark.parametrize("policy", ["once", "D"])
def test_leverage_one_long_only_with_a_band_equals_the_spot_engine_with_that_band(policy, threshold):
    """At leverage 1 without funding, fees or slippage the perp weight q p / E is the spot weight: the same band
    fires on the same bars and the values agree (to the spot engine's 1e-8-unit order rule)."""
    p = make_prices(300, 6, seed=3, freq="h")
    w = random_weights(25, 6, seed=5)
    spot = backtest(p, w, rebalance=policy, threshold=threshold)
    perp_bt = backtest(p, w, rebalance=policy, threshold=threshold, market="perp", funding=False)
    np.testing.assert_array_equal(perp_bt.rebalance, spot.rebalance)
    np.testing.assert_allclose(perp_bt.value, spot.value, rtol=1e-10)
    assert spot.rebalance.sum() > backtest(p, w, rebalance=policy).rebalance.sum()  # the band fired
    assert (threshold == 0.0) == bool(spot.rebalance.all())


def test_perp_holdings_follow_the_band():
    """holdings(market="perp", threshold=...) is the reference loop's path of one genome: its rebalance bars are the
    kernel's, and on those bars every position is back at its target weight (of leverage x equity)."""
    p = make_prices(200, 3, seed=8, freq="h")
    w = np.array([0.5, -0.3, 0.2])
    kw = dict(rebalance="once", threshold=0.04, market="perp", leverage=3.0, funding=False)
    held, bars = holdings(p, w, **kw)
    bt = backtest(p, w, **kw)
    np.testing.assert_array_equal(bars, bt.rebalance[:, 0])
    assert 2 < bars.sum() < p.n_bars
    np.testing.assert_allclose(held.to_numpy()[bars], np.tile(w, (bars.sum(), 1)), atol=1e-12)
    drift = np.abs(held.to_numpy() - w).max(axis=1)
    assert drift[~bars].max() < 0.04 + 0.05  # between rebalances it stays near the band (one bar of moves past it)


# ------------------------------------------------------------ leverage per segment (a walk-forward of leverage genes)
def test_a_leverage_change_at_a_segment_start_by_hand():
    """From a segment's first bar on, its targets are sized with ITS leverage from the equity before that bar's
    trades; fees are paid on what that trade moves."""
    p = _prices([100.0, 110.0, 99.0, 104.0], [50.0, 50.0, 50.0, 50.0])
    kw = dict(segment_starts=[0, 2], rebalance="once", init_cash=1000.0, market="perp", funding=False)
    w = [[[1.0, 0.0], [1.0, 0.0]]]
    bt = backtest(p, w, leverage=[[1.0, 3.0]], **kw)
    # bar 0: 10 units at 1x; bar 1: +100; bar 2: -110 -> 990, re-sized at 3x: 3 x 990 / 99 = 30 units; bar 3: +150
    np.testing.assert_allclose(bt.value[:, 0], [1000.0, 1100.0, 990.0, 1140.0], rtol=1e-14)
    np.testing.assert_array_equal(bt.leverage, [[1.0, 3.0]])
    one = backtest(p, w, leverage=1.0, **kw)
    np.testing.assert_allclose(one.value[:, 0], [1000.0, 1100.0, 990.0, 1040.0], rtol=1e-14)
    # with a fee: bar 0 buys 10 (fee 1); bar 2 sizes 3 x 988.99 / 99 units from the pre-trade equity 1099 - 110
    fee = backtest(p, w, leverage=[[1.0, 3.0]], fees=0.001, **kw)
    e2 = 1000.0 - 1.0 + 100.0 - 110.0
    q2 = 3.0 * e2 / 99.0
    e2_after = e2 - 0.001 * (q2 - 10.0) * 99.0
    np.testing.assert_allclose(fee.value[:, 0], [999.0, 1099.0, e2_after, e2_after + q2 * 5.0], rtol=1e-14)
    assert fee.fees_paid[0] == pytest.approx(1.0 + 0.001 * (q2 - 10.0) * 99.0, rel=1e-14)
    ref = backtest(p, w, leverage=[[1.0, 3.0]], fees=0.001, engine="reference", **kw)
    np.testing.assert_allclose(ref.value, fee.value, rtol=1e-14)
    held, bars = holdings(p, w[0], leverage=[1.0, 3.0], fees=0.001, **kw)
    np.testing.assert_array_equal(bars, [True, False, True, False])
    # the position over each segment's leverage x the equity after the trade's fee: pre-trade / post-trade equity
    np.testing.assert_allclose(held["C0"].to_numpy()[[0, 2]], [1000.0 / 999.0, e2 / e2_after], rtol=1e-13)
    np.testing.assert_allclose(held["C0"].to_numpy()[3], q2 * 104.0 / (3.0 * fee.value[3, 0]), rtol=1e-13)


def test_liquidation_after_a_leverage_increase_by_hand():
    """1x, then 8x from bar 2 on: a 10 % fall at bar 3 takes the 8x account to its maintenance margin (max leverage
    10: 1 / 20 of the notional), where the same path at 1x throughout, or at 8x then 1x, survives. And the test
    before a segment's trade uses the positions held into its first bar: 8x then 1x with the fall ON the segment
    start is liquidated there, before the new segment could de-leverage."""
    p = _prices([100.0, 100.0, 100.0, 90.0, 95.0], [10.0] * 5)
    kw = dict(segment_starts=[0, 2], rebalance="once", init_cash=1000.0, market="perp", funding=False)
    w = [[[1.0, 0.0], [1.0, 0.0]]]
    up = backtest(p, w, leverage=[[1.0, 8.0]], max_leverage=10, **kw)
    # bar 2: 80 units; bar 3: 1000 - 80 x 10 = 200 <= 80 x 90 / 20 = 360: liquidated; 200 is below 2/3 of 360 (240),
    # so the backstop takes it all (the old account kept the 200: issue 22, item 7)
    np.testing.assert_allclose(up.value[:, 0], [1000.0, 1000.0, 1000.0, 0.0, 0.0], rtol=1e-14)
    assert up.liquidated[0] == 3 and not up.rebalance[3:, 0].any()
    for lev in ([[1.0, 1.0]], [[8.0, 1.0]]):
        calm = backtest(p, w, leverage=lev, max_leverage=10, **kw)
        assert calm.liquidated[0] == -1
    np.testing.assert_allclose(backtest(p, w, leverage=[[8.0, 1.0]], max_leverage=10, **kw).value[3, 0], 900.0)
    fall = _prices([100.0, 100.0, 90.0, 95.0], [10.0] * 4)
    down = backtest(fall, w, leverage=[[8.0, 1.0]], max_leverage=10, **kw)
    np.testing.assert_allclose(down.value[:, 0], [1000.0, 1000.0, 0.0, 0.0], rtol=1e-14)  # backstop, as above
    assert down.liquidated[0] == 2
    ref = backtest(fall, w, leverage=[[8.0, 1.0]], max_leverage=10, engine="reference", **kw)
    assert ref.liquidated[0] == 2 and np.array_equal(ref.value, down.value)


def _per_segment_case(seed):
    """A random schedule case (_random_case with segments) with one leverage per genome and segment."""
    p, w, kw = _random_case(seed)
    if kw["segment_starts"] is None:
        rng = np.random.default_rng(1000 + seed)
        kw["segment_starts"] = sorted({0, *rng.integers(1, p.n_bars, size=3).tolist()})
        w = np.repeat(w[:, None, :], len(kw["segment_starts"]), axis=1)
    rng = np.random.default_rng(2000 + seed)
    top = 4.0 if kw["max_leverage"] is None else float(np.min(kw["max_leverage"]))
    lev = rng.uniform(0.5, top, size=(len(w), len(kw["segment_starts"])))
    lev[0] = lev[0, 0]  # one genome at one leverage throughout
    return p, w, kw, lev


@pytest.mark.parametrize("seed", range(12))
def test_leverage_per_segment_agrees_with_the_independent_loop(seed):
    """Kernel and reference loop, leverage (n_genomes, n_segments), against the independent loop given each
    segment's leverage: values, liquidations, funding and fees; with drift bands too (measured against each
    segment's leverage), on the same rebalance bars."""
    p, w, kw, lev = _per_segment_case(seed)
    bands = [None, 0.05]
    for band in bands:
        fast = backtest(p, w, threshold=band, **{**kw, "leverage": lev})
        ref = backtest(p, w, threshold=band, engine="reference", **{**kw, "leverage": lev})
        assert fast.leverage.shape == (len(w), len(kw["segment_starts"]))
        np.testing.assert_array_equal(fast.rebalance, ref.rebalance)
        loops = _by_loop(p, w, kw, threshold=band, leverage=lev)
        expect = np.column_stack([r["value"] for r in loops])
        scale = np.maximum(np.abs(expect), 1e-9 * kw["init_cash"])
        for got in (fast, ref):
            assert np.max(np.abs(got.value - expect) / scale) < 1e-9
            np.testing.assert_array_equal(got.liquidated, [r["liquidated"] for r in loops])
            for field, key in (("funding_paid", "paid"), ("funding_received", "received"), ("fees_paid", "fees")):
                np.testing.assert_allclose(getattr(got, field), [r[key] for r in loops], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(fast.traded, ref.traded, rtol=1e-10, atol=1e-12)


def test_the_per_segment_cases_change_leverage_and_cover_liquidations():
    liquidated = survived = 0
    for seed in range(12):
        p, w, kw, lev = _per_segment_case(seed)
        assert len(kw["segment_starts"]) >= 2 and (np.ptp(lev[1:], axis=1) > 0).all()
        out = backtest(p, w, **{**kw, "leverage": lev}).liquidated
        liquidated += int((out >= 0).sum())
        survived += int((out < 0).sum())
    assert liquidated >= 3 and survived >= 60


def test_one_leverage_per_segment_equals_the_same_leverage_everywhere_and_separate_runs():
    """A leverage repeated over the segments is that leverage, bit for bit; genomes at different per-segment
    leverages in one call equal each alone, in the kernel and the reference loop."""
    p, w, kw, lev = _per_segment_case(3)
    n_seg = len(kw["segment_starts"])
    for engine in ("fast", "reference"):
        flat = backtest(p, w, engine=engine, **{**kw, "leverage": 1.7})
        tiled = backtest(p, w, engine=engine, **{**kw, "leverage": np.full((len(w), n_seg), 1.7)})
        np.testing.assert_array_equal(flat.value, tiled.value)
        per_genome = backtest(p, w, engine=engine, **{**kw, "leverage": lev[:, 0]})
        np.testing.assert_array_equal(
            per_genome.value, backtest(p, w, engine=engine, **{**kw, "leverage": np.repeat(lev[:, :1], n_seg, 1)}).value
        )
        together = backtest(p, w, engine=engine, **{**kw, "leverage": lev})
        for g in (0, 4, 11):
            alone = backtest(p, w[g : g + 1], engine=engine, **{**kw, "leverage": lev[g : g + 1]})
            np.testing.assert_array_equal(together.value[:, g], alone.value[:, 0])


def test_every_segments_leverage_is_checked_against_max_leverage():
    p = make_prices(60, 3, freq="h")
    w = np.tile([0.5, -0.3, 0.2], (2, 2, 1))
    kw = dict(segment_starts=[0, 30], market="perp", max_leverage={"A01": 10, "default": 20})
    backtest(p, w, leverage=[[2.0, 10.0], [1.0, 3.0]], **kw)
    with pytest.raises(ConfigError, match=r"leverage\[1\]\[1\] 12 is above the max_leverage of 'A01' \(10\)"):
        backtest(p, w, leverage=[[2.0, 10.0], [1.0, 12.0]], **kw)
    with pytest.raises(ConfigError, match=r"leverage\[0\]\[1\] must be a positive finite number, got 0"):
        backtest(p, w, leverage=[[2.0, 0.0], [1.0, 3.0]], **kw)
    with pytest.raises(ConfigError, match=r"one per genome and segment \(2, 2\), got shape \(2, 3\)"):
        backtest(p, w, leverage=[[1.0] * 3] * 2, **kw)
    with pytest.raises(ConfigError, match=r"leverage\[0\] 11 is above"):
        backtest(p, w, leverage=[11.0, 1.0], **kw)
    with pytest.raises(ConfigError, match="leverage must be a number or one per segment"):
        reference_genome(p.close, w[0], [0, 30], np.ones(60, bool), leverage=[1.0, 2.0, 3.0])


# ------------------------------------------------------------ liquidation against the exchange's rules (issue 22)
def _ranged(p: Prices, low, high) -> Prices:
    return p.with_fields({"low": np.asarray(low, dtype=float), "high": np.asarray(high, dtype=float)})


def test_a_gap_below_two_thirds_of_the_maintenance_margin_leaves_nothing_by_hand():
    """Closes only: 4x long (40 units at 100), max leverage 10 (maintenance 1/20 of the notional). A gap to 77.5
    leaves 1000 - 40 x 22.5 = 100 of equity against a maintenance margin of 40 x 77.5 / 20 = 155: below 2/3 of it
    (103.3), so the backstop liquidator takes the positions and the margin. The old account kept the 100."""
    p = _prices([100.0, 77.5, 90.0], [10.0, 10.0, 10.0])
    kw = dict(rebalance="once", init_cash=1000.0, market="perp", leverage=4, max_leverage=10, funding=False)
    for engine in ("fast", "reference"):
        bt = backtest(p, [1.0, 0.0], engine=engine, **kw)
        np.testing.assert_array_equal(bt.value[:, 0], [1000.0, 0.0, 0.0])
        assert bt.liquidated[0] == 1


def test_a_liquidation_through_the_book_pays_slippage_and_the_fee_by_hand():
    """Closes only, 4x long with 4.5 bp fees and 10 bp slippage: bought 40 units at 100.1 (slippage 4, fee
    0.00045 x 40 x 100.1), equity 994.1982; at 78 it is 994.1982 - 40 x 22 = 114.1982 <= 40 x 78 / 20 = 156 but
    above 2/3 of it (104): the positions are sold into the book at 78 x 0.999, paying 40 x 78 x 0.001 of slippage
    and 0.00045 x 40 x 77.922 of fee; the old account kept 114.1982."""
    p = _prices([100.0, 78.0, 90.0], [10.0, 10.0, 10.0])
    kw = dict(rebalance="once", init_cash=1000.0, market="perp", leverage=4, max_leverage=10, funding=False)
    e1 = 1000.0 - 4.0 - 0.00045 * 40 * 100.1 - 40 * 22.0
    left = e1 - 40 * 78 * 0.001 - 0.00045 * 40 * 77.922
    for engine in ("fast", "reference"):
        bt = backtest(p, [1.0, 0.0], fees=0.00045, slippage=0.001, engine=engine, **kw)
        np.testing.assert_allclose(bt.value[:, 0], [1000.0 - 4.0 - 0.00045 * 40 * 100.1, left, left], rtol=1e-13)
        assert bt.liquidated[0] == 1
        assert bt.fees_paid[0] == pytest.approx(0.00045 * 40 * (100.1 + 77.922), rel=1e-13)


def test_a_long_is_liquidated_on_the_bars_low_even_if_the_close_recovers_by_hand():
    """4x long, max leverage 10: bar 1 closes at 99, but its low is 78, where the equity (1000 - 40 x 22 = 120) is
    under the maintenance margin (40 x 78 / 20 = 156) and above 2/3 of it: closed at the low, 120 left. Without the
    range the close-only test sees 960 and the account rides on (the old behaviour for every file)."""
    p = _prices([100.0, 99.0, 104.0], [10.0, 10.0, 10.0])
    ranged = _ranged(p, [[100.0, 10.0], [78.0, 9.0], [98.0, 9.5]], [[100.0, 10.0], [101.0, 11.0], [105.0, 10.0]])
    kw = dict(rebalance="once", init_cash=1000.0, market="perp", leverage=4, max_leverage=10, funding=False)
    for engine in ("fast", "reference"):
        bt = backtest(ranged, [1.0, 0.0], engine=engine, **kw)
        np.testing.assert_allclose(bt.value[:, 0], [1000.0, 120.0, 120.0], rtol=1e-14)
        assert bt.liquidated[0] == 1
        closes = backtest(p, [1.0, 0.0], engine=engine, **kw)
        np.testing.assert_allclose(closes.value[:, 0], [1000.0, 960.0, 1160.0], rtol=1e-14)
        assert closes.liquidated[0] == -1


def test_a_short_is_tested_on_the_bars_high_by_hand():
    """4x short: the high of 122 leaves 1000 - 40 x 22 = 120 against 40 x 122 / 20 = 244, below 2/3 of it: the
    backstop takes everything. The low of 60 (a gain for a short) plays no part."""
    p = _prices([100.0, 100.0, 100.0], [10.0, 10.0, 10.0])
    ranged = _ranged(p, [[100.0, 10.0], [60.0, 10.0], [99.0, 10.0]], [[100.0, 10.0], [122.0, 10.0], [101.0, 10.0]])
    kw = dict(rebalance="once", init_cash=1000.0, market="perp", leverage=4, max_leverage=10, funding=False)
    for engine in ("fast", "reference"):
        bt = backtest(ranged, [-1.0, 0.0], engine=engine, **kw)
        np.testing.assert_array_equal(bt.value[:, 0], [1000.0, 0.0, 0.0])
        assert bt.liquidated[0] == 1


def test_every_position_at_its_adverse_extreme_at_once_is_the_documented_bound():
    """Long 20 of C0 and short 20 of C1 (4x, max leverage 10). In bar 1 C0's low is 80 and C1's high 120: taken at
    once the equity is 1000 - 400 - 400 = 200 against 20 x 80 / 20 + 20 x 120 / 20 = 200, liquidated (200 left).
    Either extreme alone leaves 600 against 180 or 220: the account survives a bar in which the two did not happen
    together, which a close-to-close path cannot tell; the bound is conservative for a cross-margined account."""
    p = _prices([100.0, 100.0, 100.0], [100.0, 100.0, 100.0])
    kw = dict(rebalance="once", init_cash=1000.0, market="perp", leverage=4, max_leverage=10, funding=False)
    both = _ranged(p, [[100.0] * 2, [80.0, 100.0], [100.0] * 2], [[100.0] * 2, [100.0, 120.0], [100.0] * 2])
    bt = backtest(both, [0.5, -0.5], **kw)
    np.testing.assert_allclose(bt.value[:, 0], [1000.0, 200.0, 200.0], rtol=1e-14)
    assert bt.liquidated[0] == 1
    for low, high in (([80.0, 100.0], [100.0, 100.0]), ([100.0, 100.0], [100.0, 120.0])):
        one = _ranged(p, [[100.0] * 2, low, [100.0] * 2], [[100.0] * 2, high, [100.0] * 2])
        assert backtest(one, [0.5, -0.5], **kw).liquidated[0] == -1


def _ranged_case(seed):
    """_random_case with a range around every close (up to 8 % each way on some bars): liquidations within bars."""
    p, w, kw = _random_case(seed)
    rng = np.random.default_rng(500 + seed)
    wide = np.where(rng.random(p.close.shape) < 0.05, 0.08, 0.01)
    low = p.close * (1.0 - wide * rng.random(p.close.shape))
    high = p.close * (1.0 + wide * rng.random(p.close.shape))
    return _ranged(p, low, high), w, kw


@pytest.mark.parametrize("seed", range(16))
def test_within_bar_liquidation_in_the_kernel_and_reference_agrees_with_the_independent_loop(seed):
    p, w, kw = _ranged_case(seed)
    fast = backtest(p, w, **kw)
    ref = backtest(p, w, **kw, engine="reference")
    w3 = w if kw["segment_starts"] is not None else w[:, None, :]
    starts = np.asarray(kw["segment_starts"] if kw["segment_starts"] is not None else [0])
    mask = rebalance_mask(p.index, kw["rebalance"])
    ml = None if kw["max_leverage"] is None else np.asarray(kw["max_leverage"], dtype=float)
    loops = [
        independent_loop(
            p.close,
            w3[g],
            starts,
            mask,
            leverage=kw["leverage"],
            funding=np.nan_to_num(kw["funding"]),
            max_lev=ml,
            fees=kw["fees"],
            slippage=kw["slippage"],
            init=kw["init_cash"],
            threshold=None,
            low=p.low,
            high=p.high,
        )
        for g in range(len(w))
    ]
    expect = np.column_stack([r["value"] for r in loops])
    scale = np.maximum(np.abs(expect), 1e-9 * kw["init_cash"])
    for got in (fast, ref):
        assert np.max(np.abs(got.value - expect) / scale) < 1e-9
        np.testing.assert_array_equal(got.liquidated, [r["liquidated"] for r in loops])
        np.testing.assert_allclose(got.fees_paid, [r["fees"] for r in loops], rtol=1e-9, atol=1e-9)
    scored = score(p, w, **kw)
    np.testing.assert_array_equal(scored["liquidated"], (fast.liquidated >= 0).astype(float))


def test_the_ranged_cases_liquidate_within_bars_that_the_closes_miss():
    earlier = 0
    for seed in range(16):
        p, w, kw = _ranged_case(seed)
        ranged = backtest(p, w, **kw).liquidated
        bare = Prices(p.close, p.index, p.symbols)
        closes = backtest(bare, w, **kw).liquidated
        never = np.where(closes < 0, p.n_bars, closes)
        assert (np.where(ranged < 0, p.n_bars, ranged) <= never).all()  # a range only brings liquidation forward
        earlier += int((np.where(ranged < 0, p.n_bars, ranged) < never).sum())
    assert earlier >= 5


def test_margin_tiers_raise_the_maintenance_margin_of_large_positions_by_hand():
    """C0 on Hyperliquid-style tiers: 10x up to a notional of 2000, 5x past it (rates 0.05 and 0.1, deduction
    2000 x 0.05 = 100). 4x long, 40 units: at 80 the notional is 3200, the maintenance margin 320 - 100 = 220, and the
    equity 1000 - 800 = 200 is under it: liquidated (through the book, 200 left), where one tier at 10x (160) keeps
    the account alive."""
    p = _prices([100.0, 80.0, 90.0], [10.0, 10.0, 10.0])
    tiered = p.with_fields(margin={"C0": ((0.0, 10.0), (2000.0, 5.0)), "C1": ((0.0, 10.0),)})
    max_lev, rate, deduct = margin_tiers(None, tiered)
    np.testing.assert_array_equal(max_lev, [10.0, 10.0])
    np.testing.assert_array_equal(rate, [[0.05, 0.1], [0.05, 0.05]])
    np.testing.assert_array_equal(deduct, [[0.0, 100.0], [0.0, 0.0]])
    assert perp.maintenance_nb(3200.0, rate, deduct, 0) == pytest.approx(220.0, rel=1e-15)
    assert perp.maintenance_nb(1000.0, rate, deduct, 0) == pytest.approx(50.0, rel=1e-15)  # first tier
    assert perp.maintenance_nb(2000.0, rate, deduct, 0) == pytest.approx(100.0, rel=1e-15)  # continuous
    kw = dict(rebalance="once", init_cash=1000.0, market="perp", leverage=4, funding=False)
    for engine in ("fast", "reference"):
        bt = backtest(tiered, [1.0, 0.0], engine=engine, **kw)
        np.testing.assert_allclose(bt.value[:, 0], [1000.0, 200.0, 200.0], rtol=1e-14)
        assert bt.liquidated[0] == 1
        flat = backtest(tiered, [1.0, 0.0], engine=engine, max_leverage=10, **kw)  # given: one tier, the meta unused
        assert flat.liquidated[0] == -1
    with pytest.raises(ConfigError, match=r"leverage 12 is above the max_leverage of 'C0' \(10\)"):
        backtest(tiered, [1.0, 0.0], rebalance="once", market="perp", leverage=12)


def test_tiered_margins_with_ranges_agree_between_the_kernel_and_the_reference():
    """Three tiers per asset (20x, then 6x past 10 % of the starting cash, 2.5x past 40 %), one asset on one tier:
    the kernel equals the reference loop, and the tiers only bring liquidations forward."""
    tiered_liquidations = 0
    for seed in (2, 3, 6, 7):
        p, w, kw = _ranged_case(seed)
        cash = kw["init_cash"]
        tiers = {s: ((0.0, 20.0), (0.1 * cash, 6.0), (0.4 * cash, 2.5)) for s in p.symbols}
        tiers[p.symbols[0]] = ((0.0, 8.0),)
        tiered = p.with_fields(margin=tiers)
        kw = {**kw, "max_leverage": None, "leverage": min(2.0 * kw["leverage"], 8.0)}
        fast = backtest(tiered, w, **kw)
        ref = backtest(tiered, w, **kw, engine="reference")
        scale = np.maximum(np.abs(ref.value), 1e-9 * cash)
        assert np.max(np.abs(fast.value - ref.value) / scale) < 1e-9
        np.testing.assert_array_equal(fast.liquidated, ref.liquidated)
        np.testing.assert_allclose(fast.fees_paid, ref.fees_paid, rtol=1e-9, atol=1e-9)
        flat = backtest(p, w, **{**kw, "max_leverage": [8.0] + [20.0] * (p.n_assets - 1)}).liquidated
        first = np.where(fast.liquidated < 0, p.n_bars, fast.liquidated)
        assert (first <= np.where(flat < 0, p.n_bars, flat)).all()
        tiered_liquidations += int((first < np.where(flat < 0, p.n_bars, flat)).sum())
    assert tiered_liquidations >= 3


# ------------------------------------------------------------ what a perp run refuses (issue 22, items 6 and 9)
def _perp_file(tmp_path, funding_rows=None):
    """A fetched-format Hyperliquid file of BTC, ETH, SOL; ``funding_rows`` filters the saved funding rows."""
    from genetic_sizer.data.synthetic import perp_market

    path, funding_file = perp_market(("BTC", "ETH", "SOL"), hours=24 * 5, seed=3).write(tmp_path / "hl.parquet")
    if funding_rows is not None:
        rows = pd.read_parquet(funding_file)
        funding_rows(rows).to_parquet(funding_file, index=False)
    return path


def _perp_config(path, *overrides):
    from genetic_sizer.config import load_config

    base = ["data.source=hyperliquid", f"data.path={path}", "portfolio.market=perp", "portfolio.leverage=2"]
    return load_config(None, [*base, *overrides])


def test_a_perp_run_refuses_coins_the_funding_file_has_no_rows_for(tmp_path, capsys):
    from genetic_sizer.cli.main import main
    from genetic_sizer.data.loaders import load_from_config
    from genetic_sizer.evolution.evaluator import Evaluator

    caps = "portfolio.max_leverage=10"
    for name, keep, missing in (
        ("no-eth", lambda rows: rows[rows["coin"] != "ETH"], r"\['ETH'\]"),
        ("empty", lambda rows: rows.iloc[:0], r"\['BTC', 'ETH', 'SOL'\]"),
    ):
        path = _perp_file(tmp_path / name, keep)
        cfg = _perp_config(path, caps)
        prices = load_from_config(cfg.data)
        with pytest.raises(ConfigError, match=rf"no rate for {missing} in .*data\.funding_path: false"):
            Evaluator.from_config(prices, cfg)
        Evaluator.from_config(prices, _perp_config(path, caps, "data.funding_path=false"))  # told: no funding
    path = _perp_file(tmp_path / "cli", lambda rows: rows[rows["coin"] != "ETH"])
    argv = ["backtest", "--source", "hyperliquid", "--path", str(path), "--market", "perp", "--max-leverage", "10"]
    assert main(argv) == 2
    assert "no rate for ['ETH']" in capsys.readouterr().err
    assert main([*argv, "--weights", "0.5", "0", "0.5"]) == 0  # ETH not held: its rates are not needed
    out = capsys.readouterr().out
    assert "with funding, liquidation tested within each bar (highs and lows)" in out
    whole = _perp_config(_perp_file(tmp_path / "whole"), caps)  # every coin funded: no refusal
    assert Evaluator.from_config(load_from_config(whole.data), whole).market == "perp"


def test_a_perp_run_refuses_no_maintenance_margin_unless_the_data_carries_the_exchanges_tiers(tmp_path, capsys):
    from genetic_sizer.cli.main import main
    from genetic_sizer.data.loaders import load_from_config
    from genetic_sizer.data.margin import save_meta
    from genetic_sizer.evolution.evaluator import Evaluator

    path = _perp_file(tmp_path)
    cfg = _perp_config(path)  # portfolio.max_leverage: null, the default
    with pytest.raises(ConfigError, match=r"portfolio\.max_leverage is null .* no\s+maintenance margin"):
        Evaluator.from_config(load_from_config(cfg.data), cfg)
    argv = ["backtest", "--source", "hyperliquid", "--path", str(path), "--market", "perp", "--leverage", "2"]
    assert main(argv) == 2 and "portfolio.max_leverage is null" in capsys.readouterr().err
    universe = [{"name": c, "szDecimals": 2, "maxLeverage": 10} for c in ("BTC", "ETH", "SOL")]
    universe[0].update(maxLeverage=40, marginTableId=56)
    tiers = [{"lowerBound": "0.0", "maxLeverage": 40}, {"lowerBound": "20000.0", "maxLeverage": 20}]
    save_meta({"universe": universe, "marginTables": [[56, {"marginTiers": tiers}]]}, tmp_path / "hl.meta.json")
    prices = load_from_config(cfg.data)
    ev = Evaluator.from_config(prices, cfg)  # the exchange's tiers: BTC 40x then 20x past 20k, ETH and SOL 10x
    w = np.array([[0.6, 0.2, 0.2]])
    np.testing.assert_array_equal(
        ev.backtest(w).value,
        backtest(prices, w, rebalance="M", fees=cfg.portfolio.fees, market="perp", leverage=2).value,
    )
    caps, rate, deduct = margin_tiers(None, prices)  # what the account runs on: the saved tiers
    np.testing.assert_array_equal(caps, [40.0, 10.0, 10.0])
    np.testing.assert_allclose(rate, [[1 / 80, 1 / 40], [1 / 20, 1 / 20], [1 / 20, 1 / 20]], rtol=1e-15)
    np.testing.assert_allclose(deduct, [[0.0, 20000.0 * (1 / 40 - 1 / 80)], [0.0, 0.0], [0.0, 0.0]], rtol=1e-15)
    assert main(argv) == 0
    with pytest.raises(ConfigError, match=r"leverage 12 is above the max_leverage of 'ETH' \(10\)"):
        Evaluator.from_config(prices, _perp_config(path, "portfolio.leverage=12"))

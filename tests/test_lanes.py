"""The lane kernel (:mod:`genetic_sizer.backtest.kernels.lanes`): genomes simulated side by side match vectorbt's
``from_orders`` (calendar policies, mixed calendars in one block, schedules, long/short, fees and slippage, zero
weights, cash running out in some lanes only: the exact fallback), and a genome's figures depend on that genome alone:
not on its neighbours, its position, the population's size, the blocks or the number of threads."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from genetic_sizer.backtest.kernels import lanes, orders, rules, simd
from genetic_sizer.backtest.kernels import spot as nb
from genetic_sizer.backtest.policy import RebalancePolicy
from genetic_sizer.backtest.simulate import backtest, score

from .conftest import make_prices, random_weights
from .test_simulate import PARITY_RTOL, random_schedule
from .test_simulate import assert_vectorbt_parity as _assert_vectorbt


def _block(p, w, gs, rebalance_mask, fees=0.0, slippage=0.0, thresholds=None):
    """simulate_block_nb on genomes ``gs`` of ``w`` (n_genomes, n_assets), one calendar mask: (values, traded, count
    of exact rebalances)."""
    n_genomes = w.shape[0]
    nl = len(gs)
    thr = np.full((n_genomes, 1), np.inf) if thresholds is None else thresholds
    value = np.empty((nl, p.n_bars))
    rebalanced = np.empty((nl, p.n_bars), dtype=bool)
    traded = np.empty(nl)
    n_exact = lanes.simulate_block_nb(
        p.close, w[:, None, :].copy(), np.asarray(gs, dtype=np.int64), np.arange(nl), np.array([0]),
        rebalance_mask[None, :], np.zeros(n_genomes, dtype=np.int64), thr, fees, slippage, 10_000.0,
        (w >= 0).all(axis=1), value, rebalanced, traded, np.empty((nl, 0)), np.empty((0, 0, 8)),
    )  # fmt: skip
    return value, traded, n_exact


@pytest.mark.parametrize(
    ("rebalance", "kind", "fees", "slippage", "n_segments"),
    [
        ("M", "longonly", 0.0005, 0.0, 1),
        ("D", "longonly", 0.001, 0.002, 1),
        ("D", "longshort", 0.001, 0.001, 1),
        ("W", "longshort", 0.01, 0.0, 1),
        ("M", "mixed", 0.002, 0.001, 4),
        ("D", "mixed", 0.0, 0.0, 3),
    ],
)
def test_the_lane_path_matches_vectorbt(rebalance, kind, fees, slippage, n_segments):
    p = make_prices(260, 7, seed=60)
    n_genomes = 21  # on two threads two blocks (8 and 16 lanes), the second padded; on one, one block of 24
    if n_segments == 1:
        w = random_weights(n_genomes, 7, seed=61, kind=kind)
        starts = None
    else:
        w = random_schedule(n_genomes, n_segments, 7, seed=62, kind=kind)
        starts = np.linspace(0, 260, n_segments, endpoint=False).astype(int) + np.arange(n_segments) * 3
    _assert_vectorbt(p, w, segment_starts=starts, rebalance=rebalance, fees=fees, slippage=slippage)


def test_mixed_calendars_in_one_block_match_vectorbt():
    p = make_prices(300, 5, seed=63)
    w = np.vstack([random_weights(5, 5, seed=63), random_weights(4, 5, seed=64, kind="longshort")])
    policies = ["D", "M", 5, "once", "W", "D", 3, "Q", "M"]
    fast = _assert_vectorbt(p, w, rebalance=policies, fees=0.002, slippage=0.001)
    assert len({tuple(np.flatnonzero(r)) for r in fast.rebalance.T}) == 7  # "D" and "M" twice; the rest their own


def test_weights_of_exactly_zero_match_vectorbt():
    """Assets whose target is exactly 0: never bought, or sold out (or covered) entirely when a segment drops them."""
    p = make_prices(200, 4, seed=65)
    w = np.array(
        [
            [[0.5, 0.5, 0.0, 0.0], [0.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0]],
            [[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.2, 0.0, 0.8, 0.0]],
            [[0.6, 0.0, -0.4, 0.0], [0.0, -1.0, 0.0, 0.0], [-0.5, 0.5, 0.0, 0.0]],
        ]
    )
    kw = dict(segment_starts=[0, 70, 140], fees=0.001, slippage=0.001)
    for rebalance in ("D", "M", "once"):
        fast = _assert_vectorbt(p, w, rebalance=rebalance, **kw)
        # genome 1 holds asset 0 alone until bar 140 (its cash spent on it): its value moves with that price only
        np.testing.assert_allclose(
            fast.value[1:140, 1] / fast.value[:139, 1], p.close[1:140, 0] / p.close[:139, 0], rtol=1e-12
        )


def test_cash_running_out_takes_the_exact_sequence_in_its_lane_only():
    """Fees of 20 %: a genome spread over 8 assets cannot pay every buy but the largest from its cash (the fast case's
    check fails, its lane runs vectorbt's exact sequence), genomes over two or three assets and a long/short one can
    (their lanes stay fast). Each lane's count and figures are those of the genome alone, and all match vectorbt."""
    p = make_prices(120, 8, seed=66)
    spread = np.full(8, 1 / 8)
    half = np.array([0.5, 0.5, 0, 0, 0, 0, 0, 0])
    three = np.array([0.4, 0.3, 0.3, 0, 0, 0, 0, 0])
    w = np.vstack([spread, half, three, random_weights(1, 8, seed=67, kind="longshort")[0]])
    daily = np.ones(p.n_bars, dtype=bool)
    fees = 0.2
    value, traded, n_exact = _block(p, w, [0, 1, 2, 3], daily, fees=fees)
    alone = [_block(p, w, [g], daily, fees=fees) for g in range(4)]
    counts = [a[2] for a in alone]
    assert counts[0] > 0 and counts[1:] == [0, 0, 0]  # the fallback ran in the spread lane only
    assert n_exact == sum(counts)
    for g in range(4):
        np.testing.assert_array_equal(value[g], alone[g][0][0])
        assert traded[g] == alone[g][1][0]
    ref = backtest(p, w, rebalance="D", fees=fees, engine="vectorbt")
    rel = np.abs(value.T - ref.value) / ref.value
    assert rel.max() <= PARITY_RTOL
    np.testing.assert_allclose(traded, ref.traded, rtol=PARITY_RTOL)


def test_the_exact_fallback_agrees_with_the_fast_case_where_both_apply():
    """At low fees every lane stays fast; the same genomes through the exact sequence alone (forced by a policy that
    drops nothing, the scalar path) agree to rounding."""
    p = make_prices(150, 6, seed=67)
    w = random_weights(12, 6, seed=67, kind="longshort")
    value, traded, n_exact = _block(p, w, range(12), np.ones(p.n_bars, dtype=bool), fees=0.001)
    assert n_exact == 0
    exact = backtest(p, w, rebalance="D", fees=0.001, policy=RebalancePolicy(min_trade_value=1e-300))
    assert (np.abs(value.T - exact.value) / exact.value).max() <= 1e-12
    np.testing.assert_allclose(traded, exact.traded, rtol=1e-12)


def test_blocks_cover_each_genome_once_in_whole_units():
    for n in (1, 5, 7, 8, 9, 16, 33, 100, 200, 1024):
        lane = np.arange(3, 3 + n, dtype=np.int64)
        n_blocks = lanes.lane_blocks(n)
        seen = []
        for b in range(n_blocks):
            gs, n_real = lanes.block_genomes(lane, b, n_blocks)
            assert 1 <= len(gs) <= lanes.LANES
            assert len(gs) == n if n < lanes.UNIT // 2 else len(gs) % lanes.UNIT == 0
            assert (gs[n_real:] == lane[-1]).all()  # padding repeats the last genome
            seen.extend(gs[:n_real])
        assert seen == lane.tolist()


def test_only_genomes_under_an_active_policy_keep_the_scalar_path():
    lane, rest = nb.lane_split(4, None)
    assert lane.tolist() == [0, 1, 2, 3] and rest.tolist() == []
    pol = rules.no_policy(4)
    lane, rest = nb.lane_split(4, pol)  # rows that are all off: no policy
    assert lane.tolist() == [0, 1, 2, 3] and rest.tolist() == []
    pol[2, rules.P_MIN_TRADE] = 0.01
    lane, rest = nb.lane_split(4, pol)
    assert lane.tolist() == [0, 1, 3] and rest.tolist() == [2]


def _population(target_w, n, pos, seed):
    """``n`` genomes with the target at ``pos``: long-only, long/short, one with a drift band and one with an active
    policy (the scalar path) among the others."""
    others = np.vstack([random_weights(n, 6, seed=seed), random_weights(n, 6, seed=seed + 1, kind="longshort")])
    w = others[np.random.default_rng(seed).permutation(2 * n)[: n - 1]]
    w = np.insert(w, pos, target_w, axis=0)
    return w


@pytest.mark.parametrize("target_kind", ["longonly", "longshort"])
def test_a_genomes_figures_depend_only_on_that_genome(target_kind):
    p = make_prices(240, 6, seed=68)
    target = random_weights(3, 6, seed=69, kind=target_kind)[2]
    kw = dict(fees=0.001, slippage=0.0005)
    threads = numba.get_num_threads()
    counts = sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)})
    ref = None
    try:
        for n_threads in counts:
            numba.set_num_threads(n_threads)
            for n, pos in ((1, 0), (7, 3), (9, 8), (200, 0), (200, 117), (200, 199)):
                w = _population(target, n, pos, seed=70 + n + pos)
                rebalance = ["D"] * n
                threshold = [None] * n
                vol_target = np.zeros(n)
                if n > 1:  # neighbours on other calendars, with a drift band, and under an active policy
                    rebalance[(pos + 1) % n] = "M"
                    threshold[(pos + n - 1) % n] = 0.03
                    vol_target[(pos + 2) % n] = 0.2  # the scalar path
                policy = RebalancePolicy(vol_target=vol_target)
                bt = backtest(p, w, rebalance=rebalance, threshold=threshold, policy=policy, **kw)
                m = score(p, w, rebalance=rebalance, threshold=threshold, policy=policy, **kw)
                got = (bt.value[:, pos], bt.traded[pos], bt.rebalance[:, pos], {k: v[pos] for k, v in m.items()})
                if ref is None:
                    ref = got
                    continue
                np.testing.assert_array_equal(got[0], ref[0], err_msg=f"{n} genomes at {pos}, {n_threads} threads")
                assert got[1] == ref[1]
                np.testing.assert_array_equal(got[2], ref[2])
                for k in ref[3]:
                    assert got[3][k] == ref[3][k] or (np.isnan(got[3][k]) and np.isnan(ref[3][k])), k
    finally:
        numba.set_num_threads(threads)
    # and the figures are the genome's: they match vectorbt
    alone = backtest(p, target, rebalance="D", engine="vectorbt", **kw)
    assert (np.abs(ref[0] - alone.value[:, 0]) / alone.value[:, 0]).max() <= PARITY_RTOL


def test_a_lanes_figures_do_not_depend_on_the_block_it_is_in():
    """The block kernel itself: the same genome in blocks of 1, 5, 16, 32 and 48 lanes at different lanes, with
    neighbours that fall back to the exact sequence, gives the same bits."""
    p = make_prices(150, 8, seed=71)
    w = np.vstack([np.full(8, 1 / 8), random_weights(60, 8, seed=71, kind="longshort")])
    daily = np.ones(p.n_bars, dtype=bool)
    target = 5
    ref, ref_traded, _ = _block(p, w, [target], daily, fees=0.2)
    for gs in ([target, 0, 1, 2, 3], list(range(16)), list(range(32))[::-1], list(range(48))):
        value, traded, n_exact = _block(p, w, gs, daily, fees=0.2)
        assert n_exact > 0  # genome 0 (spread over 8 assets) falls back beside it
        np.testing.assert_array_equal(value[gs.index(target)], ref[0])
        assert traded[gs.index(target)] == ref_traded[0]


def _block_args(p, w, gs, rebalance_mask, thresholds, fees):
    n_genomes = w.shape[0]
    return (
        p.close, w[:, None, :].copy(), np.asarray(gs, dtype=np.int64), np.arange(len(gs)), np.array([0]),
        rebalance_mask[None, :], np.zeros(n_genomes, dtype=np.int64), thresholds, fees, 0.001, 10_000.0,
        (w >= 0).all(axis=1),
    )  # fmt: skip


@pytest.mark.parametrize("nl", [1, 3, 8, 13, 32])
def test_the_bar_major_lane_values_are_the_value_rows_with_one_store_per_vector(nl):
    """``lanes_out`` (the fused scorer's layout: (vectors, bars, 8)) holds each lane's value path bit for bit as the
    value rows do, the lanes past ``nl`` of the last vector the last genome's path; with value rows and rebalance
    flags of no columns nothing else is written and the traded sums stay the same."""
    p = make_prices(120, 5, seed=81)
    w = np.vstack([random_weights(20, 5, seed=81), random_weights(20, 5, seed=82, kind="longshort")])
    gs = np.random.default_rng(nl).choice(40, nl, replace=False)
    weekly = np.arange(p.n_bars) % 5 == 0
    thr = np.where(np.arange(40) % 3 == 0, 0.02, np.inf)[:, None]
    args = _block_args(p, w, gs, weekly, thr, 0.002)
    value = np.empty((nl, p.n_bars))
    flags = np.empty((nl, p.n_bars), dtype=bool)
    traded = np.empty(nl)
    lanes.simulate_block_nb(*args, value, flags, traded, np.empty((nl, 0)), np.empty((0, 0, 8)))
    n_vec = (nl + 7) // 8
    buf = np.full((n_vec, p.n_bars, 8), -7.0)
    traded2 = np.empty(nl)
    lanes.simulate_block_nb(
        *args, np.empty((nl, 0)), np.empty((nl, 0), dtype=bool), traded2, np.empty((nl, 0)), buf
    )  # fmt: skip
    got = buf.transpose(0, 2, 1).reshape(n_vec * 8, p.n_bars)
    np.testing.assert_array_equal(got[:nl], value)
    for lane in range(nl, n_vec * 8):  # the padding lanes: the last genome's path again
        np.testing.assert_array_equal(got[lane], value[nl - 1])
    np.testing.assert_array_equal(traded2, traded)
    assert not np.isnan(value).any() and (value != value[:, :1]).any(axis=1).all()  # real paths that move
    with pytest.raises(ValueError, match="lanes_out"):
        lanes.simulate_block_nb(*args, value, flags, traded, np.empty((nl, 0)), np.empty((n_vec, p.n_bars - 1, 8)))


@numba.njit(cache=False, error_model="numpy")
def _lane_helpers(a, b, out):
    """The lane kernel's vector helpers on row 1 of ``a`` (from lane 8) and ``b`` (from lane 8)."""
    x = simd.vloadat(a, (1, 8), 8)
    y = simd.vloadat(b, 8, 8)
    one, zero = simd.vsplat(1.0, 8), simd.vsplat(0.0, 8)
    simd.vstoreat(out, (0, 0), lanes._vadd(x, y))
    simd.vstoreat(out, (1, 0), lanes._vsnap(x))
    simd.vstoreat(out, (2, 0), simd.vsel(lanes._vclose(x, y), one, zero))
    simd.vstoreat(out, (3, 0), -x)
    simd.vstoreat(out, (4, 0), simd.vabs(x))
    simd.vstoreat(out, (5, 0), simd.vmax(x, y))
    simd.vstoreat(out, (6, 0), simd.vsel((x < y) ^ (y > 0.0), one, zero))
    return simd.vbits(x < y)


@numba.njit(cache=False, error_model="numpy")
def _scalar_helpers(a, b, out):
    for j in range(8):
        x, y = a[1, 8 + j], b[8 + j]
        out[0, j] = orders._add(x, y)
        out[1, j] = 0.0 if orders._is_zero(x) else x
        out[2, j] = 1.0 if orders._is_close(x, y) else 0.0
        out[3, j] = -x
        out[4, j] = abs(x)
        out[5, j] = max(x, y)
        out[6, j] = 1.0 if (x < y) != (y > 0.0) else 0.0


def test_the_lane_kernels_vector_helpers_compute_the_scalar_order_helpers_bit_for_bit():
    """The vectors' add-with-tolerance (vectorbt's add_nb, its opposite-sign test taken as ``not a * b >= 0``:
    negative or NaN), snap to zero, is-close, negation, abs, max, mask xor and bits, loaded from and stored to rows of
    2-D and 1-D arrays at an offset, against the scalar helpers and Numba's scalar operations: NaN, infinities, signed
    zeros, subnormals, values that cancel within the tolerances, opposite signs whose product underflows, a zero
    beside an infinity."""
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 1e-300, -1e-300, 1e-13, -1e-13, 1e-12, -1e-12,
               0.5e-3, 2e-3, -2e-3, 1.5, -1.5, 1.5 + 1e-9, -(1.5 - 1e-10), 1e308, -1e308]  # fmt: skip
    pairs = np.array([(x, y) for x in special for y in special])
    pairs = np.vstack([pairs, np.random.default_rng(14).normal(0.0, 3.0, (64, 2))])
    x = pairs[:, 0]
    pairs = np.vstack([pairs, np.column_stack([x, -x * (1 + 1e-10)]), np.column_stack([x, -x * (1 + 1e-8)])])
    pairs = pairs[: len(pairs) // 8 * 8]
    for lo in range(0, len(pairs), 8):
        a = np.full((3, 16), 7.0)
        b = np.full(16, 7.0)
        a[1, 8:] = pairs[lo : lo + 8, 0]
        b[8:] = pairs[lo : lo + 8, 1]
        got, expect = np.zeros((7, 8)), np.zeros((7, 8))
        bits = _lane_helpers(a, b, got)
        _scalar_helpers(a, b, expect)
        nan = np.isnan(expect)  # NaN must be NaN in both (its payload and sign are not compared)
        assert np.array_equal(np.isnan(got), nan), pairs[lo : lo + 8]
        bad = np.argwhere((got.view(np.int64) != expect.view(np.int64)) & ~nan)
        assert bad.size == 0, [(tuple(i), pairs[lo + i[1]], got[tuple(i)], expect[tuple(i)]) for i in bad[:5]]
        assert bits == sum(1 << j for j in range(8) if a[1, 8 + j] < b[8 + j])

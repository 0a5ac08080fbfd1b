"""Scoring genomes side by side (:func:`genetic_sizer.backtest.kernels.lane_metrics.score_lanes_nb`): every lane's row
equals what the scalar scorer (:func:`genetic_sizer.backtest.kernels.spot.score_row_nb`) writes for that lane's path,
bit for bit (compared as integers, so a -0.0 for a 0.0 or one rounding of one metric fails), on random daily and
monthly paths, with one risk-free rate (0 and not) and one per bar, lanes wiped out at different bars, NaN and
infinite values, flat paths, 1 to 7 bars, peaks changing on every bar, values far from 1, and padding lanes."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from genetic_sizer.backtest.kernels.lane_metrics import LANES, STATE_ROWS, lane_scratch, score_lanes_nb
from genetic_sizer.backtest.kernels.simd import vany, vload, vmin, vsel, vsplat, vstore
from genetic_sizer.backtest.kernels.spot import METRIC_NAMES, SCORE_NONFINITE, SCORE_WIDTH, score_row_nb

SENTINEL = -7.25  # the columns neither scorer writes keep it
RATES = {
    "zero": lambda n, rng: np.zeros(1),
    "one": lambda n, rng: np.full(1, 2e-4),
    "per_bar": lambda n, rng: rng.normal(1e-4, 5e-5, n),
}


def _scalar(paths, init_cash, ann_factor, rf):
    out = np.full((paths.shape[1], SCORE_WIDTH), SENTINEL)
    for lane in range(paths.shape[1]):
        score_row_nb(np.ascontiguousarray(paths[:, lane]), init_cash, ann_factor, rf, out[lane])
    return out


def _lanes(paths, init_cash, ann_factor, rf, padding=np.nan):
    """Score ``paths`` (n_bars, k) block by block of LANES; padding lanes hold ``padding``, the scratch starts full of
    NaN (so a value carried over from nothing would show)."""
    n_bars, k = paths.shape
    out = np.full((k, SCORE_WIDTH), SENTINEL)
    scratch = lane_scratch(n_bars)
    for lo in range(0, k, LANES):
        n = min(LANES, k - lo)
        block = np.full((n_bars, LANES), padding)
        block[:, :n] = paths[:, lo : lo + n]
        scratch[:] = np.nan
        score_lanes_nb(block, n, init_cash, ann_factor, rf, scratch, out[lo : lo + n])
    return out


def _assert_bits(got, expect):
    """Equal bit for bit; NaN figures (a NaN path) must be NaN in both (their payload is not compared)."""
    nan = np.isnan(expect)
    assert np.array_equal(np.isnan(got), nan), np.argwhere(np.isnan(got) != nan)
    bad = np.argwhere((got.view(np.int64) != expect.view(np.int64)) & ~nan)
    assert bad.size == 0, [(tuple(i), got[tuple(i)], expect[tuple(i)]) for i in bad[:5]]


def _check(paths, init_cash=100.0, ann_factor=252.0, rf=None, padding=np.nan):
    rf = np.zeros(1) if rf is None else rf
    expect = _scalar(paths, init_cash, ann_factor, rf)
    got = _lanes(paths, init_cash, ann_factor, rf, padding)
    _assert_bits(got, expect)
    return got


def _walks(rng, n_bars, k, mu=0.0003, sigma=0.02, start=100.0):
    return start * np.exp(np.cumsum(rng.normal(mu, sigma, (n_bars, k)), axis=0))


@pytest.mark.parametrize("rate", sorted(RATES))
@pytest.mark.parametrize(
    ("n_bars", "ann_factor", "sigma"), [(2000, 252.0, 0.02), (121, 12.0, 0.06), (997, 365.0, 0.04)]
)
def test_random_paths_equal_the_scalar_scorer_bit_for_bit(rate, n_bars, ann_factor, sigma):
    rng = np.random.default_rng(n_bars)
    paths = _walks(rng, n_bars, 3 * LANES + 3, sigma=sigma)  # three full blocks and a partial one
    got = _check(paths, 100.0, ann_factor, RATES[rate](n_bars, rng))
    assert np.all(got[:, SCORE_NONFINITE] == 0.0) and np.all(got[:, 7] == 0.0)
    assert np.all(got[:, len(METRIC_NAMES)] == SENTINEL)  # the turnover column is the caller's
    assert np.all(got[:, 6] < 0) and len(np.unique(got[:, 3])) == paths.shape[1]  # drawdowns, distinct Sharpes


def test_the_comparison_tells_summation_orders_apart():
    """The bit comparison can fail: on these paths the scalar kernel's four-block mean differs from a plain running
    sum's, or from the blocks combined in another order, in some lanes (so a lane kernel summing another way fails
    the tests above)."""
    rng = np.random.default_rng(2000)
    paths = _walks(rng, 2000, 3 * LANES + 3)
    rets = np.vstack([paths[:1] / 100.0 - 1.0, paths[1:] / paths[:-1] - 1.0])
    rets[1:] = (paths[1:] - paths[:-1]) / paths[:-1]
    rets[0] = (paths[0] - 100.0) / 100.0
    n = rets.shape[0]
    size = n // 4
    blocks = [rets[q * size : (q + 1) * size].copy() for q in range(3)] + [rets[3 * size :].copy()]
    sums = []
    for b in blocks:
        s = np.zeros(rets.shape[1])
        for r in b:
            s = s + r
        sums.append(s)
    four = ((sums[0] + sums[1]) + (sums[2] + sums[3])) / n
    other = ((sums[0] + sums[2]) + (sums[1] + sums[3])) / n
    running = np.zeros(rets.shape[1])
    for r in rets:
        running = running + r
    running /= n
    assert np.any(four != running) and np.any(four != other)
    # and the scalar kernel's figures follow the four blocks: a flat rate turns the mean into Sharpe's numerator
    rows = _scalar(paths, 100.0, 252.0, np.zeros(1))
    assert np.all(np.sign(rows[:, 3]) == np.sign(four))


@pytest.mark.parametrize("rate", sorted(RATES))
def test_lanes_wiped_out_at_different_bars(rate):
    """Each lane measured up to its own bar (value <= 0 counts as 0): the blocks differ per lane (masked sums)."""
    rng = np.random.default_rng(7)
    n_bars = 300
    paths = _walks(rng, n_bars, 2 * LANES, sigma=0.05)
    for lane, bar in enumerate([0, 1, 2, 3, 4, 5, 150, 299, 77, 77, 200]):
        paths[bar:, lane] = -1.0 if lane % 2 else 0.0
        paths[bar + 1 :, lane] = rng.normal(0, 50, n_bars - bar - 1)  # anything after the wipe-out
    got = _check(paths, 100.0, 252.0, RATES[rate](n_bars, rng))
    assert np.array_equal(got[:11, 7], np.ones(11)) and np.all(got[11:, 7] == 0.0)
    assert np.all(got[:11, 0] == -1.0) and np.all(got[:11, 6] == -1.0)
    assert len(np.unique(got[2:11, 2])) > 5  # the wiped lanes' volatilities are their own


def test_lanes_wiped_out_at_the_same_bar_and_the_last_bar():
    rng = np.random.default_rng(8)
    for bar in (0, 1, 4, 63, 99):
        paths = _walks(rng, 100, LANES, sigma=0.05)
        paths[bar, :] = 0.0  # every lane at once: shared blocks of bar + 1 bars
        _check(paths)
        _check(paths, rf=rng.normal(1e-4, 1e-4, 100))


@pytest.mark.parametrize("n_bars", [1, 2, 3, 4, 5, 7, 8, 9])
def test_short_paths(n_bars):
    """Blocks of 0, 1 and 2 returns, the tail alone; wiped out on the first bar; flat paths."""
    rng = np.random.default_rng(n_bars)
    paths = _walks(rng, n_bars, 2 * LANES, sigma=0.1)
    paths[:, 1] = 100.0  # flat at the initial cash: no return at all
    paths[:, 2] = 120.0  # one jump, then flat
    paths[0, 3] = -5.0  # wiped out at once
    if n_bars > 2:
        paths[n_bars // 2 :, 4] = 0.0
    for rate in RATES.values():
        _check(paths, 100.0, 252.0, rate(n_bars, rng))


def test_flat_paths_follow_the_cap_conventions():
    rng = np.random.default_rng(3)
    n_bars = 250
    paths = np.empty((n_bars, LANES))
    paths[:, 0] = 100.0  # no return: every ratio 0
    paths[:, 1] = 100.0 * 1.001 ** np.arange(1, n_bars + 1)  # constant return: no volatility, no drawdown
    paths[:, 2] = 100.0 * 0.999 ** np.arange(1, n_bars + 1)  # constant loss
    paths[:, 3] = 150.0  # one gain, then flat
    paths[:, 4:] = _walks(rng, n_bars, LANES - 4)
    got = _check(paths)
    assert np.array_equal(got[0, :8], np.zeros(8))
    assert got[1, 3] == 1e12 and got[1, 4] == 1e12 and got[1, 5] == 1e12 and got[1, 6] == 0.0
    assert got[2, 3] == -1e12
    for rate in RATES.values():
        _check(paths, rf=rate(n_bars, rng))


def test_nan_and_infinite_values():
    rng = np.random.default_rng(4)
    n_bars = 200
    paths = _walks(rng, n_bars, 2 * LANES)
    paths[50, 0] = np.nan
    paths[0, 1] = np.nan
    paths[120, 2] = np.inf
    paths[0, 3] = np.inf
    paths[80:, 4] = np.nan
    paths[30, 5] = -np.inf  # <= 0: wiped out
    paths[60, 6] = np.nan
    paths[90, 6] = 0.0  # NaN, then wiped out
    paths[199, 7] = np.inf
    paths[10, 9] = np.nan  # the second block: a NaN lane beside a wiped-out one
    paths[20, 10] = 0.0
    for rate in RATES.values():
        got = _check(paths, rf=rate(n_bars, rng))
        flags = np.zeros(2 * LANES)
        flags[[0, 1, 2, 3, 4, 5, 6, 7, 9]] = 1.0
        assert np.array_equal(got[:, SCORE_NONFINITE], flags)


def test_peaks_changing_on_every_bar_and_drawdown_records():
    """A new peak on every bar (the drawdown's division on every bar), records of drawdown one after another, a
    sawtooth, and equal values (the running low equal to the peak)."""
    rng = np.random.default_rng(5)
    n_bars = 400
    i = np.arange(n_bars)
    paths = np.empty((n_bars, 2 * LANES))
    paths[:, 0] = 100.0 + i  # rises on every bar
    paths[:, 1] = 100.0 * 1.01**i * (1.0 + 0.001 * (i % 2))  # rises, and every other bar a little higher
    paths[:, 2] = 100.0 * (1.0 + 0.05 * np.sin(i / 3.0)) * 1.002**i  # deeper and deeper? no: a rising sawtooth
    paths[:, 3] = 100.0 * (1.0 + 0.001 * i) * np.where(i % 2, 1.0 - 0.001 * i / n_bars, 1.0)  # ever deeper dips
    paths[:, 4] = np.repeat(100.0 + np.arange(n_bars // 4), 4)[:n_bars]  # runs of equal values
    paths[:, 5] = 100.0 - 0.1 * i  # falls on every bar
    paths[:, 6:] = _walks(rng, n_bars, 2 * LANES - 6, sigma=0.08)
    for rate in RATES.values():
        _check(paths, rf=rate(n_bars, rng))


@pytest.mark.parametrize("scale", [1e-200, 1e-120, 1e-90, 1e90, 1e150, 1e300, 5e-324 * 2**40])
def test_values_far_from_one(scale):
    """Values outside the range where the drawdown's skipped divisions are proven (every changed peak divides there),
    and inside it; subnormal and huge values."""
    rng = np.random.default_rng(6)
    paths = _walks(rng, 300, LANES, sigma=0.05, start=1.0) * scale
    paths[:, 0] = _walks(rng, 300, 1, sigma=0.05)[:, 0]  # an ordinary lane beside them
    _check(paths, init_cash=scale)
    _check(paths, init_cash=100.0, rf=np.full(1, 1e-4))


def test_padding_lanes_change_nothing_and_are_not_written():
    rng = np.random.default_rng(9)
    paths = _walks(rng, 150, 3)
    expect = _scalar(paths, 100.0, 252.0, np.zeros(1))
    for padding in (np.nan, -1.0, 0.0, np.inf, 1e-300, 100.0):
        _assert_bits(_lanes(paths, 100.0, 252.0, np.zeros(1), padding), expect)
    block = np.full((150, LANES), 5.0)
    block[:, :3] = paths
    out = np.full((LANES, SCORE_WIDTH), SENTINEL)
    score_lanes_nb(block, 3, 100.0, 252.0, np.zeros(1), lane_scratch(150), out)
    assert np.all(out[3:] == SENTINEL)


def test_bad_shapes_are_refused():
    values = np.ones((10, LANES))
    out = np.zeros((LANES, SCORE_WIDTH))
    with pytest.raises(ValueError, match="LANES"):
        score_lanes_nb(np.ones((10, LANES + 1)), 1, 100.0, 252.0, np.zeros(1), lane_scratch(10), out)
    with pytest.raises(ValueError, match="STATE_ROWS"):
        score_lanes_nb(values, 1, 100.0, 252.0, np.zeros(1), np.empty((10 + STATE_ROWS - 1, LANES)), out)
    with pytest.raises(ValueError, match="n_lanes"):
        score_lanes_nb(values, 0, 100.0, 252.0, np.zeros(1), lane_scratch(10), out)
    with pytest.raises(ValueError, match="n_lanes"):
        score_lanes_nb(values, LANES + 1, 100.0, 252.0, np.zeros(1), lane_scratch(10), out)


def test_drawdown_records_within_one_rounding():
    """A stretch whose low / peak rounds just below the least ratio so far while low equals ratio * peak rounded: the
    bars where divisions are skipped must not include it (the margin of the test); every lane holds such a record."""
    rng = np.random.default_rng(11)
    ratio = 90.0 / 100.0
    paths = np.empty((6, LANES))
    lane = 0
    while lane < LANES:
        peak = 100.0 + 100.0 * rng.random()
        low = ratio * peak
        if low / peak < ratio:  # a new least ratio, one rounding below, with low == fl(ratio * peak)
            paths[:, lane] = [100.0, 90.0, peak, low, 300.0, 290.0]
            lane += 1
    got = _check(paths)
    assert np.all(got[:, 6] == (paths[3] / paths[2] - 1.0))  # the record, not 0.9 - 1


def test_subnormal_drawdown_record():
    """Values so small that ratio * peak loses precision: the skipping test is not proven there, so those lanes divide
    on every changed peak (here a record the test would have skipped: 14/30 < 12/25 with 0.48 * 30u rounding to
    14u)."""
    u = 5e-324
    paths = np.tile(np.array([25 * u, 12 * u, 30 * u, 14 * u, 40 * u])[:, None], (1, 2 * LANES))
    paths[:, LANES] = [25.0, 12.0, 30.0, 14.0, 40.0]  # the same path at an ordinary scale, in another block (a
    # lane dividing on a bar divides in every lane whose peak changes there)
    assert 14 * u >= (0.48 * (1.0 + 1e-12)) * (30 * u)  # the test would skip the record
    got = _check(paths, init_cash=25 * u)
    assert np.all(got[:, 6] == 14.0 / 30.0 - 1.0)


@numba.njit(parallel=True, cache=False)
def _population_in_blocks(blocks, n_genomes, init_cash, ann_factor, rf, out):
    """How a fused scorer calls it: a parallel loop over blocks of LANES genomes, one scratch per iteration."""
    n_blocks, n_bars, _ = blocks.shape
    for b in numba.prange(n_blocks):
        scratch = lane_scratch(n_bars)
        lo = b * LANES
        n = min(LANES, n_genomes - lo)
        score_lanes_nb(blocks[b], n, init_cash, ann_factor, rf, scratch, out[lo : lo + n])


def test_a_parallel_loop_over_blocks_scores_a_population():
    rng = np.random.default_rng(12)
    n_genomes, n_bars = 3 * LANES + 5, 260
    paths = _walks(rng, n_bars, n_genomes, sigma=0.04)
    paths[100:, 3] = 0.0
    blocks = np.ones((-(-n_genomes // LANES), n_bars, LANES))
    for g in range(n_genomes):
        blocks[g // LANES, :, g % LANES] = paths[:, g]
    for rf in (np.zeros(1), rng.normal(1e-4, 1e-4, n_bars)):
        out = np.full((n_genomes, SCORE_WIDTH), SENTINEL)
        _population_in_blocks(blocks, n_genomes, 100.0, 252.0, rf, out)
        _assert_bits(out, _scalar(paths, 100.0, 252.0, rf))


@numba.njit(cache=False)
def _vector_ops(a, b, out):
    x = vload(a, LANES)
    y = vload(b, LANES)
    vstore(out[0], x + y)
    vstore(out[1], x - y)
    vstore(out[2], x * y)
    vstore(out[3], x / y)
    vstore(out[4], vmin(x, y))
    one, zero = vsplat(1.0, LANES), vsplat(0.0, LANES)
    for k, m in enumerate((x < y, x <= y, x > y, x >= y, x == y, x != y, (x < y) & ~(x == y), (x < y) | (x > y))):
        vstore(out[5 + k], vsel(m, one, zero))
    vstore(out[13], x * 2 - 1.5 / y)  # scalars stand for vectors of their copies
    return vany(x < y), vany(x > 1e308)


@numba.njit(cache=False, error_model="numpy")  # IEEE division by zero, as the vectors' (no ZeroDivisionError)
def _scalar_ops(a, b, out):
    for i in range(a.shape[0]):
        x, y = a[i], b[i]
        out[0, i], out[1, i], out[2, i], out[3, i], out[4, i] = x + y, x - y, x * y, x / y, min(x, y)
        flags = (x < y, x <= y, x > y, x >= y, x == y, x != y, (x < y) and not (x == y), (x < y) or (x > y))
        for k in range(8):
            out[5 + k, i] = 1.0 if flags[k] else 0.0
        out[13, i] = x * 2 - 1.5 / y


def test_simd_vectors_compute_what_numbas_scalar_code_computes():
    """The vector type's operations, lane by lane, against Numba's scalar ones: NaN (ordered comparisons false, != true,
    min keeping its first argument), infinities, signed zeros, subnormals."""
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, 1.5, -2.0, 1e308]
    pairs = np.array([(x, y) for x in special for y in special])
    pairs = np.vstack([pairs, np.random.default_rng(13).normal(0.0, 3.0, (LANES * 4, 2))])
    pairs = pairs[: len(pairs) // LANES * LANES]
    for lo in range(0, len(pairs), LANES):
        a, b = pairs[lo : lo + LANES, 0].copy(), pairs[lo : lo + LANES, 1].copy()
        got, expect = np.zeros((14, LANES)), np.zeros((14, LANES))
        any_less, any_huge = _vector_ops(a, b, got)
        _scalar_ops(a, b, expect)
        _assert_bits(got, expect)
        assert any_less == bool(np.any(a < b)) and any_huge == bool(np.any(a > 1e308))

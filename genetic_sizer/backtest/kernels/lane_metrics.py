"""Fitness metrics of several genomes at once: their value paths side by side, one SIMD lane per genome.

:func:`score_lanes_nb` scores ``LANES`` value paths laid out lane-innermost (``values[i, l]``: bar ``i`` of genome
``l``) and writes, for each lane, exactly what :func:`~genetic_sizer.backtest.kernels.spot.score_row_nb` writes into a
row (the metrics of :func:`~genetic_sizer.backtest.kernels.spot.metrics_genome_nb` and the non-finite flag), bit for
bit. The lanes are explicit vectors (:mod:`genetic_sizer.backtest.kernels.simd`: one ``<8 x double>``, an AVX-512
register): every per-bar step is one vector operation per quantity, without branches (selects), and the state carried
from bar to bar stays in registers (LLVM does not vectorize plain loops over 8 lanes here: it cannot prove the scratch
rows and the inputs apart). The divisions of the returns, which bound the scalar kernel, run 8 at a time: on one
thread 0.50-0.56 ns per genome-bar against 3.25-3.3 for ``score_row_nb`` (64 genomes of 2,000 and 5,000 bars), 0.65-0.69
with a rate per bar, 1.3 where lanes are wiped out at different bars (``experiments/bench_lane_metrics.py``).

A caller (a fused scorer's parallel loop over blocks of ``LANES`` genomes) allocates one scratch array per thread or
chunk (:func:`lane_scratch`) and passes a block's value paths (``n_bars`` x ``LANES``, C-contiguous) and its rows of
the output; a partial last block pads its unused lanes with anything (they are computed and never written).

Bit for bit, because each lane performs the scalar kernel's floating-point operations in the same order:

* the returns: ``(v_i - v_{i-1}) / v_{i-1}`` from ``init_cash``, with a wiped-out lane's last value counted as 0;
* the sums and the compounded growth: four contiguous blocks of ``n // 4`` returns each, the tail continuing the last
  block, combined as ``(b0 + b1) + (b2 + b3)``; every accumulator adds its own returns in bar order, as in the scalar
  kernel. When every scored lane has the same length ``n`` (no lane wiped out, the common case) the blocks are shared
  and walked side by side as in the scalar kernel (:func:`_blocks_shared`); otherwise each lane has its own ``n`` (a
  lane wiped out at bar ``k`` is measured on ``k + 1`` bars) and its own blocks, walked bar by bar, an accumulator
  taking a bar's term only in the lanes whose block holds the bar (a select: the other lanes keep their sums
  untouched; :func:`_blocks_masked`);
* a per-bar risk-free rate: the excess moments of :func:`~genetic_sizer.backtest.kernels.spot._excess_moments`, in
  the same blocks;
* the drawdown: the scalar kernel divides the lowest value of a running peak's stretch by that peak when the peak
  changes, and keeps the least ratio (``min(ratio, low / peak)``). Here the division is skipped where it cannot change
  that minimum: a changed peak divides only if ``low < (ratio * _MARGIN) * peak`` in some lane. For values in
  ``[1 / _RANGE, _RANGE]`` the products are normal doubles whose rounding the margin covers, so a skipped stretch has
  ``low / peak > ratio`` exactly, hence (rounding is monotone) a rounded quotient at least ``ratio``: ``min`` would
  return ``ratio``. A lane with a NaN, an infinity or a value outside that range (and not wiped out) has its
  drawdown computed again by the scalar rule itself, dividing on every changed peak (:func:`_drawdown_exact`). The
  bars that divide are few (records of the drawdown: 27 of 2,000 for 8 random walks);
* the last combinations (standard deviations, the rounding-noise rules, the caps, Sharpe, Sortino, Calmar) per lane,
  in the scalar kernel's order (:func:`~genetic_sizer.backtest.kernels.figures.finish_metrics`).

No fastmath (it would reorder the sums). ``tests/test_lane_metrics.py`` checks the bits against ``score_row_nb``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from genetic_sizer.backtest.kernels.figures import SCORE_NONFINITE, finish_metrics
from genetic_sizer.backtest.kernels.simd import vany, vload, vmin, vsel, vsplat, vstore

__all__ = ["LANES", "STATE_ROWS", "lane_scratch", "score_lanes_nb"]

LANES = 8
"""Genomes scored side by side: one AVX-512 register of doubles (``experiments/bench_lane_metrics.py`` measures 4, 8
and 16 by compiling the kernel again with another width)."""

# rows of per-lane state after the n_bars rows of returns in the scratch array
_N = 0  # bars measured (n_bars, or the wiped-out bar + 1), as a float
_CUT = 1  # the bar whose value counts as 0 (the wiped-out bar), or -1
_SIZE = 2  # n // 4 (the blocks' length), as a float
_FIN = 3  # 1.0 if every value is finite
_MEAN = 4  # the mean return
_GROWTH = 5  # the compounded growth
_SS = 6  # the sum of squared deviations from the mean
_DOWN = 7  # the sum of squared losses (of r - c for one rate c; of r - rf_i for a rate per bar)
_MEANX = 8  # the mean excess return and the sum of its squared deviations (a rate per bar)
_SSX = 9
_DD = 10  # the maximum drawdown of a lane not wiped out (before the NOISE rule)
_S = 11  # 4 rows: the sums of the returns block by block, then 4 rows: the growth (the blocks of all the bars)
STATE_ROWS = 19
"""Rows of per-lane state after the returns in the scratch array (:func:`lane_scratch`)."""

_MARGIN = 1.0 + 1e-12  # well above the 2^-52 relative rounding error of (ratio * peak) * _MARGIN
_RANGE = 1e100  # the drawdown test is proven for values in [1 / _RANGE, _RANGE] (no underflow, no overflow)


@njit(cache=True)
def lane_scratch(n_bars):
    """The scratch array :func:`score_lanes_nb` needs for ``n_bars`` bars: the returns, then ``STATE_ROWS`` rows of
    per-lane figures (allocate it once per thread or chunk and reuse it for every block of genomes)."""
    return np.empty((n_bars + STATE_ROWS, LANES))


@njit(cache=True)
def _blocks_shared(rets, st, rf, n, summed):
    """The sums of every lane of ``n`` bars: the scalar kernel's four blocks, walked side by side (vectors of lanes),
    into the rows ``_MEAN`` to ``_SSX`` of ``st``. ``summed``: the blocks' sums and growth are in the rows from
    ``_S`` already (added up bar by bar in the first pass, each block's in its order)."""
    per_bar = rf.shape[0] > 1
    c = 0.0 if per_bar else rf[0]
    size = n // 4
    zero = vsplat(0.0, LANES)
    s0 = s1 = s2 = s3 = zero
    g0 = g1 = g2 = g3 = vsplat(1.0, LANES)
    if summed:
        s0, s1, s2, s3 = (
            vload(st[_S], LANES),
            vload(st[_S + 1], LANES),
            vload(st[_S + 2], LANES),
            vload(st[_S + 3], LANES),
        )
        g0, g1, g2, g3 = (
            vload(st[_S + 4], LANES),
            vload(st[_S + 5], LANES),
            vload(st[_S + 6], LANES),
            vload(st[_S + 7], LANES),
        )
    for j in range(0 if summed else size):
        r0 = vload(rets[j], LANES)
        r1 = vload(rets[j + size], LANES)
        r2 = vload(rets[j + 2 * size], LANES)
        r3 = vload(rets[j + 3 * size], LANES)
        s0 = s0 + r0
        s1 = s1 + r1
        s2 = s2 + r2
        s3 = s3 + r3
        g0 = g0 * (r0 + 1.0)
        g1 = g1 * (r1 + 1.0)
        g2 = g2 * (r2 + 1.0)
        g3 = g3 * (r3 + 1.0)
    for i in range(n if summed else 4 * size, n):
        r = vload(rets[i], LANES)
        s3 = s3 + r
        g3 = g3 * (r + 1.0)
    mean = ((s0 + s1) + (s2 + s3)) / n
    vstore(st[_MEAN], mean)
    vstore(st[_GROWTH], (g0 * g1) * (g2 * g3))
    q0 = q1 = q2 = q3 = zero
    w0 = w1 = w2 = w3 = zero
    if not per_bar:  # pass 2: deviations, and the losses of r - c
        for j in range(size):
            r0 = vload(rets[j], LANES)
            r1 = vload(rets[j + size], LANES)
            r2 = vload(rets[j + 2 * size], LANES)
            r3 = vload(rets[j + 3 * size], LANES)
            q0 = q0 + (r0 - mean) * (r0 - mean)
            q1 = q1 + (r1 - mean) * (r1 - mean)
            q2 = q2 + (r2 - mean) * (r2 - mean)
            q3 = q3 + (r3 - mean) * (r3 - mean)
            y0 = r0 - c
            y1 = r1 - c
            y2 = r2 - c
            y3 = r3 - c
            w0 = w0 + vsel(y0 < 0.0, y0 * y0, zero)
            w1 = w1 + vsel(y1 < 0.0, y1 * y1, zero)
            w2 = w2 + vsel(y2 < 0.0, y2 * y2, zero)
            w3 = w3 + vsel(y3 < 0.0, y3 * y3, zero)
        for i in range(4 * size, n):
            r = vload(rets[i], LANES)
            q3 = q3 + (r - mean) * (r - mean)
            y = r - c
            w3 = w3 + vsel(y < 0.0, y * y, zero)
        vstore(st[_SS], (q0 + q1) + (q2 + q3))
        vstore(st[_DOWN], (w0 + w1) + (w2 + w3))
        return
    # a rate per bar: _excess_moments (its mean, then deviations and losses of r - rf_i; the scalar kernel's losses of
    # r - 0 are overwritten by those, so they are not computed here)
    x0 = x1 = x2 = x3 = zero
    for j in range(size):
        x0 = x0 + (vload(rets[j], LANES) - rf[j])
        x1 = x1 + (vload(rets[j + size], LANES) - rf[j + size])
        x2 = x2 + (vload(rets[j + 2 * size], LANES) - rf[j + 2 * size])
        x3 = x3 + (vload(rets[j + 3 * size], LANES) - rf[j + 3 * size])
    for i in range(4 * size, n):
        x3 = x3 + (vload(rets[i], LANES) - rf[i])
    mean_x = ((x0 + x1) + (x2 + x3)) / n
    e0 = e1 = e2 = e3 = zero
    for j in range(size):
        r0 = vload(rets[j], LANES)
        r1 = vload(rets[j + size], LANES)
        r2 = vload(rets[j + 2 * size], LANES)
        r3 = vload(rets[j + 3 * size], LANES)
        q0 = q0 + (r0 - mean) * (r0 - mean)
        q1 = q1 + (r1 - mean) * (r1 - mean)
        q2 = q2 + (r2 - mean) * (r2 - mean)
        q3 = q3 + (r3 - mean) * (r3 - mean)
        y0 = r0 - rf[j]
        y1 = r1 - rf[j + size]
        y2 = r2 - rf[j + 2 * size]
        y3 = r3 - rf[j + 3 * size]
        e0 = e0 + (y0 - mean_x) * (y0 - mean_x)
        e1 = e1 + (y1 - mean_x) * (y1 - mean_x)
        e2 = e2 + (y2 - mean_x) * (y2 - mean_x)
        e3 = e3 + (y3 - mean_x) * (y3 - mean_x)
        w0 = w0 + vsel(y0 < 0.0, y0 * y0, zero)
        w1 = w1 + vsel(y1 < 0.0, y1 * y1, zero)
        w2 = w2 + vsel(y2 < 0.0, y2 * y2, zero)
        w3 = w3 + vsel(y3 < 0.0, y3 * y3, zero)
    for i in range(4 * size, n):
        r = vload(rets[i], LANES)
        q3 = q3 + (r - mean) * (r - mean)
        y = r - rf[i]
        e3 = e3 + (y - mean_x) * (y - mean_x)
        w3 = w3 + vsel(y < 0.0, y * y, zero)
    vstore(st[_SS], (q0 + q1) + (q2 + q3))
    vstore(st[_DOWN], (w0 + w1) + (w2 + w3))
    vstore(st[_MEANX], mean_x)
    vstore(st[_SSX], (e0 + e1) + (e2 + e3))


@njit(cache=True)
def _blocks_masked(rets, st, rf, n_bars):
    """The sums when the lanes' lengths differ: bar by bar, each lane's accumulator of a block taking the bar's term
    only where the lane's block holds the bar (a select), so it adds the scalar kernel's terms in its order."""
    per_bar = rf.shape[0] > 1
    c = 0.0 if per_bar else rf[0]
    nb = vload(st[_N], LANES)
    b1 = vload(st[_SIZE], LANES)
    b2 = b1 * 2.0
    b3 = b1 * 3.0
    zero = vsplat(0.0, LANES)
    s0 = s1 = s2 = s3 = x0 = x1 = x2 = x3 = zero
    g0 = g1 = g2 = g3 = vsplat(1.0, LANES)
    for i in range(n_bars):
        fi = float(i)
        a0, a1, a2, a3 = fi < b1, fi < b2, fi < b3, fi < nb
        in0, in1, in2, in3 = a0, a1 & ~a0, a2 & ~a1, a3 & ~a2
        r = vload(rets[i], LANES)
        s0 = vsel(in0, s0 + r, s0)
        s1 = vsel(in1, s1 + r, s1)
        s2 = vsel(in2, s2 + r, s2)
        s3 = vsel(in3, s3 + r, s3)
        y = r + 1.0
        g0 = vsel(in0, g0 * y, g0)
        g1 = vsel(in1, g1 * y, g1)
        g2 = vsel(in2, g2 * y, g2)
        g3 = vsel(in3, g3 * y, g3)
        if per_bar:
            x = r - rf[i]
            x0 = vsel(in0, x0 + x, x0)
            x1 = vsel(in1, x1 + x, x1)
            x2 = vsel(in2, x2 + x, x2)
            x3 = vsel(in3, x3 + x, x3)
    mean = ((s0 + s1) + (s2 + s3)) / nb
    mean_x = ((x0 + x1) + (x2 + x3)) / nb
    vstore(st[_MEAN], mean)
    vstore(st[_GROWTH], (g0 * g1) * (g2 * g3))
    q0 = q1 = q2 = q3 = w0 = w1 = w2 = w3 = e0 = e1 = e2 = e3 = zero
    for i in range(n_bars):
        fi = float(i)
        a0, a1, a2, a3 = fi < b1, fi < b2, fi < b3, fi < nb
        in0, in1, in2, in3 = a0, a1 & ~a0, a2 & ~a1, a3 & ~a2
        r = vload(rets[i], LANES)
        d = (r - mean) * (r - mean)
        q0 = vsel(in0, q0 + d, q0)
        q1 = vsel(in1, q1 + d, q1)
        q2 = vsel(in2, q2 + d, q2)
        q3 = vsel(in3, q3 + d, q3)
        y = r - (rf[i] if per_bar else c)
        z = vsel(y < 0.0, y * y, zero)
        w0 = vsel(in0, w0 + z, w0)
        w1 = vsel(in1, w1 + z, w1)
        w2 = vsel(in2, w2 + z, w2)
        w3 = vsel(in3, w3 + z, w3)
        if per_bar:
            e = (y - mean_x) * (y - mean_x)
            e0 = vsel(in0, e0 + e, e0)
            e1 = vsel(in1, e1 + e, e1)
            e2 = vsel(in2, e2 + e, e2)
            e3 = vsel(in3, e3 + e, e3)
    vstore(st[_SS], (q0 + q1) + (q2 + q3))
    vstore(st[_DOWN], (w0 + w1) + (w2 + w3))
    vstore(st[_MEANX], mean_x)
    vstore(st[_SSX], (e0 + e1) + (e2 + e3))


@njit(cache=True)
def _drawdown_exact(values, st):
    """The scalar kernel's drawdown, dividing on every bar where some lane's peak changes, into row ``_DD``: for the
    blocks where the skipping test is not proven (a lane with a NaN, an infinity or a value outside ``[1 / _RANGE,
    _RANGE]``). The running peak, the lowest value since, and the least ratio ``low / peak`` of the closed stretches:
    ``min(0, min(ratio, low / peak) - 1)``."""
    peak = vload(values[0], LANES)
    low = peak
    ratio = vsplat(1.0, LANES)
    for i in range(1, values.shape[0]):
        v = vload(values[i], LANES)
        new = v > peak
        if vany(new):
            ratio = vsel(new, vmin(ratio, low / peak), ratio)
        low = vmin(vsel(new, v, low), v)
        peak = vsel(new, v, peak)
    vstore(st[_DD], vmin(vsplat(0.0, LANES), vmin(ratio, low / peak) - 1.0))


@njit(cache=True)
def score_lanes_nb(values, n_lanes, init_cash, ann_factor, rf, scratch, out):
    """Score ``n_lanes`` genomes' value paths at once: ``out[l]`` receives what
    :func:`~genetic_sizer.backtest.kernels.spot.score_row_nb` writes into a row for the path ``values[:, l]``, bit
    for bit (the module's docstring says how).

    Parameters
    ----------
    values : float64 (n_bars, LANES), C-contiguous, n_bars >= 1
        The value paths lane-innermost: ``values[i, l]`` is genome ``l``'s value at bar ``i``'s close. The lanes from
        ``n_lanes`` on are padding (a partial last block): computed alongside, never written, and they do not
        change the others' figures.
    n_lanes : int
        Lanes to score, ``1 <= n_lanes <= LANES``.
    init_cash, ann_factor, rf :
        As for :func:`~genetic_sizer.backtest.kernels.spot.metrics_genome_nb` (``init_cash > 0``; ``rf`` per bar,
        shape (n_bars,), or one rate, shape (1,)).
    scratch : float64 (>= n_bars + STATE_ROWS, LANES), C-contiguous
        Working memory (:func:`lane_scratch`), overwritten; allocated once by the caller, so a parallel loop over
        blocks of genomes allocates nothing per block.
    out : float64 (>= n_lanes, > SCORE_NONFINITE)
        Row ``l`` gets the metrics in the order of ``METRIC_NAMES`` and the non-finite flag at ``SCORE_NONFINITE``;
        its other columns (the turnover sum is the caller's) are left as they were.
    """
    n_bars = values.shape[0]
    if values.shape[1] != LANES or scratch.shape[1] != LANES or scratch.shape[0] < n_bars + STATE_ROWS:
        raise ValueError("score_lanes_nb: values must be (n_bars, LANES) and scratch (n_bars + STATE_ROWS, LANES)")
    if n_bars < 1 or n_lanes < 1 or n_lanes > LANES or out.shape[0] < n_lanes or out.shape[1] <= SCORE_NONFINITE:
        raise ValueError("score_lanes_nb: needs n_bars >= 1, 1 <= n_lanes <= LANES and out (n_lanes, > nonfinite)")
    rets = scratch[:n_bars]
    st = scratch[n_bars:]
    # one pass over the bars: the returns from init_cash, the finiteness flag, each lane's least and greatest value
    # and the drawdown (see _drawdown_exact for the rule; here its divisions are skipped where they cannot change the
    # result). A lane whose value reaches 0 or below is wiped out (its least value says so): it is measured up to
    # that bar, whose return is recomputed below with the value counted as 0; its later returns are never used.
    prev = vsplat(init_cash, LANES)
    bad = vsplat(0.0, LANES)  # becomes NaN at the first infinite or NaN value
    least = vsplat(np.inf, LANES)
    most = vsplat(-np.inf, LANES)
    peak = vload(values[0], LANES)
    low = peak
    ratio = vsplat(1.0, LANES)
    ratio_m = ratio * _MARGIN
    size = n_bars // 4
    for q in range(4):  # the scalar kernel's blocks of all the bars (the last with the tail): their sums, bar by bar
        s = vsplat(0.0, LANES)
        g = vsplat(1.0, LANES)
        for i in range(q * size, n_bars if q == 3 else (q + 1) * size):
            v = vload(values[i], LANES)
            bad = bad + (v - v)
            least = vmin(least, v)
            most = vsel(v > most, v, most)
            r = (v - prev) / prev
            vstore(rets[i], r)
            s = s + r
            g = g * (r + 1.0)
            prev = v
            # a changed peak may set a new least ratio (low / peak < ratio) only where low < ratio * peak * _MARGIN:
            # a superset, proven for lanes whose values all lie in [1 / _RANGE, _RANGE] (the others are redone
            # below); elsewhere min(ratio, low / peak) is ratio (rounding is monotone), so the division is skipped
            new = v > peak
            if vany(new & ~(low >= ratio_m * peak)):
                ratio = vsel(new, vmin(ratio, low / peak), ratio)
                ratio_m = ratio * _MARGIN
            low = vmin(vsel(new, v, low), v)  # v where the peak changes (min(v, v) is v), else min(low, v)
            peak = vsel(new, v, peak)
        vstore(st[_S + q], s)
        vstore(st[_S + 4 + q], g)
    vstore(st[_DD], vmin(vsplat(0.0, LANES), vmin(ratio, low / peak) - 1.0))
    fin = bad == 0.0
    vstore(st[_FIN], vsel(fin, vsplat(1.0, LANES), vsplat(0.0, LANES)))
    exact = fin & (least >= 1.0 / _RANGE) & (most <= _RANGE)
    vstore(st[_N], vsel(exact, vsplat(1.0, LANES), vsplat(0.0, LANES)))  # (a flag here; the lengths below)
    nb, size, cut = st[_N], st[_SIZE], st[_CUT]
    n_min = n_bars
    n_max = 0
    redo = False
    wiped_any = False
    for l in range(LANES):
        n = n_bars
        cut[l] = -1.0
        if l < n_lanes:
            for i in range(0 if nb[l] > 0 else n_bars):  # a lane of values in [1 / _RANGE, _RANGE] is not wiped out
                if values[i, l] <= 0:
                    n = i + 1
                    cut[l] = i
                    p = values[i - 1, l] if i > 0 else init_cash
                    rets[i, l] = (0.0 - p) / p
                    wiped_any = True
                    break
            redo |= nb[l] == 0.0 and cut[l] < 0  # a lane not wiped out whose skipped divisions are not proven
            n_min = min(n_min, n)
            n_max = max(n_max, n)
        nb[l] = n
        size[l] = n // 4
    if redo:
        _drawdown_exact(values, st)
    if n_min == n_max:
        _blocks_shared(rets, st, rf, n_min, not wiped_any)  # the first pass's sums, unless a return was redone
    else:
        _blocks_masked(rets, st, rf, n_bars)
    per_bar = rf.shape[0] > 1
    c = 0.0 if per_bar else rf[0]
    for l in range(n_lanes):
        n = int(nb[l])
        wiped = st[_CUT, l] >= 0
        mean = st[_MEAN, l]
        ss = st[_SS, l]
        mean_ex = st[_MEANX, l] if per_bar else mean - c
        ss_ex = st[_SSX, l] if per_bar else ss
        max_dd = 0.0 if wiped else st[_DD, l]
        row = out[l]
        finish_metrics(
            mean, st[_GROWTH, l], ss, mean_ex, ss_ex, st[_DOWN, l], max_dd, wiped, n, values[n_bars - 1, l],
            init_cash, ann_factor, row,
        )  # fmt: skip
        row[SCORE_NONFINITE] = 0.0 if st[_FIN, l] > 0 else 1.0

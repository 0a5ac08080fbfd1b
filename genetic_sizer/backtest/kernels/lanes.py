"""The spot simulation for a block of genomes side by side: SIMD across genomes.

:func:`simulate_block_nb` simulates a block of genomes at once with the semantics of
:func:`genetic_sizer.backtest.kernels.spot.simulate_genome_nb` (vectorbt's ``from_orders``, target percent, cash
sharing, ``call_seq='auto'``, calendar masks, weight schedules and drift bands) for genomes without an active
rebalancing policy. The state is laid out lane-innermost (``pos[k, l]``, ``cash[l]``, the targets
``w[s * n_assets + k, l]``) and walked eight lanes at a time as explicit vectors
(:mod:`genetic_sizer.backtest.kernels.simd`: one ``<8 x double>``, an AVX-512 register): every per-asset step is one
vector operation per quantity, without branches (selects), and what a bar sums over the assets (the value, the order
totals, the largest buy) stays in registers. Each lane does exactly the arithmetic of one scalar genome, in the same
order, so a genome's figures never depend on the other genomes of its block, on the block's width, on the number of
threads or on the population.

Per bar and vector of lanes: the value ``cash[l] + sum_k pos[k, l] * close[i, k]`` (summed in asset order k = 0..n-1
in every lane); when some lane of the vector trades (each genome follows its own calendar mask; a segment start is a
rebalance bar for all; a drift band is tested lane by lane on the value before trading), the fast rebalance of
:func:`genetic_sizer.backtest.kernels.orders._rebalance_fast` lane-wise (approximate order values, the total and the
largest buy, every other order as a plain fill, the checks that make the case common), the largest buy cut down to the
cash if it must be, and the new positions and value. Only the lanes off the common case go through scalar code: a
largest buy that is not a plain buy (``_execute``) or, for a lane whose fast case fails (a tolerance could snap or
reject an order, the cash runs out, the value is <= ``ABS_TOL``, a NaN),
:func:`~genetic_sizer.backtest.kernels.orders._rebalance_exact` on that lane's gathered column. Lanes that do not trade
on the bar keep their state; a vector none of whose lanes trades is only valued.

Why explicit vectors: Numba compiles without LLVM's SLP vectorizer (``NUMBA_SLP_VECTORIZE`` is 0 by default) and
marks no array ``noalias``, so plain loops over the lanes vectorize only through the loop vectorizer's run-time
overlap checks, and only from 16 lanes (the loops of the kernel before this one: 18 ns per lane and asset-bar in
blocks of 8, 7.8 in blocks of 16, 3.9-4.0 in blocks of 32 to 64). With explicit vectors the width no longer matters:
2.2-2.3 ns per lane and asset-bar from 8 to 64 lanes on daily rebalancing (20 assets x 2,000 bars, one thread,
``experiments/bench_lanes.py``; the scalar kernel 8.1). Where it goes (16 lanes): the two valuations and the per-bar
bookkeeping 0.3 ns, the order values 0.17, the plain fills 1.3 (about 50 vector instructions per asset and vector at
the hardware's throughput: both a sell's and a buy's fill computed and selected, the checks that they are plain fills,
vectorbt's tolerant add; the division costs nothing measurable), the largest buy 0.2, the per-lane outcome 0.25
(variants that stop after a pass, so approximate). Vectors of 4 lanes cost 1.4x as much per lane, of 16 the same as 8.

Drift bands fire on different bars in different lanes: a vector runs its order passes only when one of its own lanes
trades, so a band costs the same in any block (a 5% band: 0.5 ns per lane and asset-bar at 8 to 48 lanes; 1.0-1.8 in
the kernel before this one, 0.5-0.8 for the scalar kernel).

No fast-math here: every lane's sums are taken in a fixed order with IEEE arithmetic and no fused multiply-adds (the
vectors' operations carry no fast-math flags, so LLVM may not contract them), so the figures are also the same on
every instruction set.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

from genetic_sizer.backtest.kernels.orders import ABS_TOL, MIN_SIZE, REL_TOL, _execute, _rebalance_exact
from genetic_sizer.backtest.kernels.simd import vabs, vbits, vget, vloadat, vmax, vmin, vsel, vsplat, vstoreat

LANES = 32
"""The widest block (genomes simulated side by side)."""
UNIT = 8
"""Blocks are whole units of this many lanes (the last one padded by repeating its last genome), one explicit vector
each; a population of fewer than ``UNIT // 2`` genomes is one block as it is (padded to a vector inside the kernel)."""
_W = 8
"""Lanes per explicit vector (:mod:`genetic_sizer.backtest.kernels.simd`): one AVX-512 register of doubles (4 lanes
cost 1.4x as much per lane, 16 the same as 8)."""
_THREADS = numba.config.NUMBA_NUM_THREADS  # a constant: numba.get_num_threads() in a kernel defeats its cache


@njit(cache=True)
def lane_blocks(n):
    """How many blocks :func:`block_genomes` splits ``n`` genomes into: blocks of 1 to ``LANES // UNIT`` units (the
    time per lane does not depend on the width: 2.2-2.3 ns per lane and asset-bar on daily rebalancing from 8 to 64
    lanes), at least one per thread Numba may run (``numba.config.NUMBA_NUM_THREADS``, fixed when compiled) where
    there are units enough and, where the units allow, a multiple of them (a parallel loop hands each thread as many
    blocks). The split only decides the speed: a genome's figures do not depend on it."""
    if n < UNIT // 2:
        return 1
    units = (n + UNIT - 1) // UNIT
    per_block = LANES // UNIT
    n_blocks = max((units + per_block - 1) // per_block, min(_THREADS, units))
    even = (n_blocks + _THREADS - 1) // _THREADS * _THREADS
    return even if even <= units else n_blocks


@njit(cache=True)
def block_genomes(lane, b, n_blocks):
    """Block ``b`` of ``n_blocks`` (:func:`lane_blocks`) of the genomes ``lane``: ``(gs, n_real)``, the genome of each
    lane (its first ``n_real`` lanes; the padding repeats the last of them) and how many are real."""
    n = lane.shape[0]
    if n < UNIT // 2:
        return lane.copy(), n
    units = (n + UNIT - 1) // UNIT
    lo = b * units // n_blocks * UNIT
    hi = (b + 1) * units // n_blocks * UNIT
    gs = np.empty(hi - lo, dtype=np.int64)
    for j in range(hi - lo):
        gs[j] = lane[min(lo + j, n - 1)]
    return gs, min(hi, n) - lo


@njit(cache=True, inline="always")
def _vadd(a, b):
    """:func:`genetic_sizer.backtest.kernels.orders._add` (vectorbt's add_nb) lane by lane, the same result for every
    input. The wider tolerance of operands of opposite signs is taken where ``a * b`` is negative or NaN (a zero times
    an infinity, whose signs differ too; a NaN operand makes a NaN sum either way); where the product misses a sign
    change (a zero and a finite operand, a product that underflows to -0.0) both tolerances give the same result
    (``|a + b| = |b|`` against ``max(1e-9 |b|, 1e-12)``, or ``max(|a|, |b|) > 1e-3`` dwarfs them both)."""
    s = a + b
    differ = ~(a * b >= 0.0)
    tol = vsel(differ, vmax(REL_TOL * vmax(vabs(a), vabs(b)), ABS_TOL), vsplat(ABS_TOL, a))
    return vsel(vabs(s) <= tol, vsplat(0.0, a), s)


@njit(cache=True, inline="always")
def _vsnap(a):
    """``0.0 if _is_zero(a) else a`` lane by lane (a position or cash within ``ABS_TOL`` of zero counts as zero)."""
    return vsel(vabs(a) <= ABS_TOL, vsplat(0.0, a), a)


@njit(cache=True, inline="always")
def _vclose(a, b):
    """:func:`genetic_sizer.backtest.kernels.orders._is_close` lane by lane."""
    finite = (vabs(a) < np.inf) & (vabs(b) < np.inf)
    return finite & ((a == b) | (vabs(a - b) <= vmax(REL_TOL * vmax(vabs(a), vabs(b)), ABS_TOL)))


@njit(cache=True, inline="always")
def _vvalue(close, i, pos, l0, cash):
    """The value ``cash + sum_k pos[k, l] * close[i, k]`` of the lanes ``l0 .. l0 + W - 1``, summed in asset order."""
    acc = vsplat(0.0, _W)
    for k in range(pos.shape[0]):
        acc = acc + vloadat(pos, (k, l0), _W) * close[i, k]
    return cash + acc


@njit(cache=True, error_model="numpy")
def simulate_block_nb(
    close, weights, gs, rows, segment_starts, masks, mask_of, thresholds, fees, slippage, init_cash, longonly,
    value_out, rebalanced_out, traded_out, turnover_out, lanes_out,
):  # fmt: skip
    """Simulate genomes ``gs`` (int64 (nl,), none with an active policy; :func:`block_genomes` gives at most
    :data:`LANES`, the kernel takes any number, computing whole vectors of eight) side by side.

    Genome ``gs[l]``'s outputs go to row ``rows[l]`` of ``value_out`` (n_rows, n_bars), ``rebalanced_out`` (n_rows,
    n_bars), ``traded_out`` (n_rows,) and, when it has ``n_bars`` columns (it may have none), ``turnover_out`` (n_rows,
    n_bars): what :func:`genetic_sizer.backtest.kernels.spot.simulate_genome_nb` writes and returns for that genome.
    ``value_out`` or ``rebalanced_out`` with no columns is not written. ``lanes_out`` (n_vectors, n_bars, 8),
    C-contiguous, when it has rows (it may have none; then at least ``ceil(nl / 8)``): the values once more, bar-major
    per vector of eight lanes, one vector store per vector and bar (``lanes_out[l // 8, i, l % 8]`` is lane ``l``'s
    value at bar ``i``; the lanes past ``nl`` of the last vector repeat genome ``gs[nl - 1]``'s path), the layout
    :func:`genetic_sizer.backtest.kernels.lane_metrics.score_lanes_nb` scores from (the fused scorer passes no value
    rows and no flags: their scalar stores, two per lane and bar, are about a fifth of the time on monthly rebalancing).
    ``close``, ``weights``, ``segment_starts``, ``masks``, ``mask_of``, ``thresholds``, ``fees``, ``slippage``,
    ``init_cash``, ``longonly`` as for :func:`genetic_sizer.backtest.kernels.spot.simulate_population_nb`; the drift
    band is that of :func:`~genetic_sizer.backtest.kernels.spot.simulate_genome_nb`, tested lane by lane on the bars a
    lane does not already trade, on the value before trading (skipped when no lane of the block has a band). Returns
    how many (lane, bar) rebalances took the exact sequence instead of the fast case.
    """
    n_bars, n_assets = close.shape
    n_segments = segment_starts.shape[0]
    nl = gs.shape[0]
    nv = (nl + _W - 1) // _W * _W  # whole vectors: the lanes past nl repeat the last genome and write nothing
    per_bar = turnover_out.shape[1] > 0
    write_rows = value_out.shape[1] > 0
    write_flags = rebalanced_out.shape[1] > 0
    write_lanes = lanes_out.shape[0] > 0
    if write_lanes and (lanes_out.shape[0] * _W < nl or lanes_out.shape[1] != n_bars or lanes_out.shape[2] != _W):
        raise ValueError("simulate_block_nb: lanes_out must be (>= ceil(nl / 8), n_bars, 8)")
    w = np.empty((n_segments * n_assets, nv))  # each lane's targets: row s * n_assets + k
    band = np.empty((n_segments, nv))  # each lane's drift band (inf: none)
    pos = np.zeros((n_assets, nv))
    new_pos = np.empty((n_assets, nv))  # the fast case's positions, kept once the lane's case is known to hold
    ovs = np.empty((n_assets, nv))  # approximate order values
    cash = np.full(nv, init_cash)
    traded = np.empty(nv)
    traded_sum = np.zeros(nv)
    long_only = np.empty(nv)  # 1.0: long-only
    trade_f = np.empty(nv)  # 1.0: the lane's calendar (or a segment start) trades on this bar
    long_only_b = np.empty(nv, dtype=np.bool_)
    mask_row = np.empty(nv, dtype=np.int64)
    gather = np.empty((3, _W))  # the largest buys' targets, positions and prices
    one = np.empty(1)  # one position, for the scalar order helpers
    col_w = np.empty(n_assets)  # one lane's column, for _rebalance_exact
    col_pos = np.empty(n_assets)
    order_value = np.empty(n_assets)
    sells = np.empty(n_assets, dtype=np.int64)
    buys = np.empty(n_assets, dtype=np.int64)
    for l in range(nv):
        g = gs[min(l, nl - 1)]
        long_only_b[l] = longonly[g]
        long_only[l] = 1.0 if longonly[g] else 0.0
        mask_row[l] = mask_of[g]
        for s in range(n_segments):
            band[s, l] = thresholds[g, s]
            for k in range(n_assets):
                w[s * n_assets + k, l] = weights[g, s, k]
    if per_bar:
        for l in range(nl):
            turnover_out[rows[l], :] = 0.0
    any_band = False
    for s in range(n_segments):
        for l in range(nv):
            any_band |= band[s, l] < np.inf
    buy_factor = 1.0 + slippage
    sell_factor = 1.0 - slippage
    fee_factor = 1.0 + fees
    zero = vsplat(0.0, _W)
    none_set = zero > zero
    n_exact = 0
    seg = -1
    next_start = 0
    for i in range(n_bars):
        started = i == next_start
        if started:
            seg += 1
            next_start = segment_starts[seg + 1] if seg + 1 < n_segments else n_bars
        row0 = seg * n_assets
        for l in range(nv):
            trade_f[l] = 1.0 if (started or masks[mask_row[l], i]) else 0.0
        for l0 in range(0, nv, _W):
            cash_v = vloadat(cash, l0, _W)
            v = _vvalue(close, i, pos, l0, cash_v)  # the value before trading
            trade = vloadat(trade_f, l0, _W) > 0.0
            if any_band:  # the drift test: some |deviation| >= x * V  <=>  the largest (NaN skipped) >= x * V
                dev = vsplat(-1.0, _W)
                for k in range(n_assets):
                    c = close[i, k]
                    d = vabs(vloadat(pos, (k, l0), _W) * c - vloadat(w, (row0 + k, l0), _W) * v)
                    dev = vsel(d > dev, d, dev)
                b = vloadat(band, (seg, l0), _W)
                trade = trade | ((dev >= b * v) & (b < np.inf) & (v > 0.0))
            bits = vbits(trade)
            if write_flags:
                for j in range(min(_W, nl - l0)):
                    rebalanced_out[rows[l0 + j], i] = (bits >> j) & 1
            if bits != 0:
                # 2. approximate order values, the total of the buys and the largest buy (the last index among equals)
                total_buy = zero
                max_buy = zero
                k_max = vsplat(-1.0, _W)
                bad = ~(v > ABS_TOL)  # the value is <= ABS_TOL or some order value is NaN
                for k in range(n_assets):
                    ov = vloadat(w, (row0 + k, l0), _W) * v - vloadat(pos, (k, l0), _W) * close[i, k]
                    vstoreat(ovs, (k, l0), ov)
                    is_buy = ov > 0.0
                    total_buy = total_buy + vsel(is_buy, ov, zero)
                    better = is_buy & (ov >= max_buy)
                    max_buy = vsel(better, ov, max_buy)
                    k_max = vsel(better, vsplat(float(k), _W), k_max)
                    bad = bad | (ov != ov)
                # 3. every order but the largest buy as a plain sell or buy (_rebalance_fast's loop); the largest
                # buy's units, position and price kept for step 5
                lo = vloadat(long_only, l0, _W) > 0.0
                rare = none_set  # some order other than the largest buy is not a plain fill
                proceeds = zero
                paid = zero
                trd = zero
                for k in range(n_assets):
                    price = close[i, k]
                    sell_price = price * sell_factor
                    buy_price = price * buy_factor
                    p0 = vloadat(pos, (k, l0), _W)
                    p = _vsnap(p0)
                    size = vloadat(w, (row0 + k, l0), _W) * v
                    size = size / price
                    size = size - p
                    is_sell = size < 0.0
                    is_buy = size > 0.0
                    other = k_max != float(k)
                    neg = -size
                    units = vsel(lo, vmin(p, neg), neg)
                    acq = units * sell_price
                    got = acq + -(acq * fees)
                    req = size * buy_price
                    cost = req + req * fees
                    moves = is_sell | is_buy
                    # not a plain fill: the approximate order's sign disagrees, or a sell's or buy's units are below
                    # 2 * MIN_SIZE, or a sell's cash is not above both tolerances (got > REL_TOL * acq and got >
                    # ABS_TOL, one comparison with their max: the same for NaN); one flag, fewer mask operations
                    unfit = (vloadat(ovs, (k, l0), _W) > 0.0) ^ is_buy
                    unfit = unfit | (moves & ~(vsel(is_sell, units, size) >= 2 * MIN_SIZE))
                    unfit = unfit | (is_sell & ~(got > vmax(REL_TOL * acq, ABS_TOL)))
                    rare = rare | (other & (unfit if price > 0 else ~none_set))
                    moved = _vadd(p, vsel(is_sell, -units, size))
                    proceeds = proceeds + vsel(is_sell & other, got, zero)
                    paid = paid + vsel(is_buy & other, cost, zero)
                    trd = trd + vsel(moves & other, vsel(is_sell, acq, req), zero)
                    vstoreat(new_pos, (k, l0), vsel(other, vsel(moves, moved, p), p0))
                # 4. which lanes the fast case covers: the cash after the sells pays every buy but the largest
                c = _vsnap(cash_v) + proceeds
                covered = (total_buy - max_buy) * buy_factor * fee_factor <= c * (1.0 - 1e-7)
                no_buy = k_max < 0.0
                fast = trade & ~bad & ~rare & (no_buy | covered)  # its lanes take new_pos in step 8
                # 5. the largest buy, last in vectorbt's order, cut down to the cash if it must be (_buy_fast): its
                # target, position (untouched by step 3) and price gathered lane by lane (asset 0 for a lane with none)
                for j in range(_W):
                    k = max(int(vget(k_max, j)), 0)
                    gather[0, j] = w[row0 + k, l0 + j]
                    gather[1, j] = pos[k, l0 + j]
                    gather[2, j] = close[i, k]
                at_price = vloadat(gather, (2, 0), _W)
                at_p = _vsnap(vloadat(gather, (1, 0), _W))
                at_size = vloadat(gather, (0, 0), _W) * v
                at_size = at_size / at_price
                at_size = at_size - at_p
                buy_cash = _vadd(c, -paid)  # the cash after the sells and the other buys
                cb = _vsnap(buy_cash)
                adj_price = at_price * buy_factor
                req = at_size * adj_price
                total_req = req + req * fees
                full = (total_req <= cb) | _vclose(total_req, cb)
                max_req = cb / fee_factor
                final_size = vsel(full, at_size, max_req / adj_price)
                final_req = vsel(full, total_req, cb)
                buy_plain = (at_size >= 2 * MIN_SIZE) & (cb > 0.0) & (final_size >= 2 * MIN_SIZE)
                buy_pos = _vadd(at_p, final_size)
                # 6. the fast case's outcome; the largest buy through _execute when it is not a plain buy, or
                # vectorbt's exact sequence, lane by lane
                done = fast & no_buy
                bought = fast & buy_plain & ~no_buy
                cash_v = vsel(done, c, vsel(bought, _vadd(cb, -final_req), cash_v))
                trd = vsel(bought, trd + final_size * adj_price, trd)
                bought_bits = vbits(bought)
                if bought_bits != 0:
                    for j in range(_W):
                        if (bought_bits >> j) & 1:
                            new_pos[int(vget(k_max, j)), l0 + j] = vget(buy_pos, j)
                slow_bits = vbits(trade & ~(done | bought))
                if slow_bits != 0:
                    vstoreat(cash, l0, cash_v)
                    vstoreat(traded, l0, trd)
                    fast_bits = vbits(fast)
                    for j in range(_W):
                        if not (slow_bits >> j) & 1:
                            continue
                        l = l0 + j
                        if (fast_bits >> j) & 1:
                            k = int(vget(k_max, j))
                            one[0] = new_pos[k, l]
                            cash[l], t = _execute(
                                0, close[i, k], w[row0 + k, l], vget(v, j), vget(buy_cash, j), one, fees, slippage,
                                long_only_b[l],
                            )  # fmt: skip
                            new_pos[k, l] = one[0]
                            traded[l] += t
                        else:
                            if l < nl:
                                n_exact += 1
                            for k in range(n_assets):
                                col_w[k] = w[row0 + k, l]
                                col_pos[k] = pos[k, l]
                            cash[l], traded[l] = _rebalance_exact(
                                close, i, col_w, vget(v, j), cash[l], col_pos, order_value, sells, buys, fees,
                                slippage, long_only_b[l],
                            )  # fmt: skip
                            for k in range(n_assets):
                                pos[k, l] = col_pos[k]
                    cash_v = vloadat(cash, l0, _W)
                    trd = vloadat(traded, l0, _W)
                # 7. the turnover terms: traded notional over the value before trading, on every rebalance but bar 0's
                term = trd / v
                counts = (trade & (v > 0.0)) if i > 0 else none_set
                vstoreat(traded_sum, l0, vloadat(traded_sum, l0, _W) + vsel(counts, term, zero))
                if per_bar:
                    count_bits = vbits(counts)
                    for j in range(min(_W, nl - l0)):
                        if (count_bits >> j) & 1:
                            turnover_out[rows[l0 + j], i] = vget(term, j)
                # 8. the positions after this bar's orders (the fast lanes': new_pos) and the value at the close
                vstoreat(cash, l0, cash_v)
                acc = zero
                for k in range(n_assets):
                    p = vsel(fast, vloadat(new_pos, (k, l0), _W), vloadat(pos, (k, l0), _W))
                    vstoreat(pos, (k, l0), p)
                    acc = acc + p * close[i, k]
                v = cash_v + acc
            if write_rows:
                for j in range(min(_W, nl - l0)):
                    value_out[rows[l0 + j], i] = vget(v, j)
            if write_lanes:
                vstoreat(lanes_out, (l0 // _W, i, 0), v)
    for l in range(nl):
        traded_out[rows[l]] = traded_sum[l]
    return n_exact

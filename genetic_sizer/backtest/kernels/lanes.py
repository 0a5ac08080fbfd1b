"""The spot simulation for a block of genomes side by side: SIMD across genomes.

:func:`simulate_block_nb` simulates a block of up to :data:`LANES` genomes at once with the semantics of
:func:`genetic_sizer.backtest.kernels.spot.simulate_genome_nb` (vectorbt's ``from_orders``, target percent, cash
sharing, ``call_seq='auto'``, calendar masks, weight schedules and drift bands) for genomes without an active
rebalancing policy. The state is laid out lane-innermost (``pos[k, l]``, ``cash[l]``, the targets ``w[s, k, l]``), so
every per-asset step is a loop over the lanes, which LLVM vectorizes (8 doubles per AVX-512 vector): each lane does
exactly the arithmetic of one scalar genome, in the same order, so a genome's figures never depend on the other genomes
of its block, on the block's width, on the number of threads or on the population.

Per bar: the value ``cash[l] + sum_k pos[k, l] * close[i, k]`` (summed in asset order k = 0..n-1 in every lane); on a
bar where some lane trades (each genome follows its own calendar mask; a segment start is a rebalance bar for all),
the fast rebalance of :func:`genetic_sizer.backtest.kernels.orders._rebalance_fast` lane-wise with selects (approximate
order values, the total and the largest buy, every other order as a plain fill, the checks that make the case common),
then,
per lane in scalar code, the largest buy (cut down to the cash if it must be) or, for a lane whose fast case fails (a
tolerance could snap or reject an order, the cash runs out, the value is <= ``ABS_TOL``, a NaN),
:func:`~genetic_sizer.backtest.kernels.orders._rebalance_exact` on that lane's gathered column. Lanes that do not trade
on the bar keep their state.

Why blocks of 32 to 48 rather than 8: Numba compiles without LLVM's SLP vectorizer (``NUMBA_SLP_VECTORIZE`` is 0 by
default) and marks no array ``noalias``, so only the loop vectorizer can vectorize the lane loops, with run-time checks
that the arrays do not overlap, and it does not for fewer than 16 lanes (LLVM unrolls a loop of 8 fully first). Time
per lane and asset-bar on daily rebalancing (20 assets x 2,000 bars, one thread, :func:`simulate_block_nb` called
on blocks of each width): 1 lane 40 ns, 8 lanes 17, 16 lanes 7.8, 32 lanes 4.1, 40-56 lanes
4.0, 64 lanes 5.0; the scalar kernel 8.1. Hence :data:`UNIT` and :data:`LANES`. About a fifth of the rest is the
per-lane scalar step (the order of each lane through ``_execute`` or ``_rebalance_exact``, the branches that pick it);
the lane loops' run-time overlap checks run once per asset and pass.

The passes run over every lane of the block whenever one lane trades (a lane that does not trade computes and keeps
nothing). Blocks of one calendar trade together; drift bands, which fire on different bars in different lanes, make a
block run its passes for one lane (a 5% band: 1.4 ns per lane and asset-bar against 0.5-0.8 for the scalar kernel).
Running the passes over the range of lanes that trade instead stops LLVM from vectorizing them (8-37 ns, measured).

No fast-math here: every lane's sums are taken in a fixed order with IEEE arithmetic and no fused multiply-adds, so the
figures are also the same on every instruction set.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

from genetic_sizer.backtest.kernels.orders import ABS_TOL, MIN_SIZE, REL_TOL, _execute, _is_close, _rebalance_exact

LANES = 48
"""The widest block (genomes simulated side by side)."""
UNIT = 16
"""Blocks are whole units of this many lanes (the last one padded by repeating its last genome), so that the lane loops
run in vector code with no scalar remainder; a population of fewer than ``UNIT // 2`` genomes is one block as it is."""
_THREADS = numba.config.NUMBA_NUM_THREADS  # a constant: numba.get_num_threads() in a kernel defeats its cache


@njit(cache=True)
def lane_blocks(n):
    """How many blocks :func:`block_genomes` splits ``n`` genomes into: blocks of 2 or 3 units (32 or 48 lanes, the
    fastest widths: 4.0-4.1 ns per lane and asset-bar on daily rebalancing against 7.8 at 16 lanes and 5.0 at 64), at
    least one per thread Numba may run (``numba.config.NUMBA_NUM_THREADS``, fixed when compiled) and, where the units
    allow, a multiple of them (a parallel loop hands each thread as many blocks). The split only decides the speed: a
    genome's figures do not depend on it."""
    if n < UNIT // 2:
        return 1
    units = (n + UNIT - 1) // UNIT
    per_block = LANES // UNIT
    n_blocks = (units + per_block - 1) // per_block
    even = (n_blocks + _THREADS - 1) // _THREADS * _THREADS
    if units // even >= 2:
        return even
    return max(n_blocks, min(_THREADS, units // 2))


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
def _add_lane(a, b):
    """:func:`genetic_sizer.backtest.kernels.orders._add` (vectorbt's add_nb) with the signs compared as integers, a
    form the loop vectorizer takes; the same result for every input (a NaN operand makes a NaN sum either way)."""
    s = a + b
    sa = np.int64(a > 0) - np.int64(a < 0)
    sb = np.int64(b > 0) - np.int64(b < 0)
    tol = max(REL_TOL * max(abs(a), abs(b)), ABS_TOL) if sa != sb else ABS_TOL
    return 0.0 if abs(s) <= tol else s


@njit(cache=True, inline="always")
def _value(close, i, pos, cash, acc, out):
    """Every lane's value ``cash[l] + sum_k pos[k, l] * close[i, k]`` into ``out``, summed in asset order."""
    for l in range(pos.shape[1]):
        acc[l] = 0.0
    for k in range(pos.shape[0]):
        c = close[i, k]
        for l in range(pos.shape[1]):
            acc[l] += pos[k, l] * c
    for l in range(pos.shape[1]):
        out[l] = cash[l] + acc[l]


@njit(cache=True, error_model="numpy")
def simulate_block_nb(
    close, weights, gs, rows, segment_starts, masks, mask_of, thresholds, fees, slippage, init_cash, longonly,
    value_out, rebalanced_out, traded_out, turnover_out,
):  # fmt: skip
    """Simulate genomes ``gs`` (int64 (nl,), nl <= :data:`LANES`; none with an active policy) side by side.

    Genome ``gs[l]``'s outputs go to row ``rows[l]`` of ``value_out`` (n_rows, n_bars), ``rebalanced_out`` (n_rows,
    n_bars), ``traded_out`` (n_rows,) and, when it has ``n_bars`` columns (it may have none), ``turnover_out`` (n_rows,
    n_bars): what :func:`genetic_sizer.backtest.kernels.spot.simulate_genome_nb` writes and returns for that genome.
    ``close``, ``weights``, ``segment_starts``, ``masks``, ``mask_of``, ``thresholds``, ``fees``, ``slippage``,
    ``init_cash``, ``longonly`` as for :func:`genetic_sizer.backtest.kernels.spot.simulate_population_nb`; the drift
    band is that of :func:`~genetic_sizer.backtest.kernels.spot.simulate_genome_nb`, tested lane by lane on the bars a
    lane does not already trade, on the value before trading (skipped when no lane of the block has a band). Returns
    how many (lane, bar) rebalances took the exact sequence instead of the fast case.
    """
    n_bars, n_assets = close.shape
    n_segments = segment_starts.shape[0]
    nl = gs.shape[0]
    per_bar = turnover_out.shape[1] > 0
    w = np.empty((n_segments, n_assets, nl))  # each lane's targets
    band = np.empty((n_segments, nl))  # each lane's drift band (inf: none)
    dev = np.empty(nl)  # the largest deviation from target of the drift test
    pos = np.zeros((n_assets, nl))
    new_pos = np.empty((n_assets, nl))  # the fast case's positions, kept once the lane's case is known to hold
    ovs = np.empty((n_assets, nl))  # approximate order values
    cash = np.full(nl, init_cash)
    val = np.empty(nl)  # the value before trading
    acc = np.empty(nl)  # a sum over the assets
    total_buy = np.empty(nl)
    max_buy = np.empty(nl)
    k_max = np.empty(nl, dtype=np.int64)  # the largest buy (-1: none)
    bad = np.empty(nl, dtype=np.bool_)  # the value is <= ABS_TOL or some order value is NaN
    rare = np.empty(nl, dtype=np.bool_)  # some order other than the largest buy is not a plain fill
    proceeds = np.empty(nl)
    paid = np.empty(nl)
    traded = np.empty(nl)
    buy_cash = np.empty(nl)  # the largest buy: the cash before it,
    buy_pos = np.empty(nl)  # the position, cash and notional after it as a plain buy,
    buy_left = np.empty(nl)
    buy_traded = np.empty(nl)
    buy_plain = np.empty(nl, dtype=np.bool_)  # and whether it is one
    fast = np.empty(nl, dtype=np.bool_)
    trade = np.empty(nl, dtype=np.bool_)
    long_only = np.empty(nl, dtype=np.bool_)
    mask_row = np.empty(nl, dtype=np.int64)
    traded_sum = np.zeros(nl)
    one = np.empty(1)  # one position, for the scalar order helpers
    col_w = np.empty(n_assets)  # one lane's column, for _rebalance_exact
    col_pos = np.empty(n_assets)
    order_value = np.empty(n_assets)
    sells = np.empty(n_assets, dtype=np.int64)
    buys = np.empty(n_assets, dtype=np.int64)
    for l in range(nl):
        g = gs[l]
        long_only[l] = longonly[g]
        mask_row[l] = mask_of[g]
        for s in range(n_segments):
            band[s, l] = thresholds[g, s]
            for k in range(n_assets):
                w[s, k, l] = weights[g, s, k]
        if per_bar:
            turnover_out[rows[l], :] = 0.0
    any_band = False
    for s in range(n_segments):
        for l in range(nl):
            any_band |= band[s, l] < np.inf
    buy_factor = 1.0 + slippage
    sell_factor = 1.0 - slippage
    fee_factor = 1.0 + fees
    n_exact = 0
    seg = -1
    next_start = 0
    for i in range(n_bars):
        started = i == next_start
        if started:
            seg += 1
            next_start = segment_starts[seg + 1] if seg + 1 < n_segments else n_bars
        for l in range(nl):
            trade[l] = started or masks[mask_row[l], i]
        if any_band:  # the value before trading, and the drift test of the lanes that do not trade already
            _value(close, i, pos, cash, acc, val)
            for l in range(nl):
                dev[l] = -1.0
            for k in range(n_assets):  # some |deviation| >= x * V  <=>  the largest (NaN skipped) >= x * V
                c = close[i, k]
                for l in range(nl):
                    d = abs(pos[k, l] * c - w[seg, k, l] * val[l])
                    dev[l] = d if d > dev[l] else dev[l]
            for l in range(nl):
                trade[l] |= (dev[l] >= band[seg, l] * val[l]) & (band[seg, l] < np.inf) & (val[l] > 0)
        any_trade = False
        for l in range(nl):
            rebalanced_out[rows[l], i] = trade[l]
            any_trade |= trade[l]
        if any_trade:
            # 1. the value before trading: cash + sum(position * close), in asset order
            if not any_band:
                _value(close, i, pos, cash, acc, val)
            for l in range(nl):
                v = val[l]
                total_buy[l] = 0.0
                max_buy[l] = 0.0
                k_max[l] = -1
                bad[l] = not v > ABS_TOL
                rare[l] = False
                proceeds[l] = 0.0
                paid[l] = 0.0
                traded[l] = 0.0
            # 2. approximate order values, the total of the buys and the largest buy (the last index among equals)
            for k in range(n_assets):
                c = close[i, k]
                for l in range(nl):
                    ov = w[seg, k, l] * val[l] - pos[k, l] * c
                    ovs[k, l] = ov
                    is_buy = ov > 0
                    total_buy[l] += ov if is_buy else 0.0
                    better = is_buy & (ov >= max_buy[l])
                    max_buy[l] = ov if better else max_buy[l]
                    k_max[l] = k if better else k_max[l]
                    bad[l] |= ov != ov
            # 3. every order but the largest buy as a plain sell or buy (_rebalance_fast's loop)
            for k in range(n_assets):
                price = close[i, k]
                sell_price = price * sell_factor
                buy_price = price * buy_factor
                for l in range(nl):
                    p0 = pos[k, l]
                    p = 0.0 if abs(p0) <= ABS_TOL else p0
                    size = w[seg, k, l] * val[l]
                    size /= price
                    size -= p
                    is_sell = size < 0
                    is_buy = size > 0
                    other = k != k_max[l]
                    units = min(p, -size) if long_only[l] else -size
                    acq = units * sell_price
                    got = acq + -(acq * fees)
                    plain_sell = (units >= 2 * MIN_SIZE) & (got > REL_TOL * acq) & (got > ABS_TOL)
                    req = size * buy_price
                    cost = req + req * fees
                    plain_buy = size >= 2 * MIN_SIZE
                    plain = ((ovs[k, l] > 0) == is_buy) & (plain_sell | (not is_sell)) & (plain_buy | (not is_buy))
                    rare[l] |= other & (not (plain & (price > 0)))
                    moved = _add_lane(p, -units if is_sell else size)
                    proceeds[l] += got if (is_sell & other) else 0.0
                    paid[l] += cost if (is_buy & other) else 0.0
                    traded[l] += (acq if is_sell else req) if ((is_sell | is_buy) & other) else 0.0
                    new_pos[k, l] = (moved if (is_sell | is_buy) else p) if other else p0
            # 4. which lanes the fast case covers: the cash after the sells pays every buy but the largest
            for l in range(nl):
                c = 0.0 if abs(cash[l]) <= ABS_TOL else cash[l]
                c = c + proceeds[l]
                covered = (total_buy[l] - max_buy[l]) * buy_factor * fee_factor <= c * (1.0 - 1e-7)
                fast[l] = trade[l] & (not bad[l]) & (not rare[l]) & ((k_max[l] < 0) | covered)
                proceeds[l] = c
            for k in range(n_assets):
                for l in range(nl):
                    pos[k, l] = new_pos[k, l] if fast[l] else pos[k, l]
            # 5. the largest buy, last in vectorbt's order, cut down to the cash if it must be (_buy_fast, lane-wise)
            for l in range(nl):
                k = max(k_max[l], 0)
                price = close[i, k]
                c = _add_lane(proceeds[l], -paid[l])  # the cash after the sells and the other buys
                buy_cash[l] = c
                c = 0.0 if abs(c) <= ABS_TOL else c
                p0 = pos[k, l]
                p = 0.0 if abs(p0) <= ABS_TOL else p0
                size = w[seg, k, l] * val[l]
                size /= price
                size -= p
                adj_price = price * buy_factor
                req = size * adj_price
                total_req = req + req * fees
                full = (total_req <= c) | _is_close(total_req, c)
                max_req = c / fee_factor
                final_size = size if full else max_req / adj_price
                final_req = total_req if full else c
                buy_plain[l] = (size >= 2 * MIN_SIZE) & (c > 0) & (final_size >= 2 * MIN_SIZE)
                buy_pos[l] = _add_lane(p, final_size)
                buy_left[l] = _add_lane(c, -final_req)
                buy_traded[l] = final_size * adj_price
            # 6. per lane: the fast case's outcome, the largest buy through _execute when it is not a plain buy, or
            # vectorbt's exact sequence
            for l in range(nl):
                if not trade[l]:
                    continue
                k = k_max[l]
                if fast[l] and k < 0:
                    cash[l] = proceeds[l]
                elif fast[l] and buy_plain[l]:
                    pos[k, l] = buy_pos[l]
                    cash[l] = buy_left[l]
                    traded[l] += buy_traded[l]
                elif fast[l]:
                    one[0] = pos[k, l]
                    cash[l], t = _execute(
                        0, close[i, k], w[seg, k, l], val[l], buy_cash[l], one, fees, slippage, long_only[l]
                    )
                    pos[k, l] = one[0]
                    traded[l] += t
                else:
                    n_exact += 1
                    for k in range(n_assets):
                        col_w[k] = w[seg, k, l]
                        col_pos[k] = pos[k, l]
                    cash[l], traded[l] = _rebalance_exact(
                        close, i, col_w, val[l], cash[l], col_pos, order_value, sells, buys, fees, slippage,
                        long_only[l],
                    )  # fmt: skip
                    for k in range(n_assets):
                        pos[k, l] = col_pos[k]
            # 7. the turnover terms: traded notional over the value before trading, on every rebalance but bar 0's
            for l in range(nl):
                term = traded[l] / val[l]
                counts = trade[l] & (i > 0) & (val[l] > 0)
                traded_sum[l] += term if counts else 0.0
                if per_bar and counts:
                    turnover_out[rows[l], i] = term
        # 8. the value at the close, after this bar's orders (the value before trading when no lane traded)
        if any_trade or not any_band:
            _value(close, i, pos, cash, acc, val)
        for l in range(nl):
            value_out[rows[l], i] = val[l]
    for l in range(nl):
        traded_out[rows[l]] = traded_sum[l]
    return n_exact

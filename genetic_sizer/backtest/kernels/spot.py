"""Pure Numba kernels over arrays: the population simulator and the fitness kernels.

Nothing here knows about pandas, files, vectorbt or Ray. Every kernel is compiled with ``cache=True`` so
later processes (including Ray workers on the same machine) load the compiled code instead of compiling.

Simulation semantics are those of ``vbt.Portfolio.from_orders`` with ``size_type='targetpercent'``,
``cash_sharing=True``, ``call_seq='auto'``, one group per genome, orders at the close, and the default
``update_value=False``. A genome's targets may change over time (a schedule of segments, each with its
own weights, starting on given bars): the size array then holds the active segment's targets on every
rebalance bar, and every segment start is a rebalance bar. A genome may also rebalance on drift (a drift
band): on any bar where some asset's weight differs from its target by at least the genome's threshold, the
whole portfolio trades back to target as on a calendar rebalance; the reference for that is vectorbt's
``Portfolio.from_order_func`` with a pre-segment function that decides (see ``genetic_sizer.backtest.vbt``). On a
rebalance bar, for one genome:

1. the group value is ``cash + sum(position * close)`` at the bar's close;
2. every asset's order value is approximated as ``w * value - position * close`` and the assets are
   ordered by that value with vectorbt's stable insertion argsort, so sells run before buys;
3. each order targets ``w * value / close`` units (the value of step 1 is not updated between orders);
   buys pay ``close * (1 + slippage)`` plus ``fees`` on the notional and are cut down to what the cash
   can pay; sells receive ``close * (1 - slippage)`` less fees;
4. vectorbt's tolerances are reproduced: quantities within 1e-12 of zero are zero, a buy whose cost is
   within 1e-9 relative of the cash is filled in full, and an order for fewer than ``min_size`` units
   (vectorbt's default ``min_size=1e-8``) is rejected.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from genetic_sizer.backtest.kernels.figures import (  # noqa: F401 (CAP and NOISE: still spot.CAP, spot.NOISE)
    CAP,
    METRIC_NAMES,
    NOISE,
    SCORE_NONFINITE,
    SCORE_TRADED,
    SCORE_WIDTH,
    finish_metrics,
)
from genetic_sizer.backtest.kernels.lane_metrics import LANES, lane_scratch, score_lanes_nb
from genetic_sizer.backtest.kernels.lanes import block_genomes, lane_blocks, simulate_block_nb
from genetic_sizer.backtest.kernels.orders import (  # noqa: F401 (the tolerances: still spot.MIN_SIZE etc.)
    _FASTMATH,
    ABS_TOL,
    MIN_SIZE,
    REL_TOL,
    _execute,
    _group_value,
    _insertion_argsort,
    _rebalance_exact,
    _rebalance_fast,
)
from genetic_sizer.backtest.kernels.rules import (
    P_MAX_TURNOVER,
    P_MIN_TRADE,
    P_MIN_VALUE,
    exposure_nb,
    policy_active,
    trade_rule_nb,
)


@njit(cache=True, error_model="numpy")
def _rebalance_policy(close, i, w, value, cash, position, order_value, seq, fees, slippage, longonly, policy):
    """One rebalance under a policy (see :mod:`genetic_sizer.backtest.kernels.rules`): the targets scaled by the
    exposure, the trades filtered and capped by :func:`~genetic_sizer.backtest.kernels.rules.trade_rule_nb` on the
    value before trading, then vectorbt's exact sequence (target-percent orders of the adjusted targets, in ascending
    order of approximate order value, a stable insertion sort; the dropped assets place no order). Returns ``(cash,
    traded notional, exposure)``; ``value`` <= 0 places no order."""
    n_assets = position.shape[0]
    e = exposure_nb(close, i, w, policy, 1.0)
    if not value > 0:
        return cash, 0.0, e
    desired = np.empty(n_assets)
    trades = np.empty(n_assets)
    adj = np.empty(n_assets)  # first the fill price over the close, then the adjusted targets
    for k in range(n_assets):
        desired[k] = e * w[k] * value - position[k] * close[i, k]
        adj[k] = 1.0 + slippage if desired[k] > 0 else 1.0 - slippage
    trade_rule_nb(desired, adj, value, policy[P_MIN_TRADE], policy[P_MIN_VALUE], policy[P_MAX_TURNOVER], trades)
    for k in range(n_assets):
        held = position[k] * close[i, k]
        adj[k] = (held + trades[k]) / value if trades[k] != 0.0 else held / value
        order_value[k] = adj[k] * value - held  # vectorbt's approx_order_value_nb
        seq[k] = k
    _insertion_argsort(order_value, seq, n_assets)  # vectorbt's insertion_argsort_nb: stable, ascending
    traded = 0.0
    for j in range(n_assets):
        k = seq[j]
        if trades[k] != 0.0:
            cash, t = _execute(k, close[i, k], adj[k], value, cash, position, fees, slippage, longonly)
            traded += t
    return cash, traded, e


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def simulate_genome_nb(
    close,
    schedule,
    segment_starts,
    rebalance,
    thresholds,
    fees,
    slippage,
    init_cash,
    longonly,
    value_out,
    rebalanced_out,
    position,
    order_value,
    sells,
    buys,
    turnover_out,
    policy,
):
    """Simulate one genome; writes its value at every bar into ``value_out``, whether it rebalanced on each
    bar into ``rebalanced_out``, and returns the turnover sum. When ``turnover_out`` has ``n_bars`` elements (it
    may have none), bar ``i``'s term of the turnover sum is written into it (0.0 on the bars that count nothing).

    ``schedule`` (n_segments, n_assets) holds the genome's targets per segment: from bar
    ``segment_starts[s]`` on (``segment_starts[0] == 0``, strictly increasing) the targets are
    ``schedule[s]``. A static genome is one segment. The portfolio rebalances on the bars of the
    ``rebalance`` mask, on every segment start, and, within segment ``s``, on every bar where some asset's
    weight has drifted from its target by at least ``thresholds[s]`` (``inf``: never); cash and positions
    carry across segments.

    The drift test (the drift band) is taken at the bar's close on the value before trading ``V = cash +
    sum(position * close)``: the bar rebalances when ``V > 0`` and ``|position_k * close_k - w_k * V| >= x * V``
    for some asset ``k``, i.e. ``|current weight - target| >= x``. Written with products rather than
    divisions, the test is the same in the vectorbt reference, so both engines decide alike (a threshold of 0
    rebalances on every bar with a positive value). A triggered bar trades the whole portfolio back to target,
    exactly as a calendar rebalance.

    The turnover sum is, over every rebalance bar after the first, the traded notional (at fill prices)
    divided by the group value before trading. Scratch arrays ``position``, ``order_value``, ``sells`` and
    ``buys`` (length n_assets) are passed in so the bar loop never allocates.

    vectorbt executes a rebalance in ascending order of approximate order value (a stable insertion
    argsort, O(n^2) a bar). The same result is reached in O(n): sells never depend on cash, so their
    relative order does not matter; a buy's cost is its order value times ``(1 + slippage) * (1 + fees)``,
    so when the cash covers every buy but the largest, all of those fill in full in any order and only
    the largest (the last one in vectorbt's sequence; the highest index among equals) can be cut.
    Those independent fills are summed into the cash once, instead of threading every order through the
    cash balance (a serial dependency that dominated the run time). When the cash cannot cover them, the
    buys run one by one in vectorbt's exact sorted sequence. Floating-point sums are therefore taken in
    a different order than vectorbt's, which moves values by ~1e-15 relative.

    A rebalance first tries _rebalance_fast, which handles the common case without data-dependent
    branches (mispredicted branches, not arithmetic, dominated the run time: ~2.8x on daily rebalancing);
    anything it does not cover (near-zero quantities, rejected orders, cash running out) goes to
    _rebalance_exact.

    Each bar takes four steps, each cheap and allocation-free: which targets are active (the segment
    index advances on a segment's start bar: one integer compare a bar), whether to trade (the policy's
    mask or a segment start; otherwise, when the segment has a drift band, the drift test on the value
    before trading, which then also serves as the bar's value if nothing trades), the trade, and the value
    at the close. They are written out in the loop rather than as inlined helpers returning tuples: an
    inlined ``_rebalance`` helper alone cost 7-11% on the static path, measured against this layout in one
    process.

    ``policy`` (None, or a row of :mod:`genetic_sizer.backtest.kernels.rules`): with one, every rebalance runs
    :func:`_rebalance_policy` (volatility targeting, minimum trade, maximum turnover; vectorbt's exact sequence) and
    the drift band measures each asset against the targets of the last rebalance, ``e * w`` (``e`` the exposure it
    chose): ``|position_k * close_k - e * w_k * V| >= x * V``. None is pruned when compiled: the path without a
    policy is the one above.
    """
    n_bars, n_assets = close.shape
    cash = init_cash
    traded_sum = 0.0
    for k in range(n_assets):
        position[k] = 0.0
    rebalanced_out[:] = False  # set on the bars that trade, below
    per_bar = turnover_out.shape[0] > 0
    if per_bar:
        turnover_out[:] = 0.0
    n_segments = segment_starts.shape[0]
    seg = -1  # the active segment; the next one starts at bar next_start (n_bars: no next one)
    next_start = 0
    x = np.inf  # the active segment's drift band
    e_last = 1.0  # the exposure of the last rebalance (a policy's volatility targeting; else 1)
    for i in range(n_bars):
        # 1. which targets are active: the next segment becomes active on its start bar
        started = i == next_start
        if started:
            seg += 1
            next_start = segment_starts[seg + 1] if seg + 1 < n_segments else n_bars
            if thresholds is not None:
                x = thresholds[seg]
        # 2. whether to trade: a bar of the policy, a segment start, or (with a drift band) a drift past it,
        # tested on the value before trading, which is the bar's value when nothing trades
        trade = rebalance[i] or started
        if thresholds is not None:  # pruned when compiled for None: calendar rebalancing pays nothing for it
            if not trade and x < np.inf:
                value = _group_value(cash, position, close, i)
                drifted = False
                if value > 0:
                    xv = x * value
                    ev = value
                    if policy is not None:
                        ev = e_last * value
                    for k in range(n_assets):  # branch-free: vectorized (a boolean OR is faster than a count)
                        drifted |= abs(position[k] * close[i, k] - schedule[seg, k] * ev) >= xv
                if not drifted:
                    value_out[i] = value
                    continue
                trade = True
        if trade:
            rebalanced_out[i] = True
            # 3. trade to the active targets at this bar's close, sized on the value before any order
            value = _group_value(cash, position, close, i)
            w = schedule[seg]
            if policy is not None:
                cash_after, traded, e_last = _rebalance_policy(
                    close, i, w, value, cash, position, order_value, sells, fees, slippage, longonly, policy
                )
            else:
                ok, cash_after, traded = _rebalance_fast(
                    close, i, w, value, cash, position, order_value, fees, slippage, longonly
                )
                if not ok:
                    cash_after, traded = _rebalance_exact(
                        close, i, w, value, cash, position, order_value, sells, buys, fees, slippage, longonly
                    )
            cash = cash_after
            if i > 0 and value > 0:
                term = traded / value
                traded_sum += term
                if per_bar:
                    turnover_out[i] = term
        # 4. the value at the close, after this bar's orders
        value_out[i] = _group_value(cash, position, close, i)
    return traded_sum


@njit(cache=True)
def _simulate_genome_banded_nb(
    close,
    schedule,
    segment_starts,
    rebalance,
    thresholds,
    fees,
    slippage,
    init_cash,
    longonly,
    value_out,
    rebalanced_out,
    position,
    order_value,
    sells,
    buys,
    turnover_out,
    policy,
):
    """:func:`simulate_genome_nb` with ``thresholds`` (n_segments,) when some segment has a drift band, else its
    specialization without the drift test (``thresholds`` None: calendar rebalancing pays nothing for bands); with
    ``policy`` (a row of :mod:`genetic_sizer.backtest.kernels.rules`) when it is active, else without one."""
    drift = False
    for s in range(thresholds.shape[0]):
        drift |= thresholds[s] < np.inf
    if policy is not None:  # pruned when compiled for None
        if policy_active(policy):
            return simulate_genome_nb(
                close, schedule, segment_starts, rebalance, thresholds, fees, slippage, init_cash, longonly,
                value_out, rebalanced_out, position, order_value, sells, buys, turnover_out, policy,
            )  # fmt: skip
    if drift:
        return simulate_genome_nb(
            close, schedule, segment_starts, rebalance, thresholds, fees, slippage, init_cash, longonly, value_out,
            rebalanced_out, position, order_value, sells, buys, turnover_out, None,
        )  # fmt: skip
    return simulate_genome_nb(
        close, schedule, segment_starts, rebalance, None, fees, slippage, init_cash, longonly, value_out,
        rebalanced_out, position, order_value, sells, buys, turnover_out, None,
    )  # fmt: skip


@njit(cache=True)
def lane_split(n_genomes, policy):
    """The genomes the lane kernel simulates (:func:`genetic_sizer.backtest.kernels.lanes.simulate_block_nb`: those
    without an active policy, drift bands or not) and the others (:func:`simulate_genome_nb` one at a time, under
    their policy), as two int64 arrays of genome indices in ascending order."""
    is_lane = np.ones(n_genomes, dtype=np.bool_)
    if policy is not None:  # pruned when compiled for None
        for g in range(n_genomes):
            is_lane[g] = not policy_active(policy[g])
    lane = np.flatnonzero(is_lane)
    rest = np.flatnonzero(~is_lane)
    return lane, rest


@njit(cache=True, parallel=True)
def simulate_population_nb(
    close,
    weights,
    segment_starts,
    masks,
    mask_of,
    thresholds,
    fees,
    slippage,
    init_cash,
    longonly,
    value_out,
    traded_out,
    rebalanced_out,
    policy=None,
):
    """Simulate every genome (first axis of ``weights``) over ``close``, in parallel over genomes.

    The genomes without an active policy (:func:`lane_split`) are simulated side by side in blocks of up to 32
    (:func:`genetic_sizer.backtest.kernels.lanes.simulate_block_nb`, SIMD across genomes; blocks and padding from
    :func:`~genetic_sizer.backtest.kernels.lanes.block_genomes`), in parallel over blocks; the others one by one by
    :func:`simulate_genome_nb`. A genome's figures depend on that genome alone (not on the blocks, the threads or the
    rest of the population); the two paths' sums are taken in other orders (~1e-16 relative apart).

    Parameters
    ----------
    close : float64 (n_bars, n_assets)
    weights : float64 (n_genomes, n_segments, n_assets)
        Each genome's targets per segment; static weights are one segment.
    segment_starts : int64 (n_segments,)
        First bar of each segment: 0 first, strictly increasing, below n_bars.
    masks : bool (n_masks, n_bars)
        Rebalance bars of the calendar policies in use; every segment start is a rebalance bar as well.
    mask_of : int64 (n_genomes,)
        The row of ``masks`` each genome follows (genomes may follow different policies).
    thresholds : float64 (n_genomes, n_segments)
        Each genome's drift band per segment: the bar also rebalances when some asset's weight differs from
        its target by at least this much; ``inf`` for none (calendar rebalancing only).
    fees, slippage, init_cash : float
    longonly : bool (n_genomes,)
        Long-only genomes cap sells at the position, as vectorbt's ``direction='longonly'``.
    value_out : float64 (n_genomes, n_bars)
        Written: portfolio value of each genome at each bar's close. Genome-major, so each genome writes
        one contiguous row.
    traded_out : float64 (n_genomes,)
        Written: per genome, the sum over rebalance bars after the first of traded notional / value.
    rebalanced_out : bool (n_genomes, n_bars)
        Written: whether each genome rebalanced on each bar (policy, segment start or drift).
    policy : float64 (n_genomes, POLICY_WIDTH), optional
        Each genome's rebalancing policy (:mod:`genetic_sizer.backtest.kernels.rules`: volatility targeting, minimum
        trade, maximum turnover); None (default) or rows that are all off: none.
    """
    n_assets = weights.shape[2]
    lane, rest = lane_split(weights.shape[0], policy)
    n_lane = lane.shape[0]
    if n_lane > 0:  # the genomes without an active policy: blocks side by side (the lane kernel)
        n_blocks = lane_blocks(n_lane)
        no_turnover_rows = np.empty((value_out.shape[0], 0))
        no_lanes = np.empty((0, 0, LANES))  # the fused scorer's bar-major values are not wanted here
        for b in prange(n_blocks):
            gs = block_genomes(lane, b, n_blocks)[0]  # a padding lane writes its genome's row again, identically
            simulate_block_nb(
                close, weights, gs, gs, segment_starts, masks, mask_of, thresholds, fees, slippage, init_cash,
                longonly, value_out, rebalanced_out, traded_out, no_turnover_rows, no_lanes,
            )  # fmt: skip
    if rest.shape[0] == 0:
        return
    no_turnover = np.empty(0)  # the per-bar turnover terms are not wanted here
    for j in prange(rest.shape[0]):
        g = rest[j]
        position = np.empty(n_assets)
        order_value = np.empty(n_assets)
        sells = np.empty(n_assets, dtype=np.int64)
        buys = np.empty(n_assets, dtype=np.int64)
        if policy is None:
            traded_out[g] = _simulate_genome_banded_nb(
                close, weights[g], segment_starts, masks[mask_of[g]], thresholds[g], fees, slippage, init_cash,
                longonly[g], value_out[g], rebalanced_out[g], position, order_value, sells, buys, no_turnover, None,
            )  # fmt: skip
        else:
            traded_out[g] = _simulate_genome_banded_nb(
                close, weights[g], segment_starts, masks[mask_of[g]], thresholds[g], fees, slippage, init_cash,
                longonly[g], value_out[g], rebalanced_out[g], position, order_value, sells, buys, no_turnover,
                policy[g],
            )  # fmt: skip


# ---- fitness metrics -----------------------------------------------------------------------------------
@njit(cache=True)
def _return(prev, cur):
    """vectorbt's get_return_nb."""
    if prev == 0:
        if cur == 0:
            return 0.0
        return np.inf * np.sign(cur)
    r = (cur - prev) / prev
    if prev < 0:
        r *= -1
    return r


@njit(cache=True, inline="always")
def _lane_bounds(lo, hi):
    """Four contiguous blocks covering ``[lo, hi)``: block ``q`` starts at ``lo + q * size`` and is ``size`` long;
    the rest ``[lo + 4 * size, hi)`` is the tail, continued by the last block."""
    size = max(hi - lo, 0) // 4
    return size, lo + 4 * size


@njit(cache=True)
def _excess_moments(rets, rf, n):
    """``(mean, sum of squared deviations, sum of squared losses)`` of the excess returns ``rets[i] - rf[i]`` over
    ``[0, n)``, summed in the four blocks of :func:`metrics_genome_nb` (a risk-free rate per bar)."""
    size = n // 4
    s0 = s1 = s2 = s3 = 0.0
    for j in range(size):
        s0 += rets[j] - rf[j]
        s1 += rets[j + size] - rf[j + size]
        s2 += rets[j + 2 * size] - rf[j + 2 * size]
        s3 += rets[j + 3 * size] - rf[j + 3 * size]
    for i in range(4 * size, n):
        s3 += rets[i] - rf[i]
    mean = ((s0 + s1) + (s2 + s3)) / n
    q0 = q1 = q2 = q3 = 0.0
    w0 = w1 = w2 = w3 = 0.0
    for j in range(size):
        x0 = rets[j] - rf[j]
        x1 = rets[j + size] - rf[j + size]
        x2 = rets[j + 2 * size] - rf[j + 2 * size]
        x3 = rets[j + 3 * size] - rf[j + 3 * size]
        q0 += (x0 - mean) * (x0 - mean)
        q1 += (x1 - mean) * (x1 - mean)
        q2 += (x2 - mean) * (x2 - mean)
        q3 += (x3 - mean) * (x3 - mean)
        w0 += x0 * x0 if x0 < 0 else 0.0
        w1 += x1 * x1 if x1 < 0 else 0.0
        w2 += x2 * x2 if x2 < 0 else 0.0
        w3 += x3 * x3 if x3 < 0 else 0.0
    for i in range(4 * size, n):
        x = rets[i] - rf[i]
        q3 += (x - mean) * (x - mean)
        w3 += x * x if x < 0 else 0.0
    return mean, (q0 + q1) + (q2 + q3), (w0 + w1) + (w2 + w3)


@njit(cache=True)
def metrics_genome_nb(values, init_cash, ann_factor, rf, out):
    """Metrics of one value series (vectorbt's definitions on returns from ``init_cash``); see metrics_nb.

    ``rf`` holds the risk-free rate per bar (n_bars,), or one rate for every bar (1,): Sharpe and Sortino are those
    of the excess returns ``r_i - rf_i``. One rate is subtracted where it is used (the mean, and each return in the
    downside sum; the dispersion of ``r - c`` is that of ``r``), so a rate of 0 computes what it computed without
    one, bit for bit; a series of rates has its own pass (:func:`_excess_moments`).

    Written for speed, with results that depend only on the series (the same on every run, thread and caller):

    * each return ``r_i = (v_i - v_{i-1}) / v_{i-1}`` (vectorbt's get_return_nb; every ``v_{i-1}`` here is > 0)
      is divided out once and kept for the second pass (divisions, not additions, bound the loop);
    * the sums (of returns, squared deviations, squared losses) and the compounded growth run over four
      contiguous blocks walked side by side: four independent chains instead of one serial chain. Sums are rounded
      in this fixed order rather than bar by bar (~1e-16 relative);
    * the maximum drawdown divides only where the running peak changes: while the peak ``P`` stands, the lowest
      ``v / P`` is ``min(v) / P`` (a correctly rounded division by a positive number is monotone), so it equals
      ``min(v_i / peak_i - 1)`` bar by bar exactly.
    """
    n_bars = values.shape[0]
    # a portfolio whose value reaches zero or below is gone: it is measured up to that bar, where it is worth 0
    n = n_bars
    wiped = False
    for i in range(n_bars):
        if values[i] <= 0:
            n = i + 1
            wiped = True
            break
    rets = np.empty(n)
    last = 0.0 if wiped else values[n - 1]
    rets[0] = ((last if n == 1 else values[0]) - init_cash) / init_cash
    for i in range(1, n - 1):
        rets[i] = (values[i] - values[i - 1]) / values[i - 1]
    if n >= 2:
        rets[n - 1] = (last - values[n - 2]) / values[n - 2]
    # pass 1: mean return and compounded growth, four blocks of `size` returns side by side, then the tail
    size = n // 4
    s0 = s1 = s2 = s3 = 0.0
    g0 = g1 = g2 = g3 = 1.0
    for j in range(size):
        r0 = rets[j]
        r1 = rets[j + size]
        r2 = rets[j + 2 * size]
        r3 = rets[j + 3 * size]
        s0 += r0
        s1 += r1
        s2 += r2
        s3 += r3
        g0 *= r0 + 1.0
        g1 *= r1 + 1.0
        g2 *= r2 + 1.0
        g3 *= r3 + 1.0
    for i in range(4 * size, n):
        s3 += rets[i]
        g3 *= rets[i] + 1.0
    mean = ((s0 + s1) + (s2 + s3)) / n
    growth = (g0 * g1) * (g2 * g3)
    # pass 2: deviations and downside (of the excess returns r - c for one rate c), in the same blocks
    c = rf[0] if rf.shape[0] == 1 else 0.0
    q0 = q1 = q2 = q3 = 0.0
    w0 = w1 = w2 = w3 = 0.0
    for j in range(size):
        r0 = rets[j]
        r1 = rets[j + size]
        r2 = rets[j + 2 * size]
        r3 = rets[j + 3 * size]
        q0 += (r0 - mean) * (r0 - mean)
        q1 += (r1 - mean) * (r1 - mean)
        q2 += (r2 - mean) * (r2 - mean)
        q3 += (r3 - mean) * (r3 - mean)
        x0 = r0 - c
        x1 = r1 - c
        x2 = r2 - c
        x3 = r3 - c
        w0 += x0 * x0 if x0 < 0 else 0.0
        w1 += x1 * x1 if x1 < 0 else 0.0
        w2 += x2 * x2 if x2 < 0 else 0.0
        w3 += x3 * x3 if x3 < 0 else 0.0
    for i in range(4 * size, n):
        r = rets[i]
        q3 += (r - mean) * (r - mean)
        x = r - c
        w3 += x * x if x < 0 else 0.0
    ss = (q0 + q1) + (q2 + q3)
    down = (w0 + w1) + (w2 + w3)
    if rf.shape[0] == 1:
        mean_ex = mean - c
        ss_ex = ss
    else:
        mean_ex, ss_ex, down = _excess_moments(rets, rf, n)
    # the drawdown (a wiped-out portfolio's is -1): the lowest value while each running peak stands, over that peak
    max_dd = 0.0
    if not wiped:
        peak = values[0]
        low = peak
        ratio = 1.0
        for i in range(1, n):
            x = values[i]
            if x > peak:
                ratio = min(ratio, low / peak)
                peak = x
                low = x
            else:
                low = min(low, x)
        max_dd = min(0.0, min(ratio, low / peak) - 1.0)
    finish_metrics(mean, growth, ss, mean_ex, ss_ex, down, max_dd, wiped, n, last, init_cash, ann_factor, out)


@njit(cache=True, parallel=True)
def metrics_nb(values, init_cash, ann_factor, rf, out):
    """Fitness metrics of every genome, in parallel.

    Parameters
    ----------
    values : float64 (n_genomes, n_bars)
        Portfolio value at each bar's close (genome-major, as written by simulate_population_nb).
    init_cash : float
        Value before the first bar; the first return is ``values[0] / init_cash - 1``.
    ann_factor : float
        Bars per year.
    rf : float64 (n_bars,) or (1,)
        The risk-free rate of each bar (the return cash earned over it), or one rate for every bar.
    out : float64 (len(METRIC_NAMES), n_genomes)
        Written, row by row in the order of ``METRIC_NAMES``.

    Definitions follow vectorbt's returns accessor (``ddof=1``): Sharpe is ``sharpe_ratio(risk_free=rf)``, the mean
    over the standard deviation of the excess returns ``r - rf``, and Sortino is ``sortino_ratio`` of those excess
    returns (``sortino_ratio(required_return=rf)`` for one rate: their mean over the root mean square of their
    negative part); the other metrics are of the returns themselves.
    Where vectorbt would return ``inf``, ``nan`` or a figure inflated by rounding noise for a degenerate
    series, these kernels return finite values that keep the ranking monotone:

    * every metric is clipped to ``[-CAP, CAP]``;
    * Sharpe with zero volatility, Sortino with no downside and Calmar with no drawdown are ``+CAP``,
      ``-CAP`` or 0 by the sign of the mean excess return (Sharpe, Sortino) or of the annualized return (Calmar);
    * zero is judged with the rounding tolerance ``NOISE``: a dispersion or drawdown within it is zero, and
      a ratio whose numerator (mean or annualized return) is within it of zero is 0;
    * a portfolio whose value reaches zero or below at some bar is wiped out (``wiped_out`` = 1): it is
      measured on the returns up to that bar, where its value counts as 0 (a return of -100 %), so its
      total return, annualized return and maximum drawdown are -1 and its Calmar ratio -1.
    """
    n_genomes = values.shape[0]
    for g in prange(n_genomes):
        metrics_genome_nb(values[g], init_cash, ann_factor, rf, out[:, g])


# ---- fused simulate-and-score ----------------------------------------------------------------------------


@njit(cache=True)
def score_row_nb(values, init_cash, ann_factor, rf, row):
    """Score one simulated value path into ``row`` (a row of a scoring kernel's output): its metrics
    (:func:`metrics_genome_nb`, so they equal the two-pass path bit for bit) and the non-finite flag."""
    metrics_genome_nb(values, init_cash, ann_factor, rf, row[: len(METRIC_NAMES)])
    finite = True
    for i in range(values.shape[0]):
        finite &= abs(values[i]) < np.inf  # False for NaN too
    row[SCORE_NONFINITE] = 0.0 if finite else 1.0


RESAMPLE_WIDTH = SCORE_TRADED + 1
"""Columns of a resample's row in the resampled scorers' ``res_out``: ``METRIC_NAMES`` in order, then the resample's
turnover sum (its bars' terms of the turnover sum) at ``SCORE_TRADED``."""


@njit(cache=True)
def resample_genome_nb(values, turnover, init_cash, ann_factor, rf, res_idx, res_ptr, whole, scratch, res_out):
    """Score resamples of one genome's simulated value path: no second simulation.

    The path's bar returns are ``r_0 = values[0] / init_cash - 1`` and ``r_i = values[i] / values[i-1] - 1``
    (written as the metrics write them). Resample ``k`` is the return series ``r[res_idx[res_ptr[k]:res_ptr[k+1]]]``
    (contiguous blocks or stationary-bootstrap draws, chosen in Python): it is compounded from ``init_cash`` into
    ``path`` (``path_j = path_{j-1} * (1 + r_{idx_j})``) and scored by :func:`metrics_genome_nb` (the same
    definitions as the whole window's, drawdowns from the compounded resampled path), with the risk-free rates of
    the same bars (``rf[idx]``; one rate for every bar stays one rate). Its turnover sum is the sum of the drawn bars'
    terms ``turnover[idx]`` (the per-bar terms of the genome's turnover sum).

    ``whole`` is the genome's whole-window metric row (``METRIC_NAMES`` order): a wiped-out genome (its returns
    after the bar it was wiped out on are meaningless) gets that row in every resample, with the turnover sum
    ``sum(turnover) * m / n_bars`` (the whole window's annualized turnover); its fitness is the wiped-out sentinel
    anyway. ``scratch`` (3, n_bars): the returns (divided out once per genome), a resample's path and its rates;
    ``res_out`` (K, RESAMPLE_WIDTH) is written.
    """
    n_bars = values.shape[0]
    n_metrics = SCORE_TRADED
    per_bar_rf = rf.shape[0] > 1
    rets = scratch[0]
    path = scratch[1]
    rf_buf = scratch[2]
    if whole[n_metrics - 1] > 0:  # wiped out
        total = 0.0
        for i in range(n_bars):
            total += turnover[i]
        for k in range(res_ptr.shape[0] - 1):
            for j in range(n_metrics):
                res_out[k, j] = whole[j]
            res_out[k, n_metrics] = total * (res_ptr[k + 1] - res_ptr[k]) / n_bars
        return
    if not per_bar_rf:
        rf_buf[0] = rf[0]
    rets[0] = (values[0] - init_cash) / init_cash
    for i in range(1, n_bars):
        rets[i] = (values[i] - values[i - 1]) / values[i - 1]
    for k in range(res_ptr.shape[0] - 1):
        lo = res_ptr[k]
        m = res_ptr[k + 1] - lo
        v = init_cash
        t = 0.0
        for j in range(m):
            i = res_idx[lo + j]
            v *= 1.0 + rets[i]
            path[j] = v
            t += turnover[i]
            if per_bar_rf:
                rf_buf[j] = rf[i]
        metrics_genome_nb(path[:m], init_cash, ann_factor, rf_buf[: m if per_bar_rf else 1], res_out[k, :n_metrics])
        res_out[k, n_metrics] = t


@njit(cache=True, parallel=True)
def resample_population_nb(values, turnover, init_cash, ann_factor, rf, res_idx, res_ptr, whole, res_out):
    """:func:`resample_genome_nb` of every genome of simulated value paths (the vectorbt engine's), in parallel.

    ``values`` and ``turnover`` (n_genomes, n_bars): each genome's value path and per-bar turnover terms; ``whole``
    (n_genomes, len(METRIC_NAMES)): their whole-window metrics; ``res_out`` (n_genomes, K, RESAMPLE_WIDTH), written.
    """
    n_genomes, n_bars = values.shape
    for g in prange(n_genomes):
        scratch = np.empty((3, n_bars))
        resample_genome_nb(
            values[g], turnover[g], init_cash, ann_factor, rf, res_idx, res_ptr, whole[g], scratch, res_out[g]
        )


@njit(cache=True)
def chunk_bounds(c, n_chunks, n):
    """The items ``[lo, hi)`` of chunk ``c`` of ``n_chunks`` nearly equal chunks of ``n`` items."""
    return c * n // n_chunks, (c + 1) * n // n_chunks


@njit(cache=True)
def _score_block(buf, n_real, init_cash, ann_factor, rf, gs, out):
    """Score the first ``n_real`` lanes of a lane block's values, laid out bar-major per vector of ``LANES`` lanes
    (``buf`` (n_vectors, n_bars, LANES), as :func:`genetic_sizer.backtest.kernels.lanes.simulate_block_nb` writes its
    ``lanes_out``), into ``out[gs[j]]``: what :func:`score_row_nb` writes there, bit for bit, eight paths at a time by
    :func:`~genetic_sizer.backtest.kernels.lane_metrics.score_lanes_nb` straight from ``buf[v]`` (the lanes of a partial
    vector past ``n_real`` hold the block's padding paths: computed alongside, never written)."""
    n_bars = buf.shape[1]
    scratch = lane_scratch(n_bars)
    rows = np.empty((LANES, SCORE_WIDTH))
    for j0 in range(0, n_real, LANES):
        n = min(LANES, n_real - j0)
        score_lanes_nb(buf[j0 // LANES], n, init_cash, ann_factor, rf, scratch, rows)
        for lane in range(n):
            row = out[gs[j0 + lane]]
            for c in range(SCORE_TRADED):
                row[c] = rows[lane, c]
            row[SCORE_NONFINITE] = rows[lane, SCORE_NONFINITE]


@njit(cache=True, parallel=True)
def score_population_nb(
    close,
    weights,
    segment_starts,
    masks,
    mask_of,
    thresholds,
    fees,
    slippage,
    init_cash,
    longonly,
    ann_factor,
    rf,
    n_chunks,
    out,
    res_idx,
    res_ptr,
    res_out,
    policy=None,
):
    """Simulate and score every genome, without a (genomes x bars) array: the fitness path.

    Each genome is simulated by the code of :func:`simulate_population_nb` (a block of genomes side by side by
    :func:`genetic_sizer.backtest.kernels.lanes.simulate_block_nb` into a scratch block of values laid out bar-major per
    vector of eight lanes, one vector store per vector and bar, without value rows or rebalance flags; a genome under
    an active policy by :func:`simulate_genome_nb` into a scratch row of ``n_bars`` values) and scored at once: a
    block's vectors by :func:`genetic_sizer.backtest.kernels.lane_metrics.score_lanes_nb` straight from that layout,
    a scratch row by :func:`score_row_nb` (the code of :func:`metrics_nb`). The figures equal those of simulating the
    population and then scoring its value matrix bit for bit. Without the rows, the flags and a transpose the fused
    scorer runs faster than :func:`simulate_population_nb` (96 genomes x 20 assets x 2,000 bars, one thread: 9.9 against
    12.8-13.0 us per genome monthly, 87-88 against 91 daily; before, 14.6 against 12.5 monthly).

    Parameters
    ----------
    close, weights, segment_starts, masks, mask_of, thresholds, fees, slippage, init_cash, longonly :
        As for :func:`simulate_population_nb`.
    ann_factor : float
        Bars per year.
    rf : float64 (n_bars,) or (1,)
        Risk-free rate per bar, or one for every bar (see :func:`metrics_nb`).
    n_chunks : int
        The genomes are split into this many contiguous chunks (1 <= n_chunks <= n_genomes), the iterations of the
        parallel loop; each chunk allocates its scratch rows once. More chunks than threads balance the load when
        Numba hands chunks out dynamically (``numba.parallel_chunksize(1)``).
    out : float64 (n_genomes, SCORE_WIDTH)
        Written, one row per genome: the metrics in the order of ``METRIC_NAMES`` (see :func:`metrics_nb`), the
        turnover sum at ``SCORE_TRADED`` and the non-finite flag at ``SCORE_NONFINITE``; the other columns are
        padding (left as they were).
    res_idx, res_ptr : int64 (total,), (K + 1,)
        The resamples of the resampled fitness (``robust.resample``): resample ``k`` is the bars
        ``res_idx[res_ptr[k]:res_ptr[k+1]]`` (see :func:`resample_genome_nb`). ``res_ptr = [0]`` (K = 0): none, the
        plain fitness path (nothing more is computed or allocated).
    res_out : float64 (n_genomes, K, RESAMPLE_WIDTH)
        Written when K > 0: each resample's metrics and turnover sum, computed from the genome's one simulated path
        in the same pass (:func:`resample_genome_nb`).
    policy : float64 (n_genomes, POLICY_WIDTH), optional
        Each genome's rebalancing policy, as for :func:`simulate_population_nb` (None: none).
    """
    n_assets = weights.shape[2]
    n_bars = close.shape[0]
    n_res = res_ptr.shape[0] - 1
    n_scratch = n_bars if n_res > 0 else 0
    lane, rest = lane_split(weights.shape[0], policy)
    n_lane = lane.shape[0]
    if n_lane > 0:  # the genomes without an active policy: blocks side by side (the lane kernel)
        n_blocks = lane_blocks(n_lane)
        for b in prange(n_blocks):
            gs, n_real = block_genomes(lane, b, n_blocks)
            nl = gs.shape[0]
            rows = np.arange(nl)
            # the values bar-major per vector of LANES lanes (one vector store per vector and bar), what the lane
            # scorer reads; no value rows and no rebalance flags (not written: no columns)
            buf = np.empty(((nl + LANES - 1) // LANES, n_bars, LANES))
            no_rows = np.empty((nl, 0))
            no_flags = np.empty((nl, 0), dtype=np.bool_)
            traded = np.empty(nl)
            turnover = np.empty((nl, n_scratch))
            scratch = np.empty((3, n_scratch))  # the resamples' returns, path and rates
            path = np.empty(n_scratch)  # one genome's values, gathered for its resamples
            simulate_block_nb(
                close, weights, gs, rows, segment_starts, masks, mask_of, thresholds, fees, slippage, init_cash,
                longonly, no_rows, no_flags, traded, turnover, buf,
            )  # fmt: skip
            _score_block(buf, n_real, init_cash, ann_factor, rf, gs, out)
            for j in range(n_real):
                row = out[gs[j]]
                row[SCORE_TRADED] = traded[j]
                if n_res > 0:
                    vec = buf[j // LANES]
                    for i in range(n_bars):
                        path[i] = vec[i, j % LANES]
                    resample_genome_nb(
                        path, turnover[j], init_cash, ann_factor, rf, res_idx, res_ptr, row, scratch, res_out[gs[j]]
                    )
    n_rest = rest.shape[0]
    if n_rest == 0:
        return
    n_chunks = max(1, min(n_chunks, n_rest))
    for c in prange(n_chunks):
        lo, hi = chunk_bounds(c, n_chunks, n_rest)
        value = np.empty(n_bars)
        rebalanced = np.empty(n_bars, dtype=np.bool_)
        position = np.empty(n_assets)
        order_value = np.empty(n_assets)
        sells = np.empty(n_assets, dtype=np.int64)
        buys = np.empty(n_assets, dtype=np.int64)
        turnover = np.empty(n_scratch)
        scratch = np.empty((3, n_scratch))  # the resamples' returns, path and rates
        for j in range(lo, hi):
            g = rest[j]
            if policy is None:
                traded = _simulate_genome_banded_nb(
                    close, weights[g], segment_starts, masks[mask_of[g]], thresholds[g], fees, slippage, init_cash,
                    longonly[g], value, rebalanced, position, order_value, sells, buys, turnover, None,
                )  # fmt: skip
            else:
                traded = _simulate_genome_banded_nb(
                    close, weights[g], segment_starts, masks[mask_of[g]], thresholds[g], fees, slippage, init_cash,
                    longonly[g], value, rebalanced, position, order_value, sells, buys, turnover, policy[g],
                )  # fmt: skip
            row = out[g]
            score_row_nb(value, init_cash, ann_factor, rf, row)
            row[SCORE_TRADED] = traded
            if n_res > 0:
                resample_genome_nb(
                    value, turnover, init_cash, ann_factor, rf, res_idx, res_ptr, row, scratch, res_out[g]
                )

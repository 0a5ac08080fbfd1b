"""The perpetual-futures account, as Hyperliquid trades it: pure kernels over arrays (Numba).

Nothing here knows about pandas, files, vectorbt or Ray; :mod:`genetic_sizer.backtest.simulate` validates the inputs
and calls these. vectorbt has no perpetuals (its issue #639), so the fast kernel is checked against
:func:`genetic_sizer.backtest.reference.reference_genome`, a plain-Python loop written from the same specification,
and the test suite checks both against hand calculations and a third, independent loop of its own.

The account (cross margin, USD collateral, marked to market every bar). Each genome holds an equity ``E`` and a
signed position ``q_i`` (units) per asset; ``E_0 = init_cash``, no position. Within bar ``t``, in this order:

1. **Mark**: ``E += sum_i q_i * (p_i,t - p_i,t-1)``.
2. **Funding** for the interval (t-1, t] on the positions held during it, at the bar's price:
   ``E -= sum_i q_i * p_i,t * f_i,t`` (a positive rate: longs pay, shorts receive). Row 0 of ``funding`` is never
   charged (nothing is held before bar 0's close). Hyperliquid pays funding every hour at that hour's price: on
   hourly bars that is the bar's close; on coarser bars the loader weights each hour's rate by its hour's close over
   the bar's (:func:`genetic_sizer.data.funding.align_funding`), so ``p_i,t * f_i,t`` is the sum of the hours'
   ``price * rate``. The whole bar's funding is charged before the liquidation test.
3. **Liquidation**, on the positions held before any trade of the bar (Hyperliquid's rules, its documentation's
   "Liquidations" and "Margin tiers"): the account is liquidated when its equity is at or below the maintenance
   margin ``MM = sum_i mm_i(|q_i| * p_i)``, where ``mm_i(N) = max_n (N * r_i,n - d_i,n)`` over the asset's margin
   tiers (one tier: ``N / (2 * max_leverage_i)``; ``r = 0``: no maintenance margin, liquidated only at ``E <= 0``;
   see :mod:`genetic_sizer.data.margin`).

   *Where it is tested.* The exchange liquidates continuously on the mark price. With each bar's ``high`` and
   ``low`` the test is made within the bar at every position's adverse extreme at once (the low for a long, the
   high for a short): ``E_x = E + sum_i q_i * (x_i - p_i,t)`` against ``MM(x)``. Every asset at its worst at the
   same moment is a bound, not a path: a cross-margined account whose assets bottom at different times may
   survive a bar this test liquidates, never the reverse (``E - MM`` falls as each price moves against its
   position, so the bar's true minimum of ``E - MM`` is at or above ``E_x - MM(x)``). Without a bar range the test
   is made at the closes only (``x = p_t``), and a move inside the bar that recovers by its close goes unseen.

   *What is left.* At the liquidation prices ``x``: if ``E_x < 2/3 MM(x)`` the backstop liquidator takes the
   positions and the whole margin, and the value is 0; otherwise the positions are closed through the book at ``x``
   (sells at ``x * (1 - slippage)``, buys at ``x * (1 + slippage)``, paying ``fees`` on the fill notional, counted
   in the fees paid), and the value is ``max(E_x - costs, 0)``. Taking ``x`` for the closing prices is
   conservative too: the exchange's book liquidation starts as soon as ``E`` touches ``MM``, leaving about
   ``MM - costs``, while a price that gaps through the liquidation level (or, here, a bar range that reaches
   past it) leaves less or nothing. The value stays there for the rest of the run, which never trades again.
4. **Rebalance** on a bar of the genome's calendar mask, a segment start, or (with a drift band ``x``) when some
   asset's current weight ``q_i * p_i / (L * E)`` differs from its target ``w_i`` by at least ``x`` (written
   ``|q_i * p_i - w_i * L * E| >= x * L * E``): every target is sized from the same pre-trade equity,
   ``q*_i = w_i * L * E / p_i``, where ``L`` is the gross leverage of the segment the bar is in (a schedule may
   change it from one segment to the next, as a walk-forward's folds do with an evolved leverage: on a segment's
   first bar the targets are sized with that segment's ``L`` from the equity before that bar's trades, and the
   liquidation test before them does not depend on ``L``); the fill is at ``p_i * (1 + slippage)`` for a buy and
   ``p_i * (1 - slippage)`` for a sell (the position is then marked at ``p_i``, so slippage costs
   ``slippage * |dq_i| * p_i``), and each trade pays ``fees * |dq_i| * fill price``. No cash cut-down and no minimum
   order size: margin, not cash, limits size.

A rebalancing policy (``policy``, a row of :mod:`genetic_sizer.backtest.kernels.rules`) changes step 4: the targets
are ``e * w_i * L * E`` with the exposure ``e`` of volatility targeting (1 without; at most ``min(max_leverage) / L``),
the desired trades ``e * w_i * L * E - q_i * p_i`` pass :func:`~genetic_sizer.backtest.kernels.rules.trade_rule_nb` on
the equity ``E`` (minimum trade, maximum turnover), each kept trade ``d_i`` moves the position to ``q_i + d_i / p_i``
and a dropped one leaves it; the drift band then measures against the last rebalance's targets,
``|q_i * p_i - e * w_i * L * E| >= x * L * E``.

The value reported for bar ``t`` is the equity after that bar's fees. Turnover is counted as in the spot
simulator: over the rebalances after the first, traded notional at fill prices divided by the pre-trade equity.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from genetic_sizer.backtest.kernels import spot as _nb
from genetic_sizer.backtest.kernels.rules import P_MAX_TURNOVER, P_MIN_TRADE, P_MIN_VALUE, exposure_nb, trade_rule_nb
from genetic_sizer.backtest.kernels.spot import chunk_bounds, resample_genome_nb, score_row_nb

__all__ = ["maintenance_nb", "score_perp_population_nb", "simulate_perp_genome_nb", "simulate_perp_population_nb"]

_FASTMATH = {
    "reassoc",
    "contract",
}  # as in genetic_sizer.backtest.kernels.spot: lets the per-bar sums over assets vectorize

ACCOUNT_FIELDS = ("funding_paid", "funding_received", "fees_paid")
"""Columns of the population kernel's ``account_out``, in order (amounts in the account's currency, >= 0)."""

# The score row's layout, written out here rather than imported: Numba's cache of this module's kernels is renewed
# only when this file changes, so a layout taken from genetic_sizer.backtest.kernels.spot would stay baked into a
# cached kernel after spot.py changed it (the kernel would write the old columns). The check below fails at import
# instead.
SCORE_TRADED = 8
"""Column of the turnover sum (``genetic_sizer.backtest.kernels.spot.SCORE_TRADED``)."""
SCORE_NONFINITE = 9
"""Column of the non-finite flag (``genetic_sizer.backtest.kernels.spot.SCORE_NONFINITE``)."""
SCORE_ACCOUNT = 10
"""First column of :func:`score_perp_population_nb`'s output after the spot scorer's: ``ACCOUNT_FIELDS`` in order,
then ``SCORE_LIQUIDATED``."""
SCORE_LIQUIDATED = 13
"""Column of the liquidation bar (as a float; -1.0: never)."""
SCORE_WIDTH = 16
"""Columns of a score row (``genetic_sizer.backtest.kernels.spot.SCORE_WIDTH``)."""
if (SCORE_TRADED, SCORE_NONFINITE, SCORE_WIDTH) != (_nb.SCORE_TRADED, _nb.SCORE_NONFINITE, _nb.SCORE_WIDTH) or (
    SCORE_ACCOUNT != SCORE_NONFINITE + 1
    or SCORE_LIQUIDATED != SCORE_ACCOUNT + len(ACCOUNT_FIELDS)
    or SCORE_LIQUIDATED >= SCORE_WIDTH
):  # pragma: no cover - a layout edited in spot.py must be edited here too (which renews this module's cache)
    raise ImportError(
        "genetic_sizer.backtest.kernels.perp: the score row layout differs from "
        "genetic_sizer.backtest.kernels.spot's; update both"
    )


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def simulate_perp_genome_nb(
    close,
    funding,
    has_funding,
    low,
    high,
    has_range,
    schedule,
    segment_starts,
    rebalance,
    thresholds,
    leverage,
    mm_rate,
    tier_rate,
    tier_deduct,
    fees,
    slippage,
    init_cash,
    value_out,
    rebalanced_out,
    position,
    margin_units,
    turnover_out,
    policy=None,
):
    """Simulate one genome's perp account (see the module docstring).

    Parameters
    ----------
    close : float64 (n_bars, n_assets)
    funding : float64 (n_bars, n_assets) or (1, n_assets)
        Row ``t``: the summed funding rates paid in (t-1, t]; read only when ``has_funding``.
    has_funding : bool
    low, high : float64 (n_bars, n_assets) or (1, n_assets)
        Each bar's range; read only when ``has_range`` (the liquidation test within the bar).
    has_range : bool
    schedule : float64 (n_segments, n_assets)
        Targets per segment (static weights: one segment), each of unit gross exposure.
    segment_starts : int64 (n_segments,)
    rebalance : bool (n_bars,)
        The genome's calendar rebalance bars; every segment start rebalances too.
    thresholds : float64 (n_segments,)
        Drift band per segment (``inf``: calendar only).
    leverage : float64 (n_segments,)
        Gross leverage the targets of each segment are sized at (and the drift band measured against).
    mm_rate : float64 (n_assets,)
        Maintenance margin per unit of notional on each asset's first tier, ``1 / (2 * max_leverage)`` (0: none).
    tier_rate, tier_deduct : float64 (n_assets, n_tiers)
        Each asset's margin tiers: the maintenance margin of a notional ``N`` is ``max_n (N * tier_rate[i, n] -
        tier_deduct[i, n])`` (``tier_rate[:, 0]`` is ``mm_rate``, ``tier_deduct[:, 0]`` 0); with one tier
        (``n_tiers`` 1) it is ``N * mm_rate[i]``.
    fees, slippage, init_cash : float
    value_out : float64 (n_bars,)
        Written: the equity after each bar.
    rebalanced_out : bool (n_bars,)
        Written: whether the genome traded on each bar.
    position, margin_units : float64 (n_assets,)
        Scratch: the positions and ``|position| * mm_rate`` (so the bar loop never allocates).
    turnover_out : float64 (n_bars,) or (0,)
        When it has ``n_bars`` elements: written, each bar's term of the turnover sum (0.0 where none is counted).
    policy : float64 (POLICY_WIDTH,), optional
        The genome's rebalancing policy (None, pruned when compiled: none; see the module docstring).

    Returns
    -------
    (turnover sum, funding paid, funding received, fees paid, liquidation bar or -1)

    Notes
    -----
    The equity is kept as ``cash + sum_i q_i * p_i,t`` with ``cash = E - sum_i q_i * p_i`` fixed at each trade and
    debited with funding: the same mark to market as step 1 (``E_t - E_t-1 = sum_i q_i * (p_i,t - p_i,t-1)``), with
    one dot product a bar instead of a difference of prices, and the maintenance margin of one-tier assets as a
    second dot product (``margin_units`` is updated when positions change).
    """
    n_bars, n_assets = close.shape
    tiered = tier_rate.shape[1] > 1
    cash = init_cash
    per_bar = turnover_out.shape[0] > 0
    if per_bar:
        turnover_out[:] = 0.0
    for k in range(n_assets):
        position[k] = 0.0
        margin_units[k] = 0.0
    # with a bar range: the long units (marked at the low) and the short units (at the high), kept at every trade
    longs = np.zeros(n_assets if has_range else 0)
    shorts = np.zeros(n_assets if has_range else 0)
    traded_sum = 0.0
    paid = 0.0
    received = 0.0
    fees_paid = 0.0
    n_segments = segment_starts.shape[0]
    seg = -1
    next_start = 0
    x = np.inf
    lev = 1.0
    e_last = 1.0  # the exposure of the last rebalance (a policy's volatility targeting)
    for i in range(n_bars):
        started = i == next_start
        if started:
            seg += 1
            next_start = segment_starts[seg + 1] if seg + 1 < n_segments else n_bars
            x = thresholds[seg]
            lev = leverage[seg]
        w = schedule[seg]
        # 1. mark: the positions held at this bar's price, and their maintenance margin
        held = 0.0
        margin = 0.0
        for k in range(n_assets):
            p = close[i, k]
            held += position[k] * p
            margin += margin_units[k] * p
        if i > 0:
            # 2. funding for (t-1, t] on those positions
            if has_funding:
                net = 0.0
                out = 0.0
                for k in range(n_assets):
                    pay = position[k] * close[i, k] * funding[i, k]
                    net += pay
                    out += max(pay, 0.0)
                paid += out
                received += max(out - net, 0.0)  # the negative payments, >= 0 up to rounding
                cash -= net
        equity = cash + held
        if i > 0:
            # 3. liquidation, before any trade of the bar: at the closes, or at every position's adverse extreme
            if tiered:
                margin = 0.0
                for k in range(n_assets):
                    margin += maintenance_nb(abs(position[k]) * close[i, k], tier_rate, tier_deduct, k)
            hit = equity <= margin
            at = equity  # the equity and margin at the liquidation prices
            at_margin = margin
            if has_range:
                at = cash
                at_margin = 0.0
                if tiered:
                    for k in range(n_assets):
                        px = low[i, k] if position[k] > 0.0 else high[i, k]
                        at += position[k] * px
                        at_margin += maintenance_nb(abs(position[k]) * px, tier_rate, tier_deduct, k)
                else:  # branch-free, so that it vectorizes: a long at the low, a short at the high
                    for k in range(n_assets):
                        lo = longs[k] * low[i, k]
                        hi = shorts[k] * high[i, k]
                        at += lo + hi
                        at_margin += mm_rate[k] * (lo - hi)
                hit = hit or at <= at_margin
            if hit:
                left = 0.0
                if at > 0.0 and 3.0 * at >= 2.0 * at_margin:  # closed through the book, else the backstop
                    cost = 0.0
                    for k in range(n_assets):
                        px = close[i, k]
                        if has_range:
                            px = low[i, k] if position[k] > 0.0 else high[i, k]
                        fee = fees * (abs(position[k]) * px - slippage * position[k] * px)
                        cost += slippage * abs(position[k]) * px + fee
                        fees_paid += fee
                    left = max(at - cost, 0.0)
                for j in range(i, n_bars):
                    value_out[j] = left
                    rebalanced_out[j] = False
                for k in range(n_assets):
                    position[k] = 0.0
                return traded_sum, paid, received, fees_paid, i
        # 4. rebalance: the calendar, a segment start, or a drift past the band
        trade = rebalance[i] or started
        gross = lev * equity
        if not trade and x < np.inf:
            band = x * gross
            aim = gross
            if policy is not None:
                aim = e_last * gross
            hits = 0
            for k in range(n_assets):
                hits += abs(position[k] * close[i, k] - w[k] * aim) >= band
            trade = hits > 0
        rebalanced_out[i] = trade
        if trade:
            if policy is not None:
                e_last = exposure_nb(close, i, w, policy, lev)
                desired = np.empty(n_assets)
                fill = np.empty(n_assets)
                trades = np.empty(n_assets)
                for k in range(n_assets):
                    desired[k] = e_last * w[k] * gross - position[k] * close[i, k]
                    fill[k] = 1.0 + slippage if desired[k] > 0 else 1.0 - slippage
                pmin, pval, pmax = policy[P_MIN_TRADE], policy[P_MIN_VALUE], policy[P_MAX_TURNOVER]
                trade_rule_nb(desired, fill, equity, pmin, pval, pmax, trades)
            cost = 0.0
            traded = 0.0
            held = 0.0
            for k in range(n_assets):
                p = close[i, k]
                target = w[k] * gross / p
                if policy is not None:
                    target = position[k] + trades[k] / p if trades[k] != 0.0 else position[k]
                dq = target - position[k]
                notional = abs(dq) * p + slippage * dq * p  # at the fill price p * (1 +/- slippage)
                fee = fees * notional
                cost += slippage * abs(dq) * p + fee
                traded += notional
                fees_paid += fee
                position[k] = target
                margin_units[k] = abs(target) * mm_rate[k]
                held += target * p
            if i > 0:
                term = traded / equity
                traded_sum += term
                if per_bar:
                    turnover_out[i] = term
            equity -= cost
            cash = equity - held
            if has_range:  # a loop of its own: the trade loop above stays the one it was before bar ranges
                for k in range(n_assets):
                    longs[k] = max(position[k], 0.0)
                    shorts[k] = min(position[k], 0.0)
        value_out[i] = equity
    return traded_sum, paid, received, fees_paid, -1


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def maintenance_nb(notional, rate, deduct, k):
    """The maintenance margin of a position of ``notional`` (>= 0) in asset ``k`` on margin tiers ``rate``,
    ``deduct`` (n_assets, n_tiers): ``max_n (notional * rate[k, n] - deduct[k, n])``, Hyperliquid's tiered formula
    (see :mod:`genetic_sizer.data.margin`)."""
    m = notional * rate[k, 0] - deduct[k, 0]
    for n in range(1, rate.shape[1]):
        m = max(m, notional * rate[k, n] - deduct[k, n])
    return m


@njit(cache=True, parallel=True)
def simulate_perp_population_nb(
    close,
    funding,
    has_funding,
    low,
    high,
    has_range,
    weights,
    segment_starts,
    masks,
    mask_of,
    thresholds,
    leverage,
    mm_rate,
    tier_rate,
    tier_deduct,
    fees,
    slippage,
    init_cash,
    value_out,
    traded_out,
    rebalanced_out,
    account_out,
    liquidated_out,
    policy=None,
):
    """Simulate every genome's perp account (first axis of ``weights``), in parallel over genomes.

    Parameters
    ----------
    close : float64 (n_bars, n_assets)
    funding : float64 (n_bars, n_assets), or (1, n_assets) when ``has_funding`` is False
    has_funding : bool
    low, high : float64 (n_bars, n_assets), or (1, n_assets) when ``has_range`` is False
    has_range : bool
    weights : float64 (n_genomes, n_segments, n_assets)
    segment_starts : int64 (n_segments,)
    masks : bool (n_masks, n_bars)
        Calendar rebalance masks; genome ``g`` follows ``masks[mask_of[g]]``.
    mask_of : int64 (n_genomes,)
    thresholds : float64 (n_genomes, n_segments)
        Drift bands (``inf``: calendar only).
    leverage : float64 (n_genomes, n_segments)
        Gross leverage of each genome in each segment.
    mm_rate : float64 (n_assets,)
    tier_rate, tier_deduct : float64 (n_assets, n_tiers)
    fees, slippage, init_cash : float
    value_out : float64 (n_genomes, n_bars)
        Written: equity after each bar (genome-major).
    traded_out : float64 (n_genomes,)
        Written: the turnover sum (traded notional / pre-trade equity over the rebalances after the first).
    rebalanced_out : bool (n_genomes, n_bars)
        Written: the bars each genome traded on.
    account_out : float64 (n_genomes, 3)
        Written: funding paid, funding received, fees paid (see ``ACCOUNT_FIELDS``).
    liquidated_out : int64 (n_genomes,)
        Written: the bar each genome was liquidated on, or -1.
    policy : float64 (n_genomes, POLICY_WIDTH), optional
        Each genome's rebalancing policy (:mod:`genetic_sizer.backtest.kernels.rules`); None (default): none.
    """
    n_genomes = weights.shape[0]
    n_assets = weights.shape[2]
    no_turnover = np.empty(0)  # the per-bar turnover terms are not wanted here
    for g in prange(n_genomes):
        position = np.empty(n_assets)
        margin_units = np.empty(n_assets)
        if policy is None:
            traded, paid, received, fees_paid, liq = simulate_perp_genome_nb(
                close, funding, has_funding, low, high, has_range, weights[g], segment_starts, masks[mask_of[g]],
                thresholds[g], leverage[g], mm_rate, tier_rate, tier_deduct, fees, slippage, init_cash, value_out[g],
                rebalanced_out[g], position, margin_units, no_turnover,
            )  # fmt: skip
        else:
            traded, paid, received, fees_paid, liq = simulate_perp_genome_nb(
                close, funding, has_funding, low, high, has_range, weights[g], segment_starts, masks[mask_of[g]],
                thresholds[g], leverage[g], mm_rate, tier_rate, tier_deduct, fees, slippage, init_cash, value_out[g],
                rebalanced_out[g], position, margin_units, no_turnover, policy[g],
            )  # fmt: skip
        traded_out[g] = traded
        account_out[g, 0] = paid
        account_out[g, 1] = received
        account_out[g, 2] = fees_paid
        liquidated_out[g] = liq


@njit(cache=True, parallel=True)
def score_perp_population_nb(
    close,
    funding,
    has_funding,
    low,
    high,
    has_range,
    weights,
    segment_starts,
    masks,
    mask_of,
    thresholds,
    leverage,
    mm_rate,
    tier_rate,
    tier_deduct,
    fees,
    slippage,
    init_cash,
    ann_factor,
    rf,
    n_chunks,
    out,
    res_idx,
    res_ptr,
    res_out,
    policy=None,
):
    """Simulate and score every genome's perp account, without a (genomes x bars) array: the fitness path.

    Each genome is simulated by :func:`simulate_perp_genome_nb` (the same code as
    :func:`simulate_perp_population_nb`) into a scratch row of ``n_bars`` equities and scored from it at once by
    :func:`genetic_sizer.backtest.kernels.spot.metrics_genome_nb`, so the figures equal the two-pass path's bit for bit.

    Parameters
    ----------
    close, funding, has_funding, low, high, has_range, weights, segment_starts, masks, mask_of, thresholds, \
leverage, mm_rate, tier_rate, tier_deduct, fees, slippage, init_cash :
        As for :func:`simulate_perp_population_nb`.
    ann_factor : float
        Bars per year.
    rf : float64 (n_bars,) or (1,)
        Risk-free rate per bar, or one for every bar: Sharpe and Sortino are of the excess returns (see
        :func:`genetic_sizer.backtest.kernels.spot.metrics_nb`).
    n_chunks : int
        Contiguous chunks of genomes, the iterations of the parallel loop (see
        :func:`genetic_sizer.backtest.kernels.spot.score_population_nb`).
    out : float64 (n_genomes, SCORE_WIDTH)
        Written, one row per genome: the columns of :func:`genetic_sizer.backtest.kernels.spot.score_population_nb`,
        then funding paid, funding received and fees paid from ``SCORE_ACCOUNT`` on, and the liquidation bar (-1.0:
        never) at ``SCORE_LIQUIDATED``.
    res_idx, res_ptr, res_out :
        The resampled fitness, as for :func:`genetic_sizer.backtest.kernels.spot.score_population_nb` (K = 0: none):
        each genome's resamples are scored from its one simulated equity path in the same pass
        (:func:`genetic_sizer.backtest.kernels.spot.resample_genome_nb`).
    policy : float64 (n_genomes, POLICY_WIDTH), optional
        Each genome's rebalancing policy, as for :func:`simulate_perp_population_nb` (None: none).
    """
    n_genomes = weights.shape[0]
    n_assets = weights.shape[2]
    n_bars = close.shape[0]
    n_res = res_ptr.shape[0] - 1
    n_scratch = n_bars if n_res > 0 else 0
    for c in prange(n_chunks):
        lo, hi = chunk_bounds(c, n_chunks, n_genomes)
        value = np.empty(n_bars)
        rebalanced = np.empty(n_bars, dtype=np.bool_)
        position = np.empty(n_assets)
        margin_units = np.empty(n_assets)
        turnover = np.empty(n_scratch)
        scratch = np.empty((3, n_scratch))  # the resamples' returns, path and rates
        for g in range(lo, hi):
            if policy is None:
                traded, paid, received, fees_paid, liq = simulate_perp_genome_nb(
                    close, funding, has_funding, low, high, has_range, weights[g], segment_starts, masks[mask_of[g]],
                    thresholds[g], leverage[g], mm_rate, tier_rate, tier_deduct, fees, slippage, init_cash, value,
                    rebalanced, position, margin_units, turnover,
                )  # fmt: skip
            else:
                traded, paid, received, fees_paid, liq = simulate_perp_genome_nb(
                    close, funding, has_funding, low, high, has_range, weights[g], segment_starts, masks[mask_of[g]],
                    thresholds[g], leverage[g], mm_rate, tier_rate, tier_deduct, fees, slippage, init_cash, value,
                    rebalanced, position, margin_units, turnover, policy[g],
                )  # fmt: skip
            row = out[g]
            score_row_nb(value, init_cash, ann_factor, rf, row)
            row[SCORE_TRADED] = traded
            row[SCORE_ACCOUNT] = paid
            row[SCORE_ACCOUNT + 1] = received
            row[SCORE_ACCOUNT + 2] = fees_paid
            row[SCORE_LIQUIDATED] = liq
            if n_res > 0:
                resample_genome_nb(
                    value, turnover, init_cash, ann_factor, rf, res_idx, res_ptr, row, scratch, res_out[g]
                )

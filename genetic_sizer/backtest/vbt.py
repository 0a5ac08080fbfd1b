"""The vectorbt reference of the spot account: the one module of the project that imports vectorbt.

Importing it imports vectorbt, which takes seconds: :mod:`genetic_sizer.backtest.simulate` imports it lazily, inside
the functions that run the reference (``engine="vectorbt"``, :func:`genetic_sizer.backtest.simulate.holdings`).

Calendar rebalancing is ``Portfolio.from_orders`` (see :func:`vbt_portfolio`): on every rebalance bar each asset's
target percent is the active segment's weight, NaN elsewhere, with cash sharing, one group per genome and
``call_seq='auto'``.

A drift band is vectorbt's ``Portfolio.from_order_func``, with the Numba callbacks below (kept at module level so
that Numba can cache them, ``cache=True``, across processes). The pattern is vectorbt 1.x threshold rebalancing with
cash sharing, one group per genome:

* the pre-segment function runs on every bar of every group: it sets the valuation prices to the bar's close
  (``c.last_val_price[col] = c.close[c.i, col]``), takes the group value before trading
  (``get_group_value_ctx_nb``), decides whether the bar rebalances (a bar of the genome's calendar mask, a
  segment start, or a drift past the genome's band), records the decision, and on a rebalance bar sorts the
  call sequence by approximate order value (``sort_call_seq_nb(..., ctx_select=False)``: the arrays it gets
  hold one value per asset of the group, not per global column);
* the order function returns a target-percent order (``order_nb``) for the asset on a rebalance bar, and
  ``order_nothing_nb()`` otherwise.

Written this way, with thresholds of ``inf``, it equals ``Portfolio.from_orders`` with the same targets on the
same bars (tested). The drift test is the one of :func:`genetic_sizer.backtest.kernels.spot.simulate_genome_nb`:
``V > 0`` and ``|position_k * close_k - w_k * V| >= x * V`` for some asset ``k``.

A rebalancing policy (volatility targeting, minimum trade, maximum turnover; see
:mod:`genetic_sizer.backtest.kernels.rules`) is ``from_order_func`` too, with :func:`pre_segment_policy_nb` and
:func:`order_func_policy_nb`: the pre-segment function decides the bar as above (the drift band measured against
the exposure-scaled targets of the last rebalance), computes the exposure and the trades the policy keeps, written
here again from the specification (not calling the kernels' helpers), and sorts the call sequence by the adjusted
target percents; the order function places target-percent orders for the kept assets and nothing for the others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import vectorbt as vbt
from numba import njit
from vectorbt.portfolio import nb as vnb
from vectorbt.portfolio.enums import Direction, SizeType

from genetic_sizer.backtest.kernels import rules as nb_rules
from genetic_sizer.backtest.kernels import spot as nb
from genetic_sizer.data.prices import Prices

__all__ = [
    "order_func_nb",
    "order_func_policy_nb",
    "pre_segment_nb",
    "pre_segment_policy_nb",
    "simulate_vectorbt",
    "vbt_portfolio",
]

TARGET_PERCENT = int(SizeType.TargetPercent)

# vectorbt grows memory with columns: the reference engine simulates at most this many
# (bar x column) cells per from_orders call, i.e. about 8 MB per float64 array it allocates.
VBT_CHUNK_CELLS = 1_000_000


@njit(cache=True)
def pre_segment_nb(c, schedule, starts, masks, thresholds, directions, rebalanced_out):
    """Decide whether bar ``c.i`` rebalances group (genome) ``c.group``; returns ``(targets, trade)``.

    ``schedule`` (n_groups, n_segments, n_assets), ``starts`` (n_segments,), ``masks`` (n_bars, n_groups) the
    calendar bars, ``thresholds`` (n_groups, n_segments) with ``inf`` for no drift band, ``directions``
    (n_groups,) vectorbt's Direction of each genome; ``rebalanced_out`` (n_bars, n_groups) is written.
    """
    g = c.group
    i = c.i
    n = c.group_len
    seg = np.searchsorted(starts, i, side="right") - 1
    w = schedule[g, seg]
    for k in range(n):
        col = c.from_col + k
        c.last_val_price[col] = c.close[i, col]
    value = vnb.get_group_value_ctx_nb(c)
    trade = masks[i, g] or starts[seg] == i
    x = thresholds[g, seg]
    if not trade and x < np.inf and value > 0:
        xv = x * value
        for k in range(n):
            col = c.from_col + k
            if abs(c.last_position[col] * c.close[i, col] - w[k] * value) >= xv:
                trade = True
                break
    rebalanced_out[i, g] = trade
    if trade:
        order_value_out = np.empty(n, dtype=np.float64)
        size_type = np.full(1, TARGET_PERCENT)
        direction = np.full(1, directions[g])
        vnb.sort_call_seq_nb(c, w, size_type, direction, order_value_out, ctx_select=False)
    return w, trade


@njit(cache=True)
def order_func_nb(c, w, trade, fees, slippage, directions, min_size):
    """A target-percent order for ``c.col`` at the close on a rebalance bar, nothing otherwise."""
    if not trade:
        return vnb.order_nothing_nb()
    return vnb.order_nb(
        size=w[c.col - c.from_col],
        price=c.close[c.i, c.col],
        size_type=TARGET_PERCENT,
        direction=directions[c.group],
        fees=fees,
        slippage=slippage,
        min_size=min_size,
    )


@njit(cache=True)
def pre_segment_policy_nb(c, schedule, starts, masks, thresholds, directions, rebalanced_out, policy, e_last, slip):
    """:func:`pre_segment_nb` under a rebalancing policy ``policy`` (n_groups, POLICY_WIDTH); ``e_last`` (n_groups,)
    holds each group's exposure of its last rebalance (1.0 at first), ``slip`` the slippage. Returns ``(adjusted
    targets, kept, trade)``."""
    g = c.group
    i = c.i
    n = c.group_len
    seg = np.searchsorted(starts, i, side="right") - 1
    w = schedule[g, seg]
    for k in range(n):
        col = c.from_col + k
        c.last_val_price[col] = c.close[i, col]
    value = vnb.get_group_value_ctx_nb(c)
    trade = masks[i, g] or starts[seg] == i
    x = thresholds[g, seg]
    if not trade and x < np.inf and value > 0:
        xv = x * value
        ev = e_last[g] * value
        for k in range(n):
            col = c.from_col + k
            if abs(c.last_position[col] * c.close[i, col] - w[k] * ev) >= xv:
                trade = True
                break
    rebalanced_out[i, g] = trade
    adj = np.zeros(n)
    kept = np.zeros(n, dtype=np.bool_)
    if not trade:
        return adj, kept, trade
    pol = policy[g]
    # the exposure: the vol target over the target portfolio's realized volatility (ddof=1), capped
    e = 1.0
    lookback = int(pol[nb_rules.P_LOOKBACK])
    if pol[nb_rules.P_VOL_TARGET] > 0 and i >= lookback:
        rets = np.empty(lookback)
        for j in range(lookback):
            t = i - lookback + 1 + j
            r = 0.0
            for k in range(n):
                col = c.from_col + k
                r += w[k] * (c.close[t, col] / c.close[t - 1, col] - 1.0)
            rets[j] = r
        sigma = np.sqrt(np.sum((rets - rets.mean()) ** 2) / (lookback - 1)) * np.sqrt(pol[nb_rules.P_ANN])
        e = pol[nb_rules.P_CAP] if sigma <= 0 else min(pol[nb_rules.P_CAP], pol[nb_rules.P_VOL_TARGET] / sigma)
    e_last[g] = e
    if not value > 0:
        return adj, kept, False
    # the trades: a minimum, then a cap on their summed notional (scaled together), then the minimum again
    floor = pol[nb_rules.P_MIN_TRADE] * value
    d = np.empty(n)
    held = np.empty(n)
    for k in range(n):
        col = c.from_col + k
        held[k] = c.last_position[col] * c.close[i, col]
        d[k] = e * w[k] * value - held[k]
    at_fill = np.abs(d) * np.where(d > 0, 1.0 + slip, 1.0 - slip)  # the trade's value at its fill price
    for k in range(n):
        kept[k] = d[k] != 0 and abs(d[k]) >= floor and at_fill[k] >= pol[nb_rules.P_MIN_VALUE]
    total = np.sum(np.abs(d) * kept)
    if total > pol[nb_rules.P_MAX_TURNOVER] * value:
        d = d * (pol[nb_rules.P_MAX_TURNOVER] * value / total)
        at_fill = np.abs(d) * np.where(d > 0, 1.0 + slip, 1.0 - slip)
        for k in range(n):
            kept[k] = kept[k] and abs(d[k]) >= floor and at_fill[k] >= pol[nb_rules.P_MIN_VALUE]
    for k in range(n):
        adj[k] = (held[k] + d[k]) / value if kept[k] else held[k] / value
    order_value_out = np.empty(n, dtype=np.float64)
    size_type = np.full(1, TARGET_PERCENT)
    direction = np.full(1, directions[g])
    vnb.sort_call_seq_nb(c, adj, size_type, direction, order_value_out, ctx_select=False)
    return adj, kept, trade


@njit(cache=True)
def order_func_policy_nb(c, adj, kept, trade, fees, slippage, directions, min_size):
    """A target-percent order of the adjusted target for a kept asset on a rebalance bar, nothing otherwise."""
    k = c.col - c.from_col
    if not trade or not kept[k]:
        return vnb.order_nothing_nb()
    return vnb.order_nb(
        size=adj[k],
        price=c.close[c.i, c.col],
        size_type=TARGET_PERCENT,
        direction=directions[c.group],
        fees=fees,
        slippage=slippage,
        min_size=min_size,
    )


def vbt_portfolio(prices: Prices, wc, starts, gmask, thresholds, fees, slippage, init_cash, policy=None):
    """The vectorbt reference for genomes ``wc`` (m, n_segments, n_assets), one group each.

    ``gmask`` (n_bars, m) holds each genome's calendar bars (the segment starts are added here). Without a
    drift band (``thresholds`` None) this is ``from_orders``: on every rebalance bar the size array holds the
    active segment's targets. With ``thresholds`` (m, n_segments) it is ``from_order_func`` with the callbacks of
    this module (:func:`pre_segment_nb`, :func:`order_func_nb`), which decide each bar; with a rebalancing ``policy``
    (m, POLICY_WIDTH) it is ``from_order_func`` with :func:`pre_segment_policy_nb` and :func:`order_func_policy_nb`
    (``thresholds`` then required, ``inf`` for no band). Returns ``(portfolio, tiled close, the bars each genome
    rebalanced on (n_bars, m))``.
    """
    n_assets = prices.n_assets
    m = wc.shape[0]
    tiled = np.tile(prices.close, (1, m))
    close = pd.DataFrame(tiled, index=prices.index)
    longonly = (wc >= 0).all(axis=(1, 2))
    group_by = np.repeat(np.arange(m), n_assets)
    gmask = gmask.copy()
    gmask[starts] = True
    if thresholds is None:
        size = np.full(tiled.shape, np.nan)
        for g in range(m):
            rows = np.flatnonzero(gmask[:, g])
            active = np.searchsorted(starts, rows, side="right") - 1  # segment of each rebalance bar
            size[rows, g * n_assets : (g + 1) * n_assets] = wc[g, active]
        direction = np.where(np.repeat(longonly, n_assets), Direction.LongOnly, Direction.Both)
        pf = vbt.Portfolio.from_orders(
            close=close,
            size=size,
            size_type="targetpercent",
            direction=direction[None, :],
            group_by=group_by,
            cash_sharing=True,
            call_seq="auto",
            fees=fees,
            slippage=slippage,
            init_cash=init_cash,
            min_size=nb.MIN_SIZE,
            freq=None,
        )
        return pf, tiled, gmask
    directions = np.where(longonly, int(Direction.LongOnly), int(Direction.Both)).astype(np.int64)
    rebalanced = np.zeros((prices.n_bars, m), dtype=np.bool_)
    if policy is not None:
        pf = vbt.Portfolio.from_order_func(
            close,
            order_func_policy_nb,
            float(fees),
            float(slippage),
            directions,
            float(nb.MIN_SIZE),
            pre_segment_func_nb=pre_segment_policy_nb,
            pre_segment_args=(
                np.ascontiguousarray(wc),
                np.asarray(starts, dtype=np.int64),
                np.ascontiguousarray(gmask),
                np.ascontiguousarray(thresholds, dtype=np.float64),
                directions,
                rebalanced,
                np.ascontiguousarray(policy, dtype=np.float64),
                np.ones(m),
                float(slippage),
            ),
            group_by=group_by,
            cash_sharing=True,
            init_cash=init_cash,
            freq=None,
        )
        return pf, tiled, rebalanced
    pf = vbt.Portfolio.from_order_func(
        close,
        order_func_nb,
        float(fees),
        float(slippage),
        directions,
        float(nb.MIN_SIZE),
        pre_segment_func_nb=pre_segment_nb,
        pre_segment_args=(
            np.ascontiguousarray(wc),
            np.asarray(starts, dtype=np.int64),
            np.ascontiguousarray(gmask),
            np.ascontiguousarray(thresholds, dtype=np.float64),
            directions,
            rebalanced,
        ),
        group_by=group_by,
        cash_sharing=True,
        init_cash=init_cash,
        freq=None,
    )
    return pf, tiled, rebalanced


def simulate_vectorbt(prices: Prices, w, starts, gmask, thresholds, fees, slippage, init_cash, policy=None):
    """The reference, one group per genome, in bounded chunks of genomes (see :func:`vbt_portfolio`).

    ``w`` (n_genomes, n_segments, n_assets) with segments starting at ``starts``; ``gmask`` (n_bars, n_genomes)
    each genome's calendar bars; ``thresholds`` (n_genomes, n_segments) or None (calendar rebalancing only:
    ``from_orders``); ``policy`` (n_genomes, POLICY_WIDTH) or None: rebalancing policies (see :func:`vbt_portfolio`).
    Returns ``(value, traded, rebalanced, turnover)``, ``turnover`` (n_bars, n_genomes) each bar's
    term of ``traded`` (:func:`_vbt_turnover`).
    """
    n_bars, n_assets = prices.close.shape
    n_genomes = w.shape[0]
    chunk = max(1, VBT_CHUNK_CELLS // (n_bars * n_assets))
    value = np.empty((n_bars, n_genomes), dtype=np.float64)
    traded = np.empty(n_genomes, dtype=np.float64)
    turnover = np.zeros((n_bars, n_genomes), dtype=np.float64)
    rebalanced = np.empty((n_bars, n_genomes), dtype=np.bool_)
    for lo in range(0, n_genomes, chunk):
        hi = min(n_genomes, lo + chunk)
        m = hi - lo
        th = None if thresholds is None else thresholds[lo:hi]
        pol = None if policy is None else policy[lo:hi]
        pf, tiled, reb = vbt_portfolio(prices, w[lo:hi], starts, gmask[:, lo:hi], th, fees, slippage, init_cash, pol)
        value[:, lo:hi] = pf.value().to_numpy().reshape(n_bars, m)
        terms = _vbt_turnover(pf, tiled, reb, m, n_assets)
        traded[lo:hi] = terms.sum(axis=0)
        turnover[1:, lo:hi] = terms
        rebalanced[:, lo:hi] = reb
    return value, traded, rebalanced, turnover


def _vbt_turnover(pf, tiled_close, rebalanced, n_groups, n_assets) -> np.ndarray:
    """The terms of the turnover sum from vectorbt's order records, bars 1 .. n-1 (n_bars - 1, n_groups), the same
    definition as the fast kernel's: on each genome's rebalance bars after the first (``rebalanced`` (n_bars,
    n_groups)), the traded notional divided by the group value before trading (bars where that value is not positive
    count nothing), else 0."""
    rec = pf.orders.values
    cash = pf.cash().to_numpy().reshape(-1, n_groups)  # after each bar's orders
    assets = pf.assets().to_numpy()  # (n_bars, n_columns)
    n_bars = tiled_close.shape[0]
    held = (assets[:-1] * tiled_close[1:]).reshape(n_bars - 1, n_groups, n_assets).sum(axis=2)
    pre_value = cash[:-1] + held  # bars 1 .. n-1, before their orders
    notional = np.zeros((n_bars, n_groups))
    np.add.at(notional, (rec["idx"], rec["col"] // n_assets), rec["size"] * rec["price"])
    counted = rebalanced[1:] & (pre_value > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counted, notional[1:] / pre_value, 0.0)

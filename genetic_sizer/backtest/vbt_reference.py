"""The drift-band reference: Numba callbacks for vectorbt's ``Portfolio.from_order_func``.

Imported only by :mod:`genetic_sizer.backtest.simulate`, lazily (it imports vectorbt, which takes seconds); it is the
part of that module's vectorbt reference that has to be compiled, kept at module level so that Numba can cache
it (``cache=True``) across processes.

The pattern is vectorbt 1.x threshold rebalancing with cash sharing, one group per genome:

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
"""

from __future__ import annotations

import numpy as np
from numba import njit
from vectorbt.portfolio import nb as vnb
from vectorbt.portfolio.enums import SizeType

TARGET_PERCENT = int(SizeType.TargetPercent)


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

"""The order helpers of the spot simulation: vectorbt's ``from_orders`` fills and tolerances for one genome's orders.

Shared by the scalar kernel (:mod:`genetic_sizer.backtest.kernels.spot`, one genome at a time) and the lane kernel
(:mod:`genetic_sizer.backtest.kernels.lanes`, a block of genomes side by side), which both import them from here (the
lane kernel calls :func:`_rebalance_exact` and :func:`_execute` for one lane at a time). The
semantics are those of :mod:`genetic_sizer.backtest.kernels.spot`'s docstring.
"""

from __future__ import annotations

import numpy as np
from numba import njit

REL_TOL = 1e-9  # vectorbt.utils.math_.rel_tol
ABS_TOL = 1e-12  # vectorbt.utils.math_.abs_tol
_FASTMATH = {"reassoc", "contract"}  # reorders the independent sums (valuation, summed fills): ~1.5x on daily
# rebalancing (80 vs 120 ms, 200x20x2000); NaN/inf semantics, which the tolerance checks rely on, are kept
MIN_SIZE = 1e-8  # vectorbt.settings.portfolio["min_size"]: smaller orders (in units) are rejected


@njit(cache=True, inline="always")
def _is_close(a, b):
    """vectorbt's is_close_nb (False for NaN and infinities), written without branches."""
    finite = (abs(a) < np.inf) & (abs(b) < np.inf)
    return finite & ((a == b) | (abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)))


@njit(cache=True, inline="always")
def _is_zero(a):
    """vectorbt's is_close_nb(a, 0.0): for a finite a that is |a| <= ABS_TOL; False for NaN and inf."""
    return abs(a) <= ABS_TOL


@njit(cache=True, inline="always")
def _is_less(a, b):
    """vectorbt's is_less_nb."""
    if _is_close(a, b):
        return False
    return a < b


@njit(cache=True, inline="always")
def _add(a, b):
    """vectorbt's add_nb: a + b, snapped to 0.0 when the two cancel within tolerance.

    For operands of opposite sign |a + b| = ||a| - |b||, so the test is_close(|a|, |b|) reads as below;
    for operands of the same sign it is is_close(a + b, 0).
    """
    s = a + b
    tol = max(REL_TOL * max(abs(a), abs(b)), ABS_TOL) if np.sign(a) != np.sign(b) else ABS_TOL
    return 0.0 if abs(s) <= tol else s


@njit(cache=True, inline="always")
def _units(pos, wk, val, price):
    """Position snapped to zero within 1e-12, and the units a target-percent order trades
    (vectorbt's ``size * value / val_price - position``); ``val`` must be > 0."""
    if _is_zero(pos):
        pos = 0.0
    size = wk * val
    size /= price
    size -= pos
    return pos, size


@njit(cache=True, inline="always")
def _sell_fill(pos, size, price, fees, slippage, longonly):
    """A sell of ``-size`` units (vectorbt's sell_nb); returns ``(new position, cash received, notional)``.

    Sells never depend on the cash balance, so several can be filled independently and their cash summed.
    """
    size_limit = -size
    if longonly:
        if pos == 0:
            return pos, 0.0, 0.0
        size_limit = min(pos, size_limit)
    if _is_zero(size_limit) or (size_limit < 2 * MIN_SIZE and _is_less(size_limit, MIN_SIZE)):
        return pos, 0.0, 0.0
    adj_price = price * (1.0 - slippage)
    acq = size_limit * adj_price
    final_acq = _add(acq, -(acq * fees))
    if final_acq < 0:
        return pos, 0.0, 0.0
    return _add(pos, -size_limit), final_acq, size_limit * adj_price


@njit(cache=True, inline="always")
def _target_size(k, price, wk, value, cash, position):
    """vectorbt's execute_order_nb preamble for a target-percent order: snap near-zero state to zero and
    return ``(cash, position, value, size)``, where ``size`` is the units to trade (NaN if rejected)."""
    if _is_zero(cash):
        cash = 0.0
    val = value
    if _is_zero(val):
        val = 0.0
    if val <= 0:
        pos = 0.0 if _is_zero(position[k]) else position[k]
        position[k] = pos
        return cash, pos, np.nan  # vectorbt rejects target-percent orders when the value is <= 0
    pos, size = _units(position[k], wk, val, price)
    position[k] = pos
    return cash, pos, size


@njit(cache=True, inline="always")
def _execute(k, price, wk, value, cash, position, fees, slippage, longonly):
    """One target-percent order for asset ``k`` (vectorbt's execute_order_nb with buy_nb / sell_nb).

    Updates ``position[k]`` and returns ``(cash, traded notional at the fill price)``.
    """
    cash, pos, size = _target_size(k, price, wk, value, cash, position)
    if np.isnan(size):
        return cash, 0.0
    if size > 0:  # buy / cover
        if cash == 0:
            return cash, 0.0
        adj_price = price * (1.0 + slippage)
        req_cash = size * adj_price
        total_req = req_cash + req_cash * fees
        if total_req <= cash or _is_close(total_req, cash):
            final_size = size
            final_req = total_req
        else:  # cut down to what the cash can pay, fees included
            max_req = cash / (1.0 + fees)
            if max_req <= 0:
                return cash, 0.0
            final_size = max_req / adj_price
            final_req = cash
        if _is_zero(size) or (final_size < 2 * MIN_SIZE and _is_less(final_size, MIN_SIZE)):
            return cash, 0.0
        position[k] = _add(pos, final_size)
        return _add(cash, -final_req), final_size * adj_price
    # sell / short
    position[k], got, traded = _sell_fill(pos, size, price, fees, slippage, longonly)
    return cash + got, traded


@njit(cache=True, inline="always")
def _buy_fill_uncut(pos, size, price, fees, slippage):
    """A buy of ``size`` units known to be covered by the cash (vectorbt's buy_nb, sufficient-cash branch);
    returns ``(new position, cash paid, notional)``."""
    if _is_zero(size) or (size < 2 * MIN_SIZE and _is_less(size, MIN_SIZE)):
        return pos, 0.0, 0.0
    adj_price = price * (1.0 + slippage)
    req_cash = size * adj_price
    return _add(pos, size), req_cash + req_cash * fees, req_cash


@njit(cache=True, inline="always")
def _insertion_argsort(keys, idx, n):
    """vectorbt's ``insertion_argsort_nb``: ``idx[:n]`` ordered by ``keys[idx[j]]``, ascending and stable (inlined, so
    the caller's fast-math flags, if any, apply to its comparisons as before)."""
    for j in range(1, n):
        c = idx[j]
        key = keys[c]
        m = j - 1
        while m >= 0 and keys[idx[m]] > key:
            idx[m + 1] = idx[m]
            m -= 1
        idx[m + 1] = c


@njit(cache=True, inline="always")
def _group_value(cash, position, close, i):
    """cash + sum(position * close[i]). A plain loop: inlined into the kernels' fast-math context (reassoc) the
    compiler vectorizes it with several vector accumulators (1.7x faster than four hand-written scalar partial
    sums, measured on the valuation loop of 200 genomes x 2000 bars x 20 assets)."""
    s = 0.0
    for k in range(position.shape[0]):
        s += position[k] * close[i, k]
    return cash + s


@njit(cache=True, inline="always")
def _buy_fast(k, price, wk, val, cash, position, fees, slippage):
    """_execute for a buy when the value is > 0, without data-dependent branches: both the full fill and
    the fill cut down to the cash are computed and one is selected. Returns ``(ok, cash, notional)``; when
    the order is not a plain buy (no cash, or fewer than ``2 * MIN_SIZE`` units wanted or affordable),
    ``ok`` is False, nothing is written and _execute must run instead."""
    cash = 0.0 if _is_zero(cash) else cash
    pos, size = _units(position[k], wk, val, price)
    adj_price = price * (1.0 + slippage)
    req_cash = size * adj_price
    total_req = req_cash + req_cash * fees
    full = (total_req <= cash) | _is_close(total_req, cash)
    max_req = cash / (1.0 + fees)
    final_size = size if full else max_req / adj_price
    final_req = total_req if full else cash
    if not ((size >= 2 * MIN_SIZE) & (cash > 0) & (final_size >= 2 * MIN_SIZE)):
        return False, cash, 0.0
    position[k] = _add(pos, final_size)
    return True, _add(cash, -final_req), final_size * adj_price


@njit(cache=True, inline="always", fastmath=_FASTMATH, error_model="numpy")
def _rebalance_fast(close, i, w, value, cash, position, scratch, fees, slippage, longonly):
    """One rebalance in the common case, as whole-array passes without data-dependent branches (the
    compiler vectorizes them). Returns ``(ok, cash, traded notional)``.

    The common case: the value is > 0, every order but the largest buy is a plain sell or a plain buy
    (its approximate order value and its units agree in sign, and it trades at least ``2 * MIN_SIZE``
    units, so none of vectorbt's tolerance checks can reject or snap it), and the cash after the sells
    covers those buys. It then computes what _rebalance_exact computes, with the sums taken in another
    order (~1e-16 relative). Otherwise ``ok`` is False and ``position`` is untouched (``scratch`` is
    overwritten), so the caller runs _rebalance_exact instead.
    """
    n_assets = position.shape[0]
    if not value > ABS_TOL:  # vectorbt's value snapped to 0.0 (or below): orders are rejected
        return False, cash, 0.0
    # approximate order values and the total of the buys
    total_buy = 0.0
    for k in range(n_assets):
        ov = w[k] * value - position[k] * close[i, k]
        scratch[k] = ov
        total_buy += ov if ov > 0 else 0.0
    # the largest buy, the last index among equals: positive doubles order as their int64 bit patterns,
    # so two integer max reductions find it without the mispredicted branches of a floating-point argmax
    bits = scratch.view(np.int64)
    top = np.int64(0)
    for k in range(n_assets):
        top = max(top, bits[k])
    k_max = -1
    for k in range(n_assets):
        k_max = max(k_max, k if bits[k] == top else -1)
    if top <= 0:  # no order value is > 0 (top == 0 matches +0.0)
        k_max = -1
    max_buy = scratch[k_max] if k_max >= 0 else 0.0
    if np.isnan(max_buy):
        return False, cash, 0.0
    cash = 0.0 if _is_zero(cash) else cash
    # every order but the largest buy; new positions go to scratch until the case is known to be common
    proceeds = 0.0
    paid = 0.0
    traded = 0.0
    rare = False
    for k in range(n_assets):
        price = close[i, k]
        pos, size = _units(position[k], w[k], value, price)
        is_sell = size < 0
        is_buy = size > 0
        other = k != k_max
        # a sell of -size units (capped at the position when long-only): _sell_fill
        units = min(pos, -size) if longonly else -size
        sell_price = price * (1.0 - slippage)
        acq = units * sell_price
        got = acq + -(acq * fees)
        plain_sell = (units >= 2 * MIN_SIZE) & (got > REL_TOL * acq) & (got > ABS_TOL)
        # a buy of size units covered by the cash: _buy_fill_uncut
        buy_price = price * (1.0 + slippage)
        req_cash = size * buy_price
        cost = req_cash + req_cash * fees
        plain_buy = size >= 2 * MIN_SIZE
        plain = ((scratch[k] > 0) == is_buy) & (plain_sell | (not is_sell)) & (plain_buy | (not is_buy)) & (price > 0)
        rare |= other & (not plain)
        new_pos = _add(pos, -units if is_sell else size) if (is_sell | is_buy) else pos
        proceeds += got if (is_sell & other) else 0.0
        paid += cost if (is_buy & other) else 0.0
        traded += (acq if is_sell else req_cash) if ((is_sell | is_buy) & other) else 0.0
        scratch[k] = new_pos if other else position[k]
    if rare:
        return False, cash, 0.0
    cash = cash + proceeds
    if k_max >= 0 and not ((total_buy - max_buy) * (1.0 + slippage) * (1.0 + fees) <= cash * (1.0 - 1e-7)):
        return False, cash, 0.0
    for k in range(n_assets):
        position[k] = scratch[k]
    if k_max >= 0:
        # the largest buy, last in vectorbt's order, is cut down to the cash if it must be
        cash = _add(cash, -paid)
        price = close[i, k_max]
        ok, cash_after, t = _buy_fast(k_max, price, w[k_max], value, cash, position, fees, slippage)
        if not ok:
            cash_after, t = _execute(k_max, price, w[k_max], value, cash, position, fees, slippage, longonly)
        cash = cash_after
        traded += t
    return True, cash, traded


@njit(cache=True, inline="always", fastmath=_FASTMATH, error_model="numpy")
def _rebalance_exact(close, i, w, value, cash, position, order_value, sells, buys, fees, slippage, longonly):
    """One rebalance in every case (vectorbt's sequence; see simulate_genome_nb). Returns
    ``(cash, traded notional)``."""
    n_assets = position.shape[0]
    cost_factor = (1.0 + slippage) * (1.0 + fees)
    # approximate order values (vectorbt's approx_order_value_nb); sells and buys are compacted
    # into two index lists without branching, so the order loops below branch predictably
    total_buy = 0.0
    max_buy = 0.0
    k_max = -1
    n_sells = 0
    n_buys = 0
    for k in range(n_assets):
        ov = w[k] * value - position[k] * close[i, k]
        order_value[k] = ov
        is_buy = ov > 0
        sells[n_sells] = k
        buys[n_buys] = k
        n_sells += 1 - is_buy
        n_buys += is_buy
        total_buy += ov if is_buy else 0.0
        if ov >= max_buy and is_buy:
            max_buy = ov
            k_max = k
    traded = 0.0
    val = 0.0 if _is_zero(value) else value
    if _is_zero(cash):
        cash = 0.0
    # sells (and no-op orders) first: they never depend on cash, so they fill independently and
    # their proceeds are summed (no serial dependency through the cash balance)
    proceeds = 0.0
    for j in range(n_sells):
        k = sells[j]
        pos = 0.0 if _is_zero(position[k]) else position[k]
        if val > 0:
            pos, size = _units(position[k], w[k], val, close[i, k])
            if size > 0:  # an order value of ~0 can still round to a tiny buy
                cash, t = _execute(k, close[i, k], w[k], value, cash + proceeds, position, fees, slippage, longonly)
                proceeds = 0.0
                traded += t
                continue
            pos, got, t = _sell_fill(pos, size, close[i, k], fees, slippage, longonly)
            proceeds += got
            traded += t
        position[k] = pos
    cash = cash + proceeds
    if n_buys > 0:
        if val > 0 and (total_buy - max_buy) * cost_factor <= cash * (1.0 - 1e-7):
            # the cash covers every buy but the largest: those fill in full, in any order, and
            # their costs are summed; only the largest (last in vectorbt's order) can be cut
            paid = 0.0
            for j in range(n_buys):
                k = buys[j]
                if k != k_max:
                    pos, size = _units(position[k], w[k], val, close[i, k])
                    if size > 0:
                        pos, cost, t = _buy_fill_uncut(pos, size, close[i, k], fees, slippage)
                        paid += cost
                        traded += t
                    else:
                        pos, got, t = _sell_fill(pos, size, close[i, k], fees, slippage, longonly)
                        paid -= got
                        traded += t
                    position[k] = pos
            cash = _add(cash, -paid)
            cash, t = _execute(k_max, close[i, k_max], w[k_max], value, cash, position, fees, slippage, longonly)
            traded += t
        else:
            # the cash runs out before the largest buy: vectorbt's exact (stable) sequence
            _insertion_argsort(order_value, buys, n_buys)
            for j in range(n_buys):
                k = buys[j]
                cash, t = _execute(k, close[i, k], w[k], value, cash, position, fees, slippage, longonly)
                traded += t
    return cash, traded

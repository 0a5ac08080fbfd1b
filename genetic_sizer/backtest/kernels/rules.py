"""Rebalancing policies shared by the kernels, the references and the live sizer: pure functions over arrays (Numba).

A policy row (float64, ``POLICY_WIDTH`` columns, one per genome) holds what a rebalance does beyond trading to the
target weights; :func:`policy_active` says whether any of it is on (all off: the kernels take their ordinary path, so
results without a policy are those of the code before policies, bit for bit).

**Volatility targeting** (``P_VOL_TARGET`` > 0). At a rebalance on bar ``i`` the targets are scaled by the exposure
``e = min(cap, vol_target / sigma_i)`` (:func:`exposure_nb`), where ``sigma_i`` is the realized volatility of the
genome's target portfolio: the standard deviation (``ddof=1``) of its bar returns ``r_t = sum_k w_k * (close[t, k] /
close[t - 1, k] - 1)`` over the last ``lookback`` bars ``t = i - lookback + 1 .. i`` (the bar's own close included:
orders fill at it), annualized by ``sqrt(bars per year)``. It is the volatility of the weights the genome targets,
not of the account's own value path: the account's returns scale with the exposure the targeting chose, so targeting
on them feeds back (an exposure ``e`` makes the next estimate ``e * sigma`` and the next exposure ``1 / e`` times the
right one: a period-2 oscillation that never settles). Before ``lookback`` returns exist (``i < lookback``: bar 0 has
no return) the exposure is 1 (the genome trades as without targeting); a volatility of 0 gives the cap. Spot: ``cap``
is 1 (the rest stays in cash). Perps: the exposure multiplies the leverage ``L`` (gross ``e * L * E``: the target is
that of the unlevered portfolio, and the leverage scales it) and ``cap`` is the largest multiple the assets' maximum
leverage allows (``min(max_leverage) / L``).

**Cost-aware trades** (:func:`trade_rule_nb`): the desired trades (target notional minus held notional at the close,
signed) are filtered by a minimum trade (``|d| >= min_trade * equity`` and, valued at the fill price, ``|d| * (1 +/-
slippage) >= min_trade_value``: what an exchange checks an order's size times its limit price against) and then scaled
down together so that their summed absolute notional is at most ``max_turnover * equity``; a trade scaled below the
minimum is dropped (so both bounds hold). An asset whose trade is dropped does not trade at all on that bar. The live
sizer applies the same function to its orders (the mid for the close, the order's limit price for the fill).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "POLICY_WIDTH",
    "exposure_nb",
    "no_policy",
    "policy_active",
    "target_volatility_nb",
    "trade_rule_nb",
]

P_VOL_TARGET = 0
"""Annualized volatility target (0: no volatility targeting)."""
P_LOOKBACK = 1
"""Bars of returns the realized volatility is measured over (>= 2)."""
P_ANN = 2
"""Bars per year (annualizes the volatility)."""
P_CAP = 3
"""Largest gross leverage the exposure may reach (spot 1; perp the smallest ``max_leverage`` of the assets)."""
P_MIN_TRADE = 4
"""Minimum trade as a fraction of the equity before trading (0: none)."""
P_MIN_VALUE = 5
"""Minimum trade in the account's currency (0: none)."""
P_MAX_TURNOVER = 6
"""Largest summed absolute trade notional of one rebalance, as a fraction of the equity (inf: none)."""
POLICY_WIDTH = 7


def no_policy(n_genomes: int) -> np.ndarray:
    """Policy rows that are all off (n_genomes, POLICY_WIDTH)."""
    out = np.zeros((n_genomes, POLICY_WIDTH))
    out[:, P_LOOKBACK] = 2.0
    out[:, P_ANN] = 1.0
    out[:, P_CAP] = 1.0
    out[:, P_MAX_TURNOVER] = np.inf
    return out


@njit(cache=True)
def policy_active(policy):
    """Whether the policy row does anything beyond trading to target."""
    return (
        policy[P_VOL_TARGET] > 0.0
        or policy[P_MIN_TRADE] > 0.0
        or policy[P_MIN_VALUE] > 0.0
        or policy[P_MAX_TURNOVER] < np.inf
    )


@njit(cache=True)
def target_volatility_nb(close, i, w, lookback, ann_factor):
    """The annualized realized volatility (``ddof=1``) of the target portfolio ``w`` over the ``lookback`` bar
    returns ending at bar ``i`` (see the module docstring); NaN when ``i < lookback``."""
    if i < lookback or lookback < 2:
        return np.nan
    n_assets = close.shape[1]
    mean = 0.0
    for t in range(i - lookback + 1, i + 1):
        r = 0.0
        for k in range(n_assets):
            r += w[k] * (close[t, k] / close[t - 1, k] - 1.0)
        mean += r
    mean /= lookback
    ss = 0.0
    for t in range(i - lookback + 1, i + 1):
        r = 0.0
        for k in range(n_assets):
            r += w[k] * (close[t, k] / close[t - 1, k] - 1.0)
        ss += (r - mean) * (r - mean)
    return np.sqrt(ss / (lookback - 1)) * np.sqrt(ann_factor)


@njit(cache=True)
def exposure_nb(close, i, w, policy, lev):
    """The exposure multiple of a rebalance on bar ``i`` to targets ``w`` at leverage ``lev`` (spot 1): 1.0 without
    volatility targeting, else at most ``policy[P_CAP] / lev``."""
    target = policy[P_VOL_TARGET]
    if not target > 0.0:
        return 1.0
    sigma = target_volatility_nb(close, i, w, int(policy[P_LOOKBACK]), policy[P_ANN])
    if np.isnan(sigma):
        return 1.0  # not enough history yet
    cap = policy[P_CAP] / lev
    if not sigma > 0.0:
        return cap
    return min(cap, target / sigma)


@njit(cache=True)
def trade_rule_nb(desired, fill, equity, min_trade, min_trade_value, max_turnover, out):
    """The trades a rebalance makes: ``desired`` (n,) signed trade notionals (target minus held, at the reference
    price: the close, the live mid), ``fill`` (n,) each trade's fill price over that price (``1 + slippage`` for a
    buy, ``1 - slippage`` for a sell; live: the limit price over the mid), ``equity`` the account's value before
    trading; writes the trades into ``out`` (0.0: the asset does not trade) and returns the scale applied (1.0: none).

    1. a trade below the minimum, ``|d| < min_trade * equity`` or ``|d| * fill < min_trade_value``, is dropped;
    2. when the kept trades sum to more than ``max_turnover * equity`` in absolute value, all of them are scaled by
       ``max_turnover * equity / sum |d|``;
    3. a scaled trade now below the minimum is dropped (so the sum stays within the cap).
    """
    floor = min_trade * equity
    total = 0.0
    for k in range(desired.shape[0]):
        d = desired[k]
        keep = d != 0.0 and abs(d) >= floor and abs(d) * fill[k] >= min_trade_value
        out[k] = d if keep else 0.0
        total += abs(d) if keep else 0.0
    cap = max_turnover * equity
    scale = 1.0
    if total > cap:
        scale = cap / total
        for k in range(desired.shape[0]):
            s = out[k] * scale
            out[k] = s if (abs(s) >= floor and abs(s) * fill[k] >= min_trade_value) else 0.0
    return scale

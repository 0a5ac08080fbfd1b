"""The plain-Python reference of the perpetuals account: one genome, a loop over bars and assets (no Numba, no numpy
arithmetic), written from the specification :mod:`genetic_sizer.backtest.kernels.perp` states.

vectorbt has no perpetuals (its issue #639), so the perp kernels are checked against :func:`reference_genome`
(``engine="reference"`` of :func:`genetic_sizer.backtest.simulate.backtest`; ``genetic-sizer evolve`` re-simulates
every perp champion with it), and the test suite checks both against hand calculations and a third, independent loop
of its own.
"""

from __future__ import annotations

import math

import numpy as np

from genetic_sizer.backtest.kernels import rules
from genetic_sizer.errors import ConfigError

__all__ = ["reference_genome"]


def reference_genome(
    close,
    schedule,
    segment_starts,
    rebalance,
    *,
    thresholds=None,
    leverage=1.0,
    mm_rate=None,
    mm_deduct=None,
    funding=None,
    low=None,
    high=None,
    fees: float = 0.0,
    slippage: float = 0.0,
    init_cash: float = 10_000.0,
    policy=None,
) -> dict:
    """The perp account of one genome, as a plain-Python loop over bars and assets (no Numba, no numpy arithmetic).

    The reference the fast kernel is checked against (``genetic-sizer evolve`` re-simulates every perp champion
    with it, as it re-simulates spot champions with vectorbt). Same arguments as
    :func:`genetic_sizer.backtest.kernels.perp.simulate_perp_genome_nb` (``thresholds`` default ``inf``, ``mm_rate``
    default 0, ``mm_deduct`` default 0, ``funding`` default none, ``low`` and ``high`` default none: the liquidation
    test at the closes only), except that ``leverage`` may be one number for every segment or a sequence of one per
    segment and ``mm_rate`` one rate per asset (one tier each) or (n_assets, n_tiers). ``policy``: a rebalancing
    policy row (:mod:`genetic_sizer.backtest.kernels.rules`: volatility targeting, minimum trade, maximum turnover),
    applied here from that specification in plain Python; None: none.

    Returns
    -------
    dict with ``value`` (n_bars,), ``position`` (n_bars, n_assets: held after each bar's trades), ``rebalanced``
    (n_bars,), ``traded`` (the turnover sum), ``funding_paid``, ``funding_received``, ``fees_paid``, and
    ``liquidated`` (the bar, or -1).
    """
    close = [[float(x) for x in row] for row in np.asarray(close, dtype=np.float64)]
    n_bars, n_assets = len(close), len(close[0])
    sched = [[float(x) for x in row] for row in np.asarray(schedule, dtype=np.float64)]
    starts = [int(s) for s in segment_starts]
    mask = [bool(b) for b in rebalance]
    bands = [math.inf] * len(starts) if thresholds is None else [float(x) for x in thresholds]
    rates_mm = np.zeros((n_assets, 1)) if mm_rate is None else np.asarray(mm_rate, dtype=np.float64)
    rates_mm = rates_mm[:, None] if rates_mm.ndim == 1 else rates_mm
    mm = [[float(x) for x in row] for row in rates_mm]
    ded = [[0.0] * len(row) for row in mm] if mm_deduct is None else [[float(x) for x in r] for r in mm_deduct]
    lows = None if low is None else [[float(x) for x in row] for row in np.asarray(low, dtype=np.float64)]
    highs = None if high is None else [[float(x) for x in row] for row in np.asarray(high, dtype=np.float64)]

    def maintenance(k, notional):  # Hyperliquid's tiered formula: the largest of notional x rate - deduction
        return max(notional * r - d for r, d in zip(mm[k], ded[k], strict=True))

    rates = None if funding is None else [[float(x) for x in row] for row in np.asarray(funding, dtype=np.float64)]
    levs = [float(leverage)] * len(starts) if np.ndim(leverage) == 0 else [float(x) for x in leverage]
    if len(levs) != len(starts):
        raise ConfigError(f"leverage must be a number or one per segment ({len(starts)}), got {len(levs)}")
    pol = None if policy is None else [float(x) for x in policy]
    e_last = 1.0  # the exposure of the last rebalance

    def exposure(t, w, lev):  # the vol target over the target portfolio's realized volatility (ddof=1), capped
        lookback = int(pol[rules.P_LOOKBACK])
        if not pol[rules.P_VOL_TARGET] > 0 or t < lookback:
            return 1.0
        rets = [
            sum(w[k] * (close[u][k] / close[u - 1][k] - 1.0) for k in range(n_assets))
            for u in range(t - lookback + 1, t + 1)
        ]
        mean = sum(rets) / lookback
        sigma = math.sqrt(sum((r - mean) ** 2 for r in rets) / (lookback - 1)) * math.sqrt(pol[rules.P_ANN])
        cap = pol[rules.P_CAP] / lev
        return cap if sigma <= 0 else min(cap, pol[rules.P_VOL_TARGET] / sigma)

    def big(x, pre):  # a trade of at least the minimum: as a fraction of equity, and valued at its fill price
        at_fill = abs(x) * (1.0 + math.copysign(slippage, x))
        return x != 0 and abs(x) >= pol[rules.P_MIN_TRADE] * pre and at_fill >= pol[rules.P_MIN_VALUE]

    q = [0.0] * n_assets
    equity = float(init_cash)
    out = {
        "value": np.zeros(n_bars),
        "position": np.zeros((n_bars, n_assets)),
        "rebalanced": np.zeros(n_bars, dtype=bool),
        "traded": 0.0,
        "funding_paid": 0.0,
        "funding_received": 0.0,
        "fees_paid": 0.0,
        "liquidated": -1,
    }
    for t in range(n_bars):
        seg = max(s for s in range(len(starts)) if starts[s] <= t)
        w = sched[seg]
        lev = levs[seg]  # this segment's leverage: the targets from its first bar on, and the band
        if t > 0:
            for k in range(n_assets):
                equity += q[k] * (close[t][k] - close[t - 1][k])
            if rates is not None:
                for k in range(n_assets):
                    payment = q[k] * close[t][k] * rates[t][k]
                    equity -= payment
                    if payment > 0:
                        out["funding_paid"] += payment
                    else:
                        out["funding_received"] -= payment
            # liquidation prices: each position's adverse extreme of the bar (with a range), else the closes
            px = list(close[t])
            if lows is not None:
                px = [lows[t][k] if q[k] > 0 else highs[t][k] for k in range(n_assets)]
            at = equity + sum(q[k] * (px[k] - close[t][k]) for k in range(n_assets))
            at_margin = sum(maintenance(k, abs(q[k]) * px[k]) for k in range(n_assets))
            at_close = sum(maintenance(k, abs(q[k]) * close[t][k]) for k in range(n_assets))
            if equity <= at_close or at <= at_margin:
                left = 0.0
                if at > 0 and at >= 2.0 / 3.0 * at_margin:  # through the book at px; below 2/3: the backstop
                    for k in range(n_assets):
                        fill = px[k] * (1.0 - slippage) if q[k] > 0 else px[k] * (1.0 + slippage)
                        fee = fees * abs(q[k]) * fill
                        out["fees_paid"] += fee
                        at -= abs(q[k]) * abs(fill - px[k]) + fee
                    left = max(at, 0.0)
                out["value"][t:] = left
                out["liquidated"] = t
                return out
        trade = mask[t] or t == starts[seg]
        if not trade and bands[seg] < math.inf:
            gross = lev * equity  # |current weight - target| >= band, written with products as in the kernel
            aim = gross if pol is None else e_last * gross  # a policy's targets: those of the last rebalance
            for k in range(n_assets):
                if abs(q[k] * close[t][k] - w[k] * aim) >= bands[seg] * gross:
                    trade = True
        if trade:
            out["rebalanced"][t] = True
            pre = equity
            traded = 0.0
            targets = [w[k] * lev * pre / close[t][k] for k in range(n_assets)]
            if pol is not None:  # exposure, then a minimum trade and a cap on the summed trades (scaled together)
                e_last = exposure(t, w, lev)
                d = [e_last * w[k] * (lev * pre) - q[k] * close[t][k] for k in range(n_assets)]
                kept = [big(x, pre) for x in d]
                total = sum(abs(x) for x, keep in zip(d, kept, strict=True) if keep)
                if total > pol[rules.P_MAX_TURNOVER] * pre:
                    d = [x * (pol[rules.P_MAX_TURNOVER] * pre / total) for x in d]
                    kept = [keep and big(x, pre) for x, keep in zip(d, kept, strict=True)]
                targets = [q[k] + d[k] / close[t][k] if kept[k] else q[k] for k in range(n_assets)]
            for k in range(n_assets):
                target = targets[k]
                dq = target - q[k]
                fill = close[t][k] * (1.0 + slippage) if dq > 0 else close[t][k] * (1.0 - slippage)
                traded += abs(dq) * fill
                fee = fees * abs(dq) * fill
                out["fees_paid"] += fee
                equity -= abs(dq) * abs(fill - close[t][k]) + fee
                q[k] = target
            if t > 0:
                out["traded"] += traded / pre
        out["value"][t] = equity
        out["position"][t] = q
    return out

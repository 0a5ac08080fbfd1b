"""The position sizer: champion weights + account -> an order plan. Pure: no I/O, no SDK.

For every coin the champion holds (and every coin with an open position):

* target size = weight x account value x leverage / mid, rounded toward zero to the coin's ``szDecimals``
  (and capped at ``max_notional_per_asset`` when set);
* delta = target - current; the order's notional is ``|delta| x mid``;
* every order carries the IOC limit price it is sent at: ``mid x (1 + slippage)`` for a buy,
  ``mid x (1 - slippage)`` for a sell, rounded to a valid price (:func:`~genetic_sizer.exchange.rounding.limit_price`);
* a coin is skipped, with the reason, when it is already on target, when its weight moves by less than
  ``min_weight_change``, or when the backtest's minimum-trade rule drops its trade: the rule the kernels apply at a
  rebalance (:func:`genetic_sizer.backtest.kernels.rules.trade_rule_nb`, the same function), with the trade ``delta x
  mid`` for the close and the order's limit price for the fill: a trade under ``min_trade`` x the account value, or,
  valued at its limit price (``size x limit price``, what the exchange checks), under ``min_trade_usd`` (never below
  the exchange's $10 minimum), is not made; with ``max_turnover`` the trades are scaled down together so that their
  summed notional (at the mid) is at most that fraction of the account value (a trade scaled under the minimum is
  then dropped). Each leg of a flip must also reach ``min_trade_usd`` at its limit price (the exchange's check);
* positions in coins the champion does not hold are closed (``close_unlisted``, default true) or left
  alone with a reason;
* an order that only shrinks a position is reduce-only; a flip (long to short or back) is a reduce-only
  close followed by an opening order (if the close alone is under the minimum, one order crosses zero);
* orders that reduce exposure come first (largest first), so the margin they free funds the increases.

Whether the pass trades at all follows the champion's strategy (``strategy`` in the champion file): with a drift
band (``drift_band``, the champion's ``threshold``), the whole book trades back to target when some coin's weight
(position notional / (account value x leverage)) differs from its target by at least the band, or when the
champion's calendar rebalance is due (``rebalance_due``, which the live loop decides: the first pass in a new
period of its policy, :meth:`genetic_sizer.live.loop.Trader.calendar_due`); otherwise nothing is sent. Without a band
every pass trades to target. The plan says which rule fired (``Plan.rule``: ``rebalance``, ``calendar``, ``drift``
or ``hold``) and why (``Plan.rule_reason``).

Before anything is planned, a champion coin the exchange does not list, a delisted coin, a missing mid, or a
leverage above a coin's ``maxLeverage`` is a :class:`SizingError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from genetic_sizer.backtest.kernels.rules import trade_rule_nb
from genetic_sizer.errors import SizingError
from genetic_sizer.exchange.rounding import limit_price, round_size
from genetic_sizer.exchange.wire import AssetInfo

__all__ = [
    "DEFAULT_SLIPPAGE",
    "EXCHANGE_MIN_NOTIONAL",
    "MAX_SLIPPAGE",
    "CoinPlan",
    "Plan",
    "PlannedOrder",
    "SizerSettings",
    "plan_orders",
]

EXCHANGE_MIN_NOTIONAL = 10.0
"""Hyperliquid rejects orders under $10 of notional (size x limit price)."""

DEFAULT_SLIPPAGE = 0.01
"""IOC limit orders are priced this far beyond the mid (1%): far enough to fill, a bound on the price paid."""

MAX_SLIPPAGE = 0.5
"""The largest slippage accepted (50% of the mid): beyond it a limit is no protection at all."""


@dataclass(frozen=True)
class SizerSettings:
    """How the champion is turned into positions.

    leverage : gross leverage (sum of |position notional| / account value at target), default 1.
    min_trade_usd : smallest order sent, in USD valued at its limit price; at least the exchange's $10.
    min_weight_change : skip a coin whose weight moves by less than this (a drift band), default 0.
    close_unlisted : close positions in coins the champion does not hold, default true.
    max_notional_per_asset : cap on any one position's notional in USD, default none.
    slippage : how far beyond the mid the IOC limit price goes, a fraction in (0, 0.5], default 0.01.
    drift_band : trade the whole book only when some coin's weight has drifted at least this far from its target
        (or a calendar rebalance is due), otherwise send nothing; a number >= 0 (0: always trade), or None (no
        band: every pass trades to target), default None. The champion's ``strategy.threshold``.
    min_trade : skip a trade under this fraction of the account value (the backtest's ``portfolio.min_trade``),
        in [0, 1), default 0.
    max_turnover : scale the pass's trades down together so that their summed notional is at most this fraction of
        the account value (the backtest's ``portfolio.max_turnover``), a number > 0 or None (no cap), default None.
    """

    leverage: float = 1.0
    min_trade_usd: float = EXCHANGE_MIN_NOTIONAL
    min_weight_change: float = 0.0
    close_unlisted: bool = True
    max_notional_per_asset: float | None = None
    slippage: float = DEFAULT_SLIPPAGE
    drift_band: float | None = None
    min_trade: float = 0.0
    max_turnover: float | None = None

    def __post_init__(self):
        def bad(name, value, what):
            raise SizingError(f"{name} must be {what}, got {value!r}")

        if not (isinstance(self.leverage, (int, float)) and math.isfinite(self.leverage) and self.leverage > 0):
            bad("leverage", self.leverage, "a positive number")
        if not (isinstance(self.min_trade_usd, (int, float)) and math.isfinite(self.min_trade_usd)):
            bad("min_trade_usd", self.min_trade_usd, "a number")
        if self.min_trade_usd < EXCHANGE_MIN_NOTIONAL:
            bad("min_trade_usd", self.min_trade_usd, f">= the exchange's minimum order of ${EXCHANGE_MIN_NOTIONAL:g}")
        if not (isinstance(self.min_weight_change, (int, float)) and 0 <= self.min_weight_change < 1):
            bad("min_weight_change", self.min_weight_change, "in [0, 1)")
        if self.max_notional_per_asset is not None and not (
            isinstance(self.max_notional_per_asset, (int, float))
            and math.isfinite(self.max_notional_per_asset)
            and self.max_notional_per_asset > 0
        ):
            bad("max_notional_per_asset", self.max_notional_per_asset, "a positive number or None")
        if not (
            isinstance(self.slippage, (int, float))
            and not isinstance(self.slippage, bool)
            and 0 < self.slippage <= MAX_SLIPPAGE
        ):
            bad("slippage", self.slippage, f"a fraction of the mid in (0, {MAX_SLIPPAGE:g}] (0.01 is 1%)")
        if self.drift_band is not None and not (
            isinstance(self.drift_band, (int, float))
            and not isinstance(self.drift_band, bool)
            and math.isfinite(self.drift_band)
            and self.drift_band >= 0
        ):
            bad("drift_band", self.drift_band, "a difference of weights >= 0 (0.05: 5 points) or None")
        if not (
            isinstance(self.min_trade, (int, float))
            and not isinstance(self.min_trade, bool)
            and 0 <= self.min_trade < 1
        ):
            bad("min_trade", self.min_trade, "a fraction of the account value in [0, 1)")
        if self.max_turnover is not None and not (
            isinstance(self.max_turnover, (int, float))
            and not isinstance(self.max_turnover, bool)
            and math.isfinite(self.max_turnover)
            and self.max_turnover > 0
        ):
            bad("max_turnover", self.max_turnover, "a positive fraction of the account value or None")


@dataclass(frozen=True)
class PlannedOrder:
    coin: str
    side: str  # "buy" or "sell"
    size: float  # > 0, at most szDecimals decimals
    mid: float
    notional: float  # size x mid
    reduce_only: bool
    leg: str  # "reduce", "close", "open" or "increase"
    limit_px: float  # the IOC limit price sent (mid +/- slippage, rounded to a valid price)

    @property
    def is_buy(self) -> bool:
        return self.side == "buy"

    @property
    def limit_notional(self) -> float:
        """size x limit price: the order's value as the exchange checks it against its minimum."""
        return self.size * self.limit_px


@dataclass(frozen=True)
class CoinPlan:
    coin: str
    weight: float  # champion weight (0 for coins it does not hold)
    mid: float
    current: float  # signed size now
    target: float  # signed size after the plan
    delta: float
    current_weight: float  # current notional / (account value x leverage), signed
    notional: float  # |delta| x mid
    action: str  # "trade" or "skip"
    reason: str


@dataclass(frozen=True)
class Plan:
    """The orders of a pass. ``rule`` is what decided that the pass trades: ``rebalance`` (no drift band: every
    pass trades to target), ``calendar`` (the champion's calendar rebalance is due), ``drift`` (a coin drifted
    past the band) or ``hold`` (no coin did: nothing is sent); ``rule_reason`` says it in words."""

    account_value: float
    leverage: float
    coins: list[CoinPlan]
    orders: list[PlannedOrder] = field(default_factory=list)
    rule: str = "rebalance"
    rule_reason: str = ""

    @property
    def skipped(self) -> list[CoinPlan]:
        return [c for c in self.coins if c.action == "skip"]

    def to_dict(self) -> dict:
        return {
            "account_value": self.account_value,
            "leverage": self.leverage,
            "rule": self.rule,
            "rule_reason": self.rule_reason,
            "coins": [asdict(c) for c in self.coins],
            "orders": [asdict(o) for o in self.orders],
        }


def _number(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SizingError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise SizingError(f"{name} must be finite, got {value!r}")
    return v


def _check_inputs(weights, account_value, positions, mids, meta, settings) -> None:
    if account_value <= 0:
        raise SizingError(f"account value is {account_value!r}: nothing to size (deposit margin first)")
    for coin, w in weights.items():
        if w == 0:
            continue
        info = meta.get(coin)
        if info is None:
            near = sorted(meta, key=lambda n: (n.upper() != coin.upper(), abs(len(n) - len(coin)), n))[:3]
            raise SizingError(f"the champion holds {coin!r}, which the exchange does not list (nearest: {near})")
        if info.delisted:
            raise SizingError(f"the champion holds {coin!r}, which is delisted")
        if settings.leverage > info.max_leverage:
            raise SizingError(f"leverage {settings.leverage:g} is above {coin}'s maxLeverage {info.max_leverage:g}")
    for coin in set(weights) | set(positions):
        if (weights.get(coin, 0) != 0 or positions.get(coin, 0) != 0) and coin in meta:
            mid = mids.get(coin)
            if mid is None or not mid > 0:
                raise SizingError(f"no valid mid price for {coin!r} (got {mid!r})")


def _target(weight: float, account_value: float, mid: float, info: AssetInfo, settings: SizerSettings) -> float:
    notional = weight * account_value * settings.leverage
    cap = settings.max_notional_per_asset
    if cap is not None and abs(notional) > cap:
        notional = math.copysign(cap, notional)
    return round_size(notional / mid, info.sz_decimals)


def plan_orders(
    weights: Mapping[str, float],
    account_value: float,
    positions: Mapping[str, float],
    mids: Mapping[str, float],
    meta: Mapping[str, AssetInfo],
    settings: SizerSettings | None = None,
    constraints=None,
    *,
    rebalance_due: bool = False,
) -> Plan:
    """The order plan that moves ``positions`` to the champion's ``weights``.

    Parameters
    ----------
    weights : coin -> weight (sum of |w| = 1 for a champion)
    account_value : USD equity of the account (marginSummary.accountValue)
    positions : coin -> signed size now (szi); coins without a position may be absent
    mids : coin -> mid price
    meta : coin -> :class:`AssetInfo` (or any object with ``sz_decimals``, ``max_leverage``, ``delisted``)
    settings : :class:`SizerSettings`
    constraints : optional
        The champion's constraints (:attr:`genetic_sizer.runs.champion.Champion.constraints`, or any object with
        ``violation_of(weights) -> str | None``): weights that break them are a :class:`SizingError`.
    rebalance_due : bool
        The champion's calendar rebalance is due (:meth:`genetic_sizer.live.loop.Trader.calendar_due`): with a drift
        band, the pass trades whatever the drift.
    """
    settings = settings or SizerSettings()
    account_value = _number("account value", account_value)
    weights = {c: _number(f"weight of {c}", w) for c, w in weights.items()}
    why = None if constraints is None else constraints.violation_of(weights)
    if why is not None:
        raise SizingError(f"the weights break the champion's constraints: {why}")
    positions = {c: _number(f"position in {c}", s) for c, s in positions.items()}
    _check_inputs(weights, account_value, positions, mids, meta, settings)
    coins: list[CoinPlan] = []
    reducing: list[PlannedOrder] = []
    increasing: list[PlannedOrder] = []
    book = sorted(set(weights) | {c for c, s in positions.items() if s != 0})
    ruled = _trade_rule(book, weights, account_value, positions, mids, meta, settings)
    for coin in book:
        plan, legs = _plan_coin(coin, weights, account_value, positions, mids, meta, settings, ruled.get(coin))
        coins.append(plan)
        for o in legs:
            (reducing if o.reduce_only else increasing).append(o)
    reducing.sort(key=lambda o: -o.notional)
    increasing.sort(key=lambda o: -o.notional)
    rule, reason = _rule(coins, settings, rebalance_due)
    if rule == "hold":  # within the band: send nothing, and say so for every coin that would have traded
        held = [replace(c, action="skip", reason=f"held: {reason}") if c.action == "trade" else c for c in coins]
        return Plan(account_value, settings.leverage, held, [], rule, reason)
    return Plan(account_value, settings.leverage, coins, reducing + increasing, rule, reason)


def _rule(coins: list[CoinPlan], settings: SizerSettings, rebalance_due: bool) -> tuple[str, str]:
    """Which rule decides the pass (see :class:`Plan`), and why."""
    band = settings.drift_band
    if band is None:
        return "rebalance", "no drift band: every pass trades to target"
    if rebalance_due:
        return "calendar", "the champion's calendar rebalance is due"
    # the coins the book holds or targets (a coin the exchange does not list cannot trade; one left alone by
    # close_unlisted=False is not part of the book)
    drifts = [
        (abs(c.current_weight - c.weight), c.coin)
        for c in coins
        if math.isfinite(c.current_weight) and c.reason != "not in the champion; close_unlisted is false"
    ]
    drift, coin = max(drifts, default=(0.0, "-"))
    if drift >= band:
        return "drift", f"{coin} drifted {drift:.4f} from its target, at least the drift band {band:g}"
    return "hold", f"no coin drifted {band:g} or more from its target (largest: {coin} {drift:.4f})"


def _order(coin, side, size, mid, reduce_only, leg, info, settings) -> PlannedOrder:
    try:
        px = limit_price(mid, side == "buy", settings.slippage, info.sz_decimals)
    except ValueError as exc:
        raise SizingError(f"no valid limit price for {coin} at mid {mid!r}: {exc}") from None
    return PlannedOrder(coin, side, size, mid, size * mid, reduce_only, leg, px)


def _wanted(coin, weights, account_value, positions, mids, meta, settings) -> float | None:
    """The size a coin would trade before the minimum-trade rule (as :func:`_plan_coin` computes it), or None."""
    info = meta.get(coin)
    if info is None or (coin not in weights and not settings.close_unlisted):
        return None
    current = positions.get(coin, 0.0)
    mid = float(mids[coin])
    target = _target(weights.get(coin, 0.0), account_value, mid, info, settings)
    delta = round_size(target - current, info.sz_decimals)
    change = abs(weights.get(coin, 0.0) - current * mid / (account_value * settings.leverage))
    if delta == 0 or change < settings.min_weight_change:
        return None
    return delta


def _trade_rule(book, weights, account_value, positions, mids, meta, settings) -> dict:
    """The backtest's minimum-trade and maximum-turnover rule (:func:`trade_rule_nb`, the kernels' function) over the
    coins that would trade, each trade ``delta x mid`` with its fill at the order's limit price: coin -> the size it
    trades instead (0.0: dropped), for every coin whose trade the rule drops or scales."""
    wanted = {c: d for c in book if (d := _wanted(c, weights, account_value, positions, mids, meta, settings))}
    if not wanted:
        return {}
    coins = list(wanted)
    mid = np.array([float(mids[c]) for c in coins])
    desired = np.array([wanted[c] for c in coins]) * mid
    fill = np.empty(len(coins))
    for j, c in enumerate(coins):
        order = _order(c, "buy" if desired[j] > 0 else "sell", abs(wanted[c]), mid[j], False, "-", meta[c], settings)
        fill[j] = order.limit_px / mid[j]
    out = np.empty(len(coins))
    cap = math.inf if settings.max_turnover is None else float(settings.max_turnover)
    rates = (float(settings.min_trade), float(settings.min_trade_usd), cap)
    trade_rule_nb(desired, fill, float(account_value), *rates, out)
    ruled = {}
    for j, c in enumerate(coins):
        if out[j] != desired[j]:
            ruled[c] = 0.0 if out[j] == 0.0 else round_size(out[j] / mid[j], meta[c].sz_decimals)
    return ruled


def _plan_coin(
    coin, weights, account_value, positions, mids, meta, settings, ruled=None
) -> tuple[CoinPlan, list[PlannedOrder]]:
    weight = weights.get(coin, 0.0)
    current = positions.get(coin, 0.0)
    info = meta.get(coin)
    if info is None:  # an open position in a coin the exchange no longer lists: report it, it cannot trade
        return CoinPlan(coin, weight, math.nan, current, current, 0.0, math.nan, 0.0, "skip", "not listed"), []
    mid = float(mids[coin])
    cur_w = current * mid / (account_value * settings.leverage)

    def skip(reason, target=current, delta=0.0, notional=0.0):
        return CoinPlan(coin, weight, mid, current, target, delta, cur_w, notional, "skip", reason), []

    if coin not in weights and not settings.close_unlisted:
        return skip("not in the champion; close_unlisted is false")
    target = _target(weight, account_value, mid, info, settings)
    delta = round_size(target - current, info.sz_decimals)
    if delta == 0:
        return skip("already on target", target)
    notional = abs(delta) * mid
    change = abs(weight - cur_w)
    if change < settings.min_weight_change:
        return skip(
            f"weight change {change:.4f} below min_weight_change {settings.min_weight_change:g}",
            target,
            delta,
            notional,
        )
    small = _order(coin, "buy" if delta > 0 else "sell", abs(delta), mid, False, "-", info, settings)
    scaled = ""
    if ruled == 0.0:  # the minimum-trade rule dropped the trade (a scaled trade below the minimum included)
        if notional < settings.min_trade * account_value:
            why = (
                f"trade of ${notional:,.2f} below min_trade {settings.min_trade:g} of the account value "
                f"(${settings.min_trade * account_value:,.2f})"
            )
        elif small.limit_notional < settings.min_trade_usd:
            why = (
                f"order of ${small.limit_notional:,.2f} at its limit price {small.limit_px:g} is below the minimum "
                f"of ${settings.min_trade_usd:g}"
            )
        else:
            why = f"trade scaled by max_turnover {settings.max_turnover:g} below the minimum trade"
        return skip(why, target, delta, notional)
    if ruled is not None:  # scaled down with the others to max_turnover
        delta = ruled
        target = current + delta
        notional = abs(delta) * mid
        scaled = f" (scaled to max_turnover {settings.max_turnover:g})"
    flip = current != 0 and target != 0 and (current > 0) != (target > 0)
    if flip:
        legs = _flip_legs(coin, current, target, delta, mid, info, settings)
    else:
        reduces = abs(target) < abs(current)
        leg = ("close" if target == 0 else "reduce") if reduces else "increase"
        legs = [_order(coin, "buy" if delta > 0 else "sell", abs(delta), mid, reduces, leg, info, settings)]
    small = legs[-1]
    legs = [o for o in legs if o.limit_notional >= settings.min_trade_usd]
    if not legs:
        return skip(
            f"order of ${small.limit_notional:,.2f} at its limit price {small.limit_px:g} is below the minimum "
            f"of ${settings.min_trade_usd:g}",
            target,
            delta,
            notional,
        )
    reason = ("flip: close then open" if flip and len(legs) == 2 else legs[0].leg) + scaled
    return CoinPlan(coin, weight, mid, current, target, delta, cur_w, notional, "trade", reason), legs


def _flip_legs(coin, current, target, delta, mid, info, settings) -> list[PlannedOrder]:
    """A flip: a reduce-only close of the whole position, then an opening order for the target.

    When the close alone is under the minimum order (at its limit price), a single order crosses zero instead
    (reduce-only would stop at zero). When the opening leg is under the minimum, only the close is sent.
    """
    close_side = "sell" if current > 0 else "buy"
    close = _order(coin, close_side, abs(current), mid, True, "close", info, settings)
    open_ = _order(coin, close_side, abs(target), mid, False, "open", info, settings)
    if close.limit_notional < settings.min_trade_usd:
        return [_order(coin, close_side, abs(delta), mid, False, "open", info, settings)]
    return [close, open_]

"""Pure decisions of the live loop: wall-clock periods, pass and order identities, sanity guards, risk limits.

Nothing here reads the network or a file; :mod:`genetic_sizer.live.loop` feeds it what it read and acts on the
answers, and tests call these functions directly.

* A **period** is a wall-clock bucket: ``index(t) = floor(t / seconds)`` for a fixed length (``30s``, ``5m``,
  ``1h``, ``1d``: UTC-aligned), or a calendar week (Monday 00:00 UTC), month or quarter (``W``, ``M``,
  ``Q``). A restart inside the same period maps to the same pass.
* A **pass** is identified by the champion (a fingerprint of its assets and weights) and the period; every
  order it sends carries a client order id derived from the account, the pass, the coin, the leg and the
  attempt (:func:`order_cloid`), so that a restarted process finds the orders of a killed one; the id also
  carries the trader's id, readable back (:func:`trader_of`), so that another trader's orders are recognized.
* **Guards** refuse a pass on stale or inconsistent data: a mid too far from the mark or oracle price,
  account data older than allowed, a plan whose gross notional exceeds leverage x equity by more than
  rounding.
* **Limits** (the kill switch): the drawdown from the equity high-water mark, and the loss since the start of
  the UTC day.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from genetic_sizer.errors import ConfigError

__all__ = [
    "CLOID_MARK",
    "Guards",
    "Limits",
    "Period",
    "champion_id",
    "clock_problem",
    "data_age_problem",
    "gross_problem",
    "limit_breach",
    "order_cloid",
    "parse_period",
    "pass_id",
    "period_of_champion",
    "price_problems",
    "trader_of",
]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WEEK = 7 * 86400
_MONDAY_OFFSET = 3 * 86400  # 1970-01-01 was a Thursday: Monday 1969-12-29 00:00 UTC is -3 days
_CALENDAR = ("W", "M", "Q")


def parse_period(text: str, name: str = "--every") -> float:
    """'30s', '15m', '1h', '1.5h', '1d' -> seconds (> 0); anything else is a ConfigError naming ``name``."""
    raw = str(text).strip()
    if len(raw) >= 2 and raw[-1] in _UNITS and raw[:-1].replace(".", "", 1).isdigit():
        seconds = float(raw[:-1]) * _UNITS[raw[-1]]
        if seconds > 0:
            return seconds
    raise ConfigError(f"{name} must be a period like 30s, 15m, 1h or 1d, got {text!r}")


def _utc(t: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(t, _dt.UTC)


@dataclass(frozen=True)
class Period:
    """A wall-clock period: a fixed length in ``seconds`` (aligned to the Unix epoch, so ``1d`` starts at
    00:00 UTC and ``1h`` on the hour) or, with ``seconds`` None, the calendar week (``W``, from Monday
    00:00 UTC), month (``M``) or quarter (``Q``) named by ``spec``."""

    spec: str
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str, name: str = "--period") -> Period:
        """``30s``/``5m``/``1h``/``1d`` (fixed), ``D`` (= ``1d``), ``W``, ``M``, ``Q`` (calendar)."""
        raw = str(text).strip()
        if raw in _CALENDAR:
            return cls(raw, _WEEK if raw == "W" else None)
        if raw == "D":
            return cls("1d", 86400.0)
        try:
            return cls(raw, parse_period(raw, name))
        except ConfigError:
            raise ConfigError(f"{name} must be a period like 30s, 15m, 1h, 1d, W, M or Q, got {text!r}") from None

    def index(self, t: float) -> int:
        """The number of the period holding the time ``t`` (seconds since the epoch)."""
        if self.spec == "W":
            return math.floor((t + _MONDAY_OFFSET) / _WEEK)
        if self.seconds is not None:
            return math.floor(t / self.seconds)
        d = _utc(t)
        return d.year * 12 + d.month - 1 if self.spec == "M" else d.year * 4 + (d.month - 1) // 3

    def start(self, index: int) -> float:
        """When period ``index`` starts (seconds since the epoch)."""
        if self.spec == "W":
            return index * _WEEK - _MONDAY_OFFSET
        if self.seconds is not None:
            return index * self.seconds
        year, month = divmod(index, 12) if self.spec == "M" else (index // 4, (index % 4) * 3)
        return float(calendar.timegm((year, month + 1, 1, 0, 0, 0)))

    def end(self, index: int) -> float:
        """When period ``index`` ends (the next one starts)."""
        return self.start(index + 1)

    def label(self, index: int) -> str:
        """``spec@start``, e.g. ``1h@2025-01-01T10:00:00Z``: names the period in journals and ids."""
        start = _utc(self.start(index))
        stamp = start.strftime("%Y-%m-%dT%H:%M:%S") + (f".{start.microsecond:06d}" if start.microsecond else "")
        return f"{self.spec}@{stamp}Z"


def period_of_champion(champion) -> Period:
    """The default period of a single pass: the champion's rebalance setting (``portfolio.rebalance``).

    ``D`` is a UTC day, ``W``/``M``/``Q`` the calendar week/month/quarter; N bars is N times the bar length of
    the champion's data (from ``data.periods_per_year``: 8760 is hourly, 365 daily; other values count as
    daily bars); ``once`` (buy and hold) is a UTC day."""
    rebalance = champion.portfolio.get("rebalance", "D")
    if isinstance(rebalance, str) and rebalance.strip().isdigit():
        rebalance = int(rebalance.strip())
    if isinstance(rebalance, int) and not isinstance(rebalance, bool) and rebalance > 0:
        ppy = float(champion.data.get("periods_per_year") or 365)
        bar = 31_536_000.0 / ppy if ppy > 366 else 86400.0
        return Period(f"{rebalance * bar:g}s", rebalance * bar)
    text = str(rebalance).strip()
    if text.lower() == "once":
        text = "D"
    return Period.parse(text, "portfolio.rebalance")


# ---------------------------------------------------------------------------------------------- identities
def champion_id(assets, weights) -> str:
    """A short fingerprint of a champion's weights (12 hex digits): the same weights give the same id."""
    text = json.dumps({a: float(w) for a, w in zip(assets, weights, strict=True)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def pass_id(champion: str, period: Period, index: int) -> str:
    """``champion/period-label``: the identity of the pass of ``period`` ``index`` for that champion."""
    return f"{champion}/{period.label(index)}"


CLOID_MARK = "9e51"
"""The first 4 hex digits of every client order id the live sizer sends: the next 8 are its trader id."""


def order_cloid(address: str, pass_: str, coin: str, leg: str, attempt: int, *, trader: str) -> str:
    """The client order id of one order: ``0x`` + :data:`CLOID_MARK` + the ``trader`` id (8 hex digits) + 20 hex
    digits derived from the account, the pass (champion and period), the coin, the leg ("reduce", "close", "open",
    "increase"), the attempt (the pass's send number, 0, 1, ...) and the trader. The trader id is readable from the
    id (:func:`trader_of`): fills or orders of another trader on the same account are recognized on the exchange."""
    if not (isinstance(trader, str) and len(trader) == 8 and all(c in "0123456789abcdef" for c in trader)):
        raise ConfigError(f"trader must be 8 lower-case hex digits, got {trader!r}")
    seed = f"genetic_sizer:{address.lower()}:{pass_}:{coin}:{leg}:{int(attempt)}:{trader}"
    return "0x" + CLOID_MARK + trader + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:20]


def trader_of(cloid: str | None) -> str | None:
    """The trader id a live sizer's client order id carries (see :func:`order_cloid`), or None for any other id."""
    if not isinstance(cloid, str):
        return None
    text = cloid.lower()
    if len(text) != 34 or not text.startswith("0x" + CLOID_MARK):
        return None
    return text[6:14]


# ---------------------------------------------------------------------------------------------- guards
def _fraction(name: str, value, *, upper: float | None = 1.0, allow_none: bool = True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a number > 0, got {value!r}")
    if upper is not None and value >= upper:
        raise ConfigError(f"{name} must be < {upper:g}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Guards:
    """Sanity checks before a pass sends anything.

    max_mid_deviation : refuse when a traded coin's mid is more than this fraction away from its mark or
        oracle price (default 0.02); None disables the check.
    max_data_age : refuse when the account data is older than this many seconds (the exchange's time stamp
        against this machine's clock), and re-read before sending when the plan is older (default 10).
    """

    max_mid_deviation: float | None = 0.02
    max_data_age: float = 10.0

    def __post_init__(self):
        _fraction("max_mid_deviation", self.max_mid_deviation)
        _fraction("max_data_age", self.max_data_age, upper=None, allow_none=False)


def price_problems(coins, mids: Mapping[str, float], contexts: Mapping, max_deviation: float | None) -> list[str]:
    """Why the mids of ``coins`` cannot be trusted: each one more than ``max_deviation`` (a fraction) away from
    the coin's mark or oracle price (``contexts``: coin -> object with ``mark_px``, ``oracle_px``), or a coin
    without reference prices. Empty when all is well or the check is off (None)."""
    if max_deviation is None:
        return []
    problems = []
    for coin in sorted(set(coins)):
        ctx = contexts.get(coin)
        mid = mids.get(coin)
        if ctx is None or mid is None:
            problems.append(f"{coin}: no mark/oracle price to check the mid {mid!r} against")
            continue
        for what, ref in (("mark", ctx.mark_px), ("oracle", ctx.oracle_px)):
            if not (ref and ref > 0):
                problems.append(f"{coin}: no valid {what} price ({ref!r})")
                continue
            gap = abs(float(mid) / float(ref) - 1.0)
            if gap > max_deviation:
                problems.append(
                    f"{coin}: mid {float(mid):g} is {gap:.2%} from the {what} price {float(ref):g} "
                    f"(limit {max_deviation:.2%})"
                )
    return problems


def data_age_problem(
    exchange_time_ms: int | None, now: float, max_age: float, clock_tolerance: float = 0.0
) -> str | None:
    """Why account data stamped ``exchange_time_ms`` (the exchange's clock) is too old at ``now`` (this
    machine's clock, seconds), or None. The stamp is on the exchange's clock, which may differ from this one by up
    to ``clock_tolerance`` (see :func:`clock_problem`): the limit is ``max_age`` plus that. Data without a time
    stamp passes."""
    if exchange_time_ms is None:
        return None
    age = now - exchange_time_ms / 1000.0
    limit = max_age + clock_tolerance
    text = f"limit {max_age:g} s" + (f" + clock tolerance {clock_tolerance:g} s" if clock_tolerance else "")
    if age > limit:
        return f"account data is {age:.1f} s old ({text})"
    if age < -limit:
        return f"account data is stamped {-age:.1f} s in the future ({text}): check the clock"
    return None


def clock_problem(skew: float | None, uncertainty: float, tolerance: float) -> tuple[str, str] | None:
    """How the clocks stand: ``skew`` is the exchange's clock minus this machine's (seconds, measured from an answer's
    time stamp; None: not measured), known within ``uncertainty`` (half the request's round trip). Returns
    ``("stop", why)`` past ``tolerance`` (order expiries and the waits after a lost request rely on the clocks
    agreeing within it: no order may be sent), ``("warn", why)`` past a second or half the tolerance (whichever is
    smaller), else None."""
    if skew is None:
        return None
    size = abs(skew)
    where = "behind" if skew < 0 else "ahead of"
    text = f"the exchange's clock is {size:.2f} s {where} this machine's (clock tolerance {tolerance:g} s)"
    if size > tolerance + uncertainty:
        return "stop", (
            f"{text}: past the tolerance, order expiries cannot be trusted to mean what they say, so no order is sent "
            "(the loop stops before its first one); synchronize this machine's clock (NTP) or raise --clock-tolerance"
        )
    if size > min(1.0, tolerance / 2):
        return "warn", f"{text}; synchronize this machine's clock (NTP): past the tolerance the loop stops"
    return None


def gross_problem(plan, meta: Mapping) -> str | None:
    """Why ``plan`` cannot be right: the gross notional of its targets (sum of |target| x mid over the coins it
    sizes) exceeds leverage x equity by more than rounding (one size step of each coin, plus 1e-9 relative).
    Positions the plan leaves alone on request (``close_unlisted`` false) and unlisted coins do not count."""
    budget = plan.leverage * plan.account_value
    gross = slack = 0.0
    for c in plan.coins:
        if not math.isfinite(c.mid) or c.reason in ("not listed", "not in the champion; close_unlisted is false"):
            continue
        gross += abs(c.target) * c.mid
        info = meta.get(c.coin)
        slack += c.mid * 10.0 ** -(info.sz_decimals if info is not None else 0)
    if gross > budget + slack + 1e-9 * budget:
        return (
            f"the plan's gross notional ${gross:,.2f} exceeds leverage x equity ${budget:,.2f} by more than rounding "
            f"(${slack:,.2f})"
        )
    return None


# ---------------------------------------------------------------------------------------------- limits
@dataclass(frozen=True)
class Limits:
    """The kill switch's limits, fractions in (0, 1) or None (off).

    max_drawdown : stop when equity is this fraction below its high-water mark (recorded in the journal).
    max_daily_loss : stop when equity is this fraction below the day's reference equity (see
        :meth:`genetic_sizer.live.journal.JournalState.day_reference`).
    """

    max_drawdown: float | None = None
    max_daily_loss: float | None = None

    def __post_init__(self):
        _fraction("max_drawdown", self.max_drawdown)
        _fraction("max_daily_loss", self.max_daily_loss)

    @property
    def active(self) -> bool:
        return self.max_drawdown is not None or self.max_daily_loss is not None


def limit_breach(limits: Limits, equity: float, high_water: float | None, day_reference: float | None) -> str | None:
    """The reason the kill switch fires at ``equity``, or None.

    Drawdown = 1 - equity / high_water (the high-water mark includes ``equity``); daily loss =
    1 - equity / day_reference. A limit fires when reached (>=)."""
    hwm = max(high_water or 0.0, equity)
    if limits.max_drawdown is not None and hwm > 0:
        dd = 1.0 - equity / hwm
        if dd >= limits.max_drawdown - 1e-12:
            return (
                f"drawdown {dd:.2%} from the equity high-water mark ${hwm:,.2f} (equity ${equity:,.2f}) reached "
                f"--max-drawdown {limits.max_drawdown:g}"
            )
    if limits.max_daily_loss is not None and day_reference is not None and day_reference > 0:
        loss = 1.0 - equity / day_reference
        if loss >= limits.max_daily_loss - 1e-12:
            return (
                f"loss {loss:.2%} since the day's reference equity ${day_reference:,.2f} (equity ${equity:,.2f}) "
                f"reached --max-daily-loss {limits.max_daily_loss:g}"
            )
    return None

"""Exchange rounding rules for Hyperliquid perpetuals, pure and exact (decimal arithmetic).

* Sizes have at most ``szDecimals`` decimals. Targets are rounded toward zero, so a target position is
  never overshot.
* Prices have at most 5 significant figures (integer prices are always allowed) and at most
  ``6 - szDecimals`` decimals.

The SDK does not round (its wire format would otherwise round for you, differently): every size and price
sent goes through these functions first.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal

__all__ = ["MAX_DECIMALS", "SIZE_RTOL", "limit_price", "round_price", "round_size"]

MAX_DECIMALS = 6
"""Perp prices have at most ``MAX_DECIMALS - szDecimals`` decimals."""
_SIG_FIGS = 5


def _check(value: float, name: str) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


SIZE_RTOL = 1e-12
"""A size within this relative distance below a tick is that tick: float noise, not a smaller order."""


def round_size(size: float, sz_decimals: int) -> float:
    """``size`` rounded toward zero to ``sz_decimals`` decimals (sign kept).

    Floating-point products land a hair below exact ticks (0.6 x 1234 x 3 / 4000 is 0.55529999...), so a
    value within ``SIZE_RTOL`` of the tick above it is rounded to that tick instead of losing a whole tick.
    """
    _check(size, "size")
    # repr() is the shortest decimal that round-trips, so 0.3 stays 0.3 (not 0.29999...).
    d = Decimal(repr(float(size)))
    q = Decimal(1).scaleb(-int(sz_decimals))
    up = d.quantize(q, rounding=ROUND_UP)
    if abs(up - d) <= abs(d) * Decimal(SIZE_RTOL):
        return float(up) + 0.0
    return float(d.quantize(q, rounding=ROUND_DOWN)) + 0.0


def round_price(px: float, sz_decimals: int) -> float:
    """``px`` rounded to 5 significant figures and at most ``6 - sz_decimals`` decimals (integers kept whole)."""
    _check(px, "price")
    if px <= 0:
        raise ValueError(f"price must be positive, got {px!r}")
    d = Decimal(repr(float(px)))
    if d >= Decimal(10) ** _SIG_FIGS:  # an integer price is valid whatever its number of digits
        return float(d.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    exponent = d.adjusted() - (_SIG_FIGS - 1)  # position of the 5th significant digit
    decimals = min(-exponent, MAX_DECIMALS - int(sz_decimals))
    return float(d.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN))


def limit_price(mid: float, is_buy: bool, slippage: float, sz_decimals: int) -> float:
    """An IOC limit price ``slippage`` away from ``mid`` (above for buys, below for sells), rounded."""
    _check(mid, "mid")
    if not 0 <= slippage < 1:
        raise ValueError(f"slippage must be in [0, 1), got {slippage!r}")
    return round_price(mid * (1 + slippage) if is_buy else mid * (1 - slippage), sz_decimals)

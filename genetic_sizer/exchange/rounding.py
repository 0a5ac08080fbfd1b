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
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["MAX_PRICE_DECIMALS_PERP", "PRICE_SIG_FIGS", "finite_positive", "limit_price", "round_price", "round_size"]

MAX_PRICE_DECIMALS_PERP = 6  # prices: at most 6 - szDecimals decimals (perps)
PRICE_SIG_FIGS = 5  # and at most 5 significant figures unless the price is an integer


def finite_positive(value, name: str) -> float:
    """``value`` as a float, or ValueError naming ``name`` unless it is a finite number > 0."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return x


def _to_decimal(x: float, name: str) -> Decimal:
    if isinstance(x, bool):
        raise ValueError(f"{name} must be a number, got {x!r}")
    try:
        d = Decimal(repr(float(x)))
    except (TypeError, ValueError, InvalidOperation):
        raise ValueError(f"{name} must be a number, got {x!r}") from None
    if not d.is_finite():
        raise ValueError(f"{name} must be finite, got {x!r}")
    return d


def _check_sz_decimals(sz_decimals: int) -> int:
    if isinstance(sz_decimals, bool) or not isinstance(sz_decimals, int) or not 0 <= sz_decimals <= 6:
        raise ValueError(f"sz_decimals must be an integer in 0..6, got {sz_decimals!r}")
    return sz_decimals


def round_size(size: float, sz_decimals: int) -> float:
    """``size`` rounded toward zero to ``sz_decimals`` decimals, so a target is never overshot.

    Float artifacts are removed first (12 significant digits), so ``0.3`` stays 0.3 and
    ``0.7 * 3`` (2.0999999999999996) gives 2.1 with one decimal."""
    _check_sz_decimals(sz_decimals)
    d = _to_decimal(size, "size")
    if d == 0:
        return 0.0
    cleaned = d.quantize(Decimal(1).scaleb(d.adjusted() - 11), rounding=ROUND_HALF_EVEN)
    out = float(cleaned.quantize(Decimal(1).scaleb(-sz_decimals), rounding=ROUND_DOWN))
    return out + 0.0  # no -0.0


def round_price(px: float, sz_decimals: int) -> float:
    """``px`` rounded (half up) to a valid perp price: at most 5 significant figures and at most
    ``6 - sz_decimals`` decimals; prices of 10,000 and more round to an integer (integers are always
    valid). Raises ValueError if the price is not > 0 or would round to zero."""
    _check_sz_decimals(sz_decimals)
    d = _to_decimal(px, "price")
    if d <= 0:
        raise ValueError(f"price must be > 0, got {px!r}")
    if d.adjusted() >= PRICE_SIG_FIGS - 1:
        decimals = 0
    else:
        decimals = min(PRICE_SIG_FIGS - 1 - d.adjusted(), MAX_PRICE_DECIMALS_PERP - sz_decimals)
    out = float(d.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))
    if out <= 0.0:
        raise ValueError(f"price {px!r} rounds to zero with {6 - sz_decimals} decimals allowed")
    return out


def limit_price(mid: float, is_buy: bool, slippage: float, sz_decimals: int) -> float:
    """An aggressive IOC limit: ``mid * (1 + slippage)`` for a buy, ``mid * (1 - slippage)`` for a sell,
    rounded with :func:`round_price`."""
    m = finite_positive(mid, "mid")
    if isinstance(slippage, bool) or not isinstance(slippage, int | float) or not 0.0 <= slippage < 1.0:
        raise ValueError(f"slippage must be a fraction in [0, 1), got {slippage!r}")
    return round_price(m * (1.0 + slippage) if is_buy else m * (1.0 - slippage), sz_decimals)

"""One home for every vocabulary the project speaks: the config, the command line, the engines and the
loaders import their names from here instead of listing them again.

=====================  ==========================================================================
``REBALANCE_CODES``    calendar rebalancing policies (or a positive int: every N bars), see
                       :func:`parse_rebalance`
``OBJECTIVES``         fitness metrics that can be objectives, and whether larger is better
``ENGINES``            simulation engines: the Numba kernel, or the vectorbt reference
``DIRECTIONS``         genome kinds: long-only on the simplex, long/short with gross exposure 1
``DATA_SOURCES``       where prices come from (``hyperliquid`` reads a ``data fetch`` file)
``LEADING_GAP_POLICIES``  what to do with assets listed later than the others
``PARALLEL_BACKENDS``  where evaluation runs
``INTERVAL_MS``        Hyperliquid candle intervals, in milliseconds
``NETWORKS``           Hyperliquid networks
``MARKETS``            account models: a spot cash account, or perpetuals (leverage, funding, margin)
``REFERENCE_ENGINES``  per market, what the fast engine's results are verified against
=====================  ==========================================================================
"""

from __future__ import annotations

from genetic_sizer.errors import ConfigError

__all__ = [
    "DATA_SOURCES",
    "DEFAULT_FEES",
    "DIRECTIONS",
    "ENGINES",
    "FUNDING_INTERVAL_HOURS",
    "INTERVAL_MS",
    "LEADING_GAP_POLICIES",
    "MARKETS",
    "NETWORKS",
    "OBJECTIVES",
    "PARALLEL_BACKENDS",
    "REBALANCE_CODES",
    "REFERENCE_ENGINES",
    "parse_rebalance",
]

REBALANCE_CODES = ("once", "D", "W", "M", "Q")
"""``once``: buy and hold; ``D`` ``W`` ``M`` ``Q``: the first bar of each UTC day, Monday-based week, month,
quarter. Codes are case-sensitive (``m`` is not ``M``: pandas reads it as minutes)."""

OBJECTIVES = {
    "sharpe": True,
    "sortino": True,
    "calmar": True,
    "cagr": True,
    "annualized_return": True,
    "total_return": True,
    "max_drawdown": True,  # <= 0: closer to zero is better
    "annualized_volatility": False,
    "turnover": False,
}
"""Objective name -> whether a larger value is better."""

ENGINES = ("fast", "vectorbt")
DIRECTIONS = ("longonly", "longshort")
DATA_SOURCES = ("default", "csv", "parquet", "hyperliquid")
LEADING_GAP_POLICIES = ("trim", "error")
PARALLEL_BACKENDS = ("serial", "ray")
NETWORKS = ("testnet", "mainnet")

MARKETS = ("spot", "perp")
"""``spot``: a cash account (vectorbt's ``from_orders`` semantics); ``perp``: a cross-margin perpetuals account with
leverage, hourly funding, taker fees and liquidation, as traded on Hyperliquid (:mod:`genetic_sizer.backtest.kernels.perp`)."""

REFERENCE_ENGINES = {"spot": "vectorbt", "perp": "reference"}
"""What a champion's figures are re-checked against, per market: vectorbt's ``from_orders`` for spot; for perps
(vectorbt has none) the plain-Python loop :func:`genetic_sizer.backtest.kernels.perp.reference_genome` (``engine="reference"``)."""

DEFAULT_FEES = {"spot": 0.0005, "perp": 0.00045}
"""``portfolio.fees`` when the config does not set it: 5 bp for spot; for perps Hyperliquid's base-tier taker fee,
0.045 % of the notional (orders are IOC, so they take liquidity)."""

FUNDING_INTERVAL_HOURS = 1
"""Hyperliquid pays funding every hour (a rate per hour; other venues pay every 8 hours)."""

INTERVAL_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
"""Candle intervals Hyperliquid serves, in milliseconds (``1M``, calendar months, is not supported here)."""


def parse_rebalance(value, key: str = "rebalance") -> str | int:
    """A rebalancing policy in canonical form: one of :data:`REBALANCE_CODES`, or a positive int N (every N
    bars; digits in text are read as N). Anything else is a ConfigError naming ``key`` and the value."""
    expected = f"one of {list(REBALANCE_CODES)} or a positive integer (every N bars)"
    if isinstance(value, str):
        text = value.strip()
        if text in REBALANCE_CODES:
            return text
        if text.isdigit():
            value = int(text)
        else:
            near = [c for c in REBALANCE_CODES if c.lower() == text.lower()]
            hint = f" (codes are case-sensitive: did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"{key} must be {expected}, got {value!r}{hint}")
    if hasattr(value, "__index__") and not isinstance(value, bool):
        n = int(value.__index__())
        if n >= 1:
            return n
    raise ConfigError(f"{key} must be {expected}, got {value!r}")

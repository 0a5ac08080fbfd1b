"""A synthetic Hyperliquid-like perpetuals market: hourly candles and hourly funding, in the exchange's own formats.

For tests, examples and benchmarks that must not touch the network. :func:`perp_market` draws, from a seed:

* hourly prices: correlated (one market factor) Student-t log-returns with coin-specific drift and volatility
  (annualized volatility 50-95 %, as BTC .. DOGE), closes rounded to 5 significant figures as the exchange quotes;
* hourly funding rates, as Hyperliquid pays them: the interest component (0.01 % per 8 hours, 1.25e-5 an hour, about
  11 % a year) plus a premium that follows crowding: it rises with a coin's trailing one-week return (trend chasers
  crowd into the longs that pay), mean-reverts with a half-life of about a day, carries a coin-specific bias (retail
  alts run hot, a crowded short runs negative) and noise, so rates run at tens of percent a year, differ from coin
  to coin, and flip sign after sell-offs. Each rate is stamped a few hundred milliseconds after its hour, as the
  exchange stamps them.

The result holds the candles and funding rows as ``candleSnapshot`` and ``fundingHistory`` answer them (so a fake
exchange can serve them and ``genetic-sizer data fetch`` can save them), and the
:class:`~genetic_sizer.data.prices.Prices` they make, with the funding attached exactly as loading a fetched file
attaches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genetic_sizer.data.candles import prices_from_candles
from genetic_sizer.data.funding import align_funding, funding_path_for, save_funding
from genetic_sizer.data.loaders import save_parquet
from genetic_sizer.data.prices import Prices
from genetic_sizer.vocab import INTERVAL_MS

__all__ = ["COINS", "SyntheticPerpMarket", "perp_market"]

COINS = {
    # coin: (first price, annual volatility, funding bias a year on top of the interest component)
    "BTC": (60_000.0, 0.50, 0.00),
    "ETH": (3_000.0, 0.65, 0.03),
    "SOL": (150.0, 0.85, 0.15),
    "DOGE": (0.15, 0.95, 0.35),  # a crowded retail long
    "AVAX": (20.0, 0.90, -0.10),  # a crowded short: longs are paid
    "LINK": (15.0, 0.85, 0.05),
}
"""The coins :func:`perp_market` knows (first price, volatility, funding bias), in the order it draws them."""

HOURS_PER_YEAR = 8760
INTEREST_PER_HOUR = 0.0001 / 8
"""Hyperliquid's interest component of funding: 0.01 % per 8 hours, paid hourly."""


@dataclass(frozen=True)
class SyntheticPerpMarket:
    """What :func:`perp_market` drew.

    ``candles``: coin -> candle dicts (``t``, ``T``, ``s``, ``i``, ``o``, ``c``, ``h``, ``l``, ``v``, ``n``; prices
    as strings); ``funding``: coin -> fundingHistory rows (``coin``, ``fundingRate``, ``premium``, ``time``);
    ``prices``: the aligned closes with the funding rates per bar (:attr:`~genetic_sizer.data.prices.Prices.funding`).
    """

    candles: dict
    funding: dict
    prices: Prices

    def write(self, path: str | Path) -> tuple[Path, Path]:
        """Save as ``genetic-sizer data fetch`` does: the prices at ``path``, the funding next to it."""
        prices = save_parquet(self.prices, path)
        return prices, save_funding(self.funding, funding_path_for(path))


def _sig5(x: float) -> str:
    """A price as the exchange quotes it: 5 significant figures, as text."""
    return f"{float(f'{x:.5g}'):.10g}"


def perp_market(
    coins=("BTC", "ETH", "SOL", "DOGE", "AVAX"),
    *,
    start: str = "2025-01-01",
    hours: int = 24 * 90,
    seed: int = 0,
    interval: str = "1h",
) -> SyntheticPerpMarket:
    """Draw a synthetic hourly perp market (see the module docstring).

    Parameters
    ----------
    coins : sequence of names from :data:`COINS`
    start : first bar (UTC), on the hour
    hours : number of hours (hourly bars and hourly funding rates)
    seed : the random seed (same seed, same market)
    interval : the candle interval, ``1h`` or a multiple of it (``4h``, ``1d``): coarser candles sample the hourly
        path at their closes; funding stays hourly.
    """
    unknown = [c for c in coins if c not in COINS]
    if unknown:
        raise ValueError(f"unknown coin(s) {unknown}; known: {list(COINS)}")
    step_h = INTERVAL_MS[interval] // 3_600_000
    if step_h < 1 or INTERVAL_MS[interval] % 3_600_000:
        raise ValueError(f"interval must be a whole number of hours, got {interval!r}")
    rng = np.random.default_rng(seed)
    n, m = int(hours), len(coins)
    first = np.array([COINS[c][0] for c in coins])
    vol = np.array([COINS[c][1] for c in coins]) / np.sqrt(HOURS_PER_YEAR)
    bias = np.array([COINS[c][2] for c in coins]) / HOURS_PER_YEAR
    drift = rng.normal(0.3, 0.8, m) / HOURS_PER_YEAR  # annual drifts around +30 %, widely spread
    dof = 4.0
    shocks = rng.standard_t(dof, size=(n, m + 1)) / np.sqrt(dof / (dof - 2))
    loading = 0.7
    eps = loading * shocks[:, :1] + np.sqrt(1 - loading**2) * shocks[:, 1:]
    log_ret = drift - 0.5 * vol**2 + vol * eps
    log_ret[0] = 0.0
    close = first * np.exp(np.cumsum(log_ret, axis=0))
    # funding: interest + a premium that chases the trailing week's return, mean-reverting with noise
    week = 24 * 7
    cum = np.vstack([np.zeros((1, m)), np.cumsum(log_ret, axis=0)])
    trailing = cum[1:] - cum[np.maximum(np.arange(1, n + 1) - week, 0)]
    target = bias + 4.0 * trailing / HOURS_PER_YEAR  # +10 % in a week -> about +40 % a year of premium
    phi = 0.5 ** (1 / 24)  # a half-life of a day
    noise = rng.normal(0.0, 0.03 / HOURS_PER_YEAR, size=(n, m))
    premium = np.empty((n, m))
    level = target[0]
    for t in range(n):
        level = phi * level + (1 - phi) * target[t] + noise[t]
        premium[t] = level
    rate = np.clip(INTEREST_PER_HOUR + premium, -0.04, 0.04)  # Hyperliquid caps funding at 4 % an hour
    t0 = int(pd.Timestamp(start, tz="UTC").value // 1_000_000)
    hour = 3_600_000
    jitter = rng.integers(1, 600, size=(n, m))  # ms after the hour
    candles, funding = {}, {}
    width = step_h * hour
    for k, coin in enumerate(coins):
        rows = []
        for j in range(0, n - step_h + 1, step_h):
            o = close[j - 1, k] if j > 0 else first[k]  # a candle opens at the previous close
            c = close[j + step_h - 1, k]
            path = close[j : j + step_h, k]
            rows.append(
                {
                    "t": t0 + j * hour,
                    "T": t0 + j * hour + width - 1,
                    "s": coin,
                    "i": interval,
                    "o": _sig5(o),
                    "c": _sig5(c),
                    "h": _sig5(max(path.max(), o) * (1 + 0.2 * vol[k])),
                    "l": _sig5(min(path.min(), o) * (1 - 0.2 * vol[k])),
                    "v": f"{rng.uniform(10, 1000):.2f}",
                    "n": int(rng.integers(50, 5000)),
                }
            )
        candles[coin] = rows
        # the rate paid at the end of hour t (its candle's close)
        funding[coin] = [
            {
                "coin": coin,
                "fundingRate": f"{rate[t, k]:.8g}",
                "premium": f"{premium[t, k]:.8g}",
                "time": t0 + (t + 1) * hour + int(jitter[t, k]),
            }
            for t in range(n)
        ]
    prices, _ = prices_from_candles(candles, interval, source=f"synthetic-hyperliquid(seed={seed})")
    frame = pd.DataFrame(
        [
            {"time": pd.Timestamp(r["time"], unit="ms", tz="UTC"), "coin": c, "funding_rate": float(r["fundingRate"])}
            for c, rs in funding.items()
            for r in rs
        ]
    )
    rates, note = align_funding(frame, prices, source="synthetic funding")
    return SyntheticPerpMarket(candles=candles, funding=funding, prices=prices.with_funding(rates, note))

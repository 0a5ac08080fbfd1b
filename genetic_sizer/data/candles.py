"""Exchange candles -> prices: aligning the candles of several coins on one time index."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from genetic_sizer import vocab as V
from genetic_sizer.data.prices import MIN_BARS, Prices
from genetic_sizer.data.times import fmt_ts
from genetic_sizer.errors import ConfigError, DataError

__all__ = ["CandleReport", "prices_from_candles"]


@dataclass(frozen=True)
class CandleReport:
    """What aligning fetched candles found, per coin: candles received, grid bars missing, largest gap."""

    interval: str
    coins: dict
    dropped_bars: int
    first_bar: str
    last_bar: str

    def lines(self) -> list[str]:
        out = []
        for coin, r in self.coins.items():
            gap = f", largest gap {r['largest_gap_bars']} bars at {r['largest_gap_at']}" if r["missing"] else ""
            out.append(f"{coin}: {r['candles']} candles from {r['first']}, {r['missing']} missing in its span{gap}")
        if self.dropped_bars:
            out.append(f"{self.dropped_bars} bars dropped where some coin had no candle (prices are never filled)")
        return out


def prices_from_candles(candles: dict[str, list[dict]], interval: str, source: str = "hyperliquid") -> tuple:
    """Align candles of several coins on one time index; return (Prices, CandleReport).

    ``candles`` maps coin -> candles as the exchange sends them (``t`` open time in ms, ``c`` close, ``h`` high and
    ``l`` low as strings). The bar time is the candle's open time, the price its close; the high and low are the
    bar's range (:attr:`Prices.high`, :attr:`Prices.low`: the perp account tests liquidation within the bar on
    them). Bars where any coin has no candle (before a later listing, or exchange gaps) are dropped and reported,
    never filled.
    """
    if interval not in V.INTERVAL_MS:
        raise ConfigError(f"interval must be one of {list(V.INTERVAL_MS)}, got {interval!r}")
    step = V.INTERVAL_MS[interval]
    series, report = {}, {}
    ranges = {"high": {}, "low": {}}
    for coin, rows in candles.items():
        if not rows:
            raise DataError(f"{source}: no candles for {coin!r} in the requested window")
        try:
            t = np.array([int(r["t"]) for r in rows], dtype=np.int64)
            c = np.array([float(r["c"]) for r in rows], dtype=np.float64)
            h = np.array([float(r["h"]) for r in rows], dtype=np.float64)
            lo = np.array([float(r["l"]) for r in rows], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: malformed candle for {coin!r} ({exc!r})") from None
        order = np.argsort(t, kind="stable")
        t, c, h, lo = t[order], c[order], h[order], lo[order]
        keep = np.r_[True, t[1:] != t[:-1]]  # one candle per open time
        t, c, h, lo = t[keep], c[keep], np.maximum(h[keep], c[keep]), np.minimum(lo[keep], c[keep])  # c in range
        gaps = np.diff(t) // step - 1
        worst = int(np.argmax(gaps)) if gaps.size else 0
        report[coin] = {
            "candles": int(t.size),
            "first": fmt_ts(pd.Timestamp(t[0], unit="ms", tz="UTC")),
            "missing": int(gaps.sum()) if gaps.size else 0,
            "largest_gap_bars": int(gaps[worst]) if gaps.size else 0,
            "largest_gap_at": fmt_ts(pd.Timestamp(t[worst], unit="ms", tz="UTC")) if gaps.size else None,
        }
        when = pd.to_datetime(t, unit="ms", utc=True)
        series[coin] = pd.Series(c, index=when)
        ranges["high"][coin], ranges["low"][coin] = pd.Series(h, index=when), pd.Series(lo, index=when)
    frame = pd.DataFrame(series)
    complete = frame.dropna()
    if len(complete) < MIN_BARS:
        raise DataError(f"{source}: only {len(complete)} bars where every coin has a candle; fetch a longer window")
    # Hyperliquid trades around the clock: a 365-day year of bars, whatever the window's weekdays
    prices = Prices.from_frame(
        complete, source=source, leading_gaps="error", periods_per_year=365 * V.INTERVAL_MS["1d"] / step
    )
    fields = {k: pd.DataFrame(v).loc[complete.index, list(complete.columns)].to_numpy() for k, v in ranges.items()}
    prices = prices.with_fields(fields)
    rep = CandleReport(
        interval=interval,
        coins=report,
        dropped_bars=len(frame) - len(complete),
        first_bar=fmt_ts(complete.index[0]),
        last_bar=fmt_ts(complete.index[-1]),
    )
    return prices, rep

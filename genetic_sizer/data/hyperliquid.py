"""Hyperliquid history for evolution: fetch candles (and funding) through the exchange client, align them, save
them as Parquet (the ``fetch`` command), with the exchange's ``meta`` (each coin's maximum leverage and margin
tiers) beside them."""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from pathlib import Path

from genetic_sizer.data.candles import prices_from_candles
from genetic_sizer.data.funding import FUNDING_SETTLEMENT, funding_path_for, save_funding
from genetic_sizer.data.loaders import save_parquet
from genetic_sizer.data.margin import meta_path_for, save_meta
from genetic_sizer.data.times import parse_bound
from genetic_sizer.errors import ConfigError
from genetic_sizer.storage.files import check_new_file
from genetic_sizer.vocab import INTERVAL_MS

__all__ = ["check_coins", "fetch_history"]


def _ms(value, name: str) -> int:
    try:
        ts = parse_bound(value, name)
    except Exception:
        raise ConfigError(f"--{name} must be a date or time, got {value!r}") from None
    return int(ts.value // 1_000_000)


def check_coins(coins, listed) -> None:
    """Raise ConfigError for coins the exchange does not list, naming the nearest valid names."""
    for coin in coins:
        if coin not in listed:
            near = difflib.get_close_matches(coin, list(listed), n=3, cutoff=0.4) or difflib.get_close_matches(
                coin.upper(), list(listed), n=3, cutoff=0.4
            )
            raise ConfigError(f"unknown coin {coin!r}; nearest listed names: {near or sorted(listed)[:5]}")


def fetch_history(
    client,
    coins,
    interval: str,
    start,
    end=None,
    out: str | Path = "data/hyperliquid.parquet",
    *,
    funding: bool = True,
    on_progress: Callable[[str, int], None] | None = None,
    force: bool = False,
):
    """Fetch candles (and funding) for ``coins``, align them, save Parquet; return (Prices, report, paths).

    The candles are saved with their highs and lows (long form, :func:`~genetic_sizer.data.loaders.save_parquet`),
    the exchange's ``meta`` answer as ``NAME.meta.json`` (each coin's maximum leverage and margin tiers: the perp
    account's maintenance margin), and the funding rows, up to the last candle's close, as ``NAME.funding.parquet``
    with the price each payment was made at: the close of its hour, from the candles for intervals of an hour or
    less and from the hourly candles, fetched too, for coarser intervals (the exchange serves only the newest 5000
    candles of an interval: older payments get no price and are charged at their bar's close, which loading says).
    An existing ``out`` (or funding or meta file next to it) is a :class:`ConfigError` before anything is fetched,
    unless ``force``."""
    check_new_file(out, "--out", force=force)
    if funding:
        check_new_file(funding_path_for(out), "funding file", force=force)
    check_new_file(meta_path_for(out), "meta file", force=force)
    if interval not in INTERVAL_MS:
        raise ConfigError(f"--interval must be one of {list(INTERVAL_MS)}, got {interval!r}")
    start_ms = _ms(start, "start")
    end_ms = _ms(end, "end") if end is not None else int(time.time() * 1000)
    if end_ms <= start_ms:
        raise ConfigError(f"--end ({end}) must be after --start ({start})")
    document = client.meta_document()
    check_coins(coins, {a.get("name") for a in document["universe"]})
    candles, rates, hourly = {}, {}, {}
    step = INTERVAL_MS[interval]
    hour = int(FUNDING_SETTLEMENT.value // 1_000_000)
    for coin in coins:
        candles[coin] = client.candles(
            coin,
            interval,
            start_ms,
            end_ms,
            on_page=(lambda pages, n, c=coin: on_progress(c, n)) if on_progress else None,
        )
        if funding:
            last_close = max([c["t"] for c in candles[coin]], default=end_ms) + step  # the last bar's funding too
            rates[coin] = client.funding(coin, start_ms, max(end_ms, last_close))
            hours = candles[coin] if step <= hour else client.candles(coin, "1h", start_ms, max(end_ms, last_close))
            width = min(step, hour)
            hourly[coin] = {int(c["t"]) + width: float(c["c"]) for c in hours if (int(c["t"]) + width) % hour == 0}
    prices, report = prices_from_candles(candles, interval, source=f"hyperliquid:{Path(out).name}")
    paths = [save_parquet(prices, out), save_meta(document, meta_path_for(out))]
    if funding:
        paths.append(save_funding(rates, funding_path_for(out), hourly))
    return prices, report, paths

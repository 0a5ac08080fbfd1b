"""Hyperliquid history for evolution: fetch candles (and funding) through the exchange client, align them, save
them as Parquet (the ``fetch`` command)."""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from pathlib import Path

from genetic_sizer.data.candles import prices_from_candles
from genetic_sizer.data.funding import funding_path_for, save_funding
from genetic_sizer.data.loaders import save_parquet
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

    An existing ``out`` (or funding file next to it) is a :class:`ConfigError` before anything is fetched, unless
    ``force``."""
    check_new_file(out, "--out", force=force)
    if funding:
        check_new_file(funding_path_for(out), "funding file", force=force)
    if interval not in INTERVAL_MS:
        raise ConfigError(f"--interval must be one of {list(INTERVAL_MS)}, got {interval!r}")
    start_ms = _ms(start, "start")
    end_ms = _ms(end, "end") if end is not None else int(time.time() * 1000)
    if end_ms <= start_ms:
        raise ConfigError(f"--end ({end}) must be after --start ({start})")
    check_coins(coins, client.meta())
    candles, rates = {}, {}
    for coin in coins:
        candles[coin] = client.candles(
            coin,
            interval,
            start_ms,
            end_ms,
            on_page=(lambda pages, n, c=coin: on_progress(c, n)) if on_progress else None,
        )
        if funding:
            rates[coin] = client.funding(coin, start_ms, end_ms)
    prices, report = prices_from_candles(candles, interval, source=f"hyperliquid:{Path(out).name}")
    paths = [save_parquet(prices, out)]
    if funding:
        paths.append(save_funding(rates, funding_path_for(out)))
    return prices, report, paths

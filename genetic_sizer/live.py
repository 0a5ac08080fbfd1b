"""Live work against Hyperliquid: fetching history for evolution, and sizing positions from a champion.

Orchestration only: the exchange adapter (:mod:`genetic_sizer.exchange`) talks to the SDK, the sizer
(:mod:`genetic_sizer.sizer`) computes the plan, :mod:`genetic_sizer.data` owns the files. Nothing here
sees the secret key; the journal records plans and results, never credentials.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from genetic_sizer import data as D
from genetic_sizer.champion import Champion
from genetic_sizer.errors import ConfigError, ExchangeError, RetryableExchangeError
from genetic_sizer.rounding import limit_price
from genetic_sizer.sizer import Plan, SizerSettings, plan_orders

__all__ = [
    "DEFAULT_SLIPPAGE",
    "SizeResult",
    "append_journal",
    "check_coins",
    "fetch_history",
    "jsonable",
    "parse_period",
    "run_every",
    "size_once",
]

DEFAULT_SLIPPAGE = 0.01
"""IOC limit orders are priced this far beyond the mid (1%): far enough to fill, a bound on the price paid."""


def _ms(value, name: str) -> int:
    try:
        ts = D._parse_bound(value, name)
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
):
    """Fetch candles (and funding) for ``coins``, align them, save Parquet; return (Prices, report, paths)."""
    if interval not in D.INTERVAL_MS:
        raise ConfigError(f"--interval must be one of {list(D.INTERVAL_MS)}, got {interval!r}")
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
    prices, report = D.prices_from_candles(candles, interval, source=f"hyperliquid:{Path(out).name}")
    paths = [D.save_parquet(prices, out)]
    if funding:
        paths.append(D.save_funding(rates, Path(out).with_suffix(".funding.parquet")))
    return prices, report, paths


# ---------------------------------------------------------------------------------------- sizing
@dataclass
class SizeResult:
    """One sizing pass: the plan, what was sent and what came back, and the drift left afterwards."""

    time: str
    network: str
    address: str
    executed: bool
    plan: Plan
    results: list = field(default_factory=list)
    drift: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "time": self.time,
            "network": self.network,
            "address": self.address,
            "executed": self.executed,
            "plan": self.plan.to_dict(),
            "results": [asdict(r) if hasattr(r, "__dataclass_fields__") else r for r in self.results],
            "drift": self.drift,
            "errors": self.errors,
        }


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plan(client, champion: Champion, settings: SizerSettings, address: str):
    meta = client.meta()
    mids = client.mids()
    state = client.account(address)
    weights = dict(zip(champion.assets, (float(w) for w in champion.weights), strict=True))
    return plan_orders(weights, state.account_value, state.positions, mids, meta, settings), meta


def size_once(
    client,
    champion: Champion,
    settings: SizerSettings,
    *,
    address: str,
    network: str,
    execute: bool = False,
    slippage: float = DEFAULT_SLIPPAGE,
    journal: str | Path | None = None,
    run_id: str | None = None,
) -> SizeResult:
    """Plan (and with ``execute``, send) the orders that move the account to the champion's weights.

    Reductions go in a first request and increases in a second, so the margin freed by the first funds the
    second. Every order carries a client order id derived from ``run_id``, the coin and its leg, so a retried
    request can never fill twice. After sending, the account is re-read and the residual drift per coin
    (target - position, in USD) is reported.
    """
    plan, meta = _plan(client, champion, settings, address)
    result = SizeResult(_now(), network, address, execute, plan)
    if execute and plan.orders:
        from genetic_sizer.exchange import OrderIntent, make_cloid

        run_id = run_id or result.time
        intents = [
            OrderIntent(
                coin=o.coin,
                is_buy=o.is_buy,
                size=o.size,
                limit_px=limit_price(o.mid, o.is_buy, slippage, meta[o.coin].sz_decimals),
                reduce_only=o.reduce_only,
                cloid=make_cloid(f"{run_id}:{o.coin}:{o.leg}"),
            )
            for o in plan.orders
        ]
        for group in ([i for i in intents if i.reduce_only], [i for i in intents if not i.reduce_only]):
            if group:
                result.results.extend(client.place_orders(group))
        result.errors = [f"{r.coin}: {r.error}" for r in result.results if getattr(r, "status", "") == "rejected"]
        after = client.account(address)
        mids = client.mids()
        for c in plan.coins:
            if c.coin in meta and c.coin in mids:
                now = after.positions.get(c.coin, 0.0)
                result.drift[c.coin] = {
                    "target": c.target,
                    "position": now,
                    "drift_usd": (c.target - now) * float(mids[c.coin]),
                }
    if journal is not None:
        append_journal(journal, result.to_dict())
    return result


def jsonable(value):
    """``value`` with every non-finite float (a mid that does not exist, say) replaced by None, so that it
    serializes as standard JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def append_journal(path: str | Path, record: dict) -> None:
    """Append one JSON line (plans and results only: no credentials ever reach this function)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(jsonable(record), allow_nan=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_period(text: str) -> float:
    """'30s', '15m', '1h', '1d' -> seconds."""
    text = str(text).strip()
    if len(text) >= 2 and text[-1] in _UNITS and text[:-1].replace(".", "", 1).isdigit():
        seconds = float(text[:-1]) * _UNITS[text[-1]]
        if seconds > 0:
            return seconds
    raise ConfigError(f"--every must be a period like 30s, 15m, 1h or 1d, got {text!r}")


def run_every(
    period_s: float,
    once: Callable[[int], SizeResult],
    *,
    report: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    max_runs: int | None = None,
) -> int:
    """Call ``once(k)`` every ``period_s`` seconds until Ctrl-C (or ``max_runs``); temporary exchange errors
    are reported and retried at the next period, not fatal. Returns the number of passes made."""
    runs = 0
    next_at = time.monotonic()
    try:
        while max_runs is None or runs < max_runs:
            try:
                once(runs)
            except (RetryableExchangeError, ExchangeError) as exc:
                report(f"pass {runs}: {type(exc).__name__}: {exc}; trying again next period")
            runs += 1
            if max_runs is not None and runs >= max_runs:
                break
            next_at += period_s
            sleep(max(0.0, next_at - time.monotonic()))
    except KeyboardInterrupt:
        report(f"stopped after {runs} passes")
    return runs

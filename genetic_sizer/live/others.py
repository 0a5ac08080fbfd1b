"""Another trader on the same account, seen from the exchange (:func:`check_other_traders`).

The account lock (:class:`~genetic_sizer.live.state.AccountStore`) keeps a second trader off an account on this
machine; a trader on another machine, or with another state directory, is only visible on the exchange: every
client order id the live sizer sends carries its trader id (:func:`~genetic_sizer.live.guards.order_cloid`), so a
fill or a resting order of the account whose id carries a different one is another instance at work.
"""

from __future__ import annotations

import datetime as _dt

from genetic_sizer.errors import AnotherTrader
from genetic_sizer.live.guards import trader_of

__all__ = ["MAX_LOOKBACK", "check_other_traders", "foreign_activity"]

MAX_LOOKBACK = 86400.0
"""How far before this process started another trader's fills are looked for, at most (seconds): the loop's
period, capped at a day. Older fills are history (a retired journal or installation), not a running trader."""


def foreign_activity(fills, orders, trader: str, since_ms: int) -> list[dict]:
    """The fills since ``since_ms`` and the resting orders whose client order ids carry a trader id other than
    ``trader`` (oldest first): {"trader", "kind", "coin", "cloid", "time_ms"}."""
    found = []
    for f in fills:
        other = trader_of(f.cloid)
        if other is not None and other != trader and f.time_ms >= since_ms:
            found.append({"trader": other, "kind": "fill", "coin": f.coin, "cloid": f.cloid, "time_ms": f.time_ms})
    for o in orders:
        other = trader_of(o.cloid)
        if other is not None and other != trader:
            found.append(
                {"trader": other, "kind": "open order", "coin": o.coin, "cloid": o.cloid, "time_ms": o.time_ms}
            )
    return sorted(found, key=lambda x: x["time_ms"])


def check_other_traders(session, since: float) -> None:
    """Raise :class:`~genetic_sizer.errors.AnotherTrader` (journaled as an ``other_trader`` record) when the
    exchange shows fills since ``since`` (seconds since the epoch), or resting orders, of the session's account
    whose client order ids carry another trader's id than ``session.trader_id``."""
    trader = getattr(session, "trader_id", None)
    if not session.config.execute or trader is None:
        return
    client = session.client
    found = foreign_activity(
        client.fills(session.address), client.open_orders(session.address), trader, int(since * 1000)
    )
    if not found:
        return
    first = found[0]
    when = _dt.datetime.fromtimestamp(first["time_ms"] / 1000, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    traders = sorted({f["trader"] for f in found})
    session.record({"event": "other_trader", "traders": traders, "this_trader": trader, "seen": found[:20]})
    raise AnotherTrader(
        f"another genetic_sizer trader ({', '.join(traders)}; this one is {trader}) acts on account {session.address} "
        f"on {session.network}: the exchange shows its {first['kind']} in {first['coin']} (cloid {first['cloid']}) at "
        f"{when}, and {len(found) - 1} more. Two traders on one account double every order: stop the other one "
        "(its journal's header names its trader id). If it is stopped for good, this check clears once its last "
        "fill is older than the loop's period (at most a day) before a new start"
    )

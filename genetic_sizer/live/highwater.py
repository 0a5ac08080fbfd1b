"""The equity high-water mark the drawdown limit measures from (:func:`high_water`): the highest of what the journal
and the account's state directory recorded since the kill switch was last reset; where both are missing (a deleted
journal and state directory), rebuilt from the exchange's account history adjusted for deposits and withdrawals
(:func:`rebuild_high_water`), so that deleting files never resets the mark."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

from genetic_sizer.live.guards import trader_of

__all__ = ["high_water", "rebuild_high_water"]


def rebuild_high_water(
    values: Sequence[tuple[int, float]], flows: Sequence, since_ms: int, now_ms: int, equity: float
) -> float:
    """The flow-adjusted high-water mark since ``since_ms``: the largest V_t + (money in - money out after t) over
    the recorded account values V_t (``values``: (ms, value)) from ``since_ms`` on and the equity now. A deposit
    after the peak raises the level the account should be at; a withdrawal lowers it. ``flows``: objects with
    ``time_ms`` and ``usd`` (signed, into the account)."""
    flows = sorted(flows, key=lambda f: f.time_ms)
    best = equity
    for t, v in values:
        if t < since_ms or t > now_ms:
            continue
        after = sum(f.usd for f in flows if t < f.time_ms <= now_ms)
        best = max(best, v + after)
    return best


def high_water(session, equity: float) -> float | None:
    """The high-water mark for a pass that reads ``equity``: the highest of the journal's (since the last reset)
    and the state directory's. Where both are missing and a drawdown limit is set, it is rebuilt from the exchange
    (:func:`rebuild_high_water`) over the time this sizer traded the account (from the oldest fill whose client
    order id carries a live sizer's mark, and not before the last reset) and journaled as a ``high_water`` record;
    None when the account was never traded by the sizer (the mark starts at this equity)."""
    store = getattr(session, "store", None)
    known = [v for v in (session.state.high_water, store.high_water if store is not None else None) if v is not None]
    if known:
        return max(known)
    if store is None or not session.config.execute or session.config.limits.max_drawdown is None:
        return None
    client = session.client
    ours = [f.time_ms for f in client.fills(session.address) if trader_of(f.cloid) is not None]
    if not ours:
        return None
    resets = [t for t in (store.high_water_since, session.state.reset_ts) if t is not None]
    since_ms = max([min(ours), *(int(t * 1000) for t in resets)])
    now_ms = int(session.clock() * 1000)
    flows = client.ledger(since_ms, None, session.address)
    values = client.value_history(session.address)
    mark = rebuild_high_water(values, flows, since_ms, now_ms, equity)
    since = _dt.datetime.fromtimestamp(since_ms / 1000, _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    session.record(
        {
            "event": "high_water",
            "source": "exchange",
            "high_water": mark,
            "since_ms": since_ms,
            "points": sum(1 for t, _ in values if t >= since_ms),
            "flows": [{"time_ms": f.time_ms, "kind": f.kind, "usd": f.usd} for f in flows],
        }
    )
    session.report(
        f"high-water mark rebuilt from the exchange's account history since {since}: ${mark:,.2f} (journal and state "
        f"directory had none; {len(flows)} deposit(s)/withdrawal(s) adjusted for)"
    )
    store.note_equity(mark, session.clock())
    return mark

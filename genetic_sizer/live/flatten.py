"""Closing every position, coin by coin (:func:`flatten_positions`): the way out when the kill switch fires or the
stop file asks for it.

Each coin is closed by its own reduce-only IOC request, so that one coin that cannot trade (unlisted, halted, no
price) never keeps the others open. A coin without a mid is priced from its mark, else its oracle price
(``metaAndAssetCtxs``). What an IOC leaves (no match, a partial fill) is sent again in the next round with the
slippage doubled, up to :data:`FLATTEN_MAX_SLIPPAGE`; a coin the exchange rejects for another reason is not retried.
The positions tracked are the start's plus the settled fills (a read right after a fill can trail it). What is left
open is journaled (``left_open`` of the flatten's ``pass_end``) and reported, with why.
"""

from __future__ import annotations

from genetic_sizer.errors import ExchangeError, GeneticSizerError
from genetic_sizer.exchange.rounding import limit_price
from genetic_sizer.live.reconcile import settle_fills
from genetic_sizer.live.sizer import PlannedOrder

__all__ = ["FLATTEN_MAX_SLIPPAGE", "NO_MATCH", "flatten_positions", "flatten_price"]

FLATTEN_MAX_SLIPPAGE = 0.10
"""The widest IOC limit a flatten goes to: 10% beyond the price (the slippage doubles each round up to it)."""

NO_MATCH = "could not immediately match"


def flatten_price(coin: str, mids, contexts) -> tuple[float | None, str]:
    """(price, source) to close ``coin`` at: its mid, else its mark price, else its oracle price; (None, why) when
    it has none."""
    mid = mids.get(coin)
    if mid is not None and mid > 0:
        return float(mid), "mid"
    ctx = (contexts or {}).get(coin)
    for source in ("mark", "oracle"):
        px = getattr(ctx, f"{source}_px", None) if ctx is not None else None
        if px is not None and px > 0:
            return float(px), source
    return None, "no mid, mark or oracle price"


def flatten_positions(session, orders, pid: str, label: str, result, snap) -> dict[str, dict]:
    """Close every position of the session's account (see the module); returns coin -> {"size", "why"} of what is
    left open (empty: flat). Never raises for one coin's failure; journals a ``pass_end`` for ``pid/flatten``."""
    fpid = f"{pid}/flatten"
    client = session.client
    meta = snap.meta
    positions = {c: float(s) for c, s in snap.account.positions.items() if s}
    passes = session.state.passes
    attempt = passes[fpid].next_attempt if fpid in passes else 0
    slippage = min(session.settings.slippage, FLATTEN_MAX_SLIPPAGE)
    contexts = dict(snap.contexts or {})
    given_up: dict[str, str] = {}
    last_error: dict[str, str] = {}
    mids = snap.mids
    rounds = 0
    while True:
        open_ = {c: s for c, s in positions.items() if abs(s) > 1e-12 and c not in given_up}
        if not open_:
            break
        if rounds:
            try:
                mids = client.mids()
            except GeneticSizerError as exc:
                last_error = dict.fromkeys(open_, f"reading mids: {exc}")
        if any(c not in mids for c in open_):
            try:
                contexts.update(client.asset_contexts())
            except GeneticSizerError as exc:
                session.report(f"flatten: cannot read mark/oracle prices ({exc})")
        used = attempt
        for coin, size in sorted(open_.items()):
            info = meta.get(coin)
            if info is None:
                given_up[coin] = "the exchange does not list it: it cannot trade"
                continue
            price, source = flatten_price(coin, mids, contexts)
            if price is None:
                given_up[coin] = source
                continue
            side = "sell" if size > 0 else "buy"
            try:
                px = limit_price(price, side == "buy", slippage, info.sz_decimals)
            except ValueError as exc:
                given_up[coin] = f"no valid limit price at {source} {price:g}: {exc}"
                continue
            order = PlannedOrder(coin, side, abs(size), price, abs(size) * price, True, "close", px)
            session.record(
                {
                    "event": "flatten",
                    "pass": fpid,
                    "period": label,
                    "round": rounds,
                    "coin": coin,
                    "position": size,
                    "price": price,
                    "price_source": source,
                    "slippage": slippage,
                    "limit_px": px,
                }
            )
            try:
                intents, a, _ = orders.intents(fpid, [order], attempt)
                if intents is None:  # the exchange knows this cloid: another attempt next round
                    used = max(used, a)
                    continue
                outcomes = orders.send(result, fpid, label, a, [order], intents)
                used = max(used, a + 1)
                (settled,) = settle_fills(
                    client.lookup_orders, intents, outcomes, timeout=session.config.settle_timeout
                )
            except ExchangeError as exc:
                last_error[coin] = f"{type(exc).__name__}: {exc}"
                session.report(f"flatten: {coin}: {last_error[coin]}")
                continue
            filled = float(settled.filled_size or 0.0)
            positions[coin] = round(size - (filled if size > 0 else -filled), 10)
            if settled.status == "rejected" and NO_MATCH not in (settled.error or "").lower():
                given_up[coin] = f"rejected: {settled.error}"
            elif abs(positions[coin]) > 1e-12:
                last_error[coin] = (
                    f"no match within {slippage:.2%} of its {source} price {price:g}"
                    if filled == 0
                    else f"filled {filled:g} of {abs(size):g} within {slippage:.2%} of its {source} price {price:g}"
                )
        attempt = max(used, attempt + 1)
        rounds += 1
        if slippage >= FLATTEN_MAX_SLIPPAGE:
            break
        slippage = min(slippage * 2, FLATTEN_MAX_SLIPPAGE)
    left = {
        c: {"size": s, "why": given_up.get(c) or last_error.get(c) or "not closed"}
        for c, s in sorted(positions.items())
        if abs(s) > 1e-12
    }
    status = "complete" if not left else "partial"
    session.record({"event": "pass_end", "pass": fpid, "period": label, "status": status, "left_open": left})
    if left:
        what = "; ".join(f"{c} {v['size']:g} ({v['why']})" for c, v in left.items())
        session.report(f"flatten: {status}; LEFT OPEN: {what}; close them by hand")
    else:
        session.report(f"flatten: complete ({rounds} round(s))")
    return left

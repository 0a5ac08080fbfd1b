"""Reads of one Hyperliquid API (its ``/info`` endpoint): the perpetual universe, mid and reference prices,
an account's margin and positions, candles and funding history, typed and retried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from genetic_sizer.errors import ExchangeError
from genetic_sizer.exchange.transport import Transport
from genetic_sizer.exchange.wire import (
    AccountState,
    AssetContext,
    AssetMeta,
    _field,
    _list,
    _number,
    _parse_account,
    _parse_candle,
    _parse_funding,
    _parse_meta,
)
from genetic_sizer.vocab import INTERVAL_MS

__all__ = ["InfoReader"]

# Shortest possible length of each candle interval, to know when no further candle can start in a range.
_INTERVAL_MS = {**INTERVAL_MS, "1M": 28 * INTERVAL_MS["1d"]}


class InfoReader:
    """The reading part of :class:`~genetic_sizer.exchange.client.HyperliquidClient`: every read goes
    through ``transport`` and is retried on transport failures."""

    def __init__(self, transport: Transport):
        self._t = transport

    def meta(self) -> dict[str, AssetMeta]:
        """The perpetual universe: name -> AssetMeta (delisted assets included, flagged)."""
        info = self._t.ensure()
        raw, self._t.fresh_meta = self._t.fresh_meta, None
        if raw is None:
            raw = self._t.retrying("meta", info.meta)
        assets = _parse_meta(raw)
        # Keep the SDK's name -> asset maps current (a new listing after the client was built).
        info.set_perp_meta(raw, 0)
        if self._t.exchange is not None:
            self._t.exchange.info.set_perp_meta(raw, 0)
        return assets

    def meta_document(self) -> dict:
        """The ``meta`` answer as the exchange sent it (the universe, with each perpetual's ``maxLeverage`` and
        ``marginTableId``, and the ``marginTables``), checked as :meth:`meta` checks it: what ``genetic-sizer data
        fetch`` saves beside the candles."""
        info = self._t.ensure()
        raw = self._t.retrying("meta", info.meta)
        _parse_meta(raw)
        return raw

    def mids(self) -> dict[str, float]:
        """Mid prices of every traded coin (coin -> price)."""
        info = self._t.ensure()
        raw = self._t.retrying("allMids", info.all_mids)
        if not isinstance(raw, dict):
            raise ExchangeError(f"allMids must be an object, got {type(raw).__name__}")
        return {str(coin): _number(px, f"allMids.{coin}") for coin, px in raw.items()}

    def account(self, address: str | None = None) -> AccountState:
        """Margin summary and positions of ``address`` (default: the credentials' account)."""
        info = self._t.ensure()
        user = address if address is not None else self._t.require_account()
        raw = self._t.retrying("clearinghouseState", lambda: info.user_state(user))
        return _parse_account(raw, user)

    def asset_contexts(self) -> dict[str, AssetContext]:
        """Mark and oracle prices (and the book's mid when there is one) of every perpetual
        (``metaAndAssetCtxs``): coin -> :class:`AssetContext`."""
        info = self._t.ensure()
        raw = self._t.retrying("metaAndAssetCtxs", info.meta_and_asset_ctxs)
        if not isinstance(raw, list) or len(raw) != 2:
            raise ExchangeError(f"metaAndAssetCtxs must be a list [meta, contexts], got {type(raw).__name__}")
        assets = _parse_meta(raw[0])
        ctxs = _list(raw[1], "metaAndAssetCtxs[1]")
        if len(ctxs) != len(assets):
            raise ExchangeError(f"metaAndAssetCtxs has {len(ctxs)} contexts for {len(assets)} assets")
        out: dict[str, AssetContext] = {}
        for (name, _), ctx in zip(assets.items(), ctxs, strict=True):
            where = f"metaAndAssetCtxs.{name}"
            mid = ctx.get("midPx") if isinstance(ctx, Mapping) else None
            out[name] = AssetContext(
                coin=name,
                mark_px=_number(_field(ctx, "markPx", where), f"{where}.markPx"),
                oracle_px=_number(_field(ctx, "oraclePx", where), f"{where}.oraclePx"),
                mid_px=_number(mid, f"{where}.midPx") if mid is not None else None,
            )
        return out

    def candles(
        self,
        coin: str,
        interval: str,
        start_ms: int,
        end_ms: int,
        *,
        on_page: Callable[[int, int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Every candle with open time ``t`` in [start_ms, end_ms], ascending, each exactly once.

        candleSnapshot answers at most the newest 5000 candles of a range, so this pages: after each
        answer it asks again for the parts of the range the answer did not cover (before its oldest and
        after its newest candle), until a part is provably empty, answers nothing, or adds nothing new.
        Numbers are converted (t, T, n int; o, h, l, c, v float). ``on_page(pages, candles_so_far)``
        is called after each answer."""
        info = self._t.ensure()
        name = self._t.coin(coin)
        start, end = int(start_ms), int(end_ms)
        if start > end:
            raise ValueError(f"start_ms {start_ms} is after end_ms {end_ms}")
        step = _INTERVAL_MS.get(interval, 1)
        seen: dict[int, dict[str, Any]] = {}
        gaps = [(start, end)]
        pages = 0
        while gaps:
            lo, hi = gaps.pop()
            raw = self._t.retrying(
                f"candleSnapshot {coin} {interval}",
                lambda lo=lo, hi=hi: info.candles_snapshot(name, interval, lo, hi),
            )
            page = [
                _parse_candle(c, f"candleSnapshot[{k}]")
                for k, c in enumerate(_list(raw, f"candleSnapshot {coin} {interval}"))
            ]
            page = [c for c in page if lo <= c["t"] <= hi]
            new = [c for c in page if c["t"] not in seen]
            for c in new:
                seen[c["t"]] = c
            pages += 1
            if on_page is not None:
                on_page(pages, len(seen))
            if not new:
                continue
            oldest = min(c["t"] for c in page)
            newest = max(c["t"] for c in page)
            if newest + step <= hi:
                gaps.append((newest + 1, hi))
            if oldest - step >= lo:
                gaps.append((lo, oldest - 1))
        return [seen[t] for t in sorted(seen)]

    def funding(
        self,
        coin: str,
        start_ms: int,
        end_ms: int,
        *,
        on_page: Callable[[int, int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Funding rows {coin, fundingRate, premium, time} with time in [start_ms, end_ms], ascending.

        fundingHistory answers at most 500 rows, oldest first: pages forward from the newest row seen
        until an answer adds nothing. ``on_page(pages, rows_so_far)`` is called after each answer."""
        info = self._t.ensure()
        name = self._t.coin(coin)
        start, end = int(start_ms), int(end_ms)
        if start > end:
            raise ValueError(f"start_ms {start_ms} is after end_ms {end_ms}")
        seen: dict[int, dict[str, Any]] = {}
        cursor = start
        pages = 0
        while cursor <= end:
            raw = self._t.retrying(
                f"fundingHistory {coin}",
                lambda cursor=cursor: info.funding_history(name, cursor, end),
            )
            rows = [_parse_funding(r, f"fundingHistory[{k}]") for k, r in enumerate(_list(raw, "fundingHistory"))]
            new = [r for r in rows if cursor <= r["time"] <= end and r["time"] not in seen]
            for r in new:
                seen[r["time"]] = r
            pages += 1
            if on_page is not None:
                on_page(pages, len(seen))
            if not new:
                break
            cursor = max(r["time"] for r in new) + 1
        return [seen[t] for t in sorted(seen)]

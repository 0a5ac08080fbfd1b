"""The account model a champion is traded in (:class:`Margin`): a champion evolved on the spot account model is refused
on perpetuals unless the user accepts it, and every coin the champion holds is set to cross margin at an integer
leverage before the first order that needs margin.

Hyperliquid sizes margin per coin: ``updateLeverage`` takes the margin mode (cross or isolated) and a whole number.
The live sizer sizes the book at a gross leverage ``L`` (the champion's, or ``--leverage``); with every coin at
``ceil(L)``x cross, the margin the book needs, sum |notional| / ceil(L) <= equity x L / ceil(L) <= equity, fits in
the account, whatever leverage the coins were left at by hand or by another program.
"""

from __future__ import annotations

import math

from genetic_sizer.errors import ConfigError
from genetic_sizer.runs.champion import Champion

__all__ = ["Margin", "leverage_setting", "spot_champion_differences"]


def leverage_setting(leverage: float, max_leverage: float) -> int:
    """The integer leverage a coin is set to for a book sized at gross ``leverage``: rounded up (a book at 1.5x
    needs 2x), at least 1, at most the coin's ``max_leverage``."""
    if not (isinstance(leverage, int | float) and math.isfinite(leverage) and leverage > 0):
        raise ConfigError(f"leverage must be a number > 0, got {leverage!r}")
    wanted = max(1, math.ceil(float(leverage) - 1e-9))  # 2.0000000001 (float noise) is 2x, not 3x
    return max(1, min(wanted, int(max_leverage)))


def spot_champion_differences(champion: Champion, leverage: float) -> str | None:
    """What differs when ``champion`` is traded as Hyperliquid perpetuals at ``leverage``: None for a perp champion,
    else a sentence naming what its backtest never saw (funding, margin, liquidation)."""
    if champion.market == "perp":
        return None
    sharpe = champion.metrics.get("sharpe")
    figures = f" (its sharpe {sharpe:.3g} included none of it)" if isinstance(sharpe, int | float) else ""
    return (
        f"{champion.path} is a spot champion (portfolio.market: spot): its backtest held the coins outright, with no "
        f"funding, no margin and no liquidation. Traded here it is a book of Hyperliquid perpetuals at {leverage:g}x "
        f"cross margin: every position pays or receives hourly funding{figures}, its margin is at risk of "
        f"liquidation, and a short is a perp short, not a sale of coins held"
    )


class Margin:
    """The margin side of one account and champion (the :class:`~genetic_sizer.live.session.Session`): the
    spot-champion check (:meth:`check_market`) and the per-coin margin mode and leverage (:meth:`prepare`)."""

    def __init__(self, session):
        self.session = session
        self.done: dict[str, int] = {}  # coin -> the leverage it was set to by this process

    def check_market(self) -> None:
        """Refuse to execute a spot champion on perpetuals unless ``LiveConfig.accept_spot_champion``
        (``--accept-spot-champion``); a dry run, or an accepted champion, is told what differs."""
        book = self.session.book  # a multi-strategy allocation: its strategies' champions hold the coins
        champions = list(book.strategies.values()) if book is not None else [self.session.champion]
        lev = self.session.settings.leverage
        text = "; ".join(t for c in champions if (t := spot_champion_differences(c, lev)) is not None) or None
        if text is None:
            return
        cfg = self.session.config
        if cfg.execute and not cfg.accept_spot_champion:
            raise ConfigError(
                f"{text}. Re-evolve it on perpetuals (portfolio.market: perp with funding, e.g. "
                "configs/hyperliquid.yaml), or pass --accept-spot-champion to trade it as perps anyway"
            )
        why = "--accept-spot-champion" if cfg.execute else "a dry run; --execute needs --accept-spot-champion"
        self.session.report(f"WARNING: {text} ({why})")

    def prepare(self, group) -> dict[str, int]:
        """Before orders that open or increase positions (``group``: PlannedOrders; reduce-only ones need no margin):
        set every listed coin the champion holds, and every coin of the group, to cross margin at
        :func:`leverage_setting` of the sizing leverage, once per process. Returns what it set (coin -> leverage; the
        ``send`` record that follows journals it as ``margin``); an exchange refusal raises (ExchangeError: the pass
        stops before any increase is sent)."""
        wanted = [o.coin for o in group if not o.reduce_only]
        if not wanted or not self.session.config.execute:
            return {}
        coins = [c for c in dict.fromkeys([*self.session.champion.holdings, *wanted]) if c not in self.done]
        if not coins:
            return {}
        meta = self.session.client.meta()
        leverage = self.session.settings.leverage
        changed: dict[str, int] = {}
        for coin in coins:
            info = meta.get(coin)
            if info is None or info.delisted:
                continue  # the plan refuses or skips such a coin; nothing to set
            value = leverage_setting(leverage, info.max_leverage)
            self.session.client.set_leverage(coin, value, cross=True)
            self.done[coin] = changed[coin] = value
        if changed:
            self.session.report(
                f"margin: cross, {', '.join(f'{c} {v}x' for c, v in changed.items())} (the book is sized at "
                f"{leverage:g}x; leverage rounded up, capped at each coin's maximum)"
            )
        return changed

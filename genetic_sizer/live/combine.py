"""One book from several strategies: a multi-strategy allocation (a champion evolved on ``data.strategies``, whose
assets are strategies) traded as the sum of its strategies' target positions. Pure: no I/O but :func:`parts_of`.

Each strategy ``k`` has its allocation ``a_k`` (the allocation champion's weight of it), its target weights
``w_k`` by coin (its own champion's), its gross leverage ``L_k`` (1 for a spot champion) and its calendar (its
champion's rebalance policy as wall-clock periods, :func:`~genetic_sizer.live.settings.calendar_of`). A pass sizes
the book as the simulation of the allocation run kept it, a portfolio of strategies:

* **capital**: strategy ``k`` trades with capital ``C_k``. When the allocation is rebalanced (the first pass, a pass
  in a new period of the allocation champion's calendar, or a changed allocation) ``C_k = a_k x E``, ``E`` the
  account value read at the pass. Otherwise ``C_k`` is what its part was worth when last set plus the profit or
  loss of the sizes it held since, at the mids now: ``C_k + sum_c q_kc (mid_c - mid_c at the set)``.
* **its part**: when its own calendar starts a new period (or it has no part yet), the part is re-set to
  its targets, ``q_kc = w_kc x L_k x C_k / mid_c`` (flat when ``C_k < 0``: a levered part that lost more than its
  capital is not reversed); otherwise it keeps the sizes it held (its own calendar decides
  when its part changes); a capital re-split in between scales the sizes it holds by ``C_k`` over what they are
  worth at the mids now (its mix as it drifted, as the allocation's simulation holds a strategy's stream). A
  calendar of None is buy and hold (``once``, :func:`~genetic_sizer.live.settings.
  calendar_of`): set on the first pass and never again on its own.
* **the book**: the sizes of coin ``c`` summed over the strategies, ``q_c = sum_k q_kc`` (a coin two strategies
  trade nets), expressed as the sizer's weights of ``E x L``, ``L = sum_k a_k L_k`` (the book's gross leverage at
  target): ``weight_c = q_c x mid_c / (E x L)``. :func:`~genetic_sizer.live.sizer.plan_orders` with
  ``leverage=L`` then sizes ``weight_c x E x L / mid_c = q_c`` (rounded to the coin's size step).

With every calendar due at a pass the book is the plain sum ``weight_c = sum_k a_k L_k w_kc / L``. What each part
held (:class:`Held`) is returned for the next pass (:meth:`Book.to_dict` / :meth:`Book.held_from`: JSON).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from genetic_sizer.errors import SizingError

__all__ = ["Book", "Held", "StrategyPart", "combine", "parts_of"]


@dataclass(frozen=True)
class StrategyPart:
    """One strategy of the allocation: ``name``, ``allocation`` (its weight in the allocation champion, >= 0),
    ``weights`` (its champion's target weight by coin), ``leverage`` (its gross leverage, > 0) and ``calendar``
    (a :class:`~genetic_sizer.live.guards.Period`: when its part changes; None: buy and hold)."""

    name: str
    allocation: float
    weights: Mapping[str, float]
    leverage: float = 1.0
    calendar: object | None = None

    def __post_init__(self):
        a, lev = self.allocation, self.leverage
        if not (isinstance(a, (int, float)) and math.isfinite(a) and a >= 0):
            raise SizingError(f"the allocation of strategy {self.name!r} must be a number >= 0, got {a!r}")
        if not (isinstance(lev, (int, float)) and math.isfinite(lev) and lev > 0):
            raise SizingError(f"the leverage of strategy {self.name!r} must be a positive number, got {lev!r}")
        for coin, w in self.weights.items():
            if not (isinstance(w, (int, float)) and math.isfinite(w)):
                raise SizingError(f"the weight of {coin!r} in strategy {self.name!r} must be a number, got {w!r}")


@dataclass(frozen=True)
class Held:
    """A strategy's part as the pass that last set it left it: the period of its calendar then (None: no calendar),
    its allocation then, its capital ``C_k`` then and the mids it was set at, and the sizes it holds by coin."""

    period: int | None
    allocation: float
    capital: float
    mids: dict[str, float]
    sizes: dict[str, float]


@dataclass(frozen=True)
class Book:
    """The combined book of a pass: ``weights`` (by coin, of account value x ``leverage``: the sizer's input),
    ``leverage`` (``sum_k a_k L_k``), ``sizes`` (the target size of each coin), ``parts`` (each strategy's
    :class:`Held` after this pass: the state of the next), ``allocation_period`` (the allocation calendar's period
    at this pass), ``changed`` (the strategies whose part was set at this pass), ``reasons`` (why, or why not) and
    ``capital`` (each strategy's capital ``C_k`` at this pass)."""

    weights: dict[str, float]
    leverage: float
    sizes: dict[str, float]
    parts: dict[str, Held]
    allocation_period: int | None
    changed: tuple[str, ...]
    reasons: dict[str, str] = field(default_factory=dict)
    capital: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The state a next pass needs, JSON-ready (:meth:`held_from` reads it back)."""
        return {
            "allocation_period": self.allocation_period,
            "parts": {n: vars(h).copy() for n, h in self.parts.items()},
        }

    @staticmethod
    def held_from(record: Mapping | None) -> tuple[int | None, dict[str, Held]]:
        """``(allocation_period, parts)`` of a :meth:`to_dict` record (None: a first pass)."""
        if not record:
            return None, {}
        parts = {str(n): Held(**h) for n, h in dict(record.get("parts") or {}).items()}
        return record.get("allocation_period"), parts


def _period(calendar, now: float) -> int | None:
    return None if calendar is None else int(calendar.index(now))


def combine(
    parts,
    account_value: float,
    mids: Mapping[str, float],
    now: float,
    *,
    calendar=None,
    state: Mapping | None = None,
) -> Book:
    """The book of a pass at time ``now`` (seconds since the epoch) for the strategies ``parts``
    (:class:`StrategyPart`), the account value ``account_value`` and ``mids``; ``calendar`` is the allocation
    champion's (a Period; None: buy and hold, the allocation is set on the first pass only) and ``state`` the
    previous pass's :meth:`Book.to_dict` (None: the first pass). See the module docstring for the rules."""
    parts = list(parts)
    if not parts:
        raise SizingError("a multi-strategy book needs at least one strategy")
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise SizingError(f"strategy names must be unique, got {names}")
    if not (isinstance(account_value, (int, float)) and math.isfinite(account_value) and account_value > 0):
        raise SizingError(f"account value is {account_value!r}: nothing to size (deposit margin first)")
    total = sum(p.allocation for p in parts)
    if not abs(total - 1.0) <= 1e-9:
        given = {p.name: p.allocation for p in parts}
        raise SizingError(f"the allocations must sum to 1, got {total!r} ({given})")
    last_period, held = Book.held_from(state)
    held_coins = {c for n in names if n in held for c in held[n].sizes}  # a held part is valued at the mids now
    for c in sorted({c for p in parts for c, w in p.weights.items() if w != 0} | held_coins):
        m = mids.get(c)
        if not (isinstance(m, (int, float)) and math.isfinite(m) and m > 0):
            raise SizingError(f"no valid mid price for {c!r} (got {m!r})")
    period = _period(calendar, now)
    realloc = not held or (calendar is not None and period != last_period)
    moved = {p.name for p in parts if p.name in held and held[p.name].allocation != p.allocation}
    changed_alloc = set(held) != set(names) or bool(moved)  # a new allocation re-splits the whole account value
    out, changed, reasons, capitals = {}, [], {}, {}
    for p in parts:
        before = held.get(p.name)
        own = _period(p.calendar, now)
        if realloc or changed_alloc:
            capital = float(p.allocation) * float(account_value)
            why = "the allocation was rebalanced" if held else "first pass"
            if changed_alloc and not realloc:
                why = "the allocation changed" + (
                    f" (its {before.allocation:g} -> {p.allocation:g})" if p.name in moved else ""
                )
            worth = (
                None
                if before is None
                else before.capital + sum(q * (mids[c] - before.mids[c]) for c, q in before.sizes.items())
            )
            if worth is not None and worth > 0 and before.sizes and (p.calendar is None or own == before.period):
                k = capital / worth  # its own calendar keeps the mix it drifted to: only its size follows the split
                scaled = {c: float(q * k) for c, q in before.sizes.items()}
                out[p.name] = Held(before.period, p.allocation, capital, {c: float(mids[c]) for c in scaled}, scaled)
                capitals[p.name] = capital
                changed.append(p.name)
                reasons[p.name] = (
                    f"scaled to its new capital ({worth:g} -> {capital:g}): {why}; its calendar holds its mix"
                )
                continue
        else:
            pnl = sum(q * (mids[c] - before.mids[c]) for c, q in before.sizes.items())
            capital = float(before.capital + pnl)
            why = None if p.calendar is None or own == before.period else "a new period of its calendar"
        if why is None:
            out[p.name] = before  # its sizes, and the capital and mids they were set at
            capitals[p.name] = capital
            cal = "buy and hold (no calendar)" if p.calendar is None else f"its calendar ({p.calendar.spec})"
            reasons[p.name] = f"held: {cal} is in the period it was set in"
            continue
        sizes = {c: float(w * p.leverage * capital / mids[c]) for c, w in p.weights.items() if w != 0}
        if capital < 0:  # a levered part lost more than its capital: w x L x C / mid would reverse its targets
            why, sizes = f"{why}; it lost its capital ({capital:g}): flat until the allocation is rebalanced", {}
        out[p.name] = Held(own, p.allocation, capital, {c: float(mids[c]) for c in sizes}, sizes)
        capitals[p.name] = capital
        changed.append(p.name)
        reasons[p.name] = f"set to its targets: {why}"
    leverage = float(sum(p.allocation * p.leverage for p in parts))
    sizes: dict[str, float] = {}
    for h in out.values():
        for c, q in h.sizes.items():
            sizes[c] = sizes.get(c, 0.0) + q
    weights = {c: q * mids[c] / (account_value * leverage) for c, q in sorted(sizes.items())}
    return Book(weights, leverage, dict(sorted(sizes.items())), out, period, tuple(changed), reasons, capitals)


def parts_of(allocation_champion) -> tuple[list[StrategyPart], object | None]:
    """The strategies of an allocation champion (a :class:`~genetic_sizer.runs.champion.Champion` evolved on
    ``data.strategies``, which its ``data.strategies`` records) read from their run directories, and the allocation
    champion's own calendar: ``(parts, calendar)``. A champion without strategies, or a strategy run without a
    champion, is a :class:`SizingError` naming it."""
    from pathlib import Path

    from genetic_sizer.errors import ChampionError
    from genetic_sizer.live.settings import calendar_of
    from genetic_sizer.runs.champion import load as load_champion

    champ = allocation_champion
    dirs = champ.data.get("strategies")
    if not isinstance(dirs, dict) or not dirs:
        raise SizingError(f"{champ.path}: not a multi-strategy allocation (its data has no strategies)")
    if set(dirs) != set(champ.assets):
        raise SizingError(f"{champ.path}: data.strategies {sorted(dirs)} are not its assets {list(champ.assets)}")
    parts = []
    for name in champ.assets:
        try:  # the run directory's champion file (a local directory: the live package reads no storage URLs)
            strategy = load_champion(Path(dirs[name]) / "champion.json")
        except ChampionError as exc:
            raise SizingError(f"{champ.path}: strategy {name!r}: {exc}") from None
        vol = strategy.portfolio.get("vol_target")
        where = "portfolio" if vol is not None else "strategy"  # a fixed target, or an evolved vol_target gene
        vol = vol if vol is not None else strategy.strategy.get("vol_target")
        if vol is not None:  # its stream was earned at vol-scaled exposures: as `genetic-sizer size` refuses it
            raise SizingError(
                f"{champ.path}: strategy {name!r} targets a volatility ({where}.vol_target {vol:g}), which needs the "
                "price history the live sizer does not read: combine strategies evolved without vol_target"
            )
        recorded = (champ.data.get("strategy_champions") or {}).get(name)  # runs.strategies.champion_identity
        weights = {a: float(w) for a, w in zip(strategy.assets, strategy.weights, strict=True)}
        now = {
            "config_sha256": strategy.config_sha256,
            "close_sha256": strategy.data["close_sha256"],
            "weights": weights,
        }
        if recorded is not None and now != recorded:
            raise SizingError(
                f"{champ.path}: strategy {name!r}: {strategy.path} is not the champion the allocation was evolved on "
                "(its config_sha256, data.close_sha256 or weights differ from the allocation's data.strategy_champions)"
                ": re-run the allocation on the strategies as they are"
            )
        parts.append(
            StrategyPart(name, champ.weight_of(name), weights, strategy.leverage or 1.0, calendar_of(strategy))
        )
    return parts, calendar_of(champ)

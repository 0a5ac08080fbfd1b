"""What a pass's fills imply, and the post-trade check that the exchange's positions agree.

Positions read right after a fill can trail it; the fills themselves, looked up by client order id (``orderStatus``,
else ``userFills``), are the exchange's record of what happened. So a pass keeps a :class:`PassFills`: the
positions it read at its start (``baseline``) plus every settled fill of its orders. Later rounds plan from
:meth:`PassFills.expected`, not from a fresh (possibly trailing) read, and after the pass :func:`post_trade_check`
reads the positions until they agree with it (they catch up within ``settle_timeout``), or raises
:class:`~genetic_sizer.errors.PositionMismatch`: something other than this pass moved the account (another trader,
a liquidation, an order that was lost). Partial fills are no mismatch: the expected positions are built from what
filled, not from what was ordered.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from genetic_sizer.errors import PositionMismatch
from genetic_sizer.exchange.wire import OrderIntent, OrderResult

__all__ = ["PassFills", "check_pass", "mismatches", "post_trade_check", "settle_fills"]


@dataclass
class PassFills:
    """A pass's positions at its start and the settled fills of its orders (cloid -> (coin, signed size))."""

    baseline: dict[str, float]
    fills: dict[str, tuple[str, float]] = field(default_factory=dict)

    def add(self, intent: OrderIntent, result: OrderResult) -> None:
        """Record the settled fill of ``intent`` (replacing an earlier figure for the same cloid)."""
        size = float(result.filled_size or 0.0)
        if size > 0:
            self.fills[intent.cloid] = (intent.coin, size if intent.is_buy else -size)
        else:
            self.fills.pop(intent.cloid, None)

    def expected(self) -> dict[str, float]:
        """coin -> the position the baseline plus the settled fills imply (zero positions omitted)."""
        out = dict(self.baseline)
        for coin, signed in self.fills.values():
            out[coin] = out.get(coin, 0.0) + signed
        return {c: round(s, 10) for c, s in out.items() if abs(s) > 1e-12}


def settle_fills(
    lookup: Callable[[Sequence[OrderIntent]], dict[str, OrderResult]],
    intents: Sequence[OrderIntent],
    outcomes: Sequence[OrderResult],
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[OrderResult]:
    """The settled outcome of each order of a request: what the exchange's record says of it by cloid
    (``lookup``: orderStatus, else userFills), polled every 0.2 s for up to ``timeout`` seconds until it reports
    every order the answer said filled; where it still reports nothing, the answer's own figure. An order the
    answer rejected and the exchange does not know stays rejected."""
    wanted = {i.cloid for i, r in zip(intents, outcomes, strict=True) if r.filled_size > 0 or r.status == "resting"}
    found: dict[str, OrderResult] = {}
    deadline = time.monotonic() + timeout
    while True:
        found.update(lookup(list(intents)))
        if wanted <= set(found) or time.monotonic() >= deadline:
            break
        sleep(0.2)
    out = []
    for i, r in zip(intents, outcomes, strict=True):
        s = found.get(i.cloid)
        agree = s is not None and s.status == r.status and math.isclose(s.filled_size, r.filled_size, abs_tol=1e-9)
        out.append(r if s is None or agree else s)  # the exchange's record wins where it differs
    return out


def _step(coin: str, meta: Mapping) -> float:
    info = meta.get(coin)
    decimals = getattr(info, "sz_decimals", None)
    return 10.0 ** -int(decimals) if isinstance(decimals, int) else 1e-8


def mismatches(expected: Mapping[str, float], positions: Mapping[str, float], meta: Mapping) -> dict[str, dict]:
    """coin -> {"expected", "position"} for every coin whose position differs from the expected one by more than
    rounding (half a size step of the coin: sizes have ``szDecimals`` decimals)."""
    out = {}
    for coin in sorted(set(expected) | set(positions)):
        want, have = float(expected.get(coin, 0.0)), float(positions.get(coin, 0.0))
        if not math.isclose(want, have, rel_tol=0.0, abs_tol=_step(coin, meta) / 2 + 1e-12):
            out[coin] = {"expected": want, "position": have}
    return out


def post_trade_check(
    read_positions: Callable[[], Mapping[str, float]],
    fills: PassFills,
    meta: Mapping,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, float], float]:
    """Read the positions (``read_positions``) until they equal what ``fills`` imply within rounding, polling every
    0.25 s for up to ``timeout`` seconds (a read can trail the fills). Returns (positions, seconds waited); raises
    :class:`~genetic_sizer.errors.PositionMismatch` naming each coin when they still differ, with ``mismatch``
    (coin -> expected, position) and ``positions`` attached."""
    expected = fills.expected()
    start = time.monotonic()
    while True:
        positions = dict(read_positions())
        diff = mismatches(expected, positions, meta)
        waited = time.monotonic() - start
        if not diff:
            return positions, waited
        if waited >= timeout:
            break
        sleep(0.25)
    what = ", ".join(f"{c} {d['position']:g} (expected {d['expected']:g})" for c, d in diff.items())
    err = PositionMismatch(
        f"positions after the pass differ from what its settled fills imply: {what}, still after {waited:.1f} s. "
        "Something other than this pass moved the account (another trader, a liquidation, a lost order): trading "
        "stops until a person has looked"
    )
    err.mismatch = diff  # type: ignore[attr-defined]
    err.positions = positions  # type: ignore[attr-defined]
    raise err


def check_pass(session, fills: PassFills, meta: Mapping, pid: str, label: str) -> dict[str, float]:
    """The post-trade check of pass ``pid`` (executing): :func:`post_trade_check` against the session's account,
    journaled as a ``reconcile`` record (expected and read positions, the wait, the mismatch if any). Returns the
    positions read; raises :class:`~genetic_sizer.errors.PositionMismatch` (the loop stops with exit code 7)."""
    record = {
        "event": "reconcile",
        "pass": pid,
        "period": label,
        "expected": fills.expected(),
        "fills": len(fills.fills),
    }
    try:
        positions, waited = post_trade_check(
            lambda: session.client.account(session.address).positions,
            fills,
            meta,
            timeout=session.config.settle_timeout,
        )
    except PositionMismatch as exc:
        session.record({**record, "positions": exc.positions, "mismatch": exc.mismatch, "ok": False})
        session.report(f"{label}: POST-TRADE CHECK FAILED: {exc}")
        raise
    session.record({**record, "positions": positions, "waited": round(waited, 3), "ok": True})
    return positions

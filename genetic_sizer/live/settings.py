"""How the live sizer runs: :class:`LiveConfig` (execute or not, the wall-clock period, guards and limits,
rounds and pauses), the ``--every`` period parser, and the champion's calendar rebalance as wall-clock
periods."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from genetic_sizer import vocab as V
from genetic_sizer.errors import ConfigError
from genetic_sizer.live.guards import Guards, Limits, Period, period_of_champion
from genetic_sizer.live.guards import parse_period as _parse_period
from genetic_sizer.runs.champion import Champion

__all__ = ["LiveConfig", "calendar_of", "parse_period"]


def parse_period(text: str) -> float:
    """'30s', '15m', '1h', '1d' -> seconds (the ``--every`` flag)."""
    return _parse_period(text, "--every")


def calendar_of(champion: Champion) -> Period | None:
    """The periods of the champion's calendar rebalance policy (``strategy.rebalance``) as wall-clock periods
    (:func:`~genetic_sizer.live.guards.period_of_champion`: a UTC day, a calendar week, month or quarter, or N
    bars of the champion's data), or None for a buy-and-hold champion (``once``: no calendar rebalance)."""
    if V.parse_rebalance(champion.rebalance, "strategy.rebalance") == "once":
        return None
    return period_of_champion(champion)


@dataclass(frozen=True)
class LiveConfig:
    """How the live sizer runs (see :class:`~genetic_sizer.live.loop.Trader`).

    execute : send orders (False: plan and report only).
    period : the wall-clock period a pass belongs to (``--every``, or ``--period`` / the champion's rebalance
        for a single pass).
    guards, limits : sanity guards and the kill switch's limits.
    pass_retries : rounds after the first in which a pass trades what is still missing (partial fills, IOCs
        that did not match), sized from freshly read prices and equity and from the positions the pass's settled
        fills imply (default 1).
    flatten_on_stop : when the kill switch fires or the stop file appears, close every position.
    stop_file : a path whose existence stops the loop gracefully (checked before every pass and while waiting).
    retry_base : first wait (seconds) before retrying a failed pass within its period, at most a tenth of the
        period; doubled each time, with jitter, and at least what an HTTP 429 asked for.
    round_pause : seconds between the rounds of a pass.
    settle_timeout : how long (seconds) to wait for the exchange's records to settle: an order's fills to show up by
        its client order id, and after a pass the positions to agree with the fills (default 10); past it, fills
        fall back to the order's answer and a disagreement stops the loop (:class:`~genetic_sizer.errors.
        PositionMismatch`, exit code 7).
    accept_spot_champion : execute a champion evolved on the spot account model as perpetuals (refused otherwise:
        its backtest never paid funding; see :func:`~genetic_sizer.live.margin.spot_champion_differences`).
    """

    execute: bool = False
    period: Period = field(default_factory=lambda: Period("1d", 86400.0))
    guards: Guards = field(default_factory=Guards)
    limits: Limits = field(default_factory=Limits)
    pass_retries: int = 1
    flatten_on_stop: bool = False
    stop_file: str | None = None
    retry_base: float = 1.0
    round_pause: float = 0.25
    settle_timeout: float = 10.0
    accept_spot_champion: bool = False

    def __post_init__(self):
        if isinstance(self.pass_retries, bool) or not isinstance(self.pass_retries, int) or self.pass_retries < 0:
            raise ConfigError(f"pass_retries must be an integer >= 0, got {self.pass_retries!r}")
        for name in ("retry_base", "round_pause", "settle_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")

"""The rebalancing policy keys of the ``portfolio`` section: ``vol_target``, ``vol_lookback``, ``min_trade``,
``min_trade_value`` and ``max_turnover`` (their semantics: :mod:`genetic_sizer.backtest.kernels.rules`; the backtest
takes them as :class:`genetic_sizer.backtest.policy.RebalancePolicy`)."""

from __future__ import annotations

from genetic_sizer import vocab as V
from genetic_sizer.errors import ConfigError

__all__ = ["NEUTRAL", "check", "check_vol_target_gene", "policy_of"]

NEUTRAL = {"vol_target": None, "vol_lookback": 20, "min_trade": 0.0, "min_trade_value": 0.0, "max_turnover": None}
"""Each key's default, which does nothing (left out of the config's fingerprint at that value)."""


def check(pf) -> None:
    """Validate the keys of a ``PortfolioConfig`` in place (floats where numbers; a ConfigError naming the key)."""
    if pf.vol_target is not None:
        vt = V.check_number("portfolio.vol_target", pf.vol_target, lo=0.0, lo_open=True, hi=100.0)
        object.__setattr__(pf, "vol_target", vt)
    V.check_number("portfolio.vol_lookback", pf.vol_lookback, lo=2, hi=1_000_000, integer=True)
    object.__setattr__(
        pf, "min_trade", V.check_number("portfolio.min_trade", pf.min_trade, lo=0.0, hi=1.0, hi_open=True)
    )
    object.__setattr__(pf, "min_trade_value", V.check_number("portfolio.min_trade_value", pf.min_trade_value, lo=0.0))
    if pf.max_turnover is not None:
        cap = V.check_number("portfolio.max_turnover", pf.max_turnover, lo=0.0, lo_open=True)
        object.__setattr__(pf, "max_turnover", cap)


def check_vol_target_gene(pf, genes) -> None:
    """A ``vol_target`` gene (each genome's own target) and a fixed ``portfolio.vol_target`` (every genome's) are two
    answers to one question: refuse both at once (a ConfigError naming the gene and the value)."""
    if genes and "vol_target" in genes and pf.vol_target is not None:
        raise ConfigError(
            f"evolution.genes.vol_target {list(genes['vol_target'])} evolves each genome's volatility target, but "
            f"portfolio.vol_target is {pf.vol_target:g} (one target for every genome): set one of them, not both "
            "(portfolio.vol_lookback applies to the gene)"
        )


def policy_of(pf) -> dict | None:
    """The policy of a ``PortfolioConfig`` as ``RebalancePolicy`` keywords, or None when every key is at its
    default (the backtest's path without a policy)."""
    if all(getattr(pf, k) == v for k, v in NEUTRAL.items() if k != "vol_lookback"):
        return None
    return {k: getattr(pf, k) for k in NEUTRAL}

"""Rebalancing policies beyond trading to target: volatility targeting and cost-aware trades (a minimum trade, a
maximum turnover per rebalance). :class:`RebalancePolicy` is what a caller gives
:func:`genetic_sizer.backtest.simulate.backtest` (``policy=``); :func:`policy_rows` turns it into the kernels' policy
rows, whose semantics :mod:`genetic_sizer.backtest.kernels.rules` states (the one definition the kernels, the
references and the live sizer share).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from genetic_sizer.backtest.kernels import rules
from genetic_sizer.errors import ConfigError

__all__ = ["RebalancePolicy", "policy_rows"]


def _number(name, v) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class RebalancePolicy:
    """What every rebalance does beyond trading to the target weights (the defaults do nothing).

    vol_target : None, a number > 0, or one per genome (n_genomes,) (a ``vol_target`` gene)
        Annualized volatility the target portfolio (the genome's weights at gross 1, unlevered) is scaled to: each
        rebalance trades to ``e * w`` with ``e = min(cap, vol_target / sigma)``, ``sigma`` the realized volatility
        (``ddof=1``, annualized with the data's bars per year) of the target portfolio's bar returns over the last
        ``vol_lookback`` bars; spot: ``cap`` 1 (the rest in cash); perp: ``e`` multiplies the leverage, capped so that
        ``e * leverage`` stays within every asset's ``max_leverage``. Exposure 1 before ``vol_lookback`` returns
        exist. None or 0: no targeting (a 0 in a per-genome array: none for that genome).
    vol_lookback : int >= 2
        Bars of returns the volatility is measured over (default 20).
    min_trade : float in [0, 1)
        A trade smaller than this fraction of the equity (the value before trading) is not made.
    min_trade_value : float >= 0
        A trade worth less than this amount of the account's currency at its fill price (``1 +/- slippage`` times the
        close) is not made: the live sizer's ``min_trade_usd``, which the exchange checks at the order's limit price.
    max_turnover : None or float > 0
        The trades of one rebalance are scaled down together so that their absolute notional sums to at most this
        fraction of the equity; a trade scaled under the minimum is then dropped. None: no cap.
    """

    vol_target: object = None
    vol_lookback: int = 20
    min_trade: float = 0.0
    min_trade_value: float = 0.0
    max_turnover: float | None = None

    def __post_init__(self):
        lb = self.vol_lookback
        if isinstance(lb, (bool, np.bool_)) or not isinstance(lb, (int, np.integer)) or lb < 2:
            raise ConfigError(f"vol_lookback must be an integer >= 2 (bars), got {lb!r}")
        m = _number("min_trade", self.min_trade)
        if not 0.0 <= m < 1.0:
            raise ConfigError(f"min_trade must be a fraction of equity in [0, 1), got {self.min_trade!r}")
        v = _number("min_trade_value", self.min_trade_value)
        if not (math.isfinite(v) and v >= 0):
            raise ConfigError(f"min_trade_value must be a finite amount >= 0, got {self.min_trade_value!r}")
        if self.max_turnover is not None:
            t = _number("max_turnover", self.max_turnover)
            if not (math.isfinite(t) and t > 0):
                raise ConfigError(
                    f"max_turnover must be a positive finite fraction of equity or None, got {self.max_turnover!r}"
                )
        if self.vol_target is not None:
            arr = np.atleast_1d(np.asarray(self.vol_target, dtype=object))
            for j, x in enumerate(arr.ravel()):
                name = "vol_target" if np.ndim(self.vol_target) == 0 else f"vol_target[{j}]"
                x = _number(name, x)
                if not (math.isfinite(x) and x >= 0):
                    raise ConfigError(f"{name} must be an annualized volatility >= 0 (0.2: 20%), got {x!r}")

    @property
    def active(self) -> bool:
        """Whether the policy changes anything."""
        vt = self.vol_target is not None and bool(np.any(np.asarray(self.vol_target, dtype=float) > 0))
        return vt or self.min_trade > 0 or self.min_trade_value > 0 or self.max_turnover is not None


def policy_rows(policy, n_genomes: int, periods_per_year: float, max_gross: float) -> np.ndarray | None:
    """The kernels' policy rows (n_genomes, ``rules.POLICY_WIDTH``) of ``policy`` (a :class:`RebalancePolicy`, a
    mapping of its fields, or None), or None when it does nothing (the kernels' path without policies).

    ``periods_per_year`` annualizes the volatility; ``max_gross`` is the largest gross leverage (spot 1; perp the
    smallest ``max_leverage`` of the assets, which must be finite for volatility targeting).
    """
    if policy is None:
        return None
    if isinstance(policy, dict):
        unknown = sorted(set(policy) - set(RebalancePolicy.__dataclass_fields__))
        if unknown:
            known = list(RebalancePolicy.__dataclass_fields__)
            raise ConfigError(f"policy has unknown field(s) {unknown}; known: {known}")
        policy = RebalancePolicy(**policy)
    if not isinstance(policy, RebalancePolicy):
        raise ConfigError(f"policy must be a RebalancePolicy, a mapping of its fields or None, got {policy!r}")
    if not policy.active:
        return None
    rows = rules.no_policy(n_genomes)
    if policy.vol_target is not None:
        vt = np.asarray(policy.vol_target, dtype=np.float64)
        if vt.ndim == 1 and vt.shape[0] != n_genomes:
            raise ConfigError(f"vol_target must be a number or one per genome ({n_genomes}), got {vt.shape[0]}")
        if vt.ndim > 1:
            raise ConfigError(f"vol_target must be a number or one per genome ({n_genomes}), got shape {vt.shape}")
        if np.any(vt > 0) and not math.isfinite(max_gross):
            raise ConfigError(
                "vol_target on the perp account needs a finite max_leverage (the cap of the exposure it scales to)"
            )
        rows[:, rules.P_VOL_TARGET] = vt
    rows[:, rules.P_LOOKBACK] = policy.vol_lookback
    rows[:, rules.P_ANN] = float(periods_per_year)
    rows[:, rules.P_CAP] = max_gross
    rows[:, rules.P_MIN_TRADE] = policy.min_trade
    rows[:, rules.P_MIN_VALUE] = policy.min_trade_value
    rows[:, rules.P_MAX_TURNOVER] = np.inf if policy.max_turnover is None else policy.max_turnover
    return rows

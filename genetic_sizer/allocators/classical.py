"""Classical allocations on the same window, from skfolio (the only module importing it for optimization).

Used to seed the first generation (``evolution.seed_with_classical``) and as the yardsticks in the
summary table of every run: equal weight, inverse volatility, minimum variance, maximum Sharpe and
hierarchical risk parity, fitted on the simple returns of the run's price window with the genome bounds
passed to the optimizers that take them. Long/short runs get the long-only versions (with the bounds'
long side), which are valid long/short genomes of gross exposure 1.

The convex optimizers (minimum variance, maximum Sharpe) leave solver noise (weights of 1e-7) where the optimum
holds nothing, which ``portfolio.min_position`` counts as dust: when such an allocation has non-zero weights under
``min_position``, those assets are dropped and the optimizer is fitted again on the assets left, with
``min_position`` as their lower bound (the convex optimum on that support). An allocation that still breaks the
genome's bounds or constraints (equal weight or inverse volatility under a tight ``max_weight``, more assets than
``max_assets``, a group cap, a solver failure) is left out with the reason, never clipped or rescaled (that check
is the genome space's: :func:`genetic_sizer.evolution.seeding.classical_allocations`).
"""

from __future__ import annotations

import warnings

import numpy as np

from genetic_sizer.allocators.rules import RULES, equal_minvar_blend, simple_returns, volatility_timing
from genetic_sizer.allocators.toolkit import TOOLKIT, fit_toolkit
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError

__all__ = ["CLASSICAL", "fit_allocations"]

CLASSICAL = ("equal_weight", "inverse_volatility", "min_variance", "max_sharpe", "hrp", *TOOLKIT, *RULES)
"""Every allocator, in the order of tables and files (then :mod:`genetic_sizer.allocators.toolkit`'s four and the cheap
rules of :mod:`genetic_sizer.allocators.rules`)."""


def _estimators(lo: np.ndarray, hi: np.ndarray):
    from skfolio import RiskMeasure
    from skfolio.optimization import (
        EqualWeighted,
        HierarchicalRiskParity,
        InverseVolatility,
        MeanRisk,
        ObjectiveFunction,
    )

    return {
        "equal_weight": EqualWeighted(),
        "inverse_volatility": InverseVolatility(),
        "min_variance": MeanRisk(
            risk_measure=RiskMeasure.VARIANCE,
            objective_function=ObjectiveFunction.MINIMIZE_RISK,
            min_weights=lo,
            max_weights=hi,
        ),
        "max_sharpe": MeanRisk(
            risk_measure=RiskMeasure.VARIANCE,
            objective_function=ObjectiveFunction.MAXIMIZE_RATIO,
            min_weights=lo,
            max_weights=hi,
        ),
        "hrp": HierarchicalRiskParity(min_weights=lo, max_weights=hi),
    }


_CONVEX = ("min_variance", "max_sharpe")


def _fit(est, returns) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = np.asarray(est.fit(returns).weights_, dtype=np.float64)
    return np.where(np.abs(w) < 1e-12, 0.0, w)  # solver noise around 0 (e.g. -1e-17), not a position


def fit_allocations(
    prices: Prices,
    lower: np.ndarray,
    upper: np.ndarray,
    min_position: float,
    *,
    names=CLASSICAL,
    settings=None,
    notes=None,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Fit the classical allocations on ``prices`` with per-asset weight bounds (their long side is used).

    Parameters
    ----------
    prices : Prices
    lower, upper : array (n_assets,)
        Bounds of each asset's weight; negative parts (a long/short space's short side) are ignored.
    min_position : float
        The least weight of a held asset: a convex optimum holding dust under it is refitted without those assets.
    names : sequence of str, optional
        Only these allocators (default: all of :data:`CLASSICAL`).
    settings : AllocatorsConfig, optional
        The ``allocators:`` section (risk budgets, Black-Litterman views, the market-cap file); None: its defaults.
    notes : dict, optional
        Filled with how the toolkit's allocators were fitted, by name (e.g. which equilibrium Black-Litterman used).

    Returns
    -------
    allocations : dict name -> weights (n_assets,), as fitted (not checked against any constraint)
    skipped : dict name -> why it could not be fitted (a solver failure)
    """
    from skfolio.preprocessing import prices_to_returns

    names_asked = tuple(names)
    returns = prices_to_returns(prices.to_frame())
    lo = np.maximum(np.asarray(lower, dtype=np.float64), 0.0)
    hi = np.maximum(np.asarray(upper, dtype=np.float64), 0.0)
    allocations, skipped = {}, {}
    m = min_position
    wanted_rules = tuple(n for n in RULES if n in names)
    if "equal_minvar_blend" in wanted_rules and "min_variance" not in names:
        names = (*names, "min_variance")  # the blend's part, fitted with the same bounds and dust refit
    for name, est in _estimators(lo, hi).items():
        if name not in names:
            continue
        try:
            w = _fit(est, returns)
            dust = (w != 0) & (np.abs(w) < m)
            if name in _CONVEX and dust.any() and (keep := np.abs(w) >= m).any():
                refit = _estimators(np.maximum(lo[keep], m), hi[keep])[name]
                w = np.zeros_like(w)
                w[keep] = _fit(refit, returns.iloc[:, keep])
        except Exception as exc:  # solver failures are reported, not fatal
            skipped[name] = f"{type(exc).__name__}: {exc}"
            continue
        allocations[name] = w
    wanted = tuple(n for n in TOOLKIT if n in names)
    more, failed, how = fit_toolkit(prices, returns, lo, hi, m, settings, names=wanted) if wanted else ({}, {}, {})
    allocations.update(more)
    skipped.update(failed)
    if notes is not None:
        notes.update(how)
    _fit_rules(prices, wanted_rules, allocations, skipped)
    keep = names_asked
    return {k: v for k, v in allocations.items() if k in keep}, {k: v for k, v in skipped.items() if k in keep}


def _fit_rules(prices: Prices, wanted, allocations: dict, skipped: dict) -> None:
    """Add the cheap rules (:mod:`genetic_sizer.allocators.rules`) to ``allocations`` (or their reasons to
    ``skipped``): the blend from 1/N and the minimum-variance weights fitted above, volatility timing from the
    window's sample variances."""
    n = prices.n_assets
    if "equal_minvar_blend" in wanted:
        if "min_variance" in allocations:
            allocations["equal_minvar_blend"] = equal_minvar_blend(np.full(n, 1.0 / n), allocations["min_variance"])
        else:
            skipped["equal_minvar_blend"] = f"the minimum-variance part failed: {skipped.get('min_variance')}"
    if "volatility_timing" in wanted:
        try:
            allocations["volatility_timing"] = volatility_timing(simple_returns(prices))
        except ConfigError as exc:
            skipped["volatility_timing"] = str(exc)

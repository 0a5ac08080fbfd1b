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

from genetic_sizer.data.prices import Prices

__all__ = ["CLASSICAL", "fit_allocations"]

CLASSICAL = ("equal_weight", "inverse_volatility", "min_variance", "max_sharpe", "hrp")


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
    prices: Prices, lower: np.ndarray, upper: np.ndarray, min_position: float
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Fit the classical allocations on ``prices`` with per-asset weight bounds (their long side is used).

    Parameters
    ----------
    prices : Prices
    lower, upper : array (n_assets,)
        Bounds of each asset's weight; negative parts (a long/short space's short side) are ignored.
    min_position : float
        The least weight of a held asset: a convex optimum holding dust under it is refitted without those assets.

    Returns
    -------
    allocations : dict name -> weights (n_assets,), as fitted (not checked against any constraint)
    skipped : dict name -> why it could not be fitted (a solver failure)
    """
    from skfolio.preprocessing import prices_to_returns

    returns = prices_to_returns(prices.to_frame())
    lo = np.maximum(np.asarray(lower, dtype=np.float64), 0.0)
    hi = np.maximum(np.asarray(upper, dtype=np.float64), 0.0)
    allocations, skipped = {}, {}
    m = min_position
    for name, est in _estimators(lo, hi).items():
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
    return allocations, skipped

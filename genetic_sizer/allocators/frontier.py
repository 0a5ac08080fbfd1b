"""The unconstrained mean-variance efficient frontier from skfolio: the convex reference line beside a constrained one.

Without cardinality and minimum buy-in the problem is convex: skfolio's ``MeanRisk`` (variance,
``efficient_frontier_size`` points evenly spaced in return between the minimum-variance and the maximum-return
portfolio) solves it on given moments through a prior that returns them as they are (``_MomentsPrior``), with the
weight bounds ``[min_weight, max_weight]`` on every asset. On OR-Library port1 with bounds [0, 1] it reproduces the
published ``portef1`` frontier (tests/test_frontier.py).
"""

from __future__ import annotations

import numpy as np

__all__ = ["unconstrained_frontier"]


def _prior_class():
    from skfolio.prior import BasePrior, ReturnDistribution

    class _MomentsPrior(BasePrior):
        """A skfolio prior that hands the optimizer the given ``mu`` and ``cov`` (the returns only fix the shape)."""

        def __init__(self, mu=None, cov=None):
            self.mu = mu
            self.cov = cov

        def fit(self, X, y=None, **fit_params):
            self.return_distribution_ = ReturnDistribution(
                mu=np.asarray(self.mu, dtype=np.float64),
                covariance=np.asarray(self.cov, dtype=np.float64),
                returns=np.asarray(X, dtype=np.float64),
            )
            return self

    return _MomentsPrior


def unconstrained_frontier(
    mu, cov, points: int = 50, *, min_weight: float = 0.0, max_weight: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``points`` portfolios of the long-only efficient frontier with every weight in ``[min_weight, max_weight]``:
    weights (points, n), their mean ``w'mu`` and variance ``w'Sigma w``, lowest return first."""
    from skfolio import RiskMeasure
    from skfolio.optimization import MeanRisk

    mu = np.asarray(mu, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    n = mu.size
    model = MeanRisk(
        risk_measure=RiskMeasure.VARIANCE,
        efficient_frontier_size=int(points),
        min_weights=float(min_weight),
        max_weights=float(max_weight),
        prior_estimator=_prior_class()(mu, cov),
    )
    shape_only = np.zeros((2, n))
    model.fit(shape_only)
    w = np.asarray(model.weights_, dtype=np.float64).reshape(-1, n)
    ret = w @ mu
    var = np.einsum("ij,jk,ik->i", w, cov, w)
    order = np.argsort(ret, kind="stable")
    return w[order], ret[order], var[order]

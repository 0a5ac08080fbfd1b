"""Diversification and attribution of a weight vector over a window of returns (pure numpy).

Diversification (:func:`diversification`) of weights ``w`` over the simple returns ``R`` (bars x assets), with
``Sigma`` their sample covariance (``ddof=1``) and ``s`` its square-rooted diagonal:

* ``hhi``: the Herfindahl-Hirschman index of the gross weights ``|w| / sum |w|``: ``sum_i p_i^2`` (1/N for 1/N, 1
  for one asset); ``effective_assets`` is ``1 / hhi``.
* ``diversification_ratio``: ``|w|' s / sqrt(w' Sigma w)``, the weighted average volatility over the portfolio's
  (Choueifaty and Coignard; 1 for one asset or perfectly correlated assets, above 1 otherwise).
* ``risk_contribution``: each asset's share of the portfolio variance in percent,
  ``100 x w_i (Sigma w)_i / w' Sigma w`` (Euler's allocation: they sum to 100; negative for a hedge).

Attribution (:func:`attribution`) of a portfolio against a benchmark over the same bars:

* ``contribution``: each asset's annualized return contribution, ``ppy x mean_t(w_i r_t,i)``: the weights held at
  every bar (a constant mix of the target weights); ``benchmark_contribution`` the same for the benchmark's
  weights when it has any (not for a benchmark price column), ``active_contribution`` their difference.
* ``active_return``: ``ppy x mean_t(p_t - b_t)`` with ``p``, ``b`` the per-bar returns of the portfolio and the
  benchmark as they were traded (the backtest's, with its drift between rebalances and its costs);
  ``tracking_error``: ``sqrt(ppy) x std(p - b)`` (``ddof=1``); ``information_ratio`` = active return / tracking error
  (None when the tracking error is 0: the same returns).
* ``residual``: the active return the constant-mix contributions do not explain (drift between rebalances, costs).
"""

from __future__ import annotations

import math

import numpy as np

from genetic_sizer.errors import ConfigError

__all__ = ["attribution", "diversification", "risk_contributions", "simple_returns"]


def simple_returns(close) -> np.ndarray:
    """Per-bar simple returns of a close matrix (n_bars, n_assets) or a value series (n_bars,)."""
    c = np.asarray(close, dtype=np.float64)
    return c[1:] / c[:-1] - 1.0


def _weights(w, n: int, what: str = "weights") -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all():
        raise ConfigError(f"{what} must be {n} finite numbers, got shape {w.shape}")
    if not np.abs(w).sum() > 0:
        raise ConfigError(f"{what} hold nothing (all zero)")
    return w


def _returns(r, what: str = "returns") -> np.ndarray:
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 2 or not np.isfinite(r).all():
        raise ConfigError(f"{what} must be a finite (n_bars >= 2, n_assets) matrix, got shape {r.shape}")
    return r


def risk_contributions(w, cov) -> np.ndarray:
    """Each asset's share of the variance ``w' Sigma w`` in percent (sums to 100; zeros for zero variance)."""
    w = np.asarray(w, dtype=np.float64)
    marginal = np.asarray(cov, dtype=np.float64) @ w
    var = float(w @ marginal)
    return np.zeros_like(w) if var <= 0 else 100.0 * w * marginal / var


def diversification(weights, returns) -> dict:
    """HHI, effective number of assets, diversification ratio and risk contributions (% of variance) of
    ``weights`` (n_assets,) over ``returns`` (n_bars, n_assets); see the module docstring."""
    r = _returns(returns)
    w = _weights(weights, r.shape[1])
    cov = np.atleast_2d(np.cov(r, rowvar=False, ddof=1))
    gross = np.abs(w) / np.abs(w).sum()
    hhi = float(np.sum(gross**2))
    vol = math.sqrt(max(float(w @ cov @ w), 0.0))
    return {
        "hhi": hhi,
        "effective_assets": 1.0 / hhi,
        "diversification_ratio": float(np.abs(w) @ np.sqrt(np.diag(cov)) / vol) if vol > 0 else None,
        "risk_contribution": risk_contributions(w, cov),
    }


def attribution(
    returns,
    weights,
    portfolio_returns,
    benchmark_returns,
    periods_per_year: float,
    benchmark_weights=None,
) -> dict:
    """Return contributions per asset, active return, tracking error and information ratio (module docstring).

    Parameters
    ----------
    returns : (n_bars, n_assets) the assets' simple returns
    weights : (n_assets,) the portfolio's target weights
    portfolio_returns, benchmark_returns : (n_bars,) the traded per-bar returns of the portfolio and the benchmark
    periods_per_year : bars per year
    benchmark_weights : (n_assets,) or None (a benchmark price column has no weights)
    """
    r = _returns(returns)
    n_bars, n = r.shape
    w = _weights(weights, n)
    p = np.asarray(portfolio_returns, dtype=np.float64)
    b = np.asarray(benchmark_returns, dtype=np.float64)
    for name, x in (("portfolio_returns", p), ("benchmark_returns", b)):
        if x.shape != (n_bars,) or not np.isfinite(x).all():
            raise ConfigError(f"{name} must be {n_bars} finite numbers (one per bar), got shape {x.shape}")
    if not (isinstance(periods_per_year, (int, float)) and periods_per_year > 0):
        raise ConfigError(f"periods_per_year must be a number > 0, got {periods_per_year!r}")
    ppy = float(periods_per_year)
    contribution = ppy * (r * w).mean(axis=0)
    active = p - b
    te = math.sqrt(ppy) * float(np.std(active, ddof=1))
    active_return = ppy * float(active.mean())
    out = {
        "contribution": contribution,
        "portfolio_return": ppy * float(p.mean()),
        "benchmark_return": ppy * float(b.mean()),
        "active_return": active_return,
        "tracking_error": te,
        "information_ratio": active_return / te if te > 1e-15 else None,
        "benchmark_contribution": None,
        "active_contribution": None,
        # without benchmark weights: the part of the portfolio's own return the constant mix leaves out
        "residual": ppy * float(p.mean()) - float(contribution.sum()),
    }
    if benchmark_weights is not None:
        bw = _weights(benchmark_weights, n, "benchmark_weights")
        out["benchmark_contribution"] = ppy * (r * bw).mean(axis=0)
        out["active_contribution"] = contribution - out["benchmark_contribution"]
        out["residual"] = active_return - float(out["active_contribution"].sum())
    return out

"""Cheap rules the literature finds hard to beat out of sample: walk-forward benchmarks beside the classical allocators.

Each rule is refitted on a train window's simple returns, like the classical allocators, and is long-only and fully
invested (weights >= 0, sum 1):

* ``equal_minvar_blend``: half 1/N, half the long-only sample minimum-variance portfolio
  (:func:`equal_minvar_blend`). DeMiguel, Garlappi and Uppal (2009, RFS, "ew-min") and Tu and Zhou (2011, JFE)
  combine 1/N with an optimized rule; they estimate the mixing coefficient, here it is fixed (``mix``, default 0.5),
  so the rule has no parameter to fit and no estimation error of its own beyond the minimum-variance weights'.
* ``volatility_timing``: Kirby and Ostdiek (2012, JFQA), ``w_i = (1/s_i^2)^eta / sum_j (1/s_j^2)^eta`` with ``s_i^2``
  the sample variance (``ddof=1``) of asset ``i`` over the train window and ``eta = 1`` by default
  (:func:`volatility_timing`). With ``eta = 1`` the weights are proportional to the inverse *variances*; the classical
  ``inverse_volatility`` (``1/s_i``) is ``eta = 0.5``. The rule ignores correlations and means, which is why it
  carries little estimation error.

Long-only minimum variance itself is the classical ``min_variance``
(:func:`genetic_sizer.allocators.classical.fit_allocations`: skfolio's ``MeanRisk`` minimizing variance with
``min_weights`` clipped at 0, so it never shorts, even in a long/short run).
"""

from __future__ import annotations

import numpy as np

from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError

__all__ = ["RULES", "equal_minvar_blend", "simple_returns", "volatility_timing"]

RULES = ("equal_minvar_blend", "volatility_timing")
"""The cheap rules' names, as walk-forward tables and results spell them; fitted by
:func:`genetic_sizer.allocators.classical.fit_allocations` (``names=RULES`` for these alone)."""


def simple_returns(prices: Prices) -> np.ndarray:
    """The window's simple returns, (n_bars - 1, n_assets)."""
    close = prices.close
    return close[1:] / close[:-1] - 1.0


def volatility_timing(returns, *, eta: float = 1.0) -> np.ndarray:
    """Kirby and Ostdiek's (2012) volatility-timing weights from a returns matrix (n_bars, n_assets).

    ``w_i`` proportional to ``(1 / var_i) ** eta``, ``var_i`` the sample variance (``ddof=1``): long-only, summing to
    1. An asset of zero variance (a constant series) or fewer than two returns is a ConfigError naming it.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 2 or r.shape[1] < 1:
        raise ConfigError(f"returns must be (n_bars >= 2, n_assets >= 1), got shape {r.shape}")
    if not np.isfinite(r).all():
        raise ConfigError("returns must be finite numbers")
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not np.isfinite(eta) or eta < 0:
        raise ConfigError(f"eta must be a number >= 0, got {eta!r}")
    var = r.var(axis=0, ddof=1)
    flat = np.flatnonzero(var <= 0.0)
    if flat.size:
        raise ConfigError(f"volatility_timing: asset column {int(flat[0])} has zero variance in the window")
    # (1/var)^eta, scaled by the smallest variance first so that large eta does not overflow
    raw = (var.min() / var) ** float(eta)
    return raw / raw.sum()


def equal_minvar_blend(equal: np.ndarray, min_variance: np.ndarray, *, mix: float = 0.5) -> np.ndarray:
    """``mix`` x 1/N + (1 - ``mix``) x the minimum-variance weights (both long-only, summing to 1)."""
    if isinstance(mix, bool) or not isinstance(mix, (int, float)) or not 0.0 <= mix <= 1.0:
        raise ConfigError(f"mix must be a number in [0, 1], got {mix!r}")
    e = np.asarray(equal, dtype=np.float64)
    m = np.asarray(min_variance, dtype=np.float64)
    if e.shape != m.shape or e.ndim != 1:
        raise ConfigError(f"equal and min_variance weights must be two vectors of one length, got {e.shape}, {m.shape}")
    return mix * e + (1.0 - mix) * m

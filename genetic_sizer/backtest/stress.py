"""Stress losses of weight vectors: historical windows and hypothetical shocks (pure numpy).

Every loss is a fraction of the portfolio's value at the start (positive = a loss), for a book of target weights
``w`` (fractions of equity; a perp book's weights times its leverage) bought at the start and held (no trading inside
the scenario, no costs):

* historical (:func:`window_loss`): ``-sum_i w_i (P_i,end / P_i,start - 1)`` over a window of bars. The windows are
  the worst ``n_bars``-bar windows of the data (:func:`worst_windows`: of the 1/N book, the market's own stress, the
  same windows for every portfolio, non-overlapping, worst first) and the named crises the data covers
  (:data:`CRISES`: the bars from the first on or after the crisis' start to the last on or before its end, when the
  data starts on or before the start and ends on or after the end).
* shock (:func:`shock_loss`): each asset ``i`` moves by ``s_i`` at once (``-0.3``: down 30%):
  ``-sum_i w_i s_i``.
* parametric (:func:`parametric_loss`): the normal value at risk ``z_c sqrt(h w' Sigma w)`` at confidence ``c``
  over ``h`` bars, with ``Sigma`` the per-bar covariance of simple returns (``ddof=1``) as estimated, with every
  correlation set to one (``Sigma_ij = s_i s_j``), or with every volatility times ``k`` (``k^2 Sigma``).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd

from genetic_sizer.errors import ConfigError

__all__ = ["CRISES", "crisis_windows", "parametric_loss", "shock_loss", "window_loss", "worst_windows"]

CRISES = {
    "GFC 2008-09": ("2008-09-01", "2009-03-09"),
    "COVID crash 2020": ("2020-02-19", "2020-03-23"),
    "2022 drawdown": ("2022-01-03", "2022-10-12"),
}
"""Named crises (start, end), peak to trough of the S&P 500: Lehman's month to the March 2009 low; the February 2020
high to the March 2020 low; the January 2022 high to the October 2022 low."""


def _w(weights, n: int | None = None) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or (n is not None and w.size != n) or not np.isfinite(w).all():
        raise ConfigError(f"weights must be {n or 'one row of'} finite numbers, got shape {w.shape}")
    return w


def window_loss(close, weights, start: int, stop: int) -> float:
    """The buy-and-hold loss of ``weights`` from bar ``start``'s close to bar ``stop``'s (inclusive indexes)."""
    c = np.asarray(close, dtype=np.float64)
    if not 0 <= start < stop < c.shape[0]:
        raise ConfigError(f"a stress window is two bars start < stop of the {c.shape[0]} bars, got {start}, {stop}")
    w = _w(weights, c.shape[1])
    return float(-(w @ (c[stop] / c[start] - 1.0)))


def worst_windows(close, n_bars: int, count: int) -> list[tuple[int, int]]:
    """The ``count`` worst non-overlapping ``n_bars``-bar windows ``(start, stop)`` (``stop = start + n_bars``) of the
    1/N book bought at each window's start, worst first (fewer when the data has fewer)."""
    c = np.asarray(close, dtype=np.float64)
    if isinstance(n_bars, bool) or not isinstance(n_bars, int) or n_bars < 1:
        raise ConfigError(f"the stress window must be a whole number of bars >= 1, got {n_bars!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"the number of worst windows must be a whole number >= 1, got {count!r}")
    if c.shape[0] <= n_bars:
        raise ConfigError(f"the data has {c.shape[0]} bars: no window of {n_bars} bars after a start bar")
    ret = (c[n_bars:] / c[:-n_bars]).mean(axis=1) - 1.0  # 1/N buy-and-hold over [t, t + n_bars]
    taken = np.zeros(c.shape[0], dtype=bool)
    out = []
    for t in np.argsort(ret, kind="stable"):
        if len(out) == count:
            break
        if not taken[t : t + n_bars + 1].any():
            out.append((int(t), int(t + n_bars)))
            taken[t : t + n_bars + 1] = True
    return out


def crisis_windows(index, crises=None) -> dict[str, tuple[int, int] | str]:
    """Each named crisis as ``(start, stop)`` bar indexes, or why the data does not cover it."""
    idx = pd.DatetimeIndex(index)
    out = {}
    for name, (a, b) in (CRISES if crises is None else crises).items():
        start, end = pd.Timestamp(a, tz="UTC"), pd.Timestamp(b, tz="UTC")
        if idx[0] > start or idx[-1] < end:
            out[name] = f"not covered: the data spans {idx[0]:%Y-%m-%d} .. {idx[-1]:%Y-%m-%d}"
            continue
        # every bar stamped on the crisis's last day counts (a close at 21:00 UTC too), not only one at midnight
        i, j = int(idx.searchsorted(start)), int(idx.searchsorted(end + pd.Timedelta(days=1), side="left")) - 1
        out[name] = (i, j) if j > i else f"not covered: no two bars between {a} and {b}"
    return out


def shock_loss(weights, shocks) -> float:
    """The loss of ``weights`` when each asset moves by ``shocks`` (n_assets,) at once."""
    s = np.asarray(shocks, dtype=np.float64)
    w = _w(weights, s.size)
    if not np.isfinite(s).all() or (s < -1).any():
        raise ConfigError(f"shocks must be finite moves >= -1 (-100%), got {s.tolist()}")
    return float(-(w @ s)) + 0.0  # + 0.0: no -0.0 for a book without the shocked assets


def parametric_loss(weights, returns, *, confidence: float = 0.99, horizon: int = 1, kind: str = "base", k=2.0):
    """Normal value at risk of ``weights`` over ``horizon`` bars: ``kind`` ``base`` (the sample covariance),
    ``correlation_one`` (every correlation 1) or ``volatility`` (every volatility times ``k``)."""
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 2:
        raise ConfigError(f"returns must be a (n_bars >= 2, n_assets) matrix, got shape {r.shape}")
    w = _w(weights, r.shape[1])
    if not 0.5 < confidence < 1:
        raise ConfigError(f"confidence must be in (0.5, 1), got {confidence!r}")
    cov = np.atleast_2d(np.cov(r, rowvar=False, ddof=1))
    if kind == "correlation_one":
        s = np.sqrt(np.diag(cov))
        cov = np.outer(s, s)
    elif kind == "volatility":
        if not k > 0:
            raise ConfigError(f"the volatility multiplier must be > 0, got {k!r}")
        cov = k * k * cov
    elif kind != "base":
        raise ConfigError(f"kind must be base, correlation_one or volatility, got {kind!r}")
    z = NormalDist().inv_cdf(confidence)
    return float(z * math.sqrt(max(horizon * float(w @ cov @ w), 0.0)))

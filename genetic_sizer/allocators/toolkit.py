"""Risk parity, risk budgeting, Black-Litterman and market-cap weights (skfolio), fitted like the classical ones.

* ``risk_parity``: :class:`skfolio.optimization.RiskBudgeting` on the variance with equal budgets: every asset
  contributes the same share of the portfolio's variance (``w_i (Sigma w)_i / w' Sigma w = 1/N``).
* ``risk_budgeting``: the same with the budgets of ``allocators.budgets`` (normalized to sum 1); without them,
  equal budgets (then it is risk parity, and the note says so).
* ``black_litterman``: the maximum-Sharpe portfolio of mean-variance whose prior is the Black-Litterman posterior
  (:class:`skfolio.prior.BlackLitterman`) of the views in ``allocators.views`` (annual returns, divided by the bars
  per year), around the equilibrium returns ``delta x Sigma x w_eq`` (:class:`skfolio.moments.EquilibriumMu`), with
  ``w_eq`` the market-cap weights when ``allocators.market_caps`` covers the window and 1/N otherwise (the note
  says which). Without views it is the equilibrium portfolio itself (the tangency portfolio of ``delta Sigma w_eq``
  is ``w_eq``).
* ``market_cap``: each asset's market cap over their sum, at the last cap on or before the window's last bar (as
  of that bar: no cap from after the window is used); left out, with the reason, without a market-cap file or when
  an asset has no cap by then.

Long/short runs get the long-only versions, as for the classical allocators. A fit that leaves solver dust (a
non-zero weight under ``min_position``) in the Black-Litterman optimum is solved again with those assets held at 0
and the others at least ``min_position`` (the same posterior).
"""

from __future__ import annotations

import warnings

import numpy as np

from genetic_sizer import vocab as V
from genetic_sizer.config.allocators import AllocatorsConfig, parse_view
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError, DataError

__all__ = [
    "TOOLKIT",
    "allocator_notes",
    "budgets_of",
    "equilibrium_of",
    "fit_toolkit",
    "market_cap_weights",
    "views_of",
]

TOOLKIT = ("risk_parity", "risk_budgeting", "black_litterman", "market_cap")

_TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "tol_ktratio": 1e-10, "max_iter": 500}
"""Clarabel's tolerances: risk contributions meet their budgets to about 1e-8 (not 5e-6), the tangency weights too."""


def budgets_of(symbols, settings: AllocatorsConfig) -> np.ndarray:
    """The risk budgets of ``symbols`` (summing to 1): ``allocators.budgets`` by symbol or its ``default``; equal
    without budgets. A symbol not among the assets, or an asset without a budget or default, is a ConfigError."""
    b = settings.budgets
    if b is None:
        return np.full(len(symbols), 1.0 / len(symbols))
    unknown = sorted(set(b) - set(symbols) - {"default"})
    if unknown:
        V.must_be(f"allocators.budgets.{unknown[0]}", b[unknown[0]], f"the budget of one of the assets {list(symbols)}")
    missing = [s for s in symbols if s not in b and "default" not in b]
    if missing:
        raise ConfigError(f"allocators.budgets has no budget for {missing[0]!r} and no default")
    raw = np.array([b.get(s, b.get("default")) for s in symbols], dtype=np.float64)
    return raw / raw.sum()


def views_of(symbols, settings: AllocatorsConfig, periods_per_year: float) -> tuple[list[str], np.ndarray | None]:
    """skfolio's view equations (per-bar returns: the annual view over ``periods_per_year``) and the confidences
    (None when the views have none). A symbol not among the assets is a ConfigError naming the view."""
    out, conf = [], []
    for i, v in enumerate(settings.views):
        a, b, r = parse_view(f"allocators.views[{i}].view", v["view"])
        for s in (a, b):
            if s is not None and s not in symbols:
                V.must_be(f"allocators.views[{i}].view", v["view"], f"a view on the assets {list(symbols)}")
        lhs = a if b is None else f"{a} - {b}"
        out.append(f"{lhs} = {r / periods_per_year!r}")
        conf.append(v["confidence"])
    if not out or conf[0] is None:
        return out, None
    return out, np.asarray(conf, dtype=np.float64)


def market_cap_weights(prices: Prices, settings: AllocatorsConfig) -> tuple[np.ndarray | None, str]:
    """``(weights, note)``: the caps as of the window's last bar over their sum, or ``(None, why not)``."""
    if settings.market_caps is None:
        return None, "no market-cap file (allocators.market_caps)"
    from genetic_sizer.data.caps import load_market_caps

    caps = load_market_caps(settings.market_caps, prices.symbols)
    end = prices.index[-1]
    known = caps.loc[caps.index <= end].ffill()
    last = known.iloc[-1] if len(known) else None
    if last is None or last.isna().any():
        who = list(prices.symbols) if last is None else [s for s in prices.symbols if np.isnan(last[s])]
        return None, f"{settings.market_caps} has no market cap of {who[0]!r} on or before {end:%Y-%m-%d %H:%M}"
    v = last.to_numpy(dtype=np.float64)
    return v / v.sum(), f"market caps as of {known.index[-1]:%Y-%m-%d} from {settings.market_caps}"


def equilibrium_of(prices: Prices, settings: AllocatorsConfig) -> tuple[np.ndarray, str]:
    """The Black-Litterman equilibrium weights and which they are: market caps when the file covers the window's
    end, else 1/N."""
    w, why = market_cap_weights(prices, settings)
    if w is not None:
        return w, f"equilibrium from the {why}"
    return np.full(prices.n_assets, 1.0 / prices.n_assets), f"equilibrium from 1/N ({why})"


def _weights(est, returns) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = np.asarray(est.fit(returns).weights_, dtype=np.float64)
    return np.where(np.abs(w) < 1e-12, 0.0, w)


def allocator_notes(prices: Prices, settings: AllocatorsConfig | None) -> dict[str, str]:
    """How each of :data:`TOOLKIT` is fitted on ``prices`` with ``settings`` (the budgets, which equilibrium and how
    many views, the caps' date or why there are none), by name: what a run records beside its allocations. Bad
    settings (a budget or view on an asset the data lacks, an unreadable cap file) raise: runs call it first."""
    settings = AllocatorsConfig() if settings is None else settings
    budgets = budgets_of(prices.symbols, settings)
    views_of(prices.symbols, settings, prices.periods_per_year)  # a view on an asset the data lacks: ConfigError
    _, bl = equilibrium_of(prices, settings)
    n = len(settings.views)
    bl += f"; {n} view(s), tau {settings.tau:g}" if n else "; no views: the posterior is the equilibrium"
    return {
        "risk_parity": "equal risk contributions (variance)",
        "risk_budgeting": "equal budgets (allocators.budgets is null): risk parity"
        if settings.budgets is None
        else "risk budgets " + ", ".join(f"{s} {b:.4g}" for s, b in zip(prices.symbols, budgets, strict=True)),
        "black_litterman": bl + f", risk aversion {settings.risk_aversion:g}",
        "market_cap": market_cap_weights(prices, settings)[1],
    }


def _black_litterman(returns, prices, lo, hi, min_position, settings) -> np.ndarray:
    from skfolio.moments import EquilibriumMu
    from skfolio.optimization import MeanRisk, ObjectiveFunction
    from skfolio.prior import BlackLitterman, EmpiricalPrior

    w_eq, _ = equilibrium_of(prices, settings)
    prior = EmpiricalPrior(mu_estimator=EquilibriumMu(risk_aversion=settings.risk_aversion, weights=w_eq))
    views, conf = views_of(prices.symbols, settings, prices.periods_per_year)
    if views:
        prior = BlackLitterman(views=views, prior_estimator=prior, tau=settings.tau, view_confidences=conf)

    def solve(lo_, hi_):
        est = MeanRisk(
            objective_function=ObjectiveFunction.MAXIMIZE_RATIO,
            prior_estimator=prior,
            min_weights=lo_,
            max_weights=hi_,
            solver_params=_TIGHT,
        )
        return _weights(est, returns)

    w = solve(lo, hi)
    dust = (w != 0) & (np.abs(w) < min_position)
    if dust.any() and (keep := np.abs(w) >= min_position).any():
        w = solve(np.where(keep, np.maximum(lo, min_position), 0.0), np.where(keep, hi, 0.0))
    return w


def fit_toolkit(
    prices: Prices,
    returns,
    lo: np.ndarray,
    hi: np.ndarray,
    min_position: float,
    settings: AllocatorsConfig | None,
    names=TOOLKIT,
) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    """Fit :data:`TOOLKIT` (those in ``names``) on ``returns`` (the simple returns of ``prices``) with long-only
    bounds ``lo``, ``hi``.

    Returns ``(allocations, skipped, notes)``: weights by name as fitted; why a name could not be fitted (no
    market-cap file, a solver failure); how each was fitted (the budgets, the equilibrium and views, the caps' date).
    Bad settings (a view or budget on an asset the data lacks) are a ConfigError, not a skip.
    """
    from skfolio import RiskMeasure
    from skfolio.optimization import RiskBudgeting

    settings = AllocatorsConfig() if settings is None else settings
    allocations, skipped = {}, {}
    budgets = budgets_of(prices.symbols, settings)  # ConfigErrors first, before any fit
    notes = allocator_notes(prices, settings)

    def rb(b):
        return RiskBudgeting(
            risk_measure=RiskMeasure.VARIANCE, risk_budget=b, min_weights=lo, max_weights=hi, solver_params=_TIGHT
        )

    fits = {
        "risk_parity": lambda: _weights(rb(None), returns),
        "risk_budgeting": lambda: _weights(rb(None if settings.budgets is None else budgets), returns),
        "black_litterman": lambda: _black_litterman(returns, prices, lo, hi, min_position, settings),
        "market_cap": lambda: market_cap_weights(prices, settings)[0],
    }
    for name in (n for n in TOOLKIT if n in names):
        try:
            w = fits[name]()
        except (ConfigError, DataError):  # bad settings or a bad market-cap file: the user's to fix
            raise
        except Exception as exc:  # solver failures are reported, not fatal
            skipped[name] = f"{type(exc).__name__}: {exc}"
            continue
        if w is None:
            skipped[name] = notes[name]
            continue
        allocations[name] = w
    return allocations, skipped, {n: notes[n] for n in TOOLKIT if n in names}

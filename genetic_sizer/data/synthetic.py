"""A synthetic Hyperliquid-like perpetuals market: hourly candles and hourly funding, in the exchange's own formats.

For tests, examples and benchmarks that must not touch the network. :func:`perp_market` draws, from a seed:

* hourly prices: correlated (one market factor) Student-t log-returns with coin-specific drift and volatility
  (annualized volatility 50-95 %, as BTC .. DOGE), closes rounded to 5 significant figures as the exchange quotes;
* hourly funding rates, as Hyperliquid pays them: the interest component (0.01 % per 8 hours, 1.25e-5 an hour, about
  11 % a year) plus a premium that follows crowding: it rises with a coin's trailing one-week return (trend chasers
  crowd into the longs that pay), mean-reverts with a half-life of about a day, carries a coin-specific bias (retail
  alts run hot, a crowded short runs negative) and noise, so rates run at tens of percent a year, differ from coin
  to coin, and flip sign after sell-offs. Each rate is stamped a few hundred milliseconds after its hour, as the
  exchange stamps them.

The result holds the candles and funding rows as ``candleSnapshot`` and ``fundingHistory`` answer them (so a fake
exchange can serve them and ``genetic-sizer data fetch`` can save them), and the
:class:`~genetic_sizer.data.prices.Prices` they make, with the funding attached exactly as loading a fetched file
attaches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genetic_sizer.data.candles import prices_from_candles
from genetic_sizer.data.funding import align_funding, funding_path_for, save_funding
from genetic_sizer.data.loaders import save_parquet
from genetic_sizer.data.prices import Prices
from genetic_sizer.vocab import INTERVAL_MS

__all__ = [
    "CALENDARS",
    "COINS",
    "KnownTruthMarket",
    "SyntheticPerpMarket",
    "equal_market",
    "known_truth_market",
    "perp_market",
    "tilted_market",
    "true_max_sharpe",
]

COINS = {
    # coin: (first price, annual volatility, funding bias a year on top of the interest component)
    "BTC": (60_000.0, 0.50, 0.00),
    "ETH": (3_000.0, 0.65, 0.03),
    "SOL": (150.0, 0.85, 0.15),
    "DOGE": (0.15, 0.95, 0.35),  # a crowded retail long
    "AVAX": (20.0, 0.90, -0.10),  # a crowded short: longs are paid
    "LINK": (15.0, 0.85, 0.05),
}
"""The coins :func:`perp_market` knows (first price, volatility, funding bias), in the order it draws them."""

HOURS_PER_YEAR = 8760
INTEREST_PER_HOUR = 0.0001 / 8
"""Hyperliquid's interest component of funding: 0.01 % per 8 hours, paid hourly."""


@dataclass(frozen=True)
class SyntheticPerpMarket:
    """What :func:`perp_market` drew.

    ``candles``: coin -> candle dicts (``t``, ``T``, ``s``, ``i``, ``o``, ``c``, ``h``, ``l``, ``v``, ``n``; prices
    as strings); ``funding``: coin -> fundingHistory rows (``coin``, ``fundingRate``, ``premium``, ``time``);
    ``prices``: the aligned closes with the funding rates per bar (:attr:`~genetic_sizer.data.prices.Prices.funding`).
    """

    candles: dict
    funding: dict
    prices: Prices

    def write(self, path: str | Path) -> tuple[Path, Path]:
        """Save as ``genetic-sizer data fetch`` does: the prices at ``path``, the funding next to it."""
        prices = save_parquet(self.prices, path)
        return prices, save_funding(self.funding, funding_path_for(path))


def _sig5(x: float) -> str:
    """A price as the exchange quotes it: 5 significant figures, as text."""
    return f"{float(f'{x:.5g}'):.10g}"


def perp_market(
    coins=("BTC", "ETH", "SOL", "DOGE", "AVAX"),
    *,
    start: str = "2025-01-01",
    hours: int = 24 * 90,
    seed: int = 0,
    interval: str = "1h",
) -> SyntheticPerpMarket:
    """Draw a synthetic hourly perp market (see the module docstring).

    Parameters
    ----------
    coins : sequence of names from :data:`COINS`
    start : first bar (UTC), on the hour
    hours : number of hours (hourly bars and hourly funding rates)
    seed : the random seed (same seed, same market)
    interval : the candle interval, ``1h`` or a multiple of it (``4h``, ``1d``): coarser candles sample the hourly
        path at their closes; funding stays hourly.
    """
    unknown = [c for c in coins if c not in COINS]
    if unknown:
        raise ValueError(f"unknown coin(s) {unknown}; known: {list(COINS)}")
    step_h = INTERVAL_MS[interval] // 3_600_000
    if step_h < 1 or INTERVAL_MS[interval] % 3_600_000:
        raise ValueError(f"interval must be a whole number of hours, got {interval!r}")
    rng = np.random.default_rng(seed)
    n, m = int(hours), len(coins)
    first = np.array([COINS[c][0] for c in coins])
    vol = np.array([COINS[c][1] for c in coins]) / np.sqrt(HOURS_PER_YEAR)
    bias = np.array([COINS[c][2] for c in coins]) / HOURS_PER_YEAR
    drift = rng.normal(0.3, 0.8, m) / HOURS_PER_YEAR  # annual drifts around +30 %, widely spread
    dof = 4.0
    shocks = rng.standard_t(dof, size=(n, m + 1)) / np.sqrt(dof / (dof - 2))
    loading = 0.7
    eps = loading * shocks[:, :1] + np.sqrt(1 - loading**2) * shocks[:, 1:]
    log_ret = drift - 0.5 * vol**2 + vol * eps
    log_ret[0] = 0.0
    close = first * np.exp(np.cumsum(log_ret, axis=0))
    # funding: interest + a premium that chases the trailing week's return, mean-reverting with noise
    week = 24 * 7
    cum = np.vstack([np.zeros((1, m)), np.cumsum(log_ret, axis=0)])
    trailing = cum[1:] - cum[np.maximum(np.arange(1, n + 1) - week, 0)]
    target = bias + 4.0 * trailing / HOURS_PER_YEAR  # +10 % in a week -> about +40 % a year of premium
    phi = 0.5 ** (1 / 24)  # a half-life of a day
    noise = rng.normal(0.0, 0.03 / HOURS_PER_YEAR, size=(n, m))
    premium = np.empty((n, m))
    level = target[0]
    for t in range(n):
        level = phi * level + (1 - phi) * target[t] + noise[t]
        premium[t] = level
    rate = np.clip(INTEREST_PER_HOUR + premium, -0.04, 0.04)  # Hyperliquid caps funding at 4 % an hour
    t0 = int(pd.Timestamp(start, tz="UTC").value // 1_000_000)
    hour = 3_600_000
    jitter = rng.integers(1, 600, size=(n, m))  # ms after the hour
    candles, funding = {}, {}
    width = step_h * hour
    for k, coin in enumerate(coins):
        rows = []
        for j in range(0, n - step_h + 1, step_h):
            o = close[j - 1, k] if j > 0 else first[k]  # a candle opens at the previous close
            c = close[j + step_h - 1, k]
            path = close[j : j + step_h, k]
            rows.append(
                {
                    "t": t0 + j * hour,
                    "T": t0 + j * hour + width - 1,
                    "s": coin,
                    "i": interval,
                    "o": _sig5(o),
                    "c": _sig5(c),
                    "h": _sig5(max(path.max(), o) * (1 + 0.2 * vol[k])),
                    "l": _sig5(min(path.min(), o) * (1 - 0.2 * vol[k])),
                    "v": f"{rng.uniform(10, 1000):.2f}",
                    "n": int(rng.integers(50, 5000)),
                }
            )
        candles[coin] = rows
        # the rate paid at the end of hour t (its candle's close)
        funding[coin] = [
            {
                "coin": coin,
                "fundingRate": f"{rate[t, k]:.8g}",
                "premium": f"{premium[t, k]:.8g}",
                "time": t0 + (t + 1) * hour + int(jitter[t, k]),
            }
            for t in range(n)
        ]
    prices, _ = prices_from_candles(candles, interval, source=f"synthetic-hyperliquid(seed={seed})")
    frame = pd.DataFrame(
        [
            {"time": pd.Timestamp(r["time"], unit="ms", tz="UTC"), "coin": c, "funding_rate": float(r["fundingRate"])}
            for c, rs in funding.items()
            for r in rs
        ]
    )
    rates, note = align_funding(frame, prices, source="synthetic funding")
    return SyntheticPerpMarket(candles=candles, funding=funding, prices=prices.with_funding(rates, note))


# ---- known-truth markets: returns with given means and covariance --------------------------------------------------
CALENDARS = {"monthly": 12.0, "daily": 252.0}
"""Calendars of :func:`known_truth_market`: bars per year (month ends; weekdays, a 252-day year like equities)."""


@dataclass(frozen=True)
class KnownTruthMarket:
    """A market drawn from known parameters (:func:`known_truth_market`), with the truth a strategy is judged by.

    ``mean`` and ``cov`` are per bar (the annual figures divided by ``periods_per_year``) of simple returns;
    ``returns`` (n_bars - 1, n_assets) are the draws, ``prices`` the closes they compound into from 1.0.
    ``optimum`` is the true long-only maximum-Sharpe portfolio (:func:`true_max_sharpe`).
    """

    prices: Prices
    returns: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    periods_per_year: float
    optimum: np.ndarray

    def sharpe(self, weights) -> float:
        """The true annualized Sharpe ratio of constant ``weights`` (rebalanced every bar, no costs):
        ``w'mu / sqrt(w'Sigma w) x sqrt(periods_per_year)``."""
        w = np.asarray(weights, dtype=np.float64)
        return float(w @ self.mean / np.sqrt(w @ self.cov @ w) * np.sqrt(self.periods_per_year))

    @property
    def optimum_sharpe(self) -> float:
        return self.sharpe(self.optimum)

    @property
    def equal_weight_sharpe(self) -> float:
        n = len(self.mean)
        return self.sharpe(np.full(n, 1.0 / n))

    @property
    def distance(self) -> float:
        """How far the true optimum is from 1/N: half the L1 distance, the fraction of capital to move."""
        n = len(self.mean)
        return float(0.5 * np.abs(self.optimum - 1.0 / n).sum())


def true_max_sharpe(mean, cov) -> np.ndarray:
    """The long-only, fully invested portfolio of the highest ``w'mu / sqrt(w'Sigma w)`` for known ``mean``, ``cov``.

    Solved exactly as the quadratic program ``min y'Sigma y`` s.t. ``mu'y = 1``, ``y >= 0``, ``w = y / sum(y)``
    (scipy's SLSQP, started from the unconstrained tangency clipped at 0), then solved exactly on the assets it holds
    (the tangency of that subset), so the others are exactly 0; when the tangency ``Sigma^-1 mu`` is already
    long-only it is the answer. Needs at least one positive mean.
    """
    from scipy.optimize import minimize

    mu = np.asarray(mean, dtype=np.float64)
    sigma = np.asarray(cov, dtype=np.float64)
    if not (mu > 0).any():
        raise ValueError("true_max_sharpe: no asset has a positive mean: the maximum-Sharpe portfolio is undefined")
    tangency = np.linalg.solve(sigma, mu)
    if (tangency >= 0).all():
        return tangency / tangency.sum()
    y0 = np.clip(tangency, 0.0, None)
    y0 = y0 / (mu @ y0) if mu @ y0 > 0 else np.where(mu > 0, 1.0, 0.0) / mu[mu > 0].sum()
    res = minimize(
        lambda y: y @ sigma @ y,
        y0,
        jac=lambda y: 2.0 * sigma @ y,
        constraints=[{"type": "eq", "fun": lambda y: mu @ y - 1.0, "jac": lambda y: mu}],
        bounds=[(0.0, None)] * len(mu),
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    y = np.clip(res.x, 0.0, None)
    support = y > 1e-8 * y.max()  # the active set SLSQP found: solved exactly there (no solver dust elsewhere)
    exact = np.linalg.solve(sigma[np.ix_(support, support)], mu[support])
    if (exact > 0).all():
        y = np.zeros_like(y)
        y[support] = exact
    return y / y.sum()


def known_truth_market(
    mean,
    cov,
    *,
    n_returns: int,
    calendar: str = "monthly",
    seed: int = 0,
    dof: float | None = None,
    start: str = "2000-01-01",
    symbols=None,
) -> KnownTruthMarket:
    """Draw simple returns with known annual ``mean`` (n_assets,) and covariance ``cov`` (n_assets, n_assets).

    Per bar the returns are ``mean / ppy + L z`` with ``L L' = cov / ppy`` (``ppy`` = :data:`CALENDARS`), ``z``
    standard normal, or with ``dof`` a multivariate Student-t scaled to unit variance (``dof > 2``: the same
    covariance, fatter tails). ``calendar``: ``monthly`` (month-end bars) or ``daily`` (weekdays) from ``start``.
    The prices compound the returns from 1.0 at the first bar, so there are ``n_returns + 1`` bars. A draw of -100 %
    or worse (a volatility too high for simple returns) is a ValueError. Same seed, same market.
    """
    if calendar not in CALENDARS:
        raise ValueError(f"calendar must be one of {list(CALENDARS)}, got {calendar!r}")
    ppy = CALENDARS[calendar]
    mu = np.asarray(mean, dtype=np.float64) / ppy
    sigma = np.asarray(cov, dtype=np.float64) / ppy
    n = len(mu)
    if n < 2 or sigma.shape != (n, n) or not np.allclose(sigma, sigma.T):
        raise ValueError(f"mean must have n >= 2 entries and cov be a symmetric (n, n) matrix; got {n}, {sigma.shape}")
    if isinstance(n_returns, bool) or not isinstance(n_returns, (int, np.integer)) or n_returns < 2:
        raise ValueError(f"n_returns must be an integer >= 2, got {n_returns!r}")
    if dof is not None and not dof > 2:
        raise ValueError(f"dof must be > 2 (a finite variance), got {dof!r}")
    chol = np.linalg.cholesky(sigma)  # raises LinAlgError for a covariance that is not positive definite
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((int(n_returns), n))
    if dof is not None:  # a multivariate t: one chi-square scale per bar, rescaled to unit variance
        z *= np.sqrt((dof - 2.0) / rng.chisquare(dof, size=(int(n_returns), 1)))
    returns = mu + z @ chol.T
    if (returns <= -1.0).any():
        i, j = np.argwhere(returns <= -1.0)[0]
        raise ValueError(
            f"a drawn return of asset {j} at bar {i + 1} is {returns[i, j]:.3f} (<= -100 %): lower the vol"
        )
    freq = "ME" if calendar == "monthly" else "B"
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=int(n_returns) + 1, freq=freq)
    close = np.vstack([np.ones((1, n)), np.cumprod(1.0 + returns, axis=0)])
    names = [f"A{i:02d}" for i in range(n)] if symbols is None else [str(s) for s in symbols]
    dist = "normal" if dof is None else f"Student-t({dof:g})"
    prices = Prices.from_frame(
        pd.DataFrame(close, index=index, columns=names),
        source=f"known-truth market ({calendar}, multivariate {dist}, seed={seed})",
        periods_per_year=ppy,
    )
    return KnownTruthMarket(prices, returns, mu, sigma, ppy, true_max_sharpe(mu, sigma))


def equal_market(
    n_assets: int = 10, *, mean: float = 0.08, vol: float = 0.16, corr: float = 0.5, **kwargs
) -> KnownTruthMarket:
    """Case (a): every asset has the same annual mean, volatility and pairwise correlation, so 1/N is the true
    maximum-Sharpe portfolio (any other portfolio has more variance for the same mean). Keywords as
    :func:`known_truth_market`."""
    cov = vol**2 * (corr * np.ones((n_assets, n_assets)) + (1.0 - corr) * np.eye(n_assets))
    return known_truth_market(np.full(n_assets, mean), cov, **kwargs)


def tilted_market(
    n_assets: int = 10,
    *,
    sharpe_low: float = 0.1,
    sharpe_high: float = 0.9,
    vol_low: float = 0.12,
    vol_high: float = 0.24,
    corr: float = 0.3,
    **kwargs,
) -> KnownTruthMarket:
    """Case (b): equal pairwise correlation, annual volatilities spread evenly from ``vol_low`` to ``vol_high`` and
    Sharpe ratios from ``sharpe_high`` (the least volatile asset) down to ``sharpe_low`` (the most volatile), so the
    true maximum-Sharpe portfolio (:attr:`KnownTruthMarket.optimum`) leans toward the calm, rewarding assets and is
    away from 1/N by :attr:`KnownTruthMarket.distance`. Keywords as :func:`known_truth_market`."""
    vols = np.linspace(vol_low, vol_high, n_assets)
    sharpes = np.linspace(sharpe_high, sharpe_low, n_assets)
    corr_m = corr * np.ones((n_assets, n_assets)) + (1.0 - corr) * np.eye(n_assets)
    return known_truth_market(sharpes * vols, np.outer(vols, vols) * corr_m, **kwargs)

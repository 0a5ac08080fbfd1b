"""Fitness metrics of whole populations at once, on top of the Numba kernels in
:mod:`genetic_sizer.backtest.kernels.spot`.

Definitions (all per genome, from the value series ``v`` of n bars and ``init_cash``):

=========================  ===================================================================
``total_return``           ``v[-1] / init_cash - 1``
``annualized_return``      ``prod(1 + r) ** (periods_per_year / n) - 1`` (CAGR)
``cagr``                   alias of ``annualized_return``
``annualized_volatility``  ``std(r, ddof=1) * sqrt(periods_per_year)``
``sharpe``                 ``mean(x) / std(x, ddof=1) * sqrt(periods_per_year)``, ``x = r - rf`` the excess returns
``sortino``                ``mean(x) * ppy / (sqrt(mean(min(x, 0)**2)) * sqrt(ppy))``
``calmar``                 ``annualized_return / |max_drawdown|``
``max_drawdown``           ``min(v / running_max(v) - 1)``, a number in ``[-1, 0]`` (vectorbt's sign)
``turnover``               annualized two-way turnover: the traded notional (buys plus sells, at fill
                           prices) of each rebalance after the first, divided by the portfolio value
                           just before it, summed and multiplied by ``periods_per_year / n``. At a
                           rebalance this is ``sum_k |w_k - w_before_k|`` without costs (a switch of
                           the whole book from one asset to another counts 2); 1.0 a year means trades
                           worth the whole book a year, e.g. half of it sold and replaced
``wiped_out``              1.0 if the value reached zero or below at some bar, else 0.0
=========================  ===================================================================

A perp account (``market: perp``) also reports, through :meth:`genetic_sizer.evolution.evaluator.Evaluator.metrics` and
``metrics_of`` (:func:`account_metrics`):

=========================  ===================================================================
``funding_paid``           funding paid over the run, in the account's currency (>= 0)
``funding_received``       funding received over the run (>= 0)
``fees_paid``              trading fees paid over the run (>= 0; slippage is in the fills)
``liquidated``             1.0 if the account was liquidated (its equity fell to the maintenance
                           margin), else 0.0
=========================  ===================================================================

where ``r[0] = v[0] / init_cash - 1`` and ``r[i] = v[i] / v[i-1] - 1``, and ``rf[i]`` is the risk-free rate of bar
``i`` (``risk_free``, 0 by default; :mod:`genetic_sizer.backtest.riskfree` turns ``portfolio.risk_free`` into per-bar
rates). These are vectorbt's definitions (``pf.sharpe_ratio(risk_free=rf)``, ``pf.sortino_ratio(required_return=rf)``
and friends, with ``freq`` and ``year_freq`` giving ``periods_per_year`` bars a year), and the test suite checks them
against vectorbt to 1e-9 relative (and a risk-free series against a plain loop). Where vectorbt returns ``inf``,
``nan`` or a figure made of rounding noise, these return finite values that keep the ranking monotone:

* every metric lies in ``[-CAP, CAP]`` (:data:`CAP` = 1e12);
* a ratio with a zero denominator (Sharpe without volatility, Sortino without downside, Calmar without
  drawdown) is ``+CAP``, ``-CAP`` or 0 by the sign of its numerator (mean excess return; annualized return for
  Calmar). Dispersions and drawdowns within rounding noise of zero (:data:`genetic_sizer.backtest.kernels.spot.NOISE` =
  1e-12) count as zero, and so does a numerator within it of zero (the ratio is then 0). So a
  constant-return series has Sharpe ``+CAP``, not 1e15, and a genome that gains without ever losing
  ranks at or above every genome with a loss in Sortino and Calmar;
* a genome whose value reaches zero or below at any bar (a long/short portfolio whose shorts rallied) is
  *wiped out*: it is measured on the returns up to that bar, where it is worth 0, so ``total_return``,
  ``annualized_return`` and ``max_drawdown`` are -1 and ``calmar`` is -1 (vectorbt reports the value
  going through zero, e.g. a drawdown of -4.5, -450 %). The simulation itself is not changed: it
  equals vectorbt's. For selection, :class:`~genetic_sizer.evolution.evaluator.Evaluator` gives a wiped-out genome
  :data:`WIPED_OUT_FITNESS` in every objective, worse than any live genome;
* a liquidated perp account keeps what the liquidation left (``max(equity, 0)``) and never trades again; its
  metrics describe that path, but for selection it is treated like a wiped-out genome: the worst outcome,
  whatever its Sharpe ratio up to the liquidation was.
"""

from __future__ import annotations

import math

import numpy as np

from genetic_sizer import vocab as V
from genetic_sizer.backtest.kernels import spot as nb
from genetic_sizer.backtest.riskfree import check_rates
from genetic_sizer.errors import ConfigError

__all__ = [
    "ACCOUNT_METRICS",
    "CAP",
    "MAXIMIZE",
    "METRICS",
    "WIPED_OUT_FITNESS",
    "account_metrics",
    "compute_metrics",
    "wiped_out_fitness",
]

CAP = nb.CAP
"""Every metric lies in ``[-CAP, CAP]``; an unbounded ratio (zero denominator) is ``+CAP`` or ``-CAP``."""

WIPED_OUT_FITNESS = 10 * CAP
"""Magnitude of a wiped-out genome's fitness: ``-WIPED_OUT_FITNESS`` for a maximized objective,
``+WIPED_OUT_FITNESS`` for a minimized one. Every live genome's value lies in ``[-CAP, CAP]``, so this is
strictly worse, yet finite (the evolution loop and NSGA-II's crowding distance need finite fitness)."""

ACCOUNT_METRICS = ("funding_paid", "funding_received", "fees_paid", "liquidated")
"""What a perp backtest reports beyond the value-based metrics (see :func:`account_metrics`)."""

METRICS = (*(m for m in nb.METRIC_NAMES if m != "wiped_out"), "cagr", "turnover", "wiped_out", *ACCOUNT_METRICS)

MAXIMIZE = V.OBJECTIVES
"""For each objective, whether a larger value is better (``wiped_out`` is a flag, not an objective)."""


def wiped_out_fitness(objectives) -> np.ndarray:
    """The fitness of a wiped-out genome: the worst possible value of each objective (see WIPED_OUT_FITNESS)."""
    return np.array([-WIPED_OUT_FITNESS if MAXIMIZE[o] else WIPED_OUT_FITNESS for o in objectives])


def compute_metrics(
    values,
    *,
    init_cash: float,
    periods_per_year: float,
    traded=None,
    risk_free=0.0,
) -> dict[str, np.ndarray]:
    """Every fitness metric for every genome.

    Parameters
    ----------
    values : array (n_bars, n_genomes) or (n_bars,)
        Portfolio values, as returned by :func:`genetic_sizer.backtest.simulate.simulate`.
    init_cash : float
        The value before the first bar.
    periods_per_year : float
        Bars per year (``Prices.periods_per_year``).
    traded : array (n_genomes,), optional
        ``Backtest.traded`` from :func:`genetic_sizer.backtest.simulate.backtest`; when given, ``turnover`` is
        reported.
    risk_free : float or array (n_bars,)
        The risk-free rate per bar (vectorbt's ``risk_free``: a per-period rate, not an annual one), one for every
        bar or one per bar; Sharpe and Sortino are those of the returns in excess of it. 0 (default): of the returns
        themselves. See :func:`genetic_sizer.backtest.riskfree.check_rates` for what is refused.

    Returns
    -------
    dict of metric name -> float64 array (n_genomes,)
        Every name of :data:`METRICS` (``turnover`` only with ``traded``); ``wiped_out`` is 1.0 or 0.0.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2 or v.shape[0] < 2:
        raise ConfigError(f"values must be (n_bars >= 2, n_genomes), got shape {np.shape(values)}")
    if not (math.isfinite(init_cash) and init_cash > 0):
        raise ConfigError(f"init_cash must be a positive finite number, got {init_cash!r}")
    periods_per_year = check_periods_per_year(periods_per_year)
    if not np.isfinite(v).all():
        raise ConfigError("values contain NaN or infinity")
    rf = check_rates(risk_free, v.shape[0], periods_per_year)
    vg = np.ascontiguousarray(v.T)  # genome-major for the kernel
    out = np.empty((len(nb.METRIC_NAMES), vg.shape[0]), dtype=np.float64)
    nb.metrics_nb(vg, float(init_cash), float(periods_per_year), rf, out)
    result = {name: out[i] for i, name in enumerate(nb.METRIC_NAMES)}
    result["cagr"] = result["annualized_return"]
    if traded is not None:
        traded = np.asarray(traded, dtype=np.float64)
        if traded.shape != (vg.shape[0],):
            raise ConfigError(f"traded must have shape ({vg.shape[0]},), got {traded.shape}")
        result["turnover"] = annualized_turnover(traded, periods_per_year, v.shape[0])
    return result


def check_periods_per_year(periods_per_year) -> float:
    """``periods_per_year`` as a float, or a ConfigError unless it is a positive finite number."""
    ok = isinstance(periods_per_year, (int, float, np.integer, np.floating))
    if not (ok and math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ConfigError(f"periods_per_year must be a positive finite number, got {periods_per_year!r}")
    return float(periods_per_year)


def annualized_turnover(traded, periods_per_year: float, n_bars: int) -> np.ndarray:
    """The ``turnover`` metric from the turnover sums ``traded`` (n_genomes,) of a backtest of ``n_bars`` bars."""
    return np.minimum(np.asarray(traded, dtype=np.float64) * (periods_per_year / n_bars), CAP)


def liquidated_flag(liquidation_bar) -> np.ndarray:
    """The ``liquidated`` metric (1.0 or 0.0) from each genome's liquidation bar (-1: never)."""
    return (np.asarray(liquidation_bar) >= 0).astype(np.float64)


def account_metrics(bt) -> dict[str, np.ndarray]:
    """The account figures of a perp :class:`~genetic_sizer.backtest.simulate.Backtest` (``{}`` for spot): funding paid
    and received and fees paid, in the account's currency, and ``liquidated`` (1.0 or 0.0)."""
    if bt.market != "perp":
        return {}
    return {
        "funding_paid": np.asarray(bt.funding_paid, dtype=np.float64),
        "funding_received": np.asarray(bt.funding_received, dtype=np.float64),
        "fees_paid": np.asarray(bt.fees_paid, dtype=np.float64),
        "liquidated": liquidated_flag(bt.liquidated),
    }

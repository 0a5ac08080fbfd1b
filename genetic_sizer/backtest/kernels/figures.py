"""The fitness figures' conventions, shared by the per-genome scorer (:mod:`genetic_sizer.backtest.kernels.spot`) and
the scorer of genomes side by side (:mod:`genetic_sizer.backtest.kernels.lane_metrics`): the metrics' names and order,
the clipping of unbounded ratios, the rounding tolerance, and the columns of a scored row."""

from __future__ import annotations

from numba import njit

# Rows of the metrics matrix returned by metrics_nb, in order.
METRIC_NAMES = (
    "total_return",
    "annualized_return",
    "annualized_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "wiped_out",
)

CAP = 1e12
"""Every metric lies in ``[-CAP, CAP]``. A ratio whose denominator is zero (no volatility, no downside, no
drawdown) is ``+CAP``, ``-CAP`` or 0 by the sign of its numerator: ``CAP`` stands for an unbounded ratio.
1e12 is far above any meaningful value (a Sharpe ratio of 1e12, a return of 1e14 %) and far below overflow."""
NOISE = 1e-12
"""Rounding tolerance (a return carries an absolute error of about 1e-16 times ``1 + r``): per-bar return
dispersions (standard deviation, downside deviation) at or below ``NOISE * (1 + |mean|)`` and drawdowns down
to ``-NOISE`` count as zero, and a ratio whose numerator (per-bar mean, annualized return) is within ``NOISE``
of zero is 0."""


@njit(cache=True, inline="always")
def _clip(x):
    """``x`` clipped to ``[-CAP, CAP]`` (infinities included)."""
    if x > CAP:
        return CAP
    if x < -CAP:
        return -CAP
    return x


SCORE_WIDTH = 16
"""Columns of a row of ``score_population_nb``'s output (padded to 128 bytes, two cache lines, so threads writing
neighbouring genomes never share one): ``METRIC_NAMES`` in order, then ``SCORE_TRADED`` and ``SCORE_NONFINITE``; the
perp kernel (:func:`genetic_sizer.backtest.kernels.perp.score_perp_population_nb`) adds its account figures after
those."""
SCORE_TRADED = len(METRIC_NAMES)
"""Column of the turnover sum (the ``traded`` of a backtest)."""
SCORE_NONFINITE = SCORE_TRADED + 1
"""Column set to 1.0 when some value of the genome's path was NaN or infinite (else 0.0)."""

"""The fitness figures' conventions, shared by the per-genome scorer (:mod:`genetic_sizer.backtest.kernels.spot`) and
the scorer of genomes side by side (:mod:`genetic_sizer.backtest.kernels.lane_metrics`): the metrics' names and order,
the clipping of unbounded ratios, the rounding tolerance, and the columns of a scored row."""

from __future__ import annotations

import numpy as np
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


@njit(cache=True)
def finish_metrics(mean, growth, ss, mean_ex, ss_ex, down, max_dd, wiped, n, last, init_cash, ann_factor, row):
    """The metrics of one value path from its sums, into ``row[: len(METRIC_NAMES)]``: the last step of both scorers
    (:func:`~genetic_sizer.backtest.kernels.spot.metrics_genome_nb` and, per lane,
    :func:`~genetic_sizer.backtest.kernels.lane_metrics.score_lanes_nb`), so their figures are the same bits. ``last``
    is the path's last value (unused when ``wiped``); the rest as in ``metrics_genome_nb``."""
    std = np.sqrt(ss / (n - 1)) if n > 1 else 0.0  # ddof=1
    std_ex = np.sqrt(ss_ex / (n - 1)) if n > 1 else 0.0
    down_dev = np.sqrt(down / n)  # per bar
    zero = NOISE * (1.0 + abs(mean))  # a dispersion at or below this is rounding noise
    if std <= zero:
        std = 0.0
    zero_ex = NOISE * (1.0 + abs(mean_ex))
    if std_ex <= zero_ex:
        std_ex = 0.0
    if wiped:
        total_return = -1.0
        ann_ret = -1.0
        max_dd = -1.0
    else:
        total_return = _clip(last / init_cash - 1.0)
        ann_ret = _clip(growth ** (ann_factor / n) - 1.0)
        if max_dd >= -NOISE:
            max_dd = 0.0
    ann_vol = _clip(std * np.sqrt(ann_factor))
    # a ratio is 0 when its numerator is rounding noise, +-CAP when its denominator is zero
    if abs(mean_ex) <= NOISE:
        sharpe = 0.0
        sortino = 0.0
    else:
        sharpe = _clip(mean_ex / std_ex * np.sqrt(ann_factor)) if std_ex > 0 else np.copysign(CAP, mean_ex)
        if down_dev > zero_ex:
            sortino = _clip(mean_ex * ann_factor / (down_dev * np.sqrt(ann_factor)))
        else:
            sortino = np.copysign(CAP, mean_ex)
    if abs(ann_ret) <= NOISE:
        calmar = 0.0
    else:
        calmar = _clip(ann_ret / abs(max_dd)) if max_dd < 0 else np.copysign(CAP, ann_ret)
    row[0] = total_return
    row[1] = ann_ret
    row[2] = ann_vol
    row[3] = sharpe
    row[4] = sortino
    row[5] = calmar
    row[6] = max_dd
    row[7] = 1.0 if wiped else 0.0

"""Resampled fitness (``robust.resample``): each objective on K resamples of a genome's one simulated path, combined.

A genome is simulated once over the training window; its bar returns ``r_0 = v_0 / init_cash - 1``, ``r_i = v_i /
v_{i-1} - 1`` (i = 1 .. n-1, ``n`` bars) are then resampled K ways and every metric is computed on each resample by
the fused scorers in the same pass (:func:`genetic_sizer.backtest.kernels.spot.resample_genome_nb`; for the vectorbt
engine the same kernel over vectorbt's value paths):

* ``blocks``: K contiguous blocks of the returns, block ``k`` the bars ``[floor(k n / K), floor((k+1) n / K))`` (sizes
  differ by at most one bar, the longer blocks later). A block's first return is the return into its first bar from
  the previous bar's close (``r_lo = v_lo / v_{lo-1} - 1``; for the first block from ``init_cash``), so the blocks
  partition the window's returns exactly. Each block needs at least 2 bars (``n >= 2 K``).
* ``bootstrap``: K stationary-bootstrap resamples (Politis and Romano 1994) of the n returns, each n long: a block
  starts at a uniform bar and continues on the next bar (wrapping from the last bar to the first) with probability
  ``1 - 1/L`` at each step, else a new block starts at a uniform bar; ``L`` is ``robust.block_length`` (default the
  cube root of n, rounded up). The indices are drawn once, in Python, by numpy's ``default_rng`` seeded with
  ``[evolution.seed, BOOTSTRAP_STREAM]`` (:func:`bootstrap`): the same on every worker and every run.

Each resample's return series is compounded from ``init_cash`` into a value path and scored with the whole window's
definitions (:mod:`genetic_sizer.backtest.metrics`): Sharpe and Sortino in excess of the same bars' risk-free rates,
the drawdown of the compounded resampled path (from its first bar's value on, as the whole window's), annualized
figures over the resample's own length, turnover as the sum of the drawn bars' turnover terms (each rebalance's traded
notional over the value before it) annualized over that length, every figure within ``[-CAP, CAP]``. A wiped-out
genome's resamples are its whole-window figures (its fitness is the wiped-out sentinel anyway). :func:`combine` then
reduces the K values on the pessimistic side of each objective's direction. ``resample: none`` scores no resample
(K = 0): the scorers then run the plain fitness path, with the same figures as before bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genetic_sizer.backtest.kernels import spot as nb
from genetic_sizer.backtest.riskfree import check_rates
from genetic_sizer.errors import ConfigError

__all__ = [
    "BOOTSTRAP_STREAM",
    "Resamples",
    "blocks",
    "bootstrap",
    "clamp_sentinels",
    "combine",
    "cube_root_ceil",
    "label",
    "of_backtest",
    "resampled_metrics",
    "robust_fitness",
]

BOOTSTRAP_STREAM = 23
"""Second word of the bootstrap's seed ``[evolution.seed, BOOTSTRAP_STREAM]`` (its own stream of the run's seed)."""


@dataclass(frozen=True)
class Resamples:
    """K resamples of a window's bars: resample ``k`` is the bars ``idx[ptr[k]:ptr[k+1]]``."""

    kind: str
    idx: np.ndarray  # int64 (total,)
    ptr: np.ndarray  # int64 (K + 1,)
    block_length: int | None = None

    @property
    def k(self) -> int:
        return len(self.ptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.ptr)

    def bars(self, k: int) -> np.ndarray:
        """The bars of resample ``k``."""
        return self.idx[self.ptr[k] : self.ptr[k + 1]]


NONE = Resamples("none", np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64))
"""No resampling (K = 0): what the scorers get for the plain fitness."""


def cube_root_ceil(n: int) -> int:
    """The smallest integer ``b`` with ``b ** 3 >= n`` (the cube root of ``n``, rounded up, without float error)."""
    b = max(1, round(n ** (1.0 / 3.0)))
    while b**3 < n:
        b += 1
    while b > 1 and (b - 1) ** 3 >= n:
        b -= 1
    return b


def blocks(n_bars: int, k: int) -> Resamples:
    """K contiguous, nearly equal blocks of ``n_bars`` bars (see the module docstring); a ConfigError naming
    ``robust.resamples`` unless every block has at least 2 bars."""
    if k < 2 or n_bars < 2 * k:
        raise ConfigError(
            f"robust.resamples must be between 2 and half the training window's bars for resample: blocks (each block "
            f"needs at least 2 bars), got {k!r} for a window of {n_bars} bars"
        )
    ptr = np.array([j * n_bars // k for j in range(k + 1)], dtype=np.int64)
    return Resamples("blocks", np.arange(n_bars, dtype=np.int64), ptr)


def stationary_indices(rng: np.random.Generator, n: int, mean_block: float) -> np.ndarray:
    """One stationary-bootstrap path (Politis and Romano): ``n`` bar indices in ``[0, n)``; each follows the previous
    one (wrapping) unless a new block starts, with probability ``1 / mean_block`` (the first index always starts
    one) at a uniform bar. Draws the ``n`` block-start coins (``rng.random(n)``) and then the ``n`` candidate start
    bars (``rng.integers(0, n, n)``), in that order."""
    if n < 1 or mean_block < 1:
        raise ValueError(f"stationary_indices: n {n} and mean_block {mean_block} must be >= 1")
    t = np.arange(n)
    new = rng.random(n) < 1.0 / mean_block
    new[0] = True
    starts = rng.integers(0, n, n)
    opened = np.maximum.accumulate(np.where(new, t, 0))  # the step the current block began on
    return ((starts[opened] + (t - opened)) % n).astype(np.int64)


def bootstrap(n_bars: int, k: int, block_length: int | None, seed: int) -> Resamples:
    """K stationary-bootstrap resamples of ``n_bars`` bars, each ``n_bars`` long, with mean block length
    ``block_length`` (None: :func:`cube_root_ceil` of ``n_bars``), drawn by ``np.random.default_rng([seed,
    BOOTSTRAP_STREAM])``: for each resample in turn, the ``n_bars`` block-start coins (``rng.random(n_bars) < 1 /
    L``, the first bar always starts a block) and then the ``n_bars`` candidate start bars (``rng.integers(0,
    n_bars, n_bars)``)."""
    if n_bars < 2:
        raise ConfigError(f"resample: bootstrap needs a training window of at least 2 bars, got {n_bars}")
    length = cube_root_ceil(n_bars) if block_length is None else int(block_length)
    if not 1 <= length <= n_bars:
        raise ConfigError(
            f"robust.block_length must be between 1 and the training window's {n_bars} bars, got {block_length!r}"
        )
    rng = np.random.default_rng([int(seed), BOOTSTRAP_STREAM])
    idx = np.stack([stationary_indices(rng, n_bars, length) for _ in range(k)])
    ptr = np.arange(k + 1, dtype=np.int64) * n_bars
    return Resamples("bootstrap", idx.ravel(), ptr, length)


def of_config(robust, n_bars: int, seed: int) -> Resamples:
    """The resamples a :class:`~genetic_sizer.config.robust.RobustConfig` asks for on a window of ``n_bars`` bars
    (:data:`NONE` for ``resample: none``)."""
    if robust is None or robust.resample == "none":
        return NONE
    if robust.resample == "blocks":
        return blocks(n_bars, robust.resamples)
    return bootstrap(n_bars, robust.resamples, robust.block_length, seed)


def combine(values, how: str, *, maximize: bool, penalty: float = 1.0, quantile: float = 0.25) -> np.ndarray:
    """Reduce each row of ``values`` (n_genomes, K) to one robust figure, on the pessimistic side of the objective's
    direction: for a maximized objective ``mean - penalty * std`` (sample std, ``ddof=1``), the lower ``quantile``
    (numpy's default linear interpolation) or the minimum; for a minimized one ``mean + penalty * std``, the ``1 -
    quantile`` quantile or the maximum.

    ``mean_std`` first clamps each row's unbounded figures (``+-CAP``: a Sortino with no downside, a Calmar with no
    drawdown in a short block) to that row's largest and smallest figures inside ``(-CAP, CAP)``
    (:func:`clamp_sentinels`): one sentinel would otherwise put the mean and the std at the order of CAP and
    ``mean - penalty * std`` far below zero, ranking a genome whose block never lost below every genome that did. A
    row of sentinels only is kept as it is. The quantile and the minimum are order statistics: no clamp."""
    x = np.asarray(values, dtype=np.float64)
    if how == "mean_std":
        x = clamp_sentinels(x)
        spread = penalty * x.std(axis=1, ddof=1)
        mean = x.mean(axis=1)
        return mean - spread if maximize else mean + spread
    if how == "quantile":
        return np.quantile(x, quantile if maximize else 1.0 - quantile, axis=1)
    if how == "min":
        return x.min(axis=1) if maximize else x.max(axis=1)
    raise ConfigError(f"robust.combine must be one of ['mean_std', 'quantile', 'min'], got {how!r}")


def clamp_sentinels(values) -> np.ndarray:
    """``values`` (n, K) with each row's ``+-CAP`` figures (``|v| >= CAP``) replaced by that row's largest (for
    ``+CAP``) or smallest (for ``-CAP``) figure strictly inside ``(-CAP, CAP)``; rows without such a figure are left
    as they are."""
    x = np.array(values, dtype=np.float64, copy=True)
    cap = float(nb.CAP)
    hi_s, lo_s = x >= cap, x <= -cap
    finite = ~(hi_s | lo_s)
    rows = finite.any(axis=1) & (hi_s | lo_s).any(axis=1)
    if rows.any():
        top = np.where(finite, x, -np.inf).max(axis=1)
        bottom = np.where(finite, x, np.inf).min(axis=1)
        fix_hi, fix_lo = hi_s & rows[:, None], lo_s & rows[:, None]
        x[fix_hi] = np.broadcast_to(top[:, None], x.shape)[fix_hi]
        x[fix_lo] = np.broadcast_to(bottom[:, None], x.shape)[fix_lo]
    return x


def robust_fitness(resampled, objectives, robust) -> np.ndarray:
    """The objectives' combined figures (n_genomes, n_objectives) from the resampled metrics (name -> (n_genomes,
    K)): :func:`combine` of each objective's K values on the pessimistic side of its direction (``mean - penalty x
    std``, the lower quantile, the minimum for a maximized objective, ``max_drawdown`` included; ``mean + penalty x
    std``, the upper quantile, the maximum for a minimized one)."""
    from genetic_sizer.vocab import OBJECTIVES

    return np.column_stack(
        [
            combine(
                resampled[o], robust.combine, maximize=OBJECTIVES[o], penalty=robust.penalty, quantile=robust.quantile
            )
            for o in objectives
        ]
    )


def label(robust, resamples: Resamples | None) -> str:
    """The fitness a ``robust:`` section gives, as the logbook's ``fitness`` column names it: ``whole_window``, or
    e.g. ``blocks K=4 mean_std penalty=1``, ``bootstrap K=20 L=13 quantile q=0.25``, ``blocks K=4 min``."""
    if robust is None or robust.resample == "none":
        return "whole_window"
    text = f"{robust.resample} K={robust.resamples}"
    if resamples is not None and resamples.block_length is not None:
        text += f" L={resamples.block_length}"
    if robust.combine == "mean_std":
        return f"{text} mean_std penalty={robust.penalty:g}"
    if robust.combine == "quantile":
        return f"{text} quantile q={robust.quantile:g}"
    return f"{text} min"


def of_backtest(bt, whole, init_cash, periods_per_year, risk_free, resamples: Resamples):
    """:func:`resampled_metrics` of a :class:`~genetic_sizer.backtest.simulate.Backtest` of an engine that reports
    per-bar turnover (vectorbt's), whose whole-window metrics are ``whole``."""
    if bt.turnover is None:
        raise ConfigError("this engine reports no per-bar turnover: the resampled fitness runs on fast or vectorbt")
    return resampled_metrics(
        bt.value, bt.turnover, whole, init_cash=init_cash, periods_per_year=periods_per_year, risk_free=risk_free,
        resamples=resamples,
    )  # fmt: skip


def as_metrics(res_out, resamples: Resamples, periods_per_year: float) -> dict[str, np.ndarray]:
    """The scorers' ``res_out`` (n_genomes, K, RESAMPLE_WIDTH) as metric name -> (n_genomes, K), with ``cagr`` and the
    annualized ``turnover`` (each resample's turnover sum times ``periods_per_year`` over its length)."""
    m = {name: np.ascontiguousarray(res_out[:, :, j]) for j, name in enumerate(nb.METRIC_NAMES)}
    m["cagr"] = m["annualized_return"]
    traded = res_out[:, :, nb.SCORE_TRADED]
    m["turnover"] = np.minimum(traded * (periods_per_year / resamples.lengths), nb.CAP)
    return m


def resampled_metrics(values, turnover, whole, *, init_cash, periods_per_year, risk_free, resamples: Resamples):
    """Every metric on every resample of simulated value paths (another engine's, e.g. vectorbt's): ``values`` and
    ``turnover`` (n_bars, n_genomes), the paths and their per-bar turnover terms; ``whole`` the whole-window metrics
    (name -> (n_genomes,)); ``risk_free`` the per-bar rates (n_bars,) or one for every bar. The same kernel as the fused
    scorers' (:func:`genetic_sizer.backtest.kernels.spot.resample_population_nb`)."""
    v = np.ascontiguousarray(np.asarray(values, dtype=np.float64).T)
    t = np.ascontiguousarray(np.asarray(turnover, dtype=np.float64).T)
    rows = np.ascontiguousarray(np.column_stack([whole[name] for name in nb.METRIC_NAMES]))
    rf = check_rates(risk_free, v.shape[1], periods_per_year)
    out = np.empty((v.shape[0], resamples.k, nb.RESAMPLE_WIDTH))
    nb.resample_population_nb(
        v, t, float(init_cash), float(periods_per_year), rf, resamples.idx, resamples.ptr, rows, out
    )
    return as_metrics(out, resamples, periods_per_year)

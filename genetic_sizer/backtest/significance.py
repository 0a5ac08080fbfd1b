"""Is an out-of-sample Sharpe ratio difference real? Pairwise tests against a benchmark, and Hansen's SPA test.

Every Sharpe ratio is per period, ``SR = mean(r) / std(r, ddof=1)`` (as in :mod:`genetic_sizer.backtest.stats`);
annualized figures multiply by ``√periods_per_year``. ``Δ = SR(returns) − SR(benchmark)``; every p-value is for
``H0: Δ = 0`` (two-sided), except the SPA test's (one-sided: no candidate is better than the benchmark).

Tests (how to read them: a p-value below 0.05 says the difference is unlikely to be luck at the 5% level):

- **Jobson-Korkie with Memmel's correction** (Memmel 2003), the quick figure, valid for i.i.d. normal returns:
  ``z = Δ / √θ``, ``θ = (2 − 2ρ + (SR₁² + SR₂² − 2·SR₁·SR₂·ρ²) / 2) / T``, ``ρ`` the correlation of the two series;
  ``p = 2·Φ(−|z|)``. As used by DeMiguel, Garlappi and Uppal (2009).
- **Ledoit and Wolf (2008), HAC inference**: the delta method on ``υ = (μ₁, μ₂, γ₁, γ₂)`` (means and uncentered
  second moments), ``se = √(∇f'·Ψ·∇f / T)`` with ``Ψ`` the Parzen-kernel HAC estimate of the long-run covariance
  of ``y_t = (r₁ − μ₁, r₂ − μ₂, r₁² − γ₁, r₂² − γ₂)``, Andrews' (1991) automatic bandwidth ``2.6614·(α̂T)^0.2``
  from AR(1) fits, the small-sample factor ``T/(T − 4)`` and, by default, VAR(1) prewhitening (Andrews and Monahan
  1992, singular values capped at 0.97): the authors' own ``hac.inference`` (``HAC`` and ``HAC.pw``), which
  tests/test_significance.py reproduces on their data to 7 digits.
- **Ledoit and Wolf (2008), studentized circular block bootstrap**: resample blocks of ``b`` pairs (arch's
  :class:`~arch.bootstrap.CircularBlockBootstrap`, keeping the ``l = ⌊T/b⌋`` whole blocks as the authors do),
  ``d* = |Δ* − Δ| / se*`` with ``se*`` from the blocks' means, ``d = |Δ| / se`` with the prewhitened HAC ``se``;
  ``p = (1 + #{d* >= d}) / (M + 1)``. ``b`` defaults to Politis and White's (2004, corrected 2009) optimal circular
  block length (:func:`arch.bootstrap.optimal_block_length`) of the delta method's influence series
  ``∇f'·y_t``, rounded up; the authors calibrate ``b`` by simulation instead (too slow here).
- **Hansen's (2005) SPA test**, "does any candidate (e.g. the hall of fame) beat the benchmark?": arch's
  :class:`~arch.bootstrap.SPA` on per-period Sharpe "losses": each series' influence function
  ``ℓ_t = −(SR + ∂SR/∂μ·(r_t − μ) + ∂SR/∂γ·(r_t² − γ))``, whose mean is ``−SR``, so the mean loss differential of
  candidate ``i`` is exactly ``SR_i − SR_benchmark`` and its long-run variance the delta method's. arch 8's SPA
  does not divide by the standard deviations when ``studentize=True`` (its statistic is the largest raw mean); the
  differentials are therefore passed divided by their long-run standard deviations (the stationary-bootstrap kernel
  arch uses), which is Hansen's studentized statistic. The p-value is Hansen's consistent one (lower and upper
  beside it); the block length is the mean over candidates of the optimal stationary-bootstrap block length.

Everything is deterministic given ``seed``. Bad input raises :class:`~genetic_sizer.errors.ConfigError` naming the
argument: arrays of the wrong shape or length, non-finite values, constant series (no Sharpe ratio to test),
too few returns, ``periods_per_year`` not positive, a bad ``block_length``, ``reps`` or ``seed``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtr

from genetic_sizer.backtest.stats import _check_finite, _count
from genetic_sizer.errors import ConfigError

__all__ = [
    "DEFAULT_REPS",
    "SPAResult",
    "SharpeTest",
    "ledoit_wolf_bootstrap",
    "ledoit_wolf_hac",
    "memmel_test",
    "optimal_block",
    "sharpe_losses",
    "sharpe_significance",
    "spa_test",
]

DEFAULT_REPS = 4999
"""Bootstrap replications: the p-value's Monte Carlo standard error at p = 0.05 is about 0.003."""

MIN_OBS = 10
"""Fewest returns the HAC and bootstrap tests accept (the prewhitening regression has 4 regressors)."""

_CHUNK_ELEMENTS = 1_000_000  # bootstrap draws gathered per chunk (reps x rows)
_PARZEN_CONSTANT = 2.6614  # Andrews (1991) bandwidth constant for the Parzen kernel
_PREWHITEN_CAP = 0.97  # singular values of the VAR(1) matrix are capped here (Ledoit and Wolf's code)


@dataclass(frozen=True)
class SharpeTest:
    """One test of ``H0: SR(returns) = SR(benchmark)``; Sharpe ratios and differences are per period unless
    annualized. ``block_length`` is the bootstrap's (None for the asymptotic tests), ``bandwidth`` the HAC
    estimator's Parzen lag truncation (None where not used), ``reps`` the bootstrap's replications."""

    method: str
    sharpe: float
    benchmark_sharpe: float
    difference: float
    difference_annualized: float
    statistic: float
    standard_error: float
    p_value: float
    block_length: int | None
    bandwidth: float | None
    reps: int | None
    n_obs: int
    periods_per_year: float

    def as_dict(self) -> dict:
        """The fields as a JSON-able dict."""
        return asdict(self)


@dataclass(frozen=True)
class SPAResult:
    """Hansen's SPA test of ``H0: no candidate's Sharpe ratio exceeds the benchmark's``. ``best`` is the column of
    the candidate with the highest Sharpe ratio, ``difference`` its Sharpe ratio minus the benchmark's (per period);
    ``p_value`` is Hansen's consistent p-value, ``p_value_lower``/``p_value_upper`` its bounds."""

    method: str
    best: int
    n_candidates: int
    sharpe: float
    benchmark_sharpe: float
    difference: float
    difference_annualized: float
    p_value: float
    p_value_lower: float
    p_value_upper: float
    block_length: int
    reps: int
    n_obs: int
    periods_per_year: float

    def as_dict(self) -> dict:
        """The fields as a JSON-able dict."""
        return asdict(self)


# ---------------------------------------------------------------------------------------------------
# validation


def _series(x, name: str, min_obs: int, n_obs: int | None = None, matrix: bool = False) -> np.ndarray:
    """``x`` as finite float64 (n_bars,) (or, with ``matrix``, (n_bars, k): a 1-D input is one column), with at
    least ``min_obs`` rows (exactly ``n_obs`` if given) and no constant column."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be an array of numbers: {exc}") from None
    if matrix and arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != (2 if matrix else 1) or (matrix and arr.shape[1] == 0):
        want = "(n_bars, k) with k >= 1" if matrix else "1-D (n_bars,)"
        raise ConfigError(f"{name} must be {want}, got shape {np.shape(x)}")
    if n_obs is not None and arr.shape[0] != n_obs:
        raise ConfigError(f"{name} must have the same length as returns ({n_obs}), got {arr.shape[0]}")
    if arr.shape[0] < min_obs:
        raise ConfigError(f"{name} needs at least {min_obs} returns, got {arr.shape[0]}")
    _check_finite(arr, name)
    flat = np.flatnonzero(np.ptp(arr.reshape(arr.shape[0], -1), axis=0) == 0)
    if flat.size:
        what = f"{name} column {int(flat[0])}" if matrix else name
        raise ConfigError(f"{what} is constant ({arr.flat[int(flat[0])]!r} every bar): it has no Sharpe ratio to test")
    return arr


def _ppy(value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"periods_per_year must be a positive number, got {value!r}") from None
    if not (math.isfinite(out) and out > 0):
        raise ConfigError(f"periods_per_year must be a positive number, got {value!r}")
    return out


def _block(value, t: int) -> int:
    out = _count(value, "block_length", 1)
    if out > t // 2:
        raise ConfigError(f"block_length must be between 1 and {t // 2} (n_bars // 2 for {t} returns), got {out}")
    return out


def _pair(returns, benchmark, min_obs: int) -> tuple[np.ndarray, np.ndarray]:
    a = _series(returns, "returns", min_obs)
    b = _series(benchmark, "benchmark", min_obs, n_obs=a.shape[0])
    return a, b


# ---------------------------------------------------------------------------------------------------
# the delta method of Ledoit and Wolf


def _sharpe(x: np.ndarray) -> float:
    return float(x.mean() / x.std(ddof=1))


def _delta_parts(a: np.ndarray, b: np.ndarray):
    """Gradient of ``f(μ₁, μ₂, γ₁, γ₂) = SR₁ − SR₂`` and the (T, 4) series ``y_t`` of the delta method."""
    mu = np.array([a.mean(), b.mean()])
    gam = np.array([np.mean(a * a), np.mean(b * b)])
    s3 = (gam - mu * mu) ** 1.5
    grad = np.array([gam[0] / s3[0], -gam[1] / s3[1], -0.5 * mu[0] / s3[0], 0.5 * mu[1] / s3[1]])
    y = np.column_stack([a - mu[0], b - mu[1], a * a - gam[0], b * b - gam[1]])
    return grad, y


def _parzen(x: float) -> float:
    x = abs(x)
    if x <= 0.5:
        return 1.0 - 6.0 * x * x + 6.0 * x**3
    return 2.0 * (1.0 - x) ** 3 if x <= 1.0 else 0.0


def _ar1(x: np.ndarray) -> tuple[float, float]:
    """AR(1) coefficient and innovation variance of ``x`` by least squares with an intercept, as R's
    ``ar(x, FALSE, 1, method = "ols")`` (fitted on the series scaled to unit variance, the variance scaled back)."""
    x = x - x.mean()
    scale = x.std(ddof=1)
    if not scale > 0:
        return 0.0, 0.0
    z = x / scale
    design = np.column_stack([np.ones(z.shape[0] - 1), z[:-1]])
    coef, *_ = np.linalg.lstsq(design, z[1:], rcond=None)
    resid = z[1:] - design @ coef
    return float(coef[1]), float(resid @ resid / resid.shape[0] * scale * scale)


def _hac_psi(v: np.ndarray) -> tuple[np.ndarray, float]:
    """Parzen-kernel HAC estimate of the long-run covariance of the rows of ``v`` (T, p), with Andrews' automatic
    bandwidth and the ``T/(T − 4)`` factor; returns the (p, p) matrix and the bandwidth ``S*``."""
    t = v.shape[0]
    fits = np.array([_ar1(col) for col in v.T])  # (p, 2): AR(1) coefficient, innovation variance
    rho, s2 = fits[:, 0], fits[:, 1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        alpha = float(np.sum(4.0 * rho**2 * s2**2 / (1.0 - rho) ** 8) / np.sum(s2**2 / (1.0 - rho) ** 4))
    if not (math.isfinite(alpha) and alpha >= 0):  # a unit root or all-constant columns: no lags
        alpha = 0.0
    bandwidth = min(_PARZEN_CONSTANT * (alpha * t) ** 0.2, t - 1.0)
    psi = v.T @ v / t
    j = 1
    while j < bandwidth:
        gamma = v[j:].T @ v[:-j] / t
        psi = psi + _parzen(j / bandwidth) * (gamma + gamma.T)
        j += 1
    return psi * t / (t - 4.0), float(bandwidth)


def _hac_se(grad: np.ndarray, y: np.ndarray, prewhiten: bool) -> tuple[float, float]:
    """Standard error of ``Δ`` and the bandwidth, plain or after VAR(1) prewhitening."""
    t = y.shape[0]
    if not prewhiten:
        psi, bandwidth = _hac_psi(y)
    else:
        lagged, current = y[:-1], y[1:]
        coef, *_ = np.linalg.lstsq(lagged, current, rcond=None)
        u, d, vt = np.linalg.svd(coef.T)
        a = u @ np.diag(np.clip(d, -_PREWHITEN_CAP, _PREWHITEN_CAP)) @ vt
        psi_star, bandwidth = _hac_psi(current - lagged @ a.T)
        recolor = np.linalg.inv(np.eye(y.shape[1]) - a)
        psi = recolor @ psi_star @ recolor.T
    var = float(grad @ psi @ grad / t)
    return math.sqrt(max(var, 0.0)), bandwidth


def _two_sided(diff: float, se: float) -> tuple[float, float]:
    """``(statistic, p-value)`` of a normal test; a zero standard error gives p = 1 for a zero difference, else 0."""
    if se > 0:
        z = diff / se
        return z, float(2.0 * ndtr(-abs(z)))
    return (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)


def _result(method, a, b, ppy, statistic, se, p, block=None, bandwidth=None, reps=None) -> SharpeTest:
    sa, sb = _sharpe(a), _sharpe(b)
    diff = sa - sb
    return SharpeTest(
        method=method,
        sharpe=sa,
        benchmark_sharpe=sb,
        difference=diff,
        difference_annualized=diff * math.sqrt(ppy),
        statistic=float(statistic),
        standard_error=float(se),
        p_value=float(min(max(p, 0.0), 1.0)),
        block_length=block,
        bandwidth=bandwidth,
        reps=reps,
        n_obs=int(a.shape[0]),
        periods_per_year=ppy,
    )


# ---------------------------------------------------------------------------------------------------
# the tests


def memmel_test(returns, benchmark, periods_per_year) -> SharpeTest:
    """Jobson and Korkie's test of equal Sharpe ratios with Memmel's (2003) correction (i.i.d. normal returns).

    Parameters
    ----------
    returns, benchmark : array (n_bars,)
        Per-period returns of the strategy and of the benchmark over the same bars, at least 3, finite, not
        constant.
    periods_per_year : float
        Bars per year, > 0 (only for ``difference_annualized``).

    Returns
    -------
    SharpeTest
        ``method="memmel_jobson_korkie"``, ``statistic`` the z-score, ``standard_error = √θ``, two-sided ``p_value``;
        ``block_length`` and ``bandwidth`` None.
    """
    a, b = _pair(returns, benchmark, 3)
    ppy = _ppy(periods_per_year)
    sa, sb = _sharpe(a), _sharpe(b)
    rho = float(np.corrcoef(a, b)[0, 1])
    theta = (2.0 - 2.0 * rho + 0.5 * (sa * sa + sb * sb - 2.0 * sa * sb * rho * rho)) / a.shape[0]
    se = math.sqrt(max(theta, 0.0))
    z, p = _two_sided(sa - sb, se)
    return _result("memmel_jobson_korkie", a, b, ppy, z, se, p)


def ledoit_wolf_hac(returns, benchmark, periods_per_year, *, prewhiten: bool = True) -> SharpeTest:
    """Ledoit and Wolf's (2008) HAC test of equal Sharpe ratios (robust to fat tails and serial correlation).

    Parameters
    ----------
    returns, benchmark : array (n_bars,)
        Per-period returns over the same bars, at least :data:`MIN_OBS`, finite, not constant.
    periods_per_year : float
        Bars per year, > 0.
    prewhiten : bool
        VAR(1) prewhitening before the kernel estimate (the authors' ``HAC.pw``; default), or the plain Parzen
        kernel estimate (``HAC``).

    Returns
    -------
    SharpeTest
        ``method`` ``"ledoit_wolf_hac_prewhitened"`` or ``"ledoit_wolf_hac"``, ``statistic = Δ / se``, two-sided
        ``p_value = 2·Φ(−|Δ|/se)``, ``bandwidth`` the Parzen lag truncation ``S*``; ``block_length`` None.
    """
    a, b = _pair(returns, benchmark, MIN_OBS)
    ppy = _ppy(periods_per_year)
    grad, y = _delta_parts(a, b)
    if np.array_equal(a, b):
        se, bandwidth = 0.0, None
    else:
        se, bandwidth = _hac_se(grad, y, bool(prewhiten))
    z, p = _two_sided(_sharpe(a) - _sharpe(b), se)
    method = "ledoit_wolf_hac_prewhitened" if prewhiten else "ledoit_wolf_hac"
    return _result(method, a, b, ppy, z, se, p, bandwidth=bandwidth)


def optimal_block(series, column: str = "circular") -> int:
    """Politis and White's optimal block length (arch's :func:`~arch.bootstrap.optimal_block_length`) of each column
    of ``series`` (n_bars,) or (n_bars, k), averaged over columns, rounded up; at least 1 (also where the estimate is
    undefined, e.g. a constant column). ``column`` is ``"circular"`` or ``"stationary"``."""
    from arch.bootstrap import optimal_block_length

    with np.errstate(all="ignore"):  # a constant column: 0/0 inside arch, handled below
        table = optimal_block_length(np.asarray(series, dtype=np.float64))
    values = table[column].to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    return max(1, math.ceil(float(values.mean()))) if values.size else 1


def _boot_counts(a, b, delta, d, block, reps, rng) -> int:
    """How many of ``reps`` circular block bootstrap draws give ``d* >= d`` (Ledoit and Wolf's statistic)."""
    from arch.bootstrap import CircularBlockBootstrap

    t = a.shape[0]
    n_blocks = t // block
    rows = n_blocks * block
    bs = CircularBlockBootstrap(block, np.arange(t), seed=rng)
    per_chunk = max(1, _CHUNK_ELEMENTS // rows)
    draws = (pos[0][:rows] for pos, _ in bs.bootstrap(reps))
    count = done = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        while done < reps:
            m = min(per_chunk, reps - done)
            idx = np.stack([next(draws) for _ in range(m)])
            x1, x2 = a[idx], b[idx]  # (m, rows)
            mu1, mu2 = x1.mean(axis=1), x2.mean(axis=1)
            g1, g2 = np.mean(x1 * x1, axis=1), np.mean(x2 * x2, axis=1)
            delta_star = mu1 / x1.std(axis=1, ddof=1) - mu2 / x2.std(axis=1, ddof=1)
            s1, s2 = (g1 - mu1 * mu1) ** 1.5, (g2 - mu2 * mu2) ** 1.5
            grad = np.stack([g1 / s1, -g2 / s2, -0.5 * mu1 / s1, 0.5 * mu2 / s2], axis=1)  # (m, 4)
            moments = np.stack([x1, x2, x1 * x1, x2 * x2], axis=2)  # (m, rows, 4)
            centre = np.stack([mu1, mu2, g1, g2], axis=1)[:, None, :]
            block_means = moments.reshape(m, n_blocks, block, 4).mean(axis=2) - centre  # (m, n_blocks, 4)
            zeta = math.sqrt(block) * np.einsum("mjk,mk->mj", block_means, grad)
            se_star = np.sqrt(np.mean(zeta * zeta, axis=1) / t)
            d_star = np.abs(delta_star - delta) / se_star
            count += int(np.count_nonzero(~(d_star < d)))  # NaN (a degenerate draw) counts as extreme
            done += m
    return count


def ledoit_wolf_bootstrap(
    returns,
    benchmark,
    periods_per_year,
    *,
    block_length: int | None = None,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> SharpeTest:
    """Ledoit and Wolf's (2008) studentized circular block bootstrap test of equal Sharpe ratios.

    Parameters
    ----------
    returns, benchmark : array (n_bars,)
        Per-period returns over the same bars, at least :data:`MIN_OBS`, finite, not constant.
    periods_per_year : float
        Bars per year, > 0.
    block_length : int or None
        Block length ``b``, 1 <= b <= n_bars // 2; None (default) takes :func:`optimal_block` of the influence
        series ``∇f'·y_t`` (capped at n_bars // 2).
    reps : int
        Bootstrap replications ``M`` >= 99.
    seed : int
        Seed of the bootstrap's generator (``numpy.random.default_rng(seed)``), >= 0.

    Returns
    -------
    SharpeTest
        ``method="ledoit_wolf_bootstrap"``, ``statistic`` the studentized ``Δ / se`` (prewhitened HAC ``se``),
        ``p_value = (1 + #{d* >= d}) / (M + 1)``, ``block_length`` the ``b`` used, ``bandwidth`` the HAC's.
    """
    a, b = _pair(returns, benchmark, MIN_OBS)
    ppy = _ppy(periods_per_year)
    t = a.shape[0]
    reps = _count(reps, "reps", 99)
    seed = _count(seed, "seed", 0)
    grad, y = _delta_parts(a, b)
    if block_length is None:
        block = min(optimal_block(y @ grad), t // 2)
    else:
        block = _block(block_length, t)
    delta = _sharpe(a) - _sharpe(b)
    if np.array_equal(a, b):
        return _result("ledoit_wolf_bootstrap", a, b, ppy, 0.0, 0.0, 1.0, block=block, reps=reps)
    se, bandwidth = _hac_se(grad, y, prewhiten=True)
    d = abs(delta) / se if se > 0 else math.inf
    count = _boot_counts(a, b, delta, d, block, reps, np.random.default_rng(seed))
    p = (1 + count) / (reps + 1)
    z = delta / se if se > 0 else math.copysign(math.inf, delta)
    return _result("ledoit_wolf_bootstrap", a, b, ppy, z, se, p, block=block, bandwidth=bandwidth, reps=reps)


# ---------------------------------------------------------------------------------------------------
# Hansen's SPA


def sharpe_losses(returns) -> np.ndarray:
    """Per-period Sharpe "losses" of each column of ``returns`` (n_bars, k): the influence function
    ``ℓ_t = −(SR + γ/σ³·(r_t − μ) − μ/(2σ³)·(r_t² − γ))`` (``μ``, ``γ`` the mean and mean square, ``σ² = γ − μ²``,
    ``SR`` with ddof=1), whose mean is exactly ``−SR``."""
    x = np.asarray(returns, dtype=np.float64)
    mu = x.mean(axis=0)
    gam = np.mean(x * x, axis=0)
    s3 = (gam - mu * mu) ** 1.5
    sr = mu / x.std(axis=0, ddof=1)
    return -(sr + gam / s3 * (x - mu) - 0.5 * mu / s3 * (x * x - gam))


def _stationary_long_run_sd(d: np.ndarray, block: int) -> np.ndarray:
    """Long-run standard deviation of each column of ``d`` (n_bars, k) with the stationary bootstrap's kernel
    ``κ_i = (1 − i/T)(1 − p)^i + (i/T)(1 − p)^(T−i)``, ``p = 1/block`` (Politis and Romano 1994), as arch's SPA."""
    t = d.shape[0]
    c = d - d.mean(axis=0)
    n = 1 << (2 * t - 1).bit_length()
    f = np.fft.rfft(c, n=n, axis=0)
    acov = np.fft.irfft(f * np.conj(f), n=n, axis=0)[:t] / t  # (t, k): sum_s c_s c_{s+i} / T
    p = 1.0 / block
    i = np.arange(1, t)
    kappa = (1.0 - i / t) * (1.0 - p) ** i + (i / t) * (1.0 - p) ** (t - i)
    var = acov[0] + 2.0 * (kappa[:, None] * acov[1:]).sum(axis=0)
    return np.sqrt(np.maximum(var, 0.0))


def spa_test(
    candidates,
    benchmark,
    periods_per_year,
    *,
    block_length: int | None = None,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> SPAResult:
    """Hansen's (2005) test of superior predictive ability: does any candidate's Sharpe ratio beat the benchmark's?

    Parameters
    ----------
    candidates : array (n_bars, k)
        Per-period returns of ``k >= 1`` candidates (e.g. the hall of fame), finite, none constant.
    benchmark : array (n_bars,)
        Per-period returns of the benchmark (e.g. 1/N) over the same bars.
    periods_per_year : float
        Bars per year, > 0.
    block_length : int or None
        Mean block length of the stationary bootstrap, 1 <= b <= n_bars // 2; None (default) takes
        :func:`optimal_block` (``"stationary"``) of the loss differentials.
    reps : int
        Bootstrap replications >= 99.
    seed : int
        Seed of the bootstrap's generator, >= 0.

    Returns
    -------
    SPAResult
        ``method="hansen_spa"``; ``p_value`` is Hansen's consistent p-value of ``H0: max_i SR_i <= SR_benchmark``
        (small: at least one candidate beats the benchmark); ``best`` and ``difference`` describe the candidate with
        the highest Sharpe ratio.
    """
    from arch.bootstrap import SPA

    x = _series(candidates, "candidates", MIN_OBS, matrix=True)
    t = x.shape[0]
    b = _series(benchmark, "benchmark", MIN_OBS, n_obs=t)
    ppy = _ppy(periods_per_year)
    reps = _count(reps, "reps", 99)
    seed = _count(seed, "seed", 0)
    diff = sharpe_losses(b[:, None]) - sharpe_losses(x)  # (T, k): mean_t = SR_i - SR_b
    if block_length is None:
        block = min(optimal_block(diff, "stationary"), t // 2)
    else:
        block = _block(block_length, t)
    sd = _stationary_long_run_sd(diff, block)
    scaled = diff / np.where(sd > 0, sd, 1.0)
    spa = SPA(np.zeros(t), -scaled, block_size=block, reps=reps, bootstrap="stationary", seed=seed)
    spa.compute()
    pv = spa.pvalues
    sharpes = x.mean(axis=0) / x.std(axis=0, ddof=1)
    best = int(np.argmax(sharpes))
    sb = _sharpe(b)
    d = float(sharpes[best] - sb)
    return SPAResult(
        method="hansen_spa",
        best=best,
        n_candidates=int(x.shape[1]),
        sharpe=float(sharpes[best]),
        benchmark_sharpe=sb,
        difference=d,
        difference_annualized=d * math.sqrt(ppy),
        p_value=float(pv["consistent"]),
        p_value_lower=float(pv["lower"]),
        p_value_upper=float(pv["upper"]),
        block_length=int(block),
        reps=reps,
        n_obs=t,
        periods_per_year=ppy,
    )


# ---------------------------------------------------------------------------------------------------
# the walk-forward's summary


def sharpe_significance(
    returns,
    benchmarks: dict,
    periods_per_year,
    *,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> dict:
    """Every pairwise test of a strategy against each benchmark, as the JSON block ``walkforward.json`` keeps.

    Parameters
    ----------
    returns : array (n_bars,)
        The strategy's per-period out-of-sample returns.
    benchmarks : dict
        ``{name: array (n_bars,)}``, e.g. ``{"equal_weight": ..., "best_classical": ...}``.
    periods_per_year : float
        Bars per year, > 0.
    reps, seed :
        As :func:`ledoit_wolf_bootstrap` (one seed for all benchmarks).

    Returns
    -------
    dict
        ``{name: {"sharpe_difference", "sharpe_difference_annualized", "p_value", "method", "block_length",
        "tests": {method: SharpeTest.as_dict()}}}``: the headline is the studentized block bootstrap; the tests
        are Memmel's, the prewhitened HAC and the bootstrap.
    """
    if not isinstance(benchmarks, dict) or not benchmarks:
        raise ConfigError(f"benchmarks must be a non-empty dict of name -> returns, got {type(benchmarks).__name__}")
    out = {}
    for name, bench in benchmarks.items():
        tests = [
            memmel_test(returns, bench, periods_per_year),
            ledoit_wolf_hac(returns, bench, periods_per_year),
            ledoit_wolf_bootstrap(returns, bench, periods_per_year, reps=reps, seed=seed),
        ]
        head = tests[-1]
        out[str(name)] = {
            "sharpe_difference": head.difference,
            "sharpe_difference_annualized": head.difference_annualized,
            "p_value": head.p_value,
            "method": head.method,
            "block_length": head.block_length,
            "tests": {t.method: t.as_dict() for t in tests},
        }
    return out

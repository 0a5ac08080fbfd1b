"""Statistics that tell a skilful strategy from a lucky or overfit one: PSR, DSR and PBO.

Every Sharpe ratio here is per period (per bar), not annualized: ``SR = mean(r) / std(r, ddof=1)``.
Skewness ``γ3`` and kurtosis ``γ4`` are the biased sample moments, ``scipy.stats.skew(r)`` and the raw
(non-excess, 3 for a normal) ``scipy.stats.kurtosis(r, fisher=False)``; ``T`` is the number of returns.

How to read each statistic (one sentence each, for reports):

- **Sharpe ratio (per period)**: the mean return of one bar divided by the standard deviation of the
  bar returns; multiply by the square root of the bars per year to annualize it.
- **Probabilistic Sharpe ratio (PSR)**: the probability that the true Sharpe ratio exceeds a benchmark,
  given how long the track record is and how skewed and fat-tailed its returns are; 0.95 or more means
  the benchmark is beaten with 95% confidence.
- **Expected maximum Sharpe ratio**: the Sharpe ratio that the best of ``N`` trials without any skill
  would show by luck alone, given how widely the trials' Sharpe ratios are spread.
- **Deflated Sharpe ratio (DSR)**: the PSR against that expected maximum, i.e. the probability that the
  selected strategy's Sharpe ratio is not just the luckiest of all the trials run; below 0.95 the
  champion cannot be told apart from the best of that many random strategies.
- **Probability of backtest overfitting (PBO)**: the share of in-sample / out-of-sample splits in which
  the candidate that was best in sample ranks in the bottom half out of sample; near 0 selection
  generalises, near 0.5 or above it is no better than picking at random.

Formulas
--------
``probabilistic_sharpe(r, SR*) = Φ((SR − SR*)·√(T−1) / √(1 − γ3·SR + (γ4−1)/4·SR²))``
(Bailey and López de Prado 2012, "The Sharpe Ratio Efficient Frontier").

``expected_max_sharpe(N, V) = √V·((1−γ)·Φ⁻¹(1−1/N) + γ·Φ⁻¹(1−1/(N·e)))``, ``γ`` the Euler-Mascheroni
constant; defined as 0 for ``N = 1`` (the expectation of one zero-mean draw, no selection).

``deflated_sharpe(r, trial_sharpes) = probabilistic_sharpe(r, expected_max_sharpe(N, V))`` with ``N``
the number of trials and ``V`` the variance (ddof=1) of their per-period Sharpe ratios (Bailey and
López de Prado 2014, "The Deflated Sharpe Ratio"). vectorbt's ``returns.deflated_sharpe_ratio`` passes
excess kurtosis where the formula wants raw kurtosis; it is not a reference for these numbers.

``pbo(R, S)`` is combinatorially symmetric cross-validation (Bailey, Borwein, López de Prado and Zhu
2017, "The Probability of Backtest Overfitting") on a ``(T, N)`` matrix of ``N`` candidates' returns:
the first ``T mod S`` rows are dropped and the rest cut into ``S`` contiguous blocks; for each of the
``C(S, S/2)`` choices of ``S/2`` in-sample blocks (kept in time order, the other blocks out of sample),
the candidate with the best in-sample Sharpe (lowest index on ties) is ranked among all ``N`` by
out-of-sample Sharpe (``scipy.stats.rankdata``, average ties, 1 = worst), ``ω = rank / (N+1)`` and
``λ = ln(ω / (1−ω))``; PBO is the share of splits with ``λ <= 0``.

Degenerate inputs
-----------------
- A *flat* sample (all returns equal, or a standard deviation at or below ``16·eps·|mean|``, i.e.
  differences at the level of float rounding) has Sharpe ratio 0 by convention, like the fitness
  metrics; its skewness and kurtosis are taken as 0 and 3 (they do not matter: with ``SR = 0`` the PSR
  denominator is 1). So a flat track record has ``PSR(SR*) = Φ(−SR*·√(T−1))``, 0.5 against 0.
- The PSR denominator equals ``(1 − γ3·SR/2)² + (γ4 − 1 − γ3²)·SR²/4`` and sample moments always satisfy
  ``γ4 >= 1 + γ3²`` (Pearson's inequality), so it is never negative for real data; it is 0 only for
  returns taking exactly two values with ``γ3·SR = 2``. Where it is <= 0 (that case, or rounding) the
  estimated variance of the Sharpe ratio is 0 and the PSR takes its limit: 1 if ``SR > SR*``, 0 if
  ``SR < SR*``, 0.5 if equal; never NaN. :func:`probabilistic_sharpe_from_moments` rejects moments that
  break Pearson's inequality.
- Bad input raises :class:`~genetic_sizer.errors.ConfigError` naming the argument and the value:
  non-finite returns, too few returns (``T >= 2`` for a Sharpe ratio, ``T >= 3`` for the PSR),
  fewer than 2 trial Sharpe ratios, ``n_trials < 1``, a negative variance, and for PBO an odd or too
  small or too large ``n_blocks``, fewer rows than blocks, or fewer than 2 candidates.

Everything is deterministic: no randomness, and PBO sums each candidate's numbers in the same order
whatever the other candidates hold (no BLAS reductions), so identical candidates tie exactly.
"""

from __future__ import annotations

import itertools
import math
import operator

import numpy as np
from scipy.special import ndtr, ndtri

from genetic_sizer.errors import ConfigError

__all__ = [
    "MAX_PBO_BLOCKS",
    "deflated_sharpe",
    "deflated_sharpe_of",
    "expected_max_sharpe",
    "pbo",
    "pbo_logits",
    "probabilistic_sharpe",
    "probabilistic_sharpe_from_moments",
    "returns_of",
    "sharpe_per_period",
    "trial_stats",
]

FLAT_RTOL = 16 * np.finfo(np.float64).eps
"""A sample whose standard deviation is at most ``FLAT_RTOL * |mean|`` counts as flat (Sharpe 0)."""

MAX_PBO_BLOCKS = 20
"""Largest ``n_blocks`` :func:`pbo` accepts: C(20, 10) = 184,756 splits (C(16, 8) = 12,870)."""

_PBO_CHUNK_ELEMENTS = 2_000_000  # gathered block statistics per chunk: about 16 MB of float64
_PEARSON_RTOL = 1e-9


# ---------------------------------------------------------------------------------------------------
# validation


def _as_returns(returns, name: str, *, min_rows: int, allow_2d: bool = True, what: str = "returns") -> np.ndarray:
    """``returns`` as a float64 array of 1 (or 2) dimensions with at least ``min_rows`` finite rows."""
    try:
        arr = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be an array of numbers, got {type(returns).__name__}: {exc}") from None
    dims = (1, 2) if allow_2d else (1,)
    if arr.ndim not in dims:
        shape = "1-D (T,) or 2-D (T, N)" if allow_2d else "1-D (T,)"
        raise ConfigError(f"{name} must be {shape}, got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ConfigError(f"{name} needs at least {min_rows} {what}, got {arr.shape[0]}")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise ConfigError(f"{name} has no columns (shape {arr.shape})")
    _check_finite(arr, name)
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        at = where[0] if len(where) == 1 else where
        raise ConfigError(f"{name} must be finite, got {float(arr[where])!r} at index {at}")


def _finite_float(value, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return out


def _count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool | np.bool_):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if out < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {out}")
    return out


# ---------------------------------------------------------------------------------------------------
# moments


def _moments(x: np.ndarray, higher: bool = True):
    """Column-wise ``(sharpe, skew, kurtosis)`` of a (T, N) array, with the flat-sample conventions; ``higher=False``
    leaves out skew and kurtosis (None), the costly part on a wide matrix (the Sharpe ratios are the same bits)."""
    t = x.shape[0]
    mean = x.mean(axis=0)
    d = x - mean
    m2 = np.mean(d * d, axis=0)  # population variance
    flat = (np.ptp(x, axis=0) == 0) | (m2 <= (FLAT_RTOL * mean) ** 2)
    sigma = np.sqrt(np.where(flat, 1.0, m2))  # > 0 where not flat
    sharpe = np.where(flat, 0.0, mean / (sigma * math.sqrt(t / (t - 1))))
    if not higher:
        return sharpe, None, None
    z = d / sigma
    skew = np.where(flat, 0.0, np.mean(z**3, axis=0))
    kurt = np.where(flat, 3.0, np.mean(z**4, axis=0))
    return sharpe, skew, kurt


def _scalar_or_array(values: np.ndarray, was_1d: bool):
    return float(values[0]) if was_1d else values


def sharpe_per_period(returns):
    """Per-period Sharpe ratio ``mean(r) / std(r, ddof=1)``, column-wise for a matrix.

    Parameters
    ----------
    returns : array (T,) or (T, N)
        Finite per-period returns, ``T >= 2``.

    Returns
    -------
    float for a 1-D input, float64 array (N,) for a matrix.
        0.0 for a flat sample (all returns equal, or a standard deviation at most
        ``FLAT_RTOL * |mean|``); never NaN or infinite and no division warnings.

    Raises
    ------
    ConfigError
        Fewer than 2 returns, no columns, a shape other than 1-D or 2-D, or a non-finite value.
    """
    arr = _as_returns(returns, "returns", min_rows=2)
    x = arr[:, None] if arr.ndim == 1 else arr
    return _scalar_or_array(_moments(x, higher=False)[0], arr.ndim == 1)


# ---------------------------------------------------------------------------------------------------
# PSR, expected maximum, DSR


def _psr(sharpe, n_obs, skew, kurt, benchmark):
    """The PSR formula over broadcast arrays, with the limit where the variance estimate is <= 0."""
    diff = sharpe - benchmark
    denom = 1.0 - skew * sharpe + (kurt - 1.0) / 4.0 * sharpe * sharpe
    ok = denom > 0
    z = diff * np.sqrt(n_obs - 1.0) / np.sqrt(np.where(ok, denom, 1.0))
    limit = np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
    return np.where(ok, ndtr(z), limit)


def probabilistic_sharpe_from_moments(sharpe, n_obs, skew, kurtosis, benchmark=0.0):
    """The probabilistic Sharpe ratio from a per-period Sharpe ratio and the moments of its returns.

    ``Φ((SR − SR*)·√(T−1) / √(1 − γ3·SR + (γ4−1)/4·SR²))``; where the square root's argument is <= 0
    (only when ``γ4 = 1 + γ3²`` and ``γ3·SR = 2``, or by rounding) the result is the limit: 1 if
    ``SR > SR*``, 0 if ``SR < SR*``, 0.5 if equal. Arguments broadcast like numpy arrays.

    Parameters
    ----------
    sharpe : float or array
        Per-period Sharpe ratio(s) ``SR``.
    n_obs : int or array
        Number of returns ``T`` behind each Sharpe ratio, >= 2.
    skew : float or array
        Skewness ``γ3`` (biased, ``scipy.stats.skew``).
    kurtosis : float or array
        Raw kurtosis ``γ4`` (3 for a normal), must satisfy Pearson's inequality ``γ4 >= 1 + γ3²``.
    benchmark : float or array
        Per-period benchmark Sharpe ratio ``SR*``.

    Returns
    -------
    float when every argument is a scalar, else a float64 array; in [0, 1].

    Raises
    ------
    ConfigError
        A non-finite argument, ``n_obs < 2``, or a kurtosis below ``1 + skew²``.
    """
    arrays = {}
    for name, value in (
        ("sharpe", sharpe),
        ("n_obs", n_obs),
        ("skew", skew),
        ("kurtosis", kurtosis),
        ("benchmark", benchmark),
    ):
        try:
            arrays[name] = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number or an array of numbers, got {value!r}") from None
        _check_finite(arrays[name], name)
    n = arrays["n_obs"]
    if (n < 2).any():
        raise ConfigError(f"n_obs must be >= 2, got {float(n[n < 2].flat[0]):g}")
    g3, g4 = np.broadcast_arrays(arrays["skew"], arrays["kurtosis"])
    bound = 1.0 + g3 * g3
    broken = g4 < bound - _PEARSON_RTOL * bound
    if broken.any():
        i = np.argwhere(broken)[0]
        raise ConfigError(
            f"kurtosis must be raw kurtosis >= 1 + skew**2 (Pearson's inequality), got kurtosis "
            f"{float(g4[tuple(i)])!r} with skew {float(g3[tuple(i)])!r}; pass kurtosis(fisher=False), "
            "not excess kurtosis"
        )
    out = _psr(arrays["sharpe"], n, arrays["skew"], arrays["kurtosis"], arrays["benchmark"])
    return float(out) if out.ndim == 0 else out


def probabilistic_sharpe(returns, benchmark=0.0):
    """Probabilistic Sharpe ratio: the probability that the true per-period Sharpe exceeds ``benchmark``.

    ``Φ((SR − SR*)·√(T−1) / √(1 − γ3·SR + (γ4−1)/4·SR²))`` with ``SR`` from :func:`sharpe_per_period`,
    ``γ3 = scipy.stats.skew(r)``, ``γ4 = scipy.stats.kurtosis(r, fisher=False)`` and ``T = len(r)``
    (Bailey and López de Prado 2012). A flat sample has ``SR = 0`` and the denominator 1; a
    denominator <= 0 gives the limit 1, 0 or 0.5 (see the module notes).

    Parameters
    ----------
    returns : array (T,) or (T, N)
        Finite per-period returns, ``T >= 3``; a matrix is handled column by column.
    benchmark : float
        Per-period benchmark Sharpe ratio ``SR*`` (not annualized).

    Returns
    -------
    float for a 1-D input, float64 array (N,) for a matrix; in [0, 1].

    Raises
    ------
    ConfigError
        Fewer than 3 returns, a non-finite return or benchmark, or a bad shape.
    """
    arr = _as_returns(returns, "returns", min_rows=3)
    bench = _finite_float(benchmark, "benchmark")
    x = arr[:, None] if arr.ndim == 1 else arr
    sharpe, skew, kurt = _moments(x)
    return _scalar_or_array(_psr(sharpe, float(x.shape[0]), skew, kurt, bench), arr.ndim == 1)


def expected_max_sharpe(n_trials, variance) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` independent trials without skill.

    ``√V·((1−γ)·Φ⁻¹(1−1/N) + γ·Φ⁻¹(1−1/(N·e)))`` with ``γ`` the Euler-Mascheroni constant (Bailey and
    López de Prado 2014). For ``N = 1`` the formula diverges to −∞; the value is defined as 0.0, the
    expectation of a single zero-mean Sharpe ratio (nothing was selected).

    Parameters
    ----------
    n_trials : int
        Number of trials ``N`` (genomes, parameter sets...) the selected one was chosen from, >= 1.
    variance : float
        Variance ``V`` (ddof=1) of the trials' per-period Sharpe ratios, >= 0.

    Returns
    -------
    float
        In the units of ``√V``: per-period when ``V`` is the variance of per-period Sharpe ratios.

    Raises
    ------
    ConfigError
        ``n_trials`` not an integer or < 1; ``variance`` negative or not finite.
    """
    n = _count(n_trials, "n_trials", 1)
    v = _finite_float(variance, "variance")
    if v < 0:
        raise ConfigError(f"variance must be >= 0, got {variance!r}")
    if n == 1:
        return 0.0
    # Φ⁻¹(1 − p) = −Φ⁻¹(p), accurate for any N (1 − 1/N would round for huge N)
    z = (1.0 - np.euler_gamma) * -ndtri(1.0 / n) + np.euler_gamma * -ndtri(1.0 / (n * math.e))
    return float(math.sqrt(v) * z)


def trial_stats(sharpes) -> dict:
    """Number and variance of the trials' Sharpe ratios, the inputs of :func:`expected_max_sharpe`.

    Parameters
    ----------
    sharpes : array (N,)
        Per-period Sharpe ratio of every trial, ``N >= 2``, finite.

    Returns
    -------
    dict
        ``{"n": N, "sharpe_variance": var(sharpes, ddof=1)}`` (an int and a float).

    Raises
    ------
    ConfigError
        Fewer than 2 trials, a non-finite value, or a shape other than 1-D.
    """
    arr = _as_returns(sharpes, "trial_sharpes", min_rows=2, allow_2d=False, what="trials")
    return {"n": int(arr.shape[0]), "sharpe_variance": float(np.var(arr, ddof=1))}


def deflated_sharpe(returns, trial_sharpes):
    """Deflated Sharpe ratio: the PSR against the Sharpe ratio the best of the trials would show by luck.

    ``probabilistic_sharpe(returns, expected_max_sharpe(N, V))`` with ``N`` the number of trials and
    ``V`` the variance (ddof=1) of their per-period Sharpe ratios (Bailey and López de Prado 2014).
    Callers that keep only running counts can compute the same thing as
    ``probabilistic_sharpe(returns, expected_max_sharpe(n, variance))``.

    Parameters
    ----------
    returns : array (T,) or (T, N)
        Per-period returns of the selected strategy (or of several, column by column), ``T >= 3``.
    trial_sharpes : array (N,)
        Per-period Sharpe ratios of every trial the selection was made from (including the selected
        one), at least 2.

    Returns
    -------
    float for a 1-D ``returns``, float64 array for a matrix; in [0, 1].

    Raises
    ------
    ConfigError
        As :func:`probabilistic_sharpe` and :func:`trial_stats`.
    """
    stats = trial_stats(trial_sharpes)
    return probabilistic_sharpe(returns, expected_max_sharpe(stats["n"], stats["sharpe_variance"]))


# ---------------------------------------------------------------------------------------------------
# PBO


def _pbo_setup(returns, n_blocks):
    if isinstance(n_blocks, bool | np.bool_):
        raise ConfigError(f"n_blocks must be an even integer >= 2, got {n_blocks!r}")
    try:
        s = operator.index(n_blocks)
    except TypeError:
        raise ConfigError(f"n_blocks must be an even integer >= 2, got {n_blocks!r}") from None
    if s < 2 or s % 2:
        raise ConfigError(f"n_blocks must be an even integer >= 2, got {s}")
    if s > MAX_PBO_BLOCKS:
        raise ConfigError(
            f"n_blocks must be <= {MAX_PBO_BLOCKS} (C(n_blocks, n_blocks/2) splits are evaluated), got {s}"
        )
    try:
        x = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"returns must be a (T, N) array of numbers: {exc}") from None
    if x.ndim != 2:
        raise ConfigError(f"returns must be a (T, N) matrix of N candidates' returns, got shape {x.shape}")
    t, n = x.shape
    if n < 2:
        raise ConfigError(f"returns must hold at least 2 candidates (columns), got {n}")
    if t < s:
        raise ConfigError(f"returns must have at least n_blocks={s} rows, got {t}")
    b = t // s
    if b * (s // 2) < 2:
        raise ConfigError(
            f"returns has {t} rows: each half of n_blocks={s} blocks would hold {b * (s // 2)} return, "
            "and a Sharpe ratio needs at least 2"
        )
    _check_finite(x, "returns")
    return x[t - s * b :], s, b


class _BlockStats:
    """Per-block statistics of the candidates, combined into any union of ``k`` blocks' Sharpe ratios."""

    def __init__(self, x: np.ndarray, s: int, b: int):
        n = x.shape[1]
        blocks = x.reshape(s, b, n)
        const = blocks.max(axis=1) == blocks.min(axis=1)  # (S, N) exactly constant blocks
        mean = np.where(const, blocks[:, 0, :], blocks.mean(axis=1))
        d = blocks - mean[:, None, :]
        m2 = np.where(const, 0.0, np.sum(d * d, axis=1))
        self.b = b
        self.center = mean.mean(axis=0)  # shifts the block means towards 0 to keep the sums accurate
        self.a = np.ascontiguousarray(mean - self.center)  # (S, N)
        self.q = np.ascontiguousarray(b * self.a * self.a + m2)  # (S, N)
        # exact flatness of a union of blocks: every block constant with the same value. Only columns
        # with a constant block can be flat; each constant block gets the index of its value among the
        # column's distinct values, other blocks -1.
        self.flat_cols = np.flatnonzero(const.any(axis=0))
        keys = np.full((s, self.flat_cols.size), -1, dtype=np.int64)
        for i, j in enumerate(self.flat_cols):
            _, inverse = np.unique(blocks[:, 0, j], return_inverse=True)
            keys[:, i] = np.where(const[:, j], inverse, -1)
        self.keys = keys

    def sharpe(self, combos: np.ndarray) -> np.ndarray:
        """Per-period Sharpe ratio of every candidate on each union of blocks: (R, k) -> (R, N)."""
        k = combos.shape[1]
        n_obs = k * self.b
        a_sum = self.a[combos].sum(axis=1)  # adds the k blocks in order: identical columns stay identical
        q_sum = self.q[combos].sum(axis=1)
        mean = a_sum / k + self.center
        m2 = q_sum - self.b * a_sum * a_sum / k  # sum of squared deviations (Chan et al.)
        flat = m2 <= n_obs * (FLAT_RTOL * mean) ** 2
        if self.flat_cols.size:
            keys = self.keys[combos]  # (R, k, n_flat_cols)
            lo, hi = keys.min(axis=1), keys.max(axis=1)
            flat[:, self.flat_cols] |= (lo == hi) & (lo >= 0)
        std = np.sqrt(np.where(flat, 1.0, m2) / (n_obs - 1))
        return np.where(flat, 0.0, mean / std)


def _logits(is_sharpe: np.ndarray, oos_sharpe: np.ndarray) -> np.ndarray:
    """λ of each split: logit of the out-of-sample relative rank of the in-sample winner."""
    rows = np.arange(is_sharpe.shape[0])
    n = is_sharpe.shape[1]
    best = np.argmax(is_sharpe, axis=1)  # first maximum: lowest index on ties
    x = oos_sharpe[rows, best][:, None]
    below = np.count_nonzero(oos_sharpe < x, axis=1)
    equal = np.count_nonzero(oos_sharpe == x, axis=1)
    rank = below + (equal + 1) / 2.0  # scipy.stats.rankdata(method="average"), 1 = worst
    return np.log(rank / (n + 1 - rank))  # ln(ω / (1 − ω)), ω = rank / (N + 1)


def pbo_logits(returns, n_blocks: int = 16) -> np.ndarray:
    """The logit ``λ`` of every split of the combinatorially symmetric cross-validation behind :func:`pbo`.

    Parameters
    ----------
    returns, n_blocks :
        As for :func:`pbo`.

    Returns
    -------
    float64 array (C(n_blocks, n_blocks/2),)
        ``λ`` per split, in the order of ``itertools.combinations(range(n_blocks), n_blocks // 2)``
        (the in-sample blocks of each split); ``λ <= 0`` means the in-sample winner ranked in the bottom
        half out of sample. Finite: ``ω`` lies in ``[1/(N+1), N/(N+1)]``.

    Raises
    ------
    ConfigError
        As :func:`pbo`.
    """
    x, s, b = _pbo_setup(returns, n_blocks)
    k = s // 2
    n_splits = math.comb(s, k)
    half = n_splits // 2  # C(2k, k) is even
    stats = _BlockStats(x, s, b)
    out = np.empty(n_splits)
    # In lexicographic order the complement of the i-th k-subset of 2k blocks is the (C-1-i)-th, so
    # the Sharpe ratios of the first half's subsets and their complements cover every split twice over:
    # split i has in-sample = subset i and out-of-sample = its complement, split C-1-i the reverse.
    rows_per_chunk = max(1, _PBO_CHUNK_ELEMENTS // (k * x.shape[1]))
    combos_iter = itertools.combinations(range(s), k)
    start = 0
    while start < half:
        stop = min(half, start + rows_per_chunk)
        combos = np.array(list(itertools.islice(combos_iter, stop - start)), dtype=np.intp)
        in_set = np.zeros((combos.shape[0], s), dtype=bool)
        in_set[np.arange(combos.shape[0])[:, None], combos] = True
        complements = np.nonzero(~in_set)[1].reshape(combos.shape[0], k)  # sorted: time order
        sr_subset = stats.sharpe(combos)
        sr_complement = stats.sharpe(complements)
        out[start:stop] = _logits(sr_subset, sr_complement)
        out[n_splits - stop : n_splits - start] = _logits(sr_complement, sr_subset)[::-1]
        start = stop
    return out


def pbo(returns, n_blocks: int = 16) -> float:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    Bailey, Borwein, López de Prado and Zhu (2017): drop the first ``T mod S`` rows, cut ``S``
    contiguous blocks; for every choice of ``S/2`` in-sample blocks (in time order; the rest out of
    sample) pick the candidate with the best in-sample per-period Sharpe ratio (lowest index on ties),
    rank its out-of-sample Sharpe ratio among all ``N`` candidates (average ties, 1 = worst),
    ``ω = rank / (N+1)``, ``λ = ln(ω / (1−ω))``; PBO is the share of splits with ``λ <= 0``. Flat
    samples have Sharpe 0 (see the module notes). The C(16, 8) = 12,870 splits of 1,000 candidates
    take about a second; memory stays bounded by processing the splits in chunks.

    Parameters
    ----------
    returns : array (T, N)
        Per-period returns of ``N >= 2`` candidates over the same ``T >= n_blocks`` bars; finite.
    n_blocks : int
        Number of blocks ``S``: even, 2 <= S <= :data:`MAX_PBO_BLOCKS`, and each half of the blocks
        must hold at least 2 returns.

    Returns
    -------
    float
        PBO in [0, 1]: near 0 the in-sample choice holds up out of sample; 0.5 or more, it is no better
        than a random pick.

    Raises
    ------
    ConfigError
        A bad ``n_blocks``, a ``returns`` that is not a (T, N) matrix of finite numbers, fewer than 2
        candidates, or fewer rows than blocks.
    """
    logits = pbo_logits(returns, n_blocks)
    return float(np.count_nonzero(logits <= 0) / logits.size)


# ---- value paths -------------------------------------------------------------------------------------
def returns_of(values: np.ndarray, init_cash: float, risk_free=0.0) -> np.ndarray:
    """Per-bar simple returns of value paths (n_bars,) or (n_bars, k), the first from ``init_cash`` (the
    fitness metrics' convention), in excess of ``risk_free``: the per-bar rate, one (a number or (1,)) or one per bar
    (n_bars,), as the Sharpe ratio of :func:`genetic_sizer.backtest.metrics.compute_metrics` takes it."""
    v = np.asarray(values, dtype=np.float64)
    prev = np.concatenate([np.full((1, *v.shape[1:]), init_cash), v[:-1]])
    rf = np.asarray(risk_free, dtype=np.float64).reshape(-1, *(1,) * (v.ndim - 1))
    return v / prev - 1.0 - rf


def deflated_sharpe_of(values: np.ndarray, init_cash: float, trials: dict, risk_free=0.0) -> float | None:
    """Deflated Sharpe ratio of one value path given the trials that selected it (``{"n", "sharpe_variance"}``),
    of its returns in excess of ``risk_free`` (see :func:`returns_of`), as the trials' Sharpe ratios are; None when it
    cannot be computed (fewer than 2 trials or 3 returns)."""
    n, var = trials.get("n", 0), trials.get("sharpe_variance", math.nan)
    r = returns_of(values, init_cash, risk_free)
    if n < 2 or not math.isfinite(var) or len(r) < 3:
        return None
    return float(probabilistic_sharpe(r, expected_max_sharpe(n, var)))

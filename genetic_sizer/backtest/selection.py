"""Selection statistics that test the right null: is the champion better than 1/N, beyond what the search explains?

A genetic search breeds thousands of near-identical portfolios on one window, so the deflated Sharpe ratio and PBO
of :mod:`genetic_sizer.backtest.stats` must be asked the right question:

- **Deflated Sharpe of the champion's excess over the benchmark** (:func:`excess_deflated_sharpe`). On a long-only
  run every portfolio earns the equity premium, so the Sharpe ratio of raw returns against zero-skill trials
  measures the premium; the excess series ``champion − benchmark`` (1/N) asks whether the search found more than
  1/N. Its probabilistic Sharpe ratio is taken against the expected maximum of two counts of trials:

  * **raw**: ``N`` = every distinct trial evaluated, with the variance of a Sharpe ratio estimate under the null of
    no skill, ``V₀ = 1/(T − 1)`` (the PSR's own variance at ``SR = 0``; Lo 2002, Mertens 2002). The variance of the
    trials' observed Sharpe ratios (what the original DSR uses) is not the null's: breeding selects high in-sample
    Sharpe ratios and a real edge spreads them, so it over-deflates and cannot find a planted edge
    (tests/test_selection.py shows it); ``sharpe_variance_observed`` reports it beside.
  * **effective**: ``K`` = the clusters of the trials' excess return series, with the variance of the clusters'
    Sharpe ratios (each cluster's members combined with inverse-variance weights), as in López de Prado's "Machine
    Learning for Asset Managers" (2020), ch. 8. Bred trials collapse into one or two clusters, so ``K`` is small
    and this reading is lenient: on 60 pure-noise markets searched by a GA-like breeder (1,000 bars, 10 assets,
    1,850 trials) it read 0.95 or more in 27 (median 0.92), where the raw reading never passed 0.63. It is
    reported beside the raw count, not trusted alone.

  The verdict is "skill" only when both deflated Sharpe ratios reach :data:`DSR_THRESHOLD` (0.95).

- **PBO over cluster representatives** (:func:`representative_pbo`): combinatorially symmetric cross-validation
  (:func:`genetic_sizer.backtest.stats.pbo`) over the medoid of each cluster, so that hundreds of near-duplicates do
  not turn the out-of-sample rank into noise. CSCV assumes the candidates were fixed before the window it splits:
  a candidate bred on that window looks good in every split, so on pure noise PBO over the bred trials'
  representatives reads near 0 (false skill; tests/test_selection.py shows it). Pass the returns of a window the
  candidates were **not** bred on (the walk-forward's test window, or an inner validation split). "No skill" reads
  PBO >= :data:`PBO_NO_SKILL` (0.5: the in-sample winner lands in the bottom half out of sample at least half the
  time); "skill" needs PBO <= :data:`PBO_SKILL` (0.05); between, "inconclusive". PBO is an estimate, not a
  p-value, and its spread under the null is wide: over those 60 pure-noise markets (held-out window of 1,000 bars)
  it was <= 0.05 in 3 of them, <= 0.2 in 11, with a median of 0.49; with a planted edge of 0.15σ per bar on one
  asset, <= 0.05 in 25 of 30.

Clustering (:func:`cluster_trials`, named by :data:`CLUSTERING`): hierarchical clustering with Ward's linkage on
the correlation distance ``d_ij = √((1 − ρ_ij)/2)`` (a Euclidean distance: half the distance between the
standardized series), cut into the ``k`` clusters (2 <= k <= ``max_clusters``) with the highest mean silhouette
(Rousseeuw 1987; ties go to the smaller ``k``). Constant series correlate 0 with the others and 1 with each other.
Trials beyond :data:`MAX_TRIALS` are sampled uniformly without replacement (seeded) first.

Everything is deterministic given ``seed``; bad input raises :class:`~genetic_sizer.errors.ConfigError` naming the
argument. All Sharpe ratios are per period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from genetic_sizer.backtest import stats
from genetic_sizer.backtest.stats import _check_finite, _count
from genetic_sizer.errors import ConfigError

__all__ = [
    "CLUSTERING",
    "DSR_THRESHOLD",
    "MAX_TRIALS",
    "PBO_NO_SKILL",
    "PBO_SKILL",
    "TrialClusters",
    "cluster_sharpes",
    "cluster_trials",
    "correlation_distance",
    "excess_deflated_sharpe",
    "representative_pbo",
    "sample_columns",
]

CLUSTERING = "hierarchical clustering (Ward linkage) on the correlation distance sqrt((1 - rho) / 2), k by silhouette"
"""The clustering algorithm, as named in the outputs."""

MAX_TRIALS = 2000
"""Most trials' return series clustered; more are sampled uniformly."""

DEFAULT_MAX_CLUSTERS = 100
"""Largest number of clusters the silhouette search tries."""

DSR_THRESHOLD = 0.95
"""A deflated Sharpe ratio at or above this reads "skill"."""

PBO_NO_SKILL = 0.5
"""PBO at or above this reads "no skill" (selection no better than a random pick)."""

PBO_SKILL = 0.05
"""PBO at or below this reads "skill" (the counterpart of the deflated Sharpe's 0.95); between the two thresholds
the reading is "inconclusive"."""


@dataclass(frozen=True)
class TrialClusters:
    """Clusters of trials' return series.

    Attributes
    ----------
    labels : int array (n,)
        Cluster of each clustered column, numbered 0..K-1 in order of first appearance.
    medoids : int array (K,)
        Per cluster, the clustered column with the smallest total distance to its cluster's members (lowest on ties).
    columns : int array (n,)
        The input's column behind each clustered column (all of them, or the uniform sample).
    n_clusters : int
    silhouette : float
        Mean silhouette of the partition (NaN with fewer than 3 columns: each is its own cluster).
    algorithm : str
        :data:`CLUSTERING`.
    """

    labels: np.ndarray
    medoids: np.ndarray
    columns: np.ndarray
    n_clusters: int
    silhouette: float
    algorithm: str = CLUSTERING


# ---------------------------------------------------------------------------------------------------
# validation


def _matrix(x, name: str, min_rows: int = 3, min_cols: int = 1) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be an array of numbers: {exc}") from None
    if arr.ndim != 2:
        raise ConfigError(f"{name} must be 2-D (n_bars, n_trials), got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ConfigError(f"{name} needs at least {min_rows} returns (rows), got {arr.shape[0]}")
    if arr.shape[1] < min_cols:
        raise ConfigError(f"{name} needs at least {min_cols} columns, got {arr.shape[1]}")
    _check_finite(arr, name)
    return arr


def _vector(x, name: str, n_obs: int) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be an array of numbers: {exc}") from None
    if arr.ndim != 1 or arr.shape[0] != n_obs:
        raise ConfigError(f"{name} must be 1-D with {n_obs} returns (one per row of trials), got shape {arr.shape}")
    _check_finite(arr, name)
    return arr


# ---------------------------------------------------------------------------------------------------
# clustering


def sample_columns(n_columns: int, max_trials: int = MAX_TRIALS, seed: int = 0) -> np.ndarray:
    """Sorted column indices: all ``n_columns`` if at most ``max_trials``, else a uniform sample of ``max_trials``
    without replacement drawn by ``numpy.random.default_rng(seed)``."""
    n = _count(n_columns, "n_columns", 0)
    m = _count(max_trials, "max_trials", 2)
    seed = _count(seed, "seed", 0)
    if n <= m:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))


def correlation_distance(returns) -> np.ndarray:
    """The (n, n) correlation distance ``√((1 − ρ)/2)`` between the columns of ``returns`` (n_bars, n), in [0, 1],
    0 on the diagonal; constant columns correlate 0 with the others and 1 with each other."""
    x = _matrix(returns, "returns", min_rows=2)
    z = x - x.mean(axis=0)
    norm = np.sqrt(np.sum(z * z, axis=0))
    flat = norm <= stats.FLAT_RTOL * np.abs(x).max(axis=0) * math.sqrt(x.shape[0])
    z = z / np.where(flat, 1.0, norm)
    z[:, flat] = 0.0
    rho = np.clip(z.T @ z, -1.0, 1.0)
    rho[np.ix_(flat, flat)] = 1.0
    dist = np.sqrt(np.clip((1.0 - rho) / 2.0, 0.0, None))
    dist = (dist + dist.T) / 2.0
    np.fill_diagonal(dist, 0.0)
    return dist


def _silhouette(sums: np.ndarray, seg: np.ndarray, sizes: np.ndarray) -> float:
    """Mean silhouette from each point's summed distances to every cluster (n, k), its cluster ``seg`` and the sizes;
    a point alone in its cluster scores 0 (Rousseeuw; scikit-learn's convention)."""
    n = sums.shape[0]
    rows = np.arange(n)
    own_size = sizes[seg]
    a = sums[rows, seg] / np.maximum(own_size - 1, 1)
    other = sums / sizes
    other[rows, seg] = np.inf
    b = other.min(axis=1)
    denom = np.maximum(a, b)
    s = np.where((own_size > 1) & (denom > 0), (b - a) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(s.mean())


def cluster_trials(returns, *, max_clusters: int = DEFAULT_MAX_CLUSTERS, max_trials: int = MAX_TRIALS, seed: int = 0):
    """Cluster trials' return series by correlation (:data:`CLUSTERING`).

    Parameters
    ----------
    returns : array (n_bars, n_trials)
        Per-period returns of the trials (for a deflated Sharpe against a benchmark: their excess over it).
    max_clusters : int
        Largest ``k`` tried, >= 2 (capped at the number of clustered columns minus 1).
    max_trials : int
        At most this many columns are clustered (a uniform sample, see :func:`sample_columns`), >= 2.
    seed : int
        Seed of that sample.

    Returns
    -------
    TrialClusters
    """
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    x = _matrix(returns, "returns", min_rows=2)
    kmax = _count(max_clusters, "max_clusters", 2)
    columns = sample_columns(x.shape[1], max_trials, seed)
    x = x[:, columns]
    n = x.shape[1]
    dist = correlation_distance(x)
    if n < 3:  # no k with 2 <= k <= n - 1: each trial is its own cluster
        labels = np.arange(n)
        return TrialClusters(labels, np.arange(n), columns, n, math.nan)
    z = linkage(squareform(dist, checks=False), method="ward")
    order = leaves_list(z)  # every cluster of every cut is a contiguous run of this order
    dl = dist[np.ix_(order, order)]
    prefix = np.zeros((n, n + 1))
    np.cumsum(dl, axis=1, out=prefix[:, 1:])
    start = np.empty(2 * n - 1, dtype=np.int64)
    start[order] = np.arange(n)
    for i, (c1, c2) in enumerate(z[:, :2].astype(np.int64)):
        start[n + i] = min(start[c1], start[c2])
    cuts = [0]  # starts of the current clusters in leaf order
    best = (-math.inf, None)
    for k in range(2, min(kmax, n - 1) + 1):
        c1, c2 = z[n - k, :2].astype(np.int64)  # undo the merges from the last one down
        cuts.append(max(start[c1], start[c2]))
        bounds = np.array([*sorted(cuts), n])
        sums = prefix[:, bounds[1:]] - prefix[:, bounds[:-1]]
        sizes = np.diff(bounds)
        seg = np.repeat(np.arange(k), sizes)
        score = _silhouette(sums, seg, sizes)
        if score > best[0]:
            best = (score, (bounds, sums, sizes, seg))
    score, (bounds, sums, sizes, seg) = best
    within = sums[np.arange(n), seg]
    segment = np.empty(n, dtype=np.int64)  # each column's cluster, numbered in leaf order
    segment[order] = seg
    _, first = np.unique(segment, return_index=True)
    rename = np.empty(len(first), dtype=np.int64)
    rename[np.argsort(first)] = np.arange(len(first))  # number clusters by first appearance
    labels = rename[segment]
    medoids = np.empty(len(first), dtype=np.int64)
    for c in range(len(first)):
        members = order[bounds[c] : bounds[c + 1]]
        w = within[bounds[c] : bounds[c + 1]]
        medoids[rename[c]] = members[w == w.min()].min()
    return TrialClusters(labels, medoids, columns, len(first), float(score))


def cluster_sharpes(returns, labels) -> np.ndarray:
    """Per-period Sharpe ratio of each cluster's combined series: its members' returns with inverse-variance weights
    (constant members get weight 0; an all-constant cluster has Sharpe 0).

    Parameters
    ----------
    returns : array (n_bars, n)
    labels : int array (n,)
        Cluster of each column, 0..K-1, every cluster non-empty.

    Returns
    -------
    float64 array (K,)
    """
    x = _matrix(returns, "returns", min_rows=2)
    lab = np.asarray(labels)
    if lab.shape != (x.shape[1],) or not np.issubdtype(lab.dtype, np.integer):
        raise ConfigError(f"labels must be integers, one per column of returns ({x.shape[1]}), got shape {lab.shape}")
    k = int(lab.max()) + 1
    if lab.min() < 0 or np.bincount(lab, minlength=k).min() == 0:
        raise ConfigError(f"labels must number the clusters 0..K-1 with none empty, got {np.unique(lab).tolist()}")
    var = x.var(axis=0, ddof=1)
    w = np.where(var > 0, 1.0 / np.where(var > 0, var, 1.0), 0.0)
    out = np.empty(k)
    for c in range(k):
        members = lab == c
        wc = w[members]
        series = x[:, members] @ (wc / wc.sum()) if wc.sum() > 0 else x[:, members].mean(axis=1)
        out[c] = stats.sharpe_per_period(series)
    return out


# ---------------------------------------------------------------------------------------------------
# the statistics


def _dsr_row(excess: np.ndarray, n: int, variance: float) -> dict:
    sr_star = stats.expected_max_sharpe(n, variance)
    return {
        "n_trials": int(n),
        "sharpe_variance": float(variance),
        "expected_max_sharpe": sr_star,
        "deflated_sharpe": float(stats.probabilistic_sharpe(excess, sr_star)),
    }


def excess_deflated_sharpe(
    champion,
    benchmark,
    trials,
    *,
    n_trials: int | None = None,
    periods_per_year: float | None = None,
    max_clusters: int = DEFAULT_MAX_CLUSTERS,
    max_trials: int = MAX_TRIALS,
    seed: int = 0,
) -> dict:
    """Deflated Sharpe ratio of the champion's returns in excess of the benchmark's, raw and effective trial counts.

    Parameters
    ----------
    champion : array (n_bars,)
        Per-period returns of the selected portfolio on the window it was selected on.
    benchmark : array (n_bars,)
        Per-period returns of the benchmark (1/N) on the same bars.
    trials : array (n_bars, n)
        Per-period returns of the trials (a uniform sample of them), ``n >= 2``; the champion may be among them.
    n_trials : int or None
        Distinct trials evaluated in all (the raw count), >= ``n``; None takes ``n``.
    periods_per_year : float or None
        Bars per year, to report the excess Sharpe ratio annualized as well (None: not reported).
    max_clusters, max_trials, seed :
        As :func:`cluster_trials`.

    Returns
    -------
    dict
        ``excess_sharpe`` (per period; ``excess_sharpe_annualized`` with ``periods_per_year``), ``n_obs``, ``psr``
        (against 0), ``raw`` and ``effective`` rows (``n_trials``, ``sharpe_variance``, ``variance_source``,
        ``expected_max_sharpe``, ``deflated_sharpe``; ``raw`` also ``sharpe_variance_observed``; ``effective`` also
        ``clustering``, ``silhouette``, ``max_clusters`` (``n_trials`` equal to it: the search was capped),
        ``n_sampled``), ``threshold``, ``verdict`` ("skill" when both deflated Sharpe
        ratios reach the threshold, else "no skill").
    """
    x = _matrix(trials, "trials", min_rows=3, min_cols=2)
    t = x.shape[0]
    excess = _vector(champion, "champion", t) - _vector(benchmark, "benchmark", t)
    bench = np.asarray(benchmark, dtype=np.float64)
    n_raw = x.shape[1] if n_trials is None else _count(n_trials, "n_trials", x.shape[1])
    trial_excess = x - bench[:, None]
    clusters = cluster_trials(trial_excess, max_clusters=max_clusters, max_trials=max_trials, seed=seed)
    sampled = trial_excess[:, clusters.columns]
    k = clusters.n_clusters
    cluster_sr = cluster_sharpes(sampled, clusters.labels)
    v_k = float(np.var(cluster_sr, ddof=1)) if k > 1 else 0.0
    raw = _dsr_row(excess, n_raw, 1.0 / (t - 1))
    raw["variance_source"] = "null: the variance of a zero Sharpe ratio estimate, 1/(T-1)"
    raw["sharpe_variance_observed"] = float(np.var(stats.sharpe_per_period(sampled), ddof=1))
    eff = _dsr_row(excess, k, v_k)
    eff.update(
        variance_source="the clusters' Sharpe ratios",
        clustering=clusters.algorithm,
        silhouette=clusters.silhouette,
        max_clusters=int(max_clusters),
        n_sampled=int(clusters.columns.size),
    )
    sr = float(stats.sharpe_per_period(excess))
    out = {"excess_sharpe": sr, "n_obs": int(t), "psr": float(stats.probabilistic_sharpe(excess))}
    if periods_per_year is not None:
        ppy = float(periods_per_year)
        if not (math.isfinite(ppy) and ppy > 0):
            raise ConfigError(f"periods_per_year must be a positive number, got {periods_per_year!r}")
        out["excess_sharpe_annualized"] = sr * math.sqrt(ppy)
    skill = min(raw["deflated_sharpe"], eff["deflated_sharpe"]) >= DSR_THRESHOLD
    out.update(raw=raw, effective=eff, threshold=DSR_THRESHOLD, verdict="skill" if skill else "no skill")
    return out


def representative_pbo(
    returns,
    *,
    benchmark=None,
    n_blocks: int = 16,
    max_clusters: int = DEFAULT_MAX_CLUSTERS,
    max_trials: int = MAX_TRIALS,
    seed: int = 0,
) -> dict:
    """PBO (CSCV) over the medoids of the trials' clusters, on a window the trials were not bred on.

    Parameters
    ----------
    returns : array (n_bars, n)
        Per-period returns of the candidates on a window they were **not** selected or bred on (see the module
        notes), ``n >= 2``.
    benchmark : array (n_bars,) or None
        When given, the candidates are clustered by their excess over it (their active bets); PBO always ranks the
        representatives by the Sharpe ratio of their own returns.
    n_blocks : int
        CSCV blocks, as :func:`genetic_sizer.backtest.stats.pbo`.
    max_clusters, max_trials, seed :
        As :func:`cluster_trials`.

    Returns
    -------
    dict
        ``pbo`` (None with ``note`` when fewer than 2 clusters), ``n_candidates`` (clusters), ``representatives``
        (column of each medoid in ``returns``), ``n_sampled``, ``n_blocks``, ``clustering``, ``thresholds``
        (``no_skill``, ``skill``) and ``verdict`` ("skill", "inconclusive" or "no skill").
    """
    x = _matrix(returns, "returns", min_rows=2, min_cols=2)
    basis = x if benchmark is None else x - _vector(benchmark, "benchmark", x.shape[0])[:, None]
    clusters = cluster_trials(basis, max_clusters=max_clusters, max_trials=max_trials, seed=seed)
    reps = clusters.columns[clusters.medoids]
    out = {
        "pbo": None,
        "n_candidates": int(reps.size),
        "representatives": [int(i) for i in reps],
        "n_sampled": int(clusters.columns.size),
        "n_blocks": int(n_blocks),
        "clustering": clusters.algorithm,
        "thresholds": {"no_skill": PBO_NO_SKILL, "skill": PBO_SKILL},
        "verdict": None,
    }
    if reps.size < 2:
        out["note"] = "fewer than 2 clusters: nothing to choose between"
        return out
    value = stats.pbo(x[:, reps], n_blocks=n_blocks)
    out["pbo"] = value
    out["verdict"] = "no skill" if value >= PBO_NO_SKILL else "skill" if value <= PBO_SKILL else "inconclusive"
    return out

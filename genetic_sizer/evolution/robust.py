"""What a run deploys: the plain champion, or a post-processed one (issue 23: shrinkage and ensembles).

:func:`deploy` builds the portfolio the ``robust:`` section asks for (:class:`~genetic_sizer.config.robust.
RobustConfig`): first the ensemble (``robust.ensemble``), then the shrinkage (``robust.shrink``) of its result; with
the defaults it is the hall of fame's best genome, unchanged. :func:`variants` builds each method on its own (walk-
forward reports them beside the deployed one as ``GA_<method>``).

* **Shrinkage** (``robust.shrink = c``): ``(1 - c) w + c t`` with ``t`` the target ``robust.shrink_toward``: 1/N
  (``equal_weight``) or a classical allocation fitted on the training window
  (:func:`~genetic_sizer.evolution.seeding.classical_allocations`). The target must itself be a valid genome of the
  run's space, else the method is refused (a :class:`ConfigError` naming ``robust.shrink_toward`` and the
  constraint, e.g. 1/N over 20 assets with ``portfolio.max_assets: 5``).
* **top_k**: the equally weighted average of the ``robust.ensemble_size`` best hall-of-fame members.
* **cluster**: the final population clustered by Ward's agglomerative hierarchical clustering (Euclidean distance
  between weight vectors, ``scipy.cluster.hierarchy``), the tree cut into ``ceil(population / ensemble_size)``
  clusters; the best cluster is the one with the best median fitness (first objective) among clusters of at least
  two live genomes (the best genome's cluster when none has two); its members are averaged equally.
* **resampled**: the champions of ``robust.ensemble_size`` runs on stationary-bootstrap resampled training windows
  (:mod:`genetic_sizer.runs.resampled` runs them and passes them here as ``resampled``), averaged equally.

Strategy genes: an ensemble takes the genes of its best member (the averaged weights are kept with that member's
calendar policy, drift band and leverage); members with other genes are averaged all the same (their genes are
listed in the record).

Feasibility: every deployed portfolio is a valid genome of the run's space. A convex combination keeps the bounds,
the budget and (long-only) the group rows, but not the non-convex constraints: the count (``max_assets``), the
minimum position, and (long/short) gross exposure 1 where signs differ. A combination that breaks one is projected:
the support is chosen (the forced assets, then the largest magnitudes at least half of ``min_position``, at most
``max_assets`` of them; the sign of each is the combination's) and the magnitudes are the exact Euclidean projection
onto that face (per-asset bounds and gross 1: ``clip(|y_i| + lambda, lo_i, hi_i)``, with lambda solved exactly).
The global projection under a cardinality constraint is a mixed-integer quadratic program; this is the exact
projection onto the face the support rule picks, and the result is checked. When it still breaks a constraint
(e.g. a group or exposure row) the method is refused with a :class:`ConfigError` naming both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from genetic_sizer.backtest.metrics import MAXIMIZE, wiped_out_fitness
from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.space import GenomeSpace

__all__ = [
    "Deployed",
    "average",
    "check_min_effective_assets",
    "check_no_shrink_gene",
    "deploy",
    "effective_assets",
    "effective_weights",
    "enforce_effective_assets",
    "gene_mix",
    "gene_weights",
    "max_effective_assets",
    "member",
    "norm_checked",
    "plain",
    "project",
    "shrink",
    "shrink_target",
    "variants",
]


@dataclass(frozen=True)
class Deployed:
    """A deployed portfolio: ``weights`` (n_assets,), valid in the run's genome space; ``genes`` its strategy genes
    (None without genes); ``method`` (``plain``, ``shrink``, ``ensemble``, ``ensemble+shrink``); ``record`` how it
    was built (JSON-able: the champion file's ``construction``)."""

    weights: np.ndarray
    genes: np.ndarray | None
    method: str
    record: dict


# ---- projection -------------------------------------------------------------------------------------------------
def _face_projection(mag: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
    """The Euclidean projection of ``mag`` onto ``{lo <= x <= hi, sum x = 1}`` (None when that set is empty):
    ``x = clip(mag + lam, lo, hi)`` with ``lam`` found by bisection on the breakpoints, then solved exactly on the
    free coordinates."""
    if lo.sum() > 1.0 + 1e-12 or hi.sum() < 1.0 - 1e-12:
        return None

    def total(lam):
        return np.clip(mag + lam, lo, hi).sum()

    a, b = float((lo - mag).min()) - 1.0, float((hi - mag).max()) + 1.0  # total(a) = sum lo, total(b) = sum hi
    for _ in range(200):
        mid = 0.5 * (a + b)
        if total(mid) < 1.0:
            a = mid
        else:
            b = mid
    lam = 0.5 * (a + b)
    x = np.clip(mag + lam, lo, hi)
    free = (mag + lam > lo) & (mag + lam < hi)
    if free.any():  # exact on the active set: the free coordinates take what the clipped ones leave
        fixed = x[~free].sum()
        lam = (1.0 - fixed - mag[free].sum()) / free.sum()
        x[free] = np.clip(mag[free] + lam, lo[free], hi[free])
    return x


def _support(space: GenomeSpace, mag: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> list[int]:
    """The assets a projection holds: the forced ones, then those with a magnitude of at least half the minimum
    position, largest first, at most ``max_assets``; when their upper bounds cannot reach gross 1, the holdable assets
    with the largest upper bounds are added (up to ``max_assets``); when their lower bounds exceed 1, the smallest
    optional ones are dropped."""
    holdable = (lo <= hi) & (hi > 0)
    forced = ~space.zero_ok
    big = holdable & (forced | ((mag > 0) & (mag >= 0.5 * space.min_position)))
    order = np.lexsort((np.arange(len(mag)), -mag, ~forced))  # forced first, then the largest magnitudes
    chosen = [int(i) for i in order if big[i]][: space.max_assets]
    rest = [int(i) for i in np.lexsort((np.arange(len(mag)), -mag, -hi)) if holdable[i] and int(i) not in chosen]
    while hi[chosen].sum() < 1.0 and rest and len(chosen) < space.max_assets:
        chosen.append(rest.pop(0))
    while lo[chosen].sum() > 1.0 and any(not forced[i] for i in chosen):
        chosen.remove(min((i for i in chosen if not forced[i]), key=lambda i: (mag[i], -i)))
    return sorted(chosen)


def project(space: GenomeSpace, y, what: str) -> tuple[np.ndarray, dict]:
    """``y`` itself when it is a valid genome of ``space``, else its projection (module docstring). Returns the
    weights and ``{"projected": bool, "distance": Euclidean distance moved}``; raises :class:`ConfigError` naming
    ``what`` (the method) and the constraint when no valid portfolio results."""
    y = np.asarray(y, dtype=np.float64)
    if space.violation(y) is None:
        return y.copy(), {"projected": False, "distance": 0.0}
    why0 = space.violation(y)
    signs = space.signs(y)
    lo, hi = space.held_box(signs)
    mag = np.abs(y)
    chosen = _support(space, mag, lo, hi)
    w = np.zeros(space.n_assets)
    x = _face_projection(mag[chosen], lo[chosen], hi[chosen]) if chosen else None
    if x is not None:
        w[chosen] = signs[chosen] * x
        w += 0.0
    why = space.violation(w) if x is not None else why0
    if why is not None:
        raise ConfigError(
            f"{what}: the portfolio it builds breaks the run's constraints ({why0}) and its projection onto the genome "
            f"space does not fix it ({why}); this method cannot keep that constraint: turn it off or relax the "
            "constraint"
        )
    return w, {"projected": True, "distance": float(np.linalg.norm(w - y))}


# ---- the norm constraint ---------------------------------------------------------------------------------------
ENC_TOL = 1e-9
"""Tolerance of ``1 / sum(w^2) >= portfolio.min_effective_assets`` (in assets)."""


def effective_assets(weights) -> np.ndarray:
    """The effective number of assets ``1 / sum(v_i^2)`` of each row, ``v = w / sum|w|`` the gross-normalized weights
    (a long-only genome sums to 1 and a long/short one has gross exposure 1, so ``v`` is the genome itself; for
    long/short the measure counts positions by their gross share, short ones like long ones)."""
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    v = w / np.abs(w).sum(axis=1, keepdims=True)
    return 1.0 / (v * v).sum(axis=1)


def max_effective_assets(space: GenomeSpace) -> float:
    """The largest effective number of assets a genome of ``space`` can have, from its bounds, ``max_assets`` and
    ``min_position`` (groups and exposure rows are not taken into account): the minimum-norm portfolio on the forced
    assets plus the optional ones with the largest upper bounds, as many as ``max_assets`` allows."""
    sides = space.sides
    lo, hi = sides.lo_best, sides.hi_best
    forced = ~space.zero_ok
    optional = np.flatnonzero(space.zero_ok & sides.holdable)
    best = 0.0
    ranked = optional[np.lexsort((optional, -hi[optional]))]
    for t in range(0, min(space.max_assets - int(forced.sum()), len(ranked)) + 1):
        chosen = np.concatenate([np.flatnonzero(forced), ranked[:t]]).astype(int)
        if len(chosen) == 0:
            continue
        x = _face_projection(np.zeros(len(chosen)), lo[chosen], hi[chosen])
        if x is not None:
            best = max(best, 1.0 / float((x * x).sum()))
    return best


def check_min_effective_assets(space: GenomeSpace, value) -> None:
    """A :class:`ConfigError` when ``portfolio.min_effective_assets`` is more than the space allows."""
    if value is None:
        return
    top = max_effective_assets(space)
    if value > top + ENC_TOL:
        raise ConfigError(
            f"portfolio.min_effective_assets {value:g} cannot be met: the most a portfolio of these "
            f"{space.n_assets} assets can have is {top:.6g} (1 / sum(w^2), with portfolio.max_weight, max_assets "
            f"{space.max_assets} and min_position {space.min_position:g}); lower it"
        )


def enforce_effective_assets(space: GenomeSpace, w, value, what: str) -> tuple[np.ndarray, dict]:
    """``w`` when ``1 / sum(w^2) >= value``; else the least shrinkage that meets it toward the first valid target
    with at least ``value`` effective assets: 1/N, else equal magnitudes on ``w``'s own holdings (its signs; this keeps
    ``max_assets``): the smallest root ``c`` of ``sum((w + c (t - w))^2) = 1 / value``, projected onto the space when
    needed. A :class:`ConfigError` naming ``what`` and ``portfolio.min_effective_assets`` when neither target is a
    valid genome with enough effective assets, or the result still falls short."""
    w = np.asarray(w, dtype=np.float64)
    enc = float(effective_assets(w)[0])
    rec = {"value": float(value), "effective_assets_before": enc, "repaired": False}
    if enc >= value - ENC_TOL:
        return w, rec
    held = w != 0
    targets = {
        "equal_weight": np.full(space.n_assets, 1.0 / space.n_assets),
        "equal_on_holdings": np.where(held, np.sign(w) / max(int(held.sum()), 1), 0.0),
    }
    why = {}
    for name, t in targets.items():
        why[name] = space.violation(t)
        if why[name] is None and float(effective_assets(t)[0]) < value - ENC_TOL:
            why[name] = f"it has only {float(effective_assets(t)[0]):.6g} effective assets"
        if why[name] is None:
            break
    else:
        tried = "; ".join(f"{k}: {v}" for k, v in why.items())
        raise ConfigError(
            f"{what}: its portfolio has {enc:.6g} effective assets, under portfolio.min_effective_assets {value:g}, "
            f"and no target to shrink it toward meets the run's constraints ({tried})"
        )
    d = t - w
    a, b, c0 = float(d @ d), 2.0 * float(w @ d), float(w @ w) - 1.0 / value
    c = (-b - np.sqrt(max(b * b - 4 * a * c0, 0.0))) / (2 * a) if a > 0 else 1.0
    c = min(1.0, max(0.0, float(c)) * (1 + 1e-12) + 1e-15)
    out, proj = project(space, w + c * d, f"{what} with portfolio.min_effective_assets {value:g}")
    after = float(effective_assets(out)[0])
    if after < value - ENC_TOL:
        raise ConfigError(
            f"{what}: its portfolio has {after:.6g} effective assets after the repair toward {name}, under "
            f"portfolio.min_effective_assets {value:g}"
        )
    return out, {**rec, "repaired": True, "target": name, "coefficient": c, "effective_assets": after, **proj}


# ---- shrinkage ---------------------------------------------------------------------------------------------------
def shrink_target(space: GenomeSpace, prices, toward: str, settings=None) -> np.ndarray:
    """The target of ``robust.shrink_toward`` as a valid genome of ``space`` (1/N, or the classical allocation
    fitted on ``prices``); a :class:`ConfigError` naming the key and the constraint when it is not valid."""
    if toward == "equal_weight":
        t = np.full(space.n_assets, 1.0 / space.n_assets)
        why = space.violation(t)
    else:
        from genetic_sizer.evolution.seeding import classical_allocations

        allocations, skipped = classical_allocations(prices, space, settings)  # settings: the allocators: section
        t = allocations.get(toward)
        why = skipped.get(toward, "not fitted") if t is None else None
    if why is not None:
        raise ConfigError(
            f"robust.shrink_toward {toward}: the target is not a valid portfolio of the run's genome space ({why}), "
            "so shrinking toward it cannot keep that constraint; choose another target or relax the constraint"
        )
    return np.asarray(t, dtype=np.float64)


def check_no_shrink_gene(config, where: str) -> None:
    """A :class:`ConfigError` when ``config`` evolves the ``shrink`` gene (``evolution.genes: {shrink: [lo, hi]}``)
    in ``where`` (walk-forward, nested selection): there the champions and the candidates are traded and scored by
    their raw weights, not the gene-shrunk ones the evolution scored, so the gene is refused; the fixed
    ``robust.shrink`` is applied there."""
    genes = getattr(config.evolution, "genes", None)
    if genes is not None and "shrink" in genes:
        raise ConfigError(
            f"evolution.genes.shrink {list(genes['shrink'])}: the evolved shrink gene is not supported in {where} "
            "(its folds and candidates would be traded and scored by their unshrunk weights); use the fixed "
            "robust.shrink (with robust.shrink_toward) there, or run evolve"
        )


def gene_target(evaluator) -> np.ndarray | None:
    """The target of an evaluator's ``shrink`` gene (``robust.shrink_toward`` as a valid genome of the run's space,
    fitted on the evaluator's window with the run's ``allocators:`` section, computed once), or None without that
    gene."""
    if evaluator.shrink_toward is None:
        return None
    if evaluator._shrink_target is None:
        toward, _portfolio, *rest = evaluator.shrink_toward
        allocators = rest[0] if rest else None
        evaluator._shrink_target = shrink_target(_gene_space(evaluator), evaluator.prices, toward, allocators)
    return evaluator._shrink_target


def _gene_space(evaluator) -> GenomeSpace:
    space = getattr(evaluator, "_shrink_space", None)
    if space is None:
        space = GenomeSpace.from_config(evaluator.prices.symbols, evaluator.shrink_toward[1])
        evaluator._shrink_space = space
    return space


def gene_mix(space: GenomeSpace, weights, s, target) -> tuple[np.ndarray, np.ndarray, list]:
    """The portfolios the ``shrink`` gene makes, the one rule shared by the evaluator (what is scored) and the
    deployment (:func:`member`, :func:`gene_shrunk`: what is deployed): each row of ``weights`` (n, n_assets) mixed
    with its coefficient ``s`` (n,) toward ``target`` (``(1 - s) w + s t``), then projected onto ``space`` when the mix
    breaks a constraint (:func:`project`: the dust ``s t_i`` under ``portfolio.min_position`` where ``w_i = 0``, a
    union of supports above ``max_assets``, long/short gross exposure under 1). Returns the weights, a boolean mask of
    the rows whose mix cannot be made valid (left unprojected; the evaluator ranks them with the wiped-out genomes and
    deploying one is refused), and each row's projection record (None for those)."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1, space.n_assets)
    s = np.asarray(s, dtype=np.float64).reshape(-1, 1)
    mixed = (1.0 - s) * w + s * np.asarray(target, dtype=np.float64)
    out = mixed.copy()
    failed = np.zeros(len(mixed), dtype=bool)
    records: list = []
    for i, y in enumerate(mixed):
        try:
            out[i], rec = project(space, y, f"the shrink gene {float(s[i, 0]):g}")
        except ConfigError:
            failed[i], rec = True, None
        records.append(rec)
    return out, failed, records


def gene_weights(evaluator, weights, genes=None) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`effective_weights` and the mask of the rows whose shrunk mix has no valid projection (None without the
    gene): the evaluator scores those as wiped out."""
    w = np.asarray(weights, dtype=np.float64)
    g = evaluator.genes
    if genes is None or g is None or g.shrink is None or evaluator.shrink_toward is None:
        return w, None
    target = gene_target(evaluator)
    out, failed, _ = gene_mix(_gene_space(evaluator), w, g.shrinks(genes), target)
    return out, failed


def effective_weights(evaluator, weights, genes=None) -> np.ndarray:
    """The weights an :class:`~genetic_sizer.evolution.evaluator.Evaluator` scores genomes with: ``weights``
    (n, n_assets) shrunk by each genome's ``shrink`` gene ``s`` toward :func:`gene_target` and projected onto the
    run's space (:func:`gene_mix`, the rule the deployment uses) when the run evolves that gene; else ``weights``
    unchanged. The fitness applies it before simulating, so the fast and the vectorbt engines see the same weights."""
    return gene_weights(evaluator, weights, genes)[0]


def shrink(space: GenomeSpace, w, target, c: float, what: str = "robust.shrink") -> tuple[np.ndarray, dict]:
    """``(1 - c) w + c target``, projected onto ``space`` when the mix breaks a constraint (see :func:`project`)."""
    w = np.asarray(w, dtype=np.float64)
    y = (1.0 - c) * w + c * np.asarray(target, dtype=np.float64)
    out, proj = project(space, y, f"{what} {c:g}")
    return out, {"coefficient": float(c), **proj}


def average(space: GenomeSpace, members, what: str) -> tuple[np.ndarray, dict]:
    """The equally weighted average of ``members`` (k, n_assets), projected onto ``space`` when needed."""
    members = np.asarray(members, dtype=np.float64)
    return project(space, members.mean(axis=0), f"{what} (the average of {len(members)} members)")


# ---- ensembles ---------------------------------------------------------------------------------------------------
def _key(result, fitness) -> np.ndarray:
    """Larger-is-better score of the first objective."""
    f = np.asarray(fitness, dtype=np.float64)[:, 0]
    return f if MAXIMIZE[result.config.objective[0]] else -f


def _genes_list(genes, rows) -> list | None:
    return None if genes is None else [np.asarray(genes)[i].tolist() for i in rows]


def _top_k(result, prices, k: int) -> tuple[np.ndarray, np.ndarray | None, dict]:
    k = min(k, len(result.members))
    rows = list(range(k))
    genes = result.members_genes if result.genes is not None else None
    rec = {
        "ensemble": "top_k",
        "members": [{"rank": r, "fitness": [float(x) for x in result.members_fitness[r]]} for r in rows],
        "member_genes": _genes_list(genes, rows),
        "genes_rule": "the best member's genes",
    }
    members, _ = gene_shrunk(result, prices, result.members[:k], None if genes is None else genes[:k])
    return members, None if genes is None else genes[0].copy(), rec


def _cluster(result, prices, k: int) -> tuple[np.ndarray, np.ndarray | None, dict]:
    from scipy.cluster.hierarchy import fcluster, linkage

    genes = result.population_genes if result.genes is not None else None
    pop, _ = gene_shrunk(result, prices, result.population, genes)  # the weights the population was scored with
    n = len(pop)
    key = _key(result, result.fitness)
    live = ~(np.asarray(result.fitness) == wiped_out_fitness(result.config.objective)).all(axis=1)
    n_clusters = max(1, math.ceil(n / k))
    labels = fcluster(linkage(pop, method="ward"), t=n_clusters, criterion="maxclust") if n > 1 else np.ones(1, int)
    best_row = int(np.flatnonzero(live)[np.argmax(key[live])]) if live.any() else 0
    scores = {}
    for lab in np.unique(labels):
        rows = np.flatnonzero((labels == lab) & live)
        if len(rows) >= 2:
            scores[int(lab)] = float(np.median(key[rows]))
    chosen = max(scores, key=lambda lab: (scores[lab], -lab)) if scores else int(labels[best_row])
    rows = np.flatnonzero((labels == chosen) & live)
    if len(rows) == 0:
        rows = np.array([best_row])
    rows = rows[np.lexsort((rows, -key[rows]))]  # best first
    rec = {
        "ensemble": "cluster",
        "algorithm": "Ward agglomerative hierarchical clustering of the final population's weights (Euclidean), "
        f"cut into {n_clusters} clusters; the cluster with the best median {result.config.objective[0]} among "
        "those with at least 2 live genomes",
        "members": [{"population_row": int(r), "fitness": [float(x) for x in result.fitness[r]]} for r in rows],
        "member_genes": _genes_list(genes, rows),
        "genes_rule": "the best member's genes",
    }
    return pop[rows], None if genes is None else genes[rows[0]].copy(), rec


def _resampled(result, resampled) -> tuple[np.ndarray, np.ndarray | None, dict]:
    if not resampled:
        raise ConfigError(
            "robust.ensemble resampled: the champions of the runs on resampled histories are needed "
            "(genetic_sizer.runs.resampled.resampled_champions builds them and passes them as resampled=)"
        )
    weights = np.stack([np.asarray(r["weights"], dtype=np.float64) for r in resampled])
    genes = [r.get("genes") for r in resampled]
    rec = {
        "ensemble": "resampled",
        "members": [{k: v for k, v in r.items() if k not in ("weights", "genes")} for r in resampled],
        "member_genes": None if result.genes is None else [list(map(float, g)) for g in genes],
        "genes_rule": "the best member's genes (the run with the best in-sample fitness on the real window)",
    }
    best_genes = None
    if result.genes is not None:
        best = int(np.argmax([r["fitness"][0] * (1 if _maximize(result) else -1) for r in resampled]))
        best_genes = np.asarray(genes[best], dtype=np.float64)
    return weights, best_genes, rec


def _maximize(result) -> bool:
    return bool(MAXIMIZE[result.config.objective[0]])


def _ensemble(result, prices, robust, resampled) -> Deployed:
    name = robust.ensemble
    if name == "top_k":
        members, genes, rec = _top_k(result, prices, robust.ensemble_size)
    elif name == "cluster":
        members, genes, rec = _cluster(result, prices, robust.ensemble_size)
    else:
        members, genes, rec = _resampled(result, resampled)
    w, proj = average(result.space, members, f"robust.ensemble {name}")
    return Deployed(w, genes, "ensemble", {**rec, "size": len(members), **proj})


# ---- what is deployed --------------------------------------------------------------------------------------------
def gene_shrunk(result, prices, weights, genes) -> tuple[np.ndarray, dict | None]:
    """``weights`` (n, n_assets) as the evaluator scored them: shrunk by the rows' ``shrink`` genes toward
    ``robust.shrink_toward`` fitted on ``prices`` (the training window) and projected (:func:`gene_mix`) when the run
    evolves that gene (the record says how: ``failed`` marks rows without a valid projection), else unchanged
    (record None)."""
    w = np.asarray(weights, dtype=np.float64)
    if result.genes is None or result.genes.shrink is None:
        return w.copy(), None
    toward = result.config.robust.shrink_toward
    target = shrink_target(result.space, prices, toward, result.config)
    s = result.genes.shrinks(genes)
    out, failed, records = gene_mix(result.space, w, s, target)
    how = {"target": toward, "target_weights": target.tolist(), "coefficients": s.tolist()}
    return out, {**how, "failed": failed, "projections": records}


def plain(result, prices=None) -> Deployed:
    """The hall of fame's best genome (see :func:`member`)."""
    return member(result, prices, 0)


def member(result, prices=None, rank: int = 0) -> Deployed:
    """Hall-of-fame member ``rank`` as it was scored: with a ``shrink`` gene, its weights shrunk by it toward
    ``robust.shrink_toward`` fitted on ``prices`` (projected onto the space when the mix breaks a constraint, which the
    record says); ``portfolio.min_effective_assets`` is not applied here (:func:`deploy` applies it)."""
    genes = None if result.genes is None else np.asarray(result.members_genes[rank], dtype=np.float64).copy()
    w = np.asarray(result.members[rank], dtype=np.float64).copy()
    fit = [float(x) for x in result.members_fitness[rank]]
    rec = {"method": "plain", "members": [{"rank": rank, "fitness": fit}]}
    shrunk, how = gene_shrunk(result, prices, w[None, :], None if genes is None else genes[None, :])
    if how is not None:
        if how["failed"][0]:  # the evaluator scored it as wiped out: the same refusal as project's
            project(result.space, shrunk[0], f"the shrink gene {how['coefficients'][0]:g}")
        w = shrunk[0]
        proj = how["projections"][0]
        rec["shrink_gene"] = {"target": how["target"], "coefficient": how["coefficients"][0], **proj}
    return Deployed(w, genes, "plain", rec)


def _shrunk(result, prices, robust, base: Deployed) -> Deployed:
    target = shrink_target(result.space, prices, robust.shrink_toward, result.config)
    w, rec = shrink(result.space, base.weights, target, robust.shrink)
    rec = {"target": robust.shrink_toward, "target_weights": target.tolist(), **rec}
    method = "shrink" if base.method == "plain" else f"{base.method}+shrink"
    built = {k: v for k, v in base.record.items() if k != "method"}
    return Deployed(w, base.genes, method, {"method": method, **built, "shrink": rec})


def _check_robust(robust):
    from genetic_sizer.config.robust import RobustConfig

    return RobustConfig() if robust is None else robust


def deploy(result, prices, robust=None, *, resampled=None) -> Deployed:
    """What the config deploys: the ensemble (``robust.ensemble``), then the shrinkage (``robust.shrink``) of it;
    the plain champion with the defaults. ``result`` is an :class:`~genetic_sizer.evolution.result.EvolutionResult`,
    ``prices`` its training window (the classical target of ``shrink_toward``); ``resampled`` the champions of the
    runs on resampled histories (``robust.ensemble: resampled``: :func:`genetic_sizer.runs.resampled.
    resampled_champions`)."""
    robust = _check_robust(robust)
    out = plain(result, prices)
    if robust.ensemble != "none":
        ens = _ensemble(result, prices, robust, resampled)
        out = Deployed(ens.weights, ens.genes, "ensemble", {"method": "ensemble", **ens.record})
    if robust.shrink > 0:
        out = _shrunk(result, prices, robust, out)
    return norm_checked(result, out)


def norm_checked(result, out: Deployed) -> Deployed:
    """``out`` meeting ``portfolio.min_effective_assets`` (:func:`enforce_effective_assets`; recorded)."""
    value = getattr(result.config.portfolio, "min_effective_assets", None)
    if value is None:
        return out
    w, rec = enforce_effective_assets(result.space, out.weights, value, f"the deployed champion ({out.method})")
    return Deployed(w, out.genes, out.method, {**out.record, "min_effective_assets": rec})


def variants(result, prices, robust, *, resampled=None) -> dict[str, Deployed]:
    """Each post-processing method the config sets, on its own: ``{"plain": ..., "shrink": ..., "ensemble": ...}``
    (``plain`` always; ``shrink`` when ``robust.shrink > 0``; ``ensemble`` when ``robust.ensemble`` is set)."""
    robust = _check_robust(robust)
    base = plain(result, prices)
    out = {"plain": base}
    if robust.shrink > 0:
        out["shrink"] = _shrunk(result, prices, robust, base)
    if robust.ensemble != "none":
        ens = _ensemble(result, prices, robust, resampled)
        out["ensemble"] = Deployed(ens.weights, ens.genes, "ensemble", {"method": "ensemble", **ens.record})
    return {k: norm_checked(result, v) for k, v in out.items()}

"""A walk-forward fold with the ``robust:`` section active: the deployed champion (``GA``), the plain GA
(``GA_plain``) and each method of ``robust.methods`` (``GA_<method>``), all from the fold's training window.

Evolutions, each in its own directory inside the fold's (so an interrupted fold resumes each one):

* the fold's directory itself: the **plain GA**, the run's settings without any ``robust`` key;
* ``main/``: the run's settings with its robust fitness and post-processing (resampled fitness, shrinkage,
  ensembles) but no nested selection; not run when those keys are all at their defaults (it would be the plain GA);
* ``inner/``: nested selection's inner evolution (:mod:`genetic_sizer.validation.nested`);
* ``refit/``: nested selection's refit for a generation count other than the run's (the run's own count reuses the
  evolution above: evolutions are deterministic and the generation count only stops the loop).

``GA`` is nested selection's choice when ``robust.nested`` is true, else the main evolution's champion deployed as the
config says (:func:`genetic_sizer.evolution.robust.deploy`). The methods: ``plain`` (the plain GA), ``nested``
(nested selection's choice, run for the report even when ``nested`` is false), ``resampled`` (the main evolution's
champion when ``robust.resample`` is not ``none``), ``shrink`` and ``ensemble`` (post-processings of the main
evolution, :func:`genetic_sizer.evolution.robust.variants`); a method that cannot be built is skipped with the
reason.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from genetic_sizer.config.robust import RobustConfig
from genetic_sizer.data.prices import Prices
from genetic_sizer.evolution import robust as rm
from genetic_sizer.validation.nested import nested_select

__all__ = ["SELECTION_KEYS", "robust_fold"]

SELECTION_KEYS = ("nested", "inner_validation", "inner_purge", "candidates", "refit", "methods")
"""The robust keys that choose among evolutions rather than change one."""


def _without_selection(robust: RobustConfig) -> RobustConfig:
    defaults = RobustConfig()
    return dataclasses.replace(robust, **{k: getattr(defaults, k) for k in SELECTION_KEYS})


def robust_fold(cfg, train: Prices, fold_dir) -> dict:
    """The weights of a fold with ``cfg.robust`` active (see the module notes).

    Returns ``{"weights": {name: array}, "strategy": {name: dict}, "genes": {name: array or None}, "skipped":
    {name: reason}, "result": the EvolutionResult behind GA's trials (None when a classical allocator won),
    "plain": the plain GA's result, "selection": {...}, "inner": nested selection's inner data or None}``.
    """
    from genetic_sizer.runs.evolve import evolve
    from genetic_sizer.runs.rundir import nested

    robust = cfg.robust
    G = cfg.evolution.generations

    def run(sub_cfg, rel: str | None):
        rd = fold_dir if rel is None else nested(fold_dir, rel)
        return evolve(sub_cfg, train, rd, resume=rd.has_checkpoint)

    plain = run(dataclasses.replace(cfg, robust=RobustConfig()), None)
    main_cfg = dataclasses.replace(cfg, robust=_without_selection(robust))
    # the evolution reads only the resample keys and, with a shrink gene, its target: otherwise main is plain
    gene_target = (cfg.evolution.genes or {}).get("shrink") is not None and robust.shrink_toward != "equal_weight"
    same = robust.resample == "none" and not gene_target
    cache = {"main": plain if same or not main_cfg.robust.active else None}

    def main():
        if cache["main"] is None:
            cache["main"] = run(main_cfg, "main")
        return cache["main"]

    def resampled():
        """The champions of the runs on resampled histories (``robust.ensemble: resampled``), else None."""
        if robust.ensemble != "resampled":
            return None
        if "resampled" not in cache:
            from genetic_sizer.runs.resampled import resampled_champions

            cache["resampled"] = resampled_champions(main_cfg, train)
        return cache["resampled"]

    def refit(generations: int):
        if generations == G:
            return main()
        ev = dataclasses.replace(main_cfg.evolution, generations=int(generations))
        return run(dataclasses.replace(main_cfg, evolution=ev), "refit")

    weights: dict[str, np.ndarray] = {}
    strategy: dict[str, dict] = {}
    genes: dict[str, np.ndarray | None] = {}
    skipped: dict[str, str] = {}
    selection: dict = {"method": None}

    def put(name, w, s, g):
        weights[name], strategy[name], genes[name] = np.asarray(w, dtype=np.float64), s, g

    chosen = None
    if robust.nested or "nested" in robust.methods:
        chosen = nested_select(cfg, train, fold_dir, refit_evolve=refit)
        put("GA_nested", chosen["weights"], chosen["strategy"], chosen["genes"])
    post = robust.shrink > 0 or robust.ensemble != "none"
    GA_result = None
    if robust.nested:
        put("GA", chosen["weights"], chosen["strategy"], chosen["genes"])
        GA_result = chosen.get("result")
        selection = {k: v for k, v in chosen.items() if k not in ("weights", "genes", "result", "inner")}
        selection["deployed"] = "nested selection"
    else:
        res = main()
        GA_result = res
        if post:
            d = rm.deploy(res, train, robust, resampled=resampled())
            s = res.strategy(0) if d.genes is None or res.genes is None else res.genes.strategy(d.genes)
            put("GA", d.weights, s, d.genes)
            selection = {"method": d.method, "deployed": d.method, "record": d.record}
        else:
            put("GA", res.champion, res.strategy(0), res.champion_genes)
            selection = {"method": "GA", "deployed": "the main evolution's champion"}
        if chosen is not None:
            selection["nested"] = {k: v for k, v in chosen.items() if k not in ("weights", "genes", "result", "inner")}
    put("GA_plain", plain.champion, plain.strategy(0), plain.champion_genes)
    for m in robust.methods:
        name = f"GA_{m}"
        if m in ("plain", "nested"):
            continue
        if m == "resampled":
            if robust.resample == "none":
                skipped[name] = "robust.resample is none: no resampled fitness to report"
            else:
                res = main()
                put(name, res.champion, res.strategy(0), res.champion_genes)
            continue
        res = main()
        variants = rm.variants(res, train, robust, resampled=resampled())
        if m not in variants:
            skipped[name] = f"robust.variants gave no {m!r} variant for these settings"
            continue
        d = variants[m]
        s = res.strategy(0) if d.genes is None or res.genes is None else res.genes.strategy(d.genes)
        put(name, d.weights, s, d.genes)
    return {
        "weights": weights,
        "strategy": strategy,
        "genes": genes,
        "skipped": skipped,
        "result": GA_result,
        "plain": plain,
        "selection": selection,
        "inner": None if chosen is None else chosen["inner"],
    }

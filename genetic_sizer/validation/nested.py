"""Nested selection (``robust.nested``): inside one training window, an inner validation split chooses what to deploy.

The training window (``train``, bars ``0 .. n-1``) is cut as the walk-forward cuts the data:

* **inner train** ``0 .. a-1``: the GA evolves there (the run's settings, robust fitness included);
* **purge** ``a .. a+p-1``: ``robust.inner_purge`` bars left out of both parts;
* **inner validation** ``a+p .. n-1``: the last ``robust.inner_validation`` of the window (a fraction of its bars or
  a calendar span, as ``evolution.holdout``); every candidate is scored there by the run's objective (the first one
  with several), its weights traded at the close of the bar before the validation part (the last inner-train bar
  when there is no purge; one bar later with ``walkforward.execution_delay: 1``), as a walk-forward fold's are.

The candidates (``robust.candidates``): the inner evolution's hall of fame (``hall_of_fame``: every member, and
the best genome after each generation, so that the validation also picks the generation to stop at; identical
genomes are scored once, under the longest run that yields them), the deployed champion when the run post-processes
it (shrinkage, ensembles: :func:`genetic_sizer.evolution.robust.deploy`) and the classical allocators fitted on the
inner-train part (those infeasible for the genome space are skipped with the reason, as
:func:`~genetic_sizer.evolution.seeding.classical_allocations` skips them). Ties go to the earlier candidate in
that order, classical allocators first (the simpler rule wins a tie).

With ``robust.refit`` (the default) the winning method is refitted on the whole training window: a classical
allocator is fitted there, a GA candidate re-evolves there for the winning number of generations (the member of the
winning rank is deployed); without it the winning weights are deployed as chosen. When 1/N wins, the fold trades 1/N
("trade 1/N"). Everything here reads the training window only.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution import robust as R
from genetic_sizer.validation.holdout import split_holdout

__all__ = ["InnerSplit", "inner_split", "nested_select", "score_candidates"]

INNER = "inner"
"""The inner evolution's run directory inside the fold's."""
GENERATIONS_FILE = "generations.json"
"""The inner evolution's best genome after each generation, written as it goes (a resumed inner run reads it)."""


@dataclasses.dataclass(frozen=True)
class InnerSplit:
    """Bar positions inside the training window: inner train ``[0, train_end]``, purged ``(train_end, val_start)``,
    validation ``[val_start, n_bars)``; weights are traded at the close of ``traded`` (``val_start - 1 + delay``)."""

    n_bars: int
    train_end: int
    val_start: int
    traded: int

    @property
    def purged(self) -> int:
        return self.val_start - self.train_end - 1

    def record(self, prices: Prices) -> dict:
        ix = prices.index
        return {
            "inner_train": {"first_bar": ix[0].isoformat(), "last_bar": ix[self.train_end].isoformat()},
            "purged_bars": self.purged,
            "validation": {"first_bar": ix[self.val_start].isoformat(), "last_bar": ix[-1].isoformat()},
            "traded_at": ix[self.traded].isoformat(),
            "n_validation_bars": self.n_bars - self.val_start,
        }


def inner_split(train: Prices, robust, execution_delay: int = 0) -> InnerSplit:
    """Cut ``train`` into inner train, purge and inner validation (see the module notes)."""
    n = train.n_bars
    _, val = split_holdout(train, robust.inner_validation, key="robust.inner_validation")
    val_start = n - val.n_bars
    train_end = val_start - 1 - int(robust.inner_purge)
    traded = val_start - 1 + int(execution_delay)
    from genetic_sizer.validation.holdout import MIN_TRAIN_BARS

    if train_end + 1 < MIN_TRAIN_BARS or n - traded < 3:
        raise ConfigError(
            f"robust.inner_validation = {robust.inner_validation!r} with robust.inner_purge = {robust.inner_purge} "
            f"leaves {train_end + 1} bar(s) to evolve on and {n - val_start} to validate on, of the {n} bars of a "
            f"training window ({train.index[0].date()} .. {train.index[-1].date()}); at least {MIN_TRAIN_BARS} "
            "and 2 are needed"
        )
    return InnerSplit(n_bars=n, train_end=train_end, val_start=val_start, traded=traded)


def score_candidates(config, window: Prices, weights: np.ndarray, strategies: list[dict]) -> np.ndarray:
    """Each candidate's value of the run's (first) objective on ``window`` (traded at the close of its first bar),
    signed so that higher is better; a wiped-out or liquidated candidate scores -inf."""
    from genetic_sizer.evolution.evaluator import MAXIMIZE, Evaluator

    ev = Evaluator.from_config(window, config)
    bt = ev.backtest_strategies(np.asarray(weights, dtype=np.float64), strategies)
    m = ev.metrics_of(bt)
    obj = config.objective[0]
    score = np.asarray(m[obj], dtype=np.float64) * (1.0 if MAXIMIZE[obj] else -1.0)
    lost = np.asarray(m["wiped_out"]) > 0
    if "liquidated" in m:
        lost |= np.asarray(m["liquidated"]) > 0
    score[lost | ~np.isfinite(score)] = -math.inf
    return score


def _evolve_recording(config, prices: Prices, fold_dir, rel: str) -> tuple[object, list[dict]]:
    """Evolve (or resume) in ``rel`` inside the RunDir ``fold_dir`` and record the best genome after every generation
    (``{"gen", "weights", "genes"}``), saved beside the checkpoints as it goes so that a resumed run keeps the
    generations it had (a checkpoint without them all starts the inner run again)."""
    from genetic_sizer.evolution.loop import Evolution
    from genetic_sizer.evolution.result import result_of
    from genetic_sizer.runs.rundir import RunDir, nested, remove_tree

    rd = nested(fold_dir, rel)
    bests: list[dict] = []
    resume = rd.has_checkpoint
    if resume:
        cp = rd.read_checkpoint()
        path = rd.path / GENERATIONS_FILE
        try:
            saved = json.loads(path.read_text()) if path.is_file() else []
        except (OSError, ValueError):
            saved = []
        saved = [b for b in saved if b.get("gen", 10**9) <= cp.generation]
        if [b["gen"] for b in saved] != list(range(cp.generation + 1)):  # not every generation recorded: start again
            remove_tree(fold_dir, rel)
            rd, resume = nested(fold_dir, rel), False
        else:
            bests = saved
    run = None

    def record(g) -> None:
        res = result_of(run)
        genes = res.champion_genes
        bests.append(
            {
                "gen": int(g.gen),
                "weights": [float(x) for x in res.champion],
                "genes": None if genes is None else [float(x) for x in genes],
            }
        )
        rd.write_text(GENERATIONS_FILE, json.dumps(bests, allow_nan=False))

    run = Evolution(config, prices, None, record)
    if resume:
        run.restore(rd.read_checkpoint(), rd.checkpoint_path)
    else:
        rd = RunDir.create(rd, config)
    return run.run(rd), bests


def _post_processed(robust) -> bool:
    return robust.shrink > 0 or robust.ensemble != "none"


def nested_select(config, train: Prices, fold_dir, *, refit_evolve) -> dict:
    """Nested selection on one training window (see the module notes).

    Parameters
    ----------
    config : RunConfig
        The fold's settings (``robust`` gives the split and the candidates); the inner evolution runs with them.
    train : Prices
        The training window.
    fold_dir : RunDir
        The fold's directory: the inner evolution checkpoints in its ``inner/`` (a resumed fold continues it).
    refit_evolve : callable
        ``refit_evolve(generations) -> EvolutionResult``: the evolution of the whole training window with the run's
        settings for that many generations (the caller reuses a run it already has).

    Returns
    -------
    dict
        ``weights`` and ``genes`` (deployed), ``strategy``, ``method`` ("GA" or an allocator's name), ``candidate``,
        ``generations`` (GA: the generations of the deployed evolution), ``trade`` ("trade 1/N" when 1/N won, else
        None), ``refit``, ``split`` (the windows), ``scores`` ``{candidate: inner validation score}``, ``skipped``
        ``{candidate: reason}``, ``objective``, ``inner_evaluations``, ``note``, and ``inner`` (the inner
        evolution's result and the validation window, for the selection statistics).
    """
    from genetic_sizer.evolution.robust import ENC_TOL, check_no_shrink_gene, effective_assets
    from genetic_sizer.evolution.seeding import classical_allocations
    from genetic_sizer.runs.results import fixed_strategy

    check_no_shrink_gene(config, "nested selection")  # its candidates are scored by their raw weights
    robust = config.robust
    split = inner_split(train, robust, config.walkforward.execution_delay)
    inner_train = train.bars(0, split.train_end + 1)
    window = train.bars(split.traded, split.n_bars)
    result, bests = _evolve_recording(config, inner_train, fold_dir, INNER)
    generations = config.evolution.generations
    fixed = fixed_strategy(config, result.genes)

    names: list[str] = []
    rows: list[np.ndarray] = []
    strategies: list[dict] = []
    meta: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    seen: dict[bytes, str] = {}
    floor = getattr(config.portfolio, "min_effective_assets", None)

    def below_floor(w) -> str | None:
        """Why ``w`` breaks ``portfolio.min_effective_assets`` (None when it meets it or there is no floor)."""
        enc = float(effective_assets(w)[0])
        if floor is None or enc >= floor - ENC_TOL:
            return None
        return f"it has {enc:.6g} effective assets (1 / sum(w^2)), under portfolio.min_effective_assets {floor:g}"

    def add(name, weights, strategy, info, key_genes=None):
        w = np.asarray(weights, dtype=np.float64)
        why_floor = below_floor(w)  # never scored, so never deployed
        if why_floor is not None:
            skipped[name] = why_floor
            return
        key = w.tobytes() + (b"" if key_genes is None else np.asarray(key_genes, dtype=np.float64).tobytes())
        if key in seen:
            skipped[name] = f"the same genome as {seen[key]}"
            return
        seen[key] = name
        names.append(name)
        rows.append(w)
        strategies.append(strategy)
        meta[name] = {**info, "genes": None if key_genes is None else np.asarray(key_genes, dtype=np.float64)}

    classical = [c for c in robust.candidates if c != "hall_of_fame"]
    if classical:
        allocations, why = classical_allocations(inner_train, result.space, config)
        for c in classical:
            if c in allocations:
                add(c, allocations[c], fixed, {"method": c})
            else:
                skipped[c] = why.get(c, "not fitted")
    if "hall_of_fame" in robust.candidates:
        for r in range(len(result.members)):
            genes = None if result.genes is None else result.members_genes[r]
            add(
                f"hall_of_fame[{r}]",
                result.members[r],
                result.strategy(r),
                {"method": "GA", "rank": r, "generations": generations},
                genes,
            )
        # the best genome after each generation: the champion of a run stopped there (the latest generation first,
        # so an unchanged best keeps the longest run; generation 0 is the initial population, not a run length)
        for b in sorted(bests, key=lambda b: -b["gen"]):
            if b["gen"] < 1:
                continue
            strategy = fixed if b["genes"] is None else result.genes.strategy(np.asarray(b["genes"]))
            add(
                f"generation[{b['gen']}]",
                b["weights"],
                strategy,
                {"method": "GA", "rank": 0, "generations": b["gen"]},
                b["genes"],
            )
        if robust.ensemble == "resampled":
            skipped["deployed[resampled]"] = (
                "robust.ensemble resampled is not a nested candidate (its runs on resampled histories would have to "
                "be repeated on the inner train part); the hall of fame and the generations are"
            )
        elif _post_processed(robust):
            d = R.deploy(result, inner_train, robust)
            strategy = fixed if d.genes is None or result.genes is None else result.genes.strategy(d.genes)
            add(
                f"deployed[{d.method}]",
                d.weights,
                strategy,
                {"method": "GA", "rank": 0, "deployed": d.method, "generations": generations},
                d.genes,
            )
    if not names:
        raise ConfigError(
            f"robust.candidates = {list(robust.candidates)}: no candidate is feasible for the genome space "
            f"({'; '.join(f'{k}: {v}' for k, v in skipped.items())})"
        )
    scores = score_candidates(config, window, np.stack(rows), strategies)
    best = int(np.argmax(scores))  # the first of equal scores: classical allocators come first
    winner = names[best]
    info = meta[winner]
    out = {
        "objective": config.objective[0],
        "split": split.record(train),
        "scores": {n: (float(s) if math.isfinite(s) else None) for n, s in zip(names, scores, strict=True)},
        "score_sign": "higher is better (a minimized objective is negated)",
        "skipped": skipped,
        "candidate": winner,
        "method": info["method"],
        "refit": bool(robust.refit),
        "inner_evaluations": int(result.evaluations),
        "trade": "trade 1/N" if winner == "equal_weight" else None,
        "inner": {"result": result, "window": window, "names": names, "rows": np.stack(rows), "strategies": strategies},
    }
    if info["method"] != "GA":
        w, note = rows[best], "fitted on the inner train part (robust.refit: false)"
        if robust.refit:
            allocations, why = classical_allocations(train, result.space, config)
            if winner in allocations and below_floor(allocations[winner]) is not None:
                w = rows[best]
                note = f"kept as fitted on the inner train part: refitted, {below_floor(allocations[winner])}"
            elif winner in allocations:
                w, note = allocations[winner], "refitted on the whole training window"
            else:
                failed = why.get(winner, "not fitted")
                note = f"kept as fitted on the inner train part: refitting on the whole window failed ({failed})"
        out.update(weights=np.asarray(w), genes=None, strategy=fixed, generations=None, note=note)
        return out
    gens = int(info["generations"])
    if not robust.refit:
        idx = names.index(winner)
        genes = None if result.genes is None else info["genes"]
        out.update(
            weights=rows[idx],
            genes=genes,
            strategy=strategies[idx],
            generations=gens,
            note="evolved on the inner train part (robust.refit: false)",
        )
        return out
    full = refit_evolve(gens)
    rank = min(int(info.get("rank", 0)), len(full.members) - 1)
    w, genes, strategy = (
        full.members[rank],
        None if full.genes is None else full.members_genes[rank],
        full.strategy(rank),
    )
    if info.get("deployed"):
        d = R.deploy(full, train, robust)
        w, genes = d.weights, d.genes
        strategy = strategy if genes is None or full.genes is None else full.genes.strategy(genes)
    elif floor is not None:  # the refit's member under the floor (no genome met it): the deployment's repair
        from genetic_sizer.evolution.robust import enforce_effective_assets

        w, _ = enforce_effective_assets(full.space, w, floor, f"nested selection's refitted rank {rank}")
    out.update(
        weights=np.asarray(w),
        genes=genes,
        strategy=strategy,
        generations=gens,
        result=full,
        note=f"re-evolved on the whole training window for {gens} generation(s), rank {rank} deployed",
    )
    return out

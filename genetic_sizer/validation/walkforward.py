"""Walk-forward evolution: evolve on a train window, hold the champion over the following test window, repeat.

The folds (:mod:`genetic_sizer.validation.folds`): rolling train windows (expanding from the first bar when
``anchored``), ``purge`` bars left out between a train window's end and its test window, test windows back to back
without overlap, windows the data does not cover left out and listed. Windows are counted in bars of closes
(``train: 504``) or in calendar spans (``train: "3Y", test: "1Y"``: test windows start on the first bar of each
period). A fold's weights are traded at the close of the last bar before its test window (``execution_delay: 1``:
one bar later) and held until the next fold's are (:func:`~genetic_sizer.validation.stitch.held_windows`).

A run at a storage URL stores each running fold's evolution checkpoints under ``folds/fold-NNN/`` (on Ray too: the
task writes them there), so a job that is stopped resumes every fold from where it was; they are removed once the
fold's result (``folds/fold-NNN.json``) is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from genetic_sizer.backtest.riskfree import RiskFree
from genetic_sizer.backtest.stats import deflated_sharpe_of, returns_of
from genetic_sizer.data.prices import Prices
from genetic_sizer.evolution.loop import check_run
from genetic_sizer.runs import champion as C
from genetic_sizer.runs.results import champion_record, fixed_strategy
from genetic_sizer.runs.rundir import RunDir, check_kind, discard_unstarted, nested, remove_tree
from genetic_sizer.runs.strategies import load_data as load_from_config  # data.strategies: the runs layer
from genetic_sizer.validation.excess import OOS_TRIALS, excess_dsr, trials_pbo
from genetic_sizer.validation.folds import Fold, fold_config, plan_folds
from genetic_sizer.validation.holdout import window_record
from genetic_sizer.validation.stitch import (
    WalkForwardResult,
    _jsonable,
    _metrics_dict,
    check_no_vol_target_gene,
    deployed_text,
    held_windows,
    stitch,
)

__all__ = ["finalize_walkforward", "run_fold", "run_walkforward", "walkforward_run"]

PBO_CANDIDATES = 1000
PBO_BLOCKS = 16


def run_fold(config, prices: Prices, fold: Fold, run_dir=None, resume: bool = False) -> dict:
    """Evolve fold ``fold`` on its train window and fit the classical allocations there.

    Everything returned depends only on the bars of the train window (``prices`` is the whole window; the test
    window is not read here). With ``run_dir`` the evolution checkpoints there (and ``resume`` continues it);
    without, it runs in a temporary directory that is removed.

    Returns a JSON-able dict: ``number``, ``evaluations``, ``weights`` ``{strategy: [w, ...]}``, ``strategy``
    ``{strategy: {"rebalance": policy, "threshold": band or None}}`` (with a leverage gene also ``"leverage"``; how
    each keeps its weights: the GA champion by its evolved genes when the run evolves them, the others by the run's
    policy and leverage), ``genes`` (the GA champion's
    genes, or None), ``skipped`` ``{strategy: reason}``, ``in_sample`` ``{strategy: {metric: value}}``, ``trials``,
    ``deflated_sharpe``, ``pbo`` (None with ``pbo_note`` when it cannot be computed), ``logbook``,
    ``excess_deflated_sharpe`` (:func:`~genetic_sizer.validation.excess.excess_dsr`) and ``representative_pbo``
    (:func:`fold_representative_pbo`).

    With the ``robust:`` section active (:mod:`genetic_sizer.validation.methods`) ``weights`` also holds ``GA_plain``
    and each ``GA_<method>``, ``GA`` being the deployed champion (nested selection's choice, 1/N included, or the
    champion deployed as the config says); ``selection`` records how it was chosen (nested selection: every
    candidate's inner validation score, the winner, the generations, "trade 1/N"), ``method_genes`` each method's
    strategy genes. Its evolutions checkpoint in subdirectories of ``run_dir`` (a temporary one without).
    """
    import tempfile

    from genetic_sizer.backtest import stats
    from genetic_sizer.evolution.evaluator import Evaluator
    from genetic_sizer.evolution.seeding import classical_allocations
    from genetic_sizer.runs.evolve import evolve

    cfg = fold_config(config, fold.number)
    train = prices.bars(fold.train_start, fold.train_end + 1)
    if cfg.robust.active and run_dir is None:
        with tempfile.TemporaryDirectory(prefix=f"gs-fold{fold.number}-") as tmp:
            return run_fold(config, prices, fold, run_dir=RunDir(Path(tmp) / "fold"))
    selection = inner = None
    ga_deployed = True
    if cfg.robust.active:
        from genetic_sizer.validation.methods import robust_fold

        got = robust_fold(cfg, train, RunDir(run_dir))
        result = got["result"] or got["plain"]
        ga_deployed = got["result"] is not None  # False: nested selection deployed an allocator (1/N included)
        allocations, skipped = classical_allocations(train, result.space, cfg)
        skipped = {**got["skipped"], **skipped}
        weights = {"GA": got["weights"]["GA"], **got["weights"], **allocations}  # GA first
        selection, inner = got["selection"], got["inner"]
    else:
        if run_dir is None:
            with tempfile.TemporaryDirectory(prefix=f"gs-fold{fold.number}-") as tmp:
                result = evolve(cfg, train, tmp)
        else:
            result = evolve(cfg, train, run_dir, resume=resume)
        allocations, skipped = classical_allocations(train, result.space, cfg)
        weights = {"GA": result.champion, **allocations}
        got = {"strategy": {"GA": result.strategy(0)}, "genes": {"GA": result.champion_genes}}
    evaluator = Evaluator.from_config(train, cfg)
    names = list(weights)
    strategies = {s: got["strategy"].get(s) or fixed_strategy(cfg, result.genes) for s in names}
    bt = evaluator.backtest_strategies(np.stack([weights[s] for s in names]), [strategies[s] for s in names])
    metrics = evaluator.metrics_of(bt)
    genes = got["genes"]["GA"]
    out = {
        "number": fold.number,
        "seed": cfg.evolution.seed,
        "evaluations": result.evaluations,
        "weights": {s: [float(x) for x in weights[s]] for s in names},
        "strategy": strategies,
        "genes": None if genes is None else [float(x) for x in genes],
        "skipped": dict(skipped),
        "in_sample": {s: _metrics_dict(metrics, i) for i, s in enumerate(names)},
        "trials": dict(result.trials),
        "deflated_sharpe": deflated_sharpe_of(bt.value[:, 0], cfg.portfolio.init_cash, result.trials, evaluator.rf),
        "pbo": None,
        "pbo_note": None,
        "logbook": result.logbook,
    }
    if selection is not None:
        out["selection"] = selection
        out["method_genes"] = {s: (None if g is None else [float(x) for x in g]) for s, g in got["genes"].items()}
    sample = result.trial_sample
    n_returns = train.n_bars
    trial_returns = None
    if sample is None or len(sample) < 2:
        out["pbo_note"] = f"fewer than 2 distinct genomes evaluated ({0 if sample is None else len(sample)})"
    elif n_returns < PBO_BLOCKS:
        out["pbo_note"] = f"the train window has {n_returns} returns, fewer than the {PBO_BLOCKS} blocks CSCV cuts"
    else:
        sample_genes = None if result.genes is None else result.trial_sample_genes[:PBO_CANDIDATES]
        values = evaluator.backtest(sample[:PBO_CANDIDATES], genes=sample_genes).value
        trial_returns = returns_of(values, cfg.portfolio.init_cash, evaluator.rf)  # trials' Sharpe: excess returns
        out["pbo"] = float(stats.pbo(trial_returns, n_blocks=PBO_BLOCKS))
        out["pbo_candidates"] = int(min(len(sample), PBO_CANDIDATES))
    fold_returns = returns_of(bt.value, cfg.portfolio.init_cash, evaluator.rf)
    out["excess_deflated_sharpe"] = excess_dsr(
        fold_returns[:, 0],
        fold_returns[:, names.index("equal_weight")] if "equal_weight" in names else None,
        trial_returns,
        result.trials,
        train.periods_per_year,
        cfg.evolution.seed,
    )
    out["representative_pbo"] = fold_representative_pbo(cfg, inner)
    if not ga_deployed:  # the GA's trials are not what was deployed: their statistics would describe another portfolio
        why = f"no GA was deployed (nested selection chose {selection.get('method') or 'an allocator'})"
        out["deflated_sharpe"], out["pbo"], out["pbo_note"] = None, None, why
        out["excess_deflated_sharpe"] = {"note": why}
    if inner is None and sample is not None and len(sample) >= 2:  # for PBO on the test window (stitch)
        k = min(len(sample), OOS_TRIALS)
        out["oos_trials"] = {
            "weights": sample[:k].tolist(),
            "genes": None if result.genes is None else result.trial_sample_genes[:k].tolist(),
        }
    return out


def fold_representative_pbo(cfg, inner) -> dict:
    """PBO over the cluster representatives of the inner evolution's trials, on the inner validation window they
    were not bred on (:func:`~genetic_sizer.validation.excess.trials_pbo`); without nested selection every trial was
    bred on the whole training window, which CSCV must not split: the fold's held window is used instead, after the
    fact (:func:`~genetic_sizer.validation.stitch.stitch`, from ``oos_trials``)."""
    if inner is None:
        return {"pbo": None, "note": "the trials were bred on the whole train window: measured on the test window"}
    res = inner["result"]
    n = 0 if res.trial_sample is None else min(len(res.trial_sample), PBO_CANDIDATES)
    genes = None if res.genes is None else res.trial_sample_genes[:n]
    w = None if res.trial_sample is None else res.trial_sample[:n]
    return trials_pbo(cfg, inner["window"], w, genes, "inner validation")


def _fold_task(shared, task: tuple[Fold, str | None]) -> dict:
    """One fold as a Ray task (``shared`` = (config, prices), put in the object store once). ``task`` is the fold
    and the storage URL its evolution checkpoints to (a run at a URL), or None (no checkpoints)."""
    from genetic_sizer.storage import remote

    config, prices = shared
    fold, store = task
    if store is None:
        return run_fold(config, prices, fold)
    remote.forget_stage(store)  # read what is stored now, not what this worker process staged before
    try:
        fold_dir = RunDir(store)
        fold_dir.pull()
        return run_fold(config, prices, fold, run_dir=fold_dir, resume=fold_dir.has_checkpoint)
    finally:
        remote.forget_stage(store)


def _fold_path(run_dir, k: int):
    from pathlib import Path

    return Path(run_dir) / "folds" / f"fold-{k:03d}.json"


def _fold_dir(k: int) -> str:
    """A running fold's evolution (checkpoints, logbook), inside the run directory."""
    return f"folds/fold-{k:03d}"


def _read_fold(path, fold: Fold) -> dict | None:
    import json

    from genetic_sizer.errors import RunDirError

    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path}: not a readable fold result ({exc}); delete it to run the fold again") from None
    if not isinstance(rec, dict) or rec.get("number") != fold.number or "GA" not in rec.get("weights", {}):
        raise RunDirError(f"{path}: not the result of fold {fold.number}; delete it to run the fold again")
    return rec


def _write_fold(path, rec: dict) -> None:
    import json

    from genetic_sizer.storage import files

    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_text(path, json.dumps(_jsonable(rec), allow_nan=False) + "\n")


def run_walkforward(
    config,
    prices: Prices,
    run_dir,
    *,
    resume: bool = False,
    on_fold=None,
) -> WalkForwardResult:
    """Walk forward: evolve each fold on its train window, hold its champion over its test window, refit the
    classical allocations on the same windows, and stitch every strategy's out-of-sample portfolio.

    Parameters
    ----------
    config : RunConfig
        The run's settings; ``walkforward`` gives the folds, ``parallel.backend: ray`` runs the folds as Ray
        tasks (one fold per task), ``serial`` one after the other in this process.
    prices : Prices
        The whole window (every fold's train and test bars).
    run_dir : path or RunDir
        Where the fold results (``folds/fold-NNN.json``) are saved as each fold finishes, and (serially) each
        running fold's evolution checkpoints. With ``resume``, finished folds are read back and a fold
        interrupted mid-evolution continues from its checkpoint.
    on_fold : callable, optional
        ``on_fold(fold, result, done, total)`` after each fold (progress).

    Returns
    -------
    WalkForwardResult
    """
    from genetic_sizer.evolution.robust import check_no_shrink_gene

    check_no_shrink_gene(config, "walk-forward")  # before any fold runs
    check_no_vol_target_gene(config)
    rd = RunDir(run_dir)
    if resume:
        rd.pull()  # a run at a storage URL: its finished folds and the running ones' checkpoints
    plan = plan_folds(prices.index, config.walkforward)
    folds = plan.folds
    results: list[dict | None] = [(_read_fold(_fold_path(rd.path, f.number), f) if resume else None) for f in folds]
    todo = [f for f, r in zip(folds, results, strict=True) if r is None]
    for f, r in zip(folds, results, strict=True):
        if r is not None and (rd.path / _fold_dir(f.number)).exists():  # stopped before its checkpoints went
            remove_tree(rd, _fold_dir(f.number))

    def finished(fold: Fold, rec: dict) -> None:
        _write_fold(_fold_path(rd.path, fold.number), rec)
        results[fold.number] = rec
        rd.sync()  # a run at a storage URL keeps every finished fold
        # the fold's checkpoints are no longer needed: its result (logbook included) is saved
        remove_tree(rd, _fold_dir(fold.number))
        if on_fold is not None:
            on_fold(fold, rec, sum(r is not None for r in results), len(folds))

    if todo and config.parallel.backend == "ray":
        from genetic_sizer.cluster.raymap import run_tasks

        # a run at a storage URL: each task checkpoints its fold there (a worker cannot reach a local directory)
        stores = [None if rd.url is None else f"{rd.url}/{_fold_dir(f.number)}" for f in todo]
        run_tasks(
            _fold_task,
            (config, prices),
            list(zip(todo, stores, strict=True)),
            address=config.parallel.address,
            on_result=lambda i, rec: finished(todo[i], rec),
        )
    else:
        for fold in todo:
            fold_dir = nested(rd, _fold_dir(fold.number))
            finished(fold, run_fold(config, prices, fold, run_dir=fold_dir, resume=fold_dir.has_checkpoint))

    return stitch(config, prices, folds, results, plan.dropped)


def _last_fold_analytics(wf, cfg, train: Prices, held: Prices, record: dict) -> dict:
    """The live champion's diversification and attribution on the last fold's train window (in sample, beside that
    fold's refitted allocations, each kept by its fold strategy) and over the bars its weights were held after it
    (out of sample: the stitched values of ``oos_values.csv`` there, the walk-forward's own out-of-sample figures)."""
    from genetic_sizer.evolution.evaluator import Evaluator
    from genetic_sizer.runs.analytics import account_scale, champion_analytics

    res = wf.fold_results[-1]
    names = ["GA", *(s for s in res["weights"] if s != "GA" and s in wf.strategies)]
    weights = np.stack([np.asarray(wf.champion, dtype=np.float64), *(res["weights"][s] for s in names[1:])])
    strategies = [res["strategy"].get(s) for s in names]
    ins = Evaluator.from_config(train, cfg).backtest_strategies(weights, strategies).value
    at = wf.oos_index.get_loc(held.index[0])
    oos = wf.oos_values[at : at + held.n_bars, [wf.strategies.index(s) for s in names]]
    windows = [("in_sample", train, ins), ("out_of_sample", held, oos)]
    return champion_analytics(cfg, windows, names, weights, account_scale(cfg, record))


def finalize_walkforward(wf, run_dir: str | Path | RunDir, *, plots: bool = True) -> dict:
    """Write a finished walk-forward's files: ``walkforward.json``, ``oos_values.csv``, ``report.html`` and,
    last, ``champion.json``: the last fold's GA champion (trained on the most recent window), checked against
    the reference engine on that window, with its walk-forward record attached. Returns the champion record."""
    import json

    from genetic_sizer.evolution.space import GenomeSpace

    rd = RunDir(run_dir)
    config = wf.config
    last = wf.folds[-1]
    cfg = fold_config(config, last.number)
    train = wf.last_train
    pf = config.portfolio
    space = GenomeSpace.from_config(train.symbols, pf)
    res = wf.fold_results[-1]
    record = champion_record(
        cfg, train, space, wf.champion, rank=0, n_members=1, evaluations=res["evaluations"], genes=wf.champion_genes
    )
    what = "GA champion" if "selection" not in res else f"deployed GA ({deployed_text(res)})"
    record["selection"] = (
        f"{what} of the last of {len(wf.folds)} walk-forward folds (trained on "
        f"{train.index[0].date()} .. {train.index[-1].date()}, the most recent train window)"
    )
    record["trials"] = res["trials"]
    record["deflated_sharpe"] = res["deflated_sharpe"]
    record["in_sample"] = window_record(train)
    traded, until = held_windows(wf.folds, config.walkforward.execution_delay)[-1]
    held = wf.prices.bars(traded, until + 1)  # from the close its weights were traded at: the returns they earned
    record["out_of_sample"] = {**window_record(held), "metrics": wf.fold_oos[-1].get("GA")}
    record["analytics"] = _last_fold_analytics(wf, cfg, train, held, record)
    record["walkforward"] = {
        "folds": len(wf.folds),
        "out_of_sample_window": wf.record["out_of_sample_window"],
        "out_of_sample": {s: wf.oos[s] for s in ("GA", "equal_weight") if s in wf.oos},
        "deflated_sharpe": wf.record["deflated_sharpe"],
        "pbo": wf.record["pbo"],
    }
    rd.write_text(RunDir.WALKFORWARD, json.dumps(wf.record, indent=1, allow_nan=False) + "\n")
    rows = [["time", *wf.strategies]]
    rows += [[t.isoformat(), *(repr(float(x)) for x in v)] for t, v in zip(wf.oos_index, wf.oos_values, strict=True)]
    rd.write_csv(RunDir.OOS_VALUES, rows)
    if plots:
        from genetic_sizer.runs.report import write_report

        write_report(rd, prices=wf.prices)
    C.write(record, rd.champion_path)  # last: its presence means the results are complete
    rd.sync()  # a run at a storage URL: every result, champion.json last
    return record


def walkforward_run(
    config,
    run_dir: str | Path | RunDir,
    *,
    resume: bool = False,
    plots: bool = True,
    on_event: Callable[..., None] | None = None,
    on_fold: Callable | None = None,
) -> tuple[WalkForwardResult, dict]:
    """``genetic-sizer walkforward``: load the data of ``config``, cut the folds, check the first fold's run (before
    a directory is created), create ``run_dir`` (unless ``resume``: continue the walk-forward in it), run every
    fold (:func:`run_walkforward`) and write the results (:func:`finalize_walkforward`). Returns the walk-forward
    and the live champion's record.

    ``on_event(kind, **info)`` is told how it goes, in this order: ``"loading"`` (``source``), ``"data"``
    (``config``, ``prices``, ``folds``), ``"run_dir"`` (``run_dir``, ``resume``) and ``"finalizing"`` (``config``)
    when every fold is done; ``"data"`` also gives ``dropped``, the test windows left out (a list of records with a
    ``reason``, :class:`~genetic_sizer.validation.folds.FoldPlan`). ``on_fold(fold, bounds, result, done, total)`` is
    called after each fold, ``bounds`` being its windows' first and last bars (:meth:`Fold.bounds`).

    The folds are cut and checked (a test window too short to measure, a train window too short, no fold) before
    anything evolves or is written, on ``resume`` too. ``resume`` of a run that ``evolve`` made is refused
    (:func:`~genetic_sizer.runs.rundir.check_kind`) before anything is read. A new run that stops before any fold
    wrote anything (a Ray address that fails, Ctrl-C) is removed again
    (:func:`~genetic_sizer.runs.rundir.discard_unstarted`)."""
    from genetic_sizer.evolution.robust import check_no_shrink_gene

    check_no_shrink_gene(config, "walk-forward")  # before any data is loaded or directory made
    check_no_vol_target_gene(config)
    tell = on_event or (lambda kind, **info: None)
    if resume:  # an evolve run is never continued as a walk-forward (its champion.json would be replaced)
        check_kind(RunDir.open_existing(run_dir), "walkforward")
    tell("loading", source="strategies" if config.data.strategies else config.data.source)
    prices = load_from_config(config.data)
    plan = plan_folds(prices.index, config.walkforward)
    first = plan.folds[0]
    check_run(fold_config(config, 0), prices.bars(first.train_start, first.train_end + 1))
    RiskFree.of(config.portfolio.risk_free).rates(prices)  # a bar without a risk-free rate: refused before any fold
    tell("data", config=config, prices=prices, folds=plan.folds, dropped=plan.dropped)
    if not resume:
        run_dir = RunDir.create(run_dir, config)
    tell("run_dir", run_dir=run_dir, resume=resume)

    def fold_done(fold: Fold, rec: dict, done: int, total: int) -> None:
        if on_fold is not None:
            on_fold(fold, fold.bounds(prices.index), rec, done, total)

    try:
        wf = run_walkforward(config, prices, run_dir, resume=resume, on_fold=fold_done)
    except BaseException:
        if not resume:  # e.g. a Ray address that fails: a run that never started leaves nothing behind
            try:
                discard_unstarted(run_dir)
            except Exception:
                pass  # the error that stopped the run is the one to report
        raise
    tell("finalizing", config=config)
    champion = finalize_walkforward(wf, run_dir, plots=plots)
    return wf, champion

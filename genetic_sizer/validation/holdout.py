"""A held-out final window (``genetic-sizer evolve``): split it off, and write an evolution's results beside it.

:func:`finalize` writes, through the run's :class:`~genetic_sizer.runs.rundir.RunDir` and each file atomically:
``hall_of_fame.csv`` (or ``pareto.csv`` for NSGA-II runs) with every metric and weight of each member, in sample and
on the held-out window, ``summary.csv`` (champion beside equal weight and the classical allocations, both windows),
the plots and report and, last, ``champion.json`` (re-simulated with the reference engine before anything is
written: vectorbt for a spot run, the plain-Python loop :func:`genetic_sizer.backtest.reference.reference_genome` for
a perp run; a disagreement fails the run). :func:`export` writes the champion file of any ranked member of a
finished run. :func:`evolve_run` is the ``evolve`` command's work: load, split, check, evolve, finalize.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from genetic_sizer.backtest.metrics import METRICS
from genetic_sizer.backtest.riskfree import RiskFree
from genetic_sizer.backtest.stats import deflated_sharpe_of
from genetic_sizer.cluster.raymap import close_map, make_map
from genetic_sizer.config import RunConfig
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError, RunDirError
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.evolution.loop import check_run
from genetic_sizer.evolution.result import EvolutionResult
from genetic_sizer.runs import champion as C
from genetic_sizer.runs.evolve import evolve, load_result
from genetic_sizer.runs.results import (
    RunReport,
    _members_rows,
    _summary_rows,
    _values_rows,
    champion_record,
    fixed_strategy,
    summary_metrics,
)
from genetic_sizer.runs.rundir import RunDir, RunPlan, run_kind
from genetic_sizer.runs.strategies import load_data as load_from_config  # data.strategies: the runs layer
from genetic_sizer.storage.files import check_new_file
from genetic_sizer.validation.folds import MIN_TRAIN_BARS, _offset
from genetic_sizer.vocab import parse_holdout, parse_window

__all__ = [
    "evolve_run",
    "export",
    "finalize",
    "load_run",
    "split_holdout",
    "traded_window",
    "validation_record",
    "window_record",
]


def split_holdout(prices: Prices, holdout, key: str = "evolution.holdout") -> tuple[Prices, Prices | None]:
    """Split off the final window that ``genetic-sizer evolve`` keeps out of the evolution.

    ``holdout`` is a fraction of the bars in (0, 1), a number of bars, a calendar span (``"1Y"``: the bars after
    the last bar minus one year) or 0 (no holdout: ``(prices, None)``). The train part is ``[0, n - k)``, the
    held-out part ``[n - k, n)``; both keep the data's bars per year.
    """
    holdout = parse_holdout(key, holdout)
    if holdout == 0:
        return prices, None
    n = prices.n_bars
    if isinstance(holdout, float):
        k = round(n * holdout)
    elif isinstance(holdout, int):
        k = holdout
    else:
        count, unit = parse_window(key, holdout)
        cutoff = prices.index[-1] - _offset(count, unit)
        k = int((prices.index > cutoff).sum())
    if k < 2 or n - k < MIN_TRAIN_BARS:
        raise ConfigError(
            f"{key} = {holdout!r} leaves {n - k} bar(s) to evolve on and {k} held out of {n} "
            f"({prices.index[0].date()} .. {prices.index[-1].date()}); at least {MIN_TRAIN_BARS} and 2 are needed"
        )
    return prices.bars(0, n - k), prices.bars(n - k, n)


def traded_window(train: Prices, holdout: Prices, execution_delay: int = 0) -> Prices:
    """The bars the out-of-sample figures of a held-out window are measured on: from the close the champion is traded
    at to the last held-out bar. ``execution_delay`` 0 (``walkforward.execution_delay``, the default): the close of
    the last in-sample bar, so every return of the held-out window is earned; 1: the close of its first bar (a one-bar
    delay: the return from the last in-sample close to it is not)."""
    if execution_delay == 0:
        return _joined(train, holdout).bars(train.n_bars - 1, train.n_bars + holdout.n_bars)
    return holdout


def window_record(prices: Prices) -> dict:
    """A window's first and last bar (ISO-8601) and its number of bars."""
    return {"first_bar": prices.index[0].isoformat(), "last_bar": prices.index[-1].isoformat(), "n_bars": prices.n_bars}


def finalize(
    result: EvolutionResult,
    prices: Prices,
    run_dir: str | Path | RunDir,
    *,
    plots: bool = True,
    holdout: Prices | None = None,
    report_prices: Prices | None = None,
    resampled: list | None = None,
) -> RunReport:
    """Write the members, the summary, the plots, the report and the verified champion of a finished run.

    ``prices`` is the window the run evolved on (in sample); ``holdout`` the held-out window after it (out of
    sample: the champion and every classical allocation, fitted on ``prices``, are bought with ``init_cash`` at the
    close of the last in-sample bar, :func:`traded_window`, and kept with the run's rebalancing and costs). The
    champion is checked against the reference engine (vectorbt for spot, the plain-Python perp loop for perps)
    before anything is written (a disagreement fails the run), and ``champion.json`` is written last; every file is
    written atomically. Finalizing again (``evolve --resume`` of a finished run, e.g. after Ctrl-C during this step)
    rewrites the same files. ``report_prices`` (the whole window) saves the report from loading it again.

    The champion is what the config's ``robust:`` section deploys (:func:`genetic_sizer.evolution.robust.deploy`:
    the plain champion by default, else an ensemble and/or its shrinkage; ``resampled``: the champions of the runs
    on resampled histories, for ``robust.ensemble: resampled``); its file records how it was built
    (``construction``), and the summary shows the plain champion beside it (``plain_champion``).
    """
    from genetic_sizer.allocators.toolkit import allocator_notes
    from genetic_sizer.evolution.robust import deploy, effective_weights
    from genetic_sizer.evolution.seeding import classical_allocations
    from genetic_sizer.runs.analytics import account_scale, champion_analytics
    from genetic_sizer.validation.excess import excess_record

    rd = RunDir(run_dir)
    config, space = result.config, result.space
    evaluator = Evaluator.from_config(prices, config)
    deployed = deploy(result, prices, config.robust, resampled=resampled)
    record = champion_record(
        config,
        prices,
        space,
        deployed.weights,
        rank=0,
        n_members=len(result.members),
        evaluations=result.evaluations,
        genes=deployed.genes,
    )
    if deployed.method != "plain":
        record["selection"] = f"deployed by robust: {deployed.method} (see construction), {record['selection']}"
    record["construction"] = deployed.record
    record["allocators"] = allocator_notes(prices, config.allocators)  # how the toolkit's allocators were fitted
    files = []
    genes = result.members_genes if result.genes is not None else None
    scored = effective_weights(evaluator, result.members, genes)  # with a shrink gene: the shrunk weights
    member_metrics = evaluator.metrics(scored, genes=genes)
    member_oos = None
    if holdout is not None:
        held = traded_window(prices, holdout, config.walkforward.execution_delay)
        member_oos = Evaluator.from_config(held, config).metrics(scored, genes=genes)
    members_path = rd.members_path(config.multi_objective)
    member_strategies = [result.strategy(k) for k in range(len(result.members))] if genes is not None else None
    rows = _members_rows(prices.symbols, result.members, member_metrics, member_oos, member_strategies)
    files.append(rd.write_csv(members_path.name, rows))

    if "allocations" in result.seeds:  # fitted on this window when the run was seeded
        allocations, skipped = result.seeds["allocations"], result.seeds["skipped"]
    else:
        allocations, skipped = classical_allocations(prices, space, config)
    shown_plain = deployed.method != "plain"  # the plain champion beside the deployed one
    names = ["champion", *(["plain_champion"] if shown_plain else []), *allocations]
    rows_w = [deployed.weights, *([result.champion] if shown_plain else []), *allocations.values()]
    weights = np.stack(rows_w)
    # the champion keeps its weights by its own strategy; the classical allocations by the run's policy
    strategies = {n: fixed_strategy(config, result.genes) for n in names}
    strategies["champion"] = result.strategy(0) if deployed.genes is None else result.genes.strategy(deployed.genes)
    if shown_plain:
        strategies["plain_champion"] = result.strategy(0)
    bt = evaluator.backtest_strategies(weights, list(strategies.values()))
    metrics = evaluator.metrics_of(bt)
    shown = summary_metrics(config)
    summary = {n: {k: float(metrics[k][i]) for k in shown} for i, n in enumerate(names)}
    windows = [("in_sample", prices, bt.value)]
    summary_oos = None
    if holdout is not None:
        oos_eval = Evaluator.from_config(held, config)
        bt_oos = oos_eval.backtest_strategies(weights, list(strategies.values()))
        m_oos = oos_eval.metrics_of(bt_oos)
        summary_oos = {n: {k: float(m_oos[k][i]) for k in shown} for i, n in enumerate(names)}
        windows.append(("out_of_sample", held, bt_oos.value))
    record.update(validation_record(config, deployed.weights, prices, holdout, result.trials, deployed.genes))
    ew = bt.value[:, names.index("equal_weight")] if "equal_weight" in names else None  # 1/N: the bar to beat
    record["excess_deflated_sharpe"] = excess_record(config, evaluator, result, bt.value[:, 0], ew)
    scale = account_scale(config, record)  # perp weights are of leverage x equity
    record["analytics"] = champion_analytics(config, windows, names, weights, scale)  # diversification, attribution
    kept = strategies if result.genes is not None else None
    files.append(rd.write_csv(RunDir.SUMMARY, _summary_rows(summary, summary_oos, shown, kept)))
    files.append(rd.write_csv(RunDir.VALUES, _values_rows(names, windows)))

    if plots:
        from genetic_sizer.runs import plots as P
        from genetic_sizer.runs.report import write_report

        def plot(name, draw):
            with rd.atomic(name) as tmp:
                draw(tmp)
            files.append(rd.file(name))

        plot("fitness.png", lambda p: P.fitness_curve(result.logbook, config.objective, p, genes=result.genes))
        title = "Champion allocation" + (f" ({deployed.method})" if shown_plain else "")
        if result.genes is not None:
            title += f" ({result.genes.describe(deployed.genes)})"
        plot("allocation.png", lambda p: P.allocation(prices.symbols, deployed.weights, p, title=title))
        panels = [(w, p.index, {n: v[:, i] for i, n in enumerate(names)}) for w, p, v in windows]
        plot("equity.png", lambda p: P.equity_windows(panels, p))
        if config.multi_objective and len(config.objective) >= 2:
            plot("pareto.png", lambda p: P.pareto(result.members_fitness, config.objective, 0, p))
        C.write(record, rd.champion_path)  # the report reads it; written again, last, below
        full = report_prices or _joined(prices, holdout)
        files.append(write_report(rd, prices=full))
    champion_path = C.write(record, rd.champion_path)  # last: its presence means the results are complete
    files.append(champion_path)
    rd.sync()  # a run at a storage URL: every result, champion.json last
    return RunReport(rd.path, champion_path, record, summary, skipped, files, summary_oos)


def validation_record(
    config: RunConfig, weights, train: Prices, holdout: Prices | None, trials: dict, genes=None
) -> dict:
    """What a champion file says about how far to trust its figures: the trials that selected it
    (``{"n", "sharpe_variance"}``), its deflated Sharpe ratio in sample, the in-sample window, and its metrics on
    the held-out window (``out_of_sample``: None when nothing was held out; its ``first_bar`` is the close the
    champion is traded at, :func:`traded_window`: by default the last in-sample bar), all with the strategy its
    ``genes`` say (when the run evolves genes)."""
    w = np.asarray(weights, dtype=np.float64)[None, :]
    g = None if genes is None or np.size(genes) == 0 else np.asarray(genes, dtype=np.float64)[None, :]
    evaluator = Evaluator.from_config(train, config)
    value = evaluator.backtest(w, genes=g).value[:, 0]
    out = {
        "trials": dict(trials),
        "deflated_sharpe": deflated_sharpe_of(value, config.portfolio.init_cash, trials, evaluator.rf),
        "in_sample": window_record(train),
        "out_of_sample": None,
    }
    if holdout is not None:
        delay = config.walkforward.execution_delay
        held = traded_window(train, holdout, delay)
        m = Evaluator.from_config(held, config).metrics(w, genes=g)
        out["out_of_sample"] = {
            **window_record(held),
            "execution_delay": delay,
            "metrics": {k: float(m[k][0]) for k in METRICS if k in m},
        }
    return out


def _joined(train: Prices, holdout: Prices | None) -> Prices:
    if holdout is None:
        return train
    funding = None
    if train.funding is not None and holdout.funding is not None:
        funding = np.vstack([train.funding, holdout.funding])
    offset = None
    if train.utc_offset is not None or holdout.utc_offset is not None:  # the local calendar of calendar rebalances
        parts = [np.zeros(p.n_bars, np.int64) if p.utc_offset is None else p.utc_offset for p in (train, holdout)]
        offset = np.concatenate(parts)
    return Prices(
        close=np.vstack([train.close, holdout.close]),
        index=train.index.append(holdout.index),
        symbols=train.symbols,
        source=train.source,
        periods_per_year=train.periods_per_year,
        notes=train.notes,
        funding=funding,
        utc_offset=offset,
        fields={k: np.vstack([v, holdout.fields[k]]) for k, v in train.fields.items() if k in holdout.fields},
        margin=train.margin,
    )


def load_run(run_dir: str | Path | RunDir) -> tuple[RunConfig, Prices, Prices | None]:
    """The resolved config of a run directory, the window it evolved on and its held-out window (None when the
    run held nothing out), as ``genetic-sizer evolve`` split them."""
    rd = RunDir.open_existing(run_dir)
    config = rd.load_config()
    train, holdout = split_holdout(load_from_config(config.data), config.evolution.holdout)
    return config, train, holdout


def _walkforward_champion(rd: RunDir) -> str:
    """Where a walk-forward run's champion is (``export`` ranks the members of an evolve run only)."""
    where = rd.location
    if rd.champion_path.is_file():
        found = (
            f"its champion, the GA champion of the last fold (the one to trade), is {where}/{RunDir.CHAMPION}: use "
            f"that file (genetic-sizer size --champion {where}/{RunDir.CHAMPION})"
        )
    else:
        found = (
            f"its champion is written to {where}/{RunDir.CHAMPION} when the walk-forward finishes (genetic-sizer "
            f"walkforward --resume --out {where})"
        )
    return (
        f"{where} is a walk-forward run: {found}; every fold's GA weights are in {where}/{RunDir.WALKFORWARD}. "
        "export writes a ranked member of an evolve run's hall of fame or Pareto front"
    )


def export(run_dir: str | Path | RunDir, out: str | Path, rank: int = 0, *, force: bool = False) -> Path:
    """Write the champion file of member ``rank`` (hall of fame order, or compromise order on a Pareto front).

    ``out`` must be a file path: a directory (or a path under a file), an existing file without ``force``, or a
    directory that does not accept new files, is a :class:`ConfigError`, raised before anything is loaded or
    written. The file is written atomically. A walk-forward run is refused with where its champion is.
    """
    rd = RunDir.open_existing(run_dir)
    if run_kind(rd) == "walkforward":
        raise RunDirError(_walkforward_champion(rd))
    out = check_new_file(out, "--out", force=force)
    config, prices, holdout = load_run(rd)
    result, gen = load_result(config, prices, rd)
    n = len(result.members)
    if not isinstance(rank, int) or not 0 <= rank < n:
        raise ConfigError(f"--rank must be in [0, {n - 1}] for this run ({n} members), got {rank!r}")
    from genetic_sizer.evolution.robust import member, norm_checked

    chosen = norm_checked(result, member(result, prices, rank))  # with a shrink gene: the shrunk weights
    record = champion_record(
        config,
        prices,
        result.space,
        chosen.weights,
        rank=rank,
        n_members=n,
        evaluations=result.evaluations,
        genes=chosen.genes,
    )
    record["construction"] = chosen.record
    record.update(validation_record(config, chosen.weights, prices, holdout, result.trials, chosen.genes))
    record["analytics"] = _member_analytics(config, prices, holdout, result, rank, chosen, record)
    if gen < config.evolution.generations:
        record["selection"] += f"; run stopped at generation {gen} of {config.evolution.generations}"
    return C.write(record, out)


def _member_analytics(config, prices, holdout, result, rank: int, chosen, record: dict) -> dict:
    """Diversification and attribution of an exported member, in sample and on the held-out window, against the
    config's benchmark (the classical allocations of the training window beside it, traded by the run's policy)."""
    from genetic_sizer.evolution.seeding import classical_allocations
    from genetic_sizer.runs.analytics import account_scale, analytics_of

    if "allocations" in result.seeds:
        allocations = result.seeds["allocations"]
    else:
        allocations, _ = classical_allocations(prices, result.space, config)
    own = result.strategy(rank) if chosen.genes is None else result.genes.strategy(chosen.genes)
    names = ["champion", *allocations]
    strategies = [own, *(fixed_strategy(config, result.genes) for _ in allocations)]
    windows = [("in_sample", prices)]
    if holdout is not None:
        windows.append(("out_of_sample", traded_window(prices, holdout, config.walkforward.execution_delay)))
    weights = np.stack([chosen.weights, *allocations.values()])
    return analytics_of(config, windows, names, weights, strategies, account_scale(config, record))


def evolve_run(
    plan: RunPlan,
    *,
    plots: bool = True,
    on_event: Callable[..., None] | None = None,
    on_generation: Callable | None = None,
    display: contextlib.AbstractContextManager | None = None,
) -> RunReport:
    """``genetic-sizer evolve``: load the data of ``plan``'s config, split off the held-out window, check the run
    (before Ray starts or a directory is created), evolve (or resume) it in ``plan.run_dir`` on the map its
    ``parallel`` section asks for, then :func:`finalize` it. Returns the :class:`RunReport`.

    ``on_event(kind, **info)`` is told how it goes, in this order: ``"loading"`` (``source``), ``"data"``
    (``config``, ``everything``: the whole window, ``prices``: the window evolved on, ``holdout``: the held-out
    window or None), ``"run_dir"`` (``run_dir``, ``resume``), with the Ray backend ``"connecting"`` (``address``:
    the cluster's, None for a local instance) and ``"ray_ready"`` (``seconds``, ``workers``), with ``robust.ensemble:
    resampled`` ``"resampling"`` (``runs``) before those runs, and ``"finalizing"``
    (``config``) when the evolution is done and the results are being written. ``on_generation`` is passed to
    :func:`~genetic_sizer.runs.evolve.evolve`; ``display`` (a progress display) is entered around the evolution
    itself. Ctrl-C (KeyboardInterrupt) propagates after the map is closed.
    """
    tell = on_event or (lambda kind, **info: None)
    config, run_dir = plan.config, plan.run_dir
    ev, par = config.evolution, config.parallel
    tell("loading", source="strategies" if config.data.strategies else config.data.source)
    everything = load_from_config(config.data)
    prices, holdout = split_holdout(everything, ev.holdout)
    check_run(config, prices)  # bounds, NSGA-II rules: fail before Ray starts or a directory is created
    RiskFree.of(config.portfolio.risk_free).rates(everything)  # a bar without a risk-free rate: refused now, not later
    tell("data", config=config, everything=everything, prices=prices, holdout=holdout)
    tell("run_dir", run_dir=run_dir, resume=plan.resume)
    map_fn = make_map(par)
    try:
        if par.backend == "ray":
            tell("connecting", address=map_fn.address)
            map_fn.start()
            tell("ray_ready", seconds=map_fn.startup_seconds, workers=map_fn.num_workers)
        with display if display is not None else contextlib.nullcontext():
            result = evolve(config, prices, run_dir, map_fn=map_fn, resume=plan.resume, on_generation=on_generation)
        resampled = None
        if config.robust.ensemble == "resampled":  # the champions of runs on resampled histories
            from genetic_sizer.runs.resampled import resampled_champions

            tell("resampling", runs=config.robust.ensemble_size)
            resampled = resampled_champions(config, prices, map_fn=map_fn)
    finally:
        close_map(map_fn)
    tell("finalizing", config=config)
    return finalize(
        result, prices, run_dir, plots=plots, holdout=holdout, report_prices=everything, resampled=resampled
    )

"""From an evolution to the files people and the live sizer use.

:func:`finalize` writes, through the run's :class:`~genetic_sizer.runs.rundir.RunDir` and each file atomically:
``hall_of_fame.csv`` (or ``pareto.csv`` for NSGA-II runs) with every metric and weight of each member,
``summary.csv`` (champion beside equal weight and the classical allocations), the plots and, last,
``champion.json`` (re-simulated with the reference engine before anything is written: vectorbt for a spot run,
the plain-Python loop :func:`genetic_sizer.backtest.kernels.perp.reference_genome` for a perp run; a disagreement fails the run).
:func:`export` writes the champion file of any ranked member of a finished run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genetic_sizer.runs import champion as C
from genetic_sizer.config import RunConfig
from genetic_sizer.data.prices import Prices, load_from_config
from genetic_sizer.errors import ChampionError, ConfigError
from genetic_sizer.evolution.loop import EvolutionResult, load_result
from genetic_sizer.storage.files import check_new_file
from genetic_sizer.backtest.metrics import METRICS
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.evolution.genome import GenomeSpace
from genetic_sizer.runs.rundir import RunDir

__all__ = ["SUMMARY_METRICS", "RunReport", "champion_record", "export", "finalize"]

SUMMARY_METRICS = (
    "sharpe",
    "sortino",
    "calmar",
    "cagr",
    "max_drawdown",
    "annualized_volatility",
    "turnover",
    "wiped_out",
)
PERP_SUMMARY_METRICS = ("funding_paid", "funding_received", "fees_paid", "liquidated")
"""What the summary adds for a perp run (see :data:`genetic_sizer.backtest.metrics.ACCOUNT_METRICS`)."""
CONFIG_FILE = RunDir.CONFIG
CHAMPION_FILE = RunDir.CHAMPION
VALUES_FILE = "values.csv"


@dataclass
class RunReport:
    """What :func:`finalize` produced: file paths and the summary rows (name -> metric -> value), in sample
    (``summary``, the window the champion was evolved on) and out of sample (``summary_oos``, the held-out
    window; None when the run held nothing out)."""

    run_dir: Path
    champion_path: Path
    champion: dict
    summary: dict[str, dict[str, float]]
    skipped: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    summary_oos: dict[str, dict[str, float]] | None = None


def _selection(config: RunConfig, rank: int, n: int) -> str:
    if config.multi_objective:
        return (
            f"Pareto front member {rank} of {n} in compromise order (objectives min-max scaled over the front, "
            "closest to the ideal point first)"
        )
    return f"hall of fame rank {rank} of {n} (best {config.objective[0]} first)"


def summary_metrics(config: RunConfig) -> tuple[str, ...]:
    """The metrics of the summary table for ``config``'s account model."""
    return SUMMARY_METRICS + (PERP_SUMMARY_METRICS if config.portfolio.market == "perp" else ())


def portfolio_record(config: RunConfig, space: GenomeSpace) -> dict:
    pf = config.portfolio
    account = {"market": pf.market}
    if pf.market == "perp":
        from genetic_sizer.backtest.simulate import resolve_max_leverage

        max_lev = resolve_max_leverage(pf.max_leverage, space.symbols)
        account["leverage"] = pf.leverage
        account["max_leverage"] = (
            None if pf.max_leverage is None else dict(zip(space.symbols, map(float, max_lev), strict=True))
        )
    return {
        **account,
        "direction": space.direction,
        "min_weight": dict(zip(space.symbols, map(float, space.lower), strict=True)),
        "max_weight": dict(zip(space.symbols, map(float, space.upper), strict=True)),
        "rebalance": pf.rebalance,
        "fees": pf.fees,
        "slippage": pf.slippage,
        "init_cash": pf.init_cash,
        **space.constraints.record(),
    }


def strategy_record(evaluator: Evaluator, genes=None) -> dict:
    """The champion file's ``strategy`` section: the genome's policy, drift band and, for a perp champion, leverage
    (its genes, or the run's fixed settings) and the genes the run evolved."""
    if evaluator.genes is None or genes is None:
        out, evolved = {"rebalance": evaluator.rebalance, "threshold": None}, {}
    else:
        evaluator.genes.validate_population(np.asarray(genes, dtype=np.float64)[None, :], "champion")
        out, evolved = evaluator.genes.strategy(genes), evaluator.genes.record()
    if evaluator.market == "perp":
        out.setdefault("leverage", float(evaluator.leverage))
    return {**out, "genes": evolved}


def champion_record(
    config: RunConfig,
    prices: Prices,
    space: GenomeSpace,
    weights: np.ndarray,
    *,
    rank: int,
    n_members: int,
    evaluations: int,
    genes=None,
) -> dict:
    """The champion file's record for ``weights`` (kept by the strategy its ``genes`` say, when the run evolves
    genes), after checking the fast engine against the reference engine (vectorbt for spot: ``from_order_func``
    when it has a drift band; the plain-Python perp loop for perps)."""
    evaluator = Evaluator.from_config(prices, config)
    w = space.validate(weights, "champion")[None, :]
    strategy = strategy_record(evaluator, genes)
    g = None if evaluator.genes is None or genes is None else np.asarray(genes, dtype=np.float64)[None, :]
    fast = {k: float(v[0]) for k, v in evaluator.metrics(w, engine="fast", genes=g).items()}
    if fast["wiped_out"] or fast.get("liquidated"):
        what = "liquidated" if fast.get("liquidated") else "wiped out"
        how = "its equity fell to the maintenance margin" if what == "liquidated" else "its value reached zero or below"
        everyone = f"; {what} genomes rank last, so every genome the run evaluated was" if rank == 0 else ""
        raise ChampionError(
            f"{_selection(config, rank, n_members)} was {what} on this window ({how}{everyone}): no champion file "
            "is written for it"
        )
    engine = evaluator.reference_engine
    reference = {k: float(v[0]) for k, v in evaluator.metrics(w, engine=engine, genes=g).items()}
    max_rel = C.compare_metrics(fast, reference, reference_name=engine)
    against = "vectorbt-drift" if engine == "vectorbt" and strategy["threshold"] is not None else engine
    data = prices.provenance()
    data["path"] = config.data.path
    if config.portfolio.market == "perp":
        data["funding_path"] = _funding_path(config)
    ev = config.evolution
    return C.build(
        symbols=prices.symbols,
        weights=w[0],
        metrics={k: fast[k] for k in METRICS if k in fast},
        objective=config.objective,
        portfolio=portfolio_record(config, space),
        data=data,
        evolution={
            "seed": ev.seed,
            "population": ev.population,
            "generations": ev.generations,
            "evaluations": evaluations,
            "seed_with_classical": ev.seed_with_classical,
        },
        config_sha256=config.sha256(),
        selection=_selection(config, rank, n_members),
        verification={
            "engine": engine,
            "against": C.REFERENCE_DESCRIPTIONS[against],
            "reference": C.REFERENCE_FUNCTIONS[against],
            "rtol": C.VERIFY_RTOL,
            "atol": C.VERIFY_ATOL,
            "max_rel_diff": max_rel,
        },
        strategy=strategy,
    )


def fixed_strategy(config: RunConfig, genes=None) -> dict:
    """How the classical allocations keep their weights: the run's policy, no drift band and, when the run evolves
    the leverage (``genes``, a GeneSpace), ``portfolio.leverage`` (stated, so tables show it beside the champion's)."""
    out = {"rebalance": config.portfolio.rebalance, "threshold": None}
    if genes is not None and genes.leverage is not None:
        out["leverage"] = config.portfolio.leverage
    return out


def _threshold_text(x) -> str:
    return "" if x is None else repr(float(x))


def _funding_path(config: RunConfig) -> str | None:
    """The funding file a perp run was charged from (None when it ran without funding)."""
    from genetic_sizer.data.prices import funding_path_for

    dc = config.data
    if dc.funding_path is False:
        return None
    if dc.funding_path is not None:
        return str(dc.funding_path)
    return str(funding_path_for(dc.path)) if dc.source == "hyperliquid" else None


def _strategy_columns(strategies) -> list[str]:
    """The strategy columns of a table: none without genes; ``rebalance``, ``threshold`` and, when the run evolves
    the leverage, ``leverage``."""
    if strategies is None:
        return []
    rows = strategies.values() if isinstance(strategies, dict) else strategies
    return ["rebalance", "threshold"] + (["leverage"] if any("leverage" in s for s in rows) else [])


def _strategy_cells(strategy: dict, columns: list[str]) -> list[str]:
    cells = {"rebalance": strategy["rebalance"], "threshold": _threshold_text(strategy["threshold"])}
    if "leverage" in columns:
        cells["leverage"] = repr(float(strategy["leverage"]))
    return [cells[c] for c in columns]


def _members_rows(
    symbols, weights: np.ndarray, metrics: dict[str, np.ndarray], oos=None, strategies=None
) -> list[list]:
    """One row per member: in-sample metrics (named as they are), then, when the run held a window out, the
    same metrics there (``oos_`` + name), then, when the run evolves strategy genes, each member's ``rebalance``
    and ``threshold`` (empty: no drift band) and, with a leverage gene, ``leverage``, then the weights."""
    names = [m for m in METRICS if m in metrics]
    oos_names = [m for m in METRICS if oos is not None and m in oos]
    genes = _strategy_columns(strategies)
    rows = [["rank", *names, *(f"oos_{m}" for m in oos_names), *genes, *symbols]]
    for k in range(len(weights)):
        strategy = _strategy_cells(strategies[k], genes) if genes else []
        rows.append(
            [
                k,
                *(repr(float(metrics[m][k])) for m in names),
                *(repr(float(oos[m][k])) for m in oos_names),
                *strategy,
                *(repr(float(x)) for x in weights[k]),
            ]
        )
    return rows


def _summary_rows(
    summary: dict[str, dict[str, float]],
    oos: dict[str, dict[str, float]] | None,
    names=SUMMARY_METRICS,
    strategies: dict | None = None,
) -> list[list]:
    """The summary table of the metrics ``names``; with ``strategies`` ({allocation: strategy}, a run with genes)
    each row also says how the allocation is kept (``rebalance``, ``threshold``, with a leverage gene
    ``leverage``)."""
    genes = _strategy_columns(strategies)
    rows = [["allocation", "window", *genes, *names]]
    for window, table in (("in_sample", summary), ("out_of_sample", oos or {})):
        for name, m in table.items():
            strategy = _strategy_cells(strategies[name], genes) if genes else []
            rows.append([name, window, *strategy, *(repr(m[k]) for k in names)])
    return rows


def _values_rows(names, windows: list[tuple[str, Prices, np.ndarray]]) -> list[list]:
    rows = [["time", "window", *names]]
    for window, prices, value in windows:
        for t, v in zip(prices.index, value, strict=True):
            rows.append([t.isoformat(), window, *(repr(float(x)) for x in v)])
    return rows


def finalize(
    result: EvolutionResult,
    prices: Prices,
    run_dir: str | Path | RunDir,
    *,
    plots: bool = True,
    holdout: Prices | None = None,
    report_prices: Prices | None = None,
) -> RunReport:
    """Write the members, the summary, the plots, the report and the verified champion of a finished run.

    ``prices`` is the window the run evolved on (in sample); ``holdout`` the held-out window after it (out of
    sample: the champion and every classical allocation, fitted on ``prices``, start there from ``init_cash``
    with the run's rebalancing and costs). The champion is checked against the reference engine (vectorbt for
    spot, the plain-Python perp loop for perps) before anything is written (a disagreement fails the run), and
    ``champion.json`` is written last; every file is written
    atomically. Finalizing again (``evolve --resume`` of a finished run, e.g. after Ctrl-C during this step)
    rewrites the same files. ``report_prices`` (the whole window) saves the report from loading it again.
    """
    from genetic_sizer.evolution.seeding import classical_allocations

    rd = RunDir(run_dir)
    config, space = result.config, result.space
    evaluator = Evaluator.from_config(prices, config)
    record = champion_record(
        config,
        prices,
        space,
        result.champion,
        rank=0,
        n_members=len(result.members),
        evaluations=result.evaluations,
        genes=result.champion_genes,
    )
    files = []
    genes = result.members_genes if result.genes is not None else None
    member_metrics = evaluator.metrics(result.members, genes=genes)
    member_oos = None
    if holdout is not None:
        member_oos = Evaluator.from_config(holdout, config).metrics(result.members, genes=genes)
    members_path = rd.members_path(config.multi_objective)
    member_strategies = [result.strategy(k) for k in range(len(result.members))] if genes is not None else None
    rows = _members_rows(prices.symbols, result.members, member_metrics, member_oos, member_strategies)
    files.append(rd.write_csv(members_path.name, rows))

    if "allocations" in result.seeds:  # fitted on this window when the run was seeded
        allocations, skipped = result.seeds["allocations"], result.seeds["skipped"]
    else:
        allocations, skipped = classical_allocations(prices, space)
    names = ["champion", *allocations]
    weights = np.stack([result.champion, *allocations.values()])
    # the champion keeps its weights by its own strategy; the classical allocations by the run's policy
    strategies = {n: fixed_strategy(config, result.genes) for n in names}
    strategies["champion"] = result.strategy(0)
    bt = evaluator.backtest_strategies(weights, list(strategies.values()))
    metrics = evaluator.metrics_of(bt)
    shown = summary_metrics(config)
    summary = {n: {k: float(metrics[k][i]) for k in shown} for i, n in enumerate(names)}
    windows = [("in_sample", prices, bt.value)]
    summary_oos = None
    if holdout is not None:
        oos_eval = Evaluator.from_config(holdout, config)
        bt_oos = oos_eval.backtest_strategies(weights, list(strategies.values()))
        m_oos = oos_eval.metrics_of(bt_oos)
        summary_oos = {n: {k: float(m_oos[k][i]) for k in shown} for i, n in enumerate(names)}
        windows.append(("out_of_sample", holdout, bt_oos.value))
    record.update(validation_record(config, result.champion, prices, holdout, result.trials, result.champion_genes))
    kept = strategies if result.genes is not None else None
    files.append(rd.write_csv(RunDir.SUMMARY, _summary_rows(summary, summary_oos, shown, kept)))
    files.append(rd.write_csv(VALUES_FILE, _values_rows(names, windows)))

    if plots:
        from genetic_sizer.runs import plots as P
        from genetic_sizer.runs.report import write_report

        def plot(name, draw):
            with rd.atomic(name) as tmp:
                draw(tmp)
            files.append(rd.file(name))

        plot("fitness.png", lambda p: P.fitness_curve(result.logbook, config.objective, p, genes=result.genes))
        title = "Champion allocation"
        if result.genes is not None:
            title += f" ({result.genes.describe(result.champion_genes)})"
        plot("allocation.png", lambda p: P.allocation(prices.symbols, result.champion, p, title=title))
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
    the held-out window (``out_of_sample``: None when nothing was held out), all with the strategy its ``genes``
    say (when the run evolves genes)."""
    from genetic_sizer.validation.walkforward import deflated_sharpe_of, window_record

    w = np.asarray(weights, dtype=np.float64)[None, :]
    g = None if genes is None or np.size(genes) == 0 else np.asarray(genes, dtype=np.float64)[None, :]
    value = Evaluator.from_config(train, config).backtest(w, genes=g).value[:, 0]
    out = {
        "trials": dict(trials),
        "deflated_sharpe": deflated_sharpe_of(value, config.portfolio.init_cash, trials),
        "in_sample": window_record(train),
        "out_of_sample": None,
    }
    if holdout is not None:
        m = Evaluator.from_config(holdout, config).metrics(w, genes=g)
        out["out_of_sample"] = {**window_record(holdout), "metrics": {k: float(m[k][0]) for k in METRICS if k in m}}
    return out


def _joined(train: Prices, holdout: Prices | None) -> Prices:
    if holdout is None:
        return train
    funding = None
    if train.funding is not None and holdout.funding is not None:
        funding = np.vstack([train.funding, holdout.funding])
    return Prices(
        close=np.vstack([train.close, holdout.close]),
        index=train.index.append(holdout.index),
        symbols=train.symbols,
        source=train.source,
        periods_per_year=train.periods_per_year,
        notes=train.notes,
        funding=funding,
    )


def load_run(run_dir: str | Path | RunDir) -> tuple[RunConfig, Prices, Prices | None]:
    """The resolved config of a run directory, the window it evolved on and its held-out window (None when the
    run held nothing out), as ``genetic-sizer evolve`` split them."""
    from genetic_sizer.validation.walkforward import split_holdout

    rd = RunDir.open_existing(run_dir)
    config = rd.load_config()
    train, holdout = split_holdout(load_from_config(config.data), config.evolution.holdout)
    return config, train, holdout


def export(run_dir: str | Path | RunDir, out: str | Path, rank: int = 0, *, force: bool = False) -> Path:
    """Write the champion file of member ``rank`` (hall of fame order, or compromise order on a Pareto front).

    ``out`` must be a file path: a directory (or a path under a file), or an existing file without ``force``, is a
    :class:`ConfigError`, raised before anything is loaded or written. The file is written atomically.
    """
    rd = RunDir.open_existing(run_dir)
    out = check_new_file(out, "--out", force=force)
    config, prices, holdout = load_run(rd)
    result, gen = load_result(config, prices, rd)
    n = len(result.members)
    if not isinstance(rank, int) or not 0 <= rank < n:
        raise ConfigError(f"--rank must be in [0, {n - 1}] for this run ({n} members), got {rank!r}")
    genes = result.members_genes[rank] if result.genes is not None else None
    record = champion_record(
        config,
        prices,
        result.space,
        result.members[rank],
        rank=rank,
        n_members=n,
        evaluations=result.evaluations,
        genes=genes,
    )
    record.update(validation_record(config, result.members[rank], prices, holdout, result.trials, genes))
    if gen < config.evolution.generations:
        record["selection"] += f"; run stopped at generation {gen} of {config.evolution.generations}"
    return C.write(record, out)


def finalize_walkforward(wf, run_dir: str | Path | RunDir, *, plots: bool = True) -> dict:
    """Write a finished walk-forward's files: ``walkforward.json``, ``oos_values.csv``, ``report.html`` and,
    last, ``champion.json``: the last fold's GA champion (trained on the most recent window), checked against
    the reference engine on that window, with its walk-forward record attached. Returns the champion record."""
    import json

    from genetic_sizer.evolution.genome import GenomeSpace
    from genetic_sizer.validation.walkforward import OOS_VALUES_FILE, WALKFORWARD_FILE, fold_config, window_record

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
    record["selection"] = (
        f"GA champion of the last of {len(wf.folds)} walk-forward folds (trained on "
        f"{train.index[0].date()} .. {train.index[-1].date()}, the most recent train window)"
    )
    record["trials"] = res["trials"]
    record["deflated_sharpe"] = res["deflated_sharpe"]
    record["in_sample"] = window_record(train)
    test = wf.prices.bars(last.test_start, last.test_end + 1)
    record["out_of_sample"] = {**window_record(test), "metrics": wf.fold_oos[-1].get("GA")}
    record["walkforward"] = {
        "folds": len(wf.folds),
        "out_of_sample_window": wf.record["out_of_sample_window"],
        "out_of_sample": {s: wf.oos[s] for s in ("GA", "equal_weight") if s in wf.oos},
        "deflated_sharpe": wf.record["deflated_sharpe"],
        "pbo": wf.record["pbo"],
    }
    rd.write_text(WALKFORWARD_FILE, json.dumps(wf.record, indent=1, allow_nan=False) + "\n")
    rows = [["time", *wf.strategies]]
    rows += [[t.isoformat(), *(repr(float(x)) for x in v)] for t, v in zip(wf.oos_index, wf.oos_values, strict=True)]
    rd.write_csv(OOS_VALUES_FILE, rows)
    if plots:
        from genetic_sizer.runs.report import write_report

        write_report(rd, prices=wf.prices)
    C.write(record, rd.champion_path)  # last: its presence means the results are complete
    rd.sync()  # a run at a storage URL: every result, champion.json last
    return record

"""From an evolution to the files people and the live sizer use.

:func:`finalize` writes, through the run's :class:`~genetic_sizer.rundir.RunDir` and each file atomically:
``hall_of_fame.csv`` (or ``pareto.csv`` for NSGA-II runs) with every metric and weight of each member,
``summary.csv`` (champion beside equal weight and the classical allocations), the plots and, last,
``champion.json`` (re-simulated with vectorbt before anything is written: a disagreement fails the run).
:func:`export` writes the champion file of any ranked member of a finished run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genetic_sizer import champion as C
from genetic_sizer.config import RunConfig
from genetic_sizer.data import Prices, load_from_config
from genetic_sizer.errors import ChampionError, ConfigError
from genetic_sizer.evolve import EvolutionResult, load_result
from genetic_sizer.files import check_file_target
from genetic_sizer.fitness import METRICS, Evaluator
from genetic_sizer.genome import GenomeSpace
from genetic_sizer.rundir import RunDir

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
CONFIG_FILE = RunDir.CONFIG
CHAMPION_FILE = RunDir.CHAMPION


@dataclass
class RunReport:
    """What :func:`finalize` produced: file paths and the summary rows (name -> metric -> value)."""

    run_dir: Path
    champion_path: Path
    champion: dict
    summary: dict[str, dict[str, float]]
    skipped: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def _selection(config: RunConfig, rank: int, n: int) -> str:
    if config.multi_objective:
        return (
            f"Pareto front member {rank} of {n} in compromise order (objectives min-max scaled over the front, "
            "closest to the ideal point first)"
        )
    return f"hall of fame rank {rank} of {n} (best {config.objective[0]} first)"


def portfolio_record(config: RunConfig, space: GenomeSpace) -> dict:
    pf = config.portfolio
    return {
        "direction": space.direction,
        "min_weight": dict(zip(space.symbols, map(float, space.lower), strict=True)),
        "max_weight": dict(zip(space.symbols, map(float, space.upper), strict=True)),
        "rebalance": pf.rebalance,
        "fees": pf.fees,
        "slippage": pf.slippage,
        "init_cash": pf.init_cash,
    }


def champion_record(
    config: RunConfig,
    prices: Prices,
    space: GenomeSpace,
    weights: np.ndarray,
    *,
    rank: int,
    n_members: int,
    evaluations: int,
) -> dict:
    """The champion file's record for ``weights``, after checking the fast engine against vectorbt."""
    evaluator = Evaluator.from_config(prices, config)
    w = space.validate(weights, "champion")[None, :]
    fast = {k: float(v[0]) for k, v in evaluator.metrics(w, engine="fast").items()}
    if fast["wiped_out"]:
        everyone = "; wiped-out genomes rank last, so every genome the run evaluated was" if rank == 0 else ""
        raise ChampionError(
            f"{_selection(config, rank, n_members)} was wiped out on this window (its value reached zero or below"
            f"{everyone}): no champion file is written for it"
        )
    reference = {k: float(v[0]) for k, v in evaluator.metrics(w, engine="vectorbt").items()}
    max_rel = C.compare_metrics(fast, reference)
    data = prices.provenance()
    data["path"] = config.data.path
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
        verification={"engine": "vectorbt", "rtol": C.VERIFY_RTOL, "atol": C.VERIFY_ATOL, "max_rel_diff": max_rel},
    )


def _members_rows(symbols, weights: np.ndarray, metrics: dict[str, np.ndarray]) -> list[list]:
    names = [m for m in METRICS if m in metrics]
    rows = [["rank", *names, *symbols]]
    for k in range(len(weights)):
        rows.append([k, *(repr(float(metrics[m][k])) for m in names), *(repr(float(x)) for x in weights[k])])
    return rows


def _summary_rows(summary: dict[str, dict[str, float]]) -> list[list]:
    return [
        ["allocation", *SUMMARY_METRICS],
        *([name, *(repr(m[k]) for k in SUMMARY_METRICS)] for name, m in summary.items()),
    ]


def finalize(result: EvolutionResult, prices: Prices, run_dir: str | Path | RunDir, *, plots: bool = True) -> RunReport:
    """Write the members, the summary, the plots and the verified champion of a finished run.

    The champion is checked against vectorbt before anything is written (a disagreement fails the run), and
    ``champion.json`` is written last; every file is written atomically. Finalizing again (``evolve --resume``
    of a finished run, e.g. after Ctrl-C during this step) rewrites the same files.
    """
    from genetic_sizer.classical import classical_allocations

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
    )
    files = []
    member_metrics = evaluator.metrics(result.members)
    members_path = rd.members_path(config.multi_objective)
    files.append(rd.write_csv(members_path.name, _members_rows(prices.symbols, result.members, member_metrics)))

    if "allocations" in result.seeds:  # fitted on this window when the run was seeded
        allocations, skipped = result.seeds["allocations"], result.seeds["skipped"]
    else:
        allocations, skipped = classical_allocations(prices, space)
    names = ["champion", *allocations]
    weights = np.stack([result.champion, *allocations.values()])
    bt = evaluator.backtest(weights)
    metrics = evaluator.metrics_of(bt)
    summary = {n: {k: float(metrics[k][i]) for k in SUMMARY_METRICS} for i, n in enumerate(names)}
    files.append(rd.write_csv(RunDir.SUMMARY, _summary_rows(summary)))

    if plots:
        from genetic_sizer import plots as P

        def plot(name, draw):
            with rd.atomic(name) as tmp:
                draw(tmp)
            files.append(rd.file(name))

        plot("fitness.png", lambda p: P.fitness_curve(result.logbook, config.objective, p))
        plot("allocation.png", lambda p: P.allocation(prices.symbols, result.champion, p))
        curves = {n: bt.value[:, i] for i, n in enumerate(names)}
        plot("equity.png", lambda p: P.equity(prices.index, curves, p))
        if config.multi_objective and len(config.objective) >= 2:
            plot("pareto.png", lambda p: P.pareto(result.members_fitness, config.objective, 0, p))
    champion_path = C.write(record, rd.champion_path)  # last: its presence means the results are complete
    files.append(champion_path)
    return RunReport(rd.path, champion_path, record, summary, skipped, files)


def load_run(run_dir: str | Path | RunDir) -> tuple[RunConfig, Prices]:
    """The resolved config of a run directory and its price data (checked against the run's fingerprint)."""
    rd = RunDir.open_existing(run_dir)
    config = rd.load_config()
    return config, load_from_config(config.data)


def export(run_dir: str | Path | RunDir, out: str | Path, rank: int = 0) -> Path:
    """Write the champion file of member ``rank`` (hall of fame order, or compromise order on a Pareto front).

    ``out`` must be a file path: a directory (or a path under a file) is a :class:`ConfigError`, raised before
    anything is loaded or written. The file is written atomically.
    """
    rd = RunDir.open_existing(run_dir)
    out = check_file_target(out, "--out")
    config, prices = load_run(rd)
    result, gen = load_result(config, prices, rd)
    n = len(result.members)
    if not isinstance(rank, int) or not 0 <= rank < n:
        raise ConfigError(f"--rank must be in [0, {n - 1}] for this run ({n} members), got {rank!r}")
    record = champion_record(
        config, prices, result.space, result.members[rank], rank=rank, n_members=n, evaluations=result.evaluations
    )
    if gen < config.evolution.generations:
        record["selection"] += f"; run stopped at generation {gen} of {config.evolution.generations}"
    return C.write(record, out)

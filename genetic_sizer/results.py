"""From an evolution to the files people and the live sizer use.

:func:`finalize` writes, into the run directory: ``hall_of_fame.csv`` (or ``pareto.csv`` for NSGA-II runs)
with every metric and weight of each member, ``champion.json`` (re-simulated with vectorbt first: a
disagreement fails the run), ``summary.csv`` (champion beside equal weight and the classical allocations)
and the plots. :func:`export` writes the champion file of any ranked member of a finished run.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genetic_sizer import champion as C
from genetic_sizer.config import RunConfig, load_config
from genetic_sizer.data import Prices, load_from_config
from genetic_sizer.errors import ConfigError
from genetic_sizer.evolve import EvolutionResult, load_result
from genetic_sizer.fitness import METRICS, Evaluator
from genetic_sizer.genome import GenomeSpace

__all__ = ["SUMMARY_METRICS", "RunReport", "champion_record", "export", "finalize"]

SUMMARY_METRICS = ("sharpe", "sortino", "calmar", "cagr", "max_drawdown", "annualized_volatility", "turnover")
CONFIG_FILE = "config.yaml"
CHAMPION_FILE = "champion.json"


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
        **space.constraints.record(),
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


def _write_members(path: Path, symbols, weights: np.ndarray, metrics: dict[str, np.ndarray]) -> Path:
    names = [m for m in METRICS if m in metrics]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", *names, *symbols])
        for k in range(len(weights)):
            w.writerow([k, *(repr(float(metrics[m][k])) for m in names), *(repr(float(x)) for x in weights[k])])
    return path


def _write_summary(path: Path, summary: dict[str, dict[str, float]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["allocation", *SUMMARY_METRICS])
        for name, m in summary.items():
            w.writerow([name, *(repr(m[k]) for k in SUMMARY_METRICS)])
    return path


def finalize(result: EvolutionResult, prices: Prices, run_dir: str | Path, *, plots: bool = True) -> RunReport:
    """Write the members, the verified champion, the summary and the plots of a finished run."""
    from genetic_sizer.classical import classical_allocations

    run_dir = Path(run_dir)
    config, space = result.config, result.space
    evaluator = Evaluator.from_config(prices, config)
    files = []
    member_metrics = evaluator.metrics(result.members)
    name = "pareto.csv" if config.multi_objective else "hall_of_fame.csv"
    files.append(_write_members(run_dir / name, prices.symbols, result.members, member_metrics))

    record = champion_record(
        config,
        prices,
        space,
        result.champion,
        rank=0,
        n_members=len(result.members),
        evaluations=result.evaluations,
    )
    champion_path = C.write(record, run_dir / CHAMPION_FILE)
    files.append(champion_path)

    if "allocations" in result.seeds:  # fitted on this window when the run was seeded
        allocations, skipped = result.seeds["allocations"], result.seeds["skipped"]
    else:
        allocations, skipped = classical_allocations(prices, space)
    names = ["champion", *allocations]
    weights = np.stack([result.champion, *allocations.values()])
    bt = evaluator.backtest(weights)
    metrics = evaluator.metrics_of(bt)
    summary = {n: {k: float(metrics[k][i]) for k in SUMMARY_METRICS} for i, n in enumerate(names)}
    files.append(_write_summary(run_dir / "summary.csv", summary))

    if plots:
        from genetic_sizer import plots as P

        files.append(P.fitness_curve(result.logbook, config.objective, run_dir / "fitness.png"))
        files.append(P.allocation(prices.symbols, result.champion, run_dir / "allocation.png"))
        curves = {n: bt.value[:, i] for i, n in enumerate(names)}
        files.append(P.equity(prices.index, curves, run_dir / "equity.png"))
        if config.multi_objective and len(config.objective) >= 2:
            files.append(P.pareto(result.members_fitness, config.objective, 0, run_dir / "pareto.png"))
    return RunReport(run_dir, champion_path, record, summary, skipped, files)


def load_run(run_dir: str | Path) -> tuple[RunConfig, Prices]:
    """The resolved config of a run directory and its price data (checked against the run's fingerprint)."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    config = load_config(path)
    return config, load_from_config(config.data)


def export(run_dir: str | Path, out: str | Path, rank: int = 0) -> Path:
    """Write the champion file of member ``rank`` (hall of fame order, or compromise order on a Pareto front)."""
    config, prices = load_run(run_dir)
    result, gen = load_result(config, prices, run_dir)
    n = len(result.members)
    if not isinstance(rank, int) or not 0 <= rank < n:
        raise ConfigError(f"--rank must be in [0, {n - 1}] for this run ({n} members), got {rank!r}")
    record = champion_record(
        config, prices, result.space, result.members[rank], rank=rank, n_members=n, evaluations=result.evaluations
    )
    if gen < config.evolution.generations:
        record["selection"] += f"; run stopped at generation {gen} of {config.evolution.generations}"
    return C.write(record, out)

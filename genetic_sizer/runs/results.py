"""From an evolution to the files people and the live sizer use.

:func:`finalize` writes, through the run's :class:`~genetic_sizer.runs.rundir.RunDir` and each file atomically:
``hall_of_fame.csv`` (or ``pareto.csv`` for NSGA-II runs) with every metric and weight of each member,
``summary.csv`` (champion beside equal weight and the classical allocations), the plots and, last,
``champion.json`` (re-simulated with the reference engine before anything is written: vectorbt for a spot run,
the plain-Python loop :func:`genetic_sizer.backtest.reference.reference_genome` for a perp run; a disagreement fails the
run).
:func:`export` writes the champion file of any ranked member of a finished run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genetic_sizer.backtest.metrics import METRICS
from genetic_sizer.config import RunConfig
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ChampionError
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.runs import champion as C
from genetic_sizer.runs.rundir import RunDir

__all__ = ["SUMMARY_METRICS", "RunReport", "champion_record", "fixed_strategy", "summary_metrics"]

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


def portfolio_record(config: RunConfig, space: GenomeSpace, margin: dict | None = None) -> dict:
    """The champion file's ``portfolio`` section; a perp champion's ``max_leverage`` per asset is
    ``portfolio.max_leverage`` or, when that is null, the first tier of the exchange's ``margin`` tiers saved with
    the data (recorded whole in ``margin_tiers``)."""
    pf = config.portfolio
    account = {"market": pf.market}
    if pf.market == "perp":
        from genetic_sizer.backtest.inputs import resolve_max_leverage

        account["leverage"] = pf.leverage
        if pf.max_leverage is None and margin is not None:
            account["max_leverage"] = {s: float(margin[s][0][1]) for s in space.symbols}
            account["margin_tiers"] = {s: [list(t) for t in margin[s]] for s in space.symbols}
        elif pf.max_leverage is None:
            account["max_leverage"] = None
        else:
            max_lev = resolve_max_leverage(pf.max_leverage, space.symbols)
            account["max_leverage"] = dict(zip(space.symbols, map(float, max_lev), strict=True))
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
        **({} if pf.min_effective_assets is None else {"min_effective_assets": pf.min_effective_assets}),
        **(pf.policy() or {}),  # the rebalancing policy, which the live sizer applies too (when one is set)
    }


def strategy_record(evaluator: Evaluator, genes=None) -> dict:
    """The champion file's ``strategy`` section: the genome's policy, drift band and, for a perp champion, leverage
    (its genes, or the run's fixed settings), its evolved ``vol_target`` (with ``vol_lookback``) and the genes the
    run evolved."""
    if evaluator.genes is None or genes is None:
        out, evolved = {"rebalance": evaluator.rebalance, "threshold": None}, {}
    else:
        evaluator.genes.validate_population(np.asarray(genes, dtype=np.float64)[None, :], "champion")
        out, evolved = evaluator.genes.strategy(genes), evaluator.genes.record()
    if evaluator.market == "perp":
        out.setdefault("leverage", float(evaluator.leverage))
    if "vol_target" in out:  # an evolved target: the lookback its volatility is measured over
        out["vol_lookback"] = int((evaluator.policy or {}).get("vol_lookback", 20))
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
    if config.data.strategies:  # the run directories whose champions are the assets (live: their books combined)
        from genetic_sizer.runs.strategies import champion_identities

        data["strategies"] = dict(config.data.strategy_dirs())
        data["strategy_champions"] = champion_identities(config.data)  # what the live book checks it trades
    if config.portfolio.market == "perp":
        data["funding_path"] = _funding_path(config)
    ev = config.evolution
    return C.build(
        symbols=prices.symbols,
        weights=w[0],
        metrics={k: fast[k] for k in METRICS if k in fast},
        objective=config.objective,
        portfolio={**portfolio_record(config, space, prices.margin), "risk_free": evaluator.risk_free.record(prices)},
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
    from genetic_sizer.data.funding import funding_path_for

    dc = config.data
    if dc.funding_path is False:
        return None
    if dc.funding_path is not None:
        return str(dc.funding_path)
    return str(funding_path_for(dc.path)) if dc.source == "hyperliquid" else None


def _strategy_columns(strategies) -> list[str]:
    """The strategy columns of a table: none without genes; ``rebalance``, ``threshold`` and, when the run evolves
    the leverage / the volatility target, ``leverage`` / ``vol_target`` (empty: none)."""
    if strategies is None:
        return []
    rows = list(strategies.values() if isinstance(strategies, dict) else strategies)
    extra = [k for k in ("leverage", "vol_target") if any(k in s for s in rows)]
    return ["rebalance", "threshold", *extra]


def _strategy_cells(strategy: dict, columns: list[str]) -> list[str]:
    cells = {"rebalance": strategy["rebalance"], "threshold": _threshold_text(strategy["threshold"])}
    if "leverage" in columns:
        cells["leverage"] = repr(float(strategy["leverage"]))
    if "vol_target" in columns:
        cells["vol_target"] = "" if strategy.get("vol_target") is None else repr(float(strategy["vol_target"]))
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

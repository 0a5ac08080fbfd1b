"""The out-of-sample part of a walk-forward: every strategy's folds stitched into one continuous portfolio over the
whole test span, its metrics, each fold's, and the record ``walkforward.json`` holds (:class:`WalkForwardResult`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genetic_sizer.allocators.classical import CLASSICAL
from genetic_sizer.backtest.metrics import account_metrics, compute_metrics
from genetic_sizer.backtest.riskfree import RiskFree
from genetic_sizer.backtest.simulate import backtest
from genetic_sizer.backtest.stats import returns_of
from genetic_sizer.config.robust import METHODS
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError
from genetic_sizer.validation.excess import trials_pbo
from genetic_sizer.validation.folds import Fold

__all__ = [
    "STRATEGIES",
    "WalkForwardResult",
    "check_no_vol_target_gene",
    "deployed_text",
    "fold_strategy",
    "held_windows",
    "significance_record",
    "stitch",
    "strategy_names",
]

STRATEGIES = ("GA", *CLASSICAL)
"""Strategy names in ``walkforward.json`` and ``oos_values.csv``: the deployed champion, then the classical
allocations refitted on every train window; with the ``robust:`` section, ``GA_plain`` and each ``GA_<method>``
come after ``GA`` (:func:`strategy_names`)."""

WALKFORWARD_SCHEMA = "genetic_sizer/walkforward"
WALKFORWARD_VERSION = 2
"""2: each fold's weights are traded at the close ``execution_delay`` bars after the last train bar (``traded_at``),
the stitched series starts at fold 0's, each fold's out-of-sample figures cover the returns its weights earned
(``traded_at`` to ``held_until``), and the test windows left out are listed (``dropped_windows``). 1: traded at the
close of the test window's first bar, figures per test window."""
_RECORDED_PORTFOLIO_KEYS = (
    "market",
    "leverage",
    "max_leverage",
    "direction",
    "rebalance",
    "fees",
    "slippage",
    "init_cash",
)
"""The portfolio settings ``walkforward.json`` records."""


def _metrics_dict(metrics: dict, i: int, names=None) -> dict:
    return {k: float(v[i]) for k, v in metrics.items() if names is None or k in names}


@dataclass
class WalkForwardResult:
    """A finished walk-forward: folds, what each produced, and the stitched out-of-sample portfolios.

    ``oos_values`` is (n_bars, n_strategies), the value of every strategy as ONE continuous portfolio each, from
    the close fold 0's weights were traded at (:meth:`Fold.traded_at`: the last bar before the first test window,
    or with ``walkforward.execution_delay: 1`` its first bar) to the last test bar; ``oos`` their metrics;
    ``fold_oos[k]`` the metrics of each strategy over the returns fold k's weights earned: the same continuous
    portfolio from the close they were traded at to the close the next fold's were (the last fold's: the last
    bar), measured from its value at the first; ``record`` is what ``walkforward.json`` holds.
    """

    config: object
    prices: Prices
    folds: list[Fold]
    fold_results: list[dict]
    strategies: list[str]
    skipped: dict
    oos_index: pd.DatetimeIndex
    oos_values: np.ndarray
    oos_rebalance: np.ndarray
    oos: dict
    fold_oos: list[dict]
    record: dict

    @property
    def champion(self) -> np.ndarray:
        """The weights for live use: the last fold's GA champion (trained on the most recent window)."""
        return np.asarray(self.fold_results[-1]["weights"]["GA"], dtype=np.float64)

    @property
    def champion_genes(self) -> np.ndarray | None:
        """The last fold's GA champion's strategy genes (None when the run evolves none)."""
        genes = self.fold_results[-1].get("genes")
        return None if genes is None else np.asarray(genes, dtype=np.float64)

    @property
    def last_train(self) -> Prices:
        f = self.folds[-1]
        return self.prices.bars(f.train_start, f.train_end + 1)


def _jsonable(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


def check_no_vol_target_gene(config) -> None:
    """A :class:`ConfigError` when ``config`` evolves the ``vol_target`` gene: :func:`stitch` trades every strategy
    as one continuous portfolio with one rebalancing policy per strategy (the kernels' policy rows are per genome, not
    per segment), so the GA's fold-by-fold evolved targets could not be honoured out of sample; refused before any
    fold runs (a fixed ``portfolio.vol_target`` is honoured)."""
    genes = getattr(config.evolution, "genes", None)
    if genes is not None and "vol_target" in genes:
        raise ConfigError(
            f"evolution.genes.vol_target {list(genes['vol_target'])}: the evolved volatility target is not supported "
            "in walk-forward (its stitched out-of-sample portfolio keeps one rebalancing policy per strategy, so each "
            "fold's evolved target could not be traded); use a fixed portfolio.vol_target there, or run evolve"
        )


def fold_strategy(config, result: dict, name: str) -> dict:
    """How strategy ``name`` kept its weights in a fold (``{"rebalance", "threshold"}``, and ``"leverage"`` when the
    run evolves it): as the fold's result records (the GA champion's evolved genes), else the run's policy without a
    drift band (results written before strategy genes); a fold without a leverage is at ``portfolio.leverage``."""
    recorded = (result.get("strategy") or {}).get(name)
    return recorded or {"rebalance": config.portfolio.rebalance, "threshold": None}


def strategy_names(results: list[dict]) -> list[str]:
    """The strategies of a walk-forward, in the order of ``walkforward.json`` and ``oos_values.csv``: ``GA`` (the
    deployed champion), ``GA_plain`` and each ``GA_<method>`` any fold reports (:data:`~genetic_sizer.config.robust.
    METHODS` order), then the classical allocations."""
    seen = set()
    for r in results:
        seen.update(r["weights"])
        seen.update(r.get("skipped", {}))
    methods = [f"GA_{m}" for m in METHODS if f"GA_{m}" in seen]
    return [STRATEGIES[0], *methods, *STRATEGIES[1:]]


def deployed_text(result: dict) -> str:
    """What a fold deployed as GA, in words: the GA champion, or nested selection's choice ("trade 1/N" when 1/N
    won)."""
    sel = result.get("selection")
    if not sel or sel.get("candidate") is None:
        return "GA champion" if not sel else f"GA ({sel.get('deployed') or sel.get('method')})"
    if sel.get("trade"):
        return f"{sel['trade']} (nested selection: equal_weight won the inner validation)"
    if sel.get("method") != "GA":
        return f"{sel['method']} (nested selection: it won the inner validation)"
    return f"GA, {sel['candidate']} won the inner validation; {sel.get('generations')} generation(s)"


def significance_record(strategies: list[str], returns: np.ndarray, oos: dict, periods_per_year, seed: int) -> dict:
    """Is the deployed champion's out-of-sample Sharpe ratio different from 1/N's and the best classical allocator's,
    and does any GA variant beat 1/N? The tests of :func:`~genetic_sizer.backtest.significance.sharpe_significance`
    (headline: Ledoit and Wolf's studentized circular block bootstrap) and Hansen's SPA test
    (:func:`~genetic_sizer.backtest.significance.spa_test`) on the stitched out-of-sample per-bar returns
    (``returns``: the values of ``oos_values.csv`` from ``portfolio.init_cash``, in excess of the risk-free rate)."""
    from genetic_sizer.backtest.significance import DEFAULT_REPS, sharpe_significance, spa_test

    out: dict = {
        "strategy": "GA",
        "returns": "per-bar returns of the stitched out-of-sample values (oos_values.csv) from portfolio.init_cash, "
        "in excess of the risk-free rate",
        "reps": DEFAULT_REPS,
        "seed": int(seed),
    }
    col = {s: returns[:, i] for i, s in enumerate(strategies)}
    classical = [s for s in STRATEGIES[1:] if s in col]
    if "GA" not in col or not classical:
        out["note"] = "no GA or no classical allocation to compare"
        return out
    best = max(classical, key=lambda s: (oos[s].get("sharpe", -math.inf), -classical.index(s)))
    chosen = (
        "the classical allocation with the highest out-of-sample Sharpe ratio, chosen after the fact among "
        f"{classical} (a benchmark picked with hindsight: a harder one than any fixed choice)"
    )
    benchmarks = {}
    if "equal_weight" in col:
        benchmarks["equal_weight"] = "equal_weight"
    benchmarks["best_classical"] = best
    ga = col["GA"]
    for key, name in benchmarks.items():
        b = col[name]
        if np.array_equal(ga, b):
            out[key] = {
                "benchmark": name,
                "sharpe_difference": 0.0,
                "sharpe_difference_annualized": 0.0,
                "p_value": 1.0,
                "method": "identical",
                "block_length": None,
                "note": "GA's out-of-sample returns are the benchmark's",
            }
        else:
            try:
                tested = sharpe_significance(ga, {name: b}, periods_per_year, seed=seed)[name]
                out[key] = {"benchmark": name, **tested}
            except ConfigError as exc:
                out[key] = {
                    "benchmark": name,
                    **dict.fromkeys(("sharpe_difference", "sharpe_difference_annualized", "p_value", "method")),
                    "block_length": None,
                    "note": str(exc),
                }
        if key == "best_classical":
            out[key]["selection"] = chosen
    variants = [s for s in strategies if s == "GA" or s.startswith("GA_")]
    if "equal_weight" in col:
        try:
            spa = spa_test(
                np.column_stack([col[s] for s in variants]), col["equal_weight"], periods_per_year, seed=seed
            )
            out["spa"] = {
                "benchmark": "equal_weight",
                "candidates": variants,
                "best_strategy": variants[spa.best],
                **spa.as_dict(),
            }
        except ConfigError as exc:
            out["spa"] = {"benchmark": "equal_weight", "candidates": variants, "p_value": None, "note": str(exc)}
    return out


def held_windows(folds: list[Fold], execution_delay: int) -> list[tuple[int, int]]:
    """``(traded, until)`` bar positions of each fold: its weights are traded at the close of bar ``traded`` and
    held to the close of bar ``until``, where the next fold's are traded (the last fold: its last test bar); the
    returns they earn are those of the bars ``traded + 1 .. until``. With delay 0 these are exactly the fold's test
    window; with delay 1 each is one bar later (the last fold's one bar shorter)."""
    traded = [f.traded_at(execution_delay) for f in folds]
    return list(zip(traded, [*traded[1:], folds[-1].test_end], strict=True))


def stitch(
    config, prices: Prices, folds: list[Fold], results: list[dict], dropped: list[dict] | None = None
) -> WalkForwardResult:
    """The out-of-sample part of a walk-forward from its folds' results (see :func:`run_walkforward`).

    Each strategy is one continuous portfolio from the close fold 0's weights are traded at to the last test bar:
    its folds' weights as a schedule (segments starting at the close each fold's weights are traded at,
    :func:`held_windows`: by default the last bar before its test window, so the fold earns every return of it;
    ``walkforward.execution_delay: 1`` one bar later), each segment kept the way its fold says
    (:func:`fold_strategy`): with evolved genes the GA's calendar policy, drift band and (perp) leverage may change
    from one fold to the next, so they are passed per segment (``simulate(rebalance=[[...]], threshold=[[...]],
    leverage=[[...]])``; at a fold's first bar its targets are sized with its leverage from the equity the account
    has then). Each fold's out-of-sample figures are those of the returns its weights earned (the costs of the
    trades at a close are in that bar's value: a switch of weights is paid in the return of the bar it happens
    at, the outgoing fold's last). ``dropped`` (the test windows left out, :func:`~.folds.plan_folds`) goes into
    the record.
    """
    pf = config.portfolio
    skipped: dict[str, str] = {}
    strategies = []
    for s in strategy_names(results):
        missing = [r["number"] for r in results if s not in r["weights"]]
        if missing:
            why = results[missing[0]]["skipped"].get(s, "not fitted")
            skipped[s] = f"not available in fold(s) {missing}: {why}"
        else:
            strategies.append(s)
    delay = config.walkforward.execution_delay
    held = held_windows(folds, delay)
    first, last = held[0][0], folds[-1].test_end
    test = prices.bars(first, last + 1)
    schedule = np.array([[r["weights"][s] for r in results] for s in strategies], dtype=np.float64)
    starts = [traded - first for traded, _ in held]
    kept = [[fold_strategy(config, r, s) for r in results] for s in strategies]
    account = pf.account()  # the perp account (funding rides with the prices' bars)
    if pf.market == "perp":  # each segment at its fold's leverage (an evolved one with a leverage gene)
        account["leverage"] = [[k.get("leverage", pf.leverage) for k in row] for row in kept]
    bt = backtest(
        test,
        schedule,
        segment_starts=starts,
        rebalance=[[k["rebalance"] for k in row] for row in kept],
        threshold=[[k["threshold"] for k in row] for row in kept],
        fees=pf.fees,
        slippage=pf.slippage,
        init_cash=pf.init_cash,
        engine=config.engine,
        policy=pf.policy(),  # the rebalancing policy (minimum trade, maximum turnover, volatility target)
        **account,
    )
    risk_free = RiskFree.of(pf.risk_free)
    rf = risk_free.rates(test)  # Sharpe and Sortino of the returns in excess of it: one rate, or one per test bar
    ppy = prices.periods_per_year
    m = compute_metrics(bt.value, init_cash=pf.init_cash, periods_per_year=ppy, traded=bt.traded, risk_free=rf)
    m.update(account_metrics(bt))
    oos = {s: _metrics_dict(m, i) for i, s in enumerate(strategies)}
    fold_oos = []
    for traded, until in held:  # the returns of bars traded + 1 .. until, from the value at the close of `traded`
        lo, hi = traded - first, until - first
        per = {}
        for i, s in enumerate(strategies):
            if hi - lo >= 2 and bt.value[lo, i] > 0:
                mm = compute_metrics(
                    bt.value[lo + 1 : hi + 1, i],
                    init_cash=float(bt.value[lo, i]),
                    periods_per_year=prices.periods_per_year,
                    risk_free=rf if rf.size == 1 else rf[lo + 1 : hi + 1],
                )
                per[s] = _metrics_dict(mm, 0)
        fold_oos.append(per)
    trials_pbos = [
        None
        if "oos_trials" not in r
        else trials_pbo(
            config, prices.bars(t, u + 1), r["oos_trials"]["weights"], r["oos_trials"]["genes"], "test (held out)"
        )
        for r, (t, u) in zip(results, held, strict=True)
    ]
    record = {
        "schema": WALKFORWARD_SCHEMA,
        "schema_version": WALKFORWARD_VERSION,
        "symbols": list(prices.symbols),
        "settings": {
            "walkforward": {
                "train": config.walkforward.train,
                "test": config.walkforward.test,
                "purge": config.walkforward.purge,
                "anchored": config.walkforward.anchored,
                "keep_partial": config.walkforward.keep_partial,
                "execution_delay": delay,
            },
            "portfolio": {**{k: getattr(pf, k) for k in _RECORDED_PORTFOLIO_KEYS}, "risk_free": risk_free.record(test)},
            "objective": list(config.objective),
            "evolution": {
                "seed": config.evolution.seed,
                "population": config.evolution.population,
                "generations": config.evolution.generations,
                "genes": config.evolution.genes,
            },
            "engine": config.engine,
            "config_sha256": config.sha256(),
            "data": prices.provenance(),
        },
        "folds": [
            {
                "number": f.number,
                **f.bounds(prices.index),
                "traded_at": prices.index[held[k][0]].isoformat(),
                "held_until": prices.index[held[k][1]].isoformat(),
                "seed": r["seed"],
                "evaluations": r["evaluations"],
                "weights": {s: dict(zip(prices.symbols, map(float, w), strict=True)) for s, w in r["weights"].items()},
                "strategy": {s: fold_strategy(config, r, s) for s in r["weights"]},
                "skipped": r["skipped"],
                "in_sample": r["in_sample"],
                "out_of_sample": fold_oos[k],
                "trials": r["trials"],
                "deflated_sharpe": r["deflated_sharpe"],
                "pbo": r["pbo"],
                **({"pbo_note": r["pbo_note"]} if r.get("pbo_note") else {}),
                **{k: r[k] for k in ("selection", "excess_deflated_sharpe", "representative_pbo") if k in r},
                **({"representative_pbo": trials_pbos[k]} if trials_pbos[k] is not None else {}),
                "deployed": deployed_text(r),
            }
            for k, (f, r) in enumerate(zip(folds, results, strict=True))
        ],
        "dropped_windows": list(dropped or []),
        "strategies": strategies,
        "skipped": skipped,
        "out_of_sample": oos,
        "out_of_sample_window": {  # first_bar: the close fold 0's weights were traded at; its returns follow
            "first_bar": test.index[0].isoformat(),
            "last_bar": test.index[-1].isoformat(),
            "n_bars": test.n_bars,
        },
        "deflated_sharpe": results[-1]["deflated_sharpe"],
        "pbo": results[-1]["pbo"],
        "significance": significance_record(
            strategies, returns_of(bt.value, pf.init_cash, rf), oos, ppy, config.evolution.seed
        ),
    }
    if config.robust.active:
        record["settings"]["robust"] = {
            f.name: getattr(config.robust, f.name) for f in dataclasses.fields(config.robust)
        }
    return WalkForwardResult(
        config=config,
        prices=prices,
        folds=folds,
        fold_results=results,
        strategies=strategies,
        skipped=skipped,
        oos_index=test.index,
        oos_values=bt.value,
        oos_rebalance=bt.rebalance,
        oos=oos,
        fold_oos=fold_oos,
        record=_jsonable(record),
    )

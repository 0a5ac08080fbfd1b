"""Walk-forward evolution: evolve on a train window, hold the champion over the following test window, repeat.

Folds follow skfolio's :class:`~skfolio.model_selection.WalkForward` (which this module calls):
rolling train windows (expanding from the first bar when ``anchored``), ``purge`` bars left out between a
train window's end and its test window, test windows back to back without overlap, the last partial
window dropped. Windows are counted in bars of closes (``train: 504``) or in calendar spans
(``train: "3Y", test: "1Y"``: test windows start on the first bar of each period, as skfolio's ``freq``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genetic_sizer.config import WalkForwardConfig, parse_holdout, parse_window
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError

__all__ = ["Fold", "deflated_sharpe_of", "make_folds", "returns_of", "split_holdout", "window_record"]

MIN_TRAIN_BARS = 3
"""The fewest bars an evolution can run on (two returns for a standard deviation)."""

_FREQ = {"D": "D", "W": "W-MON", "M": "MS", "Q": "QS", "Y": "YS"}
"""pandas frequency whose periods start each calendar test window, by span unit."""


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: bar positions (inclusive) of its train and test windows."""

    number: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    @property
    def train(self) -> slice:
        return slice(self.train_start, self.train_end + 1)

    @property
    def test(self) -> slice:
        return slice(self.test_start, self.test_end + 1)

    def bounds(self, index: pd.DatetimeIndex) -> dict[str, str]:
        """The fold's windows as ISO-8601 bar timestamps (inclusive)."""
        return {
            "train_start": index[self.train_start].isoformat(),
            "train_end": index[self.train_end].isoformat(),
            "test_start": index[self.test_start].isoformat(),
            "test_end": index[self.test_end].isoformat(),
        }


def _offset(n: int, unit: str) -> pd.DateOffset:
    return {
        "D": pd.DateOffset(days=n),
        "W": pd.DateOffset(weeks=n),
        "M": pd.DateOffset(months=n),
        "Q": pd.DateOffset(months=3 * n),
        "Y": pd.DateOffset(years=n),
    }[unit]


def _splitter(config: WalkForwardConfig):
    from skfolio.model_selection import WalkForward

    train, test = config.window("train"), config.window("test")
    if isinstance(test, int):
        return WalkForward(
            test_size=test,
            train_size=train,
            purged_size=config.purge,
            expand_train=config.anchored,
            reduce_test=config.keep_partial,
        )
    (n_test, unit), (n_train, train_unit) = test, train
    return WalkForward(
        test_size=n_test,
        train_size=_offset(n_train, train_unit),
        freq=_FREQ[unit],
        purged_size=config.purge,
        expand_train=config.anchored,
        reduce_test=config.keep_partial,
    )


def make_folds(index: pd.DatetimeIndex, config: WalkForwardConfig) -> list[Fold]:
    """The walk-forward folds of a price index.

    Parameters
    ----------
    index : DatetimeIndex
        Bar timestamps of the whole window (``Prices.index``).
    config : WalkForwardConfig

    Returns
    -------
    list of Fold, in time order; a ConfigError when the window holds no complete fold (or a train window
    shorter than 3 bars, too short to evolve on).
    """
    frame = pd.DataFrame(np.zeros((len(index), 1)), index=index)
    try:
        splits = list(_splitter(config).split(frame))
    except ValueError as exc:
        raise ConfigError(f"walkforward: {exc}") from None
    folds = []
    for train, test in splits:
        if len(test) == 0:
            continue
        folds.append(Fold(len(folds), int(train[0]), int(train[-1]), int(test[0]), int(test[-1])))
    span = f"{index[0].date()} .. {index[-1].date()}, {len(index)} bars"
    if not folds:
        raise ConfigError(
            f"walkforward: train {config.train!r} + purge {config.purge} + test {config.test!r} does not fit "
            f"in the data ({span}): no complete fold"
        )
    short = [f for f in folds if f.train_end - f.train_start + 1 < MIN_TRAIN_BARS]
    if short:
        raise ConfigError(
            f"walkforward: fold {short[0].number}'s train window has "
            f"{short[0].train_end - short[0].train_start + 1} bar(s); at least {MIN_TRAIN_BARS} are needed"
        )
    return folds


# ---- a held-out final window (genetic-sizer evolve) ------------------------------------------------
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


def window_record(prices: Prices) -> dict:
    """A window's first and last bar (ISO-8601) and its number of bars."""
    return {"first_bar": prices.index[0].isoformat(), "last_bar": prices.index[-1].isoformat(), "n_bars": prices.n_bars}


def returns_of(values: np.ndarray, init_cash: float) -> np.ndarray:
    """Per-bar simple returns of value paths (n_bars,) or (n_bars, k), the first from ``init_cash`` (the
    fitness metrics' convention)."""
    v = np.asarray(values, dtype=np.float64)
    prev = np.concatenate([np.full((1, *v.shape[1:]), init_cash), v[:-1]])
    return v / prev - 1.0


def deflated_sharpe_of(values: np.ndarray, init_cash: float, trials: dict) -> float | None:
    """Deflated Sharpe ratio of one value path given the trials that selected it (``{"n", "sharpe_variance"}``);
    None when it cannot be computed (fewer than 2 trials or 3 returns)."""
    from genetic_sizer.backtest import stats

    n, var = trials.get("n", 0), trials.get("sharpe_variance", math.nan)
    r = returns_of(values, init_cash)
    if n < 2 or not math.isfinite(var) or len(r) < 3:
        return None
    return float(stats.probabilistic_sharpe(r, stats.expected_max_sharpe(n, var)))


# ---- walk-forward evolution -------------------------------------------------------------------------
STRATEGIES = ("GA", "equal_weight", "inverse_volatility", "min_variance", "max_sharpe", "hrp")
"""Strategy names in ``walkforward.json`` and ``oos_values.csv``: the evolved champion, then the classical
allocations refitted on every train window."""

WALKFORWARD_FILE = "walkforward.json"
OOS_VALUES_FILE = "oos_values.csv"
WALKFORWARD_SCHEMA = "genetic_sizer/walkforward"
WALKFORWARD_VERSION = 1
PBO_CANDIDATES = 1000
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
PBO_BLOCKS = 16


def fold_seed(seed: int, fold: int) -> int:
    """The evolution seed of fold ``fold``: derived from the run's seed and the fold number (SeedSequence), so
    folds are independent of each other and of where they run."""
    words = np.random.SeedSequence([int(seed), int(fold)]).generate_state(2, dtype=np.uint32)
    return int((int(words[0]) << 31) ^ int(words[1])) & (2**63 - 1)


def fold_config(config, fold: int):
    """The configuration one fold evolves with: the run's, with the fold's seed and no holdout (the fold's test
    window is its out-of-sample part)."""
    import dataclasses

    ev = dataclasses.replace(config.evolution, seed=fold_seed(config.evolution.seed, fold), holdout=0)
    return dataclasses.replace(config, evolution=ev)


def _metrics_dict(metrics: dict, i: int, names=None) -> dict:
    return {k: float(v[i]) for k, v in metrics.items() if names is None or k in names}


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
    ``deflated_sharpe``, ``pbo`` (None with ``pbo_note`` when it cannot be computed), ``logbook``.
    """
    import tempfile

    from genetic_sizer.evolution.seeding import classical_allocations
    from genetic_sizer.backtest import stats
    from genetic_sizer.evolution.evaluator import Evaluator
    from genetic_sizer.evolution.loop import evolve
    from genetic_sizer.runs.results import fixed_strategy

    cfg = fold_config(config, fold.number)
    train = prices.bars(fold.train_start, fold.train_end + 1)
    if run_dir is None:
        with tempfile.TemporaryDirectory(prefix=f"gs-fold{fold.number}-") as tmp:
            result = evolve(cfg, train, tmp)
    else:
        result = evolve(cfg, train, run_dir, resume=resume)
    allocations, skipped = classical_allocations(train, result.space)
    weights = {"GA": result.champion, **allocations}
    evaluator = Evaluator.from_config(train, cfg)
    names = list(weights)
    strategies = {s: fixed_strategy(cfg, result.genes) for s in names}
    strategies["GA"] = result.strategy(0)
    bt = evaluator.backtest_strategies(np.stack([weights[s] for s in names]), [strategies[s] for s in names])
    metrics = evaluator.metrics_of(bt)
    genes = result.champion_genes
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
        "deflated_sharpe": deflated_sharpe_of(bt.value[:, 0], cfg.portfolio.init_cash, result.trials),
        "pbo": None,
        "pbo_note": None,
        "logbook": result.logbook,
    }
    sample = result.trial_sample
    n_returns = train.n_bars
    if sample is None or len(sample) < 2:
        out["pbo_note"] = f"fewer than 2 distinct genomes evaluated ({0 if sample is None else len(sample)})"
    elif n_returns < PBO_BLOCKS:
        out["pbo_note"] = f"the train window has {n_returns} returns, fewer than the {PBO_BLOCKS} blocks CSCV cuts"
    else:
        sample_genes = None if result.genes is None else result.trial_sample_genes[:PBO_CANDIDATES]
        values = evaluator.backtest(sample[:PBO_CANDIDATES], genes=sample_genes).value
        out["pbo"] = float(stats.pbo(returns_of(values, cfg.portfolio.init_cash), n_blocks=PBO_BLOCKS))
        out["pbo_candidates"] = int(min(len(sample), PBO_CANDIDATES))
    return out


def _fold_task(shared, fold: Fold) -> dict:
    """One fold as a Ray task (``shared`` = (config, prices), put in the object store once)."""
    config, prices = shared
    return run_fold(config, prices, fold)


@dataclass
class WalkForwardResult:
    """A finished walk-forward: folds, what each produced, and the stitched out-of-sample portfolios.

    ``oos_values`` is (n_test_bars, n_strategies), the value of every strategy over the whole test span (first
    test bar to last) as ONE continuous portfolio each; ``oos`` their metrics; ``fold_oos[k]`` the metrics of
    each strategy within fold k's test window (the same continuous portfolio, measured from the value it had
    when the window began); ``record`` is what ``walkforward.json`` holds.
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
    return value


def _fold_path(run_dir, k: int):
    from pathlib import Path

    return Path(run_dir) / "folds" / f"fold-{k:03d}.json"


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
    from genetic_sizer.runs.rundir import RunDir

    rd = RunDir(run_dir)
    if resume:
        rd.pull()  # a run at a storage URL: its finished folds
    folds = make_folds(prices.index, config.walkforward)
    results: list[dict | None] = [(_read_fold(_fold_path(rd.path, f.number), f) if resume else None) for f in folds]
    todo = [f for f, r in zip(folds, results, strict=True) if r is None]

    def finished(fold: Fold, rec: dict) -> None:
        import shutil

        _write_fold(_fold_path(rd.path, fold.number), rec)
        results[fold.number] = rec
        # the fold's checkpoints are no longer needed: its result (logbook included) is saved
        shutil.rmtree(rd.path / "folds" / f"fold-{fold.number:03d}", ignore_errors=True)
        rd.sync()  # a run at a storage URL keeps every finished fold
        if on_fold is not None:
            on_fold(fold, rec, sum(r is not None for r in results), len(folds))

    if todo and config.parallel.backend == "ray":
        from genetic_sizer.cluster.raymap import run_tasks

        run_tasks(
            _fold_task,
            (config, prices),
            todo,
            address=config.parallel.address,
            on_result=lambda i, rec: finished(todo[i], rec),
        )
    else:
        for fold in todo:
            fold_dir = rd.path / "folds" / f"fold-{fold.number:03d}"
            again = RunDir(fold_dir).has_checkpoint
            finished(fold, run_fold(config, prices, fold, run_dir=fold_dir, resume=again))

    return stitch(config, prices, folds, results)


def fold_strategy(config, result: dict, name: str) -> dict:
    """How strategy ``name`` kept its weights in a fold (``{"rebalance", "threshold"}``, and ``"leverage"`` when the
    run evolves it): as the fold's result records (the GA champion's evolved genes), else the run's policy without a
    drift band (results written before strategy genes); a fold without a leverage is at ``portfolio.leverage``."""
    recorded = (result.get("strategy") or {}).get(name)
    return recorded or {"rebalance": config.portfolio.rebalance, "threshold": None}


def stitch(config, prices: Prices, folds: list[Fold], results: list[dict]) -> WalkForwardResult:
    """The out-of-sample part of a walk-forward from its folds' results (see :func:`run_walkforward`).

    Each strategy is one continuous portfolio over the whole test span: its folds' weights as a schedule
    (segments starting on each test window's first bar), each segment kept the way its fold says
    (:func:`fold_strategy`): with evolved genes the GA's calendar policy, drift band and (perp) leverage may change
    from one fold to the next, so they are passed per segment (``simulate(rebalance=[[...]], threshold=[[...]],
    leverage=[[...]])``; at a fold's first bar its targets are sized with its leverage from the equity the account
    has then).
    """
    from genetic_sizer.backtest.metrics import account_metrics, compute_metrics
    from genetic_sizer.backtest.simulate import backtest

    pf = config.portfolio
    skipped: dict[str, str] = {}
    strategies = []
    for s in STRATEGIES:
        missing = [r["number"] for r in results if s not in r["weights"]]
        if missing:
            why = results[missing[0]]["skipped"].get(s, "not fitted")
            skipped[s] = f"not available in fold(s) {missing}: {why}"
        else:
            strategies.append(s)
    first, last = folds[0].test_start, folds[-1].test_end
    test = prices.bars(first, last + 1)
    schedule = np.array([[r["weights"][s] for r in results] for s in strategies], dtype=np.float64)
    starts = [f.test_start - first for f in folds]
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
        **account,
    )
    m = compute_metrics(bt.value, init_cash=pf.init_cash, periods_per_year=prices.periods_per_year, traded=bt.traded)
    m.update(account_metrics(bt))
    oos = {s: _metrics_dict(m, i) for i, s in enumerate(strategies)}
    fold_oos = []
    for f in folds:
        lo, hi = f.test_start - first, f.test_end - first + 1
        start_value = bt.value[lo - 1] if lo > 0 else np.full(len(strategies), pf.init_cash)
        per = {}
        for i, s in enumerate(strategies):
            v = bt.value[lo:hi, i]
            if hi - lo >= 2 and start_value[i] > 0:
                mm = compute_metrics(v, init_cash=float(start_value[i]), periods_per_year=prices.periods_per_year)
                per[s] = _metrics_dict(mm, 0)
        fold_oos.append(per)
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
            },
            "portfolio": {k: getattr(pf, k) for k in _RECORDED_PORTFOLIO_KEYS},
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
            }
            for k, (f, r) in enumerate(zip(folds, results, strict=True))
        ],
        "strategies": strategies,
        "skipped": skipped,
        "out_of_sample": oos,
        "out_of_sample_window": {
            "first_bar": test.index[0].isoformat(),
            "last_bar": test.index[-1].isoformat(),
            "n_bars": test.n_bars,
        },
        "deflated_sharpe": results[-1]["deflated_sharpe"],
        "pbo": results[-1]["pbo"],
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

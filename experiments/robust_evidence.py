"""Issue 23's evidence: does the robust GA hold up out of sample against 1/N, the classical allocators and cheap rules?

Every figure is out of sample and, within a data set, every strategy is measured on the same walk-forward folds:
:func:`genetic_sizer.validation.walkforward.run_walkforward` evolves the GA (the deployed champion ``GA``, the plain
GA ``GA_plain`` and each robust method ``GA_<method>`` the tree implements at run time) and refits the classical
allocators on each train window, the cheap rules of :mod:`genetic_sizer.allocators.rules` among them (the 1/N and
minimum-variance 50/50 blend, Kirby and Ostdiek's volatility timing). The synthetic study stitches fixed weights
through the same held windows (:func:`genetic_sizer.validation.stitch.held_windows`) with the same costs; that stitch
is checked on every real data set by re-stitching 1/N, which must equal the walk-forward's own 1/N to 1e-9.

Part ``real``: per data set, a table of the annualized out-of-sample Sharpe ratio (of returns in excess of the
risk-free rate where the data has one), the p-value of its difference from 1/N's (the studentized circular block
bootstrap of Ledoit and Wolf 2008, :func:`genetic_sizer.backtest.significance.sharpe_significance`) and the annualized
turnover. Data sets:

* ``sp20_monthly``, ``sp20_daily``: the embedded 20 S&P 500 stocks (skfolio), 2005-2022 (monthly: month-end closes),
  5 bp fees; daily 3-year train / 1-year test as ``configs/walkforward.yaml``, monthly 5-year train (60 months for
  20 assets) / 1-year test. The universe is today's index members (survivorship bias).
* ``factors_daily``: skfolio's embedded factor ETFs (MTUM, QUAL, SIZE, USMV, VLUE), 2014-2022, 3Y / 1Y, 5 bp fees.
* ``french_ind12``, ``french_size_value9``, ``french_size_mom9``: the monthly Ken French portfolios shipped by
  ``linearmodels`` (the ``bench`` extra): 12 industries, 9 size/value, 9 size/momentum, 1949-01 .. 2017-03, read as
  ``data.kind: returns`` (fractions) stamped at month ends; 120-month rolling window as in DeMiguel, Garlappi and
  Uppal (2009), **refitted yearly** (they re-estimate monthly: a deviation, taken for the machine's time), no costs,
  Sharpe of excess returns over the data's ``RF`` column (as in the paper).

Part ``synthetic``: known truth (:mod:`genetic_sizer.data.synthetic`), ``--reps`` replications (fixed seeds) of
(a) the equal market (10 assets, equal mean 8 %, volatility 16 %, correlation 0.5: 1/N is the true maximum-Sharpe
portfolio) and (b) the tilted market (10 assets, volatilities 12-24 %, Sharpe ratios 0.9 down to 0.1, correlation
0.3: the true optimum is far from 1/N), monthly, 15 years: 5-year train, 5-year test windows (2 folds, 10 years out
of sample), no costs. Reported per strategy: the mean and standard deviation of the out-of-sample Sharpe ratio over
the replications, its mean relative to 1/N's, and the fraction of replications it beats 1/N; for (b) the true
optimum's Sharpe ratio and the realized Sharpe of the true optimum held over the same windows (``true_optimum``).

Run: ``.venv/bin/python experiments/robust_evidence.py`` (writes ``experiments/results/robust_evidence.{json,md}``;
``--quick`` is a smoke run on tiny settings written to ``robust_evidence_quick.*``). The robust settings are the
``robust:`` section of ``--robust-config`` (default ``configs/robust.yaml`` when it exists), with ``methods`` set to
every method of :data:`genetic_sizer.config.robust.METHODS` that runs in this tree (probed on a tiny market first).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from genetic_sizer.allocators.classical import fit_allocations
from genetic_sizer.allocators.rules import RULES
from genetic_sizer.backtest.metrics import compute_metrics
from genetic_sizer.backtest.riskfree import RiskFree
from genetic_sizer.backtest.significance import sharpe_significance
from genetic_sizer.backtest.simulate import backtest
from genetic_sizer.config import RobustConfig, RunConfig, read_yaml
from genetic_sizer.config.robust import METHODS
from genetic_sizer.data import synthetic
from genetic_sizer.data.loaders import load, load_default
from genetic_sizer.data.prices import Prices
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.storage import files
from genetic_sizer.validation.stitch import held_windows
from genetic_sizer.validation.walkforward import run_walkforward

ROOT = Path(__file__).resolve().parent
FRENCH = {
    "french_ind12": "NoDur Durbl Manuf Enrgy Chems BusEq Telcm Utils Shops Hlth Money Other".split(),
    "french_size_value9": ["S1V1", "S1V3", "S1V5", "S3V1", "S3V3", "S3V5", "S5V1", "S5V3", "S5V5"],
    "french_size_mom9": ["S1M1", "S1M3", "S1M5", "S3M1", "S3M3", "S3M5", "S5M1", "S5M3", "S5M5"],
}
DATASETS = ("sp20_monthly", "sp20_daily", "factors_daily", *FRENCH)


# ---- data -----------------------------------------------------------------------------------------------------
def french_returns() -> pd.DataFrame:
    """linearmodels' monthly Ken French data as fractions, stamped at the end of the month each return is for."""
    try:
        from linearmodels.datasets import french
    except ImportError:
        sys.exit("the French portfolios need linearmodels: .venv/bin/pip install -c constraints.txt -e '.[dev,bench]'")
    frame = french.load()
    dates = pd.DatetimeIndex(frame.pop("dates")) + pd.offsets.MonthEnd(0)
    frame.index = dates
    return frame


def dataset(name: str, workdir: Path, quick: bool = False) -> tuple[Prices, dict, dict]:
    """``(prices, config overrides, description)`` of data set ``name`` (``quick``: a few recent years only)."""
    if name in FRENCH:
        frame = french_returns()
        path = workdir / f"{name}.csv"
        frame[FRENCH[name]].rename_axis("date").to_csv(path)
        start = "2004-12-31" if quick else None
        prices = load("csv", path, start=start, kind="returns", returns_unit="fraction")
        rf = frame[["RF"]].copy()
        # bar 0 is the first price (1.0), one month before the first return: no holding period, no cash return
        rf.loc[prices.index[0].tz_convert(None)] = 0.0
        rf_path = workdir / f"{name}_rf.csv"
        rf.sort_index().rename_axis("date").to_csv(rf_path)
        over = {
            "portfolio": {"fees": 0.0, "risk_free": {"path": str(rf_path), "column": "RF", "kind": "per_period"}},
            "walkforward": {"train": "10Y", "test": "1Y", "keep_partial": False},
        }
        what = f"Ken French {name[7:]} (linearmodels), monthly returns -> prices, 120M rolling, yearly refit, no costs"
        return prices, over, {"description": what}
    if name.startswith("sp20"):
        prices = load_default(start="2014-01-01" if quick else "2005-01-01", end="2022-12-31")
        over = {"portfolio": {"fees": 0.0005}, "walkforward": {"train": "3Y", "test": "1Y", "keep_partial": True}}
        if name == "sp20_monthly":
            month = prices.to_frame().resample("ME").last()
            prices = Prices.from_frame(month, source=f"{prices.source} (month-end closes)")
            over["walkforward"]["train"] = "5Y"
        return prices, over, {"description": f"embedded S&P 20, {name[5:]}, 5 bp fees"}
    if name == "factors_daily":
        from skfolio.datasets import load_factors_dataset

        prices = Prices.from_frame(load_factors_dataset(), source="skfolio.datasets.load_factors_dataset")
        over = {"portfolio": {"fees": 0.0005}, "walkforward": {"train": "3Y", "test": "1Y", "keep_partial": True}}
        return prices, over, {"description": "skfolio factor ETFs, daily 2014-2022, 5 bp fees"}
    raise SystemExit(f"unknown data set {name!r}; known: {list(DATASETS)}")


# ---- configuration ----------------------------------------------------------------------------------------------
def base_robust(path: Path | None) -> dict:
    if path is None or not path.is_file():
        return {}
    return dict(read_yaml(path).get("robust") or {})


def make_config(over: dict, robust: dict, methods, args, seed: int) -> RunConfig:
    raw = {
        "portfolio": {"direction": "longonly", "rebalance": "M", "slippage": 0.0, "init_cash": 10_000},
        "objective": "sharpe",
        "evolution": {"population": args.population, "generations": args.generations, "seed": seed},
        "walkforward": {"purge": 0, "anchored": False},
        "robust": {**robust, "methods": list(methods)},
        "engine": "fast",
    }
    for section, values in over.items():
        raw[section] = {**raw.get(section, {}), **values}
    return RunConfig.from_dict(raw)


ACTIVATE = {"resampled": {"resample": "blocks"}, "shrink": {"shrink": 0.5}, "ensemble": {"ensemble": "top_k"}}
"""The setting that turns a method on when the robust section leaves it at its default (plain GA): resampled fitness
on 4 contiguous blocks of the train window combined as mean - 1 x std; a fixed 50/50 shrink toward 1/N; the average
of the hall of fame's top 5."""


def activated(robust: dict, methods) -> dict:
    out = dict(robust)
    defaults = RobustConfig()
    for m in methods:
        for key, value in ACTIVATE.get(m, {}).items():
            if out.get(key, getattr(defaults, key)) == getattr(defaults, key):
                out[key] = value
    return out


def available_methods(robust: dict, args) -> tuple[list[str], dict]:
    """The robust methods this tree runs: each of METHODS tried alone on a tiny walk-forward (switched on by
    :data:`ACTIVATE` when the robust section leaves it off)."""
    market = synthetic.equal_market(4, n_returns=84, seed=0)
    tiny = argparse.Namespace(population=8, generations=2)
    ok, why = [], {}
    for m in METHODS:
        try:
            over = {"walkforward": {"train": "5Y", "test": "2Y"}}
            cfg = make_config(over, activated(robust, [m]), [m], tiny, 0)
            with tempfile.TemporaryDirectory() as tmp:
                wf = run_walkforward(cfg, market.prices, Path(tmp) / "wf")
            name = "GA_plain" if m == "plain" else f"GA_{m}"
            if name not in wf.strategies:
                why[m] = f"walk-forward ran but reported no {name} (strategies: {wf.strategies})"
            else:
                ok.append(m)
        except Exception as exc:  # a method another change has not landed yet: reported, not fatal
            why[m] = f"{type(exc).__name__}: {exc}"
    return ok, why


# ---- one walk-forward, and the stitch of fixed weights checked against it -----------------------------------------
def stitch_fixed(cfg: RunConfig, prices: Prices, folds, weights: dict[str, list[np.ndarray]]):
    """Values (n_bars, k) of fold weight schedules held as the walk-forward holds its benchmarks."""
    pf = cfg.portfolio
    held = held_windows(folds, cfg.walkforward.execution_delay)
    first, last = held[0][0], folds[-1].test_end
    test = prices.bars(first, last + 1)
    names = list(weights)
    schedule = np.array([np.stack(weights[s]) for s in names], dtype=np.float64)
    bt = backtest(
        test,
        schedule,
        segment_starts=[t - first for t, _ in held],
        rebalance=pf.rebalance,
        fees=pf.fees,
        slippage=pf.slippage,
        init_cash=pf.init_cash,
        engine=cfg.engine,
    )
    rf = RiskFree.of(pf.risk_free).rates(test)
    m = compute_metrics(
        bt.value, init_cash=pf.init_cash, periods_per_year=prices.periods_per_year, traded=bt.traded, risk_free=rf
    )
    return bt.value, {s: {k: float(v[i]) for k, v in m.items()} for i, s in enumerate(names)}, rf


def walk(cfg: RunConfig, prices: Prices) -> dict:
    """Walk forward (the cheap rules are allocators of the walk-forward itself); every strategy's OOS values. 1/N is
    stitched again by :func:`stitch_fixed` and must match the walk-forward's to 1e-9, so that the synthetic study's
    :func:`walk_light` (which stitches with it) is comparable."""
    with tempfile.TemporaryDirectory(prefix="gs-evidence-") as tmp:
        wf = run_walkforward(cfg, prices, Path(tmp) / "wf")
    equal = [np.asarray(r["weights"]["equal_weight"]) for r in wf.fold_results]
    values, _, rf = stitch_fixed(cfg, prices, wf.folds, {"equal_weight": equal})
    ew = wf.strategies.index("equal_weight")
    gap = float(np.max(np.abs(values[:, 0] / wf.oos_values[:, ew] - 1.0)))
    if gap > 1e-9:
        raise AssertionError(f"re-stitched 1/N differs from the walk-forward's by {gap:.2e}: stitches not comparable")
    series = {s: wf.oos_values[:, i] for i, s in enumerate(wf.strategies)}
    oos = {s: dict(wf.oos[s]) for s in wf.strategies}
    return {"wf": wf, "series": series, "oos": oos, "rf": rf}


def walk_light(cfg: RunConfig, prices: Prices, extra: dict | None = None) -> dict:
    """The synthetic study's walk-forward without the per-fold diagnostics (PBO, deflated Sharpe, significance):
    the same folds (:func:`plan_folds`), each fold's GA weights from the function ``run_walkforward`` calls per fold
    (:func:`genetic_sizer.validation.methods.robust_fold`: ``GA``, ``GA_plain``, each ``GA_<method>``), the five
    classical allocators and the rules refitted on its train window, all stitched by :func:`stitch_fixed`."""
    from genetic_sizer.runs.rundir import RunDir
    from genetic_sizer.validation.folds import fold_config, plan_folds
    from genetic_sizer.validation.methods import robust_fold

    folds = plan_folds(prices.index, cfg.walkforward).folds
    space = GenomeSpace.from_config(prices.symbols, cfg.portfolio)
    classical = ("equal_weight", "inverse_volatility", "min_variance", "max_sharpe", "hrp")
    schedule: dict[str, list] = {}
    for f in folds:
        train = prices.bars(f.train_start, f.train_end + 1)
        with tempfile.TemporaryDirectory(prefix="gs-evidence-fold-") as tmp:
            got = robust_fold(fold_config(cfg, f.number), train, RunDir(Path(tmp) / "fold"))
        fitted, _ = fit_allocations(train, space.lower, space.upper, space.min_position, names=(*classical, *RULES))
        for name, w in {"GA": got["weights"]["GA"], **got["weights"], **fitted, **(extra or {})}.items():
            if space.violation(w) is None:
                schedule.setdefault(name, []).append(np.asarray(w, dtype=np.float64))
    schedule = {k: v for k, v in schedule.items() if len(v) == len(folds)}
    _, metrics, _ = stitch_fixed(cfg, prices, folds, schedule)
    return {"oos": metrics}


def excess_returns(values: np.ndarray, rf: np.ndarray) -> np.ndarray:
    r = values[1:] / values[:-1] - 1.0
    return r - (rf if np.ndim(rf) == 0 or np.size(rf) == 1 else rf[1:])


# ---- parts ------------------------------------------------------------------------------------------------------
def part_real(names, robust, methods, args, workdir: Path) -> dict:
    out = {}
    for name in names:
        t0 = time.perf_counter()
        prices, over, info = dataset(name, workdir, args.quick)
        cfg = make_config(over, robust, methods, args, args.seed)
        res = walk(cfg, prices)
        ppy = prices.periods_per_year
        bench = excess_returns(res["series"]["equal_weight"], res["rf"])
        rows = {}
        for s, v in res["series"].items():
            row = {"sharpe": res["oos"][s]["sharpe"], "turnover": res["oos"][s].get("turnover")}
            if s != "equal_weight":
                test = sharpe_significance(
                    excess_returns(v, res["rf"]), {"equal_weight": bench}, ppy, reps=args.bootstrap_reps, seed=0
                )["equal_weight"]
                row.update(p_value=test["p_value"], method=test["method"], block_length=test["block_length"])
            rows[s] = row
        wf = res["wf"]
        out[name] = {
            **info,
            "n_assets": prices.n_assets,
            "periods_per_year": ppy,
            "folds": len(wf.folds),
            "out_of_sample": wf.record["out_of_sample_window"],
            "settings": {k: cfg.to_dict()[k] for k in ("portfolio", "walkforward", "evolution", "robust")},
            "skipped": dict(wf.skipped),
            "strategies": rows,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(f"\n## {name}: {info['description']} ({len(wf.folds)} folds, {out[name]['seconds']} s)", flush=True)
        print(table_real(out[name]), flush=True)
    return out


def part_synthetic(robust, methods, args) -> dict:
    out = {}
    cases = {"a_equal": synthetic.equal_market, "b_tilted": synthetic.tilted_market}
    for case, make in cases.items():
        if case not in args.cases:
            continue
        t0 = time.perf_counter()
        sharpes: dict[str, list[float]] = {}
        truth = None
        for rep in range(args.reps):
            seed = (1000 if case == "a_equal" else 2000) + rep
            market = make(10, n_returns=args.synthetic_months, seed=seed)
            truth = market
            over = {"portfolio": {"fees": 0.0}, "walkforward": {"train": "5Y", "test": "5Y", "keep_partial": False}}
            if args.quick:
                over["walkforward"] = {"train": "2Y", "test": "2Y", "keep_partial": False}
            cfg = make_config(over, robust, methods, args, seed)
            res = walk_light(cfg, market.prices, extra={"true_optimum": market.optimum})
            for s in res["oos"]:
                sharpes.setdefault(s, []).append(res["oos"][s]["sharpe"])
        ew = np.asarray(sharpes["equal_weight"])
        rows = {}
        for s, v in sharpes.items():
            v = np.asarray(v)
            rows[s] = {
                "mean": float(v.mean()),
                "std": float(v.std(ddof=1)) if len(v) > 1 else None,
                "relative_to_equal_weight": float(v.mean() / ew.mean() - 1.0),
                "won_vs_equal_weight": float((v > ew).mean()),
                "n": len(v),
            }
        out[case] = {
            "replications": args.reps,
            "months": args.synthetic_months,
            "true_equal_weight_sharpe": truth.equal_weight_sharpe,
            "true_optimum_sharpe": truth.optimum_sharpe,
            "true_optimum_distance_from_equal_weight": truth.distance,
            "true_optimum": [float(x) for x in truth.optimum],
            "strategies": rows,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(f"\n## synthetic {case} ({args.reps} replications, {out[case]['seconds']} s)", flush=True)
        print(table_synthetic(out[case]), flush=True)
    return out


# ---- tables -----------------------------------------------------------------------------------------------------
def _f(x, fmt="{:.3f}"):
    return "" if x is None else fmt.format(x)


def table_real(rec: dict) -> str:
    lines = ["| strategy | OOS Sharpe | p vs 1/N | turnover |", "|---|---:|---:|---:|"]
    for s, r in rec["strategies"].items():
        lines.append(f"| {s} | {_f(r['sharpe'])} | {_f(r.get('p_value'))} | {_f(r['turnover'], '{:.2f}')} |")
    return "\n".join(lines)


def table_synthetic(rec: dict) -> str:
    head = (
        f"true Sharpe: 1/N {rec['true_equal_weight_sharpe']:.3f}, optimum {rec['true_optimum_sharpe']:.3f} "
        f"(half-L1 distance from 1/N {rec['true_optimum_distance_from_equal_weight']:.3f})\n\n"
    )
    lines = ["| strategy | mean OOS Sharpe | std | vs 1/N | won vs 1/N |", "|---|---:|---:|---:|---:|"]
    for s, r in rec["strategies"].items():
        lines.append(
            f"| {s} | {r['mean']:.3f} | {_f(r['std'])} | {r['relative_to_equal_weight']:+.1%} | "
            f"{r['won_vs_equal_weight']:.0%} |"
        )
    return head + "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny GA, 2 replications, 2 data sets")
    ap.add_argument("--part", choices=("real", "synthetic", "both"), default="both")
    ap.add_argument("--datasets", nargs="+", default=None, help=f"of {list(DATASETS)}")
    ap.add_argument("--reps", type=int, default=None, help="synthetic replications (default 30; quick 2)")
    ap.add_argument("--population", type=int, default=None, help="GA population (default 40; quick 8)")
    ap.add_argument("--generations", type=int, default=None, help="GA generations (default 30; quick 3)")
    ap.add_argument("--bootstrap-reps", type=int, default=None, help="block bootstrap replications (default 1999)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--robust-config", type=Path, default=ROOT.parent / "configs" / "robust.yaml")
    ap.add_argument("--out", type=Path, default=None, help="output stem (default experiments/results/robust_evidence)")
    ap.add_argument("--methods", nargs="+", default=None, help=f"robust methods of {list(METHODS)} (default: probe)")
    ap.add_argument("--cases", nargs="+", default=["a_equal", "b_tilted"], help="synthetic cases to run")
    ap.add_argument("--merge", nargs="+", type=Path, default=None, help="JSON records of --part runs to combine")
    args = ap.parse_args(argv)
    q = args.quick
    args.reps = args.reps or (2 if q else 30)
    args.population = args.population or (8 if q else 40)
    args.generations = args.generations or (3 if q else 30)
    args.bootstrap_reps = args.bootstrap_reps or (199 if q else 1999)
    args.synthetic_months = 48 if q else 120
    names = args.datasets or (["sp20_monthly", "french_ind12"] if q else list(DATASETS))
    out = args.out or ROOT / "results" / ("robust_evidence_quick" if q else "robust_evidence")
    if args.merge:
        return merge(args.merge, out)
    t0 = time.perf_counter()
    robust = base_robust(args.robust_config)
    RobustConfig(**{**robust, "methods": []})  # a bad robust: section fails here, before anything runs
    if args.methods is None:
        methods, missing = available_methods(robust, args)
    else:
        methods, missing = (
            list(args.methods),
            {m: "not asked for (--methods)" for m in METHODS if m not in args.methods},
        )
    robust = activated(robust, methods)
    print(f"robust section: {robust or 'defaults (plain GA)'}; methods run: {methods}; not available: {missing}")
    record = {
        "command": "python experiments/robust_evidence.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "robust": robust,
        "methods": methods,
        "methods_not_available": missing,
    }
    with tempfile.TemporaryDirectory(prefix="gs-evidence-data-") as tmp:
        if args.part in ("real", "both"):
            record["real"] = part_real(names, robust, methods, args, Path(tmp))
    if args.part in ("synthetic", "both"):
        record["synthetic"] = part_synthetic(robust, methods, args)
    record["seconds"] = round(time.perf_counter() - t0, 1)
    return write(record, out)


def write(record: dict, out: Path) -> dict:
    """``out``.json (the record) and ``out``.md (its tables)."""
    commands = record.get("commands") or [record["command"]]
    md = ["# Robust GA evidence (issue 23)\n", *(f"`{c.strip()}`\n" for c in commands)]
    md.append(f"robust section: `{json.dumps(record['robust'])}`; methods: {record['methods']}\n")
    for name, rec in record.get("real", {}).items():
        md.append(f"## {name}\n\n{rec['description']}; {rec['folds']} folds\n\n{table_real(rec)}\n")
    for case, rec in record.get("synthetic", {}).items():
        md.append(f"## synthetic {case} ({rec['replications']} replications)\n\n{table_synthetic(rec)}\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    files.write_text(out.with_suffix(".json"), json.dumps(_plain(record), indent=1, allow_nan=False) + "\n")
    files.write_text(out.with_suffix(".md"), "\n".join(md))
    print(f"\nwrote {out.with_suffix('.json')} and {out.with_suffix('.md')} ({record.get('seconds')} s)")
    return record


def merge(paths, out: Path) -> dict:
    """One record from the records of ``--part`` runs (their robust settings must agree)."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    first = parts[0]
    for p in parts[1:]:
        if (p["robust"], p["methods"]) != (first["robust"], first["methods"]):
            raise SystemExit(f"cannot merge runs of different robust settings: {p['robust']} vs {first['robust']}")
    record = {k: first[k] for k in ("robust", "methods", "methods_not_available")}
    record["commands"] = [p["command"] for p in parts]
    record["settings"] = [p["settings"] for p in parts]
    for key in ("real", "synthetic"):
        for p in parts:
            record.setdefault(key, {}).update(p.get(key, {}))
    record["seconds"] = sum(p.get("seconds", 0) for p in parts)
    return write(record, out)


def _plain(value):
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic,)):
        return _plain(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


if __name__ == "__main__":
    main()

"""The ``genetic-sizer`` command line. Thin: parsing and printing; the work lives in the modules.

Heavy modules (vectorbt, ray, the exchange SDK) are imported inside the commands that need them, so
``genetic-sizer --help`` starts fast.
"""

from __future__ import annotations

import argparse
import sys
import time

from genetic_sizer import vocab as V
from genetic_sizer._version import __version__
from genetic_sizer.errors import GeneticSizerError


def _rebalance_arg(text: str):
    from genetic_sizer.errors import ConfigError

    try:
        return V.parse_rebalance(text, "--rebalance")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default="default", choices=V.DATA_SOURCES)
    p.add_argument("--path", default=None, help="price file for csv/parquet/hyperliquid (data fetch) sources")
    p.add_argument("--symbols", nargs="+", default=None, help="assets to select (default: all)")
    p.add_argument("--start", default=None, help="first bar (inclusive), e.g. 2015-01-01")
    p.add_argument("--end", default=None, help="last bar (inclusive)")
    p.add_argument("--leading-gaps", default="trim", choices=V.LEADING_GAP_POLICIES)


def _load(args):
    from genetic_sizer.data.loaders import load

    return load(args.source, args.path, args.symbols, args.start, args.end, leading_gaps=args.leading_gaps)


def cmd_data_info(args) -> int:
    prices = _load(args)
    prov = prices.provenance()
    print(f"source           {prov['source']}")
    for note in prices.notes:
        print(f"read             {note}")
    print(f"assets           {prices.n_assets}: {' '.join(prices.symbols)}")
    print(f"bars             {prov['n_bars']}  ({prov['first_bar']} .. {prov['last_bar']})")
    print(f"periods/year     {prov['periods_per_year']:g}")
    if prices.trimmed_bars:
        print(f"leading gaps     trimmed {prices.trimmed_bars} bars so that every asset is priced")
    print(f"close sha256     {prov['close_sha256']}")
    return 0


def cmd_backtest(args) -> int:
    import numpy as np

    from genetic_sizer.backtest.metrics import account_metrics, compute_metrics
    from genetic_sizer.backtest.simulate import backtest

    prices = _load(args)
    if args.weights is None:
        weights = np.full(prices.n_assets, 1.0 / prices.n_assets)
        label = "equal weight"
    else:
        weights = np.array(args.weights, dtype=float)
        label = "given weights"
    rebalance = args.rebalance
    account = {"market": args.market, "leverage": args.leverage, "max_leverage": args.max_leverage}
    fees = args.fees if args.fees is not None else V.DEFAULT_FEES[args.market]
    bt = backtest(
        prices,
        weights,
        rebalance=rebalance,
        threshold=args.threshold,
        fees=fees,
        slippage=args.slippage,
        init_cash=args.init_cash,
        engine=args.engine,
        **account,
    )
    m = compute_metrics(bt.value, init_cash=args.init_cash, periods_per_year=prices.periods_per_year, traded=bt.traded)
    m.update(account_metrics(bt))
    what = ""
    if args.market == "perp":
        funded = "with funding" if prices.funding is not None else "WITHOUT funding rates"
        what = f", perpetuals at leverage {args.leverage:g} {funded}"
    print(
        f"{label} on {prices.n_assets} assets, {prices.n_bars} bars, rebalance {args.rebalance}"
        f"{'' if args.threshold is None else f', drift band {args.threshold:g}'}, fees {fees:g}, "
        f"engine {args.engine}{what}"
    )
    if args.threshold is not None:
        print(f"  rebalanced on {int(bt.rebalance[:, 0].sum())} of {prices.n_bars} bars")
    if m.get("liquidated", [0.0])[0]:
        k = int(bt.liquidated[0])
        print(
            f"  LIQUIDATED on {prices.index[k]} (bar {k} of {prices.n_bars}): the equity fell to the maintenance "
            f"margin; {bt.value[k, 0]:,.2f} was left and nothing traded after"
        )
    if m["wiped_out"][0]:
        k = int(np.argmax(bt.value[:, 0] <= 0))
        print(
            f"  WIPED OUT: the value fell to {bt.value[k, 0]:,.2f} on {prices.index[k].date()} (bar {k} of "
            f"{prices.n_bars}); the figures below measure the portfolio up to that bar, where it is worth 0"
        )
    for name in (
        "total_return",
        "cagr",
        "annualized_volatility",
        "sharpe",
        "sortino",
        "calmar",
        "max_drawdown",
        "turnover",
    ):
        print(f"  {name:<22}{m[name][0]: .6f}")
    for name in ("funding_paid", "funding_received", "fees_paid"):
        if name in m:
            print(f"  {name:<22}{m[name][0]: ,.2f}")
    return 0


def _progress_printer(objective: str):
    """A per-generation progress display: a rich progress bar on a terminal, one line per generation otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:

        def line(g):
            r = g.record
            print(
                f"gen {g.gen:>4}/{g.generations}  best {objective} {r[objective + '_best']: .4f}  "
                f"mean {r[objective + '_mean']: .4f}  evals {r['evaluations']}  {g.evals_per_second:,.0f} evals/s",
                flush=True,
            )

        return None, line
    progress = Progress(
        TextColumn("[bold]evolving"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task("", total=None)

    def update(g):
        r = g.record
        progress.update(
            task,
            total=g.generations + 1,
            completed=g.gen + 1,
            description=(
                f"best {objective} {r[objective + '_best']:.4f}  mean {r[objective + '_mean']:.4f}  "
                f"{g.evals_per_second:,.0f} evals/s"
            ),
        )

    return progress, update


_SHORT = {
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "calmar": "Calmar",
    "cagr": "CAGR",
    "max_drawdown": "MaxDD",
    "annualized_volatility": "Vol",
    "turnover": "Turnover",
}


_SUMMARY_COLUMNS = ("sharpe", "cagr", "max_drawdown", "annualized_volatility", "sortino", "turnover")


def _print_summary(report, url: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 150))
    oos = report.summary_oos
    rec = report.champion
    ins, out = rec.get("in_sample"), rec.get("out_of_sample")
    if oos is not None and out:
        title = (
            f"Champion beside classical allocations: IS = in sample, the evolution's window "
            f"({ins['first_bar'][:10]} .. {ins['last_bar'][:10]}); OOS = out of sample, held out "
            f"({out['first_bar'][:10]} .. {out['last_bar'][:10]})"
        )
    else:
        title = "Champion beside classical allocations: IN-SAMPLE ONLY (no held-out window: evolution.holdout is 0)"
    table = Table(title=title)
    table.add_column("allocation", no_wrap=True)
    for m in _SUMMARY_COLUMNS:
        table.add_column(f"{_SHORT.get(m, m)} IS", justify="right")
        if oos is not None:
            table.add_column(f"{_SHORT.get(m, m)} OOS", justify="right", style="green")
    wiped = []
    for name, row in report.summary.items():
        other = (oos or {}).get(name)
        lost = row["wiped_out"] or (other is not None and other["wiped_out"])
        if lost:
            wiped.append(name)
        cells = []
        for m in _SUMMARY_COLUMNS:
            cells.append(f"{row[m]:.4f}")
            if oos is not None:
                cells.append(f"{other[m]:.4f}" if other else "-")
        table.add_row(f"{name} (wiped out)" if lost else name, *cells)
    console.print(table)
    for name in wiped:
        console.print(f"  {name} was wiped out: its value reached zero or below; its figures measure it up to that bar")
    for name, why in report.skipped.items():
        console.print(f"  {name} left out: {why}")
    dsr, trials = rec.get("deflated_sharpe"), rec.get("trials") or {}
    if dsr is not None:
        console.print(
            f"deflated Sharpe of the champion (in sample, given {trials.get('n', 0):,} distinct genomes tried): "
            f"{dsr:.3f} (the probability its Sharpe is not just the luckiest of the trials; >= 0.95 is convincing)"
        )
    weights = rec["weights"]
    top = sorted(weights.items(), key=lambda kv: -abs(kv[1]))
    shown = ", ".join(f"{s} {w:.3f}" for s, w in top if abs(w) >= 5e-4)
    console.print(f"champion weights: {shown}")
    strategy = rec.get("strategy")
    if strategy and strategy.get("genes"):
        band = strategy["threshold"]
        evolved = ", ".join(f"{k} {v}" for k, v in strategy["genes"].items())
        detail = (
            "no drift band"
            if band is None
            else f"drift band {band:.4f} (the whole book trades back to target when a weight drifts "
            f"{100 * band:.1f} points from it)"
        )
        lev = "" if "leverage" not in strategy["genes"] else f", leverage {strategy['leverage']:.4g}x"
        console.print(f"champion strategy: rebalance {strategy['rebalance']}, {detail}{lev}; evolved: {evolved}")
    pf = rec.get("portfolio", {})
    if pf.get("market") == "perp":
        m = rec["metrics"]
        console.print(
            f"champion account (perpetuals at leverage {pf['leverage']:g}, in sample): funding paid "
            f"{m['funding_paid']:,.2f}, received {m['funding_received']:,.2f}, fees {m['fees_paid']:,.2f}"
            + (", LIQUIDATED" if m.get("liquidated") else "")
        )
    ver = rec["verification"]
    engine = ver.get("engine", "vectorbt")
    against = f"; against {ver['against']}" if "against" in ver else ""
    console.print(
        f"{engine} re-check: metrics agree to {ver['max_rel_diff']:.1e} relative (limit {ver['rtol']:g}{against})"
    )
    where, champion = report.run_dir, report.champion_path
    if url:  # a run at a storage URL: the staging directory is this process's copy
        where, champion = url, f"{url}/{report.champion_path.name}"
    console.print(f"run directory: {where}  (champion: {champion})")


def _evolve_plan(args, kind: str = "evolve"):
    """Where and how ``evolve`` runs: a new run from --config/--set, or the saved config of --resume (where only
    non-semantic overrides such as ``parallel.*`` or ``--ray-address`` may differ). The decisions are
    :func:`genetic_sizer.runs.rundir.plan_new` / :func:`~genetic_sizer.runs.rundir.plan_resume`; nothing is created here."""
    import datetime as dt

    from genetic_sizer.config import load_config
    from genetic_sizer.errors import ConfigError
    from genetic_sizer.runs.rundir import plan_new, plan_resume
    from genetic_sizer.storage import remote as storage

    overrides = list(args.set or [])
    if args.seed is not None:
        overrides.append(f"evolution.seed={args.seed}")
    if args.ray_address is not None:
        overrides += ["parallel.backend=ray", f"parallel.address={args.ray_address}"]
    if args.resume:
        if args.out is None:
            raise ConfigError("--resume needs --out DIR, the run directory to continue")
        given = load_config(args.config, overrides) if args.config is not None else None
        return plan_resume(args.out, overrides, given)
    config = load_config(args.config, overrides)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    # --out, else <run.storage>/<kind>-<time>: a local path or a storage URL (RunDir stages and syncs a URL)
    out = args.out if args.out else storage.join(config.run.storage or "runs", f"{kind}-{stamp}")
    return plan_new(out, config)


def _interrupted(run_dir, generations: int, writing_results: bool) -> str:
    """What Ctrl-C left behind, and how to go on."""
    if not run_dir.is_run:
        return "\ninterrupted before the run started; nothing was written"
    again = f"  genetic-sizer evolve --resume --out {run_dir}"
    gen = run_dir.checkpoint_generation() if run_dir.has_checkpoint else None
    if gen is None:
        return f"\ninterrupted before the first generation finished. Start it again with:\n{again}"
    if writing_results:
        return (
            f"\ninterrupted while writing the results; all {generations} generations are checkpointed. "
            f"Write the results again with:\n{again}"
        )
    return f"\ninterrupted; generation {gen} of {generations} is checkpointed. Continue with:\n{again}"


def _reference_of(config) -> str:
    """What a run's champion is re-checked against, for progress lines."""
    if config.portfolio.market == "perp":
        return "the plain-Python perp reference loop"
    return "vectorbt"


def _account_of(config, prices) -> str:
    """The account model for the start line: nothing for spot."""
    pf = config.portfolio
    if pf.market != "perp":
        return ""
    funding = "funding charged" if prices.funding is not None else "WITHOUT funding"
    genes = config.evolution.genes or {}
    if "leverage" in genes:
        lo, hi = genes["leverage"]
        return f"perpetuals at an evolved leverage in [{lo:g}, {hi:g}] ({funding}), "
    return f"perpetuals at leverage {pf.leverage:g} ({funding}), "


def cmd_evolve(args) -> int:
    import contextlib

    from genetic_sizer.cluster.raymap import close_map, make_map
    from genetic_sizer.data.loaders import load_from_config
    from genetic_sizer.evolution.loop import check_run
    from genetic_sizer.runs.evolve import evolve
    from genetic_sizer.validation.holdout import finalize
    from genetic_sizer.validation.holdout import split_holdout

    plan = _evolve_plan(args)
    config, run_dir = plan.config, plan.run_dir
    ev, pf, par = config.evolution, config.portfolio, config.parallel
    writing_results = False
    try:
        print(f"loading data ({config.data.source}) ...", flush=True)
        everything = load_from_config(config.data)
        prices, holdout = split_holdout(everything, ev.holdout)
        check_run(config, prices)  # bounds, NSGA-II rules: fail before Ray starts or a directory is created
        print(
            f"{prices.n_assets} assets, {everything.n_bars} bars ({everything.index[0].date()} .. "
            f"{everything.index[-1].date()}); objective {', '.join(config.objective)}; {_account_of(config, prices)}"
            f"{pf.direction}, "
            f"rebalance {pf.rebalance}, fees {pf.fees:g}; population {ev.population}, {ev.generations} generations, "
            f"seed {ev.seed}; engine {config.engine}",
            flush=True,
        )
        if holdout is None:
            print("no held-out window (evolution.holdout: 0): every figure below is IN-SAMPLE", flush=True)
        else:
            print(
                f"evolving on {prices.index[0].date()} .. {prices.index[-1].date()} ({prices.n_bars} bars); "
                f"held out for out-of-sample figures: {holdout.index[0].date()} .. {holdout.index[-1].date()} "
                f"({holdout.n_bars} bars, evolution.holdout: {ev.holdout})",
                flush=True,
            )
        print(f"run directory: {run_dir}{' (resuming)' if plan.resume else ''}", flush=True)
        map_fn = make_map(par)
        try:
            if par.backend == "ray":
                where = f"the Ray cluster at {map_fn.address}" if map_fn.address else "a local Ray instance"
                print(f"connecting to {where} ...", flush=True)
                map_fn.start()
                print(f"Ray ready in {map_fn.startup_seconds:.1f} s: {map_fn.num_workers} workers", flush=True)
            first = config.objective[0]
            progress, update = _progress_printer(first)
            with progress if progress is not None else contextlib.nullcontext():
                result = evolve(config, prices, run_dir, map_fn=map_fn, resume=plan.resume, on_generation=update)
        finally:
            close_map(map_fn)
        writing_results = True
        print(f"checking the champion with {_reference_of(config)} and writing results ...", flush=True)
        report = finalize(result, prices, run_dir, plots=not args.no_plots, holdout=holdout, report_prices=everything)
    except KeyboardInterrupt:
        print(_interrupted(run_dir, ev.generations, writing_results), file=sys.stderr)
        return 130
    _print_summary(report, run_dir.url)
    return 0


def _print_walkforward(wf, champion: dict, run_dir) -> None:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 150))
    win = wf.record["out_of_sample_window"]
    table = Table(
        title=(
            f"Walk-forward, {len(wf.folds)} folds. OOS = out of sample: the stitched test windows "
            f"({win['first_bar'][:10]} .. {win['last_bar'][:10]}), one continuous portfolio per strategy; "
            "IS = in sample: the mean over the folds' train windows"
        )
    )
    table.add_column("strategy", no_wrap=True)
    for m in _SUMMARY_COLUMNS:
        table.add_column(f"{_SHORT.get(m, m)} IS", justify="right")
        table.add_column(f"{_SHORT.get(m, m)} OOS", justify="right", style="green")
    for s in wf.strategies:
        cells = []
        for m in _SUMMARY_COLUMNS:
            cells.append(f"{np.mean([r['in_sample'][s][m] for r in wf.fold_results]):.4f}")
            cells.append(f"{wf.oos[s][m]:.4f}")
        table.add_row(s, *cells)
    console.print(table)
    for s, why in wf.skipped.items():
        console.print(f"  {s} left out: {why}")
    if wf.config.evolution.genes is not None:
        from genetic_sizer.validation.stitch import fold_strategy

        kept = []
        for f, r in zip(wf.folds, wf.fold_results, strict=True):
            k = fold_strategy(wf.config, r, "GA")
            band = "no band" if k["threshold"] is None else f"band {k['threshold']:.3f}"
            lev = "" if k.get("leverage") is None else f", {k['leverage']:.2f}x"
            kept.append(f"fold {f.number}: {k['rebalance']}, {band}{lev}")
        console.print("GA strategy per fold (evolved; out of sample each fold keeps its own): " + "; ".join(kept))
    ga, ew = wf.oos.get("GA"), wf.oos.get("equal_weight")
    if ga and ew:
        verdict = "beats" if ga["sharpe"] > ew["sharpe"] else "does NOT beat"
        console.print(
            f"out of sample the GA {verdict} equal weight (1/N): Sharpe {ga['sharpe']:.3f} vs {ew['sharpe']:.3f}, "
            f"CAGR {ga['cagr']:.2%} vs {ew['cagr']:.2%}, "
            f"max drawdown {ga['max_drawdown']:.2%} vs {ew['max_drawdown']:.2%}"
        )
    dsr, pbo = wf.record["deflated_sharpe"], wf.record["pbo"]
    console.print(
        "last fold (its champion goes live): deflated Sharpe "
        + (f"{dsr:.3f}" if dsr is not None else "n/a")
        + ", probability of backtest overfitting "
        + (f"{pbo:.3f}" if pbo is not None else "n/a")
        + " (see report.html for how to read them)"
    )
    weights = champion["weights"]
    top = sorted(weights.items(), key=lambda kv: -abs(kv[1]))
    console.print("live champion weights: " + ", ".join(f"{s} {w:.3f}" for s, w in top if abs(w) >= 5e-4))
    console.print(f"run directory: {run_dir}  (walkforward.json, oos_values.csv, report.html, champion.json)")


def cmd_walkforward(args) -> int:
    from genetic_sizer.data.loaders import load_from_config
    from genetic_sizer.evolution.loop import check_run
    from genetic_sizer.validation.walkforward import finalize_walkforward
    from genetic_sizer.runs.rundir import RunDir
    from genetic_sizer.validation.walkforward import run_walkforward
    from genetic_sizer.validation.folds import fold_config, make_folds

    plan = _evolve_plan(args, "walkforward")
    config, run_dir = plan.config, plan.run_dir
    wfc, pf = config.walkforward, config.portfolio
    try:
        print(f"loading data ({config.data.source}) ...", flush=True)
        prices = load_from_config(config.data)
        folds = make_folds(prices.index, wfc)
        first = folds[0]
        check_run(fold_config(config, 0), prices.bars(first.train_start, first.train_end + 1))
        print(
            f"{prices.n_assets} assets, {prices.n_bars} bars ({prices.index[0].date()} .. {prices.index[-1].date()}); "
            f"{len(folds)} folds (train {wfc.train}, test {wfc.test}, purge {wfc.purge}"
            f"{', anchored' if wfc.anchored else ''}); objective {', '.join(config.objective)}; "
            f"{_account_of(config, prices)}{pf.direction}, "
            f"rebalance {pf.rebalance}, fees {pf.fees:g}; population {config.evolution.population}, "
            f"{config.evolution.generations} generations per fold; folds on "
            f"{'Ray' if config.parallel.backend == 'ray' else 'this process'}",
            flush=True,
        )
        if not args.resume:
            run_dir = RunDir.create(run_dir, config)
        print(f"run directory: {run_dir}{' (resuming)' if args.resume else ''}", flush=True)

        def on_fold(fold, rec, done, total):
            b = fold.bounds(prices.index)
            print(
                f"fold {fold.number + 1}/{len(folds)} done ({done} of {total}): train {b['train_start'][:10]} .. "
                f"{b['train_end'][:10]}, test {b['test_start'][:10]} .. {b['test_end'][:10]}; "
                f"{rec['evaluations']} evaluations; in-sample Sharpe GA {rec['in_sample']['GA']['sharpe']:.3f}",
                flush=True,
            )

        wf = run_walkforward(config, prices, run_dir, resume=args.resume, on_fold=on_fold)
        print(f"checking the live champion with {_reference_of(config)} and writing results ...", flush=True)
        champion = finalize_walkforward(wf, run_dir, plots=not args.no_plots)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; finished folds are saved. Continue with:\n  genetic-sizer walkforward --resume --out "
            f"{run_dir}",
            file=sys.stderr,
        )
        return 130
    _print_walkforward(wf, champion, run_dir)
    return 0


def cmd_report(args) -> int:
    from genetic_sizer.runs.report import write_report

    path = write_report(args.run)
    print(f"wrote {path}")
    return 0


def _network_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", default="testnet", choices=V.NETWORKS)
    p.add_argument("--base-url", default=None, help="API URL (a local node or a test server); overrides --network")


def cmd_data_fetch(args) -> int:
    from rich.progress import Progress

    from genetic_sizer.data.hyperliquid import fetch_history
    from genetic_sizer.exchange.client import HyperliquidClient, resolve_base_url

    url = resolve_base_url(args.network, args.base_url)
    client = HyperliquidClient(url)
    with Progress(transient=False) as progress:
        tasks = {c: progress.add_task(f"{c} candles", total=None) for c in args.coins}

        def on_progress(coin, n):
            progress.update(tasks[coin], completed=n, description=f"{coin}: {n} candles")

        prices, report, paths = fetch_history(
            client,
            args.coins,
            args.interval,
            args.start,
            args.end,
            args.out,
            funding=not args.no_funding,
            on_progress=on_progress,
            force=args.force,
        )
        for t in tasks.values():
            progress.update(t, total=1, completed=1)
    print(f"{prices.n_assets} coins x {prices.n_bars} {args.interval} bars, {report.first_bar} .. {report.last_bar}")
    for line in report.lines():
        print(f"  {line}")
    for path in paths:
        print(f"wrote {path}")
    print(f"evolve perpetuals on it with: --config configs/hyperliquid.yaml --set data.path={paths[0]}")
    return 0


def _print_plan(result, as_json: bool) -> None:
    import json

    if as_json:
        from genetic_sizer.live.journal import jsonable

        print(json.dumps(jsonable(result.to_dict()), indent=2, allow_nan=False), flush=True)
        return
    from rich.console import Console
    from rich.table import Table

    plan = result.plan
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 130))
    if plan is not None:
        mode = "EXECUTED" if result.executed else "DRY RUN (nothing sent; add --execute to trade)"
        console.print(f"rule: {plan.rule} ({plan.rule_reason})", markup=False)
        table = Table(
            title=f"{mode}: {result.network}, account {result.address}, value ${plan.account_value:,.2f}, "
            f"leverage {plan.leverage:g}"
        )
        for col in ("coin", "weight", "mid", "current", "target", "delta", "notional $", "action", "reason"):
            table.add_column(col, justify="left" if col in ("coin", "action", "reason") else "right")
        for c in plan.coins:
            table.add_row(
                c.coin,
                f"{c.weight:.4f}",
                f"{c.mid:,.6g}",
                f"{c.current:g}",
                f"{c.target:g}",
                f"{c.delta:+g}",
                f"{c.notional:,.2f}",
                c.action,
                c.reason,
            )
        console.print(table)
        for k, o in enumerate(plan.orders):
            ro = " reduce-only" if o.reduce_only else ""
            console.print(
                f"  order {k + 1}: {o.side} {o.size:g} {o.coin} limit {o.limit_px:g} "
                f"(~${o.notional:,.2f}){ro} [{o.leg}]"
            )
    for r in result.results:
        part = ""
        if result.partial(r):
            part = f" of {result.requested[r.cloid]:g} (PARTIAL)"
        console.print(
            f"  result {r.coin}: {r.status} {r.filled_size:g}{part} @ {r.avg_px}"
            + (f" ({r.error})" if r.error else ""),
            markup=False,
        )
    for u in result.unknown:
        console.print(
            f"  outcome UNKNOWN {u['coin']} (cloid {u['cloid']}): not sent again; the next pass settles it",
            markup=False,
        )
    for note in result.notes:
        console.print(f"  note: {note}", markup=False)
    if result.error:
        console.print(f"  pass FAILED: {result.error}", markup=False)
    for coin, d in result.drift.items():
        console.print(f"  drift {coin}: position {d['position']:g} vs target {d['target']:g} (${d['drift_usd']:,.2f})")
    if result.pass_id is not None:
        resumed = " (resumed)" if result.resumed else ""
        console.print(f"  pass {result.period}{resumed}: {result.status}, {result.rounds} round(s)", markup=False)


def _number_arg(
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    hint: str = "",
):
    """An argparse ``type`` for the size command's numbers: finite, within [low, high] (``low_open``: > low,
    ``high_open``: < high); anything else is a parse error (exit code 2) saying what is allowed."""
    import math

    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    allowed = f"{'an integer' if integer else 'a number'}" + (f" {' and '.join(bounds)}" if bounds else "") + hint

    def parse(text: str):
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        ok = math.isfinite(value)
        ok = ok and (low is None or (value > low if low_open else value >= low))
        ok = ok and (high is None or (value < high if high_open else value <= high))
        if not ok:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
        return value

    return parse


def _every_arg(text: str):
    from genetic_sizer.errors import ConfigError
    from genetic_sizer.live.guards import Period
    from genetic_sizer.live.settings import parse_period

    if text == _CHAMPION_PERIOD:  # --every without a value (argparse passes the const through here)
        return text
    try:
        return Period(str(text).strip(), parse_period(text))
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--every ")) from None


_CHAMPION_PERIOD = "champion"
"""``--every`` without a period: the champion's rebalance period."""


def _threshold_arg(text: str):
    """``--threshold``: a drift band >= 0, or ``none`` (no band: every pass trades to target)."""
    import math

    if text.strip().lower() == "none":
        return "none"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a drift band >= 0 (0.05: 5 points) or none, got {text!r}")
    return value


def _period_arg(text: str):
    from genetic_sizer.errors import ConfigError
    from genetic_sizer.live.guards import Period

    try:
        return Period.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--period ")) from None


class _SigtermAsInterrupt:
    """While active (main thread only), SIGTERM (a process supervisor's stop) raises KeyboardInterrupt, so the
    loop stops as after Ctrl-C: journaled, exit code 0."""

    def __enter__(self):
        import signal
        import threading

        self._old = None
        if threading.current_thread() is threading.main_thread():

            def handler(signum, frame):
                raise KeyboardInterrupt

            self._old = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc):
        import signal

        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def cmd_size(args) -> int:
    import os

    from genetic_sizer.errors import ConfigError
    from genetic_sizer.exchange.client import HyperliquidClient, is_mainnet, resolve_base_url
    from genetic_sizer.exchange.credentials import load_credentials
    from genetic_sizer.live.account import resolve_account
    from genetic_sizer.live.guards import Guards, Limits, period_of_champion
    from genetic_sizer.live.journal import Journal
    from genetic_sizer.live.loop import Trader
    from genetic_sizer.live.settings import LiveConfig, calendar_of
    from genetic_sizer.live.sizer import SizerSettings
    from genetic_sizer.runs import champion as C

    if args.max_passes is not None and args.every is None:
        raise ConfigError("--max-passes needs --every")
    if args.period is not None and args.every is not None:
        raise ConfigError("--period sets a single pass's period; with --every, the period is --every's")
    champ = C.load(args.champion)
    # the champion's strategy, unless a flag overrides it: its drift band, and its rebalance period for --every
    band = champ.threshold if args.threshold is None else (None if args.threshold == "none" else args.threshold)
    settings = SizerSettings(
        leverage=C.resolve_leverage(champ, args.leverage, allow_mismatch=args.allow_leverage_mismatch),
        min_trade_usd=args.min_trade_usd,
        min_weight_change=args.min_weight_change,
        close_unlisted=not args.keep_unlisted,
        max_notional_per_asset=args.max_notional_per_asset,
        slippage=args.slippage,
        drift_band=band,
    )
    every = args.every
    if every == _CHAMPION_PERIOD:  # --every alone: the champion's rebalance period
        if calendar_of(champ) is None:
            raise ConfigError(
                "the champion buys and holds (rebalance once): give --every a period (e.g. --every 1d) for its "
                "drift-band checks"
            )
        every = period_of_champion(champ)
    config = LiveConfig(
        execute=args.execute,
        period=every or args.period or period_of_champion(champ),
        guards=Guards(max_mid_deviation=args.max_mid_deviation or None, max_data_age=args.max_data_age),
        limits=Limits(max_drawdown=args.max_drawdown, max_daily_loss=args.max_daily_loss),
        pass_retries=args.pass_retries,
        flatten_on_stop=args.flatten_on_stop,
        stop_file=args.stop_file,
    )
    url = resolve_base_url(args.network, args.base_url)
    mainnet = is_mainnet(url)
    network = "mainnet" if mainnet else (url if args.base_url else args.network)
    credentials = None
    if args.execute or args.keystore or os.environ.get("HL_SECRET_KEY"):
        credentials = load_credentials(args.keystore)
    address = resolve_account(args.address, credentials, execute=args.execute)
    if args.execute and mainnet and not args.yes:
        if not sys.stdin.isatty():
            raise ConfigError("sending real orders on mainnet needs --yes (or an interactive confirmation)")
        answer = input(f"Send orders for account {address} on MAINNET? Type 'yes' to continue: ")
        if answer.strip().lower() != "yes":
            print("aborted; nothing sent")
            return 1
    path = args.journal or ("size-journal.jsonl" if args.execute or args.every else None)
    journal = Journal(path) if path else None
    out = sys.stderr if args.json else sys.stdout  # --json keeps stdout for the JSON documents
    client = HyperliquidClient(
        url,
        credentials=credentials if args.execute else None,
        timeout=args.timeout,
        clock_tolerance=args.clock_tolerance,
    )
    try:
        trader = Trader(
            client,
            champ,
            settings,
            address=address,
            network=network,
            config=config,
            journal=journal,
            report=lambda line: print(line, file=out, flush=True),
            on_result=lambda result: _print_plan(result, args.json),
        )
        with _SigtermAsInterrupt():
            if args.every is not None:
                outcome = trader.run_loop(args.max_passes, base_url=url)
            else:
                outcome = trader.run_once(base_url=url)
    finally:
        client.close()
        if journal is not None:
            journal.close()
    if args.every is None and outcome.error:
        print(f"error: {outcome.error} (exit code {outcome.exit_code})", file=sys.stderr)
    return outcome.exit_code


def _fmt(value, kind: str = "g") -> str:
    if value is None:
        return "-"
    if kind == "%":
        return f"{value:+.2%}"
    if kind == "$":
        return f"${value:,.2f}"
    return f"{value:.4g}"


def _print_status(report: dict) -> None:
    j = report["journal"]
    print(f"journal          {j['path']} ({j['records']} records)")
    if j["unreadable_lines"]:
        print(f"                 unreadable lines skipped: {', '.join(map(str, j['unreadable_lines']))}")
    print(f"account          {report['account']} on {report['network']}, period {report['period']}")
    print(f"champion         {report['champion']}")
    last = report["last_pass"]
    if last is None:
        print("last pass        none yet")
    else:
        print(
            f"last pass        {last['period']}: {last['status']} at {last['time']}"
            f" ({last.get('orders_sent') or 0} orders sent, {last.get('orders_filled') or 0} filled,"
            f" {last.get('partial_fills') or 0} partial)"
        )
        if last.get("rejected"):
            print(f"                 rejected: {', '.join(last['rejected'])}")
        if last.get("error"):
            print(f"                 error: {last['error']}")
    print(f"passes ended     {report['passes']}")
    if report["interrupted"]:
        print(f"interrupted      {', '.join(report['interrupted'])} (resumed by a restart in the same period)")
    if report["unresolved"]:
        coins = ", ".join(f"{u['coin']} ({u['cloid']})" for u in report["unresolved"])
        print(f"unresolved       {coins}: settled by the next start")
    if report["kill"]:
        print(f"KILL SWITCH      fired at {report['kill'].get('time')}: {report['kill'].get('reason')}")
    eq = report["equity"]
    print(
        f"equity           {_fmt(eq['latest'], '$')} ({eq['latest_source']}); started {_fmt(eq['first'], '$')} at "
        f"{eq['first_time'] or '-'}; high-water {_fmt(eq['high_water'], '$')}, drawdown "
        f"{'-' if eq['drawdown'] is None else format(eq['drawdown'], '.2%')}"
    )
    print(f"PnL since start  {_fmt(eq['pnl'], '$')} ({_fmt(eq['pnl_pct'], '%')})")
    source = report["drift_source"]
    print(f"drift per coin   ({'now, from the exchange' if source == 'exchange' else 'as last recorded'})")
    for coin, d in report["drift"].items():
        print(f"  {coin:<8} position {d['position']:<14g} target {d['target']:<14g} drift {_fmt(d['drift_usd'], '$')}")
    days = report["realized_days"]
    print(f"champion's backtest beside realized ({days:.2f} days recorded)" if days else "backtest vs realized")
    print(f"  {'metric':<24}{'backtest':>12}{'realized':>12}")
    for metric, pair in report["expectation"].items():
        kind = "%" if metric in ("total_return", "cagr", "max_drawdown", "annualized_volatility") else "g"
        print(f"  {metric:<24}{_fmt(pair['backtest'], kind):>12}{_fmt(pair['realized'], kind):>12}")


def cmd_live_status(args) -> int:
    import json
    import os

    from genetic_sizer.errors import ExchangeError
    from genetic_sizer.exchange.client import HyperliquidClient, resolve_base_url
    from genetic_sizer.live.journal import jsonable, read_journal
    from genetic_sizer.live.status import live_status
    from genetic_sizer.runs import champion as C

    state = read_journal(args.journal)
    start = state.starts[-1] if state.starts else {}
    champ_path = args.champion or (start.get("champion") or {}).get("path")
    champ = C.load(champ_path) if champ_path and (args.champion or os.path.exists(champ_path)) else None
    client = None
    if not args.offline and start.get("address"):
        if args.base_url or args.network:
            url = resolve_base_url(args.network or "testnet", args.base_url)
        elif start.get("base_url"):
            url = start["base_url"]
        else:
            url = resolve_base_url(start.get("network") or "testnet")
        client = HyperliquidClient(url, timeout=args.timeout)
    try:
        try:
            report = live_status(args.journal, client=client, champion=champ)
        except ExchangeError as exc:
            print(f"could not read the exchange ({exc}); showing the journal only", file=sys.stderr)
            report = live_status(args.journal, champion=champ)
    finally:
        if client is not None:
            client.close()
    if args.json:
        print(json.dumps(jsonable(report), indent=2, allow_nan=False))
    else:
        _print_status(report)
    return 0


def cmd_export(args) -> int:
    from genetic_sizer.validation.holdout import export

    try:
        path = export(args.run, args.out, rank=args.rank, force=args.force)
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was written", file=sys.stderr)
        return 130
    print(f"wrote {path}")
    return 0


def _print_champion(path) -> None:
    import json

    rec = json.loads(path.read_text(encoding="utf-8"))
    top = sorted(rec["weights"].items(), key=lambda kv: -abs(kv[1]))
    print("champion weights: " + ", ".join(f"{s} {w:.3f}" for s, w in top if abs(w) >= 5e-4))
    metrics = rec.get("metrics") or {}
    if "sharpe" in metrics:
        print(f"champion Sharpe (in sample) {metrics['sharpe']:.4f}")


def cmd_submit(args) -> int:
    from pathlib import Path

    from genetic_sizer.cluster import jobs
    from genetic_sizer.errors import ConfigError

    if args.out is not None:
        out = Path(args.out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ConfigError(f"--out {args.out!r} exists and is not an empty directory (nothing is overwritten)")
    client, url = jobs.connect(args.address)  # an unreachable address or a refused token: before any upload
    overrides = list(args.set or [])
    if args.seed is not None:
        overrides.append(f"evolution.seed={args.seed}")
    spec = jobs.prepare(
        args.command,
        args.config,
        overrides,
        storage_url=args.storage,
        working_dir=args.working_dir,
        resume=args.resume,
        no_plots=args.no_plots,
    )
    if args.out is not None and not spec.stored:
        spec.cleanup()
        raise ConfigError(
            "--out copies the finished run back from run storage: give --storage URL (or run.storage in the "
            "config), a place the cluster writes and this machine reads, e.g. s3://bucket/runs"
        )
    for note in spec.notes:
        print(f"note: {note}", flush=True)
    try:
        job_id = jobs.submit(client, spec)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted while submitting; the cluster may have accepted it. Check with:\n"
            f"  genetic-sizer jobs status {spec.submission_id} --address {url}",
            file=sys.stderr,
        )
        return 130
    where = spec.run if spec.stored else f"{spec.run} on the node the job runs on (no run storage given)"
    print(f"submitted job {job_id} to {url}", flush=True)
    print(f"run directory: {where}", flush=True)
    later = f"--address {url}"
    if args.no_wait:
        print(f"follow it with: genetic-sizer jobs logs {job_id} --follow {later}")
        return 0
    t0 = time.perf_counter()
    try:
        report = jobs.follow(client, job_id)
    except KeyboardInterrupt:
        print(
            f"\nstopped following; job {job_id} keeps running on the cluster. Follow it again with:\n"
            f"  genetic-sizer jobs logs {job_id} --follow {later}\nor stop it with:\n"
            f"  genetic-sizer jobs stop {job_id} {later}",
            file=sys.stderr,
        )
        return 130
    if not report.succeeded:
        print(f"job {job_id} {report.status}: {report.message or 'no message'}", file=sys.stderr)
        return 1
    print(f"job {job_id} succeeded in {time.perf_counter() - t0:.1f} s", flush=True)
    if args.out is not None:
        path = jobs.fetch_run(spec.run, args.out)
        print(f"copied the run from {spec.run} to {path}")
        if (path / "champion.json").is_file():
            _print_champion(path / "champion.json")
    return 0


def cmd_jobs(args) -> int:
    from genetic_sizer.cluster import jobs

    client, _ = jobs.connect(args.address)
    if args.jobs_command == "status":
        r = jobs.job_report(client, args.job_id)
        print(f"job        {r.job_id}")
        print(f"status     {r.status}")
        if r.message:
            print(f"message    {r.message}")
        print(f"entrypoint {r.entrypoint}")
        if r.run:
            print(f"run        {r.run}")
        seconds = r.seconds()
        if seconds is not None:
            print(f"{'took' if r.done else 'running'}       {seconds:.1f} s")
        return 0 if r.status != "FAILED" else 1
    if args.jobs_command == "logs":
        if args.follow:
            r = jobs.follow(client, args.job_id)
            if not r.succeeded:
                print(f"job {args.job_id} {r.status}: {r.message or 'no message'}", file=sys.stderr)
                return 1
            return 0
        print(jobs.logs(client, args.job_id), end="")
        return 0
    stopped = jobs.stop(client, args.job_id)
    print(f"job {args.job_id}: {'stop requested' if stopped else 'had already ended'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="genetic-sizer",
        description="Evolve portfolio weight genomes and size Hyperliquid positions from the champion.",
    )
    ap.add_argument("--version", action="version", version=f"genetic-sizer {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="inspect price data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    info = data_sub.add_parser("info", help="load, validate and summarize a price set")
    _add_data_args(info)
    info.set_defaults(func=cmd_data_info)
    fetch = data_sub.add_parser("fetch", help="fetch Hyperliquid candles and funding into Parquet")
    fetch.add_argument("--coins", nargs="+", required=True)
    fetch.add_argument("--interval", default="1h", choices=list(V.INTERVAL_MS), help="candle interval (default 1h)")
    fetch.add_argument("--start", required=True, help="first bar, e.g. 2025-01-01")
    fetch.add_argument("--end", default=None, help="last bar (default: now)")
    fetch.add_argument("--out", required=True, help="Parquet file to write (funding goes next to it)")
    fetch.add_argument("--no-funding", action="store_true", help="skip fundingHistory")
    fetch.add_argument("--force", action="store_true", help="replace existing files (default: refuse)")
    _network_args(fetch)
    fetch.set_defaults(func=cmd_data_fetch)

    bt = sub.add_parser("backtest", help="backtest one weight vector (default: equal weight)")
    _add_data_args(bt)
    bt.add_argument("--weights", nargs="+", type=float, default=None)
    bt.add_argument(
        "--rebalance", type=_rebalance_arg, default="M", help=f"{', '.join(V.REBALANCE_CODES)} or every N bars"
    )
    bt.add_argument(
        "--threshold",
        type=_number_arg(low=0),
        default=None,
        help="drift band: also rebalance when a weight is this far from its target (--rebalance once: only then)",
    )
    bt.add_argument(
        "--fees", type=float, default=None, help="fraction of the traded notional (default 0.0005 spot, 0.00045 perp)"
    )
    bt.add_argument("--slippage", type=float, default=0.0)
    bt.add_argument("--init-cash", type=float, default=10_000.0)
    bt.add_argument("--engine", default="fast", choices=V.ENGINES)
    bt.add_argument(
        "--market", default="spot", choices=V.MARKETS, help="perp: leverage, funding (loaded with hyperliquid data)"
    )
    bt.add_argument("--leverage", type=_number_arg(low=0, low_open=True), default=1.0, help="perp: gross leverage")
    bt.add_argument(
        "--max-leverage", type=_number_arg(low=1), default=None, help="perp: maximum leverage of every asset"
    )
    bt.set_defaults(func=cmd_backtest)

    ev = sub.add_parser("evolve", help="evolve weight genomes (writes a run directory with champion.json)")
    ev.add_argument("--config", default=None, help="YAML config (default: built-in defaults)")
    ev.add_argument(
        "--out",
        default=None,
        help="run directory: a path or a storage URL (s3://bucket/x, file:///nfs/x); default "
        "<run.storage or runs>/evolve-<UTC time>",
    )
    ev.add_argument("--seed", type=int, default=None, help="override evolution.seed")
    ev.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    ev.add_argument(
        "--set", action="append", metavar="KEY.PATH=VALUE", help="override a config value (YAML), repeatable"
    )
    ev.add_argument(
        "--ray-address", default=None, help="evaluate on the Ray cluster at this address (sets parallel.backend=ray)"
    )
    ev.add_argument("--no-plots", action="store_true", help="skip the PNG plots and the HTML report")
    ev.set_defaults(func=cmd_evolve)

    wf = sub.add_parser(
        "walkforward",
        help="walk-forward evolution: evolve on each train window, hold over the next test window, "
        "beside refitted classical allocations (walkforward.json, oos_values.csv, report.html, champion.json)",
    )
    wf.add_argument("--config", default=None, help="YAML config (its walkforward section gives the folds)")
    wf.add_argument(
        "--out",
        default=None,
        help="run directory: a path or a storage URL (s3://bucket/x, file:///nfs/x); default "
        "<run.storage or runs>/walkforward-<UTC time>",
    )
    wf.add_argument("--seed", type=int, default=None, help="override evolution.seed (each fold derives its own)")
    wf.add_argument("--resume", action="store_true", help="continue the interrupted walk-forward in --out")
    wf.add_argument(
        "--set", action="append", metavar="KEY.PATH=VALUE", help="override a config value (YAML), repeatable"
    )
    wf.add_argument("--ray-address", default=None, help="run the folds as tasks on the Ray cluster at this address")
    wf.add_argument("--no-plots", action="store_true", help="skip the HTML report")
    wf.set_defaults(func=cmd_walkforward)

    rp = sub.add_parser("report", help="write report.html for a finished evolve or walkforward run")
    rp.add_argument("--run", required=True, help="run directory (a path or a storage URL)")
    rp.set_defaults(func=cmd_report)

    sz = sub.add_parser("size", help="size Hyperliquid positions from a champion (a dry run unless --execute)")
    sz.add_argument("--champion", required=True, help="champion.json")
    _network_args(sz)
    from genetic_sizer.live.sizer import EXCHANGE_MIN_NOTIONAL, MAX_SLIPPAGE

    sz.add_argument(
        "--leverage",
        type=_number_arg(low=0, low_open=True),
        default=None,
        help="gross leverage, > 0 (default: a perp champion's own leverage, else 1)",
    )
    sz.add_argument(
        "--allow-leverage-mismatch",
        action="store_true",
        help="size a perp champion at a --leverage other than the one it was evolved at",
    )
    sz.add_argument(
        "--min-trade-usd",
        type=_number_arg(low=EXCHANGE_MIN_NOTIONAL, hint=" (the exchange's minimum order)"),
        default=EXCHANGE_MIN_NOTIONAL,
        help="smallest order in USD at its limit price, >= 10 (default 10)",
    )
    sz.add_argument(
        "--min-weight-change",
        type=_number_arg(low=0, high=1, high_open=True),
        default=0.0,
        help="drift band in weight units, in [0, 1) (default 0)",
    )
    sz.add_argument("--keep-unlisted", action="store_true", help="leave positions in coins the champion lacks")
    sz.add_argument(
        "--max-notional-per-asset", type=_number_arg(low=0, low_open=True), default=None, help="USD cap, > 0"
    )
    sz.add_argument(
        "--slippage",
        type=_number_arg(low=0, low_open=True, high=MAX_SLIPPAGE, hint=" (a fraction of the mid: 0.01 is 1%)"),
        default=0.01,
        help=f"IOC limit distance from mid, in (0, {MAX_SLIPPAGE:g}] (default 0.01)",
    )
    sz.add_argument("--address", default=None, help="account to read (default: HL_ACCOUNT_ADDRESS or the key's)")
    sz.add_argument("--keystore", default=None, help="encrypted keystore file (password: HL_KEYSTORE_PASSWORD)")
    sz.add_argument(
        "--timeout",
        type=_number_arg(low=0, low_open=True),
        default=10.0,
        help="seconds per request before retrying, > 0 (default 10)",
    )
    sz.add_argument("--execute", action="store_true", help="send the orders (default: preview only)")
    sz.add_argument("--yes", action="store_true", help="confirm mainnet execution without a prompt")
    sz.add_argument("--json", action="store_true", help="print the plan as JSON")
    sz.add_argument(
        "--every",
        type=_every_arg,
        nargs="?",
        const=_CHAMPION_PERIOD,
        default=None,
        help="keep running: one pass per wall-clock period (30s, 5m, 1h, 1d; alone: the champion's rebalance "
        "period). With a drift band, the first pass in a new period of the champion's rebalance policy is its "
        "calendar rebalance; the others trade only when a coin drifted past the band",
    )
    sz.add_argument(
        "--threshold",
        type=_threshold_arg,
        default=None,
        help="drift band: trade the whole book back to target only when a coin's weight drifts this far from it "
        "(default: the champion's strategy.threshold; none: every pass trades to target)",
    )
    sz.add_argument(
        "--max-passes", type=_number_arg(low=1, integer=True), default=None, help="with --every: stop after N passes"
    )
    sz.add_argument(
        "--period",
        type=_period_arg,
        default=None,
        help="a single pass's period (1h, 1d, W, M, Q ...; default: the champion's rebalance); a rerun in the "
        "same period resumes or skips the pass",
    )
    sz.add_argument(
        "--journal",
        default=None,
        help="JSONL journal, the loop's memory (default size-journal.jsonl with --execute or --every)",
    )
    sz.add_argument(
        "--max-drawdown",
        type=_number_arg(low=0, high=1, low_open=True, high_open=True),
        default=None,
        help="kill switch: stop when equity is this fraction below its recorded high-water mark (e.g. 0.2)",
    )
    sz.add_argument(
        "--max-daily-loss",
        type=_number_arg(low=0, high=1, low_open=True, high_open=True),
        default=None,
        help="kill switch: stop when equity is this fraction below the day's reference equity (e.g. 0.05)",
    )
    sz.add_argument(
        "--flatten-on-stop", action="store_true", help="close every position when the kill switch or stop file stops it"
    )
    sz.add_argument("--stop-file", default=None, help="stop gracefully (exit 0) while this file exists")
    sz.add_argument(
        "--max-mid-deviation",
        type=_number_arg(low=0, high=1, high_open=True),
        default=0.02,
        help="refuse a pass when a traded coin's mid is this fraction from its mark or oracle price "
        "(default 0.02; 0 turns the check off)",
    )
    sz.add_argument(
        "--max-data-age",
        type=_number_arg(low=0, low_open=True),
        default=10.0,
        help="refuse account data older than this many seconds; re-plan when the plan is older (default 10)",
    )
    sz.add_argument(
        "--pass-retries",
        type=_number_arg(low=0, integer=True),
        default=1,
        help="rounds after the first in which a pass trades what is still missing (partial fills), default 1",
    )
    sz.add_argument(
        "--clock-tolerance",
        type=_number_arg(low=0, low_open=True),
        default=2.0,
        help="largest accepted gap between this clock and the exchange's, in seconds (default 2)",
    )
    sz.set_defaults(func=cmd_size)

    live = sub.add_parser("live", help="the live sizer's records")
    live_sub = live.add_subparsers(dest="live_command", required=True)
    st = live_sub.add_parser("status", help="last pass, drift per coin, PnL and the champion's expectation")
    st.add_argument("--journal", required=True, help="the journal of a live loop (size --journal)")
    st.add_argument("--champion", default=None, help="champion.json (default: the one the journal records)")
    st.add_argument("--network", default=None, choices=V.NETWORKS, help="default: the journal's")
    st.add_argument("--base-url", default=None, help="API URL (default: the journal's)")
    st.add_argument("--offline", action="store_true", help="from the journal only; do not read the exchange")
    st.add_argument("--timeout", type=_number_arg(low=0, low_open=True), default=10.0, help="seconds per request")
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    st.set_defaults(func=cmd_live_status)

    sb = sub.add_parser(
        "submit",
        help="run evolve (or walkforward) as a job on a Ray cluster through its Jobs API (dashboard port 8265)",
    )
    sb.add_argument(
        "--address",
        default=None,
        help="the head's dashboard, http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS, then RAY_ADDRESS)",
    )
    sb.add_argument("--command", default="evolve", choices=["evolve", "walkforward"], help="what the job runs")
    sb.add_argument("--config", default=None, help="YAML config (shipped with the job; default: built-in defaults)")
    sb.add_argument(
        "--set", action="append", metavar="KEY.PATH=VALUE", help="override a config value (YAML), repeatable"
    )
    sb.add_argument("--seed", type=int, default=None, help="override evolution.seed")
    sb.add_argument(
        "--storage",
        default=None,
        help="run storage the cluster writes the run to, <storage>/<job id> (s3://bucket/runs, file:///nfs/runs; "
        "default: run.storage of the config)",
    )
    sb.add_argument("--out", default=None, help="copy the finished run from storage to this new local directory")
    sb.add_argument("--working-dir", default=None, help="a directory shipped with the job (its working directory)")
    sb.add_argument("--resume", default=None, metavar="RUN", help="continue the stored run RUN (a storage URL)")
    sb.add_argument("--no-plots", action="store_true", help="skip the PNG plots and the HTML report")
    sb.add_argument("--no-wait", action="store_true", help="print the job id and return without following the job")
    sb.set_defaults(func=cmd_submit)

    jb = sub.add_parser("jobs", help="status, logs or stop of a job submitted with genetic-sizer submit")
    jb_sub = jb.add_subparsers(dest="jobs_command", required=True)
    for name, what in (("status", "the job's status"), ("logs", "the job's logs"), ("stop", "stop the job")):
        p = jb_sub.add_parser(name, help=what)
        p.add_argument("job_id", metavar="JOB_ID")
        p.add_argument(
            "--address", default=None, help="the head's dashboard (default: RAY_API_SERVER_ADDRESS, then RAY_ADDRESS)"
        )
        if name == "logs":
            p.add_argument("--follow", action="store_true", help="keep printing until the job ends")
        p.set_defaults(func=cmd_jobs)

    ex = sub.add_parser("export", help="write the champion file of a ranked member of a finished run")
    ex.add_argument("--run", required=True, help="run directory (a path or a storage URL)")
    ex.add_argument("--rank", type=int, default=0, help="hall of fame rank or Pareto member (0 = champion)")
    ex.add_argument("--out", required=True, help="champion JSON file to write")
    ex.add_argument("--force", action="store_true", help="replace an existing file (default: refuse)")
    ex.set_defaults(func=cmd_export)
    return ap


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GeneticSizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

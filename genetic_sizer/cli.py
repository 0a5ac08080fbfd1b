"""The ``genetic-sizer`` command line. Thin: parsing and printing; the work lives in the modules.

Heavy modules (vectorbt, ray, the exchange SDK) are imported inside the commands that need them, so
``genetic-sizer --help`` starts fast.
"""

from __future__ import annotations

import argparse
import sys

from genetic_sizer import __version__
from genetic_sizer.errors import GeneticSizerError


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default="default", choices=["default", "csv", "parquet"])
    p.add_argument("--path", default=None, help="price file for csv/parquet sources")
    p.add_argument("--symbols", nargs="+", default=None, help="assets to select (default: all)")
    p.add_argument("--start", default=None, help="first bar (inclusive), e.g. 2015-01-01")
    p.add_argument("--end", default=None, help="last bar (inclusive)")
    p.add_argument("--leading-gaps", default="trim", choices=["trim", "error"])


def _load(args):
    from genetic_sizer.data import load

    return load(args.source, args.path, args.symbols, args.start, args.end, leading_gaps=args.leading_gaps)


def cmd_data_info(args) -> int:
    prices = _load(args)
    prov = prices.provenance()
    print(f"source           {prov['source']}")
    print(f"assets           {prices.n_assets}: {' '.join(prices.symbols)}")
    print(f"bars             {prov['n_bars']}  ({prov['first_bar']} .. {prov['last_bar']})")
    print(f"periods/year     {prov['periods_per_year']:g}")
    if prices.trimmed_bars:
        print(f"leading gaps     trimmed {prices.trimmed_bars} bars so that every asset is priced")
    print(f"close sha256     {prov['close_sha256']}")
    return 0


def cmd_backtest(args) -> int:
    import numpy as np

    from genetic_sizer.fitness import compute_metrics
    from genetic_sizer.simulate import backtest

    prices = _load(args)
    if args.weights is None:
        weights = np.full(prices.n_assets, 1.0 / prices.n_assets)
        label = "equal weight"
    else:
        weights = np.array(args.weights, dtype=float)
        label = "given weights"
    rebalance = int(args.rebalance) if args.rebalance.isdigit() else args.rebalance
    bt = backtest(
        prices,
        weights,
        rebalance=rebalance,
        fees=args.fees,
        slippage=args.slippage,
        init_cash=args.init_cash,
        engine=args.engine,
    )
    m = compute_metrics(bt.value, init_cash=args.init_cash, periods_per_year=prices.periods_per_year, traded=bt.traded)
    print(
        f"{label} on {prices.n_assets} assets, {prices.n_bars} bars, rebalance {args.rebalance}, engine {args.engine}"
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


def _print_summary(report) -> None:
    from rich.console import Console
    from rich.table import Table

    from genetic_sizer.results import SUMMARY_METRICS

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 110))
    table = Table(title="Champion beside classical allocations (same window and settings)")
    table.add_column("allocation", no_wrap=True)
    for m in SUMMARY_METRICS:
        table.add_column(_SHORT.get(m, m), justify="right")
    for name, row in report.summary.items():
        table.add_row(name, *(f"{row[m]:.4f}" for m in SUMMARY_METRICS))
    console.print(table)
    for name, why in report.skipped.items():
        console.print(f"  {name} left out: {why}")
    weights = report.champion["weights"]
    top = sorted(weights.items(), key=lambda kv: -abs(kv[1]))
    shown = ", ".join(f"{s} {w:.3f}" for s, w in top if abs(w) >= 5e-4)
    console.print(f"champion weights: {shown}")
    ver = report.champion["verification"]
    console.print(f"vectorbt re-check: metrics agree to {ver['max_rel_diff']:.1e} relative (limit {ver['rtol']:g})")
    console.print(f"run directory: {report.run_dir}  (champion: {report.champion_path})")


def _evolve_plan(args):
    """Where and how ``evolve`` runs: a new run from --config/--set, or the saved config of --resume (where only
    non-semantic overrides such as ``parallel.*`` or ``--ray-address`` may differ). The decisions are
    :func:`genetic_sizer.rundir.plan_new` / :func:`~genetic_sizer.rundir.plan_resume`; nothing is created here."""
    import datetime as dt
    from pathlib import Path

    from genetic_sizer.config import load_config
    from genetic_sizer.errors import ConfigError
    from genetic_sizer.rundir import plan_new, plan_resume

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
    return plan_new(Path(args.out) if args.out else Path("runs") / f"evolve-{stamp}", config)


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


def cmd_evolve(args) -> int:
    import contextlib

    from genetic_sizer.data import load_from_config
    from genetic_sizer.evolve import check_run, evolve
    from genetic_sizer.parallel import close_map, make_map
    from genetic_sizer.results import finalize

    plan = _evolve_plan(args)
    config, run_dir = plan.config, plan.run_dir
    ev, pf, par = config.evolution, config.portfolio, config.parallel
    writing_results = False
    try:
        print(f"loading data ({config.data.source}) ...", flush=True)
        prices = load_from_config(config.data)
        check_run(config, prices)  # bounds, NSGA-II rules: fail before Ray starts or a directory is created
        print(
            f"{prices.n_assets} assets, {prices.n_bars} bars ({prices.index[0].date()} .. {prices.index[-1].date()}); "
            f"objective {', '.join(config.objective)}; {pf.direction}, rebalance {pf.rebalance}, "
            f"fees {pf.fees:g}; population {ev.population}, {ev.generations} generations, seed {ev.seed}; "
            f"engine {config.engine}",
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
        print("checking the champion with vectorbt and writing results ...", flush=True)
        report = finalize(result, prices, run_dir, plots=not args.no_plots)
    except KeyboardInterrupt:
        print(_interrupted(run_dir, ev.generations, writing_results), file=sys.stderr)
        return 130
    _print_summary(report)
    return 0


def _network_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", default="testnet", choices=["testnet", "mainnet"])
    p.add_argument("--base-url", default=None, help="API URL (a local node or a test server); overrides --network")


def cmd_data_fetch(args) -> int:
    from rich.progress import Progress

    from genetic_sizer.exchange import HyperliquidClient, resolve_base_url
    from genetic_sizer.live import fetch_history

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
        )
        for t in tasks.values():
            progress.update(t, total=1, completed=1)
    print(f"{prices.n_assets} coins x {prices.n_bars} {args.interval} bars, {report.first_bar} .. {report.last_bar}")
    for line in report.lines():
        print(f"  {line}")
    for path in paths:
        print(f"wrote {path}")
    print(f"evolve on it with: --set data.source=hyperliquid --set data.path={paths[0]}")
    return 0


def _print_plan(result, as_json: bool) -> None:
    import json

    if as_json:
        from genetic_sizer.live import jsonable

        print(json.dumps(jsonable(result.to_dict()), indent=2, allow_nan=False))
        return
    from rich.console import Console
    from rich.table import Table

    plan = result.plan
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 130))
    mode = "EXECUTED" if result.executed else "DRY RUN (nothing sent; add --execute to trade)"
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
        console.print(f"  order {k + 1}: {o.side} {o.size:g} {o.coin} (~${o.notional:,.2f}){ro} [{o.leg}]")
    for r in result.results:
        console.print(
            f"  result {r.coin}: {r.status} {r.filled_size:g} @ {r.avg_px}" + (f" ({r.error})" if r.error else "")
        )
    for coin, d in result.drift.items():
        console.print(f"  drift {coin}: position {d['position']:g} vs target {d['target']:g} (${d['drift_usd']:,.2f})")


def cmd_size(args) -> int:
    import os

    from genetic_sizer import champion as C
    from genetic_sizer.errors import ConfigError
    from genetic_sizer.exchange import (
        HyperliquidClient,
        check_address,
        is_mainnet,
        load_credentials,
        resolve_base_url,
    )
    from genetic_sizer.live import parse_period, run_every, size_once
    from genetic_sizer.sizer import SizerSettings

    champ = C.load(args.champion)
    settings = SizerSettings(
        leverage=args.leverage,
        min_trade_usd=args.min_trade_usd,
        min_weight_change=args.min_weight_change,
        close_unlisted=not args.keep_unlisted,
        max_notional_per_asset=args.max_notional_per_asset,
    )
    url = resolve_base_url(args.network, args.base_url)
    mainnet = is_mainnet(url)
    network = "mainnet" if mainnet else (url if args.base_url else args.network)
    period = parse_period(args.every) if args.every else None
    credentials = None
    if args.execute or args.keystore or os.environ.get("HL_SECRET_KEY"):
        credentials = load_credentials(args.keystore)
    if args.address:
        address = check_address(args.address, "--address")
    elif credentials is not None:
        address = credentials.account_address
    elif os.environ.get("HL_ACCOUNT_ADDRESS"):
        address = check_address(os.environ["HL_ACCOUNT_ADDRESS"], "HL_ACCOUNT_ADDRESS")
    else:
        raise ConfigError(
            "no account to read: pass --address, set HL_ACCOUNT_ADDRESS, or provide a key (HL_SECRET_KEY or --keystore)"
        )
    if args.execute and mainnet and not args.yes:
        if not sys.stdin.isatty():
            raise ConfigError("sending real orders on mainnet needs --yes (or an interactive confirmation)")
        answer = input(f"Send orders for account {address} on MAINNET? Type 'yes' to continue: ")
        if answer.strip().lower() != "yes":
            print("aborted; nothing sent")
            return 1
    client = HyperliquidClient(url, credentials=credentials if args.execute else None, timeout=args.timeout)
    journal = args.journal or ("size-journal.jsonl" if period else None)

    def once(k: int):
        result = size_once(
            client,
            champ,
            settings,
            address=address,
            network=network,
            execute=args.execute,
            slippage=args.slippage,
            journal=journal,
        )
        _print_plan(result, args.json)
        return result

    if period is None:
        result = once(0)
        return 3 if result.errors else 0
    run_every(period, once)
    return 0


def cmd_export(args) -> int:
    from genetic_sizer.results import export

    try:
        path = export(args.run, args.out, rank=args.rank)
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was written", file=sys.stderr)
        return 130
    print(f"wrote {path}")
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
    fetch.add_argument("--interval", default="1h", help="1m 5m 15m 1h 4h 1d ... (default 1h)")
    fetch.add_argument("--start", required=True, help="first bar, e.g. 2025-01-01")
    fetch.add_argument("--end", default=None, help="last bar (default: now)")
    fetch.add_argument("--out", required=True, help="Parquet file to write (funding goes next to it)")
    fetch.add_argument("--no-funding", action="store_true", help="skip fundingHistory")
    _network_args(fetch)
    fetch.set_defaults(func=cmd_data_fetch)

    bt = sub.add_parser("backtest", help="backtest one weight vector (default: equal weight)")
    _add_data_args(bt)
    bt.add_argument("--weights", nargs="+", type=float, default=None)
    bt.add_argument("--rebalance", default="M", help="once, D, W, M, Q or every N bars")
    bt.add_argument("--fees", type=float, default=0.0005)
    bt.add_argument("--slippage", type=float, default=0.0)
    bt.add_argument("--init-cash", type=float, default=10_000.0)
    bt.add_argument("--engine", default="fast", choices=["fast", "vectorbt"])
    bt.set_defaults(func=cmd_backtest)

    ev = sub.add_parser("evolve", help="evolve weight genomes (writes a run directory with champion.json)")
    ev.add_argument("--config", default=None, help="YAML config (default: built-in defaults)")
    ev.add_argument("--out", default=None, help="run directory (default: runs/evolve-<UTC time>)")
    ev.add_argument("--seed", type=int, default=None, help="override evolution.seed")
    ev.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    ev.add_argument(
        "--set", action="append", metavar="KEY.PATH=VALUE", help="override a config value (YAML), repeatable"
    )
    ev.add_argument(
        "--ray-address", default=None, help="evaluate on the Ray cluster at this address (sets parallel.backend=ray)"
    )
    ev.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    ev.set_defaults(func=cmd_evolve)

    sz = sub.add_parser("size", help="size Hyperliquid positions from a champion (a dry run unless --execute)")
    sz.add_argument("--champion", required=True, help="champion.json")
    _network_args(sz)
    sz.add_argument("--leverage", type=float, default=1.0, help="gross leverage (default 1)")
    sz.add_argument("--min-trade-usd", type=float, default=10.0, help="smallest order, >= $10 (default 10)")
    sz.add_argument("--min-weight-change", type=float, default=0.0, help="drift band in weight units")
    sz.add_argument("--keep-unlisted", action="store_true", help="leave positions in coins the champion lacks")
    sz.add_argument("--max-notional-per-asset", type=float, default=None)
    sz.add_argument("--slippage", type=float, default=0.01, help="IOC limit distance from mid (default 0.01)")
    sz.add_argument("--address", default=None, help="account to read (default: HL_ACCOUNT_ADDRESS or the key's)")
    sz.add_argument("--keystore", default=None, help="encrypted keystore file (password: HL_KEYSTORE_PASSWORD)")
    sz.add_argument("--timeout", type=float, default=10.0, help="seconds per request before retrying (default 10)")
    sz.add_argument("--execute", action="store_true", help="send the orders (default: preview only)")
    sz.add_argument("--yes", action="store_true", help="confirm mainnet execution without a prompt")
    sz.add_argument("--json", action="store_true", help="print the plan as JSON")
    sz.add_argument("--every", default=None, help="keep running: one rebalance per period (e.g. 1h)")
    sz.add_argument("--journal", default=None, help="JSONL journal of plans and results (default with --every)")
    sz.set_defaults(func=cmd_size)

    ex = sub.add_parser("export", help="write the champion file of a ranked member of a finished run")
    ex.add_argument("--run", required=True, help="run directory")
    ex.add_argument("--rank", type=int, default=0, help="hall of fame rank or Pareto member (0 = champion)")
    ex.add_argument("--out", required=True, help="champion JSON file to write")
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

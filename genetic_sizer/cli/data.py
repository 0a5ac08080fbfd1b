"""``genetic-sizer data info``, ``data fetch`` and ``backtest``: inspect, fetch and backtest price data."""

from __future__ import annotations

from genetic_sizer import vocab as V
from genetic_sizer.cli.args import add_data_args, add_network_args, number_arg, rebalance_arg

__all__ = ["add_backtest_parser", "add_data_parser", "cmd_backtest", "cmd_data_fetch", "cmd_data_info"]


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
    from genetic_sizer.backtest.portfolio import backtest_portfolio

    prices = _load(args)
    if args.market == "perp":  # funding for every coin held, when there is funding; a maintenance margin
        from genetic_sizer.evolution.evaluator import check_perp_data

        held = None if args.weights is None else [s for s, x in zip(prices.symbols, args.weights, strict=False) if x]
        check_perp_data(prices, args.max_leverage, held=held, funding=prices.funding is not None)
    run = backtest_portfolio(
        prices,
        args.weights,
        rebalance=args.rebalance,
        threshold=args.threshold,
        fees=args.fees,
        slippage=args.slippage,
        init_cash=args.init_cash,
        engine=args.engine,
        market=args.market,
        leverage=args.leverage,
        max_leverage=args.max_leverage,
    )
    bt, m = run.result, run.metrics
    what = ""
    if args.market == "perp":
        funded = "with funding" if prices.funding is not None else "WITHOUT funding rates"
        tested = "within each bar (highs and lows)" if prices.high is not None else "at the closes only (no highs/lows)"
        what = f", perpetuals at leverage {args.leverage:g} {funded}, liquidation tested {tested}"
    print(
        f"{run.label} on {prices.n_assets} assets, {prices.n_bars} bars, rebalance {args.rebalance}"
        f"{'' if args.threshold is None else f', drift band {args.threshold:g}'}, fees {run.fees:g}, "
        f"engine {args.engine}{what}"
    )
    if args.threshold is not None:
        print(f"  rebalanced on {int(bt.rebalance[:, 0].sum())} of {prices.n_bars} bars")
    if run.liquidated_bar is not None:
        k = run.liquidated_bar
        how = (
            "below 2/3 of it: the backstop liquidator took the positions and the margin"
            if bt.value[k, 0] == 0.0
            else "the positions were closed through the book (fees and slippage paid)"
        )
        print(
            f"  LIQUIDATED on {prices.index[k]} (bar {k} of {prices.n_bars}): the equity fell to the maintenance "
            f"margin; {how}; {bt.value[k, 0]:,.2f} was left and nothing traded after"
        )
    if run.wiped_out_bar is not None:
        k = run.wiped_out_bar
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
        print(f"  {name:<22}{m[name]: .6f}")
    for name in ("funding_paid", "funding_received", "fees_paid"):
        if name in m:
            print(f"  {name:<22}{m[name]: ,.2f}")
    return 0


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


def add_data_parser(sub) -> None:
    data = sub.add_parser("data", help="inspect price data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    info = data_sub.add_parser("info", help="load, validate and summarize a price set")
    add_data_args(info)
    info.set_defaults(func=cmd_data_info)
    fetch = data_sub.add_parser("fetch", help="fetch Hyperliquid candles and funding into Parquet")
    fetch.add_argument("--coins", nargs="+", required=True)
    fetch.add_argument("--interval", default="1h", choices=list(V.INTERVAL_MS), help="candle interval (default 1h)")
    fetch.add_argument("--start", required=True, help="first bar, e.g. 2025-01-01")
    fetch.add_argument("--end", default=None, help="last bar (default: now)")
    fetch.add_argument("--out", required=True, help="Parquet file to write (funding goes next to it)")
    fetch.add_argument("--no-funding", action="store_true", help="skip fundingHistory")
    fetch.add_argument("--force", action="store_true", help="replace existing files (default: refuse)")
    add_network_args(fetch)
    fetch.set_defaults(func=cmd_data_fetch)


def add_backtest_parser(sub) -> None:
    bt = sub.add_parser("backtest", help="backtest one weight vector (default: equal weight)")
    add_data_args(bt)
    bt.add_argument("--weights", nargs="+", type=float, default=None)
    bt.add_argument(
        "--rebalance", type=rebalance_arg, default="M", help=f"{', '.join(V.REBALANCE_CODES)} or every N bars"
    )
    bt.add_argument(
        "--threshold",
        type=number_arg(low=0),
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
    bt.add_argument("--leverage", type=number_arg(low=0, low_open=True), default=1.0, help="perp: gross leverage")
    bt.add_argument(
        "--max-leverage",
        type=number_arg(low=1),
        default=None,
        help="perp: maximum leverage of every asset (default: the margin tiers data fetch saved with the data; "
        "without them it is required)",
    )
    bt.set_defaults(func=cmd_backtest)

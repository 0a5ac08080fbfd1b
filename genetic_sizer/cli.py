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

    bt = sub.add_parser("backtest", help="backtest one weight vector (default: equal weight)")
    _add_data_args(bt)
    bt.add_argument("--weights", nargs="+", type=float, default=None)
    bt.add_argument("--rebalance", default="M", help="once, D, W, M, Q or every N bars")
    bt.add_argument("--fees", type=float, default=0.0005)
    bt.add_argument("--slippage", type=float, default=0.0)
    bt.add_argument("--init-cash", type=float, default=10_000.0)
    bt.add_argument("--engine", default="fast", choices=["fast", "vectorbt"])
    bt.set_defaults(func=cmd_backtest)
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

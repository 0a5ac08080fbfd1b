"""``genetic-sizer frontier``: the cardinality-constrained efficient frontier of a moments file (OR-Library or CSV) or
of a run configuration (backtest-based, training window with the held-out view). Calls one library function and prints
what it reports."""

from __future__ import annotations

import argparse

from genetic_sizer.cli.args import number_arg

__all__ = ["add_frontier_parser", "cmd_frontier"]


def add_frontier_parser(sub) -> None:
    p = sub.add_parser(
        "frontier",
        help="trace a cardinality-constrained efficient frontier (moments file or run config)",
        description=(
            "Trace P points of the efficient frontier under cardinality (at most / exactly K assets), a minimum "
            "weight of a held asset and a maximum weight, and write DIR/frontier.csv (return, variance, one weight "
            "column per asset), DIR/unconstrained.csv (skfolio's convex frontier), DIR/frontier.json and "
            "DIR/frontier.png. Existing files are never overwritten."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--moments", metavar="FILE", help="OR-Library portN.txt, a CSV of moments (asset,mu,...) or returns"
    )
    src.add_argument("--config", metavar="FILE", help="a run configuration: return and risk of the simulated portfolio")
    p.add_argument(
        "--cardinality",
        "-K",
        type=number_arg(low=1, integer=True),
        default=None,
        metavar="K",
        help="at most K assets; with --config the default is the config's portfolio.max_assets",
    )
    p.add_argument(
        "--exact-cardinality",
        action="store_true",
        help="exactly K assets (Chang et al.'s model; needs --min-weight > 0); with --config also when the "
        "config's portfolio.min_assets equals its max_assets",
    )
    p.add_argument(
        "--spacing",
        choices=("return", "slope", "linear"),
        default=None,
        help="where the lambda points sit: evenly spaced returns of the unconstrained frontier (default with "
        "--moments), spread by slope (default with --config), or Chang et al.'s evenly spaced lambda",
    )
    p.add_argument(
        "--min-weight",
        type=number_arg(low=0.0, high=1.0),
        default=None,
        metavar="e",
        help="least weight of a held asset (portfolio.min_position; not a floor on every asset); default 0, or with "
        "--config the config's portfolio.min_position",
    )
    p.add_argument(
        "--max-weight",
        type=number_arg(low=0.0, high=1.0, low_open=True),
        default=None,
        metavar="d",
        help="most weight of an asset; default 1, or with --config the config's portfolio.max_weight",
    )
    p.add_argument("--points", type=number_arg(low=2, integer=True), default=50, metavar="P")
    p.add_argument("--seed", type=number_arg(low=0, integer=True), default=0, metavar="S")
    p.add_argument("--out", required=True, metavar="DIR", help="a directory without frontier files in it")
    p.add_argument("--reference", metavar="PORTEF", help="an unconstrained frontier (OR-Library portef) to measure")
    p.add_argument(
        "--method", choices=("weighted", "nsga2"), default="weighted", help="weighted lambda sweep or NSGA-II"
    )
    p.add_argument(
        "--estimator",
        choices=("sample", "ledoit_wolf"),
        default="sample",
        help="covariance of a returns CSV (--moments)",
    )
    p.add_argument(
        "--budget",
        type=number_arg(low=2, integer=True),
        default=None,
        metavar="N",
        help="evaluations per point (default 1000 x assets, Chang et al.'s)",
    )
    p.add_argument(
        "--risk",
        choices=("variance", "cvar", "cdar"),
        default="variance",
        help="--config: the risk traded against return (skfolio's CVaR / CDaR at 95%%; the second column's name)",
    )
    p.set_defaults(func=cmd_frontier)


def cmd_frontier(args: argparse.Namespace) -> int:
    from genetic_sizer.errors import ConfigError
    from genetic_sizer.evolution.frontier import FrontierOptions

    flags = {
        "k": args.cardinality,
        "exact": args.exact_cardinality or None,
        "min_weight": args.min_weight,
        "max_weight": args.max_weight,
    }
    given = {key: value for key, value in flags.items() if value is not None}
    options = FrontierOptions(
        **given, points=args.points, seed=args.seed, method=args.method, budget=args.budget, spacing=args.spacing
    )
    if args.moments is not None:
        from genetic_sizer.runs.frontier import frontier_from_moments

        if options.exact and options.k is None:
            raise ConfigError("--exact-cardinality needs --cardinality K")
        if args.risk != "variance":
            raise ConfigError(f"--risk {args.risk} needs --config (a moments file has only the variance)")
        run = frontier_from_moments(args.moments, args.out, options, reference=args.reference, estimator=args.estimator)
    else:
        if args.reference is not None:
            raise ConfigError("--reference measures a moments frontier; use it with --moments")
        if args.spacing == "return":
            raise ConfigError("--spacing return needs --moments (the unconstrained frontier of given moments)")
        from genetic_sizer.validation.frontier import frontier_from_config

        missing = tuple(key for key in flags if key not in given)
        run = frontier_from_config(args.config, args.out, options, risk=args.risk, from_config=missing)
    s = run.result.settings
    exact = "exactly" if s["exact"] else "at most"
    print(
        f"constraints      {exact + ' ' + str(s['k']) if s['k'] is not None else 'any number of'} assets, held weights "
        f"in [{s['min_weight']:g}, {s['max_weight']:g}]"
    )
    res = run.result
    print(
        f"frontier         {len(res.returns)} points ({res.method}), {res.total_evaluations} evaluations "
        f"in {res.seconds:.1f} s"
    )
    print(f"return           {res.returns.min():.6g} .. {res.returns.max():.6g}")
    print(f"{args.risk:<17}{res.risks.min():.6g} .. {res.risks.max():.6g}")
    if run.errors is not None:
        e = run.errors
        print(f"mean Euclidean distance     {e.mean_euclidean_distance:.6g}")
        print(f"variance of return error    {e.variance_error_pct:.4f} %  (Cura 2009: to the nearest reference point)")
        print(f"mean return error           {e.return_error_pct:.4f} %")
        print(
            f"interpolated (Chang et al.) variance {e.variance_error_interp_pct:.4f} % ({e.n_variance_error} points), "
            f"return {e.return_error_interp_pct:.4f} % ({e.n_return_error} points)"
        )
    for f in run.files:
        print(f"wrote            {f}")
    return 0

"""``genetic-sizer stress``: a champion's losses in historical windows, named crises and hypothetical shocks, beside
1/N's and the classical allocators' (:func:`genetic_sizer.runs.stress.stress_champion`)."""

from __future__ import annotations

import json

from genetic_sizer.cli.args import number_arg

__all__ = ["add_stress_parser", "cmd_stress", "print_stress"]


def cmd_stress(args) -> int:
    from genetic_sizer.config import load_config
    from genetic_sizer.runs.stress import DEFAULT_SHOCKS, stress_champion
    from genetic_sizer.storage import files

    out = None if args.out is None else files.check_new_file(args.out, "stress JSON file", force=args.force)
    config = None if args.config is None and not args.set else load_config(args.config, args.set or [])
    table = stress_champion(
        args.champion,
        config,
        config_data=args.config is not None,  # --set alone: the allocators: keys, the champion's recorded data
        window=args.window,
        worst=args.worst,
        shocks=tuple(args.shock) if args.shock else DEFAULT_SHOCKS,
        vol_mult=args.vol_mult,
        confidence=args.confidence,
    )
    text = json.dumps(table, indent=1)
    if out is not None:
        files.write_text(out, text + "\n", "stress JSON file")
    if args.json:
        print(text)
    else:
        print_stress(table)
        if out is not None:
            print(f"wrote {out}")
    return 0


_SHORT = {
    "inverse_volatility": "inv_vol",
    "min_variance": "min_var",
    "max_sharpe": "max_shrp",
    "risk_parity": "risk_par",
    "risk_budgeting": "risk_bud",
    "black_litterman": "blk_litt",
    "market_cap": "mkt_cap",
}


def print_stress(table: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))
    d = table["data"]
    books = list(table["books"])
    t = Table(title=f"Stress losses (% of the book's value; + is a loss): {table['champion']}")
    t.add_column("scenario", no_wrap=True)
    t.add_column("window", no_wrap=True)
    for name in books:
        t.add_column(_SHORT.get(name, name), justify="right", style="bold" if name == "champion" else None)
    for row in table["scenarios"]:
        span = "" if row["window"] is None else f"{row['window'][0][:10]}..{row['window'][1][:10]}"
        t.add_row(row["name"], span, *(f"{100 * row['losses'][n]:.2f}" for n in books))
    console.print(t)
    short = [f"{v} = {k}" for k, v in _SHORT.items() if k in books]
    if short:
        console.print("columns: " + ", ".join(short))
    console.print(
        f"data: {d['source']}, {d['first_bar'][:10]} .. {d['last_bar'][:10]}; allocators fitted on the champion's "
        f"in-sample window {d['in_sample'][0][:10]} .. {d['in_sample'][1][:10]}"
        + ("" if d["same_as_evolved"] else " (WARNING: these closes differ from those the champion was evolved on)")
    )
    if table["scale"] != 1.0:
        console.print(f"every book sized at the champion's leverage {table['scale']:g}x")
    for name, why in table["not_covered"].items():
        console.print(f"  {name}: {why}")
    for name, why in table["skipped"].items():
        console.print(f"  {name} left out: {why}")


def add_stress_parser(sub) -> None:
    sp = sub.add_parser(
        "stress", help="a champion's losses in the worst windows, named crises and shocks, beside 1/N and allocators"
    )
    sp.add_argument("--champion", required=True, help="champion JSON file")
    sp.add_argument("--config", default=None, help="YAML config: its data (default: the champion's recorded source)")
    sp.add_argument(
        "--set",
        action="append",
        metavar="KEY.PATH=VALUE",
        help="override a config value, repeatable (without --config: e.g. allocators.views; the data stays recorded)",
    )
    sp.add_argument("--window", type=number_arg(low=1, integer=True), default=21, help="bars per window (21)")
    sp.add_argument("--worst", type=number_arg(low=1, integer=True), default=3, help="worst windows shown (3)")
    sp.add_argument(
        "--shock",
        action="append",
        metavar="SPEC=MOVE",
        help="a hypothetical move, repeatable: all=-0.2, AAPL=-0.3, AAPL+MSFT=-0.25, a constraint group's name, "
        "largest (the champion's largest holding); default: all=-0.2 and largest=-0.3",
    )
    sp.add_argument("--vol-mult", type=number_arg(low=0.0, low_open=True), default=2.0, help="volatility x k (2)")
    sp.add_argument(
        "--confidence",
        type=number_arg(low=0.5, high=1.0, low_open=True, high_open=True),
        default=0.99,
        help="parametric VaR confidence (0.99)",
    )
    sp.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    sp.add_argument("--out", default=None, help="also write the JSON to this file (refuses an existing one)")
    sp.add_argument("--force", action="store_true", help="replace an existing --out file")
    sp.set_defaults(func=cmd_stress)

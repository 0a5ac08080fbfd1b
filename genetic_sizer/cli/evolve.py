"""``genetic-sizer evolve``, ``walkforward``, ``report`` and ``export``: evolve weight genomes into a run directory
and work with finished runs. Each command calls one library function and prints what it reports."""

from __future__ import annotations

import sys

from genetic_sizer.cli.args import run_overrides
from genetic_sizer.cli.show import (
    account_of,
    perp_lines,
    print_summary,
    print_walkforward,
    progress_printer,
    reference_of,
)

__all__ = [
    "add_evolve_parser",
    "add_export_parser",
    "add_report_parser",
    "add_walkforward_parser",
    "cmd_evolve",
    "cmd_export",
    "cmd_report",
    "cmd_walkforward",
]


def _plan(args, kind: str = "evolve"):
    """Where and how ``evolve`` (or ``walkforward``) runs: :func:`genetic_sizer.runs.rundir.plan_run` of the flags;
    nothing is created here."""
    from genetic_sizer.runs.rundir import plan_run

    return plan_run(args.config, run_overrides(args), out=args.out, resume=args.resume, kind=kind)


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
    from genetic_sizer.validation.holdout import evolve_run

    plan = _plan(args)
    config, run_dir = plan.config, plan.run_dir
    ev, pf = config.evolution, config.portfolio
    writing_results = False

    def on_event(kind: str, **info) -> None:
        nonlocal writing_results
        if kind == "loading":
            print(f"loading data ({info['source']}) ...", flush=True)
        elif kind == "data":
            everything, prices, holdout = info["everything"], info["prices"], info["holdout"]
            print(
                f"{prices.n_assets} assets, {everything.n_bars} bars ({everything.index[0].date()} .. "
                f"{everything.index[-1].date()}); objective {', '.join(config.objective)}; "
                f"{account_of(config, prices)}{pf.direction}, "
                f"rebalance {pf.rebalance}, fees {pf.fees:g}; population {ev.population}, {ev.generations} "
                f"generations, seed {ev.seed}; engine {config.engine}",
                flush=True,
            )
            for line in perp_lines(config, everything):
                print(line, flush=True)
            if holdout is None:
                print("no held-out window (evolution.holdout: 0): every figure below is IN-SAMPLE", flush=True)
            else:
                print(
                    f"evolving on {prices.index[0].date()} .. {prices.index[-1].date()} ({prices.n_bars} bars); "
                    f"held out for out-of-sample figures: {holdout.index[0].date()} .. {holdout.index[-1].date()} "
                    f"({holdout.n_bars} bars, evolution.holdout: {ev.holdout})",
                    flush=True,
                )
        elif kind == "run_dir":
            print(f"run directory: {info['run_dir']}{' (resuming)' if info['resume'] else ''}", flush=True)
        elif kind == "connecting":
            where = f"the Ray cluster at {info['address']}" if info["address"] else "a local Ray instance"
            print(f"connecting to {where} ...", flush=True)
        elif kind == "ray_ready":
            print(f"Ray ready in {info['seconds']:.1f} s: {info['workers']} workers", flush=True)
        elif kind == "resampling":
            print(f"robust.ensemble resampled: {info['runs']} more runs on resampled histories ...", flush=True)
        elif kind == "finalizing":
            writing_results = True
            print(f"checking the champion with {reference_of(config)} and writing results ...", flush=True)

    progress, update = progress_printer(config.objective[0])
    try:
        report = evolve_run(plan, plots=not args.no_plots, on_event=on_event, on_generation=update, display=progress)
    except KeyboardInterrupt:
        print(_interrupted(run_dir, ev.generations, writing_results), file=sys.stderr)
        return 130
    print_summary(report, run_dir.url)
    if config.robust.nested or config.robust.methods:
        print(
            "robust.nested and robust.methods choose and report per fold in `genetic-sizer walkforward` only: "
            "evolve deployed the champion above",
            flush=True,
        )
    return 0


def cmd_walkforward(args) -> int:
    from genetic_sizer.validation.walkforward import walkforward_run

    plan = _plan(args, "walkforward")
    config, run_dir = plan.config, plan.run_dir
    wfc, pf = config.walkforward, config.portfolio

    def on_event(kind: str, **info) -> None:
        if kind == "loading":
            print(f"loading data ({info['source']}) ...", flush=True)
        elif kind == "data":
            prices, folds = info["prices"], info["folds"]
            print(
                f"{prices.n_assets} assets, {prices.n_bars} bars ({prices.index[0].date()} .. "
                f"{prices.index[-1].date()}); {len(folds)} folds (train {wfc.train}, test {wfc.test}, purge "
                f"{wfc.purge}{', anchored' if wfc.anchored else ''}); objective {', '.join(config.objective)}; "
                f"{account_of(config, prices)}{pf.direction}, "
                f"rebalance {pf.rebalance}, fees {pf.fees:g}; population {config.evolution.population}, "
                f"{config.evolution.generations} generations per fold; folds on "
                f"{'Ray' if config.parallel.backend == 'ray' else 'this process'}",
                flush=True,
            )
            for line in perp_lines(config, prices):
                print(line, flush=True)
            from genetic_sizer.validation.folds import describe_dropped, execution_text

            print(execution_text(wfc), flush=True)
            for d in info.get("dropped", ()):
                print(f"test window left out: {describe_dropped(d)}", flush=True)
        elif kind == "run_dir":
            print(f"run directory: {info['run_dir']}{' (resuming)' if info['resume'] else ''}", flush=True)
        elif kind == "finalizing":
            print(f"checking the live champion with {reference_of(config)} and writing results ...", flush=True)

    def on_fold(fold, b, rec, done, total) -> None:
        print(
            f"fold {fold.number + 1}/{total} done ({done} of {total}): train {b['train_start'][:10]} .. "
            f"{b['train_end'][:10]}, test {b['test_start'][:10]} .. {b['test_end'][:10]}; "
            f"{rec['evaluations']} evaluations; in-sample Sharpe GA {rec['in_sample']['GA']['sharpe']:.3f}",
            flush=True,
        )

    try:
        wf, champion = walkforward_run(
            config, run_dir, resume=args.resume, plots=not args.no_plots, on_event=on_event, on_fold=on_fold
        )
    except KeyboardInterrupt:
        if not run_dir.is_run:  # before the run was created, or taken back (nothing had been written)
            print("\ninterrupted before the run started; nothing was written", file=sys.stderr)
            return 130
        print(
            f"\ninterrupted; finished folds are saved. Continue with:\n  genetic-sizer walkforward --resume --out "
            f"{run_dir}",
            file=sys.stderr,
        )
        return 130
    print_walkforward(wf, champion, run_dir)
    return 0


def cmd_report(args) -> int:
    from genetic_sizer.runs.report import write_report

    path = write_report(args.run)
    print(f"wrote {path}")
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


def add_evolve_parser(sub) -> None:
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


def add_walkforward_parser(sub) -> None:
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


def add_report_parser(sub) -> None:
    rp = sub.add_parser("report", help="write report.html for a finished evolve or walkforward run")
    rp.add_argument("--run", required=True, help="run directory (a path or a storage URL)")
    rp.set_defaults(func=cmd_report)


def add_export_parser(sub) -> None:
    ex = sub.add_parser("export", help="write the champion file of a ranked member of a finished run")
    ex.add_argument("--run", required=True, help="run directory (a path or a storage URL)")
    ex.add_argument("--rank", type=int, default=0, help="hall of fame rank or Pareto member (0 = champion)")
    ex.add_argument("--out", required=True, help="champion JSON file to write")
    ex.add_argument("--force", action="store_true", help="replace an existing file (default: refuse)")
    ex.set_defaults(func=cmd_export)

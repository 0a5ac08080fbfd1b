"""``genetic-sizer submit`` and ``jobs``: run ``evolve`` (or ``walkforward``) as a job on a Ray cluster through its Jobs
API, and follow, read or stop such a job (:mod:`genetic_sizer.cluster.jobs`)."""

from __future__ import annotations

import sys

from genetic_sizer.cli.args import run_overrides
from genetic_sizer.cli.show import print_champion

__all__ = ["add_jobs_parser", "add_submit_parser", "cmd_jobs", "cmd_submit"]


def cmd_submit(args) -> int:
    from genetic_sizer.cluster.jobs import submit_run

    stage: dict = {}

    def on_event(kind: str, **info) -> None:
        stage.clear()
        stage.update(info, kind=kind)
        if kind == "note":
            print(f"note: {info['text']}", flush=True)
        elif kind == "submitted":
            run = info["run"]
            where = run if info["stored"] else f"{run} on the node the job runs on (no run storage given)"
            print(f"submitted job {info['job_id']} to {info['url']}", flush=True)
            print(f"run directory: {where}", flush=True)
        elif kind == "succeeded":
            print(f"job {info['job_id']} succeeded in {info['seconds']:.1f} s", flush=True)
        elif kind == "fetched":
            path = info["path"]
            print(f"copied the run from {info['run']} to {path}")
            if (path / "champion.json").is_file():
                print_champion(path / "champion.json")

    try:
        report = submit_run(
            args.command,
            args.config,
            run_overrides(args),
            address=args.address,
            storage_url=args.storage,
            working_dir=args.working_dir,
            resume=args.resume,
            no_plots=args.no_plots,
            python=args.python,
            out=args.out,
            wait=not args.no_wait,
            on_event=on_event,
        )
    except KeyboardInterrupt:
        if stage.get("kind") == "submitting":
            print(
                f"\ninterrupted while submitting; the cluster may have accepted it. Check with:\n"
                f"  genetic-sizer jobs status {stage['submission_id']} --address {stage['url']}",
                file=sys.stderr,
            )
            return 130
        if stage.get("kind") == "following":
            job_id, later = stage["job_id"], f"--address {stage['url']}"
            print(
                f"\nstopped following; job {job_id} keeps running on the cluster. Follow it again with:\n"
                f"  genetic-sizer jobs logs {job_id} --follow {later}\nor stop it with:\n"
                f"  genetic-sizer jobs stop {job_id} {later}",
                file=sys.stderr,
            )
            return 130
        raise
    if report is None:  # --no-wait
        print(f"follow it with: genetic-sizer jobs logs {stage['job_id']} --follow --address {stage['url']}")
        return 0
    if not report.succeeded:
        print(f"job {report.job_id} {report.status}: {report.message or 'no message'}", file=sys.stderr)
        return 1
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


def add_submit_parser(sub) -> None:
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
    sb.add_argument(
        "--python",
        default=None,
        metavar="PATH",
        help="the cluster's Python interpreter, which has genetic_sizer installed: the job runs PATH -m genetic_sizer "
        "(default: python, as found on the cluster's PATH)",
    )
    sb.add_argument("--resume", default=None, metavar="RUN", help="continue the stored run RUN (a storage URL)")
    sb.add_argument("--no-plots", action="store_true", help="skip the PNG plots and the HTML report")
    sb.add_argument("--no-wait", action="store_true", help="print the job id and return without following the job")
    sb.set_defaults(func=cmd_submit)


def add_jobs_parser(sub) -> None:
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

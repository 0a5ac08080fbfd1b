"""The README's figures that depend on this machine and this code, measured: how long ``make evolve`` and
``make walkforward`` take once Numba's cache is warm, and (``--cold``) ``make evolve``'s first run, when every kernel
is compiled, and how long the variation kernel (``genetic_sizer.evolution.vary_nb``) takes to compile and to load.

Each command runs as the Makefile runs it (``genetic-sizer evolve --config configs/default.yaml``, ``genetic-sizer
walkforward --config configs/walkforward.yaml``, plots and report included) in a fresh process, into a temporary run
directory, timed by the wall clock: one run first (it fills Numba's cache if needed, not counted), then ``--repeats``
runs whose median is kept. ``--cold`` adds one ``make evolve`` with an empty cache (``NUMBA_CACHE_DIR`` a new
directory: every kernel it calls is compiled), and the first call of ``vary_population`` in a fresh process with an
empty cache (compile) and again in another process with that cache (load). The load average when the measurement
starts is recorded beside the figures: a busy machine gives longer times than an idle one.

Writes ``experiments/readme_figures.json``. ``--write`` copies the figures into README.md wherever it says
``<!-- fig:NAME -->...<!-- /fig -->``; ``--check`` only compares (exit 1 when README.md says something else than the
JSON: ``tests/test_readme.py`` runs it), so the README's figures are always the last measurement's, never typed in.

``make bench``'s speed benchmarks (``experiments/bench_simulate.py``, ``experiments/bench_loop.py``) save their headline
figures with :func:`save_results` into ``experiments/results/bench_simulate.json`` and ``bench_loop.json`` (each part of
a benchmark with when, on which commit, on how many CPUs and at which load average it ran); ``--bench --write`` measures
nothing and copies those into README.md's speed table (the ``bench_*`` figures) and leaves every other figure as it is;
a part no run has saved reads "not measured". ``--check`` compares those too.

Run: ``.venv/bin/python experiments/readme_figures.py --write [--cold] [--repeats 3]``, or after the benchmarks
``.venv/bin/python experiments/readme_figures.py --bench --write`` (the end of ``make bench``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
OUTPUT = Path(__file__).with_name("readme_figures.json")
CLI = [sys.executable, "-m", "genetic_sizer"]
COMMANDS = {
    "evolve": ["evolve", "--config", "configs/default.yaml"],
    "walkforward": ["walkforward", "--config", "configs/walkforward.yaml"],
}
VARY = """
import time
import numpy as np
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.evolution.variation import vary_population

space = GenomeSpace.create([f"A{i}" for i in range(20)])
rng = np.random.default_rng(0)
w = space.sample(rng, 10)
t0 = time.perf_counter()
vary_population(space, w, rng.random(5) < 0.9, np.ones(10, bool), rng.integers(0, 2**63, 10, dtype=np.uint64))
print(time.perf_counter() - t0)
"""
"""The first call of the variation kernel, timed in a child process (seconds on its last line)."""
MARK = re.compile(r"<!-- fig:(?P<name>[a-z0-9_]+) -->(?P<text>.*?)<!-- /fig -->", re.S)


def _seconds(s: float) -> str:
    """A duration as the README says it: "about 5 s", "about 40 s", "about 2 minutes"."""
    if s < 10:
        return f"about {max(1, round(s))} s"
    if s < 90:
        return f"about {5 * round(s / 5)} s"
    return f"about {round(s / 60 * 2) / 2:g} minutes"


def rendered(figures: dict) -> dict[str, str]:
    """The README text of every figure in ``figures`` (the JSON)."""
    out = {}
    for name in ("evolve_warm", "walkforward_warm", "evolve_cold", "variation_compile"):
        if figures.get(name) is not None:
            out[name] = _seconds(statistics.median(figures[name]))
    if figures.get("variation_load") is not None:
        out["variation_load"] = f"{statistics.median(figures['variation_load']):.1f} s"
    if figures.get("load_average") is not None:
        out["load_average"] = f"{figures['load_average']:.1f}"
    if figures.get("cpus") is not None:
        out["cpus"] = str(figures["cpus"])
    return out


RESULTS = ROOT / "experiments" / "results"
BENCHES = ("bench_simulate", "bench_loop")
"""The benchmarks whose figures README.md's speed table takes: ``RESULTS / f"{name}.json"`` each."""
SCHEMA = 1
NOT_MEASURED = "not measured"
VS_VECTORBT = {"monthly": 1000.0, "daily": 300.0}
"""Issue 27's targets for simulate() against vectorbt (values, Prices and a DataFrame; daily also the fused scorer)."""
OUTSIDE_PRICES = 0.05
"""Issue 27: the time simulate() spends outside the kernel on ``Prices``, at most this share of a call."""
LOOP = {100: 0.7, 1000: 0.9}
"""Issue 27: the loop's evaluations per second over simulate()'s genomes per second, per population."""


def run_context() -> dict:
    """When, where and on what code a benchmark run starts: the UTC time, the command (with ``NUMBA_NUM_THREADS`` if
    set), the git commit and whether tracked files differ from it, the CPU count and the load averages (1, 5 and 15
    minutes) at the start."""

    def git(*args: str) -> str | None:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None

    script = Path(sys.argv[0]).resolve()
    script = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    threads = os.environ.get("NUMBA_NUM_THREADS")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "measured": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join([*([f"NUMBA_NUM_THREADS={threads}"] if threads else []), str(script), *sys.argv[1:]]),
        "commit": git("rev-parse", "--short=10", "HEAD"),
        "uncommitted_changes": None if status is None else bool(status),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def save_results(name: str, parts: dict, directory: Path | None = None) -> Path:
    """Puts ``parts`` (part name -> its figures) into ``directory / f"{name}.json"`` beside the parts of earlier runs
    that this run did not measure, and returns the path. The file is replaced atomically (written to a temporary file
    in the same directory, then renamed over it); nothing else is written. A file that is not such a record is
    refused, not overwritten."""
    if name not in BENCHES:
        raise ValueError(f"save_results: name must be one of {BENCHES}, got {name!r}")
    directory = RESULTS if directory is None else Path(directory)
    path = directory / f"{name}.json"
    saved: dict = {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not a bench record ({e}); move it away to save new figures") from None
        if not isinstance(old, dict) or old.get("schema") != SCHEMA or not isinstance(old.get("parts"), dict):
            raise ValueError(f"{path} is not a bench record of schema {SCHEMA}; move it away to save new figures")
        saved = old["parts"]

    def plain(x):  # numpy scalars
        if hasattr(x, "item"):
            return x.item()
        raise TypeError(f"save_results: {type(x).__name__} {x!r} is not a JSON figure")

    record = {"schema": SCHEMA, "benchmark": name, "parts": {**saved, **parts}}
    text = json.dumps(record, indent=1, default=plain) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain write would make it (mkstemp makes it 0600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_results(directory: Path | None = None) -> dict:
    """The saved bench records (name -> the JSON, or None for a benchmark that never saved one)."""
    directory = RESULTS if directory is None else Path(directory)
    out = {}
    for name in BENCHES:
        path = directory / f"{name}.json"
        out[name] = json.loads(path.read_text()) if path.is_file() else None
        if out[name] is not None and out[name].get("schema") != SCHEMA:
            raise ValueError(f"{path}: schema {out[name].get('schema')!r}, this script reads {SCHEMA}")
    return out


def _part(results: dict, bench: str, part: str) -> dict | None:
    record = results.get(bench)
    return None if record is None else record["parts"].get(part)


def _row(part: dict | None, rebalance: str) -> dict | None:
    if part is None:
        return None
    return next((r for r in part.get("rows", []) if r.get("rebalance") == rebalance), None)


def _num(d: dict | None, key: str) -> float | None:
    value = None if d is None else d.get(key)
    return None if value is None else float(value)


def _rate(part: dict | None, row: dict | None, seconds: str) -> float | None:
    """Genomes per second of a timing in a row: the part's genomes over the row's ``seconds``."""
    genomes, t = _num(part, "genomes"), _num(row, seconds)
    return None if genomes is None or t is None else genomes / t


def _verdict(value: float, target: float | None) -> str:
    return "" if target is None else (": met" if value >= target else ": not met")


def _vs_vectorbt(ratio: float | None, gps: float | None, target: float | None) -> str:
    if ratio is None or gps is None:
        return NOT_MEASURED
    return f"{ratio:,.0f}x ({gps:,.0f} genomes/s){_verdict(ratio, target)}"


def _run(part: dict | None) -> str:
    """When, where and how a part was measured, as the README says it."""
    if part is None:
        return NOT_MEASURED
    when = dt.datetime.strptime(part["measured"], "%Y-%m-%dT%H:%M:%SZ").strftime("%Y-%m-%d %H:%M UTC")
    commit = "an unknown commit" if part.get("commit") is None else f"commit {part['commit'][:7]}"
    if part.get("uncommitted_changes"):
        commit += " with uncommitted changes"
    load = part.get("load_average")
    load = "unknown" if load is None else " / ".join(f"{x:.2f}" for x in load)
    threads = part.get("numba_threads")
    return f"`{part['command']}`, {when}, {commit}, {part['cpus']} CPUs, load average {load} at the start" + (
        "" if threads is None else f", {threads} Numba thread{'s' if threads != 1 else ''}"
    )


def bench_rendered(results: dict) -> dict[str, str]:
    """The README text of every speed-table figure (``bench_*``) from the saved bench records ``results``
    (:func:`load_results`); a figure whose part or row no run saved says "not measured"."""
    speed = _part(results, "bench_simulate", "speed")
    frame = _part(results, "bench_simulate", "frame")
    out = {"bench_speed_run": _run(speed), "bench_frame_run": _run(frame)}
    for policy, target in VS_VECTORBT.items():
        row = _row(speed, policy)
        out[f"bench_prices_{policy}"] = _vs_vectorbt(_num(row, "ratio"), _rate(speed, row, "fast_s"), target)
        out[f"bench_score_{policy}"] = _vs_vectorbt(
            _num(row, "score_ratio"), _rate(speed, row, "score_s"), target if policy == "daily" else None
        )
        out[f"bench_one_thread_{policy}"] = _vs_vectorbt(_num(row, "ratio_1t"), _rate(speed, row, "fast_1t_s"), None)
        row = _row(frame, policy)
        out[f"bench_frame_{policy}"] = _vs_vectorbt(_num(row, "frame_ratio"), _rate(frame, row, "frame_s"), target)
    for kind, target in (("prices", OUTSIDE_PRICES), ("frame", None)):
        shares = {p: _num(_row(frame, p), f"{kind}_overhead") for p in VS_VECTORBT}
        if None in shares.values():
            out[f"bench_outside_{kind}"] = NOT_MEASURED
        else:
            said = ", ".join(f"{share:.1%} {p}" for p, share in shares.items())
            out[f"bench_outside_{kind}"] = said + (
                "" if target is None else (": met" if max(shares.values()) < target else ": not met")
            )
    for population, target in LOOP.items():
        part = _part(results, "bench_loop", f"population_{population}")
        wall, cpu = _num(part, "ratio_wall"), _num(part, "ratio_cpu")
        out[f"bench_loop_{population}_run"] = _run(part)
        if wall is None or cpu is None:
            out[f"bench_loop_{population}"] = NOT_MEASURED
        else:
            verdict = "met" if wall >= target else ("met in CPU time only" if cpu >= target else "not met")
            out[f"bench_loop_{population}"] = f"{wall:.2f} wall, {cpu:.2f} CPU time: {verdict}"
    return out


def run_once(command: str, env: dict | None = None) -> float:
    with tempfile.TemporaryDirectory(prefix="gs-readme-") as tmp:
        args = [*CLI, *COMMANDS[command], "--out", str(Path(tmp) / "run")]
        t0 = time.perf_counter()
        out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return seconds


def measure(repeats: int, cold: bool) -> dict:
    figures = {
        "measured": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "repeats": repeats,
    }
    for command in COMMANDS:
        run_once(command)  # fills Numba's cache if a kernel changed; not counted
        figures[f"{command}_warm"] = [round(run_once(command), 2) for _ in range(repeats)]
        print(f"{command}, warm: {figures[f'{command}_warm']} s", flush=True)
    if cold:
        with tempfile.TemporaryDirectory(prefix="gs-numba-cache-") as cache:
            figures["evolve_cold"] = [round(run_once("evolve", {**os.environ, "NUMBA_CACHE_DIR": cache}), 2)]
        print(f"evolve, cold cache: {figures['evolve_cold']} s", flush=True)
        with tempfile.TemporaryDirectory(prefix="gs-numba-cache-") as cache:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            first = [sys.executable, "-c", VARY]
            runs = [subprocess.run(first, cwd=ROOT, env=env, capture_output=True, text=True, check=True) for _ in "ab"]
        figures["variation_compile"] = [round(float(runs[0].stdout.split()[-1]), 2)]
        figures["variation_load"] = [round(float(runs[1].stdout.split()[-1]), 2)]
        print(f"variation kernel: compile {figures['variation_compile']} s, load {figures['variation_load']} s")
    return figures


def check(text: str, figures: dict, results: dict | None = None) -> list[str]:
    """What README.md ``text`` says differently from ``figures`` (and figures it marks that the JSON lacks), and from
    the bench records ``results`` (:func:`load_results`, read from ``experiments/results`` when not given)."""
    bench = bench_rendered(load_results() if results is None else results)
    want = {**rendered(figures), **bench}
    problems = []
    for m in MARK.finditer(text):
        name, said = m["name"], m["text"]
        source = "experiments/results/bench_*.json" if name in bench else OUTPUT.name
        if name not in want:
            problems.append(f"README.md marks fig:{name}, which {OUTPUT.name} does not have")
        elif said != want[name]:
            problems.append(f"README.md says {said!r} for fig:{name}; {source} gives {want[name]!r}")
    return problems


def write(text: str, figures: dict | None, results: dict | None = None) -> str:
    """``text`` with every marked figure as ``figures`` (None: leave those) and the bench records ``results`` (read
    from ``experiments/results`` when not given) say it."""
    want = {**rendered(figures or {}), **bench_rendered(load_results() if results is None else results)}
    if figures is None:
        want = {k: v for k, v in want.items() if k.startswith("bench_")}
    return MARK.sub(lambda m: f"<!-- fig:{m['name']} -->{want.get(m['name'], m['text'])}<!-- /fig -->", text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each command (the median is kept)")
    ap.add_argument("--cold", action="store_true", help="also time make evolve with an empty Numba cache")
    ap.add_argument("--write", action="store_true", help="write the figures into README.md")
    ap.add_argument("--check", action="store_true", help="measure nothing: compare README.md with the JSON")
    ap.add_argument(
        "--bench",
        action="store_true",
        help="measure nothing: print make bench's saved figures (experiments/results/bench_*.json); with --write, "
        "copy them into README.md's speed table and leave every other figure as it is",
    )
    args = ap.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    if args.check:
        problems = check(text, json.loads(OUTPUT.read_text()), load_results(RESULTS))
        print("\n".join(problems) or f"README.md agrees with {OUTPUT.name} and {RESULTS.name}/bench_*.json")
        return 1 if problems else 0
    if args.bench:
        results = load_results(RESULTS)
        for name, said in bench_rendered(results).items():
            print(f"{name}: {said}")
        if args.write:
            README.write_text(write(text, None, results), encoding="utf-8")
            print(f"wrote the bench figures into {README}")
        return 0
    figures = measure(args.repeats, args.cold)
    if not args.cold and OUTPUT.is_file():  # keep the last cold measurements
        last = json.loads(OUTPUT.read_text())
        for name in ("evolve_cold", "variation_compile", "variation_load"):
            figures.setdefault(name, last.get(name))
    OUTPUT.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"wrote {OUTPUT}: " + ", ".join(f"{k} {v}" for k, v in rendered(figures).items()))
    if args.write:
        README.write_text(write(text, figures), encoding="utf-8")
        print(f"wrote the figures into {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

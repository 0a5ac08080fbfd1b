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

Run: ``.venv/bin/python experiments/readme_figures.py --write [--cold] [--repeats 3]``.
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
MARK = re.compile(r"<!-- fig:(?P<name>[a-z_]+) -->(?P<text>.*?)<!-- /fig -->", re.S)


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


def check(text: str, figures: dict) -> list[str]:
    """What README.md ``text`` says differently from ``figures`` (and figures it marks that the JSON lacks)."""
    want = rendered(figures)
    problems = []
    for m in MARK.finditer(text):
        name, said = m["name"], m["text"]
        if name not in want:
            problems.append(f"README.md marks fig:{name}, which {OUTPUT.name} does not have")
        elif said != want[name]:
            problems.append(f"README.md says {said!r} for fig:{name}; {OUTPUT.name} gives {want[name]!r}")
    return problems


def write(text: str, figures: dict) -> str:
    want = rendered(figures)
    return MARK.sub(lambda m: f"<!-- fig:{m['name']} -->{want.get(m['name'], m['text'])}<!-- /fig -->", text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each command (the median is kept)")
    ap.add_argument("--cold", action="store_true", help="also time make evolve with an empty Numba cache")
    ap.add_argument("--write", action="store_true", help="write the figures into README.md")
    ap.add_argument("--check", action="store_true", help="measure nothing: compare README.md with the JSON")
    args = ap.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    if args.check:
        problems = check(text, json.loads(OUTPUT.read_text()))
        print("\n".join(problems) or "README.md agrees with " + OUTPUT.name)
        return 1 if problems else 0
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

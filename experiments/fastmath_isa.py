"""Experiment: how the kernels' fast-math makes results depend on the instruction set, and what dropping it costs.

The simulation kernels (``genetic_sizer/backtest/kernels/spot.py``, ``perp.py``) are compiled with
``fastmath={"reassoc", "contract"}``: sums over assets may be reordered (so they vectorize) and multiply-adds fused.
Both depend on the compile target (vector width, FMA or not), which Numba takes from the CPU it runs on. This runs the
same workload in child processes compiled for several targets (``NUMBA_CPU_NAME``: ``native`` is this CPU, ``generic``
plain x86-64 without FMA, ``x86-64-v3`` AVX2 with FMA), with the kernels as they are and with a copy of the package
whose kernels have ``_FASTMATH = False``, and prints:

* the CPU time of the fitness path (``score``) and of ``simulate()`` (through ``backtest``): 200 genomes x 20 assets x
  the last 2000 daily bars of the embedded S&P 500 sample, monthly and daily rebalancing, spot (5 bp) and perp (3x,
  a funding rate per bar, 4.5 bp); best of ``--repeats``, one Numba thread, this process's CPU time (steadier than the
  wall clock on a shared machine);
* the largest relative difference of every figure (the metrics of ``score``, the value matrices) from the native
  fast-math build, and how many of the 24 arrays are bit for bit the same.

The copy without fast-math compiles every kernel on its first run (a few minutes). Run:
``.venv/bin/python experiments/fastmath_isa.py [--repeats 15] [--targets native generic x86-64-v3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ("genetic_sizer/backtest/kernels/orders.py", "genetic_sizer/backtest/kernels/perp.py")  # spot imports
# its _FASTMATH from orders; the lane kernel (kernels/lanes.py) has none

CHILD = r"""
import json, sys, time
import numpy as np
import genetic_sizer
from genetic_sizer.backtest.simulate import backtest, score
from genetic_sizer.data.loaders import load_default

out_path, repeats = sys.argv[1], int(sys.argv[2])
p = load_default()
p = p.bars(p.n_bars - 2000, p.n_bars)
rng = np.random.default_rng(0)
w = rng.dirichlet(np.full(p.n_assets, 0.7), size=200)
ls = rng.normal(size=w.shape)
ls /= np.abs(ls).sum(axis=1, keepdims=True)
funding = rng.normal(1e-5, 1e-5, p.close.shape)
perp = dict(fees=0.00045, market="perp", leverage=3, funding=funding, max_leverage=10)
figures, cases = {}, {}
for reb in ("M", "D"):
    for k, v in score(p, w, rebalance=reb, fees=0.0005).items():
        figures[f"spot {reb} {k}"] = np.asarray(v, dtype=np.float64)
    figures[f"spot {reb} value"] = backtest(p, w, rebalance=reb, fees=0.0005).value
    figures[f"perp {reb} value"] = backtest(p, ls, rebalance=reb, **perp).value
    cases[f"score spot {reb}"] = lambda reb=reb: score(p, w, rebalance=reb, fees=0.0005)
    cases[f"simulate spot {reb}"] = lambda reb=reb: backtest(p, w, rebalance=reb, fees=0.0005)
    cases[f"score perp {reb}"] = lambda reb=reb: score(p, ls, rebalance=reb, **perp)
ms = {}
for name, f in cases.items():
    f()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        f()
        best = min(best, time.process_time() - t0)
    ms[name] = 1000 * best
np.savez(out_path, **figures)
print(json.dumps({"package": genetic_sizer.__file__, "ms": ms}))
"""


def without_fastmath(dest: Path) -> Path:
    """A copy of the package whose kernels are compiled without fast-math (its own Numba cache)."""
    shutil.copytree(ROOT / "genetic_sizer", dest / "genetic_sizer", ignore=shutil.ignore_patterns("__pycache__"))
    for rel in KERNELS:
        path = dest / rel
        text, n = re.subn(r"_FASTMATH = \{[^}]*\}", "_FASTMATH = False", path.read_text(), count=1)
        if n != 1:
            raise SystemExit(f"{rel}: no `_FASTMATH = {{...}}` to replace")
        path.write_text(text)
    return dest


def run(package_root: Path, target: str, out: Path, repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU")}
    env.update(NUMBA_NUM_THREADS="1", PYTHONPATH=str(package_root))
    if target != "native":
        env["NUMBA_CPU_NAME"] = target
    res = subprocess.run(
        [sys.executable, "-c", CHILD, str(out), str(repeats)], env=env, cwd=package_root, capture_output=True, text=True
    )
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--targets", nargs="+", default=["native", "generic", "x86-64-v3"])
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gs-fastmath-") as tmp:
        tmp = Path(tmp)
        builds = {"fast-math": ROOT, "no fast-math": without_fastmath(tmp / "nofm")}
        rows, figures = [], {}
        for build, root in builds.items():
            for target in args.targets:
                path = tmp / f"{build.replace(' ', '_')}-{target}.npz"
                res = run(root, target, path, args.repeats)
                with np.load(path) as z:
                    figures[build, target] = {k: z[k] for k in z.files}
                rows.append((build, target, res["ms"]))
                print(f"measured {build}, {target}", flush=True)
    base = figures["fast-math", args.targets[0]]
    names = list(rows[0][2])
    print(
        f"\nCPU ms, best of {args.repeats}, one thread (200 genomes x 20 assets x 2000 bars). Arrays bit for bit the "
        f"same (of {len(base)}) and the largest relative difference: against fast-math {args.targets[0]}, and against "
        f"the same build on {args.targets[0]}"
    )
    head = "".join(f"{n:>18}" for n in names)
    print(f"{'build':<14}{'target':<11}{head}{'same':>6}{'max rel':>9}{'same':>6}{'max rel':>9}")

    def compare(a, b):
        same = sum(np.array_equal(a[k], b[k]) for k in a)
        worst = max(float(np.max(np.abs(a[k] - b[k]) / np.maximum(np.abs(a[k]), 1e-300))) for k in a)
        return f"{same:>6}{worst:>9.1e}"

    for build, target, ms in rows:
        fig = figures[build, target]
        times = "".join(f"{ms[n]:>18.2f}" for n in names)
        print(f"{build:<14}{target:<11}{times}{compare(base, fig)}{compare(figures[build, args.targets[0]], fig)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

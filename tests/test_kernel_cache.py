"""Where the compiled kernels are cached (genetic_sizer.backtest.kernels): one directory named by a hash of every kernel
source, so that code compiled from other sources (a stale kernel) can never be loaded, and the warm-up `make install`
runs (genetic_sizer.cli.warm) leaves nothing for a first run to compile."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numba
import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

from genetic_sizer.backtest import kernels
from genetic_sizer.backtest.kernels import CACHE_DIR, kernel_sources, source_hash

ROOT = Path(__file__).resolve().parents[1]


def _dispatchers(module):
    return [v for v in vars(module).values() if isinstance(v, CPUDispatcher) and v._cache is not None]


def test_every_kernel_caches_in_the_directory_named_by_the_hash_of_the_sources():
    import importlib
    import pkgutil

    from genetic_sizer.evolution import vary_nb

    assert CACHE_DIR.name == f"numba-{source_hash()}" and len(source_hash()) == 16
    modules = [
        importlib.import_module(f"genetic_sizer.backtest.kernels.{m.name}")
        for m in pkgutil.iter_modules(kernels.__path__)
    ]
    names = {m.__name__ for m in modules}
    assert {"genetic_sizer.backtest.kernels.spot", "genetic_sizer.backtest.kernels.perp"} <= names
    seen = 0
    for module in [*modules, vary_nb]:
        for d in _dispatchers(module):
            path = Path(d._cache._cache_path)
            assert path.parent == CACHE_DIR, (module.__name__, d.__name__, path)
            seen += 1
    assert seen >= 40
    # every file of the package and vary_nb is hashed; Numba's own setting is left as the environment has it
    assert {p.name for p in kernel_sources()} >= {"spot.py", "perp.py", "__init__.py", "vary_nb.py"}
    assert numba.config.CACHE_DIR == os.environ.get("NUMBA_CACHE_DIR", "")


def test_an_edit_of_any_kernel_source_names_another_cache_directory(tmp_path):
    """A helper edited in one file (the perp kernels inline the spot scorer's) changes the directory of every kernel:
    Numba's per-file stamps alone would load the perp kernel compiled against the old helper."""
    copies = []
    for p in kernel_sources():
        dst = tmp_path / p.parent.name / p.name
        dst.parent.mkdir(exist_ok=True)
        shutil.copyfile(p, dst)
        copies.append(dst)
    base = source_hash(copies)
    assert base == source_hash()  # the content, not the place, names it
    hashes = {base}
    for p in copies:
        text = p.read_bytes()
        p.write_bytes(text + b"\n# edited\n")
        hashes.add(source_hash(copies))
        p.write_bytes(text)
    assert len(hashes) == len(copies) + 1
    assert source_hash(copies) == base


def test_the_cache_directory_follows_the_environment(tmp_path):
    code = (
        "from genetic_sizer.backtest.kernels import CACHE_DIR; import numba; print(CACHE_DIR); "
        "print(repr(numba.config.CACHE_DIR))"
    )
    skip = ("NUMBA_CACHE_DIR", "GENETIC_SIZER_CACHE_DIR", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    for extra, root, suffix in (
        ({"GENETIC_SIZER_CACHE_DIR": str(tmp_path / "a")}, tmp_path / "a", ""),
        ({"NUMBA_CACHE_DIR": str(tmp_path / "b")}, tmp_path / "b", ""),
        ({"XDG_CACHE_HOME": str(tmp_path / "c")}, tmp_path / "c" / "genetic_sizer", ""),
        # another compile target: a directory of its own beside this CPU's (warm-ups of both can run side by side)
        ({"GENETIC_SIZER_CACHE_DIR": str(tmp_path / "a"), "NUMBA_CPU_NAME": "generic"}, tmp_path / "a", "-generic"),
        ({"GENETIC_SIZER_CACHE_DIR": str(tmp_path / "a"), "NUMBA_CPU_NAME": "host"}, tmp_path / "a", ""),
    ):
        out = subprocess.run(
            [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True, cwd=ROOT
        )
        assert out.returncode == 0, out.stderr[-2000:]
        path, setting = out.stdout.splitlines()
        assert Path(path) == root / f"numba-{source_hash()}{suffix}"
        assert setting == repr(extra.get("NUMBA_CACHE_DIR", ""))  # other libraries' kernels keep Numba's setting
    # a root that cannot be written: the same name under the temporary directory, said (never the in-tree cache)
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "GENETIC_SIZER_CACHE_DIR": str(blocked)},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    path = Path(out.stdout.splitlines()[0])
    assert path.name == f"numba-{source_hash()}" and path.parent.parent == Path(tempfile.gettempdir())
    assert f"the kernel cache directory {str(blocked / path.name)!r} cannot be written" in out.stderr


WARM_THEN_COUNT = """
import sys, tempfile
from numba.core.registry import CPUDispatcher
from genetic_sizer.cli.main import main
from genetic_sizer.cli.warm import _SMALL

args = [a for s in _SMALL for a in ("--set", s)]
args += ["--set", "evolution.generations=3", "--set", "evolution.population=10"]
with tempfile.TemporaryDirectory() as tmp:
    assert main(["evolve", "--out", tmp + "/run", "--no-plots", *args]) == 0
import gc
misses = {}
for obj in gc.get_objects():
    if isinstance(obj, CPUDispatcher) and obj._cache is not None and obj.__module__.startswith("genetic_sizer"):
        n = sum(obj.stats.cache_misses.values())
        if n:
            misses[obj.__module__ + "." + obj.__name__] = n
print("MISSES", misses)
"""


@pytest.mark.slow
def test_after_the_warm_up_a_first_evolve_compiles_nothing():
    """What `make install` runs (genetic_sizer.cli.warm) covers every kernel and every type signature of an evolution: a
    fresh process then loads each from the cache, none is compiled."""
    from genetic_sizer.cli.warm import warm

    warm()
    out = subprocess.run(
        [sys.executable, "-c", WARM_THEN_COUNT], capture_output=True, text=True, cwd=ROOT, timeout=1200
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = [s for s in out.stdout.splitlines() if s.startswith("MISSES")][-1]
    assert line == "MISSES {}", line


def test_make_install_warms_the_cache_again_when_a_kernel_source_changes(tmp_path):
    """`make install` (and so `make evolve`, `make test`) runs the warm-up once the package is installed, and again
    after any kernel source or the warm-up itself changed (a dry run of make on a copy of the Makefile with the stamps
    in place)."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    shutil.copyfile(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copyfile(ROOT / name, tmp_path / name)
    for p in (*kernel_sources(), ROOT / "genetic_sizer" / "cli" / "warm.py"):
        dst = tmp_path / p.relative_to(ROOT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dst)
    python = venv / "bin" / "python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)

    def dry_run() -> str:
        done = subprocess.run(["make", "-n", "install"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    (venv / ".installed").touch()
    assert "-m genetic_sizer.cli.warm" in dry_run() and "pip install" not in dry_run()
    (venv / ".warmed").touch()
    assert dry_run().strip() == "" or "genetic_sizer.cli.warm" not in dry_run()
    stamp = venv / ".warmed"
    for changed in ("backtest/kernels/spot.py", "cli/warm.py"):  # a kernel, then the list of what is warmed
        newest = max(p.stat().st_mtime for p in tmp_path.rglob("*.py"))
        os.utime(stamp, (newest + 10, newest + 10))  # warmed after every source
        assert "genetic_sizer.cli.warm" not in dry_run()
        path = tmp_path / "genetic_sizer" / changed
        os.utime(path, (newest + 20, newest + 20))  # then this one changed
        assert "-m genetic_sizer.cli.warm" in dry_run(), changed


def test_openmp_threads_wait_passively_unless_the_user_says_otherwise():
    """Spinning OpenMP threads beside a busy process halve an evolution's evaluations per second (README, "Under
    load"): the kernels' package asks OpenMP for passive waiting before the first parallel call; a user's setting
    stays."""
    code = (
        "import os, numpy as np\n"
        "import genetic_sizer.backtest.kernels\n"
        "from genetic_sizer.backtest.simulate import simulate\n"
        "from tests.conftest import make_prices, random_weights\n"
        "simulate(make_prices(60, 3), random_weights(4, 3))\n"
        "import numba\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), numba.threading_layer())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for extra, want in (({}, "passive"), ({"OMP_WAIT_POLICY": "active"}, "active")):
        out = subprocess.run(
            [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True, cwd=ROOT, timeout=600
        )
        assert out.returncode == 0, out.stderr[-2000:]
        policy, layer = out.stdout.split()
        assert policy == want
        assert layer in ("omp", "tbb", "workqueue")


def test_the_warm_up_prunes_only_other_sources_caches_untouched_for_the_limit(tmp_path):
    """Old cache directories (another version's hash) are removed once nothing was written in them for the limit;
    the current one, recent ones and anything not named like a cache are kept."""
    from genetic_sizer.cli.warm import prune_caches

    now = 2_000_000_000.0
    day = 86400.0
    current = tmp_path / "numba-0123456789abcdef"

    def cache(name, age_days, inner_age_days=None):
        d = tmp_path / name
        (d / "sub").mkdir(parents=True)
        f = d / "sub" / "k.nbc"
        f.write_bytes(b"x")
        os.utime(f, (now - day * (inner_age_days if inner_age_days is not None else age_days),) * 2)
        os.utime(d / "sub", (now - day * age_days,) * 2)
        os.utime(d, (now - day * age_days,) * 2)
        return d

    cache(current.name, 400)
    old = cache("numba-aaaaaaaaaaaaaaaa", 31)
    recent = cache("numba-bbbbbbbbbbbbbbbb", 29)
    written_lately = cache("numba-cccccccccccccccc", 90, inner_age_days=1)  # an old directory, a fresh kernel in it
    other = cache("numba-not-a-hash", 400)
    mine = cache("results", 400)
    assert prune_caches(current, 30, now=now) == [old]
    assert not old.exists() and current.exists() and recent.exists() and written_lately.exists()
    assert other.exists() and mine.exists()
    assert prune_caches(current, 0, now=now) == [recent, written_lately]
    with pytest.raises(ValueError, match=r"older_than_days must be >= 0, got -1"):
        prune_caches(current, -1)
    assert prune_caches(tmp_path / "missing" / "numba-0123456789abcdef", now=now) == []
    # the directories of other compile targets (NUMBA_CPU_NAME): kept with the current hash, pruned with another
    mine_generic = cache(current.name + "-generic", 400)
    old_generic = cache("numba-dddddddddddddddd-x86-64-v3", 31)
    assert prune_caches(current, 30, now=now) == [old_generic]
    assert mine_generic.exists() and not old_generic.exists()


def test_the_compile_target_names_its_own_cache_directory():
    from genetic_sizer.backtest.kernels import target_suffix

    assert target_suffix({}) == "" and target_suffix({"NUMBA_CPU_NAME": "host"}) == ""
    assert target_suffix({"NUMBA_CPU_NAME": "generic"}) == "-generic"
    assert target_suffix({"NUMBA_CPU_NAME": "x86-64-v3"}) == "-x86-64-v3"
    assert target_suffix({"NUMBA_CPU_NAME": "Skylake-AVX512"}) == "-skylake-avx512"
    assert target_suffix({"NUMBA_CPU_NAME": "a/b c"}) == "-a_b_c"  # never a path
    with_features = target_suffix({"NUMBA_CPU_NAME": "generic", "NUMBA_CPU_FEATURES": "+sse2,+avx"})
    assert re.fullmatch(r"-generic-[0-9a-f]{8}", with_features)
    assert with_features != target_suffix({"NUMBA_CPU_NAME": "generic", "NUMBA_CPU_FEATURES": "+sse2"})
    assert re.fullmatch(r"-host-[0-9a-f]{8}", target_suffix({"NUMBA_CPU_FEATURES": "+sse2"}))


@pytest.mark.parametrize("name", ["", "a/b", "x y"])
def test_the_warm_up_refuses_a_target_that_is_not_a_name(name, capsys):
    from genetic_sizer.cli.warm import main as warm_main

    with pytest.raises(SystemExit) as e:
        warm_main(["--cpu", name])
    assert e.value.code == 2
    assert f"--cpu must name a compile target such as generic or x86-64-v3, got {name!r}" in capsys.readouterr().err


def test_a_failed_warm_up_for_another_target_is_reported_with_its_output(monkeypatch, capsys):
    """The other target's warm-up runs in a child process; when it fails, the warm-up fails and shows its end."""
    import genetic_sizer.cli.warm as warm_cli

    started = []

    def fake_start(name):
        started.append(name)
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; print('compiling'); sys.exit('boom: no such target')"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return name, proc

    monkeypatch.setattr(warm_cli, "_start_target", fake_start)
    monkeypatch.setattr(warm_cli, "warm", lambda reference: {"api": 0.0, "cache_dir": "/nowhere/numba-x"})
    assert warm_cli.main(["--cpu", "generic", "--cpu", "generic"]) == 1
    assert started == ["generic"]  # once per target
    err = capsys.readouterr().err
    assert "warm-up for NUMBA_CPU_NAME=generic failed (exit code 1):" in err
    assert "compiling" in err and "boom: no such target" in err


def test_a_pickled_evaluator_runs_the_kernels_its_original_ran():
    """Prices come back from pickle with read-only arrays, as validated: a worker's (pickled) copy of an evaluator
    calls the kernels with the argument types its original used, so it loads them from the warmed cache instead of
    compiling them again (a writable close is another type to Numba: about 80 s for the spot scorer)."""
    import pickle

    from genetic_sizer.backtest.kernels import lanes, spot
    from genetic_sizer.evolution.evaluator import Evaluator
    from tests.conftest import make_prices, random_weights

    p = make_prices(200, 4, seed=2)
    p = p.with_fields({"high": p.close * 1.01, "low": p.close * 0.99})
    w = random_weights(5, 4, seed=1)
    a = Evaluator(p, ("sharpe",))
    a(w)
    kernels = (spot.score_population_nb, lanes.simulate_block_nb)
    before = [len(k.signatures) for k in kernels]
    b = pickle.loads(pickle.dumps(a))
    for arr in (b.prices.close, *b.prices.fields.values()):
        assert not arr.flags.writeable
    np.testing.assert_array_equal(b.prices.close, p.close)
    np.testing.assert_array_equal(a(w), b(w))
    assert [len(k.signatures) for k in kernels] == before  # no new signature: nothing compiled for the copy
    q = pickle.loads(pickle.dumps(p))
    assert q.symbols == p.symbols and q.index.equals(p.index) and q.periods_per_year == p.periods_per_year

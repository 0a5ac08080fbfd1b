"""The compiled (Numba) kernels, and where their compiled code is cached.

Numba's on-disk cache (``cache=True``) is keyed per source file by its modification time and size. Two consequences:
a cache cannot travel in git (a clone's files have new times), and a kernel that calls a helper of another file (the
perp kernels call the spot scorer's) can be loaded from the cache after only that helper changed: a stale kernel.

Here every kernel module of this package and :mod:`genetic_sizer.evolution.vary_nb` caches into one directory named by
a hash of all their sources and of Numba's version (:data:`CACHE_DIR`, ``numba-<16 hex digits>`` under
:func:`cache_root`): an edit of any kernel source names another directory, so code compiled from other sources is never
loaded. The package imports its kernel modules at once, inside :func:`kernel_cache`, so that the cache directory is
theirs whatever imports them; ``vary_nb`` decorates with :func:`njit`. Numba's own setting (``numba.config.CACHE_DIR``,
what other libraries' kernels, vectorbt's, use) is restored afterwards. ``make install`` fills the directory
(:mod:`genetic_sizer.runs.warm`), so a first run does not compile.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import pkgutil
from pathlib import Path

import numba

__all__ = [
    "CACHE_DIR",
    "CACHE_ENV",
    "SERIAL_BELOW",
    "SERIAL_ENV",
    "TARGET_ENV",
    "cache_root",
    "kernel_cache",
    "kernel_sources",
    "njit",
    "source_hash",
    "target_suffix",
    "threads_for",
]

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
"""Numba's parallel kernels run on OpenMP threads (its ``omp`` threading layer, the one this install has). By default
OpenMP threads spin after each parallel region; beside another CPU-bound process the spinning threads take the CPU the
working ones need and every small region waits on them (``make evolve`` beside one busy process, on this 2-core
machine: 13,100 evaluations/s spinning, 28,400 passive, 29,100 on one thread; README "Under load"). Set before OpenMP
starts (at the first parallel call); an ``OMP_WAIT_POLICY`` of the user's is kept."""

SERIAL_ENV = "GENETIC_SIZER_SERIAL_BELOW"
"""The environment variable that sets :data:`SERIAL_BELOW` (an integer; 0: never serial)."""


def _serial_below(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        from genetic_sizer.errors import ConfigError

        raise ConfigError(f"{SERIAL_ENV} must be a whole number >= 0 (genomes x assets x bars), got {text!r}")
    return value


SERIAL_BELOW = _serial_below(os.environ.get(SERIAL_ENV, "1000000"))
"""Work (genomes x assets x bars) below which a population kernel runs on one thread (:func:`threads_for`). A parallel
region costs little on a quiet machine, but beside other CPU-bound processes each one waits until every thread has
been scheduled again: several milliseconds. Below 1,000,000 (25 genomes of 20 assets x 2,000 bars: about 0.5 ms on one
thread here) the second thread saves at most a fraction of a millisecond when the machine is quiet, and costs several
when it is not; measured in ``experiments/bench_serial.py``. Which way a kernel runs never changes a result: every
genome is computed by the same code on one thread either way."""

CACHE_ENV = "GENETIC_SIZER_CACHE_DIR"
"""The environment variable that moves the cache (its parent directory); else ``NUMBA_CACHE_DIR``, else the user's
cache directory (``$XDG_CACHE_HOME`` or ``~/.cache``) + ``/genetic_sizer``."""

_HERE = Path(__file__).resolve().parent


def kernel_sources() -> tuple[Path, ...]:
    """The source files whose compiled code shares the cache: this package's modules and ``evolution/vary_nb.py``."""
    return (*sorted(_HERE.glob("*.py")), _HERE.parents[1] / "evolution" / "vary_nb.py")


def source_hash(paths=None) -> str:
    """16 hex digits of the SHA-256 of Numba's version and of every kernel source (name and bytes, in order)."""
    h = hashlib.sha256(f"numba {numba.__version__}\0".encode())
    for path in kernel_sources() if paths is None else paths:
        path = Path(path)
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cache_root() -> Path:
    """The directory the kernel caches live in, one subdirectory per :func:`source_hash` (see :data:`CACHE_ENV`)."""
    base = os.environ.get(CACHE_ENV) or os.environ.get("NUMBA_CACHE_DIR")
    if base:
        return Path(base).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "genetic_sizer"


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


TARGET_ENV = "NUMBA_CPU_NAME"
"""Numba's setting of the CPU to compile for (default: this machine's); see :func:`target_suffix`."""


def target_suffix(environ=None) -> str:
    """``""`` for code compiled for this machine's CPU; ``-<name>`` (e.g. ``-generic``, ``-x86-64-v3``) when
    ``NUMBA_CPU_NAME`` names another compile target (with ``-<8 hex digits>`` of ``NUMBA_CPU_FEATURES`` if set).

    Numba keeps the code of several targets apart in one index file per function, but a process saving one target's
    entry rewrites the whole index: two warm-ups of different targets side by side (``python -m genetic_sizer.cli.warm
    --cpu generic``) would drop each other's entries. Each target therefore has its own directory."""
    env = os.environ if environ is None else environ
    name = env.get(TARGET_ENV, "").strip().lower()
    features = env.get("NUMBA_CPU_FEATURES", "").strip()
    if name in ("", "host") and not features:
        return ""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in (name or "host"))
    if features:
        safe += "-" + hashlib.sha256(features.encode()).hexdigest()[:8]
    return f"-{safe}"


CACHE_DIR = cache_root() / f"numba-{source_hash()}{target_suffix()}"
"""Where the kernels of these sources keep their compiled code (for this compile target: :func:`target_suffix`): a
directory this process can write (else Numba would fall back, silently, to the per-file cache beside the sources), or
the same name under the system's temporary directory, with a warning."""
if not _writable(CACHE_DIR):
    import tempfile
    import warnings

    _fallback = (
        Path(tempfile.gettempdir()) / f"genetic_sizer-{getattr(os, 'getuid', lambda: 'user')()}" / CACHE_DIR.name
    )
    warnings.warn(
        f"the kernel cache directory {str(CACHE_DIR)!r} cannot be written: caching in {str(_fallback)!r} instead",
        RuntimeWarning,
        stacklevel=2,
    )
    CACHE_DIR = _fallback


@contextlib.contextmanager
def kernel_cache():
    """Numba functions decorated inside this block cache their compiled code in :data:`CACHE_DIR`."""
    saved = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(CACHE_DIR)
    try:
        yield CACHE_DIR
    finally:
        numba.config.CACHE_DIR = saved


@contextlib.contextmanager
def threads_for(work: int):
    """Parallel kernels called inside this block run on one thread when ``work`` (genomes x assets x bars) is below
    :data:`SERIAL_BELOW`, else on this thread's Numba threads (unchanged); the setting is restored afterwards. Yields
    the number of threads."""
    threads = numba.get_num_threads()
    if threads == 1 or work >= SERIAL_BELOW:
        yield threads
        return
    numba.set_num_threads(1)
    try:
        yield 1
    finally:
        numba.set_num_threads(threads)


def njit(*args, **kwargs):
    """``numba.njit`` whose cache (``cache=True``) is :data:`CACHE_DIR`: ``@njit``, ``@njit(cache=True, ...)``."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        with kernel_cache():
            return numba.njit(args[0])
    decorate = numba.njit(*args, **kwargs)

    def wrap(fn):
        with kernel_cache():
            return decorate(fn)

    return wrap


for _module in pkgutil.iter_modules([str(_HERE)]):  # every kernel module of the package, decorated in the directory
    with kernel_cache():
        importlib.import_module(f"{__name__}.{_module.name}")

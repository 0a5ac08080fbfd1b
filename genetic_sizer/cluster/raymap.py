"""How batches of genomes are evaluated: the map functions the evolution loop gets injected.

A map function takes the evaluator and a list of batches (each an array of genomes) and returns the list of
fitness arrays in the same order. The evolution evaluates in its own process without one
(:func:`genetic_sizer.evolution.loop.serial_map`); :class:`RayMap` spreads the
batches over Ray actors. This is the only module that imports Ray.

Ray, the way it is used here:

* a local instance (``address=None``) is started with ``ray.init(address="local")`` (never silently joining
  a cluster left over in ``/tmp/ray``) and shut down at the end; an explicit address (or ``RAY_ADDRESS``)
  joins that cluster, which is left running. An address that does not answer is a :class:`ParallelError`
  naming it, raised before any work is done;
* the evaluator, with the price matrix, goes into the object store once per run (``ray.put``); each actor
  receives it once, when it starts;
* long-lived actors (one per worker, ``num_cpus`` each = CPUs / workers, and as many Numba threads) evaluate
  the batches, so Numba loads its cached kernels once per worker process, not per batch;
* results are gathered in input order, so a seeded run gives bit-for-bit the serial result;
* an actor whose process dies (killed, out of memory) is restarted by Ray and its unfinished batches are
  retried (``max_restarts`` / ``max_task_retries``): a lost worker costs a retry, not the run.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from genetic_sizer.errors import ParallelError

__all__ = [
    "MapFunction",
    "RayMap",
    "check_reachable",
    "close_map",
    "make_map",
    "run_tasks",
]

MapFunction = Callable[[Callable[[np.ndarray], np.ndarray], Sequence[np.ndarray]], list]
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Set to 0 before Ray is imported, every Ray process of a local instance binds 127.0.0.1 only."""
MAX_RESTARTS = 4
"""How often Ray may restart a dead evaluation actor (and retry its batches) in one run."""
ACTOR_START_TIMEOUT = 120.0
"""Seconds to wait for every evaluation actor to start before giving up with a ParallelError."""


def _import_ray(local: bool):
    if local and "ray" not in sys.modules:
        os.environ.setdefault(LOOPBACK_ENV, "0")
    import ray

    return ray


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Raise :class:`ParallelError` unless ``host:port`` (optionally ``ray://host:port``) accepts connections."""
    if address == "auto":
        return
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ParallelError(f"parallel.address must be host:port (or ray://host:port), got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ParallelError(f"cannot reach the Ray cluster at {address!r}: {exc.strerror or exc}") from None


class _Worker:
    """The body of an evaluation actor: holds the evaluator, evaluates batches."""

    def __init__(self, evaluator, numba_threads: int):
        import numba

        numba.set_num_threads(max(1, min(numba_threads, numba.config.NUMBA_NUM_THREADS)))
        self.evaluator = evaluator
        self.batches = 0

    def evaluate(self, batch):
        self.batches += 1
        return self.evaluator(batch)

    def info(self) -> dict:
        import numba

        return {"pid": os.getpid(), "batches": self.batches, "numba_threads": numba.get_num_threads()}

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()


class RayMap:
    """A map function over Ray actors. Use as a context manager (or call :meth:`close`).

    Parameters
    ----------
    address : str, optional
        An existing cluster (``host:port``, ``ray://host:port`` or ``auto``); default ``RAY_ADDRESS`` if set,
        else a fresh local instance.
    num_workers : int, optional
        Evaluation actors. Default: the local CPUs, or the cluster's CPUs.
    num_cpus : int, optional
        CPUs of a local instance (default: all of this machine's).
    """

    def __init__(self, address: str | None = None, num_workers: int | None = None, num_cpus: int | None = None):
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.requested_workers = num_workers
        self.num_cpus = num_cpus
        self.started_local = False
        self.startup_seconds = 0.0
        self._ray = None
        self._actors: list = []
        self._evaluator = None
        self._evaluator_ref = None
        self._cpus_per_worker = 1
        self.num_workers = num_workers or 1

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> RayMap:
        if self._ray is not None:
            return self
        t0 = time.perf_counter()
        local = self.address is None
        if not local:
            check_reachable(self.address)
        ray = _import_ray(local)
        if ray.is_initialized():
            raise ParallelError("Ray is already initialized in this process; RayMap starts and stops its own")
        if local:
            cpus = self.num_cpus or os.cpu_count() or 1
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, configure_logging=False)
            self.started_local = True
        else:
            try:
                ray.init(address=self.address, configure_logging=False)
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, TimeoutError...
                raise ParallelError(f"cannot join the Ray cluster at {self.address!r}: {exc}") from None
        self._ray = ray
        total = int(ray.cluster_resources().get("CPU", 1))
        if self.requested_workers and self.requested_workers > total:
            where = f"the Ray cluster at {self.address!r}" if self.address else "the local Ray instance"
            self.close()
            raise ParallelError(
                f"parallel.num_workers is {self.requested_workers} but {where} has {total} CPU(s); every "
                f"evaluation worker needs one, so {self.requested_workers - total} would wait forever. Use "
                f"num_workers <= {total}, or leave it unset for one worker per CPU"
            )
        self.num_workers = self.requested_workers or max(1, total)
        self._cpus_per_worker = max(1, total // self.num_workers)
        self.startup_seconds = time.perf_counter() - t0
        return self

    def close(self) -> None:
        """Stop the actors; shut down the local instance (a joined cluster keeps running)."""
        if self._ray is None:
            return
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        self._evaluator = self._evaluator_ref = None
        self._ray.shutdown()
        self._ray = None

    def __enter__(self) -> RayMap:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- evaluation --------------------------------------------------------------------------
    def _ensure_actors(self, evaluator) -> None:
        if self._evaluator is evaluator and self._actors:
            return
        ray = self._ray
        for actor in self._actors:
            ray.kill(actor)
        # once per run: every actor reads the same object; the map holds the reference for its lifetime,
        # because a restarted actor (after its process died) gets its constructor argument from the store again
        ref = self._evaluator_ref = ray.put(evaluator)
        remote = ray.remote(num_cpus=self._cpus_per_worker, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS)(
            _Worker
        )
        self._actors = [remote.remote(ref, self._cpus_per_worker) for _ in range(self.num_workers)]
        self._evaluator = evaluator
        # wait until every actor is up; on a cluster whose CPUs are taken by other work they may never be
        pending = [a.info.remote() for a in self._actors]
        ready, _ = ray.wait(pending, num_returns=len(pending), timeout=ACTOR_START_TIMEOUT)
        if len(ready) < len(pending):
            raise ParallelError(
                f"only {len(ready)} of {len(pending)} evaluation workers started within {ACTOR_START_TIMEOUT:g} s "
                f"(each needs {self._cpus_per_worker} CPU(s) free on the cluster; lower parallel.num_workers)"
            )
        ray.get(ready)

    def __call__(self, fn, batches):
        if self._ray is None:
            self.start()
        self._ensure_actors(fn)
        refs = [self._actors[i % len(self._actors)].evaluate.remote(b) for i, b in enumerate(batches)]
        try:
            return self._ray.get(refs)
        except self._ray.exceptions.RayActorError as exc:
            raise ParallelError(f"a Ray worker died more than {MAX_RESTARTS} times: {exc}") from None

    def worker_info(self) -> list[dict]:
        """pid, batches evaluated and Numba threads of every actor (for tests and diagnostics)."""
        return self._ray.get([a.info.remote() for a in self._actors])

    def worker_pids(self) -> list[int]:
        return [i["pid"] for i in self.worker_info()]


def _task(fn, shared, item):
    """The body of a Ray task: one CPU, so one Numba thread."""
    import numba

    numba.set_num_threads(1)
    return fn(shared, item)


def run_tasks(fn, shared, items, *, address: str | None = None, num_cpus: int | None = None, on_result=None) -> list:
    """``[fn(shared, item) for item in items]``, each call a Ray task (one CPU, one Numba thread).

    ``shared`` (e.g. the configuration and the price matrix) goes into the object store once. Tasks run as CPUs
    free up, on a local instance or on the cluster at ``address`` (as :class:`RayMap`); a task whose worker
    dies is retried. ``on_result(i, result)`` is called as each finishes (in completion order: progress, saving
    a finished fold); the returned list is in input order. ``fn`` must be importable by the workers (a module
    level function of this package).
    """
    items = list(items)
    ray_map = RayMap(address=address, num_cpus=num_cpus).start()
    try:
        ray = ray_map._ray
        ref = ray.put(shared)
        remote = ray.remote(num_cpus=1, max_retries=MAX_RESTARTS)(_task)
        pending = {remote.remote(fn, ref, item): i for i, item in enumerate(items)}
        results: list = [None] * len(items)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for r in done:
                i = pending.pop(r)
                try:
                    results[i] = ray.get(r)
                except ray.exceptions.RayTaskError as exc:  # the task's own exception, raised again here
                    raise exc.as_instanceof_cause() from None
                if on_result is not None:
                    on_result(i, results[i])
        return results
    finally:
        ray_map.close()


def make_map(parallel_config):
    """The map function a run's ``parallel`` section asks for (a :class:`RayMap` is started lazily)."""
    if parallel_config.backend == "serial":
        return None  # no map: the evolution evaluates in its own process (genetic_sizer.evolution.loop.serial_map)
    if parallel_config.backend == "ray":
        return RayMap(parallel_config.address, parallel_config.num_workers)
    raise ParallelError(f"unknown parallel backend {parallel_config.backend!r}")  # pragma: no cover


def close_map(map_fn) -> None:
    """Release what a map function holds (a RayMap's actors and local instance); no-op for None (serial)."""
    close = getattr(map_fn, "close", None)
    if close is not None:
        close()

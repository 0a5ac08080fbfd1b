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
* long-lived actors (one per worker, ``num_cpus`` each = CPUs / workers, capped at the largest node's CPUs:
  :func:`cpus_per_worker`) evaluate the batches, each on exactly as many Numba threads as the CPUs it reserved
  (set in the actor's process, and again in the thread running each batch, since Numba's setting is per thread), so
  workers sharing a node never oversubscribe its cores; Numba loads its cached kernels once per worker process;
* results are gathered in input order, so a seeded run gives bit-for-bit the serial result;
* an actor whose process dies (killed, out of memory) is restarted by Ray and its unfinished batches are
  retried (``max_restarts`` / ``max_task_retries``): a lost worker costs a retry, not the run.
"""

from __future__ import annotations

import io
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
    "cpus_per_worker",
    "make_map",
    "run_tasks",
]

MapFunction = Callable[[Callable[[np.ndarray], np.ndarray], Sequence[np.ndarray]], list]
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Set to 0 before Ray is imported, every Ray process of a local instance binds 127.0.0.1 only."""
MAX_RESTARTS = 4
"""How often Ray may restart a dead evaluation actor (and retry its batches) in one run."""
ACTOR_START_TIMEOUT = 120.0
DIRECT_CALL_BYTES = 8 * 1024 * 1024
"""A local instance passes arguments and results up to this size inside the call (Ray's default: 100 kB) instead of
through its shared-memory store: a batch of 512 genomes x 50 assets (200 kB) then reaches its actor without a store
round trip, which halved Ray's overhead per generation on 2 CPUs (``experiments/bench_ray.py``: 3.6 ms against
6.4-8.9 ms, 1,024 x 50 x 5,000). ``RAY_max_direct_call_object_size`` set by the user wins; a cluster keeps its own."""
DIRECT_CALL_ENV = "RAY_max_direct_call_object_size"
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

        # as many Numba threads as the CPUs Ray reserved for this actor (its num_cpus): no more (workers sharing a
        # node would oversubscribe its cores), no fewer (a worker holding 4 CPUs would leave 3 idle)
        numba.set_num_threads(max(1, min(numba_threads, numba.config.NUMBA_NUM_THREADS)))
        self.cpus = numba_threads
        self.evaluator = _unpack(evaluator)  # its arrays as writable or read-only as in the driver: see _pack
        self.batches = 0
        self.busy = 0.0  # seconds spent inside the evaluator (the rest of a generation's wall time is overhead)
        self.cpu = 0.0  # CPU seconds of the evaluating thread in there (not of other Numba threads; no waits)

    def evaluate(self, batch):
        import numba

        numba.set_num_threads(max(1, min(self.cpus, numba.config.NUMBA_NUM_THREADS)))  # per thread: Ray's may differ
        t0, c0 = time.perf_counter(), time.thread_time()
        self.batches += 1
        if isinstance(batch, np.ndarray) and not batch.flags.writeable:  # a view of shared memory: see _pack
            batch = batch.copy()
        out = self.evaluator(batch)
        self.busy += time.perf_counter() - t0
        self.cpu += time.thread_time() - c0
        return out

    def info(self) -> dict:
        import numba

        return {
            "pid": os.getpid(),
            "batches": self.batches,
            "cpus": self.cpus,
            "numba_threads": numba.get_num_threads(),
            "busy_seconds": self.busy,
            "cpu_seconds": self.cpu,
        }

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
            extra = {}
            if DIRECT_CALL_ENV not in os.environ:  # batches go to the actors in the call, not via shared memory
                extra["_system_config"] = {"max_direct_call_object_size": DIRECT_CALL_BYTES}
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, configure_logging=False, **extra)
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
        self._cpus_per_worker = cpus_per_worker(total, self.num_workers, _node_cpus(ray))
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
        ref = self._evaluator_ref = ray.put(_pack(evaluator))
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

    @property
    def cpus_per_worker(self) -> int:
        """The CPUs each evaluation actor reserves (Ray's ``num_cpus``), and its Numba threads (after :meth:`start`)."""
        return self._cpus_per_worker

    def __call__(self, fn, batches, workers: int | None = None):
        """Evaluate ``batches`` (batch i on actor i modulo the actors; ``workers``: only the first ``workers`` of
        them, e.g. to time one worker against all in the same instance); results in input order."""
        if self._ray is None:
            self.start()
        self._ensure_actors(fn)
        actors = self._actors[: workers or len(self._actors)]
        refs = [actors[i % len(actors)].evaluate.remote(b) for i, b in enumerate(batches)]
        try:
            return self._ray.get(refs)
        except self._ray.exceptions.RayActorError as exc:
            raise ParallelError(f"a Ray worker died more than {MAX_RESTARTS} times: {exc}") from None

    def worker_info(self) -> list[dict]:
        """pid, batches evaluated and Numba threads of every actor (for tests and diagnostics)."""
        return self._ray.get([a.info.remote() for a in self._actors])

    def worker_pids(self) -> list[int]:
        return [i["pid"] for i in self.worker_info()]


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _pack(obj) -> bytes:
    """``obj`` pickled (by Ray's cloudpickle) so that :func:`_unpack` gives its arrays back writable or read-only as
    they are here.

    Numba compiles a kernel once per type of its arguments, and a read-only array is another type than a writable
    one. Objects Ray passes through its store come back with every array a read-only view of shared memory, which
    the kernel cache (filled by the warm-up in one process, where e.g. the risk-free rates are writable and
    :class:`~genetic_sizer.data.prices.Prices` read-only) does not hold: each worker compiled every kernel before its
    first batch (minutes). Unpickled from these bytes, an array is a private copy with the flag it had here.
    """
    import ray.cloudpickle as cloudpickle

    class Pickler(cloudpickle.CloudPickler):
        def reducer_override(self, o):
            if isinstance(o, np.ndarray) and not o.flags.writeable:
                return _read_only, (np.array(o),)  # a writable copy, pickled as usual, made read-only when loaded
            return super().reducer_override(o)

    buffer = io.BytesIO()
    Pickler(buffer, protocol=5).dump(obj)
    return buffer.getvalue()


def _unpack(data: bytes):
    import pickle

    return pickle.loads(data)


def _node_cpus(ray) -> list[int]:
    """The CPUs of every live node of the instance or cluster Ray is connected to."""
    return [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]


def cpus_per_worker(total: int, workers: int, node_cpus: Sequence[int] = ()) -> int:
    """Each evaluation actor's share of the CPUs: ``total // workers`` (at least 1), but no more than the largest
    node has (``node_cpus``), since an actor runs on one node: 1 worker on two 1-CPU nodes takes 1 CPU, not 2, which
    no node could give it."""
    share = max(1, total // max(1, workers))
    largest = max(node_cpus, default=0)
    return min(share, largest) if largest > 0 else share


def _task(fn, shared, item):
    """The body of a Ray task: one CPU, so one Numba thread."""
    import numba

    numba.set_num_threads(1)
    return fn(_unpack(shared), item)  # arrays as in the driver: the kernels the cache holds (see _pack)


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
        ref = ray.put(_pack(shared))
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

"""Ray evaluation: same result as serial on local Ray and on a two-node cluster, survives a dying worker,
fails fast on an unreachable address. Everything listens on 127.0.0.1 (conftest sets the loopback flag)."""

from __future__ import annotations

import os
import signal
import socket
import sys

import numpy as np
import pytest

from genetic_sizer.cli.main import main
from genetic_sizer.cluster.raymap import RayMap, check_reachable
from genetic_sizer.config import load_config
from genetic_sizer.data.loaders import load_from_config
from genetic_sizer.errors import ParallelError
from genetic_sizer.runs.evolve import evolve

SMALL = [
    "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY, MSFT, WMT]",
    "data.start=2020-01-01",
    "data.end=2022-12-31",
    "evolution.population=24",
    "evolution.generations=5",
    "evolution.hall_of_fame=5",
    "parallel.batch_size=4",
]


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    config = load_config(None, SMALL)
    prices = load_from_config(config.data)
    serial = evolve(config, prices, tmp_path_factory.mktemp("serial"))
    return config, prices, serial


def _same(a, b):
    np.testing.assert_array_equal(a.members, b.members)
    np.testing.assert_array_equal(a.members_fitness, b.members_fitness)
    np.testing.assert_array_equal(a.population, b.population)
    assert a.logbook == b.logbook


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DyingEvaluator:
    """Wraps an evaluator; the worker process running it kills itself (SIGKILL) in the middle of its third
    batch, once per run (a marker file survives the restart)."""

    def __init__(self, inner, marker):
        self.inner, self.marker, self.calls = inner, str(marker), 0

    def __call__(self, batch):
        self.calls += 1
        if self.calls == 3 and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner(batch)


class DyingMap:
    def __init__(self, ray_map, marker):
        self.ray_map, self.marker, self.wrapped = ray_map, marker, None

    @property
    def num_workers(self):
        return self.ray_map.num_workers

    def start(self):
        self.ray_map.start()

    def __call__(self, fn, batches):
        if self.wrapped is None or self.wrapped.inner is not fn:
            self.wrapped = DyingEvaluator(fn, self.marker)
        return self.ray_map(self.wrapped, batches)


@pytest.mark.ray
def test_local_ray_matches_serial_and_survives_a_killed_worker(problem, tmp_path):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    config, prices, serial = problem
    marker = tmp_path / "killed"
    ray_map = RayMap(num_workers=2, num_cpus=2)
    try:
        dying = DyingMap(ray_map, marker)
        result = evolve(config, prices, tmp_path / "ray", map_fn=dying)
        info = ray_map.worker_info()
    finally:
        ray_map.close()
    assert marker.exists()  # a worker really died mid-batch...
    _same(serial, result)  # ...and the run still ended bit-for-bit like the serial one
    assert len({i["pid"] for i in info}) == 2
    assert all(i["numba_threads"] == 1 for i in info)  # 2 CPUs / 2 workers: no oversubscription
    assert max(i["batches"] for i in info) > 3  # long-lived actors: one process evaluates many batches
    assert not ray.is_initialized()  # the local instance it started is shut down


@pytest.mark.ray
@pytest.mark.slow
def test_two_node_cluster_by_address_matches_serial(problem, tmp_path):
    from ray.cluster_utils import Cluster

    config, prices, serial = problem
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        assert cluster.address.startswith("127.0.0.1:")
        ray_map = RayMap(address=cluster.address)
        try:
            result = evolve(config, prices, tmp_path / "cluster", map_fn=ray_map)
            nodes = ray_map._ray.get([a.node.remote() for a in ray_map._actors])
        finally:
            ray_map.close()
        assert ray_map.num_workers == 2 and len(set(nodes)) == 2  # one actor on each node
        _same(serial, result)
        assert len(cluster.list_all_nodes()) == 2  # joining and leaving does not stop the cluster
    finally:
        cluster.shutdown()


def test_unreachable_cluster_fails_before_any_work(monkeypatch, tmp_path, capsys):
    port = _closed_port()
    with pytest.raises(ParallelError, match=rf"cannot reach the Ray cluster at '127.0.0.1:{port}'"):
        check_reachable(f"127.0.0.1:{port}", timeout=2)
    with pytest.raises(ParallelError, match="must be host:port"):
        check_reachable("nowhere")
    monkeypatch.setenv("RAY_ADDRESS", f"ray://127.0.0.1:{port}")
    with pytest.raises(ParallelError, match=rf"ray://127.0.0.1:{port}"):
        RayMap().start()
    monkeypatch.delenv("RAY_ADDRESS")
    sets = [arg for item in SMALL for arg in ("--set", item)]
    code = main(["evolve", "--out", str(tmp_path / "r"), *sets, "--ray-address", f"127.0.0.1:{port}"])
    assert code == 2
    assert f"cannot reach the Ray cluster at '127.0.0.1:{port}'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing created for a run that cannot start


@pytest.mark.ray
def test_more_workers_than_cpus_fails_before_the_run_instead_of_waiting_forever(problem, tmp_path):
    config, prices, _ = problem
    ray_map = RayMap(num_workers=3, num_cpus=2)
    with pytest.raises(ParallelError, match=r"num_workers is 3 but the local Ray instance has 2 CPU\(s\)"):
        evolve(config, prices, tmp_path / "r", map_fn=ray_map)
    import ray

    assert not ray.is_initialized()  # the instance it started is shut down again
    assert not (tmp_path / "r").exists()  # nothing was evaluated or written


def test_actors_that_cannot_start_are_an_error_not_a_hang(monkeypatch):
    """The wait for actors is bounded (a busy cluster): simulated with a fake ray module whose wait times out."""
    import genetic_sizer.cluster.raymap as P

    class FakeRef:
        pass

    class FakeActor:
        class info:
            @staticmethod
            def remote():
                return FakeRef()

    class FakeRay:
        waited = None

        @staticmethod
        def put(x):
            return x

        @staticmethod
        def remote(**kw):
            return lambda cls: type("R", (), {"remote": staticmethod(lambda *a: FakeActor())})

        @classmethod
        def wait(cls, refs, num_returns, timeout):
            cls.waited = timeout
            return refs[:1], refs[1:]

        @staticmethod
        def get(x):
            return x

        @staticmethod
        def kill(a):
            pass

    m = RayMap(num_workers=3)
    m._ray, m.num_workers = FakeRay, 3
    with pytest.raises(ParallelError, match=r"only 1 of 3 evaluation workers started within 120 s"):
        m._ensure_actors(lambda b: b)
    assert FakeRay.waited == P.ACTOR_START_TIMEOUT


def threads_in_batch(batch):
    """An evaluator reporting, per row, the Numba threads of the thread that evaluates the batch (in the actor)."""
    import numba

    return np.full((len(batch), 1), float(numba.get_num_threads()))


@pytest.mark.ray
@pytest.mark.parametrize(("workers", "cpus"), [(1, 2), (2, 2)])
def test_each_actor_runs_as_many_numba_threads_as_the_cpus_it_reserved(workers, cpus):
    """1 worker on 2 CPUs evaluates on 2 Numba threads (not 1: a CPU left idle); 2 workers on 2 CPUs on 1 each (not 2:
    oversubscribed cores); read inside the evaluation itself, where the kernels run."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray_map = RayMap(num_workers=workers, num_cpus=cpus)
    try:
        out = ray_map(threads_in_batch, [np.zeros((3, 2))] * (2 * workers))
        info = ray_map.worker_info()
    finally:
        ray_map.close()
    share = cpus // workers
    assert ray_map.cpus_per_worker == share
    assert [float(o[0, 0]) for o in out] == [float(share)] * (2 * workers)
    assert [(i["cpus"], i["numba_threads"], i["batches"]) for i in info] == [(share, share, 2)] * workers
    assert all(i["busy_seconds"] > 0 for i in info)


def test_an_actor_never_asks_for_more_cpus_than_one_node_has():
    from genetic_sizer.cluster.raymap import cpus_per_worker

    assert cpus_per_worker(4, 2) == 2 and cpus_per_worker(3, 2) == 1 and cpus_per_worker(2, 4) == 1
    assert cpus_per_worker(8, 1, [4, 4]) == 4  # one worker on two 4-CPU nodes: 4 threads on one node
    assert cpus_per_worker(2, 1, [1, 1]) == 1  # 2 CPUs would never be granted: no node has them
    assert cpus_per_worker(8, 2, [2, 6]) == 4 and cpus_per_worker(8, 2, []) == 4


class WritableProbe:
    """An evaluator holding arrays large enough to travel through Ray's shared-memory object store, one writable and
    one read-only (as :class:`Prices` keeps its closes); it reports their flags and the batch's where it runs."""

    def __init__(self):
        self.data = np.zeros(40_000)  # 320 kB: stored in shared memory, not inlined
        self.frozen = np.ones(40_000)
        self.frozen.setflags(write=False)

    def __call__(self, batch):
        flags = [self.data.flags.writeable, self.frozen.flags.writeable, batch.flags.writeable, self.frozen.sum()]
        return np.array([flags] * len(batch), dtype=np.float64)


@pytest.mark.ray
def test_actors_see_arrays_as_writable_or_read_only_as_the_driver_so_the_cached_kernels_fit():
    """Ray hands actors read-only views of its shared memory, and Numba compiles its kernels anew for every other
    combination of read-only arguments: minutes per worker that the kernel cache (filled in one process) does not
    cover. Workers get their arrays writable or read-only as they are in the driver, and writable batches."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray_map = RayMap(num_workers=1, num_cpus=1)
    try:
        out = ray_map(WritableProbe(), [np.zeros((1000, 50))])  # 400 kB: through shared memory too
    finally:
        ray_map.close()
    assert out[0].shape == (1000, 4) and (out[0] == [1.0, 0.0, 1.0, 40_000.0]).all()
    from genetic_sizer.cluster.raymap import run_tasks

    frozen = np.ones(40_000)
    frozen.setflags(write=False)
    flags = run_tasks(shared_flags, {"prices": np.zeros(40_000), "frozen": frozen}, [0, 1], num_cpus=1)
    assert flags == [(True, False)] * 2  # the shared data of Ray tasks (walk-forward folds) too


def shared_flags(shared, item):
    return bool(shared["prices"].flags.writeable), bool(shared["frozen"].flags.writeable)


def test_a_local_instance_passes_batches_inside_the_call(monkeypatch):
    """Batches of a few hundred kB reach the actors in the call (Ray's default limit is 100 kB, above which they go
    through the shared-memory store: half of Ray's overhead per generation on 2 CPUs); a user's setting wins."""
    import genetic_sizer.cluster.raymap as P

    calls = []

    class FakeRay:
        @staticmethod
        def is_initialized():
            return False

        @staticmethod
        def init(**kw):
            calls.append(kw)

        @staticmethod
        def cluster_resources():
            return {"CPU": 2.0}

        @staticmethod
        def nodes():
            return [{"Alive": True, "Resources": {"CPU": 2.0}}]

    monkeypatch.setattr(P, "_import_ray", lambda local: FakeRay)
    monkeypatch.delenv(P.DIRECT_CALL_ENV, raising=False)
    m = RayMap(num_workers=2, num_cpus=2).start()
    assert calls[-1]["_system_config"] == {"max_direct_call_object_size": 8 * 1024 * 1024}
    assert calls[-1]["address"] == "local" and m.cpus_per_worker == 1
    monkeypatch.setenv(P.DIRECT_CALL_ENV, "1000")
    RayMap(num_workers=1, num_cpus=2).start()
    assert "_system_config" not in calls[-1]


# ---- one local instance shared by the last tests, which compare results only ----------------------------------
@pytest.fixture(scope="module")
def local_pair():
    """A local instance with 2 workers on 2 CPUs, started on first use and stopped after the module's last test: the
    tests below only compare runs with their serial twins, so they share it (a Ray start costs about 5 s). Every test
    above starts and stops its own (a RayMap refuses a second local instance in its process): keep these last."""
    ray_map = RayMap(num_workers=2, num_cpus=2)
    try:
        yield ray_map
    finally:
        ray_map.close()


@pytest.mark.ray
def test_strategy_genes_evolve_on_ray_exactly_as_serially(local_pair, tmp_path):
    """Rows of weights and genes travel to the actors in batches; each genome is simulated with its own policy and
    drift band there: the run is bit-for-bit the serial one, with one objective and with NSGA-II."""
    genes = "evolution.genes={threshold: [0.0, 0.2], rebalance: [W, M, Q, once]}"
    configs = [load_config(None, [*SMALL, genes]), load_config(None, [*SMALL, genes, "objective=[sharpe, turnover]"])]
    prices = load_from_config(configs[0].data)
    for k, config in enumerate(configs):
        serial = evolve(config, prices, tmp_path / f"serial{k}")
        on_ray = evolve(config, prices, tmp_path / f"ray{k}", map_fn=local_pair)
        _same(serial, on_ray)
        np.testing.assert_array_equal(serial.members_genes, on_ray.members_genes)
        np.testing.assert_array_equal(serial.population_genes, on_ray.population_genes)
        np.testing.assert_array_equal(serial.fitness, on_ray.fitness)
        assert serial.trials == on_ray.trials


@pytest.mark.ray
def test_a_leverage_gene_evolves_on_ray_exactly_as_serially(local_pair, tmp_path):
    """Perp genomes with a leverage gene (and a drift band): each row's leverage travels to the actors with its
    weights, and the run is bit-for-bit the serial one."""
    from genetic_sizer.data.synthetic import perp_market

    prices = perp_market(hours=24 * 30, seed=4).prices
    config = load_config(
        None,
        [
            "portfolio.market=perp",
            "portfolio.leverage=2",
            "portfolio.max_leverage={BTC: 40, default: 10}",
            "portfolio.direction=longshort",
            "portfolio.min_weight=-0.5",
            "portfolio.rebalance=D",
            "objective=calmar",
            "evolution.population=24",
            "evolution.generations=4",
            "evolution.genes={threshold: [0.0, 0.1], leverage: [1.0, 8.0]}",
            "parallel.batch_size=4",
        ],
    )
    serial = evolve(config, prices, tmp_path / "serial")
    on_ray = evolve(config, prices, tmp_path / "ray", map_fn=local_pair)
    _same(serial, on_ray)
    np.testing.assert_array_equal(serial.members_genes, on_ray.members_genes)
    np.testing.assert_array_equal(serial.population_genes, on_ray.population_genes)
    assert serial.trials == on_ray.trials and serial.logbook[-1]["leverage_std"] > 0

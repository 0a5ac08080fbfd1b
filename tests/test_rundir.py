"""Run directories: which paths a run may use, the JSON + npz checkpoint, its validation and crash safety."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from genetic_sizer.config import load_config
from genetic_sizer.data.loaders import load_from_config
from genetic_sizer.errors import CheckpointError, ConfigError, RunDirError
from genetic_sizer.runs import champion as C
from genetic_sizer.runs.checkpoint import CHECKPOINT_VERSION
from genetic_sizer.runs.evolve import evolve
from genetic_sizer.runs.rundir import RunDir, plan_new, plan_resume
from genetic_sizer.storage import files
from genetic_sizer.validation.holdout import export

SMALL = [
    "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY]",
    "data.start=2021-06-01",
    "data.end=2022-12-31",
    "evolution.population=8",
    "evolution.generations=3",
    "evolution.hall_of_fame=3",
]


def small_config(*extra):
    return load_config(None, [*SMALL, *extra])


@pytest.fixture(scope="module")
def prices():
    return load_from_config(small_config().data)


@pytest.fixture(scope="module")
def finished(prices, tmp_path_factory):
    """A seeded run (classical allocations in the checkpoint) that finished its 3 generations."""
    path = tmp_path_factory.mktemp("finished") / "run"
    cfg = small_config("evolution.seed_with_classical=true")
    return cfg, evolve(cfg, prices, path), path


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _tree(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


class Evil:
    """Unpickling this touches a marker file: proof that a pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


# ---- the checkpoint format -------------------------------------------------------------------------
def test_checkpoint_is_json_and_npz_without_pickle(finished, prices):
    cfg, result, path = finished
    names = sorted(p.name for p in path.iterdir())
    npz = [n for n in names if n.endswith(".npz")]
    assert len(npz) == 1 and "checkpoint.pkl" not in names
    assert not [n for n in names if files.TMP_MARK in n]  # no temporary file left behind
    head = json.loads((path / "checkpoint.json").read_text())
    assert head["format"] == "genetic_sizer/checkpoint" and head["version"] == CHECKPOINT_VERSION
    assert (
        head["arrays"] == npz[0] and head["arrays_sha256"] == hashlib.sha256((path / npz[0]).read_bytes()).hexdigest()
    )
    assert head["generation"] == 3 and head["config_sha256"] == cfg.sha256() and head["data_sha256"] == prices.sha256()
    with np.load(path / npz[0], allow_pickle=False) as z:
        assert sorted(z.files) == sorted(
            [
                "population",
                "fitness",
                "crowding",
                "archive",
                "archive_fitness",
                "py_random_state",
                "seed_allocations",
                "trial_keys",
                "trial_sample",
            ]
        )
        assert z["trial_keys"].dtype == np.uint64 and len(z["trial_keys"]) == result.trials["n"]
        np.testing.assert_array_equal(z["trial_sample"], result.trial_sample)
        np.testing.assert_array_equal(z["population"], result.population)
        np.testing.assert_array_equal(z["archive"], result.members)
        assert z["py_random_state"].dtype == np.uint32 and z["py_random_state"].shape == (625,)
    cp = RunDir(path).read_checkpoint()
    assert cp.logbook == result.logbook and cp.evaluations == result.evaluations
    assert list(cp.seeds["allocations"]) == list(result.seeds["allocations"])  # names, in order
    for name, w in result.seeds["allocations"].items():
        np.testing.assert_array_equal(cp.seeds["allocations"][name], w)
    assert cp.seeds["skipped"] == result.seeds["skipped"] and cp.seeds["used"] == result.seeds["used"]


def test_seeded_run_resumes_exactly(prices, tmp_path):
    cfg = small_config("evolution.seed_with_classical=true")
    full = evolve(cfg, prices, tmp_path / "full")

    def stop(g):
        if g.gen == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evolve(cfg, prices, tmp_path / "cut", on_generation=stop)
    resumed = evolve(cfg, prices, tmp_path / "cut", resume=True)
    np.testing.assert_array_equal(full.members, resumed.members)
    np.testing.assert_array_equal(full.population, resumed.population)
    assert full.logbook == resumed.logbook
    assert full.seeds["used"] == resumed.seeds["used"]
    for name, w in full.seeds["allocations"].items():
        np.testing.assert_array_equal(resumed.seeds["allocations"][name], w)


def test_legacy_pickle_checkpoint_is_refused_never_unpickled(finished, prices, tmp_path, capsys):
    from genetic_sizer.cli.main import main

    cfg, _result, path = finished
    run = _copy(path, tmp_path / "run")
    marker = tmp_path / "pwned"
    (run / "checkpoint.pkl").write_bytes(pickle.dumps(Evil(marker)))
    with pytest.raises(CheckpointError, match=r"checkpoint\.pkl .* a pickle, which is never read"):
        evolve(cfg, prices, run, resume=True)
    with pytest.raises(CheckpointError, match=r"checkpoint\.pkl"):
        export(run, tmp_path / "x.json")
    assert main(["evolve", "--resume", "--out", str(run), "--no-plots"]) == 2
    assert "checkpoint.pkl" in capsys.readouterr().err
    # an old run directory (config + pickle only) is refused for a new run too
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.yaml").write_text((run / "config.yaml").read_text())
    (old / "checkpoint.pkl").write_bytes(pickle.dumps(Evil(marker)))
    with pytest.raises(CheckpointError, match="never read"):
        evolve(cfg, prices, old)
    assert not marker.exists()
    assert not (tmp_path / "x.json").exists()


def test_object_arrays_are_refused_without_unpickling(finished, tmp_path):
    _cfg, _result, path = finished
    run = _copy(path, tmp_path / "run")
    marker = tmp_path / "pwned"
    head = json.loads((run / "checkpoint.json").read_text())
    with np.load(run / head["arrays"], allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["population"] = np.array([Evil(marker)], dtype=object)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (run / head["arrays"]).write_bytes(buf.getvalue())
    head["arrays_sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    (run / "checkpoint.json").write_text(json.dumps(head))
    with pytest.raises(CheckpointError, match="not a readable arrays file"):
        RunDir(run).read_checkpoint()
    assert not marker.exists()


def _edit_arrays(run: Path, **changes) -> None:
    """Rewrite the npz with some arrays changed, and record its new SHA-256 (a consistent but wrong pair)."""
    head = json.loads((run / "checkpoint.json").read_text())
    with np.load(run / head["arrays"], allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (run / head["arrays"]).write_bytes(buf.getvalue())
    head["arrays_sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    (run / "checkpoint.json").write_text(json.dumps(head))


def _edit_head(run: Path, fn) -> None:
    head = json.loads((run / "checkpoint.json").read_text())
    fn(head)
    (run / "checkpoint.json").write_text(json.dumps(head))


def _population(run: Path) -> np.ndarray:
    head = json.loads((run / "checkpoint.json").read_text())
    with np.load(run / head["arrays"], allow_pickle=False) as z:
        return z["population"], z["fitness"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda run: (run / "checkpoint.json").write_text('{"format": "genetic_sizer/chec'),
            "not a readable checkpoint",
        ),
        (lambda run: (run / "checkpoint.json").write_text("[1, 2]"), "a checkpoint is a JSON object"),
        (lambda run: _edit_head(run, lambda h: h.update(version=99)), "version 99 is not 2; .* newer genetic_sizer"),
        (lambda run: _edit_head(run, lambda h: h.update(version=1)), "version 1 is not 2"),
        (lambda run: _edit_head(run, lambda h: h.pop("np_rng")), "missing field 'np_rng'"),
        (lambda run: _edit_head(run, lambda h: h.update(generation=-1)), "'generation' must be an integer >= 0"),
        (lambda run: _edit_head(run, lambda h: h.update(generation=2)), "logbook has 4 rows for generation 2"),
        (lambda run: _edit_head(run, lambda h: h.update(arrays="../elsewhere.npz")), "'arrays' must be"),
        (lambda run: _edit_head(run, lambda h: h.update(np_rng={"bit_generator": "MT19937"})), "np_rng is not"),
        (lambda run: _edit_head(run, lambda h: h["logbook"][1].update(sharpe_best="x")), "logbook row 1"),
        (
            lambda run: (run / json.loads((run / "checkpoint.json").read_text())["arrays"]).write_bytes(b"PK\x03\x04"),
            "SHA-256 differs",
        ),
        (
            lambda run: (run / json.loads((run / "checkpoint.json").read_text())["arrays"]).unlink(),
            "arrays file is missing",
        ),
        (
            lambda run: _edit_arrays(run, fitness=np.full_like(_population(run)[1], np.nan)),
            "'fitness' holds non-finite",
        ),
        (lambda run: _edit_arrays(run, population=_population(run)[0].astype(np.float32)), "dtype float32"),
        (lambda run: _edit_arrays(run, population=_population(run)[0][:, :3]), r"shape \(8, 3\), expected \(n, 6\)"),
        (lambda run: _edit_arrays(run, crowding=None), "missing array 'crowding'"),
        (lambda run: _edit_arrays(run, extra=np.zeros(2)), "unexpected arrays"),
        (lambda run: _edit_arrays(run, py_random_state=np.full(625, 1000, np.uint32)), "not a valid random state"),
    ],
    ids=[
        "truncated-json",
        "json-list",
        "newer-version",
        "old-version",
        "missing-key",
        "negative-generation",
        "logbook-length",
        "path-traversal",
        "other-bit-generator",
        "logbook-value",
        "truncated-npz",
        "missing-npz",
        "nan-fitness",
        "dtype",
        "shape",
        "missing-array",
        "extra-array",
        "random-state",
    ],
)
def test_damaged_checkpoints_are_refused_naming_the_file(finished, prices, tmp_path, damage, message):
    cfg, _result, path = finished
    run = _copy(path, tmp_path / "run")
    damage(run)
    with pytest.raises(CheckpointError, match=message) as info:
        evolve(cfg, prices, run, resume=True)
    assert str(run) in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_checkpoint_of_another_run_shape_is_refused(finished, prices, tmp_path):
    cfg, _result, path = finished
    run = _copy(path, tmp_path / "run")
    pop, fit = _population(run)
    _edit_arrays(run, population=pop[:4], fitness=fit[:4], crowding=np.full(4, np.nan))
    with pytest.raises(CheckpointError, match="does not fit this run: population of 4, the config says 8"):
        evolve(cfg, prices, run, resume=True)


@pytest.mark.parametrize("crash_at", [1, 3])
def test_a_crash_between_arrays_and_json_leaves_the_previous_checkpoint(prices, tmp_path, monkeypatch, crash_at):
    """Killed after a generation's arrays were written but before checkpoint.json named them: the checkpoint
    still reads as the generation before, and resuming ends exactly like the uninterrupted run. Killed while
    writing generation 0, the run has no checkpoint yet and starts again from its saved config. (Checkpoints after
    every generation; a failed checkpoint is not written again on the way out.)"""
    cfg = small_config("run.checkpoint_every=0")
    full = evolve(cfg, prices, tmp_path / "full")
    real = files.write_text
    written = []

    def crash(path, text, what="output file", durable=False):
        if Path(path).name == "checkpoint.json":
            written.append(path)
            if len(written) == crash_at:  # generation crash_at - 1's json never lands
                raise KeyboardInterrupt
        return real(path, text, what, durable)

    monkeypatch.setattr(files, "write_text", crash)
    with pytest.raises(KeyboardInterrupt):
        evolve(cfg, prices, tmp_path / "cut")
    monkeypatch.setattr(files, "write_text", real)
    run = RunDir(tmp_path / "cut")
    assert len(list(run.path.glob("checkpoint-*.npz"))) == min(crash_at, 2)  # the last one orphaned
    assert not [p for p in run.path.iterdir() if files.TMP_MARK in p.name]
    plan = plan_resume(run.path)
    if crash_at == 1:
        with pytest.raises(CheckpointError, match="no checkpoint"):
            run.read_checkpoint()
        assert plan.resume is False
    else:
        assert run.read_checkpoint().generation == crash_at - 2 and plan.resume is True
    resumed = evolve(cfg, prices, run, resume=plan.resume)
    np.testing.assert_array_equal(full.members, resumed.members)
    np.testing.assert_array_equal(full.population, resumed.population)
    assert full.logbook == resumed.logbook
    head = json.loads(run.checkpoint_path.read_text())
    assert head["generation"] == 3 and [p.name for p in run.path.glob("checkpoint-*.npz")] == [head["arrays"]]


# ---- which directories a run may use ---------------------------------------------------------------
def test_new_run_refuses_files_and_foreign_or_started_directories(finished, tmp_path):
    cfg, _result, path = finished
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(RunDirError, match="is a file"):
        RunDir.create(a_file, cfg)
    with pytest.raises(RunDirError, match="is a file, not a directory"):
        RunDir.create(a_file / "run", cfg)
    user = tmp_path / "user"
    user.mkdir()
    (user / "summary.csv").write_text("my numbers")
    (user / "config.yaml").write_text("my: config")
    before = _tree(user)
    with pytest.raises(RunDirError, match=r"is not empty \(config.yaml, summary.csv\) and is not a run"):
        RunDir.create(user, cfg)
    (user / "summary.csv").unlink()
    with pytest.raises(RunDirError, match=r"holds a config\.yaml that is not a run's"):
        RunDir.create(user, cfg)
    (user / "summary.csv").write_text("my numbers")
    assert _tree(user) == before
    with pytest.raises(RunDirError, match="already holds a run; continue it with --resume"):
        RunDir.create(path, cfg)
    with pytest.raises(RunDirError, match="already holds a run"):
        plan_new(path, cfg)
    # a run interrupted before its first checkpoint: the same config may start it again, another may not
    fresh = RunDir.create(tmp_path / "fresh", cfg)
    assert _tree(fresh.path) == {"config.yaml": fresh.config_path.read_bytes()}
    assert RunDir.create(fresh.path, cfg) == fresh
    with pytest.raises(RunDirError, match="holds a run of another configuration"):
        RunDir.create(fresh.path, small_config("evolution.seed=7"))
    assert plan_resume(fresh.path).resume is False  # resuming it starts at generation 0
    assert plan_resume(path).resume is True
    with pytest.raises(RunDirError, match=r"config\.yaml is not a valid run configuration: unknown key 'my'"):
        plan_resume(user)
    (user / "config.yaml").unlink()
    with pytest.raises(RunDirError, match=r"not a run directory \(no config\.yaml\)"):
        plan_resume(user)
    with pytest.raises(RunDirError, match="no run directory"):
        plan_resume(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"differs from the one saved .*\(only parallel\.\* and run\.\* may change\)"):
        plan_resume(path, ["evolution.seed=3"])
    assert plan_resume(path, ["parallel.batch_size=2"]).config.parallel.batch_size == 2
    assert plan_resume(path, ["run.checkpoint_every=0"]).config.run.checkpoint_every == 0.0


@pytest.mark.parametrize(
    "extra, message",
    [
        (("portfolio.max_weight=0.1",), "infeasible bounds"),
        (("objective=[sharpe, turnover]", "evolution.population=10"), "multiple of 4 for NSGA-II"),
    ],
)
def test_a_run_that_fails_validation_creates_nothing(prices, tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        evolve(small_config(*extra), prices, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_evolve_into_a_user_directory_is_refused_untouched(prices, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "config.yaml").write_text("evolution: {population: 8}\n")
    (user / "summary.csv").write_text("a,b\n")
    before = _tree(user)
    with pytest.raises(RunDirError, match="is not empty"):
        evolve(small_config(), prices, user)
    assert _tree(user) == before


# ---- atomic files ----------------------------------------------------------------------------------
def test_champion_write_refuses_a_directory_and_leaves_nothing_behind(tmp_path, monkeypatch):
    record = {"a": 0}  # write does not validate (build and load do)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(ConfigError, match="is a directory; give a file name"):
        C.write(record, target)
    assert list(target.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    good = C.write({"a": 1}, tmp_path / "c.json")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        C.write({"a": 2}, good)
    assert json.loads(good.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "out"]


# ---- strategy genes in the checkpoint ---------------------------------------------------------------
GENES = "evolution.genes={threshold: [0.0, 0.2], rebalance: [W, M, Q, once]}"


@pytest.fixture(scope="module")
def with_genes(prices, tmp_path_factory):
    path = tmp_path_factory.mktemp("genes") / "run"
    cfg = small_config(GENES)
    return cfg, evolve(cfg, prices, path), path


def test_genes_are_checkpointed_as_arrays_beside_the_population(with_genes, finished):
    _cfg, result, path = with_genes
    head = json.loads((path / "checkpoint.json").read_text())
    assert head["n_genes"] == 2
    with np.load(path / head["arrays"], allow_pickle=False) as z:
        np.testing.assert_array_equal(z["population_genes"], result.population_genes)
        assert z["archive_genes"].shape == (3, 2) and z["trial_sample"].shape[1] == 6 + 2
    cp = RunDir(path).read_checkpoint()
    np.testing.assert_array_equal(cp.population_genes, result.population_genes)
    # a run without genes writes no gene arrays, and a checkpoint written before genes (no n_genes) reads as none
    _, _, plain = finished
    head = json.loads((plain / "checkpoint.json").read_text())
    with np.load(plain / head["arrays"], allow_pickle=False) as z:
        assert not {"population_genes", "archive_genes"} & set(z.files)
    assert head["n_genes"] == 0


def test_a_checkpoint_written_before_genes_still_resumes(finished, prices, tmp_path):
    cfg, result, path = finished
    run = _copy(path, tmp_path / "run")
    _edit_head(run, lambda h: h.pop("n_genes"))
    assert RunDir(run).read_checkpoint().n_genes == 0
    resumed = evolve(cfg, prices, run, resume=True)
    np.testing.assert_array_equal(resumed.members, result.members)


def _gene_arrays(run: Path) -> tuple[np.ndarray, np.ndarray]:
    head = json.loads((run / "checkpoint.json").read_text())
    with np.load(run / head["arrays"], allow_pickle=False) as z:
        return z["population_genes"], z["archive_genes"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda run: _edit_arrays(run, population_genes=None), "missing array 'population_genes'"),
        (lambda run: _edit_arrays(run, archive_genes=_gene_arrays(run)[1][:, :1]), r"'archive_genes' has shape"),
        (
            lambda run: _edit_arrays(run, population_genes=np.full_like(_gene_arrays(run)[0], np.inf)),
            "'population_genes' holds non-finite",
        ),
        (lambda run: _edit_head(run, lambda h: h.update(n_genes=-1)), "'n_genes' must be an integer >= 0"),
        (lambda run: _edit_head(run, lambda h: h.update(n_genes=0)), r"'trial_sample' has shape \(\d+, 8\), expected"),
    ],
    ids=["missing", "shape", "non-finite", "negative", "genes-not-announced"],
)
def test_damaged_gene_arrays_are_refused_naming_the_file(with_genes, prices, tmp_path, damage, message):
    cfg, _result, path = with_genes
    run = _copy(path, tmp_path / "run")
    damage(run)
    with pytest.raises(CheckpointError, match=message) as info:
        evolve(cfg, prices, run, resume=True)
    assert str(run) in str(info.value)


# ---- which command made a run; the keys a resume may not change; a run that never started -----------------------
def test_run_kind_tells_evolve_and_walkforward_runs_apart_and_resume_keeps_to_its_own(finished, tmp_path):
    from genetic_sizer.runs.rundir import run_kind

    cfg, _result, path = finished
    assert run_kind(RunDir(path)) == "evolve"
    fresh = RunDir.create(tmp_path / "fresh", cfg)
    assert run_kind(fresh) is None  # only config.yaml: either command may start it
    assert plan_resume(fresh.path, kind="walkforward").resume is False
    assert plan_resume(fresh.path, kind="evolve").resume is False
    wf = RunDir.create(tmp_path / "wf", cfg)
    (wf.path / "folds").mkdir()  # a walk-forward whose first fold is running
    assert run_kind(wf) == "walkforward"
    before = _tree(path)
    with pytest.raises(RunDirError, match=f"^{path} is an evolve run; use evolve --resume"):
        plan_resume(path, kind="walkforward")
    with pytest.raises(RunDirError, match=f"^{wf.path} is a walk-forward run; use walkforward --resume"):
        plan_resume(wf.path, kind="evolve")
    assert plan_resume(path, kind="evolve").resume is True and _tree(path) == before
    (wf.path / "folds").rmdir()
    (wf.path / "walkforward.json").write_text("{}")  # a finished walk-forward
    assert run_kind(wf) == "walkforward"


def test_config_differences_name_every_key_that_changes_the_results():
    from genetic_sizer.runs.rundir import config_differences

    band = "evolution.genes={threshold: [0.0, 0.2]}"
    saved = small_config(band)
    assert config_differences(saved, small_config(band)) == []
    given = small_config(
        "evolution.seed=7",
        "evolution.genes={threshold: [0.0, 0.3]}",
        "portfolio.fees=0.002",
        "parallel.batch_size=4",  # not part of the fingerprint: never named
        "run.checkpoint_every=1",
    )
    assert config_differences(saved, given) == [  # in the order of the config's sections, nested keys by name
        "portfolio.fees: saved 0.0005, given 0.002",
        "evolution.seed: saved 42, given 7",
        "evolution.genes.threshold: saved [0.0, 0.2], given [0.0, 0.3]",
    ]
    # the gene settings of a run without genes change nothing (they are outside the fingerprint)
    assert config_differences(small_config(), small_config("evolution.gene_sigma=0.3")) == []
    assert config_differences(saved, small_config(band, "evolution.gene_sigma=0.3")) == [
        f"evolution.gene_sigma: saved {saved.evolution.gene_sigma!r}, given 0.3"
    ]
    with pytest.raises(ConfigError, match=r"evolution\.seed: saved 42, given 7 \(only parallel\.\* and run\.\*"):
        plan_resume_of(saved, ["evolution.seed=7"])


def plan_resume_of(config, overrides):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        rd = RunDir.create(Path(d) / "run", config)
        return plan_resume(rd.path, overrides)


def test_discard_unstarted_takes_back_only_what_create_made(finished, tmp_path):
    from genetic_sizer.runs.rundir import discard_unstarted

    cfg, _result, path = finished
    made = RunDir.create(tmp_path / "made", cfg)
    assert discard_unstarted(made) and not made.path.exists()
    mine = tmp_path / "mine"  # the user's empty directory: config.yaml goes, the directory stays
    mine.mkdir()
    assert discard_unstarted(RunDir.create(mine, cfg)) and list(mine.iterdir()) == []
    again = RunDir.create(tmp_path / "again", cfg)
    assert not discard_unstarted(RunDir(again.path))  # not created by this RunDir: left alone
    found = RunDir.create(again.path, cfg)  # config.yaml was there before this call: left alone
    assert not discard_unstarted(found) and found.config_path.is_file()
    started = RunDir.create(tmp_path / "started", cfg)
    (started.path / "folds").mkdir()  # something of the run was written: kept
    assert not discard_unstarted(started) and started.config_path.is_file()
    before = _tree(path)
    assert not discard_unstarted(RunDir(path)) and _tree(path) == before

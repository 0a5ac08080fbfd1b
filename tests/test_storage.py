"""Run storage at a URL: an S3 API on 127.0.0.1 (moto's server, stopped by its process id) and file:// URLs.

A run written to a URL holds the same files as a local run, its checkpoints validated as ever; "a new machine"
(this process's staging directories dropped) resumes it to the uninterrupted run's champion; a prefix that is not
a run is refused untouched; a crash while the checkpoint is pushed leaves the previous stored checkpoint readable.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from genetic_sizer.cli.main import main
from genetic_sizer.config import load_config
from genetic_sizer.data.loaders import load_from_config
from genetic_sizer.errors import CheckpointError, RunDirError
from genetic_sizer.runs.evolve import evolve
from genetic_sizer.runs.rundir import RunDir
from genetic_sizer.storage import remote as storage

SMALL = [
    "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY]",
    "data.start=2021-06-01",
    "data.end=2022-12-31",
    "evolution.population=8",
    "evolution.generations=3",
    "evolution.hall_of_fame=3",
]
SETS = [a for s in SMALL for a in ("--set", s)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on 127.0.0.1 (a subprocess, stopped by its pid); yields an s3fs filesystem for it."""
    port = _free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)
        fs.mkdir("runs")
        yield fs
    finally:
        proc.kill()
        proc.wait(10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    from genetic_sizer.validation.holdout import split_holdout

    config = load_config(None, SMALL)
    prices, _ = split_holdout(load_from_config(config.data), config.evolution.holdout)  # what evolve evolves on
    full = evolve(config, prices, tmp_path_factory.mktemp("full") / "run")
    return config, prices, full


def _stop_after(gen):
    def stop(g):
        if g.gen == gen:
            raise KeyboardInterrupt

    return stop


def _same(a, b):
    np.testing.assert_array_equal(a.members, b.members)
    np.testing.assert_array_equal(a.population, b.population)
    assert a.logbook == b.logbook


def _new_machine():
    """Drop this process's staging copies: what is read next comes from the storage URL alone."""
    storage.forget_stages()


def test_s3_run_resumes_on_a_new_machine_to_the_uninterrupted_champion(s3, problem, tmp_path, capsys):
    config, prices, full = problem
    url = "s3://runs/team/evolve-1"
    with pytest.raises(KeyboardInterrupt):
        evolve(config, prices, url, on_generation=_stop_after(1))
    stored = {p.rsplit("/", 1)[-1] for p in s3.find("runs/team/evolve-1")}
    npz = [n for n in stored if n.endswith(".npz")]
    assert stored == {"config.yaml", "checkpoint.json", "logbook.csv", *npz} and len(npz) == 1
    head = json.loads(s3.cat_file("runs/team/evolve-1/checkpoint.json"))
    assert head["generation"] == 1 and head["arrays"] == npz[0]  # every finished generation is in storage

    _new_machine()
    assert main(["evolve", "--resume", "--out", url, "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert f"run directory: {url} (resuming)" in out and f"(champion: {url}/champion.json)" in out
    champion = json.loads(s3.cat_file("runs/team/evolve-1/champion.json"))
    assert list(champion["weights"].values()) == list(full.champion)  # the uninterrupted run's champion, exactly
    _new_machine()
    resumed = RunDir.open_existing(url).read_checkpoint()
    np.testing.assert_array_equal(resumed.archive, full.members)
    assert resumed.logbook == full.logbook
    assert not [p for p in s3.find("runs/team") if ".tmp-" in p]
    # export and report read the stored run; the report goes back to storage
    assert main(["export", "--run", url, "--rank", "1", "--out", str(tmp_path / "second.json")]) == 0
    assert json.loads((tmp_path / "second.json").read_text())["weights"] == dict(
        zip(prices.symbols, full.members[1].tolist(), strict=True)
    )
    assert main(["report", "--run", url]) == 0
    assert s3.exists("runs/team/evolve-1/report.html")


def test_s3_prefix_that_is_not_a_run_is_refused_untouched(s3, problem):
    config, prices, _ = problem
    s3.pipe("runs/mine/notes.txt", b"keep me")
    with pytest.raises(RunDirError, match=r"s3://runs/mine is not empty \(notes.txt\) and is not a run"):
        evolve(config, prices, "s3://runs/mine")
    assert s3.find("runs/mine") == ["runs/mine/notes.txt"] and s3.cat_file("runs/mine/notes.txt") == b"keep me"
    assert main(["evolve", "--out", "s3://runs/mine/notes.txt", *SETS]) == 2  # an object, not a prefix
    assert s3.find("runs/mine") == ["runs/mine/notes.txt"]


def test_file_url_run_equals_a_local_run_and_refuses_a_second_start(problem, tmp_path, capsys):
    config, prices, full = problem
    url = (tmp_path / "nfs" / "runs" / "a").as_uri()
    result = evolve(config, prices, url)
    _same(full, result)
    stored = tmp_path / "nfs" / "runs" / "a"
    names = sorted(p.name for p in stored.iterdir())
    assert names == sorted(["config.yaml", "checkpoint.json", "logbook.csv", *[n for n in names if n.endswith(".npz")]])
    local = RunDir(RunDir(url).path)  # the staging copy holds the same bytes as the stored run
    for name in names:
        assert (stored / name).read_bytes() == local.file(name).read_bytes(), name
    assert main(["evolve", "--out", url, *SETS]) == 2
    assert f"{url} already holds a run; continue it with --resume" in capsys.readouterr().err


def test_run_storage_in_the_config_places_runs_and_is_not_part_of_the_fingerprint(tmp_path, capsys):
    base = (tmp_path / "store").as_uri()
    assert main(["evolve", "--no-plots", *SETS, "--set", f"run.storage={base}"]) == 0
    runs = list((tmp_path / "store").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("evolve-") and (runs[0] / "champion.json").is_file()
    assert f"run directory: {base}/{runs[0].name}" in capsys.readouterr().out
    a, b = load_config(None, SMALL), load_config(None, [*SMALL, f"run.storage={base}"])
    assert a.sha256() == b.sha256() and a != b


def test_damaged_stored_checkpoint_is_refused_naming_the_file(problem, tmp_path):
    config, prices, _ = problem
    stored = tmp_path / "store" / "r"
    with pytest.raises(KeyboardInterrupt):
        evolve(config, prices, stored.as_uri(), on_generation=_stop_after(1))
    npz = next(stored.glob("checkpoint-*.npz"))
    data = bytearray(npz.read_bytes())
    data[100] ^= 0xFF
    npz.write_bytes(bytes(data))
    _new_machine()
    with pytest.raises(CheckpointError, match=r"checkpoint-000001-.*\.npz: SHA-256 differs"):
        evolve(config, prices, stored.as_uri(), resume=True)


def test_a_crash_while_pushing_a_checkpoint_leaves_the_stored_one_consistent(problem, tmp_path, monkeypatch):
    """The arrays go up before checkpoint.json, old arrays are removed only after it: dying in between leaves
    generation 1's checkpoint readable in storage, and the resume still ends on the uninterrupted champion.
    (Checkpoints after every generation; a checkpoint that failed is not written again on the way out.)"""
    _, prices, full = problem
    config = load_config(None, [*SMALL, "run.checkpoint_every=0"])
    stored = tmp_path / "store" / "r"
    real_put = storage.Remote.put
    pushed = []

    def put(self, local, rel):
        if rel == "checkpoint.json" and json.loads(Path(local).read_text())["generation"] == 2:
            raise KeyboardInterrupt  # the process dies after generation 2's arrays went up
        pushed.append(rel)
        return real_put(self, local, rel)

    monkeypatch.setattr(storage.Remote, "put", put)
    with pytest.raises(KeyboardInterrupt):
        evolve(config, prices, stored.as_uri())
    monkeypatch.setattr(storage.Remote, "put", real_put)
    assert pushed.index("checkpoint.json") > pushed.index(next(p for p in pushed if p.endswith(".npz")))
    assert len(list(stored.glob("checkpoint-*.npz"))) == 2  # generation 1's arrays are still there
    _new_machine()
    assert RunDir.open_existing(stored.as_uri()).read_checkpoint().generation == 1
    resumed = evolve(config, prices, stored.as_uri(), resume=True)
    _same(full, resumed)
    assert [p.name for p in stored.glob("checkpoint-*.npz")] == [
        json.loads((stored / "checkpoint.json").read_text())["arrays"]
    ]


def test_download_needs_a_new_directory_and_a_stored_run(problem, tmp_path):
    config, prices, _ = problem
    url = (tmp_path / "store" / "r").as_uri()
    evolve(config, prices, url)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    with pytest.raises(RunDirError, match="exists and is not an empty directory"):
        storage.download(url, mine)
    assert [p.name for p in mine.iterdir()] == ["keep.txt"]
    with pytest.raises(RunDirError, match="no run stored at"):
        storage.download((tmp_path / "nothing").as_uri(), tmp_path / "copy")
    copy = storage.download(url, tmp_path / "copy")
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in (tmp_path / "store" / "r").iterdir())
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    shutil.rmtree(copy)


def test_unknown_storage_protocol_is_a_clear_error(problem):
    config, prices, _ = problem
    with pytest.raises(RunDirError, match=r"run storage 'nosuch://bucket/x'"):
        evolve(config, prices, "nosuch://bucket/x")


def test_s3_walkforward_stores_the_running_folds_checkpoints_and_resumes_them(s3, tmp_path, monkeypatch):
    """A walk-forward at s3://: the fold running when the job stops has its checkpoints in the bucket
    (folds/fold-001/), a new machine resumes that fold from them to the uninterrupted run's results, and the bucket
    keeps no fold checkpoints once every fold's result is stored."""
    from genetic_sizer.validation.walkforward import run_walkforward

    sets = [
        "data.symbols=[AAPL, AMD, BAC, CVX]",
        "data.start=2021-01-01",
        "data.end=2022-12-31",
        "evolution.population=8",
        "evolution.generations=3",
        "evolution.hall_of_fame=3",
        "walkforward.train=200",
        "walkforward.test=120",
    ]
    config = load_config(None, sets)
    prices = load_from_config(config.data)
    whole = run_walkforward(config, prices, RunDir.create(tmp_path / "local", config))
    assert len(whole.folds) >= 2
    import genetic_sizer.runs.evolve as E

    real_evolve, calls, stopped = E.evolve, [], []

    def evolve(cfg, train, run_dir, **kw):
        calls.append(kw.get("resume", False))
        if len(calls) == 2 and not stopped:  # fold 1 stops after its generation 1, once
            stopped.append(True)

            def halt(g):
                if g.gen == 1:
                    raise KeyboardInterrupt

            return real_evolve(cfg, train, run_dir, on_generation=halt, **kw)
        return real_evolve(cfg, train, run_dir, **kw)

    monkeypatch.setattr(E, "evolve", evolve)
    url = "s3://runs/team/wf-1"
    with pytest.raises(KeyboardInterrupt):
        run_walkforward(config, prices, RunDir.create(url, config))
    names = {p.split("runs/team/wf-1/", 1)[1] for p in s3.find("runs/team/wf-1")}
    assert {"folds/fold-000.json", "folds/fold-001/checkpoint.json", "folds/fold-001/config.yaml"} <= names
    assert json.loads(s3.cat_file("runs/team/wf-1/folds/fold-001/checkpoint.json"))["generation"] == 1
    _new_machine()
    calls.clear()
    resumed = run_walkforward(config, prices, url, resume=True)
    assert calls[0] is True  # fold 1 continued from the stored checkpoint
    assert resumed.record == whole.record
    np.testing.assert_array_equal(resumed.oos_values, whole.oos_values)
    left = sorted(p.split("runs/team/wf-1/", 1)[1] for p in s3.find("runs/team/wf-1/folds"))
    assert left == [f"folds/fold-{k:03d}.json" for k in range(len(whole.folds))]


# ---- durable and clear: fsync of every run file and its directory; a refused write is an error, not a traceback ----
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads which file a descriptor is from /proc")
def test_checkpoints_and_run_files_are_fsynced_then_renamed_then_their_directory_fsynced(
    problem, tmp_path, monkeypatch
):
    """Each file of a run reaches the disk before its name points to it (fsync of the temporary file, then the
    rename), and the rename reaches the disk before the next file is written (fsync of the directory), as the live
    journal does: after a power failure checkpoint.json never names arrays that were lost, and the checkpoint is never
    older than a logbook written after it."""
    config, prices, _ = problem
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst, *args, **kwargs):
        events.append(("replace", os.fspath(src), os.fspath(dst)))
        return real_replace(src, dst, *args, **kwargs)

    run = (tmp_path / "run").resolve()
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    evolve(config, prices, run)
    monkeypatch.undo()
    arrays = json.loads((run / "checkpoint.json").read_text())["arrays"]
    renames = [i for i, e in enumerate(events) if e[0] == "replace"]
    for name in ("config.yaml", arrays, "checkpoint.json", "logbook.csv"):
        mine = [i for i in renames if events[i][2] == str(run / name)]
        assert mine, name
        for i in mine:
            assert events[i - 1] == ("fsync", events[i][1]), name  # the content, just before the rename
            assert events[i + 1] == ("fsync", str(run)), name  # the directory, just after it
    # generation by generation: the arrays, then the checkpoint naming them, then the logbook, each made durable
    order = [Path(events[i][2]).name for i in renames if Path(events[i][2]).name != "config.yaml"]
    assert order[-3:] == [arrays, "checkpoint.json", "logbook.csv"]


def test_a_write_the_os_refuses_is_a_clear_error_and_the_old_file_stays(tmp_path, monkeypatch):
    import errno

    from genetic_sizer.errors import ConfigError
    from genetic_sizer.storage import files

    target = files.write_text(tmp_path / "champion.json", "old", "champion file")

    def disk_full(src, dst, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(src), None, os.fspath(dst))

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ConfigError, match=r"^champion file '.*champion\.json' could not be written \(No space left"):
        files.write_text(target, "new", "champion file")
    monkeypatch.undo()
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["champion.json"]

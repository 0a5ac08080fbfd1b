"""Runs submitted to a Ray cluster through its Jobs API, the way a user on a laptop does it.

A head started with ``ray start --head`` on 127.0.0.1 with Ray's defaults, so token authentication is on (a token
sits in the head's ``~/.ray/auth_token``); the client is the ``genetic-sizer`` command in a fresh process with the
token in its own ``~/.ray/auth_token`` and no ``RAY_AUTH_MODE``. The head is started with its own ``--temp-dir``
and free ports, and stopped by the process id of ``ray start --block`` (then any process it left, by pid).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from genetic_sizer.backtest.kernels import CACHE_DIR
from genetic_sizer.cli.main import main
from genetic_sizer.cluster import jobs
from genetic_sizer.errors import ConfigError, JobError

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SMALL = [
    "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY]",
    "data.start=2021-06-01",
    "data.end=2022-12-31",
    "evolution.population=12",
    "evolution.generations=3",
    "evolution.hall_of_fame=3",
]
SETS = [a for s in SMALL for a in ("--set", s)]
AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _home_with_token(path: Path, token: str | None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if token is not None:
        (path / ".ray").mkdir(exist_ok=True)
        (path / ".ray" / "auth_token").write_text(token)
    return path


def _env(home: Path, **extra) -> dict:
    """A laptop's environment: this tree first on the path, Ray on loopback, no Ray auth or address variables."""
    env = {k: v for k, v in os.environ.items() if k not in AUTH_ENV}
    env.update(
        HOME=str(home),
        # the kernels compiled by `make install`, not a cold compile under the throwaway HOME in every job
        GENETIC_SIZER_CACHE_DIR=str(CACHE_DIR.parent),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
    )
    env.update(extra)
    return env


class Head:
    """``ray start --head --block`` on 127.0.0.1 with the dashboard; :meth:`stop` ends it by its pid."""

    def __init__(self, home: Path, cwd: Path):
        self.temp = Path(tempfile.mkdtemp(prefix="gsr", dir="/tmp"))  # short: Ray's socket paths must fit
        self.port, self.dashboard = _free_port(), _free_port()
        self.url = f"http://127.0.0.1:{self.dashboard}"
        args = [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={self.port}",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard}",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--ray-client-server-port={_free_port()}",
            f"--temp-dir={self.temp}",
            "--num-cpus=2",
            "--disable-usage-stats",
        ]
        self.log = open(cwd / "head.log", "w")  # closed in stop()
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(  # its own session: whatever Ray signals stays among its processes
            args, env=_env(home), cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - t0

    def _wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/authentication_mode", timeout=2) as r:
                    if json.load(r).get("authentication_mode"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the Ray dashboard did not come up")
            time.sleep(0.25)

    def stop(self) -> None:
        import psutil

        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # ray start --block stops every process it started
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for child in children:  # anything left behind, by its own pid
            try:
                if child.is_running():
                    child.kill()
            except psutil.NoSuchProcess:
                pass
        self.log.close()
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("jobs")
    token = secrets.token_hex(32)
    head_home = _home_with_token(base / "head-home", token)
    head = Head(head_home, base)
    laptop = _home_with_token(base / "laptop-home", token)  # the head's token copied to the laptop
    try:
        yield head, laptop, token, base
    finally:
        head.stop()


@pytest.fixture(scope="module")
def serial_champion():
    from genetic_sizer.config import load_config
    from genetic_sizer.data.loaders import load_from_config
    from genetic_sizer.runs.evolve import evolve
    from genetic_sizer.validation.holdout import split_holdout

    config = load_config(None, SMALL)
    train, _ = split_holdout(load_from_config(config.data), config.evolution.holdout)
    with tempfile.TemporaryDirectory() as d:
        result = evolve(config, train, Path(d) / "serial")
    return dict(zip(train.symbols, result.champion.tolist(), strict=True))


def _cli(args, home: Path, cwd: Path, timeout: float = 400, **env):
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(BIN / "genetic-sizer"), *args],
        env=_env(home, **env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out, time.perf_counter() - t0


def _client(home: Path, monkeypatch, url: str):
    for k in AUTH_ENV:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(home))
    return jobs.connect(url)[0]


@pytest.mark.ray
@pytest.mark.slow
def test_submit_streams_the_logs_and_brings_back_the_serial_champion(cluster, serial_champion, monkeypatch):
    head, laptop, token, base = cluster
    store = (base / "store").as_uri()
    back = base / "back"
    args = ["submit", "--address", head.url, *SETS, "--storage", store, "--out", str(back), "--no-plots"]
    out, _ = _cli(args, laptop, base)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    job_id = text.split("submitted job ", 1)[1].split()[0]
    assert "connecting to the Ray cluster at 127.0.0.1:" in text  # the job joined the cluster it runs on
    for gen in range(4):  # progress streamed while it ran
        assert f"gen {gen:>4}/3  best sharpe" in text
    assert f"job {job_id} succeeded" in text and f"copied the run from {store}/{job_id} to {back}" in text
    assert token not in text + out.stderr
    champion = json.loads((back / "champion.json").read_text())
    assert champion["weights"] == serial_champion  # bit for bit the serial run's
    for name in ("config.yaml", "checkpoint.json", "logbook.csv", "hall_of_fame.csv", "summary.csv"):
        assert (back / name).is_file(), name
    assert (base / "store" / job_id / "champion.json").read_bytes() == (back / "champion.json").read_bytes()

    status, _ = _cli(["jobs", "status", job_id, "--address", head.url], laptop, base)
    assert status.returncode == 0 and "status     SUCCEEDED" in status.stdout
    assert f"run        {store}/{job_id}" in status.stdout
    logs, _ = _cli(["jobs", "logs", job_id], laptop, base, RAY_API_SERVER_ADDRESS=head.url)  # address from env
    assert logs.returncode == 0 and "gen    3/3  best sharpe" in logs.stdout
    client = _client(laptop, monkeypatch, head.url)
    # Ray's convention: the interpreter runs the package, no console script needed on the cluster's PATH
    assert jobs.job_report(client, job_id).entrypoint.startswith(
        "python -m genetic_sizer evolve --config _genetic_sizer_job/"
    )


@pytest.mark.ray
@pytest.mark.slow
def test_a_job_that_fails_reports_its_error_and_exits_non_zero(cluster):
    head, laptop, _, base = cluster
    args = ["submit", "--address", head.url, *SETS, "--set", "parallel.num_workers=64", "--no-plots"]
    out, _ = _cli(args, laptop, base)
    assert out.returncode == 1, out.stdout + out.stderr
    job_id = out.stdout.split("submitted job ", 1)[1].split()[0]
    assert "parallel.num_workers is 64 but the Ray cluster" in out.stdout  # the job's own error, streamed
    assert f"job {job_id} FAILED: " in out.stderr and "exit code 2" in out.stderr.lower()
    status, _ = _cli(["jobs", "status", job_id, "--address", head.url], laptop, base)
    assert status.returncode == 1 and "status     FAILED" in status.stdout


@pytest.mark.ray
@pytest.mark.slow
def test_missing_or_wrong_token_is_a_clear_error_and_nothing_is_submitted(cluster, monkeypatch):
    head, laptop, token, base = cluster
    client = _client(laptop, monkeypatch, head.url)
    before = len(client.list_jobs())
    nobody = _home_with_token(base / "no-token-home", None)
    out, _ = _cli(["submit", "--address", head.url, *SETS], nobody, base)
    assert out.returncode == 2
    assert f"the Ray cluster at {head.url} requires token authentication and no token was found" in out.stderr
    assert "ray get-auth-token" in out.stderr and "Traceback" not in out.stderr
    wrong = "0" * 64
    out, _ = _cli(["submit", "--address", head.url, *SETS], nobody, base, RAY_AUTH_TOKEN=wrong)
    assert out.returncode == 2
    assert f"the Ray cluster at {head.url} refused the authentication token from RAY_AUTH_TOKEN" in out.stderr
    out, _ = _cli(["jobs", "status", "x", "--address", head.url], laptop, base, RAY_AUTH_MODE="disabled")
    assert out.returncode == 2 and "RAY_AUTH_MODE=disabled here sends no token" in out.stderr
    for text in (out.stdout, out.stderr):
        assert token not in text and wrong not in text  # no token is ever printed
    assert len(client.list_jobs()) == before


@pytest.mark.ray
@pytest.mark.slow
def test_a_job_can_be_left_running_and_stopped(cluster, monkeypatch):
    head, laptop, _, base = cluster
    args = ["submit", "--address", head.url, *SETS, "--set", "evolution.generations=100000", "--no-wait"]
    out, _ = _cli(args, laptop, base)
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.split("submitted job ", 1)[1].split()[0]
    assert f"genetic-sizer jobs logs {job_id} --follow --address {head.url}" in out.stdout
    assert "on the node the job runs on (no run storage given)" in out.stdout
    client = _client(laptop, monkeypatch, head.url)
    deadline = time.monotonic() + 120
    while "gen    1/" not in jobs.logs(client, job_id):
        assert time.monotonic() < deadline and not jobs.job_report(client, job_id).done
        time.sleep(0.5)
    stop, _ = _cli(["jobs", "stop", job_id, "--address", head.url], laptop, base)
    assert stop.returncode == 0 and f"job {job_id}: stop requested" in stop.stdout
    while not (report := jobs.job_report(client, job_id)).done:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert report.status == "STOPPED"


# ---- no cluster needed ----------------------------------------------------------------------------------
def test_unreachable_address_is_an_error_before_anything_is_uploaded(tmp_path, monkeypatch, capsys):
    port = _free_port()
    shipped = []
    monkeypatch.setattr(jobs, "prepare", lambda *a, **k: shipped.append(a))
    for k in AUTH_ENV:
        monkeypatch.delenv(k, raising=False)
    assert main(["submit", "--address", f"http://127.0.0.1:{port}", *SETS]) == 2
    assert f"cannot reach the Ray Jobs API at 'http://127.0.0.1:{port}'" in capsys.readouterr().err
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    assert main(["submit", *SETS]) == 2
    assert f"cannot reach the Ray Jobs API at 'http://127.0.0.1:{port}'" in capsys.readouterr().err
    monkeypatch.delenv("RAY_ADDRESS")
    assert main(["jobs", "status", "x"]) == 2
    assert "no Ray cluster address: give --address http://HEAD:8265" in capsys.readouterr().err
    assert shipped == []


def test_address_resolution_follows_ray_job_submit(monkeypatch):
    for k in AUTH_ENV:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:8265")
    assert jobs.resolve_address() == "http://10.0.0.1:8265"
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "https://head.example:443/")
    assert jobs.resolve_address() == "https://head.example:443"  # RAY_API_SERVER_ADDRESS before RAY_ADDRESS
    assert jobs.resolve_address("http://127.0.0.1:8265") == "http://127.0.0.1:8265"  # --address wins
    with pytest.raises(JobError, match="is a Ray Client address"):
        jobs.resolve_address("ray://head:10001")


def test_auth_headers_use_rays_token_sources_and_modes(tmp_path, monkeypatch):
    for k in AUTH_ENV:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(_home_with_token(tmp_path / "h", "from-file")))
    assert jobs.auth_headers() == ({"Authorization": "Bearer from-file"}, str(tmp_path / "h" / ".ray" / "auth_token"))
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert jobs.auth_headers() == ({"Authorization": "Bearer from-env"}, "RAY_AUTH_TOKEN")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert jobs.auth_headers() == ({}, None)
    monkeypatch.delenv("RAY_AUTH_MODE")
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("HOME", str(_home_with_token(tmp_path / "empty", None)))
    assert jobs.auth_headers() == ({}, None)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(JobError, match="cannot read the Ray authentication token: RAY_AUTH_TOKEN_PATH is set"):
        jobs.auth_headers()


def test_prepare_ships_the_config_and_the_price_file(tmp_path, monkeypatch):
    import pandas as pd

    from genetic_sizer.config import RunConfig, read_yaml

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    idx = pd.date_range("2024-01-01", periods=60, freq="D", tz="UTC")
    pd.DataFrame({"time": idx, "A": range(100, 160), "B": range(200, 260)}).to_csv("data/p.csv", index=False)
    work = tmp_path / "work"
    (work / ".git").mkdir(parents=True)
    (work / "notes.txt").write_text("shipped")
    sets = ["data.source=csv", "data.path=data/p.csv", "evolution.population=8"]
    spec = jobs.prepare("evolve", None, sets, storage_url="s3://b/runs", working_dir=str(work))
    staging = Path(spec.runtime_env["working_dir"])
    assert (staging / "data" / "p.csv").read_bytes() == (tmp_path / "data" / "p.csv").read_bytes()  # same path
    assert (staging / "notes.txt").read_text() == "shipped" and not (staging / ".git").exists()
    shipped = RunConfig.from_dict(read_yaml(staging / jobs.JOB_DIR / "config.yaml"))
    assert shipped.data.path == "data/p.csv" and shipped.parallel.backend == "ray" and shipped.parallel.address is None
    assert spec.run == f"s3://b/runs/{spec.submission_id}" and spec.stored
    assert spec.entrypoint == f"python -m genetic_sizer evolve --config _genetic_sizer_job/config.yaml --out {spec.run}"
    spec.cleanup()
    assert not staging.exists()

    elsewhere = tmp_path.parent / f"{tmp_path.name}-prices.csv"  # outside the working directory: renamed
    shutil.copy(tmp_path / "data" / "p.csv", elsewhere)
    spec = jobs.prepare("walkforward", None, ["data.source=csv", f"data.path={elsewhere}"], no_plots=True)
    staging = Path(spec.runtime_env["working_dir"])
    shipped = RunConfig.from_dict(read_yaml(staging / jobs.JOB_DIR / "config.yaml"))
    assert shipped.data.path == f"_genetic_sizer_job/data/{elsewhere.name}"
    assert (staging / shipped.data.path).is_file() and any("is shipped as" in n for n in spec.notes)
    assert not spec.stored and spec.entrypoint.endswith(
        f'--out "$HOME/genetic-sizer-runs/{spec.submission_id}" --no-plots'
    )
    spec.cleanup()
    elsewhere.unlink()

    with pytest.raises(JobError, match=r"data.path .data/none\.csv. is not a file on this machine"):
        jobs.prepare("evolve", None, ["data.source=csv", "data.path=data/none.csv"])
    with pytest.raises(ConfigError, match=r"evolution\.popsize"):
        jobs.prepare("evolve", None, ["evolution.popsize=3"])
    spec = jobs.prepare("evolve", resume="s3://b/runs/x/")
    assert spec.entrypoint == (
        "python -m genetic_sizer evolve --resume --out s3://b/runs/x --set parallel.backend=ray "
        "--set parallel.address=null"
    )
    spec.cleanup()


# ---- the entrypoint the cluster runs, and what a missing genetic_sizer there looks like ---------------------------
def test_the_job_runs_the_package_with_the_clusters_python(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = jobs.prepare("walkforward", None, ["evolution.population=8"], storage_url="s3://b/runs")
    assert spec.entrypoint.startswith("python -m genetic_sizer walkforward --config _genetic_sizer_job/config.yaml")
    spec.cleanup()
    spec = jobs.prepare("evolve", python="/opt/ray env/bin/python", resume="s3://b/runs/x")
    assert spec.entrypoint.startswith("'/opt/ray env/bin/python' -m genetic_sizer evolve --resume --out s3://b/runs/x")
    spec.cleanup()
    with pytest.raises(JobError, match="--python must name the cluster's Python interpreter"):
        jobs.prepare("evolve", python=" ")
    import argparse

    from genetic_sizer.cli.main import build_parser

    args = build_parser().parse_args(["submit", "--python", "/venv/bin/python"])
    assert isinstance(args, argparse.Namespace) and args.python == "/venv/bin/python"


class _FailedJobs:
    """A Jobs API client whose jobs failed the way Ray reports it: a status, the driver's exit code, a message."""

    def __init__(self, exit_code, message, logs=""):
        self.exit_code, self.message, self.log_text = exit_code, message, logs

    def get_job_info(self, job_id):
        from types import SimpleNamespace

        return SimpleNamespace(
            status="FAILED",
            message=self.message,
            entrypoint="python -m genetic_sizer evolve",
            metadata={},
            start_time=1.0,
            end_time=2.0,
            driver_exit_code=self.exit_code,
        )

    def get_job_logs(self, job_id):
        return self.log_text


@pytest.mark.parametrize(
    "exit_code, message, logs, why",
    [
        (127, "Job entrypoint command failed with exit code 127, ... sh: 1: python: not found", "", "exit code 127"),
        (
            1,
            "Job entrypoint command failed with exit code 1",
            "python: No module named genetic_sizer\n",
            "No module",
        ),
        (None, "failed ... No module named genetic_sizer", "", "No module"),
    ],
    ids=["command-not-found", "no-module-in-logs", "no-module-in-message"],
)
def test_a_job_that_cannot_start_genetic_sizer_says_it_is_not_installed(exit_code, message, logs, why):
    r = jobs.job_report(_FailedJobs(exit_code, message, logs), "j")
    assert r.status == "FAILED" and r.message.startswith(jobs.NOT_INSTALLED + ": ")
    assert why in r.message and "--python PATH" in r.message
    other = jobs.job_report(_FailedJobs(2, "Job entrypoint command failed with exit code 2", "error: bad key"), "j")
    assert other.message == "Job entrypoint command failed with exit code 2"  # a run's own failure is kept as is


def test_jobs_against_an_unreachable_address_say_so_and_not_that_nothing_was_uploaded(capsys, monkeypatch):
    for k in AUTH_ENV:
        monkeypatch.delenv(k, raising=False)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    for command in (["jobs", "logs", "x"], ["jobs", "status", "x"], ["jobs", "stop", "x"]):
        assert main([*command, "--address", url]) == 2
        err = capsys.readouterr().err
        assert f"cannot reach the Ray Jobs API at '{url}': the address is unreachable (Connection refused)" in err
        assert "uploaded" not in err.lower()
    assert main(["submit", "--address", url]) == 2  # submitting: nothing left this machine either
    assert "the address is unreachable (Connection refused)" in (err := capsys.readouterr().err)
    assert err.rstrip().endswith("Nothing was uploaded")


@pytest.mark.ray
@pytest.mark.slow
def test_a_cluster_without_genetic_sizer_is_named_as_the_cause(cluster, tmp_path):
    """The job's interpreter is missing (exit 127) or is a Python without genetic_sizer: both say it is not
    installed on the cluster, through the real Jobs API."""
    head, laptop, _, base = cluster
    bare = tmp_path / "bare-python"  # this machine's Python without site-packages, PYTHONPATH or the working dir
    bare.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    bare.chmod(0o755)
    cases = {str(tmp_path / "no-such-python"): "exit code 127", str(bare): "No module named"}

    def submit(python):
        return _cli(["submit", "--address", head.url, *SETS, "--python", python, "--no-plots"], laptop, base)[0]

    with ThreadPoolExecutor(len(cases)) as pool:  # two independent jobs, submitted side by side (each its own client)
        submitted = dict(zip(cases, pool.map(submit, cases), strict=True))
    for python, why in cases.items():
        out = submitted[python]
        assert out.returncode == 1, out.stdout + out.stderr
        job_id = out.stdout.split("submitted job ", 1)[1].split()[0]
        assert f"job {job_id} FAILED: {jobs.NOT_INSTALLED}: " in out.stderr and why in out.stderr
        status, _ = _cli(["jobs", "status", job_id, "--address", head.url], laptop, base)
        assert status.returncode == 1 and f"message    {jobs.NOT_INSTALLED}" in status.stdout

"""Runs on a remote Ray cluster through Ray's Jobs API (the dashboard's port, 8265): the only module using
``ray.job_submission``.

``genetic-sizer submit`` (:func:`submit_run`) is :func:`connect`, :func:`prepare`, :func:`submit`, :func:`follow`
and :func:`fetch_run`, in that order:

* **the address** is ``--address`` (``http://HEAD:8265``), else ``RAY_API_SERVER_ADDRESS``, else
  ``RAY_ADDRESS``, as with ``ray job submit`` (but an explicit ``--address`` wins over the environment). An
  address that does not accept connections is a :class:`~genetic_sizer.errors.JobError` naming it, before
  anything is uploaded;
* **token authentication** (Ray 2.60 turns it on for a cluster it starts when a token exists): the token is
  found the way Ray finds it (``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``;
  ``RAY_AUTH_MODE=disabled`` sends none) and sent as ``Authorization: Bearer``, whether or not this process
  runs with ``RAY_AUTH_MODE=token``. It is never printed. A cluster that refuses the request (no token here, or
  another one) is a ``JobError`` saying where the token was looked for and how to copy the head's
  (``ray get-auth-token`` on the head node);
* **the job**: the entrypoint is ``python -m genetic_sizer evolve`` (or ``walkforward``; Ray's convention, so a
  cluster started from a virtualenv that is not on ``PATH`` needs no console script: ``--python PATH`` names the
  cluster's interpreter) with the resolved config shipped in the runtime environment's ``working_dir``
  (``_genetic_sizer_job/config.yaml``), together with the price file ``data.path`` names when it is on this
  machine, and ``--working-dir`` when given. A job that fails because genetic_sizer is not there (the shell's exit
  code 127, or ``No module named genetic_sizer``) reports "genetic_sizer is not installed on the cluster (see
  runtime_env / the image)" (:func:`job_report`). The run evaluates on
  the cluster the job runs on (``parallel.backend: ray``; Ray sets ``RAY_ADDRESS`` in the job) and writes its
  run directory to ``<storage>/<submission id>`` (``--storage`` or ``run.storage``: a URL both the cluster
  and, for ``--out``, this machine can reach), else to ``~/genetic-sizer-runs/<submission id>`` on the node
  the job runs on;
* :func:`follow` streams the job's logs (its progress lines included) until the job ends and returns its
  final :class:`JobReport`; :func:`fetch_run` copies the finished run from storage to a new local directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import shlex
import shutil
import socket
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from genetic_sizer.errors import ConfigError, JobError
from genetic_sizer.storage import remote as storage

__all__ = [
    "COMMANDS",
    "DEFAULT_PORT",
    "JOB_DIR",
    "NOT_INSTALLED",
    "PYTHON",
    "JobReport",
    "JobSpec",
    "auth_headers",
    "connect",
    "fetch_run",
    "follow",
    "job_report",
    "prepare",
    "resolve_address",
    "stop",
    "submit",
    "submit_run",
]

DEFAULT_PORT = 8265
"""The Ray dashboard's port, where the Jobs API listens."""
JOB_DIR = "_genetic_sizer_job"
"""The folder of the job's working directory that holds the shipped config and price file."""
COMMANDS = ("evolve", "walkforward")
PYTHON = "python"
"""The interpreter a job runs ``-m genetic_sizer`` with, unless ``--python`` names the cluster's own."""
NOT_INSTALLED = "genetic_sizer is not installed on the cluster (see runtime_env / the image)"
"""What a job that could not start genetic_sizer reports (:func:`job_report`)."""
LOCAL_RUNS = "$HOME/genetic-sizer-runs"
"""Where a job without run storage writes its run directory (on the node its driver runs on)."""
ADDRESS_ENV = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
_IGNORED = (".git", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache")


# ---- the address and the token ---------------------------------------------------------------------
def resolve_address(address: str | None = None) -> str:
    """The Jobs API address: ``address``, else ``RAY_API_SERVER_ADDRESS``, else ``RAY_ADDRESS``; ``http://`` is
    added when no scheme is given (``HEAD:8265``); ``ray://`` addresses are refused (Ray Client, not jobs)."""
    source = "--address"
    if not address:
        for name in ADDRESS_ENV:
            if os.environ.get(name):
                address, source = os.environ[name], name
                break
    if not address:
        raise JobError(
            "no Ray cluster address: give --address http://HEAD:8265 (the head's dashboard) or set "
            "RAY_API_SERVER_ADDRESS (or RAY_ADDRESS)"
        )
    address = address.strip().rstrip("/")
    if address.startswith("ray://"):
        raise JobError(
            f"{source} {address!r} is a Ray Client address; jobs are submitted to the head's dashboard: "
            f"http://HEAD:{DEFAULT_PORT}"
        )
    if "://" not in address:
        address = "http://" + address
    parts = urllib.parse.urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JobError(f"{source} must be http://HOST:PORT (the head's dashboard), got {address!r}")
    return address


def _unreachable(url: str, reason: str, submitting: bool) -> JobError:
    return JobError(
        f"cannot reach the Ray Jobs API at {url!r}: the address is unreachable ({reason}). Is the head running with "
        f"its dashboard (ray start --head --dashboard-host 0.0.0.0, port {DEFAULT_PORT}) and reachable from here?"
        + (" Nothing was uploaded" if submitting else "")
    )


def check_reachable(url: str, timeout: float = 5.0, *, submitting: bool = False) -> None:
    """Raise :class:`JobError` unless the Jobs API's host and port accept a connection (``submitting``: the error
    adds that nothing was uploaded)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        raise _unreachable(url, exc.strerror or str(exc), submitting) from None


def _token_sources() -> str:
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    return (
        "RAY_AUTH_TOKEN, "
        + (f"RAY_AUTH_TOKEN_PATH ({path})" if path else "RAY_AUTH_TOKEN_PATH")
        + (f" and {Path('~/.ray/auth_token').expanduser()}")
    )


def auth_headers() -> tuple[dict[str, str], str | None]:
    """The ``Authorization`` header for a cluster with token authentication, and where the token came from.

    The token is looked up as Ray does (``RAY_AUTH_TOKEN``, then the file named by ``RAY_AUTH_TOKEN_PATH``, then
    ``~/.ray/auth_token``). ``({}, None)`` when there is none, or when ``RAY_AUTH_MODE=disabled``.
    """
    if os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "disabled":
        return {}, None
    from ray._raylet import AuthenticationTokenLoader
    from ray.exceptions import AuthenticationError

    loader = AuthenticationTokenLoader.instance()
    loader.reset_cache()  # the environment or HOME may have changed since the last look
    try:
        if not loader.has_token(ignore_auth_mode=True):
            return {}, None
        token = loader.get_raw_token(ignore_auth_mode=True)
    except AuthenticationError as exc:
        first = str(exc).split(". Note:", 1)[0].split(". Ensure", 1)[0]
        raise JobError(f"cannot read the Ray authentication token: {first}") from None
    if os.environ.get("RAY_AUTH_TOKEN"):
        source = "RAY_AUTH_TOKEN"
    elif os.environ.get("RAY_AUTH_TOKEN_PATH"):
        source = f"RAY_AUTH_TOKEN_PATH ({os.environ['RAY_AUTH_TOKEN_PATH']})"
    else:
        source = str(Path("~/.ray/auth_token").expanduser())
    return {"Authorization": f"Bearer {token.strip()}"}, source


def _auth_message(url: str, detail: str, source: str | None) -> str:
    how = (
        "Copy the cluster's token to this machine: on the head node run `ray get-auth-token` and save its output "
        "to ~/.ray/auth_token here (or put it in RAY_AUTH_TOKEN, or a file named by RAY_AUTH_TOKEN_PATH)"
    )
    if "Authentication failed" in detail or "Invalid authentication token" in detail:
        return (
            f"the Ray cluster at {url} refused the authentication token from {source} (it is not the cluster's). " + how
        )
    if os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "disabled":
        return (
            f"the Ray cluster at {url} requires token authentication, and RAY_AUTH_MODE=disabled here sends no "
            f"token. Unset RAY_AUTH_MODE. {how}"
        )
    return (
        f"the Ray cluster at {url} requires token authentication and no token was found on this machine "
        f"(looked in {_token_sources()}). {how}"
    )


@contextlib.contextmanager
def _without_address_env():
    """Ray's client lets RAY_ADDRESS / RAY_API_SERVER_ADDRESS override its argument; the resolved address wins."""
    saved = {k: os.environ.pop(k) for k in ADDRESS_ENV if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def connect(address: str | None = None, *, submitting: bool = False):
    """A ``JobSubmissionClient`` for the cluster at ``address`` (see :func:`resolve_address`), checked: the
    address answers, the Jobs API is there and accepts this machine's token. Returns ``(client, url)``.
    ``submitting``: connecting to submit a job (an error says that nothing was uploaded)."""
    url = resolve_address(address)
    check_reachable(url, submitting=submitting)
    headers, source = auth_headers()
    try:
        from ray.exceptions import AuthenticationError
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:  # pragma: no cover - a pinned dependency
        raise JobError(f"the Ray Jobs API needs ray[default] (pip install 'ray[default]'): {exc}") from None
    with _without_address_env():
        try:
            client = JobSubmissionClient(url, headers=dict(headers))
        except AuthenticationError as exc:
            raise JobError(_auth_message(url, str(exc), source)) from None
        except ConnectionError as exc:
            raise _unreachable(url, str(exc) or "connection failed", submitting) from None
        except RuntimeError as exc:
            raise JobError(f"the Ray Jobs API at {url!r} did not answer as expected: {exc}") from None
    return client, url


# ---- the job ----------------------------------------------------------------------------------------
@dataclass
class JobSpec:
    """What :func:`submit` sends: the entrypoint, the runtime environment (its ``working_dir`` a local staging
    directory, removed by :meth:`cleanup`) and where the run directory will be."""

    command: str
    submission_id: str
    entrypoint: str
    runtime_env: dict
    run: str
    """The run directory the job writes (a storage URL or path; ``$HOME/...`` on the cluster without storage)."""
    stored: bool
    """True when ``run`` is in run storage (``--storage`` / ``run.storage``), so :func:`fetch_run` can copy it."""
    notes: list[str] = field(default_factory=list)

    def cleanup(self) -> None:
        shutil.rmtree(self.runtime_env.get("working_dir", ""), ignore_errors=True)


def _submission_id(command: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"genetic-sizer-{command}-{stamp}-{secrets.token_hex(3)}"


def _ship_data(config, staging: Path, notes: list[str]):
    """Copy the price file ``data.path`` names into the staging directory; returns the config, with
    ``data.path`` rewritten when the file could not keep its relative path."""
    from genetic_sizer.config import RunConfig

    path = config.data.path
    if path is None or storage.is_url(path):
        return config
    p = Path(path).expanduser()
    if not p.is_file():
        if p.is_absolute():
            notes.append(f"data.path {path} is not on this machine; the job reads it on the cluster")
            return config
        if (staging / p).is_file():
            return config  # in --working-dir
        raise JobError(f"data.path {path!r} is not a file on this machine or in --working-dir; nothing was submitted")
    rel = None
    if not p.is_absolute():
        resolved = p.resolve()
        with contextlib.suppress(ValueError):
            rel = resolved.relative_to(Path.cwd().resolve())
    if rel is None:
        rel = Path(JOB_DIR) / "data" / p.name
        notes.append(f"data.path {path} is shipped as {rel.as_posix()} (the job's data.path)")
    target = staging / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(p, target)
    if rel.as_posix() == path:
        return config
    raw = config.to_dict()
    raw["data"]["path"] = rel.as_posix()
    return RunConfig.from_dict(raw)


def prepare(
    command: str = "evolve",
    config_path: str | None = None,
    overrides=(),
    *,
    storage_url: str | None = None,
    working_dir: str | None = None,
    resume: str | None = None,
    no_plots: bool = False,
    python: str | None = None,
) -> JobSpec:
    """Validate a run here and build its job: the entrypoint (``PYTHON -m genetic_sizer COMMAND ...``, ``python``
    naming the cluster's interpreter, default :data:`PYTHON`), and a staging ``working_dir`` holding the resolved
    config (``_genetic_sizer_job/config.yaml``), the price file and ``working_dir``'s files.

    ``resume`` is a stored run (a URL or a path on the cluster) to continue instead: no config is shipped.
    Nothing is sent; bad input is a :class:`~genetic_sizer.errors.ConfigError` or :class:`JobError`.
    """
    import yaml

    from genetic_sizer.config import load_config

    if command not in COMMANDS:
        raise JobError(f"the job command must be one of {list(COMMANDS)}, got {command!r}")
    python = PYTHON if python is None else python.strip()
    if not python:
        raise JobError("--python must name the cluster's Python interpreter (a path or a command), got ''")
    sid = _submission_id(command)
    notes: list[str] = []
    parallel = ["--set", "parallel.backend=ray", "--set", "parallel.address=null"]
    if resume is not None:
        if config_path is not None or overrides:
            raise JobError("--resume continues a stored run with its saved config; leave out --config and --set")
        run, stored = resume.rstrip("/"), True
        args = [command, "--resume", "--out", run, *parallel]
        config = None
    else:
        # evaluated on the cluster the job runs on (Ray sets RAY_ADDRESS in the job); a bad config fails here
        config = load_config(config_path, [*overrides, "parallel.backend=ray", "parallel.address=null"])
        base = storage_url or config.run.storage
        stored = base is not None
        run = str(storage.join(base, sid)) if stored else f"{LOCAL_RUNS}/{sid}"
        args = [command, "--config", f"{JOB_DIR}/config.yaml", "--out", run]
    if no_plots:
        args.append("--no-plots")
    staging = Path(tempfile.mkdtemp(prefix="genetic-sizer-job-"))
    try:
        if working_dir is not None:
            src = Path(working_dir)
            if not src.is_dir():
                raise JobError(f"--working-dir {working_dir!r} is not a directory")
            shutil.copytree(src, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_IGNORED))
        (staging / JOB_DIR).mkdir(exist_ok=True)
        if config is not None:
            config = _ship_data(config, staging, notes)
            raw = config.to_dict()
            (staging / JOB_DIR / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    quoted = [shlex.quote(a) for a in args]
    if not stored:  # let the job's shell expand $HOME on the cluster
        quoted[quoted.index(shlex.quote(run))] = f'"{run}"'
    entrypoint = f"{shlex.quote(python)} -m genetic_sizer " + " ".join(quoted)
    return JobSpec(command, sid, entrypoint, {"working_dir": str(staging)}, run, stored, notes)


def submit(client, spec: JobSpec) -> str:
    """Submit ``spec`` (uploading its working directory) and return the job's submission id."""
    try:
        return client.submit_job(
            entrypoint=spec.entrypoint,
            runtime_env=spec.runtime_env,
            submission_id=spec.submission_id,
            metadata={"genetic_sizer": spec.command, "run": spec.run},
        )
    except Exception as exc:
        raise JobError(f"the cluster refused the job: {exc}") from None
    finally:
        spec.cleanup()


@dataclass(frozen=True)
class JobReport:
    """A job's state as the Jobs API reports it."""

    job_id: str
    status: str
    message: str | None
    entrypoint: str
    run: str | None
    start_time: float | None = None
    end_time: float | None = None
    driver_exit_code: int | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def seconds(self) -> float | None:
        if self.start_time is None:
            return None
        end = self.end_time or time.time() * 1000
        return (end - self.start_time) / 1000.0


def _call(what: str, fn, *args):
    try:
        return fn(*args)
    except Exception as exc:
        raise JobError(f"{what}: {exc}") from None


def _not_installed(client, job_id: str, exit_code: int | None, message: str | None) -> str | None:
    """Why a failed job could not start genetic_sizer, or None: the shell's exit code 127 (the interpreter or
    command not found) or Python's ``No module named genetic_sizer`` (in Ray's message, else in the job's logs)."""
    missing = "No module named genetic_sizer"
    message = message or ""
    if exit_code == 127 or "exit code 127" in message:
        why = "the job's command was not found on the cluster (exit code 127)"
    elif missing in message or missing in _logs_or_empty(client, job_id):
        why = f"the job's Python says {missing!r}"
    else:
        return None
    return (
        f"{NOT_INSTALLED}: {why}. Install genetic_sizer in the cluster's image (configs/cluster/Dockerfile) or its "
        "runtime_env, or name the interpreter that has it with --python PATH"
    )


def _logs_or_empty(client, job_id: str) -> str:
    try:
        return client.get_job_logs(job_id)
    except Exception:
        return ""


def job_report(client, job_id: str) -> JobReport:
    """The job's status, message, entrypoint and run directory. A job that failed because genetic_sizer could not
    start on the cluster has the message :data:`NOT_INSTALLED` (with why and what to do)."""
    info = _call(f"cannot read job {job_id!r}", client.get_job_info, job_id)
    status = str(getattr(info.status, "value", info.status))
    message = info.message
    if status == "FAILED":
        message = _not_installed(client, job_id, info.driver_exit_code, message) or message
    return JobReport(
        job_id=job_id,
        status=status,
        message=message,
        entrypoint=info.entrypoint,
        run=(info.metadata or {}).get("run"),
        start_time=info.start_time,
        end_time=info.end_time,
        driver_exit_code=info.driver_exit_code,
    )


def follow(client, job_id: str, out=None, poll: float = 1.0) -> JobReport:
    """Print the job's logs as they come (from the start) until the job ends; return its final state."""
    out = out or sys.stdout
    logging.getLogger("ray.dashboard.modules.job.sdk").setLevel(logging.WARNING)  # not "WebSocket closed" at INFO

    async def tail():
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    try:
        asyncio.run(tail())
    except RuntimeError as exc:  # the connection closed early: the status below still tells how the job ended
        out.write(f"(log stream interrupted: {exc})\n")
    report = job_report(client, job_id)
    while not report.done:
        time.sleep(poll)
        report = job_report(client, job_id)
    return report


def logs(client, job_id: str) -> str:
    """Everything the job printed so far."""
    return _call(f"cannot read the logs of job {job_id!r}", client.get_job_logs, job_id)


def stop(client, job_id: str) -> bool:
    """Ask the cluster to stop the job; False when it had already ended."""
    return bool(_call(f"cannot stop job {job_id!r}", client.stop_job, job_id))


def fetch_run(run: str, out: str | os.PathLike) -> Path:
    """Copy the finished run stored at ``run`` to the new local directory ``out``."""
    return storage.download(run, out)


def submit_run(
    command: str = "evolve",
    config_path: str | None = None,
    overrides=(),
    *,
    address: str | None = None,
    storage_url: str | None = None,
    working_dir: str | None = None,
    resume: str | None = None,
    no_plots: bool = False,
    python: str | None = None,
    out: str | os.PathLike | None = None,
    wait: bool = True,
    on_event: Callable[..., None] | None = None,
) -> JobReport | None:
    """``genetic-sizer submit``: connect to the cluster at ``address``, :func:`prepare` the job, submit it and,
    with ``wait``, follow its logs until it ends; with ``out``, copy the finished run from run storage there.
    Returns the job's final report (None without ``wait``).

    ``out`` must be a new or empty directory and the run must go to run storage (``storage_url`` or
    ``run.storage``), both checked before anything is uploaded (:class:`ConfigError`). ``on_event(kind, **info)``
    is told how it goes: ``"note"`` (``text``) for each of the job's notes, ``"submitting"`` (``submission_id``,
    ``url``), ``"submitted"`` (``job_id``, ``url``, ``run``, ``stored``), ``"following"`` (``job_id``, ``url``),
    ``"succeeded"`` (``job_id``, ``seconds`` followed) and ``"fetched"`` (``run``, ``path``).
    """
    tell = on_event or (lambda kind, **info: None)
    if out is not None:
        target = Path(out)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise ConfigError(f"--out {out!r} exists and is not an empty directory (nothing is overwritten)")
    client, url = connect(address, submitting=True)  # an unreachable address or a refused token: before any upload
    spec = prepare(
        command,
        config_path,
        overrides,
        storage_url=storage_url,
        working_dir=working_dir,
        resume=resume,
        no_plots=no_plots,
        python=python,
    )
    if out is not None and not spec.stored:
        spec.cleanup()
        raise ConfigError(
            "--out copies the finished run back from run storage: give --storage URL (or run.storage in the "
            "config), a place the cluster writes and this machine reads, e.g. s3://bucket/runs"
        )
    for note in spec.notes:
        tell("note", text=note)
    tell("submitting", submission_id=spec.submission_id, url=url)
    job_id = submit(client, spec)
    tell("submitted", job_id=job_id, url=url, run=spec.run, stored=spec.stored)
    if not wait:
        return None
    t0 = time.perf_counter()
    tell("following", job_id=job_id, url=url)
    report = follow(client, job_id)
    if report.succeeded:
        tell("succeeded", job_id=job_id, seconds=time.perf_counter() - t0)
        if out is not None:
            tell("fetched", run=spec.run, path=fetch_run(spec.run, out))
    return report

"""A run directory: the one owner of a run's paths and files.

Layout::

    config.yaml                      the resolved configuration, written when the run is created
    checkpoint.json                  the last checkpointed generation (after the first, every
                                     ``run.checkpoint_every`` seconds, the last, and when interrupted): counters,
                                     random states, logbook, seeds, and the name and SHA-256 of the arrays file
    checkpoint-<gen>-<sha12>.npz     population, fitness, crowding distances, the hall of fame / Pareto front,
                                     Python's random state, the seeded classical allocations (and, for a run
                                     that evolves strategy genes, the genes of the population and the archive)
    logbook.csv                      one row per generation (written with each checkpoint)
    hall_of_fame.csv | pareto.csv    every metric and weight of each member      (written by finalize)
    summary.csv, *.png               champion beside the classical allocations     (written by finalize)
    champion.json                    written last by finalize: present means the results are complete

Which directory may be used (:meth:`RunDir.check_new`, :meth:`RunDir.open_existing`, :func:`plan_new`,
:func:`plan_resume`; the command line only calls these):

* a new run goes into a path that does not exist, an empty directory, or a directory holding nothing but
  the same configuration's ``config.yaml`` (a run interrupted before its first generation finished).
  Anything else is refused with a :class:`~genetic_sizer.errors.RunDirError` naming the path: a file, a
  non-empty directory that is not a run, a run that already has a checkpoint (resume it instead);
* a run is resumed from a directory with ``config.yaml``; without a checkpoint it starts at generation 0. A
  run is resumed by the command that made it (:func:`run_kind`): ``walkforward --resume`` refuses an evolve run
  and ``evolve --resume`` a walk-forward run, before anything is read or written;
* a directory that does not accept new files (read-only, another user's, a read-only file system) is refused
  before the run starts, naming it;
* ``checkpoint.pkl``, the pickle checkpoint of earlier genetic_sizer versions, is refused and never unpickled
  (reading a pickle runs whatever code it holds).

The checkpoint holds only arrays, numbers, strings and random states, in JSON and an ``.npz`` read with
``np.load(allow_pickle=False)``. It is written in an order that survives the process dying anywhere: the
arrays under a new name, then ``checkpoint.json`` naming them (each written to a temporary file and renamed),
then the old arrays are removed; each file and then its directory are ``fsync``-ed before the next step
(:mod:`genetic_sizer.storage.files`), so after a power failure ``checkpoint.json`` never names arrays that were
lost, and the checkpoint is never older than a logbook written after it. Reading checks the format and version,
every key, type, shape and dtype, that fitness values are finite and that the arrays file has the SHA-256 recorded
in the JSON; any mismatch is a :class:`~genetic_sizer.errors.CheckpointError` naming the file and what is wrong.

A run directory may also live at a storage URL (``s3://bucket/prefix``, ``gs://...``, ``file:///nfs/runs/x``):
``RunDir(url)`` works in a local staging directory (``path``) that :mod:`genetic_sizer.storage.remote` mirrors to the
URL after the config, every checkpoint and logbook, and the results are written (:meth:`RunDir.sync`), and
pulls from on resume. The same rules decide which prefix a new run may use (a new or empty prefix, or one
holding only the same config's ``config.yaml``) and the same checks guard the checkpoint read back. A run
directory inside a stored run (:func:`nested`: a walk-forward fold's evolution, ``folds/fold-NNN``) shares its
staging directory and is pushed with it, so its checkpoints are stored as they are written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from genetic_sizer.config import RunConfig, apply_overrides, load_config, read_yaml
from genetic_sizer.errors import CheckpointError, ConfigError, RunDirError
from genetic_sizer.evolution.checkpoint import Checkpoint
from genetic_sizer.runs import checkpoint
from genetic_sizer.storage import files
from genetic_sizer.storage import remote as storage

__all__ = [
    "RunDir",
    "RunPlan",
    "check_kind",
    "config_differences",
    "discard_unstarted",
    "nested",
    "plan_new",
    "plan_resume",
    "plan_run",
    "remove_tree",
    "run_kind",
]


def _check_new_remote(rd: RunDir, config: RunConfig) -> None:
    """The rules of :meth:`check_new` for the files stored at the URL; the staging directory is emptied."""
    remote = rd._stage.remote
    where = rd.url
    if remote.is_file():
        raise RunDirError(f"run storage {where!r} is a file; give a prefix that is new or empty")
    stored = remote.listing()
    if rd.LEGACY_CHECKPOINT in stored:
        rd._stage.pull(force=True)
        rd._refuse_legacy()
    if rd.CHECKPOINT in stored:
        raise RunDirError(
            f"{where} already holds a run; continue it with --resume (genetic-sizer evolve --resume --out {where}) "
            "or choose another --out"
        )
    names = sorted(
        n for n in stored if files.TMP_MARK not in n.rsplit("/", 1)[-1] and not checkpoint.ARRAYS_NAME.fullmatch(n)
    )
    if names == [rd.CONFIG]:
        text = remote.read_bytes(rd.CONFIG).decode("utf-8", errors="replace")
        try:
            from genetic_sizer.config import parse_yaml

            saved = RunConfig.from_dict(parse_yaml(text, f"{where}/{rd.CONFIG}"))
        except ConfigError as exc:
            raise RunDirError(
                f"{where} holds a {rd.CONFIG} that is not a run's ({exc}); choose a new or empty prefix for --out"
            ) from None
        if saved.sha256() != config.sha256():
            raise RunDirError(
                f"{where} holds a run of another configuration (its {rd.CONFIG} differs) that never finished a "
                "generation; choose another --out, or delete it"
            )
    elif names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise RunDirError(
            f"{where} is not empty ({shown}) and is not a run to resume; choose a new or empty prefix for --out "
            "(nothing there is overwritten)"
        )
    rd._stage.reset()


def _check_writable(p: Path) -> None:
    try:
        files.check_writable(p, "run directory", directory=True)
    except ConfigError as exc:
        raise RunDirError(str(exc).replace("choose a directory", "choose an --out")) from None


_KINDS = {"evolve": "an evolve run", "walkforward": "a walk-forward run"}
"""What :func:`run_kind` names, in words."""


@dataclass(frozen=True)
class RunPlan:
    """Where an ``evolve`` command runs and how: ``resume`` continues from the checkpoint; otherwise the run
    starts at generation 0 (a new directory, or a run interrupted before its first checkpoint)."""

    run_dir: RunDir
    config: RunConfig
    resume: bool


class RunDir:
    """The files of one run (see the module docstring). Construct with a path; :meth:`create` and
    :meth:`open_existing` add the checks of a new or an existing run."""

    CONFIG = "config.yaml"
    CHECKPOINT = "checkpoint.json"
    LEGACY_CHECKPOINT = "checkpoint.pkl"
    LOGBOOK = "logbook.csv"
    CHAMPION = "champion.json"
    SUMMARY = "summary.csv"
    HALL_OF_FAME = "hall_of_fame.csv"
    PARETO = "pareto.csv"
    VALUES = "values.csv"
    """Every allocation's value per bar, in sample and on the held-out window (an evolve run)."""
    WALKFORWARD = "walkforward.json"
    """A walk-forward run's record: settings, folds, out-of-sample metrics."""
    OOS_VALUES = "oos_values.csv"
    """A walk-forward run's stitched out-of-sample value of every strategy per bar."""

    def __init__(self, path: str | Path | RunDir):
        self.url: str | None = None
        """The storage URL the run lives at, or None for a local directory."""
        self._stage = None
        self._nested = False  # inside a stored run's staging directory (:func:`nested`), synced with it
        if isinstance(path, RunDir):
            self.path, self.url, self._stage, self._nested = path.path, path.url, path._stage, path._nested
        elif storage.is_url(path):
            self._stage = storage.stage_for(path)
            self.url, self.path = self._stage.url, self._stage.local
        else:
            self.path = Path(path)

    @property
    def location(self) -> str:
        """Where the run lives: its URL, or its local path."""
        return self.url or str(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return self.location

    def __repr__(self) -> str:
        return f"RunDir({self.location!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RunDir) and (other.url, other.path) == (self.url, self.path)

    def __hash__(self) -> int:
        return hash((self.url, self.path))

    # ---- storage -----------------------------------------------------------------------------
    def sync(self) -> None:
        """Push what changed to the run's storage URL (no-op for a local run directory); see
        :mod:`genetic_sizer.storage.remote` for the order that keeps the stored run consistent."""
        if self._stage is not None:
            self._stage.sync()

    def pull(self) -> None:
        """A run at a storage URL: copy it into the staging directory unless this process already has it (no-op
        for a local run directory). Reading the config or the checkpoint does it; call it before reading other
        files of a stored run directly (``rd.path / ...``)."""
        if self._stage is not None and not self._stage.pulled:
            self._stage.pull()

    _pull = pull

    def _at_url(self, exc: Exception) -> Exception:
        """``exc`` with the staging directory's path replaced by the storage URL (errors name the stored file)."""
        if self.url is None:
            return exc
        return type(exc)(str(exc).replace(str(self.path), self.url))

    # ---- paths -------------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        """The path of ``name`` inside the run directory."""
        return self.path / name

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def checkpoint_path(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def logbook_path(self) -> Path:
        return self.path / self.LOGBOOK

    @property
    def champion_path(self) -> Path:
        return self.path / self.CHAMPION

    @property
    def summary_path(self) -> Path:
        return self.path / self.SUMMARY

    def members_path(self, multi_objective: bool) -> Path:
        """``pareto.csv`` for an NSGA-II run, ``hall_of_fame.csv`` otherwise."""
        return self.path / (self.PARETO if multi_objective else self.HALL_OF_FAME)

    @property
    def is_run(self) -> bool:
        """The directory holds a run's ``config.yaml``."""
        return self.config_path.is_file()

    @property
    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def _refuse_legacy(self) -> None:
        legacy = self.path / self.LEGACY_CHECKPOINT
        if legacy.exists():
            raise CheckpointError(
                f"{legacy} is a checkpoint of an earlier genetic_sizer, a pickle, which is never read "
                "(unpickling runs whatever code the file holds). Finish that run with the version that started "
                "it, or start a new run in another directory"
            )

    # ---- new and existing runs ---------------------------------------------------------------
    @classmethod
    def check_new(cls, path: str | Path | RunDir, config: RunConfig) -> RunDir:
        """The run directory a new run of ``config`` may use at ``path``, or :class:`RunDirError` saying why
        not (a directory that does not accept new files included). Nothing is left behind; see :meth:`create`."""
        rd = cls(path)
        if rd.url is not None and not rd._nested:
            _check_new_remote(rd, config)
        p = rd.path
        if p.exists() and not p.is_dir():
            raise RunDirError(f"run directory {str(p)!r} is a file; give a directory that is new or empty")
        for parent in p.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise RunDirError(f"run directory {str(p)!r}: {str(parent)!r} is a file, not a directory")
                break
        _check_writable(p)  # a read-only directory (or file system): refused before the run starts
        if not p.exists():
            return rd
        rd._refuse_legacy()
        if rd.has_checkpoint:
            raise RunDirError(
                f"{p} already holds a run; continue it with --resume (genetic-sizer evolve --resume --out {p}) "
                "or choose another --out"
            )
        # our own leftovers: temporary files, and arrays a crash kept checkpoint.json from naming
        names = sorted(
            x.name for x in p.iterdir() if files.TMP_MARK not in x.name and not checkpoint.ARRAYS_NAME.fullmatch(x.name)
        )
        if not names:
            return rd
        if names == [cls.CONFIG]:
            try:
                saved = rd.load_config()
            except ConfigError as exc:  # a user's file of the same name
                raise RunDirError(
                    f"{p} holds a {cls.CONFIG} that is not a run's ({exc}); choose a new or empty directory for --out"
                ) from None
            if saved.sha256() == config.sha256():
                return rd  # interrupted before its first generation finished: start it again
            raise RunDirError(
                f"{p} holds a run of another configuration (its {cls.CONFIG} differs) that never finished a "
                "generation; choose another --out, or delete it"
            )
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise RunDirError(
            f"{p} is not empty ({shown}) and is not a run to resume; choose a new or empty directory for --out "
            "(nothing there is overwritten)"
        )

    @classmethod
    def create(cls, path: str | Path | RunDir, config: RunConfig) -> RunDir:
        """Check ``path`` as :meth:`check_new` does, create the directory and save ``config.yaml`` (``_created``:
        whether the directory was made too; :func:`discard_unstarted` takes back a run that never ran)."""
        rd = cls.check_new(path, config)
        made = not rd.path.exists()
        try:
            rd.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create the run directory {str(rd.path)!r}: {exc.strerror or exc}") from None
        if not rd.is_run:
            rd.write_config(config)
            rd._created = made
        return rd

    @classmethod
    def open_existing(cls, path: str | Path | RunDir) -> RunDir:
        """An existing run (a directory with ``config.yaml``), or :class:`RunDirError` saying why not. A run at a
        storage URL is copied into its staging directory first (once per process)."""
        rd = cls(path)
        if rd.url is not None and not rd._nested:
            if rd._stage.remote.is_file():
                raise RunDirError(f"{rd.url!r} is a file, not a run directory")
            if not rd._stage.pulled:
                stored = rd._stage.remote.listing()
                if not stored:
                    raise RunDirError(f"no run directory at {rd.url!r}")
                if cls.CONFIG not in stored and cls.LEGACY_CHECKPOINT not in stored:
                    raise RunDirError(f"{rd.url} is not a run directory (no {cls.CONFIG})")
                rd._stage.pull()
        p = rd.path
        if not p.exists():
            raise RunDirError(f"no run directory at {str(p)!r}")
        if not p.is_dir():
            raise RunDirError(f"{str(p)!r} is a file, not a run directory")
        rd._refuse_legacy()
        if not rd.is_run:
            raise RunDirError(f"{p} is not a run directory (no {cls.CONFIG})")
        return rd

    # ---- config ------------------------------------------------------------------------------
    def load_config(self, overrides=()) -> RunConfig:
        """The saved configuration with ``key.path=value`` overrides applied."""
        self._pull()
        try:
            raw = read_yaml(self.config_path)
        except ConfigError as exc:
            raise self._at_url(exc) from None
        try:
            saved = RunConfig.from_dict(raw)
        except ConfigError as exc:
            raise self._at_url(RunDirError(f"{self.config_path} is not a valid run configuration: {exc}")) from None
        return RunConfig.from_dict(apply_overrides(raw, overrides)) if overrides else saved

    def write_config(self, config: RunConfig) -> Path:
        import yaml

        text = yaml.safe_dump(config.to_dict(), sort_keys=False)
        path = files.write_text(self.config_path, text, "run config", durable=True)
        self.sync()
        return path

    # ---- writing results ---------------------------------------------------------------------
    @contextmanager
    def atomic(self, name: str) -> Iterator[Path]:
        """A temporary path to write the run's file ``name`` to (renamed over it when the block succeeds)."""
        with files.atomic_path(self.path / name) as tmp:
            yield tmp

    def write_text(self, name: str, text: str) -> Path:
        return files.write_text(self.path / name, text)

    def write_csv(self, name: str, rows: list[list]) -> Path:
        """Rows (the first one the header) as CSV, atomically."""
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        return self.write_text(name, buf.getvalue())

    def write_logbook(self, rows: list[dict]) -> Path:
        """The logbook as CSV (deterministic: no timings; floats as ``repr``), rewritten atomically."""
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
            writer.writeheader()
            for r in rows:
                writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in r.items()})
        path = self.write_text(self.LOGBOOK, buf.getvalue())
        self.sync()
        return path

    # ---- checkpoints -------------------------------------------------------------------------
    def write_checkpoint(self, cp: Checkpoint) -> Path:
        """Write ``cp`` (:func:`genetic_sizer.runs.checkpoint.write`: the arrays under a new name, then
        ``checkpoint.json`` naming them, then the previous arrays removed). Returns the path of ``checkpoint.json``."""
        checkpoint.write(self.path, self.checkpoint_path, cp)
        self.sync()  # a run at a storage URL: the arrays, then checkpoint.json, then the old arrays' removal
        return self.checkpoint_path

    def checkpoint_generation(self) -> int | None:
        """The generation the checkpoint reached, or None when there is no readable checkpoint."""
        try:
            return self.read_checkpoint().generation
        except CheckpointError:
            return None

    def read_checkpoint(self) -> Checkpoint:
        """Read and validate the checkpoint; :class:`CheckpointError` names the file and what is wrong (a run at a
        storage URL is pulled first, and its errors name the stored file)."""
        self._pull()
        try:
            return self._read_checkpoint()
        except CheckpointError as exc:
            raise self._at_url(exc) from None

    def _read_checkpoint(self) -> Checkpoint:
        self._refuse_legacy()
        if not self.checkpoint_path.is_file():
            raise CheckpointError(f"cannot resume: no checkpoint in {self.path} ({self.CHECKPOINT} is missing)")
        return checkpoint.read(self.path, self.checkpoint_path)


def nested(rd: RunDir, rel: str) -> RunDir:
    """The run directory ``rel`` inside ``rd`` (a walk-forward fold's evolution, ``folds/fold-NNN``). For a run at a
    storage URL it lives in ``rd``'s staging directory and goes to ``<url>/<rel>`` with every :meth:`RunDir.sync`
    (its checkpoints, in the order that keeps the stored run consistent): a job that is stopped resumes it from the
    last stored checkpoint. The rules of a new run apply to its local copy."""
    sub = RunDir(rd.path / rel)
    if rd._stage is not None:
        sub._stage, sub._nested, sub.url = rd._stage, True, f"{rd.url}/{rel.strip('/')}"
    return sub


def remove_tree(rd: RunDir, rel: str) -> None:
    """Delete the folder ``rel`` of the run ``rd`` (here and, for a run at a storage URL, every file stored under it,
    whoever stored it)."""
    if rd._stage is not None:
        rd._stage.remove_tree((rd.path / rel).relative_to(rd._stage.local).as_posix())
    else:
        shutil.rmtree(rd.path / rel, ignore_errors=True)


def plan_new(out: str | Path, config: RunConfig) -> RunPlan:
    """A new run of ``config`` in ``out`` (checked, not yet created: :func:`genetic_sizer.runs.evolve.evolve` creates
    it once the config, the data and the genome space are validated)."""
    return RunPlan(RunDir.check_new(out, config), config, resume=False)


# ---- which command made a run, and a run that never started -----------------------------------------------------
FOLDS = "folds"
"""A walk-forward run's folder of fold results (and of running folds' evolutions)."""
EVOLVE_FILES = (RunDir.CHECKPOINT, RunDir.LOGBOOK, RunDir.HALL_OF_FAME, RunDir.PARETO, RunDir.SUMMARY, RunDir.VALUES)
"""Files only an evolve run has at its top level."""


def run_kind(rd: RunDir) -> str | None:
    """Which command made the run in ``rd``: ``"walkforward"`` (``walkforward.json`` or ``folds/``), ``"evolve"`` (a
    checkpoint, a logbook or an evolution's results at the top level), or None when nothing tells (only
    ``config.yaml``: a run stopped before anything else was written, which either command may start)."""
    if rd.file(RunDir.WALKFORWARD).is_file() or (rd.path / FOLDS).is_dir():
        return "walkforward"
    if any(rd.file(name).is_file() for name in EVOLVE_FILES):
        return "evolve"
    return None


def check_kind(rd: RunDir, kind: str) -> None:
    """Raise :class:`RunDirError` when the run in ``rd`` was made by another command than ``kind`` (``"evolve"`` or
    ``"walkforward"``): resuming an evolve run as a walk-forward would replace its ``champion.json`` with a fold's
    champion and write a walk-forward's files beside its own, and the other way round."""
    have = run_kind(rd)
    if have is None or have == kind:
        return
    where = rd.location
    raise RunDirError(
        f"{where} is {_KINDS[have]}; use {have} --resume (genetic-sizer {have} --resume --out {where}). "
        f"{kind} --resume continues only {_KINDS[kind]}; nothing in {where} was changed"
    )


def discard_unstarted(rd: RunDir) -> bool:
    """Take back what :meth:`RunDir.create` made when the run never started (a Ray address that fails, Ctrl-C
    before the first fold or generation wrote anything): if the directory holds nothing but the ``config.yaml`` that
    :meth:`~RunDir.create` wrote, remove it (here and at the storage URL) and the directory if ``create`` made it.
    A run that wrote anything else, or a ``config.yaml`` that was there before, is left as it is. Returns True when
    the run was removed."""
    made_dir = getattr(rd, "_created", None)
    if made_dir is None or not rd.path.is_dir():
        return False
    if [x.name for x in rd.path.iterdir() if files.TMP_MARK not in x.name] != [RunDir.CONFIG]:
        return False
    if rd._stage is not None and [n for n in rd._stage.remote.listing() if n != RunDir.CONFIG]:
        return False  # stored by another process: a walk-forward fold's checkpoints, written by its Ray task
    rd.config_path.unlink()
    rd._created = None
    rd.sync()  # a run at a storage URL: its config.yaml is deleted there too
    if made_dir:
        shutil.rmtree(rd.path, ignore_errors=True)
    return True


def config_differences(saved: RunConfig, given: RunConfig) -> list[str]:
    """The keys that make ``given`` a different run than ``saved`` (what :meth:`RunConfig.sha256` covers), compared
    key by key: ``"evolution.seed: saved 42, given 3"``, in the order of the config's sections."""
    from genetic_sizer.config import NON_SEMANTIC

    missing = object()
    out: list[str] = []

    def walk(a, b, key: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in [*a, *(k for k in b if k not in a)]:
                walk(a.get(k, missing), b.get(k, missing), f"{key}.{k}" if key else str(k))
        elif a != b or type(a) is not type(b):
            shown = ("(absent)" if v is missing else repr(v) for v in (a, b))
            out.append("{}: saved {}, given {}".format(key, *shown))

    a, b = saved.to_dict(), given.to_dict()
    for section in a:
        if section not in NON_SEMANTIC:
            walk(a[section], b.get(section, missing), section)
    if saved.evolution.genes is None and given.evolution.genes is None:  # gene settings of a run without genes
        out = [d for d in out if not d.startswith(("evolution.gene_mutation_prob:", "evolution.gene_sigma:"))]
    return out


def plan_resume(out: str | Path, overrides=(), given: RunConfig | None = None, *, kind: str | None = None) -> RunPlan:
    """Continue the run in ``out`` with its saved configuration.

    ``overrides`` (``key.path=value``) and a ``given`` configuration may only change what does not change the
    results (``parallel.*``, ``run.*`` such as ``run.checkpoint_every``); anything else is a :class:`ConfigError`
    naming each key that differs, with its saved and its given value. With ``kind`` (``"evolve"`` or
    ``"walkforward"``, the command resuming), a run made by the other command is refused
    (:func:`check_kind`). Without a checkpoint (interrupted before the first generation finished) the run
    starts again at generation 0.
    """
    rd = RunDir.open_existing(out)
    if kind is not None:
        check_kind(rd, kind)
    _check_writable(rd.path)  # a resume writes checkpoints and results: a read-only run fails now, not later
    saved = rd.load_config()
    config = rd.load_config(overrides)
    for other in (config, given):
        if other is not None and other.sha256() != saved.sha256():
            diffs = config_differences(saved, other) or ["(a key the fingerprint covers)"]
            shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
            raise ConfigError(
                f"--resume: the given config differs from the one saved in {rd.location}/{rd.CONFIG}: {shown} "
                "(only parallel.* and run.* may change); resume with --out alone"
            )
    return RunPlan(rd, config, resume=rd.has_checkpoint)


def plan_run(
    config_path: str | Path | None = None,
    overrides=(),
    *,
    out: str | Path | None = None,
    resume: bool = False,
    kind: str = "evolve",
) -> RunPlan:
    """Where and how an ``evolve`` (or ``walkforward``, ``kind``) command runs: a new run of the config at
    ``config_path`` (None: the defaults) with ``overrides`` (``key.path=value``), or with ``resume`` the saved
    config of the run in ``out`` (:func:`plan_resume`: ``overrides`` and a given config may only change what does
    not change the results). A new run goes to ``out``, else ``<run.storage or runs>/<kind>-<UTC time>`` (a local
    path or a storage URL). Nothing is created here."""
    if resume:
        if out is None:
            raise ConfigError("--resume needs --out DIR, the run directory to continue")
        given = load_config(config_path, overrides) if config_path is not None else None
        return plan_resume(out, overrides, given, kind=kind)
    config = load_config(config_path, overrides)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    # out, else <run.storage>/<kind>-<time>: a local path or a storage URL (RunDir stages and syncs a URL)
    target = out if out else storage.join(config.run.storage or "runs", f"{kind}-{stamp}")
    return plan_new(target, config)


# ---- validation helpers --------------------------------------------------------------------------

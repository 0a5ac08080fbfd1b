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
* a run is resumed from a directory with ``config.yaml``; without a checkpoint it starts at generation 0;
* ``checkpoint.pkl``, the pickle checkpoint of earlier genetic_sizer versions, is refused and never unpickled
  (reading a pickle runs whatever code it holds).

The checkpoint holds only arrays, numbers, strings and random states, in JSON and an ``.npz`` read with
``np.load(allow_pickle=False)``. It is written in an order that survives the process dying anywhere: the
arrays under a new name, then ``checkpoint.json`` naming them (each written to a temporary file and renamed),
then the old arrays are removed. (It is not ``fsync``-ed, see :mod:`genetic_sizer.storage.files`: after a power
failure lost content shows up as a SHA-256 mismatch.) Reading checks the format and version, every key,
type, shape and dtype, that fitness values are finite and that the arrays file has the SHA-256 recorded
in the JSON; any mismatch is a :class:`~genetic_sizer.errors.CheckpointError` naming the file and what is wrong.

A run directory may also live at a storage URL (``s3://bucket/prefix``, ``gs://...``, ``file:///nfs/runs/x``):
``RunDir(url)`` works in a local staging directory (``path``) that :mod:`genetic_sizer.storage.remote` mirrors to the
URL after the config, every checkpoint and logbook, and the results are written (:meth:`RunDir.sync`), and
pulls from on resume. The same rules decide which prefix a new run may use (a new or empty prefix, or one
holding only the same config's ``config.yaml``) and the same checks guard the checkpoint read back.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genetic_sizer.storage import files
from genetic_sizer.storage import remote as storage
from genetic_sizer.config import RunConfig, apply_overrides, read_yaml
from genetic_sizer.errors import CheckpointError, ConfigError, RunDirError

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "Checkpoint", "RunDir", "RunPlan", "plan_new", "plan_resume"]

CHECKPOINT_FORMAT = "genetic_sizer/checkpoint"
CHECKPOINT_VERSION = 2
"""Version 1 was a pickle (``checkpoint.pkl``); it is refused, never read."""

_ARRAYS_NAME = re.compile(r"checkpoint-\d{6,}-[0-9a-f]{12}\.npz")
_ARRAY_KEYS = (
    "population",
    "fitness",
    "crowding",
    "archive",
    "archive_fitness",
    "py_random_state",
    "seed_allocations",
    "trial_keys",
    "trial_sample",
)
_GENE_ARRAY_KEYS = ("population_genes", "archive_genes")
"""Arrays a checkpoint holds only when the run evolves strategy genes (``n_genes`` > 0 in its header)."""
_PY_STATE_LEN = 625  # random.getstate()[1]: 624 words of Mersenne Twister state and the position


@dataclass
class Checkpoint:
    """Everything an evolution needs to continue exactly where it stopped.

    ``archive`` / ``archive_fitness`` are the hall of fame (or Pareto front) in DEAP's order, best first;
    ``crowding`` the NSGA-II crowding distance of each population member (NaN when none was assigned);
    ``np_rng`` the operators' ``numpy`` bit generator state (``Generator.bit_generator.state``); ``py_random``
    DEAP's ``random.getstate()``; ``seeds`` is empty or ``{"used": [names], "skipped": {name: reason},
    "allocations": {name: weights}}``; ``trials`` is :meth:`genetic_sizer.evolution.trials.Trials.state` (scalars, arrays;
    a trial's row is its weights followed by its genes). ``population_genes`` / ``archive_genes`` (n, n_genes)
    are the strategy genes of the population and the archive (zero columns for a run without genes).
    """

    config_sha256: str
    data_sha256: str
    generation: int
    evaluations: int
    elapsed: float
    population: np.ndarray
    fitness: np.ndarray
    crowding: np.ndarray
    archive: np.ndarray
    archive_fitness: np.ndarray
    logbook: list[dict]
    np_rng: dict
    py_random: tuple
    seeds: dict = field(default_factory=dict)
    trials: tuple[dict, dict] = field(default_factory=lambda: ({}, {}))
    population_genes: np.ndarray | None = None
    archive_genes: np.ndarray | None = None

    @property
    def n_genes(self) -> int:
        return 0 if self.population_genes is None else int(np.shape(self.population_genes)[1])

    # ---- to files ----------------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        n_assets = self.population.shape[1]
        allocations = self.seeds.get("allocations", {})
        seed_w = (
            np.stack([np.asarray(w, dtype=np.float64) for w in allocations.values()])
            if allocations
            else np.empty((0, n_assets))
        )
        genes = {}
        if self.n_genes:
            genes = {
                "population_genes": np.asarray(self.population_genes, dtype=np.float64),
                "archive_genes": np.asarray(self.archive_genes, dtype=np.float64).reshape(-1, self.n_genes),
            }
        return {
            **genes,
            "population": np.asarray(self.population, dtype=np.float64),
            "fitness": np.asarray(self.fitness, dtype=np.float64),
            "crowding": np.asarray(self.crowding, dtype=np.float64),
            "archive": np.asarray(self.archive, dtype=np.float64),
            "archive_fitness": np.asarray(self.archive_fitness, dtype=np.float64),
            "py_random_state": np.array(self.py_random[1], dtype=np.uint32),
            "seed_allocations": seed_w,
            "trial_keys": np.asarray(self.trials[1]["trial_keys"], dtype=np.uint64),
            "trial_sample": np.asarray(self.trials[1]["trial_sample"], dtype=np.float64).reshape(
                -1, n_assets + self.n_genes
            ),
        }

    def _header(self, arrays_name: str, arrays_sha256: str) -> dict:
        version, _words, gauss_next = self.py_random
        seeds = None
        if self.seeds:
            seeds = {
                "used": list(self.seeds["used"]),
                "skipped": dict(self.seeds["skipped"]),
                "allocations": list(self.seeds["allocations"]),
            }
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "arrays": arrays_name,
            "arrays_sha256": arrays_sha256,
            "config_sha256": self.config_sha256,
            "data_sha256": self.data_sha256,
            "generation": int(self.generation),
            "evaluations": int(self.evaluations),
            "elapsed": float(self.elapsed),
            "n_assets": int(self.population.shape[1]),
            "n_objectives": int(self.fitness.shape[1]),
            "n_genes": self.n_genes,
            "np_rng": self.np_rng,
            "py_random": {"version": int(version), "gauss_next": gauss_next},
            "seeds": seeds,
            "trials": self.trials[0],
            # a statistic over no live genome (every one wiped out) is NaN: null in JSON
            "logbook": [{k: None if _is_nan(v) else v for k, v in r.items()} for r in self.logbook],
        }


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

    def __init__(self, path: str | Path | RunDir):
        self.url: str | None = None
        """The storage URL the run lives at, or None for a local directory."""
        self._stage = None
        if isinstance(path, RunDir):
            self.path, self.url, self._stage = path.path, path.url, path._stage
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

    def _check_new_remote(self, config: RunConfig) -> None:
        """The rules of :meth:`check_new` for the files stored at the URL; the staging directory is emptied."""
        remote = self._stage.remote
        where = self.url
        if remote.is_file():
            raise RunDirError(f"run storage {where!r} is a file; give a prefix that is new or empty")
        stored = remote.listing()
        if self.LEGACY_CHECKPOINT in stored:
            self._stage.pull(force=True)
            self._refuse_legacy()
        if self.CHECKPOINT in stored:
            raise RunDirError(
                f"{where} already holds a run; continue it with --resume (genetic-sizer evolve --resume --out {where}) "
                "or choose another --out"
            )
        names = sorted(
            n for n in stored if files.TMP_MARK not in n.rsplit("/", 1)[-1] and not _ARRAYS_NAME.fullmatch(n)
        )
        if names == [self.CONFIG]:
            text = remote.read_bytes(self.CONFIG).decode("utf-8", errors="replace")
            try:
                from genetic_sizer.config import parse_yaml

                saved = RunConfig.from_dict(parse_yaml(text, f"{where}/{self.CONFIG}"))
            except ConfigError as exc:
                raise RunDirError(
                    f"{where} holds a {self.CONFIG} that is not a run's ({exc}); choose a new or empty prefix for --out"
                ) from None
            if saved.sha256() != config.sha256():
                raise RunDirError(
                    f"{where} holds a run of another configuration (its {self.CONFIG} differs) that never finished a "
                    "generation; choose another --out, or delete it"
                )
        elif names:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise RunDirError(
                f"{where} is not empty ({shown}) and is not a run to resume; choose a new or empty prefix for --out "
                "(nothing there is overwritten)"
            )
        self._stage.reset()

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
        not. Nothing is created; see :meth:`create`."""
        rd = cls(path)
        if rd.url is not None:
            rd._check_new_remote(config)
        p = rd.path
        if p.exists() and not p.is_dir():
            raise RunDirError(f"run directory {str(p)!r} is a file; give a directory that is new or empty")
        for parent in p.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise RunDirError(f"run directory {str(p)!r}: {str(parent)!r} is a file, not a directory")
                break
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
            x.name for x in p.iterdir() if files.TMP_MARK not in x.name and not _ARRAYS_NAME.fullmatch(x.name)
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
        """Check ``path`` as :meth:`check_new` does, create the directory and save ``config.yaml``."""
        rd = cls.check_new(path, config)
        try:
            rd.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create the run directory {str(rd.path)!r}: {exc.strerror or exc}") from None
        if not rd.is_run:
            rd.write_config(config)
        return rd

    @classmethod
    def open_existing(cls, path: str | Path | RunDir) -> RunDir:
        """An existing run (a directory with ``config.yaml``), or :class:`RunDirError` saying why not. A run at a
        storage URL is copied into its staging directory first (once per process)."""
        rd = cls(path)
        if rd.url is not None:
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
        """Write ``cp``: the arrays under a new name, then ``checkpoint.json`` naming them, then remove the
        previous arrays. Returns the path of ``checkpoint.json``."""
        buf = io.BytesIO()
        np.savez(buf, **cp._arrays())
        data = buf.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        name = f"checkpoint-{int(cp.generation):06d}-{sha[:12]}.npz"
        files.write_bytes(self.path / name, data, "checkpoint arrays")
        files.write_text(self.checkpoint_path, _header_text(cp._header(name, sha)), "checkpoint")
        for old in self.path.glob("checkpoint-*.npz"):
            if old.name != name:
                old.unlink(missing_ok=True)
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
        path = self.checkpoint_path
        if not path.is_file():
            raise CheckpointError(f"cannot resume: no checkpoint in {self.path} ({self.CHECKPOINT} is missing)")
        try:
            head = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from None
        _Check(path).header(head)
        arrays_path = self.path / head["arrays"]
        arrays = _load_arrays(arrays_path, head["arrays_sha256"])
        n_assets, n_obj, n_genes = head["n_assets"], head["n_objectives"], head.get("n_genes", 0)
        seed_names = head["seeds"]["allocations"] if head["seeds"] else []
        check = _Check(arrays_path)
        pop = check.array(arrays, "population", np.float64, (None, n_assets), finite=True)
        n = pop.shape[0]
        if n < 1:
            raise CheckpointError(f"{arrays_path}: population is empty")
        fit = check.array(arrays, "fitness", np.float64, (n, n_obj), finite=True)
        crowding = check.array(arrays, "crowding", np.float64, (n,))
        archive = check.array(arrays, "archive", np.float64, (None, n_assets), finite=True)
        archive_fit = check.array(arrays, "archive_fitness", np.float64, (archive.shape[0], n_obj), finite=True)
        words = check.array(arrays, "py_random_state", np.uint32, (_PY_STATE_LEN,))
        seed_w = check.array(arrays, "seed_allocations", np.float64, (len(seed_names), n_assets), finite=True)
        trials = head["trials"]
        keys = check.array(arrays, "trial_keys", np.uint64, (trials["n"],))
        sample = check.array(
            arrays, "trial_sample", np.float64, (min(trials["n"], trials["capacity"]), n_assets + n_genes), finite=True
        )
        if len(np.unique(keys)) != len(keys):
            raise CheckpointError(f"{arrays_path}: trial_keys holds duplicates")
        pop_genes = archive_genes = None
        if n_genes:
            pop_genes = check.array(arrays, "population_genes", np.float64, (n, n_genes), finite=True)
            archive_genes = check.array(arrays, "archive_genes", np.float64, (archive.shape[0], n_genes), finite=True)
        extra = sorted(set(arrays) - set(_ARRAY_KEYS) - (set(_GENE_ARRAY_KEYS) if n_genes else set()))
        if extra:
            raise CheckpointError(f"{arrays_path}: unexpected arrays {extra}")
        py_random = (head["py_random"]["version"], tuple(int(x) for x in words), head["py_random"]["gauss_next"])
        try:
            random.Random().setstate(py_random)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: py_random is not a valid random state ({exc})") from None
        seeds = {}
        if head["seeds"]:
            seeds = {
                "used": list(head["seeds"]["used"]),
                "skipped": dict(head["seeds"]["skipped"]),
                "allocations": {name: seed_w[k].copy() for k, name in enumerate(seed_names)},
            }
        return Checkpoint(
            config_sha256=head["config_sha256"],
            data_sha256=head["data_sha256"],
            generation=head["generation"],
            evaluations=head["evaluations"],
            elapsed=float(head["elapsed"]),
            population=pop,
            fitness=fit,
            crowding=crowding,
            archive=archive,
            archive_fitness=archive_fit,
            logbook=[{k: math.nan if v is None else v for k, v in r.items()} for r in head["logbook"]],
            np_rng=head["np_rng"],
            py_random=py_random,
            seeds=seeds,
            trials=(trials, {"trial_keys": keys, "trial_sample": sample}),
            population_genes=pop_genes,
            archive_genes=archive_genes,
        )


def _header_text(head: dict) -> str:
    """``checkpoint.json``'s text: the header indented, the logbook one generation per line (each row through
    ``json``'s C encoder: the header of a long run is written in a fraction of a millisecond)."""
    rest = {k: v for k, v in head.items() if k != "logbook"}
    text = json.dumps(rest, indent=1, allow_nan=False)
    rows = ",\n  ".join(json.dumps(r, allow_nan=False, separators=(", ", ": ")) for r in head["logbook"])
    logbook = f'"logbook": [\n  {rows}\n ]' if rows else '"logbook": []'
    return f"{text[:-2]},\n {logbook}\n}}\n" if rest else f"{{\n {logbook}\n}}\n"


# ---- plans: the decisions the command line asks for ----------------------------------------------
def plan_new(out: str | Path, config: RunConfig) -> RunPlan:
    """A new run of ``config`` in ``out`` (checked, not yet created: :func:`genetic_sizer.evolution.loop.evolve` creates
    it once the config, the data and the genome space are validated)."""
    return RunPlan(RunDir.check_new(out, config), config, resume=False)


def plan_resume(out: str | Path, overrides=(), given: RunConfig | None = None) -> RunPlan:
    """Continue the run in ``out`` with its saved configuration.

    ``overrides`` (``key.path=value``) and a ``given`` configuration may only change what does not change the
    results (``parallel.*``, ``run.*`` such as ``run.checkpoint_every``); anything else is a :class:`ConfigError`.
    Without a checkpoint (interrupted before the first generation finished) the run starts again at generation 0.
    """
    rd = RunDir.open_existing(out)
    saved = rd.load_config()
    config = rd.load_config(overrides)
    if config.sha256() != saved.sha256() or (given is not None and given.sha256() != saved.sha256()):
        raise ConfigError(
            f"--resume: the given config differs from the one saved in {rd.config_path} "
            "(only parallel.* and run.* may change); resume with --out alone"
        )
    return RunPlan(rd, config, resume=rd.has_checkpoint)


# ---- validation helpers --------------------------------------------------------------------------
def _reject_constant(name):
    raise ValueError(f"{name} is not a finite number")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool)) and math.isfinite(x)


def _is_nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


_STATISTIC = re.compile(r".+_(best|mean|std)$")
"""Logbook columns that are statistics over live genomes: null (NaN) when every genome was wiped out."""


class _Check:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, what: str):
        raise CheckpointError(f"{self.path}: {what}")

    def key(self, doc: dict, key: str, ok, expected: str, where: str = ""):
        if key not in doc:
            self.fail(f"missing field {where}{key!r}")
        if not ok(doc[key]):
            self.fail(f"field {where}{key!r} must be {expected}, got {doc[key]!r}"[:300])
        return doc[key]

    def header(self, head) -> None:
        if not isinstance(head, dict):
            self.fail(f"a checkpoint is a JSON object, got {type(head).__name__}")
        if head.get("format") != CHECKPOINT_FORMAT:
            self.fail(f"format is {head.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
        version = head.get("version")
        if version != CHECKPOINT_VERSION:
            newer = _is_int(version) and version > CHECKPOINT_VERSION
            self.fail(
                f"checkpoint version {version!r} is not {CHECKPOINT_VERSION}"
                + ("; it was written by a newer genetic_sizer" if newer else "")
            )
        sha = re.compile(r"[0-9a-f]{64}")
        self.key(
            head, "arrays", lambda v: isinstance(v, str) and _ARRAYS_NAME.fullmatch(v), "checkpoint-<gen>-<sha>.npz"
        )
        self.key(head, "arrays_sha256", lambda v: isinstance(v, str) and sha.fullmatch(v), "a SHA-256 hex digest")
        for k in ("config_sha256", "data_sha256"):
            self.key(head, k, lambda v: isinstance(v, str) and v, "a non-empty string")
        gen = self.key(head, "generation", lambda v: _is_int(v) and v >= 0, "an integer >= 0")
        evaluations = self.key(head, "evaluations", lambda v: _is_int(v) and v >= 0, "an integer >= 0")
        self.key(head, "elapsed", lambda v: _is_num(v) and v >= 0, "a finite number >= 0")
        self.key(head, "n_assets", lambda v: _is_int(v) and v >= 1, "an integer >= 1")
        self.key(head, "n_objectives", lambda v: _is_int(v) and v >= 1, "an integer >= 1")
        if "n_genes" in head:  # absent in checkpoints written before strategy genes: none
            self.key(head, "n_genes", lambda v: _is_int(v) and v >= 0, "an integer >= 0")
        rng = self.key(head, "np_rng", lambda v: isinstance(v, dict), "an object")
        try:
            np.random.PCG64().state = rng
        except (TypeError, ValueError, KeyError) as exc:
            self.fail(f"np_rng is not a PCG64 bit generator state ({exc})")
        py = self.key(head, "py_random", lambda v: isinstance(v, dict), "an object")
        self.key(py, "version", _is_int, "an integer", "py_random.")
        self.key(py, "gauss_next", lambda v: v is None or _is_num(v), "null or a finite number", "py_random.")
        seeds = self.key(head, "seeds", lambda v: v is None or isinstance(v, dict), "null or an object")
        if seeds is not None:
            names = lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)  # noqa: E731
            self.key(seeds, "used", names, "a list of names", "seeds.")
            self.key(seeds, "allocations", names, "a list of names", "seeds.")
            self.key(
                seeds,
                "skipped",
                lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
                "an object of reasons",
                "seeds.",
            )
        trials = self.key(head, "trials", lambda v: isinstance(v, dict), "an object")
        in_range = lambda v: _is_int(v) and 0 <= v <= evaluations  # noqa: E731
        self.key(trials, "n", in_range, "an integer in [0, evaluations]", "trials.")
        self.key(trials, "capacity", lambda v: _is_int(v) and v >= 1, "an integer >= 1", "trials.")
        self.key(trials, "mean", _is_num, "a finite number", "trials.")
        self.key(trials, "m2", lambda v: _is_num(v) and v >= 0, "a finite number >= 0", "trials.")
        trial_rng = self.key(trials, "rng", lambda v: isinstance(v, dict), "an object", "trials.")
        try:
            np.random.PCG64().state = trial_rng
        except (TypeError, ValueError, KeyError) as exc:
            self.fail(f"trials.rng is not a PCG64 bit generator state ({exc})")
        logbook = self.key(head, "logbook", lambda v: isinstance(v, list), "a list")
        if len(logbook) != gen + 1:
            self.fail(f"the logbook has {len(logbook)} rows for generation {gen} (expected {gen + 1})")
        for i, rec in enumerate(logbook):
            if not isinstance(rec, dict) or rec.get("gen") != i:
                self.fail(f"logbook row {i} is not generation {i}'s record")
            bad = [k for k, v in rec.items() if not (_is_num(v) or (v is None and _STATISTIC.match(k)))]
            if bad:
                self.fail(f"logbook row {i}: {bad[0]!r} is {rec[bad[0]]!r}, not a finite number")
        if logbook and logbook[-1].get("evaluations") != evaluations:
            self.fail(f"evaluations {evaluations} differs from the logbook's {logbook[-1].get('evaluations')!r}")

    def array(self, arrays: dict, key: str, dtype, shape: tuple, finite: bool = False) -> np.ndarray:
        if key not in arrays:
            self.fail(f"missing array {key!r}")
        a = arrays[key]
        if a.dtype != np.dtype(dtype):
            self.fail(f"array {key!r} has dtype {a.dtype}, expected {np.dtype(dtype)}")
        if a.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, a.shape, strict=True)):
            want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
            self.fail(f"array {key!r} has shape {a.shape}, expected {want}")
        if finite and not np.isfinite(a).all():
            self.fail(f"array {key!r} holds non-finite values")
        return a


def _load_arrays(path: Path, sha256: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise CheckpointError(f"{path}: the checkpoint's arrays file is missing")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint's arrays ({exc.strerror or exc})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise CheckpointError(
            f"{path}: SHA-256 differs from the one recorded in the checkpoint (the file is damaged or was replaced)"
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: not a readable arrays file ({exc})") from None

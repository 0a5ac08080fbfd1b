"""A checkpoint on disk: ``checkpoint.json`` (counters, random states, logbook, seeds, and the name and SHA-256 of the
arrays file) and ``checkpoint-<gen>-<sha12>.npz`` (population, fitness, crowding distances, the archive, Python's
random state, the seeded classical allocations, the trials' sample; the genes of the population and the archive when
the run evolves strategy genes).

Only arrays, numbers, strings and random states, in JSON and an ``.npz`` read with ``np.load(allow_pickle=False)``.
Reading checks the format and version, every key, type, shape and dtype, that fitness values are finite and that the
arrays file has the SHA-256 recorded in the JSON; any mismatch is a :class:`~genetic_sizer.errors.CheckpointError`
naming the file and what is wrong. :class:`~genetic_sizer.runs.rundir.RunDir` decides where these files live.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import re
import zipfile
from pathlib import Path

import numpy as np

from genetic_sizer.errors import CheckpointError
from genetic_sizer.evolution.checkpoint import Checkpoint
from genetic_sizer.storage import files

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "read", "write"]

CHECKPOINT_FORMAT = "genetic_sizer/checkpoint"
CHECKPOINT_VERSION = 2
"""Version 1 was a pickle (``checkpoint.pkl``); it is refused, never read."""

ARRAYS_NAME = re.compile(r"checkpoint-\d{6,}-[0-9a-f]{12}\.npz")
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


def _arrays(cp: Checkpoint) -> dict[str, np.ndarray]:
    n_assets = cp.population.shape[1]
    allocations = cp.seeds.get("allocations", {})
    seed_w = (
        np.stack([np.asarray(w, dtype=np.float64) for w in allocations.values()])
        if allocations
        else np.empty((0, n_assets))
    )
    genes = {}
    if cp.n_genes:
        genes = {
            "population_genes": np.asarray(cp.population_genes, dtype=np.float64),
            "archive_genes": np.asarray(cp.archive_genes, dtype=np.float64).reshape(-1, cp.n_genes),
        }
    return {
        **genes,
        "population": np.asarray(cp.population, dtype=np.float64),
        "fitness": np.asarray(cp.fitness, dtype=np.float64),
        "crowding": np.asarray(cp.crowding, dtype=np.float64),
        "archive": np.asarray(cp.archive, dtype=np.float64),
        "archive_fitness": np.asarray(cp.archive_fitness, dtype=np.float64),
        "py_random_state": np.array(cp.py_random[1], dtype=np.uint32),
        "seed_allocations": seed_w,
        "trial_keys": np.asarray(cp.trials[1]["trial_keys"], dtype=np.uint64),
        "trial_sample": np.asarray(cp.trials[1]["trial_sample"], dtype=np.float64).reshape(-1, n_assets + cp.n_genes),
    }


def _header(cp: Checkpoint, arrays_name: str, arrays_sha256: str) -> dict:
    version, _words, gauss_next = cp.py_random
    seeds = None
    if cp.seeds:
        seeds = {
            "used": list(cp.seeds["used"]),
            "skipped": dict(cp.seeds["skipped"]),
            "allocations": list(cp.seeds["allocations"]),
        }
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arrays": arrays_name,
        "arrays_sha256": arrays_sha256,
        "config_sha256": cp.config_sha256,
        "data_sha256": cp.data_sha256,
        "generation": int(cp.generation),
        "evaluations": int(cp.evaluations),
        "elapsed": float(cp.elapsed),
        "n_assets": int(cp.population.shape[1]),
        "n_objectives": int(cp.fitness.shape[1]),
        "n_genes": cp.n_genes,
        "np_rng": cp.np_rng,
        "py_random": {"version": int(version), "gauss_next": gauss_next},
        "seeds": seeds,
        "trials": cp.trials[0],
        # a statistic over no live genome (every one wiped out) is NaN: null in JSON
        "logbook": [{k: None if _is_nan(v) else v for k, v in r.items()} for r in cp.logbook],
    }


def write(directory: Path, path: Path, cp: Checkpoint) -> None:
    """Write ``cp`` into ``directory``: the arrays under a new name, then ``path`` (``checkpoint.json``) naming them,
    then remove the previous arrays (an order that survives the process dying anywhere)."""
    buf = io.BytesIO()
    np.savez(buf, **_arrays(cp))
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    name = f"checkpoint-{int(cp.generation):06d}-{sha[:12]}.npz"
    files.write_bytes(directory / name, data, "checkpoint arrays")
    files.write_text(path, _header_text(_header(cp, name, sha)), "checkpoint")
    for old in directory.glob("checkpoint-*.npz"):
        if old.name != name:
            old.unlink(missing_ok=True)


def read(directory: Path, path: Path) -> Checkpoint:
    """Read and validate the checkpoint ``path`` (``checkpoint.json``) and the arrays it names in ``directory``;
    :class:`CheckpointError` names the file and what is wrong."""
    try:
        head = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from None
    _Check(path).header(head)
    arrays_path = directory / head["arrays"]
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
            head, "arrays", lambda v: isinstance(v, str) and ARRAYS_NAME.fullmatch(v), "checkpoint-<gen>-<sha>.npz"
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

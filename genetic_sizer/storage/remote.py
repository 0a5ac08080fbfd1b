"""Run storage: a run directory at a local path or at an fsspec URL. The only module importing fsspec.

A run whose ``--out`` (or ``run.storage``) is a URL (``s3://bucket/prefix``, ``gs://...``,
``file:///shared/nfs/runs/x``) is written, as every run is, into a local directory, here a private staging
directory of this process, and that directory is mirrored to the URL (:meth:`Stage.sync`):

* after the run directory is created (``config.yaml``), after every checkpoint and logbook (a walk-forward fold's
  evolution too, under ``folds/fold-NNN/``, removed once the fold's result is stored), after every walk-forward
  fold and when the results are written, so ``--resume`` works from storage on any machine;
* files are pushed in an order that keeps the stored run consistent if the process dies at any moment: new
  and changed files first, then ``checkpoint.json`` (which names the arrays pushed before it), then
  ``champion.json`` (present means complete), and only then are files deleted that the run deleted locally
  (an old checkpoint's arrays), never a file this process did not push or pull;
* every file arrives whole: object stores (S3, GCS, Azure) replace an object atomically on upload; on file
  systems (``file://`` and the like) the file is uploaded under a temporary name (``.<name>.tmp-<token>``)
  and renamed;
* :meth:`Stage.pull` copies a stored run into the staging directory to resume it, report on it or export
  from it; :func:`download` copies a stored run to a new local directory (``genetic-sizer submit --out``).

Which prefixes a new run may use, and which hold a run to resume, is decided by
:class:`genetic_sizer.runs.rundir.RunDir` with the same rules as for a local directory (never a non-empty prefix
that is not a run: nothing of yours is overwritten). Credentials come from the storage library's usual
sources (for S3: ``AWS_*`` environment variables, ``~/.aws``, an instance role; ``AWS_ENDPOINT_URL`` for an
S3-compatible server); ``gs://`` needs ``gcsfs`` installed, ``az://`` ``adlfs``.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import tempfile
import threading
from pathlib import Path

from genetic_sizer.errors import RunDirError
from genetic_sizer.storage import files

__all__ = ["Remote", "Stage", "download", "forget_stage", "is_url", "join", "stage_for"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2"})
"""Protocols whose uploads replace an object whole (no temporary name needed)."""
LAST = ("checkpoint.json", "champion.json")
"""Pushed after every other file, in this order (see the module docstring)."""
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}


def is_url(path) -> bool:
    """True for a URL with a scheme (``s3://...``, ``file:///...``); False for a local path or a RunDir."""
    return isinstance(path, str) and bool(_URL.match(path))


def join(base: str | os.PathLike, name: str) -> str | Path:
    """``base/name`` for a local path (a Path) or a URL (a string)."""
    if is_url(base):
        return str(base).rstrip("/") + "/" + name
    return Path(base) / name


class Remote:
    """A run directory at a URL: list, read and write its files (paths relative to the run's root)."""

    def __init__(self, url: str):
        try:
            import fsspec
        except ImportError:  # pragma: no cover - a dependency
            raise RunDirError(f"run storage {url!r} needs fsspec (pip install fsspec)") from None
        protocol = url.split("://", 1)[0].lower()
        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except ImportError as exc:
            package = _PACKAGES.get(protocol, "the fsspec implementation for it")
            raise RunDirError(f"run storage {url!r} needs {package} (pip install {package}): {exc}") from None
        except (ValueError, TypeError) as exc:
            raise RunDirError(f"run storage {url!r} is not a storage URL fsspec can open: {exc}") from None
        self.url = url.rstrip("/")
        self.root = root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, (tuple, list)) else (self.fs.protocol,)
        self.atomic_upload = bool(set(protocols) & OBJECT_STORES)

    def __repr__(self) -> str:
        return f"Remote({self.url!r})"

    def _abs(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def _fail(self, what: str, exc: BaseException):
        raise RunDirError(f"run storage {self.url!r}: cannot {what} ({type(exc).__name__}: {exc})") from None

    def is_file(self) -> bool:
        """The URL names a file (an object), not a prefix."""
        try:
            self.fs.invalidate_cache()
            return bool(self.fs.isfile(self.root))
        except FileNotFoundError:
            return False
        except Exception as exc:
            self._fail("read it", exc)

    def listing(self) -> dict[str, int]:
        """Every file under the URL, by relative path (``a/b.json``), with its size; {} when there is none."""
        try:
            self.fs.invalidate_cache()
            found = self.fs.find(self.root, detail=True)
        except FileNotFoundError:
            return {}
        except Exception as exc:
            self._fail("list it", exc)
        out = {}
        prefix = self.root + "/"
        for name, info in found.items():
            name = name.rstrip("/")
            if info.get("type", "file") != "file" or not name.startswith(prefix):
                continue
            out[name[len(prefix) :]] = int(info.get("size") or 0)
        return out

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self.fs.cat_file(self._abs(rel))
        except Exception as exc:
            self._fail(f"read {rel}", exc)

    def get(self, rel: str, local: Path) -> None:
        """Download ``rel`` to ``local`` atomically (a temporary file renamed over it)."""
        with files.atomic_path(local, "downloaded run file") as tmp:
            try:
                self.fs.get_file(self._abs(rel), str(tmp))
            except Exception as exc:
                self._fail(f"download {rel}", exc)

    def put(self, local: Path, rel: str) -> None:
        """Upload ``local`` as ``rel``, whole or not at all."""
        target = self._abs(rel)
        try:
            if self.atomic_upload:
                self.fs.put_file(str(local), target)
                return
            parent, _, name = target.rpartition("/")
            stem, dot, suffix = name.partition(".")
            tmp = f"{parent}/.{stem}{files.TMP_MARK}{secrets.token_hex(4)}{dot}{suffix}"
            self.fs.makedirs(parent, exist_ok=True)
            try:
                self.fs.put_file(str(local), tmp)
                self.fs.mv(tmp, target)
            except BaseException:
                try:
                    self.fs.rm_file(tmp)
                except Exception:
                    pass
                raise
        except Exception as exc:
            self._fail(f"upload {rel}", exc)

    def remove_tree(self, rel: str) -> list[str]:
        """Delete every file under the folder ``rel`` (listed, one by one: an object store's prefix ``rel`` would
        also match ``rel.json``), then, on a file system, the folder itself. Returns the relative paths deleted."""
        prefix = rel.strip("/") + "/"
        gone = sorted(r for r in self.listing() if r.startswith(prefix))
        for r in gone:
            self.remove(r)
        if not self.atomic_upload:
            try:
                if self.fs.isdir(self._abs(rel.strip("/"))):
                    self.fs.rm(self._abs(rel.strip("/")), recursive=True)
            except FileNotFoundError:
                pass
            except Exception as exc:
                self._fail(f"delete {rel}/", exc)
        return gone

    def remove(self, rel: str) -> None:
        try:
            self.fs.rm_file(self._abs(rel))
        except FileNotFoundError:
            pass
        except Exception as exc:
            self._fail(f"delete {rel}", exc)


def _local_files(root: Path) -> dict[str, tuple]:
    """Files under ``root`` (relative POSIX paths) with what tells a rewrite apart: size, mtime, inode."""
    out = {}
    if not root.is_dir():
        return out
    for p in root.rglob("*"):
        if p.is_file() and files.TMP_MARK not in p.name:
            st = p.stat()
            out[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return out


def _push_order(rel: str) -> tuple[int, str]:
    name = rel.rsplit("/", 1)[-1]
    return (LAST.index(name) + 1 if name in LAST else 0, rel)


class Stage:
    """The local staging directory of one stored run in this process, and what it last exchanged with the URL.

    One per URL and process (:func:`stage_for`), so every :class:`~genetic_sizer.runs.rundir.RunDir` made for the
    URL shares it. Removed when the process exits; the URL holds everything synced.
    """

    def __init__(self, url: str):
        self.remote = Remote(url)
        self.url = self.remote.url
        self.local = Path(tempfile.mkdtemp(prefix="genetic-sizer-stage-"))
        self.pulled = False
        self._synced: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Empty the staging directory (a new run, or a fresh pull)."""
        shutil.rmtree(self.local, ignore_errors=True)
        self.local.mkdir(parents=True, exist_ok=True)
        self._synced = {}
        self.pulled = False

    def pull(self, force: bool = False) -> None:
        """Copy the stored run into the staging directory (once per process unless ``force``)."""
        with self._lock:
            if self.pulled and not force:
                return
            self.reset()
            for rel in sorted(self.remote.listing()):
                if files.TMP_MARK in rel.rsplit("/", 1)[-1]:
                    continue
                self.remote.get(rel, self.local / rel)
            self._synced = _local_files(self.local)
            self.pulled = True

    def sync(self) -> list[str]:
        """Push what changed in the staging directory since the last sync (see the module docstring); returns
        the relative paths uploaded."""
        with self._lock:
            now = _local_files(self.local)
            changed = sorted((r for r, key in now.items() if self._synced.get(r) != key), key=_push_order)
            for rel in changed:
                self.remote.put(self.local / rel, rel)
                self._synced[rel] = now[rel]
            for rel in sorted(set(self._synced) - set(now)):
                self.remote.remove(rel)
                del self._synced[rel]
            self.pulled = True  # the URL now holds what the staging directory holds
            return changed

    def remove_tree(self, rel: str) -> list[str]:
        """Delete the folder ``rel`` of the run, here and at the URL: every stored file under it, whoever pushed it
        (a walk-forward fold's checkpoints, which a Ray worker may have stored), after the files synced before.
        Returns the relative paths deleted at the URL."""
        prefix = rel.strip("/") + "/"
        with self._lock:
            shutil.rmtree(self.local / rel, ignore_errors=True)
            gone = self.remote.remove_tree(rel)
            for r in [r for r in self._synced if r.startswith(prefix)]:
                del self._synced[r]
            return gone


_STAGES: dict[str, Stage] = {}
_STAGES_LOCK = threading.Lock()


def stage_for(url: str) -> Stage:
    """The staging directory of the run at ``url`` in this process (created on first use)."""
    key = url.rstrip("/")
    with _STAGES_LOCK:
        stage = _STAGES.get(key)
        if stage is None:
            stage = _STAGES[key] = Stage(key)
        return stage


def forget_stage(url: str) -> None:
    """Drop this process's staging directory of ``url``, if any: what is read next comes from the URL (a Ray worker
    resuming a fold another process, or an earlier job in this one, may have moved on)."""
    with _STAGES_LOCK:
        stage = _STAGES.pop(url.rstrip("/"), None)
    if stage is not None:
        shutil.rmtree(stage.local, ignore_errors=True)


def forget_stages() -> None:
    """Drop every staging directory of this process (at exit; tests use it to act as a new machine)."""
    with _STAGES_LOCK:
        for stage in _STAGES.values():
            shutil.rmtree(stage.local, ignore_errors=True)
        _STAGES.clear()


atexit.register(forget_stages)


def download(url: str, dest: str | os.PathLike) -> Path:
    """Copy the run stored at ``url`` to the new local directory ``dest`` and return it.

    ``dest`` must not exist or be an empty directory (nothing of yours is overwritten); the files arrive in a
    temporary directory beside it that is renamed to ``dest`` when complete.
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise RunDirError(
            f"{str(dest)!r} exists and is not an empty directory; give a new one (nothing is overwritten)"
        )
    remote = Remote(url)
    names = [r for r in sorted(remote.listing()) if files.TMP_MARK not in r.rsplit("/", 1)[-1]]
    if not names:
        raise RunDirError(f"no run stored at {url!r}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}{files.TMP_MARK}{secrets.token_hex(4)}")
    try:
        for rel in names:
            remote.get(rel, tmp / rel)
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest

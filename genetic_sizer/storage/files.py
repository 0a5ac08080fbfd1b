"""Files written whole or not at all, and durable once written.

Every file genetic_sizer writes for a user (run directories, checkpoints, champion files) goes through here: the
content is written to a temporary file beside the target, flushed to disk (``fsync``), renamed over the target
(``os.replace``, atomic on POSIX and Windows), and then the directory is flushed too, so the rename itself survives
a power failure (as the live journal flushes each record and a new journal's directory). A crash, a Ctrl-C or a
power failure leaves either the old file or the new one, never a half-written or empty one, and never a checkpoint
that names arrays a power failure lost. The temporary file is removed when the write fails. Each fsync costs a few
milliseconds; checkpoints are written every ``run.checkpoint_every`` seconds, so this is nothing beside an
evolution (``durable=False`` skips both flushes, for files a caller can afford to lose).

A target that is a directory, or whose parent is a file, is a :class:`~genetic_sizer.errors.ConfigError` naming
the path, raised before anything is written; so is a directory that does not accept new files (read-only,
not ours, a read-only file system: :func:`check_writable` tries to create a file there) and a write that the
operating system refuses (a full disk): the error names the file and the reason, never a traceback.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genetic_sizer.errors import ConfigError

__all__ = [
    "TMP_MARK",
    "atomic_path",
    "check_file_target",
    "check_new_file",
    "check_writable",
    "write_bytes",
    "write_text",
]

TMP_MARK = ".tmp-"
"""Part of every temporary file's name (``.<name>.tmp-<token><suffix>``), so leftovers are recognizable."""


def check_file_target(path: str | Path, what: str = "output file") -> Path:
    """Raise :class:`ConfigError` unless ``path`` can be written as a file (it is not a directory, and no
    existing component of its parent is a file). Nothing is created."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(
            f"{what} {str(path)!r} is a directory; give a file name (e.g. {str(path / 'champion.json')!r})"
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{what} {str(path)!r}: {str(parent)!r} is a file, not a directory")
            break
    return path


def check_new_file(path: str | Path, what: str = "output file", *, force: bool = False, flag: str = "--force") -> Path:
    """:func:`check_file_target`, and refuse a file that already exists unless ``force``: a user's file is never
    overwritten without being asked to (the error names ``flag``, the option that allows it)."""
    path = check_file_target(path, what)
    if path.exists() and not force:
        raise ConfigError(
            f"{what} {str(path)!r} already exists; nothing is overwritten (choose another name or pass {flag})"
        )
    check_writable(path, what)
    return path


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.stem}{TMP_MARK}{secrets.token_hex(4)}{path.suffix}")


def check_writable(path: str | Path, what: str = "output file", *, directory: bool = False) -> Path:
    """Raise :class:`ConfigError` unless a file can be created where ``path`` would be: in its directory (in
    ``path`` itself with ``directory``), or, when that does not exist yet, in the nearest existing directory above.
    A temporary file is created there and removed at once (its name carries :data:`TMP_MARK`), so permissions,
    read-only file systems and access control lists are judged by the operating system itself, for root too."""
    path = Path(path)
    candidates = [path, *path.parents] if directory else list(path.parents)
    where = next((p for p in candidates if p.exists()), Path("."))
    probe = _temporary(where / (path.name or "probe"))
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"{what} {str(path)!r} cannot be written: {str(where)!r} does not accept new files ({reason}); "
            "choose a directory you can write to"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return path


@contextmanager
def atomic_path(path: str | Path, what: str = "output file", durable: bool = True) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; renamed over ``path`` when the block succeeds.

    The temporary name keeps the target's suffix (``.png`` stays ``.png``, for writers that infer the format
    from it). With ``durable`` (the default) the content is fsync'ed before the rename and the directory after
    it. On any exception, KeyboardInterrupt included, the temporary file is removed and ``path`` is left as it
    was. A directory that does not accept the file, or an operating-system error while writing the temporary
    file or renaming it (a full disk), is a :class:`ConfigError` naming ``path`` and the reason.
    """
    path = check_file_target(path, what)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r}: cannot create its directory ({exc.strerror or exc})") from None
    check_writable(path, what)
    tmp = _temporary(path)
    try:
        try:
            yield tmp
            if not tmp.is_file():
                raise FileNotFoundError(f"nothing was written to {tmp}")
            if durable:
                _fsync(tmp)  # the content is on disk before the new name can point to it
            os.replace(tmp, path)
        except OSError as exc:
            name = exc.filename
            if isinstance(name, (str, os.PathLike)) and Path(name) not in (tmp, path):
                raise  # a writer's own error about another file
            raise ConfigError(
                f"{what} {str(path)!r} could not be written ({exc.strerror or exc}); an earlier version of it, if "
                "any, is left as it was"
            ) from None
        if durable:
            _fsync_dir(path.parent)  # the rename survives a power failure
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes, what: str = "output file", durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path, what, durable) as tmp:
        tmp.write_bytes(data)
    return path


def write_text(path: str | Path, text: str, what: str = "output file", durable: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return write_bytes(path, text.encode("utf-8"), what, durable)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename in it) to disk. Where directories cannot be opened or flushed
    (Windows, some network file systems) there is nothing more to do: the file itself is flushed."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

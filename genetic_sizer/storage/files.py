"""Files written whole or not at all.

Every file genetic_sizer writes for a user (run directories, champion files) goes through here: the content
is written to a temporary file beside the target, flushed to disk and renamed over the target
(``os.replace``, atomic on POSIX and Windows). A crash or Ctrl-C leaves either the old file or the new one,
never a half-written one, and the temporary file is removed when the write fails.

``durable=True`` (champion files, a run's config) also flushes the content to disk (``fsync``) before the
rename, so that after an operating-system crash or a power failure the name never points to content that was
not written. An fsync costs 5-30 ms here, so files written as often as every generation (checkpoint, logbook) skip it:
they survive a crash of the process at any moment, and after a power failure a checkpoint whose content was
lost is detected by its SHA-256 (a clear error, never a silently different resume). The directory is never
flushed, so after a power failure the newest rename may be lost, leaving the previous complete file. A target that is a
directory, or whose parent is a file, is a :class:`~genetic_sizer.errors.ConfigError` naming the path,
raised before anything is written.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genetic_sizer.errors import ConfigError

__all__ = ["TMP_MARK", "atomic_path", "check_file_target", "check_new_file", "write_bytes", "write_text"]

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
    return path


@contextmanager
def atomic_path(path: str | Path, what: str = "output file", durable: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; renamed over ``path`` when the block succeeds.

    The temporary name keeps the target's suffix (``.png`` stays ``.png``, for writers that infer the format
    from it). On any exception, KeyboardInterrupt included, the temporary file is removed and ``path`` is left
    as it was.
    """
    path = check_file_target(path, what)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r}: cannot create its directory ({exc.strerror or exc})") from None
    tmp = path.with_name(f".{path.stem}{TMP_MARK}{secrets.token_hex(4)}{path.suffix}")
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        if durable:
            _fsync(tmp)  # the content is on disk before the new name can point to it
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes, what: str = "output file", durable: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path, what, durable) as tmp:
        tmp.write_bytes(data)
    return path


def write_text(path: str | Path, text: str, what: str = "output file", durable: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return write_bytes(path, text.encode("utf-8"), what, durable)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())

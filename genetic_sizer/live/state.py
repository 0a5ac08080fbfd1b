"""What the live sizer keeps per account and network outside its journal (:class:`AccountStore`), in the state
directory (:func:`state_dir`): the lock that keeps a second trader off the account, this installation's trader id,
the kill switch's latch and the equity high-water mark. Deleting or replacing a journal clears none of them.

Files (mode 0600, in a directory of mode 0700), named after the network and the account:

* ``<network>-<account>.lock``: an exclusive ``flock`` held while a trader runs (the kernel releases it when the
  process dies, however it dies); it holds the pid of its owner;
* ``<network>-<account>.json``: ``{"trader", "kill", "kills", "high_water", "high_water_since", ...}``, replaced
  atomically (written to a temporary file, fsync'ed, renamed over).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from genetic_sizer.errors import AnotherTrader, ConfigError

__all__ = ["ENV_STATE_DIR", "AccountStore", "network_key", "new_trader_id", "state_dir"]

ENV_STATE_DIR = "GENETIC_SIZER_STATE_DIR"
"""Overrides the state directory (default: the platform's user state directory for ``genetic_sizer``)."""

_TRADER_RE = re.compile(r"[0-9a-f]{8}")


def state_dir() -> Path:
    """``$GENETIC_SIZER_STATE_DIR``, else the platform's user state directory (``~/.local/state/genetic_sizer`` on
    Linux, ``~/Library/Application Support/genetic_sizer`` on macOS)."""
    raw = (os.environ.get(ENV_STATE_DIR) or "").strip()
    if raw:
        return Path(raw).expanduser()
    import platformdirs

    return Path(platformdirs.user_state_dir("genetic_sizer", appauthor=False))


def network_key(network: str) -> str:
    """The network part of the state files' names: ``mainnet``/``testnet``, or ``host_port`` of an API URL."""
    text = str(network).strip()
    parts = urlsplit(text)
    if parts.scheme and parts.hostname:
        text = parts.hostname + (f"_{parts.port}" if parts.port else "") + parts.path.replace("/", "_")
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")
    return text or "network"


def new_trader_id() -> str:
    """A fresh trader id: 8 hex digits (32 random bits), carried by every client order id the trader sends."""
    return secrets.token_hex(4)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class AccountStore:
    """The state files of one ``account`` on one ``network`` in ``directory`` (default :func:`state_dir`)."""

    def __init__(self, network: str, account: str, directory: str | Path | None = None):
        self.network = network
        self.account = account.lower()
        self.directory = Path(directory) if directory is not None else state_dir()
        stem = f"{network_key(network)}-{self.account}"
        self.path = self.directory / f"{stem}.json"
        self.lock_path = self.directory / f"{stem}.lock"
        self.notes: list[str] = []
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------ files
    def _ensure_dir(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the state directory {str(self.directory)!r} ({exc.strerror}); set {ENV_STATE_DIR}"
            ) from None

    def read(self) -> dict:
        """The state (an empty dict when the file does not exist). A file that cannot be read is a ConfigError:
        it may hold a tripped kill switch, which must never be lost silently."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"cannot read the state file {str(self.path)!r}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ConfigError(
                f"the state file {str(self.path)!r} is corrupted (not a JSON object); it may hold a tripped kill "
                "switch: inspect it, and remove it only if you know what it held"
            )
        mode = self.path.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(self.path, 0o600)
            self.notes.append(f"state file {self.path}: was readable by others (mode {mode:o}); narrowed to 0600")
        return data

    def write(self, data: dict) -> None:
        """Replace the state atomically (temporary file, fsync, rename, fsync of the directory), mode 0600."""
        self._ensure_dir()
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True, allow_nan=False)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def update(self, **changes) -> dict:
        data = self.read()
        data.update(changes)
        data.setdefault("account", self.account)
        data.setdefault("network", self.network)
        self.write(data)
        return data

    # ------------------------------------------------------------------ the lock
    @property
    def locked(self) -> bool:
        return self._lock_fd is not None

    def acquire(self) -> None:
        """Hold the account's lock (one trader per account and network on this machine), or raise
        :class:`~genetic_sizer.errors.AnotherTrader` naming the process that holds it."""
        if self._lock_fd is not None:
            return
        import fcntl

        self._ensure_dir()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 64).decode(errors="replace").split()
            os.close(fd)
            pid = other[0] if other else "?"
            raise AnotherTrader(
                f"another genetic-sizer (pid {pid}) trades account {self.account} on {self.network}: it holds "
                f"{self.lock_path}. One trader per account and network: stop it first (a second one would double "
                "every order)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {time.time():.3f}\n".encode())
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def holder(self) -> int | None:
        """The pid written in the lock file when that process is alive (None: no lock file, or a stale one)."""
        try:
            text = self.lock_path.read_text().split()
        except (FileNotFoundError, OSError):
            return None
        pid = int(text[0]) if text and text[0].isdigit() else None
        return pid if pid is not None and _pid_alive(pid) else None

    # ------------------------------------------------------------------ identity
    def trader_id(self, fallback: str | None = None) -> str:
        """This installation's trader id for the account (created on first use: ``fallback`` when it is a valid id,
        e.g. the one a journal's header records, else a fresh one)."""
        data = self.read()
        trader = data.get("trader")
        if isinstance(trader, str) and _TRADER_RE.fullmatch(trader):
            return trader
        trader = fallback if isinstance(fallback, str) and _TRADER_RE.fullmatch(fallback) else new_trader_id()
        self.update(trader=trader, created=time.time())
        return trader

    # ------------------------------------------------------------------ the kill switch's latch
    @property
    def kill(self) -> dict | None:
        """The kill record the latch holds (None: not tripped)."""
        kill = self.read().get("kill")
        return kill if isinstance(kill, dict) else None

    def trip(self, record: dict) -> None:
        """Latch the kill switch on ``record`` (kept until :meth:`reset`)."""
        data = self.read()
        if not isinstance(data.get("kill"), dict):
            data["kill"] = dict(record)
        self._save(data)

    def reset(self, when: float) -> dict | None:
        """Clear the latch; the high-water mark starts again (from the next equity read). Returns what it held."""
        data = self.read()
        kill = data.pop("kill", None)
        history = data.get("resets") if isinstance(data.get("resets"), list) else []
        data["resets"] = [*history, {"time": when, "kill": kill}][-20:]
        data["high_water"] = None
        data["high_water_since"] = when
        self._save(data)
        return kill if isinstance(kill, dict) else None

    @property
    def last_reset(self) -> float | None:
        """When the kill switch was last reset (seconds since the epoch; None: never)."""
        resets = self.read().get("resets")
        times = [r.get("time") for r in resets if isinstance(r, dict)] if isinstance(resets, list) else []
        times = [float(x) for x in times if isinstance(x, (int, float)) and not isinstance(x, bool)]
        return max(times, default=None)

    # ------------------------------------------------------------------ the high-water mark
    @property
    def high_water(self) -> float | None:
        value = self.read().get("high_water")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def high_water_since(self) -> float | None:
        """When the mark was last reset (a kill switch reset): history before it does not count."""
        value = self.read().get("high_water_since")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def note_equity(self, value: float, when: float) -> None:
        """Raise the kept high-water mark to ``value`` if it is higher."""
        data = self.read()
        old = data.get("high_water")
        if isinstance(old, (int, float)) and not isinstance(old, bool) and old >= value:
            return
        data["high_water"] = float(value)
        data["high_water_time"] = when
        self._save(data)

    def _save(self, data: dict) -> None:
        data.setdefault("account", self.account)
        data.setdefault("network", self.network)
        self.write(data)

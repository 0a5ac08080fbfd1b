"""The live loop's journal: an append-only JSON-lines file, the loop's memory across restarts.

Every record is one line, written with a single ``write`` and ``fsync``'ed before the loop goes on, so that
what the journal says happened did happen. A process killed while writing leaves at most one torn last line;
reading tolerates it (and reports it), and the next writer starts on a fresh line. Records never hold
credentials: plans, orders, results, errors, equity.

Every record has ``event``, ``time`` (ISO 8601 UTC) and ``ts`` (seconds since the epoch). Events:

``start``     a process started (mode, network, base URL, account, champion, period, settings, limits)
``equity``    the account value read at the start of a pass, with the high-water mark and the day's reference
``plan``      one round's plan of a pass (``pass``, ``period``, ``round``, ``plan``, ``executed``)
``send``      orders about to be sent, BEFORE the request (``pass``, ``attempt``, ``orders`` with their cloids)
``request``   one request going on the wire, BEFORE it leaves: its ``expires_after_ms`` and ``cloids``
``result``    what became of the orders of an attempt (``results``; ``unknown`` cloids; ``source`` "answer",
              "lookup" after a restart, or "probe" when a lookup before sending found an order)
``error``     a failed pass (``retry_in`` seconds when it is retried within its period)
``pass_end``  how a pass ended: ``status`` complete, partial, refused, failed or killed; drift; errors
``skipped``   a period that could not complete (transient errors or refusals until its end)
``kill``      the kill switch fired (``reason``, ``flatten``)
``stop``      the process stopped (``reason``, ``exit_code``)

Records written by earlier versions (a pass record without ``event``, ``retry``, ``stopped``) are read as
well.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from genetic_sizer.errors import ConfigError

__all__ = ["Journal", "JournalState", "PassState", "append_journal", "jsonable", "now_iso", "read_journal"]


def now_iso(t: float | None = None) -> str:
    """``t`` (default: now) as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    stamp = _dt.datetime.fromtimestamp(time.time() if t is None else t, _dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def jsonable(value):
    """``value`` with every non-finite float (a mid that does not exist, say) replaced by None, so that it
    serializes as standard JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    return value


def append_journal(path: str | Path, record: dict) -> None:
    """Append one JSON line to ``path``, fsync'ed (plans and results only: no credentials reach this)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(jsonable(record), allow_nan=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _ts(record: dict) -> float | None:
    ts = record.get("ts")
    if isinstance(ts, (int, float)) and not isinstance(ts, bool):
        return float(ts)
    text = record.get("time")
    if isinstance(text, str):
        try:
            return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


@dataclass
class PassState:
    """What the journal knows of one pass: the orders it sent (cloid -> order), their known outcomes, the
    highest attempt number used, and how it ended (``end``: the last ``pass_end`` record, or None)."""

    pass_id: str
    period: str | None = None
    sent: dict[str, dict] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    max_attempt: int = -1
    end: dict | None = None
    skipped: dict | None = None
    plans: int = 0

    @property
    def next_attempt(self) -> int:
        """The first attempt number no record of this pass has used."""
        return self.max_attempt + 1

    @property
    def complete(self) -> bool:
        """True when the pass ended with every planned order done ("complete"): a restart does not repeat it."""
        return self.end is not None and self.end.get("status") == "complete"

    def unresolved(self) -> list[dict]:
        """Orders sent (or about to be) whose outcome no record gives: a killed process, or an unknown outcome."""
        return [o for c, o in self.sent.items() if c not in self.results]


class JournalState:
    """Everything the loop learns by reading its journal: passes, equity history, the latest request expiry,
    lines that could not be read. Built record by record (:meth:`add`), so an open journal stays current."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.bad_lines: list[int] = []
        self.torn_tail = False
        self.passes: dict[str, PassState] = {}
        self.equity: list[tuple[float, float]] = []  # (ts, account value)
        self.max_expiry_ms = 0
        self.expiry_ms: dict[str, int] = {}  # cloid -> the latest expiresAfter of a request that carried it
        self.starts: list[dict] = []
        self.kills: list[dict] = []

    def _pass(self, pid: str) -> PassState:
        state = self.passes.get(pid)
        if state is None:
            state = self.passes[pid] = PassState(pid)
        return state

    def add(self, record: dict) -> None:
        """Fold one record in."""
        self.records.append(record)
        event = record.get("event")
        ts = _ts(record)
        pid = record.get("pass")
        if event is None and isinstance(record.get("plan"), dict):  # a pass record of an earlier version
            value = record["plan"].get("account_value")
            if isinstance(value, (int, float)) and ts is not None:
                self.equity.append((ts, float(value)))
            return
        if event == "start":
            self.starts.append(record)
        elif event == "equity":
            value = record.get("account_value")
            if isinstance(value, (int, float)) and ts is not None and math.isfinite(value):
                self.equity.append((ts, float(value)))
        elif event == "kill":
            self.kills.append(record)
        if not isinstance(pid, str):
            return
        state = self._pass(pid)
        if record.get("period"):
            state.period = record["period"]
        attempt = record.get("attempt")
        if isinstance(attempt, int) and not isinstance(attempt, bool):
            state.max_attempt = max(state.max_attempt, attempt)
        if event == "plan":
            state.plans += 1
        elif event == "send":
            for order in record.get("orders") or []:
                if isinstance(order, dict) and isinstance(order.get("cloid"), str):
                    state.sent[order["cloid"]] = {**order, "attempt": attempt, "pass": pid}
        elif event == "request":
            expiry = record.get("expires_after_ms")
            if isinstance(expiry, int):
                self.max_expiry_ms = max(self.max_expiry_ms, expiry)
                for cloid in record.get("cloids") or []:
                    self.expiry_ms[cloid] = max(self.expiry_ms.get(cloid, 0), expiry)
        elif event == "result":
            for result in record.get("results") or []:
                if isinstance(result, dict) and isinstance(result.get("cloid"), str):
                    state.results[result["cloid"]] = result
                    state.unknown.discard(result["cloid"])
            for cloid in record.get("unknown") or []:
                if cloid not in state.results:
                    state.unknown.add(cloid)
        elif event == "pass_end":
            state.end = record
        elif event == "skipped":
            state.skipped = record

    # ------------------------------------------------------------------ questions
    def unresolved(self) -> list[dict]:
        """Every order, in any pass, sent without a known outcome (each dict carries ``pass`` and ``attempt``)."""
        return [o for p in self.passes.values() for o in p.unresolved()]

    def unresolved_expiry_ms(self) -> int:
        """The latest expiry (ms) of a request carrying an order whose outcome is unknown (0: none): until
        then, plus the clock tolerance, such a request may still execute."""
        return max((self.expiry_ms.get(o["cloid"], 0) for o in self.unresolved()), default=0)

    @property
    def high_water(self) -> float | None:
        """The highest account value recorded (None before the first)."""
        return max((v for _, v in self.equity), default=None)

    @property
    def first_equity(self) -> tuple[float, float] | None:
        return self.equity[0] if self.equity else None

    def day_reference(self, now: float) -> float | None:
        """The equity a day's loss is measured from: the last value recorded before 00:00 UTC of ``now``'s day
        if it was recorded within the previous day, else the first value recorded today (None: none yet)."""
        day = math.floor(now / 86400) * 86400
        before = [(t, v) for t, v in self.equity if day - 86400 <= t < day]
        if before:
            return before[-1][1]
        today = [(t, v) for t, v in self.equity if day <= t <= now]
        return today[0][1] if today else None

    def last(self, *events: str) -> dict | None:
        """The last record with one of these events."""
        for record in reversed(self.records):
            if record.get("event") in events:
                return record
        return None


def read_journal(path: str | Path, *, missing_ok: bool = False) -> JournalState:
    """Read a journal. Lines that are not JSON objects are skipped and their numbers kept in ``bad_lines``;
    ``torn_tail`` says the last line was cut short (a process killed while writing it). A missing file is a
    ConfigError unless ``missing_ok`` (an empty state)."""
    path = Path(path)
    state = JournalState()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if missing_ok:
            return state
        raise ConfigError(f"journal {str(path)!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read journal {str(path)!r}: {exc.strerror or type(exc).__name__}") from None
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            record = None
        if not isinstance(record, dict):
            state.bad_lines.append(number)
            if number == len(lines):
                state.torn_tail = True
            continue
        state.add(record)
    return state


class Journal:
    """An open journal: the state read from it, and :meth:`append`.

    With ``lock`` (the default) an exclusive lock on ``PATH.lock`` keeps a second process from writing the
    same journal (and trading the same pass) at the same time; the kernel releases it when the process dies,
    however it dies. A torn last line left by a killed process is reported in :attr:`notes` and ended with a
    newline, so that the next record starts on its own line (its bytes are kept)."""

    def __init__(self, path: str | Path, *, lock: bool = True):
        self.path = Path(path)
        self.notes: list[str] = []
        self._lock_fd: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the folder of journal {str(self.path)!r}: {exc.strerror}") from None
        if lock:
            self._acquire()
        try:
            self.state = read_journal(self.path, missing_ok=True)
            if self.state.bad_lines:
                what = (
                    "a torn last line"
                    if self.state.torn_tail and len(self.state.bad_lines) == 1
                    else "unreadable lines"
                )
                self.notes.append(
                    f"journal {self.path}: skipped {what} (line {', '.join(map(str, self.state.bad_lines))}); "
                    "a process was probably killed while writing"
                )
            self._end_torn_line()
        except BaseException:
            self.close()
            raise

    def _acquire(self) -> None:
        import fcntl

        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ConfigError(
                f"journal {str(self.path)!r} is in use by another process (pid {other}); one live loop per journal"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _end_torn_line(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                if fh.tell() == 0:
                    return
                fh.seek(-1, os.SEEK_END)
                last = fh.read(1)
        except FileNotFoundError:
            return
        if last != b"\n":
            with open(self.path, "ab") as fh:
                fh.write(b"\n")
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, record: dict) -> dict:
        """Write ``record`` (with ``time`` and ``ts`` added) as one line, fsync it, and fold it into the state."""
        now = time.time()
        record = {"time": now_iso(now), "ts": round(now, 6), **record}
        line = json.dumps(jsonable(record), allow_nan=False) + "\n"
        new = not self.path.exists()
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        if new:  # make the new file's directory entry durable too
            try:
                fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                pass
        self.state.add(json.loads(line))
        return record

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

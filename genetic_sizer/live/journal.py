"""The live loop's journal: an append-only JSON-lines file, the loop's memory across restarts.

Every record is one line, written with a single ``write`` and ``fsync``'ed before the loop goes on, so that
what the journal says happened did happen. A process killed while writing leaves at most one torn last line;
reading tolerates it (and reports it), the next writer starts on a fresh line and its first record names the
torn line (``torn_line``), so that the line, now in the middle, is still known to be a torn write. Any other
line that is not a JSON object is corruption: an open :class:`Journal` refuses it (:class:`JournalCorrupted`,
naming the line) rather than trade on a memory with a hole in it. Records never hold credentials: plans,
orders, results, errors, equity. The file is created with mode 0600 (an older, wider one is narrowed).

Every record has ``event``, ``time`` (ISO 8601 UTC) and ``ts`` (seconds since the epoch). Events:

``journal``   the header: format ``version`` (2), the ``trader`` id its orders carry, ``account`` and ``network``;
              the first line of a new journal, appended on first use to a journal of an earlier version
              (``migrated_from``: 1)
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
``kill``      the kill switch fired (``reason``, ``flatten``): it latches until a ``kill_reset``
``kill_reset`` a person cleared the latched kill switch (``genetic-sizer size --reset-kill``); the high-water mark
              and the day's reference equity start again from the next equity record
``reconcile`` the post-trade check: positions read after the fills settled against what the fills imply
``high_water`` a high-water mark rebuilt from the exchange's account history (journal and state had none)
``other_trader`` fills or orders of another trader's id seen on the account
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

from genetic_sizer.errors import ConfigError, JournalCorrupted

__all__ = [
    "JOURNAL_VERSION",
    "Journal",
    "JournalState",
    "PassState",
    "append_journal",
    "jsonable",
    "now_iso",
    "read_journal",
]

JOURNAL_VERSION = 2
"""The journal format: 2 has a ``journal`` header (trader id, account, network) and the kill switch's latch."""


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


def _open_append(path: Path):
    """``path`` opened for appending; created with mode 0600 (owner only)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8")


def append_journal(path: str | Path, record: dict) -> None:
    """Append one JSON line to ``path``, fsync'ed (plans and results only: no credentials reach this)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open_append(path) as fh:
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
        self.corrupt_lines: list[int] = []  # bad lines that are not a torn write (see read_journal)
        self.torn_tail = False
        self.passes: dict[str, PassState] = {}
        self.equity: list[tuple[float, float]] = []  # (ts, account value)
        self.marks: list[tuple[float, float]] = []  # (ts, high-water mark recorded), since the last kill reset
        self.max_expiry_ms = 0
        self.expiry_ms: dict[str, int] = {}  # cloid -> the latest expiresAfter of a request that carried it
        self.starts: list[dict] = []
        self.kills: list[dict] = []
        self.header: dict | None = None  # the first ``journal`` record (None: a journal of version 1)
        self.latched: dict | None = None  # the ``kill`` record the kill switch holds on (None: not tripped)
        self.reset_ts: float | None = None  # when the kill switch was last reset

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
        elif event == "journal" and self.header is None:
            self.header = record
        elif event == "equity":
            value = record.get("account_value")
            if isinstance(value, (int, float)) and ts is not None and math.isfinite(value):
                self.equity.append((ts, float(value)))
                mark = record.get("high_water")
                if isinstance(mark, (int, float)) and not isinstance(mark, bool) and math.isfinite(mark):
                    self.marks.append((ts, float(mark)))
        elif event == "high_water":  # a mark rebuilt from the exchange's account history
            mark = record.get("high_water")
            if isinstance(mark, (int, float)) and not isinstance(mark, bool) and ts is not None:
                self.marks.append((ts, float(mark)))
        elif event == "kill":
            self.kills.append(record)
            self.latched = record
        elif event == "kill_reset":
            self.latched = None
            self.reset_ts = ts
            self.marks = []
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

    def _since_reset(self) -> list[tuple[float, float]]:
        if self.reset_ts is None:
            return self.equity
        return [(t, v) for t, v in self.equity if t > self.reset_ts]

    @property
    def high_water(self) -> float | None:
        """The highest account value, or high-water mark, recorded since the kill switch was last reset (None
        before the first)."""
        values = [v for _, v in self._since_reset()] + [v for _, v in self.marks]
        return max(values, default=None)

    @property
    def first_equity(self) -> tuple[float, float] | None:
        return self.equity[0] if self.equity else None

    def day_reference(self, now: float) -> float | None:
        """The equity a day's loss is measured from: the last value recorded before 00:00 UTC of ``now``'s day
        if it was recorded within the previous day, else the first value recorded today (None: none yet)."""
        day = math.floor(now / 86400) * 86400
        equity = self._since_reset()  # a reset kill switch measures the day's loss from the next record on
        before = [(t, v) for t, v in equity if day - 86400 <= t < day]
        if before:
            return before[-1][1]
        today = [(t, v) for t, v in equity if day <= t <= now]
        return today[0][1] if today else None

    def last(self, *events: str) -> dict | None:
        """The last record with one of these events."""
        for record in reversed(self.records):
            if record.get("event") in events:
                return record
        return None


def read_journal(path: str | Path, *, missing_ok: bool = False, strict: bool = False) -> JournalState:
    """Read a journal. Lines that are not JSON objects are skipped and their numbers kept in ``bad_lines``;
    ``torn_tail`` says the last line was cut short (a process killed while writing it). A bad line followed by
    records is a torn write only when the next record names it (``torn_line``, written by the next
    :class:`Journal`); any other is kept in ``corrupt_lines``, and with ``strict`` raises
    :class:`~genetic_sizer.errors.JournalCorrupted` naming it. A missing file is a ConfigError unless
    ``missing_ok`` (an empty state)."""
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
    pending: int | None = None  # a bad line not yet known to be a torn write
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            record = None
        if not isinstance(record, dict):
            state.bad_lines.append(number)
            if pending is not None:
                state.corrupt_lines.append(pending)
            pending = number
            continue
        if pending is not None and record.get("torn_line") != pending:
            state.corrupt_lines.append(pending)
        pending = None
        state.add(record)
    state.torn_tail = pending is not None  # only blank lines after it: the write a killed process left
    if strict and state.corrupt_lines:
        first = state.corrupt_lines[0]
        text = lines[first - 1][:80].decode("utf-8", errors="replace")
        more = f" (and line {', '.join(map(str, state.corrupt_lines[1:]))})" if len(state.corrupt_lines) > 1 else ""
        raise JournalCorrupted(
            f"journal {str(path)!r} is corrupted: line {first}{more} is not a JSON record ({text!r}), and it is not "
            "a torn last write. Refusing to trade on it: the lost line may hold orders, fills or the equity "
            "high-water mark. Restore the line, or move the journal aside to start a new one (the kill switch and "
            "the high-water mark are also kept in the state directory)"
        )
    return state


class Journal:
    """An open journal: the state read from it, and :meth:`append`.

    With ``lock`` (the default) an exclusive lock on ``PATH.lock`` keeps a second process from writing the
    same journal (and trading the same pass) at the same time; the kernel releases it when the process dies,
    however it dies. A torn last line left by a killed process is reported in :attr:`notes` and ended with a
    newline, so that the next record starts on its own line (its bytes are kept); that record names it
    (``torn_line``). A corrupted line elsewhere raises :class:`~genetic_sizer.errors.JournalCorrupted` (see
    :func:`read_journal`). A journal readable by others is narrowed to mode 0600 (and said so in ``notes``)."""

    def __init__(self, path: str | Path, *, lock: bool = True):
        self.path = Path(path)
        self.notes: list[str] = []
        self._lock_fd: int | None = None
        self._torn: int | None = None  # the torn line the next record acknowledges
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the folder of journal {str(self.path)!r}: {exc.strerror}") from None
        if lock:
            self._acquire()
        try:
            self.state = read_journal(self.path, missing_ok=True, strict=True)
            self._narrow()
            if self.state.torn_tail:
                self._torn = self.state.bad_lines[-1]
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

    def _narrow(self) -> None:
        try:
            mode = self.path.stat().st_mode & 0o777
        except FileNotFoundError:
            return
        if mode & 0o077:
            os.chmod(self.path, 0o600)
            self.notes.append(f"journal {self.path}: was readable by others (mode {mode:o}); narrowed to 0600")

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
            with _open_append(self.path) as fh:
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, record: dict) -> dict:
        """Write ``record`` (with ``time`` and ``ts`` added) as one line, fsync it, and fold it into the state."""
        now = time.time()
        record = {"time": now_iso(now), "ts": round(now, 6), **record}
        if self._torn is not None:
            record["torn_line"] = self._torn
        line = json.dumps(jsonable(record), allow_nan=False) + "\n"
        new = not self.path.exists()
        with _open_append(self.path) as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._torn = None
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

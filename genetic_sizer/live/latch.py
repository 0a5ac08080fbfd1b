"""The kill switch latches: once it fired, no pass trades again, after a bounce or a restart, until a person runs
``genetic-sizer size --reset-kill`` (:func:`reset_kill`).

A trip is recorded twice: as the journal's ``kill`` record and in the account's state directory
(:class:`~genetic_sizer.live.state.AccountStore`), so that deleting either keeps it. :func:`keep` copies what the
state directory must hold from every record the session journals (a ``kill``, the equity high-water mark);
:func:`check_latch` refuses a pass while either says it tripped.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable
from pathlib import Path

from genetic_sizer.errors import ConfigError, KillSwitchTripped
from genetic_sizer.live.journal import Journal
from genetic_sizer.live.state import AccountStore

__all__ = ["check_latch", "describe_kill", "keep", "latched_kill", "reset_kill"]


def latched_kill(session) -> dict | None:
    """The kill record the switch holds on (the state directory's, else the journal's), or None."""
    store = getattr(session, "store", None)
    held = store.kill if store is not None else None
    return held or session.state.latched


def describe_kill(kill: dict) -> str:
    ts = kill.get("ts")
    when = (
        _dt.datetime.fromtimestamp(float(ts), _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if isinstance(ts, (int, float))
        else kill.get("time") or "?"
    )
    where = f" in pass {kill['pass']}" if kill.get("pass") else ""
    return f"{kill.get('reason') or 'no reason recorded'} (tripped at {when}{where})"


def check_latch(session) -> None:
    """Raise :class:`~genetic_sizer.errors.KillSwitchTripped` while the kill switch is latched; a trip the journal
    records but the state directory does not (a deleted state file) is written back there."""
    kill = latched_kill(session)
    if kill is None:
        return
    store = getattr(session, "store", None)
    if store is not None and store.kill is None:
        reset = store.last_reset
        if reset is not None and reset >= float(kill.get("ts") or 0.0):
            # reset after this trip (--reset-kill given another journal): the journal learns it too
            session.record({"event": "kill_reset", "kill": kill, "by": "the state directory's reset", "reset": reset})
            return
        store.trip(kill)
    raise KillSwitchTripped(
        f"KILL SWITCH latched: {describe_kill(kill)}. Nothing trades until a person runs "
        "`genetic-sizer size --reset-kill` for this account"
    )


def keep(session, record: dict) -> None:
    """What the state directory keeps of a journaled ``record``: a ``kill`` latches there too; an ``equity``
    record's account value and high-water mark raise the kept mark."""
    store = getattr(session, "store", None)
    if store is None:
        return
    event = record.get("event")
    if event == "kill":
        store.trip(record)
    elif event == "equity":
        values = [record.get("account_value"), record.get("high_water")]
        values = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if values:
            store.note_equity(max(values), float(record.get("ts") or time.time()))


def reset_kill(
    store: AccountStore,
    journal: str | Path | None,
    *,
    yes: bool = False,
    confirm: Callable[[str], bool] | None = None,
    report: Callable[[str], None] = print,
) -> bool | None:
    """``genetic-sizer size --reset-kill``: clear the latched kill switch of ``store``'s account and network.

    Takes the account's lock (refused while a trader runs), prints what tripped it (the state directory's record,
    else the journal's), asks ``confirm(question)`` unless ``yes`` (no ``confirm`` and no ``yes``: ConfigError),
    then clears the state directory's latch and appends a ``kill_reset`` record to ``journal`` (when it exists). The
    high-water mark and the day's reference equity start again from the next pass. Returns True when it reset,
    None when nothing was tripped, False when the person declined."""
    store.acquire()
    try:
        log = Journal(journal) if journal is not None and os.path.exists(journal) else None
        try:
            owner = (log.state.header or (log.state.starts[-1] if log.state.starts else {})) if log else {}
            named = str(owner.get("account") or owner.get("address") or store.account)
            if named.lower() != store.account:
                raise ConfigError(f"journal {journal} belongs to account {named}, not {store.account}: name its own")
            kill = store.kill or (log.state.latched if log is not None else None)
            where = f"account {store.account} on {store.network}"
            if kill is None:
                report(f"the kill switch of {where} is not tripped; nothing to reset")
                return None
            report(f"the kill switch of {where} tripped: {describe_kill(kill)}")
            if log is None and journal is not None:
                report(f"(journal {journal} does not exist: only the state directory's record is cleared)")
            if not yes:
                if confirm is None:
                    raise ConfigError("--reset-kill needs --yes when it cannot ask (no terminal)")
                if not confirm(f"Reset the kill switch of {where} and let it trade again? Type 'reset': "):
                    report("not reset; the kill switch still holds")
                    return False
            now = time.time()
            store.reset(now)
            if log is not None:
                log.append(
                    {"event": "kill_reset", "kill": kill, "pid": os.getpid(), "by": "genetic-sizer --reset-kill"}
                )
            report(f"kill switch reset for {where}; the high-water mark starts again at the next pass")
            return True
        finally:
            if log is not None:
                log.close()
    finally:
        store.release()

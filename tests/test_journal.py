"""The live loop's journal (genetic_sizer.live.journal): fsync'ed JSON lines, a torn last line tolerated and reported,
one writer at a time, and what the loop learns from reading it back."""

from __future__ import annotations

import json
import math
import multiprocessing
import os

import pytest

from genetic_sizer.errors import ConfigError
from genetic_sizer.live.journal import Journal, read_journal

DAY = 86400.0


def test_records_are_lines_with_time_and_are_read_back(tmp_path):
    path = tmp_path / "sub" / "j.jsonl"
    with Journal(path) as j:
        j.append({"event": "equity", "account_value": 100.0})
        j.append({"event": "plan", "pass": "p", "plan": {"mid": math.nan}})
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    assert first["event"] == "equity" and first["time"].endswith("Z") and isinstance(first["ts"], float)
    assert json.loads(lines[1])["plan"] == {"mid": None}  # NaN is written as null: standard JSON
    state = read_journal(path)
    assert [r["event"] for r in state.records] == ["equity", "plan"] and state.bad_lines == []
    assert state.passes["p"].plans == 1
    with pytest.raises(ConfigError, match="does not exist"):
        read_journal(tmp_path / "missing.jsonl")


def test_a_torn_last_line_is_tolerated_reported_and_the_next_record_starts_a_new_line(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:
        j.append({"event": "equity", "account_value": 100.0})
    with open(path, "a") as fh:  # a process killed in the middle of a write
        fh.write('{"event": "send", "pass": "p", "attem')
    state = read_journal(path)
    assert state.bad_lines == [2] and state.torn_tail and len(state.records) == 1
    with Journal(path) as j:
        assert j.notes == [
            f"journal {path}: skipped a torn last line (line 2); a process was probably killed while writing"
        ]
        j.append({"event": "equity", "account_value": 101.0})
    state = read_journal(path)
    assert state.bad_lines == [2] and not state.torn_tail  # now a torn line in the middle, still skipped
    assert [r["account_value"] for r in state.records] == [100.0, 101.0]
    assert path.read_text().splitlines()[1] == '{"event": "send", "pass": "p", "attem'  # its bytes are kept


def _hold_lock(path, ready, release):
    with Journal(path):
        ready.set()
        release.wait(10)


def test_one_writer_at_a_time_and_the_lock_dies_with_its_process(tmp_path):
    path = tmp_path / "j.jsonl"
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold_lock, args=(path, ready, release))
    other.start()
    try:
        assert ready.wait(10)
        with pytest.raises(ConfigError, match=rf"in use by another process \(pid {other.pid}\)"):
            Journal(path)
    finally:
        os.kill(other.pid, 9)  # killed, not closed: the kernel releases the lock
        other.join(10)
    with Journal(path) as j:
        j.append({"event": "stop"})
    assert read_journal(path).records[-1]["event"] == "stop"


def test_what_the_loop_learns_from_its_journal(tmp_path):
    path = tmp_path / "j.jsonl"
    orders = [
        {"coin": "BTC", "leg": "increase", "side": "buy", "size": 0.01, "limit_px": 60600.0, "cloid": "0x" + "1" * 32},
        {"coin": "ETH", "leg": "increase", "side": "buy", "size": 0.5, "limit_px": 3030.0, "cloid": "0x" + "2" * 32},
    ]
    with Journal(path) as j:
        j.append({"event": "send", "pass": "p1", "attempt": 0, "orders": orders[:1]})
        j.append(
            {"event": "request", "pass": "p1", "attempt": 0, "expires_after_ms": 5_000, "cloids": [orders[0]["cloid"]]}
        )
        j.append({"event": "result", "pass": "p1", "attempt": 0, "results": [{**orders[0], "status": "filled"}]})
        j.append({"event": "pass_end", "pass": "p1", "status": "complete"})
        j.append({"event": "send", "pass": "p2", "attempt": 3, "orders": orders})
        j.append(
            {
                "event": "request",
                "pass": "p2",
                "attempt": 3,
                "expires_after_ms": 9_000,
                "cloids": [o["cloid"] for o in orders],
            }
        )
        j.append({"event": "result", "pass": "p2", "attempt": 3, "results": [], "unknown": [orders[1]["cloid"]]})
    state = read_journal(path)
    p1, p2 = state.passes["p1"], state.passes["p2"]
    assert p1.complete and p1.next_attempt == 1 and p1.unresolved() == []
    assert not p2.complete and p2.next_attempt == 4
    assert [o["coin"] for o in p2.unresolved()] == ["BTC", "ETH"]  # one unknown, one without any result
    assert [(o["pass"], o["attempt"]) for o in state.unresolved()] == [("p2", 3), ("p2", 3)]
    assert state.unresolved_expiry_ms() == 9_000 and state.max_expiry_ms == 9_000


def test_high_water_mark_and_the_days_reference_equity():
    from genetic_sizer.live.journal import JournalState

    state = JournalState()
    today = 20_000 * DAY
    for ts, value in [
        (today - 2 * DAY, 12_000.0),
        (today - 3600, 10_000.0),
        (today + 60, 9_800.0),
        (today + 7200, 9_900.0),
    ]:
        state.add({"event": "equity", "ts": ts, "account_value": value})
    assert state.high_water == 12_000.0
    # the last value before 00:00 UTC (within the previous day) is today's reference
    assert state.day_reference(today + 9000) == 10_000.0
    # tomorrow, the reference is the last value of today
    assert state.day_reference(today + DAY + 10) == 9_900.0
    # two days later, with nothing recorded in between: the first value of that day, or none yet
    assert state.day_reference(today + 3 * DAY) is None
    state.add({"event": "equity", "ts": today + 3 * DAY + 5, "account_value": 9_000.0})
    assert state.day_reference(today + 3 * DAY + 50) == 9_000.0
    # records of an earlier version (a whole pass per line, no "event") still count
    state.add({"time": "2030-01-01T00:00:00.000000Z", "plan": {"account_value": 15_000.0}})
    assert state.high_water == 15_000.0

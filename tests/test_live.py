"""Live orchestration pieces that need no exchange: periods, the every-N loop, the journal."""

from __future__ import annotations

import json

import pytest

from genetic_sizer.errors import ConfigError, RetryableExchangeError
from genetic_sizer.live import append_journal, parse_period, run_every


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("1.5h", 5400), ("1d", 86400)])
def test_parse_period(text, seconds):
    assert parse_period(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "0h", "-1h", "1y", "soon"])
def test_parse_period_rejects(text):
    with pytest.raises(ConfigError, match="--every must be a period"):
        parse_period(text)


def test_run_every_survives_temporary_errors_and_stops_on_ctrl_c():
    calls, sleeps, lines = [], [], []

    def once(k):
        calls.append(k)
        if k == 1:
            raise RetryableExchangeError("timeout")
        if k == 3:
            raise KeyboardInterrupt

    runs = run_every(60.0, once, report=lines.append, sleep=sleeps.append)
    assert calls == [0, 1, 2, 3]
    assert runs == 3
    # the schedule is anchored at the start (no drift): with a clock that does not move, waits grow by a period
    assert sleeps == pytest.approx([60, 120, 180], abs=1.0)
    assert "pass 1: RetryableExchangeError: timeout; trying again next period" in lines
    assert lines[-1] == "stopped after 3 passes"
    assert run_every(1.0, lambda k: None, sleep=lambda s: None, max_runs=2) == 2


def test_journal_takes_plans_with_unpriced_coins(tmp_path):
    """A position in a coin the exchange no longer lists has no mid (NaN): the journal records null."""
    from genetic_sizer.sizer import AssetInfo, plan_orders

    plan = plan_orders({"SOL": 1.0}, 1000, {"GONE": 3.0}, {"SOL": 100.0}, {"SOL": AssetInfo("SOL", 2, 20)})
    path = tmp_path / "journal.jsonl"
    append_journal(path, {"plan": plan.to_dict()})
    coins = {c["coin"]: c for c in json.loads(path.read_text())["plan"]["coins"]}
    assert coins["GONE"]["mid"] is None and coins["GONE"]["reason"] == "not listed"
    assert coins["SOL"]["mid"] == 100.0


def test_journal_appends_json_lines(tmp_path):
    path = tmp_path / "j" / "journal.jsonl"
    append_journal(path, {"a": 1})
    append_journal(path, {"b": [1.5, None]})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1}, {"b": [1.5, None]}]

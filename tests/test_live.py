"""Live orchestration: periods, which account a pass trades, the every-N loop and its error policy, the
journal, and a sizing pass that fails half-way (against the fake exchange, through the real SDK)."""

from __future__ import annotations

import json

import pytest

from genetic_sizer import champion as C
from genetic_sizer.errors import ChampionError, ConfigError, ExchangeError, RetryableExchangeError, SizingError
from genetic_sizer.exchange import Credentials, HyperliquidClient
from genetic_sizer.live import (
    EXIT_BAD_INPUT,
    EXIT_EXCHANGE_ERROR,
    EXIT_OK,
    LoopResult,
    append_journal,
    parse_period,
    resolve_account,
    run_every,
    size_once,
)
from genetic_sizer.sizer import SizerSettings
from tests.fake_hyperliquid import FakeHyperliquid
from tests.test_live_cli import write_champion

KEY_A = "0x" + "22" * 32  # throwaway test keys, never real ones
AGENT_KEY = "0x" + "11" * 32
OTHER = "0x" + "ab" * 20  # some other account


def _wallet(key):
    from eth_account import Account

    return Account.from_key(key)


A = _wallet(KEY_A).address
AGENT = _wallet(AGENT_KEY).address


def _assert_no_key(text: str) -> None:
    for key in (KEY_A, AGENT_KEY):
        assert key[2:] not in text


# ---- which account a pass reads and trades ------------------------------------------------------------
def test_executing_trades_only_the_account_the_key_acts_for():
    own = Credentials(_wallet(KEY_A), A)
    assert resolve_account(None, own, execute=True) == A
    assert resolve_account(A.lower(), own, execute=True) == A  # the same account, whatever the case
    with pytest.raises(ConfigError, match=f"--address {OTHER} is not the account this key trades") as err:
        resolve_account(OTHER, own, execute=True)
    assert f"its orders go to {A} (the key's own account)" in str(err.value)
    _assert_no_key(str(err.value))
    # an API wallet acts for HL_ACCOUNT_ADDRESS: that account is traded, and it is the one to name
    agent = Credentials(_wallet(AGENT_KEY), A)
    assert resolve_account(None, agent, execute=True) == A
    assert resolve_account(A, agent, execute=True) == A
    with pytest.raises(
        ConfigError, match=f"its orders go to {A} \\(HL_ACCOUNT_ADDRESS, the account this API wallet"
    ) as err:
        resolve_account(OTHER, agent, execute=True)
    assert f"HL_ACCOUNT_ADDRESS={OTHER}" in str(err.value)
    _assert_no_key(str(err.value))
    with pytest.raises(ConfigError, match="--execute needs a signing key"):
        resolve_account(A, None, execute=True)


def test_a_dry_run_may_read_any_account():
    own = Credentials(_wallet(KEY_A), A)
    assert resolve_account(OTHER, own, execute=False) == OTHER
    assert resolve_account(None, own, execute=False, env={"HL_ACCOUNT_ADDRESS": OTHER}) == A
    assert resolve_account(None, None, execute=False, env={"HL_ACCOUNT_ADDRESS": OTHER}) == OTHER
    with pytest.raises(ConfigError, match="no account to read"):
        resolve_account(None, None, execute=False, env={})
    with pytest.raises(ConfigError, match="--address must be an address") as err:
        resolve_account(KEY_A, own, execute=False)  # a key pasted as an address is not echoed
    _assert_no_key(str(err.value))


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("1.5h", 5400), ("1d", 86400)])
def test_parse_period(text, seconds):
    assert parse_period(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "0h", "-1h", "1y", "soon"])
def test_parse_period_rejects(text):
    with pytest.raises(ConfigError, match="--every must be a period"):
        parse_period(text)


def test_run_every_survives_temporary_errors_and_stops_on_ctrl_c(tmp_path):
    calls, sleeps, lines = [], [], []
    journal = tmp_path / "j.jsonl"

    def once(k):
        calls.append(k)
        if k == 1:
            raise RetryableExchangeError("timeout")
        if k == 3:
            raise KeyboardInterrupt

    outcome = run_every(60.0, once, report=lines.append, sleep=sleeps.append, journal=journal)
    assert calls == [0, 1, 2, 3]
    assert outcome == LoopResult(passes=3, exit_code=EXIT_OK)
    # the schedule is anchored at the start (no drift): with a clock that does not move, waits grow by a period
    assert sleeps == pytest.approx([60, 120, 180], abs=1.0)
    assert "pass 1: RetryableExchangeError: timeout; trying again next period" in lines
    assert lines[-1] == "stopped after 3 passes"
    (record,) = [json.loads(line) for line in journal.read_text().splitlines()]
    assert {k: record[k] for k in ("event", "pass", "error_type", "error", "exit_code")} == {
        "event": "retry",
        "pass": 1,
        "error_type": "RetryableExchangeError",
        "error": "timeout",
        "exit_code": None,
    }
    assert run_every(1.0, lambda k: None, sleep=lambda s: None, max_passes=2) == LoopResult(2, EXIT_OK)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ExchangeError("the exchange refused the order request: Invalid signature."), EXIT_EXCHANGE_ERROR),
        (ExchangeError("unknown coin 'XRP': not in the exchange's universe"), EXIT_EXCHANGE_ERROR),
        (SizingError("the champion holds 'OLD', which is delisted"), EXIT_BAD_INPUT),
        (ChampionError("champion.json: weights do not sum to 1"), EXIT_BAD_INPUT),
    ],
)
def test_permanent_errors_stop_the_loop_with_a_journal_record(tmp_path, error, code):
    calls, lines = [], []
    journal = tmp_path / "j.jsonl"

    def once(k):
        calls.append(k)
        if k == 2:
            raise error

    outcome = run_every(0.01, once, report=lines.append, sleep=lambda s: None, max_passes=10, journal=journal)
    assert calls == [0, 1, 2]  # not retried
    assert outcome == LoopResult(3, code, f"{type(error).__name__}: {error}")
    assert lines == [f"pass 2: {type(error).__name__}: {error}; stopping (exit code {code})"]
    (record,) = [json.loads(line) for line in journal.read_text().splitlines()]
    assert (record["event"], record["pass"], record["error"], record["exit_code"]) == ("stopped", 2, str(error), code)


def test_a_bug_in_a_pass_is_journaled_and_raised(tmp_path):
    journal = tmp_path / "j.jsonl"

    def once(k):
        raise ZeroDivisionError("oops")

    with pytest.raises(ZeroDivisionError):
        run_every(1.0, once, sleep=lambda s: None, journal=journal)
    assert json.loads(journal.read_text())["error_type"] == "ZeroDivisionError"
    with pytest.raises(ConfigError, match="max_passes"):
        run_every(1.0, once, max_passes=0)


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


# ---- a pass that fails after some orders were accepted --------------------------------------------------
def test_a_pass_that_fails_half_way_journals_every_accepted_order(tmp_path):
    """The request for BTC and SOL is processed (BTC fills, SOL is rejected) but its answer is lost; the lookup
    finds BTC, SOL is sent again, and every resend fails with HTTP 502 until the client gives up. The pass fails,
    but BTC's fill is in the journal and in the result attached to the error."""
    champ = C.load(write_champion(tmp_path / "c.json", {"BTC": 0.5, "SOL": 0.5}))
    journal = tmp_path / "journal.jsonl"
    with FakeHyperliquid(account_address=A, account_value=10_000.0) as fake:
        fake.reject_coins["SOL"] = "Insufficient margin to place order."
        fake.timeout_next_exchange(1.0)
        fake.fail_next(502, count=100, path="/exchange", skip=1)
        with HyperliquidClient(
            fake.url,
            credentials=Credentials(_wallet(KEY_A), A),
            timeout=0.3,
            max_retries=1,
            backoff=0.01,
            clock_tolerance=0.05,
        ) as client:
            with pytest.raises(RetryableExchangeError, match="never executed, not sent again: SOL") as err:
                size_once(client, champ, SizerSettings(), address=A, network="test", execute=True, journal=journal)
        btc = fake.orders[0]
        assert fake.position("BTC") == 0.08333 and len(fake.orders) == 1  # 5,000 / 60,000, once
    partial = err.value.size_result
    assert [(r.coin, r.status, r.filled_size, r.oid) for r in partial.results] == [("BTC", "filled", 0.08333, btc.oid)]
    (record,) = [json.loads(line) for line in journal.read_text().splitlines()]
    assert record["executed"] is True
    assert [(r["coin"], r["status"], r["filled_size"]) for r in record["results"]] == [("BTC", "filled", 0.08333)]
    assert record["error"].startswith("RetryableExchangeError: placing 2 orders")
    assert record["errors"] == [record["error"]] and record["unknown"] == []
    assert record["drift"]["BTC"]["position"] == 0.08333 and record["drift"]["SOL"]["position"] == 0.0
    _assert_no_key(journal.read_text())


def test_size_once_refuses_to_trade_an_account_other_than_the_clients(tmp_path):
    champ = C.load(write_champion(tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.5}))
    with FakeHyperliquid(
        account_address=A, other_accounts={OTHER: {"account_value": 50_000.0, "positions": {}}}
    ) as fake:
        with HyperliquidClient(fake.url, credentials=Credentials(_wallet(KEY_A), A)) as client:
            with pytest.raises(ConfigError, match=f"address {OTHER} is not the account this client trades"):
                size_once(client, champ, SizerSettings(), address=OTHER, network="test", execute=True)
        assert fake.exchange_requests == [] and fake.info_requests == []

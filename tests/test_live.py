"""Live orchestration: periods, which account a pass trades, the every-N loop and its error policy, the
journal, and a sizing pass that fails half-way (against the fake exchange, through the real SDK)."""

from __future__ import annotations

import json
import time

import pytest

from genetic_sizer.errors import (
    ChampionError,
    ConfigError,
    ExchangeError,
    KillSwitchTripped,
    PassRefused,
    RetryableExchangeError,
    SizingError,
)
from genetic_sizer.exchange.client import HyperliquidClient
from genetic_sizer.exchange.credentials import Credentials
from genetic_sizer.exchange.wire import OrderIntent
from genetic_sizer.live.account import resolve_account
from genetic_sizer.live.guards import Guards, Limits, Period, order_cloid
from genetic_sizer.live.journal import Journal, append_journal, read_journal
from genetic_sizer.live.loop import Trader, size_once
from genetic_sizer.live.outcomes import (
    EXIT_BAD_INPUT,
    EXIT_EXCHANGE_ERROR,
    EXIT_KILLED,
    EXIT_OK,
    LoopResult,
    exit_code_for,
)
from genetic_sizer.live.settings import LiveConfig, calendar_of, parse_period
from genetic_sizer.live.sizer import SizerSettings
from genetic_sizer.live.status import live_status
from genetic_sizer.runs import champion as C
from tests.fake_hyperliquid import IOC_NO_MATCH_ERROR, FakeHyperliquid
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


def test_journal_takes_plans_with_unpriced_coins(tmp_path):
    """A position in a coin the exchange no longer lists has no mid (NaN): the journal records null."""
    from genetic_sizer.exchange.wire import AssetInfo
    from genetic_sizer.live.sizer import plan_orders

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
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    events = [r["event"] for r in records]
    # each request's expiry is journaled before it leaves (the first and every resend), then the outcome
    assert events[:3] == ["equity", "plan", "send"] and events[-2:] == ["result", "pass_end"]
    assert len(events) >= 6 and set(events[3:-2]) == {"request"}
    send, result, end = records[2], records[-2], records[-1]
    assert [o["coin"] for o in send["orders"]] == ["BTC", "SOL"]
    # BTC executed (found by its cloid after the lost answer); SOL never executed: both settled, nothing unknown
    assert [(r["coin"], r["status"], r["filled_size"]) for r in result["results"]] == [
        ("BTC", "filled", 0.08333),
        ("SOL", "not_executed", 0.0),
    ]
    assert result["unknown"] == [] and result["error"].startswith("RetryableExchangeError: placing 2 orders")
    assert end["executed"] is True and end["status"] == "failed" and end["error"] == result["error"]
    assert end["errors"] == [end["error"]] and end["unknown"] == []
    assert end["drift"]["BTC"]["position"] == 0.08333 and end["drift"]["SOL"]["position"] == 0.0
    assert read_journal(journal).unresolved() == []
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


# ---- the trader: policy, loop, rounds, guards, kill switch ------------------------------------------------
@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RetryableExchangeError("timeout"), None),
        (PassRefused("mid 3% from the mark"), None),
        (KillSwitchTripped("drawdown 25%"), EXIT_KILLED),
        (ExchangeError("the exchange refused the order request: Invalid signature."), EXIT_EXCHANGE_ERROR),
        (ExchangeError("unknown coin 'XRP': not in the exchange's universe"), EXIT_EXCHANGE_ERROR),
        (SizingError("the champion holds 'OLD', which is delisted"), EXIT_BAD_INPUT),
        (ChampionError("champion.json: weights do not sum to 1"), EXIT_BAD_INPUT),
        (ConfigError("this machine's clock is 30 s ahead"), EXIT_BAD_INPUT),
    ],
)
def test_which_errors_stop_the_loop_and_with_which_code(error, code):
    assert exit_code_for(error) == code


def test_a_bug_is_not_classified():
    with pytest.raises(ZeroDivisionError):
        exit_code_for(ZeroDivisionError("oops"))


class Clock:
    """A virtual clock for the trader's periods and waits (the exchange client keeps real time)."""

    def __init__(self, t: float):
        self.t = t
        self.sleeps: list[float] = []
        self.on_sleep = None

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        if self.on_sleep is not None:
            self.on_sleep(self)


WEIGHTS = {"BTC": 0.5, "ETH": 0.3, "SOL": 0.2}
TARGETS = {"BTC": 0.08333, "ETH": 1.0, "SOL": 13.33}  # 10,000 USD at 60,000 / 3,000 / 150, rounded toward zero


@pytest.fixture
def fake():
    with FakeHyperliquid(account_address=A, account_value=10_000.0) as server:
        server.refuse_duplicate_cloids = False
        yield server


def _client(fake, **kw):
    options = {"timeout": 1.0, "max_retries": 1, "backoff": 0.01, "clock_tolerance": 0.05, **kw}
    return HyperliquidClient(fake.url, credentials=Credentials(_wallet(KEY_A), A), **options)


def _trader(
    client, tmp_path, journal=None, *, weights=WEIGHTS, clock=None, settings=None, lines=None, strategy=None, **config
):
    champ = C.load(write_champion(tmp_path / "c.json", weights, strategy=strategy))
    options = {"execute": True, "period": Period.parse("1h"), "round_pause": 0.0, **config}
    return Trader(
        client,
        champ,
        settings or SizerSettings(),
        address=A,
        network="test",
        config=LiveConfig(**options),
        journal=journal,
        report=(lines.append if lines is not None else lambda s: None),
        clock=clock or time.time,
        sleep=clock.sleep if clock is not None else time.sleep,
    )


def _events(path, *events):
    return [r for r in read_journal(path).records if not events or r["event"] in events]


def test_a_failing_pass_is_retried_within_its_period_with_backoff_then_the_period_is_skipped(fake, tmp_path):
    """Every read fails: the pass is tried again after 1, 2, 4 ... s (jittered within [d/2, d]) until the next try
    would fall after the period's end; the period is journaled as skipped and the next period trades."""
    period = Period.parse("60s")
    start = (period.index(time.time()) + 1) * 60.0
    clock = Clock(start + 5.0)
    fake.fail_next(503, count=10_000, path="/info")
    clock.on_sleep = lambda c: fake._faults.clear() if c.t >= start + 60 else None
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake, max_retries=0, sleep=lambda s: None) as client:
        trader = _trader(client, tmp_path, journal, clock=clock, period=period, guards=Guards(max_data_age=1e6))
        outcome = trader.run_loop(max_passes=2)
    journal.close()
    assert outcome == LoopResult(2, EXIT_OK)
    errors = _events(tmp_path / "j.jsonl", "error")
    waits = [e["retry_in"] for e in errors]
    assert len(waits) >= 4
    for n, wait in enumerate(waits):
        assert 2**n / 2 <= wait <= 2**n  # exponential backoff with jitter
    assert 5.0 + sum(waits) < 60.0
    (skipped,) = _events(tmp_path / "j.jsonl", "skipped")
    assert skipped["period"] == period.label(period.index(start)) and skipped["tries"] == len(waits) + 1
    ends = _events(tmp_path / "j.jsonl", "pass_end")
    assert ends[-1]["status"] == "complete" and ends[-1]["period"] == period.label(period.index(start) + 1)
    assert {c: fake.position(c) for c in TARGETS} == TARGETS


def test_a_retry_after_is_honoured_between_tries(fake, tmp_path):
    period = Period.parse("60s")
    clock = Clock((period.index(time.time()) + 1) * 60.0 + 1.0)
    fake.fail_next(429, path="/info", body='{"code": 429, "msg": "slow down"}', headers={"Retry-After": "7"})
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake, max_retries=0, sleep=lambda s: None) as client:
        trader = _trader(client, tmp_path, journal, clock=clock, period=period, guards=Guards(max_data_age=1e6))
        assert trader.run_loop(max_passes=1) == LoopResult(1, EXIT_OK)
    journal.close()
    (error,) = _events(tmp_path / "j.jsonl", "error")
    assert error["retry_in"] == 7.0 and "HTTP 429" in error["error"]
    assert _events(tmp_path / "j.jsonl", "pass_end")[-1]["status"] == "complete"


def test_ctrl_c_between_passes_ends_the_loop_normally(fake, tmp_path):
    clock = Clock(time.time())

    def interrupt(c):
        raise KeyboardInterrupt

    clock.on_sleep = interrupt
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        assert _trader(client, tmp_path, journal, clock=clock).run_loop() == LoopResult(1, EXIT_OK)
    journal.close()
    stop = _events(tmp_path / "j.jsonl")[-1]
    assert (stop["event"], stop["reason"], stop["exit_code"]) == ("stop", "interrupted", 0)


def test_a_bug_in_a_pass_is_journaled_and_raised(fake, tmp_path, monkeypatch):
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        monkeypatch.setattr(client, "meta", lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            _trader(client, tmp_path, journal).run_loop(max_passes=1)
    journal.close()
    stop = _events(tmp_path / "j.jsonl")[-1]
    assert (stop["event"], stop["reason"], stop["error_type"]) == ("stop", "bug", "ZeroDivisionError")
    with pytest.raises(ConfigError, match="max_passes"):
        _trader(client, tmp_path).run_loop(max_passes=0)


def test_a_partial_fill_is_recorded_and_its_remainder_traded_in_a_second_round(fake, tmp_path):
    fake.partial_fill(0.5, coin="BTC")  # BTC fills 0.04166 of 0.08333
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(client, tmp_path, journal, pass_retries=1)
        index = trader.config.period.index(time.time())
        result = trader.run_pass(index)
    journal.close()
    assert result.status == "complete" and result.rounds == 2
    assert [(r.coin, r.filled_size, result.partial(r)) for r in result.results] == [
        ("BTC", 0.04166, True),
        ("ETH", 1.0, False),
        ("SOL", 13.33, False),
        ("BTC", 0.04167, False),  # the remainder, sized from the position read again
    ]
    assert {c: fake.position(c) for c in TARGETS} == TARGETS
    first, second = _events(tmp_path / "j.jsonl", "result")
    assert first["results"][0]["partial"] is True and first["results"][0]["size"] == 0.08333
    assert (second["attempt"], second["results"][0]["coin"]) == (1, "BTC")
    pid = result.pass_id
    me = trader.session.trader_id
    assert second["results"][0]["cloid"] == order_cloid(A, pid, "BTC", "increase", 1, trader=me)
    assert first["results"][0]["cloid"] == order_cloid(A, pid, "BTC", "increase", 0, trader=me)
    assert "round 1: BTC filled 0.04166 of 0.08333" in result.notes


def test_without_retries_a_partial_fill_leaves_a_reported_drift_that_the_next_pass_trades(fake, tmp_path):
    fake.partial_fill(0.5, coin="BTC")
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(client, tmp_path, journal, pass_retries=0)
        index = trader.config.period.index(time.time())
        first = trader.run_pass(index)
        assert first.status == "partial"
        assert first.drift["BTC"]["position"] == 0.04166
        assert first.drift["BTC"]["drift_usd"] == pytest.approx(0.04167 * 60_000)
        second = trader.run_pass(index + 1)
    journal.close()
    assert second.status == "complete"
    assert [(r.coin, r.filled_size) for r in second.results] == [("BTC", 0.04167)]
    assert {c: fake.position(c) for c in TARGETS} == TARGETS
    ends = _events(tmp_path / "j.jsonl", "pass_end")
    assert [(e["status"], e["partial_fills"]) for e in ends] == [("partial", 1), ("complete", 0)]


def test_a_mid_that_moves_between_plan_and_send_makes_the_pass_plan_again(fake, tmp_path):
    fake.jump_mids({"BTC": 1.05}, after="metaAndAssetCtxs")  # after the plan's reads: +5%, beyond the 2% guard
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(client, tmp_path, journal, pass_retries=1)
        result = trader.run_pass(trader.config.period.index(time.time()))
    journal.close()
    assert result.status == "complete" and result.rounds == 2
    assert result.notes[0].startswith("round 1: mids moved more than 2.00% since the plan (BTC 60000 -> 63000.0)")
    (send,) = _events(tmp_path / "j.jsonl", "send")  # nothing went out on the stale plan
    btc = next(o for o in send["orders"] if o["coin"] == "BTC")
    assert (btc["mid"], btc["limit_px"], btc["size"]) == (63_000.0, 63_630.0, 0.07936)  # 5,000 / 63,000
    assert fake.position("BTC") == 0.07936


def test_a_mid_that_jumps_after_the_last_read_leaves_an_unmatched_ioc_that_the_next_round_retries(fake, tmp_path):
    fake.jump_mids({"BTC": 1.03}, skip=1)  # after the check just before sending: the IOC's limit is 1% away
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(client, tmp_path, journal, pass_retries=1)
        result = trader.run_pass(trader.config.period.index(time.time()))
    journal.close()
    btc = [r for r in result.results if r.coin == "BTC"]
    assert [r.status for r in btc] == ["rejected", "filled"]
    assert btc[0].error == IOC_NO_MATCH_ERROR.format(asset=0)
    assert result.status == "complete" and result.rejected == []  # not a rejection that needs a human
    assert fake.position("BTC") == 0.0809  # 5,000 / 61,800 = 0.080906...


@pytest.mark.parametrize("problem", ["mark", "oracle", "stale", "gross"])
def test_guards_refuse_a_pass_on_stale_or_inconsistent_data(fake, tmp_path, monkeypatch, problem):
    if problem == "mark":
        fake.marks["ETH"] = 2_900.0  # the mid 3,000 is 3.45% above it
        reason = "ETH: mid 3000 is 3.45% from the mark price 2900 (limit 2.00%)"
    elif problem == "oracle":
        fake.oracles["SOL"] = 160.0
        reason = "SOL: mid 150 is 6.25% from the oracle price 160 (limit 2.00%)"
    elif problem == "stale":
        fake.info_overrides["clearinghouseState"] = {
            "assetPositions": [],
            "marginSummary": {"accountValue": "10000.0"},
            "withdrawable": "10000.0",
            "time": int((time.time() - 60) * 1000),
        }
        reason = "account data is 60."
    else:  # a sizer that oversized (simulated): the plan's targets are worth twice the equity
        import genetic_sizer.live.planning as live
        from genetic_sizer.live.sizer import Plan
        from genetic_sizer.live.sizer import plan_orders as real

        def oversized(weights, account_value, *args, **kwargs):
            plan = real(weights, account_value, *args, **kwargs)
            return Plan(account_value / 2, plan.leverage, plan.coins, plan.orders)

        monkeypatch.setattr(live, "plan_orders", oversized)
        reason = "exceeds leverage x equity $5,000.00 by more than rounding"
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(client, tmp_path, journal)
        with pytest.raises(PassRefused, match=reason.replace("$", r"\$").replace("(", r"\(").replace(")", r"\)")):
            trader.run_pass(trader.config.period.index(time.time()))
    journal.close()
    assert fake.exchange_requests == []
    (plan,) = _events(tmp_path / "j.jsonl", "plan")
    (end,) = _events(tmp_path / "j.jsonl", "pass_end")
    assert reason in plan["refused"] and end["status"] == "refused" and reason in end["error"]


def test_an_order_the_exchange_knows_but_the_journal_does_not_is_never_sent_again(fake, tmp_path):
    """A pass ends partial; the journal is then lost (a new one). The next run in the same period would send the
    remainder under an attempt-0 cloid the exchange already knows: the lookup before sending finds it, the
    remainder goes out under the first unused attempt, and no cloid is sent twice."""
    fake.partial_fill(0.5, coin="BTC")
    with _client(fake) as client:
        first = _trader(client, tmp_path, Journal(tmp_path / "a.jsonl"), pass_retries=0)
        index = first.config.period.index(time.time())
        assert first.run_pass(index).status == "partial"
        first.journal.close()
        journal = Journal(tmp_path / "b.jsonl")
        lines = []
        second = _trader(client, tmp_path, journal, pass_retries=0, lines=lines)
        result = second.run_pass(index)
        journal.close()
    assert result.status == "complete"
    assert {c: fake.position(c) for c in TARGETS} == TARGETS
    before = {o["cloid"] for r in _events(tmp_path / "a.jsonl", "send") for o in r["orders"]}
    after = [o["cloid"] for r in _events(tmp_path / "b.jsonl", "send") for o in r["orders"]]
    # the same installation (state directory): the same trader id, so the lost journal's cloids are recognized
    assert first.session.trader_id == second.session.trader_id
    me = second.session.trader_id
    assert after == [order_cloid(A, result.pass_id, "BTC", "increase", 1, trader=me)] and not before & set(after)
    assert all(fake.orders_for(c) == 1 for c in before | set(after)) and fake.duplicate_cloids == 0
    (probe,) = [r for r in _events(tmp_path / "b.jsonl", "result") if r["source"] == "probe"]
    assert probe["attempt"] == 0 and probe["results"][0]["filled_size"] == 0.04166
    assert "not sent again (next attempt 1)" in lines[0]


def test_a_restart_waits_for_the_in_flight_request_then_settles_it_from_the_exchange(fake, tmp_path):
    """A journal left by a killed process: orders sent, their request's expiry journaled, no result. The exchange
    did execute them. The next pass waits until that request has expired, finds the fills by cloid, journals
    them, and sends nothing: the account is already on target."""
    champ = C.load(write_champion(tmp_path / "c.json", WEIGHTS))
    path = tmp_path / "j.jsonl"
    sleeps = []
    with _client(fake) as client:
        trader = _trader(client, tmp_path, Journal(path))
        index = trader.config.period.index(time.time())
        trader.journal.close()
        from genetic_sizer.live.guards import champion_id, pass_id

        pid = pass_id(champion_id(champ.assets, champ.weights), trader.config.period, index)
        intents = [
            OrderIntent(c, True, s, px, cloid=order_cloid(A, pid, c, "increase", 0, trader=trader.session.trader_id))
            for c, s, px in (("BTC", 0.08333, 60_600.0), ("ETH", 1.0, 3_030.0), ("SOL", 13.33, 151.5))
        ]
        client.place_orders(intents)  # what the killed process's request did
        expiry = int((time.time() + 1.5) * 1000)
        with Journal(path) as j:
            orders = [{"coin": i.coin, "leg": "increase", "side": "buy", "size": i.size, "limit_px": i.limit_px,
                       "reduce_only": False, "cloid": i.cloid} for i in intents]  # fmt: skip
            j.append({"event": "send", "pass": pid, "attempt": 0, "orders": orders})
            j.append({"event": "request", "pass": pid, "attempt": 0, "expires_after_ms": expiry,
                      "cloids": [i.cloid for i in intents]})  # fmt: skip
        journal = Journal(path)
        restarted = _trader(client, tmp_path, journal)
        restarted.sleep = sleeps.append
        result = restarted.run_pass(index)
        journal.close()
    assert 1.3 < sleeps[0] <= 1.55  # until the expiry + the clock tolerance (0.05 s)
    assert result.status == "complete" and result.resumed and result.results == []
    assert len(fake.order_requests) == 1  # nothing sent again
    (settled,) = [r for r in _events(path, "result") if r["source"] == "lookup"]
    assert [(e["coin"], e["status"], e["filled_size"]) for e in settled["results"]] == [
        ("BTC", "filled", 0.08333),
        ("ETH", "filled", 1.0),
        ("SOL", "filled", 13.33),
    ]
    assert read_journal(path).unresolved() == []


def test_the_kill_switch_uses_the_journaled_high_water_mark_and_flattens(fake, tmp_path):
    fake.set_position("BTC", 0.1)
    fake.set_position("SOL", -20.0)
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:  # an earlier run saw 12,500
        j.append({"event": "equity", "account_value": 12_500.0})
    journal = Journal(path)
    with _client(fake) as client:
        trader = _trader(client, tmp_path, journal, limits=Limits(max_drawdown=0.2), flatten_on_stop=True)
        with pytest.raises(KillSwitchTripped, match=r"drawdown 20\.00% from the equity high-water mark \$12,500\.00"):
            trader.run_pass(trader.config.period.index(time.time()))
    journal.close()
    assert fake.position("BTC") == 0.0 and fake.position("SOL") == 0.0
    (kill,) = _events(path, "kill")
    assert kill["flatten"] is True
    sends = _events(path, "send")
    assert [(o["coin"], o["side"], o["size"], o["reduce_only"]) for s in sends for o in s["orders"]] == [
        ("BTC", "sell", 0.1, True),
        ("SOL", "buy", 20.0, True),
    ]
    assert all(s["pass"].endswith("/flatten") for s in sends)
    ends = _events(path, "pass_end")
    assert [(e["pass"].endswith("/flatten"), e["status"]) for e in ends] == [(True, "complete"), (False, "killed")]


def test_live_status_from_the_journal_alone(tmp_path):
    path = tmp_path / "j.jsonl"
    t0 = 1_750_000_000.0
    with Journal(path) as j:
        j.append({"event": "start", "ts": t0, "address": A, "network": "testnet", "period": "1h",
                  "champion": {"path": str(tmp_path / "missing.json")}})  # fmt: skip
        for k, value in enumerate([10_000.0, 10_400.0, 9_880.0]):
            j.append({"event": "equity", "ts": t0 + 3600 * k, "pass": f"p{k}", "account_value": value})
            j.append({"event": "pass_end", "ts": t0 + 3600 * k + 1, "pass": f"p{k}", "period": f"1h@{k}",
                      "status": "complete", "orders_sent": k, "orders_filled": k, "partial_fills": 0,
                      "drift": {"BTC": {"target": 0.1, "position": 0.1, "drift_usd": 0.0}}})  # fmt: skip
        j.append({"event": "send", "pass": "p3", "attempt": 0, "orders": [{"coin": "ETH", "cloid": "0x" + "e" * 32}]})
    report = live_status(path)
    assert report["account"] == A and report["passes"] == 3
    assert report["last_pass"]["period"] == "1h@2" and report["last_pass"]["status"] == "complete"
    assert report["interrupted"] == ["p3"] and report["unresolved"][0]["coin"] == "ETH"
    eq = report["equity"]
    assert (eq["first"], eq["latest"], eq["high_water"]) == (10_000.0, 9_880.0, 10_400.0)
    assert eq["pnl"] == pytest.approx(-120.0) and eq["pnl_pct"] == pytest.approx(-0.012)
    assert eq["drawdown"] == pytest.approx(1 - 9_880 / 10_400)
    assert report["drift_source"] == "journal" and report["drift"]["BTC"]["drift_usd"] == 0.0
    assert report["expectation"]["max_drawdown"]["realized"] == pytest.approx(9_880 / 10_400 - 1)
    assert report["expectation"]["sharpe"]["backtest"] is None  # no champion file to compare with


def test_a_journal_belongs_to_one_account_and_network(fake, tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:
        j.append({"event": "start", "address": OTHER, "network": "test"})
    with Journal(path) as journal, _client(fake) as client:
        with pytest.raises(ConfigError, match=f"records account {OTHER}, not {A}: use one journal per account"):
            _trader(client, tmp_path, journal).run_once()
    path.unlink()
    with Journal(path) as j:
        j.append({"event": "start", "address": A, "network": "mainnet"})
    with Journal(path) as journal, _client(fake) as client:
        with pytest.raises(ConfigError, match="records network 'mainnet', not 'test'"):
            _trader(client, tmp_path, journal).run_loop(max_passes=1)
    assert fake.exchange_requests == []


def test_the_live_plan_enforces_the_champions_recorded_constraints(fake, tmp_path):
    """The champion file's constraints reach the sizer on the live path: weights that break them (here the
    recorded max_assets is tightened after loading) refuse the pass as bad input; nothing is sent."""
    trader = _trader(_client(fake), tmp_path, Journal(tmp_path / "j.jsonl"))
    trader.champion.portfolio["max_assets"] = 2  # the three weights now break the record
    result = trader.run_once()
    assert result.exit_code == EXIT_BAD_INPUT and "constraints" in str(result.error)
    assert fake.exchange_requests == []


# ---- the champion's strategy on the live path: drift band, calendar rebalance, the rule of each pass ----------
def _utc(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("policy", "earlier", "later", "due"),
    [
        ("M", "2025-01-31 23:00", "2025-02-01 00:00", True),
        ("M", "2025-02-01 00:00", "2025-02-28 23:59", False),
        ("Q", "2025-03-31 12:00", "2025-04-01 01:00", True),
        ("Q", "2025-04-01 01:00", "2025-06-30 01:00", False),
        ("W", "2025-01-05 23:00", "2025-01-06 00:30", True),  # Sunday -> Monday
        ("W", "2025-01-06 00:30", "2025-01-12 23:00", False),
        ("D", "2025-01-05 23:00", "2025-01-06 00:30", True),
        (24, "2025-01-05 23:00", "2025-01-06 00:30", True),  # 24 of the champion's hourly bars: UTC days
        (24, "2025-01-06 00:00", "2025-01-06 23:59", False),
        (6, "2025-01-06 05:59", "2025-01-06 06:00", True),
    ],
)
def test_the_champions_calendar_periods(tmp_path, policy, earlier, later, due):
    """A calendar rebalance falls on the first pass in a new period of the champion's policy: the UTC day, the
    Monday-based week, the calendar month or quarter, or N of the champion's bars (hourly here)."""
    champ = C.load(write_champion(tmp_path / "c.json", WEIGHTS, strategy={"rebalance": policy, "threshold": 0.05}))
    cal = calendar_of(champ)
    assert (cal.index(_utc(later)) != cal.index(_utc(earlier))) is due


def test_a_buy_and_hold_champion_has_no_calendar_rebalance(tmp_path):
    champ = C.load(write_champion(tmp_path / "c.json", WEIGHTS, strategy={"rebalance": "once", "threshold": 0.05}))
    assert calendar_of(champ) is None


def test_the_band_decides_each_pass_and_the_calendar_rebalance_is_the_first_pass_of_a_new_month(fake, tmp_path):
    """A monthly champion with a 5-point band, sized every hour: the first pass allocates (the band decides: from an
    empty account every coin is its whole weight away); a drift of 2 points holds (nothing sent); the first pass in
    February is the calendar rebalance and trades it back; later February passes hold again, until a coin drifts
    past the band. Each plan in the journal says which rule fired."""
    clock = Clock(_utc("2025-01-31 22:10"))
    journal = Journal(tmp_path / "j.jsonl")
    strategy = {"rebalance": "M", "threshold": 0.05}
    with _client(fake) as client:
        trader = _trader(
            client,
            tmp_path,
            journal,
            clock=clock,
            strategy=strategy,
            settings=SizerSettings(drift_band=0.05),
            guards=Guards(max_data_age=1e9),
        )
        period = trader.config.period
        steps = [
            ("2025-01-31 22:10", None, "drift", False),
            ("2025-01-31 23:10", 1.0667, "hold", False),  # ETH 3,200 of 10,000: 0.32 against 0.3
            ("2025-02-01 00:10", 1.0667, "calendar", True),
            ("2025-02-01 01:10", 1.0667, "hold", False),
            ("2025-02-01 02:10", 1.2, "drift", False),  # 0.36: past the band
        ]
        sent = []
        for when, eth, rule, due in steps:
            clock.t = _utc(when)
            if eth is not None:
                fake.set_position("ETH", eth)
            before = len(fake.order_requests)
            assert trader.calendar_due() is due, when
            result = trader.run_pass(period.index(clock.t))
            assert result.status == "complete" and result.plan.rule == rule, (when, result.plan.rule_reason)
            sent.append(len(fake.order_requests) - before)
            assert {c: fake.position(c) for c in TARGETS} == (TARGETS if rule != "hold" else {**TARGETS, "ETH": eth})
    journal.close()
    assert sent[1] == sent[3] == 0 and sent[0] > 0 and sent[2] == sent[4] == 1  # a hold sends nothing
    plans = _events(tmp_path / "j.jsonl", "plan")
    assert [p["plan"]["rule"] for p in plans] == [step[2] for step in steps]
    assert plans[2]["plan"]["rule_reason"] == "the champion's calendar rebalance is due"
    assert plans[1]["plan"]["rule_reason"] == "no coin drifted 0.05 or more from its target (largest: ETH 0.0200)"
    assert [o["coin"] for o in plans[2]["plan"]["orders"]] == ["ETH"]


def test_a_dry_run_counts_dry_runs_and_a_restart_keeps_the_calendar(fake, tmp_path):
    """The last completed pass comes from the journal: a process restarted in February after a January pass still
    finds its calendar rebalance due; a dry run counts the dry runs before it."""
    path = tmp_path / "j.jsonl"
    strategy = {"rebalance": "M", "threshold": 0.05}
    kw = {"strategy": strategy, "settings": SizerSettings(drift_band=0.05), "guards": Guards(max_data_age=1e9)}
    with _client(fake) as client:
        clock = Clock(_utc("2025-01-31 22:10"))
        with Journal(path) as journal:
            trader = _trader(client, tmp_path, journal, clock=clock, **kw)
            assert trader.run_pass(trader.config.period.index(clock.t)).status == "complete"
        clock.t = _utc("2025-02-01 09:00")
        with Journal(path) as journal:
            assert _trader(client, tmp_path, journal, clock=clock, **kw).calendar_due()
            dry = _trader(client, tmp_path, journal, clock=clock, execute=False, **kw)
            assert not dry.calendar_due()  # no dry run has completed yet
            dry.run_pass(dry.config.period.index(clock.t))
            clock.t = _utc("2025-03-01 09:00")
            assert dry.calendar_due()
        # without a band every pass trades: no calendar rule
        with Journal(path) as journal:
            plain = {**kw, "settings": SizerSettings()}
            assert not _trader(client, tmp_path, journal, clock=clock, **plain).calendar_due()


def test_a_pass_that_decided_to_trade_completes_it_in_its_later_rounds(fake, tmp_path):
    """The first round trades (drift); BTC fills 95%, which leaves it 2.5 points under its target, inside the band.
    The second round still trades the remainder: the pass decided to rebalance the book, and does."""
    fake.partial_fill(0.95, coin="BTC")
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(
            client,
            tmp_path,
            journal,
            pass_retries=1,
            strategy={"rebalance": "M", "threshold": 0.05},
            settings=SizerSettings(drift_band=0.05),
        )
        result = trader.run_pass(trader.config.period.index(time.time()))
    journal.close()
    assert result.status == "complete" and result.rounds == 2
    assert [(r.coin, r.filled_size) for r in result.results][-1] == ("BTC", 0.00417)
    assert {c: fake.position(c) for c in TARGETS} == TARGETS
    first, second = _events(tmp_path / "j.jsonl", "plan")
    assert first["plan"]["rule"] == second["plan"]["rule"] == "drift"
    assert second["plan"]["rule_reason"].endswith("(the pass completes what it started)")
    assert [o["coin"] for o in second["plan"]["orders"]] == ["BTC"]


def test_a_restart_in_the_same_period_completes_what_the_interrupted_pass_decided(fake, tmp_path):
    """Without retries the pass ends partial (BTC 2.5 points short, inside the band); a restart in the same period
    resumes the pass and trades the remainder, because the journal says this pass decided to rebalance."""
    fake.partial_fill(0.95, coin="BTC")
    path = tmp_path / "j.jsonl"
    kw = {"strategy": {"rebalance": "M", "threshold": 0.05}, "settings": SizerSettings(drift_band=0.05)}
    with _client(fake) as client:
        with Journal(path) as journal:
            trader = _trader(client, tmp_path, journal, pass_retries=0, **kw)
            index = trader.config.period.index(time.time())
            assert trader.run_pass(index).status == "partial"
        with Journal(path) as journal:
            again = _trader(client, tmp_path, journal, pass_retries=0, **kw).run_pass(index)
            # the next period's pass is decided afresh: on target, it holds
            later = _trader(client, tmp_path, journal, **kw).run_pass(index + 1)
    assert again.status == "complete" and again.resumed and again.plan.rule == "drift"
    assert [(r.coin, r.filled_size) for r in again.results] == [("BTC", 0.00417)]
    assert {c: fake.position(c) for c in TARGETS} == TARGETS
    assert later.plan.rule == "hold" and later.plan.orders == []

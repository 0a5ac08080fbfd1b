"""The live sizer as a service people run and watch (issue 24, items 8-12 and beyond): exit codes under outages,
clock skew, HTTP 429 bodies, calendar periods, spot champions and per-coin margin, equity checks around every round,
``/metrics`` and the alert webhook. Everything runs against the fake exchange on 127.0.0.1 through the real SDK's
signing."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from genetic_sizer.cli.main import main
from genetic_sizer.errors import KillSwitchTripped
from genetic_sizer.exchange.client import HyperliquidClient
from genetic_sizer.exchange.credentials import Credentials
from genetic_sizer.live.guards import Guards, Limits, Period, clock_problem, data_age_problem
from genetic_sizer.live.journal import Journal, read_journal
from genetic_sizer.live.loop import Trader
from genetic_sizer.live.margin import leverage_setting
from genetic_sizer.live.metrics import Metrics
from genetic_sizer.live.service import watch
from genetic_sizer.live.settings import LiveConfig
from genetic_sizer.live.sizer import SizerSettings
from genetic_sizer.runs import champion as C
from tests.fake_hyperliquid import FakeHyperliquid
from tests.test_live_cli import AGENT, AGENT_KEY, MAIN, MIDS, UNIVERSE, write_champion

WEIGHTS = {"BTC": 0.5, "ETH": 0.3, "SOL": 0.2}
# 10,000 USD at leverage 1: BTC 5,000 / 60,000 = 0.08333 (toward zero); ETH 3,000 / 3,000 = 1; SOL 2,000 / 150 = 13.33
TARGETS = {"BTC": 0.08333, "ETH": 1.0, "SOL": 13.33}
FAST = ["--timeout", "1", "--clock-tolerance", "0.2"]
SECRET_HOOK_PATH = "/hooks/T0KEN-sEcReT-5f3a9c"  # the part of a webhook URL that is its credential


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    monkeypatch.setenv("GENETIC_SIZER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("GENETIC_SIZER_ALERT_WEBHOOK", raising=False)
    with FakeHyperliquid(
        universe=UNIVERSE, mids=dict(MIDS), account_address=MAIN, agents=[AGENT], account_value=10_000.0
    ) as server:
        server.refuse_duplicate_cloids = False  # nothing here may rely on the exchange refusing a reused cloid
        yield server


def _size(fake, champ, *extra):
    return main(["size", "--champion", str(champ), "--base-url", fake.url, *extra])


def _records(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _positions(fake, coins=TARGETS) -> dict:
    return {c: fake.position(c) for c in coins}


def _no_order_twice(fake) -> None:
    sent = [w["c"] for r in fake.order_requests for w in r.action["orders"]]
    assert all(fake.orders_for(c) <= 1 for c in sent) and fake.duplicate_cloids == 0


def _wait_for(condition, seconds: float = 20.0, what: str = "condition") -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, f"{what} not met within {seconds} s"
        time.sleep(0.01)


def _client(fake, **kw) -> HyperliquidClient:
    from eth_account import Account

    options = {"timeout": 1.0, "max_retries": 1, "backoff": 0.01, "clock_tolerance": 0.2, **kw}
    return HyperliquidClient(fake.url, credentials=Credentials(Account.from_key(AGENT_KEY), MAIN), **options)


def _trader(client, tmp_path, journal, *, clock=None, weights=WEIGHTS, strategy=None, settings=None, lines=None, **cfg):
    champ = C.load(write_champion(tmp_path / "c.json", weights, strategy=strategy))
    options = {"execute": True, "period": Period.parse("1h"), "round_pause": 0.0, **cfg}
    return Trader(
        client,
        champ,
        settings or SizerSettings(),
        address=MAIN,
        network="test",
        config=LiveConfig(**options),
        journal=journal,
        report=(lines.append if lines is not None else lambda s: None),
        clock=clock or time.time,
        sleep=clock.sleep if clock is not None else time.sleep,
    )


# ---------------------------------------------------------------------------------------------- item 8: outages
def test_a_restart_during_an_outage_with_unresolved_orders_waits_it_out_and_completes_the_pass(fake, tmp_path, capsys):
    """A process sends the increases and dies before it journals the answer (the orders executed); the loop is
    restarted while the exchange is down. The restart must settle those orders once the API is back (they filled:
    nothing is bought again) and complete the pass. Before the fix the settling ran before the loop's retry policy
    and the outage ended the process with exit code 2, a configuration error that a supervisor does not restart."""
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    journal = tmp_path / "journal.jsonl"
    with _client(fake) as client, Journal(journal) as log:
        real = client.place_orders

        def executes_then_dies(intents, on_request=None):
            real(intents, on_request=on_request)  # the request is journaled, then executes on the exchange...
            raise KeyboardInterrupt  # ...and the process dies before the answer reaches the journal

        client.place_orders = executes_then_dies
        trader = Trader(
            client,
            C.load(champ),
            SizerSettings(),
            address=MAIN,
            network=fake.url,
            config=LiveConfig(execute=True, period=Period.parse("1h"), round_pause=0.0),
            journal=log,
            report=lambda s: None,
        )
        with pytest.raises(KeyboardInterrupt):
            trader.run_pass(trader.config.period.index(time.time()))
    assert read_journal(journal).unresolved()  # the journal does not know what became of the orders
    assert _positions(fake) == TARGETS  # they did execute
    sent = len(fake.order_requests)

    fake.outage(4.0)  # every request fails (HTTP 503) for the next 4 s: the restart begins in the outage
    args = ["--execute", "--every", "1h", "--max-passes", "1", "--journal", str(journal), *FAST]
    started = time.monotonic()
    codes = []
    while not codes or codes[-1] == 6:  # a supervisor restarts exit code 6 (transient), and only that
        codes.append(_size(fake, champ, *args))
        assert time.monotonic() - started < 60, codes
    out, err = capsys.readouterr()
    assert codes[-1] == 0 and set(codes) <= {0, 6}, codes  # never 2: that would leave the service down
    assert time.monotonic() - started >= 4.0  # the outage was waited out (in the loop, or by restarts)
    assert "RetryableExchangeError" in out + err and "HTTP 503" in out + err
    assert "settled 3 order(s) of an interrupted pass from the exchange's record: 3 executed" in out
    assert _positions(fake) == TARGETS and len(fake.order_requests) == sent  # nothing bought twice
    _no_order_twice(fake)
    records = _records(journal)
    retries = [r for r in records if r["event"] == "error" or (r["event"] == "stop" and r.get("exit_code") == 6)]
    assert retries and all(r["error_type"] == "RetryableExchangeError" for r in retries if "error_type" in r)
    ends = [r for r in records if r["event"] == "pass_end"]
    assert ends[-1]["status"] == "complete" and records[-1]["event"] == "stop" and records[-1]["exit_code"] == 0
    assert read_journal(journal).unresolved() == []
    assert all(r["exit_code"] in (0, 6) for r in records if r["event"] == "stop")


def test_transient_errors_exit_6_everywhere_never_2(fake, tmp_path, capsys):
    """A single pass in an outage exits 6 (run it again); so does a command outside the live loop (data fetch),
    which exited 2, a configuration error, before."""
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    fake.outage(60.0)
    assert _size(fake, champ, "--execute", "--journal", str(tmp_path / "j.jsonl"), *FAST) == 6
    assert "exit code 6" in capsys.readouterr().err
    fetch = ["data", "fetch", "--coins", "BTC", "--start", "2025-01-01", "--end", "2025-01-02"]
    assert main([*fetch, "--out", str(tmp_path / "d.parquet"), "--base-url", fake.url]) == 6
    assert "HTTP 503" in capsys.readouterr().err
    assert fake.order_requests == []


# ---------------------------------------------------------------------------------------------- item 9: clocks
@pytest.mark.parametrize("skew", [-3.0, -9.5, 4.0])
def test_an_exchange_clock_seconds_off_is_measured_every_pass_warned_and_traded(fake, tmp_path, capsys, skew):
    """The exchange's clock 3 or 9.5 s behind this machine's (or 4 s ahead): with the default --clock-tolerance the
    pass trades, warns, and journals the skew it measured. Before, the 2 s default made this a hard error (exit 2,
    "this machine's clock is 3.0 s ahead of the exchange's")."""
    fake.clock_skew = skew
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    journal = tmp_path / "j.jsonl"
    assert _size(fake, champ, "--execute", "--journal", str(journal), "--timeout", "1") == 0
    out = capsys.readouterr().out
    where = "behind" if skew < 0 else "ahead of"
    assert f"WARNING: the exchange's clock is {abs(skew):.1f}" in out and f"s {where} this machine's" in out
    assert "(clock tolerance 15 s)" in out
    assert _positions(fake) == TARGETS
    measured = [r["clock_skew"] for r in _records(journal) if r["event"] == "equity"]
    assert len(measured) == 2  # at the pass's start and after it: every account read is measured
    assert all(abs(m - skew) < 0.5 for m in measured)


def test_past_the_clock_tolerance_nothing_is_sent_and_the_loop_stops(fake, tmp_path, capsys):
    fake.clock_skew = -20.0  # past the default tolerance (15 s), within what the data-age guard allows (10 + 15 s)
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    # a request timeout of 5 s: on a loaded machine a 1 s timeout could fail the pass before its clock check
    assert _size(fake, champ, "--execute", "--journal", str(tmp_path / "j.jsonl"), "--timeout", "5") == 2
    out, err = capsys.readouterr()
    assert "the exchange's clock is 20.0" in out and "no order is sent" in out
    assert "synchronize it (NTP)" in err and "clock_tolerance 15 s" in err
    assert fake.exchange_requests == [] and _positions(fake) == dict.fromkeys(TARGETS, 0.0)  # not even leverage


def test_a_lost_request_is_waited_out_on_the_exchanges_clock(fake, tmp_path):
    """The exchange's clock 0.5 s behind (tolerance 0.6 s): an order request held in flight past the client's timeout
    still executes by the exchange's clock; the client waits until it has expired even there, finds the fill, and
    sends nothing again."""
    fake.clock_skew = -0.5
    fake.hold_next_exchange(1.0)
    with _client(fake, timeout=0.3, clock_tolerance=0.6, max_retries=3) as client:
        trader = _trader(client, tmp_path, None, weights={"BTC": 0.5, "ETH": 0.5})
        result = trader.run_pass(trader.config.period.index(time.time()))
    assert result.status == "complete" and _positions(fake, ["BTC", "ETH"]) == {"BTC": 0.08333, "ETH": 1.6666}
    assert len(fake.order_requests) == 1 and fake.order_requests[0].response["status"] == "ok"
    _no_order_twice(fake)


def test_clock_and_data_age_decisions():
    assert clock_problem(None, 0.0, 15.0) is None
    assert clock_problem(-0.9, 0.01, 15.0) is None
    level, why = clock_problem(-9.5, 0.01, 15.0)
    assert level == "warn" and "9.50 s behind" in why
    level, why = clock_problem(15.2, 0.01, 15.0)
    assert level == "stop" and "15.20 s ahead of this machine's" in why and "no order is sent" in why
    assert clock_problem(15.2, 0.5, 15.0)[0] == "warn"  # within the tolerance plus the measurement's uncertainty
    assert clock_problem(-15.2, 0.01, 15.0)[0] == "stop"
    assert clock_problem(0.08, 0.0, 0.1)[0] == "warn"  # half of a small tolerance
    # data stamped by an exchange clock 20 s behind: within 10 s + a 15 s clock tolerance, not stale
    assert data_age_problem(1_000_000, 1_000 + 20.0, 10.0, 15.0) is None
    assert "26.0 s old (limit 10 s + clock tolerance 15 s)" in data_age_problem(1_000_000, 1_026.0, 10.0, 15.0)
    assert data_age_problem(1_000_000, 1_011.0, 10.0) == "account data is 11.0 s old (limit 10 s)"


# ---------------------------------------------------------------------------------------------- item 10: 429
def test_a_429_without_code_or_msg_is_retried_by_the_loop(fake, tmp_path, capsys):
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    fake.fail_next(429, path="/info", body='{"error": "rate limited"}', count=6, headers={"Retry-After": "0"})
    fake.fail_next(429, path="/exchange", body="[]", headers={"Retry-After": "0"})
    journal = tmp_path / "j.jsonl"
    assert _size(fake, champ, "--execute", "--every", "1h", "--max-passes", "1", "--journal", str(journal), *FAST) == 0
    assert "HTTP 429" in capsys.readouterr().out  # the first try gave up on reads, the loop tried again
    assert _positions(fake) == TARGETS
    _no_order_twice(fake)


# ---------------------------------------------------------------------------------------------- item 11: calendar
def _utc(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def test_the_calendar_rebalance_is_judged_by_the_period_a_pass_belongs_to(fake, tmp_path):
    """Monthly champion with a 5-point band, hourly passes. The pass of January 31st 23:00-24:00 completes at 00:00:05
    on February 1st (it started late in its hour). The pass of February 1st 00:00 is the first of February: its
    calendar rebalance is due, and trades ETH back although it drifted only 2 points (inside the band). Judged by when
    the January pass ended (already February), the old code held, and February had no rebalance."""
    clock = Clock(_utc("2025-02-01 00:00:05"))
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(
            client,
            tmp_path,
            journal,
            clock=clock,
            strategy={"rebalance": "M", "threshold": 0.05},
            settings=SizerSettings(drift_band=0.05),
            guards=Guards(max_data_age=1e9),
        )
        period = trader.config.period
        january = period.index(_utc("2025-01-31 23:30"))
        first = trader.run_pass(january)
        assert first.status == "complete" and first.plan.rule == "drift"  # from empty: every coin past the band
        ends = [r for r in journal.state.records if r["event"] == "pass_end"]
        assert ends[-1]["ts"] == pytest.approx(_utc("2025-02-01 00:00:05"))  # it ended in February
        fake.set_position("ETH", 1.0667)  # ETH 3,200 of 10,000: 0.32 against 0.30, inside the band
        clock.t = _utc("2025-02-01 00:10")
        february = period.index(clock.t)
        assert trader.calendar_due() and trader.planner.calendar_due(february)
        assert not trader.planner.calendar_due(january)  # January's own period is not a new month
        second = trader.run_pass(february)
        assert second.plan.rule == "calendar" and [o.coin for o in second.plan.orders] == ["ETH"]
        assert fake.position("ETH") == 1.0
        # later in February: no calendar rebalance again, the band decides (ETH inside it: hold)
        fake.set_position("ETH", 1.0667)
        clock.t = _utc("2025-02-01 01:10")
        third = trader.run_pass(period.index(clock.t))
        assert third.plan.rule == "hold" and third.plan.orders == []
    journal.close()


# ---------------------------------------------------------------------------------------------- item 12: margin
def test_a_spot_champion_is_refused_on_perps_unless_accepted(fake, tmp_path, capsys):
    champ = write_champion(tmp_path / "spot.json", WEIGHTS, market="spot")
    journal = ["--journal", str(tmp_path / "j.jsonl")]
    assert _size(fake, champ, "--execute", *journal) == 2
    err = capsys.readouterr().err
    assert "is a spot champion (portfolio.market: spot)" in err and "pays or receives hourly funding" in err
    assert "its sharpe 1 included none of it" in err and "--accept-spot-champion" in err
    assert fake.exchange_requests == []
    assert _size(fake, champ) == 0  # a dry run says what differs, and previews
    out = capsys.readouterr().out
    assert "WARNING:" in out and "a dry run; --execute needs --accept-spot-champion" in out
    assert _size(fake, champ, "--execute", "--accept-spot-champion", *journal) == 0
    assert "WARNING:" in capsys.readouterr().out and _positions(fake) == TARGETS
    assert all(fake.leverage_of(c) == {"type": "cross", "value": 1} for c in TARGETS)


def test_cross_margin_and_leverage_are_set_per_coin_before_the_first_increase(fake, tmp_path, capsys):
    """A perp champion evolved at 1.5x, on an account whose coins were left isolated at 1x (the fake checks margin):
    before its first increase the sizer sets every coin it holds to cross margin at 2x (1.5 rounded up), so the book
    (15,000 USD on 10,000) fits; the old code sent the orders into the 1x setting and they were rejected."""
    fake.enforce_margin = True
    fake.leverage = {c: {"type": "isolated", "value": 1} for c in ("BTC", "ETH", "SOL", "DOGE")}
    fake.set_position("DOGE", 20_000.0)  # $3,000 to close first (reduce-only: needs no margin)
    fake.leverage["DOGE"] = {"type": "isolated", "value": 1}
    champ = write_champion(tmp_path / "c.json", WEIGHTS, leverage=1.5)
    journal = tmp_path / "j.jsonl"
    assert _size(fake, champ, "--execute", "--journal", str(journal)) == 0
    out = capsys.readouterr().out
    assert "margin: cross, BTC 2x, ETH 2x, SOL 2x (the book is sized at 1.5x" in out
    # 15,000 USD: BTC 7,500 / 60,000 = 0.125; ETH 4,500 / 3,000 = 1.5; SOL 3,000 / 150 = 20
    assert _positions(fake) == {"BTC": 0.125, "ETH": 1.5, "SOL": 20.0} and fake.position("DOGE") == 0.0
    assert {c: fake.leverage_of(c) for c in WEIGHTS} == {c: {"type": "cross", "value": 2} for c in WEIGHTS}
    assert fake.leverage_of("DOGE") == {"type": "isolated", "value": 1}  # only closed: left alone
    kinds = [(r.action["type"], [o["r"] for o in r.action.get("orders", [])]) for r in fake.exchange_requests]
    assert kinds == [
        ("order", [True]),  # the reduction first, without margin
        ("updateLeverage", []),
        ("updateLeverage", []),
        ("updateLeverage", []),
        ("order", [False, False, False]),  # the increases once every coin is at 2x cross
    ]
    assert [r.action["leverage"] for r in fake.exchange_requests[1:4]] == [2, 2, 2]
    assert all(r.action["isCross"] is True for r in fake.exchange_requests[1:4])
    sends = [r for r in _records(journal) if r["event"] == "send"]
    assert "margin" not in sends[0] and sends[1]["margin"] == {
        "cross": True,
        "leverage": {"BTC": 2, "ETH": 2, "SOL": 2},
    }
    # a new process sets them again before its first increase (a person or a program may have changed them since)
    fake.set_position("ETH", 1.2)
    assert _size(fake, champ, "--execute", "--journal", str(tmp_path / "k.jsonl"), "--period", "1s") == 0
    assert [r.action["type"] for r in fake.exchange_requests].count("updateLeverage") == 6
    assert fake.position("ETH") == 1.5


def test_a_refused_leverage_stops_the_pass_before_any_increase(fake, tmp_path, capsys):
    fake.leverage_refusals["ETH"] = "Cannot switch leverage type with open isolated position."
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    assert _size(fake, champ, "--execute", "--journal", str(tmp_path / "j.jsonl")) == 5
    assert "the exchange refused cross margin at 1x for ETH: Cannot switch leverage type" in capsys.readouterr().err
    assert fake.order_requests == [] and _positions(fake) == dict.fromkeys(TARGETS, 0.0)


@pytest.mark.parametrize(
    ("leverage", "cap", "expected"),
    [(1.0, 40, 1), (1.5, 40, 2), (2.0000000001, 40, 2), (3.0, 40, 3), (3.2, 3, 3), (0.4, 10, 1), (12.0, 5, 5)],
)
def test_the_leverage_setting_is_the_sizing_leverage_rounded_up_and_capped(leverage, cap, expected):
    assert leverage_setting(leverage, cap) == expected


# ---------------------------------------------------------------------------------------------- beyond: equity
def test_equity_is_checked_before_every_later_round(fake, tmp_path):
    """Round one half-fills BTC; then a third of the equity is gone. The kill switch fires before round two sends
    anything (the old code checked equity only at the pass's start, and round two bought the rest of BTC)."""
    fake.partial_fill(0.5, coin="BTC")
    fake.after_request("order", lambda f: setattr(f, "account_value", 6_500.0))
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(client, tmp_path, journal, limits=Limits(max_drawdown=0.2), pass_retries=2)
        with pytest.raises(KillSwitchTripped, match=r"drawdown 35\.00%"):
            trader.run_pass(trader.config.period.index(time.time()))
    journal.close()
    assert len(fake.order_requests) == 1 and fake.position("BTC") == 0.04166  # round two never went out
    records = read_journal(tmp_path / "j.jsonl").records
    checks = [(r["stage"], r["account_value"]) for r in records if r["event"] == "equity"]
    assert checks == [("pass start", 10_000.0), ("round 2", 6_500.0)]
    assert [r["event"] for r in records][-2:] == ["kill", "pass_end"] and records[-1]["status"] == "killed"


def test_equity_is_checked_after_the_last_round(fake, tmp_path, capsys):
    """The loss shows after the pass's only round: the pass ends killed (exit 4) and flattens, instead of ending
    complete and leaving the loss to the next period."""
    fake.after_request("order", lambda f: setattr(f, "account_value", 7_000.0))
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    journal = tmp_path / "j.jsonl"
    args = ["--execute", "--journal", str(journal), "--max-drawdown", "0.25", "--flatten-on-stop", *FAST]
    assert _size(fake, champ, *args) == 4
    assert "KILL SWITCH: drawdown 30.00%" in capsys.readouterr().out
    assert _positions(fake) == dict.fromkeys(TARGETS, 0.0)  # flattened
    checks = [(r["stage"], r["account_value"]) for r in _records(journal) if r["event"] == "equity"]
    assert checks == [("pass start", 10_000.0), ("after the pass", 7_000.0)]
    gross = [r["gross_exposure"] for r in _records(journal) if r["event"] == "equity"]
    assert gross == [0.0, pytest.approx(0.08333 * 60_000 + 1.0 * 3_000 + 13.33 * 150, abs=1e-6)]


# ---------------------------------------------------------------------------------------------- beyond: metrics
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        match = re.match(r"^(genetic_sizer_\w+(?:\{[^}]*\})?) (\S+)$", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


def test_metrics_are_served_on_loopback_from_the_loop(fake, tmp_path, capsys):
    """``--metrics-port`` serves Prometheus metrics from the running loop, on 127.0.0.1 by default: equity, drawdown,
    gross exposure, the last pass, orders sent, filled and rejected, the kill switch; the server stops with the loop."""
    fake.reject_coins["SOL"] = "Insufficient margin to place order."
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    journal = tmp_path / "j.jsonl"
    stop = tmp_path / "STOP"
    port = _free_port()
    args = ["--execute", "--every", "1h", "--journal", str(journal), "--stop-file", str(stop), *FAST]
    codes = []
    loop = threading.Thread(target=lambda: codes.append(_size(fake, champ, *args, "--metrics-port", str(port))))
    loop.start()
    try:
        _wait_for(lambda: journal.exists() and '"pass_end"' in journal.read_text(), what="a pass")
        _wait_for(lambda: _scrape(port)["genetic_sizer_last_pass_timestamp_seconds"] > 0, what="the pass's metrics")
        values = _scrape(port)
    finally:
        stop.touch()
        loop.join(timeout=30)
    assert codes == [0]
    end = next(r for r in _records(journal) if r["event"] == "pass_end")
    assert values["genetic_sizer_equity_usd"] == 10_000.0
    assert values["genetic_sizer_high_water_usd"] == 10_000.0 and values["genetic_sizer_drawdown_ratio"] == 0.0
    # BTC 0.08333 x 60,000 + ETH 1 x 3,000 (SOL rejected, twice: the pass's second round tried again)
    assert values["genetic_sizer_gross_exposure_usd"] == pytest.approx(0.08333 * 60_000 + 3_000.0, abs=1e-9)
    assert values["genetic_sizer_last_pass_timestamp_seconds"] == pytest.approx(end["ts"], abs=1e-3)
    assert values["genetic_sizer_last_pass_complete"] == 0.0  # SOL was rejected: partial
    assert values["genetic_sizer_orders_sent_total"] == 3.0  # BTC, ETH, SOL (a rejected coin is not resent)
    assert values["genetic_sizer_orders_filled_total"] == 2.0
    assert values["genetic_sizer_orders_rejected_total"] == 1.0
    assert values["genetic_sizer_kill_switch_tripped"] == 0.0
    assert values['genetic_sizer_passes_total{status="partial"}'] == 1.0
    assert f"metrics: http://127.0.0.1:{port}/metrics" in capsys.readouterr().out
    with pytest.raises(OSError):  # stopped with the loop
        _scrape(port)


def test_metrics_follow_the_journal_and_the_kill_switch(fake, tmp_path):
    """Through :func:`watch`: the gauges start from the journal's earlier records (the last equity, a kill switch
    that fired), counters count this process; the kill switch gauge goes to 1 when it fires."""
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(client, tmp_path, journal, limits=Limits(max_drawdown=0.2))
        with watch(trader.session, metrics_port=0, env={}, report=lambda s: None) as watchers:
            metrics = watchers.metrics
            host, port = metrics.address
            assert host == "127.0.0.1"
            trader.run_pass(trader.config.period.index(time.time()))
            values = _scrape(port)
            assert values["genetic_sizer_kill_switch_tripped"] == 0.0 and values["genetic_sizer_equity_usd"] == 10_000
            fake.account_value = 7_500.0
            with pytest.raises(KillSwitchTripped, match=r"drawdown 25\.00%"):
                trader.run_pass(trader.config.period.index(time.time()) + 1)
            values = _scrape(port)
        assert values["genetic_sizer_kill_switch_tripped"] == 1.0
        assert values["genetic_sizer_drawdown_ratio"] == pytest.approx(0.25)
        assert values["genetic_sizer_equity_usd"] == 7_500.0
    journal.close()
    replayed = Metrics()
    for record in read_journal(tmp_path / "j.jsonl").records:
        replayed.observe(record, replay=True)
    text = replayed.text()
    assert "genetic_sizer_kill_switch_tripped 1.0" in text and "genetic_sizer_orders_sent_total 0.0" in text


# ---------------------------------------------------------------------------------------------- beyond: alerts
class _Hook:
    """A webhook receiver on 127.0.0.1 (stopped by its own handle): records every POST body; ``status`` answers."""

    def __init__(self, status: int = 200):
        self.posts: list[dict] = []
        self.paths: list[str] = []
        self.status = status
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.paths.append(self.path)
                hook.posts.append(json.loads(body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_HOOK_PATH}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _no_secret_anywhere(tmp_path, *texts):
    for text in texts:
        assert SECRET_HOOK_PATH not in text and "T0KEN" not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert "T0KEN" not in path.read_text(errors="replace"), path


def test_alerts_go_to_the_webhook_from_the_environment_which_stays_secret(fake, tmp_path, capsys, monkeypatch):
    """The kill switch and repeated failures post to the webhook named by GENETIC_SIZER_ALERT_WEBHOOK; its URL
    appears in no output, no journal and no state file."""
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    journal = tmp_path / "j.jsonl"
    with _Hook() as hook:
        monkeypatch.setenv("GENETIC_SIZER_ALERT_WEBHOOK", hook.url)
        # repeated failures: ETH's mid is 3.45% from its mark, so the guard refuses the pass; after three refusals
        # the mark agrees again and the pass (retried within its period) completes
        fake.marks["ETH"] = 2_900.0

        def mend_after_three_refusals():
            _wait_for(lambda: journal.exists() and journal.read_text().count('"status": "refused"') >= 3, what="3")
            fake.marks.clear()

        threading.Thread(target=mend_after_three_refusals, daemon=True).start()
        args = ["--execute", "--every", "1h", "--max-passes", "1", "--journal", str(journal), *FAST]
        assert _size(fake, champ, *args) == 0
        out, err = capsys.readouterr()
        _wait_for(lambda: len(hook.posts) >= 2, what="two alerts")
        kinds = [p["event"] for p in hook.posts]
        assert kinds == ["failures", "recovered"], kinds
        assert hook.posts[0]["account"] == MAIN and "3 failed tries in a row" in hook.posts[0]["text"]
        assert "ETH: mid 3000 is 3.45% from the mark price 2900" in hook.posts[0]["text"]
        assert set(hook.paths) == {SECRET_HOOK_PATH}
        assert "alerts: posting to the webhook in GENETIC_SIZER_ALERT_WEBHOOK (its URL is a secret: not shown)" in out
        _no_secret_anywhere(tmp_path, out, err)

        # the kill switch, in a later period
        fake.account_value = 7_000.0
        args = ["--execute", "--period", "1s", "--journal", str(journal), "--max-drawdown", "0.2", *FAST]
        time.sleep(1.0)
        assert _size(fake, champ, *args) == 4
        out, err = capsys.readouterr()
        _wait_for(lambda: len(hook.posts) >= 3, what="the kill alert")
        kill = hook.posts[2]
        assert kill["event"] == "kill" and "KILL SWITCH fired: drawdown 30.00%" in kill["text"]
        assert len(hook.posts) == 3  # the stop with exit code 4 that follows is the same news: not posted twice
        _no_secret_anywhere(tmp_path, out, err)


def test_a_webhook_that_fails_is_reported_without_its_url(fake, tmp_path, capsys, monkeypatch):
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    with _Hook(status=500) as hook:
        monkeypatch.setenv("GENETIC_SIZER_ALERT_WEBHOOK", hook.url)
        fake.account_value = 10_000.0
        fake.exchange_error = "User or API Wallet does not exist."  # a permanent error: exit code 5, alerted
        args = ["--execute", "--every", "1h", "--journal", str(tmp_path / "j.jsonl"), *FAST]
        assert _size(fake, champ, *args) == 5
        out, err = capsys.readouterr()
    assert [p["event"] for p in hook.posts] == ["stop"] and "exit code 5" in hook.posts[0]["text"]
    assert "alert webhook answered HTTP 500; the stop alert was not delivered" in out
    _no_secret_anywhere(tmp_path, out, err)
    monkeypatch.setenv("GENETIC_SIZER_ALERT_WEBHOOK", "ftp://example.invalid/T0KEN-x")
    assert _size(fake, champ, "--execute", "--every", "1h", "--journal", str(tmp_path / "k.jsonl")) == 2
    out, err = capsys.readouterr()
    assert "must be an http(s) URL (its value is a secret and is not shown)" in err
    _no_secret_anywhere(tmp_path, out, err)


def test_alerts_say_why_once(tmp_path):
    """Which records alert, each once: a post-trade mismatch and its stop (exit code 7) are one alert, a kill and its
    stop (4) one, another trader and its stop (8) one; a permanent error's stop alerts; a bug alerts; a clean stop
    and a partial pass do not."""
    from genetic_sizer.live.alerts import Alerts

    with _Hook() as hook:
        alerts = Alerts(hook.url, report=lambda s: None)
        records = [
            {"event": "start", "address": MAIN, "network": "mainnet"},
            {"event": "pass_end", "pass": "p/1", "status": "partial"},
            {"event": "reconcile", "pass": "p/1", "ok": False, "positions": {"BTC": 0.2}, "expected": {"BTC": 0.1}},
            {"event": "stop", "exit_code": 7, "reason": "PositionMismatch"},
            {"event": "kill", "reason": "drawdown 25.00%", "flatten": True},
            {"event": "stop", "exit_code": 4},
            {"event": "other_trader", "traders": ["ab12"]},
            {"event": "stop", "exit_code": 8},
            {"event": "stop", "exit_code": 5, "error": "User or API Wallet does not exist."},
            {"event": "stop", "reason": "bug", "error_type": "ZeroDivisionError", "error": "division by zero"},
            {"event": "stop", "exit_code": 0, "reason": "interrupted"},
        ]
        for record in records:
            alerts.observe(record)
        alerts.close()
    assert [p["event"] for p in hook.posts] == ["mismatch", "kill", "other_trader", "stop", "stop"]
    assert hook.posts[0]["text"].startswith(f"[genetic_sizer mainnet {MAIN}] POST-TRADE MISMATCH in pass p/1")
    assert "{'BTC': 0.2}" in hook.posts[0]["text"] and "{'BTC': 0.1}" in hook.posts[0]["text"]
    assert "exit code 5: User or API Wallet does not exist." in hook.posts[3]["text"]
    assert "crashed (ZeroDivisionError)" in hook.posts[4]["text"]
    assert repr(alerts) == "Alerts(webhook=<secret>)" and "T0KEN" not in repr(alerts) + str(alerts)


# ---------------------------------------------------------------------------------------------- soak
@pytest.mark.slow
def test_a_short_soak_with_injected_faults_ends_on_target_without_duplicates(tmp_path):
    """experiments/soak_live.py for about 20 seconds: the loop under random faults, outages, clock skew, 429 bodies
    without code/msg and kill -9 restarts; no order may execute twice, and the book ends on target."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "experiments" / "soak_live.py"
    spec = importlib.util.spec_from_file_location("soak_live", path)
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    figures = soak.soak(minutes=20 / 60, workdir=tmp_path, seed=3, report=lambda s: None)
    assert figures["orders_sent"] > 0 and figures["duplicates"] == 0
    assert figures["restarts"] >= 1 and figures["faults"] >= 5
    assert figures["max_drift_usd"] < 10.0  # on target: what is left is below the exchange's minimum order
    assert figures["bad_exits"] == []

"""The live sizer's money and safety interlocks (issue 24, items 1-7), against the fake exchange through the real
SDK's signing: orders land only where the account is read (userRole, vaultAddress), a pass's later rounds plan from
settled fills and a post-trade check stops the loop on a mismatch, one trader per account (a lock in the state
directory, another trader's cloids on the exchange), increases wait for the closes, the kill switch latches until
``--reset-kill``, the journal is strict and the high-water mark survives it, and flatten works coin by coin."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genetic_sizer.cli.main import main
from genetic_sizer.errors import ConfigError, ExchangeError, KillSwitchTripped
from genetic_sizer.exchange.client import HyperliquidClient
from genetic_sizer.exchange.credentials import Credentials, create_keystore, load_wallet
from genetic_sizer.exchange.roles import Role, route_orders
from genetic_sizer.live.guards import Limits, Period, trader_of
from genetic_sizer.live.highwater import rebuild_high_water
from genetic_sizer.live.journal import Journal, read_journal
from genetic_sizer.live.latch import reset_kill
from genetic_sizer.live.loop import Trader
from genetic_sizer.live.outcomes import EXIT_KILLED, EXIT_MISMATCH, EXIT_OTHER_TRADER, LoopResult
from genetic_sizer.live.settings import LiveConfig
from genetic_sizer.live.sizer import SizerSettings
from genetic_sizer.live.state import ENV_STATE_DIR, AccountStore, network_key, state_dir
from genetic_sizer.runs import champion as C
from tests.fake_hyperliquid import FakeHyperliquid
from tests.test_live_cli import AGENT, AGENT_KEY, MAIN, MIDS, UNIVERSE, write_champion

REPO = Path(__file__).resolve().parents[1]
OWN_KEY = "0x" + "33" * 32  # throwaway test keys, never real ones
OTHER_MASTER_KEY = "0x" + "44" * 32
SUB = "0x" + "5b" * 20
VAULT = "0x" + "7a" * 20
WEIGHTS = {"BTC": 0.5, "ETH": 0.3, "SOL": 0.2}
# 10,000 USD at leverage 1: BTC 5,000 / 60,000 = 0.08333 (5 decimals, toward zero), ETH 3,000 / 3,000 = 1,
# SOL 2,000 / 150 = 13.33
TARGETS = {"BTC": 0.08333, "ETH": 1.0, "SOL": 13.33}


def _address(key: str) -> str:
    from eth_account import Account

    return Account.from_key(key).address


OWN, OTHER_MASTER = _address(OWN_KEY), _address(OTHER_MASTER_KEY)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HL_SECRET_KEY", raising=False)
    monkeypatch.delenv("HL_ACCOUNT_ADDRESS", raising=False)
    with FakeHyperliquid(
        universe=UNIVERSE, mids=dict(MIDS), account_address=MAIN, agents=[AGENT], account_value=10_000.0
    ) as server:
        server.refuse_duplicate_cloids = False  # nothing here may rely on the exchange refusing a reused cloid
        yield server


def _size(fake, champ, *extra) -> int:
    return main(["size", "--champion", str(champ), "--base-url", fake.url, *extra])


def _client(fake, key=AGENT_KEY, account=MAIN, **kw) -> HyperliquidClient:
    options = {"timeout": 1.0, "max_retries": 1, "backoff": 0.01, "clock_tolerance": 0.05, **kw}
    return HyperliquidClient(
        fake.url, credentials=Credentials(load_wallet(env={"HL_SECRET_KEY": key}), account), **options
    )


def _trader(client, tmp_path, journal=None, *, weights=WEIGHTS, network="test", lines=None, **config) -> Trader:
    champ = C.load(write_champion(tmp_path / "c.json", weights))
    options = {"execute": True, "period": Period.parse("1h"), "round_pause": 0.0, "settle_timeout": 2.0, **config}
    return Trader(
        client,
        champ,
        SizerSettings(),
        address=client.address,
        network=network,
        config=LiveConfig(**options),
        journal=journal,
        report=(lines.append if lines is not None else lambda s: None),
    )


def _records(path, *events) -> list[dict]:
    return [r for r in read_journal(path).records if not events or r.get("event") in events]


def _positions(fake, account=None) -> dict:
    with fake.lock:
        book = fake.books[(account or MAIN).lower()]
        return {c: p["szi"] for c, p in book.positions.items() if p["szi"]}


def _index() -> int:
    return Period.parse("1h").index(time.time())


# ================================================================================= 1. the account orders land on
def _roles(table):
    return lambda address: table.get(address, Role(address, "missing"))


def test_route_orders_follows_what_the_exchange_says_the_key_is():
    key, master, sub, vault, other = "0xk", "0xm", "0xs", "0xv", "0xo"
    own = {key: Role(key, "user")}
    agent = {key: Role(key, "agent", master)}
    # a key of its own trades its own account; an API wallet its master's: no vaultAddress
    assert route_orders(_roles(own), key, key).vault_address is None
    routing = route_orders(_roles(agent), key, master)
    assert (routing.acts_for, routing.account, routing.vault_address) == (master, master, None)
    # a sub-account of that account, or a vault, is traded with vaultAddress = it
    table = {**agent, sub: Role(sub, "subAccount", master), vault: Role(vault, "vault")}
    assert route_orders(_roles(table), key, sub).vault_address == sub
    assert route_orders(_roles(table), key, vault).vault_address == vault
    # anything else is refused: the pass would read one account and trade another
    with pytest.raises(ConfigError, match="orders signed by this key land on 0xk \\(the key's own account\\)"):
        route_orders(_roles({**own, other: Role(other, "user")}), key, other)
    with pytest.raises(ConfigError, match="a sub-account of 0xo, not of 0xm"):
        route_orders(_roles({**agent, sub: Role(sub, "subAccount", other)}), key, sub)
    with pytest.raises(ConfigError, match="an address the exchange does not know"):
        route_orders(_roles(agent), key, other)
    # an API wallet named as its own account (no HL_ACCOUNT_ADDRESS) is told what to set
    with pytest.raises(ConfigError, match=r"this key is an API wallet of account 0xm.*set HL_ACCOUNT_ADDRESS=0xm"):
        route_orders(_roles(agent), key, key)
    # a key the exchange does not know is refused as the exchange would refuse its orders (exit code 5)
    with pytest.raises(ExchangeError, match="does not exist on the exchange"):
        route_orders(_roles({}), key, master)
    with pytest.raises(ConfigError, match="is a subAccount, which cannot sign"):
        route_orders(_roles({key: Role(key, "subAccount", master)}), key, key)


def test_a_key_that_does_not_act_for_hl_account_address_is_refused_before_any_order(
    fake, tmp_path, capsys, monkeypatch
):
    """HL_ACCOUNT_ADDRESS names MAIN, but the key is another account's own key: its orders would land on that account
    (the exchange books an order on its signer) while every pass reads MAIN, buying the whole book again each time."""
    fake.add_account(OWN, account_value=5_000.0)
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    monkeypatch.setenv("HL_SECRET_KEY", OWN_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    assert _size(fake, champ, "--execute") == 2
    err = capsys.readouterr().err
    assert f"HL_ACCOUNT_ADDRESS {MAIN} is another account of its own; orders signed by this key land on {OWN}" in err
    assert fake.exchange_requests == []
    assert _positions(fake) == {} and _positions(fake, OWN) == {}
    # the loop: the same refusal, before its first order, and it stops (bad input)
    assert _size(fake, champ, "--execute", "--every", "1h", "--max-passes", "1") == 2
    assert fake.exchange_requests == [] and _positions(fake, OWN) == {}


def test_an_agent_key_without_hl_account_address_is_told_to_set_it(fake, tmp_path, capsys, monkeypatch):
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    assert _size(fake, champ, "--execute") == 2
    err = capsys.readouterr().err
    assert f"this key is an API wallet of account {MAIN.lower()}" in err
    assert f"set HL_ACCOUNT_ADDRESS={MAIN.lower()}" in err
    assert "deposit margin first" not in err
    assert fake.exchange_requests == []


@pytest.mark.parametrize("kind", ["subAccount", "vault"])
def test_a_sub_account_or_vault_is_traded_with_vault_address(fake, tmp_path, capsys, monkeypatch, kind):
    """HL_ACCOUNT_ADDRESS is a sub-account (or a vault) of MAIN, the API wallet's master: every order carries
    vaultAddress, so it lands there, and MAIN is untouched."""
    target = SUB if kind == "subAccount" else VAULT
    fake.add_account(target, kind=kind, master=MAIN, account_value=10_000.0)
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", target)
    assert _size(fake, champ, "--execute") == 0, capsys.readouterr().err
    assert _positions(fake, target) == TARGETS
    assert _positions(fake) == {}
    assert fake.order_requests and all(r.vault == target.lower() for r in fake.order_requests)
    # every signed action carries it, the margin settings before the orders too (they would change MAIN's otherwise)
    assert {r.action["type"] for r in fake.exchange_requests} == {"order", "updateLeverage"}
    assert all((r.vault, r.account) == (target.lower(), target.lower()) for r in fake.exchange_requests)
    assert f"orders go to {kind} {target} of {MAIN.lower()}" in capsys.readouterr().out


def test_a_sub_account_of_another_master_is_refused(fake, tmp_path, capsys, monkeypatch):
    fake.add_account(OTHER_MASTER, account_value=1_000.0)
    fake.add_account(SUB, kind="subAccount", master=OTHER_MASTER, account_value=10_000.0)
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", SUB)
    assert _size(fake, champ, "--execute") == 2
    assert f"a sub-account of {OTHER_MASTER.lower()}, not of {MAIN.lower()}" in capsys.readouterr().err
    assert fake.exchange_requests == []


# ================================================================================= 2. settled fills, post-trade check
def test_round_two_plans_from_settled_fills_not_from_lagging_positions(fake, tmp_path):
    """BTC fills half in round one; positions read back trail the fills by a second. Round two must trade only BTC's
    remainder (0.08333 - 0.04166 = 0.04167): re-planned from the lagging read it would buy ETH and SOL again."""
    fake.position_lag = 1.0
    fake.partial_fill(0.5, coin="BTC")
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(client, tmp_path, journal, pass_retries=1, round_pause=0.25)
        result = trader.run_pass(_index())
    journal.close()
    assert result.status == "complete" and result.rounds == 2
    assert _positions(fake) == TARGETS  # not ETH 2.0 and SOL 26.66
    requests = [[(w["a"], w["s"]) for w in r.action["orders"]] for r in fake.order_requests]
    assert requests == [[(0, "0.08333"), (1, "1"), (2, "13.33")], [(0, "0.04167")]]
    (check,) = _records(tmp_path / "j.jsonl", "reconcile")
    assert check["ok"] is True and check["expected"] == TARGETS and check["positions"] == TARGETS
    assert check["waited"] >= 0.4  # the read trailed the fills: the check waited for it to catch up


def test_after_a_clash_with_unjournaled_orders_the_pass_replans_from_a_fresh_read_not_its_start(fake, tmp_path):
    """A killed process whose journal was lost had sent this pass's BTC order (same trader id, same cloid); it lands
    after the new pass read its positions. The cloid check before sending finds it, waits for such requests to expire
    and re-plans. Re-planned from the start's positions plus this pass's own fills (which lack that order), BTC was
    bought a second time (0.16666) and the post-trade check then stopped the loop; from a fresh read, BTC is left
    alone and only ETH and SOL are bought."""
    from genetic_sizer.exchange.wire import OrderIntent
    from genetic_sizer.live.guards import order_cloid, pass_id

    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client, _client(fake) as killed:
        trader = _trader(client, tmp_path, journal, pass_retries=1)
        index = _index()
        pid = pass_id(trader.session.champion_id, Period.parse("1h"), index)
        cloid = order_cloid(MAIN, pid, "BTC", "increase", 0, trader=trader.session.trader_id)
        read = trader.planner.snapshot
        reads: list[int] = []

        def snapshot():
            snap = read()
            if not reads:  # the lost process's request executes right after the pass's first read
                killed.place_orders([OrderIntent("BTC", True, 0.08333, 61_000.0, False, cloid)])
            reads.append(1)
            return snap

        trader.planner.snapshot = snapshot
        result = trader.run_pass(index)
    journal.close()
    assert result.status == "complete", result.error
    assert _positions(fake) == TARGETS  # BTC once: 0.08333, not 0.16666
    assert fake.orders_for(cloid) == 1
    bought = [[(w["a"], w["s"]) for w in r.action["orders"]] for r in fake.order_requests]
    assert bought == [[(0, "0.08333")], [(1, "1"), (2, "13.33")]]  # the lost order, then only ETH and SOL
    assert any("the exchange already knows orders of attempt 0 of this pass" in n for n in result.notes)
    (check,) = _records(tmp_path / "j.jsonl", "reconcile")
    assert check["ok"] is True and check["positions"] == TARGETS


def test_a_position_moved_by_someone_else_stops_the_loop_with_exit_code_7(fake, tmp_path):
    """While the pass trades, something else opens 1,000 DOGE: the positions read after the fills settled are not what
    the pass's fills imply, and the loop stops (7) instead of trading on."""
    fake.after_request("order", lambda f: f.set_position("DOGE", 1_000.0))
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(client, tmp_path, journal, settle_timeout=0.5, period=Period.parse("1s"))
        outcome = trader.run_loop(max_passes=3)
    journal.close()
    assert outcome.exit_code == EXIT_MISMATCH == 7 and outcome.passes == 1
    assert (
        outcome.error.startswith("PositionMismatch: positions after the pass differ") and "DOGE 1000" in outcome.error
    )
    (check,) = _records(tmp_path / "j.jsonl", "reconcile")
    assert check["ok"] is False and check["mismatch"] == {"DOGE": {"expected": 0.0, "position": 1000.0}}
    (end,) = _records(tmp_path / "j.jsonl", "pass_end")
    assert end["status"] == "mismatch"
    assert _records(tmp_path / "j.jsonl")[-1]["exit_code"] == 7
    assert len(fake.order_requests) == 1  # no second pass


def test_partial_fills_are_no_mismatch(fake, tmp_path):
    fake.partial_fill(0.5, coin="BTC")
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(client, tmp_path, journal, pass_retries=0)
        outcome = trader.run_once()
    journal.close()
    assert outcome.exit_code == 6  # partial: run it again in the period; not a mismatch
    (check,) = _records(tmp_path / "j.jsonl", "reconcile")
    assert check["ok"] is True and check["expected"] == {"BTC": 0.04166, "ETH": 1.0, "SOL": 13.33}


# ================================================================================= 3. one trader per account
def test_the_lock_is_per_account_and_network_in_the_state_directory(fake, tmp_path):
    """Two traders with different journals on one account: the second finds the account's lock held and trades
    nothing (exit code 8); on another network the same account has its own lock."""
    holder = AccountStore("test", MAIN)
    holder.acquire()
    assert holder.lock_path == state_dir() / f"test-{MAIN.lower()}.lock"
    try:
        lines: list[str] = []
        with _client(fake) as client:
            outcome = _trader(client, tmp_path, Journal(tmp_path / "b.jsonl"), lines=lines).run_once()
        assert outcome.exit_code == EXIT_OTHER_TRADER == 8
        assert f"another genetic-sizer (pid {os.getpid()}) trades account {MAIN.lower()} on test" in outcome.error
        assert fake.exchange_requests == [] and "not started: AnotherTrader" in lines[0]
        other = AccountStore("mainnet", MAIN)
        other.acquire()  # another network: another lock
        other.release()
    finally:
        holder.release()


def test_size_once_holds_the_accounts_lock_too(fake, tmp_path):
    """The library's single pass (``size_once``) executes under the account's lock like ``run_once``: while a loop
    holds it, it sends nothing (it used to trade beside the loop, doubling every order); afterwards it lets go."""
    from genetic_sizer.errors import AnotherTrader
    from genetic_sizer.live.loop import size_once

    champ = C.load(write_champion(tmp_path / "c.json", WEIGHTS))
    loop = AccountStore("test", MAIN)
    loop.acquire()
    try:
        with _client(fake) as client, pytest.raises(AnotherTrader, match=f"trades account {MAIN.lower()} on test"):
            size_once(
                client, champ, SizerSettings(), address=MAIN, network="test", execute=True, journal=tmp_path / "j.jsonl"
            )
    finally:
        loop.release()
    assert fake.exchange_requests == [] and _positions(fake) == {}
    with _client(fake) as client:
        result = size_once(client, champ, SizerSettings(), address=MAIN, network="test", execute=True)
    assert result.status == "complete" and _positions(fake) == TARGETS
    loop.acquire()  # released when the pass ended
    loop.release()


def test_the_state_directory_defaults_to_the_platform_user_state_directory(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.delenv(ENV_STATE_DIR, raising=False)
    assert state_dir() == Path(platformdirs.user_state_dir("genetic_sizer", appauthor=False))
    monkeypatch.setenv(ENV_STATE_DIR, str(tmp_path / "s"))
    assert state_dir() == tmp_path / "s"
    assert network_key("http://127.0.0.1:8080") == "127.0.0.1_8080" and network_key("mainnet") == "mainnet"
    store = AccountStore("http://127.0.0.1:8080", MAIN)
    assert store.path == tmp_path / "s" / f"127.0.0.1_8080-{MAIN.lower()}.json"


def test_another_trader_seen_on_the_exchange_stops_the_pass(fake, tmp_path, monkeypatch):
    """Trader X (its own state directory, i.e. another machine) traded the account; trader Y, with another state
    directory and journal, sees X's fills by the trader id in their cloids and trades nothing (exit code 8)."""
    with _client(fake) as client:
        first = _trader(client, tmp_path, Journal(tmp_path / "x.jsonl"))
        assert first.run_once().exit_code == 0
        x = first.session.trader_id
    assert {trader_of(o.cloid) for o in fake.orders} == {x}
    sent = len(fake.order_requests)
    fake.mids["BTC"] = 66_000.0  # a move that would make Y trade
    monkeypatch.setenv(ENV_STATE_DIR, str(tmp_path / "other-machine"))
    with _client(fake) as client:
        second = _trader(client, tmp_path, Journal(tmp_path / "y.jsonl"))
        outcome = second.run_once()
        y = second.session.trader_id
    assert y != x
    assert outcome.exit_code == EXIT_OTHER_TRADER
    assert f"another genetic_sizer trader ({x}; this one is {y}) acts on account {MAIN}" in outcome.error
    assert len(fake.order_requests) == sent
    (seen,) = _records(tmp_path / "y.jsonl", "other_trader")
    assert seen["traders"] == [x] and {s["kind"] for s in seen["seen"]} == {"fill"}


def test_an_old_journal_is_migrated_on_first_use_and_stays_readable(fake, tmp_path):
    """A journal of version 1 (no header) whose equity peaked at 12,500: it is read (its high-water mark fires the
    kill switch at 10,000 with --max-drawdown 0.2) and gets a header naming the trader id its orders carry."""
    path = tmp_path / "old.jsonl"
    old = [
        {"event": "start", "time": "2025-01-01T00:00:00.000000Z", "ts": 1735689600.0, "address": MAIN,
         "network": "test"},
        {"event": "equity", "time": "2025-01-01T00:00:01.000000Z", "ts": 1735689601.0, "account_value": 12_500.0},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in old))
    os.chmod(path, 0o600)
    with _client(fake) as client, Journal(path) as journal:
        trader = _trader(client, tmp_path, journal, limits=Limits(max_drawdown=0.2))
        outcome = trader.run_once()
        me = trader.session.trader_id
    assert outcome.exit_code == EXIT_KILLED and "$12,500.00" in outcome.error
    records = _records(path)
    assert records[:2] == old  # untouched
    (header,) = [r for r in records if r["event"] == "journal"]
    assert header["version"] == 2 and header["migrated_from"] == 1 and header["trader"] == me
    assert (header["account"], header["network"]) == (MAIN, "test")
    assert read_journal(path).header == header


@pytest.mark.slow
def test_two_processes_on_one_account(fake, tmp_path):
    """A loop trades MAIN. A second process with another journal but the same state directory is refused by the
    account's lock; a third with another state directory (another machine) sees the loop's fills on the exchange.
    Neither sends an order; the first stops cleanly on SIGTERM."""
    champ = write_champion(tmp_path / "c.json", WEIGHTS)

    def spawn(name: str, state: Path, journal: str) -> tuple[subprocess.Popen, Path]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HL_")}
        env.update(
            PYTHONPATH=str(REPO), HL_SECRET_KEY=AGENT_KEY, HL_ACCOUNT_ADDRESS=MAIN, **{ENV_STATE_DIR: str(state)}
        )
        out = tmp_path / f"{name}.out"
        args = ["size", "--champion", str(champ), "--base-url", fake.url, "--execute", "--every", "1h"]
        args += ["--journal", journal, "--timeout", "1", "--clock-tolerance", "0.2"]
        with open(out, "w") as o:
            proc = subprocess.Popen(
                [sys.executable, "-m", "genetic_sizer.cli.main", *args], cwd=tmp_path, env=env, stdout=o, stderr=o
            )
        return proc, out

    def first_pass_done() -> bool:
        journal = tmp_path / "a.jsonl"
        return journal.exists() and '"status": "complete"' in journal.read_text()

    first, _ = spawn("first", tmp_path / "state", "a.jsonl")
    try:
        deadline = time.monotonic() + 60
        while not first_pass_done():
            assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.out").read_text()
            time.sleep(0.05)
        assert _positions(fake) == TARGETS
        sent = len(fake.order_requests)
        fake.mids["BTC"] = 66_000.0  # a move that would make another trader trade
        second, out2 = spawn("second", tmp_path / "state", "b.jsonl")
        assert second.wait(60) == 8, out2.read_text()
        assert f"another genetic-sizer (pid {first.pid}) trades account {MAIN.lower()}" in out2.read_text()
        third, out3 = spawn("third", tmp_path / "elsewhere", "c.jsonl")
        assert third.wait(60) == 8, out3.read_text()
        assert "another genetic_sizer trader" in out3.read_text()
        assert len(fake.order_requests) == sent
    finally:
        first.send_signal(signal.SIGTERM)
        code = first.wait(30)
    assert code == 0


# ================================================================================= 4. reduce before increase
def test_increases_wait_for_the_closes_to_settle(fake, tmp_path):
    """The close of DOGE ($3,000) is rejected: the increases are not sent (the account would carry DOGE and the whole
    new book at once); the pass ends partial with DOGE rejected."""
    fake.set_position("DOGE", 20_000.0)
    fake.reject_coins["DOGE"] = "Trading is halted for DOGE."
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(client, tmp_path, journal, pass_retries=1)
        result = trader.run_pass(_index())
    journal.close()
    assert result.status == "partial" and result.rejected == ["DOGE"]
    assert len(fake.order_requests) == 1 and all(w["r"] for w in fake.order_requests[0].action["orders"])
    assert _positions(fake) == {"DOGE": 20_000.0}
    assert "round 1: increases held back: the reduce-only orders of DOGE did not settle" in result.notes
    assert "round 2: increases held back: the reduce-only orders of DOGE did not settle" in result.notes


def test_a_partly_filled_close_holds_the_increases_until_its_remainder_fills(fake, tmp_path):
    fake.set_position("DOGE", 20_000.0)
    fake.partial_fill(0.5, coin="DOGE")
    journal = Journal(tmp_path / "j.jsonl")
    with _client(fake) as client:
        trader = _trader(client, tmp_path, journal, pass_retries=1)
        result = trader.run_pass(_index())
    journal.close()
    assert result.status == "complete"
    requests = [[(w["a"], w["s"], w["r"]) for w in r.action["orders"]] for r in fake.order_requests]
    assert requests == [
        [(3, "20000", True)],  # DOGE closes half
        [(3, "10000", True)],  # round 2: the rest of the close first
        [(0, "0.08333", False), (1, "1", False), (2, "13.33", False)],  # then the increases
    ]
    assert _positions(fake) == TARGETS


# ================================================================================= 5. the kill switch latches
def test_the_kill_switch_latches_until_reset_kill(fake, tmp_path, capsys, monkeypatch):
    """A drawdown stop holds after the equity bounces back, after a restart and after the journal is deleted, until
    `genetic-sizer size --reset-kill` (no champion needed; it prints what tripped it and needs --yes without a
    terminal); then the next pass trades again."""
    path = tmp_path / "j.jsonl"
    limits = Limits(max_drawdown=0.2)
    index = _index()
    with _client(fake) as client:
        with Journal(path) as journal:
            assert _trader(client, tmp_path, journal, network=fake.url, limits=limits).run_pass(index).status == (
                "complete"
            )
        fake.account_value = 7_900.0  # 21% below 10,000
        with Journal(path) as journal, pytest.raises(KillSwitchTripped, match=r"drawdown 21\.00%"):
            _trader(client, tmp_path, journal, network=fake.url, limits=limits).run_pass(index + 1)
        fake.account_value = 10_000.0  # the bounce
        sent = len(fake.order_requests)
        with Journal(path) as journal, pytest.raises(KillSwitchTripped, match="KILL SWITCH latched: drawdown"):
            _trader(client, tmp_path, journal, network=fake.url, limits=limits).run_pass(index + 2)
        path.unlink()  # the state directory still holds it
        with Journal(path) as journal:
            outcome = _trader(client, tmp_path, journal, network=fake.url, limits=limits).run_once()
        assert outcome.exit_code == EXIT_KILLED and "--reset-kill" in outcome.error
        assert len(fake.order_requests) == sent
        store = AccountStore(fake.url, MAIN)
        assert store.kill["reason"].startswith("drawdown 21.00%")
        # a person declines: nothing changes
        assert reset_kill(store, path, confirm=lambda question: False, report=lambda s: None) is False
        assert store.kill is not None
        monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
        reset = ["size", "--reset-kill", "--base-url", fake.url, "--journal", str(path)]
        capsys.readouterr()
        assert main(reset) == 2  # no terminal to ask, no --yes
        assert "--reset-kill needs --yes" in capsys.readouterr().err
        assert main([*reset, "--yes"]) == 0
        out = capsys.readouterr().out
        assert f"the kill switch of account {MAIN.lower()} on {fake.url} tripped: drawdown 21.00%" in out
        assert "kill switch reset" in out
        assert store.kill is None and _records(path, "kill_reset")
        assert main([*reset, "--yes"]) == 0 and "not tripped" in capsys.readouterr().out
        fake.mids["BTC"] = 66_000.0
        with Journal(path) as journal:
            result = _trader(client, tmp_path, journal, network=fake.url, limits=limits).run_pass(index + 3)
        assert result.status == "complete" and len(fake.order_requests) > sent


def test_reset_kill_while_a_trader_runs_is_refused_with_exit_code_8(fake, tmp_path, capsys, monkeypatch):
    """--reset-kill takes the account's lock: while a trader holds it, the reset is refused with the exit code of
    another trader on the account (8, as the README's table says), not 2 (bad input); the latch stays."""
    store = AccountStore(fake.url, MAIN)
    store.trip({"event": "kill", "ts": 1.0, "reason": "drawdown 25.00%"})
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    loop = AccountStore(fake.url, MAIN)
    loop.acquire()
    try:
        assert main(["size", "--reset-kill", "--base-url", fake.url, "--yes"]) == EXIT_OTHER_TRADER
    finally:
        loop.release()
    assert f"another genetic-sizer (pid {os.getpid()}) trades account {MAIN.lower()}" in capsys.readouterr().err
    assert store.kill["reason"] == "drawdown 25.00%"


def test_a_latch_only_the_journal_records_is_written_back_to_the_state_directory(fake, tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:
        j.append({"event": "kill", "pass": "p", "reason": "drawdown 30.00% (an earlier run)", "flatten": False})
    with _client(fake) as client, Journal(path) as journal:
        outcome = _trader(client, tmp_path, journal).run_once()
    assert outcome.exit_code == EXIT_KILLED and "drawdown 30.00% (an earlier run)" in outcome.error
    assert AccountStore("test", MAIN).kill["reason"] == "drawdown 30.00% (an earlier run)"
    assert fake.exchange_requests == []


def test_a_reset_given_another_journal_still_clears_the_latch(fake, tmp_path):
    """--reset-kill run without the loop's journal clears the state directory's latch; the loop's journal, which still
    records the trip, learns of the later reset (a kill_reset record) instead of latching again."""
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:
        j.append({"event": "kill", "pass": "p", "reason": "drawdown 25.00%", "flatten": False})
    with _client(fake) as client, Journal(path) as journal:
        assert _trader(client, tmp_path, journal).run_once().exit_code == EXIT_KILLED
    store = AccountStore("test", MAIN)
    assert store.kill["reason"] == "drawdown 25.00%"
    assert reset_kill(store, tmp_path / "elsewhere.jsonl", yes=True, report=lambda s: None) is True
    with _client(fake) as client, Journal(path) as journal:
        assert _trader(client, tmp_path, journal).run_once().exit_code == 0
    (reset,) = _records(path, "kill_reset")
    assert reset["by"] == "the state directory's reset" and reset["kill"]["reason"] == "drawdown 25.00%"
    assert _positions(fake) == TARGETS


# ================================================================================= 6. a strict journal
def test_a_corrupted_journal_line_is_refused_by_number(fake, tmp_path, capsys, monkeypatch):
    path = tmp_path / "j.jsonl"
    lines = [
        json.dumps({"event": "equity", "ts": 1.0, "account_value": 10_000.0}),
        '{"event": "equity", "account_value": 1',  # a line in the middle that is not JSON: not a torn write
        json.dumps({"event": "stop", "ts": 3.0}),
    ]
    path.write_text("\n".join(lines) + "\n")
    champ = write_champion(tmp_path / "c.json", WEIGHTS)
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    assert _size(fake, champ, "--execute", "--journal", str(path)) == 2
    err = capsys.readouterr().err
    assert "is corrupted: line 2 is not a JSON record" in err and "Refusing to trade" in err
    assert fake.exchange_requests == []
    state = read_journal(path)  # live status still reads it, and says which line
    assert state.corrupt_lines == [2] and len(state.records) == 2


def test_the_high_water_mark_survives_a_deleted_journal(fake, tmp_path):
    limits = Limits(max_drawdown=0.2)
    with _client(fake) as client:
        with Journal(tmp_path / "a.jsonl") as journal:
            assert _trader(client, tmp_path, journal, limits=limits).run_pass(_index()).status == "complete"
        (tmp_path / "a.jsonl").unlink()
        fake.account_value = 7_900.0
        with Journal(tmp_path / "b.jsonl") as journal:
            with pytest.raises(KillSwitchTripped, match=r"from the equity high-water mark \$10,000.00"):
                _trader(client, tmp_path, journal, limits=limits).run_pass(_index() + 1)
    assert AccountStore("test", MAIN).high_water == 10_000.0


def test_rebuild_high_water_adjusts_for_deposits_and_withdrawals():
    class Flow:
        def __init__(self, t, usd):
            self.time_ms, self.usd = t, usd

    values = [(1_000, 12_000.0), (2_000, 11_000.0), (3_000, 9_000.0)]
    # a withdrawal of 1,500 after the 12,000 peak: that peak stands for 10,500 of today's capital; 11,000 stands
    assert rebuild_high_water(values, [Flow(1_500, -1_500.0)], 0, 4_000, 9_000.0) == 11_000.0
    # a deposit of 5,000 after the 12,000 peak: the account should be at 17,000
    assert rebuild_high_water(values, [Flow(1_500, 5_000.0)], 0, 4_000, 9_000.0) == 17_000.0
    # points before `since` do not count; the equity now is the floor
    assert rebuild_high_water(values, [], 2_500, 4_000, 9_500.0) == 9_500.0


def test_a_missing_high_water_mark_is_rebuilt_from_the_exchanges_history(fake, tmp_path, monkeypatch):
    """The journal and the state directory are both gone. The mark is rebuilt from the exchange over the time the
    sizer traded the account (from its oldest marked fill): values 12,000 then 11,000, with 1,500 withdrawn between
    them: 11,000 (not 12,000). At 9,000 the drawdown is 18.18%, under --max-drawdown 0.2 (25% from a raw 12,000)."""
    with _client(fake) as client, Journal(tmp_path / "a.jsonl") as journal:
        assert _trader(client, tmp_path, journal).run_pass(_index()).status == "complete"
    first = min(f["time"] for o in fake.orders for f in o.fills)
    with fake.lock:
        fake.book.value_history = [[first + 100, 12_000.0], [first + 200, 11_000.0]]
        fake.book.ledger = [
            {"time": first + 150, "hash": "0x1", "delta": {"type": "withdraw", "usdc": "1490.0", "fee": "10.0"}},
            {"time": first + 160, "hash": "0x2", "delta": {"type": "liquidation", "accountValue": "1"}},
        ]
        fake.account_value = 9_000.0
    # a new installation (its own trader id): the retired trader's fills are older than its loop's period (1 s here),
    # so they are history, not another trader at work
    time.sleep(1.2)
    monkeypatch.setenv(ENV_STATE_DIR, str(tmp_path / "fresh-state"))
    second = Period.parse("1s")
    lines: list[str] = []
    with _client(fake) as client, Journal(tmp_path / "b.jsonl") as journal:
        trader = _trader(client, tmp_path, journal, limits=Limits(max_drawdown=0.2), lines=lines, period=second)
        assert trader.run_pass(second.index(time.time())).status == "complete"
    (rebuilt,) = _records(tmp_path / "b.jsonl", "high_water")
    assert rebuilt["high_water"] == 11_000.0 and rebuilt["since_ms"] == first
    assert rebuilt["flows"] == [{"time_ms": first + 150, "kind": "withdraw", "usd": -1_500.0}]
    equity = _records(tmp_path / "b.jsonl", "equity")[0]
    assert equity["high_water"] == 11_000.0 and equity["drawdown"] == pytest.approx(1 - 9_000 / 11_000)
    assert any("high-water mark rebuilt from the exchange's account history" in line for line in lines)
    assert AccountStore("test", MAIN).high_water == 11_000.0
    with _client(fake) as client, Journal(tmp_path / "c.jsonl") as journal:  # a tighter limit fires on it
        with pytest.raises(KillSwitchTripped, match=r"drawdown 18.18% from the equity high-water mark \$11,000.00"):
            limits = Limits(max_drawdown=0.18)
            _trader(client, tmp_path, journal, limits=limits, period=second).run_pass(second.index(time.time()) + 1)


def test_journal_and_state_files_are_private_and_a_shared_keystore_is_refused(fake, tmp_path):
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"event": "stop", "ts": 1.0}) + "\n")
    os.chmod(old, 0o644)
    with _client(fake) as client:
        with Journal(tmp_path / "j.jsonl") as journal:
            assert _trader(client, tmp_path, journal).run_once().exit_code == 0
        with Journal(old) as journal:
            assert journal.notes == [f"journal {old}: was readable by others (mode 644); narrowed to 0600"]
    store = AccountStore("test", MAIN)
    for path in (tmp_path / "j.jsonl", old, store.path, store.lock_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    key = create_keystore(tmp_path / "agent.json", AGENT_KEY, "pw", kdf="pbkdf2", iterations=2000)
    os.chmod(key, 0o644)
    with pytest.raises(ConfigError, match=r"can be read or written by others \(mode 644\).*chmod 600"):
        load_wallet(key, env={"HL_KEYSTORE_PASSWORD": "pw"})
    os.chmod(key, 0o600)
    assert load_wallet(key, env={"HL_KEYSTORE_PASSWORD": "pw"}).address == AGENT


def test_a_corrupted_state_file_is_refused_not_cleared(fake, tmp_path):
    """The state file may hold a tripped kill switch: one that cannot be read stops the run (exit code 2 from the
    command line) instead of being replaced by an empty one."""
    store = AccountStore("test", MAIN)
    store.write({"kill": {"reason": "drawdown 25.00%"}})
    store.path.write_text('{"kill": {"reason": "drawdo')
    with _client(fake) as client, Journal(tmp_path / "j.jsonl") as journal:
        with pytest.raises(ConfigError, match=r"the state file .* is corrupted .* it may hold a tripped kill switch"):
            _trader(client, tmp_path, journal).run_once()
    assert fake.exchange_requests == [] and store.path.read_text() == '{"kill": {"reason": "drawdo'


# ================================================================================= 7. flatten, coin by coin
def test_flatten_closes_what_it_can_coin_by_coin(fake, tmp_path):
    """The kill switch flattens: BTC closes at once; SOL's book sits 3% from its mid, so its IOC fills at the third
    slippage (1%, 2%, 4%); XRP has no mid and is priced from its mark; ETH is halted and PEPE no longer listed: both
    are reported left open, and neither keeps the others open."""
    fake.universe.append({"name": "XRP", "szDecimals": 0, "maxLeverage": 10})
    fake.universe = [a for a in fake.universe if a["name"] != "PEPE"]
    fake.marks["XRP"] = 0.5
    fake.spreads["SOL"] = 0.03
    fake.reject_coins["ETH"] = "Trading is halted for ETH."
    for coin, size, px in (("BTC", 0.1, None), ("SOL", -20.0, None), ("XRP", 100.0, 0.5), ("ETH", 1.0, None),
                           ("PEPE", 50.0, 2.0)):  # fmt: skip
        fake.set_position(coin, size, px)
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:
        j.append({"event": "equity", "account_value": 12_500.0})
    lines: list[str] = []
    with _client(fake) as client, Journal(path) as journal:
        trader = _trader(client, tmp_path, journal, limits=Limits(max_drawdown=0.2), flatten_on_stop=True, lines=lines)
        with pytest.raises(KillSwitchTripped):
            trader.run_pass(_index())
    assert _positions(fake) == {"ETH": 1.0, "PEPE": 50.0}
    (end,) = [r for r in _records(path, "pass_end") if r["pass"].endswith("/flatten")]
    assert end["status"] == "partial" and end["left_open"] == {
        "ETH": {"size": 1.0, "why": "rejected: Trading is halted for ETH."},
        "PEPE": {"size": 50.0, "why": "the exchange does not list it: it cannot trade"},
    }
    tries = _records(path, "flatten")
    assert [t["slippage"] for t in tries if t["coin"] == "SOL"] == [0.01, 0.02, 0.04]
    (xrp,) = [t for t in tries if t["coin"] == "XRP"]
    assert (xrp["price_source"], xrp["price"], xrp["limit_px"]) == ("mark", 0.5, 0.495)
    assert any("LEFT OPEN: ETH 1 (rejected: Trading is halted for ETH.); PEPE 50" in line for line in lines)


def test_flatten_stops_widening_at_its_cap_and_reports_what_is_left(fake, tmp_path):
    """With the stop file and --flatten-on-stop: SOL's book is 15% away, beyond the 10% cap: five tries (1%, 2%, 4%,
    8%, 10%), then SOL is reported left open; BTC is closed."""
    fake.spreads["SOL"] = 0.15
    fake.set_position("BTC", 0.1)
    fake.set_position("SOL", 20.0)
    stop = tmp_path / "STOP"
    stop.write_text("")
    path = tmp_path / "j.jsonl"
    lines: list[str] = []
    with _client(fake) as client, Journal(path) as journal:
        trader = _trader(client, tmp_path, journal, flatten_on_stop=True, stop_file=str(stop), lines=lines)
        assert trader.run_loop() == LoopResult(0, 0)
    assert _positions(fake) == {"SOL": 20.0}
    assert [t["slippage"] for t in _records(path, "flatten") if t["coin"] == "SOL"] == [0.01, 0.02, 0.04, 0.08, 0.1]
    (end,) = [r for r in _records(path, "pass_end") if r["pass"].endswith("/flatten")]
    assert end["left_open"] == {"SOL": {"size": 20.0, "why": "no match within 10.00% of its mid price 150"}}


def test_a_kill_between_rounds_flattens_what_the_settled_fills_hold_not_a_lagging_read(fake, tmp_path):
    """Round one buys the book (BTC half); positions read back trail the fills by a second; then a third of the equity
    is gone, so the kill switch fires before round two and flattens. The flatten closes the positions the settled
    fills imply: flattening the lagging read (nothing yet), it closed nothing, journaled "complete" with nothing left
    open, and the latch left the whole book on unwatched."""
    fake.position_lag = 1.0
    fake.partial_fill(0.5, coin="BTC")
    fake.after_request("order", lambda f: setattr(f, "account_value", 6_500.0))
    path = tmp_path / "j.jsonl"
    with _client(fake) as client, Journal(path) as journal:
        trader = _trader(client, tmp_path, journal, limits=Limits(max_drawdown=0.2), flatten_on_stop=True)
        with pytest.raises(KillSwitchTripped, match=r"drawdown 35\.00%"):
            trader.run_pass(_index())
    assert _positions(fake) == {}
    (end,) = [r for r in _records(path, "pass_end") if r["pass"].endswith("/flatten")]
    assert end["status"] == "complete" and end["left_open"] == {}
    closes = {t["coin"]: t["position"] for t in _records(path, "flatten")}
    assert closes == {"BTC": 0.04166, "ETH": 1.0, "SOL": 13.33}
    (check,) = [r for r in _records(path, "equity") if r["stage"] == "round 2"]
    assert check["gross_exposure"] == pytest.approx(0.04166 * 60_000 + 3_000 + 13.33 * 150, abs=1e-6)


def test_a_kill_without_positions_needs_no_flatten_orders(fake, tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:
        j.append({"event": "equity", "account_value": 12_500.0})
    with _client(fake) as client, Journal(path) as journal:
        trader = _trader(client, tmp_path, journal, limits=Limits(max_drawdown=0.2), flatten_on_stop=True)
        with pytest.raises(KillSwitchTripped):
            trader.run_pass(_index())
    (end,) = [r for r in _records(path, "pass_end") if r["pass"].endswith("/flatten")]
    assert end["status"] == "complete" and end["left_open"] == {} and fake.exchange_requests == []

"""`genetic-sizer data fetch` and `genetic-sizer size` end to end: the real SDK against the fake exchange on
127.0.0.1 (tests/fake_hyperliquid.py), through the command line a trader uses."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.cli.main import main
from genetic_sizer.data.loaders import load
from genetic_sizer.runs import champion as C
from tests.fake_hyperliquid import FakeHyperliquid, make_candles, make_funding

AGENT_KEY = "0x" + "11" * 32  # throwaway test keys, never real ones
MAIN_KEY = "0x" + "22" * 32


def _address(key):
    from eth_account import Account

    return Account.from_key(key).address


AGENT, MAIN = _address(AGENT_KEY), _address(MAIN_KEY)
UNIVERSE = [
    {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
    {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
    {"name": "SOL", "szDecimals": 2, "maxLeverage": 20},
    {"name": "DOGE", "szDecimals": 0, "maxLeverage": 10},
    {"name": "AVAX", "szDecimals": 1, "maxLeverage": 10},
    {"name": "PEPE", "szDecimals": 3, "maxLeverage": 5},
]
MIDS = {"BTC": 60000.0, "ETH": 3000.0, "SOL": 150.0, "DOGE": 0.15, "AVAX": 20.0, "PEPE": 2.0}


def write_champion(path, weights: dict, direction="longonly", strategy=None, market="perp", leverage=1.0):
    """A champion file holding ``weights``: evolved on perpetuals at ``leverage`` unless ``market`` is "spot" (the live
    sizer refuses to execute a spot champion without --accept-spot-champion)."""
    assets = list(weights)
    account = {"market": "perp", "leverage": leverage} if market == "perp" else {"market": "spot"}
    record = C.build(
        symbols=assets,
        weights=[weights[a] for a in assets],
        metrics={"sharpe": 1.0},
        objective=["sharpe"],
        portfolio={
            "direction": direction,
            "min_weight": -1.0 if direction == "longshort" else 0.0,
            "max_weight": 1.0,
            "rebalance": "D",
            "fees": 0.0005,
            "slippage": 0.0,
            "init_cash": 10000.0,
            **account,
        },
        data={
            "source": "hyperliquid:test",
            "first_bar": "2025-01-01T00:00:00+00:00",
            "last_bar": "2025-02-01T00:00:00+00:00",
            "n_bars": 744,
            "periods_per_year": 8760,
            "close_sha256": "0" * 64,
        },
        evolution={"seed": 1},
        config_sha256="0" * 64,
        selection="test",
        verification={"engine": "vectorbt"},
        strategy=strategy,
    )
    return C.write(record, path)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the default journal (size-journal.jsonl) lands here
    monkeypatch.delenv("HL_SECRET_KEY", raising=False)
    monkeypatch.delenv("HL_ACCOUNT_ADDRESS", raising=False)
    with FakeHyperliquid(
        universe=UNIVERSE, mids=dict(MIDS), account_address=MAIN, agents=[AGENT], account_value=10_000.0
    ) as server:
        yield server


def _size(fake, champ, *extra):
    return main(["size", "--champion", str(champ), "--base-url", fake.url, *extra])


def test_dry_run_reads_the_account_and_sends_nothing(fake, tmp_path, capsys, monkeypatch):
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.3, "SOL": 0.2})
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    assert _size(fake, champ, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["executed"] is False and fake.exchange_requests == []
    sizes = {o["coin"]: o["size"] for o in out["plan"]["orders"]}
    assert sizes == {"BTC": 0.08333, "ETH": 1.0, "SOL": 13.33}  # 5,000/60,000; 3,000/3,000; 2,000/150
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)  # a key present but no --execute: still nothing sent
    assert _size(fake, champ) == 0
    text = capsys.readouterr().out
    assert "DRY RUN" in text and fake.exchange_requests == []
    assert AGENT_KEY not in text and AGENT_KEY[2:] not in text


def test_execute_fresh_account_then_journal(fake, tmp_path, capsys, monkeypatch):
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.3, "SOL": 0.2})
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    journal = tmp_path / "journal.jsonl"
    assert _size(fake, champ, "--execute", "--journal", str(journal)) == 0
    out, err = capsys.readouterr()
    assert fake.position("BTC") == 0.08333 and fake.position("ETH") == 1.0 and fake.position("SOL") == 13.33
    assert all(r.signer.lower() == AGENT.lower() for r in fake.exchange_requests)
    assert "result BTC: filled 0.08333" in out and "drift SOL: position 13.33 vs target 13.33" in out
    records = _journal(journal)
    (result,) = [r for r in records if r["event"] == "result"]
    assert [(r["coin"], r["status"], r["filled_size"]) for r in result["results"]] == [
        ("BTC", "filled", 0.08333),
        ("ETH", "filled", 1.0),
        ("SOL", "filled", 13.33),
    ]
    (end,) = [r for r in records if r["event"] == "pass_end"]
    assert end["status"] == "complete" and end["executed"] is True
    for text in (out, err, journal.read_text()):
        assert AGENT_KEY[2:] not in text  # the key is in no output and no file
    # a second pass in the same period: the pass is complete, nothing is read or sent again
    sent = len(fake.exchange_requests)
    assert _size(fake, champ, "--execute", "--journal", str(journal)) == 0
    assert len(fake.exchange_requests) == sent
    assert "completed at" in capsys.readouterr().out
    # without that memory (a new journal), the pass is planned afresh from the positions: already on target
    assert _size(fake, champ, "--execute", "--journal", str(tmp_path / "other.jsonl")) == 0
    assert len(fake.exchange_requests) == sent
    assert "already on target" in capsys.readouterr().out


def test_existing_positions_unlisted_coins_small_weights_and_all_size_decimals(fake, tmp_path, capsys, monkeypatch):
    # longs and shorts, a coin the champion does not hold (PEPE), a weight worth under $10 (AVAX 0.0005 -> $5)
    fake.set_position("BTC", 0.1)
    fake.set_position("ETH", -2.0)
    fake.set_position("PEPE", 100.0)
    champ = write_champion(
        tmp_path / "c.json",
        {"BTC": 0.2, "ETH": 0.3, "SOL": 0.2995, "DOGE": 0.2, "AVAX": 0.0005},
    )
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    assert _size(fake, champ, "--execute", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    coins = {c["coin"]: c for c in out["plan"]["coins"]}
    assert coins["AVAX"]["action"] == "skip" and "below the minimum of $10" in coins["AVAX"]["reason"]
    # 10,000 USD: BTC 2,000/60,000 = 0.03333 (reduce from 0.1), ETH flips -2 -> +1 (close then open),
    # SOL 2,995/150 = 19.96, DOGE 2,000/0.15 = 13,333, PEPE closed
    assert fake.position("BTC") == 0.03333
    assert fake.position("ETH") == 1.0
    assert fake.position("SOL") == 19.96
    assert fake.position("DOGE") == 13333.0
    assert fake.position("PEPE") == 0.0
    legs = [(o["coin"], o["leg"], o["reduce_only"]) for o in out["plan"]["orders"]]
    # reductions first, largest first: ETH close $6,000, BTC reduce $4,000, PEPE close $200
    assert legs[:3] == [("ETH", "close", True), ("BTC", "reduce", True), ("PEPE", "close", True)]
    assert ("ETH", "open", False) in legs
    first, second = fake.order_requests[0].action["orders"], fake.order_requests[1].action["orders"]
    assert all(o["r"] for o in first) and not any(o["r"] for o in second)  # reductions in the first request


def test_rejected_order_whole_request_error_and_timeout_without_duplicates(fake, tmp_path, capsys, monkeypatch):
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "SOL": 0.5})
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    fake.reject_coins["SOL"] = "Insufficient margin to place order."
    assert _size(fake, champ, "--execute") == 3  # a per-order rejection is reported, exit code 3
    out = capsys.readouterr().out
    assert "result SOL: rejected" in out and "Insufficient margin" in out
    assert fake.position("BTC") == 0.08333 and fake.position("SOL") == 0.0

    fake.reject_coins.clear()
    fake.exchange_error = "User or API Wallet does not exist."
    assert _size(fake, champ, "--execute") == 5  # a permanent exchange error, as in the loop
    assert "User or API Wallet does not exist" in capsys.readouterr().err
    fake.exchange_error = None

    fake.timeout_next_exchange(delay=3.0)  # processed by the exchange, but the answer comes too late
    sent = len(fake.order_requests)
    assert _size(fake, champ, "--execute", "--timeout", "1", "--clock-tolerance", "0.2") == 0
    assert fake.order_requests[sent].delayed  # the client timed out on this one...
    assert fake.position("SOL") == 33.33  # ...yet SOL (5,000 / 150) was bought exactly once
    assert fake.duplicate_cloids == 0


def test_mainnet_needs_yes(fake, tmp_path, capsys, monkeypatch):
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "SOL": 0.5})
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    monkeypatch.setattr("genetic_sizer.live.loop.is_mainnet", lambda url: True)
    assert _size(fake, champ, "--execute") == 2
    assert "needs --yes" in capsys.readouterr().err and fake.exchange_requests == []
    assert _size(fake, champ, "--execute", "--yes") == 0
    assert fake.position("BTC") == 0.08333


def test_errors_before_sending(fake, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "XRP": 0.5})
    assert _size(fake, champ) == 2
    assert "holds 'XRP', which the exchange does not list" in capsys.readouterr().err
    champ = write_champion(tmp_path / "d.json", {"BTC": 0.5, "DOGE": 0.5}, market="spot")  # sized at --leverage
    assert _size(fake, champ, "--leverage", "12") == 2
    assert "leverage 12 is above DOGE's maxLeverage 10" in capsys.readouterr().err
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", AGENT_KEY)  # a key pasted in the wrong variable is not echoed
    assert _size(fake, champ) == 2
    err = capsys.readouterr().err
    assert "HL_ACCOUNT_ADDRESS must be an address" in err and AGENT_KEY[2:] not in err
    monkeypatch.delenv("HL_ACCOUNT_ADDRESS")
    assert _size(fake, champ) == 2
    assert "no account to read" in capsys.readouterr().err
    assert _size(fake, champ, "--execute", "--address", MAIN) == 2  # no key to sign with
    err = capsys.readouterr().err
    assert "HL_SECRET_KEY" in err
    assert fake.exchange_requests == []


def test_data_fetch_pages_aligns_and_saves(fake, tmp_path, capsys):
    t0 = 1_735_948_800_000  # 2025-01-04T00:00Z
    fake.candle_limit = 50  # small pages: several requests per coin
    fake.candles = {
        ("BTC", "1h"): make_candles("BTC", "1h", t0, 120, price=60000.0),
        ("ETH", "1h"): make_candles("ETH", "1h", t0 + 5 * 3_600_000, 115, price=3000.0),
    }
    fake.funding = {"BTC": make_funding("BTC", t0, 120), "ETH": make_funding("ETH", t0, 120)}
    out = tmp_path / "hl.parquet"
    code = main(
        [
            "data",
            "fetch",
            "--coins",
            "BTC",
            "ETH",
            "--interval",
            "1h",
            "--start",
            "2025-01-04",
            "--end",
            "2025-01-09",
            "--out",
            str(out),
            "--base-url",
            fake.url,
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "2 coins x 115 1h bars" in text and "5 bars dropped" in text
    prices = load("hyperliquid", out)
    assert prices.symbols == ("BTC", "ETH") and prices.n_bars == 115 and prices.periods_per_year == 8760
    funding = pd.read_parquet(out.with_suffix(".funding.parquet"))
    assert set(funding["coin"]) == {"BTC", "ETH"} and len(funding) == 240
    other = str(tmp_path / "other.parquet")
    assert (
        main(["data", "fetch", "--coins", "BTCC", "--start", "2025-01-04", "--out", other, "--base-url", fake.url]) == 2
    )
    assert "unknown coin 'BTCC'; nearest listed names: ['BTC'" in capsys.readouterr().err
    # the saved files are the user's now: fetching onto them is refused before any request, unless --force
    before = (out.read_bytes(), out.with_suffix(".funding.parquet").read_bytes())
    served = len(fake.info_requests)
    again = [
        "data",
        "fetch",
        "--coins",
        "BTC",
        "ETH",
        "--start",
        "2025-01-04",
        "--end",
        "2025-01-06",
        "--out",
        str(out),
    ]
    assert main([*again, "--base-url", fake.url]) == 2
    assert f"--out '{out}' already exists; nothing is overwritten" in capsys.readouterr().err
    assert (out.read_bytes(), out.with_suffix(".funding.parquet").read_bytes()) == before
    assert len(fake.info_requests) == served
    out.unlink()  # the funding file next to it is checked too
    assert main([*again, "--base-url", fake.url]) == 2
    assert "funding file" in capsys.readouterr().err and not out.exists()
    assert main([*again, "--force", "--base-url", fake.url]) == 0
    assert load("hyperliquid", out).n_bars < 115  # the new, shorter window replaced the old file


def test_data_fetch_saves_the_meta_the_bars_range_and_the_price_of_every_funding_payment(fake, tmp_path, capsys):
    """Daily bars (issue 22, items 7-9): the fetch saves the exchange's meta (NAME.meta.json, with BTC's margin
    tiers), the candles' highs and lows, and every funding payment with its hour's close from the hourly candles,
    which the exchange serves only for the newest hours (here the last two days): the older payments are charged at
    their bar's close, and the notes say which and when."""
    t0 = 1_735_689_600_000  # 2025-01-01T00:00Z
    hour, day = 3_600_000, 86_400_000
    meta = {
        "universe": [dict(u, marginTableId=56) if u["name"] == "BTC" else dict(u) for u in UNIVERSE],
        "marginTables": [
            [
                56,
                {
                    "description": "tiered 40x",
                    "marginTiers": [
                        {"lowerBound": "0.0", "maxLeverage": 40},
                        {"lowerBound": "150000000.0", "maxLeverage": 20},
                    ],
                },
            ]
        ],
    }
    fake.info_overrides["meta"] = meta
    fake.candles = {
        ("BTC", "1d"): make_candles("BTC", "1d", t0, 5, price=60000.0, step=100.0),
        ("ETH", "1d"): make_candles("ETH", "1d", t0, 5, price=3000.0, step=10.0),
        ("BTC", "1h"): make_candles("BTC", "1h", t0 + 3 * day, 48, price=60350.0, step=1.0),
        ("ETH", "1h"): make_candles("ETH", "1h", t0 + 3 * day, 48, price=3035.0, step=0.5),
    }
    fake.funding = {"BTC": make_funding("BTC", t0, 24 * 5 + 1), "ETH": make_funding("ETH", t0, 24 * 5 + 1)}
    out = tmp_path / "hl_1d.parquet"
    argv = ["data", "fetch", "--coins", "BTC", "ETH", "--interval", "1d", "--start", "2025-01-01"]
    assert main([*argv, "--end", "2025-01-05", "--out", str(out), "--base-url", fake.url]) == 0
    assert str(out.with_suffix(".meta.json")) in capsys.readouterr().out
    assert json.loads(out.with_suffix(".meta.json").read_text()) == meta
    prices = load("hyperliquid", out)
    assert prices.margin == {"BTC": ((0.0, 40.0), (150e6, 20.0)), "ETH": ((0.0, 25.0),)}
    candles = fake.candles[("BTC", "1d")]
    np.testing.assert_array_equal(prices.high[:, 0], [float(c["h"]) for c in candles])
    np.testing.assert_array_equal(prices.low[:, 0], [float(c["l"]) for c in candles])
    rows = pd.read_parquet(out.with_suffix(".funding.parquet"))
    assert len(rows) == 2 * (24 * 5 + 1)  # 2025-01-01T00:00 up to the last daily bar's close, 2025-01-06T00:00
    btc = rows[rows["coin"] == "BTC"].set_index("time")
    hourly = {c["t"] + hour: float(c["c"]) for c in fake.candles[("BTC", "1h")]}
    for t, row in btc.iterrows():
        ms = int(t.value // 1_000_000)
        assert row["price"] == hourly[ms] if ms in hourly else np.isnan(row["price"])
    # bar 4 (2025-01-05): every hour priced at its own close; its close (2025-01-06T00:00) at the bar's close
    rates = {int(t.value // 1_000_000): r for t, r in btc["funding_rate"].items()}
    bar4 = [t0 + 4 * day + h * hour for h in range(1, 25)]
    want = sum(rates[t] * hourly[t] for t in bar4[:-1]) / prices.close[4, 0] + rates[bar4[-1]]
    assert prices.funding[4, 0] == pytest.approx(want, rel=1e-12)
    bar1 = [t0 + day + h * hour for h in range(1, 25)]  # 2025-01-02: no hourly candles, all at the bar's close
    assert prices.funding[1, 0] == pytest.approx(sum(rates[t] for t in bar1), rel=1e-12)
    note = next(n for n in prices.notes if n.startswith("funding from"))
    assert "92 of 230 payments inside a bar priced at their hour's close" in note  # 2 coins x 2 days x 23 hours
    assert (
        "138 at their bar's close (no hourly price; paid 2025-01-01T01:00:00+00:00 .. 2025-01-03T23:00:00+00:00)"
        in note
    )


# ---- defects: wrong account, partial passes, the loop's error policy, the minimum at the limit, bad flags ----
STRANGER_KEY = "0x" + "33" * 32  # a wallet nobody authorized
OTHER = "0x" + "ab" * 20  # another account, with its own equity and positions (read-only here)


def _journal(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_execute_refuses_an_address_other_than_the_keys_account(fake, tmp_path, capsys, monkeypatch):
    fake.other_accounts[OTHER.lower()] = {"account_value": 50_000.0, "positions": {"BTC": 0.5}}
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.5})
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    # a dry run may preview any account: OTHER's equity and position are read
    assert _size(fake, champ, "--address", OTHER, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["address"] == OTHER and out["plan"]["account_value"] == 50_000.0
    assert {c["coin"]: c["current"] for c in out["plan"]["coins"]}["BTC"] == 0.5
    # executing would size OTHER but sign for (and trade) MAIN: refused before anything is read or sent
    assert _size(fake, champ, "--execute", "--address", OTHER) == 2
    out, err = capsys.readouterr()
    assert f"--address {OTHER} is not the account this key trades: its orders go to {MAIN}" in err
    assert f"HL_ACCOUNT_ADDRESS={OTHER}" in err
    for text in (out, err):
        assert AGENT_KEY[2:] not in text
    assert fake.exchange_requests == [] and fake.orders == []
    # naming the key's own account is fine
    assert _size(fake, champ, "--execute", "--address", MAIN.lower()) == 0
    assert fake.position("BTC") == 0.08333 and fake.position("ETH") == 1.6666


def test_a_failure_after_accepted_orders_journals_and_prints_them(fake, tmp_path, capsys, monkeypatch):
    # DOGE (not in the champion) is closed by the first request; the second (the increases) is refused whole
    fake.set_position("DOGE", 1000.0)
    fake.refuse_next_exchange("Too many requests in the last minute.", skip=1)
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.5})
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    journal = tmp_path / "journal.jsonl"
    assert _size(fake, champ, "--execute", "--journal", str(journal)) == 5  # a permanent exchange error
    out, err = capsys.readouterr()
    assert "result DOGE: filled 1000" in out and "pass FAILED: ExchangeError" in out
    assert "Too many requests" in err
    assert fake.position("DOGE") == 0.0 and fake.position("BTC") == 0.0
    records = _journal(journal)
    first, second = [r for r in records if r["event"] == "result"]
    assert [(r["coin"], r["status"], r["filled_size"]) for r in first["results"]] == [("DOGE", "filled", 1000.0)]
    # the refused request executed nothing: its orders are settled as such, none is left unknown
    assert {r["status"] for r in second["results"]} == {"not_executed"} and second["unknown"] == []
    message = "ExchangeError: the exchange refused the order request: Too many requests in the last minute."
    assert second["error"] == message
    (end,) = [r for r in records if r["event"] == "pass_end"]
    assert end["status"] == "failed" and end["error"] == message
    assert end["drift"]["DOGE"]["position"] == 0.0 and end["drift"]["BTC"]["position"] == 0.0


def test_every_stops_on_a_permanent_exchange_error_with_exit_code_5(fake, tmp_path, capsys, monkeypatch):
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.5})
    monkeypatch.setenv("HL_SECRET_KEY", STRANGER_KEY)  # not an API wallet of MAIN: every order is refused
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    journal = tmp_path / "journal.jsonl"
    code = _size(fake, champ, "--execute", "--every", "1s", "--max-passes", "3", "--journal", str(journal))
    assert code == 5
    out = capsys.readouterr().out
    assert ": ExchangeError:" in out and "does not exist" in out and "stopping (exit code 5)" in out
    # refused before the first order (the exchange's userRole does not know the key), not retried, in this period or
    # the next (was 1: the order request itself was sent and refused)
    assert len(fake.exchange_requests) == 0
    assert sum(r["type"] == "userRole" for r in fake.info_requests) == 1
    records = _journal(journal)
    (end,) = [r for r in records if r["event"] == "pass_end"]
    assert end["executed"] is True and end["status"] == "failed" and "does not exist" in end["error"]
    stop = records[-1]
    assert (stop["event"], stop["pass"], stop["error_type"], stop["exit_code"]) == (
        "stop",
        end["pass"],
        "ExchangeError",
        5,
    )
    assert STRANGER_KEY[2:] not in journal.read_text() + out


def test_every_retries_transient_errors_within_the_period_or_at_the_next(fake, tmp_path, capsys, monkeypatch):
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.5})
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    fake.fail_next(503, count=4, path="/info")  # the first pass's first read fails 1 + 3 retries times
    journal = tmp_path / "journal.jsonl"
    assert _size(fake, champ, "--execute", "--every", "1s", "--max-passes", "2", "--journal", str(journal)) == 0
    assert ": RetryableExchangeError: meta" in capsys.readouterr().out
    records = _journal(journal)
    ends = [r for r in records if r["event"] == "pass_end"]
    # the first try fails; it is retried within its period (or, near the period's end, the period is skipped and
    # the next one trades): either way the account ends on target and the journal says what happened
    assert ends[0]["status"] == "failed" and "HTTP 503" in ends[0]["error"]
    retried = [r for r in records if r["event"] in ("error", "skipped")]
    assert retried and retried[0]["pass"] == ends[0]["pass"] and retried[0]["error_type"] == "RetryableExchangeError"
    assert ends[-1]["status"] == "complete"
    assert fake.position("BTC") == 0.08333 and fake.position("ETH") == 1.6666


def test_every_stops_on_bad_input_with_exit_code_2(fake, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "XRP": 0.5})
    journal = tmp_path / "journal.jsonl"
    assert _size(fake, champ, "--every", "1s", "--max-passes", "3", "--journal", str(journal)) == 2
    assert "holds 'XRP', which the exchange does not list" in capsys.readouterr().out
    stop = _journal(journal)[-1]
    assert (stop["event"], stop["error_type"], stop["exit_code"]) == ("stop", "SizingError", 2)


def test_a_sell_above_10_at_the_mid_but_below_at_its_limit_is_not_sent(fake, tmp_path, capsys, monkeypatch):
    # PEPE 5.1 at a mid of 2 is $10.20; with 5% slippage the close sells at 1.9: 5.1 x 1.9 = $9.69 < $10
    fake.set_position("PEPE", 5.1)
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.5})
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    assert _size(fake, champ, "--execute", "--slippage", "0.05", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    pepe = {c["coin"]: c for c in out["plan"]["coins"]}["PEPE"]
    assert (
        pepe["action"] == "skip"
        and pepe["reason"] == "order of $9.69 at its limit price 1.9 is below the minimum of $10"
    )
    assert out["errors"] == [] and fake.position("PEPE") == 5.1
    sent = [w for r in fake.order_requests for w in r.action["orders"]]
    assert {w["a"] for w in sent} == {0, 1}  # BTC and ETH only
    # limits as planned: BTC buys at 60,000 x 1.05 = 63,000, ETH at 3,150
    assert sorted(w["p"] for w in sent) == ["3150", "63000"]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--slippage", "2", "must be a number > 0 and <= 0.5 (a fraction of the mid: 0.01 is 1%), got '2'"),
        ("--slippage", "-0.1", "must be a number > 0 and <= 0.5"),
        ("--slippage", "0", "must be a number > 0 and <= 0.5"),
        ("--slippage", "nan", "must be a number > 0 and <= 0.5"),
        ("--slippage", "1%", "must be a number > 0 and <= 0.5"),
        ("--leverage", "0", "must be a number > 0, got '0'"),
        ("--leverage", "-2", "must be a number > 0"),
        ("--leverage", "inf", "must be a number > 0"),
        ("--timeout", "0", "must be a number > 0"),
        ("--timeout", "-1", "must be a number > 0"),
        ("--min-trade-usd", "5", "must be a number >= 10 (the exchange's minimum order), got '5'"),
        ("--min-weight-change", "1", "must be a number >= 0 and < 1"),
        ("--min-weight-change", "-0.01", "must be a number >= 0 and < 1"),
        ("--max-notional-per-asset", "0", "must be a number > 0"),
        ("--every", "0h", "must be a period like 30s, 15m, 1h or 1d, got '0h'"),
        ("--max-passes", "0", "must be an integer >= 1"),
        ("--max-passes", "1.5", "must be an integer >= 1, got '1.5'"),
    ],
)
def test_numeric_flags_are_validated_when_parsed(fake, tmp_path, capsys, monkeypatch, flag, value, message):
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.5})
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    with pytest.raises(SystemExit) as exit_:
        _size(fake, champ, f"{flag}={value}")
    assert exit_.value.code == 2
    assert f"argument {flag}: {message}" in capsys.readouterr().err
    assert fake.info_requests == [] and fake.exchange_requests == []


def test_max_passes_needs_every(fake, tmp_path, capsys, monkeypatch):
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.5})
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    assert _size(fake, champ, "--max-passes", "2") == 2
    assert "--max-passes needs --every" in capsys.readouterr().err


# ---- the champion's strategy: its drift band decides whether a pass trades ---------------------------------
def test_the_champions_drift_band_decides_whether_to_trade(fake, tmp_path, capsys, monkeypatch):
    """Target BTC 0.5 / ETH 0.5 of 10,000; held BTC 5,250 (0.525) and ETH 4,750 (0.475): a drift of 0.025. The
    champion's band of 0.05 holds (nothing sent, the plan says why); --threshold overrides it either way."""
    champ = write_champion(
        tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.5}, strategy={"rebalance": "D", "threshold": 0.05}
    )
    assert C.load(champ).threshold == 0.05
    fake.set_position("BTC", 0.0875)
    fake.set_position("ETH", 1.58333)
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    assert _size(fake, champ, "--json") == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert plan["rule"] == "hold" and plan["orders"] == []
    assert plan["rule_reason"].startswith("no coin drifted 0.05 or more from its target (largest: ")
    assert _size(fake, champ, "--execute") == 0  # nothing to send: no request reaches the exchange
    out = capsys.readouterr().out
    assert "rule: hold (no coin drifted 0.05" in out and fake.exchange_requests == []
    assert _size(fake, champ, "--json", "--threshold", "0.02") == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert plan["rule"] == "drift" and {o["coin"] for o in plan["orders"]} == {"BTC", "ETH"}
    assert _size(fake, champ, "--json", "--threshold", "none") == 0
    assert json.loads(capsys.readouterr().out)["plan"]["rule"] == "rebalance"
    # the executed single pass held: its journal says so, and the pass completed (a rerun in its period skips it)
    records = [json.loads(line) for line in (tmp_path / "size-journal.jsonl").read_text().splitlines()]
    (plan_record,) = [r for r in records if r["event"] == "plan"]
    assert plan_record["plan"]["rule"] == "hold" and plan_record["executed"] is True
    assert [r["status"] for r in records if r["event"] == "pass_end"] == ["complete"]
    start = next(r for r in records if r["event"] == "start")
    assert start["settings"]["drift_band"] == 0.05
    assert start["strategy"] == {"rebalance": "D", "calendar": "1d", "drift_band": 0.05, "leverage": 1.0}
    # --every alone: the champion's rebalance period (a day); the first pass is decided by the band
    journal = tmp_path / "j.jsonl"
    assert _size(fake, champ, "--every", "--max-passes", "1", "--journal", str(journal)) == 0
    assert "rule: hold" in capsys.readouterr().out
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert next(r for r in records if r["event"] == "start")["period"] == "1d"
    assert [r["plan"]["rule"] for r in records if r["event"] == "plan"] == ["hold"]
    assert fake.exchange_requests == []


def test_every_alone_needs_a_period_for_a_buy_and_hold_champion(fake, tmp_path, capsys, monkeypatch):
    champ = write_champion(
        tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.5}, strategy={"rebalance": "once", "threshold": 0.1}
    )
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    assert _size(fake, champ, "--every", "--max-passes", "1") == 2
    assert "buys and holds (rebalance once): give --every a period" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-0.1", "nan", "5%"])
def test_a_bad_threshold_flag_is_a_parse_error(fake, tmp_path, capsys, value):
    champ = write_champion(tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.5})
    with pytest.raises(SystemExit) as exc:
        _size(fake, champ, "--threshold", value)
    assert exc.value.code == 2 and "drift band >= 0" in capsys.readouterr().err


# ---- perpetuals: from a fetched file through evolution to a sized plan --------------------------------------
def test_fetch_evolve_and_size_a_perp_champion_end_to_end(fake, tmp_path, capsys, monkeypatch):
    """The whole path a Hyperliquid user takes, offline: `data fetch` from the (fake) exchange, serving a synthetic
    hourly market with funding, writes the fetched-format Parquet files; `evolve --config configs/hyperliquid.yaml`
    evolves perp genomes on them (3x leverage, funding, taker fees); `size` sizes the champion at the leverage it
    was evolved at (a dry run), and refuses another leverage unless told otherwise."""
    from pathlib import Path

    from genetic_sizer.data.synthetic import perp_market

    coins = ["BTC", "ETH", "SOL", "DOGE", "AVAX"]
    market = perp_market(coins, hours=24 * 45, seed=5)
    fake.candles = {(c, "1h"): rows for c, rows in market.candles.items()}
    fake.funding = dict(market.funding)
    data = tmp_path / "data" / "hl_1h.parquet"
    fetch = ["data", "fetch", "--coins", *coins, "--start", "2025-01-01", "--end", "2025-02-15T01:00"]
    assert main([*fetch, "--out", str(data), "--base-url", fake.url]) == 0
    assert "--config configs/hyperliquid.yaml --set data.path=" in capsys.readouterr().out
    fetched = load("hyperliquid", data)  # candles and funding as the exchange served them, aligned on reading
    np.testing.assert_array_equal(fetched.close, market.prices.close)
    np.testing.assert_array_equal(fetched.funding, market.prices.funding)

    config = Path(__file__).resolve().parents[1] / "configs" / "hyperliquid.yaml"
    run = tmp_path / "run"
    small = ["evolution.population=12", "evolution.generations=3", "evolution.hall_of_fame=3"]
    args = ["evolve", "--config", str(config), "--set", f"data.path={data}", "--out", str(run), "--no-plots"]
    assert main([*args, *(x for s in small for x in ("--set", s))]) == 0
    out = capsys.readouterr().out
    assert "perpetuals at leverage 3 (funding charged)" in out
    assert (
        "reference re-check: metrics agree" in out
        and "against genetic_sizer.backtest.reference.reference_genome" in out
    )
    assert "funding paid" in out
    champ = C.load(run / "champion.json")
    assert champ.market == "perp" and champ.leverage == 3.0 and champ.direction == "longshort"

    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    assert _size(fake, run / "champion.json", "--json") == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert plan["leverage"] == 3.0 and plan["account_value"] == 10_000.0
    decimals = {u["name"]: u["szDecimals"] for u in UNIVERSE}
    traded = [c for c in plan["coins"] if c["action"] == "trade"]
    assert {c["coin"] for c in traded} == set(champ.holdings)
    for c in traded:  # weight x equity x 3 / mid, rounded toward zero to the coin's size decimals
        want = champ.weight_of(c["coin"]) * 30_000.0 / c["mid"]
        assert abs(c["target"]) <= abs(want) + 1e-12 and abs(want - c["target"]) < 10.0 ** -decimals[c["coin"]]
    assert fake.exchange_requests == []
    assert _size(fake, run / "champion.json", "--leverage", "1") == 2
    assert "--leverage 1 differs from the leverage 3 this perp champion was evolved at" in capsys.readouterr().err
    assert _size(fake, run / "champion.json", "--leverage", "1", "--allow-leverage-mismatch", "--json") == 0
    assert json.loads(capsys.readouterr().out)["plan"]["leverage"] == 1.0


def test_a_champion_with_an_evolved_leverage_is_sized_at_it(fake, tmp_path, capsys, monkeypatch):
    """configs/perp_strategy.yaml on a file in the fetched format: `evolve` evolves each genome's leverage (and drift
    band); the champion records it in strategy.leverage and portfolio.leverage; `size` sizes it at that leverage
    without being told (targets = weight x equity x leverage / mid), and refuses another `--leverage` unless
    `--allow-leverage-mismatch`."""
    from pathlib import Path

    from genetic_sizer.data.synthetic import perp_market

    data, _ = perp_market(("BTC", "ETH", "SOL", "DOGE", "AVAX"), hours=24 * 30, seed=5).write(tmp_path / "hl.parquet")
    config = Path(__file__).resolve().parents[1] / "configs" / "perp_strategy.yaml"
    run = tmp_path / "run"
    small = ["evolution.population=12", "evolution.generations=3", "evolution.hall_of_fame=3"]
    args = ["evolve", "--config", str(config), "--set", f"data.path={data}", "--out", str(run), "--no-plots"]
    assert main([*args, *(x for s in small for x in ("--set", s))]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "perpetuals at an evolved leverage in [1, 5] (funding charged)" in out
    champ = C.load(run / "champion.json")
    lev = champ.strategy["leverage"]
    assert champ.market == "perp" and 1.0 <= lev <= 5.0 and lev != 2.0 and champ.leverage == lev
    assert champ.strategy["genes"]["leverage"] == [1.0, 5.0]
    assert f"leverage {lev:.4g}x; evolved: threshold [0.0, 0.1], leverage [1.0, 5.0]" in out
    assert f"champion account (perpetuals at leverage {lev:g}, in sample)" in out

    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    assert _size(fake, run / "champion.json", "--json", "--threshold", "none") == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert plan["leverage"] == lev and plan["account_value"] == 10_000.0
    decimals = {u["name"]: u["szDecimals"] for u in UNIVERSE}
    traded = [c for c in plan["coins"] if c["action"] == "trade"]
    assert traded
    for c in traded:  # weight x equity x the evolved leverage / mid, rounded toward zero
        want = champ.weight_of(c["coin"]) * 10_000.0 * lev / c["mid"]
        assert abs(c["target"]) <= abs(want) + 1e-12 and abs(want - c["target"]) < 10.0 ** -decimals[c["coin"]]
    assert fake.exchange_requests == []
    assert _size(fake, run / "champion.json", "--leverage", "2") == 2
    assert (
        f"--leverage 2 differs from the leverage {lev:g} this perp champion was evolved at" in capsys.readouterr().err
    )
    assert _size(fake, run / "champion.json", "--leverage", "2", "--allow-leverage-mismatch", "--json") == 0
    assert json.loads(capsys.readouterr().out)["plan"]["leverage"] == 2.0


def test_every_alone_runs_the_champions_calendar_period_and_threshold_none_trades_every_pass(
    fake, tmp_path, capsys, monkeypatch
):
    """A monthly champion with a band: `--every` alone makes the loop's period the calendar month (the pass ids and
    the journal say so); `--threshold none` drops the band, so the pass trades to target (rule `rebalance`)."""
    champ = write_champion(
        tmp_path / "c.json", {"BTC": 0.5, "ETH": 0.5}, strategy={"rebalance": "M", "threshold": 0.05}
    )
    fake.set_position("BTC", 0.0875)
    fake.set_position("ETH", 1.58333)
    monkeypatch.setenv("HL_SECRET_KEY", AGENT_KEY)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    journal = tmp_path / "m.jsonl"
    args = ["--every", "--max-passes", "1", "--journal", str(journal), "--execute"]
    assert _size(fake, champ, *args, "--threshold", "none") == 0
    out = capsys.readouterr().out
    assert "rule: rebalance (no drift band: every pass trades to target)" in out
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    start = next(r for r in records if r["event"] == "start")
    assert start["period"] == "M" and start["strategy"] == {
        "rebalance": "M",
        "calendar": "M",
        "drift_band": None,
        "leverage": 1.0,
    }
    (end,) = [r for r in records if r["event"] == "pass_end"]
    assert end["status"] == "complete" and end["period"].startswith("M@") and end["period"].endswith("-01T00:00:00Z")
    # back to 0.5 / 0.5: BTC sold down to 0.08333; ETH bought 1.6666 - 1.58333 rounded to its 4 decimals
    assert fake.position("BTC") == 0.08333 and fake.position("ETH") == pytest.approx(1.58333 + 0.0832, abs=1e-12)
    assert len(fake.order_requests) == 2  # the reduction (BTC), then the increase (ETH)

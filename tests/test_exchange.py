"""genetic_sizer.exchange.client against the fake Hyperliquid server (tests/fake_hyperliquid.py), through the real
SDK."""

from __future__ import annotations

import json
import math
import random
import socket
import subprocess
import sys
import time

import pytest

from genetic_sizer.errors import ConfigError, ExchangeError, RetryableExchangeError
from genetic_sizer.exchange.client import (
    MAINNET_API_URL,
    NETWORKS,
    TESTNET_API_URL,
    HyperliquidClient,
    is_mainnet,
    resolve_base_url,
)
from genetic_sizer.exchange.credentials import (
    Credentials,
    account_address,
    create_keystore,
    load_credentials,
    load_wallet,
)
from genetic_sizer.exchange.rounding import limit_price, round_price, round_size
from genetic_sizer.exchange.wire import AccountState, AssetContext, AssetMeta, OrderIntent, OrderResult, make_cloid
from tests.fake_hyperliquid import (
    DUPLICATE_CLOID_ERROR,
    INVALID_PRICE_ERROR,
    INVALID_SIZE_ERROR,
    MIN_NOTIONAL_ERROR,
    FakeHyperliquid,
    make_candles,
    make_funding,
)

# Throwaway test keys -- never real ones.
AGENT_KEY = "0x" + "11" * 32  # the API wallet that signs
MAIN_KEY = "0x" + "22" * 32  # the main account it trades for (only its address is used)
STRANGER_KEY = "0x" + "33" * 32  # a wallet nobody authorized


def _address(key: str) -> str:
    from eth_account import Account

    return Account.from_key(key).address


AGENT = _address(AGENT_KEY)
MAIN = _address(MAIN_KEY)
STRANGER = _address(STRANGER_KEY)
T0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000  # an hour boundary (ms)
HOUR = 3_600_000

UNIVERSE = [
    {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
    {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
    {"name": "SOL", "szDecimals": 2, "maxLeverage": 20},
    {"name": "DOGE", "szDecimals": 0, "maxLeverage": 10},
    {"name": "OLD", "szDecimals": 1, "maxLeverage": 3, "isDelisted": True},
]
MIDS = {"BTC": 60000.0, "ETH": 3000.0, "SOL": 150.0, "DOGE": 0.15, "OLD": 1.0}


def _creds(key: str = AGENT_KEY, account: str = MAIN) -> Credentials:
    from eth_account import Account

    return Credentials(wallet=Account.from_key(key), account_address=account)


@pytest.fixture
def fake():
    with FakeHyperliquid(universe=UNIVERSE, mids=MIDS, account_address=MAIN, agents=[AGENT]) as server:
        yield server


@pytest.fixture
def client(fake):
    with HyperliquidClient(
        fake.url, credentials=_creds(), timeout=1.0, max_retries=3, backoff=0.01, clock_tolerance=0.05
    ) as c:
        yield c


def _wait_for(condition, seconds: float = 5.0) -> None:
    """Poll until ``condition()`` (the fake's request threads finish on their own schedule)."""
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.02)


def _intent(coin: str, is_buy: bool, size: float, *, slippage: float = 0.01, tag: str = "t") -> OrderIntent:
    sz_dec = next(a["szDecimals"] for a in UNIVERSE if a["name"] == coin)
    return OrderIntent(
        coin=coin,
        is_buy=is_buy,
        size=round_size(size, sz_dec),
        limit_px=limit_price(MIDS[coin], is_buy, slippage, sz_dec),
        cloid=make_cloid(f"{tag}:{coin}:{time.time_ns()}"),
    )


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------------------------------- networks
def test_network_urls_match_the_sdk():
    from hyperliquid.utils import constants

    assert MAINNET_API_URL == constants.MAINNET_API_URL
    assert TESTNET_API_URL == constants.TESTNET_API_URL
    assert NETWORKS == {"mainnet": constants.MAINNET_API_URL, "testnet": constants.TESTNET_API_URL}


def test_resolve_base_url_and_is_mainnet():
    assert resolve_base_url() == TESTNET_API_URL
    assert resolve_base_url("mainnet") == MAINNET_API_URL
    assert resolve_base_url("mainnet", "http://127.0.0.1:9/") == "http://127.0.0.1:9"
    with pytest.raises(ConfigError, match="'mainnett'"):
        resolve_base_url("mainnett")
    with pytest.raises(ConfigError, match="base_url"):
        resolve_base_url(base_url="ftp://x")
    assert is_mainnet(MAINNET_API_URL)
    assert not is_mainnet(TESTNET_API_URL)
    assert not is_mainnet(MAINNET_API_URL + "/")
    assert not is_mainnet("http://127.0.0.1:1234")


def test_import_does_not_load_the_sdk():
    code = (
        "import sys, genetic_sizer.exchange.client; print(any(m.split('.')[0] == 'hyperliquid' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------- rounding
@pytest.mark.parametrize(
    ("size", "sz_decimals", "expected"),
    [
        (1.23456789, 0, 1.0),
        (1.23456789, 1, 1.2),
        (1.23456789, 2, 1.23),
        (1.23456789, 3, 1.234),
        (1.23456789, 4, 1.2345),
        (1.23456789, 5, 1.23456),
        (0.3, 1, 0.3),  # float artifacts must not floor 0.3 to 0.2
        (0.1 + 0.2, 1, 0.3),
        (0.7 * 3, 1, 2.1),  # 2.0999999999999996
        (2.675, 2, 2.67),  # toward zero, never up
        (1.005, 2, 1.0),
        (0.00999, 2, 0.0),
        (-1.99, 0, -1.0),
        (-0.0567, 3, -0.056),
        (12345.0, 0, 12345.0),
        (0.0, 3, 0.0),
    ],
)
def test_round_size(size, sz_decimals, expected):
    out = round_size(size, sz_decimals)
    assert out == expected
    assert abs(out) <= abs(size) + 1e-12


@pytest.mark.parametrize(
    ("px", "sz_decimals", "expected"),
    [
        # 5 significant figures, then at most 6 - szDecimals decimals (hand-computed)
        (1234.5678, 0, 1234.6),
        (1234.5678, 5, 1234.6),
        (3.14159265, 0, 3.1416),
        (3.14159265, 1, 3.1416),
        (3.14159265, 2, 3.1416),
        (3.14159265, 3, 3.142),
        (3.14159265, 4, 3.14),
        (3.14159265, 5, 3.1),
        (0.0123456789, 0, 0.012346),
        (0.0123456789, 1, 0.01235),
        (0.0123456789, 2, 0.0123),
        (0.0123456789, 3, 0.012),
        (0.0123456789, 4, 0.01),
        (0.99999, 0, 0.99999),
        (0.99999, 2, 1.0),
        (12345.67, 0, 12346.0),
        (123456.78, 3, 123457.0),  # integers are valid beyond 5 significant figures
        (99999.5, 0, 100000.0),
        (60000.0, 5, 60000.0),
        (0.15, 0, 0.15),
    ],
)
def test_round_price(px, sz_decimals, expected):
    assert round_price(px, sz_decimals) == expected


def test_round_price_rejects_prices_that_vanish_or_are_invalid():
    with pytest.raises(ValueError, match="rounds to zero"):
        round_price(0.0123456789, 5)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            round_price(bad, 2)
    with pytest.raises(ValueError, match="sz_decimals"):
        round_size(1.0, 7)


@pytest.mark.parametrize(
    ("mid", "is_buy", "slippage", "sz_decimals", "expected"),
    [
        (100.0, True, 0.01, 2, 101.0),
        (100.0, False, 0.01, 2, 99.0),
        (60000.0, True, 0.05, 5, 63000.0),
        (0.15, True, 0.05, 0, 0.1575),
        (1234.5678, False, 0.003, 1, 1230.9),  # 1230.8640966 -> 5 significant figures
        (3000.0, True, 0.0, 4, 3000.0),
    ],
)
def test_limit_price(mid, is_buy, slippage, sz_decimals, expected):
    assert limit_price(mid, is_buy, slippage, sz_decimals) == expected


def test_limit_price_validates_inputs():
    with pytest.raises(ValueError, match="slippage"):
        limit_price(100.0, True, 1.5, 2)
    with pytest.raises(ValueError, match="mid"):
        limit_price(math.nan, True, 0.01, 2)


# ---------------------------------------------------------------------------------------------- records
def test_make_cloid_and_order_intent_validation():
    a = make_cloid("run-1:BTC")
    assert a == make_cloid("run-1:BTC") != make_cloid("run-1:ETH")
    assert a.startswith("0x") and len(a) == 34 and int(a, 16) >= 0
    assert OrderIntent("BTC", True, 0.1, 60000.0).cloid != OrderIntent("BTC", True, 0.1, 60000.0).cloid
    assert OrderIntent("BTC", True, 0.1, 60000.0, cloid=a.upper().replace("0X", "0x")).cloid == a
    with pytest.raises(ValueError, match="size"):
        OrderIntent("BTC", True, 0.0, 60000.0)
    with pytest.raises(ValueError, match="limit_px"):
        OrderIntent("BTC", True, 1.0, math.inf)
    with pytest.raises(ValueError, match="cloid"):
        OrderIntent("BTC", True, 1.0, 1.0, cloid="0x1234")
    with pytest.raises(ValueError, match="coin"):
        OrderIntent("", True, 1.0, 1.0)


# ---------------------------------------------------------------------------------------------- reads
def test_meta_mids_and_account(fake, client):
    meta = client.meta()
    assert list(meta) == ["BTC", "ETH", "SOL", "DOGE", "OLD"]
    assert meta["ETH"] == AssetMeta(name="ETH", index=1, sz_decimals=4, max_leverage=25, delisted=False)
    assert meta["OLD"].delisted and meta["OLD"].index == 4
    mids = client.mids()
    assert mids == MIDS and all(isinstance(v, float) for v in mids.values())

    fake.account_value = 12345.5
    fake.withdrawable = 1000.25
    fake.set_position("BTC", 0.5, 58000.0)
    fake.set_position("SOL", -12.25, 160.0)
    fake.set_position("ETH", 0.0)
    state = client.account()
    assert state == AccountState(MAIN, 12345.5, 1000.25, {"BTC": 0.5, "SOL": -12.25})
    # The client asked about the main account, not the API wallet that signs.
    assert fake.info_requests[-1] == {"type": "clearinghouseState", "user": MAIN, "dex": ""}
    # Another address is an empty account.
    other = client.account(AGENT)
    assert other.account_value == 0.0 and other.positions == {}


def test_the_client_is_built_with_two_requests(fake, client):
    client.meta()
    assert [r["type"] for r in fake.info_requests] == ["meta", "spotMeta"]


def test_account_needs_an_address_without_credentials(fake):
    with HyperliquidClient(fake.url) as c, pytest.raises(ConfigError, match="credentials"):
        c.account()


@pytest.mark.parametrize(
    ("kind", "payload", "field"),
    [
        ("allMids", {"BTC": "NaN"}, "allMids.BTC"),
        ("allMids", {"BTC": "abc"}, "allMids.BTC"),
        ("clearinghouseState", {"assetPositions": [], "withdrawable": "1.0"}, "marginSummary"),
        (
            "clearinghouseState",
            {"assetPositions": [], "marginSummary": {"accountValue": "inf"}, "withdrawable": "1"},
            "accountValue",
        ),
        (
            "clearinghouseState",
            {
                "assetPositions": [{"position": {"coin": "BTC"}}],
                "marginSummary": {"accountValue": "1"},
                "withdrawable": "1",
            },
            "szi",
        ),
    ],
)
def test_malformed_answers_name_the_field(fake, client, kind, payload, field):
    client.meta()
    fake.info_overrides[kind] = payload
    call = client.mids if kind == "allMids" else client.account
    with pytest.raises(ExchangeError, match=field) as err:
        call()
    assert not isinstance(err.value, RetryableExchangeError)


def test_malformed_meta_names_the_field(fake):
    fake.info_overrides["meta"] = {"universe": [{"name": "BTC", "maxLeverage": 40}]}
    with HyperliquidClient(fake.url) as c, pytest.raises(ExchangeError, match=r"universe\[0\]\.szDecimals"):
        c.meta()


def test_candles_page_across_the_limit(fake, client):
    n = 237
    rows = make_candles("SOL", "1h", T0, n)
    fake.candles[("SOL", "1h")] = rows
    fake.candle_limit = 50
    progress = []
    out = client.candles("SOL", "1h", T0, T0 + (n - 1) * HOUR + 30 * 60_000, on_page=lambda p, k: progress.append(k))
    assert [c["t"] for c in out] == [r["t"] for r in rows]  # every candle exactly once, ascending
    assert out[5] == {
        "t": rows[5]["t"],
        "T": rows[5]["T"],
        "n": rows[5]["n"],
        "o": float(rows[5]["o"]),
        "h": float(rows[5]["h"]),
        "l": float(rows[5]["l"]),
        "c": float(rows[5]["c"]),
        "v": float(rows[5]["v"]),
        "s": "SOL",
        "i": "1h",
    }
    snaps = [r for r in fake.info_requests if r["type"] == "candleSnapshot"]
    assert math.ceil(n / 50) <= len(snaps) <= math.ceil(n / 50) + 1
    assert progress[-1] == n and progress == sorted(progress)


def test_candles_page_forward_when_the_server_keeps_the_oldest(fake, client):
    rows = make_candles("ETH", "15m", T0, 101)
    fake.candles[("ETH", "15m")] = rows
    fake.candle_limit = 10
    fake.candle_keep = "oldest"
    out = client.candles("ETH", "15m", T0, rows[-1]["t"])
    assert [c["t"] for c in out] == [r["t"] for r in rows]


def test_candles_sub_range_and_wide_range(fake, client):
    rows = make_candles("BTC", "1h", T0, 120)
    fake.candles[("BTC", "1h")] = rows
    fake.candle_limit = 7
    sub = client.candles("BTC", "1h", rows[10]["t"], rows[100]["t"])
    assert [c["t"] for c in sub] == [r["t"] for r in rows[10:101]]
    wide = client.candles("BTC", "1h", T0 - 1000 * HOUR, T0 + 1000 * HOUR)
    assert [c["t"] for c in wide] == [r["t"] for r in rows]
    assert client.candles("BTC", "1h", T0 - 10 * HOUR, T0 - HOUR) == []
    with pytest.raises(ExchangeError, match="unknown coin"):
        client.candles("NOPE", "1h", T0, T0 + HOUR)


def test_funding_pages_forward(fake, client):
    rows = make_funding("ETH", T0, 1234)
    fake.funding["ETH"] = rows
    out = client.funding("ETH", T0, T0 + 2000 * HOUR)
    assert [r["time"] for r in out] == [r["time"] for r in rows]
    assert out[7] == {
        "coin": "ETH",
        "fundingRate": float(rows[7]["fundingRate"]),
        "premium": float(rows[7]["premium"]),
        "time": rows[7]["time"],
    }
    pages = [r for r in fake.info_requests if r["type"] == "fundingHistory"]
    assert len(pages) == 4  # 500 + 500 + 234 + one empty answer
    mid = client.funding("ETH", rows[600]["time"], rows[700]["time"])
    assert [r["time"] for r in mid] == [r["time"] for r in rows[600:701]]


# ---------------------------------------------------------------------------------------------- orders
def test_place_orders_happy_path_signed_by_the_api_wallet(fake, client):
    intents = [_intent("BTC", True, 0.0123456), _intent("ETH", False, 1.5), _intent("DOGE", True, 1000.7)]
    results = client.place_orders(intents)
    assert [r.status for r in results] == ["filled"] * 3
    assert results[0] == OrderResult("BTC", intents[0].cloid, "filled", 0.01234, 60000.0, results[0].oid, None)
    assert results[1].filled_size == 1.5 and results[1].avg_px == 3000.0
    assert results[2].filled_size == 1000.0
    assert len({r.oid for r in results}) == 3

    (record,) = fake.exchange_requests
    assert record.signer == AGENT.lower() and record.account == MAIN.lower()
    wires = record.action["orders"]
    assert [w["c"] for w in wires] == [i.cloid for i in intents]
    assert all(w["t"] == {"limit": {"tif": "Ioc"}} for w in wires)
    assert wires[0]["a"] == 0 and wires[0]["b"] is True and wires[0]["s"] == "0.01234" and wires[0]["p"] == "60600"
    assert wires[1]["a"] == 1 and wires[1]["b"] is False and wires[1]["p"] == "2970"

    state = client.account()
    assert state.positions == {"BTC": 0.01234, "ETH": -1.5, "DOGE": 1000.0}


def test_the_main_account_can_sign_for_itself(fake):
    with HyperliquidClient(fake.url, credentials=_creds(MAIN_KEY, MAIN), backoff=0.01) as c:
        (result,) = c.place_orders([_intent("SOL", True, 1.0)])
    assert result.status == "filled"
    assert fake.exchange_requests[0].signer == MAIN.lower()


def test_an_unregistered_api_wallet_is_refused(fake):
    with HyperliquidClient(fake.url, credentials=_creds(STRANGER_KEY, MAIN), backoff=0.01) as c:
        with pytest.raises(ExchangeError, match="does not exist") as err:
            c.place_orders([_intent("SOL", True, 1.0)])
    assert not isinstance(err.value, RetryableExchangeError)
    assert fake.orders == [] and fake.position("SOL") == 0.0
    # Registered for that account, the same wallet may trade it.
    fake.agents.add(STRANGER.lower())
    with HyperliquidClient(fake.url, credentials=_creds(STRANGER_KEY, MAIN), backoff=0.01) as c:
        assert c.place_orders([_intent("SOL", True, 1.0)])[0].status == "filled"


def test_per_order_errors_are_rejections_not_exceptions(fake, client):
    fake.reject_coins["ETH"] = "Insufficient margin to place order."
    intents = [
        _intent("BTC", True, 0.01),
        _intent("ETH", True, 1.0),
        _intent("SOL", True, 0.05),  # $7.5 notional
        OrderIntent("BTC", True, 0.123456, 60600.0, cloid=make_cloid("too-precise")),
        OrderIntent("SOL", True, 1.0, 151.123, cloid=make_cloid("bad-price")),
        OrderIntent("OLD", True, 20.0, 1.0, cloid=make_cloid("delisted")),
    ]
    results = client.place_orders(intents)
    assert [r.status for r in results] == ["filled", "rejected", "rejected", "rejected", "rejected", "rejected"]
    assert results[1].error == "Insufficient margin to place order."
    assert results[2].error == MIN_NOTIONAL_ERROR
    assert results[3].error == INVALID_SIZE_ERROR
    assert results[4].error == INVALID_PRICE_ERROR
    assert "halted" in results[5].error
    assert all(r.filled_size == 0.0 and r.avg_px is None for r in results[1:])
    assert fake.position("ETH") == 0.0 and fake.position("BTC") == 0.01


def test_sizes_the_sdk_cannot_send_are_rejected_locally(fake, client):
    bad = OrderIntent("BTC", True, 0.0123456789, 60600.0, cloid=make_cloid("nine-decimals"))
    good = _intent("BTC", True, 0.01)
    results = client.place_orders([bad, good])
    assert results[0].status == "rejected" and "round" in results[0].error
    assert results[1].status == "filled"
    assert [w["c"] for w in fake.exchange_requests[0].action["orders"]] == [good.cloid]


def test_whole_request_error_raises(fake, client):
    fake.exchange_error = "Too many requests in the last minute."
    with pytest.raises(ExchangeError, match="Too many requests") as err:
        client.place_orders([_intent("BTC", True, 0.01)])
    assert not isinstance(err.value, RetryableExchangeError)
    assert fake.orders == [] and len(fake.exchange_requests) == 1  # not retried


def test_timeout_after_execution_does_not_duplicate(fake):
    intents = [_intent("BTC", True, 0.01), _intent("ETH", False, 0.5), _intent("SOL", True, 2.0)]
    fake.reject_coins["SOL"] = "Insufficient margin to place order."
    fake.timeout_next_exchange(delay=1.2)
    with HyperliquidClient(
        fake.url, credentials=_creds(), timeout=0.4, max_retries=3, backoff=0.01, clock_tolerance=0.1
    ) as c:
        results = c.place_orders(intents)
    assert [r.status for r in results] == ["filled", "filled", "rejected"]
    assert results[0].avg_px == 60000.0 and results[0].filled_size == 0.01 and results[0].oid is not None
    assert results[1].avg_px == 3000.0 and results[1].filled_size == 0.5
    assert results[2].error == "Insufficient margin to place order."
    # The timed-out request went through; only the order the exchange never accepted was sent again.
    for intent in intents[:2]:
        assert fake.orders_for(intent.cloid) == 1
    assert fake.duplicate_cloids == 0
    assert len(fake.order_requests) == 2
    assert [w["c"] for w in fake.order_requests[1].action["orders"]] == [intents[2].cloid]
    assert fake.position("BTC") == 0.01 and fake.position("ETH") == -0.5
    assert {r["type"] for r in fake.info_requests} >= {"orderStatus", "userFills"}


def test_placing_the_same_intents_again_reports_the_first_orders(fake, client):
    intents = [_intent("BTC", True, 0.01), _intent("ETH", True, 0.5)]
    first = client.place_orders(intents)
    again = client.place_orders(intents)
    assert again == first
    assert fake.duplicate_cloids == 2  # the exchange refused them ...
    assert len(fake.orders) == 2 and fake.position("BTC") == 0.01  # ... so nothing was bought twice


def test_http_500_then_success(fake, client):
    fake.fail_next(500)
    intents = [_intent("BTC", True, 0.01), _intent("SOL", False, 3.0)]
    results = client.place_orders(intents)
    assert [r.status for r in results] == ["filled", "filled"]
    assert all(fake.orders_for(i.cloid) == 1 for i in intents)
    assert len(fake.order_requests) == 1 and fake.duplicate_cloids == 0
    assert sum(r["type"] == "orderStatus" for r in fake.info_requests) == 2  # looked up before resending


def test_persistent_5xx_gives_up_with_retryable_error(fake):
    sleeps = []
    fake.fail_next(502, count=100)
    intent = _intent("BTC", True, 0.01)
    with (
        HyperliquidClient(
            fake.url,
            credentials=_creds(),
            timeout=1.0,
            max_retries=2,
            backoff=0.01,
            clock_tolerance=0.5,
            sleep=sleeps.append,
        ) as c,
        pytest.raises(RetryableExchangeError, match="HTTP 502") as err,
    ):
        c.place_orders([intent])
    # 3 sends (1 + 2 retries), each followed by a wait until the request's expiry (send + timeout + tolerance)
    # plus the tolerance again, before looking it up: 1.0 + 2 x 0.5 = 2 s after the send (no real sleep here).
    assert len(sleeps) == 3 and all(1.8 < s <= 2.0 for s in sleeps)
    assert err.value.results == {} and err.value.unknown == []
    assert "never executed, not sent again: BTC" in str(err.value)
    assert fake.orders == [] and sum(r["type"] == "orderStatus" for r in fake.info_requests) == 3


def test_order_requests_carry_an_expiry(fake, client):
    before = int(time.time() * 1000)
    client.place_orders([_intent("BTC", True, 0.01)])
    after = int(time.time() * 1000)
    (record,) = fake.order_requests
    # send time + timeout (1 s) + clock tolerance (0.05 s); the fake verified the signature over it
    assert before + 1050 <= record.expires_after <= after + 1050
    assert record.signer == AGENT.lower()


def test_lookups_that_trail_the_exchange_never_make_a_second_order(fake):
    """The request is processed but its answer is lost (a timeout after processing); the exchange does NOT
    refuse a reused cloid, and orderStatus / userFills trail the exchange by a second. The client must not
    take "not found" for "not executed": the positions moved, so it waits and looks again."""
    fake.refuse_duplicate_cloids = False
    fake.info_lag = 1.0
    fake.timeout_next_exchange(delay=1.5)
    intents = [_intent("BTC", True, 0.01), _intent("ETH", False, 0.5)]
    with HyperliquidClient(
        fake.url, credentials=_creds(), timeout=0.4, max_retries=6, backoff=0.2, clock_tolerance=0.1
    ) as c:
        results = c.place_orders(intents)
    assert [(r.status, r.filled_size) for r in results] == [("filled", 0.01), ("filled", 0.5)]
    assert [r.oid for r in results] == [fake.orders_by_cloid[i.cloid].oid for i in intents]
    assert [fake.orders_for(i.cloid) for i in intents] == [1, 1]  # each executed exactly once
    assert len(fake.order_requests) == 1 and fake.duplicate_cloids == 0
    assert fake.position("BTC") == 0.01 and fake.position("ETH") == -0.5


def test_fills_settle_an_order_that_order_status_does_not_know(fake):
    """orderStatus never finds the order, but the user's fills carry its cloid: it was executed."""
    fake.refuse_duplicate_cloids = False
    fake.info_overrides["orderStatus"] = {"status": "unknownOid"}
    fake.timeout_next_exchange(delay=1.0)
    intent = _intent("SOL", True, 2.0)
    with HyperliquidClient(
        fake.url, credentials=_creds(), timeout=0.3, max_retries=3, backoff=0.01, clock_tolerance=0.1
    ) as c:
        (result,) = c.place_orders([intent])
    assert (result.status, result.filled_size, result.avg_px) == ("filled", 2.0, 150.0)
    assert result.oid == fake.orders_by_cloid[intent.cloid].oid
    assert fake.orders_for(intent.cloid) == 1 and len(fake.order_requests) == 1
    assert fake.position("SOL") == 2.0


def test_a_request_still_in_flight_is_expired_before_the_resend(fake):
    """The request reaches the exchange only after the client gave up on it. The client waits until it has
    expired before it looks up and resends; the exchange then refuses the late one, so only one order exists
    (the fake does not refuse the reused cloid)."""
    fake.refuse_duplicate_cloids = False
    fake.hold_next_exchange(1.2)
    intent = _intent("ETH", True, 0.5)
    with HyperliquidClient(
        fake.url, credentials=_creds(), timeout=0.3, max_retries=3, backoff=0.01, clock_tolerance=0.1
    ) as c:
        (result,) = c.place_orders([intent])
    assert (result.status, result.filled_size) == ("filled", 0.5)
    _wait_for(lambda: len(fake.order_requests) == 2 and all(r.response for r in fake.order_requests))
    resend, late = sorted(fake.order_requests, key=lambda r: r.held)
    assert late.held == 1.2 and late.response["status"] == "err" and "expired" in late.response["response"]
    assert resend.response["status"] == "ok" and resend.nonce > late.nonce
    assert fake.orders_for(intent.cloid) == 1 and fake.position("ETH") == 0.5


def test_an_order_never_reported_whose_position_moved_is_not_resent(fake):
    """Lookups never show the order (they trail by a minute) but the position moved: the outcome is unknown,
    so nothing is sent again and the error says so."""
    fake.refuse_duplicate_cloids = False
    fake.info_lag = 60.0
    fake.timeout_next_exchange(delay=1.0)
    intents = [_intent("BTC", True, 0.01), _intent("DOGE", True, 100.0)]
    fake.reject_coins["DOGE"] = "Insufficient margin to place order."
    with (
        HyperliquidClient(
            fake.url, credentials=_creds(), timeout=0.3, max_retries=2, backoff=0.01, clock_tolerance=0.05
        ) as c,
        pytest.raises(RetryableExchangeError, match="outcome UNKNOWN for BTC") as err,
    ):
        c.place_orders(intents)
    assert err.value.unknown == [intents[0].cloid] and err.value.results == {}
    assert fake.orders_for(intents[0].cloid) == 1 and fake.position("BTC") == 0.01
    # DOGE's position did not move (it was rejected), but nothing is sent while another order is in doubt
    assert "never executed, not sent again: DOGE" in str(err.value)
    assert len(fake.order_requests) == 1 and fake.duplicate_cloids == 0


def test_a_clock_off_the_exchanges_is_refused_before_sending(fake, client):
    client.meta()
    state = {
        "assetPositions": [],
        "marginSummary": {"accountValue": "1000.0"},
        "withdrawable": "1000.0",
        "time": int(time.time() * 1000) - 30_000,  # the exchange's clock: 30 s behind this machine's
    }
    fake.info_overrides["clearinghouseState"] = state
    with pytest.raises(ConfigError, match=r"clock is 30\.\d s ahead of the exchange's") as err:
        client.place_orders([_intent("BTC", True, 0.01)])
    assert "NTP" in str(err.value)
    assert fake.exchange_requests == []


def test_http_429_is_transient(fake, client):
    client.meta()
    fake.fail_next(429, path="/info", body='{"code": 429, "msg": "rate limited"}')
    assert client.mids() == MIDS
    fake.fail_next(429, path="/exchange", body='{"code": 429, "msg": "rate limited"}')
    intent = _intent("BTC", True, 0.01)
    (result,) = client.place_orders([intent])
    assert result.status == "filled" and fake.orders_for(intent.cloid) == 1


@pytest.mark.parametrize(
    "body",
    [
        '{"error": "Too many requests"}',  # JSON without code/msg: the SDK indexed err["code"] -> KeyError
        '["rate limited"]',  # JSON, not an object: the SDK called err.get -> AttributeError
        '"slow down"',
        "<html><body>429 Too Many Requests</body></html>",
        "",
    ],
)
def test_any_http_429_body_is_retried_with_backoff(fake, body):
    """Item 10: whatever an HTTP 429 carries, it is a rate limit: reads and orders are retried after the
    Retry-After it asks for, and nothing is sent twice."""
    waits: list[float] = []
    with HyperliquidClient(
        fake.url,
        credentials=_creds(),
        timeout=1.0,
        max_retries=3,
        backoff=0.01,
        clock_tolerance=0.05,
        sleep=waits.append,
    ) as c:
        c.meta()
        fake.fail_next(429, path="/info", body=body, count=2, headers={"Retry-After": "3"})
        assert c.mids() == MIDS
        assert waits == [3.0, 3.0]  # backoff 0.01 s, raised to the Retry-After of each 429
        fake.fail_next(429, path="/exchange", body=body, headers={"Retry-After": "2"})
        intent = _intent("BTC", True, 0.01)
        (result,) = c.place_orders([intent])
        assert result.status == "filled" and fake.orders_for(intent.cloid) == 1
        assert waits[2] >= 2.0  # the order request waited at least its Retry-After
        fake.fail_next(429, path="/info", body=body, count=10)
        with pytest.raises(RetryableExchangeError, match="HTTP 429") as err:
            c.mids()  # a rate limit that outlasts the retries is a transient error, not a KeyError
    assert "gave up after 4 attempts" in str(err.value)


def test_a_4xx_with_an_odd_body_is_a_final_exchange_error(fake, client):
    client.meta()
    fake.fail_next(400, path="/info", body='{"error": "bad request"}')
    with pytest.raises(ExchangeError, match="HTTP 400") as err:
        client.mids()
    assert not isinstance(err.value, RetryableExchangeError)


def test_set_leverage_sets_the_margin_mode_and_an_integer_leverage_per_coin(fake, client):
    """Item 12 (exchange side): ``updateLeverage`` signed by the agent for the main account; idempotent, so a lost
    answer and an HTTP 429 are retried; a refusal names the coin; a non-integer never reaches the wire."""
    assert fake.leverage_of("BTC") == {"type": "cross", "value": 20}  # the fake's default: cross, 20x
    client.set_leverage("BTC", 3)
    assert fake.leverage_of("BTC") == {"type": "cross", "value": 3}
    (request,) = fake.exchange_requests
    assert request.action == {"type": "updateLeverage", "asset": 0, "isCross": True, "leverage": 3}
    assert request.account == MAIN.lower() and request.signer == AGENT.lower()
    assert request.expires_after is not None  # it cannot execute long after it was sent
    fake.fault_actions = None  # the scheduled faults below hit the next action, whatever it is
    fake.drop_next()  # processed, answer lost: set again (the same value), no harm
    fake.fail_next(429, body='{"error": "slow down"}')
    client.set_leverage("ETH", 2, cross=False)
    assert fake.leverage_of("ETH") == {"type": "isolated", "value": 2}
    assert [r.action["type"] for r in fake.exchange_requests].count("updateLeverage") == 3
    with pytest.raises(ExchangeError, match=r"refused cross margin at 30x for ETH: Invalid leverage value 30"):
        client.set_leverage("ETH", 30)  # ETH's maxLeverage is 25
    fake.leverage_refusals["SOL"] = "Cannot switch leverage type with open isolated position."
    with pytest.raises(ExchangeError, match="SOL: Cannot switch leverage type"):
        client.set_leverage("SOL", 2)
    for bad in (2.5, 0, True):
        with pytest.raises(ConfigError, match="leverage must be an integer >= 1"):
            client.set_leverage("BTC", bad)
    with pytest.raises(ExchangeError, match="unknown coin 'XRP'"):
        client.set_leverage("XRP", 2)
    assert fake.leverage_of("BTC") == {"type": "cross", "value": 3}


def test_http_4xx_is_not_retried(fake, client):
    client.meta()
    fake.fail_next(400, path="/info", body='{"code": 400, "msg": "bad request"}')
    with pytest.raises(ExchangeError, match="HTTP 400") as err:
        client.mids()
    assert not isinstance(err.value, RetryableExchangeError)


def test_reads_retry_transport_failures(fake, client):
    fake.fail_next(503, count=2, path="/info")
    assert client.mids() == MIDS


def test_unreachable_server_raises_retryable_error():
    with HyperliquidClient(_closed_port_url(), timeout=0.5, max_retries=2, backoff=0.01) as c:
        with pytest.raises(RetryableExchangeError, match="gave up after 3 attempts"):
            c.mids()


def test_server_gone_before_placing_orders(fake):
    c = HyperliquidClient(
        fake.url, credentials=_creds(), timeout=0.5, max_retries=2, backoff=0.01, clock_tolerance=0.05
    )
    c.meta()
    fake.stop()
    with pytest.raises(RetryableExchangeError) as err:
        c.place_orders([_intent("BTC", True, 0.01)])
    assert err.value.results == {}
    c.close()


def test_place_orders_argument_checks(fake, client):
    assert client.place_orders([]) == []
    cloid = make_cloid("same")
    twins = [OrderIntent("BTC", True, 0.01, 60600.0, cloid=cloid), OrderIntent("ETH", True, 0.01, 3030.0, cloid=cloid)]
    with pytest.raises(ValueError, match="cloid"):
        client.place_orders(twins)
    with pytest.raises(ExchangeError, match="unknown coin 'NOPE'"):
        client.place_orders([OrderIntent("NOPE", True, 1.0, 1.0)])
    with HyperliquidClient(fake.url) as anonymous, pytest.raises(ConfigError, match="credentials"):
        anonymous.place_orders([_intent("BTC", True, 0.01)])
    assert fake.exchange_requests == []


def test_fake_rejects_a_forged_signature(fake):
    import requests

    body = {
        "action": {"type": "order", "orders": [], "grouping": "na"},
        "nonce": 1,
        "signature": {"r": "0x" + "1" * 64, "s": "0x" + "2" * 64, "v": 27},
        "vaultAddress": None,
    }
    answer = requests.post(fake.url + "/exchange", json=body, timeout=5).json()
    assert answer["status"] == "err"


def test_fake_duplicate_cloid_message_is_what_the_client_recognizes():
    assert "duplicate" in DUPLICATE_CLOID_ERROR.lower()


# ---------------------------------------------------------------------------------------------- credentials
def _assert_secret_free(exc: BaseException, *secrets: str) -> None:
    texts = [str(exc), repr(exc), str(exc.__cause__ or ""), str(exc.args)]
    for secret in secrets:
        bare = secret.removeprefix("0x")
        for text in texts:
            assert bare not in text


def test_load_wallet_from_env():
    wallet = load_wallet(env={"HL_SECRET_KEY": AGENT_KEY})
    assert wallet.address == AGENT
    assert load_wallet(env={"HL_SECRET_KEY": AGENT_KEY[2:]}).address == AGENT  # without 0x
    creds = load_credentials(env={"HL_SECRET_KEY": AGENT_KEY, "HL_ACCOUNT_ADDRESS": MAIN})
    assert creds.signer_address == AGENT and creds.account_address == MAIN and creds.is_agent
    assert not load_credentials(env={"HL_SECRET_KEY": MAIN_KEY}).is_agent
    for text in (repr(creds), str(creds)):
        assert AGENT_KEY[2:] not in text and AGENT in text and MAIN in text


def test_bad_or_missing_key_never_echoes_it():
    for bad in ("0x" + "11" * 31, "0x" + "zz" * 32, "11" * 33):
        with pytest.raises(ConfigError, match="HL_SECRET_KEY") as err:
            load_wallet(env={"HL_SECRET_KEY": bad})
        _assert_secret_free(err.value, bad)
        assert err.value.__suppress_context__
    with pytest.raises(ConfigError, match="no Hyperliquid signing key"):
        load_wallet(env={})
    with pytest.raises(ConfigError, match="HL_ACCOUNT_ADDRESS") as err:
        account_address(load_wallet(env={"HL_SECRET_KEY": AGENT_KEY}), env={"HL_ACCOUNT_ADDRESS": AGENT_KEY})
    _assert_secret_free(err.value, AGENT_KEY)


def test_load_wallet_from_keystore(tmp_path):
    path = create_keystore(tmp_path / "agent.json", AGENT_KEY, "correct horse", kdf="pbkdf2", iterations=2000)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert AGENT_KEY[2:] not in path.read_text()
    assert load_wallet(path, env={"HL_KEYSTORE_PASSWORD": "correct horse"}).address == AGENT
    # Password at the prompt when the environment has none.
    prompts = []
    wallet = load_wallet(str(path), env={}, password_prompt=lambda p: prompts.append(p) or "correct horse")
    assert wallet.address == AGENT and len(prompts) == 1 and "agent.json" in prompts[0]
    # The keystore from HL_KEYSTORE; the explicit argument wins over HL_SECRET_KEY.
    env = {"HL_KEYSTORE": str(path), "HL_KEYSTORE_PASSWORD": "correct horse"}
    assert load_wallet(env=env).address == AGENT
    assert load_wallet(path, env={**env, "HL_SECRET_KEY": MAIN_KEY}).address == AGENT
    with pytest.raises(ConfigError, match="already exists"):
        create_keystore(path, AGENT_KEY, "x", kdf="pbkdf2", iterations=2000)


def test_keystore_errors_never_echo_secrets(tmp_path):
    path = create_keystore(tmp_path / "k.json", AGENT_KEY, "s3cret-pw", kdf="pbkdf2", iterations=2000)
    with pytest.raises(ConfigError, match="wrong password") as err:
        load_wallet(path, env={"HL_KEYSTORE_PASSWORD": "not-the-password"})
    _assert_secret_free(err.value, AGENT_KEY, "not-the-password", "s3cret-pw")
    with pytest.raises(ConfigError, match="cannot read keystore"):
        load_wallet(tmp_path / "missing.json", env={})
    (tmp_path / "plain.json").write_text(json.dumps({"address": AGENT}))
    with pytest.raises(ConfigError, match="not an encrypted key file"):
        load_wallet(tmp_path / "plain.json", env={"HL_KEYSTORE_PASSWORD": "x"})
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_wallet(tmp_path / "junk.json", env={"HL_KEYSTORE_PASSWORD": "x"})


def test_client_errors_and_repr_never_contain_the_key(fake):
    creds = _creds()
    c = HyperliquidClient(fake.url, credentials=creds, timeout=0.5, max_retries=1, backoff=0.01)
    fake.exchange_error = "nope"
    with pytest.raises(ExchangeError) as err:
        c.place_orders([_intent("BTC", True, 0.01)])
    _assert_secret_free(err.value, AGENT_KEY)
    assert AGENT_KEY[2:] not in repr(c) and AGENT_KEY[2:] not in repr(creds)
    c.close()


def test_client_config_validation():
    with pytest.raises(ConfigError, match="timeout"):
        HyperliquidClient("http://127.0.0.1:1", timeout=0)
    with pytest.raises(ConfigError, match="max_retries"):
        HyperliquidClient("http://127.0.0.1:1", max_retries=-1)
    with pytest.raises(ConfigError, match="clock_tolerance"):
        HyperliquidClient("http://127.0.0.1:1", clock_tolerance=0)
    with pytest.raises(ConfigError, match="base_url"):
        HyperliquidClient("127.0.0.1:1")
    assert HyperliquidClient(MAINNET_API_URL).is_mainnet
    assert not HyperliquidClient("http://127.0.0.1:1").is_mainnet


def test_a_malformed_lookup_after_a_lost_request_keeps_what_is_known(fake):
    """After a lost request the lookups answer garbage: the error says which orders are in doubt and carries
    the outcomes already known."""
    fake.timeout_next_exchange(delay=1.0)
    fake.info_overrides["userFills"] = {"not": "a list"}
    fake.info_overrides["orderStatus"] = {"status": "order", "order": {"status": "filled"}}
    intent = _intent("BTC", True, 0.01)
    with (
        HyperliquidClient(
            fake.url, credentials=_creds(), timeout=0.3, max_retries=2, backoff=0.01, clock_tolerance=0.05
        ) as c,
        pytest.raises(ExchangeError, match=r"orderStatus\.order\.order is missing") as err,
    ):
        c.place_orders([intent])
    assert not isinstance(err.value, RetryableExchangeError)
    assert err.value.unknown == [intent.cloid] and err.value.results == {}
    assert fake.orders_for(intent.cloid) == 1 and len(fake.order_requests) == 1


# ---------------------------------------------------------------------------------------------- faults (service)
def test_a_429_retry_after_is_waited_and_backoff_is_jittered(fake):
    sleeps = []
    with HyperliquidClient(
        fake.url, credentials=_creds(), max_retries=4, backoff=0.4, sleep=sleeps.append, rng=random.Random(3)
    ) as c:
        c.meta()
        fake.fail_next(429, path="/info", body='{"code": 429, "msg": "rate limited"}', headers={"Retry-After": "3"})
        fake.fail_next(429, path="/info", body="too many requests")  # plain text, no header
        fake.fail_next(503, count=2, path="/info")
        assert c.mids() == MIDS
    # 1st wait: the Retry-After (3 s) beats the jittered 0.2-0.4 s; then 0.4-0.8 s and 0.8-1.6 s ... of backoff
    assert sleeps[0] == 3.0
    assert 0.4 <= sleeps[1] <= 0.8 and 0.8 <= sleeps[2] <= 1.6 and 1.6 <= sleeps[3] <= 3.2
    again = []
    with HyperliquidClient(fake.url, max_retries=4, backoff=0.4, sleep=again.append, rng=random.Random(3)) as c:
        c.meta()
        fake.fail_next(429, path="/info", body='{"code": 429, "msg": "rate limited"}', headers={"Retry-After": "3"})
        fake.fail_next(429, path="/info", body="too many requests")
        fake.fail_next(503, count=2, path="/info")
        c.mids()
    assert again == sleeps  # the jitter is reproducible from the rng


def test_a_retry_after_given_as_a_date_and_on_the_error_that_gives_up(fake):
    from email.utils import formatdate

    sleeps = []
    with HyperliquidClient(fake.url, max_retries=1, backoff=0.01, sleep=sleeps.append) as c:
        c.meta()
        when = formatdate(time.time() + 30, usegmt=True)
        fake.fail_next(429, count=2, path="/info", body='{"code": 429, "msg": "x"}', headers={"Retry-After": when})
        with pytest.raises(RetryableExchangeError, match="HTTP 429") as err:
            c.mids()
    assert 27 <= sleeps[0] <= 30
    assert 27 <= err.value.retry_after <= 30  # the loop waits at least this long before trying the pass again


def test_a_connection_dropped_after_the_exchange_processed_the_orders_does_not_duplicate(fake):
    fake.refuse_duplicate_cloids = False
    fake.drop_next()
    intents = [_intent("BTC", True, 0.01), _intent("SOL", False, 2.0)]
    with HyperliquidClient(
        fake.url, credentials=_creds(), timeout=0.5, max_retries=3, backoff=0.01, clock_tolerance=0.05
    ) as c:
        results = c.place_orders(intents)
    assert [(r.status, r.filled_size) for r in results] == [("filled", 0.01), ("filled", 2.0)]
    assert fake.order_requests[0].dropped and len(fake.order_requests) == 1
    assert [fake.orders_for(i.cloid) for i in intents] == [1, 1] and fake.duplicate_cloids == 0


def test_every_request_is_announced_with_its_expiry_before_it_leaves(fake):
    announced = []
    fake.fail_next(502)  # the first request is lost (not processed): looked up, then sent again
    intent = _intent("ETH", True, 0.5)
    with HyperliquidClient(
        fake.url, credentials=_creds(), timeout=0.3, max_retries=3, backoff=0.01, clock_tolerance=0.05
    ) as c:

        def on_request(expires_ms, batch):
            announced.append((expires_ms, [i.cloid for i in batch], len(fake.order_requests)))

        (result,) = c.place_orders([intent], on_request=on_request)
        assert c.last_expires_ms == announced[-1][0]
    assert result.status == "filled" and len(announced) == 2
    assert [a[1] for a in announced] == [[intent.cloid]] * 2
    assert [a[2] for a in announced] == [0, 0]  # announced before the fake saw anything
    assert fake.order_requests[0].expires_after == announced[1][0]


def test_an_announcement_that_fails_stops_the_request(fake, client):
    def refuse(expires_ms, batch):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        client.place_orders([_intent("BTC", True, 0.01)], on_request=refuse)
    assert fake.exchange_requests == []


def test_lookup_orders_reports_partial_fills_and_ignores_unknown_cloids(fake, client):
    fake.partial_fill(0.4, coin="SOL")
    sol, btc, ghost = _intent("SOL", True, 10.0), _intent("BTC", True, 0.01), _intent("ETH", True, 1.0)
    placed = client.place_orders([sol, btc])
    assert [(r.status, r.filled_size) for r in placed] == [("filled", 4.0), ("filled", 0.01)]
    found = client.lookup_orders([sol, btc, ghost])
    assert set(found) == {sol.cloid, btc.cloid}
    assert (found[sol.cloid].status, found[sol.cloid].filled_size, found[sol.cloid].avg_px) == ("filled", 4.0, 150.0)
    assert found[btc.cloid].filled_size == 0.01
    assert fake.orders_by_cloid[sol.cloid].status == "canceled"  # the IOC's unfilled rest
    assert client.lookup_orders([]) == {}


def test_asset_contexts_give_mark_and_oracle_prices(fake, client):
    fake.marks["BTC"] = 60_100.0
    fake.oracles["ETH"] = 2_990.0
    ctx = client.asset_contexts()
    assert ctx["BTC"] == AssetContext("BTC", 60_100.0, 60_000.0, 60_000.0)
    assert ctx["ETH"] == AssetContext("ETH", 3_000.0, 2_990.0, 3_000.0)
    assert set(ctx) == {a["name"] for a in UNIVERSE}
    fake.info_overrides["metaAndAssetCtxs"] = [{"universe": UNIVERSE}, [{"markPx": "1"}] * len(UNIVERSE)]
    with pytest.raises(ExchangeError, match=r"metaAndAssetCtxs\.BTC\.oraclePx is missing"):
        client.asset_contexts()

"""The live loop's pure decisions (genetic_sizer.live.guards): wall-clock periods, pass and order identities, sanity
guards and the kill switch's limits, each against hand-computed values."""

from __future__ import annotations

import calendar
import math
from types import SimpleNamespace

import pytest

from genetic_sizer.errors import ConfigError
from genetic_sizer.exchange.wire import AssetContext, AssetInfo
from genetic_sizer.live.guards import (
    CLOID_MARK,
    Guards,
    Limits,
    Period,
    champion_id,
    data_age_problem,
    gross_problem,
    limit_breach,
    order_cloid,
    pass_id,
    period_of_champion,
    price_problems,
    trader_of,
)
from genetic_sizer.live.sizer import Plan, plan_orders
from genetic_sizer.live.status import EXPECTATION_METRICS, realized_metrics

T = calendar.timegm((2025, 5, 14, 13, 37, 12))  # Wednesday 2025-05-14 13:37:12 UTC


# ---- periods ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("1h", (2025, 5, 14, 13, 0, 0), (2025, 5, 14, 14, 0, 0)),
        ("30s", (2025, 5, 14, 13, 37, 0), (2025, 5, 14, 13, 37, 30)),
        ("5m", (2025, 5, 14, 13, 35, 0), (2025, 5, 14, 13, 40, 0)),
        ("1d", (2025, 5, 14, 0, 0, 0), (2025, 5, 15, 0, 0, 0)),
        ("D", (2025, 5, 14, 0, 0, 0), (2025, 5, 15, 0, 0, 0)),
        ("W", (2025, 5, 12, 0, 0, 0), (2025, 5, 19, 0, 0, 0)),  # Monday to Monday
        ("M", (2025, 5, 1, 0, 0, 0), (2025, 6, 1, 0, 0, 0)),
        ("Q", (2025, 4, 1, 0, 0, 0), (2025, 7, 1, 0, 0, 0)),
    ],
)
def test_a_period_is_the_wall_clock_bucket_holding_the_time(text, start, end):
    period = Period.parse(text)
    k = period.index(T)
    assert period.start(k) == calendar.timegm(start) and period.end(k) == calendar.timegm(end)
    assert period.index(period.start(k)) == k and period.index(period.end(k) - 1e-3) == k
    assert period.index(period.end(k)) == k + 1
    assert period.label(k).endswith(f"@{start[0]:04d}-{start[1]:02d}-{start[2]:02d}T{start[3]:02d}:{start[4]:02d}:00Z")


def test_calendar_periods_cross_years_and_fixed_ones_have_integer_indexes():
    december = calendar.timegm((2024, 12, 31, 23, 0, 0))
    m, q = Period.parse("M"), Period.parse("Q")
    assert m.index(december) + 1 == m.index(calendar.timegm((2025, 1, 1, 0, 0, 0)))
    assert m.start(m.index(december) + 1) == calendar.timegm((2025, 1, 1, 0, 0, 0))
    assert q.start(q.index(december)) == calendar.timegm((2024, 10, 1, 0, 0, 0))
    assert Period.parse("1h").index(T) == math.floor(T / 3600)
    assert Period.parse("1.5h").seconds == 5400
    for bad in ("", "0h", "1y", "soon", "-1m"):
        with pytest.raises(ConfigError, match=r"--period must be a period like 30s, 15m, 1h, 1d, W, M or Q"):
            Period.parse(bad)


@pytest.mark.parametrize(
    ("rebalance", "ppy", "spec", "seconds"),
    [
        ("D", 8760, "1d", 86400),
        ("W", 365, "W", 7 * 86400),
        ("M", 365, "M", None),
        ("Q", 252, "Q", None),
        ("once", 365, "1d", 86400),
        (24, 8760, "86400s", 86400),  # 24 hourly bars
        (3, 365, "259200s", 3 * 86400),  # 3 daily bars
        ("5", 252, "432000s", 5 * 86400),  # business days count as days
    ],
)
def test_a_single_pass_period_defaults_to_the_champions_rebalance(rebalance, ppy, spec, seconds):
    champ = SimpleNamespace(portfolio={"rebalance": rebalance}, data={"periods_per_year": ppy})
    assert period_of_champion(champ) == Period(spec, seconds)


# ---- identities -------------------------------------------------------------------------------------
def test_cloids_derive_from_account_champion_period_coin_leg_and_attempt():
    champ = champion_id(["BTC", "ETH"], [0.5, 0.5])
    assert champ == champion_id(("BTC", "ETH"), [0.5, 0.5]) != champion_id(["BTC", "ETH"], [0.6, 0.4])
    period = Period.parse("1h")
    pid = pass_id(champ, period, period.index(T))
    assert pid == f"{champ}/1h@2025-05-14T13:00:00Z"
    base = ("0x" + "ab" * 20, pid, "BTC", "increase", 0)
    me = "0badc0de"
    cloid = order_cloid(*base, trader=me)
    # the address's case is irrelevant
    assert cloid == order_cloid(base[0].upper().replace("0X", "0x"), *base[1:], trader=me)
    assert len(cloid) == 34 and cloid.startswith("0x")
    variants = [
        ("0x" + "cd" * 20, pid, "BTC", "increase", 0),
        (base[0], pass_id(champ, period, period.index(T) + 1), "BTC", "increase", 0),
        (base[0], pid, "ETH", "increase", 0),
        (base[0], pid, "BTC", "open", 0),
        (base[0], pid, "BTC", "increase", 1),
    ]
    assert len({cloid, *(order_cloid(*v, trader=me) for v in variants)}) == 6
    # the trader id is readable from the cloid (another trader on the account is recognized on the exchange), and a
    # cloid of another trader differs; any other cloid (a random one, the SDK's, a person's) carries no trader id
    assert cloid[:6] == "0x" + CLOID_MARK and trader_of(cloid) == me
    other = order_cloid(*base, trader="12345678")
    assert other != cloid and trader_of(other) == "12345678"
    assert trader_of("0x" + "ab" * 16) is None and trader_of(None) is None
    with pytest.raises(ConfigError, match="trader must be 8 lower-case hex digits"):
        order_cloid(*base, trader="XYZ")


# ---- guards -----------------------------------------------------------------------------------------
def test_price_problems_compare_the_mid_with_mark_and_oracle():
    ctx = {"BTC": AssetContext("BTC", 60_000.0, 61_500.0), "ETH": AssetContext("ETH", 3_000.0, 3_000.0)}
    mids = {"BTC": 60_300.0, "ETH": 3_100.0, "SOL": 150.0}
    # BTC: 0.5% from the mark, 1.95% from the oracle; ETH 3.33% from both; SOL has no context
    assert price_problems(["BTC"], mids, ctx, 0.02) == []
    assert price_problems(["BTC"], mids, ctx, 0.01) == [
        "BTC: mid 60300 is 1.95% from the oracle price 61500 (limit 1.00%)"
    ]
    problems = price_problems(["ETH", "SOL", "ETH"], mids, ctx, 0.02)
    assert problems == [
        "ETH: mid 3100 is 3.33% from the mark price 3000 (limit 2.00%)",
        "ETH: mid 3100 is 3.33% from the oracle price 3000 (limit 2.00%)",
        "SOL: no mark/oracle price to check the mid 150.0 against",
    ]
    assert price_problems(["ETH"], mids, ctx, None) == []


def test_data_age_problem():
    assert data_age_problem(1_000_000, 1_005.0, 10) is None  # 5 s old
    assert data_age_problem(1_000_000, 1_012.5, 10) == "account data is 12.5 s old (limit 10 s)"
    assert "in the future" in data_age_problem(1_020_000, 1_000.0, 10)
    assert data_age_problem(None, 1e9, 10) is None


META = {"BTC": AssetInfo("BTC", 5, 40), "SOL": AssetInfo("SOL", 2, 20)}


def test_gross_problem_catches_a_plan_beyond_leverage_times_equity():
    plan = plan_orders({"BTC": 0.5, "SOL": 0.5}, 10_000, {}, {"BTC": 60_000.0, "SOL": 150.0}, META)
    assert gross_problem(plan, META) is None  # targets round toward zero: within budget
    # the same targets against an equity that is $1 short: over by more than one size step of each coin
    # (BTC 0.00001 x 60,000 = $0.60, SOL 0.01 x 150 = $1.50: $2.10 of slack)
    short = Plan(9_997.0, plan.leverage, plan.coins, plan.orders)
    assert gross_problem(short, META) == (
        "the plan's gross notional $9,999.30 exceeds leverage x equity $9,997.00 by more than rounding ($2.10)"
    )
    assert gross_problem(Plan(9_998.0, plan.leverage, plan.coins, plan.orders), META) is None
    # positions kept on request do not count
    kept = plan_orders({"SOL": 1.0}, 1_000, {"BTC": 1.0}, {"BTC": 60_000.0, "SOL": 150.0}, META, _keep())
    assert gross_problem(kept, META) is None


def _keep():
    from genetic_sizer.live.sizer import SizerSettings

    return SizerSettings(close_unlisted=False)


def test_guard_and_limit_settings_are_validated():
    with pytest.raises(ConfigError, match="max_mid_deviation must be < 1"):
        Guards(max_mid_deviation=1.5)
    with pytest.raises(ConfigError, match="max_data_age must be a number > 0"):
        Guards(max_data_age=0)
    with pytest.raises(ConfigError, match="max_drawdown must be a number > 0"):
        Limits(max_drawdown=-0.1)
    with pytest.raises(ConfigError, match="max_daily_loss must be < 1"):
        Limits(max_daily_loss=1.0)
    assert not Limits().active and Limits(max_drawdown=0.2).active


# ---- limits -----------------------------------------------------------------------------------------
def test_limit_breach_from_the_high_water_mark_and_the_days_reference():
    limits = Limits(max_drawdown=0.2, max_daily_loss=0.05)
    assert limit_breach(limits, 8_001.0, 10_000.0, 8_200.0) is None  # -19.99%, -2.4%
    assert limit_breach(limits, 8_000.0, 10_000.0, 8_200.0) == (
        "drawdown 20.00% from the equity high-water mark $10,000.00 (equity $8,000.00) reached --max-drawdown 0.2"
    )
    assert limit_breach(limits, 9_400.0, 10_000.0, 10_000.0) == (
        "loss 6.00% since the day's reference equity $10,000.00 (equity $9,400.00) reached --max-daily-loss 0.05"
    )
    assert limit_breach(limits, 12_000.0, 10_000.0, None) is None  # a new high: no drawdown
    assert limit_breach(Limits(), 1.0, 10_000.0, 10_000.0) is None  # no limits, no kill
    assert limit_breach(limits, 5_000.0, None, None) is None  # the first value is its own high-water mark


def test_realized_metrics_by_hand():
    day = 86400.0
    # equity 100 -> 110 -> 99 -> 121 at one-day steps: returns +10%, -10%, +22.22%
    series = [(0.0, 100.0), (day, 110.0), (2 * day, 99.0), (3 * day, 121.0)]
    m = realized_metrics(series)
    rets = [0.1, -0.1, 121 / 99 - 1]
    mean = sum(rets) / 3
    std = math.sqrt(sum((r - mean) ** 2 for r in rets) / 2)
    assert m["days"] == 3.0 and m["points"] == 4
    assert m["total_return"] == pytest.approx(0.21)
    assert m["cagr"] == pytest.approx(1.21 ** (365 / 3) - 1)
    assert m["max_drawdown"] == pytest.approx(99 / 110 - 1)
    assert m["annualized_volatility"] == pytest.approx(std * math.sqrt(365))
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(365))
    empty = realized_metrics([])
    assert empty["points"] == 0 and all(empty[k] is None for k in EXPECTATION_METRICS)
    assert realized_metrics([(0.0, 100.0)])["total_return"] == 0.0

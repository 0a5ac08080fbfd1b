"""The pure sizer and the rounding rules, each against hand-computed expected orders."""

from __future__ import annotations

import pytest

from genetic_sizer.errors import SizingError
from genetic_sizer.exchange.rounding import limit_price, round_price, round_size
from genetic_sizer.exchange.wire import AssetInfo
from genetic_sizer.live.sizer import SizerSettings, plan_orders

META = {
    "BTC": AssetInfo("BTC", 5, 40),
    "ETH": AssetInfo("ETH", 4, 25),
    "SOL": AssetInfo("SOL", 2, 20),
    "DOGE": AssetInfo("DOGE", 0, 10),
    "OLD": AssetInfo("OLD", 1, 3, delisted=True),
}
MIDS = {"BTC": 100_000.0, "ETH": 4_000.0, "SOL": 200.0, "DOGE": 0.2, "OLD": 1.0}


def orders(plan):
    return [(o.coin, o.side, o.size, o.reduce_only, o.leg) for o in plan.orders]


def coin(plan, name):
    return next(c for c in plan.coins if c.coin == name)


# ---- rounding ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "decimals", "expected"),
    [
        (0.123456789, 5, 0.12345),
        (0.3, 1, 0.3),  # no 0.29999 artifacts
        (2.9999999, 2, 2.99),
        (-1.239, 2, -1.23),  # toward zero for shorts too
        (1234.9, 0, 1234.0),
        (0.00000999, 5, 0.0),
        (0.6 * 1234 * 3 / 4000, 4, 0.5553),  # 0.55529999... is float noise below the tick, not 0.5552
        (0.55529, 4, 0.5552),  # a real shortfall still rounds down
    ],
)
def test_round_size_toward_zero(size, decimals, expected):
    assert round_size(size, decimals) == expected


@pytest.mark.parametrize(
    ("px", "decimals", "expected"),
    [
        (1234.5678, 0, 1234.6),  # 5 significant figures
        (1234.5678, 4, 1234.6),
        (0.0123456789, 0, 0.012346),  # 5 sig figs, 6 decimals allowed
        (0.0123456789, 2, 0.0123),  # only 6 - 2 = 4 decimals
        (123456.7, 0, 123457.0),  # integers are valid whatever their digits
        (99.999999, 1, 100.0),
        (3.14159, 5, 3.1),  # 6 - 5 = 1 decimal
    ],
)
def test_round_price(px, decimals, expected):
    assert round_price(px, decimals) == expected


def test_a_price_that_rounds_to_zero_is_refused():
    with pytest.raises(ValueError, match="rounds to zero"):
        round_price(0.0123456789, 5)  # only 1 decimal allowed


def test_limit_price_is_slippage_away_from_mid():
    assert limit_price(2000.0, True, 0.01, 4) == 2020.0
    assert limit_price(2000.0, False, 0.01, 4) == 1980.0
    assert limit_price(0.123456, True, 0.005, 0) == 0.12407  # 0.12407328 -> 5 sig figs
    with pytest.raises(ValueError, match="slippage"):
        limit_price(1.0, True, 1.5, 0)


# ---- sizing -----------------------------------------------------------------------------------------
def test_fresh_account_targets():
    # 10,000 USD, leverage 1: BTC 0.5 -> 5,000 / 100,000 = 0.05; ETH 0.3 -> 3,000 / 4,000 = 0.75;
    # SOL 0.2 -> 2,000 / 200 = 10
    plan = plan_orders({"BTC": 0.5, "ETH": 0.3, "SOL": 0.2}, 10_000, {}, MIDS, META)
    assert orders(plan) == [
        ("BTC", "buy", 0.05, False, "increase"),
        ("ETH", "buy", 0.75, False, "increase"),
        ("SOL", "buy", 10.0, False, "increase"),
    ]
    assert [o.notional for o in plan.orders] == [5_000.0, 3_000.0, 2_000.0]
    # buys go out 1% above the mid (the default slippage), rounded to a valid price
    assert [o.limit_px for o in plan.orders] == [101_000.0, 4_040.0, 202.0]


def test_leverage_and_rounding_toward_zero():
    # 1,234 USD x 3 = 3,702; ETH 0.6 -> 2,221.2 / 4,000 = 0.5553; SOL 0.4 -> 1,480.8 / 200 = 7.404 -> 7.4
    plan = plan_orders({"ETH": 0.6, "SOL": 0.4}, 1_234, {}, MIDS, META, SizerSettings(leverage=3))
    assert orders(plan) == [("ETH", "buy", 0.5553, False, "increase"), ("SOL", "buy", 7.4, False, "increase")]
    assert coin(plan, "SOL").target == 7.4


def test_existing_longs_shorts_and_unlisted_coins():
    positions = {"BTC": 0.08, "ETH": -0.5, "DOGE": 30_000.0}
    # targets: BTC 0.3 x 10,000 = 3,000 -> 0.03 (reduce 0.05); ETH 0.7 -> 1.75 (flip from -0.5);
    # DOGE not in the champion -> close 30,000
    plan = plan_orders({"BTC": 0.3, "ETH": 0.7}, 10_000, positions, MIDS, META)
    assert orders(plan) == [
        ("DOGE", "sell", 30_000.0, True, "close"),  # $6,000 first: reductions before increases, largest first
        ("BTC", "sell", 0.05, True, "reduce"),  # $5,000
        ("ETH", "buy", 0.5, True, "close"),  # $2,000: the flip's reduce-only close...
        ("ETH", "buy", 1.75, False, "open"),  # ...then the opening leg
    ]
    assert coin(plan, "ETH").reason == "flip: close then open"
    kept = plan_orders({"BTC": 0.3, "ETH": 0.7}, 10_000, positions, MIDS, META, SizerSettings(close_unlisted=False))
    assert "DOGE" not in [o.coin for o in kept.orders]
    assert coin(kept, "DOGE").reason == "not in the champion; close_unlisted is false"


def test_tiny_weights_fall_under_the_minimum():
    # 100 USD: SOL 0.95 -> 95 / 200 = 0.475 ($95); ETH 0.05 -> $5 / 4,000 = 0.0012, bought at the limit
    # 4,000 x 1.01 = 4,040: 0.0012 x 4,040 = $4.848 < $10
    plan = plan_orders({"SOL": 0.95, "ETH": 0.05}, 100, {}, MIDS, META)
    assert orders(plan) == [("SOL", "buy", 0.47, False, "increase")]
    eth = coin(plan, "ETH")
    assert eth.action == "skip" and eth.reason == "order of $4.85 at its limit price 4040 is below the minimum of $10"
    custom = plan_orders({"SOL": 0.95, "ETH": 0.05}, 100, {}, MIDS, META, SizerSettings(min_trade_usd=100))
    assert custom.orders == [] and len(custom.skipped) == 2


def test_already_on_target_and_drift_band():
    positions = {"SOL": 25.0, "ETH": 0.62}
    # 10,000: SOL 0.5 -> 25 (on target); ETH 0.5 -> 1.25 (+0.63, weight 0.248 -> 0.5)
    plan = plan_orders({"SOL": 0.5, "ETH": 0.5}, 10_000, positions, MIDS, META)
    assert coin(plan, "SOL").reason == "already on target"
    assert orders(plan) == [("ETH", "buy", 0.63, False, "increase")]
    banded = plan_orders({"SOL": 0.5, "ETH": 0.5}, 10_000, positions, MIDS, META, SizerSettings(min_weight_change=0.3))
    assert banded.orders == []
    assert coin(banded, "ETH").reason == "weight change 0.2520 below min_weight_change 0.3"


def test_short_weights_and_max_notional_cap():
    # long/short champion, 20,000 USD: BTC -0.4 -> -8,000 capped at 5,000 -> -0.05; SOL 0.6 -> 12,000 -> cap 60
    plan = plan_orders({"BTC": -0.4, "SOL": 0.6}, 20_000, {}, MIDS, META, SizerSettings(max_notional_per_asset=5_000))
    assert orders(plan) == [("BTC", "sell", 0.05, False, "increase"), ("SOL", "buy", 25.0, False, "increase")]


def test_size_decimals_zero_to_five():
    meta = {f"C{d}": AssetInfo(f"C{d}", d, 50) for d in range(6)}
    mids = {f"C{d}": 3.0 for d in range(6)}
    # each gets 1,000 USD / 3 = 333.333...; rounded toward zero to d decimals
    plan = plan_orders({c: 1 / 6 for c in meta}, 6_000, {}, mids, meta)
    sizes = {o.coin: o.size for o in plan.orders}
    assert sizes == {"C0": 333.0, "C1": 333.3, "C2": 333.33, "C3": 333.333, "C4": 333.3333, "C5": 333.33333}


def test_the_minimum_is_checked_at_the_limit_price():
    # Closing 0.0026 ETH: $10.40 at the mid of 4,000, but a sell goes out at 4,000 x (1 - 0.05) = 3,800:
    # 0.0026 x 3,800 = $9.88, which the exchange rejects. A buy of the same size goes out at 4,200: $10.92.
    settings = SizerSettings(slippage=0.05)
    sell = plan_orders({"SOL": 1.0}, 1_000, {"ETH": 0.0026}, MIDS, META, settings)
    eth = coin(sell, "ETH")
    assert eth.action == "skip" and "ETH" not in [o.coin for o in sell.orders]
    assert eth.reason == "order of $9.88 at its limit price 3800 is below the minimum of $10"
    buy = plan_orders({"SOL": 1.0}, 1_000, {"ETH": -0.0026}, MIDS, META, settings)
    (order,) = [o for o in buy.orders if o.coin == "ETH"]
    assert (order.side, order.size, order.limit_px) == ("buy", 0.0026, 4_200.0)
    assert order.limit_notional == pytest.approx(10.92) and order.notional == pytest.approx(10.40)
    # with 1% slippage the sell's limit is 3,960: 0.0026 x 3,960 = $10.296, sent
    (order,) = [o for o in plan_orders({"SOL": 1.0}, 1_000, {"ETH": 0.0026}, MIDS, META).orders if o.coin == "ETH"]
    assert (order.side, order.limit_px) == ("sell", 3_960.0)


def test_a_flip_whose_close_is_under_the_minimum_at_its_limit_is_one_order():
    # SOL short 0.05 ($10.00 at the mid 200) flips long to 0.5 x 1,000 / 200 = 2.5. With 5% slippage the
    # close buys at 210: 0.05 x 210 = $10.50, so two legs. Long 0.05 flipping short: the close would sell at
    # 190: $9.50 < $10, so one order of 2.55 crosses zero instead.
    settings = SizerSettings(slippage=0.05)
    up = plan_orders({"SOL": 0.5, "ETH": 0.5}, 1_000, {"SOL": -0.05}, MIDS, META, settings)
    assert [o for o in orders(up) if o[0] == "SOL"] == [
        ("SOL", "buy", 0.05, True, "close"),
        ("SOL", "buy", 2.5, False, "open"),
    ]
    down = plan_orders({"SOL": -0.5, "ETH": 0.5}, 1_000, {"SOL": 0.05}, MIDS, META, settings)
    assert [o for o in orders(down) if o[0] == "SOL"] == [("SOL", "sell", 2.55, False, "open")]
    assert [o.limit_px for o in down.orders if o.coin == "SOL"] == [190.0]


@pytest.mark.parametrize("slippage", [0, -0.1, 0.51, 2, float("nan"), True, "0.01"])
def test_slippage_is_validated(slippage):
    with pytest.raises(SizingError, match=r"slippage must be a fraction of the mid in \(0, 0\.5\]"):
        SizerSettings(slippage=slippage)


def test_flip_with_a_close_under_the_minimum_is_one_order():
    # DOGE long 20 ($4) flips to short 0.5 x 1,000 = -500 / 0.2 = -2,500: one sell of 2,520, not reduce-only
    plan = plan_orders({"DOGE": -0.5, "SOL": 0.5}, 1_000, {"DOGE": 20.0}, MIDS, META)
    assert ("DOGE", "sell", 2520.0, False, "open") in orders(plan)


@pytest.mark.parametrize(
    ("weights", "settings", "message"),
    [
        ({"XRP": 1.0}, SizerSettings(), r"holds 'XRP', which the exchange does not list"),
        ({"OLD": 0.5, "SOL": 0.5}, SizerSettings(), r"'OLD', which is delisted"),
        ({"DOGE": 0.5, "SOL": 0.5}, SizerSettings(leverage=12), r"leverage 12 is above DOGE's maxLeverage 10"),
    ],
)
def test_errors_before_anything_is_planned(weights, settings, message):
    with pytest.raises(SizingError, match=message):
        plan_orders(weights, 10_000, {}, MIDS, META, settings)


def test_bad_inputs_and_settings():
    with pytest.raises(SizingError, match=r"account value is 0\.0"):
        plan_orders({"SOL": 1.0}, 0, {}, MIDS, META)
    with pytest.raises(SizingError, match="no valid mid price for 'SOL'"):
        plan_orders({"SOL": 1.0}, 100, {}, {}, META)
    with pytest.raises(SizingError, match=r"min_trade_usd must be >= the exchange's minimum order of \$10"):
        SizerSettings(min_trade_usd=5)
    with pytest.raises(SizingError, match="leverage must be a positive number"):
        SizerSettings(leverage=0)
    with pytest.raises(SizingError, match="weight of SOL must be finite"):
        plan_orders({"SOL": float("nan")}, 100, {}, MIDS, META)


def test_plan_serializes():
    plan = plan_orders({"SOL": 1.0}, 1_000, {"ETH": 0.01}, MIDS, META)
    d = plan.to_dict()
    assert d["orders"][0]["coin"] == "ETH" and d["orders"][0]["reduce_only"] is True  # close first ($40)
    assert [c["coin"] for c in d["coins"]] == ["ETH", "SOL"]


def test_weights_that_break_the_champion_constraints_are_refused():
    """The validation hook: a champion's recorded constraints (max_assets, min_position, groups, exposure) are
    checked before anything is planned."""
    from genetic_sizer.evolution.constraints import Constraints

    cons = Constraints.create(
        ["BTC", "ETH", "SOL", "DOGE"], "longshort", max_assets=3, min_position=0.05, net_exposure=[0.0, 0.5]
    )
    ok = {"BTC": 0.5, "ETH": -0.25, "SOL": 0.25, "DOGE": 0.0}
    plan = plan_orders(ok, 10_000.0, {}, MIDS, META, constraints=cons)
    assert plan_orders(ok, 10_000.0, {}, MIDS, META).to_dict() == plan.to_dict()
    with pytest.raises(SizingError, match=r"break the champion's constraints: weight of 'DOGE' is 0.01, under min"):
        plan_orders({"BTC": 0.49, "ETH": -0.25, "SOL": 0.25, "DOGE": 0.01}, 10_000.0, {}, MIDS, META, constraints=cons)
    with pytest.raises(SizingError, match=r"holds 4 assets, more than max_assets 3"):
        plan_orders({"BTC": 0.4, "ETH": -0.2, "SOL": 0.2, "DOGE": 0.2}, 10_000.0, {}, MIDS, META, constraints=cons)
    with pytest.raises(SizingError, match=r"net exposure \(sum of w\) is 0.75, outside net_exposure \[0, 0.5\]"):
        plan_orders({"BTC": 0.75, "ETH": 0.125, "SOL": -0.125}, 10_000.0, {}, MIDS, META, constraints=cons)


# ---- the champion's strategy: a drift band for the whole book, calendar rebalances --------------------------
def test_a_drift_band_trades_the_whole_book_or_nothing():
    # 10,000 USD, target SOL 0.5 / ETH 0.5; SOL 26 at 200 = 5,200 (0.52), ETH 1.19 at 4,000 = 4,760 (0.476)
    positions = {"SOL": 26.0, "ETH": 1.19}
    weights = {"SOL": 0.5, "ETH": 0.5}
    hold = plan_orders(weights, 10_000, positions, MIDS, META, SizerSettings(drift_band=0.05))
    assert hold.rule == "hold" and hold.orders == []
    assert hold.rule_reason == "no coin drifted 0.05 or more from its target (largest: ETH 0.0240)"
    assert {c.coin: c.action for c in hold.coins} == {"SOL": "skip", "ETH": "skip"}
    assert coin(hold, "SOL").reason.startswith("held: no coin drifted 0.05")
    assert hold.to_dict()["rule"] == "hold"
    # a band of 0.024: ETH's drift reaches it (>=): the whole book trades back, SOL (0.02) too
    drift = plan_orders(weights, 10_000, positions, MIDS, META, SizerSettings(drift_band=0.024))
    assert drift.rule == "drift" and drift.rule_reason.startswith("ETH drifted 0.0240 from its target")
    assert orders(drift) == [("SOL", "sell", 1.0, True, "reduce"), ("ETH", "buy", 0.06, False, "increase")]
    assert plan_orders(weights, 10_000, positions, MIDS, META, SizerSettings(drift_band=0.0241)).rule == "hold"
    # the same orders as without a band (the rule only decides whether to trade)
    assert orders(drift) == orders(plan_orders(weights, 10_000, positions, MIDS, META))
    # a calendar rebalance that is due trades whatever the drift; no band: every pass trades (today's rule)
    due = plan_orders(weights, 10_000, positions, MIDS, META, SizerSettings(drift_band=0.05), rebalance_due=True)
    assert due.rule == "calendar" and orders(due) == orders(drift)
    plain = plan_orders(weights, 10_000, positions, MIDS, META)
    assert plain.rule == "rebalance" and orders(plain) == orders(drift)


def test_the_drift_band_counts_positions_the_champion_does_not_hold_and_leverage():
    # a 10% position in DOGE, which the champion does not hold, is a drift of 0.1 from its target 0
    positions = {"SOL": 25.0, "DOGE": 5_000.0}  # SOL on target (0.5 of 10,000); DOGE 1,000 USD
    weights = {"SOL": 0.5, "ETH": 0.5}
    # (ETH is 0.5 away from its target too: look at DOGE alone with the ETH target met)
    positions["ETH"] = 1.25
    plan = plan_orders(weights, 10_000, positions, MIDS, META, SizerSettings(drift_band=0.1))
    assert plan.rule == "drift" and "DOGE drifted 0.1000" in plan.rule_reason
    left = SizerSettings(drift_band=0.1, close_unlisted=False)  # a position left alone is not part of the book
    assert plan_orders(weights, 10_000, positions, MIDS, META, left).rule == "hold"
    # weights are measured against account value x leverage: at 2x, SOL 25 at 200 is a weight of 0.25 of 0.5
    lev = plan_orders(
        {"SOL": 0.5, "ETH": 0.5},
        10_000,
        {"SOL": 25.0, "ETH": 1.25},
        MIDS,
        META,
        SizerSettings(leverage=2, drift_band=0.25),
    )
    assert lev.rule == "drift" and "drifted 0.2500" in lev.rule_reason


@pytest.mark.parametrize("band", [-0.1, float("nan"), float("inf"), True, "5%"])
def test_a_bad_drift_band_is_refused(band):
    with pytest.raises(SizingError, match="drift_band must be a difference of weights >= 0"):
        SizerSettings(drift_band=band)

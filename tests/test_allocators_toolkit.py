"""Issue 26's allocators: risk parity, risk budgeting, Black-Litterman and market-cap weights, checked against hand
computations (risk contributions, the Black-Litterman posterior and its tangency portfolio, caps over their sum) and
against skfolio called directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.allocators.classical import CLASSICAL, fit_allocations
from genetic_sizer.allocators.toolkit import TOOLKIT, allocator_notes, fit_toolkit, market_cap_weights
from genetic_sizer.config import AllocatorsConfig, load_config
from genetic_sizer.config import robust as R
from genetic_sizer.data.loaders import load_default
from genetic_sizer.errors import ConfigError, DataError
from genetic_sizer.evolution.seeding import classical_allocations
from genetic_sizer.evolution.space import GenomeSpace

SYMS = ["AAPL", "JNJ", "KO", "XOM", "JPM"]


@pytest.fixture(scope="module")
def prices():
    return load_default(symbols=SYMS, start="2016-01-01", end="2019-12-31")


def _returns(prices) -> np.ndarray:
    return prices.close[1:] / prices.close[:-1] - 1.0


def _fit(prices, settings=None, names=TOOLKIT, hi=1.0):
    from skfolio.preprocessing import prices_to_returns

    n = prices.n_assets
    return fit_toolkit(prices, prices_to_returns(prices.to_frame()), np.zeros(n), np.full(n, hi), 1e-3, settings, names)


def _contributions(w, cov) -> np.ndarray:
    """Each asset's share of the portfolio variance, by hand: w_i (Sigma w)_i / w' Sigma w."""
    return w * (cov @ w) / (w @ cov @ w)


def test_risk_parity_contributions_are_equal_and_match_skfolio(prices):
    from skfolio.optimization import RiskBudgeting

    alloc, skipped, notes = _fit(prices, names=("risk_parity",))
    w = alloc["risk_parity"]
    rc = _contributions(w, np.cov(_returns(prices), rowvar=False))
    assert w.sum() == pytest.approx(1.0, abs=1e-9) and (w > 0).all()
    np.testing.assert_allclose(rc, 1.0 / len(SYMS), atol=1e-6)  # skfolio's default tolerances leave 5e-6
    direct = RiskBudgeting().fit(pd.DataFrame(_returns(prices), columns=SYMS)).weights_
    np.testing.assert_allclose(w, direct, atol=1e-4)
    assert notes == {"risk_parity": "equal risk contributions (variance)"} and skipped == {}


def test_risk_budgeting_meets_the_config_budgets(prices):
    cfg = load_config(None, ["allocators.budgets={AAPL: 4, KO: 2, default: 1}"])
    alloc, _, notes = _fit(prices, cfg.allocators, names=("risk_budgeting",))
    budgets = np.array([4, 1, 2, 1, 1]) / 9.0
    rc = _contributions(alloc["risk_budgeting"], np.cov(_returns(prices), rowvar=False))
    np.testing.assert_allclose(rc, budgets, atol=1e-6)
    assert notes["risk_budgeting"].startswith("risk budgets AAPL 0.4444, JNJ 0.1111, KO 0.2222")
    # without budgets: equal budgets, the risk parity portfolio (and the note says so)
    alloc, _, notes = _fit(prices, names=("risk_parity", "risk_budgeting"))
    np.testing.assert_array_equal(alloc["risk_budgeting"], alloc["risk_parity"])
    assert "risk parity" in notes["risk_budgeting"]


def _tangency(mu, cov) -> np.ndarray:
    w = np.linalg.solve(cov, mu)
    return w / w.sum()


def test_black_litterman_without_views_is_the_equilibrium_portfolio(prices, tmp_path):
    alloc, _, notes = _fit(prices, names=("black_litterman",))
    np.testing.assert_allclose(alloc["black_litterman"], np.full(5, 0.2), atol=1e-5)  # 1/N: tangency of d Sigma w_eq
    assert notes["black_litterman"].startswith("equilibrium from 1/N (no market-cap file")
    caps = _caps_file(tmp_path, [("2019-06-28", [1000, 350, 200, 300, 350])])
    alloc, _, notes = _fit(prices, AllocatorsConfig(market_caps=str(caps)), names=("black_litterman", "market_cap"))
    w_eq = np.array([1000, 350, 200, 300, 350]) / 2200
    np.testing.assert_allclose(alloc["market_cap"], w_eq, rtol=0, atol=1e-15)
    np.testing.assert_allclose(alloc["black_litterman"], w_eq, atol=1e-5)
    assert notes["black_litterman"].startswith("equilibrium from the market caps as of 2019-06-28")


def test_black_litterman_posterior_by_hand(prices):
    """Absolute and relative annual views with Idzorek confidences: the weights are the tangency portfolio of the
    posterior computed here with numpy (views divided by the bars per year), which is long-only for these views."""
    views = [{"view": "AAPL = 0.20", "confidence": 0.5}, {"view": "KO - XOM = 0.03", "confidence": 0.25}]
    settings = AllocatorsConfig(views=views, tau=0.05, risk_aversion=2.5)
    alloc, _, notes = _fit(prices, settings, names=("black_litterman",))
    r = _returns(prices)
    cov = np.cov(r, rowvar=False)
    tau, ppy = 0.05, prices.periods_per_year
    pi = 2.5 * cov @ np.full(5, 0.2)
    P = np.array([[1.0, 0, 0, 0, 0], [0, 0, 1.0, -1.0, 0]])
    q = np.array([0.20, 0.03]) / ppy
    alphas = 1 / np.array([0.5, 0.25]) - 1
    omega = np.diag(np.diag(tau * alphas[:, None] * P @ cov @ P.T))
    v = tau * cov @ P.T
    a = P @ v + omega
    mu = pi + v @ np.linalg.solve(a, q - P @ pi)
    post = cov + tau * cov - v @ np.linalg.solve(a, v.T)
    hand = _tangency(mu, post)
    assert (hand > 0.01).all()
    np.testing.assert_allclose(alloc["black_litterman"], hand, atol=1e-4)
    assert hand[0] > 0.2 and hand[2] > hand[3]  # the views move weight toward AAPL and from XOM to KO
    assert (
        notes["black_litterman"]
        == "equilibrium from 1/N (no market-cap file (allocators.market_caps)); 2 view(s), tau 0.05, risk aversion 2.5"
    )


def _caps_file(tmp_path, rows, name="caps.csv", symbols=SYMS):
    path = tmp_path / name
    pd.DataFrame([v for _, v in rows], index=[d for d, _ in rows], columns=symbols).rename_axis("Date").to_csv(path)
    return path


def test_market_caps_are_taken_as_of_the_window_end(prices, tmp_path):
    rows = [("2015-12-31", [1, 1, 1, 1, 1]), ("2019-11-29", [5, 3, 2, None, 1]), ("2020-01-31", [9, 9, 9, 9, 9])]
    path = _caps_file(tmp_path, rows)
    w, note = market_cap_weights(prices, AllocatorsConfig(market_caps=str(path)))
    # XOM's last cap on or before 2019-12-31 is 2015's 1 (forward filled); the 2020 row is after the window
    np.testing.assert_array_equal(w, np.array([5, 3, 2, 1, 1]) / 12)
    assert note == f"market caps as of 2019-11-29 from {path}"
    early = prices.bars(0, 20)  # ends in January 2016: only the 2015 row is known
    np.testing.assert_array_equal(market_cap_weights(early, AllocatorsConfig(market_caps=str(path)))[0], 0.2)
    late = _caps_file(tmp_path, [("2020-01-31", [1, 2, 3, 4, 5])], "late.csv")
    w, why = market_cap_weights(prices, AllocatorsConfig(market_caps=str(late)))
    assert w is None and why == f"{late} has no market cap of 'AAPL' on or before 2019-12-31 00:00"
    alloc, skipped, _ = _fit(prices, AllocatorsConfig(market_caps=str(late)), names=("market_cap",))
    assert alloc == {} and skipped == {"market_cap": why}


def test_bad_market_cap_files_and_settings_are_errors_naming_them(prices, tmp_path):
    missing = _caps_file(tmp_path, [("2019-01-31", [1, 2, 3, 4])], "four.csv", symbols=SYMS[:4])
    with pytest.raises(DataError, match=r"market caps: .*four.csv: no column for 'JPM'"):
        market_cap_weights(prices, AllocatorsConfig(market_caps=str(missing)))
    negative = _caps_file(tmp_path, [("2019-01-31", [1, 2, -3, 4, 5])], "neg.csv")
    with pytest.raises(DataError, match=r"the cap of 'KO' at 2019-01-31.* is -3, not a number > 0"):
        market_cap_weights(prices, AllocatorsConfig(market_caps=str(negative)))
    with pytest.raises(DataError, match="no such file"):
        _fit(prices, AllocatorsConfig(market_caps=str(tmp_path / "nope.csv")))
    with pytest.raises(ConfigError, match=r"allocators.views\[0\].view must be a view on the assets"):
        _fit(prices, AllocatorsConfig(views=["MSFT = 0.1"]))
    with pytest.raises(ConfigError, match=r"allocators.budgets.MSFT must be the budget of one of the assets"):
        _fit(prices, AllocatorsConfig(budgets={"MSFT": 1, "default": 1}))
    with pytest.raises(ConfigError, match=r"allocators.budgets has no budget for 'JNJ' and no default"):
        _fit(prices, AllocatorsConfig(budgets={"AAPL": 1}))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["allocators.views=[AAPL > 0.1]"], r"allocators.views\[0\].view must be a view 'SYMBOL = annual return'"),
        (["allocators.views=[AAPL - AAPL = 0.1]"], r"a relative view between two different assets"),
        (
            ["allocators.views=[{view: AAPL = 0.1, confidence: 0.5}, {view: KO = 0.1}]"],
            r"allocators.views\[1\].confidence must be a number in \[0, 1\]: give a confidence on every view or none",
        ),
        (["allocators.views=[{view: AAPL = 0.1, confidence: 1.5}]"], r"allocators.views\[0\].confidence must be in"),
        (["allocators.views=[AAPL = 0.1, AAPL=0.1]"], "allocators.views must be a list without duplicate views"),
        (["allocators.budgets={AAPL: 0}"], r"allocators.budgets.AAPL must be in \(0"),
        (["allocators.tau=0"], r"allocators.tau must be in \(0"),
        (["allocators.risk_aversion=-1"], r"allocators.risk_aversion must be in \(0"),
        (["allocators.market_caps=3"], "allocators.market_caps must be null or the path of a market-cap file"),
        (["allocators.colour=red"], "unknown key 'allocators.colour'"),
    ],
)
def test_allocators_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_allocators_section_round_trips_and_fingerprints():
    cfg = load_config(None, ["allocators.views=[{view: AAPL = 0.1, confidence: 0.5}]", "allocators.tau=0.1"])
    assert type(cfg).from_dict(cfg.to_dict()) == cfg
    assert cfg.sha256() != load_config(None).sha256()
    assert load_config(None, ["allocators.tau=0.05"]).sha256() == load_config(None).sha256()  # the default: no change


def test_the_config_names_every_allocator():
    """config cannot import the allocators (a lower layer): robust.CLASSICAL must list the same names, in order."""
    assert R.CLASSICAL == CLASSICAL
    assert set(TOOLKIT) <= set(CLASSICAL)
    cfg = load_config(None, ["robust.candidates=[hall_of_fame, risk_parity, black_litterman, market_cap]"])
    assert cfg.robust.candidates == ("hall_of_fame", "risk_parity", "black_litterman", "market_cap")
    assert load_config(None, ["robust.shrink_toward=risk_parity"]).robust.shrink_toward == "risk_parity"
    assert load_config(None).robust.candidates == R.DEFAULT_CANDIDATES  # opt-in: old configs keep their selection


def test_seeding_checks_the_new_allocators_against_the_space(prices, tmp_path):
    caps = _caps_file(tmp_path, [("2019-06-28", [1000, 350, 200, 300, 350])])
    cfg = load_config(None, [f"allocators.market_caps={caps}"])
    loose = GenomeSpace.create(prices.symbols)
    notes = {}
    alloc, skipped = classical_allocations(prices, loose, cfg, notes)
    assert list(alloc) == [n for n in CLASSICAL if n in alloc] and set(TOOLKIT) <= set(alloc)
    assert notes["market_cap"].startswith("market caps as of 2019-06-28")
    tight = GenomeSpace.create(prices.symbols, max_weight=0.35)  # AAPL's cap weight 0.45 breaks it: not clipped
    alloc, skipped = classical_allocations(prices, tight, cfg.allocators)
    assert "market_cap" not in alloc and "AAPL" in skipped["market_cap"]
    assert alloc["black_litterman"].max() <= 0.35 + 1e-9  # the optimizers are fitted with the bounds
    # no settings: the defaults (equal budgets, no views, no market-cap file)
    alloc, skipped = classical_allocations(prices, loose)
    assert skipped["market_cap"] == "no market-cap file (allocators.market_caps)"
    fitted, _ = fit_allocations(prices, loose.lower, loose.upper, 1e-3, names=("hrp", "risk_parity"))
    assert list(fitted) == ["hrp", "risk_parity"]
    assert allocator_notes(prices, None)["risk_budgeting"] == "equal budgets (allocators.budgets is null): risk parity"


def test_a_run_checks_the_allocators_section_before_it_evolves(prices, tmp_path):
    """A view or budget on an asset the data lacks, or a missing cap file, stops a run at its start (the genome space
    check), not after the evolution when the summary fits the allocators."""
    from genetic_sizer.evolution.loop import check_run

    check_run(load_config(None, ["allocators.views=[AAPL = 0.1]"]), prices)
    with pytest.raises(ConfigError, match=r"allocators.views\[1\].view must be a view on the assets .*MSFT - KO"):
        check_run(load_config(None, ["allocators.views=[AAPL = 0.1, MSFT - KO = 0.02]"]), prices)
    with pytest.raises(ConfigError, match=r"allocators.budgets.MSFT must be the budget of one of the assets"):
        check_run(load_config(None, ["allocators.budgets={MSFT: 2, default: 1}"]), prices)
    with pytest.raises(DataError, match=r"market caps: .*nope.csv: no such file"):
        check_run(load_config(None, [f"allocators.market_caps={tmp_path / 'nope.csv'}"]), prices)

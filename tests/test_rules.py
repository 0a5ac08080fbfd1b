"""The cheap rules (genetic_sizer.allocators.rules) against hand computations; long-only minimum variance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.allocators.classical import fit_allocations
from genetic_sizer.allocators.rules import RULES, equal_minvar_blend, simple_returns, volatility_timing
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError


def prices_of(returns: np.ndarray) -> Prices:
    close = np.vstack([np.ones((1, returns.shape[1])), np.cumprod(1.0 + returns, axis=0)])
    index = pd.date_range("2020-01-31", periods=len(close), freq="ME", tz="UTC")
    return Prices.from_frame(pd.DataFrame(close, index=index, columns=[f"S{i}" for i in range(returns.shape[1])]))


def uncorrelated(a: float = 0.01, b: float = 0.02, repeat: int = 6) -> np.ndarray:
    """Two zero-mean series with sample correlation exactly 0: variances 4a^2/3 and 4b^2/3 per block of 4."""
    block = np.array([[a, b], [-a, b], [a, -b], [-a, -b]])
    return np.tile(block, (repeat, 1))


def test_volatility_timing_is_inverse_variance_to_the_power_eta():
    r = np.array([[0.1, 0.2], [-0.1, -0.2]])  # sample variances (ddof=1): 0.02 and 0.08
    np.testing.assert_allclose(volatility_timing(r), [0.8, 0.2], rtol=1e-12)  # 50 : 12.5
    np.testing.assert_allclose(volatility_timing(r, eta=2.0), [2500 / 2656.25, 156.25 / 2656.25], rtol=1e-12)
    np.testing.assert_allclose(volatility_timing(r, eta=0.5), [2 / 3, 1 / 3], rtol=1e-12)  # inverse volatility
    np.testing.assert_allclose(volatility_timing(r, eta=0.0), [0.5, 0.5], rtol=1e-12)  # 1/N
    w = volatility_timing(np.array([[1e-8, 0.5], [-1e-8, -0.5]]), eta=8.0)  # no overflow for a large eta
    assert np.isfinite(w).all() and w[0] == pytest.approx(1.0)


def test_volatility_timing_refuses_bad_input():
    with pytest.raises(ConfigError, match="asset column 1 has zero variance"):
        volatility_timing(np.array([[0.1, 0.0], [-0.1, 0.0]]))
    with pytest.raises(ConfigError, match="eta must be a number >= 0"):
        volatility_timing(np.ones((3, 2)), eta=-1)
    with pytest.raises(ConfigError, match="n_bars >= 2"):
        volatility_timing(np.ones((1, 2)))


def test_blend_is_half_equal_half_min_variance():
    np.testing.assert_allclose(equal_minvar_blend([0.5, 0.5], [0.8, 0.2]), [0.65, 0.35], rtol=1e-12)
    np.testing.assert_allclose(equal_minvar_blend([0.5, 0.5], [0.8, 0.2], mix=0.25), [0.725, 0.275], rtol=1e-12)
    with pytest.raises(ConfigError, match="mix must be a number in"):
        equal_minvar_blend([0.5, 0.5], [0.8, 0.2], mix=1.5)


def test_fit_rules_on_uncorrelated_assets_matches_the_hand_computation():
    # variances 4a^2/3, 4b^2/3 with b = 2a and zero correlation: minimum variance [b^2, a^2] / (a^2 + b^2) = [0.8, 0.2]
    prices = prices_of(uncorrelated())
    np.testing.assert_allclose(simple_returns(prices), uncorrelated(), atol=1e-15)
    rules, skipped = fit_allocations(prices, np.zeros(2), np.ones(2), 0.001, names=RULES)
    assert skipped == {} and tuple(rules) == RULES
    np.testing.assert_allclose(rules["equal_minvar_blend"], [0.65, 0.35], atol=1e-4)  # solver tolerance
    np.testing.assert_allclose(rules["volatility_timing"], [0.8, 0.2], rtol=1e-9)  # exact: 1/var
    np.testing.assert_allclose(rules["equal_minvar_blend"].sum(), 1.0, atol=1e-9)


def test_min_variance_is_long_only_even_in_a_long_short_space():
    # corr 0.9, vols 1 and 2: the unconstrained minimum variance shorts B (w_B = (1 - 1.8) / (1 + 4 - 3.6) < 0)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((400, 2))
    a = 0.01 * z[:, 0]
    b = 0.02 * (0.9 * z[:, 0] + np.sqrt(1 - 0.81) * z[:, 1])
    prices = prices_of(np.column_stack([a, b]))
    cov = np.cov(simple_returns(prices).T)
    unconstrained = np.linalg.solve(cov, np.ones(2))
    assert unconstrained[1] < 0  # the case where long-only binds
    fitted, failed = fit_allocations(prices, -np.ones(2), np.ones(2), 0.001, names=("min_variance",))
    assert failed == {} and set(fitted) == {"min_variance"}
    np.testing.assert_allclose(fitted["min_variance"], [1.0, 0.0], atol=1e-6)
    rules, _ = fit_allocations(prices, -np.ones(2), np.ones(2), 0.001, names=RULES)
    np.testing.assert_allclose(rules["equal_minvar_blend"], [0.75, 0.25], atol=1e-6)

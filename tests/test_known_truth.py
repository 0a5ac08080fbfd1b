"""Known-truth synthetic markets (genetic_sizer.data.synthetic): returns with given means and covariance."""

from __future__ import annotations

import numpy as np
import pytest

from genetic_sizer.data.synthetic import equal_market, known_truth_market, tilted_market, true_max_sharpe


def test_equal_market_truth_by_hand():
    m = equal_market(10, mean=0.08, vol=0.16, corr=0.5, n_returns=24, seed=3)
    np.testing.assert_allclose(m.optimum, np.full(10, 0.1), atol=1e-12)
    assert m.distance == pytest.approx(0.0, abs=1e-12)
    # w'mu = 0.08, w'Sigma w = 0.16^2 (rho + (1 - rho) / n) for 1/N under equal correlation
    assert m.equal_weight_sharpe == pytest.approx(0.08 / (0.16 * np.sqrt(0.5 + 0.5 / 10)), rel=1e-12)
    assert m.optimum_sharpe == pytest.approx(m.equal_weight_sharpe, rel=1e-12)
    assert m.prices.n_bars == 25 and m.prices.periods_per_year == 12.0
    assert (m.prices.close[0] == 1.0).all()
    np.testing.assert_allclose(m.prices.close[1:] / m.prices.close[:-1] - 1.0, m.returns, rtol=1e-12)
    assert str(m.prices.index[0].date()) == "2000-01-31" and m.prices.index[1].is_month_end


def test_true_max_sharpe_two_assets_and_long_only_corner():
    # uncorrelated: w proportional to mu_i / sigma_i^2
    w = true_max_sharpe([0.1, 0.05], np.diag([0.04, 0.01]))
    np.testing.assert_allclose(w, np.array([2.5, 5.0]) / 7.5, rtol=1e-12)
    # the unconstrained tangency shorts asset 1: the long-only optimum is found against a fine grid
    mu, cov = np.array([0.10, 0.02]), np.array([[0.04, 0.036], [0.036, 0.04]])
    assert np.linalg.solve(cov, mu)[1] < 0
    w = true_max_sharpe(mu, cov)
    grid = np.linspace(0, 1, 100_001)
    ws = np.column_stack([grid, 1 - grid])
    sr = ws @ mu / np.sqrt(np.einsum("ij,jk,ik->i", ws, cov, ws))
    assert w @ mu / np.sqrt(w @ cov @ w) >= sr.max() - 1e-12
    np.testing.assert_allclose(w, [1.0, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="no asset has a positive mean"):
        true_max_sharpe([-0.1, 0.0], np.eye(2))


def test_tilted_market_optimum_beats_every_random_portfolio():
    m = tilted_market(10, n_returns=12, seed=0)
    assert m.optimum_sharpe > m.equal_weight_sharpe + 0.3
    assert 0.3 < m.distance < 1.0
    assert m.optimum.min() >= 0 and m.optimum.sum() == pytest.approx(1.0)
    held = m.optimum > 0  # exact zeros elsewhere (no solver dust a genome space would refuse)
    assert 0 < held.sum() < 10 and m.optimum[held].min() > 1e-3
    # KKT: on the support the tangency of the support; off it, no asset would raise the Sharpe ratio
    mu, cov, w = m.mean, m.cov, m.optimum
    grad = mu - (w @ mu) / (w @ cov @ w) * cov @ w  # d Sharpe / d w up to a positive factor
    np.testing.assert_allclose(grad[held], 0.0, atol=1e-12)
    assert (grad[~held] <= 1e-12).all()
    rng = np.random.default_rng(1)
    ws = rng.dirichlet(np.ones(10) * 0.3, 20_000)
    assert max(m.sharpe(w) for w in ws) <= m.optimum_sharpe + 1e-9


def test_known_truth_draws_match_the_given_moments_and_are_deterministic():
    mean = np.array([0.06, 0.10, 0.02])
    vols = np.array([0.10, 0.20, 0.15])
    corr = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.5], [-0.2, 0.5, 1.0]])
    cov = corr * np.outer(vols, vols)
    n = 60_000  # weekdays from 2000: about 230 years
    for dof in (None, 5.0):
        m = known_truth_market(mean, cov, n_returns=n, calendar="daily", seed=7, dof=dof)
        r = m.returns
        se = np.sqrt(np.diag(cov) / 252 / n)
        assert np.all(np.abs(r.mean(axis=0) - mean / 252) < 5 * se)
        np.testing.assert_allclose(np.cov(r.T), cov / 252, rtol=0.05 if dof else 0.02, atol=3e-6)
        kurt = ((r - r.mean(0)) ** 4).mean(0) / r.var(0) ** 2
        assert (kurt > 5.0).all() if dof else np.allclose(kurt, 3.0, atol=0.1)  # t(5): kurtosis 9
    a = known_truth_market(mean, cov, n_returns=50, seed=11, calendar="daily")
    b = known_truth_market(mean, cov, n_returns=50, seed=11, calendar="daily")
    np.testing.assert_array_equal(a.prices.close, b.prices.close)
    assert a.prices.periods_per_year == 252.0 and (a.prices.index.dayofweek < 5).all()
    c = known_truth_market(mean, cov, n_returns=50, seed=12, calendar="daily")
    assert not np.array_equal(a.prices.close, c.prices.close)


def test_known_truth_refuses_bad_settings():
    cov = np.eye(2) * 0.04
    with pytest.raises(ValueError, match="calendar must be one of"):
        known_truth_market([0.1, 0.1], cov, n_returns=10, calendar="weekly")
    with pytest.raises(ValueError, match="dof must be > 2"):
        known_truth_market([0.1, 0.1], cov, n_returns=10, dof=2)
    with pytest.raises(ValueError, match="n_returns must be an integer >= 2"):
        known_truth_market([0.1, 0.1], cov, n_returns=1)
    with pytest.raises(np.linalg.LinAlgError):
        known_truth_market([0.1, 0.1], np.array([[0.04, 0.05], [0.05, 0.04]]), n_returns=10)
    with pytest.raises(ValueError, match="-100 %"):
        known_truth_market([0.0, 0.0], np.eye(2) * 100.0, n_returns=100, seed=0)

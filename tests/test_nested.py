"""Nested selection (issue 23, item 4): an inner validation split inside the training window chooses among the GA's
hall of fame, its generations and the classical allocators, 1/N included."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.config import load_config
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError
from genetic_sizer.runs.evolve import evolve
from genetic_sizer.runs.rundir import RunDir
from genetic_sizer.validation.nested import inner_split, nested_select


def _market(means, *, n_bars=750, vol=0.01, corr=0.3, seed=0) -> Prices:
    """Daily closes of assets with the given per-bar mean returns, one volatility and one pairwise correlation."""
    k = len(means)
    cov = vol**2 * (corr * np.ones((k, k)) + (1 - corr) * np.eye(k))
    r = np.random.default_rng(seed).multivariate_normal(np.asarray(means, dtype=float), cov, size=n_bars)
    close = 100.0 * np.cumprod(1.0 + r, axis=0)
    index = pd.bdate_range("2015-01-01", periods=n_bars, tz="UTC")
    return Prices(close=close, index=index, symbols=[f"A{i}" for i in range(k)], source=f"test(seed={seed})")


def _config(*extra):
    return load_config(
        None,
        [
            "evolution.population=16",
            "evolution.generations=6",
            "evolution.hall_of_fame=4",
            "portfolio.rebalance=D",
            "portfolio.fees=0.0",
            "robust.nested=true",
            "robust.inner_validation=0.4",
            *extra,
        ],
    )


def _select(cfg, prices, tmp_path):
    fold = RunDir(tmp_path / "fold")

    def refit(generations):
        ev = cfg.evolution.__class__(**{**cfg.evolution.__dict__, "generations": generations})
        import dataclasses

        return evolve(dataclasses.replace(cfg, evolution=ev), prices, tmp_path / f"refit-{generations}")

    return nested_select(cfg, prices, fold, refit_evolve=refit)


@pytest.mark.parametrize(("n", "validation", "purge"), [(100, 0.25, 0), (100, 0.25, 3), (200, 0.3, 7)])
def test_the_inner_purge_leaves_exactly_inner_purge_bars_out(n, validation, purge):
    prices = _market([0.0] * 3, n_bars=n)
    cfg = _config(f"robust.inner_validation={validation}", f"robust.inner_purge={purge}")
    s = inner_split(prices, cfg.robust)
    n_val = round(n * validation)
    assert s.val_start == n - n_val  # the validation split is the last part
    assert s.train_end == n - n_val - purge - 1  # the inner train part ends purge bars before it
    assert s.purged == purge
    assert (s.train_end + 1) + purge + (n - s.val_start) == n  # every bar in exactly one part (or purged)
    assert s.traded == s.val_start - 1  # traded at the close of the bar before the validation split
    assert inner_split(prices, cfg.robust, execution_delay=1).traded == s.val_start


def test_an_inner_split_that_leaves_too_little_is_a_named_error():
    with pytest.raises(ConfigError, match=r"robust\.inner_validation = 0\.8 leaves 2 bar\(s\) to evolve on"):
        inner_split(_market([0.0] * 3, n_bars=10), _config("robust.inner_validation=0.8").robust)
    with pytest.raises(ConfigError, match=r"robust\.inner_purge = 30 leaves 0 bar\(s\)"):
        inner_split(
            _market([0.0] * 3, n_bars=40), _config("robust.inner_validation=0.25", "robust.inner_purge=30").robust
        )


def test_nested_selection_trades_one_over_n_where_one_over_n_is_optimal(tmp_path):
    # equal means, volatilities and correlations: 1/N has the highest true Sharpe ratio of every long-only portfolio;
    # the GA fits the inner train part's noise, which the validation split does not share
    for seed in (1, 2, 3):
        prices = _market([1e-3] * 8, corr=0.0, seed=seed)
        cfg = _config("robust.candidates=[hall_of_fame, equal_weight]")
        out = _select(cfg, prices, tmp_path / f"s{seed}")
        assert out["candidate"] == "equal_weight", (seed, out["scores"])
        assert out["trade"] == "trade 1/N" and out["method"] == "equal_weight"
        np.testing.assert_allclose(out["weights"], np.full(8, 1 / 8), rtol=0, atol=1e-12)
        # every candidate's inner score is recorded: 1/N, the hall of fame, the generations' bests
        assert "equal_weight" in out["scores"] and "hall_of_fame[0]" in out["scores"]
        assert any(k.startswith("generation[") for k in out["scores"]) or "generation[1]" in out["skipped"]
        assert out["scores"]["equal_weight"] == max(v for v in out["scores"].values() if v is not None)


def test_nested_selection_picks_the_ga_on_a_planted_edge_and_refits_it(tmp_path):
    # asset 0 earns 0.3% a bar more than the others: the GA finds it, 1/N dilutes it, min variance ignores it
    prices = _market([3e-3, 0, 0, 0, 0, 0], seed=4)
    cfg = _config("robust.candidates=[hall_of_fame, equal_weight, min_variance]")
    out = _select(cfg, prices, tmp_path)
    assert out["method"] == "GA" and out["trade"] is None
    assert out["scores"][out["candidate"]] > out["scores"]["equal_weight"] > -math.inf
    # refitted on the whole window for the winning number of generations: that run's member is deployed
    full = out["result"]
    assert len(full.logbook) == out["generations"] + 1
    assert out["weights"][0] == pytest.approx(full.members[0][0]) and out["weights"][0] > 0.5


def test_the_scores_are_the_objective_on_the_validation_split_traded_at_the_close_before_it(tmp_path):
    prices = _market([4e-4] * 4, n_bars=300, seed=5)
    cfg = _config("robust.candidates=[hall_of_fame, equal_weight]", "robust.inner_purge=4")
    out = _select(cfg, prices, tmp_path)
    s = inner_split(prices, cfg.robust)
    # 1/N rebalanced every bar without costs earns the mean of the assets' returns each bar; the first return is the
    # buy at the close of the traded bar, from init_cash (0 without costs), as every fitness metric counts it
    r = (prices.close[s.traded + 1 :] / prices.close[s.traded : -1] - 1.0).mean(axis=1)
    r = np.concatenate([[0.0], r])
    sharpe = r.mean() / r.std(ddof=1) * math.sqrt(prices.periods_per_year)
    assert out["scores"]["equal_weight"] == pytest.approx(sharpe, rel=1e-9)
    assert out["split"]["purged_bars"] == 4
    assert out["split"]["n_validation_bars"] == prices.n_bars - s.val_start


def test_a_classical_candidate_infeasible_for_the_genome_space_is_skipped_with_the_reason(tmp_path):
    prices = _market([3e-3, 0, 0, 0, 0, 0], seed=4)
    cfg = _config("robust.candidates=[hall_of_fame, equal_weight]", "portfolio.max_assets=3")
    out = _select(cfg, prices, tmp_path)
    assert "equal_weight" not in out["scores"]
    assert "equal_weight" in out["skipped"] and "3" in out["skipped"]["equal_weight"]
    assert out["method"] == "GA"
    assert np.count_nonzero(out["weights"] > 0) <= 3


def test_without_refit_the_inner_winner_is_deployed_as_fitted(tmp_path):
    prices = _market([4e-4] * 8, seed=1)
    cfg = _config("robust.candidates=[hall_of_fame, equal_weight, inverse_volatility]", "robust.refit=false")
    out = _select(cfg, prices, tmp_path)
    assert out["refit"] is False and "inner train" in out["note"]
    assert "result" not in out


def test_with_strategy_genes_the_deployed_ga_keeps_its_own_genes(tmp_path):
    prices = _market([3e-3, 0, 0, 0, 0, 0], seed=4)
    cfg = _config(
        "robust.candidates=[hall_of_fame, equal_weight]",
        "robust.refit=false",
        "evolution.genes={threshold: [0.0, 0.25], rebalance: [W, M, once]}",
    )
    out = _select(cfg, prices, tmp_path)
    assert out["method"] == "GA"
    inner = out["inner"]["result"]
    i = out["inner"]["names"].index(out["candidate"])
    np.testing.assert_array_equal(out["weights"], out["inner"]["rows"][i])
    assert out["strategy"] == out["inner"]["strategies"][i] == inner.genes.strategy(out["genes"])
    if out["candidate"].startswith("hall_of_fame["):
        r = int(out["candidate"][len("hall_of_fame[") : -1])
        np.testing.assert_array_equal(out["genes"], inner.members_genes[r])


def test_nested_selection_refuses_the_shrink_gene(tmp_path):
    """Nested selection scores its candidates by their raw weights: the evolved shrink gene is refused up front."""
    cfg = _config("evolution.genes={shrink: [0.1, 0.5]}")
    with pytest.raises(ConfigError, match=r"evolution\.genes\.shrink.*robust\.shrink"):
        _select(cfg, _market([0.0005, 0.0003, 0.0001]), tmp_path)
    assert not (tmp_path / "fold").exists()


def test_nested_selection_skips_candidates_under_min_effective_assets(tmp_path):
    """``portfolio.min_effective_assets``: a candidate under the floor (min variance piling into the one quiet asset)
    is never scored, listed in ``skipped`` with the reason, and the deployed winner meets the floor."""
    from genetic_sizer.evolution.robust import effective_assets

    n, k = 750, 6
    rng = np.random.default_rng(7)
    vols = np.array([0.001, 0.02, 0.02, 0.02, 0.02, 0.02])
    r = rng.normal(2e-4, 1.0, (n, k)) * vols
    prices = Prices(
        close=100.0 * np.cumprod(1.0 + r, axis=0),
        index=pd.bdate_range("2015-01-01", periods=n, tz="UTC"),
        symbols=[f"A{i}" for i in range(k)],
        source="test(quiet asset)",
    )
    floor = 3.0
    cfg = _config(
        "robust.candidates=[hall_of_fame, equal_weight, min_variance]", f"portfolio.min_effective_assets={floor}"
    )
    out = _select(cfg, prices, tmp_path)
    assert "min_variance" not in out["scores"]
    assert "under portfolio.min_effective_assets 3" in out["skipped"]["min_variance"]
    rows = out["inner"]["rows"]
    assert (effective_assets(rows) >= floor - 1e-9).all()
    assert effective_assets(out["weights"])[0] >= floor - 1e-9

"""The evolution loop: validity, determinism, resume, NSGA-II, seeding and the injectable map."""

from __future__ import annotations

import numpy as np
import pytest

from genetic_sizer.config import load_config
from genetic_sizer.data import load_from_config
from genetic_sizer.errors import ConfigError
from genetic_sizer.evolve import evolve, rank_members
from genetic_sizer.fitness import Evaluator
from genetic_sizer.genome import GenomeSpace

SMALL = [
    "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY, MSFT, WMT]",
    "data.start=2021-01-01",
    "data.end=2022-12-31",
    "evolution.population=16",
    "evolution.generations=6",
    "evolution.hall_of_fame=5",
]


CONSTRAINED = (
    "portfolio.direction=longshort",
    "portfolio.min_weight=-0.4",
    "portfolio.max_weight=0.4",
    "portfolio.max_assets=4",
    "portfolio.min_position=0.05",
    "portfolio.groups={tech: [AAPL, AMD, MSFT], energy: [CVX]}",
    "portfolio.max_group_weight={tech: 0.4, energy: 0.1}",
    "portfolio.net_exposure=[0, 0.2]",
)


def small_config(*extra):
    return load_config(None, [*SMALL, *extra])


@pytest.fixture(scope="module")
def prices():
    return load_from_config(small_config().data)


def _same(a, b):
    np.testing.assert_array_equal(a.members, b.members)
    np.testing.assert_array_equal(a.members_fitness, b.members_fitness)
    np.testing.assert_array_equal(a.population, b.population)
    assert a.logbook == b.logbook
    assert a.evaluations == b.evaluations


def test_single_objective_run(prices, tmp_path):
    cfg = small_config("portfolio.max_weight=0.4")
    res = evolve(cfg, prices, tmp_path)
    space = GenomeSpace.create(prices.symbols, max_weight=0.4)
    space.validate_population(res.population)
    space.validate_population(res.members)
    assert [r["gen"] for r in res.logbook] == list(range(7))
    assert res.logbook[0]["nevals"] == 16
    assert sum(r["nevals"] for r in res.logbook) == res.evaluations == res.logbook[-1]["evaluations"]
    best = [r["sharpe_best"] for r in res.logbook]
    assert best == sorted(best)  # elitism: the best never gets worse
    assert res.members_fitness[0, 0] == best[-1]
    assert list(res.members_fitness[:, 0]) == sorted(res.members_fitness[:, 0], reverse=True)
    assert len(res.members) == 5
    # stored fitness is what the evaluator says about the stored genome
    ev = Evaluator.from_config(prices, cfg)
    np.testing.assert_array_equal(ev(res.members)[:, 0], res.members_fitness[:, 0])
    assert {"diversity", "sharpe_mean", "sharpe_std"} <= set(res.logbook[0])
    assert (tmp_path / "checkpoint.pkl").is_file() and (tmp_path / "logbook.csv").is_file()


def test_same_seed_same_run_different_seed_different_run(prices, tmp_path):
    a = evolve(small_config(), prices, tmp_path / "a")
    b = evolve(small_config(), prices, tmp_path / "b")
    _same(a, b)
    assert (tmp_path / "a" / "logbook.csv").read_text() == (tmp_path / "b" / "logbook.csv").read_text()
    c = evolve(small_config("evolution.seed=43"), prices, tmp_path / "c")
    assert not np.array_equal(a.members[0], c.members[0])


def test_global_random_state_is_neither_used_nor_disturbed(prices, tmp_path):
    import random

    random.seed(1)
    a = evolve(small_config(), prices, tmp_path / "a")
    after = random.random()
    random.seed(99)
    b = evolve(small_config(), prices, tmp_path / "b")
    _same(a, b)
    random.seed(1)
    assert random.random() == after


class Interrupt(Exception):
    pass


def _interrupt_at(gen):
    def hook(g):
        if g.gen == gen:
            raise Interrupt

    return hook


@pytest.mark.parametrize(
    "extra",
    [
        (),
        ("objective=[sharpe, max_drawdown, turnover]",),
        ("portfolio.direction=longshort", "portfolio.min_weight=-0.4", "portfolio.max_weight=0.4"),
        CONSTRAINED,
    ],
    ids=["single", "nsga2", "longshort", "constrained"],
)
def test_resume_ends_exactly_like_the_uninterrupted_run(prices, tmp_path, extra):
    cfg = small_config(*extra)
    full = evolve(cfg, prices, tmp_path / "full")
    with pytest.raises(Interrupt):
        evolve(cfg, prices, tmp_path / "cut", on_generation=_interrupt_at(3))
    resumed = evolve(cfg, prices, tmp_path / "cut", resume=True)
    _same(full, resumed)
    assert (tmp_path / "full" / "logbook.csv").read_text() == (tmp_path / "cut" / "logbook.csv").read_text()


def test_resume_refuses_other_config_or_missing_checkpoint(prices, tmp_path):
    with pytest.raises(Interrupt):
        evolve(small_config(), prices, tmp_path, on_generation=_interrupt_at(1))
    with pytest.raises(ConfigError, match="the configuration differs"):
        evolve(small_config("evolution.seed=1"), prices, tmp_path, resume=True)
    with pytest.raises(ConfigError, match="no checkpoint"):
        evolve(small_config(), prices, tmp_path / "empty", resume=True)


def test_nsga2_front_and_compromise_champion(prices, tmp_path):
    cfg = small_config("objective=[sharpe, max_drawdown, turnover]", "evolution.generations=5")
    res = evolve(cfg, prices, tmp_path)
    f = res.members_fitness
    signed = f * np.array([1.0, 1.0, -1.0])  # larger is better in every column
    for i in range(len(f)):  # no member of the front dominates another
        for j in range(len(f)):
            assert not ((signed[i] >= signed[j]).all() and (signed[i] > signed[j]).any())
    assert res.logbook[-1]["turnover_best"] == f[:, 2].min()
    np.testing.assert_array_equal(rank_members(f, (True, True, False)), np.arange(len(f)))  # stored in that order
    with pytest.raises(ConfigError, match="multiple of 4 for NSGA-II"):
        evolve(small_config("objective=[sharpe, turnover]", "evolution.population=18"), prices, tmp_path / "x")


def test_compromise_rule_by_hand():
    # columns: sharpe (max), turnover (min). Scaled scores: A (1, 0), B (0.5, 0.5), C (0, 1).
    f = np.array([[2.0, 3.0], [1.5, 2.0], [1.0, 1.0]])
    order = rank_members(f, (True, False))
    assert order[0] == 1  # B is closest to the ideal (1, 1): distance 0.707 vs 1
    assert list(order[1:]) == [0, 2]  # A and C tie at distance 1; the better sharpe comes first


def test_seeding_with_classical_allocations(prices, tmp_path, monkeypatch):
    from genetic_sizer.classical import classical_allocations

    cfg = small_config("evolution.seed_with_classical=true", "evolution.generations=1")
    res = evolve(cfg, prices, tmp_path)
    space = GenomeSpace.create(prices.symbols)
    allocations, _ = classical_allocations(prices, space)
    assert sorted(res.seeds["used"]) == sorted(allocations) and len(allocations) == 5
    sharpe = Evaluator.from_config(prices, cfg)(np.stack(list(allocations.values())))[:, 0]
    assert res.logbook[0]["sharpe_best"] >= sharpe.max()

    # the end-of-run summary reuses the seeds instead of fitting them again
    import genetic_sizer.classical
    from genetic_sizer.results import finalize

    def refit(*args):
        raise AssertionError("classical allocations fitted twice")

    monkeypatch.setattr(genetic_sizer.classical, "classical_allocations", refit)
    report = finalize(res, prices, tmp_path, plots=False)
    assert sorted(report.summary) == sorted(["champion", *allocations])


def test_injected_map_and_batches_do_not_change_the_result(prices, tmp_path):
    calls = []

    def recording_map(fn, batches):
        calls.append([len(b) for b in batches])
        return [fn(b) for b in batches]

    serial = evolve(small_config(), prices, tmp_path / "serial")
    batched = evolve(small_config("parallel.batch_size=5"), prices, tmp_path / "b", map_fn=recording_map)
    np.testing.assert_array_equal(serial.members, batched.members)
    assert calls[0] == [5, 5, 5, 1]
    assert all(max(c) <= 5 for c in calls)


def test_objectives_other_than_sharpe(prices, tmp_path):
    for objective in ("calmar", "cagr", "sortino"):
        res = evolve(small_config(f"objective={objective}", "evolution.generations=2"), prices, tmp_path / objective)
        assert res.logbook[-1][f"{objective}_best"] == res.members_fitness[0, 0]
    res = evolve(small_config("objective=annualized_volatility", "evolution.generations=2"), prices, tmp_path / "vol")
    assert res.members_fitness[0, 0] == min(r["annualized_volatility_best"] for r in res.logbook)


def test_a_constrained_run_stays_valid_under_every_constraint(prices, tmp_path):
    """Every genome evaluated passes the space's validation (the loop checks each batch); the final population
    and hall of fame hold at most 4 assets, no position under 5%, the sector caps and the net-exposure band."""
    cfg = small_config(*CONSTRAINED, "evolution.generations=8")
    res = evolve(cfg, prices, tmp_path)
    space = GenomeSpace.from_config(prices.symbols, cfg.portfolio)
    for w in (*res.population, *res.members):
        assert space.violation(w) is None
        assert np.count_nonzero(w) <= 4 and (np.abs(w[w != 0]) >= 0.05 - 1e-12).all()
        assert -1e-9 <= w.sum() <= 0.2 + 1e-9
    assert res.logbook[-1]["sharpe_best"] >= res.logbook[0]["sharpe_best"]
    assert len({tuple(np.flatnonzero(w)) for w in res.population}) > 1  # supports differ: the search moves them

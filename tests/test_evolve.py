"""The evolution loop: validity, determinism, resume, NSGA-II, seeding and the injectable map."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from genetic_sizer.backtest.metrics import CAP, WIPED_OUT_FITNESS
from genetic_sizer.backtest.simulate import backtest
from genetic_sizer.config import load_config
from genetic_sizer.data.loaders import load_from_config
from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.evolution.selection import rank_members
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.runs.evolve import evolve
from genetic_sizer.runs.rundir import RunDir

from .conftest import make_wipeout_prices

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


GENES = ("evolution.genes={threshold: [0.0, 0.2], rebalance: [W, M, Q, once]}",)


def small_config(*extra):
    return load_config(None, [*SMALL, *extra])


@pytest.fixture(scope="module")
def prices():
    return load_from_config(small_config().data)


def _same(a, b):
    np.testing.assert_array_equal(a.members, b.members)
    np.testing.assert_array_equal(a.members_genes, b.members_genes)
    np.testing.assert_array_equal(a.population_genes, b.population_genes)
    np.testing.assert_array_equal(a.members_fitness, b.members_fitness)
    np.testing.assert_array_equal(a.population, b.population)
    assert a.logbook == b.logbook
    assert a.evaluations == b.evaluations
    assert a.trials == b.trials
    np.testing.assert_array_equal(a.trial_sample, b.trial_sample)


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
    assert (tmp_path / "checkpoint.json").is_file() and (tmp_path / "logbook.csv").is_file()


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


# seed 0: with the old archive restore, every variant below diverged after some cut
TINY = ["evolution.seed=0", "evolution.population=8", "evolution.generations=8", "evolution.hall_of_fame=4"]


@pytest.mark.parametrize(
    "extra",
    [
        (),
        ("objective=[sharpe, max_drawdown, turnover]",),
        ("portfolio.direction=longshort", "portfolio.min_weight=-0.4", "portfolio.max_weight=0.4"),
        GENES,
        (*GENES, "objective=[sharpe, max_drawdown, turnover]"),
        (*GENES, "portfolio.direction=longshort", "portfolio.min_weight=-0.4", "portfolio.max_weight=0.4"),
    ],
    ids=["single", "nsga2", "longshort", "genes", "genes-nsga2", "genes-longshort"],
)
def test_resume_after_every_generation_is_exact(prices, tmp_path, extra):
    """Interrupted after generation 0, 1, ..., G (the run directory as it is then, copied) and resumed: the
    same population, fitness, archive in DEAP's order, random states, logbook and champion as without the
    interruption. Before the archive was restored through DEAP's API, cuts after generation 6 and 7 of the
    single-objective run diverged (DEAP's keys were restored best first instead of ascending)."""
    _resume_after_every_generation(
        small_config(*TINY, *extra, "run.checkpoint_every=0"), prices, tmp_path, 2 if "genes" in str(extra) else 0
    )


def _resume_after_every_generation(cfg, prices, tmp_path, n_genes):
    cuts = []

    def snapshot(g):
        cuts.append(tmp_path / f"cut{g.gen}")
        shutil.copytree(tmp_path / "full", cuts[-1])

    full = evolve(cfg, prices, tmp_path / "full", on_generation=snapshot)
    end = RunDir(tmp_path / "full").read_checkpoint()
    assert len(cuts) == cfg.evolution.generations + 1
    for cut in cuts:
        resumed = evolve(cfg, prices, cut, resume=True)
        _same(full, resumed)
        np.testing.assert_array_equal(full.fitness, resumed.fitness)
        cp = RunDir(cut).read_checkpoint()
        np.testing.assert_array_equal(cp.archive, end.archive)  # the raw hall of fame / Pareto front, in order
        np.testing.assert_array_equal(cp.archive_fitness, end.archive_fitness)
        np.testing.assert_array_equal(cp.crowding, end.crowding)
        assert cp.n_genes == end.n_genes == n_genes
        if cp.n_genes:
            np.testing.assert_array_equal(cp.archive_genes, end.archive_genes)
            np.testing.assert_array_equal(cp.population_genes, end.population_genes)
        assert cp.np_rng == end.np_rng and cp.py_random == end.py_random and cp.logbook == end.logbook
        assert cp.trials[0] == end.trials[0]
        np.testing.assert_array_equal(cp.trials[1]["trial_keys"], end.trials[1]["trial_keys"])
        assert (tmp_path / "full" / "logbook.csv").read_text() == (cut / "logbook.csv").read_text()


def test_archive_restore_keeps_deaps_order_with_ties(prices):
    """A Pareto front with tied fitness, saved and rebuilt, holds the same members in the same order and keeps
    inserting newcomers where the original does."""
    from genetic_sizer.evolution.loop import Evolution

    rng = np.random.default_rng(0)
    space = GenomeSpace.create(prices.symbols)
    cfg = small_config("objective=[sharpe, turnover]")
    original, rebuilt = Evolution(cfg, prices), Evolution(cfg, prices)
    batches = []
    for _ in range(4):
        w = space.sample(rng, 12)
        f = rng.integers(0, 3, size=(12, 2)).astype(float)  # few distinct values: many ties
        batches.append((w, f))

    def inds(run, w, f):
        out = []
        for wi, fi in zip(w, f, strict=True):
            ind = run.strategy._ind(wi)
            ind.fitness.values = tuple(fi)
            out.append(ind)
        return out

    original.strategy.archive.update(inds(original, *batches[0]))
    rebuilt.strategy.restore(*original.strategy.arrays())
    for w, f in batches[1:]:
        order = [np.asarray(i).tolist() for i in original.strategy.archive]
        assert [np.asarray(i).tolist() for i in rebuilt.strategy.archive] == order
        assert [k.values for k in rebuilt.strategy.archive.keys] == [k.values for k in original.strategy.archive.keys]
        assert [k.values for k in rebuilt.strategy.archive.keys] == [
            i.fitness.values for i in reversed(list(rebuilt.strategy.archive))
        ]
        original.strategy.archive.update(inds(original, w, f))
        rebuilt.strategy.archive.update(inds(rebuilt, w, f))
    assert [np.asarray(i).tolist() for i in rebuilt.strategy.archive] == [
        np.asarray(i).tolist() for i in original.strategy.archive
    ]


@pytest.mark.parametrize("maximize", [True, False], ids=["max", "min"])
@pytest.mark.parametrize("maxsize", [1, 4, 10])
def test_array_hall_of_fame_is_deaps_hall_of_fame(maximize, maxsize):
    """The array hall of fame against DEAP's ``HallOfFame`` (with the same similarity: weights and genes), fed the
    same rows: few distinct fitness values (many ties), repeated genomes, the same weights with other genes. After
    every update both hold the same members with the same fitness in the same order (a weight of -0.0 is the same
    genome as 0.0, as for ``np.array_equal``); a copy restored from the arrays mid-way goes on identically."""
    from deap import base, creator, tools

    from genetic_sizer.evolution.selection import HallOfFame, _deap_classes, _same_genome

    Individual = _deap_classes((maximize,))
    assert issubclass(Individual, np.ndarray) and hasattr(creator, Individual.__name__) and base.Fitness
    rng = np.random.default_rng(maxsize + 10 * maximize)
    pool_w = rng.dirichlet(np.ones(5), size=15)
    pool_w[:, 0] = 0.0
    pool_g = rng.integers(0, 2, size=(15, 2)).astype(float)
    reference = tools.HallOfFame(maxsize, similar=_same_genome)
    ours = HallOfFame(maxsize, 5, 2, maximize)
    restored = None
    for step in range(30):
        k = rng.integers(0, 15, 20)
        w, g = pool_w[k], pool_g[k]
        g[rng.random(20) < 0.3, 0] = 2.0  # the same weights with other genes
        w[rng.random(20) < 0.5, 0] *= -1.0  # 0.0 or -0.0 in the first column: the same genome
        f = rng.integers(0, 4, size=(20, 1)).astype(float)
        inds = []
        for wi, gi, fi in zip(w, g, f, strict=True):
            ind = Individual(wi.copy())
            ind.genes = gi.copy()
            ind.fitness.values = (float(fi[0]),)
            inds.append(ind)
        reference.update(inds)
        ours.update(w, g, f)
        if restored is not None:
            restored.update(w, g, f)
        np.testing.assert_array_equal(ours.weights, np.array([np.asarray(i) for i in reference]))
        np.testing.assert_array_equal(ours.genes, np.array([i.genes for i in reference]))
        np.testing.assert_array_equal(ours.fitness[:, 0], [i.fitness.values[0] for i in reference])
        if restored is not None:
            np.testing.assert_array_equal(restored.weights, ours.weights)
            np.testing.assert_array_equal(restored.genes, ours.genes)
        if step == 5:
            restored = HallOfFame(maxsize, 5, 2, maximize)
            restored.restore(ours.weights, ours.fitness, ours.genes)
    assert len(ours) == maxsize


def test_tournament_and_elite_selection_follow_deaps_rules():
    """``select_tournament``: the winner of each tournament is the best of its aspirants, the first drawn on a tie
    (replayed from the same draws); ``select_best`` is DEAP's ``selBest`` (a stable sort, earlier row first on a
    tie)."""
    from deap import tools

    from genetic_sizer.evolution.selection import _deap_classes, select_best, select_tournament

    key = np.array([0.0, 2.0, 2.0, 1.0, -1.0, 2.0, 1.0])
    chosen = select_tournament(key, 500, 3, np.random.default_rng(4))
    aspirants = np.random.default_rng(4).integers(0, len(key), (500, 3))
    for a, c in zip(aspirants, chosen, strict=True):
        assert key[c] == key[a].max() and c == a[np.flatnonzero(key[a] == key[a].max())[0]]
    tied = [a for a in aspirants if len(set(a[key[a] == 2.0])) > 1]
    assert len(tied) > 10  # the check above covers tournaments between distinct tied rows
    Individual = _deap_classes((True,))
    inds = []
    for k, v in enumerate(key):
        ind = Individual(np.array([float(k)]))
        ind.fitness.values = (v,)
        inds.append(ind)
    for k in range(1, len(key) + 1):
        expected = [int(np.asarray(i)[0]) for i in tools.selBest(inds, k)]
        assert select_best(key, k).tolist() == expected


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
    from genetic_sizer.evolution.seeding import classical_allocations

    cfg = small_config("evolution.seed_with_classical=true", "evolution.generations=1")
    res = evolve(cfg, prices, tmp_path)
    space = GenomeSpace.create(prices.symbols)
    allocations, _ = classical_allocations(prices, space)
    # 5 classical + risk_parity, risk_budgeting, black_litterman (issue 26; market_cap needs a cap file) + the cheap
    # rules equal_minvar_blend and volatility_timing (issue 23)
    assert sorted(res.seeds["used"]) == sorted(allocations) and len(allocations) == 10
    sharpe = Evaluator.from_config(prices, cfg)(np.stack(list(allocations.values())))[:, 0]
    assert res.logbook[0]["sharpe_best"] >= sharpe.max()

    # the end-of-run summary reuses the seeds instead of fitting them again
    import genetic_sizer.evolution.seeding
    from genetic_sizer.validation.holdout import finalize

    def refit(*args):
        raise AssertionError("classical allocations fitted twice")

    monkeypatch.setattr(genetic_sizer.evolution.seeding, "classical_allocations", refit)
    report = finalize(res, prices, tmp_path, plots=False)
    assert sorted(report.summary) == sorted(["champion", *allocations])
    # issue 26: the champion file records how the toolkit's allocators were fitted, and the champion's analytics
    rec = report.champion
    assert rec["allocators"]["black_litterman"].startswith("equilibrium from 1/N (no market-cap file")
    ins = rec["analytics"]["in_sample"]
    w = np.array([rec["weights"][s] for s in prices.symbols])
    assert ins["diversification"]["hhi"] == pytest.approx(float(np.sum((w / w.sum()) ** 2)), rel=1e-12)
    assert sum(ins["diversification"]["risk_contribution"].values()) == pytest.approx(100.0)
    import pandas as pd

    values = pd.read_csv(tmp_path / "values.csv")
    values = values[values["window"] == "in_sample"]
    active = values["champion"].pct_change().dropna() - values["equal_weight"].pct_change().dropna()
    assert rec["analytics"]["benchmark"] == "equal_weight"
    assert ins["attribution"]["active_return"] == pytest.approx(prices.periods_per_year * active.mean(), rel=1e-9)
    assert ins["attribution"]["tracking_error"] == pytest.approx(np.sqrt(252) * active.std(ddof=1), rel=1e-9)


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


@pytest.mark.parametrize("objective", ["sharpe", "[sharpe, max_drawdown, turnover]"], ids=["single", "nsga2"])
def test_wiped_out_genomes_rank_last_and_stay_out_of_the_statistics(tmp_path, objective):
    """Long/short genomes short of an asset that rises 10x lose more than their capital. They get the worst
    fitness in every objective, never reach the hall of fame or the front, and the logbook's statistics are
    those of the live genomes, with a count of the others."""
    prices = make_wipeout_prices()
    cfg = load_config(
        None,
        [
            "portfolio.direction=longshort",
            "portfolio.min_weight=-1",
            "portfolio.rebalance=once",
            "evolution.population=24",
            "evolution.generations=4",
            "evolution.hall_of_fame=5",
            f"objective={objective}",
            "run.checkpoint_every=0",
        ],
    )
    ev = Evaluator.from_config(prices, cfg)
    wiped_per_gen = []

    def check(g):  # with run.checkpoint_every 0, called after each generation's checkpoint: its population is on disk
        state = RunDir(tmp_path).read_checkpoint()
        fit = state.fitness
        assert np.isfinite(fit).all()
        dead = ev.is_wiped_out(fit)
        np.testing.assert_array_equal(dead, ev.metrics(state.population)["wiped_out"] == 1.0)  # really lost
        wiped_per_gen.append(g.record["wiped_out"])
        assert g.record["wiped_out"] == dead.sum()
        live = fit[~dead]
        for j, name in enumerate(cfg.objective):
            assert g.record[f"{name}_mean"] == live[:, j].mean()
            assert g.record[f"{name}_std"] == live[:, j].std()
            assert abs(g.record[f"{name}_best"]) <= CAP

    res = evolve(cfg, prices, tmp_path, on_generation=check)
    assert wiped_per_gen[0] > 0  # random long/short genomes: several short RALLY and are wiped out
    assert len(wiped_per_gen) == 5
    assert not ev.is_wiped_out(res.members_fitness).any()
    assert (ev.metrics(res.members)["wiped_out"] == 0).all()
    logbook = (tmp_path / "logbook.csv").read_text().splitlines()
    assert "wiped_out" in logbook[0].split(",") and len(logbook) == 6


def test_run_where_every_genome_is_wiped_out(tmp_path):
    """Bounds that force a large short of RALLY: every genome is wiped out. The run still completes (finite
    sentinel fitness), the logbook says so (no live statistics, NaN), and no champion file is written."""
    from genetic_sizer.errors import ChampionError
    from genetic_sizer.validation.holdout import finalize

    prices = make_wipeout_prices()
    cfg = load_config(
        None,
        [
            "portfolio.direction=longshort",
            "portfolio.min_weight=-1",
            "portfolio.max_weight={RALLY: -0.5, default: 1}",
            "portfolio.rebalance=once",
            "evolution.population=8",
            "evolution.generations=2",
            "evolution.hall_of_fame=3",
        ],
    )
    res = evolve(cfg, prices, tmp_path)
    assert [r["wiped_out"] for r in res.logbook] == [8, 8, 8]
    assert all(np.isnan(r[f"sharpe_{s}"]) for r in res.logbook for s in ("best", "mean", "std"))
    np.testing.assert_array_equal(res.fitness, -WIPED_OUT_FITNESS)
    saved = RunDir(tmp_path).read_checkpoint()  # NaN statistics survive the JSON checkpoint (as null)
    assert [r["wiped_out"] for r in saved.logbook] == [8, 8, 8]
    assert all(np.isnan(r["sharpe_mean"]) for r in saved.logbook)
    with pytest.raises(ChampionError, match=r"wiped out .* every genome the run evaluated"):
        finalize(res, prices, tmp_path, plots=False)
    assert not (tmp_path / "champion.json").exists()


def test_trials_count_every_distinct_genome_and_the_spread_of_their_sharpe(prices, tmp_path):
    """The run's trials, checked against an independent record of every batch the map evaluated: the distinct
    genomes, and the variance (ddof=1) of their per-period Sharpe ratios recomputed with the evaluator."""
    cfg = small_config("evolution.generations=5")
    seen = []

    def recording_map(fn, batches):
        seen.extend(np.asarray(b).copy() for b in batches)
        return [fn(b) for b in batches]

    res = evolve(cfg, prices, tmp_path, map_fn=recording_map)
    everything = np.concatenate(seen)
    distinct = np.unique(everything, axis=0)
    assert res.evaluations == len(everything) and res.trials["n"] == len(distinct) <= res.evaluations
    ev = Evaluator.from_config(prices, cfg)
    sharpe_pp = ev.metrics(distinct)["sharpe"] / np.sqrt(prices.periods_per_year)
    np.testing.assert_allclose(res.trials["sharpe_variance"], sharpe_pp.var(ddof=1), rtol=1e-9)
    # the sample: distinct genomes the run evaluated, all of them while fewer than 1,000
    assert res.trial_sample.shape == (len(distinct), prices.n_assets)
    assert len(np.unique(res.trial_sample, axis=0)) == len(distinct)
    assert {tuple(r) for r in res.trial_sample} == {tuple(r) for r in distinct}


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


# ---- strategy genes ---------------------------------------------------------------------------------
def test_a_run_with_genes_evolves_strategies(prices, tmp_path):
    """Every genome carries valid genes; the stored fitness of each member is what the evaluator says of its
    weights WITH its own policy and drift band (not the portfolio's), and differs from that of the weights alone;
    the same seed gives the same run."""
    from genetic_sizer.evolution.genes import GeneSpace

    cfg = small_config(*GENES, "evolution.generations=8")
    res = evolve(cfg, prices, tmp_path / "a")
    space = GeneSpace.from_config(cfg)
    assert res.genes == space and res.members_genes.shape == (5, 2) and res.population_genes.shape == (16, 2)
    space.validate_population(res.population_genes)
    space.validate_population(res.members_genes)
    ev = Evaluator.from_config(prices, cfg)
    np.testing.assert_array_equal(ev.metrics(res.members, genes=res.members_genes)["sharpe"], res.members_fitness[:, 0])
    assert not np.array_equal(ev.metrics(res.members)["sharpe"], res.members_fitness[:, 0])
    # one evaluation of a row (weights, genes) is the evaluator's call on it
    rows = np.hstack([res.members, res.members_genes])
    np.testing.assert_array_equal(ev(rows)[:, 0], res.members_fitness[:, 0])
    for k in range(len(res.members)):
        s = res.strategy(k)
        assert s["rebalance"] in ("W", "M", "Q", "once") and 0.0 <= s["threshold"] <= 0.2
        bt = backtest(prices, res.members[k], rebalance=s["rebalance"], threshold=s["threshold"], fees=0.0005)
        assert ev.metrics_of(bt)["sharpe"][0] == res.members_fitness[k, 0]  # the simulator, called directly
    # the population's genes move: several policies and a spread of bands were tried, the logbook says where
    first, last = res.logbook[0], res.logbook[-1]
    assert sum(first[f"rebalance_{c}"] for c in ("W", "M", "Q", "once")) == 16
    assert first["threshold_std"] > 0 and 0 <= last["threshold_mean"] <= 0.2
    _same(res, evolve(cfg, prices, tmp_path / "b"))
    assert not np.array_equal(
        res.members_genes, evolve(small_config(*GENES, "evolution.seed=7"), prices, tmp_path / "c").members_genes
    )


def test_a_trial_is_a_distinct_pair_of_weights_and_genes(prices, tmp_path):
    """Checked against an independent record of every row the map evaluated: the distinct (weights, genes) rows,
    and the variance of their per-period Sharpe ratios recomputed with each row's own strategy."""
    cfg = small_config(*GENES, "evolution.generations=5")
    seen = []

    def recording_map(fn, batches):
        seen.extend(np.asarray(b).copy() for b in batches)
        return [fn(b) for b in batches]

    res = evolve(cfg, prices, tmp_path, map_fn=recording_map)
    rows = np.concatenate(seen)
    assert rows.shape[1] == prices.n_assets + 2
    distinct = np.unique(rows, axis=0)
    assert res.trials["n"] == len(distinct)
    # genomes evaluated with the same weights but other genes are trials of their own
    assert len(np.unique(rows[:, : prices.n_assets], axis=0)) <= len(distinct)
    ev = Evaluator.from_config(prices, cfg)
    w, g = distinct[:, : prices.n_assets], distinct[:, prices.n_assets :]
    sharpe_pp = ev.metrics(w, genes=g)["sharpe"] / np.sqrt(prices.periods_per_year)
    np.testing.assert_allclose(res.trials["sharpe_variance"], sharpe_pp.var(ddof=1), rtol=1e-9)
    sample = np.hstack([res.trial_sample, res.trial_sample_genes])
    assert {tuple(r) for r in sample} == {tuple(r) for r in distinct}


def test_the_archive_tells_genomes_apart_by_their_genes(prices):
    """Two genomes with the same weights and different genes are two members of the hall of fame (and of a Pareto
    front), and survive a save and restore of the archive."""
    from genetic_sizer.evolution.loop import Evolution

    for extra in [GENES, (*GENES, "objective=[sharpe, turnover]")]:
        cfg = small_config(*extra)
        run = Evolution(cfg, prices)
        w = GenomeSpace.create(prices.symbols).sample(np.random.default_rng(0), 1)[0]
        rows = (([0.05, 1.0], (1.0,)), ([0.1, 2.0], (2.0,)), ([0.05, 1.0], (1.0,)))
        if cfg.multi_objective:
            inds = []
            for genes, fit in rows:
                ind = run.strategy._ind(w, genes)
                ind.fitness.values = fit * len(cfg.objective)
                inds.append(ind)
            run.strategy.archive.update(inds)
        else:
            run.strategy.archive.update(
                np.stack([w] * 3), np.array([g for g, _ in rows]), np.array([f for _, f in rows])
            )
        members, fit, genes = run.strategy.arrays()
        assert len(members) == 2 and {tuple(g) for g in genes} == {(0.05, 1.0), (0.1, 2.0)}
        if not cfg.multi_objective:
            np.testing.assert_array_equal(genes[0], [0.1, 2.0])  # the better strategy first
        rebuilt = Evolution(cfg, prices)
        rebuilt.strategy.restore(members, fit, genes)
        np.testing.assert_array_equal(rebuilt.strategy.arrays()[2], genes)


def test_resume_refuses_a_checkpoint_without_the_configs_genes(prices, tmp_path):
    from genetic_sizer.errors import CheckpointError

    evolve(small_config("evolution.generations=1"), prices, tmp_path)
    cp = RunDir(tmp_path).read_checkpoint()
    assert cp.n_genes == 0 and cp.population_genes is None
    from genetic_sizer.evolution.loop import Evolution

    run = Evolution(small_config(*GENES, "evolution.generations=1"), prices)
    cp.config_sha256 = run.config.sha256()
    with pytest.raises(CheckpointError, match="0 strategy genes, the config evolves 2"):
        run.restore(cp)


# ---- the leverage gene (perp) ---------------------------------------------------------------------------------
PERP_SMALL = [
    "portfolio.market=perp",
    "portfolio.leverage=2",
    "portfolio.max_leverage={BTC: 40, default: 10}",
    "portfolio.direction=longshort",
    "portfolio.min_weight=-0.5",
    "portfolio.max_weight=0.6",
    "portfolio.rebalance=D",
    "evolution.population=16",
    "evolution.generations=6",
    "evolution.hall_of_fame=5",
]
LEVERAGE = "evolution.genes={threshold: [0.0, 0.1], leverage: [1.0, 8.0]}"


@pytest.fixture(scope="module")
def perp_prices():
    from genetic_sizer.data.synthetic import perp_market

    return perp_market(hours=24 * 40, seed=3).prices


def test_a_perp_run_with_a_leverage_gene_evolves_leverages(perp_prices, tmp_path):
    """Every genome carries a valid leverage; each member's stored fitness is its weights simulated at ITS leverage
    (and band), not the portfolio's; the logbook follows the population's leverage; the same seed gives the same run,
    another seed other leverages."""
    from genetic_sizer.evolution.genes import GeneSpace

    cfg = load_config(None, [*PERP_SMALL, LEVERAGE, "objective=calmar"])
    res = evolve(cfg, perp_prices, tmp_path / "a")
    space = GeneSpace.from_config(cfg)
    assert res.genes == space and space.names == ("threshold", "leverage") and space.default_leverage == 2.0
    assert res.members_genes.shape == (5, 2) and res.population_genes.shape == (16, 2)
    space.validate_population(res.population_genes)
    ev = Evaluator.from_config(perp_prices, cfg)
    pf = cfg.portfolio
    for k in range(len(res.members)):
        s = res.strategy(k)
        assert set(s) == {"rebalance", "threshold", "leverage"} and 1.0 <= s["leverage"] <= 8.0
        assert s["leverage"] == res.members_genes[k, 1] and s["rebalance"] == "D"
        bt = backtest(
            perp_prices,
            res.members[k],
            rebalance="D",
            threshold=s["threshold"],
            fees=pf.fees,
            market="perp",
            leverage=s["leverage"],
            max_leverage=pf.max_leverage,
        )
        assert ev.metrics_of(bt)["calmar"][0] == res.members_fitness[k, 0]
    at_two = ev.metrics(res.members, genes=np.column_stack([res.members_genes[:, 0], np.full(5, 2.0)]))["calmar"]
    assert not np.array_equal(at_two, res.members_fitness[:, 0])
    first, last = res.logbook[0], res.logbook[-1]
    assert first["leverage_std"] > 1.0 and 1.0 <= first["leverage_mean"] <= 8.0 and 1.0 <= last["leverage_mean"] <= 8.0
    assert "threshold_mean" in last and not any(k.startswith("rebalance_") for k in last)
    _same(res, evolve(cfg, perp_prices, tmp_path / "b"))
    other = evolve(
        load_config(None, [*PERP_SMALL, LEVERAGE, "objective=calmar", "evolution.seed=7"]), perp_prices, tmp_path / "c"
    )
    assert not np.array_equal(res.members_genes[:, 1], other.members_genes[:, 1])


@pytest.mark.parametrize("extra", [(), ("objective=[sharpe, max_drawdown]",)], ids=["leverage", "leverage-nsga2"])
def test_resume_after_every_generation_is_exact_with_a_leverage_gene(perp_prices, tmp_path, extra):
    cfg = load_config(None, [*PERP_SMALL, *TINY, LEVERAGE, *extra, "run.checkpoint_every=0"])
    _resume_after_every_generation(cfg, perp_prices, tmp_path, 2)


def test_a_leverage_gene_run_that_cannot_start_leaves_nothing_behind(perp_prices, tmp_path):
    """A leverage range above a coin's max_leverage (known only with the data) is refused before the run directory
    is created."""
    cfg = load_config(None, [*PERP_SMALL, "evolution.genes={leverage: [1.0, 12.0]}"])
    with pytest.raises(
        ConfigError, match=r"evolution\.genes\.leverage hi 12 is above portfolio\.max_leverage of 'ETH' \(10\)"
    ):
        evolve(cfg, perp_prices, tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ---- the loop on arrays: evaluation of changed rows, checkpoint cadence, interruptions ------------------------
@pytest.mark.parametrize("extra", [(), GENES, ("objective=[sharpe, turnover]",)], ids=["single", "genes", "nsga2"])
def test_only_changed_children_are_evaluated_and_every_fitness_is_the_evaluators(prices, tmp_path, extra, monkeypatch):
    """Children that neither cross nor mutate are their parents: not evaluated again (no evaluation at all without
    variation). With variation, the map evaluates exactly the children that differ from their parent (weights or
    genes), in order; the others are their parent's row; the stored fitness of the final population is the
    evaluator's on each row."""
    import genetic_sizer.evolution.loop as E

    still = small_config(
        *extra, "evolution.crossover_prob=0", "evolution.mutation_prob=0", "evolution.gene_mutation_prob=0"
    )
    res = evolve(still, prices, tmp_path / "still")
    assert [r["nevals"] for r in res.logbook] == [16, 0, 0, 0, 0, 0, 0] and res.evaluations == 16

    varied = []
    real_vary = E.Evolution._vary

    def spy(self, weights, genes):
        children, child_genes, changed = real_vary(self, weights, genes)
        varied.append((np.hstack([weights, genes]), np.hstack([children, child_genes]), changed))
        return children, child_genes, changed

    monkeypatch.setattr(E.Evolution, "_vary", spy)
    batches = []

    def recording_map(fn, b):
        batches.append(np.concatenate(b))
        return [fn(x) for x in b]

    cfg = small_config(*extra)
    res = evolve(cfg, prices, tmp_path / "moving", map_fn=recording_map)
    assert len(varied) == 6 and len(batches) == 7
    for (parents, children, changed), evaluated in zip(varied, batches[1:], strict=True):
        assert changed.any()
        np.testing.assert_array_equal(evaluated, children[changed])
        assert (parents[changed] != children[changed]).any(axis=1).all()
        np.testing.assert_array_equal(parents[~changed], children[~changed])
    assert sum((~c).sum() for _, _, c in varied) > 0  # some children are their parents
    ev = Evaluator.from_config(prices, cfg)
    rows = np.hstack([res.population, res.population_genes])
    np.testing.assert_array_equal(ev(rows), res.fitness)


class _Clock:
    """A stand-in for the ``time`` module of genetic_sizer.evolution.loop: ``perf_counter`` reads ``now``."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


def test_checkpoints_follow_run_checkpoint_every(prices, tmp_path, monkeypatch):
    """After the first generation, then whenever run.checkpoint_every seconds have passed since the last one, and
    after the last generation (a clock that advances 2 s per generation, checkpoints every 5 s: generations 0, 3, 6
    and 8 of 8); with 0 after every generation. The logbook is written with each checkpoint and ends complete; the
    result is the same either way."""
    import genetic_sizer.evolution.loop as E

    written = []
    real = RunDir.write_checkpoint

    def spy(self, cp):
        written.append(cp.generation)
        assert len(cp.logbook) == cp.generation + 1
        return real(self, cp)

    monkeypatch.setattr(RunDir, "write_checkpoint", spy)
    clock = _Clock()
    monkeypatch.setattr(E, "time", clock)

    def tick(g):
        clock.now += 2.0

    a = evolve(small_config("evolution.generations=8"), prices, tmp_path / "a", on_generation=tick)
    assert written == [0, 3, 6, 8]
    assert len((tmp_path / "a" / "logbook.csv").read_text().splitlines()) == 10
    written.clear()
    b = evolve(small_config("evolution.generations=8", "run.checkpoint_every=0"), prices, tmp_path / "b")
    assert written == list(range(9))
    _same(a, b)
    assert (tmp_path / "a" / "logbook.csv").read_text() == (tmp_path / "b" / "logbook.csv").read_text()


@pytest.mark.parametrize(
    "extra",
    [(), (*GENES, "objective=[sharpe, max_drawdown, turnover]"), (*GENES, *CONSTRAINED)],
    ids=["single", "genes-nsga2", "genes-constrained"],
)
@pytest.mark.parametrize("where", ["callback", "map"])
def test_an_interrupt_checkpoints_the_last_finished_generation(prices, tmp_path, extra, where):
    """Checkpoints an hour apart: Ctrl-C in the progress callback of generation 4, or inside the evaluation of
    generation 5 (a generation in progress), leaves a checkpoint of generation 4, not 0; resuming from it ends exactly
    like the uninterrupted run."""
    cfg = small_config(*extra, "run.checkpoint_every=3600", "evolution.generations=7")
    full = evolve(cfg, prices, tmp_path / "full")
    calls = []

    def interrupting_map(fn, batches):
        calls.append(1)
        if len(calls) == 6:  # generation 5's evaluation
            raise KeyboardInterrupt
        return [fn(b) for b in batches]

    def interrupting_callback(g):
        if g.gen == 4:
            raise KeyboardInterrupt

    kwargs = {"map_fn": interrupting_map} if where == "map" else {"on_generation": interrupting_callback}
    with pytest.raises(KeyboardInterrupt):
        evolve(cfg, prices, tmp_path / "cut", **kwargs)
    cp = RunDir(tmp_path / "cut").read_checkpoint()
    assert cp.generation == 4 and len(cp.logbook) == 5
    assert len((tmp_path / "cut" / "logbook.csv").read_text().splitlines()) == 6
    resumed = evolve(cfg, prices, tmp_path / "cut", resume=True)
    _same(full, resumed)
    np.testing.assert_array_equal(full.fitness, resumed.fitness)
    assert (tmp_path / "full" / "logbook.csv").read_text() == (tmp_path / "cut" / "logbook.csv").read_text()

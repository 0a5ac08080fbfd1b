"""Strategy genes: the config's gene settings, the gene space, and operators that keep every gene valid."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genetic_sizer.config import load_config
from genetic_sizer.errors import ConfigError, GenomeError
from genetic_sizer.evolution.genes import GeneSpace
from genetic_sizer.vocab import normalize_genes

BOTH = {"threshold": [0.01, 0.2], "rebalance": ["W", "M", "Q", "once", 21]}


def test_genes_config_is_normalized_and_stays_out_of_old_fingerprints():
    cfg = load_config(None, ["evolution.genes={rebalance: [M, '5', once], threshold: [0, 0.15]}"])
    # canonical order (threshold first), policies parsed ("5" is every 5 bars)
    assert cfg.evolution.genes == {"threshold": [0.0, 0.15], "rebalance": ["M", 5, "once"]}
    assert list(cfg.evolution.genes) == ["threshold", "rebalance"]
    plain = load_config(None)
    assert plain.evolution.genes is None
    # without genes, the gene settings do not change the fingerprint (runs made before genes keep theirs)
    assert load_config(None, ["evolution.gene_sigma=0.5"]).sha256() == plain.sha256()
    assert cfg.sha256() != plain.sha256()
    with_genes = ["evolution.genes={threshold: [0, 0.1]}"]
    assert (
        load_config(None, [*with_genes, "evolution.gene_sigma=0.5"]).sha256() != load_config(None, with_genes).sha256()
    )
    # round trip through the run directory's config.yaml
    from genetic_sizer.config import RunConfig

    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("genes", "message"),
    [
        (
            "{drift: [0, 1]}",
            r"unknown gene evolution\.genes\.drift; genes are "
            r"\['threshold', 'rebalance', 'leverage', 'shrink', 'vol_target'\]",
        ),
        ("{threshold: 0.05}", r"evolution\.genes\.threshold must be \[lo, hi\]"),
        ("{threshold: [-0.1, 0.2]}", r"evolution\.genes\.threshold lo must be a finite number >= 0, got -0\.1"),
        ("{threshold: [0.3, 0.2]}", r"must be \[lo, hi\] with lo <= hi"),
        ("{threshold: [0, .inf]}", r"threshold hi must be a finite number"),
        ("{rebalance: M}", r"evolution\.genes\.rebalance must be a non-empty list of policies"),
        ("{rebalance: []}", r"evolution\.genes\.rebalance must be a non-empty list"),
        ("{rebalance: [M, m]}", r"evolution\.genes\.rebalance\[1\] must be .* did you mean 'M'"),
        ("{rebalance: [M, W, M]}", r"lists a policy twice"),
        ("{}", r"evolution\.genes must be a mapping of genes to evolve"),
        ("[threshold]", r"evolution\.genes must be a mapping"),
    ],
)
def test_bad_genes_are_named_errors(genes, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"evolution.genes={genes}"])


@pytest.mark.parametrize(("key", "value"), [("gene_mutation_prob", 1.5), ("gene_sigma", 0)])
def test_bad_gene_operator_settings_are_named_errors(key, value):
    with pytest.raises(ConfigError, match=f"evolution.{key}"):
        load_config(None, [f"evolution.{key}={value}"])


def test_decoding_genes_into_strategies():
    space = GeneSpace.create(BOTH, default_rebalance="M")
    assert space.names == ("threshold", "rebalance") and space.n == 2
    genes = np.array([[0.05, 0.0], [0.2, 3.0], [0.01, 4.0]])
    assert space.policies(genes) == ["W", "once", 21]
    np.testing.assert_array_equal(space.thresholds(genes), [0.05, 0.2, 0.01])
    assert space.strategy(genes[1]) == {"rebalance": "once", "threshold": 0.2}
    assert space.describe(genes[0]) == "rebalance W, drift band 0.05"
    assert space.record() == {"threshold": [0.01, 0.2], "rebalance": ["W", "M", "Q", "once", 21]}
    # a gene the config does not evolve keeps the portfolio's setting
    only_band = GeneSpace.create({"threshold": [0, 0.1]}, default_rebalance="Q")
    assert only_band.policies(np.array([[0.05], [0.01]])) == ["Q", "Q"]
    assert only_band.strategy(np.array([0.05])) == {"rebalance": "Q", "threshold": 0.05}
    only_policy = GeneSpace.create({"rebalance": ["W", "M"]}, default_rebalance="Q")
    assert only_policy.thresholds(np.array([[1.0]])) is None
    assert only_policy.describe(np.array([1.0])) == "rebalance M, no drift band"


def test_invalid_genes_are_refused_naming_the_genome():
    space = GeneSpace.create(BOTH)
    good = np.array([[0.05, 1.0], [0.2, 4.0]])
    space.validate_population(good)
    for bad, message in [
        (
            [[0.05, 1.0], [0.25, 1.0]],
            r"genome 1: threshold 0\.25 is outside evolution\.genes\.threshold \[0\.01, 0\.2\]",
        ),
        ([[0.05, 5.0]], r"genome 0: rebalance gene 5\.0 is not the index of one of"),
        ([[0.05, 1.5]], r"rebalance gene 1\.5"),
        ([[np.nan, 1.0]], r"not finite"),
    ]:
        with pytest.raises(GenomeError, match=message):
            space.validate_population(np.array(bad))
    with pytest.raises(GenomeError, match=r"shape \(n, 2\)"):
        space.validate_population(good[:, :1])


def _reflect(x: float, lo: float, hi: float) -> float:
    """Reflection into [lo, hi] at both ends, one number at a time: the reference for GeneSpace.reflect_array."""
    if hi == lo:
        return lo
    span = hi - lo
    y = math.fmod(abs(x - lo), 2 * span)
    return lo + (y if y <= span else 2 * span - y)


def test_reflection_keeps_a_continuous_gene_in_its_range_by_hand():
    space = GeneSpace.create({"threshold": [0.0, 0.2]})
    for x, expected in [(-0.05, 0.05), (0.25, 0.15), (0.45, 0.05), (0.1, 0.1), (-0.4, 0.0), (0.2, 0.2)]:
        assert space.reflect_array(np.array([x]), space.threshold)[0] == pytest.approx(expected, abs=1e-15)
    fixed = GeneSpace.create({"threshold": [0.1, 0.1]})
    assert fixed.reflect_array(np.array([0.3]), fixed.threshold)[0] == 0.1  # a fixed band stays fixed


def test_operators_keep_every_gene_valid_and_are_reproducible():
    space = GeneSpace.create(BOTH)
    rng = np.random.default_rng(0)
    pop = space.sample(rng, 200)
    space.validate_population(pop)
    assert set(pop[:, 1]) == {0.0, 1.0, 2.0, 3.0, 4.0}
    assert pop[:, 0].min() >= 0.01 and pop[:, 0].max() <= 0.2 and pop[:, 0].std() > 0.04
    parents = pop[rng.integers(200, size=1000)]  # 500 random pairs (2i, 2i + 1)
    every = np.ones(500, dtype=bool)
    crossed = space.vary_population(parents, every, rng, alpha=0.5, prob=0.0)
    mutated = space.vary_population(parents, every, rng, alpha=0.5, prob=0.5, sigma=0.3)
    assert crossed is not parents and mutated is not parents  # children never share memory with their parents
    space.validate_population(np.vstack([crossed, mutated]))
    # a choice gene comes from one of the parents; with alpha = 0 a continuous one lies between them
    between = space.vary_population(parents, every, rng, alpha=0.0, prob=0.0)
    for i in range(500):
        a, b = parents[2 * i], parents[2 * i + 1]
        assert {crossed[2 * i, 1], crossed[2 * i + 1, 1]} == {a[1], b[1]}
        assert min(a[0], b[0]) - 1e-15 <= between[2 * i, 0] <= max(a[0], b[0]) + 1e-15
    # a mutation of a choice gene always picks another choice; prob 0 changes nothing
    g = np.tile([0.1, 2.0], (50, 1))
    none = np.zeros(25, dtype=bool)
    assert (space.vary_population(g, none, rng, prob=1.0, sigma=0.1)[:, 1] != 2.0).all()
    np.testing.assert_array_equal(space.vary_population(g, none, rng, prob=0.0, sigma=0.1), g)
    # the same seed gives the same children
    a1 = space.vary_population(parents, every, np.random.default_rng(7), 0.5, 0.5, 0.2)
    a2 = space.vary_population(parents, every, np.random.default_rng(7), 0.5, 0.5, 0.2)
    np.testing.assert_array_equal(a1, a2)


def test_normalize_genes_none_and_canonical():
    assert normalize_genes(None) is None
    assert normalize_genes({"rebalance": ["D"], "threshold": [0, 1]}) == {"threshold": [0.0, 1.0], "rebalance": ["D"]}


# ---- the leverage gene (perp) ---------------------------------------------------------------------------------
PERP = ["portfolio.market=perp", "portfolio.leverage=2"]


def test_leverage_gene_config_is_normalized_and_combines_with_the_other_genes():
    cfg = load_config(None, [*PERP, "evolution.genes={leverage: [1, 4], rebalance: [D, W], threshold: [0, 0.1]}"])
    # canonical order: threshold, rebalance, leverage (the columns of runs without it are what they were)
    assert cfg.evolution.genes == {"threshold": [0.0, 0.1], "rebalance": ["D", "W"], "leverage": [1.0, 4.0]}
    assert list(cfg.evolution.genes) == ["threshold", "rebalance", "leverage"]
    from genetic_sizer.config import RunConfig

    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    alone = load_config(None, [*PERP, "evolution.genes={leverage: [0.5, 3]}"])
    assert alone.evolution.genes == {"leverage": [0.5, 3.0]} and alone.sha256() != load_config(None, PERP).sha256()
    # hi up to the max_leverage of every asset is fine; a fixed range is allowed
    load_config(None, [*PERP, "portfolio.max_leverage=10", "evolution.genes={leverage: [10, 10]}"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["evolution.genes={leverage: [1, 3]}"],
            r"evolution\.genes\.leverage: leverage genes need market: perp \(portfolio\.market is 'spot'",
        ),
        (
            ["evolution.genes={threshold: [0, 0.1], leverage: [1, 3]}"],
            r"leverage genes need market: perp",
        ),
        (
            [*PERP, "evolution.genes={leverage: [0, 3]}"],
            r"evolution\.genes\.leverage lo must be a finite number > 0, got 0",
        ),
        ([*PERP, "evolution.genes={leverage: [-1, 3]}"], r"evolution\.genes\.leverage lo must be a finite number > 0"),
        ([*PERP, "evolution.genes={leverage: [3, 2]}"], r"evolution\.genes\.leverage must be \[lo, hi\] with lo <= hi"),
        ([*PERP, "evolution.genes={leverage: 3}"], r"evolution\.genes\.leverage must be \[lo, hi\], the range of"),
        ([*PERP, "evolution.genes={leverage: [1, .inf]}"], r"evolution\.genes\.leverage hi must be a finite number"),
        ([*PERP, "evolution.genes={leverage: [1, 2000]}"], r"evolution\.genes\.leverage hi must be at most 1000"),
        (
            [*PERP, "portfolio.max_leverage=10", "evolution.genes={leverage: [1, 12]}"],
            r"evolution\.genes\.leverage hi 12 is above portfolio\.max_leverage \(10\).* \[1, 10\] or below",
        ),
        (
            [
                *PERP,
                "data.symbols=[BTC, DOGE]",
                "portfolio.max_leverage={BTC: 40, DOGE: 5, SOL: 3}",
                "evolution.genes={leverage: [1, 8]}",
            ],
            r"evolution\.genes\.leverage hi 8 is above portfolio\.max_leverage of 'DOGE' \(5\)",
        ),
    ],
)
def test_bad_leverage_genes_are_named_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_a_leverage_gene_above_a_coins_max_leverage_is_refused_with_the_data():
    """With a {SYMBOL: x, default: y} table and no data.symbols, the caps are known once the data is: the evaluator
    (built before any run directory exists) refuses a range above the smallest cap of the data's coins, naming it;
    a coin the table names but the data lacks does not count."""
    from genetic_sizer.data.synthetic import perp_market
    from genetic_sizer.evolution.evaluator import Evaluator

    prices = perp_market(("BTC", "ETH", "SOL"), hours=24 * 5, seed=1).prices
    table = "portfolio.max_leverage={BTC: 40, ETH: 25, DOGE: 2, default: 20}"
    ok = load_config(None, [*PERP, table, "evolution.genes={leverage: [1, 20]}"])
    Evaluator.from_config(prices, ok)
    bad = load_config(None, [*PERP, table, "evolution.genes={leverage: [1, 21]}"])
    with pytest.raises(
        ConfigError, match=r"evolution\.genes\.leverage hi 21 is above portfolio\.max_leverage of 'SOL' \(20\)"
    ):
        Evaluator.from_config(prices, bad)
    space = GeneSpace.create({"leverage": [1, 3]})
    with pytest.raises(ConfigError, match="leverage genes need market: perp"):
        Evaluator(prices, ("sharpe",), genes=space)


def test_decoding_leverage_genes():
    space = GeneSpace.create({"threshold": [0, 0.1], "leverage": [1, 5]}, default_rebalance="D", default_leverage=2)
    assert space.names == ("threshold", "leverage") and space.n == 2 and space.leverage == (1.0, 5.0)
    genes = np.array([[0.05, 1.5], [0.0, 5.0]])
    np.testing.assert_array_equal(space.leverages(genes), [1.5, 5.0])
    assert space.policies(genes) == ["D", "D"]
    assert space.strategy(genes[0]) == {"rebalance": "D", "threshold": 0.05, "leverage": 1.5}
    assert space.describe(genes[1]) == "rebalance D, drift band 0, leverage 5x"
    assert space.record() == {"threshold": [0.0, 0.1], "leverage": [1.0, 5.0]}
    # without the gene there is no leverage in the strategy: the portfolio's applies
    plain = GeneSpace.create({"threshold": [0, 0.1]}, default_leverage=2)
    assert plain.leverages(genes[:, :1]) is None and "leverage" not in plain.strategy(genes[0, :1])
    for bad, message in [
        ([[0.05, 0.9]], r"genome 0: leverage 0\.9 is outside evolution\.genes\.leverage \[1, 5\]"),
        ([[0.05, 5.5]], r"leverage 5\.5 is outside"),
        ([[0.2, 2.0]], r"threshold 0\.2 is outside"),
    ]:
        with pytest.raises(GenomeError, match=message):
            space.validate_population(np.array(bad))


def test_reflection_keeps_the_leverage_in_its_range_by_hand():
    space = GeneSpace.create({"threshold": [0.0, 0.2], "leverage": [1.0, 5.0]})
    for x, expected in [(0.5, 1.5), (5.5, 4.5), (9.5, 1.5), (3.0, 3.0), (-7.0, 1.0), (1.0, 1.0), (5.0, 5.0)]:
        assert space.reflect_array(np.array([x]), space.leverage)[0] == pytest.approx(expected, abs=1e-15)
    assert space.reflect_array(np.array([0.25]), space.threshold)[0] == pytest.approx(0.15, abs=1e-15)


def test_leverage_operators_keep_every_gene_valid_and_are_reproducible():
    space = GeneSpace.create({"threshold": [0.0, 0.1], "rebalance": ["D", "W", "once"], "leverage": [1.0, 5.0]})
    rng = np.random.default_rng(0)
    pop = space.sample(rng, 300)
    space.validate_population(pop)
    lev = pop[:, 2]
    assert lev.min() >= 1.0 and lev.max() <= 5.0 and abs(lev.mean() - 3.0) < 0.2 and lev.std() > 1.0
    parents = pop[rng.integers(300, size=1000)]  # 500 random pairs (2i, 2i + 1)
    every = np.ones(500, dtype=bool)
    crossed = space.vary_population(parents, every, rng, alpha=0.5, prob=0.0)
    mutated = space.vary_population(parents, every, rng, alpha=0.5, prob=0.7, sigma=0.5)
    between = space.vary_population(parents, every, rng, alpha=0.0, prob=0.0)  # alpha 0: between the parents
    lo = np.minimum(parents[0::2, 2], parents[1::2, 2])
    hi = np.maximum(parents[0::2, 2], parents[1::2, 2])
    for d in (between[0::2, 2], between[1::2, 2]):
        assert (lo - 1e-12 <= d).all() and (d <= hi + 1e-12).all()
    children = np.vstack([crossed, mutated])
    space.validate_population(children)
    assert children[:, 2].min() < 1.2 and children[:, 2].max() > 4.8  # reflection reaches both ends
    # a mutation moves the leverage by a Gaussian step of sigma x its range, reflected; prob 0 changes nothing
    g = np.tile([0.05, 1.0, 3.0], (400, 1))
    none = np.zeros(200, dtype=bool)
    steps = space.vary_population(g, none, np.random.default_rng(1), prob=1.0, sigma=0.05)[:, 2] - 3.0
    assert abs(steps.std() - 0.05 * 4.0) < 0.03 and np.abs(steps).max() < 2.0
    np.testing.assert_array_equal(space.vary_population(g, none, rng, prob=0.0, sigma=0.1), g)
    a1 = space.vary_population(parents, every, np.random.default_rng(3), 0.5, 0.5, 0.2)
    a2 = space.vary_population(parents, every, np.random.default_rng(3), 0.5, 0.5, 0.2)
    np.testing.assert_array_equal(a1, a2)


# ---- the population-level operator -------------------------------------------------------------------------
ALL3 = {"threshold": [0.01, 0.2], "rebalance": ["W", "M", "Q", "once"], "leverage": [1.0, 5.0]}


def test_reflect_array_is_reflect_element_by_element():
    for spec, bounds in ((BOTH, (0.01, 0.2)), ({"threshold": [0.1, 0.1]}, (0.1, 0.1)), (ALL3, (1.0, 5.0))):
        space = GeneSpace.create(spec)
        x = np.random.default_rng(1).normal(0.1, 3.0, 2000)
        x[:3] = [bounds[0], bounds[1], -0.0]
        np.testing.assert_array_equal(space.reflect_array(x, bounds), [_reflect(v, *bounds) for v in x])


def test_population_variation_keeps_the_per_gene_semantics():
    """Pairs (2i, 2i + 1) cross where ``cross[i]``: a choice gene comes from the pair (swapped or not, both children
    together), with alpha = 0 a continuous gene lies between the parents, and rows of pairs that do not cross keep
    their genes when nothing mutates. Mutation with prob 1 moves every choice gene to another choice and every
    continuous gene by a Gaussian step of sigma times its range (reflected); prob 0 changes nothing. Every gene stays
    valid and the same seed gives the same children."""
    space = GeneSpace.create(ALL3)
    rng = np.random.default_rng(0)
    parents = space.sample(rng, 401)  # odd: the last row has no partner
    cross = rng.random(200) < 0.5
    kids = space.vary_population(parents, cross, np.random.default_rng(5), alpha=0.0, prob=0.0, sigma=0.2)
    space.validate_population(kids)
    assert kids is not parents and kids.shape == parents.shape
    for i in range(200):
        a, b = parents[2 * i], parents[2 * i + 1]
        c, d = kids[2 * i], kids[2 * i + 1]
        if not cross[i]:
            np.testing.assert_array_equal([c, d], [a, b])
            continue
        assert (c[1], d[1]) in {(a[1], b[1]), (b[1], a[1])}
        for j in (0, 2):
            lo, hi = min(a[j], b[j]), max(a[j], b[j])
            assert lo - 1e-15 <= c[j] <= hi + 1e-15 and lo - 1e-15 <= d[j] <= hi + 1e-15
    np.testing.assert_array_equal(kids[400], parents[400])
    swapped = [
        kids[2 * i, 1] != parents[2 * i, 1] for i in np.flatnonzero(cross) if parents[2 * i, 1] != parents[2 * i + 1, 1]
    ]
    assert 0.3 < np.mean(swapped) < 0.7  # a choice is swapped with probability 1/2
    # alpha > 0: children outside the parents' segment, reflected into the range
    wide = space.vary_population(parents, np.ones(200, bool), np.random.default_rng(6), alpha=0.5, prob=0.0)
    space.validate_population(wide)
    # mutation
    none = np.zeros(200, bool)
    np.testing.assert_array_equal(space.vary_population(parents, none, np.random.default_rng(2), prob=0.0), parents)
    moved = space.vary_population(parents, none, np.random.default_rng(2), prob=1.0, sigma=0.01)
    space.validate_population(moved)
    assert (moved[:, 1] != parents[:, 1]).all()
    inside = (parents[:, 0] > 0.05) & (parents[:, 0] < 0.16)  # far from the bounds: no reflection at 0.01 * range
    step = (moved[:, 0] - parents[:, 0])[inside] / (0.01 * 0.19)
    assert abs(step.std() - 1.0) < 0.15 and abs(step.mean()) < 0.2
    some = space.vary_population(parents, none, np.random.default_rng(3), prob=0.3, sigma=0.1)
    assert 0.2 < (some != parents).mean() < 0.4
    a = space.vary_population(parents, cross, np.random.default_rng(9), alpha=0.5, prob=0.4, sigma=0.2)
    b = space.vary_population(parents, cross, np.random.default_rng(9), alpha=0.5, prob=0.4, sigma=0.2)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="cross"):
        space.vary_population(parents, np.ones(3, bool), rng)


def test_population_variation_of_one_choice_and_without_genes():
    """A single-choice gene never changes; a space evolving only a band draws nothing for a policy."""
    one = GeneSpace.create({"rebalance": ["M"]})
    g = np.zeros((6, 1))
    np.testing.assert_array_equal(one.vary_population(g, np.ones(3, bool), np.random.default_rng(0), prob=1.0), g)
    band = GeneSpace.create({"threshold": [0.0, 0.2]})
    r1, r2 = np.random.default_rng(4), np.random.default_rng(4)
    band.vary_population(np.full((6, 1), 0.1), np.array([True, False, True]), r1, prob=0.5)
    r2.uniform(size=(2, 2)), r2.random((6, 1)), r2.normal(size=6)  # blend factors, coins, steps: nothing else
    assert r1.random() == r2.random()


def test_vectorized_gene_validation_names_the_first_bad_genome():
    space = GeneSpace.create(ALL3)
    good = space.sample(np.random.default_rng(0), 5)
    for col, value, message in [
        (0, 0.3, "threshold 0.3 is outside"),
        (1, 1.5, "rebalance gene 1.5 is not the index"),
        (1, 4.0, "rebalance gene 4.0 is not the index"),
        (1, -1.0, "rebalance gene -1.0"),
        (2, 0.5, "leverage 0.5 is outside"),
        (2, np.nan, "not finite"),
    ]:
        bad = good.copy()
        bad[3, col] = value
        bad[4, col] = value
        with pytest.raises(GenomeError, match=f"genome 3: .*{message}"):
            space.validate_population(bad)
    np.testing.assert_array_equal(space.validate_population(good), good)

"""Strategy genes: the config's gene settings, the gene space, and operators that keep every gene valid."""

from __future__ import annotations

import numpy as np
import pytest

from genetic_sizer.config import load_config
from genetic_sizer.errors import ConfigError, GenomeError
from genetic_sizer.genes import GeneSpace, normalize_genes

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
        ("{leverage: [1, 3]}", r"evolution\.genes\.leverage: a leverage gene is not available yet: the perp account"),
        ("{drift: [0, 1]}", r"unknown gene evolution\.genes\.drift; genes are \['threshold', 'rebalance'\]"),
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


def test_reflection_keeps_a_continuous_gene_in_its_range_by_hand():
    space = GeneSpace.create({"threshold": [0.0, 0.2]})
    for x, expected in [(-0.05, 0.05), (0.25, 0.15), (0.45, 0.05), (0.1, 0.1), (-0.4, 0.0), (0.2, 0.2)]:
        assert space._reflect(x) == pytest.approx(expected, abs=1e-15)
    assert GeneSpace.create({"threshold": [0.1, 0.1]})._reflect(0.3) == 0.1  # a fixed band stays fixed


def test_operators_keep_every_gene_valid_and_are_reproducible():
    space = GeneSpace.create(BOTH)
    rng = np.random.default_rng(0)
    pop = space.sample(rng, 200)
    space.validate_population(pop)
    assert set(pop[:, 1]) == {0.0, 1.0, 2.0, 3.0, 4.0}
    assert pop[:, 0].min() >= 0.01 and pop[:, 0].max() <= 0.2 and pop[:, 0].std() > 0.04
    children = []
    for _ in range(500):
        a, b = pop[rng.integers(200)], pop[rng.integers(200)]
        c1, c2 = space.crossover(a, b, rng, alpha=0.5)
        m1 = space.mutate(c1, rng, prob=0.5, sigma=0.3)
        children += [c1, c2, m1]
        assert c1 is not a and c2 is not b  # children never share memory with their parents
        # a choice gene comes from one of the parents; with alpha = 0 a continuous one lies between them
        assert {c1[1], c2[1]} == {a[1], b[1]}
        d1, _ = space.crossover(a, b, rng, alpha=0.0)
        assert min(a[0], b[0]) - 1e-15 <= d1[0] <= max(a[0], b[0]) + 1e-15
    space.validate_population(np.array(children))
    # a mutation of a choice gene always picks another choice; prob 0 changes nothing
    g = np.array([0.1, 2.0])
    assert all(space.mutate(g, rng, prob=1.0, sigma=0.1)[1] != 2.0 for _ in range(50))
    np.testing.assert_array_equal(space.mutate(g, rng, prob=0.0, sigma=0.1), g)
    # the same seed gives the same children
    r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(20):
        a1 = space.mutate(space.crossover(pop[0], pop[1], r1)[0], r1, 0.5, 0.2)
        a2 = space.mutate(space.crossover(pop[0], pop[1], r2)[0], r2, 0.5, 0.2)
        np.testing.assert_array_equal(a1, a2)


def test_normalize_genes_none_and_canonical():
    assert normalize_genes(None) is None
    assert normalize_genes({"rebalance": ["D"], "threshold": [0, 1]}) == {"threshold": [0.0, 1.0], "rebalance": ["D"]}

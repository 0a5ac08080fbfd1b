"""Genome spaces and operators: every child is valid for any feasible bounds (hypothesis), nothing is shared."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from genetic_sizer.errors import ConfigError, GenomeError
from genetic_sizer.evolution.operators import (
    flip_mutation,
    gaussian_mutation,
    line_crossover,
    mutate,
    shift_mutation,
    transfer_mutation,
)
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.evolution.variation import diversity

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def spaces(draw, direction=None):
    direction = direction or draw(st.sampled_from(["longonly", "longshort"]))
    n = draw(st.integers(2, 12))
    symbols = [f"S{k}" for k in range(n)]
    lows, highs = [], []
    for _ in range(n):
        if direction == "longonly":
            lo = draw(st.sampled_from([0.0, 0.0, draw(st.floats(0.0, 0.4))]))
        else:
            lo = draw(st.sampled_from([-1.0, -0.5, 0.0, draw(st.floats(-1.0, 0.4))]))
        hi = draw(st.sampled_from([1.0, max(lo, 0.3), draw(st.floats(lo, 1.0))]))
        lows.append(lo)
        highs.append(max(hi, lo))
    try:
        return GenomeSpace.create(
            symbols, direction, dict(zip(symbols, lows, strict=True)), dict(zip(symbols, highs, strict=True))
        )
    except ConfigError:
        assume(False)


def _assert_valid(space: GenomeSpace, w: np.ndarray) -> None:
    assert isinstance(w, np.ndarray) and w.dtype == np.float64
    assert space.violation(w) is None, space.violation(w)
    if space.longonly:
        assert (w >= 0).all()  # no negative zeros creeping in as -1e-17
        assert abs(w.sum() - 1.0) <= 1e-12
    else:
        assert abs(np.abs(w).sum() - 1.0) <= 1e-12


@PROPERTY
@given(space=spaces(), seed=st.integers(0, 2**32 - 1))
def test_sampled_genomes_are_valid(space, seed):
    rng = np.random.default_rng(seed)
    for w in space.sample(rng, 8):
        _assert_valid(space, w)


@PROPERTY
@given(space=spaces(), seed=st.integers(0, 2**32 - 1), alpha=st.sampled_from([0.0, 0.5, 2.0]))
def test_crossover_children_are_valid_new_arrays(space, seed, alpha):
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng, 2)
    a0, b0 = a.copy(), b.copy()
    c1, c2 = line_crossover(space, a, b, rng, alpha)
    for c in (c1, c2):
        _assert_valid(space, c)
        assert not np.shares_memory(c, a) and not np.shares_memory(c, b)
    np.testing.assert_array_equal(a, a0)  # parents untouched
    np.testing.assert_array_equal(b, b0)


@PROPERTY
@given(space=spaces(), seed=st.integers(0, 2**32 - 1), sigma=st.sampled_from([1e-3, 0.05, 0.5]))
def test_every_mutation_yields_a_valid_new_array(space, seed, sigma):
    rng = np.random.default_rng(seed)
    (w,) = space.sample(rng, 1)
    w0 = w.copy()
    children = [
        gaussian_mutation(space, w, rng, sigma),
        transfer_mutation(space, w, rng),
        flip_mutation(space, w, rng),
        shift_mutation(space, w, rng, sigma),
        mutate(space, w, rng, sigma=sigma, shift_sigma=sigma),
    ]
    for c in children:
        _assert_valid(space, c)
        assert not np.shares_memory(c, w)
    np.testing.assert_array_equal(w, w0)


@PROPERTY
@given(space=spaces(), seed=st.integers(0, 2**32 - 1))
def test_long_chains_of_operators_stay_valid(space, seed):
    """Operators applied to their own children (as generations do) never drift out of the space."""
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng, 2)
    for _ in range(60):
        a, b = line_crossover(space, a, b, rng, 0.5)
        a = mutate(space, a, rng, sigma=0.1, p_shift=0.3, p_transfer=0.4, p_flip=0.2)
        b = mutate(space, b, rng, sigma=0.02, shift_sigma=0.5)
    _assert_valid(space, a)
    _assert_valid(space, b)


def test_operators_reach_the_boundary_exactly():
    """Sparse optima live on the boundary: cut steps and transfers leave exact zeros, not 1e-17 dust."""
    space = GenomeSpace.create([f"S{k}" for k in range(6)])
    rng = np.random.default_rng(0)
    zeros = 0
    for _ in range(200):
        (w,) = space.sample(rng, 1)
        zeros += int((transfer_mutation(space, w, rng, p_all=1.0) == 0.0).sum())
        a, b = line_crossover(space, w, space.sample(rng, 1)[0], rng, alpha=3.0)
        zeros += int((a == 0.0).sum() + (b == 0.0).sum())
    assert zeros >= 200  # every full transfer empties its donor


def test_vertex_and_pinned_assets():
    space = GenomeSpace.create(["A", "B", "C"], "longonly", {"A": 0.2, "default": 0.0}, {"A": 0.2, "default": 1.0})
    rng = np.random.default_rng(1)
    w = np.array([0.2, 0.8, 0.0])
    for _ in range(50):
        w = mutate(space, w, rng, sigma=0.3, shift_sigma=0.3)
        assert w[0] == 0.2  # pinned by min = max
        _assert_valid(space, w)
    one_hot = GenomeSpace.create(["A", "B"])
    c = gaussian_mutation(one_hot, np.array([1.0, 0.0]), rng, 0.5)
    _assert_valid(one_hot, c)


def test_shift_scales_the_other_assets_in_proportion():
    space = GenomeSpace.create(["A", "B", "C", "D"])
    w = np.array([0.1, 0.2, 0.3, 0.4])
    child = shift_mutation(space, w, np.random.default_rng(2), 0.2)
    moved = np.flatnonzero(np.abs(child / w - (child / w)[0]) > 1e-12)
    others = np.setdiff1d(np.arange(4), moved if moved.size else [0])
    ratio = child[others] / w[others]  # every asset but the shifted one keeps its share of the rest
    assert np.allclose(ratio, ratio[0], rtol=1e-12) and not np.isclose(ratio[0], 1.0)
    assert child.sum() == pytest.approx(1.0, abs=1e-15)
    capped = GenomeSpace.create(["A", "B", "C", "D"], max_weight=0.45)
    for seed in range(50):  # large steps are cut where the first bound binds
        c = shift_mutation(capped, w, np.random.default_rng(seed), 5.0)
        _assert_valid(capped, c)


def test_flip_keeps_gross_exposure():
    space = GenomeSpace.create(["A", "B", "C"], "longshort", -0.6, 0.6)
    rng = np.random.default_rng(3)
    w = np.array([0.5, -0.3, 0.2])
    flipped = flip_mutation(space, w, rng)
    assert np.abs(flipped).sum() == pytest.approx(1.0, abs=1e-15)
    assert (np.sign(flipped) != np.sign(w)).sum() == 1
    longonly = GenomeSpace.create(["A", "B"])
    np.testing.assert_array_equal(flip_mutation(longonly, np.array([0.5, 0.5]), rng), [0.5, 0.5])


def test_longshort_sampling_opens_shorts():
    space = GenomeSpace.create([f"S{k}" for k in range(10)], "longshort", -0.5, 0.5)
    w = space.sample(np.random.default_rng(7), 200)
    assert (w < 0).mean() == pytest.approx(0.5, abs=0.08)
    assert np.allclose(np.abs(w).sum(axis=1), 1.0, atol=1e-12)


def test_unconstrained_sampling_is_uniform_on_the_simplex():
    """Stick-breaking with Beta(1, k) in random order is Dirichlet(1): each weight has mean 1/n and
    variance (n-1)/(n^2 (n+1))."""
    n = 5
    w = GenomeSpace.create([f"S{k}" for k in range(n)]).sample(np.random.default_rng(0), 20_000)
    assert w.mean(axis=0) == pytest.approx(np.full(n, 1 / n), abs=0.005)
    assert w.var(axis=0) == pytest.approx(np.full(n, (n - 1) / (n**2 * (n + 1))), rel=0.05)


def test_same_seed_same_children():
    space = GenomeSpace.create([f"S{k}" for k in range(8)], "longshort", -0.4, 0.4)

    def run(seed):
        rng = np.random.default_rng(seed)
        a, b = space.sample(rng, 2)
        for _ in range(20):
            a, b = line_crossover(space, a, b, rng)
            a = mutate(space, a, rng)
        return a, b

    np.testing.assert_array_equal(run(5)[0], run(5)[0])
    assert not np.array_equal(run(5)[0], run(6)[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(max_weight=0.2), "4 assets x max_weight sum to 0.8 < 1"),
        (dict(min_weight=0.3), "4 assets x min_weight sum to 1.2 > 1"),
        (dict(min_weight=-0.1), "long-only weights are >= 0"),
        (dict(min_weight=0.5, max_weight=0.4), "min_weight 0.5 > portfolio.max_weight 0.4"),
        (
            dict(direction="longshort", min_weight=-0.2, max_weight=0.2),
            "largest gross exposure the bounds allow is 0.8",
        ),
        (dict(direction="longshort", min_weight=0.3, max_weight=0.5), "force a gross exposure of at least 1.2"),
        (dict(direction="sideways"), "portfolio.direction must be one of"),
        (dict(max_weight={"ZZZ": 0.5}), "unknown symbol(s) ['ZZZ']"),
        (dict(max_weight=1.5), "a weight is within [-1, 1]"),
        (dict(max_weight=float("nan")), "must be a finite number"),
    ],
)
def test_infeasible_or_bad_bounds_say_why(kwargs, message):
    with pytest.raises(ConfigError) as exc:
        GenomeSpace.create(["A", "B", "C", "D"], **kwargs)
    assert message in str(exc.value)


def test_validate_names_asset_and_value():
    space = GenomeSpace.create(["A", "B", "C"], max_weight=0.6)
    with pytest.raises(GenomeError, match=r"weight of 'A' is 0.7, above its max_weight 0.6"):
        space.validate([0.7, 0.2, 0.1])
    with pytest.raises(GenomeError, match=r"sum of weights is 0.9"):
        space.validate([0.5, 0.3, 0.1])
    with pytest.raises(GenomeError, match=r"genome 1: weight of 'C' is nan"):
        space.validate_population([[0.4, 0.3, 0.3], [0.4, 0.3, np.nan]])
    assert space.validate([0.4, 0.3, 0.3]).dtype == np.float64


def test_validate_population_agrees_with_each_rows_violation():
    """The whole-array test of a valid population and the per-row masks behind an error agree with ``violation``,
    row by row: a population passes exactly when no row has a violation, and the error names the first row that
    has one (bounds, within TOL of them, the budget, NaN, max_assets, min_position, a group cap)."""
    space = GenomeSpace.create(
        ["A", "B", "C", "D", "E"], max_weight=0.6, max_assets=4, min_position=0.05, groups={"g": ["A", "B"]},
        max_group_weight={"g": 0.7},
    )  # fmt: skip
    rng = np.random.default_rng(3)
    good = space.sample(rng, 40)
    assert space.validate_population(good) is good
    tol = 1e-9
    broken = [
        [0.6 + 0.5 * tol, 0.0, 0.4 - 0.5 * tol, 0.0, 0.0],  # within TOL above max_weight: valid
        [0.6 + 3 * tol, 0.0, 0.4 - 3 * tol, 0.0, 0.0],  # above it
        [0.3, 0.2, 0.2, 0.2, 0.1],  # five assets held, max_assets 4
        [0.5, 0.0, 0.47, 0.03, 0.0],  # a position below min_position
        [0.4, 0.35, 0.25, 0.0, 0.0],  # group g at 0.75 > 0.7
        [0.4, 0.3, 0.2, 0.0, 0.0],  # sums to 0.9
        [0.4, 0.3, np.nan, 0.3, 0.0],
        [-0.0, 0.3, 0.3, 0.4, 0.0],  # -0.0 is not held: valid
    ]
    for k, row in enumerate(broken):
        pop = np.vstack([good[:7], [row], good[7:]])
        why = space.violation(np.array(row))
        if why is None:
            assert space.validate_population(pop) is pop, k
        else:
            with pytest.raises(GenomeError) as exc:
                space.validate_population(pop)
            assert str(exc.value) == f"genome 7: {why}", k


def test_diversity_matches_pairwise_definition():
    w = np.random.default_rng(0).dirichlet(np.ones(4), size=9)
    pairs = [0.5 * np.abs(w[i] - w[j]).sum() for i in range(9) for j in range(i + 1, 9)]
    assert diversity(w) == pytest.approx(np.mean(pairs), rel=1e-12)
    assert diversity(np.tile(w[:1], (5, 1))) == 0.0
    assert diversity(np.eye(3)) == pytest.approx(1.0)


def test_deap_numpy_individuals_are_copied_safely():
    """DEAP's onemax_numpy lesson: a clone must not share memory with its original."""
    from genetic_sizer.evolution.selection import _deap_classes

    Individual = _deap_classes((True,))
    ind = Individual(np.array([0.5, 0.5]))
    ind.fitness.values = (1.0,)
    clone = copy.deepcopy(ind)
    assert not np.shares_memory(clone, ind)
    clone[0] = 0.0
    assert ind[0] == 0.5 and clone.fitness.values == (1.0,)
    space = GenomeSpace.create(["A", "B"])
    a, b = line_crossover(
        space, np.asarray(ind), np.asarray(Individual(np.array([0.2, 0.8]))), np.random.default_rng(0)
    )
    assert not np.shares_memory(a, ind) and not np.shares_memory(b, ind)

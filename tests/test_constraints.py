"""Constraints a convex optimizer cannot take: every genome valid under all of them at once, exact feasibility."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from genetic_sizer.errors import ConfigError, GenomeError
from genetic_sizer.evolution.constraints import Constraints
from genetic_sizer.evolution.operators import (
    add_mutation,
    drop_mutation,
    flip_mutation,
    gaussian_mutation,
    line_crossover,
    mutate,
    shift_mutation,
    support_mutation,
    swap_mutation,
    transfer_mutation,
)
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.vocab import DEFAULT_MIN_POSITION

PROPERTY = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
CAPS = [0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 1.0]


@st.composite
def constrained_spaces(draw, direction=None, max_n=10):
    """Random bounds and a random combination of every constraint; infeasible draws are rejected."""
    direction = direction or draw(st.sampled_from(["longonly", "longshort"]))
    n = draw(st.integers(3, max_n))
    symbols = [f"S{k}" for k in range(n)]
    lows, highs = [], []
    for _ in range(n):
        if direction == "longonly":
            lo = draw(st.sampled_from([0.0, 0.0, 0.0, 0.05, 0.15]))
        else:
            lo = draw(st.sampled_from([-1.0, -0.5, -0.3, 0.0, 0.0, 0.05]))
        hi = draw(st.sampled_from([h for h in CAPS if h >= lo] + [max(lo, 0.0)]))
        lows.append(lo)
        highs.append(max(hi, lo))
    kwargs = {
        "max_assets": draw(st.one_of(st.none(), st.integers(1, n))),
        "min_position": draw(st.sampled_from([0.0, DEFAULT_MIN_POSITION, 0.03, 0.1, 0.2])),
    }
    n_groups = draw(st.integers(0, 3))
    if n_groups:
        groups, gmax, gmin = {}, {}, {}
        for g in range(n_groups):
            groups[f"G{g}"] = draw(st.lists(st.sampled_from(symbols), min_size=1, max_size=n, unique=True))
            if draw(st.booleans()):
                gmax[f"G{g}"] = draw(st.sampled_from([0.2, 0.3, 0.5, 0.7]))
            if draw(st.booleans()):
                gmin[f"G{g}"] = draw(st.sampled_from([0.05, 0.1, 0.3]))
        kwargs.update(groups=groups, max_group_weight=gmax or None, min_group_weight=gmin or None)
    if direction == "longshort":
        net = draw(st.sampled_from([None, None, (0.0, 0.0), (-0.3, 0.3), (0.2, 0.6), (-1.0, -0.2)]))
        kwargs["net_exposure"] = net
        kwargs["max_gross_long"] = draw(st.sampled_from([None, None, 0.7, 0.5]))
        kwargs["max_gross_short"] = draw(st.sampled_from([None, None, 0.6, 0.3]))
    try:
        return GenomeSpace.create(
            symbols,
            direction,
            dict(zip(symbols, lows, strict=True)),
            dict(zip(symbols, highs, strict=True)),
            **kwargs,
        )
    except ConfigError:
        assume(False)


def _assert_valid(space: GenomeSpace, w: np.ndarray) -> None:
    assert isinstance(w, np.ndarray) and w.dtype == np.float64
    assert space.violation(w) is None, space.violation(w)
    held = w != 0
    assert held.sum() <= space.max_assets
    assert (np.abs(w[held]) >= space.min_position - 1e-12).all()  # no dust, ever
    assert abs(np.abs(w).sum() - 1.0) <= 1e-12
    if space.longonly:
        assert (w >= 0).all()


# ---- validity by construction ------------------------------------------------------------------------
@PROPERTY
@given(space=constrained_spaces(), seed=st.integers(0, 2**32 - 1))
def test_sampled_genomes_satisfy_every_constraint(space, seed):
    for w in space.sample(np.random.default_rng(seed), 8):
        _assert_valid(space, w)


@PROPERTY
@given(space=constrained_spaces(), seed=st.integers(0, 2**32 - 1), alpha=st.sampled_from([0.0, 0.5, 2.0]))
def test_crossover_children_satisfy_every_constraint(space, seed, alpha):
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng, 2)
    a0, b0 = a.copy(), b.copy()
    for c in line_crossover(space, a, b, rng, alpha):
        _assert_valid(space, c)
        assert not np.shares_memory(c, a) and not np.shares_memory(c, b)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


@PROPERTY
@given(space=constrained_spaces(), seed=st.integers(0, 2**32 - 1), sigma=st.sampled_from([1e-3, 0.05, 0.5]))
def test_every_mutation_satisfies_every_constraint(space, seed, sigma):
    rng = np.random.default_rng(seed)
    (w,) = space.sample(rng, 1)
    w0 = w.copy()
    children = [
        gaussian_mutation(space, w, rng, sigma),
        transfer_mutation(space, w, rng),
        flip_mutation(space, w, rng),
        shift_mutation(space, w, rng, sigma),
        add_mutation(space, w, rng),
        drop_mutation(space, w, rng),
        swap_mutation(space, w, rng),
        support_mutation(space, w, rng),
        mutate(space, w, rng, sigma=sigma, shift_sigma=sigma),
    ]
    for c in children:
        _assert_valid(space, c)
        assert not np.shares_memory(c, w)
    np.testing.assert_array_equal(w, w0)


@PROPERTY
@given(space=constrained_spaces(), seed=st.integers(0, 2**32 - 1))
def test_long_chains_of_operators_satisfy_every_constraint(space, seed):
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng, 2)
    for _ in range(60):
        a, b = line_crossover(space, a, b, rng, 0.5)
        a = mutate(space, a, rng, sigma=0.1, p_shift=0.3, p_transfer=0.2, p_flip=0.2, p_support=0.3)
        b = mutate(space, b, rng, sigma=0.02, shift_sigma=0.5, p_support=0.4)
    _assert_valid(space, a)
    _assert_valid(space, b)


@PROPERTY
@given(space=constrained_spaces(direction="longshort"), seed=st.integers(0, 2**32 - 1))
def test_long_short_chains_keep_exposure_bounds(space, seed):
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng, 2)
    cons = space.constraints
    for _ in range(40):
        a, b = line_crossover(space, a, b, rng)
        a = mutate(space, a, rng, p_flip=0.3, p_support=0.3, p_shift=0.2, p_transfer=0.1)
        for w in (a, b):
            long, short = w[w > 0].sum(), -w[w < 0].sum()
            assert cons.long_lo - 1e-9 <= long <= cons.long_hi + 1e-9
            assert long + short == pytest.approx(1.0, abs=1e-12)
            if cons.net_exposure is not None:
                assert cons.net_exposure[0] - 1e-9 <= w.sum() <= cons.net_exposure[1] + 1e-9


def test_same_seed_same_children_under_constraints():
    space = GenomeSpace.create(
        [f"S{k}" for k in range(10)],
        "longshort",
        -0.4,
        0.4,
        max_assets=6,
        min_position=0.05,
        groups={"a": ["S0", "S1", "S2"], "b": ["S2", "S3", "S4", "S5"]},
        max_group_weight={"a": 0.5, "b": 0.6},
        net_exposure=[0, 0],
    )

    def run(seed):
        rng = np.random.default_rng(seed)
        a, b = space.sample(rng, 2)
        for _ in range(30):
            a, b = line_crossover(space, a, b, rng)
            a = mutate(space, a, rng, p_support=0.3)
        return a, b

    np.testing.assert_array_equal(run(5)[0], run(5)[0])
    np.testing.assert_array_equal(run(5)[1], run(5)[1])
    assert not np.array_equal(run(5)[0], run(6)[0])
    a, _ = run(5)
    assert a.sum() == pytest.approx(0.0, abs=1e-12)  # market neutral


# ---- the support operators ---------------------------------------------------------------------------
def test_support_operators_add_drop_and_swap_exactly():
    space = GenomeSpace.create([f"S{k}" for k in range(6)], max_assets=3, min_position=0.1)
    w = np.array([0.5, 0.3, 0.0, 0.0, 0.2, 0.0])
    rng = np.random.default_rng(0)
    for _ in range(50):
        added = add_mutation(space, np.array([0.6, 0.4, 0, 0, 0, 0.0]), rng)
        assert np.count_nonzero(added) == 3 and added[2:].max() >= 0.1
        _assert_valid(space, added)
        np.testing.assert_array_equal(add_mutation(space, w, rng), w)  # 3 positions: max_assets reached
        dropped = drop_mutation(space, w, rng)
        assert np.count_nonzero(dropped) == 2
        _assert_valid(space, dropped)
        swapped = swap_mutation(space, w, rng)
        assert np.count_nonzero(swapped) == 3 and not np.array_equal(swapped != 0, w != 0)
        # the asset that came in took the weight of the one that left; the others are untouched
        new = np.flatnonzero((swapped != 0) & (w == 0))[0]
        gone = np.flatnonzero((swapped == 0) & (w != 0))[0]
        assert swapped[new] == w[gone]
        keep = (swapped != 0) & (w != 0)
        np.testing.assert_array_equal(swapped[keep], w[keep])


def test_transfer_to_a_new_asset_at_max_assets_is_a_swap():
    """With max_assets reached, opening a position is only valid where another closes: the line search finds
    the point ``t = m_i`` (donor empty) and nothing in between."""
    space = GenomeSpace.create(["A", "B", "C", "D"], max_assets=2, min_position=0.1)
    w = np.array([0.7, 0.3, 0.0, 0.0])
    seen = set()
    for seed in range(200):
        c = transfer_mutation(space, w, np.random.default_rng(seed), p_all=0.0)
        _assert_valid(space, c)
        assert np.count_nonzero(c) <= 2
        if c[2] or c[3]:  # a new position: the donor emptied into it, both weights exactly as they were
            assert sorted(c[c != 0].tolist()) == [0.3, 0.7]
        seen.add(tuple(np.flatnonzero(c)))
    assert len(seen) > 2  # weights moved between A and B, and swaps opened C or D


def test_min_position_zero_is_the_plain_simplex():
    """min_position 0 turns the rule off: tiny weights are positions again, the space is the bounded simplex."""
    space = GenomeSpace.create(["A", "B", "C"], min_position=0.0)
    assert space.violation(np.array([0.5, 0.5 - 1e-6, 1e-6])) is None
    dusty = GenomeSpace.create(["A", "B", "C"])
    assert "under min_position 0.001" in dusty.violation(np.array([0.5, 0.5 - 1e-6, 1e-6]))


def test_default_space_never_makes_dust():
    """Today's default champion held 15 weights in (0, 4e-4); with the default min_position every weight is
    0 or at least 0.001, and the operators still reach exact zeros."""
    space = GenomeSpace.create([f"S{k}" for k in range(20)])
    assert space.min_position == DEFAULT_MIN_POSITION == 0.001
    rng = np.random.default_rng(0)
    pop = list(space.sample(rng, 20))
    zeros = 0
    for _ in range(100):
        i, j = rng.integers(20, size=2)
        a, b = line_crossover(space, pop[i], pop[j], rng, 0.5)
        pop[i], pop[j] = mutate(space, a, rng), mutate(space, b, rng)
        for w in (pop[i], pop[j]):
            _assert_valid(space, w)
            zeros += int((w == 0).sum())
    assert zeros > 0


def test_sampling_covers_every_support_size():
    space = GenomeSpace.create([f"S{k}" for k in range(12)], max_assets=4, min_position=0.1)
    assert (space.feasibility.k_min, space.feasibility.k_max) == (1, 4)
    w = space.sample(np.random.default_rng(1), 400)
    sizes = np.count_nonzero(w, axis=1)
    assert set(sizes) == {1, 2, 3, 4}
    assert all(abs((sizes == k).mean() - 0.25) < 0.07 for k in (1, 2, 3, 4))
    held = w != 0
    assert (held.mean(axis=0) > 0.1).all()  # every asset appears
    # max_assets 2 with max_weight 0.5: both positions at exactly 0.5
    tight = GenomeSpace.create([f"S{k}" for k in range(5)], max_weight=0.5, max_assets=2)
    for v in tight.sample(np.random.default_rng(2), 20):
        assert sorted(v[v != 0]) == [0.5, 0.5]


def test_crossover_mixes_supports_under_max_assets():
    """Parents holding different assets: children take assets from both, never more than max_assets."""
    space = GenomeSpace.create([f"S{k}" for k in range(8)], max_assets=3, min_position=0.1)
    a = np.array([0.5, 0.3, 0.2, 0, 0, 0, 0, 0.0])
    b = np.array([0, 0, 0, 0.4, 0.4, 0.2, 0, 0.0])
    rng = np.random.default_rng(3)
    mixed = 0
    for _ in range(200):
        for c in line_crossover(space, a, b, rng):
            _assert_valid(space, c)
            mixed += int((c[:3] != 0).any() and (c[3:6] != 0).any())
    assert mixed > 20


# ---- exact feasibility -------------------------------------------------------------------------------
def _brute_force_feasible(space_args: dict) -> bool:
    """Independent reference: enumerate every (zero / long / short) pattern within max_assets and solve the
    linear feasibility problem of each with its held boxes, the sum and the rows."""
    from scipy.optimize import linprog

    symbols, direction = space_args["symbols"], space_args["direction"]
    lo = np.array([space_args["min_weight"][s] for s in symbols])
    hi = np.array([space_args["max_weight"][s] for s in symbols])
    cons = Constraints.create(symbols, direction, **space_args["constraints"])
    n, m = len(symbols), cons.min_position
    states = (0, 1) if direction == "longonly" else (0, 1, -1)
    for pattern in itertools.product(states, repeat=n):
        p = np.array(pattern)
        if np.count_nonzero(p) > cons.k or np.count_nonzero(p) == 0:
            continue
        if ((p == 0) & ~((lo <= 0) & (hi >= 0))).any():
            continue
        held = np.flatnonzero(p)
        blo = np.where(p[held] > 0, np.maximum(np.maximum(lo[held], 0), m), np.maximum(np.maximum(-hi[held], 0), m))
        bhi = np.where(p[held] > 0, np.maximum(hi[held], 0), np.maximum(-lo[held], 0))
        if (blo > bhi).any() or (bhi <= 0).any():
            continue
        R, rlo, rhi = cons.rows(np.where(p > 0, 1.0, -1.0))
        A = R[:, held]
        res = linprog(
            np.zeros(len(held)),
            A_ub=np.vstack((A, -A)) if len(A) else None,
            b_ub=np.concatenate((rhi, -rlo)) if len(A) else None,
            A_eq=np.ones((1, len(held))),
            b_eq=[1.0],
            bounds=list(zip(blo, bhi, strict=True)),
            method="highs",
        )
        if res.status == 0:
            return True
    return False


@st.composite
def small_configs(draw):
    direction = draw(st.sampled_from(["longonly", "longshort"]))
    n = draw(st.integers(2, 4 if direction == "longshort" else 6))
    symbols = [f"S{k}" for k in range(n)]
    choices = [0.0, 0.0, 0.1, 0.3] if direction == "longonly" else [-0.6, -0.3, 0.0, 0.0, 0.2]
    lo = {s: draw(st.sampled_from(choices)) for s in symbols}
    hi = {s: max(lo[s], draw(st.sampled_from([0.2, 0.3, 0.5, 0.6, 1.0]))) for s in symbols}
    cons = {
        "max_assets": draw(st.one_of(st.none(), st.integers(1, n))),
        "min_position": draw(st.sampled_from([0.0, 0.1, 0.25, 0.35])),
    }
    if draw(st.booleans()):
        members = draw(st.lists(st.sampled_from(symbols), min_size=1, max_size=n, unique=True))
        cons["groups"] = {"g": members, "h": draw(st.lists(st.sampled_from(symbols), min_size=1, unique=True))}
        cons["max_group_weight"] = {"g": draw(st.sampled_from([0.2, 0.4, 0.6]))}
        cons["min_group_weight"] = {"h": draw(st.sampled_from([0.0, 0.3, 0.5]))}
    if direction == "longshort" and draw(st.booleans()):
        cons["net_exposure"] = draw(st.sampled_from([(0.0, 0.0), (0.2, 0.4), (-0.5, 0.5)]))
    return {"symbols": symbols, "direction": direction, "min_weight": lo, "max_weight": hi, "constraints": cons}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=small_configs())
def test_feasibility_check_is_exact(args):
    """create() accepts a configuration exactly when some portfolio satisfies it (brute force), and then every
    sampled genome is valid."""
    expected = _brute_force_feasible(args)
    try:
        space = GenomeSpace.create(
            args["symbols"], args["direction"], args["min_weight"], args["max_weight"], **args["constraints"]
        )
    except ConfigError as exc:
        assert not expected, f"rejected a feasible configuration: {exc}"
        return
    assert expected, "accepted an infeasible configuration"
    for w in space.sample(np.random.default_rng(0), 5):
        _assert_valid(space, w)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(max_assets=3, max_weight=0.3),
            "portfolio.max_assets 3 with portfolio.max_weight cannot reach a sum of 1: 3 x 0.3 = 0.9 < 1",
        ),
        (
            dict(min_position=0.4, max_weight=0.45),
            "portfolio.min_position 0.4 allows at most 2 positions (2 x 0.4 <= 1), and with portfolio.max_weight "
            "they reach a sum of at most 0.9 < 1",
        ),
        (
            dict(min_weight={"S0": 0.1, "S1": 0.1, "S2": 0.1, "default": 0.0}, max_assets=2),
            "force positions in 3 assets (S0, S1, S2) but portfolio.max_assets is 2",
        ),
        (
            dict(min_weight={"S0": 0.05, "default": 0.0}, max_weight={"S0": 0.08, "default": 1.0}, min_position=0.1),
            "'S0' must hold a position (its bounds exclude 0) but no position fits",
        ),
        (
            dict(groups={"tech": ["S0", "S1"]}, min_group_weight={"tech": 0.7}, max_weight=0.3),
            "portfolio.min_group_weight.tech is 0.7 but its assets (S0, S1) can hold at most 0.6",
        ),
        (
            dict(groups={"a": ["S0", "S1"], "b": ["S2", "S3"]}, max_group_weight=0.3, max_weight=0.2),
            "portfolio.max_group_weight (a 0.3, b 0.3) with the ungrouped assets' max_weight allows a gross of "
            "at most 0.8 < 1",
        ),
        (
            # each alone is fine: 2 assets reach 1 with max_weight 0.5 and the group cap 0.5 leaves room, but the
            # two assets that can carry 0.5 are S0, S1, both in the capped group
            dict(
                max_weight={"S0": 0.5, "S1": 0.5, "default": 0.3},
                max_assets=2,
                groups={"big": ["S0", "S1"]},
                max_group_weight={"big": 0.5},
            ),
            "no portfolio satisfies portfolio.max_assets 2; portfolio.max_group_weight.big 0.5 together",
        ),
        (dict(groups={"a": ["S0", "ZZZ"]}), "portfolio.groups.a: unknown symbol(s) ['ZZZ']"),
        (dict(max_group_weight={"a": 0.5}), "portfolio.max_group_weight needs portfolio.groups"),
        (dict(groups={"a": ["S0"]}, max_group_weight={"b": 0.5}), "unknown group(s) ['b']"),
        (dict(groups={"a": ["S0"]}, max_group_weight=0.2, min_group_weight=0.3), "min_group_weight.a 0.3 >"),
        (dict(max_assets=0), "portfolio.max_assets must be a positive integer"),
        (dict(min_position=-0.1), "portfolio.min_position must be a finite number in [0, 1]"),
        (dict(net_exposure=[0, 0]), "portfolio.net_exposure applies to direction: longshort"),
    ],
)
def test_infeasible_constraints_say_which_keys_conflict(kwargs, message):
    with pytest.raises(ConfigError) as exc:
        GenomeSpace.create([f"S{k}" for k in range(5)], **kwargs)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(net_exposure=[0.5, 1.0], max_gross_long=0.6),
            "need a gross long exposure in [0.75, 0.6], which is empty",
        ),
        (dict(net_exposure=[0.3, 0.1]), "portfolio.net_exposure is [0.3, 0.1]: lo > hi"),
        (
            dict(net_exposure=[0.8, 1.0], max_weight={"S0": 0.2, "S1": 0.2, "default": 0.0}),
            "need a gross long exposure of at least 0.9, but the assets that may be long (max_weight > 0) hold at most "
            "0.4",
        ),
        (
            dict(net_exposure=[0, 0], max_assets=1, min_weight=-1, max_weight=1),
            "no portfolio satisfies portfolio.max_assets 1; portfolio.net_exposure [0, 0] together",
        ),
    ],
)
def test_infeasible_long_short_exposures_say_why(kwargs, message):
    kwargs = {"min_weight": -0.5, "max_weight": 0.5, **kwargs}
    with pytest.raises(ConfigError) as exc:
        GenomeSpace.create([f"S{k}" for k in range(4)], "longshort", **kwargs)
    assert message in str(exc.value)


def test_market_neutral_space_and_its_genomes():
    space = GenomeSpace.create(
        [f"S{k}" for k in range(6)], "longshort", -0.5, 0.5, net_exposure=[0, 0], max_gross_short=0.5
    )
    w = space.sample(np.random.default_rng(0), 50)
    np.testing.assert_allclose(w.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.abs(w).sum(axis=1), 1.0, atol=1e-12)
    assert (w > 0).any(axis=1).all() and (w < 0).any(axis=1).all()
    assert len({tuple(np.sign(x)) for x in w}) > 5  # the walk explores sign patterns


def test_validate_names_the_broken_constraint():
    space = GenomeSpace.create(
        ["A", "B", "C", "D"],
        max_assets=3,
        min_position=0.05,
        groups={"ab": ["A", "B"]},
        max_group_weight={"ab": 0.6},
    )
    with pytest.raises(GenomeError, match=r"weight of 'D' is 0.01, under min_position 0.05"):
        space.validate([0.3, 0.3, 0.39, 0.01])
    with pytest.raises(GenomeError, match=r"holds 4 assets, more than max_assets 3"):
        space.validate([0.2, 0.2, 0.3, 0.3])
    with pytest.raises(GenomeError, match=r"group 'ab' holds 0.7 \(sum of \|w\| over A, B\), above max_group_weight"):
        space.validate([0.4, 0.3, 0.3, 0.0])
    with pytest.raises(GenomeError, match=r"genome 1: holds 4 assets"):
        space.validate_population([[0.3, 0.3, 0.4, 0.0], [0.2, 0.2, 0.3, 0.3]])
    ls = GenomeSpace.create(["A", "B", "C"], "longshort", -1, 1, net_exposure=[-0.1, 0.1], max_gross_short=0.45)
    with pytest.raises(GenomeError, match=r"net exposure \(sum of w\) is 0.25, outside net_exposure \[-0.1, 0.1\]"):
        ls.validate([0.625, -0.375, 0.0])
    with pytest.raises(GenomeError, match=r"gross short exposure is 0.5, above max_gross_short 0.45"):
        ls.validate([0.5, -0.3, -0.2])


def test_constraints_record_round_trip():
    cons = Constraints.create(
        ["A", "B", "C"],
        "longshort",
        max_assets=2,
        min_position=0.05,
        groups={"x": ["A", "C"]},
        max_group_weight=0.6,
        net_exposure=[0, 0.2],
        max_gross_short=0.5,
    )
    rec = cons.record()
    assert rec["max_group_weight"] == {"x": 0.6} and rec["net_exposure"] == [0.0, 0.2]
    back = Constraints.from_record(["A", "B", "C"], "longshort", rec)
    assert back.record() == rec
    w = np.array([0.5, -0.5, 0.0])
    assert back.violation(w) is None and cons.violation_of({"A": 0.5, "B": -0.5}) is None
    assert "unknown" not in (cons.violation_of({"A": 0.55, "B": -0.45}) or "")
    assert "net exposure" in cons.violation_of({"B": 0.7, "A": -0.3})
    assert "do not know" in cons.violation_of({"A": 0.5, "ZZZ": -0.5})
    legacy = Constraints.from_record(["A", "B"], "longonly", {"direction": "longonly"})  # a version 1 file
    assert legacy.min_position == 0.0 and legacy.max_assets is None and legacy.violation([1 - 1e-7, 1e-7]) is None


def test_classical_seeds_are_refitted_on_their_support_not_dropped_for_solver_noise():
    """skfolio's minimum variance and maximum Sharpe leave weights of ~1e-7 where the optimum holds nothing;
    under the default min_position they are refitted on their support (min_position as lower bound) instead of
    being left out as dust, and stay within a hair of the unconstrained optimum."""
    from genetic_sizer.data.loaders import load_default
    from genetic_sizer.evolution.evaluator import Evaluator
    from genetic_sizer.evolution.seeding import classical_allocations

    prices = load_default(start="2015-01-01", end="2022-12-31")
    space = GenomeSpace.create(prices.symbols)
    allocations, skipped = classical_allocations(prices, space)
    assert skipped == {"market_cap": "no market-cap file (allocators.market_caps)"}  # issue 26: needs a cap file
    assert {"min_variance", "max_sharpe"} <= set(allocations)
    for name in ("min_variance", "max_sharpe"):
        w = allocations[name]
        _assert_valid(space, w)
        assert 2 <= np.count_nonzero(w) < len(w)
    loose = GenomeSpace.create(prices.symbols, min_position=0.0)
    raw, _ = classical_allocations(prices, loose)
    assert ((raw["max_sharpe"] > 0) & (raw["max_sharpe"] < 1e-3)).any()  # the noise the refit removes
    ev = Evaluator(prices, ["sharpe"], rebalance="D", fees=0.0)
    refit, plain = ev(np.stack([allocations["max_sharpe"], raw["max_sharpe"]]))[:, 0]
    assert refit == pytest.approx(plain, rel=1e-5)
    capped, why = classical_allocations(prices, GenomeSpace.create(prices.symbols, max_assets=3))
    assert why["equal_weight"] == "holds 20 assets, more than max_assets 3"
    for w in capped.values():
        _assert_valid(GenomeSpace.create(prices.symbols, max_assets=3), w)

"""Compiled variation (genetic_sizer.evolution.vary_nb) against the Python operators on the same random streams.

The main proof: ``vary_population`` with the compiled kernel gives the children the Python operators give, row for
row, on random feasible spaces with every kind of constraint; and every child is valid. Plus the generator itself
(the Python stream draws the kernel's numbers; its draws have the distributions they claim) and determinism.
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genetic_sizer.errors import GenomeError
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.evolution.variation import vary_population
from genetic_sizer.evolution.vary_nb import RowStream, _draw_mixed, _draw_streams, _pdot, _psum
from tests.test_constraints import constrained_spaces
from tests.test_genome import spaces

PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
PARAMS = st.fixed_dictionaries(
    {
        "alpha": st.sampled_from([0.0, 0.5, 2.0]),
        "sigma": st.sampled_from([1e-3, 0.05, 0.5]),
        "shift_sigma": st.sampled_from([0.02, 0.1, 1.0]),
        "p_shift": st.sampled_from([0.0, 0.3, 0.6]),
        "p_transfer": st.sampled_from([0.0, 0.2]),
        "p_flip": st.sampled_from([0.0, 0.1, 0.4]),
        "p_support": st.sampled_from([0.0, 0.1, 0.5]),
    }
)


def _population(space: GenomeSpace, seed: int, n: int):
    rng = np.random.default_rng(seed)
    w = space.sample(rng, n)
    cross = rng.random(n // 2) < 0.7
    mutating = rng.random(n) < 0.8
    seeds = rng.integers(0, 2**64, n, dtype=np.uint64)
    return w, cross, mutating, seeds


def _assert_same_children(space, w, cross, mutating, seeds, **params):
    fast = vary_population(space, w, cross, mutating, seeds, **params)
    ref = vary_population(space, w, cross, mutating, seeds, engine="python", **params)
    assert fast.shape == ref.shape == w.shape and fast.dtype == np.float64
    np.testing.assert_array_equal(fast != 0, ref != 0)  # the same support ...
    np.testing.assert_array_equal(np.sign(fast), np.sign(ref))  # ... and signs
    np.testing.assert_allclose(fast, ref, rtol=0.0, atol=1e-12)
    return fast


def _assert_valid_rows(space, children):
    for c in children:
        assert space.violation(c) is None, space.violation(c)
        held = c != 0
        assert held.sum() <= space.max_assets
        assert (np.abs(c[held]) >= space.min_position - 1e-12).all()
        assert abs(np.abs(c).sum() - 1.0) <= 1e-12
        if space.longonly:
            assert (c >= 0).all()


# ---- the random stream --------------------------------------------------------------------------------
def test_row_stream_draws_the_kernels_numbers():
    seeds = np.array([0, 1, 2, 12345, 2**63, 2**64 - 1], dtype=np.uint64)
    raw = _draw_streams(seeds, 200)
    for j, seed in enumerate(seeds):
        stream = RowStream(int(seed))
        assert [stream.next_u64() for _ in range(200)] == [int(x) for x in raw[j]]
    compiled = _draw_mixed(987, 400)
    stream = RowStream(987)
    for q in range(400):
        row = [stream.random(), stream.uniform(-0.5, 1.5), stream.normal(0.0, 0.3), stream.integers(7)]
        row += list(stream.permutation(5))
        np.testing.assert_array_equal(np.array(row, dtype=np.float64), compiled[q])


def test_row_stream_is_xoshiro256starstar_seeded_by_splitmix64():
    """Published values: splitmix64's first output from state 0 is 0xE220A8397B1DCDAF, and xoshiro256** from the
    state (1, 2, 3, 4) starts 11520, 0, 1509978240, 1215971899390074240."""
    stream = RowStream(0)
    assert stream._s[0] == 0xE220A8397B1DCDAF
    stream._s = [1, 2, 3, 4]
    assert [stream.next_u64() for _ in range(4)] == [11520, 0, 1509978240, 1215971899390074240]
    assert RowStream(2**64 + 7)._s == RowStream(7)._s  # the seed is taken modulo 2**64


def test_row_stream_distributions():
    stream = RowStream(2024)
    u = stream.random(20_000)
    assert ((u >= 0) & (u < 1)).all()
    assert u.mean() == pytest.approx(0.5, abs=0.01) and u.var() == pytest.approx(1 / 12, rel=0.03)
    z = stream.normal(1.0, 2.0, 20_000)
    assert z.mean() == pytest.approx(1.0, abs=0.05) and z.std() == pytest.approx(2.0, rel=0.02)
    assert np.mean(np.abs(z - 1.0) < 2.0) == pytest.approx(0.6827, abs=0.01)  # one sigma
    counts = np.bincount([stream.integers(5) for _ in range(10_000)], minlength=5)
    assert counts.min() > 1850 and counts.max() < 2150
    assert all(3 <= stream.integers(3, 6) < 6 for _ in range(100))
    firsts = np.bincount([stream.permutation(4)[0] for _ in range(4000)], minlength=4)
    assert firsts.min() > 880 and firsts.max() < 1120
    assert sorted(stream.permutation(np.array([3, 1, 4]))) == [1, 3, 4]
    assert stream.choice(np.array([7])) == 7
    with pytest.raises(ValueError, match="empty range"):
        stream.integers(0)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 16, 20, 50, 127, 128, 129, 255, 300, 1000, 1033])
def test_pairwise_sums_are_numpys(n):
    rng = np.random.default_rng(n)
    a = rng.normal(size=n) * 10.0 ** rng.integers(-8, 8, size=n)
    b = rng.normal(size=n)
    assert _psum(a, 0, n) == a.sum()
    assert _pdot(a, b, 0, n) == (a * b).sum()


# ---- the compiled operators are the Python operators ------------------------------------------------------
def test_kernel_tolerances_are_genomes():
    from genetic_sizer.evolution import operators, vary_nb

    assert (vary_nb.SNAP, vary_nb.ROW_TOL, vary_nb.FLAT, vary_nb.RANK_TOL) == (
        operators._SNAP,
        operators._ROW_TOL,
        operators._FLAT,
        operators._RANK_TOL,
    )
    transfer_default = inspect.signature(operators.transfer_mutation).parameters["p_all"].default
    assert vary_nb.P_ALL == transfer_default


def test_importing_genome_does_not_import_numba():
    modules = "genetic_sizer.evolution.space, genetic_sizer.evolution.operators, genetic_sizer.evolution.variation"
    code = f"import sys, {modules}, genetic_sizer.runs.champion; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@PROPERTY
@given(space=constrained_spaces(), seed=st.integers(0, 2**32 - 1), params=PARAMS)
def test_compiled_variation_equals_python_under_constraints(space, seed, params):
    w, cross, mutating, seeds = _population(space, seed, 12)
    children = _assert_same_children(space, w, cross, mutating, seeds, **params)
    _assert_valid_rows(space, children)


@PROPERTY
@given(space=spaces(), seed=st.integers(0, 2**32 - 1), params=PARAMS)
def test_compiled_variation_equals_python_for_bounds(space, seed, params):
    w, cross, mutating, seeds = _population(space, seed, 9)  # odd: the last row never crosses
    children = _assert_same_children(space, w, cross, mutating, seeds, **params)
    _assert_valid_rows(space, children)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(space=constrained_spaces(max_n=10), seed=st.integers(0, 2**32 - 1))
def test_compiled_generations_stay_equal_and_valid(space, seed):
    """Variation applied to its own children (as generations do): both engines follow the same path."""
    rng = np.random.default_rng(seed)
    w = space.sample(rng, 8)
    for _ in range(15):
        cross = rng.random(4) < 0.8
        mutating = rng.random(8) < 0.9
        seeds = rng.integers(0, 2**64, 8, dtype=np.uint64)
        w = _assert_same_children(space, w, cross, mutating, seeds, p_support=0.3, p_flip=0.2)
        _assert_valid_rows(space, w)
        w = w[rng.permutation(8)]


_GROUPS = {"a": ["S0", "S1", "S2", "S3", "S4"], "b": ["S3", "S4", "S5", "S6", "S7", "S8", "S9"]}


@pytest.mark.parametrize(
    ("n_assets", "kwargs"),
    [
        (20, dict(direction="longonly")),
        (20, dict(direction="longonly", max_weight=0.15, max_assets=10, min_position=0.03)),
        (
            20,
            dict(
                direction="longshort",
                min_weight=-0.3,
                max_weight=0.3,
                max_assets=12,
                min_position=0.02,
                groups=_GROUPS,
                max_group_weight={"a": 0.4, "b": 0.5},
                min_group_weight={"b": 0.1},
                net_exposure=[-0.2, 0.2],
            ),
        ),
        # 150 assets: sums of more than 128 terms split pairwise
        (150, dict(direction="longonly")),
        (150, dict(direction="longonly", max_weight=0.05, max_assets=60, min_position=0.005)),
        (
            150,
            dict(
                direction="longshort",
                min_weight=-0.05,
                max_weight=0.05,
                min_position=0.002,
                groups=_GROUPS,
                max_group_weight={"a": 0.1},
                min_group_weight={"b": 0.05},
                max_gross_long=0.6,
            ),
        ),
    ],
)
def test_compiled_variation_equals_python_on_large_spaces(n_assets, kwargs):
    space = GenomeSpace.create([f"S{k}" for k in range(n_assets)], **kwargs)
    w, cross, mutating, seeds = _population(space, n_assets, 40)
    for params in (dict(), dict(p_support=0.5, p_flip=0.3, alpha=2.0, sigma=0.3)):
        children = _assert_same_children(space, w, cross, mutating, seeds, **params)
        _assert_valid_rows(space, children)


# ---- semantics and determinism ------------------------------------------------------------------------
def _constrained_space():
    return GenomeSpace.create(
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


def test_same_seeds_same_children_serial_or_parallel_for_any_thread_count():
    space = _constrained_space()
    w, cross, mutating, seeds = _population(space, 3, 64)
    threads = numba.get_num_threads()
    try:
        runs = []
        for t in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(t)
            for parallel in (False, True):
                runs.append(vary_population(space, w, cross, mutating, seeds, parallel=parallel))
    finally:
        numba.set_num_threads(threads)
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])  # bit for bit
    other = vary_population(space, w, cross, mutating, seeds + np.uint64(1))
    assert not np.array_equal(other, runs[0])


def test_a_child_depends_only_on_its_parents_and_its_seed():
    space = _constrained_space()
    w, cross, mutating, seeds = _population(space, 4, 20)
    full = vary_population(space, w, cross, mutating, seeds)
    part = vary_population(space, w[6:12], cross[3:6], mutating[6:12], seeds[6:12])
    np.testing.assert_array_equal(part, full[6:12])
    flipped = np.arange(20).reshape(10, 2)[::-1].ravel()  # the pairs in reverse order
    again = vary_population(space, w[flipped], cross[::-1], mutating[flipped], seeds[flipped])
    np.testing.assert_array_equal(again, full[flipped])


def test_rows_that_neither_cross_nor_mutate_are_copied():
    space = _constrained_space()
    w, _, _, seeds = _population(space, 5, 10)
    out = vary_population(space, w, np.zeros(5, dtype=bool), np.zeros(10, dtype=bool), seeds)
    np.testing.assert_array_equal(out, w)
    assert not np.shares_memory(out, w)
    moved = vary_population(space, w, np.ones(5, dtype=bool), np.ones(10, dtype=bool), seeds)
    assert (np.abs(moved - w).max(axis=1) > 0).mean() > 0.5  # variation does vary


def test_bad_arguments_say_what_is_wrong():
    space = GenomeSpace.create(["A", "B", "C"])
    w = np.array([[0.2, 0.3, 0.5], [0.5, 0.5, 0.0]])
    with pytest.raises(ValueError, match="cross"):
        vary_population(space, w, np.ones(2, dtype=bool), np.ones(2, dtype=bool), np.zeros(2, dtype=np.uint64))
    ok = (np.ones(1, dtype=bool), np.ones(2, dtype=bool), np.zeros(2, dtype=np.uint64))
    with pytest.raises(GenomeError, match=r"weights must be \(n, 3\) for this space's 3 assets, got shape \(2, 2\)"):
        vary_population(space, w[:, :2], *ok)  # the kernel would read past the space's arrays
    with pytest.raises(GenomeError, match=r"got shape \(3,\)"):
        vary_population(space, w[0], *ok)
    with pytest.raises(GenomeError, match="NaN or infinity"):
        vary_population(space, np.where(w == 0.0, np.nan, w), *ok)
    with pytest.raises(GenomeError, match="seeds must be non-negative integers"):
        vary_population(space, w, *ok[:2], np.array([1, -1]))
    with pytest.raises(GenomeError, match="seeds must be non-negative integers"):
        vary_population(space, w, *ok[:2], np.array([1.0, 2.0]))
    with pytest.raises(GenomeError, match=r"alpha must be a finite number in \[0, inf\], got nan"):
        vary_population(space, w, *ok, alpha=float("nan"))
    with pytest.raises(GenomeError, match=r"p_flip must be a finite number in \[0, 1\], got 1.5"):
        vary_population(space, w, *ok, p_flip=1.5)
    assert vary_population(space, w, *ok[:2], np.array([3, 4])).shape == (2, 3)  # signed but non-negative seeds
    with pytest.raises(ValueError, match="engine must be one of"):
        vary_population(
            space, w, np.ones(1, dtype=bool), np.ones(2, dtype=bool), np.zeros(2, dtype=np.uint64), engine="fortran"
        )

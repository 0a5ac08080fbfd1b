"""The loop's bookkeeping, made cheaper per generation (issue 27, the loop's overhead), against plain references: the
logbook row's statistics against numpy, the hall of fame's update against DEAP's ``HallOfFame`` (members and the count
it returns), the trials' keys against ``hashlib``, and the compiled variation's row functions without reference
counting."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from genetic_sizer.config import load_config
from genetic_sizer.data.loaders import load_from_config
from genetic_sizer.evolution.loop import Evolution
from genetic_sizer.evolution.result import _mean_std, generation_record
from genetic_sizer.evolution.selection import HallOfFame, _deap_classes, _same_genome
from genetic_sizer.evolution.trials import _keys
from genetic_sizer.evolution.variation import diversity

SMALL = [
    "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY, MSFT, WMT]",
    "data.start=2021-01-01",
    "data.end=2022-06-30",
    "evolution.population=24",
    "evolution.generations=2",
]


def _bits(x) -> bytes:
    return np.float64(x).tobytes()


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 100, 129, 1000, 4099])
def test_mean_and_std_are_numpys_bit_for_bit(n):
    """Contiguous and strided columns (a column of a 3-objective fitness), magnitudes from 1e-9 to 1e9, signed zeros."""
    rng = np.random.default_rng(n)
    for scale in (1e-9, 1.0, 1e9):
        f = rng.standard_normal((n, 3)) * scale + rng.choice([0.0, 5.0 * scale])
        f[rng.random(f.shape) < 0.1] = -0.0
        for col in (f[:, 0], f[:, 1].copy(), f[:, 2]):
            mean, std = _mean_std(col)
            assert (_bits(mean), _bits(std)) == (_bits(col.mean()), _bits(col.std()))
    zeros = np.full(5, -0.0)
    assert (_bits(_mean_std(zeros)[0]), _bits(_mean_std(zeros)[1])) == (_bits(zeros.mean()), _bits(zeros.std()))


@pytest.mark.parametrize("objective", ["sharpe", "[sharpe, max_drawdown, turnover]"])
def test_generation_record_is_numpy_over_the_live_genomes(objective):
    """The logbook row of a population with wiped-out genomes: each objective's best, mean and standard deviation are
    numpy's over the live rows only, the wiped-out count and the diversity as computed directly."""
    cfg = load_config(None, [*SMALL, f"objective={objective}"])
    run = Evolution(cfg, load_from_config(cfg.data))
    rng = np.random.default_rng(5)
    n = 24
    run.weights = np.asarray(run.space.sample(rng, n), dtype=np.float64)
    run.fitness = rng.standard_normal((n, run.n_obj))
    wiped = np.zeros(n, dtype=bool)
    wiped[[3, 10, 11]] = True
    run.fitness[wiped] = run.evaluator.wiped_out_fitness
    run.gen, run.evaluations = 4, 77
    rec = generation_record(run, 20)
    assert (rec["gen"], rec["nevals"], rec["evaluations"], rec["wiped_out"]) == (4, 20, 77, 3)
    live = run.fitness[~wiped]
    for j, name in enumerate(cfg.objective):
        col = live[:, j]
        best = col.max() if run.maximize[j] else col.min()
        assert _bits(rec[f"{name}_best"]) == _bits(best)
        assert _bits(rec[f"{name}_mean"]) == _bits(col.mean())
        assert _bits(rec[f"{name}_std"]) == _bits(col.std())
    assert rec["diversity"] == diversity(run.weights)
    run.fitness[:] = run.evaluator.wiped_out_fitness  # every genome wiped out: the statistics are NaN
    rec = generation_record(run, 20)
    assert rec["wiped_out"] == n and all(np.isnan(rec[f"{cfg.objective[0]}_{s}"]) for s in ("best", "mean", "std"))


@pytest.mark.parametrize("maximize", [True, False], ids=["max", "min"])
def test_hall_of_fame_update_returns_deaps_newcomers_and_keeps_its_rows(maximize):
    """Populations like the loop's (an elite offered again, children improving, ties, clones, the same weights with
    other genes, 0.0 and -0.0): after every update the members, their genes and fitness equal DEAP's ``HallOfFame``,
    the returned count is the number of DEAP's members that came from this update's rows, and each member's bytes are
    those of the row it came from (a -0.0 kept as given)."""
    from deap import tools

    Individual = _deap_classes((maximize,))
    sign = 1.0 if maximize else -1.0
    rng = np.random.default_rng(3 + maximize)
    reference = tools.HallOfFame(10, similar=_same_genome)
    ours = HallOfFame(10, 6, 1, maximize)
    pop_w = rng.dirichlet(np.ones(6), size=40)
    pop_g = rng.integers(0, 3, (40, 1)).astype(float)
    pop_f = rng.integers(0, 6, (40, 1)).astype(float) * sign
    for step in range(40):
        if step:  # an elite of two offered again, then children: some clones, some better, some with other genes
            order = np.argsort(-sign * pop_f[:, 0], kind="stable")[:2]
            child = rng.integers(0, 40, 38)
            w, g, f = pop_w[child].copy(), pop_g[child].copy(), pop_f[child].copy()
            fresh = rng.random(38) < 0.6
            w[fresh] = rng.dirichlet(np.ones(6), size=int(fresh.sum()))
            f[fresh] = (rng.integers(0, 6, (int(fresh.sum()), 1)) + step / 4) * sign
            g[rng.random(38) < 0.1] = 5.0
            w[rng.random(38) < 0.3, 0] *= -1.0
            pop_w = np.vstack([pop_w[order], w])
            pop_g = np.vstack([pop_g[order], g])
            pop_f = np.vstack([pop_f[order], f])
        inds = []
        for k in range(40):
            ind = Individual(pop_w[k].copy())
            ind.genes = pop_g[k].copy()
            ind.fitness.values = (float(pop_f[k, 0]),)
            ind.step = step  # DEAP keeps deep copies: a member from this update carries its step
            inds.append(ind)
        reference.update(inds)
        entered = ours.update(pop_w, pop_g, pop_f)
        assert entered == sum(m.step == step for m in reference)
        assert ours.weights.tobytes() == np.array([np.asarray(m) for m in reference]).tobytes()  # -0.0 kept
        np.testing.assert_array_equal(ours.weights, np.array([np.asarray(m) for m in reference]))
        np.testing.assert_array_equal(ours.genes, np.array([m.genes for m in reference]))
        np.testing.assert_array_equal(ours.fitness[:, 0], [m.fitness.values[0] for m in reference])


@pytest.mark.parametrize("width", [1, 3, 15, 16, 17, 20, 31, 32, 33, 150])
def test_trial_keys_are_hashlibs_blake2b_of_each_row(width):
    """The compiled keys against ``hashlib.blake2b(row.tobytes(), digest_size=8)`` read little-endian, row by row:
    widths either side of BLAKE2b's 16-word blocks, zeros of both signs, NaN, infinities, a Fortran-ordered array."""
    rng = np.random.default_rng(width)
    rows = rng.standard_normal((9, width))
    rows[0] = 0.0
    rows[1] = -0.0
    rows[2, ::2] = np.nan
    rows[3, -1] = np.inf
    for a in (rows, np.asfortranarray(rows)):
        expected = [int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little") for r in rows]
        assert _keys(a) == expected
    assert _keys(rows[:0]) == []


def test_variation_row_functions_run_without_reference_counting():
    """Every compiled function that works on a row is compiled without Numba's reference counting (an atomic
    increment and decrement per array argument and view: 40% of the kernel's time), and the pairwise sum's long
    branch, which allocates, with it (explicitly: a callee otherwise inherits its caller's setting)."""
    from numba.core.registry import CPUDispatcher

    from genetic_sizer.evolution import vary_nb

    allocating = {"_tree", "_workspace", "_vary_serial", "_vary_parallel", "_draw_streams", "_draw_mixed", "row_keys"}
    kernels = {name: f for name, f in vars(vary_nb).items() if isinstance(f, CPUDispatcher)}
    assert {"_vary_row", "_line", "_child", "_mutate", "_pdot", "_psum", "_block", "_b2_compress"} <= set(kernels)
    for name, f in kernels.items():
        nrt = f.targetoptions.get("_nrt")
        assert (nrt is not False) if name in allocating else (nrt is False), name
    assert kernels["_tree"].targetoptions["_nrt"] is True


def test_row_seeds_are_the_generators_full_range_integers():
    """The loop draws each row's seed as one raw 64-bit output (``bit_generator.random_raw``): the numbers and the state
    after them are those of ``integers(0, 2**64, n, dtype=np.uint64)``, whatever was drawn before (ints, floats)."""
    for seed in range(50):
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        for n in (0, 1, 2, 49, 98, 1000):
            for g in (a, b):
                g.integers(0, 7, 5)
                g.random(3)
                g.integers(0, 100, (3, 3))
                g.random(2, dtype=np.float32)  # 32-bit draws: the generator's buffered half-word
            expected = a.integers(0, 2**64, n, dtype=np.uint64)
            got = b.bit_generator.random_raw(n)
            assert got.dtype == np.uint64 and got.tobytes() == expected.tobytes()
            assert a.bit_generator.state == b.bit_generator.state

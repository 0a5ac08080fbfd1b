"""PSR, expected maximum Sharpe, DSR and PBO against hand calculations, published values and brute force.

The references here are computed step by step in plain Python (``math``, ``statistics.NormalDist``,
``itertools``) and never call :mod:`genetic_sizer.backtest.stats` to compute the expected value.
"""

from __future__ import annotations

import itertools
import math
import statistics
import warnings

import numpy as np
import pytest
import scipy.stats

from genetic_sizer.backtest import stats
from genetic_sizer.errors import ConfigError

EULER_GAMMA = 0.57721566490153286
R10 = [0.012, -0.008, 0.021, 0.004, -0.015, 0.009, 0.017, -0.002, 0.006, -0.011]


# ---------------------------------------------------------------------------------------------------
# plain-Python references


def phi(x: float) -> float:
    """Standard normal CDF through math.erf."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def inv_phi(p: float) -> float:
    return statistics.NormalDist().inv_cdf(p)


def hand_moments(r):
    """Mean, sample std (ddof=1), skewness and raw kurtosis by their textbook formulas."""
    n = len(r)
    mean = sum(r) / n
    dev = [x - mean for x in r]
    m2 = sum(d * d for d in dev) / n
    m3 = sum(d**3 for d in dev) / n
    m4 = sum(d**4 for d in dev) / n
    std = math.sqrt(sum(d * d for d in dev) / (n - 1))
    return mean, std, m3 / m2**1.5, m4 / m2**2


def hand_psr(r, benchmark=0.0):
    mean, std, g3, g4 = hand_moments(r)
    sr = mean / std
    denom = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
    return phi((sr - benchmark) * math.sqrt(len(r) - 1) / math.sqrt(denom))


def hand_expected_max(n, v):
    return math.sqrt(v) * ((1 - EULER_GAMMA) * inv_phi(1 - 1 / n) + EULER_GAMMA * inv_phi(1 - 1 / (n * math.e)))


def bf_sharpe(values):
    """Per-period Sharpe ratio by explicit loops; 0 for a sample whose values are all equal."""
    if all(v == values[0] for v in values):
        return 0.0
    n = len(values)
    mean = sum(values) / n
    return mean / math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def bf_pbo_logits(matrix, n_blocks):
    """Combinatorially symmetric cross-validation by brute force, one split at a time."""
    rows = [list(map(float, row)) for row in np.asarray(matrix)]
    rows = rows[len(rows) % n_blocks :]
    b = len(rows) // n_blocks
    n = len(rows[0])
    blocks = [rows[i * b : (i + 1) * b] for i in range(n_blocks)]
    logits = []
    for chosen in itertools.combinations(range(n_blocks), n_blocks // 2):
        in_rows = [row for i in chosen for row in blocks[i]]
        out_rows = [row for i in range(n_blocks) if i not in chosen for row in blocks[i]]
        in_sr = [bf_sharpe([row[j] for row in in_rows]) for j in range(n)]
        out_sr = [bf_sharpe([row[j] for row in out_rows]) for j in range(n)]
        best = 0
        for j in range(1, n):
            if in_sr[j] > in_sr[best]:
                best = j
        rank = scipy.stats.rankdata(out_sr, method="average")[best]
        omega = rank / (n + 1)
        logits.append(math.log(omega / (1 - omega)))
    return logits


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------------------------------------------
# Sharpe ratio


def test_sharpe_per_period_hand_calculation(no_warnings):
    mean, std, _, _ = hand_moments(R10)
    assert stats.sharpe_per_period(R10) == pytest.approx(mean / std, rel=1e-13)
    assert isinstance(stats.sharpe_per_period(R10), float)


def test_sharpe_per_period_matrix_is_column_wise(no_warnings):
    rng = np.random.default_rng(1)
    x = rng.normal(0.0005, 0.01, (50, 4))
    x[:, 2] = 0.0  # a flat candidate
    got = stats.sharpe_per_period(x)
    assert got.shape == (4,)
    for j in range(4):
        assert got[j] == pytest.approx(bf_sharpe(list(x[:, j])), rel=1e-12, abs=0)
    assert got[2] == 0.0


@pytest.mark.parametrize(
    "flat",
    [[0.0] * 5, [0.01] * 7, [0.1] * 10_001, [-0.003] * 3, [1e-5, 1e-5 * (1 + 2e-16), 1e-5, 1e-5]],
    ids=["zeros", "constant", "long-constant", "negative-constant", "rounding-noise"],
)
def test_sharpe_of_a_flat_sample_is_zero_without_warnings(flat, no_warnings):
    assert stats.sharpe_per_period(flat) == 0.0
    assert stats.sharpe_per_period(np.column_stack([flat, flat])).tolist() == [0.0, 0.0]


def test_sharpe_of_a_tiny_but_real_spread_is_not_flat(no_warnings):
    r = [1e-6, 2e-6, 1e-6, 3e-6]
    mean, std, _, _ = hand_moments(r)
    assert stats.sharpe_per_period(r) == pytest.approx(mean / std, rel=1e-12)


# ---------------------------------------------------------------------------------------------------
# PSR


@pytest.mark.parametrize("benchmark", [0.0, 0.1, -0.2, 0.5])
def test_psr_hand_calculation(benchmark, no_warnings):
    mean, std, g3, g4 = hand_moments(R10)
    sr = mean / std
    z = (sr - benchmark) * math.sqrt(10 - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    expected = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    assert stats.probabilistic_sharpe(R10, benchmark) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_psr_uses_scipy_skew_and_raw_kurtosis(no_warnings):
    rng = np.random.default_rng(2)
    r = rng.standard_t(4, 300) * 0.01 + 0.001
    sr = r.mean() / r.std(ddof=1)
    expected = stats.probabilistic_sharpe_from_moments(
        sr, len(r), scipy.stats.skew(r), scipy.stats.kurtosis(r, fisher=False), 0.02
    )
    assert stats.probabilistic_sharpe(r, 0.02) == pytest.approx(expected, rel=1e-12)
    assert stats.probabilistic_sharpe(r, 0.02) == pytest.approx(hand_psr(list(r), 0.02), rel=1e-11)


def test_psr_matrix_is_column_wise(no_warnings):
    rng = np.random.default_rng(3)
    x = rng.normal(0.001, 0.01, (40, 3))
    got = stats.probabilistic_sharpe(x, 0.05)
    assert got.shape == (3,)
    for j in range(3):
        assert got[j] == pytest.approx(hand_psr(list(x[:, j]), 0.05), rel=1e-12)


@pytest.mark.parametrize("benchmark", [0.0, 0.05, -0.05])
def test_psr_of_flat_returns_is_the_sharpe_zero_value(benchmark, no_warnings):
    # SR = 0 makes the denominator 1 whatever the (undefined) skewness and kurtosis are
    assert stats.probabilistic_sharpe([0.002] * 30, benchmark) == pytest.approx(
        phi(-benchmark * math.sqrt(29)), rel=1e-12
    )


def test_psr_zero_denominator_takes_the_limit(no_warnings):
    # kurtosis = 1 + skew² and skew·SR = 2: the variance estimate of SR is exactly 0
    sr, g3, g4 = 0.5, 4.0, 17.0
    assert 1 - g3 * sr + (g4 - 1) / 4 * sr**2 == 0.0
    assert stats.probabilistic_sharpe_from_moments(sr, 100, g3, g4, 0.0) == 1.0
    assert stats.probabilistic_sharpe_from_moments(sr, 100, g3, g4, 0.6) == 0.0
    assert stats.probabilistic_sharpe_from_moments(sr, 100, g3, g4, 0.5) == 0.5


def test_psr_of_two_point_returns_on_the_zero_denominator_is_not_nan(no_warnings):
    # nine returns of l and one of l + 0.1 with SR·γ3 = 2: the denominator is 0 up to rounding
    p, d, n = 0.1, 0.1, 10
    sr_needed = 2 * math.sqrt(p * (1 - p)) / (1 - 2 * p)
    mean = sr_needed * d * math.sqrt(p * (1 - p)) * math.sqrt(n / (n - 1))
    low = mean - p * d
    r = [low] * 9 + [low + d]
    m, s, g3, g4 = hand_moments(r)
    assert abs(1 - g3 * (m / s) + (g4 - 1) / 4 * (m / s) ** 2) < 1e-12
    assert stats.probabilistic_sharpe(r, 0.0) == 1.0
    assert stats.probabilistic_sharpe(r, m / s + 0.01) == 0.0


def test_psr_from_moments_broadcasts(no_warnings):
    got = stats.probabilistic_sharpe_from_moments(np.array([0.1, 0.2]), 250, 0.0, 3.0, 0.05)
    expected = [phi((s - 0.05) * math.sqrt(249) / math.sqrt(1 + 0.5 * s * s)) for s in (0.1, 0.2)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_psr_from_moments_rejects_excess_kurtosis():
    with pytest.raises(ConfigError, match=r"kurtosis.*excess"):
        stats.probabilistic_sharpe_from_moments(0.1, 100, 0.0, 0.0)  # excess kurtosis of a normal


# ---------------------------------------------------------------------------------------------------
# expected maximum Sharpe ratio and DSR


@pytest.mark.parametrize("n", [2, 3, 10, 100, 1000, 10**6])
@pytest.mark.parametrize("variance", [1.0, 0.5, 1e-4])
def test_expected_max_sharpe_independent_values(n, variance):
    assert stats.expected_max_sharpe(n, variance) == pytest.approx(hand_expected_max(n, variance), rel=1e-10)


def test_expected_max_sharpe_one_trial_and_zero_variance():
    assert stats.expected_max_sharpe(1, 0.3) == 0.0
    assert stats.expected_max_sharpe(50, 0.0) == 0.0
    assert stats.expected_max_sharpe(np.int64(10), 1.0) == pytest.approx(hand_expected_max(10, 1.0), rel=1e-10)


@pytest.mark.parametrize("n", [10, 100, 1000])
def test_expected_max_sharpe_approximates_the_true_expected_maximum(n):
    # E[max of n standard normals] = ∫ x·n·φ(x)·Φ(x)^(n-1) dx, by the trapezoid rule on [-10, 10]
    h = 1e-3
    xs = [-10 + i * h for i in range(20_001)]
    f = [x * n * math.exp(-x * x / 2) / math.sqrt(2 * math.pi) * phi(x) ** (n - 1) for x in xs]
    exact = h * (sum(f) - (f[0] + f[-1]) / 2)
    # published exact values: 1.5388 (n=10), 2.5076 (n=100), 3.2414 (n=1000)
    assert exact == pytest.approx({10: 1.5388, 100: 2.5076, 1000: 3.2414}[n], abs=1e-4)
    assert stats.expected_max_sharpe(n, 1.0) == pytest.approx(exact, rel=0.03)


def test_deflated_sharpe_published_example():
    # Bailey and López de Prado (2014), numerical example: N = 100 trials, variance of the annualized
    # trial Sharpe ratios 1/2, selected annualized SR 2.5, T = 1250 daily returns (250 a year),
    # skewness -3, raw kurtosis 10; the paper reports E[max SR] ≈ 0.1132 per day and DSR ≈ 0.9004.
    sr0 = stats.expected_max_sharpe(100, 0.5) / math.sqrt(250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = stats.probabilistic_sharpe_from_moments(2.5 / math.sqrt(250), 1250, -3.0, 10.0, sr0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_trial_stats_hand_calculation():
    sharpes = [0.05, -0.02, 0.11, 0.03, 0.0]
    mean = sum(sharpes) / 5
    var = sum((s - mean) ** 2 for s in sharpes) / 4
    got = stats.trial_stats(sharpes)
    assert got == {"n": 5, "sharpe_variance": pytest.approx(var, rel=1e-13)}
    assert isinstance(got["n"], int) and isinstance(got["sharpe_variance"], float)


def test_deflated_sharpe_hand_calculation(no_warnings):
    trials = [0.05, -0.02, 0.11, 0.03, 0.0, 0.07, -0.04, 0.02]
    mean = sum(trials) / len(trials)
    var = sum((s - mean) ** 2 for s in trials) / (len(trials) - 1)
    sr0 = hand_expected_max(len(trials), var)
    assert stats.deflated_sharpe(R10, trials) == pytest.approx(hand_psr(R10, sr0), rel=1e-11)
    # more trials with the same spread lower the DSR
    more = trials * 20
    mean_m = sum(more) / len(more)
    var_m = sum((s - mean_m) ** 2 for s in more) / (len(more) - 1)
    expected_more = hand_psr(R10, hand_expected_max(len(more), var_m))
    assert stats.deflated_sharpe(R10, more) == pytest.approx(expected_more, rel=1e-11)
    assert expected_more < hand_psr(R10, sr0)


def test_deflated_sharpe_matrix_is_column_wise():
    rng = np.random.default_rng(4)
    x = rng.normal(0.001, 0.01, (60, 2))
    trials = rng.normal(0.0, 0.05, 30)
    got = stats.deflated_sharpe(x, trials)
    sr0 = hand_expected_max(30, statistics.variance(trials.tolist()))
    np.testing.assert_allclose(got, [hand_psr(list(x[:, j]), sr0) for j in range(2)], rtol=1e-11)


# ---------------------------------------------------------------------------------------------------
# PBO


@pytest.mark.parametrize(
    ("t", "n", "s", "seed"),
    [(40, 5, 4, 0), (103, 6, 6, 1), (96, 7, 8, 2), (16, 3, 2, 3), (50, 2, 10, 4), (37, 4, 4, 5)],
)
def test_pbo_matches_brute_force_on_random_matrices(t, n, s, seed, no_warnings):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0003, 0.01, (t, n)) + rng.normal(0, 0.002, n)  # candidates with different drifts
    logits = stats.pbo_logits(x, s)
    expected = bf_pbo_logits(x, s)
    np.testing.assert_allclose(logits, expected, rtol=1e-12, atol=1e-12)
    assert stats.pbo(x, s) == sum(v <= 0 for v in expected) / len(expected)


def test_pbo_matches_brute_force_with_degenerate_candidates(no_warnings):
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 0.01, (67, 9))
    x[:, 1] = 0.0  # never trades
    x[:, 2] = 0.001  # constant return
    x[:33, 3] = 0.0  # flat for the first half, active afterwards
    x[:, 4] = x[:, 0]  # a duplicate: ties in and out of sample
    x[:, 5] = 2.0 * x[:, 6]  # same Sharpe ratio as column 6 in every sample (exact scaling)
    x[10:40, 7] = 0.004  # constant over several whole blocks
    # constant over the whole first half of the blocks for S = 4, 6 and 8; combining the block statistics
    # leaves a rounding residue in that half's variance for S = 6 (k = 3), which must not count as spread
    x[:35, 8] = 0.0037
    for s in (4, 6, 8):
        expected = bf_pbo_logits(x, s)
        np.testing.assert_allclose(stats.pbo_logits(x, s), expected, rtol=1e-12, atol=1e-12)
        assert stats.pbo(x, s) == sum(v <= 0 for v in expected) / len(expected)


def test_pbo_ties_go_to_the_lowest_index():
    # columns 0 and 1 are equal in block 0 (a tie in sample) and column 0 is better in block 1
    a = [0.01, -0.005, 0.02, 0.0]
    x = np.array([[*a, 0.02, 0.01, 0.03, 0.015], [*a, -0.01, 0.005, -0.02, 0.0]]).T
    # split 0: in-sample block 0 (tie -> column 0), which ranks 2 of 2 out of sample: λ = ln 2
    # split 1: in-sample block 1 -> column 0, tied out of sample: rank 1.5, ω = 1/2, λ = 0 (overfit)
    np.testing.assert_allclose(stats.pbo_logits(x, 2), [math.log(2.0), 0.0], atol=1e-15)
    assert stats.pbo(x, 2) == 0.5


def test_pbo_is_zero_for_a_candidate_that_dominates_every_block():
    # all candidates share one noise path and differ by a constant drift: in every sample the Sharpe
    # ratio increases with the drift, so the winner in sample is also the best out of sample
    rng = np.random.default_rng(8)
    noise = rng.normal(0.0, 0.01, 320)
    drifts = [0.0, 0.001, -0.002, 0.004, 0.0005]  # column 3 dominates
    x = np.column_stack([noise + d for d in drifts])
    logits = stats.pbo_logits(x, 16)
    assert logits.shape == (math.comb(16, 8),)
    np.testing.assert_allclose(logits, math.log(5 / 1), rtol=1e-12)  # rank 5 of 5: ω = 5/6
    assert stats.pbo(x, 16) == 0.0


def test_pbo_is_one_when_the_in_sample_winner_always_loses_out_of_sample():
    # column 1 = -column 0 and column 0 sums to exactly 0 (dyadic values: every sum is exact), so the
    # in-sample and out-of-sample means have opposite signs and the in-sample winner loses
    rng = np.random.default_rng(9)
    ints = rng.integers(-50, 51, 8 * 16)
    ints[-1] -= ints.sum()
    a = ints / 1024.0
    assert a.sum() == 0.0
    x = np.column_stack([a, -a])
    logits = stats.pbo_logits(x, 8)
    assert (logits <= 0).all()
    assert stats.pbo(x, 8) == 1.0


def test_pbo_of_iid_candidates_is_one_half_in_expectation():
    # with N iid candidates the in-sample winner's out-of-sample rank is uniform on 1..N, so for an
    # even N the expected PBO is exactly 1/2; 200 independent matrices put the mean within ±0.06
    values = []
    for seed in range(200):
        rng = np.random.default_rng(1000 + seed)
        values.append(stats.pbo(rng.normal(0.0, 0.01, (160, 10)), 8))
    assert abs(np.mean(values) - 0.5) < 0.06


def test_pbo_chunking_and_mirroring_do_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(10)
    x = rng.normal(0.0002, 0.01, (130, 9))
    whole = stats.pbo_logits(x, 8)
    monkeypatch.setattr(stats, "_PBO_CHUNK_ELEMENTS", 1)  # one split per chunk
    np.testing.assert_array_equal(stats.pbo_logits(x, 8), whole)
    np.testing.assert_allclose(whole, bf_pbo_logits(x, 8), rtol=1e-12, atol=1e-12)


def test_pbo_is_deterministic_and_ignores_the_dropped_leading_rows():
    rng = np.random.default_rng(11)
    x = rng.normal(0.0, 0.01, (203, 12))
    first = stats.pbo_logits(x, 10)
    np.testing.assert_array_equal(stats.pbo_logits(x.copy(), 10), first)
    y = x.copy()
    y[:3] = 99.0  # 203 mod 10 = 3 rows are dropped
    np.testing.assert_array_equal(stats.pbo_logits(y, 10), first)
    np.testing.assert_array_equal(stats.pbo_logits(x[3:], 10), first)


# ---------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: stats.sharpe_per_period([0.01]), r"returns needs at least 2 returns, got 1"),
        (lambda: stats.sharpe_per_period([0.01, float("nan")]), r"returns must be finite, got nan at index 1"),
        (lambda: stats.sharpe_per_period([[0.01, np.inf], [0.0, 0.0]]), r"finite, got inf at index \(0, 1\)"),
        (lambda: stats.sharpe_per_period(np.zeros((2, 2, 2))), r"1-D \(T,\) or 2-D \(T, N\), got shape"),
        (lambda: stats.sharpe_per_period(np.zeros((5, 0))), r"no columns"),
        (lambda: stats.sharpe_per_period(["a", "b"]), r"returns must be an array of numbers"),
        (lambda: stats.probabilistic_sharpe([0.01, 0.02]), r"returns needs at least 3 returns, got 2"),
        (lambda: stats.probabilistic_sharpe(R10, float("nan")), r"benchmark must be finite, got nan"),
        (lambda: stats.probabilistic_sharpe(R10, "x"), r"benchmark must be a number, got 'x'"),
        (lambda: stats.probabilistic_sharpe_from_moments(0.1, 1, 0.0, 3.0), r"n_obs must be >= 2, got 1"),
        (lambda: stats.probabilistic_sharpe_from_moments(np.nan, 9, 0.0, 3.0), r"sharpe must be finite"),
        (lambda: stats.expected_max_sharpe(0, 1.0), r"n_trials must be >= 1, got 0"),
        (lambda: stats.expected_max_sharpe(2.5, 1.0), r"n_trials must be an integer, got 2.5"),
        (lambda: stats.expected_max_sharpe(True, 1.0), r"n_trials must be an integer, got True"),
        (lambda: stats.expected_max_sharpe(10, -0.1), r"variance must be >= 0, got -0.1"),
        (lambda: stats.expected_max_sharpe(10, float("inf")), r"variance must be finite, got inf"),
        (lambda: stats.trial_stats([0.1]), r"trial_sharpes needs at least 2 trials, got 1"),
        (lambda: stats.trial_stats([[0.1, 0.2]]), r"trial_sharpes must be 1-D \(T,\), got shape \(1, 2\)"),
        (lambda: stats.deflated_sharpe(R10, [0.1, float("nan")]), r"trial_sharpes must be finite, got nan"),
        (lambda: stats.pbo(np.zeros((64, 4)), 3), r"n_blocks must be an even integer >= 2, got 3"),
        (lambda: stats.pbo(np.zeros((64, 4)), 0), r"n_blocks must be an even integer >= 2, got 0"),
        (lambda: stats.pbo(np.zeros((64, 4)), 8.0), r"n_blocks must be an even integer >= 2, got 8.0"),
        (lambda: stats.pbo(np.zeros((64, 4)), True), r"n_blocks must be an even integer >= 2, got True"),
        (lambda: stats.pbo(np.zeros((64, 4)), 22), r"n_blocks must be <= 20"),
        (lambda: stats.pbo(np.zeros((15, 4)), 16), r"at least n_blocks=16 rows, got 15"),
        (lambda: stats.pbo(np.zeros((64, 1)), 16), r"at least 2 candidates \(columns\), got 1"),
        (lambda: stats.pbo(np.zeros(64), 16), r"\(T, N\) matrix .* got shape \(64,\)"),
        (lambda: stats.pbo(np.zeros((3, 2)), 2), r"each half of n_blocks=2 blocks would hold 1 return"),
        (lambda: stats.pbo(np.full((64, 3), np.nan), 4), r"returns must be finite, got nan at index \(0, 0\)"),
    ],
)
def test_errors_name_the_argument_and_value(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        stats.pbo(np.zeros((64, 4)), 5)

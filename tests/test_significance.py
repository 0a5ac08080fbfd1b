"""Sharpe ratio difference tests against Ledoit and Wolf's published figures and independent implementations.

The references here are coded in plain Python loops or plain numpy from the papers' formulas and never call
:mod:`genetic_sizer.backtest.significance` to compute the expected value; the bootstrap references draw their
indices from the same arch bootstraps with the same seeds, so that they must agree exactly.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from genetic_sizer.backtest import significance as sig
from genetic_sizer.errors import ConfigError

HEDGE = Path(__file__).parent / "data" / "ledoit_wolf_hedge.csv"


def phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@pytest.fixture(scope="module")
def hedge():
    data = np.loadtxt(HEDGE, delimiter=",", comments="#", skiprows=6)
    assert data.shape == (120, 2)
    return data[:, 0], data[:, 1]


def correlated_pair(seed, t, mu=(0.05, 0.05), rho=0.6, scale=1.0):
    rng = np.random.default_rng(seed)
    z1 = rng.standard_normal(t)
    z2 = rho * z1 + math.sqrt(1 - rho * rho) * rng.standard_normal(t)
    return scale * (mu[0] + z1), scale * (mu[1] + z2)


# ---------------------------------------------------------------------------------------------------
# plain references


def ref_sharpe(x):
    n = len(x)
    m = sum(x) / n
    return m / math.sqrt(sum((v - m) ** 2 for v in x) / (n - 1))


def ref_gradient_and_y(a, b):
    t = len(a)
    mu1, mu2 = sum(a) / t, sum(b) / t
    g1, g2 = sum(v * v for v in a) / t, sum(v * v for v in b) / t
    s1, s2 = (g1 - mu1**2) ** 1.5, (g2 - mu2**2) ** 1.5
    grad = [g1 / s1, -g2 / s2, -0.5 * mu1 / s1, 0.5 * mu2 / s2]
    y = [[a[i] - mu1, b[i] - mu2, a[i] ** 2 - g1, b[i] ** 2 - g2] for i in range(t)]
    return grad, y


def ref_ar1(x):
    """R's ar(x, FALSE, 1, method = "ols"): OLS with intercept on the demeaned series scaled to unit variance,
    innovation variance = mean squared residual, scaled back."""
    n = len(x)
    m = sum(x) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in x) / (n - 1))
    z = [(v - m) / sd for v in x]
    xs, ys = z[:-1], z[1:]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((p - mx) * (q - my) for p, q in zip(xs, ys, strict=True)) / sum((p - mx) ** 2 for p in xs)
    icpt = my - slope * mx
    resid = [q - icpt - slope * p for p, q in zip(xs, ys, strict=True)]
    return slope, sum(e * e for e in resid) / len(resid) * sd * sd


def ref_parzen(x):
    x = abs(x)
    return 1 - 6 * x**2 + 6 * x**3 if x <= 0.5 else (2 * (1 - x) ** 3 if x <= 1 else 0.0)


def ref_psi(v):
    """Ledoit and Wolf's compute.Psi.hat, one loop per lag and per observation."""
    t, p = len(v), len(v[0])
    num = den = 0.0
    for j in range(p):
        rho, s2 = ref_ar1([row[j] for row in v])
        num += 4 * rho**2 * s2**2 / (1 - rho) ** 8
        den += s2**2 / (1 - rho) ** 4
    s_star = min(2.6614 * (num / den * t) ** 0.2, t - 1)

    def gamma(lag):
        g = [[0.0] * p for _ in range(p)]
        for i in range(lag, t):
            for r in range(p):
                for c in range(p):
                    g[r][c] += v[i][r] * v[i - lag][c] / t
        return g

    psi = gamma(0)
    lag = 1
    while lag < s_star:
        g = gamma(lag)
        w = ref_parzen(lag / s_star)
        for r in range(p):
            for c in range(p):
                psi[r][c] += w * (g[r][c] + g[c][r])
        lag += 1
    return [[psi[r][c] * t / (t - 4) for c in range(p)] for r in range(p)]


def quad(grad, m):
    return sum(grad[r] * m[r][c] * grad[c] for r in range(4) for c in range(4))


def ref_hac_se(a, b):
    grad, y = ref_gradient_and_y(list(a), list(b))
    return math.sqrt(quad(grad, ref_psi(y)) / len(a))


def ref_hac_pw_se(a, b):
    """compute.se.Parzen.pw: VAR(1) by least squares, singular values capped at 0.97, recoloured."""
    grad, y = ref_gradient_and_y(list(a), list(b))
    yy = np.array(y)
    coef = np.linalg.lstsq(yy[:-1], yy[1:], rcond=None)[0].T
    u, d, vt = np.linalg.svd(coef)
    a_hat = u @ np.diag(np.clip(d, -0.97, 0.97)) @ vt
    resid = [list(yy[i] - a_hat @ yy[i - 1]) for i in range(1, len(yy))]
    dd = np.linalg.inv(np.eye(4) - a_hat)
    psi = dd @ np.array(ref_psi(resid)) @ dd.T
    return math.sqrt(quad(grad, psi.tolist()) / len(a))


def ref_lw_boot_p(a, b, block, reps, seed):
    """Ledoit and Wolf's boot.time.inference, rep by rep and block by block, on arch's circular block draws."""
    from arch.bootstrap import CircularBlockBootstrap

    t = len(a)
    n_blocks = t // block
    delta = ref_sharpe(a) - ref_sharpe(b)
    d = abs(delta) / ref_hac_pw_se(a, b)
    bs = CircularBlockBootstrap(block, np.arange(t), seed=np.random.default_rng(seed))
    count = 0
    for pos, _ in bs.bootstrap(reps):
        idx = pos[0][: n_blocks * block]
        x1, x2 = [a[i] for i in idx], [b[i] for i in idx]
        delta_star = ref_sharpe(x1) - ref_sharpe(x2)
        grad, y = ref_gradient_and_y(x1, x2)
        acc = 0.0
        for j in range(n_blocks):
            rows = y[j * block : (j + 1) * block]
            zeta = [math.sqrt(block) * sum(r[c] for r in rows) / block for c in range(4)]
            acc += sum(g * z for g, z in zip(grad, zeta, strict=True)) ** 2
        se_star = math.sqrt(acc / n_blocks / t)
        if abs(delta_star - delta) / se_star >= d:
            count += 1
    return (count + 1) / (reps + 1)


# ---------------------------------------------------------------------------------------------------
# Ledoit and Wolf's worked example


def test_hac_reproduces_ledoit_wolf_on_their_hedge_fund_data(hedge):
    """The authors' hac.inference on their data: SE 0.3176271 (HAC) and 0.3872694 (HAC.pw), p 0.1599724 and
    0.2491259, difference -0.4463183 (published in DEMO.md of github.com/pfnaibert/LW-SR-VAR)."""
    a, b = hedge
    plain = sig.ledoit_wolf_hac(a, b, 12, prewhiten=False)
    pw = sig.ledoit_wolf_hac(a, b, 12)
    assert plain.sharpe == pytest.approx(1.014228, abs=5e-7)
    assert plain.benchmark_sharpe == pytest.approx(1.460547, abs=5e-7)
    assert plain.difference == pytest.approx(-0.4463183, abs=5e-8)
    assert plain.standard_error == pytest.approx(0.3176271, abs=5e-8)
    assert plain.p_value == pytest.approx(0.1599724, abs=5e-8)
    assert pw.standard_error == pytest.approx(0.3872694, abs=5e-8)
    assert pw.p_value == pytest.approx(0.2491259, abs=5e-8)
    assert (plain.method, pw.method) == ("ledoit_wolf_hac", "ledoit_wolf_hac_prewhitened")
    assert pw.difference_annualized == pytest.approx(-0.4463183 * math.sqrt(12), abs=1e-6)
    assert pw.block_length is None and pw.bandwidth > 1


def test_memmel_overstates_significance_on_the_autocorrelated_hedge_funds(hedge):
    """Smoothed hedge fund returns are serially correlated: Memmel's i.i.d. test calls the difference significant
    at 1%, the robust tests do not (why Ledoit and Wolf is the headline)."""
    a, b = hedge
    assert sig.memmel_test(a, b, 12).p_value < 0.01
    assert sig.ledoit_wolf_hac(a, b, 12).p_value > 0.2
    assert sig.ledoit_wolf_bootstrap(a, b, 12, block_length=5, reps=999, seed=3).p_value > 0.2


# ---------------------------------------------------------------------------------------------------
# independent implementations


def test_hac_matches_a_plain_loop_implementation():
    rng = np.random.default_rng(11)
    t = 80
    e = rng.standard_normal((t, 2))
    a, b = np.empty(t), np.empty(t)
    a[0], b[0] = e[0]
    for i in range(1, t):  # serially correlated returns, so the kernel has lags to sum
        a[i] = 0.1 + 0.4 * a[i - 1] + e[i, 0]
        b[i] = 0.05 + 0.2 * b[i - 1] + 0.5 * e[i, 0] + e[i, 1]
    assert sig.ledoit_wolf_hac(a, b, 12, prewhiten=False).standard_error == pytest.approx(ref_hac_se(a, b), rel=1e-10)
    assert sig.ledoit_wolf_hac(a, b, 12).standard_error == pytest.approx(ref_hac_pw_se(a, b), rel=1e-10)


def test_memmel_by_hand_on_a_tiny_series():
    a = [0.02, -0.01, 0.03, 0.00, 0.015, -0.005]
    b = [0.01, 0.00, 0.02, -0.01, 0.01, 0.00]
    t = len(a)
    s1, s2 = ref_sharpe(a), ref_sharpe(b)
    rho = statistics.correlation(a, b)
    theta = (2 - 2 * rho + 0.5 * (s1**2 + s2**2 - 2 * s1 * s2 * rho**2)) / t
    z = (s1 - s2) / math.sqrt(theta)
    res = sig.memmel_test(a, b, 252)
    assert res.method == "memmel_jobson_korkie"
    assert res.difference == pytest.approx(s1 - s2, rel=1e-12)
    assert res.statistic == pytest.approx(z, rel=1e-10)
    assert res.p_value == pytest.approx(2 * (1 - phi(abs(z))), rel=1e-9)
    assert res.difference_annualized == pytest.approx((s1 - s2) * math.sqrt(252), rel=1e-12)
    assert res.block_length is None and res.n_obs == 6


def test_bootstrap_matches_ledoit_wolf_loop_on_the_same_draws(hedge):
    a, b = (list(x[:60]) for x in hedge)
    got = sig.ledoit_wolf_bootstrap(a, b, 12, block_length=4, reps=199, seed=7)
    assert got.p_value == ref_lw_boot_p(a, b, 4, 199, 7)
    assert got.block_length == 4 and got.reps == 199
    # T not a multiple of b: only the whole blocks are kept, as the authors do
    got = sig.ledoit_wolf_bootstrap(a[:58], b[:58], 12, block_length=5, reps=99, seed=2)
    assert got.p_value == ref_lw_boot_p(a[:58], b[:58], 5, 99, 2)


def test_bootstrap_p_value_converges_to_the_hac_one_on_iid_normal_data():
    a, b = correlated_pair(5, 1500, mu=(0.06, 0.0), rho=0.5)
    hac = sig.ledoit_wolf_hac(a, b, 252)
    boot = sig.ledoit_wolf_bootstrap(a, b, 252, reps=4999, seed=0)
    assert 0.02 < hac.p_value < 0.5  # a p-value in the interesting range
    assert boot.block_length <= 3  # Politis-White on i.i.d. data: short blocks
    assert boot.p_value == pytest.approx(hac.p_value, abs=0.02)
    assert boot.statistic == pytest.approx(hac.statistic, rel=1e-12)  # the same studentization


def test_tests_are_symmetric_in_their_arguments():
    a, b = correlated_pair(9, 300, mu=(0.1, 0.0))
    for fn in (sig.memmel_test, sig.ledoit_wolf_hac):
        ab, ba = fn(a, b, 12), fn(b, a, 12)
        assert ba.difference == pytest.approx(-ab.difference, rel=1e-12)
        assert ba.p_value == pytest.approx(ab.p_value, rel=1e-9)
    ab = sig.ledoit_wolf_bootstrap(a, b, 12, block_length=3, reps=299, seed=4)
    ba = sig.ledoit_wolf_bootstrap(b, a, 12, block_length=3, reps=299, seed=4)
    assert ba.p_value == ab.p_value


def test_identical_series_have_no_difference():
    a, _ = correlated_pair(1, 100)
    for res in (
        sig.memmel_test(a, a, 12),
        sig.ledoit_wolf_hac(a, a, 12),
        sig.ledoit_wolf_bootstrap(a, a, 12, reps=99),
    ):
        assert res.difference == 0.0 and res.p_value == 1.0


def test_bootstrap_is_deterministic_given_the_seed():
    a, b = correlated_pair(2, 400, mu=(0.08, 0.0))
    one = sig.ledoit_wolf_bootstrap(a, b, 252, reps=499, seed=1)
    assert sig.ledoit_wolf_bootstrap(a, b, 252, reps=499, seed=1) == one
    assert sig.ledoit_wolf_bootstrap(a, b, 252, reps=499, seed=2).p_value != one.p_value


def test_a_planted_difference_is_found():
    a, b = correlated_pair(3, 1000, mu=(0.15, 0.0), rho=0.5)
    for res in (
        sig.memmel_test(a, b, 252),
        sig.ledoit_wolf_hac(a, b, 252),
        sig.ledoit_wolf_bootstrap(a, b, 252, reps=999),
    ):
        assert res.difference > 0.1 and res.p_value <= 0.001  # 1/(M+1): no bootstrap draw as extreme


# ---------------------------------------------------------------------------------------------------
# Hansen's SPA


def ref_influence(x):
    """The Sharpe ratio's influence function, (r - μ)/σ − SR/(2σ²)·((r − μ)² − σ²), plus the (ddof=1) Sharpe ratio."""
    t = len(x)
    m = sum(x) / t
    var = sum((v - m) ** 2 for v in x) / t
    sd = math.sqrt(var)
    return [ref_sharpe(x) + (v - m) / sd - (m / sd) / (2 * var) * ((v - m) ** 2 - var) for v in x]


def ref_spa_p(candidates, benchmark, block, reps, seed):
    """Hansen's consistent SPA p-value on studentized Sharpe differentials, with arch's stationary bootstrap draws,
    arch's kernel variance and its recentring rule, in plain loops over candidates."""
    from arch.bootstrap import StationaryBootstrap

    t, k = candidates.shape
    lb = ref_influence(list(benchmark))
    d = np.array(
        [[ci - bi for ci, bi in zip(ref_influence(list(candidates[:, i])), lb, strict=True)] for i in range(k)]
    )
    p = 1.0 / block
    scaled = []
    for row in d:
        c = row - row.mean()
        var = float(c @ c) / t
        for i in range(1, t):
            kappa = (1 - i / t) * (1 - p) ** i + (i / t) * (1 - p) ** (t - i)
            var += 2 * kappa * float(c[: t - i] @ c[i:]) / t
        scaled.append(row / math.sqrt(var))
    scaled = np.array(scaled)  # (k, T), long-run variance 1
    means = scaled.mean(axis=1)
    threshold = -math.sqrt(1.0 / t * 2 * math.log(math.log(t)))
    centre = np.where(means >= threshold, means, 0.0)
    bs = StationaryBootstrap(block, np.arange(t), seed=seed)
    hits = 0
    for pos, _ in bs.bootstrap(reps):
        sim = max(scaled[i, pos[0]].mean() - centre[i] for i in range(k))
        hits += sim > means.max()
    return hits / reps


def test_spa_matches_hansens_statistic_computed_by_hand():
    rng = np.random.default_rng(21)
    t = 200
    bench = 0.03 + rng.standard_normal(t)
    cands = np.column_stack(
        [0.5 * bench + m + s * rng.standard_normal(t) for m, s in ((0.1, 1.0), (0.0, 3.0), (0.05, 0.5))]
    )
    got = sig.spa_test(cands, bench, 252, block_length=3, reps=499, seed=5)
    assert got.p_value == pytest.approx(ref_spa_p(cands, bench, 3, 499, 5), abs=1e-12)
    sharpes = [ref_sharpe(list(cands[:, i])) for i in range(3)]
    assert got.best == int(np.argmax(sharpes))
    assert got.difference == pytest.approx(max(sharpes) - ref_sharpe(list(bench)), rel=1e-12)
    assert got.method == "hansen_spa" and got.n_candidates == 3 and got.block_length == 3


def test_spa_with_one_candidate_converges_to_the_one_sided_normal_test():
    a, b = correlated_pair(8, 1500, mu=(0.06, 0.0), rho=0.5)
    d = np.array(ref_influence(list(a))) - np.array(ref_influence(list(b)))
    z = d.mean() / (d.std() / math.sqrt(len(d)))
    got = sig.spa_test(a, b, 252, reps=4999, seed=0)
    assert 0.01 < 1 - phi(z) < 0.3
    assert got.p_value == pytest.approx(1 - phi(z), abs=0.02)


def test_spa_finds_one_real_winner_in_a_hall_of_fame_and_none_among_lucky_ones():
    rng = np.random.default_rng(4)
    t = 1000
    bench = 0.05 + rng.standard_normal(t)
    noise = np.column_stack([0.05 + 0.3 * bench + rng.standard_normal(t) for _ in range(19)])
    assert sig.spa_test(noise, bench, 252, reps=999).p_value > 0.1
    winner = 0.2 + 0.3 * bench + rng.standard_normal(t)
    found = sig.spa_test(np.column_stack([noise, winner]), bench, 252, reps=999)
    assert found.best == 19 and found.p_value < 0.01


def test_arch_spa_does_not_studentize_so_the_differentials_are_scaled_first():
    """arch 8's SPA returns the same p-values with studentize True and False (its statistic is the largest raw
    mean); spa_test divides the differentials by their long-run standard deviations itself."""
    from arch.bootstrap import SPA

    rng = np.random.default_rng(0)
    bench = rng.standard_normal(300)
    models = rng.standard_normal((300, 3)) * np.array([1.0, 10.0, 0.1])
    pv = []
    for flag in (True, False):
        spa = SPA(bench, models, block_size=5, reps=200, studentize=flag, seed=1)
        spa.compute()
        pv.append(spa.pvalues.to_numpy())
    np.testing.assert_array_equal(pv[0], pv[1])


# ---------------------------------------------------------------------------------------------------
# the walk-forward block and the inputs


def test_sharpe_significance_gives_the_headline_and_every_test_per_benchmark():
    a, b = correlated_pair(6, 500, mu=(0.1, 0.0))
    _, c = correlated_pair(7, 500, mu=(0.0, 0.05))
    out = sig.sharpe_significance(a, {"equal_weight": b, "min_variance": c}, 252, reps=199, seed=3)
    assert list(out) == ["equal_weight", "min_variance"]
    for name, bench in (("equal_weight", b), ("min_variance", c)):
        row = out[name]
        boot = sig.ledoit_wolf_bootstrap(a, bench, 252, reps=199, seed=3)
        assert row["method"] == "ledoit_wolf_bootstrap"
        assert row["p_value"] == boot.p_value and row["block_length"] == boot.block_length
        assert row["sharpe_difference"] == pytest.approx(ref_sharpe(list(a)) - ref_sharpe(list(bench)), rel=1e-12)
        assert row["sharpe_difference_annualized"] == pytest.approx(row["sharpe_difference"] * math.sqrt(252))
        assert set(row["tests"]) == {"memmel_jobson_korkie", "ledoit_wolf_hac_prewhitened", "ledoit_wolf_bootstrap"}
        assert row["tests"]["memmel_jobson_korkie"]["p_value"] == sig.memmel_test(a, bench, 252).p_value


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a, b: sig.memmel_test(a, np.full(50, 0.01), 12), "benchmark is constant"),
        (lambda a, b: sig.ledoit_wolf_hac(a, b[:-1], 12), "benchmark must have the same length as returns (50)"),
        (lambda a, b: sig.ledoit_wolf_hac(np.r_[a[:-1], np.nan], b, 12), "returns must be finite, got nan at index 49"),
        (lambda a, b: sig.ledoit_wolf_hac(a[:5], b[:5], 12), "returns needs at least 10 returns, got 5"),
        (lambda a, b: sig.memmel_test(a, b, 0), "periods_per_year must be a positive number, got 0"),
        (lambda a, b: sig.ledoit_wolf_bootstrap(a, b, 12, block_length=26), "block_length must be between 1 and 25"),
        (lambda a, b: sig.ledoit_wolf_bootstrap(a, b, 12, reps=10), "reps must be >= 99, got 10"),
        (lambda a, b: sig.ledoit_wolf_bootstrap(a, b, 12, seed=-1), "seed must be >= 0, got -1"),
        (lambda a, b: sig.ledoit_wolf_hac(np.c_[a, b], b, 12), "returns must be 1-D (n_bars,), got shape (50, 2)"),
        (lambda a, b: sig.spa_test(np.c_[a, np.ones(50)], b, 12), "candidates column 1 is constant"),
        (lambda a, b: sig.sharpe_significance(a, {}, 12), "benchmarks must be a non-empty dict"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    a, b = correlated_pair(0, 50)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(a, b)


# ---------------------------------------------------------------------------------------------------
# size and power


@pytest.mark.slow
def test_size_is_near_five_percent_under_the_null_and_power_high_against_a_planted_difference():
    """300 pairs with equal true Sharpe ratios (0.05 per period, correlation 0.6, 400 bars): each test rejects at 5%
    in 2%-9% of them; 100 pairs with a planted difference of 0.2 per period: each rejects in more than 90%."""
    t, n_null, n_alt = 400, 300, 100
    rejects = {"memmel": 0, "hac": 0, "boot": 0}
    for s in range(n_null):
        a, b = correlated_pair(1000 + s, t, mu=(0.05, 0.05))
        rejects["memmel"] += sig.memmel_test(a, b, 252).p_value < 0.05
        rejects["hac"] += sig.ledoit_wolf_hac(a, b, 252).p_value < 0.05
        rejects["boot"] += sig.ledoit_wolf_bootstrap(a, b, 252, reps=499, seed=s).p_value < 0.05
    size = {k: v / n_null for k, v in rejects.items()}
    assert all(0.02 <= v <= 0.09 for v in size.values()), size
    power = {"memmel": 0, "hac": 0, "boot": 0}
    for s in range(n_alt):
        a, b = correlated_pair(5000 + s, t, mu=(0.25, 0.05))
        power["memmel"] += sig.memmel_test(a, b, 252).p_value < 0.05
        power["hac"] += sig.ledoit_wolf_hac(a, b, 252).p_value < 0.05
        power["boot"] += sig.ledoit_wolf_bootstrap(a, b, 252, reps=499, seed=s).p_value < 0.05
    assert all(v / n_alt > 0.9 for v in power.values()), power

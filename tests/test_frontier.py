"""Issue 25: moments loaders, the moments kernel, min_assets in both operator implementations, the constrained frontier,
the Cura (2009) error measures and ``genetic-sizer frontier`` end to end."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from genetic_sizer.backtest.kernels.moments import population_moments, population_objective, support_qp
from genetic_sizer.cli.main import main
from genetic_sizer.config import PortfolioConfig, RunConfig
from genetic_sizer.data.moments import (
    example_path,
    load_moments,
    load_orlib,
    load_portef,
    moments_from_returns,
)
from genetic_sizer.errors import ConfigError, DataError
from genetic_sizer.evolution.constraints import Constraints
from genetic_sizer.evolution.frontier import moments_evaluator, nondominated, return_lambdas, trace_frontier
from genetic_sizer.evolution.frontier_errors import frontier_errors
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.evolution.variation import vary_population
from genetic_sizer.runs.frontier import check_rows


def _small_moments(n=7, seed=3):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3 * n, n)) * 0.03
    cov = a.T @ a / (3 * n) + np.diag(rng.uniform(1e-4, 5e-4, n))
    mu = rng.uniform(0.001, 0.01, n)
    mu.flags.writeable = cov.flags.writeable = False  # read-only, as loaded moments are: the kernels' warmed signatures
    return mu, cov


def _moments_csv(names, mu, cov) -> str:
    rows = ["asset,mu," + ",".join(names)]
    rows += [f"{n},{float(mu[k])!r}," + ",".join(repr(float(x)) for x in cov[k]) for k, n in enumerate(names)]
    return "\n".join(rows) + "\n"


# ---- loaders -----------------------------------------------------------------------------------------------------
def test_port1_ships_with_the_package_and_loads_the_files_values():
    path = example_path("port1")
    assert path.is_file() and path.parent.name == "orlib" and path.parent.parent.name == "data"
    lines = path.read_text().split("\n")
    m = load_orlib(path)
    assert m.names == tuple(str(k) for k in range(1, 32)) and m.mu.shape == (31,) and m.cov.shape == (31, 31)
    # asset 1: "0.001309 0.043208"; asset 31: line 32
    assert m.mu[0] == 0.001309 and m.cov[0, 0] == 0.043208**2
    mean31, sd31 = (float(x) for x in lines[31].split())
    assert m.mu[30] == mean31 and m.cov[30, 30] == sd31**2
    # every pair line: cov = rho sd_i sd_j, symmetric
    sd = np.sqrt(np.diag(m.cov))
    pairs = [ln.split() for ln in lines[32:] if ln.strip()]
    assert len(pairs) == 31 * 32 // 2
    for i, j, rho in pairs[::37]:
        i, j = int(i) - 1, int(j) - 1
        assert m.cov[i, j] == m.cov[j, i] == pytest.approx(float(rho) * sd[i] * sd[j], rel=1e-15)
    ret, var = load_portef(example_path("portef1"))
    assert ret.shape == var.shape == (2000,)
    assert (ret[0], var[0]) == (0.010865, 0.004775501)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2\n0.1 0.2\n0.1 x\n", "line 3: the standard deviation of asset 2 is 'x'"),
        ("2\n0.1 0.2\n0.1 0.3\n1 1 1\n1 2 0.5\n2 2 1\n1 2 0.4\n", "line 7: the pair 1 2 is given a second time"),
        ("2\n0.1 0.2\n0.1 0.3\n1 1 1\n2 2 1\n", "1 correlation(s) missing, the first for the pair 1 2"),
        ("2\n0.1 0.2\n0.1 0.3\n1 1 1\n1 3 0.5\n2 2 1\n", "line 5: asset index j is '3', not an integer in 1..2"),
        ("2\n0.1 0.2\n0.1 0.3\n1 1 0.9\n1 2 0.5\n2 2 1\n", "line 4: the correlation of asset 1 with itself is 0.9"),
        ("2\n0.1 -0.2\n0.1 0.3\n", "line 2: the standard deviation of asset 1 is -0.2, below 0"),
        ("two\n", "line 1: expected the number of assets"),
    ],
)
def test_orlib_errors_name_file_line_and_value(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=r"bad\.txt") as info:
        load_orlib(path)
    assert message in str(info.value)


def test_csv_moments_and_returns(tmp_path):
    mu, cov = _small_moments(3)
    names = ["A", "B", "C"]
    rows = ["asset,mu,A,B,C"] + [
        f"{n},{float(mu[k])!r}," + ",".join(repr(float(x)) for x in cov[k]) for k, n in enumerate(names)
    ]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    m = load_moments(tmp_path / "m.csv")
    assert m.names == tuple(names) and np.array_equal(m.mu, mu) and np.array_equal(m.cov, cov)
    bad = cov.copy()
    bad[0, 1] += 1e-6
    rows = ["asset,mu,A,B,C"] + [
        f"{n},{float(mu[k])!r}," + ",".join(repr(float(x)) for x in bad[k]) for k, n in enumerate(names)
    ]
    (tmp_path / "bad.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"bad.csv: line 2: the covariance matrix is not symmetric: \(A, B\)"):
        load_moments(tmp_path / "bad.csv")

    x = np.random.default_rng(0).normal(0.001, 0.02, (60, 3))
    lines = ["date,A,B,C"] + [f"2020-01-{1 + t % 28:02d}," + ",".join(repr(float(v)) for v in x[t]) for t in range(60)]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    sample = load_moments(tmp_path / "r.csv")
    np.testing.assert_allclose(sample.mu, x.mean(axis=0), rtol=0, atol=1e-16)
    np.testing.assert_allclose(sample.cov, np.cov(x, rowvar=False), rtol=1e-13)
    lw = load_moments(tmp_path / "r.csv", estimator="ledoit_wolf")
    # Ledoit-Wolf: shrinkage delta toward mu_bar I (Ledoit and Wolf 2004), by hand
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / 60
    target = np.trace(s) / 3
    b2 = min(sum(np.sum((np.outer(r, r) - s) ** 2) for r in xc) / 60**2, np.sum((s - target * np.eye(3)) ** 2))
    delta = b2 / np.sum((s - target * np.eye(3)) ** 2)
    np.testing.assert_allclose(lw.cov, ((1 - delta) * s + delta * target * np.eye(3)) * 60 / 59, rtol=1e-10)
    lines[5] = "2020-01-05,0.1,nan,0.2"
    (tmp_path / "r2.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"r2.csv: line 6: the return of 'B' is 'nan', not a finite number"):
        load_moments(tmp_path / "r2.csv")
    with pytest.raises(DataError, match="a covariance needs at least 2"):
        moments_from_returns(x[:1], names)


# ---- the kernel ---------------------------------------------------------------------------------------------------
def test_moments_kernel_equals_numpy():
    m = load_orlib(example_path())
    rng = np.random.default_rng(1)
    W = np.zeros((200, 31))
    for g in range(200):
        k = int(rng.integers(1, 32))
        W[g, rng.choice(31, k, replace=False)] = rng.dirichlet(np.ones(k))
    ret, var = population_moments(W, np.asarray(m.mu), np.asarray(m.cov))
    np.testing.assert_allclose(ret, W @ m.mu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(var, np.einsum("ij,jk,ik->i", W, m.cov, W), rtol=0, atol=1e-12)
    f = population_objective(W, np.asarray(m.mu), np.asarray(m.cov), 0.3)
    np.testing.assert_allclose(f, 0.3 * var - 0.7 * ret, rtol=0, atol=1e-15)


@pytest.mark.parametrize("lam", [0.0, 0.02, 0.5, 0.97, 1.0])
def test_support_qp_is_optimal(lam):
    """KKT: free weights share one gradient (nu), weights at the floor have a gradient >= nu (at the cap <= nu)."""
    mu, cov = _small_moments(6)
    sup = np.arange(6)
    lo, hi = np.full(6, 0.05), np.full(6, 0.4)
    w, its, ok = support_qp(sup, np.full(6, 1 / 6), mu, cov, lam, lo, hi)
    assert ok and its >= 1 and abs(w.sum() - 1) < 1e-12 and (w >= lo - 1e-15).all() and (w <= hi + 1e-15).all()
    g = 2 * lam * cov @ w - (1 - lam) * mu
    free = (w > lo + 1e-12) & (w < hi - 1e-12)
    nu = g[free].mean() if free.any() else None
    if lam > 0 and free.any():
        np.testing.assert_allclose(g[free], nu, rtol=0, atol=1e-12)
        assert (g[w <= lo + 1e-12] >= nu - 1e-12).all() and (g[w >= hi - 1e-12] <= nu + 1e-12).all()
    f = lam * w @ cov @ w - (1 - lam) * mu @ w
    rng = np.random.default_rng(0)
    for _ in range(300):  # no feasible random point does better
        x = lo + rng.dirichlet(np.ones(6)) * (1 - lo.sum())
        if (x <= hi).all():
            assert lam * x @ cov @ x - (1 - lam) * mu @ x >= f - 1e-15


# ---- min_assets ---------------------------------------------------------------------------------------------------
def test_min_assets_in_constraints_feasibility_and_config():
    c = Constraints.create(list("abcdef"), max_assets=4, min_assets=3)
    assert c.violation([0.5, 0.5, 0, 0, 0, 0]) == "holds 2 assets, fewer than min_assets 3"
    assert c.violates(np.array([[0.5, 0.5, 0, 0, 0, 0], [0.4, 0.3, 0.3, 0, 0, 0]])).tolist() == [True, False]
    assert c.record()["min_assets"] == 3 and Constraints.from_record(list("abcdef"), "longonly", c.record()).k_min == 3
    with pytest.raises(ConfigError, match=r"portfolio.min_assets 5 > portfolio.max_assets 4 \(exactly K"):
        PortfolioConfig(max_assets=4, min_assets=5)
    with pytest.raises(ConfigError, match=r"portfolio\.min_assets must be a positive integer or null, got 0"):
        PortfolioConfig(min_assets=0)
    with pytest.raises(
        ConfigError, match=r"min_assets is 5 but portfolio\.min_position 0\.3 allows at most 3 positions"
    ):
        GenomeSpace.create(list("abcdef"), min_assets=5, min_position=0.3)
    with pytest.raises(ConfigError, match=r"portfolio.min_assets 4 > portfolio.max_assets 3"):
        GenomeSpace.create(list("abcdef"), max_assets=3, min_assets=4)
    with pytest.raises(ConfigError, match="min_assets is 7 but there are only 6 assets"):
        GenomeSpace.create(list("abcdef"), min_assets=7)
    # with group rows the mixed-integer check counts min_assets too: at most one of a, b, c fits in the group's 0.5
    with pytest.raises(ConfigError, match=r"portfolio.min_assets 3; portfolio.min_position 0.3; portfolio.max_group"):
        GenomeSpace.create(
            list("abcd"), min_assets=3, groups={"g": list("abc")}, max_group_weight=0.5, min_position=0.3
        )
    # the fingerprint of a config without the key is what it was
    assert RunConfig().sha256() == RunConfig(portfolio=PortfolioConfig(min_assets=None)).sha256()
    assert RunConfig().sha256() != RunConfig(portfolio=PortfolioConfig(min_assets=2)).sha256()


@pytest.mark.parametrize(("k_min", "k_max"), [(5, 5), (3, 6), (8, 8)])
def test_min_assets_in_both_operator_implementations(k_min, k_max):
    space = GenomeSpace.create(
        [f"a{i}" for i in range(12)], max_weight=0.5, max_assets=k_max, min_assets=k_min, min_position=0.02
    )
    rng = np.random.default_rng(k_min * 10 + k_max)
    w = space.sample(rng, 64)
    for _gen in range(6):
        cross = rng.random(32) < 0.8
        mutating = np.ones(64, dtype=bool)
        seeds = rng.integers(0, 2**63, 64, dtype=np.uint64)
        params = dict(p_support=0.6, p_shift=0.2, p_transfer=0.2, alpha=1.0)
        fast = vary_population(space, w, cross, mutating, seeds, **params)
        ref = vary_population(space, w, cross, mutating, seeds, engine="python", **params)
        np.testing.assert_array_equal(fast != 0, ref != 0)
        np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)
        counts = (fast != 0).sum(axis=1)
        assert counts.min() >= k_min and counts.max() <= k_max
        space.validate_population(fast)
        w = fast
    if k_min < k_max:
        assert len(set(counts.tolist())) > 1  # the count still moves inside the range


def test_champion_validation_reads_min_assets(tmp_path):
    from genetic_sizer.runs import champion as C

    pf = {"min_assets": 3, "max_assets": 3, "min_position": 0.01}
    raw = {"portfolio": {"direction": "longonly", **C._NO_CONSTRAINTS, **pf}, "assets": list("abcd")}
    raw["holdings"] = ["a", "b"]
    with pytest.raises(Exception, match="fewer than min_assets 3"):
        C._check_constraints("champion.json", raw, np.array([0.5, 0.5, 0.0, 0.0]))
    raw["holdings"] = ["a", "b", "c"]
    C._check_constraints("champion.json", raw, np.array([0.4, 0.3, 0.3, 0.0]))
    del raw["portfolio"]["min_assets"]  # files written before the key existed still load
    raw["holdings"] = ["a", "b"]
    C._check_constraints("champion.json", raw, np.array([0.5, 0.5, 0.0, 0.0]))


# ---- error measures -------------------------------------------------------------------------------------------------
def test_error_measures_on_hand_made_frontiers():
    ref_r, ref_v = np.array([0.03, 0.02, 0.01]), np.array([4e-3, 2e-3, 1e-3])  # portef order: highest return first
    e = frontier_errors([0.015], [1.8e-3], ref_r, ref_v)
    # Chang et al.'s deviations, interpolated on the reference
    assert e.variance_error_interp_pct == pytest.approx(100 * 0.3e-3 / 1.5e-3, rel=1e-12)  # v*(0.015) = 1.5e-3: 20 %
    assert e.return_error_interp_pct == pytest.approx(100 * 0.003 / 0.018, rel=1e-12)  # r*(1.8e-3) = 0.018
    assert e.mean_euclidean_distance == pytest.approx(np.hypot(0.005, 0.2e-3), rel=1e-12)  # nearest: (0.02, 2e-3)
    # Cura's: against that nearest point (0.02, 2e-3), relative to the traced point's own values
    assert e.variance_error_pct == pytest.approx(100 * 0.2e-3 / 1.8e-3, rel=1e-12)  # 11.1 %
    assert e.return_error_pct == pytest.approx(100 * 0.005 / 0.015, rel=1e-12)  # 33.3 %
    on = frontier_errors([0.01, 0.025], [1e-3, 3e-3], ref_r, ref_v)
    assert on.variance_error_interp_pct == pytest.approx(0, abs=1e-12)
    assert on.return_error_interp_pct == pytest.approx(0, abs=1e-12)
    assert on.mean_euclidean_distance == pytest.approx(np.hypot(0.005, 1e-3) / 2, rel=1e-12)
    # (0.01, 1e-3) is a reference point; (0.025, 3e-3) is as near to (0.02, 2e-3) as to (0.03, 4e-3): the same errors
    assert on.variance_error_pct == pytest.approx((0 + 100 * 1e-3 / 3e-3) / 2, rel=1e-12)
    assert on.return_error_pct == pytest.approx((0 + 100 * 0.005 / 0.025) / 2, rel=1e-12)
    out = frontier_errors([0.015, 0.05], [1.8e-3, 9e-3], ref_r, ref_v)  # the second is outside both ranges
    assert out.n_outside_return == out.n_outside_variance == 1
    assert out.variance_error_interp_pct == e.variance_error_interp_pct
    # Cura's cover every point: the second's nearest is (0.03, 4e-3)
    assert out.variance_error_pct == pytest.approx((100 * 0.2e-3 / 1.8e-3 + 100 * 5e-3 / 9e-3) / 2, rel=1e-12)
    with pytest.raises(DataError, match="two equal 1-D arrays"):
        frontier_errors([0.1, 0.2], [0.1], ref_r, ref_v)


def test_skfolio_unconstrained_frontier_reproduces_portef1():
    from genetic_sizer.allocators.frontier import unconstrained_frontier

    m = load_orlib(example_path())
    w, ret, var = unconstrained_frontier(m.mu, m.cov, 30)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    e = frontier_errors(ret, var, *load_portef(example_path("portef1")))
    assert e.variance_error_interp_pct < 1e-3 and e.return_error_interp_pct < 1e-3 and e.n_variance_error == 30


def test_nondominated():
    ret = np.array([1.0, 2.0, 2.0, 0.5, 3.0])
    risk = np.array([1.0, 2.0, 1.5, 0.5, 1.5])
    assert nondominated(ret, risk).tolist() == [3, 0, 4]


# ---- tracing --------------------------------------------------------------------------------------------------------
def _best_by_enumeration(mu, cov, k, lam, e, d):
    best = np.inf
    for sup in itertools.combinations(range(len(mu)), k):
        sup = np.array(sup)
        w, _its, ok = support_qp(sup, np.full(k, 1 / k), mu, cov, lam, np.full(k, e), np.full(k, d))
        assert ok
        best = min(best, lam * w @ cov[np.ix_(sup, sup)] @ w - (1 - lam) * mu[sup] @ w)
    return best


def test_weighted_frontier_finds_the_exact_optima_and_every_row_is_feasible():
    mu, cov = _small_moments(9, seed=5)
    names = [f"s{i}" for i in range(9)]
    res = trace_frontier(
        names,
        moments_evaluator(mu, cov),
        k=3,
        exact=True,
        min_weight=0.05,
        max_weight=0.6,
        points=6,
        seed=2,
        mu=mu,
        cov=cov,
        budget=3000,
        population=30,
    )
    check_rows(res.weights, k=3, exact=True, min_weight=0.05, max_weight=0.6)
    assert ((res.weights != 0).sum(axis=1) == 3).all() and (res.evaluations <= 3000).all()
    for p, lam in enumerate(res.lambdas):
        w = res.weights[p]
        f = lam * w @ cov @ w - (1 - lam) * mu @ w
        assert f == pytest.approx(_best_by_enumeration(mu, cov, 3, lam, 0.05, 0.6), rel=1e-9, abs=1e-15)
    again = trace_frontier(
        names,
        moments_evaluator(mu, cov),
        k=3,
        exact=True,
        min_weight=0.05,
        max_weight=0.6,
        points=6,
        seed=2,
        mu=mu,
        cov=cov,
        budget=3000,
        population=30,
    )
    assert np.array_equal(res.weights, again.weights)  # deterministic given the seed


def test_check_rows_refuses_infeasible_points():
    good = np.array([[0.5, 0.5, 0.0]])
    check_rows(good, k=2, exact=True, min_weight=0.1, max_weight=1.0)
    with pytest.raises(ConfigError, match=r"frontier point 0 .* holds 2 assets \(exactly 3"):
        check_rows(good, k=3, exact=True, min_weight=0.1, max_weight=1.0)
    with pytest.raises(ConfigError, match="sums to"):
        check_rows(np.array([[0.5, 0.5 + 1e-11, 0.0]]), k=2, exact=False, min_weight=0.1, max_weight=1.0)
    with pytest.raises(ConfigError, match="held weight outside"):
        check_rows(np.array([[0.95, 0.05, 0.0]]), k=2, exact=False, min_weight=0.1, max_weight=1.0)


def test_cli_frontier_end_to_end(tmp_path, capsys):
    mu, cov = _small_moments(8, seed=11)
    names = [f"X{i}" for i in range(8)]
    rows = ["asset,mu," + ",".join(names)] + [
        f"{n},{float(mu[k])!r}," + ",".join(repr(float(x)) for x in cov[k]) for k, n in enumerate(names)
    ]
    src = tmp_path / "m.csv"
    src.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    argv = ["frontier", "--moments", str(src), "--cardinality", "3", "--exact-cardinality", "--min-weight", "0.05"]
    argv += ["--max-weight", "0.7", "--points", "5", "--seed", "4", "--budget", "1500", "--out", str(out)]
    assert main(argv) == 0
    text = (out / "frontier.csv").read_text()
    lines = text.strip().split("\n")
    assert lines[0] == "return,variance," + ",".join(names) and len(lines) == 6
    for line in lines[1:]:
        fields = line.split(",")
        w = np.array([float(x) for x in fields[2:]])
        assert sum(x != "0" for x in fields[2:]) == 3 and (w != 0).sum() == 3
        assert abs(w.sum() - 1) <= 1e-12 and (w[w != 0] >= 0.05 - 1e-12).all() and (w <= 0.7 + 1e-12).all()
        assert float(fields[0]) == pytest.approx(w @ mu, rel=1e-14) and float(fields[1]) == pytest.approx(
            w @ cov @ w, rel=1e-12
        )
    record = json.loads((out / "frontier.json").read_text())
    assert record["settings"]["k"] == 3 and record["evaluations"]["total"] == sum(record["evaluations"]["per_point"])
    assert (out / "frontier.png").stat().st_size > 0 and (out / "unconstrained.csv").is_file()
    assert "5 points (weighted)" in capsys.readouterr().out
    # never overwrite: the same DIR again is refused before any work, and the files are untouched
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err and (out / "frontier.csv").read_text() == text
    assert main([*argv[:-1], str(tmp_path / "o2"), "--reference", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt: no such file" in capsys.readouterr().err
    assert main(["frontier", "--moments", str(src), "--exact-cardinality", "--out", str(tmp_path / "o3")]) == 2
    assert "--exact-cardinality needs --cardinality K" in capsys.readouterr().err


def test_cli_frontier_reports_errors_against_a_reference(tmp_path, capsys):
    mu, cov = _small_moments(6, seed=1)
    ref = tmp_path / "portef.txt"
    from genetic_sizer.allocators.frontier import unconstrained_frontier

    _w, r, v = unconstrained_frontier(mu, cov, 40)
    ref.write_text("".join(f" {float(a)!r} {float(b)!r}\n" for a, b in zip(r[::-1], v[::-1], strict=True)))
    names = [f"A{i}" for i in range(6)]
    src = tmp_path / "m.csv"
    src.write_text(
        "\n".join(
            ["asset,mu," + ",".join(names)]
            + [f"{n},{float(mu[k])!r}," + ",".join(repr(float(x)) for x in cov[k]) for k, n in enumerate(names)]
        )
        + "\n"
    )
    argv = ["frontier", "--moments", str(src), "--points", "4", "--budget", "600", "--out", str(tmp_path / "o")]
    assert main([*argv, "--reference", str(ref)]) == 0
    printed = capsys.readouterr().out
    errors = json.loads((tmp_path / "o" / "frontier.json").read_text())["errors"]
    assert f"{errors['variance_error_pct']:.4f} %" in printed and "definitions" in errors
    assert f"return {errors['return_error_interp_pct']:.4f} %" in printed
    # without a cardinality limit the traced points lie on the unconstrained frontier (between its 40 points: the
    # interpolated deviations see that; Cura's nearest-point errors are bounded by the reference's spacing)
    assert errors["variance_error_interp_pct"] < 0.5 and errors["return_error_interp_pct"] < 0.5


def test_package_data_is_declared():
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"genetic_sizer.data" = ["orlib/*.txt", "orlib/README.md"]' in text


def test_cli_frontier_from_a_config_is_the_simulated_portfolio_in_and_out_of_sample(tmp_path, capsys):
    from genetic_sizer.backtest.simulate import simulate
    from genetic_sizer.config import load_config
    from genetic_sizer.data.loaders import load_from_config
    from genetic_sizer.validation.holdout import split_holdout, traded_window

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "data: {symbols: [AAPL, BAC, CVX, JNJ, MSFT, WMT], start: 2020-01-01, end: 2022-12-31}\n"
        "portfolio: {rebalance: M, fees: 0.001}\nevolution: {holdout: 0.25}\n"
    )
    out = tmp_path / "o"
    argv = ["frontier", "--config", str(cfg), "-K", "3", "--exact-cardinality", "--min-weight", "0.1"]
    assert main([*argv, "--max-weight", "0.7", "--points", "4", "--budget", "400", "--out", str(out)]) == 0
    lines = (out / "frontier.csv").read_text().strip().split("\n")
    assert lines[0] == "return,variance,AAPL,BAC,CVX,JNJ,MSFT,WMT" and len(lines) == 5
    W = np.array([[float(x) for x in ln.split(",")[2:]] for ln in lines[1:]])
    check_rows(W, k=3, exact=True, min_weight=0.1, max_weight=0.7)
    config = load_config(cfg)
    train, held = split_holdout(load_from_config(config.data), config.evolution.holdout)
    values = simulate(train, W, rebalance="M", fees=0.001)
    r = values[1:] / values[:-1] - 1
    ppy = train.periods_per_year
    got = np.array([[float(x) for x in ln.split(",")[:2]] for ln in lines[1:]])
    np.testing.assert_allclose(got[:, 0], r.mean(axis=0) * ppy, rtol=1e-12)
    np.testing.assert_allclose(got[:, 1], r.var(axis=0, ddof=1) * ppy, rtol=1e-12)
    oos = json.loads((out / "frontier.json").read_text())["out_of_sample"]
    v2 = simulate(traded_window(train, held), W, rebalance="M", fees=0.001)
    r2 = v2[1:] / v2[:-1] - 1
    np.testing.assert_allclose(oos["return"], r2.mean(axis=0) * ppy, rtol=1e-12)
    assert main([*argv, "--out", str(tmp_path / "o2"), "--reference", "x.txt"]) == 2
    assert "--reference measures a moments frontier" in capsys.readouterr().err


def test_cvar_and_cdar_risks_are_skfolios_definitions_by_hand():
    from genetic_sizer.allocators.risk import population_risk

    r = np.random.default_rng(7).normal(0.0005, 0.01, (200, 3))
    worst = np.sort(r, axis=0)[:10]  # 200 bars x (1 - 0.95): the 10 worst
    np.testing.assert_allclose(population_risk(r, "cvar"), -worst.mean(axis=0), rtol=1e-12)
    wealth = np.cumprod(1 + r, axis=0)
    dd = 1 - wealth / np.maximum.accumulate(wealth, axis=0)
    np.testing.assert_allclose(population_risk(r, "cdar"), np.sort(dd, axis=0)[-10:].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(population_risk(r, "variance"), r.var(axis=0, ddof=1), rtol=1e-14)
    with pytest.raises(ConfigError, match="--risk must be one of"):
        population_risk(r, "semivariance")


def test_cli_frontier_risk_flag(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {symbols: [AAPL, BAC, JNJ, MSFT, WMT], start: 2021-01-01, end: 2022-12-31}\n")
    argv = ["frontier", "--config", str(cfg), "-K", "2", "--min-weight", "0.1", "--points", "3", "--budget", "200"]
    assert main([*argv, "--risk", "cdar", "--out", str(tmp_path / "o")]) == 0
    header = (tmp_path / "o" / "frontier.csv").read_text().split("\n")[0]
    assert header == "return,cdar,AAPL,BAC,JNJ,MSFT,WMT"
    assert "cdar" in json.loads((tmp_path / "o" / "frontier.json").read_text())["out_of_sample"]
    src = tmp_path / "m.csv"
    mu, cov = _small_moments(3)
    src.write_text(_moments_csv(["A", "B", "C"], mu, cov))
    assert main(["frontier", "--moments", str(src), "--risk", "cvar", "--out", str(tmp_path / "o2")]) == 2
    assert "--risk cvar needs --config" in capsys.readouterr().err


def test_exact_cardinality_needs_a_positive_min_weight():
    """With min_weight 0 a weight of 0 counts as not held, so exactly K cannot be kept: refused before any work."""
    mu, cov = _small_moments(9, seed=5)
    with pytest.raises(ConfigError, match=r"--exact-cardinality needs --min-weight > 0 .*got 0.0"):
        trace_frontier([f"s{i}" for i in range(9)], moments_evaluator(mu, cov), k=4, exact=True, min_weight=0.0)


# ---- the larger OR-Library problems, the exact reference, the return spacing ---------------------------------------
@pytest.mark.parametrize(("k", "n", "first"), [(2, 85, (0.00197, 0.046802)), (5, 225, None)])
def test_orlib_problems_2_to_5_ship_and_match_their_published_frontiers(k, n, first):
    m = load_orlib(example_path(f"port{k}"))
    assert m.n_assets == n and m.names[-1] == str(n)
    if first is not None:
        assert (m.mu[0], m.cov[0, 0]) == (first[0], first[1] ** 2)
    ref_r, ref_v = load_portef(example_path(f"portef{k}"))
    assert ref_r.shape == (2000,)
    # the exact long-only frontier of portK (QPs on all assets) lies on portefK, within the file's 4-digit rounding
    lams, _ = return_lambdas(25, m.mu, m.cov)
    w = np.full(n, 1.0 / n)
    ret, var = [], []
    for lam in lams:
        for _ in range(10):  # from 1/N on 225 assets the active set needs more than one call's 200 iterations
            w, _its, ok = support_qp(np.arange(n), w, m.mu, m.cov, float(lam), np.zeros(n), np.ones(n))
            if ok:
                break
        assert ok
        ret.append(w @ m.mu)
        var.append(w @ m.cov @ w)
    e = frontier_errors(ret, var, ref_r, ref_v)
    assert e.variance_error_interp_pct < 1e-3 and e.n_variance_error >= 23


def test_return_spacing_gives_evenly_spaced_returns_on_skfolios_frontier():
    """The return-spaced lambdas are those at which the unconstrained frontier has evenly spaced returns, from the
    minimum-variance portfolio (lambda 1) to the maximum-return one (lambda 0): their exact optima have evenly spaced
    returns, the last is the two best assets at the 0.5 cap, and no portfolio skfolio finds (a conic solver, minimum
    variance at each of those returns) has a lower variance."""
    from skfolio import RiskMeasure
    from skfolio.optimization import MeanRisk

    from genetic_sizer.allocators.frontier import _prior_class

    mu, cov = _small_moments(8, seed=4)
    lams, used = return_lambdas(7, mu, cov, max_weight=0.5)
    assert lams[0] == 1.0 and lams[-1] == 0.0 and (np.diff(lams) < 0).all() and used > 0
    W = []
    for lam in lams:
        w, _its, ok = support_qp(np.arange(8), np.full(8, 1 / 8), mu, cov, float(lam), np.zeros(8), np.full(8, 0.5))
        assert ok
        W.append(w)
    W = np.array(W)
    ret, var = W @ mu, np.einsum("ij,jk,ik->i", W, cov, W)
    np.testing.assert_allclose(np.diff(ret), (ret[-1] - ret[0]) / 6, rtol=1e-9)
    top = np.argsort(mu)[-2:]
    assert ret[-1] == pytest.approx(0.5 * mu[top].sum(), rel=1e-12)
    for r, v in zip(ret[:-1], var[:-1], strict=True):
        model = MeanRisk(
            risk_measure=RiskMeasure.VARIANCE,
            min_return=float(r),
            max_weights=0.5,
            prior_estimator=_prior_class()(mu, cov),
        )
        model.fit(np.zeros((2, 8)))
        wk = np.asarray(model.weights_)
        assert wk @ mu >= r - 1e-9 and wk @ cov @ wk >= v * (1 - 1e-7) and wk @ cov @ wk <= v * (1 + 1e-3)
    res = trace_frontier([f"a{i}" for i in range(8)], moments_evaluator(mu, cov), k=3, points=4, budget=400, mu=mu,
                         cov=cov)  # fmt: skip
    assert res.settings["spacing"] == "return" and np.array_equal(res.lambdas, return_lambdas(4, mu, cov)[0])
    assert res.evaluations[0] >= 8 + return_lambdas(4, mu, cov)[1]  # the spacing's QP iterations are counted
    with pytest.raises(ConfigError, match="spacing 'return' needs the moments"):
        trace_frontier(["a", "b"], moments_evaluator(mu[:2], cov[:2, :2]), k=2, spacing="return", budget=400)


def _exact_pair_optimum(mu, cov, lam, e, d):
    """The exact optimum over every pair of assets held in [e, d], by hand: on a pair (i, j) with w_i = t, w_j = 1 - t
    the objective is a t^2 + b t + c with a = lam (s_ii - 2 s_ij + s_jj), b = lam 2 (s_ij - s_jj) - (1 - lam)(m_i -
    m_j), so its minimum on [max(e, 1 - d), min(d, 1 - e)] is the clipped vertex (or an end when a = 0)."""
    best = (np.inf, None, None)
    for i, j in itertools.combinations(range(len(mu)), 2):
        lo, hi = max(e, 1 - d), min(d, 1 - e)
        a = lam * (cov[i, i] - 2 * cov[i, j] + cov[j, j])
        b = lam * 2 * (cov[i, j] - cov[j, j]) - (1 - lam) * (mu[i] - mu[j])
        cands = [lo, hi] + ([min(max(-b / (2 * a), lo), hi)] if a > 0 else [])
        for t in cands:
            w = np.zeros(len(mu))
            w[i], w[j] = t, 1 - t
            f = lam * w @ cov @ w - (1 - lam) * mu @ w
            if f < best[0]:
                best = (f, w @ mu, w @ cov @ w)
    return best


def test_ga_frontier_equals_the_exact_k2_frontier():
    """Tolerance: every traced point's objective equals the exact optimum over all pairs to 1e-10 relative, and its
    (return, variance) the exact point's to 1e-7 relative (40 assets, exactly 2 held in [0.05, 0.8], 8 points)."""
    mu, cov = _small_moments(40, seed=8)
    res = trace_frontier([str(i) for i in range(40)], moments_evaluator(mu, cov), k=2, exact=True, min_weight=0.05,
                         max_weight=0.8, points=8, seed=3, mu=mu, cov=cov)  # fmt: skip
    check_rows(res.weights, k=2, exact=True, min_weight=0.05, max_weight=0.8)
    assert (res.evaluations <= 1000 * 40 + 40).all()
    for w, lam, r, v in zip(res.weights, res.lambdas, res.returns, res.risks, strict=True):
        f_best, r_best, v_best = _exact_pair_optimum(mu, cov, float(lam), 0.05, 0.8)
        f = lam * w @ cov @ w - (1 - lam) * mu @ w
        assert f == pytest.approx(f_best, rel=1e-10, abs=1e-15)
        assert r == pytest.approx(r_best, rel=1e-7) and v == pytest.approx(v_best, rel=1e-7)


def test_cli_frontier_takes_constraints_from_the_config_and_flags_override(tmp_path, capsys):
    data = "data: {symbols: [AAPL, BAC, CVX, JNJ, MSFT, WMT], start: 2021-01-01, end: 2022-12-31}\n"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(data + "portfolio: {max_assets: 3, min_assets: 3, min_position: 0.1, max_weight: 0.7}\n")
    run = ["frontier", "--config", str(cfg), "--points", "3", "--budget", "240"]
    assert main([*run, "--out", str(tmp_path / "a")]) == 0
    s = json.loads((tmp_path / "a" / "frontier.json").read_text())["settings"]
    assert (s["k"], s["exact"], s["min_weight"], s["max_weight"]) == (3, True, 0.1, 0.7)
    assert "exactly 3 assets, held weights in [0.1, 0.7]" in capsys.readouterr().out
    lines = (tmp_path / "a" / "frontier.csv").read_text().strip().split("\n")[1:]
    check_rows([[float(x) for x in ln.split(",")[2:]] for ln in lines], k=3, exact=True, min_weight=0.1, max_weight=0.7)
    # each flag given replaces its key; the others still come from the config
    assert main([*run, "-K", "4", "--max-weight", "0.5", "--out", str(tmp_path / "b")]) == 0
    s = json.loads((tmp_path / "b" / "frontier.json").read_text())["settings"]
    assert (s["k"], s["exact"], s["min_weight"], s["max_weight"]) == (4, True, 0.1, 0.5)
    # no portfolio constraints in the config: no limit, the default min_position, max_weight 1
    plain = tmp_path / "p.yaml"
    plain.write_text(data)
    assert (
        main(["frontier", "--config", str(plain), "--points", "2", "--budget", "240", "--out", str(tmp_path / "c")])
        == 0
    )
    s = json.loads((tmp_path / "c" / "frontier.json").read_text())["settings"]
    assert (s["k"], s["exact"], s["min_weight"], s["max_weight"]) == (None, False, 0.001, 1.0)
    capsys.readouterr()


@pytest.mark.parametrize(
    ("portfolio", "message"),
    [
        ("{direction: longshort}", "traces long-only spot portfolios; the config has portfolio.market 'spot', "
         "portfolio.direction 'longshort' (long/short and perp frontiers are not supported)"),
        ("{max_assets: 4, min_assets: 2}", "portfolio.min_assets 2 with portfolio.max_assets 4: set them equal"),
        ("{max_weight: {AAPL: 0.3, default: 0.6}}", "portfolio.max_weight is per asset"),
        ("{min_weight: 0.05}", "portfolio.min_weight 0.05 is a floor on every asset"),
        ("{min_effective_assets: 2}", "does not apply portfolio.min_effective_assets (2.0)"),
    ],
)  # fmt: skip
def test_cli_frontier_refuses_config_constraints_it_cannot_apply(tmp_path, capsys, portfolio, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {{symbols: [AAPL, BAC, JNJ, MSFT], start: 2021-01-01, end: 2022-12-31}}\nportfolio: {portfolio}\n"
    )
    assert main(["frontier", "--config", str(cfg), "--points", "2", "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


WARM_FRONTIER_THEN_COUNT = """
import gc, sys, tempfile
from numba.core.registry import CPUDispatcher
from genetic_sizer.cli.main import main
from genetic_sizer.data.moments import example_path

with tempfile.TemporaryDirectory() as tmp:
    args = ["-K", "5", "--exact-cardinality", "--min-weight", "0.02", "--points", "4", "--budget", "300"]
    assert main(["frontier", "--moments", str(example_path("port1")), *args, "--out", tmp + "/f"]) == 0
misses = {}
for obj in gc.get_objects():
    if isinstance(obj, CPUDispatcher) and obj._cache is not None and obj.__module__.startswith("genetic_sizer"):
        n = sum(obj.stats.cache_misses.values())
        if n:
            misses[obj.__module__ + "." + obj.__name__] = n
print("MISSES", misses)
"""


@pytest.mark.slow
def test_the_warm_up_compiles_the_moments_kernels(tmp_path, monkeypatch):
    """The warm-up's frontier step (run by `make install`) leaves nothing for a first `genetic-sizer frontier` on
    moments to compile: a fresh process loads the moments kernel, the support QP and the operators from the cache."""
    import subprocess
    import sys

    from genetic_sizer.cli import warm

    called = []
    monkeypatch.setattr(warm, "_runs", lambda tmp: None)  # the evolve/walk-forward and API steps: not this test's
    monkeypatch.setattr(warm, "_api", lambda reference: None)
    frontier_step = warm._frontier
    monkeypatch.setattr(warm, "_frontier", lambda tmp: called.append(frontier_step(tmp)))
    assert set(warm.warm()) == {"runs", "frontier", "api", "cache_dir"} and called == [None]
    out = subprocess.run([sys.executable, "-c", WARM_FRONTIER_THEN_COUNT], capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    line = [s for s in out.stdout.splitlines() if s.startswith("MISSES")][-1]
    assert line == "MISSES {}", line


def test_budget_per_point_is_never_passed_and_spacing_flag(tmp_path, capsys):
    mu, cov = _small_moments(12, seed=9)
    names = [f"s{i}" for i in range(12)]
    # the first point carries the setup (the 12 single assets; with the return spacing also its QP iterations)
    for budget, spacing in ((120, "slope"), (333, "slope"), (333, "linear"), (1000, "return"), (2000, "return")):
        res = trace_frontier(names, moments_evaluator(mu, cov), k=4, exact=True, min_weight=0.02, points=5,
                             budget=budget, population=30, mu=mu, cov=cov, seed=1, spacing=spacing)  # fmt: skip
        assert (res.evaluations <= budget).all() and res.evaluations.min() > 0.75 * budget, (budget, spacing)
        check_rows(res.weights, k=4, exact=True, min_weight=0.02, max_weight=1.0)
    src = tmp_path / "m.csv"
    src.write_text(_moments_csv(names, mu, cov))
    argv = ["frontier", "--moments", str(src), "-K", "3", "--points", "3", "--budget", "200", "--spacing", "linear"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    record = json.loads((tmp_path / "o" / "frontier.json").read_text())
    assert record["lambdas"] == [1.0, 0.5, 0.0] and record["settings"]["spacing"] == "linear"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {symbols: [AAPL, BAC, JNJ], start: 2022-01-01, end: 2022-12-31}\n")
    assert main(["frontier", "--config", str(cfg), "--spacing", "return", "--out", str(tmp_path / "c")]) == 2
    assert "--spacing return needs --moments" in capsys.readouterr().err

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
from genetic_sizer.evolution.frontier import moments_evaluator, nondominated, trace_frontier
from genetic_sizer.evolution.frontier_errors import frontier_errors
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.evolution.variation import vary_population
from genetic_sizer.runs.frontier import check_rows


def _small_moments(n=7, seed=3):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3 * n, n)) * 0.03
    cov = a.T @ a / (3 * n) + np.diag(rng.uniform(1e-4, 5e-4, n))
    mu = rng.uniform(0.001, 0.01, n)
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
    assert e.variance_error_pct == pytest.approx(100 * 0.3e-3 / 1.5e-3, rel=1e-12)  # v*(0.015) = 1.5e-3: 20 %
    assert e.return_error_pct == pytest.approx(100 * 0.003 / 0.018, rel=1e-12)  # r*(1.8e-3) = 0.018
    assert e.mean_euclidean_distance == pytest.approx(np.hypot(0.005, 0.2e-3), rel=1e-12)  # nearest: (0.02, 2e-3)
    on = frontier_errors([0.01, 0.025], [1e-3, 3e-3], ref_r, ref_v)
    assert on.variance_error_pct == pytest.approx(0, abs=1e-12) and on.return_error_pct == pytest.approx(0, abs=1e-12)
    assert on.mean_euclidean_distance == pytest.approx(np.hypot(0.005, 1e-3) / 2, rel=1e-12)
    out = frontier_errors([0.015, 0.05], [1.8e-3, 9e-3], ref_r, ref_v)  # the second is outside both ranges
    assert out.n_outside_return == out.n_outside_variance == 1 and out.variance_error_pct == e.variance_error_pct
    with pytest.raises(DataError, match="two equal 1-D arrays"):
        frontier_errors([0.1, 0.2], [0.1], ref_r, ref_v)


def test_skfolio_unconstrained_frontier_reproduces_portef1():
    from genetic_sizer.allocators.frontier import unconstrained_frontier

    m = load_orlib(example_path())
    w, ret, var = unconstrained_frontier(m.mu, m.cov, 30)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    e = frontier_errors(ret, var, *load_portef(example_path("portef1")))
    assert e.variance_error_pct < 1e-3 and e.return_error_pct < 1e-3 and e.n_variance_error == 30


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
    # without a cardinality limit the traced points lie on the unconstrained frontier
    assert errors["variance_error_pct"] < 0.5 and errors["return_error_pct"] < 0.5


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

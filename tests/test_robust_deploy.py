"""Issue 23 items 2-3: what a run deploys (shrinkage, ensembles), its feasibility, the shrink gene, the champion."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genetic_sizer.config import load_config
from genetic_sizer.config.robust import RobustConfig
from genetic_sizer.data.loaders import load_from_config
from genetic_sizer.errors import ChampionError, ConfigError
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.evolution.genes import GeneSpace
from genetic_sizer.evolution.result import EvolutionResult
from genetic_sizer.evolution.robust import (
    average,
    check_min_effective_assets,
    deploy,
    effective_assets,
    effective_weights,
    enforce_effective_assets,
    gene_target,
    max_effective_assets,
    member,
    project,
    shrink,
    shrink_target,
    variants,
)
from genetic_sizer.evolution.space import GenomeSpace
from genetic_sizer.runs import champion as C
from genetic_sizer.runs.evolve import evolve
from genetic_sizer.runs.resampled import resampled_champions, resampled_prices, stationary_bootstrap_indices
from genetic_sizer.validation.holdout import finalize, split_holdout

from .conftest import make_prices

SMALL = [
    "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY, MSFT, WMT]",
    "data.start=2021-01-01",
    "data.end=2022-12-31",
    "evolution.population=16",
    "evolution.generations=4",
    "evolution.hall_of_fame=5",
]
SYM4 = ("A", "B", "C", "D")


# ---- hand computations -------------------------------------------------------------------------------------------
def test_shrink_toward_equal_weight_by_hand():
    space = GenomeSpace.create(SYM4)
    w, rec = shrink(space, [0.7, 0.3, 0.0, 0.0], np.full(4, 0.25), 0.5)
    np.testing.assert_allclose(w, [0.475, 0.275, 0.125, 0.125], rtol=0, atol=1e-15)
    assert rec == {"coefficient": 0.5, "projected": False, "distance": 0.0}
    # c = 0 is the champion, c = 1 the target, exactly
    np.testing.assert_array_equal(shrink(space, [0.7, 0.3, 0, 0], np.full(4, 0.25), 0.0)[0], [0.7, 0.3, 0, 0])
    np.testing.assert_array_equal(shrink(space, [0.7, 0.3, 0, 0], np.full(4, 0.25), 1.0)[0], np.full(4, 0.25))


def test_average_by_hand_and_the_exact_projection_onto_a_face():
    space = GenomeSpace.create(SYM4)
    w, rec = average(space, [[0.6, 0.4, 0, 0], [0.2, 0.2, 0.6, 0]], "robust.ensemble top_k")
    np.testing.assert_allclose(w, [0.4, 0.3, 0.3, 0.0], atol=1e-15)
    assert not rec["projected"]
    # max_assets 2: the two largest magnitudes are kept, then the simplex projection adds (1 - 0.8) / 2 to each
    capped = GenomeSpace.create(SYM4, max_assets=2)
    w, rec = project(capped, [0.5, 0.3, 0.2, 0.0], "robust.ensemble top_k")
    np.testing.assert_allclose(w, [0.6, 0.4, 0.0, 0.0], atol=1e-15)
    assert rec["projected"] and rec["distance"] == pytest.approx(np.sqrt(0.01 + 0.01 + 0.04))
    # min_position 0.1: 0.04 and 0.01 are under half of it (dropped); 0.05 is added to each of the others / 2
    dusty = GenomeSpace.create(SYM4, min_position=0.1)
    w, _ = project(dusty, [0.55, 0.4, 0.04, 0.01], "robust.shrink 0.5")
    np.testing.assert_allclose(w, [0.575, 0.425, 0.0, 0.0], atol=1e-15)
    # a bound binds: max_weight 0.5 caps A, the rest goes to the others
    w, _ = project(GenomeSpace.create(SYM4, max_weight=0.5), [0.9, 0.1, 0.0, 0.0], "x")
    np.testing.assert_allclose(w, [0.5, 0.5, 0.0, 0.0], atol=1e-15)


def test_long_short_projection_restores_gross_one_by_hand():
    space = GenomeSpace.create(SYM4, "longshort", -1.0, 1.0)
    # the average of two members that disagree in sign on C has gross 0.8: each held magnitude gains 0.2 / 3
    w, rec = average(space, [[0.5, -0.2, 0.3, 0.0], [0.5, -0.2, -0.1, 0.0]], "robust.ensemble top_k")
    third = 0.2 / 3
    np.testing.assert_allclose(w, [0.5 + third, -0.2 - third, 0.1 + third, 0.0], atol=1e-15)
    assert rec["projected"] and space.violation(w) is None


# ---- refusals ----------------------------------------------------------------------------------------------------
def test_shrink_toward_equal_weight_is_refused_under_max_assets():
    symbols = [f"S{k:02d}" for k in range(20)]
    space = GenomeSpace.create(symbols, max_assets=5)
    with pytest.raises(
        ConfigError, match=r"robust\.shrink_toward equal_weight.*holds 20 assets, more than max_assets 5"
    ):
        shrink_target(space, None, "equal_weight")


def test_a_projection_that_breaks_a_group_is_refused_naming_method_and_constraint():
    space = GenomeSpace.create(SYM4, max_assets=2, groups={"ab": ["A", "B"]}, min_group_weight={"ab": 0.5})
    # 4 holdings > 2: the two largest (C 0.35, A 0.3) are kept, and A + B = 0.475 < 0.5 after the projection
    with pytest.raises(ConfigError, match=r"robust\.ensemble top_k.*min_group_weight 0\.5"):
        project(space, [0.3, 0.1, 0.35, 0.25], "robust.ensemble top_k")


def test_resampled_ensemble_without_its_runs_is_refused():
    result = _hand_result(GenomeSpace.create(SYM4))
    with pytest.raises(ConfigError, match=r"robust\.ensemble resampled"):
        deploy(result, None, RobustConfig(ensemble="resampled"))


# ---- feasibility over random spaces ------------------------------------------------------------------------------
@st.composite
def spaces(draw):
    n = draw(st.integers(3, 8))
    symbols = [f"S{k}" for k in range(n)]
    longshort = draw(st.booleans())
    max_w = draw(st.sampled_from([1.0, 0.6, 0.4]))
    k = draw(st.one_of(st.none(), st.integers(2, n)))
    m = draw(st.sampled_from([0.0, 0.001, 0.05, 0.1]))
    lo = -max_w if longshort else 0.0
    try:
        space = GenomeSpace.create(
            symbols, "longshort" if longshort else "longonly", lo, max_w, max_assets=k, min_position=m
        )
    except ConfigError:
        return None
    return space


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=spaces(), seed=st.integers(0, 2**31), c=st.floats(0.0, 1.0), size=st.integers(2, 6))
def test_every_average_and_shrink_of_valid_members_is_valid_or_refused(space, seed, c, size):
    if space is None:
        return
    rng = np.random.default_rng(seed)
    members = space.sample(rng, size)
    w, _ = average(space, members, "robust.ensemble top_k")  # spaces without rows: never refused
    assert space.violation(w) is None
    np.testing.assert_allclose(np.abs(w).sum(), 1.0, atol=1e-12)
    target = space.sample(rng, 1)[0]
    out, rec = shrink(space, members[0], target, c)
    assert space.violation(out) is None
    if not rec["projected"]:
        np.testing.assert_allclose(out, (1 - c) * members[0] + c * target, atol=1e-15)
    try:
        ew = shrink_target(space, None, "equal_weight")
    except ConfigError as exc:
        assert "robust.shrink_toward equal_weight" in str(exc)
    else:
        assert space.violation(shrink(space, members[0], ew, c)[0]) is None


# ---- ensembles on a hand-made result -----------------------------------------------------------------------------
def _hand_result(space, config=None):
    """A result whose population has two clear clusters: A-heavy genomes (fitness 2.0, 1.9, 1.8) and C/D genomes
    (fitness 1.0, 0.9, 0.8); the hall of fame holds the three best."""
    config = config or load_config(None, ["evolution.population=6"])
    pop = np.array(
        [
            [0.8, 0.2, 0.0, 0.0],
            [0.7, 0.3, 0.0, 0.0],
            [0.9, 0.1, 0.0, 0.0],
            [0.0, 0.0, 0.5, 0.5],
            [0.0, 0.1, 0.4, 0.5],
            [0.0, 0.0, 0.6, 0.4],
        ]
    )
    fit = np.array([[2.0], [1.9], [1.8], [1.0], [0.9], [0.8]])
    return EvolutionResult(
        config=config,
        space=space,
        population=pop,
        fitness=fit,
        members=pop[:3].copy(),
        members_fitness=fit[:3].copy(),
        logbook=[],
        evaluations=6,
    )


def test_top_k_and_cluster_by_hand():
    space = GenomeSpace.create(SYM4)
    result = _hand_result(space)
    top = deploy(result, None, RobustConfig(ensemble="top_k", ensemble_size=2))
    np.testing.assert_allclose(top.weights, [0.75, 0.25, 0.0, 0.0], atol=1e-15)
    assert top.method == "ensemble" and top.record["ensemble"] == "top_k"
    assert [m["fitness"] for m in top.record["members"]] == [[2.0], [1.9]]
    # ensemble_size 3: 6 genomes cut into 2 Ward clusters; the A-heavy one has the better median fitness
    clu = deploy(result, None, RobustConfig(ensemble="cluster", ensemble_size=3))
    np.testing.assert_allclose(clu.weights, [0.8, 0.2, 0.0, 0.0], atol=1e-15)
    assert [m["population_row"] for m in clu.record["members"]] == [0, 1, 2]
    assert "Ward" in clu.record["algorithm"]
    both = deploy(result, None, RobustConfig(ensemble="top_k", ensemble_size=2, shrink=0.2))
    np.testing.assert_allclose(both.weights, 0.8 * np.array([0.75, 0.25, 0, 0]) + 0.2 * 0.25, atol=1e-15)
    assert both.method == "ensemble+shrink" and both.record["shrink"]["target"] == "equal_weight"
    assert json.loads(json.dumps(both.record)) == both.record  # JSON-able
    v = variants(result, None, RobustConfig(ensemble="top_k", ensemble_size=2, shrink=0.2))
    assert list(v) == ["plain", "shrink", "ensemble"]
    np.testing.assert_array_equal(v["plain"].weights, result.champion)
    np.testing.assert_allclose(v["shrink"].weights, 0.8 * result.champion + 0.05, atol=1e-15)
    np.testing.assert_array_equal(v["ensemble"].weights, top.weights)
    plain = deploy(result, None)  # the defaults: the champion, unchanged
    assert plain.method == "plain" and plain.weights is not result.champion
    np.testing.assert_array_equal(plain.weights, result.champion)


def test_deploy_is_deterministic():
    space = GenomeSpace.create(SYM4, max_assets=2)
    result = _hand_result(space)
    result.population[4] = [0.0, 0.0, 0.5, 0.5]
    a = deploy(result, None, RobustConfig(ensemble="cluster", ensemble_size=2))
    b = deploy(result, None, RobustConfig(ensemble="cluster", ensemble_size=2))
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.record == b.record


# ---- the shrink gene ---------------------------------------------------------------------------------------------
def test_shrink_gene_is_applied_identically_in_both_engines():
    prices = make_prices(300, 5, seed=3)
    genes = GeneSpace.create({"shrink": [0.0, 1.0]}, "W")
    kw = {"rebalance": "W", "fees": 0.001, "genes": genes, "shrink_toward": ("equal_weight", _pf())}
    fast = Evaluator(prices, ("sharpe", "cagr", "max_drawdown"), engine="fast", **kw)
    vbt = Evaluator(prices, ("sharpe", "cagr", "max_drawdown"), engine="vectorbt", **kw)
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(5), 6)
    s = np.array([0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
    batch = np.column_stack([w, s])
    f_fast, f_vbt = fast(batch), vbt(batch)
    np.testing.assert_allclose(f_fast, f_vbt, rtol=1e-8, atol=1e-10)
    # the same as the explicitly shrunk weights without a gene
    mixed = (1 - s[:, None]) * w + s[:, None] * np.full(5, 1 / 5)
    # row 0 (s = 0) holds a weight under the default min_position: like every infeasible mix, it is scored (and
    # deployed) as its projection onto the space; the feasible rows are scored as they are
    space = GenomeSpace.from_config(prices.symbols, _pf())
    assert space.violation(mixed[0]) is not None and all(space.violation(m) is None for m in mixed[1:])
    mixed = np.stack([project(space, m, "the shrink gene")[0] for m in mixed])
    plain = Evaluator(prices, ("sharpe", "cagr", "max_drawdown"), rebalance="W", fees=0.001)
    np.testing.assert_allclose(f_fast, plain(mixed), rtol=0, atol=0)
    assert not np.allclose(f_fast[1:], plain(w)[1:])  # the gene changes the fitness


def _pf():
    return load_config(None, []).portfolio


def test_shrink_gene_config_range_is_checked():
    assert GeneSpace.create({"shrink": [0.1, 0.6]}).record() == {"shrink": [0.1, 0.6]}
    with pytest.raises(ConfigError, match=r"evolution\.genes\.shrink hi must be at most 1"):
        GeneSpace.create({"shrink": [0.1, 1.5]})


# ---- through evolve: the champion file ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shrunk_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("robust")
    config = load_config(None, [*SMALL, "robust.shrink=0.5", "robust.ensemble=top_k", "robust.ensemble_size=3"])
    config.dump(run_dir / "config.yaml")
    prices, holdout = split_holdout(load_from_config(config.data), config.evolution.holdout)
    result = evolve(config, prices, run_dir)
    report = finalize(result, prices, run_dir, holdout=holdout, plots=False)
    return config, prices, holdout, result, report


def test_champion_file_holds_the_deployed_weights_and_their_construction(shrunk_run):
    config, prices, _holdout, result, report = shrunk_run
    expected = deploy(result, prices, config.robust)
    champ = C.load(report.champion_path)
    np.testing.assert_array_equal(champ.weights, expected.weights)
    built = champ.raw["construction"]
    assert built["method"] == "ensemble+shrink" and built["ensemble"] == "top_k" and built["size"] == 3
    assert built["shrink"]["coefficient"] == 0.5 and built["shrink"]["target"] == "equal_weight"
    assert "deployed by robust: ensemble+shrink" in champ.selection
    # the summary: the deployed champion first, the plain one beside it, both windows
    assert list(report.summary)[:2] == ["champion", "plain_champion"]
    m = Evaluator.from_config(prices, config).metrics(expected.weights[None])
    assert report.summary["champion"]["sharpe"] == float(m["sharpe"][0])
    assert report.summary_oos["champion"]["sharpe"] == champ.raw["out_of_sample"]["metrics"]["sharpe"]
    assert report.summary_oos["plain_champion"]["sharpe"] != report.summary_oos["champion"]["sharpe"]
    assert not np.array_equal(champ.weights, result.champion)


def test_champion_files_without_construction_load_and_a_bad_one_is_refused(shrunk_run, tmp_path):
    raw = json.loads(shrunk_run[4].champion_path.read_text())
    old = {k: v for k, v in raw.items() if k != "construction"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert "construction" not in C.load(tmp_path / "old.json").raw
    (tmp_path / "bad.json").write_text(json.dumps({**raw, "construction": "top_k"}))
    with pytest.raises(ChampionError, match="construction must be an object with a method name"):
        C.load(tmp_path / "bad.json")


# ---- resampled histories -----------------------------------------------------------------------------------------
def test_stationary_bootstrap_indices_by_hand():
    rng = np.random.default_rng(5)
    idx = stationary_bootstrap_indices(rng, 50, 4.0)
    rng = np.random.default_rng(5)
    restart, starts = rng.random(50) < 0.25, rng.integers(0, 50, 50)
    assert idx[0] == starts[0]
    for t in range(1, 50):
        assert idx[t] == (starts[t] if restart[t] else (idx[t - 1] + 1) % 50)
    rng = np.random.default_rng(0)  # mean block 1: every bar starts a new block
    _, starts = rng.random(30), rng.integers(0, 30, 30)
    np.testing.assert_array_equal(stationary_bootstrap_indices(np.random.default_rng(0), 30, 1.0), starts)


def test_resampled_prices_keep_the_returns_of_the_window():
    prices = make_prices(60, 3, seed=1)
    out = resampled_prices(prices, np.random.default_rng(2), 5.0)
    r_in = prices.close[1:] / prices.close[:-1]
    r_out = out.close[1:] / out.close[:-1]
    for row in r_out:  # every resampled bar's returns are one bar's returns of the window (all assets together)
        assert np.isclose(r_in, row, rtol=1e-12).all(axis=1).any()
    np.testing.assert_array_equal(out.close[0], prices.close[0])
    assert out.index.equals(prices.index) and out.periods_per_year == prices.periods_per_year


@pytest.mark.slow
def test_resampled_ensemble_is_deterministic_and_feasible():
    config = load_config(
        None, [*SMALL, "evolution.generations=2", "robust.ensemble=resampled", "robust.ensemble_size=2"]
    )
    prices, _ = split_holdout(load_from_config(config.data), config.evolution.holdout)
    a = resampled_champions(config, prices)
    b = resampled_champions(config, prices)
    assert [r["seed"] for r in a] == [r["seed"] for r in b] and a[0]["seed"] != a[1]["seed"]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["weights"], y["weights"])
    from genetic_sizer.evolution.space import GenomeSpace as GS

    space = GS.from_config(prices.symbols, config.portfolio)
    result = _hand_result(space, config)
    d = deploy(result, prices, config.robust, resampled=a)
    assert space.violation(d.weights) is None and d.record["ensemble"] == "resampled"
    np.testing.assert_allclose(d.weights, (a[0]["weights"] + a[1]["weights"]) / 2, atol=1e-12)


# ---- the norm constraint: portfolio.min_effective_assets -------------------------------------------------------
def test_effective_assets_and_their_largest_value_by_hand():
    np.testing.assert_allclose(effective_assets([[0.5, 0.5, 0, 0], [0.5, -0.25, 0.25, 0]]), [2.0, 1 / 0.375])
    assert max_effective_assets(GenomeSpace.create(SYM4)) == pytest.approx(4.0, abs=1e-12)
    assert max_effective_assets(GenomeSpace.create(SYM4, max_assets=2)) == pytest.approx(2.0, abs=1e-12)
    # forced A at min_weight 0.55: the rest (0.45) is spread over the other three at most
    forced = GenomeSpace.create(SYM4, min_weight={"A": 0.55, "default": 0.0})
    assert max_effective_assets(forced) == pytest.approx(1 / (0.55**2 + 3 * 0.15**2), abs=1e-12)
    with pytest.raises(ConfigError, match=r"portfolio\.min_effective_assets 2\.5 cannot be met.*is 2 "):
        check_min_effective_assets(GenomeSpace.create(SYM4, max_assets=2), 2.5)
    with pytest.raises(ConfigError, match=r"portfolio\.min_effective_assets"):
        load_config(None, ["portfolio.min_effective_assets=0.5"])
    from genetic_sizer.evolution.loop import check_run  # refused before a run starts

    with pytest.raises(ConfigError, match=r"portfolio\.min_effective_assets 4\.5 cannot be met.*is 4 "):
        check_run(load_config(None, ["portfolio.min_effective_assets=4.5"]), make_prices(300, 4))


def test_the_least_shrinkage_toward_equal_weight_meets_the_floor():
    space = GenomeSpace.create(SYM4)
    w = np.array([0.7, 0.3, 0.0, 0.0])
    out, rec = enforce_effective_assets(space, w, 2.5, "the deployed champion")
    c = rec["coefficient"]
    np.testing.assert_allclose(out, w + c * (0.25 - w), atol=1e-15)
    assert effective_assets(out)[0] >= 2.5 - 1e-9 and effective_assets(out)[0] == pytest.approx(2.5, rel=1e-9)
    # the hand solution of sum((w + c d)^2) = 1 / 2.5 with d = 1/4 - w
    d = 0.25 - w
    a, b, c0 = d @ d, 2 * w @ d, w @ w - 0.4
    assert c == pytest.approx((-b - np.sqrt(b * b - 4 * a * c0)) / (2 * a), rel=1e-9)
    assert effective_assets(w + 0.99 * c * d)[0] < 2.5  # less shrinkage does not meet it
    same, rec = enforce_effective_assets(space, np.full(4, 0.25), 2.5, "x")
    assert not rec["repaired"]
    np.testing.assert_array_equal(same, np.full(4, 0.25))
    # max_assets 3: 1/N is not a genome, so the repair goes toward equal weights on the holdings (A, B: 2 assets)
    capped = GenomeSpace.create(SYM4, max_assets=3)
    out, rec = enforce_effective_assets(capped, w, 1.9, "the deployed champion")
    assert rec["target"] == "equal_on_holdings" and out[2:].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(out, w + rec["coefficient"] * (np.array([0.5, 0.5, 0, 0]) - w), atol=1e-15)
    assert effective_assets(out)[0] == pytest.approx(1.9, rel=1e-9)
    with pytest.raises(ConfigError, match=r"min_effective_assets 2\.5.*max_assets 3.*only 2 effective assets"):
        enforce_effective_assets(capped, w, 2.5, "the deployed champion")


def test_min_effective_assets_is_a_death_penalty_in_the_fitness():
    prices = make_prices(200, 5, seed=4)
    ev = Evaluator(prices, ("sharpe", "max_drawdown"), min_effective_assets=3.0)
    batch = np.array([[1.0, 0, 0, 0, 0], [0.4, 0.3, 0.3, 0, 0], np.full(5, 0.2), [0.4, 0.2, 0.2, 0.2, 0]])
    fit = ev(batch)
    free = Evaluator(prices, ("sharpe", "max_drawdown"))(batch)
    np.testing.assert_array_equal(fit[0], ev.wiped_out_fitness)  # 1 effective asset
    np.testing.assert_array_equal(fit[1], ev.wiped_out_fitness)  # 1 / 0.34 = 2.94
    np.testing.assert_array_equal(fit[2:], free[2:])  # 5 and 1 / 0.28 = 3.57: untouched
    assert not (free[:2] == ev.wiped_out_fitness).any()


def test_deploy_repairs_a_champion_under_the_floor_and_records_it():
    config = load_config(None, ["evolution.population=6", "portfolio.min_effective_assets=2.5"])
    result = _hand_result(GenomeSpace.create(SYM4), config)
    d = deploy(result, None, config.robust)  # the champion [0.8, 0.2, 0, 0] has 1.47 effective assets
    assert effective_assets(d.weights)[0] == pytest.approx(2.5, rel=1e-9)
    rec = d.record["min_effective_assets"]
    assert rec["repaired"] and rec["value"] == 2.5 and rec["effective_assets_before"] == pytest.approx(1 / 0.68)
    for v in variants(result, None, RobustConfig(ensemble="top_k", shrink=0.1)).values():
        assert effective_assets(v.weights)[0] >= 2.5 - 1e-9


def test_champion_validation_checks_min_effective_assets(shrunk_run, tmp_path):
    raw = json.loads(shrunk_run[4].champion_path.read_text())
    enc = float(effective_assets(np.array(list(raw["weights"].values())))[0])
    ok = {**raw, "portfolio": {**raw["portfolio"], "min_effective_assets": enc - 1e-6}}
    (tmp_path / "ok.json").write_text(json.dumps(ok))
    C.load(tmp_path / "ok.json")
    bad = {**raw, "portfolio": {**raw["portfolio"], "min_effective_assets": enc + 1e-3}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ChampionError, match=r"effective assets.*under portfolio\.min_effective_assets"):
        C.load(tmp_path / "bad.json")


def test_an_evolution_under_min_effective_assets_deploys_a_champion_that_meets_it(tmp_path):
    config = load_config(None, [*SMALL, "portfolio.min_effective_assets=3"])
    config.dump(tmp_path / "config.yaml")
    prices, holdout = split_holdout(load_from_config(config.data), config.evolution.holdout)
    result = evolve(config, prices, tmp_path)
    sentinel = Evaluator.from_config(prices, config).wiped_out_fitness
    penalized = (result.fitness == sentinel).all(axis=1)
    np.testing.assert_array_equal(penalized, effective_assets(result.population) < 3 - 1e-9)
    report = finalize(result, prices, tmp_path, holdout=holdout, plots=False)
    champ = C.load(report.champion_path)
    assert champ.portfolio["min_effective_assets"] == 3.0
    assert effective_assets(champ.weights)[0] >= 3 - 1e-9


def test_an_evolved_shrink_gene_deploys_the_shrunk_weights_it_was_scored_with(tmp_path):
    from genetic_sizer.validation.holdout import export

    run_dir = tmp_path / "run"
    config = load_config(None, [*SMALL, "evolution.genes={shrink: [0.3, 0.6]}", "portfolio.min_position=0.0"])
    config.dump(tmp_path / "config.yaml")
    prices, holdout = split_holdout(load_from_config(config.data), config.evolution.holdout)
    result = evolve(config, prices, run_dir)
    s = float(result.champion_genes[0])
    assert 0.3 <= s <= 0.6
    d = deploy(result, prices, config.robust)
    np.testing.assert_allclose(d.weights, (1 - s) * result.champion + s * np.full(8, 1 / 8), rtol=0, atol=1e-15)
    assert d.record["shrink_gene"] == {"target": "equal_weight", "coefficient": s, "projected": False, "distance": 0.0}
    report = finalize(result, prices, run_dir, holdout=holdout, plots=False)
    champ = C.load(report.champion_path)
    np.testing.assert_array_equal(champ.weights, d.weights)
    # the champion file's in-sample Sharpe (of the deployed weights) is the fitness the evolution gave the genome
    assert champ.metrics["sharpe"] == pytest.approx(result.members_fitness[0, 0], rel=1e-12)
    assert champ.strategy["genes"] == {"shrink": [0.3, 0.6]}
    exported = C.load(export(run_dir, tmp_path / "rank0.json"))
    np.testing.assert_array_equal(exported.weights, d.weights)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=spaces(), seed=st.integers(0, 2**31), frac=st.floats(0.0, 1.0))
def test_the_norm_repair_keeps_the_space_and_meets_the_floor_or_is_refused(space, seed, frac):
    if space is None:
        return
    w = space.sample(np.random.default_rng(seed), 1)[0]
    value = 1.0 + frac * (max_effective_assets(space) - 1.0)
    try:
        out, rec = enforce_effective_assets(space, w, value, "the deployed champion")
    except ConfigError as exc:
        assert "min_effective_assets" in str(exc) and "the deployed champion" in str(exc)
        return
    assert space.violation(out) is None
    assert effective_assets(out)[0] >= value - 1e-9
    if not rec["repaired"]:
        np.testing.assert_array_equal(out, w)


def test_the_new_keys_change_the_fingerprint_only_when_set():
    base = load_config(None)
    assert load_config(None, ["portfolio.min_effective_assets=3"]).sha256() != base.sha256()
    assert load_config(None, ["evolution.genes={shrink: [0, 0.5]}"]).sha256() != base.sha256()
    assert load_config(None, ["robust.shrink=0.5"]).sha256() != base.sha256()
    assert load_config(None, ["portfolio.min_effective_assets=null"]).sha256() == base.sha256()


def test_the_printed_summary_names_the_deployed_method(shrunk_run, capsys):
    from genetic_sizer.cli.show import describe_construction, print_summary

    report = shrunk_run[4]
    text = describe_construction(report.champion["construction"])
    assert text.startswith("method ensemble+shrink, top_k ensemble of 3 members, shrunk 0.5 toward equal_weight")
    print_summary(report)
    out = capsys.readouterr().out
    assert "deployed champion: method ensemble+shrink" in out and "plain_champion" in out


# ---- issue 23 review: the shrink gene scores exactly what is deployed ------------------------------------------
def _gene_result(prices, config, members, genes):
    space = GenomeSpace.from_config(prices.symbols, config.portfolio)
    gs = GeneSpace.from_config(config)
    fit = np.arange(len(members), 0, -1, dtype=np.float64)[:, None]
    return EvolutionResult(
        config=config,
        space=space,
        population=members.copy(),
        fitness=fit,
        members=members.copy(),
        members_fitness=fit.copy(),
        logbook=[],
        evaluations=len(members),
        genes=gs,
        population_genes=genes.copy(),
        members_genes=genes.copy(),
    )


def test_the_shrink_gene_scores_the_projected_mix_it_deploys_with_the_default_min_position():
    """With the default ``portfolio.min_position`` (0.001) a zero weight mixed by a small coefficient becomes dust
    (``s / N`` under the minimum position): the raw mix is infeasible, so the deployed champion (``member``) is its
    projection, and the evaluator scores exactly that projection, not the raw mix."""
    prices = make_prices(300, 5, seed=3)
    config = load_config(None, ["evolution.genes={shrink: [0.0, 1.0]}", "portfolio.rebalance=W"])
    assert config.portfolio.min_position == 0.001
    ev = Evaluator.from_config(prices, config)
    w = np.array([[0.5, 0.5, 0.0, 0.0, 0.0], [0.2, 0.2, 0.2, 0.2, 0.2], [0.6, 0.0, 0.4, 0.0, 0.0]])
    s = np.array([0.002, 0.3, 0.5])
    raw = (1 - s[:, None]) * w + s[:, None] * np.full(5, 0.2)
    space = GenomeSpace.from_config(prices.symbols, config.portfolio)
    assert space.violation(raw[0]) is not None and "min_position" in space.violation(raw[0])  # 0.0004 of dust
    result = _gene_result(prices, config, w, s[:, None])
    deployed = np.stack([member(result, prices, r).weights for r in range(3)])
    for d in deployed:
        assert space.violation(d) is None
    # row 0: the dust is dropped, A and B keep 1/2 each (the exact projection onto their face)
    np.testing.assert_allclose(deployed[0], [0.5, 0.5, 0.0, 0.0, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(deployed[1:], raw[1:])  # feasible mixes are deployed as they are
    plain = Evaluator(
        prices, config.objective, rebalance="W", fees=config.portfolio.fees, slippage=config.portfolio.slippage
    )
    scored = ev(np.column_stack([w, s]))
    np.testing.assert_array_equal(scored, plain(deployed))
    assert not np.array_equal(scored[0], plain(raw[:1])[0])  # the raw mix scores differently
    assert member(result, prices, 0).record["shrink_gene"]["projected"] is True


def test_the_shrink_gene_target_uses_the_configs_allocators_section():
    """``shrink_toward: risk_budgeting`` with ``allocators.budgets``: the evaluator's target is fitted with those
    budgets, the same target the deployment uses (``shrink_target(..., result.config)``)."""
    prices = make_prices(300, 4, seed=5)
    sym = prices.symbols
    config = load_config(
        None,
        [
            "evolution.genes={shrink: [0.0, 1.0]}",
            "robust.shrink_toward=risk_budgeting",
            f"allocators.budgets={{{sym[0]}: 6, default: 1}}",
        ],
    )
    space = GenomeSpace.from_config(sym, config.portfolio)
    with_budgets = shrink_target(space, prices, "risk_budgeting", config)
    equal_budgets = shrink_target(space, prices, "risk_budgeting", None)
    assert np.abs(with_budgets - equal_budgets).max() > 0.05  # the budgets matter
    ev = Evaluator.from_config(prices, config)
    np.testing.assert_array_equal(gene_target(ev), with_budgets)
    w = np.array([[0.25, 0.25, 0.25, 0.25]])
    result = _gene_result(prices, config, w, np.array([[1.0]]))
    np.testing.assert_allclose(member(result, prices, 0).weights, with_budgets, rtol=0, atol=1e-15)
    np.testing.assert_allclose(effective_weights(ev, w, np.array([[1.0]]))[0], with_budgets, rtol=0, atol=1e-15)

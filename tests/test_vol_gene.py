"""The ``vol_target`` strategy gene (issue 26, "evolvable as a gene"): each genome is simulated with its own
volatility target, exactly as a backtest with that genome's fixed ``portfolio.vol_target`` would be; the champion
records it; what cannot honour it (a fixed ``portfolio.vol_target`` beside it, the walk-forward's stitched
portfolio, the live sizer) refuses it naming ``evolution.genes.vol_target``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from genetic_sizer.backtest.metrics import compute_metrics
from genetic_sizer.backtest.policy import RebalancePolicy
from genetic_sizer.backtest.simulate import backtest, score
from genetic_sizer.config import load_config
from genetic_sizer.errors import ConfigError, SizingError
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.evolution.genes import GeneSpace
from genetic_sizer.vocab import normalize_genes

from .conftest import make_prices, random_weights

GENE = "evolution.genes={vol_target: [0.05, 0.5], rebalance: [W, M]}"


# ---------------------------------------------------------------- config
def test_vol_target_gene_config_is_normalized_recorded_and_decoded():
    assert normalize_genes({"vol_target": [0.1, 0.3], "threshold": [0, 0.1]}) == {
        "threshold": [0.0, 0.1],
        "vol_target": [0.1, 0.3],
    }  # the order of vocab.GENES: the columns of runs without it are unchanged
    space = GeneSpace.create({"rebalance": ["W", "M"], "vol_target": [0.1, 0.3]})
    assert space.names == ("rebalance", "vol_target") and space.record() == {
        "rebalance": ["W", "M"],
        "vol_target": [0.1, 0.3],
    }
    genes = np.array([[1.0, 0.25], [0.0, 0.1]])
    np.testing.assert_array_equal(space.vol_targets(genes), [0.25, 0.1])
    assert space.strategy(genes[0]) == {"rebalance": "M", "threshold": None, "vol_target": 0.25}
    assert space.describe(genes[1]) == "rebalance W, no drift band, vol target 0.1"
    assert "vol_target 0.35 is outside evolution.genes.vol_target [0.1, 0.3]" in space.violation([0.0, 0.35])
    # the operators keep it in its range, reproducibly
    g = space.sample(np.random.default_rng(7), 40)
    cross = np.ones(20, dtype=bool)
    out = space.vary_population(g, cross, np.random.default_rng(8), prob=0.9, sigma=2.0)
    np.testing.assert_array_equal(out, space.vary_population(g, cross, np.random.default_rng(8), prob=0.9, sigma=2.0))
    space.validate_population(out)
    assert ((out[:, 1] >= 0.1) & (out[:, 1] <= 0.3)).all() and len(np.unique(out[:, 1])) > 20
    cfg = load_config(None, [GENE, "portfolio.vol_lookback=15"])
    assert cfg.evolution.genes == {"rebalance": ["W", "M"], "vol_target": [0.05, 0.5]}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("[0, 0.3]", r"evolution\.genes\.vol_target lo must be a finite number > 0, got 0"),
        ("[0.3, 0.1]", r"evolution\.genes\.vol_target must be \[lo, hi\] with lo <= hi, got \[0\.3, 0\.1\]"),
        ("[0.1, 150]", r"evolution\.genes\.vol_target hi must be at most 100, got 150"),
        ("0.2", r"evolution\.genes\.vol_target must be \[lo, hi\], the range of the annualized volatility target"),
    ],
)
def test_bad_vol_target_genes_are_named_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"evolution.genes={{vol_target: {spec}}}"])


def test_a_vol_target_gene_beside_a_fixed_vol_target_is_refused():
    """Two answers to one question: refused at load time, naming the gene, its range and the fixed value."""
    with pytest.raises(
        ConfigError,
        match=r"evolution\.genes\.vol_target \[0\.1, 0\.3\] evolves each genome's volatility target, but "
        r"portfolio\.vol_target is 0\.2 .*set one of them, not both",
    ):
        load_config(None, ["evolution.genes={vol_target: [0.1, 0.3]}", "portfolio.vol_target=0.2"])


def test_walkforward_refuses_the_vol_target_gene_before_loading_anything(tmp_path):
    """The stitched out-of-sample portfolio keeps one policy per strategy (policy rows are per genome, not per
    segment): the GA's per-fold targets cannot be traded, so walkforward refuses the gene before any data or
    directory (a fixed portfolio.vol_target is honoured there)."""
    from genetic_sizer.validation.stitch import check_no_vol_target_gene
    from genetic_sizer.validation.walkforward import walkforward_run

    cfg = load_config(
        None, ["evolution.genes={vol_target: [0.1, 0.3]}", "data.source=csv", "data.path=/nonexistent/prices.csv"]
    )
    with pytest.raises(ConfigError, match=r"evolution\.genes\.vol_target \[0\.1, 0\.3\]: .* not supported in walk-"):
        walkforward_run(cfg, tmp_path / "wf")
    assert not (tmp_path / "wf").exists()
    check_no_vol_target_gene(load_config(None, ["portfolio.vol_target=0.2"]))  # a fixed target: no error


# ---------------------------------------------------------------- the evaluator
def _single(p, w, rebalance, vt, lookback, **kw):
    """One genome's metrics and backtest with a FIXED vol_target (the portfolio policy), the reference."""
    pol = RebalancePolicy(vol_target=vt, vol_lookback=lookback, min_trade=kw.pop("min_trade", 0.0))
    m = score(p, w[None, :], rebalance=rebalance, policy=pol, periods_per_year=p.periods_per_year, **kw)
    bt = backtest(p, w[None, :], rebalance=rebalance, policy=pol, **kw)
    return m, bt


def test_each_genome_is_simulated_with_its_own_vol_target_spot():
    """The evaluator's fused fitness, its value path and the vectorbt reference give each genome of a batch
    exactly the figures of a single-genome backtest at that genome's fixed vol_target (with the portfolio's other
    policy keys, here a minimum trade, and lookback), bit for bit; the targets change the figures."""
    p = make_prices(150, 4, seed=3)
    cfg = load_config(None, [GENE, "portfolio.vol_lookback=15", "portfolio.min_trade=0.002", "portfolio.fees=0.001"])
    ev = Evaluator.from_config(p, cfg)
    w = random_weights(6, 4, seed=3)
    genes = ev.genes.sample(np.random.default_rng(1), 6)
    genes[-1] = genes[0]  # the same weights' twin below differs only by its target
    genes[-1, 1] = 0.06
    w[-1] = w[0]
    batch = np.column_stack([w, genes])
    fitness = ev(batch)
    m = ev.metrics(w, genes=genes)
    bt = ev.backtest(w, genes=genes)
    by_value = ev.metrics_of(bt)
    kw = dict(fees=0.001, slippage=cfg.portfolio.slippage, init_cash=cfg.portfolio.init_cash)
    for k in range(len(w)):
        s = ev.genes.strategy(genes[k])
        one, one_bt = _single(p, w[k], s["rebalance"], s["vol_target"], 15, min_trade=0.002, **kw)
        for name in ("sharpe", "total_return", "max_drawdown", "turnover", "annualized_volatility"):
            assert m[name][k] == one[name][0], (k, name)
            assert by_value[name][k] == one[name][0], (k, name)
        assert fitness[k, 0] == one["sharpe"][0]
        np.testing.assert_array_equal(bt.value[:, k], one_bt.value[:, 0])
    assert m["sharpe"][0] != m["sharpe"][-1] and m["annualized_volatility"][-1] < m["annualized_volatility"][0]
    ref = ev.backtest(w, genes=genes, engine="vectorbt")  # from_order_func with the per-genome policy rows
    assert (np.abs(ref.value - bt.value) / ref.value).max() <= 1e-8
    # the same strategies as dicts (holdout, nested, analytics): the same values
    strategies = [ev.genes.strategy(g) for g in genes]
    np.testing.assert_array_equal(ev.backtest_strategies(w, strategies).value, bt.value)
    # a strategy without a target beside them (a classical allocation) keeps the portfolio's policy: none
    mixed = ev.backtest_strategies(w[:2], [strategies[0], {"rebalance": "M", "threshold": None}]).value
    plain = backtest(p, w[1:2], rebalance="M", policy=RebalancePolicy(vol_lookback=15, min_trade=0.002), **kw)
    np.testing.assert_array_equal(mixed[:, 1], plain.value[:, 0])


def test_each_genome_is_simulated_with_its_own_vol_target_perp():
    """On the perp account the target multiplies each genome's evolved leverage (capped at max_leverage): the
    evaluator equals single-genome perp backtests at the genome's leverage and fixed vol_target."""
    p = make_prices(120, 3, seed=5)
    space = GeneSpace.create({"leverage": [1.0, 3.0], "vol_target": [0.1, 0.9]}, "W", 1.0)
    ev = Evaluator(p, ["sharpe"], rebalance="W", fees=0.0005, market="perp", max_leverage=4.0, genes=space,
                   policy={"vol_lookback": 10})  # fmt: skip
    w = random_weights(4, 3, seed=5)
    genes = space.sample(np.random.default_rng(2), 4)
    m = ev.metrics(w, genes=genes)
    bt = ev.backtest(w, genes=genes)
    for k in range(4):
        lev, vt = genes[k]
        kw = dict(rebalance="W", fees=0.0005, market="perp", leverage=lev, max_leverage=4.0)
        pol = RebalancePolicy(vol_target=vt, vol_lookback=10)
        one = score(p, w[k : k + 1], policy=pol, periods_per_year=p.periods_per_year, **kw)
        assert m["sharpe"][k] == one["sharpe"][0] and m["max_drawdown"][k] == one["max_drawdown"][0]
        np.testing.assert_array_equal(bt.value[:, k], backtest(p, w[k : k + 1], policy=pol, **kw).value[:, 0])
    ref = ev.backtest(w, genes=genes, engine="reference")
    assert (np.abs(ref.value - bt.value) / ref.value).max() <= 1e-8


def test_a_perp_vol_target_gene_without_a_finite_max_leverage_is_refused():
    """The exposure a target scales to is capped at max_leverage: without one (null, data without margin tiers) the
    gene is refused when the evaluator is built, not at the first batch."""
    p = make_prices(60, 2, seed=1)
    space = GeneSpace.create({"vol_target": [0.1, 0.3]}, "W", 1.0)
    with pytest.raises(ConfigError, match=r"evolution\.genes\.vol_target \[0\.1, 0\.3\] on the perp account needs"):
        Evaluator(p, ["sharpe"], market="perp", max_leverage=None, genes=space)  # no margin tiers: no cap


# ---------------------------------------------------------------- evolve, champion, summary, live
SMALL = [
    "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY]",
    "data.start=2021-01-01",
    "data.end=2022-06-30",
    "portfolio.max_weight=0.5",
    "evolution.population=12",
    "evolution.generations=3",
    "evolution.hall_of_fame=3",
    "walkforward.execution_delay=1",
    "portfolio.vol_lookback=15",
    "evolution.genes={vol_target: [0.05, 0.4], rebalance: [W, M]}",
]


@pytest.fixture(scope="module")
def vol_run(tmp_path_factory):
    from genetic_sizer.data.loaders import load_from_config
    from genetic_sizer.runs.evolve import evolve
    from genetic_sizer.validation.holdout import finalize, split_holdout

    config = load_config(None, SMALL)
    prices, holdout = split_holdout(load_from_config(config.data), config.evolution.holdout)
    results = []
    for name in ("a", "b"):
        run_dir = tmp_path_factory.mktemp(name)
        config.dump(run_dir / "config.yaml")
        results.append((evolve(config, prices, run_dir), run_dir))
    report = finalize(results[0][0], prices, results[0][1], holdout=holdout, plots=False)
    return config, prices, holdout, results, report


def test_an_evolve_run_with_the_gene_is_deterministic(vol_run):
    _config, _prices, _holdout, ((a, _), (b, _)), _report = vol_run
    np.testing.assert_array_equal(a.members, b.members)
    np.testing.assert_array_equal(a.members_genes, b.members_genes)
    np.testing.assert_array_equal(a.members_fitness, b.members_fitness)
    np.testing.assert_array_equal(a.population_genes, b.population_genes)
    targets = a.genes.vol_targets(a.population_genes)
    assert ((targets >= 0.05) & (targets <= 0.4)).all() and len(np.unique(targets)) > 1


def test_the_champion_records_its_vol_target_and_its_figures_are_those_of_it(vol_run, capsys):
    """champion.json's strategy holds the evolved vol_target (and the lookback); its figures, in sample and held
    out, are those of an independent vectorbt backtest of its weights with that target as the fixed policy; the
    summary tables and the printed summary show the target."""
    from genetic_sizer.cli.show import print_summary
    from genetic_sizer.runs import champion as C

    config, prices, holdout, ((result, _), _), report = vol_run
    champ = C.load(report.champion_path)
    vt = float(result.genes.vol_targets(result.champion_genes)[0])
    assert champ.strategy == {
        "rebalance": result.genes.strategy(result.champion_genes)["rebalance"],
        "threshold": None,
        "vol_target": vt,
        "vol_lookback": 15,
        "genes": {"rebalance": ["W", "M"], "vol_target": [0.05, 0.4]},
    }
    assert "vol_target" not in champ.portfolio  # not a fixed target: the gene's
    pol = RebalancePolicy(vol_target=vt, vol_lookback=15)
    for window, key in ((prices, "metrics"), (holdout, "out_of_sample")):
        bt = backtest(window, champ.weights, rebalance=champ.rebalance, fees=config.portfolio.fees,
                      policy=pol, engine="vectorbt")  # fmt: skip
        m = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=window.periods_per_year, traded=bt.traded)
        recorded = champ.metrics if key == "metrics" else champ.raw["out_of_sample"]["metrics"]
        for name in ("sharpe", "cagr", "turnover", "max_drawdown"):
            assert recorded[name] == pytest.approx(m[name][0], rel=1e-8), (key, name)
    assert champ.metrics["sharpe"] == result.members_fitness[0, 0]
    with open(report.run_dir / "hall_of_fame.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["vol_target"]) for r in rows] == [result.strategy(k)["vol_target"] for k in range(len(rows))]
    with open(report.run_dir / "summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert {r["vol_target"] for r in summary if r["allocation"] == "champion"} == {repr(vt)}
    assert {r["vol_target"] for r in summary if r["allocation"] != "champion"} == {""}
    print_summary(report)
    assert f"vol target {vt:.4g} (annualized, over 15 bars)" in capsys.readouterr().out
    # a record whose vol_target leaves the evolved range is refused on load
    raw = json.loads(report.champion_path.read_text())
    raw["strategy"]["vol_target"] = 0.5
    bad = report.run_dir / "bad.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(
        C.ChampionError, match=r"strategy\.vol_target 0\.5 is outside the evolved range \[0\.05, 0\.4\]"
    ):
        C.load(bad)


def test_the_live_book_refuses_a_strategy_with_an_evolved_vol_target(vol_run, tmp_path):
    """As for a fixed portfolio.vol_target: the live sizer has no price history to measure the volatility."""
    from genetic_sizer.live.combine import parts_of
    from genetic_sizer.runs import champion as C

    from .test_rebalance_policies import _policy_champion

    report = vol_run[4]
    plain = tmp_path / "plain"
    plain.mkdir()
    _policy_champion(plain / "champion.json", {"AAPL": 0.6, "AMD": 0.4})
    dirs = {"a": plain, "v": report.run_dir}
    record = C.build(
        symbols=list(dirs), weights=[0.5, 0.5], metrics={"sharpe": 1.0}, objective=["sharpe"],
        portfolio={"direction": "longonly", "min_weight": 0.0, "max_weight": 1.0, "rebalance": "D", "fees": 0.0,
                   "slippage": 0.0, "init_cash": 10000.0, "market": "spot"},
        data={"source": "strategies", "first_bar": "2025-01-01T00:00:00+00:00",
              "last_bar": "2025-02-01T00:00:00+00:00", "n_bars": 32, "periods_per_year": 365,
              "close_sha256": "0" * 64, "strategies": {k: str(v) for k, v in dirs.items()}},
        evolution={"seed": 1}, config_sha256="0" * 64, selection="test", verification={"engine": "vectorbt"},
    )  # fmt: skip
    with pytest.raises(SizingError, match=r"strategy 'v' targets a volatility \(strategy\.vol_target 0\.\d+"):
        parts_of(C.load(C.write(record, tmp_path / "alloc.json")))


def test_size_refuses_a_champion_with_an_evolved_vol_target(vol_run, tmp_path, capsys, monkeypatch):
    """`genetic-sizer size` against the fake exchange: the gene's champion is refused, naming strategy.vol_target,
    and nothing is sent."""
    from genetic_sizer.cli.main import main

    from .test_live_cli import MAIN, MIDS, UNIVERSE, FakeHyperliquid

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HL_SECRET_KEY", raising=False)
    monkeypatch.setenv("HL_ACCOUNT_ADDRESS", MAIN)
    report = vol_run[4]
    with FakeHyperliquid(universe=UNIVERSE, mids=dict(MIDS), account_address=MAIN, account_value=10_000.0) as fake:
        assert main(["size", "--champion", str(report.champion_path), "--base-url", fake.url]) != 0
        assert "the champion targets a volatility (strategy.vol_target 0." in capsys.readouterr().err
        assert fake.exchange_requests == []

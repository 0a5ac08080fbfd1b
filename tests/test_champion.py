"""Champion files: what a finished run writes, the vectorbt re-check, export, and load's validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genetic_sizer.allocators.classical import CLASSICAL
from genetic_sizer.config import load_config
from genetic_sizer.data.loaders import load_from_config
from genetic_sizer.errors import ChampionError, ConfigError
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.runs import champion as C
from genetic_sizer.runs.evolve import evolve
from genetic_sizer.validation.holdout import export, finalize, split_holdout

SMALL = [
    "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY, MSFT, WMT]",
    "data.start=2021-01-01",
    "data.end=2022-12-31",
    "portfolio.max_weight=0.5",
    "evolution.population=16",
    "evolution.generations=4",
    "evolution.hall_of_fame=4",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    config = load_config(None, SMALL)
    config.dump(run_dir / "config.yaml")
    # as `genetic-sizer evolve` does: evolve on the window before the held-out final part
    prices, holdout = split_holdout(load_from_config(config.data), config.evolution.holdout)
    result = evolve(config, prices, run_dir)
    report = finalize(result, prices, run_dir, holdout=holdout)
    return config, prices, result, report


def test_finished_run_writes_everything(run):
    _config, prices, result, report = run
    names = {p.name for p in report.files}
    assert {"hall_of_fame.csv", "champion.json", "summary.csv", "fitness.png", "allocation.png", "equity.png"} <= names
    for p in report.files:
        assert p.stat().st_size > 0
    assert list(report.summary) == [
        "champion",
        "equal_weight",
        "inverse_volatility",
        "min_variance",
        "max_sharpe",
        "hrp",
        "risk_parity",  # issue 26's allocators (market_cap needs a market-cap file)
        "risk_budgeting",
        "black_litterman",
        "equal_minvar_blend",  # issue 23's cheap rules
        "volatility_timing",
    ]
    rows = (report.run_dir / "hall_of_fame.csv").read_text().splitlines()
    assert rows[0].startswith("rank,total_return") and rows[0].endswith(",".join(prices.symbols))
    assert len(rows) == 1 + len(result.members)


def test_champion_file_is_self_describing_and_loads(run):
    config, prices, result, report = run
    champ = C.load(report.champion_path)
    assert champ.assets == prices.symbols
    np.testing.assert_array_equal(champ.weights, result.champion)
    assert champ.objective == ("sharpe",)
    metrics = Evaluator.from_config(prices, config).metrics(result.champion[None])
    for name, value in champ.metrics.items():
        assert value == float(metrics[name][0])
    assert champ.metrics["sharpe"] == result.members_fitness[0, 0]
    assert champ.portfolio["direction"] == "longonly"
    assert champ.portfolio["max_weight"] == dict.fromkeys(prices.symbols, 0.5)
    assert champ.portfolio["rebalance"] == "M" and champ.portfolio["fees"] == 0.0005
    assert champ.data["close_sha256"] == prices.sha256()
    assert champ.data["n_bars"] == prices.n_bars and champ.data["first_bar"].startswith("2021-01-04")
    assert champ.config_sha256 == config.sha256()
    assert champ.evolution["seed"] == 42 and champ.evolution["evaluations"] == result.evaluations
    assert champ.raw["verification"]["engine"] == "vectorbt"
    assert champ.raw["verification"]["max_rel_diff"] < 1e-10
    assert {"numpy", "numba", "deap", "vectorbt", "genetic_sizer", "python"} <= set(champ.versions)
    assert champ.raw["schema"] == C.SCHEMA and champ.raw["schema_version"] == C.SCHEMA_VERSION


def test_export_other_ranks(run, tmp_path):
    _config, _prices, result, report = run
    path = export(report.run_dir, tmp_path / "second.json", rank=1)
    second = C.load(path)
    np.testing.assert_array_equal(second.weights, result.members[1])
    assert second.metrics["sharpe"] == result.members_fitness[1, 0]
    assert "rank 1 of 4" in second.selection
    again = C.load(export(report.run_dir, tmp_path / "first.json"))
    np.testing.assert_array_equal(again.weights, result.champion)
    with pytest.raises(ConfigError, match=r"--rank must be in \[0, 3\]"):
        export(report.run_dir, tmp_path / "x.json", rank=4)


def test_an_exported_member_carries_the_analytics_of_the_run_champion_file(run, tmp_path):
    """Issue 26: every champion file has its analytics; exporting rank 0 gives the run's own champion analytics (the
    finished run computed them from the values it wrote, the export by trading the member again)."""
    import json

    _config, _prices, result, report = run
    own = json.loads(report.champion_path.read_text())["analytics"]
    rank0 = json.loads(export(report.run_dir, tmp_path / "first.json").read_text())["analytics"]
    assert set(rank0) == {"benchmark", "in_sample", "out_of_sample"}
    for label in ("in_sample", "out_of_sample"):
        for part in ("diversification", "attribution"):
            for key, value in own[label][part].items():
                if isinstance(value, dict):
                    assert rank0[label][part][key] == pytest.approx(value, rel=1e-12, abs=1e-14), (label, key)
                else:
                    assert rank0[label][part][key] == pytest.approx(value, rel=1e-12, abs=1e-14), (label, key)
    second = json.loads(export(report.run_dir, tmp_path / "second.json", rank=1).read_text())["analytics"]
    w = result.members[1]
    assert second["in_sample"]["diversification"]["hhi"] == pytest.approx(float(np.sum(w**2)), rel=1e-12)


def test_export_refuses_changed_data(run, tmp_path):
    config, _prices, _result, report = run
    (tmp_path / "config.yaml").write_text((report.run_dir / "config.yaml").read_text())
    for f in report.run_dir.glob("checkpoint*"):  # checkpoint.json and the arrays it names
        (tmp_path / f.name).write_bytes(f.read_bytes())
    config2 = load_config(tmp_path / "config.yaml")
    assert config2 == config
    text = (tmp_path / "config.yaml").read_text().replace("end: '2022-12-31'", "end: '2022-06-30'")
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ConfigError, match="configuration differs"):
        export(tmp_path, tmp_path / "x.json")


def test_a_disagreeing_reference_fails_the_run_loudly(run, monkeypatch, tmp_path):
    _config, prices, result, _report = run
    real = Evaluator.metrics

    def skewed(self, weights, engine=None, genes=None):
        out = real(self, weights, engine, genes)
        if engine == "vectorbt":
            out["sharpe"] = out["sharpe"] * (1 + 1e-6)
        return out

    monkeypatch.setattr(Evaluator, "metrics", skewed)
    with pytest.raises(ChampionError, match=r"sharpe is .* with the fast engine but .* with vectorbt"):
        finalize(result, prices, tmp_path, plots=False)
    assert not (tmp_path / "champion.json").exists()


def test_compare_metrics_tolerances():
    # relative for ordinary values; near zero the floor atol / rtol = 1e-2 applies (1e-12 / 1e-2 = 1e-10)
    assert C.compare_metrics({"a": 2.0, "b": 0.0}, {"a": 2.0 + 4e-12, "b": 1e-12}) == pytest.approx(1e-10)
    assert C.compare_metrics({"a": 2.0}, {"a": 2.0 + 4e-12}) == pytest.approx(2e-12)
    with pytest.raises(ChampionError, match="scaled difference"):
        C.compare_metrics({"a": 0.0}, {"a": 2e-10})
    with pytest.raises(ChampionError, match="scaled difference"):
        C.compare_metrics({"a": 1.0}, {"a": 1.0 + 1e-7})


# ---- load's validation: every error names the file and the field -------------------------------------
@pytest.fixture
def good(run):
    return json.loads(run[3].champion_path.read_text())


def _write(tmp_path, record, raw_text=None):
    path = tmp_path / "champ.json"
    path.write_text(raw_text if raw_text is not None else json.dumps(record))
    return path


def _breaks(record, mutate):
    mutate(record)
    return record


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(schema="something/else"), "schema is 'something/else'"),
        (lambda r: r.update(schema_version=C.SCHEMA_VERSION + 1), f"schema_version {C.SCHEMA_VERSION + 1} is newer"),
        (lambda r: r.update(schema_version="1"), "schema_version must be an integer"),
        (lambda r: r.pop("metrics"), "missing field 'metrics'"),
        (lambda r: r.update(assets="AAPL"), "field 'assets' must be a list"),
        (lambda r: r["weights"].pop("AAPL"), r"weights and assets differ \(missing \['AAPL'\]"),
        (lambda r: r["weights"].update(AAPL="0.1"), "weights.AAPL must be a finite number"),
        (lambda r: r["weights"].update(AAPL=r["weights"]["AAPL"] + 0.01), "the sum of weights is"),
        (lambda r: r["weights"].update(AAPL=0.6, AMD=-0.6 + r["weights"]["AAPL"] + r["weights"]["AMD"]), "outside"),
        (lambda r: r["metrics"].update(sharpe="high"), "metrics.sharpe must be a finite number"),
        (lambda r: r["metrics"].pop("sharpe"), "objective 'sharpe' has no value in metrics"),
        (lambda r: r["portfolio"].pop("fees"), "missing field 'portfolio.fees'"),
        (lambda r: r["portfolio"].update(direction="sideways"), "portfolio.direction must be one of"),
        (lambda r: r["data"].pop("close_sha256"), "missing field 'data.close_sha256'"),
        (lambda r: r.update(assets=["AAPL", "AAPL"]), "at least 2 distinct symbols"),
    ],
)
def test_load_rejects_broken_files(good, tmp_path, mutate, message):
    path = _write(tmp_path, _breaks(good, mutate))
    with pytest.raises(ChampionError, match=message) as exc:
        C.load(path)
    assert str(path) in str(exc.value)


def test_load_rejects_negative_weight_in_long_only(good, tmp_path):
    w = good["weights"]
    a, b = sorted(w, key=lambda s: -w[s])[-1], sorted(w, key=lambda s: -w[s])[0]  # smallest and largest holdings
    w[a], w[b] = -0.01, w[b] + w[a] - 0.01  # gross exposure stays 1: only the sign is wrong
    assert abs(sum(abs(x) for x in w.values()) - 1) < 1e-12 and w[b] <= 0.5
    good["portfolio"]["min_weight"] = dict.fromkeys(w, -1.0)
    with pytest.raises(ChampionError, match=rf"weights\.{a} is -0\.01 but the portfolio is long-only"):
        C.load(_write(tmp_path, good))


def test_load_rejects_non_json_nan_and_missing(tmp_path, good):
    with pytest.raises(ChampionError, match="no such champion file"):
        C.load(tmp_path / "missing.json")
    with pytest.raises(ChampionError, match="not valid JSON"):
        C.load(_write(tmp_path, None, raw_text="{not json"))
    text = json.dumps(good).replace(f'"AAPL": {good["weights"]["AAPL"]!r}', '"AAPL": NaN', 1)
    assert "NaN" in text
    with pytest.raises(ChampionError, match=r"not valid JSON .*NaN is not a finite number"):
        C.load(_write(tmp_path, None, raw_text=text))
    with pytest.raises(ChampionError, match="a champion file is a JSON object"):
        C.load(_write(tmp_path, None, raw_text="[1, 2]"))


def test_round_trip_preserves_weights_bit_for_bit(good, tmp_path):
    path = C.write(good, tmp_path / "copy.json")
    champ = C.load(path)
    assert [champ.weight_of(a) for a in champ.assets] == [good["weights"][a] for a in good["assets"]]


# ---- constraints recorded in the champion file (schema version 2) --------------------------------------
def test_champion_records_its_holdings_and_constraints(run):
    _config, prices, result, report = run
    champ = C.load(report.champion_path)
    held = [a for a, w in zip(prices.symbols, result.champion, strict=True) if w != 0]
    assert champ.raw["holdings"] == held and champ.holdings == tuple(held)
    pf = champ.portfolio
    assert pf["min_position"] == 0.001 and pf["max_assets"] is None and pf["groups"] == {}
    assert pf["net_exposure"] is None and pf["max_gross_long"] is None and pf["max_gross_short"] is None
    nonzero = champ.weights[champ.weights != 0]
    assert (nonzero >= 0.001).all()  # no dust in a champion
    assert champ.constraints.violation(champ.weights) is None


def _move(record, small: str, amount: float):
    """Shrink ``small`` to ``amount``, giving the difference to the held asset with the most room under
    max_weight (sum and bounds kept)."""
    w, cap = record["weights"], record["portfolio"]["max_weight"]
    other = min((a for a in record["holdings"] if a != small), key=lambda a: w[a] - cap[a])
    w[other] += w[small] - amount
    w[small] = amount
    return record


def test_load_rejects_weights_that_break_recorded_constraints(good, tmp_path):
    held = good["holdings"]
    assert len(held) >= 2
    smallest = min(held, key=lambda a: good["weights"][a])
    dusty = _move(json.loads(json.dumps(good)), smallest, 1e-4)
    with pytest.raises(
        ChampionError, match=rf"break the recorded constraints: weight of '{smallest}' is 0.0001, under"
    ):
        C.load(_write(tmp_path, dusty))
    capped = json.loads(json.dumps(good))
    capped["portfolio"]["max_assets"] = len(held) - 1
    with pytest.raises(ChampionError, match=rf"holds {len(held)} assets, more than max_assets {len(held) - 1}"):
        C.load(_write(tmp_path, capped))
    grouped = json.loads(json.dumps(good))
    grouped["portfolio"]["groups"] = {"all": list(good["assets"])}
    grouped["portfolio"]["max_group_weight"] = {"all": 0.5}
    with pytest.raises(ChampionError, match=r"group 'all' holds .* above max_group_weight 0.5"):
        C.load(_write(tmp_path, grouped))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("holdings"), "field 'holdings' must be a list of the held assets, got None"),
        (lambda r: r.update(holdings=r["holdings"][1:]), "holdings .* differ from the assets with non-zero weights"),
        (lambda r: r["portfolio"].pop("min_position"), "missing field 'portfolio.min_position'"),
        (lambda r: r["portfolio"].update(min_position="tiny"), "portfolio.min_position must be a number"),
        (lambda r: r["portfolio"].update(max_group_weight={"x": 0.3}), "portfolio.max_group_weight needs"),
    ],
)
def test_load_rejects_broken_constraint_fields(good, tmp_path, mutate, message):
    path = _write(tmp_path, _breaks(good, mutate))
    with pytest.raises(ChampionError, match=message) as exc:
        C.load(path)
    assert str(path) in str(exc.value)


def test_version_1_files_load_without_constraints(good, tmp_path):
    """Files written before the constraints existed: no holdings, no constraint keys, min_position 0."""
    old = json.loads(json.dumps(good))
    old["schema_version"] = 1
    old.pop("holdings")
    for key in ("max_assets", "min_position", "groups", "max_group_weight", "min_group_weight"):
        old["portfolio"].pop(key)
    for key in ("net_exposure", "max_gross_long", "max_gross_short"):
        old["portfolio"].pop(key)
    smallest = min(good["holdings"], key=lambda a: good["weights"][a])
    _move({**old, "holdings": good["holdings"]}, smallest, 1e-6)  # dust was allowed then
    champ = C.load(_write(tmp_path, old))
    assert champ.constraints.min_position == 0.0 and champ.constraints.max_assets is None
    assert champ.weight_of(smallest) == 1e-6


def test_a_constrained_run_writes_a_champion_that_satisfies_them(tmp_path):
    config = load_config(
        None,
        [
            *SMALL,
            "portfolio.max_assets=3",
            "portfolio.min_position=0.1",
            "portfolio.groups={big: [AAPL, MSFT, LLY]}",
            "portfolio.max_group_weight={big: 0.6}",
            "evolution.seed_with_classical=true",
        ],
    )
    config.dump(tmp_path / "config.yaml")
    prices, holdout = split_holdout(load_from_config(config.data), config.evolution.holdout)
    result = evolve(config, prices, tmp_path)
    report = finalize(result, prices, tmp_path, plots=False, holdout=holdout)
    champ = C.load(report.champion_path)
    assert 1 <= len(champ.holdings) <= 3
    assert (np.abs(champ.weights[champ.weights != 0]) >= 0.1).all()
    big = [champ.weight_of(s) for s in ("AAPL", "MSFT", "LLY")]
    assert sum(big) <= 0.6 + 1e-9
    assert champ.portfolio["groups"] == {"big": ["AAPL", "MSFT", "LLY"]}
    # the classical allocations that satisfy the constraints seeded the run; the others say why they did not
    assert set(result.seeds["used"]) | set(report.skipped) == set(CLASSICAL)
    assert "more than max_assets 3" in report.skipped["equal_weight"]
    for name in result.seeds["used"]:
        result.space.validate(result.seeds["allocations"][name], name)
    assert list(report.summary) == ["champion", *result.seeds["allocations"]]
    out = export(tmp_path, tmp_path / "second.json", rank=1)
    assert C.load(out).constraints.k == 3


def test_build_without_constraint_keys_records_none(good, tmp_path):
    """A caller that builds a champion without the constraint keys (e.g. hand-made weights) gets them recorded
    as absent, min_position 0: such a champion was not evolved under them, so small weights are allowed."""
    pf = {k: good["portfolio"][k] for k in ("direction", "min_weight", "max_weight", "rebalance", "fees")}
    pf.update(slippage=0.0, init_cash=1000.0)
    assets = good["assets"]
    w = np.full(len(assets), 0.0005)
    w[0] = 1.0 - w[1:].sum()
    record = C.build(
        symbols=assets,
        weights=w,
        metrics={"sharpe": 1.0},
        objective=["sharpe"],
        portfolio={**pf, "max_weight": 1.0},
        data=good["data"],
        evolution={"seed": 1},
        config_sha256="0" * 64,
        selection="test",
        verification={},
    )
    assert record["portfolio"]["min_position"] == 0.0 and record["portfolio"]["max_assets"] is None
    assert record["holdings"] == assets
    champ = C.load(C.write(record, tmp_path / "hand.json"))
    assert champ.constraints.violation(champ.weights) is None and champ.weight_of(assets[1]) == 0.0005


# ---- the strategy section (schema 3) ----------------------------------------------------------------------
GENES = "evolution.genes={threshold: [0.0, 0.2], rebalance: [W, M, Q, once]}"


@pytest.fixture(scope="module")
def genes_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("genes")
    # execution_delay 1: the out-of-sample references below start on the first held-out bar
    config = load_config(None, [*SMALL, GENES, "evolution.generations=5", "walkforward.execution_delay=1"])
    config.dump(run_dir / "config.yaml")
    prices, holdout = split_holdout(load_from_config(config.data), config.evolution.holdout)
    result = evolve(config, prices, run_dir)
    report = finalize(result, prices, run_dir, holdout=holdout)
    return config, prices, holdout, result, report


def test_a_champion_without_genes_records_the_runs_fixed_strategy(run, good):
    assert good["strategy"] == {"rebalance": "M", "threshold": None, "genes": {}}
    champ = C.load(run[3].champion_path)
    assert champ.rebalance == "M" and champ.threshold is None and champ.strategy["genes"] == {}
    assert good["verification"]["reference"] == "Portfolio.from_orders"


def test_a_champion_with_genes_records_its_strategy_and_its_figures_are_those_of_it(genes_run):
    """champion.json's strategy is the champion's genes; its metrics, in sample and on the held-out window, are an
    independent vectorbt simulation (from_order_func for a drift band) of the weights kept that way."""
    from genetic_sizer.backtest.metrics import compute_metrics
    from genetic_sizer.backtest.simulate import backtest

    config, prices, holdout, result, report = genes_run
    champ = C.load(report.champion_path)
    expected = result.genes.strategy(result.champion_genes)
    assert champ.strategy == {**expected, "genes": {"threshold": [0.0, 0.2], "rebalance": ["W", "M", "Q", "once"]}}
    assert champ.portfolio["rebalance"] == champ.rebalance  # readers of earlier files see the champion's policy
    assert champ.raw["schema_version"] == 4
    assert champ.raw["verification"]["reference"] == "Portfolio.from_order_func"
    assert (
        champ.raw["verification"]["engine"] == "vectorbt" and "from_order_func" in champ.raw["verification"]["against"]
    )
    assert champ.raw["verification"]["max_rel_diff"] < 1e-8
    for window, key in ((prices, "metrics"), (holdout, "out_of_sample")):
        bt = backtest(
            window,
            champ.weights,
            rebalance=champ.rebalance,
            threshold=champ.threshold,
            fees=config.portfolio.fees,
            engine="vectorbt",
        )
        m = compute_metrics(bt.value, init_cash=10_000.0, periods_per_year=window.periods_per_year, traded=bt.traded)
        recorded = champ.metrics if key == "metrics" else champ.raw["out_of_sample"]["metrics"]
        for name in ("sharpe", "cagr", "turnover", "max_drawdown"):
            assert recorded[name] == pytest.approx(m[name][0], rel=1e-8), (key, name)
    assert champ.metrics["sharpe"] == result.members_fitness[0, 0]


def test_members_and_summary_show_the_genes(genes_run, tmp_path):
    import csv

    _config, _prices, _holdout, result, report = genes_run
    with open(report.run_dir / "hall_of_fame.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for k, row in enumerate(rows):
        s = result.strategy(k)
        assert row["rebalance"] == str(s["rebalance"]) and float(row["threshold"]) == s["threshold"]
    with open(report.run_dir / "summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    champion = [r for r in summary if r["allocation"] == "champion"]
    assert {r["window"] for r in champion} == {"in_sample", "out_of_sample"}
    assert all(r["rebalance"] == str(result.strategy(0)["rebalance"]) for r in champion)
    assert all(r["rebalance"] == "M" and r["threshold"] == "" for r in summary if r["allocation"] != "champion")
    # export of another member carries that member's strategy
    second = C.load(export(report.run_dir, tmp_path / "second.json", rank=1))
    assert second.strategy["rebalance"] == result.strategy(1)["rebalance"]
    assert second.threshold == result.strategy(1)["threshold"]
    assert second.metrics["sharpe"] == result.members_fitness[1, 0]


def test_version_2_files_load_with_their_portfolios_strategy(good, tmp_path):
    old = json.loads(json.dumps(good))
    old["schema_version"] = 2
    old.pop("strategy")
    old["portfolio"]["rebalance"] = "W"
    champ = C.load(_write(tmp_path, old))
    assert champ.strategy == {"rebalance": "W", "threshold": None, "genes": {}}
    assert champ.rebalance == "W" and champ.threshold is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("strategy"), "missing field 'strategy'"),
        (lambda r: r["strategy"].pop("threshold"), "missing field 'strategy.threshold'"),
        (lambda r: r["strategy"].update(rebalance="m"), r"strategy\.rebalance must be .* did you mean 'M'"),
        (
            lambda r: r["strategy"].update(rebalance="W"),
            r"strategy\.rebalance 'W' differs from portfolio\.rebalance 'M'",
        ),
        (lambda r: r["strategy"].update(threshold=-0.1), r"strategy\.threshold is -0\.1, must be >= 0"),
        (lambda r: r["strategy"].update(threshold="5%"), r"strategy\.threshold must be a finite number"),
        (
            lambda r: r["strategy"].update(threshold=0.3, genes={"threshold": [0, 0.2]}),
            r"strategy\.threshold 0\.3 is outside the evolved range \[0, 0\.2\]",
        ),
        (
            lambda r: r["strategy"].update(genes={"rebalance": ["W", "Q"]}),
            r"strategy\.rebalance 'M' is not one of the evolved choices \['W', 'Q'\]",
        ),
        (
            lambda r: r["strategy"].update(genes={"leverage": [1, 2]}),
            r"strategy\.genes\.leverage: leverage genes need market: perp \(portfolio\.market is 'spot'\)",
        ),
        (lambda r: r["strategy"].update(leverage=2.0), r"strategy\.leverage is 2\.0 but portfolio\.market is 'spot'"),
    ],
)
def test_load_rejects_broken_strategies(good, tmp_path, mutate, message):
    path = _write(tmp_path, _breaks(good, mutate))
    with pytest.raises(ChampionError, match=message) as exc:
        C.load(path)
    assert str(path) in str(exc.value)


# ---- perp champions ------------------------------------------------------------------------------------------
PERP = [
    "data.source=hyperliquid",
    "portfolio.market=perp",
    "portfolio.leverage=3",
    "portfolio.max_leverage={BTC: 40, default: 10}",
    "portfolio.direction=longshort",
    "portfolio.min_weight=-0.5",
    "portfolio.max_weight=0.6",
    "portfolio.rebalance=D",
    "portfolio.slippage=0.0001",
    "evolution.population=16",
    "evolution.generations=3",
    "evolution.hall_of_fame=4",
]


@pytest.fixture(scope="module")
def perp_run(tmp_path_factory):
    from genetic_sizer.data.synthetic import perp_market

    tmp = tmp_path_factory.mktemp("perp")
    path, _ = perp_market(hours=24 * 60, seed=7).write(tmp / "hl_1h.parquet")
    config = load_config(None, [*PERP, f"data.path={path}"])
    run_dir = tmp / "run"
    run_dir.mkdir()
    config.dump(run_dir / "config.yaml")
    everything = load_from_config(config.data)
    prices, holdout = split_holdout(everything, config.evolution.holdout)
    result = evolve(config, prices, run_dir)
    report = finalize(result, prices, run_dir, holdout=holdout, report_prices=everything)
    return config, prices, holdout, result, report


def test_a_perp_champion_records_its_account_and_is_checked_against_the_reference_loop(perp_run):
    config, prices, _holdout, result, report = perp_run
    champ = C.load(report.champion_path)
    assert champ.market == "perp" and champ.leverage == 3.0 and champ.portfolio["fees"] == 0.00045
    assert champ.portfolio["max_leverage"] == {"BTC": 40.0, "ETH": 10.0, "SOL": 10.0, "DOGE": 10.0, "AVAX": 10.0}
    ver = champ.raw["verification"]
    assert ver["engine"] == "reference" and "plain-Python loop" in ver["against"] and ver["max_rel_diff"] < 1e-9
    assert champ.data["funding"] is True and champ.data["funding_path"].endswith("hl_1h.funding.parquet")
    assert champ.data["close_sha256"] == prices.sha256()  # covers the funding rates
    ev = Evaluator.from_config(prices, config)
    by_reference = ev.metrics(result.champion[None], engine="reference")
    for name in ("sharpe", "funding_paid", "funding_received", "fees_paid", "liquidated"):
        assert champ.metrics[name] == pytest.approx(float(by_reference[name][0]), rel=1e-9, abs=1e-9)
    assert champ.metrics["fees_paid"] > 0 and champ.metrics["funding_paid"] + champ.metrics["funding_received"] > 0
    assert champ.raw["out_of_sample"]["metrics"]["funding_paid"] >= 0
    rows = (report.run_dir / "summary.csv").read_text().splitlines()
    assert rows[0].endswith("wiped_out,funding_paid,funding_received,fees_paid,liquidated")
    assert (report.run_dir / "report.html").stat().st_size > 0
    assert "perpetuals at leverage 3" in (report.run_dir / "report.html").read_text()
    second = C.load(export(report.run_dir, report.run_dir.parent / "second.json", rank=1))
    assert second.market == "perp" and second.raw["verification"]["engine"] == "reference"
    np.testing.assert_array_equal(second.weights, result.members[1])


def test_a_disagreeing_perp_reference_fails_the_run_loudly(perp_run, monkeypatch, tmp_path):
    _config, prices, _holdout, result, _report = perp_run
    real = Evaluator.metrics

    def skewed(self, weights, engine=None, genes=None):
        out = real(self, weights, engine, genes)
        if engine == "reference":
            out["funding_paid"] = out["funding_paid"] * (1 + 1e-6)
        return out

    monkeypatch.setattr(Evaluator, "metrics", skewed)
    with pytest.raises(ChampionError, match=r"funding_paid is .* with the fast engine but .* with reference"):
        finalize(result, prices, tmp_path, plots=False)
    assert not (tmp_path / "champion.json").exists()


def test_the_leverage_a_champion_is_sized_at(perp_run, good, tmp_path):
    perp = C.load(perp_run[4].champion_path)
    assert C.resolve_leverage(perp, None) == 3.0 and C.resolve_leverage(perp, 3.0) == 3.0
    with pytest.raises(ConfigError, match="--leverage 5 differs from the leverage 3 this perp champion was evolved at"):
        C.resolve_leverage(perp, 5.0)
    assert C.resolve_leverage(perp, 5.0, allow_mismatch=True) == 5.0
    spot = C.load(_write(tmp_path, good))
    assert spot.market == "spot" and spot.leverage is None
    assert C.resolve_leverage(spot, None) == 1.0 and C.resolve_leverage(spot, 5.0) == 5.0
    old = json.loads(json.dumps(good))
    old["schema_version"] = 2
    old["portfolio"].pop("market")  # written before the account model existed: spot
    assert C.load(_write(tmp_path, old)).market == "spot"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["portfolio"].update(market="futures"), "portfolio.market must be one of \\['spot', 'perp'\\]"),
        (lambda r: r["portfolio"].pop("leverage"), "missing field 'portfolio.leverage'"),
        (lambda r: r["portfolio"].update(leverage=-2), "portfolio.leverage must be > 0"),
        (lambda r: r["portfolio"]["max_leverage"].update(BTC=2), "portfolio.max_leverage.BTC is 2, below 1 or"),
        (lambda r: r["portfolio"]["max_leverage"].pop("BTC"), "must be null or give a value for every asset"),
    ],
)
def test_load_rejects_broken_perp_fields(perp_run, tmp_path, mutate, message):
    record = json.loads(perp_run[4].champion_path.read_text())
    with pytest.raises(ChampionError, match=message):
        C.load(_write(tmp_path, _breaks(record, mutate)))


# ---- schema 4: the strategy section and the account model together; both kinds of version 3 ------------------
def test_both_kinds_of_version_3_files_load(good, perp_run, tmp_path):
    """Two lines of development each wrote a version 3: one with the strategy section (spot only), one with the
    account model (no strategy). Both load, told apart by content; version 4 requires the strategy section."""
    drift3 = json.loads(json.dumps(good))
    drift3["schema_version"] = 3
    drift3["portfolio"].pop("market")
    drift3["verification"] = {"engine": "vectorbt", "reference": "Portfolio.from_order_func", "max_rel_diff": 0.0}
    drift3["strategy"] = {"rebalance": "M", "threshold": 0.05, "genes": {"threshold": [0.0, 0.1]}}
    champ = C.load(_write(tmp_path, drift3))
    assert champ.market == "spot" and champ.leverage is None
    assert champ.strategy == {"rebalance": "M", "threshold": 0.05, "genes": {"threshold": [0.0, 0.1]}}
    drift3["strategy"]["threshold"] = 0.2  # its strategy is still checked: outside the evolved range
    with pytest.raises(ChampionError, match=r"strategy\.threshold 0\.2 is outside the evolved range"):
        C.load(_write(tmp_path, drift3))

    perp3 = json.loads(perp_run[4].champion_path.read_text())
    assert perp3["schema_version"] == 4 and perp3["strategy"]["rebalance"] == "D"
    perp3["schema_version"] = 3
    perp3.pop("strategy")
    perp3["verification"].pop("reference")
    champ = C.load(_write(tmp_path, perp3))
    assert champ.market == "perp" and champ.leverage == 3.0
    assert champ.strategy == {"rebalance": "D", "threshold": None, "genes": {}}  # its portfolio's policy, no band
    perp3["portfolio"]["leverage"] = -1  # its account model is still checked
    with pytest.raises(ChampionError, match=r"portfolio\.leverage must be > 0"):
        C.load(_write(tmp_path, perp3))

    v4 = json.loads(perp_run[4].champion_path.read_text())
    v4.pop("strategy")
    with pytest.raises(ChampionError, match="missing field 'strategy'"):
        C.load(_write(tmp_path, v4))


@pytest.fixture(scope="module")
def perp_genes_run(tmp_path_factory):
    from genetic_sizer.data.synthetic import perp_market

    tmp = tmp_path_factory.mktemp("perp_genes")
    path, _ = perp_market(hours=24 * 60, seed=7).write(tmp / "hl_1h.parquet")
    genes = "evolution.genes={threshold: [0.0, 0.1], rebalance: [D, W, once]}"
    # execution_delay 1: the out-of-sample references below start on the first held-out bar
    config = load_config(None, [*PERP, f"data.path={path}", genes, "walkforward.execution_delay=1"])
    run_dir = tmp / "run"
    run_dir.mkdir()
    config.dump(run_dir / "config.yaml")
    prices, holdout = split_holdout(load_from_config(config.data), config.evolution.holdout)
    result = evolve(config, prices, run_dir)
    report = finalize(result, prices, run_dir, holdout=holdout, plots=False)
    return config, prices, holdout, result, report


def test_a_perp_champion_with_genes_records_both_and_its_figures_are_the_reference_loops(perp_genes_run):
    """Strategy genes in the perp account: the champion file (schema 4) has the evolved strategy and the account
    model; its metrics, in sample and held out, are the plain-Python reference loop's with that strategy."""
    from genetic_sizer.backtest.metrics import account_metrics, compute_metrics
    from genetic_sizer.backtest.simulate import backtest

    config, prices, holdout, result, report = perp_genes_run
    champ = C.load(report.champion_path)
    assert champ.raw["schema_version"] == 4 and champ.market == "perp" and champ.leverage == 3.0
    expected = result.genes.strategy(result.champion_genes)
    evolved = {"threshold": [0.0, 0.1], "rebalance": ["D", "W", "once"]}
    assert champ.strategy == {**expected, "leverage": 3.0, "genes": evolved}  # the run's fixed leverage
    assert champ.portfolio["rebalance"] == champ.rebalance
    ver = champ.raw["verification"]
    assert ver["engine"] == "reference" and ver["reference"] == "perp.reference_genome" and ver["max_rel_diff"] < 1e-9
    pf = config.portfolio
    for window, recorded in ((prices, champ.metrics), (holdout, champ.raw["out_of_sample"]["metrics"])):
        bt = backtest(
            window,
            champ.weights,
            rebalance=champ.rebalance,
            threshold=champ.threshold,
            fees=pf.fees,
            slippage=pf.slippage,
            engine="reference",
            **pf.account(),
        )
        m = compute_metrics(
            bt.value, init_cash=pf.init_cash, periods_per_year=window.periods_per_year, traded=bt.traded
        )
        m.update(account_metrics(bt))
        for name in ("sharpe", "turnover", "funding_paid", "fees_paid"):
            assert recorded[name] == pytest.approx(float(m[name][0]), rel=1e-9, abs=1e-9), name
    assert champ.metrics["sharpe"] == result.members_fitness[0, 0]
    # the members table shows each member's strategy; the classical allocations keep the run's policy
    rows = (report.run_dir / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("allocation,window,rebalance,threshold,") and rows[0].endswith("liquidated")


# ---- the leverage gene ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def perp_leverage_run(tmp_path_factory):
    from genetic_sizer.data.synthetic import perp_market

    tmp = tmp_path_factory.mktemp("perp_leverage")
    path, _ = perp_market(hours=24 * 60, seed=7).write(tmp / "hl_1h.parquet")
    genes = "evolution.genes={threshold: [0.0, 0.1], leverage: [1.0, 6.0]}"
    # execution_delay 1: the out-of-sample references below start on the first held-out bar
    config = load_config(None, [*PERP, f"data.path={path}", genes, "objective=calmar", "walkforward.execution_delay=1"])
    run_dir = tmp / "run"
    run_dir.mkdir()
    config.dump(run_dir / "config.yaml")
    everything = load_from_config(config.data)
    prices, holdout = split_holdout(everything, config.evolution.holdout)
    result = evolve(config, prices, run_dir)
    report = finalize(result, prices, run_dir, holdout=holdout, report_prices=everything)
    return config, prices, holdout, result, report


def test_a_perp_champion_with_a_leverage_gene_is_sized_at_its_evolved_leverage(perp_leverage_run, tmp_path):
    """strategy.leverage is the champion's evolved leverage and equals portfolio.leverage (what the live sizer sizes
    at); its metrics, in sample and held out, are the plain-Python reference loop's at that leverage; the tables show
    every member's leverage and the classical allocations' portfolio.leverage; the report and plots say it."""
    import csv

    from genetic_sizer.backtest.metrics import account_metrics, compute_metrics
    from genetic_sizer.backtest.simulate import backtest

    config, prices, holdout, result, report = perp_leverage_run
    champ = C.load(report.champion_path)
    lev = float(result.champion_genes[1])
    assert 1.0 <= lev <= 6.0 and lev != 3.0
    assert champ.raw["schema_version"] == 4 and champ.market == "perp"
    assert champ.strategy == {
        "rebalance": "D",
        "threshold": float(result.champion_genes[0]),
        "leverage": lev,
        "genes": {"threshold": [0.0, 0.1], "leverage": [1.0, 6.0]},
    }
    assert champ.leverage == lev and champ.portfolio["leverage"] == lev and champ.raw["strategy"]["leverage"] == lev
    assert C.resolve_leverage(champ, None) == lev
    with pytest.raises(ConfigError, match=r"differs from the leverage .* this perp champion was evolved at"):
        C.resolve_leverage(champ, 3.0)
    pf = config.portfolio
    ver = champ.raw["verification"]
    assert ver["engine"] == "reference" and ver["max_rel_diff"] < 1e-9
    for window, recorded in ((prices, champ.metrics), (holdout, champ.raw["out_of_sample"]["metrics"])):
        bt = backtest(
            window,
            champ.weights,
            rebalance="D",
            threshold=champ.threshold,
            fees=pf.fees,
            slippage=pf.slippage,
            engine="reference",
            market="perp",
            leverage=lev,
            max_leverage=pf.max_leverage,
        )
        m = compute_metrics(
            bt.value, init_cash=pf.init_cash, periods_per_year=window.periods_per_year, traded=bt.traded
        )
        m.update(account_metrics(bt))
        for name in ("calmar", "sharpe", "turnover", "funding_paid", "fees_paid"):
            assert recorded[name] == pytest.approx(float(m[name][0]), rel=1e-9, abs=1e-9), name
    assert champ.metrics["calmar"] == result.members_fitness[0, 0]
    with open(report.run_dir / "hall_of_fame.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["leverage"]) for r in rows] == [result.strategy(k)["leverage"] for k in range(len(rows))]
    with open(report.run_dir / "summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert all(float(r["leverage"]) == (lev if r["allocation"] == "champion" else 3.0) for r in summary)
    logbook = (report.run_dir / "logbook.csv").read_text().splitlines()[0].split(",")
    assert "leverage_mean" in logbook and "leverage_std" in logbook
    page = (report.run_dir / "report.html").read_text()
    assert "evolved leverage in [1, 6] (the classical allocations at 3" in page
    assert "longshort, rebalance D, drift band evolved in [0, 0.1], fees 0.00045" in page
    assert f"leverage {lev:.3g}x" in page and "Leverage gene by generation" in page
    assert (report.run_dir / "fitness.png").stat().st_size > 0
    # export of another member carries its own leverage, in strategy and portfolio alike
    second = C.load(export(report.run_dir, tmp_path / "second.json", rank=1))
    assert second.leverage == second.strategy["leverage"] == result.strategy(1)["leverage"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda r: r["strategy"].update(leverage=r["strategy"]["leverage"] + 0.5),
            r"strategy\.leverage .* differs from portfolio\.leverage",
        ),
        (lambda r: r["portfolio"].update(leverage=1.0), r"strategy\.leverage .* differs from portfolio\.leverage 1\.0"),
        (
            lambda r: (r["strategy"].update(leverage=6.5), r["portfolio"].update(leverage=6.5)),
            r"strategy\.leverage 6\.5 is outside the evolved range \[1, 6\]",
        ),
        (lambda r: r["strategy"].pop("leverage"), r"missing field 'strategy\.leverage'"),
        (lambda r: r["strategy"].update(leverage="3x"), r"strategy\.leverage must be a finite number"),
        (
            lambda r: (r["strategy"].update(leverage=12.0), r["portfolio"].update(leverage=12.0)),
            r"portfolio\.max_leverage\.ETH is 10\.0, below 1 or the leverage 12",
        ),
    ],
)
def test_load_checks_the_strategys_leverage(perp_leverage_run, tmp_path, mutate, message):
    record = json.loads(perp_leverage_run[4].champion_path.read_text())
    with pytest.raises(ChampionError, match=message):
        C.load(_write(tmp_path, _breaks(record, mutate)))


def test_version_4_perp_files_without_strategy_leverage_still_load(perp_run, tmp_path):
    """Written before strategy.leverage existed: a version 4 perp file loads at its portfolio.leverage."""
    record = json.loads(perp_run[4].champion_path.read_text())
    assert record["strategy"]["leverage"] == record["portfolio"]["leverage"] == 3.0
    record["strategy"].pop("leverage")
    champ = C.load(_write(tmp_path, record))
    assert champ.leverage == 3.0 and "leverage" not in champ.strategy and C.resolve_leverage(champ, None) == 3.0


def test_the_report_header_names_the_evolved_policies_every_n_bars_included(genes_run):
    from genetic_sizer.runs.report import _policy_text

    page = " ".join((genes_run[4].run_dir / "report.html").read_text().split())
    assert "rebalance evolved among W, M, Q, once (classical allocations: M), drift band evolved in [0, 0.2]" in page
    config = load_config(None, ["evolution.genes={rebalance: [M, 21]}"])  # an every-N-bars policy is an int
    assert _policy_text(config.portfolio, config.evolution.genes) == (
        "rebalance evolved among M, 21 (classical allocations: M)"
    )

"""Run configuration: defaults, YAML, overrides, round trips and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from genetic_sizer.config import RunConfig, apply_overrides, load_config
from genetic_sizer.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_default_config_loads():
    cfg = load_config(ROOT / "configs" / "default.yaml")
    assert cfg.data.source == "default" and cfg.data.start == "2015-01-01"
    assert cfg.objective == ("sharpe",)
    assert cfg.portfolio.rebalance == "M" and cfg.portfolio.fees == 0.0005
    assert cfg.evolution.population == 100 and cfg.evolution.seed == 42
    assert cfg.engine == "fast" and cfg.parallel.backend == "serial"


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_every_shipped_config_is_valid_and_feasible(name, tmp_path):
    from genetic_sizer.data.loaders import load_from_config
    from genetic_sizer.evolution.evaluator import Evaluator
    from genetic_sizer.evolution.space import GenomeSpace
    from genetic_sizer.validation.folds import make_folds
    from genetic_sizer.validation.holdout import split_holdout

    cfg = load_config(ROOT / "configs" / name)
    if cfg.data.source == "hyperliquid":  # a file the user fetches: a synthetic one in the fetched format
        from genetic_sizer.data.synthetic import perp_market

        path, _ = perp_market(hours=24 * 120).write(tmp_path / "hl_1h.parquet")
        cfg = load_config(ROOT / "configs" / name, [f"data.path={path}"])
    prices = load_from_config(cfg.data)
    Evaluator.from_config(prices, cfg)  # market settings (leverage within every max_leverage, funding present)
    split_holdout(prices, cfg.evolution.holdout)
    assert len(make_folds(prices.index, cfg.walkforward)) >= 1
    space = GenomeSpace.from_config(prices.symbols, cfg.portfolio)
    space.validate_population(space.sample(np.random.default_rng(0), 10))
    if cfg.multi_objective:
        assert cfg.evolution.population % 4 == 0


def test_constrained_config_shows_every_constraint():
    cfg = load_config(ROOT / "configs" / "constrained.yaml")
    pf = cfg.portfolio
    assert pf.max_assets == 8 and pf.min_position == 0.05
    assert pf.groups["tech"] == ("AAPL", "AMD", "MSFT") and pf.max_group_weight["tech"] == 0.3
    assert pf.min_group_weight == {"staples": 0.1}
    assert pf.net_exposure == (0.0, 0.3) and pf.max_gross_short == 0.45 and pf.max_gross_long is None
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.sha256() == cfg.sha256()
    assert cfg.to_dict()["portfolio"]["groups"]["tech"] == ["AAPL", "AMD", "MSFT"]  # plain YAML / JSON


def test_constraint_defaults_and_fingerprint():
    from genetic_sizer.vocab import DEFAULT_MIN_POSITION

    pf = load_config(None).portfolio
    assert pf.min_position == DEFAULT_MIN_POSITION == 0.001
    assert pf.max_assets is None and pf.groups is None and pf.net_exposure is None
    base = load_config(None).sha256()
    assert load_config(None, ["portfolio.max_assets=5"]).sha256() != base
    assert load_config(None, ["portfolio.min_position=0"]).sha256() != base
    assert (
        load_config(None, ["portfolio.groups={a: [AAPL]}", "portfolio.max_group_weight=0.5"]).portfolio.max_group_weight
        == 0.5
    )


def test_issue_example_keys_are_accepted(tmp_path):
    text = """
data: {source: default, path: null, symbols: null, start: null, end: null}
portfolio: {direction: longonly, min_weight: 0.0, max_weight: 1.0, rebalance: M, fees: 0.0005, slippage: 0.0,
            init_cash: 10000}
objective: [sharpe, max_drawdown, turnover]
evolution: {population: 200, generations: 50, seed: 42, seed_with_classical: false}
engine: fast
parallel: {backend: serial}
"""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    cfg = load_config(path)
    assert cfg.multi_objective and cfg.objective == ("sharpe", "max_drawdown", "turnover")
    assert cfg.portfolio.init_cash == 10000.0 and isinstance(cfg.portfolio.init_cash, float)


def test_yaml_dates_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {start: 2015-01-01}\nevolution: {population: 10}\n")
    cfg = load_config(
        path,
        [
            "evolution.population=24",
            "objective=[sharpe, turnover]",
            "portfolio.rebalance=21",
            "portfolio.max_weight={AAPL: 0.3, default: 0.5}",
        ],
    )
    assert cfg.data.start == "2015-01-01"  # a YAML date becomes its ISO string
    assert cfg.evolution.population == 24
    assert cfg.objective == ("sharpe", "turnover")
    assert cfg.portfolio.rebalance == 21
    assert cfg.portfolio.max_weight == {"AAPL": 0.3, "default": 0.5}


def test_round_trip_and_fingerprint(tmp_path):
    cfg = load_config(None, ["objective=[sharpe, max_drawdown]", "data.symbols=[AAPL, MSFT]", "evolution.seed=7"])
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.sha256() == cfg.sha256()
    cfg.dump(tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == cfg
    assert load_config(None, ["evolution.seed=8"]).sha256() != load_config(None, ["evolution.seed=7"]).sha256()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["evolutoin.population=3"], "unknown key 'evolutoin'"),
        (["evolution.popsize=30"], "unknown key 'evolution.popsize'"),
        (["evolution.population=many"], "evolution.population must be an integer, got 'many'"),
        (["evolution.population=2"], "evolution.population must be in [4,"),
        (["evolution.crossover_prob=1.5"], "evolution.crossover_prob must be in [0, 1]"),
        (["evolution.seed_with_classical=maybe"], "evolution.seed_with_classical must be true or false"),
        (["evolution.elite=200"], "evolution.elite must be in [0, 199]"),
        (["portfolio.fees=1.5"], "portfolio.fees must be in [0, 1)"),
        (["portfolio.fees=.nan"], "portfolio.fees must be finite"),
        (["portfolio.rebalance=X"], "portfolio.rebalance must be one of"),
        (["portfolio.rebalance=0"], "portfolio.rebalance must be one of"),
        (["portfolio.direction=short"], "portfolio.direction must be one of ['longonly', 'longshort']"),
        (["portfolio.max_weight={AAPL: two}"], "portfolio.max_weight.AAPL must be a number"),
        (["objective=sharp"], "objective must be one of"),
        (["objective=[sharpe, sharpe]"], "objective must be a list without duplicates"),
        (["objective=[]"], "objective must be a name or a non-empty list"),
        (["engine=turbo"], "engine must be one of ['fast', 'vectorbt']"),
        (["parallel.backend=dask"], "parallel.backend must be one of ['serial', 'ray']"),
        (["parallel.num_workers=0"], "parallel.num_workers must be in [1,"),
        (["parallel.batch_size=0"], "parallel.batch_size must be in [1,"),
        (["parallel.address=127.0.0.1:6379"], "parallel.backend must be 'ray' when parallel.address"),
        (["data.source=sql"], "data.source must be one of ['default', 'csv', 'parquet', 'hyperliquid']"),
        (["data.path=prices.csv"], "data.path must be null for source 'default'"),
        (["data.source=csv"], "data.path must be a file path for source 'csv'"),
        (["data.symbols=AAPL"], "data.symbols must be a non-empty list"),
        (["portfolio=3"], "portfolio must be a mapping"),
        (["portfolio.max_assets=0"], "portfolio.max_assets must be a positive integer or null, got 0"),
        (["portfolio.max_assets=2.5"], "portfolio.max_assets must be a positive integer or null, got 2.5"),
        (["portfolio.min_position=1.5"], "portfolio.min_position must be a finite number in [0, 1], got 1.5"),
        (["portfolio.groups=[AAPL, MSFT]"], "portfolio.groups must be a mapping {NAME: [SYMBOL, ...]}"),
        (["portfolio.groups={tech: AAPL}"], "portfolio.groups.tech must be a non-empty list of symbols"),
        (["portfolio.groups={tech: [AAPL, AAPL]}"], "portfolio.groups.tech lists a symbol twice"),
        (["portfolio.max_group_weight={tech: 0.3}"], "portfolio.max_group_weight needs portfolio.groups"),
        (
            ["portfolio.groups={tech: [AAPL]}", "portfolio.max_group_weight={tek: 0.3}"],
            "portfolio.max_group_weight: unknown group(s) ['tek']; groups are ['tech']",
        ),
        (
            ["portfolio.groups={tech: [AAPL]}", "portfolio.min_group_weight={tech: 2}"],
            "portfolio.min_group_weight.tech must be a finite number in [0, 1], got 2",
        ),
        (["portfolio.net_exposure=[0, 0]"], "portfolio.net_exposure applies to direction: longshort"),
        (
            ["portfolio.direction=longshort", "portfolio.net_exposure=[0.2]"],
            "portfolio.net_exposure must be [lo, hi], got [0.2]",
        ),
        (
            ["portfolio.direction=longshort", "portfolio.net_exposure=[0.2, -0.2]"],
            "portfolio.net_exposure is [0.2, -0.2]: lo > hi",
        ),
        (
            ["portfolio.direction=longshort", "portfolio.max_gross_short=-1"],
            "portfolio.max_gross_short must be a finite number in [0, 1], got -1",
        ),
        (
            ["evolution.support_prob=0.5"],
            "evolution.shift_prob + transfer_prob + flip_prob + support_prob must be <= 1",
        ),
        (["evolution.population"], "--set expects key.path=value"),
    ],
)
def test_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as exc:
        load_config(None, overrides)
    assert message in str(exc.value)


def test_parallel_settings_do_not_change_the_fingerprint():
    """Where evaluation runs never changes results, so a serial run can be resumed on a cluster."""
    serial = load_config(None)
    ray = load_config(None, ["parallel={backend: ray, address: '127.0.0.1:6379', num_workers: 4, batch_size: 16}"])
    assert ray.parallel.address == "127.0.0.1:6379" and ray.parallel.num_workers == 4
    assert ray.sha256() == serial.sha256()
    assert load_config(None, ["portfolio.fees=0.001"]).sha256() != serial.sha256()


def test_checkpoint_interval_is_a_run_setting_outside_the_fingerprint(tmp_path):
    """``run.checkpoint_every``: seconds >= 0 (default 5, 0 = every generation); it never changes results, so it
    is not part of the fingerprint, round-trips through config.yaml and a config.yaml without it still loads."""
    from genetic_sizer.config import DEFAULT_CHECKPOINT_EVERY

    default = load_config(None)
    assert default.run.checkpoint_every == DEFAULT_CHECKPOINT_EVERY == 5.0
    every = load_config(None, ["run.checkpoint_every=0"])
    assert every.run.checkpoint_every == 0.0 and every.sha256() == default.sha256()
    assert load_config(None, ["run.checkpoint_every=30"]).sha256() == default.sha256()
    path = every.dump(tmp_path / "config.yaml")
    assert load_config(path).run.checkpoint_every == 0.0
    old = yaml.safe_load(path.read_text())
    del old["run"]["checkpoint_every"]
    path.write_text(yaml.safe_dump(old))
    assert load_config(path).run.checkpoint_every == 5.0 and load_config(path).sha256() == default.sha256()
    for bad in ("-1", "true", "fast", ".inf", "100000"):
        with pytest.raises(ConfigError, match=r"run\.checkpoint_every must be"):
            load_config(None, [f"run.checkpoint_every={bad}"])


def test_hall_of_fame_defaults_to_what_the_population_allows():
    assert load_config(None, ["evolution.population=8"]).evolution.hall_of_fame == 8
    assert load_config(None).evolution.hall_of_fame == 10
    with pytest.raises(ConfigError, match=r"evolution.hall_of_fame must be in \[1, 8\], got 9"):
        load_config(None, ["evolution.population=8", "evolution.hall_of_fame=9"])


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("evolution: {population: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="a config is a mapping"):
        load_config(top)


def test_overrides_do_not_touch_the_input():
    raw = {"evolution": {"population": 10}}
    out = apply_overrides(raw, ["evolution.population=20"])
    assert raw == {"evolution": {"population": 10}} and out["evolution"]["population"] == 20
    with pytest.raises(ConfigError, match="'population' is not a section"):
        apply_overrides(raw, ["evolution.population.x=1"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("just a string\n", "a config is a mapping of sections (data:, portfolio:, ...), got a str"),
        ("- data\n- portfolio\n", "got a list"),
        ("data: {start: 2015-02-30}\n", "data.start must be a date or time such as 2015-01-31"),
        ("data: {end: '2021-13-01'}\n", "data.end must be a date or time"),
    ],
)
def test_config_files_that_are_not_configs_are_named_errors_even_with_overrides(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    for overrides in ((), ("evolution.seed=1",)):
        with pytest.raises(ConfigError) as info:
            load_config(path, overrides)
        assert message in str(info.value)


def test_impossible_date_in_an_override_names_the_key():
    with pytest.raises(ConfigError, match=r"data\.start must be a date.*'2015-02-30'"):
        load_config(None, ["data.start=2015-02-30"])


def test_non_utf8_config_is_a_named_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("portfolio: {fees: 0.001}  # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.yaml: not UTF-8 text"):
        load_config(path)


@pytest.mark.parametrize(("written", "value"), [("1e-3", 0.001), ("5E-4", 0.0005), ("+2.5e-4", 0.00025), ("0", 0.0)])
def test_exponent_numbers_are_numbers(tmp_path, written, value):
    path = tmp_path / "c.yaml"
    path.write_text(f"portfolio: {{fees: {written}}}\n")
    assert load_config(path).portfolio.fees == value
    assert load_config(None, [f"portfolio.fees={written}"]).portfolio.fees == value


def test_dates_keep_the_fingerprint_of_earlier_runs(tmp_path):
    # YAML dates are now read as text; the fingerprint of a config written either way is the same.
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("data: {start: 2015-01-01, end: 2022-12-31}\n")
    b.write_text("data: {start: '2015-01-01', end: '2022-12-31'}\n")
    assert load_config(a).sha256() == load_config(b).sha256()
    assert load_config(a).data.start == "2015-01-01"


def test_strategy_config_evolves_a_drift_band_and_a_policy():
    cfg = load_config(ROOT / "configs" / "strategy.yaml")
    assert cfg.evolution.genes == {"threshold": [0.0, 0.25], "rebalance": ["W", "M", "Q", "once"]}
    # without the genes, the same file is the fixed-policy run it is compared with
    fixed = load_config(ROOT / "configs" / "strategy.yaml", ["evolution.genes=null", "portfolio.rebalance=W"])
    assert fixed.evolution.genes is None and fixed.portfolio.rebalance == "W"


def test_the_perp_account_settings():
    pf = load_config(None, ["portfolio.market=perp", "portfolio.leverage=3"]).portfolio
    assert (pf.market, pf.leverage, pf.max_leverage, pf.fees) == ("perp", 3.0, None, 0.00045)  # base taker fee
    assert load_config(None).portfolio.fees == 0.0005  # spot keeps its default
    assert load_config(None, ["portfolio.market=perp", "portfolio.fees=0.0002"]).portfolio.fees == 0.0002
    caps = load_config(None, ["portfolio.market=perp", "portfolio.max_leverage={BTC: 40, default: 10}"])
    assert caps.portfolio.max_leverage == {"BTC": 40.0, "default": 10.0}
    assert caps.portfolio.account() == {
        "market": "perp",
        "leverage": 1.0,
        "max_leverage": {"BTC": 40.0, "default": 10.0},
    }
    again = RunConfig.from_dict(caps.to_dict())
    assert again == caps and again.sha256() == caps.sha256()
    for overrides, message in [
        (["portfolio.market=futures"], "portfolio.market must be one of \\['spot', 'perp'\\]"),
        (["portfolio.leverage=3"], "portfolio.leverage must be 1 for market spot"),
        (["portfolio.max_leverage=10"], "portfolio.max_leverage must be null for market spot"),
        (["portfolio.market=perp", "portfolio.leverage=0"], "portfolio.leverage must be in \\(0, 1000\\]"),
        (["portfolio.market=perp", "portfolio.leverage=12", "portfolio.max_leverage=10"], "at most portfolio.max"),
        (["portfolio.market=perp", "portfolio.max_leverage={BTC: 0.5}"], "portfolio.max_leverage.BTC must be in"),
        (["data.funding_path=true"], "data.funding_path must be a funding file"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(None, overrides)
    assert load_config(None, ["data.funding_path=false"]).data.funding_path is False


def test_spot_fingerprints_are_those_of_configs_written_before_the_perp_keys():
    """A run started before market / leverage / max_leverage / risk_free / funding_path / walkforward.execution_delay
    (and the strategy genes) existed still resumes: its fingerprint is the hash of the config without those keys, as it
    was computed then."""
    import hashlib
    import json

    for cfg in (load_config(None), load_config(ROOT / "configs" / "constrained.yaml")):
        old = {k: v for k, v in cfg.to_dict().items() if k not in ("parallel", "run", "robust", "allocators")}
        for key in ("market", "leverage", "max_leverage", "risk_free"):
            del old["portfolio"][key]
        del old["portfolio"]["min_effective_assets"]  # issue 23's norm constraint, added later
        del old["portfolio"]["min_assets"]  # issue 25's least number of positions, added later
        del old["data"]["funding_path"]
        del old["data"]["kind"], old["data"]["returns_unit"]  # issue 23's files of returns, added later
        del old["data"]["strategies"]  # issue 26's run directories as assets, added later
        for key in ("vol_target", "vol_lookback", "min_trade", "min_trade_value", "max_turnover"):
            del old["portfolio"][key]  # issue 26's rebalancing policies, added later
        del old["walkforward"]["execution_delay"]
        for key in ("genes", "gene_mutation_prob", "gene_sigma"):
            del old["evolution"][key]
        assert cfg.sha256() == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()
    perp = load_config(None, ["portfolio.market=perp", "portfolio.fees=0.0005"])
    assert perp.sha256() != load_config(None).sha256()
    robust = load_config(None, ["robust.resample=blocks"])
    assert robust.sha256() != load_config(None).sha256()
    assert load_config(None, ["data.funding_path=false"]).sha256() != load_config(None).sha256()
    assert load_config(None, ["portfolio.risk_free=0.02"]).sha256() != load_config(None).sha256()


def test_perp_strategy_config_evolves_a_leverage_and_a_drift_band(tmp_path):
    """configs/perp_strategy.yaml: a leverage gene with the threshold gene in the perp account, within every coin's
    max_leverage; on a synthetic file in the fetched format each genome is simulated at its own leverage. Without the
    genes the same file is the fixed-leverage run it is compared with."""
    from genetic_sizer.data.loaders import load_from_config
    from genetic_sizer.data.synthetic import perp_market
    from genetic_sizer.evolution.evaluator import Evaluator

    path, _ = perp_market(hours=24 * 30).write(tmp_path / "hl_1h.parquet")
    cfg = load_config(ROOT / "configs" / "perp_strategy.yaml", [f"data.path={path}"])
    assert cfg.portfolio.market == "perp" and cfg.evolution.genes == {"threshold": [0.0, 0.1], "leverage": [1.0, 5.0]}
    ev = Evaluator.from_config(load_from_config(cfg.data), cfg)
    assert ev.genes.names == ("threshold", "leverage") and ev.genes.default_leverage == 2.0
    w = np.full((2, 5), 0.2)
    bt = ev.backtest(w, genes=np.array([[0.05, 1.0], [0.05, 5.0]]))
    np.testing.assert_array_equal(bt.leverage, [1.0, 5.0])
    fixed = load_config(ROOT / "configs" / "perp_strategy.yaml", ["evolution.genes=null", "portfolio.leverage=3"])
    assert fixed.evolution.genes is None and fixed.portfolio.leverage == 3.0
    with pytest.raises(ConfigError, match=r"evolution\.genes\.leverage hi 12 is above portfolio\.max_leverage of"):
        Evaluator.from_config(
            load_from_config(cfg.data),
            load_config(
                ROOT / "configs" / "perp_strategy.yaml", [f"data.path={path}", "evolution.genes={leverage: [1, 12]}"]
            ),
        )

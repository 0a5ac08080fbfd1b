"""Walk-forward folds and evolution."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.backtest.metrics import compute_metrics
from genetic_sizer.backtest.schedule import rebalance_mask
from genetic_sizer.backtest.simulate import backtest
from genetic_sizer.config import WalkForwardConfig, load_config
from genetic_sizer.data.loaders import load_from_config
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.runs.rundir import RunDir
from genetic_sizer.validation.folds import make_folds
from genetic_sizer.validation.holdout import split_holdout
from genetic_sizer.validation.stitch import STRATEGIES
from genetic_sizer.validation.walkforward import run_walkforward


def _days(n, start="2020-01-01"):
    return pd.date_range(start, periods=n, freq="D", tz="UTC")


def _tuples(folds):
    return [(f.train_start, f.train_end, f.test_start, f.test_end) for f in folds]


def test_rolling_folds_in_bars_by_hand():
    # 10 bars, train 3, test 2: test windows back to back, the partial last one (bar 9) dropped
    folds = make_folds(_days(10), WalkForwardConfig(train=3, test=2))
    assert _tuples(folds) == [(0, 2, 3, 4), (2, 4, 5, 6), (4, 6, 7, 8)]
    assert [f.number for f in folds] == [0, 1, 2]


def test_purge_and_anchored_folds_by_hand():
    folds = make_folds(_days(10), WalkForwardConfig(train=3, test=2, purge=1))
    # one bar purged between each train window's end and its test window's start (skfolio's purged_size)
    assert _tuples(folds) == [(0, 2, 4, 5), (2, 4, 6, 7), (4, 6, 8, 9)]
    folds = make_folds(_days(10), WalkForwardConfig(train=3, test=2, anchored=True))
    assert _tuples(folds) == [(0, 2, 3, 4), (0, 4, 5, 6), (0, 6, 7, 8)]


def test_calendar_folds_start_each_test_year_on_its_first_bar():
    index = pd.bdate_range("2015-01-01", "2021-01-05", tz="UTC")
    folds = make_folds(index, WalkForwardConfig(train="2Y", test="1Y"))
    starts = [index[f.test_start] for f in folds]
    assert [t.year for t in starts] == [2017, 2018, 2019, 2020]  # 2021 is partial: dropped
    # a year whose last bars are missing is a partial window too (skfolio needs the next period's start)
    short = make_folds(index[index <= "2020-12-30"], WalkForwardConfig(train="2Y", test="1Y"))
    assert [index[f.test_start].year for f in short] == [2017, 2018, 2019]
    for f, t in zip(folds, starts, strict=True):
        assert t == index[index.year == t.year][0]  # first bar of the year
        assert index[f.test_end] == index[index.year == t.year][-1]  # through its last bar
        assert f.train_end == f.test_start - 1  # no purge: train ends on the bar before
        assert index[f.train_start] >= t - pd.DateOffset(years=2) - pd.Timedelta(days=4)
    for a, b in itertools.pairwise(folds):
        assert b.test_start == a.test_end + 1  # back to back, no overlap


def test_fold_bounds_are_iso_timestamps():
    index = _days(10)
    (f, *_) = make_folds(index, WalkForwardConfig(train=3, test=2))
    assert f.bounds(index) == {
        "train_start": "2020-01-01T00:00:00+00:00",
        "train_end": "2020-01-03T00:00:00+00:00",
        "test_start": "2020-01-04T00:00:00+00:00",
        "test_end": "2020-01-05T00:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (WalkForwardConfig(train=8, test=3), "does not fit in the data"),
        (WalkForwardConfig(train=9, test=1, purge=1), "walkforward:"),
        (WalkForwardConfig(train=2, test=2), "at least 3 are needed"),
    ],
)
def test_windows_that_do_not_fit_are_named_errors(cfg, message):
    with pytest.raises(ConfigError, match=message):
        make_folds(_days(10), cfg)


# ---- walk-forward evolution ------------------------------------------------------------------------
WF = [
    "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY, MSFT, WMT]",
    "data.start=2020-01-01",
    "data.end=2022-12-31",
    "evolution.population=12",
    "evolution.generations=4",
    "evolution.hall_of_fame=4",
    "walkforward.train=150",
    "walkforward.test=100",
    "portfolio.rebalance=M",
    "portfolio.fees=0.001",
]


def wf_config(*extra):
    return load_config(None, [*WF, *extra])


@pytest.fixture(scope="module")
def wf_prices():
    return load_from_config(wf_config().data)


@pytest.fixture(scope="module")
def wf_run(wf_prices, tmp_path_factory):
    cfg = wf_config()
    rd = RunDir.create(tmp_path_factory.mktemp("wf") / "run", cfg)
    return cfg, rd, run_walkforward(cfg, wf_prices, rd)


def test_folds_evolve_on_their_train_window_and_the_benchmarks_are_refitted_there(wf_run, wf_prices):
    from skfolio.optimization import MeanRisk, ObjectiveFunction
    from skfolio.preprocessing import prices_to_returns

    cfg, _, wf = wf_run
    assert len(wf.folds) == (wf_prices.n_bars - 150) // 100 >= 4
    for fold, rec in zip(wf.folds, wf.fold_results, strict=True):
        assert set(rec["weights"]) == set(STRATEGIES)
        np.testing.assert_allclose(rec["weights"]["equal_weight"], 1 / 8)
        train = wf_prices.bars(fold.train_start, fold.train_end + 1)
        returns = prices_to_returns(train.to_frame())
        ref = MeanRisk(objective_function=ObjectiveFunction.MINIMIZE_RISK).fit(returns)
        # fitted on this train window: as low a variance there as skfolio's own fit (to solver tolerance; the
        # allocation is re-solved on its support to drop sub-min_position noise, so weights differ by ~1e-4)
        cov = np.cov(returns.to_numpy(), rowvar=False)
        w = np.array(rec["weights"]["min_variance"])
        assert w @ cov @ w <= ref.weights_ @ cov @ ref.weights_ * (1 + 1e-3)
        np.testing.assert_allclose(w, ref.weights_, atol=2e-3)
        # the GA's in-sample figures are those of its champion on the train window
        ev = Evaluator.from_config(train, cfg)
        assert rec["in_sample"]["GA"]["sharpe"] == pytest.approx(
            ev.metrics(np.array([rec["weights"]["GA"]]))["sharpe"][0]
        )
        assert rec["evaluations"] > 0 and 2 <= rec["trials"]["n"] <= rec["evaluations"]
        assert 0 <= rec["deflated_sharpe"] <= 1 and 0 <= rec["pbo"] <= 1
    assert len({rec["seed"] for rec in wf.fold_results}) == len(wf.folds)  # a seed of its own per fold


def test_out_of_sample_is_one_continuous_portfolio_per_strategy(wf_run, wf_prices):
    """The stitched values are an independent vectorbt simulation of the folds' weights as a schedule over the
    whole test span, from init_cash; its metrics are compute_metrics on them; each fold's out-of-sample figures
    measure the same portfolio inside the fold's test window."""
    _, _, wf = wf_run
    first, last = wf.folds[0].test_start, wf.folds[-1].test_end
    test = wf_prices.bars(first, last + 1)
    schedule = np.array([[r["weights"][s] for r in wf.fold_results] for s in wf.strategies])
    starts = [f.test_start - first for f in wf.folds]
    ref = backtest(
        test, schedule, segment_starts=starts, rebalance="M", fees=0.001, init_cash=10_000, engine="vectorbt"
    )
    np.testing.assert_allclose(wf.oos_values, ref.value, rtol=1e-8)
    m = compute_metrics(ref.value, init_cash=10_000, periods_per_year=wf_prices.periods_per_year, traded=ref.traded)
    for i, s in enumerate(wf.strategies):
        assert wf.oos[s]["sharpe"] == pytest.approx(m["sharpe"][i], rel=1e-8)
        assert wf.oos[s]["turnover"] == pytest.approx(m["turnover"][i], rel=1e-8)
    ga = wf.strategies.index("GA")
    for k, f in enumerate(wf.folds):
        lo, hi = f.test_start - first, f.test_end - first
        before = ref.value[lo - 1, ga] if lo else 10_000.0
        assert wf.fold_oos[k]["GA"]["total_return"] == pytest.approx(ref.value[hi, ga] / before - 1, rel=1e-8)
    # switching weights at a fold boundary trades (and pays fees): a segment start is a rebalance bar
    assert wf.oos_rebalance[starts].all()  # every strategy, (n_bars, n_strategies)


def test_no_look_ahead(wf_run, wf_prices, tmp_path):
    """Every price after fold k's train end is changed: fold k's and every earlier fold's weights are unchanged
    (later folds, which train on the changed bars, do change)."""
    cfg, _, wf = wf_run
    k = 1
    cut = wf.folds[k].train_end
    close = wf_prices.close.copy()
    rng = np.random.default_rng(5)
    close[cut + 1 :] *= np.exp(np.cumsum(rng.normal(0, 0.03, close[cut + 1 :].shape), axis=0))
    changed = Prices(
        close=close, index=wf_prices.index, symbols=wf_prices.symbols, periods_per_year=wf_prices.periods_per_year
    )
    other = run_walkforward(cfg, changed, RunDir.create(tmp_path / "changed", cfg))
    for j in range(k + 1):
        assert other.fold_results[j]["weights"] == wf.fold_results[j]["weights"], j
        assert other.fold_results[j]["in_sample"] == wf.fold_results[j]["in_sample"]
    assert other.fold_results[-1]["weights"]["GA"] != wf.fold_results[-1]["weights"]["GA"]


def test_resume_after_an_interrupted_fold_gives_the_same_walkforward(wf_run, wf_prices, tmp_path):
    cfg, _, wf = wf_run
    rd = RunDir.create(tmp_path / "cut", cfg)

    def stop(fold, rec, done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_walkforward(cfg, wf_prices, rd, on_fold=stop)
    assert sorted(p.name for p in (rd.path / "folds").iterdir()) == ["fold-000.json", "fold-001.json"]
    resumed = run_walkforward(cfg, wf_prices, rd, resume=True)
    assert resumed.record == wf.record
    np.testing.assert_array_equal(resumed.oos_values, wf.oos_values)


def test_a_walkforward_at_a_storage_url_keeps_every_finished_fold_and_resumes_elsewhere(wf_run, wf_prices, tmp_path):
    from genetic_sizer.storage import remote as storage

    cfg, _, wf = wf_run
    url = (tmp_path / "nfs" / "wf").as_uri()
    rd = RunDir.create(url, cfg)

    def stop(fold, rec, done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_walkforward(cfg, wf_prices, rd, on_fold=stop)
    stored = tmp_path / "nfs" / "wf"
    assert sorted(p.name for p in (stored / "folds").iterdir()) == ["fold-000.json", "fold-001.json"]
    storage.forget_stages()  # another machine: only the stored run
    resumed = run_walkforward(cfg, wf_prices, url, resume=True)
    assert resumed.record == wf.record
    np.testing.assert_array_equal(resumed.oos_values, wf.oos_values)
    assert len(list((stored / "folds").glob("fold-*.json"))) == len(wf.folds)


def test_a_fold_interrupted_mid_evolution_continues_from_its_checkpoint(wf_run, wf_prices, tmp_path, monkeypatch):
    import genetic_sizer.validation.walkforward as W

    cfg, _, wf = wf_run
    rd = RunDir.create(tmp_path / "mid", cfg)
    real_evolve = __import__("genetic_sizer.runs.evolve", fromlist=["evolve"]).evolve
    calls = []

    def interrupted_evolve(config, prices, run_dir, **kw):
        calls.append(kw.get("resume", False))
        if len(calls) == 2:  # the second fold stops after its generation 1

            def halt(g):
                if g.gen == 1:
                    raise KeyboardInterrupt

            return real_evolve(config, prices, run_dir, on_generation=halt, **kw)
        return real_evolve(config, prices, run_dir, **kw)

    monkeypatch.setattr("genetic_sizer.runs.evolve.evolve", interrupted_evolve)
    with pytest.raises(KeyboardInterrupt):
        run_walkforward(cfg, wf_prices, rd)
    assert (rd.path / "folds" / "fold-001" / "checkpoint.json").is_file()
    monkeypatch.setattr("genetic_sizer.runs.evolve.evolve", real_evolve)
    resumed = W.run_walkforward(cfg, wf_prices, rd, resume=True)
    assert resumed.record == wf.record
    assert not (rd.path / "folds" / "fold-001").exists()  # checkpoints removed once the fold's result is saved


@pytest.mark.ray
def test_ray_runs_the_folds_as_tasks_with_the_serial_result(wf_run, wf_prices, tmp_path):
    cfg, _, wf = wf_run
    ray_cfg = wf_config("parallel.backend=ray")
    assert ray_cfg.sha256() == cfg.sha256()
    on_ray = run_walkforward(ray_cfg, wf_prices, RunDir.create(tmp_path / "ray", ray_cfg))
    assert on_ray.record == wf.record
    np.testing.assert_array_equal(on_ray.oos_values, wf.oos_values)
    import ray

    assert not ray.is_initialized()


def test_walkforward_cli_writes_the_files_external_checks_read(tmp_path, capsys):
    import csv
    import json

    from genetic_sizer.cli.main import main
    from genetic_sizer.runs import champion as C

    out = tmp_path / "run"
    sets = [a for item in WF for a in ("--set", item)]
    assert main(["walkforward", "--out", str(out), *sets]) == 0
    printed = capsys.readouterr().out
    assert "out of sample the GA" in printed and "equal weight (1/N)" in printed
    wf = json.loads((out / "walkforward.json").read_text())
    assert wf["schema"] == "genetic_sizer/walkforward" and wf["schema_version"] == 1
    assert wf["symbols"] == ["AAPL", "AMD", "BAC", "CVX", "JNJ", "LLY", "MSFT", "WMT"]
    assert isinstance(wf["deflated_sharpe"], float) and isinstance(wf["pbo"], float)
    assert set(wf["out_of_sample"]) == set(STRATEGIES) and "sharpe" in wf["out_of_sample"]["GA"]
    for f in wf["folds"]:
        for key in ("train_start", "train_end", "test_start", "test_end"):
            assert pd.Timestamp(f[key]).tzinfo is not None
        assert f["evaluations"] > 0
        assert set(f["weights"]) == set(STRATEGIES)
        assert all(set(w) == set(wf["symbols"]) for w in f["weights"].values())
        assert set(f["in_sample"]) == set(STRATEGIES)
        assert set(f["trials"]) == {"n", "sharpe_variance"}
        assert "deflated_sharpe" in f
    with open(out / "oos_values.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["time", *STRATEGIES]
    assert pd.Timestamp(rows[1][0]) == pd.Timestamp(wf["folds"][0]["test_start"])
    assert float(rows[1][1]) == pytest.approx(10_000 * (1 - 0.001), rel=1e-3)  # the first bar buys, paying fees
    champ = C.load(out / "champion.json")
    assert dict(zip(champ.assets, champ.weights, strict=True)) == pytest.approx(wf["folds"][-1]["weights"]["GA"])
    raw = json.loads((out / "champion.json").read_text())
    assert raw["walkforward"]["folds"] == len(wf["folds"]) and raw["deflated_sharpe"] == wf["deflated_sharpe"]
    report = (out / "report.html").read_text()
    for text in (
        "Deflated Sharpe ratio",
        "Probability of backtest overfitting",
        "Sharpe per fold",
        "allocation over time",
    ):
        assert text in report
    # self-contained, opens offline: plotly.js inlined once, no script loaded from elsewhere
    assert report.count("Plotly.newPlot") >= 4 and len(report) > 1_000_000
    assert "<script src=" not in report
    # walking forward again into the same directory is refused; --resume finishes nothing new and agrees
    assert main(["walkforward", "--out", str(out), *sets]) == 2
    assert main(["walkforward", "--out", str(out), "--resume"]) == 0
    assert json.loads((out / "walkforward.json").read_text()) == wf


# ---- the held-out window of genetic-sizer evolve -----------------------------------------------------
@pytest.mark.parametrize(("holdout", "n_test"), [(0.2, 20), (0.25, 25), (30, 30), ("2W", 14), ("1M", 31)])
def test_split_holdout_keeps_the_final_window_out(holdout, n_test):
    p = Prices(close=np.linspace(1, 2, 200).reshape(100, 2), index=_days(100), symbols=["A", "B"], periods_per_year=365)
    train, test = split_holdout(p, holdout)
    assert test.n_bars == n_test and train.n_bars == 100 - n_test
    assert train.index[-1] < test.index[0] and test.index[-1] == p.index[-1]
    assert train.periods_per_year == test.periods_per_year == 365  # a window keeps the data's annualization
    assert split_holdout(p, 0) == (p, None)


@pytest.mark.parametrize("holdout", [0.99, 1, 99, "10Y"])
def test_a_holdout_that_leaves_too_little_is_a_named_error(holdout):
    p = Prices(close=np.ones((100, 2)), index=_days(100), symbols=["A", "B"])
    with pytest.raises(ConfigError, match=r"evolution\.holdout"):
        split_holdout(p, holdout)


def test_evolve_reports_the_held_out_window_beside_the_in_sample_one(tmp_path, capsys):
    import csv
    import json

    from genetic_sizer.cli.main import main

    out = tmp_path / "run"
    sets = [a for item in WF[:6] for a in ("--set", item)]
    assert main(["evolve", "--out", str(out), "--no-plots", *sets]) == 0
    printed = capsys.readouterr().out
    assert "IS = in sample" in printed and "OOS = out of sample, held out" in printed
    everything = load_from_config(wf_config().data)
    n_test = round(everything.n_bars * 0.2)
    train, test = (
        everything.bars(0, everything.n_bars - n_test),
        everything.bars(everything.n_bars - n_test, everything.n_bars),
    )
    champ = json.loads((out / "champion.json").read_text())
    assert champ["in_sample"]["last_bar"] == train.index[-1].isoformat()
    assert champ["out_of_sample"]["first_bar"] == test.index[0].isoformat()
    w = np.array([champ["weights"][s] for s in everything.symbols])
    bt = backtest(test, w, rebalance="M", fees=0.0005, init_cash=10_000, engine="vectorbt")  # independent
    m = compute_metrics(bt.value, init_cash=10_000, periods_per_year=everything.periods_per_year, traded=bt.traded)
    for k in ("sharpe", "cagr", "max_drawdown", "turnover"):
        assert champ["out_of_sample"]["metrics"][k] == pytest.approx(m[k][0], rel=1e-8)
    assert 0 <= champ["deflated_sharpe"] <= 1 and champ["trials"]["n"] > 1
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    windows = {(r["allocation"], r["window"]) for r in rows}
    assert ("champion", "in_sample") in windows and ("champion", "out_of_sample") in windows
    assert {r["allocation"] for r in rows if r["window"] == "out_of_sample"} == {
        r["allocation"] for r in rows if r["window"] == "in_sample"
    }


def test_evolve_without_a_holdout_says_it_is_in_sample_only(tmp_path, capsys):
    import json

    from genetic_sizer.cli.main import main

    out = tmp_path / "run"
    sets = [a for item in [*WF[:6], "evolution.holdout=0"] for a in ("--set", item)]
    assert main(["evolve", "--out", str(out), "--no-plots", *sets]) == 0
    printed = capsys.readouterr().out
    assert "IN-SAMPLE ONLY" in printed and "every figure below is IN-SAMPLE" in printed
    assert json.loads((out / "champion.json").read_text())["out_of_sample"] is None


def test_report_command_rewrites_the_report_of_an_evolve_run(tmp_path, capsys):
    import csv

    from genetic_sizer.cli.main import main

    out = tmp_path / "run"
    sets = [a for item in [*WF[:6], "objective=[sharpe, max_drawdown]"] for a in ("--set", item)]
    assert main(["evolve", "--out", str(out), "--no-plots", *sets]) == 0
    assert not (out / "report.html").exists()
    capsys.readouterr()
    assert main(["report", "--run", str(out)]) == 0
    assert f"wrote {out / 'report.html'}" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    for text in ("in-sample", "out-of-sample", "Deflated Sharpe ratio", "Fitness by generation", "Pareto front"):
        assert text in page, text
    with open(out / "pareto.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert "sharpe" in header and "oos_sharpe" in header  # every member, in sample and on the held-out window
    assert main(["report", "--run", str(tmp_path / "nothing")]) == 2


def test_keep_partial_keeps_the_last_short_test_window():
    folds = make_folds(_days(10), WalkForwardConfig(train=3, test=2, keep_partial=True))
    assert _tuples(folds) == [(0, 2, 3, 4), (2, 4, 5, 6), (4, 6, 7, 8), (6, 8, 9, 9)]  # bar 9 alone: kept
    index = pd.bdate_range("2015-01-01", "2020-12-30", tz="UTC")  # 2020 lacks its last business day
    folds = make_folds(index, WalkForwardConfig(train="2Y", test="1Y", keep_partial=True))
    assert [index[f.test_start].year for f in folds] == [2017, 2018, 2019, 2020]
    assert folds[-1].test_end == len(index) - 1


# ---- strategy genes: each fold's champion keeps its weights its own way -------------------------------
@pytest.fixture(scope="module")
def wf_genes_run(wf_prices, tmp_path_factory):
    cfg = wf_config("evolution.genes={threshold: [0.0, 0.2], rebalance: [W, M, Q, once]}")
    rd = RunDir.create(tmp_path_factory.mktemp("wfg") / "run", cfg)
    return cfg, rd, run_walkforward(cfg, wf_prices, rd)


def test_stitching_keeps_each_folds_evolved_strategy(wf_genes_run, wf_prices):
    """The stitched GA portfolio is ONE continuous portfolio whose segments follow each fold's evolved policy and
    drift band: an independent vectorbt simulation (from_order_func, policies and bands per segment) of the folds'
    weights agrees; every calendar bar of a fold's policy inside its test window is a rebalance bar; keeping the
    first fold's strategy throughout gives other values (the per-segment strategy is used, not one)."""
    from genetic_sizer.backtest.schedule import rebalance_mask

    _cfg, _, wf = wf_genes_run
    kept = [r["strategy"]["GA"] for r in wf.fold_results]
    assert len({(k["rebalance"], k["threshold"]) for k in kept}) == len(kept)  # the folds evolved different ones
    assert all(0.0 <= k["threshold"] <= 0.2 and k["rebalance"] in ("W", "M", "Q", "once") for k in kept)
    first, last = wf.folds[0].test_start, wf.folds[-1].test_end
    test = wf_prices.bars(first, last + 1)
    ga = wf.strategies.index("GA")
    schedule = np.array([[r["weights"]["GA"] for r in wf.fold_results]])
    starts = [f.test_start - first for f in wf.folds]
    per_segment = dict(
        rebalance=[[k["rebalance"] for k in kept]], threshold=[[k["threshold"] for k in kept]], fees=0.001
    )
    ref = backtest(test, schedule, segment_starts=starts, engine="vectorbt", **per_segment)
    np.testing.assert_allclose(wf.oos_values[:, ga], ref.value[:, 0], rtol=1e-8)
    np.testing.assert_array_equal(wf.oos_rebalance[:, ga], ref.rebalance[:, 0])
    for f, k, lo in zip(wf.folds, kept, starts, strict=True):
        hi = f.test_end - first + 1
        calendar = rebalance_mask(test.index, k["rebalance"])[lo:hi]
        assert wf.oos_rebalance[lo:hi, ga][calendar].all()
    one = backtest(
        test,
        schedule,
        segment_starts=starts,
        rebalance=kept[0]["rebalance"],
        threshold=kept[0]["threshold"],
        fees=0.001,
    )
    assert np.abs(one.value[:, 0] / wf.oos_values[:, ga] - 1).max() > 1e-6
    # the classical allocations keep the run's policy without a band, before and after stitching
    for r in wf.fold_results:
        assert r["strategy"]["equal_weight"] == {"rebalance": "M", "threshold": None}
    others = [s for s in wf.strategies if s != "GA"]
    plain = backtest(
        test,
        np.array([[r["weights"][s] for r in wf.fold_results] for s in others]),
        segment_starts=starts,
        rebalance="M",
        fees=0.001,
    )
    np.testing.assert_array_equal(wf.oos_values[:, [wf.strategies.index(s) for s in others]], plain.value)


def test_a_folds_in_sample_figures_and_the_live_champion_use_its_strategy(wf_genes_run, wf_prices):
    from genetic_sizer.runs import champion as C
    from genetic_sizer.validation.walkforward import finalize_walkforward

    _cfg, rd, wf = wf_genes_run
    for fold, rec in zip(wf.folds, wf.fold_results, strict=True):
        train = wf_prices.bars(fold.train_start, fold.train_end + 1)
        k = rec["strategy"]["GA"]
        bt = backtest(train, rec["weights"]["GA"], rebalance=k["rebalance"], threshold=k["threshold"], fees=0.001)
        m = compute_metrics(bt.value, init_cash=10_000, periods_per_year=wf_prices.periods_per_year, traded=bt.traded)
        assert rec["in_sample"]["GA"]["sharpe"] == m["sharpe"][0]
        assert len(rec["genes"]) == 2
    assert [f["strategy"]["GA"] for f in wf.record["folds"]] == [r["strategy"]["GA"] for r in wf.fold_results]
    assert wf.record["settings"]["evolution"]["genes"] == {
        "threshold": [0.0, 0.2],
        "rebalance": ["W", "M", "Q", "once"],
    }
    record = finalize_walkforward(wf, rd)
    champ = C.load(rd.champion_path)
    assert {"rebalance": champ.rebalance, "threshold": champ.threshold} == wf.fold_results[-1]["strategy"]["GA"]
    assert record["verification"]["reference"] == "Portfolio.from_order_func"
    assert "allocation over time" in (rd.path / "report.html").read_text()


def test_fold_results_written_before_genes_stitch_with_the_runs_policy(wf_run, wf_prices):
    """A fold file without a strategy (written before strategy genes) is kept by the run's policy: the stitched
    result is unchanged."""
    from genetic_sizer.validation.stitch import stitch

    cfg, _, wf = wf_run
    old = [{k: v for k, v in r.items() if k not in ("strategy", "genes")} for r in wf.fold_results]
    again = stitch(cfg, wf_prices, wf.folds, old)
    np.testing.assert_array_equal(again.oos_values, wf.oos_values)


def test_a_perp_walkforward_evolves_and_stitches_in_the_perp_account(tmp_path):
    """Folds evolve perp genomes (funding charged on their train windows) and the stitched out-of-sample portfolios
    are one continuous perp account each: equal to the independent loop of tests/test_perp.py over the test span,
    funding and segment switches included."""
    from genetic_sizer.data.synthetic import perp_market

    from .test_perp import independent_loop

    path, _ = perp_market(("BTC", "ETH", "SOL"), hours=24 * 50, seed=11).write(tmp_path / "hl.parquet")
    cfg = load_config(
        None,
        [
            "data.source=hyperliquid",
            f"data.path={path}",
            "portfolio.market=perp",
            "portfolio.leverage=2",
            "portfolio.max_leverage=20",
            "portfolio.direction=longshort",
            "portfolio.min_weight=-0.6",
            "portfolio.rebalance=D",
            "evolution.population=8",
            "evolution.generations=2",
            "evolution.hall_of_fame=2",
            "walkforward.train=400",
            "walkforward.test=250",
        ],
    )
    prices = load_from_config(cfg.data)
    wf = run_walkforward(cfg, prices, RunDir.create(tmp_path / "run", cfg))
    assert len(wf.folds) == 3 and wf.record["settings"]["portfolio"]["market"] == "perp"
    assert all(r["in_sample"]["GA"]["funding_paid"] > 0 for r in wf.fold_results)
    first, last = wf.folds[0].test_start, wf.folds[-1].test_end
    test = prices.bars(first, last + 1)
    starts = np.array([f.test_start - first for f in wf.folds])
    mask = rebalance_mask(test.index, "D")
    for i, s in enumerate(wf.strategies):
        schedule = np.array([r["weights"][s] for r in wf.fold_results])
        loop = independent_loop(
            test.close,
            schedule,
            starts,
            mask,
            leverage=2.0,
            funding=test.funding,
            max_lev=np.full(3, 20.0),
            fees=cfg.portfolio.fees,
            slippage=0.0,
            init=10_000.0,
            threshold=None,
        )
        np.testing.assert_allclose(wf.oos_values[:, i], loop["value"], rtol=1e-9)
        assert wf.oos[s]["funding_paid"] == pytest.approx(loop["paid"], rel=1e-9)
    spot = backtest(
        test, np.array([[r["weights"]["GA"] for r in wf.fold_results]]), segment_starts=starts, rebalance="D"
    )
    assert not np.allclose(spot.value[:, 0], wf.oos_values[:, wf.strategies.index("GA")], rtol=1e-3)


def test_a_perp_walkforward_with_genes_keeps_each_folds_strategy_in_the_perp_account(tmp_path):
    """Strategy genes in a perp walk-forward: each fold's GA champion records its evolved policy and drift band,
    and the stitched GA portfolio is one perp account following them segment by segment: equal to the reference
    loop given the same per-segment policies and bands, on the same rebalance bars."""
    from genetic_sizer.data.synthetic import perp_market

    path, _ = perp_market(("BTC", "ETH", "SOL"), hours=24 * 50, seed=11).write(tmp_path / "hl.parquet")
    cfg = load_config(
        None,
        [
            "data.source=hyperliquid",
            f"data.path={path}",
            "portfolio.market=perp",
            "portfolio.leverage=2",
            "portfolio.max_leverage=20",
            "portfolio.direction=longshort",
            "portfolio.min_weight=-0.6",
            "portfolio.rebalance=D",
            "evolution.population=8",
            "evolution.generations=2",
            "evolution.hall_of_fame=2",
            "evolution.genes={threshold: [0.0, 0.1], rebalance: [D, once]}",
            "walkforward.train=400",
            "walkforward.test=250",
        ],
    )
    prices = load_from_config(cfg.data)
    wf = run_walkforward(cfg, prices, RunDir.create(tmp_path / "run", cfg))
    kept = [r["strategy"]["GA"] for r in wf.fold_results]
    assert all(k["rebalance"] in ("D", "once") and 0.0 <= k["threshold"] <= 0.1 for k in kept)
    assert all(r["strategy"]["equal_weight"] == {"rebalance": "D", "threshold": None} for r in wf.fold_results)
    first, last = wf.folds[0].test_start, wf.folds[-1].test_end
    test = prices.bars(first, last + 1)
    starts = [f.test_start - first for f in wf.folds]
    schedule = np.array([[r["weights"]["GA"] for r in wf.fold_results]])
    ref = backtest(
        test,
        schedule,
        segment_starts=starts,
        rebalance=[[k["rebalance"] for k in kept]],
        threshold=[[k["threshold"] for k in kept]],
        fees=cfg.portfolio.fees,
        engine="reference",
        **cfg.portfolio.account(),
    )
    ga = wf.strategies.index("GA")
    np.testing.assert_allclose(wf.oos_values[:, ga], ref.value[:, 0], rtol=1e-9)
    np.testing.assert_array_equal(wf.oos_rebalance[:, ga], ref.rebalance[:, 0])
    assert wf.oos["GA"]["funding_paid"] == pytest.approx(float(ref.funding_paid[0]), rel=1e-9)


def test_a_perp_walkforward_with_a_leverage_gene_follows_each_folds_leverage(tmp_path):
    """A leverage gene in a perp walk-forward: each fold's GA champion records its evolved leverage, and the stitched
    GA portfolio is ONE perp account whose segments are sized at each fold's leverage (per-segment leverage): equal
    to the independent loop of tests/test_perp.py given those leverages (and the reference loop, on the same
    rebalance bars), and not to the account at any one of them throughout. The classical allocations stay at
    portfolio.leverage; each fold's in-sample figures are its champion's at its leverage; the live champion is the
    last fold's, at its leverage."""
    from genetic_sizer.data.synthetic import perp_market
    from genetic_sizer.runs import champion as C
    from genetic_sizer.validation.walkforward import finalize_walkforward

    from .test_perp import independent_loop

    path, _ = perp_market(("BTC", "ETH", "SOL"), hours=24 * 50, seed=11).write(tmp_path / "hl.parquet")
    cfg = load_config(
        None,
        [
            "data.source=hyperliquid",
            f"data.path={path}",
            "portfolio.market=perp",
            "portfolio.leverage=2",
            "portfolio.max_leverage=20",
            "portfolio.direction=longshort",
            "portfolio.min_weight=-0.6",
            "portfolio.rebalance=D",
            "objective=calmar",
            "evolution.population=8",
            "evolution.generations=2",
            "evolution.hall_of_fame=2",
            "evolution.genes={threshold: [0.0, 0.1], leverage: [1.0, 6.0]}",
            "walkforward.train=400",
            "walkforward.test=250",
        ],
    )
    prices = load_from_config(cfg.data)
    rd = RunDir.create(tmp_path / "run", cfg)
    wf = run_walkforward(cfg, prices, rd)
    kept = [r["strategy"]["GA"] for r in wf.fold_results]
    levs = [k["leverage"] for k in kept]
    assert len(levs) == 3 and all(1.0 <= x <= 6.0 for x in levs) and len(set(levs)) == 3
    assert [r["genes"][1] for r in wf.fold_results] == levs
    assert all(
        r["strategy"]["equal_weight"] == {"rebalance": "D", "threshold": None, "leverage": 2.0} for r in wf.fold_results
    )
    assert [f["strategy"]["GA"]["leverage"] for f in wf.record["folds"]] == levs
    first, last = wf.folds[0].test_start, wf.folds[-1].test_end
    test = prices.bars(first, last + 1)
    starts = np.array([f.test_start - first for f in wf.folds])
    schedule = np.array([r["weights"]["GA"] for r in wf.fold_results])
    loop = independent_loop(
        test.close,
        schedule,
        starts,
        rebalance_mask(test.index, "D"),
        leverage=levs,
        funding=test.funding,
        max_lev=np.full(3, 20.0),
        fees=cfg.portfolio.fees,
        slippage=0.0,
        init=10_000.0,
        threshold=[k["threshold"] for k in kept],
    )
    ga = wf.strategies.index("GA")
    np.testing.assert_allclose(wf.oos_values[:, ga], loop["value"], rtol=1e-9)
    assert wf.oos["GA"]["funding_paid"] == pytest.approx(loop["paid"], rel=1e-9)
    ref = backtest(
        test,
        schedule[None],
        segment_starts=starts,
        rebalance="D",
        threshold=[[k["threshold"] for k in kept]],
        fees=cfg.portfolio.fees,
        engine="reference",
        market="perp",
        leverage=[levs],
        max_leverage=20,
    )
    np.testing.assert_allclose(wf.oos_values[:, ga], ref.value[:, 0], rtol=1e-9)
    np.testing.assert_array_equal(wf.oos_rebalance[:, ga], ref.rebalance[:, 0])
    assert wf.oos["GA"]["funding_paid"] == pytest.approx(float(ref.funding_paid[0]), rel=1e-9)
    for one in levs:  # not the account at any one of the folds' leverages throughout
        fixed = backtest(
            test,
            schedule[None],
            segment_starts=starts,
            rebalance="D",
            threshold=[[k["threshold"] for k in kept]],
            fees=cfg.portfolio.fees,
            market="perp",
            leverage=one,
            max_leverage=20,
        )
        assert np.abs(fixed.value[:, 0] / wf.oos_values[:, ga] - 1).max() > 1e-4
    for fold, rec in zip(wf.folds, wf.fold_results, strict=True):
        train = prices.bars(fold.train_start, fold.train_end + 1)
        k = rec["strategy"]["GA"]
        bt = backtest(
            train,
            rec["weights"]["GA"],
            rebalance="D",
            threshold=k["threshold"],
            fees=cfg.portfolio.fees,
            market="perp",
            leverage=k["leverage"],
            max_leverage=20,
        )
        m = compute_metrics(bt.value, init_cash=10_000, periods_per_year=prices.periods_per_year, traded=bt.traded)
        assert rec["in_sample"]["GA"]["calmar"] == m["calmar"][0]
    record = finalize_walkforward(wf, rd)
    champ = C.load(rd.champion_path)
    assert champ.leverage == champ.strategy["leverage"] == levs[-1] == record["portfolio"]["leverage"]
    page = (rd.path / "report.html").read_text()
    assert all(f"leverage {x:.3g}x" in page for x in levs)

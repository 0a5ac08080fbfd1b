"""The command line, run in-process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from genetic_sizer.cli.main import main


def test_help_is_fast_and_does_not_import_heavy_modules():
    code = (
        "import sys; from genetic_sizer.cli.main import build_parser; build_parser(); "
        "print(sorted(m for m in ('vectorbt', 'ray', 'hyperliquid') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_data_info(capsys):
    assert main(["data", "info", "--symbols", "AAPL", "MSFT", "--start", "2020-01-01"]) == 0
    out = capsys.readouterr().out
    assert "assets           2: AAPL MSFT" in out
    assert "2020-01-02T00:00:00+00:00 .. 2022-12-28T00:00:00+00:00" in out
    assert "periods/year     252" in out


def test_backtest_equal_weight_matches_library(capsys):
    from genetic_sizer.backtest.metrics import compute_metrics
    from genetic_sizer.backtest.simulate import backtest
    from genetic_sizer.data.loaders import load_default

    assert main(["backtest", "--symbols", "KO", "PEP", "XOM", "--start", "2019-01-01", "--fees", "0.001"]) == 0
    out = capsys.readouterr().out
    p = load_default(["KO", "PEP", "XOM"], "2019-01-01")
    bt = backtest(p, [1 / 3] * 3, rebalance="M", fees=0.001)
    sharpe = compute_metrics(bt.value, init_cash=1e4, periods_per_year=252)["sharpe"][0]
    assert f"  {'sharpe':<22}{sharpe: .6f}\n" in out


def test_backtest_with_a_drift_band_matches_the_library(capsys):
    from genetic_sizer.backtest.metrics import compute_metrics
    from genetic_sizer.backtest.simulate import backtest
    from genetic_sizer.data.loaders import load_default

    args = ["backtest", "--symbols", "KO", "PEP", "XOM", "--start", "2019-01-01", "--rebalance", "once"]
    assert main([*args, "--threshold", "0.03"]) == 0
    out = capsys.readouterr().out
    p = load_default(["KO", "PEP", "XOM"], "2019-01-01")
    bt = backtest(p, [1 / 3] * 3, rebalance="once", threshold=0.03, fees=0.0005)
    m = compute_metrics(bt.value, init_cash=1e4, periods_per_year=252, traded=bt.traded)
    n = int(bt.rebalance[:, 0].sum())
    assert 2 < n < p.n_bars // 10  # the band fired a few times, not on every bar
    assert "rebalance once, drift band 0.03, fees 0.0005" in out and f"rebalanced on {n} of {p.n_bars} bars" in out
    assert f"  {'sharpe':<22}{m['sharpe'][0]: .6f}\n" in out and f"  {'turnover':<22}{m['turnover'][0]: .6f}\n" in out
    with pytest.raises(SystemExit) as exc:  # a parse error, as for every numeric flag
        main([*args, "--threshold", "-0.1"])
    assert exc.value.code == 2 and "argument --threshold: must be a number >= 0, got '-0.1'" in capsys.readouterr().err


def test_cli_reports_errors_cleanly(capsys):
    assert main(["data", "info", "--symbols", "AAPL", "NOPE"]) == 2
    assert "error: " in capsys.readouterr().err
    assert main(["backtest", "--symbols", "KO", "PEP", "--weights", "0.5", "0.6"]) == 2
    assert "sum of weights is 1.1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])


def _wide_prices(n=400):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    times = pd.date_range("2025-01-01", periods=n, freq="h", tz="UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0.0001, 0.01, (n, 2)), axis=0))
    return pd.DataFrame({"timestamp": times, "BTC": close[:, 0], "ETH": close[:, 1]})


def test_backtest_on_epoch_milliseconds_equals_backtest_on_dates(tmp_path, capsys):
    wide = _wide_prices()
    wide.to_csv(tmp_path / "iso.csv", index=False)
    wide.assign(timestamp=wide["timestamp"].dt.as_unit("ns").astype("int64") // 10**6).to_csv(
        tmp_path / "ms.csv", index=False
    )
    outs = []
    for name in ("iso.csv", "ms.csv"):
        assert main(["backtest", "--source", "csv", "--path", str(tmp_path / name), "--rebalance", "D"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
    assert main(["data", "info", "--source", "csv", "--path", str(tmp_path / "ms.csv")]) == 0
    out = capsys.readouterr().out
    assert "read             time column 'timestamp' read as epoch milliseconds" in out
    assert "periods/year     8760" in out and "2025-01-01T00:00:00+00:00 .." in out


def test_data_info_names_the_close_column_used(tmp_path, capsys):
    import pandas as pd

    wide = _wide_prices(10)
    long = wide.melt(id_vars="timestamp", var_name="Ticker", value_name="Adj Close").rename(
        columns={"timestamp": "Date"}
    )
    long["Close"] = long["Adj Close"] * 2
    long.to_csv(tmp_path / "y.csv", index=False)
    assert main(["data", "info", "--source", "csv", "--path", str(tmp_path / "y.csv")]) == 0
    out = capsys.readouterr().out
    assert (
        "read             long form: symbol column 'Ticker', close column 'Adj Close' (adjusted; 'Close' not used)"
        in out
    )
    bars = next(line for line in out.splitlines() if line.startswith("bars "))  # the notes may say "bars" too
    assert pd.Timestamp(bars.split("(")[1].split(" ..")[0]) == wide["timestamp"][0]


@pytest.mark.parametrize("command", [["data", "info"], ["backtest"]])
@pytest.mark.parametrize("flag", ["--start", "--end"])
def test_impossible_window_date_is_a_named_error(capsys, command, flag):
    assert main([*command, flag, "2015-02-30"]) == 2
    err = capsys.readouterr().err
    key = flag.strip("-")
    assert f"error: data.{key}: cannot read '2015-02-30' as a date (day is out of range for month" in err
    assert "Traceback" not in err


EVOLVE_SMALL = [
    "--set",
    "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY]",
    "--set",
    "data.start=2021-06-01",
    "--set",
    "evolution.population=12",
    "--set",
    "evolution.generations=3",
    "--set",
    "evolution.hall_of_fame=3",
]


def test_evolve_resume_and_export_commands(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["evolve", "--out", str(out), "--no-plots", *EVOLVE_SMALL]) == 0
    text = capsys.readouterr().out
    assert "6 assets" in text and "gen    3/3  best sharpe" in text
    assert "Champion beside classical allocations" in text and "equal_weight" in text
    assert "vectorbt re-check: metrics agree" in text
    for name in ("config.yaml", "logbook.csv", "checkpoint.json", "hall_of_fame.csv", "summary.csv", "champion.json"):
        assert (out / name).is_file(), name
    first = json.loads((out / "champion.json").read_text())

    # the same --out again is refused; --resume of a finished run re-finishes it identically
    assert main(["evolve", "--out", str(out), *EVOLVE_SMALL]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["evolve", "--out", str(out), "--resume", "--no-plots"]) == 0
    again = json.loads((out / "champion.json").read_text())
    assert again["weights"] == first["weights"] and again["metrics"] == first["metrics"]
    assert main(["evolve", "--out", str(out), "--resume", "--seed", "3"]) == 2
    assert "differs from the one saved" in capsys.readouterr().err

    assert main(["export", "--run", str(out), "--rank", "2", "--out", str(tmp_path / "third.json")]) == 0
    third = json.loads((tmp_path / "third.json").read_text())
    assert "rank 2 of 3" in third["selection"]
    assert main(["export", "--run", str(out), "--rank", "9", "--out", str(tmp_path / "x.json")]) == 2
    assert "--rank must be in [0, 2]" in capsys.readouterr().err


def test_evolve_config_errors_exit_2_and_name_the_key(tmp_path, capsys):
    assert main(["evolve", "--out", str(tmp_path / "r"), "--set", "evolution.popsize=3"]) == 2
    assert "unknown key 'evolution.popsize'" in capsys.readouterr().err
    assert main(["evolve", "--out", str(tmp_path / "r"), "--set", "portfolio.max_weight=0.01"]) == 2
    assert "infeasible bounds" in capsys.readouterr().err
    assert main(["evolve", "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err


def test_ctrl_c_during_evolve_says_how_to_resume(tmp_path, capsys, monkeypatch):
    import genetic_sizer.validation.holdout as E

    real = E.evolve

    def interrupted(*args, **kwargs):
        def stop(g):
            if g.gen == 1:
                raise KeyboardInterrupt

        kwargs["on_generation"] = stop
        return real(*args, **kwargs)

    monkeypatch.setattr(E, "evolve", interrupted)
    out = tmp_path / "run"
    assert main(["evolve", "--out", str(out), "--no-plots", *EVOLVE_SMALL]) == 130
    err = capsys.readouterr().err
    assert f"genetic-sizer evolve --resume --out {out}" in err
    assert "generation 1 of 3 is checkpointed" in err  # the last finished one, whatever run.checkpoint_every says
    assert (out / "checkpoint.json").is_file() and not (out / "champion.json").exists()
    monkeypatch.setattr(E, "evolve", real)
    assert main(["evolve", "--out", str(out), "--resume", "--no-plots"]) == 0
    assert (out / "champion.json").is_file()


def test_backtest_says_when_a_long_short_genome_is_wiped_out(tmp_path, capsys):
    from genetic_sizer.backtest.simulate import backtest

    from .conftest import make_wipeout_prices

    prices = make_wipeout_prices()  # RALLY rises 10x
    frame = prices.to_frame()
    frame.index.name = "time"
    path = tmp_path / "prices.csv"
    frame.reset_index().to_csv(path, index=False)
    args = ["backtest", "--source", "csv", "--path", str(path), "--weights", "-0.5", "0.5", "0", "0"]
    assert main([*args, "--rebalance", "once"]) == 0
    out = capsys.readouterr().out
    value = backtest(prices, [-0.5, 0.5, 0, 0], rebalance="once", fees=0.0005).value[:, 0]  # the CLI default fees
    k = int(np.argmax(value <= 0))
    assert f"WIPED OUT: the value fell to {value[k]:,.2f} on {prices.index[k].date()} (bar {k} of 90)" in out
    for name in ("total_return", "cagr", "max_drawdown", "calmar"):
        assert f"  {name:<22}{-1.0: .6f}\n" in out, name
    assert main([*args, "--rebalance", "W"]) == 0  # rebalanced weekly, the short never outgrows the book
    assert "WIPED OUT" not in capsys.readouterr().out


def test_run_summary_marks_wiped_out_allocations(tmp_path, capsys):
    from genetic_sizer.cli.show import print_summary as _print_summary
    from genetic_sizer.runs.results import SUMMARY_METRICS, RunReport

    row = dict.fromkeys(SUMMARY_METRICS, 0.5) | {"wiped_out": 0.0}
    lost = row | {"cagr": -1.0, "max_drawdown": -1.0, "calmar": -1.0, "wiped_out": 1.0}
    report = RunReport(
        run_dir=tmp_path,
        champion_path=tmp_path / "champion.json",
        champion={"weights": {"A": 0.6, "B": 0.4}, "verification": {"max_rel_diff": 0.0, "rtol": 1e-8}},
        summary={"champion": row, "short_heavy": lost},
    )
    _print_summary(report)
    out = capsys.readouterr().out
    assert "short_heavy (wiped out)" in out and "champion (wiped out)" not in out
    assert "short_heavy was wiped out: its value reached zero or below" in out


def _files(path):
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_evolve_refuses_a_users_directory_or_a_file(tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "config.yaml").write_text("my: settings\n")
    (user / "summary.csv").write_text("my,numbers\n")
    before = _files(user)
    assert main(["evolve", "--out", str(user), "--no-plots", *EVOLVE_SMALL]) == 2
    assert "is not empty (config.yaml, summary.csv) and is not a run" in capsys.readouterr().err
    assert _files(user) == before
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    assert main(["evolve", "--out", str(a_file), "--no-plots", *EVOLVE_SMALL]) == 2
    assert "is a file" in capsys.readouterr().err
    assert a_file.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["mine", "notes.txt"]


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--set", "portfolio.max_weight=0.1"], "infeasible bounds"),
        (["--set", "data.symbols=[AAPL, NOPE]"], "NOPE"),
        (["--set", "objective=[sharpe, turnover]", "--set", "evolution.population=10"], "multiple of 4 for NSGA-II"),
    ],
    ids=["bounds", "symbols", "nsga2-population"],
)
def test_evolve_that_fails_validation_leaves_nothing(tmp_path, capsys, bad, message):
    out = tmp_path / "run"
    assert main(["evolve", "--out", str(out), "--no-plots", *EVOLVE_SMALL, *bad]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["evolve", "--out", str(out), "--no-plots", *EVOLVE_SMALL]) == 0
    return out


def test_export_to_a_directory_is_a_clear_error_leaving_nothing(finished_run, tmp_path, capsys):
    target = tmp_path / "out"
    target.mkdir()
    assert main(["export", "--run", str(finished_run), "--out", str(target)]) == 2
    assert f"--out '{target}' is a directory; give a file name" in capsys.readouterr().err
    assert list(target.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert main(["export", "--run", str(tmp_path / "none"), "--out", str(tmp_path / "c.json")]) == 2
    assert "no run directory" in capsys.readouterr().err


def test_export_never_replaces_an_existing_file_without_force(finished_run, tmp_path, capsys):
    target = tmp_path / "mine.json"
    target.write_text("the user's notes\n")
    assert main(["export", "--run", str(finished_run), "--out", str(target)]) == 2
    assert f"--out '{target}' already exists; nothing is overwritten" in capsys.readouterr().err
    assert target.read_text() == "the user's notes\n"
    assert main(["export", "--run", str(finished_run), "--out", str(target), "--force"]) == 0
    assert json.loads(target.read_text())["schema_version"] >= 1


def _main(argv) -> int:
    """``main`` with an escaping KeyboardInterrupt turned into a test failure (it would stop pytest)."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped genetic_sizer.cli.main.main as a traceback")


def test_ctrl_c_during_start_up_is_clean_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    import genetic_sizer.cluster.raymap
    import genetic_sizer.validation.holdout

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(genetic_sizer.validation.holdout, "load_from_config", interrupt)
        assert _main(["evolve", "--out", str(out), "--no-plots", *EVOLVE_SMALL]) == 130
    assert "interrupted before the run started; nothing was written" in capsys.readouterr().err
    assert not out.exists()
    with monkeypatch.context() as m:
        m.setattr(genetic_sizer.cluster.raymap.RayMap, "start", interrupt)
        assert _main(["evolve", "--out", str(out), "--no-plots", *EVOLVE_SMALL, "--set", "parallel.backend=ray"]) == 130
    assert "interrupted before the run started; nothing was written" in capsys.readouterr().err
    assert not out.exists()


def test_ctrl_c_while_writing_results_then_resume_finishes(tmp_path, capsys, monkeypatch):
    import genetic_sizer.runs.plots
    import genetic_sizer.validation.holdout
    from genetic_sizer.runs import champion as C
    from genetic_sizer.runs.evolve import load_result
    from genetic_sizer.storage.files import TMP_MARK
    from genetic_sizer.validation.holdout import load_run

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(genetic_sizer.runs.plots, "equity_windows", interrupt)
        assert _main(["evolve", "--out", str(out), *EVOLVE_SMALL]) == 130
    err = capsys.readouterr().err
    assert "interrupted while writing the results; all 3 generations are checkpointed" in err
    assert f"genetic-sizer evolve --resume --out {out}" in err
    assert not (out / "champion.json").exists() and not [p for p in out.iterdir() if TMP_MARK in p.name]
    # Ctrl-C while a resume loads its data changes nothing
    with monkeypatch.context() as m:
        m.setattr(genetic_sizer.validation.holdout, "load_from_config", interrupt)
        before = _files(out)
        assert _main(["evolve", "--resume", "--out", str(out)]) == 130
    assert "generation 3 of 3 is checkpointed" in capsys.readouterr().err
    assert _files(out) == before
    # a resume of a run whose generations are done writes the results again
    assert _main(["evolve", "--resume", "--out", str(out), "--no-plots"]) == 0
    assert "Champion beside classical allocations" in capsys.readouterr().out
    config, prices, _ = load_run(out)
    result, gen = load_result(config, prices, out)
    assert gen == 3
    assert list(C.load(out / "champion.json").weights) == list(result.champion)


# ---- runs resumed by the command that made them; clear errors instead of tracebacks ----------------------------
WF_SMALL = [
    a
    for s in (
        "data.symbols=[AAPL, AMD, BAC, CVX, JNJ, LLY]",
        "data.start=2021-06-01",
        "evolution.population=8",
        "evolution.generations=2",
        "evolution.hall_of_fame=2",
        "walkforward.train=150",
        "walkforward.test=100",
    )
    for a in ("--set", s)
]
"""A walk-forward of two folds on 399 bars; an evolve run of the same settings fits the folds too."""


def _tree(path):
    """Every file under ``path`` (relative name -> bytes)."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs_of_both_kinds(tmp_path_factory):
    base = tmp_path_factory.mktemp("kinds")
    assert main(["evolve", "--out", str(base / "ev"), "--no-plots", *WF_SMALL]) == 0
    assert main(["walkforward", "--out", str(base / "wf"), "--no-plots", *WF_SMALL]) == 0
    return base / "ev", base / "wf"


def test_walkforward_resume_refuses_an_evolve_run_and_changes_nothing(runs_of_both_kinds, capsys):
    ev, _ = runs_of_both_kinds
    before = _tree(ev)
    # its config fits the folds: before the fix this resumed it as a walk-forward, replacing champion.json with a
    # fold's champion and writing walkforward.json and folds/ beside the evolve run's files
    assert main(["walkforward", "--resume", "--out", str(ev), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert f"error: {ev} is an evolve run; use evolve --resume (genetic-sizer evolve --resume --out {ev})" in err
    assert "nothing in" in err and "Traceback" not in err
    assert _tree(ev) == before
    from genetic_sizer.config import load_config
    from genetic_sizer.errors import RunDirError
    from genetic_sizer.validation.walkforward import walkforward_run

    with pytest.raises(RunDirError, match="is an evolve run; use evolve --resume"):  # the library refuses it too
        walkforward_run(load_config(ev / "config.yaml"), ev, resume=True, plots=False)
    assert _tree(ev) == before


def test_evolve_resume_refuses_a_walkforward_run_before_loading_anything(runs_of_both_kinds, capsys, monkeypatch):
    import genetic_sizer.validation.holdout

    _, wf = runs_of_both_kinds
    before = _tree(wf)

    def no_loading(*args, **kwargs):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(genetic_sizer.validation.holdout, "load_from_config", no_loading)
    assert main(["evolve", "--resume", "--out", str(wf), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert f"error: {wf} is a walk-forward run; use walkforward --resume (genetic-sizer walkforward --resume" in err
    assert _tree(wf) == before


def test_export_of_a_walkforward_run_says_where_its_champion_is(runs_of_both_kinds, tmp_path, capsys):
    _, wf = runs_of_both_kinds
    target = tmp_path / "c.json"
    assert main(["export", "--run", str(wf), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"{wf} is a walk-forward run: its champion, the GA champion of the last fold" in err
    assert f"is {wf}/champion.json: use that file (genetic-sizer size --champion {wf}/champion.json)" in err
    assert f"every fold's GA weights are in {wf}/walkforward.json" in err and "no checkpoint" not in err
    assert (wf / "champion.json").is_file() and not target.exists()


def test_resume_with_another_config_names_each_key_that_differs(runs_of_both_kinds, tmp_path, capsys):
    import yaml

    ev, _ = runs_of_both_kinds
    saved = yaml.safe_load((ev / "config.yaml").read_text())
    seed = saved["evolution"]["seed"]
    args = ["evolve", "--resume", "--out", str(ev), "--no-plots"]
    assert main([*args, "--seed", str(seed + 1)]) == 2
    err = capsys.readouterr().err
    assert f"{ev}/config.yaml: evolution.seed: saved {seed}, given {seed + 1} (only parallel.* and run.*" in err
    assert main([*args, "--set", "portfolio.fees=0.002", "--set", "data.symbols=[AAPL, AMD]"]) == 2
    err = capsys.readouterr().err
    assert "data.symbols: saved ['AAPL', 'AMD', 'BAC', 'CVX', 'JNJ', 'LLY'], given ['AAPL', 'AMD']" in err
    assert f"portfolio.fees: saved {saved['portfolio']['fees']!r}, given 0.002" in err
    other = dict(saved, walkforward=dict(saved["walkforward"], test=90))  # a --config file that differs in one key
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    assert main([*args, "--config", str(tmp_path / "other.yaml")]) == 2
    assert "walkforward.test: saved 100, given 90 (only" in capsys.readouterr().err
    assert main([*args, "--set", "run.checkpoint_every=5"]) == 0  # what does not change the results may change


def _read_only(monkeypatch, directory):
    """Make the operating system's calls refuse new files in ``directory`` (EACCES, "Permission denied"), as it
    does for a directory without write permission: tests run as root, where ``chmod`` stops nothing. Every call
    that creates or opens a file for writing there (``os.open``, ``io.open``/``open``), renames into it or makes a
    directory in it fails; everything else reaches the real call."""
    import builtins
    import errno
    import io
    import os
    from pathlib import Path

    root = Path(directory).resolve()
    real = {"open": os.open, "io": io.open, "replace": os.replace, "rename": os.rename, "mkdir": os.mkdir}

    def inside(p) -> bool:
        return isinstance(p, (str, bytes, os.PathLike)) and Path(os.fsdecode(p)).resolve().parent == root

    def denied(p):
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(p))

    def os_open(path, flags, mode=0o777, *, dir_fd=None):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            raise denied(path)
        return real["open"](path, flags, mode, dir_fd=dir_fd)

    def io_open(file, mode="r", *args, **kwargs):
        if set(mode) & set("wax+") and inside(file):
            raise denied(file)
        return real["io"](file, mode, *args, **kwargs)

    def moved(name):
        def move(src, dst, *args, **kwargs):
            if inside(dst):
                raise denied(dst)
            return real[name](src, dst, *args, **kwargs)

        return move

    def mkdir(path, *args, **kwargs):
        if inside(path):
            raise denied(path)
        return real["mkdir"](path, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(io, "open", io_open)
    monkeypatch.setattr(builtins, "open", io_open)
    monkeypatch.setattr(os, "replace", moved("replace"))
    monkeypatch.setattr(os, "rename", moved("rename"))
    monkeypatch.setattr(os, "mkdir", mkdir)


def test_a_read_only_out_is_a_clear_error_not_a_traceback(runs_of_both_kinds, tmp_path, capsys, monkeypatch):
    ev, _ = runs_of_both_kinds
    ro = tmp_path / "ro"
    ro.mkdir()
    with monkeypatch.context() as m:
        _read_only(m, ro)
        for command in ("evolve", "walkforward"):  # an existing, empty, read-only directory
            assert main([command, "--out", str(ro), "--no-plots", *WF_SMALL]) == 2
            err = capsys.readouterr().err
            assert f"error: run directory '{ro}' cannot be written: '{ro}' does not accept new files" in err
            assert "(Permission denied); choose an --out you can write to" in err
        assert main(["evolve", "--out", str(ro / "new"), "--no-plots", *WF_SMALL]) == 2  # a new one inside it
        assert "does not accept new files (Permission denied)" in capsys.readouterr().err
        target = ro / "champion.json"
        assert main(["export", "--run", str(ev), "--out", str(target)]) == 2
        err = capsys.readouterr().err
        assert f"error: --out '{target}' cannot be written: '{ro}' does not accept new files (Permission denied)" in err
    assert list(ro.iterdir()) == []
    import shutil

    run = shutil.copytree(ev, tmp_path / "read-only-run")  # a run to resume that cannot be written: refused first
    before = _tree(run)
    with monkeypatch.context() as m:
        _read_only(m, run)
        assert main(["evolve", "--resume", "--out", str(run), "--no-plots"]) == 2
        assert f"error: run directory '{run}' cannot be written: '{run}' does not accept new files" in (
            capsys.readouterr().err
        )
    assert _tree(run) == before


def _mount_namespaces_work(tmp_path) -> bool:
    import shutil

    probe = tmp_path / "mnt-probe"
    probe.mkdir()
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    script = f'mount --bind -o ro "{probe}" "{probe}" && ! touch "{probe}/x" 2>/dev/null'
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True).returncode == 0


def test_a_read_only_file_system_is_a_clear_error_in_a_real_mount(runs_of_both_kinds, tmp_path):
    """The same through the kernel: ``--out`` on a read-only bind mount (a private mount namespace of the child
    process, ``unshare -m``: nothing is mounted for anyone else), where even root cannot write."""
    if not _mount_namespaces_work(tmp_path):
        pytest.skip("needs unshare -m and mount (CAP_SYS_ADMIN) for a private read-only bind mount")
    ev, _ = runs_of_both_kinds
    ro = tmp_path / "ro"
    ro.mkdir()
    script = f'mount --bind -o ro "{ro}" "{ro}" && exec "{sys.executable}" -m genetic_sizer "$@"'
    for args in (
        ["evolve", "--out", str(ro), "--no-plots", *WF_SMALL],
        ["walkforward", "--out", str(ro), "--no-plots", *WF_SMALL],
        ["export", "--run", str(ev), "--out", str(ro / "champion.json")],
    ):
        out = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *args], capture_output=True, text=True)
        assert out.returncode == 2, out.stderr
        assert "does not accept new files (Read-only file system)" in out.stderr
        assert "Traceback" not in out.stderr
    assert list(ro.iterdir()) == []


def test_a_walkforward_whose_ray_address_fails_leaves_nothing(tmp_path, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    for command in ("walkforward", "evolve"):
        out = tmp_path / command
        assert main([command, "--out", str(out), "--no-plots", *WF_SMALL, "--ray-address", f"127.0.0.1:{port}"]) == 2
        assert f"cannot reach the Ray cluster at '127.0.0.1:{port}'" in capsys.readouterr().err
        assert not out.exists(), sorted(p.name for p in out.iterdir())
    mine = tmp_path / "mine"  # an empty directory the user made stays, empty
    mine.mkdir()
    assert main(["walkforward", "--out", str(mine), "--no-plots", *WF_SMALL, "--ray-address", f"127.0.0.1:{port}"]) == 2
    assert mine.is_dir() and list(mine.iterdir()) == []

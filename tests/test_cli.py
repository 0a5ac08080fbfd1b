"""The command line, run in-process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genetic_sizer.cli import main


def test_help_is_fast_and_does_not_import_heavy_modules():
    code = (
        "import sys; from genetic_sizer.cli import build_parser; build_parser(); "
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
    from genetic_sizer.data import load_default
    from genetic_sizer.fitness import compute_metrics
    from genetic_sizer.simulate import backtest

    assert main(["backtest", "--symbols", "KO", "PEP", "XOM", "--start", "2019-01-01", "--fees", "0.001"]) == 0
    out = capsys.readouterr().out
    p = load_default(["KO", "PEP", "XOM"], "2019-01-01")
    bt = backtest(p, [1 / 3] * 3, rebalance="M", fees=0.001)
    sharpe = compute_metrics(bt.value, init_cash=1e4, periods_per_year=252)["sharpe"][0]
    assert f"  {'sharpe':<22}{sharpe: .6f}\n" in out


def test_cli_reports_errors_cleanly(capsys):
    assert main(["data", "info", "--symbols", "AAPL", "NOPE"]) == 2
    assert "error: " in capsys.readouterr().err
    assert main(["backtest", "--symbols", "KO", "PEP", "--weights", "0.5", "0.6"]) == 2
    assert "sum of weights is 1.1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])

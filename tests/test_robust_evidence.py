"""experiments/robust_evidence.py --quick on tiny settings: every strategy of a data set on the same folds (the rules
among the walk-forward's allocators; its 1/N re-stitched to 1e-9, checked inside), p-values, and the known-truth
study."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "robust_evidence.py"


def _module():
    spec = importlib.util.spec_from_file_location("robust_evidence", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_quick_run_writes_the_tables(tmp_path):
    out = tmp_path / "evidence"
    plain = tmp_path / "plain.yaml"
    plain.write_text("robust: {}\n")  # the plain GA deployed (not configs/robust.yaml's choice)
    argv = ["--quick", "--datasets", "sp20_monthly", "--reps", "2", "--methods", "plain", "--robust-config", str(plain)]
    argv += ["--out", str(out)]
    rec = _module().main(argv)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["methods"] == ["plain"] and saved["real"].keys() == rec["real"].keys() == {"sp20_monthly"}
    rows = saved["real"]["sp20_monthly"]["strategies"]
    for name in ("GA", "GA_plain", "equal_weight", "min_variance", "equal_minvar_blend", "volatility_timing"):
        assert name in rows, name
    for name, row in rows.items():
        assert row["turnover"] >= 0
        assert name == "equal_weight" or 0 < row["p_value"] <= 1
    # the plain GA is the deployed champion when no robust key changes it
    assert rows["GA"]["sharpe"] == rows["GA_plain"]["sharpe"]
    assert saved["real"]["sp20_monthly"]["folds"] == 4 and saved["real"]["sp20_monthly"]["periods_per_year"] == 12
    syn = saved["synthetic"]
    a, b = syn["a_equal"], syn["b_tilted"]
    # (a): the true optimum is 1/N, so holding it is the 1/N strategy; (b): it is far from 1/N and better
    assert a["true_optimum_sharpe"] == pytest.approx(a["true_equal_weight_sharpe"], rel=1e-9)
    assert a["strategies"]["true_optimum"]["mean"] == pytest.approx(a["strategies"]["equal_weight"]["mean"], abs=1e-6)
    assert (
        b["true_optimum_sharpe"] > b["true_equal_weight_sharpe"] + 0.3
        and b["true_optimum_distance_from_equal_weight"] > 0.3
    )
    for case in (a, b):
        assert case["replications"] == 2 and case["strategies"]["GA"]["n"] == 2
        assert 0.0 <= case["strategies"]["GA"]["won_vs_equal_weight"] <= 1.0
    md = out.with_suffix(".md").read_text()
    assert "| GA_plain |" in md and "## synthetic b_tilted" in md and "| volatility_timing |" in md

"""The notebooks run top to bottom without error (executed with nbclient on this environment's kernel)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
    )
    if path.name == "quickstart.ipynb":
        assert "out of sample the GA" in outputs and "deflated Sharpe" in outputs
        assert "report.html" in outputs
    if path.name == "portfolio_toolkit.ipynb":  # issue 26: one section per item, each printing its figures
        assert "risk parity: largest deviation from 1/N of the variance" in outputs
        assert "black_litterman: equilibrium from the market caps as of" in outputs
        assert "out of sample (" in outputs and "in_sample: effective assets" in outputs
        assert "GFC 2008-09" in outputs and "shock: AAPL+MSFT -25%" in outputs
        assert "multi-strategy risk_budgeting: weights" in outputs and "(budgets 33.33 / 66.67 %)" in outputs
        assert "multi-strategy combined book:" in outputs and "a new period of its calendar" in outputs
        assert "monthly, vol target 10%: realized volatility" in outputs  # the rebalancing policies' section


def test_there_is_a_quickstart():
    assert "quickstart.ipynb" in [p.name for p in NOTEBOOKS]

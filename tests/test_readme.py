"""The README's measured figures come from the experiments' output, not from memory.

``experiments/readme_figures.py`` times ``make evolve`` and ``make walkforward`` and writes
``experiments/readme_figures.json``; the README marks each figure it takes from there (``<!-- fig:NAME -->``). This
checks that every marked figure says what the last measurement says and that the figures a reader relies on are
marked, so a stale timing cannot stay in the README unnoticed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _figures_module():
    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "experiments" / "readme_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readmes_timings_are_the_last_measurement():
    fig = _figures_module()
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    figures = json.loads(fig.OUTPUT.read_text())
    assert fig.check(text, figures) == []
    marked = {m["name"] for m in fig.MARK.finditer(text)}
    assert {"evolve_warm", "walkforward_warm", "evolve_cold"} <= marked  # make evolve / make walkforward's times
    assert "about 15 seconds" not in text  # the figure this replaced


def test_the_check_catches_a_figure_that_differs():
    fig = _figures_module()
    figures = {"evolve_warm": [4.4, 4.6, 5.2], "walkforward_warm": [61.0], "evolve_cold": [130.0]}
    assert fig.rendered(figures) == {
        "evolve_warm": "about 5 s",
        "walkforward_warm": "about 60 s",
        "evolve_cold": ("about 2 minutes"),
    }
    text = "in <!-- fig:evolve_warm -->about 15 s<!-- /fig --> (<!-- fig:walkforward_warm -->about 60 s<!-- /fig -->)"
    assert fig.check(text, figures) == [
        "README.md says 'about 15 s' for fig:evolve_warm; readme_figures.json gives 'about 5 s'"
    ]
    assert fig.check(fig.write(text, figures), figures) == []
    assert fig.write(text, figures).startswith("in <!-- fig:evolve_warm -->about 5 s<!-- /fig -->")

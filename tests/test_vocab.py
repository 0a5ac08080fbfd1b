"""One vocabulary: the config, the command line, the engines and the loaders accept and refuse the same names."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from genetic_sizer import vocab as V
from genetic_sizer.backtest.schedule import rebalance_mask
from genetic_sizer.cli.main import build_parser, main
from genetic_sizer.config import load_config
from genetic_sizer.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[1] / "genetic_sizer"
INDEX = pd.date_range("2021-01-01", periods=120, freq="D", tz="UTC")


@pytest.mark.parametrize("code", [*V.REBALANCE_CODES, 5, "5"])
def test_every_rebalance_code_is_accepted_by_config_and_engine_alike(code):
    cfg = load_config(None, [f"portfolio.rebalance={code}"])
    expected = int(code) if str(code).isdigit() else code
    assert cfg.portfolio.rebalance == expected
    assert rebalance_mask(INDEX, code)[0]  # the engine takes it too


@pytest.mark.parametrize("code", ["m", "q", "Once", "ONCE", "monthly", "0", "-3", "1.5", ""])
def test_a_code_refused_by_one_is_refused_by_all_with_the_same_words(code, capsys):
    with pytest.raises(ConfigError) as from_config:
        load_config(None, [f"portfolio.rebalance={code!r}"])
    with pytest.raises(ConfigError) as from_engine:
        rebalance_mask(INDEX, code)
    assert "must be one of ['once', 'D', 'W', 'M', 'Q'] or a positive integer" in str(from_config.value)
    assert str(from_engine.value).split(" must be ")[1] == str(from_config.value).split(" must be ")[1]
    with pytest.raises(SystemExit) as exit_info:
        main(["backtest", "--rebalance", code])
    assert exit_info.value.code == 2
    assert "--rebalance must be one of" in capsys.readouterr().err


def test_a_case_slip_gets_a_hint():
    with pytest.raises(ConfigError, match=r"did you mean 'M'\?"):
        V.parse_rebalance("m", "portfolio.rebalance")


def test_the_command_line_offers_the_vocabulary():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices
    options = {a.dest: a for a in sub["backtest"]._actions}
    assert tuple(options["engine"].choices) == V.ENGINES
    assert tuple(options["source"].choices) == V.DATA_SOURCES
    assert tuple(options["leading_gaps"].choices) == V.LEADING_GAP_POLICIES
    assert tuple(options["market"].choices) == V.MARKETS
    fetch = sub["data"]._subparsers._group_actions[0].choices["fetch"]
    assert list({a.dest: a for a in fetch._actions}["interval"].choices) == list(V.INTERVAL_MS)


def test_objectives_have_one_home():
    from genetic_sizer import config
    from genetic_sizer.backtest import metrics as fitness

    assert config.OBJECTIVES == tuple(V.OBJECTIVES)
    assert fitness.MAXIMIZE is V.OBJECTIVES


# the literal lists that used to be repeated in two or three modules
_REPEATS = [
    r"\(\s*\"once\",\s*\"D\",\s*\"W\",\s*\"M\",\s*\"Q\"\s*\)",
    r"\(\s*\"fast\",\s*\"vectorbt\"\s*\)|\[\s*\"fast\",\s*\"vectorbt\"\s*\]",
    r"\(\s*\"longonly\",\s*\"longshort\"\s*\)",
    r"\"default\",\s*\"csv\",\s*\"parquet\"",
    r"\(\s*\"trim\",\s*\"error\"\s*\)|\[\s*\"trim\",\s*\"error\"\s*\]",
    r"\(\s*\"serial\",\s*\"ray\"\s*\)",
    r"\"1m\":\s*60_000",
    r"\(\s*\"spot\",\s*\"perp\"\s*\)|\[\s*\"spot\",\s*\"perp\"\s*\]",
]


@pytest.mark.parametrize("pattern", _REPEATS)
def test_no_module_lists_a_vocabulary_again(pattern):
    found = [p.name for p in PACKAGE.glob("*.py") if p.name != "vocab.py" and re.search(pattern, p.read_text())]
    assert found == []

"""Stress losses (genetic_sizer.backtest.stress) by hand, and ``genetic-sizer stress`` on a champion file."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.backtest import stress as S
from genetic_sizer.errors import ConfigError


def test_window_and_shock_losses_by_hand():
    close = np.array([[100.0, 50.0], [90.0, 55.0], [80.0, 60.0]])
    # 60% in an asset down 20%, 40% in one up 20%: -(0.6 x -0.2 + 0.4 x 0.2) = 0.04
    assert S.window_loss(close, [0.6, 0.4], 0, 2) == pytest.approx(0.04, abs=1e-15)
    assert S.window_loss(close, [0.6, 0.4], 0, 1) == pytest.approx(-(0.6 * -0.1 + 0.4 * 0.1), abs=1e-15)
    # a long/short book gains when its short falls
    assert S.window_loss(close, [-0.5, 0.5], 0, 2) == pytest.approx(-(0.5 * 0.2 + 0.5 * 0.2), abs=1e-15)
    assert S.shock_loss([0.5, 0.3, 0.2], [-0.3, 0.0, -0.3]) == pytest.approx(0.21, abs=1e-15)
    with pytest.raises(ConfigError, match="a stress window is two bars start < stop"):
        S.window_loss(close, [0.5, 0.5], 2, 1)
    with pytest.raises(ConfigError, match=r"shocks must be finite moves >= -1"):
        S.shock_loss([1.0], [-1.5])


def test_worst_windows_are_the_worst_and_do_not_overlap():
    t = np.arange(40, dtype=float)
    a = 100 * np.ones(40)
    a[10:13] = [90, 80, 70]  # 1/N falls hardest from bar 9 to bar 12
    a[13:] = 70
    b = 100 + t  # rising
    b[30] = 60  # a one-bar crash at bar 30
    close = np.column_stack([a, b])
    got = S.worst_windows(close, 3, 2)
    ret = [((close[s + 3] / close[s]).mean() - 1) for s in range(37)]
    assert got[0] == (int(np.argmin(ret)), int(np.argmin(ret)) + 3)
    assert got[1][0] > got[0][1] or got[1][1] < got[0][0]  # no shared bar
    worst_other = min(r for s, r in enumerate(ret) if s + 3 < got[0][0] or s > got[0][1])
    assert (close[got[1][1]] / close[got[1][0]]).mean() - 1 == pytest.approx(worst_other)
    assert len(S.worst_windows(close, 3, 100)) <= 10  # 40 bars hold at most 10 disjoint 4-bar windows
    with pytest.raises(ConfigError, match="the data has 40 bars: no window of 40 bars"):
        S.worst_windows(close, 40, 1)


def test_named_crises_only_when_the_data_covers_them():
    index = pd.date_range("2019-12-02", "2020-12-31", freq="B", tz="UTC")
    got = S.crisis_windows(index)
    a, b = got["COVID crash 2020"]
    assert index[a] == pd.Timestamp("2020-02-19", tz="UTC") and index[b] == pd.Timestamp("2020-03-23", tz="UTC")
    assert got["GFC 2008-09"] == "not covered: the data spans 2019-12-02 .. 2020-12-31"
    assert got["2022 drawdown"].startswith("not covered")
    # closes stamped at 21:00 UTC: the trough day's close is in the window too
    late = index + pd.Timedelta(hours=21)
    a, b = S.crisis_windows(late)["COVID crash 2020"]
    assert late[a] == pd.Timestamp("2020-02-19 21:00", tz="UTC")
    assert late[b] == pd.Timestamp("2020-03-23 21:00", tz="UTC")


def test_parametric_losses_by_hand():
    rng = np.random.default_rng(3)
    r = rng.normal(0, [0.01, 0.02], size=(400, 2))
    w = np.array([0.7, 0.3])
    cov = np.cov(r, rowvar=False, ddof=1)
    z = NormalDist().inv_cdf(0.99)
    base = S.parametric_loss(w, r, confidence=0.99, horizon=21)
    assert base == pytest.approx(z * math.sqrt(21 * w @ cov @ w), rel=1e-12)
    one = S.parametric_loss(w, r, confidence=0.99, horizon=21, kind="correlation_one")
    assert one == pytest.approx(z * math.sqrt(21) * (w @ np.sqrt(np.diag(cov))), rel=1e-12)  # vols add up
    assert one > base
    assert S.parametric_loss(w, r, horizon=21, kind="volatility", k=3.0) == pytest.approx(3 * base, rel=1e-12)
    with pytest.raises(ConfigError, match=r"confidence must be in \(0.5, 1\)"):
        S.parametric_loss(w, r, confidence=1.0)


def test_shock_specs():
    from genetic_sizer.runs.stress import parse_shock

    syms = ["A", "B", "C"]
    assert parse_shock("all=-0.2", syms, {}, "A")[0] == "all assets -20%"
    label, moves = parse_shock("A+C=-0.25", syms, {}, "B")
    assert label == "A+C -25%" and moves.tolist() == [-0.25, 0.0, -0.25]
    assert parse_shock("tech=-0.5", syms, {"tech": ["B"]}, "A")[1].tolist() == [0.0, -0.5, 0.0]
    assert parse_shock("largest=-0.3", syms, {}, "C")[1].tolist() == [0.0, 0.0, -0.3]
    for spec, message in [
        ("A-0.3", "--shock must be SPEC=MOVE"),
        ("A=down", "the move 'down' is not a number"),
        ("A=-2", "the move must be a finite number >= -1"),
        ("Z=-0.1", "'Z' is not an asset of the champion"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_shock(spec, syms, {}, "A")


SYMS = ["AAPL", "JPM", "KO", "XOM"]


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A champion evolved on 2016-2019 of four embedded stocks (the data's recorded source: the embedded set)."""
    from genetic_sizer.cli.main import main

    run = tmp_path_factory.mktemp("stress") / "run"
    code = main(
        [
            "evolve",
            "--out",
            str(run),
            "--set",
            f"data.symbols=[{', '.join(SYMS)}]",
            "--set",
            "data.start=2016-01-01",
            "--set",
            "data.end=2019-12-31",
            "--set",
            "evolution.population=16",
            "--set",
            "evolution.generations=2",
            "--set",
            "evolution.holdout=0",
        ]
    )
    assert code == 0
    return run / "champion.json"


def test_stress_command_losses_by_hand(champion, tmp_path, capsys):
    from genetic_sizer.cli.main import main
    from genetic_sizer.data.loaders import load_default

    out = tmp_path / "stress.json"
    assert main(["stress", "--champion", str(champion), "--out", str(out), "--shock", "KO+XOM=-0.4"]) == 0
    printed = capsys.readouterr().out
    assert "Stress losses" in printed and "GFC 2008-09" in printed and f"wrote {out}" in printed
    table = json.loads(out.read_text())
    rec = json.loads(champion.read_text())
    w = np.array([rec["weights"][s] for s in SYMS])
    prices = load_default(symbols=SYMS)  # the whole history of the recorded source
    close, index = prices.close, prices.index
    assert table["data"]["same_as_evolved"] is True and table["data"]["first_bar"][:10] == "1990-01-02"
    assert list(table["books"])[:2] == ["champion", "1/N"] and "risk_parity" in table["books"]
    rows = {r["name"]: r for r in table["scenarios"]}
    for name in ("worst 21-bar window #1", "GFC 2008-09", "COVID crash 2020"):
        a, b = (int(index.searchsorted(pd.Timestamp(t))) for t in rows[name]["window"])
        move = close[b] / close[a] - 1
        assert rows[name]["losses"]["champion"] == pytest.approx(-(w @ move), abs=1e-12)
        assert rows[name]["losses"]["1/N"] == pytest.approx(-move.mean(), abs=1e-12)
        rp = np.array([table["books"]["risk_parity"][s] for s in SYMS])
        assert rows[name]["losses"]["risk_parity"] == pytest.approx(-(rp @ move), abs=1e-12)
    # the worst window is the worst of 1/N over the whole data
    ret = (close[21:] / close[:-21]).mean(axis=1) - 1
    assert rows["worst 21-bar window #1"]["losses"]["1/N"] == pytest.approx(-ret.min(), abs=1e-12)
    shock = rows["shock: KO+XOM -40%"]["losses"]
    assert shock["champion"] == pytest.approx(0.4 * (w[2] + w[3]), abs=1e-12)
    assert rows["2022 drawdown"]["window"][1][:10] == "2022-10-12"
    # never overwrites: the same --out again is refused; --json prints the table as JSON
    assert main(["stress", "--champion", str(champion), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["stress", "--champion", str(champion), "--json", "--window", "5", "--worst", "1"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["settings"]["window"] == 5 and sum(r["kind"] == "historical" for r in again["scenarios"]) == 1


def test_stress_with_a_config_uses_its_data(champion, tmp_path, capsys):
    from genetic_sizer.cli.main import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{symbols: [{', '.join(SYMS)}], start: '2015-01-01'}}\n")
    assert main(["stress", "--champion", str(champion), "--config", str(cfg), "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["data"]["source"] == "the config's data section" and table["data"]["first_bar"][:4] == "2015"
    assert set(table["not_covered"]) == {"GFC 2008-09"}
    # --set alone: the allocators: keys apply, the data stays the champion's recorded source
    args = [
        "stress",
        "--champion",
        str(champion),
        "--json",
        "--set",
        "allocators.views=[{view: KO = 0.3, confidence: 1}]",
    ]
    assert main(args) == 0
    viewed = json.loads(capsys.readouterr().out)
    assert viewed["data"]["first_bar"][:10] == "1990-01-02" and viewed["data"]["same_as_evolved"] is True
    assert viewed["books"]["black_litterman"]["KO"] > 0.5 > viewed["books"]["1/N"]["KO"]
    cfg.write_text("data: {symbols: [AAPL, MSFT], start: '2015-01-01'}\n")
    assert main(["stress", "--champion", str(champion), "--config", str(cfg)]) == 2
    assert "the config's data has no 'JPM'" in capsys.readouterr().err

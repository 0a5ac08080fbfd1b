"""Files of returns (data.kind: returns): compounded into prices from 1.0 one bar before the first return."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genetic_sizer.config import DataConfig, RunConfig, load_config
from genetic_sizer.data.loaders import load, load_from_config, load_parquet
from genetic_sizer.data.returns import bar_before
from genetic_sizer.errors import ConfigError, DataError


def write(tmp_path, text: str, name: str = "r.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


MONTHLY = "Date,A,B\n2020-01-31,1.0,-2.0\n2020-02-29,2.0,3.0\n2020-03-31,-1.0,1.0\n"


def test_percent_returns_compound_from_one_a_bar_before(tmp_path):
    p = load("csv", write(tmp_path, MONTHLY), kind="returns", returns_unit="percent")
    assert [str(t.date()) for t in p.index] == ["2019-12-31", "2020-01-31", "2020-02-29", "2020-03-31"]
    np.testing.assert_allclose(p.close[:, 0], [1.0, 1.01, 1.01 * 1.02, 1.01 * 1.02 * 0.99], rtol=1e-15)
    np.testing.assert_allclose(p.close[:, 1], [1.0, 0.98, 0.98 * 1.03, 0.98 * 1.03 * 1.01], rtol=1e-15)
    assert p.periods_per_year == 12.0
    assert any("compounded into prices from 1.0 at 2019-12-31" in n for n in p.notes)
    # the same returns as fractions, from Parquet: the same prices
    frac = pd.DataFrame({"A": [0.01, 0.02, -0.01], "B": [-0.02, 0.03, 0.01]}, index=pd.DatetimeIndex(
        ["2020-01-31", "2020-02-29", "2020-03-31"], name="date"))  # fmt: skip
    frac.to_parquet(tmp_path / "r.parquet")
    q = load_parquet(tmp_path / "r.parquet", kind="returns", returns_unit="fraction")
    np.testing.assert_allclose(q.close, p.close, rtol=1e-15)
    assert (q.index == p.index).all()


def test_where_the_first_price_sits():
    ix = pd.DatetimeIndex
    assert bar_before(ix(["2020-03-02", "2020-03-03"], tz="UTC")) == pd.Timestamp("2020-02-28", tz="UTC")  # Monday
    assert bar_before(ix(["2020-01-01", "2020-02-01"], tz="UTC")) == pd.Timestamp("2019-12-01", tz="UTC")
    assert bar_before(ix(["2020-03-31", "2020-06-30"], tz="UTC")) == pd.Timestamp("2019-12-31", tz="UTC")  # quarterly
    assert bar_before(ix(["2020-01-15", "2020-02-15"], tz="UTC")) == pd.Timestamp("2019-12-15", tz="UTC")
    hourly = ix(["2024-01-06 00:00", "2024-01-06 01:00", "2024-01-06 02:00"], tz="UTC")  # a Saturday: 24/7
    assert bar_before(hourly) == pd.Timestamp("2024-01-05 23:00", tz="UTC")
    assert bar_before(ix(["2024-01-06", "2024-01-07"], tz="UTC")) == pd.Timestamp("2024-01-05", tz="UTC")  # 24/7 days
    with pytest.raises(DataError, match=r"at least 2"):
        bar_before(ix(["2020-01-31"], tz="UTC"))


def test_bad_returns_name_the_column_and_the_date(tmp_path):
    gap = write(tmp_path, "Date,A,B\n2020-01-31,1.0,2.0\n2020-02-29,,3.0\n2020-03-31,1.0,1.0\n")
    with pytest.raises(DataError, match=r"the return of 'A' at 2020-02-29.* is nan, not a number"):
        load("csv", gap, kind="returns", returns_unit="percent")
    text = write(tmp_path, "Date,A,B\n2020-01-31,1.0,2.0\n2020-02-29,1.0,abc\n2020-03-31,1.0,1.0\n", "t.csv")
    with pytest.raises(DataError, match=r"the return of 'B' at 2020-02-29.* is 'abc', not a number"):
        load("csv", text, kind="returns", returns_unit="percent")
    with pytest.raises(
        DataError, match=r"'A' at 2020-03-31.* is -1 \(fraction\), -100 % or less.*returns_unit: percent"
    ):
        load("csv", write(tmp_path, MONTHLY, "m.csv"), kind="returns", returns_unit="fraction")
    ruin = write(tmp_path, "Date,A,B\n2020-01-31,1.0,2.0\n2020-02-29,1.0,-150\n2020-03-31,1.0,1.0\n", "x.csv")
    with pytest.raises(DataError, match=r"'B' at 2020-02-29.* is -150 \(percent\), -100 % or less"):
        load("csv", ruin, kind="returns", returns_unit="percent")
    # only the columns asked for are read: a gap in another column is not an error
    three = write(tmp_path, "Date,A,B,C\n2020-01-31,1.0,2.0,1\n2020-02-29,,3.0,1\n2020-03-31,1.0,1.0,1\n", "3.csv")
    p = load("csv", three, ["C", "B"], kind="returns", returns_unit="percent")
    assert p.symbols == ("C", "B") and p.n_bars == 4
    np.testing.assert_allclose(p.close[:, 0], [1.0, 1.01, 1.01**2, 1.01**3], rtol=1e-15)
    with pytest.raises(DataError, match=r"symbol\(s\) \['D'\] not found"):
        load("csv", three, ["B", "D"], kind="returns", returns_unit="percent")
    long = write(tmp_path, "date,symbol,close\n2020-01-31,A,1\n2020-02-29,A,2\n2020-03-31,A,1\n", "long.csv")
    with pytest.raises(DataError, match=r"reads wide files"):
        load("csv", long, kind="returns", returns_unit="percent")


def test_the_unit_is_never_guessed(tmp_path):
    path = write(tmp_path, MONTHLY)
    with pytest.raises(ConfigError, match=r"data.returns_unit must be one of \['fraction', 'percent'\].*never guessed"):
        load("csv", path, kind="returns")
    with pytest.raises(ConfigError, match=r"data.returns_unit must be null for data.kind prices"):
        load("csv", path, returns_unit="percent")
    with pytest.raises(ConfigError, match=r"data.kind must be one of"):
        load("csv", path, kind="ret")
    with pytest.raises(ConfigError, match=r"data.source must be csv or parquet for data.kind returns"):
        load("default", kind="returns", returns_unit="percent")


def test_config_keys(tmp_path):
    path = write(tmp_path, MONTHLY)
    cfg = load_config(None, ["data.source=csv", f"data.path={path}", "data.kind=returns", "data.returns_unit=percent"])
    assert cfg.data.kind == "returns" and cfg.data.returns_unit == "percent"
    np.testing.assert_allclose(load_from_config(cfg.data).close[-1], [1.01 * 1.02 * 0.99, 0.98 * 1.03 * 1.01])
    with pytest.raises(ConfigError, match=r"data.returns_unit must be one of"):
        DataConfig(source="csv", path=str(path), kind="returns")
    with pytest.raises(ConfigError, match=r"data.returns_unit must be one of"):
        DataConfig(source="csv", path=str(path), kind="returns", returns_unit="percentage")
    with pytest.raises(ConfigError, match=r"data.source must be csv or parquet"):
        DataConfig(source="hyperliquid", path=str(path), kind="returns", returns_unit="fraction")
    # the keys came later: a config that leaves them at prices keeps its fingerprint; returns change it
    base = RunConfig().sha256()
    assert RunConfig.from_dict({"data": {"kind": "prices", "returns_unit": None}}).sha256() == base
    assert cfg.sha256() != load_config(None, ["data.source=csv", f"data.path={path}"]).sha256()

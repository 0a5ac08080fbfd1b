"""The risk-free rate Sharpe and Sortino are measured against (``portfolio.risk_free``): one annual rate, or a file of
rates aligned to the bars.

Conventions:

* The metric kernels take each bar's rate: what cash earned over that bar, from the previous bar's close to its own
  (the first bar's return, the initial allocation's ``v_0 / init_cash - 1``, has its rate subtracted like every
  other, as vectorbt does). That is vectorbt's ``risk_free`` argument of ``sharpe_ratio``, a per-period rate, and
  what :func:`genetic_sizer.backtest.metrics.compute_metrics` and :func:`genetic_sizer.backtest.simulate.score` take.
* An annual rate ``a`` becomes a per-bar rate by compounding, ``(1 + a) ** (1 / periods_per_year) - 1``: a year of
  bars of cash compounds to ``a``, as ``annualized_return`` (CAGR) compounds returns, and a portfolio that earns
  exactly the rate has an excess return of 0 (the simple ``a / periods_per_year`` is higher by about ``a**2 / 2`` a
  year: 2 bp at 2 %). ``periods_per_year`` is the data's (:attr:`Prices.periods_per_year`).
* A file of ``per_period`` rates (each row cash's return over the period ending at its time, e.g. the ``RF`` column
  of Kenneth French's factor files) is aligned to the bars as funding is: bar ``t`` takes the rows in
  (bar ``t-1``, bar ``t``], compounded; bar 0 those in (bar 0 minus the median bar spacing, bar 0]. A bar without a
  row is an error naming it (a file coarser than the bars: use ``kind: annual``).
* A file of ``annual`` rates (a quoted yield, e.g. a 3-month bill rate) holds from each row's time on: each bar takes
  the latest row at or before it, converted as a constant annual rate. A bar before the first row, or further than
  :func:`stale_after` after the row it would take, is an error naming it.

Bad rates are errors naming ``portfolio.risk_free`` and the value: an annual rate (or a per-period row's annual
equivalent at the file's own spacing) outside :data:`genetic_sizer.vocab.RISK_FREE_BOUNDS` (a rate in percent read as
a fraction, a per-period rate read as annual).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genetic_sizer import vocab as V
from genetic_sizer.data.prices import Prices
from genetic_sizer.data.times import fmt_ts
from genetic_sizer.errors import ConfigError, DataError

__all__ = ["RiskFree", "check_rates", "describe", "per_bar_rate"]

KEY = "portfolio.risk_free"
_CONVENTIONS = {
    "constant": "per-bar rate = (1 + annual) ** (1 / periods_per_year) - 1",
    "annual": "each bar: the latest row at or before it, per bar (1 + rate) ** (1 / periods_per_year) - 1",
    "per_period": "each bar: the rows in (previous bar, bar] compounded",
}
YEAR = pd.Timedelta(days=365.25)


def per_bar_rate(annual: float, periods_per_year: float) -> float:
    """The per-bar rate of an annual rate: ``(1 + annual) ** (1 / periods_per_year) - 1``."""
    return float(np.expm1(np.log1p(annual) / periods_per_year))


def _annualized(rate, periods_per_year):
    return np.expm1(np.log1p(rate) * periods_per_year)


def _check_annual(rate: float, what: str, error=ConfigError) -> None:
    lo, hi = V.RISK_FREE_BOUNDS
    if not lo <= rate <= hi:
        hint = " (a rate in percent? give fractions, or percent: true for a file)" if rate > hi else ""
        raise error(f"{what} is {rate:.6g} a year, outside [{lo:g}, {hi:g}]{hint}")


def _check_rows(annual: np.ndarray, rows: np.ndarray, what) -> None:
    """A DataError for the first of ``rows`` whose annual rate (``annual``, one per row) is out of bounds; ``what(i)``
    describes row ``i``."""
    lo, hi = V.RISK_FREE_BOUNDS
    bad = rows[~((annual[rows] >= lo) & (annual[rows] <= hi))]
    if bad.size:
        _check_annual(float(annual[bad[0]]), what(int(bad[0])), DataError)


def check_rates(risk_free, n_bars: int, periods_per_year: float, key: str = "risk_free") -> np.ndarray:
    """The kernels' ``rf`` from per-bar rates: one number (or array (1,)) for every bar, or an array (n_bars,); float64
    (1,) when every bar has the same rate (so an array of zeros is no rate at all, bit for bit), else (n_bars,).

    Each rate must be finite and above -1, and the annual equivalent of their mean, ``(1 + mean) ** periods_per_year -
    1``, within :data:`genetic_sizer.vocab.RISK_FREE_BOUNDS` (an annual rate passed as per-bar is far outside).
    Errors are ConfigErrors naming ``key`` and the value.
    """
    try:
        raw = np.asarray(risk_free)
    except (TypeError, ValueError):
        raw = np.asarray(None)
    if raw.dtype.kind not in "iuf" or raw.ndim > 1:  # numbers only: not text, not True
        raise ConfigError(f"{key} must be a per-bar rate or an array of one per bar, got {risk_free!r}")
    arr = np.array(raw, dtype=np.float64, ndmin=1)
    if arr.shape[0] not in (1, n_bars):
        raise ConfigError(f"{key} must have one rate per bar ({n_bars}), got {arr.shape[0]}")
    bad = ~(np.isfinite(arr) & (arr > -1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f"[{i}]" if arr.shape[0] > 1 else ""
        raise ConfigError(f"{key}{where} must be a finite per-bar rate above -1, got {float(arr[i])!r}")
    mean = float(arr.mean())
    _check_annual(float(_annualized(mean, periods_per_year)), f"{key} ({mean:.6g} per bar, mean)")
    if (arr == arr[0]).all():
        return arr[:1].copy()
    return np.ascontiguousarray(arr)


@functools.lru_cache(maxsize=16)
def _read(path: str, column, mtime_ns: int, size: int) -> tuple[pd.Series, str]:
    from genetic_sizer.data.loaders import load_rates

    return load_rates(path, column, what=KEY)


def stale_after(series: pd.Series) -> pd.Timedelta:
    """How long an ``annual`` rate holds after its row: three times the file's median spacing, at least 10 days."""
    gaps = np.diff(series.index.as_unit("ns").asi8)
    median = pd.Timedelta(int(np.median(gaps)), "ns") if len(gaps) else pd.Timedelta(0)
    return max(3 * median, pd.Timedelta(days=10))


@dataclass(frozen=True)
class RiskFree:
    """``portfolio.risk_free``: ``annual`` (a constant annual rate) or ``file`` (``{path, column, kind, percent}``, see
    :func:`genetic_sizer.vocab.normalize_risk_free`). :meth:`rates` gives the kernels' per-bar rates of a window."""

    annual: float = 0.0
    file: dict | None = None

    @classmethod
    def of(cls, value) -> RiskFree:
        """From a config value (a number: the annual rate; a mapping: a file), or a RiskFree as it is."""
        if isinstance(value, RiskFree):
            return value
        value = V.normalize_risk_free(value, KEY)
        return cls(file=value) if isinstance(value, dict) else cls(annual=value)

    @property
    def is_zero(self) -> bool:
        return self.file is None and self.annual == 0.0

    def series(self) -> tuple[pd.Series, str]:
        """The file's rates as fractions (percent divided by 100) on UTC times, and the loader's note."""
        path = Path(self.file["path"])
        stat = path.stat() if path.is_file() else None
        if stat is None:
            raise DataError(f"{KEY}.path: {path}: no such file")
        s, note = _read(str(path), self.file["column"], stat.st_mtime_ns, stat.st_size)
        return (s / 100.0 if self.file["percent"] else s), note

    def rates(self, prices: Prices) -> np.ndarray:
        """Each bar's rate for the metric kernels (float64 (1,) for a constant rate, else (n_bars,))."""
        ppy = prices.periods_per_year
        if self.file is None:
            return np.array([per_bar_rate(self.annual, ppy)])
        s, _ = self.series()
        out = self._annual_rates(s, prices) if self.file["kind"] == "annual" else self._period_rates(s, prices)
        return check_rates(out, prices.n_bars, ppy, KEY)

    def _missing(self, prices: Prices, t: int, why: str) -> DataError:
        return DataError(
            f"{KEY}: {self.file['path']} has no {self.file['kind']} rate for the bar at {fmt_ts(prices.index[t])} "
            f"(bar {t} of {prices.n_bars}): {why}"
        )

    def _annual_rates(self, s: pd.Series, prices: Prices) -> np.ndarray:
        bars = prices.index.as_unit("ns").asi8
        times = s.index.as_unit("ns").asi8
        row = np.searchsorted(times, bars, side="right") - 1
        if row[0] < 0:
            raise self._missing(prices, 0, f"its first row is at {fmt_ts(s.index[0])}")
        limit = stale_after(s)
        stale = bars - times[row] > limit.value
        if stale.any():
            t = int(np.flatnonzero(stale)[0])
            last = fmt_ts(s.index[row[t]])
            span = f"{limit.days} days" if limit == pd.Timedelta(days=limit.days) else str(limit)
            raise self._missing(prices, t, f"the latest row before it, at {last}, is older than {span}")
        values = s.to_numpy()
        _check_rows(values, np.unique(row), lambda i: f"{KEY}: the annual rate at {fmt_ts(s.index[i])}")
        return np.expm1(np.log1p(values[row]) / prices.periods_per_year)

    def _period_rates(self, s: pd.Series, prices: Prices) -> np.ndarray:
        bars = prices.index.as_unit("ns").asi8
        step = int(np.median(np.diff(bars)))
        times = s.index.as_unit("ns").asi8
        ends = np.searchsorted(times, bars, side="right")  # bar t takes the rows [starts[t], ends[t])
        starts = np.concatenate([np.searchsorted(times, [bars[0] - step], side="right"), ends[:-1]])
        empty = ends <= starts
        if empty.any():
            t = int(np.flatnonzero(empty)[0])
            since = prices.index[t - 1] if t > 0 else prices.index[0] - pd.Timedelta(step, "ns")
            why = f"no row in ({fmt_ts(since)}, {fmt_ts(prices.index[t])}]"
            raise self._missing(prices, t, why + " (is the file coarser than the bars? then use kind: annual)")
        values = s.to_numpy()
        gaps = np.diff(times)
        per_year = YEAR.value / float(np.median(gaps)) if len(gaps) else prices.periods_per_year
        what = f"{KEY}: the per-period rate at {{}} (annualized at the file's {per_year:.4g} periods a year)"
        rows = np.arange(starts[0], ends[-1])
        _check_rows(_annualized(values, per_year), rows, lambda i: what.format(fmt_ts(s.index[i])))
        # one row: its rate as it is; several (a finer file, or a gap in the bars): compounded
        grown = np.multiply.reduceat(1.0 + values[: ends[-1]], starts) - 1.0
        return np.where(ends - starts == 1, values[starts], grown)

    def record(self, prices: Prices) -> dict:
        """What a champion file or ``walkforward.json`` says of the rate used on ``prices``: the setting, and the
        per-bar rates' mean (``per_bar``) and its annual equivalent (``annualized``); for a file also its note and a
        fingerprint (``rates_sha256``) of the aligned rates."""
        rf = self.rates(prices)
        mean = float(rf.mean())
        out = {"annual": self.annual} if self.file is None else dict(self.file)
        out["per_bar"] = mean
        out["annualized"] = float(_annualized(mean, prices.periods_per_year))
        out["convention"] = _CONVENTIONS["constant" if self.file is None else self.file["kind"]]
        if self.file is not None:
            out["note"] = self.series()[1]
            out["rates_sha256"] = hashlib.sha256(np.ascontiguousarray(rf).tobytes()).hexdigest()
        return out


def describe(record: dict | None) -> str:
    """What the Sharpe and Sortino of a table are in excess of, from a :meth:`RiskFree.record` (``""`` for no rate)."""
    if not record or ("path" not in record and not record.get("annual")):
        return ""
    if "path" in record:
        kind = record["kind"].replace("_", "-")
        what = f"the {kind} rates of {record['path']} (on average {record['annualized']:.3%} a year)"
    else:
        what = f"{record['annual']:.3%} a year"
    return (
        f"Sharpe and Sortino are of the returns in excess of a risk-free rate of {what}: {record['per_bar']:.4g} "
        "per bar on average (portfolio.risk_free)"
    )

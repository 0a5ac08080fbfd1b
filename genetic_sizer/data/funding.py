"""Perpetual funding rates: where they are saved, how they are written, and how they are summed into bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from genetic_sizer.data.prices import Prices
from genetic_sizer.data.times import fmt_ts, parse_times
from genetic_sizer.errors import DataError

__all__ = [
    "FUNDING_SETTLEMENT",
    "FUNDING_SUFFIX",
    "align_funding",
    "bar_closes",
    "funding_path_for",
    "save_funding",
]

FUNDING_SUFFIX = ".funding.parquet"
"""``genetic-sizer data fetch --out NAME.parquet`` saves the funding history as ``NAME.funding.parquet``."""

FUNDING_SETTLEMENT = pd.Timedelta(hours=1)
"""Hyperliquid settles funding every hour, on the hour, and stamps each rate a few milliseconds to a second after
it: rate times are floored to the hour before they are assigned to bars."""


def funding_path_for(path: str | Path) -> Path:
    """Where ``genetic-sizer data fetch`` saves the funding history of the price file ``path``."""
    return Path(path).with_suffix(FUNDING_SUFFIX)


def bar_closes(index: pd.DatetimeIndex) -> np.ndarray:
    """Close times (int64 ns, UTC) of bars labelled by their open time: each label plus the bar interval (the median
    spacing of ``index``), as Hyperliquid candles are labelled."""
    ints = pd.DatetimeIndex(index).as_unit("ns").asi8
    step = int(np.median(np.diff(ints))) if len(ints) > 1 else 0
    return ints + step


def align_funding(rates: pd.DataFrame, prices: Prices, *, source: str = "funding") -> tuple[np.ndarray, str]:
    """Sum funding rates into the bars of ``prices``; return ``(funding (n_bars, n_assets), note)``.

    ``rates`` is long form: ``time`` (UTC timestamps or epoch numbers), ``coin``, ``funding_rate`` (the
    fundingHistory rows ``genetic-sizer data fetch`` saves). A rate paid at time H belongs to the bar whose close
    is at H: bars are labelled by their open time, so for hourly candles the bar labelled H - 1h, and a coarser
    bar (4h, 1d) sums the rates of its hours. Row ``t`` is the sum over (close of t-1, close of t]; after a gap in
    the bars the next bar takes the gap's rates (the positions were held through it). Times are floored to the
    hour first (:data:`FUNDING_SETTLEMENT`). Rates outside the bars are left out, coins not in ``prices`` are
    ignored, and a bar or coin without a rate gets 0 (the note says how many hours each coin covers).
    """
    missing = [c for c in ("time", "coin", "funding_rate") if c not in rates.columns]
    if missing:
        raise DataError(f"{source}: funding rates need columns time, coin, funding_rate; missing {missing}")
    n_bars, n_assets = prices.close.shape
    funding = np.zeros((n_bars, n_assets))
    if len(rates) == 0:
        return funding, f"funding from {source}: no rates (taken as 0)"
    times, _ = parse_times(rates["time"], "column 'time'", source)
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    coins = rates["coin"].astype(str).to_numpy()
    values = pd.to_numeric(rates["funding_rate"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raw = rates["funding_rate"].iloc[i]
        raw = raw.item() if isinstance(raw, np.generic) else raw
        raise DataError(f"{source}: funding_rate of {coins[i]!r} at {fmt_ts(times[i])} is {raw!r}")
    settled = times.floor(FUNDING_SETTLEMENT).as_unit("ns").asi8
    dup = pd.DataFrame({"t": settled, "c": coins}).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(f"{source}: two funding rates for {coins[i]!r} in the hour of {fmt_ts(times[i])}")
    closes = bar_closes(prices.index)
    first_open = prices.index.as_unit("ns").asi8[0]
    row = np.searchsorted(closes, settled, side="left")
    col = np.array([prices.symbols.index(c) if c in prices.symbols else -1 for c in coins], dtype=np.int64)
    keep = (row < n_bars) & (settled > first_open) & (col >= 0)
    np.add.at(funding, (row[keep], col[keep]), values[keep])
    hours = int((closes[-1] - first_open) // FUNDING_SETTLEMENT.value)
    counts = {s: int((keep & (col == k)).sum()) for k, s in enumerate(prices.symbols)}
    cover = ", ".join(f"{s} {n}" for s, n in counts.items())
    note = f"funding from {source}: rates of the {hours} hours of the bars summed per bar ({cover} hours with a rate)"
    none = [s for s, n in counts.items() if n == 0]
    if none:
        note += f"; no rate for {none} (taken as 0)"
    return funding, note


def save_funding(rows: dict[str, list[dict]], path: str | Path) -> Path:
    """Funding history (coin -> rows with ``time`` ms, ``fundingRate``, ``premium``) as long-form Parquet."""
    records = [
        {
            "time": pd.Timestamp(int(r["time"]), unit="ms", tz="UTC"),
            "coin": coin,
            "funding_rate": float(r["fundingRate"]),
            "premium": float(r.get("premium", "nan")),
        }
        for coin, rs in rows.items()
        for r in rs
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame.from_records(records, columns=["time", "coin", "funding_rate", "premium"]).to_parquet(
        path, index=False
    )
    return path

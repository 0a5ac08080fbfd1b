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
    "unfunded",
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
    fundingHistory rows ``genetic-sizer data fetch`` saves), and optionally ``price``: the coin's close at the hour
    the rate was paid (the fetch saves the hourly candles' closes there). A rate paid at time H belongs to the bar
    whose close is at H: bars are labelled by their open time, so for hourly candles the bar labelled H - 1h, and a
    coarser bar (4h, 1d) sums the rates of its hours. Row ``t`` is the sum over (close of t-1, close of t]; after a
    gap in the bars the next bar takes the gap's rates (the positions were held through it). Times are floored to
    the hour first (:data:`FUNDING_SETTLEMENT`). Rates outside the bars are left out and coins not in ``prices``
    are ignored.

    The kernels charge row ``t`` at bar ``t``'s close (``q * close_t * funding_t``); a payment inside a coarser bar
    is made at its own hour's price, so each rate is weighted by ``price / close_t`` (its hour's close over the
    bar's) and row ``t`` is ``sum_h rate_h * price_h / close_t``: with hourly bars the weight is exactly 1 (the
    hour's close is the bar's close), and a payment without a ``price`` is charged at the bar's close (weight 1),
    which the note counts and dates. A bar in which a coin has no rate at all is NaN (a hole in the funding file,
    which a perp run refuses rather than charge nothing; the note names the coins).
    """
    missing = [c for c in ("time", "coin", "funding_rate") if c not in rates.columns]
    if missing:
        raise DataError(f"{source}: funding rates need columns time, coin, funding_rate; missing {missing}")
    n_bars, n_assets = prices.close.shape
    funding = np.zeros((n_bars, n_assets))
    if len(rates) == 0:
        return np.full((n_bars, n_assets), np.nan), f"funding from {source}: no rates (every coin without funding)"
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
    row, col, settled, values = row[keep], col[keep], settled[keep], values[keep]
    inside = settled != closes[row]  # paid before its bar's close: priced at its own hour
    weight = np.ones(len(values))
    if "price" in rates.columns and inside.any():
        price = pd.to_numeric(rates["price"], errors="coerce").to_numpy(dtype=np.float64)[keep]
        with np.errstate(invalid="ignore"):
            known = inside & np.isfinite(price) & (price > 0)
        weight[known] = price[known] / prices.close[row[known], col[known]]
    else:
        known = np.zeros(len(values), dtype=bool)
    np.add.at(funding, (row, col), values * weight)
    rated = np.zeros((n_bars, n_assets), dtype=np.int64)
    np.add.at(rated, (row, col), 1)
    funding[rated == 0] = np.nan
    hours = int((closes[-1] - first_open) // FUNDING_SETTLEMENT.value)
    counts = {s: int((col == k).sum()) for k, s in enumerate(prices.symbols)}
    cover = ", ".join(f"{s} {n}" for s, n in counts.items())
    note = f"funding from {source}: rates of the {hours} hours of the bars summed per bar ({cover} hours with a rate)"
    at_close = inside & ~known
    if inside.any():
        note += f"; {int(known.sum())} of {int(inside.sum())} payments inside a bar priced at their hour's close"
        if at_close.any():
            when = pd.to_datetime(settled[at_close], utc=True)
            note += (
                f", {int(at_close.sum())} at their bar's close (no hourly price; paid {fmt_ts(when.min())} .. "
                f"{fmt_ts(when.max())})"
            )
    holes = {s: int(np.isnan(funding[1:, k]).sum()) for k, s in enumerate(prices.symbols)}
    holes = {s: n for s, n in holes.items() if n}
    if holes:
        note += "; no rate in " + ", ".join(f"{n} of {n_bars - 1} bars for {s}" for s, n in holes.items())
    return funding, note


def save_funding(rows: dict[str, list[dict]], path: str | Path, hourly: dict[str, dict] | None = None) -> Path:
    """Funding history (coin -> rows with ``time`` ms, ``fundingRate``, ``premium``) as long-form Parquet, with the
    ``price`` each payment was made at: ``hourly[coin]`` maps the close time (ms) of an hourly candle to its close;
    a payment's hour (its time floored to the hour) is looked up there, NaN where there is none."""
    hour = int(FUNDING_SETTLEMENT.value // 1_000_000)
    records = [
        {
            "time": pd.Timestamp(int(r["time"]), unit="ms", tz="UTC"),
            "coin": coin,
            "funding_rate": float(r["fundingRate"]),
            "premium": float(r.get("premium", "nan")),
            "price": float((hourly or {}).get(coin, {}).get(int(r["time"]) // hour * hour, np.nan)),
        }
        for coin, rs in rows.items()
        for r in rs
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ["time", "coin", "funding_rate", "premium", "price"]
    pd.DataFrame.from_records(records, columns=columns).to_parquet(path, index=False)
    return path


def unfunded(prices: Prices, held=None) -> list[str]:
    """The symbols of ``held`` (default: every symbol) for which ``prices.funding`` has no rate in any bar a
    position is held through (rows 1 on): an empty funding file, or one without rows for the coin, in this window.
    Empty when the prices carry no funding at all (that case is the caller's)."""
    if prices.funding is None:
        return []
    held = list(prices.symbols) if held is None else list(held)
    return [s for s in held if np.isnan(prices.funding[1:, prices.symbols.index(s)]).all()]

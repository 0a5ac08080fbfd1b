"""The exchange's margin rules for perpetuals: each coin's maximum leverage and margin tiers, read from Hyperliquid's
``meta`` answer, which ``genetic-sizer data fetch`` saves beside the candles (``NAME.meta.json``).

Hyperliquid's rules (its documentation, "Margin tiers" and "Liquidations"): a coin is on a margin table, a list of
tiers ``(lower_bound, max_leverage)`` of position notional (USDC), the first at 0, the maximum leverage falling as the
notional grows (BTC: 40x up to 150M, 20x past it). A coin whose ``marginTableId`` is below 50 is on a single tier at
that leverage (such tables are not listed); a coin without an id is on a single tier at its ``maxLeverage``. The
maintenance margin of a position of notional ``N`` in tier ``n`` is ``N * r_n - d_n`` with ``r_n = 1 / (2 *
max_leverage_n)`` and ``d_0 = 0``, ``d_n = d_n-1 + lower_bound_n * (r_n - r_n-1)``: continuous in ``N``, and (the
rates rising with the tiers) equal to ``max_n (N * r_n - d_n)``, the form the perp kernel evaluates
(:mod:`genetic_sizer.backtest.kernels.perp`).
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

from genetic_sizer.errors import DataError

__all__ = ["META_SUFFIX", "check_tiers", "describe_tiers", "load_meta", "meta_path_for", "save_meta", "tiers_of"]

META_SUFFIX = ".meta.json"
"""``genetic-sizer data fetch --out NAME.parquet`` saves the exchange's ``meta`` answer as ``NAME.meta.json``."""

FLAT_TABLES_BELOW = 50
"""A ``marginTableId`` below this is a single tier at that leverage (Hyperliquid lists only the tiered tables)."""


def meta_path_for(path: str | Path) -> Path:
    """Where ``genetic-sizer data fetch`` saves the exchange's ``meta`` for the price file ``path``."""
    return Path(path).with_suffix(META_SUFFIX)


def save_meta(document: dict, path: str | Path) -> Path:
    """Write the ``meta`` answer ``document`` (universe, marginTables) as JSON at ``path``."""
    from genetic_sizer.storage.files import write_text

    return write_text(path, json.dumps(document, indent=1, sort_keys=True) + "\n", "meta file")


def load_meta(path: str | Path, coins, *, source: str | None = None) -> dict[str, tuple[tuple[float, float], ...]]:
    """The margin tiers of ``coins`` from the saved ``meta`` file ``path`` (see :func:`tiers_of`)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read the exchange's meta ({type(exc).__name__}: {exc})") from None
    return tiers_of(document, coins, source=source or str(path))


def _number(value, where: str, source: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = math.nan
    if isinstance(value, bool) or not math.isfinite(out):
        raise DataError(f"{source}: {where} is not a number: {value!r}")
    return out


def tiers_of(document, coins, *, source: str = "meta") -> dict[str, tuple[tuple[float, float], ...]]:
    """Each of ``coins``' margin tiers, ``((lower_bound, max_leverage), ...)``, from a ``meta`` answer.

    A tier's leverage is capped at the coin's ``maxLeverage``. A coin the universe does not list, a table id that is
    neither listed nor below 50, or malformed tiers are a :class:`DataError` naming the file and the field.
    """
    if not isinstance(document, dict) or not isinstance(document.get("universe"), list):
        raise DataError(f"{source}: not a Hyperliquid meta answer (no 'universe' list)")
    tables = {}
    for k, entry in enumerate(document.get("marginTables") or []):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict)):
            raise DataError(f"{source}: marginTables[{k}] is not [id, {{description, marginTiers}}]: {entry!r}")
        tables[int(_number(entry[0], f"marginTables[{k}][0]", source))] = (k, entry[1].get("marginTiers"))
    universe = {a.get("name"): a for a in document["universe"] if isinstance(a, dict)}
    missing = [c for c in coins if c not in universe]
    if missing:
        raise DataError(f"{source}: the exchange's universe does not list {missing}")
    out = {}
    for coin in coins:
        asset = universe[coin]
        top = _number(asset.get("maxLeverage"), f"{coin}.maxLeverage", source)
        table_id = asset.get("marginTableId")
        if table_id is None:
            raw = [{"lowerBound": 0, "maxLeverage": top}]
        else:
            tid = int(_number(table_id, f"{coin}.marginTableId", source))
            if tid in tables:
                k, raw = tables[tid]
                if not isinstance(raw, list) or not raw:
                    raise DataError(f"{source}: marginTables[{k}] (id {tid}) has no marginTiers")
            elif tid < FLAT_TABLES_BELOW:
                raw = [{"lowerBound": 0, "maxLeverage": tid}]
            else:
                raise DataError(f"{source}: {coin}.marginTableId {tid} is not among the marginTables")
        tiers = []
        for j, tier in enumerate(raw):
            where = f"{coin}'s margin tier {j}"
            if not isinstance(tier, dict):
                raise DataError(f"{source}: {where} is not {{lowerBound, maxLeverage}}: {tier!r}")
            lev = _number(tier.get("maxLeverage"), f"{where}.maxLeverage", source)
            tiers.append((_number(tier.get("lowerBound"), f"{where}.lowerBound", source), min(lev, top)))
        out[coin] = check_tiers(coin, tiers, source)
    return out


def check_tiers(coin: str, tiers, source: str) -> tuple[tuple[float, float], ...]:
    """``tiers`` as a tuple of ``(lower_bound, max_leverage)`` float pairs, checked: the first bound 0, the bounds
    rising, every leverage >= 1 and none above the one before; else a :class:`DataError` naming the coin."""
    out = tuple((float(b), float(lev)) for b, lev in tiers)
    if not out or out[0][0] != 0.0:
        raise DataError(f"{source}: {coin}'s margin tiers must start at a notional of 0, got {list(out)}")
    for (b0, l0), (b1, l1) in itertools.pairwise(out):
        if not b1 > b0 or l1 > l0:
            raise DataError(
                f"{source}: {coin}'s margin tiers must rise in notional and fall in leverage, got {list(out)}"
            )
    if any(not (math.isfinite(lev) and lev >= 1.0) for _, lev in out):
        raise DataError(f"{source}: {coin}'s margin tiers need leverages >= 1, got {list(out)}")
    return out


def describe_tiers(tiers: dict) -> str:
    """The tiers for people: ``BTC 40x, 20x from 150M; ETH 25x``."""

    def amount(x: float) -> str:
        for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if x >= div:
                return f"{x / div:g}{unit}"
        return f"{x:g}"

    parts = []
    for coin, ts in tiers.items():
        parts.append(f"{coin} {ts[0][1]:g}x" + "".join(f", {lev:g}x from {amount(b)}" for b, lev in ts[1:]))
    return "; ".join(parts)

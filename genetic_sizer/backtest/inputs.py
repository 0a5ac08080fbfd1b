"""The inputs of a simulation, checked once: the prices, the costs, the perp account's leverage, maximum leverage
and funding rates, and :class:`Inputs`, everything :func:`genetic_sizer.backtest.simulate.backtest` and
:func:`genetic_sizer.backtest.simulate.score` hand to an engine (see :func:`genetic_sizer.backtest.simulate.simulate`
for the arguments)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genetic_sizer import vocab as V
from genetic_sizer.backtest.policy import policy_rows
from genetic_sizer.backtest.schedule import (
    check_population,
    rebalance_masks,
    validate_segment_starts,
    validate_thresholds,
)
from genetic_sizer.data.prices import Prices
from genetic_sizer.errors import ConfigError, DataError

__all__ = [
    "Account",
    "Inputs",
    "as_prices",
    "check_account",
    "check_costs",
    "check_leverage",
    "check_spot",
    "funding_args",
    "funding_rates",
    "margin_tiers",
    "population",
    "prepare",
    "range_args",
    "resolve_max_leverage",
    "starts_of",
]


def as_prices(close) -> Prices:
    """``close`` as :class:`Prices` (a DataFrame is checked by :meth:`Prices.from_frame`)."""
    if isinstance(close, Prices):
        return close
    if isinstance(close, pd.DataFrame):
        return Prices.from_frame(close, source="DataFrame", leading_gaps="error")
    raise DataError(f"close must be a Prices or a pandas DataFrame, got {type(close).__name__}")


def check_costs(fees, slippage, init_cash) -> tuple[float, float, float]:
    """``fees`` and ``slippage`` in [0, 1) and a positive finite ``init_cash``, as floats; else a ConfigError."""
    out = []
    for name, v, lo, hi in (("fees", fees, 0.0, 1.0), ("slippage", slippage, 0.0, 1.0)):
        if not isinstance(v, (int, float, np.floating, np.integer)) or not (lo <= float(v) < hi):
            raise ConfigError(f"{name} must be a number in [{lo}, {hi}), got {v!r}")
        out.append(float(v))
    if not isinstance(init_cash, (int, float, np.floating, np.integer)) or not (
        math.isfinite(init_cash) and init_cash > 0
    ):
        raise ConfigError(f"init_cash must be a positive finite number, got {init_cash!r}")
    out.append(float(init_cash))
    return out[0], out[1], out[2]


def resolve_max_leverage(max_leverage, symbols) -> np.ndarray:
    """Each asset's maximum leverage as an array (``inf``: no maintenance margin).

    ``max_leverage`` is None (none for every asset), one number, a sequence of one per asset, or a mapping
    ``{SYMBOL: x, default: y}``; symbols the mapping names that are not among ``symbols`` are ignored (one table
    can serve several data sets), and an asset it leaves out takes ``default`` (without one, it is an error).
    Every value must be a finite number >= 1. Errors are :class:`ConfigError` naming ``max_leverage``.
    """
    n = len(symbols)
    if max_leverage is None:
        return np.full(n, np.inf)
    if isinstance(max_leverage, dict):
        missing = [s for s in symbols if s not in max_leverage and "default" not in max_leverage]
        if missing:
            raise ConfigError(f"max_leverage has no value for {missing} and no default; give {{SYMBOL: x, default: y}}")
        values = [max_leverage.get(s, max_leverage.get("default")) for s in symbols]
        names = [s if s in max_leverage else "default" for s in symbols]
    elif isinstance(max_leverage, (int, float, np.integer, np.floating)) and not isinstance(max_leverage, bool):
        values, names = [max_leverage] * n, [None] * n
    else:
        values = list(np.asarray(max_leverage, dtype=object).ravel()) if np.ndim(max_leverage) == 1 else None
        if values is None or len(values) != n:
            raise ConfigError(
                f"max_leverage must be None, a number, one number per asset ({n}) or a {{SYMBOL: x, default: y}} "
                f"mapping, got {max_leverage!r}"
            )
        names = list(symbols)
    out = np.empty(n)
    for k, (v, name) in enumerate(zip(values, names, strict=True)):
        key = "max_leverage" if name is None else f"max_leverage[{name!r}]"
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        if not ok or not (math.isfinite(float(v)) and float(v) >= 1.0):
            raise ConfigError(f"{key} must be a finite number >= 1, got {v!r}")
        out[k] = float(v)
    return out


def margin_tiers(max_leverage, prices: Prices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each asset's maximum leverage (n_assets,) and margin tiers as the perp kernels take them: ``mm_rate`` and
    ``mm_deduct`` (n_assets, n_tiers), the maintenance margin of a notional ``N`` being ``max_n (N * mm_rate[i, n] -
    mm_deduct[i, n])`` (:mod:`genetic_sizer.data.margin`).

    ``max_leverage`` None takes the tiers the prices carry (:attr:`Prices.margin`, the exchange's ``meta`` saved with
    Hyperliquid data), or else none (no maintenance margin: liquidated only at zero equity, which runs refuse); any
    other value is resolved by :func:`resolve_max_leverage`, one tier per asset. An asset with fewer tiers than
    another repeats its last one.
    """
    if max_leverage is None and prices.margin is not None:
        tiers = [prices.margin[s] for s in prices.symbols]
    else:
        tiers = [((0.0, float(c)),) for c in resolve_max_leverage(max_leverage, prices.symbols)]
    n_tiers = max(len(t) for t in tiers)
    rate = np.zeros((len(tiers), n_tiers))
    deduct = np.zeros((len(tiers), n_tiers))
    for i, ts in enumerate(tiers):
        for j in range(n_tiers):
            bound, lev = ts[min(j, len(ts) - 1)]
            rate[i, j] = 0.5 / lev if math.isfinite(lev) else 0.0
            if 0 < j < len(ts):
                deduct[i, j] = deduct[i, j - 1] + bound * (rate[i, j] - rate[i, j - 1])
            elif j > 0:
                deduct[i, j] = deduct[i, j - 1]
    return np.array([ts[0][1] for ts in tiers], dtype=np.float64), rate, deduct


def check_leverage(leverage, n_genomes: int, max_lev: np.ndarray, symbols, n_segments: int = 1) -> np.ndarray:
    """The gross leverage of every genome in every segment, float64 (n_genomes, n_segments).

    ``leverage`` is one number (every genome), one per genome (n_genomes,) (every segment of it), or, with a
    schedule, one per genome and segment (n_genomes, n_segments) (a walk-forward's folds, each with its evolved
    leverage). Every entry must be a positive finite number at most every asset's maximum leverage (``max_lev``, see
    :func:`resolve_max_leverage`); anything else is a ConfigError naming the entry.
    """
    arr = np.asarray(leverage, dtype=object)
    if arr.ndim == 0:
        arr = np.full((n_genomes, n_segments), leverage, dtype=object)
    elif arr.ndim == 1 and arr.shape[0] == n_genomes:
        arr = np.repeat(arr[:, None], n_segments, axis=1)
    elif arr.shape != (n_genomes, n_segments):
        per_segment = f" or one per genome and segment ({n_genomes}, {n_segments})" if n_segments > 1 else ""
        raise ConfigError(
            f"leverage must be a number or one per genome ({n_genomes}){per_segment}, got shape {arr.shape}"
        )
    given = np.ndim(leverage)

    def where(g, s):
        return "leverage" + "".join(f"[{j}]" for j in (g, s)[:given])

    out = np.empty((n_genomes, n_segments))
    for (g, s), v in np.ndenumerate(arr):
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
        if not ok or not (math.isfinite(float(v)) and float(v) > 0):
            raise ConfigError(f"{where(g, s)} must be a positive finite number, got {v!r}")
        out[g, s] = float(v)
    cap = float(max_lev.min())
    if out.max() > cap:
        g, s = (int(j) for j in np.argwhere(out > cap)[0])
        k = int(np.argmin(max_lev))
        raise ConfigError(
            f"{where(g, s)} {out[g, s]:g} is above the max_leverage of {symbols[k]!r} ({max_lev[k]:g}): the exchange "
            "would refuse such positions"
        )
    return out


def funding_rates(funding, prices: Prices) -> np.ndarray | None:
    """The funding rates a perp simulation charges, (n_bars, n_assets), or None for none (see
    :func:`genetic_sizer.backtest.simulate.simulate`)."""
    if funding is None:  # NaN: a bar the funding file has no rate for (runs refuse coins with none at all)
        carried = prices.funding
        return np.nan_to_num(carried, nan=0.0) if carried is not None and np.isnan(carried).any() else carried
    if funding is False:
        return None
    shape = (prices.n_bars, prices.n_assets)
    if isinstance(funding, pd.DataFrame):
        frame = funding.copy()
        frame.columns = [str(c) for c in frame.columns]
        try:
            index = pd.DatetimeIndex(frame.index)
        except (TypeError, ValueError):
            raise DataError("funding: a DataFrame of rates needs the prices' time index") from None
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        extra = index.difference(prices.index)
        if len(extra):
            raise DataError(
                f"funding: row {extra[0].isoformat()} is not a bar of the prices; rows are the prices' bars, each "
                "holding the rates paid since the previous bar "
                "(genetic_sizer.data.funding.align_funding sums raw rates so)"
            )
        if index.has_duplicates:
            raise DataError(f"funding: timestamp {index[index.duplicated()][0].isoformat()} appears twice")
        frame.index = index
        arr = frame.reindex(index=prices.index, columns=list(prices.symbols)).to_numpy(dtype=np.float64)
    else:
        arr = np.array(funding, dtype=np.float64)
        if arr.shape != shape:
            raise DataError(f"funding must have shape (n_bars, n_assets) = {shape}, got {arr.shape}")
    if np.isinf(arr).any():
        t, k = np.argwhere(np.isinf(arr))[0]
        raise DataError(f"funding rate of {prices.symbols[k]!r} at {prices.index[t].isoformat()} is {arr[t, k]!r}")
    return np.nan_to_num(arr, nan=0.0)  # missing means no funding paid


@dataclass(frozen=True)
class Inputs:
    """A population's simulation inputs, validated once by :func:`prepare` for
    :func:`genetic_sizer.backtest.simulate.backtest` and :func:`genetic_sizer.backtest.simulate.score`: ``w``
    (n_genomes, n_segments, n_assets), ``starts`` (n_segments,), the calendar ``masks`` (n_masks, n_bars) with
    ``mask_of`` (n_genomes,), drift bands ``thresholds`` (n_genomes, n_segments, ``inf``: none; ``drift`` whether any
    was given), the costs, and for perps the leverage (n_genomes, n_segments), the maintenance margin rate of each
    asset's first tier (``mm_rate``) and its margin tiers (``tier_rate``, ``tier_deduct``: :func:`margin_tiers`), and
    the funding rates (None: none); ``policy`` the kernels' rebalancing policy rows (n_genomes, POLICY_WIDTH) or None
    (:func:`genetic_sizer.backtest.policy.policy_rows`)."""

    prices: Prices
    w: np.ndarray
    starts: np.ndarray
    masks: np.ndarray
    mask_of: np.ndarray
    thresholds: np.ndarray
    drift: bool
    fees: float
    slippage: float
    init_cash: float
    market: str
    lev: np.ndarray | None = None
    per_segment_leverage: bool = False
    mm_rate: np.ndarray | None = None
    tier_rate: np.ndarray | None = None
    tier_deduct: np.ndarray | None = None
    rates: np.ndarray | None = None
    policy: np.ndarray | None = None


def prepare(
    close, weights, segment_starts, rebalance, threshold, fees, slippage, init_cash, market, leverage, funding,
    max_leverage, policy=None, periods_per_year=None,
) -> Inputs:  # fmt: skip
    """Validate the arguments :func:`genetic_sizer.backtest.simulate.backtest` and
    :func:`genetic_sizer.backtest.simulate.score` share (see :func:`genetic_sizer.backtest.simulate.simulate`); the
    engine is checked by each of them afterwards. ``policy`` (a :class:`genetic_sizer.backtest.policy.RebalancePolicy`
    or None) measures volatility with ``periods_per_year`` (default the prices')."""
    prices = as_prices(close)
    w, starts = population(prices, weights, segment_starts)
    fees, slippage, init_cash = check_costs(fees, slippage, init_cash)
    masks, mask_of = rebalance_masks(prices.calendar_index, rebalance, w.shape[0], starts_of(segment_starts, starts))
    thresholds = validate_thresholds(threshold, w.shape[0], starts.size)
    acct = check_account(prices, market, leverage, funding, max_leverage)
    ppy = prices.periods_per_year if periods_per_year is None else periods_per_year
    rows = acct.policy_rows(policy, w.shape[0], ppy)
    lev = acct.leverage(leverage, w.shape[0], prices.symbols, starts.size)
    costs = (fees, slippage, init_cash)
    drift, per_segment = threshold is not None, np.ndim(leverage) == 2
    return acct.inputs(prices, w, starts, masks, mask_of, thresholds, drift, costs, lev, per_segment, rows)


def population(prices: Prices, weights, segment_starts) -> tuple[np.ndarray, np.ndarray]:
    """A population's weights (n_genomes, n_segments, n_assets) and segment starts (n_segments,), checked (a
    GenomeError naming the genome, asset and value: :func:`genetic_sizer.backtest.schedule.check_population`, after
    :func:`genetic_sizer.backtest.schedule.validate_segment_starts` for a schedule)."""
    if segment_starts is None:
        starts = np.zeros(1, dtype=np.int64)
    else:
        starts = validate_segment_starts(segment_starts, prices.n_bars)
    return check_population(weights, starts_of(segment_starts, starts), prices.symbols), starts


def starts_of(segment_starts, starts: np.ndarray) -> np.ndarray | None:
    """What :func:`genetic_sizer.backtest.schedule.rebalance_masks` takes: the checked ``starts`` of a schedule, None
    for static weights (``segment_starts`` None)."""
    return None if segment_starts is None else starts


@dataclass(frozen=True)
class Account:
    """The account a population is simulated in, checked once (:func:`check_account`): the market, and for perps
    each asset's maximum leverage (``max_lev``), its margin tiers (``tier_rate``, ``tier_deduct``, ``mm_rate`` the first
    tier's rate: :func:`margin_tiers`) and the funding rates (``rates``, None: none)."""

    market: str
    max_lev: np.ndarray | None = None
    tier_rate: np.ndarray | None = None
    tier_deduct: np.ndarray | None = None
    mm_rate: np.ndarray | None = None
    rates: np.ndarray | None = None

    @property
    def max_gross(self) -> float:
        """The largest gross leverage: 1 for spot, the smallest ``max_leverage`` of the assets for perps."""
        return 1.0 if self.max_lev is None else float(self.max_lev.min())

    def policy_rows(self, policy, n_genomes: int, periods_per_year: float) -> np.ndarray | None:
        """The kernels' policy rows of ``policy`` for ``n_genomes`` genomes in this account
        (:func:`genetic_sizer.backtest.policy.policy_rows`)."""
        return policy_rows(policy, n_genomes, periods_per_year, self.max_gross)

    def leverage(self, leverage, n_genomes: int, symbols, n_segments: int) -> np.ndarray | None:
        """Perps: the checked leverage (n_genomes, n_segments) (:func:`check_leverage`); spot: None."""
        return None if self.market != "perp" else check_leverage(leverage, n_genomes, self.max_lev, symbols, n_segments)

    def inputs(
        self, prices, w, starts, masks, mask_of, thresholds, drift, costs, lev, per_segment_leverage, policy
    ) -> Inputs:
        """The :class:`Inputs` of checked parts."""
        fees, slippage, init_cash = costs
        common = {"prices": prices, "w": w, "starts": starts, "masks": masks, "mask_of": mask_of}
        common.update(thresholds=thresholds, drift=drift, fees=fees, slippage=slippage, init_cash=init_cash)
        if self.market == "spot":
            return Inputs(**common, market="spot", policy=policy)
        margin = {"mm_rate": self.mm_rate, "tier_rate": self.tier_rate, "tier_deduct": self.tier_deduct}
        return Inputs(
            **common, market="perp", lev=lev, per_segment_leverage=per_segment_leverage, **margin, rates=self.rates,
            policy=policy,
        )  # fmt: skip


def check_account(prices: Prices, market, leverage, funding, max_leverage) -> Account:
    """The :class:`Account` of ``market`` on ``prices``: for perps the margin tiers of ``max_leverage``
    (:func:`margin_tiers`) and the ``funding`` rates (:func:`funding_rates`); for spot a ConfigError when a perp
    setting is given (``leverage`` other than 1, ``max_leverage``, ``funding``) or ``market`` is unknown."""
    if market == "perp":
        max_lev, tier_rate, tier_deduct = margin_tiers(max_leverage, prices)
        rates = funding_rates(funding, prices)
        mm_rate = np.ascontiguousarray(tier_rate[:, 0])
        return Account("perp", max_lev, tier_rate, tier_deduct, mm_rate, rates)
    if market != "spot":
        raise ConfigError(f"market must be one of {list(V.MARKETS)}, got {market!r}")
    check_spot(leverage, max_leverage, funding)
    return Account("spot")


def check_spot(leverage, max_leverage, funding) -> None:
    """A ConfigError naming the perp setting given to a spot account (``leverage`` other than 1, ``max_leverage``,
    ``funding``)."""
    if type(leverage) in (int, float):  # the usual case, without an array
        levered = leverage != 1.0
    else:
        levered = bool(np.any(np.asarray(leverage) != 1.0))
    spot_only = {"leverage": levered, "max_leverage": max_leverage is not None}
    spot_only["funding"] = funding is not None and funding is not False
    if any(spot_only.values()):
        name = next(k for k, v in spot_only.items() if v)
        raise ConfigError(f"{name} is a setting of market='perp'; the spot account has none")


def funding_args(inp: Inputs) -> tuple[np.ndarray, bool]:
    """The perp kernels' ``funding`` and ``has_funding`` arguments."""
    if inp.rates is None:
        return np.zeros((1, inp.prices.n_assets)), False
    return np.ascontiguousarray(inp.rates), True


def range_args(prices: Prices) -> tuple[np.ndarray, np.ndarray, bool]:
    """The perp kernels' ``low``, ``high`` and ``has_range`` arguments: the bars' ranges when the prices carry them
    (the liquidation test within the bar), else placeholders (the test at the closes)."""
    if prices.low is None:
        placeholder = np.zeros((1, prices.n_assets))
        return placeholder, placeholder, False
    return prices.low, prices.high, True

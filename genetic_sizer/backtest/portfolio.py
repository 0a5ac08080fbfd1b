"""One portfolio backtested and measured (``genetic-sizer backtest``): the weights (equal weight unless given), the
account's default fees, the metrics, and where it was liquidated or wiped out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genetic_sizer import vocab as V
from genetic_sizer.backtest.kernels import threads_for
from genetic_sizer.backtest.metrics import account_metrics, compute_metrics
from genetic_sizer.backtest.simulate import Backtest, backtest
from genetic_sizer.data.prices import Prices

__all__ = ["PortfolioRun", "backtest_portfolio"]


@dataclass(frozen=True)
class PortfolioRun:
    """A backtested portfolio: ``label`` (``equal weight`` or ``given weights``), the ``fees`` it paid, the
    :class:`~genetic_sizer.backtest.simulate.Backtest`, its metrics (one value each), and the bar it was liquidated
    or wiped out at (None when it was not)."""

    label: str
    fees: float
    result: Backtest
    metrics: dict[str, float]
    liquidated_bar: int | None
    wiped_out_bar: int | None


def backtest_portfolio(
    prices: Prices,
    weights=None,
    *,
    rebalance="M",
    threshold=None,
    fees=None,
    slippage: float = 0.0,
    init_cash: float = 10_000.0,
    engine: str = "fast",
    market: str = "spot",
    leverage: float = 1.0,
    max_leverage=None,
) -> PortfolioRun:
    """Backtest one portfolio: ``weights`` (equal weight when None), fees the market's default when None."""
    if weights is None:
        weights = np.full(prices.n_assets, 1.0 / prices.n_assets)
        label = "equal weight"
    else:
        weights = np.array(weights, dtype=float)
        label = "given weights"
    fees = fees if fees is not None else V.DEFAULT_FEES[market]
    with threads_for(np.size(weights) * prices.n_bars):  # one genome: one thread below the serial threshold
        bt = backtest(
            prices,
            weights,
            rebalance=rebalance,
            threshold=threshold,
            fees=fees,
            slippage=slippage,
            init_cash=init_cash,
            engine=engine,
            market=market,
            leverage=leverage,
            max_leverage=max_leverage,
        )
    m = compute_metrics(bt.value, init_cash=init_cash, periods_per_year=prices.periods_per_year, traded=bt.traded)
    m.update(account_metrics(bt))
    liquidated = int(bt.liquidated[0]) if m.get("liquidated", [0.0])[0] else None
    wiped = int(np.argmax(bt.value[:, 0] <= 0)) if m["wiped_out"][0] else None
    return PortfolioRun(label, fees, bt, {k: float(v[0]) for k, v in m.items()}, liquidated, wiped)

"""``genetic-sizer frontier --config``: the constrained frontier of simulated portfolios, in sample and held out.

The run configuration gives the data (``data``), how a portfolio trades (``portfolio.rebalance``, ``fees``,
``slippage``, ``init_cash``; spot) and the held-out window (``evolution.holdout``); the command's flags give the
constraints (``--cardinality``, ``--exact-cardinality``, ``--min-weight``, ``--max-weight``). A genome's return and
risk are those of its simulated portfolio on the training window (the fast kernel of
:func:`genetic_sizer.backtest.simulate.simulate`): the annualized mean of its per-bar simple returns and their
annualized variance (``ddof=1``; ``return`` and ``variance`` in ``frontier.csv``), or with ``--risk cvar`` / ``cdar``
skfolio's CVaR (95%, of the per-bar returns) or CDaR (95%, of the compounded drawdowns) as the risk, the second column
then named ``cvar`` / ``cdar``. The traced portfolios are then
simulated on the held-out window (from the last training close, as ``evolve`` measures a champion) and their
out-of-sample return and variance go into ``frontier.json`` (``out_of_sample``) and the plot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.frontier import trace_frontier
from genetic_sizer.runs.frontier import FrontierRun, _targets, write_frontier
from genetic_sizer.validation.holdout import split_holdout, traded_window, window_record

__all__ = ["backtest_evaluator", "frontier_from_config"]


def backtest_evaluator(prices, portfolio, risk: str = "variance"):
    """``evaluate(W) -> (annualized mean return, risk)`` of each genome's simulated portfolio: the annualized variance,
    or the per-bar CVaR / the CDaR of :func:`genetic_sizer.allocators.risk.population_risk`."""
    from genetic_sizer.allocators.risk import population_risk
    from genetic_sizer.backtest.simulate import simulate

    ppy = float(prices.periods_per_year)

    def evaluate(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = simulate(
            prices,
            np.asarray(W, dtype=np.float64),
            rebalance=portfolio.rebalance,
            fees=portfolio.fees,
            slippage=portfolio.slippage,
            init_cash=portfolio.init_cash,
        )
        r = values[1:] / values[:-1] - 1.0
        scale = ppy if risk == "variance" else 1.0
        return r.mean(axis=0) * ppy, population_risk(r, risk) * scale

    return evaluate


def frontier_from_config(
    config_path,
    out,
    *,
    k: int | None,
    exact: bool = False,
    min_weight: float = 0.0,
    max_weight: float = 1.0,
    points: int = 50,
    seed: int = 0,
    method: str = "weighted",
    budget: int | None = None,
    risk: str = "variance",
) -> FrontierRun:
    """Trace the frontier of the configuration's training window and write ``out`` (see the module docstring);
    ``risk``: ``variance``, ``cvar`` or ``cdar`` (:mod:`genetic_sizer.allocators.risk`)."""
    from genetic_sizer.allocators.risk import RISKS
    from genetic_sizer.config import load_config
    from genetic_sizer.data.loaders import load_from_config

    if risk not in RISKS:
        raise ConfigError(f"--risk must be one of {list(RISKS)}, got {risk!r}")
    _targets(out)
    config = load_config(config_path)
    pf = config.portfolio
    if pf.market != "spot" or pf.direction != "longonly":
        raise ConfigError(
            f"frontier --config traces long-only spot portfolios; the config has portfolio.market {pf.market!r}, "
            f"portfolio.direction {pf.direction!r}"
        )
    prices = load_from_config(config.data)
    train, held = split_holdout(prices, config.evolution.holdout)
    result = trace_frontier(
        train.symbols,
        backtest_evaluator(train, pf, risk),
        k=k,
        exact=exact,
        min_weight=min_weight,
        max_weight=max_weight,
        points=points,
        seed=seed,
        method=method,
        budget=budget,
        population=40,
    )
    label = {"variance": "annualized variance", "cvar": "CVaR 95% of per-bar returns", "cdar": "CDaR 95%"}[risk]
    extra = {"config": str(config_path), "train": window_record(train), "risk": label}
    curves = []
    if held is not None:
        window = traded_window(train, held, config.walkforward.execution_delay)
        oos_ret, oos_var = backtest_evaluator(window, pf, risk)(result.weights)
        extra["out_of_sample"] = {
            "window": window_record(window),
            "return": [float(x) for x in oos_ret],
            risk: [float(x) for x in oos_var],
        }
        curves.append(("held out (same portfolios)", oos_var, oos_ret, "points"))
    errors, files = write_frontier(out, result, extra=extra, extra_curves=curves, risk_label=label, risk_column=risk)
    return FrontierRun(result, errors, Path(out), files)

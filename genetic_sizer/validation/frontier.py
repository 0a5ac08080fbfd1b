"""``genetic-sizer frontier --config``: the constrained frontier of simulated portfolios, in sample and held out.

The run configuration gives the data (``data``), how a portfolio trades (``portfolio.rebalance``, ``fees``,
``slippage``, ``init_cash``; spot, long-only) and the held-out window (``evolution.holdout``); the constraints come
from its ``portfolio`` section (``max_assets``, ``min_assets`` = ``max_assets`` for exactly K, ``min_position`` the
least held weight, ``max_weight``), each replaced by its flag when given (``--cardinality``, ``--exact-cardinality``,
``--min-weight``, ``--max-weight``); what the frontier cannot apply is refused (:func:`config_constraints`). A
genome's return and risk are those of its simulated portfolio on the training window (the fast kernel of
:func:`genetic_sizer.backtest.simulate.simulate`): the annualized mean of its per-bar simple returns and their
annualized variance (``ddof=1``; ``return`` and ``variance`` in ``frontier.csv``), or with ``--risk cvar`` / ``cdar``
skfolio's CVaR (95%, of the per-bar returns) or CDaR (95%, of the compounded drawdowns) as the risk, the second column
then named ``cvar`` / ``cdar``. The traced portfolios are then
simulated on the held-out window (from the last training close, as ``evolve`` measures a champion) and their
out-of-sample return and variance go into ``frontier.json`` (``out_of_sample``) and the plot.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.frontier import FrontierOptions, trace_frontier
from genetic_sizer.runs.frontier import FrontierRun, _targets, write_frontier
from genetic_sizer.validation.holdout import split_holdout, traded_window, window_record

__all__ = ["CONSTRAINT_FIELDS", "backtest_evaluator", "config_constraints", "frontier_from_config"]


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


CONSTRAINT_FIELDS = ("k", "exact", "min_weight", "max_weight")
"""The fields of :class:`FrontierOptions` a configuration's ``portfolio`` section can give."""


def config_constraints(portfolio, options: FrontierOptions, from_config=CONSTRAINT_FIELDS) -> FrontierOptions:
    """``options`` with the constraint fields named in ``from_config`` (the flags not given) read from ``portfolio``
    (a :class:`~genetic_sizer.config.PortfolioConfig`): ``k`` from ``max_assets`` (none: no limit), ``exact`` when
    ``min_assets`` equals ``max_assets``, ``min_weight`` (the least held weight) from ``min_position``, ``max_weight``
    from ``max_weight``. Refused with a :class:`ConfigError` naming the key: a long/short or perp portfolio, a floor
    ``min_weight`` on every asset, per-asset bounds, groups, ``min_effective_assets``, and a ``min_assets`` between
    1 and ``max_assets`` (the frontier holds at most K or exactly K)."""
    pf = portfolio
    if pf.market != "spot" or pf.direction != "longonly":
        raise ConfigError(
            f"frontier --config traces long-only spot portfolios; the config has portfolio.market {pf.market!r}, "
            f"portfolio.direction {pf.direction!r} (long/short and perp frontiers are not supported)"
        )
    for key in ("groups", "min_effective_assets"):
        if getattr(pf, key, None) is not None:
            raise ConfigError(
                f"frontier --config does not apply portfolio.{key} ({getattr(pf, key)!r}): remove it for the frontier"
            )
    if isinstance(pf.min_weight, dict) or pf.min_weight != 0.0:
        raise ConfigError(
            f"frontier --config: portfolio.min_weight {pf.min_weight!r} is a floor on every asset, which cardinality "
            "excludes; the least weight of a held asset is portfolio.min_position (or --min-weight)"
        )
    given = {}
    if "k" in from_config:
        given["k"] = pf.max_assets
    k = given.get("k", options.k)
    if "exact" in from_config:
        exact = pf.min_assets is not None and pf.min_assets > 1 and pf.min_assets == pf.max_assets
        if pf.min_assets is not None and pf.min_assets > 1 and not exact:
            raise ConfigError(
                f"frontier --config traces at most K or exactly K assets; the config has portfolio.min_assets "
                f"{pf.min_assets!r} with portfolio.max_assets {pf.max_assets!r}: set them equal (exactly K), drop "
                "min_assets (at most K) or pass --exact-cardinality"
            )
        given["exact"] = exact
    if "min_weight" in from_config:
        given["min_weight"] = float(pf.min_position)
    if "max_weight" in from_config:
        if isinstance(pf.max_weight, dict):
            raise ConfigError(
                f"frontier --config takes one max_weight for every asset; portfolio.max_weight is per asset "
                f"({pf.max_weight!r}): pass --max-weight"
            )
        given["max_weight"] = float(pf.max_weight)
    if given.get("exact", options.exact) and k is None:
        raise ConfigError("exactly K assets needs a K: portfolio.max_assets or --cardinality")
    return replace(options, **given)


def frontier_from_config(
    config_path,
    out,
    options: FrontierOptions | None = None,
    *,
    risk: str = "variance",
    from_config=CONSTRAINT_FIELDS,
) -> FrontierRun:
    """Trace the frontier of the configuration's training window and write ``out`` (see the module docstring);
    ``options``: the flags, whose constraint fields named in ``from_config`` are read from the configuration instead
    (:func:`config_constraints`); ``risk``: ``variance``, ``cvar`` or ``cdar`` (:mod:`genetic_sizer.allocators.risk`).
    """
    from genetic_sizer.allocators.risk import RISKS
    from genetic_sizer.config import load_config
    from genetic_sizer.runs.strategies import load_data

    if risk not in RISKS:
        raise ConfigError(f"--risk must be one of {list(RISKS)}, got {risk!r}")
    _targets(out)
    config = load_config(config_path)
    pf = config.portfolio
    options = config_constraints(pf, options or FrontierOptions(), from_config)
    prices = load_data(config.data)
    train, held = split_holdout(prices, config.evolution.holdout)
    result = trace_frontier(train.symbols, backtest_evaluator(train, pf, risk), **options.kwargs(), population=40)
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

"""Risk measures of a population's per-bar returns from skfolio (its home package): the risks a backtest-based frontier
can trade return against (``genetic-sizer frontier --config --risk``).

* ``variance``: the sample variance of the per-bar simple returns (``ddof=1``), annualized by the caller;
* ``cvar``: skfolio's ``measures.cvar`` at ``beta`` (0.95): the mean loss of the worst ``1 - beta`` of the bars
  (per bar);
* ``cdar``: skfolio's ``measures.cdar`` at ``beta`` of the compounded drawdowns (``measures.get_drawdowns``,
  ``compounded=True``): the mean of the worst ``1 - beta`` drawdowns of the path, as a fraction of the running peak.
"""

from __future__ import annotations

import numpy as np

from genetic_sizer.errors import ConfigError

__all__ = ["RISKS", "population_risk"]

RISKS = ("variance", "cvar", "cdar")


def population_risk(returns, name: str = "variance", beta: float = 0.95) -> np.ndarray:
    """The risk ``name`` of each column of ``returns`` (bars, genomes)."""
    r = np.asarray(returns, dtype=np.float64)
    if name not in RISKS:
        raise ConfigError(f"--risk must be one of {list(RISKS)}, got {name!r}")
    if not 0.0 < beta < 1.0:
        raise ConfigError(f"the confidence level beta must be in (0, 1), got {beta!r}")
    if name == "variance":
        return r.var(axis=0, ddof=1)
    from skfolio import measures

    if name == "cvar":
        return np.array([float(measures.cvar(r[:, g], beta=beta)) for g in range(r.shape[1])])
    return np.array(
        [float(measures.cdar(measures.get_drawdowns(r[:, g], compounded=True), beta=beta)) for g in range(r.shape[1])]
    )

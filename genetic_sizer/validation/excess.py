"""The deflated Sharpe ratio a user needs: of the champion's returns in excess of 1/N's, against the trials of the
search that bred it, with the raw and the effective (clustered) number of trials
(:func:`~genetic_sizer.backtest.selection.excess_deflated_sharpe`). Used by ``evolve`` (``champion.json``) and by
each walk-forward fold."""

from __future__ import annotations

import numpy as np

from genetic_sizer.backtest.stats import returns_of
from genetic_sizer.errors import ConfigError

__all__ = ["OOS_TRIALS", "TRIALS_MAX", "excess_dsr", "excess_record", "trials_pbo"]

TRIALS_MAX = 1000
"""Most trials (a uniform sample of those evaluated) whose returns are clustered."""
OOS_TRIALS = 200
"""Trials a walk-forward fold keeps (``oos_trials``, a uniform sample) for PBO on its test window."""
PBO_BLOCKS = 16


def excess_dsr(champion, benchmark, trial_returns, trials: dict, periods_per_year, seed: int) -> dict:
    """:func:`~genetic_sizer.backtest.selection.excess_deflated_sharpe` of per-bar ``champion`` returns over
    ``benchmark`` (1/N), ``trial_returns`` (n_bars, n) the sampled trials', ``trials["n"]`` the raw count; a dict
    with a ``note`` (and no ``raw``) when it cannot be computed: the champion is 1/N, fewer than 2 trials."""
    from genetic_sizer.backtest.selection import excess_deflated_sharpe

    if benchmark is None:
        return {"note": "1/N is not a feasible genome of this space: no excess over it to test"}
    if trial_returns is None or trial_returns.shape[1] < 2:
        return {"note": "fewer than 2 distinct trials to deflate against"}
    if np.allclose(champion, benchmark, rtol=0.0, atol=1e-15):
        return {"note": "the champion is 1/N (trade 1/N): no excess over it to test", "verdict": "no skill"}
    try:
        return excess_deflated_sharpe(
            champion,
            benchmark,
            trial_returns,
            n_trials=max(int(trials.get("n", 0)), trial_returns.shape[1]),
            periods_per_year=periods_per_year,
            seed=seed,
        )
    except ConfigError as exc:
        return {"note": str(exc)}


def excess_record(config, evaluator, result, champion_values, benchmark_values) -> dict:
    """:func:`excess_dsr` of an evolution's deployed champion on the window it evolved on (``evaluator``'s):
    ``champion_values`` and ``benchmark_values`` (1/N's, or None) are their value paths there; the trials are a
    uniform sample of up to :data:`TRIALS_MAX` of the genomes ``result`` evaluated, backtested on that window."""
    init = config.portfolio.init_cash
    sample = result.trial_sample
    trial_returns = None
    if sample is not None and len(sample) >= 2:
        genes = None if result.genes is None else result.trial_sample_genes[:TRIALS_MAX]
        values = evaluator.backtest(sample[:TRIALS_MAX], genes=genes).value
        trial_returns = returns_of(values, init, evaluator.rf)
    bench = None if benchmark_values is None else returns_of(benchmark_values, init, evaluator.rf)
    return excess_dsr(
        returns_of(champion_values, init, evaluator.rf),
        bench,
        trial_returns,
        result.trials,
        evaluator.prices.periods_per_year,
        config.evolution.seed,
    )


def trials_pbo(config, window, weights, genes, where: str) -> dict:
    """PBO over the cluster representatives of trials (``weights`` (n, n_assets), ``genes`` or None) on ``window``,
    a window they were not bred on, traded at the close of its first bar
    (:func:`~genetic_sizer.backtest.selection.representative_pbo`, up to 16 CSCV blocks, an even number no larger
    than its returns); ``where`` names the window in the record. ``{"pbo": None, "note"}`` when it cannot be
    computed."""
    from genetic_sizer.backtest.selection import representative_pbo
    from genetic_sizer.evolution.evaluator import Evaluator

    if weights is None or len(weights) < 2:
        return {"pbo": None, "note": "fewer than 2 distinct trials", "window": where}
    ev = Evaluator.from_config(window, config)
    g = None if genes is None else np.asarray(genes, dtype=np.float64)
    values = ev.backtest(np.asarray(weights, dtype=np.float64), genes=g).value
    r = returns_of(values, config.portfolio.init_cash, ev.rf)[1:]  # the returns after the close they are traded at
    n_blocks = min(PBO_BLOCKS, (r.shape[0] // 2) * 2)
    if n_blocks < 2:
        return {"pbo": None, "note": f"the {where} window has {r.shape[0]} returns", "window": where}
    try:
        out = representative_pbo(r, n_blocks=n_blocks, seed=config.evolution.seed)
    except ConfigError as exc:
        return {"pbo": None, "note": str(exc), "window": where}
    out["window"] = where
    return out

"""Resampled efficiency for the GA: the champions of R runs on resampled histories (``robust.ensemble: resampled``).

Each of the ``R = robust.ensemble_size`` runs evolves on a stationary-bootstrap resample (Politis and Romano 1994) of
the training window: the bars' returns (all assets of a bar together, so the cross-section is kept) are drawn in blocks
of geometric length with mean ``robust.block_length`` bars (default: the cube root of the bars, rounded up, as the
resampled fitness takes it), wrapping around the end, and compounded into prices from the window's first close; the bar
dates, the calendar and the bars per year are the window's (the calendar policies rebalance on the same dates), funding
rates and highs/lows (as ratios to the close) travel with their bars. Run ``r`` draws its resample with
``numpy.random.default_rng(SeedSequence(evolution.seed, spawn_key=(23, r)))`` and evolves with the seed that sequence's
first spawned word gives, so the whole ensemble is deterministic given the config's seed.

:func:`~genetic_sizer.evolution.robust.deploy` averages the champions (``resampled=``), each scored on the real
training window (``fitness``) beside its resampled window (``fitness_resampled``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from genetic_sizer.backtest.resample import cube_root_ceil, stationary_indices
from genetic_sizer.config import RunConfig
from genetic_sizer.data.prices import Prices
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.evolution.loop import Evolution
from genetic_sizer.evolution.robust import effective_weights

__all__ = ["resampled_champions", "resampled_prices", "stationary_bootstrap_indices"]


stationary_bootstrap_indices = stationary_indices
"""The bootstrap path of :mod:`genetic_sizer.backtest.resample` (the resampled fitness draws the same way)."""


def resampled_prices(prices: Prices, rng: np.random.Generator, mean_block: float) -> Prices:
    """A stationary-bootstrap resample of ``prices``' bar returns compounded from its first close (module
    docstring)."""
    close = prices.close
    n = close.shape[0]
    idx = stationary_bootstrap_indices(rng, n - 1, mean_block) + 1  # the bars whose returns are drawn: 1 .. n-1
    growth = close[idx] / close[idx - 1]
    new = np.empty_like(close)
    new[0] = close[0]
    new[1:] = close[0] * np.cumprod(growth, axis=0)
    src = np.concatenate(([0], idx))
    funding = None if prices.funding is None else prices.funding[src]
    fields = {k: v[src] / close[src] * new for k, v in prices.fields.items()}
    return dataclasses.replace(
        prices, close=new, funding=funding, fields=fields, source=f"{prices.source} (resampled)", _sha=[]
    )


class _NoStore:
    """The resampled runs keep nothing on disk: their champions are recorded in the deployed champion's file."""

    def write_checkpoint(self, cp) -> None:
        return None

    def write_logbook(self, rows) -> None:
        return None


def resampled_champions(config: RunConfig, prices: Prices, *, map_fn=None) -> list[dict]:
    """The champions of ``robust.ensemble_size`` runs on stationary-bootstrap resamples of ``prices`` (module
    docstring): a list of ``{"run", "seed", "weights", "genes", "fitness", "fitness_resampled"}`` (``fitness``: the
    objectives of the champion on the real ``prices``)."""
    robust = config.robust
    n = prices.n_bars
    mean_block = float(robust.block_length or cube_root_ceil(n))
    evaluator = Evaluator.from_config(prices, config)
    out = []
    for r in range(robust.ensemble_size):
        seq = np.random.SeedSequence(config.evolution.seed, spawn_key=(23, r))
        rng = np.random.default_rng(seq)
        seed = int(seq.spawn(1)[0].generate_state(1)[0])
        cfg = dataclasses.replace(config, evolution=dataclasses.replace(config.evolution, seed=seed))
        window = resampled_prices(prices, rng, mean_block)
        result = Evolution(cfg, window, map_fn).run(_NoStore())
        genes = None if result.genes is None else np.asarray(result.champion_genes, dtype=np.float64)
        row = result.champion if genes is None else np.concatenate([result.champion, genes])
        fit = evaluator(row[None, :])[0]
        weights = effective_weights(evaluator, result.champion[None, :], None if genes is None else genes[None, :])
        out.append(
            {
                "run": r,
                "seed": seed,
                "mean_block": mean_block,
                "weights": np.array(weights[0]),  # with a shrink gene: the shrunk weights it was scored with
                "genes": genes,
                "fitness": [float(x) for x in fit],
                "fitness_resampled": [float(x) for x in result.members_fitness[0]],
            }
        )
    return out

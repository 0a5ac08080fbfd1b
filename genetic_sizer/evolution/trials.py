"""The trials of a search, counted honestly: every distinct genome an evolution evaluated.

The deflated Sharpe ratio (:func:`genetic_sizer.backtest.stats.deflated_sharpe`) asks how many strategies were tried
and how widely their Sharpe ratios spread; the probability of backtest overfitting
(:func:`genetic_sizer.backtest.stats.pbo`) asks for the candidates' returns. :class:`Trials` keeps, for every distinct
genome evaluated (a genome evaluated again, e.g. an unchanged clone, is one trial; with strategy genes a genome's
row is its weights followed by its genes, so a trial is a distinct (weights, genes) pair: the same weights kept
another way are another strategy tried):

* the count ``n`` and the running mean and variance (Welford's sums, updated a batch at a time, ddof=1) of the
  genomes' in-sample per-period Sharpe ratios;
* a uniform sample of up to ``capacity`` genomes drawn across all generations (reservoir sampling,
  Algorithm R), with a generator of its own seeded from the run's seed, so keeping the sample never changes
  the evolution's random draws.

Everything is deterministic given the order of evaluation and is checkpointed, so a resumed run ends with
the same trials as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import math
import sys

import numpy as np

__all__ = ["SAMPLE_CAPACITY", "Trials"]

SAMPLE_CAPACITY = 1000
"""Genomes kept for the probability of backtest overfitting."""


def _key(row: np.ndarray) -> int:
    return int.from_bytes(hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=8).digest(), "little")


def _keys(rows: np.ndarray) -> list[int]:
    """:func:`_key` of every row of a 2-D array with at least one column: the compiled BLAKE2b of
    :func:`genetic_sizer.evolution.vary_nb.row_keys` on the rows' 64-bit words (the same keys, 33 us instead of 52 for
    75 rows of 20 assets), or ``hashlib`` row by row on a big-endian machine (whose bytes are not the words')."""
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    if sys.byteorder == "little" and rows.shape[1]:
        from genetic_sizer.evolution.vary_nb import row_keys  # numba is imported when genomes are recorded

        return row_keys(rows.view(np.uint64)).tolist()
    return [_key(r) for r in rows]


class Trials:
    """Distinct genomes evaluated, the spread of their per-period Sharpe ratios, and a uniform sample of them.

    Parameters
    ----------
    n_assets : int
    seed : int
        The run's seed; the sample's generator is seeded from it (separately from the evolution's).
    capacity : int
        Size of the uniform sample (default :data:`SAMPLE_CAPACITY`).
    """

    def __init__(self, n_assets: int, seed: int, capacity: int = SAMPLE_CAPACITY):
        self.n_assets = int(n_assets)
        self.capacity = int(capacity)
        self.rng = np.random.default_rng([int(seed), 0x7472_6961_6C73])  # "trials": a stream of its own
        self.keys: set[int] = set()
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.sample = np.empty((0, self.n_assets), dtype=np.float64)

    def add(self, weights: np.ndarray, sharpe: np.ndarray) -> int:
        """Record genomes (rows of ``weights``) and their per-period Sharpe ratios; returns how many were new.

        A row already recorded (here or earlier in the same call) is skipped. The new rows update the count, mean
        and variance at once (Chan et al.'s pairwise update of Welford's sums) and enter the reservoir in order:
        while the sample is not full each new row is appended; after that the ``c``-th distinct genome replaces
        entry ``j`` when ``j``, drawn uniformly from ``[0, c)`` (one draw per such row, all in one call to the
        sample's generator), is below the capacity.
        """
        weights = np.asarray(weights, dtype=np.float64)
        sharpe = np.asarray(sharpe, dtype=np.float64).reshape(-1)
        if len(weights) != len(sharpe):
            raise ValueError(f"{len(weights)} genomes but {len(sharpe)} Sharpe ratios")
        known, keys = self.keys, _keys(weights)
        batch = set(keys)
        if len(batch) == len(keys) and known.isdisjoint(batch):  # the usual case: every row new (set operations)
            known |= batch
            rows, s = weights, np.ascontiguousarray(sharpe)
        else:
            new = [k for k, key in enumerate(keys) if key not in known and (known.add(key) or True)]
            rows, s = weights[new], sharpe[new]
        m = len(s)
        if not m:
            return 0
        n_a, n_b = self.n, m
        mean_b = float(np.add.reduce(s)) / m  # s.mean(): the same sum and division, without numpy's wrapper
        dev = s - mean_b
        m2_b = float(np.dot(dev, dev))
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * n_b / n
        self.m2 = self.m2 + m2_b + delta * delta * n_a * n_b / n
        self.n = n
        room = max(0, min(m, self.capacity - n_a))  # the first `room` new rows fill the sample
        if room:
            self.sample = np.vstack([self.sample, rows[:room]])
        if room < m:  # the c-th distinct genome, c = n_a + room + 1, ..., n, replaces a uniform slot of [0, c)
            slots = self.rng.integers(0, np.arange(n_a + room + 1, n + 1))
            hits = np.flatnonzero(slots < self.capacity)
            if len(hits):
                # as if replaced in order: a slot drawn twice keeps its later genome (a dict keeps a key's last value)
                last = dict(zip(slots[hits].tolist(), hits.tolist(), strict=True))
                self.sample[list(last)] = rows[room + np.fromiter(last.values(), np.intp, len(last))]
        return m

    @property
    def sharpe_variance(self) -> float:
        """Variance (ddof=1) of the trials' per-period Sharpe ratios; NaN with fewer than 2 trials."""
        return self.m2 / (self.n - 1) if self.n > 1 else math.nan

    def summary(self) -> dict:
        """``{"n": distinct genomes evaluated, "sharpe_variance": variance of their per-period Sharpe}``."""
        return {"n": self.n, "sharpe_variance": self.sharpe_variance}

    # ---- checkpoints ---------------------------------------------------------------------------------
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-able scalars and the arrays that restore this object exactly (see :meth:`restore`)."""
        head = {
            "n": self.n,
            "mean": self.mean,
            "m2": self.m2,
            "capacity": self.capacity,
            "rng": self.rng.bit_generator.state,
        }
        arrays = {
            "trial_keys": np.sort(np.fromiter(self.keys, dtype=np.uint64, count=len(self.keys))),
            "trial_sample": self.sample.copy(),
        }
        return head, arrays

    def restore(self, head: dict, arrays: dict[str, np.ndarray]) -> None:
        """Continue from :meth:`state` (validated by the checkpoint reader)."""
        self.n, self.mean, self.m2 = int(head["n"]), float(head["mean"]), float(head["m2"])
        self.capacity = int(head["capacity"])
        self.rng.bit_generator.state = head["rng"]
        self.keys = {int(k) for k in arrays["trial_keys"]}
        self.sample = np.array(arrays["trial_sample"], dtype=np.float64).reshape(-1, self.n_assets)

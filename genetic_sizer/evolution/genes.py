"""Strategy genes: how a genome keeps its weights, evolved beside them.

A genome with genes is a strategy: its weight vector (a row of the population's weight array, see
:mod:`genetic_sizer.evolution.space`) plus a short float vector of genes, one entry per gene of the run's
:class:`GeneSpace`, in the order of :data:`genetic_sizer.vocab.GENES`:

==============  ==============  ==================================================================================
``threshold``   continuous      the drift band: rebalance on any bar where some asset's weight has drifted from its
                                target by at least this much
                                (``genetic_sizer.backtest.simulate.simulate(threshold=...)``), in ``[lo, hi]``
``rebalance``   choice          the calendar policy (``once``, ``D``, ``W``, ``M``, ``Q`` or every N bars), stored as
                                the index of the choice
``leverage``    continuous      the gross leverage a perp genome's targets are sized at (``simulate(leverage=...)``),
                                in ``[lo, hi]`` with ``0 < lo``; only for ``portfolio.market: perp``, and ``hi`` at
                                most every asset's ``portfolio.max_leverage``
``shrink``      continuous      the mixing coefficient ``s`` in ``[lo, hi]`` (within [0, 1]) toward the target of
                                ``robust.shrink_toward`` (1/N or a classical allocation fitted on the training window):
                                the genome is evaluated with ``(1 - s) w + s t``
                                (:meth:`~genetic_sizer.evolution.evaluator.Evaluator.effective_weights`), and a
                                deployed champion's weights are the shrunk ones
``vol_target``  continuous      the annualized volatility each rebalance scales the genome's exposure to (its own
                                ``portfolio.vol_target``, over ``portfolio.vol_lookback`` bars; see
                                :class:`genetic_sizer.backtest.policy.RebalancePolicy`), in ``[lo, hi]`` with
                                ``0 < lo``; not with a fixed ``portfolio.vol_target``, nor in a walk-forward
==============  ==============  ==================================================================================

``evolution.genes`` in the config turns them on (``{threshold: [0.0, 0.2], rebalance: [W, M, Q, once]}``,
``{leverage: [1, 5]}``); a gene the config does not name keeps the portfolio's setting (``portfolio.rebalance``,
no drift band, ``portfolio.leverage``). The operators (:meth:`GeneSpace.vary_population`) keep
every gene valid by construction: a continuous gene stays in its bounds (steps are reflected at the bounds), a
choice gene is an index of its choices. All randomness comes from the ``numpy.random.Generator`` passed in, and a
gene the run does not evolve draws nothing (a run's random stream depends only on the genes it evolves).

Genes are plain floats so that they travel with the weights wherever weights go: in a checkpoint (an ``.npz``
array beside the population), in a trial's key (a trial is a distinct (weights, genes) pair), and in the batches
the evaluator receives (each row the weights followed by the genes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genetic_sizer import vocab as V
from genetic_sizer.errors import ConfigError, GenomeError
from genetic_sizer.vocab import CONTINUOUS, normalize_genes

__all__ = ["GeneSpace"]


@dataclass(frozen=True)
class GeneSpace:
    """The strategy genes a run evolves and their ranges (build with :meth:`create` or :meth:`from_config`).

    ``names`` are the evolved genes in storage order; ``threshold`` is ``(lo, hi)`` or None; ``rebalance`` the
    policy choices or None; ``default_rebalance`` the policy of genomes (and of anything without genes) when
    ``rebalance`` is not evolved; ``leverage`` is ``(lo, hi)`` or None, and ``default_leverage`` the leverage of
    genomes when it is not evolved (``portfolio.leverage``; 1 for spot).
    """

    names: tuple[str, ...]
    threshold: tuple[float, float] | None
    rebalance: tuple[str | int, ...] | None
    default_rebalance: str | int
    leverage: tuple[float, float] | None = None
    default_leverage: float = 1.0
    shrink: tuple[float, float] | None = None
    vol_target: tuple[float, float] | None = None

    @classmethod
    def create(cls, genes: dict, default_rebalance="M", default_leverage: float = 1.0) -> GeneSpace:
        """From a genes mapping (checked with :func:`genetic_sizer.vocab.normalize_genes`), the portfolio's policy
        and its leverage."""
        genes = normalize_genes(genes)
        th = genes.get("threshold")
        reb = genes.get("rebalance")
        lev = genes.get("leverage")
        shr = genes.get("shrink")
        vt = genes.get("vol_target")
        return cls(
            names=tuple(genes),
            threshold=None if th is None else (th[0], th[1]),
            rebalance=None if reb is None else tuple(reb),
            default_rebalance=V.parse_rebalance(default_rebalance, "portfolio.rebalance"),
            leverage=None if lev is None else (lev[0], lev[1]),
            default_leverage=float(default_leverage),
            shrink=None if shr is None else (shr[0], shr[1]),
            vol_target=None if vt is None else (vt[0], vt[1]),
        )

    @classmethod
    def from_config(cls, config) -> GeneSpace | None:
        """The genes a :class:`~genetic_sizer.config.RunConfig` evolves, or None (no ``evolution.genes``)."""
        genes = config.evolution.genes
        pf = config.portfolio
        return None if genes is None else cls.create(genes, pf.rebalance, pf.leverage)

    @property
    def n(self) -> int:
        return len(self.names)

    def _col(self, name: str) -> int:
        return self.names.index(name)

    def _bounds(self, name: str) -> tuple[float, float]:
        return {
            "threshold": self.threshold,
            "leverage": self.leverage,
            "shrink": self.shrink,
            "vol_target": self.vol_target,
        }[name]

    def record(self) -> dict:
        """The evolved genes and their ranges, as the config states them (JSON-able)."""
        out = {}
        if self.threshold is not None:
            out["threshold"] = list(self.threshold)
        if self.rebalance is not None:
            out["rebalance"] = list(self.rebalance)
        if self.leverage is not None:
            out["leverage"] = list(self.leverage)
        if self.shrink is not None:
            out["shrink"] = list(self.shrink)
        if self.vol_target is not None:
            out["vol_target"] = list(self.vol_target)
        return out

    # ---- validity --------------------------------------------------------------------------------
    def check_max_leverage(self, max_leverage, symbols, market: str = "perp", key: str = "evolution.genes") -> None:
        """:func:`genetic_sizer.vocab.check_leverage_gene` for this space's leverage gene; a perp ``vol_target`` gene
        needs a finite cap for every asset (the exposure a genome's target scales to)."""
        V.check_leverage_gene(self.leverage, max_leverage, symbols, market, key)
        caps = np.asarray(max_leverage, dtype=np.float64)
        if self.vol_target is not None and market == "perp" and caps.size and not np.isfinite(caps).all():
            raise ConfigError(
                f"{key}.vol_target {list(self.vol_target)} on the perp account needs a finite portfolio.max_leverage "
                "for every asset (the cap of the exposure a genome's target scales to)"
            )

    def violation(self, genes) -> str | None:
        """Why one genome's genes (n_genes,) are not valid, or None."""
        g = np.asarray(genes, dtype=np.float64)
        if g.shape != (self.n,):
            return f"genes have shape {g.shape}, expected ({self.n},)"
        if not np.isfinite(g).all():
            return f"genes {g.tolist()} are not finite"
        for name in CONTINUOUS:
            if name in self.names:
                x = float(g[self._col(name)])
                lo, hi = self._bounds(name)
                if not lo <= x <= hi:
                    return f"{name} {x!r} is outside evolution.genes.{name} [{lo:g}, {hi:g}]"
        if self.rebalance is not None:
            j = float(g[self._col("rebalance")])
            if j != int(j) or not 0 <= j < len(self.rebalance):
                return f"rebalance gene {j!r} is not the index of one of {list(self.rebalance)}"
        return None

    def validate_population(self, genes, what: str = "genome") -> np.ndarray:
        """Check every row of (n, n_genes); the error names the first bad genome."""
        g = np.asarray(genes, dtype=np.float64)
        if g.ndim != 2 or g.shape[1] != self.n:
            raise GenomeError(f"{what} genes must have shape (n, {self.n}), got {g.shape}")
        bad = ~np.isfinite(g).all(axis=1)
        for name in CONTINUOUS:
            if name in self.names:
                x = g[:, self._col(name)]
                lo, hi = self._bounds(name)
                bad |= ~((lo <= x) & (x <= hi))
        if self.rebalance is not None:
            j = g[:, self._col("rebalance")]
            with np.errstate(invalid="ignore"):
                bad |= (j != np.floor(j)) | ~((0 <= j) & (j < len(self.rebalance)))
        if bad.any():  # the message of the first bad row, from the one-genome check
            k = int(np.flatnonzero(bad)[0])
            raise GenomeError(f"{what} {k}: {self.violation(g[k])}")
        return g

    # ---- decoding --------------------------------------------------------------------------------
    def policies(self, genes) -> list:
        """The calendar policy of each genome (rows of ``genes``)."""
        g = np.asarray(genes, dtype=np.float64).reshape(-1, self.n)
        if self.rebalance is None:
            return [self.default_rebalance] * len(g)
        return [self.rebalance[int(j)] for j in g[:, self._col("rebalance")]]

    def thresholds(self, genes) -> np.ndarray | None:
        """The drift band of each genome (rows of ``genes``), or None when it is not evolved (no band)."""
        if self.threshold is None:
            return None
        g = np.asarray(genes, dtype=np.float64).reshape(-1, self.n)
        return g[:, self._col("threshold")].copy()

    def leverages(self, genes) -> np.ndarray | None:
        """The gross leverage of each genome (rows of ``genes``), or None when it is not evolved (every genome at
        ``default_leverage``)."""
        if self.leverage is None:
            return None
        g = np.asarray(genes, dtype=np.float64).reshape(-1, self.n)
        return g[:, self._col("leverage")].copy()

    def shrinks(self, genes) -> np.ndarray | None:
        """The mixing coefficient toward ``robust.shrink_toward`` of each genome (rows of ``genes``), or None when it
        is not evolved."""
        if self.shrink is None:
            return None
        g = np.asarray(genes, dtype=np.float64).reshape(-1, self.n)
        return g[:, self._col("shrink")].copy()

    def vol_targets(self, genes) -> np.ndarray | None:
        """The annualized volatility target of each genome (rows of ``genes``), or None when it is not evolved."""
        if self.vol_target is None:
            return None
        g = np.asarray(genes, dtype=np.float64).reshape(-1, self.n)
        return g[:, self._col("vol_target")].copy()

    def strategy(self, genes) -> dict:
        """One genome's strategy: ``{"rebalance": policy, "threshold": band or None}``, and ``"leverage"`` /
        ``"vol_target"`` when the leverage / the volatility target is evolved."""
        th = self.thresholds(genes)
        out = {"rebalance": self.policies(genes)[0], "threshold": None if th is None else float(th[0])}
        lev = self.leverages(genes)
        if lev is not None:
            out["leverage"] = float(lev[0])
        vt = self.vol_targets(genes)
        if vt is not None:
            out["vol_target"] = float(vt[0])
        return out

    def describe(self, genes) -> str:
        """One genome's strategy in words, e.g. ``rebalance M, drift band 0.052`` (``, leverage 2.31x``)."""
        s = self.strategy(genes)
        band = "no drift band" if s["threshold"] is None else f"drift band {s['threshold']:.4g}"
        lev = "" if "leverage" not in s else f", leverage {s['leverage']:.3g}x"
        shr = self.shrinks(genes)
        shr = "" if shr is None else f", shrink {float(shr[0]):.3g}"
        vt = "" if "vol_target" not in s else f", vol target {s['vol_target']:.4g}"
        return f"rebalance {s['rebalance']}, {band}{lev}{shr}{vt}"

    # ---- operators -------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` random genes (n, n_genes): uniform within each range / among the choices."""
        out = np.empty((n, self.n))
        for j, name in enumerate(self.names):
            if name in CONTINUOUS:
                lo, hi = self._bounds(name)
                out[:, j] = rng.uniform(lo, hi, n)
            else:
                out[:, j] = rng.integers(0, len(self.rebalance), n)
        return out

    # ---- population-level operators ------------------------------------------------------------------
    def reflect_array(self, x: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
        """Every element of ``x`` reflected into ``bounds`` at both ends (a fixed range ``lo == hi`` gives ``lo``)."""
        lo, hi = bounds
        x = np.asarray(x, dtype=np.float64)
        if hi == lo:
            return np.full_like(x, lo)
        span = hi - lo
        y = np.fmod(np.abs(x - lo), 2 * span)
        return lo + np.where(y <= span, y, 2 * span - y)

    def vary_population(
        self,
        genes: np.ndarray,
        cross: np.ndarray,
        rng: np.random.Generator,
        alpha: float = 0.5,
        prob: float = 0.2,
        sigma: float = 0.15,
    ) -> np.ndarray:
        """The genes of a whole offspring array after variation: a new (n, n_genes) array.

        The pairs are those of :func:`genetic_sizer.evolution.variation.vary_population`: rows ``2i`` and ``2i + 1``
        cross over where ``cross[i]`` (``n // 2`` entries; an odd last row never crosses): a continuous gene is
        blended, each child on the line through the parents at ``t`` uniform in ``[-alpha, 1 + alpha]`` and reflected
        into its range; a choice gene is swapped between the two children with probability 1/2. Then every gene of
        every row mutates with probability ``prob``: a continuous one by a Gaussian step of ``sigma`` times its range
        (reflected), a choice one to another of its choices.

        Draws, in this order and each for the whole array at once: per gene, the crossing pairs' blend factors
        (continuous) or swap coins (choice); then the (n, n_genes) mutation coins; then, per gene, one step for
        every row (used where the coin says so). A gene the run does not evolve draws nothing.
        """
        g = np.asarray(genes, dtype=np.float64)
        n = g.shape[0]
        cross = np.asarray(cross, dtype=bool)
        if g.ndim != 2 or g.shape[1] != self.n or cross.shape != (n // 2,):
            raise ValueError(
                f"vary_population: genes (n, {self.n}) and cross (n // 2,); got {g.shape} and {cross.shape}"
            )
        out = g.copy()
        if self.n == 0:
            return out
        pairs = np.flatnonzero(cross)
        ia, ib = 2 * pairs, 2 * pairs + 1
        for j, name in enumerate(self.names):
            a, b = g[ia, j], g[ib, j]
            if name in CONTINUOUS:
                bounds = self._bounds(name)
                t = rng.uniform(-alpha, 1.0 + alpha, (len(pairs), 2))
                out[ia, j] = self.reflect_array(b + t[:, 0] * (a - b), bounds)
                out[ib, j] = self.reflect_array(a + t[:, 1] * (b - a), bounds)
            else:
                swap = rng.random(len(pairs)) < 0.5
                out[ia, j] = np.where(swap, b, a)
                out[ib, j] = np.where(swap, a, b)
        coins = rng.random((n, self.n)) < prob
        for j, name in enumerate(self.names):
            if name in CONTINUOUS:
                lo, hi = self._bounds(name)
                step = rng.normal(0.0, sigma * (hi - lo), n)
                hit = coins[:, j]
                out[hit, j] = self.reflect_array(out[hit, j] + step[hit], (lo, hi))
            elif len(self.rebalance) > 1:
                k = len(self.rebalance)
                step = rng.integers(1, k, n)
                hit = coins[:, j]
                out[hit, j] = ((out[hit, j].astype(np.int64) + step[hit]) % k).astype(np.float64)
        return out

"""The fused simulate-and-score path of the fast engine: :func:`score_inputs` runs the kernel on checked
:class:`~genetic_sizer.backtest.inputs.Inputs` (what :func:`genetic_sizer.backtest.simulate.score` calls), and
:class:`Scorer` is that call prepared once for one price window and one portfolio's settings (the fitness the evolution
calls every generation: :class:`genetic_sizer.evolution.evaluator.Evaluator`).

A :class:`Scorer` checks at construction everything that does not depend on the genomes (the prices, costs, market,
margin tiers and funding, bars per year, risk-free rates, and the calendar masks, drift band, leverage and policy rows
of settings that are the same for every genome) and per call only the genomes and the per-genome settings a call
gives; its figures are those of :func:`~genetic_sizer.backtest.simulate.score` with the same arguments, bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np

from genetic_sizer.backtest import resample as rs
from genetic_sizer.backtest.inputs import (
    Inputs,
    as_prices,
    check_account,
    check_costs,
    check_spot,
    funding_args,
    range_args,
    starts_of,
)
from genetic_sizer.backtest.kernels import perp
from genetic_sizer.backtest.kernels import spot as nb
from genetic_sizer.backtest.metrics import annualized_turnover, check_periods_per_year, liquidated_flag
from genetic_sizer.backtest.policy import RebalancePolicy
from genetic_sizer.backtest.riskfree import check_rates
from genetic_sizer.backtest.schedule import (
    check_population,
    is_policy,
    rebalance_masks,
    validate_segment_starts,
    validate_thresholds,
)
from genetic_sizer.errors import ConfigError

__all__ = ["SCORE_CHUNKS_PER_THREAD", "Scorer", "score_inputs"]

SCORE_CHUNKS_PER_THREAD = 8
""":func:`score_inputs` splits a population into this many chunks of genomes per Numba thread, handed out one at a
time (``numba.parallel_chunksize(1)``): a thread slowed down by another process takes fewer chunks instead of holding
the others up at the end of the call."""

_GIVEN = object()
"""The default of :meth:`Scorer.__call__`'s per-call settings: the scorer's own."""


def score_inputs(inp: Inputs, ppy: float, rf: np.ndarray, res=rs.NONE):
    """Every fitness metric of the population of ``inp`` through the fused kernels (the fast engine of
    :func:`genetic_sizer.backtest.simulate.score`, which documents the result): ``ppy`` a checked bars per year
    (:func:`~genetic_sizer.backtest.metrics.check_periods_per_year`), ``rf`` checked rates
    (:func:`~genetic_sizer.backtest.riskfree.check_rates`), ``res`` the resamples (``resample.NONE``: none)."""
    prices = inp.prices
    n_genomes = inp.w.shape[0]
    res_args = (res.idx, res.ptr, np.empty((n_genomes, res.k, nb.RESAMPLE_WIDTH)))  # K = 0: no resampling
    n_chunks = min(n_genomes, SCORE_CHUNKS_PER_THREAD * numba.get_num_threads())
    out = np.empty((n_genomes, nb.SCORE_WIDTH))
    with numba.parallel_chunksize(1):
        if inp.market == "perp":
            f, has_funding = funding_args(inp)
            perp.score_perp_population_nb(
                prices.close, f, has_funding, *range_args(prices), inp.w, inp.starts, inp.masks, inp.mask_of,
                inp.thresholds, inp.lev, inp.mm_rate, inp.tier_rate, inp.tier_deduct, inp.fees, inp.slippage,
                inp.init_cash, ppy, rf, n_chunks, out, *res_args, inp.policy,
            )  # fmt: skip
        else:
            longonly = (inp.w >= 0).all(axis=(1, 2))
            nb.score_population_nb(
                prices.close, inp.w, inp.starts, inp.masks, inp.mask_of, inp.thresholds, inp.fees, inp.slippage,
                inp.init_cash, longonly, ppy, rf, n_chunks, out, *res_args, inp.policy,
            )  # fmt: skip
    if out[:, nb.SCORE_NONFINITE].any():
        g = int(np.argmax(out[:, nb.SCORE_NONFINITE]))
        raise ConfigError(f"values contain NaN or infinity (genome {g})")
    cols = np.ascontiguousarray(out.T)
    m = {name: cols[j] for j, name in enumerate(nb.METRIC_NAMES)}
    m["cagr"] = m["annualized_return"]
    m["turnover"] = annualized_turnover(cols[nb.SCORE_TRADED], ppy, prices.n_bars)
    if inp.market == "perp":
        for j, name in enumerate(perp.ACCOUNT_FIELDS):
            m[name] = cols[perp.SCORE_ACCOUNT + j]
        m["liquidated"] = liquidated_flag(cols[perp.SCORE_LIQUIDATED])
    return m if res.k == 0 else (m, rs.as_metrics(res_args[2], res, ppy))


def _uniform_policy(policy) -> bool:
    """Whether ``policy`` makes the same kernel row for every genome (no ``vol_target`` per genome)."""
    if policy is None:
        return True
    vol_target = policy.get("vol_target") if isinstance(policy, dict) else getattr(policy, "vol_target", None)
    return isinstance(policy, (dict, RebalancePolicy)) and np.ndim(vol_target) == 0


class Scorer:
    """:func:`genetic_sizer.backtest.simulate.score` with the fast engine, prepared once: ``Scorer(close, **settings)
    (weights)`` gives ``score(close, weights, **settings)``, bit for bit, and checks at construction what does not
    depend on the genomes (each error as :func:`~genetic_sizer.backtest.simulate.score` raises it).

    The parameters are those of :func:`~genetic_sizer.backtest.simulate.score` but ``weights`` and ``engine`` (the
    fast engine) and ``resamples`` (given per call); a DataFrame ``close`` is checked and copied into
    :class:`~genetic_sizer.data.prices.Prices` once, here (what the frame becomes afterwards is not seen).
    ``rebalance`` (one policy), ``threshold`` (None or a number), ``leverage`` (a number) and ``policy`` (without a
    ``vol_target`` per genome) that are the same for every genome are checked and turned into the kernels' arrays
    once; given per genome, they are checked on every call against its population.

    A call ``scorer(weights, rebalance=..., threshold=..., leverage=..., policy=..., resamples=None)`` scores
    ``weights`` (n_genomes, n_assets), or with ``segment_starts`` (n_genomes, n_segments, n_assets), checked on every
    call (a :class:`~genetic_sizer.errors.GenomeError` naming the genome, the asset and the value); a setting given to
    the call replaces the scorer's for that call (e.g. each genome's own policy and band, from its strategy genes) and
    is checked as :func:`~genetic_sizer.backtest.simulate.score` checks it.
    """

    def __init__(
        self,
        close,
        *,
        segment_starts=None,
        rebalance="M",
        threshold=None,
        fees: float = 0.0,
        slippage: float = 0.0,
        init_cash: float = 10_000.0,
        market: str = "spot",
        leverage=1.0,
        funding=None,
        max_leverage=None,
        periods_per_year: float | None = None,
        risk_free=0.0,
        policy=None,
    ):
        prices = self.prices = as_prices(close)
        self.segment_starts = segment_starts
        if segment_starts is None:
            self.starts = np.zeros(1, dtype=np.int64)
        else:
            self.starts = validate_segment_starts(segment_starts, prices.n_bars)
        self.costs = check_costs(fees, slippage, init_cash)
        self.account = check_account(prices, market, leverage, funding, max_leverage)
        self.market = self.account.market
        self.ppy = check_periods_per_year(prices.periods_per_year if periods_per_year is None else periods_per_year)
        self.rf = check_rates(risk_free, prices.n_bars, self.ppy)
        self.rebalance, self.threshold, self.leverage, self.policy = rebalance, threshold, leverage, policy
        n_segments = self.starts.size
        self._masks = None  # the one mask of a policy for every genome, (1, n_bars)
        if is_policy(rebalance):
            schedule = starts_of(segment_starts, self.starts)
            self._masks = rebalance_masks(prices.calendar_index, rebalance, 1, schedule)[0]
        self._band = None  # the drift band of every genome and segment, (1, n_segments)
        if threshold is None or np.ndim(threshold) == 0:
            self._band = validate_thresholds(threshold, 1, n_segments)
        self._lev = None  # the leverage of every genome and segment (perp), (1, n_segments)
        if np.ndim(leverage) == 0:
            self._lev = self.account.leverage(leverage, 1, prices.symbols, n_segments)
        self._rows = _GIVEN  # the policy row of every genome, (1, POLICY_WIDTH), or None: no policy
        if _uniform_policy(policy):
            self._rows = self.account.policy_rows(policy, 1, prices.periods_per_year)

    def inputs(self, weights, rebalance=_GIVEN, threshold=_GIVEN, leverage=_GIVEN, policy=_GIVEN) -> Inputs:
        """The checked :class:`~genetic_sizer.backtest.inputs.Inputs` of a call (see :class:`Scorer`)."""
        prices, starts = self.prices, self.starts
        w = check_population(weights, starts if self.segment_starts is not None else None, prices.symbols)
        n, n_segments = w.shape[0], starts.size
        if rebalance is _GIVEN and self._masks is not None:
            masks, mask_of = self._masks, np.zeros(n, dtype=np.int64)
        else:
            policies = self.rebalance if rebalance is _GIVEN else rebalance
            masks, mask_of = rebalance_masks(prices.calendar_index, policies, n, starts_of(self.segment_starts, starts))
        if threshold is _GIVEN and self._band is not None:
            thresholds, drift = np.repeat(self._band, n, axis=0), self.threshold is not None
        else:
            band = self.threshold if threshold is _GIVEN else threshold
            thresholds, drift = validate_thresholds(band, n, n_segments), band is not None
        lev_given = self.leverage if leverage is _GIVEN else leverage
        if self.market == "spot":
            if leverage is not _GIVEN:
                check_spot(leverage, None, None)  # a leverage is a setting of the perp account
            lev = None
        elif leverage is _GIVEN and self._lev is not None:
            lev = np.repeat(self._lev, n, axis=0)
        else:
            lev = self.account.leverage(lev_given, n, prices.symbols, n_segments)
        if policy is _GIVEN and self._rows is not _GIVEN:
            rows = None if self._rows is None else np.repeat(self._rows, n, axis=0)
        else:
            rows = self.account.policy_rows(self.policy if policy is _GIVEN else policy, n, prices.periods_per_year)
        per_segment = np.ndim(lev_given) == 2
        return self.account.inputs(
            prices, w, starts, masks, mask_of, thresholds, drift, self.costs, lev, per_segment, rows
        )

    def __call__(self, weights, *, rebalance=_GIVEN, threshold=_GIVEN, leverage=_GIVEN, policy=_GIVEN, resamples=None):
        """Every fitness metric of every genome of ``weights`` (see :class:`Scorer`; the result of
        :func:`~genetic_sizer.backtest.simulate.score`)."""
        inp = self.inputs(weights, rebalance, threshold, leverage, policy)
        return score_inputs(inp, self.ppy, self.rf, rs.NONE if resamples is None else resamples)

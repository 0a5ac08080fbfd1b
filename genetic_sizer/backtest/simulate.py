"""Weights -> portfolio values, through the fast Numba kernel or through a reference (vectorbt, the perp loop).

The references are imported lazily, when used: :mod:`genetic_sizer.backtest.vbt` (the one module that imports
vectorbt: ``import vectorbt`` takes seconds) and :mod:`genetic_sizer.backtest.reference`. The checks of the inputs
are in :mod:`genetic_sizer.backtest.schedule` (weights, schedules, rebalance masks, drift bands) and
:mod:`genetic_sizer.backtest.inputs` (costs, leverage, funding).

The reference semantics are::

    vbt.Portfolio.from_orders(close=tiled_close, size=targets, size_type='targetpercent',
                              group_by=genome_of_column, cash_sharing=True, call_seq='auto',
                              fees=fees, slippage=slippage, init_cash=init_cash, direction=...)

(and vectorbt's default ``min_size=1e-8``, passed explicitly so that global vectorbt settings cannot change
the reference) with ``targets`` NaN except on rebalance bars, where each asset's target is its weight. Long-only
genomes use ``direction='longonly'``, genomes with a short weight ``direction='both'``. ``engine="fast"`` runs
:func:`genetic_sizer.backtest.kernels.spot.simulate_population_nb`, which reproduces that to floating-point noise.

A schedule of weights (``segment_starts``) changes a genome's targets over time: from bar
``segment_starts[s]`` on, the targets are ``weights[:, s]``. Every segment start is a rebalance bar too,
and each genome stays one portfolio (cash, positions and fees carry across segments).

A drift band (``threshold``) rebalances a genome on any bar where some asset's current weight (``position *
close / value``, the value before trading at that bar's close) differs from its target by at least the
threshold; calendar and drift triggers combine. The policy and the threshold may differ per genome (and, with a
schedule, per segment). The reference for a drift band is vectorbt's ``Portfolio.from_order_func`` with cash
sharing and one group per genome (seed S1's pattern; the callbacks are in ``genetic_sizer.backtest.vbt``):
a pre-segment function sets the valuation prices to the bar's close, decides, and sorts the call sequence;
the order function returns target-percent orders or nothing.

``market="perp"`` simulates the account the sizer trades instead: Hyperliquid perpetuals with cross margin,
``leverage``, hourly ``funding``, taker fees and liquidation below the maintenance margin of ``max_leverage``
(:mod:`genetic_sizer.backtest.kernels.perp` states the semantics). vectorbt has no perpetuals (its issue #639): the
fast kernel is the engine, and ``engine="reference"`` runs :func:`genetic_sizer.backtest.reference.reference_genome`, a
plain-Python loop of the same account, which the test suite and every perp champion are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genetic_sizer import vocab as V
from genetic_sizer.backtest import resample as rs
from genetic_sizer.backtest.inputs import (
    Inputs,
    as_prices,
    check_costs,
    check_leverage,
    funding_args,
    funding_rates,
    margin_tiers,
    prepare,
    range_args,
)
from genetic_sizer.backtest.kernels import perp
from genetic_sizer.backtest.kernels import spot as nb
from genetic_sizer.backtest.metrics import account_metrics, check_periods_per_year, compute_metrics
from genetic_sizer.backtest.policy import policy_rows
from genetic_sizer.backtest.reference import reference_genome
from genetic_sizer.backtest.riskfree import check_rates
from genetic_sizer.backtest.schedule import (
    is_policy,
    rebalance_masks,
    validate_schedule,
    validate_thresholds,
    validate_weights,
)
from genetic_sizer.backtest.scorer import SCORE_CHUNKS_PER_THREAD, score_inputs
from genetic_sizer.errors import ConfigError, GenomeError

__all__ = ["SCORE_CHUNKS_PER_THREAD", "Backtest", "backtest", "holdings", "score", "simulate"]


@dataclass(frozen=True)
class Backtest:
    """What one simulation of a population produced.

    Attributes
    ----------
    value : ndarray (n_bars, n_genomes)
        Portfolio value of every genome at every bar's close.
    traded : ndarray (n_genomes,)
        Sum over rebalance bars after the first of traded notional / portfolio value before trading
        (the initial allocation is not counted; segment switches are counted).
        :func:`genetic_sizer.backtest.metrics.compute_metrics` turns it into annualized turnover.
    rebalance : ndarray (n_bars, n_genomes) of bool
        The bars on which each genome rebalanced: the bars of its rebalance policy, every segment start,
        and the bars where its drift band fired (a liquidated perp account trades on none after its
        liquidation bar). ``traded`` sums over these bars (after the first).
    segment_starts : ndarray (n_segments,) of int64
        First bar of each segment of the weight schedule; ``[0]`` for static weights.
    market : {"spot", "perp"}
        The account model simulated.
    funding_paid, funding_received, fees_paid : ndarray (n_genomes,), or None for spot
        Perp: the funding each genome paid and received, and the fees it paid, in the account's currency (>= 0).
    liquidated : ndarray (n_genomes,) of int64, or None for spot
        Perp: the bar on which each genome was liquidated, -1 if never.
    leverage : ndarray (n_genomes,) or (n_genomes, n_segments), or None for spot
        Perp: the gross leverage each genome was sized at; per segment when it was given per segment.
    turnover : ndarray (n_bars, n_genomes), or None
        Each bar's term of ``traded`` (0 where none counts), when the engine reports it (vectorbt's), for resampling.
    """

    value: np.ndarray
    traded: np.ndarray
    rebalance: np.ndarray
    segment_starts: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    market: str = "spot"
    funding_paid: np.ndarray | None = None
    funding_received: np.ndarray | None = None
    fees_paid: np.ndarray | None = None
    liquidated: np.ndarray | None = None
    leverage: np.ndarray | None = None
    turnover: np.ndarray | None = None


def backtest(
    close,
    weights,
    *,
    segment_starts=None,
    rebalance="M",
    threshold=None,
    fees: float = 0.0,
    slippage: float = 0.0,
    init_cash: float = 10_000.0,
    engine: str = "fast",
    market: str = "spot",
    leverage=1.0,
    funding=None,
    max_leverage=None,
    policy=None,
) -> Backtest:
    """Simulate a population of genomes; return values, turnover and the bars each genome rebalanced on.

    See :func:`simulate` for the parameters.
    """
    inp = prepare(
        close, weights, segment_starts, rebalance, threshold, fees, slippage, init_cash, market, leverage, funding,
        max_leverage, policy,
    )  # fmt: skip
    return _backtest(inp, engine)


def _backtest(inp: Inputs, engine: str) -> Backtest:
    """:func:`backtest` of validated inputs."""
    if inp.market == "perp":
        return _backtest_perp(inp, engine)
    costs = (inp.fees, inp.slippage, inp.init_cash)
    if engine == "fast":
        value, traded, rebalanced = _simulate_fast(
            inp.prices.close, inp.w, inp.starts, inp.masks, inp.mask_of, inp.thresholds, *costs, inp.policy
        )
    elif engine == "vectorbt":
        from genetic_sizer.backtest.vbt import simulate_vectorbt  # imports vectorbt: seconds

        band = inp.thresholds if inp.drift or inp.policy is not None else None
        value, traded, rebalanced, turnover = simulate_vectorbt(
            inp.prices, inp.w, inp.starts, inp.masks[inp.mask_of].T, band, *costs, policy=inp.policy
        )
        return Backtest(value=value, traded=traded, rebalance=rebalanced, segment_starts=inp.starts, turnover=turnover)
    else:
        raise ConfigError(f"engine must be one of {list(V.ENGINES)}, got {engine!r}")
    return Backtest(value=value, traded=traded, rebalance=rebalanced, segment_starts=inp.starts)


def score(
    close,
    weights,
    *,
    segment_starts=None,
    rebalance="M",
    threshold=None,
    fees: float = 0.0,
    slippage: float = 0.0,
    init_cash: float = 10_000.0,
    engine: str = "fast",
    market: str = "spot",
    leverage=1.0,
    funding=None,
    max_leverage=None,
    periods_per_year: float | None = None,
    risk_free=0.0,
    resamples=None,
    policy=None,
):
    """Every fitness metric of every genome: simulate and score in one pass per genome, without the value matrix.

    The fitness path. With ``engine="fast"`` each genome is simulated into a scratch row of ``n_bars`` values
    (cache-resident) and scored from it at once (:func:`genetic_sizer.backtest.kernels.spot.score_population_nb`,
    :func:`genetic_sizer.backtest.kernels.perp.score_perp_population_nb`): nothing of size (genomes x bars) is
    allocated, so the memory does not grow with the population and Numba's threads do not wait on page faults. The
    figures equal ``compute_metrics(backtest(...).value, traded=...)`` (with
    :func:`genetic_sizer.backtest.metrics.account_metrics` for perps) bit for bit; the other engines compute them so.

    Parameters
    ----------
    close, weights, segment_starts, rebalance, threshold, fees, slippage, init_cash, engine, market, leverage, \
funding, max_leverage, policy :
        As for :func:`simulate`.
    periods_per_year : float, optional
        Bars per year, for the annualized metrics; default the prices' (:attr:`Prices.periods_per_year`).
    risk_free : float or array (n_bars,)
        The risk-free rate per bar (not annual), as for :func:`genetic_sizer.backtest.metrics.compute_metrics`.
    resamples : :class:`genetic_sizer.backtest.resample.Resamples`, optional
        Also score K resamples of each genome's one simulated path (fast: in the same pass; vectorbt: its paths).

    Returns
    -------
    dict of metric name -> float64 array (n_genomes,)
        The names of :func:`genetic_sizer.backtest.metrics.compute_metrics` with ``turnover``; for perps also
        ``funding_paid``, ``funding_received``, ``fees_paid`` and ``liquidated`` (1.0 or 0.0), as
        :func:`genetic_sizer.backtest.metrics.account_metrics`. With ``resamples``: ``(this, name -> (n_genomes, K))``.

    Raises
    ------
    GenomeError, ConfigError, DataError
        As :func:`simulate`; also a ConfigError for a bad ``periods_per_year`` or a value path that is not finite.
    """
    # the policy's volatility is annualized with the data's bars per year, as in backtest() (periods_per_year: the
    # metrics' only), so that the fused scorer simulates the value path's trades at any periods_per_year
    inp = prepare(
        close, weights, segment_starts, rebalance, threshold, fees, slippage, init_cash, market, leverage, funding,
        max_leverage, policy,
    )  # fmt: skip
    prices = inp.prices
    ppy = check_periods_per_year(prices.periods_per_year if periods_per_year is None else periods_per_year)
    res = rs.NONE if resamples is None else resamples
    if engine != "fast":
        bt = _backtest(inp, engine)
        m = compute_metrics(
            bt.value, init_cash=inp.init_cash, periods_per_year=ppy, traded=bt.traded, risk_free=risk_free
        )
        m.update(account_metrics(bt))
        return m if res.k == 0 else (m, rs.of_backtest(bt, m, inp.init_cash, ppy, risk_free, res))
    return score_inputs(inp, ppy, check_rates(risk_free, prices.n_bars, ppy), res)


def _perp_engine_error(engine) -> ConfigError:
    if engine == "vectorbt":
        return ConfigError(
            "engine 'vectorbt' has no perpetuals account (vectorbt issue #639): market='perp' runs on engine 'fast', "
            "checked against engine 'reference' (genetic_sizer.backtest.reference.reference_genome)"
        )
    return ConfigError(f"engine must be one of {[*V.ENGINES, 'reference']}, got {engine!r}")


def _backtest_perp(inp: Inputs, engine: str) -> Backtest:
    """:func:`backtest` for ``market="perp"``: the perp kernel, or the plain-Python reference."""
    prices, w, starts, lev = inp.prices, inp.w, inp.starts, inp.lev
    n_genomes = w.shape[0]
    n_bars = prices.n_bars
    if engine == "fast":
        value = np.empty((n_genomes, n_bars))
        traded = np.empty(n_genomes)
        rebalanced = np.empty((n_genomes, n_bars), dtype=np.bool_)
        account = np.empty((n_genomes, len(perp.ACCOUNT_FIELDS)))
        liquidated = np.empty(n_genomes, dtype=np.int64)
        f, has_funding = funding_args(inp)
        perp.simulate_perp_population_nb(
            prices.close,
            f,
            has_funding,
            *range_args(prices),
            w,
            starts,
            inp.masks,
            inp.mask_of,
            inp.thresholds,
            lev,
            inp.mm_rate,
            inp.tier_rate,
            inp.tier_deduct,
            inp.fees,
            inp.slippage,
            inp.init_cash,
            value,
            traded,
            rebalanced,
            account,
            liquidated,
            inp.policy,
        )
        paid, received, fees_paid = account.T
        value = value.T
        rebalanced = rebalanced.T
    elif engine == "reference":
        runs = [
            reference_genome(
                prices.close,
                w[g],
                starts,
                inp.masks[inp.mask_of[g]],
                thresholds=inp.thresholds[g],
                leverage=lev[g],
                mm_rate=inp.tier_rate,
                mm_deduct=inp.tier_deduct,
                funding=inp.rates,
                low=prices.low,
                high=prices.high,
                fees=inp.fees,
                slippage=inp.slippage,
                init_cash=inp.init_cash,
                policy=None if inp.policy is None else inp.policy[g],
            )
            for g in range(n_genomes)
        ]
        value = np.column_stack([r["value"] for r in runs])
        traded, paid, received, fees_paid = (
            np.array([r[k] for r in runs]) for k in ("traded", "funding_paid", "funding_received", "fees_paid")
        )
        liquidated = np.array([r["liquidated"] for r in runs], dtype=np.int64)
        rebalanced = np.column_stack([r["rebalanced"] for r in runs])
    else:
        raise _perp_engine_error(engine)
    return Backtest(
        value=value,
        traded=traded,
        rebalance=rebalanced,
        segment_starts=starts,
        market="perp",
        funding_paid=paid,
        funding_received=received,
        fees_paid=fees_paid,
        liquidated=liquidated,
        leverage=lev if inp.per_segment_leverage else lev[:, 0],
    )


def simulate(
    close,
    weights,
    *,
    segment_starts=None,
    rebalance="M",
    threshold=None,
    fees: float = 0.0,
    slippage: float = 0.0,
    init_cash: float = 10_000.0,
    engine: str = "fast",
    market: str = "spot",
    leverage=1.0,
    funding=None,
    max_leverage=None,
    policy=None,
) -> np.ndarray:
    """Portfolio value of every genome at every bar.

    Parameters
    ----------
    close : Prices or DataFrame
        Close prices (time index, one column per asset).
    weights : array-like (n_genomes, n_assets) or (n_assets,); with segment_starts (n_genomes, n_segments, n_assets)
        Long-only (each >= 0, sum 1) or long/short (sum of |w| = 1) weight genomes; with
        ``segment_starts``, one such vector per genome and segment. A genome with a negative weight in
        any segment is simulated long/short (vectorbt's ``direction='both'``), otherwise long-only.
    segment_starts : sequence of int (n_segments,), optional
        A schedule of targets: strictly increasing bar indices, the first 0. From bar
        ``segment_starts[s]`` on, genome ``g`` targets ``weights[g, s]``. Every segment start is a
        rebalance bar, in addition to the bars of ``rebalance`` (an every-N-bars policy keeps counting
        from bar 0). Each genome is one portfolio throughout: cash, positions and fees carry across
        segments. None (default): static weights.
    rebalance : {"once", "D", "W", "M", "Q"} or int, or one per genome
        When to trade back to the target weights (see :func:`genetic_sizer.backtest.schedule.rebalance_mask`): one
        policy for every genome, or a sequence of one per genome; with ``segment_starts`` an entry may also be a
        sequence of one policy per segment (see :func:`genetic_sizer.backtest.schedule.rebalance_masks`).
    threshold : float, or one per genome, optional
        A drift band: on any bar where some asset's current weight (``position * close / value``, the value
        being cash + sum(position * close) before trading, at that bar's close) differs from its target by at
        least ``threshold`` in absolute terms, the genome's whole portfolio trades back to target on that bar,
        exactly as on a calendar rebalance. Calendar and drift triggers combine (``rebalance="once",
        threshold=0.05`` is pure drift-band rebalancing); the first bar always allocates. A number >= 0 for
        every genome, or an array (n_genomes,) (with ``segment_starts`` also (n_genomes, n_segments)); ``inf``
        or None entries have no band; 0 rebalances on every bar. None (default): calendar rebalancing only.
    fees, slippage : float
        Proportional fees on traded notional and proportional price slippage, in [0, 1).
    init_cash : float
        Starting cash of every genome.
    engine : {"fast", "vectorbt", "reference"}
        The Numba population kernel, or the reference: for spot vectorbt (``Portfolio.from_orders`` for calendar
        rebalancing, ``Portfolio.from_order_func`` when a ``threshold`` is given), for perps ``"reference"`` (the
        plain-Python loop :func:`genetic_sizer.backtest.reference.reference_genome`, drift bands included).
    market : {"spot", "perp"}
        ``"spot"``: a cash account (the semantics above). ``"perp"``: a cross-margin perpetuals account, marked to
        market every bar (see :mod:`genetic_sizer.backtest.kernels.perp`): on a rebalance bar every target is sized
        from the pre-trade equity, ``w_i * leverage * E / p_i``, fills at ``p * (1 +/- slippage)`` and pays ``fees``
        on the fill notional; funding is charged on the positions held through each bar; the account is liquidated
        when its equity falls to the maintenance margin. With leverage 1, no funding, no fees and no slippage a
        long-only perp portfolio equals the spot one. ``rebalance`` and ``threshold`` work as for spot; a perp
        weight is measured against the gross exposure ``leverage * E`` (the band fires when
        ``|q_i * p_i - w_i * leverage * E| >= threshold * leverage * E``), which is the spot test at leverage 1.
    leverage : float, array (n_genomes,) or, with ``segment_starts``, (n_genomes, n_segments)
        Perp: the gross leverage targets are sized at (> 0, at most every asset's ``max_leverage``): one for every
        genome, one per genome (a leverage gene), or one per genome and segment (a walk-forward's folds, each with
        its evolved leverage: from a segment's first bar on, its targets are sized with its leverage from the
        equity before that bar's trades).
    funding : None, False, array (n_bars, n_assets) or DataFrame
        Perp: funding rates per bar; row ``t`` holds the sum of the hourly rates paid in (t-1, t] (positive: longs
        pay, shorts receive), row 0 is never charged, NaN means 0. A DataFrame's rows must be bars of the prices
        (missing bars and symbols are 0). None (default): the rates ``close`` carries (:attr:`Prices.funding`,
        loaded next to Hyperliquid prices), or none; False: none.
    max_leverage : None, number, array (n_assets,) or {SYMBOL: x, default: y}
        Perp: each asset's maximum leverage; the maintenance margin is ``|q| * p / (2 * max_leverage)``. None: the
        exchange's margin tiers the prices carry (:attr:`Prices.margin`, from the ``meta`` saved with fetched data),
        else no maintenance margin (liquidated only when the equity reaches 0; runs refuse that). Liquidation is
        tested within each bar when the prices carry highs and lows (see :mod:`genetic_sizer.backtest.kernels.perp`).
    policy : :class:`genetic_sizer.backtest.policy.RebalancePolicy`, a mapping of its fields, or None
        What each rebalance does beyond trading to target: volatility targeting, a minimum trade, a maximum turnover
        (semantics: :mod:`genetic_sizer.backtest.kernels.rules`; spot reference: ``from_order_func``). None: none.

    Returns
    -------
    ndarray (n_bars, n_genomes)

    Raises
    ------
    GenomeError
        Invalid weights (see :func:`genetic_sizer.backtest.schedule.validate_weights`,
        :func:`genetic_sizer.backtest.schedule.validate_schedule`).
    ConfigError
        Invalid ``segment_starts``, rebalance policy, threshold, costs, engine, market, leverage or max_leverage (a
        leverage above an asset's max_leverage included).
    DataError
        ``close`` is neither Prices nor a DataFrame of valid prices; funding rates of the wrong shape or bars.
    """
    return backtest(
        close,
        weights,
        segment_starts=segment_starts,
        rebalance=rebalance,
        threshold=threshold,
        fees=fees,
        slippage=slippage,
        init_cash=init_cash,
        engine=engine,
        market=market,
        leverage=leverage,
        funding=funding,
        max_leverage=max_leverage,
        policy=policy,
    ).value


def _simulate_fast(close, w, starts, masks, mask_of, thresholds, fees, slippage, init_cash, policy=None):
    """The Numba population kernel; ``w`` (n_genomes, n_segments, n_assets), ``starts`` (n_segments,), ``masks``
    (n_masks, n_bars) with ``mask_of`` (n_genomes,), ``thresholds`` (n_genomes, n_segments)."""
    n_genomes = w.shape[0]
    n_bars = close.shape[0]
    value = np.empty((n_genomes, n_bars), dtype=np.float64)
    traded = np.empty(n_genomes, dtype=np.float64)
    rebalanced = np.empty((n_genomes, n_bars), dtype=np.bool_)
    longonly = (w >= 0).all(axis=(1, 2))
    nb.simulate_population_nb(
        close, w, starts, masks, mask_of, thresholds, fees, slippage, init_cash, longonly, value, traded, rebalanced,
        policy,
    )  # fmt: skip
    return value.T, traded, rebalanced.T


def holdings(
    close,
    weights,
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
    policy=None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """What one genome holds at every bar's close: each asset's value as a fraction of the portfolio value
    (weights drift between rebalances), computed by the reference engine (vectorbt for spot, the plain-Python
    loop for perps).

    Parameters are those of :func:`simulate` for a single genome (``weights`` (n_assets,), or
    (n_segments, n_assets) with ``segment_starts``; ``rebalance`` one policy, or with ``segment_starts`` one per
    segment; ``threshold`` and, for perps, ``leverage`` a number, or one per segment). Returns the weights over
    time (a DataFrame: time index, one column per symbol; spot: cash is what the columns leave to 1; perp: each
    position's signed notional over the bar's segment's ``leverage`` x equity, the quantity the targets are, NaN
    once the account is liquidated) and the bars it rebalanced on (n_bars,). ``policy``: as for :func:`simulate`.
    """
    prices = as_prices(close)
    w = np.asarray(weights, dtype=np.float64)
    if segment_starts is None:
        w = validate_weights(w, prices.n_assets, prices.symbols)[:, None, :]
        starts = np.zeros(1, dtype=np.int64)
    else:
        w, starts = validate_schedule(w[None], segment_starts, prices.n_bars, prices.n_assets, prices.symbols)
    if w.shape[0] != 1:
        raise GenomeError(f"holdings are those of one genome, got {w.shape[0]}")
    fees, slippage, init_cash = check_costs(fees, slippage, init_cash)
    calendar = rebalance if is_policy(rebalance) else [rebalance]
    masks, mask_of = rebalance_masks(prices.calendar_index, calendar, 1, None if segment_starts is None else starts)
    thresholds = None if threshold is None else validate_thresholds([threshold], 1, starts.size)
    ppy = prices.periods_per_year
    if market == "perp":
        max_lev, mm_rate, mm_deduct = margin_tiers(max_leverage, prices)
        rows = policy_rows(policy, 1, ppy, float(max_lev.min()))
        per_genome = leverage if np.ndim(leverage) == 0 else [leverage]
        lev = check_leverage(per_genome, 1, max_lev, prices.symbols, starts.size)[0]
        run = reference_genome(
            prices.close,
            w[0],
            starts,
            masks[mask_of[0]],
            thresholds=None if thresholds is None else thresholds[0],
            leverage=lev,
            mm_rate=mm_rate,
            mm_deduct=mm_deduct,
            funding=funding_rates(funding, prices),
            low=prices.low,
            high=prices.high,
            fees=fees,
            slippage=slippage,
            init_cash=init_cash,
            policy=None if rows is None else rows[0],
        )
        segment = np.searchsorted(starts, np.arange(prices.n_bars), side="right") - 1
        gross = lev[segment][:, None] * run["value"][:, None]  # each bar's segment's leverage x equity
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(gross > 0, run["position"] * prices.close / gross, np.nan)
        if run["liquidated"] >= 0:
            frac[run["liquidated"] :] = np.nan
        return pd.DataFrame(frac, index=prices.index, columns=list(prices.symbols)), run["rebalanced"]
    if market != "spot":
        raise ConfigError(f"market must be one of {list(V.MARKETS)}, got {market!r}")
    from genetic_sizer.backtest.vbt import vbt_portfolio  # imports vectorbt: seconds

    rows = policy_rows(policy, 1, ppy, 1.0)
    if rows is not None and thresholds is None:
        thresholds = np.full((1, starts.size), np.inf)
    pf, _, rebalanced = vbt_portfolio(prices, w, starts, masks[mask_of].T, thresholds, fees, slippage, init_cash, rows)
    asset_value = pf.asset_value(group_by=False).to_numpy()
    total = pf.value().to_numpy().reshape(-1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(total > 0, asset_value / total, np.nan)
    return pd.DataFrame(frac, index=prices.index, columns=list(prices.symbols)), rebalanced[:, 0]

"""The fitness function the evolution maps over batches of genomes (:class:`Evaluator`): the portfolio settings and
the price data, simulated and scored by :mod:`genetic_sizer.backtest` (metric definitions in
:mod:`genetic_sizer.backtest.metrics`)."""

from __future__ import annotations

import copy
import math
import weakref

import numpy as np

from genetic_sizer import vocab as V
from genetic_sizer.backtest.metrics import (
    MAXIMIZE,
    account_metrics,
    compute_metrics,
    wiped_out_fitness,
)
from genetic_sizer.backtest.resample import label, of_config, robust_fitness
from genetic_sizer.backtest.riskfree import RiskFree
from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.genes import GeneSpace
from genetic_sizer.evolution.robust import ENC_TOL, check_min_effective_assets, effective_assets, gene_weights

__all__ = ["Evaluator", "check_perp_data", "prepared_scorer"]


def check_perp_data(prices, max_leverage, *, held=None, source: str | None = None, funding: bool = True) -> None:
    """Refuse a perp account the data cannot back (a ConfigError naming the fix): no funding rates from the data
    source ``source`` although ``funding`` is wanted (``data.funding_path`` not false), no rate at all for a coin of
    ``held`` (default: every symbol) in funding rates that are there (an empty funding file, or one without rows for
    the coin), or no maintenance margin (``max_leverage`` null and no margin tiers saved with the data)."""
    from genetic_sizer.data.funding import unfunded

    if funding:
        if prices.funding is None:
            where = (
                "no funding file was found next to the prices (fetched with --no-funding?)"
                if source == "hyperliquid"
                else f"data.source {source!r} carries none"
            )
            raise ConfigError(
                f"portfolio.market perp charges funding, but {where}: set data.funding_path to a funding file "
                "(time, coin, funding_rate, as `genetic-sizer data fetch` saves it), or data.funding_path: false "
                "to simulate perpetuals without funding"
            )
        missing = unfunded(prices, held)
        if missing:
            raise ConfigError(
                f"the perp account charges funding, but the funding rates have no rate for {missing} in "
                f"{prices.index[0].isoformat()} .. {prices.index[-1].isoformat()} (an empty funding file, or one "
                "without rows for them): fetch the funding again (`genetic-sizer data fetch`), leave them out with "
                "data.symbols, or set data.funding_path: false to simulate perpetuals without funding"
            )
    if max_leverage is None and prices.margin is None:
        raise ConfigError(
            "portfolio.max_leverage is null and the data carries no margin tiers: the perp account would have no "
            "maintenance margin and be liquidated only at zero equity; set portfolio.max_leverage (a number, or "
            "{SYMBOL: x, default: y} with the exchange's caps), or fetch the data with `genetic-sizer data fetch`, "
            "which saves the exchange's meta (NAME.meta.json: each coin's max leverage and margin tiers) beside it"
        )


class Evaluator:
    """A picklable fitness function over batches of genomes: ``evaluator(batch) -> (k, n_objectives)``.

    It holds the price data and the portfolio settings; the evolution loop hands batches of genomes to it
    through an injectable ``map`` (serial, or Ray workers). Each row of a batch is a weight vector, followed by
    the genome's strategy genes when the run evolves them (``genes``, a
    :class:`~genetic_sizer.evolution.genes.GeneSpace`): every genome is then simulated with its own calendar policy,
    drift band, (perp) leverage and volatility target. Objective values are returned in their natural units and sign
    (``max_drawdown`` <= 0, ``turnover`` >= 0); which way is better is :data:`MAXIMIZE`. A wiped-out genome (value at
    or below zero at some bar), and a liquidated perp account, gets :func:`wiped_out_fitness`: ``-WIPED_OUT_FITNESS``
    in maximized objectives, ``+WIPED_OUT_FITNESS`` in minimized ones, strictly worse than any live genome's value.

    Parameters
    ----------
    prices : Prices
        With ``market="perp"``, the funding rates it carries (:attr:`~genetic_sizer.data.prices.Prices.funding`) are
        charged.
    objectives : sequence of metric names (see :data:`METRICS`)
    rebalance, fees, slippage, init_cash, engine, market, leverage, max_leverage :
        As for :func:`genetic_sizer.backtest.simulate.backtest`; ``rebalance`` and ``leverage`` are the policy and
        leverage of weights without genes.
    genes : GeneSpace, optional
        The strategy genes each row carries after its weights.
    risk_free : float, mapping or RiskFree
        What Sharpe and Sortino are measured in excess of, as ``portfolio.risk_free`` says it (an annual rate, or a
        file of rates; :class:`~genetic_sizer.backtest.riskfree.RiskFree`), aligned to ``prices`` here (:attr:`rf`,
        the per-bar rates), so a bar without a rate fails before anything runs. 0 (default): none.
    robust, seed : RobustConfig, int
        ``robust.resample`` blocks or bootstrap (indices drawn from ``seed``): the resampled fitness of
        :mod:`genetic_sizer.backtest.resample`.
    """

    def __init__(
        self,
        prices,
        objectives,
        *,
        rebalance="M",
        fees=0.0,
        slippage=0.0,
        init_cash=10_000.0,
        engine="fast",
        market="spot",
        leverage=1.0,
        max_leverage=None,
        genes=None,
        risk_free=0.0,
        robust=None,
        seed=0,
        shrink_toward=None,
        min_effective_assets=None,
        policy=None,
    ):
        unknown = [o for o in objectives if o not in MAXIMIZE]
        if unknown or not objectives:
            raise ConfigError(f"objective must be names from {sorted(MAXIMIZE)}, got {list(objectives)!r}")
        if engine not in V.ENGINES:
            raise ConfigError(f"engine must be one of {list(V.ENGINES)}, got {engine!r}")
        if market not in V.MARKETS:
            raise ConfigError(f"market must be one of {list(V.MARKETS)}, got {market!r}")
        if market == "perp" and engine == "vectorbt":
            raise ConfigError(
                "engine 'vectorbt' has no perpetuals account (vectorbt issue #639): use engine 'fast' with market "
                "perp (champions are checked against the plain-Python reference loop)"
            )
        self.prices = prices
        self.objectives = tuple(objectives)
        self.rebalance = rebalance
        self.fees = float(fees)
        self.slippage = float(slippage)
        self.init_cash = float(init_cash)
        self.engine = engine
        self.market = market
        self.leverage = leverage
        self.max_leverage = max_leverage
        self.genes = genes
        self.risk_free = RiskFree.of(risk_free)
        self.rf = self.risk_free.rates(prices)
        self.trial_sharpe = False
        self.resampling = robust if robust is not None and robust.resample != "none" else None  # RobustConfig
        self.seed = int(seed)
        self._resamples = None
        self.shrink_toward, self._shrink_target = shrink_toward, None  # a shrink gene: evolution.robust.gene_target
        self.min_effective_assets, self.policy = min_effective_assets, policy  # the norm constraint; rebalancing
        caps = np.empty(0)
        if market == "perp":  # a leverage above an asset's max_leverage: a ConfigError before anything runs
            from genetic_sizer.backtest.inputs import check_leverage, margin_tiers

            caps = margin_tiers(max_leverage, prices)[0]  # the exchange's, saved with the data, when not given
            check_leverage(leverage, 1, caps, prices.symbols)
        if genes is not None:  # a leverage gene: the perp account, and its range within every asset's max_leverage
            genes.check_max_leverage(caps, prices.symbols, market)

    @property
    def n_genes(self) -> int:
        """Genes after the weights in each row of a batch (0 without strategy genes)."""
        return 0 if self.genes is None else self.genes.n

    def with_trial_sharpe(self) -> Evaluator:
        """A copy whose call returns one more column after the objectives: each genome's in-sample per-period
        (not annualized) Sharpe ratio, which the evolution records for every trial
        (:mod:`genetic_sizer.evolution.trials`). Draws the :attr:`resamples` first: the copy takes them to workers."""
        _ = self.resamples
        other = copy.copy(self)
        other.trial_sharpe = True
        return other

    @classmethod
    def from_config(cls, prices, config) -> Evaluator:
        """The evaluator a :class:`~genetic_sizer.config.RunConfig` describes, on ``prices`` (with the strategy
        genes of ``evolution.genes``, if any).

        A perp run needs funding rates on ``prices`` for every coin unless ``data.funding_path`` is false: evolving
        perpetuals without their funding is the spot backtest the perp account exists to replace, and a coin the
        funding file has no rate for would be charged nothing. It needs a maintenance margin too: ``portfolio.
        max_leverage`` or the exchange's margin tiers saved with the data (:attr:`~genetic_sizer.data.prices.Prices.
        margin`); without either the account would be liquidated only at zero equity.
        """
        pf = config.portfolio
        if pf.market == "perp":
            funding = config.data.funding_path is not False
            check_perp_data(prices, pf.max_leverage, source=config.data.source, funding=funding)
        return cls(
            prices,
            config.objective,
            rebalance=pf.rebalance,
            fees=pf.fees,
            slippage=pf.slippage,
            init_cash=pf.init_cash,
            engine=config.engine,
            genes=GeneSpace.from_config(config),
            risk_free=pf.risk_free,
            robust=getattr(config, "robust", None),
            seed=config.evolution.seed,
            shrink_toward=_shrink_spec(config),
            min_effective_assets=_min_effective_assets(config, prices),
            policy=_policy(config),
            **pf.account(),
        )

    @property
    def maximize(self) -> tuple[bool, ...]:
        return tuple(MAXIMIZE[o] for o in self.objectives)

    @property
    def wiped_out_fitness(self) -> np.ndarray:
        """The fitness given to a wiped-out genome, one value per objective."""
        return wiped_out_fitness(self.objectives)

    def is_wiped_out(self, fitness) -> np.ndarray:
        """Which rows of a fitness array (n_genomes, n_objectives) this evaluator gave to wiped-out (or liquidated)
        genomes."""
        f = np.asarray(fitness, dtype=np.float64).reshape(-1, len(self.objectives))
        return (f == self.wiped_out_fitness).all(axis=1)

    def strategy_of(self, genes=None) -> tuple:
        """``(rebalance, threshold, leverage)`` for :func:`~genetic_sizer.backtest.simulate.backtest`: the genomes' own
        policies, drift bands and (perp, with a leverage gene) leverages when ``genes`` (n, n_genes) are given, else
        the portfolio's policy without a band at the portfolio's leverage."""
        if genes is None or self.genes is None:
            return self.rebalance, None, self.leverage
        genes = np.asarray(genes, dtype=np.float64).reshape(-1, self.genes.n)
        policies = self.genes.policies(genes)
        rebalance = policies[0] if len(set(policies)) == 1 else policies
        leverage = self.genes.leverages(genes)
        return rebalance, self.genes.thresholds(genes), self.leverage if leverage is None else leverage

    def backtest(self, weights, engine: str | None = None, genes=None):
        """The :class:`~genetic_sizer.backtest.simulate.Backtest` of ``weights`` (n_genomes, n_assets), with each
        genome's strategy ``genes`` (n_genomes, n_genes) when given (else the portfolio's policy, no drift band, the
        portfolio's leverage)."""
        from genetic_sizer.backtest.simulate import backtest

        rebalance, threshold, leverage = self.strategy_of(genes)
        return backtest(
            self.prices,
            weights,
            rebalance=rebalance,
            threshold=threshold,
            fees=self.fees,
            slippage=self.slippage,
            init_cash=self.init_cash,
            engine=engine or self.engine,
            **self.account(leverage, genes),
        )

    def backtest_strategies(self, weights, strategies, engine: str | None = None):
        """The :class:`~genetic_sizer.backtest.simulate.Backtest` of ``weights`` (n_genomes, n_assets), genome ``g``
        kept by ``strategies[g]`` (``{"rebalance": policy, "threshold": band or None}``, perp also ``"leverage"``,
        else the portfolio's, and an evolved ``"vol_target"``; None: the portfolio's policy, no band). E.g. a champion
        with its evolved strategy beside classical allocations with the run's policy."""
        from genetic_sizer.backtest.simulate import backtest

        strategies = [s or {"rebalance": self.rebalance, "threshold": None} for s in strategies]
        leverage = [s.get("leverage") for s in strategies]
        if self.market != "perp" and any(x is not None for x in leverage):
            raise ConfigError("a strategy's leverage is a setting of market perp; the spot account has none")
        return backtest(
            self.prices,
            weights,
            rebalance=[s["rebalance"] for s in strategies],
            threshold=[s["threshold"] for s in strategies],
            fees=self.fees,
            slippage=self.slippage,
            init_cash=self.init_cash,
            engine=engine or self.engine,
            **self.account([self.leverage if x is None else x for x in leverage], strategies=strategies),
        )

    def account(self, leverage=None, genes=None, strategies=None) -> dict:
        """The account-model keywords this evaluator passes to :func:`genetic_sizer.backtest.simulate.backtest`
        (:func:`_account_keywords`), with the genomes' own ``vol_target`` from ``genes`` or ``strategies``."""
        lev = self.leverage if leverage is None else leverage
        return _account_keywords(self.market, lev, self.max_leverage, policy_of(self, genes, strategies))

    @property
    def reference_engine(self) -> str:
        """The engine a champion's figures are re-checked against: vectorbt for spot, the plain-Python loop for
        perps."""
        return V.REFERENCE_ENGINES[self.market]

    def metrics_of(self, bt) -> dict[str, np.ndarray]:
        """Every metric of a backtest of this evaluator's settings (with the account figures of a perp backtest)."""
        ppy = self.prices.periods_per_year
        m = compute_metrics(
            bt.value, init_cash=self.init_cash, periods_per_year=ppy, traded=bt.traded, risk_free=self.rf
        )
        m.update(account_metrics(bt))
        return m

    def metrics(self, weights, engine: str | None = None, genes=None, *, resampled: bool = False):
        """Every metric of every genome in ``weights`` (n_genomes, n_assets) (with their ``genes``, if given).

        With the fast engine this is :func:`genetic_sizer.backtest.simulate.score` through the evaluator's prepared
        scorer (:func:`prepared_scorer`), which simulates and scores each genome in one pass without a value matrix
        (the fitness path); the figures equal :meth:`metrics_of` of
        :meth:`backtest` bit for bit, which the other engines compute. ``resampled``: ``(metrics, every metric on
        each of the K resamples (name -> (n_genomes, K)) of the same simulation)``, with a resampled fitness.
        """
        engine = engine or self.engine
        res = self.resamples if resampled else None
        if engine != "fast" and res is None:
            return self.metrics_of(self.backtest(weights, engine, genes))
        from genetic_sizer.backtest.kernels import threads_for

        with threads_for(np.size(weights) * self.prices.n_bars):  # a small batch: one thread (bit-for-bit the same)
            if engine == "fast":  # the settings checked once (the scorer); the genomes and their genes on every call
                return prepared_scorer(self)(weights, resamples=res, **_gene_settings(self, genes))
            from genetic_sizer.backtest.simulate import score

            rebalance, threshold, leverage = self.strategy_of(genes)
            return score(
                self.prices, weights, rebalance=rebalance, threshold=threshold, fees=self.fees, slippage=self.slippage,
                init_cash=self.init_cash, engine=engine, periods_per_year=self.prices.periods_per_year,
                risk_free=self.rf, resamples=res, **self.account(leverage, genes),
            )  # fmt: skip

    @property
    def resamples(self):
        """The window's :class:`~genetic_sizer.backtest.resample.Resamples` (None: plain), drawn on first use."""
        if self.resampling is not None and self._resamples is None:  # lazily: a held-out window only serves metrics
            self._resamples = of_config(self.resampling, self.prices.n_bars, self.seed)
        return self._resamples

    @property
    def fitness_label(self) -> str:
        """The fitness computed, as the logbook's ``fitness`` column names it (``blocks K=4 mean_std penalty=1``)."""
        return label(self.resampling, self.resamples)

    def split(self, batch) -> tuple[np.ndarray, np.ndarray | None]:
        """A batch's rows as ``(weights, genes)`` (genes None without strategy genes)."""
        rows = np.asarray(batch, dtype=np.float64)
        if self.genes is None:
            return rows, None
        n_assets = rows.shape[-1] - self.genes.n
        return rows[..., :n_assets], rows[..., n_assets:]

    def __call__(self, batch) -> np.ndarray:
        weights, genes = self.split(batch)
        weights, unprojectable = gene_weights(self, weights, genes)  # shrink gene: the projected mix (as deployed)
        if self.resampling is None:
            m = self.metrics(weights, genes=genes)
            out = _columns([m[o] for o in self.objectives], self.trial_sharpe)  # and room for the trial Sharpe
        else:  # the resampled fitness; the wiped-out test and the trial Sharpe stay whole-window
            m, resampled = self.metrics(weights, genes=genes, resampled=True)
            out = _columns(robust_fitness(resampled, self.objectives, self.resampling).T, self.trial_sharpe)
        fitness = out[:, : len(self.objectives)]
        lost = (m["wiped_out"] > 0) | (False if unprojectable is None else unprojectable)  # no valid projection
        if "liquidated" in m:  # a liquidated account is the worst outcome, whatever it earned before
            lost |= m["liquidated"] > 0
        if self.min_effective_assets is not None:  # 1 / sum(w^2) under the floor: ranked with the wiped-out genomes
            lost |= effective_assets(weights) < self.min_effective_assets - ENC_TOL
        fitness[lost] = self.wiped_out_fitness
        if self.trial_sharpe:
            out[:, -1] = m["sharpe"] / math.sqrt(self.prices.periods_per_year)
        return out


def _columns(columns, extra: bool) -> np.ndarray:
    """The fitness array (n, k) of ``k`` columns (each (n,)), with one more, unfilled, when ``extra``."""
    out = np.empty((len(columns[0]), len(columns) + extra))
    for j, column in enumerate(columns):
        out[:, j] = column
    return out


_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Each evaluator's prepared scorer with the settings it was prepared from (:func:`prepared_scorer`): kept beside the
evaluator, not in it, so that neither a pickled evaluator (a Ray worker's) nor a copy carries it."""


def prepared_scorer(evaluator: Evaluator):
    """The fast engine's :class:`~genetic_sizer.backtest.scorer.Scorer` of an evaluator's settings (its prices, the
    portfolio's policy, costs, account, rebalancing policy and risk-free rates), which :meth:`Evaluator.metrics` scores
    with: prepared on the first call, again when one of those settings was replaced."""
    ev = evaluator
    key = (ev.prices, ev.rebalance, ev.fees, ev.slippage, ev.init_cash, ev.market, ev.leverage, ev.max_leverage)
    key += (ev.rf, ev.policy)
    prepared = _PREPARED.get(ev)
    if prepared is not None and all(a is b for a, b in zip(prepared[0], key, strict=True)):
        return prepared[1]
    from genetic_sizer.backtest.scorer import Scorer

    scorer = Scorer(
        ev.prices,
        rebalance=ev.rebalance,
        fees=ev.fees,
        slippage=ev.slippage,
        init_cash=ev.init_cash,
        periods_per_year=ev.prices.periods_per_year,
        risk_free=ev.rf,
        **ev.account(),
    )
    _PREPARED[ev] = (key, scorer)
    return scorer


def _gene_settings(evaluator: Evaluator, genes) -> dict:
    """The per-genome settings of the genomes' strategy ``genes`` (n, n_genes) as a
    :class:`~genetic_sizer.backtest.scorer.Scorer` call takes them; those left as the portfolio's (the scorer's own)
    are not given. None or no genes: none."""
    if genes is None or evaluator.genes is None:
        return {}
    rebalance, threshold, leverage = evaluator.strategy_of(genes)
    out = {"threshold": threshold}
    if rebalance is not evaluator.rebalance:
        out["rebalance"] = rebalance
    if evaluator.market == "perp" and leverage is not evaluator.leverage:
        out["leverage"] = leverage
    policy = policy_of(evaluator, genes)
    if policy is not evaluator.policy:
        out["policy"] = policy
    return out


def _account_keywords(market, leverage, max_leverage, policy) -> dict:
    """The account-model keywords of :func:`genetic_sizer.backtest.simulate.backtest` (perp: at ``leverage``, one number
    or one per genome), with the rebalancing ``policy`` (RebalancePolicy keywords) when there is one."""
    out = {} if policy is None else {"policy": policy}
    if market == "spot":
        return out
    return {"market": market, "leverage": leverage, "max_leverage": max_leverage, **out}


def policy_of(evaluator, genes=None, strategies=None) -> dict | None:
    """The rebalancing policy (RebalancePolicy keywords) of an evaluator's genomes: the portfolio's
    (``evaluator.policy``), with one ``vol_target`` per genome (the kernels' policy rows are per genome) from their
    ``genes`` (n, n_genes) when the run evolves a ``vol_target`` gene, or from ``strategies`` when one carries an
    evolved ``vol_target`` (the others keep ``portfolio.vol_target``; 0: none)."""
    policy = evaluator.policy
    if genes is not None and evaluator.genes is not None and evaluator.genes.vol_target is not None:
        vt = evaluator.genes.vol_targets(genes)
    elif strategies is not None and any(s.get("vol_target") is not None for s in strategies):
        base = (policy or {}).get("vol_target") or 0.0
        vt = np.array([base if s.get("vol_target") is None else s["vol_target"] for s in strategies], dtype=np.float64)
    else:
        return policy
    return {**(policy or {}), "vol_target": vt}


def _policy(config) -> dict | None:
    """The portfolio's rebalancing policy (RebalancePolicy keywords, None: the defaults), carrying
    ``portfolio.vol_lookback`` when the run evolves a ``vol_target`` gene (the lookback of every genome's target)."""
    policy = config.portfolio.policy()
    if policy is None and "vol_target" in (config.evolution.genes or {}):
        policy = {"vol_lookback": config.portfolio.vol_lookback}
    return policy


def _shrink_spec(config) -> tuple | None:
    """``(robust.shrink_toward, portfolio, allocators)`` when the config evolves a ``shrink`` gene, else None: the
    ``allocators:`` section fits a classical target with the settings the deployment uses (budgets, views)."""
    genes = config.evolution.genes or {}
    robust = getattr(config, "robust", None)
    if "shrink" not in genes:
        return None
    toward = "equal_weight" if robust is None else robust.shrink_toward
    return toward, config.portfolio, getattr(config, "allocators", None)


def _min_effective_assets(config, prices) -> float | None:
    """``portfolio.min_effective_assets``, checked against the space it constrains (None when unset)."""
    value = getattr(config.portfolio, "min_effective_assets", None)
    if value is not None:
        from genetic_sizer.evolution.space import GenomeSpace

        check_min_effective_assets(GenomeSpace.from_config(prices.symbols, config.portfolio), value)
    return value

"""Fitness metrics of whole populations at once, on top of the Numba kernels in :mod:`genetic_sizer.backtest.kernels.spot`.

Definitions (all per genome, from the value series ``v`` of n bars and ``init_cash``):

=========================  ===================================================================
``total_return``           ``v[-1] / init_cash - 1``
``annualized_return``      ``prod(1 + r) ** (periods_per_year / n) - 1`` (CAGR)
``cagr``                   alias of ``annualized_return``
``annualized_volatility``  ``std(r, ddof=1) * sqrt(periods_per_year)``
``sharpe``                 ``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)``
``sortino``                ``mean(r) * ppy / (sqrt(mean(min(r, 0)**2)) * sqrt(ppy))``
``calmar``                 ``annualized_return / |max_drawdown|``
``max_drawdown``           ``min(v / running_max(v) - 1)``, a number in ``[-1, 0]`` (vectorbt's sign)
``turnover``               annualized two-way turnover: the traded notional (buys plus sells, at fill
                           prices) of each rebalance after the first, divided by the portfolio value
                           just before it, summed and multiplied by ``periods_per_year / n``. At a
                           rebalance this is ``sum_k |w_k - w_before_k|`` without costs (a switch of
                           the whole book from one asset to another counts 2); 1.0 a year means trades
                           worth the whole book a year, e.g. half of it sold and replaced
``wiped_out``              1.0 if the value reached zero or below at some bar, else 0.0
=========================  ===================================================================

A perp account (``market: perp``) also reports, through :meth:`Evaluator.metrics` and :meth:`Evaluator.metrics_of`
(:func:`account_metrics`):

=========================  ===================================================================
``funding_paid``           funding paid over the run, in the account's currency (>= 0)
``funding_received``       funding received over the run (>= 0)
``fees_paid``              trading fees paid over the run (>= 0; slippage is in the fills)
``liquidated``             1.0 if the account was liquidated (its equity fell to the maintenance
                           margin), else 0.0
=========================  ===================================================================

where ``r[0] = v[0] / init_cash - 1`` and ``r[i] = v[i] / v[i-1] - 1``. These are vectorbt's definitions
(``pf.sharpe_ratio()`` and friends, with ``freq`` and ``year_freq`` giving ``periods_per_year`` bars a
year), and the test suite checks them against vectorbt to 1e-9 relative. Where vectorbt returns ``inf``,
``nan`` or a figure made of rounding noise, these return finite values that keep the ranking monotone:

* every metric lies in ``[-CAP, CAP]`` (:data:`CAP` = 1e12);
* a ratio with a zero denominator (Sharpe without volatility, Sortino without downside, Calmar without
  drawdown) is ``+CAP``, ``-CAP`` or 0 by the sign of its numerator (mean return; annualized return for
  Calmar). Dispersions and drawdowns within rounding noise of zero (:data:`genetic_sizer.backtest.kernels.spot.NOISE` =
  1e-12) count as zero, and so does a numerator within it of zero (the ratio is then 0). So a
  constant-return series has Sharpe ``+CAP``, not 1e15, and a genome that gains without ever losing
  ranks at or above every genome with a loss in Sortino and Calmar;
* a genome whose value reaches zero or below at any bar (a long/short portfolio whose shorts rallied) is
  *wiped out*: it is measured on the returns up to that bar, where it is worth 0, so ``total_return``,
  ``annualized_return`` and ``max_drawdown`` are -1 and ``calmar`` is -1 (vectorbt reports the value
  going through zero, e.g. a drawdown of -4.5, -450 %). The simulation itself is not changed: it
  equals vectorbt's. For selection, :class:`Evaluator` gives a wiped-out genome
  :data:`WIPED_OUT_FITNESS` in every objective, worse than any live genome;
* a liquidated perp account keeps what the liquidation left (``max(equity, 0)``) and never trades again; its
  metrics describe that path, but for selection it is treated like a wiped-out genome: the worst outcome,
  whatever its Sharpe ratio up to the liquidation was.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from genetic_sizer import vocab as V
from genetic_sizer.backtest.kernels import spot as nb
from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.genes import GeneSpace

__all__ = [
    "ACCOUNT_METRICS",
    "CAP",
    "MAXIMIZE",
    "METRICS",
    "WIPED_OUT_FITNESS",
    "Evaluator",
    "account_metrics",
    "compute_metrics",
    "wiped_out_fitness",
]

CAP = nb.CAP
"""Every metric lies in ``[-CAP, CAP]``; an unbounded ratio (zero denominator) is ``+CAP`` or ``-CAP``."""

WIPED_OUT_FITNESS = 10 * CAP
"""Magnitude of a wiped-out genome's fitness: ``-WIPED_OUT_FITNESS`` for a maximized objective,
``+WIPED_OUT_FITNESS`` for a minimized one. Every live genome's value lies in ``[-CAP, CAP]``, so this is
strictly worse, yet finite (the evolution loop and NSGA-II's crowding distance need finite fitness)."""

ACCOUNT_METRICS = ("funding_paid", "funding_received", "fees_paid", "liquidated")
"""What a perp backtest reports beyond the value-based metrics (see :func:`account_metrics`)."""

METRICS = (*(m for m in nb.METRIC_NAMES if m != "wiped_out"), "cagr", "turnover", "wiped_out", *ACCOUNT_METRICS)

MAXIMIZE = V.OBJECTIVES
"""For each objective, whether a larger value is better (``wiped_out`` is a flag, not an objective)."""


def wiped_out_fitness(objectives) -> np.ndarray:
    """The fitness of a wiped-out genome: the worst possible value of each objective (see WIPED_OUT_FITNESS)."""
    return np.array([-WIPED_OUT_FITNESS if MAXIMIZE[o] else WIPED_OUT_FITNESS for o in objectives])


def compute_metrics(
    values,
    *,
    init_cash: float,
    periods_per_year: float,
    traded=None,
) -> dict[str, np.ndarray]:
    """Every fitness metric for every genome.

    Parameters
    ----------
    values : array (n_bars, n_genomes) or (n_bars,)
        Portfolio values, as returned by :func:`genetic_sizer.backtest.simulate.simulate`.
    init_cash : float
        The value before the first bar.
    periods_per_year : float
        Bars per year (``Prices.periods_per_year``).
    traded : array (n_genomes,), optional
        ``Backtest.traded`` from :func:`genetic_sizer.backtest.simulate.backtest`; when given, ``turnover`` is
        reported.

    Returns
    -------
    dict of metric name -> float64 array (n_genomes,)
        Every name of :data:`METRICS` (``turnover`` only with ``traded``); ``wiped_out`` is 1.0 or 0.0.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2 or v.shape[0] < 2:
        raise ConfigError(f"values must be (n_bars >= 2, n_genomes), got shape {np.shape(values)}")
    if not (math.isfinite(init_cash) and init_cash > 0):
        raise ConfigError(f"init_cash must be a positive finite number, got {init_cash!r}")
    periods_per_year = check_periods_per_year(periods_per_year)
    if not np.isfinite(v).all():
        raise ConfigError("values contain NaN or infinity")
    vg = np.ascontiguousarray(v.T)  # genome-major for the kernel
    out = np.empty((len(nb.METRIC_NAMES), vg.shape[0]), dtype=np.float64)
    nb.metrics_nb(vg, float(init_cash), float(periods_per_year), out)
    result = {name: out[i] for i, name in enumerate(nb.METRIC_NAMES)}
    result["cagr"] = result["annualized_return"]
    if traded is not None:
        traded = np.asarray(traded, dtype=np.float64)
        if traded.shape != (vg.shape[0],):
            raise ConfigError(f"traded must have shape ({vg.shape[0]},), got {traded.shape}")
        result["turnover"] = annualized_turnover(traded, periods_per_year, v.shape[0])
    return result


def check_periods_per_year(periods_per_year) -> float:
    """``periods_per_year`` as a float, or a ConfigError unless it is a positive finite number."""
    ok = isinstance(periods_per_year, (int, float, np.integer, np.floating))
    if not (ok and math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ConfigError(f"periods_per_year must be a positive finite number, got {periods_per_year!r}")
    return float(periods_per_year)


def annualized_turnover(traded, periods_per_year: float, n_bars: int) -> np.ndarray:
    """The ``turnover`` metric from the turnover sums ``traded`` (n_genomes,) of a backtest of ``n_bars`` bars."""
    return np.minimum(np.asarray(traded, dtype=np.float64) * (periods_per_year / n_bars), CAP)


def liquidated_flag(liquidation_bar) -> np.ndarray:
    """The ``liquidated`` metric (1.0 or 0.0) from each genome's liquidation bar (-1: never)."""
    return (np.asarray(liquidation_bar) >= 0).astype(np.float64)


def account_metrics(bt) -> dict[str, np.ndarray]:
    """The account figures of a perp :class:`~genetic_sizer.backtest.simulate.Backtest` (``{}`` for spot): funding paid and
    received and fees paid, in the account's currency, and ``liquidated`` (1.0 or 0.0)."""
    if bt.market != "perp":
        return {}
    return {
        "funding_paid": np.asarray(bt.funding_paid, dtype=np.float64),
        "funding_received": np.asarray(bt.funding_received, dtype=np.float64),
        "fees_paid": np.asarray(bt.fees_paid, dtype=np.float64),
        "liquidated": liquidated_flag(bt.liquidated),
    }


class Evaluator:
    """A picklable fitness function over batches of genomes: ``evaluator(batch) -> (k, n_objectives)``.

    It holds the price data and the portfolio settings; the evolution loop hands batches of genomes to it
    through an injectable ``map`` (serial, or Ray workers). Each row of a batch is a weight vector, followed by
    the genome's strategy genes when the run evolves them (``genes``, a :class:`~genetic_sizer.evolution.genes.GeneSpace`):
    every genome is then simulated with its own calendar policy, drift band and (perp) leverage. Objective values
    are returned in their natural units and sign (``max_drawdown`` <= 0, ``turnover`` >= 0); which way is better is
    :data:`MAXIMIZE`. A wiped-out genome (value at or below zero at some bar), and a liquidated perp account,
    gets :func:`wiped_out_fitness` instead: ``-WIPED_OUT_FITNESS`` in every maximized objective and
    ``+WIPED_OUT_FITNESS`` in every minimized one, strictly worse than any live genome's value.

    Parameters
    ----------
    prices : Prices
        With ``market="perp"``, the funding rates it carries (:attr:`~genetic_sizer.data.prices.Prices.funding`) are
        charged.
    objectives : sequence of metric names (see :data:`METRICS`)
    rebalance, fees, slippage, init_cash, engine, market, leverage, max_leverage :
        As for :func:`genetic_sizer.backtest.simulate.backtest`; ``rebalance`` and ``leverage`` are the policy and leverage of
        weights without genes.
    genes : GeneSpace, optional
        The strategy genes each row carries after its weights.
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
        self.trial_sharpe = False
        caps = np.empty(0)
        if market == "perp":  # a leverage above an asset's max_leverage: a ConfigError before anything runs
            from genetic_sizer.backtest.simulate import check_leverage, resolve_max_leverage

            caps = resolve_max_leverage(max_leverage, prices.symbols)
            check_leverage(leverage, 1, caps, prices.symbols)
        if genes is not None:  # a leverage gene: the perp account, and its range within every asset's max_leverage
            genes.check_max_leverage(caps, prices.symbols, market)

    @property
    def n_genes(self) -> int:
        """Genes after the weights in each row of a batch (0 without strategy genes)."""
        return 0 if self.genes is None else self.genes.n

    def with_trial_sharpe(self) -> Evaluator:
        """A copy whose call returns one more column after the objectives: each genome's in-sample per-period
        (not annualized) Sharpe ratio, which the evolution records for every trial (:mod:`genetic_sizer.evolution.trials`)."""
        other = copy.copy(self)
        other.trial_sharpe = True
        return other

    @classmethod
    def from_config(cls, prices, config) -> Evaluator:
        """The evaluator a :class:`~genetic_sizer.config.RunConfig` describes, on ``prices`` (with the strategy
        genes of ``evolution.genes``, if any).

        A perp run needs funding rates on ``prices`` unless ``data.funding_path`` is false: evolving perpetuals
        without their funding is the spot backtest the perp account exists to replace.
        """
        pf = config.portfolio
        if pf.market == "perp" and prices.funding is None and config.data.funding_path is not False:
            where = (
                "no funding file was found next to the prices (fetched with --no-funding?)"
                if config.data.source == "hyperliquid"
                else f"data.source {config.data.source!r} carries none"
            )
            raise ConfigError(
                f"portfolio.market perp charges funding, but {where}: set data.funding_path to a funding file "
                "(time, coin, funding_rate, as `genetic-sizer data fetch` saves it), or data.funding_path: false "
                "to simulate perpetuals without funding"
            )
        return cls(
            prices,
            config.objective,
            rebalance=pf.rebalance,
            fees=pf.fees,
            slippage=pf.slippage,
            init_cash=pf.init_cash,
            engine=config.engine,
            genes=GeneSpace.from_config(config),
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
        """The :class:`~genetic_sizer.backtest.simulate.Backtest` of ``weights`` (n_genomes, n_assets), with each genome's
        strategy ``genes`` (n_genomes, n_genes) when given (else the portfolio's policy, no drift band, the
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
            **self.account(leverage),
        )

    def backtest_strategies(self, weights, strategies, engine: str | None = None):
        """The :class:`~genetic_sizer.backtest.simulate.Backtest` of ``weights`` (n_genomes, n_assets), genome ``g`` kept by
        ``strategies[g]`` (``{"rebalance": policy, "threshold": band or None}``, perp also ``"leverage"``, else the
        portfolio's; None: the portfolio's policy, no band). E.g. a champion with its evolved strategy beside
        classical allocations with the run's policy."""
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
            **self.account([self.leverage if x is None else x for x in leverage]),
        )

    def account(self, leverage=None) -> dict:
        """The account-model keywords this evaluator passes to :func:`genetic_sizer.backtest.simulate.backtest` (perp: at
        ``leverage``, one number or one per genome, when given, else the portfolio's)."""
        if self.market == "spot":
            return {}
        lev = self.leverage if leverage is None else leverage
        return {"market": self.market, "leverage": lev, "max_leverage": self.max_leverage}

    @property
    def reference_engine(self) -> str:
        """The engine a champion's figures are re-checked against: vectorbt for spot, the plain-Python loop for
        perps."""
        return V.REFERENCE_ENGINES[self.market]

    def metrics_of(self, bt) -> dict[str, np.ndarray]:
        """Every metric of a backtest of this evaluator's settings (with the account figures of a perp backtest)."""
        m = compute_metrics(
            bt.value, init_cash=self.init_cash, periods_per_year=self.prices.periods_per_year, traded=bt.traded
        )
        m.update(account_metrics(bt))
        return m

    def metrics(self, weights, engine: str | None = None, genes=None) -> dict[str, np.ndarray]:
        """Every metric of every genome in ``weights`` (n_genomes, n_assets) (with their ``genes``, if given).

        With the fast engine this is :func:`genetic_sizer.backtest.simulate.score`, which simulates and scores each genome in
        one pass without a value matrix (the fitness path); the figures equal :meth:`metrics_of` of
        :meth:`backtest` bit for bit, which the other engines compute.
        """
        engine = engine or self.engine
        if engine != "fast":
            return self.metrics_of(self.backtest(weights, engine, genes))
        from genetic_sizer.backtest.simulate import score

        rebalance, threshold, leverage = self.strategy_of(genes)
        return score(
            self.prices,
            weights,
            rebalance=rebalance,
            threshold=threshold,
            fees=self.fees,
            slippage=self.slippage,
            init_cash=self.init_cash,
            periods_per_year=self.prices.periods_per_year,
            **self.account(leverage),
        )

    def split(self, batch) -> tuple[np.ndarray, np.ndarray | None]:
        """A batch's rows as ``(weights, genes)`` (genes None without strategy genes)."""
        rows = np.asarray(batch, dtype=np.float64)
        if self.genes is None:
            return rows, None
        n_assets = rows.shape[-1] - self.genes.n
        return rows[..., :n_assets], rows[..., n_assets:]

    def __call__(self, batch) -> np.ndarray:
        weights, genes = self.split(batch)
        m = self.metrics(weights, genes=genes)
        fitness = np.column_stack([m[o] for o in self.objectives])
        lost = m["wiped_out"] > 0
        if "liquidated" in m:  # a liquidated account is the worst outcome, whatever it earned before
            lost |= m["liquidated"] > 0
        fitness[lost] = self.wiped_out_fitness
        if self.trial_sharpe:
            return np.column_stack([fitness, m["sharpe"] / math.sqrt(self.prices.periods_per_year)])
        return fitness

"""Run configuration: typed, validated, loaded from YAML (``configs/*.yaml``) with ``--set`` overrides.

Every error is a :class:`ConfigError` that names the key (``evolution.population``) and the value. A
config round-trips through :meth:`RunConfig.to_dict`, and :meth:`RunConfig.sha256` fingerprints it for
the champion file and for ``--resume``.

Layout (every key optional; these are the defaults)::

    data: {source: default, path: null,  # source: default | csv | parquet | hyperliquid (a fetched file)
           symbols: null, start: null, end: null, leading_gaps: trim,
           periods_per_year: null,
           funding_path: null,          # null: the funding file saved next to hyperliquid prices; a path; false
           kind: prices,                # prices | returns (csv/parquet of per-period simple returns, compounded)
           returns_unit: null,          # kind returns: fraction (0.012) | percent (1.2); never guessed
           strategies: null}            # [run dir, {name: run dir}, ...]: earlier champions' return streams as
                                        # the assets (genetic_sizer.runs.strategies)
    portfolio: {market: spot,           # spot | perp (leverage, hourly funding, taker fees, liquidation)
                leverage: 1,            # perp: gross leverage the weights are sized at
                max_leverage: null,     # perp: {SYMBOL: x, default: y}; null: the fetched NAME.meta.json's tiers
                direction: longonly, min_weight: 0.0, max_weight: 1.0, rebalance: M,
                fees: null,             # null: 0.0005 for spot, 0.00045 (Hyperliquid's base taker fee) for perp
                slippage: 0.0, init_cash: 10000,
                risk_free: 0.0,         # annual rate Sharpe/Sortino are measured in excess of, or {path, column, kind}
                max_assets: null, min_assets: null, min_position: 0.001, groups: null, max_group_weight: null,
                min_group_weight: null, net_exposure: null, max_gross_long: null, max_gross_short: null,
                min_effective_assets: null,   # 1 / sum(w^2) >= this (DeMiguel et al. 2009's norm constraint)
                vol_target: null, vol_lookback: 20, min_trade: 0.0, min_trade_value: 0.0, max_turnover: null}
                                 # rebalancing policies (genetic_sizer.config.rebalance)
    objective: sharpe            # or a list for NSGA-II, e.g. [sharpe, max_drawdown, turnover]
    evolution: {population: 200, generations: 50, seed: 42, seed_with_classical: false, ...,
                genes: null}     # strategy genes evolved beside the weights, e.g.
                                 # {threshold: [0.0, 0.2], rebalance: [W, M, Q, once]} (genetic_sizer.evolution.genes);
                                 # perp also {leverage: [lo, hi]}, hi <= every asset's max_leverage;
                                 # {shrink: [lo, hi]}: evolved mixing toward robust.shrink_toward
    engine: fast                 # fast | vectorbt
    parallel: {backend: serial}  # or {backend: ray, address: null, num_workers: null, batch_size: null}
    run: {storage: null,         # where run directories go without --out: a path or an fsspec URL (default runs/)
          checkpoint_every: 5}   # seconds between checkpoints of an evolution (0: after every generation)
    robust: {...}                # out-of-sample-aimed fitness and selection: genetic_sizer.config.robust
    allocators: {...}            # budgets, Black-Litterman views, a market-cap file: genetic_sizer.config.allocators

``min_weight`` / ``max_weight`` are numbers or ``{SYMBOL: number, default: number}`` mappings. The constraint
keys (``max_assets`` ... ``max_gross_short``) are described in :mod:`genetic_sizer.evolution.constraints`; their types
and ranges are checked here, their symbols and feasibility when the genome space is built from the data.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genetic_sizer import vocab as V
from genetic_sizer.config import rebalance
from genetic_sizer.config.allocators import AllocatorsConfig
from genetic_sizer.config.robust import RobustConfig
from genetic_sizer.config.strategies import check_strategies, strategy_dirs
from genetic_sizer.config.yamlio import apply_overrides, parse_yaml, read_yaml
from genetic_sizer.errors import ConfigError

__all__ = [
    "AllocatorsConfig",
    "DataConfig",
    "EvolutionConfig",
    "ParallelConfig",
    "PortfolioConfig",
    "RobustConfig",
    "RunConfig",
    "RunStorageConfig",
    "WalkForwardConfig",
    "apply_overrides",
    "load_config",
    "parse_yaml",
    "read_yaml",
]

OBJECTIVES = tuple(V.OBJECTIVES)


def _opt_str(key, value):
    if value is None:
        return None
    if isinstance(value, (_dt.date, _dt.datetime)):  # YAML reads 2015-01-01 as a date
        return value.isoformat()
    if not isinstance(value, str) or not value.strip():
        V.must_be(key, value, "a non-empty string or null")
    return value


def _opt_date(key, value):
    """A date or time (text as written, e.g. ``2015-01-31``), checked to be a real one, or None."""
    text = _opt_str(key, value)
    if text is None:
        return None
    import pandas as pd

    try:
        pd.Timestamp(text)
    except (TypeError, ValueError, OverflowError) as exc:
        V.must_be(key, text, f"a date or time such as 2015-01-31 ({exc})")
    return text


def _weight_bound(key, value):
    if isinstance(value, dict):
        out = {}
        for sym, v in value.items():
            out[str(sym)] = V.check_number(f"{key}.{sym}", v, lo=-1.0, hi=1.0)
        return out
    return V.check_number(key, value, lo=-1.0, hi=1.0)


@dataclass(frozen=True)
class DataConfig:
    source: str = "default"
    path: str | None = None
    symbols: tuple[str, ...] | None = None
    start: str | None = None
    end: str | None = None
    leading_gaps: str = "trim"
    periods_per_year: float | None = None
    funding_path: str | bool | None = None
    kind: str = "prices"
    returns_unit: str | None = None
    strategies: tuple | None = None  # run directories whose champions' return streams are the assets (runs layer)

    def __post_init__(self):
        V.check_choice("data.source", self.source, V.DATA_SOURCES)
        if self.strategies is not None:
            object.__setattr__(self, "strategies", check_strategies(self))
        V.check_data_kind(self.kind, self.returns_unit, self.source)
        object.__setattr__(self, "path", _opt_str("data.path", self.path))
        if self.source == "default" and self.path is not None:
            V.must_be("data.path", self.path, "null for source 'default'")
        if self.source != "default" and self.path is None:
            V.must_be("data.path", self.path, f"a file path for source {self.source!r}")
        if self.symbols is not None:
            if isinstance(self.symbols, str) or not isinstance(self.symbols, (list, tuple)) or not self.symbols:
                V.must_be("data.symbols", self.symbols, "a non-empty list of symbols or null")
            syms = tuple(_opt_str(f"data.symbols[{i}]", s) for i, s in enumerate(self.symbols))
            if len(set(syms)) != len(syms):
                V.must_be("data.symbols", list(syms), "a list without duplicates")
            object.__setattr__(self, "symbols", syms)
        object.__setattr__(self, "start", _opt_date("data.start", self.start))
        object.__setattr__(self, "end", _opt_date("data.end", self.end))
        V.check_choice("data.leading_gaps", self.leading_gaps, V.LEADING_GAP_POLICIES)
        if self.periods_per_year is not None:
            v = V.check_number("data.periods_per_year", self.periods_per_year, lo=0.0, lo_open=True)
            object.__setattr__(self, "periods_per_year", v)
        if self.funding_path is True:
            V.must_be("data.funding_path", True, "a funding file, null (the file next to hyperliquid prices) or false")
        if self.funding_path is not False:
            object.__setattr__(self, "funding_path", _opt_str("data.funding_path", self.funding_path))

    def strategy_dirs(self) -> tuple[tuple[str, str], ...]:
        """``(name, run directory)`` of each of ``data.strategies``, in order (empty without them)."""
        return strategy_dirs(self.strategies)


def _max_leverage(key, value):
    """None, a number >= 1, or a ``{SYMBOL: number, default: number}`` mapping of them."""
    if value is None:
        return None
    if isinstance(value, dict):
        if not value:
            V.must_be(key, value, "a number >= 1 or a non-empty {SYMBOL: x, default: y} mapping")
        return {str(sym): V.check_number(f"{key}.{sym}", v, lo=1.0) for sym, v in value.items()}
    return V.check_number(key, value, lo=1.0)


@dataclass(frozen=True)
class PortfolioConfig:
    market: str = "spot"
    leverage: float = 1.0
    max_leverage: Any = None
    direction: str = "longonly"
    min_weight: Any = 0.0
    max_weight: Any = 1.0
    rebalance: str | int = "M"
    fees: float | None = None
    slippage: float = 0.0
    init_cash: float = 10_000.0
    risk_free: Any = 0.0
    max_assets: int | None = None
    min_assets: int | None = None
    min_position: float = V.DEFAULT_MIN_POSITION
    groups: Any = None
    max_group_weight: Any = None
    min_group_weight: Any = None
    net_exposure: Any = None
    max_gross_long: float | None = None
    max_gross_short: float | None = None
    min_effective_assets: float | None = None  # 1 / sum(w^2) >= this (genetic_sizer.evolution.robust)
    vol_target: float | None = None  # rebalancing policies: genetic_sizer.backtest.kernels.rules
    vol_lookback: int = 20
    min_trade: float = 0.0
    min_trade_value: float = 0.0
    max_turnover: float | None = None

    def __post_init__(self):
        V.check_choice("portfolio.market", self.market, V.MARKETS)
        rebalance.check(self)
        if self.min_effective_assets is not None:
            enc = V.check_number("portfolio.min_effective_assets", self.min_effective_assets, lo=1.0, hi=1e6)
            object.__setattr__(self, "min_effective_assets", enc)
        lev = V.check_number("portfolio.leverage", self.leverage, lo=0.0, lo_open=True, hi=1000.0)
        object.__setattr__(self, "leverage", lev)
        object.__setattr__(self, "max_leverage", _max_leverage("portfolio.max_leverage", self.max_leverage))
        if self.market == "spot" and lev != 1.0:
            V.must_be("portfolio.leverage", self.leverage, "1 for market spot (leverage is a setting of market perp)")
        if self.market == "spot" and self.max_leverage is not None:
            V.must_be("portfolio.max_leverage", self.max_leverage, "null for market spot (a setting of market perp)")
        if isinstance(self.max_leverage, float) and lev > self.max_leverage:
            V.must_be("portfolio.leverage", self.leverage, f"at most portfolio.max_leverage ({self.max_leverage:g})")
        if self.fees is None:
            object.__setattr__(self, "fees", V.DEFAULT_FEES[self.market])
        V.check_choice("portfolio.direction", self.direction, V.DIRECTIONS)
        keys = {k: getattr(self, k) for k in V.CONSTRAINT_KEYS}
        for key, value in V.normalize_constraint_keys(self.direction, **keys).items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "min_weight", _weight_bound("portfolio.min_weight", self.min_weight))
        object.__setattr__(self, "max_weight", _weight_bound("portfolio.max_weight", self.max_weight))
        object.__setattr__(self, "rebalance", V.parse_rebalance(self.rebalance, "portfolio.rebalance"))
        object.__setattr__(self, "fees", V.check_number("portfolio.fees", self.fees, lo=0.0, hi=1.0, hi_open=True))
        object.__setattr__(
            self, "slippage", V.check_number("portfolio.slippage", self.slippage, lo=0.0, hi=1.0, hi_open=True)
        )
        object.__setattr__(
            self, "init_cash", V.check_number("portfolio.init_cash", self.init_cash, lo=0.0, lo_open=True)
        )
        object.__setattr__(self, "risk_free", V.normalize_risk_free(self.risk_free))

    def policy(self) -> dict | None:
        """The rebalancing policy (:func:`genetic_sizer.config.rebalance.policy_of`), or None: the defaults."""
        return rebalance.policy_of(self)

    def account(self) -> dict:
        """The account-model keywords of :func:`genetic_sizer.backtest.simulate.backtest`: ``market``, ``leverage`` and
        ``max_leverage`` (funding rates travel with the prices)."""
        return {"market": self.market, "leverage": self.leverage, "max_leverage": self.max_leverage}


@dataclass(frozen=True)
class EvolutionConfig:
    """GA settings. The operator defaults were tuned on the embedded data (see experiments/bench_quality.py)."""

    population: int = 200
    generations: int = 50
    seed: int = 42
    seed_with_classical: bool = False
    tournament_size: int = 3
    elite: int = 2
    crossover_prob: float = 0.7
    crossover_alpha: float = 0.5
    mutation_prob: float = 0.6
    mutation_sigma: float = 0.05
    shift_prob: float = 0.6
    shift_sigma: float = 0.1
    transfer_prob: float = 0.2
    flip_prob: float = 0.1
    support_prob: float = 0.1
    hall_of_fame: int | None = None  # default: min(10, population)
    holdout: float | int | str = 0.2
    genes: dict | None = None  # strategy genes: {threshold: [lo, hi], rebalance: [W, M, ...]}; see genes.py
    gene_mutation_prob: float = 0.2  # each gene of an offspring mutates with this probability
    gene_sigma: float = 0.15  # a continuous gene's Gaussian step, as a fraction of its range

    def __post_init__(self):
        V.check_number("evolution.population", self.population, lo=4, hi=1_000_000, integer=True)
        V.check_number("evolution.generations", self.generations, lo=1, hi=1_000_000, integer=True)
        V.check_number("evolution.seed", self.seed, lo=0, hi=2**63 - 1, integer=True)
        if not isinstance(self.seed_with_classical, bool):
            V.must_be("evolution.seed_with_classical", self.seed_with_classical, "true or false")
        V.check_number("evolution.tournament_size", self.tournament_size, lo=1, hi=self.population, integer=True)
        V.check_number("evolution.elite", self.elite, lo=0, hi=self.population - 1, integer=True)
        probs = ("crossover_prob", "mutation_prob", "shift_prob", "transfer_prob", "flip_prob", "support_prob")
        for name in probs:
            object.__setattr__(self, name, V.check_number(f"evolution.{name}", getattr(self, name), lo=0.0, hi=1.0))
        total = self.shift_prob + self.transfer_prob + self.flip_prob + self.support_prob
        if total > 1.0 + 1e-12:
            V.must_be("evolution.shift_prob + transfer_prob + flip_prob + support_prob", total, "<= 1")
        object.__setattr__(
            self, "crossover_alpha", V.check_number("evolution.crossover_alpha", self.crossover_alpha, lo=0.0, hi=10.0)
        )
        for name in ("mutation_sigma", "shift_sigma"):
            value = V.check_number(f"evolution.{name}", getattr(self, name), lo=0.0, hi=1.0, lo_open=True)
            object.__setattr__(self, name, value)
        if self.hall_of_fame is None:
            object.__setattr__(self, "hall_of_fame", min(10, self.population))
        V.check_number("evolution.hall_of_fame", self.hall_of_fame, lo=1, hi=self.population, integer=True)
        object.__setattr__(self, "holdout", V.parse_holdout("evolution.holdout", self.holdout))
        object.__setattr__(self, "genes", V.normalize_genes(self.genes, "evolution.genes"))
        value = V.check_number("evolution.gene_mutation_prob", self.gene_mutation_prob, lo=0.0, hi=1.0)
        object.__setattr__(self, "gene_mutation_prob", value)
        value = V.check_number("evolution.gene_sigma", self.gene_sigma, lo=0.0, hi=1.0, lo_open=True)
        object.__setattr__(self, "gene_sigma", value)


@dataclass(frozen=True)
class ParallelConfig:
    """Where evaluation runs. It never changes results, so it is not part of :meth:`RunConfig.sha256`.

    ``backend: serial`` evaluates in this process. ``backend: ray`` starts a local Ray instance, or joins
    the cluster at ``address`` (also taken from ``RAY_ADDRESS`` or ``--ray-address``); ``num_workers`` is
    the number of evaluation actors (default: one per CPU, local; the cluster's CPUs, remote);
    ``batch_size`` is the number of genomes per batch (default: the generation split evenly over the
    workers, or one batch when serial).
    """

    backend: str = "serial"
    address: str | None = None
    num_workers: int | None = None
    batch_size: int | None = None

    def __post_init__(self):
        V.check_choice("parallel.backend", self.backend, V.PARALLEL_BACKENDS)
        object.__setattr__(self, "address", _opt_str("parallel.address", self.address))
        if self.num_workers is not None:
            V.check_number("parallel.num_workers", self.num_workers, lo=1, hi=100_000, integer=True)
        if self.batch_size is not None:
            V.check_number("parallel.batch_size", self.batch_size, lo=1, integer=True)
        if self.backend == "serial" and (self.address is not None or self.num_workers is not None):
            V.must_be("parallel.backend", self.backend, "'ray' when parallel.address or parallel.num_workers is set")


@dataclass(frozen=True)
class RunStorageConfig:
    """Where run directories are written. It never changes results, so it is not part of :meth:`RunConfig.sha256`.

    ``storage``: the place a run directory is created in when ``--out`` is not given (``<storage>/evolve-<UTC
    time>``): a local path or an fsspec URL (``s3://bucket/runs``, ``gs://bucket/runs``,
    ``file:///shared/nfs/runs``); default ``runs`` in the working directory. ``genetic-sizer submit`` writes the
    cluster's run there.

    ``checkpoint_every``: seconds between checkpoints (and logbook writes) of an evolution (default
    :data:`DEFAULT_CHECKPOINT_EVERY`); ``0`` checkpoints after every generation. Whatever the interval, a checkpoint
    is written after generation 0 of a new run and after the last one, and an interrupted run (Ctrl-C,
    an error) checkpoints the last generation it finished before it stops (see :mod:`genetic_sizer.evolution.loop`).
    Resuming from any checkpoint ends exactly as the uninterrupted run, so the interval never changes results; a
    killed process (``kill -9``, out of memory) loses at most this many seconds plus the generation in progress.
    """

    storage: str | None = None
    checkpoint_every: float = 5.0

    def __post_init__(self):
        value = _opt_str("run.storage", self.storage)
        if value is not None and "://" in value and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://.", value):
            V.must_be("run.storage", value, "a local path or a URL such as s3://bucket/runs")
        object.__setattr__(self, "storage", value)
        every = V.check_number("run.checkpoint_every", self.checkpoint_every, lo=0.0, hi=86_400.0)
        object.__setattr__(self, "checkpoint_every", every)


DEFAULT_CHECKPOINT_EVERY = RunStorageConfig.checkpoint_every
"""Seconds between an evolution's checkpoints unless ``run.checkpoint_every`` says otherwise."""


@dataclass(frozen=True)
class WalkForwardConfig:
    """Walk-forward folds (skfolio's ``WalkForward`` conventions).

    ``train`` / ``test``: window lengths, both in bars (``504``) or both calendar spans (``"2Y"``, ``"1Y"``);
    ``purge``: bars left out between a train window's end and its test window (skfolio's ``purged_size``);
    ``anchored``: expanding train windows from the first bar instead of rolling ones;
    ``keep_partial``: keep a last test window shorter than ``test`` (skfolio's ``reduce_test``; by default it is
    dropped, e.g. a final calendar year the data ends before);
    ``execution_delay``: 0 (default) trades each fold's weights at the close of the bar before its test window (for
    a fold trained on bars [a, b) without purge, the close of bar b-1, the last one it saw), so the fold earns every
    return of its test window; 1 trades them one bar later, at the close of the test window's first bar (a one-bar
    delay, and what earlier versions did). It also places ``evolve``'s held-out window: 0 trades the champion at the
    close of the last in-sample bar, 1 at the close of the first held-out bar.
    """

    train: int | str = "3Y"
    test: int | str = "1Y"
    purge: int = 0
    anchored: bool = False
    keep_partial: bool = False
    execution_delay: int = 0

    def __post_init__(self):
        train = V.parse_window("walkforward.train", self.train)
        test = V.parse_window("walkforward.test", self.test)
        if isinstance(train, int) != isinstance(test, int):
            V.must_be(
                "walkforward.train / walkforward.test",
                [self.train, self.test],
                "both numbers of bars or both calendar spans",
            )
        V.check_number("walkforward.purge", self.purge, lo=0, integer=True)
        if type(self.execution_delay) is not int or self.execution_delay not in (0, 1):
            V.must_be(
                "walkforward.execution_delay",
                self.execution_delay,
                "0 or 1 (the bars between the last close a fold saw and the close its weights are traded at)",
            )
        for name in ("anchored", "keep_partial"):
            if not isinstance(getattr(self, name), bool):
                V.must_be(f"walkforward.{name}", getattr(self, name), "true or false")
        for name, raw, parsed in (("train", self.train, train), ("test", self.test, test)):
            object.__setattr__(self, name, parsed if isinstance(parsed, int) else raw.strip().upper().replace(" ", ""))

    def window(self, name: str) -> int | tuple[int, str]:
        """``train`` or ``test`` parsed: bars, or ``(n, unit)``."""
        return V.parse_window(f"walkforward.{name}", getattr(self, name))


NON_SEMANTIC = ("parallel", "run")
"""Config sections that do not change a run's results (left out of :meth:`RunConfig.sha256`)."""

_ADDED_LATER = {
    ("portfolio", "market"): "spot",
    ("portfolio", "leverage"): 1.0,
    ("portfolio", "max_leverage"): None,
    ("data", "funding_path"): None,
    ("walkforward", "execution_delay"): 0,
    ("portfolio", "risk_free"): 0.0,
    ("data", "kind"): "prices",
    ("data", "returns_unit"): None,
    ("data", "strategies"): None,
    ("portfolio", "min_assets"): None,
    ("portfolio", "min_effective_assets"): None,
    **{("portfolio", key): neutral for key, neutral in rebalance.NEUTRAL.items()},
}
"""Keys added after runs were first fingerprinted, with the value that means what their absence meant: left out of
:meth:`RunConfig.sha256` at that value, so a spot run started before they existed still resumes."""

_LATER_SECTIONS = ("robust", "allocators")
"""Sections added after runs were first fingerprinted: left out of :meth:`RunConfig.sha256` at their defaults."""

_GENE_KEYS = ("genes", "gene_mutation_prob", "gene_sigma")
"""Evolution keys that only matter with ``evolution.genes`` (left out of the fingerprint without it)."""

_SECTIONS = {
    "data": DataConfig,
    "portfolio": PortfolioConfig,
    "evolution": EvolutionConfig,
    "walkforward": WalkForwardConfig,
    "parallel": ParallelConfig,
    "run": RunStorageConfig,
    "robust": RobustConfig,
    "allocators": AllocatorsConfig,
}


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    portfolio: PortfolioConfig = field(default_factory=PortfolioConfig)
    objective: tuple[str, ...] = ("sharpe",)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    engine: str = "fast"
    walkforward: WalkForwardConfig = field(default_factory=WalkForwardConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    run: RunStorageConfig = field(default_factory=RunStorageConfig)
    robust: RobustConfig = field(default_factory=RobustConfig)
    allocators: AllocatorsConfig = field(default_factory=AllocatorsConfig)

    def __post_init__(self):
        obj = self.objective
        if isinstance(obj, str):
            obj = (obj,)
        if not isinstance(obj, (list, tuple)) or not obj:
            V.must_be("objective", self.objective, f"a name or a non-empty list of names from {list(OBJECTIVES)}")
        for i, name in enumerate(obj):
            key = "objective" if len(obj) == 1 else f"objective[{i}]"
            V.check_choice(key, name, OBJECTIVES)
        if len(set(obj)) != len(obj):
            V.must_be("objective", list(obj), "a list without duplicates")
        object.__setattr__(self, "objective", tuple(obj))
        V.check_choice("engine", self.engine, V.ENGINES)
        self._check_leverage_gene()
        rebalance.check_vol_target_gene(self.portfolio, self.evolution.genes)

    def _check_leverage_gene(self) -> None:
        """A leverage gene needs the perp account, and its ``hi`` at most every asset's ``portfolio.max_leverage``
        (checked here when the caps are known without the data: one number, or a mapping with ``data.symbols``;
        otherwise when the data is loaded, by the evaluator)."""
        genes = self.evolution.genes
        if genes is None or "leverage" not in genes:
            return
        pf = self.portfolio
        caps, symbols = [], []
        if isinstance(pf.max_leverage, float):
            caps, symbols = [pf.max_leverage], None
        elif isinstance(pf.max_leverage, dict) and self.data.symbols is not None:
            for sym in self.data.symbols:
                cap = pf.max_leverage.get(sym, pf.max_leverage.get("default"))
                if cap is not None:
                    caps.append(cap)
                    symbols.append(sym)
        V.check_leverage_gene(tuple(genes["leverage"]), caps, symbols, pf.market)

    @property
    def multi_objective(self) -> bool:
        return len(self.objective) > 1

    @classmethod
    def from_dict(cls, raw) -> RunConfig:
        """Build from a mapping (as read from YAML); unknown keys and bad values raise ConfigError."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"a config is a mapping of sections, got {type(raw).__name__}")
        top = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - top)
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r}; the top-level keys are {sorted(top)}")
        kwargs = {}
        for name, value in raw.items():
            section = _SECTIONS.get(name)
            if section is None:
                kwargs[name] = value
                continue
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise ConfigError(f"{name} must be a mapping, got {value!r}")
            keys = {f.name for f in dataclasses.fields(section)}
            bad = sorted(set(value) - keys)
            if bad:
                raise ConfigError(f"unknown key '{name}.{bad[0]}'; {name} takes {sorted(keys)}")
            try:
                kwargs[name] = section(**value)
            except TypeError as exc:  # pragma: no cover - guarded by the key check above
                raise ConfigError(f"{name}: {exc}") from None
        return cls(**kwargs)

    def to_dict(self) -> dict:
        """Plain JSON/YAML-able dict (tuples as lists) that :meth:`from_dict` reads back to an equal config."""

        def plain(v):
            if isinstance(v, tuple):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v

        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = (
                {g.name: plain(getattr(v, g.name)) for g in dataclasses.fields(v)}
                if dataclasses.is_dataclass(v)
                else plain(v)
            )
        return out

    def sha256(self) -> str:
        """Fingerprint of everything that determines a run's results (canonical JSON).

        The ``parallel`` and ``run`` sections are left out: where evaluation runs and where the run directory is
        stored do not change the result, so a run started serially can be resumed on a cluster. So are keys added
        after runs were first fingerprinted, at their neutral value (``_ADDED_LATER``), and the gene settings of a
        run without genes (``evolution.genes`` null): both keep the fingerprints of runs made before they existed.
        """
        semantic = {k: v for k, v in self.to_dict().items() if k not in NON_SEMANTIC}
        for (section, key), neutral in _ADDED_LATER.items():
            if semantic[section].get(key, neutral) == neutral and type(semantic[section].get(key)) is type(neutral):
                del semantic[section][key]
        for name in _LATER_SECTIONS:  # sections that came later: at their defaults a run keeps its fingerprint
            if getattr(self, name) == _SECTIONS[name]():
                del semantic[name]
        if self.evolution.genes is None:
            for key in _GENE_KEYS:
                semantic["evolution"].pop(key)
        return hashlib.sha256(json.dumps(semantic, sort_keys=True).encode()).hexdigest()

    def dump(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path


def load_config(path: str | Path | None = None, overrides=()) -> RunConfig:
    """Read a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides."""
    raw = read_yaml(path) if path is not None else {}
    return RunConfig.from_dict(apply_overrides(raw, overrides))

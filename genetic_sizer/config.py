"""Run configuration: typed, validated, loaded from YAML (``configs/*.yaml``) with ``--set`` overrides.

Every error is a :class:`ConfigError` that names the key (``evolution.population``) and the value. A
config round-trips through :meth:`RunConfig.to_dict`, and :meth:`RunConfig.sha256` fingerprints it for
the champion file and for ``--resume``.

Layout (every key optional; these are the defaults)::

    data: {source: default, path: null,  # source: default | csv | parquet | hyperliquid (a fetched file)
           symbols: null, start: null, end: null, leading_gaps: trim,
           periods_per_year: null}
    portfolio: {direction: longonly, min_weight: 0.0, max_weight: 1.0, rebalance: M, fees: 0.0005,
                slippage: 0.0, init_cash: 10000,
                max_assets: null, min_position: 0.001, groups: null, max_group_weight: null,
                min_group_weight: null, net_exposure: null, max_gross_long: null, max_gross_short: null}
    objective: sharpe            # or a list for NSGA-II, e.g. [sharpe, max_drawdown, turnover]
    evolution: {population: 200, generations: 50, seed: 42, seed_with_classical: false, ...}
    engine: fast                 # fast | vectorbt
    parallel: {backend: serial}  # or {backend: ray, address: null, num_workers: null, batch_size: null}

``min_weight`` / ``max_weight`` are numbers or ``{SYMBOL: number, default: number}`` mappings. The constraint
keys (``max_assets`` ... ``max_gross_short``) are described in :mod:`genetic_sizer.constraints`; their types and
ranges are checked here, their symbols and feasibility when the genome space is built from the data.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genetic_sizer.constraints import CONSTRAINT_KEYS, DEFAULT_MIN_POSITION, normalize_keys
from genetic_sizer.errors import ConfigError

__all__ = [
    "DataConfig",
    "EvolutionConfig",
    "ParallelConfig",
    "PortfolioConfig",
    "RunConfig",
    "apply_overrides",
    "load_config",
]

OBJECTIVES = (
    "sharpe",
    "sortino",
    "calmar",
    "cagr",
    "annualized_return",
    "total_return",
    "max_drawdown",
    "annualized_volatility",
    "turnover",
)
PARALLEL_BACKENDS = ("serial", "ray")


def _fail(key: str, value, expected: str):
    raise ConfigError(f"{key} must be {expected}, got {value!r}")


def _number(key, value, *, lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False, integer=False):
    ok_type = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type):
        _fail(key, value, "an integer" if integer else "a number")
    if not math.isfinite(value):
        _fail(key, value, "finite")
    below = value <= lo if lo_open else value < lo
    above = value >= hi if hi_open else value > hi
    if below or above:
        lb, rb = ("(" if lo_open else "["), (")" if hi_open else "]")
        _fail(key, value, f"in {lb}{lo:g}, {hi:g}{rb}")
    return value if integer else float(value)


def _choice(key, value, choices):
    if value not in choices:
        _fail(key, value, f"one of {list(choices)}")
    return value


def _opt_str(key, value):
    if value is None:
        return None
    if isinstance(value, (_dt.date, _dt.datetime)):  # YAML reads 2015-01-01 as a date
        return value.isoformat()
    if not isinstance(value, str) or not value.strip():
        _fail(key, value, "a non-empty string or null")
    return value


def _weight_bound(key, value):
    if isinstance(value, dict):
        out = {}
        for sym, v in value.items():
            out[str(sym)] = _number(f"{key}.{sym}", v, lo=-1.0, hi=1.0)
        return out
    return _number(key, value, lo=-1.0, hi=1.0)


@dataclass(frozen=True)
class DataConfig:
    source: str = "default"
    path: str | None = None
    symbols: tuple[str, ...] | None = None
    start: str | None = None
    end: str | None = None
    leading_gaps: str = "trim"
    periods_per_year: float | None = None

    def __post_init__(self):
        _choice("data.source", self.source, ("default", "csv", "parquet", "hyperliquid"))
        object.__setattr__(self, "path", _opt_str("data.path", self.path))
        if self.source == "default" and self.path is not None:
            _fail("data.path", self.path, "null for source 'default'")
        if self.source != "default" and self.path is None:
            _fail("data.path", self.path, f"a file path for source {self.source!r}")
        if self.symbols is not None:
            if isinstance(self.symbols, str) or not isinstance(self.symbols, (list, tuple)) or not self.symbols:
                _fail("data.symbols", self.symbols, "a non-empty list of symbols or null")
            syms = tuple(_opt_str(f"data.symbols[{i}]", s) for i, s in enumerate(self.symbols))
            if len(set(syms)) != len(syms):
                _fail("data.symbols", list(syms), "a list without duplicates")
            object.__setattr__(self, "symbols", syms)
        object.__setattr__(self, "start", _opt_str("data.start", self.start))
        object.__setattr__(self, "end", _opt_str("data.end", self.end))
        _choice("data.leading_gaps", self.leading_gaps, ("trim", "error"))
        if self.periods_per_year is not None:
            v = _number("data.periods_per_year", self.periods_per_year, lo=0.0, lo_open=True)
            object.__setattr__(self, "periods_per_year", v)


@dataclass(frozen=True)
class PortfolioConfig:
    direction: str = "longonly"
    min_weight: Any = 0.0
    max_weight: Any = 1.0
    rebalance: str | int = "M"
    fees: float = 0.0005
    slippage: float = 0.0
    init_cash: float = 10_000.0
    max_assets: int | None = None
    min_position: float = DEFAULT_MIN_POSITION
    groups: Any = None
    max_group_weight: Any = None
    min_group_weight: Any = None
    net_exposure: Any = None
    max_gross_long: float | None = None
    max_gross_short: float | None = None

    def __post_init__(self):
        _choice("portfolio.direction", self.direction, ("longonly", "longshort"))
        keys = {k: getattr(self, k) for k in CONSTRAINT_KEYS}
        for key, value in normalize_keys(self.direction, **keys).items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "min_weight", _weight_bound("portfolio.min_weight", self.min_weight))
        object.__setattr__(self, "max_weight", _weight_bound("portfolio.max_weight", self.max_weight))
        rb = self.rebalance
        if isinstance(rb, bool) or not isinstance(rb, (str, int)):
            _fail("portfolio.rebalance", rb, "one of once, D, W, M, Q or a positive integer")
        if isinstance(rb, str) and rb.strip().isdigit():
            rb = int(rb)
        if isinstance(rb, int):
            _number("portfolio.rebalance", rb, lo=1, integer=True)
        else:
            rb = rb.strip()
            _choice("portfolio.rebalance", rb if rb.lower() != "once" else "once", ("once", "D", "W", "M", "Q"))
        object.__setattr__(self, "rebalance", rb)
        object.__setattr__(self, "fees", _number("portfolio.fees", self.fees, lo=0.0, hi=1.0, hi_open=True))
        object.__setattr__(self, "slippage", _number("portfolio.slippage", self.slippage, lo=0.0, hi=1.0, hi_open=True))
        object.__setattr__(self, "init_cash", _number("portfolio.init_cash", self.init_cash, lo=0.0, lo_open=True))


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

    def __post_init__(self):
        _number("evolution.population", self.population, lo=4, hi=1_000_000, integer=True)
        _number("evolution.generations", self.generations, lo=1, hi=1_000_000, integer=True)
        _number("evolution.seed", self.seed, lo=0, hi=2**63 - 1, integer=True)
        if not isinstance(self.seed_with_classical, bool):
            _fail("evolution.seed_with_classical", self.seed_with_classical, "true or false")
        _number("evolution.tournament_size", self.tournament_size, lo=1, hi=self.population, integer=True)
        _number("evolution.elite", self.elite, lo=0, hi=self.population - 1, integer=True)
        probs = ("crossover_prob", "mutation_prob", "shift_prob", "transfer_prob", "flip_prob", "support_prob")
        for name in probs:
            object.__setattr__(self, name, _number(f"evolution.{name}", getattr(self, name), lo=0.0, hi=1.0))
        total = self.shift_prob + self.transfer_prob + self.flip_prob + self.support_prob
        if total > 1.0 + 1e-12:
            _fail("evolution.shift_prob + transfer_prob + flip_prob + support_prob", total, "<= 1")
        object.__setattr__(
            self, "crossover_alpha", _number("evolution.crossover_alpha", self.crossover_alpha, lo=0.0, hi=10.0)
        )
        for name in ("mutation_sigma", "shift_sigma"):
            value = _number(f"evolution.{name}", getattr(self, name), lo=0.0, hi=1.0, lo_open=True)
            object.__setattr__(self, name, value)
        if self.hall_of_fame is None:
            object.__setattr__(self, "hall_of_fame", min(10, self.population))
        _number("evolution.hall_of_fame", self.hall_of_fame, lo=1, hi=self.population, integer=True)


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
        _choice("parallel.backend", self.backend, PARALLEL_BACKENDS)
        object.__setattr__(self, "address", _opt_str("parallel.address", self.address))
        if self.num_workers is not None:
            _number("parallel.num_workers", self.num_workers, lo=1, hi=100_000, integer=True)
        if self.batch_size is not None:
            _number("parallel.batch_size", self.batch_size, lo=1, integer=True)
        if self.backend == "serial" and (self.address is not None or self.num_workers is not None):
            _fail("parallel.backend", self.backend, "'ray' when parallel.address or parallel.num_workers is set")


_SECTIONS = {
    "data": DataConfig,
    "portfolio": PortfolioConfig,
    "evolution": EvolutionConfig,
    "parallel": ParallelConfig,
}


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    portfolio: PortfolioConfig = field(default_factory=PortfolioConfig)
    objective: tuple[str, ...] = ("sharpe",)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    engine: str = "fast"
    parallel: ParallelConfig = field(default_factory=ParallelConfig)

    def __post_init__(self):
        obj = self.objective
        if isinstance(obj, str):
            obj = (obj,)
        if not isinstance(obj, (list, tuple)) or not obj:
            _fail("objective", self.objective, f"a name or a non-empty list of names from {list(OBJECTIVES)}")
        for i, name in enumerate(obj):
            key = "objective" if len(obj) == 1 else f"objective[{i}]"
            _choice(key, name, OBJECTIVES)
        if len(set(obj)) != len(obj):
            _fail("objective", list(obj), "a list without duplicates")
        object.__setattr__(self, "objective", tuple(obj))
        _choice("engine", self.engine, ("fast", "vectorbt"))

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

        The ``parallel`` section is left out: where evaluation runs does not change the result, so a run
        started serially can be resumed on a cluster.
        """
        semantic = {k: v for k, v in self.to_dict().items() if k != "parallel"}
        return hashlib.sha256(json.dumps(semantic, sort_keys=True).encode()).hexdigest()

    def dump(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects key.path=value, got {item!r}")
    key, text = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set: bad key {key!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot parse value {text!r} ({exc})") from None
    return parts, value


def apply_overrides(raw: dict, overrides) -> dict:
    """Apply ``key.path=value`` strings (values parsed as YAML) to a raw config mapping; returns a copy."""
    out = json.loads(json.dumps(raw or {}, default=str))
    for item in overrides or ():
        parts, value = _parse_override(item)
        node = out
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {'.'.join(parts)}: {p!r} is not a section")
            node = nxt
        node[parts[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    return raw or {}


def load_config(path: str | Path | None = None, overrides=()) -> RunConfig:
    """Read a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides."""
    raw = read_yaml(path) if path is not None else {}
    return RunConfig.from_dict(apply_overrides(raw, overrides))

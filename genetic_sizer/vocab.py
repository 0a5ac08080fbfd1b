"""One home for every vocabulary the project speaks: the config, the command line, the engines and the
loaders import their names from here instead of listing them again.

=====================  ==========================================================================
``REBALANCE_CODES``    calendar rebalancing policies (or a positive int: every N bars), see
                       :func:`parse_rebalance`
``OBJECTIVES``         fitness metrics that can be objectives, and whether larger is better
``ENGINES``            simulation engines: the Numba kernel, or the vectorbt reference
``DIRECTIONS``         genome kinds: long-only on the simplex, long/short with gross exposure 1
``DATA_SOURCES``       where prices come from (``hyperliquid`` reads a ``data fetch`` file)
``DATA_KINDS``         what a data file holds: prices, or returns (``RETURNS_UNITS``: fraction or percent)
``LEADING_GAP_POLICIES``  what to do with assets listed later than the others
``PARALLEL_BACKENDS``  where evaluation runs
``INTERVAL_MS``        Hyperliquid candle intervals, in milliseconds
``NETWORKS``           Hyperliquid networks
``MARKETS``            account models: a spot cash account, or perpetuals (leverage, funding, margin)
``REFERENCE_ENGINES``  per market, what the fast engine's results are verified against
=====================  ==========================================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np

from genetic_sizer.errors import ConfigError

__all__ = [
    "CONSTRAINT_KEYS",
    "CONTINUOUS",
    "DATA_KINDS",
    "DATA_SOURCES",
    "DEFAULT_FEES",
    "DEFAULT_MIN_POSITION",
    "DIRECTIONS",
    "ENGINES",
    "FUNDING_INTERVAL_HOURS",
    "GENES",
    "INTERVAL_MS",
    "LEADING_GAP_POLICIES",
    "MARKETS",
    "MAX_LEVERAGE_GENE",
    "NETWORKS",
    "OBJECTIVES",
    "PARALLEL_BACKENDS",
    "REBALANCE_CODES",
    "REFERENCE_ENGINES",
    "RESERVED_GENES",
    "RETURNS_UNITS",
    "RISK_FREE_BOUNDS",
    "RISK_FREE_KINDS",
    "SPAN_UNITS",
    "check_choice",
    "check_data_kind",
    "check_leverage_gene",
    "check_number",
    "must_be",
    "normalize_constraint_keys",
    "normalize_genes",
    "normalize_risk_free",
    "parse_holdout",
    "parse_rebalance",
    "parse_window",
]

REBALANCE_CODES = ("once", "D", "W", "M", "Q")
"""``once``: buy and hold; ``D`` ``W`` ``M`` ``Q``: the first bar of each UTC day, Monday-based week, month,
quarter. Codes are case-sensitive (``m`` is not ``M``: pandas reads it as minutes)."""

OBJECTIVES = {
    "sharpe": True,
    "sortino": True,
    "calmar": True,
    "cagr": True,
    "annualized_return": True,
    "total_return": True,
    "max_drawdown": True,  # <= 0: closer to zero is better
    "annualized_volatility": False,
    "turnover": False,
}
"""Objective name -> whether a larger value is better."""

ENGINES = ("fast", "vectorbt")
DIRECTIONS = ("longonly", "longshort")
DATA_SOURCES = ("default", "csv", "parquet", "hyperliquid")
DATA_KINDS = ("prices", "returns")
"""``data.kind``: what a file holds (``returns``: per-period simple returns, compounded into prices)."""
RETURNS_UNITS = ("fraction", "percent")
"""``data.returns_unit`` of a file of returns: 0.012 or 1.2 for 1.2 %."""
LEADING_GAP_POLICIES = ("trim", "error")
PARALLEL_BACKENDS = ("serial", "ray")
NETWORKS = ("testnet", "mainnet")

MARKETS = ("spot", "perp")
"""``spot``: a cash account (vectorbt's ``from_orders`` semantics); ``perp``: a cross-margin perpetuals account with
leverage, hourly funding, taker fees and liquidation, as traded on Hyperliquid
(:mod:`genetic_sizer.backtest.kernels.perp`)."""

REFERENCE_ENGINES = {"spot": "vectorbt", "perp": "reference"}
"""What a champion's figures are re-checked against, per market: vectorbt's ``from_orders`` for spot; for perps
(vectorbt has none) the plain-Python loop :func:`genetic_sizer.backtest.reference.reference_genome`
(``engine="reference"``)."""

DEFAULT_FEES = {"spot": 0.0005, "perp": 0.00045}
"""``portfolio.fees`` when the config does not set it: 5 bp for spot; for perps Hyperliquid's base-tier taker fee,
0.045 % of the notional (orders are IOC, so they take liquidity)."""

FUNDING_INTERVAL_HOURS = 1
"""Hyperliquid pays funding every hour (a rate per hour; other venues pay every 8 hours)."""

INTERVAL_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
"""Candle intervals Hyperliquid serves, in milliseconds (``1M``, calendar months, is not supported here)."""


def parse_rebalance(value, key: str = "rebalance") -> str | int:
    """A rebalancing policy in canonical form: one of :data:`REBALANCE_CODES`, or a positive int N (every N
    bars; digits in text are read as N). Anything else is a ConfigError naming ``key`` and the value."""
    expected = f"one of {list(REBALANCE_CODES)} or a positive integer (every N bars)"
    if isinstance(value, str):
        text = value.strip()
        if text in REBALANCE_CODES:
            return text
        if text.isdigit():
            value = int(text)
        else:
            near = [c for c in REBALANCE_CODES if c.lower() == text.lower()]
            hint = f" (codes are case-sensitive: did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"{key} must be {expected}, got {value!r}{hint}")
    if hasattr(value, "__index__") and not isinstance(value, bool):
        n = int(value.__index__())
        if n >= 1:
            return n
    raise ConfigError(f"{key} must be {expected}, got {value!r}")


# ---- checks of a setting, naming its key ------------------------------------------------------------------


def must_be(key: str, value, expected: str):
    """Raise the ConfigError of a setting: ``{key} must be {expected}, got {value!r}``."""
    raise ConfigError(f"{key} must be {expected}, got {value!r}")


def check_number(key, value, *, lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False, integer=False):
    """``value`` as a float (an int with ``integer``) within the bounds, else the ConfigError naming ``key``."""
    ok_type = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type):
        must_be(key, value, "an integer" if integer else "a number")
    if not math.isfinite(value):
        must_be(key, value, "finite")
    below = value <= lo if lo_open else value < lo
    above = value >= hi if hi_open else value > hi
    if below or above:
        lb, rb = ("(" if lo_open else "["), (")" if hi_open else "]")
        must_be(key, value, f"in {lb}{lo:g}, {hi:g}{rb}")
    return value if integer else float(value)


def check_choice(key, value, choices):
    """``value`` if it is one of ``choices``, else the ConfigError naming ``key``."""
    if value not in choices:
        must_be(key, value, f"one of {list(choices)}")
    return value


# ---- the portfolio constraint keys (genetic_sizer.evolution.constraints builds them on the assets) ----------

CONSTRAINT_KEYS = (
    "max_assets",
    "min_assets",
    "min_position",
    "groups",
    "max_group_weight",
    "min_group_weight",
    "net_exposure",
    "max_gross_long",
    "max_gross_short",
)
"""The ``portfolio`` config keys (and :meth:`genetic_sizer.evolution.space.GenomeSpace.create` keywords) that build the
constraints."""

DEFAULT_MIN_POSITION = 1e-3
"""A weight is 0 or at least this (of gross exposure) unless ``portfolio.min_position`` says otherwise."""


def _num(key: str, value, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ConfigError(f"{key} must be a finite number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def normalize_constraint_keys(
    direction: str,
    *,
    max_assets=None,
    min_assets=None,
    min_position=DEFAULT_MIN_POSITION,
    groups=None,
    max_group_weight=None,
    min_group_weight=None,
    net_exposure=None,
    max_gross_long=None,
    max_gross_short=None,
) -> dict:
    """Check the constraint keys' types, ranges and group names (not the symbols: the config does not know them
    yet) and return them cleaned: numbers as float, groups as ``{name: (symbol, ...)}``, ``net_exposure`` as a
    tuple; a group bound stays one number or becomes ``{name: float}``. Raises :class:`ConfigError` naming the
    key."""
    if max_assets is not None:
        if isinstance(max_assets, bool) or not isinstance(max_assets, (int, np.integer)) or max_assets < 1:
            raise ConfigError(f"portfolio.max_assets must be a positive integer or null, got {max_assets!r}")
        max_assets = int(max_assets)
    if min_assets is not None:
        if isinstance(min_assets, bool) or not isinstance(min_assets, (int, np.integer)) or min_assets < 1:
            raise ConfigError(f"portfolio.min_assets must be a positive integer or null, got {min_assets!r}")
        min_assets = int(min_assets)
        if max_assets is not None and min_assets > max_assets:
            raise ConfigError(
                f"portfolio.min_assets {min_assets} > portfolio.max_assets {max_assets} (exactly K assets: min = max)"
            )
    min_position = _num("portfolio.min_position", min_position, 0.0, 1.0)
    clean: dict[str, tuple[str, ...]] | None = None
    if groups is not None:
        if not isinstance(groups, Mapping):
            raise ConfigError(f"portfolio.groups must be a mapping {{NAME: [SYMBOL, ...]}}, got {groups!r}")
        clean = {}
        for name, members in groups.items():
            key = f"portfolio.groups.{name}"
            if isinstance(members, str) or not isinstance(members, (list, tuple)) or not members:
                raise ConfigError(f"{key} must be a non-empty list of symbols, got {members!r}")
            if not all(isinstance(m, str) and m for m in members):
                raise ConfigError(f"{key} must list symbols (non-empty strings), got {list(members)!r}")
            if len(set(members)) != len(members):
                raise ConfigError(f"{key} lists a symbol twice: {list(members)}")
            clean[str(name)] = tuple(members)

    def group_bound(key: str, value):
        if value is None:
            return None
        if clean is None:
            raise ConfigError(f"portfolio.{key} needs portfolio.groups")
        if not isinstance(value, Mapping):
            return _num(f"portfolio.{key}", value, 0.0, 1.0)
        unknown = sorted(set(map(str, value)) - set(clean))
        if unknown:
            raise ConfigError(f"portfolio.{key}: unknown group(s) {unknown}; groups are {sorted(clean)}")
        return {str(g): _num(f"portfolio.{key}.{g}", v, 0.0, 1.0) for g, v in value.items()}

    gmax = group_bound("max_group_weight", max_group_weight)
    gmin = group_bound("min_group_weight", min_group_weight)
    exposure = {"net_exposure": net_exposure, "max_gross_long": max_gross_long, "max_gross_short": max_gross_short}
    given = [k for k, v in exposure.items() if v is not None]
    if given and direction != "longshort":
        raise ConfigError(
            f"portfolio.{given[0]} applies to direction: longshort (a long-only portfolio's net and gross long "
            "exposure are always 1)"
        )
    if net_exposure is not None:
        if isinstance(net_exposure, str) or not isinstance(net_exposure, (list, tuple)) or len(net_exposure) != 2:
            raise ConfigError(f"portfolio.net_exposure must be [lo, hi], got {net_exposure!r}")
        lo = _num("portfolio.net_exposure[0]", net_exposure[0], -1.0, 1.0)
        hi = _num("portfolio.net_exposure[1]", net_exposure[1], -1.0, 1.0)
        if lo > hi:
            raise ConfigError(f"portfolio.net_exposure is [{lo:g}, {hi:g}]: lo > hi")
        net_exposure = (lo, hi)
    if max_gross_long is not None:
        max_gross_long = _num("portfolio.max_gross_long", max_gross_long, 0.0, 1.0)
    if max_gross_short is not None:
        max_gross_short = _num("portfolio.max_gross_short", max_gross_short, 0.0, 1.0)
    return {
        "max_assets": max_assets,
        "min_assets": min_assets,
        "min_position": min_position,
        "groups": clean,
        "max_group_weight": gmax,
        "min_group_weight": gmin,
        "net_exposure": net_exposure,
        "max_gross_long": max_gross_long,
        "max_gross_short": max_gross_short,
    }


# ---- strategy genes (genetic_sizer.evolution.genes builds their space) ------------------------------------

GENES = ("threshold", "rebalance", "leverage", "shrink", "vol_target")
"""Genes a run can evolve, in the order they are stored (a run's genes keep this order, so the columns of runs that
evolve the first two are what they were before ``leverage`` existed, and those of earlier runs before ``shrink`` and
``vol_target``)."""

CONTINUOUS = ("threshold", "leverage", "shrink", "vol_target")
"""The continuous genes (``[lo, hi]`` ranges); the others are choices."""

RESERVED_GENES: dict[str, str] = {}
"""Gene names kept for what comes next, refused with the reason until then (none at present)."""

MAX_LEVERAGE_GENE = 1000.0
"""The largest ``hi`` of a leverage gene (the bound of ``portfolio.leverage``)."""


def _range(where: str, spec, what: str, *, lo_open: bool, top: float = math.inf) -> list[float]:
    """A continuous gene's ``[lo, hi]``: finite numbers, ``lo >= 0`` (``> 0`` when ``lo_open``), ``lo <= hi <= top``."""
    if not isinstance(spec, (list, tuple)) or len(spec) != 2:
        raise ConfigError(f"{where} must be [lo, hi], {what}, got {spec!r}")
    lo, hi = spec
    for side, v in (("lo", lo), ("hi", hi)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ConfigError(f"{where} {side} must be a finite number {'>' if lo_open else '>='} 0, got {v!r}")
        if lo_open and v == 0:
            raise ConfigError(f"{where} {side} must be a finite number > 0, got {v!r}")
    if lo > hi:
        raise ConfigError(f"{where} must be [lo, hi] with lo <= hi, got {list(spec)!r}")
    if hi > top:
        raise ConfigError(f"{where} hi must be at most {top:g}, got {hi!r}")
    return [float(lo), float(hi)]


def normalize_genes(value, key: str = "evolution.genes") -> dict | None:
    """The ``evolution.genes`` setting checked and in canonical form: None, or any of ``{"threshold": [lo, hi]}``,
    ``{"rebalance": [policy, ...]}`` (policies in canonical form, see :func:`parse_rebalance`)
    ``{"leverage": [lo, hi]}`` (``0 < lo <= hi``), ``{"shrink": [lo, hi]}`` (``0 <= lo <= hi <= 1``: the
    weights a genome is evaluated with are ``(1 - s) w + s t``, ``t`` the target of ``robust.shrink_toward``) and
    ``{"vol_target": [lo, hi]}`` (``0 < lo <= hi <= 100``, annualized volatilities: each genome's
    ``portfolio.vol_target``), in the order of :data:`GENES`. Errors are ConfigErrors naming
    the key and the value. Whether the account has leverage (``portfolio.market: perp``) and whether ``hi`` is
    within every asset's maximum leverage is checked with the portfolio (:func:`check_leverage_gene`)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise ConfigError(
            f"{key} must be a mapping of genes to evolve, e.g. {{threshold: [0.0, 0.2], rebalance: [W, M, Q, once]}}, "
            f"got {value!r}"
        )
    out = {}
    for name, spec in value.items():
        if name in RESERVED_GENES:
            raise ConfigError(f"{key}.{name}: {RESERVED_GENES[name]}")
        if name not in GENES:
            raise ConfigError(f"unknown gene {key}.{name}; genes are {list(GENES)}")
        where = f"{key}.{name}"
        if name == "threshold":
            out[name] = _range(where, spec, "the range of the drift band", lo_open=False)
        elif name == "leverage":
            out[name] = _range(where, spec, "the range of the gross leverage", lo_open=True, top=MAX_LEVERAGE_GENE)
        elif name == "shrink":
            out[name] = _range(
                where, spec, "the range of the mixing coefficient toward robust.shrink_toward", lo_open=False, top=1.0
            )
        elif name == "vol_target":
            out[name] = _range(where, spec, "the range of the annualized volatility target", lo_open=True, top=100.0)
        else:  # rebalance
            if isinstance(spec, (str, int)) or not isinstance(spec, (list, tuple)) or not spec:
                raise ConfigError(f"{where} must be a non-empty list of policies, e.g. [W, M, Q, once], got {spec!r}")
            codes = [parse_rebalance(p, f"{where}[{i}]") for i, p in enumerate(spec)]
            if len(set(codes)) != len(codes):
                raise ConfigError(f"{where} lists a policy twice: {codes!r}")
            out[name] = codes
    return {name: out[name] for name in GENES if name in out}


def check_leverage_gene(
    leverage: tuple[float, float] | None, max_leverage, symbols, market: str = "perp", key: str = "evolution.genes"
) -> None:
    """Raise a ConfigError when a leverage gene ``[lo, hi]`` cannot run: outside the perp account, or with ``hi``
    above an asset's maximum leverage (``max_leverage``: each asset's, in the order of ``symbols``, ``inf`` for
    none; ``symbols`` None names no asset). Every genome's leverage must be one the exchange allows for every coin
    the genome may hold."""
    if leverage is None:
        return
    if market != "perp":
        raise ConfigError(
            f"{key}.leverage: leverage genes need market: perp (portfolio.market is {market!r}; the spot account "
            "has no leverage)"
        )
    caps = np.asarray(max_leverage, dtype=np.float64)
    hi = leverage[1]
    if caps.size and hi > caps.min():
        k = int(np.argmin(caps))
        of = "" if symbols is None else f" of {symbols[k]!r}"
        raise ConfigError(
            f"{key}.leverage hi {hi:g} is above portfolio.max_leverage{of} ({caps[k]:g}): every genome's leverage "
            f"must be one the exchange allows for every asset it may hold; lower {key}.leverage to "
            f"[{min(leverage[0], caps[k]):g}, {caps[k]:g}] or below"
        )


# ---- window spans: walk-forward windows and the held-out window ------------------------------------------


SPAN_UNITS = ("D", "W", "M", "Q", "Y")
"""Calendar units of a window span such as ``2Y``, ``6M``, ``90D``."""
_SPAN = re.compile(r"^\s*([1-9][0-9]*)\s*([DWMQY])\s*$")


def parse_window(key: str, value) -> int | tuple[int, str]:
    """A window length: a positive number of bars (``504``), or a calendar span ``(n, unit)`` from text such as
    ``"2Y"``, ``"6M"``, ``"13W"``, ``"90D"``, ``"1Q"``."""
    if isinstance(value, str):
        m = _SPAN.match(value.upper())
        if m:
            return int(m.group(1)), m.group(2)
        if value.strip().isdigit():
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        must_be(key, value, 'a positive number of bars (e.g. 504) or a calendar span such as "2Y", "6M", "90D"')
    return value


def parse_holdout(key: str, value) -> float | int | str:
    """The final part of the data window ``genetic-sizer evolve`` keeps out of the evolution and reports out of
    sample: a fraction of the bars in (0, 1) (``0.2``), a number of bars (``252``), a calendar span (``"1Y"``),
    or 0 for none."""
    if value == 0 and not isinstance(value, bool):
        return 0
    if isinstance(value, float) and 0 < value < 1:
        return value
    if isinstance(value, str):
        text = value.strip().upper().replace(" ", "")
        if _SPAN.match(text):
            return text
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    must_be(key, value, 'a fraction of the bars in (0, 1), a number of bars, a calendar span such as "1Y", or 0')


# ---- the risk-free rate (portfolio.risk_free; genetic_sizer.backtest.riskfree aligns it to the bars) ------------

RISK_FREE_KINDS = ("per_period", "annual")
"""What a file of risk-free rates holds: each row the return of cash over the period ending at its time
(``per_period``, e.g. Kenneth French's ``RF``), or the annual rate in force from its time on (``annual``, a yield)."""
RISK_FREE_BOUNDS = (-0.05, 0.5)
"""Accepted annual risk-free rates (as fractions): from -5 % (below the most negative bill yields on record) to 50 %;
outside them the figure is almost surely a unit slip (2 for 2 %, a per-period rate read as annual)."""
RISK_FREE_KEYS = ("path", "column", "kind", "percent")


def normalize_risk_free(value, key: str = "portfolio.risk_free") -> float | dict:
    """``portfolio.risk_free``: a constant annual rate (a number; 0: Sharpe and Sortino of the returns themselves), or a
    file of rates ``{path, column (default: the file's one rate column), kind: per_period | annual, percent (default
    false: the values are fractions)}``, returned with every key."""
    lo, hi = RISK_FREE_BOUNDS
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(RISK_FREE_KEYS))
        if unknown:
            must_be(key, dict(value), f"a number or a mapping of {list(RISK_FREE_KEYS)} (unknown key {unknown[0]!r})")
        path, column = value.get("path"), value.get("column")
        if not isinstance(path, str) or not path.strip():
            must_be(f"{key}.path", path, "the path of a CSV or Parquet file of rates")
        if column is not None and (not isinstance(column, str) or not column.strip()):
            must_be(f"{key}.column", column, "a column name or null (the file's one rate column)")
        kind = check_choice(f"{key}.kind", value.get("kind"), RISK_FREE_KINDS)
        percent = value.get("percent", False)
        if not isinstance(percent, bool):
            must_be(f"{key}.percent", percent, "true (the values are in percent) or false (fractions)")
        return {"path": path, "column": column, "kind": kind, "percent": percent}
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        must_be(key, value, "an annual rate (a number such as 0.02) or {path, column, kind, percent}")
    if not lo <= value <= hi:
        hint = f" (a rate in percent? {value:g} % is {value / 100:g})" if value > hi else ""
        must_be(key, value, f"an annual rate as a fraction (0.02 for 2 %) in [{lo:g}, {hi:g}]{hint}")
    return float(value)


def check_data_kind(kind: str, returns_unit: str | None, source: str | None = None) -> str | None:
    """Check ``data.kind`` / ``data.returns_unit`` (and, given, that ``data.source`` reads files): the unit when the
    data are returns, None when they are prices. Errors name the key and the value."""
    check_choice("data.kind", kind, DATA_KINDS)
    if kind == "prices":
        if returns_unit is not None:
            must_be("data.returns_unit", returns_unit, "null for data.kind prices (a setting of data.kind returns)")
        return None
    if returns_unit is None:
        must_be(
            "data.returns_unit",
            returns_unit,
            f"one of {list(RETURNS_UNITS)} for data.kind returns (never guessed: 0.5 could be 50 % or 0.5 %)",
        )
    check_choice("data.returns_unit", returns_unit, RETURNS_UNITS)
    if source is not None and source not in ("csv", "parquet"):
        must_be("data.source", source, "csv or parquet for data.kind returns (a file of returns)")
    return returns_unit

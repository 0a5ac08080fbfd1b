"""The champion file: a versioned, self-describing JSON record of one evolved weight vector.

:func:`build` assembles it, :func:`write` writes it atomically, :func:`load` reads and validates it
(schema, finiteness, bounds, sum), raising :class:`ChampionError` that names the file and the field.

Schema (version 4)::

    schema            "genetic_sizer/champion"
    schema_version    4
    created_at        ISO 8601 UTC time
    selection         how this genome was chosen (rank, rule)
    assets            [symbol, ...] in the order of the price data
    weights           {symbol: weight}; long-only: each >= 0, sum 1; long/short: sum |w| = 1
    holdings          [symbol, ...] the assets with a non-zero weight, in the order of ``assets``
    objective         [metric, ...] the run optimized (several: NSGA-II)
    metrics           {metric: value} for every metric (fast engine; the reference agrees, see verification),
                      simulated with the champion's strategy; a perp champion adds funding_paid,
                      funding_received, fees_paid and liquidated
    strategy          how the champion keeps its weights: rebalance (the calendar policy), threshold (the drift
                      band: trade the whole book back to target when some weight drifts this far from its target;
                      null for none), perp: leverage (the gross leverage it is sized at: an evolved one with a
                      leverage gene, else portfolio.leverage; always equal to portfolio.leverage), and genes
                      ({gene: range or choices} the run evolved; {} when the strategy is the run's fixed setting)
    portfolio         market ("spot" or "perp"; perp: leverage (the champion's: strategy.leverage) and
                      max_leverage per symbol or null),
                      direction, min_weight / max_weight per symbol, rebalance (the champion's calendar policy:
                      strategy.rebalance, so readers of earlier files keep working), fees, slippage, init_cash, and
                      the constraints: max_assets, min_assets (optional), min_position, groups, max_group_weight,
                      min_group_weight, net_exposure, max_gross_long, max_gross_short (null / {} when unset), and
                      risk_free (below)
    data              source, path, symbols, first_bar, last_bar, n_bars, periods_per_year, close_sha256
                      (its fingerprint covers the funding rates too), funding (whether any were charged),
                      perp: funding_path
    evolution         seed, population, generations, evaluations
    verification      engine: what the fast engine was re-checked against ("vectorbt" for spot, "reference" for
                      perp: the plain-Python loop genetic_sizer.backtest.reference.reference_genome), against (its
                      description), reference (the function: Portfolio.from_orders, Portfolio.from_order_func for
                      a spot champion with a drift band, or perp.reference_genome), rtol, atol, and max_rel_diff:
                      the largest difference between the engines' metrics relative to max(|value|, atol / rtol)
                      (see compare_metrics)
    versions          genetic_sizer, python and the numerical packages
    config_sha256     fingerprint of the resolved run configuration

Version 1 files (written before the constraints existed) have no ``holdings`` and no constraint keys; they
load with no constraints and ``min_position`` 0. Version 1 and 2 files have no ``portfolio.market`` (they are
spot champions) and no ``strategy`` (they follow ``portfolio.rebalance`` with no drift band).

``portfolio.risk_free`` was added to version 4 without a version bump, and is optional: what the Sharpe and Sortino of
``metrics`` are in excess of, the setting (``annual``, or a file's ``path``, ``column``, ``kind``, ``percent``,
``note`` and ``rates_sha256``) with ``per_bar`` (the mean per-bar rate on the champion's window) and ``annualized``
(``(1 + per_bar) ** periods_per_year - 1``). A file without it was scored without a rate (0); nothing sizes with it,
so a reader that predates it loses nothing.

``strategy.leverage`` was added to version 4 without a version bump: it is optional (version 4 perp files written
before it load with their ``portfolio.leverage``), it always equals ``portfolio.leverage`` (which every reader sizes
at), and a file whose leverage was evolved lists ``leverage`` in ``strategy.genes``, which a genetic_sizer without
the leverage gene refuses to load.

``construction``, ``portfolio.min_effective_assets`` and the rebalancing policy (``portfolio.min_trade``, ...; present
only when set) are optional, version 4 without a bump: how the weights were built (``robust:``) and the norm
constraint they meet (:mod:`genetic_sizer.runs.deployment`), and the rule the live sizer trades them by.

Two kinds of version 3 file exist, written by two lines of development before they were merged into version 4:
one added the account model (``portfolio.market``, ``leverage``, ``max_leverage``, ``verification.against``;
no ``strategy``), the other the ``strategy`` section (spot only; ``verification.reference``). :func:`load` tells
them apart by content (a ``strategy`` section or not) and reads both; version 4 has both parts. Every version
from 3 on refuses to load in a genetic_sizer that predates it, so an older reader never sizes a perp champion as
spot or drops a drift band.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from genetic_sizer import vocab as V
from genetic_sizer._version import __version__
from genetic_sizer.errors import ChampionError, ConfigError
from genetic_sizer.evolution.constraints import Constraints
from genetic_sizer.evolution.space import TOL
from genetic_sizer.runs.deployment import check_deployment
from genetic_sizer.storage import files
from genetic_sizer.vocab import CONSTRAINT_KEYS, DIRECTIONS

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "Champion",
    "build",
    "compare_metrics",
    "load",
    "resolve_leverage",
    "write",
]

SCHEMA = "genetic_sizer/champion"
SCHEMA_VERSION = 4
REFERENCE_DESCRIPTIONS = {
    "vectorbt": "vectorbt Portfolio.from_orders (targetpercent, cash sharing, call_seq auto)",
    "vectorbt-drift": "vectorbt Portfolio.from_order_func (the drift band decided in a pre-segment function, "
    "targetpercent orders, cash sharing, sells first)",
    "reference": "genetic_sizer.backtest.reference.reference_genome, a plain-Python loop of the perp account "
    "(vectorbt has no perpetuals)",
}
"""What ``verification.against`` says of each reference (``vectorbt-drift``: vectorbt with a drift band)."""
REFERENCE_FUNCTIONS = {
    "vectorbt": "Portfolio.from_orders",
    "vectorbt-drift": "Portfolio.from_order_func",
    "reference": "perp.reference_genome",
}
"""What ``verification.reference`` names: the function the champion's figures were recomputed with."""
VERIFY_RTOL = 1e-8
"""Relative tolerance between the fast engine's and vectorbt's metrics of a champion."""
VERIFY_ATOL = 1e-10
"""Absolute floor of that comparison, for metrics that are (close to) zero."""

_PACKAGES = ("numpy", "pandas", "numba", "deap", "vectorbt", "skfolio", "ray", "hyperliquid-python-sdk")
_REQUIRED = {
    "schema": str,
    "schema_version": int,
    "created_at": str,
    "assets": list,
    "weights": dict,
    "objective": list,
    "metrics": dict,
    "portfolio": dict,
    "data": dict,
    "evolution": dict,
    "versions": dict,
    "config_sha256": str,
}
_PORTFOLIO_KEYS = ("direction", "min_weight", "max_weight", "rebalance", "fees", "slippage", "init_cash")
_NO_CONSTRAINTS = {
    "max_assets": None,
    "min_assets": None,
    "min_position": 0.0,
    "groups": {},
    "max_group_weight": {},
    "min_group_weight": {},
    "net_exposure": None,
    "max_gross_long": None,
    "max_gross_short": None,
}
"""What :func:`build` records for constraint keys its ``portfolio`` leaves out: none (and no minimum position)."""
_OPTIONAL_CONSTRAINTS = ("min_assets",)
"""Constraint keys added to version 4 files without a version bump: a file without them was evolved without them."""
_DATA_KEYS = ("source", "first_bar", "last_bar", "n_bars", "periods_per_year", "close_sha256")


@dataclass(frozen=True)
class Champion:
    """A validated champion file. ``weights`` is an array in the order of ``assets``."""

    path: str
    assets: tuple[str, ...]
    weights: np.ndarray
    objective: tuple[str, ...]
    metrics: dict
    portfolio: dict
    data: dict
    evolution: dict
    versions: dict
    config_sha256: str
    created_at: str
    selection: str
    raw: dict
    strategy: dict = field(default_factory=dict)
    """``{"rebalance": policy, "threshold": drift band or None, "genes": {evolved gene: range}}``, with ``"leverage"``
    for a perp champion that records it (equal to :attr:`leverage`)."""

    @property
    def rebalance(self):
        """The champion's calendar policy (``strategy.rebalance``)."""
        return self.strategy["rebalance"]

    @property
    def threshold(self) -> float | None:
        """The champion's drift band (``strategy.threshold``), or None."""
        return self.strategy["threshold"]

    @property
    def direction(self) -> str:
        return self.portfolio["direction"]

    def weight_of(self, symbol: str) -> float:
        return float(self.weights[self.assets.index(symbol)])

    @property
    def holdings(self) -> tuple[str, ...]:
        """The assets with a non-zero weight."""
        return tuple(a for a, w in zip(self.assets, self.weights, strict=True) if w != 0)

    @property
    def market(self) -> str:
        """The account model it was evolved in: ``"spot"`` (every version 1 and 2 file) or ``"perp"``."""
        return self.portfolio.get("market", "spot")

    @property
    def risk_free(self) -> dict:
        """What the Sharpe and Sortino of :attr:`metrics` are in excess of (``portfolio.risk_free``); a file written
        before it was recorded was scored without a rate: ``{"annual": 0.0, "per_bar": 0.0, "annualized": 0.0}``."""
        return dict(self.portfolio.get("risk_free") or {"annual": 0.0, "per_bar": 0.0, "annualized": 0.0})

    @property
    def leverage(self) -> float | None:
        """The gross leverage a perp champion was evolved at (None for a spot champion)."""
        return float(self.portfolio["leverage"]) if self.market == "perp" else None

    @property
    def constraints(self) -> Constraints:
        """The constraints recorded in ``portfolio`` (none for a version 1 file); the weights satisfy them."""
        return Constraints.from_record(self.assets, self.direction, self.portfolio)


def package_versions() -> dict[str, str]:
    """Versions of genetic_sizer, Python and the numerical packages (without importing them)."""
    out = {"genetic_sizer": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[name] = "not installed"
    return out


def resolve_leverage(champion: Champion, leverage: float | None, *, allow_mismatch: bool = False) -> float:
    """The leverage to size ``champion`` at, given the one asked for (None: not given).

    A perp champion's figures hold at the leverage it was evolved at (funding, fees and liquidation all scale with
    it): with ``leverage`` None it is sized at that leverage, and a different ``leverage`` is a
    :class:`ConfigError` unless ``allow_mismatch``. A spot champion is sized at ``leverage`` (default 1).
    """
    evolved = champion.leverage
    if leverage is None:
        return evolved if evolved is not None else 1.0
    if evolved is not None and not allow_mismatch and not math.isclose(leverage, evolved, rel_tol=1e-12):
        raise ConfigError(
            f"--leverage {leverage:g} differs from the leverage {evolved:g} this perp champion was evolved at "
            f"({champion.path}): its funding, fees and liquidation risk were measured at {evolved:g}. Size it at "
            f"{evolved:g} (leave --leverage out), or pass --allow-leverage-mismatch to trade it at {leverage:g} anyway"
        )
    return float(leverage)


def compare_metrics(
    fast: dict,
    reference: dict,
    rtol: float = VERIFY_RTOL,
    atol: float = VERIFY_ATOL,
    *,
    reference_name: str = "vectorbt",
) -> float:
    """Largest scaled difference between two metric dicts; raise if it exceeds ``rtol``.

    Each metric's difference is divided by ``max(|fast|, |reference|, atol / rtol)``: a relative difference for
    ordinary values, and ``diff <= atol`` for values near zero. The check is that every such ratio is
    ``<= rtol``; the largest one is returned (and recorded in the champion file).
    """
    worst = 0.0
    for name, a in fast.items():
        if name not in reference:
            continue
        a, b = float(a), float(reference[name])
        scaled = abs(a - b) / max(abs(a), abs(b), atol / rtol)
        if not scaled <= rtol:
            raise ChampionError(
                f"champion check failed: {name} is {a!r} with the fast engine but {b!r} with {reference_name} "
                f"(scaled difference {scaled:.3g} > {rtol:g})"
            )
        worst = max(worst, scaled)
    return worst


def build(
    *,
    symbols,
    weights,
    metrics: dict,
    objective,
    portfolio: dict,
    data: dict,
    evolution: dict,
    config_sha256: str,
    selection: str,
    verification: dict,
    strategy: dict | None = None,
) -> dict:
    """The champion record as a JSON-able dict (validated by the same rules as :func:`load`).

    Constraint keys missing from ``portfolio`` are recorded as absent (``min_position`` 0): a champion built without
    them was not evolved under them. ``strategy`` is ``{"rebalance", "threshold", "genes"}`` (module docstring; an
    evolved ``vol_target`` with its ``vol_lookback``); without it the champion follows ``portfolio.rebalance``, no
    band. A perp champion's ``strategy.leverage`` (an evolved one, else ``portfolio.leverage``) is in both places."""
    w = np.asarray(weights, dtype=np.float64)
    portfolio = {**_NO_CONSTRAINTS, **portfolio}
    strategy = {"rebalance": portfolio["rebalance"], "threshold": None, "genes": {}, **(strategy or {})}
    portfolio["rebalance"] = strategy["rebalance"]  # the champion's policy (an evolved one when the run evolves it)
    if strategy.get("leverage") is not None:  # perp: the champion's leverage, which the live sizer sizes it at
        portfolio["leverage"] = strategy["leverage"]
    elif portfolio.get("market") == "perp" and "leverage" in portfolio:
        strategy["leverage"] = portfolio["leverage"]
    keys = ("rebalance", "threshold", "leverage", "vol_target", "vol_lookback", "genes")
    strategy = {k: strategy[k] for k in keys if k in strategy}
    record = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created_at": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "selection": selection,
        "assets": list(symbols),
        "weights": {s: float(x) for s, x in zip(symbols, w, strict=True)},
        "holdings": [s for s, x in zip(symbols, w, strict=True) if x != 0],
        "objective": list(objective),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "strategy": strategy,
        "portfolio": portfolio,
        "data": data,
        "evolution": evolution,
        "verification": verification,
        "versions": package_versions(),
        "config_sha256": config_sha256,
    }
    _validate(record, "champion")
    return record


def write(record: dict, path: str | Path) -> Path:
    """Write atomically (a temporary file beside the target, renamed over it; removed if the write fails).

    Raises :class:`~genetic_sizer.errors.ConfigError` naming ``path`` when it is a directory (or under a file),
    before anything is written.
    """
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"
    return files.write_text(path, text, "champion file", durable=True)


def load(path: str | Path) -> Champion:
    """Read and validate a champion file."""
    path = Path(path)
    if not path.is_file():
        raise ChampionError(f"{path}: no such champion file")
    try:
        raw = json.loads(path.read_text(), parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise ChampionError(f"{path}: not valid JSON ({exc})") from None
    w = _validate(raw, str(path))
    return Champion(
        path=str(path),
        assets=tuple(raw["assets"]),
        weights=w,
        objective=tuple(raw["objective"]),
        metrics=dict(raw["metrics"]),
        portfolio=dict(raw["portfolio"]),
        data=dict(raw["data"]),
        evolution=dict(raw["evolution"]),
        versions=dict(raw["versions"]),
        config_sha256=raw["config_sha256"],
        created_at=raw["created_at"],
        selection=str(raw.get("selection", "")),
        raw=raw,
        strategy=strategy_of(raw),
    )


def has_strategy(raw: dict) -> bool:
    """Whether a champion record has a ``strategy`` section: every version 4 record, and the version 3 records of
    the strategy kind (the other version 3 kind, with the account model, has none; see the module docstring)."""
    return raw.get("schema_version", 0) >= 3 and "strategy" in raw


def strategy_of(raw: dict) -> dict:
    """The strategy a (validated) champion record describes (``leverage``, ``vol_target`` and ``vol_lookback`` when
    the record has them); for records without a ``strategy`` section (versions 1 and 2, and version 3 records of the
    account kind), its portfolio's policy without a drift band."""
    if has_strategy(raw):
        s = raw["strategy"]
        out = {"rebalance": s["rebalance"], "threshold": s["threshold"]}
        out.update({k: float(s[k]) for k in ("leverage", "vol_target") if s.get(k) is not None})
        out.update({k: int(s[k]) for k in ("vol_lookback",) if s.get(k) is not None})
        return {**out, "genes": dict(s.get("genes") or {})}
    return {"rebalance": raw["portfolio"]["rebalance"], "threshold": None, "genes": {}}


def _reject_constant(name):
    raise ValueError(f"{name} is not a finite number")


def _finite(where: str, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ChampionError(f"{where}: {key} must be a finite number, got {value!r}")
    return float(value)


def _validate(raw, where: str) -> np.ndarray:
    if not isinstance(raw, dict):
        raise ChampionError(f"{where}: a champion file is a JSON object, got {type(raw).__name__}")
    if raw.get("schema") != SCHEMA:
        raise ChampionError(f"{where}: schema is {raw.get('schema')!r}, expected {SCHEMA!r}")
    version = raw.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ChampionError(f"{where}: schema_version must be an integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise ChampionError(
            f"{where}: schema_version {version} is newer than this genetic_sizer reads ({SCHEMA_VERSION}); upgrade"
        )
    if version < 1:
        raise ChampionError(f"{where}: schema_version must be >= 1, got {version}")
    for key, typ in _REQUIRED.items():
        if key not in raw:
            raise ChampionError(f"{where}: missing field {key!r}")
        if not isinstance(raw[key], typ) or isinstance(raw[key], bool):
            raise ChampionError(f"{where}: field {key!r} must be a {typ.__name__}, got {raw[key]!r}")
    assets = raw["assets"]
    if len(assets) < 2 or not all(isinstance(a, str) and a for a in assets) or len(set(assets)) != len(assets):
        raise ChampionError(f"{where}: assets must be at least 2 distinct symbols, got {assets!r}")
    weights = raw["weights"]
    if set(weights) != set(assets):
        missing = sorted(set(assets) - set(weights))
        extra = sorted(set(weights) - set(assets))
        raise ChampionError(f"{where}: weights and assets differ (missing {missing}, extra {extra})")
    w = np.array([_finite(where, f"weights.{a}", weights[a]) for a in assets])
    for k, v in raw["metrics"].items():
        _finite(where, f"metrics.{k}", v)
    for o in raw["objective"]:
        if o not in raw["metrics"]:
            raise ChampionError(f"{where}: objective {o!r} has no value in metrics")
    pf = raw["portfolio"]
    for key in _PORTFOLIO_KEYS:
        if key not in pf:
            raise ChampionError(f"{where}: missing field 'portfolio.{key}'")
    if pf["direction"] not in DIRECTIONS:
        raise ChampionError(f"{where}: portfolio.direction must be one of {list(DIRECTIONS)}, got {pf['direction']!r}")
    for key in ("fees", "slippage", "init_cash"):
        _finite(where, f"portfolio.{key}", pf[key])
    _check_account(where, pf, assets)
    _check_risk_free(where, pf.get("risk_free"))
    lo = _bounds(where, "min_weight", pf["min_weight"], assets)
    hi = _bounds(where, "max_weight", pf["max_weight"], assets)
    for k, a in enumerate(assets):
        if w[k] < lo[k] - TOL or w[k] > hi[k] + TOL:
            raise ChampionError(
                f"{where}: weights.{a} is {float(w[k])!r}, outside portfolio bounds [{lo[k]:g}, {hi[k]:g}]"
            )
    if pf["direction"] == "longonly" and (w < 0).any():
        k = int(np.flatnonzero(w < 0)[0])
        raise ChampionError(f"{where}: weights.{assets[k]} is {float(w[k])!r} but the portfolio is long-only")
    gross = float(np.abs(w).sum())
    if abs(gross - 1.0) > TOL:
        what = "sum" if pf["direction"] == "longonly" else "sum of |w|"
        raise ChampionError(f"{where}: the {what} of weights is {gross!r}, must be 1 (within {TOL:g})")
    for key in _DATA_KEYS:
        if key not in raw["data"]:
            raise ChampionError(f"{where}: missing field 'data.{key}'")
    if version >= 2:
        _check_constraints(where, raw, w)
    check_deployment(where, raw, w)  # construction and portfolio.min_effective_assets (genetic_sizer.runs.deployment)
    if has_strategy(raw):  # version 4, and version 3 files of the strategy kind (see the module docstring)
        _check_strategy(where, raw)
    elif version >= 4:
        raise ChampionError(f"{where}: missing field 'strategy' (an object: rebalance, threshold, genes)")
    return w


def _check_strategy(where: str, raw: dict) -> None:
    """Version 4 (and 3 of the strategy kind): the strategy section holds a valid policy, a drift band (or null)
    and the evolved genes, and the strategy lies within the genes' ranges."""
    from genetic_sizer.vocab import normalize_genes

    s = raw.get("strategy")
    if not isinstance(s, dict):
        raise ChampionError(f"{where}: missing field 'strategy' (an object: rebalance, threshold, genes)")
    for key in ("rebalance", "threshold", "genes"):
        if key not in s:
            raise ChampionError(f"{where}: missing field 'strategy.{key}'")
    try:
        policy = V.parse_rebalance(s["rebalance"], "strategy.rebalance")
        genes = normalize_genes(s["genes"], "strategy.genes") if s["genes"] else {}
    except ConfigError as exc:
        raise ChampionError(f"{where}: {exc}") from None
    x = s["threshold"]
    if x is not None:
        x = _finite(where, "strategy.threshold", x)
        if x < 0:
            raise ChampionError(f"{where}: strategy.threshold is {x!r}, must be >= 0 (a drift band) or null")
    vt = None if s.get("vol_target") is None else _finite(where, "strategy.vol_target", s["vol_target"])
    for key, v in (("threshold", x), ("vol_target", vt)):  # an evolved one: required, and inside its range
        lo, hi = genes.get(key, (0.0, math.inf))
        if key in genes and (v is None or not lo <= v <= hi):
            raise ChampionError(f"{where}: strategy.{key} {v!r} is outside the evolved range [{lo:g}, {hi:g}]")
    if V.parse_rebalance(raw["portfolio"]["rebalance"], "portfolio.rebalance") != policy:
        raise ChampionError(
            f"{where}: strategy.rebalance {policy!r} differs from portfolio.rebalance {raw['portfolio']['rebalance']!r}"
        )
    if "rebalance" in genes and policy not in genes["rebalance"]:
        raise ChampionError(
            f"{where}: strategy.rebalance {policy!r} is not one of the evolved choices {genes['rebalance']!r}"
        )
    _check_strategy_leverage(where, raw, s, genes)


def _check_strategy_leverage(where: str, raw: dict, s: dict, genes: dict) -> None:
    """``strategy.leverage`` (optional): only for perps, a positive number equal to ``portfolio.leverage``; with an
    evolved leverage (``strategy.genes.leverage``) it is required and inside the evolved range."""
    pf = raw["portfolio"]
    market = pf.get("market", "spot")
    lev = s.get("leverage")
    if "leverage" in genes and market != "perp":
        raise ChampionError(
            f"{where}: strategy.genes.leverage: leverage genes need market: perp (portfolio.market is {market!r})"
        )
    if lev is None:
        if "leverage" in genes:
            raise ChampionError(f"{where}: missing field 'strategy.leverage' (the champion's evolved leverage)")
        return
    if market != "perp":
        raise ChampionError(f"{where}: strategy.leverage is {lev!r} but portfolio.market is {market!r} (no leverage)")
    lev = _finite(where, "strategy.leverage", lev)
    if lev <= 0:
        raise ChampionError(f"{where}: strategy.leverage must be > 0, got {lev!r}")
    if lev != float(pf["leverage"]):
        raise ChampionError(
            f"{where}: strategy.leverage {lev:g} differs from portfolio.leverage {pf['leverage']!r}: the live sizer "
            "sizes a perp champion at portfolio.leverage, so they must agree"
        )
    if "leverage" in genes:
        lo, hi = genes["leverage"]
        if not lo <= lev <= hi:
            raise ChampionError(f"{where}: strategy.leverage {lev:g} is outside the evolved range [{lo:g}, {hi:g}]")


def _check_risk_free(where: str, rf) -> None:
    """``portfolio.risk_free`` (optional): the setting (``annual``, or a file's ``path``) and the mean rate."""
    if rf is None:
        return
    if not isinstance(rf, dict) or not ("annual" in rf or isinstance(rf.get("path"), str)):
        raise ChampionError(f"{where}: portfolio.risk_free must be an object with annual or path, got {rf!r}")
    for key in ("annual", "per_bar", "annualized"):
        if key in rf or key != "annual":
            _finite(where, f"portfolio.risk_free.{key}", rf.get(key))


def _check_account(where: str, pf: dict, assets) -> None:
    """The account model: ``market`` spot (or absent) or perp; a perp champion's leverage is a positive number and
    its max_leverage null or a number >= 1 per asset, none below the leverage."""
    market = pf.get("market", "spot")
    if market not in V.MARKETS:
        raise ChampionError(f"{where}: portfolio.market must be one of {list(V.MARKETS)}, got {market!r}")
    if market == "spot":
        return
    if "leverage" not in pf:
        raise ChampionError(f"{where}: missing field 'portfolio.leverage' (a perp champion records its leverage)")
    lev = _finite(where, "portfolio.leverage", pf["leverage"])
    if lev <= 0:
        raise ChampionError(f"{where}: portfolio.leverage must be > 0, got {lev!r}")
    caps = pf.get("max_leverage")
    if caps is None:
        return
    if not isinstance(caps, dict) or set(caps) != set(assets):
        raise ChampionError(f"{where}: portfolio.max_leverage must be null or give a value for every asset")
    for a in assets:
        cap = _finite(where, f"portfolio.max_leverage.{a}", caps[a])
        if cap < 1 or lev > cap:
            raise ChampionError(f"{where}: portfolio.max_leverage.{a} is {caps[a]!r}, below 1 or the leverage {lev:g}")


def _check_constraints(where: str, raw: dict, w: np.ndarray) -> None:
    """Version 2: the recorded constraints are valid and the weights satisfy them; ``holdings`` names exactly the
    assets with a non-zero weight."""
    pf, assets = raw["portfolio"], raw["assets"]
    for key in CONSTRAINT_KEYS:
        if key not in pf and key not in _OPTIONAL_CONSTRAINTS:
            raise ChampionError(f"{where}: missing field 'portfolio.{key}'")
    try:
        cons = Constraints.from_record(assets, pf["direction"], pf)
    except ConfigError as exc:
        raise ChampionError(f"{where}: {exc}") from None
    why = cons.violation(w)
    if why is not None:
        raise ChampionError(f"{where}: the weights break the recorded constraints: {why}")
    holdings = raw.get("holdings")
    expected = [a for a, x in zip(assets, w, strict=True) if x != 0]
    if not isinstance(holdings, list):
        raise ChampionError(f"{where}: field 'holdings' must be a list of the held assets, got {holdings!r}")
    if holdings != expected:
        raise ChampionError(f"{where}: holdings {holdings!r} differ from the assets with non-zero weights {expected!r}")


def _bounds(where: str, key: str, value, assets) -> np.ndarray:
    if isinstance(value, dict):
        if set(value) != set(assets):
            raise ChampionError(f"{where}: portfolio.{key} must give a bound for every asset")
        return np.array([_finite(where, f"portfolio.{key}.{a}", value[a]) for a in assets])
    return np.full(len(assets), _finite(where, f"portfolio.{key}", value))

"""Portfolio constraints beyond per-asset bounds: cardinality, minimum positions, groups, long/short exposure.

These are the constraints a convex optimizer cannot take (cardinality and minimum positions make the problem
mixed-integer). :class:`Constraints` holds them for one list of assets;
:class:`~genetic_sizer.evolution.space.GenomeSpace` composes it with the per-asset bounds, and
:func:`~genetic_sizer.evolution.feasibility.check_feasible` decides whether all of them can hold at once.

* ``max_assets`` (K): at most K non-zero weights.
* ``min_assets``: at least this many non-zero weights (``min_assets = max_assets``: exactly K, the cardinality model
  of Chang, Meade, Beasley and Sharaiha 2000).
* ``min_position`` (m): every non-zero weight has ``|w| >= m`` (semi-continuous positions). The default,
  :data:`genetic_sizer.vocab.DEFAULT_MIN_POSITION` = 0.001 of gross exposure, rules out dust no exchange can trade;
  0 turns the rule off. An asset whose ``min_weight`` is above 0 must be held, so its effective lower bound is
  ``max(min_weight, min_position)``.
* ``groups`` ``{NAME: [SYMBOL, ...]}`` with ``max_group_weight`` / ``min_group_weight`` ``{NAME: x}`` (or one
  number for every group): bounds on the summed ``|w|`` of each group. Groups may overlap.
* Long/short only: ``net_exposure: [lo, hi]`` bounds ``sum(w)`` (gross exposure is 1, so ``[0, 0]`` is market
  neutral), ``max_gross_long`` / ``max_gross_short`` cap the summed long / short magnitudes. With gross 1 all three
  are bounds on the gross long exposure ``L = sum(w > 0)``: ``net = 2 L - 1``.

For a fixed sign pattern every group and exposure bound is a linear row on the magnitudes ``|w|``:
:meth:`Constraints.rows` gives them, and the genome operators cut their steps at them exactly. :func:`side_boxes`
gives each asset's magnitude range as a long and as a short position (:class:`SideBoxes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from genetic_sizer.errors import ConfigError
from genetic_sizer.vocab import DEFAULT_MIN_POSITION, normalize_constraint_keys

__all__ = ["Constraints", "SideBoxes", "side_boxes"]

TOL = 1e-9
"""Tolerance of the checks (the same as :data:`genetic_sizer.evolution.space.TOL`)."""


def _names(symbols) -> str:
    symbols = list(symbols)
    return ", ".join(symbols[:8]) + (f" and {len(symbols) - 8} more" if len(symbols) > 8 else "")


@dataclass(frozen=True, eq=False)
class Constraints:
    """Cardinality, minimum position, group and exposure constraints for one list of assets.

    Build it with :meth:`create` (which checks names and ranges, not feasibility: that needs the per-asset
    bounds, see :func:`~genetic_sizer.evolution.feasibility.check_feasible`). ``group_matrix`` is
    (n_groups, n_assets) of 0/1; ``long_lo`` and ``long_hi`` bound the gross long exposure of a long/short
    portfolio (``[0, 1]``: no bound).
    """

    symbols: tuple[str, ...]
    direction: str = "longonly"
    max_assets: int | None = None
    min_assets: int | None = None
    min_position: float = DEFAULT_MIN_POSITION
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_group_weight: Mapping[str, float] = field(default_factory=dict)
    min_group_weight: Mapping[str, float] = field(default_factory=dict)
    net_exposure: tuple[float, float] | None = None
    max_gross_long: float | None = None
    max_gross_short: float | None = None
    group_names: tuple[str, ...] = ()
    group_matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    group_lo: np.ndarray = field(default_factory=lambda: np.zeros(0))
    group_hi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    long_lo: float = 0.0
    long_hi: float = 1.0

    @classmethod
    def create(
        cls,
        symbols,
        direction: str = "longonly",
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
    ) -> Constraints:
        """Validate the values against the assets; raise :class:`ConfigError` naming the key and value."""
        symbols = tuple(str(s) for s in symbols)
        n = len(symbols)
        keys = normalize_constraint_keys(
            direction,
            max_assets=max_assets,
            min_assets=min_assets,
            min_position=min_position,
            groups=groups,
            max_group_weight=max_group_weight,
            min_group_weight=min_group_weight,
            net_exposure=net_exposure,
            max_gross_long=max_gross_long,
            max_gross_short=max_gross_short,
        )
        max_assets, min_position, clean = keys["max_assets"], keys["min_position"], keys["groups"] or {}
        min_assets = keys["min_assets"]
        if min_assets is not None and min_assets > n:
            raise ConfigError(f"portfolio.min_assets is {min_assets} but there are only {n} assets")
        net_exposure, max_gross_long, max_gross_short = (
            keys["net_exposure"],
            keys["max_gross_long"],
            keys["max_gross_short"],
        )
        index = {s: k for k, s in enumerate(symbols)}
        for name, members in clean.items():
            unknown = [m for m in members if m not in index]
            if unknown:
                raise ConfigError(f"portfolio.groups.{name}: unknown symbol(s) {unknown}; assets are {list(symbols)}")

        def per_group(value) -> dict[str, float]:
            if value is None:
                return {}
            return dict.fromkeys(clean, value) if isinstance(value, float) else dict(value)

        gmax = per_group(keys["max_group_weight"])
        gmin = per_group(keys["min_group_weight"])
        for g in clean:
            if gmin.get(g, 0.0) > gmax.get(g, 1.0):
                raise ConfigError(
                    f"portfolio.min_group_weight.{g} {gmin[g]:g} > portfolio.max_group_weight.{g} {gmax[g]:g}"
                )
        names = tuple(clean)
        matrix = np.zeros((len(names), n))
        for r, g in enumerate(names):
            matrix[r, [index[s] for s in clean[g]]] = 1.0
        glo = np.array([gmin.get(g, 0.0) for g in names])
        ghi = np.array([gmax.get(g, 1.0) for g in names])

        long_lo, long_hi = 0.0, 1.0
        if net_exposure is not None:
            long_lo, long_hi = (1.0 + net_exposure[0]) / 2.0, (1.0 + net_exposure[1]) / 2.0
        if max_gross_long is not None:
            long_hi = min(long_hi, max_gross_long)
        if max_gross_short is not None:
            long_lo = max(long_lo, 1.0 - max_gross_short)
        if long_lo > long_hi + TOL:
            raise ConfigError(
                "portfolio long/short exposure bounds conflict: with gross exposure 1, "
                + _exposure_text(net_exposure, max_gross_long, max_gross_short)
                + f" need a gross long exposure in [{long_lo:g}, {long_hi:g}], which is empty"
            )
        for a in (matrix, glo, ghi):
            a.flags.writeable = False
        return cls(
            symbols=symbols,
            direction=direction,
            max_assets=max_assets,
            min_assets=min_assets,
            min_position=min_position,
            groups=clean,
            max_group_weight=gmax,
            min_group_weight=gmin,
            net_exposure=net_exposure,
            max_gross_long=max_gross_long,
            max_gross_short=max_gross_short,
            group_names=names,
            group_matrix=matrix,
            group_lo=glo,
            group_hi=ghi,
            long_lo=long_lo,
            long_hi=long_hi,
        )

    # ---- properties ---------------------------------------------------------------------------------
    @property
    def n_assets(self) -> int:
        return len(self.symbols)

    @property
    def k(self) -> int:
        """The largest number of positions (``max_assets``, or every asset)."""
        return self.n_assets if self.max_assets is None else min(self.max_assets, self.n_assets)

    @property
    def k_min(self) -> int:
        """The smallest number of positions (``min_assets``, or 1)."""
        return 1 if self.min_assets is None else self.min_assets

    @property
    def has_long_row(self) -> bool:
        return self.direction == "longshort" and (self.long_lo > 0.0 or self.long_hi < 1.0)

    @property
    def has_rows(self) -> bool:
        """Whether there are group or exposure rows (the feasibility question then needs the MIP)."""
        return len(self.group_names) > 0 or self.has_long_row

    def rows(self, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Linear rows on the magnitudes ``|w|`` for these signs: ``lo <= R @ |w| <= hi``."""
        if not self.has_long_row:
            return self.group_matrix, self.group_lo, self.group_hi
        long = (np.asarray(signs) > 0).astype(np.float64)[None, :]
        return (
            np.vstack((self.group_matrix, long)),
            np.append(self.group_lo, self.long_lo),
            np.append(self.group_hi, self.long_hi),
        )

    # ---- validity -----------------------------------------------------------------------------------
    def violation(self, w) -> str | None:
        """Why ``w`` (finite, right shape) breaks these constraints, or None. Bounds and the sum are not checked
        here (see :meth:`~genetic_sizer.evolution.space.GenomeSpace.violation`)."""
        w = np.asarray(w, dtype=np.float64)
        m = np.abs(w)
        held = w != 0
        dust = np.flatnonzero(held & (m < self.min_position - TOL))
        if dust.size:
            k = int(dust[0])
            return (
                f"weight of {self.symbols[k]!r} is {float(w[k])!r}, under min_position {self.min_position:g} "
                "(a weight is 0 or at least min_position)"
            )
        count = int(held.sum())
        if count > self.k:
            return f"holds {count} assets, more than max_assets {self.k}"
        if count < self.k_min:
            return f"holds {count} assets, fewer than min_assets {self.k_min}"
        if len(self.group_names):
            total = self.group_matrix @ m
            for r, g in enumerate(self.group_names):
                if total[r] > self.group_hi[r] + TOL:
                    return (
                        f"group {g!r} holds {float(total[r])!r} (sum of |w| over {_names(self.groups[g])}), "
                        f"above max_group_weight {self.group_hi[r]:g}"
                    )
                if total[r] < self.group_lo[r] - TOL:
                    return (
                        f"group {g!r} holds {float(total[r])!r} (sum of |w| over {_names(self.groups[g])}), "
                        f"below min_group_weight {self.group_lo[r]:g}"
                    )
        if self.direction == "longshort":
            long, short = float(w[w > 0].sum()), float(-w[w < 0].sum())
            net = float(w.sum())
            if self.net_exposure is not None:
                lo, hi = self.net_exposure
                if not lo - TOL <= net <= hi + TOL:
                    return f"net exposure (sum of w) is {net!r}, outside net_exposure [{lo:g}, {hi:g}]"
            if self.max_gross_long is not None and long > self.max_gross_long + TOL:
                return f"gross long exposure is {long!r}, above max_gross_long {self.max_gross_long:g}"
            if self.max_gross_short is not None and short > self.max_gross_short + TOL:
                return f"gross short exposure is {short!r}, above max_gross_short {self.max_gross_short:g}"
        return None

    def violates(self, weights: np.ndarray) -> np.ndarray:
        """Per row of (n, n_assets): whether it breaks these constraints (vectorized :meth:`violation`)."""
        w = np.asarray(weights, dtype=np.float64)
        m = np.abs(w)
        held = w != 0
        bad = (held & (m < self.min_position - TOL)).any(axis=1)
        count = held.sum(axis=1)
        bad |= (count > self.k) | (count < self.k_min)
        if len(self.group_names):
            total = m @ self.group_matrix.T
            bad |= ((total > self.group_hi + TOL) | (total < self.group_lo - TOL)).any(axis=1)
        if self.direction == "longshort":
            long = np.where(w > 0, w, 0.0).sum(axis=1)
            if self.net_exposure is not None:
                net = w.sum(axis=1)
                bad |= (net < self.net_exposure[0] - TOL) | (net > self.net_exposure[1] + TOL)
            if self.max_gross_long is not None:
                bad |= long > self.max_gross_long + TOL
            if self.max_gross_short is not None:
                bad |= (m.sum(axis=1) - long) > self.max_gross_short + TOL
        return bad

    def violation_of(self, weights: Mapping[str, float]) -> str | None:
        """:meth:`violation` for a ``{symbol: weight}`` mapping (symbols it lacks weigh 0; unknown ones are an
        error)."""
        unknown = sorted(set(weights) - set(self.symbols))
        if unknown:
            return f"weights name asset(s) {unknown} that the constraints do not know"
        return self.violation(np.array([float(weights.get(s, 0.0)) for s in self.symbols]))

    # ---- records ------------------------------------------------------------------------------------
    def record(self) -> dict:
        """The constraint keys as the champion file's ``portfolio`` section stores them (JSON-able)."""
        return {
            "max_assets": self.max_assets,
            "min_assets": self.min_assets,
            "min_position": self.min_position,
            "groups": {g: list(m) for g, m in self.groups.items()},
            "max_group_weight": dict(self.max_group_weight),
            "min_group_weight": dict(self.min_group_weight),
            "net_exposure": None if self.net_exposure is None else list(self.net_exposure),
            "max_gross_long": self.max_gross_long,
            "max_gross_short": self.max_gross_short,
        }

    @classmethod
    def from_record(cls, symbols, direction: str, portfolio: Mapping) -> Constraints:
        """Read :meth:`record`'s keys back (absent keys: no constraint, and ``min_position`` 0, which is how files
        written before these constraints existed are read)."""
        return cls.create(
            symbols,
            direction,
            max_assets=portfolio.get("max_assets"),
            min_assets=portfolio.get("min_assets"),
            min_position=portfolio.get("min_position", 0.0),
            groups=portfolio.get("groups") or None,
            max_group_weight=portfolio.get("max_group_weight") or None,
            min_group_weight=portfolio.get("min_group_weight") or None,
            net_exposure=portfolio.get("net_exposure"),
            max_gross_long=portfolio.get("max_gross_long"),
            max_gross_short=portfolio.get("max_gross_short"),
        )


def _exposure_text(net, max_long, max_short) -> str:
    parts = []
    if net is not None:
        parts.append(f"net_exposure [{net[0]:g}, {net[1]:g}]")
    if max_long is not None:
        parts.append(f"max_gross_long {max_long:g}")
    if max_short is not None:
        parts.append(f"max_gross_short {max_short:g}")
    return " and ".join(parts)


# ---- per-asset magnitude boxes -------------------------------------------------------------------------
@dataclass(frozen=True)
class SideBoxes:
    """Per asset: the magnitude range of a long and of a short position (``ok_*``: whether that side can be held
    at all, i.e. ``max(mlo, min_position) <= mhi``), and whether the weight may be 0."""

    lo_long: np.ndarray
    hi_long: np.ndarray
    ok_long: np.ndarray
    lo_short: np.ndarray
    hi_short: np.ndarray
    ok_short: np.ndarray
    zero_ok: np.ndarray

    @property
    def holdable(self) -> np.ndarray:
        return self.ok_long | self.ok_short

    @property
    def hi_best(self) -> np.ndarray:
        """The largest magnitude each asset can hold (0 when it cannot be held)."""
        return np.maximum(np.where(self.ok_long, self.hi_long, 0.0), np.where(self.ok_short, self.hi_short, 0.0))

    @property
    def lo_best(self) -> np.ndarray:
        """The smallest non-zero magnitude each asset can hold (inf when it cannot be held)."""
        return np.minimum(np.where(self.ok_long, self.lo_long, np.inf), np.where(self.ok_short, self.lo_short, np.inf))


def side_boxes(lower: np.ndarray, upper: np.ndarray, direction: str, min_position: float) -> SideBoxes:
    lo_long = np.maximum(np.maximum(lower, 0.0), min_position)
    hi_long = np.maximum(upper, 0.0)
    ok_long = (hi_long > 0.0) & (hi_long >= lo_long)
    if direction == "longshort":
        lo_short = np.maximum(np.maximum(-upper, 0.0), min_position)
        hi_short = np.maximum(-lower, 0.0)
        ok_short = (hi_short > 0.0) & (hi_short >= lo_short)
    else:
        lo_short = np.full_like(lower, np.inf)
        hi_short = np.zeros_like(lower)
        ok_short = np.zeros(len(lower), dtype=bool)
    zero_ok = (lower <= 0.0) & (upper >= 0.0)
    return SideBoxes(lo_long, hi_long, ok_long, lo_short, hi_short, ok_short, zero_ok)

"""Portfolio constraints beyond per-asset bounds: cardinality, minimum positions, groups, long/short exposure.

These are the constraints a convex optimizer cannot take (cardinality and minimum positions make the problem
mixed-integer). :class:`Constraints` holds them for one list of assets; :class:`~genetic_sizer.evolution.genome.GenomeSpace`
composes it with the per-asset bounds, and :func:`check_feasible` decides whether all of them can hold at once.

* ``max_assets`` (K): at most K non-zero weights.
* ``min_position`` (m): every non-zero weight has ``|w| >= m`` (semi-continuous positions). The default,
  :data:`genetic_sizer.vocab.DEFAULT_MIN_POSITION` = 0.001 of gross exposure, rules out dust no exchange can trade; 0 turns the rule
  off. An asset whose ``min_weight`` is above 0 must be held, so its effective lower bound is
  ``max(min_weight, min_position)``.
* ``groups`` ``{NAME: [SYMBOL, ...]}`` with ``max_group_weight`` / ``min_group_weight`` ``{NAME: x}`` (or one
  number for every group): bounds on the summed ``|w|`` of each group. Groups may overlap.
* Long/short only: ``net_exposure: [lo, hi]`` bounds ``sum(w)`` (gross exposure is 1, so ``[0, 0]`` is market
  neutral), ``max_gross_long`` / ``max_gross_short`` cap the summed long / short magnitudes. With gross 1 all three
  are bounds on the gross long exposure ``L = sum(w > 0)``: ``net = 2 L - 1``.

For a fixed sign pattern every group and exposure bound is a linear row on the magnitudes ``|w|``:
:meth:`Constraints.rows` gives them, and the genome operators cut their steps at them exactly.

Feasibility (:func:`check_feasible`) is checked exactly:

* without groups and exposure bounds, in closed form: the assets that must be held (``min_weight > 0``), plus the
  ``t`` optional assets with the largest ``max_weight``, for the largest ``t`` that ``max_assets`` and
  ``min_position`` allow (``t`` positions need ``t x min_position`` of the budget), must reach a gross of 1;
* with groups or exposure bounds, it is a small mixed-integer feasibility problem (a binary "held long / held
  short" per asset, the bounds, the count, the rows), solved with HiGHS through ``scipy.optimize.milp``. When it
  is infeasible, each family of constraints is relaxed in turn to find a minimal conflicting set, which the
  :class:`ConfigError` names with its numbers.

Closed-form checks run first so that the common conflicts get a specific message, e.g. ``max_assets: 3`` with
``max_weight: 0.3`` ("3 x 0.3 = 0.9 < 1").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from genetic_sizer.errors import ConfigError
from genetic_sizer.vocab import DEFAULT_MIN_POSITION, normalize_constraint_keys

__all__ = ["Constraints", "check_feasible"]

TOL = 1e-9
"""Tolerance of the checks (the same as :data:`genetic_sizer.evolution.genome.TOL`)."""


def _names(symbols) -> str:
    symbols = list(symbols)
    return ", ".join(symbols[:8]) + (f" and {len(symbols) - 8} more" if len(symbols) > 8 else "")


@dataclass(frozen=True, eq=False)
class Constraints:
    """Cardinality, minimum position, group and exposure constraints for one list of assets.

    Build it with :meth:`create` (which checks names and ranges, not feasibility: that needs the per-asset
    bounds, see :func:`check_feasible`). ``group_matrix`` is (n_groups, n_assets) of 0/1; ``long_lo`` and
    ``long_hi`` bound the gross long exposure of a long/short portfolio (``[0, 1]``: no bound).
    """

    symbols: tuple[str, ...]
    direction: str = "longonly"
    max_assets: int | None = None
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
            min_position=min_position,
            groups=groups,
            max_group_weight=max_group_weight,
            min_group_weight=min_group_weight,
            net_exposure=net_exposure,
            max_gross_long=max_gross_long,
            max_gross_short=max_gross_short,
        )
        max_assets, min_position, clean = keys["max_assets"], keys["min_position"], keys["groups"] or {}
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
        here (see :meth:`GenomeSpace.violation`)."""
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
        bad |= held.sum(axis=1) > self.k
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


# ---- feasibility ------------------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class Feasibility:
    """What :func:`check_feasible` found: the support sizes that can reach gross 1 without rows (``k_min`` ..
    ``k_max``), and a feasible weight vector (for spaces with rows; None otherwise)."""

    k_min: int
    k_max: int
    point: np.ndarray | None


def _count_range(sides: SideBoxes, cons: Constraints) -> tuple[int, int, str | None]:
    """Exact support-size range without rows, or a message saying which keys conflict."""
    symbols = cons.symbols
    m = cons.min_position
    forced = ~sides.zero_ok
    hi, lo = sides.hi_best, sides.lo_best
    bad = np.flatnonzero(forced & ~sides.holdable)
    if bad.size:
        k = int(bad[0])
        return (
            0,
            0,
            (
                f"{symbols[k]!r} must hold a position (its bounds exclude 0) but no position fits: "
                f"portfolio.min_position {m:g} is above what its max_weight / min_weight allow"
            ),
        )
    n_forced = int(forced.sum())
    lo_forced, hi_forced = float(lo[forced].sum()), float(hi[forced].sum())
    if n_forced > cons.k:
        return (
            0,
            0,
            (
                f"portfolio.min_weight / max_weight force positions in {n_forced} assets "
                f"({_names(np.array(symbols)[forced])}) but portfolio.max_assets is {cons.k}"
            ),
        )
    if lo_forced > 1 + TOL:
        return (
            0,
            0,
            (
                f"the positions that portfolio.min_weight forces ({_names(np.array(symbols)[forced])}), each at least "
                f"max(min_weight, min_position {m:g}), sum to {lo_forced:g} > 1"
            ),
        )
    optional = sides.zero_ok & sides.holdable
    hi_opt = np.sort(hi[optional])[::-1]
    n_opt = len(hi_opt)
    by_count = cons.k - n_forced
    by_size = n_opt if m <= 0 else math.floor((1.0 - lo_forced) / m + 1e-9)
    t_max = max(0, min(by_count, by_size, n_opt))
    reach = hi_forced + np.concatenate(([0.0], np.cumsum(hi_opt)))  # reach[t]: forced + the t largest optional
    what = "sum" if cons.direction == "longonly" else "gross exposure"
    if reach[t_max] < 1 - TOL:
        cannot = [s for s, ok in zip(symbols, sides.holdable, strict=True) if not ok]
        if t_max == by_count and by_count < min(by_size, n_opt):
            top = hi_opt[:t_max]
            caps = f"{t_max} x {top[0]:g}" if t_max and np.all(top == top[0]) else f"the {t_max} largest max_weight"
            return (
                0,
                0,
                (
                    f"portfolio.max_assets {cons.k} with portfolio.max_weight cannot reach a {what} of 1: "
                    f"{caps}{' plus the forced positions' if n_forced else ''} = {reach[t_max]:g} < 1"
                ),
            )
        if t_max == by_size and by_size < n_opt:
            return (
                0,
                0,
                (
                    f"portfolio.min_position {m:g} allows at most {n_forced + t_max} positions "
                    f"({n_forced + t_max} x {m:g} <= 1), and with portfolio.max_weight they reach a {what} of at most "
                    f"{reach[t_max]:g} < 1"
                ),
            )
        extra = f"; assets that cannot hold a position of min_position {m:g}: {_names(cannot)}" if cannot else ""
        return 0, 0, (f"portfolio.max_weight: the assets can reach a {what} of at most {reach[t_max]:g} < 1{extra}")
    t_min = int(np.argmax(reach >= 1 - TOL))
    return n_forced + t_min, n_forced + t_max, None


def check_feasible(lower: np.ndarray, upper: np.ndarray, cons: Constraints) -> Feasibility:
    """Whether some weight vector meets the bounds and every constraint at once; raise :class:`ConfigError`
    naming the conflicting keys and numbers when none does (see the module docstring for what is checked)."""
    sides = side_boxes(lower, upper, cons.direction, cons.min_position)
    k_min, k_max, why = _count_range(sides, cons)
    if why is not None:
        raise ConfigError(f"infeasible constraints: {why}")
    if not cons.has_rows:
        return Feasibility(k_min, k_max, None)
    why = _row_checks(sides, cons)
    if why is not None:
        raise ConfigError(f"infeasible constraints: {why}")
    point = _milp_point(lower, upper, cons, _families(cons))
    if point is None:
        raise ConfigError(f"infeasible constraints: {_conflict(lower, upper, cons)}")
    return Feasibility(k_min, k_max, point)


def _row_checks(sides: SideBoxes, cons: Constraints) -> str | None:
    """Closed-form necessary conditions on groups and exposure, for specific messages."""
    hi = sides.hi_best
    forced = ~sides.zero_ok
    lo_forced = np.where(forced, sides.lo_best, 0.0)
    for r, g in enumerate(cons.group_names):
        members = cons.group_matrix[r] > 0
        top = np.sort(hi[members])[::-1][: cons.k].sum()
        if top < cons.group_lo[r] - TOL:
            return (
                f"portfolio.min_group_weight.{g} is {cons.group_lo[r]:g} but its assets ({_names(cons.groups[g])}) "
                f"can hold at most {top:g} (portfolio.max_weight"
                + (f", at most max_assets {cons.k} of them)" if cons.max_assets is not None else ")")
            )
        need = lo_forced[members].sum()
        if need > cons.group_hi[r] + TOL:
            return (
                f"portfolio.max_group_weight.{g} is {cons.group_hi[r]:g} but the positions portfolio.min_weight forces "
                f"in it (each at least min_position {cons.min_position:g}) sum to {need:g}"
            )
    in_groups = cons.group_matrix.sum(axis=0)
    if len(cons.group_names) and (in_groups <= 1).all():  # disjoint groups: totals add up
        floors = cons.group_lo.sum()
        if floors > 1 + TOL:
            return f"portfolio.min_group_weight values sum to {floors:g} > 1"
        cap = sum(
            min(cons.group_hi[r], np.sort(hi[cons.group_matrix[r] > 0])[::-1][: cons.k].sum())
            for r in range(len(cons.group_names))
        )
        free = np.sort(hi[in_groups == 0])[::-1][: cons.k].sum()
        if cap + free < 1 - TOL:
            capped = ", ".join(f"{g} {cons.group_hi[r]:g}" for r, g in enumerate(cons.group_names))
            return (
                f"portfolio.max_group_weight ({capped}) with the ungrouped assets' max_weight allows a gross of at "
                f"most {cap + free:g} < 1"
            )
    if cons.has_long_row:
        text = _exposure_text(cons.net_exposure, cons.max_gross_long, cons.max_gross_short)
        long_cap = np.sort(np.where(sides.ok_long, sides.hi_long, 0.0))[::-1][: cons.k].sum()
        short_cap = np.sort(np.where(sides.ok_short, sides.hi_short, 0.0))[::-1][: cons.k].sum()
        if long_cap < cons.long_lo - TOL:
            return (
                f"{text} need a gross long exposure of at least {cons.long_lo:g}, but the assets that may be long "
                f"(max_weight > 0) hold at most {long_cap:g}"
            )
        if short_cap < 1 - cons.long_hi - TOL:
            return (
                f"{text} need a gross short exposure of at least {1 - cons.long_hi:g}, but the assets that may be "
                f"short (min_weight < 0) hold at most {short_cap:g}"
            )
    return None


def _families(cons: Constraints) -> dict[str, str]:
    """The constraint families the conflict search relaxes one at a time: key -> text with its numbers."""
    fam = {}
    if cons.max_assets is not None:
        fam["max_assets"] = f"max_assets {cons.max_assets}"
    if cons.min_position > 0:
        fam["min_position"] = f"min_position {cons.min_position:g}"
    for r, g in enumerate(cons.group_names):
        if cons.group_hi[r] < 1:
            fam[f"max_group_weight.{g}"] = f"max_group_weight.{g} {cons.group_hi[r]:g}"
        if cons.group_lo[r] > 0:
            fam[f"min_group_weight.{g}"] = f"min_group_weight.{g} {cons.group_lo[r]:g}"
    if cons.has_long_row:
        fam["exposure"] = _exposure_text(cons.net_exposure, cons.max_gross_long, cons.max_gross_short)
    return fam


def _conflict(lower: np.ndarray, upper: np.ndarray, cons: Constraints) -> str:
    """A minimal set of constraint families that cannot hold together (deletion filter over the MIP)."""
    fam = _families(cons)
    keep = dict(fam)
    for key in list(fam):
        trial = {k: v for k, v in keep.items() if k != key}
        if _milp_point(lower, upper, cons, trial) is None:
            keep = trial
    listed = "; ".join(f"portfolio.{v}" for v in keep.values())
    return (
        f"no portfolio satisfies {listed} together with portfolio.min_weight / max_weight (checked exactly with a "
        "mixed-integer program; relaxing any one of these makes a portfolio possible)"
    )


def _milp_point(lower: np.ndarray, upper: np.ndarray, cons: Constraints, active: dict) -> np.ndarray | None:
    """A feasible weight vector for the bounds and the ``active`` families (keys of :func:`_families`), or None.

    A mixed-integer program picks the support and signs (HiGHS via ``scipy.optimize.milp``); a linear program on
    that support then gives the weights (a vertex of the support's polytope, checked by the caller).
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = cons.n_assets
    m_pos = cons.min_position if "min_position" in active else 0.0
    sides = side_boxes(lower, upper, cons.direction, m_pos)
    # variables: magnitudes and binaries for each allowed (asset, side)
    cols = [(i, +1) for i in range(n) if sides.ok_long[i]] + [(i, -1) for i in range(n) if sides.ok_short[i]]
    if not cols:
        return None
    v = len(cols)
    lo = np.array([sides.lo_long[i] if s > 0 else sides.lo_short[i] for i, s in cols])
    hi = np.array([sides.hi_long[i] if s > 0 else sides.hi_short[i] for i, s in cols])
    rows, rlo, rhi = [], [], []

    def add(coef_m, coef_z, a, b):
        rows.append(np.concatenate((coef_m, coef_z)))
        rlo.append(a)
        rhi.append(b)

    eye = np.eye(v)
    for j in range(v):  # lo z <= m <= hi z
        add(eye[j], -hi[j] * eye[j], -np.inf, 0.0)
        add(eye[j], -lo[j] * eye[j], 0.0, np.inf)
    for i in range(n):
        sel = np.array([1.0 if c[0] == i else 0.0 for c in cols])
        if sel.any():
            add(np.zeros(v), sel, 0.0 if sides.zero_ok[i] else 1.0, 1.0)
        elif not sides.zero_ok[i]:
            return None
    k = cons.k if "max_assets" in active else n
    add(np.zeros(v), np.ones(v), 0.0, float(k))
    add(np.ones(v), np.zeros(v), 1.0, 1.0)
    for r, g in enumerate(cons.group_names):
        member = np.array([cons.group_matrix[r, i] for i, _ in cols])
        glo = cons.group_lo[r] if f"min_group_weight.{g}" in active else 0.0
        ghi = cons.group_hi[r] if f"max_group_weight.{g}" in active else 1.0
        add(member, np.zeros(v), glo, ghi)
    if cons.has_long_row and "exposure" in active:
        add(np.array([1.0 if s > 0 else 0.0 for _, s in cols]), np.zeros(v), cons.long_lo, cons.long_hi)
    res = milp(
        c=np.zeros(2 * v),
        constraints=LinearConstraint(np.array(rows), np.array(rlo), np.array(rhi)),
        integrality=np.concatenate((np.zeros(v), np.ones(v))),
        bounds=Bounds(np.zeros(2 * v), np.concatenate((hi, np.ones(v)))),
        options={"presolve": True, "time_limit": 30.0},
    )
    if res.status != 0 or res.x is None:
        return None
    z = res.x[v:] > 0.5
    return _support_point(cols, z, lo, hi, cons, active, n)


def _support_point(cols, z, lo, hi, cons: Constraints, active: dict, n: int) -> np.ndarray | None:
    """Weights on the support and signs ``z`` picks: a vertex of the linear program with those positions fixed."""
    from scipy.optimize import linprog

    chosen = [j for j in range(len(cols)) if z[j]]
    if not chosen:
        return None
    a_eq = [np.ones(len(chosen))]
    b_eq = [1.0]
    a_ub, b_ub = [], []
    for r, g in enumerate(cons.group_names):
        member = np.array([cons.group_matrix[r, cols[j][0]] for j in chosen])
        glo = cons.group_lo[r] if f"min_group_weight.{g}" in active else 0.0
        ghi = cons.group_hi[r] if f"max_group_weight.{g}" in active else 1.0
        a_ub += [member, -member]
        b_ub += [ghi, -glo]
    if cons.has_long_row and "exposure" in active:
        long = np.array([1.0 if cols[j][1] > 0 else 0.0 for j in chosen])
        a_ub += [long, -long]
        b_ub += [cons.long_hi, -cons.long_lo]
    res = linprog(
        np.zeros(len(chosen)),
        A_ub=np.array(a_ub) if a_ub else None,
        b_ub=np.array(b_ub) if b_ub else None,
        A_eq=np.array(a_eq),
        b_eq=np.array(b_eq),
        bounds=[(lo[j], hi[j]) for j in chosen],
        method="highs-ds",
        options={"primal_feasibility_tolerance": 1e-10},
    )
    if res.status != 0:
        return None
    x = np.clip(res.x, lo[chosen], hi[chosen])
    w = np.zeros(n)
    for j, val in zip(chosen, x, strict=True):
        i, s = cols[j]
        w[i] = s * val
    return w

"""Genome spaces: the valid weight vectors for a set of assets, their checks and random sampling.

A genome *is* its weight vector (no genotype-to-weights mapping): one float64 weight per asset.

* Long-only (``direction="longonly"``): every weight in ``[lower_i, upper_i]`` with ``lower_i >= 0`` and the
  weights sum to 1 (the bounded simplex).
* Long/short (``direction="longshort"``): every weight in ``[lower_i, upper_i]`` (``lower_i`` may be negative)
  and the gross exposure ``sum |w_i|`` is 1.
* On top of the bounds, the :class:`~genetic_sizer.evolution.constraints.Constraints` the space composes: at most
  ``max_assets`` (and at least ``min_assets``) non-zero weights, every non-zero ``|w_i| >= min_position`` (default
  0.001: no dust), group bounds on summed ``|w|``, and long/short exposure bounds. Every one holds for every genome at
  once.

:meth:`GenomeSpace.create` checks that the bounds and constraints can hold together
(:func:`~genetic_sizer.evolution.feasibility.check_feasible`); :meth:`GenomeSpace.validate` is the boundary check of
a genome; :meth:`GenomeSpace.sample` draws random valid genomes. The operators that vary genomes inside a space and
keep every child valid are in :mod:`genetic_sizer.evolution.operators`;
:func:`~genetic_sizer.evolution.variation.vary_population` varies a whole offspring array, through the compiled
operators, which take the space as the plain arrays of :func:`kernel_space`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from genetic_sizer.errors import ConfigError, GenomeError
from genetic_sizer.evolution.constraints import Constraints, SideBoxes, side_boxes
from genetic_sizer.evolution.feasibility import Feasibility, check_feasible
from genetic_sizer.evolution.operators import mutate
from genetic_sizer.vocab import CONSTRAINT_KEYS, DEFAULT_MIN_POSITION, DIRECTIONS

__all__ = ["TOL", "GenomeSpace", "kernel_space"]

TOL = 1e-9
"""Tolerance of :meth:`GenomeSpace.validate` on the sum (or gross), the bounds and the constraints."""


def _as_bounds(value, name: str, symbols: tuple[str, ...]) -> np.ndarray:
    """A scalar or a {symbol: value} mapping (with a ``default`` entry allowed) -> array per asset."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(symbols) - {"default"})
        if unknown:
            raise ConfigError(f"portfolio.{name}: unknown symbol(s) {unknown}; assets are {list(symbols)}")
        default = value.get("default", 0.0 if name == "min_weight" else 1.0)
        out = [value.get(s, default) for s in symbols]
    else:
        out = [value] * len(symbols)
    arr = np.empty(len(symbols))
    for k, v in enumerate(out):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
            raise ConfigError(f"portfolio.{name} for {symbols[k]!r} must be a finite number, got {v!r}")
        arr[k] = float(v)
    return arr


@dataclass(frozen=True, eq=False)
class GenomeSpace:
    """The valid weight vectors for a set of assets: direction, per-asset bounds and constraints.

    Build it with :meth:`create` (or :meth:`from_config`), which checks that bounds and constraints can hold
    together.
    """

    symbols: tuple[str, ...]
    direction: str
    lower: np.ndarray
    upper: np.ndarray
    constraints: Constraints = None  # type: ignore[assignment]
    feasibility: Feasibility = field(default=None, repr=False)  # type: ignore[assignment]
    sides: SideBoxes = field(default=None, repr=False)  # type: ignore[assignment]

    @classmethod
    def create(
        cls,
        symbols,
        direction: str = "longonly",
        min_weight=0.0,
        max_weight=1.0,
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
    ) -> GenomeSpace:
        """Validate direction, bounds and constraints; raise :class:`ConfigError` saying why they cannot be met.

        ``min_weight`` and ``max_weight`` are numbers or ``{symbol: number}`` mappings (``default`` sets the
        rest). The keywords are the constraints of :class:`~genetic_sizer.evolution.constraints.Constraints`.
        """
        symbols = tuple(str(s) for s in symbols)
        if len(symbols) < 2:
            raise ConfigError(f"a genome needs at least 2 assets, got {list(symbols)}")
        if direction not in DIRECTIONS:
            raise ConfigError(f"portfolio.direction must be one of {list(DIRECTIONS)}, got {direction!r}")
        lo = _as_bounds(min_weight, "min_weight", symbols)
        hi = _as_bounds(max_weight, "max_weight", symbols)
        n = len(symbols)
        for k in range(n):
            if lo[k] > hi[k]:
                raise ConfigError(f"portfolio.min_weight {lo[k]:g} > portfolio.max_weight {hi[k]:g} for {symbols[k]!r}")
            if direction == "longonly" and lo[k] < 0:
                raise ConfigError(
                    f"portfolio.min_weight is {lo[k]:g} for {symbols[k]!r}: long-only weights are >= 0 "
                    "(use direction: longshort for short positions)"
                )
            if hi[k] > 1 or lo[k] < -1:
                raise ConfigError(
                    f"portfolio bounds for {symbols[k]!r} are [{lo[k]:g}, {hi[k]:g}]: a weight is within [-1, 1]"
                )
        if direction == "longonly":
            if hi.sum() < 1 - TOL:
                raise ConfigError(
                    f"infeasible bounds: {n} assets x max_weight sum to {hi.sum():g} < 1, so the weights cannot "
                    "sum to 1; raise portfolio.max_weight or add assets"
                )
            if lo.sum() > 1 + TOL:
                raise ConfigError(
                    f"infeasible bounds: {n} assets x min_weight sum to {lo.sum():g} > 1, so the weights cannot "
                    "sum to 1; lower portfolio.min_weight"
                )
        else:
            gross_min = np.where(lo > 0, lo, np.where(hi < 0, -hi, 0.0)).sum()
            gross_max = np.maximum(np.abs(lo), np.abs(hi)).sum()
            if gross_max < 1 - TOL:
                raise ConfigError(
                    f"infeasible bounds: the largest gross exposure the bounds allow is {gross_max:g} < 1; "
                    "widen portfolio.min_weight / portfolio.max_weight"
                )
            if gross_min > 1 + TOL:
                raise ConfigError(
                    f"infeasible bounds: the bounds force a gross exposure of at least {gross_min:g} > 1; "
                    "bring portfolio.min_weight / portfolio.max_weight closer to 0"
                )
        lo.flags.writeable = False
        hi.flags.writeable = False
        cons = Constraints.create(
            symbols,
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
        feasibility = check_feasible(lo, hi, cons)
        space = cls(
            symbols=symbols,
            direction=direction,
            lower=lo,
            upper=hi,
            constraints=cons,
            feasibility=feasibility,
            sides=side_boxes(lo, hi, direction, cons.min_position),
        )
        if feasibility.point is not None:
            why = space.violation(feasibility.point)
            if why is not None:  # pragma: no cover - the solver's point is checked, never trusted
                raise ConfigError(f"the constraints look feasible but the solver's portfolio is not valid: {why}")
        return space

    @classmethod
    def from_config(cls, symbols, portfolio) -> GenomeSpace:
        """The space a :class:`~genetic_sizer.config.PortfolioConfig` describes for these symbols."""
        extra = {k: getattr(portfolio, k) for k in CONSTRAINT_KEYS if hasattr(portfolio, k)}
        return cls.create(symbols, portfolio.direction, portfolio.min_weight, portfolio.max_weight, **extra)

    @property
    def n_assets(self) -> int:
        return len(self.symbols)

    @property
    def longonly(self) -> bool:
        return self.direction == "longonly"

    @property
    def max_assets(self) -> int:
        """The most non-zero weights a genome may have (every asset when ``max_assets`` is not set)."""
        return self.constraints.k

    @property
    def min_assets(self) -> int:
        """The fewest non-zero weights a genome may have (``min_assets``, or 1)."""
        return self.constraints.k_min

    @property
    def min_position(self) -> float:
        return self.constraints.min_position

    @property
    def zero_ok(self) -> np.ndarray:
        """Whether each asset's weight may be 0 (its bounds include 0)."""
        return self.sides.zero_ok

    @cached_property
    def kernel_space(self) -> tuple:
        """The space as the plain arrays the compiled operators take (:mod:`genetic_sizer.evolution.vary_nb`):
        held boxes of long and short positions (``lo_long, hi_long, ok_long, lo_short, hi_short, ok_short``),
        ``zero_ok``, the group matrix, the lower and upper bounds of every constraint row (groups, then the gross long
        exposure when bounded), ``long_lo``, ``long_hi``, ``has_long_row``, ``max_assets``, ``longonly`` and
        ``min_assets``."""
        return kernel_space(self)

    # ---- signs and magnitude boxes -------------------------------------------------------------
    def signs(self, w: np.ndarray) -> np.ndarray:
        """+1 or -1 per asset; a zero weight gets the sign its bounds allow (long when both are allowed)."""
        return np.where(w > 0, 1.0, np.where(w < 0, -1.0, np.where(self.sides.ok_long, 1.0, -1.0)))

    def magnitude_box(self, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of ``|w_i|`` for the given signs (from the per-asset bounds only)."""
        pos = signs > 0
        mlo = np.where(pos, np.maximum(self.lower, 0.0), np.maximum(-self.upper, 0.0))
        mhi = np.where(pos, np.maximum(self.upper, 0.0), np.maximum(-self.lower, 0.0))
        return mlo, mhi

    def held_box(self, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of a non-zero ``|w_i|`` for the given signs: ``[max(mlo, min_position), mhi]`` (empty when
        the lower end is above the upper one: the asset cannot be held with that sign)."""
        pos = signs > 0
        s = self.sides
        return np.where(pos, s.lo_long, s.lo_short), np.where(pos, s.hi_long, s.hi_short)

    # ---- validity -------------------------------------------------------------------------------
    def violation(self, w) -> str | None:
        """Why ``w`` is not a valid genome of this space, or None."""
        w = np.asarray(w)
        if w.shape != (self.n_assets,):
            return f"shape is {w.shape}, expected ({self.n_assets},)"
        if not np.isfinite(w).all():
            k = int(np.flatnonzero(~np.isfinite(w))[0])
            return f"weight of {self.symbols[k]!r} is {float(w[k])!r}"
        below = np.flatnonzero(w < self.lower - TOL)
        if below.size:
            k = int(below[0])
            return f"weight of {self.symbols[k]!r} is {float(w[k])!r}, below its min_weight {self.lower[k]:g}"
        above = np.flatnonzero(w > self.upper + TOL)
        if above.size:
            k = int(above[0])
            return f"weight of {self.symbols[k]!r} is {float(w[k])!r}, above its max_weight {self.upper[k]:g}"
        total = float(np.abs(w).sum())
        if abs(total - 1.0) > TOL:
            what = "sum" if self.longonly else "gross exposure (sum of |w|)"
            return f"{what} of weights is {total!r}, must be 1 (within {TOL:g})"
        return self.constraints.violation(w)

    def validate(self, w, what: str = "genome") -> np.ndarray:
        """Return ``w`` as float64 or raise :class:`GenomeError` naming the asset and value."""
        arr = np.asarray(w, dtype=np.float64)
        why = self.violation(arr)
        if why is not None:
            raise GenomeError(f"{what}: {why}")
        return arr

    def validate_population(self, weights, what: str = "genome") -> np.ndarray:
        """Check every row of (n, n_assets) at once; the error names the first bad genome."""
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != self.n_assets:
            raise GenomeError(f"{what}s must have shape (n, {self.n_assets}), got {w.shape}")
        lo, hi = self.lower - TOL, self.upper + TOL
        valid = np.isfinite(w).all() and (w >= lo).all() and (w <= hi).all()  # whole-array tests: the usual case
        if valid and (np.abs(np.abs(w).sum(axis=1) - 1.0) <= TOL).all() and not self.constraints.violates(w).any():
            return w
        bad = ~np.isfinite(w).all(axis=1)  # the per-row masks, for the error
        bad |= (w < lo).any(axis=1) | (w > hi).any(axis=1)
        bad |= np.abs(np.abs(w).sum(axis=1) - 1.0) > TOL
        if not bad.any():
            bad |= self.constraints.violates(w)
        if bad.any():
            g = int(np.flatnonzero(bad)[0])
            raise GenomeError(f"{what} {g}: {self.violation(w[g])}")
        return w

    # ---- sampling -------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` random valid genomes, shape (n, n_assets).

        Without group or exposure rows: a support is drawn (every asset that can be held when ``max_assets`` is
        not set and the minimum positions use at most half the budget, as for plain bounds; otherwise a size
        uniform over the feasible sizes and a random set of that size, the forced assets included), then the
        magnitudes by stick-breaking in a random asset order (``Beta(1, k)`` shares of what is left, each cut to
        what keeps the rest feasible): without binding bounds this is the uniform distribution on the simplex.
        Long/short signs are drawn at random among those the bounds allow.

        With group or exposure rows: a random walk of the mutation operators (add, drop, swap, transfer, shift,
        Gaussian, flip) from the feasible portfolio :func:`~genetic_sizer.evolution.feasibility.check_feasible` found,
        thinned so successive samples are several moves apart. Every step is valid by construction.
        """
        if self.constraints.has_rows:
            return self._walk(rng, n)
        out = np.empty((n, self.n_assets))
        for g in range(n):
            out[g] = self._sample_one(rng)
        return out

    def _full_support(self) -> bool:
        s = self.sides
        return self.constraints.max_assets is None and float(s.lo_best[s.holdable].sum()) <= 0.5

    def _sample_one(self, rng: np.random.Generator) -> np.ndarray:
        n = self.n_assets
        s = self.sides
        forced = ~s.zero_ok
        optional = np.flatnonzero(s.zero_ok & s.holdable)
        full = self._full_support()
        for _attempt in range(20):
            if self.longonly:
                signs = np.ones(n)
            else:
                coin = rng.random(n) < 0.5
                signs = np.where(s.ok_long & s.ok_short, np.where(coin, 1.0, -1.0), np.where(s.ok_short, -1.0, 1.0))
            if full:
                support = s.holdable.copy()
            else:
                k = int(rng.integers(self.feasibility.k_min, self.feasibility.k_max + 1))
                support = forced.copy()
                support[rng.choice(optional, size=k - int(forced.sum()), replace=False)] = True
            lo, hi = self.held_box(signs)
            if not self.longonly and hi[support].sum() < 1.0:
                flipped_lo, flipped_hi = self.held_box(-signs)
                for k in rng.permutation(np.flatnonzero(support)):  # move assets to their roomier side
                    if hi[support].sum() >= 1.0:
                        break
                    if s.ok_long[k] and s.ok_short[k] and flipped_hi[k] > hi[k]:
                        signs[k], lo[k], hi[k] = -signs[k], flipped_lo[k], flipped_hi[k]
            if lo[support].sum() <= 1.0 + TOL and hi[support].sum() >= 1.0 - TOL:
                break
        else:  # the feasible support the feasibility check used: forced assets and the roomiest optional ones
            signs = np.where(s.ok_long & (~s.ok_short | (s.hi_long >= s.hi_short)), 1.0, -1.0)
            order = optional[np.argsort(-s.hi_best[optional], kind="stable")]
            support = forced.copy()
            support[order[: self.feasibility.k_min - int(forced.sum())]] = True
            lo, hi = self.held_box(signs)
        idx = np.flatnonzero(support)
        return signs * _stick_break(rng, lo[idx], hi[idx], idx, n) + 0.0

    def _walk(self, rng: np.random.Generator, n: int) -> np.ndarray:
        w = self.feasibility.point.copy()
        thin = max(5, self.n_assets // 2)
        for _ in range(10 * self.n_assets):
            w = _walk_step(self, w, rng)
        out = np.empty((n, self.n_assets))
        for g in range(n):
            for _ in range(thin):
                w = _walk_step(self, w, rng)
            out[g] = w
        return out


def kernel_space(space: GenomeSpace) -> tuple:
    """Build :attr:`GenomeSpace.kernel_space` (contiguous float64 / bool arrays, Python scalars)."""
    s, c = space.sides, space.constraints

    def f64(a):  # always a writeable copy: a read-only array would be another signature to compile
        return np.array(a, dtype=np.float64, order="C", copy=True)

    def flag(a):
        return np.array(a, dtype=np.bool_, order="C", copy=True)

    has_long = bool(c.has_long_row)
    rlo = np.append(c.group_lo, c.long_lo) if has_long else c.group_lo
    rhi = np.append(c.group_hi, c.long_hi) if has_long else c.group_hi
    group = f64(c.group_matrix).reshape(len(c.group_names), space.n_assets)
    return (
        f64(s.lo_long),
        f64(s.hi_long),
        flag(s.ok_long),
        f64(s.lo_short),
        f64(s.hi_short),
        flag(s.ok_short),
        flag(s.zero_ok),
        group,
        f64(rlo),
        f64(rhi),
        float(c.long_lo),
        float(c.long_hi),
        has_long,
        int(c.k),
        bool(space.longonly),
        int(c.k_min),
    )


def _stick_break(rng: np.random.Generator, mlo: np.ndarray, mhi: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """Magnitudes (n,) that are 0 off ``idx`` and in ``[mlo, mhi]`` on it, summing to 1 (needs
    ``sum mlo <= 1 <= sum mhi``)."""
    k_n = len(idx)
    room = mhi - mlo
    order = rng.permutation(k_n)
    room_after = np.append(np.cumsum(room[order][::-1])[::-1], 0.0)  # room of order[j:]
    m = mlo.copy()
    left = max(1.0 - mlo.sum(), 0.0)
    for j, k in enumerate(order):
        share = left if j == k_n - 1 else left * rng.beta(1.0, k_n - 1 - j)
        share = min(max(share, left - room_after[j + 1]), room[k], left)
        m[k] += share
        left -= share
    out = np.zeros(n)
    out[idx] = m
    return out


def _walk_step(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One step of the sampler's random walk: large moves of every kind."""
    return mutate(space, w, rng, sigma=0.3, shift_sigma=0.3, p_shift=0.2, p_transfer=0.2, p_flip=0.1, p_support=0.35)

"""Weight genomes: the space they live in, random sampling, and operators that keep every child valid.

A genome *is* its weight vector (no genotype-to-weights mapping): one float64 weight per asset.

* Long-only (``direction="longonly"``): every weight in ``[lower_i, upper_i]`` with ``lower_i >= 0`` and the
  weights sum to 1 (the bounded simplex).
* Long/short (``direction="longshort"``): every weight in ``[lower_i, upper_i]`` (``lower_i`` may be negative)
  and the gross exposure ``sum |w_i|`` is 1.
* On top of the bounds, the :class:`~genetic_sizer.evolution.constraints.Constraints` the space composes: at most
  ``max_assets`` non-zero weights, every non-zero ``|w_i| >= min_position`` (default 0.001: no dust), group
  bounds on summed ``|w|``, and long/short exposure bounds. Every one holds for every genome at once.

The operators work on the *magnitudes* ``m = |w|`` and a sign per asset. For a fixed sign pattern an asset's
magnitude is either 0 or in its *held box* ``[max(mlo_i, min_position), mhi_i]`` (``[max(lower, 0), upper]``
for a long position, ``[max(-upper, 0), -lower]`` for a short one), and groups and exposures are linear rows
on ``m``. Every operator picks a line ``u + t v`` through magnitude space whose direction sums to zero and a
target ``t``; :func:`_line` computes exactly the set of ``t`` where the point is valid (an interval where every
moving asset is held, plus the isolated points where some asset reaches exactly 0, subject to the count and
the rows) and moves to the valid ``t`` nearest the target. So children satisfy all constraints at once in
real arithmetic; in floating point the sum is off by a few ulps at most and a coordinate that reaches a bound
is set to that bound. Nothing is renormalized and nothing is repaired: :meth:`GenomeSpace.validate` is the
boundary check, and the property tests assert it after every operator for random feasible constraints.

* :func:`line_crossover`: two children on the line through the parents, ``b + t (a - b)`` with ``t`` drawn
  from ``[-alpha, 1 + alpha]`` and moved to the nearest valid point (``alpha = 0`` is blend crossover); the
  extrapolating part is what lets the search reach optima on the boundary, where sparse portfolios live.
  A child takes the sign of its first parent where the parents disagree. Parents whose supports differ
  (more than ``max_assets`` assets between them) first align: the child keeps the assets both parents hold
  and takes the rest from either parent, moving the first parent's weight there by swaps.
* :func:`gaussian_mutation`: a random zero-sum Gaussian step of scale ``sigma``, cut at the first bound.
* :func:`shift_mutation`: toward or away from one asset, the others scaled in proportion.
* :func:`transfer_mutation`: move some or all of one asset's weight to another.
* :func:`add_mutation`, :func:`drop_mutation`, :func:`swap_mutation`: change the support (open a position at
  least ``min_position``, close one, or replace one asset by another), as one exact move each.
* :func:`flip_mutation` (long/short): turn a long position into a short one of the same size, or back.

All randomness comes from the ``numpy.random.Generator`` passed in (or anything with the methods the operators
use, such as :class:`~genetic_sizer.evolution.vary_nb.RowStream`), so runs are reproducible; children never share memory
with their parents.

:func:`vary_population` varies a whole offspring array at once, one random stream per row, through the compiled
port of these operators in :mod:`genetic_sizer.evolution.vary_nb` (``engine="numba"``, the default) or through these Python
operators (``engine="python"``, the reference): both draw the same numbers and do the same floating-point
operations in the same order, so they give the same children. That is why the row products below are written
``(R * x).sum(axis=1)`` (numpy's pairwise sum, which the kernel repeats) rather than a BLAS ``R @ x``, and the
Gaussian step projects with :func:`_null_project` rather than a LAPACK least-squares solve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from genetic_sizer import vocab as V
from genetic_sizer.errors import ConfigError, GenomeError
from genetic_sizer.evolution.constraints import Constraints, Feasibility, SideBoxes, check_feasible, side_boxes
from genetic_sizer.vocab import CONSTRAINT_KEYS, DEFAULT_MIN_POSITION

__all__ = [
    "CONSTRAINT_KEYS",
    "DEFAULT_MIN_POSITION",
    "DIRECTIONS",
    "GenomeSpace",
    "add_mutation",
    "diversity",
    "drop_mutation",
    "flip_mutation",
    "gaussian_mutation",
    "kernel_space",
    "line_crossover",
    "mutate",
    "shift_mutation",
    "support_mutation",
    "swap_mutation",
    "transfer_mutation",
    "vary_population",
]
VARY_ENGINES = ("numba", "python")
"""Engines of :func:`vary_population`: the compiled kernel (:mod:`genetic_sizer.evolution.vary_nb`) or the Python operators."""

DIRECTIONS = V.DIRECTIONS
TOL = 1e-9
"""Tolerance of :meth:`GenomeSpace.validate` on the sum (or gross), the bounds and the constraints."""
_SNAP = 1e-14
"""A coordinate within this of a bound is on it: the rounding of the operators' arithmetic, far below TOL."""
_ROW_TOL = 1e-12
"""Slack the operators allow a group / exposure row (rounding of a sum of snapped coordinates)."""
_FLAT = 1e-13
"""A row whose value changes by less than this per unit step is treated as constant along the line."""
_RANK_TOL = 1e-9
"""A constraint row whose part orthogonal to the rows before it is below this (relative) is dependent on them."""


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
    def min_position(self) -> float:
        return self.constraints.min_position

    @property
    def zero_ok(self) -> np.ndarray:
        """Whether each asset's weight may be 0 (its bounds include 0)."""
        return self.sides.zero_ok

    @cached_property
    def kernel_space(self) -> tuple:
        """The space as the plain arrays the compiled operators take (:mod:`genetic_sizer.evolution.vary_nb`): held boxes
        of long and short positions (``lo_long, hi_long, ok_long, lo_short, hi_short, ok_short``), ``zero_ok``,
        the group matrix, the lower and upper bounds of every constraint row (groups, then the gross long
        exposure when bounded), ``long_lo``, ``long_hi``, ``has_long_row``, ``max_assets`` and ``longonly``."""
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
        bad = ~np.isfinite(w).all(axis=1)
        bad |= (w < self.lower - TOL).any(axis=1) | (w > self.upper + TOL).any(axis=1)
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
        Gaussian, flip) from the feasible portfolio :func:`~genetic_sizer.evolution.constraints.check_feasible` found,
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


# ---- arithmetic the compiled operators repeat exactly --------------------------------------------------
def _rowdot(R: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``R @ x`` as ``(R * x).sum(axis=1)``: numpy's pairwise sum of the products, an order
    :func:`genetic_sizer.evolution.vary_nb._pdot` repeats (a BLAS product's order is the library's)."""
    return (R * x).sum(axis=1)


def _rowdots(R: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``X @ R.T`` for the rows of ``X``, summed as :func:`_rowdot` does."""
    return (X[:, None, :] * R[None, :, :]).sum(axis=2)


def _null_project(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x`` minus its part in the row space of ``A``: the rows are orthonormalized in order (modified
    Gram-Schmidt; a row whose part orthogonal to the rows before it is below ``_RANK_TOL`` of its length is
    dependent on them and skipped), then ``x`` loses its component along each. The same projection as
    ``x - A.T @ lstsq(A @ A.T, A @ x)`` (unique however a rank-deficient ``A`` is solved), in an order of
    operations the compiled operators repeat."""
    basis: list[np.ndarray] = []
    for row in A:
        q = row.copy()
        for p in basis:
            q = q - float(np.sum(p * q)) * p
        norm = math.sqrt(float(np.sum(q * q)))
        if norm > _RANK_TOL * math.sqrt(float(np.sum(row * row))):
            basis.append(q / norm)
    for p in basis:
        x = x - float(np.sum(p * x)) * p
    return x


# ---- the exact line search ------------------------------------------------------------------------
def _line(space: GenomeSpace, u: np.ndarray, v: np.ndarray, signs: np.ndarray, target: float) -> np.ndarray | None:
    """The valid point of the line ``u + t v`` (magnitudes, with ``signs``) nearest ``t = target``, as signed
    weights; None when no point of the line is valid.

    The valid ``t`` are (a) the interval where every moving asset is held (each in its held box) and every row
    holds, if that many positions fit in ``max_assets``, and (b) the points ``t = -u_i / v_i`` where a moving
    asset reaches exactly 0, checked one by one (count, boxes, rows, coincident zeros).
    """
    lo, hi = space.held_box(signs)
    zero_ok = space.sides.zero_ok
    moving = v != 0.0
    fixed = ~moving
    uf = u[fixed]
    if uf.size:
        ok = np.where(uf == 0.0, zero_ok[fixed], (uf >= lo[fixed] - _SNAP) & (uf <= hi[fixed] + _SNAP))
        if not ok.all():
            return None
    n_fixed = int(np.count_nonzero(uf))
    R, rlo, rhi = space.constraints.rows(signs)
    has_rows = R.shape[0] > 0
    if has_rows:
        r0, dr = _rowdot(R, u), _rowdot(R, v)
        flat = np.abs(dr) <= _FLAT
        if ((r0[flat] < rlo[flat] - _ROW_TOL) | (r0[flat] > rhi[flat] + _ROW_TOL)).any():
            return None  # a row the line does not move is broken everywhere on it
    um, vm = u[moving], v[moving]
    lom, him = lo[moving], hi[moving]
    best_t, best_d, point = 0.0, np.inf, -1
    if n_fixed + int(moving.sum()) <= space.constraints.k and (him >= lom).all():
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            a, b = (lom - um) / vm, (him - um) / vm
            t_lo = float(np.where(vm > 0, a, b).max()) if vm.size else -np.inf
            t_hi = float(np.where(vm > 0, b, a).min()) if vm.size else np.inf
            if has_rows:
                nf = ~flat
                ra, rb = (rlo[nf] - r0[nf]) / dr[nf], (rhi[nf] - r0[nf]) / dr[nf]
                if ra.size:
                    t_lo = max(t_lo, float(np.where(dr[nf] > 0, ra, rb).max()))
                    t_hi = min(t_hi, float(np.where(dr[nf] > 0, rb, ra).min()))
        if t_lo <= t_hi:
            best_t = min(max(target, t_lo), t_hi)
            best_d = abs(best_t - target)
    if best_d > 0.0:
        cand = np.flatnonzero(moving & zero_ok)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = -u[cand] / v[cand]
        near = np.abs(z - target) < best_d
        cand, z = cand[near], z[near]
        if cand.size:
            order = np.argsort(np.abs(z - target), kind="stable")
            cand, z = cand[order], z[order]
            x = u[None, :] + z[:, None] * v[None, :]
            x[np.arange(cand.size), cand] = 0.0
            x = np.where((np.abs(x) <= _SNAP) & zero_ok, 0.0, x)
            held = x != 0.0
            ok = ~(held & ((x < lo - _SNAP) | (x > hi + _SNAP))).any(axis=1)
            ok &= ~(~held & ~zero_ok).any(axis=1)
            ok &= held.sum(axis=1) <= space.constraints.k
            if has_rows:
                rv = _rowdots(R, x)
                ok &= ~((rv < rlo - _ROW_TOL) | (rv > rhi + _ROW_TOL)).any(axis=1)
            good = np.flatnonzero(ok)
            if good.size:
                best_t, best_d, point = float(z[good[0]]), 0.0, int(cand[good[0]])
    if not np.isfinite(best_d):
        return None
    x = u + best_t * v
    if point >= 0:
        x[point] = 0.0
        x = np.where((np.abs(x) <= _SNAP) & zero_ok, 0.0, x)
    held = x != 0.0
    x = np.where(held & (np.abs(x - lo) <= _SNAP), lo, np.where(held & (np.abs(x - hi) <= _SNAP), hi, x))
    if ((x != 0.0) & ((x < lo - _SNAP) | (x > hi + _SNAP))).any():  # pragma: no cover - a bug, not input
        raise AssertionError("line search left a held box")
    return signs * x + 0.0


# ---- operators -------------------------------------------------------------------------------------
def _free_zero_signs(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Signs of ``w``; a zero weight that may go either way gets a random sign (so it can open a short)."""
    signs = space.signs(w)
    if not space.longonly:
        free = (w == 0) & space.sides.ok_long & space.sides.ok_short
        if free.any():
            signs[free] = np.where(rng.random(int(free.sum())) < 0.5, 1.0, -1.0)
    return signs


def _can_open(space: GenomeSpace, w: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Assets not held now that could be opened with these signs."""
    lo, hi = space.held_box(signs)
    return (w == 0) & (hi >= lo) & (hi > 0)


def _side_vertex(space: GenomeSpace, m: np.ndarray, signs: np.ndarray, i: int) -> np.ndarray:
    """Direction of a shift toward asset ``i``: ``e_i - m`` (the others scale in proportion; exactly
    ``sum(m) e_i - m``), or, when the space bounds the long/short split, within ``i``'s side only
    (``L_side e_i - m_side``), so the split stays put."""
    if not space.constraints.has_long_row:  # toward the vertex of the same gross: sum(d) is 0 even if sum(m)
        d = -m  # is 1 only to a few ulps, so no move amplifies that rounding
        d[i] += m.sum()
        return d
    side = signs == signs[i]
    d = np.where(side, -m, 0.0)
    d[i] += m[side].sum()
    return d


def _child(space: GenomeSpace, a: np.ndarray, b: np.ndarray, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """One child on the line from ``b`` through ``a`` (``t = 1`` is ``a``), with ``a``'s signs."""
    if np.count_nonzero((a != 0) | (b != 0)) > space.max_assets:
        b = _align(space, b, a, rng)
    signs = np.where(a != 0, space.signs(a), space.signs(b))
    ma, mb = np.abs(a), np.abs(b)
    x = _line(space, mb, ma - mb, signs, rng.uniform(-alpha, 1.0 + alpha))
    return a.copy() if x is None else x


def _align(space: GenomeSpace, b: np.ndarray, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``b`` moved toward ``a``'s support by swaps: each asset only ``b`` holds goes, with probability 1/2, to an
    asset only ``a`` holds (its weight moves there, :func:`swap_mutation`'s line); invalid swaps are skipped.

    Afterwards the union of the two supports is smaller, so the line between them has room inside
    ``max_assets``; the assets both hold are untouched.
    """
    only_b = np.flatnonzero((b != 0) & (a == 0))
    only_a = list(rng.permutation(np.flatnonzero((a != 0) & (b == 0))))
    for i in rng.permutation(only_b):
        if not only_a:
            break
        if rng.random() < 0.5:
            j = int(only_a.pop())
            signs = space.signs(b)
            if space.sides.ok_long[j] if a[j] > 0 else space.sides.ok_short[j]:
                signs[j] = 1.0 if a[j] > 0 else -1.0
            moved = _swap_line(space, b, signs, int(i), j)
            if moved is not None:
                b = moved
    return b


def line_crossover(
    space: GenomeSpace, a: np.ndarray, b: np.ndarray, rng: np.random.Generator, alpha: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Two children on the line through parents ``a`` and ``b``; new arrays, the parents are untouched.

    Child 1 is ``b + t1 (a - b)`` in magnitudes with ``a``'s signs, child 2 ``a + t2 (b - a)`` with ``b``'s,
    ``t`` uniform in ``[-alpha, 1 + alpha]`` and moved to the nearest ``t`` where the child is valid. When the
    parents hold more than ``max_assets`` assets between them, the second parent is first aligned with the
    first by swaps (see :func:`_align`).
    """
    return _child(space, a, b, alpha, rng), _child(space, b, a, alpha, rng)


def gaussian_mutation(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """A Gaussian step of scale ``sigma`` in a random zero-sum direction, cut where it first meets a bound.

    Held coordinates on a bound only move inward; a zero coordinate takes part only when its step would open
    a position of at least its minimum (and ``max_assets`` leaves room). The positive and negative parts of the
    direction are balanced by shrinking the larger one, so the sum (gross exposure) is unchanged; when groups or
    exposure rows sit on a bound, the direction is projected so that those rows do not move.
    """
    signs = _free_zero_signs(space, w, rng)
    m = np.abs(w)
    lo, hi = space.held_box(signs)
    d = rng.normal(0.0, sigma, space.n_assets)
    held = m != 0.0
    opening = ~held & (d >= lo) & (hi >= lo) & (hi > 0)
    if np.count_nonzero(held) >= space.max_assets:
        opening[:] = False
    d[~held & ~opening] = 0.0
    d[held & (m <= lo + _SNAP) & (d < 0)] = 0.0
    d[held & (m >= hi - _SNAP) & (d > 0)] = 0.0
    R, rlo, rhi = space.constraints.rows(signs)
    if R.shape[0]:
        r0 = _rowdot(R, m)
        tight = ((r0 <= rlo + _ROW_TOL) & (rlo > 0.0)) | (r0 >= rhi - _ROW_TOL)  # a row at 0 cannot fall
        if tight.any():
            free = np.flatnonzero(d != 0.0)
            A = np.vstack((np.ones(space.n_assets), R[tight]))[:, free]
            d[free] = _null_project(A, d[free])
            return _finish(space, w, _line(space, m, d, signs, 1.0))
    up, down = d[d > 0].sum(), -d[d < 0].sum()
    if up == 0.0 or down == 0.0:
        return w.copy()
    if up > down:
        d[d > 0] *= down / up
    else:
        d[d < 0] *= up / down
    return _finish(space, w, _line(space, m, d, signs, 1.0))


def _finish(space: GenomeSpace, w: np.ndarray, x: np.ndarray | None) -> np.ndarray:
    return w.copy() if x is None else x


def transfer_mutation(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator, p_all: float = 0.5) -> np.ndarray:
    """Move weight from one asset to another: all of it (with probability ``p_all``: the donor is dropped, or,
    if it must be held, brought to its minimum) or a uniform fraction, as much as the receiver takes.

    The receiver may be an asset not held yet: it opens at least at its minimum position, or, when
    ``max_assets`` is reached, only a full transfer (a swap) is possible.
    """
    signs = _free_zero_signs(space, w, rng)
    m = np.abs(w)
    lo, hi = space.held_box(signs)
    donors = np.flatnonzero(m != 0.0)
    if donors.size == 0:  # pragma: no cover - a valid genome holds something
        return w.copy()
    i = int(rng.choice(donors))
    ok = (np.arange(space.n_assets) != i) & (((m != 0.0) & (m < hi - _SNAP)) | _can_open(space, w, signs))
    receivers = np.flatnonzero(ok)
    if receivers.size == 0:
        return w.copy()
    j = int(rng.choice(receivers))
    give = m[i] if space.sides.zero_ok[i] else m[i] - lo[i]
    amount = give if rng.random() < p_all else give * rng.random()
    d = np.zeros(space.n_assets)
    d[i], d[j] = -1.0, 1.0
    return _finish(space, w, _line(space, m, d, signs, amount))


def flip_mutation(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Long/short: turn one position into the opposite one of the same size (gross exposure unchanged), among
    the assets whose bounds and the exposure bounds allow it. Returns a copy of ``w`` when no asset can flip."""
    out = w.copy()
    if space.longonly:
        return out
    s = space.sides
    m = np.abs(w)
    flip_lo, flip_hi = space.held_box(-space.signs(w))
    ok = (w != 0) & s.ok_long & s.ok_short & (m >= flip_lo - _SNAP) & (m <= flip_hi + _SNAP)
    cons = space.constraints
    if cons.has_long_row:
        long_now = m[w > 0].sum()
        long_after = long_now - np.sign(w) * m  # flipping k moves 2 m_k between the sides; gross stays 1
        ok &= (long_after >= cons.long_lo - _ROW_TOL) & (long_after <= cons.long_hi + _ROW_TOL)
    cand = np.flatnonzero(ok)
    if cand.size:
        k = int(rng.choice(cand))
        out[k] = -out[k]
    return out


def shift_mutation(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Move toward (or away from) one asset's vertex: ``m + t (e_i - m)`` with ``t ~ N(0, sigma)``, moved to the
    nearest valid ``t``.

    Toward the vertex (``t > 0``) asset ``i`` gains and every other asset shrinks in proportion to its size;
    away from it (``t < 0``) the others grow in proportion, and at ``t = -m_i / (1 - m_i)`` asset ``i`` is
    dropped. This is the move that renormalizing an unconstrained gene vector makes, done exactly inside the
    bounds: small positions stay small, and the search can fine-tune one asset against the rest, which is what
    the last percent of Sharpe needs. ``i`` is a held asset, or one not held when ``max_assets`` leaves room.
    With long/short exposure bounds the move stays within ``i``'s side.
    """
    signs = _free_zero_signs(space, w, rng)
    m = np.abs(w)
    held = m != 0.0
    pool = held | (_can_open(space, w, signs) if np.count_nonzero(held) < space.max_assets else False)
    i = int(rng.choice(np.flatnonzero(pool)))
    d = _side_vertex(space, m, signs, i)
    return _finish(space, w, _line(space, m, d, signs, rng.normal(0.0, sigma)))


def add_mutation(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Open a position in an asset not held (when ``max_assets`` leaves room): a shift toward it, to a weight
    drawn uniformly between its minimum and ``2 / (positions + 1)``; the others shrink in proportion."""
    signs = _free_zero_signs(space, w, rng)
    m = np.abs(w)
    held = int(np.count_nonzero(m))
    cand = np.flatnonzero(_can_open(space, w, signs))
    if held >= space.max_assets or cand.size == 0:
        return w.copy()
    j = int(rng.choice(cand))
    lo = space.held_box(signs)[0][j]
    d = _side_vertex(space, m, signs, j)
    if d[j] <= 0.0:  # the first position on a side whose size the exposure bounds fix
        return w.copy()
    target = rng.uniform(lo, max(lo, 2.0 / (held + 1))) / d[j]
    return _finish(space, w, _line(space, m, d, signs, target))


def drop_mutation(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Close one position whose bounds allow 0: its weight goes to the other positions in proportion to their
    size (a shift away from it), or, with probability 1/2, to one other position (a full transfer)."""
    signs = space.signs(w)
    m = np.abs(w)
    cand = np.flatnonzero((m != 0.0) & space.sides.zero_ok)
    if cand.size == 0 or np.count_nonzero(m) <= 1:
        return w.copy()
    i = int(rng.choice(cand))
    if rng.random() < 0.5:
        d = _side_vertex(space, m, signs, i)
        if d[i] <= 0.0:
            return w.copy()
        return _finish(space, w, _line(space, m, d, signs, -m[i] / d[i]))
    others = np.flatnonzero((m != 0.0) & (np.arange(space.n_assets) != i))
    j = int(rng.choice(others))
    d = np.zeros(space.n_assets)
    d[i], d[j] = -1.0, 1.0
    return _finish(space, w, _line(space, m, d, signs, m[i]))


def _swap_line(space: GenomeSpace, w: np.ndarray, signs: np.ndarray, i: int, j: int) -> np.ndarray | None:
    """Replace held ``i`` by ``j`` (not held): ``j`` takes ``i``'s weight and the others are untouched; when that
    is not valid (``j``'s cap, a group), the valid point nearest the swap on the line through it on which ``j``'s
    weight ``s`` varies and the other positions scale by ``(1 - s) / (1 - m_i)``."""
    m = np.abs(w)
    d = np.zeros(space.n_assets)
    d[i], d[j] = -1.0, 1.0
    x = _line(space, m, d, signs, m[i])
    if m[i] >= 1.0 or space.constraints.has_long_row or (x is not None and x[i] == 0.0 and x[j] != 0.0):
        return x
    rest = np.where(np.arange(space.n_assets) == i, 0.0, m)
    u = rest / rest.sum()  # the others' shares: the division by their sum (not 1 - m_i) amplifies no rounding
    v = -u
    v[j] += 1.0
    return _line(space, u, v, signs, m[i])


def swap_mutation(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replace a held asset (whose bounds allow 0) by one not held, which takes its weight (see
    :func:`_swap_line`); the new position has the old one's sign when its bounds allow."""
    m = np.abs(w)
    out_cand = np.flatnonzero((m != 0.0) & space.sides.zero_ok)
    if out_cand.size == 0:
        return w.copy()
    i = int(rng.choice(out_cand))
    signs = space.signs(w)
    s = space.sides
    same = np.where(signs[i] > 0, s.ok_long, s.ok_short)
    other = np.where(signs[i] > 0, s.ok_short, s.ok_long)
    in_cand = np.flatnonzero((m == 0.0) & (same | other))
    if in_cand.size == 0:
        return w.copy()
    j = int(rng.choice(in_cand))
    signs[j] = signs[i] if same[j] else -signs[i]
    return _finish(space, w, _swap_line(space, w, signs, i, j))


def support_mutation(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Change the support: add, drop or swap an asset, uniformly among the moves the count allows (no add at
    ``max_assets`` positions, no drop at one)."""
    held = int(np.count_nonzero(w))
    moves = [swap_mutation]
    if held < space.max_assets:
        moves.append(add_mutation)
    if held > 1:
        moves.append(drop_mutation)
    return moves[int(rng.integers(len(moves)))](space, w, rng)


def mutate(
    space: GenomeSpace,
    w: np.ndarray,
    rng: np.random.Generator,
    *,
    sigma: float = 0.05,
    shift_sigma: float = 0.1,
    p_shift: float = 0.6,
    p_transfer: float = 0.2,
    p_flip: float = 0.1,
    p_support: float = 0.1,
) -> np.ndarray:
    """One mutation: a sign flip (long/short only, probability ``p_flip``), a support change (add, drop or swap,
    ``p_support``), a shift toward or away from one asset (``p_shift``), a transfer (``p_transfer``), otherwise
    a Gaussian step of scale ``sigma``."""
    u = rng.random()
    if not space.longonly:
        if u < p_flip:
            return flip_mutation(space, w, rng)
        u -= p_flip
    if u < p_support:
        return support_mutation(space, w, rng)
    u -= p_support
    if u < p_shift:
        return shift_mutation(space, w, rng, shift_sigma)
    if u < p_shift + p_transfer:
        return transfer_mutation(space, w, rng)
    return gaussian_mutation(space, w, rng, sigma)


def vary_population(
    space: GenomeSpace,
    weights: np.ndarray,
    cross: np.ndarray,
    mutating: np.ndarray,
    seeds: np.ndarray,
    *,
    alpha: float = 0.5,
    sigma: float = 0.05,
    shift_sigma: float = 0.1,
    p_shift: float = 0.6,
    p_transfer: float = 0.2,
    p_flip: float = 0.1,
    p_support: float = 0.1,
    engine: str = "numba",
    parallel: bool = False,
) -> np.ndarray:
    """Variation of a whole offspring array at once: the children of ``weights`` (n, n_assets), a new array.

    Rows ``2i`` and ``2i + 1`` cross over (:func:`line_crossover`'s two children) where ``cross[i]``
    (``cross`` has ``n // 2`` entries; an odd last row never crosses); then every row ``j`` with ``mutating[j]``
    mutates (:func:`mutate`). Row ``j`` draws all its randomness (its crossover child, then its mutation) from its
    own stream seeded by ``seeds[j]`` (uint64), so a child depends only on its parents and its seed: the result is
    the same however the rows are split or ordered for computing. Rows that neither cross nor mutate are copied.

    Parameters
    ----------
    space : GenomeSpace
        The space of the parents and children.
    weights : array_like of float64, shape (n, n_assets)
        The parents, valid genomes of ``space``.
    cross : array_like of bool, shape (n // 2,)
        Which pairs of rows cross over.
    mutating : array_like of bool, shape (n,)
        Which rows mutate.
    seeds : array_like of uint64, shape (n,)
        One random-stream seed per row (:class:`~genetic_sizer.evolution.vary_nb.RowStream`: xoshiro256** seeded by
        splitmix64).
    alpha, sigma, shift_sigma, p_shift, p_transfer, p_flip, p_support : float
        :func:`line_crossover`'s ``alpha`` and :func:`mutate`'s parameters.
    engine : {"numba", "python"}
        ``"numba"`` (the default): the compiled kernel :func:`genetic_sizer.evolution.vary_nb.vary_kernel`. ``"python"``:
        the Python operators of this module on :class:`~genetic_sizer.evolution.vary_nb.RowStream` streams, one row after
        another; the reference the kernel is tested against (same draws, same floating-point operations: the same
        children).
    parallel : bool
        Compiled engine only: rows on the Numba threads (True) or on this one (False, the default: variation is a
        small part of a generation, and a parallel region waits for its slowest thread on a shared machine; see
        :func:`~genetic_sizer.evolution.vary_nb.vary_kernel`). The children are the same either way.

    Returns
    -------
    ndarray of float64, shape (n, n_assets)
        The children, a new array.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != space.n_assets:
        raise GenomeError(
            f"vary_population: weights must be (n, {space.n_assets}) for this space's {space.n_assets} assets, "
            f"got shape {w.shape}"
        )
    if not np.isfinite(w).all():
        raise GenomeError("vary_population: weights contain NaN or infinity")
    n = w.shape[0]
    cross = np.asarray(cross, dtype=bool)
    mutating = np.asarray(mutating, dtype=bool)
    raw_seeds = np.asarray(seeds)
    if raw_seeds.dtype.kind not in "ui" or (raw_seeds.dtype.kind == "i" and (raw_seeds < 0).any()):
        raise GenomeError(
            f"vary_population: seeds must be non-negative integers, got {raw_seeds.dtype} {raw_seeds[:3]}"
        )
    seeds = raw_seeds.astype(np.uint64)
    if cross.shape != (n // 2,) or mutating.shape != (n,) or seeds.shape != (n,):
        raise GenomeError(
            f"vary_population: weights (n, n_assets), cross (n // 2,), mutating and seeds (n,); got {w.shape}, "
            f"{cross.shape}, {mutating.shape}, {seeds.shape}"
        )
    for name, x, hi in (
        ("alpha", alpha, np.inf),
        ("sigma", sigma, np.inf),
        ("shift_sigma", shift_sigma, np.inf),
        ("p_shift", p_shift, 1.0),
        ("p_transfer", p_transfer, 1.0),
        ("p_flip", p_flip, 1.0),
        ("p_support", p_support, 1.0),
    ):
        if not (np.isfinite(x) and 0.0 <= x <= hi):
            raise GenomeError(f"vary_population: {name} must be a finite number in [0, {hi:g}], got {x!r}")
    if engine not in VARY_ENGINES:
        raise ValueError(f"vary_population: engine must be one of {list(VARY_ENGINES)}, got {engine!r}")
    from genetic_sizer.evolution import (
        vary_nb,  # numba is imported when variation runs, not by every user of this module
    )

    if engine == "numba":
        out, err = vary_nb.vary_kernel(
            np.ascontiguousarray(w),
            np.ascontiguousarray(cross),
            np.ascontiguousarray(mutating),
            np.ascontiguousarray(seeds),
            space.kernel_space,
            float(alpha),
            float(sigma),
            float(shift_sigma),
            float(p_shift),
            float(p_transfer),
            float(p_flip),
            float(p_support),
            parallel,
        )
        if err.any():  # pragma: no cover - a bug, not input
            raise AssertionError(f"line search left a held box in row {int(np.flatnonzero(err)[0])}")
        return out
    out = w.copy()
    for j in range(n):
        rng = vary_nb.RowStream(int(seeds[j]))
        pair = j // 2
        if pair < cross.shape[0] and cross[pair]:
            a, b = (w[j], w[j + 1]) if j % 2 == 0 else (w[j], w[j - 1])
            out[j] = _child(space, a, b, alpha, rng)
        if mutating[j]:
            out[j] = mutate(
                space,
                out[j],
                rng,
                sigma=sigma,
                shift_sigma=shift_sigma,
                p_shift=p_shift,
                p_transfer=p_transfer,
                p_flip=p_flip,
                p_support=p_support,
            )
    return out


def _walk_step(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One step of the sampler's random walk: large moves of every kind."""
    return mutate(space, w, rng, sigma=0.3, shift_sigma=0.3, p_shift=0.2, p_transfer=0.2, p_flip=0.1, p_support=0.35)


def diversity(weights: np.ndarray) -> float:
    """Mean pairwise total-variation distance ``0.5 * ||w_i - w_j||_1`` over a population (0: all equal,
    1: disjoint long-only portfolios), in O(n log n) per asset."""
    w = np.sort(np.asarray(weights, dtype=np.float64), axis=0)
    n = w.shape[0]
    if n < 2:
        return 0.0
    k = np.arange(1, n, dtype=np.float64)
    # over sorted x: sum_{i<j} (x_j - x_i) = sum_k (x_k - x_{k-1}) k (n - k), a sum of non-negative terms
    total = float(((w[1:] - w[:-1]) * (k * (n - k))[:, None]).sum())
    return 0.5 * total / (n * (n - 1) / 2.0)

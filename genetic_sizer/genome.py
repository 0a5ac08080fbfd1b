"""Weight genomes: the space they live in, random sampling, and operators that keep every child valid.

A genome *is* its weight vector (no genotype-to-weights mapping): one float64 weight per asset.

* Long-only (``direction="longonly"``): every weight in ``[lower_i, upper_i]`` with ``lower_i >= 0`` and the
  weights sum to 1 (the bounded simplex).
* Long/short (``direction="longshort"``): every weight in ``[lower_i, upper_i]`` (``lower_i`` may be negative)
  and the gross exposure ``sum |w_i|`` is 1.

The operators work on the *magnitudes* ``m = |w|`` and a sign per asset. For a fixed sign pattern the
feasible magnitudes form a convex polytope: ``sum m = 1`` and ``m_i`` in a box that depends on the sign
(``[max(lower, 0), upper]`` for a long position, ``[max(-upper, 0), -lower]`` for a short one). Every
operator moves along a direction whose entries sum to zero and cuts the step where the first coordinate
reaches its box, so children satisfy the constraints exactly in real arithmetic; in floating point the sum
is off by a few ulps at most and a coordinate that reaches a bound is set to that bound. Nothing is
renormalized: :meth:`GenomeSpace.validate` is the boundary check, and the property tests assert it after
every operator for any feasible bounds.

* :func:`line_crossover`: two children on the line through the parents, ``b + t (a - b)`` with ``t`` drawn
  from ``[-alpha, 1 + alpha]`` and cut to the feasible segment (``alpha = 0`` is blend crossover); the
  extrapolating part is what lets the search reach optima on the boundary, where sparse portfolios live.
  A child takes the sign of its first parent where the parents disagree.
* :func:`gaussian_mutation`: a random zero-sum Gaussian step of scale ``sigma``, cut at the first bound.
* :func:`shift_mutation`: toward or away from one asset, the others scaled in proportion.
* :func:`transfer_mutation`: move some or all of one asset's weight to another (drops or adds an asset).
* :func:`flip_mutation` (long/short): turn a long position into a short one of the same size, or back.

All randomness comes from the ``numpy.random.Generator`` passed in, so runs are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genetic_sizer import vocab as V
from genetic_sizer.errors import ConfigError, GenomeError

__all__ = [
    "DIRECTIONS",
    "GenomeSpace",
    "diversity",
    "flip_mutation",
    "gaussian_mutation",
    "line_crossover",
    "mutate",
    "shift_mutation",
    "transfer_mutation",
]

DIRECTIONS = V.DIRECTIONS
TOL = 1e-9
"""Tolerance of :meth:`GenomeSpace.validate` on the sum (or gross) and on the bounds."""
_SNAP = 1e-14
"""A coordinate within this of a bound is on it: the rounding of the operators' arithmetic, far below TOL."""


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
    """The valid weight vectors for a set of assets: direction and per-asset bounds.

    Build it with :meth:`create`, which checks that the bounds are feasible.
    """

    symbols: tuple[str, ...]
    direction: str
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def create(cls, symbols, direction: str = "longonly", min_weight=0.0, max_weight=1.0) -> GenomeSpace:
        """Validate direction and bounds; raise :class:`ConfigError` saying why they cannot be met.

        ``min_weight`` and ``max_weight`` are numbers or ``{symbol: number}`` mappings (``default`` sets the
        rest).
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
        return cls(symbols=symbols, direction=direction, lower=lo, upper=hi)

    @property
    def n_assets(self) -> int:
        return len(self.symbols)

    @property
    def longonly(self) -> bool:
        return self.direction == "longonly"

    # ---- signs and magnitude boxes -------------------------------------------------------------
    def signs(self, w: np.ndarray) -> np.ndarray:
        """+1 or -1 per asset; a zero weight gets the sign its bounds allow (long when both are allowed)."""
        return np.where(w > 0, 1.0, np.where(w < 0, -1.0, np.where(self.upper > 0, 1.0, -1.0)))

    def magnitude_box(self, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of ``|w_i|`` for the given signs."""
        pos = signs > 0
        mlo = np.where(pos, np.maximum(self.lower, 0.0), np.maximum(-self.upper, 0.0))
        mhi = np.where(pos, np.maximum(self.upper, 0.0), np.maximum(-self.lower, 0.0))
        return mlo, mhi

    def _can_be(self, sign: float) -> np.ndarray:
        return self.upper > 0 if sign > 0 else self.lower < 0

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
        return None

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
        if bad.any():
            g = int(np.flatnonzero(bad)[0])
            raise GenomeError(f"{what} {g}: {self.violation(w[g])}")
        return w

    # ---- sampling -------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` random valid genomes, shape (n, n_assets).

        Magnitudes are built by stick-breaking in a random asset order (``Beta(1, k)`` shares of what is
        left, each cut to what keeps the rest feasible): without binding bounds this is the uniform
        distribution on the simplex. Long/short signs are drawn at random among those the bounds allow.
        """
        out = np.empty((n, self.n_assets))
        for g in range(n):
            out[g] = self._sample_one(rng)
        return out

    def _sample_one(self, rng: np.random.Generator) -> np.ndarray:
        n = self.n_assets
        signs = np.ones(n)
        if not self.longonly:
            pos_ok, neg_ok = self.upper > 0, self.lower < 0
            coin = rng.random(n) < 0.5
            signs = np.where(pos_ok & neg_ok, np.where(coin, 1.0, -1.0), np.where(neg_ok, -1.0, 1.0))
            mhi = self.magnitude_box(signs)[1]
            flipped_hi = self.magnitude_box(-signs)[1]
            for k in rng.permutation(n):  # a pattern too small for gross 1: move assets to their roomier side
                if mhi.sum() >= 1.0:
                    break
                if pos_ok[k] and neg_ok[k] and flipped_hi[k] > mhi[k]:
                    signs[k] = -signs[k]
                    mhi[k] = flipped_hi[k]
        mlo, mhi = self.magnitude_box(signs)
        room = mhi - mlo
        order = rng.permutation(n)
        room_after = np.append(np.cumsum(room[order][::-1])[::-1], 0.0)  # room of order[j:]
        m = mlo.copy()
        left = max(1.0 - mlo.sum(), 0.0)
        for j, k in enumerate(order):
            share = left if j == n - 1 else left * rng.beta(1.0, n - 1 - j)
            share = min(max(share, left - room_after[j + 1]), room[k], left)
            m[k] += share
            left -= share
        return signs * m + 0.0


# ---- operators -------------------------------------------------------------------------------------
def _segment(m: np.ndarray, d: np.ndarray, mlo: np.ndarray, mhi: np.ndarray) -> tuple[float, float]:
    """The interval of ``t`` for which ``mlo <= m + t d <= mhi`` (from the coordinates with ``d != 0``)."""
    pos, neg = d > 0, d < 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a tiny d only gives a huge bound
        t_hi = np.concatenate(((mhi[pos] - m[pos]) / d[pos], (mlo[neg] - m[neg]) / d[neg]))
        t_lo = np.concatenate(((mlo[pos] - m[pos]) / d[pos], (mhi[neg] - m[neg]) / d[neg]))
    return (float(t_lo.max()) if t_lo.size else -np.inf), (float(t_hi.min()) if t_hi.size else np.inf)


def _step(m: np.ndarray, d: np.ndarray, t: float, mlo: np.ndarray, mhi: np.ndarray) -> np.ndarray:
    """``m + t d`` for a feasible ``t``; coordinates that reach a bound land exactly on it.

    Only rounding is absorbed here: a coordinate further than ``_SNAP`` outside its box is a bug in the
    caller and raises.
    """
    x = m + t * d
    out_of_box = np.maximum(mlo - x, x - mhi)
    if out_of_box.max() > _SNAP:
        raise AssertionError(f"operator step left the box by {out_of_box.max():g}")  # pragma: no cover
    x = np.where(x <= mlo + _SNAP, mlo, np.where(x >= mhi - _SNAP, mhi, x))
    return x


def _free_zero_signs(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Signs of ``w``; a zero weight that may go either way gets a random sign (so it can open a short)."""
    signs = space.signs(w)
    if not space.longonly:
        free = (w == 0) & (space.upper > 0) & (space.lower < 0)
        if free.any():
            signs[free] = np.where(rng.random(int(free.sum())) < 0.5, 1.0, -1.0)
    return signs


def _child(space: GenomeSpace, a: np.ndarray, b: np.ndarray, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """One child on the line from ``b`` through ``a`` (``t = 1`` is ``a``), with ``a``'s signs."""
    signs = np.where(a != 0, space.signs(a), space.signs(b))
    ma, mb = np.abs(a), np.abs(b)
    mlo, mhi = space.magnitude_box(signs)
    d = ma - mb
    t_lo, t_hi = _segment(mb, d, mlo, mhi)
    t_lo, t_hi = min(t_lo, 1.0), max(t_hi, 1.0)  # t = 1 (the parent) is feasible; rounding must not exclude it
    t = min(max(rng.uniform(-alpha, 1.0 + alpha), t_lo), t_hi)
    return signs * _step(mb, d, t, mlo, mhi) + 0.0


def line_crossover(
    space: GenomeSpace, a: np.ndarray, b: np.ndarray, rng: np.random.Generator, alpha: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Two children on the line through parents ``a`` and ``b``; new arrays, the parents are untouched.

    Child 1 is ``b + t1 (a - b)`` in magnitudes with ``a``'s signs, child 2 ``a + t2 (b - a)`` with ``b``'s,
    ``t`` uniform in ``[-alpha, 1 + alpha]`` and cut to the segment where the child is valid.
    """
    return _child(space, a, b, alpha, rng), _child(space, b, a, alpha, rng)


def gaussian_mutation(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """A Gaussian step of scale ``sigma`` in a random zero-sum direction, cut where it first meets a bound.

    Coordinates on a bound only move inward; the positive and negative parts of the direction are balanced
    by shrinking the larger one, so the sum (gross exposure) is unchanged.
    """
    signs = _free_zero_signs(space, w, rng)
    m = np.abs(w)
    mlo, mhi = space.magnitude_box(signs)
    d = rng.normal(0.0, sigma, space.n_assets)
    d[(m <= mlo + _SNAP) & (d < 0)] = 0.0
    d[(m >= mhi - _SNAP) & (d > 0)] = 0.0
    up, down = d[d > 0].sum(), -d[d < 0].sum()
    if up == 0.0 or down == 0.0:
        return w.copy()
    if up > down:
        d[d > 0] *= down / up
    else:
        d[d < 0] *= up / down
    t_hi = max(_segment(m, d, mlo, mhi)[1], 0.0)
    return signs * _step(m, d, min(1.0, t_hi), mlo, mhi) + 0.0


def transfer_mutation(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator, p_all: float = 0.5) -> np.ndarray:
    """Move weight from one asset to another: all that the donor can give (with probability ``p_all``,
    which drops it to its lower bound, usually 0) or a uniform fraction of it, as much as the receiver takes.
    """
    signs = _free_zero_signs(space, w, rng)
    m = np.abs(w)
    mlo, mhi = space.magnitude_box(signs)
    donors = np.flatnonzero(m > mlo + _SNAP)
    if donors.size == 0:
        return w.copy()
    i = int(rng.choice(donors))
    receivers = np.flatnonzero((m < mhi - _SNAP) & (np.arange(space.n_assets) != i))
    if receivers.size == 0:
        return w.copy()
    j = int(rng.choice(receivers))
    give = m[i] - mlo[i]
    amount = give if rng.random() < p_all else give * rng.random()
    amount = min(amount, mhi[j] - m[j])
    d = np.zeros(space.n_assets)
    d[i], d[j] = -amount, amount
    return signs * _step(m, d, 1.0, mlo, mhi) + 0.0


def flip_mutation(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Long/short: turn one position into the opposite one of the same size (gross exposure unchanged),
    among the assets whose bounds allow it. Returns a copy of ``w`` when no asset can flip."""
    out = w.copy()
    flipped_hi = space.magnitude_box(-space.signs(w))[1]
    ok = np.flatnonzero((w != 0) & (np.abs(w) <= flipped_hi) & (space.upper > 0) & (space.lower < 0))
    if ok.size:
        k = int(rng.choice(ok))
        out[k] = -out[k]
    return out


def shift_mutation(space: GenomeSpace, w: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Move toward (or away from) one asset's vertex: ``m + t (e_i - m)`` with ``t ~ N(0, sigma)``, cut to the
    feasible segment.

    Toward the vertex (``t > 0``) asset ``i`` gains and every other asset shrinks in proportion to its size;
    away from it (``t < 0``) the others grow in proportion. This is the move that renormalizing an
    unconstrained gene vector makes, done exactly inside the bounds: small positions stay small, and the
    search can fine-tune one asset against the rest, which is what the last percent of Sharpe needs.
    """
    signs = _free_zero_signs(space, w, rng)
    m = np.abs(w)
    mlo, mhi = space.magnitude_box(signs)
    i = int(rng.integers(space.n_assets))
    d = -m
    d[i] += 1.0
    t_lo, t_hi = _segment(m, d, mlo, mhi)
    t = min(max(rng.normal(0.0, sigma), min(t_lo, 0.0)), max(t_hi, 0.0))
    return signs * _step(m, d, t, mlo, mhi) + 0.0


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
) -> np.ndarray:
    """One mutation: a sign flip (long/short only, probability ``p_flip``), a shift toward or away from one
    asset (``p_shift``), a transfer (``p_transfer``), otherwise a Gaussian step of scale ``sigma``."""
    u = rng.random()
    if not space.longonly:
        if u < p_flip:
            return flip_mutation(space, w, rng)
        u -= p_flip
    if u < p_shift:
        return shift_mutation(space, w, rng, shift_sigma)
    if u < p_shift + p_transfer:
        return transfer_mutation(space, w, rng)
    return gaussian_mutation(space, w, rng, sigma)


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

"""Genome operators: crossover and mutations that keep every child valid (the Python reference).

The operators work on the *magnitudes* ``m = |w|`` and a sign per asset. For a fixed sign pattern an asset's
magnitude is either 0 or in its *held box* ``[max(mlo_i, min_position), mhi_i]`` (``[max(lower, 0), upper]``
for a long position, ``[max(-upper, 0), -lower]`` for a short one), and groups and exposures are linear rows
on ``m``. Every operator picks a line ``u + t v`` through magnitude space whose direction sums to zero and a
target ``t``; :func:`_line` computes exactly the set of ``t`` where the point is valid (an interval where every
moving asset is held, plus the isolated points where some asset reaches exactly 0, subject to the count and
the rows) and moves to the valid ``t`` nearest the target. So children satisfy all constraints at once in
real arithmetic; in floating point the sum is off by a few ulps at most and a coordinate that reaches a bound
is set to that bound. Nothing is renormalized and nothing is repaired:
:meth:`~genetic_sizer.evolution.space.GenomeSpace.validate` is the boundary check, and the property tests assert it
after every operator for random feasible constraints.

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
use, such as :class:`~genetic_sizer.evolution.vary_nb.RowStream`), so runs are reproducible; children never share
memory with their parents.

These operators are the reference of the compiled port in :mod:`genetic_sizer.evolution.vary_nb`
(:func:`~genetic_sizer.evolution.variation.vary_population` runs either): both draw the same numbers and do the same
floating-point operations in the same order, so they give the same children. That is why the row products below
are written ``(R * x).sum(axis=1)`` (numpy's pairwise sum, which the kernel repeats) rather than a BLAS ``R @ x``,
and the Gaussian step projects with :func:`_null_project` rather than a LAPACK least-squares solve.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from genetic_sizer.evolution.constraints import Constraints, SideBoxes

__all__ = [
    "Space",
    "add_mutation",
    "drop_mutation",
    "flip_mutation",
    "gaussian_mutation",
    "line_crossover",
    "mutate",
    "shift_mutation",
    "support_mutation",
    "swap_mutation",
    "transfer_mutation",
]

_SNAP = 1e-14
"""A coordinate within this of a bound is on it: the rounding of the operators' arithmetic, far below the
tolerance of :meth:`~genetic_sizer.evolution.space.GenomeSpace.validate`."""
_ROW_TOL = 1e-12
"""Slack the operators allow a group / exposure row (rounding of a sum of snapped coordinates)."""
_FLAT = 1e-13
"""A row whose value changes by less than this per unit step is treated as constant along the line."""
_RANK_TOL = 1e-9
"""A constraint row whose part orthogonal to the rows before it is below this (relative) is dependent on them."""


class Space(Protocol):
    """What the operators read of a genome space (:class:`~genetic_sizer.evolution.space.GenomeSpace` is one)."""

    @property
    def n_assets(self) -> int: ...

    @property
    def longonly(self) -> bool: ...

    @property
    def max_assets(self) -> int: ...

    @property
    def sides(self) -> SideBoxes: ...

    @property
    def constraints(self) -> Constraints: ...

    def signs(self, w: np.ndarray) -> np.ndarray: ...

    def held_box(self, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


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
def _line(space: Space, u: np.ndarray, v: np.ndarray, signs: np.ndarray, target: float) -> np.ndarray | None:
    """The valid point of the line ``u + t v`` (magnitudes, with ``signs``) nearest ``t = target``, as signed
    weights; None when no point of the line is valid.

    The valid ``t`` are (a) the interval where every moving asset is held (each in its held box) and every row
    holds, if that many positions fit in ``min_assets .. max_assets``, and (b) the points ``t = -u_i / v_i`` where
    a moving asset reaches exactly 0, checked one by one (count, boxes, rows, coincident zeros).
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
    if space.constraints.k_min <= n_fixed + int(moving.sum()) <= space.constraints.k and (him >= lom).all():
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
            ok &= held.sum(axis=1) >= space.constraints.k_min
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
def _free_zero_signs(space: Space, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Signs of ``w``; a zero weight that may go either way gets a random sign (so it can open a short)."""
    signs = space.signs(w)
    if not space.longonly:
        free = (w == 0) & space.sides.ok_long & space.sides.ok_short
        if free.any():
            signs[free] = np.where(rng.random(int(free.sum())) < 0.5, 1.0, -1.0)
    return signs


def _can_open(space: Space, w: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Assets not held now that could be opened with these signs."""
    lo, hi = space.held_box(signs)
    return (w == 0) & (hi >= lo) & (hi > 0)


def _side_vertex(space: Space, m: np.ndarray, signs: np.ndarray, i: int) -> np.ndarray:
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


def _child(space: Space, a: np.ndarray, b: np.ndarray, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """One child on the line from ``b`` through ``a`` (``t = 1`` is ``a``), with ``a``'s signs."""
    if np.count_nonzero((a != 0) | (b != 0)) > space.max_assets:
        b = _align(space, b, a, rng)
    signs = np.where(a != 0, space.signs(a), space.signs(b))
    ma, mb = np.abs(a), np.abs(b)
    x = _line(space, mb, ma - mb, signs, rng.uniform(-alpha, 1.0 + alpha))
    return a.copy() if x is None else x


def _align(space: Space, b: np.ndarray, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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
    space: Space, a: np.ndarray, b: np.ndarray, rng: np.random.Generator, alpha: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Two children on the line through parents ``a`` and ``b``; new arrays, the parents are untouched.

    Child 1 is ``b + t1 (a - b)`` in magnitudes with ``a``'s signs, child 2 ``a + t2 (b - a)`` with ``b``'s,
    ``t`` uniform in ``[-alpha, 1 + alpha]`` and moved to the nearest ``t`` where the child is valid. When the
    parents hold more than ``max_assets`` assets between them, the second parent is first aligned with the
    first by swaps (see :func:`_align`).
    """
    return _child(space, a, b, alpha, rng), _child(space, b, a, alpha, rng)


def gaussian_mutation(space: Space, w: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
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


def _finish(space: Space, w: np.ndarray, x: np.ndarray | None) -> np.ndarray:
    return w.copy() if x is None else x


def transfer_mutation(space: Space, w: np.ndarray, rng: np.random.Generator, p_all: float = 0.5) -> np.ndarray:
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


def flip_mutation(space: Space, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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


def shift_mutation(space: Space, w: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
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


def add_mutation(space: Space, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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


def drop_mutation(space: Space, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Close one position whose bounds allow 0 (when more than ``min_assets`` are held): its weight goes to the other
    positions in proportion to their size (a shift away from it), or, with probability 1/2, to one other position (a
    full transfer)."""
    signs = space.signs(w)
    m = np.abs(w)
    cand = np.flatnonzero((m != 0.0) & space.sides.zero_ok)
    if cand.size == 0 or np.count_nonzero(m) <= max(1, space.constraints.k_min):
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


def _swap_line(space: Space, w: np.ndarray, signs: np.ndarray, i: int, j: int) -> np.ndarray | None:
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


def swap_mutation(space: Space, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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


def support_mutation(space: Space, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Change the support: add, drop or swap an asset, uniformly among the moves the count allows (no add at
    ``max_assets`` positions, no drop at one or at ``min_assets``)."""
    held = int(np.count_nonzero(w))
    moves = [swap_mutation]
    if held < space.max_assets:
        moves.append(add_mutation)
    if held > max(1, space.constraints.k_min):
        moves.append(drop_mutation)
    return moves[int(rng.integers(len(moves)))](space, w, rng)


def mutate(
    space: Space,
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

"""Feasibility of bounds and constraints together: an exact check, and a conflict message naming the keys.

:func:`check_feasible` decides whether some weight vector meets the per-asset bounds and every
:class:`~genetic_sizer.evolution.constraints.Constraints` at once, exactly:

* without groups and exposure bounds, in closed form: the assets that must be held (``min_weight > 0``), plus the
  ``t`` optional assets with the largest ``max_weight``, for the largest ``t`` that ``max_assets`` and
  ``min_position`` allow (``t`` positions need ``t x min_position`` of the budget), must reach a gross of 1, and
  that largest count must reach ``min_assets`` (a support of any size between the two is then feasible: the
  reach only grows with ``t``);
* with groups or exposure bounds, it is a small mixed-integer feasibility problem (a binary "held long / held
  short" per asset, the bounds, the count, the rows), solved with HiGHS through ``scipy.optimize.milp``. When it
  is infeasible, each family of constraints is relaxed in turn to find a minimal conflicting set, which the
  :class:`ConfigError` names with its numbers.

Closed-form checks run first so that the common conflicts get a specific message, e.g. ``max_assets: 3`` with
``max_weight: 0.3`` ("3 x 0.3 = 0.9 < 1").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.constraints import TOL, Constraints, SideBoxes, _exposure_text, _names, side_boxes

__all__ = ["Feasibility", "check_feasible"]


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
    if n_forced + t_max < cons.k_min:
        if t_max == by_size and by_size < n_opt:
            top = n_forced + t_max
            why = f"portfolio.min_position {m:g} allows at most {top} positions ({top} x {m:g} <= 1)"
        elif t_max == by_count and by_count < n_opt:
            why = f"portfolio.max_assets is {cons.k}"
        else:
            why = f"only {n_forced + n_opt} assets can hold a position (min_weight / max_weight / min_position)"
        return 0, 0, f"portfolio.min_assets is {cons.k_min} but {why}"
    return max(n_forced + t_min, cons.k_min), n_forced + t_max, None


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
    if cons.min_assets is not None and cons.min_assets > 1:
        fam["min_assets"] = f"min_assets {cons.min_assets}"
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
    k_min = cons.k_min if "min_assets" in active else 0
    add(np.zeros(v), np.ones(v), float(k_min), float(k))
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

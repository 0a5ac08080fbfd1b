"""How far a traced frontier is from a reference (unconstrained) efficient frontier: the measures of Cura (2009).

The reference is a list of points ``(r*_i, v*_i)`` (return, variance of return), such as OR-Library's ``portef``
files (2,000 points of the unconstrained frontier, evenly spaced in return). For each traced point ``(r_j, v_j)``
(``j = 1..P``), Cura's measures take the reference point nearest to it, ``i_j = argmin_i sqrt((v*_i - v_j)^2 +
(r*_i - r_j)^2)`` (in the data's units, unscaled), and average over the ``P`` points:

* **mean Euclidean distance** ``sqrt((v*_{i_j} - v_j)^2 + (r*_{i_j} - r_j)^2)``;
* **variance of return error** ``100 |v*_{i_j} - v_j| / v_j``;
* **mean return error** ``100 |r*_{i_j} - r_j| / r_j``.

These are the definitions of Cura's tables (the ones later papers extend, with the GA of Chang et al. at 1.6441 % /
0.6072 % on port1): the exact constrained optima at Chang et al.'s 50 evenly spaced lambdas give 1.6397 % / 0.6071 %
under them (``experiments/bench_frontier.py``).

Beside them, the horizontal and vertical deviations of Chang et al. (2000), by interpolation on the reference
(``*_interp_pct``):

* ``100 |v_j - v*(r_j)| / v*(r_j)``, where ``v*(r)`` interpolates the reference linearly between its two points whose
  returns bracket ``r_j`` (the extra variance the constraints cost at that return);
* ``100 |r_j - r*(v_j)| / r*(v_j)``, where ``r*(v)`` interpolates the reference's returns linearly between its two
  points whose variances bracket ``v_j`` (the return the constraints give up at that risk).

Each interpolated measure is the mean over the traced points for which it is defined: a point whose return
(variance) lies outside the reference's range of returns (variances) has no interpolated variance (return) error and
is counted in ``n_outside_return`` (``n_outside_variance``). The reference is reduced to its efficient part (points
sorted by return; ``v*(r)`` on the increasing branch, as the published frontiers are) before interpolating. The
interpolated deviations are larger than Cura's (the nearest point lies between the two): Cura's measure a point's
distance to the reference, the interpolated ones its cost in one coordinate at a fixed other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from genetic_sizer.errors import DataError

__all__ = ["DEFINITIONS", "FrontierErrors", "frontier_errors"]

DEFINITIONS = {
    "mean_euclidean_distance": "Cura (2009): mean over the points of min_i sqrt((v*_i - v)^2 + (r*_i - r)^2), the "
    "nearest reference point i_j, in the data's units (variance, return)",
    "variance_error_pct": "Cura (2009): mean over the points of 100 |v*_{i_j} - v| / v, the nearest reference point's "
    "variance",
    "return_error_pct": "Cura (2009): mean over the points of 100 |r*_{i_j} - r| / r, the nearest reference point's "
    "return",
    "variance_error_interp_pct": "Chang et al. (2000) horizontal deviation: mean of 100 |v - v*(r)| / v*(r), v*(r) the "
    "reference's variance interpolated linearly at the point's return (points whose return lies outside the "
    "reference's range are left out)",
    "return_error_interp_pct": "Chang et al. (2000) vertical deviation: mean of 100 |r - r*(v)| / r*(v), r*(v) the "
    "reference's return interpolated linearly at the point's variance on its efficient branch (points outside the "
    "reference's variance range are left out)",
}


@dataclass(frozen=True)
class FrontierErrors:
    """The means of :func:`frontier_errors` (percentages for the errors) and how many points each covers."""

    mean_euclidean_distance: float
    variance_error_pct: float
    return_error_pct: float
    variance_error_interp_pct: float
    return_error_interp_pct: float
    n_points: int
    n_variance_error: int
    n_return_error: int
    n_outside_return: int
    n_outside_variance: int

    def as_dict(self) -> dict:
        return asdict(self)


def _efficient(ref_ret: np.ndarray, ref_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((ref_var, ref_ret))
    r, v = ref_ret[order], ref_var[order]
    # the upper branch: from the minimum-variance point up, keep the points whose variance rises with return
    start = int(np.argmin(v))
    r, v = r[start:], v[start:]
    keep = np.concatenate(([True], (np.diff(r) > 0) & (np.diff(v) > 0)))
    return r[keep], v[keep]


def frontier_errors(ret, var, ref_ret, ref_var) -> FrontierErrors:
    """The measures of the module docstring for the points ``(ret, var)`` against the reference
    ``(ref_ret, ref_var)``."""
    ret, var = np.asarray(ret, dtype=np.float64), np.asarray(var, dtype=np.float64)
    ref_ret, ref_var = np.asarray(ref_ret, dtype=np.float64), np.asarray(ref_var, dtype=np.float64)
    if ret.shape != var.shape or ret.ndim != 1 or ret.size == 0:
        raise DataError(f"frontier points: returns {ret.shape} and variances {var.shape} must be two equal 1-D arrays")
    if ref_ret.shape != ref_var.shape or ref_ret.size < 2:
        raise DataError("reference frontier: needs at least 2 points of (return, variance)")
    d = np.sqrt((ref_var[None, :] - var[:, None]) ** 2 + (ref_ret[None, :] - ret[:, None]) ** 2)
    near = d.argmin(axis=1)  # the first of equally near points
    dist = d[np.arange(ret.size), near]
    with np.errstate(divide="ignore", invalid="ignore"):
        cura_v = 100.0 * np.abs(ref_var[near] - var) / var
        cura_r = 100.0 * np.abs(ref_ret[near] - ret) / np.abs(ret)
    r, v = _efficient(ref_ret, ref_var)
    if r.size < 2:
        raise DataError("reference frontier: fewer than 2 efficient points")
    in_r = (ret >= r[0]) & (ret <= r[-1])
    in_v = (var >= v[0]) & (var <= v[-1])
    v_at = np.interp(ret[in_r], r, v)
    r_at = np.interp(var[in_v], v, r)
    verr = 100.0 * np.abs(var[in_r] - v_at) / v_at
    rerr = 100.0 * np.abs(ret[in_v] - r_at) / np.abs(r_at)
    return FrontierErrors(
        mean_euclidean_distance=float(dist.mean()),
        variance_error_pct=float(cura_v.mean()),
        return_error_pct=float(cura_r.mean()),
        variance_error_interp_pct=float(verr.mean()) if verr.size else float("nan"),
        return_error_interp_pct=float(rerr.mean()) if rerr.size else float("nan"),
        n_points=int(ret.size),
        n_variance_error=int(verr.size),
        n_return_error=int(rerr.size),
        n_outside_return=int((~in_r).sum()),
        n_outside_variance=int((~in_v).sum()),
    )

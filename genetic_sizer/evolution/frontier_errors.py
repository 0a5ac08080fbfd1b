"""How far a traced frontier is from a reference (unconstrained) efficient frontier: the measures of Cura (2009).

The reference is a list of points ``(r*_i, v*_i)`` (return, variance of return), such as OR-Library's ``portef``
files (2,000 points of the unconstrained frontier). For each point ``(r_j, v_j)`` of the traced frontier:

* **variance of return error** ``100 |v_j - v*(r_j)| / v*(r_j)``, where ``v*(r)`` interpolates the reference linearly
  between its two points whose returns bracket ``r_j`` (the extra variance the constraints cost at that return);
* **mean return error** ``100 |r_j - r*(v_j)| / r*(v_j)``, where ``r*(v)`` interpolates the reference's returns
  linearly between its two points whose variances bracket ``v_j`` (the return the constraints give up at that risk);
* **Euclidean distance** ``min_i sqrt((v*_i - v_j)^2 + (r*_i - r_j)^2)``: to the nearest reference point, in the
  units of the data (variance and return, unscaled).

Each measure is the mean over the traced points for which it is defined: a point whose return (variance) lies
outside the reference's range of returns (variances) has no variance (return) error and is counted in
``n_outside_return`` (``n_outside_variance``). The reference is reduced to its efficient part (points sorted by
return; ``v*(r)`` on the increasing branch, as the published frontiers are) before interpolating.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from genetic_sizer.errors import DataError

__all__ = ["FrontierErrors", "frontier_errors"]


@dataclass(frozen=True)
class FrontierErrors:
    """The means of :func:`frontier_errors` (percentages for the two errors) and how many points each covers."""

    mean_euclidean_distance: float
    variance_error_pct: float
    return_error_pct: float
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
    """The Cura (2009) measures of the points ``(ret, var)`` against the reference ``(ref_ret, ref_var)``."""
    ret, var = np.asarray(ret, dtype=np.float64), np.asarray(var, dtype=np.float64)
    ref_ret, ref_var = np.asarray(ref_ret, dtype=np.float64), np.asarray(ref_var, dtype=np.float64)
    if ret.shape != var.shape or ret.ndim != 1 or ret.size == 0:
        raise DataError(f"frontier points: returns {ret.shape} and variances {var.shape} must be two equal 1-D arrays")
    if ref_ret.shape != ref_var.shape or ref_ret.size < 2:
        raise DataError("reference frontier: needs at least 2 points of (return, variance)")
    dist = np.sqrt((ref_var[None, :] - var[:, None]) ** 2 + (ref_ret[None, :] - ret[:, None]) ** 2).min(axis=1)
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
        variance_error_pct=float(verr.mean()) if verr.size else float("nan"),
        return_error_pct=float(rerr.mean()) if rerr.size else float("nan"),
        n_points=int(ret.size),
        n_variance_error=int(verr.size),
        n_return_error=int(rerr.size),
        n_outside_return=int((~in_r).sum()),
        n_outside_variance=int((~in_v).sum()),
    )

"""Compiled moments evaluation: a population's mean ``w'mu`` and variance ``w'Sigma w``, the weighted mean-variance
objective, and the exact quadratic program on one support.

The moments mode of ``genetic-sizer frontier`` (beside the backtest mode): a genome is scored on given moments rather
than on a simulated portfolio. Every function takes plain arrays and is pure.

* :func:`population_moments`: per row of ``W`` (n, n_assets), ``w'mu`` and ``w'Sigma w`` summed over the row's
  non-zero weights only (a sparse portfolio of K assets costs K^2, not n^2), in float64.
* :func:`population_objective`: ``lam * w'Sigma w - (1 - lam) * w'mu``, the weighted objective of Chang, Meade,
  Beasley and Sharaiha (2000), lower is better; ``lam = 1`` is the minimum-variance portfolio, ``lam = 0`` the
  maximum return.
* :func:`support_qp`: the best weights on a fixed support for that objective, ``sum w = 1`` and ``lo <= w_i <= hi``
  on the support (0 off it): a convex quadratic program solved exactly by a primal active-set method from a
  feasible start (each iteration solves the KKT system of the free weights, steps to the first blocking bound or
  frees the bound whose multiplier has the wrong sign). It returns the number of iterations, each of which
  produces one candidate portfolio (what the frontier counts as evaluations).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["population_moments", "population_objective", "support_qp"]

_QP_TOL = 1e-13
_MAX_IT = 200


@njit(cache=True)
def _row_moments(w, mu, cov, idx):
    k = 0
    for q in range(w.shape[0]):
        if w[q] != 0.0:
            idx[k] = q
            k += 1
    ret = 0.0
    var = 0.0
    for a in range(k):
        i = idx[a]
        ret += w[i] * mu[i]
        s = 0.0
        for b in range(k):
            j = idx[b]
            s += cov[i, j] * w[j]
        var += w[i] * s
    return ret, var


@njit(cache=True)
def population_moments(W, mu, cov):
    """Mean ``w'mu`` and variance ``w'Sigma w`` of every row of ``W``: two arrays (n,)."""
    n = W.shape[0]
    ret = np.empty(n)
    var = np.empty(n)
    idx = np.empty(W.shape[1], dtype=np.int64)
    for g in range(n):
        ret[g], var[g] = _row_moments(W[g], mu, cov, idx)
    return ret, var


@njit(cache=True)
def population_objective(W, mu, cov, lam):
    """``lam * w'Sigma w - (1 - lam) * w'mu`` of every row of ``W`` (lower is better)."""
    ret, var = population_moments(W, mu, cov)
    return lam * var - (1.0 - lam) * ret


@njit(cache=True)
def _grad(w, mu, cov, lam, sup, k, g):
    for a in range(k):
        i = sup[a]
        s = 0.0
        for b in range(k):
            s += cov[i, sup[b]] * w[b]
        g[a] = 2.0 * lam * s - (1.0 - lam) * mu[i]


@njit(cache=True)
def support_qp(sup, w0, mu, cov, lam, lo, hi, max_it=_MAX_IT):
    """Minimize ``lam w'Sigma w - (1 - lam) mu'w`` over weights ``w`` (k,) of the assets ``sup`` (k,) with
    ``sum w = 1`` and ``lo[a] <= w[a] <= hi[a]``, from the feasible ``w0`` (k,).

    Returns ``(w, iterations, ok)``; ``ok`` is False when the iteration limit ``max_it`` was reached (``w`` is then
    the last feasible iterate, still feasible, its objective no higher than ``w0``'s).
    """
    k = sup.shape[0]
    if lam == 0.0:  # linear objective: every weight at its floor, the rest to the best mean returns first
        w = lo.copy()
        left = 1.0 - w.sum()
        for a in np.argsort(-mu[sup]):
            add = min(hi[a] - lo[a], max(left, 0.0))
            w[a] += add
            left -= add
        return w, 1, True
    w = w0.copy()
    state = np.zeros(k, dtype=np.int64)  # 0 free, -1 at lo, +1 at hi
    for a in range(k):
        if w[a] <= lo[a]:
            w[a] = lo[a]
            state[a] = -1
        elif w[a] >= hi[a]:
            w[a] = hi[a]
            state[a] = 1
    g = np.empty(k)
    it = 0
    while it < max_it:
        it += 1
        nf = 0
        fixed_sum = 0.0
        free = np.empty(k, dtype=np.int64)
        for a in range(k):
            if state[a] == 0:
                free[nf] = a
                nf += 1
            else:
                fixed_sum += w[a]
        x = np.empty(nf)
        nu = 0.0
        if nf > 0:
            # KKT of the free weights: [2 lam S_FF, 1; 1', 0] [x; -nu] = [(1 - lam) mu_F - 2 lam S_Fx w_x; b]
            A = np.zeros((nf + 1, nf + 1))
            rhs = np.zeros(nf + 1)
            for r in range(nf):
                i = sup[free[r]]
                for c in range(nf):
                    A[r, c] = 2.0 * lam * cov[i, sup[free[c]]]
                A[r, nf] = 1.0
                A[nf, r] = 1.0
                s = 0.0
                for b in range(k):
                    if state[b] != 0:
                        s += cov[i, sup[b]] * w[b]
                rhs[r] = (1.0 - lam) * mu[i] - 2.0 * lam * s
            rhs[nf] = 1.0 - fixed_sum
            sol = np.linalg.solve(A, rhs)
            for r in range(nf):
                x[r] = sol[r]
            nu = -sol[nf]
        # step from w toward x, stopped by the first free weight to reach a bound
        alpha = 1.0
        block = -1
        side = 0
        for r in range(nf):
            a = free[r]
            p = x[r] - w[a]
            if p < 0.0 and x[r] < lo[a]:
                t = (lo[a] - w[a]) / p
                if t < alpha:
                    alpha, block, side = t, a, -1
            elif p > 0.0 and x[r] > hi[a]:
                t = (hi[a] - w[a]) / p
                if t < alpha:
                    alpha, block, side = t, a, 1
        if alpha < 0.0:
            alpha = 0.0
        for r in range(nf):
            a = free[r]
            w[a] = w[a] + alpha * (x[r] - w[a])
        if block >= 0:
            w[block] = lo[block] if side < 0 else hi[block]
            state[block] = side
            continue
        # multipliers of the fixed bounds: at lo, grad_i - nu >= 0; at hi, nu - grad_i >= 0
        _grad(w, mu, cov, lam, sup, k, g)
        if nf == 0:
            # every weight on a bound: nu from the best of the fixed ones (any nu between the bounds' gradients)
            nu_lo = -np.inf
            nu_hi = np.inf
            for a in range(k):
                if state[a] == -1 and g[a] < nu_hi:
                    nu_hi = g[a]
                if state[a] == 1 and g[a] > nu_lo:
                    nu_lo = g[a]
            if nu_lo <= nu_hi + _QP_TOL:
                return w, it, True
            nu = (nu_lo + nu_hi) / 2.0
        worst = -1
        worst_v = -_QP_TOL * (1.0 + abs(nu))
        for a in range(k):
            if state[a] == -1:
                m = g[a] - nu
            elif state[a] == 1:
                m = nu - g[a]
            else:
                continue
            if m < worst_v:
                worst_v, worst = m, a
        if worst < 0:
            return w, it, True
        state[worst] = 0
    return w, it, False

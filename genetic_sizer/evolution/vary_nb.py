"""Compiled variation: the genome operators of :mod:`genetic_sizer.evolution.operators` over a whole offspring array.

:func:`vary_kernel` is :func:`genetic_sizer.evolution.variation.vary_population`'s engine: rows ``2i`` and ``2i + 1``
cross over where ``cross[i]``, then rows mutate where ``mutating[j]``, each row with its own workspace and its own
random stream (one after another, or on request in a ``prange`` loop), so a child depends only on its parents and its
seed (not on the thread count or on how rows are split). Every function here is a line-by-line port of its Python
counterpart in :mod:`genetic_sizer.evolution.operators` (``_line``, ``_child``, ``_align``, ``_swap_line``, the
mutations and ``mutate``): the same branches, the same random draws in the same order, and the same floating-point
operations in the same order, so the compiled and the Python operators give the same children (the tests check it row
for row). In particular every sum is numpy's pairwise summation (:func:`_psum`, what ``ndarray.sum`` does on a
contiguous array) and every row product ``R @ x`` is written as ``(R * x).sum(axis=1)`` on both sides.

Random numbers: one :func:`xoshiro256** <_next>` stream per row, its state seeded from the row's uint64 seed by
four steps of splitmix64 (the seeding its authors recommend). :class:`RowStream` is the same generator in Python
with the methods the operators use from ``numpy.random.Generator`` (``random``, ``uniform``, ``normal``,
``integers``, ``choice``, ``permutation``), so the Python operators can run on the very same numbers:

* ``random()``: the top 53 bits of a draw times ``2**-53``, uniform in [0, 1);
* ``uniform(a, b)``: ``a + (b - a) * random()``;
* ``integers(n)``: uniform in ``0 .. n-1`` without modulo bias (a draw below ``2**64 mod n`` is rejected, then
  the draw mod ``n``);
* ``permutation(x)``: Fisher-Yates from the last position down (position ``i`` swaps with ``integers(i + 1)``),
  ``choice(x)``: ``x[integers(len(x))]``;
* ``normal(loc, scale)``: ``loc + scale * z`` with ``z = sqrt(-2 log(1 - u1)) cos(2 pi u2)``, Box-Muller from
  two ``random()`` draws, the sine half discarded (no cached state: one normal always costs two draws). ``log``,
  ``cos`` and ``sqrt`` are the C library's on both sides.

Reference counts: every function that works on a row is compiled without Numba's reference counting (``_nrt=False``):
with it, each call increfs and decrefs every array it is passed (the space and the workspace are tuples of 18 arrays)
and every row view it takes, each an atomic operation in Numba's runtime; 40% of the kernel's time went there (the 98
children of 20 assets of a generation of 100: 133 us -> 77 us on one thread). Those functions allocate nothing and keep
no array beyond the call: every buffer belongs to the workspace that :func:`_vary_serial` / :func:`_vary_parallel`
allocate and hold (with reference counting) for the whole call. A function compiled without it may allocate nothing, so
:func:`_tree` (the pairwise sum above 128 terms, which allocates its stack) is compiled with it (``_nrt=True``,
explicit: a callee otherwise inherits its caller's setting), and the operators reach it only for rows of more than 128
assets. The children are unchanged: only reference counting is left out, not one floating-point operation.

:func:`row_keys` is the trials' key of a row (:mod:`genetic_sizer.evolution.trials`): BLAKE2b with an 8-byte digest of
the row's bytes, compiled (the same numbers as ``hashlib``, in two thirds of its time: 33 us instead of 52 for 75 rows
of 20 assets, no Python object per row).

The space arrives as plain arrays (:func:`genetic_sizer.evolution.space.kernel_space` builds the tuple): held boxes per
sign, ``zero_ok``, the group rows, the bounds of the constraint rows, the long-exposure row flag, ``max_assets``,
the direction and ``min_assets`` (index 15).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from genetic_sizer.backtest.kernels import njit  # numba.njit with the kernels' cache directory

__all__ = ["RowStream", "row_keys", "vary_kernel"]

# genome's tolerances (_SNAP, _ROW_TOL, _FLAT, _RANK_TOL), repeated so that importing genome does not import numba;
# tests/test_vary_nb.py checks they are equal
SNAP = 1e-14
ROW_TOL = 1e-12
FLAT = 1e-13
RANK_TOL = 1e-9
P_ALL = 0.5  # transfer_mutation's default p_all, the one mutate uses
TWO_PI = 6.283185307179586

# ---- the random stream ------------------------------------------------------------------------------
_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & _M64


class RowStream:
    """The kernel's random stream in Python: xoshiro256** seeded by splitmix64 from one uint64 seed.

    It has the methods the genome operators use from ``numpy.random.Generator``, with the definitions in the module
    docstring, so :func:`genetic_sizer.evolution.variation.vary_population` with ``engine="python"`` draws exactly the
    numbers the compiled kernel draws.

    Parameters
    ----------
    seed : int
        The row's seed (taken modulo ``2**64``).
    """

    __slots__ = ("_s",)

    def __init__(self, seed: int) -> None:
        x = int(seed) & _M64
        state = []
        for _ in range(4):
            x = (x + _GOLDEN) & _M64
            z = x
            z = ((z ^ (z >> 30)) * _MIX1) & _M64
            z = ((z ^ (z >> 27)) * _MIX2) & _M64
            state.append(z ^ (z >> 31))
        self._s = state

    def next_u64(self) -> int:
        """The next 64-bit output."""
        s0, s1, s2, s3 = self._s
        result = (_rotl((s1 * 5) & _M64, 7) * 9) & _M64
        t = (s1 << 17) & _M64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        self._s = [s0, s1, s2, _rotl(s3, 45)]
        return result

    def _random(self) -> float:
        return (self.next_u64() >> 11) * _INV53

    def random(self, size=None):
        """Uniform in [0, 1): a float, or an array of ``size`` floats drawn in order."""
        if size is None:
            return self._random()
        return np.array([self._random() for _ in range(int(size))], dtype=np.float64)

    def uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        """``low + (high - low) * random()``."""
        return float(low) + (float(high) - float(low)) * self._random()

    def _normal(self, loc: float, scale: float) -> float:
        u1 = 1.0 - self._random()
        u2 = self._random()
        return loc + scale * (math.sqrt(-2.0 * math.log(u1)) * math.cos(TWO_PI * u2))

    def normal(self, loc: float = 0.0, scale: float = 1.0, size=None):
        """Box-Muller normals ``loc + scale * z``: a float, or an array of ``size`` drawn in order."""
        loc, scale = float(loc), float(scale)
        if size is None:
            return self._normal(loc, scale)
        return np.array([self._normal(loc, scale) for _ in range(int(size))], dtype=np.float64)

    def integers(self, low: int, high: int | None = None) -> int:
        """Uniform in ``low .. high - 1`` (``0 .. low - 1`` when ``high`` is None), without modulo bias."""
        lo, hi = (0, int(low)) if high is None else (int(low), int(high))
        n = hi - lo
        if n <= 0:
            raise ValueError(f"integers: empty range [{lo}, {hi})")
        threshold = (2**64 - n) % n
        while True:
            r = self.next_u64()
            if r >= threshold:
                return lo + r % n

    def choice(self, a):
        """One element of the 1-D array ``a``, uniformly."""
        a = np.asarray(a)
        return a[self.integers(len(a))]

    def permutation(self, x):
        """A shuffled copy of the 1-D array ``x`` (or of ``arange(x)`` for an int): Fisher-Yates, last first."""
        arr = np.arange(x) if isinstance(x, (int, np.integer)) else np.array(x, copy=True)
        for i in range(len(arr) - 1, 0, -1):
            j = self.integers(i + 1)
            arr[i], arr[j] = arr[j], arr[i]
        return arr


_U0 = np.uint64(0)
_U5 = np.uint64(5)
_U7 = np.uint64(7)
_U9 = np.uint64(9)
_U11 = np.uint64(11)
_U17 = np.uint64(17)
_U19 = np.uint64(19)
_U27 = np.uint64(27)
_U30 = np.uint64(30)
_U31 = np.uint64(31)
_U45 = np.uint64(45)
_U57 = np.uint64(57)
_UGOLDEN = np.uint64(_GOLDEN)
_UMIX1 = np.uint64(_MIX1)
_UMIX2 = np.uint64(_MIX2)


@njit(cache=True, _nrt=False)
def _seed(st, seed):
    """Fill the xoshiro256** state ``st`` (uint64[4]) from ``seed`` by four splitmix64 steps."""
    x = np.uint64(seed)
    for q in range(4):
        x = x + _UGOLDEN
        z = x
        z = (z ^ (z >> _U30)) * _UMIX1
        z = (z ^ (z >> _U27)) * _UMIX2
        st[q] = z ^ (z >> _U31)


@njit(cache=True, _nrt=False, inline="always")
def _next(st):
    """The next xoshiro256** output (uint64); advances ``st``."""
    s0 = st[0]
    s1 = st[1]
    s2 = st[2]
    s3 = st[3]
    x = s1 * _U5
    result = ((x << _U7) | (x >> _U57)) * _U9
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    st[0] = s0
    st[1] = s1
    st[2] = s2
    st[3] = (s3 << _U45) | (s3 >> _U19)
    return result


@njit(cache=True, _nrt=False, inline="always")
def _random(st):
    return np.float64(_next(st) >> _U11) * _INV53


@njit(cache=True, _nrt=False, inline="always")
def _uniform(st, low, high):
    return low + (high - low) * _random(st)


@njit(cache=True, _nrt=False, inline="always")
def _normal(st, loc, scale):
    u1 = 1.0 - _random(st)
    u2 = _random(st)
    return loc + scale * (math.sqrt(-2.0 * math.log(u1)) * math.cos(TWO_PI * u2))


@njit(cache=True, _nrt=False, inline="always")
def _integers(st, n):
    un = np.uint64(n)
    threshold = (_U0 - un) % un
    while True:
        r = _next(st)
        if r >= threshold:
            return np.int64(r % un)


@njit(cache=True, _nrt=False)
def _permute(st, idx, count):
    """Shuffle ``idx[:count]`` in place (:meth:`RowStream.permutation`)."""
    for i in range(count - 1, 0, -1):
        j = _integers(st, i + 1)
        tmp = idx[i]
        idx[i] = idx[j]
        idx[j] = tmp


@njit(cache=True)
def _draw_streams(seeds, n_draws):
    """``n_draws`` raw outputs of each seed's stream (the tests compare them with :class:`RowStream`)."""
    out = np.empty((seeds.shape[0], n_draws), dtype=np.uint64)
    st = np.empty(4, dtype=np.uint64)
    for j in range(seeds.shape[0]):
        _seed(st, seeds[j])
        for q in range(n_draws):
            out[j, q] = _next(st)
    return out


@njit(cache=True)
def _draw_mixed(seed, n):
    """random, uniform(-0.5, 1.5), normal(0, 0.3), integers(7) and a permutation of 5, ``n`` times (tests)."""
    st = np.empty(4, dtype=np.uint64)
    _seed(st, np.uint64(seed))
    out = np.empty((n, 9))
    idx = np.empty(5, dtype=np.int64)
    for q in range(n):
        out[q, 0] = _random(st)
        out[q, 1] = _uniform(st, -0.5, 1.5)
        out[q, 2] = _normal(st, 0.0, 0.3)
        out[q, 3] = _integers(st, 7)
        for p in range(5):
            idx[p] = p
        _permute(st, idx, 5)
        for p in range(5):
            out[q, 4 + p] = idx[p]
    return out


# ---- numpy's pairwise summation ---------------------------------------------------------------------
@njit(cache=True, _nrt=False, inline="always")
def _term(a, b, i, prod):
    return a[i] * b[i] if prod else a[i]


@njit(cache=True, _nrt=False)
def _block(a, b, start, n, prod):
    """numpy's pairwise sum of ``n <= 128`` terms (``a[i] * b[i]`` when ``prod``, else ``a[i]``): under 8 terms
    one after another from 0, otherwise 8 running sums combined as a tree, then the rest one after another."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += _term(a, b, start + i, prod)
        return res
    r0 = _term(a, b, start, prod)
    r1 = _term(a, b, start + 1, prod)
    r2 = _term(a, b, start + 2, prod)
    r3 = _term(a, b, start + 3, prod)
    r4 = _term(a, b, start + 4, prod)
    r5 = _term(a, b, start + 5, prod)
    r6 = _term(a, b, start + 6, prod)
    r7 = _term(a, b, start + 7, prod)
    i = 8
    stop = n - n % 8
    while i < stop:
        s = start + i
        r0 += _term(a, b, s, prod)
        r1 += _term(a, b, s + 1, prod)
        r2 += _term(a, b, s + 2, prod)
        r3 += _term(a, b, s + 3, prod)
        r4 += _term(a, b, s + 4, prod)
        r5 += _term(a, b, s + 5, prod)
        r6 += _term(a, b, s + 6, prod)
        r7 += _term(a, b, s + 7, prod)
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += _term(a, b, start + i, prod)
        i += 1
    return res


@njit(cache=True, _nrt=True)
def _tree(a, b, start, n, prod):
    """numpy's pairwise sum of any length: above 128 terms it splits at ``n2 = n // 2 - (n // 2) % 8`` and adds
    the two halves' sums (evaluated here with an explicit stack: Numba does not cache recursive functions)."""
    if n <= 128:
        return _block(a, b, start, n, prod)
    node_s = np.empty(192, dtype=np.int64)
    node_n = np.empty(192, dtype=np.int64)
    node_done = np.empty(192, dtype=np.bool_)
    vals = np.empty(64)
    top = 0
    nv = 0
    node_s[0], node_n[0], node_done[0] = start, n, False
    top = 1
    while top:
        top -= 1
        s0, n0, done = node_s[top], node_n[top], node_done[top]
        if n0 <= 128:
            vals[nv] = _block(a, b, s0, n0, prod)
            nv += 1
        elif done:
            right = vals[nv - 1]
            left = vals[nv - 2]
            nv -= 2
            vals[nv] = left + right
            nv += 1
        else:
            n2 = n0 // 2
            n2 -= n2 % 8
            node_s[top], node_n[top], node_done[top] = s0, n0, True
            node_s[top + 1], node_n[top + 1], node_done[top + 1] = s0 + n2, n0 - n2, False
            node_s[top + 2], node_n[top + 2], node_done[top + 2] = s0, n2, False  # the left half runs first
            top += 3
    return vals[0]


@njit(cache=True, _nrt=False)
def _psum(a, start, n):
    """``a[start:start + n].sum()`` as numpy computes it on a contiguous array (pairwise summation)."""
    if n <= 128:
        return _block(a, a, start, n, False)
    return _tree(a, a, start, n, False)


@njit(cache=True, _nrt=False)
def _pdot(a, b, start, n):
    """``(a * b)[start:start + n].sum()`` as numpy computes it (the products, then :func:`_psum`'s order)."""
    if n <= 128:
        return _block(a, b, start, n, True)
    return _tree(a, b, start, n, True)


@njit(cache=True, _nrt=False, inline="always")
def _psum_where(x, mask_val, sel, tmp):
    """numpy's ``x[sel].sum()`` where ``sel[q]`` is 1 (a compressed array, then the pairwise sum)."""
    c = 0
    for q in range(x.shape[0]):
        if sel[q] == mask_val:
            tmp[c] = x[q]
            c += 1
    return _psum(tmp, 0, c)


# ---- the workspace of one row -------------------------------------------------------------------------
# float rows of F (n each)
L_LO, L_HI, L_X, L_Z, L_KEY = 0, 1, 2, 3, 4  # _line
F_M, F_D, F_SG, F_LO, F_HI, F_OUT, F_TMP, F_SEL = 5, 6, 7, 8, 9, 10, 11, 12  # operators
F_B, F_MA, F_MB, F_V = 13, 14, 15, 16  # crossover
F_SW_M, F_SW_U, F_SW_V, F_SG2 = 17, 18, 19, 20  # _swap_line, _align
F_CUR, F_MUT, F_PX = 21, 22, 23  # the row's child, its mutation, the projected free part
N_F = 24
# int rows of I (n each)
I_CAND, I_A, I_B, I_IDX = 0, 1, 2, 3
N_I = 4


@njit(cache=True)
def _workspace(n, sp):
    G = sp[7]
    ng = G.shape[0]
    nr = ng + (1 if sp[12] else 0)
    F = np.zeros((N_F, n))
    I = np.zeros((N_I, n), dtype=np.int64)
    R = np.zeros((nr, n))
    for r in range(ng):
        for q in range(n):
            R[r, q] = G[r, q]
    RR = np.zeros((3, max(nr, 1)))
    A = np.zeros((nr + 1, n))
    Q = np.zeros((nr + 1, n))
    st = np.zeros(4, dtype=np.uint64)
    flags = np.zeros(1, dtype=np.int64)
    return F, I, R, RR, A, Q, st, flags


@njit(cache=True, _nrt=False, inline="always")
def _set_rows(signs, sp, R):
    """The long-exposure row (1 where the sign is long) as ``Constraints.rows`` builds it, if there is one."""
    if sp[12]:
        last = R.shape[0] - 1
        for q in range(signs.shape[0]):
            R[last, q] = 1.0 if signs[q] > 0 else 0.0


@njit(cache=True, _nrt=False, inline="always")
def _signs_of(w, sp, out):
    """``GenomeSpace.signs``: +1 / -1 by the sign of ``w``; a zero gets +1 when it may be long."""
    ok_long = sp[2]
    for q in range(w.shape[0]):
        if w[q] > 0:
            out[q] = 1.0
        elif w[q] < 0:
            out[q] = -1.0
        else:
            out[q] = 1.0 if ok_long[q] else -1.0


@njit(cache=True, _nrt=False, inline="always")
def _held_box(signs, sp, lo, hi):
    """``GenomeSpace.held_box``."""
    for q in range(signs.shape[0]):
        if signs[q] > 0:
            lo[q] = sp[0][q]
            hi[q] = sp[1][q]
        else:
            lo[q] = sp[3][q]
            hi[q] = sp[4][q]


# ---- the exact line search ---------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def _line(u, v, signs, target, sp, wk, out):
    """``genome._line``: the valid point of ``u + t v`` nearest ``t = target`` into ``out`` (signed); False when
    no point of the line is valid."""
    zero_ok = sp[6]
    rlo = sp[8]
    rhi = sp[9]
    k = sp[13]
    F, I, R, RR = wk[0], wk[1], wk[2], wk[3]
    n = u.shape[0]
    lo = F[L_LO]
    hi = F[L_HI]
    _held_box(signs, sp, lo, hi)
    n_fixed = 0
    n_moving = 0
    for q in range(n):
        if v[q] == 0.0:
            if u[q] == 0.0:
                if not zero_ok[q]:
                    return False
            else:
                if not (u[q] >= lo[q] - SNAP and u[q] <= hi[q] + SNAP):
                    return False
                n_fixed += 1
        else:
            n_moving += 1
    nr = R.shape[0]
    r0 = RR[0]
    dr = RR[1]
    if nr:
        _set_rows(signs, sp, R)
        for r in range(nr):
            r0[r] = _pdot(R[r], u, 0, n)
            dr[r] = _pdot(R[r], v, 0, n)
            if abs(dr[r]) <= FLAT and (r0[r] < rlo[r] - ROW_TOL or r0[r] > rhi[r] + ROW_TOL):
                return False  # a row the line does not move is broken everywhere on it
    best_t = 0.0
    best_d = np.inf
    point = -1
    if n_fixed + n_moving <= k and n_fixed + n_moving >= sp[15]:
        boxes = True
        for q in range(n):
            if v[q] != 0.0 and not hi[q] >= lo[q]:
                boxes = False
                break
        if boxes:
            t_lo = -np.inf
            t_hi = np.inf
            for q in range(n):
                if v[q] != 0.0:
                    a = (lo[q] - u[q]) / v[q]
                    b = (hi[q] - u[q]) / v[q]
                    c_lo = a if v[q] > 0 else b
                    c_hi = b if v[q] > 0 else a
                    if c_lo > t_lo:
                        t_lo = c_lo
                    if c_hi < t_hi:
                        t_hi = c_hi
            if nr:
                rt_lo = -np.inf
                rt_hi = np.inf
                any_row = False
                for r in range(nr):
                    if abs(dr[r]) > FLAT:
                        any_row = True
                        ra = (rlo[r] - r0[r]) / dr[r]
                        rb = (rhi[r] - r0[r]) / dr[r]
                        c_lo = ra if dr[r] > 0 else rb
                        c_hi = rb if dr[r] > 0 else ra
                        if c_lo > rt_lo:
                            rt_lo = c_lo
                        if c_hi < rt_hi:
                            rt_hi = c_hi
                if any_row:
                    if rt_lo > t_lo:
                        t_lo = rt_lo
                    if rt_hi < t_hi:
                        t_hi = rt_hi
            if t_lo <= t_hi:
                bt = t_lo if t_lo > target else target
                bt = t_hi if t_hi < bt else bt
                best_t = bt
                best_d = abs(bt - target)
    if best_d > 0.0:
        cand = I[I_CAND]
        z = F[L_Z]
        key = F[L_KEY]
        nc = 0
        for q in range(n):
            if v[q] != 0.0 and zero_ok[q]:
                zq = -u[q] / v[q]
                kq = abs(zq - target)
                if kq < best_d:
                    # stable insertion by distance to the target (argsort kind="stable")
                    p = nc
                    while p > 0 and key[p - 1] > kq:
                        key[p] = key[p - 1]
                        z[p] = z[p - 1]
                        cand[p] = cand[p - 1]
                        p -= 1
                    key[p] = kq
                    z[p] = zq
                    cand[p] = q
                    nc += 1
        x = F[L_X]
        for c in range(nc):
            zc = z[c]
            pc = cand[c]
            good = True
            count = 0
            for q in range(n):
                xq = u[q] + zc * v[q]
                if q == pc:
                    xq = 0.0
                if abs(xq) <= SNAP and zero_ok[q]:
                    xq = 0.0
                x[q] = xq
                if xq != 0.0:
                    count += 1
                    if xq < lo[q] - SNAP or xq > hi[q] + SNAP:
                        good = False
                        break
                elif not zero_ok[q]:
                    good = False
                    break
            if not good or count > k or count < sp[15]:
                continue
            for r in range(nr):
                rv = _pdot(R[r], x, 0, n)
                if rv < rlo[r] - ROW_TOL or rv > rhi[r] + ROW_TOL:
                    good = False
                    break
            if good:
                best_t = zc
                best_d = 0.0
                point = pc
                break
    if not math.isfinite(best_d):
        return False
    x = F[L_X]
    for q in range(n):
        x[q] = u[q] + best_t * v[q]
    if point >= 0:
        x[point] = 0.0
        for q in range(n):
            if abs(x[q]) <= SNAP and zero_ok[q]:
                x[q] = 0.0
    for q in range(n):
        xq = x[q]
        if xq != 0.0:
            if abs(xq - lo[q]) <= SNAP:
                xq = lo[q]
            elif abs(xq - hi[q]) <= SNAP:
                xq = hi[q]
        if xq != 0.0 and (xq < lo[q] - SNAP or xq > hi[q] + SNAP):
            wk[7][0] = 1  # line search left a held box: a bug, reported by the caller
            return False
        out[q] = signs[q] * xq + 0.0
    return True


# ---- operators ----------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False, inline="always")
def _copy(src, dst):
    for q in range(src.shape[0]):
        dst[q] = src[q]


@njit(cache=True, _nrt=False, inline="always")
def _free_zero_signs(w, sp, wk, signs):
    """``genome._free_zero_signs``: a zero weight that may go either way gets a random sign."""
    _signs_of(w, sp, signs)
    if not sp[14]:
        st = wk[6]
        for q in range(w.shape[0]):
            if w[q] == 0 and sp[2][q] and sp[5][q]:
                signs[q] = 1.0 if _random(st) < 0.5 else -1.0


@njit(cache=True, _nrt=False, inline="always")
def _can_open(w, lo, hi, q):
    return w[q] == 0 and hi[q] >= lo[q] and hi[q] > 0


@njit(cache=True, _nrt=False, inline="always")
def _side_vertex(m, signs, i, sp, wk, d):
    """``genome._side_vertex``: the direction of a shift toward asset ``i``."""
    n = m.shape[0]
    if not sp[12]:
        for q in range(n):
            d[q] = -m[q]
        d[i] += _psum(m, 0, n)
        return
    tmp = wk[0][F_TMP]
    c = 0
    for q in range(n):
        if signs[q] == signs[i]:
            d[q] = -m[q]
            tmp[c] = m[q]
            c += 1
        else:
            d[q] = 0.0
    d[i] += _psum(tmp, 0, c)


@njit(cache=True, _nrt=False, inline="always")
def _abs(w, m):
    for q in range(w.shape[0]):
        m[q] = abs(w[q])


@njit(cache=True, _nrt=False)
def _null_project(A, nrows, f, x, Q):
    """``genome._null_project``: ``x[:f]`` minus its part in the span of ``A[:nrows, :f]`` (modified
    Gram-Schmidt on the rows in order; a row dependent on the ones before it is skipped)."""
    nb = 0
    for r in range(nrows):
        q = Q[nb]
        for c in range(f):
            q[c] = A[r, c]
        for p in range(nb):
            coef = _pdot(Q[p], q, 0, f)
            for c in range(f):
                q[c] = q[c] - coef * Q[p, c]
        norm = math.sqrt(_pdot(q, q, 0, f))
        if norm > RANK_TOL * math.sqrt(_pdot(A[r], A[r], 0, f)):
            for c in range(f):
                q[c] = q[c] / norm
            nb += 1
    for p in range(nb):
        coef = _pdot(Q[p], x, 0, f)
        for c in range(f):
            x[c] = x[c] - coef * Q[p, c]


@njit(cache=True, _nrt=False)
def _gaussian(w, sigma, sp, wk, res):
    """``genome.gaussian_mutation``."""
    F, I, R, RR, A, Q = wk[0], wk[1], wk[2], wk[3], wk[4], wk[5]
    st = wk[6]
    rlo = sp[8]
    rhi = sp[9]
    n = w.shape[0]
    signs = F[F_SG]
    _free_zero_signs(w, sp, wk, signs)
    m = F[F_M]
    _abs(w, m)
    lo = F[F_LO]
    hi = F[F_HI]
    _held_box(signs, sp, lo, hi)
    d = F[F_D]
    for q in range(n):
        d[q] = _normal(st, 0.0, sigma)
    n_held = 0
    for q in range(n):
        if m[q] != 0.0:
            n_held += 1
    full = n_held >= sp[13]
    for q in range(n):
        held = m[q] != 0.0
        opening = (not held) and d[q] >= lo[q] and hi[q] >= lo[q] and hi[q] > 0
        if full:
            opening = False
        if not held and not opening:
            d[q] = 0.0
        if held and m[q] <= lo[q] + SNAP and d[q] < 0:
            d[q] = 0.0
        if held and m[q] >= hi[q] - SNAP and d[q] > 0:
            d[q] = 0.0
    nr = R.shape[0]
    if nr:
        _set_rows(signs, sp, R)
        n_tight = 0
        tight = RR[2]
        for r in range(nr):
            r0 = _pdot(R[r], m, 0, n)
            t = ((r0 <= rlo[r] + ROW_TOL) and (rlo[r] > 0.0)) or r0 >= rhi[r] - ROW_TOL  # a row at 0 cannot fall
            tight[r] = 1.0 if t else 0.0
            if t:
                n_tight += 1
        if n_tight:
            free = I[I_IDX]
            f = 0
            for q in range(n):
                if d[q] != 0.0:
                    free[f] = q
                    f += 1
            for c in range(f):
                A[0, c] = 1.0
            a_row = 1
            for r in range(nr):
                if tight[r] != 0.0:
                    for c in range(f):
                        A[a_row, c] = R[r, free[c]]
                    a_row += 1
            px = F[F_PX]
            for c in range(f):
                px[c] = d[free[c]]
            _null_project(A, a_row, f, px, Q)
            for c in range(f):
                d[free[c]] = px[c]
            if not _line(m, d, signs, 1.0, sp, wk, res):
                _copy(w, res)
            return
    tmp = F[F_TMP]
    c_up = 0
    for q in range(n):
        if d[q] > 0:
            tmp[c_up] = d[q]
            c_up += 1
    up = _psum(tmp, 0, c_up)
    c_dn = 0
    for q in range(n):
        if d[q] < 0:
            tmp[c_dn] = d[q]
            c_dn += 1
    down = -_psum(tmp, 0, c_dn)
    if up == 0.0 or down == 0.0:
        _copy(w, res)
        return
    if up > down:
        ratio = down / up
        for q in range(n):
            if d[q] > 0:
                d[q] *= ratio
    else:
        ratio = up / down
        for q in range(n):
            if d[q] < 0:
                d[q] *= ratio
    if not _line(m, d, signs, 1.0, sp, wk, res):
        _copy(w, res)


@njit(cache=True, _nrt=False)
def _transfer(w, sp, wk, res):
    """``genome.transfer_mutation`` with ``p_all = 0.5``."""
    F, I = wk[0], wk[1]
    st = wk[6]
    zero_ok = sp[6]
    n = w.shape[0]
    signs = F[F_SG]
    _free_zero_signs(w, sp, wk, signs)
    m = F[F_M]
    _abs(w, m)
    lo = F[F_LO]
    hi = F[F_HI]
    _held_box(signs, sp, lo, hi)
    idx = I[I_IDX]
    c = 0
    for q in range(n):
        if m[q] != 0.0:
            idx[c] = q
            c += 1
    if c == 0:
        _copy(w, res)
        return
    i = idx[_integers(st, c)]
    c = 0
    for q in range(n):
        if q != i and ((m[q] != 0.0 and m[q] < hi[q] - SNAP) or _can_open(w, lo, hi, q)):
            idx[c] = q
            c += 1
    if c == 0:
        _copy(w, res)
        return
    j = idx[_integers(st, c)]
    give = m[i] if zero_ok[i] else m[i] - lo[i]
    amount = give if _random(st) < P_ALL else give * _random(st)
    d = F[F_D]
    for q in range(n):
        d[q] = 0.0
    d[i] = -1.0
    d[j] = 1.0
    if not _line(m, d, signs, amount, sp, wk, res):
        _copy(w, res)


@njit(cache=True, _nrt=False)
def _flip(w, sp, wk, res):
    """``genome.flip_mutation``."""
    _copy(w, res)
    if sp[14]:
        return
    F, I = wk[0], wk[1]
    st = wk[6]
    n = w.shape[0]
    signs = F[F_SG]
    _signs_of(w, sp, signs)
    for q in range(n):
        signs[q] = -signs[q]
    lo = F[F_LO]
    hi = F[F_HI]
    _held_box(signs, sp, lo, hi)
    m = F[F_M]
    _abs(w, m)
    long_now = 0.0
    if sp[12]:
        sel = F[F_SEL]
        for q in range(n):
            sel[q] = 1.0 if w[q] > 0 else 0.0
        long_now = _psum_where(m, 1.0, sel, F[F_TMP])
    idx = I[I_IDX]
    c = 0
    for q in range(n):
        ok = w[q] != 0 and sp[2][q] and sp[5][q] and m[q] >= lo[q] - SNAP and m[q] <= hi[q] + SNAP
        if ok and sp[12]:
            sgn = 1.0 if w[q] > 0 else (-1.0 if w[q] < 0 else 0.0)
            after = long_now - sgn * m[q]  # flipping moves 2 m_q between the sides; gross stays 1
            ok = after >= sp[10] - ROW_TOL and after <= sp[11] + ROW_TOL
        if ok:
            idx[c] = q
            c += 1
    if c:
        kk = idx[_integers(st, c)]
        res[kk] = -res[kk]


@njit(cache=True, _nrt=False)
def _shift(w, sigma, sp, wk, res):
    """``genome.shift_mutation``."""
    F, I = wk[0], wk[1]
    st = wk[6]
    n = w.shape[0]
    signs = F[F_SG]
    _free_zero_signs(w, sp, wk, signs)
    m = F[F_M]
    _abs(w, m)
    lo = F[F_LO]
    hi = F[F_HI]
    _held_box(signs, sp, lo, hi)
    n_held = 0
    for q in range(n):
        if m[q] != 0.0:
            n_held += 1
    room = n_held < sp[13]
    idx = I[I_IDX]
    c = 0
    for q in range(n):
        if m[q] != 0.0 or (room and _can_open(w, lo, hi, q)):
            idx[c] = q
            c += 1
    i = idx[_integers(st, c)]
    d = F[F_D]
    _side_vertex(m, signs, i, sp, wk, d)
    if not _line(m, d, signs, _normal(st, 0.0, sigma), sp, wk, res):
        _copy(w, res)


@njit(cache=True, _nrt=False)
def _add(w, sp, wk, res):
    """``genome.add_mutation``."""
    F, I = wk[0], wk[1]
    st = wk[6]
    n = w.shape[0]
    signs = F[F_SG]
    _free_zero_signs(w, sp, wk, signs)
    m = F[F_M]
    _abs(w, m)
    lo = F[F_LO]
    hi = F[F_HI]
    _held_box(signs, sp, lo, hi)
    held = 0
    for q in range(n):
        if m[q] != 0.0:
            held += 1
    idx = I[I_IDX]
    c = 0
    for q in range(n):
        if _can_open(w, lo, hi, q):
            idx[c] = q
            c += 1
    if held >= sp[13] or c == 0:
        _copy(w, res)
        return
    j = idx[_integers(st, c)]
    lo_j = lo[j]
    d = F[F_D]
    _side_vertex(m, signs, j, sp, wk, d)
    if d[j] <= 0.0:  # the first position on a side whose size the exposure bounds fix
        _copy(w, res)
        return
    cap = 2.0 / (held + 1)
    target = _uniform(st, lo_j, cap if cap > lo_j else lo_j) / d[j]
    if not _line(m, d, signs, target, sp, wk, res):
        _copy(w, res)


@njit(cache=True, _nrt=False)
def _drop(w, sp, wk, res):
    """``genome.drop_mutation``."""
    F, I = wk[0], wk[1]
    st = wk[6]
    zero_ok = sp[6]
    n = w.shape[0]
    signs = F[F_SG]
    _signs_of(w, sp, signs)
    m = F[F_M]
    _abs(w, m)
    idx = I[I_IDX]
    c = 0
    held = 0
    for q in range(n):
        if m[q] != 0.0:
            held += 1
            if zero_ok[q]:
                idx[c] = q
                c += 1
    if c == 0 or held <= 1 or held <= sp[15]:
        _copy(w, res)
        return
    i = idx[_integers(st, c)]
    d = F[F_D]
    if _random(st) < 0.5:
        _side_vertex(m, signs, i, sp, wk, d)
        if d[i] <= 0.0:
            _copy(w, res)
            return
        if not _line(m, d, signs, -m[i] / d[i], sp, wk, res):
            _copy(w, res)
        return
    c = 0
    for q in range(n):
        if m[q] != 0.0 and q != i:
            idx[c] = q
            c += 1
    j = idx[_integers(st, c)]
    for q in range(n):
        d[q] = 0.0
    d[i] = -1.0
    d[j] = 1.0
    if not _line(m, d, signs, m[i], sp, wk, res):
        _copy(w, res)


@njit(cache=True, _nrt=False)
def _swap_line(w, signs, i, j, sp, wk, out):
    """``genome._swap_line`` into ``out``; False where it returns None."""
    F = wk[0]
    n = w.shape[0]
    m = F[F_SW_M]
    _abs(w, m)
    d = F[F_SW_V]
    for q in range(n):
        d[q] = 0.0
    d[i] = -1.0
    d[j] = 1.0
    ok = _line(m, d, signs, m[i], sp, wk, out)
    if m[i] >= 1.0 or sp[12] or (ok and out[i] == 0.0 and out[j] != 0.0):
        return ok
    u = F[F_SW_U]
    for q in range(n):
        u[q] = 0.0 if q == i else m[q]
    total = _psum(u, 0, n)  # the others' shares: the division by their sum (not 1 - m_i) amplifies no rounding
    for q in range(n):
        u[q] = u[q] / total
    v = F[F_SW_V]
    for q in range(n):
        v[q] = -u[q]
    v[j] += 1.0
    return _line(u, v, signs, m[i], sp, wk, out)


@njit(cache=True, _nrt=False)
def _swap(w, sp, wk, res):
    """``genome.swap_mutation``."""
    F, I = wk[0], wk[1]
    st = wk[6]
    zero_ok = sp[6]
    n = w.shape[0]
    m = F[F_M]
    _abs(w, m)
    idx = I[I_IDX]
    c = 0
    for q in range(n):
        if m[q] != 0.0 and zero_ok[q]:
            idx[c] = q
            c += 1
    if c == 0:
        _copy(w, res)
        return
    i = idx[_integers(st, c)]
    signs = F[F_SG]
    _signs_of(w, sp, signs)
    pos = signs[i] > 0
    c = 0
    for q in range(n):
        same = sp[2][q] if pos else sp[5][q]
        other = sp[5][q] if pos else sp[2][q]
        if m[q] == 0.0 and (same or other):
            idx[c] = q
            c += 1
    if c == 0:
        _copy(w, res)
        return
    j = idx[_integers(st, c)]
    same_j = sp[2][j] if pos else sp[5][j]
    signs[j] = signs[i] if same_j else -signs[i]
    if not _swap_line(w, signs, i, j, sp, wk, res):
        _copy(w, res)


@njit(cache=True, _nrt=False)
def _support(w, sp, wk, res):
    """``genome.support_mutation``: swap, add (room under max_assets), drop (more than one position and more than
    min_assets)."""
    held = 0
    for q in range(w.shape[0]):
        if w[q] != 0:
            held += 1
    can_add = held < sp[13]
    can_drop = held > 1 and held > sp[15]
    move = _integers(wk[6], 1 + (1 if can_add else 0) + (1 if can_drop else 0))
    if move == 0:
        _swap(w, sp, wk, res)
    elif move == 1 and can_add:
        _add(w, sp, wk, res)
    else:
        _drop(w, sp, wk, res)


@njit(cache=True, _nrt=False)
def _mutate(w, sp, wk, res, sigma, shift_sigma, p_shift, p_transfer, p_flip, p_support):
    """``genome.mutate``."""
    u = _random(wk[6])
    if not sp[14]:
        if u < p_flip:
            _flip(w, sp, wk, res)
            return
        u -= p_flip
    if u < p_support:
        _support(w, sp, wk, res)
        return
    u -= p_support
    if u < p_shift:
        _shift(w, shift_sigma, sp, wk, res)
    elif u < p_shift + p_transfer:
        _transfer(w, sp, wk, res)
    else:
        _gaussian(w, sigma, sp, wk, res)


@njit(cache=True, _nrt=False)
def _align(b, a, sp, wk):
    """``genome._align``: ``b`` (modified in place) moved toward ``a``'s support by swaps."""
    F, I = wk[0], wk[1]
    st = wk[6]
    n = b.shape[0]
    only_b = I[I_B]
    only_a = I[I_A]
    nb = 0
    na = 0
    for q in range(n):
        if b[q] != 0 and a[q] == 0:
            only_b[nb] = q
            nb += 1
        if a[q] != 0 and b[q] == 0:
            only_a[na] = q
            na += 1
    _permute(st, only_a, na)
    _permute(st, only_b, nb)
    signs = F[F_SG2]
    moved = F[F_OUT]
    for p in range(nb):
        if na == 0:
            break
        if _random(st) < 0.5:
            j = only_a[na - 1]
            na -= 1
            _signs_of(b, sp, signs)
            if sp[2][j] if a[j] > 0 else sp[5][j]:
                signs[j] = 1.0 if a[j] > 0 else -1.0
            if _swap_line(b, signs, only_b[p], j, sp, wk, moved):
                _copy(moved, b)


@njit(cache=True, _nrt=False)
def _child(a, b, alpha, sp, wk, res):
    """``genome._child``: one child on the line from ``b`` through ``a``, with ``a``'s signs."""
    F = wk[0]
    n = a.shape[0]
    bb = F[F_B]
    _copy(b, bb)
    union = 0
    for q in range(n):
        if a[q] != 0 or b[q] != 0:
            union += 1
    if union > sp[13]:
        _align(bb, a, sp, wk)
    signs = F[F_SG]
    _signs_of(bb, sp, signs)
    for q in range(n):
        if a[q] > 0:
            signs[q] = 1.0
        elif a[q] < 0:
            signs[q] = -1.0
    ma = F[F_MA]
    mb = F[F_MB]
    v = F[F_V]
    for q in range(n):
        ma[q] = abs(a[q])
        mb[q] = abs(bb[q])
    for q in range(n):
        v[q] = ma[q] - mb[q]
    if not _line(mb, v, signs, _uniform(wk[6], -alpha, 1.0 + alpha), sp, wk, res):
        _copy(a, res)


@njit(cache=True, _nrt=False)
def _vary_row(
    j, w, cross, mutating, seeds, sp, alpha, sigma, shift_sigma, p_shift, p_transfer, p_flip, p_support, out, wk
):
    """Row ``j`` of :func:`vary_kernel` into ``out[j]`` with the workspace ``wk`` (every buffer is written before it
    is read within a row, so a workspace serves many rows); returns 1 if the line search left a held box (a bug)."""
    n = w.shape[1]
    F = wk[0]
    wk[7][0] = 0
    _seed(wk[6], seeds[j])
    cur = F[F_CUR]
    _copy(w[j], cur)
    pair = j // 2
    if pair < cross.shape[0] and cross[pair]:
        other = j + 1 if j % 2 == 0 else j - 1
        _child(w[j], w[other], alpha, sp, wk, cur)
    if mutating[j]:
        mut = F[F_MUT]
        _mutate(cur, sp, wk, mut, sigma, shift_sigma, p_shift, p_transfer, p_flip, p_support)
        cur = mut
    for q in range(n):
        out[j, q] = cur[q]
    return wk[7][0]


CHUNK = 16
"""Rows per workspace in the parallel kernel (each chunk of rows allocates one)."""


@njit(cache=True)
def _vary_serial(w, cross, mutating, seeds, sp, alpha, sigma, shift_sigma, p_shift, p_transfer, p_flip, p_support):
    n_rows = w.shape[0]
    out = np.empty((n_rows, w.shape[1]))
    err = np.zeros(n_rows, dtype=np.int64)
    wk = _workspace(w.shape[1], sp)
    for j in range(n_rows):
        err[j] = _vary_row(
            j, w, cross, mutating, seeds, sp, alpha, sigma, shift_sigma, p_shift, p_transfer, p_flip, p_support, out, wk
        )
    return out, err


@njit(cache=True, parallel=True)
def _vary_parallel(w, cross, mutating, seeds, sp, alpha, sigma, shift_sigma, p_shift, p_transfer, p_flip, p_support):
    n_rows = w.shape[0]
    out = np.empty((n_rows, w.shape[1]))
    err = np.zeros(n_rows, dtype=np.int64)
    n_chunks = (n_rows + CHUNK - 1) // CHUNK
    for c in prange(n_chunks):
        wk = _workspace(w.shape[1], sp)
        for j in range(c * CHUNK, min(n_rows, (c + 1) * CHUNK)):
            err[j] = _vary_row(
                j,
                w,
                cross,
                mutating,
                seeds,
                sp,
                alpha,
                sigma,
                shift_sigma,
                p_shift,
                p_transfer,
                p_flip,
                p_support,
                out,
                wk,
            )
    return out, err


def vary_kernel(
    w,
    cross,
    mutating,
    seeds,
    sp,
    alpha,
    sigma,
    shift_sigma,
    p_shift,
    p_transfer,
    p_flip,
    p_support,
    parallel=False,
):
    """Crossover and mutation of every row of ``w``; see :func:`genetic_sizer.evolution.variation.vary_population`.

    Parameters
    ----------
    w : ndarray of float64, shape (n, n_assets)
        The parents (valid genomes of the space ``sp`` describes), C-contiguous.
    cross : ndarray of bool, shape (n // 2,)
        Whether rows ``2i`` and ``2i + 1`` cross over.
    mutating : ndarray of bool, shape (n,)
        Whether each row mutates (after the crossover).
    seeds : ndarray of uint64, shape (n,)
        Each row's stream seed.
    sp : tuple
        The space as arrays (:attr:`genetic_sizer.evolution.space.GenomeSpace.kernel_space`).
    alpha, sigma, shift_sigma, p_shift, p_transfer, p_flip, p_support : float
        As in :func:`genetic_sizer.evolution.variation.vary_population`.
    parallel : bool
        Rows in a ``prange`` loop on the Numba threads, chunks of :data:`CHUNK` rows (True), or one after another
        (False, the default: 100 offspring of 20 assets take about 0.08 ms on one thread, 1,000 about 0.8 ms,
        and on a shared machine a parallel region waits for its slowest thread: 2 threads took 5-10x longer than
        one at 1,000 rows x 20 assets under a load of 2.5 on 2 cores). Every row has its own stream and writes
        every workspace buffer before reading it, so the children are the same either way and for any number of
        threads.

    Returns
    -------
    out : ndarray of float64, shape (n, n_assets)
        The children.
    err : ndarray of int64, shape (n,)
        1 where the line search left a held box (a bug; the caller raises).
    """
    kernel = _vary_parallel if parallel else _vary_serial
    return kernel(w, cross, mutating, seeds, sp, alpha, sigma, shift_sigma, p_shift, p_transfer, p_flip, p_support)


# ---- trial keys: BLAKE2b with an 8-byte digest over rows of 64-bit words ------------------------------------------
_B2_IV = np.array(
    [
        0x6A09E667F3BCC908,
        0xBB67AE8584CAA73B,
        0x3C6EF372FE94F82B,
        0xA54FF53A5F1D36F1,
        0x510E527FADE682D1,
        0x9B05688C2B3E6C1F,
        0x1F83D9ABFB41BD6B,
        0x5BE0CD19137E2179,
    ],
    dtype=np.uint64,
)
_B2_SIGMA = np.array(
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
        [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
        [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
        [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
        [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
        [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
        [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
        [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
        [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    ],
    dtype=np.int64,
)
_U16 = np.uint64(16)
_U24 = np.uint64(24)
_U32 = np.uint64(32)
_U40 = np.uint64(40)
_U48 = np.uint64(48)
_U63 = np.uint64(63)
_U1 = np.uint64(1)
_B2_PARAM = np.uint64(0x01010008)  # digest length 8, no key, fanout 1, depth 1


@njit(cache=True, _nrt=False, inline="always")
def _b2_g(a, b, c, d, x, y):
    """BLAKE2b's mixing function G on four words of the state."""
    a = a + b + x
    d = d ^ a
    d = (d >> _U32) | (d << _U32)
    c = c + d
    b = b ^ c
    b = (b >> _U24) | (b << _U40)
    a = a + b + y
    d = d ^ a
    d = (d >> _U16) | (d << _U48)
    c = c + d
    b = b ^ c
    b = (b >> _U63) | (b << _U1)
    return a, b, c, d


@njit(cache=True, _nrt=False)
def _b2_compress(h, m, t, last):
    """BLAKE2b's compression of the block ``m`` (16 words) into ``h`` (8 words), ``t`` bytes hashed so far (the state
    in sixteen local words: registers)."""
    v0, v1, v2, v3, v4, v5, v6, v7 = h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
    v8, v9, v10, v11 = _B2_IV[0], _B2_IV[1], _B2_IV[2], _B2_IV[3]
    v12, v13, v14, v15 = _B2_IV[4] ^ t, _B2_IV[5], _B2_IV[6], _B2_IV[7]
    if last:
        v14 = ~v14
    for r in range(12):
        s = _B2_SIGMA[r]
        v0, v4, v8, v12 = _b2_g(v0, v4, v8, v12, m[s[0]], m[s[1]])
        v1, v5, v9, v13 = _b2_g(v1, v5, v9, v13, m[s[2]], m[s[3]])
        v2, v6, v10, v14 = _b2_g(v2, v6, v10, v14, m[s[4]], m[s[5]])
        v3, v7, v11, v15 = _b2_g(v3, v7, v11, v15, m[s[6]], m[s[7]])
        v0, v5, v10, v15 = _b2_g(v0, v5, v10, v15, m[s[8]], m[s[9]])
        v1, v6, v11, v12 = _b2_g(v1, v6, v11, v12, m[s[10]], m[s[11]])
        v2, v7, v8, v13 = _b2_g(v2, v7, v8, v13, m[s[12]], m[s[13]])
        v3, v4, v9, v14 = _b2_g(v3, v4, v9, v14, m[s[14]], m[s[15]])
    h[0] ^= v0 ^ v8
    h[1] ^= v1 ^ v9
    h[2] ^= v2 ^ v10
    h[3] ^= v3 ^ v11
    h[4] ^= v4 ^ v12
    h[5] ^= v5 ^ v13
    h[6] ^= v6 ^ v14
    h[7] ^= v7 ^ v15


@njit(cache=True)
def row_keys(words):
    """Each row's ``int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little")`` (the trial
    key of :mod:`genetic_sizer.evolution.trials`) for ``words``, a C-contiguous (n, k) uint64 array of the rows'
    little-endian 64-bit words (float64 rows viewed as uint64): BLAKE2b (RFC 7693) without a key, an 8-byte digest,
    16 words per block, the last block zero-padded and flagged."""
    n, k = words.shape
    out = np.empty(n, dtype=np.uint64)
    h = np.empty(8, dtype=np.uint64)
    m = np.empty(16, dtype=np.uint64)
    n_blocks = max(1, (k + 15) // 16)
    for j in range(n):
        for i in range(8):
            h[i] = _B2_IV[i]
        h[0] ^= _B2_PARAM
        for blk in range(n_blocks):
            start = blk * 16
            for i in range(16):
                m[i] = words[j, start + i] if start + i < k else _U0
            last = blk == n_blocks - 1
            t = np.uint64(8 * k) if last else np.uint64(8 * (start + 16))
            _b2_compress(h, m, t, last)
        out[j] = h[0]
    return out
